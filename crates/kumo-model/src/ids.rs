//! Resource ids: a prefix, a dash and 17 lowercase hex digits (`key-0a1b2c3d4e5f60718`), and
//! the resource type each prefix names.

/// Formats an id whose digits after the leading `0` start with the time, in 4 ms steps that
/// wrap every 18.6 hours, and end with 40 random bits. Ids made close together in time sort
/// close together, so the store's B-trees take a batch of new rows on a few pages instead of
/// one random page per row (a 100-instance launch wrote 5.8 MB of WAL with random ids). AWS
/// ids are opaque, so clients see no difference: still `0` and 16 more hex digits.
pub fn format_timed_id(prefix: &str, now_ms: u64, random: u64) -> String {
    let slot = (now_ms / 4) & 0xff_ffff;
    format!("{prefix}-0{slot:06x}{:010x}", random & 0xff_ffff_ffff)
}

/// A version-4 UUID in its usual form from 16 random bytes (request ids, SSM command ids).
pub fn format_uuid(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The resource types Kumo knows, with their id prefix and the `resource-type` name that
/// DescribeTags shows.
pub const RESOURCE_TYPES: &[(&str, &str)] = &[
    ("key", "key-pair"),
    ("i", "instance"),
    ("ami", "image"),
    ("vol", "volume"),
    ("snap", "snapshot"),
    ("vpc", "vpc"),
    ("subnet", "subnet"),
    ("sg", "security-group"),
    ("eni", "network-interface"),
    ("igw", "internet-gateway"),
    ("rtb", "route-table"),
    ("eipalloc", "elastic-ip"),
    ("nat", "natgateway"),
    ("acl", "network-acl"),
    ("dopt", "dhcp-options"),
    ("scr", "subnet-cidr-reservation"),
    ("pl", "prefix-list"),
    ("lt", "launch-template"),
    ("pg", "placement-group"),
    ("cr", "capacity-reservation"),
    ("pcx", "vpc-peering-connection"),
    ("vgw", "vpn-gateway"),
    ("cgw", "customer-gateway"),
    ("tmt", "traffic-mirror-target"),
    ("tmf", "traffic-mirror-filter"),
    ("tmfr", "traffic-mirror-filter-rule"),
    ("tms", "traffic-mirror-session"),
    ("vpce", "vpc-endpoint"),
    ("eigw", "egress-only-internet-gateway"),
];

/// Whether `id` has AWS's form for `prefix`: the prefix, a dash, and 8 or 17 lowercase hex
/// digits (AWS's old and new id lengths).
pub fn has_form(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hex| {
            (hex.len() == 8 || hex.len() == 17)
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// The `resource-type` of an id, when the id is well formed for a known prefix.
pub fn resource_type(id: &str) -> Option<&'static str> {
    let (prefix, _) = id.split_once('-')?;
    RESOURCE_TYPES
        .iter()
        .find(|(p, _)| *p == prefix && has_form(p, id))
        .map(|(_, t)| *t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_need_the_prefix_and_8_or_17_hex_digits() {
        assert!(has_form("sg", "sg-12345678"));
        assert!(has_form("eni-attach", "eni-attach-0123456789abcdef0"));
        assert!(!has_form("sg", "sg-1234567"));
        assert!(!has_form("sg", "sg-1234567G"));
        assert!(!has_form("sg", "sgx-12345678"));
        assert!(!has_form("sg", ""));
        assert!(!has_form("eni", "eni-attach-0123456789abcdef0"));
    }

    #[test]
    fn ids_have_17_hex_digits() {
        let id = format_timed_id("key", u64::MAX, u64::MAX / 3);
        assert_eq!(id.len(), 4 + 17);
        assert_eq!(resource_type(&id), Some("key-pair"));
    }

    #[test]
    fn timed_ids_sort_by_time_and_keep_aws_form() {
        let a = format_timed_id("i", 1_000_000, u64::MAX);
        let b = format_timed_id("i", 1_000_004, 0);
        assert_eq!(a.len(), 2 + 17);
        assert!(a.starts_with("i-0"));
        assert!(a < b, "{a} {b}");
        assert_eq!(resource_type(&a), Some("instance"));
        // Same 4 ms slot: only the random part differs.
        let c = format_timed_id("vol", 8, 0xabc);
        assert_eq!(c, "vol-00000020000000abc");
        // The slot wraps after 2^24 steps instead of growing past 17 digits.
        assert_eq!(format_timed_id("i", 4 << 24, 1).len(), 2 + 17);
    }

    #[test]
    fn uuids_are_version_4() {
        let u = format_uuid([0xff; 16]);
        assert_eq!(u, "ffffffff-ffff-4fff-bfff-ffffffffffff");
    }

    #[test]
    fn malformed_ids_have_no_type() {
        for bad in [
            "key-XYZ",
            "key-",
            "nope-0123456789abcdef0",
            "i-0123",
            "i-0123456789ABCDEF0",
            "2014-10-21",
        ] {
            assert_eq!(resource_type(bad), None, "{bad}");
        }
        assert_eq!(resource_type("i-0123abcd"), Some("instance"));
    }
}
