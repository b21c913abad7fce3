//! IPv4 CIDR blocks: parsing, containment, overlap.

use std::fmt;
use std::net::Ipv4Addr;

/// An IPv4 network: a base address aligned to its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    base: u32,
    len: u8,
}

/// Why a CIDR string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CidrError {
    /// Not `a.b.c.d/n` with n in 0..=32.
    Malformed,
    /// Host bits are set (`10.0.0.1/16`).
    NotAligned,
}

impl Cidr {
    pub fn new(base: u32, len: u8) -> Option<Cidr> {
        if len > 32 || base & !mask(len) != 0 {
            return None;
        }
        Some(Cidr { base, len })
    }

    /// Parses `a.b.c.d/n`; host bits must be zero.
    pub fn parse(s: &str) -> Result<Cidr, CidrError> {
        let (ip, len) = s.split_once('/').ok_or(CidrError::Malformed)?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| CidrError::Malformed)?;
        if len.is_empty() || len.len() > 2 || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CidrError::Malformed);
        }
        let len: u8 = len.parse().map_err(|_| CidrError::Malformed)?;
        if len > 32 {
            return Err(CidrError::Malformed);
        }
        let base = u32::from(ip);
        if base & !mask(len) != 0 {
            return Err(CidrError::NotAligned);
        }
        Ok(Cidr { base, len })
    }

    pub fn base(self) -> u32 {
        self.base
    }

    pub fn prefix_len(self) -> u8 {
        self.len
    }

    /// Number of addresses.
    pub fn size(self) -> u64 {
        1u64 << (32 - self.len as u32)
    }

    /// The last address.
    pub fn last(self) -> u32 {
        (self.base as u64 + self.size() - 1) as u32
    }

    pub fn contains_addr(self, a: u32) -> bool {
        a & mask(self.len) == self.base
    }

    pub fn contains(self, other: Cidr) -> bool {
        other.len >= self.len && self.contains_addr(other.base)
    }

    pub fn overlaps(self, other: Cidr) -> bool {
        self.contains(other) || other.contains(self)
    }
}

pub fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len as u32)
    }
}

pub fn addr_to_string(a: u32) -> String {
    Ipv4Addr::from(a).to_string()
}

/// Parses a dotted-quad IPv4 address.
pub fn parse_addr(s: &str) -> Option<u32> {
    s.parse::<Ipv4Addr>().ok().map(u32::from)
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.len)
    }
}

/// Whether a VPC CIDR lies in a range AWS refuses (RFC 1918 and public ranges are allowed;
/// 0.0.0.0/8, loopback, link-local, multicast and the like are not).
pub fn is_restricted(c: Cidr) -> bool {
    const RESTRICTED: &[(u32, u8)] = &[
        (0x0000_0000, 8),  // 0.0.0.0/8
        (0x7f00_0000, 8),  // 127.0.0.0/8
        (0xa9fe_0000, 16), // 169.254.0.0/16
        (0xe000_0000, 4),  // 224.0.0.0/4
        (0xf000_0000, 4),  // 240.0.0.0/4
    ];
    RESTRICTED
        .iter()
        .any(|&(b, l)| Cidr { base: b, len: l }.overlaps(c))
}

/// An IPv6 CIDR block in its canonical form (`2001:db8::/32`), its host bits cleared; `None`
/// when the text is not an IPv6 address with a prefix length of 0 to 128.
pub fn canonical_ipv6(text: &str) -> Option<String> {
    let (addr, len) = text.split_once('/')?;
    let len: u32 = len.parse().ok().filter(|l| *l <= 128)?;
    let addr: std::net::Ipv6Addr = addr.parse().ok()?;
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    let net = std::net::Ipv6Addr::from(u128::from(addr) & mask);
    Some(format!("{net}/{len}"))
}

/// An IPv6 CIDR block: a base address with its host bits clear, and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr6 {
    base: u128,
    len: u8,
}

impl Cidr6 {
    /// Parses `addr/len`; host bits set is an error, as for [`Cidr::parse`].
    pub fn parse(s: &str) -> Result<Cidr6, CidrError> {
        let (addr, len) = s.split_once('/').ok_or(CidrError::Malformed)?;
        let len: u8 = len.parse().map_err(|_| CidrError::Malformed)?;
        if len > 128 {
            return Err(CidrError::Malformed);
        }
        let base = u128::from(
            addr.parse::<std::net::Ipv6Addr>()
                .map_err(|_| CidrError::Malformed)?,
        );
        if base & !mask6(len) != 0 {
            return Err(CidrError::NotAligned);
        }
        Ok(Cidr6 { base, len })
    }

    /// Parses `addr/len` clearing host bits (AWS takes `2001:db8::1/64` as `2001:db8::/64`
    /// where it canonicalises, as route destinations).
    pub fn parse_clearing(s: &str) -> Result<Cidr6, CidrError> {
        let (addr, len) = s.split_once('/').ok_or(CidrError::Malformed)?;
        let len: u8 = len
            .parse()
            .ok()
            .filter(|l| *l <= 128)
            .ok_or(CidrError::Malformed)?;
        let addr: std::net::Ipv6Addr = addr.parse().map_err(|_| CidrError::Malformed)?;
        Cidr6::new(u128::from(addr) & mask6(len), len).ok_or(CidrError::Malformed)
    }

    pub fn new(base: u128, len: u8) -> Option<Cidr6> {
        (len <= 128 && base & !mask6(len) == 0).then_some(Cidr6 { base, len })
    }

    pub fn prefix_len(self) -> u8 {
        self.len
    }

    /// The block's first address.
    pub fn base(self) -> u128 {
        self.base
    }

    pub fn contains_addr(self, addr: u128) -> bool {
        addr & mask6(self.len) == self.base
    }

    pub fn contains(self, other: Cidr6) -> bool {
        other.len >= self.len && other.base & mask6(self.len) == self.base
    }

    pub fn overlaps(self, other: Cidr6) -> bool {
        self.contains(other) || other.contains(self)
    }
}

fn mask6(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

impl std::fmt::Display for Cidr6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", std::net::Ipv6Addr::from(self.base), self.len)
    }
}

/// Kumo's pool of Amazon-provided IPv6 blocks: the /56s of RFC 3849's documentation prefix
/// 2001:db8::/32, which no real network routes (as the public IPv4 pool takes RFC 5737's).
/// `index` is below 2^24.
pub fn ipv6_pool_block(index: u32) -> Option<Cidr6> {
    let base = 0x2001_0db8u128 << 96;
    (index < 1 << 24).then(|| Cidr6 {
        base: base | (u128::from(index) << 72),
        len: 56,
    })
}

/// The pool index of a /56 of [`ipv6_pool_block`]'s, or None for any other block.
pub fn ipv6_pool_index(text: &str) -> Option<u32> {
    let c = Cidr6::parse(text).ok().filter(|c| c.len == 56)?;
    let prefix = 0x2001_0db8u128 << 96;
    (c.base >> 96 << 96 == prefix).then_some(((c.base >> 72) & 0xff_ffff) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_blocks_parse_contain_and_come_from_the_documentation_prefix() {
        let vpc = Cidr6::parse("2001:db8:0:100::/56").unwrap();
        let sub = Cidr6::parse("2001:db8:0:1ff::/64").unwrap();
        assert!(vpc.contains(sub) && vpc.overlaps(sub) && !sub.contains(vpc));
        assert!(!vpc.contains(Cidr6::parse("2001:db8:0:200::/64").unwrap()));
        assert_eq!(Cidr6::parse("2001:db8::1/64"), Err(CidrError::NotAligned));
        assert_eq!(
            Cidr6::parse_clearing("2001:db8::1/64").map(|c| c.to_string()),
            Ok("2001:db8::/64".to_string())
        );
        assert_eq!(
            Cidr6::parse_clearing("2001:db8::/129"),
            Err(CidrError::Malformed)
        );
        assert!(Cidr6::parse("10.0.0.0/8").is_err() && Cidr6::parse("::/129").is_err());
        assert_eq!(ipv6_pool_block(0).unwrap().to_string(), "2001:db8::/56");
        assert_eq!(
            ipv6_pool_block(1).unwrap().to_string(),
            "2001:db8:0:100::/56"
        );
        assert_eq!(
            ipv6_pool_block((1 << 24) - 1).unwrap().to_string(),
            "2001:db8:ffff:ff00::/56"
        );
        assert!(ipv6_pool_block(1 << 24).is_none());
        assert!(Cidr6::parse("2001:db8::/32")
            .unwrap()
            .contains(ipv6_pool_block(77).unwrap()));
    }

    #[test]
    fn ipv6_blocks_are_canonical_with_host_bits_cleared() {
        assert_eq!(canonical_ipv6("::/0").as_deref(), Some("::/0"));
        assert_eq!(
            canonical_ipv6("2001:DB8:0:0::1/32").as_deref(),
            Some("2001:db8::/32")
        );
        assert_eq!(
            canonical_ipv6("2001:db8::1/128").as_deref(),
            Some("2001:db8::1/128")
        );
        for bad in ["2001:db8::/129", "2001:db8::", "10.0.0.0/8", "::/x", ""] {
            assert_eq!(canonical_ipv6(bad), None, "{bad}");
        }
    }

    #[test]
    fn parses_and_checks_alignment() {
        let c = Cidr::parse("10.0.0.0/16").unwrap();
        assert_eq!(c.size(), 65536);
        assert_eq!(c.to_string(), "10.0.0.0/16");
        assert_eq!(addr_to_string(c.last()), "10.0.255.255");
        assert_eq!(Cidr::parse("10.0.0.1/16"), Err(CidrError::NotAligned));
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0/16",
            "x/1",
            "10.0.0.0/",
            "10.0.0.0/+1",
        ] {
            assert_eq!(Cidr::parse(bad), Err(CidrError::Malformed), "{bad}");
        }
    }

    #[test]
    fn containment_and_overlap() {
        let vpc = Cidr::parse("10.0.0.0/16").unwrap();
        let a = Cidr::parse("10.0.1.0/24").unwrap();
        let b = Cidr::parse("10.0.1.128/25").unwrap();
        let c = Cidr::parse("10.1.0.0/24").unwrap();
        assert!(vpc.contains(a) && a.contains(b) && !a.contains(vpc));
        assert!(a.overlaps(b) && b.overlaps(a) && !a.overlaps(c));
        assert!(vpc.contains_addr(parse_addr("10.0.255.1").unwrap()));
        assert!(is_restricted(Cidr::parse("127.0.0.0/16").unwrap()));
        assert!(!is_restricted(Cidr::parse("172.31.0.0/16").unwrap()));
    }
}
