//! The `vm` driver's guests: QEMU virtual machines, driven over QMP. It shares everything
//! around the guest with `ns` (see [`crate::fleet`] and [`crate::host`]): the VPC namespaces, the metadata service,
//! DNS, security groups and cgroups. What differs:
//! - the guest is `qemu-system-x86_64` (q35, KVM where a probe boot shows it works, TCG
//!   otherwise), started inside its VPC's namespace so that its tap is there;
//! - the guest boots the image's own kernel and initramfs, and its root is a virtio disk: a
//!   qcow2 overlay (`disk.qcow2` in the root volume's data directory) on the image's
//!   `disk.raw`;
//! - the guest takes its address from the subnet's DHCP server ([`crate::services::dhcp`]);
//! - volumes are virtio disks hot-plugged over QMP onto PCIe root ports, with the volume id
//!   as serial; the guest's udev rules give them their EC2 names;
//! - a clean stop is the ACPI power button.
//!
//! Why virtio and not NVMe for Nitro types: QEMU's NVMe device cannot be resized while it
//! runs (its node refuses `block_resize`), and EBS growth must show in a running guest.

use crate::storage::qmp::{device_id, node, qmp, serial};
use crate::{ComputeError, InstanceSpec};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Hot-plug slots: PCIe root ports made at boot, one volume each.
pub const PORTS: u32 = 16;

/// PCIe root ports for network interfaces beyond the primary (`np1`…): hot-pluggable, as
/// the volumes' are. An interface takes any free one, so one plugged while an earlier one
/// is still leaving has a port. With the volumes' 16 they fill q35's root bus, which has 32
/// slots.
pub const NIC_PORTS: u32 = 8;

/// An interface beyond the primary, as QEMU knows it: its device and backend ids (unique
/// for the guest's life, so a new one never meets a leaving one's), its tap, its root port.
#[derive(Debug, Clone, PartialEq)]
pub struct NicDevice {
    pub id: String,
    pub netdev: String,
    pub tap: String,
    pub port: u32,
    pub mac: String,
}

impl NicDevice {
    /// The `-netdev` and `-device` of it at boot.
    fn args(&self) -> (String, String) {
        (
            format!(
                "tap,id={},ifname={},script=no,downscript=no",
                self.netdev, self.tap
            ),
            format!(
                "virtio-net-pci,id={},netdev={},mac={},bus=np{}",
                self.id, self.netdev, self.mac, self.port
            ),
        )
    }
}

/// Memory QEMU needs besides the guest's (the translation cache under TCG, devices).
pub const OVERHEAD_MIB: u64 = 384;

/// The image's artifacts and how to run them.
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// `kvm` or `tcg`.
    pub accel: String,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// The base disk every root disk starts from.
    pub disk: PathBuf,
}

/// Why `vm` cannot run here, if it cannot: QEMU or the image's artifacts are missing.
pub fn unavailable(image_dir: &Path) -> Option<String> {
    if Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_err()
    {
        return Some(
            "QEMU (`qemu-system-x86_64`, Debian's qemu-system-x86) is not installed".into(),
        );
    }
    for f in ["vmlinuz", "initrd.img", "disk.raw"] {
        if !image_dir.join(f).exists() {
            return Some(format!(
                "the image has no {f} (rebuild it with `kumo image build`)"
            ));
        }
    }
    None
}

impl VmConfig {
    /// The configuration for the image in `image_dir`, with KVM only where a probe boot
    /// shows it runs a Linux guest: a device node alone proves nothing (a nested, software
    /// `/dev/kvm` hangs real guests).
    pub fn new(image_dir: &Path) -> VmConfig {
        let kernel = image_dir.join("vmlinuz");
        let initrd = image_dir.join("initrd.img");
        let accel = match kvm_probe(&kernel) {
            Ok(()) => "kvm".to_string(),
            Err(why) => {
                tracing::warn!(reason = %crate::error_chain(&why), "KVM is not usable here: the vm driver runs its guests under TCG (software emulation), tens of times slower");
                "tcg".to_string()
            }
        };
        VmConfig {
            accel,
            kernel,
            initrd,
            disk: image_dir.join("disk.raw"),
        }
    }
}

/// Why KVM is not used.
#[derive(Debug, thiserror::Error)]
enum NoKvm {
    #[error("/dev/kvm cannot be opened")]
    NoDevice(#[source] std::io::Error),
    #[error("cannot start QEMU")]
    NoQemu(#[source] std::io::Error),
    #[error("a probe boot under KVM did not reach the kernel's root mount in 8 s")]
    Hangs,
}

/// Boots the image's kernel under KVM with no root: a working KVM reaches the kernel's
/// "no root" panic (and QEMU exits, `-no-reboot`) within seconds.
fn kvm_probe(kernel: &Path) -> Result<(), NoKvm> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map_err(NoKvm::NoDevice)?;
    let mut child = Command::new("qemu-system-x86_64")
        .args([
            "-machine",
            "q35,accel=kvm",
            "-cpu",
            "host",
            "-m",
            "256",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
            "-serial",
            "stdio",
            "-append",
            "console=ttyS0 panic=-1 root=/dev/kumo-probe",
            "-kernel",
        ])
        .arg(kernel)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(NoKvm::NoQemu)?;
    let out = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut seen = String::new();
        if let Some(out) = out {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if line.contains("Kernel panic") || line.contains("VFS:") {
                    seen = line;
                    break;
                }
            }
        }
        seen
    });
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline && !reader.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let seen = reader.join().unwrap_or_default();
    if seen.is_empty() {
        Err(NoKvm::Hangs)
    } else {
        Ok(())
    }
}

/// The instance's root disk, made on its first boot from the image's disk, and grown to its
/// volume's size when the volume grew while it was stopped.
pub fn ensure_disk(cfg: &VmConfig, spec: &InstanceSpec) -> Result<PathBuf, ComputeError> {
    std::fs::create_dir_all(&spec.root_data)
        .map_err(|e| ComputeError::io("root volume directory", e))?;
    let disk = spec.root_data.join("disk.qcow2");
    let size = spec.root_size_gib.max(1) << 30;
    if !disk.exists() {
        if spec.root_data.join("upper").exists() {
            tracing::warn!(instance = %spec.id, "this root volume's data was written under the ns driver; the vm driver starts it from the image's disk");
        }
        let tmp = spec.root_data.join("disk.qcow2.tmp");
        crate::host::net::run(
            "qemu-img",
            &[
                "create",
                "-q",
                "-f",
                "qcow2",
                "-F",
                "raw",
                "-b",
                &cfg.disk.to_string_lossy(),
                &tmp.to_string_lossy(),
                &size.to_string(),
            ],
        )?;
        std::fs::rename(&tmp, &disk).map_err(|e| ComputeError::io("root disk", e))?;
    } else if virtual_size(&disk)? < size {
        crate::host::net::run(
            "qemu-img",
            &["resize", "-q", &disk.to_string_lossy(), &size.to_string()],
        )?;
    }
    Ok(disk)
}

/// A qcow2 file's virtual size, from its header (bytes 24..32, big-endian).
fn virtual_size(path: &Path) -> Result<u64, ComputeError> {
    use std::io::Read;
    let mut h = [0u8; 32];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut h))
        .map_err(|e| ComputeError::io(format!("read {}", path.display()), e))?;
    if &h[..4] != b"QFI\xfb" {
        return Err(ComputeError::Guest(format!(
            "{} is not a qcow2 file",
            path.display()
        )));
    }
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[24..32]);
    Ok(u64::from_be_bytes(b))
}

/// QEMU's command line (after `qemu-system-x86_64`) for an instance.
pub fn args(
    cfg: &VmConfig,
    spec: &InstanceSpec,
    run: &Path,
    disk: &Path,
    (tap, nics): (&str, &[NicDevice]),
    disks: &[(String, Source, u32)],
    store: &[(String, PathBuf, u32)],
) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
    let accel_opts = if cfg.accel == "tcg" {
        "tcg,tb-size=256".to_string()
    } else {
        "kvm".to_string()
    };
    let cpu = if cfg.accel == "kvm" { "host" } else { "max" };
    let smp = spec.vcpus.max(1).to_string();
    let mem = spec.memory_mib.max(256).to_string();
    push(&[
        "-name",
        &spec.id,
        "-machine",
        "q35",
        "-accel",
        &accel_opts,
        "-cpu",
        cpu,
        "-smp",
        &smp,
        "-m",
        &mem,
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
    ]);
    let kernel = cfg.kernel.to_string_lossy().to_string();
    let initrd = cfg.initrd.to_string_lossy().to_string();
    push(&[
        "-kernel",
        &kernel,
        "-initrd",
        &initrd,
        "-append",
        "console=ttyS0 root=/dev/vda1 rw init=/sbin/kumo-init net.ifnames=0 panic=-1 kumo.vm",
    ]);
    let console = format!("file,id=con,path={}", run.join("console.log").display());
    let qmp = format!("unix:{},server=on,wait=off", run.join("qmp.sock").display());
    push(&["-chardev", &console, "-serial", "chardev:con", "-qmp", &qmp]);
    let root_id = spec
        .root
        .as_ref()
        .map(|r| r.volume_id.clone())
        .unwrap_or_else(|| spec.id.clone());
    let root_file = format!("driver=file,node-name=rootfile,filename={}", disk.display());
    let root_dev = format!(
        "virtio-blk-pci,id={ROOT_DEVICE},drive=root,serial={},bus=pcie.0,addr=0x3",
        serial(&root_id)
    );
    push(&[
        "-blockdev",
        &root_file,
        "-blockdev",
        "driver=qcow2,node-name=root,file=rootfile",
        "-device",
        &root_dev,
    ]);
    let netdev = format!("tap,id=net0,ifname={tap},script=no,downscript=no");
    let nic = format!(
        "virtio-net-pci,netdev=net0,mac={},bus=pcie.0,addr=0x2",
        spec.net.mac
    );
    push(&["-netdev", &netdev, "-device", &nic]);
    for p in 1..=PORTS {
        let port = format!("pcie-root-port,id=rp{p},chassis={p},bus=pcie.0");
        push(&["-device", &port]);
    }
    for p in 1..=NIC_PORTS {
        let port = format!("pcie-root-port,id=np{p},chassis={},bus=pcie.0", PORTS + p);
        push(&["-device", &port]);
    }
    for nic in nics {
        let (netdev, device) = nic.args();
        push(&["-netdev", &netdev, "-device", &device]);
    }
    for (volume_id, source, port) in disks {
        let node = source.blockdev(volume_id).to_string();
        let dev = disk_device(volume_id, source, *port);
        push(&["-blockdev", &node, "-device", &dev]);
    }
    // Instance store: raw sparse files, their serial EC2's (`AWS…`).
    for (serial_no, file, port) in store {
        let file_opt = format!(
            "driver=raw,node-name=s{serial_no},file.driver=file,file.filename={}",
            file.display()
        );
        let dev = format!("virtio-blk-pci,drive=s{serial_no},serial={serial_no},bus=rp{port}");
        push(&["-blockdev", &file_opt, "-device", &dev]);
    }
    a
}

/// Where a data disk's blocks come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The volume's qcow2 file, which this QEMU alone opens.
    File(PathBuf),
    /// A Multi-Attach volume: the loop device on its one shared export
    /// (`storage::Export`), which every guest that has the volume opens raw, past the host's
    /// cache, with writes shared: what one guest writes is what another reads.
    Shared(String),
}

impl Source {
    /// The disk's block node (QEMU takes it as `-blockdev` JSON and in `blockdev-add`).
    pub fn blockdev(&self, volume_id: &str) -> serde_json::Value {
        match self {
            Source::File(file) => serde_json::json!({
                "driver": "qcow2", "node-name": node(volume_id),
                "file": {"driver": "file", "filename": file.to_string_lossy()},
            }),
            Source::Shared(dev) => serde_json::json!({
                "driver": "raw", "node-name": node(volume_id),
                "cache": {"direct": true},
                "file": {"driver": "host_device", "filename": dev, "cache": {"direct": true}},
            }),
        }
    }
}

/// The `-device` of a data volume on root port `port`.
fn disk_device(volume_id: &str, source: &Source, port: u32) -> String {
    let shared = if matches!(source, Source::Shared(_)) {
        ",share-rw=on"
    } else {
        ""
    };
    format!(
        "virtio-blk-pci,id={},drive={},serial={},bus=rp{port}{shared}",
        device_id(volume_id),
        node(volume_id),
        serial(volume_id)
    )
}

/// The root disk's device id.
pub const ROOT_DEVICE: &str = "vroot";

/// The QMP command that sets a disk's I/O limits (`device`: its device id). QEMU throttles
/// the device's block backend, whatever node graph is beneath it, so live snapshots and
/// resizes leave the limits in place.
pub fn throttle(device: &str, l: &crate::IoLimits) -> String {
    let mut args = serde_json::json!({
        "id": format!("/machine/peripheral/{device}/virtio-backend"),
        "iops": l.iops, "iops_rd": 0, "iops_wr": 0,
        "bps": l.bps, "bps_rd": 0, "bps_wr": 0,
    });
    if l.iops_max > l.iops {
        args["iops_max"] = l.iops_max.into();
        args["iops_max_length"] = l.iops_max_secs.max(1).into();
    }
    if l.bps_max > l.bps {
        args["bps_max"] = l.bps_max.into();
        args["bps_max_length"] = l.bps_max_secs.max(1).into();
    }
    if l.io_size > 0 {
        args["iops_size"] = l.io_size.into();
    }
    serde_json::json!({"execute": "block_set_io_throttle", "arguments": args}).to_string()
}

/// The QMP commands that hot-plug a volume onto root port `port`.
/// The QMP commands that plug an interface (its tap already in the VPC's namespace, where
/// QEMU runs) into a running guest: a virtio-net device on its root port.
pub fn plug_nic(n: &NicDevice) -> Vec<String> {
    vec![
        serde_json::json!({"execute": "netdev_add", "arguments": {
            "type": "tap", "id": n.netdev, "ifname": n.tap,
            "script": "no", "downscript": "no"}})
        .to_string(),
        serde_json::json!({"execute": "device_add", "arguments": {
            "driver": "virtio-net-pci", "id": n.id,
            "netdev": n.netdev, "mac": n.mac, "bus": format!("np{}", n.port)}})
        .to_string(),
    ]
}

/// Unplugs an interface: the guest releases the device (PCIe hot-unplug takes it a few
/// seconds), and only then its backend goes. QEMU exits if a virtio-net device's tap dies
/// under it, so the tap is deleted after this returns, never before.
pub fn unplug_nic(socket: &Path, n: &NicDevice) -> Result<(), ComputeError> {
    qmp(
        socket,
        &[serde_json::json!({"execute": "device_del", "arguments": {"id": n.id}}).to_string()],
    )?;
    gone(socket, &n.id)?;
    netdev_del(socket, n)
}

/// Removes an interface's backend (its device gone, or never added).
pub fn netdev_del(socket: &Path, n: &NicDevice) -> Result<(), ComputeError> {
    qmp(
        socket,
        &[serde_json::json!({"execute": "netdev_del", "arguments": {"id": n.netdev}}).to_string()],
    )
}

/// Waits (up to a minute) until the guest has released the device `id`.
fn gone(socket: &Path, id: &str) -> Result<(), ComputeError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let probe = serde_json::json!({
        "execute": "qom-get",
        "arguments": {"path": format!("/machine/peripheral/{id}"), "property": "type"}
    })
    .to_string();
    while qmp(socket, std::slice::from_ref(&probe)).is_ok() {
        if Instant::now() > deadline {
            return Err(ComputeError::Guest(format!(
                "the guest did not release {id} within a minute"
            )));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(())
}

pub fn plug(volume_id: &str, source: &Source, port: u32) -> Vec<String> {
    let add =
        serde_json::json!({"execute": "blockdev-add", "arguments": source.blockdev(volume_id)});
    let mut dev = serde_json::json!({
        "driver": "virtio-blk-pci",
        "id": device_id(volume_id),
        "drive": node(volume_id),
        "serial": serial(volume_id),
        "bus": format!("rp{port}"),
    });
    if matches!(source, Source::Shared(_)) {
        dev["share-rw"] = true.into();
    }
    let dev = serde_json::json!({"execute": "device_add", "arguments": dev});
    vec![add.to_string(), dev.to_string()]
}

/// Unplugs a volume: the guest releases the device (PCIe hot-unplug takes it a few seconds),
/// then its block node goes.
pub fn unplug(socket: &Path, volume_id: &str) -> Result<(), ComputeError> {
    let id = device_id(volume_id);
    qmp(
        socket,
        &[serde_json::json!({"execute": "device_del", "arguments": {"id": id}}).to_string()],
    )?;
    gone(socket, &id)?;
    qmp(
        socket,
        &[serde_json::json!({"execute": "blockdev-del", "arguments": {"node-name": node(volume_id)}}).to_string()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interface_is_a_virtio_net_device_on_its_own_root_port() {
        let n = NicDevice {
            id: "nic3".into(),
            netdev: "net3".into(),
            tap: "k3fu9abcdef003".into(),
            port: 2,
            mac: "02:00:00:00:00:01".into(),
        };
        let (netdev, device) = n.args();
        assert_eq!(
            netdev,
            "tap,id=net3,ifname=k3fu9abcdef003,script=no,downscript=no"
        );
        assert_eq!(
            device,
            "virtio-net-pci,id=nic3,netdev=net3,mac=02:00:00:00:00:01,bus=np2"
        );
        let plug: Vec<serde_json::Value> = plug_nic(&n)
            .iter()
            .map(|c| serde_json::from_str(c).unwrap())
            .collect();
        assert_eq!(plug[0]["execute"], "netdev_add");
        assert_eq!(plug[0]["arguments"]["ifname"], "k3fu9abcdef003");
        assert_eq!(plug[1]["execute"], "device_add");
        assert_eq!(plug[1]["arguments"]["bus"], "np2");
        assert_eq!(plug[1]["arguments"]["netdev"], "net3");
    }

    #[test]
    fn names_follow_the_volume_id() {
        assert_eq!(serial("vol-0123456789abcdef0"), "vol0123456789abcdef0");
        assert_eq!(serial("vol-0123456789abcdef0").len(), 20);
        assert_eq!(node("vol-01"), "dvol01");
        let cmds = plug("vol-01", &Source::File("/v/vol-01.qcow2".into()), 3);
        assert!(cmds[1].contains("\"bus\":\"rp3\""));
        assert!(cmds[0].contains("/v/vol-01.qcow2"));
    }

    #[test]
    fn a_shared_disk_is_the_export_opened_raw_past_the_cache_with_writes_shared() {
        let shared = Source::Shared("/dev/loop7".into());
        let node = shared.blockdev("vol-01");
        assert_eq!(node["driver"], "raw");
        assert_eq!(node["file"]["driver"], "host_device");
        assert_eq!(node["file"]["filename"], "/dev/loop7");
        assert_eq!(node["file"]["cache"]["direct"], true);
        assert_eq!(
            disk_device("vol-01", &shared, 2),
            "virtio-blk-pci,id=vvol01,drive=dvol01,serial=vol01,bus=rp2,share-rw=on"
        );
        let cmds: Vec<serde_json::Value> = plug("vol-01", &shared, 2)
            .iter()
            .map(|c| serde_json::from_str(c).unwrap())
            .collect();
        assert_eq!(cmds[0]["arguments"], node);
        assert_eq!(cmds[1]["arguments"]["share-rw"], true);
        // A volume of one guest's own stays its qcow2 file, its writes its own.
        let own = Source::File("/v/vol-01.qcow2".into());
        assert_eq!(own.blockdev("vol-01")["driver"], "qcow2");
        assert!(!disk_device("vol-01", &own, 2).contains("share-rw"));
    }

    #[test]
    fn limits_become_qemu_throttles() {
        // gp2's small-volume shape: a baseline with a burst bucket, 256 KiB operations.
        let gp2 = crate::IoLimits {
            iops: 100,
            iops_max: 3000,
            iops_max_secs: 1800,
            bps: 128 << 20,
            io_size: 256 << 10,
            ..crate::IoLimits::default()
        };
        let group: serde_json::Value = gp2.qemu();
        assert_eq!(
            group,
            serde_json::json!({"iops-total": 100, "iops-total-max": 3000,
                "iops-total-max-length": 1800, "bps-total": 134217728, "iops-size": 262144})
        );
        let cmd: serde_json::Value = serde_json::from_str(&throttle("vroot", &gp2)).unwrap();
        let a = &cmd["arguments"];
        assert_eq!(a["id"], "/machine/peripheral/vroot/virtio-backend");
        assert_eq!(
            (a["iops"].as_u64(), a["iops_max"].as_u64()),
            (Some(100), Some(3000))
        );
        // No burst: QEMU is not sent a burst length without a burst rate, which it refuses.
        let io1 = crate::IoLimits {
            iops: 100,
            ..crate::IoLimits::default()
        };
        let cmd: serde_json::Value = serde_json::from_str(&throttle("vx", &io1)).unwrap();
        assert!(cmd["arguments"].get("iops_max_length").is_none());
        assert_eq!(io1.qemu(), serde_json::json!({"iops-total": 100}));
        // No limits at all (the instance store): an empty group, which QEMU takes as none.
        assert_eq!(crate::IoLimits::default().qemu(), serde_json::json!({}));
    }

    #[test]
    fn qcow2_sizes_come_from_the_header() {
        let dir = std::env::temp_dir().join(format!("kumo-vm-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("h.qcow2");
        let mut h = vec![0u8; 32];
        h[..4].copy_from_slice(b"QFI\xfb");
        h[24..32].copy_from_slice(&(8u64 << 30).to_be_bytes());
        std::fs::write(&f, &h).unwrap();
        assert_eq!(virtual_size(&f).unwrap(), 8 << 30);
        std::fs::write(&f, b"not a qcow2 file at all, really not").unwrap();
        assert!(virtual_size(&f).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
