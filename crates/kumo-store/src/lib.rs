//! Persistence for Kumo: typed tables of resource documents, tags and idempotency records,
//! behind transactions. The embedded backend is SQLite in WAL mode; the schema keeps the
//! invariants (unique names, unique tags) so they hold across concurrent requests.
//!
//! Nothing here knows EC2's rules: the control plane decides what a row means.
//!
//! The API is a facade ([`Store`], [`View`], [`Tx`], [`Read`]) over a private backend trait
//! (`backend`), in the manner of Garage's `db` crate: an engine implements the object-safe
//! operations once, and no engine's types (no rusqlite) are visible above this crate. The
//! conformance suite is written against the facade and runs for each backend.

mod backend;
mod error;
mod record;
mod sqlite;
mod store;

#[cfg(test)]
mod conformance;

pub use error::StoreError;
pub use record::{Index, Record};
pub use store::{Read, Store, Tx, View};

/// Resources are owned by an account in a region; one scope never sees another's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'a> {
    pub account: &'a str,
    pub region: &'a str,
}

/// A stored resource: its id, the index columns filters use, and its encoded document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Row {
    pub id: String,
    pub index: Index,
    /// The document's format version (see [`Record::VERSION`]).
    pub version: u32,
    pub doc: Vec<u8>,
}

/// A list query: rows of one kind, optionally restricted, in id order, from after a cursor.
#[derive(Debug, Clone, Default)]
pub struct Query<'a> {
    pub ids: Option<&'a [&'a str]>,
    pub names: Option<&'a [&'a str]>,
    /// Only rows whose index column `vpc` is one of these.
    pub vpcs: Option<&'a [&'a str]>,
    /// Only rows whose index column `subnet` is one of these.
    pub subnets: Option<&'a [&'a str]>,
    /// Only rows carrying tag `key` with one of these values.
    pub tag: Option<(&'a str, &'a [&'a str])>,
    /// Only rows whose id sorts after this one (pagination).
    pub after: Option<&'a str>,
    pub limit: Option<usize>,
}

/// One tag of one resource, as DescribeTags lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRow {
    pub resource_id: String,
    pub resource_type: String,
    pub key: String,
    pub value: String,
}

/// A DescribeTags query; each restriction is optional.
#[derive(Debug, Clone, Default)]
pub struct TagQuery<'a> {
    pub resource_ids: Option<&'a [&'a str]>,
    pub keys: Option<&'a [&'a str]>,
    /// (resource_id, key) after which to continue.
    pub after: Option<(&'a str, &'a str)>,
    pub limit: Option<usize>,
}
