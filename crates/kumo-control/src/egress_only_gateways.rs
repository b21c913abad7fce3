//! Egress-only internet gateways: a VPC's IPv6 way out that lets nothing in. Created attached
//! to their VPC (they have no attach call), deleted outright; a route sends IPv6 traffic to one
//! (`::/0` usually), and a VPC that has one cannot be deleted.
//!
//! AWS's answers (the API reference; public reports for the codes): DescribeEgressOnlyInternet
//! Gateways answers an unknown id with nothing rather than an error; DeleteEgressOnlyInternet
//! Gateway answers `returnCode`, and an unknown id `InvalidGatewayID.NotFound`, the code
//! Terraform's delete expects.

use crate::core::checks::Checks;
use crate::core::describe::{self, Push};
use crate::core::error::Fail;
use crate::core::filters;
use crate::core::idempotency;
use crate::core::ids::new_id;
use crate::records::net::{EgressOnlyGatewayRecord, RouteTableRecord};
use crate::tags::{self, Tagged};
use crate::{scope, Kumo};
use kumo_ec2_wire::filters::DescribeEgressOnlyInternetGateways as F;
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_model::filter::Filterable;
use kumo_store::Read;

pub fn not_found(id: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidGatewayID.NotFound",
        format!("The eigw ID '{id}' does not exist"),
    )
}

fn wire(t: &Tagged<EgressOnlyGatewayRecord>) -> EgressOnlyInternetGateway {
    EgressOnlyInternetGateway {
        egress_only_internet_gateway_id: Some(t.item.id.clone()),
        attachments: Some(vec![InternetGatewayAttachment {
            state: Some("attached".into()),
            vpc_id: Some(t.item.vpc_id.clone()),
        }]),
        tags: Some(tags::wire(&t.tags)),
    }
}

/// CreateEgressOnlyInternetGateway, before any lookup: the tags and the token. The VPC
/// follows.
impl Checks for CreateEgressOnlyInternetGatewayRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        tags::from_specifications(
            self.tag_specifications.clone(),
            "egress-only-internet-gateway",
        )?;
        idempotency::check_token(self.client_token.as_deref())
    }
}

pub fn create(
    k: &Kumo,
    ctx: &RequestContext,
    input: CreateEgressOnlyInternetGatewayRequest,
) -> Result<CreateEgressOnlyInternetGatewayResult, Ec2Error> {
    let digest = idempotency::digest(&input);
    let token = input.client_token.clone();
    let tag_list = tags::from_specifications(
        input.tag_specifications.clone(),
        "egress-only-internet-gateway",
    )?;
    let s = scope(ctx);
    let now = k.now_ms();
    let t = k
        .store
        .write(!ctx.dry_run, |tx| {
            let op = "CreateEgressOnlyInternetGateway";
            if let Some(id) = idempotency::earlier(tx, s, op, token.as_deref(), &digest)? {
                let item: EgressOnlyGatewayRecord =
                    tx.get(s, &id)?.ok_or_else(|| Fail(not_found(&id)))?;
                return Ok(Tagged {
                    tags: tx.tags_of(s, &id)?,
                    item,
                });
            }
            let vpc = crate::vpcs::get_vpc(tx, s, &input.vpc_id)?;
            let g = EgressOnlyGatewayRecord {
                id: new_id("eigw"),
                vpc_id: vpc.id,
                created_ms: now,
            };
            tx.insert(s, &g)?;
            tags::put_all(tx, s, &g.id, "egress-only-internet-gateway", &tag_list)?;
            idempotency::remember(tx, s, op, token.as_deref(), &digest, &g.id)?;
            Ok::<_, Fail>(Tagged {
                item: g,
                tags: tags::wire_pairs(&tag_list),
            })
        })
        .map_err(|f| f.0)?;
    Ok(CreateEgressOnlyInternetGatewayResult {
        egress_only_internet_gateway: Some(wire(&t)),
        client_token: input.client_token,
    })
}

impl Checks for DeleteEgressOnlyInternetGatewayRequest {}

/// Deletes the gateway; the routes to it stay, as `blackhole`, as AWS leaves routes to a
/// deleted gateway.
pub fn delete(
    k: &Kumo,
    ctx: &RequestContext,
    input: DeleteEgressOnlyInternetGatewayRequest,
) -> Result<DeleteEgressOnlyInternetGatewayResult, Ec2Error> {
    let s = scope(ctx);
    let id = input.egress_only_internet_gateway_id.clone();
    k.store
        .write(!ctx.dry_run, |tx| {
            if tx.get::<EgressOnlyGatewayRecord>(s, &id)?.is_none() {
                return Err(Fail(not_found(&id)));
            }
            tx.delete::<EgressOnlyGatewayRecord>(s, &id)?;
            Ok::<_, Fail>(())
        })
        .map_err(|f| f.0)?;
    Ok(DeleteEgressOnlyInternetGatewayResult {
        return_code: Some(true),
    })
}

struct View<'a>(&'a [(String, String)]);

impl Filterable<F> for View<'_> {
    fn field(&self, f: F, _out: &mut dyn FnMut(&str)) {
        match f {}
    }
    fn tags(&self) -> &[(String, String)] {
        self.0
    }
}

/// DescribeEgressOnlyInternetGateways, before any lookup: the page size (AWS: 5 to 255).
impl Checks for DescribeEgressOnlyInternetGatewaysRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        if let Some(m) = self.max_results {
            if !(5..=255).contains(&m) {
                return Err(Ec2Error::invalid_value(format!(
                    "Value ( {m} ) for parameter maxResults is invalid. Parameter must be between 5 and 255."
                )));
            }
        }
        Ok(())
    }
}

pub fn describe(
    k: &Kumo,
    ctx: &RequestContext,
    input: DescribeEgressOnlyInternetGatewaysRequest,
) -> Result<DescribeEgressOnlyInternetGatewaysResult, Ec2Error> {
    let fs = filters::compile::<F>(input.filters, &[])?;
    let ids = input.egress_only_internet_gateway_ids.unwrap_or_default();
    // The ids narrow the answer but are not looked up one by one: an unknown id is no error.
    let req = describe::Request {
        op: "DescribeEgressOnlyInternetGateways",
        ids: &[],
        not_found: &not_found,
        push: Push {
            ids: (!ids.is_empty()).then(|| ids.iter().map(String::as_str).collect()),
            tag: fs.exact_tag(),
            ..Push::default()
        },
        max_results: input.max_results,
        bounds: (5, 255),
        next_token: input.next_token.as_deref(),
    };
    let (page, next) = describe::read(&k.store, scope(ctx), &req, |t| {
        fs.is_empty() || fs.matches(&View(&t.tags))
    })?;
    Ok(DescribeEgressOnlyInternetGatewaysResult {
        egress_only_internet_gateways: Some(page.iter().map(wire).collect()),
        next_token: next,
    })
}

/// Whether a route table's VPC has this gateway (a route may name it).
pub fn in_vpc<V: Read>(
    v: &V,
    s: kumo_store::Scope,
    rtb: &RouteTableRecord,
    id: &str,
) -> Result<bool, Fail> {
    Ok(v.get::<EgressOnlyGatewayRecord>(s, id)?
        .is_some_and(|g| g.vpc_id == rtb.vpc_id))
}
