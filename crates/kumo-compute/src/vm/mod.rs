//! The `vm` driver: instances as QEMU virtual machines (see [`qemu`]), with everything around
//! the guest shared with `ns` through [`crate::fleet`]: the VPC namespaces, the metadata
//! service, DHCP, DNS, security groups and cgroups. Its volumes are virtio disks hot-plugged
//! over QMP; a clean stop is the ACPI power button.

mod boot;
mod qemu;

pub use qemu::{unavailable, VmConfig};

use crate::fleet::{lock, Fleet, Kind, Machine, Proc};
use crate::host::vpc::GuestNet;
use crate::services::guest_files::dev_entry;
use crate::services::imds::Imds;
use crate::storage::qmp::{device_id, node, qmp, qmp_returns, serial};
use crate::storage::{with_device, LiveVolume};
use crate::{ComputeError, InstanceSpec, VolumeSpec};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The `vm` driver.
pub type VmDriver = Fleet<Vm>;

/// Guests as QEMU virtual machines on one image.
pub struct Vm {
    cfg: VmConfig,
}

/// A running `vm` guest.
pub struct VmUp {
    proc: Proc,
    /// Its monitor.
    qmp: PathBuf,
    /// Its tap in the VPC's namespace.
    tap: String,
    /// Its interfaces beyond the primary, by device index.
    nics: HashMap<u32, qemu::NicDevice>,
    /// The root ports interfaces hold, those still leaving the guest included.
    nic_ports: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<u32>>>,
    /// How many interfaces it has had beyond the primary.
    nic_seq: u32,
    /// The taps of interfaces the guest never let go (an unplug that timed out): they stay
    /// until it stops, as QEMU would exit if one died under its device.
    nic_stuck: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Data volumes by id.
    disks: HashMap<String, Disk>,
    /// Instance store disks (on the last root ports).
    ephemeral: Vec<VolumeSpec>,
}

/// A data volume in a guest: where it sits, and, for a Multi-Attach volume, the guest's hold
/// on the volume's one export (which QEMU opens in place of the file; the last hold let go
/// stops it).
pub(crate) struct Disk {
    pub(super) spec: VolumeSpec,
    /// Its root port.
    pub(super) port: u32,
    shared: Option<LiveVolume>,
}

impl Disk {
    /// A volume on root port `port`; a shared one's export is started unless another guest
    /// already has it. `run` is the instance's run directory.
    pub(super) fn open(run: &Path, spec: VolumeSpec, port: u32) -> Result<Disk, ComputeError> {
        let shared = if spec.shared {
            Some(LiveVolume::open(run, &spec)?)
        } else {
            None
        };
        Ok(Disk { spec, port, shared })
    }

    pub(super) fn source(&self) -> qemu::Source {
        match &self.shared {
            Some(lv) => qemu::Source::Shared(lv.export.loop_dev.clone()),
            None => qemu::Source::File(self.spec.file.clone()),
        }
    }

    /// The QMP command that sets its I/O limits, unless its export's throttle group holds
    /// them (for every guest of the volume together, as EBS's limits are the volume's).
    pub(super) fn throttle(&self) -> Option<String> {
        self.shared
            .is_none()
            .then(|| qemu::throttle(&device_id(&self.spec.volume_id), &self.spec.limits))
    }
}

impl Fleet<Vm> {
    /// A driver running QEMU guests on the image in `image_dir`, keeping their run files
    /// under `data_dir/instances`.
    pub fn new(
        data_dir: &Path,
        rt: tokio::runtime::Handle,
        image_dir: &Path,
    ) -> Result<VmDriver, ComputeError> {
        let cfg = VmConfig::new(image_dir);
        tracing::info!(accel = %cfg.accel, "vm driver: QEMU guests under {}", cfg.accel);
        Fleet::start(data_dir, rt, Vm { cfg })
    }

    /// `kvm` or `tcg`.
    pub fn accel(&self) -> &str {
        &self.kind.cfg.accel
    }
}

impl Kind for Vm {
    type Up = VmUp;
    const NAME: &'static str = "vm";
    // A virtual machine under emulation takes longer to shut down.
    const GRACE: Duration = Duration::from_secs(120);
    /// As many interfaces as root ports for them.
    const MAX_DEVICE_INDEX: u32 = qemu::NIC_PORTS;

    fn link(host: &crate::fleet::Host, id: &str) -> String {
        format!("{}t{}", host.prefix, crate::host::net::short(id))
    }

    /// Interfaces plug and unplug as virtio-net devices, each on a free PCIe root port of
    /// its own (QMP `netdev_add`/`device_add`; `device_del`, then `netdev_del` once the guest
    /// has let the device go), on a tap in the VPC's namespace routed in its subnet; the guest
    /// names them as the kernel does (`eth1`…) and its address agent configures them from the
    /// metadata, as under `ns`. An unplug finishes in the background: the guest takes seconds
    /// to release a device, and its lock is not held for that.
    fn set_interfaces(
        m: &Machine<Vm>,
        up: &mut VmUp,
        nics: &[crate::Nic],
    ) -> Result<(), ComputeError> {
        let same = |a: &crate::Nic, b: &crate::Nic| {
            a.device_index == b.device_index && a.net.mac == b.net.mac
        };
        let vpc_ns = up.proc.net.vpc_ns.clone();
        let gone: Vec<u32> = up
            .proc
            .spec
            .interfaces
            .iter()
            .filter(|old| !nics.iter().any(|n| same(n, old)))
            .map(|old| old.device_index)
            .collect();
        for index in gone {
            if let Some(dev) = up.nics.remove(&index) {
                unplug_in_background(up, &m.id, dev);
            }
        }
        for nic in nics {
            match up.proc.spec.interfaces.iter().find(|o| same(o, nic)) {
                Some(old) => {
                    let Some(dev) = up.nics.get(&nic.device_index) else {
                        continue;
                    };
                    crate::host::vpc::reroute(
                        &vpc_ns,
                        &dev.tap,
                        &old.net,
                        &nic.net.secondary_ips,
                        &nic.net.prefixes,
                    )?
                }
                None => plug(m, up, nic)?,
            }
        }
        Ok(())
    }

    fn degraded(&self) -> Option<(String, String)> {
        (self.cfg.accel == "tcg").then(|| {
            (
                "Kumo.SoftwareEmulation".to_string(),
                "Kumo.SoftwareEmulation: this host has no usable KVM, so the vm driver runs the instance under QEMU's TCG software emulation, many times slower than hardware".to_string(),
            )
        })
    }

    fn boot(
        &self,
        host: &crate::fleet::Host,
        net: GuestNet,
        spec: &InstanceSpec,
    ) -> Result<VmUp, ComputeError> {
        boot::boot(&self.cfg, host, net, spec)
    }

    fn proc(up: &VmUp) -> &Proc {
        &up.proc
    }

    fn proc_mut(up: &mut VmUp) -> &mut Proc {
        &mut up.proc
    }

    fn power_off(up: &VmUp) {
        // The ACPI power button: the guest shuts down and QEMU exits.
        if let Err(e) = qmp(&up.qmp, &[r#"{"execute":"system_powerdown"}"#.into()]) {
            tracing::warn!(instance = %up.proc.spec.id, error = %e, "cannot press the guest's power button");
        }
    }

    fn cleanup(up: &mut VmUp) {
        crate::host::net::ip_quiet(&["-n", &up.proc.net.vpc_ns, "link", "delete", &up.tap]);
        let stuck = std::mem::take(&mut *lock(&up.nic_stuck));
        for tap in up.nics.drain().map(|(_, dev)| dev.tap).chain(stuck) {
            crate::host::net::ip_quiet(&["-n", &up.proc.net.vpc_ns, "link", "delete", &tap]);
        }
    }

    fn attach(m: &Machine<Vm>, v: &VolumeSpec) -> Result<(), ComputeError> {
        m.up(|up| {
            if up.disks.contains_key(&v.volume_id) {
                return Ok(());
            }
            let v = with_device(
                v,
                up.disks.values().map(|d| &d.spec).chain(&up.ephemeral),
            );
            let port = (1..=qemu::PORTS - up.ephemeral.len() as u32)
                .find(|p| !up.disks.values().any(|d| d.port == *p))
                .ok_or_else(|| ComputeError::Guest("no free slot for another volume".into()))?;
            let disk = Disk::open(&m.host.run_dir(&m.id), v.clone(), port)?;
            let mut plug = qemu::plug(&v.volume_id, &disk.source(), port);
            plug.extend(disk.throttle());
            // The guest learns the disk's EC2 names before it appears.
            up.disks.insert(v.volume_id.clone(), disk);
            let (key, names) = dev_entry(&v);
            up.proc.files.insert(key, names);
            up.proc.publish();
            if let Err(e) = qmp(&up.qmp, &plug) {
                up.disks.remove(&v.volume_id);
                let _ = qmp(
                    &up.qmp,
                    &[serde_json::json!({"execute": "blockdev-del", "arguments": {"node-name": node(&v.volume_id)}}).to_string()],
                );
                return Err(e);
            }
            up.proc.spec.volumes.retain(|x| x.volume_id != v.volume_id);
            up.proc.spec.volumes.push(v.clone());
            tracing::info!(instance = %m.id, volume = %v.volume_id, device = %v.device, port, "volume hot-plugged");
            Ok(())
        })
    }

    fn busy(m: &Machine<Vm>, volume_id: &str) -> bool {
        // The guest's answer is awaited without holding its lock.
        let asked = m.with_up(|up| {
            up.disks
                .contains_key(volume_id)
                .then(|| (up.proc.net.imds.clone(), up.proc.ip))
        });
        match asked.flatten() {
            Some((imds, ip)) => mounted(&imds, ip, volume_id),
            None => false,
        }
    }

    fn detach(m: &Machine<Vm>, volume_id: &str) -> Result<(), ComputeError> {
        let monitor = m.with_up(|up| {
            up.proc.spec.volumes.retain(|x| x.volume_id != volume_id);
            up.disks.contains_key(volume_id).then(|| up.qmp.clone())
        });
        let Some(monitor) = monitor.flatten() else {
            return Ok(());
        };
        // The guest takes seconds to release the device: wait without its lock.
        qemu::unplug(&monitor, volume_id)?;
        m.with_up(|up| up.disks.remove(volume_id));
        tracing::info!(instance = %m.id, volume = volume_id, "volume unplugged");
        Ok(())
    }

    /// Grows its root or one of its data disks (virtio tells the guest its new size). A
    /// shared disk's export grows first (again, for each guest of the volume: it is already
    /// that size after the first), then this guest's view of it.
    fn grow(up: &VmUp, volume_id: &str, bytes: u64) -> Option<Result<(), ComputeError>> {
        let node = if is_root(up, volume_id) {
            "root".to_string()
        } else if let Some(d) = up.disks.get(volume_id) {
            if let Some(lv) = &d.shared {
                if let Err(e) = crate::storage::grow_live(lv, bytes) {
                    return Some(Err(e));
                }
            }
            node(volume_id)
        } else {
            return None;
        };
        Some(qmp(
            &up.qmp,
            &[serde_json::json!({"execute": "block_resize", "arguments": {"node-name": node, "size": bytes}}).to_string()],
        ))
    }

    /// Sets its root's or a data disk's I/O limits.
    fn limit(
        up: &VmUp,
        volume_id: &str,
        limits: crate::IoLimits,
    ) -> Option<Result<(), ComputeError>> {
        let device = if is_root(up, volume_id) {
            qemu::ROOT_DEVICE.to_string()
        } else if let Some(d) = up.disks.get(volume_id) {
            if let Some(lv) = &d.shared {
                return Some(lv.export.set_limits(limits));
            }
            device_id(volume_id)
        } else {
            return None;
        };
        Some(qmp(&up.qmp, &[qemu::throttle(&device, &limits)]))
    }

    /// A data disk was frozen as a snapshot: QEMU flushes the frozen layer and moves to the
    /// new overlay; a shared disk's export does, for every guest of the volume.
    fn snapshotted(up: &mut VmUp, volume_id: &str) -> Option<Result<(), ComputeError>> {
        let d = up.disks.get(volume_id)?;
        if let Some(lv) = &d.shared {
            return Some(crate::storage::snapshot_live(lv));
        }
        let v = &d.spec;
        let top = format!("{}-{}", node(volume_id), unique_tag());
        Some(current_top(&up.qmp, volume_id).and_then(|current| {
            qmp(
                &up.qmp,
                &[
                    serde_json::json!({"execute": "blockdev-add", "arguments": {
                        "driver": "qcow2", "node-name": top, "backing": null,
                        "file": {"driver": "file", "filename": v.file.to_string_lossy()}}})
                    .to_string(),
                    serde_json::json!({"execute": "blockdev-snapshot", "arguments": {"node": current, "overlay": top}}).to_string(),
                ],
            )
        }))
    }

    /// A Multi-Attach volume's shared loop device (every guest's I/O), and QEMU's own block
    /// statistics for the disks it opens itself. QEMU counts no busy time, so the time its
    /// requests spent in flight stands for it.
    fn disk_counters(up: &VmUp) -> crate::DiskCounters {
        let mut volumes = Vec::new();
        let mut own = Vec::new();
        for (id, d) in &up.disks {
            match &d.shared {
                Some(lv) => {
                    if let Some(c) = crate::storage::loop_counters(&lv.export.loop_dev) {
                        volumes.push((id.clone(), c));
                    }
                }
                None => own.push(id.clone()),
            }
        }
        if !own.is_empty() {
            if let Ok(out) = qmp_returns(&up.qmp, &[r#"{"execute":"query-blockstats"}"#.into()]) {
                let stats = out.last().map(String::as_str).unwrap_or("");
                for id in own {
                    if let Some(c) = qemu_blockstats(stats, &device_id(&id)) {
                        volumes.push((id, c));
                    }
                }
            }
        }
        crate::DiskCounters {
            volumes,
            instance_store: None,
        }
    }

    fn hold_root(up: &VmUp, volume_id: &str, pause: bool) -> Option<Result<(), ComputeError>> {
        if !is_root(up, volume_id) {
            return None;
        }
        // QEMU's `stop` drains and flushes every disk before it returns.
        let cmd = if pause { "stop" } else { "cont" };
        Some(qmp(&up.qmp, &[format!(r#"{{"execute":"{cmd}"}}"#)]))
    }
}

fn is_root(up: &VmUp, volume_id: &str) -> bool {
    up.proc
        .spec
        .root
        .as_ref()
        .is_some_and(|x| x.volume_id == volume_id)
}

/// Whether the guest has a volume mounted, asked through its agent: it answers within a few
/// seconds, and a guest that does not answer is taken to be using it (a forced detach still
/// works), as a volume must not be pulled from under a file system.
fn mounted(imds: &Imds, ip: IpAddr, volume_id: &str) -> bool {
    let serial = serial(volume_id);
    let id = format!("kumo-busy-{}", unique_tag());
    let script = format!(
        "d=$(readlink -f /dev/disk/by-id/virtio-{serial}) || exit 1\n\
         for m in $(awk '{{print $1}}' /proc/mounts /proc/swaps); do\n\
         case \"$(readlink -f \"$m\" 2>/dev/null)\" in \"$d\"|\"$d\"[0-9]*|\"$d\"p[0-9]*) exit 0 ;; esac\n\
         done\nexit 1\n"
    );
    imds.queue(ip, &id, &script);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match imds.result(&id) {
            Some(r) if r.status == "Success" || r.status == "Failed" => return r.code == 0,
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    tracing::warn!(
        volume = volume_id,
        "the guest's agent did not say whether the volume is mounted; it stays busy until forced"
    );
    true
}

/// A tag unique within this process for names made at run time.
fn unique_tag() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{}", N.fetch_add(1, Ordering::Relaxed))
}

/// The node a guest's disk reads and writes now (its newest overlay).
fn current_top(monitor: &Path, volume_id: &str) -> Result<String, ComputeError> {
    let out = qmp_returns(monitor, &[r#"{"execute":"query-block"}"#.into()])?;
    let v: serde_json::Value = serde_json::from_str(out.first().map(|s| s.as_str()).unwrap_or(""))
        .map_err(|e| ComputeError::Guest(format!("QMP query-block: {e}")))?;
    let want = device_id(volume_id);
    v["return"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| {
            d["qdev"]
                .as_str()
                .is_some_and(|q| q == want || q.ends_with(&format!("/{want}/virtio-backend")))
        })
        .and_then(|d| d["inserted"]["node-name"].as_str().map(String::from))
        .ok_or_else(|| ComputeError::Guest(format!("QEMU has no disk for {volume_id}")))
}

/// Plugs an interface into a running guest on a free root port.
fn plug(m: &Machine<Vm>, up: &mut VmUp, nic: &crate::Nic) -> Result<(), ComputeError> {
    let port = {
        let mut ports = lock(&up.nic_ports);
        let free = (1..=qemu::NIC_PORTS)
            .find(|p| !ports.contains(p))
            .ok_or_else(|| ComputeError::Guest("no free root port for another interface".into()))?;
        ports.insert(free);
        free
    };
    up.nic_seq += 1;
    let dev = boot::nic_device(&m.host, &m.id, nic, up.nic_seq, port);
    let vpc_ns = &up.proc.net.vpc_ns;
    let plugged = boot::add_nic_tap(&m.host, vpc_ns, nic, &dev.tap)
        .and_then(|_| qmp(&up.qmp, &qemu::plug_nic(&dev)));
    if let Err(e) = plugged {
        // The backend may have been added before the device was refused.
        let _ = qemu::netdev_del(&up.qmp, &dev);
        crate::host::net::ip_quiet(&["-n", vpc_ns, "link", "delete", &dev.tap]);
        lock(&up.nic_ports).remove(&port);
        return Err(e);
    }
    tracing::info!(instance = %m.id, device_index = nic.device_index, mac = %nic.net.mac, address = %nic.net.private_ip, port, "interface hot-plugged");
    up.nics.insert(nic.device_index, dev);
    Ok(())
}

/// Unplugs an interface; the guest lets it go in its own time, then its backend, its tap
/// and its root port go.
fn unplug_in_background(up: &VmUp, instance: &str, dev: qemu::NicDevice) {
    let (monitor, ports, stuck, vpc_ns, id) = (
        up.qmp.clone(),
        up.nic_ports.clone(),
        up.nic_stuck.clone(),
        up.proc.net.vpc_ns.clone(),
        instance.to_string(),
    );
    std::thread::spawn(move || {
        match qemu::unplug_nic(&monitor, &dev) {
            Ok(()) => {
                crate::host::net::ip_quiet(&["-n", &vpc_ns, "link", "delete", &dev.tap]);
                lock(&ports).remove(&dev.port);
                tracing::info!(instance = %id, mac = %dev.mac, "interface unplugged");
            }
            // Its tap stays until the guest stops: QEMU would exit if it died under the
            // device.
            Err(e) => {
                tracing::warn!(instance = %id, mac = %dev.mac, error = %e, "an interface's unplug did not finish");
                lock(&stuck).push(dev.tap);
            }
        }
    });
}

/// A device's counters in QEMU's `query-blockstats` answer, found by its qdev id.
fn qemu_blockstats(answer: &str, device: &str) -> Option<crate::BlockCounters> {
    let v: serde_json::Value = serde_json::from_str(answer).ok()?;
    let entry = v["return"].as_array()?.iter().find(|e| {
        e["qdev"]
            .as_str()
            .is_some_and(|q| q == device || q.contains(&format!("/{device}/")))
    })?;
    let st = &entry["stats"];
    let n = |k: &str| st[k].as_u64().unwrap_or(0);
    let in_flight_ms = (n("rd_total_time_ns") + n("wr_total_time_ns")) / 1_000_000;
    Some(crate::BlockCounters {
        read_ops: n("rd_operations"),
        write_ops: n("wr_operations"),
        read_bytes: n("rd_bytes"),
        write_bytes: n("wr_bytes"),
        read_time_ms: n("rd_total_time_ns") / 1_000_000,
        write_time_ms: n("wr_total_time_ns") / 1_000_000,
        busy_ms: in_flight_ms,
        queue_ms: in_flight_ms,
    })
}

#[cfg(test)]
mod blockstats_tests {
    #[test]
    fn a_devices_statistics_by_qdev() {
        let answer = r#"{"return": [{"device": "", "qdev": "/machine/peripheral/vvol0a/virtio-backend", "stats": {"rd_operations": 5, "wr_operations": 7, "rd_bytes": 20480, "wr_bytes": 28672, "rd_total_time_ns": 3000000, "wr_total_time_ns": 9000000}}, {"qdev": "/machine/peripheral/vvol0b/virtio-backend", "stats": {"rd_operations": 1}}]}"#;
        let c = super::qemu_blockstats(answer, "vvol0a").unwrap();
        assert_eq!(
            (c.read_ops, c.write_ops, c.read_bytes, c.write_bytes),
            (5, 7, 20480, 28672)
        );
        assert_eq!((c.read_time_ms, c.write_time_ms, c.queue_ms), (3, 9, 12));
        assert_eq!(super::qemu_blockstats(answer, "vvol0c"), None);
    }
}
