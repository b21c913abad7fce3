//! `kumo image build`: the base image the public AMIs boot, made from Debian's packages with
//! debootstrap (minbase, openssh-server and the tools the EC2 docs use), plus Kumo's guest init.
//! Built once and cached: a finished image carries a stamp naming its recipe, and a build with
//! the same recipe is a no-op.
//!
//! One build makes both drivers' artifacts from the same tree:
//! - `rootfs/`, the root file system the `ns` driver overlays;
//! - `vmlinuz` and `initrd.img` (Debian's cloud kernel) and `disk.raw`, an 8 GiB disk with an
//!   MBR partition table and one ext4 partition holding the same tree, for the `vm` driver.

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// Changing anything in the recipe below changes this, so cached images are rebuilt.
pub const RECIPE: &str = "debian-12-minbase-v20";
const SUITE: &str = "bookworm";
const MIRROR: &str = "http://deb.debian.org/debian";
const PACKAGES: &str = "openssh-server,iproute2,curl,ca-certificates,cloud-guest-utils,fdisk,e2fsprogs,xfsprogs,sudo,procps,less,nftables,linux-image-cloud-amd64,udev,busybox";
/// The size of the base image's disk: the base AMIs' root volume size.
pub const DISK_GIB: u64 = 8;
/// The partition's first sector (1 MiB in, as Debian's and Amazon's cloud images have it).
const PART_START: u64 = 2048;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Build (or find cached) the base image.
    Build {
        /// Where images are kept.
        #[arg(long, env = "KUMO_IMAGES", default_value = DEFAULT_DIR)]
        dir: PathBuf,
    },
}

pub const DEFAULT_DIR: &str = "/var/cache/kumo/images";

/// The root file system of the built base image, if it is built. The `vm` driver's artifacts
/// (`vmlinuz`, `initrd.img`, `disk.raw`) sit beside it.
pub fn base_root(dir: &Path) -> Option<PathBuf> {
    let d = dir.join(RECIPE);
    let stamp = std::fs::read_to_string(d.join("READY")).ok()?;
    (stamp.trim() == RECIPE).then(|| d.join("rootfs"))
}

pub fn run(args: Args) -> ExitCode {
    match args.command {
        Sub::Build { dir } => match build(&dir, &Report::Terminal) {
            Ok(root) => {
                println!("{}", root.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("kumo image build: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Whether this host has what `build` needs.
pub fn can_build() -> bool {
    Command::new("debootstrap")
        .arg("--version")
        .output()
        .is_ok()
}

/// Where a build's progress goes: the terminal (`kumo image build`, a bar redrawn in place on
/// a TTY) or the server's log (`kumo serve` building at first start, a line per phase).
pub enum Report {
    Terminal,
    Log,
}

impl Report {
    fn say(&self, msg: &str) {
        match self {
            Report::Terminal => eprintln!("{msg}"),
            Report::Log => tracing::info!(target: "kumo::image", "{msg}"),
        }
    }
}

/// Why the base image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} is not installed (apt-get install {0})")]
    Missing(&'static str),
    #[error("{command} failed: {detail}")]
    Failed {
        command: &'static str,
        detail: String,
    },
    #[error("the image has no {0}")]
    NoKernel(String),
}

/// Detaches every mount at or below `dir`, deepest first.
fn unmount_under(dir: &Path) {
    // /proc/mounts has absolute paths with symlinks resolved.
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let dir = dir.as_path();
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let mut points: Vec<PathBuf> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        // /proc/mounts escapes spaces and the like as octal; the build's paths have none.
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        if let Err(e) = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH) {
            eprintln!("kumo image build: cannot unmount {}: {e}", p.display());
        }
    }
}

/// An I/O failure while doing `what`.
fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> ImageError {
    let what = what.to_string();
    move |source| ImageError::Io { what, source }
}

/// Builds the base image in `dir` (or finds it built); returns its root file system.
pub fn build(dir: &Path, report: &Report) -> Result<PathBuf, ImageError> {
    if let Some(root) = base_root(dir) {
        report.say(&format!("image {RECIPE}: cached at {}", root.display()));
        return Ok(root);
    }
    let d = dir.join(RECIPE);
    std::fs::create_dir_all(&d).map_err(io(d.display()))?;
    // One build at a time per recipe (`kumo serve` building at first start, `kumo image build`
    // beside it): the second waits, then finds the first's image.
    let lock = std::fs::File::create(d.join("build.lock")).map_err(io(d.display()))?;
    let _held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| io(format!("locking {}", d.display()))(e.into()))?;
    if let Some(root) = base_root(dir) {
        report.say(&format!(
            "image {RECIPE}: built meanwhile at {}",
            root.display()
        ));
        return Ok(root);
    }
    let tmp = d.join("rootfs.tmp");
    // A build killed midway (its server killed, say) can leave debootstrap's /proc mounted in
    // its tree: without unmounting it first, the tree cannot be removed, and every later
    // build would unpack over the leftovers and fail.
    unmount_under(&tmp);
    let _ = std::fs::remove_dir_all(&tmp);
    if !can_build() {
        return Err(ImageError::Missing("debootstrap"));
    }
    report.say(&format!(
        "image {RECIPE}: debootstrap {SUITE} from {MIRROR}"
    ));
    let mut child = Command::new("debootstrap")
        .args(["--variant=minbase", &format!("--include={PACKAGES}"), SUITE])
        .arg(&tmp)
        .arg(MIRROR)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(io("debootstrap"))?;
    let mut bar = Progress::new(report);
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            bar.line(&line);
        }
    }
    bar.done();
    let status = child.wait().map_err(io("debootstrap"))?;
    if !status.success() {
        return Err(ImageError::Failed {
            command: "debootstrap",
            detail: format!(
                "{status}; see {}/debootstrap/debootstrap.log",
                tmp.display()
            ),
        });
    }
    finish(&tmp).map_err(io("finishing the image"))?;
    report.say(&format!(
        "image {RECIPE}: kernel, initramfs and disk for the vm driver"
    ));
    vm_artifacts(&tmp, &d)?;
    let root = d.join("rootfs");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::rename(&tmp, &root).map_err(io(root.display()))?;
    std::fs::write(d.join("READY"), format!("{RECIPE}\n")).map_err(io("stamp"))?;
    report.say(&format!("image {RECIPE}: built at {}", root.display()));
    Ok(root)
}

/// Kumo's files in the image, and what must not be shared between instances removed.
fn finish(root: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let init = root.join("sbin/kumo-init");
    std::fs::write(&init, INIT)?;
    std::fs::set_permissions(&init, std::fs::Permissions::from_mode(0o755))?;
    // The guest's power commands ask Kumo's init (PID 1) to power off or reboot.
    for cmd in ["poweroff", "halt", "shutdown", "reboot"] {
        let p = root.join("usr/local/sbin").join(cmd);
        std::fs::write(&p, POWER)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
    }
    std::fs::create_dir_all(root.join("etc/kumo"))?;
    std::fs::create_dir_all(root.join("var/lib/kumo"))?;
    // Under `vm`: the DHCP client's event script, and AWS's device names for the disks;
    // under both, a Session Manager session.
    for (path, text) in [
        ("etc/kumo/dhcp-event", DHCP_EVENT),
        ("usr/local/sbin/kumo-devname", DEVNAME),
        ("usr/local/sbin/kumo-session", SESSION),
    ] {
        let p = root.join(path);
        std::fs::write(&p, text)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
    }
    std::fs::write(root.join("etc/udev/rules.d/90-kumo-ebs.rules"), UDEV_RULES)?;
    // Each instance makes its own host keys at first boot.
    for e in std::fs::read_dir(root.join("etc/ssh"))?.flatten() {
        if e.file_name().to_string_lossy().starts_with("ssh_host_") {
            std::fs::remove_file(e.path())?;
        }
    }
    let _ = std::fs::write(root.join("etc/machine-id"), "");
    for cache in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        if let Ok(entries) = std::fs::read_dir(root.join(cache)) {
            for e in entries.flatten() {
                if e.path().is_file() {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
    std::fs::write(root.join("etc/hostname"), "localhost\n")?;
    Ok(())
}

/// Copies the kernel and initramfs out of the tree and makes `disk.raw` from it: an MBR with
/// one Linux partition from sector 2048 to the end, holding an ext4 file system (label
/// `kumo-root`) that `mke2fs -d` fills from the tree, so nothing is mounted to build it.
fn vm_artifacts(root: &Path, d: &Path) -> Result<(), ImageError> {
    let boot = root.join("boot");
    let newest = |prefix: &str| -> Result<PathBuf, ImageError> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&boot)
            .map_err(io(boot.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
            })
            .collect();
        found.sort();
        found
            .pop()
            .ok_or_else(|| ImageError::NoKernel(format!("{prefix}* in {}", boot.display())))
    };
    for (src, name) in [
        (newest("vmlinuz-")?, "vmlinuz"),
        (newest("initrd.img-")?, "initrd.img"),
    ] {
        std::fs::copy(&src, d.join(name)).map_err(io(src.display()))?;
    }
    let disk = d.join("disk.raw");
    let tmp = d.join("disk.raw.tmp");
    let _ = std::fs::remove_file(&tmp);
    let bytes = DISK_GIB << 30;
    let f = std::fs::File::create(&tmp).map_err(io(tmp.display()))?;
    f.set_len(bytes).map_err(io(tmp.display()))?;
    let fs_kib = (bytes - PART_START * 512) / 1024;
    let out = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-L", "kumo-root", "-d"])
        .arg(root)
        .arg("-E")
        .arg(format!("offset={}", PART_START * 512))
        .arg(&tmp)
        .arg(format!("{fs_kib}k"))
        .output()
        .map_err(io("mke2fs"))?;
    if !out.status.success() {
        return Err(ImageError::Failed {
            command: "mke2fs",
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    use std::os::unix::fs::FileExt;
    f.write_all_at(&mbr(bytes), 0)
        .and_then(|_| f.sync_all())
        .map_err(io(tmp.display()))?;
    std::fs::rename(&tmp, &disk).map_err(io(disk.display()))
}

/// A master boot record with one Linux partition (type 0x83) from [`PART_START`] to the end
/// of a disk of `bytes`.
fn mbr(bytes: u64) -> [u8; 512] {
    let mut m = [0u8; 512];
    let sectors = (bytes / 512).min(u64::from(u32::MAX));
    m[440..444].copy_from_slice(b"KUMO");
    // Status, CHS start (unused: LBA only), type, CHS end, first LBA, sector count.
    m[446..454].copy_from_slice(&[0x00, 0xfe, 0xff, 0xff, 0x83, 0xfe, 0xff, 0xff]);
    m[454..458].copy_from_slice(&(PART_START as u32).to_le_bytes());
    m[458..462].copy_from_slice(&((sectors - PART_START) as u32).to_le_bytes());
    m[510] = 0x55;
    m[511] = 0xaa;
    m
}

/// A progress bar over debootstrap's `I:` lines: its phases in order, and the package it is on.
struct Progress<'r> {
    report: &'r Report,
    tty: bool,
    phase: usize,
    /// The phase last reported on a line of its own (not on a TTY).
    said: usize,
}

const PHASES: [&str; 6] = [
    "Retrieving",
    "Validating",
    "Extracting",
    "Installing",
    "Unpacking",
    "Configuring",
];

impl<'r> Progress<'r> {
    fn new(report: &'r Report) -> Self {
        Progress {
            report,
            tty: matches!(report, Report::Terminal) && std::io::stderr().is_terminal(),
            phase: 0,
            said: 0,
        }
    }

    fn line(&mut self, line: &str) {
        let Some(msg) = line.strip_prefix("I: ") else {
            return;
        };
        if let Some(i) = PHASES.iter().position(|p| msg.starts_with(p)) {
            self.phase = self.phase.max(i + 1);
        }
        let filled = self.phase * 30 / PHASES.len();
        let bar = format!(
            "[{}{}] {:>3}% {}",
            "#".repeat(filled),
            "-".repeat(30 - filled),
            self.phase * 100 / PHASES.len(),
            msg.chars().take(50).collect::<String>()
        );
        if self.tty {
            let mut err = std::io::stderr();
            let _ = write!(err, "\r\x1b[2K{bar}");
            let _ = err.flush();
        } else if self.phase != self.said {
            self.said = self.phase;
            self.report.say(&bar);
        }
    }

    fn done(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

/// `poweroff`, `halt`, `shutdown` and `reboot` in the guest.
const POWER: &str = r#"#!/bin/sh
# Kumo: ask the instance's init to power off, or to reboot.
sig=USR1
[ "$(basename "$0")" = reboot ] && sig=USR2
for a in "$@"; do
    case "$a" in -r|--reboot) sig=USR2 ;; esac
done
exec kill -"$sig" 1
"#;

/// busybox udhcpc's event script (`vm`): the lease's address, mask and router on the
/// interface, and the VPC's resolver in resolv.conf.
const DHCP_EVENT: &str = r#"#!/bin/sh
# Kumo: udhcpc's events. $interface, $ip, $mask, $router, $dns come from the lease.
case "$1" in
    deconfig)
        ip -4 addr flush dev "$interface"
        ip link set "$interface" up
        ;;
    bound|renew)
        ip addr replace "$ip/$mask" dev "$interface"
        for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
        # The VPC's DHCP options: its name servers (none with no options set) and its
        # domain name as the search list, at every lease, as dhclient writes them on EC2.
        if [ "$interface" = eth0 ]; then
            : > /etc/resolv.conf
            for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
            # Option 119 lists every domain; option 15 holds one.
            [ -n "${search:-$domain}" ] && echo "search ${search:-$domain}" >> /etc/resolv.conf
            echo "options timeout:1 attempts:1" >> /etc/resolv.conf
        fi
        echo "[kumo-init] DHCP: $ip/$mask via ${router%% *} on $interface (lease ${lease}s)"
        ;;
esac
exit 0
"#;

/// udev's rule for virtio disks whose serial is an EBS volume id (`vm`): each gets the names
/// its attachment has on EC2 (`nvme1n1` and `sdf`, or `xvdf`) as links, partitions too.
const UDEV_RULES: &str = r#"# Kumo: EC2's device names for EBS volumes (virtio disks whose serial is the volume id).
SUBSYSTEM=="block", KERNEL=="vd*", ENV{DEVTYPE}=="disk", ATTRS{serial}=="vol*", PROGRAM="/usr/local/sbin/kumo-devname %s{serial}", SYMLINK+="%c"
SUBSYSTEM=="block", KERNEL=="vd*", ENV{DEVTYPE}=="partition", ATTRS{serial}=="vol*", PROGRAM="/usr/local/sbin/kumo-devname %s{serial} %n", SYMLINK+="%c"
# Instance store disks (serial AWS…).
SUBSYSTEM=="block", KERNEL=="vd*", ENV{DEVTYPE}=="disk", ATTRS{serial}=="AWS*", PROGRAM="/usr/local/sbin/kumo-devname %s{serial}", SYMLINK+="%c"
SUBSYSTEM=="block", KERNEL=="vd*", ENV{DEVTYPE}=="partition", ATTRS{serial}=="AWS*", PROGRAM="/usr/local/sbin/kumo-devname %s{serial} %n", SYMLINK+="%c"
"#;

/// The names of a volume's attachment, from Kumo's channel beside the metadata service;
/// with a partition number, the partition's names (`nvme1n1p1`, `xvdf1`).
const DEVNAME: &str = r#"#!/bin/sh
names=$(curl -sf -m 3 "http://169.254.169.254/kumo/guest/dev/$1") || exit 1
out=""
for n in $names; do
    if [ -n "$2" ]; then
        case "$n" in nvme*) n="${n}p$2" ;; *) n="$n$2" ;; esac
    fi
    out="$out $n"
done
[ -n "$out" ] || exit 1
echo $out
"#;

/// One Session Manager session, as SSM Agent runs it: a shell as `ssm-user` (made at the first
/// session, with sudo, as the agent makes it), started in `/usr/bin`, on a PTY of the client's
/// size, its bytes carried over a connection back to Kumo's channel beside the metadata
/// service (bash, for `/dev/tcp`).
const SESSION: &str = r#"#!/bin/bash
# kumo-session ID ROWS COLS
id=$1 rows=$2 cols=$3
if ! getent passwd ssm-user >/dev/null; then
    useradd -m -s /bin/sh ssm-user
    echo 'ssm-user ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/ssm-agent-users
    chmod 440 /etc/sudoers.d/ssm-agent-users
fi
exec 3<>/dev/tcp/169.254.169.254/80 || exit 1
printf 'POST /kumo/ssm/session/%s HTTP/1.1\r\nHost: 169.254.169.254\r\nContent-Length: 0\r\n\r\n' "$id" >&3
IFS= read -r status <&3
case "$status" in "HTTP/1.1 101"*) ;; *) exit 1 ;; esac
while IFS= read -r line <&3; do [ "$line" = $'\r' ] && break; done
cd /usr/bin || exit 1
export TERM=xterm-256color
keys=$(mktemp -u /run/kumo-session.XXXXXX)
mkfifo -m 600 "$keys" || exit 1
# Started in the background by a shell without job control, this ignores SIGINT and SIGQUIT
# (POSIX), and so would everything it starts: the shell's commands get them back, so Ctrl-C
# interrupts them.
# The connection itself (fd 3) is not the shell's: a process it leaves behind must not hold
# the session open.
# The PTY's name is kept for the agent, which sets its size when the client's terminal changes.
pts=/run/kumo-session-$id.tty
env --default-signal=INT,QUIT script -qfc "stty rows $rows cols $cols; tty > $pts; exec su ssm-user -s /bin/sh" /dev/null <"$keys" >&3 2>&3 3>&- &
shell=$!
cat <&3 >"$keys" &
reader=$!
# Whichever side ends first ends the session: the shell's exit closes the connection; the
# connection's end (the client left, TerminateSession) stops script, and the PTY's hang-up
# ends what the session still ran, as a dropped SSH connection does.
wait -n "$shell" "$reader"
kill -TERM "$shell" "$reader" 2>/dev/null
exec 3>&-
wait
rm -f "$keys" "$pts"
"#;

/// The guest's init, PID 1 in the instance, the same for both drivers. In order: the network
/// (the primary address from the subnet's DHCP server, the secondary ones the metadata
/// lists), the metadata, the launch key, the user data once per instance id, sshd.
/// - Under `ns` the driver has given eth0 its MAC and mounted /proc, /sys and /dev.
/// - Under `vm` (`kumo.vm` on the kernel's command line) it mounts those and starts udev
///   first, and after the metadata it names the disks as EC2 does, grows the root partition
///   to its volume (as cloud-init's growpart does), and powers the machine off on the ACPI
///   power button.
const INIT: &str = r#"#!/bin/sh
# Kumo's guest init (PID 1): network, metadata, launch key, user data once per instance, sshd.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
log() { echo "[kumo-init] $*"; }
[ -e /proc/self ] || mount -t proc proc /proc
VM=""
grep -qw kumo.vm /proc/cmdline 2>/dev/null && VM=1
halt_all() {
    log "stopping: sending SIGTERM to all processes"
    kill -TERM -1 2>/dev/null
    sleep 0.3
    kill -KILL -1 2>/dev/null
    if [ -n "$VM" ]; then
        sync
        mount -o remount,ro / 2>/dev/null
        sync
        log "halted"
        if [ "$1" = 100 ]; then echo b > /proc/sysrq-trigger; else echo o > /proc/sysrq-trigger; fi
        sleep 60
    fi
    log "halted"
    exit "$1"
}
# SIGTERM: the server stops the instance. SIGUSR1 / SIGUSR2: the guest itself ran
# poweroff / reboot (see /usr/local/sbin); exit status 100 asks for a reboot.
trap 'halt_all 0' TERM INT
trap 'log "power off requested in the guest"; halt_all 0' USR1
trap 'log "reboot requested in the guest"; halt_all 100' USR2
log "booting $(hostname), kernel $(uname -r)"
IMDS=http://169.254.169.254
if [ -n "$VM" ]; then
    mountpoint -q /sys || mount -t sysfs sysfs /sys
    mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
    mkdir -p /dev/pts /dev/shm
    mountpoint -q /dev/pts || mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
    mountpoint -q /dev/shm || mount -t tmpfs -o mode=1777 tmpfs /dev/shm
    mountpoint -q /run || mount -t tmpfs -o mode=755 tmpfs /run
    mount -o remount,rw /
    log "starting udev"
    /lib/systemd/systemd-udevd --daemon
    udevadm trigger --action=add --type=subsystems
    udevadm trigger --action=add --type=devices
    udevadm settle --timeout=60
    # The ACPI power button (a clean stop from the host) stops the instance as SIGTERM does.
    for e in /sys/class/input/event*; do
        if [ "$(cat "$e/device/name" 2>/dev/null)" = "Power Button" ]; then
            (dd if="/dev/input/${e##*/}" bs=24 count=1 >/dev/null 2>&1 && kill -TERM 1) &
        fi
    done
fi
# The primary address from the subnet's DHCP server (by the interface's MAC), as on EC2.
ip link set lo up
ip link set eth0 up
log "DHCP on eth0"
busybox udhcpc -i eth0 -s /etc/kumo/dhcp-event -t 60 -T 1 -A 1 -n 2>&1 || log "no DHCP lease"
if [ -n "$VM" ]; then
    curl -sf -m 5 -o /etc/kumo/instance.env "$IMDS/kumo/guest/instance.env"
    curl -sf -m 5 -o /var/lib/kumo/cloud-config.sh "$IMDS/kumo/guest/cloud-config.sh" || rm -f /var/lib/kumo/cloud-config.sh
    curl -sf -m 5 -o /etc/kumo/launch-key "$IMDS/kumo/guest/launch-key" || rm -f /etc/kumo/launch-key
    curl -sf -m 5 -o /etc/kumo/ca.pem "$IMDS/kumo/guest/ca.pem" || rm -f /etc/kumo/ca.pem
fi
# The server's local certificate authority, which signs its VPC interface endpoints'
# certificates, is trusted as the image's own authorities are (update-ca-certificates would
# build the same bundle again from this directory).
if [ -s /etc/kumo/ca.pem ]; then
    mkdir -p /usr/local/share/ca-certificates
    cp /etc/kumo/ca.pem /usr/local/share/ca-certificates/kumo-local-ca.crt
    grep -qF "$(sed -n 2p /etc/kumo/ca.pem)" /etc/ssl/certs/ca-certificates.crt 2>/dev/null \
        || cat /etc/kumo/ca.pem >> /etc/ssl/certs/ca-certificates.crt
fi
mkdir -p /run/sshd /run/lock /var/lib/kumo /tmp && chmod 1777 /tmp
[ -f /etc/kumo/instance.env ] && . /etc/kumo/instance.env
# The metadata, through IMDSv2, fetched only when needed: where the host already wrote what
# the metadata says at this boot (HOST_MD=1 in instance.env, only when the metadata endpoint
# is enabled), the init reads that instead of asking for each value.
TOKEN=""
TRIED=""
token() {
    # Asked for once: a disabled endpoint answers every later call at once, without a token.
    [ -n "$TRIED" ] && return 0
    TRIED=1
    i=0
    while [ $i -lt 100 ]; do
        CODE=$(curl -s -m 2 -o /run/kumo-token -w '%{http_code}' -X PUT "$IMDS/latest/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 21600")
        case "$CODE" in
            200) TOKEN=$(cat /run/kumo-token); rm -f /run/kumo-token; return 0 ;;
            # The endpoint is disabled (HttpEndpoint=disabled): no retry will change that.
            403) log "the instance metadata service is disabled" >&2; return 1 ;;
        esac
        i=$((i + 1))
        sleep 0.1
    done
    return 1
}
# `token` runs in the init's own shell (never inside `$(…)`, where what it learns is lost),
# before the first `md` of each step that needs one.
md() { curl -sf -m 5 -H "X-aws-ec2-metadata-token: $TOKEN" "$IMDS/latest/$1"; }
if [ "$HOST_MD" != 1 ]; then
    token
    IID=$(md meta-data/instance-id)
    LOCAL_IP=$(md meta-data/local-ipv4)
    MAC=$(md meta-data/mac)
    CIDR_LEN=$(md "meta-data/network/interfaces/macs/$MAC/subnet-ipv4-cidr-block" | cut -d/ -f2)
    SECONDARY=$(md "meta-data/network/interfaces/macs/$MAC/local-ipv4s" | tail -n +2)
fi
log "instance $IID, address $LOCAL_IP"
# Secondary addresses, as Amazon Linux's ec2-net-utils adds them from the metadata. The ones
# added are remembered, so that the address agent (below) removes only those.
for a in $SECONDARY; do
    ip addr add "$a/$CIDR_LEN" dev eth0 && log "secondary address $a" && echo "$a" >> /run/kumo-addrs-eth0
done
if [ -n "$VM" ]; then
    token
    hostname "$(md meta-data/local-hostname)"
    # The disks' EC2 names (udev asks the metadata's side channel for them).
    udevadm trigger --action=change --subsystem-match=block
    udevadm settle --timeout=30
    ROOT=$(findmnt -no SOURCE /)
    DISK=/dev/$(lsblk -no PKNAME "$ROOT" 2>/dev/null | head -1)
    PART=$(cat "/sys/class/block/${ROOT##*/}/partition" 2>/dev/null)
    if [ -n "$PART" ] && growpart "$DISK" "$PART" >/dev/null 2>&1; then
        resize2fs "$ROOT" >/dev/null 2>&1
        log "grew $ROOT to its volume"
    fi
fi
# The host name resolves locally (sudo looks it up), and DNS goes to the VPC's resolver
# address (its base + 2), answering at once when nothing serves there.
H=$(hostname)
grep -q " $H" /etc/hosts 2>/dev/null || echo "$LOCAL_IP $H ${H%%.*}" >> /etc/hosts
# The VPC's DHCP options, as a DHCP client would write them: its name servers (none when
# the VPC has no options set) and its domain name as the search list.
: > /etc/resolv.conf
for d in $DNS; do echo "nameserver $d" >> /etc/resolv.conf; done
[ -n "$SEARCH" ] && echo "search $SEARCH" >> /etc/resolv.conf
echo "options timeout:1 attempts:1" >> /etc/resolv.conf

USER_NAME=${DEFAULT_USER:-admin}
if ! id "$USER_NAME" >/dev/null 2>&1; then
    useradd -m -s /bin/bash "$USER_NAME"
    log "created user $USER_NAME"
fi
echo "$USER_NAME ALL=(ALL) NOPASSWD:ALL" > /etc/sudoers.d/90-kumo-users
chmod 440 /etc/sudoers.d/90-kumo-users
HOME_DIR=$(getent passwd "$USER_NAME" | cut -d: -f6)
if [ "$HOST_MD" = 1 ]; then
    KEY=$(cat /etc/kumo/launch-key 2>/dev/null)
else
    token
    KEY=$(md meta-data/public-keys/0/openssh-key)
fi
if [ -n "$KEY" ]; then
    mkdir -p "$HOME_DIR/.ssh"
    touch "$HOME_DIR/.ssh/authorized_keys"
    grep -qxF "$KEY" "$HOME_DIR/.ssh/authorized_keys" || echo "$KEY" >> "$HOME_DIR/.ssh/authorized_keys"
    chown -R "$USER_NAME:" "$HOME_DIR/.ssh"
    chmod 700 "$HOME_DIR/.ssh"
    chmod 600 "$HOME_DIR/.ssh/authorized_keys"
    log "installed the launch key for $USER_NAME"
fi

ssh-keygen -A >/dev/null 2>&1
echo "-----BEGIN SSH HOST KEY FINGERPRINTS-----"
# Host keys from the host's pool come with their fingerprints.
if [ -s /etc/ssh/kumo-fingerprints ]; then
    cat /etc/ssh/kumo-fingerprints
else
    for k in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf "$k"; done
fi
echo "-----END SSH HOST KEY FINGERPRINTS-----"
# The public keys too, as cloud-init prints them on EC2: a client can check the host key
# against the console (`kumo ssh` does).
echo "-----BEGIN SSH HOST KEY KEYS-----"
cat /etc/ssh/ssh_host_*_key.pub
echo "-----END SSH HOST KEY KEYS-----"

DONE="/var/lib/kumo/user-data.$IID.done"
if [ -n "$IID" ] && [ ! -e "$DONE" ]; then
    UD=/var/lib/kumo/user-data
    [ "$HOST_MD" = 1 ] && [ "$USER_DATA" != 1 ] || token
    if [ "$HOST_MD" = 1 ] && [ "$USER_DATA" != 1 ]; then
        : > "$UD"
    elif md user-data > "$UD" 2>/dev/null && [ -s "$UD" ]; then
        case "$(head -c 2 "$UD")" in
            '#!')
                chmod 700 "$UD"
                log "running user data"
                "$UD"
                log "user data exited with status $?"
                ;;
            '#c')
                if head -1 "$UD" | grep -q '^#cloud-config' && [ -f /var/lib/kumo/cloud-config.sh ]; then
                    log "running #cloud-config (write_files, users, runcmd)"
                    sh /var/lib/kumo/cloud-config.sh
                    log "cloud-config exited with status $?"
                else
                    log "user data is neither a script (#!) nor #cloud-config; not run"
                fi
                ;;
            *)
                log "user data is neither a script (#!) nor #cloud-config; not run"
                ;;
        esac
    fi
    touch "$DONE"
fi

/usr/sbin/sshd -D -e &
log "ready: sshd started"

# The run-command agent (`kumo ssm send-command`, SSM SendCommand): takes queued commands
# from Kumo's channel beside the metadata service and hands back their output.
ssm_agent() {
    while :; do
        if curl -sf -m 5 -o /run/kumo-ssm.cmd "$IMDS/kumo/ssm/next" 2>/dev/null; then
            ID=$(head -1 /run/kumo-ssm.cmd)
            case "$ID" in
                session:*)
                    # A Session Manager session runs beside the agent, for as long as it lasts.
                    /usr/local/sbin/kumo-session "${ID#session:}" $(sed -n 2p /run/kumo-ssm.cmd) </dev/null >/dev/null 2>&1 &
                    continue
                    ;;
                resize:*)
                    # A session's terminal changed size: its PTY takes the new one, and what
                    # runs on it gets SIGWINCH.
                    set -- $(sed -n 2p /run/kumo-ssm.cmd)
                    pts=$(cat "/run/kumo-session-${ID#resize:}.tty" 2>/dev/null) &&
                        stty -F "$pts" rows "$1" cols "$2" 2>/dev/null
                    continue
                    ;;
            esac
            tail -n +2 /run/kumo-ssm.cmd > /run/kumo-ssm.sh
            (cd /root && sh /run/kumo-ssm.sh > /run/kumo-ssm.out 2> /run/kumo-ssm.err)
            CODE=$?
            curl -sf -m 5 -X PUT --data-binary @/run/kumo-ssm.out "$IMDS/kumo/ssm/out/$ID" >/dev/null
            curl -sf -m 5 -X PUT --data-binary @/run/kumo-ssm.err "$IMDS/kumo/ssm/err/$ID" >/dev/null
            curl -sf -m 5 -X PUT --data-binary "$CODE" "$IMDS/kumo/ssm/exit/$ID" >/dev/null
        else
            sleep 0.5
        fi
    done
}
ssm_agent &

# Interfaces and addresses, followed while the instance runs as Amazon Linux's ec2-net-utils
# follows them: every second the metadata is asked for each interface's `local-ipv4s`. eth0's
# secondaries and every address of a plugged interface (eth1…) are added; the ones the
# metadata no longer lists are removed, but only ones added from it (an address the user added
# by hand, one of a delegated prefix's say, stays). A plugged interface gets its own routing
# table, so replies leave by the interface their request came in on.
sync_iface() {
    dev=$1
    mac=$(cat "/sys/class/net/$dev/address")
    WANT=$(md "meta-data/network/interfaces/macs/$mac/local-ipv4s") || return 1
    WANT=" $(echo $WANT | tr '\n' ' ') "
    len=$CIDR_LEN
    if [ "$dev" != eth0 ]; then
        n=${dev#eth}
        table=$((10000 + n))
        # Set up once per interface plugged: an interface unplugged and another plugged at
        # the same index within one pass has another MAC, and is set up anew.
        known=""
        [ -f "/run/kumo-net-$dev" ] && read known len gw cidr < "/run/kumo-net-$dev"
        if [ "$known" != "$mac" ]; then
            cidr=$(md "meta-data/network/interfaces/macs/$mac/subnet-ipv4-cidr-block") || return 1
            base=${cidr%/*}
            len=${cidr#*/}
            gw="${base%.*}.$(( ${base##*.} + 1 ))"
            echo "$mac $len $gw $cidr" > "/run/kumo-net-$dev"
            for a in $(cat "/run/kumo-addrs-$dev" 2>/dev/null); do
                ip rule del from "$a" lookup $table 2>/dev/null
            done
            rm -f "/run/kumo-addrs-$dev"
            log "interface $dev ($mac) plugged"
        fi
        ip link set "$dev" up
        ip route replace "$cidr" dev "$dev" table $table 2>/dev/null
        ip route replace default via "$gw" dev "$dev" table $table 2>/dev/null
    fi
    HAVE=" $(ip -4 -o addr show dev "$dev" | awk '{print $4}' | cut -d/ -f1 | tr '\n' ' ') "
    for a in $WANT; do
        [ "$dev" = eth0 ] && [ "$a" = "$LOCAL_IP" ] && continue
        case "$HAVE" in *" $a "*) continue ;; esac
        ip addr add "$a/$len" dev "$dev" || continue
        log "address $a on $dev"
        echo "$a" >> "/run/kumo-addrs-$dev"
        [ "$dev" != eth0 ] && ip rule add from "$a" lookup $table
    done
    for a in $(cat "/run/kumo-addrs-$dev" 2>/dev/null); do
        case "$WANT" in *" $a "*) continue ;; esac
        ip addr del "$a/$len" dev "$dev" 2>/dev/null && log "address $a removed from $dev"
        [ "$dev" != eth0 ] && ip rule del from "$a" lookup $table 2>/dev/null
        grep -vxF "$a" "/run/kumo-addrs-$dev" > "/run/kumo-addrs-$dev.new"
        mv "/run/kumo-addrs-$dev.new" "/run/kumo-addrs-$dev"
    done
    # IPv6: the interface's `ipv6s` as /128s, and the VPC router (fe80::1 on every link) as
    # the primary interface's way to everything else. No addresses: the path answers 404; any
    # other failure (a timeout, an expired token) changes nothing this round.
    code=$(curl -s -m 5 -o /run/kumo-ipv6s -w '%{http_code}' -H "X-aws-ec2-metadata-token: $TOKEN" \
        "$IMDS/latest/meta-data/network/interfaces/macs/$mac/ipv6s")
    case "$code" in
        200) WANT6=" $(tr '\n' ' ' < /run/kumo-ipv6s) " ;;
        404) WANT6="  " ;;
        *) return 1 ;;
    esac
    HAVE6=" $(ip -6 -o addr show dev "$dev" scope global | awk '{print $4}' | cut -d/ -f1 | tr '\n' ' ') "
    for a in $WANT6; do
        case "$HAVE6" in *" $a "*) continue ;; esac
        ip -6 addr add "$a/128" dev "$dev" nodad || continue
        log "IPv6 address $a on $dev"
        echo "$a" >> "/run/kumo-addrs6-$dev"
    done
    if [ "$dev" = eth0 ] && [ "$WANT6" != "  " ]; then
        ip -6 route replace default via fe80::1 dev eth0 2>/dev/null
    fi
    for a in $(cat "/run/kumo-addrs6-$dev" 2>/dev/null); do
        case "$WANT6" in *" $a "*) continue ;; esac
        ip -6 addr del "$a/128" dev "$dev" 2>/dev/null && log "IPv6 address $a removed from $dev"
        grep -vxF "$a" "/run/kumo-addrs6-$dev" > "/run/kumo-addrs6-$dev.new"
        mv "/run/kumo-addrs6-$dev.new" "/run/kumo-addrs6-$dev"
    done
    return 0
}
address_agent() {
    while :; do
        sleep 1
        for dev in $(ls /sys/class/net); do
            case "$dev" in eth*) ;; *) continue ;; esac
            if ! sync_iface "$dev"; then
                # A token expires: ask for a new one; while the endpoint is disabled or does
                # not answer, try again a little later.
                TRIED=""
                token || sleep 5
                break
            fi
        done
        # An unplugged interface's rules and notes go with it.
        for f in /run/kumo-net-eth*; do
            [ -e "$f" ] || continue
            dev=${f#/run/kumo-net-}
            [ -e "/sys/class/net/$dev" ] && continue
            for a in $(cat "/run/kumo-addrs-$dev" 2>/dev/null); do
                ip rule del from "$a" lookup $((10000 + ${dev#eth})) 2>/dev/null
            done
            rm -f "$f" "/run/kumo-addrs-$dev" "/run/kumo-addrs6-$dev"
            log "interface $dev unplugged"
        done
    done
}
[ -n "$MAC" ] && address_agent &
while :; do
    sleep 3600 &
    wait $!
done
"#;
