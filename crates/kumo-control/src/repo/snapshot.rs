//! Snapshot lookups.

use crate::core::error::Fail;
use crate::records::snapshot::SnapshotRecord;
use kumo_ec2_wire::Ec2Error;
use kumo_store::{Read, Scope};

pub fn not_found(id: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidSnapshot.NotFound",
        format!("The snapshot '{id}' does not exist."),
    )
}

pub fn bad_mapping(msg: impl Into<String>) -> Ec2Error {
    Ec2Error::new("InvalidBlockDeviceMapping", msg)
}

/// The snapshot a block device mapping names.
pub fn mapped_snapshot<V: Read>(v: &V, s: Scope, id: &str) -> Result<SnapshotRecord, Fail> {
    v.get(s, id)?
        .ok_or_else(|| Fail(crate::repo::snapshot::not_found(id)))
}

/// A snapshot the caller may create volumes from, with its owner when that is another
/// account.
pub fn usable_snapshot<V: Read>(
    v: &V,
    s: Scope,
    id: &str,
) -> Result<(Option<String>, SnapshotRecord), Fail> {
    let (owner, snap) = crate::sharing::owner_of::<SnapshotRecord, _>(v, s, id)?
        .ok_or_else(|| Fail(crate::repo::snapshot::not_found(id)))?;
    Ok(((owner != s.account).then_some(owner), snap))
}

/// The size of a new mapped volume: the size asked (at least the snapshot's), else the
/// snapshot's; one of the two must be given.
pub fn new_volume_size(
    device: &str,
    snap: Option<&SnapshotRecord>,
    asked: Option<i32>,
) -> Result<i32, Fail> {
    match (asked, snap) {
        (Some(n), Some(sn)) if n < sn.volume_size => Err(Fail(bad_mapping(format!(
            "Volume of size {n}GB is smaller than snapshot '{}', expect size >= {}GB",
            sn.id, sn.volume_size
        )))),
        (Some(n), _) => Ok(n),
        (None, Some(sn)) => Ok(sn.volume_size),
        (None, None) => Err(Fail(bad_mapping(format!(
            "Either snapshot ID or volume size must be provided for: {device}"
        )))),
    }
}
