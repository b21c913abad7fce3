//! Security groups and their rules.

use crate::core::checks::{self, Checks};
use crate::core::describe::{self, Push};
use crate::core::error::Fail;
use crate::core::filters;
use crate::core::ids::new_id;
use crate::core::paging;
use crate::network;
use crate::records::net::*;
use crate::scope;
use crate::tags::{self, Tagged};
use kumo_ec2_wire::filters::{
    DescribeSecurityGroupRules as RuleF, DescribeSecurityGroups as GroupF,
    GetSecurityGroupsForVpc as ForVpcF,
};
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::FilterName;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_model::filter::Filterable;
use kumo_store::{Query, Read, Scope, Store, StoreError, Tx};
use std::collections::HashMap;

/// AWS's default quota of rules per direction.
const MAX_RULES: usize = 60;

fn not_found(id: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidGroup.NotFound",
        format!("The security group '{id}' does not exist"),
    )
}

/// A group named by id, or by name in the default VPC.
/// The VPC of a group named by id, or by name in the default VPC (None when there is none).
pub fn vpc_of(
    store: &Store,
    ctx: &RequestContext,
    id: Option<&str>,
    name: Option<&str>,
) -> Option<String> {
    let s = scope(ctx);
    store.read(|v| find(v, s, id, name).map(|g| g.vpc_id)).ok()
}

fn find<V: Read>(
    v: &V,
    s: Scope,
    id: Option<&str>,
    name: Option<&str>,
) -> Result<SecurityGroupRecord, Fail> {
    if let Some(id) = id {
        return v.get(s, id)?.ok_or_else(|| Fail(not_found(id)));
    }
    let Some(name) = name else {
        return Err(Fail(Ec2Error::missing_parameter("groupName or groupId")));
    };
    let Some(vpc) = network::default_vpc(v, s)? else {
        return Err(Fail(Ec2Error::new(
            "VPCIdNotSpecified",
            "No default VPC for this user",
        )));
    };
    v.get_by_name::<SecurityGroupRecord>(s, &format!("{vpc}/{}", name.to_lowercase()))?
        .ok_or_else(|| {
            Fail(Ec2Error::new(
                "InvalidGroup.NotFound",
                format!("The security group '{name}' does not exist in default VPC '{vpc}'"),
            ))
        })
}

fn check_text(what: &str, v: &str) -> Result<(), Ec2Error> {
    let ok = |c: char| c.is_ascii_alphanumeric() || " ._-:/()#,@[]+=&;{}!$*".contains(c);
    if v.is_empty() || v.len() > 255 || !v.chars().all(ok) {
        return Err(Ec2Error::invalid_value(format!(
            "Value ({v}) for parameter {what} is invalid. Up to 255 characters from a-z, A-Z, 0-9, spaces and ._-:/()#,@[]+=&;{{}}!$* are allowed."
        )));
    }
    Ok(())
}

/// CreateSecurityGroup, before any lookup: a name and a description (sent empty, AWS answers
/// them as missing), their characters, a name not of a group id's form, and the tags. The
/// VPC and the name's uniqueness in it follow.
impl Checks for CreateSecurityGroupRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        if self.group_name.is_empty() {
            return Err(Ec2Error::missing_parameter("GroupName"));
        }
        if self.description.is_empty() {
            return Err(Ec2Error::missing_parameter("GroupDescription"));
        }
        Ok(())
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        check_text("GroupName", &self.group_name)?;
        check_text("GroupDescription", &self.description)?;
        if self.group_name.to_lowercase().starts_with("sg-") {
            return Err(Ec2Error::invalid_value(format!(
                "Value ({}) for parameter GroupName is invalid. Group names may not be in the format sg-*.",
                self.group_name
            )));
        }
        tags::from_specifications(self.tag_specifications.clone(), "security-group").map(drop)
    }
}

pub fn create(
    store: &Store,
    ctx: &RequestContext,
    input: CreateSecurityGroupRequest,
) -> Result<CreateSecurityGroupResult, Ec2Error> {
    let tag_list = tags::from_specifications(input.tag_specifications.clone(), "security-group")?;
    let s = scope(ctx);
    let rec = store
        .write(!ctx.dry_run, |tx| {
            let vpc_id = match &input.vpc_id {
                Some(v) => crate::vpcs::get_vpc(tx, s, v)?.id,
                None => network::default_vpc(tx, s)?.ok_or_else(|| {
                    Fail(Ec2Error::new(
                        "VPCIdNotSpecified",
                        "No default VPC for this user",
                    ))
                })?,
            };
            let rec = SecurityGroupRecord {
                id: new_id("sg"),
                name: input.group_name.clone(),
                description: input.description.clone(),
                vpc_id,
                ingress: Vec::new(),
                egress: vec![network::all_traffic_egress()],
            };
            match tx.insert(s, &rec) {
                Err(StoreError::Conflict) => {
                    return Err(Fail(Ec2Error::new(
                        "InvalidGroup.Duplicate",
                        format!(
                            "The security group '{}' already exists for VPC '{}'",
                            rec.name, rec.vpc_id
                        ),
                    )))
                }
                other => other?,
            }
            tags::put_all(tx, s, &rec.id, "security-group", &tag_list)?;
            Ok(rec)
        })
        .map_err(|f: Fail| f.0)?;
    Ok(CreateSecurityGroupResult {
        group_id: Some(rec.id.clone()),
        security_group_arn: Some(arn(ctx, &rec.id)),
        tags: Some(tag_list),
    })
}

fn arn(ctx: &RequestContext, id: &str) -> String {
    format!(
        "arn:aws:ec2:{}:{}:security-group/{id}",
        ctx.region, ctx.account_id
    )
}

pub fn delete(
    store: &Store,
    ctx: &RequestContext,
    input: DeleteSecurityGroupRequest,
) -> Result<DeleteSecurityGroupResult, Ec2Error> {
    let s = scope(ctx);
    let id = store
        .write(!ctx.dry_run, |tx| {
            let sg = find(
                tx,
                s,
                input.group_id.as_deref(),
                input.group_name.as_deref(),
            )?;
            if sg.name == "default" {
                return Err(Fail(Ec2Error::new(
                    "CannotDelete",
                    format!(
                        "the specified group: \"{}\" name: \"default\" cannot be deleted by a user",
                        sg.id
                    ),
                )));
            }
            let dependent = || {
                Fail(Ec2Error::new(
                    "DependencyViolation",
                    format!("resource {} has a dependent object", sg.id),
                ))
            };
            let enis: Vec<EniRecord> = tx.list(
                s,
                &Query {
                    vpcs: Some(&[sg.vpc_id.as_str()]),
                    ..Query::default()
                },
            )?;
            if enis.iter().any(|e| e.groups.contains(&sg.id)) {
                return Err(dependent());
            }
            let groups: Vec<SecurityGroupRecord> = tx.list(s, &Query::default())?;
            let refers = |r: &SgRule| r.group_id.as_deref() == Some(sg.id.as_str());
            if groups.iter().any(|g| {
                g.id != sg.id && (g.ingress.iter().any(refers) || g.egress.iter().any(refers))
            }) {
                return Err(dependent());
            }
            tx.delete::<SecurityGroupRecord>(s, &sg.id)?;
            Ok(sg.id)
        })
        .map_err(|f: Fail| f.0)?;
    Ok(DeleteSecurityGroupResult {
        r#return: Some(true),
        group_id: Some(id),
    })
}

/// `tcp`, `udp`, `icmp`, `-1` or a protocol number, as AWS stores them.
fn protocol(p: &str) -> Result<String, Ec2Error> {
    let l = p.to_lowercase();
    Ok(match l.as_str() {
        "tcp" | "6" => "tcp".into(),
        "udp" | "17" => "udp".into(),
        "icmp" | "1" => "icmp".into(),
        "-1" | "all" => "-1".into(),
        n if n.parse::<u8>().is_ok() => n.to_string(),
        _ => {
            return Err(Ec2Error::invalid_value(format!(
                "Invalid value '{p}' for IP protocol. Unknown protocol."
            )))
        }
    })
}

/// Expands `IpPermissions` into one rule per peer.
fn expand(perms: &[IpPermission]) -> Result<Vec<SgRule>, Ec2Error> {
    let mut out = Vec::new();
    for p in perms {
        let proto = protocol(p.ip_protocol.as_deref().unwrap_or(""))?;
        let (from, to) = match proto.as_str() {
            "-1" => (None, None),
            "tcp" | "udp" => {
                let (Some(f), Some(t)) = (p.from_port, p.to_port) else {
                    return Err(Ec2Error::invalid_value(format!(
                        "Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange. Must specify both from and to ports with {}.",
                        proto.to_uppercase()
                    )));
                };
                if !(0..=65535).contains(&f) || !(0..=65535).contains(&t) || f > t {
                    return Err(Ec2Error::invalid_value(format!("Invalid value '{f}-{t}' for portRange. The port range must be from 0 to 65535 and from-port must not exceed to-port.")));
                }
                (Some(f), Some(t))
            }
            _ => (
                Some(p.from_port.unwrap_or(-1)),
                Some(p.to_port.unwrap_or(-1)),
            ),
        };
        let base = SgRule {
            id: String::new(),
            protocol: proto.clone(),
            from_port: from,
            to_port: to,
            cidr: None,
            cidr_ipv6: None,
            group_id: None,
            group_owner: None,
            group_peering: None,
            prefix_list_id: None,
            description: None,
        };
        for r in p.ip_ranges.iter().flatten() {
            let cidr =
                crate::vpcs::parse_cidr(r.cidr_ip.as_deref().unwrap_or("")).map_err(|_| {
                    Ec2Error::invalid_value(format!(
                        "CIDR block {} is malformed",
                        r.cidr_ip.as_deref().unwrap_or("")
                    ))
                })?;
            out.push(SgRule {
                cidr: Some(cidr.to_string()),
                description: r.description.clone(),
                ..base.clone()
            });
        }
        for r in p.ipv6_ranges.iter().flatten() {
            let given = r.cidr_ipv6.as_deref().unwrap_or("");
            let cidr = kumo_model::cidr::canonical_ipv6(given).ok_or_else(|| {
                Ec2Error::invalid_value(format!("CIDR block {given} is malformed"))
            })?;
            out.push(SgRule {
                cidr_ipv6: Some(cidr),
                description: r.description.clone(),
                ..base.clone()
            });
        }
        for g in p.user_id_group_pairs.iter().flatten() {
            out.push(SgRule {
                group_id: g.group_id.clone(),
                // Set by the lookup of a group across accounts or VPCs (`resolve_peers`).
                group_owner: g.user_id.clone(),
                group_peering: g.vpc_peering_connection_id.clone(),
                description: g.description.clone(),
                ..base.clone()
            });
        }
        for l in p.prefix_list_ids.iter().flatten() {
            out.push(SgRule {
                prefix_list_id: Some(l.prefix_list_id.clone().unwrap_or_default()),
                description: l.description.clone(),
                ..base.clone()
            });
        }
    }
    Ok(out)
}

fn same(a: &SgRule, b: &SgRule) -> bool {
    a.protocol == b.protocol
        && a.from_port == b.from_port
        && a.to_port == b.to_port
        && a.cidr == b.cidr
        && a.cidr_ipv6 == b.cidr_ipv6
        && a.group_id == b.group_id
        && a.group_owner == b.group_owner
        && a.prefix_list_id == b.prefix_list_id
}

/// The prefix lists rules reference, by id: (address family, maximum entries). A rule that
/// references a list weighs the list's maximum size against the rule limit of its family.
type Weights = HashMap<String, (String, usize)>;

/// The weights of the lists `rules` reference; a list that does not exist is AWS's error.
fn weights<'a, V: Read>(
    v: &V,
    s: Scope,
    rules: impl Iterator<Item = &'a SgRule>,
) -> Result<Weights, Fail> {
    let mut out = Weights::new();
    for id in rules.filter_map(|r| r.prefix_list_id.as_deref()) {
        if out.contains_key(id) {
            continue;
        }
        let pl = crate::repo::prefix_list::get_any(v, s, id).map_err(|f| {
            if f.0.code() == "InvalidPrefixListID.NotFound" {
                Fail(Ec2Error::new(
                    "InvalidPrefixListID.NotFound",
                    format!("The prefix list ID '{id}' does not exist"),
                ))
            } else {
                f
            }
        })?;
        out.insert(id.to_string(), (pl.family, pl.max_entries.max(0) as usize));
    }
    Ok(out)
}

/// Whether group `g` passes the rule limit in either direction, with list `resize` (id, new
/// maximum) at its new size: a prefix list cannot grow past a referencing group's limit.
pub fn over_limit<V: Read>(
    v: &V,
    s: Scope,
    g: &SecurityGroupRecord,
    resize: Option<(&str, i32)>,
) -> Result<bool, Fail> {
    let mut w = weights(v, s, g.ingress.iter().chain(g.egress.iter()))?;
    if let Some((id, max)) = resize {
        if let Some(x) = w.get_mut(id) {
            x.1 = max.max(0) as usize;
        }
    }
    Ok([&g.ingress, &g.egress].iter().any(|rules| {
        let (v4, v6) = rule_counts(rules.iter(), &w);
        v4.max(v6) > MAX_RULES
    }))
}

/// How many rules of a list count against AWS's per-direction limit, for IPv4 and for IPv6:
/// the limit applies to each separately, a rule naming a group counts in both, and one naming
/// a prefix list counts the list's maximum size in its family.
fn rule_counts<'a>(rules: impl Iterator<Item = &'a SgRule>, w: &Weights) -> (usize, usize) {
    rules.fold((0, 0), |(v4, v6), r| {
        if let Some((family, max)) = r.prefix_list_id.as_ref().and_then(|id| w.get(id)) {
            return if family == "IPv6" {
                (v4, v6 + max)
            } else {
                (v4 + max, v6)
            };
        }
        let both = r.group_id.is_some();
        (
            v4 + usize::from(r.cidr.is_some() || both),
            v6 + usize::from(r.cidr_ipv6.is_some() || both),
        )
    })
}

/// AWS's wording of a rule in `InvalidPermission.Duplicate`.
fn describe_rule(r: &SgRule) -> String {
    let peer = r
        .cidr
        .clone()
        .or_else(|| r.cidr_ipv6.clone())
        .or_else(|| r.group_id.clone())
        .or_else(|| r.prefix_list_id.clone())
        .unwrap_or_default();
    match r.protocol.as_str() {
        "-1" => format!("peer: {peer}, ALL, ALLOW"),
        "tcp" | "udp" => format!(
            "peer: {peer}, {}, from port: {}, to port: {}, ALLOW",
            r.protocol.to_uppercase(),
            r.from_port.unwrap_or(0),
            r.to_port.unwrap_or(0)
        ),
        "icmp" => format!(
            "peer: {peer}, ICMP, type: {}, code: {}, ALLOW",
            r.from_port.unwrap_or(-1),
            r.to_port.unwrap_or(-1)
        ),
        n => format!("peer: {peer}, protocol: {n}, ALLOW"),
    }
}

/// A rule given in the requests' flat legacy form (`IpProtocol`, `FromPort`, `ToPort`,
/// `CidrIp`, `SourceSecurityGroupName`), if one is.
fn flat_permission(
    protocol: Option<&String>,
    from: Option<i32>,
    to: Option<i32>,
    cidr: Option<&String>,
    source_group: Option<&String>,
) -> Option<IpPermission> {
    if protocol.is_none() && cidr.is_none() && source_group.is_none() {
        return None;
    }
    Some(IpPermission {
        ip_protocol: protocol.cloned().or(Some("-1".into())),
        from_port: from,
        to_port: to,
        ip_ranges: cidr.map(|c| {
            vec![IpRange {
                cidr_ip: Some(c.clone()),
                description: None,
            }]
        }),
        user_id_group_pairs: source_group.map(|n| {
            vec![UserIdGroupPair {
                group_name: Some(n.clone()),
                ..UserIdGroupPair::default()
            }]
        }),
        ..IpPermission::default()
    })
}

/// Resolves peers named by group name (default VPC) to ids and checks referenced groups.
/// Finds each referenced group: by name (this account's default VPC), or by id, in this
/// account or (with `UserId`) another. A group in another VPC than `vpc` must be in one
/// actively peered with it (AWS: "You have specified two resources that belong to different
/// networks."); the pair then carries the owner (when another account) and the peering.
///
/// To revoke (`lenient`), a group named by id is taken as named when it or its peering is
/// gone, so a stale rule can still be revoked, as AWS allows.
fn resolve_peers(
    tx: &Tx,
    s: Scope,
    vpc: &str,
    perms: &mut [IpPermission],
    lenient: bool,
) -> Result<(), Fail> {
    let different = || {
        Fail(Ec2Error::new(
            "InvalidGroup.NotFound",
            "You have specified two resources that belong to different networks.",
        ))
    };
    for p in perms.iter_mut() {
        for g in p.user_id_group_pairs.iter_mut().flatten() {
            let owner = g
                .user_id
                .clone()
                .filter(|u| u != s.account)
                .unwrap_or_else(|| s.account.to_string());
            let there = Scope {
                account: &owner,
                region: s.region,
            };
            let found = match (&g.group_id, owner == s.account) {
                (None, true) => find(tx, s, None, g.group_name.as_deref())?,
                // Another account's group is named by its id.
                (None, false) => return Err(different()),
                (Some(id), _) => match find(tx, there, Some(id), None) {
                    Ok(f) => f,
                    Err(_) if lenient => {
                        g.user_id = (owner != s.account).then(|| owner.clone());
                        continue;
                    }
                    Err(e) => return Err(e),
                },
            };
            g.group_id = Some(found.id.clone());
            g.user_id = (owner != s.account).then(|| owner.clone());
            g.vpc_peering_connection_id = None;
            if found.vpc_id != vpc {
                let peerings: Vec<VpcPeeringRecord> = tx.list(s, &Query::default())?;
                let link = peerings.iter().find(|x| {
                    x.status == "active"
                        && x.joins(s.account, s.region, vpc)
                        && x.joins(&owner, s.region, &found.vpc_id)
                });
                match link {
                    Some(link) => g.vpc_peering_connection_id = Some(link.id.clone()),
                    None if lenient => {}
                    None => return Err(different()),
                }
            } else if owner != s.account {
                return Err(different());
            }
        }
    }
    Ok(())
}

fn wire_rule(ctx: &RequestContext, group: &str, egress: bool, r: &SgRule) -> SecurityGroupRule {
    SecurityGroupRule {
        security_group_rule_id: Some(r.id.clone()),
        security_group_rule_arn: Some(format!(
            "arn:aws:ec2:{}:{}:security-group-rule/{}",
            ctx.region, ctx.account_id, r.id
        )),
        group_id: Some(group.to_string()),
        group_owner_id: Some(ctx.account_id.clone()),
        is_egress: Some(egress),
        ip_protocol: Some(r.protocol.clone()),
        from_port: Some(r.from_port.unwrap_or(-1)),
        to_port: Some(r.to_port.unwrap_or(-1)),
        cidr_ipv4: r.cidr.clone(),
        cidr_ipv6: r.cidr_ipv6.clone(),
        prefix_list_id: r.prefix_list_id.clone(),
        referenced_group_info: r.group_id.as_ref().map(|g| ReferencedSecurityGroup {
            group_id: Some(g.clone()),
            user_id: Some(r.group_owner.clone().unwrap_or(ctx.account_id.clone())),
            vpc_peering_connection_id: r.group_peering.clone(),
            ..ReferencedSecurityGroup::default()
        }),
        description: r.description.clone(),
        tags: Some(Vec::new()),
    }
}

fn authorize(
    store: &Store,
    ctx: &RequestContext,
    group_id: Option<&str>,
    group_name: Option<&str>,
    mut perms: Vec<IpPermission>,
    egress: bool,
) -> Result<Vec<SecurityGroupRule>, Ec2Error> {
    if perms.is_empty() {
        return Err(Ec2Error::missing_parameter("ipPermissions"));
    }
    let s = scope(ctx);
    let (gid, added) = store
        .write(!ctx.dry_run, |tx| {
            let mut sg = find(tx, s, group_id, group_name)?;
            resolve_peers(tx, s, &sg.vpc_id, &mut perms, false)?;
            let mut new = expand(&perms)?;
            let list = if egress {
                &mut sg.egress
            } else {
                &mut sg.ingress
            };
            for (i, r) in new.iter().enumerate() {
                if list.iter().any(|e| same(e, r)) || new[..i].iter().any(|e| same(e, r)) {
                    return Err(Fail(Ec2Error::new(
                        "InvalidPermission.Duplicate",
                        format!("the specified rule \"{}\" already exists", describe_rule(r)),
                    )));
                }
            }
            let w = weights(tx, s, list.iter().chain(new.iter()))?;
            let (v4, v6) = rule_counts(list.iter().chain(new.iter()), &w);
            if v4.max(v6) > MAX_RULES {
                return Err(Fail(Ec2Error::new(
                    "RulesPerSecurityGroupLimitExceeded",
                    "The maximum number of rules per security group has been reached.",
                )));
            }
            for r in new.iter_mut() {
                r.id = new_id("sgr");
            }
            list.extend(new.iter().cloned());
            tx.update(s, &sg)?;
            Ok((sg.id, new))
        })
        .map_err(|f: Fail| f.0)?;
    Ok(added
        .iter()
        .map(|r| wire_rule(ctx, &gid, egress, r))
        .collect())
}

/// A rule request's permissions: the list, and the one the flat members make.
fn perms_given(list: &Option<Vec<IpPermission>>, flat: Option<IpPermission>) -> Vec<IpPermission> {
    let mut perms = list.clone().unwrap_or_default();
    perms.extend(flat);
    perms
}

/// A rule request's pure checks. Phase 1: permissions (or, to revoke, rule ids), a group
/// named by id or name, every peer named by id or name. Phase 2: each rule's protocol, ports
/// and CIDRs. The group, the peers, the duplicates and the rule limit follow in the operation.
fn rules_required(
    perms: &[IpPermission],
    rule_ids: Option<&[String]>,
    group_named: bool,
) -> Result<(), Ec2Error> {
    match rule_ids {
        None if perms.is_empty() => return Err(Ec2Error::missing_parameter("ipPermissions")),
        Some(ids) if perms.is_empty() && ids.is_empty() => {
            return Err(Ec2Error::missing_parameter(
                "ipPermissions or securityGroupRuleIds",
            ))
        }
        _ => {}
    }
    let peers = perms
        .iter()
        .flat_map(|p| p.user_id_group_pairs.iter().flatten());
    if !group_named
        || peers
            .into_iter()
            .any(|g| g.group_id.is_none() && g.group_name.is_none())
    {
        return Err(Ec2Error::missing_parameter("groupName or groupId"));
    }
    Ok(())
}

/// The four rule requests' pure checks: their permissions, flat members included.
macro_rules! rule_checks {
    ($t:ty, |$i:ident| source: $source:expr, rule_ids: $ids:expr, named: $named:expr) => {
        impl Checks for $t {
            fn required(&self) -> Result<(), Ec2Error> {
                let $i = self;
                rules_required(&rule_perms!($i, $source), $ids, $named)
            }
            fn formats(&self) -> Result<(), Ec2Error> {
                let $i = self;
                expand(&rule_perms!($i, $source)).map(drop)
            }
        }
    };
}

/// A rule request's permissions: its list, and the flat members' one (`source`: the flat
/// source group's name, which only ingress takes).
macro_rules! rule_perms {
    ($i:expr, $source:expr) => {
        perms_given(
            &$i.ip_permissions,
            flat_permission(
                $i.ip_protocol.as_ref(),
                $i.from_port,
                $i.to_port,
                $i.cidr_ip.as_ref(),
                $source,
            ),
        )
    };
}

rule_checks!(AuthorizeSecurityGroupIngressRequest,
    |i| source: i.source_security_group_name.as_ref(), rule_ids: None,
    named: i.group_id.is_some() || i.group_name.is_some());
// Egress names its group by id: the model requires it.
rule_checks!(AuthorizeSecurityGroupEgressRequest, |i| source: None, rule_ids: None, named: true);
rule_checks!(RevokeSecurityGroupIngressRequest,
    |i| source: i.source_security_group_name.as_ref(),
    rule_ids: Some(i.security_group_rule_ids.as_deref().unwrap_or_default()),
    named: i.group_id.is_some() || i.group_name.is_some());
rule_checks!(RevokeSecurityGroupEgressRequest, |i| source: None,
    rule_ids: Some(i.security_group_rule_ids.as_deref().unwrap_or_default()), named: true);

pub fn authorize_ingress(
    store: &Store,
    ctx: &RequestContext,
    input: AuthorizeSecurityGroupIngressRequest,
) -> Result<AuthorizeSecurityGroupIngressResult, Ec2Error> {
    let perms = rule_perms!(input, input.source_security_group_name.as_ref());
    let rules = authorize(
        store,
        ctx,
        input.group_id.as_deref(),
        input.group_name.as_deref(),
        perms,
        false,
    )?;
    Ok(AuthorizeSecurityGroupIngressResult {
        r#return: Some(true),
        security_group_rules: Some(rules),
    })
}

pub fn authorize_egress(
    store: &Store,
    ctx: &RequestContext,
    input: AuthorizeSecurityGroupEgressRequest,
) -> Result<AuthorizeSecurityGroupEgressResult, Ec2Error> {
    let perms = rule_perms!(input, None);
    let rules = authorize(store, ctx, Some(&input.group_id), None, perms, true)?;
    Ok(AuthorizeSecurityGroupEgressResult {
        r#return: Some(true),
        security_group_rules: Some(rules),
    })
}

/// Removes rules. In a default VPC, rules that do not exist come back as unknown; elsewhere
/// they fail the call, as AWS documents.
fn revoke(
    store: &Store,
    ctx: &RequestContext,
    group_id: Option<&str>,
    group_name: Option<&str>,
    mut perms: Vec<IpPermission>,
    rule_ids: Vec<String>,
    egress: bool,
) -> Result<(Vec<IpPermission>, Vec<RevokedSecurityGroupRule>), Ec2Error> {
    if perms.is_empty() && rule_ids.is_empty() {
        return Err(Ec2Error::missing_parameter(
            "ipPermissions or securityGroupRuleIds",
        ));
    }
    let s = scope(ctx);
    store
        .write(!ctx.dry_run, |tx| {
            let mut sg = find(tx, s, group_id, group_name)?;
            let vpc = crate::vpcs::get_vpc(tx, s, &sg.vpc_id)?;
            resolve_peers(tx, s, &sg.vpc_id, &mut perms, true)?;
            let wanted = expand(&perms)?;
            let list = if egress {
                &mut sg.egress
            } else {
                &mut sg.ingress
            };
            let mut unknown = Vec::new();
            let mut revoked = Vec::new();
            for (w, r) in wanted.iter().enumerate() {
                match list.iter().position(|e| same(e, r)) {
                    Some(i) => revoked.push(list.remove(i)),
                    None if vpc.is_default => unknown.push(w),
                    None => {
                        return Err(Fail(Ec2Error::new(
                            "InvalidPermission.NotFound",
                            "The specified rule does not exist in this security group.",
                        )));
                    }
                }
            }
            for id in &rule_ids {
                match list.iter().position(|e| &e.id == id) {
                    Some(i) => revoked.push(list.remove(i)),
                    None => {
                        return Err(Fail(Ec2Error::new(
                            "InvalidSecurityGroupRuleId.NotFound",
                            format!("The security group rule ID '{id}' does not exist"),
                        )))
                    }
                }
            }
            tx.update(s, &sg)?;
            let unknown_perms = unknown
                .iter()
                .map(|i| rule_permission(&wanted[*i]))
                .collect();
            let revoked = revoked
                .iter()
                .map(|r| RevokedSecurityGroupRule {
                    security_group_rule_id: Some(r.id.clone()),
                    group_id: Some(sg.id.clone()),
                    is_egress: Some(egress),
                    ip_protocol: Some(r.protocol.clone()),
                    from_port: Some(r.from_port.unwrap_or(-1)),
                    to_port: Some(r.to_port.unwrap_or(-1)),
                    cidr_ipv4: r.cidr.clone(),
                    cidr_ipv6: r.cidr_ipv6.clone(),
                    referenced_group_id: r.group_id.clone(),
                    prefix_list_id: r.prefix_list_id.clone(),
                    description: r.description.clone(),
                })
                .collect();
            Ok((unknown_perms, revoked))
        })
        .map_err(|f: Fail| f.0)
}

pub fn revoke_ingress(
    store: &Store,
    ctx: &RequestContext,
    input: RevokeSecurityGroupIngressRequest,
) -> Result<RevokeSecurityGroupIngressResult, Ec2Error> {
    let perms = rule_perms!(input, input.source_security_group_name.as_ref());
    let (unknown, revoked) = revoke(
        store,
        ctx,
        input.group_id.as_deref(),
        input.group_name.as_deref(),
        perms,
        input.security_group_rule_ids.clone().unwrap_or_default(),
        false,
    )?;
    Ok(RevokeSecurityGroupIngressResult {
        r#return: Some(true),
        unknown_ip_permissions: (!unknown.is_empty()).then_some(unknown),
        revoked_security_group_rules: Some(revoked),
    })
}

pub fn revoke_egress(
    store: &Store,
    ctx: &RequestContext,
    input: RevokeSecurityGroupEgressRequest,
) -> Result<RevokeSecurityGroupEgressResult, Ec2Error> {
    let perms = rule_perms!(input, None);
    let (unknown, revoked) = revoke(
        store,
        ctx,
        Some(&input.group_id),
        None,
        perms,
        input.security_group_rule_ids.clone().unwrap_or_default(),
        true,
    )?;
    Ok(RevokeSecurityGroupEgressResult {
        r#return: Some(true),
        unknown_ip_permissions: (!unknown.is_empty()).then_some(unknown),
        revoked_security_group_rules: Some(revoked),
    })
}

fn rule_permission(r: &SgRule) -> IpPermission {
    IpPermission {
        ip_protocol: Some(r.protocol.clone()),
        from_port: r.from_port,
        to_port: r.to_port,
        ip_ranges: Some(
            r.cidr
                .iter()
                .map(|c| IpRange {
                    cidr_ip: Some(c.clone()),
                    description: r.description.clone(),
                })
                .collect(),
        ),
        user_id_group_pairs: Some(
            r.group_id
                .iter()
                .map(|g| UserIdGroupPair {
                    group_id: Some(g.clone()),
                    ..UserIdGroupPair::default()
                })
                .collect(),
        ),
        ipv6_ranges: Some(
            r.cidr_ipv6
                .iter()
                .map(|c| Ipv6Range {
                    cidr_ipv6: Some(c.clone()),
                    description: r.description.clone(),
                })
                .collect(),
        ),
        prefix_list_ids: Some(
            r.prefix_list_id
                .iter()
                .map(|l| PrefixListId {
                    prefix_list_id: Some(l.clone()),
                    description: r.description.clone(),
                })
                .collect(),
        ),
    }
}

/// Rules grouped as `IpPermissions`: one per (protocol, ports), with all its peers.
fn permissions(ctx: &RequestContext, rules: &[SgRule]) -> Vec<IpPermission> {
    let mut out: Vec<IpPermission> = Vec::new();
    for r in rules {
        let i = match out.iter().position(|p| {
            p.ip_protocol.as_deref() == Some(r.protocol.as_str())
                && p.from_port == r.from_port
                && p.to_port == r.to_port
        }) {
            Some(i) => i,
            None => {
                out.push(IpPermission {
                    ip_protocol: Some(r.protocol.clone()),
                    from_port: r.from_port,
                    to_port: r.to_port,
                    ip_ranges: Some(Vec::new()),
                    ipv6_ranges: Some(Vec::new()),
                    prefix_list_ids: Some(Vec::new()),
                    user_id_group_pairs: Some(Vec::new()),
                });
                out.len() - 1
            }
        };
        let p = &mut out[i];
        if let Some(c) = &r.cidr {
            p.ip_ranges.get_or_insert_with(Vec::new).push(IpRange {
                cidr_ip: Some(c.clone()),
                description: r.description.clone(),
            });
        }
        if let Some(c) = &r.cidr_ipv6 {
            p.ipv6_ranges.get_or_insert_with(Vec::new).push(Ipv6Range {
                cidr_ipv6: Some(c.clone()),
                description: r.description.clone(),
            });
        }
        if let Some(l) = &r.prefix_list_id {
            p.prefix_list_ids
                .get_or_insert_with(Vec::new)
                .push(PrefixListId {
                    prefix_list_id: Some(l.clone()),
                    description: r.description.clone(),
                });
        }
        if let Some(g) = &r.group_id {
            p.user_id_group_pairs
                .get_or_insert_with(Vec::new)
                .push(UserIdGroupPair {
                    group_id: Some(g.clone()),
                    user_id: Some(r.group_owner.clone().unwrap_or(ctx.account_id.clone())),
                    vpc_peering_connection_id: r.group_peering.clone(),
                    peering_status: r.group_peering.as_ref().map(|_| "active".to_string()),
                    description: r.description.clone(),
                    ..UserIdGroupPair::default()
                });
        }
    }
    out
}

fn wire_group(ctx: &RequestContext, t: &Tagged<SecurityGroupRecord>) -> SecurityGroup {
    let g = &t.item;
    SecurityGroup {
        group_id: Some(g.id.clone()),
        group_name: Some(g.name.clone()),
        description: Some(g.description.clone()),
        vpc_id: Some(g.vpc_id.clone()),
        owner_id: Some(ctx.account_id.clone()),
        security_group_arn: Some(arn(ctx, &g.id)),
        ip_permissions: Some(permissions(ctx, &g.ingress)),
        ip_permissions_egress: Some(permissions(ctx, &g.egress)),
        tags: Some(tags::wire(&t.tags)),
    }
}

struct GroupView<'a> {
    t: &'a Tagged<SecurityGroupRecord>,
    owner: &'a str,
    names: &'a HashMap<String, String>,
}

impl Filterable<GroupF> for GroupView<'_> {
    fn field(&self, f: GroupF, out: &mut dyn FnMut(&str)) {
        use GroupF as G;
        let g = &self.t.item;
        let rules = if f.name().starts_with("egress.") {
            &g.egress
        } else {
            &g.ingress
        };
        match f {
            G::Description => out(&g.description),
            G::GroupId => out(&g.id),
            G::GroupName => out(&g.name),
            G::OwnerId => out(self.owner),
            G::VpcId => out(&g.vpc_id),
            G::IpPermissionCidr | G::EgressIpPermissionCidr => rules
                .iter()
                .filter_map(|r| r.cidr.as_deref())
                .for_each(&mut *out),
            G::IpPermissionIpv6Cidr | G::EgressIpPermissionIpv6Cidr => rules
                .iter()
                .filter_map(|r| r.cidr_ipv6.as_deref())
                .for_each(&mut *out),
            G::IpPermissionFromPort | G::EgressIpPermissionFromPort => rules
                .iter()
                .for_each(|r| out(&r.from_port.unwrap_or(-1).to_string())),
            G::IpPermissionToPort | G::EgressIpPermissionToPort => rules
                .iter()
                .for_each(|r| out(&r.to_port.unwrap_or(-1).to_string())),
            G::IpPermissionProtocol | G::EgressIpPermissionProtocol => {
                rules.iter().for_each(|r| out(&r.protocol))
            }
            G::IpPermissionGroupId | G::EgressIpPermissionGroupId => rules
                .iter()
                .filter_map(|r| r.group_id.as_deref())
                .for_each(&mut *out),
            G::IpPermissionGroupName | G::EgressIpPermissionGroupName => rules
                .iter()
                .filter_map(|r| r.group_id.as_ref().and_then(|g| self.names.get(g)))
                .map(String::as_str)
                .for_each(&mut *out),
            G::IpPermissionUserId | G::EgressIpPermissionUserId => rules
                .iter()
                .filter(|r| r.group_id.is_some())
                .for_each(|_| out(self.owner)),
            G::IpPermissionPrefixListId | G::EgressIpPermissionPrefixListId => rules
                .iter()
                .filter_map(|r| r.prefix_list_id.as_deref())
                .for_each(&mut *out),
        }
    }
    fn tags(&self) -> &[(String, String)] {
        &self.t.tags
    }
}

/// DescribeSecurityGroups: its page before the lookups that precede its listing.
impl Checks for DescribeSecurityGroupsRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        checks::page(
            "DescribeSecurityGroups",
            self.max_results,
            self.next_token.as_deref(),
            (5, 1000),
        )
    }
}

pub fn describe_groups(
    store: &Store,
    ctx: &RequestContext,
    input: DescribeSecurityGroupsRequest,
) -> Result<DescribeSecurityGroupsResult, Ec2Error> {
    let fs = filters::compile::<GroupF>(input.filters, &[])?;
    let s = scope(ctx);
    let mut ids = input.group_ids.unwrap_or_default();
    let (page, next) = store
        .read(|v| {
            for name in input.group_names.iter().flatten() {
                ids.push(find(v, s, None, Some(name))?.id);
            }
            let names = crate::repo::eni::group_names(v, s)?;
            let req = describe::Request {
                op: "DescribeSecurityGroups",
                ids: &ids,
                not_found: &not_found,
                push: Push::filters(&fs, GroupF::GroupId, Some(GroupF::VpcId)),
                max_results: input.max_results,
                bounds: (5, 1000),
                next_token: input.next_token.as_deref(),
            };
            describe::run(v, s, &req, |t: &Tagged<SecurityGroupRecord>| {
                fs.matches(&GroupView {
                    t,
                    owner: &ctx.account_id,
                    names: &names,
                })
            })
        })
        .map_err(|f| f.0)?;
    Ok(DescribeSecurityGroupsResult {
        security_groups: Some(page.iter().map(|t| wire_group(ctx, t)).collect()),
        next_token: next,
    })
}

/// GetSecurityGroupsForVpc: its page before the VPC's lookup.
impl Checks for GetSecurityGroupsForVpcRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        checks::page(
            "GetSecurityGroupsForVpc",
            self.max_results,
            self.next_token.as_deref(),
            (5, 1000),
        )
    }
}

struct ForVpcView<'a>(&'a Tagged<SecurityGroupRecord>, &'a str);

impl Filterable<ForVpcF> for ForVpcView<'_> {
    fn field(&self, f: ForVpcF, out: &mut dyn FnMut(&str)) {
        let g = &self.0.item;
        match f {
            ForVpcF::Description => out(&g.description),
            ForVpcF::GroupId => out(&g.id),
            ForVpcF::GroupName => out(&g.name),
            ForVpcF::OwnerId => out(self.1),
            ForVpcF::PrimaryVpcId => out(&g.vpc_id),
        }
    }
    fn tags(&self) -> &[(String, String)] {
        &self.0.tags
    }
}

/// GetSecurityGroupsForVpc: the groups an interface in the VPC may use. Kumo serves no
/// AssociateSecurityGroupVpc, so these are the VPC's own groups.
pub fn groups_for_vpc(
    store: &Store,
    ctx: &RequestContext,
    input: GetSecurityGroupsForVpcRequest,
) -> Result<GetSecurityGroupsForVpcResult, Ec2Error> {
    let fs = filters::compile::<ForVpcF>(input.filters, &[])?;
    let s = scope(ctx);
    let (page, next) = store
        .read(|v| {
            crate::vpcs::get_vpc(v, s, &input.vpc_id)?;
            let req = describe::Request {
                op: "GetSecurityGroupsForVpc",
                ids: &[],
                not_found: &not_found,
                push: Push {
                    ids: fs.exact(ForVpcF::GroupId),
                    vpcs: Some(vec![input.vpc_id.as_str()]),
                    ..Push::default()
                },
                max_results: input.max_results,
                bounds: (5, 1000),
                next_token: input.next_token.as_deref(),
            };
            describe::run(v, s, &req, |t: &Tagged<SecurityGroupRecord>| {
                fs.matches(&ForVpcView(t, &ctx.account_id))
            })
        })
        .map_err(|f| f.0)?;
    Ok(GetSecurityGroupsForVpcResult {
        security_group_for_vpcs: Some(
            page.iter()
                .map(|t| SecurityGroupForVpc {
                    description: Some(t.item.description.clone()),
                    group_name: Some(t.item.name.clone()),
                    owner_id: Some(ctx.account_id.clone()),
                    group_id: Some(t.item.id.clone()),
                    tags: Some(tags::wire(&t.tags)),
                    primary_vpc_id: Some(t.item.vpc_id.clone()),
                })
                .collect(),
        ),
        next_token: next,
    })
}

struct RuleView<'a>(&'a SecurityGroupRule);

impl Filterable<RuleF> for RuleView<'_> {
    fn field(&self, f: RuleF, out: &mut dyn FnMut(&str)) {
        match f {
            RuleF::GroupId => self
                .0
                .group_id
                .iter()
                .map(String::as_str)
                .for_each(&mut *out),
            RuleF::SecurityGroupRuleId => self
                .0
                .security_group_rule_id
                .iter()
                .map(String::as_str)
                .for_each(&mut *out),
        }
    }
}

pub fn describe_rules(
    store: &Store,
    ctx: &RequestContext,
    input: DescribeSecurityGroupRulesRequest,
) -> Result<DescribeSecurityGroupRulesResult, Ec2Error> {
    let fs = filters::compile::<RuleF>(input.filters, &[])?;
    let limit = paging::max_results(input.max_results, 5, 1000)?;
    let after = paging::cursor("DescribeSecurityGroupRules", input.next_token.as_deref())?;
    let s = scope(ctx);
    let groups: Vec<SecurityGroupRecord> = store
        .read(|v| {
            let ids = fs.exact(RuleF::GroupId);
            v.list(
                s,
                &Query {
                    ids: ids.as_deref(),
                    ..Query::default()
                },
            )
            .map_err(Fail::from)
        })
        .map_err(|f| f.0)?;
    let mut rules: Vec<SecurityGroupRule> = groups
        .iter()
        .flat_map(|g| {
            g.ingress
                .iter()
                .map(move |r| wire_rule(ctx, &g.id, false, r))
                .chain(g.egress.iter().map(move |r| wire_rule(ctx, &g.id, true, r)))
        })
        .collect();
    rules.sort_by(|a, b| a.security_group_rule_id.cmp(&b.security_group_rule_id));
    let wanted = input.security_group_rule_ids.unwrap_or_default();
    if let Some(missing) = wanted.iter().find(|w| {
        !rules
            .iter()
            .any(|r| r.security_group_rule_id.as_deref() == Some(w.as_str()))
    }) {
        return Err(Ec2Error::new(
            "InvalidSecurityGroupRuleId.NotFound",
            format!("The security group rule ID '{missing}' does not exist"),
        ));
    }
    let rules: Vec<SecurityGroupRule> = rules
        .into_iter()
        .filter(|r| {
            wanted.is_empty()
                || wanted
                    .iter()
                    .any(|w| r.security_group_rule_id.as_deref() == Some(w.as_str()))
        })
        .filter(|r| {
            after
                .as_deref()
                .is_none_or(|a| r.security_group_rule_id.as_deref().unwrap_or("") > a)
        })
        .filter(|r| fs.matches(&RuleView(r)))
        .collect();
    let (page, next) = paging::page(rules, limit, "DescribeSecurityGroupRules", |r| {
        r.security_group_rule_id.clone().unwrap_or_default()
    });
    if ctx.dry_run {
        return Err(Ec2Error::dry_run());
    }
    Ok(DescribeSecurityGroupRulesResult {
        security_group_rules: Some(page),
        next_token: next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_rules_count_against_both_families() {
        let rule = |cidr: Option<&str>, v6: Option<&str>, group: Option<&str>| SgRule {
            id: String::new(),
            protocol: "-1".into(),
            from_port: None,
            to_port: None,
            cidr: cidr.map(Into::into),
            cidr_ipv6: v6.map(Into::into),
            group_id: group.map(Into::into),
            group_owner: None,
            group_peering: None,
            prefix_list_id: None,
            description: None,
        };
        let rules = [
            rule(Some("10.0.0.0/8"), None, None),
            rule(None, Some("::/0"), None),
            rule(None, None, Some("sg-1")),
        ];
        assert_eq!(rule_counts(rules.iter(), &Weights::new()), (2, 2));
        // A prefix list weighs its maximum size, in its own family only.
        let lists = |id: &str| SgRule {
            prefix_list_id: Some(id.into()),
            ..rule(None, None, None)
        };
        let w: Weights = [
            ("pl-4".to_string(), ("IPv4".to_string(), 10)),
            ("pl-6".to_string(), ("IPv6".to_string(), 7)),
        ]
        .into();
        let rules = [lists("pl-4"), lists("pl-6"), rule(None, None, Some("sg-1"))];
        assert_eq!(rule_counts(rules.iter(), &w), (11, 8));
    }
}
