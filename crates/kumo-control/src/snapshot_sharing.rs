//! Snapshot create-volume permissions: ModifySnapshotAttribute, DescribeSnapshotAttribute and
//! ResetSnapshotAttribute.

use crate::core::checks::{self, Checks};
use crate::core::error::Fail;
use crate::records::snapshot::SnapshotRecord;
use crate::repo::snapshot::not_found;
use crate::sharing::{self, Change, Permissions};
use crate::{scope, Kumo};
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_store::{Read, Scope};

/// The caller's own snapshot. Another account's snapshot, even one shared with the caller,
/// answers as if it did not exist.
fn owned<V: Read>(v: &V, s: Scope, id: &str) -> Result<SnapshotRecord, Fail> {
    v.get::<SnapshotRecord>(s, id)?
        .ok_or_else(|| Fail(not_found(id)))
}

fn changes(input: &ModifySnapshotAttributeRequest) -> Result<Vec<Change>, Ec2Error> {
    let mut out = Vec::new();
    if let Some(m) = &input.create_volume_permission {
        for (add, list) in [(true, &m.add), (false, &m.remove)] {
            for p in list.iter().flatten() {
                out.push(Change {
                    add,
                    user: p.user_id.clone(),
                    group: p.group.clone(),
                });
            }
        }
    }
    out.extend(sharing::listed(
        input.operation_type.as_deref(),
        input.user_ids.as_deref(),
        input.group_names.as_deref(),
    )?);
    Ok(out)
}

/// ModifySnapshotAttribute, before any lookup: the attribute, the changes (something to
/// change, each item an account id or `all`). The snapshot (the caller's own) and what
/// sharing it allows follow.
impl Checks for ModifySnapshotAttributeRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        checks::phase_one(self.formats())
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        attribute(self)?;
        let changes = changes(self)?;
        if changes.is_empty() {
            return Err(Ec2Error::missing_parameter("createVolumePermission"));
        }
        sharing::apply(&Permissions::default(), &changes).map(drop)
    }
}

fn attribute(input: &ModifySnapshotAttributeRequest) -> Result<(), Ec2Error> {
    match input.attribute.as_deref() {
        None | Some("createVolumePermission") => {}
        Some("productCodes") => {
            return Err(Ec2Error::new(
                "UnsupportedOperation",
                "Product codes cannot be added to a snapshot.",
            ))
        }
        Some(other) => {
            return Err(Ec2Error::invalid_value(format!(
                "Value ({other}) for parameter attribute is invalid."
            )))
        }
    }
    Ok(())
}

pub fn modify(
    k: &Kumo,
    ctx: &RequestContext,
    input: ModifySnapshotAttributeRequest,
) -> Result<(), Ec2Error> {
    let changes = changes(&input)?;
    let s = scope(ctx);
    let id = &input.snapshot_id;
    k.store
        .write(!ctx.dry_run, |tx| {
            let mut snap = owned(tx, s, id)?;
            let before = snap.create_volume.clone();
            let after = sharing::apply(&before, &changes)?;
            if snap.encrypted && after.public && !before.public {
                return Err(Fail(Ec2Error::new(
                    "OperationNotPermitted",
                    "Encrypted snapshots cannot be shared publicly",
                )));
            }
            let default_key = crate::repo::volume::default_kms_arn(s);
            if snap.encrypted
                && snap.kms_key_id.as_deref() == Some(default_key.as_str())
                && after.users.iter().any(|u| !before.users.contains(u))
            {
                return Err(Fail(Ec2Error::new(
                    "OperationNotPermitted",
                    "Encrypted snapshots with EBS default key cannot be shared",
                )));
            }
            sharing::regrant(tx, s, id, &before, &after)?;
            snap.create_volume = after;
            tx.update(s, &snap)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)
}

pub fn describe(
    k: &Kumo,
    ctx: &RequestContext,
    input: DescribeSnapshotAttributeRequest,
) -> Result<DescribeSnapshotAttributeResult, Ec2Error> {
    let snap = k
        .store
        .read(|v| owned(v, scope(ctx), &input.snapshot_id))
        .map_err(|f| f.0)?;
    let mut out = DescribeSnapshotAttributeResult {
        snapshot_id: Some(snap.id.clone()),
        ..DescribeSnapshotAttributeResult::default()
    };
    match input.attribute.as_str() {
        "createVolumePermission" => {
            let p = &snap.create_volume;
            let mut list: Vec<CreateVolumePermission> = p
                .users
                .iter()
                .map(|u| CreateVolumePermission {
                    user_id: Some(u.clone()),
                    group: None,
                })
                .collect();
            if p.public {
                list.push(CreateVolumePermission {
                    user_id: None,
                    group: Some("all".into()),
                });
            }
            out.create_volume_permissions = Some(list);
        }
        // Kumo's snapshots carry no product codes.
        _ => out.product_codes = Some(Vec::new()),
    }
    Ok(out)
}

/// ResetSnapshotAttribute, before any lookup: the one attribute that resets.
impl Checks for ResetSnapshotAttributeRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        if self.attribute != "createVolumePermission" {
            return Err(Ec2Error::invalid_value(format!(
                "Value ({}) for parameter attribute is invalid. Only createVolumePermission can be reset.",
                self.attribute
            )));
        }
        Ok(())
    }
}

pub fn reset(
    k: &Kumo,
    ctx: &RequestContext,
    input: ResetSnapshotAttributeRequest,
) -> Result<(), Ec2Error> {
    let s = scope(ctx);
    k.store
        .write(!ctx.dry_run, |tx| {
            let mut snap = owned(tx, s, &input.snapshot_id)?;
            sharing::regrant(
                tx,
                s,
                &snap.id,
                &snap.create_volume,
                &Permissions::default(),
            )?;
            snap.create_volume = Permissions::default();
            tx.update(s, &snap)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)
}
