//! What the drivers do to the host itself: cgroups (v1), the nftables rules of a VPC's
//! namespace, sockets bound inside a namespace, and sweeping what a server left behind.

use crate::net::{ip, ip_quiet};
use crate::ComputeError;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

pub(crate) const CGROUP: &str = "/sys/fs/cgroup";

pub(crate) const CONTROLLERS: [&str; 5] = ["cpu", "cpuacct", "cpuset", "memory", "pids"];

/// Removes every network namespace, host link (with its routes) and cgroup named with
/// `prefix`.
pub(crate) fn sweep(prefix: &str) {
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
pub(crate) fn apply_rules(ns: &str, fw: &crate::firewall::Firewall) -> Result<(), ComputeError> {
    let script = crate::firewall::script(fw, crate::ns::HOST_NET);
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

/// The CPUs of a cpuset list such as `0-3,6`.
pub(crate) fn cpu_list(s: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<u32>().ok()),
        }
    }
    out
}

pub(crate) fn join_cpus(cpus: &[u32]) -> String {
    cpus.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Sends SIGKILL to every process of a cgroup.
pub(crate) fn kill_cgroup(dir: &Path) {
    if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        for p in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
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
