//! The EBS volumes an instance launches with: the image's block device mappings, changed by
//! the request's (size, type, IOPS, DeleteOnTermination, encryption, NoDevice, new volumes),
//! each made a real volume attached to the instance.

use crate::core::error::Fail;
use crate::core::ids::new_id;
use crate::records::image::ImageTraits;
use crate::records::snapshot::SnapshotRecord;
use crate::records::volume::{VolAttachment, VolumeRecord};
use crate::repo::snapshot::{bad_mapping, mapped_snapshot, new_volume_size, usable_snapshot};
use crate::repo::volume::default_kms_arn;
use crate::Kumo;
use kumo_ec2_wire::shapes::{BlockDeviceMapping, EbsBlockDevice};
use kumo_ec2_wire::Ec2Error;
use kumo_model::ebs;
use kumo_store::{Read, Scope, Tx};

/// One volume a launch makes for each instance.
#[derive(Debug, Clone)]
pub struct Planned {
    pub device: String,
    /// The snapshot the volume restores, if any.
    pub snapshot: Option<String>,
    /// The account owning that snapshot, when not the caller (a shared image or snapshot).
    pub snapshot_owner: Option<String>,
    pub size: i32,
    pub volume_type: String,
    pub iops: Option<i32>,
    pub throughput: Option<i32>,
    pub delete_on_termination: bool,
    /// Encrypted by the snapshot, the image or the request.
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
}

fn norm(d: &str) -> &str {
    d.trim_start_matches("/dev/")
}

/// Resolves the volumes of a launch from the image and the request.
pub fn plan<V: Read>(
    v: &V,
    s: Scope,
    image: &ImageTraits,
    request: &[BlockDeviceMapping],
) -> Result<Vec<Planned>, Fail> {
    let mut out = image_volumes(v, s, image)?;
    let mut seen: Vec<String> = Vec::new();
    for m in request {
        let Some(device) = m.device_name.clone().filter(|d| !d.is_empty()) else {
            return Err(Fail(bad_mapping("Missing device name")));
        };
        if seen.iter().any(|d| norm(d) == norm(&device)) {
            return Err(Fail(bad_mapping(format!(
                "The device '{device}' is used in more than one block-device mapping"
            ))));
        }
        seen.push(device.clone());
        let at = out
            .iter()
            .position(|(p, _)| norm(&p.device) == norm(&device));
        if m.no_device.is_some() {
            if norm(&device) == norm(&image.root_device_name) {
                return Err(Fail(bad_mapping(format!(
                    "The device {device} is the root device: it cannot be suppressed."
                ))));
            }
            if let Some(i) = at {
                out.remove(i);
            }
            continue;
        }
        if m.virtual_name.is_some() {
            return Err(Fail(Ec2Error::new(
                "Unsupported",
                "Kumo does not model instance store volumes: VirtualName (ephemeralN) mappings are not supported.",
            )));
        }
        let Some(e) = &m.ebs else {
            return Err(Fail(bad_mapping(format!(
                "Either snapshot ID or volume size must be provided for: {device}"
            ))));
        };
        if !ebs::valid_device(&device) && !device.starts_with("/dev/sd") {
            return Err(Fail(bad_mapping(format!("Invalid device name {device}"))));
        }
        let (p, min) = match (at, &e.snapshot_id) {
            // Changing one of the image's volumes.
            (Some(i), None) => out.remove(i),
            // A new volume, or one of the image's devices given another snapshot.
            (at, snap_id) => {
                if let Some(i) = at {
                    out.remove(i);
                }
                new_volume(v, s, &device, snap_id.as_deref(), e.volume_size)?
            }
        };
        out.push((with_request(p, min, e, &device)?, min));
    }
    let mut planned: Vec<Planned> = out.into_iter().map(|(p, _)| p).collect();
    for p in planned.iter_mut() {
        let (iops, throughput) = ebs::configure(&p.volume_type, p.size, p.iops, p.throughput)
            .map_err(|(code, msg)| Fail(Ec2Error::new(code, msg)))?;
        p.iops = iops;
        p.throughput = throughput;
    }
    Ok(planned)
}

/// The image's mappings, each with the least size it accepts (its snapshot's). The image's
/// snapshots are its owner's.
fn image_volumes<V: Read>(
    v: &V,
    s: Scope,
    image: &ImageTraits,
) -> Result<Vec<(Planned, i32)>, Fail> {
    let image_scope = Scope {
        account: image.owner.as_deref().unwrap_or(s.account),
        region: s.region,
    };
    let mut out = Vec::new();
    for m in &image.mappings {
        let Some(e) = &m.ebs else { continue };
        if m.no_device {
            continue;
        }
        let min = match &e.snapshot_id {
            Some(id) => mapped_snapshot(v, image_scope, id)?.volume_size,
            None => e.volume_size,
        };
        out.push((
            Planned {
                device: m.device_name.clone(),
                snapshot: e.snapshot_id.clone(),
                snapshot_owner: e.snapshot_id.as_ref().and(image.owner.clone()),
                size: e.volume_size,
                volume_type: e.volume_type.clone(),
                // A gp2 mapping records the IOPS its size gives, which are not a setting
                // to pass on: the launch's volume derives its own from its size.
                iops: e
                    .iops
                    .filter(|_| kumo_model::ebs::provisions_iops(&e.volume_type)),
                throughput: e.throughput,
                delete_on_termination: e.delete_on_termination,
                encrypted: e.encrypted,
                kms_key_id: None,
            },
            min,
        ));
    }
    Ok(out)
}

/// A volume the request adds (blank, or from a snapshot the caller may use), with its size.
fn new_volume<V: Read>(
    v: &V,
    s: Scope,
    device: &str,
    snap_id: Option<&str>,
    asked: Option<i32>,
) -> Result<(Planned, i32), Fail> {
    let found = snap_id.map(|id| usable_snapshot(v, s, id)).transpose()?;
    let (snap_owner, snap) = match found {
        Some((o, x)) => (o, Some(x)),
        None => (None, None),
    };
    let size = new_volume_size(device, snap.as_ref(), asked)?;
    Ok((
        Planned {
            device: device.to_string(),
            snapshot: snap.as_ref().map(|x| x.id.clone()),
            snapshot_owner: snap_owner,
            size,
            volume_type: "gp2".into(),
            iops: None,
            throughput: None,
            delete_on_termination: true,
            encrypted: snap.as_ref().is_some_and(|x| x.encrypted),
            kms_key_id: snap.as_ref().and_then(|x| x.kms_key_id.clone()),
        },
        size,
    ))
}

/// A planned volume with what the request's mapping sets: its size (no less than `min`),
/// type, performance, deletion and encryption.
fn with_request(
    mut p: Planned,
    min: i32,
    e: &EbsBlockDevice,
    device: &str,
) -> Result<Planned, Fail> {
    if let Some(n) = e.volume_size {
        if n < min {
            return Err(Fail(bad_mapping(match &p.snapshot {
                Some(id) => format!(
                    "Volume of size {n}GB is smaller than snapshot '{id}', expect size >= {min}GB"
                ),
                None => format!(
                    "Volume of size {n}GB is smaller than the image's volume at {device}, expect size >= {min}GB"
                ),
            })));
        }
        p.size = n;
    }
    if let Some(t) = &e.volume_type {
        p.volume_type = t.clone();
        // A new type drops the old one's performance settings.
        p.iops = None;
        p.throughput = None;
    }
    if e.iops.is_some() {
        p.iops = e.iops;
    }
    if e.throughput.is_some() {
        p.throughput = e.throughput;
    }
    if let Some(d) = e.delete_on_termination {
        p.delete_on_termination = d;
    }
    if e.encrypted == Some(false) && p.encrypted {
        return Err(Fail(bad_mapping(format!(
            "The volume at {device} comes from an encrypted snapshot and cannot be unencrypted."
        ))));
    }
    if e.encrypted == Some(true) {
        p.encrypted = true;
    }
    if e.kms_key_id.is_some() {
        if !p.encrypted {
            return Err(Fail(Ec2Error::new(
                "InvalidParameterDependency",
                "The parameter KmsKeyId requires the parameter Encrypted to be set.",
            )));
        }
        p.kms_key_id = e.kms_key_id.clone();
    }
    Ok(p)
}

/// Makes one instance's planned volumes, attached (encrypted when the plan says so or
/// `by_default`, the account's EBS encryption by default). `made` collects the files
/// created, so a launch that fails later can remove them; files are made only when `real`.
#[allow(clippy::too_many_arguments)]
pub fn create(
    k: &Kumo,
    tx: &Tx,
    s: Scope,
    instance: &str,
    zone: (&str, &str),
    plan: &[Planned],
    now: i64,
    by_default: bool,
    real: bool,
    made: &mut Vec<String>,
    pre: &mut dyn Iterator<Item = String>,
) -> Result<Vec<VolumeRecord>, Fail> {
    let mut vols = Vec::with_capacity(plan.len());
    for p in plan {
        let owner = Scope {
            account: p.snapshot_owner.as_deref().unwrap_or(s.account),
            region: s.region,
        };
        if let Some(snap) = &p.snapshot {
            // The snapshot may have gone since the launch was planned.
            if tx.get::<SnapshotRecord>(owner, snap)?.is_none() {
                return Err(Fail(crate::repo::snapshot::not_found(snap)));
            }
        }
        // A blank volume's file may already be made (`pre`); others are made here.
        let premade = if p.snapshot.is_none() {
            pre.next()
        } else {
            None
        };
        let id = premade.clone().unwrap_or_else(|| new_id("vol"));
        if real && premade.is_none() {
            let file = match &p.snapshot {
                Some(snap) if p.snapshot_owner.is_some() => {
                    k.blocks.restore_standalone(&id, snap, p.size as u64)
                }
                Some(snap) => k.blocks.restore(&id, snap, p.size as u64),
                None => k.blocks.create_blank(&id, p.size as u64),
            };
            file.map_err(|e| {
                tracing::error!(error = %e, volume = %id, "cannot create a launch volume file");
                Fail(Ec2Error::internal())
            })?;
            made.push(id.clone());
        }
        let encrypted = p.encrypted || by_default;
        let rec = VolumeRecord {
            id: id.clone(),
            size: p.size,
            volume_type: p.volume_type.clone(),
            iops: p.iops,
            throughput: p.throughput,
            zone: zone.0.to_string(),
            zone_id: zone.1.to_string(),
            encrypted,
            kms_key_id: encrypted
                .then(|| p.kms_key_id.clone().unwrap_or_else(|| default_kms_arn(s))),
            snapshot_id: p.snapshot.clone(),
            multi_attach: false,
            create_ms: now,
            attachments: vec![VolAttachment {
                instance_id: instance.to_string(),
                device: p.device.clone(),
                // Volumes made at launch are attached when the instance is.
                state: crate::records::volume::AttachState::Attached,
                since_ms: now,
                attach_ms: now,
                delete_on_termination: p.delete_on_termination,
            }],
            modifications: Vec::new(),
            // Another account's snapshot is copied, not stacked on: its owner may delete it.
            backing: p.snapshot.clone().filter(|_| p.snapshot_owner.is_none()),
            auto_enable_io: false,
        };
        tx.insert(s, &rec)?;
        vols.push(rec);
    }
    Ok(vols)
}
