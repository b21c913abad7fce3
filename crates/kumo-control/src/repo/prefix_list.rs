//! Customer-managed prefix lists as the families that name them find them: by id, with AWS's
//! errors, and the security groups whose rules reference one.

use crate::core::error::Fail;
use crate::records::net::{PrefixListRecord, SecurityGroupRecord};
use kumo_ec2_wire::Ec2Error;
use kumo_store::{Query, Read, Scope};

pub fn not_found(id: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidPrefixListID.NotFound",
        format!("The prefix list ({id}) does not exist."),
    )
}

/// The list named `id`. A list being deleted is gone; one whose deletion failed is back.
pub fn get<V: Read>(v: &V, s: Scope, id: &str) -> Result<PrefixListRecord, Fail> {
    if kumo_model::ids::resource_type(id) != Some("prefix-list") {
        return Err(Fail(Ec2Error::new(
            "InvalidPrefixListId.Malformed",
            format!("Invalid id: \"{id}\" (expecting \"pl-...\")"),
        )));
    }
    v.get(s, id)?.ok_or_else(|| Fail(not_found(id)))
}

/// The security groups with a rule (either direction) that references list `id`.
pub fn referencing<V: Read>(v: &V, s: Scope, id: &str) -> Result<Vec<SecurityGroupRecord>, Fail> {
    let groups: Vec<SecurityGroupRecord> = v.list(s, &Query::default())?;
    Ok(groups
        .into_iter()
        .filter(|g| {
            g.ingress
                .iter()
                .chain(g.egress.iter())
                .any(|r| r.prefix_list_id.as_deref() == Some(id))
        })
        .collect())
}
