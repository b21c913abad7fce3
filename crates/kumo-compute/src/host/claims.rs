//! Which server owns which name prefix on this host.
//!
//! Every `ns` or `vm` server names what it makes on the host (network namespaces, links,
//! routes, cgroups) with a prefix of its own (`kXX`, from its data directory). A server that
//! stops cleanly removes all of it; one that was killed (`kill -9`, a CI job's timeout, a
//! machine snapshot taken mid-run) leaves it behind, and a leftover route to a VPC's CIDR
//! makes the next server's VPC with that CIDR unreachable from the host.
//!
//! So each server claims its prefix in a file under [`DIR`] holding its pid and the start
//! time the kernel gives that pid (`/proc/PID/stat`, field 22): a claim whose process is gone,
//! or whose pid now names another process, is dead, and the next server sweeps what that
//! prefix left behind before it starts.

use std::path::{Path, PathBuf};

/// Where claims live: on the host, not in any one server's data directory.
pub const DIR: &str = "/run/kumo/ns";

/// A pid and its start time, as the kernel reports them: together they name one process
/// for the life of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    pub start: u64,
}

impl Owner {
    /// This process.
    pub fn me() -> Option<Owner> {
        let pid = std::process::id();
        Some(Owner {
            pid,
            start: start_time(pid)?,
        })
    }

    /// Whether the process still runs (the same one, not a later one with its pid).
    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }

    fn render(&self) -> String {
        format!("{} {}\n", self.pid, self.start)
    }

    fn parse(text: &str) -> Option<Owner> {
        let mut it = text.split_whitespace();
        let pid = it.next()?.parse().ok()?;
        let start = it.next()?.parse().ok()?;
        Some(Owner { pid, start })
    }
}

/// A process's start time in clock ticks since boot (`/proc/PID/stat`, field 22).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start(&stat)
}

/// Field 22 of a `/proc/PID/stat` line. The command (field 2) is in parentheses and may hold
/// spaces or parentheses itself, so fields are counted from its last `)`.
fn parse_start(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the command come field 3 (the state) onwards: field 22 is the 20th of them.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The claims in `dir`.
pub struct Claims {
    dir: PathBuf,
}

impl Claims {
    pub fn new(dir: &Path) -> Claims {
        Claims {
            dir: dir.to_path_buf(),
        }
    }

    fn file(&self, prefix: &str) -> PathBuf {
        self.dir.join(format!("{prefix}.owner"))
    }

    /// Claims `prefix` for `owner`, replacing any earlier claim.
    pub fn claim(&self, prefix: &str, owner: Owner) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(format!(".{prefix}.{}", owner.pid));
        std::fs::write(&tmp, owner.render())?;
        std::fs::rename(&tmp, self.file(prefix))
    }

    /// Who claims `prefix`, if anyone.
    pub fn owner(&self, prefix: &str) -> Option<Owner> {
        Owner::parse(&std::fs::read_to_string(self.file(prefix)).ok()?)
    }

    /// Drops `prefix`'s claim if `owner` holds it.
    pub fn release(&self, prefix: &str, owner: Owner) {
        if self.owner(prefix) == Some(owner) {
            let _ = std::fs::remove_file(self.file(prefix));
        }
    }

    /// The prefixes whose owner is gone (their claim files stay until [`Claims::forget`]).
    pub fn dead(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<String> = rd
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                let prefix = name.strip_suffix(".owner")?.to_string();
                let text = std::fs::read_to_string(e.path()).ok()?;
                // An unreadable claim is as dead as its writer.
                match Owner::parse(&text) {
                    Some(o) if o.alive() => None,
                    _ => Some(prefix),
                }
            })
            .collect();
        out.sort();
        out
    }

    /// Removes a dead prefix's claim once what it left was swept.
    pub fn forget(&self, prefix: &str) {
        let _ = std::fs::remove_file(self.file(prefix));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_counted_after_the_command() {
        // A command with spaces and a parenthesis in it, as a guest's process might have.
        let stat =
            "4242 (a) b (c) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_start(stat), Some(987654));
        assert_eq!(parse_start("1 (init) S"), None);
        let me = Owner::me().expect("this process has a start time");
        assert!(me.alive());
        assert!(
            !Owner {
                start: me.start + 1,
                ..me
            }
            .alive(),
            "a pid reused is another process"
        );
    }

    #[test]
    fn a_claim_whose_process_is_gone_is_dead() {
        let dir = std::env::temp_dir().join(format!("kumo-claims-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let c = Claims::new(&dir);
        let me = Owner::me().unwrap();
        c.claim("k01", me).unwrap();
        // A child that has exited: its pid and start time no longer name a process.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = Owner {
            pid: child.id(),
            start: start_time(child.id()).unwrap_or(1),
        };
        child.wait().unwrap();
        c.claim("k02", gone).unwrap();
        std::fs::write(dir.join("k03.owner"), "garbage").unwrap();
        assert_eq!(c.dead(), vec!["k02".to_string(), "k03".to_string()]);
        assert_eq!(c.owner("k01"), Some(me));
        // Another owner's release leaves the claim; its own removes it.
        c.release("k01", gone);
        assert_eq!(c.owner("k01"), Some(me));
        c.release("k01", me);
        assert_eq!(c.owner("k01"), None);
        c.forget("k02");
        assert_eq!(c.dead(), vec!["k03".to_string()]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
