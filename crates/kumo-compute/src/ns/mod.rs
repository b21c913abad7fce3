//! The `ns` driver: instances as Linux namespaces.
//!
//! Per instance, a helper process (see [`helper`]) whose namespaces hold the guest; its
//! network namespace is named `<p>i<instance>` and gets a veth whose VPC end is routed, not
//! bridged (see [`crate::host::vpc`]), so all traffic between instances crosses the firewall.
//! cgroups (v1) cap its CPU, memory and processes. The guest's root is an overlay on the
//! image's root file system; its disks (the instance store's loop devices and the volumes,
//! see [`crate::storage`]) are in its `/dev` before its init runs.

mod boot;
pub mod helper;

use crate::fleet::{Fleet, Kind, Machine, Proc};
use crate::host::net;
use crate::host::vpc::GuestNet;
use crate::services::hostkeys::HostKeys;
use crate::storage::{grow_live, guest_root, snapshot_live, with_device, LiveVolume};
use crate::{ComputeError, InstanceSpec, VolumeSpec};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The `ns` driver.
pub type NsDriver = Fleet<Ns>;

/// Guests as namespaces.
pub struct Ns {
    /// The `kumo` binary, run as the helper (`kumo __ns-helper`).
    exe: PathBuf,
    /// SSH host keys made ahead of boots, when a pool is set up.
    host_keys: OnceLock<Arc<HostKeys>>,
    /// What the guests read for `/proc` and `/sys/devices/system/cpu`, when lxcfs runs.
    lxcfs: Option<crate::host::lxcfs::Lxcfs>,
}

/// A running `ns` guest.
pub struct NsUp {
    proc: Proc,
    /// Kept open: closing it would not stop the helper, but keeps the protocol simple.
    _stdin: ChildStdin,
    /// Data volumes attached, by volume id.
    volumes: HashMap<String, LiveVolume>,
    /// Instance store disks with their loop devices.
    ephemeral: Vec<(VolumeSpec, String)>,
}

/// Why `ns` cannot run on this host, if it cannot: it needs root, overlayfs, network
/// namespaces and iproute2.
pub fn unavailable() -> Option<String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Some("not running as root".into());
    }
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !fs.contains("overlay") {
        return Some("the kernel has no overlayfs".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("iproute2 (`ip`) is not installed".into());
    }
    if Command::new("nft").arg("--version").output().is_err() {
        return Some("nftables (`nft`), which enforces security groups, is not installed".into());
    }
    None
}

impl Fleet<Ns> {
    /// A driver keeping its instances' run files under `data_dir/instances`.
    pub fn new(data_dir: &Path, rt: tokio::runtime::Handle) -> Result<NsDriver, ComputeError> {
        let exe = std::env::current_exe().map_err(|e| ComputeError::io("own executable", e))?;
        Fleet::start(
            data_dir,
            rt,
            Ns {
                exe,
                host_keys: OnceLock::new(),
                lxcfs: crate::host::lxcfs::Lxcfs::start(&data_dir.join("lxcfs")),
            },
        )
    }

    /// Takes the guests' SSH host keys from a pool in `dir` (kept at 32 sets), so that no
    /// boot waits for its RSA key.
    pub fn with_host_keys(self, dir: &Path) -> Result<NsDriver, ComputeError> {
        let pool =
            HostKeys::start(dir, 32).map_err(|e| ComputeError::io("start the host-key pool", e))?;
        let _ = self.kind.host_keys.set(pool);
        Ok(self)
    }
}

impl Kind for Ns {
    type Up = NsUp;
    const NAME: &'static str = "ns";
    const GRACE: Duration = Duration::from_secs(10);

    fn link(host: &crate::fleet::Host, id: &str) -> String {
        format!("{}e{}", host.prefix, crate::host::net::short(id))
    }

    fn set_interfaces(
        m: &Machine<Ns>,
        up: &mut NsUp,
        nics: &[crate::Nic],
    ) -> Result<(), ComputeError> {
        let p = &up.proc;
        let same = |a: &crate::Nic, b: &crate::Nic| {
            a.device_index == b.device_index && a.net.mac == b.net.mac
        };
        for old in &p.spec.interfaces {
            if !nics.iter().any(|n| same(n, old)) {
                boot::unplug(&m.host, &p.net.vpc_ns, &m.id, old);
            }
        }
        for nic in nics {
            match p.spec.interfaces.iter().find(|o| same(o, nic)) {
                Some(old) => {
                    let link = boot::nic_link(&m.host, &m.id, nic.device_index);
                    crate::host::vpc::reroute(
                        &p.net.vpc_ns,
                        &link,
                        &old.net,
                        &nic.net.secondary_ips,
                        &nic.net.prefixes,
                    )?;
                }
                None => boot::plug(&m.host, &p.net.vpc_ns, &p.netns, &m.id, nic)?,
            }
        }
        Ok(())
    }

    fn boot(
        &self,
        host: &crate::fleet::Host,
        net: GuestNet,
        spec: &InstanceSpec,
    ) -> Result<NsUp, ComputeError> {
        boot::boot(self, host, net, spec)
    }

    fn proc(up: &NsUp) -> &Proc {
        &up.proc
    }

    fn proc_mut(up: &mut NsUp) -> &mut Proc {
        &mut up.proc
    }

    fn power_off(up: &NsUp) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(up.proc.pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }

    fn cleanup(up: &mut NsUp) {
        for (_, lv) in up.volumes.drain() {
            lv.stop();
        }
        for (_, dev) in up.ephemeral.drain(..) {
            let _ = net::run("losetup", &["-d", &dev]);
        }
    }

    fn attach(m: &Machine<Ns>, v: &VolumeSpec) -> Result<(), ComputeError> {
        m.up(|up| {
            if up.volumes.contains_key(&v.volume_id) {
                return Ok(());
            }
            let v = &with_device(
                v,
                up.volumes
                    .values()
                    .map(|l| &l.spec)
                    .chain(up.ephemeral.iter().map(|(d, _)| d)),
            );
            let lv = LiveVolume::start(&m.host.run_dir(&m.id), &guest_root(up.proc.pid), v)?;
            let p = &mut up.proc;
            p.spec.volumes.retain(|x| x.volume_id != v.volume_id);
            p.spec.volumes.push(v.clone());
            up.volumes.insert(v.volume_id.clone(), lv);
            tracing::info!(instance = %m.id, volume = %v.volume_id, device = %v.device, "volume attached");
            Ok(())
        })
    }

    fn busy(m: &Machine<Ns>, volume_id: &str) -> bool {
        m.with_up(|up| {
            let Some(lv) = up.volumes.get(volume_id) else {
                return false;
            };
            // Mounted in the guest: its mount table names the device (or the loop device).
            let mounts = std::fs::read_to_string(format!("/proc/{}/mounts", up.proc.pid))
                .unwrap_or_default();
            mounts.lines().any(|l| {
                let dev = l.split_whitespace().next().unwrap_or("");
                dev == lv.spec.device
                    || lv.spec.alias.as_deref() == Some(dev)
                    || dev == lv.export.loop_dev
            })
        })
        .unwrap_or(false)
    }

    fn detach(m: &Machine<Ns>, volume_id: &str) -> Result<(), ComputeError> {
        m.with_up(|up| {
            up.proc.spec.volumes.retain(|x| x.volume_id != volume_id);
            if let Some(lv) = up.volumes.remove(volume_id) {
                lv.hide(&guest_root(up.proc.pid));
                lv.stop();
                tracing::info!(instance = %m.id, volume = volume_id, "volume detached");
            }
        });
        Ok(())
    }

    fn grow(up: &NsUp, volume_id: &str, bytes: u64) -> Option<Result<(), ComputeError>> {
        Some(grow_live(up.volumes.get(volume_id)?, bytes))
    }

    fn limit(
        up: &NsUp,
        volume_id: &str,
        limits: crate::IoLimits,
    ) -> Option<Result<(), ComputeError>> {
        Some(up.volumes.get(volume_id)?.export.set_limits(limits))
    }

    /// Each data volume's loop device (shared by every guest of a Multi-Attach volume, so
    /// its counters are the volume's), and the instance store's loop devices, summed.
    fn disk_counters(up: &NsUp) -> crate::DiskCounters {
        let volumes = up
            .volumes
            .iter()
            .filter_map(|(id, lv)| {
                crate::storage::loop_counters(&lv.export.loop_dev).map(|c| (id.clone(), c))
            })
            .collect();
        let mut store: Option<crate::BlockCounters> = None;
        for (_, dev) in &up.ephemeral {
            if let Some(c) = crate::storage::loop_counters(dev) {
                store.get_or_insert_with(Default::default).add(&c);
            }
        }
        crate::DiskCounters {
            volumes,
            instance_store: store,
        }
    }

    fn snapshotted(up: &mut NsUp, volume_id: &str) -> Option<Result<(), ComputeError>> {
        Some(snapshot_live(up.volumes.get(volume_id)?))
    }
}
