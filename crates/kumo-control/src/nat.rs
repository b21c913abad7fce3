//! NAT gateways. Each public one owns a requester-managed interface in its subnet and an
//! Elastic IP. Problems AWS reports through the gateway's state (no internet gateway, an
//! address already in use, a full subnet) leave it `failed` with AWS's failure code and
//! message, as AWS does, rather than failing the call.

use crate::core::checks::Checks;
use crate::core::describe::{self, Push};
use crate::core::error::Fail;
use crate::core::filters;
use crate::core::idempotency;
use crate::core::ids::new_id;
use crate::enis::{self, NewEni, Want};
use crate::network::NetState;
use crate::records::net::*;
use crate::scope;
use crate::tags::{self, Tagged};
use kumo_ec2_wire::filters::DescribeNatGateways as F;
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{DateTime, Ec2Error, RequestContext};
use kumo_model::filter::Filterable;
use kumo_store::{Query, Read, Scope, Store};

pub fn not_found(id: &str) -> Ec2Error {
    Ec2Error::new(
        "NatGatewayNotFound",
        format!("The natGateway ID '{id}' does not exist"),
    )
}

fn get_nat<V: Read>(v: &V, s: Scope, id: &str) -> Result<NatGatewayRecord, Fail> {
    v.get(s, id)?.ok_or_else(|| Fail(not_found(id)))
}

/// CreateNatGateway, before any lookup: a subnet, an Elastic IP for a public gateway and none
/// for a private one; then the tags and the token. The subnet, the address and the gateway's
/// addresses follow.
impl Checks for CreateNatGatewayRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        if self.subnet_id.is_none() {
            return Err(Ec2Error::missing_parameter("SubnetId"));
        }
        let private = self.connectivity_type.as_deref() == Some("private");
        if !private && self.allocation_id.is_none() {
            return Err(Ec2Error::missing_parameter("AllocationId"));
        }
        if private && self.allocation_id.is_some() {
            return Err(Ec2Error::new(
                "InvalidParameterCombination",
                "A private NAT gateway cannot have an Elastic IP address.",
            ));
        }
        Ok(())
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        tags::from_specifications(self.tag_specifications.clone(), "natgateway")?;
        idempotency::check_token(self.client_token.as_deref())
    }
}

pub fn create(
    store: &Store,
    net: &NetState,
    ctx: &RequestContext,
    input: CreateNatGatewayRequest,
) -> Result<CreateNatGatewayResult, Ec2Error> {
    let digest = idempotency::digest(&input);
    let token = input.client_token.as_deref();
    let subnet_id = input.subnet_id.clone().unwrap_or_default();
    let connectivity = input
        .connectivity_type
        .clone()
        .unwrap_or_else(|| "public".into());
    let tag_list = tags::from_specifications(input.tag_specifications.clone(), "natgateway")?;
    let s = scope(ctx);
    let (t, _) = store
        .write_then(
            !ctx.dry_run,
            |tx| {
                if let Some(id) = idempotency::earlier(tx, s, "CreateNatGateway", token, &digest)? {
                    let item = get_nat(tx, s, &id)?;
                    return Ok((Tagged { tags: tx.tags_of(s, &id)?, item }, None));
                }
                let subnet = crate::subnets::get_subnet(tx, s, &subnet_id)?;
                let mut nat = NatGatewayRecord {
                    id: new_id("nat"),
                    subnet_id: subnet.id.clone(),
                    vpc_id: subnet.vpc_id.clone(),
                    connectivity: connectivity.clone(),
                    state: "available".into(),
                    failure: None,
                    eni_id: None,
                    private_ip: None,
                    allocation_id: input.allocation_id.clone(),
                    public_ip: None,
                    association_id: None,
                    created_ms: DateTime::now().0,
                    deleted_ms: None,
                };
                let fail = |nat: &mut NatGatewayRecord, code: &str, msg: String| {
                    nat.state = "failed".into();
                    nat.failure = Some((code.to_string(), msg));
                    nat.deleted_ms = Some(DateTime::now().0);
                };
                let mut addr = None;
                if let Some(alloc) = &input.allocation_id {
                    match tx.get::<AddressRecord>(s, alloc)? {
                        None => fail(&mut nat, "InvalidAllocationID.NotFound", format!("Elastic IP address {alloc} could not be associated with this NAT gateway")),
                        Some(a) if a.association.is_some() => fail(&mut nat, "Resource.AlreadyAssociated", format!("Elastic IP address {alloc} is already associated")),
                        Some(a) => addr = Some(a),
                    }
                }
                let igws: Vec<InternetGatewayRecord> = tx.list(s, &Query { vpcs: Some(&[subnet.vpc_id.as_str()]), ..Query::default() })?;
                if nat.failure.is_none() && connectivity == "public" && igws.is_empty() {
                    fail(&mut nat, "Gateway.NotAttached", format!("Network {} has no Internet gateway attached", subnet.vpc_id));
                }
                let mut ips = None;
                if nat.failure.is_none() {
                    let want = Want {
                        primary: input.private_ip_address.as_deref().and_then(kumo_model::cidr::parse_addr),
                        ..Want::default()
                    };
                    let spec = NewEni {
                        description: format!("Interface for NAT Gateway {}", nat.id),
                        interface_type: "nat_gateway".into(),
                        groups: Vec::new(),
                        requester_id: Some("amazon".into()),
                        attachment: None,
                    };
                    match enis::new_eni(tx, net, s, &subnet, &want, spec) {
                        Ok((eni, allocator)) => {
                            let private_ip = eni.addresses[0].addr.clone();
                            if let Some(mut a) = addr {
                                nat.association_id = Some(crate::addresses::associate_in(tx, s, &mut a, &eni, &private_ip, false)?);
                                a.service_managed = Some(nat.id.clone());
                                tx.update(s, &a)?;
                                nat.public_ip = Some(a.public_ip.clone());
                            }
                            nat.eni_id = Some(eni.id.clone());
                            nat.private_ip = Some(private_ip);
                            ips = Some((subnet.id.clone(), allocator));
                        }
                        Err(Fail(e)) if e.code() == "InsufficientFreeAddressesInSubnet" => {
                            fail(&mut nat, "InsufficientFreeAddressesInSubnet", "Subnet has insufficient free addresses to create this NAT gateway".into())
                        }
                        Err(f) => return Err(f),
                    }
                }
                tx.insert(s, &nat)?;
                tags::put_all(tx, s, &nat.id, "natgateway", &tag_list)?;
                idempotency::remember(tx, s, "CreateNatGateway", token, &digest, &nat.id)?;
                Ok::<_, Fail>((Tagged { item: nat, tags: tags::wire_pairs(&tag_list) }, ips))
            },
            |(_, ips)| {
                if let Some((subnet, a)) = ips {
                    net.commit(s, subnet, a)
                }
            },
        )
        .map_err(|f| f.0)?;
    let mut out = wire(&t);
    // CreateNatGateway reports a new gateway as pending; it is available by the next call.
    if t.item.state == "available" {
        out.state = Some("pending".into());
    }
    Ok(CreateNatGatewayResult {
        nat_gateway: Some(out),
        client_token: input.client_token,
    })
}

pub fn delete(
    store: &Store,
    net: &NetState,
    ctx: &RequestContext,
    input: DeleteNatGatewayRequest,
) -> Result<DeleteNatGatewayResult, Ec2Error> {
    let s = scope(ctx);
    store
        .write(!ctx.dry_run, |tx| {
            let mut nat = get_nat(tx, s, &input.nat_gateway_id)?;
            if nat.state == "deleted" {
                return Ok(());
            }
            if let Some(alloc) = &nat.allocation_id {
                if let Some(mut a) = tx.get::<AddressRecord>(s, alloc)? {
                    if a.service_managed.as_deref() == Some(nat.id.as_str()) {
                        // The address stays allocated; only the association goes.
                        a.association = None;
                        a.service_managed = None;
                        tx.update(s, &a)?;
                    }
                }
            }
            if let Some(eni) = &nat.eni_id {
                tx.release_owner(s, eni)?;
                tx.delete::<EniRecord>(s, eni)?;
            }
            nat.state = "deleted".into();
            nat.deleted_ms = Some(DateTime::now().0);
            tx.update(s, &nat)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)?;
    // The interface's addresses went back to the store; rebuild the allocator from it.
    if let Ok(nat) = store.read(|v| get_nat(v, s, &input.nat_gateway_id)) {
        net.forget(s, &nat.subnet_id);
    }
    Ok(DeleteNatGatewayResult {
        nat_gateway_id: Some(input.nat_gateway_id),
    })
}

fn wire(t: &Tagged<NatGatewayRecord>) -> NatGateway {
    let n = &t.item;
    let live = n.state != "deleted" && n.state != "failed";
    NatGateway {
        nat_gateway_id: Some(n.id.clone()),
        subnet_id: Some(n.subnet_id.clone()),
        vpc_id: Some(n.vpc_id.clone()),
        state: Some(n.state.clone()),
        connectivity_type: Some(n.connectivity.clone()),
        create_time: Some(DateTime(n.created_ms)),
        delete_time: n.deleted_ms.map(DateTime),
        failure_code: n.failure.as_ref().map(|f| f.0.clone()),
        failure_message: n.failure.as_ref().map(|f| f.1.clone()),
        nat_gateway_addresses: Some(
            n.eni_id
                .iter()
                .filter(|_| live)
                .map(|eni| NatGatewayAddress {
                    allocation_id: n.allocation_id.clone(),
                    network_interface_id: Some(eni.clone()),
                    private_ip: n.private_ip.clone(),
                    public_ip: n.public_ip.clone(),
                    association_id: n.association_id.clone(),
                    is_primary: Some(true),
                    status: Some("succeeded".into()),
                    ..NatGatewayAddress::default()
                })
                .collect(),
        ),
        tags: Some(tags::wire(&t.tags)),
        ..NatGateway::default()
    }
}

struct NatView<'a>(&'a Tagged<NatGatewayRecord>);

impl Filterable<F> for NatView<'_> {
    fn field(&self, f: F, out: &mut dyn FnMut(&str)) {
        let n = &self.0.item;
        match f {
            F::NatGatewayId => out(&n.id),
            F::State => out(&n.state),
            F::SubnetId => out(&n.subnet_id),
            F::VpcId => out(&n.vpc_id),
        }
    }
    fn tags(&self) -> &[(String, String)] {
        &self.0.tags
    }
}

pub fn describe(
    store: &Store,
    ctx: &RequestContext,
    input: DescribeNatGatewaysRequest,
) -> Result<DescribeNatGatewaysResult, Ec2Error> {
    let fs = filters::compile::<F>(input.filter, &[])?;
    let ids = input.nat_gateway_ids.unwrap_or_default();
    let req = describe::Request {
        op: "DescribeNatGateways",
        ids: &ids,
        not_found: &not_found,
        push: Push {
            ids: fs.exact(F::NatGatewayId),
            vpcs: fs.exact(F::VpcId),
            subnets: fs.exact(F::SubnetId),
            tag: fs.exact_tag(),
        },
        max_results: input.max_results,
        bounds: (5, 1000),
        next_token: input.next_token.as_deref(),
    };
    let (page, next) = describe::read(store, scope(ctx), &req, |t: &Tagged<NatGatewayRecord>| {
        fs.matches(&NatView(t))
    })?;
    Ok(DescribeNatGatewaysResult {
        nat_gateways: Some(page.iter().map(wire).collect()),
        next_token: next,
    })
}
