//! The seam between the store's facade and its engines, in the manner of Garage's `db`
//! crate: object-safe operations on rows, tags, addresses and idempotency records, which a
//! backend implements once. Nothing of an engine's own types crosses it; the facade
//! ([`crate::Store`]) adds the typed helpers on top.

use crate::{Query, Row, Scope, StoreError, TagQuery, TagRow};
use std::collections::HashMap;

/// Reads in one consistent snapshot.
pub trait ReadOps {
    fn get_row(&self, scope: Scope, kind: &str, id: &str) -> Result<Option<Row>, StoreError>;
    fn get_row_by_name(
        &self,
        scope: Scope,
        kind: &str,
        name: &str,
    ) -> Result<Option<Row>, StoreError>;
    fn list_rows(&self, scope: Scope, kind: &str, q: &Query) -> Result<Vec<Row>, StoreError>;
    fn tags_of(&self, scope: Scope, resource_id: &str)
        -> Result<Vec<(String, String)>, StoreError>;
    fn list_tags(&self, scope: Scope, q: &TagQuery) -> Result<Vec<TagRow>, StoreError>;
    fn pool_addrs(&self, scope: Scope, pool: &str) -> Result<Vec<(u32, String)>, StoreError>;
    fn count_in_zone(
        &self,
        scope: Scope,
        kind: &str,
        zone: &str,
        except_states: &[&str],
    ) -> Result<u64, StoreError>;
    fn max_addr(&self, scope: Scope, pool: &str) -> Result<Option<u32>, StoreError>;
    fn addr_owners(&self, scope: Scope, addr: u32) -> Result<Vec<String>, StoreError>;
    fn pool_counts(&self, scope: Scope) -> Result<HashMap<String, u64>, StoreError>;
    fn addr_owner(&self, scope: Scope, pool: &str, addr: u32)
        -> Result<Option<String>, StoreError>;
    fn idempotent(
        &self,
        scope: Scope,
        operation: &str,
        token: &str,
    ) -> Result<Option<(String, Vec<u8>)>, StoreError>;
}

/// Writes inside one transaction, which also reads what it has written.
pub trait WriteOps: ReadOps {
    /// Reads through the same transaction.
    fn reads(&self) -> &dyn ReadOps;
    fn insert_row(&self, scope: Scope, kind: &str, row: &Row) -> Result<(), StoreError>;
    fn update_row(&self, scope: Scope, kind: &str, row: &Row) -> Result<bool, StoreError>;
    fn delete_row(&self, scope: Scope, kind: &str, id: &str) -> Result<bool, StoreError>;
    fn put_tag(
        &self,
        scope: Scope,
        resource_id: &str,
        resource_type: &str,
        key: &str,
        value: &str,
    ) -> Result<(), StoreError>;
    fn delete_tag(
        &self,
        scope: Scope,
        resource_id: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<bool, StoreError>;
    fn claim_addrs(
        &self,
        scope: Scope,
        pool: &str,
        owner: &str,
        addrs: &[u32],
    ) -> Result<(), StoreError>;
    fn release_addrs(&self, scope: Scope, pool: &str, addrs: &[u32]) -> Result<(), StoreError>;
    fn release_owner(&self, scope: Scope, owner: &str) -> Result<usize, StoreError>;
    fn move_addrs(
        &self,
        scope: Scope,
        pool: &str,
        owner: &str,
        addrs: &[u32],
    ) -> Result<(), StoreError>;
    fn put_idempotent(
        &self,
        scope: Scope,
        operation: &str,
        token: &str,
        digest: &str,
        response: &[u8],
    ) -> Result<(), StoreError>;
}

/// What a transaction's body decided: whether to commit.
pub type Body<'f> = dyn FnMut(&dyn WriteOps) -> Result<bool, StoreError> + 'f;

/// An engine.
pub trait Backend: Send + Sync {
    /// Runs `f` against a consistent snapshot.
    fn read(
        &self,
        f: &mut dyn FnMut(&dyn ReadOps) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    /// Runs `f` in one write transaction, serialised with every other; commits when it
    /// answers `Ok(true)`, then runs `committed` before the next write may begin.
    fn write(&self, f: &mut Body, committed: &mut dyn FnMut()) -> Result<(), StoreError>;
    /// `(account, region, id)` of every row of a kind in one of `states`, across all scopes.
    fn scan_states(
        &self,
        kind: &str,
        states: &[&str],
    ) -> Result<Vec<(String, String, String)>, StoreError>;
    /// Deletes every row of every scope.
    fn reset(&self) -> Result<(), StoreError>;
}
