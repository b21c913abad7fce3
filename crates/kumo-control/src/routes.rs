//! Route tables: create and delete, routes, and subnet associations.

use crate::core::checks::{self, Checks};
use crate::core::error::Fail;
use crate::core::idempotency;
use crate::core::ids::new_id;
use crate::records::net::*;
use crate::scope;
use crate::tags;
use crate::vpcs::{get_vpc, parse_cidr};
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_store::{Query, Read, Scope, Store, Tx};

pub fn not_found(id: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidRouteTableID.NotFound",
        format!("The routeTable ID '{id}' does not exist"),
    )
}

fn get_rtb<V: Read>(v: &V, s: Scope, id: &str) -> Result<RouteTableRecord, Fail> {
    v.get(s, id)?.ok_or_else(|| Fail(not_found(id)))
}

fn dependencies(id: &str) -> Fail {
    Fail(Ec2Error::new(
        "DependencyViolation",
        format!("The routeTable '{id}' has dependencies and cannot be deleted."),
    ))
}

/// CreateRouteTable, before any lookup: the token and the tags. The VPC follows.
impl Checks for CreateRouteTableRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        idempotency::check_token(self.client_token.as_deref())?;
        tags::from_specifications(self.tag_specifications.clone(), "route-table").map(drop)
    }
}

/// AssociateRouteTable, before any lookup: a subnet.
impl Checks for AssociateRouteTableRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        checks::given(&self.subnet_id, "subnetId or gatewayId")
    }
}

pub fn create_route_table(
    store: &Store,
    ctx: &RequestContext,
    input: CreateRouteTableRequest,
) -> Result<CreateRouteTableResult, Ec2Error> {
    let digest = idempotency::digest(&input);
    let token = input.client_token.as_deref();
    let tag_list = tags::from_specifications(input.tag_specifications.clone(), "route-table")?;
    let s = scope(ctx);
    let (rec, tags) = store
        .write(!ctx.dry_run, |tx| {
            if let Some(id) = idempotency::earlier(tx, s, "CreateRouteTable", token, &digest)? {
                return Ok((get_rtb(tx, s, &id)?, tx.tags_of(s, &id)?));
            }
            let vpc = get_vpc(tx, s, &input.vpc_id)?;
            let rec = RouteTableRecord {
                id: new_id("rtb"),
                vpc_id: vpc.id.clone(),
                main: false,
                main_association_id: None,
                // A local route for each of the VPC's blocks, IPv6 ones too.
                routes: vpc
                    .cidrs
                    .iter()
                    .chain(vpc.ipv6.iter())
                    .map(|c| RouteEntry {
                        destination: c.cidr.clone(),
                        gateway_id: "local".into(),
                        origin: "CreateRouteTable".into(),
                    })
                    .collect(),
                associations: Vec::new(),
                propagating_vgws: Vec::new(),
            };
            tx.insert(s, &rec)?;
            tags::put_all(tx, s, &rec.id, "route-table", &tag_list)?;
            idempotency::remember(tx, s, "CreateRouteTable", token, &digest, &rec.id)?;
            Ok::<_, Fail>((rec, tags::wire_pairs(&tag_list)))
        })
        .map_err(|f| f.0)?;
    let table = store
        .read(|v| crate::gateways::wire_rtb(v, ctx, &crate::tags::Tagged { item: rec, tags }))
        .map_err(|f| f.0)?;
    Ok(CreateRouteTableResult {
        route_table: Some(table),
        client_token: input.client_token,
    })
}

pub fn delete_route_table(
    store: &Store,
    ctx: &RequestContext,
    input: DeleteRouteTableRequest,
) -> Result<(), Ec2Error> {
    let s = scope(ctx);
    store
        .write(!ctx.dry_run, |tx| {
            let rtb = get_rtb(tx, s, &input.route_table_id)?;
            if rtb.main || !rtb.associations.is_empty() {
                return Err(dependencies(&rtb.id));
            }
            // A gateway endpoint's route goes with the table, and the table from its list.
            for vpce in rtb
                .routes
                .iter()
                .filter(|r| r.gateway_id.starts_with("vpce-"))
            {
                let id = &vpce.gateway_id;
                if let Some(mut e) = tx.get::<crate::records::net::VpcEndpointRecord>(s, id)? {
                    e.route_tables.retain(|t| *t != rtb.id);
                    tx.update(s, &e)?;
                }
            }
            tx.delete::<RouteTableRecord>(s, &rtb.id)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)
}

/// The one target of a route request, as (id, kind-specific check).
fn target(
    gateway: &Option<String>,
    nat: &Option<String>,
    eni: &Option<String>,
    instance: &Option<String>,
    peering: &Option<String>,
    egress_only: &Option<String>,
    others: bool,
) -> Result<String, Ec2Error> {
    let given: Vec<&String> = [gateway, nat, eni, instance, peering, egress_only]
        .into_iter()
        .flatten()
        .collect();
    if given.len() > 1 || (others && !given.is_empty()) {
        return Err(Ec2Error::new("InvalidParameterCombination", "The request can contain only one of gatewayId, egressOnlyInternetGatewayId, natGatewayId, networkInterfaceId, instanceId or vpcPeeringConnectionId."));
    }
    if others {
        return Err(Ec2Error::new("Unsupported", "Kumo supports routes to internet gateways, egress-only internet gateways, NAT gateways, network interfaces, instances and VPC peering connections."));
    }
    given.first().map(|g| g.to_string()).ok_or_else(|| {
        Ec2Error::missing_parameter(
            "gatewayId, egressOnlyInternetGatewayId, natGatewayId, networkInterfaceId, instanceId or vpcPeeringConnectionId",
        )
    })
}

/// Checks that a route target exists and lives in the table's VPC.
fn check_target(tx: &Tx, s: Scope, rtb: &RouteTableRecord, target: &str) -> Result<(), Fail> {
    let different = || {
        Fail(Ec2Error::invalid_value(format!(
            "route table {} and network gateway {target} belong to different networks",
            rtb.id
        )))
    };
    if target.starts_with("igw-") {
        let igw: InternetGatewayRecord = tx.get(s, target)?.ok_or_else(|| {
            Fail(Ec2Error::new(
                "InvalidInternetGatewayID.NotFound",
                format!("The internetGateway ID '{target}' does not exist"),
            ))
        })?;
        if igw.vpc_id.as_deref() != Some(rtb.vpc_id.as_str()) {
            return Err(different());
        }
    } else if target.starts_with("nat-") {
        let nat: NatGatewayRecord = tx
            .get(s, target)?
            .ok_or_else(|| Fail(crate::nat::not_found(target)))?;
        if nat.vpc_id != rtb.vpc_id {
            return Err(different());
        }
    } else if target.starts_with("eni-") {
        let eni = crate::repo::eni::get_eni(tx, s, target)?;
        if eni.vpc_id != rtb.vpc_id {
            return Err(different());
        }
    } else if target.starts_with("vgw-") {
        // A virtual private gateway takes routes of the VPC it is attached to.
        let attached = tx
            .get::<VpnGatewayRecord>(s, target)?
            .filter(|g| g.deleted_ms.is_none())
            .and_then(|g| g.attachment)
            .is_some_and(|a| a.attached && a.vpc_id == rtb.vpc_id);
        if !attached {
            return Err(Fail(Ec2Error::new(
                "InvalidGatewayID.NotFound",
                format!("The gateway ID '{target}' does not exist"),
            )));
        }
    } else if target.starts_with("pcx-") {
        // A route may name a connection that is not active yet: it is a blackhole until then.
        let pcx: VpcPeeringRecord = tx.get(s, target)?.ok_or_else(|| {
            Fail(Ec2Error::new(
                "InvalidVpcPeeringConnectionID.NotFound",
                format!("The vpcPeeringConnection ID '{target}' does not exist"),
            ))
        })?;
        if !pcx.joins(s.account, s.region, &rtb.vpc_id) {
            return Err(different());
        }
    } else if target.starts_with("eigw-") {
        if !crate::egress_only_gateways::in_vpc(tx, s, rtb, target)? {
            return Err(Fail(crate::egress_only_gateways::not_found(target)));
        }
    } else if target.starts_with("i-") {
        return Err(Fail(Ec2Error::new(
            "InvalidInstanceID.NotFound",
            format!("The instance ID '{target}' does not exist"),
        )));
    } else if target != "local" {
        return Err(Fail(Ec2Error::new(
            "InvalidGatewayID.NotFound",
            format!("The gateway ID '{target}' does not exist"),
        )));
    }
    Ok(())
}

/// A route's destination: an IPv4 or an IPv6 CIDR, in its canonical text.
struct Dest {
    text: String,
    v6: bool,
}

impl std::fmt::Display for Dest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

fn destination_given(v4: Option<&str>, v6: Option<&str>) -> Result<(), Ec2Error> {
    match (v4, v6) {
        (None, None) => Err(Ec2Error::missing_parameter(
            "destinationCidrBlock or destinationIpv6CidrBlock",
        )),
        (Some(_), Some(_)) => Err(Ec2Error::new(
            "InvalidParameterCombination",
            "The parameter destinationCidrBlock cannot be used with the parameter destinationIpv6CidrBlock",
        )),
        _ => Ok(()),
    }
}

fn destination(v4: Option<&str>, v6: Option<&str>) -> Result<Dest, Ec2Error> {
    destination_given(v4, v6)?;
    if let Some(d) = v4 {
        return parse_cidr(d)
            .map(|c| Dest { text: c.to_string(), v6: false })
            .map_err(|_| Ec2Error::invalid_value(format!("Value ({d}) for parameter destinationCidrBlock is invalid. This is not a valid CIDR block.")));
    }
    let d = v6.unwrap_or_default();
    // Host bits are cleared, as for IPv4 (`2001:db8::1/64` is `2001:db8::/64`).
    kumo_model::cidr::Cidr6::parse_clearing(d)
        .map(|c| Dest { text: c.to_string(), v6: true })
        .map_err(|_| Ec2Error::invalid_value(format!("Value ({d}) for parameter destinationIpv6CidrBlock is invalid. This is not a valid IPv6 CIDR block.")))
}

/// The one target a route request names, as [`target`] checks it.
trait RouteTarget {
    fn route_target(&self) -> Result<String, Ec2Error>;
}

impl RouteTarget for CreateRouteRequest {
    fn route_target(&self) -> Result<String, Ec2Error> {
        let others = self.transit_gateway_id.is_some()
            || self.vpc_endpoint_id.is_some()
            || self.local_gateway_id.is_some()
            || self.carrier_gateway_id.is_some();
        target(
            &self.gateway_id,
            &self.nat_gateway_id,
            &self.network_interface_id,
            &self.instance_id,
            &self.vpc_peering_connection_id,
            &self.egress_only_internet_gateway_id,
            others,
        )
    }
}

impl RouteTarget for ReplaceRouteRequest {
    fn route_target(&self) -> Result<String, Ec2Error> {
        if self.local_target == Some(true) {
            return Ok("local".into());
        }
        let others = self.transit_gateway_id.is_some();
        target(
            &self.gateway_id,
            &self.nat_gateway_id,
            &self.network_interface_id,
            &self.instance_id,
            &self.vpc_peering_connection_id,
            &self.egress_only_internet_gateway_id,
            others,
        )
    }
}

/// CreateRoute and ReplaceRoute, before any lookup: a destination and exactly one target of a
/// kind Kumo routes to (ReplaceRoute: or the local target), then the destination's form. The
/// table, the target in its VPC and the route (new, or there to replace) follow.
macro_rules! route_checks {
    ($($t:ty),*) => {$(
        impl Checks for $t {
            fn required(&self) -> Result<(), Ec2Error> {
                destination_given(
                    self.destination_cidr_block.as_deref(),
                    self.destination_ipv6_cidr_block.as_deref(),
                )?;
                self.route_target().map(drop)
            }

            fn formats(&self) -> Result<(), Ec2Error> {
                let d = destination(
                    self.destination_cidr_block.as_deref(),
                    self.destination_ipv6_cidr_block.as_deref(),
                )?;
                if !d.v6 && self.egress_only_internet_gateway_id.is_some() {
                    return Err(Ec2Error::invalid_value(format!(
                        "An egress-only internet gateway takes IPv6 routes only: {d} is an IPv4 destination."
                    )));
                }
                Ok(())
            }
        }
    )*};
}
route_checks!(CreateRouteRequest, ReplaceRouteRequest);

/// DeleteRoute, before any lookup: a destination of its form.
impl Checks for DeleteRouteRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        destination_given(
            self.destination_cidr_block.as_deref(),
            self.destination_ipv6_cidr_block.as_deref(),
        )
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        destination(
            self.destination_cidr_block.as_deref(),
            self.destination_ipv6_cidr_block.as_deref(),
        )
        .map(drop)
    }
}

pub fn create_route(
    store: &Store,
    ctx: &RequestContext,
    input: CreateRouteRequest,
) -> Result<CreateRouteResult, Ec2Error> {
    let dest = destination(
        input.destination_cidr_block.as_deref(),
        input.destination_ipv6_cidr_block.as_deref(),
    )?;
    let target = input.route_target()?;
    let s = scope(ctx);
    store
        .write(!ctx.dry_run, |tx| {
            let mut rtb = get_rtb(tx, s, &input.route_table_id)?;
            check_target(tx, s, &rtb, &target)?;
            if rtb.routes.iter().any(|r| r.destination == dest.text) {
                return Err(Fail(Ec2Error::new(
                    "RouteAlreadyExists",
                    format!("The route identified by {dest} already exists."),
                )));
            }
            rtb.routes.push(RouteEntry {
                destination: dest.text.clone(),
                gateway_id: target.clone(),
                origin: "CreateRoute".into(),
            });
            tx.update(s, &rtb)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)?;
    Ok(CreateRouteResult {
        r#return: Some(true),
    })
}

fn missing_route(dest: &Dest, rtb: &str) -> Fail {
    let kind = if dest.v6 {
        "destination-ipv6-cidr-block"
    } else {
        "destination-cidr-block"
    };
    Fail(Ec2Error::new(
        "InvalidRoute.NotFound",
        format!("no route with {kind} {dest} in route table {rtb}"),
    ))
}

pub fn replace_route(
    store: &Store,
    ctx: &RequestContext,
    input: ReplaceRouteRequest,
) -> Result<(), Ec2Error> {
    let dest = destination(
        input.destination_cidr_block.as_deref(),
        input.destination_ipv6_cidr_block.as_deref(),
    )?;
    let target = input.route_target()?;
    let s = scope(ctx);
    store
        .write(!ctx.dry_run, |tx| {
            let mut rtb = get_rtb(tx, s, &input.route_table_id)?;
            check_target(tx, s, &rtb, &target)?;
            let id = rtb.id.clone();
            let route = rtb
                .routes
                .iter_mut()
                .find(|r| r.destination == dest.text)
                .ok_or_else(|| missing_route(&dest, &id))?;
            route.gateway_id = target.clone();
            tx.update(s, &rtb)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)
}

pub fn delete_route(
    store: &Store,
    ctx: &RequestContext,
    input: DeleteRouteRequest,
) -> Result<(), Ec2Error> {
    let dest = destination(
        input.destination_cidr_block.as_deref(),
        input.destination_ipv6_cidr_block.as_deref(),
    )?;
    let s = scope(ctx);
    store
        .write(!ctx.dry_run, |tx| {
            let mut rtb = get_rtb(tx, s, &input.route_table_id)?;
            let i = rtb
                .routes
                .iter()
                .position(|r| r.destination == dest.text)
                .ok_or_else(|| missing_route(&dest, &rtb.id))?;
            if rtb.routes[i].gateway_id == "local" {
                return Err(Fail(Ec2Error::invalid_value(format!(
                    "cannot remove local route {dest} in route table {}",
                    rtb.id
                ))));
            }
            rtb.routes.remove(i);
            tx.update(s, &rtb)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)
}

fn associated() -> Option<RouteTableAssociationState> {
    Some(RouteTableAssociationState {
        state: Some("associated".into()),
        status_message: None,
    })
}

pub fn associate(
    store: &Store,
    ctx: &RequestContext,
    input: AssociateRouteTableRequest,
) -> Result<AssociateRouteTableResult, Ec2Error> {
    let subnet_id = input.subnet_id.clone().unwrap_or_default();
    let s = scope(ctx);
    let id = store
        .write(!ctx.dry_run, |tx| {
            let mut rtb = get_rtb(tx, s, &input.route_table_id)?;
            let subnet = crate::subnets::get_subnet(tx, s, &subnet_id)?;
            if subnet.vpc_id != rtb.vpc_id {
                return Err(Fail(Ec2Error::invalid_value(format!(
                    "Route table {} and subnet {} belong to different networks",
                    rtb.id, subnet.id
                ))));
            }
            let tables: Vec<RouteTableRecord> = tx.list(s, &Query { vpcs: Some(&[rtb.vpc_id.as_str()]), ..Query::default() })?;
            if tables.iter().any(|t| t.associations.iter().any(|a| a.subnet_id.as_deref() == Some(subnet.id.as_str()))) {
                return Err(Fail(Ec2Error::new(
                    "Resource.AlreadyAssociated",
                    format!("the specified association for route table {} conflicts with an existing association", rtb.id),
                )));
            }
            let assoc = RouteTableAssoc { id: new_id("rtbassoc"), subnet_id: Some(subnet.id) };
            let id = assoc.id.clone();
            rtb.associations.push(assoc);
            tx.update(s, &rtb)?;
            Ok(id)
        })
        .map_err(|f: Fail| f.0)?;
    Ok(AssociateRouteTableResult {
        association_id: Some(id),
        association_state: associated(),
    })
}

/// The table holding an association id, in the caller's scope.
fn by_association(tx: &Tx, s: Scope, id: &str) -> Result<RouteTableRecord, Fail> {
    let tables: Vec<RouteTableRecord> = tx.list(s, &Query::default())?;
    tables
        .into_iter()
        .find(|t| {
            t.main_association_id.as_deref() == Some(id)
                || t.associations.iter().any(|a| a.id == id)
        })
        .ok_or_else(|| {
            Fail(Ec2Error::new(
                "InvalidAssociationID.NotFound",
                format!("The association ID '{id}' does not exist"),
            ))
        })
}

pub fn disassociate(
    store: &Store,
    ctx: &RequestContext,
    input: DisassociateRouteTableRequest,
) -> Result<(), Ec2Error> {
    let s = scope(ctx);
    store
        .write(!ctx.dry_run, |tx| {
            let mut rtb = by_association(tx, s, &input.association_id)?;
            if rtb.main_association_id.as_deref() == Some(input.association_id.as_str()) {
                return Err(Fail(Ec2Error::invalid_value(format!(
                    "cannot disassociate the main route table association {}",
                    input.association_id
                ))));
            }
            rtb.associations.retain(|a| a.id != input.association_id);
            tx.update(s, &rtb)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)
}

pub fn replace_association(
    store: &Store,
    ctx: &RequestContext,
    input: ReplaceRouteTableAssociationRequest,
) -> Result<ReplaceRouteTableAssociationResult, Ec2Error> {
    let s = scope(ctx);
    let id = store
        .write(!ctx.dry_run, |tx| {
            let old = by_association(tx, s, &input.association_id)?;
            let new = get_rtb(tx, s, &input.route_table_id)?;
            if new.vpc_id != old.vpc_id {
                return Err(Fail(Ec2Error::invalid_value(format!(
                    "Route table {} and association {} belong to different networks",
                    new.id, input.association_id
                ))));
            }
            let new_id_ = new_id("rtbassoc");
            let is_main = old.main_association_id.as_deref() == Some(input.association_id.as_str());
            // Take the association off its table (which may be the new one), then put it on.
            let mut old = old;
            let subnet = old
                .associations
                .iter()
                .find(|a| a.id == input.association_id)
                .and_then(|a| a.subnet_id.clone());
            if is_main {
                old.main = false;
                old.main_association_id = None;
            } else {
                old.associations.retain(|a| a.id != input.association_id);
            }
            tx.update(s, &old)?;
            let mut new = get_rtb(tx, s, &input.route_table_id)?;
            if is_main {
                new.main = true;
                new.main_association_id = Some(new_id_.clone());
                let mut vpc = get_vpc(tx, s, &new.vpc_id)?;
                vpc.main_route_table_id = new.id.clone();
                tx.update(s, &vpc)?;
            } else {
                new.associations.push(RouteTableAssoc {
                    id: new_id_.clone(),
                    subnet_id: subnet,
                });
            }
            tx.update(s, &new)?;
            Ok(new_id_)
        })
        .map_err(|f: Fail| f.0)?;
    Ok(ReplaceRouteTableAssociationResult {
        new_association_id: Some(id),
        association_state: associated(),
    })
}
