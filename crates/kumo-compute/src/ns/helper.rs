//! The two processes that start an `ns` instance, run as hidden subcommands of the `kumo`
//! binary (`kumo __ns-helper`, `kumo __ns-init`), so that no namespace is entered by a
//! multi-threaded server:
//!
//! 1. the **helper** unshares the mount, pid, uts, ipc and network namespaces, tells the
//!    server it is ready (the server then plugs the instance's interface into the new network
//!    namespace), mounts the root overlay and the guest's `/dev`, tells the server (which
//!    then puts the guest's disks in that `/dev`, as a machine has its disks when it powers
//!    on), starts the init stage, and lives as long as it;
//! 2. the **init stage** is PID 1 of the new pid namespace: it mounts `/proc` and `/sys`,
//!    names the host, pivots into the overlay and executes the image's init
//!    (`/sbin/kumo-init`), which brings up the metadata, key, user data and sshd.

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

fn fail(what: &str, e: impl std::fmt::Display) -> i32 {
    eprintln!("kumo ns: {what}: {e}");
    1
}

/// A step of preparing the guest's root that failed, with the system's error.
#[derive(Debug, thiserror::Error)]
#[error("{step}")]
struct StepFailed {
    step: String,
    #[source]
    cause: std::io::Error,
}

impl StepFailed {
    fn new(step: impl Into<String>, cause: impl Into<std::io::Error>) -> StepFailed {
        StepFailed {
            step: step.into(),
            cause: cause.into(),
        }
    }
}

/// The helper (stage 1). Arguments: the image's root, the root data directory (holding
/// `upper` and `work`), the mount point for the overlay, the console log, the host name.
/// Protocol on stdout/stdin: prints `ready`, waits for `go`, prints `mounted`, waits for
/// `boot`, prints `pid N` (init's pid).
/// Exits with init's exit status.
pub fn helper(
    image_root: &Path,
    data: &Path,
    mountpoint: &Path,
    console: &Path,
    hostname: &str,
) -> i32 {
    let flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWNET;
    if let Err(e) = unshare(flags) {
        return fail("unshare", e);
    }
    let mut out = std::io::stdout();
    if writeln!(out, "ready").and_then(|_| out.flush()).is_err() {
        return 1;
    }
    if !heard("go") {
        return fail("start", "the server did not say go");
    }
    // Nothing mounted from here on shows outside.
    if let Err(e) = mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    ) {
        return fail("make mounts private", e);
    }
    for d in ["upper", "work"] {
        if let Err(e) = std::fs::create_dir_all(data.join(d)) {
            return fail("root data", e);
        }
    }
    if let Err(e) = std::fs::create_dir_all(mountpoint) {
        return fail("mount point", e);
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        image_root.display(),
        data.join("upper").display(),
        data.join("work").display()
    );
    if let Err(e) = mount(
        Some("overlay"),
        mountpoint,
        Some("overlay"),
        MsFlags::empty(),
        Some(opts.as_str()),
    ) {
        return fail("mount the root overlay", e);
    }
    if let Err(e) = mount_dev(mountpoint) {
        return fail("mount the guest's /dev", crate::error_chain(&e));
    }
    if writeln!(out, "mounted").and_then(|_| out.flush()).is_err() {
        return 1;
    }
    if !heard("boot") {
        return fail("start", "the server did not say boot");
    }
    let log = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(console)
    {
        Ok(f) => f,
        Err(e) => return fail("console log", e),
    };
    let err = match log.try_clone() {
        Ok(f) => f,
        Err(e) => return fail("console log", e),
    };
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return fail("own executable", e),
    };
    let child = Command::new(exe)
        .arg("__ns-init")
        .arg(mountpoint)
        .arg(hostname)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return fail("start init", e),
    };
    let _ = writeln!(out, "pid {}", child.id()).and_then(|_| out.flush());
    match child.wait() {
        Ok(s) => {
            use std::os::unix::process::ExitStatusExt;
            s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
        }
        Err(e) => fail("wait for init", e),
    }
}

/// Reads one line from the server: whether it was `word`.
fn heard(word: &str) -> bool {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).is_ok() && line.trim() == word
}

fn mount_at(
    src: &str,
    target: &Path,
    fstype: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), StepFailed> {
    std::fs::create_dir_all(target)
        .map_err(|e| StepFailed::new(target.display().to_string(), e))?;
    mount(Some(src), target, Some(fstype), flags, data)
        .map_err(|e| StepFailed::new(format!("mount {fstype} on {}", target.display()), e))
}

/// The init stage (stage 2): PID 1 of the instance. Never returns on success.
pub fn init(root: &Path, hostname: &str) -> i32 {
    match prepare(root, hostname) {
        Ok(()) => {}
        Err(e) => return fail("prepare the root", crate::error_chain(&e)),
    }
    let e = Command::new("/sbin/kumo-init")
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("TERM", "linux")
        .env("HOME", "/root")
        .exec();
    fail("exec /sbin/kumo-init", e)
}

/// The guest's `/dev` under its root: a tmpfs with the host's harmless character devices
/// bound in, its own devpts and a `/dev/shm`. Block devices are the server's to add.
fn mount_dev(root: &Path) -> Result<(), StepFailed> {
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount_at(
        "tmpfs",
        &root.join("dev"),
        "tmpfs",
        MsFlags::MS_NOSUID,
        Some("mode=755,size=65536k"),
    )?;
    for d in ["null", "zero", "full", "random", "urandom", "tty"] {
        let target = root.join("dev").join(d);
        std::fs::File::create(&target)
            .map_err(|e| StepFailed::new(target.display().to_string(), e))?;
        let src = format!("/dev/{d}");
        mount(
            Some(src.as_str()),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| StepFailed::new(format!("bind {src}"), e))?;
    }
    mount_at(
        "devpts",
        &root.join("dev/pts"),
        "devpts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=620"),
    )?;
    std::os::unix::fs::symlink("pts/ptmx", root.join("dev/ptmx"))
        .map_err(|e| StepFailed::new("ptmx", e))?;
    mount_at(
        "tmpfs",
        &root.join("dev/shm"),
        "tmpfs",
        nosuid,
        Some("mode=1777"),
    )?;
    Ok(())
}

/// Binds lxcfs's `proc` files over the guest's `/proc` ones, and its CPU directory over the
/// guest's `/sys/devices/system/cpu`: they answer as the guest's cgroups allow.
fn bind_lxcfs(root: &Path, lxcfs: &Path) -> Result<(), StepFailed> {
    let bind = |src: &Path, target: &Path| {
        mount(
            Some(src),
            target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| StepFailed::new(format!("bind {}", src.display()), e))
    };
    for f in crate::host::lxcfs::PROC_FILES {
        let src = lxcfs.join("proc").join(f);
        if src.exists() {
            bind(&src, &root.join("proc").join(f))?;
        }
    }
    let cpu = lxcfs.join("sys/devices/system/cpu");
    if cpu.is_dir() {
        bind(&cpu, &root.join("sys/devices/system/cpu"))?;
    }
    Ok(())
}

fn prepare(root: &Path, hostname: &str) -> Result<(), StepFailed> {
    nix::unistd::sethostname(hostname).map_err(|e| StepFailed::new("hostname", e))?;
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount_at("proc", &root.join("proc"), "proc", nosuid, None)?;
    mount_at(
        "sysfs",
        &root.join("sys"),
        "sysfs",
        nosuid | MsFlags::MS_RDONLY,
        None,
    )?;
    // `/sys/block` lists the guest's own disks only (the server links each one in as it
    // shows it): the host's disks and other instances' volumes are not the guest's.
    mount_at(
        "tmpfs",
        &root.join("sys/block"),
        "tmpfs",
        nosuid,
        Some("mode=755"),
    )?;
    crate::storage::list_devices(root);
    mount_at(
        "tmpfs",
        &root.join("run"),
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=755"),
    )?;
    if let Some(dir) = std::env::var_os(super::boot::LXCFS_ENV) {
        // The guest's own view of memory, CPUs and uptime; without it, the host's.
        if let Err(e) = bind_lxcfs(root, Path::new(&dir)) {
            eprintln!(
                "kumo ns: the guest sees the host's /proc: {}",
                crate::error_chain(&e)
            );
        }
    }
    std::env::set_current_dir(root).map_err(|e| StepFailed::new("chdir", e))?;
    std::fs::create_dir_all(".kumo-old").map_err(|e| StepFailed::new("old root", e))?;
    nix::unistd::pivot_root(".", ".kumo-old").map_err(|e| StepFailed::new("pivot_root", e))?;
    std::env::set_current_dir("/").map_err(|e| StepFailed::new("chdir /", e))?;
    umount2("/.kumo-old", MntFlags::MNT_DETACH)
        .map_err(|e| StepFailed::new("detach the old root", e))?;
    let _ = std::fs::remove_dir("/.kumo-old");
    Ok(())
}
