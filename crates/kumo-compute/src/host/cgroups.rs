//! The guests' cgroups (v1): each guest's CPUs (a cpuset of its vCPUs and a CFS quota),
//! memory and processes, and its CPU time, under `kumo-<prefix>/<instance>` in each
//! controller.

use crate::{ComputeError, InstanceSpec};
use std::path::{Path, PathBuf};

pub(crate) const CGROUP: &str = "/sys/fs/cgroup";

pub(crate) const CONTROLLERS: [&str; 5] = ["cpu", "cpuacct", "cpuset", "memory", "pids"];

/// One server's cgroups (its name prefix).
pub(crate) struct Cgroups {
    pub(crate) prefix: String,
}

impl Cgroups {
    pub(crate) fn dir(&self, id: &str, c: &str) -> PathBuf {
        Path::new(CGROUP)
            .join(c)
            .join(format!("kumo-{}", self.prefix))
            .join(id)
    }

    /// Caps an instance at its type: vCPUs as a CFS quota, memory (with `overhead_mib` for
    /// what runs the guest besides it), and processes.
    pub(crate) fn limit(
        &self,
        spec: &InstanceSpec,
        pid: u32,
        overhead_mib: u64,
    ) -> Result<(), ComputeError> {
        let write = |p: PathBuf, v: String| {
            std::fs::write(&p, v).map_err(|e| ComputeError::io(format!("write {}", p.display()), e))
        };
        for c in CONTROLLERS {
            let dir = self.dir(&spec.id, c);
            std::fs::create_dir_all(&dir)
                .map_err(|e| ComputeError::io(format!("cgroup {}", dir.display()), e))?;
        }
        // The guest sees its vCPUs (as many as the host has): `nproc` answers the type's
        // count. A cpuset needs its CPUs and memory nodes before it takes a process, and so
        // does the directory above it.
        let host = Path::new(CGROUP).join("cpuset");
        let host_cpus =
            cpu_list(&std::fs::read_to_string(host.join("cpuset.cpus")).unwrap_or_default());
        let mems = std::fs::read_to_string(host.join("cpuset.mems")).unwrap_or_else(|_| "0".into());
        let parent = self.dir(&spec.id, "cpuset");
        if let Some(p) = parent.parent() {
            write(p.join("cpuset.cpus"), join_cpus(&host_cpus))?;
            write(p.join("cpuset.mems"), mems.trim().to_string())?;
        }
        let n = (spec.vcpus.max(1) as usize).min(host_cpus.len().max(1));
        write(
            parent.join("cpuset.cpus"),
            join_cpus(&host_cpus[..n.min(host_cpus.len())]),
        )?;
        write(parent.join("cpuset.mems"), mems.trim().to_string())?;
        let cpu = self.dir(&spec.id, "cpu");
        write(cpu.join("cpu.cfs_period_us"), "100000".into())?;
        write(
            cpu.join("cpu.cfs_quota_us"),
            (u64::from(spec.vcpus.max(1)) * 100_000).to_string(),
        )?;
        write(
            self.dir(&spec.id, "memory").join("memory.limit_in_bytes"),
            ((spec.memory_mib.max(64) + overhead_mib) << 20).to_string(),
        )?;
        write(
            self.dir(&spec.id, "pids").join("pids.max"),
            (1024 * spec.vcpus.max(1)).to_string(),
        )?;
        for c in CONTROLLERS {
            write(self.dir(&spec.id, c).join("cgroup.procs"), pid.to_string())?;
        }
        Ok(())
    }

    /// Kills what is left in an instance's cgroups and removes them.
    pub(crate) fn release(&self, id: &str) {
        for c in CONTROLLERS {
            let dir = self.dir(id, c);
            kill_cgroup(&dir);
            let _ = std::fs::remove_dir(&dir);
        }
    }

    /// Kills every process of an instance (its pids cgroup).
    pub(crate) fn kill(&self, id: &str) {
        kill_cgroup(&self.dir(id, "pids"));
    }

    /// CPU time the instance has used, in nanoseconds.
    pub(crate) fn usage_ns(&self, id: &str) -> Option<u64> {
        std::fs::read_to_string(self.dir(id, "cpuacct").join("cpuacct.usage"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Sets the instance's CFS quota (microseconds per 100 ms).
    pub(crate) fn set_quota(&self, id: &str, quota: u64) -> Result<(), ComputeError> {
        let p = self.dir(id, "cpu").join("cpu.cfs_quota_us");
        std::fs::write(&p, quota.to_string())
            .map_err(|e| ComputeError::io(format!("write {}", p.display()), e))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(cpu_list("0-3,6\n"), vec![0, 1, 2, 3, 6]);
        assert_eq!(cpu_list("1"), vec![1]);
        assert_eq!(join_cpus(&cpu_list("0-1")), "0,1");
        assert!(cpu_list("").is_empty());
    }
}
