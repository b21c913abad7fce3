//! A pool of SSH host-key sets, made ahead of time so that no boot waits for its RSA key
//! (about a second of CPU for RSA-3072, the largest share of an `ns` boot).
//!
//! A filler thread keeps `want` sets ready in the pool directory, running `ssh-keygen` at the
//! lowest CPU priority (`nice -n 19`), so it takes only time nothing else wants. A boot takes
//! one set: it is claimed by an atomic rename inside the pool directory (so two servers sharing
//! the pool, or two boots at once, never get the same set), copied into the instance's root,
//! and deleted. Each set is used once: every instance still has host keys of its own. With the
//! pool empty the guest makes its keys itself at boot (`ssh-keygen -A`), as before.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// The key types a set holds, as `ssh-keygen -A` makes them for OpenSSH 9.
const KINDS: [(&str, &[&str]); 3] = [
    ("rsa", &["-t", "rsa", "-b", "3072"]),
    ("ecdsa", &["-t", "ecdsa", "-b", "256"]),
    ("ed25519", &["-t", "ed25519"]),
];

/// The file beside the keys that holds their fingerprints, for the guest's console.
const FINGERPRINTS: &str = "kumo-fingerprints";

/// The pool.
pub struct HostKeys {
    dir: PathBuf,
    want: usize,
    /// Wakes the filler after a set was taken.
    taken: (Mutex<()>, Condvar),
}

static SEQ: AtomicU64 = AtomicU64::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

impl HostKeys {
    /// A pool of `want` sets in `dir`, filled from now on by a thread of its own.
    pub fn start(dir: &Path, want: usize) -> std::io::Result<Arc<HostKeys>> {
        std::fs::create_dir_all(dir)?;
        // Claims and half-made sets of a process that died are of no use to anyone.
        for e in std::fs::read_dir(dir)?.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if (name.starts_with(".claim-") || name.starts_with(".make-")) && !alive(&name) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let pool = Arc::new(HostKeys {
            dir: dir.to_path_buf(),
            want,
            taken: (Mutex::new(()), Condvar::new()),
        });
        let weak = Arc::downgrade(&pool);
        std::thread::Builder::new()
            .name("kumo-hostkeys".into())
            .spawn(move || fill(weak))?;
        Ok(pool)
    }

    /// The sets ready to take.
    pub fn ready(&self) -> usize {
        self.sets().len()
    }

    fn sets(&self) -> Vec<PathBuf> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut v: Vec<PathBuf> = rd
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("set-"))
            .map(|e| e.path())
            .collect();
        v.sort();
        v
    }

    /// Installs a set of host keys into `etc_ssh` (the instance's `/etc/ssh`), unless it has
    /// keys already (a later boot of the same root); false when the pool is empty and the
    /// guest is left to make its own.
    pub fn install(&self, etc_ssh: &Path) -> std::io::Result<bool> {
        if etc_ssh.join("ssh_host_ed25519_key").exists() {
            return Ok(true);
        }
        for set in self.sets() {
            let claim = self.dir.join(format!(".{}", unique("claim")));
            if std::fs::rename(&set, &claim).is_err() {
                continue; // another boot took it first
            }
            self.taken.1.notify_one();
            std::fs::create_dir_all(etc_ssh)?;
            let copied = copy_set(&claim, etc_ssh);
            let _ = std::fs::remove_dir_all(&claim);
            copied?;
            return Ok(true);
        }
        self.taken.1.notify_one();
        Ok(false)
    }
}

/// Whether the process named in a `.claim-PID-N` or `.make-PID-N` entry still runs.
fn alive(name: &str) -> bool {
    name.split('-')
        .nth(1)
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
}

fn copy_set(from: &Path, etc_ssh: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for (kind, _) in KINDS {
        for (suffix, mode) in [("", 0o600), (".pub", 0o644)] {
            let name = format!("ssh_host_{kind}_key{suffix}");
            let to = etc_ssh.join(&name);
            std::fs::copy(from.join(&name), &to)?;
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode))?;
        }
    }
    // A set made before fingerprints were kept has none: the guest prints its own.
    if from.join(FINGERPRINTS).exists() {
        std::fs::copy(from.join(FINGERPRINTS), etc_ssh.join(FINGERPRINTS))?;
    }
    Ok(())
}

/// Makes one set in a scratch directory and publishes it whole.
fn make_set(dir: &Path) -> std::io::Result<()> {
    let scratch = dir.join(format!(".{}", unique("make")));
    std::fs::create_dir_all(&scratch)?;
    let made = (|| {
        for (kind, args) in KINDS {
            let status = Command::new("nice")
                .args(["-n", "19", "ssh-keygen", "-q", "-N", "", "-C", "root@kumo"])
                .args(args)
                .arg("-f")
                .arg(scratch.join(format!("ssh_host_{kind}_key")))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()?;
            if !status.success() {
                return Err(std::io::Error::other(format!(
                    "ssh-keygen {kind}: {status}"
                )));
            }
        }
        // The fingerprints the console shows, as the guest would print them.
        let mut prints = String::new();
        for (kind, _) in KINDS {
            let out = Command::new("ssh-keygen")
                .arg("-lf")
                .arg(scratch.join(format!("ssh_host_{kind}_key.pub")))
                .output()?;
            prints.push_str(&String::from_utf8_lossy(&out.stdout));
        }
        std::fs::write(scratch.join(FINGERPRINTS), prints)?;
        std::fs::rename(&scratch, dir.join(unique("set")))
    })();
    if made.is_err() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    made
}

fn fill(pool: std::sync::Weak<HostKeys>) {
    loop {
        let Some(p) = pool.upgrade() else { return };
        if p.ready() < p.want {
            if let Err(e) = make_set(&p.dir) {
                tracing::warn!(error = %e, "cannot make SSH host keys ahead of boots; guests make their own");
                drop(p);
                std::thread::sleep(Duration::from_secs(30));
            }
            continue;
        }
        let guard = p.taken.0.lock().unwrap_or_else(|e| e.into_inner());
        let _ = p.taken.1.wait_timeout(guard, Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_are_made_taken_once_and_unique() {
        if Command::new("ssh-keygen").arg("-?").output().is_err() {
            panic!("ssh-keygen (openssh-client) is missing: scripts/test installs it");
        }
        let dir = std::env::temp_dir().join(unique("kumo-hostkeys-test"));
        let pool = HostKeys::start(&dir.join("pool"), 2).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while pool.ready() < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "the pool never filled"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let (a, b) = (dir.join("a/etc/ssh"), dir.join("b/etc/ssh"));
        assert!(pool.install(&a).unwrap());
        assert!(pool.install(&b).unwrap());
        let key = |d: &Path| std::fs::read_to_string(d.join("ssh_host_rsa_key.pub")).unwrap();
        assert!(key(&a).starts_with("ssh-rsa "));
        assert_ne!(key(&a), key(&b), "each instance has keys of its own");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(a.join("ssh_host_ed25519_key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // The fingerprints name the installed keys (ssh-keygen prints the same line).
        let prints = std::fs::read_to_string(a.join(FINGERPRINTS)).unwrap();
        let own = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(a.join("ssh_host_rsa_key.pub"))
            .output()
            .unwrap();
        assert!(prints.contains(String::from_utf8_lossy(&own.stdout).trim()));
        assert_eq!(prints.lines().count(), 3);
        // A root with keys keeps them.
        let before = key(&a);
        assert!(pool.install(&a).unwrap());
        assert_eq!(key(&a), before);
        drop(pool);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
