//! What the drivers do to the host itself, and the only code that runs `ip` or `nft` or
//! touches `/sys/fs/cgroup`: cgroups (v1, [`cgroups`]), the VPC namespaces and the guests'
//! links ([`vpc`]), the nftables rules of a VPC's namespace, sockets bound inside a
//! namespace, the claims on network names ([`claims`]), the guests' view of `/proc`
//! ([`lxcfs`]), and sweeping what a server left behind.

pub(crate) mod cgroups;
pub mod claims;
pub mod lxcfs;
pub(crate) mod net;
pub(crate) mod routes;
pub(crate) mod vpc;

use crate::ComputeError;
use cgroups::{kill_cgroup, CGROUP, CONTROLLERS};
use net::{ip, ip_quiet};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Removes every network namespace, host link (with its routes), host rule and route
/// ([`routes`]) and cgroup of the server named with `prefix`.
pub(crate) fn sweep(prefix: &str) {
    // Its rules, one `ip rule delete` each, and its unreachable routes, which no link holds.
    let priority = routes::rule_priority(prefix).to_string();
    for _ in 0..4096 {
        if ip(&["rule", "delete", "priority", &priority]).is_err() {
            break;
        }
    }
    let metric = routes::metric(prefix).to_string();
    if let Ok(list) = ip(&["route", "show", "table", "main"]) {
        for l in list.lines() {
            let words: Vec<&str> = l.split_whitespace().collect();
            let mine = words.windows(2).any(|w| w[0] == "metric" && w[1] == metric);
            let dst = match words.first() {
                Some(&"unreachable") => words.get(1),
                first => first,
            };
            if let (true, Some(dst)) = (mine, dst) {
                ip_quiet(&["route", "delete", dst, "metric", &metric]);
            }
        }
    }
    if let Ok(list) = ip(&["netns", "list"]) {
        for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
            if name.starts_with(prefix) && name.len() > prefix.len() {
                ip_quiet(&["netns", "delete", name]);
            }
        }
    }
    let host_links = format!("{prefix}h");
    if let Ok(list) = ip(&["-o", "link", "show"]) {
        for l in list.lines() {
            let name = l
                .split(": ")
                .nth(1)
                .and_then(|n| n.split('@').next())
                .unwrap_or("");
            if name.starts_with(&host_links) {
                ip_quiet(&["link", "delete", name]);
            }
        }
    }
    for c in CONTROLLERS {
        let base = Path::new(CGROUP).join(c).join(format!("kumo-{prefix}"));
        if let Ok(entries) = std::fs::read_dir(&base) {
            for e in entries.flatten().filter(|e| e.path().is_dir()) {
                kill_cgroup(&e.path());
                let _ = std::fs::remove_dir(e.path());
            }
        }
        let _ = std::fs::remove_dir(&base);
    }
}

/// Installs a VPC's security-group rules in its namespace, replacing the last ones at once.
pub(crate) fn apply_rules(
    ns: &str,
    fw: &crate::services::firewall::Firewall,
) -> Result<(), ComputeError> {
    let script = crate::services::firewall::script(fw, vpc::HOST_NET);
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ComputeError::io("run nft", e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| ComputeError::io("write the rules to nft", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| ComputeError::io("run nft", e))?;
    if !out.status.success() {
        return Err(ComputeError::Command {
            command: format!("nft -f (in {ns})"),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Runs `f` on a thread that has entered a named network namespace (entering one changes
/// only the calling thread): sockets made there stay in that namespace.
pub(crate) fn in_netns<T: Send + 'static>(
    ns: &str,
    what: &str,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, ComputeError> {
    let path = format!("/run/netns/{ns}");
    let joined = std::thread::spawn(move || -> std::io::Result<T> {
        let file = std::fs::File::open(&path)?;
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(std::io::Error::from)?;
        f()
    })
    .join();
    match joined {
        Ok(r) => r.map_err(|e| ComputeError::io(what, e)),
        Err(_) => Err(ComputeError::Guest("the namespace thread panicked".into())),
    }
}

/// A TCP listener inside a named network namespace.
pub(crate) fn bind_in(ns: &str, addr: &str) -> Result<std::net::TcpListener, ComputeError> {
    let addr = addr.to_string();
    in_netns(ns, "bind the metadata service", move || {
        let l = std::net::TcpListener::bind(&addr)?;
        l.set_nonblocking(true)?;
        Ok(l)
    })
}

/// A UDP socket inside a named network namespace.
pub(crate) fn bind_udp_in(ns: &str, addr: &str) -> Result<std::net::UdpSocket, ComputeError> {
    let addr = addr.to_string();
    in_netns(ns, "bind a UDP socket in a VPC namespace", move || {
        let u = std::net::UdpSocket::bind(&addr)?;
        u.set_nonblocking(true)?;
        Ok(u)
    })
}
