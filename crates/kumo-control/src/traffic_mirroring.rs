//! Traffic mirroring: targets (an interface), filters and their rules, sessions (a source
//! interface, a target, a filter, a session number, a VXLAN id), with their Describe, Modify
//! and Delete calls.
//!
//! AWS's rules (the VPC Traffic Mirroring guide: filters, sessions, quotas, packet format):
//! - a filter mirrors nothing until a rule accepts; rules go lowest number first, the first
//!   match deciding; a rule numbers 1 to 32766, once per direction; port ranges are for TCP
//!   and UDP only; 10 rules per filter;
//! - a session numbers 1 to 32766: a source's sessions are tried lowest first, and the first
//!   whose filter accepts a packet mirrors it; 3 sessions per source, 10 sources per target;
//!   the VXLAN id is chosen at random, unique in the account, when not given;
//! - an interface is a target or a source, never both; the target is in the source's VPC or
//!   in one peered with it; a source is an instance's interface, of an instance type on the
//!   Nitro system (a Xen type's interface is `NetworkInterfaceNotSupported`);
//! - a filter or a target that a session uses is not deleted.
//!
//! Real (`kumo_compute::firewall::MirrorSource`): the source's packets that its filter accepts
//! are copied into a VXLAN tunnel (UDP 4789, the session's id) to the target's primary
//! address, with the source's primary address as the outer source, after the security groups
//! and ACLs (what they drop is not mirrored), and the target's groups must admit UDP 4789.
//! `PacketLength` is kept and shown but not applied: nftables cannot truncate a copy (the
//! copies are whole); `amazon-dns` is kept but the VPC resolver's traffic is not mirrored.

use crate::core::checks::{self, Checks};
use crate::core::describe::{self, Push};
use crate::core::error::Fail;
use crate::core::filters;
use crate::core::idempotency;
use crate::core::ids::new_id;
use crate::core::paging;
use crate::firewall_sync::Reach;
use crate::records::instance::InstanceRecord;
use crate::records::net::{
    EniRecord, MirrorFilterRecord, MirrorFilterRule, MirrorRuleRef, MirrorSessionRecord,
    MirrorTargetRecord, VpcPeeringRecord,
};
use crate::tags::{self, Tagged};
use crate::{scope, Kumo};
use kumo_ec2_wire::filters::{
    DescribeTrafficMirrorFilterRules as RuleF, DescribeTrafficMirrorFilters as FilterF,
    DescribeTrafficMirrorSessions as SessionF, DescribeTrafficMirrorTargets as TargetF,
};
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_model::cidr::Cidr;
use kumo_model::filter::Filterable;
use kumo_store::{Query, Read, Scope, Tx};

const RULES_PER_FILTER: usize = 10;
const SESSIONS_PER_SOURCE: usize = 3;
const SOURCES_PER_TARGET: usize = 10;

fn not_found(kind: &str, code: &'static str, id: &str) -> Ec2Error {
    Ec2Error::new(code, format!("The {kind} ID '{id}' does not exist"))
}

fn target_missing(id: &str) -> Ec2Error {
    not_found(
        "trafficMirrorTarget",
        "InvalidTrafficMirrorTargetId.NotFound",
        id,
    )
}
fn filter_missing(id: &str) -> Ec2Error {
    not_found(
        "trafficMirrorFilter",
        "InvalidTrafficMirrorFilterId.NotFound",
        id,
    )
}
fn rule_missing(id: &str) -> Ec2Error {
    not_found(
        "trafficMirrorFilterRule",
        "InvalidTrafficMirrorFilterRuleId.NotFound",
        id,
    )
}
fn session_missing(id: &str) -> Ec2Error {
    not_found(
        "trafficMirrorSession",
        "InvalidTrafficMirrorSessionId.NotFound",
        id,
    )
}

fn get_target<V: Read>(v: &V, s: Scope, id: &str) -> Result<MirrorTargetRecord, Fail> {
    v.get(s, id)?.ok_or_else(|| Fail(target_missing(id)))
}
fn get_filter<V: Read>(v: &V, s: Scope, id: &str) -> Result<MirrorFilterRecord, Fail> {
    v.get(s, id)?.ok_or_else(|| Fail(filter_missing(id)))
}
fn get_session<V: Read>(v: &V, s: Scope, id: &str) -> Result<MirrorSessionRecord, Fail> {
    v.get(s, id)?.ok_or_else(|| Fail(session_missing(id)))
}

fn wire_target(
    ctx: &RequestContext,
    t: &MirrorTargetRecord,
    tg: &[(String, String)],
) -> TrafficMirrorTarget {
    TrafficMirrorTarget {
        traffic_mirror_target_id: Some(t.id.clone()),
        network_interface_id: Some(t.eni_id.clone()),
        r#type: Some("network-interface".into()),
        description: t.description.clone(),
        owner_id: Some(ctx.account_id.clone()),
        tags: Some(tags::wire(tg)),
        ..TrafficMirrorTarget::default()
    }
}

fn wire_rule(
    filter: &str,
    r: &MirrorFilterRule,
    tg: &[(String, String)],
) -> TrafficMirrorFilterRule {
    let range = |p: Option<(i32, i32)>| {
        p.map(|(a, b)| TrafficMirrorPortRange {
            from_port: Some(a),
            to_port: Some(b),
        })
    };
    TrafficMirrorFilterRule {
        traffic_mirror_filter_rule_id: Some(r.id.clone()),
        traffic_mirror_filter_id: Some(filter.to_string()),
        traffic_direction: Some(r.direction.clone()),
        rule_number: Some(r.rule_number),
        rule_action: Some(r.action.clone()),
        protocol: r.protocol,
        destination_port_range: range(r.destination_ports),
        source_port_range: range(r.source_ports),
        destination_cidr_block: Some(r.destination_cidr.clone()),
        source_cidr_block: Some(r.source_cidr.clone()),
        description: r.description.clone(),
        tags: Some(tags::wire(tg)),
    }
}

/// A filter as the wire shows it; `rule_tags` gives each rule's tags.
fn wire_filter(
    f: &MirrorFilterRecord,
    tg: &[(String, String)],
    rule_tags: &dyn Fn(&str) -> Vec<(String, String)>,
) -> TrafficMirrorFilter {
    let rules = |dir: &str| {
        let mut rs: Vec<&MirrorFilterRule> =
            f.rules.iter().filter(|r| r.direction == dir).collect();
        rs.sort_by_key(|r| r.rule_number);
        rs.into_iter()
            .map(|r| wire_rule(&f.id, r, &rule_tags(&r.id)))
            .collect()
    };
    TrafficMirrorFilter {
        traffic_mirror_filter_id: Some(f.id.clone()),
        ingress_filter_rules: Some(rules("ingress")),
        egress_filter_rules: Some(rules("egress")),
        network_services: Some(f.network_services.clone()),
        description: f.description.clone(),
        tags: Some(tags::wire(tg)),
    }
}

fn wire_session(
    ctx: &RequestContext,
    s: &MirrorSessionRecord,
    tg: &[(String, String)],
) -> TrafficMirrorSession {
    TrafficMirrorSession {
        traffic_mirror_session_id: Some(s.id.clone()),
        traffic_mirror_target_id: Some(s.target_id.clone()),
        traffic_mirror_filter_id: Some(s.filter_id.clone()),
        network_interface_id: Some(s.eni_id.clone()),
        owner_id: Some(ctx.account_id.clone()),
        packet_length: s.packet_length,
        session_number: Some(s.session_number),
        virtual_network_id: Some(s.vni),
        description: s.description.clone(),
        tags: Some(tags::wire(tg)),
    }
}

// ---- Targets -------------------------------------------------------------------------------

impl Checks for CreateTrafficMirrorTargetRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        let given = [
            self.network_interface_id.is_some(),
            self.network_load_balancer_arn.is_some(),
            self.gateway_load_balancer_endpoint_id.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        match given {
            0 => Err(Ec2Error::missing_parameter("networkInterfaceId")),
            1 => Ok(()),
            _ => Err(Ec2Error::new(
                "InvalidParameterCombination",
                "Only one of NetworkInterfaceId, NetworkLoadBalancerArn or GatewayLoadBalancerEndpointId can be specified.",
            )),
        }
    }
    fn formats(&self) -> Result<(), Ec2Error> {
        idempotency::check_token(self.client_token.as_deref())?;
        tags::from_specifications(self.tag_specifications.clone(), "traffic-mirror-target")
            .map(drop)
    }
}

pub fn create_target(
    k: &Kumo,
    ctx: &RequestContext,
    input: CreateTrafficMirrorTargetRequest,
) -> Result<CreateTrafficMirrorTargetResult, Ec2Error> {
    let Some(eni_id) = input.network_interface_id.clone() else {
        return Err(Ec2Error::new(
            "Unsupported",
            "Kumo runs no load balancers: a traffic mirror target is a network interface.",
        ));
    };
    let digest = idempotency::digest(&input);
    let token = input.client_token.as_deref();
    let tag_list =
        tags::from_specifications(input.tag_specifications.clone(), "traffic-mirror-target")?;
    let s = scope(ctx);
    let (rec, tg) = k
        .store
        .write(!ctx.dry_run, |tx| {
            if let Some(id) =
                idempotency::earlier(tx, s, "CreateTrafficMirrorTarget", token, &digest)?
            {
                return Ok((get_target(tx, s, &id)?, tx.tags_of(s, &id)?));
            }
            let eni = crate::repo::eni::get_eni(tx, s, &eni_id)?;
            let sessions: Vec<MirrorSessionRecord> = tx.list(s, &Query::default())?;
            if sessions.iter().any(|x| x.eni_id == eni.id) {
                return Err(Fail(both_roles()));
            }
            let rec = MirrorTargetRecord {
                id: new_id("tmt"),
                eni_id: eni.id.clone(),
                vpc_id: eni.vpc_id.clone(),
                description: input.description.clone(),
            };
            tx.insert(s, &rec)?;
            tags::put_all(tx, s, &rec.id, "traffic-mirror-target", &tag_list)?;
            idempotency::remember(tx, s, "CreateTrafficMirrorTarget", token, &digest, &rec.id)?;
            Ok::<_, Fail>((rec, tags::wire_pairs(&tag_list)))
        })
        .map_err(|f| f.0)?;
    Ok(CreateTrafficMirrorTargetResult {
        traffic_mirror_target: Some(wire_target(ctx, &rec, &tg)),
        client_token: input.client_token,
    })
}

fn both_roles() -> Ec2Error {
    Ec2Error::new(
        "InvalidParameterCombination",
        "An elastic network interface cannot be a traffic mirror target and a traffic mirror session source at the same time.",
    )
}

impl Checks for DeleteTrafficMirrorTargetRequest {}

pub fn delete_target(
    k: &Kumo,
    ctx: &RequestContext,
    input: DeleteTrafficMirrorTargetRequest,
) -> Result<DeleteTrafficMirrorTargetResult, Ec2Error> {
    let s = scope(ctx);
    k.store
        .write(!ctx.dry_run, |tx| {
            let t = get_target(tx, s, &input.traffic_mirror_target_id)?;
            let sessions: Vec<MirrorSessionRecord> = tx.list(s, &Query::default())?;
            if sessions.iter().any(|x| x.target_id == t.id) {
                return Err(Fail(Ec2Error::new(
                    "TrafficMirrorTargetInUseException",
                    "The Traffic Mirror target cannot be deleted because a Traffic Mirror session is currently using it.",
                )));
            }
            tx.delete::<MirrorTargetRecord>(s, &t.id)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)?;
    Ok(DeleteTrafficMirrorTargetResult {
        traffic_mirror_target_id: Some(input.traffic_mirror_target_id),
    })
}

struct TargetView<'a>(&'a Tagged<MirrorTargetRecord>, &'a str);
impl Filterable<TargetF> for TargetView<'_> {
    fn field(&self, f: TargetF, out: &mut dyn FnMut(&str)) {
        let t = &self.0.item;
        match f {
            TargetF::Description => t.description.iter().for_each(|d| out(d)),
            TargetF::NetworkInterfaceId => out(&t.eni_id),
            TargetF::NetworkLoadBalancerArn => {}
            TargetF::OwnerId => out(self.1),
            TargetF::TrafficMirrorTargetId => out(&t.id),
        }
    }
    fn tags(&self) -> &[(String, String)] {
        &self.0.tags
    }
}

macro_rules! paged {
    ($($t:ty => $op:literal),*) => {$(
        impl Checks for $t {
            fn formats(&self) -> Result<(), Ec2Error> {
                checks::page($op, self.max_results, self.next_token.as_deref(), (5, 1000))
            }
        }
    )*};
}
paged!(
    DescribeTrafficMirrorTargetsRequest => "DescribeTrafficMirrorTargets",
    DescribeTrafficMirrorFiltersRequest => "DescribeTrafficMirrorFilters",
    DescribeTrafficMirrorSessionsRequest => "DescribeTrafficMirrorSessions",
    DescribeTrafficMirrorFilterRulesRequest => "DescribeTrafficMirrorFilterRules"
);

pub fn describe_targets(
    k: &Kumo,
    ctx: &RequestContext,
    input: DescribeTrafficMirrorTargetsRequest,
) -> Result<DescribeTrafficMirrorTargetsResult, Ec2Error> {
    let fs = filters::compile::<TargetF>(input.filters, &[])?;
    let ids = input.traffic_mirror_target_ids.unwrap_or_default();
    let req = describe::Request {
        op: "DescribeTrafficMirrorTargets",
        ids: &ids,
        not_found: &target_missing,
        push: Push::filters(&fs, TargetF::TrafficMirrorTargetId, None),
        max_results: input.max_results,
        bounds: (5, 1000),
        next_token: input.next_token.as_deref(),
    };
    let (page, next) = describe::read(
        &k.store,
        scope(ctx),
        &req,
        |t: &Tagged<MirrorTargetRecord>| fs.matches(&TargetView(t, &ctx.account_id)),
    )?;
    Ok(DescribeTrafficMirrorTargetsResult {
        traffic_mirror_targets: Some(
            page.iter()
                .map(|t| wire_target(ctx, &t.item, &t.tags))
                .collect(),
        ),
        next_token: next,
    })
}

// ---- Filters and rules ---------------------------------------------------------------------

impl Checks for CreateTrafficMirrorFilterRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        idempotency::check_token(self.client_token.as_deref())?;
        tags::from_specifications(self.tag_specifications.clone(), "traffic-mirror-filter")
            .map(drop)
    }
}

fn rule_tags_of<'a, V: Read>(
    v: &'a V,
    s: Scope<'a>,
) -> impl Fn(&str) -> Vec<(String, String)> + 'a {
    move |id: &str| v.tags_of(s, id).unwrap_or_default()
}

pub fn create_filter(
    k: &Kumo,
    ctx: &RequestContext,
    input: CreateTrafficMirrorFilterRequest,
) -> Result<CreateTrafficMirrorFilterResult, Ec2Error> {
    let digest = idempotency::digest(&input);
    let token = input.client_token.as_deref();
    let tag_list =
        tags::from_specifications(input.tag_specifications.clone(), "traffic-mirror-filter")?;
    let s = scope(ctx);
    let (rec, tg) = k
        .store
        .write(!ctx.dry_run, |tx| {
            if let Some(id) =
                idempotency::earlier(tx, s, "CreateTrafficMirrorFilter", token, &digest)?
            {
                return Ok((get_filter(tx, s, &id)?, tx.tags_of(s, &id)?));
            }
            let rec = MirrorFilterRecord {
                id: new_id("tmf"),
                description: input.description.clone(),
                network_services: Vec::new(),
                rules: Vec::new(),
            };
            tx.insert(s, &rec)?;
            tags::put_all(tx, s, &rec.id, "traffic-mirror-filter", &tag_list)?;
            idempotency::remember(tx, s, "CreateTrafficMirrorFilter", token, &digest, &rec.id)?;
            Ok::<_, Fail>((rec, tags::wire_pairs(&tag_list)))
        })
        .map_err(|f| f.0)?;
    Ok(CreateTrafficMirrorFilterResult {
        traffic_mirror_filter: Some(wire_filter(&rec, &tg, &|_| Vec::new())),
        client_token: input.client_token,
    })
}

impl Checks for DeleteTrafficMirrorFilterRequest {}

pub fn delete_filter(
    k: &Kumo,
    ctx: &RequestContext,
    input: DeleteTrafficMirrorFilterRequest,
) -> Result<DeleteTrafficMirrorFilterResult, Ec2Error> {
    let s = scope(ctx);
    k.store
        .write(!ctx.dry_run, |tx| {
            let f = get_filter(tx, s, &input.traffic_mirror_filter_id)?;
            let sessions: Vec<MirrorSessionRecord> = tx.list(s, &Query::default())?;
            if sessions.iter().any(|x| x.filter_id == f.id) {
                return Err(Fail(Ec2Error::new(
                    "TrafficMirrorFilterInUse",
                    "The Traffic Mirror filter cannot be deleted because a Traffic Mirror session is currently using it.",
                )));
            }
            for r in &f.rules {
                tx.delete::<MirrorRuleRef>(s, &r.id)?;
            }
            tx.delete::<MirrorFilterRecord>(s, &f.id)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)?;
    Ok(DeleteTrafficMirrorFilterResult {
        traffic_mirror_filter_id: Some(input.traffic_mirror_filter_id),
    })
}

impl Checks for ModifyTrafficMirrorFilterNetworkServicesRequest {}

pub fn modify_network_services(
    k: &Kumo,
    ctx: &RequestContext,
    input: ModifyTrafficMirrorFilterNetworkServicesRequest,
) -> Result<ModifyTrafficMirrorFilterNetworkServicesResult, Ec2Error> {
    let s = scope(ctx);
    let (rec, tg) = k
        .store
        .write(!ctx.dry_run, |tx| {
            let mut f = get_filter(tx, s, &input.traffic_mirror_filter_id)?;
            for a in input.add_network_services.iter().flatten() {
                if !f.network_services.contains(a) {
                    f.network_services.push(a.clone());
                }
            }
            for r in input.remove_network_services.iter().flatten() {
                f.network_services.retain(|x| x != r);
            }
            tx.update(s, &f)?;
            Ok::<_, Fail>((f.clone(), tx.tags_of(s, &f.id)?))
        })
        .map_err(|f| f.0)?;
    let rule_tags = k
        .store
        .read(|v| {
            Ok::<_, Fail>(
                rec.rules
                    .iter()
                    .map(|r| (r.id.clone(), v.tags_of(s, &r.id).unwrap_or_default()))
                    .collect::<Vec<_>>(),
            )
        })
        .map_err(|f| f.0)?;
    let lookup = |id: &str| {
        rule_tags
            .iter()
            .find(|(r, _)| r == id)
            .map(|(_, t)| t.clone())
            .unwrap_or_default()
    };
    Ok(ModifyTrafficMirrorFilterNetworkServicesResult {
        traffic_mirror_filter: Some(wire_filter(&rec, &tg, &lookup)),
    })
}

/// A rule as a request gives it, checked: the rule number, the direction, CIDRs, a protocol
/// number, and port ranges only for TCP and UDP.
struct RuleSpec {
    direction: String,
    rule_number: i32,
    action: String,
    protocol: Option<i32>,
    source_cidr: String,
    destination_cidr: String,
    source_ports: Option<(i32, i32)>,
    destination_ports: Option<(i32, i32)>,
}

/// A filter rule's number: 1 to 32766.
fn rule_number(n: i32) -> Result<(), Ec2Error> {
    if (1..=32766).contains(&n) {
        return Ok(());
    }
    Err(Ec2Error::invalid_value(format!(
        "Value ({n}) for parameter ruleNumber is invalid. Rule number must be in range 1..32766"
    )))
}

fn check_rule(r: &RuleSpec) -> Result<(), Ec2Error> {
    rule_number(r.rule_number)?;
    for (name, c) in [
        ("sourceCidrBlock", &r.source_cidr),
        ("destinationCidrBlock", &r.destination_cidr),
    ] {
        if Cidr::parse(c).is_err() {
            return Err(Ec2Error::invalid_value(format!(
                "Value ({c}) for parameter {name} is invalid. This is not a valid CIDR block."
            )));
        }
    }
    if let Some(p) = r.protocol {
        if !(0..=255).contains(&p) {
            return Err(Ec2Error::invalid_value(format!(
                "Value ({p}) for parameter protocol is invalid. The protocol is a number from 0 to 255."
            )));
        }
    }
    for (name, ports) in [
        ("sourcePortRange", r.source_ports),
        ("destinationPortRange", r.destination_ports),
    ] {
        let Some((a, b)) = ports else { continue };
        if !matches!(r.protocol, Some(6 | 17)) {
            return Err(Ec2Error::invalid_value(format!(
                "Value for parameter {name} is invalid. Port ranges are for the TCP (6) and UDP (17) protocols only."
            )));
        }
        if !(0..=65535).contains(&a) || !(0..=65535).contains(&b) || a > b {
            return Err(Ec2Error::invalid_value(format!(
                "Value ({a}-{b}) for parameter {name} is invalid. Ports are 0 to 65535, from no greater than to."
            )));
        }
    }
    Ok(())
}

fn ports(p: &Option<TrafficMirrorPortRangeRequest>) -> Option<(i32, i32)> {
    p.as_ref().map(|p| {
        let from = p.from_port.unwrap_or(0);
        (from, p.to_port.unwrap_or(from))
    })
}

fn create_rule_spec(i: &CreateTrafficMirrorFilterRuleRequest) -> RuleSpec {
    RuleSpec {
        direction: i.traffic_direction.clone(),
        rule_number: i.rule_number,
        action: i.rule_action.clone(),
        protocol: i.protocol,
        source_cidr: i.source_cidr_block.clone(),
        destination_cidr: i.destination_cidr_block.clone(),
        source_ports: ports(&i.source_port_range),
        destination_ports: ports(&i.destination_port_range),
    }
}

impl Checks for CreateTrafficMirrorFilterRuleRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        idempotency::check_token(self.client_token.as_deref())?;
        check_rule(&create_rule_spec(self))?;
        tags::from_specifications(
            self.tag_specifications.clone(),
            "traffic-mirror-filter-rule",
        )
        .map(drop)
    }
}

/// Whether another rule of the filter holds this direction and number.
fn taken(f: &MirrorFilterRecord, id: &str, direction: &str, number: i32) -> Result<(), Fail> {
    if f.rules
        .iter()
        .any(|x| x.id != id && x.direction == direction && x.rule_number == number)
    {
        return Err(Fail(Ec2Error::new(
            "TrafficMirrorFilterRuleAlreadyExists",
            "The Traffic Mirror filter rule already exists.",
        )));
    }
    Ok(())
}

/// A filter's rules changed: every VPC whose sessions may use it is re-rendered.
fn rerender(k: &Kumo, ctx: &RequestContext, reach: Reach) {
    if !ctx.dry_run {
        k.sync_firewall(ctx, reach);
    }
}

pub fn create_rule(
    k: &Kumo,
    ctx: &RequestContext,
    input: CreateTrafficMirrorFilterRuleRequest,
) -> Result<CreateTrafficMirrorFilterRuleResult, Ec2Error> {
    let digest = idempotency::digest(&input);
    let token = input.client_token.as_deref();
    let tag_list = tags::from_specifications(
        input.tag_specifications.clone(),
        "traffic-mirror-filter-rule",
    )?;
    let spec = create_rule_spec(&input);
    let s = scope(ctx);
    let (rule, tg) = k
        .store
        .write(!ctx.dry_run, |tx| {
            if let Some(id) = idempotency::earlier(tx, s, "CreateTrafficMirrorFilterRule", token, &digest)? {
                let f = get_filter(tx, s, &input.traffic_mirror_filter_id)?;
                let r = f.rules.iter().find(|r| r.id == id).cloned().ok_or_else(|| Fail(rule_missing(&id)))?;
                return Ok((r, tx.tags_of(s, &id)?));
            }
            let mut f = get_filter(tx, s, &input.traffic_mirror_filter_id)?;
            taken(&f, "", &spec.direction, spec.rule_number)?;
            if f.rules.len() >= RULES_PER_FILTER {
                return Err(Fail(Ec2Error::new(
                    "TrafficMirrorFilterRuleLimitExceeded",
                    format!("The maximum number of rules ({RULES_PER_FILTER}) has been reached for the Traffic Mirror filter."),
                )));
            }
            let rule = MirrorFilterRule {
                id: new_id("tmfr"),
                direction: spec.direction.clone(),
                rule_number: spec.rule_number,
                action: spec.action.clone(),
                protocol: spec.protocol,
                source_cidr: spec.source_cidr.clone(),
                destination_cidr: spec.destination_cidr.clone(),
                source_ports: spec.source_ports,
                destination_ports: spec.destination_ports,
                description: input.description.clone(),
            };
            f.rules.push(rule.clone());
            tx.update(s, &f)?;
            tx.insert(
                s,
                &MirrorRuleRef {
                    id: rule.id.clone(),
                    filter_id: f.id.clone(),
                },
            )?;
            tags::put_all(tx, s, &rule.id, "traffic-mirror-filter-rule", &tag_list)?;
            idempotency::remember(tx, s, "CreateTrafficMirrorFilterRule", token, &digest, &rule.id)?;
            Ok::<_, Fail>((rule, tags::wire_pairs(&tag_list)))
        })
        .map_err(|f| f.0)?;
    rerender(k, ctx, Reach::Scope);
    Ok(CreateTrafficMirrorFilterRuleResult {
        traffic_mirror_filter_rule: Some(wire_rule(&input.traffic_mirror_filter_id, &rule, &tg)),
        client_token: input.client_token,
    })
}

/// The filter that holds a rule.
fn filter_of_rule(tx: &Tx, s: Scope, rule: &str) -> Result<MirrorFilterRecord, Fail> {
    let r: MirrorRuleRef = tx.get(s, rule)?.ok_or_else(|| Fail(rule_missing(rule)))?;
    get_filter(tx, s, &r.filter_id)
}

impl Checks for ModifyTrafficMirrorFilterRuleRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        self.rule_number.map_or(Ok(()), rule_number)
    }
}

pub fn modify_rule(
    k: &Kumo,
    ctx: &RequestContext,
    input: ModifyTrafficMirrorFilterRuleRequest,
) -> Result<ModifyTrafficMirrorFilterRuleResult, Ec2Error> {
    let s = scope(ctx);
    let id = input.traffic_mirror_filter_rule_id.clone();
    let (filter, rule, tg) = k
        .store
        .write(!ctx.dry_run, |tx| {
            let mut f = filter_of_rule(tx, s, &id)?;
            let at = f
                .rules
                .iter()
                .position(|r| r.id == id)
                .ok_or_else(|| Fail(rule_missing(&id)))?;
            let mut r = f.rules[at].clone();
            let remove = input.remove_fields.clone().unwrap_or_default();
            for field in &remove {
                match field.as_str() {
                    "destination-port-range" => r.destination_ports = None,
                    "source-port-range" => r.source_ports = None,
                    "protocol" => r.protocol = None,
                    "description" => r.description = None,
                    _ => {}
                }
            }
            if let Some(d) = &input.traffic_direction {
                r.direction = d.clone();
            }
            if let Some(n) = input.rule_number {
                r.rule_number = n;
            }
            if let Some(a) = &input.rule_action {
                r.action = a.clone();
            }
            if input.protocol.is_some() {
                r.protocol = input.protocol;
            }
            if let Some(c) = &input.source_cidr_block {
                r.source_cidr = c.clone();
            }
            if let Some(c) = &input.destination_cidr_block {
                r.destination_cidr = c.clone();
            }
            if input.source_port_range.is_some() {
                r.source_ports = ports(&input.source_port_range);
            }
            if input.destination_port_range.is_some() {
                r.destination_ports = ports(&input.destination_port_range);
            }
            if input.description.is_some() {
                r.description = input.description.clone();
            }
            check_rule(&RuleSpec {
                direction: r.direction.clone(),
                rule_number: r.rule_number,
                action: r.action.clone(),
                protocol: r.protocol,
                source_cidr: r.source_cidr.clone(),
                destination_cidr: r.destination_cidr.clone(),
                source_ports: r.source_ports,
                destination_ports: r.destination_ports,
            })
            .map_err(Fail)?;
            taken(&f, &r.id, &r.direction, r.rule_number)?;
            f.rules[at] = r.clone();
            tx.update(s, &f)?;
            Ok::<_, Fail>((f.id.clone(), r, tx.tags_of(s, &id)?))
        })
        .map_err(|f| f.0)?;
    rerender(k, ctx, Reach::Scope);
    Ok(ModifyTrafficMirrorFilterRuleResult {
        traffic_mirror_filter_rule: Some(wire_rule(&filter, &rule, &tg)),
    })
}

impl Checks for DeleteTrafficMirrorFilterRuleRequest {}

pub fn delete_rule(
    k: &Kumo,
    ctx: &RequestContext,
    input: DeleteTrafficMirrorFilterRuleRequest,
) -> Result<DeleteTrafficMirrorFilterRuleResult, Ec2Error> {
    let s = scope(ctx);
    let id = input.traffic_mirror_filter_rule_id.clone();
    k.store
        .write(!ctx.dry_run, |tx| {
            let mut f = filter_of_rule(tx, s, &id)?;
            f.rules.retain(|r| r.id != id);
            tx.update(s, &f)?;
            tx.delete::<MirrorRuleRef>(s, &id)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)?;
    rerender(k, ctx, Reach::Scope);
    Ok(DeleteTrafficMirrorFilterRuleResult {
        traffic_mirror_filter_rule_id: Some(id),
    })
}

struct FilterView<'a>(&'a Tagged<MirrorFilterRecord>);
impl Filterable<FilterF> for FilterView<'_> {
    fn field(&self, f: FilterF, out: &mut dyn FnMut(&str)) {
        let x = &self.0.item;
        match f {
            FilterF::Description => x.description.iter().for_each(|d| out(d)),
            FilterF::TrafficMirrorFilterId => out(&x.id),
        }
    }
    fn tags(&self) -> &[(String, String)] {
        &self.0.tags
    }
}

pub fn describe_filters(
    k: &Kumo,
    ctx: &RequestContext,
    input: DescribeTrafficMirrorFiltersRequest,
) -> Result<DescribeTrafficMirrorFiltersResult, Ec2Error> {
    let fs = filters::compile::<FilterF>(input.filters, &[])?;
    let ids = input.traffic_mirror_filter_ids.unwrap_or_default();
    let s = scope(ctx);
    let req = describe::Request {
        op: "DescribeTrafficMirrorFilters",
        ids: &ids,
        not_found: &filter_missing,
        push: Push::filters(&fs, FilterF::TrafficMirrorFilterId, None),
        max_results: input.max_results,
        bounds: (5, 1000),
        next_token: input.next_token.as_deref(),
    };
    let out = k
        .store
        .read(|v| {
            let (page, next) = describe::run(v, s, &req, |t: &Tagged<MirrorFilterRecord>| {
                fs.matches(&FilterView(t))
            })?;
            let tags_of = rule_tags_of(v, s);
            Ok::<_, Fail>((
                page.iter()
                    .map(|t| wire_filter(&t.item, &t.tags, &tags_of))
                    .collect::<Vec<_>>(),
                next,
            ))
        })
        .map_err(|f| f.0)?;
    Ok(DescribeTrafficMirrorFiltersResult {
        traffic_mirror_filters: Some(out.0),
        next_token: out.1,
    })
}

struct RuleView<'a>(&'a TrafficMirrorFilterRule);
impl Filterable<RuleF> for RuleView<'_> {
    fn field(&self, f: RuleF, out: &mut dyn FnMut(&str)) {
        let r = self.0;
        let mut opt = |v: Option<String>| v.iter().for_each(|v| out(v));
        match f {
            RuleF::Description => opt(r.description.clone()),
            RuleF::DestinationCidrBlock => opt(r.destination_cidr_block.clone()),
            RuleF::SourceCidrBlock => opt(r.source_cidr_block.clone()),
            RuleF::Protocol => opt(r.protocol.map(|p| p.to_string())),
            RuleF::RuleAction => opt(r.rule_action.clone()),
            RuleF::RuleNumber => opt(r.rule_number.map(|n| n.to_string())),
            RuleF::TrafficDirection => opt(r.traffic_direction.clone()),
            RuleF::TrafficMirrorFilterId => opt(r.traffic_mirror_filter_id.clone()),
            RuleF::TrafficMirrorFilterRuleId => opt(r.traffic_mirror_filter_rule_id.clone()),
        }
    }
    fn tags(&self) -> &[(String, String)] {
        &[]
    }
}

pub fn describe_rules(
    k: &Kumo,
    ctx: &RequestContext,
    input: DescribeTrafficMirrorFilterRulesRequest,
) -> Result<DescribeTrafficMirrorFilterRulesResult, Ec2Error> {
    let fs = filters::compile::<RuleF>(input.filters, &[])?;
    let limit = paging::max_results(input.max_results, 5, 1000)?;
    let cursor = paging::cursor(
        "DescribeTrafficMirrorFilterRules",
        input.next_token.as_deref(),
    )?;
    let s = scope(ctx);
    let ids = input.traffic_mirror_filter_rule_ids.unwrap_or_default();
    let mut rules = k
        .store
        .read(|v| {
            let filters: Vec<MirrorFilterRecord> = match &input.traffic_mirror_filter_id {
                Some(id) => vec![get_filter(v, s, id)?],
                None => v.list(s, &Query::default())?,
            };
            for id in &ids {
                if !filters.iter().any(|f| f.rules.iter().any(|r| &r.id == id)) {
                    return Err(Fail(rule_missing(id)));
                }
            }
            let mut out = Vec::new();
            for f in &filters {
                for r in &f.rules {
                    if ids.is_empty() || ids.contains(&r.id) {
                        out.push(wire_rule(&f.id, r, &v.tags_of(s, &r.id)?));
                    }
                }
            }
            Ok::<_, Fail>(out)
        })
        .map_err(|f| f.0)?;
    rules.retain(|r| fs.is_empty() || fs.matches(&RuleView(r)));
    rules.sort_by(|a, b| {
        a.traffic_mirror_filter_rule_id
            .cmp(&b.traffic_mirror_filter_rule_id)
    });
    if let Some(c) = cursor {
        rules.retain(|r| {
            r.traffic_mirror_filter_rule_id
                .as_deref()
                .unwrap_or_default()
                > c.as_str()
        });
    }
    let (page, next) = paging::page(rules, limit, "DescribeTrafficMirrorFilterRules", |r| {
        r.traffic_mirror_filter_rule_id.clone().unwrap_or_default()
    });
    Ok(DescribeTrafficMirrorFilterRulesResult {
        traffic_mirror_filter_rules: Some(page),
        next_token: next,
    })
}

// ---- Sessions ------------------------------------------------------------------------------

fn check_session_numbers(
    session_number: Option<i32>,
    vni: Option<i32>,
    packet_length: Option<i32>,
) -> Result<(), Ec2Error> {
    if let Some(n) = session_number {
        if !(1..=32766).contains(&n) {
            return Err(Ec2Error::invalid_value(format!(
                "Value ({n}) for parameter sessionNumber is invalid. Session number must be in range 1..32766"
            )));
        }
    }
    if let Some(v) = vni {
        if !(0..=16_777_215).contains(&v) {
            return Err(Ec2Error::invalid_value(format!(
                "Value ({v}) for parameter virtualNetworkId is invalid. A VXLAN id is 0 to 16777215."
            )));
        }
    }
    if let Some(p) = packet_length {
        if !(1..=8500).contains(&p) {
            return Err(Ec2Error::invalid_value(format!(
                "Value ({p}) for parameter packetLength is invalid. Packet length must be in range 1..8500"
            )));
        }
    }
    Ok(())
}

impl Checks for CreateTrafficMirrorSessionRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        idempotency::check_token(self.client_token.as_deref())?;
        check_session_numbers(
            Some(self.session_number),
            self.virtual_network_id,
            self.packet_length,
        )?;
        tags::from_specifications(self.tag_specifications.clone(), "traffic-mirror-session")
            .map(drop)
    }
}

impl Checks for ModifyTrafficMirrorSessionRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        check_session_numbers(
            self.session_number,
            self.virtual_network_id,
            self.packet_length,
        )
    }
}

impl Checks for DeleteTrafficMirrorSessionRequest {}

/// Whether the target's interface is in the source's VPC or one actively peered with it.
fn reachable<V: Read>(v: &V, s: Scope, source_vpc: &str, target_vpc: &str) -> Result<bool, Fail> {
    if source_vpc == target_vpc {
        return Ok(true);
    }
    let peerings: Vec<VpcPeeringRecord> = v.list(s, &Query::default())?;
    Ok(peerings.iter().any(|p| {
        p.status == "active"
            && p.joins(s.account, s.region, source_vpc)
            && p.joins(s.account, s.region, target_vpc)
    }))
}

/// The source's own checks: an instance's interface, of a Nitro type, not a target.
fn check_source(tx: &Tx, s: Scope, eni: &EniRecord) -> Result<(), Fail> {
    let unsupported = || {
        Fail(Ec2Error::new(
            "NetworkInterfaceNotSupported",
            format!("{} must be attached to a supported instance", eni.id),
        ))
    };
    let Some(a) = &eni.attachment else {
        return Err(unsupported());
    };
    let instance: Option<InstanceRecord> = tx.get(s, &a.instance_id)?;
    let nitro = instance
        .and_then(|r| crate::instance_types::find(&r.instance_type))
        .and_then(|t| t.hypervisor.as_deref())
        .is_some_and(|h| h == "nitro");
    if !nitro {
        return Err(unsupported());
    }
    let targets: Vec<MirrorTargetRecord> = tx.list(s, &Query::default())?;
    if targets.iter().any(|t| t.eni_id == eni.id) {
        return Err(Fail(both_roles()));
    }
    Ok(())
}

/// Session limits: per source and per target, leaving `except` (a session being modified)
/// out of the count.
fn check_limits(
    sessions: &[MirrorSessionRecord],
    except: &str,
    eni: &str,
    target: &str,
) -> Result<(), Fail> {
    let others = sessions.iter().filter(|x| x.id != except);
    if others.clone().filter(|x| x.eni_id == eni).count() >= SESSIONS_PER_SOURCE {
        return Err(Fail(Ec2Error::new(
            "TrafficMirrorSessionsPerInterfaceLimitExceeded",
            format!("The network interface {eni} already has {SESSIONS_PER_SOURCE} Traffic Mirror sessions."),
        )));
    }
    let mut sources: Vec<&str> = others
        .filter(|x| x.target_id == target)
        .map(|x| x.eni_id.as_str())
        .collect();
    sources.sort();
    sources.dedup();
    if !sources.contains(&eni) && sources.len() >= SOURCES_PER_TARGET {
        return Err(Fail(Ec2Error::new(
            "TrafficMirrorSourcesPerTargetLimitExceeded",
            format!("The Traffic Mirror target {target} already has {SOURCES_PER_TARGET} sources."),
        )));
    }
    Ok(())
}

pub fn create_session(
    k: &Kumo,
    ctx: &RequestContext,
    input: CreateTrafficMirrorSessionRequest,
) -> Result<CreateTrafficMirrorSessionResult, Ec2Error> {
    let digest = idempotency::digest(&input);
    let token = input.client_token.as_deref();
    let tag_list =
        tags::from_specifications(input.tag_specifications.clone(), "traffic-mirror-session")?;
    let s = scope(ctx);
    let (rec, tg) = k
        .store
        .write(!ctx.dry_run, |tx| {
            if let Some(id) = idempotency::earlier(tx, s, "CreateTrafficMirrorSession", token, &digest)? {
                return Ok((get_session(tx, s, &id)?, tx.tags_of(s, &id)?));
            }
            let eni = crate::repo::eni::get_eni(tx, s, &input.network_interface_id)?;
            let target = get_target(tx, s, &input.traffic_mirror_target_id)?;
            get_filter(tx, s, &input.traffic_mirror_filter_id)?;
            if target.eni_id == eni.id {
                return Err(Fail(both_roles()));
            }
            check_source(tx, s, &eni)?;
            if !reachable(tx, s, &eni.vpc_id, &target.vpc_id)? {
                return Err(Fail(Ec2Error::invalid_value(format!(
                    "The Traffic Mirror target {} is not in the VPC of {} nor in a VPC peered with it.",
                    target.id, eni.id
                ))));
            }
            let sessions: Vec<MirrorSessionRecord> = tx.list(s, &Query::default())?;
            check_limits(&sessions, "", &eni.id, &target.id)?;
            // A VXLAN id unique in the account, at random, when none is given.
            let vni = match input.virtual_network_id {
                Some(v) => v,
                None => loop {
                    let bytes = crate::core::ids::name_bytes::<4>();
                    let v = (u32::from_le_bytes(bytes) % 16_777_215) as i32 + 1;
                    if !sessions.iter().any(|x| x.vni == v) {
                        break v;
                    }
                },
            };
            let rec = MirrorSessionRecord {
                id: new_id("tms"),
                eni_id: eni.id.clone(),
                vpc_id: eni.vpc_id.clone(),
                target_id: target.id.clone(),
                filter_id: input.traffic_mirror_filter_id.clone(),
                session_number: input.session_number,
                vni,
                packet_length: input.packet_length,
                description: input.description.clone(),
            };
            tx.insert(s, &rec)?;
            tags::put_all(tx, s, &rec.id, "traffic-mirror-session", &tag_list)?;
            idempotency::remember(tx, s, "CreateTrafficMirrorSession", token, &digest, &rec.id)?;
            Ok::<_, Fail>((rec, tags::wire_pairs(&tag_list)))
        })
        .map_err(|f| f.0)?;
    if rec.packet_length.is_some() {
        tracing::warn!(session = %rec.id, "PacketLength is kept but not applied: Kumo's copies are whole packets");
    }
    rerender(k, ctx, Reach::Vpcs([rec.vpc_id.clone()].into()));
    Ok(CreateTrafficMirrorSessionResult {
        traffic_mirror_session: Some(wire_session(ctx, &rec, &tg)),
        client_token: input.client_token,
    })
}

pub fn modify_session(
    k: &Kumo,
    ctx: &RequestContext,
    input: ModifyTrafficMirrorSessionRequest,
) -> Result<ModifyTrafficMirrorSessionResult, Ec2Error> {
    let s = scope(ctx);
    let (rec, tg) = k
        .store
        .write(!ctx.dry_run, |tx| {
            let mut r = get_session(tx, s, &input.traffic_mirror_session_id)?;
            for f in input.remove_fields.iter().flatten() {
                match f.as_str() {
                    "packet-length" => r.packet_length = None,
                    "description" => r.description = None,
                    "virtual-network-id" => {}
                    _ => {}
                }
            }
            if let Some(t) = &input.traffic_mirror_target_id {
                let target = get_target(tx, s, t)?;
                if target.eni_id == r.eni_id {
                    return Err(Fail(both_roles()));
                }
                if !reachable(tx, s, &r.vpc_id, &target.vpc_id)? {
                    return Err(Fail(Ec2Error::invalid_value(format!(
                        "The Traffic Mirror target {} is not in the VPC of {} nor in a VPC peered with it.",
                        target.id, r.eni_id
                    ))));
                }
                let sessions: Vec<MirrorSessionRecord> = tx.list(s, &Query::default())?;
                check_limits(&sessions, &r.id, &r.eni_id, &target.id)?;
                r.target_id = target.id;
            }
            if let Some(f) = &input.traffic_mirror_filter_id {
                r.filter_id = get_filter(tx, s, f)?.id;
            }
            if let Some(n) = input.session_number {
                r.session_number = n;
            }
            if let Some(v) = input.virtual_network_id {
                r.vni = v;
            }
            if input.packet_length.is_some() {
                r.packet_length = input.packet_length;
            }
            if input.description.is_some() {
                r.description = input.description.clone();
            }
            tx.update(s, &r)?;
            Ok::<_, Fail>((r.clone(), tx.tags_of(s, &r.id)?))
        })
        .map_err(|f| f.0)?;
    rerender(k, ctx, Reach::Vpcs([rec.vpc_id.clone()].into()));
    Ok(ModifyTrafficMirrorSessionResult {
        traffic_mirror_session: Some(wire_session(ctx, &rec, &tg)),
    })
}

pub fn delete_session(
    k: &Kumo,
    ctx: &RequestContext,
    input: DeleteTrafficMirrorSessionRequest,
) -> Result<DeleteTrafficMirrorSessionResult, Ec2Error> {
    let s = scope(ctx);
    let vpc = k
        .store
        .write(!ctx.dry_run, |tx| {
            let r = get_session(tx, s, &input.traffic_mirror_session_id)?;
            tx.delete::<MirrorSessionRecord>(s, &r.id)?;
            Ok::<_, Fail>(r.vpc_id)
        })
        .map_err(|f| f.0)?;
    rerender(k, ctx, Reach::Vpcs([vpc].into()));
    Ok(DeleteTrafficMirrorSessionResult {
        traffic_mirror_session_id: Some(input.traffic_mirror_session_id),
    })
}

struct SessionView<'a>(&'a Tagged<MirrorSessionRecord>, &'a str);
impl Filterable<SessionF> for SessionView<'_> {
    fn field(&self, f: SessionF, out: &mut dyn FnMut(&str)) {
        let x = &self.0.item;
        match f {
            SessionF::Description => x.description.iter().for_each(|d| out(d)),
            SessionF::NetworkInterfaceId => out(&x.eni_id),
            SessionF::OwnerId => out(self.1),
            SessionF::PacketLength => x.packet_length.iter().for_each(|p| out(&p.to_string())),
            SessionF::SessionNumber => out(&x.session_number.to_string()),
            SessionF::TrafficMirrorFilterId => out(&x.filter_id),
            SessionF::TrafficMirrorSessionId => out(&x.id),
            SessionF::TrafficMirrorTargetId => out(&x.target_id),
            SessionF::VirtualNetworkId => out(&x.vni.to_string()),
        }
    }
    fn tags(&self) -> &[(String, String)] {
        &self.0.tags
    }
}

pub fn describe_sessions(
    k: &Kumo,
    ctx: &RequestContext,
    input: DescribeTrafficMirrorSessionsRequest,
) -> Result<DescribeTrafficMirrorSessionsResult, Ec2Error> {
    let fs = filters::compile::<SessionF>(input.filters, &[])?;
    let ids = input.traffic_mirror_session_ids.unwrap_or_default();
    let req = describe::Request {
        op: "DescribeTrafficMirrorSessions",
        ids: &ids,
        not_found: &session_missing,
        push: Push::filters(&fs, SessionF::TrafficMirrorSessionId, None),
        max_results: input.max_results,
        bounds: (5, 1000),
        next_token: input.next_token.as_deref(),
    };
    let (page, next) = describe::read(
        &k.store,
        scope(ctx),
        &req,
        |t: &Tagged<MirrorSessionRecord>| fs.matches(&SessionView(t, &ctx.account_id)),
    )?;
    Ok(DescribeTrafficMirrorSessionsResult {
        traffic_mirror_sessions: Some(
            page.iter()
                .map(|t| wire_session(ctx, &t.item, &t.tags))
                .collect(),
        ),
        next_token: next,
    })
}
