//! Network plumbing with iproute2: a network namespace per VPC that routes between its
//! subnets (each subnet's gateway address in it, as the VPC router has), a veth from the host
//! into each VPC namespace with a route for the VPC's CIDR, and a routed veth (or tap) per
//! instance interface. There is no bridge: see `ns::route_guest`.
//!
//! Nothing here routes beyond the VPC namespaces: they have no default route, so no instance
//! traffic can leave the machine.

use crate::ComputeError;
use std::process::Command;

pub fn ip(args: &[&str]) -> Result<String, ComputeError> {
    run("ip", args)
}

pub fn run(cmd: &str, args: &[&str]) -> Result<String, ComputeError> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| ComputeError::io(format!("cannot run {cmd}"), e))?;
    if !out.status.success() {
        return Err(ComputeError::Command {
            command: format!("{cmd} {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs many `ip` commands (one per line, without the `ip`) in one process (`ip -batch`):
/// with `force`, it goes on past a failing line.
pub fn ip_batch(lines: &[String], force: bool) -> Result<(), ComputeError> {
    let args: &[&str] = if force {
        &["-force", "-batch", "-"]
    } else {
        &["-batch", "-"]
    };
    batch(args, lines)
}

/// Like [`ip_batch`] (stopping at the first failure), inside a named network namespace.
pub fn ip_batch_in(netns: &str, lines: &[String]) -> Result<(), ComputeError> {
    batch(&["-n", netns, "-batch", "-"], lines)
}

/// Removals inside a named network namespace, each tried whatever the others did: one already
/// gone (an address moved to another instance's link meanwhile) is no failure.
pub fn ip_batch_in_gone(netns: &str, lines: &[String]) {
    if let Err(e) = batch(&["-n", netns, "-force", "-batch", "-"], lines) {
        tracing::debug!(netns, error = %e, "some routes to remove were already gone");
    }
}

fn batch(args: &[&str], lines: &[String]) -> Result<(), ComputeError> {
    use std::io::Write;
    if lines.is_empty() {
        return Ok(());
    }
    let mut child = Command::new("ip")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| ComputeError::io("cannot run ip", e))?;
    if let Some(mut stdin) = child.stdin.take() {
        let script = lines.join("\n") + "\n";
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| ComputeError::io("ip -batch", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| ComputeError::io("ip -batch", e))?;
    if !out.status.success() {
        return Err(ComputeError::Command {
            command: format!("ip {}: {}", args.join(" "), lines.join("; ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Like [`ip`], for clean-up: a failure is logged, not returned.
pub fn ip_quiet(args: &[&str]) {
    if let Err(e) = ip(args) {
        tracing::debug!(error = %e, "network clean-up step failed");
    }
}

/// An IPv4 CIDR split into (network address, prefix length).
pub fn parse_cidr(cidr: &str) -> Option<(u32, u8)> {
    let (a, l) = cidr.split_once('/')?;
    let addr: std::net::Ipv4Addr = a.parse().ok()?;
    let len: u8 = l.parse().ok()?;
    (len <= 32).then_some((u32::from(addr), len))
}

pub fn addr(n: u32) -> String {
    std::net::Ipv4Addr::from(n).to_string()
}

/// The subnet's gateway: its first host address (AWS's VPC router, `.1`).
pub fn gateway(subnet_cidr: &str) -> Option<String> {
    let (net, _) = parse_cidr(subnet_cidr)?;
    Some(addr(net + 1))
}

/// The VPC's resolver: its base address plus two, as AWS places it.
pub fn vpc_dns(vpc_cidr: &str) -> Option<std::net::Ipv4Addr> {
    let (base, _) = parse_cidr(vpc_cidr)?;
    Some(std::net::Ipv4Addr::from(base + 2))
}

/// The last 8 hex digits of a resource id: short names for interfaces (at most 15 bytes).
pub fn short(id: &str) -> &str {
    let hex = id.rsplit('-').next().unwrap_or(id);
    &hex[hex.len().saturating_sub(8)..]
}

/// Sums the counters of an instance's links in `ip -s -j link show`'s output: the links of
/// the host (or VPC namespace) end, named `<prefix><kind letter><short id>…`. The host end
/// sends what the guest receives, so its `tx` is the guest's `in`.
pub(crate) fn link_counters(ip_json: &str, prefix: &str, id: &str) -> Option<crate::NetCounters> {
    let links: Vec<serde_json::Value> = serde_json::from_str(ip_json).ok()?;
    let short = short(id);
    let mut c = crate::NetCounters::default();
    let mut any = false;
    for l in &links {
        let Some(name) = l["ifname"].as_str() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        let mut chars = rest.chars();
        if !matches!(chars.next(), Some('e' | 't' | 'n' | 'u'))
            || !chars.as_str().starts_with(short)
        {
            continue;
        }
        let n = |dir: &str, what: &str| l["stats64"][dir][what].as_u64().unwrap_or(0);
        c.bytes_in += n("tx", "bytes");
        c.packets_in += n("tx", "packets");
        c.bytes_out += n("rx", "bytes");
        c.packets_out += n("rx", "packets");
        any = true;
    }
    any.then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instances_links_are_summed_from_the_host_end() {
        let out = r#"[{"ifindex":1,"ifname":"lo","stats64":{"rx":{"bytes":9,"packets":9},"tx":{"bytes":9,"packets":9}}},
            {"ifindex":7,"ifname":"k1e0abc1234","stats64":{"rx":{"bytes":100,"packets":2},"tx":{"bytes":5000,"packets":7}}},
            {"ifindex":8,"ifname":"k1n0abc12341","stats64":{"rx":{"bytes":1,"packets":1},"tx":{"bytes":10,"packets":1}}},
            {"ifindex":9,"ifname":"k1e0abc9999","stats64":{"rx":{"bytes":77,"packets":7},"tx":{"bytes":77,"packets":7}}}]"#;
        let c = link_counters(out, "k1", "i-0123456780abc1234").unwrap();
        assert_eq!(
            c,
            crate::NetCounters {
                bytes_in: 5010,
                bytes_out: 101,
                packets_in: 8,
                packets_out: 3
            }
        );
        assert_eq!(link_counters(out, "k1", "i-00000000deadbeef"), None);
    }

    #[test]
    fn gateways_and_names() {
        assert_eq!(gateway("10.0.1.0/24").as_deref(), Some("10.0.1.1"));
        assert_eq!(gateway("172.31.32.0/20").as_deref(), Some("172.31.32.1"));
        assert_eq!(parse_cidr("10.0.0.0/33"), None);
        assert_eq!(
            vpc_dns("10.7.0.0/16").map(|a| a.to_string()).as_deref(),
            Some("10.7.0.2")
        );
        assert_eq!(short("subnet-0123456789abcdef0"), "9abcdef0");
    }
}
