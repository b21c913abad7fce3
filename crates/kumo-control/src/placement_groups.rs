//! Placement groups: CreatePlacementGroup, DescribePlacementGroups, DeletePlacementGroup,
//! and where RunInstances puts an instance in one ([`for_launch`]).
//!
//! AWS's rules are enforced as AWS states them: a type goes only into the strategies its
//! `PlacementGroupInfo` lists; a cluster group's instances share one zone; a spread group
//! holds at most 7 running instances per zone; a partition group has 1 to 7 partitions, and
//! a launch without a partition number spreads its instances over the least filled ones.
//! With one host, the placement itself (which rack, which host) is recorded, not felt: the
//! scale-out issue makes spread and partition real across hosts.

use crate::core::checks::Checks;
use crate::core::error::Fail;
use crate::core::filters;
use crate::core::tagged::Tagged;
use crate::records::instance::InstanceRecord;
use crate::records::launch_template::REGIONAL;
use crate::records::placement_group::PlacementGroupRecord;
use crate::tags;
use crate::{scope, Kumo};
use kumo_ec2_wire::filters::DescribePlacementGroups as F;
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::FilterName;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_model::filter::Filterable;
use kumo_model::lifecycle::State;
use kumo_store::{Query, Read, Record, Scope, StoreError, Tx};

/// AWS's quota of placement groups per region, and its limits on a group's shape.
pub const MAX_GROUPS: u64 = 500;
pub const MAX_PARTITIONS: i32 = 7;
pub const MAX_SPREAD_PER_ZONE: usize = 7;

fn unknown(name: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidPlacementGroup.Unknown",
        format!("The Placement Group '{name}' is unknown."),
    )
}

/// CreatePlacementGroup, before any lookup: a name and a strategy; then the name's form
/// (up to 255 ASCII characters), a partition count only for `partition` and within 1 to 7,
/// a spread level only for `spread` and not `host` (AWS Outposts only), the tags. The name's
/// uniqueness follows, then the quota.
impl Checks for CreatePlacementGroupRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        if self.group_name.as_deref().is_none_or(str::is_empty) {
            return Err(Ec2Error::missing_parameter("GroupName"));
        }
        if self.strategy.is_none() {
            return Err(Ec2Error::missing_parameter("Strategy"));
        }
        Ok(())
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        let name = self.group_name.as_deref().unwrap_or_default();
        if name.len() > 255 || !name.is_ascii() {
            return Err(Ec2Error::invalid_value(format!(
                "Value ({name}) for parameter groupName is invalid. A placement group name can have up to 255 ASCII characters."
            )));
        }
        let strategy = self.strategy.as_deref().unwrap_or_default();
        if let Some(n) = self.partition_count {
            if strategy != "partition" {
                return Err(Ec2Error::new(
                    "InvalidParameterCombination",
                    "The parameter partitionCount is valid only with the partition strategy.",
                ));
            }
            if !(1..=MAX_PARTITIONS).contains(&n) {
                return Err(Ec2Error::invalid_value(format!(
                    "Value ({n}) for parameter partitionCount is invalid. A partition placement group can have 1 to {MAX_PARTITIONS} partitions."
                )));
            }
        }
        if let Some(level) = &self.spread_level {
            if strategy != "spread" {
                return Err(Ec2Error::new(
                    "InvalidParameterCombination",
                    "The parameter spreadLevel is valid only with the spread strategy.",
                ));
            }
            if level == "host" {
                return Err(Ec2Error::invalid_value(
                    "Value (host) for parameter spreadLevel is invalid. Host-level spread placement groups are available only on AWS Outposts.",
                ));
            }
        }
        if self.linked_group_id.is_some() {
            return Err(Ec2Error::new(
                "Unsupported",
                "CreatePlacementGroup's LinkedGroupId is not supported by Kumo.",
            ));
        }
        tags::from_specifications(self.tag_specifications.clone(), "placement-group").map(drop)
    }
}

fn arn(ctx: &RequestContext, name: &str) -> String {
    format!(
        "arn:aws:ec2:{}:{}:placement-group/{name}",
        ctx.region, ctx.account_id
    )
}

fn wire(
    ctx: &RequestContext,
    g: &PlacementGroupRecord,
    tags: &[(String, String)],
) -> PlacementGroup {
    PlacementGroup {
        group_name: Some(g.name.clone()),
        group_id: Some(g.id.clone()),
        group_arn: Some(arn(ctx, &g.name)),
        state: Some("available".into()),
        strategy: Some(g.strategy.clone()),
        partition_count: g.partition_count,
        spread_level: g.spread_level.clone(),
        tags: (!tags.is_empty()).then(|| tags::wire(tags)),
        ..PlacementGroup::default()
    }
}

pub fn create(
    k: &Kumo,
    ctx: &RequestContext,
    input: CreatePlacementGroupRequest,
) -> Result<CreatePlacementGroupResult, Ec2Error> {
    let tag_list = tags::from_specifications(input.tag_specifications.clone(), "placement-group")?;
    let name = input.group_name.clone().unwrap_or_default();
    let strategy = input.strategy.clone().unwrap_or_default();
    let s = scope(ctx);
    let g = PlacementGroupRecord {
        id: crate::core::ids::new_id("pg"),
        name: name.clone(),
        spread_level: (strategy == "spread")
            .then(|| input.spread_level.clone().unwrap_or_else(|| "rack".into())),
        partition_count: (strategy == "partition").then(|| input.partition_count.unwrap_or(2)),
        strategy,
        created_ms: k.now_ms(),
        instances: Vec::new(),
    };
    let duplicate = || {
        Ec2Error::new(
            "InvalidPlacementGroup.Duplicate",
            format!("The placement group '{name}' already exists."),
        )
    };
    k.store
        .write(!ctx.dry_run, |tx| {
            if tx.get_by_name::<PlacementGroupRecord>(s, &name)?.is_some() {
                return Err(Fail(duplicate()));
            }
            if tx.count_in_zone(s, PlacementGroupRecord::KIND, REGIONAL, &[])? >= MAX_GROUPS {
                return Err(Fail(Ec2Error::new(
                    "PlacementGroupLimitExceeded",
                    "You've reached the limit on the number of placement groups that you can have.",
                )));
            }
            if ctx.dry_run {
                return Err(Fail(Ec2Error::dry_run()));
            }
            match tx.insert(s, &g) {
                Err(StoreError::Conflict) => return Err(Fail(duplicate())),
                other => other?,
            }
            tags::put_all(tx, s, &g.id, "placement-group", &tag_list)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)?;
    Ok(CreatePlacementGroupResult {
        placement_group: Some(wire(ctx, &g, &tags::as_stored(&tag_list))),
    })
}

struct View<'a> {
    t: &'a Tagged<PlacementGroupRecord>,
    arn: String,
}

impl Filterable<F> for View<'_> {
    fn field(&self, f: F, out: &mut dyn FnMut(&str)) {
        let _name = f.name();
        let g = &self.t.item;
        match f {
            F::GroupArn => out(&self.arn),
            F::GroupName => out(&g.name),
            F::SpreadLevel => {
                if let Some(l) = &g.spread_level {
                    out(l)
                }
            }
            F::State => out("available"),
            F::Strategy => out(&g.strategy),
        }
    }
    fn tags(&self) -> &[(String, String)] {
        &self.t.tags
    }
}

pub fn describe(
    k: &Kumo,
    ctx: &RequestContext,
    input: DescribePlacementGroupsRequest,
) -> Result<DescribePlacementGroupsResult, Ec2Error> {
    let fs = filters::compile::<F>(input.filters, &[])?;
    let names = input.group_names.unwrap_or_default();
    let ids = input.group_ids.unwrap_or_default();
    let s = scope(ctx);
    let rows = k
        .store
        .read(|v| {
            let mut rows: Vec<PlacementGroupRecord> = Vec::new();
            if names.is_empty() && ids.is_empty() {
                rows = v.list(s, &Query::default())?;
            }
            for n in &names {
                let g = v
                    .get_by_name::<PlacementGroupRecord>(s, n)?
                    .ok_or_else(|| Fail(unknown(n)))?;
                rows.push(g);
            }
            for id in &ids {
                let g = v
                    .get::<PlacementGroupRecord>(s, id)?
                    .ok_or_else(|| Fail(unknown(id)))?;
                if !rows.iter().any(|r| r.id == g.id) {
                    rows.push(g);
                }
            }
            crate::core::tagged::attach(v, s, rows)
        })
        .map_err(|f| f.0)?;
    Ok(DescribePlacementGroupsResult {
        placement_groups: Some(
            rows.iter()
                .filter(|t| {
                    fs.matches(&View {
                        t,
                        arn: arn(ctx, &t.item.name),
                    })
                })
                .map(|t| wire(ctx, &t.item, &t.tags))
                .collect(),
        ),
    })
}

impl Checks for DeletePlacementGroupRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        if self.group_name.is_empty() {
            return Err(Ec2Error::missing_parameter("GroupName"));
        }
        Ok(())
    }
}

/// The instances in a group that are not terminated, settled to now: read by the ids the
/// group keeps, not by scanning the region.
fn members<V: Read>(
    k: &Kumo,
    v: &V,
    s: Scope,
    g: &PlacementGroupRecord,
) -> Result<Vec<InstanceRecord>, Fail> {
    Ok(crate::repo::instance::existing(k, v, s, &g.instances)?
        .into_iter()
        .filter(|r| {
            r.placement_group
                .as_ref()
                .is_some_and(|(id, _)| *id == g.id)
        })
        .filter(|r| r.state() != State::Terminated)
        .collect())
}

/// Instances `ids` joined group `group_id`: its list keeps its members and gains them (the
/// terminated and the departed leave it here).
pub fn joined(k: &Kumo, tx: &Tx, s: Scope, group_id: &str, ids: &[String]) -> Result<(), Fail> {
    let Some(mut g) = tx.get::<PlacementGroupRecord>(s, group_id)? else {
        return Ok(());
    };
    let mut keep: Vec<String> = members(k, tx, s, &g)?.into_iter().map(|r| r.id).collect();
    keep.retain(|id| !ids.contains(id));
    keep.extend(ids.iter().cloned());
    g.instances = keep;
    tx.update(s, &g)?;
    Ok(())
}

/// A stopped instance of a spread group starting: the group's running instances in its zone
/// stay at most 7 (the rule is about running instances, so it holds at a start as at a
/// launch).
pub fn check_start(k: &Kumo, tx: &Tx, s: Scope, r: &InstanceRecord) -> Result<(), Fail> {
    let Some((id, name)) = &r.placement_group else {
        return Ok(());
    };
    let Some(g) = tx.get::<PlacementGroupRecord>(s, id)? else {
        return Ok(());
    };
    if g.strategy != "spread" {
        return Ok(());
    }
    let running = members(k, tx, s, &g)?
        .iter()
        .filter(|m| m.id != r.id && m.zone == r.zone)
        .filter(|m| matches!(m.state(), State::Pending | State::Running))
        .count();
    if running >= MAX_SPREAD_PER_ZONE {
        return Err(Fail(Ec2Error::new(
            "InsufficientInstanceCapacity",
            format!(
                "A spread placement group can hold at most {MAX_SPREAD_PER_ZONE} running instances per Availability Zone; '{name}' has {running} in {}.",
                r.zone
            ),
        )));
    }
    Ok(())
}

/// Instance `id` left group `group_id`.
fn left(tx: &Tx, s: Scope, group_id: &str, id: &str) -> Result<(), Fail> {
    if let Some(mut g) = tx.get::<PlacementGroupRecord>(s, group_id)? {
        g.instances.retain(|x| x != id);
        tx.update(s, &g)?;
    }
    Ok(())
}

/// DeletePlacementGroup: refused while an instance that is not terminated is in it (one still
/// shutting down counts, as on AWS).
pub fn delete(
    k: &Kumo,
    ctx: &RequestContext,
    input: DeletePlacementGroupRequest,
) -> Result<(), Ec2Error> {
    let s = scope(ctx);
    let name = input.group_name;
    k.store
        .write(!ctx.dry_run, |tx| {
            let g = tx
                .get_by_name::<PlacementGroupRecord>(s, &name)?
                .ok_or_else(|| Fail(unknown(&name)))?;
            if !members(k, tx, s, &g)?.is_empty() {
                return Err(Fail(Ec2Error::new(
                    "InvalidPlacementGroup.InUse",
                    format!("The placement group '{name}' is in use and may not be deleted."),
                )));
            }
            if ctx.dry_run {
                return Err(Fail(Ec2Error::dry_run()));
            }
            tx.delete::<PlacementGroupRecord>(s, &g.id)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)
}

/// Where a launch's instances go in their group: the group (id, name) and each instance's
/// partition (a partition group's).
pub struct Placed {
    pub group: (String, String),
    pub partitions: Vec<Option<i32>>,
}

/// The placement group a launch names, checked by AWS's rules for `count` instances of
/// the type `info` describes in `zone`; None when it names none.
pub fn for_launch(
    k: &Kumo,
    tx: &Tx,
    s: Scope,
    placement: Option<&Placement>,
    info: &InstanceTypeInfo,
    zone: &str,
    count: usize,
) -> Result<Option<Placed>, Fail> {
    let Some(p) = placement else { return Ok(None) };
    let instance_type = info.instance_type.as_deref().unwrap_or_default();
    let g = match (p.group_name.as_deref(), p.group_id.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(Fail(Ec2Error::new(
                "InvalidParameterCombination",
                "The parameters groupName and groupId cannot be used together.",
            )))
        }
        (Some(n), None) => tx
            .get_by_name::<PlacementGroupRecord>(s, n)?
            .ok_or_else(|| Fail(unknown(n)))?,
        (None, Some(id)) => tx
            .get::<PlacementGroupRecord>(s, id)?
            .ok_or_else(|| Fail(unknown(id)))?,
        (None, None) => {
            if p.partition_number.is_some() {
                return Err(Fail(Ec2Error::new(
                    "InvalidParameterCombination",
                    "The parameter partitionNumber is valid only with a partition placement group.",
                )));
            }
            return Ok(None);
        }
    };
    let supported = info
        .placement_group_info
        .as_ref()
        .and_then(|i| i.supported_strategies.as_ref())
        .is_some_and(|s| s.contains(&g.strategy));
    if !supported {
        let strategy = match g.strategy.as_str() {
            "cluster" => "Cluster",
            "spread" => "Spread",
            _ => "Partition",
        };
        return Err(Fail(Ec2Error::new(
            "InvalidParameterCombination",
            format!("{strategy} placement groups are not supported by the '{instance_type}' instance type. Specify a supported instance type or change the placement group strategy, and try again."),
        )));
    }
    if p.partition_number.is_some() && g.strategy != "partition" {
        return Err(Fail(Ec2Error::new(
            "InvalidParameterCombination",
            "The parameter partitionNumber is valid only with a partition placement group.",
        )));
    }
    let members = members(k, tx, s, &g)?;
    let mut partitions = vec![None; count];
    match g.strategy.as_str() {
        "cluster" => {
            if let Some(other) = members.iter().find(|r| r.zone != zone) {
                return Err(Fail(Ec2Error::new(
                    "InvalidPlacementGroup.InUse",
                    format!(
                        "The placement group '{}' is in use in another availability zone: {}",
                        g.name, other.zone
                    ),
                )));
            }
        }
        "spread" => {
            let running = members
                .iter()
                .filter(|r| r.zone == zone && matches!(r.state(), State::Pending | State::Running))
                .count();
            if running + count > MAX_SPREAD_PER_ZONE {
                return Err(Fail(Ec2Error::new(
                    "InsufficientInstanceCapacity",
                    format!(
                        "A spread placement group can hold at most {MAX_SPREAD_PER_ZONE} running instances per Availability Zone; '{}' has {running} in {zone}, and {count} more were asked for.",
                        g.name
                    ),
                )));
            }
        }
        _ => {
            let n = g.partition_count.unwrap_or(1);
            match p.partition_number {
                Some(want) if !(1..=n).contains(&want) => {
                    return Err(Fail(Ec2Error::invalid_value(format!(
                        "Value ({want}) for parameter partitionNumber is invalid. Placement group '{}' has partitions 1 to {n}.",
                        g.name
                    ))));
                }
                Some(want) => partitions = vec![Some(want); count],
                None => {
                    // Evenly: each instance into the partition with the fewest instances.
                    let mut load: Vec<usize> = (1..=n)
                        .map(|i| {
                            members
                                .iter()
                                .filter(|r| r.partition_number == Some(i))
                                .count()
                        })
                        .collect();
                    for slot in partitions.iter_mut() {
                        let (i, _) = load
                            .iter()
                            .enumerate()
                            .min_by_key(|(_, l)| **l)
                            .unwrap_or((0, &0));
                        load[i] += 1;
                        *slot = Some(i as i32 + 1);
                    }
                }
            }
        }
    }
    Ok(Some(Placed {
        group: (g.id, g.name),
        partitions,
    }))
}

/// ModifyInstancePlacement, before any lookup: something to change; a group by name or id,
/// not both; no dedicated host (Kumo has none: `host` tenancy, affinity, host ids answer
/// `Unsupported`). The instance, its state (stopped) and the group's rules follow.
impl Checks for ModifyInstancePlacementRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        let given = self.group_name.is_some()
            || self.group_id.is_some()
            || self.partition_number.is_some()
            || self.tenancy.is_some()
            || self.affinity.is_some()
            || self.host_id.is_some()
            || self.host_resource_group_arn.is_some();
        if !given {
            return Err(Ec2Error::missing_parameter(
                "affinity, hostId, tenancy or groupName",
            ));
        }
        if self.group_name.is_some() && self.group_id.is_some() {
            return Err(Ec2Error::new(
                "InvalidParameterCombination",
                "The parameters groupName and groupId cannot be used together.",
            ));
        }
        Ok(())
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        let host = self.tenancy.as_deref() == Some("host")
            || self.affinity.is_some()
            || self.host_id.is_some()
            || self.host_resource_group_arn.is_some();
        if host {
            return Err(Ec2Error::new(
                "Unsupported",
                "Kumo has no Dedicated Hosts: host tenancy, affinity and host ids are not supported.",
            ));
        }
        Ok(())
    }
}

/// Moves a stopped instance into a placement group (by AWS's rules for one more instance in
/// its zone), to another partition, or out of its group (`GroupName=""`); changes its
/// tenancy between `default` and `dedicated`.
pub fn modify_instance(
    k: &Kumo,
    ctx: &RequestContext,
    input: ModifyInstancePlacementRequest,
) -> Result<ModifyInstancePlacementResult, Ec2Error> {
    let s = scope(ctx);
    k.store
        .write(!ctx.dry_run, |tx| {
            let mut r = crate::repo::instance::load(k, tx, s, std::slice::from_ref(&input.instance_id))?
                .remove(0);
            if r.state() != State::Stopped {
                return Err(crate::repo::instance::not_stopped(&r.id));
            }
            let info = crate::instance_types::find(&r.instance_type)
                .ok_or_else(|| Fail(Ec2Error::internal()))?;
            let leave = input.group_name.as_deref() == Some("");
            let target = Placement {
                group_name: input.group_name.clone().filter(|n| !n.is_empty()),
                group_id: input.group_id.clone(),
                partition_number: input.partition_number,
                ..Placement::default()
            };
            if leave {
                if let Some((old, _)) = r.placement_group.take() {
                    left(tx, s, &old, &r.id)?;
                }
                r.partition_number = None;
            } else if target.group_name.is_some() || target.group_id.is_some() {
                // Its own place is free while it moves: it does not count against the group.
                if let Some((old, _)) = r.placement_group.take() {
                    left(tx, s, &old, &r.id)?;
                }
                tx.update(s, &r)?;
                let placed = for_launch(k, tx, s, Some(&target), info, &r.zone, 1)?
                    .ok_or_else(|| Fail(Ec2Error::internal()))?;
                joined(k, tx, s, &placed.group.0, std::slice::from_ref(&r.id))?;
                r.placement_group = Some(placed.group);
                r.partition_number = placed.partitions[0];
            } else if let Some(n) = input.partition_number {
                // Another partition of its own group.
                let Some((id, _)) = r.placement_group.clone() else {
                    return Err(Fail(Ec2Error::new(
                        "InvalidParameterCombination",
                        "The parameter partitionNumber is valid only with a partition placement group.",
                    )));
                };
                let target = Placement {
                    group_id: Some(id),
                    partition_number: Some(n),
                    ..Placement::default()
                };
                let placed = for_launch(k, tx, s, Some(&target), info, &r.zone, 1)?
                    .ok_or_else(|| Fail(Ec2Error::internal()))?;
                r.partition_number = placed.partitions[0];
            }
            if let Some(t) = &input.tenancy {
                crate::instance_types::check_tenancy(&r.instance_type, t)?;
                r.tenancy = t.clone();
            }
            if ctx.dry_run {
                return Err(Fail(Ec2Error::dry_run()));
            }
            tx.update(s, &r)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)?;
    Ok(ModifyInstancePlacementResult {
        r#return: Some(true),
    })
}
