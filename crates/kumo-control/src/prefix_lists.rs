//! Customer-managed prefix lists: named sets of CIDR blocks of one address family, versioned
//! on every change of their entries, that security-group rules reference. A change to a list
//! reaches the firewall of every VPC whose groups reference it.
//!
//! AWS's answers this follows, each quoted in public reports: `InvalidPrefixListID.NotFound`
//! "The prefix list (pl-…) does not exist."; "Must specify a max size between 1 and 1000";
//! "The number of entries per request cannot exceeds limit (100)."; "You cannot modify the
//! entries and the maximum entries for the prefix list in the same request.";
//! `PrefixListVersionMismatch` "The prefix list has the incorrect version number."; "Request
//! cannot contain Cidr … in both AddPrefixListEntries and RemovePrefixListEntries";
//! `IncorrectState` while a change is in progress. A deletion or a resize that references
//! forbid is accepted and then fails in the list's state (`delete-failed`, `modify-failed`),
//! as AWS documents. The wording of the refusals no report quotes (an entry that exists or
//! does not, too many entries, an unknown version) is Kumo's, in AWS's style.

use crate::core::checks::Checks;
use crate::core::describe::{self, Push};
use crate::core::error::Fail;
use crate::core::filters;
use crate::core::idempotency;
use crate::core::ids::new_id;
use crate::core::paging;
use crate::records::net::{PrefixListEntry, PrefixListRecord, SecurityGroupRecord};
use crate::repo::prefix_list::{self as repo, not_found};
use crate::scope;
use crate::tags::{self, Tagged};
use crate::Kumo;
use kumo_ec2_wire::filters::DescribeManagedPrefixLists as F;
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_model::filter::Filterable;
use kumo_store::{Read, Scope};
use std::collections::BTreeSet;

/// AWS's range for a list's size.
const MAX_ENTRIES: std::ops::RangeInclusive<i32> = 1..=1000;
/// Entries one request may add or remove.
const PER_REQUEST: usize = 100;

fn invalid(msg: impl Into<String>) -> Ec2Error {
    Ec2Error::invalid_value(msg)
}

fn check_size(max: i32) -> Result<(), Ec2Error> {
    if MAX_ENTRIES.contains(&max) {
        Ok(())
    } else {
        Err(invalid("Must specify a max size between 1 and 1000"))
    }
}

fn check_per_request(n: usize) -> Result<(), Ec2Error> {
    if n > PER_REQUEST {
        return Err(invalid(
            "The number of entries per request cannot exceeds limit (100).",
        ));
    }
    Ok(())
}

/// The model's rule for a name: up to 255 characters, not starting with `com.amazonaws`
/// (AWS's own lists' names).
fn check_name(name: &str) -> Result<(), Ec2Error> {
    if name.is_empty() || name.chars().count() > 255 {
        return Err(invalid(format!(
            "Value ({name}) for parameter prefixListName is invalid. The name must be 1 to 255 characters long."
        )));
    }
    if name.starts_with("com.amazonaws") {
        return Err(invalid(format!(
            "Value ({name}) for parameter prefixListName is invalid. The name cannot start with com.amazonaws."
        )));
    }
    Ok(())
}

/// An entry's CIDR in the list's family, in canonical form (host bits cleared).
fn entry_cidr(family: &str, given: &str) -> Result<String, Ec2Error> {
    let parsed = match family {
        "IPv4" if !given.contains(':') => {
            crate::vpcs::parse_cidr(given).ok().map(|c| c.to_string())
        }
        "IPv6" => kumo_model::cidr::canonical_ipv6(given),
        _ => None,
    };
    parsed.ok_or_else(|| invalid(format!("CIDR block {given} is malformed")))
}

fn add_entries(
    family: &str,
    given: &[AddPrefixListEntry],
) -> Result<Vec<PrefixListEntry>, Ec2Error> {
    let mut out: Vec<PrefixListEntry> = Vec::with_capacity(given.len());
    for e in given {
        let cidr = entry_cidr(family, e.cidr.as_str())?;
        if out.iter().any(|x| x.cidr == cidr) {
            return Err(invalid(format!(
                "Request cannot contain duplicate Cidr {cidr}"
            )));
        }
        out.push(PrefixListEntry {
            cidr,
            description: e.description.clone(),
        });
    }
    Ok(out)
}

fn too_many(max: i32) -> Ec2Error {
    Ec2Error::new(
        "PrefixListMaxEntriesExceeded",
        format!("The prefix list cannot have more than its maximum number of entries ({max})."),
    )
}

/// A change is refused while the previous one is in progress.
fn check_idle(pl: &PrefixListRecord, now: i64, delay: i64) -> Result<(), Fail> {
    let state = pl.state(now, delay);
    if state.ends_with("-in-progress") {
        return Err(Fail(Ec2Error::new(
            "IncorrectState",
            format!(
                "The request cannot be completed while the prefix list ({}) is in the current state ({state})",
                pl.id
            ),
        )));
    }
    Ok(())
}

fn check_version(pl: &PrefixListRecord, given: Option<i64>) -> Result<(), Fail> {
    match given {
        Some(v) if v != pl.version() => Err(Fail(Ec2Error::new(
            "PrefixListVersionMismatch",
            "The prefix list has the incorrect version number.",
        ))),
        _ => Ok(()),
    }
}

/// The ids of up to ten groups, as the state message of a change references forbid.
fn referenced_by(groups: &[SecurityGroupRecord]) -> String {
    let ids: Vec<&str> = groups.iter().take(10).map(|g| g.id.as_str()).collect();
    format!(
        "The prefix list is referenced by the following resources: {}",
        ids.join(", ")
    )
}

fn arn(ctx: &RequestContext, id: &str) -> String {
    format!(
        "arn:aws:ec2:{}:{}:prefix-list/{id}",
        ctx.region, ctx.account_id
    )
}

fn wire(k: &Kumo, ctx: &RequestContext, t: &Tagged<PrefixListRecord>) -> ManagedPrefixList {
    let pl = &t.item;
    if repo::aws_managed_by_id(&ctx.region, &pl.id).is_some() {
        return ManagedPrefixList {
            prefix_list_id: Some(pl.id.clone()),
            address_family: Some(pl.family.clone()),
            state: Some("create-complete".into()),
            prefix_list_arn: Some(format!(
                "arn:aws:ec2:{}:aws:prefix-list/{}",
                ctx.region, pl.id
            )),
            prefix_list_name: Some(pl.name.clone()),
            max_entries: Some(pl.max_entries),
            version: Some(pl.version()),
            tags: Some(Vec::new()),
            owner_id: Some("AWS".into()),
            ..ManagedPrefixList::default()
        };
    }
    let state = pl.state(k.now_ms(), k.options.transition_ms);
    ManagedPrefixList {
        prefix_list_id: Some(pl.id.clone()),
        address_family: Some(pl.family.clone()),
        state_message: pl.failure.clone().filter(|_| state.ends_with("-failed")),
        state: Some(state),
        prefix_list_arn: Some(arn(ctx, &pl.id)),
        prefix_list_name: Some(pl.name.clone()),
        max_entries: Some(pl.max_entries),
        version: Some(pl.version()),
        tags: Some(tags::wire(&t.tags)),
        owner_id: Some(ctx.account_id.clone()),
        ..ManagedPrefixList::default()
    }
}

/// The VPCs of the groups that reference a list: their firewalls follow its entries.
pub fn vpcs_referencing(k: &Kumo, ctx: &RequestContext, id: &str) -> BTreeSet<String> {
    k.store
        .read(|v| repo::referencing(v, scope(ctx), id))
        .map(|gs| gs.into_iter().map(|g| g.vpc_id).collect())
        .unwrap_or_default()
}

/// CreateManagedPrefixList, before any lookup: the token, the family, the size, at most 100
/// entries, the name, each entry's CIDR in the family and none twice, no more entries than
/// the size, and the tags.
impl Checks for CreateManagedPrefixListRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        idempotency::check_token(self.client_token.as_deref())?;
        let family = self.address_family.as_str();
        if family != "IPv4" && family != "IPv6" {
            return Err(invalid(format!(
                "Value ({family}) for parameter addressFamily is invalid. Valid values are IPv4 and IPv6."
            )));
        }
        check_size(self.max_entries)?;
        let given = self.entries.as_deref().unwrap_or_default();
        check_per_request(given.len())?;
        check_name(&self.prefix_list_name)?;
        if add_entries(family, given)?.len() > self.max_entries as usize {
            return Err(too_many(self.max_entries));
        }
        tags::from_specifications(self.tag_specifications.clone(), "prefix-list").map(drop)
    }
}

pub fn create(
    k: &Kumo,
    ctx: &RequestContext,
    input: CreateManagedPrefixListRequest,
) -> Result<CreateManagedPrefixListResult, Ec2Error> {
    let digest = idempotency::digest(&input);
    let token = input.client_token.as_deref();
    let family = input.address_family.as_str();
    let entries = add_entries(family, input.entries.as_deref().unwrap_or_default())?;
    let tag_list = tags::from_specifications(input.tag_specifications.clone(), "prefix-list")?;
    let s = scope(ctx);
    let now = k.now_ms();
    let t = k
        .store
        .write(!ctx.dry_run, |tx| {
            if let Some(id) =
                idempotency::earlier(tx, s, "CreateManagedPrefixList", token, &digest)?
            {
                let item = repo::get(tx, s, &id)?;
                return Ok(Tagged {
                    tags: tx.tags_of(s, &id)?,
                    item,
                });
            }
            let pl = PrefixListRecord {
                id: new_id("pl"),
                name: input.prefix_list_name.clone(),
                family: family.to_string(),
                max_entries: input.max_entries,
                versions: vec![(1, entries.clone())],
                op: "create".into(),
                failure: None,
                changed_ms: now,
            };
            tx.insert(s, &pl)?;
            tags::put_all(tx, s, &pl.id, "prefix-list", &tag_list)?;
            idempotency::remember(tx, s, "CreateManagedPrefixList", token, &digest, &pl.id)?;
            Ok::<_, Fail>(Tagged {
                item: pl,
                tags: tags::as_stored(&tag_list),
            })
        })
        .map_err(|f| f.0)?;
    let mut out = wire(k, ctx, &t);
    // The answer reports the creation under way, as AWS's does.
    out.state = Some("create-in-progress".into());
    Ok(CreateManagedPrefixListResult {
        prefix_list: Some(out),
    })
}

struct View<'a>(&'a Tagged<PrefixListRecord>, &'a str);

impl Filterable<F> for View<'_> {
    fn field(&self, f: F, out: &mut dyn FnMut(&str)) {
        let pl = &self.0.item;
        match f {
            F::OwnerId => out(self.1),
            F::PrefixListId => out(&pl.id),
            F::PrefixListName => out(&pl.name),
        }
    }
    fn tags(&self) -> &[(String, String)] {
        &self.0.tags
    }
}

pub fn describe(
    k: &Kumo,
    ctx: &RequestContext,
    input: DescribeManagedPrefixListsRequest,
) -> Result<DescribeManagedPrefixListsResult, Ec2Error> {
    let fs = filters::compile::<F>(input.filters, &[])?;
    if input.max_results.is_some() {
        paging::max_results(input.max_results, 1, 100)?;
    }
    let all_ids = input.prefix_list_ids.unwrap_or_default();
    // The region's AWS-managed lists, owned by `AWS`, lead the first page; the account's
    // follow from the store, in pages of what is left of the size asked for.
    let (managed_ids, ids): (Vec<String>, Vec<String>) = all_ids
        .iter()
        .cloned()
        .partition(|id| repo::aws_managed_by_id(&ctx.region, id).is_some());
    let managed: Vec<Tagged<PrefixListRecord>> = if input.next_token.is_none() {
        repo::aws_managed_all(&ctx.region)
            .into_iter()
            .filter(|p| all_ids.is_empty() || managed_ids.contains(&p.id))
            .map(|item| Tagged {
                item,
                tags: Vec::new(),
            })
            .filter(|t| fs.matches(&View(t, "AWS")))
            .collect()
    } else {
        Vec::new()
    };
    let mut out: Vec<ManagedPrefixList> = managed.iter().map(|t| wire(k, ctx, t)).collect();
    let mut next = None;
    if all_ids.is_empty() || !ids.is_empty() {
        let req = describe::Request {
            op: "DescribeManagedPrefixLists",
            ids: &ids,
            not_found: &not_found,
            push: Push::filters(&fs, F::PrefixListId, None),
            max_results: input.max_results.map(|m| (m - out.len() as i32).max(1)),
            bounds: (1, 100),
            next_token: input.next_token.as_deref(),
        };
        let (page, n) = describe::read(&k.store, scope(ctx), &req, |t| {
            fs.matches(&View(t, &ctx.account_id))
        })?;
        out.extend(page.iter().map(|t| wire(k, ctx, t)));
        next = n;
    }
    Ok(DescribeManagedPrefixListsResult {
        prefix_lists: Some(out),
        next_token: next,
    })
}

pub fn entries(
    k: &Kumo,
    ctx: &RequestContext,
    input: GetManagedPrefixListEntriesRequest,
) -> Result<GetManagedPrefixListEntriesResult, Ec2Error> {
    const OP: &str = "GetManagedPrefixListEntries";
    let limit = paging::max_results(input.max_results, 1, 100)?;
    let after = paging::cursor(OP, input.next_token.as_deref())?;
    let pl = k
        .store
        .read(|v| repo::get_any(v, scope(ctx), &input.prefix_list_id))
        .map_err(|f| f.0)?;
    let version = input.target_version.unwrap_or(pl.version());
    let Some((_, list)) = pl.versions.iter().find(|(v, _)| *v == version) else {
        return Err(invalid(format!(
            "The version ({version}) of the prefix list ({}) does not exist.",
            pl.id
        )));
    };
    let rest: Vec<&PrefixListEntry> = match &after {
        Some(c) => list.iter().skip_while(|e| e.cidr != *c).skip(1).collect(),
        None => list.iter().collect(),
    };
    let (page, next) = paging::page(rest, limit, OP, |e| e.cidr.clone());
    Ok(GetManagedPrefixListEntriesResult {
        entries: Some(
            page.into_iter()
                .map(|e| kumo_ec2_wire::shapes::PrefixListEntry {
                    cidr: Some(e.cidr.clone()),
                    description: e.description.clone(),
                })
                .collect(),
        ),
        next_token: next,
    })
}

/// What a modification did, for the caller: the answer, and whether the entries changed
/// (the firewalls that reference the list follow).
pub struct Modified {
    pub answer: ManagedPrefixList,
    pub entries_changed: bool,
}

/// An entry's CIDR in whichever family it is written: the list's own family is checked once
/// the list is looked up.
fn any_family(given: &str) -> Result<String, Ec2Error> {
    entry_cidr("IPv4", given).or_else(|_| entry_cidr("IPv6", given))
}

/// ModifyManagedPrefixList, before any lookup: entries or a size, not both; the settings
/// Kumo does not take; at most 100 entries each way; the size; the name; each entry's CIDR,
/// none twice and none both added and removed. The list, its state, its version, its family
/// and its entries follow, then its size limit.
impl Checks for ModifyManagedPrefixListRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        let touches_entries = self.add_entries.as_ref().is_some_and(|l| !l.is_empty())
            || self.remove_entries.as_ref().is_some_and(|l| !l.is_empty());
        if self.max_entries.is_some() && touches_entries {
            return Err(Ec2Error::new(
                "InvalidParameterCombination",
                "You cannot modify the entries and the maximum entries for the prefix list in the same request.",
            ));
        }
        Ok(())
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        crate::core::error::refuse_settings(
            "ModifyManagedPrefixList",
            &[(
                "IpamPrefixListResolverSyncEnabled",
                self.ipam_prefix_list_resolver_sync_enabled.is_some(),
            )],
        )?;
        let add = self.add_entries.as_deref().unwrap_or_default();
        let remove = self.remove_entries.as_deref().unwrap_or_default();
        check_per_request(add.len())?;
        check_per_request(remove.len())?;
        if let Some(max) = self.max_entries {
            check_size(max)?;
        }
        if let Some(name) = &self.prefix_list_name {
            check_name(name)?;
        }
        let mut added: Vec<String> = Vec::with_capacity(add.len());
        for e in add {
            let cidr = any_family(&e.cidr)?;
            if added.contains(&cidr) {
                return Err(invalid(format!(
                    "Request cannot contain duplicate Cidr {cidr}"
                )));
            }
            added.push(cidr);
        }
        for r in remove {
            let cidr = any_family(&r.cidr)?;
            if added.contains(&cidr) {
                return Err(invalid(format!("Request cannot contain Cidr {cidr} in both AddPrefixListEntries and RemovePrefixListEntries")));
            }
        }
        Ok(())
    }
}

pub fn modify(
    k: &Kumo,
    ctx: &RequestContext,
    input: ModifyManagedPrefixListRequest,
) -> Result<Modified, Ec2Error> {
    let add = input.add_entries.clone().unwrap_or_default();
    let remove = input.remove_entries.clone().unwrap_or_default();
    let touches_entries = !add.is_empty() || !remove.is_empty();
    let s = scope(ctx);
    let (now, delay) = (k.now_ms(), k.options.transition_ms);
    k.store
        .write(!ctx.dry_run, |tx| {
            let mut pl = repo::get(tx, s, &input.prefix_list_id)?;
            check_idle(&pl, now, delay)?;
            check_version(&pl, input.current_version)?;
            let added = add_entries(&pl.family, &add).map_err(Fail)?;
            let mut removed = Vec::with_capacity(remove.len());
            for r in &remove {
                let cidr = entry_cidr(&pl.family, &r.cidr).map_err(Fail)?;
                if added.iter().any(|a| a.cidr == cidr) {
                    return Err(Fail(invalid(format!("Request cannot contain Cidr {cidr} in both AddPrefixListEntries and RemovePrefixListEntries"))));
                }
                removed.push(cidr);
            }
            let before = Tagged {
                tags: tx.tags_of(s, &pl.id)?,
                item: pl.clone(),
            };
            let mut list = pl.entries().to_vec();
            for cidr in &removed {
                let Some(i) = list.iter().position(|e| e.cidr == *cidr) else {
                    return Err(Fail(Ec2Error::new(
                        "InvalidPrefixListModification",
                        format!("The prefix list entry ({cidr}) does not exist."),
                    )));
                };
                list.remove(i);
            }
            for a in added {
                if list.iter().any(|e| e.cidr == a.cidr) {
                    return Err(Fail(Ec2Error::new(
                        "InvalidPrefixListModification",
                        format!("The prefix list entry ({}) already exists.", a.cidr),
                    )));
                }
                list.push(a);
            }
            if list.len() > pl.max_entries as usize {
                return Err(Fail(too_many(pl.max_entries)));
            }
            pl.op = "modify".into();
            pl.failure = None;
            pl.changed_ms = now;
            if let Some(name) = &input.prefix_list_name {
                pl.name = name.clone();
            }
            if touches_entries {
                let next = pl.version() + 1;
                pl.versions.push((next, list));
            }
            if let Some(max) = input.max_entries {
                if (max as usize) < pl.entries().len() {
                    return Err(Fail(too_many(max)));
                }
                // A larger list weighs more in every rule that references it: where a group
                // would pass its rule limit, the resize fails in the list's state, and the
                // previous size stays, as AWS documents.
                let groups = repo::referencing(tx, s, &pl.id)?;
                let over: Vec<SecurityGroupRecord> = groups
                    .into_iter()
                    .filter(|g| {
                        crate::security_groups::over_limit(tx, s, g, Some((&pl.id, max)))
                            .unwrap_or(true)
                    })
                    .collect();
                if over.is_empty() {
                    pl.max_entries = max;
                } else {
                    pl.failure = Some(referenced_by(&over));
                }
            }
            tx.update(s, &pl)?;
            // The answer shows the change under way, on the version it was asked of.
            let mut answer = wire(k, ctx, &Tagged { item: pl, tags: before.tags.clone() });
            answer.state = Some("modify-in-progress".into());
            answer.version = Some(before.item.version());
            answer.state_message = None;
            Ok(Modified {
                answer,
                entries_changed: touches_entries,
            })
        })
        .map_err(|f: Fail| f.0)
}

pub fn restore(
    k: &Kumo,
    ctx: &RequestContext,
    input: RestoreManagedPrefixListVersionRequest,
) -> Result<ManagedPrefixList, Ec2Error> {
    let s = scope(ctx);
    let (now, delay) = (k.now_ms(), k.options.transition_ms);
    k.store
        .write(!ctx.dry_run, |tx| {
            let mut pl = repo::get(tx, s, &input.prefix_list_id)?;
            check_idle(&pl, now, delay)?;
            check_version(&pl, Some(input.current_version))?;
            let Some((_, old)) = pl
                .versions
                .iter()
                .find(|(v, _)| *v == input.previous_version)
                .cloned()
            else {
                return Err(Fail(invalid(format!(
                    "The version ({}) of the prefix list ({}) does not exist.",
                    input.previous_version, pl.id
                ))));
            };
            if old.len() > pl.max_entries as usize {
                return Err(Fail(too_many(pl.max_entries)));
            }
            let current = pl.version();
            pl.versions.push((current + 1, old));
            pl.op = "restore".into();
            pl.failure = None;
            pl.changed_ms = now;
            tx.update(s, &pl)?;
            let t = Tagged {
                tags: tx.tags_of(s, &pl.id)?,
                item: pl,
            };
            let mut answer = wire(k, ctx, &t);
            answer.state = Some("restore-in-progress".into());
            answer.version = Some(current);
            Ok(answer)
        })
        .map_err(|f: Fail| f.0)
}

pub fn delete(
    k: &Kumo,
    ctx: &RequestContext,
    input: DeleteManagedPrefixListRequest,
) -> Result<DeleteManagedPrefixListResult, Ec2Error> {
    let s = scope(ctx);
    let (now, delay) = (k.now_ms(), k.options.transition_ms);
    let t = k
        .store
        .write(!ctx.dry_run, |tx| {
            let mut pl = repo::get(tx, s, &input.prefix_list_id)?;
            check_idle(&pl, now, delay)?;
            let t = Tagged {
                tags: tx.tags_of(s, &pl.id)?,
                item: pl.clone(),
            };
            let groups = repo::referencing(tx, s, &pl.id)?;
            if groups.is_empty() {
                tx.delete::<PrefixListRecord>(s, &pl.id)?;
            } else {
                // AWS accepts the deletion and then fails it in the list's state.
                pl.op = "delete".into();
                pl.failure = Some(referenced_by(&groups));
                pl.changed_ms = now;
                tx.update(s, &pl)?;
            }
            Ok(t)
        })
        .map_err(|f: Fail| f.0)?;
    let mut out = wire(k, ctx, &t);
    out.state = Some("delete-in-progress".into());
    out.state_message = None;
    Ok(DeleteManagedPrefixListResult {
        prefix_list: Some(out),
    })
}

pub fn associations(
    k: &Kumo,
    ctx: &RequestContext,
    input: GetManagedPrefixListAssociationsRequest,
) -> Result<GetManagedPrefixListAssociationsResult, Ec2Error> {
    const OP: &str = "GetManagedPrefixListAssociations";
    let limit = paging::max_results(input.max_results, 5, 255)?;
    let after = paging::cursor(OP, input.next_token.as_deref())?;
    let s: Scope = scope(ctx);
    let mut groups = k
        .store
        .read(|v| {
            repo::get_any(v, s, &input.prefix_list_id)?;
            repo::referencing(v, s, &input.prefix_list_id)
        })
        .map_err(|f| f.0)?;
    groups.sort_by(|a, b| a.id.cmp(&b.id));
    groups.retain(|g| after.as_ref().is_none_or(|c| g.id > *c));
    let (page, next) = paging::page(groups, limit, OP, |g| g.id.clone());
    Ok(GetManagedPrefixListAssociationsResult {
        prefix_list_associations: Some(
            page.into_iter()
                .map(|g| PrefixListAssociation {
                    resource_id: Some(g.id),
                    resource_owner: Some(ctx.account_id.clone()),
                })
                .collect(),
        ),
        next_token: next,
    })
}
