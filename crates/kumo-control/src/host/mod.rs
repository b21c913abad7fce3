//! The port to the compute driver and to volume files: it performs effects and never
//! decides a state. What the control plane holds of its driver ([`Compute`]: the driver,
//! the base image's gate, the boot queue, the guests' owners, sent commands, CPU readings),
//! and the calls that reach a running guest (attach, detach, grow, snapshot, halt) or a
//! volume's file (delete). Under the null driver no guest is found, and each is a no-op.

pub mod firewall;
pub mod spec;

use crate::core::error::Fail;
use crate::records::instance::InstanceRecord;
use crate::records::snapshot::SnapshotRecord;
use crate::Kumo;
use kumo_compute::Driver;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_store::Read;
use std::path::PathBuf;
use std::sync::Arc;

/// Instances to boot: (account, region, instance ids).
pub type BootOrder = (String, String, Vec<String>);

/// Whether the base image is there to boot: built before the server started, or being built
/// at first start (`kumo serve` on a host without one). Until it is ready, launched and
/// started instances wait, `pending`, in the boot queue.
#[derive(Default)]
pub struct ImageGate {
    /// Unknown while it builds, then whether it was built.
    state: std::sync::Mutex<Option<bool>>,
    changed: std::sync::Condvar,
}

impl ImageGate {
    /// A gate for an image that is already built.
    pub fn ready() -> Arc<ImageGate> {
        let g = ImageGate::default();
        *g.lock() = Some(true);
        Arc::new(g)
    }

    /// A gate for an image still being built.
    pub fn building() -> Arc<ImageGate> {
        Arc::new(ImageGate::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<bool>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The build's outcome (the server logs why it failed): instances waiting for it boot
    /// (or, after a failure, fail to).
    pub fn finish(&self, built: bool) {
        *self.lock() = Some(built);
        self.changed.notify_all();
    }

    /// Whether the image is built.
    pub fn is_ready(&self) -> bool {
        matches!(*self.lock(), Some(true))
    }

    /// Waits until the build has finished, however it ended.
    pub fn wait(&self) {
        let mut g = self.lock();
        while g.is_none() {
            g = self.changed.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// What a guest's counters read at the start of the minute being measured (the metrics
/// sampler's).
#[derive(Debug, Clone)]
pub(crate) struct Reading {
    /// The minute (of Kumo's clock) the reading opened.
    pub(crate) minute: i64,
    pub(crate) at: std::time::Instant,
    pub(crate) cpu_ns: u64,
    pub(crate) net: Option<kumo_compute::NetCounters>,
    pub(crate) disks: kumo_compute::DiskCounters,
    /// Each volume's burst bucket level (the volumes that have one), carried from minute to
    /// minute; full when first seen, as the volume's throttle is when its export starts.
    pub(crate) buckets: std::collections::HashMap<String, f64>,
    /// CPU credits used in the current five minutes (vCPU-minutes).
    pub(crate) window_credits: f64,
}

/// A driver and the base image it boots.
pub struct Compute {
    pub driver: Arc<dyn Driver>,
    /// The root file system of the base image (`kumo image build`).
    pub image_root: PathBuf,
    /// Whether that image is built yet.
    pub image: Arc<ImageGate>,
    /// The account and region of each instance booted, to act on what its guest does.
    pub(crate) owners: std::sync::Mutex<std::collections::HashMap<String, (String, String)>>,
    /// Launches whose guests are to boot: (account, region, instance ids), taken by the
    /// server's boot thread (see [`Kumo::boot_queue`]).
    pub(crate) boots: std::sync::Mutex<Option<std::sync::mpsc::Sender<BootOrder>>>,
    pub(crate) boot_queue: std::sync::Mutex<Option<std::sync::mpsc::Receiver<BootOrder>>>,
    /// Commands sent to guests' agents (SSM SendCommand), by command id.
    /// The Run Commands whose runs have not all ended, by (account, region, command id):
    /// the events worker stores each run's end as its agent reports it.
    pub(crate) pending_commands: std::sync::Mutex<Vec<(String, String, String)>>,
    /// Each burstable instance's last CPU reading (ns used, when) and whether it is capped.
    pub(crate) cpu:
        std::sync::Mutex<std::collections::HashMap<String, (u64, std::time::Instant, bool)>>,
    /// Each running guest's counters at the start of the minute being measured (the metrics
    /// sampler's).
    pub(crate) readings: std::sync::Mutex<std::collections::HashMap<String, Reading>>,
}

impl Compute {
    /// The instances booted here, each with its (account, region): a snapshot, so that the
    /// workers that go over them hold no lock while they act.
    pub(crate) fn owned(&self) -> Vec<(String, (String, String))> {
        self.owners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(a, b)| (a.clone(), b.clone()))
            .collect()
    }

    /// The null driver: no guests, instances are API state.
    pub fn null() -> Compute {
        Compute::new(Arc::new(kumo_compute::null::NullDriver), PathBuf::new())
    }

    /// A driver whose base image is built.
    pub fn new(driver: Arc<dyn Driver>, image_root: PathBuf) -> Compute {
        Compute::with_image(driver, image_root, ImageGate::ready())
    }

    /// A driver whose base image becomes ready when `image` says so.
    pub fn with_image(
        driver: Arc<dyn Driver>,
        image_root: PathBuf,
        image: Arc<ImageGate>,
    ) -> Compute {
        let (tx, rx) = std::sync::mpsc::channel();
        Compute {
            boots: std::sync::Mutex::new(Some(tx)),
            boot_queue: std::sync::Mutex::new(Some(rx)),
            driver,
            image_root,
            image,
            owners: Default::default(),
            pending_commands: Default::default(),
            cpu: Default::default(),
            readings: Default::default(),
        }
    }
}

/// The device a data volume gets in an instance: on Nitro types an NVMe name the driver picks
/// (empty here), with the attachment's name as a link; on Xen types `xvdX` for `sdX`.
pub(crate) fn volume_spec(
    k: &Kumo,
    r: &InstanceRecord,
    vol: &crate::records::volume::VolumeRecord,
    attached_as: &str,
) -> kumo_compute::VolumeSpec {
    let nitro = crate::instance_types::find(&r.instance_type)
        .and_then(|i| i.hypervisor.as_deref())
        .is_none_or(|h| h == "nitro");
    let name = attached_as.trim_start_matches("/dev/");
    let xen = format!(
        "/dev/xvd{}",
        name.trim_start_matches("sd").trim_start_matches("xvd")
    );
    let (device, alias) = if nitro {
        (String::new(), Some(format!("/dev/{name}")))
    } else {
        let alias = (format!("/dev/{name}") != xen).then(|| format!("/dev/{name}"));
        (xen, alias)
    };
    kumo_compute::VolumeSpec {
        volume_id: vol.id.clone(),
        file: k.blocks.path(&vol.id),
        device,
        alias,
        limits: io_limits(vol),
        shared: vol.multi_attach,
    }
}

/// The I/O a volume delivers ([`kumo_model::ebs::performance`]), as the driver's limits.
pub(crate) fn io_limits(vol: &crate::records::volume::VolumeRecord) -> kumo_compute::IoLimits {
    let p = kumo_model::ebs::performance(&vol.volume_type, vol.size, vol.iops, vol.throughput);
    let (iops_max, iops_max_secs) = p.iops_burst.unwrap_or_default();
    let (bps_max, bps_max_secs) = p.bytes_burst.unwrap_or_default();
    kumo_compute::IoLimits {
        iops: p.iops,
        iops_max,
        iops_max_secs,
        bps: p.bytes_per_sec,
        bps_max,
        bps_max_secs,
        io_size: p.io_size,
    }
}

/// After a ModifyVolume committed: a running guest's volume takes its new limits at once.
/// True when a guest had it.
pub fn limit_live(
    k: &Kumo,
    vol: &crate::records::volume::VolumeRecord,
) -> Result<bool, EffectError> {
    let limits = io_limits(vol);
    let mut any = false;
    // A Multi-Attach volume's export is shared (ns) or each guest throttles its own disk
    // (vm): every guest that has it is told.
    for g in k.compute.driver.guests() {
        any |= g.set_volume_limits(&vol.id, limits)?;
    }
    Ok(any)
}

/// After AttachVolume committed: the volume appears in the running guest. If it cannot, the
/// attachment is taken back and the call fails, rather than reporting a volume the guest
/// does not have.
pub fn attach_live(
    k: &Kumo,
    ctx: &RequestContext,
    volume_id: &str,
    instance: &str,
) -> Result<(), Ec2Error> {
    let Some(guest) = k.compute.driver.guest(instance).filter(|g| g.is_running()) else {
        return Ok(());
    };
    let s = crate::scope(ctx);
    let found = k.store.read(|v| {
        let r: Option<InstanceRecord> = v.get(s, instance)?;
        let vol: Option<crate::records::volume::VolumeRecord> = v.get(s, volume_id)?;
        Ok::<_, Fail>(r.zip(vol))
    });
    let Ok(Some((r, vol))) = found else {
        return Ok(());
    };
    let Some(a) = vol.attachments.iter().find(|a| a.instance_id == instance) else {
        return Ok(());
    };
    let spec = volume_spec(k, &r, &vol, &a.device);
    if let Err(e) = guest.attach_volume(&spec) {
        tracing::error!(instance, volume = volume_id, error = %e, "cannot attach the volume to the guest; undoing the attachment");
        let _ = k.store.write(true, |tx| {
            if let Some(mut v) = tx.get::<crate::records::volume::VolumeRecord>(s, volume_id)? {
                v.attachments.retain(|a| a.instance_id != instance);
                tx.update(s, &v)?;
            }
            Ok::<_, Fail>(())
        });
        return Err(Ec2Error::internal());
    }
    Ok(())
}

pub fn volume_busy(k: &Kumo, instance: &str, volume_id: &str) -> bool {
    k.compute
        .driver
        .guest(instance)
        .is_some_and(|g| g.volume_busy(volume_id))
}

pub fn detach_live(k: &Kumo, instance: &str, volume_id: &str) {
    let Some(guest) = k.compute.driver.guest(instance) else {
        return;
    };
    if let Err(e) = guest.detach_volume(volume_id) {
        tracing::error!(instance, volume = volume_id, error = %e, "cannot detach the volume from the guest");
    }
}

/// Why an effect on a volume's file or a guest's disk could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EffectError {
    #[error("the volume file")]
    File(#[from] kumo_blockstore::BlockError),
    #[error("the guest")]
    Guest(#[from] kumo_compute::ComputeError),
}

/// Grows a volume in every running guest that has it (a Multi-Attach volume's export grows
/// once, and each `vm` guest's disk learns the size); false when none has it.
pub fn grow_live(k: &Kumo, volume_id: &str, size_gib: u64) -> Result<bool, EffectError> {
    let mut any = false;
    for g in k.compute.driver.guests() {
        any |= g.grow_volume(volume_id, size_gib << 30)?;
    }
    Ok(any)
}

/// Pauses or resumes the guest whose root disk is this volume's file (see
/// [`kumo_compute::Guest::hold_root`]); true when one was.
pub fn hold_root(k: &Kumo, volume_id: &str, pause: bool) -> bool {
    for g in k.compute.driver.guests() {
        match g.hold_root(volume_id, pause) {
            Ok(false) => continue,
            Ok(true) => return true,
            Err(e) => {
                tracing::warn!(volume = volume_id, pause, error = %e, "cannot pause or resume the guest around a snapshot");
                return false;
            }
        }
    }
    false
}

/// After a live volume's file was frozen as a snapshot: the guest writes to the new overlay.
pub fn snapshot_live(k: &Kumo, volume_id: &str) -> Result<(), EffectError> {
    for g in k.compute.driver.guests() {
        if g.volume_snapshotted(volume_id)? {
            break;
        }
    }
    Ok(())
}

/// Shuts a running guest down cleanly for CreateImage; true when it did (and must boot again).
pub fn halt_for_image(k: &Kumo, instance: &str) -> bool {
    let Some(guest) = k.compute.driver.guest(instance).filter(|g| g.is_running()) else {
        return false;
    };
    match guest.stop(false) {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(instance, error = %e, "cannot shut the guest down for its image");
            false
        }
    }
}

/// Whether the driver holds an instance at its baseline (out of CPU credits).
pub fn capped(k: &Kumo, id: &str) -> Option<bool> {
    let cm = &k.compute;
    if !cm.driver.runs_guests() {
        return None;
    }
    let cpu = cm.cpu.lock().unwrap_or_else(|p| p.into_inner());
    Some(cpu.get(id).is_some_and(|c| c.2))
}

/// A command sent with SSM SendCommand, as SendCommand and ListCommands show it.
#[derive(Debug, Clone)]
pub struct SentCommand {
    pub id: String,
    pub instances: Vec<String>,
    pub commands: Vec<String>,
    pub comment: String,
    pub requested_ms: i64,
    /// Over its instances: `Pending`, `InProgress`, `Success`, `Failed` or `TimedOut`.
    pub status: String,
    /// How many instances' runs have ended, and how many of those did not succeed.
    pub completed: usize,
    pub errors: usize,
}

/// One instance's run of a sent command.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub command: SentCommand,
    pub instance: String,
    pub result: kumo_compute::CommandResult,
}

/// Deletes the files of volumes whose records a committed transaction removed.
pub fn delete_files(k: &Kumo, ids: &[String]) {
    for id in ids {
        if let Err(e) = k.blocks.delete(id) {
            tracing::error!(error = %e, volume = %id, "cannot delete a volume file");
        }
    }
}

/// Removes a deleted snapshot's file once its write has committed.
pub fn delete_file(k: &Kumo, id: &str) {
    if let Err(e) = k.blocks.delete(id) {
        tracing::error!(error = %e, snapshot = %id, "cannot delete a snapshot file");
    }
}

/// Freezes the top layer of each recorded snapshot's volume (when `real`). Called last in the
/// write, so nothing after it can fail.
pub fn freeze_files(k: &Kumo, real: bool, recs: &[SnapshotRecord]) -> Result<(), Fail> {
    if !real {
        return Ok(());
    }
    // Guests whose root disk is a file the snapshot copies are paused around the copies, so
    // that all of them are of one moment.
    let held: Vec<&str> = recs
        .iter()
        .map(|r| r.volume_id.as_str())
        .filter(|v| crate::host::hold_root(k, v, true))
        .collect();
    let mut out = Ok(());
    for rec in recs {
        let done = k
            .blocks
            .snapshot(&rec.volume_id, &rec.id, rec.volume_size as u64)
            .map_err(EffectError::from)
            .and_then(|()| snapshot_live(k, &rec.volume_id));
        if let Err(e) = done {
            tracing::error!(error = %crate::core::error::chain(&e), volume = %rec.volume_id, "cannot snapshot a volume file");
            out = Err(Fail(Ec2Error::internal()));
            break;
        }
    }
    for v in held {
        crate::host::hold_root(k, v, false);
    }
    out
}
