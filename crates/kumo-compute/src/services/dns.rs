//! The VPC's DNS resolver at its base address plus two (AWS's Route 53 Resolver address), one
//! per VPC namespace. It answers what a VPC resolves without the internet: the private DNS
//! names of instances (`ip-10-0-1-5.eu-west-1.compute.internal`, `ip-….ec2.internal`), the
//! resource names of those that ask for their A record (`i-0123….eu-west-1.compute.internal`)
//! and their public names (`ec2-198-51-100-7.compute-1.amazonaws.com`, to the private
//! address, as inside a VPC), and the names of the VPC's interface endpoints (each endpoint's
//! own names, and with private DNS on the service's public name, `ec2.eu-west-1.amazonaws.com`),
//! with the addresses of the endpoint's interfaces. Anything else is refused at once, so the
//! guest's lookups fail fast instead of timing out.

use std::net::{Ipv4Addr, Ipv6Addr};

/// What a VPC's resolver knows beyond the IP names, which stand for themselves.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Known {
    /// (public address, private address).
    pub public: Vec<(String, String)>,
    /// (instance id, primary private address) of the instances whose resource name has an
    /// A record.
    pub names: Vec<(String, String)>,
    /// (name, address) of the VPC's interface endpoints, lowercase: a name with several
    /// interfaces has several entries, answered together.
    pub endpoints: Vec<(String, Ipv4Addr)>,
    /// (instance id, primary IPv6 address) of the instances whose resource name has an AAAA
    /// record.
    pub names6: Vec<(String, Ipv6Addr)>,
}

/// The IPv6 address a resource name (`i-….compute.internal`) stands for, if its instance
/// asked for the AAAA record.
pub fn resolve6(name: &str, known: &Known) -> Option<Ipv6Addr> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let host = name.split('.').next()?;
    let internal = name.ends_with(".compute.internal") || name.ends_with(".ec2.internal");
    if !(host.starts_with("i-") && internal) {
        return None;
    }
    known
        .names6
        .iter()
        .find(|(id, _)| id == host)
        .map(|(_, a)| *a)
}

/// Every address a name stands for: an endpoint's name's interfaces, else [`resolve`]'s.
pub fn resolve_all(name: &str, known: &Known) -> Vec<Ipv4Addr> {
    let lower = name.trim_end_matches('.').to_ascii_lowercase();
    let at: Vec<Ipv4Addr> = known
        .endpoints
        .iter()
        .filter(|(n, _)| *n == lower)
        .map(|(_, a)| *a)
        .collect();
    if !at.is_empty() {
        return at;
    }
    resolve(name, known).into_iter().collect()
}

/// The address a name stands for, if it is an EC2 host name.
pub fn resolve(name: &str, known: &Known) -> Option<Ipv4Addr> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let host = name.split('.').next()?;
    let internal = name.ends_with(".compute.internal") || name.ends_with(".ec2.internal");
    if let Some(ip) = host.strip_prefix("ip-") {
        return internal
            .then(|| ip.replace('-', ".").parse().ok())
            .flatten();
    }
    if host.starts_with("i-") && internal {
        return known
            .names
            .iter()
            .find(|(id, _)| id == host)
            .and_then(|(_, addr)| addr.parse().ok());
    }
    let public = &known.public;
    if let Some(ip) = host.strip_prefix("ec2-") {
        if name.ends_with(".amazonaws.com") {
            let dotted = ip.replace('-', ".");
            // Inside the VPC a public name resolves to the private address.
            let private = public
                .iter()
                .find(|(p, _)| *p == dotted)
                .map(|(_, q)| q.clone());
            return private.unwrap_or(dotted).parse().ok();
        }
    }
    None
}

/// The answer to one DNS query packet, or None for what is not a query.
pub fn answer(query: &[u8], known: &Known) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return None;
    }
    let qdcount = u16::from_be_bytes([query[4], query[5]]);
    // Read the first question's name.
    let mut i = 12;
    let mut labels: Vec<String> = Vec::new();
    loop {
        let len = *query.get(i)? as usize;
        if len == 0 {
            i += 1;
            break;
        }
        if len & 0xc0 != 0 {
            return None;
        }
        labels.push(String::from_utf8_lossy(query.get(i + 1..i + 1 + len)?).into_owned());
        i += 1 + len;
    }
    let qtype = u16::from_be_bytes([*query.get(i)?, *query.get(i + 1)?]);
    let qclass = u16::from_be_bytes([*query.get(i + 2)?, *query.get(i + 3)?]);
    let question_end = i + 4;
    let name = labels.join(".");
    let found = resolve_all(&name, known);
    let found6 = resolve6(&name, known);
    let mut out = Vec::with_capacity(question_end + 28);
    out.extend_from_slice(&query[..2]);
    // QR, the query's opcode and RD, RA; rcode: 0 answer (or a name with records of the other
    // type only), 3 NXDOMAIN (our names), 5 refused.
    let rcode = match (found.is_empty() && found6.is_none(), qdcount) {
        (_, 0) => 1,
        (false, _) => 0,
        (true, _) if name.ends_with("compute.internal") || name.ends_with("ec2.internal") => 3,
        (true, _) => 5,
    };
    out.push(0x80 | (query[2] & 0x79) | 0x04);
    out.push(0x80 | rcode);
    out.extend_from_slice(&[0, 1]);
    let answers: u16 = match (qtype, qclass) {
        (1, 1) => found.len().min(32) as u16,
        (28, 1) => u16::from(found6.is_some()),
        _ => 0,
    };
    out.extend_from_slice(&answers.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&query[12..question_end]);
    if qtype == 28 {
        if let (Some(ip), 1) = (found6, answers) {
            // The question's name, type AAAA, class IN, TTL 60, 16 bytes.
            out.extend_from_slice(&[0xc0, 0x0c, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16]);
            out.extend_from_slice(&ip.octets());
        }
        return Some(out);
    }
    for ip in found.iter().take(answers as usize) {
        // A pointer to the question's name, type A, class IN, TTL 60, 4 bytes.
        out.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        out.extend_from_slice(&ip.octets());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        q
    }

    #[test]
    fn names() {
        let public = Known {
            public: vec![("198.51.100.7".to_string(), "10.0.1.5".to_string())],
            names: vec![("i-0123456789abcdef0".to_string(), "10.0.1.6".to_string())],
            ..Known::default()
        };
        assert_eq!(
            resolve("ip-10-0-1-5.eu-west-1.compute.internal", &public),
            Some(Ipv4Addr::new(10, 0, 1, 5))
        );
        assert_eq!(
            resolve("IP-172-31-0-4.ec2.internal.", &public),
            Some(Ipv4Addr::new(172, 31, 0, 4))
        );
        assert_eq!(
            resolve("ec2-198-51-100-7.compute-1.amazonaws.com", &public),
            Some(Ipv4Addr::new(10, 0, 1, 5))
        );
        assert_eq!(resolve("example.com", &public), None);
        assert_eq!(resolve("ip-nope.eu-west-1.compute.internal", &public), None);
        // A resource name resolves when its instance asked for the A record, in either
        // internal domain, and no other does.
        assert_eq!(
            resolve("i-0123456789abcdef0.eu-west-1.compute.internal", &public),
            Some(Ipv4Addr::new(10, 0, 1, 6))
        );
        assert_eq!(
            resolve("I-0123456789ABCDEF0.ec2.internal.", &public),
            Some(Ipv4Addr::new(10, 0, 1, 6))
        );
        assert_eq!(
            resolve("i-0000000000000000a.eu-west-1.compute.internal", &public),
            None
        );
        assert_eq!(resolve("i-0123456789abcdef0.example.com", &public), None);
    }

    #[test]
    fn packets() {
        let a = answer(
            &query("ip-10-0-1-5.eu-west-1.compute.internal", 1),
            &Known::default(),
        )
        .unwrap();
        assert_eq!(&a[..2], &[0x12, 0x34]);
        assert_eq!(a[3] & 0x0f, 0);
        assert_eq!(u16::from_be_bytes([a[6], a[7]]), 1);
        assert_eq!(&a[a.len() - 4..], &[10, 0, 1, 5]);
        // AAAA for a known name: no answer, no error.
        let v6 = answer(
            &query("ip-10-0-1-5.eu-west-1.compute.internal", 28),
            &Known::default(),
        )
        .unwrap();
        assert_eq!((v6[3] & 0x0f, u16::from_be_bytes([v6[6], v6[7]])), (0, 0));
        let refused = answer(&query("example.com", 1), &Known::default()).unwrap();
        assert_eq!(refused[3] & 0x0f, 5);
        let nx = answer(
            &query("ip-x.eu-west-1.compute.internal", 1),
            &Known::default(),
        )
        .unwrap();
        assert_eq!(nx[3] & 0x0f, 3);
        assert!(answer(&[0; 5], &Known::default()).is_none());
    }

    #[test]
    fn endpoint_names_answer_every_interface() {
        let known = Known {
            endpoints: vec![
                (
                    "ec2.eu-west-1.amazonaws.com".into(),
                    Ipv4Addr::new(10, 0, 1, 9),
                ),
                (
                    "ec2.eu-west-1.amazonaws.com".into(),
                    Ipv4Addr::new(10, 0, 2, 9),
                ),
            ],
            ..Known::default()
        };
        let a = answer(&query("EC2.eu-west-1.amazonaws.com", 1), &known).unwrap();
        assert_eq!(a[3] & 0x0f, 0);
        assert_eq!(u16::from_be_bytes([a[6], a[7]]), 2);
        assert_eq!(&a[a.len() - 4..], &[10, 0, 2, 9]);
        assert_eq!(&a[a.len() - 20..a.len() - 16], &[10, 0, 1, 9]);
        // An AAAA record for an instance that asked for one, and none for others.
        let six = Known {
            names6: vec![("i-0123456789abcdef0".into(), "2001:db8::5".parse().unwrap())],
            ..Known::default()
        };
        let q = answer(
            &query("i-0123456789abcdef0.eu-west-1.compute.internal", 28),
            &six,
        )
        .unwrap();
        assert_eq!((q[3] & 0x0f, u16::from_be_bytes([q[6], q[7]])), (0, 1));
        assert_eq!(
            &q[q.len() - 16..],
            &"2001:db8::5".parse::<Ipv6Addr>().unwrap().octets()
        );
        // Its A query has no answer but is no error: the name exists.
        let a4 = answer(
            &query("i-0123456789abcdef0.eu-west-1.compute.internal", 1),
            &six,
        )
        .unwrap();
        assert_eq!((a4[3] & 0x0f, u16::from_be_bytes([a4[6], a4[7]])), (0, 0));
        let other = answer(
            &query("i-0000000000000000a.eu-west-1.compute.internal", 28),
            &six,
        )
        .unwrap();
        assert_eq!(other[3] & 0x0f, 3);
        // Without an endpoint the service's name is not the VPC's to answer.
        let none = answer(&query("ec2.eu-west-1.amazonaws.com", 1), &Known::default()).unwrap();
        assert_eq!(none[3] & 0x0f, 5);
    }
}
