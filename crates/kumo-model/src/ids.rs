//! Resource ids: a prefix, a dash and 17 lowercase hex digits (`key-0a1b2c3d4e5f60718`), and
//! the resource type each prefix names.

/// Formats an id from random bits: the caller supplies the randomness, so this stays pure.
pub fn format_id(prefix: &str, random: u128) -> String {
    let hex = format!("{:032x}", random);
    format!("{prefix}-{}", &hex[..17])
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
];

/// The `resource-type` of an id, when the id is well formed: a known prefix, a dash, and 8 or
/// 17 lowercase hex digits (AWS's old and new id lengths).
pub fn resource_type(id: &str) -> Option<&'static str> {
    let (prefix, hex) = id.split_once('-')?;
    let well_formed = (hex.len() == 8 || hex.len() == 17)
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !well_formed {
        return None;
    }
    RESOURCE_TYPES
        .iter()
        .find(|(p, _)| *p == prefix)
        .map(|(_, t)| *t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_17_hex_digits() {
        let id = format_id("key", u128::MAX / 3);
        assert_eq!(id.len(), 4 + 17);
        assert_eq!(resource_type(&id), Some("key-pair"));
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
