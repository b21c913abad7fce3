//! The SQLite backend: WAL mode, one writer connection, a small pool of readers. No rusqlite
//! type leaves this module: it implements [`Backend`] and the operations behind it.

use crate::backend::{Backend, Body, ReadOps, WriteOps};
use crate::{Index, Query, Row, Scope, StoreError, TagQuery, TagRow};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Transaction};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// The schema version this build writes (`PRAGMA user_version`).
/// Version 2 added the `ips` table; version 3 made the zone index cover the state; version
/// 4 made `rows` a rowid table (see [`ROWS_TABLE`]).
const SCHEMA_VERSION: i64 = 4;

/// The documents. A rowid table with the key as its primary-key index, not a `WITHOUT
/// ROWID` table: documents run to a kilobyte and more, and a `WITHOUT ROWID` b-tree keyed
/// by random ids splits and moves whole documents on nearly every insert (SQLite advises it
/// only for rows under about a twentieth of a page). Here a new document is appended and
/// only the small key entries land at random places: a launch of 100 instances writes
/// about a third as many pages.
const ROWS_TABLE: &str = "
CREATE TABLE IF NOT EXISTS rows (
    account TEXT NOT NULL, region TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL,
    name TEXT, state TEXT, vpc TEXT, subnet TEXT, zone TEXT,
    version INTEGER NOT NULL, doc BLOB NOT NULL,
    PRIMARY KEY (account, region, kind, id)
);
";

/// Everything but the `rows` table, whose indexes come after it is in place.
const SCHEMA: &str = "
CREATE UNIQUE INDEX IF NOT EXISTS rows_name ON rows (account, region, kind, name) WHERE name IS NOT NULL;
CREATE INDEX IF NOT EXISTS rows_state ON rows (account, region, kind, state) WHERE state IS NOT NULL;
CREATE INDEX IF NOT EXISTS rows_vpc ON rows (account, region, kind, vpc) WHERE vpc IS NOT NULL;
CREATE INDEX IF NOT EXISTS rows_subnet ON rows (account, region, kind, subnet) WHERE subnet IS NOT NULL;
DROP INDEX IF EXISTS rows_zone;
CREATE INDEX IF NOT EXISTS rows_zone_state ON rows (account, region, kind, zone, state) WHERE zone IS NOT NULL;
CREATE TABLE IF NOT EXISTS tags (
    account TEXT NOT NULL, region TEXT NOT NULL, resource_id TEXT NOT NULL, key TEXT NOT NULL,
    value TEXT NOT NULL, resource_type TEXT NOT NULL,
    PRIMARY KEY (account, region, resource_id, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_key ON tags (account, region, key, value);
CREATE TABLE IF NOT EXISTS ips (
    account TEXT NOT NULL, region TEXT NOT NULL, pool TEXT NOT NULL, addr INTEGER NOT NULL,
    owner TEXT NOT NULL,
    PRIMARY KEY (account, region, pool, addr)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ips_owner ON ips (account, region, owner);
CREATE INDEX IF NOT EXISTS ips_addr ON ips (account, region, addr);
CREATE TABLE IF NOT EXISTS idempotency (
    account TEXT NOT NULL, region TEXT NOT NULL, operation TEXT NOT NULL, token TEXT NOT NULL,
    digest TEXT NOT NULL, response BLOB NOT NULL,
    PRIMARY KEY (account, region, operation, token)
) WITHOUT ROWID;
";

const ROW_COLUMNS: &str = "id, name, state, vpc, subnet, zone, version, doc";

/// The embedded engine.
pub(crate) struct Sqlite {
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    path: Option<std::path::PathBuf>,
    /// Wakes the checkpoint thread after a commit; it ends when this is dropped.
    checkpoints: Option<std::sync::mpsc::SyncSender<()>>,
}

/// Starts the thread that copies committed WAL pages into the database file, off the
/// request path. A commit only wakes it; bursts of commits share one checkpoint.
fn checkpointer(path: &Path) -> Result<std::sync::mpsc::SyncSender<()>, StoreError> {
    let conn = Connection::open(path)?;
    configure(&conn)?;
    let (wake, woken) = std::sync::mpsc::sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("kumo-checkpoint".into())
        .spawn(move || {
            while woken.recv().is_ok() {
                // PASSIVE never blocks writers or readers; what it can't copy now, a later
                // round copies.
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "WAL checkpoint failed; the writer will checkpoint instead");
                }
                // Let commits gather before the next round.
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        })
        .map_err(StoreError::Thread)?;
    Ok(wake)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave SQLite inconsistent (its transaction rolls
    // back when dropped), so a poisoned lock is still safe to use.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Up to 8 MiB of pages per connection, taken only as the data grows.
    conn.pragma_update(None, "cache_size", -8192)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

impl Sqlite {
    /// Opens (creating if needed) the database `kumo.db` in `dir`.
    pub(crate) fn open(dir: &Path) -> Result<Sqlite, StoreError> {
        let path = dir.join("kumo.db");
        let conn = Connection::open(&path)?;
        configure(&conn)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a commit is on disk before the client hears of it, so an acknowledged write
        // survives a crash of the process and of the machine.
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Checkpoints run on a thread of their own (see `checkpointer`), so a commit costs
        // its WAL write and fsync only. The writer checkpoints itself only if that thread
        // falls 64 MiB behind.
        conn.pragma_update(None, "wal_autocheckpoint", 16384)?;
        // A WAL that grew in a burst is cut back to this size once it is checkpointed.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        Self::migrate(&conn)?;
        let checkpoints = checkpointer(&path)?;
        Ok(Sqlite {
            writer: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
            path: Some(path),
            checkpoints: Some(checkpoints),
        })
    }

    /// A private in-memory database. Reads share the writer's connection.
    pub(crate) fn memory() -> Result<Sqlite, StoreError> {
        let conn = Connection::open_in_memory()?;
        configure(&conn)?;
        Self::migrate(&conn)?;
        Ok(Sqlite {
            writer: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
            path: None,
            checkpoints: None,
        })
    }

    fn migrate(conn: &Connection) -> Result<(), StoreError> {
        let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if v > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                found: v,
                supported: SCHEMA_VERSION,
            });
        }
        let tx = conn.unchecked_transaction()?;
        if (1..4).contains(&v) {
            // Versions 1 to 3 kept `rows` as a `WITHOUT ROWID` table: copy it into the
            // rowid table. Its indexes go with the old table and are made anew below.
            tx.execute_batch("ALTER TABLE rows RENAME TO rows_v3;")?;
            tx.execute_batch(ROWS_TABLE)?;
            tx.execute_batch(
                "INSERT INTO rows (account, region, kind, id, name, state, vpc, subnet, zone, version, doc)
                 SELECT account, region, kind, id, name, state, vpc, subnet, zone, version, doc FROM rows_v3;
                 DROP TABLE rows_v3;",
            )?;
        } else {
            tx.execute_batch(ROWS_TABLE)?;
        }
        tx.execute_batch(SCHEMA)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
        Ok(())
    }
}

impl Backend for Sqlite {
    fn read(
        &self,
        f: &mut dyn FnMut(&dyn ReadOps) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let Some(path) = &self.path else {
            let conn = lock(&self.writer);
            return f(&Conn(&conn));
        };
        let pooled = lock(&self.readers).pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open(path)?;
                configure(&c)?;
                c
            }
        };
        let out = {
            let tx = conn.unchecked_transaction()?;
            let out = f(&Conn(&tx));
            drop(tx);
            out
        };
        let mut pool = lock(&self.readers);
        if pool.len() < 8 {
            pool.push(conn);
        }
        out
    }

    fn write(&self, f: &mut Body, committed: &mut dyn FnMut()) -> Result<(), StoreError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let tx = SqliteTx { tx };
        if f(&tx)? {
            tx.tx.commit()?;
            if let Some(wake) = &self.checkpoints {
                // Full means a checkpoint is already due.
                let _ = wake.try_send(());
            }
            committed();
        }
        Ok(())
    }

    /// `(account, region, id)` of every row of a kind in one of `states`, across all scopes:
    /// for work at start-up (booting the instances that were running), never for requests.
    fn scan_states(
        &self,
        kind: &str,
        states: &[&str],
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        let conn = lock(&self.writer);
        let sql = format!(
            "SELECT account, region, id FROM rows WHERE kind=? AND state IN ({}) ORDER BY account, region, id",
            placeholders(states.len())
        );
        let mut args: Vec<&str> = vec![kind];
        args.extend(states.iter().copied());
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::from)
    }

    /// Deletes every resource of every account.
    fn reset(&self) -> Result<(), StoreError> {
        let conn = lock(&self.writer);
        conn.execute_batch(
            "DELETE FROM rows; DELETE FROM tags; DELETE FROM ips; DELETE FROM idempotency;",
        )?;
        Ok(())
    }
}

/// Reads on a connection (a snapshot or a transaction).
struct Conn<'c>(&'c Connection);

/// A write transaction.
struct SqliteTx<'c> {
    tx: Transaction<'c>,
}

fn row_from(r: &rusqlite::Row) -> rusqlite::Result<Row> {
    Ok(Row {
        id: r.get(0)?,
        index: Index {
            name: r.get(1)?,
            state: r.get(2)?,
            vpc: r.get(3)?,
            subnet: r.get(4)?,
            zone: r.get(5)?,
        },
        version: r.get(6)?,
        doc: r.get(7)?,
    })
}

fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 2);
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push('?');
    }
    s
}

impl ReadOps for Conn<'_> {
    fn get_row(&self, scope: Scope, kind: &str, id: &str) -> Result<Option<Row>, StoreError> {
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM rows WHERE account=?1 AND region=?2 AND kind=?3 AND id=?4"
        );
        Ok(self
            .0
            .prepare_cached(&sql)?
            .query_row(params![scope.account, scope.region, kind, id], row_from)
            .optional()?)
    }

    fn get_row_by_name(
        &self,
        scope: Scope,
        kind: &str,
        name: &str,
    ) -> Result<Option<Row>, StoreError> {
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM rows WHERE account=?1 AND region=?2 AND kind=?3 AND name=?4"
        );
        Ok(self
            .0
            .prepare_cached(&sql)?
            .query_row(params![scope.account, scope.region, kind, name], row_from)
            .optional()?)
    }

    fn list_rows(&self, scope: Scope, kind: &str, q: &Query) -> Result<Vec<Row>, StoreError> {
        let mut sql = format!(
            "SELECT {} FROM rows r WHERE r.account=? AND r.region=? AND r.kind=?",
            ROW_COLUMNS
                .split(", ")
                .map(|c| format!("r.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut args: Vec<&str> = vec![scope.account, scope.region, kind];
        if let Some(ids) = q.ids {
            sql.push_str(&format!(" AND r.id IN ({})", placeholders(ids.len())));
            args.extend(ids.iter().copied());
        }
        if let Some(names) = q.names {
            sql.push_str(&format!(" AND r.name IN ({})", placeholders(names.len())));
            args.extend(names.iter().copied());
        }
        if let Some(vpcs) = q.vpcs {
            sql.push_str(&format!(" AND r.vpc IN ({})", placeholders(vpcs.len())));
            args.extend(vpcs.iter().copied());
        }
        if let Some(subnets) = q.subnets {
            sql.push_str(&format!(
                " AND r.subnet IN ({})",
                placeholders(subnets.len())
            ));
            args.extend(subnets.iter().copied());
        }
        if let Some((key, values)) = q.tag {
            // Driven from the tag index: the rows carrying the tag, not every row checked.
            sql.push_str(&format!(
                " AND r.id IN (SELECT t.resource_id FROM tags t INDEXED BY tags_key WHERE t.account=? AND t.region=? AND t.key=? AND t.value IN ({}))",
                placeholders(values.len())
            ));
            args.push(scope.account);
            args.push(scope.region);
            args.push(key);
            args.extend(values.iter().copied());
        }
        if let Some(after) = q.after {
            sql.push_str(" AND r.id > ?");
            args.push(after);
        }
        sql.push_str(" ORDER BY r.id");
        let limit;
        if let Some(l) = q.limit {
            limit = l.to_string();
            sql.push_str(" LIMIT ?");
            args.push(&limit);
        }
        let mut stmt = self.0.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), row_from)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The tags of one resource, in key order.
    fn tags_of(
        &self,
        scope: Scope,
        resource_id: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self.0.prepare_cached(
            "SELECT key, value FROM tags WHERE account=?1 AND region=?2 AND resource_id=?3 ORDER BY key",
        )?;
        let rows = stmt.query_map(params![scope.account, scope.region, resource_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Tags matching a DescribeTags query, ordered by (resource id, key).
    fn list_tags(&self, scope: Scope, q: &TagQuery) -> Result<Vec<TagRow>, StoreError> {
        let mut sql = String::from(
            "SELECT resource_id, resource_type, key, value FROM tags WHERE account=? AND region=?",
        );
        let mut args: Vec<&str> = vec![scope.account, scope.region];
        if let Some(ids) = q.resource_ids {
            sql.push_str(&format!(
                " AND resource_id IN ({})",
                placeholders(ids.len())
            ));
            args.extend(ids.iter().copied());
        }
        if let Some(keys) = q.keys {
            sql.push_str(&format!(" AND key IN ({})", placeholders(keys.len())));
            args.extend(keys.iter().copied());
        }
        if let Some((id, key)) = q.after {
            sql.push_str(" AND (resource_id > ? OR (resource_id = ? AND key > ?))");
            args.extend([id, id, key]);
        }
        sql.push_str(" ORDER BY resource_id, key");
        let limit;
        if let Some(l) = q.limit {
            limit = l.to_string();
            sql.push_str(" LIMIT ?");
            args.push(&limit);
        }
        let mut stmt = self.0.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), |r| {
            Ok(TagRow {
                resource_id: r.get(0)?,
                resource_type: r.get(1)?,
                key: r.get(2)?,
                value: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every address held in a pool, with its owner, in address order.
    fn pool_addrs(&self, scope: Scope, pool: &str) -> Result<Vec<(u32, String)>, StoreError> {
        let mut stmt = self.0.prepare_cached(
            "SELECT addr, owner FROM ips WHERE account=?1 AND region=?2 AND pool=?3 ORDER BY addr",
        )?;
        let rows = stmt.query_map(params![scope.account, scope.region, pool], |r| {
            Ok((r.get::<_, i64>(0)? as u32, r.get(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many rows of a kind sit in a zone, not counting those in the given states.
    fn count_in_zone(
        &self,
        scope: Scope,
        kind: &str,
        zone: &str,
        except_states: &[&str],
    ) -> Result<u64, StoreError> {
        let sql = format!(
            "SELECT COUNT(*) FROM rows INDEXED BY rows_zone_state WHERE account=? AND region=? AND kind=? AND zone=? AND (state IS NULL OR state NOT IN ({}))",
            if except_states.is_empty() { "''".to_string() } else { placeholders(except_states.len()) }
        );
        let mut args: Vec<&str> = vec![scope.account, scope.region, kind, zone];
        args.extend(except_states.iter().copied());
        let n: i64 = self
            .0
            .prepare_cached(&sql)?
            .query_row(params_from_iter(args), |r| r.get(0))?;
        Ok(n as u64)
    }

    /// The highest address held in a pool.
    fn max_addr(&self, scope: Scope, pool: &str) -> Result<Option<u32>, StoreError> {
        let v: Option<i64> = self
            .0
            .prepare_cached("SELECT MAX(addr) FROM ips WHERE account=?1 AND region=?2 AND pool=?3")?
            .query_row(params![scope.account, scope.region, pool], |r| r.get(0))?;
        Ok(v.map(|a| a as u32))
    }

    /// The owners of an address in any pool.
    fn addr_owners(&self, scope: Scope, addr: u32) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.0.prepare_cached(
            "SELECT owner FROM ips INDEXED BY ips_addr WHERE account=?1 AND region=?2 AND addr=?3",
        )?;
        let rows = stmt.query_map(params![scope.account, scope.region, addr as i64], |r| {
            r.get(0)
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many addresses each pool of the scope holds.
    fn pool_counts(&self, scope: Scope) -> Result<HashMap<String, u64>, StoreError> {
        let mut stmt = self.0.prepare_cached(
            "SELECT pool, COUNT(*) FROM ips WHERE account=?1 AND region=?2 GROUP BY pool",
        )?;
        let rows = stmt.query_map(params![scope.account, scope.region], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The owner of one address, if it is held.
    fn addr_owner(
        &self,
        scope: Scope,
        pool: &str,
        addr: u32,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .0
            .prepare_cached(
                "SELECT owner FROM ips WHERE account=?1 AND region=?2 AND pool=?3 AND addr=?4",
            )?
            .query_row(
                params![scope.account, scope.region, pool, addr as i64],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// A stored idempotent response: (request digest, response).
    fn idempotent(
        &self,
        scope: Scope,
        operation: &str,
        token: &str,
    ) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        Ok(self
            .0
            .prepare_cached("SELECT digest, response FROM idempotency WHERE account=?1 AND region=?2 AND operation=?3 AND token=?4")?
            .query_row(params![scope.account, scope.region, operation, token], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?)
    }
}

/// A transaction reads what it has written.
macro_rules! delegate_reads {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $out:ty;)*) => {
        impl ReadOps for SqliteTx<'_> {
            $(fn $name(&self, $($arg: $ty),*) -> Result<$out, StoreError> {
                Conn(&self.tx).$name($($arg),*)
            })*
        }
    };
}

delegate_reads! {
    get_row(scope: Scope, kind: &str, id: &str) -> Option<Row>;
    get_row_by_name(scope: Scope, kind: &str, name: &str) -> Option<Row>;
    list_rows(scope: Scope, kind: &str, q: &Query) -> Vec<Row>;
    tags_of(scope: Scope, resource_id: &str) -> Vec<(String, String)>;
    list_tags(scope: Scope, q: &TagQuery) -> Vec<TagRow>;
    pool_addrs(scope: Scope, pool: &str) -> Vec<(u32, String)>;
    count_in_zone(scope: Scope, kind: &str, zone: &str, except_states: &[&str]) -> u64;
    max_addr(scope: Scope, pool: &str) -> Option<u32>;
    addr_owners(scope: Scope, addr: u32) -> Vec<String>;
    pool_counts(scope: Scope) -> HashMap<String, u64>;
    addr_owner(scope: Scope, pool: &str, addr: u32) -> Option<String>;
    idempotent(scope: Scope, operation: &str, token: &str) -> Option<(String, Vec<u8>)>;
}

impl WriteOps for SqliteTx<'_> {
    fn reads(&self) -> &dyn ReadOps {
        self
    }

    /// Inserts a new row; [`StoreError::Conflict`] when the id or the unique name is taken.
    fn insert_row(&self, scope: Scope, kind: &str, row: &Row) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "INSERT INTO rows (account, region, kind, id, name, state, vpc, subnet, zone, version, doc)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                scope.account,
                scope.region,
                kind,
                row.id,
                row.index.name,
                row.index.state,
                row.index.vpc,
                row.index.subnet,
                row.index.zone,
                row.version,
                row.doc
            ])?;
        Ok(())
    }

    /// Replaces an existing row; returns whether it existed.
    fn update_row(&self, scope: Scope, kind: &str, row: &Row) -> Result<bool, StoreError> {
        let n = self
            .tx
            .prepare_cached(
                "UPDATE rows SET name=?5, state=?6, vpc=?7, subnet=?8, zone=?9, version=?10, doc=?11
                 WHERE account=?1 AND region=?2 AND kind=?3 AND id=?4",
            )?
            .execute(params![
                scope.account,
                scope.region,
                kind,
                row.id,
                row.index.name,
                row.index.state,
                row.index.vpc,
                row.index.subnet,
                row.index.zone,
                row.version,
                row.doc
            ])?;
        Ok(n == 1)
    }

    /// Deletes a row and its tags; returns whether it existed.
    fn delete_row(&self, scope: Scope, kind: &str, id: &str) -> Result<bool, StoreError> {
        let n = self
            .tx
            .prepare_cached(
                "DELETE FROM rows WHERE account=?1 AND region=?2 AND kind=?3 AND id=?4",
            )?
            .execute(params![scope.account, scope.region, kind, id])?;
        self.tx
            .prepare_cached("DELETE FROM tags WHERE account=?1 AND region=?2 AND resource_id=?3")?
            .execute(params![scope.account, scope.region, id])?;
        Ok(n == 1)
    }

    /// Sets (adds or overwrites) one tag.
    fn put_tag(
        &self,
        scope: Scope,
        resource_id: &str,
        resource_type: &str,
        key: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "INSERT INTO tags (account, region, resource_id, key, value, resource_type) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (account, region, resource_id, key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![scope.account, scope.region, resource_id, key, value, resource_type])?;
        Ok(())
    }

    /// Removes one tag; with `value`, only when the tag has that value. Returns whether a tag
    /// went.
    fn delete_tag(
        &self,
        scope: Scope,
        resource_id: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<bool, StoreError> {
        let n = match value {
            Some(v) => self
                .tx
                .prepare_cached("DELETE FROM tags WHERE account=?1 AND region=?2 AND resource_id=?3 AND key=?4 AND value=?5")?
                .execute(params![scope.account, scope.region, resource_id, key, v])?,
            None => self
                .tx
                .prepare_cached("DELETE FROM tags WHERE account=?1 AND region=?2 AND resource_id=?3 AND key=?4")?
                .execute(params![scope.account, scope.region, resource_id, key])?,
        };
        Ok(n > 0)
    }

    /// Holds addresses of a pool (a subnet) for `owner`. The primary key makes every address
    /// unique in its pool: a taken one answers [`StoreError::Conflict`], whatever raced it.
    fn claim_addrs(
        &self,
        scope: Scope,
        pool: &str,
        owner: &str,
        addrs: &[u32],
    ) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO ips (account, region, pool, addr, owner) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for a in addrs {
            stmt.execute(params![scope.account, scope.region, pool, *a as i64, owner])?;
        }
        Ok(())
    }

    /// Gives addresses back to their pool.
    fn release_addrs(&self, scope: Scope, pool: &str, addrs: &[u32]) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "DELETE FROM ips WHERE account=?1 AND region=?2 AND pool=?3 AND addr=?4",
        )?;
        for a in addrs {
            stmt.execute(params![scope.account, scope.region, pool, *a as i64])?;
        }
        Ok(())
    }

    /// Gives back every address `owner` holds, in any pool.
    fn release_owner(&self, scope: Scope, owner: &str) -> Result<usize, StoreError> {
        Ok(self
            .tx
            .prepare_cached("DELETE FROM ips WHERE account=?1 AND region=?2 AND owner=?3")?
            .execute(params![scope.account, scope.region, owner])?)
    }

    /// Moves addresses to a new owner (reassignment).
    fn move_addrs(
        &self,
        scope: Scope,
        pool: &str,
        owner: &str,
        addrs: &[u32],
    ) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "UPDATE ips SET owner=?5 WHERE account=?1 AND region=?2 AND pool=?3 AND addr=?4",
        )?;
        for a in addrs {
            stmt.execute(params![scope.account, scope.region, pool, *a as i64, owner])?;
        }
        Ok(())
    }

    /// Stores an idempotent response with the mutation it belongs to.
    fn put_idempotent(
        &self,
        scope: Scope,
        operation: &str,
        token: &str,
        digest: &str,
        response: &[u8],
    ) -> Result<(), StoreError> {
        self.tx
            .prepare_cached("INSERT INTO idempotency (account, region, operation, token, digest, response) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
            .execute(params![scope.account, scope.region, operation, token, digest, response])?;
        Ok(())
    }
}
