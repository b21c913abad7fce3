//! How the host reaches the VPCs' private addresses: a pure plan of its routes.
//!
//! Each VPC with a guest on this host has a link from the host into its namespace
//! ([`super::vpc`]). Two ways in:
//!
//! - **The host's main table** sends each of a VPC's CIDRs (its own, and those of its subnets
//!   outside it, from a secondary block) into the VPC's link, unless another VPC here
//!   overlaps it. Every account's default VPC is 172.31.0.0/16, and the host cannot tell which
//!   VPC a bare address means: an overlapping CIDR is `unreachable` in the main table for every
//!   VPC that has it, so a connection fails at once ("No route to host") instead of reaching
//!   another account's instance, and nothing leaves by the host's default route.
//! - **A table per VPC**, always: the host's end of each link has an address of its own in
//!   100.127.0.0/16, and a rule sends what is sent *from* that address to a table that routes
//!   the VPC's CIDRs into that link. `ssh -b <that address> <private address>` (what `kumo
//!   ssh` runs) reaches the instance in that VPC and no other, overlap or not, through the
//!   VPC's forward path where its security groups apply, as any traffic from the host does.
//!
//! Kumo's routes in the main table carry a metric of their own per server ([`metric`]), so a
//! server replaces (`ip route replace`) and sweeps only its own, and its `unreachable` routes,
//! which belong to no link and would outlive a killed server, are found again by the next.

use std::collections::BTreeMap;

/// An IPv4 CIDR: (network address, prefix length).
pub(crate) type Cidr = (u32, u8);

/// Where the host's main table sends one CIDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MainRoute {
    /// Into the VPC behind the link numbered so.
    Link(u32),
    /// Nowhere: two VPCs here have addresses in it.
    Unreachable,
}

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len)
    }
}

/// Whether two CIDRs share an address.
pub(crate) fn overlap(a: Cidr, b: Cidr) -> bool {
    let m = mask(a.1.min(b.1));
    a.0 & m == b.0 & m
}

/// The main table's routes for the VPCs here, each given as its link's number and its CIDRs.
pub(crate) fn main_routes(vpcs: &[(u32, Vec<Cidr>)]) -> BTreeMap<Cidr, MainRoute> {
    let mut out = BTreeMap::new();
    for (link, cidrs) in vpcs {
        for &c in cidrs {
            let shared = vpcs
                .iter()
                .filter(|(l, _)| l != link)
                .any(|(_, other)| other.iter().any(|&o| overlap(c, o)));
            let route = if shared {
                MainRoute::Unreachable
            } else {
                MainRoute::Link(*link)
            };
            out.insert((c.0 & mask(c.1), c.1), route);
        }
    }
    out
}

/// The `ip` lines (for `ip -batch`) that take the main table from `had` to `want`: a changed
/// or new CIDR is replaced, a gone one deleted. `via(link)` gives a link's `via <gw> dev
/// <if>`; a link already deleted took its routes with it, so a deletion may find none.
pub(crate) fn main_table_lines(
    had: &BTreeMap<Cidr, MainRoute>,
    want: &BTreeMap<Cidr, MainRoute>,
    metric: u32,
    via: impl Fn(u32) -> Option<String>,
) -> Vec<String> {
    let mut lines = Vec::new();
    for c in had.keys().filter(|c| !want.contains_key(c)) {
        lines.push(format!("route delete {} metric {metric}", show(*c)));
    }
    for (c, r) in want {
        if had.get(c) == Some(r) {
            continue;
        }
        match r {
            MainRoute::Unreachable => lines.push(format!(
                "route replace unreachable {} metric {metric}",
                show(*c)
            )),
            MainRoute::Link(l) => match via(*l) {
                Some(v) => lines.push(format!("route replace {} {v} metric {metric}", show(*c))),
                None => lines.push(format!("route delete {} metric {metric}", show(*c))),
            },
        }
    }
    lines
}

/// A CIDR as `ip` writes it.
pub(crate) fn show(c: Cidr) -> String {
    format!("{}/{}", std::net::Ipv4Addr::from(c.0), c.1)
}

/// The byte of a server's name prefix (`k3f` → 0x3f): what keeps its rules, tables and
/// metrics apart from another server's.
fn tag(prefix: &str) -> u32 {
    u32::from_str_radix(prefix.trim_start_matches('k'), 16).unwrap_or(0) & 0xff
}

/// The metric of a server's routes in the main table.
pub(crate) fn metric(prefix: &str) -> u32 {
    0x6b00 + tag(prefix)
}

/// The priority of a server's rules (before the main table's 32766).
pub(crate) fn rule_priority(prefix: &str) -> u32 {
    20000 + tag(prefix)
}

/// The routing table of a server's link numbered `link`.
pub(crate) fn table(prefix: &str, link: u32) -> u32 {
    0x6b00_0000 + (tag(prefix) << 16) + (link & 0xffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        crate::host::net::parse_cidr(s).unwrap()
    }

    #[test]
    fn cidrs_overlap_when_they_share_an_address() {
        assert!(overlap(c("172.31.0.0/16"), c("172.31.0.0/16")));
        assert!(overlap(c("10.0.0.0/16"), c("10.0.5.0/24")));
        assert!(overlap(c("10.0.5.0/24"), c("10.0.0.0/8")));
        assert!(!overlap(c("10.0.0.0/16"), c("10.1.0.0/16")));
        assert!(!overlap(c("10.0.0.0/24"), c("10.0.1.0/24")));
        assert!(overlap(c("0.0.0.0/0"), c("192.0.2.0/24")));
    }

    #[test]
    fn a_cidr_only_one_vpc_has_is_routed_to_it_and_a_shared_one_nowhere() {
        // Two accounts' default VPCs and a VPC of its own, whose secondary block's subnet
        // overlaps a third VPC.
        let plan = main_routes(&[
            (0, vec![c("172.31.0.0/16")]),
            (1, vec![c("172.31.0.0/16")]),
            (2, vec![c("10.0.0.0/16"), c("100.64.1.0/24")]),
            (3, vec![c("100.64.0.0/16")]),
            (4, vec![c("192.168.0.0/16")]),
        ]);
        assert_eq!(plan[&c("172.31.0.0/16")], MainRoute::Unreachable);
        assert_eq!(plan[&c("10.0.0.0/16")], MainRoute::Link(2));
        assert_eq!(plan[&c("100.64.1.0/24")], MainRoute::Unreachable);
        assert_eq!(plan[&c("100.64.0.0/16")], MainRoute::Unreachable);
        assert_eq!(plan[&c("192.168.0.0/16")], MainRoute::Link(4));
        assert_eq!(plan.len(), 5);
        // Alone, the default VPC is routed to its link.
        let alone = main_routes(&[(7, vec![c("172.31.0.0/16")])]);
        assert_eq!(alone[&c("172.31.0.0/16")], MainRoute::Link(7));
    }

    #[test]
    fn only_what_changed_is_written() {
        let via = |l: u32| Some(format!("via 100.127.0.{} dev k3fh{l}", l * 4 + 2));
        let one = main_routes(&[(0, vec![c("172.31.0.0/16")])]);
        let lines = main_table_lines(&BTreeMap::new(), &one, 27455, via);
        assert_eq!(
            lines,
            ["route replace 172.31.0.0/16 via 100.127.0.2 dev k3fh0 metric 27455"]
        );
        // A second default VPC makes the CIDR unreachable; nothing else is touched.
        let two = main_routes(&[(0, vec![c("172.31.0.0/16")]), (1, vec![c("172.31.0.0/16")])]);
        assert_eq!(
            main_table_lines(&one, &two, 27455, via),
            ["route replace unreachable 172.31.0.0/16 metric 27455"]
        );
        assert!(main_table_lines(&two, &two, 27455, via).is_empty());
        // Back to one: the route into its link again; a CIDR gone is deleted.
        assert_eq!(
            main_table_lines(&two, &BTreeMap::new(), 27455, via),
            ["route delete 172.31.0.0/16 metric 27455"]
        );
    }

    #[test]
    fn servers_keep_apart() {
        assert_eq!(metric("k3f"), 0x6b3f);
        assert_eq!(rule_priority("k00"), 20000);
        assert_ne!(table("k3f", 1), table("k40", 1));
        assert_ne!(table("k3f", 1), table("k3f", 2));
    }
}
