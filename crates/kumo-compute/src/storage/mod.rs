//! The disks of an `ns` guest: volumes exported by `qemu-storage-daemon` (a qcow2 file as a
//! raw FUSE file, a loop device on it, its node in the guest's `/dev`), grown and
//! snapshotted live over QMP, and the instance store (sparse files on loop devices, blank at
//! each start).

pub(crate) mod qmp;

use crate::host::net::{self, short};
use crate::{ComputeError, InstanceSpec, VolumeSpec};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The disks an `ns` guest has from its boot: instance store loop devices and volumes.
#[derive(Default)]
pub(crate) struct BootDevices {
    pub(crate) ephemeral: Vec<(VolumeSpec, String)>,
    pub(crate) volumes: HashMap<String, LiveVolume>,
}

impl BootDevices {
    /// Gives them back when the boot failed after they were made.
    pub(crate) fn release(self) {
        for (_, lv) in self.volumes {
            lv.stop();
        }
        for (_, dev) in self.ephemeral {
            let _ = net::run("losetup", &["-d", &dev]);
        }
    }
}

/// One volume's export: `qemu-storage-daemon` serves the qcow2 file as a raw FUSE file, and a
/// loop device sits on that. Every guest the volume is attached to (Multi-Attach) shares the
/// one export, as EBS shares one volume, so all of them read what any of them writes (with
/// `O_DIRECT`, past their own page caches); the last guest to let go stops it.
pub(crate) struct Export {
    daemon: Mutex<Child>,
    pub(crate) qmp: PathBuf,
    pub(crate) raw: PathBuf,
    pub(crate) loop_dev: String,
    /// The block node the export reads and writes (the newest overlay), and how many overlays
    /// were added (for node names).
    layers: Mutex<(String, u32)>,
}

/// The live exports, by volume file, with how many guests hold each. A guest takes and gives
/// back its hold under this lock, and the last one stops the export before the lock is let
/// go: a guest attaching the volume meanwhile waits for the image to be free, and never
/// finds an export half stopped.
type Registry = HashMap<PathBuf, (Arc<Export>, usize)>;
static EXPORTS: Mutex<Option<Registry>> = Mutex::new(None);

fn exports() -> std::sync::MutexGuard<'static, Option<Registry>> {
    EXPORTS.lock().unwrap_or_else(|p| p.into_inner())
}

impl Export {
    /// The volume's export, started unless a guest already has it, with one more hold on it.
    /// `dir` holds the FUSE file and the QMP socket, outside any one instance's directory.
    fn take(dir: &Path, v: &VolumeSpec) -> Result<Arc<Export>, ComputeError> {
        let mut all = exports();
        let map = all.get_or_insert_with(HashMap::new);
        if let Some((e, holds)) = map.get_mut(&v.file) {
            *holds += 1;
            return Ok(e.clone());
        }
        let e = Arc::new(Export::start(dir, v)?);
        map.insert(v.file.clone(), (e.clone(), 1));
        Ok(e)
    }

    /// Gives back one hold on the export of `file`; the last one stops it.
    fn give_back(file: &Path) {
        let mut all = exports();
        let Some(map) = all.as_mut() else { return };
        let last = match map.get_mut(file) {
            Some((_, holds)) if *holds > 1 => {
                *holds -= 1;
                false
            }
            Some(_) => true,
            None => false,
        };
        if last {
            if let Some((e, _)) = map.remove(file) {
                e.stop();
            }
        }
    }

    fn start(dir: &Path, v: &VolumeSpec) -> Result<Export, ComputeError> {
        std::fs::create_dir_all(dir).map_err(|e| ComputeError::io("volume directory", e))?;
        let raw = dir.join(format!("{}.raw", v.volume_id));
        let qmp = dir.join(format!("{}.qmp", v.volume_id));
        std::fs::File::create(&raw).map_err(|e| ComputeError::io("FUSE mount point", e))?;
        let _ = std::fs::remove_file(&qmp);
        // The export reads and writes through a throttle filter on the volume's own group:
        // the volume's IOPS and throughput hold for every guest it is attached to together,
        // as EBS's do, and a ModifyVolume changes the group's limits live.
        let group = serde_json::json!({
            "qom-type": "throttle-group",
            "id": THROTTLE_GROUP,
            "limits": v.limits.qemu(),
        });
        let mut daemon = Command::new("qemu-storage-daemon")
            .arg("--object")
            .arg(group.to_string())
            .arg("--blockdev")
            .arg(format!(
                "driver=file,node-name=file0,filename={}",
                v.file.display()
            ))
            .arg("--blockdev")
            .arg("driver=qcow2,node-name=disk,file=file0")
            .arg("--blockdev")
            .arg(format!(
                "driver=throttle,node-name={THROTTLE_NODE},throttle-group={THROTTLE_GROUP},file=disk"
            ))
            .arg("--export")
            .arg(format!(
                "type=fuse,id=exp0,node-name={THROTTLE_NODE},mountpoint={},writable=on",
                raw.display()
            ))
            .arg("--chardev")
            .arg(format!(
                "socket,id=qmp0,path={},server=on,wait=off",
                qmp.display()
            ))
            .arg("--monitor")
            .arg("chardev=qmp0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| ComputeError::io("start qemu-storage-daemon", e))?;
        // The export is up once the mount point is a FUSE file of the volume's size.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let fused = std::fs::metadata(&raw)
                .map(|m| m.len() > 0)
                .unwrap_or(false);
            if fused && qmp.exists() {
                break;
            }
            if let Ok(Some(st)) = daemon.try_wait() {
                return Err(ComputeError::Guest(format!(
                    "qemu-storage-daemon exited ({st}) for {}",
                    v.volume_id
                )));
            }
            if Instant::now() > deadline {
                let _ = daemon.kill();
                let _ = daemon.wait();
                return Err(ComputeError::Guest(format!(
                    "qemu-storage-daemon did not export {}",
                    v.volume_id
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        no_readahead(&raw);
        let loop_dev = match attach_loop(&raw) {
            Ok(d) => d,
            Err(e) => {
                let _ = daemon.kill();
                let _ = daemon.wait();
                let _ = std::fs::remove_file(&raw);
                return Err(e);
            }
        };
        Ok(Export {
            daemon: Mutex::new(daemon),
            qmp,
            raw,
            loop_dev,
            layers: Mutex::new(("disk".into(), 0)),
        })
    }

    /// Sends QMP commands to the daemon, one after the other; fails on the first error.
    pub(crate) fn qmp(&self, commands: &[String]) -> Result<(), ComputeError> {
        qmp::qmp(&self.qmp, commands)
    }

    /// Changes the volume's I/O limits for every guest that has it.
    pub(crate) fn set_limits(&self, limits: crate::IoLimits) -> Result<(), ComputeError> {
        self.qmp(&[serde_json::json!({
            "execute": "qom-set",
            "arguments": {
                "path": format!("/objects/{THROTTLE_GROUP}"),
                "property": "limits",
                "value": limits.qemu(),
            },
        })
        .to_string()])
    }
}

/// Turns the host's readahead off on an export's FUSE file: the loop device reads it through
/// the host's page cache, and readahead would turn a guest's one 4 KiB read into a 128 KiB
/// request, so the daemon's throttle would count fewer operations than the guest made. (A
/// direct-I/O loop device would skip the cache altogether, but FUSE corrupts XFS under it.)
/// Reads the host page cache still holds are not counted; writes always are.
fn no_readahead(raw: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(dev) = std::fs::metadata(raw).map(|m| m.dev()) else {
        return;
    };
    let bdi = format!(
        "/sys/class/bdi/{}:{}/read_ahead_kb",
        nix::sys::stat::major(dev),
        nix::sys::stat::minor(dev)
    );
    if let Err(e) = std::fs::write(&bdi, "0") {
        tracing::warn!(file = %raw.display(), error = %e, "cannot turn readahead off on a volume's export; its IOPS limit counts merged reads");
    }
}

/// The throttle group of a volume's daemon, and the filter node the export sits on. Live
/// snapshots put their overlays beneath the filter, so it stays the export's node.
const THROTTLE_GROUP: &str = "iolimits";
const THROTTLE_NODE: &str = "limited";

impl Export {
    /// The last guest let go: the loop device goes, then the daemon (SIGTERM, so it closes
    /// the image cleanly). Called under the registry's lock.
    fn stop(&self) {
        let _ = net::run("losetup", &["-d", &self.loop_dev]);
        let mut daemon = self.daemon.lock().unwrap_or_else(|p| p.into_inner());
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(daemon.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = daemon.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = daemon.kill();
        let _ = daemon.wait();
        let _ = std::fs::remove_file(&self.raw);
        let _ = std::fs::remove_file(&self.qmp);
    }
}

/// A volume in one guest: the volume's shared [`Export`], with its loop device's node in the
/// guest's `/dev` under the attachment's device name.
pub(crate) struct LiveVolume {
    pub(crate) spec: VolumeSpec,
    pub(crate) export: Arc<Export>,
}

impl LiveVolume {
    /// Shows a volume's export (started unless another guest already has it) under `root`
    /// (the guest's `/`, seen from the host: [`guest_root`]). `run` is the instance's run
    /// directory; the export lives beside the instances' directories, as it may outlive this
    /// one's attachment.
    pub(crate) fn start(
        run: &Path,
        root: &Path,
        v: &VolumeSpec,
    ) -> Result<LiveVolume, ComputeError> {
        let lv = LiveVolume::open(run, v)?;
        lv.show(root)?;
        Ok(lv)
    }

    /// A hold on the volume's export (started unless another guest already has it), shown
    /// nowhere yet: a `vm` guest opens its loop device as a disk of its own.
    pub(crate) fn open(run: &Path, v: &VolumeSpec) -> Result<LiveVolume, ComputeError> {
        let dir = run.parent().unwrap_or(run).join("_volumes");
        Ok(LiveVolume {
            spec: v.clone(),
            export: Export::take(&dir, v)?,
        })
    }

    pub(crate) fn show(&self, root: &Path) -> Result<(), ComputeError> {
        show_device(root, &self.export.loop_dev, &self.spec)
    }

    /// Pushes the loop device's and the FUSE file's cached writes to the storage daemon.
    pub(crate) fn flush(&self) -> Result<(), ComputeError> {
        net::run("blockdev", &["--flushbufs", &self.export.loop_dev])?;
        std::fs::File::open(&self.export.raw)
            .and_then(|f| f.sync_all())
            .map_err(|e| ComputeError::io("flush the volume", e))?;
        self.qmp(&[])
    }

    pub(crate) fn hide(&self, root: &Path) {
        unlist_device(root, &self.export.loop_dev);
        let _ = std::fs::remove_file(root.join(self.spec.device.trim_start_matches('/')));
        if let Some(alias) = &self.spec.alias {
            let _ = std::fs::remove_file(root.join(alias.trim_start_matches('/')));
        }
    }

    /// Lets go of the export; the last guest's stop ends it.
    pub(crate) fn stop(self) {
        drop(self);
    }

    /// Sends QMP commands to the volume's daemon.
    pub(crate) fn qmp(&self, commands: &[String]) -> Result<(), ComputeError> {
        self.export.qmp(commands)
    }
}

impl Drop for LiveVolume {
    /// However a guest's volume goes (a stop, a detach, a boot that failed after it), its hold
    /// on the export goes with it.
    fn drop(&mut self) {
        Export::give_back(&self.spec.file);
    }
}

/// A running guest's `/` as the host sees it: through its init's root, in the guest's mount
/// namespace.
pub(crate) fn guest_root(init_pid: i32) -> PathBuf {
    PathBuf::from(format!("/proc/{init_pid}/root"))
}

/// Puts a block device's node in the guest's /dev (under `root`, the guest's `/` seen from the
/// host) under the name the spec gives it (and the attachment's name, as a link).
pub(crate) fn show_device(root: &Path, dev: &str, spec: &VolumeSpec) -> Result<(), ComputeError> {
    use std::os::unix::fs::MetadataExt;
    let rdev = std::fs::metadata(dev)
        .map_err(|e| ComputeError::io("loop device", e))?
        .rdev();
    let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
    block_node(
        &root.join(spec.device.trim_start_matches('/')),
        major,
        minor,
    )?;
    if let Some(alias) = &spec.alias {
        let link = root.join(alias.trim_start_matches('/'));
        let _ = std::fs::remove_file(&link);
        let target = spec.device.trim_start_matches("/dev/");
        std::os::unix::fs::symlink(target, &link)
            .map_err(|e| ComputeError::io(format!("device link {alias}"), e))?;
    }
    // A node under the kernel's name too, so `lsblk` finds its file system and mount point;
    // and, once the guest runs, a link in its own `/sys/block` (what `lsblk` lists). At boot
    // the guest's init lists the disks it finds in `/dev` ([`list_devices`]).
    let kernel = kernel_name(dev);
    if root.join("sys/devices").is_dir() {
        let listed = root.join("sys/block").join(kernel);
        let _ = std::fs::remove_file(&listed);
        std::os::unix::fs::symlink(format!("../devices/virtual/block/{kernel}"), &listed)
            .map_err(|e| ComputeError::io(format!("/sys/block/{kernel}"), e))?;
    }
    block_node(&root.join("dev").join(kernel), major, minor)
}

/// A block device node at `path` (replacing what was there), root's alone to open.
fn block_node(path: &Path, major: u64, minor: u64) -> Result<(), ComputeError> {
    let _ = std::fs::remove_file(path);
    nix::sys::stat::mknod(
        path,
        nix::sys::stat::SFlag::S_IFBLK,
        nix::sys::stat::Mode::from_bits_truncate(0o660),
        nix::sys::stat::makedev(major, minor),
    )
    .map_err(|e| ComputeError::io(format!("device node {}", path.display()), e.into()))
}

/// A device's kernel name (`/dev/loop3` → `loop3`).
fn kernel_name(dev: &str) -> &str {
    dev.rsplit('/').next().unwrap_or(dev)
}

/// Links every whole disk whose node is in the guest's `/dev` into its own `/sys/block` (a
/// tmpfs the init stage mounts over sysfs's, which lists every disk of the host): what
/// `lsblk` lists is then the guest's disks, under their kernel names.
pub(crate) fn list_devices(root: &Path) {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Ok(entries) = std::fs::read_dir(root.join("dev")) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(m) = e.metadata() else { continue };
        if !m.file_type().is_block_device() {
            continue;
        }
        let (major, minor) = (
            nix::sys::stat::major(m.rdev()),
            nix::sys::stat::minor(m.rdev()),
        );
        let dev = root.join(format!("sys/dev/block/{major}:{minor}"));
        if dev.join("partition").exists() {
            continue;
        }
        let Ok(target) = std::fs::read_link(&dev) else {
            continue;
        };
        let (Some(name), Ok(rel)) = (target.file_name(), target.strip_prefix("../../")) else {
            continue;
        };
        let _ = std::os::unix::fs::symlink(
            Path::new("..").join(rel),
            root.join("sys/block").join(name),
        );
    }
}

/// Takes a device out of the guest's `/sys/block` and `/dev` (its EC2 names go separately).
pub(crate) fn unlist_device(root: &Path, dev: &str) {
    let kernel = kernel_name(dev);
    let _ = std::fs::remove_file(root.join("sys/block").join(kernel));
    let _ = std::fs::remove_file(root.join("dev").join(kernel));
}

/// The instance's instance store disks: sparse files in its run directory, made blank when
/// missing (at a start after a stop), named after the root (`/dev/nvme1n1`…) and serialed as
/// EC2's instance store NVMe disks are (`AWS…`).
pub(crate) fn instance_store(
    run: &Path,
    spec: &InstanceSpec,
) -> Result<Vec<VolumeSpec>, ComputeError> {
    let dir = run.join("ephemeral");
    if spec.instance_store.is_empty() {
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(&dir).map_err(|e| ComputeError::io("instance store", e))?;
    let hex: String = short(&spec.id).to_uppercase();
    let mut out = Vec::new();
    for (i, gb) in spec.instance_store.iter().enumerate() {
        let file = dir.join(format!("{i}.img"));
        if !file.exists() {
            let f =
                std::fs::File::create(&file).map_err(|e| ComputeError::io("instance store", e))?;
            f.set_len(gb * 1_000_000_000)
                .map_err(|e| ComputeError::io("instance store", e))?;
        }
        out.push(VolumeSpec {
            volume_id: format!("AWS{hex:0>8}{i:09X}"),
            file,
            device: format!("/dev/nvme{}n1", i + 1),
            alias: None,
            limits: crate::IoLimits::default(),
            shared: false,
        });
    }
    Ok(out)
}

/// Grows a live `ns` volume: the daemon's node, then the loop device.
pub(crate) fn grow_live(lv: &LiveVolume, bytes: u64) -> Result<(), ComputeError> {
    {
        // The filter passes the resize to the newest overlay beneath it, under the layers'
        // lock: a snapshot through another guest of a Multi-Attach volume cannot put a new
        // overlay there meanwhile.
        let _layers = lv.export.layers.lock().unwrap_or_else(|p| p.into_inner());
        lv.qmp(&[format!(
            r#"{{"execute":"block_resize","arguments":{{"node-name":"{THROTTLE_NODE}","size":{bytes}}}}}"#
        )])?;
    }
    // The kernel caches the FUSE file's size for a second: wait until a stat shows the new
    // one, then the loop device learns it.
    let deadline = Instant::now() + Duration::from_secs(3);
    while std::fs::metadata(&lv.export.raw)
        .map(|m| m.len())
        .unwrap_or(0)
        < bytes
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    net::run("losetup", &["--set-capacity", &lv.export.loop_dev])?;
    Ok(())
}

/// A live `ns` volume's file was frozen as a snapshot: its daemon moves onto the new overlay.
pub(crate) fn snapshot_live(lv: &LiveVolume) -> Result<(), ComputeError> {
    // What the guest wrote but the loop device or the FUSE file still caches goes to the
    // daemon first, so it lands in the frozen layer (the daemon still writes there).
    lv.flush()?;
    // The daemon still holds the old file (now the snapshot) open: open the new overlay
    // without a backing and put it on top, so reads fall through to the snapshot and
    // writes land in the overlay; the export follows the top.
    let mut layers = lv.export.layers.lock().unwrap_or_else(|p| p.into_inner());
    let n = layers.1 + 1;
    let (file, node) = (format!("ovl{n}-file"), format!("ovl{n}"));
    lv.qmp(&[
        format!(
            r#"{{"execute":"blockdev-add","arguments":{{"driver":"file","node-name":"{file}","filename":"{}"}}}}"#,
            lv.spec.file.display()
        ),
        format!(
            r#"{{"execute":"blockdev-add","arguments":{{"driver":"qcow2","node-name":"{node}","file":"{file}","backing":null}}}}"#
        ),
        format!(
            r#"{{"execute":"blockdev-snapshot","arguments":{{"node":"{}","overlay":"{node}"}}}}"#,
            layers.0
        ),
    ])?;
    *layers = (node, n);
    Ok(())
}

/// A volume with its guest device decided: an empty device (a Nitro type's) becomes the
/// lowest free `/dev/nvmeNn1` from 1 (the root volume is `nvme0n1`).
pub(crate) fn with_device<'a>(
    v: &VolumeSpec,
    used: impl Iterator<Item = &'a VolumeSpec>,
) -> VolumeSpec {
    let used: Vec<&str> = used.map(|u| u.device.as_str()).collect();
    let mut v = v.clone();
    if v.device.is_empty() {
        let n = (1..)
            .find(|n| !used.contains(&format!("/dev/nvme{n}n1").as_str()))
            .unwrap_or(1);
        v.device = format!("/dev/nvme{n}n1");
    }
    v
}

/// Puts a loop device on `file`; its name (`/dev/loopN`). The free device the kernel names
/// can be one still being released by an earlier detach (a volume just detached, a forced
/// detach whose device the guest still has mounted), and binding it then fails with EBUSY:
/// a few more tries take the next free one.
pub(crate) fn attach_loop(file: &Path) -> Result<String, ComputeError> {
    let mut tries = 0;
    loop {
        match net::run("losetup", &["--find", "--show", &file.to_string_lossy()]) {
            Ok(out) => return Ok(out.trim().to_string()),
            Err(e) if tries >= 4 => return Err(e),
            Err(e) => {
                tries += 1;
                tracing::debug!(file = %file.display(), error = %e, "loop device busy; trying the next free one");
                std::thread::sleep(Duration::from_millis(50 * tries));
            }
        }
    }
}

/// A loop device's counters, from `/sys/block/<loopN>/stat` (the kernel's block layer
/// statistics: what reached the device, whichever guest sent it).
pub(crate) fn loop_counters(dev: &str) -> Option<crate::BlockCounters> {
    let name = dev.rsplit('/').next()?;
    parse_block_stat(&std::fs::read_to_string(format!("/sys/block/{name}/stat")).ok()?)
}

/// Reads the fields of a `stat` file: reads, merged, sectors, ms; writes, merged, sectors,
/// ms; in flight, io ticks (ms busy), time in queue (ms). Sectors are 512 bytes.
pub(crate) fn parse_block_stat(text: &str) -> Option<crate::BlockCounters> {
    let f: Vec<u64> = text
        .split_whitespace()
        .map(|x| x.parse().ok())
        .collect::<Option<Vec<u64>>>()?;
    if f.len() < 11 {
        return None;
    }
    Some(crate::BlockCounters {
        read_ops: f[0],
        read_bytes: f[2] * 512,
        read_time_ms: f[3],
        write_ops: f[4],
        write_bytes: f[6] * 512,
        write_time_ms: f[7],
        busy_ms: f[9],
        queue_ms: f[10],
    })
}

#[cfg(test)]
mod stat_tests {
    #[test]
    fn the_kernels_block_stat_fields() {
        let c = super::parse_block_stat(
            "   69661        0  1422383   223088    14953     1488 10635898   406355        0   599464   630455       72        0 150994944      290     1220      719\n",
        )
        .unwrap();
        assert_eq!(c.read_ops, 69661);
        assert_eq!(c.read_bytes, 1422383 * 512);
        assert_eq!(c.read_time_ms, 223088);
        assert_eq!(c.write_ops, 14953);
        assert_eq!(c.write_bytes, 10635898 * 512);
        assert_eq!(c.write_time_ms, 406355);
        assert_eq!(c.busy_ms, 599464);
        assert_eq!(c.queue_ms, 630455);
        assert_eq!(super::parse_block_stat("1 2 3"), None);
    }
}
