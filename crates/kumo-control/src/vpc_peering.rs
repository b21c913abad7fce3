//! VPC peering connections: Create, Accept, Reject, Delete, Describe and
//! ModifyVpcPeeringConnectionOptions, within an account or across accounts and regions.
//!
//! AWS's lifecycle (the VPC Peering Guide's "VPC peering connection lifecycle"):
//! - a request is `initiating-request` in CreateVpcPeeringConnection's answer, then
//!   `pending-acceptance` for 7 days (`ExpirationTime`), then `expired`;
//! - overlapping CIDRs, or a peer VPC that does not exist in another account or region, make
//!   it `failed` ("Failed due to incorrect VPC-ID, Account ID, or overlapping CIDR range"),
//!   shown to the requester for 2 hours; a missing peer VPC of the same account and region is
//!   refused at once (`InvalidVpcID.NotFound`);
//! - the accepter accepts (`provisioning` in the answer, then `active`) or rejects it; either
//!   owner deletes an active one, the requester a pending one;
//! - a rejected or deleted one stays visible for 2 hours to the account that ended it (and to
//!   both within one account) and 2 days to the other; an expired one 2 days to both.
//!
//! The same request twice (same VPCs, same direction, not ended) answers the existing
//! connection. Accepting a second active connection between the same two VPCs is
//! `VpcPeeringConnectionAlreadyExists`.
//!
//! Real: an active connection is a link between the two VPCs' namespaces
//! ([`kumo_compute::PeeringLink`]), and each VPC's firewall lets through it only what its
//! subnets' route tables send to the connection (`host::firewall`), so instances reach each
//! other only where both sides route through it and their groups allow it.

use crate::core::checks::{self, Checks};
use crate::core::describe::{self, Push};
use crate::core::error::Fail;
use crate::core::filters;
use crate::core::ids::new_id;
use crate::firewall_sync::Reach;
use crate::records::net::{PeeringSide, VpcPeeringRecord, VpcRecord};
use crate::tags::{self, Tagged};
use crate::{scope, Kumo};
use kumo_ec2_wire::filters::DescribeVpcPeeringConnections as PcxF;
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{DateTime, Ec2Error, RequestContext};
use kumo_model::cidr::Cidr;
use kumo_model::filter::Filterable;
use kumo_store::{Query, Read, Scope, Tx};

const HOUR_MS: i64 = 3_600_000;
const PENDING_MS: i64 = 7 * 24 * HOUR_MS;
/// Outstanding (pending) requests per account (AWS's quota).
const OUTSTANDING: usize = 25;
/// Active connections per VPC (AWS's default quota).
const ACTIVE_PER_VPC: usize = 50;
const FAILED_MESSAGE: &str =
    "Failed due to incorrect VPC-ID, Account ID, or overlapping CIDR range";

pub(crate) fn not_found(id: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidVpcPeeringConnectionID.NotFound",
        format!("The vpcPeeringConnection ID '{id}' does not exist"),
    )
}

/// The status as of `now`: a pending request past its expiry is `expired`.
fn status(r: &VpcPeeringRecord, now: i64) -> &str {
    if r.status == "pending-acceptance" && now >= r.expires_ms {
        "expired"
    } else {
        &r.status
    }
}

/// Whether `account` still sees the connection at `now` (AWS's windows, in the module doc).
fn visible(r: &VpcPeeringRecord, account: &str, now: i64) -> bool {
    let same_account = r.requester.account == r.accepter.account;
    let ended = r.ended_ms.unwrap_or(r.expires_ms);
    let window = match status(r, now) {
        "pending-acceptance" | "active" => return true,
        "expired" => return now < r.expires_ms + 48 * HOUR_MS,
        "failed" => {
            return account == r.requester.account && now < ended + 2 * HOUR_MS;
        }
        _ if same_account || r.ended_by.as_deref() == Some(account) => 2 * HOUR_MS,
        _ => 48 * HOUR_MS,
    };
    now < ended + window
}

/// Which side of the connection a caller is: the requester, the accepter, or (one account
/// and region for both) both.
fn side(r: &VpcPeeringRecord, ctx: &RequestContext) -> (bool, bool) {
    let is = |s: &PeeringSide| s.account == ctx.account_id && s.region == ctx.region;
    (is(&r.requester), is(&r.accepter))
}

/// Writes the connection in each side's scope (`insert` for a new one). A failed request
/// is the requester's alone.
fn save(tx: &Tx, r: &VpcPeeringRecord, insert: bool) -> Result<(), Fail> {
    let req = Scope {
        account: &r.requester.account,
        region: &r.requester.region,
    };
    let acc = Scope {
        account: &r.accepter.account,
        region: &r.accepter.region,
    };
    let mut copies = vec![(
        req,
        VpcPeeringRecord {
            local_vpc: r.requester.vpc_id.clone(),
            ..r.clone()
        },
    )];
    let same_scope =
        r.requester.account == r.accepter.account && r.requester.region == r.accepter.region;
    let accepter_copy = !(same_scope || (insert && r.status == "failed"));
    if accepter_copy {
        copies.push((
            acc,
            VpcPeeringRecord {
                local_vpc: r.accepter.vpc_id.clone(),
                ..r.clone()
            },
        ));
    }
    for (s, c) in copies {
        // A copy missing from an update is the accepter's of a request that failed.
        if insert || !tx.update(s, &c)? {
            tx.insert(s, &c)?;
        }
    }
    Ok(())
}

/// A connection the caller's scope holds and still sees.
fn get<V: Read>(v: &V, ctx: &RequestContext, id: &str, now: i64) -> Result<VpcPeeringRecord, Fail> {
    v.get::<VpcPeeringRecord>(scope(ctx), id)?
        .filter(|r| visible(r, &ctx.account_id, now))
        .ok_or_else(|| Fail(not_found(id)))
}

fn transition(id: &str, from: &str, to: &str) -> Fail {
    Fail(Ec2Error::new(
        "InvalidStateTransition",
        format!("Invalid state transition for {id}, attempted to transition from {from} to {to}"),
    ))
}

fn options(allow_dns: bool) -> VpcPeeringConnectionOptionsDescription {
    VpcPeeringConnectionOptionsDescription {
        allow_dns_resolution_from_remote_vpc: Some(allow_dns),
        allow_egress_from_local_classic_link_to_remote_vpc: Some(false),
        allow_egress_from_local_vpc_to_remote_classic_link: Some(false),
    }
}

/// A side as the wire shows it: its CIDRs and options only once they are known (the
/// accepter's from its acceptance on).
fn wire_side(s: &PeeringSide, full: bool) -> VpcPeeringConnectionVpcInfo {
    let mut info = VpcPeeringConnectionVpcInfo {
        owner_id: Some(s.account.clone()),
        vpc_id: Some(s.vpc_id.clone()),
        region: Some(s.region.clone()),
        ..VpcPeeringConnectionVpcInfo::default()
    };
    if full && !s.cidrs.is_empty() {
        info.cidr_block = s.cidrs.first().cloned();
        info.cidr_block_set = Some(
            s.cidrs
                .iter()
                .map(|c| CidrBlock {
                    cidr_block: Some(c.clone()),
                })
                .collect(),
        );
        info.peering_options = Some(options(s.allow_dns));
    }
    info
}

/// The connection as the wire shows it at `now`; `code` overrides the status (the
/// transitional `initiating-request` and `provisioning` of Create's and Accept's answers).
fn wire(
    r: &VpcPeeringRecord,
    t: &[(String, String)],
    now: i64,
    code: Option<&str>,
) -> VpcPeeringConnection {
    let code = code.unwrap_or_else(|| status(r, now));
    let message = match code {
        "initiating-request" => format!("Initiating Request to {}", r.accepter.account),
        "pending-acceptance" => format!("Pending Acceptance by {}", r.accepter.account),
        "provisioning" => "Provisioning".into(),
        "active" => "Active".into(),
        "failed" => FAILED_MESSAGE.into(),
        "expired" => "Expired".into(),
        "rejected" => format!("Rejected by {}", r.ended_by.as_deref().unwrap_or_default()),
        "deleted" => format!("Deleted by {}", r.ended_by.as_deref().unwrap_or_default()),
        other => other.to_string(),
    };
    let accepted = matches!(code, "provisioning" | "active");
    VpcPeeringConnection {
        vpc_peering_connection_id: Some(r.id.clone()),
        requester_vpc_info: Some(wire_side(&r.requester, true)),
        accepter_vpc_info: Some(wire_side(&r.accepter, accepted)),
        expiration_time: matches!(
            code,
            "initiating-request" | "pending-acceptance" | "expired"
        )
        .then(|| DateTime(r.expires_ms)),
        status: Some(VpcPeeringConnectionStateReason {
            code: Some(code.to_string()),
            message: Some(message),
        }),
        tags: Some(tags::wire(t)),
    }
}

impl Checks for CreateVpcPeeringConnectionRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        checks::given(&self.peer_vpc_id, "peerVpcId")
    }
    fn formats(&self) -> Result<(), Ec2Error> {
        if let Some(o) = &self.peer_owner_id {
            if o.len() != 12 || !o.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Ec2Error::invalid_value(format!(
                    "Value ({o}) for parameter peerOwnerId is invalid. It must be a 12-digit AWS account ID."
                )));
            }
        }
        tags::from_specifications(self.tag_specifications.clone(), "vpc-peering-connection")
            .map(drop)
    }
}

impl Checks for AcceptVpcPeeringConnectionRequest {}
impl Checks for RejectVpcPeeringConnectionRequest {}
impl Checks for DeleteVpcPeeringConnectionRequest {}
impl Checks for ModifyVpcPeeringConnectionOptionsRequest {}
impl Checks for DescribeVpcPeeringConnectionsRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        checks::page(
            "DescribeVpcPeeringConnections",
            self.max_results,
            self.next_token.as_deref(),
            (5, 1000),
        )
    }
}

fn cidrs(v: &VpcRecord) -> Vec<String> {
    v.cidrs.iter().map(|c| c.cidr.clone()).collect()
}

fn overlap(a: &[String], b: &[String]) -> bool {
    a.iter().any(|x| {
        b.iter().any(|y| match (Cidr::parse(x), Cidr::parse(y)) {
            (Ok(x), Ok(y)) => x.overlaps(y),
            _ => false,
        })
    })
}

pub fn create(
    k: &Kumo,
    ctx: &RequestContext,
    input: CreateVpcPeeringConnectionRequest,
) -> Result<CreateVpcPeeringConnectionResult, Ec2Error> {
    let tag_list =
        tags::from_specifications(input.tag_specifications.clone(), "vpc-peering-connection")?;
    let s = scope(ctx);
    let now = k.now_ms();
    let peer_vpc = input.peer_vpc_id.clone().unwrap_or_default();
    let peer_account = input
        .peer_owner_id
        .clone()
        .unwrap_or(ctx.account_id.clone());
    let peer_region = input.peer_region.clone().unwrap_or(ctx.region.clone());
    let (rec, pairs, fresh) = k
        .store
        .write(!ctx.dry_run, |tx| {
            let vpc = crate::vpcs::get_vpc(tx, s, &input.vpc_id)?;
            let mine: Vec<VpcPeeringRecord> = tx.list(s, &Query::default())?;
            // The same request again answers the connection it made.
            if let Some(r) = mine.iter().find(|r| {
                r.requester.vpc_id == vpc.id
                    && r.requester.account == ctx.account_id
                    && r.requester.region == ctx.region
                    && r.accepter.vpc_id == peer_vpc
                    && r.accepter.account == peer_account
                    && r.accepter.region == peer_region
                    && matches!(status(r, now), "pending-acceptance" | "active")
            }) {
                return Ok((r.clone(), tx.tags_of(s, &r.id)?, false));
            }
            let outstanding = mine
                .iter()
                .filter(|r| r.requester.account == ctx.account_id && status(r, now) == "pending-acceptance")
                .count();
            if outstanding >= OUTSTANDING {
                return Err(Fail(Ec2Error::new(
                    "OutstandingVpcPeeringConnectionLimitExceeded",
                    format!("You have reached the limit of {OUTSTANDING} outstanding VPC peering connection requests."),
                )));
            }
            let peer_scope = Scope {
                account: &peer_account,
                region: &peer_region,
            };
            let same_scope = peer_account == ctx.account_id && peer_region == ctx.region;
            let peer = if kumo_model::regions::get(&peer_region).is_some() {
                tx.get::<VpcRecord>(peer_scope, &peer_vpc)?
            } else {
                None
            };
            if peer.is_none() && same_scope {
                return Err(Fail(crate::vpcs::not_found(&peer_vpc)));
            }
            let requester = PeeringSide {
                account: ctx.account_id.clone(),
                region: ctx.region.clone(),
                vpc_id: vpc.id.clone(),
                cidrs: cidrs(&vpc),
                allow_dns: false,
            };
            let failed = match &peer {
                None => true,
                Some(p) => overlap(&requester.cidrs, &cidrs(p)),
            };
            let rec = VpcPeeringRecord {
                id: new_id("pcx"),
                requester,
                accepter: PeeringSide {
                    account: peer_account.clone(),
                    region: peer_region.clone(),
                    vpc_id: peer_vpc.clone(),
                    cidrs: Vec::new(),
                    allow_dns: false,
                },
                status: if failed { "failed" } else { "pending-acceptance" }.into(),
                created_ms: now,
                expires_ms: now + PENDING_MS,
                ended_ms: failed.then_some(now),
                ended_by: None,
                local_vpc: vpc.id.clone(),
            };
            save(tx, &rec, true)?;
            tags::put_all(tx, s, &rec.id, "vpc-peering-connection", &tag_list)?;
            Ok::<_, Fail>((rec, tags::wire_pairs(&tag_list), true))
        })
        .map_err(|f| f.0)?;
    let code = (fresh && rec.status == "pending-acceptance").then_some("initiating-request");
    Ok(CreateVpcPeeringConnectionResult {
        vpc_peering_connection: Some(wire(&rec, &pairs, now, code)),
    })
}

/// After a connection became or stopped being active: the host's links follow, and both
/// VPCs' firewalls (what their routes send through the link).
fn relink(k: &Kumo, r: &VpcPeeringRecord) {
    push_links(k);
    for side in [&r.requester, &r.accepter] {
        let ctx = RequestContext {
            account_id: side.account.clone(),
            region: side.region.clone(),
            ..RequestContext::default()
        };
        k.sync_firewall(&ctx, Reach::Vpcs([side.vpc_id.clone()].into()));
    }
}

/// A VPC's IPv4 blocks changed: its active connections carry its blocks as they now are
/// (both copies), and the host's links route them.
pub fn blocks_changed(k: &Kumo, ctx: &RequestContext, vpc_id: &str) {
    if ctx.dry_run {
        return;
    }
    let s = scope(ctx);
    let changed = k.store.write(true, |tx| {
        let Some(vpc) = tx.get::<VpcRecord>(s, vpc_id)? else {
            return Ok::<_, Fail>(Vec::new());
        };
        let blocks = cidrs(&vpc);
        let all: Vec<VpcPeeringRecord> = tx.list(s, &Query::default())?;
        let mut out = Vec::new();
        for mut r in all
            .into_iter()
            .filter(|r| r.status == "active" && r.joins(s.account, s.region, vpc_id))
        {
            let here = |x: &PeeringSide| {
                x.account == s.account && x.region == s.region && x.vpc_id == vpc_id
            };
            for side in [&mut r.requester, &mut r.accepter] {
                if here(side) {
                    side.cidrs = blocks.clone();
                }
            }
            save(tx, &r, false)?;
            out.push(r);
        }
        Ok(out)
    });
    match changed {
        Ok(rs) => rs.iter().for_each(|r| relink(k, r)),
        Err(f) => {
            tracing::error!(vpc = vpc_id, error = %f.0, "cannot update the VPC's peering connections")
        }
    }
}

/// Gives the driver every active connection of every account (at start-up, and after each
/// change).
pub fn push_links(k: &Kumo) {
    if !k.compute.driver.runs_guests() {
        return;
    }
    // One push at a time, each reading the store after the last one applied: two changes
    // racing cannot leave the host with the older one's view.
    static PUSH: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = PUSH.lock().unwrap_or_else(|p| p.into_inner());
    let found = match k.store.scan_states("vpc-peering-connection", &["active"]) {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "cannot list the active VPC peering connections");
            return;
        }
    };
    let mut links: Vec<kumo_compute::PeeringLink> = Vec::new();
    for (account, region, id) in found {
        if links.iter().any(|l| l.id == id) {
            continue;
        }
        let s = Scope {
            account: &account,
            region: &region,
        };
        let rec = k
            .store
            .read(|v| Ok::<_, Fail>(v.get::<VpcPeeringRecord>(s, &id)?))
            .ok()
            .flatten();
        if let Some(r) = rec {
            links.push(kumo_compute::PeeringLink {
                id: r.id,
                a_vpc: r.requester.vpc_id,
                a_cidrs: r.requester.cidrs,
                b_vpc: r.accepter.vpc_id,
                b_cidrs: r.accepter.cidrs,
            });
        }
    }
    links.sort_by(|a, b| a.id.cmp(&b.id));
    if let Err(e) = k.compute.driver.set_peerings(&links) {
        tracing::error!(error = %crate::core::error::chain(&e), "cannot link the peered VPCs");
    }
}

pub fn accept(
    k: &Kumo,
    ctx: &RequestContext,
    input: AcceptVpcPeeringConnectionRequest,
) -> Result<AcceptVpcPeeringConnectionResult, Ec2Error> {
    let now = k.now_ms();
    let s = scope(ctx);
    let id = input.vpc_peering_connection_id.clone();
    let (rec, pairs) = k
        .store
        .write(!ctx.dry_run, |tx| {
            let mut r = get(tx, ctx, &id, now)?;
            let (_, accepter) = side(&r, ctx);
            if !accepter {
                return Err(Fail(Ec2Error::new(
                    "OperationNotPermitted",
                    format!("User ({}) cannot accept peering {id}", ctx.account_id),
                )));
            }
            let st = status(&r, now).to_string();
            if st != "pending-acceptance" {
                return Err(transition(&id, &st, "active"));
            }
            let vpc = crate::vpcs::get_vpc(tx, s, &r.accepter.vpc_id)?;
            let mine: Vec<VpcPeeringRecord> = tx.list(s, &Query::default())?;
            let pair = |x: &VpcPeeringRecord| {
                let a = (&x.requester.vpc_id, &x.accepter.vpc_id);
                a == (&r.requester.vpc_id, &r.accepter.vpc_id)
                    || a == (&r.accepter.vpc_id, &r.requester.vpc_id)
            };
            if let Some(other) = mine
                .iter()
                .find(|x| x.id != r.id && x.status == "active" && pair(x))
            {
                return Err(Fail(Ec2Error::new(
                    "VpcPeeringConnectionAlreadyExists",
                    format!(
                        "The vpc peering connection identified by {} already exists.",
                        other.id
                    ),
                )));
            }
            let active_here = |v: &str| {
                mine.iter()
                    .filter(|x| x.status == "active" && (x.requester.vpc_id == v || x.accepter.vpc_id == v))
                    .count()
            };
            let full = |v: &str| {
                Fail(Ec2Error::new(
                    "ActiveVpcPeeringConnectionPerVpcLimitExceeded",
                    format!(
                        "The VPC '{v}' has reached the limit of {ACTIVE_PER_VPC} active VPC peering connections."
                    ),
                ))
            };
            if active_here(&vpc.id) >= ACTIVE_PER_VPC {
                return Err(full(&vpc.id));
            }
            // The requester's VPC too, counted in its own scope.
            let req_scope = Scope {
                account: &r.requester.account,
                region: &r.requester.region,
            };
            let theirs: Vec<VpcPeeringRecord> = tx.list(req_scope, &Query::default())?;
            let req_vpc = &r.requester.vpc_id;
            let busy = theirs
                .iter()
                .filter(|x| x.status == "active" && x.joins(req_scope.account, req_scope.region, req_vpc))
                .count();
            if busy >= ACTIVE_PER_VPC {
                return Err(full(req_vpc));
            }
            r.accepter.cidrs = cidrs(&vpc);
            // The requester's VPC may have been given blocks since the request.
            let req_scope = Scope {
                account: &r.requester.account,
                region: &r.requester.region,
            };
            if let Some(v) = tx.get::<VpcRecord>(req_scope, &r.requester.vpc_id)? {
                r.requester.cidrs = cidrs(&v);
            }
            if overlap(&r.requester.cidrs, &r.accepter.cidrs) {
                r.status = "failed".into();
                r.ended_ms = Some(now);
            } else {
                r.status = "active".into();
            }
            save(tx, &r, false)?;
            Ok::<_, Fail>((r.clone(), tx.tags_of(s, &r.id)?))
        })
        .map_err(|f| f.0)?;
    if !ctx.dry_run && rec.status == "active" {
        relink(k, &rec);
    }
    let code = (rec.status == "active").then_some("provisioning");
    Ok(AcceptVpcPeeringConnectionResult {
        vpc_peering_connection: Some(wire(&rec, &pairs, now, code)),
    })
}

pub fn reject(
    k: &Kumo,
    ctx: &RequestContext,
    input: RejectVpcPeeringConnectionRequest,
) -> Result<RejectVpcPeeringConnectionResult, Ec2Error> {
    let now = k.now_ms();
    let id = input.vpc_peering_connection_id.clone();
    k.store
        .write(!ctx.dry_run, |tx| {
            let mut r = get(tx, ctx, &id, now)?;
            if !side(&r, ctx).1 {
                return Err(Fail(Ec2Error::new(
                    "OperationNotPermitted",
                    format!("User ({}) cannot reject peering {id}", ctx.account_id),
                )));
            }
            let st = status(&r, now).to_string();
            if st != "pending-acceptance" {
                return Err(transition(&id, &st, "rejected"));
            }
            r.status = "rejected".into();
            r.ended_ms = Some(now);
            r.ended_by = Some(ctx.account_id.clone());
            save(tx, &r, false)
        })
        .map_err(|f| f.0)?;
    Ok(RejectVpcPeeringConnectionResult {
        r#return: Some(true),
    })
}

pub fn delete(
    k: &Kumo,
    ctx: &RequestContext,
    input: DeleteVpcPeeringConnectionRequest,
) -> Result<DeleteVpcPeeringConnectionResult, Ec2Error> {
    let now = k.now_ms();
    let id = input.vpc_peering_connection_id.clone();
    let was = k
        .store
        .write(!ctx.dry_run, |tx| {
            let mut r = get(tx, ctx, &id, now)?;
            let st = status(&r, now).to_string();
            let (requester, _) = side(&r, ctx);
            match st.as_str() {
                "active" => {}
                "pending-acceptance" if requester => {}
                "pending-acceptance" => {
                    return Err(Fail(Ec2Error::new(
                        "OperationNotPermitted",
                        format!("User ({}) cannot delete peering {id}: a pending request is rejected by its accepter", ctx.account_id),
                    )))
                }
                _ => return Err(transition(&id, &st, "deleted")),
            }
            r.status = "deleted".into();
            r.ended_ms = Some(now);
            r.ended_by = Some(ctx.account_id.clone());
            save(tx, &r, false)?;
            Ok::<_, Fail>((st, r))
        })
        .map_err(|f| f.0)?;
    if !ctx.dry_run && was.0 == "active" {
        relink(k, &was.1);
    }
    Ok(DeleteVpcPeeringConnectionResult {
        r#return: Some(true),
    })
}

pub fn modify_options(
    k: &Kumo,
    ctx: &RequestContext,
    input: ModifyVpcPeeringConnectionOptionsRequest,
) -> Result<ModifyVpcPeeringConnectionOptionsResult, Ec2Error> {
    let now = k.now_ms();
    let id = input.vpc_peering_connection_id.clone();
    let r = k
        .store
        .write(!ctx.dry_run, |tx| {
            let mut r = get(tx, ctx, &id, now)?;
            if status(&r, now) != "active" {
                return Err(Fail(Ec2Error::new(
                    "OperationNotPermitted",
                    format!("Peering {id} is not active. Peering options can be added only to active peerings."),
                )));
            }
            let (requester, accepter) = side(&r, ctx);
            for (given, mine, s) in [
                (&input.requester_peering_connection_options, requester, &mut r.requester),
                (&input.accepter_peering_connection_options, accepter, &mut r.accepter),
            ] {
                let Some(o) = given else { continue };
                if !mine {
                    return Err(Fail(Ec2Error::new(
                        "OperationNotPermitted",
                        format!("User ({}) cannot modify the other side's options of peering {id}", ctx.account_id),
                    )));
                }
                if let Some(d) = o.allow_dns_resolution_from_remote_vpc {
                    s.allow_dns = d;
                }
            }
            save(tx, &r, false)?;
            Ok::<_, Fail>(r)
        })
        .map_err(|f| f.0)?;
    // The resolvers follow: the far side's names resolve privately, or no longer.
    if !ctx.dry_run {
        relink(k, &r);
    }
    let opts = |s: &PeeringSide| PeeringConnectionOptions {
        allow_dns_resolution_from_remote_vpc: Some(s.allow_dns),
        allow_egress_from_local_classic_link_to_remote_vpc: Some(false),
        allow_egress_from_local_vpc_to_remote_classic_link: Some(false),
    };
    Ok(ModifyVpcPeeringConnectionOptionsResult {
        requester_peering_connection_options: input
            .requester_peering_connection_options
            .is_some()
            .then(|| opts(&r.requester)),
        accepter_peering_connection_options: input
            .accepter_peering_connection_options
            .is_some()
            .then(|| opts(&r.accepter)),
    })
}

struct PcxView<'a>(&'a VpcPeeringConnection, &'a [(String, String)]);

impl Filterable<PcxF> for PcxView<'_> {
    fn field(&self, f: PcxF, out: &mut dyn FnMut(&str)) {
        let c = self.0;
        let mut opt = |v: Option<&String>| v.iter().for_each(|v| out(v));
        let req = c.requester_vpc_info.as_ref();
        let acc = c.accepter_vpc_info.as_ref();
        let blocks = |i: Option<&VpcPeeringConnectionVpcInfo>| -> Vec<String> {
            i.and_then(|i| i.cidr_block_set.as_ref())
                .map(|s| s.iter().filter_map(|b| b.cidr_block.clone()).collect())
                .unwrap_or_default()
        };
        match f {
            PcxF::VpcPeeringConnectionId => opt(c.vpc_peering_connection_id.as_ref()),
            PcxF::StatusCode => opt(c.status.as_ref().and_then(|s| s.code.as_ref())),
            PcxF::StatusMessage => opt(c.status.as_ref().and_then(|s| s.message.as_ref())),
            PcxF::ExpirationTime => {
                if let Some(t) = c.expiration_time {
                    out(&t.to_iso8601());
                }
            }
            PcxF::RequesterVpcInfoVpcId => opt(req.and_then(|i| i.vpc_id.as_ref())),
            PcxF::RequesterVpcInfoOwnerId => opt(req.and_then(|i| i.owner_id.as_ref())),
            PcxF::RequesterVpcInfoCidrBlock => blocks(req).iter().for_each(|b| out(b)),
            PcxF::AccepterVpcInfoVpcId => opt(acc.and_then(|i| i.vpc_id.as_ref())),
            PcxF::AccepterVpcInfoOwnerId => opt(acc.and_then(|i| i.owner_id.as_ref())),
            PcxF::AccepterVpcInfoCidrBlock => blocks(acc).iter().for_each(|b| out(b)),
        }
    }
    fn tags(&self) -> &[(String, String)] {
        self.1
    }
}

pub fn describe(
    k: &Kumo,
    ctx: &RequestContext,
    input: DescribeVpcPeeringConnectionsRequest,
) -> Result<DescribeVpcPeeringConnectionsResult, Ec2Error> {
    let fs = filters::compile::<PcxF>(input.filters, &[])?;
    let ids = input.vpc_peering_connection_ids.unwrap_or_default();
    let s = scope(ctx);
    let now = k.now_ms();
    let req = describe::Request {
        op: "DescribeVpcPeeringConnections",
        ids: &ids,
        not_found: &not_found,
        push: Push::filters(&fs, PcxF::VpcPeeringConnectionId, None),
        max_results: input.max_results,
        bounds: (5, 1000),
        next_token: input.next_token.as_deref(),
    };
    let (page, next) = k
        .store
        .read(|v| {
            for id in &ids {
                get(v, ctx, id, now)?;
            }
            describe::run(v, s, &req, |t: &Tagged<VpcPeeringRecord>| {
                visible(&t.item, &ctx.account_id, now)
                    && (fs.is_empty()
                        || fs.matches(&PcxView(&wire(&t.item, &t.tags, now, None), &t.tags)))
            })
        })
        .map_err(|f| f.0)?;
    Ok(DescribeVpcPeeringConnectionsResult {
        vpc_peering_connections: Some(
            page.iter()
                .map(|t| wire(&t.item, &t.tags, now, None))
                .collect(),
        ),
        next_token: next,
    })
}
