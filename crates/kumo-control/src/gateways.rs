//! Internet gateways, and the read side of route tables, network ACLs and DHCP options.

use crate::core::checks::{self, Checks};
use crate::core::describe::{self, Push};
use crate::core::error::Fail;
use crate::core::filters;
use crate::core::ids::new_id;
use crate::records::net::*;
use crate::scope;
use crate::tags::{self, Tagged};
use crate::vpcs::get_vpc;
use kumo_ec2_wire::filters::{
    DescribeDhcpOptions as DoptF, DescribeInternetGateways as IgwF, DescribeNetworkAcls as AclF,
    DescribeRouteTables as RtbF,
};
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::FilterName;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_model::filter::Filterable;
use kumo_store::{Query, Read, Scope, Store};

fn igw_not_found(id: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidInternetGatewayID.NotFound",
        format!("The internetGateway ID '{id}' does not exist"),
    )
}

fn get_igw<V: Read>(v: &V, s: Scope, id: &str) -> Result<InternetGatewayRecord, Fail> {
    v.get(s, id)?.ok_or_else(|| Fail(igw_not_found(id)))
}

fn wire_igw(ctx: &RequestContext, t: &Tagged<InternetGatewayRecord>) -> InternetGateway {
    InternetGateway {
        internet_gateway_id: Some(t.item.id.clone()),
        owner_id: Some(ctx.account_id.clone()),
        attachments: Some(
            t.item
                .vpc_id
                .iter()
                .map(|v| InternetGatewayAttachment {
                    vpc_id: Some(v.clone()),
                    state: Some("available".into()),
                })
                .collect(),
        ),
        tags: Some(tags::wire(&t.tags)),
    }
}

/// CreateInternetGateway, before any lookup: the tags.
impl Checks for CreateInternetGatewayRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        tags::from_specifications(self.tag_specifications.clone(), "internet-gateway").map(drop)
    }
}

pub fn create_igw(
    store: &Store,
    ctx: &RequestContext,
    input: CreateInternetGatewayRequest,
) -> Result<CreateInternetGatewayResult, Ec2Error> {
    let tag_list = tags::from_specifications(input.tag_specifications, "internet-gateway")?;
    let s = scope(ctx);
    let rec = store
        .write(!ctx.dry_run, |tx| {
            let rec = InternetGatewayRecord {
                id: new_id("igw"),
                vpc_id: None,
            };
            tx.insert(s, &rec)?;
            tags::put_all(tx, s, &rec.id, "internet-gateway", &tag_list)?;
            Ok::<_, Fail>(rec)
        })
        .map_err(|f| f.0)?;
    Ok(CreateInternetGatewayResult {
        internet_gateway: Some(wire_igw(
            ctx,
            &Tagged {
                item: rec,
                tags: tags::wire_pairs(&tag_list),
            },
        )),
    })
}

pub fn delete_igw(
    store: &Store,
    ctx: &RequestContext,
    input: DeleteInternetGatewayRequest,
) -> Result<(), Ec2Error> {
    let s = scope(ctx);
    store
        .write(!ctx.dry_run, |tx| {
            let igw = get_igw(tx, s, &input.internet_gateway_id)?;
            if igw.vpc_id.is_some() {
                return Err(Fail(Ec2Error::new(
                    "DependencyViolation",
                    format!(
                        "The internetGateway '{}' has dependencies and cannot be deleted.",
                        igw.id
                    ),
                )));
            }
            tx.delete::<InternetGatewayRecord>(s, &igw.id)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)
}

pub fn attach_igw(
    store: &Store,
    ctx: &RequestContext,
    input: AttachInternetGatewayRequest,
) -> Result<(), Ec2Error> {
    let s = scope(ctx);
    store
        .write(!ctx.dry_run, |tx| {
            let mut igw = get_igw(tx, s, &input.internet_gateway_id)?;
            let vpc = get_vpc(tx, s, &input.vpc_id)?;
            if let Some(v) = &igw.vpc_id {
                return Err(Fail(Ec2Error::new(
                    "Resource.AlreadyAssociated",
                    format!("resource {} is already attached to network {v}", igw.id),
                )));
            }
            let others: Vec<InternetGatewayRecord> = tx.list(
                s,
                &Query {
                    vpcs: Some(&[vpc.id.as_str()]),
                    ..Query::default()
                },
            )?;
            if !others.is_empty() {
                return Err(Fail(Ec2Error::invalid_value(format!(
                    "Network {} already has an internet gateway attached",
                    vpc.id
                ))));
            }
            igw.vpc_id = Some(vpc.id);
            tx.update(s, &igw)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)
}

pub fn detach_igw(
    store: &Store,
    ctx: &RequestContext,
    input: DetachInternetGatewayRequest,
) -> Result<(), Ec2Error> {
    let s = scope(ctx);
    store
        .write(!ctx.dry_run, |tx| {
            let mut igw = get_igw(tx, s, &input.internet_gateway_id)?;
            get_vpc(tx, s, &input.vpc_id)?;
            if igw.vpc_id.as_deref() != Some(input.vpc_id.as_str()) {
                return Err(Fail(Ec2Error::new(
                    "Gateway.NotAttached",
                    format!(
                        "resource {} is not attached to network {}",
                        igw.id, input.vpc_id
                    ),
                )));
            }
            let mapped: Vec<AddressRecord> = tx.list(s, &Query::default())?;
            let enis: Vec<EniRecord> = tx.list(s, &Query { vpcs: Some(&[input.vpc_id.as_str()]), ..Query::default() })?;
            if mapped.iter().any(|a| a.association.as_ref().is_some_and(|x| enis.iter().any(|e| e.id == x.eni_id))) {
                return Err(Fail(Ec2Error::new(
                    "DependencyViolation",
                    format!("Network {} has some mapped public address(es). Please unmap those public address(es) before detaching the gateway.", input.vpc_id),
                )));
            }
            igw.vpc_id = None;
            tx.update(s, &igw)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)
}

struct IgwView<'a>(&'a Tagged<InternetGatewayRecord>, &'a str);

impl Filterable<IgwF> for IgwView<'_> {
    fn field(&self, f: IgwF, out: &mut dyn FnMut(&str)) {
        let g = &self.0.item;
        match f {
            IgwF::AttachmentState => g.vpc_id.iter().for_each(|_| out("available")),
            IgwF::AttachmentVpcId => g.vpc_id.iter().map(String::as_str).for_each(&mut *out),
            IgwF::InternetGatewayId => out(&g.id),
            IgwF::OwnerId => out(self.1),
        }
    }
    fn tags(&self) -> &[(String, String)] {
        &self.0.tags
    }
}

pub fn describe_igws(
    store: &Store,
    ctx: &RequestContext,
    input: DescribeInternetGatewaysRequest,
) -> Result<DescribeInternetGatewaysResult, Ec2Error> {
    let fs = filters::compile::<IgwF>(input.filters, &[])?;
    let ids = input.internet_gateway_ids.unwrap_or_default();
    let req = describe::Request {
        op: "DescribeInternetGateways",
        ids: &ids,
        not_found: &igw_not_found,
        push: Push::filters(&fs, IgwF::InternetGatewayId, Some(IgwF::AttachmentVpcId)),
        max_results: input.max_results,
        bounds: (5, 1000),
        next_token: input.next_token.as_deref(),
    };
    let (page, next) = describe::read(
        store,
        scope(ctx),
        &req,
        |t: &Tagged<InternetGatewayRecord>| fs.matches(&IgwView(t, &ctx.account_id)),
    )?;
    Ok(DescribeInternetGatewaysResult {
        internet_gateways: Some(page.iter().map(|t| wire_igw(ctx, t)).collect()),
        next_token: next,
    })
}

fn rtb_not_found(id: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidRouteTableID.NotFound",
        format!("The routeTable ID '{id}' does not exist"),
    )
}

/// Whether a route's target can carry traffic now; routes to deleted or detached targets are
/// `blackhole`, as in AWS.
fn route_state<V: Read>(v: &V, s: Scope, vpc: &str, target: &str) -> Result<&'static str, Fail> {
    let alive = if target == "local" {
        true
    } else if target.starts_with("igw-") {
        v.get::<InternetGatewayRecord>(s, target)?
            .is_some_and(|g| g.vpc_id.as_deref() == Some(vpc))
    } else if target.starts_with("nat-") {
        v.get::<NatGatewayRecord>(s, target)?
            .is_some_and(|n| n.state == "available")
    } else if target.starts_with("eni-") {
        v.get::<EniRecord>(s, target)?.is_some()
    } else if target.starts_with("vgw-") {
        v.get::<crate::records::net::VpnGatewayRecord>(s, target)?
            .filter(|g| g.deleted_ms.is_none())
            .and_then(|g| g.attachment)
            .is_some_and(|a| a.attached && a.vpc_id == vpc)
    } else if target.starts_with("pcx-") {
        v.get::<crate::records::net::VpcPeeringRecord>(s, target)?
            .is_some_and(|p| p.status == "active")
    } else if target.starts_with("eigw-") {
        v.get::<crate::records::net::EgressOnlyGatewayRecord>(s, target)?
            .is_some_and(|g| g.vpc_id == vpc)
    } else if target.starts_with("vpce-") {
        v.get::<crate::records::net::VpcEndpointRecord>(s, target)?
            .is_some_and(|e| e.deleted_ms.is_none())
    } else {
        false
    };
    Ok(if alive { "active" } else { "blackhole" })
}

pub fn wire_rtb<V: Read>(
    v: &V,
    ctx: &RequestContext,
    t: &Tagged<RouteTableRecord>,
) -> Result<RouteTable, Fail> {
    let r = &t.item;
    let s = scope(ctx);
    let state = || {
        Some(RouteTableAssociationState {
            state: Some("associated".into()),
            status_message: None,
        })
    };
    let mut associations: Vec<RouteTableAssociation> = Vec::new();
    if let Some(m) = &r.main_association_id {
        associations.push(RouteTableAssociation {
            main: Some(true),
            route_table_association_id: Some(m.clone()),
            route_table_id: Some(r.id.clone()),
            association_state: state(),
            ..RouteTableAssociation::default()
        });
    }
    for a in &r.associations {
        associations.push(RouteTableAssociation {
            main: Some(false),
            route_table_association_id: Some(a.id.clone()),
            route_table_id: Some(r.id.clone()),
            subnet_id: a.subnet_id.clone(),
            association_state: state(),
            ..RouteTableAssociation::default()
        });
    }
    let mut routes = Vec::with_capacity(r.routes.len());
    for e in &r.routes {
        let v6 = e.destination.contains(':');
        // A gateway endpoint's route goes to its service's prefix list.
        let list = e.destination.starts_with("pl-");
        let mut route = Route {
            destination_cidr_block: (!v6 && !list).then(|| e.destination.clone()),
            destination_ipv6_cidr_block: v6.then(|| e.destination.clone()),
            destination_prefix_list_id: list.then(|| e.destination.clone()),
            origin: Some(e.origin.clone()),
            state: Some(route_state(v, s, &r.vpc_id, &e.gateway_id)?.into()),
            ..Route::default()
        };
        let target = Some(e.gateway_id.clone());
        if e.gateway_id.starts_with("nat-") {
            route.nat_gateway_id = target;
        } else if e.gateway_id.starts_with("eni-") {
            // A route to an instance's interface names the instance too, as AWS shows it.
            if let Some(a) = v
                .get::<EniRecord>(s, &e.gateway_id)?
                .and_then(|x| x.attachment)
            {
                route.instance_id = Some(a.instance_id);
                route.instance_owner_id = Some(ctx.account_id.clone());
            }
            route.network_interface_id = target;
        } else if e.gateway_id.starts_with("pcx-") {
            route.vpc_peering_connection_id = target;
        } else if e.gateway_id.starts_with("eigw-") {
            route.egress_only_internet_gateway_id = target;
        } else if e.gateway_id.starts_with("i-") {
            route.instance_id = target;
        } else {
            route.gateway_id = target;
        }
        routes.push(route);
    }
    Ok(RouteTable {
        route_table_id: Some(r.id.clone()),
        vpc_id: Some(r.vpc_id.clone()),
        owner_id: Some(ctx.account_id.clone()),
        associations: Some(associations),
        propagating_vgws: Some(
            r.propagating_vgws
                .iter()
                .map(|g| PropagatingVgw {
                    gateway_id: Some(g.clone()),
                })
                .collect(),
        ),
        routes: Some(routes),
        tags: Some(tags::wire(&t.tags)),
    })
}

/// A route table as the filters see it: its answer, so a filter matches what is shown (a
/// route's target by its kind, a blackhole's state).
struct RtbView<'a>(&'a RouteTable, &'a [(String, String)]);

impl Filterable<RtbF> for RtbView<'_> {
    fn field(&self, f: RtbF, out: &mut dyn FnMut(&str)) {
        let name = f.name();
        let t = self.0;
        let mut opt = |v: &Option<String>| v.iter().for_each(|v| out(v));
        let assocs = t.associations.as_deref().unwrap_or_default();
        let routes = t.routes.as_deref().unwrap_or_default();
        match f {
            RtbF::OwnerId => opt(&t.owner_id),
            RtbF::RouteTableId => opt(&t.route_table_id),
            RtbF::VpcId => opt(&t.vpc_id),
            RtbF::AssociationMain => assocs.iter().for_each(|a| {
                opt(&Some(
                    if a.main == Some(true) {
                        "true"
                    } else {
                        "false"
                    }
                    .into(),
                ))
            }),
            RtbF::AssociationRouteTableAssociationId => assocs
                .iter()
                .for_each(|a| opt(&a.route_table_association_id)),
            RtbF::AssociationRouteTableId => assocs.iter().for_each(|a| opt(&a.route_table_id)),
            RtbF::AssociationSubnetId => assocs.iter().for_each(|a| opt(&a.subnet_id)),
            RtbF::AssociationGatewayId => assocs.iter().for_each(|a| opt(&a.gateway_id)),
            RtbF::RouteDestinationCidrBlock
            | RtbF::RouteDestinationIpv6CidrBlock
            | RtbF::RouteDestinationPrefixListId
            | RtbF::RouteEgressOnlyInternetGatewayId
            | RtbF::RouteGatewayId
            | RtbF::RouteInstanceId
            | RtbF::RouteNatGatewayId
            | RtbF::RouteOrigin
            | RtbF::RouteState
            | RtbF::RouteTransitGatewayId
            | RtbF::RouteVpcPeeringConnectionId => {
                let Some(field) = name.strip_prefix("route.") else {
                    return;
                };
                for r in routes {
                    opt(match field {
                        "destination-cidr-block" => &r.destination_cidr_block,
                        "destination-ipv6-cidr-block" => &r.destination_ipv6_cidr_block,
                        "destination-prefix-list-id" => &r.destination_prefix_list_id,
                        "egress-only-internet-gateway-id" => &r.egress_only_internet_gateway_id,
                        "gateway-id" => &r.gateway_id,
                        "instance-id" => &r.instance_id,
                        "nat-gateway-id" => &r.nat_gateway_id,
                        "transit-gateway-id" => &r.transit_gateway_id,
                        "vpc-peering-connection-id" => &r.vpc_peering_connection_id,
                        "origin" => &r.origin,
                        "state" => &r.state,
                        _ => &None,
                    });
                }
            }
        }
    }
    fn tags(&self) -> &[(String, String)] {
        self.1
    }
}

pub fn describe_route_tables(
    store: &Store,
    ctx: &RequestContext,
    input: DescribeRouteTablesRequest,
) -> Result<DescribeRouteTablesResult, Ec2Error> {
    let fs = filters::compile::<RtbF>(input.filters, &[])?;
    let ids = input.route_table_ids.unwrap_or_default();
    let req = describe::Request {
        op: "DescribeRouteTables",
        ids: &ids,
        not_found: &rtb_not_found,
        push: Push::filters(&fs, RtbF::RouteTableId, Some(RtbF::VpcId)),
        max_results: input.max_results,
        bounds: (5, 100),
        next_token: input.next_token.as_deref(),
    };
    let (tables, next) = store
        .read(|v| {
            let (page, next) =
                describe::run(v, scope(ctx), &req, |t: &Tagged<RouteTableRecord>| {
                    // Filters read the answer (a table that cannot be shown matches nothing);
                    // without any, no answer is made here, only for the page.
                    fs.is_empty()
                        || wire_rtb(v, ctx, t).is_ok_and(|w| fs.matches(&RtbView(&w, &t.tags)))
                })?;
            let tables = page
                .iter()
                .map(|t| wire_rtb(v, ctx, t))
                .collect::<Result<Vec<_>, Fail>>()?;
            Ok::<_, Fail>((tables, next))
        })
        .map_err(|f| f.0)?;
    Ok(DescribeRouteTablesResult {
        route_tables: Some(tables),
        next_token: next,
    })
}

/// A network ACL as the wire shows it, with the subnets of its scope.
fn wire_acl(
    ctx: &RequestContext,
    t: &Tagged<NetworkAclRecord>,
    subnets: &[SubnetRecord],
) -> NetworkAcl {
    crate::network_acls::wire(ctx, &t.item, &t.tags, subnets)
}

/// A network ACL as the filters see it: its answer, so a filter matches what is shown.
struct AclView<'a>(&'a NetworkAcl, &'a [(String, String)]);

impl Filterable<AclF> for AclView<'_> {
    fn field(&self, f: AclF, out: &mut dyn FnMut(&str)) {
        let name = f.name();
        let a = self.0;
        let mut opt = |v: Option<String>| v.iter().for_each(|v| out(v));
        let tf = |b: Option<bool>| Some(if b == Some(true) { "true" } else { "false" }.to_string());
        let num = |n: Option<i32>| n.map(|n| n.to_string());
        let assocs = a.associations.as_deref().unwrap_or_default();
        let entries = a.entries.as_deref().unwrap_or_default();
        match f {
            AclF::Default => opt(tf(a.is_default)),
            AclF::NetworkAclId => opt(a.network_acl_id.clone()),
            AclF::OwnerId => opt(a.owner_id.clone()),
            AclF::VpcId => opt(a.vpc_id.clone()),
            AclF::AssociationAssociationId => assocs
                .iter()
                .for_each(|x| opt(x.network_acl_association_id.clone())),
            AclF::AssociationNetworkAclId => {
                assocs.iter().for_each(|x| opt(x.network_acl_id.clone()))
            }
            AclF::AssociationSubnetId => assocs.iter().for_each(|x| opt(x.subnet_id.clone())),
            AclF::EntryCidr
            | AclF::EntryEgress
            | AclF::EntryIcmpCode
            | AclF::EntryIcmpType
            | AclF::EntryIpv6Cidr
            | AclF::EntryPortRangeFrom
            | AclF::EntryPortRangeTo
            | AclF::EntryProtocol
            | AclF::EntryRuleAction
            | AclF::EntryRuleNumber => {
                let Some(field) = name.strip_prefix("entry.") else {
                    return;
                };
                for e in entries {
                    let value = match field {
                        "cidr" => e.cidr_block.clone(),
                        "ipv6-cidr" => e.ipv6_cidr_block.clone(),
                        "egress" => tf(e.egress),
                        "protocol" => e.protocol.clone(),
                        "rule-action" => e.rule_action.clone(),
                        "rule-number" => num(e.rule_number),
                        "icmp.code" => num(e.icmp_type_code.as_ref().and_then(|i| i.code)),
                        "icmp.type" => num(e.icmp_type_code.as_ref().and_then(|i| i.r#type)),
                        "port-range.from" => num(e.port_range.as_ref().and_then(|p| p.from)),
                        "port-range.to" => num(e.port_range.as_ref().and_then(|p| p.to)),
                        _ => None,
                    };
                    opt(value);
                }
            }
        }
    }
    fn tags(&self) -> &[(String, String)] {
        self.1
    }
}

/// DescribeNetworkAcls: its page before the lookups that precede its listing.
impl Checks for DescribeNetworkAclsRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        checks::page(
            "DescribeNetworkAcls",
            self.max_results,
            self.next_token.as_deref(),
            (5, 1000),
        )
    }
}

pub fn describe_network_acls(
    store: &Store,
    ctx: &RequestContext,
    input: DescribeNetworkAclsRequest,
) -> Result<DescribeNetworkAclsResult, Ec2Error> {
    let fs = filters::compile::<AclF>(input.filters, &[])?;
    let ids = input.network_acl_ids.unwrap_or_default();
    let s = scope(ctx);
    let req = describe::Request {
        op: "DescribeNetworkAcls",
        ids: &ids,
        not_found: &crate::network_acls::not_found,
        push: Push::filters(&fs, AclF::NetworkAclId, Some(AclF::VpcId)),
        max_results: input.max_results,
        bounds: (5, 1000),
        next_token: input.next_token.as_deref(),
    };
    let (page, next, subnets) = store
        .read(|v| {
            let subnets: Vec<SubnetRecord> = v.list(s, &Query::default())?;
            let (page, next) = describe::run(v, s, &req, |t: &Tagged<NetworkAclRecord>| {
                fs.is_empty() || fs.matches(&AclView(&wire_acl(ctx, t, &subnets), &t.tags))
            })?;
            Ok::<_, Fail>((page, next, subnets))
        })
        .map_err(|f| f.0)?;
    Ok(DescribeNetworkAclsResult {
        network_acls: Some(page.iter().map(|t| wire_acl(ctx, t, &subnets)).collect()),
        next_token: next,
    })
}

fn dopt_not_found(id: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidDhcpOptionID.NotFound",
        format!("The dhcpOption ID '{id}' does not exist"),
    )
}

struct DoptView<'a>(&'a Tagged<DhcpOptionsRecord>, &'a str);

impl Filterable<DoptF> for DoptView<'_> {
    fn field(&self, f: DoptF, out: &mut dyn FnMut(&str)) {
        let d = &self.0.item;
        match f {
            DoptF::DhcpOptionsId => out(&d.id),
            DoptF::Key => d.options.iter().for_each(|(k, _)| out(k)),
            DoptF::Value => d
                .options
                .iter()
                .flat_map(|(_, v)| v.iter())
                .map(String::as_str)
                .for_each(&mut *out),
            DoptF::OwnerId => out(self.1),
        }
    }
    fn tags(&self) -> &[(String, String)] {
        &self.0.tags
    }
}

pub fn describe_dhcp_options(
    store: &Store,
    ctx: &RequestContext,
    input: DescribeDhcpOptionsRequest,
) -> Result<DescribeDhcpOptionsResult, Ec2Error> {
    let fs = filters::compile::<DoptF>(input.filters, &[])?;
    let ids = input.dhcp_options_ids.unwrap_or_default();
    let req = describe::Request {
        op: "DescribeDhcpOptions",
        ids: &ids,
        not_found: &dopt_not_found,
        push: Push::filters(&fs, DoptF::DhcpOptionsId, None),
        max_results: input.max_results,
        bounds: (5, 1000),
        next_token: input.next_token.as_deref(),
    };
    let (page, next) = describe::read(store, scope(ctx), &req, |t: &Tagged<DhcpOptionsRecord>| {
        fs.matches(&DoptView(t, &ctx.account_id))
    })?;
    Ok(DescribeDhcpOptionsResult {
        dhcp_options: Some(
            page.iter()
                .map(|t| crate::dhcp_options::wire(ctx, &t.item, &t.tags))
                .collect(),
        ),
        next_token: next,
    })
}
