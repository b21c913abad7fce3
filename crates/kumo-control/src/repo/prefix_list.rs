//! Prefix lists as the families that name them find them: by id, with AWS's errors, and the
//! security groups whose rules reference one. Besides the customer-managed lists of the store,
//! each region has AWS-managed lists (`com.amazonaws.<region>.s3`, `….dynamodb`: the gateway
//! endpoints' services), made here from the region's name rather than stored.

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

/// The services of the region's AWS-managed lists.
pub const AWS_MANAGED: &[&str] = &["dynamodb", "s3"];

/// The AWS-managed list of a gateway service: AWS's ids where AWS's answers show them, a
/// stable one of AWS's form elsewhere, and the CIDRs of AWS's documentation examples (Kumo
/// serves neither service; nothing is routed there).
pub fn aws_managed(region: &str, short: &str) -> PrefixListRecord {
    let known = match (region, short) {
        ("us-east-1", "s3") => Some("pl-63a5400a"),
        ("us-east-1", "dynamodb") => Some("pl-02cd2c6b"),
        ("us-east-2", "s3") => Some("pl-7ba54012"),
        ("us-east-2", "dynamodb") => Some("pl-4ca54025"),
        _ => None,
    };
    let id = known.map(str::to_string).unwrap_or_else(|| {
        let h = format!("{region}/{short}")
            .bytes()
            .fold(0x811c_9dc5u32, |h, b| {
                (h ^ b as u32).wrapping_mul(0x0100_0193)
            });
        format!("pl-{h:08x}")
    });
    let cidrs: &[&str] = if short == "s3" {
        &["54.231.0.0/17"]
    } else {
        &["52.94.0.0/22"]
    };
    PrefixListRecord {
        id,
        name: format!("com.amazonaws.{region}.{short}"),
        family: "IPv4".into(),
        max_entries: cidrs.len() as i32,
        versions: vec![(
            1,
            cidrs
                .iter()
                .map(|c| crate::records::net::PrefixListEntry {
                    cidr: c.to_string(),
                    description: None,
                })
                .collect(),
        )],
        op: "create".into(),
        failure: None,
        changed_ms: 0,
    }
}

/// The region's AWS-managed lists.
pub fn aws_managed_all(region: &str) -> Vec<PrefixListRecord> {
    AWS_MANAGED.iter().map(|s| aws_managed(region, s)).collect()
}

/// The AWS-managed list `id` of the region, if it is one.
pub fn aws_managed_by_id(region: &str, id: &str) -> Option<PrefixListRecord> {
    aws_managed_all(region).into_iter().find(|p| p.id == id)
}

/// The list named `id`, AWS-managed or the account's: what a rule may reference and a
/// reader may read. Only the account's own can change ([`get`]).
pub fn get_any<V: Read>(v: &V, s: Scope, id: &str) -> Result<PrefixListRecord, Fail> {
    match aws_managed_by_id(s.region, id) {
        Some(p) => Ok(p),
        None => get(v, s, id),
    }
}

/// The account's list named `id`. A list being deleted is gone; one whose deletion failed is
/// back.
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
