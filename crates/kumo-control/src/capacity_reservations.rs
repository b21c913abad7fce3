//! On-Demand Capacity Reservations: CreateCapacityReservation, DescribeCapacityReservations,
//! ModifyCapacityReservation, CancelCapacityReservation,
//! ModifyInstanceCapacityReservationAttributes, and where a launch's instances take their
//! capacity from ([`place`]).
//!
//! A reservation really holds capacity. A zone has `--zone-capacity` instance slots per
//! account; every instance that is not terminated takes one, and every active reservation in
//! the zone sets aside the slots its instances do not fill. A launch that uses no reservation
//! gets only what is left beside them (`InsufficientInstanceCapacity` when only reserved
//! capacity remains); a launch that targets a reservation, or matches an `open` one, fills
//! its slots. A slot is filled by an instance that names the reservation and is pending or
//! running: a stopped or terminated one gives it back, a started one takes it again. All of it
//! is counted inside the launch's transaction, so parallel launches never over-commit.

use crate::core::checks::Checks;
use crate::core::describe::{self, Push};
use crate::core::error::Fail;
use crate::core::filters;
use crate::core::tagged::Tagged;
use crate::records::capacity_reservation::CapacityReservationRecord;
use crate::records::instance::InstanceRecord;
use crate::tags;
use crate::{scope, Kumo};
use kumo_ec2_wire::filters::DescribeCapacityReservations as F;
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::FilterName;
use kumo_ec2_wire::{DateTime, Ec2Error, RequestContext};
use kumo_model::filter::Filterable;
use kumo_model::lifecycle::State;
use kumo_store::{Query, Read, Scope, Tx};
use std::collections::HashMap;

fn not_found(id: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidCapacityReservationId.NotFound",
        format!("The capacity reservation ID '{id}' does not exist"),
    )
}

/// The zone a reservation names, by name or by id.
fn zone_of(
    ctx: &RequestContext,
    name: Option<&str>,
    id: Option<&str>,
) -> Result<&'static kumo_model::regions::Zone, Ec2Error> {
    let zones = kumo_model::regions::get(&ctx.region)
        .map(|r| r.zones.as_slice())
        .unwrap_or(&[]);
    let found = match (name.filter(|z| !z.is_empty()), id.filter(|z| !z.is_empty())) {
        (Some(z), _) => zones.iter().find(|x| x.name == z).ok_or(z),
        (None, Some(z)) => zones.iter().find(|x| x.id == z).ok_or(z),
        (None, None) => return Err(Ec2Error::missing_parameter("AvailabilityZone")),
    };
    found.map_err(|z| Ec2Error::invalid_value(format!("Invalid availability zone: [{z}]")))
}

/// How many slots of each reservation its pending and running instances fill, read by the
/// ids each keeps, not by scanning the region.
fn filled<V: Read>(
    k: &Kumo,
    v: &V,
    s: Scope,
    reservations: &[&CapacityReservationRecord],
) -> Result<HashMap<String, usize>, Fail> {
    let mut out: HashMap<String, usize> = HashMap::new();
    for r in reservations {
        out.insert(r.id.clone(), holders(k, v, s, r)?.len());
    }
    Ok(out)
}

/// The instances that fill a reservation's slots now.
fn holders<V: Read>(
    k: &Kumo,
    v: &V,
    s: Scope,
    r: &CapacityReservationRecord,
) -> Result<Vec<InstanceRecord>, Fail> {
    Ok(crate::repo::instance::existing(k, v, s, &r.instances)?
        .into_iter()
        .filter(|i| i.capacity_reservation_id.as_deref() == Some(r.id.as_str()))
        .filter(|i| matches!(i.state(), State::Pending | State::Running))
        .collect())
}

/// Instances `ids` took slots of reservation `id`: its list keeps the instances that still
/// name it (stopped ones too, which take a slot again when they start) and gains them.
pub fn took(k: &Kumo, tx: &Tx, s: Scope, id: &str, ids: &[String]) -> Result<(), Fail> {
    let Some(mut r) = tx.get::<CapacityReservationRecord>(s, id)? else {
        return Ok(());
    };
    let mut keep: Vec<String> = crate::repo::instance::existing(k, tx, s, &r.instances)?
        .into_iter()
        .filter(|i| i.capacity_reservation_id.as_deref() == Some(id))
        .filter(|i| i.state() != State::Terminated)
        .map(|i| i.id)
        .collect();
    keep.retain(|x| !ids.contains(x));
    keep.extend(ids.iter().cloned());
    r.instances = keep;
    tx.update(s, &r)?;
    Ok(())
}

fn available(r: &CapacityReservationRecord, filled: &HashMap<String, usize>) -> usize {
    (r.total.max(0) as usize).saturating_sub(filled.get(&r.id).copied().unwrap_or(0))
}

/// A zone's active reservations, the slots their instances fill, and the zone's slots that
/// no reservation sets aside and no instance takes.
struct ZoneSlots {
    active: Vec<CapacityReservationRecord>,
    filled: HashMap<String, usize>,
    free: usize,
}

fn zone_slots<V: Read>(k: &Kumo, v: &V, s: Scope, zone: &str, now: i64) -> Result<ZoneSlots, Fail> {
    let active: Vec<CapacityReservationRecord> = v
        .list::<CapacityReservationRecord>(s, &Query::default())?
        .into_iter()
        .filter(|r| r.zone == zone && r.state(now) == "active")
        .collect();
    let filled = filled(k, v, s, &active.iter().collect::<Vec<_>>())?;
    let used = v.count_in_zone(s, "instance", zone, &["terminated", "shutting-down"])? as usize;
    let reserved: usize = active.iter().map(|r| available(r, &filled)).sum();
    let free = k
        .options
        .zone_capacity
        .saturating_sub(used)
        .saturating_sub(reserved);
    Ok(ZoneSlots {
        active,
        filled,
        free,
    })
}

fn insufficient(instance_type: &str, zone: &str) -> Fail {
    Fail(Ec2Error::new(
        "InsufficientInstanceCapacity",
        format!(
            "We currently do not have sufficient {instance_type} capacity in the Availability Zone you requested ({zone}). Our system will be working on provisioning additional capacity. You can currently get {instance_type} capacity by not specifying an Availability Zone in your request or choosing another Availability Zone."
        ),
    ))
}

/// What a launch asks of reservations, and what its instances are.
pub struct Ask<'a> {
    pub spec: Option<&'a CapacityReservationSpecification>,
    pub instance_type: &'a str,
    pub platform: &'a str,
    pub tenancy: &'a str,
    pub zone: &'a str,
    pub min: usize,
    pub max: usize,
}

/// Where each instance of a launch takes its slot: a reservation's id, or none (the zone's
/// unreserved capacity). As many instances as fit up to the launch's maximum, and at least
/// its minimum, or AWS's refusal.
pub fn place(k: &Kumo, tx: &Tx, s: Scope, a: &Ask) -> Result<Vec<Option<String>>, Fail> {
    let now = k.now_ms();
    let pref = a
        .spec
        .and_then(|c| c.capacity_reservation_preference.as_deref())
        .unwrap_or("open");
    let target = a
        .spec
        .and_then(|c| c.capacity_reservation_target.as_ref())
        .and_then(|t| t.capacity_reservation_id.clone());
    let ZoneSlots {
        active,
        filled,
        free,
    } = zone_slots(k, tx, s, a.zone, now)?;
    if let Some(id) = target {
        let r: CapacityReservationRecord = tx.get(s, &id)?.ok_or_else(|| Fail(not_found(&id)))?;
        let state = r.state(now);
        if state != "active" {
            return Err(Fail(Ec2Error::new(
                "InvalidCapacityReservationId.NotFound",
                format!("The capacity reservation '{id}' is {state} and cannot be used."),
            )));
        }
        // An instance that does not match the reservation finds no compatible capacity in
        // it, which AWS answers as it answers a full one.
        let matches = r.instance_type == a.instance_type
            && r.zone == a.zone
            && r.platform == a.platform
            && r.tenancy == a.tenancy;
        let n = if matches {
            a.max.min(available(&r, &filled))
        } else {
            0
        };
        if n < a.min {
            return Err(Fail(Ec2Error::new(
                "ReservationCapacityExceeded",
                "The requested reservation does not have sufficient compatible and available capacity for this request.",
            )));
        }
        return Ok(vec![Some(id); n]);
    }
    let mut out: Vec<Option<String>> = Vec::new();
    if pref != "none" {
        // Open reservations that match the instances, oldest first.
        let mut open: Vec<&CapacityReservationRecord> = active
            .iter()
            .filter(|r| {
                r.match_criteria == "open"
                    && r.instance_type == a.instance_type
                    && r.platform == a.platform
                    && r.tenancy == a.tenancy
            })
            .collect();
        open.sort_by_key(|r| (r.created_ms, r.id.clone()));
        for r in open {
            let take = available(r, &filled).min(a.max - out.len());
            out.extend(std::iter::repeat_n(Some(r.id.clone()), take));
        }
    }
    if pref == "capacity-reservations-only" {
        if out.len() < a.min {
            return Err(insufficient(a.instance_type, a.zone));
        }
        return Ok(out);
    }
    let rest = (a.max - out.len()).min(free);
    out.extend(std::iter::repeat_n(None, rest));
    if out.len() < a.min {
        return Err(insufficient(a.instance_type, a.zone));
    }
    Ok(out)
}

/// A stopped instance that held a reservation's slot starting: it takes the slot again if
/// one is free. If none is, a reservation it targeted refuses the start, as AWS does
/// (`ReservationCapacityExceeded`); an open one it merely matched lets it run On-Demand.
pub fn on_start(k: &Kumo, tx: &Tx, s: Scope, r: &mut InstanceRecord) -> Result<(), Fail> {
    let Some(id) = r.capacity_reservation_id.clone() else {
        return Ok(());
    };
    let now = k.now_ms();
    let full = || {
        Fail(Ec2Error::new(
            "ReservationCapacityExceeded",
            "The requested reservation does not have sufficient compatible and available capacity for this request.",
        ))
    };
    let c = match tx.get::<CapacityReservationRecord>(s, &id)? {
        Some(c) if c.state(now) == "active" => c,
        // A stopped instance that targets a reservation which has ended can no longer start
        // (AWS's documentation); one that matched an open one runs On-Demand.
        _ if r.capacity_reservation_targeted => return Err(full()),
        _ => {
            r.capacity_reservation_id = None;
            return Ok(());
        }
    };
    let taken = holders(k, tx, s, &c)?
        .iter()
        .filter(|h| h.id != r.id)
        .count();
    if taken < c.total.max(0) as usize {
        return Ok(());
    }
    if r.capacity_reservation_targeted || c.match_criteria == "targeted" {
        return Err(full());
    }
    r.capacity_reservation_id = None;
    Ok(())
}

/// CreateCapacityReservation, before any lookup: a zone; then the count, the type, the end
/// date against its type, the tags and what Kumo does not serve (future-dated, Outposts,
/// placement groups). The zone, the type's offering there and the zone's free capacity follow.
impl Checks for CreateCapacityReservationRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        let blank = |z: &Option<String>| z.as_deref().is_none_or(str::is_empty);
        if blank(&self.availability_zone) && blank(&self.availability_zone_id) {
            return Err(Ec2Error::missing_parameter("AvailabilityZone"));
        }
        if self.end_date_type.as_deref() == Some("limited") && self.end_date.is_none() {
            return Err(Ec2Error::missing_parameter("EndDate"));
        }
        Ok(())
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        check_count(self.instance_count)?;
        if crate::instance_types::find(&self.instance_type).is_none() {
            return Err(Ec2Error::invalid_value(format!(
                "Invalid value '{}' for InstanceType.",
                self.instance_type
            )));
        }
        if self.end_date.is_some() && self.end_date_type.as_deref() != Some("limited") {
            return Err(Ec2Error::new(
                "InvalidParameterCombination",
                "EndDate can be specified only when EndDateType is limited.",
            ));
        }
        crate::core::error::refuse_settings(
            "CreateCapacityReservation",
            &[
                (
                    "StartDate (future-dated reservations)",
                    self.start_date.is_some(),
                ),
                ("CommitmentDuration", self.commitment_duration.is_some()),
                ("OutpostArn", self.outpost_arn.is_some()),
                ("PlacementGroupArn", self.placement_group_arn.is_some()),
            ],
        )?;
        tags::from_specifications(self.tag_specifications.clone(), "capacity-reservation").map(drop)
    }
}

/// A reservation holds 1 to 1000 instances.
fn check_count(n: i32) -> Result<(), Ec2Error> {
    if !(1..=1000).contains(&n) {
        return Err(Ec2Error::invalid_value(format!(
            "{n} is an invalid value for InstanceCount. InstanceCount must be between 1 and 1000."
        )));
    }
    Ok(())
}

/// RunInstances' `CapacityReservationSpecification`, before any lookup: a target goes only
/// with the `capacity-reservations-only` preference or none; no resource groups.
pub fn check_spec(spec: Option<&CapacityReservationSpecification>) -> Result<(), Ec2Error> {
    let Some(c) = spec else { return Ok(()) };
    let Some(t) = &c.capacity_reservation_target else {
        return Ok(());
    };
    if t.capacity_reservation_resource_group_arn.is_some() {
        return Err(Ec2Error::new(
            "Unsupported",
            "Capacity reservation resource groups are not supported by Kumo.",
        ));
    }
    if c.capacity_reservation_preference
        .as_deref()
        .is_some_and(|p| p != "capacity-reservations-only")
    {
        return Err(Ec2Error::new(
            "InvalidParameterCombination",
            "The request can include either a CapacityReservationId or a CapacityReservationPreference but not both.",
        ));
    }
    Ok(())
}

fn arn(ctx: &RequestContext, id: &str) -> String {
    format!(
        "arn:aws:ec2:{}:{}:capacity-reservation/{id}",
        ctx.region, ctx.account_id
    )
}

fn wire(
    ctx: &RequestContext,
    r: &CapacityReservationRecord,
    tags: &[(String, String)],
    available: usize,
    now: i64,
) -> CapacityReservation {
    CapacityReservation {
        capacity_reservation_id: Some(r.id.clone()),
        owner_id: Some(ctx.account_id.clone()),
        capacity_reservation_arn: Some(arn(ctx, &r.id)),
        availability_zone: Some(r.zone.clone()),
        availability_zone_id: Some(r.zone_id.clone()),
        instance_type: Some(r.instance_type.clone()),
        instance_platform: Some(r.platform.clone()),
        tenancy: Some(r.tenancy.clone()),
        total_instance_count: Some(r.total),
        available_instance_count: Some(available as i32),
        ebs_optimized: Some(r.ebs_optimized),
        ephemeral_storage: Some(r.ephemeral_storage),
        state: Some(r.state(now).to_string()),
        start_date: Some(DateTime(r.created_ms)),
        end_date: r.end_ms.map(DateTime),
        end_date_type: Some(r.end_date_type.clone()),
        instance_match_criteria: Some(r.match_criteria.clone()),
        create_date: Some(DateTime(r.created_ms)),
        reservation_type: Some("default".into()),
        delivery_preference: Some("fixed".into()),
        capacity_allocations: Some(Vec::new()),
        tags: Some(tags::wire(tags)),
        ..CapacityReservation::default()
    }
}

pub fn create(
    k: &Kumo,
    ctx: &RequestContext,
    input: CreateCapacityReservationRequest,
) -> Result<CreateCapacityReservationResult, Ec2Error> {
    let zone = zone_of(
        ctx,
        input.availability_zone.as_deref(),
        input.availability_zone_id.as_deref(),
    )?;
    let now = k.now_ms();
    let end_ms = input.end_date.map(|d| d.0);
    if end_ms.is_some_and(|e| e <= now) {
        return Err(Ec2Error::invalid_value(
            "The end date of a capacity reservation must be in the future.",
        ));
    }
    if let Some(offers) = kumo_model::catalog::offerings(&ctx.region) {
        let here = offers
            .iter()
            .find(|(z, _)| *z == zone.name)
            .is_some_and(|(_, t)| t.contains(&input.instance_type.as_str()));
        if !here {
            return Err(Ec2Error::new(
                "Unsupported",
                format!(
                    "Your requested instance type ({}) is not supported in your requested Availability Zone ({}).",
                    input.instance_type, zone.name
                ),
            ));
        }
    }
    if let Some(t) = &input.tenancy {
        crate::instance_types::check_tenancy(&input.instance_type, t)?;
    }
    let tag_list =
        tags::from_specifications(input.tag_specifications.clone(), "capacity-reservation")?;
    let r = CapacityReservationRecord {
        id: crate::core::ids::new_id("cr"),
        instance_type: input.instance_type.clone(),
        platform: input.instance_platform.clone(),
        zone: zone.name.to_string(),
        zone_id: zone.id.to_string(),
        tenancy: input.tenancy.clone().unwrap_or_else(|| "default".into()),
        total: input.instance_count,
        ebs_optimized: input.ebs_optimized.unwrap_or(false),
        ephemeral_storage: input.ephemeral_storage.unwrap_or(false),
        match_criteria: input
            .instance_match_criteria
            .clone()
            .unwrap_or_else(|| "open".into()),
        end_date_type: input
            .end_date_type
            .clone()
            .unwrap_or_else(|| "unlimited".into()),
        end_ms,
        created_ms: now,
        cancelled_ms: None,
        instances: Vec::new(),
    };
    let s = scope(ctx);
    k.store
        .write(!ctx.dry_run, |tx| {
            // The reservation takes its slots from the zone's unreserved capacity.
            if zone_slots(k, tx, s, &r.zone, now)?.free < r.total as usize {
                return Err(insufficient(&r.instance_type, &r.zone));
            }
            if ctx.dry_run {
                return Err(Fail(Ec2Error::dry_run()));
            }
            tx.insert(s, &r)?;
            tags::put_all(tx, s, &r.id, "capacity-reservation", &tag_list)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)?;
    Ok(CreateCapacityReservationResult {
        capacity_reservation: Some(wire(
            ctx,
            &r,
            &tags::as_stored(&tag_list),
            r.total as usize,
            now,
        )),
    })
}

struct View<'a> {
    t: &'a Tagged<CapacityReservationRecord>,
    owner: &'a str,
    now: i64,
}

impl Filterable<F> for View<'_> {
    fn field(&self, f: F, out: &mut dyn FnMut(&str)) {
        let _name = f.name();
        let r = &self.t.item;
        match f {
            F::AvailabilityZone => out(&r.zone),
            F::EndDate => {
                if let Some(e) = r.end_ms {
                    out(&DateTime(e).to_iso8601())
                }
            }
            F::EndDateType => out(&r.end_date_type),
            F::InstanceMatchCriteria => out(&r.match_criteria),
            F::InstancePlatform => out(&r.platform),
            F::InstanceType => out(&r.instance_type),
            F::OwnerId => out(self.owner),
            F::StartDate => out(&DateTime(r.created_ms).to_iso8601()),
            F::State => out(r.state(self.now)),
            F::Tenancy => out(&r.tenancy),
            F::PlacementGroupArn | F::OutpostArn => {}
        }
    }
    fn tags(&self) -> &[(String, String)] {
        &self.t.tags
    }
}

/// DescribeCapacityReservations, before any lookup: the page size (1 to 1000).
impl Checks for DescribeCapacityReservationsRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        crate::core::paging::max_results(self.max_results, 1, 1000).map(drop)
    }
}

pub fn describe(
    k: &Kumo,
    ctx: &RequestContext,
    input: DescribeCapacityReservationsRequest,
) -> Result<DescribeCapacityReservationsResult, Ec2Error> {
    let fs = filters::compile::<F>(input.filters, &[])?;
    let ids = input.capacity_reservation_ids.unwrap_or_default();
    let s = scope(ctx);
    let now = k.now_ms();
    let req = describe::Request {
        op: "DescribeCapacityReservations",
        ids: &ids,
        not_found: &not_found,
        push: Push {
            tag: fs.exact_tag(),
            ..Push::default()
        },
        max_results: input.max_results,
        bounds: (1, 1000),
        next_token: input.next_token.as_deref(),
    };
    let (page, next, filled) = k
        .store
        .read(|v| {
            let (page, next) =
                describe::run(v, s, &req, |t: &Tagged<CapacityReservationRecord>| {
                    fs.matches(&View {
                        t,
                        owner: &ctx.account_id,
                        now,
                    })
                })?;
            let shown: Vec<&CapacityReservationRecord> = page.iter().map(|t| &t.item).collect();
            let filled = filled(k, v, s, &shown)?;
            Ok::<_, Fail>((page, next, filled))
        })
        .map_err(|f| f.0)?;
    Ok(DescribeCapacityReservationsResult {
        capacity_reservations: Some(
            page.iter()
                .map(|t| wire(ctx, &t.item, &t.tags, available(&t.item, &filled), now))
                .collect(),
        ),
        next_token: next,
    })
}

/// ModifyCapacityReservation, before any lookup: something to change, a count of at least
/// one, an end date only with `limited`.
impl Checks for ModifyCapacityReservationRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        if self.instance_count.is_none()
            && self.end_date.is_none()
            && self.end_date_type.is_none()
            && self.instance_match_criteria.is_none()
            && self.accept.is_none()
        {
            return Err(Ec2Error::missing_parameter(
                "InstanceCount, EndDate, EndDateType or InstanceMatchCriteria",
            ));
        }
        if self.end_date_type.as_deref() == Some("limited") && self.end_date.is_none() {
            return Err(Ec2Error::missing_parameter("EndDate"));
        }
        Ok(())
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        if let Some(n) = self.instance_count {
            check_count(n)?;
        }
        if self.end_date.is_some() && self.end_date_type.as_deref() == Some("unlimited") {
            return Err(Ec2Error::new(
                "InvalidParameterCombination",
                "EndDate can be specified only when EndDateType is limited.",
            ));
        }
        Ok(())
    }
}

/// A reservation that exists and is active.
fn get_active(tx: &Tx, s: Scope, id: &str, now: i64) -> Result<CapacityReservationRecord, Fail> {
    let r: CapacityReservationRecord = tx.get(s, id)?.ok_or_else(|| Fail(not_found(id)))?;
    if r.state(now) != "active" {
        return Err(not_active(&r, now));
    }
    Ok(r)
}

fn not_active(r: &CapacityReservationRecord, now: i64) -> Fail {
    Fail(Ec2Error::new(
        "IncorrectState",
        format!(
            "The capacity reservation '{}' is {} and cannot be modified.",
            r.id,
            r.state(now)
        ),
    ))
}

pub fn modify(
    k: &Kumo,
    ctx: &RequestContext,
    input: ModifyCapacityReservationRequest,
) -> Result<ModifyCapacityReservationResult, Ec2Error> {
    let s = scope(ctx);
    let now = k.now_ms();
    if input.end_date.is_some_and(|e| e.0 <= now) {
        return Err(Ec2Error::invalid_value(
            "The end date of a capacity reservation must be in the future.",
        ));
    }
    k.store
        .write(!ctx.dry_run, |tx| {
            let mut r = get_active(tx, s, &input.capacity_reservation_id, now)?;
            if let Some(n) = input.instance_count {
                // More slots come from the zone's unreserved capacity.
                if n > r.total && zone_slots(k, tx, s, &r.zone, now)?.free < (n - r.total) as usize
                {
                    return Err(insufficient(&r.instance_type, &r.zone));
                }
                r.total = n;
            }
            match input.end_date_type.as_deref() {
                Some("unlimited") => {
                    r.end_date_type = "unlimited".into();
                    r.end_ms = None;
                }
                Some("limited") => {
                    r.end_date_type = "limited".into();
                    r.end_ms = input.end_date.map(|d| d.0);
                }
                _ => {
                    if let Some(e) = input.end_date {
                        r.end_date_type = "limited".into();
                        r.end_ms = Some(e.0);
                    }
                }
            }
            if let Some(m) = &input.instance_match_criteria {
                r.match_criteria = m.clone();
            }
            if ctx.dry_run {
                return Err(Fail(Ec2Error::dry_run()));
            }
            tx.update(s, &r)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)?;
    Ok(ModifyCapacityReservationResult {
        r#return: Some(true),
    })
}

/// CancelCapacityReservation: the slots go back to the zone; instances that filled them run on
/// as On-Demand instances.
pub fn cancel(
    k: &Kumo,
    ctx: &RequestContext,
    input: CancelCapacityReservationRequest,
) -> Result<CancelCapacityReservationResult, Ec2Error> {
    let s = scope(ctx);
    let now = k.now_ms();
    k.store
        .write(!ctx.dry_run, |tx| {
            let mut r = get_active(tx, s, &input.capacity_reservation_id, now)?;
            if ctx.dry_run {
                return Err(Fail(Ec2Error::dry_run()));
            }
            r.cancelled_ms = Some(now);
            tx.update(s, &r)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)?;
    Ok(CancelCapacityReservationResult {
        r#return: Some(true),
    })
}

/// ModifyInstanceCapacityReservationAttributes, before any lookup: a preference or a target.
impl Checks for ModifyInstanceCapacityReservationAttributesRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        let c = &self.capacity_reservation_specification;
        if c.capacity_reservation_preference.is_none() && c.capacity_reservation_target.is_none() {
            return Err(Ec2Error::missing_parameter(
                "CapacityReservationSpecification",
            ));
        }
        Ok(())
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        if self
            .capacity_reservation_specification
            .capacity_reservation_target
            .as_ref()
            .is_some_and(|t| t.capacity_reservation_resource_group_arn.is_some())
        {
            return Err(Ec2Error::new(
                "Unsupported",
                "Capacity reservation resource groups are not supported by Kumo.",
            ));
        }
        Ok(())
    }
}

/// A stopped instance's reservation settings: a preference (`open` or `none`), or a
/// reservation it targets (which must match it), used from its next start.
pub fn modify_instance(
    k: &Kumo,
    ctx: &RequestContext,
    input: ModifyInstanceCapacityReservationAttributesRequest,
) -> Result<ModifyInstanceCapacityReservationAttributesResult, Ec2Error> {
    let s = scope(ctx);
    let now = k.now_ms();
    let spec = input.capacity_reservation_specification;
    k.store
        .write(!ctx.dry_run, |tx| {
            let mut r =
                crate::repo::instance::load(k, tx, s, std::slice::from_ref(&input.instance_id))?
                    .remove(0);
            if r.state() != State::Stopped {
                return Err(crate::repo::instance::not_stopped(&r.id));
            }
            let target = spec
                .capacity_reservation_target
                .as_ref()
                .and_then(|t| t.capacity_reservation_id.clone());
            if let Some(id) = &target {
                let c = get_active(tx, s, id, now)?;
                let platform = if r.windows { "Windows" } else { "Linux/UNIX" };
                if c.instance_type != r.instance_type
                    || c.zone != r.zone
                    || c.platform != platform
                    || c.tenancy != r.tenancy
                {
                    return Err(Fail(Ec2Error::new(
                        "InvalidParameterCombination",
                        format!("The instance's attributes (type, Availability Zone, platform, tenancy) do not match those of capacity reservation {id}."),
                    )));
                }
                r.capacity_reservation_id = Some(id.clone());
                r.capacity_reservation_targeted = true;
                r.capacity_reservation_preference = "open".into();
                took(k, tx, s, id, std::slice::from_ref(&r.id))?;
            } else if let Some(p) = &spec.capacity_reservation_preference {
                r.capacity_reservation_preference = p.clone();
                r.capacity_reservation_targeted = false;
                if p == "none" {
                    r.capacity_reservation_id = None;
                }
            }
            if ctx.dry_run {
                return Err(Fail(Ec2Error::dry_run()));
            }
            tx.update(s, &r)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)?;
    Ok(ModifyInstanceCapacityReservationAttributesResult {
        r#return: Some(true),
    })
}
