//! EBS snapshots: each is a frozen qcow2 layer holding what its volume wrote since the
//! previous snapshot, so a snapshot costs as much as the data changed. Restoring stacks a new
//! volume on the layer; deleting a snapshot in the middle of a chain moves its children onto
//! its parent first, so every later snapshot and volume keeps its bytes.

use crate::core::checks::{self, Checks};
use crate::core::describe::{self, Push};
use crate::core::error::Fail;
use crate::core::filters;
use crate::core::ids::new_id;
use crate::host::{delete_file, freeze_files};
use crate::records::snapshot::SnapshotRecord;
use crate::records::volume::VolumeRecord;
use crate::repo::snapshot::not_found;
use crate::repo::volume::get_volume;
use crate::tags::{self, Tagged};
use crate::{scope, Kumo};
use kumo_ec2_wire::filters::DescribeSnapshots as F;
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{DateTime, Ec2Error, RequestContext};
use kumo_model::filter::Filterable;
use kumo_store::{Query, Read, Scope, Tx};

/// Records a snapshot of a volume inside a write: the snapshot takes over the volume's top
/// layer and the volume moves onto it. The files follow with [`freeze_files`], last.
pub fn record(
    tx: &Tx,
    s: Scope,
    v: &mut VolumeRecord,
    id: String,
    description: String,
    now: i64,
) -> Result<SnapshotRecord, Fail> {
    let rec = SnapshotRecord {
        id,
        volume_id: v.id.clone(),
        volume_size: v.size,
        description,
        start_ms: now,
        encrypted: v.encrypted,
        kms_key_id: v.kms_key_id.clone(),
        parent: v.backing.clone(),
        create_volume: Default::default(),
    };
    v.backing = Some(rec.id.clone());
    tx.insert(s, &rec)?;
    tx.update(s, v)?;
    Ok(rec)
}

fn state(k: &Kumo, s: &SnapshotRecord) -> (&'static str, &'static str) {
    if k.now_ms() < s.start_ms + k.options.transition_ms {
        ("pending", "0%")
    } else {
        ("completed", "100%")
    }
}

fn wire(k: &Kumo, owner: &str, t: &Tagged<SnapshotRecord>) -> Snapshot {
    let x = &t.item;
    let (st, progress) = state(k, x);
    Snapshot {
        snapshot_id: Some(x.id.clone()),
        volume_id: Some(x.volume_id.clone()),
        volume_size: Some(x.volume_size),
        description: Some(x.description.clone()),
        start_time: Some(DateTime(x.start_ms)),
        state: Some(st.into()),
        progress: Some(progress.into()),
        owner_id: Some(owner.to_string()),
        encrypted: Some(x.encrypted),
        kms_key_id: x.kms_key_id.clone(),
        storage_tier: Some("standard".into()),
        tags: Some(tags::wire(&t.tags)),
        ..Snapshot::default()
    }
}

/// CreateSnapshot, before any lookup: the tags. The volume follows.
impl Checks for CreateSnapshotRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        tags::from_specifications(self.tag_specifications.clone(), "snapshot").map(drop)
    }
}

/// CreateSnapshots, before any lookup: regional snapshots, the tag source, the tags. The
/// instance and its volumes follow.
impl Checks for CreateSnapshotsRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        if self.outpost_arn.is_some() || self.location.as_deref().is_some_and(|l| l != "regional") {
            return Err(Ec2Error::new(
                "Unsupported",
                "Kumo has no Outposts or Local Zones: snapshots are regional.",
            ));
        }
        if let Some(c) = &self.copy_tags_from_source {
            if c != "volume" {
                return Err(Ec2Error::invalid_value(format!(
                    "Value ({c}) for parameter copyTagsFromSource is invalid. Valid values: volume"
                )));
            }
        }
        tags::from_specifications(self.tag_specifications.clone(), "snapshot").map(drop)
    }
}

pub fn create(
    k: &Kumo,
    ctx: &RequestContext,
    input: CreateSnapshotRequest,
) -> Result<Snapshot, Ec2Error> {
    let tag_list = tags::from_specifications(input.tag_specifications.clone(), "snapshot")?;
    let s = scope(ctx);
    let now = k.now_ms();
    let id = new_id("snap");
    let rec = k
        .store
        .write(!ctx.dry_run, |tx| {
            let mut v = get_volume(tx, s, &input.volume_id)?;
            let description = input.description.clone().unwrap_or_default();
            let rec = record(tx, s, &mut v, id.clone(), description, now)?;
            tags::put_all(tx, s, &rec.id, "snapshot", &tag_list)?;
            freeze_files(k, !ctx.dry_run, std::slice::from_ref(&rec))?;
            Ok(rec)
        })
        .map_err(|f: Fail| f.0)?;
    let mut out = wire(
        k,
        &ctx.account_id,
        &Tagged {
            item: rec,
            tags: tags::wire_pairs(&tag_list),
        },
    );
    // CreateSnapshot answers as the snapshot starts.
    out.state = Some("pending".into());
    out.progress = Some(String::new());
    Ok(out)
}

pub fn delete(
    k: &Kumo,
    ctx: &RequestContext,
    input: DeleteSnapshotRequest,
) -> Result<(), Ec2Error> {
    let s = scope(ctx);
    let id = &input.snapshot_id;
    k.store
        .write(!ctx.dry_run, |tx| {
            if let Some(ami) = crate::repo::image::user_of(tx, s, id)? {
                return Err(Fail(Ec2Error::new(
                    "InvalidSnapshot.InUse",
                    format!("The snapshot {id} is currently in use by {ami}"),
                )));
            }
            if remove(k, tx, s, id, !ctx.dry_run)? {
                Ok(())
            } else {
                Err(Fail(not_found(id)))
            }
        })
        .map_err(|f: Fail| f.0)?;
    if !ctx.dry_run {
        delete_file(k, id);
    }
    Ok(())
}

/// Drops a snapshot's record inside a write, moving its children (later snapshots and
/// restored volumes) onto its parent, files included when `real`. False when there is none.
pub fn remove(k: &Kumo, tx: &Tx, s: Scope, id: &str, real: bool) -> Result<bool, Fail> {
    let Some(snap) = tx.get::<SnapshotRecord>(s, id)? else {
        return Ok(false);
    };
    let snaps: Vec<SnapshotRecord> = tx.list(s, &Query::default())?;
    let vols: Vec<VolumeRecord> = tx.list(s, &Query::default())?;
    let mut moves: Vec<String> = Vec::new();
    for mut child in snaps
        .into_iter()
        .filter(|c| c.parent.as_deref() == Some(snap.id.as_str()))
    {
        child.parent = snap.parent.clone();
        tx.update(s, &child)?;
        moves.push(child.id);
    }
    for mut child in vols
        .into_iter()
        .filter(|c| c.backing.as_deref() == Some(snap.id.as_str()))
    {
        child.backing = snap.parent.clone();
        tx.update(s, &child)?;
        moves.push(child.id);
    }
    tx.delete::<SnapshotRecord>(s, &snap.id)?;
    crate::sharing::regrant(tx, s, &snap.id, &snap.create_volume, &Default::default())?;
    if real {
        for m in &moves {
            k.blocks.rebase(m, snap.parent.as_deref()).map_err(|e| {
                tracing::error!(error = %e, layer = %m, "cannot rebase a layer");
                Fail(Ec2Error::internal())
            })?;
        }
    }
    Ok(true)
}

struct SnapView<'a>(
    &'a Tagged<SnapshotRecord>,
    &'a str,
    &'static str,
    &'static str,
);

impl Filterable<F> for SnapView<'_> {
    fn field(&self, f: F, out: &mut dyn FnMut(&str)) {
        let x = &self.0.item;
        match f {
            F::SnapshotId => out(&x.id),
            F::VolumeId => out(&x.volume_id),
            F::VolumeSize => out(&x.volume_size.to_string()),
            F::Description => out(&x.description),
            F::Encrypted => out(if x.encrypted { "true" } else { "false" }),
            F::OwnerId => out(self.1),
            F::Status => out(self.2),
            F::Progress => out(self.3),
            F::StartTime => out(&DateTime(x.start_ms).to_iso8601()),
            F::StorageTier => out("standard"),
            // An account's own snapshots have no owner alias, and none was copied with a
            // completion duration (time-based copy).
            F::OwnerAlias | F::TransferType => {}
        }
    }
    fn tags(&self) -> &[(String, String)] {
        &self.0.tags
    }
}

/// DescribeSnapshots: its page before the lookups that precede its listing.
impl Checks for DescribeSnapshotsRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        checks::page(
            "DescribeSnapshots",
            self.max_results,
            self.next_token.as_deref(),
            (5, 1000),
        )
    }
}

pub fn describe(
    k: &Kumo,
    ctx: &RequestContext,
    input: DescribeSnapshotsRequest,
) -> Result<DescribeSnapshotsResult, Ec2Error> {
    let fs = filters::compile::<F>(input.filters, &[])?;
    let ids = input.snapshot_ids.unwrap_or_default();
    let owners = input.owner_ids.unwrap_or_default();
    let restorable = input.restorable_by_user_ids.unwrap_or_default();
    for o in &owners {
        if !(o == "self" || o == "amazon" || crate::sharing::is_account_id(o)) {
            return Err(Ec2Error::new(
                "InvalidUserID.Malformed",
                format!("User ID '{o}' is invalid"),
            ));
        }
    }
    let me = ctx.account_id.as_str();
    // OwnerIds: self or an account id owns the snapshot (Kumo has no Amazon snapshots).
    let owned_by = |owner: &str| {
        owners.is_empty()
            || owners
                .iter()
                .any(|o| o == owner || (o == "self" && owner == me))
    };
    // RestorableByUserIds: `all` is public snapshots; `self` (or the caller's id), those the
    // caller owns or was given; another account's id, the caller's snapshots shared with it.
    let restorable_by = |owner: &str, p: &crate::sharing::Permissions| {
        restorable.is_empty()
            || restorable.iter().any(|u| match u.as_str() {
                "all" => p.public,
                "self" => owner == me || p.users.iter().any(|x| x == me),
                x if x == me => owner == me || p.users.iter().any(|y| y == me),
                x => owner == me && p.users.iter().any(|y| y == x),
            })
    };
    let s = scope(ctx);
    let shared: Vec<(String, SnapshotRecord)> = k
        .store
        .read(|v| crate::sharing::shared_with::<SnapshotRecord, _>(v, s, "snap", true, true))
        .map_err(|f| f.0)?;
    let shared: Vec<(String, Tagged<SnapshotRecord>)> = shared
        .into_iter()
        .filter(|(o, x)| owned_by(o) && restorable_by(o, &x.create_volume))
        .map(|(o, item)| {
            (
                o,
                Tagged {
                    item,
                    tags: Vec::new(),
                },
            )
        })
        .collect();
    let matches = |owner: &str, t: &Tagged<SnapshotRecord>| {
        let (st, progress) = state(k, &t.item);
        owned_by(owner)
            && restorable_by(owner, &t.item.create_volume)
            && fs.matches(&SnapView(t, owner, st, progress))
    };
    if shared.is_empty() {
        // Only the caller's own snapshots can show: the store pages them.
        let req = describe::Request {
            op: "DescribeSnapshots",
            ids: &ids,
            not_found: &not_found,
            push: Push::filters(&fs, F::SnapshotId, None),
            max_results: input.max_results,
            bounds: (5, 1000),
            next_token: input.next_token.as_deref(),
        };
        let (page, next) = describe::read(&k.store, s, &req, |t: &Tagged<SnapshotRecord>| {
            matches(me, t)
        })?;
        return Ok(DescribeSnapshotsResult {
            snapshots: Some(page.iter().map(|t| wire(k, me, t)).collect()),
            next_token: next,
        });
    }
    // Other accounts' snapshots too: merge them with the caller's, in id order.
    let limit = crate::core::paging::max_results(input.max_results, 5, 1000)?;
    let after = crate::core::paging::cursor("DescribeSnapshots", input.next_token.as_deref())?;
    let own: Vec<Tagged<SnapshotRecord>> = k
        .store
        .read(|v| {
            let all: Vec<SnapshotRecord> = v.list(s, &Query::default())?;
            tags::attach(v, s, all)
        })
        .map_err(|f| f.0)?;
    if let Some(missing) = ids.iter().find(|id| {
        !own.iter().any(|t| t.item.id == **id) && !shared.iter().any(|(_, t)| t.item.id == **id)
    }) {
        return Err(not_found(missing));
    }
    let mut all: Vec<(String, Tagged<SnapshotRecord>)> = own
        .into_iter()
        .map(|t| (me.to_string(), t))
        .chain(shared)
        .filter(|(_, t)| ids.is_empty() || ids.contains(&t.item.id))
        .filter(|(_, t)| after.as_deref().is_none_or(|a| t.item.id.as_str() > a))
        .filter(|(o, t)| matches(o, t))
        .collect();
    all.sort_by(|a, b| a.1.item.id.cmp(&b.1.item.id));
    let (page, next) =
        crate::core::paging::page(all, limit, "DescribeSnapshots", |(_, t)| t.item.id.clone());
    Ok(DescribeSnapshotsResult {
        snapshots: Some(page.iter().map(|(o, t)| wire(k, o, t)).collect()),
        next_token: next,
    })
}

/// CopySnapshot, before any lookup: a key only with encryption; then the source region, the
/// settings Kumo does not take, the copy's duration and the tags. The source snapshot (the
/// caller's or shared with it) follows.
impl Checks for CopySnapshotRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        checks::key_needs_encryption(&self.kms_key_id, self.encrypted)
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        let src_region = &self.source_region;
        if kumo_model::regions::get(src_region).is_none() {
            return Err(Ec2Error::invalid_value(format!(
                "Value ({src_region}) for parameter sourceRegion is invalid."
            )));
        }
        if self.destination_outpost_arn.is_some() || self.destination_availability_zone.is_some() {
            return Err(Ec2Error::new(
                "Unsupported",
                "Kumo has no Outposts or Local Zones to copy a snapshot to.",
            ));
        }
        if let Some(m) = self.completion_duration_minutes {
            if !(15..=2880).contains(&m) || m % 15 != 0 {
                return Err(Ec2Error::invalid_value(format!(
                    "Value ({m}) for parameter completionDurationMinutes is invalid. It must be a multiple of 15 between 15 and 2880."
                )));
            }
        }
        tags::from_specifications(self.tag_specifications.clone(), "snapshot").map(drop)
    }
}

/// CopySnapshot. Within a region the copy is a new frozen layer stacked on the source (it costs
/// nothing and reads exactly the source's bytes; deleting the source later merges into it).
/// Across regions the copy is a full, standalone layer, as AWS's first cross-region copy is.
pub fn copy(
    k: &Kumo,
    ctx: &RequestContext,
    input: CopySnapshotRequest,
) -> Result<CopySnapshotResult, Ec2Error> {
    let src_region = input.source_region.clone();
    let tag_list = tags::from_specifications(input.tag_specifications.clone(), "snapshot")?;
    let dst = scope(ctx);
    let src = kumo_store::Scope {
        account: &ctx.account_id,
        region: &src_region,
    };
    let same_region = src_region == ctx.region;
    let src_id = input.source_snapshot_id.clone();
    // The caller's own snapshot, or one another account shared with it. A copy of another
    // account's snapshot is standalone, as a cross-region copy is: its owner may delete it.
    let (src_owner, source) = k
        .store
        .read(|v| crate::repo::snapshot::usable_snapshot(v, src, &src_id))
        .map_err(|f| f.0)?;
    let src_scope = kumo_store::Scope {
        account: src_owner.as_deref().unwrap_or(&ctx.account_id),
        region: &src_region,
    };
    let stacked = same_region && src_owner.is_none();
    let id = new_id("snap");
    // The file first, so a record never names a layer that does not exist.
    if !ctx.dry_run {
        let made = k
            .blocks
            .restore(&id, &source.id, source.volume_size as u64)
            .and_then(|()| {
                if stacked {
                    Ok(())
                } else {
                    k.blocks.rebase(&id, None)
                }
            });
        if let Err(e) = made {
            tracing::error!(error = %e, snapshot = %source.id, "cannot copy a snapshot layer");
            let _ = k.blocks.delete(&id);
            return Err(Ec2Error::internal());
        }
    }
    let now = k.now_ms();
    let written = k.store.write(!ctx.dry_run, |tx| {
        // The source may have gone while its layer was copied.
        if tx.get::<SnapshotRecord>(src_scope, &source.id)?.is_none() {
            return Err(Fail(not_found(&source.id)));
        }
        let by_default = crate::repo::volume::settings(tx, dst)?.encryption_by_default;
        let encrypted = source.encrypted || input.encrypted == Some(true) || by_default;
        let kms_key_id = match (&input.kms_key_id, &source.kms_key_id) {
            _ if !encrypted => None,
            (Some(key), _) => Some(key.clone()),
            (None, Some(key)) if stacked => Some(key.clone()),
            _ => Some(crate::repo::volume::default_kms_arn(dst)),
        };
        let rec = SnapshotRecord {
            id: id.clone(),
            // AWS gives copies an arbitrary source volume id.
            volume_id: "vol-ffffffff".into(),
            volume_size: source.volume_size,
            description: input
                .description
                .clone()
                .unwrap_or_else(|| format!("[Copied {} from {}]", source.id, src_region)),
            start_ms: now,
            encrypted,
            kms_key_id,
            parent: stacked.then(|| source.id.clone()),
            create_volume: Default::default(),
        };
        tx.insert(dst, &rec)?;
        tags::put_all(tx, dst, &rec.id, "snapshot", &tag_list)?;
        Ok(())
    });
    if let Err(Fail(e)) = written {
        if !ctx.dry_run {
            let _ = k.blocks.delete(&id);
        }
        return Err(e);
    }
    Ok(CopySnapshotResult {
        snapshot_id: Some(id),
        tags: (!tag_list.is_empty()).then_some(tag_list),
    })
}

/// CreateSnapshots: every EBS volume attached to an instance, frozen in one transaction so the
/// set shares one crash-consistent point.
pub fn create_many(
    k: &Kumo,
    ctx: &RequestContext,
    input: CreateSnapshotsRequest,
) -> Result<CreateSnapshotsResult, Ec2Error> {
    let tag_list = tags::from_specifications(input.tag_specifications.clone(), "snapshot")?;
    let spec = &input.instance_specification;
    let exclude_boot = spec.exclude_boot_volume == Some(true);
    let excluded = spec.exclude_data_volume_ids.clone().unwrap_or_default();
    let s = scope(ctx);
    let now = k.now_ms();
    let delay = k.options.transition_ms;
    let made = k
        .store
        .write(!ctx.dry_run, |tx| {
            let r = crate::repo::instance::load(k, tx, s, std::slice::from_ref(&spec.instance_id))?
                .remove(0);
            for id in &excluded {
                get_volume(tx, s, id)?;
            }
            let vols: Vec<VolumeRecord> = tx.list(s, &Query::default())?;
            let mut out = Vec::new();
            for mut v in vols {
                v.settle(now, delay);
                let Some(a) = v.attachments.iter().find(|a| a.instance_id == r.id) else {
                    continue;
                };
                let boot = a.device == r.root_device_name;
                if (boot && exclude_boot) || (!boot && excluded.contains(&v.id)) {
                    continue;
                }
                let mut pairs = tags::wire_pairs(&tag_list);
                if input.copy_tags_from_source.is_some() {
                    for (key, val) in tx.tags_of(s, &v.id)? {
                        if !key.starts_with("aws:") && !pairs.iter().any(|(k2, _)| *k2 == key) {
                            pairs.push((key, val));
                        }
                    }
                }
                let description = input.description.clone().unwrap_or_default();
                let rec = record(tx, s, &mut v, new_id("snap"), description, now)?;
                let wire_tags = tags::wire(&pairs);
                tags::put_all(tx, s, &rec.id, "snapshot", &wire_tags)?;
                out.push((rec, v.zone.clone(), pairs));
            }
            let recs: Vec<SnapshotRecord> = out.iter().map(|(r, _, _)| r.clone()).collect();
            freeze_files(k, !ctx.dry_run, &recs)?;
            Ok(out)
        })
        .map_err(|f: Fail| f.0)?;
    Ok(CreateSnapshotsResult {
        snapshots: Some(
            made.into_iter()
                .map(|(rec, zone, pairs)| SnapshotInfo {
                    snapshot_id: Some(rec.id),
                    volume_id: Some(rec.volume_id),
                    volume_size: Some(rec.volume_size),
                    description: Some(rec.description),
                    encrypted: Some(rec.encrypted),
                    owner_id: Some(ctx.account_id.clone()),
                    start_time: Some(DateTime(rec.start_ms)),
                    state: Some("pending".into()),
                    progress: Some(String::new()),
                    availability_zone: Some(zone),
                    tags: Some(tags::wire(&pairs)),
                    ..SnapshotInfo::default()
                })
                .collect(),
        ),
    })
}
