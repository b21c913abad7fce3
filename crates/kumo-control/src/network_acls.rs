//! Network ACLs: CreateNetworkAcl, DeleteNetworkAcl, the entries (Create, Replace, Delete)
//! and ReplaceNetworkAclAssociation. DescribeNetworkAcls is with the other read-only network
//! calls (`gateways.rs`).
//!
//! AWS's rules, from the API reference and the VPC quotas page:
//! - a rule number is 1 to 32766 (32767 is the `*` rule, which is always there and cannot be
//!   changed); one entry per (rule number, direction);
//! - the protocol is a number (`-1` for all): the AWS CLI turns `tcp`, `udp`, `icmp` and `all`
//!   into numbers before it sends them, and the API refuses names;
//! - TCP and UDP need a port range, ICMP a type and code;
//! - an ACL holds 20 rules per direction, the `*` rule included, so 19 of one's own;
//! - a VPC holds 200 network ACLs;
//! - every subnet is associated with exactly one ACL, the VPC's default one until
//!   ReplaceNetworkAclAssociation moves it; the default ACL cannot be deleted, nor an ACL
//!   that subnets use.
//!
//! A change to entries or associations re-renders the VPC's firewall before the call answers,
//! so the next packet meets the new rules (`kumo_compute::firewall`).

use crate::core::checks::Checks;
use crate::core::error::Fail;
use crate::core::idempotency;
use crate::core::ids::new_id;
use crate::firewall_sync::Reach;
use crate::records::net::{AclAssociation, AclEntry, NetworkAclRecord, SubnetRecord};
use crate::tags;
use crate::vpcs::get_vpc;
use crate::{scope, Kumo};
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_model::cidr::Cidr;
use kumo_store::{Query, Read, Scope};

/// Entries per direction, the `*` rule included (AWS's quota L-2AEEBF1A).
pub const ENTRIES_PER_DIRECTION: usize = 20;
/// Network ACLs per VPC (AWS's quota L-B4A6D682).
pub const ACLS_PER_VPC: usize = 200;

pub(crate) fn not_found(id: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidNetworkAclID.NotFound",
        format!("The networkAcl ID '{id}' does not exist"),
    )
}

fn get_acl<V: Read>(v: &V, s: Scope, id: &str) -> Result<NetworkAclRecord, Fail> {
    v.get::<NetworkAclRecord>(s, id)?
        .ok_or_else(|| Fail(not_found(id)))
}

/// An entry as the request gives it, checked: the parts both CreateNetworkAclEntry and
/// ReplaceNetworkAclEntry carry.
struct Entry<'a> {
    rule_number: i32,
    egress: bool,
    protocol: &'a str,
    action: &'a str,
    cidr: Option<&'a str>,
    ipv6_cidr: Option<&'a str>,
    icmp: Option<&'a IcmpTypeCode>,
    ports: Option<&'a PortRange>,
}

impl Entry<'_> {
    /// Phase 1: a CIDR, and not two.
    fn required(&self) -> Result<(), Ec2Error> {
        match (self.cidr, self.ipv6_cidr) {
            (Some(_), Some(_)) => Err(Ec2Error::new(
                "InvalidParameterCombination",
                "The parameter cidrBlock cannot be used with the parameter ipv6CidrBlock",
            )),
            (None, None) => Err(Ec2Error::missing_parameter("cidrBlock or ipv6CidrBlock")),
            _ => Ok(()),
        }
    }

    /// Phase 2: the rule number, the protocol, the CIDR, and the ports or ICMP type the
    /// protocol needs.
    fn formats(&self) -> Result<(), Ec2Error> {
        rule_number(self.rule_number)?;
        let number = protocol_number(self.protocol)?;
        if let Some(c) = self.cidr {
            if Cidr::parse(c).is_err() {
                return Err(Ec2Error::invalid_value(format!(
                    "CIDR block {c} is malformed"
                )));
            }
        }
        if let Some(c) = self.ipv6_cidr {
            let ok = c.split_once('/').is_some_and(|(a, n)| {
                a.parse::<std::net::Ipv6Addr>().is_ok() && n.parse::<u8>().is_ok_and(|n| n <= 128)
            });
            if !ok {
                return Err(Ec2Error::invalid_value(format!(
                    "CIDR block {c} is malformed"
                )));
            }
        }
        match number {
            6 | 17 => {
                let p = self.ports;
                let from = p.and_then(|p| p.from);
                let to = p.and_then(|p| p.to);
                let (Some(from), Some(to)) = (from, to) else {
                    let missing = if from.is_none() { "from" } else { "to" };
                    return Err(Ec2Error::missing_parameter(&format!("portRange.{missing}")));
                };
                if !(0..=65535).contains(&from) || !(0..=65535).contains(&to) || from > to {
                    return Err(Ec2Error::invalid_value(format!(
                        "Invalid port range {from}-{to}: ports are 0 to 65535, from no greater than to"
                    )));
                }
            }
            // ICMP, and ICMPv6 for an IPv6 CIDR (for an IPv4 one AWS allows every type).
            1 | 58 if number == 1 || self.ipv6_cidr.is_some() => {
                let t = self.icmp.and_then(|i| i.r#type);
                let c = self.icmp.and_then(|i| i.code);
                let (Some(t), Some(c)) = (t, c) else {
                    let missing = if t.is_none() { "type" } else { "code" };
                    return Err(Ec2Error::missing_parameter(&format!(
                        "icmpTypeCode.{missing}"
                    )));
                };
                if !(-1..=255).contains(&t) || !(-1..=255).contains(&c) {
                    return Err(Ec2Error::invalid_value(format!(
                        "Invalid ICMP type {t} or code {c}: each is -1 (any) or 0 to 255"
                    )));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The entry to store: ports only for TCP and UDP and the
    /// ICMP type only for ICMP, as AWS ignores (and does not show) the others.
    fn record(&self) -> AclEntry {
        let number = protocol_number(self.protocol).unwrap_or(-1);
        AclEntry {
            rule_number: self.rule_number,
            egress: self.egress,
            protocol: number.to_string(),
            action: self.action.to_string(),
            cidr: self.cidr.map(str::to_string),
            ipv6_cidr: self.ipv6_cidr.map(|c| c.to_ascii_lowercase()),
            icmp: match number {
                1 | 58 => self
                    .icmp
                    .and_then(|i| Some((i.r#type?, i.code.unwrap_or(-1)))),
                _ => None,
            },
            ports: match number {
                6 | 17 => self.ports.and_then(|p| Some((p.from?, p.to?))),
                _ => None,
            },
        }
    }
}

/// A rule number of one's own: 1 to 32766 (32767 is the `*` rule), AWS's answer otherwise.
fn rule_number(n: i32) -> Result<(), Ec2Error> {
    if (1..=32766).contains(&n) {
        return Ok(());
    }
    Err(Ec2Error::invalid_value(format!(
        "Value ({n}) for parameter ruleNumber is invalid. Rulenumber must be in range 1..32766"
    )))
}

/// A protocol as the API takes it: `-1` or a number from 0 to 255.
fn protocol_number(p: &str) -> Result<i32, Ec2Error> {
    match p.trim().parse::<i32>() {
        Ok(n) if n == -1 || (0..=255).contains(&n) => Ok(n),
        _ => Err(Ec2Error::invalid_value(format!(
            "Invalid value '{p}' for IP protocol. Unknown protocol."
        ))),
    }
}

macro_rules! entry_of {
    ($r:expr) => {
        Entry {
            rule_number: $r.rule_number,
            egress: $r.egress,
            protocol: &$r.protocol,
            action: &$r.rule_action,
            cidr: $r.cidr_block.as_deref(),
            ipv6_cidr: $r.ipv6_cidr_block.as_deref(),
            icmp: $r.icmp_type_code.as_ref(),
            ports: $r.port_range.as_ref(),
        }
    };
}

impl Checks for CreateNetworkAclEntryRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        entry_of!(self).required()
    }
    fn formats(&self) -> Result<(), Ec2Error> {
        entry_of!(self).formats()
    }
}

impl Checks for ReplaceNetworkAclEntryRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        entry_of!(self).required()
    }
    fn formats(&self) -> Result<(), Ec2Error> {
        entry_of!(self).formats()
    }
}

impl Checks for DeleteNetworkAclEntryRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        rule_number(self.rule_number)
    }
}

impl Checks for CreateNetworkAclRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        idempotency::check_token(self.client_token.as_deref())?;
        tags::from_specifications(self.tag_specifications.clone(), "network-acl").map(drop)
    }
}

impl Checks for DeleteNetworkAclRequest {}
impl Checks for ReplaceNetworkAclAssociationRequest {}

/// The ACL as the wire shows it: its entries outbound then inbound, each in rule-number
/// order and ending with the `*` rule, and the subnets associated with it.
pub(crate) fn wire(
    ctx: &RequestContext,
    a: &NetworkAclRecord,
    tag_pairs: &[(String, String)],
    subnets: &[SubnetRecord],
) -> NetworkAcl {
    let wire_entry = |e: &AclEntry| NetworkAclEntry {
        rule_number: Some(e.rule_number),
        egress: Some(e.egress),
        protocol: Some(e.protocol.clone()),
        rule_action: Some(e.action.clone()),
        cidr_block: e.cidr.clone(),
        ipv6_cidr_block: e.ipv6_cidr.clone(),
        icmp_type_code: e.icmp.map(|(t, c)| IcmpTypeCode {
            r#type: Some(t),
            code: Some(c),
        }),
        port_range: e.ports.map(|(f, t)| PortRange {
            from: Some(f),
            to: Some(t),
        }),
    };
    let mut entries = Vec::new();
    for egress in [true, false] {
        let mut mine: Vec<&AclEntry> = a.entries.iter().filter(|e| e.egress == egress).collect();
        mine.sort_by_key(|e| e.rule_number);
        entries.extend(mine.into_iter().map(wire_entry));
        entries.push(NetworkAclEntry {
            rule_number: Some(32767),
            egress: Some(egress),
            protocol: Some("-1".into()),
            rule_action: Some("deny".into()),
            cidr_block: Some("0.0.0.0/0".into()),
            ..NetworkAclEntry::default()
        });
        // The `*` rule for IPv6, once the VPC has an IPv6 block (AWS's API numbers it 32767
        // too).
        if a.ipv6 {
            entries.push(NetworkAclEntry {
                rule_number: Some(32767),
                egress: Some(egress),
                protocol: Some("-1".into()),
                rule_action: Some("deny".into()),
                ipv6_cidr_block: Some("::/0".into()),
                ..NetworkAclEntry::default()
            });
        }
    }
    NetworkAcl {
        network_acl_id: Some(a.id.clone()),
        vpc_id: Some(a.vpc_id.clone()),
        is_default: Some(a.is_default),
        owner_id: Some(ctx.account_id.clone()),
        entries: Some(entries),
        associations: Some(
            subnets
                .iter()
                .filter(|sn| sn.uses_acl(a))
                .map(|sn| {
                    let assoc = sn.acl_of(&a.id);
                    NetworkAclAssociation {
                        network_acl_association_id: Some(assoc.id),
                        network_acl_id: Some(a.id.clone()),
                        subnet_id: Some(sn.id.clone()),
                    }
                })
                .collect(),
        ),
        tags: Some(tags::wire(tag_pairs)),
    }
}

fn vpc_subnets<V: Read>(v: &V, s: Scope, vpc: &str) -> Result<Vec<SubnetRecord>, Fail> {
    Ok(v.list(
        s,
        &Query {
            vpcs: Some(&[vpc]),
            ..Query::default()
        },
    )?)
}

pub fn create(
    k: &Kumo,
    ctx: &RequestContext,
    input: CreateNetworkAclRequest,
) -> Result<CreateNetworkAclResult, Ec2Error> {
    let digest = idempotency::digest(&input);
    let token = input.client_token.as_deref();
    let tag_list = tags::from_specifications(input.tag_specifications.clone(), "network-acl")?;
    let s = scope(ctx);
    let (rec, pairs) = k
        .store
        .write(!ctx.dry_run, |tx| {
            if let Some(id) = idempotency::earlier(tx, s, "CreateNetworkAcl", token, &digest)? {
                return Ok((get_acl(tx, s, &id)?, tx.tags_of(s, &id)?));
            }
            let vpc = get_vpc(tx, s, &input.vpc_id)?;
            let existing: Vec<NetworkAclRecord> = tx.list(
                s,
                &Query {
                    vpcs: Some(&[vpc.id.as_str()]),
                    limit: Some(ACLS_PER_VPC + 1),
                    ..Query::default()
                },
            )?;
            if existing.len() >= ACLS_PER_VPC {
                return Err(Fail(Ec2Error::new(
                    "NetworkAclLimitExceeded",
                    format!(
                        "You have reached the limit of {ACLS_PER_VPC} network ACLs for the VPC '{}'.",
                        vpc.id
                    ),
                )));
            }
            let rec = NetworkAclRecord {
                id: new_id("acl"),
                vpc_id: vpc.id.clone(),
                is_default: false,
                entries: Vec::new(),
                ipv6: !vpc.ipv6.is_empty(),
            };
            tx.insert(s, &rec)?;
            tags::put_all(tx, s, &rec.id, "network-acl", &tag_list)?;
            idempotency::remember(tx, s, "CreateNetworkAcl", token, &digest, &rec.id)?;
            Ok::<_, Fail>((rec, tags::wire_pairs(&tag_list)))
        })
        .map_err(|f| f.0)?;
    let subnets = k
        .store
        .read(|v| vpc_subnets(v, s, &rec.vpc_id))
        .map_err(|f| f.0)?;
    Ok(CreateNetworkAclResult {
        network_acl: Some(wire(ctx, &rec, &pairs, &subnets)),
        client_token: input.client_token,
    })
}

pub fn delete(
    k: &Kumo,
    ctx: &RequestContext,
    input: DeleteNetworkAclRequest,
) -> Result<(), Ec2Error> {
    let s = scope(ctx);
    k.store
        .write(!ctx.dry_run, |tx| {
            let acl = get_acl(tx, s, &input.network_acl_id)?;
            if acl.is_default {
                return Err(Fail(Ec2Error::invalid_value(format!(
                    "cannot delete default network ACL {}",
                    acl.id
                ))));
            }
            if vpc_subnets(tx, s, &acl.vpc_id)?
                .iter()
                .any(|sn| sn.uses_acl(&acl))
            {
                return Err(Fail(Ec2Error::new(
                    "DependencyViolation",
                    format!(
                        "The networkAcl '{}' has dependencies and cannot be deleted.",
                        acl.id
                    ),
                )));
            }
            tx.delete::<NetworkAclRecord>(s, &acl.id)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)
}

/// The ACL's VPC is re-rendered once the change is committed (not for a dry run).
fn rerender(k: &Kumo, ctx: &RequestContext, vpc: String) {
    if !ctx.dry_run {
        k.sync_firewall(ctx, Reach::Vpcs([vpc].into()));
    }
}

/// AWS's answer to an entry that is not there.
fn entry_missing(egress: bool, number: i32) -> Fail {
    let dir = if egress { "egress" } else { "ingress" };
    Fail(Ec2Error::new(
        "InvalidNetworkAclEntry.NotFound",
        format!("no {dir} entry with number {number}"),
    ))
}

/// Writes an entry: a new one (`replace` false) or in place of the one with its number.
fn put_entry(
    k: &Kumo,
    ctx: &RequestContext,
    acl_id: &str,
    e: Entry<'_>,
    replace: bool,
) -> Result<(), Ec2Error> {
    let s = scope(ctx);
    let vpc = k
        .store
        .write(!ctx.dry_run, |tx| {
            let mut acl = get_acl(tx, s, acl_id)?;
            let same = |x: &AclEntry| x.rule_number == e.rule_number && x.egress == e.egress;
            let at = acl.entries.iter().position(same);
            match (at, replace) {
                (Some(_), false) => {
                    return Err(Fail(Ec2Error::new(
                        "NetworkAclEntryAlreadyExists",
                        format!(
                            "The network acl entry identified by {} already exists.",
                            e.rule_number
                        ),
                    )))
                }
                (None, true) => return Err(entry_missing(e.egress, e.rule_number)),
                _ => {}
            }
            let new = e.record();
            match at {
                Some(i) => acl.entries[i] = new,
                None => {
                    // The quota counts each direction, and IPv4 and IPv6 apart, with the `*`
                    // rule.
                    let v6 = new.ipv6_cidr.is_some();
                    let kin = acl
                        .entries
                        .iter()
                        .filter(|x| x.egress == e.egress && x.ipv6_cidr.is_some() == v6)
                        .count();
                    if kin + 1 >= ENTRIES_PER_DIRECTION {
                        return Err(Fail(Ec2Error::new(
                            "NetworkAclEntryLimitExceeded",
                            format!(
                                "The maximum number of {} entries ({ENTRIES_PER_DIRECTION}, the default rule included) has been reached for the network ACL '{}'.",
                                if e.egress { "egress" } else { "ingress" },
                                acl.id
                            ),
                        )));
                    }
                    acl.entries.push(new);
                    acl.entries.sort_by_key(|x| (!x.egress, x.rule_number));
                }
            }
            tx.update(s, &acl)?;
            Ok(acl.vpc_id)
        })
        .map_err(|f: Fail| f.0)?;
    rerender(k, ctx, vpc);
    Ok(())
}

pub fn create_entry(
    k: &Kumo,
    ctx: &RequestContext,
    input: CreateNetworkAclEntryRequest,
) -> Result<(), Ec2Error> {
    put_entry(k, ctx, &input.network_acl_id, entry_of!(input), false)
}

pub fn replace_entry(
    k: &Kumo,
    ctx: &RequestContext,
    input: ReplaceNetworkAclEntryRequest,
) -> Result<(), Ec2Error> {
    put_entry(k, ctx, &input.network_acl_id, entry_of!(input), true)
}

pub fn delete_entry(
    k: &Kumo,
    ctx: &RequestContext,
    input: DeleteNetworkAclEntryRequest,
) -> Result<(), Ec2Error> {
    let s = scope(ctx);
    let vpc = k
        .store
        .write(!ctx.dry_run, |tx| {
            let mut acl = get_acl(tx, s, &input.network_acl_id)?;
            let before = acl.entries.len();
            acl.entries
                .retain(|x| !(x.rule_number == input.rule_number && x.egress == input.egress));
            if acl.entries.len() == before {
                return Err(entry_missing(input.egress, input.rule_number));
            }
            tx.update(s, &acl)?;
            Ok(acl.vpc_id)
        })
        .map_err(|f: Fail| f.0)?;
    rerender(k, ctx, vpc);
    Ok(())
}

pub fn replace_association(
    k: &Kumo,
    ctx: &RequestContext,
    input: ReplaceNetworkAclAssociationRequest,
) -> Result<ReplaceNetworkAclAssociationResult, Ec2Error> {
    let s = scope(ctx);
    let (new, vpc) = k
        .store
        .write(!ctx.dry_run, |tx| {
            let subnets: Vec<SubnetRecord> = tx.list(s, &Query::default())?;
            // A derived association id does not depend on the ACL, only on the subnet.
            let Some(mut sn) = subnets
                .into_iter()
                .find(|sn| sn.acl_of("").id == input.association_id)
            else {
                return Err(Fail(Ec2Error::new(
                    "InvalidAssociationID.NotFound",
                    format!(
                        "The association ID '{}' does not exist",
                        input.association_id
                    ),
                )));
            };
            let acl = get_acl(tx, s, &input.network_acl_id)?;
            if acl.vpc_id != sn.vpc_id {
                return Err(Fail(Ec2Error::invalid_value(format!(
                    "Network ACL {} and association {} belong to different networks",
                    acl.id, input.association_id
                ))));
            }
            let assoc = AclAssociation {
                id: new_id("aclassoc"),
                network_acl_id: acl.id.clone(),
            };
            sn.acl = Some(assoc.clone());
            tx.update(s, &sn)?;
            Ok((assoc.id, sn.vpc_id))
        })
        .map_err(|f: Fail| f.0)?;
    rerender(k, ctx, vpc);
    Ok(ReplaceNetworkAclAssociationResult {
        new_association_id: Some(new),
    })
}
