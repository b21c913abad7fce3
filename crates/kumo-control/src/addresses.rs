//! Elastic IP addresses: allocate from Kumo's public pool, associate with an interface's
//! private address, disassociate, release.

use crate::core::checks::Checks;
use crate::core::error::Fail;
use crate::core::filters;
use crate::core::ids::new_id;
use crate::records::net::*;
use crate::scope;
use crate::tags::{self, Tagged};
use kumo_ec2_wire::filters::DescribeAddresses as F;
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_model::cidr::{addr_to_string, Cidr};
use kumo_model::filter::Filterable;
use kumo_store::{Query, Read, Scope, Store, StoreError, Tx};

/// The addresses Elastic and public IPs come from: two documentation ranges (RFC 5737) and
/// the benchmarking range (RFC 2544), none of which routes on the internet. They exist only
/// inside Kumo: about 131,000 addresses. The first documentation range, 192.0.2.0/24, is left
/// out: sandboxes number their own interfaces from it (this project's machines do), and the
/// `ns` driver routes public addresses from the host into the VPCs.
const PUBLIC_POOL: &[&str] = &["198.51.100.0/24", "203.0.113.0/24", "198.18.0.0/15"];
/// AWS's default quota of Elastic IPs per region.
const MAX_ADDRESSES: usize = 5;
/// The store pool that holds public addresses for every account and region.
const POOL: &str = "public";
const GLOBAL: Scope = Scope {
    account: "",
    region: "",
};

pub fn alloc_not_found(id: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidAllocationID.NotFound",
        format!("The allocation ID '{id}' does not exist"),
    )
}

pub fn get_address<V: Read>(v: &V, s: Scope, id: &str) -> Result<AddressRecord, Fail> {
    v.get(s, id)?.ok_or_else(|| Fail(alloc_not_found(id)))
}

/// Every usable address of the pool, in order (network and broadcast addresses skipped).
fn pool_ranges() -> impl Iterator<Item = (u32, u32)> {
    PUBLIC_POOL
        .iter()
        .filter_map(|r| Cidr::parse(r).ok())
        .map(|c| (c.base() + 1, c.last() - 1))
}

/// Takes a free public address for (scope, owner): the one after the highest held, else the
/// first gap from the start.
fn take_public(tx: &Tx, s: Scope, owner: &str) -> Result<String, Fail> {
    let tag = format!("{}/{}/{owner}", s.account, s.region);
    let try_claim = |a: u32| -> Result<bool, Fail> {
        match tx.claim_addrs(GLOBAL, POOL, &tag, &[a]) {
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e.into()),
            Ok(()) => Ok(true),
        }
    };
    let next = tx.max_addr(GLOBAL, POOL)?.map(|m| m + 1);
    if let Some(n) = next {
        for (lo, hi) in pool_ranges() {
            let a = n.max(lo);
            if a <= hi && try_claim(a)? {
                return Ok(addr_to_string(a));
            }
        }
    }
    let held: std::collections::HashSet<u32> = tx
        .pool_addrs(GLOBAL, POOL)?
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    for (lo, hi) in pool_ranges() {
        for a in lo..=hi {
            if !held.contains(&a) && try_claim(a)? {
                return Ok(addr_to_string(a));
            }
        }
    }
    Err(Fail(Ec2Error::new(
        "AddressLimitExceeded",
        "The maximum number of addresses has been reached.",
    )))
}

/// A public address for an instance (released at stop and termination).
pub fn take_public_ip(tx: &Tx, s: Scope, owner: &str) -> Result<String, Fail> {
    take_public(tx, s, owner)
}

pub fn release_public_ip(tx: &Tx, ip: &str) -> Result<(), Fail> {
    if let Some(a) = kumo_model::cidr::parse_addr(ip) {
        tx.release_addrs(GLOBAL, POOL, &[a])?;
    }
    Ok(())
}

/// AllocateAddress, before any lookup: the settings Kumo does not take, and the tags.
impl Checks for AllocateAddressRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        if self.address.is_some()
            || self.customer_owned_ipv4_pool.is_some()
            || self.ipam_pool_id.is_some()
        {
            return Err(Ec2Error::new("Unsupported", "Kumo allocates Elastic IPs from its own pool only; Address, CustomerOwnedIpv4Pool and IpamPoolId are not supported."));
        }
        tags::from_specifications(self.tag_specifications.clone(), "elastic-ip").map(drop)
    }
}

/// ReleaseAddress, before any lookup: an allocation id (a VPC address is released by it; a
/// public IP beside it is not looked at).
impl Checks for ReleaseAddressRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        match (&self.allocation_id, &self.public_ip) {
            (Some(_), _) => Ok(()),
            (None, Some(_)) => Err(Ec2Error::invalid_value(
                "You must specify an allocation id when releasing a VPC elastic IP address",
            )),
            (None, None) => Err(Ec2Error::missing_parameter("AllocationId")),
        }
    }
}

pub fn allocate(
    store: &Store,
    ctx: &RequestContext,
    input: AllocateAddressRequest,
) -> Result<AllocateAddressResult, Ec2Error> {
    let tag_list = tags::from_specifications(input.tag_specifications.clone(), "elastic-ip")?;
    let s = scope(ctx);
    let rec = store
        .write(!ctx.dry_run, |tx| {
            let mine: Vec<AddressRecord> = tx.list(s, &Query::default())?;
            if mine.len() >= MAX_ADDRESSES {
                return Err(Fail(Ec2Error::new(
                    "AddressLimitExceeded",
                    "The maximum number of addresses has been reached.",
                )));
            }
            let id = new_id("eipalloc");
            let public_ip = take_public(tx, s, &id)?;
            let rec = AddressRecord {
                id,
                public_ip,
                association: None,
                service_managed: None,
            };
            tx.insert(s, &rec)?;
            tags::put_all(tx, s, &rec.id, "elastic-ip", &tag_list)?;
            Ok(rec)
        })
        .map_err(|f: Fail| f.0)?;
    Ok(AllocateAddressResult {
        allocation_id: Some(rec.id),
        public_ip: Some(rec.public_ip),
        domain: Some("vpc".into()),
        public_ipv4_pool: Some("amazon".into()),
        network_border_group: Some(ctx.region.clone()),
        ..AllocateAddressResult::default()
    })
}

/// Finds an address by allocation id or public IP.
fn find(tx: &Tx, s: Scope, id: Option<&str>, public: Option<&str>) -> Result<AddressRecord, Fail> {
    match (id, public) {
        (Some(_), Some(_)) => Err(Fail(Ec2Error::new(
            "InvalidParameterCombination",
            "You may specify public IP or allocation id, but not both in the same call",
        ))),
        (Some(id), None) => get_address(tx, s, id),
        (None, Some(ip)) => tx.get_by_name::<AddressRecord>(s, ip)?.ok_or_else(|| {
            Fail(Ec2Error::new(
                "InvalidAddress.NotFound",
                format!("Address '{ip}' not found."),
            ))
        }),
        (None, None) => Err(Fail(Ec2Error::missing_parameter("AllocationId"))),
    }
}

/// Points an address at an interface's private IP, inside a transaction; returns the new
/// association id. Used by AssociateAddress and by NAT gateways.
pub fn associate_in(
    tx: &Tx,
    s: Scope,
    addr: &mut AddressRecord,
    eni: &EniRecord,
    private_ip: &str,
    reassociate: bool,
) -> Result<String, Fail> {
    if let Some(a) = &addr.association {
        if !reassociate {
            return Err(Fail(Ec2Error::new(
                "Resource.AlreadyAssociated",
                format!(
                    "resource {} is already associated with associate-id {}",
                    addr.id, a.id
                ),
            )));
        }
    }
    let others: Vec<AddressRecord> = tx.list(s, &Query::default())?;
    if let Some(o) = others.iter().find(|o| {
        o.id != addr.id
            && o.association
                .as_ref()
                .is_some_and(|a| a.eni_id == eni.id && a.private_ip == private_ip)
    }) {
        if !reassociate {
            return Err(Fail(Ec2Error::new(
                "Resource.AlreadyAssociated",
                format!(
                    "resource {} and {private_ip} is already associated with public address {}",
                    eni.id, o.public_ip
                ),
            )));
        }
        let mut o = o.clone();
        o.association = None;
        tx.update(s, &o)?;
    }
    let id = new_id("eipassoc");
    let instance_id = eni.attachment.as_ref().map(|a| a.instance_id.clone());
    addr.association = Some(EipAssociation {
        id: id.clone(),
        eni_id: eni.id.clone(),
        private_ip: private_ip.to_string(),
        instance_id,
    });
    tx.update(s, addr)?;
    Ok(id)
}

/// The address a request names: by allocation id or by public IP, not both.
fn address_named(id: Option<&String>, public: Option<&String>) -> Result<(), Ec2Error> {
    match (id, public) {
        (Some(_), Some(_)) => Err(Ec2Error::new(
            "InvalidParameterCombination",
            "You may specify public IP or allocation id, but not both in the same call",
        )),
        (None, None) => Err(Ec2Error::missing_parameter("AllocationId")),
        _ => Ok(()),
    }
}

/// AssociateAddress, before any lookup: the address by one name, and an instance or an
/// interface (the instance id's form is `core::checks`'). The address, the instance, the
/// interface, its private address and the VPC's gateway follow in the operation.
impl Checks for AssociateAddressRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        address_named(self.allocation_id.as_ref(), self.public_ip.as_ref())?;
        if self.instance_id.is_none() && self.network_interface_id.is_none() {
            return Err(Ec2Error::missing_parameter(
                "instanceId or networkInterfaceId",
            ));
        }
        Ok(())
    }
}

/// DisassociateAddress, before any lookup: an association id or a public IP.
impl Checks for DisassociateAddressRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        if self.association_id.is_none() && self.public_ip.is_none() {
            return Err(Ec2Error::missing_parameter("AssociationId"));
        }
        Ok(())
    }
}

pub fn associate(
    store: &Store,
    ctx: &RequestContext,
    input: AssociateAddressRequest,
) -> Result<AssociateAddressResult, Ec2Error> {
    let s = scope(ctx);
    let id = store
        .write(!ctx.dry_run, |tx| {
            let mut addr = find(
                tx,
                s,
                input.allocation_id.as_deref(),
                input.public_ip.as_deref(),
            )?;
            // An instance means its primary interface.
            let from_instance = match &input.instance_id {
                Some(i) => {
                    let r = tx
                        .get::<crate::records::instance::InstanceRecord>(s, i)?
                        .filter(|r| r.state != kumo_model::lifecycle::State::Terminated)
                        .ok_or_else(|| Fail(crate::repo::instance::not_found(&[i.as_str()])))?;
                    r.enis.first().cloned()
                }
                None => None,
            };
            let Some(eni_id) = from_instance
                .as_ref()
                .or(input.network_interface_id.as_ref())
            else {
                return Err(Fail(Ec2Error::missing_parameter(
                    "instanceId or networkInterfaceId",
                )));
            };
            let eni = crate::repo::eni::get_eni(tx, s, eni_id)?;
            let private_ip = match &input.private_ip_address {
                Some(p) if eni.addresses.iter().any(|a| &a.addr == p) => p.clone(),
                Some(p) => {
                    return Err(Fail(Ec2Error::invalid_value(format!(
                    "The private IP address {p} is not associated with the network interface {}",
                    eni.id
                ))))
                }
                None => eni
                    .addresses
                    .iter()
                    .find(|a| a.primary)
                    .map(|a| a.addr.clone())
                    .unwrap_or_default(),
            };
            let igws: Vec<InternetGatewayRecord> = tx.list(
                s,
                &Query {
                    vpcs: Some(&[eni.vpc_id.as_str()]),
                    ..Query::default()
                },
            )?;
            if igws.is_empty() {
                return Err(Fail(Ec2Error::new(
                    "Gateway.NotAttached",
                    format!(
                        "Network {} is not attached to any internet gateway",
                        eni.vpc_id
                    ),
                )));
            }
            associate_in(
                tx,
                s,
                &mut addr,
                &eni,
                &private_ip,
                input.allow_reassociation.unwrap_or(false),
            )
        })
        .map_err(|f: Fail| f.0)?;
    Ok(AssociateAddressResult {
        association_id: Some(id),
    })
}

pub fn disassociate(
    store: &Store,
    ctx: &RequestContext,
    input: DisassociateAddressRequest,
) -> Result<(), Ec2Error> {
    let s = scope(ctx);
    store
        .write(!ctx.dry_run, |tx| {
            let all: Vec<AddressRecord> = tx.list(s, &Query::default())?;
            let found = match (&input.association_id, &input.public_ip) {
                (Some(a), _) => all
                    .into_iter()
                    .find(|r| r.association.as_ref().is_some_and(|x| &x.id == a)),
                (None, Some(ip)) => Some(find(tx, s, None, Some(ip))?),
                (None, None) => return Err(Fail(Ec2Error::missing_parameter("AssociationId"))),
            };
            // Disassociating what is not associated succeeds: the call is idempotent.
            if let Some(mut r) = found {
                if let Some(m) = &r.service_managed {
                    return Err(Fail(Ec2Error::new(
                        "OperationNotPermitted",
                        format!(
                            "The address {} is managed by {m} and cannot be disassociated.",
                            r.public_ip
                        ),
                    )));
                }
                r.association = None;
                tx.update(s, &r)?;
            }
            Ok(())
        })
        .map_err(|f: Fail| f.0)
}

pub fn release(
    store: &Store,
    ctx: &RequestContext,
    input: ReleaseAddressRequest,
) -> Result<(), Ec2Error> {
    let s = scope(ctx);
    store
        .write(!ctx.dry_run, |tx| {
            let addr = find(tx, s, input.allocation_id.as_deref(), None)?;
            if addr.association.is_some() {
                return Err(Fail(Ec2Error::new(
                    "InvalidIPAddress.InUse",
                    format!("The address with allocation id [{}] is in use.", addr.id),
                )));
            }
            if let Some(a) = kumo_model::cidr::parse_addr(&addr.public_ip) {
                tx.release_addrs(GLOBAL, POOL, &[a])?;
            }
            tx.delete::<AddressRecord>(s, &addr.id)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)
}

/// The instance an address is on: the one its interface is attached to now (the interface
/// may have been attached or detached since the address was associated).
fn instance_of<'e>(assoc: Option<&EipAssociation>, enis: &'e [EniRecord]) -> Option<&'e str> {
    let eni = enis
        .iter()
        .find(|e| Some(&e.id) == assoc.map(|x| &x.eni_id))?;
    eni.attachment.as_ref().map(|a| a.instance_id.as_str())
}

struct AddressView<'a>(&'a Tagged<AddressRecord>, &'a str, &'a str, &'a [EniRecord]);

impl Filterable<F> for AddressView<'_> {
    fn field(&self, f: F, out: &mut dyn FnMut(&str)) {
        let a = &self.0.item;
        let assoc = a.association.as_ref();
        match f {
            F::AllocationId => out(&a.id),
            F::AssociationId => assoc.iter().for_each(|x| out(&x.id)),
            F::InstanceId => instance_of(assoc, self.3).iter().for_each(|i| out(i)),
            F::NetworkBorderGroup => out(self.2),
            F::NetworkInterfaceId => assoc.iter().for_each(|x| out(&x.eni_id)),
            F::NetworkInterfaceOwnerId => assoc.iter().for_each(|_| out(self.1)),
            F::PrivateIpAddress => assoc.iter().for_each(|x| out(&x.private_ip)),
            F::PublicIp => out(&a.public_ip),
            F::Domain => out("vpc"),
        }
    }
    fn tags(&self) -> &[(String, String)] {
        &self.0.tags
    }
}

pub fn describe(
    store: &Store,
    ctx: &RequestContext,
    input: DescribeAddressesRequest,
) -> Result<DescribeAddressesResult, Ec2Error> {
    let fs = filters::compile::<F>(input.filters, &[])?;
    let s = scope(ctx);
    let (all, enis) = store
        .read(|v| {
            let rows: Vec<AddressRecord> = v.list(s, &Query::default())?;
            let enis: Vec<EniRecord> = v.list(s, &Query::default())?;
            Ok::<_, Fail>((tags::attach(v, s, rows)?, enis))
        })
        .map_err(|f| f.0)?;
    for id in input.allocation_ids.iter().flatten() {
        if !all.iter().any(|a| &a.item.id == id) {
            return Err(alloc_not_found(id));
        }
    }
    for ip in input.public_ips.iter().flatten() {
        if !all.iter().any(|a| &a.item.public_ip == ip) {
            return Err(Ec2Error::new(
                "InvalidAddress.NotFound",
                format!("Address '{ip}' not found."),
            ));
        }
    }
    let out = all
        .iter()
        .filter(|a| {
            input
                .allocation_ids
                .as_ref()
                .is_none_or(|ids| ids.contains(&a.item.id))
        })
        .filter(|a| {
            input
                .public_ips
                .as_ref()
                .is_none_or(|ips| ips.contains(&a.item.public_ip))
        })
        .filter(|a| fs.matches(&AddressView(a, &ctx.account_id, &ctx.region, &enis)))
        .map(|t| {
            let a = &t.item;
            let assoc = a.association.as_ref();
            Address {
                allocation_id: Some(a.id.clone()),
                public_ip: Some(a.public_ip.clone()),
                domain: Some("vpc".into()),
                public_ipv4_pool: Some("amazon".into()),
                network_border_group: Some(ctx.region.clone()),
                association_id: assoc.map(|x| x.id.clone()),
                network_interface_id: assoc.map(|x| x.eni_id.clone()),
                network_interface_owner_id: assoc.map(|_| ctx.account_id.clone()),
                private_ip_address: assoc.map(|x| x.private_ip.clone()),
                instance_id: instance_of(assoc, &enis).map(str::to_string),
                subnet_id: assoc
                    .and_then(|x| enis.iter().find(|e| e.id == x.eni_id))
                    .map(|e| e.subnet_id.clone()),
                tags: Some(tags::wire(&t.tags)),
                ..Address::default()
            }
        })
        .collect();
    Ok(DescribeAddressesResult {
        addresses: Some(out),
    })
}
