//! The guests' own view of the machine under `ns`: lxcfs (Debian's `lxcfs`, what LXC uses for
//! exactly this) serves `/proc/meminfo`, `/proc/cpuinfo`, `/proc/stat`, `/proc/uptime` and
//! the rest, and `/sys/devices/system/cpu`, as the reading process's cgroups allow: a guest
//! in a t3.micro's cgroups sees 1 GiB and 2 CPUs, not the host's. The init stage binds them
//! over the guest's own `/proc` and `/sys` ([`crate::ns`]).
//!
//! One lxcfs serves every guest, mounted under the server's data directory; a mount left by
//! an earlier server that still answers is used again, and one whose daemon is gone is
//! unmounted first. Without lxcfs the guests see the host's `/proc`, and the server says so.

use crate::host::net::run;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The files of lxcfs's `proc` a guest gets in place of its own.
pub(crate) const PROC_FILES: [&str; 7] = [
    "cpuinfo",
    "diskstats",
    "loadavg",
    "meminfo",
    "stat",
    "swaps",
    "uptime",
];

/// A running lxcfs, and the directory it serves.
pub struct Lxcfs {
    pub(crate) dir: PathBuf,
    /// The daemon, when this server started it (none when an earlier one's is reused).
    child: Mutex<Option<Child>>,
}

impl Lxcfs {
    /// lxcfs serving `dir`, started unless one already answers there; `None` (and a warning
    /// in the log) when it cannot run.
    pub fn start(dir: &Path) -> Option<Lxcfs> {
        if answers(dir) {
            tracing::info!(dir = %dir.display(), "lxcfs already serves the guests' /proc");
            return Some(Lxcfs {
                dir: dir.to_path_buf(),
                child: Mutex::new(None),
            });
        }
        // A mount whose daemon died answers nothing but ENOTCONN: take it away first.
        let _ = run("umount", &["-l", &dir.to_string_lossy()]);
        if let Err(e) = std::fs::create_dir_all(dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot make lxcfs's directory; guests will see the host's /proc");
            return None;
        }
        // It ends with the server, however the server ends (SIGTERM makes lxcfs unmount
        // cleanly): util-linux's setpriv sets its parent-death signal. The driver is made on
        // the server's main thread, whose exit is the process's.
        let mut cmd = Command::new("setpriv");
        cmd.args(["--pdeathsig", "TERM", "lxcfs", "--foreground", "--pidfile"])
            .arg(dir.with_extension("pid"))
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot start lxcfs (Debian's `lxcfs` package); guests will see the host's /proc");
                return None;
            }
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !answers(dir) {
            if Instant::now() > deadline || matches!(child.try_wait(), Ok(Some(_))) {
                let _ = child.kill();
                let _ = child.wait();
                let _ = run("umount", &["-l", &dir.to_string_lossy()]);
                tracing::warn!(dir = %dir.display(), "lxcfs did not come up; guests will see the host's /proc");
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        tracing::info!(dir = %dir.display(), "lxcfs serves the guests' /proc");
        Some(Lxcfs {
            dir: dir.to_path_buf(),
            child: Mutex::new(Some(child)),
        })
    }
}

/// Whether an lxcfs answers at `dir`.
fn answers(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("proc/meminfo")).is_ok_and(|m| m.starts_with("MemTotal"))
}

impl Drop for Lxcfs {
    /// The daemon this server started goes with it, and its mount with it (a guest still
    /// running keeps its binds until it stops).
    fn drop(&mut self) {
        let child = self.child.get_mut().map(Option::take).ok().flatten();
        if let Some(mut c) = child {
            let _ = c.kill();
            let _ = c.wait();
            let _ = run("umount", &["-l", &self.dir.to_string_lossy()]);
        }
    }
}
