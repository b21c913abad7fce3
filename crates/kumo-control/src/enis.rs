//! Network interfaces and their private addresses: primary and secondary IPs, /28 prefixes,
//! allocated by `kumo_model::ipam` and held unique per subnet by the store.

use crate::core::checks::{self, Checks};
use crate::core::describe::{self, Push};
use crate::core::error::Fail;
use crate::core::filters;
use crate::core::idempotency;
use crate::core::ids::new_id;
use crate::network::{self, NetState};
use crate::records::net::*;
use crate::repo::eni::{get_eni, group_names, not_found};
use crate::scope;
use crate::subnets::get_subnet;
use crate::tags::{self, Tagged};
use kumo_ec2_wire::filters::DescribeNetworkInterfaces as F;
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{DateTime, Ec2Error, RequestContext};
use kumo_model::cidr::{addr_to_string, parse_addr, Cidr};
use kumo_model::filter::Filterable;
use kumo_model::ipam::{AllocError, SubnetIps};
use kumo_store::{Read, Scope, Store, StoreError, Tx};
use std::collections::HashMap;

/// The wire error for an allocation the subnet refused.
fn alloc_error(e: AllocError, what: &str) -> Ec2Error {
    match e {
        AllocError::SubnetFull => Ec2Error::new(
            "InsufficientFreeAddressesInSubnet",
            "The specified subnet does not have enough free addresses to satisfy the request.",
        ),
        AllocError::InsufficientCidr => Ec2Error::new(
            "InsufficientCidrBlocks",
            "The specified subnet does not have enough free cidr blocks to satisfy the request.",
        ),
        AllocError::InUse => Ec2Error::new(
            "InvalidIPAddress.InUse",
            format!("Address {what} is in use."),
        ),
        AllocError::OutsideSubnet => Ec2Error::invalid_value(format!(
            "Address {what} does not fall within the subnet's address range"
        )),
        AllocError::AwsReserved => Ec2Error::invalid_value(format!(
            "Address {what} is reserved by AWS and cannot be assigned."
        )),
        AllocError::BadPrefix => Ec2Error::invalid_value(format!(
            "Invalid IPv4 prefix {what}: a prefix must be an aligned /28 inside the subnet."
        )),
    }
}

fn parse_ip(s: &str) -> Result<u32, Ec2Error> {
    parse_addr(s).ok_or_else(|| {
        Ec2Error::invalid_value(format!(
            "Invalid value '{s}' for IP address. The address is not a valid IPv4 address."
        ))
    })
}

/// A delegated IPv4 prefix: a CIDR of AWS's one size, /28.
fn parse_prefix(s: &str) -> Result<Cidr, Ec2Error> {
    Cidr::parse(s)
        .ok()
        .filter(|c| c.prefix_len() == 28)
        .ok_or_else(|| alloc_error(AllocError::BadPrefix, s))
}

/// What to allocate on an interface.
#[derive(Default)]
pub struct Want {
    pub primary: Option<u32>,
    pub secondary: Vec<u32>,
    pub secondary_count: u32,
    pub prefixes: Vec<Cidr>,
    pub prefix_count: u32,
    /// IPv6 addresses: None of a count means the subnet's `AssignIpv6AddressOnCreation`
    /// decides.
    pub ipv6: crate::ipv6_addresses::Want6,
    /// The first IPv6 address is to be the primary one.
    pub primary_ipv6: bool,
}

/// What an allocation took: the primary address if asked, secondaries, prefixes.
type Taken = (Option<u32>, Vec<u32>, Vec<Cidr>);

/// Takes addresses from the allocator.
fn allocate(ips: &mut SubnetIps, want: &Want, need_primary: bool) -> Result<Taken, Ec2Error> {
    // Explicit requests first, so a count never takes an address someone asked for.
    if let Some(p) = want.primary {
        ips.claim(p)
            .map_err(|e| alloc_error(e, &addr_to_string(p)))?;
    }
    for a in &want.secondary {
        ips.claim(*a)
            .map_err(|e| alloc_error(e, &addr_to_string(*a)))?;
    }
    for p in &want.prefixes {
        ips.claim_prefix(*p)
            .map_err(|e| alloc_error(e, &p.to_string()))?;
    }
    let primary = match (want.primary, need_primary) {
        (Some(p), _) => Some(p),
        (None, true) => Some(ips.pick().map_err(|e| alloc_error(e, ""))?),
        (None, false) => None,
    };
    let mut secondary = want.secondary.clone();
    for _ in 0..want.secondary_count {
        secondary.push(ips.pick().map_err(|e| alloc_error(e, ""))?);
    }
    let mut prefixes = want.prefixes.clone();
    for _ in 0..want.prefix_count {
        prefixes.push(ips.pick_prefix().map_err(|e| alloc_error(e, ""))?);
    }
    Ok((primary, secondary, prefixes))
}

fn prefix_addrs(p: &Cidr) -> impl Iterator<Item = u32> {
    p.base()..=p.last()
}

/// Holds the addresses in the store, where the primary key makes them unique per subnet.
fn hold(
    tx: &Tx,
    s: Scope,
    subnet: &str,
    owner: &str,
    addrs: &[u32],
    prefixes: &[Cidr],
) -> Result<(), Fail> {
    let mut all: Vec<u32> = addrs.to_vec();
    for p in prefixes {
        all.extend(prefix_addrs(p));
    }
    match tx.claim_addrs(s, subnet, owner, &all) {
        Err(StoreError::Conflict) => Err(Fail(Ec2Error::new(
            "InvalidIPAddress.InUse",
            "An address of the request is already in use.",
        ))),
        other => Ok(other?),
    }
}

fn check_count(name: &str, v: Option<i32>) -> Result<u32, Ec2Error> {
    match v {
        None => Ok(0),
        Some(n) if n >= 1 => Ok(n as u32),
        Some(n) => Err(Ec2Error::invalid_value(format!(
            "Value ({n}) for parameter {name} is invalid. Expecting a value greater than 0."
        ))),
    }
}

fn combination(a: bool, b: bool, an: &str, bn: &str) -> Result<(), Ec2Error> {
    if a && b {
        return Err(Ec2Error::new(
            "InvalidParameterCombination",
            format!("The parameters {an} and {bn} cannot be used together."),
        ));
    }
    Ok(())
}

/// The security groups of an interface: given ones must exist in its VPC; none means the
/// VPC's default group.
pub fn resolve_groups<V: Read>(
    v: &V,
    s: Scope,
    vpc: &VpcRecord,
    groups: Option<&Vec<String>>,
) -> Result<Vec<String>, Fail> {
    match groups {
        None => Ok(vec![vpc.default_security_group_id.clone()]),
        Some(gs) => {
            for g in gs {
                match v.get::<SecurityGroupRecord>(s, g)? {
                    Some(sg) if sg.vpc_id == vpc.id => {}
                    Some(_) => {
                        return Err(Fail(Ec2Error::new(
                            "InvalidGroup.NotFound",
                            format!(
                                "The security group '{g}' does not exist in VPC '{}'",
                                vpc.id
                            ),
                        )))
                    }
                    None => {
                        return Err(Fail(Ec2Error::new(
                            "InvalidGroup.NotFound",
                            format!("The security group '{g}' does not exist"),
                        )))
                    }
                }
            }
            Ok(gs.clone())
        }
    }
}

/// The settings of a new interface besides its addresses.
pub struct NewEni {
    pub description: String,
    pub interface_type: String,
    pub groups: Vec<String>,
    /// Set for interfaces a service manages (a NAT gateway's): they are requester-managed.
    pub requester_id: Option<String>,
    /// Set when the interface is born attached (an instance's, at launch).
    pub attachment: Option<EniAttachment>,
}

/// Makes an interface in `subnet` with the addresses `want` asks for, held in the store; returns
/// it with the allocator to commit once the transaction has.
pub fn new_eni(
    tx: &Tx,
    net: &NetState,
    s: Scope,
    subnet: &SubnetRecord,
    want: &Want,
    spec: NewEni,
) -> Result<(EniRecord, SubnetIps), Fail> {
    let mut ips = net.allocator(tx, s, subnet)?;
    let eni = new_eni_with(tx, s, subnet, want, spec, &mut ips)?;
    Ok((eni, ips))
}

/// Like [`new_eni`], taking addresses from an allocator the caller holds (a launch of several
/// instances keeps one per subnet until it commits).
pub fn new_eni_with(
    tx: &Tx,
    s: Scope,
    subnet: &SubnetRecord,
    want: &Want,
    spec: NewEni,
    ips: &mut SubnetIps,
) -> Result<EniRecord, Fail> {
    let (primary, secondary, prefixes) = allocate(ips, want, true)?;
    let primary = primary.ok_or(Fail(Ec2Error::internal()))?;
    let id = new_id("eni");
    let mut addrs = vec![primary];
    addrs.extend(&secondary);
    hold(tx, s, &subnet.id, &id, &addrs, &prefixes)?;
    // The subnet's AssignIpv6AddressOnCreation gives a user's interface one IPv6 address
    // unless the request said how many (0 included).
    let mut want6 = want.ipv6.clone();
    if spec.requester_id.is_none()
        && want6.count.is_none()
        && want6.addrs.is_empty()
        && subnet.assign_ipv6_on_creation
    {
        want6.count = Some(1);
    }
    let taken6 = crate::ipv6_addresses::take(tx, s, subnet, &id, &want6)?;
    let rec = EniRecord {
        id,
        subnet_id: subnet.id.clone(),
        vpc_id: subnet.vpc_id.clone(),
        zone: subnet.zone.clone(),
        zone_id: subnet.zone_id.clone(),
        description: spec.description,
        mac: network::new_mac(),
        addresses: addrs
            .iter()
            .enumerate()
            .map(|(i, a)| EniAddress {
                addr: addr_to_string(*a),
                primary: i == 0,
            })
            .collect(),
        prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
        ipv6: taken6.addrs,
        ipv6_prefixes: taken6.prefixes,
        primary_ipv6: want.primary_ipv6,
        groups: spec.groups,
        source_dest_check: true,
        interface_type: spec.interface_type,
        requester_managed: spec.requester_id.is_some(),
        requester_id: spec.requester_id,
        attachment: spec.attachment,
    };
    tx.insert(s, &rec)?;
    Ok(rec)
}

/// What a CreateNetworkInterface asks of addresses and prefixes, each of its form, with one
/// primary address at most.
fn create_want(input: &CreateNetworkInterfaceRequest) -> Result<Want, Ec2Error> {
    let mut want = Want {
        secondary_count: check_count(
            "SecondaryPrivateIpAddressCount",
            input.secondary_private_ip_address_count,
        )?,
        prefix_count: check_count("Ipv4PrefixCount", input.ipv4_prefix_count)?,
        ..Want::default()
    };
    if let Some(p) = &input.private_ip_address {
        want.primary = Some(parse_ip(p)?);
    }
    for spec in input.private_ip_addresses.iter().flatten() {
        let Some(a) = &spec.private_ip_address else {
            continue;
        };
        let a = parse_ip(a)?;
        if spec.primary == Some(true) {
            if want.primary.is_some_and(|p| p != a) {
                return Err(Ec2Error::new(
                    "InvalidParameterCombination",
                    "Only one primary private IP address can be specified.",
                ));
            }
            want.primary = Some(a);
        } else if want.primary != Some(a) {
            want.secondary.push(a);
        }
    }
    for p in input.ipv4_prefixes.iter().flatten() {
        want.prefixes
            .push(parse_prefix(p.ipv4_prefix.as_deref().unwrap_or(""))?);
    }
    want.ipv6 = crate::ipv6_addresses::Want6::of(
        input.ipv6_address_count,
        &v6_list(input.ipv6_addresses.as_deref()),
    )?
    .with_prefixes(
        input.ipv6_prefix_count,
        &v6_prefix_list(input.ipv6_prefixes.as_deref()),
    )?;
    want.primary_ipv6 = input.enable_primary_ipv6 == Some(true);
    Ok(want)
}

/// The prefixes of a request's `Ipv6Prefixes` list.
pub fn v6_prefix_list(l: Option<&[Ipv6PrefixSpecificationRequest]>) -> Vec<String> {
    l.unwrap_or_default()
        .iter()
        .filter_map(|p| p.ipv6_prefix.clone())
        .collect()
}

/// The addresses of a request's `Ipv6Addresses` list.
pub fn v6_list(l: Option<&[InstanceIpv6Address]>) -> Vec<String> {
    l.unwrap_or_default()
        .iter()
        .filter_map(|a| a.ipv6_address.clone())
        .collect()
}

/// CreateNetworkInterface, before any lookup. Phase 1: addresses or a count, prefixes or a
/// count, never both of a pair. Phase 2: the settings Kumo does not take, the counts, each
/// address and prefix (a /28), one primary at most, the tags and the token. The subnet, its
/// VPC, the groups and the addresses' availability follow.
impl Checks for CreateNetworkInterfaceRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        combination(
            self.private_ip_addresses
                .as_ref()
                .is_some_and(|l| !l.is_empty()),
            self.secondary_private_ip_address_count.is_some(),
            "PrivateIpAddresses",
            "SecondaryPrivateIpAddressCount",
        )?;
        combination(
            self.ipv4_prefixes.is_some(),
            self.ipv4_prefix_count.is_some(),
            "Ipv4Prefixes",
            "Ipv4PrefixCount",
        )
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        crate::core::error::refuse_settings(
            "CreateNetworkInterface",
            &[
                (
                    "ConnectionTrackingSpecification",
                    self.connection_tracking_specification.is_some(),
                ),
                (
                    "InterfaceType (EFA and trunking)",
                    self.interface_type.is_some(),
                ),
                ("Operator", self.operator.is_some()),
            ],
        )?;
        create_want(self)?;
        tags::from_specifications(self.tag_specifications.clone(), "network-interface")?;
        idempotency::check_token(self.client_token.as_deref())
    }
}

pub fn create(
    store: &Store,
    net: &NetState,
    ctx: &RequestContext,
    input: CreateNetworkInterfaceRequest,
) -> Result<CreateNetworkInterfaceResult, Ec2Error> {
    let want = create_want(&input)?;
    let interface_type = input
        .interface_type
        .clone()
        .unwrap_or_else(|| "interface".into());
    let tag_list =
        tags::from_specifications(input.tag_specifications.clone(), "network-interface")?;
    let s = scope(ctx);
    let digest = idempotency::digest(&input);
    let token = input.client_token.as_deref();
    let (rec, _) = store
        .write_then(
            !ctx.dry_run,
            |tx| {
                if let Some(id) =
                    idempotency::earlier(tx, s, "CreateNetworkInterface", token, &digest)?
                {
                    let tags = tx.tags_of(s, &id)?;
                    return Ok::<_, Fail>((
                        Tagged {
                            item: get_eni(tx, s, &id)?,
                            tags,
                        },
                        None,
                    ));
                }
                let subnet = get_subnet(tx, s, &input.subnet_id)?;
                let vpc = crate::vpcs::get_vpc(tx, s, &subnet.vpc_id)?;
                let groups = resolve_groups(tx, s, &vpc, input.groups.as_ref())?;
                let spec = NewEni {
                    description: input.description.clone().unwrap_or_default(),
                    interface_type: interface_type.clone(),
                    groups,
                    requester_id: None,
                    attachment: None,
                };
                let (rec, ips) = new_eni(tx, net, s, &subnet, &want, spec)?;
                tags::put_all(tx, s, &rec.id, "network-interface", &tag_list)?;
                idempotency::remember(tx, s, "CreateNetworkInterface", token, &digest, &rec.id)?;
                Ok((
                    Tagged {
                        item: rec,
                        tags: tags::wire_pairs(&tag_list),
                    },
                    Some(ips),
                ))
            },
            |(rec, ips)| {
                if let Some(ips) = ips {
                    net.commit(s, &rec.item.subnet_id, ips)
                }
            },
        )
        .map_err(|f| f.0)?;
    let names = store.read(|v| group_names(v, s)).map_err(|f| f.0)?;
    let mut out = wire_eni(ctx, &rec, &names, &[]);
    // The answer names who asked for the interface, as AWS's does (its CLI examples show the
    // caller's principal id; DescribeNetworkInterfaces shows it only for a service's
    // interfaces). The caller's principal is what GetCallerIdentity reports as its UserId.
    out.requester_id
        .get_or_insert_with(|| ctx.account_id.clone());
    Ok(CreateNetworkInterfaceResult {
        network_interface: Some(out),
        client_token: input.client_token,
    })
}

pub fn delete(
    store: &Store,
    net: &NetState,
    ctx: &RequestContext,
    input: DeleteNetworkInterfaceRequest,
) -> Result<(), Ec2Error> {
    let s = scope(ctx);
    store
        .write_then(
            !ctx.dry_run,
            |tx| {
                let eni = get_eni(tx, s, &input.network_interface_id)?;
                if eni.attachment.is_some() || eni.requester_managed {
                    return Err(Fail(Ec2Error::new(
                        "InvalidNetworkInterface.InUse",
                        format!("Interface: [{}] in use.", eni.id),
                    )));
                }
                let subnet = get_subnet(tx, s, &eni.subnet_id)?;
                let mut ips = net.allocator(tx, s, &subnet)?;
                for a in eni.addresses.iter().filter_map(|a| parse_addr(&a.addr)) {
                    ips.release(a);
                }
                for p in eni.prefixes.iter().filter_map(|p| Cidr::parse(p).ok()) {
                    ips.release_prefix(p);
                }
                tx.release_owner(s, &eni.id)?;
                tx.delete::<EniRecord>(s, &eni.id)?;
                Ok((eni.subnet_id, ips))
            },
            |(subnet, ips)| net.commit(s, subnet, ips),
        )
        .map_err(|f: Fail| f.0)?;
    Ok(())
}

fn status(e: &EniRecord) -> &'static str {
    // An interface endpoint's interface is in use by the endpoint, attached to nothing.
    if e.attachment.is_some() || e.interface_type == "vpc_endpoint" {
        "in-use"
    } else {
        "available"
    }
}

/// The public side of one private address, when an Elastic IP points at it.
fn association(
    ctx: &RequestContext,
    eips: &[AddressRecord],
    eni: &str,
    private_ip: &str,
) -> Option<NetworkInterfaceAssociation> {
    let a = eips.iter().find(|a| {
        a.association
            .as_ref()
            .is_some_and(|x| x.eni_id == eni && x.private_ip == private_ip)
    })?;
    let dashed = a.public_ip.replace('.', "-");
    Some(NetworkInterfaceAssociation {
        allocation_id: Some(a.id.clone()),
        association_id: a.association.as_ref().map(|x| x.id.clone()),
        ip_owner_id: Some(ctx.account_id.clone()),
        public_ip: Some(a.public_ip.clone()),
        public_dns_name: Some(if ctx.region == "us-east-1" {
            format!("ec2-{dashed}.compute-1.amazonaws.com")
        } else {
            format!("ec2-{dashed}.{}.compute.amazonaws.com", ctx.region)
        }),
        ..NetworkInterfaceAssociation::default()
    })
}

pub fn wire_eni(
    ctx: &RequestContext,
    t: &Tagged<EniRecord>,
    names: &HashMap<String, String>,
    eips: &[AddressRecord],
) -> NetworkInterface {
    let e = &t.item;
    let primary = e
        .addresses
        .iter()
        .find(|a| a.primary)
        .map(|a| a.addr.clone());
    NetworkInterface {
        association: primary
            .as_deref()
            .and_then(|p| association(ctx, eips, &e.id, p)),
        network_interface_id: Some(e.id.clone()),
        subnet_id: Some(e.subnet_id.clone()),
        vpc_id: Some(e.vpc_id.clone()),
        availability_zone: Some(e.zone.clone()),
        availability_zone_id: Some(e.zone_id.clone()),
        description: Some(e.description.clone()),
        groups: Some(
            e.groups
                .iter()
                .map(|g| GroupIdentifier {
                    group_id: Some(g.clone()),
                    group_name: names.get(g).cloned(),
                })
                .collect(),
        ),
        interface_type: Some(e.interface_type.clone()),
        ipv4_prefixes: (!e.prefixes.is_empty()).then(|| {
            e.prefixes
                .iter()
                .map(|p| Ipv4PrefixSpecification {
                    ipv4_prefix: Some(p.clone()),
                })
                .collect()
        }),
        ipv6_prefixes: (!e.ipv6_prefixes.is_empty()).then(|| {
            e.ipv6_prefixes
                .iter()
                .map(|p| Ipv6PrefixSpecification {
                    ipv6_prefix: Some(p.clone()),
                })
                .collect()
        }),
        ipv6_address: e.ipv6.first().cloned(),
        ipv6_addresses: Some(
            e.ipv6
                .iter()
                .enumerate()
                .map(|(i, a)| NetworkInterfaceIpv6Address {
                    ipv6_address: Some(a.clone()),
                    is_primary_ipv6: Some(e.primary_ipv6 && i == 0),
                    ..NetworkInterfaceIpv6Address::default()
                })
                .collect(),
        ),
        mac_address: Some(e.mac.clone()),
        owner_id: Some(ctx.account_id.clone()),
        private_dns_name: primary
            .as_ref()
            .map(|p| network::private_dns_name(&ctx.region, p)),
        private_ip_address: primary,
        private_ip_addresses: Some(
            e.addresses
                .iter()
                .map(|a| NetworkInterfacePrivateIpAddress {
                    primary: Some(a.primary),
                    private_ip_address: Some(a.addr.clone()),
                    private_dns_name: Some(network::private_dns_name(&ctx.region, &a.addr)),
                    association: association(ctx, eips, &e.id, &a.addr),
                })
                .collect(),
        ),
        requester_id: e.requester_id.clone(),
        requester_managed: Some(e.requester_managed),
        source_dest_check: Some(e.source_dest_check),
        status: Some(status(e).into()),
        tag_set: Some(tags::wire(&t.tags)),
        attachment: e.attachment.as_ref().map(|a| NetworkInterfaceAttachment {
            attachment_id: Some(a.id.clone()),
            instance_id: Some(a.instance_id.clone()),
            instance_owner_id: Some(ctx.account_id.clone()),
            device_index: Some(a.device_index),
            network_card_index: Some(0),
            status: Some(a.status.clone()),
            delete_on_termination: Some(a.delete_on_termination),
            attach_time: Some(DateTime(a.attach_time_ms)),
            ..NetworkInterfaceAttachment::default()
        }),
        ..NetworkInterface::default()
    }
}

struct EniView<'a> {
    t: &'a Tagged<EniRecord>,
    owner: &'a str,
    names: &'a HashMap<String, String>,
    region: &'a str,
    eips: &'a [AddressRecord],
}

impl EniView<'_> {
    fn eips(&self) -> impl Iterator<Item = (&AddressRecord, &crate::records::net::EipAssociation)> {
        let id = &self.t.item.id;
        self.eips.iter().filter_map(move |a| {
            a.association
                .as_ref()
                .filter(|x| &x.eni_id == id)
                .map(|x| (a, x))
        })
    }
}

fn tf(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

impl Filterable<F> for EniView<'_> {
    fn field(&self, f: F, out: &mut dyn FnMut(&str)) {
        let e = &self.t.item;
        let att = e.attachment.as_ref();
        match f {
            F::AddressesPrivateIpAddress => e.addresses.iter().for_each(|a| out(&a.addr)),
            F::AddressesAssociationPublicIp | F::AssociationPublicIp => {
                self.eips().for_each(|(a, _)| out(&a.public_ip))
            }
            F::AddressesAssociationOwnerId | F::AssociationIpOwnerId => {
                self.eips().for_each(|_| out(self.owner))
            }
            F::AssociationAllocationId => self.eips().for_each(|(a, _)| out(&a.id)),
            F::AssociationPublicDnsName => self.eips().for_each(|(a, _)| {
                out(&crate::repo::instance::public_dns(
                    self.region,
                    &a.public_ip,
                ))
            }),
            F::AssociationAssociationId => self.eips().for_each(|(_, x)| out(&x.id)),
            F::AddressesPrimary => e.addresses.iter().for_each(|a| out(tf(a.primary))),
            F::PrivateIpAddress => e
                .addresses
                .iter()
                .filter(|a| a.primary)
                .for_each(|a| out(&a.addr)),
            F::PrivateDnsName => e
                .addresses
                .iter()
                .filter(|a| a.primary)
                .for_each(|a| out(&network::private_dns_name(self.region, &a.addr))),
            F::Ipv4PrefixIpv4Prefix => e.prefixes.iter().map(String::as_str).for_each(&mut *out),
            F::AttachmentAttachmentId => att.iter().for_each(|a| out(&a.id)),
            F::AttachmentInstanceId => att.iter().for_each(|a| out(&a.instance_id)),
            F::AttachmentInstanceOwnerId => att.iter().for_each(|_| out(self.owner)),
            F::AttachmentDeviceIndex => att.iter().for_each(|a| out(&a.device_index.to_string())),
            F::AttachmentStatus => att.iter().for_each(|a| out(&a.status)),
            F::AttachmentDeleteOnTermination => {
                att.iter().for_each(|a| out(tf(a.delete_on_termination)))
            }
            F::AttachmentAttachTime => att
                .iter()
                .for_each(|a| out(&DateTime(a.attach_time_ms).to_iso8601())),
            F::AvailabilityZone => out(&e.zone),
            F::AvailabilityZoneId => out(&e.zone_id),
            F::Description => out(&e.description),
            F::GroupId => e.groups.iter().map(String::as_str).for_each(&mut *out),
            F::GroupName => e
                .groups
                .iter()
                .filter_map(|g| self.names.get(g))
                .map(String::as_str)
                .for_each(&mut *out),
            F::InterfaceType => out(&e.interface_type),
            F::MacAddress => out(&e.mac),
            F::NetworkInterfaceId => out(&e.id),
            F::OwnerId => out(self.owner),
            F::RequesterId => e
                .requester_id
                .iter()
                .map(String::as_str)
                .for_each(&mut *out),
            F::RequesterManaged => out(tf(e.requester_managed)),
            F::SourceDestCheck => out(tf(e.source_dest_check)),
            F::Status => out(status(e)),
            F::SubnetId => out(&e.subnet_id),
            F::VpcId => out(&e.vpc_id),
            F::Ipv6AddressesIpv6Address => e.ipv6.iter().for_each(|a| out(a)),
            // Refused when compiling.
            F::OperatorManaged | F::OperatorPrincipal => {}
        }
    }
    fn tags(&self) -> &[(String, String)] {
        &self.t.tags
    }
}

pub fn describe(
    store: &Store,
    ctx: &RequestContext,
    input: DescribeNetworkInterfacesRequest,
) -> Result<DescribeNetworkInterfacesResult, Ec2Error> {
    let fs = filters::compile::<F>(input.filters, &[F::OperatorManaged, F::OperatorPrincipal])?;
    let ids = input.network_interface_ids.unwrap_or_default();
    let s = scope(ctx);
    let (page, next, names, eips) = store
        .read(|v| {
            // An exact address filter is answered from the address index.
            let by_addr = match describe::both(
                fs.exact(F::AddressesPrivateIpAddress),
                fs.exact(F::PrivateIpAddress),
            ) {
                Some(addrs) => {
                    let mut owners: Vec<String> = Vec::new();
                    for a in addrs {
                        if let Some(a) = parse_addr(a) {
                            owners.extend(v.addr_owners(s, a)?);
                        }
                    }
                    Some(owners)
                }
                None => None,
            };
            let push_ids = describe::both(
                fs.exact(F::NetworkInterfaceId),
                by_addr
                    .as_ref()
                    .map(|o| o.iter().map(String::as_str).collect()),
            );
            let req = describe::Request {
                op: "DescribeNetworkInterfaces",
                ids: &ids,
                not_found: &not_found,
                push: Push {
                    ids: push_ids,
                    vpcs: fs.exact(F::VpcId),
                    subnets: fs.exact(F::SubnetId),
                    tag: fs.exact_tag(),
                },
                max_results: input.max_results,
                bounds: (5, 1000),
                next_token: input.next_token.as_deref(),
            };
            let names = group_names(v, s)?;
            let eips = crate::repo::address::by_interface(v, s)?;
            let (page, next) = describe::run(v, s, &req, |t: &Tagged<EniRecord>| {
                fs.matches(&EniView {
                    t,
                    owner: &ctx.account_id,
                    names: &names,
                    region: &ctx.region,
                    eips: &eips,
                })
            })?;
            Ok::<_, Fail>((page, next, names, eips))
        })
        .map_err(|f| f.0)?;
    Ok(DescribeNetworkInterfacesResult {
        network_interfaces: Some(
            page.iter()
                .map(|t| wire_eni(ctx, t, &names, &eips))
                .collect(),
        ),
        next_token: next,
    })
}

/// Each listed address and delegated prefix, of its form.
fn addresses_and_prefixes(
    addresses: &Option<Vec<String>>,
    prefixes: &Option<Vec<String>>,
) -> Result<(), Ec2Error> {
    for a in addresses.iter().flatten() {
        parse_ip(a)?;
    }
    for p in prefixes.iter().flatten() {
        parse_prefix(p)?;
    }
    Ok(())
}

/// AssignPrivateIpAddresses, before any lookup: addresses or a count, prefixes or a count,
/// never both of a pair, at least one; then each address's and prefix's form and the counts.
/// The interface, its subnet, the addresses' owners and the type's address limit follow in
/// the operation.
impl Checks for AssignPrivateIpAddressesRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        let listed = self
            .private_ip_addresses
            .as_ref()
            .is_some_and(|l| !l.is_empty());
        let prefixes = self.ipv4_prefixes.as_ref().is_some_and(|l| !l.is_empty());
        combination(
            listed,
            self.secondary_private_ip_address_count.is_some(),
            "PrivateIpAddresses",
            "SecondaryPrivateIpAddressCount",
        )?;
        combination(
            prefixes,
            self.ipv4_prefix_count.is_some(),
            "Ipv4Prefixes",
            "Ipv4PrefixCount",
        )?;
        if !listed
            && !prefixes
            && self.secondary_private_ip_address_count.is_none()
            && self.ipv4_prefix_count.is_none()
        {
            return Err(Ec2Error::missing_parameter(
                "PrivateIpAddress, SecondaryPrivateIpAddressCount, Ipv4Prefix or Ipv4PrefixCount",
            ));
        }
        Ok(())
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        addresses_and_prefixes(&self.private_ip_addresses, &self.ipv4_prefixes)?;
        check_count(
            "SecondaryPrivateIpAddressCount",
            self.secondary_private_ip_address_count,
        )?;
        check_count("Ipv4PrefixCount", self.ipv4_prefix_count).map(drop)
    }
}

/// UnassignPrivateIpAddresses, before any lookup: addresses or prefixes, each of its form.
impl Checks for UnassignPrivateIpAddressesRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        let none = |l: &Option<Vec<String>>| l.as_ref().is_none_or(Vec::is_empty);
        if none(&self.private_ip_addresses) && none(&self.ipv4_prefixes) {
            return Err(Ec2Error::missing_parameter(
                "PrivateIpAddress or Ipv4Prefix",
            ));
        }
        Ok(())
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        addresses_and_prefixes(&self.private_ip_addresses, &self.ipv4_prefixes)
    }
}

/// DescribeNetworkInterfaces, before any lookup: ids or a page size, not both; the page.
impl Checks for DescribeNetworkInterfacesRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        checks::ids_or_page(
            self.network_interface_ids.as_ref(),
            self.max_results,
            "NetworkInterfaceIds",
        )
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        checks::page(
            "DescribeNetworkInterfaces",
            self.max_results,
            self.next_token.as_deref(),
            (5, 1000),
        )
    }
}

/// DescribeNetworkInterfaceAttribute: an attribute (the decoder checks its value).
impl Checks for DescribeNetworkInterfaceAttributeRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        checks::given(&self.attribute, "attribute")
    }
}

pub fn assign(
    store: &Store,
    net: &NetState,
    ctx: &RequestContext,
    input: AssignPrivateIpAddressesRequest,
) -> Result<AssignPrivateIpAddressesResult, Ec2Error> {
    let listed = input.private_ip_addresses.clone().unwrap_or_default();
    let prefixes_listed = input.ipv4_prefixes.clone().unwrap_or_default();
    let want_secondary: Vec<u32> = listed
        .iter()
        .map(|a| parse_ip(a))
        .collect::<Result<_, _>>()?;
    let want_prefixes: Vec<Cidr> = prefixes_listed
        .iter()
        .map(|p| parse_prefix(p))
        .collect::<Result<_, _>>()?;
    let want = Want {
        primary: None,
        secondary: want_secondary,
        secondary_count: check_count(
            "SecondaryPrivateIpAddressCount",
            input.secondary_private_ip_address_count,
        )?,
        prefixes: want_prefixes,
        prefix_count: check_count("Ipv4PrefixCount", input.ipv4_prefix_count)?,
        ..Want::default()
    };
    let reassign = input.allow_reassignment.unwrap_or(false);
    let s = scope(ctx);
    let (secondary, prefixes, _, _) = store
        .write_then(
            !ctx.dry_run,
            |tx| {
                let mut eni = get_eni(tx, s, &input.network_interface_id)?;
                crate::repo::eni::check_not_managed(&eni)?;
                let subnet = get_subnet(tx, s, &eni.subnet_id)?;
                let mut ips = net.allocator(tx, s, &subnet)?;
                // With AllowReassignment, a requested address held by another interface of the
                // subnet moves here.
                if reassign {
                    for a in &want.secondary {
                        let Some(owner) = tx.addr_owner(s, &subnet.id, *a)? else {
                            continue;
                        };
                        if owner == eni.id {
                            continue;
                        }
                        let text = addr_to_string(*a);
                        let mut other = get_eni(tx, s, &owner)?;
                        if other.addresses.iter().any(|x| x.primary && x.addr == text)
                            || other
                                .prefixes
                                .iter()
                                .any(|p| parse_prefix(p).is_ok_and(|p| p.contains_addr(*a)))
                        {
                            return Err(Fail(alloc_error(AllocError::InUse, &text)));
                        }
                        other.addresses.retain(|x| x.addr != text);
                        tx.update(s, &other)?;
                        tx.release_addrs(s, &subnet.id, &[*a])?;
                        ips.release(*a);
                    }
                }
                let (_, secondary, prefixes) = allocate(&mut ips, &want, false)?;
                // The limit last, after the lookups and the addresses' state (`core::checks`):
                // an attached interface holds at most its instance type's addresses; each /28
                // prefix counts as one.
                if let Some(a) = &eni.attachment {
                    if let Some(r) =
                        tx.get::<crate::records::instance::InstanceRecord>(s, &a.instance_id)?
                    {
                        if let Some(info) = crate::instance_types::find(&r.instance_type) {
                            let (_, max_ips) = crate::repo::instance::limits(info);
                            let adding = want.secondary.len()
                                + want.secondary_count as usize
                                + want.prefixes.len()
                                + want.prefix_count as usize;
                            if crate::repo::instance::slots(&eni) + adding > max_ips {
                                return Err(Fail(crate::repo::instance::address_limit()));
                            }
                        }
                    }
                }
                hold(tx, s, &subnet.id, &eni.id, &secondary, &prefixes)?;
                eni.addresses.extend(secondary.iter().map(|a| EniAddress {
                    addr: addr_to_string(*a),
                    primary: false,
                }));
                eni.prefixes.extend(prefixes.iter().map(|p| p.to_string()));
                tx.update(s, &eni)?;
                Ok::<_, Fail>((secondary, prefixes, subnet.id, ips))
            },
            |(_, _, subnet, ips)| net.commit(s, subnet, ips),
        )
        .map_err(|f| f.0)?;
    Ok(AssignPrivateIpAddressesResult {
        network_interface_id: Some(input.network_interface_id),
        assigned_private_ip_addresses: Some(
            secondary
                .iter()
                .map(|a| AssignedPrivateIpAddress {
                    private_ip_address: Some(addr_to_string(*a)),
                })
                .collect(),
        ),
        assigned_ipv4_prefixes: Some(
            prefixes
                .iter()
                .map(|p| Ipv4PrefixSpecification {
                    ipv4_prefix: Some(p.to_string()),
                })
                .collect(),
        ),
    })
}

pub fn unassign(
    store: &Store,
    net: &NetState,
    ctx: &RequestContext,
    input: UnassignPrivateIpAddressesRequest,
) -> Result<(), Ec2Error> {
    let addrs = input.private_ip_addresses.clone().unwrap_or_default();
    let prefixes = input.ipv4_prefixes.clone().unwrap_or_default();
    let s = scope(ctx);
    store
        .write_then(
            !ctx.dry_run,
            |tx| {
                let mut eni = get_eni(tx, s, &input.network_interface_id)?;
                for a in &addrs {
                    match eni.addresses.iter().find(|x| &x.addr == a) {
                        None => {
                            return Err(Fail(Ec2Error::invalid_value(format!(
                                "Some of the specified addresses are not assigned to interface {}",
                                eni.id
                            ))))
                        }
                        Some(x) if x.primary => {
                            return Err(Fail(Ec2Error::invalid_value(format!(
                        "The primary private IP address {a} of interface {} cannot be unassigned.",
                        eni.id
                    ))))
                        }
                        Some(_) => {}
                    }
                }
                let sn = get_subnet(tx, s, &eni.subnet_id)?;
                let mut ips = net.allocator(tx, s, &sn)?;
                let mut freed: Vec<u32> = Vec::new();
                for p in &prefixes {
                    let c = parse_prefix(p)?;
                    if !eni.prefixes.iter().any(|x| *x == c.to_string()) {
                        return Err(Fail(Ec2Error::invalid_value(format!(
                            "Some of the specified prefixes are not assigned to interface {}",
                            eni.id
                        ))));
                    }
                    freed.extend(prefix_addrs(&c));
                    ips.release_prefix(c);
                    eni.prefixes.retain(|x| *x != c.to_string());
                }
                for a in &addrs {
                    let x = parse_ip(a)?;
                    freed.push(x);
                    ips.release(x);
                    eni.addresses.retain(|y| &y.addr != a);
                }
                tx.release_addrs(s, &eni.subnet_id, &freed)?;
                tx.update(s, &eni)?;
                Ok((eni.subnet_id, ips))
            },
            |(subnet, ips)| net.commit(s, subnet, ips),
        )
        .map_err(|f: Fail| f.0)?;
    Ok(())
}

/// ModifyNetworkInterfaceAttribute, before any lookup: exactly one attribute.
impl Checks for ModifyNetworkInterfaceAttributeRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        let given = [
            self.description.is_some(),
            self.source_dest_check
                .as_ref()
                .and_then(|v| v.value)
                .is_some(),
            self.groups.is_some(),
            self.attachment.is_some(),
            self.enable_primary_ipv6.is_some(),
        ];
        match given.iter().filter(|g| **g).count() {
            1 => Ok(()),
            0 => Err(Ec2Error::missing_parameter("attribute")),
            _ => Err(Ec2Error::new(
                "InvalidParameterCombination",
                "Fields for multiple attribute types specified",
            )),
        }
    }
}

pub fn modify_attribute(
    store: &Store,
    ctx: &RequestContext,
    input: ModifyNetworkInterfaceAttributeRequest,
) -> Result<(), Ec2Error> {
    let description = input
        .description
        .as_ref()
        .map(|d| d.value.clone().unwrap_or_default());
    let sdc = input.source_dest_check.as_ref().and_then(|v| v.value);
    let s = scope(ctx);
    store
        .write(!ctx.dry_run, |tx| {
            let mut eni = get_eni(tx, s, &input.network_interface_id)?;
            if input.groups.is_some() {
                // The endpoint's or gateway's groups are set through the service.
                crate::repo::eni::check_not_managed(&eni)?;
            }
            if let Some(d) = description {
                eni.description = d;
            }
            if let Some(v) = sdc {
                eni.source_dest_check = v;
            }
            match input.enable_primary_ipv6 {
                Some(true) => eni.primary_ipv6 = true,
                Some(false) if eni.primary_ipv6 => {
                    return Err(Fail(Ec2Error::invalid_value(format!(
                        "The primary IPv6 address of network interface {} cannot be disabled once enabled.",
                        eni.id
                    ))))
                }
                _ => {}
            }
            if let Some(groups) = &input.groups {
                let vpc = crate::vpcs::get_vpc(tx, s, &eni.vpc_id)?;
                eni.groups = resolve_groups(tx, s, &vpc, Some(groups))?;
            }
            if let Some(change) = &input.attachment {
                let wanted = change.attachment_id.clone().unwrap_or_default();
                match eni.attachment.as_mut() {
                    Some(a) if a.id == wanted => {
                        if let Some(d) = change.delete_on_termination {
                            a.delete_on_termination = d;
                        }
                    }
                    _ => {
                        return Err(Fail(Ec2Error::new(
                            "InvalidAttachmentID.NotFound",
                            format!(
                                "The network interface attachment ID '{wanted}' does not exist"
                            ),
                        )))
                    }
                }
            }
            tx.update(s, &eni)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)
}

pub fn describe_attribute(
    store: &Store,
    ctx: &RequestContext,
    input: DescribeNetworkInterfaceAttributeRequest,
) -> Result<DescribeNetworkInterfaceAttributeResult, Ec2Error> {
    let s = scope(ctx);
    let (eni, names) = store
        .read(|v| {
            Ok::<_, Fail>((
                get_eni(v, s, &input.network_interface_id)?,
                group_names(v, s)?,
            ))
        })
        .map_err(|f| f.0)?;
    let full = wire_eni(
        ctx,
        &Tagged {
            item: eni.clone(),
            tags: Vec::new(),
        },
        &names,
        &[],
    );
    let mut out = DescribeNetworkInterfaceAttributeResult {
        network_interface_id: Some(eni.id.clone()),
        ..DescribeNetworkInterfaceAttributeResult::default()
    };
    match input.attribute.as_deref() {
        Some("description") => {
            out.description = Some(AttributeValue {
                value: Some(eni.description),
            })
        }
        Some("groupSet") => out.groups = full.groups,
        Some("sourceDestCheck") => {
            out.source_dest_check = Some(AttributeBooleanValue {
                value: Some(eni.source_dest_check),
            })
        }
        Some("attachment") => out.attachment = full.attachment,
        Some("associatePublicIpAddress") => out.associate_public_ip_address = Some(false),
        // The decoder takes only the model's values, and `Checks` wants one.
        _ => return Err(Ec2Error::missing_parameter("attribute")),
    }
    if ctx.dry_run {
        return Err(Ec2Error::dry_run());
    }
    Ok(out)
}
