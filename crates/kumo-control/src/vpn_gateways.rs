//! Virtual private gateways and customer gateways: the two ends of a Site-to-Site VPN, kept as
//! AWS keeps their state, with no tunnel between them. CreateVpnConnection answers
//! `Unsupported`: Kumo runs no IPsec endpoint, and a connection whose tunnels never come up
//! would be a fake (the README says so).
//!
//! AWS's rules (the API reference, the EC2 error-code page, the Site-to-Site VPN quotas):
//! - a virtual private gateway is `ipsec.1`, with an Amazon-side ASN of 64512 by default, in
//!   64512–65534 or 4200000000–4294967294; 5 per region (`VpnGatewayLimitExceeded`);
//! - it attaches to one VPC, and a VPC holds one (`InvalidVpcState`,
//!   `VpnGatewayAttachmentLimitExceeded`); attaching and detaching take the transition delay;
//!   it cannot be deleted while attached (`IncorrectState`: "The VPN gateway is in use.");
//! - a customer gateway names a device by IP address and BGP ASN (1–2,147,483,647, or
//!   `BgpAsnExtended` above); the same type, address and ASN again answers the existing one;
//!   50 per region (`CustomerGatewayLimitExceeded`);
//! - route propagation needs the gateway attached to the table's VPC (`Gateway.NotAttached`);
//!   the table lists it in `PropagatingVgws`, and with no VPN connection it learns no routes;
//! - a deleted gateway is shown `deleted` for an hour.

use crate::core::checks::Checks;
use crate::core::describe::{self, Push};
use crate::core::error::Fail;
use crate::core::filters;
use crate::core::ids::new_id;
use crate::records::net::{
    CustomerGatewayRecord, RouteTableRecord, VgwAttachment, VpnGatewayRecord,
};
use crate::tags::{self, Tagged};
use crate::vpcs::get_vpc;
use crate::{scope, Kumo};
use kumo_ec2_wire::filters::{DescribeCustomerGateways as CgwF, DescribeVpnGateways as VgwF};
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_model::filter::Filterable;
use kumo_store::{Query, Read, Scope};

const VGWS_PER_REGION: usize = 5;
const CGWS_PER_REGION: usize = 50;
const DELETED_SHOWN_MS: i64 = 3_600_000;

pub(crate) fn vgw_not_found(id: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidVpnGatewayID.NotFound",
        format!("The vpnGateway ID '{id}' does not exist"),
    )
}

fn cgw_not_found(id: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidCustomerGatewayID.NotFound",
        format!("The customerGateway ID '{id}' does not exist"),
    )
}

/// A gateway of the scope, not deleted.
fn get_vgw<V: Read>(v: &V, s: Scope, id: &str) -> Result<VpnGatewayRecord, Fail> {
    v.get::<VpnGatewayRecord>(s, id)?
        .filter(|g| g.deleted_ms.is_none())
        .ok_or_else(|| Fail(vgw_not_found(id)))
}

fn state(created: i64, deleted: Option<i64>, now: i64, delay: i64) -> &'static str {
    match deleted {
        Some(d) if now < d + delay => "deleting",
        Some(_) => "deleted",
        None if now < created + delay => "pending",
        None => "available",
    }
}

fn attachment_state(a: &VgwAttachment, now: i64, delay: i64) -> &'static str {
    match (a.attached, now < a.changed_ms + delay) {
        (true, true) => "attaching",
        (true, false) => "attached",
        (false, true) => "detaching",
        (false, false) => "detached",
    }
}

fn wire_vgw(g: &VpnGatewayRecord, t: &[(String, String)], now: i64, delay: i64) -> VpnGateway {
    VpnGateway {
        vpn_gateway_id: Some(g.id.clone()),
        r#type: Some("ipsec.1".into()),
        amazon_side_asn: Some(g.amazon_side_asn),
        availability_zone: g.zone.clone(),
        state: Some(state(g.created_ms, g.deleted_ms, now, delay).into()),
        vpc_attachments: Some(
            g.attachment
                .iter()
                .map(|a| VpcAttachment {
                    vpc_id: Some(a.vpc_id.clone()),
                    state: Some(attachment_state(a, now, delay).into()),
                })
                .collect(),
        ),
        tags: Some(tags::wire(t)),
    }
}

fn wire_cgw(
    c: &CustomerGatewayRecord,
    t: &[(String, String)],
    now: i64,
    delay: i64,
) -> CustomerGateway {
    CustomerGateway {
        customer_gateway_id: Some(c.id.clone()),
        r#type: Some("ipsec.1".into()),
        bgp_asn: c.bgp_asn.map(|a| a.to_string()),
        bgp_asn_extended: c.bgp_asn_extended.map(|a| a.to_string()),
        ip_address: c.ip_address.clone(),
        device_name: c.device_name.clone(),
        certificate_arn: c.certificate_arn.clone(),
        state: Some(state(c.created_ms, c.deleted_ms, now, delay).into()),
        tags: Some(tags::wire(t)),
    }
}

/// Whether a deleted resource is still shown.
fn shown(deleted: Option<i64>, now: i64) -> bool {
    deleted.is_none_or(|d| now < d + DELETED_SHOWN_MS)
}

impl Checks for CreateVpnGatewayRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        if let Some(asn) = self.amazon_side_asn {
            if !((64512..=65534).contains(&asn) || (4_200_000_000..=4_294_967_294).contains(&asn)) {
                return Err(Ec2Error::invalid_value(format!(
                    "Value ({asn}) for parameter amazonSideAsn is invalid. The ASN must be in the range 64512-65534 or 4200000000-4294967294."
                )));
            }
        }
        tags::from_specifications(self.tag_specifications.clone(), "vpn-gateway").map(drop)
    }
}

impl Checks for CreateCustomerGatewayRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        if self.ip_address.is_none() && self.public_ip.is_none() && self.certificate_arn.is_none() {
            return Err(Ec2Error::missing_parameter("ipAddress"));
        }
        if self.bgp_asn.is_some() && self.bgp_asn_extended.is_some() {
            return Err(Ec2Error::new(
                "InvalidParameterCombination",
                "The parameter bgpAsn cannot be used with the parameter bgpAsnExtended",
            ));
        }
        Ok(())
    }
    fn formats(&self) -> Result<(), Ec2Error> {
        if let Some(ip) = self.ip_address.as_ref().or(self.public_ip.as_ref()) {
            if ip.parse::<std::net::IpAddr>().is_err() {
                return Err(Ec2Error::invalid_value(format!(
                    "Value ({ip}) for parameter ipAddress is invalid. This is not a valid IP address."
                )));
            }
        }
        if let Some(a) = self.bgp_asn {
            if a < 1 {
                return Err(Ec2Error::invalid_value(format!(
                    "Value ({a}) for parameter bgpAsn is invalid. The ASN must be in the range 1-2147483647."
                )));
            }
        }
        if let Some(a) = self.bgp_asn_extended {
            if !(2_147_483_648..=4_294_967_295).contains(&a) {
                return Err(Ec2Error::invalid_value(format!(
                    "Value ({a}) for parameter bgpAsnExtended is invalid. The ASN must be in the range 2147483648-4294967295."
                )));
            }
        }
        if self.device_name.as_ref().is_some_and(|d| d.len() > 255) {
            return Err(Ec2Error::invalid_value(
                "Value for parameter deviceName is invalid. It is longer than 255 characters.",
            ));
        }
        tags::from_specifications(self.tag_specifications.clone(), "customer-gateway").map(drop)
    }
}

impl Checks for AttachVpnGatewayRequest {}
impl Checks for DetachVpnGatewayRequest {}
impl Checks for DeleteVpnGatewayRequest {}
impl Checks for DescribeVpnGatewaysRequest {}
impl Checks for DeleteCustomerGatewayRequest {}
impl Checks for DescribeCustomerGatewaysRequest {}
impl Checks for EnableVgwRoutePropagationRequest {}
impl Checks for DisableVgwRoutePropagationRequest {}
impl Checks for CreateVpnConnectionRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        if self.vpn_gateway_id.is_none() && self.transit_gateway_id.is_none() {
            return Err(Ec2Error::missing_parameter(
                "vpnGatewayId or transitGatewayId",
            ));
        }
        Ok(())
    }
}

pub fn create_vgw(
    k: &Kumo,
    ctx: &RequestContext,
    input: CreateVpnGatewayRequest,
) -> Result<CreateVpnGatewayResult, Ec2Error> {
    let tag_list = tags::from_specifications(input.tag_specifications.clone(), "vpn-gateway")?;
    // Terraform sends an empty zone for none.
    let zone = match input.availability_zone.as_deref().filter(|z| !z.is_empty()) {
        Some(z) => {
            crate::network::resolve_zone(&ctx.region, Some(z), None)?.map(|z| z.0.to_string())
        }
        None => None,
    };
    let s = scope(ctx);
    let (now, delay) = (k.now_ms(), k.options.transition_ms);
    let rec = k
        .store
        .write(!ctx.dry_run, |tx| {
            let live = tx
                .list::<VpnGatewayRecord>(s, &Query::default())?
                .into_iter()
                .filter(|g| g.deleted_ms.is_none())
                .count();
            if live >= VGWS_PER_REGION {
                return Err(Fail(Ec2Error::new(
                    "VpnGatewayLimitExceeded",
                    "The maximum number of virtual private gateways has been reached.",
                )));
            }
            let rec = VpnGatewayRecord {
                id: new_id("vgw"),
                amazon_side_asn: input.amazon_side_asn.unwrap_or(64512),
                zone: zone.clone(),
                created_ms: now,
                attachment: None,
                deleted_ms: None,
            };
            tx.insert(s, &rec)?;
            tags::put_all(tx, s, &rec.id, "vpn-gateway", &tag_list)?;
            Ok::<_, Fail>(rec)
        })
        .map_err(|f| f.0)?;
    Ok(CreateVpnGatewayResult {
        vpn_gateway: Some(wire_vgw(&rec, &tags::wire_pairs(&tag_list), now, delay)),
    })
}

pub fn attach_vgw(
    k: &Kumo,
    ctx: &RequestContext,
    input: AttachVpnGatewayRequest,
) -> Result<AttachVpnGatewayResult, Ec2Error> {
    let s = scope(ctx);
    let now = k.now_ms();
    k.store
        .write(!ctx.dry_run, |tx| {
            let mut g = get_vgw(tx, s, &input.vpn_gateway_id)?;
            let vpc = get_vpc(tx, s, &input.vpc_id)?;
            if let Some(a) = g.attachment.as_ref().filter(|a| a.attached) {
                if a.vpc_id == vpc.id {
                    return Ok(());
                }
                return Err(Fail(Ec2Error::new(
                    "VpnGatewayAttachmentLimitExceeded",
                    "The maximum number of virtual private gateway attachments has been reached.",
                )));
            }
            let holders: Vec<VpnGatewayRecord> = tx.list(
                s,
                &Query {
                    vpcs: Some(&[vpc.id.as_str()]),
                    ..Query::default()
                },
            )?;
            if let Some(other) = holders.iter().find(|x| x.id != g.id) {
                return Err(Fail(Ec2Error::new(
                    "InvalidVpcState",
                    format!(
                        "VPC {} is currently attached to the Virtual Private Gateway {}.",
                        vpc.id, other.id
                    ),
                )));
            }
            g.attachment = Some(VgwAttachment {
                vpc_id: vpc.id.clone(),
                attached: true,
                changed_ms: now,
            });
            tx.update(s, &g)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)?;
    Ok(AttachVpnGatewayResult {
        vpc_attachment: Some(VpcAttachment {
            vpc_id: Some(input.vpc_id),
            state: Some("attaching".into()),
        }),
    })
}

pub fn detach_vgw(
    k: &Kumo,
    ctx: &RequestContext,
    input: DetachVpnGatewayRequest,
) -> Result<(), Ec2Error> {
    let s = scope(ctx);
    let now = k.now_ms();
    k.store
        .write(!ctx.dry_run, |tx| {
            let mut g = get_vgw(tx, s, &input.vpn_gateway_id)?;
            get_vpc(tx, s, &input.vpc_id)?;
            match g.attachment.as_mut() {
                Some(a) if a.attached && a.vpc_id == input.vpc_id => {
                    a.attached = false;
                    a.changed_ms = now;
                }
                _ => {
                    return Err(Fail(Ec2Error::new(
                        "InvalidVpnGatewayAttachment.NotFound",
                        format!(
                        "The attachment with vpn gateway ID '{}' and vpc ID '{}' does not exist",
                        g.id, input.vpc_id
                    ),
                    )))
                }
            }
            // Its VPC's route tables stop taking its routes.
            let tables: Vec<RouteTableRecord> = tx.list(
                s,
                &Query {
                    vpcs: Some(&[input.vpc_id.as_str()]),
                    ..Query::default()
                },
            )?;
            for mut t in tables {
                if t.propagating_vgws.contains(&g.id) {
                    t.propagating_vgws.retain(|x| *x != g.id);
                    tx.update(s, &t)?;
                }
            }
            tx.update(s, &g)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)
}

pub fn delete_vgw(
    k: &Kumo,
    ctx: &RequestContext,
    input: DeleteVpnGatewayRequest,
) -> Result<(), Ec2Error> {
    let s = scope(ctx);
    let now = k.now_ms();
    k.store
        .write(!ctx.dry_run, |tx| {
            let mut g = get_vgw(tx, s, &input.vpn_gateway_id)?;
            if g.attachment.as_ref().is_some_and(|a| a.attached) {
                return Err(Fail(Ec2Error::new(
                    "IncorrectState",
                    "The VPN gateway is in use.",
                )));
            }
            g.deleted_ms = Some(now);
            tx.update(s, &g)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)
}

struct VgwView<'a>(&'a VpnGateway, &'a [(String, String)]);

impl Filterable<VgwF> for VgwView<'_> {
    fn field(&self, f: VgwF, out: &mut dyn FnMut(&str)) {
        let g = self.0;
        let mut opt = |v: Option<&String>| v.iter().for_each(|v| out(v));
        let attachments = g.vpc_attachments.as_deref().unwrap_or_default();
        match f {
            VgwF::AmazonSideAsn => opt(g.amazon_side_asn.map(|a| a.to_string()).as_ref()),
            VgwF::AttachmentState => attachments.iter().for_each(|a| opt(a.state.as_ref())),
            VgwF::AttachmentVpcId => attachments.iter().for_each(|a| opt(a.vpc_id.as_ref())),
            VgwF::AvailabilityZone => opt(g.availability_zone.as_ref()),
            VgwF::State => opt(g.state.as_ref()),
            VgwF::Type => opt(g.r#type.as_ref()),
            VgwF::VpnGatewayId => opt(g.vpn_gateway_id.as_ref()),
        }
    }
    fn tags(&self) -> &[(String, String)] {
        self.1
    }
}

pub fn describe_vgws(
    k: &Kumo,
    ctx: &RequestContext,
    input: DescribeVpnGatewaysRequest,
) -> Result<DescribeVpnGatewaysResult, Ec2Error> {
    let fs = filters::compile::<VgwF>(input.filters, &[])?;
    let ids = input.vpn_gateway_ids.unwrap_or_default();
    let s = scope(ctx);
    let (now, delay) = (k.now_ms(), k.options.transition_ms);
    let req = describe::Request {
        op: "DescribeVpnGateways",
        ids: &ids,
        not_found: &vgw_not_found,
        push: Push::filters(&fs, VgwF::VpnGatewayId, None),
        max_results: None,
        bounds: (5, 1000),
        next_token: None,
    };
    let (all, _) = describe::read(&k.store, s, &req, |t: &Tagged<VpnGatewayRecord>| {
        shown(t.item.deleted_ms, now)
    })?;
    Ok(DescribeVpnGatewaysResult {
        vpn_gateways: Some(
            all.iter()
                .map(|t| (wire_vgw(&t.item, &t.tags, now, delay), &t.tags))
                .filter(|(w, tags)| fs.is_empty() || fs.matches(&VgwView(w, tags)))
                .map(|(w, _)| w)
                .collect(),
        ),
    })
}

pub fn create_cgw(
    k: &Kumo,
    ctx: &RequestContext,
    input: CreateCustomerGatewayRequest,
) -> Result<CreateCustomerGatewayResult, Ec2Error> {
    let tag_list = tags::from_specifications(input.tag_specifications.clone(), "customer-gateway")?;
    let s = scope(ctx);
    let (now, delay) = (k.now_ms(), k.options.transition_ms);
    let ip = input.ip_address.clone().or(input.public_ip.clone());
    let (bgp_asn, bgp_asn_extended) = match (input.bgp_asn, input.bgp_asn_extended) {
        (None, None) => (Some(65000), None),
        (a, e) => (a.map(i64::from), e),
    };
    let (rec, pairs) = k
        .store
        .write(!ctx.dry_run, |tx| {
            let live: Vec<CustomerGatewayRecord> = tx
                .list::<CustomerGatewayRecord>(s, &Query::default())?
                .into_iter()
                .filter(|c| c.deleted_ms.is_none())
                .collect();
            // An identical request (type, address, ASN; a device name makes it another)
            // answers the existing gateway.
            if let Some(same) = live.iter().find(|c| {
                c.ip_address == ip
                    && c.bgp_asn == bgp_asn
                    && c.bgp_asn_extended == bgp_asn_extended
                    && c.device_name == input.device_name
                    && c.certificate_arn == input.certificate_arn
            }) {
                return Ok((same.clone(), tx.tags_of(s, &same.id)?));
            }
            if live.len() >= CGWS_PER_REGION {
                return Err(Fail(Ec2Error::new(
                    "CustomerGatewayLimitExceeded",
                    "The maximum number of customer gateways has been reached.",
                )));
            }
            let rec = CustomerGatewayRecord {
                id: new_id("cgw"),
                bgp_asn,
                bgp_asn_extended,
                ip_address: ip.clone(),
                device_name: input.device_name.clone(),
                certificate_arn: input.certificate_arn.clone(),
                created_ms: now,
                deleted_ms: None,
            };
            tx.insert(s, &rec)?;
            tags::put_all(tx, s, &rec.id, "customer-gateway", &tag_list)?;
            Ok::<_, Fail>((rec, tags::wire_pairs(&tag_list)))
        })
        .map_err(|f| f.0)?;
    Ok(CreateCustomerGatewayResult {
        customer_gateway: Some(wire_cgw(&rec, &pairs, now, delay)),
    })
}

pub fn delete_cgw(
    k: &Kumo,
    ctx: &RequestContext,
    input: DeleteCustomerGatewayRequest,
) -> Result<(), Ec2Error> {
    let s = scope(ctx);
    let now = k.now_ms();
    k.store
        .write(!ctx.dry_run, |tx| {
            let mut c = tx
                .get::<CustomerGatewayRecord>(s, &input.customer_gateway_id)?
                .filter(|c| c.deleted_ms.is_none())
                .ok_or_else(|| Fail(cgw_not_found(&input.customer_gateway_id)))?;
            c.deleted_ms = Some(now);
            tx.update(s, &c)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)
}

struct CgwView<'a>(&'a CustomerGateway, &'a [(String, String)]);

impl Filterable<CgwF> for CgwView<'_> {
    fn field(&self, f: CgwF, out: &mut dyn FnMut(&str)) {
        let c = self.0;
        let mut opt = |v: Option<&String>| v.iter().for_each(|v| out(v));
        match f {
            CgwF::BgpAsn => opt(c.bgp_asn.as_ref().or(c.bgp_asn_extended.as_ref())),
            CgwF::CustomerGatewayId => opt(c.customer_gateway_id.as_ref()),
            CgwF::IpAddress => opt(c.ip_address.as_ref()),
            CgwF::State => opt(c.state.as_ref()),
            CgwF::Type => opt(c.r#type.as_ref()),
        }
    }
    fn tags(&self) -> &[(String, String)] {
        self.1
    }
}

pub fn describe_cgws(
    k: &Kumo,
    ctx: &RequestContext,
    input: DescribeCustomerGatewaysRequest,
) -> Result<DescribeCustomerGatewaysResult, Ec2Error> {
    let fs = filters::compile::<CgwF>(input.filters, &[])?;
    let ids = input.customer_gateway_ids.unwrap_or_default();
    let s = scope(ctx);
    let (now, delay) = (k.now_ms(), k.options.transition_ms);
    let req = describe::Request {
        op: "DescribeCustomerGateways",
        ids: &ids,
        not_found: &cgw_not_found,
        push: Push::filters(&fs, CgwF::CustomerGatewayId, None),
        max_results: None,
        bounds: (5, 1000),
        next_token: None,
    };
    let (all, _) = describe::read(&k.store, s, &req, |t: &Tagged<CustomerGatewayRecord>| {
        shown(t.item.deleted_ms, now)
    })?;
    Ok(DescribeCustomerGatewaysResult {
        customer_gateways: Some(
            all.iter()
                .map(|t| (wire_cgw(&t.item, &t.tags, now, delay), &t.tags))
                .filter(|(w, tags)| fs.is_empty() || fs.matches(&CgwView(w, tags)))
                .map(|(w, _)| w)
                .collect(),
        ),
    })
}

/// Enable (`on`) or disable route propagation from a gateway into a route table: the gateway
/// must be attached to the table's VPC.
pub fn propagation(
    k: &Kumo,
    ctx: &RequestContext,
    gateway: &str,
    table: &str,
    on: bool,
) -> Result<(), Ec2Error> {
    let s = scope(ctx);
    k.store
        .write(!ctx.dry_run, |tx| {
            let mut t = tx
                .get::<RouteTableRecord>(s, table)?
                .ok_or_else(|| Fail(crate::routes::not_found(table)))?;
            let attached = tx
                .get::<VpnGatewayRecord>(s, gateway)?
                .filter(|g| g.deleted_ms.is_none())
                .and_then(|g| g.attachment)
                .is_some_and(|a| a.attached && a.vpc_id == t.vpc_id);
            if !attached {
                return Err(Fail(Ec2Error::new(
                    "Gateway.NotAttached",
                    format!("resource {gateway} is not attached to network {}", t.vpc_id),
                )));
            }
            let has = t.propagating_vgws.iter().any(|g| g == gateway);
            match (on, has) {
                (true, false) => t.propagating_vgws.push(gateway.to_string()),
                (false, true) => t.propagating_vgws.retain(|g| g != gateway),
                _ => return Ok(()),
            }
            tx.update(s, &t)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)
}

/// CreateVpnConnection: its gateways are looked up as AWS does, then `Unsupported`.
pub fn create_connection(
    k: &Kumo,
    ctx: &RequestContext,
    input: CreateVpnConnectionRequest,
) -> Result<CreateVpnConnectionResult, Ec2Error> {
    let s = scope(ctx);
    k.store
        .read(|v| {
            v.get::<CustomerGatewayRecord>(s, &input.customer_gateway_id)?
                .filter(|c| c.deleted_ms.is_none())
                .ok_or_else(|| Fail(cgw_not_found(&input.customer_gateway_id)))?;
            if let Some(g) = &input.vpn_gateway_id {
                get_vgw(v, s, g)?;
            }
            Ok::<_, Fail>(())
        })
        .map_err(|f| f.0)?;
    Err(Ec2Error::new(
        "Unsupported",
        "Kumo runs no IPsec endpoint: a VPN connection's tunnels cannot be established.",
    ))
}
