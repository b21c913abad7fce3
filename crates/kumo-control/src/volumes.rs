//! EBS volumes: real qcow2 files (`kumo-blockstore`) with AWS's types, limits, attachments and
//! modifications.

use crate::core::checks::Checks;
use crate::core::describe::{self, Push};
use crate::core::error::{rule, Fail};
use crate::core::filters;
use crate::core::idempotency;
use crate::core::ids::new_id;
use crate::records::instance::InstanceRecord;
use crate::records::volume::{AttachState, EbsSettings, Modification, VolAttachment, VolumeRecord};
use crate::repo::volume::{attached_to, default_kms_arn, get_volume, not_found, settings};
use crate::tags::{self, Tagged};
use crate::{scope, Kumo};
use kumo_ec2_wire::filters::{
    DescribeVolumeStatus as StatusF, DescribeVolumes as VolF, DescribeVolumesModifications as ModF,
};
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::FilterName;
use kumo_ec2_wire::{DateTime, Ec2Error, RequestContext};
use kumo_model::ebs;
use kumo_model::filter::Filterable;
use kumo_model::lifecycle::State;
use kumo_store::{Query, Read, Scope, Tx};

fn modification_state(m: &Modification, now: i64, delay: i64) -> (&'static str, i64) {
    if m.failed.is_some() {
        return ("failed", 0);
    }
    let t = now - m.start_ms;
    if t < delay {
        ("modifying", 0)
    } else if t < 2 * delay {
        ("optimizing", 50)
    } else {
        ("completed", 100)
    }
}

fn wire(k: &Kumo, t: &Tagged<VolumeRecord>) -> Volume {
    let v = &t.item;
    let (now, delay) = (k.now_ms(), k.options.transition_ms);
    Volume {
        volume_id: Some(v.id.clone()),
        size: Some(v.size),
        volume_type: Some(v.volume_type.clone()),
        iops: v.iops,
        throughput: v.throughput,
        availability_zone: Some(v.zone.clone()),
        availability_zone_id: Some(v.zone_id.clone()),
        encrypted: Some(v.encrypted),
        kms_key_id: v.kms_key_id.clone(),
        snapshot_id: Some(v.snapshot_id.clone().unwrap_or_default()),
        multi_attach_enabled: Some(v.multi_attach),
        create_time: Some(DateTime(v.create_ms)),
        state: Some(v.state(now, delay).into()),
        attachments: Some(v.attachments.iter().map(|a| attachment(&v.id, a)).collect()),
        tags: Some(tags::wire(&t.tags)),
        ..Volume::default()
    }
}

fn attachment(volume: &str, a: &VolAttachment) -> VolumeAttachment {
    VolumeAttachment {
        volume_id: Some(volume.to_string()),
        instance_id: Some(a.instance_id.clone()),
        device: Some(a.device.clone()),
        state: Some(a.state.name().into()),
        attach_time: Some(DateTime(a.attach_ms)),
        delete_on_termination: Some(a.delete_on_termination),
        ..VolumeAttachment::default()
    }
}

/// The zone a CreateVolume names, by name or by id.
fn zone_of(
    ctx: &RequestContext,
    input: &CreateVolumeRequest,
) -> Result<&'static kumo_model::regions::Zone, Ec2Error> {
    let zones = kumo_model::regions::get(&ctx.region)
        .map(|r| r.zones.as_slice())
        .unwrap_or(&[]);
    let missing = |z: &str| {
        Ec2Error::new(
            "InvalidZone.NotFound",
            format!("The zone '{z}' does not exist."),
        )
    };
    let given = |z: &Option<String>| z.clone().filter(|z| !z.is_empty());
    match (
        given(&input.availability_zone),
        given(&input.availability_zone_id),
    ) {
        (None, None) => Err(Ec2Error::missing_parameter("zone")),
        (Some(z), _) => zones
            .iter()
            .find(|x| x.name == z.as_str())
            .ok_or_else(|| missing(&z)),
        (None, Some(z)) => zones
            .iter()
            .find(|x| x.id == z.as_str())
            .ok_or_else(|| missing(&z)),
    }
}

/// A volume made from a snapshot: the snapshot, the volume's size, and the snapshot's owner
/// when another account shared it.
struct Restore {
    snap: crate::records::snapshot::SnapshotRecord,
    size: i32,
    owner: Option<String>,
}

/// The snapshot a CreateVolume restores, if any: the caller's own or one shared with it; the
/// volume holds its bytes and is at least as large.
fn restore_of(
    k: &Kumo,
    s: Scope,
    input: &CreateVolumeRequest,
) -> Result<Option<Restore>, Ec2Error> {
    let Some(snap_id) = &input.snapshot_id else {
        return Ok(None);
    };
    let (owner, snap) = k
        .store
        .read(|v| crate::repo::snapshot::usable_snapshot(v, s, snap_id))
        .map_err(|f| {
            if f.0.code() == "InvalidSnapshot.NotFound" {
                Ec2Error::new("InvalidSnapshot.NotFound", "Snapshot does not exist")
            } else {
                f.0
            }
        })?;
    let size = input.size.unwrap_or(snap.volume_size);
    if size < snap.volume_size {
        return Err(Ec2Error::invalid_value(format!(
            "Volume of size {size}GB is smaller than  snapshot '{}', expect size >= {}GB",
            snap.id, snap.volume_size
        )));
    }
    Ok(Some(Restore { snap, size, owner }))
}

/// The volume's file, made before its record so a record never points at a volume that does
/// not exist. Another account's snapshot is copied, not stacked on: its owner may delete it.
fn make_file(k: &Kumo, id: &str, restore: Option<&Restore>, size: i32) -> Result<(), Ec2Error> {
    let made = match restore {
        Some(r) if r.owner.is_some() => k.blocks.restore_standalone(id, &r.snap.id, size as u64),
        Some(r) => k.blocks.restore(id, &r.snap.id, size as u64),
        None => k.blocks.create_blank(id, size as u64),
    };
    made.map_err(|e| {
        tracing::error!(error = %e, "cannot create a volume file");
        Ec2Error::internal()
    })
}

/// CreateVolume, before any lookup: size or snapshot, then a zone (an empty zone is no zone,
/// as AWS answers `AvailabilityZone=`); then the type's size, IOPS and throughput rules where
/// the size is given, Multi-Attach's types, the tags and the token. The zone, the snapshot
/// (and the size it needs) follow in the operation.
impl Checks for CreateVolumeRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        if self.size.is_none() && self.snapshot_id.is_none() {
            return Err(Ec2Error::missing_parameter("size/snapshot"));
        }
        let blank = |z: &Option<String>| z.as_deref().is_none_or(str::is_empty);
        if blank(&self.availability_zone) && blank(&self.availability_zone_id) {
            return Err(Ec2Error::missing_parameter("zone"));
        }
        Ok(())
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        let vtype = self.volume_type.as_deref().unwrap_or("gp2");
        if let Some(size) = self.size {
            ebs::configure(vtype, size, self.iops, self.throughput).map_err(rule)?;
        }
        if self.multi_attach_enabled == Some(true) && !ebs::multi_attach_allowed(vtype) {
            return Err(Ec2Error::new(
                "InvalidParameterCombination",
                format!("The parameter multi-attach-enabled is not supported for {vtype} volumes."),
            ));
        }
        tags::from_specifications(self.tag_specifications.clone(), "volume")?;
        idempotency::check_token(self.client_token.as_deref())
    }
}

pub fn create(
    k: &Kumo,
    ctx: &RequestContext,
    input: CreateVolumeRequest,
) -> Result<Volume, Ec2Error> {
    let zone = zone_of(ctx, &input)?;
    let s = scope(ctx);
    let restore = restore_of(k, s, &input)?;
    let size = match &restore {
        Some(r) => r.size,
        None => input
            .size
            .ok_or_else(|| Ec2Error::missing_parameter("size/snapshot"))?,
    };
    let vtype = input.volume_type.clone().unwrap_or_else(|| "gp2".into());
    let (iops, throughput) =
        ebs::configure(&vtype, size, input.iops, input.throughput).map_err(rule)?;
    let multi = input.multi_attach_enabled.unwrap_or(false);
    let tag_list = tags::from_specifications(input.tag_specifications.clone(), "volume")?;
    let digest = idempotency::digest(&input);
    let now = k.now_ms();
    let id = new_id("vol");
    if !ctx.dry_run {
        make_file(k, &id, restore.as_ref(), size)?;
    }
    let token = input.client_token.as_deref();
    let result = k.store.write(!ctx.dry_run, |tx| {
        if let Some(earlier) = idempotency::earlier(tx, s, "CreateVolume", token, &digest)? {
            let item = get_volume(tx, s, &earlier)?;
            return Ok(Tagged {
                tags: tx.tags_of(s, &item.id)?,
                item,
            });
        }
        if let Some(r) = &restore {
            // The snapshot may have gone while its layer was restored.
            let at = kumo_store::Scope {
                account: r.owner.as_deref().unwrap_or(s.account),
                region: s.region,
            };
            if tx
                .get::<crate::records::snapshot::SnapshotRecord>(at, &r.snap.id)?
                .is_none()
            {
                return Err(Fail(Ec2Error::new(
                    "InvalidSnapshot.NotFound",
                    "Snapshot does not exist",
                )));
            }
        }
        let settings: EbsSettings = tx.get(s, "settings")?.unwrap_or_default();
        let from_encrypted = restore.as_ref().is_some_and(|r| r.snap.encrypted);
        let encrypted = input.encrypted.unwrap_or(settings.encryption_by_default)
            || input.kms_key_id.is_some()
            || from_encrypted;
        let rec = VolumeRecord {
            id: id.clone(),
            size,
            volume_type: vtype.clone(),
            iops,
            throughput,
            zone: zone.name.to_string(),
            zone_id: zone.id.to_string(),
            encrypted,
            kms_key_id: encrypted.then(|| {
                input
                    .kms_key_id
                    .clone()
                    .unwrap_or_else(|| default_kms_arn(s))
            }),
            snapshot_id: restore.as_ref().map(|r| r.snap.id.clone()),
            multi_attach: multi,
            create_ms: now,
            attachments: Vec::new(),
            modifications: Vec::new(),
            backing: restore
                .as_ref()
                .filter(|r| r.owner.is_none())
                .map(|r| r.snap.id.clone()),
            auto_enable_io: false,
        };
        tx.insert(s, &rec)?;
        tags::put_all(tx, s, &rec.id, "volume", &tag_list)?;
        idempotency::remember(tx, s, "CreateVolume", token, &digest, &rec.id)?;
        Ok::<_, Fail>(Tagged {
            item: rec,
            tags: tags::wire_pairs(&tag_list),
        })
    });
    let t = match result {
        Ok(t) => t,
        Err(f) => {
            let _ = k.blocks.delete(&id);
            return Err(f.0);
        }
    };
    if t.item.id != id {
        // An idempotent retry: the file made for this call is not needed.
        let _ = k.blocks.delete(&id);
    }
    let mut out = wire(k, &t);
    out.state = Some("creating".into());
    Ok(out)
}

pub fn delete(k: &Kumo, ctx: &RequestContext, input: DeleteVolumeRequest) -> Result<(), Ec2Error> {
    let s = scope(ctx);
    let (now, delay) = (k.now_ms(), k.options.transition_ms);
    k.store
        .write(!ctx.dry_run, |tx| {
            let mut v = get_volume(tx, s, &input.volume_id)?;
            v.settle(now, delay);
            if let Some(a) = v.attachments.first() {
                return Err(Fail(Ec2Error::new(
                    "VolumeInUse",
                    format!("Volume {} is currently attached to {}", v.id, a.instance_id),
                )));
            }
            tx.delete::<VolumeRecord>(s, &v.id)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)?;
    if !ctx.dry_run {
        if let Err(e) = k.blocks.delete(&input.volume_id) {
            tracing::error!(error = %e, volume = %input.volume_id, "cannot delete a volume file");
        }
    }
    Ok(())
}

struct VolumeView<'a>(&'a Tagged<VolumeRecord>, &'a str);

impl Filterable<VolF> for VolumeView<'_> {
    fn field(&self, f: VolF, out: &mut dyn FnMut(&str)) {
        let _name = f.name();
        let v = &self.0.item;
        let tf = |b: bool| if b { "true" } else { "false" };
        match f {
            VolF::VolumeId => out(&v.id),
            VolF::VolumeType => out(&v.volume_type),
            VolF::Size => out(&v.size.to_string()),
            VolF::AvailabilityZone => out(&v.zone),
            VolF::AvailabilityZoneId => out(&v.zone_id),
            VolF::Encrypted => out(tf(v.encrypted)),
            VolF::MultiAttachEnabled => out(tf(v.multi_attach)),
            VolF::FastRestored => out("false"),
            VolF::SnapshotId => out(v.snapshot_id.as_deref().unwrap_or("")),
            VolF::Status => out(self.1),
            VolF::CreateTime => out(&DateTime(v.create_ms).to_iso8601()),
            VolF::AttachmentInstanceId => v.attachments.iter().for_each(|a| out(&a.instance_id)),
            VolF::AttachmentDevice => v.attachments.iter().for_each(|a| out(&a.device)),
            VolF::AttachmentStatus => v.attachments.iter().for_each(|a| out(a.state.name())),
            VolF::AttachmentDeleteOnTermination => v
                .attachments
                .iter()
                .for_each(|a| out(tf(a.delete_on_termination))),
            VolF::AttachmentAttachTime => v
                .attachments
                .iter()
                .for_each(|a| out(&DateTime(a.attach_ms).to_iso8601())),
            // Refused when compiling.
            VolF::OperatorManaged | VolF::OperatorPrincipal => {}
        }
    }
    fn tags(&self) -> &[(String, String)] {
        &self.0.tags
    }
}

pub fn describe(
    k: &Kumo,
    ctx: &RequestContext,
    input: DescribeVolumesRequest,
) -> Result<DescribeVolumesResult, Ec2Error> {
    let fs = filters::compile::<VolF>(
        input.filters,
        &[VolF::OperatorManaged, VolF::OperatorPrincipal],
    )?;
    let ids = input.volume_ids.unwrap_or_default();
    let (now, delay) = (k.now_ms(), k.options.transition_ms);
    let req = describe::Request {
        op: "DescribeVolumes",
        ids: &ids,
        not_found: &not_found,
        push: Push::filters(&fs, VolF::VolumeId, None),
        max_results: input.max_results,
        bounds: (5, 1000),
        next_token: input.next_token.as_deref(),
    };
    let (page, next) = describe::read(&k.store, scope(ctx), &req, |t: &Tagged<VolumeRecord>| {
        let mut c = Tagged {
            item: t.item.clone(),
            tags: t.tags.clone(),
        };
        c.item.settle(now, delay);
        let st = c.item.state(now, delay);
        fs.matches(&VolumeView(&c, st))
    })?;
    Ok(DescribeVolumesResult {
        volumes: Some(
            page.into_iter()
                .map(|mut t| {
                    t.item.settle(now, delay);
                    wire(k, &t)
                })
                .collect(),
        ),
        next_token: next,
    })
}

/// AttachVolume, before any lookup: the device's name. The volume, the instance, their
/// states and zones, the device's use and the Multi-Attach limit follow in the operation.
impl Checks for AttachVolumeRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        if !ebs::valid_device(&self.device) {
            return Err(Ec2Error::invalid_value(format!(
                "Value ({d}) for parameter device is invalid. {d} is not a valid EBS device name.",
                d = self.device
            )));
        }
        Ok(())
    }
}

pub fn attach(
    k: &Kumo,
    ctx: &RequestContext,
    input: AttachVolumeRequest,
) -> Result<VolumeAttachment, Ec2Error> {
    let s = scope(ctx);
    let (now, delay) = (k.now_ms(), k.options.transition_ms);
    k.store
        .write(!ctx.dry_run, |tx| {
            let mut v = get_volume(tx, s, &input.volume_id)?;
            v.settle(now, delay);
            let r =
                crate::repo::instance::load(k, tx, s, std::slice::from_ref(&input.instance_id))?
                    .remove(0);
            if v.state(now, delay) == "creating" || (!v.attachments.is_empty() && !v.multi_attach) {
                if v.attachments.iter().any(|a| a.instance_id != r.id) {
                    return Err(Fail(Ec2Error::new(
                        "VolumeInUse",
                        format!("{} is already attached to an instance", v.id),
                    )));
                }
                return Err(Fail(Ec2Error::new(
                    "IncorrectState",
                    format!("{} is not 'available'.", v.id),
                )));
            }
            if !matches!(r.state(), State::Running | State::Stopped) {
                return Err(Fail(Ec2Error::new(
                    "IncorrectState",
                    format!("Instance '{}' is not 'running'.", r.id),
                )));
            }
            if v.zone != r.zone {
                return Err(Fail(Ec2Error::new(
                    "InvalidVolume.ZoneMismatch",
                    format!(
                        "The volume '{}' is not in the same availability zone as instance '{}'",
                        v.id, r.id
                    ),
                )));
            }
            let norm = |d: &str| d.trim_start_matches("/dev/").to_string();
            // A volume whose detach has finished has freed its device name.
            let mine = attached_to(tx, s, &r.id, (now, delay))?;
            let used = mine
                .iter()
                .flat_map(|x| x.attachments.iter())
                .filter(|a| a.instance_id == r.id)
                .any(|a| norm(&a.device) == norm(&input.device));
            if used || norm(&r.root_device_name) == norm(&input.device) {
                return Err(Fail(Ec2Error::invalid_value(format!(
                    "Invalid value '{d}' for unixDevice. Attachment point {d} is already in use",
                    d = input.device
                ))));
            }
            // The limit, after every lookup and state check.
            if v.multi_attach && v.attachments.len() >= 16 {
                return Err(Fail(Ec2Error::new(
                    "AttachmentLimitExceeded",
                    format!(
                        "Volume {} is attached to the maximum of 16 instances.",
                        v.id
                    ),
                )));
            }
            let a = VolAttachment {
                instance_id: r.id.clone(),
                device: input.device.clone(),
                state: AttachState::Attaching,
                since_ms: now,
                attach_ms: now,
                // A later attachment is kept at termination unless told otherwise.
                delete_on_termination: false,
            };
            v.attachments.push(a.clone());
            tx.update(s, &v)?;
            if !r.volumes.contains(&v.id) {
                let mut r = r;
                r.volumes.push(v.id.clone());
                tx.update(s, &r)?;
            }
            Ok(attachment(&v.id, &a))
        })
        .map_err(|f: Fail| f.0)
        .and_then(|out| {
            if !ctx.dry_run {
                crate::host::attach_live(k, ctx, &input.volume_id, &input.instance_id)?;
            }
            Ok(out)
        })
}

pub fn detach(
    k: &Kumo,
    ctx: &RequestContext,
    input: DetachVolumeRequest,
) -> Result<VolumeAttachment, Ec2Error> {
    let s = scope(ctx);
    let (now, delay) = (k.now_ms(), k.options.transition_ms);
    let force = input.force == Some(true);
    let picks = |a: &VolAttachment| {
        a.state != AttachState::Detaching
            && input
                .instance_id
                .as_ref()
                .is_none_or(|i| &a.instance_id == i)
            && input.device.as_ref().is_none_or(|d| &a.device == d)
    };
    // Whether the guest has it mounted is asked before the write: a guest may take seconds
    // to answer, and the store's writer must not wait on it.
    let asked = if force || ctx.dry_run {
        None
    } else {
        k.store
            .read(|r| {
                let v = get_volume(r, s, &input.volume_id)?;
                Ok::<_, Fail>(
                    v.attachments
                        .iter()
                        .find(|a| picks(a))
                        .map(|a| a.instance_id.clone()),
                )
            })
            .ok()
            .flatten()
            .map(|i| {
                let busy = crate::host::volume_busy(k, &i, &input.volume_id);
                (i, busy)
            })
    };
    let detached = k
        .store
        .write(!ctx.dry_run, |tx| {
            let mut v = get_volume(tx, s, &input.volume_id)?;
            v.settle(now, delay);
            let pick = v.attachments.iter_mut().find(|a| picks(a));
            let Some(a) = pick else {
                return Err(Fail(Ec2Error::new(
                    "IncorrectState",
                    format!("Volume '{}' is in the 'available' state.", v.id),
                )));
            };
            let r = crate::repo::instance::load(k, tx, s, std::slice::from_ref(&a.instance_id))?
                .remove(0);
            if a.device == r.root_device_name && r.state() != State::Stopped {
                return Err(Fail(Ec2Error::new(
                    "IncorrectState",
                    format!(
                        "Unable to detach root volume '{}' from instance '{}'",
                        v.id, r.id
                    ),
                )));
            }
            // A volume the guest has mounted stays attached, `busy`, until it is unmounted
            // and detached again, or the detach is forced (as on AWS).
            let busy = !force
                && match &asked {
                    Some((i, busy)) if *i == a.instance_id => *busy,
                    _ => crate::host::volume_busy(k, &a.instance_id, &v.id),
                };
            a.state = if busy {
                AttachState::Busy
            } else {
                AttachState::Detaching
            };
            a.since_ms = now;
            let mut out = attachment(&v.id, a);
            let instance = a.instance_id.clone();
            tx.update(s, &v)?;
            out.state = Some("detaching".into());
            Ok((out, instance, busy))
        })
        .map_err(|f: Fail| f.0)?;
    let (out, instance, busy) = detached;
    if !ctx.dry_run && !busy {
        crate::host::detach_live(k, &instance, &input.volume_id);
    }
    Ok(out)
}

/// At an instance's termination: volumes marked DeleteOnTermination go, the rest detach.
/// Returns the ids of the deleted volumes (their files go after the commit). A volume whose
/// detach has finished is no longer the instance's ([`attached_to`] settles), and does not
/// go with it.
pub fn release_for(
    tx: &Tx,
    s: Scope,
    r: &InstanceRecord,
    (now, delay): (i64, i64),
) -> Result<Vec<String>, Fail> {
    let mut gone = Vec::new();
    for mut v in attached_to(tx, s, &r.id, (now, delay))? {
        let delete = v
            .attachments
            .iter()
            .any(|a| a.instance_id == r.id && a.delete_on_termination)
            && v.attachments.len() == 1;
        if delete {
            tx.delete::<VolumeRecord>(s, &v.id)?;
            gone.push(v.id);
        } else {
            v.attachments.retain(|a| a.instance_id != r.id);
            tx.update(s, &v)?;
        }
    }
    Ok(gone)
}

/// The block device mappings an instance shows.
pub fn mappings(vols: &[VolumeRecord], instance: &str) -> Vec<InstanceBlockDeviceMapping> {
    let mut found: Vec<(&VolumeRecord, &VolAttachment)> = vols
        .iter()
        .flat_map(|v| {
            v.attachments
                .iter()
                .filter(|a| a.instance_id == instance)
                .map(move |a| (v, a))
        })
        .collect();
    // In attachment order: the launch's volumes (root first) before later ones.
    found.sort_by(|x, y| (x.1.attach_ms, &x.1.device).cmp(&(y.1.attach_ms, &y.1.device)));
    found
        .into_iter()
        .map(|(v, a)| InstanceBlockDeviceMapping {
            device_name: Some(a.device.clone()),
            ebs: Some(EbsInstanceBlockDevice {
                volume_id: Some(v.id.clone()),
                status: Some(a.state.name().into()),
                attach_time: Some(DateTime(a.attach_ms)),
                delete_on_termination: Some(a.delete_on_termination),
                ..EbsInstanceBlockDevice::default()
            }),
        })
        .collect()
}

/// Modifications per rolling 24 hours, per volume (the model's current rule).
const MAX_MODIFICATIONS_PER_DAY: usize = 4;

fn wire_modification(id: &str, m: &Modification, now: i64, delay: i64) -> VolumeModification {
    let (state, progress) = modification_state(m, now, delay);
    VolumeModification {
        volume_id: Some(id.to_string()),
        modification_state: Some(state.into()),
        progress: Some(progress),
        start_time: Some(DateTime(m.start_ms)),
        end_time: (state == "completed").then(|| DateTime(m.start_ms + 2 * delay)),
        original_volume_type: Some(m.original.0.clone()),
        original_size: Some(m.original.1),
        original_iops: m.original.2,
        original_throughput: m.original.3,
        original_multi_attach_enabled: Some(m.original.4),
        target_volume_type: Some(m.target.0.clone()),
        target_size: Some(m.target.1),
        target_iops: m.target.2,
        target_throughput: m.target.3,
        target_multi_attach_enabled: Some(m.target.4),
        status_message: m.failed.clone(),
        ..VolumeModification::default()
    }
}

pub fn modify(
    k: &Kumo,
    ctx: &RequestContext,
    input: ModifyVolumeRequest,
) -> Result<ModifyVolumeResult, Ec2Error> {
    let s = scope(ctx);
    let (now, delay) = (k.now_ms(), k.options.transition_ms);
    let (m, grow, modified) = k
        .store
        .write(!ctx.dry_run, |tx| {
            let mut v = get_volume(tx, s, &input.volume_id)?;
            if let Some(last) = v.modifications.last() {
                // A modification ends completed or failed; until then no other may start.
                if !matches!(modification_state(last, now, delay).0, "completed" | "failed") {
                    return Err(Fail(Ec2Error::new(
                        "IncorrectModificationState",
                        format!("Volume {} is already being modified.", v.id),
                    )));
                }
            }
            let size = input.size.unwrap_or(v.size);
            if size < v.size {
                return Err(Fail(Ec2Error::invalid_value(format!(
                    "New size cannot be smaller than existing size of {} GiB for volume {}.",
                    v.size, v.id
                ))));
            }
            let vtype = input.volume_type.clone().unwrap_or_else(|| v.volume_type.clone());
            let type_changed = vtype != v.volume_type;
            // Unchanged IOPS and throughput carry over only where the new type takes them.
            let iops = input.iops.or(if type_changed { None } else { v.iops.filter(|_| vtype != "gp2") });
            let throughput = input.throughput.or(if type_changed { None } else { v.throughput });
            let (iops, throughput) = ebs::configure(&vtype, size, iops, throughput).map_err(|e| Fail(rule(e)))?;
            let multi = input.multi_attach_enabled.unwrap_or(v.multi_attach);
            if multi && !ebs::multi_attach_allowed(&vtype) {
                return Err(Fail(Ec2Error::new("InvalidParameterCombination", format!("The parameter multi-attach-enabled is not supported for {vtype} volumes."))));
            }
            // The limit, after every value and state check.
            if v.modifications.iter().filter(|m| now - m.start_ms < 86_400_000).count() >= MAX_MODIFICATIONS_PER_DAY {
                return Err(Fail(Ec2Error::new(
                    "VolumeModificationRateExceeded",
                    format!("You've reached the maximum modification rate per volume limit. Volume {} can be modified at most {MAX_MODIFICATIONS_PER_DAY} times in 24 hours.", v.id),
                )));
            }
            let m = Modification {
                start_ms: now,
                original: (v.volume_type.clone(), v.size, v.iops, v.throughput, v.multi_attach),
                target: (vtype.clone(), size, iops, throughput, multi),
                failed: None,
            };
            let grow = (size > v.size).then_some(size);
            v.size = size;
            v.volume_type = vtype;
            v.iops = iops;
            v.throughput = throughput;
            v.multi_attach = multi;
            v.modifications.push(m.clone());
            tx.update(s, &v)?;
            Ok((m, grow, v))
        })
        .map_err(|f: Fail| f.0)?;
    if !ctx.dry_run {
        // The commit above recorded the modification as an intent; if its effect cannot be
        // made, the modification is recorded as failed and the volume keeps its configuration.
        if let Err(cause) = modify_effects(k, &modified, grow) {
            tracing::error!(volume = %input.volume_id, error = %crate::core::error::chain(&cause), "cannot make a volume's modification; it failed");
            let failed = fail_modification(k, s, &input.volume_id, m.start_ms)?;
            return Ok(ModifyVolumeResult {
                volume_modification: Some(wire_modification(&input.volume_id, &failed, now, delay)),
            });
        }
    }
    // ModifyVolume answers as the modification starts; it moves on by the next call.
    let mut out = wire_modification(&input.volume_id, &m, now, delay);
    out.modification_state = Some("modifying".into());
    out.progress = Some(0);
    out.end_time = None;
    Ok(ModifyVolumeResult {
        volume_modification: Some(out),
    })
}

/// What a committed modification does outside the store. The file really grows: through the
/// guest's storage daemon (`block_resize`, and the guest's device grows) when the volume is
/// attached live, else with qemu-img. Then a running guest's I/O follows the new type, IOPS
/// and throughput at once.
fn modify_effects(
    k: &Kumo,
    v: &VolumeRecord,
    grow: Option<i32>,
) -> Result<(), crate::host::EffectError> {
    if let Some(size) = grow {
        if !crate::host::grow_live(k, &v.id, size as u64)? {
            k.blocks.grow(&v.id, size as u64)?;
        }
    }
    crate::host::limit_live(k, v).map(drop)
}

/// Records a modification's failure and puts the volume back as it was before it.
fn fail_modification(
    k: &Kumo,
    s: kumo_store::Scope,
    volume_id: &str,
    start_ms: i64,
) -> Result<Modification, Ec2Error> {
    k.store
        .write(true, |tx| {
            let mut v = get_volume(tx, s, volume_id)?;
            let Some(m) = v
                .modifications
                .iter_mut()
                .rev()
                .find(|m| m.start_ms == start_ms)
            else {
                return Err(Fail(Ec2Error::internal()));
            };
            m.failed = Some("The volume's size could not be changed on its host.".into());
            let m = m.clone();
            (v.volume_type, v.size, v.iops, v.throughput, v.multi_attach) = m.original.clone();
            tx.update(s, &v)?;
            Ok(m)
        })
        .map_err(|f: Fail| f.0)
}

pub fn describe_modifications(
    k: &Kumo,
    ctx: &RequestContext,
    input: DescribeVolumesModificationsRequest,
) -> Result<DescribeVolumesModificationsResult, Ec2Error> {
    let fs = filters::compile::<ModF>(
        input.filters,
        &[
            ModF::OriginalMultiAttachEnabled,
            ModF::TargetMultiAttachEnabled,
        ],
    )?;
    let s = scope(ctx);
    let (now, delay) = (k.now_ms(), k.options.transition_ms);
    let ids = input.volume_ids.unwrap_or_default();
    let vols: Vec<VolumeRecord> = k
        .store
        .read(|v| {
            if ids.is_empty() {
                v.list(s, &Query::default()).map_err(Fail::from)
            } else {
                ids.iter().map(|i| get_volume(v, s, i)).collect()
            }
        })
        .map_err(|f| f.0)?;
    if let Some(v) = vols
        .iter()
        .find(|v| !ids.is_empty() && v.modifications.is_empty())
    {
        return Err(Ec2Error::new(
            "InvalidVolumeModification.NotFound",
            format!("Modification for volume '{}' does not exist.", v.id),
        ));
    }
    struct ModView<'a>(&'a VolumeModification);
    impl Filterable<ModF> for ModView<'_> {
        fn field(&self, f: ModF, out: &mut dyn FnMut(&str)) {
            let m = self.0;
            let v = match f {
                ModF::ModificationState => m.modification_state.clone(),
                ModF::VolumeId => m.volume_id.clone(),
                ModF::TargetSize => m.target_size.map(|x| x.to_string()),
                ModF::OriginalSize => m.original_size.map(|x| x.to_string()),
                ModF::TargetVolumeType => m.target_volume_type.clone(),
                ModF::OriginalVolumeType => m.original_volume_type.clone(),
                ModF::TargetIops => m.target_iops.map(|x| x.to_string()),
                ModF::OriginalIops => m.original_iops.map(|x| x.to_string()),
                ModF::TargetThroughput => m.target_throughput.map(|x| x.to_string()),
                ModF::OriginalThroughput => m.original_throughput.map(|x| x.to_string()),
                ModF::StartTime => m.start_time.as_ref().map(|t| t.to_iso8601()),
                // Refused when compiling: the model's kebab-case pair, with nothing behind it.
                ModF::OriginalMultiAttachEnabled | ModF::TargetMultiAttachEnabled => None,
            };
            if let Some(v) = v {
                out(&v)
            }
        }
    }
    let out: Vec<VolumeModification> = vols
        .iter()
        .filter_map(|v| {
            v.modifications
                .last()
                .map(|m| wire_modification(&v.id, m, now, delay))
        })
        .filter(|m| fs.matches(&ModView(m)))
        .collect();
    Ok(DescribeVolumesModificationsResult {
        volumes_modifications: Some(out),
        next_token: None,
    })
}

pub fn set_encryption_default(k: &Kumo, ctx: &RequestContext, on: bool) -> Result<bool, Ec2Error> {
    let s = scope(ctx);
    k.store
        .write(!ctx.dry_run, |tx| {
            let mut cur = settings(tx, s)?;
            cur.encryption_by_default = on;
            if !tx.update(s, &cur)? {
                tx.insert(s, &cur)?;
            }
            Ok(on)
        })
        .map_err(|f: Fail| f.0)
}

pub fn encryption_default(k: &Kumo, ctx: &RequestContext) -> Result<bool, Ec2Error> {
    k.store
        .read(|v| settings(v, scope(ctx)))
        .map(|x| x.encryption_by_default)
        .map_err(|f| f.0)
}

pub const DEFAULT_KMS_KEY: &str = crate::repo::volume::DEFAULT_KEY;

/// A volume's status checks: I/O is enabled on every Kumo volume (nothing impairs a local
/// file), and I/O performance is a check only Provisioned IOPS volumes have.
fn volume_status(v: &VolumeRecord, st: &str) -> (&'static str, &'static str, &'static str) {
    let perf = if matches!(v.volume_type.as_str(), "io1" | "io2") {
        "normal"
    } else {
        "not-applicable"
    };
    if st == "creating" {
        ("insufficient-data", "insufficient-data", perf)
    } else {
        ("ok", "passed", perf)
    }
}

struct StatusView<'a>(&'a VolumeRecord, (&'static str, &'static str, &'static str));

impl Filterable<StatusF> for StatusView<'_> {
    fn field(&self, f: StatusF, out: &mut dyn FnMut(&str)) {
        let (status, io, perf) = self.1;
        match f {
            StatusF::AvailabilityZone => out(&self.0.zone),
            StatusF::VolumeStatusStatus => out(status),
            StatusF::VolumeStatusDetailsName => {
                out("io-enabled");
                out("io-performance");
            }
            StatusF::VolumeStatusDetailsStatus => {
                out(io);
                out(perf);
            }
            // No volume has a scheduled event or a pending action: the answer's `eventsSet`
            // and `actionsSet` are empty.
            StatusF::ActionCode
            | StatusF::ActionDescription
            | StatusF::ActionEventId
            | StatusF::EventDescription
            | StatusF::EventEventId
            | StatusF::EventEventType
            | StatusF::EventNotAfter
            | StatusF::EventNotBefore => {}
        }
    }
}

pub fn describe_status(
    k: &Kumo,
    ctx: &RequestContext,
    input: DescribeVolumeStatusRequest,
) -> Result<DescribeVolumeStatusResult, Ec2Error> {
    let fs = filters::compile::<StatusF>(input.filters, &[])?;
    let ids = input.volume_ids.unwrap_or_default();
    let (now, delay) = (k.now_ms(), k.options.transition_ms);
    let req = describe::Request {
        op: "DescribeVolumeStatus",
        ids: &ids,
        not_found: &not_found,
        push: Push::default(),
        max_results: input.max_results,
        bounds: (5, 1000),
        next_token: input.next_token.as_deref(),
    };
    let (page, next) = describe::read(&k.store, scope(ctx), &req, |t: &Tagged<VolumeRecord>| {
        let st = t.item.state(now, delay);
        fs.matches(&StatusView(&t.item, volume_status(&t.item, st)))
    })?;
    let items = page
        .into_iter()
        .map(|mut t| {
            t.item.settle(now, delay);
            let v = &t.item;
            let (status, io, perf) = volume_status(v, v.state(now, delay));
            VolumeStatusItem {
                volume_id: Some(v.id.clone()),
                availability_zone: Some(v.zone.clone()),
                availability_zone_id: Some(v.zone_id.clone()),
                volume_status: Some(VolumeStatusInfo {
                    status: Some(status.into()),
                    details: Some(vec![
                        VolumeStatusDetails {
                            name: Some("io-enabled".into()),
                            status: Some(io.into()),
                        },
                        VolumeStatusDetails {
                            name: Some("io-performance".into()),
                            status: Some(perf.into()),
                        },
                    ]),
                }),
                attachment_statuses: Some(
                    v.attachments
                        .iter()
                        .map(|a| VolumeStatusAttachmentStatus {
                            instance_id: Some(a.instance_id.clone()),
                            io_performance: Some(perf.into()),
                        })
                        .collect(),
                ),
                actions: Some(Vec::new()),
                events: Some(Vec::new()),
                ..VolumeStatusItem::default()
            }
        })
        .collect();
    Ok(DescribeVolumeStatusResult {
        volume_statuses: Some(items),
        next_token: next,
    })
}

pub fn describe_attribute(
    k: &Kumo,
    ctx: &RequestContext,
    input: DescribeVolumeAttributeRequest,
) -> Result<DescribeVolumeAttributeResult, Ec2Error> {
    let v = k
        .store
        .read(|r| get_volume(r, scope(ctx), &input.volume_id))
        .map_err(|f| f.0)?;
    let mut out = DescribeVolumeAttributeResult {
        volume_id: Some(v.id.clone()),
        ..DescribeVolumeAttributeResult::default()
    };
    match input.attribute.as_str() {
        "autoEnableIO" => {
            out.auto_enable_io = Some(AttributeBooleanValue {
                value: Some(v.auto_enable_io),
            })
        }
        // Kumo volumes carry no AWS Marketplace product codes.
        "productCodes" => out.product_codes = Some(Vec::new()),
        other => {
            return Err(Ec2Error::invalid_value(format!(
                "Value ({other}) for parameter attribute is invalid. Valid values: autoEnableIO, productCodes"
            )))
        }
    }
    Ok(out)
}

/// ModifyVolumeAttribute, before any lookup: the one attribute, with its value.
impl Checks for ModifyVolumeAttributeRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        match self.auto_enable_io.as_ref().and_then(|a| a.value) {
            Some(_) => Ok(()),
            None => Err(Ec2Error::missing_parameter("autoEnableIO")),
        }
    }
}

pub fn modify_attribute(
    k: &Kumo,
    ctx: &RequestContext,
    input: ModifyVolumeAttributeRequest,
) -> Result<(), Ec2Error> {
    let on = input
        .auto_enable_io
        .as_ref()
        .and_then(|a| a.value)
        .unwrap_or_default();
    let s = scope(ctx);
    k.store
        .write(!ctx.dry_run, |tx| {
            let mut v = get_volume(tx, s, &input.volume_id)?;
            v.auto_enable_io = on;
            tx.update(s, &v)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)
}
