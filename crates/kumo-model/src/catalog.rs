//! The instance-type catalog: AWS's published figures for every type (`data/instance_types.json`,
//! in the shape of DescribeInstanceTypes' `InstanceTypeInfo`), where each type is offered
//! (`data/offerings.tsv`), and the grammar of type names.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The catalog as AWS-shaped JSON: an array of `InstanceTypeInfo` objects sorted by name.
pub const INSTANCE_TYPES_JSON: &str = include_str!("../data/instance_types.json");
const OFFERINGS_TSV: &str = include_str!("../data/offerings.tsv");

/// The types offered in each zone of a region: (zone name, sorted type names).
pub type ZoneOfferings = Vec<(&'static str, Vec<&'static str>)>;

/// Offerings by region.
pub fn offerings(region: &str) -> Option<&'static ZoneOfferings> {
    static OFFERINGS: OnceLock<HashMap<&'static str, ZoneOfferings>> = OnceLock::new();
    OFFERINGS
        .get_or_init(|| {
            let mut map: HashMap<&'static str, ZoneOfferings> = HashMap::new();
            for line in OFFERINGS_TSV.lines().filter(|l| !l.starts_with('#')) {
                let mut parts = line.splitn(3, '\t');
                if let (Some(region), Some(zone), Some(types)) =
                    (parts.next(), parts.next(), parts.next())
                {
                    map.entry(region)
                        .or_default()
                        .push((zone, types.split(' ').filter(|t| !t.is_empty()).collect()));
                }
            }
            map
        })
        .get(region)
}

/// An instance type name taken apart: `m5dn.2xlarge` is family `m`, generation 5, attributes
/// `dn`, size `2xlarge`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeName<'a> {
    pub family: &'a str,
    pub generation: u32,
    pub attributes: &'a str,
    pub size: &'a str,
}

/// Parses `family generation [attributes] . size`; `None` for anything else.
pub fn parse_type_name(name: &str) -> Option<TypeName<'_>> {
    let (series, size) = name.split_once('.')?;
    if size.is_empty() || series.is_empty() {
        return None;
    }
    let fam_end = series.find(|c: char| !c.is_ascii_lowercase())?;
    if fam_end == 0 {
        return None;
    }
    let rest = &series[fam_end..];
    let gen_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    // High-memory types (`u-6tb1`) carry no generation digit before their attributes.
    let generation = if gen_end == 0 && rest.starts_with('-') {
        0
    } else {
        rest[..gen_end].parse().ok()?
    };
    Some(TypeName {
        family: &series[..fam_end],
        generation,
        attributes: &rest[gen_end..],
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names() {
        let t = parse_type_name("m5dn.2xlarge").unwrap();
        assert_eq!(
            (t.family, t.generation, t.attributes, t.size),
            ("m", 5, "dn", "2xlarge")
        );
        let t = parse_type_name("t3.micro").unwrap();
        assert_eq!((t.family, t.generation, t.attributes), ("t", 3, ""));
        let t = parse_type_name("u-6tb1.metal").unwrap();
        assert_eq!(t.family, "u");
        assert!(parse_type_name("t3").is_none());
        assert!(parse_type_name("3t.micro").is_none());
    }

    #[test]
    fn offerings_are_zone_scoped() {
        let o = offerings("us-east-1").unwrap();
        assert!(o
            .iter()
            .any(|(z, types)| *z == "us-east-1a" && types.contains(&"t3.micro")));
    }

    #[test]
    fn catalog_is_json_array() {
        assert!(INSTANCE_TYPES_JSON.starts_with('['));
        assert!(INSTANCE_TYPES_JSON.contains("\"InstanceType\":\"t3.micro\""));
    }
}
