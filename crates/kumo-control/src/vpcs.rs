//! VPCs: create, delete, describe, attributes, secondary CIDR blocks, the default VPC.

use crate::core::checks::{self, Checks};
use crate::core::describe::{self, Push};
use crate::core::error::Fail;
use crate::core::filters;
use crate::core::ids::new_id;
use crate::network;
use crate::records::net::*;
use crate::scope;
use crate::tags::{self, Tagged};
use kumo_ec2_wire::filters::DescribeVpcs as F;
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_model::cidr::{is_restricted, Cidr, CidrError};
use kumo_model::filter::Filterable;
use kumo_store::{Query, Read, Scope, Store, Tx};

pub fn not_found(id: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidVpcID.NotFound",
        format!("The vpc ID '{id}' does not exist"),
    )
}

/// A VPC that must exist.
pub fn get_vpc<V: Read>(v: &V, s: Scope, id: &str) -> Result<VpcRecord, Fail> {
    v.get(s, id)?.ok_or_else(|| Fail(not_found(id)))
}

/// Parses a VPC or subnet CIDR as AWS does: malformed → InvalidParameterValue; host bits are
/// cleared (AWS canonicalises `100.68.0.18/18` to `100.68.0.0/18`).
pub fn parse_cidr(s: &str) -> Result<Cidr, Ec2Error> {
    match Cidr::parse(s) {
        Ok(c) => Ok(c),
        Err(CidrError::NotAligned) => {
            let (ip, len) = s.split_once('/').unwrap_or((s, "32"));
            let len: u8 = len.parse().unwrap_or(32);
            let base = kumo_model::cidr::parse_addr(ip).unwrap_or(0) & kumo_model::cidr::mask(len);
            Cidr::new(base, len).ok_or_else(|| bad_cidr(s))
        }
        Err(CidrError::Malformed) => Err(bad_cidr(s)),
    }
}

fn bad_cidr(s: &str) -> Ec2Error {
    Ec2Error::invalid_value(format!(
        "Value ({s}) for parameter cidrBlock is invalid. This is not a valid CIDR block."
    ))
}

fn vpc_range(c: Cidr) -> Result<(), Ec2Error> {
    if !(16..=28).contains(&c.prefix_len()) || is_restricted(c) {
        return Err(Ec2Error::new(
            "InvalidVpc.Range",
            format!("The CIDR '{c}' is invalid."),
        ));
    }
    Ok(())
}

/// A VPC's IPv4 block, sent or missing, then of its form and size.
fn vpc_block(given: Option<&str>) -> Result<Cidr, Ec2Error> {
    let text = given.ok_or_else(|| Ec2Error::missing_parameter("cidrBlock"))?;
    let cidr = parse_cidr(text)?;
    vpc_range(cidr)?;
    Ok(cidr)
}

/// CreateVpc, before any lookup: a block of AWS's form and size, and the tags.
impl Checks for CreateVpcRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        checks::given(&self.cidr_block, "cidrBlock")?;
        ipv6_asked(
            self.amazon_provided_ipv6_cidr_block,
            &self.ipv6_cidr_block,
            &self.ipv6_pool,
            &self.ipv6_ipam_pool_id,
            &self.ipv6_cidr_block_network_border_group,
        )
        .map(drop)
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        vpc_block(self.cidr_block.as_deref())?;
        tags::from_specifications(self.tag_specifications.clone(), "vpc").map(drop)
    }
}

/// The IPv6 block a request asks for: Amazon's (`Some(true)`), within the region's network
/// border group; the BYOIP and IPAM ways are refused by name (Kumo has no pools of yours).
fn ipv6_asked(
    amazon: Option<bool>,
    block: &Option<String>,
    pool: &Option<String>,
    ipam: &Option<String>,
    border_group: &Option<String>,
) -> Result<bool, Ec2Error> {
    if block.is_some() || pool.is_some() || ipam.is_some() {
        return Err(Ec2Error::new(
            "Unsupported",
            "Kumo provides IPv6 blocks from its own pool only (AmazonProvidedIpv6CidrBlock); Ipv6CidrBlock, Ipv6Pool and Ipv6IpamPoolId are not supported.",
        ));
    }
    let amazon = amazon == Some(true);
    if border_group.is_some() && !amazon {
        return Err(Ec2Error::new(
            "InvalidParameterCombination",
            "The parameter ipv6CidrBlockNetworkBorderGroup requires amazonProvidedIpv6CidrBlock.",
        ));
    }
    Ok(amazon)
}

/// The network border group a request names: the region's own, the only one Kumo has.
fn border_group(ctx: &RequestContext, given: &Option<String>) -> Result<(), Ec2Error> {
    match given {
        Some(g) if *g != ctx.region => Err(Ec2Error::invalid_value(format!(
            "Value ({g}) for parameter ipv6CidrBlockNetworkBorderGroup is invalid. The only network border group of {} is {}.",
            ctx.region, ctx.region
        ))),
        _ => Ok(()),
    }
}

/// AssociateVpcCidrBlock, before any lookup: one block, an IPv4 one of AWS's form and size or
/// an Amazon-provided IPv6 one. The VPC, the block's conflicts with its others and the
/// limits follow.
impl Checks for AssociateVpcCidrBlockRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        let v6 = ipv6_asked(
            self.amazon_provided_ipv6_cidr_block,
            &self.ipv6_cidr_block,
            &self.ipv6_pool,
            &self.ipv6_ipam_pool_id,
            &self.ipv6_cidr_block_network_border_group,
        )?;
        match (v6, self.cidr_block.is_some()) {
            (true, true) => Err(Ec2Error::new(
                "InvalidParameterCombination",
                "The parameter cidrBlock cannot be used with the parameter amazonProvidedIpv6CidrBlock",
            )),
            (true, false) => Ok(()),
            (false, _) => checks::given(&self.cidr_block, "cidrBlock"),
        }
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        match &self.cidr_block {
            Some(c) => vpc_block(Some(c)).map(drop),
            None => Ok(()),
        }
    }
}

/// ModifyVpcAttribute, before any lookup: exactly one attribute.
impl Checks for ModifyVpcAttributeRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        let set = |v: &Option<AttributeBooleanValue>| v.as_ref().and_then(|v| v.value).is_some();
        one_attribute(&[
            ("enableDnsHostnames", set(&self.enable_dns_hostnames)),
            ("enableDnsSupport", set(&self.enable_dns_support)),
            (
                "enableNetworkAddressUsageMetrics",
                set(&self.enable_network_address_usage_metrics),
            ),
        ])
    }
}

pub fn create_vpc(
    store: &Store,
    ctx: &RequestContext,
    input: CreateVpcRequest,
) -> Result<CreateVpcResult, Ec2Error> {
    let cidr = vpc_block(input.cidr_block.as_deref())?;
    border_group(ctx, &input.ipv6_cidr_block_network_border_group)?;
    let tenancy = input
        .instance_tenancy
        .clone()
        .unwrap_or_else(|| "default".into());
    let tag_list = tags::from_specifications(input.tag_specifications, "vpc")?;
    let rec = store
        .write(!ctx.dry_run, |tx| {
            let s = scope(ctx);
            // The region's default set; `default` (none) once it was deleted.
            let mut dopt = tx
                .get::<ScopeRecord>(s, "scope")?
                .map(|m| m.default_dhcp_options_id)
                .unwrap_or_default();
            if tx
                .get::<crate::records::net::DhcpOptionsRecord>(s, &dopt)?
                .is_none()
            {
                dopt = "default".into();
            }
            let mut vpc = network::new_vpc(tx, s, &cidr.to_string(), false, &dopt, &tenancy)?;
            if input.amazon_provided_ipv6_cidr_block == Some(true) {
                let block = network::take_ipv6_block(tx, s, &vpc.id)?;
                network::add_ipv6_block(tx, s, &vpc, &block)?;
                vpc.ipv6.push(VpcCidr {
                    association_id: new_id("vpc-cidr-assoc"),
                    cidr: block,
                });
                tx.update(s, &vpc)?;
            }
            tags::put_all(tx, s, &vpc.id, "vpc", &tag_list)?;
            Ok::<_, Fail>(vpc)
        })
        .map_err(|f| f.0)?;
    let mut v = wire_vpc(
        ctx,
        &Tagged {
            item: rec,
            tags: Vec::new(),
        },
    );
    v.tags = Some(tag_list);
    // A new VPC is reported `pending` by CreateVpc, then `available`.
    v.state = Some("pending".into());
    // CreateVpc lists the VPC's IPv6 blocks as a set, empty for none (DescribeVpcs leaves
    // the member out then), each `associating` with its block not yet shown, as AWS answers.
    v.ipv6_cidr_block_association_set = Some(
        v.ipv6_cidr_block_association_set
            .take()
            .unwrap_or_default()
            .into_iter()
            .map(|mut a| {
                a.ipv6_cidr_block = Some(String::new());
                a.ipv6_cidr_block_state = Some(VpcCidrBlockState {
                    state: Some("associating".into()),
                    status_message: None,
                });
                a
            })
            .collect(),
    );
    Ok(CreateVpcResult { vpc: Some(v) })
}

pub fn create_default_vpc(
    store: &Store,
    ctx: &RequestContext,
) -> Result<CreateDefaultVpcResult, Ec2Error> {
    let rec = store
        .write(!ctx.dry_run, |tx| {
            let s = scope(ctx);
            let mut marker: ScopeRecord = tx.get(s, "scope")?.ok_or(Fail(Ec2Error::internal()))?;
            if marker.default_vpc_id.is_some() {
                return Err(Fail(Ec2Error::new(
                    "DefaultVpcAlreadyExists",
                    "A Default VPC already exists for this account in this region.",
                )));
            }
            let id = network::create_default_vpc(tx, s, &marker.default_dhcp_options_id)?;
            marker.default_vpc_id = Some(id.clone());
            tx.update(s, &marker)?;
            get_vpc(tx, s, &id)
        })
        .map_err(|f| f.0)?;
    let mut v = wire_vpc(
        ctx,
        &Tagged {
            item: rec,
            tags: Vec::new(),
        },
    );
    // As CreateVpc's answer (AWS's published example): `pending`, no IPv6 blocks as a set.
    v.state = Some("pending".into());
    v.ipv6_cidr_block_association_set = Some(Vec::new());
    Ok(CreateDefaultVpcResult { vpc: Some(v) })
}

/// What stops a VPC from being deleted: subnets, attached gateways (internet and virtual
/// private), ENIs, security groups other than the default one, route tables other than the
/// main one, network ACLs other than the default one, VPC peering connections active or
/// pending (AWS: a VPC with a pending request from another account cannot be deleted; its
/// console deletes active ones first), VPC endpoints not deleted.
fn has_dependents(tx: &Tx, s: Scope, vpc: &VpcRecord, now: i64) -> Result<bool, Fail> {
    let q = Query {
        vpcs: Some(&[vpc.id.as_str()]),
        limit: Some(2),
        ..Query::default()
    };
    let subnets: Vec<SubnetRecord> = tx.list(s, &q)?;
    let igws: Vec<InternetGatewayRecord> = tx.list(s, &q)?;
    let enis: Vec<EniRecord> = tx.list(s, &q)?;
    let sgs: Vec<SecurityGroupRecord> = tx.list(s, &q)?;
    let rtbs: Vec<RouteTableRecord> = tx.list(s, &q)?;
    let acls: Vec<NetworkAclRecord> = tx.list(s, &q)?;
    let vgws: Vec<VpnGatewayRecord> = tx.list(s, &q)?;
    let eigws: Vec<crate::records::net::EgressOnlyGatewayRecord> = tx.list(s, &q)?;
    let peerings: Vec<VpcPeeringRecord> = tx.list(s, &Query::default())?;
    let endpoints: Vec<crate::records::net::VpcEndpointRecord> =
        tx.list(s, &Query { limit: None, ..q })?;
    let peered = peerings.iter().any(|p| {
        p.joins(s.account, s.region, &vpc.id)
            && (p.status == "active" || (p.status == "pending-acceptance" && now < p.expires_ms))
    });
    Ok(!subnets.is_empty()
        || peered
        || endpoints.iter().any(|e| e.deleted_ms.is_none())
        || !vgws.is_empty()
        || !eigws.is_empty()
        || acls.iter().any(|a| a.id != vpc.default_network_acl_id)
        || !igws.is_empty()
        || !enis.is_empty()
        || sgs.iter().any(|g| g.id != vpc.default_security_group_id)
        || rtbs.iter().any(|r| r.id != vpc.main_route_table_id))
}

pub fn delete_vpc(
    store: &Store,
    ctx: &RequestContext,
    input: DeleteVpcRequest,
    now: i64,
) -> Result<(), Ec2Error> {
    store
        .write(!ctx.dry_run, |tx| {
            let s = scope(ctx);
            let vpc = get_vpc(tx, s, &input.vpc_id)?;
            if has_dependents(tx, s, &vpc, now)? {
                return Err(Fail(Ec2Error::new(
                    "DependencyViolation",
                    format!(
                        "The vpc '{}' has dependencies and cannot be deleted.",
                        vpc.id
                    ),
                )));
            }
            tx.delete::<RouteTableRecord>(s, &vpc.main_route_table_id)?;
            tx.delete::<SecurityGroupRecord>(s, &vpc.default_security_group_id)?;
            tx.delete::<NetworkAclRecord>(s, &vpc.default_network_acl_id)?;
            for c in &vpc.ipv6 {
                network::release_ipv6_block(tx, &c.cidr)?;
            }
            tx.delete::<VpcRecord>(s, &vpc.id)?;
            if vpc.is_default {
                if let Some(mut marker) = tx.get::<ScopeRecord>(s, "scope")? {
                    marker.default_vpc_id = None;
                    tx.update(s, &marker)?;
                }
            }
            Ok(())
        })
        .map_err(|f: Fail| f.0)
}

/// A VPC's IPv6 block as the wire shows it, in `state`.
fn ipv6_association(ctx: &RequestContext, c: &VpcCidr, state: &str) -> VpcIpv6CidrBlockAssociation {
    VpcIpv6CidrBlockAssociation {
        association_id: Some(c.association_id.clone()),
        ipv6_cidr_block: Some(c.cidr.clone()),
        ipv6_cidr_block_state: Some(VpcCidrBlockState {
            state: Some(state.into()),
            status_message: None,
        }),
        ipv6_pool: Some("Amazon".into()),
        network_border_group: Some(ctx.region.clone()),
        ip_source: Some("amazon".into()),
        ipv6_address_attribute: Some("public".into()),
    }
}

pub fn wire_vpc(ctx: &RequestContext, t: &Tagged<VpcRecord>) -> Vpc {
    let v = &t.item;
    Vpc {
        vpc_id: Some(v.id.clone()),
        cidr_block: v.cidrs.first().map(|c| c.cidr.clone()),
        cidr_block_association_set: Some(
            v.cidrs
                .iter()
                .map(|c| VpcCidrBlockAssociation {
                    association_id: Some(c.association_id.clone()),
                    cidr_block: Some(c.cidr.clone()),
                    cidr_block_state: Some(VpcCidrBlockState {
                        state: Some("associated".into()),
                        status_message: None,
                    }),
                })
                .collect(),
        ),
        ipv6_cidr_block_association_set: (!v.ipv6.is_empty()).then(|| {
            v.ipv6
                .iter()
                .map(|c| ipv6_association(ctx, c, "associated"))
                .collect()
        }),
        dhcp_options_id: Some(v.dhcp_options_id.clone()),
        instance_tenancy: Some(v.instance_tenancy.clone()),
        is_default: Some(v.is_default),
        owner_id: Some(ctx.account_id.clone()),
        state: Some("available".into()),
        tags: Some(tags::wire(&t.tags)),
        ..Vpc::default()
    }
}

struct VpcView<'a>(&'a Tagged<VpcRecord>, &'a str);

impl Filterable<F> for VpcView<'_> {
    fn field(&self, f: F, out: &mut dyn FnMut(&str)) {
        let v = &self.0.item;
        match f {
            // AWS also takes `cidr-block` and `cidrBlock` (Ansible's ec2_vpc_net sends the
            // first), and `isDefault` (Terraform's default-VPC lookups).
            F::Cidr => {
                if let Some(c) = v.cidrs.first() {
                    out(&c.cidr)
                }
            }
            F::CidrBlockAssociationCidrBlock => v.cidrs.iter().for_each(|c| out(&c.cidr)),
            F::CidrBlockAssociationAssociationId => {
                v.cidrs.iter().for_each(|c| out(&c.association_id))
            }
            F::CidrBlockAssociationState => v.cidrs.iter().for_each(|_| out("associated")),
            F::DhcpOptionsId => out(&v.dhcp_options_id),
            F::IsDefault => out(if v.is_default { "true" } else { "false" }),
            F::OwnerId => out(self.1),
            F::State => out("available"),
            F::VpcId => out(&v.id),
            // VPCs have no IPv6 yet.
            F::Ipv6CidrBlockAssociationAssociationId => {
                v.ipv6.iter().for_each(|c| out(&c.association_id))
            }
            F::Ipv6CidrBlockAssociationIpv6CidrBlock => v.ipv6.iter().for_each(|c| out(&c.cidr)),
            F::Ipv6CidrBlockAssociationIpv6Pool => v.ipv6.iter().for_each(|_| out("Amazon")),
            F::Ipv6CidrBlockAssociationState => v.ipv6.iter().for_each(|_| out("associated")),
        }
    }
    fn tags(&self) -> &[(String, String)] {
        &self.0.tags
    }
}

pub fn describe_vpcs(
    store: &Store,
    ctx: &RequestContext,
    input: DescribeVpcsRequest,
) -> Result<DescribeVpcsResult, Ec2Error> {
    let fs = filters::compile::<F>(input.filters, &[])?;
    let ids = input.vpc_ids.unwrap_or_default();
    let req = describe::Request {
        op: "DescribeVpcs",
        ids: &ids,
        not_found: &not_found,
        push: Push::filters(&fs, F::VpcId, None),
        max_results: input.max_results,
        bounds: (5, 1000),
        next_token: input.next_token.as_deref(),
    };
    let (page, next) = describe::read(store, scope(ctx), &req, |t: &Tagged<VpcRecord>| {
        fs.matches(&VpcView(t, &ctx.account_id))
    })?;
    Ok(DescribeVpcsResult {
        vpcs: Some(page.iter().map(|t| wire_vpc(ctx, t)).collect()),
        next_token: next,
    })
}

fn one_attribute(names: &[(&str, bool)]) -> Result<(), Ec2Error> {
    let given: Vec<&str> = names.iter().filter(|(_, g)| *g).map(|(n, _)| *n).collect();
    match given.len() {
        0 => Err(Ec2Error::missing_parameter("attribute")),
        1 => Ok(()),
        _ => Err(Ec2Error::new(
            "InvalidParameterCombination",
            format!(
                "Fields for multiple attribute types specified: {}",
                given.join(", ")
            ),
        )),
    }
}

pub fn modify_vpc_attribute(
    store: &Store,
    ctx: &RequestContext,
    input: ModifyVpcAttributeRequest,
) -> Result<(), Ec2Error> {
    let hostnames = input.enable_dns_hostnames.and_then(|v| v.value);
    let support = input.enable_dns_support.and_then(|v| v.value);
    let metrics = input
        .enable_network_address_usage_metrics
        .and_then(|v| v.value);
    store
        .write(!ctx.dry_run, |tx| {
            let s = scope(ctx);
            let mut vpc = get_vpc(tx, s, &input.vpc_id)?;
            if let Some(h) = hostnames {
                if h && !vpc.enable_dns_support {
                    return Err(Fail(Ec2Error::invalid_value(
                        "Cannot enable DNS hostnames without DNS support being enabled for the VPC.",
                    )));
                }
                vpc.enable_dns_hostnames = h;
            }
            if let Some(v) = support {
                vpc.enable_dns_support = v;
            }
            if let Some(v) = metrics {
                vpc.enable_network_address_usage_metrics = v;
            }
            tx.update(s, &vpc)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)
}

pub fn describe_vpc_attribute(
    store: &Store,
    ctx: &RequestContext,
    input: DescribeVpcAttributeRequest,
) -> Result<DescribeVpcAttributeResult, Ec2Error> {
    let vpc = store
        .read(|v| get_vpc(v, scope(ctx), &input.vpc_id))
        .map_err(|f| f.0)?;
    let b = |v: bool| Some(AttributeBooleanValue { value: Some(v) });
    let mut out = DescribeVpcAttributeResult {
        vpc_id: Some(vpc.id.clone()),
        ..DescribeVpcAttributeResult::default()
    };
    match input.attribute.as_str() {
        "enableDnsSupport" => out.enable_dns_support = b(vpc.enable_dns_support),
        "enableDnsHostnames" => out.enable_dns_hostnames = b(vpc.enable_dns_hostnames),
        _ => out.enable_network_address_usage_metrics = b(vpc.enable_network_address_usage_metrics),
    }
    if ctx.dry_run {
        return Err(Ec2Error::dry_run());
    }
    Ok(out)
}

/// The most IPv4 CIDR blocks a VPC may have (AWS's default quota).
const MAX_VPC_CIDRS: usize = 5;

pub fn associate_vpc_cidr_block(
    store: &Store,
    ctx: &RequestContext,
    input: AssociateVpcCidrBlockRequest,
) -> Result<AssociateVpcCidrBlockResult, Ec2Error> {
    if input.amazon_provided_ipv6_cidr_block == Some(true) {
        return associate_ipv6(store, ctx, input);
    }
    let cidr = vpc_block(input.cidr_block.as_deref())?;
    let assoc = store
        .write(!ctx.dry_run, |tx| {
            let s = scope(ctx);
            let mut vpc = get_vpc(tx, s, &input.vpc_id)?;
            if let Some(o) = vpc.cidrs.iter().find(|c| Cidr::parse(&c.cidr).is_ok_and(|e| e.overlaps(cidr))) {
                return Err(Fail(Ec2Error::new(
                    "InvalidVpc.Range",
                    format!("The CIDR '{cidr}' conflicts with the VPC's CIDR '{}'.", o.cidr),
                )));
            }
            // The limit last, after the state checks (`core::checks`).
            if vpc.cidrs.len() >= MAX_VPC_CIDRS {
                return Err(Fail(Ec2Error::new(
                    "CidrLimitExceeded",
                    format!("This network '{}' has met its maximum number of allowed CIDRs: {MAX_VPC_CIDRS}", vpc.id),
                )));
            }
            let a = VpcCidr { association_id: new_id("vpc-cidr-assoc"), cidr: cidr.to_string() };
            vpc.cidrs.push(a.clone());
            // A local route in each of the VPC's route tables, as AWS adds it.
            let tables: Vec<RouteTableRecord> = tx.list(s, &Query { vpcs: Some(&[vpc.id.as_str()]), ..Query::default() })?;
            for mut rtb in tables {
                rtb.routes.push(RouteEntry { destination: a.cidr.clone(), gateway_id: "local".into(), origin: "CreateRouteTable".into() });
                tx.update(s, &rtb)?;
            }
            tx.update(s, &vpc)?;
            Ok(a)
        })
        .map_err(|f: Fail| f.0)?;
    Ok(AssociateVpcCidrBlockResult {
        vpc_id: Some(input.vpc_id),
        cidr_block_association: Some(VpcCidrBlockAssociation {
            association_id: Some(assoc.association_id),
            cidr_block: Some(assoc.cidr),
            cidr_block_state: Some(VpcCidrBlockState {
                state: Some("associating".into()),
                status_message: None,
            }),
        }),
        ..AssociateVpcCidrBlockResult::default()
    })
}

/// An Amazon-provided IPv6 /56 for a VPC: one per network border group, and Kumo's regions
/// have one each, so one per VPC.
fn associate_ipv6(
    store: &Store,
    ctx: &RequestContext,
    input: AssociateVpcCidrBlockRequest,
) -> Result<AssociateVpcCidrBlockResult, Ec2Error> {
    border_group(ctx, &input.ipv6_cidr_block_network_border_group)?;
    let assoc = store
        .write(!ctx.dry_run, |tx| {
            let s = scope(ctx);
            let mut vpc = get_vpc(tx, s, &input.vpc_id)?;
            if !vpc.ipv6.is_empty() {
                return Err(Fail(Ec2Error::new(
                    "CidrLimitExceeded",
                    format!(
                        "This network '{}' has met its maximum number of allowed IPv6 CIDRs from the network border group {}: 1",
                        vpc.id, ctx.region
                    ),
                )));
            }
            let block = network::take_ipv6_block(tx, s, &vpc.id)?;
            network::add_ipv6_block(tx, s, &vpc, &block)?;
            let a = VpcCidr {
                association_id: new_id("vpc-cidr-assoc"),
                cidr: block,
            };
            vpc.ipv6.push(a.clone());
            tx.update(s, &vpc)?;
            Ok(a)
        })
        .map_err(|f: Fail| f.0)?;
    let mut shown = ipv6_association(ctx, &assoc, "associating");
    shown.ipv6_cidr_block = None;
    Ok(AssociateVpcCidrBlockResult {
        vpc_id: Some(input.vpc_id),
        ipv6_cidr_block_association: Some(shown),
        ..AssociateVpcCidrBlockResult::default()
    })
}

pub fn disassociate_vpc_cidr_block(
    store: &Store,
    ctx: &RequestContext,
    input: DisassociateVpcCidrBlockRequest,
) -> Result<DisassociateVpcCidrBlockResult, Ec2Error> {
    let (vpc_id, gone, v6) = store
        .write(!ctx.dry_run, |tx| {
            let s = scope(ctx);
            let vpcs: Vec<VpcRecord> = tx.list(s, &Query::default())?;
            if let Some(mut vpc) = vpcs.iter().find(|v| v.ipv6.iter().any(|c| c.association_id == input.association_id)).cloned() {
                let i = vpc.ipv6.iter().position(|c| c.association_id == input.association_id).unwrap_or(0);
                let gone = vpc.ipv6.remove(i);
                let subnets: Vec<SubnetRecord> = tx.list(s, &Query { vpcs: Some(&[vpc.id.as_str()]), ..Query::default() })?;
                if subnets.iter().any(|sn| sn.ipv6.is_some()) {
                    return Err(Fail(Ec2Error::new(
                        "InvalidCidrBlock.InUse",
                        format!("The vpc {} currently has a subnet within CIDR block {}", vpc.id, gone.cidr),
                    )));
                }
                let tables: Vec<RouteTableRecord> = tx.list(s, &Query { vpcs: Some(&[vpc.id.as_str()]), ..Query::default() })?;
                for mut t in tables {
                    t.routes.retain(|r| !(r.gateway_id == "local" && r.destination == gone.cidr));
                    tx.update(s, &t)?;
                }
                network::release_ipv6_block(tx, &gone.cidr)?;
                tx.update(s, &vpc)?;
                return Ok((vpc.id, gone, true));
            }
            let Some(mut vpc) = vpcs.into_iter().find(|v| v.cidrs.iter().any(|c| c.association_id == input.association_id)) else {
                return Err(Fail(Ec2Error::new(
                    "InvalidVpcCidrBlockAssociationID.NotFound",
                    format!("The vpc CIDR block association ID '{}' does not exist", input.association_id),
                )));
            };
            let i = vpc.cidrs.iter().position(|c| c.association_id == input.association_id).unwrap_or(0);
            if i == 0 {
                return Err(Fail(Ec2Error::new(
                    "OperationNotPermitted",
                    format!("The vpc CIDR block with association ID {} may not be disassociated. It is the primary IPv4 CIDR block of the VPC", input.association_id),
                )));
            }
            let gone = vpc.cidrs.remove(i);
            let block = Cidr::parse(&gone.cidr).map_err(|_| Fail(Ec2Error::internal()))?;
            let subnets: Vec<SubnetRecord> = tx.list(s, &Query { vpcs: Some(&[vpc.id.as_str()]), ..Query::default() })?;
            if subnets.iter().any(|sn| Cidr::parse(&sn.cidr).is_ok_and(|c| block.contains(c))) {
                return Err(Fail(Ec2Error::new(
                    "DependencyViolation",
                    format!("The vpc CIDR block '{}' has dependencies and cannot be disassociated.", gone.cidr),
                )));
            }
            let tables: Vec<RouteTableRecord> = tx.list(s, &Query { vpcs: Some(&[vpc.id.as_str()]), ..Query::default() })?;
            for mut rtb in tables {
                rtb.routes.retain(|r| !(r.gateway_id == "local" && r.destination == gone.cidr));
                tx.update(s, &rtb)?;
            }
            tx.update(s, &vpc)?;
            Ok((vpc.id, gone, false))
        })
        .map_err(|f: Fail| f.0)?;
    if v6 {
        return Ok(DisassociateVpcCidrBlockResult {
            vpc_id: Some(vpc_id),
            ipv6_cidr_block_association: Some(ipv6_association(ctx, &gone, "disassociating")),
            ..DisassociateVpcCidrBlockResult::default()
        });
    }
    Ok(DisassociateVpcCidrBlockResult {
        vpc_id: Some(vpc_id),
        cidr_block_association: Some(VpcCidrBlockAssociation {
            association_id: Some(gone.association_id),
            cidr_block: Some(gone.cidr),
            cidr_block_state: Some(VpcCidrBlockState {
                state: Some("disassociating".into()),
                status_message: None,
            }),
        }),
        ..DisassociateVpcCidrBlockResult::default()
    })
}
