//! Security groups as nftables rules in a VPC's network namespace. Every packet between an
//! instance and anything else is routed through that namespace, so one `forward` chain sees
//! it: replies of tracked connections pass; a new connection must pass the sender's egress
//! rules (if the sender is an instance) and then the receiver's ingress rules (if the
//! receiver is one); a connection to the host passes the sender's egress only. Anything else
//! is dropped, so an instance whose rules are not installed yet takes no traffic. A rule set
//! replaces the last one atomically (`nft -f`).

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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Firewall {
    pub interfaces: Vec<Interface>,
    /// Public and Elastic IPs: (public, private). Traffic to a public address is translated
    /// to its private one (then the security groups apply), and replies back.
    pub public: Vec<(String, String)>,
    /// Instances whose resource name (`i-….<region>.compute.internal`) the VPC resolver
    /// answers: (instance id, primary private address).
    pub names: Vec<(String, String)>,
}

fn set(items: &[String]) -> String {
    format!("{{ {} }}", items.join(", "))
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
        let addrs = set(&f.addrs);
        base.push(format!("ip saddr {addrs} jump out_{i}"));
        ingress_jumps.push(format!("ip daddr {addrs} jump in_{i}"));
        // Egress returns to the base chain (the receiver is checked next); ingress accepts.
        for (dir, rules, peer, verdict) in [
            ("out", &f.egress, "daddr", "return"),
            ("in", &f.ingress, "saddr", "accept"),
        ] {
            chains.push_str(&format!("  chain {dir}_{i} {{\n"));
            for r in rules {
                let (Some(m), false) = (proto_match(r), r.peers.is_empty()) else {
                    continue;
                };
                chains.push_str(&format!("    ip {peer} {} {m} {verdict}\n", set(&r.peers)));
            }
            chains.push_str("    drop\n  }\n");
        }
    }
    base.extend(ingress_jumps);
    base.push(format!("ip daddr {host_net} accept"));
    let mut out = String::from("table inet kumo {}\nflush table inet kumo\ntable inet kumo {\n");
    out.push_str("  chain forward {\n    type filter hook forward priority 0; policy drop;\n");
    for b in base {
        out.push_str(&format!("    {b}\n"));
    }
    out.push_str("  }\n");
    out.push_str(&chains);
    out.push_str("}\n");
    out.push_str("table ip kumo_nat {}\nflush table ip kumo_nat\ntable ip kumo_nat {\n");
    out.push_str(
        "  chain prerouting {\n    type nat hook prerouting priority -100; policy accept;\n",
    );
    for (public, private) in &fw.public {
        out.push_str(&format!("    ip daddr {public} dnat to {private}\n"));
    }
    out.push_str("  }\n}\n");
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
            names: Vec::new(),
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
}
