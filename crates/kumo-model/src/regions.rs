//! AWS's commercial regions and their standard availability zones (`data/regions.tsv`,
//! `data/zones.tsv`; see `data/README.md` for their sources).

use std::sync::OnceLock;

const REGIONS_TSV: &str = include_str!("../data/regions.tsv");
const ZONES_TSV: &str = include_str!("../data/zones.tsv");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub name: &'static str,
    /// `opt-in-not-required` for regions every account has, `not-opted-in` for opt-in regions.
    pub opt_in_status: &'static str,
    /// The region's name as AWS writes it: `US East (N. Virginia)`.
    pub description: &'static str,
    pub zones: Vec<Zone>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub name: &'static str,
    pub id: &'static str,
}

impl Region {
    pub fn endpoint(&self) -> String {
        format!("ec2.{}.amazonaws.com", self.name)
    }

    /// Whether an account has the region without opting in.
    pub fn enabled_by_default(&self) -> bool {
        self.opt_in_status == "opt-in-not-required"
    }

    /// The long name of the region's zone group, as DescribeAvailabilityZones answers it:
    /// the region's description and the group's number (`US East (N. Virginia) 1` for
    /// `us-east-1-zg-1`).
    pub fn group_long_name(&self) -> String {
        format!("{} 1", self.description)
    }
}

fn rows(tsv: &'static str) -> impl Iterator<Item = Vec<&'static str>> {
    tsv.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split('\t').collect())
}

/// Every commercial region, in name order.
pub fn all() -> &'static [Region] {
    static REGIONS: OnceLock<Vec<Region>> = OnceLock::new();
    REGIONS.get_or_init(|| {
        let mut regions: Vec<Region> = rows(REGIONS_TSV)
            .filter(|r| r.len() >= 2)
            .map(|r| Region {
                name: r[0],
                opt_in_status: r[1],
                description: r.get(2).copied().unwrap_or_default(),
                zones: Vec::new(),
            })
            .collect();
        regions.sort_by_key(|r| r.name);
        for z in rows(ZONES_TSV).filter(|r| r.len() >= 3) {
            if let Some(region) = regions.iter_mut().find(|r| r.name == z[0]) {
                region.zones.push(Zone {
                    name: z[1],
                    id: z[2],
                });
            }
        }
        regions
    })
}

pub fn get(name: &str) -> Option<&'static Region> {
    all().iter().find(|r| r.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_and_zones_load() {
        let r = get("eu-west-1").unwrap();
        assert!(r.enabled_by_default());
        assert_eq!(r.zones[0].name, "eu-west-1a");
        assert!(r.zones.iter().all(|z| z.name.starts_with("eu-west-1")));
        assert!(!get("af-south-1").unwrap().enabled_by_default());
        assert_eq!(
            get("us-east-1").unwrap().group_long_name(),
            "US East (N. Virginia) 1"
        );
        assert_eq!(
            get("ap-southeast-2").unwrap().group_long_name(),
            "Asia Pacific (Sydney) 1"
        );
        assert!(all().iter().all(|r| !r.description.is_empty()));
        assert!(all().len() >= 30);
        assert!(
            all().iter().all(|r| !r.zones.is_empty()),
            "every region has zones"
        );
    }
}
