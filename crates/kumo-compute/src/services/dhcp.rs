//! The subnet's DHCP server (RFC 2131), one per VPC inside its network namespace, as the VPC
//! router answers DHCP on AWS: each interface gets its fixed primary address by its MAC, with
//! the subnet's mask, the gateway (`.1`) as router, and the VPC's resolver (base + 2), the
//! region's domain name and the host name. `vm` guests configure their network from it.
//!
//! Replies go by unicast to the offered address: the driver routes that address to the
//! interface's tap with a permanent neighbour entry for its MAC, so the reply reaches a client
//! that has no address yet without broadcasting on every link.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Mutex;

/// What an interface is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub router: Ipv4Addr,
    /// Option 6: the name servers (none when the VPC has no DHCP options).
    pub dns: Vec<Ipv4Addr>,
    pub hostname: String,
    /// Option 15: the VPC's DHCP options' domain name (the first, where it names several:
    /// a client takes option 15 as one name).
    pub domain: String,
    /// Option 119: every domain to search, when the set names several.
    pub search: Vec<String>,
    /// Option 42: NTP servers.
    pub ntp: Vec<Ipv4Addr>,
}

/// The leases of one VPC, by MAC.
#[derive(Default)]
pub struct Leases {
    by_mac: Mutex<HashMap<[u8; 6], Lease>>,
}

/// Option 119's value (RFC 3397): each domain in DNS wire form, as many as fit in one
/// option's 255 bytes.
fn search_list(domains: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for d in domains {
        let mut name = Vec::new();
        for label in d.trim_end_matches('.').split('.') {
            if label.is_empty() || label.len() > 63 {
                name.clear();
                break;
            }
            name.push(label.len() as u8);
            name.extend_from_slice(label.as_bytes());
        }
        if name.is_empty() || out.len() + name.len() + 1 > 255 {
            continue;
        }
        out.extend_from_slice(&name);
        out.push(0);
    }
    out
}

/// Lease time in seconds (AWS's VPC DHCP gives an hour).
const LEASE_SECS: u32 = 3600;
const COOKIE: [u8; 4] = [99, 130, 83, 99];

impl Leases {
    pub fn set(&self, mac: &str, lease: Lease) {
        if let Some(m) = parse_mac(mac) {
            self.by_mac
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(m, lease);
        }
    }

    pub fn remove(&self, mac: &str) {
        if let Some(m) = parse_mac(mac) {
            self.by_mac
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&m);
        }
    }

    fn get(&self, mac: &[u8; 6]) -> Option<Lease> {
        self.by_mac
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(mac)
            .cloned()
    }

    /// The reply to a client's message and where to send it, or None (not ours, malformed, or
    /// a message that gets no reply).
    pub fn reply(&self, req: &[u8]) -> Option<(Vec<u8>, Ipv4Addr)> {
        if req.len() < 240 || req[0] != 1 || req[1] != 1 || req[2] != 6 || req[236..240] != COOKIE {
            return None;
        }
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&req[28..34]);
        let lease = self.get(&mac)?;
        let opts = options(&req[240..]);
        let kind = *opts.get(&53)?.first()?;
        let requested = opts
            .get(&50)
            .filter(|v| v.len() == 4)
            .map(|v| Ipv4Addr::new(v[0], v[1], v[2], v[3]));
        let ciaddr = Ipv4Addr::new(req[12], req[13], req[14], req[15]);
        let (answer, yiaddr) = match kind {
            // DISCOVER → OFFER.
            1 => (2, lease.ip),
            // REQUEST → ACK, or NAK for an address that is not this interface's.
            3 => {
                let asked = requested.unwrap_or(ciaddr);
                if asked == lease.ip {
                    (5, lease.ip)
                } else {
                    (6, Ipv4Addr::UNSPECIFIED)
                }
            }
            // INFORM → ACK with the options only.
            8 => (5, Ipv4Addr::UNSPECIFIED),
            // DECLINE, RELEASE: nothing to answer.
            _ => return None,
        };
        let mut out = vec![0u8; 240];
        out[0] = 2;
        out[1] = 1;
        out[2] = 6;
        out[4..8].copy_from_slice(&req[4..8]); // xid
        out[10..12].copy_from_slice(&req[10..12]); // flags
        out[12..16].copy_from_slice(&req[12..16]); // ciaddr
        out[16..20].copy_from_slice(&yiaddr.octets());
        out[28..44].copy_from_slice(&req[28..44]); // chaddr
        out[236..240].copy_from_slice(&COOKIE);
        let mut opt = |code: u8, value: &[u8]| {
            out.push(code);
            out.push(value.len() as u8);
            out.extend_from_slice(value);
        };
        opt(53, &[answer]);
        opt(54, &lease.router.octets());
        if answer != 6 {
            if kind != 8 {
                opt(51, &LEASE_SECS.to_be_bytes());
                opt(58, &(LEASE_SECS / 2).to_be_bytes());
                opt(59, &(LEASE_SECS * 7 / 8).to_be_bytes());
            }
            let mask = u32::MAX
                .checked_shl(32 - u32::from(lease.prefix_len))
                .unwrap_or(0);
            opt(1, &mask.to_be_bytes());
            opt(3, &lease.router.octets());
            let addrs = |a: &[Ipv4Addr]| a.iter().flat_map(|x| x.octets()).collect::<Vec<u8>>();
            if !lease.dns.is_empty() {
                opt(6, &addrs(&lease.dns));
            }
            if !lease.ntp.is_empty() {
                opt(42, &addrs(&lease.ntp));
            }
            if !lease.hostname.is_empty() && lease.hostname.len() < 256 {
                opt(12, lease.hostname.as_bytes());
            }
            if !lease.domain.is_empty() && lease.domain.len() < 256 {
                opt(15, lease.domain.as_bytes());
            }
            if lease.search.len() > 1 {
                let list = search_list(&lease.search);
                if !list.is_empty() {
                    opt(119, &list);
                }
            }
        }
        out.push(255);
        // BOOTP's minimum message size.
        if out.len() < 300 {
            out.resize(300, 0);
        }
        let to = if answer == 6 || kind == 8 {
            if ciaddr.is_unspecified() {
                lease.ip
            } else {
                ciaddr
            }
        } else {
            lease.ip
        };
        Some((out, to))
    }
}

/// The options of a message (pad and end handled; a truncated option ends the list).
fn options(mut b: &[u8]) -> HashMap<u8, Vec<u8>> {
    let mut out = HashMap::new();
    while let Some((&code, rest)) = b.split_first() {
        match code {
            0 => b = rest,
            255 => break,
            _ => {
                let Some((&len, rest)) = rest.split_first() else {
                    break;
                };
                let len = len as usize;
                if rest.len() < len {
                    break;
                }
                out.insert(code, rest[..len].to_vec());
                b = &rest[len..];
            }
        }
    }
    out
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut m = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut m {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(kind: u8, mac: [u8; 6], requested: Option<[u8; 4]>) -> Vec<u8> {
        let mut b = vec![0u8; 240];
        b[0] = 1;
        b[1] = 1;
        b[2] = 6;
        b[4..8].copy_from_slice(&[1, 2, 3, 4]);
        b[28..34].copy_from_slice(&mac);
        b[236..240].copy_from_slice(&COOKIE);
        b.extend_from_slice(&[53, 1, kind]);
        if let Some(r) = requested {
            b.extend_from_slice(&[50, 4]);
            b.extend_from_slice(&r);
        }
        b.push(255);
        b
    }

    fn leases() -> Leases {
        let l = Leases::default();
        l.set(
            "0a:00:00:00:00:01",
            Lease {
                ip: Ipv4Addr::new(10, 0, 1, 5),
                prefix_len: 24,
                router: Ipv4Addr::new(10, 0, 1, 1),
                dns: vec![Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 9, 9, 9)],
                hostname: "ip-10-0-1-5".into(),
                domain: "eu-west-1.compute.internal".into(),
                search: vec!["eu-west-1.compute.internal".into(), "corp.example".into()],
                ntp: vec![Ipv4Addr::new(169, 254, 169, 123)],
            },
        );
        l
    }

    const MAC: [u8; 6] = [0x0a, 0, 0, 0, 0, 1];

    #[test]
    fn discover_gets_the_interface_address() {
        let (r, to) = leases().reply(&request(1, MAC, None)).unwrap();
        assert_eq!(to, Ipv4Addr::new(10, 0, 1, 5));
        assert_eq!(r[0], 2);
        assert_eq!(&r[4..8], &[1, 2, 3, 4]);
        assert_eq!(&r[16..20], &[10, 0, 1, 5]);
        let o = options(&r[240..]);
        assert_eq!(o[&53], vec![2]);
        assert_eq!(o[&1], vec![255, 255, 255, 0]);
        assert_eq!(o[&3], vec![10, 0, 1, 1]);
        assert_eq!(o[&6], vec![10, 0, 0, 2, 10, 9, 9, 9]);
        assert_eq!(o[&42], vec![169, 254, 169, 123]);
        assert_eq!(o[&15], b"eu-west-1.compute.internal".to_vec());
        assert_eq!(
            o[&119],
            b"\x09eu-west-1\x07compute\x08internal\x00\x04corp\x07example\x00".to_vec()
        );
        assert_eq!(o[&54], vec![10, 0, 1, 1]);
        assert_eq!(o[&12], b"ip-10-0-1-5".to_vec());
        assert_eq!(o[&51], 3600u32.to_be_bytes().to_vec());
        assert!(r.len() >= 300);
    }

    #[test]
    fn request_is_acked_or_refused() {
        let l = leases();
        let (r, _) = l.reply(&request(3, MAC, Some([10, 0, 1, 5]))).unwrap();
        assert_eq!(options(&r[240..])[&53], vec![5]);
        let (r, _) = l.reply(&request(3, MAC, Some([10, 0, 1, 9]))).unwrap();
        assert_eq!(options(&r[240..])[&53], vec![6]);
        assert_eq!(&r[16..20], &[0, 0, 0, 0]);
    }

    #[test]
    fn strangers_and_garbage_get_nothing() {
        let l = leases();
        assert!(l.reply(&request(1, [2, 0, 0, 0, 0, 9], None)).is_none());
        assert!(l.reply(&[1, 2, 3]).is_none());
        assert!(l.reply(&request(7, MAC, None)).is_none());
        let mut bad = request(1, MAC, None);
        bad[236] = 0;
        assert!(l.reply(&bad).is_none());
        // A truncated option list is not a panic.
        let mut cut = request(1, MAC, None);
        cut.truncate(241);
        cut.push(53);
        assert!(l.reply(&cut).is_none());
        l.remove("0a:00:00:00:00:01");
        assert!(l.reply(&request(1, MAC, None)).is_none());
    }
}
