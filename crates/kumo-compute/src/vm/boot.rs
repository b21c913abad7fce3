//! A `vm` guest's boot: its root disk, a tap in the VPC's namespace routed like an `ns`
//! guest's veth, its DHCP lease and metadata, and QEMU (inside the namespace, so it opens the
//! tap there) in the instance's cgroups.

use super::qemu::{self, VmConfig};
use super::{Disk, VmUp};
use crate::fleet::{Host, Proc};
use crate::host::net::{ip, ip_quiet};
use crate::host::vpc::{lease_for, route_guest, GuestNet};
use crate::services::guest_files::guest_files;
use crate::storage::qmp::qmp;
use crate::storage::{instance_store, with_device};
use crate::{ComputeError, InstanceSpec, Metadata, VolumeSpec};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A boot's disks: data volumes by id; the instance store's.
type Disks = (HashMap<String, Disk>, Vec<VolumeSpec>);

pub(super) fn boot(
    cfg: &VmConfig,
    host: &Host,
    net: GuestNet,
    spec: &InstanceSpec,
) -> Result<VmUp, ComputeError> {
    let n = &spec.net;
    let disk = qemu::ensure_disk(cfg, spec)?;
    let ip4: std::net::Ipv4Addr = n.private_ip.parse().map_err(|_| {
        ComputeError::Guest(format!("bad address {} for the instance", n.private_ip))
    })?;
    let tap = <super::Vm as crate::fleet::Kind>::link(host, &spec.id);
    let vpc_ns = net.vpc_ns.clone();
    // The interfaces beyond the primary, each on a root port and a tap of its own routed in
    // its subnet.
    let nics: HashMap<u32, qemu::NicDevice> = spec
        .interfaces
        .iter()
        .zip(1..)
        .map(|(nic, n)| (nic.device_index, nic_device(host, &spec.id, nic, n, n)))
        .collect();
    let undo = |e: ComputeError| {
        ip_quiet(&["-n", &vpc_ns, "link", "delete", &tap]);
        for d in nics.values() {
            ip_quiet(&["-n", &vpc_ns, "link", "delete", &d.tap]);
        }
        e
    };
    if nics.len() > qemu::NIC_PORTS as usize {
        return Err(undo(ComputeError::Guest(format!(
            "the vm driver plugs at most {} interfaces besides the primary",
            qemu::NIC_PORTS
        ))));
    }
    ip_quiet(&["-n", &vpc_ns, "link", "delete", &tap]);
    ip(&["-n", &vpc_ns, "tuntap", "add", "dev", &tap, "mode", "tap"])
        .and_then(|_| route_guest(&vpc_ns, &tap, n))
        .map_err(undo)?;
    for nic in &spec.interfaces {
        add_nic_tap(host, &vpc_ns, nic, &nics[&nic.device_index].tap).map_err(undo)?;
    }
    let boot_nics: Vec<qemu::NicDevice> = nics.values().cloned().collect();
    net.leases.set(&n.mac, lease_for(spec).map_err(undo)?);
    let (disks, store) = plan_disks(&net.run, spec).map_err(undo)?;
    let specs: Vec<VolumeSpec> = disks
        .values()
        .map(|d| d.spec.clone())
        .chain(store.iter().cloned())
        .collect();
    let files = guest_files(spec, &specs, host.ca_pem());
    let addr = IpAddr::V4(ip4);
    net.imds.set(
        addr,
        Metadata {
            guest: files.clone(),
            ..spec.metadata.clone()
        },
    );
    net.imds
        .set_aliases(addr, &crate::services::imds::v6_of(&n.prefixes));
    let forget = |e: ComputeError| {
        net.leases.remove(&n.mac);
        undo(e)
    };
    let monitor = net.run.join("qmp.sock");
    let child = spawn(
        cfg,
        spec,
        &net,
        &disk,
        (&tap, &boot_nics),
        &disks,
        &store,
        &monitor,
    )
    .map_err(|e| {
        net.imds.remove(&addr);
        forget(e)
    })?;
    let pid = child.id();
    let mut child = child;
    if let Err(e) = host
        .cgroups
        .limit(spec, pid, qemu::OVERHEAD_MIB)
        .and_then(|_| wait_for_monitor(&mut child, &net.run, &monitor))
        .and_then(|_| qmp(&monitor, &throttles(spec, &disks)))
    {
        let _ = child.kill();
        let _ = child.wait();
        host.release(&spec.id, Some((&net.imds, addr)), "");
        return Err(forget(e));
    }
    tracing::info!(instance = %spec.id, accel = %cfg.accel, tap = %tap, "QEMU guest started");
    Ok(VmUp {
        proc: Proc {
            spec: spec.clone(),
            net,
            child,
            pid: pid as i32,
            ip: addr,
            netns: String::new(),
            exited: false,
            reboot_exit: false,
            files,
        },
        qmp: monitor,
        tap,
        nic_seq: nics.len() as u32,
        nic_ports: std::sync::Arc::new(std::sync::Mutex::new(
            nics.values().map(|d| d.port).collect(),
        )),
        nic_stuck: Default::default(),
        nics,
        disks,
        ephemeral: store,
    })
}

/// The I/O limits of the boot's EBS disks, root and data (a shared disk's are its export's).
fn throttles(spec: &InstanceSpec, disks: &HashMap<String, Disk>) -> Vec<String> {
    let root = spec
        .root
        .iter()
        .map(|r| qemu::throttle(qemu::ROOT_DEVICE, &r.limits));
    root.chain(disks.values().filter_map(Disk::throttle))
        .collect()
}

/// The boot's disks: instance store disks take the last root ports, volumes the first ones;
/// a Multi-Attach volume's export is started unless another guest has it. On failure the
/// holds taken go back with the disks dropped.
fn plan_disks(run: &Path, spec: &InstanceSpec) -> Result<Disks, ComputeError> {
    let store = instance_store(run, spec)?;
    let mut disks: HashMap<String, Disk> = HashMap::new();
    for v in &spec.volumes {
        let v = with_device(v, disks.values().map(|d| &d.spec).chain(&store));
        let port = (1..=qemu::PORTS - store.len() as u32)
            .find(|p| !disks.values().any(|d| d.port == *p))
            .ok_or_else(|| ComputeError::Guest("no free slot for a volume".into()))?;
        disks.insert(v.volume_id.clone(), Disk::open(run, v, port)?);
    }
    Ok((disks, store))
}

/// Starts QEMU in the VPC's namespace, its output in `qemu.log`.
#[allow(clippy::too_many_arguments)]
fn spawn(
    cfg: &VmConfig,
    spec: &InstanceSpec,
    net: &GuestNet,
    disk: &Path,
    (tap, nics): (&str, &[qemu::NicDevice]),
    disks: &HashMap<String, Disk>,
    store: &[VolumeSpec],
    monitor: &Path,
) -> Result<Child, ComputeError> {
    let run = &net.run;
    let boot_disks: Vec<(String, qemu::Source, u32)> = disks
        .values()
        .map(|d| (d.spec.volume_id.clone(), d.source(), d.port))
        .collect();
    let store_disks: Vec<(String, PathBuf, u32)> = store
        .iter()
        .enumerate()
        .map(|(i, d)| (d.volume_id.clone(), d.file.clone(), qemu::PORTS - i as u32))
        .collect();
    let _ = std::fs::remove_file(monitor);
    let log =
        std::fs::File::create(run.join("qemu.log")).map_err(|e| ComputeError::io("QEMU log", e))?;
    let log2 = log
        .try_clone()
        .map_err(|e| ComputeError::io("QEMU log", e))?;
    let args = qemu::args(cfg, spec, run, disk, (tap, nics), &boot_disks, &store_disks);
    Command::new("ip")
        .args(["netns", "exec", &net.vpc_ns, "qemu-system-x86_64"])
        .args(&args)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(|e| ComputeError::io("start QEMU", e))
}

/// QEMU is up once its monitor answers.
fn wait_for_monitor(child: &mut Child, run: &Path, monitor: &Path) -> Result<(), ComputeError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(run.join("qemu.log")).unwrap_or_default();
            return Err(ComputeError::Guest(format!(
                "QEMU exited ({status}): {}",
                log.trim()
            )));
        }
        if monitor.exists() && qmp(monitor, &[]).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(ComputeError::Guest("QEMU's monitor did not answer".into()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `seq`th interface an instance has had beyond the primary, as QEMU will know it, on
/// root port `port`: ids and a tap (`<prefix>u<instance><seq>`) no other interface of the
/// guest's life has had.
pub(super) fn nic_device(
    host: &Host,
    id: &str,
    nic: &crate::Nic,
    seq: u32,
    port: u32,
) -> qemu::NicDevice {
    qemu::NicDevice {
        id: format!("nic{seq}"),
        netdev: format!("net{seq}"),
        // 15 bytes at most, an interface name's limit: 4,096 interfaces before a name
        // comes round again.
        tap: format!(
            "{}u{}{:03x}",
            host.prefix,
            crate::host::net::short(id),
            seq % 0x1000
        ),
        port,
        mac: nic.net.mac.clone(),
    }
}

/// An interface's tap in the VPC's namespace, routed in its own subnet as the primary's is.
pub(super) fn add_nic_tap(
    host: &Host,
    vpc_ns: &str,
    nic: &crate::Nic,
    tap: &str,
) -> Result<(), ComputeError> {
    let n = &nic.net;
    host.ensure_subnet(n)?;
    ip_quiet(&["-n", vpc_ns, "link", "delete", tap]);
    ip(&["-n", vpc_ns, "tuntap", "add", "dev", tap, "mode", "tap"])?;
    if let Err(e) = route_guest(vpc_ns, tap, n) {
        ip_quiet(&["-n", vpc_ns, "link", "delete", tap]);
        return Err(e);
    }
    Ok(())
}
