//! Volume lookups and the region's EBS settings.

use crate::core::error::Fail;
use crate::records::volume::{EbsSettings, VolumeRecord};
use kumo_ec2_wire::Ec2Error;
use kumo_store::{Query, Read, Scope};

pub const DEFAULT_KEY: &str = "alias/aws/ebs";

pub fn not_found(id: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidVolume.NotFound",
        format!("The volume '{id}' does not exist."),
    )
}

pub fn get_volume<V: Read>(v: &V, s: Scope, id: &str) -> Result<VolumeRecord, Fail> {
    if kumo_model::ids::resource_type(id) != Some("volume") {
        return Err(Fail(Ec2Error::new(
            "InvalidVolumeID.Malformed",
            format!("Invalid id: \"{id}\" (expecting \"vol-...\")"),
        )));
    }
    v.get(s, id)?.ok_or_else(|| Fail(not_found(id)))
}

/// Volumes attached to an instance at `now` (for its block device mappings and its
/// termination): each settled first, so one whose detach has finished, though its stored
/// attachment is only dropped at its next write, is not.
pub fn attached_to<V: Read>(
    v: &V,
    s: Scope,
    instance: &str,
    (now, delay): (i64, i64),
) -> Result<Vec<VolumeRecord>, Fail> {
    let all: Vec<VolumeRecord> = v.list(s, &Query::default())?;
    Ok(all
        .into_iter()
        .filter(|x| x.attachments.iter().any(|a| a.instance_id == instance))
        .map(|mut x| {
            x.settle(now, delay);
            x
        })
        .filter(|x| x.attachments.iter().any(|a| a.instance_id == instance))
        .collect())
}

/// The ARN of the account's default EBS key in a region, which encrypted volumes and snapshots
/// get when no key is named.
pub fn default_kms_arn(s: Scope) -> String {
    format!("arn:aws:kms:{}:{}:{DEFAULT_KEY}", s.region, s.account)
}

pub fn settings<V: Read>(v: &V, s: Scope) -> Result<EbsSettings, Fail> {
    Ok(v.get(s, "settings")?.unwrap_or(EbsSettings {
        id: "settings".into(),
        encryption_by_default: false,
    }))
}
