//! Network interface lookups.

use crate::core::error::Fail;
use crate::records::net::{EniRecord, SecurityGroupRecord};
use kumo_ec2_wire::Ec2Error;
use kumo_store::{Query, Read, Scope};
use std::collections::HashMap;

pub fn not_found(id: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidNetworkInterfaceID.NotFound",
        format!("The networkInterface ID '{id}' does not exist"),
    )
}

pub fn get_eni<V: Read>(v: &V, s: Scope, id: &str) -> Result<EniRecord, Fail> {
    v.get(s, id)?.ok_or_else(|| Fail(not_found(id)))
}

/// Group id → name for the scope.
pub fn group_names<V: Read>(v: &V, s: Scope) -> Result<HashMap<String, String>, Fail> {
    let groups: Vec<SecurityGroupRecord> = v.list(s, &Query::default())?;
    Ok(groups.into_iter().map(|g| (g.id, g.name)).collect())
}

/// Group id → name for these groups only: an indexed read, whatever the scope holds.
pub fn names_of<'a, V: Read>(
    v: &V,
    s: Scope,
    ids: impl Iterator<Item = &'a str>,
) -> Result<HashMap<String, String>, Fail> {
    let mut ids: Vec<&str> = ids.collect();
    ids.sort_unstable();
    ids.dedup();
    let mut out = HashMap::new();
    for chunk in ids.chunks(500) {
        let groups: Vec<SecurityGroupRecord> = v.list(
            s,
            &Query {
                ids: Some(chunk),
                ..Query::default()
            },
        )?;
        out.extend(groups.into_iter().map(|g| (g.id, g.name)));
    }
    Ok(out)
}

/// An interface a service manages for itself (a NAT gateway's, a VPC endpoint's) is the
/// service's: a user's call that would attach it or change its addresses or groups is
/// refused (AWS's code for it is not public; see the design's unconfirmed list).
pub fn check_not_managed(
    e: &crate::records::net::EniRecord,
) -> Result<(), crate::core::error::Fail> {
    if e.requester_managed {
        return Err(crate::core::error::Fail(kumo_ec2_wire::Ec2Error::new(
            "OperationNotPermitted",
            format!(
                "The network interface {} is managed by a service ({}) and cannot be changed.",
                e.id, e.interface_type
            ),
        )));
    }
    Ok(())
}
