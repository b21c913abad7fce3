//! The shape every Describe call shares: explicit ids that must exist, filters, and item-counted
//! pages with an opaque token. Index-friendly restrictions are pushed down to the store; the
//! rest is checked in memory.

use crate::core::error::Fail;
use crate::core::paging;
use crate::core::tagged::{self as tags, Tagged};
use kumo_ec2_wire::Ec2Error;
use kumo_store::{Query, Read, Record, Scope, Store};

/// One Describe request, in the terms the helper needs.
pub struct Request<'a> {
    /// The operation (scopes the pagination token).
    pub op: &'a str,
    /// Ids the caller named; each must exist.
    pub ids: &'a [String],
    /// Builds the error for a named id that does not exist.
    pub not_found: &'a dyn Fn(&str) -> Ec2Error,
    /// Restrictions the store can answer from its indexes.
    pub push: Push<'a>,
    pub max_results: Option<i32>,
    pub bounds: (i32, i32),
    pub next_token: Option<&'a str>,
}

/// Index restrictions, each optional.
#[derive(Default)]
pub struct Push<'a> {
    pub ids: Option<Vec<&'a str>>,
    pub vpcs: Option<Vec<&'a str>>,
    pub subnets: Option<Vec<&'a str>>,
    pub tag: Option<(&'a str, Vec<&'a str>)>,
}

impl<'a> Push<'a> {
    /// The usual push-down of a Describe call: exact values of its id filter, of its VPC
    /// filter when it has one, and of the first `tag:K` filter.
    pub fn filters<F: Copy + PartialEq>(
        fs: &'a kumo_model::filter::Filters<F>,
        id: F,
        vpc: Option<F>,
    ) -> Push<'a> {
        Push {
            ids: fs.exact(id),
            vpcs: vpc.and_then(|v| fs.exact(v)),
            subnets: None,
            tag: fs.exact_tag(),
        }
    }
}

/// Intersects two optional id sets.
pub fn both<'a>(a: Option<Vec<&'a str>>, b: Option<Vec<&'a str>>) -> Option<Vec<&'a str>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.into_iter().filter(|x| b.contains(x)).collect()),
        (a, b) => a.or(b),
    }
}

const BATCH: usize = 500;

/// Runs a Describe: returns the matching page (tags attached) and the next token.
pub fn run<R: Record, V: Read>(
    v: &V,
    s: Scope,
    req: &Request,
    matches: impl Fn(&Tagged<R>) -> bool,
) -> Result<(Vec<Tagged<R>>, Option<String>), Fail> {
    let limit = paging::max_results(req.max_results, req.bounds.0, req.bounds.1)?;
    let cursor = paging::cursor(req.op, req.next_token)?;
    if !req.ids.is_empty() {
        let named: Vec<&str> = req.ids.iter().map(String::as_str).collect();
        let found: Vec<R> = v.list(
            s,
            &Query {
                ids: Some(&named),
                ..Query::default()
            },
        )?;
        if let Some(missing) = req
            .ids
            .iter()
            .find(|i| !found.iter().any(|r| r.id() == i.as_str()))
        {
            return Err(Fail((req.not_found)(missing)));
        }
    }
    let named: Option<Vec<&str>> =
        (!req.ids.is_empty()).then(|| req.ids.iter().map(String::as_str).collect());
    let ids = both(named, req.push.ids.clone());
    let want = limit.map(|l| l + 1).unwrap_or(usize::MAX);
    let mut out: Vec<Tagged<R>> = Vec::new();
    let mut after = cursor;
    // The first batch is just what a page needs, for when every row matches; later
    // batches grow as the filters turn rows away.
    let mut batch = want.clamp(1, BATCH);
    loop {
        let q = Query {
            ids: ids.as_deref(),
            vpcs: req.push.vpcs.as_deref(),
            subnets: req.push.subnets.as_deref(),
            tag: req.push.tag.as_ref().map(|(k, vals)| (*k, vals.as_slice())),
            after: after.as_deref(),
            limit: Some(batch),
            ..Query::default()
        };
        let rows: Vec<R> = v.list(s, &q)?;
        let n = rows.len();
        let last = rows.last().map(|r| r.id().to_string());
        for t in tags::attach(v, s, rows)? {
            if matches(&t) {
                out.push(t);
                if out.len() >= want {
                    break;
                }
            }
        }
        if out.len() >= want || n < batch {
            break;
        }
        after = last;
        batch = (batch * 2).min(BATCH);
    }
    Ok(paging::page(out, limit, req.op, |t| {
        t.item.id().to_string()
    }))
}

/// Runs a Describe in a read snapshot of `store`.
pub fn read<R: Record>(
    store: &Store,
    s: Scope,
    req: &Request,
    matches: impl Fn(&Tagged<R>) -> bool,
) -> Result<(Vec<Tagged<R>>, Option<String>), Ec2Error> {
    store.read(|v| run(v, s, req, &matches)).map_err(|f| f.0)
}
