//! Tags for every resource type: CreateTags, DeleteTags, DescribeTags, and
//! `TagSpecifications` at creation.

use crate::core::checks::Checks;
use crate::core::error::{rule, Fail};
use crate::core::filters;
use crate::core::paging;
use crate::scope;
use kumo_ec2_wire::filters::DescribeTags as F;
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_model::filter::Filterable;
use kumo_model::{ids, tags as rules};
use kumo_store::{Read, Scope, Store, StoreError, TagQuery, TagRow, Tx};

pub use crate::core::tagged::{attach, Tagged};

pub fn wire(tags: &[(String, String)]) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect()
}

/// Wire tags as (key, value) pairs.
pub fn wire_pairs(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter()
        .map(|t| {
            (
                t.key.clone().unwrap_or_default(),
                t.value.clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// Checks tags as CreateTags does and folds duplicates (the last value wins).
pub(crate) fn checked(tags: Vec<Tag>) -> Result<Vec<Tag>, Ec2Error> {
    let mut out: Vec<Tag> = Vec::with_capacity(tags.len());
    for t in tags {
        let key = t.key.unwrap_or_default();
        let value = t.value.unwrap_or_default();
        rules::check_tag(&key, &value).map_err(rule)?;
        out.retain(|o| o.key.as_deref() != Some(key.as_str()));
        out.push(Tag {
            key: Some(key),
            value: Some(value),
        });
    }
    rules::check_count(out.len()).map_err(rule)?;
    Ok(out)
}

/// The tags that `TagSpecifications` give a new resource of `resource_type`.
pub fn from_specifications(
    specs: Option<Vec<TagSpecification>>,
    resource_type: &str,
) -> Result<Vec<Tag>, Ec2Error> {
    let mut all = Vec::new();
    for spec in specs.unwrap_or_default() {
        let rt = spec.resource_type.unwrap_or_default();
        if rt != resource_type {
            return Err(Ec2Error::invalid_value(format!(
                "'{rt}' is not a valid taggable resource type for this operation."
            )));
        }
        all.extend(spec.tags.unwrap_or_default());
    }
    checked(all)
}

/// Tags that RunInstances' `TagSpecifications` give each kind of resource it makes.
#[derive(Default)]
pub struct LaunchTags {
    pub instance: Vec<Tag>,
    pub network_interface: Vec<Tag>,
    /// Tags of the volumes the launch makes.
    pub volume: Vec<Tag>,
}

pub fn from_launch_specifications(
    specs: Option<Vec<TagSpecification>>,
) -> Result<LaunchTags, Ec2Error> {
    let mut out = LaunchTags::default();
    for spec in specs.unwrap_or_default() {
        let rt = spec.resource_type.clone().unwrap_or_default();
        let target = match rt.as_str() {
            "instance" => &mut out.instance,
            "network-interface" => &mut out.network_interface,
            "volume" => &mut out.volume,
            _ => {
                return Err(Ec2Error::invalid_value(format!(
                    "'{rt}' is not a valid taggable resource type for this operation."
                )))
            }
        };
        target.extend(spec.tags.unwrap_or_default());
    }
    out.instance = checked(std::mem::take(&mut out.instance))?;
    out.network_interface = checked(std::mem::take(&mut out.network_interface))?;
    out.volume = checked(std::mem::take(&mut out.volume))?;
    Ok(out)
}

pub fn put_all(
    tx: &Tx,
    s: Scope,
    id: &str,
    resource_type: &str,
    tags: &[Tag],
) -> Result<(), StoreError> {
    for t in tags {
        tx.put_tag(
            s,
            id,
            resource_type,
            t.key.as_deref().unwrap_or(""),
            t.value.as_deref().unwrap_or(""),
        )?;
    }
    Ok(())
}

/// The tags `put_all` leaves on a resource that had none, as the store reads them back:
/// by key, a repeated key keeping its last value.
pub fn as_stored(tags: &[Tag]) -> Vec<(String, String)> {
    let by_key: std::collections::BTreeMap<String, String> = wire_pairs(tags).into_iter().collect();
    by_key.into_iter().collect()
}

/// Per resource type: the error AWS answers for a well-formed id that does not exist.
const NOT_FOUND: &[(&str, &str, &str)] = &[
    (
        "key-pair",
        "InvalidKeyPair.NotFound",
        "The key pair ID '{}' does not exist",
    ),
    (
        "instance",
        "InvalidInstanceID.NotFound",
        "The instance ID '{}' does not exist",
    ),
    (
        "image",
        "InvalidAMIID.NotFound",
        "The image id '[{}]' does not exist",
    ),
    (
        "volume",
        "InvalidVolume.NotFound",
        "The volume '{}' does not exist.",
    ),
    (
        "snapshot",
        "InvalidSnapshot.NotFound",
        "The snapshot '{}' does not exist.",
    ),
    (
        "vpc",
        "InvalidVpcID.NotFound",
        "The vpc ID '{}' does not exist",
    ),
    (
        "subnet",
        "InvalidSubnetID.NotFound",
        "The subnet ID '{}' does not exist",
    ),
    (
        "security-group",
        "InvalidGroup.NotFound",
        "The security group '{}' does not exist",
    ),
    (
        "network-interface",
        "InvalidNetworkInterfaceID.NotFound",
        "The networkInterface ID '{}' does not exist",
    ),
    (
        "internet-gateway",
        "InvalidInternetGatewayID.NotFound",
        "The internetGateway ID '{}' does not exist",
    ),
    (
        "route-table",
        "InvalidRouteTableID.NotFound",
        "The routeTable ID '{}' does not exist",
    ),
    (
        "elastic-ip",
        "InvalidAllocationID.NotFound",
        "The allocation ID '{}' does not exist",
    ),
    (
        "natgateway",
        "NatGatewayNotFound",
        "The Nat Gateway {} was not found",
    ),
    (
        "network-acl",
        "InvalidNetworkAclID.NotFound",
        "The networkAcl ID '{}' does not exist",
    ),
    (
        "prefix-list",
        "InvalidPrefixListID.NotFound",
        "The prefix list ({}) does not exist.",
    ),
    (
        "dhcp-options",
        "InvalidDhcpOptionID.NotFound",
        "The dhcpOption ID '{}' does not exist",
    ),
    (
        "launch-template",
        "InvalidLaunchTemplateId.NotFound",
        "The specified launch template, with template ID {}, does not exist.",
    ),
    (
        "placement-group",
        "InvalidPlacementGroup.Unknown",
        "The Placement Group '{}' is unknown.",
    ),
    (
        "capacity-reservation",
        "InvalidCapacityReservationId.NotFound",
        "The capacity reservation ID '{}' does not exist",
    ),
    (
        "vpc-peering-connection",
        "InvalidVpcPeeringConnectionID.NotFound",
        "The vpcPeeringConnection ID '{}' does not exist",
    ),
    (
        "egress-only-internet-gateway",
        "InvalidGatewayID.NotFound",
        "The eigw ID '{}' does not exist",
    ),
    (
        "vpc-endpoint",
        "InvalidVpcEndpointId.NotFound",
        "The Vpc Endpoint Id '{}' does not exist",
    ),
    (
        "vpn-gateway",
        "InvalidVpnGatewayID.NotFound",
        "The vpnGateway ID '{}' does not exist",
    ),
    (
        "customer-gateway",
        "InvalidCustomerGatewayID.NotFound",
        "The customerGateway ID '{}' does not exist",
    ),
    (
        "traffic-mirror-target",
        "InvalidTrafficMirrorTargetId.NotFound",
        "The trafficMirrorTarget ID '{}' does not exist",
    ),
    (
        "traffic-mirror-filter",
        "InvalidTrafficMirrorFilterId.NotFound",
        "The trafficMirrorFilter ID '{}' does not exist",
    ),
    (
        "traffic-mirror-filter-rule",
        "InvalidTrafficMirrorFilterRuleId.NotFound",
        "The trafficMirrorFilterRule ID '{}' does not exist",
    ),
    (
        "traffic-mirror-session",
        "InvalidTrafficMirrorSessionId.NotFound",
        "The trafficMirrorSession ID '{}' does not exist",
    ),
];

/// The resource type an id names, when it has a known resource's form, else AWS's `InvalidID`.
fn id_type(id: &str) -> Result<&'static str, Ec2Error> {
    ids::resource_type(id)
        .ok_or_else(|| Ec2Error::new("InvalidID", format!("The ID '{id}' is not valid")))
}

/// Checks that each id names an existing resource of this scope, and returns its type.
fn resolve<V: Read>(v: &V, s: Scope, id: &str) -> Result<&'static str, Fail> {
    let rt = id_type(id)?;
    // Every stored kind is named after its resource type.
    if v.get_row(s, rt, id)?.is_none() {
        let (code, msg) = NOT_FOUND
            .iter()
            .find(|(t, _, _)| *t == rt)
            .map(|(_, c, m)| (*c, m.replace("{}", id)))
            .unwrap_or(("InvalidID", format!("The ID '{id}' is not valid")));
        return Err(Fail(Ec2Error::new(code, msg)));
    }
    Ok(rt)
}

fn check_resources(resources: &[String]) -> Result<(), Ec2Error> {
    if resources.len() > 1000 {
        return Err(Ec2Error::invalid_value(
            "The maximum number of resources is 1000.",
        ));
    }
    Ok(())
}

/// CreateTags, before any lookup: at most 1000 resources, each of a taggable resource's form,
/// and the tags' rules. Every resource's existence follows, then each one's tag limit.
impl Checks for CreateTagsRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        check_resources(&self.resources)?;
        for id in &self.resources {
            id_type(id)?;
        }
        checked(self.tags.clone()).map(drop)
    }
}

/// DeleteTags, before any lookup: at most 1000 resources, each of a taggable resource's form.
impl Checks for DeleteTagsRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        check_resources(&self.resources)?;
        self.resources
            .iter()
            .try_for_each(|id| id_type(id).map(drop))
    }
}

pub fn create_tags(
    store: &Store,
    ctx: &RequestContext,
    input: CreateTagsRequest,
) -> Result<(), Ec2Error> {
    let tags = checked(input.tags)?;
    store
        .write(!ctx.dry_run, |tx| {
            let s = scope(ctx);
            // Every resource exists before any limit is counted.
            let kinds = input
                .resources
                .iter()
                .map(|id| resolve(tx, s, id))
                .collect::<Result<Vec<_>, Fail>>()?;
            for (id, rt) in input.resources.iter().zip(kinds) {
                put_all(tx, s, id, rt, &tags)?;
                let count = tx
                    .tags_of(s, id)?
                    .iter()
                    .filter(|(k, _)| !k.starts_with("aws:"))
                    .count();
                rules::check_count(count).map_err(rule)?;
            }
            Ok(())
        })
        .map_err(|f: Fail| f.0)
}

pub fn delete_tags(
    store: &Store,
    ctx: &RequestContext,
    input: DeleteTagsRequest,
) -> Result<(), Ec2Error> {
    store
        .write(!ctx.dry_run, |tx| {
            let s = scope(ctx);
            for id in &input.resources {
                resolve(tx, s, id)?;
            }
            for id in &input.resources {
                match &input.tags {
                    // No tags named: every user tag goes.
                    None => {
                        for (k, _) in tx.tags_of(s, id)? {
                            if !k.starts_with("aws:") {
                                tx.delete_tag(s, id, &k, None)?;
                            }
                        }
                    }
                    // A key alone deletes whatever its value; a key with a value (even empty)
                    // deletes only a tag with exactly that value.
                    Some(tags) => {
                        for t in tags {
                            let key = t.key.as_deref().unwrap_or("");
                            tx.delete_tag(s, id, key, t.value.as_deref())?;
                        }
                    }
                }
            }
            Ok(())
        })
        .map_err(|f: Fail| f.0)
}

struct TagView {
    row: TagRow,
    pair: [(String, String); 1],
}

impl Filterable<F> for TagView {
    fn field(&self, f: F, out: &mut dyn FnMut(&str)) {
        match f {
            F::Key => out(&self.row.key),
            F::Value => out(&self.row.value),
            F::ResourceId => out(&self.row.resource_id),
            F::ResourceType => out(&self.row.resource_type),
        }
    }
    fn tags(&self) -> &[(String, String)] {
        &self.pair
    }
}

const DESCRIBE_TAGS: &str = "DescribeTags";

pub fn describe_tags(
    store: &Store,
    ctx: &RequestContext,
    input: DescribeTagsRequest,
) -> Result<DescribeTagsResult, Ec2Error> {
    let fs = filters::compile::<F>(input.filters, &[])?;
    let limit = paging::max_results(input.max_results, 5, 1000)?;
    let cursor = paging::cursor(DESCRIBE_TAGS, input.next_token.as_deref())?;
    let after = match &cursor {
        Some(c) => Some(c.split_once('\n').ok_or_else(|| {
            Ec2Error::invalid_value(
                "Value ( ) for parameter NextToken is invalid. The token is invalid.",
            )
        })?),
        None => None,
    };
    let ids = fs.exact(F::ResourceId);
    let keys = fs.exact(F::Key);
    let rows = store
        .read(|v| {
            v.list_tags(
                scope(ctx),
                &TagQuery {
                    resource_ids: ids.as_deref(),
                    keys: keys.as_deref(),
                    after,
                    limit: None,
                },
            )
            .map_err(Fail::from)
        })
        .map_err(|f| f.0)?;
    let matching: Vec<TagView> = rows
        .into_iter()
        .map(|row| TagView {
            pair: [(row.key.clone(), row.value.clone())],
            row,
        })
        .filter(|t| fs.matches(t))
        .collect();
    let (page, next) = paging::page(matching, limit, DESCRIBE_TAGS, |t| {
        format!("{}\n{}", t.row.resource_id, t.row.key)
    });
    Ok(DescribeTagsResult {
        tags: Some(
            page.into_iter()
                .map(|t| TagDescription {
                    resource_id: Some(t.row.resource_id),
                    resource_type: Some(t.row.resource_type),
                    key: Some(t.row.key),
                    value: Some(t.row.value),
                })
                .collect(),
        ),
        next_token: next,
    })
}
