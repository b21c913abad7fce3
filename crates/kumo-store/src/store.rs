//! The store's facade: transactions and typed reads, whatever engine is beneath. Callers see
//! [`Store`], [`View`], [`Tx`] and [`Read`]; the engine stays behind [`crate::backend`].

use crate::backend::{Backend, ReadOps, WriteOps};
use crate::{Query, Record, Row, Scope, StoreError, TagQuery, TagRow};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;

/// The store. Cheap to share behind an `Arc`.
pub struct Store {
    backend: Box<dyn Backend>,
}

/// A read-only view: one consistent snapshot.
pub struct View<'a> {
    ops: &'a dyn ReadOps,
}

/// A write transaction.
pub struct Tx<'a> {
    ops: &'a dyn WriteOps,
}

impl Store {
    /// Opens (creating if needed) the embedded database in `dir` (SQLite, `kumo.db`).
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Ok(Store {
            backend: Box::new(crate::sqlite::Sqlite::open(dir)?),
        })
    }

    /// A private in-memory store (tests).
    pub fn memory() -> Result<Store, StoreError> {
        Ok(Store {
            backend: Box::new(crate::sqlite::Sqlite::memory()?),
        })
    }

    /// Runs `f` against a consistent snapshot.
    pub fn read<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&View) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut f = Some(f);
        let mut out = None;
        self.backend.read(&mut |ops| {
            if let Some(f) = f.take() {
                out = Some(f(&View { ops }));
            }
            Ok(())
        })?;
        out.unwrap_or_else(|| Err(StoreError::Unfinished.into()))
    }

    /// Runs `f` in one write transaction: it commits when `f` succeeds and `commit` is true,
    /// and rolls back otherwise (a DryRun checks everything and changes nothing).
    pub fn write<T, E: From<StoreError>>(
        &self,
        commit: bool,
        f: impl FnOnce(&Tx) -> Result<T, E>,
    ) -> Result<T, E> {
        self.write_then(commit, f, |_| {})
    }

    /// Like [`Store::write`], and runs `committed` after a successful commit while this
    /// process still holds the write lock: in-memory state derived from the store (caches) is
    /// updated before any other write can read it.
    pub fn write_then<T, E: From<StoreError>>(
        &self,
        commit: bool,
        f: impl FnOnce(&Tx) -> Result<T, E>,
        committed: impl FnOnce(&T),
    ) -> Result<T, E> {
        let out: RefCell<Option<Result<T, E>>> = RefCell::new(None);
        let mut f = Some(f);
        let mut committed = Some(committed);
        self.backend.write(
            &mut |ops| {
                let Some(f) = f.take() else { return Ok(false) };
                let r = f(&Tx { ops });
                let proceed = commit && r.is_ok();
                *out.borrow_mut() = Some(r);
                Ok(proceed)
            },
            &mut || {
                if let (Some(c), Some(Ok(v))) = (committed.take(), out.borrow().as_ref()) {
                    c(v);
                }
            },
        )?;
        out.into_inner()
            .unwrap_or_else(|| Err(StoreError::Unfinished.into()))
    }

    /// `(account, region, id)` of every row of a kind in one of `states`, across all scopes:
    /// for work at start-up (booting the instances that were running), never for requests.
    pub fn scan_states(
        &self,
        kind: &str,
        states: &[&str],
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        self.backend.scan_states(kind, states)
    }

    /// Deletes every resource of every account.
    pub fn reset(&self) -> Result<(), StoreError> {
        self.backend.reset()
    }
}

mod sealed {
    /// Only the store's own views and transactions read.
    pub trait Sealed {
        fn ops(&self) -> &dyn crate::backend::ReadOps;
    }
}

impl sealed::Sealed for View<'_> {
    fn ops(&self) -> &dyn ReadOps {
        self.ops
    }
}

impl sealed::Sealed for Tx<'_> {
    fn ops(&self) -> &dyn ReadOps {
        self.ops.reads()
    }
}

/// Reads, shared by views and transactions.
pub trait Read: sealed::Sealed {
    fn get_row(&self, scope: Scope, kind: &str, id: &str) -> Result<Option<Row>, StoreError> {
        self.ops().get_row(scope, kind, id)
    }

    fn get_row_by_name(
        &self,
        scope: Scope,
        kind: &str,
        name: &str,
    ) -> Result<Option<Row>, StoreError> {
        self.ops().get_row_by_name(scope, kind, name)
    }

    fn list_rows(&self, scope: Scope, kind: &str, q: &Query) -> Result<Vec<Row>, StoreError> {
        self.ops().list_rows(scope, kind, q)
    }

    /// A typed read by id.
    fn get<R: Record>(&self, scope: Scope, id: &str) -> Result<Option<R>, StoreError> {
        self.get_row(scope, R::KIND, id)?
            .map(|r| R::from_row(&r))
            .transpose()
    }

    /// A typed read by unique name.
    fn get_by_name<R: Record>(&self, scope: Scope, name: &str) -> Result<Option<R>, StoreError> {
        self.get_row_by_name(scope, R::KIND, name)?
            .map(|r| R::from_row(&r))
            .transpose()
    }

    /// A typed list.
    fn list<R: Record>(&self, scope: Scope, q: &Query) -> Result<Vec<R>, StoreError> {
        self.list_rows(scope, R::KIND, q)?
            .iter()
            .map(R::from_row)
            .collect()
    }

    /// The tags of one resource, in key order.
    fn tags_of(
        &self,
        scope: Scope,
        resource_id: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.ops().tags_of(scope, resource_id)
    }

    /// Tags matching a DescribeTags query, ordered by (resource id, key).
    fn list_tags(&self, scope: Scope, q: &TagQuery) -> Result<Vec<TagRow>, StoreError> {
        self.ops().list_tags(scope, q)
    }

    /// Every address held in a pool, with its owner, in address order.
    fn pool_addrs(&self, scope: Scope, pool: &str) -> Result<Vec<(u32, String)>, StoreError> {
        self.ops().pool_addrs(scope, pool)
    }

    /// How many rows of a kind sit in a zone, not counting those in the given states.
    fn count_in_zone(
        &self,
        scope: Scope,
        kind: &str,
        zone: &str,
        except_states: &[&str],
    ) -> Result<u64, StoreError> {
        self.ops().count_in_zone(scope, kind, zone, except_states)
    }

    /// The highest address held in a pool.
    fn max_addr(&self, scope: Scope, pool: &str) -> Result<Option<u32>, StoreError> {
        self.ops().max_addr(scope, pool)
    }

    /// The owners of an address in any pool.
    fn addr_owners(&self, scope: Scope, addr: u32) -> Result<Vec<String>, StoreError> {
        self.ops().addr_owners(scope, addr)
    }

    /// How many addresses each pool of the scope holds.
    fn pool_counts(&self, scope: Scope) -> Result<HashMap<String, u64>, StoreError> {
        self.ops().pool_counts(scope)
    }

    /// The owner of one address, if it is held.
    fn addr_owner(
        &self,
        scope: Scope,
        pool: &str,
        addr: u32,
    ) -> Result<Option<String>, StoreError> {
        self.ops().addr_owner(scope, pool, addr)
    }

    /// A stored idempotent response: (request digest, response).
    fn idempotent(
        &self,
        scope: Scope,
        operation: &str,
        token: &str,
    ) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        self.ops().idempotent(scope, operation, token)
    }
}

impl Read for View<'_> {}
impl Read for Tx<'_> {}

impl Tx<'_> {
    /// Inserts a new row; [`StoreError::Conflict`] when the id or the unique name is taken.
    pub fn insert_row(&self, scope: Scope, kind: &str, row: &Row) -> Result<(), StoreError> {
        self.ops.insert_row(scope, kind, row)
    }

    /// Replaces an existing row; returns whether it existed.
    pub fn update_row(&self, scope: Scope, kind: &str, row: &Row) -> Result<bool, StoreError> {
        self.ops.update_row(scope, kind, row)
    }

    /// Deletes a row and its tags; returns whether it existed.
    pub fn delete_row(&self, scope: Scope, kind: &str, id: &str) -> Result<bool, StoreError> {
        self.ops.delete_row(scope, kind, id)
    }

    pub fn insert<R: Record>(&self, scope: Scope, r: &R) -> Result<(), StoreError> {
        self.insert_row(scope, R::KIND, &r.to_row())
    }

    pub fn update<R: Record>(&self, scope: Scope, r: &R) -> Result<bool, StoreError> {
        self.update_row(scope, R::KIND, &r.to_row())
    }

    pub fn delete<R: Record>(&self, scope: Scope, id: &str) -> Result<bool, StoreError> {
        self.delete_row(scope, R::KIND, id)
    }

    /// Sets (adds or overwrites) one tag.
    pub fn put_tag(
        &self,
        scope: Scope,
        resource_id: &str,
        resource_type: &str,
        key: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        self.ops
            .put_tag(scope, resource_id, resource_type, key, value)
    }

    /// Removes one tag; with `value`, only when the tag has that value. Returns whether a tag
    /// went.
    pub fn delete_tag(
        &self,
        scope: Scope,
        resource_id: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.ops.delete_tag(scope, resource_id, key, value)
    }

    /// Holds addresses of a pool (a subnet) for `owner`. Every address is unique in its pool:
    /// a taken one answers [`StoreError::Conflict`], whatever raced it.
    pub fn claim_addrs(
        &self,
        scope: Scope,
        pool: &str,
        owner: &str,
        addrs: &[u32],
    ) -> Result<(), StoreError> {
        self.ops.claim_addrs(scope, pool, owner, addrs)
    }

    /// Gives addresses back to their pool.
    pub fn release_addrs(&self, scope: Scope, pool: &str, addrs: &[u32]) -> Result<(), StoreError> {
        self.ops.release_addrs(scope, pool, addrs)
    }

    /// Gives back every address `owner` holds, in any pool.
    pub fn release_owner(&self, scope: Scope, owner: &str) -> Result<usize, StoreError> {
        self.ops.release_owner(scope, owner)
    }

    /// Moves addresses to a new owner (reassignment).
    pub fn move_addrs(
        &self,
        scope: Scope,
        pool: &str,
        owner: &str,
        addrs: &[u32],
    ) -> Result<(), StoreError> {
        self.ops.move_addrs(scope, pool, owner, addrs)
    }

    /// Stores an idempotent response with the mutation it belongs to.
    pub fn put_idempotent(
        &self,
        scope: Scope,
        operation: &str,
        token: &str,
        digest: &str,
        response: &[u8],
    ) -> Result<(), StoreError> {
        self.ops
            .put_idempotent(scope, operation, token, digest, response)
    }
}
