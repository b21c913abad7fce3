//! Security groups as nftables rules in a VPC's network namespace. Every packet between an
//! instance and anything else is routed through that namespace, so one `forward` chain sees
//! it: replies of tracked connections pass; a new connection must pass the sender's egress
//! rules (if the sender is an instance) and then the receiver's ingress rules (if the
//! receiver is one); a connection to the host passes the sender's egress only. Anything else
//! is dropped, so an instance whose rules are not installed yet takes no traffic. A rule set
//! replaces the last one atomically (`nft -f`).
//!
//! Network ACLs are a second base chain on the same hook, run first (priority -10): stateless,
//! so every packet that crosses a subnet's boundary (replies too) must pass the sending
//! subnet's outbound entries and the receiving subnet's inbound ones, lowest rule number
//! first, the first match deciding; a packet no entry matches is dropped (AWS's `*` rule).
//! Traffic within one subnet is not evaluated, and neither is traffic to the VPC's own
//! services (the resolver, DHCP, the metadata service), which the namespace answers itself
//! rather than forwards, as AWS's ACLs do not filter them.

use serde::{Deserialize, Serialize};

/// One allow rule: a protocol (`-1` for all, `tcp`, `udp`, `icmp`, or a number), its port
/// range (ICMP type and code for `icmp`), and the peers it admits: CIDRs, with security-group
/// references already resolved to their members' addresses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub protocol: String,
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    pub peers: Vec<String>,
}

/// An interface: its addresses (and delegated prefixes) and the union of its groups' rules.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Interface {
    pub addrs: Vec<String>,
    pub ingress: Vec<Rule>,
    pub egress: Vec<Rule>,
}

/// One network ACL entry: a protocol number (`-1` for all), destination ports (TCP and UDP
/// only), an ICMP type and code (`-1` for any), the CIDR of the far side (the destination
/// of an outbound entry, the source of an inbound one), and its verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AclRule {
    pub protocol: String,
    pub ports: Option<(i32, i32)>,
    pub icmp: Option<(i32, i32)>,
    pub cidr: String,
    pub allow: bool,
}

/// A network ACL: the CIDRs of the subnets it is associated with (their IPv6 blocks too), and
/// its entries of both families in rule-number order, without the final `*` deny (always
/// there).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Acl {
    pub subnets: Vec<String>,
    pub ingress: Vec<AclRule>,
    pub egress: Vec<AclRule>,
}

/// A route of a subnet's table, as it bears on one peering connection: traffic from `subnet`
/// to `dst` goes through the peering (`via`) or not (a more specific route elsewhere, or a
/// wider one that is not the peering's). Given longest prefix first, so the first match is
/// the route the VPC router would take.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerRoute {
    pub subnet: String,
    pub dst: String,
    pub via: bool,
}

/// An active VPC peering connection of this VPC: the link it leaves by (named by the driver)
/// and the routes that send traffic into it. What no route sends there is dropped: peering
/// needs a route on both sides, as on AWS.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Peering {
    pub id: String,
    /// The VPC namespace's end of the peering link; filled in by the driver.
    #[serde(default)]
    pub dev: String,
    pub routes: Vec<PeerRoute>,
}

/// A traffic mirror filter rule, in rule-number order: a protocol number (none: all), the
/// source and destination CIDRs, port ranges (TCP and UDP only), and whether a match is
/// mirrored (`accept`) or not (`reject`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MirrorRule {
    pub protocol: Option<u8>,
    pub src: String,
    pub dst: String,
    pub src_ports: Option<(u16, u16)>,
    pub dst_ports: Option<(u16, u16)>,
    pub accept: bool,
}

/// A traffic mirror session of one source interface: its filter's rules per direction and
/// where the copies go (the target interface's primary address, under the session's VXLAN
/// id). `dev` and `port` are the driver's: the VXLAN device that carries the copies and the
/// UDP port (source and destination) that tells them apart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MirrorSession {
    pub id: String,
    pub vni: u32,
    pub target: String,
    /// The source interface's primary address: the copies' outer source, as AWS sends them.
    pub source: String,
    pub ingress: Vec<MirrorRule>,
    pub egress: Vec<MirrorRule>,
    #[serde(default)]
    pub dev: String,
    #[serde(default)]
    pub port: u16,
}

/// A mirrored interface: its addresses and its sessions, lowest session number first (the
/// first session whose filter accepts a packet mirrors it, and no other).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MirrorSource {
    pub addrs: Vec<String>,
    pub sessions: Vec<MirrorSession>,
}

/// The next hop every copy is sent to on its VXLAN device: a static neighbour there, so no
/// ARP goes into the tunnel.
pub const MIRROR_NEXT_HOP: &str = "169.254.77.1";

/// An interface VPC endpoint's network interface. Kumo serves the endpoint's service over
/// HTTPS on its address, in the VPC namespace itself ([`crate::services::endpoints`]); the
/// resolver answers `names` with it (with `private_name` too when private DNS is on), and its
/// certificate names both. Its security groups are an entry of `interfaces` like any
/// interface's: traffic to it must pass the sender's egress and its ingress rules, and its
/// subnet's network ACL.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub addr: String,
    /// The endpoint's own DNS names that lead here: its regional name and this subnet's
    /// zonal one.
    pub names: Vec<String>,
    /// The service's name (`ec2.eu-west-1.amazonaws.com`).
    pub private_name: String,
    pub private_dns: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Firewall {
    /// The VPC's interface endpoints' network interfaces.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    /// The VPC's traffic mirror sources.
    #[serde(default)]
    pub mirrors: Vec<MirrorSource>,
    /// The VPC's active peering connections.
    #[serde(default)]
    pub peerings: Vec<Peering>,
    pub interfaces: Vec<Interface>,
    /// The VPC's network ACLs that have subnets.
    #[serde(default)]
    pub acls: Vec<Acl>,
    /// Public and Elastic IPs: (public, private). Traffic to a public address is translated
    /// to its private one (then the security groups apply), and replies back.
    pub public: Vec<(String, String)>,
    /// Instances whose resource name (`i-….<region>.compute.internal`) the VPC resolver
    /// answers: (instance id, primary private address).
    pub names: Vec<(String, String)>,
    /// Instances whose resource name the resolver answers with an AAAA record: (instance id,
    /// primary IPv6 address).
    #[serde(default)]
    pub names6: Vec<(String, String)>,
    /// Public addresses of peered VPCs' instances whose public names the resolver answers
    /// with their private addresses (`AllowDnsResolutionFromRemoteVpc`): (public, private).
    /// Names only: nothing is translated or routed for them here.
    #[serde(default)]
    pub peer_public: Vec<(String, String)>,
}

fn set(items: &[String]) -> String {
    format!("{{ {} }}", items.join(", "))
}

/// Addresses and CIDRs by family: nftables matches each with its own expression (`ip`,
/// `ip6`), and a set holds one family. Yields (`ip` or `ip6`, the family's items).
fn families(items: &[String]) -> impl Iterator<Item = (&'static str, Vec<String>)> {
    let (v6, v4): (Vec<String>, Vec<String>) = items.iter().cloned().partition(|a| a.contains(':'));
    [("ip", v4), ("ip6", v6)]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
}

/// The match of a rule's protocol and ports for one family (`ip`, `ip6`), or None where the
/// rule does not apply to that family (ICMP is IPv4's, ICMPv6 IPv6's) or names a protocol
/// nftables cannot (then the rule is skipped rather than widened).
fn proto_match_in(r: &Rule, family: &str) -> Option<String> {
    match (r.protocol.as_str(), family) {
        ("icmp" | "1", "ip6") => None,
        ("icmpv6" | "58", "ip") => None,
        ("icmpv6" | "58", _) => Some(match (r.from_port, r.to_port) {
            (Some(t), Some(c)) if t >= 0 && c >= 0 => {
                format!("icmpv6 type {t} icmpv6 code {c}")
            }
            (Some(t), _) if t >= 0 => format!("icmpv6 type {t}"),
            _ => "meta l4proto icmpv6".into(),
        }),
        _ => proto_match(r),
    }
}

/// The match of a rule's protocol and ports, or None for a protocol nftables cannot name
/// (then the rule is skipped rather than widened).
fn proto_match(r: &Rule) -> Option<String> {
    let ports = |p: &str| match (r.from_port, r.to_port) {
        (Some(a), Some(b)) if a >= 0 && b >= 0 && (a, b) != (0, 65535) => {
            if a == b {
                format!("{p} dport {a}")
            } else {
                format!("{p} dport {a}-{b}")
            }
        }
        _ => format!("meta l4proto {p}"),
    };
    Some(match r.protocol.as_str() {
        "-1" | "all" => String::new(),
        "tcp" | "6" => ports("tcp"),
        "udp" | "17" => ports("udp"),
        "icmp" | "1" => match (r.from_port, r.to_port) {
            (Some(t), Some(c)) if t >= 0 && c >= 0 => format!("icmp type {t} icmp code {c}"),
            (Some(t), _) if t >= 0 => format!("icmp type {t}"),
            _ => "meta l4proto icmp".into(),
        },
        n => format!("meta l4proto {}", n.parse::<u8>().ok()?),
    })
}

/// `ip` or `ip6`: the family of an address or CIDR.
fn family(cidr: &str) -> &'static str {
    if cidr.contains(':') {
        "ip6"
    } else {
        "ip"
    }
}

/// An ACL entry's match for its family: ICMP (1) is IPv4's, ICMPv6 (58) IPv6's, each with
/// its type and code; None where the entry cannot apply.
fn acl_match_in(r: &AclRule, family: &str) -> Option<String> {
    match (r.protocol.as_str(), family) {
        ("1", "ip6") | ("58", "ip") => None,
        ("58", _) => Some(match r.icmp {
            Some((t, c)) if t >= 0 && c >= 0 => format!("icmpv6 type {t} icmpv6 code {c}"),
            Some((t, _)) if t >= 0 => format!("icmpv6 type {t}"),
            _ => "meta l4proto icmpv6".into(),
        }),
        _ => acl_match(r),
    }
}

/// The match of an ACL entry's protocol, ports and ICMP type, or None for a protocol nftables
/// cannot name (then the entry is skipped: it can neither allow nor deny).
fn acl_match(r: &AclRule) -> Option<String> {
    let ports = |p: &str| match r.ports {
        Some((a, b)) if a == b => format!("{p} dport {a}"),
        Some((a, b)) if (a, b) != (0, 65535) => format!("{p} dport {a}-{b}"),
        _ => format!("meta l4proto {p}"),
    };
    Some(match r.protocol.as_str() {
        "-1" => String::new(),
        "6" => ports("tcp"),
        "17" => ports("udp"),
        "1" => match r.icmp {
            Some((t, c)) if t >= 0 && c >= 0 => format!("icmp type {t} icmp code {c}"),
            Some((t, _)) if t >= 0 => format!("icmp type {t}"),
            _ => "meta l4proto icmp".into(),
        },
        n => format!("meta l4proto {}", n.parse::<u8>().ok()?),
    })
}

/// The network ACLs' base chain and its per-ACL chains: an allowing entry returns (the
/// other side's ACL and then the security groups still apply), a denying one drops.
///
/// Traffic to and from an interface endpoint's address ends in the namespace itself rather
/// than crossing it, so two more base chains (input, output) send it through the same ACL
/// chains; nothing else the namespace answers (the resolver, DHCP, the metadata) is filtered.
fn acl_chains(acls: &[Acl], endpoints: &[String]) -> String {
    let mut jumps = String::new();
    let mut chains = String::new();
    for (i, a) in acls.iter().enumerate() {
        if a.subnets.is_empty() {
            continue;
        }
        for c in &a.subnets {
            let f = family(c);
            jumps.push_str(&format!(
                "    {f} saddr {c} {f} daddr != {c} jump nacl_out_{i}\n"
            ));
            jumps.push_str(&format!(
                "    {f} daddr {c} {f} saddr != {c} jump nacl_in_{i}\n"
            ));
        }
        for (dir, rules, peer) in [("out", &a.egress, "daddr"), ("in", &a.ingress, "saddr")] {
            chains.push_str(&format!("  chain nacl_{dir}_{i} {{\n"));
            // One chain for both families: an entry of the other family never matches.
            for r in rules {
                let f = family(&r.cidr);
                let Some(m) = acl_match_in(r, f) else {
                    continue;
                };
                let verdict = if r.allow { "return" } else { "drop" };
                let m = if m.is_empty() { m } else { format!(" {m}") };
                chains.push_str(&format!("    {f} {peer} {}{m} {verdict}\n", r.cidr));
            }
            chains.push_str("    drop\n  }\n");
        }
    }
    let mut base = format!(
        "  chain nacl {{\n    type filter hook forward priority -10; policy accept;\n{jumps}  }}\n"
    );
    if !endpoints.is_empty() && !jumps.is_empty() {
        let e = set(endpoints);
        for (chain, hook, own) in [
            ("nacl_local_in", "input", "daddr"),
            ("nacl_local_out", "output", "saddr"),
        ] {
            base.push_str(&format!(
                "  chain {chain} {{\n    type filter hook {hook} priority -10; policy accept;\n    meta nfproto != ipv4 accept\n    ip {own} != {e} accept\n{jumps}  }}\n"
            ));
        }
    }
    base + &chains
}

/// The peering links' chain: what leaves by a peering link must be sent there by the source
/// subnet's route table (first match of its routes, longest prefix first), else it drops.
fn peering_chains(peerings: &[Peering]) -> String {
    let live: Vec<(usize, &Peering)> = peerings
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.dev.is_empty())
        .collect();
    if live.is_empty() {
        return String::new();
    }
    let mut base = String::from(
        "  chain peering {\n    type filter hook forward priority -5; policy accept;\n",
    );
    let mut chains = String::new();
    for (i, p) in live {
        base.push_str(&format!("    oifname \"{}\" jump pcx_out_{i}\n", p.dev));
        chains.push_str(&format!("  chain pcx_out_{i} {{\n"));
        for r in &p.routes {
            let verdict = if r.via { "return" } else { "drop" };
            chains.push_str(&format!(
                "    ip saddr {} ip daddr {} {verdict}\n",
                r.subnet, r.dst
            ));
        }
        chains.push_str("    drop\n  }\n");
    }
    base.push_str("  }\n");
    base + &chains
}

/// A mirror rule's match: CIDRs, then the protocol and (TCP, UDP) its ports.
fn mirror_match(r: &MirrorRule) -> String {
    let mut m = format!("ip saddr {} ip daddr {}", r.src, r.dst);
    if let Some(p) = r.protocol {
        m.push_str(&format!(" meta l4proto {p}"));
        if matches!(p, 6 | 17) {
            let range = |(a, b): (u16, u16)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            };
            if let Some(sp) = r.src_ports {
                m.push_str(&format!(" th sport {}", range(sp)));
            }
            if let Some(dp) = r.dst_ports {
                m.push_str(&format!(" th dport {}", range(dp)));
            }
        }
    }
    m
}

/// Traffic mirroring, as table `ip kumo_mirror` (nftables' `dup` is an `ip`-family
/// statement): after the filters (priority 10, so what the groups or ACLs dropped is not
/// mirrored), a packet from (egress) or to (ingress) a source interface meets its sessions
/// in order; the first whose filter accepts it copies it to the session's VXLAN device, a
/// rejecting rule or no match hands it to the next session.
fn mirror_table(sources: &[MirrorSource]) -> String {
    let mut out = String::from(
        "table ip kumo_mirror {}\nflush table ip kumo_mirror\ntable ip kumo_mirror {\n",
    );
    let mut base = String::from(
        "  chain mirror {\n    type filter hook forward priority 10; policy accept;\n",
    );
    let mut chains = String::new();
    for (i, src) in sources.iter().enumerate() {
        let live: Vec<&MirrorSession> = src.sessions.iter().filter(|s| !s.dev.is_empty()).collect();
        // IPv4 only: `dup` is an `ip`-family statement.
        let addrs: Vec<String> = src
            .addrs
            .iter()
            .filter(|a| !a.contains(':'))
            .cloned()
            .collect();
        if live.is_empty() || addrs.is_empty() {
            continue;
        }
        for (dir, peer) in [("out", "saddr"), ("in", "daddr")] {
            base.push_str(&format!(
                "    ip {peer} {} jump mir_{i}_{dir}_0\n",
                set(&addrs)
            ));
            for (k, s) in live.iter().enumerate() {
                let next = if k + 1 < live.len() {
                    format!("goto mir_{i}_{dir}_{}", k + 1)
                } else {
                    "return".to_string()
                };
                let rules = if dir == "out" { &s.egress } else { &s.ingress };
                chains.push_str(&format!("  chain mir_{i}_{dir}_{k} {{\n"));
                for r in rules {
                    let verdict = if r.accept {
                        format!("dup to {MIRROR_NEXT_HOP} device \"{}\" return", s.dev)
                    } else {
                        next.clone()
                    };
                    chains.push_str(&format!("    {} {verdict}\n", mirror_match(r)));
                }
                if next != "return" {
                    chains.push_str(&format!("    {next}\n"));
                }
                chains.push_str("  }\n");
            }
        }
    }
    base.push_str("  }\n");
    // Each session's device sends from and to a port of its own (one VXLAN id may serve two
    // sessions); the copies go on to the target's 4789.
    base.push_str("  chain onward {\n    type nat hook output priority -100; policy accept;\n");
    for s in sources
        .iter()
        .flat_map(|x| &x.sessions)
        .filter(|s| !s.dev.is_empty())
    {
        base.push_str(&format!(
            "    ip daddr {} udp dport {} dnat to {}:4789\n",
            s.target, s.port, s.target
        ));
    }
    base.push_str("  }\n");
    // The copies leave with the source interface's address, as AWS sends them.
    base.push_str(
        "  chain rewrite {\n    type nat hook postrouting priority 100; policy accept;\n",
    );
    for s in sources
        .iter()
        .flat_map(|x| &x.sessions)
        .filter(|s| !s.dev.is_empty())
    {
        base.push_str(&format!(
            "    udp sport {} udp dport 4789 snat to {}\n",
            s.port, s.source
        ));
    }
    base.push_str("  }\n");
    out.push_str(&base);
    out.push_str(&chains);
    out.push_str("}\n");
    out
}

/// The nftables script that installs `fw` as table `inet kumo`, replacing the previous one.
/// `host_net` is where the host's links into the VPC namespaces are.
pub fn script(fw: &Firewall, host_net: &str) -> String {
    let mut base = vec![
        "ct state established,related accept".to_string(),
        "ct state invalid drop".to_string(),
    ];
    let mut chains = String::new();
    // Every sender's egress jump comes before any receiver's ingress jump: an ingress chain
    // accepts, so a receiver met first would let a packet skip its sender's egress rules.
    let mut ingress_jumps = Vec::new();
    for (i, f) in fw.interfaces.iter().enumerate() {
        if f.addrs.is_empty() {
            continue;
        }
        for (fam, addrs) in families(&f.addrs) {
            let addrs = set(&addrs);
            base.push(format!("{fam} saddr {addrs} jump out_{i}"));
            ingress_jumps.push(format!("{fam} daddr {addrs} jump in_{i}"));
        }
        // Egress returns to the base chain (the receiver is checked next); ingress accepts.
        for (dir, rules, peer, verdict) in [
            ("out", &f.egress, "daddr", "return"),
            ("in", &f.ingress, "saddr", "accept"),
        ] {
            chains.push_str(&format!("  chain {dir}_{i} {{\n"));
            for r in rules {
                for (fam, peers) in families(&r.peers) {
                    let Some(m) = proto_match_in(r, fam) else {
                        continue;
                    };
                    chains.push_str(&format!("    {fam} {peer} {} {m} {verdict}\n", set(&peers)));
                }
            }
            chains.push_str("    drop\n  }\n");
        }
    }
    let egress_jumps: Vec<String> = base[2..].to_vec();
    base.extend(ingress_jumps);
    // What the sender's groups let out to a peered VPC leaves by its link; the peer's
    // namespace checks its receivers' groups.
    for p in fw.peerings.iter().filter(|p| !p.dev.is_empty()) {
        base.push(format!("oifname \"{}\" accept", p.dev));
    }
    base.push(format!("ip daddr {host_net} accept"));
    let mut out = String::from("table inet kumo {}\nflush table inet kumo\ntable inet kumo {\n");
    out.push_str("  chain forward {\n    type filter hook forward priority 0; policy drop;\n");
    for b in base {
        out.push_str(&format!("    {b}\n"));
    }
    out.push_str("  }\n");
    // An interface endpoint's address is the namespace's own: what reaches it meets the
    // sender's egress rules and then the endpoint's ingress rules, on the input hook.
    let endpoints: Vec<String> = fw.endpoints.iter().map(|e| e.addr.clone()).collect();
    if !endpoints.is_empty() {
        let e = set(&endpoints);
        out.push_str("  chain endpoint {\n    type filter hook input priority 0; policy accept;\n");
        out.push_str("    meta nfproto != ipv4 accept\n");
        out.push_str(&format!("    ip daddr != {e} accept\n"));
        out.push_str("    ct state established,related accept\n    ct state invalid drop\n");
        for j in &egress_jumps {
            out.push_str(&format!("    {j}\n"));
        }
        for (i, f) in fw.interfaces.iter().enumerate() {
            if f.addrs.iter().any(|a| endpoints.contains(a)) {
                for (fam, addrs) in families(&f.addrs) {
                    out.push_str(&format!("    {fam} daddr {} jump in_{i}\n", set(&addrs)));
                }
            }
        }
        out.push_str("    drop\n  }\n");
    }
    out.push_str(&chains);
    out.push_str(&acl_chains(&fw.acls, &endpoints));
    out.push_str(&peering_chains(&fw.peerings));
    // Mirrored copies leave the namespace itself: the target's groups must admit them (UDP
    // 4789 from the source), checked once their source is the source interface's.
    if fw
        .mirrors
        .iter()
        .any(|m| m.sessions.iter().any(|s| !s.dev.is_empty()))
    {
        out.push_str(
            "  chain mirrored {\n    type filter hook postrouting priority 200; policy accept;\n",
        );
        for (i, f) in fw.interfaces.iter().enumerate() {
            for (fam, addrs) in families(&f.addrs).filter(|(fam, _)| *fam == "ip") {
                out.push_str(&format!(
                    "    udp dport 4789 {fam} daddr {} jump in_{i}\n",
                    set(&addrs)
                ));
            }
        }
        out.push_str("  }\n");
    }
    out.push_str("}\n");
    out.push_str("table ip kumo_nat {}\nflush table ip kumo_nat\ntable ip kumo_nat {\n");
    out.push_str(
        "  chain prerouting {\n    type nat hook prerouting priority -100; policy accept;\n",
    );
    for (public, private) in &fw.public {
        out.push_str(&format!("    ip daddr {public} dnat to {private}\n"));
    }
    out.push_str("  }\n}\n");
    out.push_str(&mirror_table(&fw.mirrors));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(p: &str, from: Option<i32>, to: Option<i32>, peers: &[&str]) -> Rule {
        Rule {
            protocol: p.into(),
            from_port: from,
            to_port: to,
            peers: peers.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn rules_become_chains() {
        let fw = Firewall {
            interfaces: vec![Interface {
                addrs: vec!["10.0.1.5".into(), "10.0.1.16/28".into()],
                ingress: vec![
                    rule("tcp", Some(22), Some(22), &["0.0.0.0/0"]),
                    rule("udp", Some(1000), Some(2000), &["10.0.0.0/16"]),
                    rule("icmp", Some(8), Some(-1), &["10.0.1.6"]),
                    // A group with no members admits no one.
                    rule("-1", None, None, &[]),
                ],
                egress: vec![rule("-1", None, None, &["0.0.0.0/0"])],
            }],
            public: vec![("198.51.100.7".into(), "10.0.1.5".into())],
            ..Firewall::default()
        };
        let s = script(&fw, "100.127.0.0/16");
        assert!(s.contains("ip saddr { 10.0.1.5, 10.0.1.16/28 } jump out_0"));
        assert!(s.contains("ip daddr { 10.0.1.5, 10.0.1.16/28 } jump in_0"));
        assert!(s.contains("ip saddr { 0.0.0.0/0 } tcp dport 22 accept"));
        assert!(s.contains("ip saddr { 10.0.0.0/16 } udp dport 1000-2000 accept"));
        assert!(s.contains("ip saddr { 10.0.1.6 } icmp type 8 accept"));
        assert!(s.contains("ip daddr { 0.0.0.0/0 }  return"));
        assert_eq!(s.matches("drop\n").count(), 3, "{s}");
        assert!(s.starts_with("table inet kumo {}\nflush table inet kumo\n"));
        assert!(s.contains("policy drop;") && s.contains("ip daddr 100.127.0.0/16 accept"));
        assert!(s.contains("ip daddr 198.51.100.7 dnat to 10.0.1.5"));
    }

    #[test]
    fn every_egress_is_checked_before_any_ingress() {
        let iface = |addr: &str| Interface {
            addrs: vec![addr.into()],
            ingress: vec![rule("-1", None, None, &["0.0.0.0/0"])],
            egress: Vec::new(),
        };
        let fw = Firewall {
            interfaces: vec![iface("10.0.1.5"), iface("10.0.1.6")],
            ..Firewall::default()
        };
        let s = script(&fw, "100.127.0.0/16");
        let at = |needle: &str| s.find(needle).unwrap_or_else(|| panic!("{needle}: {s}"));
        // 10.0.1.6 sending to 10.0.1.5 meets its own egress (which drops) before 10.0.1.5's
        // ingress (which accepts).
        assert!(at("ip saddr { 10.0.1.6 } jump out_1") < at("ip daddr { 10.0.1.5 } jump in_0"));
        assert!(at("ip saddr { 10.0.1.5 } jump out_0") < at("ip daddr { 10.0.1.6 } jump in_1"));
    }

    #[test]
    fn odd_protocols() {
        assert_eq!(
            proto_match(&rule("50", None, None, &[])).as_deref(),
            Some("meta l4proto 50")
        );
        assert_eq!(
            proto_match(&rule("tcp", Some(0), Some(65535), &[])).as_deref(),
            Some("meta l4proto tcp")
        );
        assert_eq!(proto_match(&rule("bogus", None, None, &[])), None);
    }

    fn entry(p: &str, ports: Option<(i32, i32)>, cidr: &str, allow: bool) -> AclRule {
        AclRule {
            protocol: p.into(),
            ports,
            icmp: None,
            cidr: cidr.into(),
            allow,
        }
    }

    fn acl_firewall() -> Firewall {
        Firewall {
            acls: vec![Acl {
                subnets: vec!["10.0.1.0/24".into(), "10.0.2.0/24".into()],
                ingress: vec![
                    entry("6", Some((22, 22)), "0.0.0.0/0", true),
                    entry("6", Some((1024, 65535)), "10.0.0.0/16", true),
                    AclRule {
                        icmp: Some((8, -1)),
                        ..entry("1", None, "10.0.3.0/24", false)
                    },
                    entry("-1", None, "0.0.0.0/0", true),
                ],
                egress: vec![
                    entry("17", Some((0, 65535)), "10.0.0.0/8", false),
                    entry("50", None, "0.0.0.0/0", true),
                ],
            }],
            ..Firewall::default()
        }
    }

    #[test]
    fn acls_are_a_stateless_chain_before_the_groups() {
        let s = script(&acl_firewall(), "100.127.0.0/16");
        let at = |needle: &str| s.find(needle).unwrap_or_else(|| panic!("{needle}: {s}"));
        assert!(s.contains("type filter hook forward priority -10; policy accept;"));
        // Each subnet's boundary, both ways; traffic within a subnet jumps nowhere.
        assert!(s.contains("ip saddr 10.0.1.0/24 ip daddr != 10.0.1.0/24 jump nacl_out_0"));
        assert!(s.contains("ip daddr 10.0.2.0/24 ip saddr != 10.0.2.0/24 jump nacl_in_0"));
        // Entries in order, the first match deciding; allow returns, deny drops.
        assert!(
            at("ip saddr 0.0.0.0/0 tcp dport 22 return")
                < at("ip saddr 10.0.0.0/16 tcp dport 1024-65535 return")
        );
        assert!(at("ip saddr 10.0.3.0/24 icmp type 8 drop") < at("ip saddr 0.0.0.0/0 return"));
        assert!(s.contains("ip daddr 10.0.0.0/8 meta l4proto udp drop"));
        assert!(s.contains("ip daddr 0.0.0.0/0 meta l4proto 50 return"));
        // The `*` rule: each chain ends in a drop. The ACL chain has no conntrack bypass.
        let acl_part = &s[at("chain nacl {")..];
        assert_eq!(acl_part.matches("    drop\n").count(), 2, "{s}");
        assert!(!acl_part.contains("ct state"));
    }

    #[test]
    fn an_acl_without_subnets_renders_nothing() {
        let mut fw = acl_firewall();
        fw.acls[0].subnets.clear();
        let s = script(&fw, "100.127.0.0/16");
        assert!(!s.contains("nacl_in_0") && !s.contains("nacl_out_0"), "{s}");
    }

    #[test]
    fn acls_filter_ipv6_at_the_subnets_ipv6_boundary() {
        let mut fw = acl_firewall();
        fw.acls[0].subnets.push("2001:db8:0:1::/64".into());
        fw.acls[0].ingress.insert(
            0,
            AclRule {
                icmp: Some((128, -1)),
                ..entry("58", None, "::/0", true)
            },
        );
        fw.acls[0]
            .ingress
            .push(entry("6", Some((22, 22)), "::/0", false));
        fw.acls[0].ingress.push(entry("1", None, "::/0", true));
        let s = script(&fw, "100.127.0.0/16");
        assert!(
            s.contains(
                "ip6 saddr 2001:db8:0:1::/64 ip6 daddr != 2001:db8:0:1::/64 jump nacl_out_0"
            ),
            "{s}"
        );
        assert!(s.contains("ip6 saddr ::/0 icmpv6 type 128 return"), "{s}");
        assert!(s.contains("ip6 saddr ::/0 tcp dport 22 drop"), "{s}");
        // ICMP (1) is IPv4's: an IPv6 entry for it matches nothing and is left out.
        assert_eq!(s.matches("ip6 saddr ::/0").count(), 2, "{s}");
    }

    #[test]
    fn ipv6_addresses_and_peers_get_rules_of_their_own_family() {
        let fw = Firewall {
            interfaces: vec![Interface {
                addrs: vec!["10.0.1.5".into(), "2001:db8:0:1::a".into()],
                ingress: vec![
                    rule("tcp", Some(22), Some(22), &["0.0.0.0/0", "::/0"]),
                    rule("icmp", Some(8), Some(-1), &["0.0.0.0/0", "::/0"]),
                    rule(
                        "icmpv6",
                        Some(128),
                        Some(-1),
                        &["10.0.0.0/8", "2001:db8::/56"],
                    ),
                ],
                egress: Vec::new(),
            }],
            ..Firewall::default()
        };
        let s = script(&fw, "100.127.0.0/16");
        assert!(s.contains("ip saddr { 10.0.1.5 } jump out_0"), "{s}");
        assert!(
            s.contains("ip6 saddr { 2001:db8:0:1::a } jump out_0"),
            "{s}"
        );
        assert!(s.contains("ip6 daddr { 2001:db8:0:1::a } jump in_0"), "{s}");
        assert!(s.contains("ip saddr { 0.0.0.0/0 } tcp dport 22 accept"));
        assert!(s.contains("ip6 saddr { ::/0 } tcp dport 22 accept"));
        // ICMP is IPv4's and ICMPv6 IPv6's: neither crosses over.
        assert!(s.contains("ip saddr { 0.0.0.0/0 } icmp type 8 accept"));
        assert!(!s.contains("ip6 saddr { ::/0 } icmp"), "{s}");
        assert!(s.contains("ip6 saddr { 2001:db8::/56 } icmpv6 type 128 accept"));
        assert!(!s.contains("ip saddr { 10.0.0.0/8 }"), "{s}");
    }

    /// An interface endpoint at `addr`: its interface admits HTTPS from the VPC.
    fn add_endpoint(fw: &mut Firewall, addr: &str) {
        fw.interfaces.push(Interface {
            addrs: vec![addr.into()],
            ingress: vec![rule("tcp", Some(443), Some(443), &["10.0.0.0/16"])],
            egress: Vec::new(),
        });
        fw.endpoints.push(Endpoint {
            addr: addr.into(),
            ..Endpoint::default()
        });
    }

    #[test]
    fn an_endpoint_address_meets_the_groups_and_acls_on_the_input_hook() {
        let mut fw = acl_firewall();
        fw.interfaces = vec![Interface {
            addrs: vec!["10.0.2.5".into()],
            ingress: Vec::new(),
            egress: vec![rule("tcp", Some(443), Some(443), &["10.0.1.0/24"])],
        }];
        add_endpoint(&mut fw, "10.0.1.9");
        let s = script(&fw, "100.127.0.0/16");
        let chain = &s[s.find("chain endpoint {").expect("an endpoint chain")..];
        let chain = &chain[..chain.find("  }\n").unwrap()];
        // Only the endpoint's address is filtered here: the namespace's own services are not.
        assert!(chain.contains("type filter hook input priority 0; policy accept;"));
        assert!(chain.contains("ip daddr != { 10.0.1.9 } accept"));
        // The sender's egress, then the endpoint's ingress, then nothing else gets in.
        let at = |n: &str| chain.find(n).unwrap_or_else(|| panic!("{n}: {chain}"));
        assert!(at("ip saddr { 10.0.2.5 } jump out_0") < at("ip daddr { 10.0.1.9 } jump in_1"));
        assert!(chain.trim_end().ends_with("drop"));
        // The ACLs see both directions of it, at the namespace's own input and output.
        for (hook, own) in [("input", "daddr"), ("output", "saddr")] {
            assert!(s.contains(&format!("type filter hook {hook} priority -10; policy accept;\n    meta nfproto != ipv4 accept\n    ip {own} != {{ 10.0.1.9 }} accept\n    ip saddr 10.0.1.0/24")), "{s}");
        }
        // Without endpoints there is no input filtering at all.
        fw.endpoints.clear();
        let s = script(&fw, "100.127.0.0/16");
        assert!(
            !s.contains("chain endpoint") && !s.contains("nacl_local"),
            "{s}"
        );
    }

    /// The kernel's own parser takes the script (`nft --check` changes nothing). Where `nft`
    /// is missing the test says so and fails: every machine that runs the `ns` driver has it.
    #[test]
    fn nft_accepts_the_script() {
        use std::io::Write;
        let mut fw = acl_firewall();
        fw.interfaces.push(Interface {
            addrs: vec!["10.0.1.5".into()],
            ingress: vec![rule("tcp", Some(22), Some(22), &["0.0.0.0/0"])],
            egress: vec![rule("-1", None, None, &["0.0.0.0/0"])],
        });
        fw.peerings.push(Peering {
            id: "pcx-1".into(),
            dev: "kp0000001".into(),
            routes: vec![PeerRoute {
                subnet: "10.0.1.0/24".into(),
                dst: "10.1.0.0/16".into(),
                via: true,
            }],
        });
        // An ACL with an IPv6 block and entries.
        fw.acls[0].subnets.push("2001:db8:0:1::/64".into());
        fw.acls[0].egress.push(AclRule {
            icmp: Some((128, 0)),
            ..entry("58", None, "::/0", true)
        });
        // An interface with IPv6 addresses, and rules of both families.
        fw.interfaces.push(Interface {
            addrs: vec!["10.0.1.6".into(), "2001:db8:0:1::a".into()],
            ingress: vec![
                rule("tcp", Some(22), Some(22), &["0.0.0.0/0", "::/0"]),
                rule("icmpv6", Some(128), Some(-1), &["2001:db8::/56"]),
            ],
            egress: vec![rule("-1", None, None, &["0.0.0.0/0", "::/0"])],
        });
        add_endpoint(&mut fw, "10.0.1.9");
        // A device that exists wherever the test runs (nft resolves `dup`'s device).
        fw.mirrors = mirror_sources("lo").mirrors;
        let text = script(&fw, "100.127.0.0/16");
        let child = std::process::Command::new("nft")
            .args(["--check", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => panic!("nft: {e}"),
        };
        child
            .stdin
            .take()
            .map(|mut i| i.write_all(text.as_bytes()))
            .transpose()
            .expect("write the script");
        let out = child.wait_with_output().expect("nft ran");
        assert!(
            out.status.success(),
            "{}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn peering_links_carry_only_what_the_routes_send_them() {
        let route = |subnet: &str, dst: &str, via: bool| PeerRoute {
            subnet: subnet.into(),
            dst: dst.into(),
            via,
        };
        let fw = Firewall {
            peerings: vec![
                Peering {
                    id: "pcx-1".into(),
                    dev: "kp0000001".into(),
                    routes: vec![
                        route("10.0.1.0/24", "10.1.9.0/24", false),
                        route("10.0.1.0/24", "10.1.0.0/16", true),
                    ],
                },
                // A peering whose link is not made here renders nothing.
                Peering {
                    id: "pcx-2".into(),
                    dev: String::new(),
                    routes: vec![route("10.0.2.0/24", "10.2.0.0/16", true)],
                },
            ],
            ..Firewall::default()
        };
        let s = script(&fw, "100.127.0.0/16");
        let at = |needle: &str| s.find(needle).unwrap_or_else(|| panic!("{needle}: {s}"));
        assert!(s.contains("type filter hook forward priority -5; policy accept;"));
        assert!(s.contains("oifname \"kp0000001\" jump pcx_out_0"));
        // Longest prefix first: the /24 elsewhere wins over the /16 through the peering.
        assert!(
            at("ip saddr 10.0.1.0/24 ip daddr 10.1.9.0/24 drop")
                < at("ip saddr 10.0.1.0/24 ip daddr 10.1.0.0/16 return")
        );
        assert!(s.contains("oifname \"kp0000001\" accept"));
        assert!(!s.contains("10.2.0.0/16"), "{s}");
    }

    fn mirror_sources(dev: &str) -> Firewall {
        let rule = |p: Option<u8>, dst_ports: Option<(u16, u16)>, accept: bool| MirrorRule {
            protocol: p,
            src: "0.0.0.0/0".into(),
            dst: "10.0.0.0/16".into(),
            src_ports: None,
            dst_ports,
            accept,
        };
        let session = |id: &str, vni: u32, port: u16, egress: Vec<MirrorRule>| MirrorSession {
            id: id.into(),
            vni,
            target: "10.0.1.9".into(),
            source: "10.0.1.5".into(),
            ingress: Vec::new(),
            egress,
            dev: dev.into(),
            port,
        };
        Firewall {
            mirrors: vec![MirrorSource {
                addrs: vec!["10.0.1.5".into()],
                sessions: vec![
                    session(
                        "tms-1",
                        7,
                        40000,
                        vec![
                            rule(Some(17), Some((53, 53)), false),
                            rule(Some(17), Some((1, 1024)), true),
                        ],
                    ),
                    session("tms-2", 8, 40001, vec![rule(None, None, true)]),
                ],
            }],
            ..Firewall::default()
        }
    }

    #[test]
    fn mirror_sessions_copy_into_their_tunnels_in_order() {
        let s = script(&mirror_sources("kmm00000001"), "100.127.0.0/16");
        let at = |needle: &str| s.find(needle).unwrap_or_else(|| panic!("{needle}: {s}"));
        assert!(s.contains("table ip kumo_mirror {}\nflush table ip kumo_mirror\n"));
        assert!(s.contains("type filter hook forward priority 10; policy accept;"));
        assert!(s.contains("ip saddr { 10.0.1.5 } jump mir_0_out_0"));
        assert!(s.contains("ip daddr { 10.0.1.5 } jump mir_0_in_0"));
        // The first session: its reject hands the packet to the second session, its accept
        // copies and stops; no match falls through to the second.
        assert!(
            at("meta l4proto 17 th dport 53 goto mir_0_out_1")
                < at("meta l4proto 17 th dport 1-1024 dup to 169.254.77.1 device \"kmm00000001\" return")
        );
        assert!(
            s.contains("chain mir_0_out_1 {\n    ip saddr 0.0.0.0/0 ip daddr 10.0.0.0/16 dup to")
        );
        // Copies leave with the source's address, each session told apart by its port.
        assert!(s.contains("udp sport 40000 udp dport 4789 snat to 10.0.1.5"));
        assert!(s.contains("udp sport 40001 udp dport 4789 snat to 10.0.1.5"));
        assert!(s.contains("ip daddr 10.0.1.9 udp dport 40000 dnat to 10.0.1.9:4789"));
        // A session without its device renders nothing.
        let mut fw = mirror_sources("");
        fw.mirrors[0].sessions.truncate(1);
        assert!(!script(&fw, "100.127.0.0/16").contains("mir_0_out_0"));
    }
}
