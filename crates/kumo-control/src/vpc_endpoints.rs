//! VPC endpoints to the services Kumo stands behind, and the region's AWS-managed prefix lists.
//!
//! - An **interface endpoint** (`ec2`, `ssm`, `ssmmessages`, `ec2messages`, `sts`,
//!   `monitoring`) is a requester-managed network interface in each of its subnets (one per
//!   Availability Zone: `DuplicateSubnetsInSameZone`), with the endpoint's security groups (the
//!   VPC's default group when none is given). Kumo serves its own API over HTTPS on each
//!   interface's address inside the VPC's namespace, and the VPC resolver answers the
//!   endpoint's DNS names (`vpce-<id>-<tag>.ec2.<region>.vpce.amazonaws.com`, a zonal name per
//!   subnet) and, with private DNS on (the default), the service's own name
//!   (`ec2.<region>.amazonaws.com`) with those addresses. Private DNS needs the VPC's
//!   `enableDnsSupport` and `enableDnsHostnames`, and one endpoint per service and VPC.
//!   New ones are `pending` for the transition delay, then `available`.
//! - A **gateway endpoint** (`s3`, `dynamodb`) adds a route to the service's prefix list
//!   through it to each of its route tables, and is `available` at once. Kumo serves neither
//!   service, so nothing answers behind the route.
//! - A deleted endpoint takes its routes and interfaces with it and is shown `deleted` for ten
//!   minutes.
//!
//! AWS's texts are from real answers quoted in public reports (see the design's list of
//! unconfirmed codes for the ones that are not).

use crate::core::checks::Checks;
use crate::core::describe::{self, Push};
use crate::core::error::Fail;
use crate::core::filters;
use crate::core::idempotency;
use crate::core::ids::new_id;
use crate::enis::{self, NewEni, Want};
use crate::firewall_sync::Reach;
use crate::records::net::{
    EndpointSubnet, EniRecord, RouteEntry, RouteTableRecord, SecurityGroupRecord, SubnetRecord,
    VpcEndpointRecord,
};
use crate::tags::{self, Tagged};
use crate::{scope, Kumo};
use kumo_ec2_wire::filters::{
    DescribePrefixLists as PlF, DescribeVpcEndpointServices as SvcF, DescribeVpcEndpoints as F,
};
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{DateTime, Ec2Error, RequestContext};
use kumo_model::filter::Filterable;
use kumo_store::{Query, Read, Scope, Tx};
use std::collections::BTreeSet;

const DELETED_SHOWN_MS: i64 = 600_000;
/// The owner AWS shows for the interfaces it manages for endpoints.
const REQUESTER: &str = "727180483921";
/// The default policy of a gateway endpoint, as AWS returns it.
const GATEWAY_POLICY: &str = r#"{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}"#;
/// The default policy of an interface endpoint, as AWS returns it.
const INTERFACE_POLICY: &str = "{\n  \"Statement\": [\n    {\n      \"Action\": \"*\", \n      \"Effect\": \"Allow\", \n      \"Principal\": \"*\", \n      \"Resource\": \"*\"\n    }\n  ]\n}";
/// The hosted zone of the endpoints' regional and zonal names (us-east-1's, as AWS shows it).
const VPCE_ZONE: &str = "Z7HUB22UULQXV";

/// A service Kumo stands behind in every region: its short name and endpoint type.
const SERVICES: &[(&str, &str)] = &[
    ("dynamodb", "Gateway"),
    ("ec2", "Interface"),
    ("ec2messages", "Interface"),
    ("monitoring", "Interface"),
    ("s3", "Gateway"),
    ("ssm", "Interface"),
    ("ssmmessages", "Interface"),
    ("sts", "Interface"),
];

/// The AWS-managed prefix list of a gateway service: its id and CIDRs.
fn prefix_list(region: &str, short: &str) -> (String, Vec<String>) {
    let p = crate::repo::prefix_list::aws_managed(region, short);
    let cidrs = p.entries().iter().map(|e| e.cidr.clone()).collect();
    (p.id, cidrs)
}

fn service_name(region: &str, short: &str) -> String {
    format!("com.amazonaws.{region}.{short}")
}

/// The service of a full name in this region: (short name, endpoint type).
fn find_service(region: &str, name: &str) -> Option<(&'static str, &'static str)> {
    SERVICES
        .iter()
        .find(|(short, _)| service_name(region, short) == name)
        .copied()
}

fn invalid(msg: impl Into<String>) -> Ec2Error {
    Ec2Error::new("InvalidParameter", msg)
}

fn no_service(name: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidServiceName",
        format!("The Vpc Endpoint Service '{name}' does not exist"),
    )
}

pub fn not_found(id: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidVpcEndpointId.NotFound",
        format!("The Vpc Endpoint Id '{id}' does not exist"),
    )
}

/// An endpoint of the scope, not deleted.
fn get_endpoint<V: Read>(v: &V, s: Scope, id: &str) -> Result<VpcEndpointRecord, Fail> {
    v.get::<VpcEndpointRecord>(s, id)?
        .filter(|e| e.deleted_ms.is_none())
        .ok_or_else(|| Fail(not_found(id)))
}

fn shown(e: &VpcEndpointRecord, now: i64) -> bool {
    e.deleted_ms.is_none_or(|d| now < d + DELETED_SHOWN_MS)
}

fn state(e: &VpcEndpointRecord, now: i64, delay: i64) -> &'static str {
    match e.deleted_ms {
        Some(d) if now < d + delay => "deleting",
        Some(_) => "deleted",
        None if e.endpoint_type == "Interface" && now < e.created_ms + delay => "pending",
        None => "available",
    }
}

/// Eight lowercase letters and digits, as AWS puts after the id in an endpoint's names.
fn dns_tag() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let hex = new_id("x");
    let mut n = u64::from_str_radix(&hex[hex.len() - 15..], 16).unwrap_or(0);
    (0..8)
        .map(|_| {
            let c = ALPHABET[(n % 36) as usize] as char;
            n /= 36;
            c
        })
        .collect()
}

fn wire(
    ctx: &RequestContext,
    groups: &[(String, String)],
    t: &Tagged<VpcEndpointRecord>,
    enis: &[String],
    now: i64,
    delay: i64,
) -> VpcEndpoint {
    let e = &t.item;
    let interface = e.endpoint_type == "Interface";
    let mut dns = Vec::new();
    if interface && e.deleted_ms.is_none() {
        for (name, _) in e.own_names(&ctx.region) {
            dns.push(DnsEntry {
                dns_name: Some(name),
                hosted_zone_id: Some(VPCE_ZONE.into()),
            });
        }
        if e.private_dns {
            dns.push(DnsEntry {
                dns_name: Some(VpcEndpointRecord::private_name(&ctx.region, e.short())),
                hosted_zone_id: Some("ZONEIDPENDING".into()),
            });
        }
    }
    VpcEndpoint {
        vpc_endpoint_id: Some(e.id.clone()),
        vpc_endpoint_type: Some(e.endpoint_type.clone()),
        vpc_id: Some(e.vpc_id.clone()),
        service_name: Some(e.service_name.clone()),
        state: Some(state(e, now, delay).into()),
        policy_document: Some(e.policy.clone()),
        route_table_ids: Some(e.route_tables.clone()),
        subnet_ids: Some(e.subnets.iter().map(|x| x.subnet_id.clone()).collect()),
        groups: Some(
            groups
                .iter()
                .map(|(id, name)| SecurityGroupIdentifier {
                    group_id: Some(id.clone()),
                    group_name: Some(name.clone()),
                })
                .collect(),
        ),
        ip_address_type: Some("ipv4".into()),
        dns_options: interface.then(|| DnsOptions {
            dns_record_ip_type: Some("ipv4".into()),
            private_dns_only_for_inbound_resolver_endpoint: Some(false),
            ..DnsOptions::default()
        }),
        private_dns_enabled: Some(e.private_dns),
        requester_managed: Some(false),
        network_interface_ids: Some(enis.to_vec()),
        dns_entries: Some(dns),
        creation_timestamp: Some(DateTime(e.created_ms)),
        tags: Some(tags::wire(&t.tags)),
        owner_id: Some(ctx.account_id.clone()),
        ..VpcEndpoint::default()
    }
}

/// The groups of an endpoint with their names, read for its answer.
fn group_names<V: Read>(
    v: &V,
    s: Scope,
    e: &VpcEndpointRecord,
) -> Result<Vec<(String, String)>, Fail> {
    let mut out = Vec::new();
    for g in &e.groups {
        let name = v
            .get::<SecurityGroupRecord>(s, g)?
            .map(|x| x.name)
            .unwrap_or_default();
        out.push((g.clone(), name));
    }
    Ok(out)
}

fn wire_read<V: Read>(
    v: &V,
    ctx: &RequestContext,
    t: &Tagged<VpcEndpointRecord>,
    now: i64,
    delay: i64,
) -> Result<VpcEndpoint, Fail> {
    let s = scope(ctx);
    let groups = if t.item.deleted_ms.is_none() {
        group_names(v, s, &t.item)?
    } else {
        Vec::new()
    };
    let enis: Vec<String> = if t.item.deleted_ms.is_none() {
        t.item.subnets.iter().map(|x| x.eni_id.clone()).collect()
    } else {
        Vec::new()
    };
    Ok(wire(ctx, &groups, t, &enis, now, delay))
}

/// The request's members that belong to the other type of endpoint, and the policy's form.
fn check_shape(
    kind: &str,
    subnets: bool,
    groups: bool,
    tables: bool,
    policy: Option<&str>,
) -> Result<(), Ec2Error> {
    if kind != "Interface" && kind != "GatewayLoadBalancer" && subnets {
        return Err(invalid(
            "Subnet IDs are only supported for Interface and GatewayLoadBalancer type VPC Endpoints.",
        ));
    }
    if kind != "Interface" && groups {
        return Err(invalid(
            "Security Group IDs are only supported for Interface type VPC Endpoints.",
        ));
    }
    if kind != "Gateway" && tables {
        return Err(invalid(
            "Route table IDs are only supported for Gateway type VPC Endpoint.",
        ));
    }
    if let Some(p) = policy {
        if serde_json::from_str::<serde_json::Value>(p)
            .map(|v| !v.is_object())
            .unwrap_or(true)
        {
            return Err(Ec2Error::new(
                "MalformedPolicy",
                "The policy document is not valid JSON.",
            ));
        }
    }
    Ok(())
}

/// CreateVpcEndpoint, before any lookup: a service name; then the members of the other type
/// of endpoint, the policy's form, the tags and the token. The VPC, the service (and its
/// type), the route tables, subnets and groups, and private DNS follow, in that order.
impl Checks for CreateVpcEndpointRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        if self.service_name.as_deref().unwrap_or("").is_empty() {
            return Err(Ec2Error::missing_parameter("ServiceName"));
        }
        Ok(())
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        let kind = self.vpc_endpoint_type.as_deref().unwrap_or("Gateway");
        check_shape(
            kind,
            self.subnet_ids.as_ref().is_some_and(|v| !v.is_empty()),
            self.security_group_ids
                .as_ref()
                .is_some_and(|v| !v.is_empty()),
            self.route_table_ids.as_ref().is_some_and(|v| !v.is_empty()),
            self.policy_document.as_deref(),
        )?;
        if let Some(t) = self.ip_address_type.as_deref() {
            if t != "ipv4" {
                return Err(invalid(format!(
                    "The VPC endpoint service {} does not support the IP address type {t}.",
                    self.service_name.as_deref().unwrap_or("")
                )));
            }
        }
        tags::from_specifications(self.tag_specifications.clone(), "vpc-endpoint")?;
        idempotency::check_token(self.client_token.as_deref())
    }
}

/// Adds the service's prefix-list route through the endpoint to each table of the VPC.
fn add_routes(
    tx: &Tx,
    s: Scope,
    vpc_id: &str,
    endpoint: &str,
    pl: &str,
    tables: &[String],
) -> Result<(), Fail> {
    for id in tables {
        let mut rtb: RouteTableRecord = tx.get(s, id)?.ok_or_else(|| {
            Fail(Ec2Error::new(
                "InvalidRouteTableID.NotFound",
                format!("The routeTable ID '{id}' does not exist"),
            ))
        })?;
        if rtb.vpc_id != vpc_id {
            return Err(Fail(invalid(format!(
                "route table {id} and VPC endpoint {endpoint} belong to different networks"
            ))));
        }
        if rtb.routes.iter().any(|r| r.destination == pl) {
            return Err(Fail(invalid(format!(
                "route table {id} already has a route with destination-prefix-list-id {pl}"
            ))));
        }
        rtb.routes.push(RouteEntry {
            destination: pl.to_string(),
            gateway_id: endpoint.to_string(),
            origin: "CreateRoute".into(),
        });
        tx.update(s, &rtb)?;
    }
    Ok(())
}

/// Takes the endpoint's route out of each table (a table since deleted has none).
fn remove_routes(tx: &Tx, s: Scope, endpoint: &str, tables: &[String]) -> Result<(), Fail> {
    for id in tables {
        if let Some(mut rtb) = tx.get::<RouteTableRecord>(s, id)? {
            rtb.routes.retain(|r| r.gateway_id != endpoint);
            tx.update(s, &rtb)?;
        }
    }
    Ok(())
}

/// The subnets an interface endpoint is to have interfaces in: each in the VPC, one per zone
/// (counting the ones it has).
fn check_subnets<V: Read>(
    v: &V,
    s: Scope,
    vpc_id: &str,
    have: &[EndpointSubnet],
    add: &[String],
) -> Result<Vec<SubnetRecord>, Fail> {
    let mut zones: Vec<(String, String)> = have
        .iter()
        .map(|x| (x.zone.clone(), x.subnet_id.clone()))
        .collect();
    let mut out = Vec::new();
    for id in add {
        if have.iter().any(|x| x.subnet_id == *id) || out.iter().any(|x: &SubnetRecord| x.id == *id)
        {
            continue;
        }
        let sub = crate::subnets::get_subnet(v, s, id)?;
        if sub.vpc_id != vpc_id {
            return Err(Fail(invalid(format!(
                "The subnet ID '{id}' does not belong to the VPC '{vpc_id}'"
            ))));
        }
        if let Some((_, other)) = zones.iter().find(|(z, _)| *z == sub.zone) {
            return Err(Fail(Ec2Error::new(
                "DuplicateSubnetsInSameZone",
                format!("Found another VPC endpoint subnet in the availability zone of {other}"),
            )));
        }
        zones.push((sub.zone.clone(), sub.id.clone()));
        out.push(sub);
    }
    Ok(out)
}

/// Private DNS for an interface endpoint: the VPC resolves and names hosts, and no other
/// endpoint of the VPC holds the service's name.
fn check_private_dns<V: Read>(
    v: &V,
    s: Scope,
    vpc: &crate::records::net::VpcRecord,
    service: &str,
    except: &str,
) -> Result<(), Fail> {
    if !(vpc.enable_dns_support && vpc.enable_dns_hostnames) {
        return Err(Fail(invalid(format!(
            "Enabling private DNS requires both enableDnsSupport and enableDnsHostnames VPC attributes set to true for {}",
            vpc.id
        ))));
    }
    let vpcs = [vpc.id.as_str()];
    let q = Query {
        vpcs: Some(&vpcs),
        ..Query::default()
    };
    let taken = v.list::<VpcEndpointRecord>(s, &q)?.into_iter().any(|e| {
        e.deleted_ms.is_none() && e.private_dns && e.service_name == service && e.id != except
    });
    if taken {
        return Err(Fail(invalid(format!(
            "private-dns-enabled cannot be set because there is already a conflicting DNS domain for {} in the VPC {}",
            VpcEndpointRecord::private_name(s.region, VpcEndpointRecord::short_of(service)),
            vpc.id
        ))));
    }
    Ok(())
}

/// Makes the endpoint's interface in each subnet; returns the allocators to commit.
fn add_interfaces(
    tx: &Tx,
    k: &Kumo,
    s: Scope,
    e: &mut VpcEndpointRecord,
    subnets: &[SubnetRecord],
) -> Result<Vec<(String, kumo_model::ipam::SubnetIps)>, Fail> {
    let mut allocators = Vec::new();
    for sub in subnets {
        let spec = NewEni {
            description: format!("VPC Endpoint Interface {}", e.id),
            interface_type: "vpc_endpoint".into(),
            groups: e.groups.clone(),
            requester_id: Some(REQUESTER.into()),
            attachment: None,
        };
        let (eni, ips) = enis::new_eni(tx, &k.net, s, sub, &Want::default(), spec)?;
        e.subnets.push(EndpointSubnet {
            subnet_id: sub.id.clone(),
            zone: sub.zone.clone(),
            eni_id: eni.id.clone(),
        });
        allocators.push((sub.id.clone(), ips));
    }
    Ok(allocators)
}

/// Deletes an endpoint's interface, giving its addresses back.
fn remove_interface(tx: &Tx, s: Scope, eni_id: &str) -> Result<(), Fail> {
    if tx.get::<EniRecord>(s, eni_id)?.is_some() {
        tx.release_owner(s, eni_id)?;
        tx.delete::<EniRecord>(s, eni_id)?;
    }
    Ok(())
}

fn sync(k: &Kumo, ctx: &RequestContext, vpc: &str) {
    k.sync_firewall(ctx, Reach::Vpcs(BTreeSet::from([vpc.to_string()])));
}

pub fn create(
    k: &Kumo,
    ctx: &RequestContext,
    input: CreateVpcEndpointRequest,
) -> Result<CreateVpcEndpointResult, Ec2Error> {
    let digest = idempotency::digest(&input);
    let token = input.client_token.clone();
    let tag_list = tags::from_specifications(input.tag_specifications.clone(), "vpc-endpoint")?;
    let s = scope(ctx);
    let (now, delay) = (k.now_ms(), k.options.transition_ms);
    let kind = input
        .vpc_endpoint_type
        .clone()
        .unwrap_or_else(|| "Gateway".into());
    let name = input.service_name.clone().unwrap_or_default();
    let (t, _) = k
        .store
        .write_then(
            !ctx.dry_run,
            |tx| {
                if let Some(id) =
                    idempotency::earlier(tx, s, "CreateVpcEndpoint", token.as_deref(), &digest)?
                {
                    let item: VpcEndpointRecord =
                        tx.get(s, &id)?.ok_or_else(|| Fail(not_found(&id)))?;
                    return Ok((Tagged { tags: tx.tags_of(s, &id)?, item }, Vec::new()));
                }
                let vpc = crate::vpcs::get_vpc(tx, s, &input.vpc_id)?;
                let Some((short, svc_kind)) = find_service(s.region, &name) else {
                    return Err(Fail(no_service(&name)));
                };
                if svc_kind != kind {
                    return Err(Fail(invalid(format!(
                        "The Vpc Endpoint Service '{name}' does not support the VPC endpoint type {kind}."
                    ))));
                }
                let interface = kind == "Interface";
                let mut e = VpcEndpointRecord {
                    id: new_id("vpce"),
                    vpc_id: vpc.id.clone(),
                    service_name: name.clone(),
                    endpoint_type: kind.clone(),
                    policy: input.policy_document.clone().unwrap_or_else(|| {
                        if interface { INTERFACE_POLICY } else { GATEWAY_POLICY }.to_string()
                    }),
                    route_tables: Vec::new(),
                    subnets: Vec::new(),
                    groups: Vec::new(),
                    private_dns: interface && input.private_dns_enabled.unwrap_or(true),
                    dns_tag: dns_tag(),
                    created_ms: now,
                    deleted_ms: None,
                };
                let mut allocators = Vec::new();
                if interface {
                    let subnets = check_subnets(
                        tx,
                        s,
                        &vpc.id,
                        &[],
                        input.subnet_ids.as_deref().unwrap_or_default(),
                    )?;
                    e.groups = enis::resolve_groups(
                        tx,
                        s,
                        &vpc,
                        input.security_group_ids.as_ref().filter(|g| !g.is_empty()),
                    )?;
                    if e.private_dns {
                        check_private_dns(tx, s, &vpc, &name, "")?;
                    }
                    allocators = add_interfaces(tx, k, s, &mut e, &subnets)?;
                } else {
                    let mut tables: Vec<String> = Vec::new();
                    for t in input.route_table_ids.iter().flatten() {
                        if !tables.contains(t) {
                            tables.push(t.clone());
                        }
                    }
                    let (pl, _) = prefix_list(s.region, short);
                    add_routes(tx, s, &vpc.id, &e.id, &pl, &tables)?;
                    e.route_tables = tables;
                }
                tx.insert(s, &e)?;
                tags::put_all(tx, s, &e.id, "vpc-endpoint", &tag_list)?;
                idempotency::remember(tx, s, "CreateVpcEndpoint", token.as_deref(), &digest, &e.id)?;
                Ok::<_, Fail>((
                    Tagged {
                        item: e,
                        tags: tags::wire_pairs(&tag_list),
                    },
                    allocators,
                ))
            },
            |(_, allocators)| {
                for (subnet, a) in allocators.iter() {
                    k.net.commit(s, subnet, a);
                }
            },
        )
        .map_err(|f| f.0)?;
    if !ctx.dry_run && t.item.endpoint_type == "Interface" {
        sync(k, ctx, &t.item.vpc_id);
    }
    let mut out = k
        .store
        .read(|v| wire_read(v, ctx, &t, now, delay))
        .map_err(|f: Fail| f.0)?;
    // CreateVpcEndpoint reports a new interface endpoint as pending; it is available by the
    // next call once the transition delay has passed. A replay shows it as it is.
    if t.item.endpoint_type == "Interface" && t.item.created_ms == now {
        out.state = Some("pending".into());
    }
    Ok(CreateVpcEndpointResult {
        vpc_endpoint: Some(out),
        client_token: input.client_token,
    })
}

/// ModifyVpcEndpoint, before any lookup: the policy's form. The endpoint, then what it adds
/// and removes (of its own type), then private DNS follow.
impl Checks for ModifyVpcEndpointRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        if let Some(p) = self.policy_document.as_deref() {
            check_shape("Interface", false, false, false, Some(p))?;
        }
        if self.reset_policy == Some(true) && self.policy_document.is_some() {
            return Err(Ec2Error::new(
                "InvalidParameterCombination",
                "The parameters PolicyDocument and ResetPolicy cannot be used together.",
            ));
        }
        Ok(())
    }
}

pub fn modify(
    k: &Kumo,
    ctx: &RequestContext,
    input: ModifyVpcEndpointRequest,
) -> Result<ModifyVpcEndpointResult, Ec2Error> {
    let s = scope(ctx);
    let nonempty = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|x| !x.is_empty());
    let (vpc_id, _) = k
        .store
        .write_then(
            !ctx.dry_run,
            |tx| {
                let mut e = get_endpoint(tx, s, &input.vpc_endpoint_id)?;
                check_shape(
                    &e.endpoint_type,
                    nonempty(&input.add_subnet_ids) || nonempty(&input.remove_subnet_ids),
                    nonempty(&input.add_security_group_ids)
                        || nonempty(&input.remove_security_group_ids),
                    nonempty(&input.add_route_table_ids) || nonempty(&input.remove_route_table_ids),
                    None,
                )?;
                let vpc = crate::vpcs::get_vpc(tx, s, &e.vpc_id)?;
                if input.private_dns_enabled.is_some() && e.endpoint_type != "Interface" {
                    return Err(Fail(invalid(
                        "Private DNS can only be enabled for Interface type VPC Endpoints.",
                    )));
                }
                if let Some(p) = &input.policy_document {
                    e.policy = p.clone();
                }
                if input.reset_policy == Some(true) {
                    e.policy = if e.endpoint_type == "Interface" {
                        INTERFACE_POLICY
                    } else {
                        GATEWAY_POLICY
                    }
                    .to_string();
                }
                let mut allocators = Vec::new();
                let mut freed = Vec::new();
                if e.endpoint_type == "Gateway" {
                    let (pl, _) = prefix_list(s.region, e.short());
                    let remove: Vec<String> =
                        input.remove_route_table_ids.clone().unwrap_or_default();
                    remove_routes(tx, s, &e.id, &remove)?;
                    e.route_tables.retain(|t| !remove.contains(t));
                    let add: Vec<String> = input
                        .add_route_table_ids
                        .iter()
                        .flatten()
                        .filter(|t| !e.route_tables.contains(t))
                        .cloned()
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect();
                    add_routes(tx, s, &e.vpc_id, &e.id, &pl, &add)?;
                    e.route_tables.extend(add);
                } else {
                    if let Some(add) = &input.add_security_group_ids {
                        enis::resolve_groups(tx, s, &vpc, Some(add))?;
                        for g in add {
                            if !e.groups.contains(g) {
                                e.groups.push(g.clone());
                            }
                        }
                    }
                    if let Some(remove) = &input.remove_security_group_ids {
                        e.groups.retain(|g| !remove.contains(g));
                        if e.groups.is_empty() {
                            return Err(Fail(invalid(
                                "A VPC endpoint must have at least one security group.",
                            )));
                        }
                    }
                    let remove: Vec<String> = input.remove_subnet_ids.clone().unwrap_or_default();
                    for sub in e.subnets.iter().filter(|x| remove.contains(&x.subnet_id)) {
                        remove_interface(tx, s, &sub.eni_id)?;
                        freed.push(sub.subnet_id.clone());
                    }
                    e.subnets.retain(|x| !remove.contains(&x.subnet_id));
                    let subnets = check_subnets(
                        tx,
                        s,
                        &e.vpc_id,
                        &e.subnets,
                        input.add_subnet_ids.as_deref().unwrap_or_default(),
                    )?;
                    allocators = add_interfaces(tx, k, s, &mut e, &subnets)?;
                    // The interfaces carry the endpoint's groups.
                    for sub in &e.subnets {
                        if let Some(mut eni) = tx.get::<EniRecord>(s, &sub.eni_id)? {
                            if eni.groups != e.groups {
                                eni.groups = e.groups.clone();
                                tx.update(s, &eni)?;
                            }
                        }
                    }
                    if let Some(on) = input.private_dns_enabled {
                        if on && !e.private_dns {
                            check_private_dns(tx, s, &vpc, &e.service_name, &e.id)?;
                        }
                        e.private_dns = on;
                    }
                }
                tx.update(s, &e)?;
                Ok::<_, Fail>((e.vpc_id.clone(), (allocators, freed)))
            },
            |(_, (allocators, freed))| {
                for (subnet, a) in allocators.iter() {
                    k.net.commit(s, subnet, a);
                }
                for subnet in freed.iter() {
                    k.net.forget(s, subnet);
                }
            },
        )
        .map_err(|f| f.0)?;
    if !ctx.dry_run {
        sync(k, ctx, &vpc_id);
    }
    Ok(ModifyVpcEndpointResult {
        r#return: Some(true),
    })
}

impl Checks for DeleteVpcEndpointsRequest {}

pub fn delete(
    k: &Kumo,
    ctx: &RequestContext,
    input: DeleteVpcEndpointsRequest,
) -> Result<DeleteVpcEndpointsResult, Ec2Error> {
    let s = scope(ctx);
    let now = k.now_ms();
    let (unsuccessful, (touched, _)) = k
        .store
        .write_then(
            !ctx.dry_run,
            |tx| {
                let mut unsuccessful = Vec::new();
                let mut touched = BTreeSet::new();
                let mut freed = Vec::new();
                for id in &input.vpc_endpoint_ids {
                    let mut e = match get_endpoint(tx, s, id) {
                        Ok(e) => e,
                        Err(Fail(err)) if err.code() == "InvalidVpcEndpointId.NotFound" => {
                            unsuccessful.push(UnsuccessfulItem {
                                resource_id: Some(id.clone()),
                                error: Some(UnsuccessfulItemError {
                                    code: Some("InvalidVpcEndpoint.NotFound".into()),
                                    message: Some(format!(
                                        "The Vpc Endpoint Id '{id}' does not exist"
                                    )),
                                }),
                            });
                            continue;
                        }
                        Err(f) => return Err(f),
                    };
                    remove_routes(tx, s, &e.id, &e.route_tables)?;
                    for sub in &e.subnets {
                        remove_interface(tx, s, &sub.eni_id)?;
                        freed.push(sub.subnet_id.clone());
                    }
                    e.deleted_ms = Some(now);
                    tx.update(s, &e)?;
                    touched.insert(e.vpc_id.clone());
                }
                Ok::<_, Fail>((unsuccessful, (touched, freed)))
            },
            |(_, (_, freed))| {
                for subnet in freed.iter() {
                    k.net.forget(s, subnet);
                }
            },
        )
        .map_err(|f| f.0)?;
    if !ctx.dry_run && !touched.is_empty() {
        k.sync_firewall(ctx, Reach::Vpcs(touched));
    }
    Ok(DeleteVpcEndpointsResult {
        unsuccessful: Some(unsuccessful),
    })
}

/// An endpoint as the filters see it: its record, its tags and its state now (no read).
struct View<'a>(&'a Tagged<VpcEndpointRecord>, &'static str);

impl Filterable<F> for View<'_> {
    fn field(&self, f: F, out: &mut dyn FnMut(&str)) {
        let e = &self.0.item;
        match f {
            F::IpAddressType => out("ipv4"),
            F::ServiceName => out(&e.service_name),
            F::ServiceRegion => {}
            F::VpcEndpointId => out(&e.id),
            F::VpcEndpointState => out(self.1),
            F::VpcEndpointType => out(&e.endpoint_type),
            F::VpcId => out(&e.vpc_id),
        }
    }
    fn tags(&self) -> &[(String, String)] {
        &self.0.tags
    }
}

impl Checks for DescribeVpcEndpointsRequest {}

pub fn describe(
    k: &Kumo,
    ctx: &RequestContext,
    input: DescribeVpcEndpointsRequest,
) -> Result<DescribeVpcEndpointsResult, Ec2Error> {
    let fs = filters::compile::<F>(input.filters, &[])?;
    let ids = input.vpc_endpoint_ids.unwrap_or_default();
    let s = scope(ctx);
    let (now, delay) = (k.now_ms(), k.options.transition_ms);
    let req = describe::Request {
        op: "DescribeVpcEndpoints",
        ids: &ids,
        not_found: &not_found,
        push: Push::filters(&fs, F::VpcEndpointId, Some(F::VpcId)),
        // Above 1,000, AWS answers 1,000.
        max_results: input.max_results.map(|m| m.min(1000)),
        bounds: (1, 1000),
        next_token: input.next_token.as_deref(),
    };
    k.store
        .read(|v| {
            let (page, next) = describe::run(v, s, &req, |t: &Tagged<VpcEndpointRecord>| {
                shown(&t.item, now)
                    && (fs.is_empty() || fs.matches(&View(t, state(&t.item, now, delay))))
            })?;
            let mut out = Vec::with_capacity(page.len());
            for t in &page {
                out.push(wire_read(v, ctx, t, now, delay)?);
            }
            Ok(DescribeVpcEndpointsResult {
                vpc_endpoints: Some(out),
                next_token: next,
            })
        })
        .map_err(|f: Fail| f.0)
}

// ---- Services and prefix lists -------------------------------------------------------------

struct SvcView<'a>(&'a ServiceDetail);

impl Filterable<SvcF> for SvcView<'_> {
    fn field(&self, f: SvcF, out: &mut dyn FnMut(&str)) {
        let d = self.0;
        let mut opt = |v: Option<&String>| v.iter().for_each(|v| out(v));
        match f {
            SvcF::Owner => opt(d.owner.as_ref()),
            SvcF::ServiceName => opt(d.service_name.as_ref()),
            SvcF::ServiceRegion => opt(d.service_region.as_ref()),
            SvcF::ServiceType => d
                .service_type
                .iter()
                .flatten()
                .for_each(|t| opt(t.service_type.as_ref())),
            SvcF::SupportedIpAddressTypes => d
                .supported_ip_address_types
                .iter()
                .flatten()
                .for_each(|t| out(t)),
        }
    }
    fn tags(&self) -> &[(String, String)] {
        &[]
    }
}

fn detail(region: &str, short: &str, kind: &str) -> ServiceDetail {
    let name = service_name(region, short);
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    });
    let zones: Vec<String> = kumo_model::regions::get(region)
        .map(|r| r.zones.iter().map(|z| z.name.to_string()).collect())
        .unwrap_or_default();
    let interface = kind == "Interface";
    ServiceDetail {
        service_name: Some(name),
        service_id: Some(format!("vpce-svc-{:017x}", h)),
        service_type: Some(vec![ServiceTypeDetail {
            service_type: Some(kind.into()),
        }]),
        service_region: Some(region.into()),
        availability_zones: Some(zones),
        owner: Some("amazon".into()),
        base_endpoint_dns_names: Some(vec![if interface {
            format!("{short}.{region}.vpce.amazonaws.com")
        } else {
            format!("{short}.{region}.amazonaws.com")
        }]),
        private_dns_name: interface.then(|| VpcEndpointRecord::private_name(region, short)),
        private_dns_names: interface.then(|| {
            vec![PrivateDnsDetails {
                private_dns_name: Some(VpcEndpointRecord::private_name(region, short)),
            }]
        }),
        private_dns_name_verification_state: interface.then(|| "verified".into()),
        vpc_endpoint_policy_supported: Some(true),
        acceptance_required: Some(false),
        manages_vpc_endpoints: Some(false),
        supported_ip_address_types: Some(vec!["ipv4".into()]),
        tags: Some(Vec::new()),
        ..ServiceDetail::default()
    }
}

impl Checks for DescribeVpcEndpointServicesRequest {}

pub fn describe_services(
    ctx: &RequestContext,
    input: DescribeVpcEndpointServicesRequest,
) -> Result<DescribeVpcEndpointServicesResult, Ec2Error> {
    // This call's service answers an unknown filter name with its own code (AWS's answers
    // quoted in mondoohq/mql#4454 and #5318), not EC2's usual InvalidParameterValue.
    let fs = filters::compile::<SvcF>(input.filters, &[]).map_err(|e| {
        if e.code() == "InvalidParameterValue" && e.message().starts_with("The filter '") {
            Ec2Error::new("InvalidFilter", e.message())
        } else {
            e
        }
    })?;
    let region = ctx.region.as_str();
    let names = input.service_names.unwrap_or_default();
    for n in &names {
        if find_service(region, n).is_none() {
            return Err(no_service(n));
        }
    }
    let mut all: Vec<ServiceDetail> = SERVICES
        .iter()
        .filter(|(short, _)| names.is_empty() || names.contains(&service_name(region, short)))
        .map(|(short, kind)| detail(region, short, kind))
        .filter(|d| fs.is_empty() || fs.matches(&SvcView(d)))
        .collect();
    // Pages in name order, with the project's tokens; above 1,000, AWS answers 1,000.
    const OP: &str = "DescribeVpcEndpointServices";
    let limit =
        crate::core::paging::max_results(input.max_results.map(|m| m.clamp(5, 1000)), 5, 1000)?;
    if let Some(after) = crate::core::paging::cursor(OP, input.next_token.as_deref())? {
        all.retain(|d| {
            d.service_name
                .as_deref()
                .is_some_and(|n| n > after.as_str())
        });
    }
    let (all, next) = crate::core::paging::page(all, limit, OP, |d| {
        d.service_name.clone().unwrap_or_default()
    });
    let mut service_names: Vec<String> =
        all.iter().filter_map(|d| d.service_name.clone()).collect();
    service_names.dedup();
    Ok(DescribeVpcEndpointServicesResult {
        service_details: Some(all),
        service_names: Some(service_names),
        next_token: next,
    })
}

struct PlView<'a>(&'a PrefixList);

impl Filterable<PlF> for PlView<'_> {
    fn field(&self, f: PlF, out: &mut dyn FnMut(&str)) {
        let p = self.0;
        let mut opt = |v: Option<&String>| v.iter().for_each(|v| out(v));
        match f {
            PlF::PrefixListId => opt(p.prefix_list_id.as_ref()),
            PlF::PrefixListName => opt(p.prefix_list_name.as_ref()),
        }
    }
    fn tags(&self) -> &[(String, String)] {
        &[]
    }
}

/// The region's AWS-managed prefix lists of the gateway services.
pub fn managed_lists(region: &str) -> Vec<PrefixList> {
    SERVICES
        .iter()
        .filter(|(_, kind)| *kind == "Gateway")
        .map(|(short, _)| {
            let (id, cidrs) = prefix_list(region, short);
            PrefixList {
                prefix_list_id: Some(id),
                prefix_list_name: Some(service_name(region, short)),
                cidrs: Some(cidrs),
            }
        })
        .collect()
}

impl Checks for DescribePrefixListsRequest {}

pub fn describe_prefix_lists(
    ctx: &RequestContext,
    input: DescribePrefixListsRequest,
) -> Result<DescribePrefixListsResult, Ec2Error> {
    let fs = filters::compile::<PlF>(input.filters, &[])?;
    let lists = managed_lists(&ctx.region);
    let ids = input.prefix_list_ids.unwrap_or_default();
    for id in &ids {
        if !lists
            .iter()
            .any(|p| p.prefix_list_id.as_deref() == Some(id.as_str()))
        {
            return Err(Ec2Error::new(
                "InvalidPrefixListID.NotFound",
                format!("The prefix list ({id}) does not exist."),
            ));
        }
    }
    Ok(DescribePrefixListsResult {
        prefix_lists: Some(
            lists
                .into_iter()
                .filter(|p| {
                    ids.is_empty() || p.prefix_list_id.as_ref().is_some_and(|i| ids.contains(i))
                })
                .filter(|p| fs.is_empty() || fs.matches(&PlView(p)))
                .collect(),
        ),
        next_token: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_and_prefix_lists() {
        assert_eq!(
            find_service("us-east-1", "com.amazonaws.us-east-1.ec2"),
            Some(("ec2", "Interface"))
        );
        assert_eq!(
            find_service("us-east-1", "com.amazonaws.eu-west-1.ec2"),
            None
        );
        assert_eq!(prefix_list("us-east-1", "s3").0, "pl-63a5400a");
        // A region without a known id gets a stable one of AWS's form.
        let (a, b) = (
            prefix_list("eu-west-1", "s3").0,
            prefix_list("eu-west-1", "s3").0,
        );
        assert_eq!(a, b);
        assert!(kumo_model::ids::has_form("pl", &a));
        assert_ne!(a, prefix_list("eu-west-1", "dynamodb").0);
    }

    #[test]
    fn dns_tags_are_eight_lowercase_characters() {
        let t = dns_tag();
        assert_eq!(t.len(), 8);
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert_ne!(t, dns_tag());
    }

    #[test]
    fn shapes_of_the_other_type_are_refused() {
        assert!(check_shape("Gateway", true, false, false, None)
            .unwrap_err()
            .message()
            .contains("Subnet IDs"));
        assert!(check_shape("Interface", false, false, true, None)
            .unwrap_err()
            .message()
            .contains("Route table IDs"));
        assert_eq!(
            check_shape("Interface", false, false, false, Some("nope"))
                .unwrap_err()
                .code(),
            "MalformedPolicy"
        );
        assert!(check_shape("Interface", true, true, false, Some("{}")).is_ok());
    }
}
