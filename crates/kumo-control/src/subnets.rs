//! Subnets and subnet CIDR reservations.

use crate::core::checks::{self, Checks};
use crate::core::describe::{self, Push};
use crate::core::error::Fail;
use crate::core::filters;
use crate::core::ids::new_id;
use crate::network::{self, NetState};
use crate::records::net::*;
use crate::scope;
use crate::tags::{self, Tagged};
use crate::vpcs::{get_vpc, parse_cidr};
use kumo_ec2_wire::filters::{DescribeSubnets as SubnetF, GetSubnetCidrReservations as ResF};
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_model::cidr::{Cidr, Cidr6};
use kumo_model::filter::Filterable;
use kumo_model::regions;
use kumo_store::{Query, Read, Scope, Store, Tx};
use std::collections::HashMap;

pub fn not_found(id: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidSubnetID.NotFound",
        format!("The subnet ID '{id}' does not exist"),
    )
}

pub fn get_subnet<V: Read>(v: &V, s: Scope, id: &str) -> Result<SubnetRecord, Fail> {
    v.get(s, id)?.ok_or_else(|| Fail(not_found(id)))
}

fn range_error(c: &str) -> Ec2Error {
    Ec2Error::new("InvalidSubnet.Range", format!("The CIDR '{c}' is invalid."))
}

/// `size − 5 − in use`, from the pool counts of the store.
fn available(sn: &SubnetRecord, counts: &HashMap<String, u64>) -> i32 {
    let size = Cidr::parse(&sn.cidr).map(|c| c.size()).unwrap_or(0);
    let used = counts.get(&sn.id).copied().unwrap_or(0);
    size.saturating_sub(5).saturating_sub(used) as i32
}

/// The subnet's ARN, as the answer and the `subnet-arn` filter show it.
fn arn(region: &str, account: &str, id: &str) -> String {
    format!("arn:aws:ec2:{region}:{account}:subnet/{id}")
}

pub fn wire_subnet(ctx: &RequestContext, t: &Tagged<SubnetRecord>, available_ips: i32) -> Subnet {
    let sn = &t.item;
    Subnet {
        subnet_id: Some(sn.id.clone()),
        subnet_arn: Some(arn(&ctx.region, &ctx.account_id, &sn.id)),
        vpc_id: Some(sn.vpc_id.clone()),
        cidr_block: Some(sn.cidr.clone()),
        availability_zone: Some(sn.zone.clone()),
        availability_zone_id: Some(sn.zone_id.clone()),
        available_ip_address_count: Some(available_ips),
        default_for_az: Some(sn.default_for_az),
        map_public_ip_on_launch: Some(sn.map_public_ip_on_launch),
        map_customer_owned_ip_on_launch: Some(false),
        assign_ipv6_address_on_creation: Some(sn.assign_ipv6_on_creation),
        enable_dns64: Some(sn.enable_dns64),
        ipv6_native: Some(false),
        ipv6_cidr_block_association_set: Some(
            sn.ipv6
                .iter()
                .map(|c| ipv6_association(c, "associated"))
                .collect(),
        ),
        owner_id: Some(ctx.account_id.clone()),
        state: Some("available".into()),
        private_dns_name_options_on_launch: Some(PrivateDnsNameOptionsOnLaunch {
            hostname_type: Some(sn.hostname_type.clone()),
            enable_resource_name_dns_a_record: Some(sn.resource_name_dns_a_record),
            enable_resource_name_dns_aaaa_record: Some(sn.resource_name_dns_aaaa_record),
        }),
        tags: Some(tags::wire(&t.tags)),
        ..Subnet::default()
    }
}

/// CreateSubnet, before any lookup: a CIDR block, its form and a size from /16 to /28, the
/// tags. The zone, the VPC (the block inside it), the siblings' blocks and the reservations
/// follow in the operation.
impl Checks for CreateSubnetRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        if self.ipv6_native == Some(true) {
            if self.cidr_block.is_some() || self.ipv4_ipam_pool_id.is_some() {
                return Err(Ec2Error::new(
                    "InvalidParameterCombination",
                    "When specifying ipv4 parameters, cidrBlock or ipv4IpamPoolId, you cannot set ipv6Native to true.",
                ));
            }
            if self.ipv6_cidr_block.is_none() && self.ipv6_ipam_pool_id.is_none() {
                return Err(Ec2Error::new(
                    "MissingParameter",
                    "Either 'ipv6CidrBlock' or 'ipv6IpamPoolId' should be provided.",
                ));
            }
            // Every interface and every guest here has an IPv4 address first.
            return Err(Ec2Error::new(
                "Unsupported",
                "Kumo has no IPv6-only subnets yet: a subnet has an IPv4 block, and may have an IPv6 one too.",
            ));
        }
        if self.ipv6_ipam_pool_id.is_some() {
            return Err(Ec2Error::new(
                "Unsupported",
                "Kumo takes IPv6 subnet blocks as Ipv6CidrBlock only; Ipv6IpamPoolId is not supported.",
            ));
        }
        checks::given(&self.cidr_block, "cidrBlock")
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        let cidr = parse_cidr(self.cidr_block.as_deref().unwrap_or_default())?;
        if !(16..=28).contains(&cidr.prefix_len()) {
            return Err(range_error(&cidr.to_string()));
        }
        if let Some(b) = &self.ipv6_cidr_block {
            subnet_ipv6(b)?;
        }
        tags::from_specifications(self.tag_specifications.clone(), "subnet").map(drop)
    }
}

/// A subnet's IPv6 block: a /64 (AWS's answer to any other size, quoted for CreateSubnet).
fn subnet_ipv6(text: &str) -> Result<Cidr6, Ec2Error> {
    Cidr6::parse(text)
        .ok()
        .filter(|c| c.prefix_len() == 64)
        .ok_or_else(|| {
            Ec2Error::invalid_value(format!(
                "invalid value for parameter ipv6-cidr-block: {text}"
            ))
        })
}

/// Gives a subnet the /64 `block` of its VPC: inside one of the VPC's IPv6 blocks, and
/// overlapping no other subnet's.
fn take_ipv6(
    tx: &Tx,
    s: Scope,
    vpc: &VpcRecord,
    sn: &mut SubnetRecord,
    block: Cidr6,
) -> Result<(), Fail> {
    let inside = vpc
        .ipv6
        .iter()
        .any(|c| Cidr6::parse(&c.cidr).is_ok_and(|v| v.contains(block)));
    if !inside {
        return Err(Fail(Ec2Error::new(
            "InvalidSubnet.Range",
            format!("The IPv6 CIDR '{block}' is invalid."),
        )));
    }
    let siblings: Vec<SubnetRecord> = tx.list(
        s,
        &Query {
            vpcs: Some(&[vpc.id.as_str()]),
            ..Query::default()
        },
    )?;
    let clash = siblings.iter().filter(|o| o.id != sn.id).any(|o| {
        o.ipv6
            .as_ref()
            .is_some_and(|c| Cidr6::parse(&c.cidr).is_ok_and(|x| x.overlaps(block)))
    });
    if clash {
        return Err(Fail(Ec2Error::new(
            "InvalidSubnet.Conflict",
            format!("The IPv6 CIDR '{block}' conflicts with another subnet"),
        )));
    }
    sn.ipv6 = Some(VpcCidr {
        association_id: new_id("subnet-cidr-assoc"),
        cidr: block.to_string(),
    });
    Ok(())
}

/// A subnet's IPv6 block as the wire shows it, in `state`.
fn ipv6_association(c: &VpcCidr, state: &str) -> SubnetIpv6CidrBlockAssociation {
    SubnetIpv6CidrBlockAssociation {
        association_id: Some(c.association_id.clone()),
        ipv6_cidr_block: Some(c.cidr.clone()),
        ipv6_cidr_block_state: Some(SubnetCidrBlockState {
            state: Some(state.into()),
            status_message: None,
        }),
        ipv6_address_attribute: Some("public".into()),
        ip_source: Some("amazon".into()),
    }
}

impl Checks for AssociateSubnetCidrBlockRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        if self.ipv6_ipam_pool_id.is_some() {
            return Err(Ec2Error::new(
                "Unsupported",
                "Kumo takes IPv6 subnet blocks as Ipv6CidrBlock only; Ipv6IpamPoolId is not supported.",
            ));
        }
        checks::given(&self.ipv6_cidr_block, "ipv6CidrBlock")
    }
    fn formats(&self) -> Result<(), Ec2Error> {
        subnet_ipv6(self.ipv6_cidr_block.as_deref().unwrap_or_default()).map(drop)
    }
}

impl Checks for DisassociateSubnetCidrBlockRequest {}

pub fn associate_cidr_block(
    store: &Store,
    ctx: &RequestContext,
    input: AssociateSubnetCidrBlockRequest,
) -> Result<AssociateSubnetCidrBlockResult, Ec2Error> {
    let block = subnet_ipv6(input.ipv6_cidr_block.as_deref().unwrap_or_default())?;
    let s = scope(ctx);
    let assoc = store
        .write(!ctx.dry_run, |tx| {
            let mut sn = get_subnet(tx, s, &input.subnet_id)?;
            if let Some(c) = &sn.ipv6 {
                return Err(Fail(Ec2Error::invalid_value(format!(
                    "The subnet {} already has the IPv6 CIDR block {} associated with it; a subnet has one.",
                    sn.id, c.cidr
                ))));
            }
            let vpc = get_vpc(tx, s, &sn.vpc_id)?;
            take_ipv6(tx, s, &vpc, &mut sn, block)?;
            tx.update(s, &sn)?;
            Ok::<_, Fail>(sn.ipv6.clone().unwrap_or(VpcCidr {
                association_id: String::new(),
                cidr: String::new(),
            }))
        })
        .map_err(|f| f.0)?;
    Ok(AssociateSubnetCidrBlockResult {
        subnet_id: Some(input.subnet_id),
        ipv6_cidr_block_association: Some(ipv6_association(&assoc, "associating")),
    })
}

pub fn disassociate_cidr_block(
    store: &Store,
    ctx: &RequestContext,
    input: DisassociateSubnetCidrBlockRequest,
) -> Result<DisassociateSubnetCidrBlockResult, Ec2Error> {
    let s = scope(ctx);
    let id = input.association_id.clone();
    if !id.starts_with("subnet-cidr-assoc-") {
        return Err(Ec2Error::new(
            "InvalidSubnetCidrBlockAssociationId.Malformed",
            format!("The subnet CIDR block with association ID {id} is malformed"),
        ));
    }
    let (subnet, gone) = store
        .write(!ctx.dry_run, |tx| {
            let subnets: Vec<SubnetRecord> = tx.list(s, &Query::default())?;
            let Some(mut sn) = subnets
                .into_iter()
                .find(|x| x.ipv6.as_ref().is_some_and(|c| c.association_id == id))
            else {
                return Err(Fail(Ec2Error::new(
                    "InvalidSubnetCidrBlockAssociationID.NotFound",
                    format!("The subnet CIDR block with association ID '{id}' does not exist"),
                )));
            };
            if sn.assign_ipv6_on_creation {
                return Err(Fail(Ec2Error::new(
                    "InvalidCidrBlock.InUse",
                    format!("The subnet IPv6 CIDR block with association ID {id} may not be disassociated, because its subnet has assign-ipv6-address-on-creation set to true."),
                )));
            }
            // Interfaces' addresses of the block must be unassigned first, as on AWS.
            let q = Query {
                subnets: Some(&[sn.id.as_str()]),
                ..Query::default()
            };
            let enis: Vec<crate::records::net::EniRecord> = tx.list(s, &q)?;
            if enis
                .iter()
                .any(|e| !e.ipv6.is_empty() || !e.ipv6_prefixes.is_empty())
            {
                return Err(Fail(Ec2Error::new(
                    "InvalidCidrBlock.InUse",
                    format!("The subnet IPv6 CIDR block with association ID {id} may not be disassociated, because network interfaces in the subnet hold IPv6 addresses of it."),
                )));
            }
            let gone = sn.ipv6.take();
            sn.enable_dns64 = false;
            sn.resource_name_dns_aaaa_record = false;
            tx.update(s, &sn)?;
            Ok::<_, Fail>((sn.id, gone))
        })
        .map_err(|f| f.0)?;
    Ok(DisassociateSubnetCidrBlockResult {
        subnet_id: Some(subnet),
        ipv6_cidr_block_association: gone.map(|c| ipv6_association(&c, "disassociating")),
    })
}

pub fn create_subnet(
    store: &Store,
    ctx: &RequestContext,
    input: CreateSubnetRequest,
) -> Result<CreateSubnetResult, Ec2Error> {
    let text = input
        .cidr_block
        .ok_or_else(|| Ec2Error::missing_parameter("cidrBlock"))?;
    let cidr = parse_cidr(&text)?;
    let zone = match network::resolve_zone(
        &ctx.region,
        input.availability_zone.as_deref(),
        input.availability_zone_id.as_deref(),
    )? {
        Some(z) => z,
        None => regions::get(&ctx.region)
            .and_then(|r| r.zones.first())
            .map(|z| (z.name, z.id))
            .ok_or_else(|| {
                Ec2Error::invalid_value(format!(
                    "The region {} has no availability zones.",
                    ctx.region
                ))
            })?,
    };
    let tag_list = tags::from_specifications(input.tag_specifications, "subnet")?;
    let rec = store
        .write(!ctx.dry_run, |tx| {
            let s = scope(ctx);
            let vpc = get_vpc(tx, s, &input.vpc_id)?;
            let inside = vpc
                .cidrs
                .iter()
                .any(|c| Cidr::parse(&c.cidr).is_ok_and(|v| v.contains(cidr)));
            if !(16..=28).contains(&cidr.prefix_len()) || !inside {
                return Err(Fail(range_error(&cidr.to_string())));
            }
            let siblings: Vec<SubnetRecord> = tx.list(
                s,
                &Query {
                    vpcs: Some(&[vpc.id.as_str()]),
                    ..Query::default()
                },
            )?;
            if siblings
                .iter()
                .any(|sn| Cidr::parse(&sn.cidr).is_ok_and(|c| c.overlaps(cidr)))
            {
                return Err(Fail(Ec2Error::new(
                    "InvalidSubnet.Conflict",
                    format!("The CIDR '{cidr}' conflicts with another subnet"),
                )));
            }
            let mut sn = network::default_subnet(&vpc.id, cidr, zone.0, zone.1);
            sn.default_for_az = false;
            sn.map_public_ip_on_launch = false;
            if let Some(b) = input.ipv6_cidr_block.as_deref() {
                take_ipv6(tx, s, &vpc, &mut sn, subnet_ipv6(b)?)?;
            }
            tx.insert(s, &sn)?;
            tags::put_all(tx, s, &sn.id, "subnet", &tag_list)?;
            Ok::<_, Fail>(sn)
        })
        .map_err(|f| f.0)?;
    let size = cidr.size().saturating_sub(5) as i32;
    Ok(CreateSubnetResult {
        subnet: Some(wire_subnet(
            ctx,
            &Tagged {
                item: rec,
                tags: tags::wire_pairs(&tag_list),
            },
            size,
        )),
    })
}

pub fn create_default_subnet(
    store: &Store,
    ctx: &RequestContext,
    input: CreateDefaultSubnetRequest,
) -> Result<CreateDefaultSubnetResult, Ec2Error> {
    let zone = network::resolve_zone(
        &ctx.region,
        input.availability_zone.as_deref(),
        input.availability_zone_id.as_deref(),
    )?
    .ok_or_else(|| Ec2Error::missing_parameter("availabilityZone"))?;
    let rec = store
        .write(!ctx.dry_run, |tx| {
            let s = scope(ctx);
            let Some(vpc_id) = network::default_vpc(tx, s)? else {
                return Err(Fail(Ec2Error::new(
                    "DefaultVpcDoesNotExist",
                    "No default VPC for this user",
                )));
            };
            let siblings: Vec<SubnetRecord> = tx.list(
                s,
                &Query {
                    vpcs: Some(&[vpc_id.as_str()]),
                    ..Query::default()
                },
            )?;
            if let Some(d) = siblings
                .iter()
                .find(|sn| sn.default_for_az && sn.zone == zone.0)
            {
                return Err(Fail(Ec2Error::new(
                    "DefaultSubnetAlreadyExistsInAvailabilityZone",
                    format!("'{}' is already the default subnet in {}.", d.id, zone.0),
                )));
            }
            let base = Cidr::parse("172.31.0.0/16").map(|c| c.base()).unwrap_or(0);
            let free = (0..16u32)
                .filter_map(|i| Cidr::new(base + i * 4096, 20))
                .find(|c| {
                    !siblings
                        .iter()
                        .any(|sn| Cidr::parse(&sn.cidr).is_ok_and(|o| o.overlaps(*c)))
                });
            let Some(cidr) = free else {
                return Err(Fail(Ec2Error::new(
                    "InsufficientCidrBlocks",
                    "The default VPC has no free /20 block for a default subnet.",
                )));
            };
            let sn = network::default_subnet(&vpc_id, cidr, zone.0, zone.1);
            tx.insert(s, &sn)?;
            Ok(sn)
        })
        .map_err(|f: Fail| f.0)?;
    let size = Cidr::parse(&rec.cidr).map(|c| c.size() - 5).unwrap_or(0) as i32;
    Ok(CreateDefaultSubnetResult {
        subnet: Some(wire_subnet(
            ctx,
            &Tagged {
                item: rec,
                tags: Vec::new(),
            },
            size,
        )),
    })
}

pub fn delete_subnet(
    store: &Store,
    net: &NetState,
    ctx: &RequestContext,
    input: DeleteSubnetRequest,
) -> Result<(), Ec2Error> {
    let s = scope(ctx);
    store
        .write(!ctx.dry_run, |tx| {
            let sn = get_subnet(tx, s, &input.subnet_id)?;
            let q = Query {
                subnets: Some(&[sn.id.as_str()]),
                ..Query::default()
            };
            let enis: Vec<EniRecord> = tx.list(
                s,
                &Query {
                    limit: Some(1),
                    ..q.clone()
                },
            )?;
            if !enis.is_empty() {
                return Err(Fail(Ec2Error::new(
                    "DependencyViolation",
                    format!(
                        "The subnet '{}' has dependencies and cannot be deleted.",
                        sn.id
                    ),
                )));
            }
            let reservations: Vec<ReservationRecord> = tx.list(s, &q)?;
            for r in reservations {
                tx.delete::<ReservationRecord>(s, &r.id)?;
            }
            // A deleted subnet leaves its route table association behind in no table.
            let tables: Vec<RouteTableRecord> = tx.list(
                s,
                &Query {
                    vpcs: Some(&[sn.vpc_id.as_str()]),
                    ..Query::default()
                },
            )?;
            for mut t in tables {
                if t.associations
                    .iter()
                    .any(|a| a.subnet_id.as_deref() == Some(sn.id.as_str()))
                {
                    t.associations
                        .retain(|a| a.subnet_id.as_deref() != Some(sn.id.as_str()));
                    tx.update(s, &t)?;
                }
            }
            tx.delete::<SubnetRecord>(s, &sn.id)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)?;
    net.forget(s, &input.subnet_id);
    Ok(())
}

struct SubnetView<'a> {
    t: &'a Tagged<SubnetRecord>,
    owner: &'a str,
    region: &'a str,
    available: String,
}

fn tf(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

impl Filterable<SubnetF> for SubnetView<'_> {
    fn field(&self, f: SubnetF, out: &mut dyn FnMut(&str)) {
        let sn = &self.t.item;
        match f {
            // The camel-case names are AWS's aliases (Terraform's aws_default_subnet sends
            // `availabilityZone`).
            SubnetF::AvailabilityZone => out(&sn.zone),
            SubnetF::AvailabilityZoneId => out(&sn.zone_id),
            SubnetF::AvailableIpAddressCount => out(&self.available),
            SubnetF::CidrBlock => out(&sn.cidr),
            SubnetF::DefaultForAz => out(tf(sn.default_for_az)),
            SubnetF::EnableDns64 => out(tf(sn.enable_dns64)),
            SubnetF::Ipv6Native => out("false"),
            SubnetF::MapCustomerOwnedIpOnLaunch => out("false"),
            SubnetF::MapPublicIpOnLaunch => out(tf(sn.map_public_ip_on_launch)),
            SubnetF::OwnerId => out(self.owner),
            SubnetF::PrivateDnsNameOptionsOnLaunchHostnameType => out(&sn.hostname_type),
            SubnetF::PrivateDnsNameOptionsOnLaunchEnableResourceNameDnsARecord => {
                out(tf(sn.resource_name_dns_a_record))
            }
            SubnetF::PrivateDnsNameOptionsOnLaunchEnableResourceNameDnsAaaaRecord => {
                out(tf(sn.resource_name_dns_aaaa_record))
            }
            SubnetF::State => out("available"),
            SubnetF::SubnetArn => out(&arn(self.region, self.owner, &sn.id)),
            SubnetF::SubnetId => out(&sn.id),
            SubnetF::VpcId => out(&sn.vpc_id),
            // No subnet is on an Outpost, and subnets have no IPv6 yet.
            SubnetF::CustomerOwnedIpv4Pool
            | SubnetF::EnableLniAtDeviceIndex
            | SubnetF::OutpostArn => {}
            SubnetF::Ipv6CidrBlockAssociationAssociationId => {
                sn.ipv6.iter().for_each(|c| out(&c.association_id))
            }
            SubnetF::Ipv6CidrBlockAssociationIpv6CidrBlock => {
                sn.ipv6.iter().for_each(|c| out(&c.cidr))
            }
            SubnetF::Ipv6CidrBlockAssociationState => {
                sn.ipv6.iter().for_each(|_| out("associated"))
            }
        }
    }
    fn tags(&self) -> &[(String, String)] {
        &self.t.tags
    }
}

/// DescribeSubnets: its page before the lookups that precede its listing.
impl Checks for DescribeSubnetsRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        checks::page(
            "DescribeSubnets",
            self.max_results,
            self.next_token.as_deref(),
            (5, 1000),
        )
    }
}

pub fn describe_subnets(
    store: &Store,
    ctx: &RequestContext,
    input: DescribeSubnetsRequest,
) -> Result<DescribeSubnetsResult, Ec2Error> {
    let fs = filters::compile::<SubnetF>(input.filters, &[])?;
    let ids = input.subnet_ids.unwrap_or_default();
    let s = scope(ctx);
    let req = describe::Request {
        op: "DescribeSubnets",
        ids: &ids,
        not_found: &not_found,
        push: Push::filters(&fs, SubnetF::SubnetId, Some(SubnetF::VpcId)),
        max_results: input.max_results,
        bounds: (5, 1000),
        next_token: input.next_token.as_deref(),
    };
    let (page, next, counts) = store
        .read(|v| {
            let counts = v.pool_counts(s)?;
            let (page, next) = describe::run(v, s, &req, |t: &Tagged<SubnetRecord>| {
                fs.matches(&SubnetView {
                    t,
                    owner: &ctx.account_id,
                    region: &ctx.region,
                    available: available(&t.item, &counts).to_string(),
                })
            })?;
            Ok::<_, Fail>((page, next, counts))
        })
        .map_err(|f| f.0)?;
    Ok(DescribeSubnetsResult {
        subnets: Some(
            page.iter()
                .map(|t| wire_subnet(ctx, t, available(&t.item, &counts)))
                .collect(),
        ),
        next_token: next,
    })
}

/// ModifySubnetAttribute, before any lookup: exactly one attribute.
impl Checks for ModifySubnetAttributeRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        let b = |v: &Option<AttributeBooleanValue>| v.as_ref().and_then(|x| x.value).is_some();
        let given = [
            b(&self.map_public_ip_on_launch),
            b(&self.assign_ipv6_address_on_creation),
            b(&self.enable_dns64),
            b(&self.enable_resource_name_dns_a_record_on_launch),
            b(&self.enable_resource_name_dns_aaaa_record_on_launch),
            self.private_dns_hostname_type_on_launch.is_some(),
        ];
        match given.iter().filter(|g| **g).count() {
            1 => Ok(()),
            0 => Err(Ec2Error::missing_parameter("attribute")),
            _ => Err(Ec2Error::new(
                "InvalidParameterCombination",
                "You can only modify one attribute at a time.",
            )),
        }
    }
}

/// CreateSubnetCidrReservation, before any lookup: the block's form and the tags. The subnet,
/// the block inside it and its conflicts follow.
impl Checks for CreateSubnetCidrReservationRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        parse_cidr(&self.cidr)?;
        tags::from_specifications(self.tag_specifications.clone(), "subnet-cidr-reservation")
            .map(drop)
    }
}

pub fn modify_subnet_attribute(
    store: &Store,
    ctx: &RequestContext,
    input: ModifySubnetAttributeRequest,
) -> Result<(), Ec2Error> {
    let b = |v: &Option<AttributeBooleanValue>| v.as_ref().and_then(|x| x.value);
    let map_public = b(&input.map_public_ip_on_launch);
    let ipv6 = b(&input.assign_ipv6_address_on_creation);
    let dns64 = b(&input.enable_dns64);
    let a_rec = b(&input.enable_resource_name_dns_a_record_on_launch);
    let aaaa_rec = b(&input.enable_resource_name_dns_aaaa_record_on_launch);
    let hostname = input.private_dns_hostname_type_on_launch.clone();
    store
        .write(!ctx.dry_run, |tx| {
            let s = scope(ctx);
            let mut sn = get_subnet(tx, s, &input.subnet_id)?;
            if let Some(v) = map_public {
                sn.map_public_ip_on_launch = v;
            }
            // An IPv6 setting needs the subnet's IPv6 block; with one, Kumo still refuses to
            // turn on what it cannot do yet (the resolver has no DNS64) rather than accept it
            // and not do it.
            let ipv6_setting = |attribute: &str, on: bool| -> Result<(), Fail> {
                match (on, sn.ipv6.is_some()) {
                    (false, _) => Ok(()),
                    (true, false) => Err(Fail(needs_ipv6(attribute, &sn.id))),
                    (true, true) => Err(Fail(Ec2Error::new(
                        "Unsupported",
                        format!(
                            "Kumo does not support {attribute} yet: the VPC resolver has no DNS64."
                        ),
                    ))),
                }
            };
            if let Some(v) = ipv6 {
                if v && sn.ipv6.is_none() {
                    return Err(Fail(needs_ipv6("assign-ipv6-address-on-creation", &sn.id)));
                }
                sn.assign_ipv6_on_creation = v;
            }
            if let Some(v) = dns64 {
                ipv6_setting("enable-dns64", v)?;
                sn.enable_dns64 = v;
            }
            if let Some(v) = a_rec {
                sn.resource_name_dns_a_record = v;
            }
            if let Some(v) = aaaa_rec {
                if v && sn.ipv6.is_none() {
                    return Err(Fail(needs_ipv6(
                        "enable-resource-name-dns-aaaa-record-on-launch",
                        &sn.id,
                    )));
                }
                sn.resource_name_dns_aaaa_record = v;
            }
            if let Some(h) = &hostname {
                sn.hostname_type = h.clone();
            }
            tx.update(s, &sn)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)
}

/// AWS's refusal of an IPv6 setting on a subnet without an IPv6 CIDR block (Kumo's subnets
/// have none yet).
fn needs_ipv6(attribute: &str, subnet: &str) -> Ec2Error {
    Ec2Error::invalid_value(format!(
        "Invalid value 'true' for {attribute}. Cannot set {attribute} to true unless the subnet ({subnet}) has an IPv6 CIDR block associated with it."
    ))
}

fn reservation_not_found(id: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidSubnetCidrReservationID.NotFound",
        format!("The subnet-cidr-reservation ID '{id}' does not exist"),
    )
}

fn wire_reservation(ctx: &RequestContext, t: &Tagged<ReservationRecord>) -> SubnetCidrReservation {
    let r = &t.item;
    SubnetCidrReservation {
        subnet_cidr_reservation_id: Some(r.id.clone()),
        subnet_id: Some(r.subnet_id.clone()),
        cidr: Some(r.cidr.clone()),
        reservation_type: Some(r.kind.clone()),
        description: r.description.clone(),
        owner_id: Some(ctx.account_id.clone()),
        tags: Some(tags::wire(&t.tags)),
    }
}

pub fn create_reservation(
    store: &Store,
    net: &NetState,
    ctx: &RequestContext,
    input: CreateSubnetCidrReservationRequest,
) -> Result<CreateSubnetCidrReservationResult, Ec2Error> {
    let cidr = parse_cidr(&input.cidr)?;
    let tag_list = tags::from_specifications(input.tag_specifications, "subnet-cidr-reservation")?;
    let s = scope(ctx);
    let rec = store
        .write(!ctx.dry_run, |tx| {
            let sn = get_subnet(tx, s, &input.subnet_id)?;
            let subnet_cidr = Cidr::parse(&sn.cidr).map_err(|_| Fail(Ec2Error::internal()))?;
            if !subnet_cidr.contains(cidr) {
                return Err(Fail(Ec2Error::invalid_value(format!(
                    "Reservation CIDR should be within subnet CIDR block ({})",
                    sn.cidr
                ))));
            }
            let existing: Vec<ReservationRecord> = tx.list(
                s,
                &Query {
                    subnets: Some(&[sn.id.as_str()]),
                    ..Query::default()
                },
            )?;
            if existing
                .iter()
                .any(|r| Cidr::parse(&r.cidr).is_ok_and(|c| c.overlaps(cidr)))
            {
                return Err(Fail(Ec2Error::invalid_value(format!(
                    "Reservation CIDR {cidr} has overlap with existing reserved CIDR block"
                ))));
            }
            let rec = ReservationRecord {
                id: new_id("scr"),
                subnet_id: sn.id.clone(),
                cidr: cidr.to_string(),
                kind: input.reservation_type.clone(),
                description: input.description.clone(),
            };
            tx.insert(s, &rec)?;
            tags::put_all(tx, s, &rec.id, "subnet-cidr-reservation", &tag_list)?;
            Ok(rec)
        })
        .map_err(|f: Fail| f.0)?;
    net.forget(s, &input.subnet_id);
    Ok(CreateSubnetCidrReservationResult {
        subnet_cidr_reservation: Some(wire_reservation(
            ctx,
            &Tagged {
                item: rec,
                tags: tags::wire_pairs(&tag_list),
            },
        )),
    })
}

struct ReservationView<'a>(&'a Tagged<ReservationRecord>);

impl Filterable<ResF> for ReservationView<'_> {
    fn field(&self, f: ResF, out: &mut dyn FnMut(&str)) {
        let r = &self.0.item;
        match f {
            ResF::ReservationType => out(&r.kind),
            ResF::SubnetId => out(&r.subnet_id),
        }
    }
    fn tags(&self) -> &[(String, String)] {
        &self.0.tags
    }
}

/// GetSubnetCidrReservations: its page before the subnet's lookup.
impl Checks for GetSubnetCidrReservationsRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        checks::page(
            "GetSubnetCidrReservations",
            self.max_results,
            self.next_token.as_deref(),
            (5, 1000),
        )
    }
}

pub fn get_reservations(
    store: &Store,
    ctx: &RequestContext,
    input: GetSubnetCidrReservationsRequest,
) -> Result<GetSubnetCidrReservationsResult, Ec2Error> {
    let fs = filters::compile::<ResF>(input.filters, &[])?;
    let s = scope(ctx);
    store
        .read(|v| get_subnet(v, s, &input.subnet_id))
        .map_err(|f| f.0)?;
    let req = describe::Request {
        op: "GetSubnetCidrReservations",
        ids: &[],
        not_found: &reservation_not_found,
        push: Push {
            subnets: Some(vec![input.subnet_id.as_str()]),
            tag: fs.exact_tag(),
            ..Push::default()
        },
        max_results: input.max_results,
        bounds: (5, 1000),
        next_token: input.next_token.as_deref(),
    };
    let (page, next) = describe::read(store, s, &req, |t: &Tagged<ReservationRecord>| {
        fs.matches(&ReservationView(t))
    })?;
    if ctx.dry_run {
        return Err(Ec2Error::dry_run());
    }
    Ok(GetSubnetCidrReservationsResult {
        subnet_ipv4_cidr_reservations: Some(
            page.iter().map(|t| wire_reservation(ctx, t)).collect(),
        ),
        subnet_ipv6_cidr_reservations: Some(Vec::new()),
        next_token: next,
    })
}

pub fn delete_reservation(
    store: &Store,
    net: &NetState,
    ctx: &RequestContext,
    input: DeleteSubnetCidrReservationRequest,
) -> Result<DeleteSubnetCidrReservationResult, Ec2Error> {
    let s = scope(ctx);
    let rec = store
        .write(!ctx.dry_run, |tx| {
            let rec: ReservationRecord = tx
                .get(s, &input.subnet_cidr_reservation_id)?
                .ok_or_else(|| Fail(reservation_not_found(&input.subnet_cidr_reservation_id)))?;
            let tags = tx.tags_of(s, &rec.id)?;
            tx.delete::<ReservationRecord>(s, &rec.id)?;
            Ok(Tagged { item: rec, tags })
        })
        .map_err(|f: Fail| f.0)?;
    net.forget(s, &rec.item.subnet_id);
    Ok(DeleteSubnetCidrReservationResult {
        deleted_subnet_cidr_reservation: Some(wire_reservation(ctx, &rec)),
    })
}
