//! The SQLite backend: WAL mode, one writer connection, a small pool of readers. No rusqlite
//! type leaves this module: it implements [`Backend`] and the operations behind it.

use crate::backend::{Backend, Body, ReadOps, WriteOps};
use crate::{Index, Query, Row, Scope, StoreError, TagQuery, TagRow};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Transaction};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, RwLock};

/// The schema version this build writes (`PRAGMA user_version`).
/// Version 2 added the `ips` table; version 3 made the zone index cover the state; version
/// 4 made `rows` a rowid table (see [`ROWS_TABLE`]); version 5 keys every table by an
/// integer space instead of its (account, region, kind) text, and keeps the zone counts in
/// a table of their own (see [`SCHEMA`]).
const SCHEMA_VERSION: i64 = 5;

/// The documents. A rowid table with the key as its primary-key index, not a `WITHOUT
/// ROWID` table: documents run to a kilobyte and more, and a `WITHOUT ROWID` b-tree keyed
/// by random ids splits and moves whole documents on nearly every insert (SQLite advises it
/// only for rows under about a twentieth of a page). Here a new document is appended and
/// only the small key entries land at random places: a launch of 100 instances writes
/// about a third as many pages.
const ROWS_TABLE: &str = "
CREATE TABLE IF NOT EXISTS rows (
    space INTEGER NOT NULL, id TEXT NOT NULL,
    name TEXT, state TEXT, vpc TEXT, subnet TEXT, zone TEXT,
    version INTEGER NOT NULL, doc BLOB NOT NULL,
    PRIMARY KEY (space, id)
);
";

/// Everything but the `rows` table, whose indexes come after it is in place.
///
/// A space is one (account, region, kind) — kind `''` for the scope's own tags, addresses
/// and idempotency tokens — numbered once in `spaces`. Every key starts with that small
/// integer instead of three texts that are the same for every row of a scope: an index
/// entry is a third the size, a key comparison stops at its first column, and a launch of
/// 100 instances writes about 30 % fewer b-tree bytes.
///
/// `zone_counts` holds how many rows of each space sit in each zone and state, so a capacity
/// check reads a handful of counters instead of counting the zone's rows. A transaction
/// gathers its changes to them in memory (it reads them back with the table's) and writes
/// them once, as it commits: a launch of 100 instances changes one counter once.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS spaces (
    n INTEGER PRIMARY KEY, account TEXT NOT NULL, region TEXT NOT NULL, kind TEXT NOT NULL,
    UNIQUE (account, region, kind)
);
CREATE UNIQUE INDEX IF NOT EXISTS rows_name ON rows (space, name) WHERE name IS NOT NULL;
CREATE INDEX IF NOT EXISTS rows_state ON rows (space, state) WHERE state IS NOT NULL;
CREATE INDEX IF NOT EXISTS rows_vpc ON rows (space, vpc) WHERE vpc IS NOT NULL;
CREATE INDEX IF NOT EXISTS rows_subnet ON rows (space, subnet) WHERE subnet IS NOT NULL;
CREATE TABLE IF NOT EXISTS zone_counts (
    space INTEGER NOT NULL, zone TEXT NOT NULL, state TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (space, zone, state)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tags (
    space INTEGER NOT NULL, resource_id TEXT NOT NULL, key TEXT NOT NULL,
    value TEXT NOT NULL, resource_type TEXT NOT NULL,
    PRIMARY KEY (space, resource_id, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_key ON tags (space, key, value);
CREATE TABLE IF NOT EXISTS ips (
    space INTEGER NOT NULL, pool TEXT NOT NULL, addr INTEGER NOT NULL, owner TEXT NOT NULL,
    PRIMARY KEY (space, pool, addr)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ips_owner ON ips (space, owner);
CREATE INDEX IF NOT EXISTS ips_addr ON ips (space, addr);
CREATE TABLE IF NOT EXISTS idempotency (
    space INTEGER NOT NULL, operation TEXT NOT NULL, token TEXT NOT NULL,
    digest TEXT NOT NULL, response BLOB NOT NULL,
    PRIMARY KEY (space, operation, token)
) WITHOUT ROWID;
";

/// Versions 1 to 4 keyed every table by (account, region[, kind]) text. Their indexes are
/// dropped (the new ones take the same names), each table there is renamed aside, the new
/// schema made, and each old table's data copied over through `spaces`; then the zones are
/// counted.
const DROP_V4_INDEXES: &str = "
DROP INDEX IF EXISTS rows_name; DROP INDEX IF EXISTS rows_state; DROP INDEX IF EXISTS rows_vpc;
DROP INDEX IF EXISTS rows_subnet; DROP INDEX IF EXISTS rows_zone;
DROP INDEX IF EXISTS rows_zone_state; DROP INDEX IF EXISTS tags_key;
DROP INDEX IF EXISTS ips_owner; DROP INDEX IF EXISTS ips_addr;
";

/// The zone counters of rows copied in.
const COUNT_ZONES: &str = "
INSERT INTO zone_counts (space, zone, state, n)
    SELECT space, zone, coalesce(state, ''), COUNT(*) FROM rows WHERE zone IS NOT NULL
    GROUP BY space, zone, coalesce(state, '');
";

/// Each table of versions 1 to 4 (`ips` came with version 2), with how its rows reach the
/// new one from `old_<table>`.
const COPY_V4: [(&str, &str); 4] = [
    (
        "rows",
        "INSERT OR IGNORE INTO spaces (account, region, kind) SELECT DISTINCT account, region, kind FROM old_rows;
         INSERT INTO rows (space, id, name, state, vpc, subnet, zone, version, doc)
            SELECT s.n, o.id, o.name, o.state, o.vpc, o.subnet, o.zone, o.version, o.doc
            FROM old_rows o JOIN spaces s ON s.account = o.account AND s.region = o.region AND s.kind = o.kind;",
    ),
    (
        "tags",
        "INSERT OR IGNORE INTO spaces (account, region, kind) SELECT DISTINCT account, region, '' FROM old_tags;
         INSERT INTO tags (space, resource_id, key, value, resource_type)
            SELECT s.n, o.resource_id, o.key, o.value, o.resource_type
            FROM old_tags o JOIN spaces s ON s.account = o.account AND s.region = o.region AND s.kind = '';",
    ),
    (
        "ips",
        "INSERT OR IGNORE INTO spaces (account, region, kind) SELECT DISTINCT account, region, '' FROM old_ips;
         INSERT INTO ips (space, pool, addr, owner)
            SELECT s.n, o.pool, o.addr, o.owner
            FROM old_ips o JOIN spaces s ON s.account = o.account AND s.region = o.region AND s.kind = '';",
    ),
    (
        "idempotency",
        "INSERT OR IGNORE INTO spaces (account, region, kind) SELECT DISTINCT account, region, '' FROM old_idempotency;
         INSERT INTO idempotency (space, operation, token, digest, response)
            SELECT s.n, o.operation, o.token, o.digest, o.response
            FROM old_idempotency o JOIN spaces s ON s.account = o.account AND s.region = o.region AND s.kind = '';",
    ),
];

const ROW_COLUMNS: &str = "id, name, state, vpc, subnet, zone, version, doc";

/// The embedded engine.
pub(crate) struct Sqlite {
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    path: Option<std::path::PathBuf>,
    /// Wakes the checkpoint thread after a commit; it ends when this is dropped.
    checkpoints: Option<std::sync::mpsc::SyncSender<()>>,
    spaces: Spaces,
}

/// The committed rows of `spaces`, as far as they have been asked for. A space's number
/// never changes once committed, so every connection may share them.
#[derive(Default)]
struct Spaces(RwLock<HashMap<String, i64>>);

/// The key of a space in [`Spaces`].
fn space_key(scope: Scope, kind: &str) -> String {
    let mut k = String::with_capacity(scope.account.len() + scope.region.len() + kind.len() + 2);
    k.push_str(scope.account);
    k.push('\u{1f}');
    k.push_str(scope.region);
    k.push('\u{1f}');
    k.push_str(kind);
    k
}

impl Spaces {
    fn get(&self, key: &str) -> Option<i64> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied()
    }

    fn put(&self, key: String, n: i64) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, n);
    }
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

fn has_table(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get(0),
    )?;
    Ok(n > 0)
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
            spaces: Spaces::default(),
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
            spaces: Spaces::default(),
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
        if (1..SCHEMA_VERSION).contains(&v) {
            // Versions 1 to 4: the same columns under text keys (1 to 3 with `rows` as a
            // `WITHOUT ROWID` table). Set aside, made anew, copied over.
            tx.execute_batch(DROP_V4_INDEXES)?;
            let mut present = Vec::new();
            for (table, copy) in COPY_V4 {
                if has_table(&tx, table)? {
                    tx.execute_batch(&format!("ALTER TABLE {table} RENAME TO old_{table};"))?;
                    present.push((table, copy));
                }
            }
            tx.execute_batch(ROWS_TABLE)?;
            tx.execute_batch(SCHEMA)?;
            for (table, copy) in present {
                tx.execute_batch(copy)?;
                tx.execute_batch(&format!("DROP TABLE old_{table};"))?;
            }
            tx.execute_batch(COUNT_ZONES)?;
        } else {
            tx.execute_batch(ROWS_TABLE)?;
            tx.execute_batch(SCHEMA)?;
        }
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
            return f(&Conn::new(&conn, &self.spaces));
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
            let out = f(&Conn::new(&tx, &self.spaces));
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
        let tx = SqliteTx {
            tx,
            spaces: &self.spaces,
            made: RefCell::new(Vec::new()),
            zones: RefCell::new(HashMap::new()),
        };
        if f(&tx)? {
            tx.write_zone_counts()?;
            let made = tx.made.take();
            tx.tx.commit()?;
            // Spaces this transaction numbered are shared only now that they exist.
            for (key, n) in made {
                self.spaces.put(key, n);
            }
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
            "SELECT s.account, s.region, r.id FROM rows r JOIN spaces s ON s.n = r.space
             WHERE s.kind = ? AND r.state IN ({}) ORDER BY s.account, s.region, r.id",
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

    /// Deletes every resource of every account. The spaces stay: they are only numbers.
    fn reset(&self) -> Result<(), StoreError> {
        let conn = lock(&self.writer);
        conn.execute_batch(
            "DELETE FROM rows; DELETE FROM zone_counts; DELETE FROM tags; DELETE FROM ips;
             DELETE FROM idempotency;",
        )?;
        Ok(())
    }
}

/// Reads on a connection (a snapshot or a transaction).
struct Conn<'c> {
    conn: &'c Connection,
    spaces: &'c Spaces,
    /// The spaces a write transaction has numbered and not yet committed.
    made: Option<&'c RefCell<Vec<(String, i64)>>>,
    /// A write transaction's zone counter changes, not yet written.
    zones: Option<&'c RefCell<ZoneDeltas>>,
}

impl<'c> Conn<'c> {
    fn new(conn: &'c Connection, spaces: &'c Spaces) -> Conn<'c> {
        Conn {
            conn,
            spaces,
            made: None,
            zones: None,
        }
    }

    /// The number of a space, if it has one: nothing was ever stored in a space without.
    fn space(&self, scope: Scope, kind: &str) -> Result<Option<i64>, StoreError> {
        let key = space_key(scope, kind);
        if let Some(n) = self.spaces.get(&key) {
            return Ok(Some(n));
        }
        if let Some(made) = self.made {
            if let Some((_, n)) = made.borrow().iter().find(|(k, _)| *k == key) {
                return Ok(Some(*n));
            }
        }
        let n: Option<i64> = self
            .conn
            .prepare_cached("SELECT n FROM spaces WHERE account=?1 AND region=?2 AND kind=?3")?
            .query_row(params![scope.account, scope.region, kind], |r| r.get(0))
            .optional()?;
        // Not made by this transaction (that was looked at above), so committed.
        if let Some(n) = n {
            self.spaces.put(key, n);
        }
        Ok(n)
    }
}

/// A write transaction.
struct SqliteTx<'c> {
    tx: Transaction<'c>,
    spaces: &'c Spaces,
    made: RefCell<Vec<(String, i64)>>,
    zones: RefCell<ZoneDeltas>,
}

/// A transaction's changes to the zone counters, by (space, zone, state), not yet written.
type ZoneDeltas = HashMap<(i64, String, String), i64>;

impl SqliteTx<'_> {
    fn conn(&self) -> Conn<'_> {
        Conn {
            conn: &self.tx,
            spaces: self.spaces,
            made: Some(&self.made),
            zones: Some(&self.zones),
        }
    }

    /// The number of a space, numbered now if it has none yet.
    fn space_made(&self, scope: Scope, kind: &str) -> Result<i64, StoreError> {
        if let Some(n) = self.conn().space(scope, kind)? {
            return Ok(n);
        }
        self.tx
            .prepare_cached("INSERT INTO spaces (account, region, kind) VALUES (?1, ?2, ?3)")?
            .execute(params![scope.account, scope.region, kind])?;
        let n = self.tx.last_insert_rowid();
        self.made.borrow_mut().push((space_key(scope, kind), n));
        Ok(n)
    }

    /// The scope's own space: tags, addresses and idempotency tokens.
    fn scope_made(&self, scope: Scope) -> Result<i64, StoreError> {
        self.space_made(scope, "")
    }

    /// Counts a row in (`by` 1) or out of (`by` -1) its zone and state.
    fn count_zone(&self, space: i64, zone: Option<String>, state: Option<String>, by: i64) {
        if let Some(zone) = zone {
            *self
                .zones
                .borrow_mut()
                .entry((space, zone, state.unwrap_or_default()))
                .or_default() += by;
        }
    }

    /// Writes the zone counter changes; called once, just before the commit.
    fn write_zone_counts(&self) -> Result<(), StoreError> {
        let zones = self.zones.take();
        if zones.values().all(|n| *n == 0) {
            return Ok(());
        }
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO zone_counts (space, zone, state, n) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (space, zone, state) DO UPDATE SET n = n + excluded.n",
        )?;
        for ((space, zone, state), n) in zones {
            if n != 0 {
                stmt.execute(params![space, zone, state, n])?;
            }
        }
        Ok(())
    }
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

/// Answers `$empty` from a read whose space has no number: nothing was ever stored there.
macro_rules! space_or {
    ($self:ident, $scope:expr, $kind:expr, $empty:expr) => {
        match $self.space($scope, $kind)? {
            Some(n) => n,
            None => return Ok($empty),
        }
    };
}

impl ReadOps for Conn<'_> {
    fn get_row(&self, scope: Scope, kind: &str, id: &str) -> Result<Option<Row>, StoreError> {
        let space = space_or!(self, scope, kind, None);
        let sql = format!("SELECT {ROW_COLUMNS} FROM rows WHERE space=?1 AND id=?2");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row(params![space, id], row_from)
            .optional()?)
    }

    fn get_row_by_name(
        &self,
        scope: Scope,
        kind: &str,
        name: &str,
    ) -> Result<Option<Row>, StoreError> {
        let space = space_or!(self, scope, kind, None);
        let sql = format!("SELECT {ROW_COLUMNS} FROM rows WHERE space=?1 AND name=?2");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row(params![space, name], row_from)
            .optional()?)
    }

    fn list_rows(&self, scope: Scope, kind: &str, q: &Query) -> Result<Vec<Row>, StoreError> {
        let space = space_or!(self, scope, kind, Vec::new());
        let mut sql = format!(
            "SELECT {} FROM rows r WHERE r.space=?",
            ROW_COLUMNS
                .split(", ")
                .map(|c| format!("r.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut args: Vec<Value> = vec![Value::Integer(space)];
        let text = |xs: &[&str]| {
            xs.iter()
                .map(|x| Value::Text(x.to_string()))
                .collect::<Vec<_>>()
        };
        if let Some(ids) = q.ids {
            sql.push_str(&format!(" AND r.id IN ({})", placeholders(ids.len())));
            args.extend(text(ids));
        }
        if let Some(names) = q.names {
            sql.push_str(&format!(" AND r.name IN ({})", placeholders(names.len())));
            args.extend(text(names));
        }
        if let Some(vpcs) = q.vpcs {
            sql.push_str(&format!(" AND r.vpc IN ({})", placeholders(vpcs.len())));
            args.extend(text(vpcs));
        }
        if let Some(subnets) = q.subnets {
            sql.push_str(&format!(
                " AND r.subnet IN ({})",
                placeholders(subnets.len())
            ));
            args.extend(text(subnets));
        }
        if let Some((key, values)) = q.tag {
            let Some(tags) = self.space(scope, "")? else {
                return Ok(Vec::new());
            };
            // Driven from the tag index: the rows carrying the tag, not every row checked.
            sql.push_str(&format!(
                " AND r.id IN (SELECT t.resource_id FROM tags t INDEXED BY tags_key WHERE t.space=? AND t.key=? AND t.value IN ({}))",
                placeholders(values.len())
            ));
            args.push(Value::Integer(tags));
            args.push(Value::Text(key.to_string()));
            args.extend(text(values));
        }
        if let Some(after) = q.after {
            sql.push_str(" AND r.id > ?");
            args.push(Value::Text(after.to_string()));
        }
        sql.push_str(" ORDER BY r.id");
        if let Some(l) = q.limit {
            sql.push_str(" LIMIT ?");
            args.push(Value::Integer(i64::try_from(l).unwrap_or(i64::MAX)));
        }
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), row_from)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The tags of one resource, in key order.
    fn tags_of(
        &self,
        scope: Scope,
        resource_id: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let space = space_or!(self, scope, "", Vec::new());
        let mut stmt = self.conn.prepare_cached(
            "SELECT key, value FROM tags WHERE space=?1 AND resource_id=?2 ORDER BY key",
        )?;
        let rows = stmt.query_map(params![space, resource_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Tags matching a DescribeTags query, ordered by (resource id, key).
    fn list_tags(&self, scope: Scope, q: &TagQuery) -> Result<Vec<TagRow>, StoreError> {
        let space = space_or!(self, scope, "", Vec::new());
        let mut sql =
            String::from("SELECT resource_id, resource_type, key, value FROM tags WHERE space=?");
        let mut args: Vec<Value> = vec![Value::Integer(space)];
        let text = |xs: &[&str]| {
            xs.iter()
                .map(|x| Value::Text(x.to_string()))
                .collect::<Vec<_>>()
        };
        if let Some(ids) = q.resource_ids {
            sql.push_str(&format!(
                " AND resource_id IN ({})",
                placeholders(ids.len())
            ));
            args.extend(text(ids));
        }
        if let Some(keys) = q.keys {
            sql.push_str(&format!(" AND key IN ({})", placeholders(keys.len())));
            args.extend(text(keys));
        }
        if let Some((id, key)) = q.after {
            sql.push_str(" AND (resource_id > ? OR (resource_id = ? AND key > ?))");
            args.extend(text(&[id, id, key]));
        }
        sql.push_str(" ORDER BY resource_id, key");
        if let Some(l) = q.limit {
            sql.push_str(" LIMIT ?");
            args.push(Value::Integer(i64::try_from(l).unwrap_or(i64::MAX)));
        }
        let mut stmt = self.conn.prepare_cached(&sql)?;
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
        let space = space_or!(self, scope, "", Vec::new());
        let mut stmt = self.conn.prepare_cached(
            "SELECT addr, owner FROM ips WHERE space=?1 AND pool=?2 ORDER BY addr",
        )?;
        let rows = stmt.query_map(params![space, pool], |r| {
            Ok((r.get::<_, i64>(0)? as u32, r.get(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many rows of a kind sit in a zone, not counting those in the given states: a sum
    /// over the zone's counters, one per state, whatever the number of rows (and, in a write
    /// transaction, its own changes to them).
    fn count_in_zone(
        &self,
        scope: Scope,
        kind: &str,
        zone: &str,
        except_states: &[&str],
    ) -> Result<u64, StoreError> {
        let space = space_or!(self, scope, kind, 0);
        let mut stmt = self
            .conn
            .prepare_cached("SELECT state, n FROM zone_counts WHERE space=?1 AND zone=?2")?;
        let rows = stmt.query_map(params![space, zone], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        let mut by_state: HashMap<String, i64> = rows.collect::<Result<_, _>>()?;
        if let Some(zones) = self.zones {
            for ((sp, z, state), n) in zones.borrow().iter() {
                if *sp == space && z == zone {
                    *by_state.entry(state.clone()).or_default() += n;
                }
            }
        }
        // A row with no state is counted under '', and always counts.
        Ok(by_state
            .iter()
            .filter(|(state, _)| state.is_empty() || !except_states.contains(&state.as_str()))
            .map(|(_, n)| (*n).max(0) as u64)
            .sum())
    }

    /// The highest address held in a pool.
    fn max_addr(&self, scope: Scope, pool: &str) -> Result<Option<u32>, StoreError> {
        let space = space_or!(self, scope, "", None);
        let v: Option<i64> = self
            .conn
            .prepare_cached("SELECT MAX(addr) FROM ips WHERE space=?1 AND pool=?2")?
            .query_row(params![space, pool], |r| r.get(0))?;
        Ok(v.map(|a| a as u32))
    }

    /// The owners of an address in any pool.
    fn addr_owners(&self, scope: Scope, addr: u32) -> Result<Vec<String>, StoreError> {
        let space = space_or!(self, scope, "", Vec::new());
        let mut stmt = self.conn.prepare_cached(
            "SELECT owner FROM ips INDEXED BY ips_addr WHERE space=?1 AND addr=?2",
        )?;
        let rows = stmt.query_map(params![space, addr as i64], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many addresses each pool of the scope holds.
    fn pool_counts(&self, scope: Scope) -> Result<HashMap<String, u64>, StoreError> {
        let space = space_or!(self, scope, "", HashMap::new());
        let mut stmt = self
            .conn
            .prepare_cached("SELECT pool, COUNT(*) FROM ips WHERE space=?1 GROUP BY pool")?;
        let rows = stmt.query_map(params![space], |r| {
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
        let space = space_or!(self, scope, "", None);
        Ok(self
            .conn
            .prepare_cached("SELECT owner FROM ips WHERE space=?1 AND pool=?2 AND addr=?3")?
            .query_row(params![space, pool, addr as i64], |r| r.get(0))
            .optional()?)
    }

    /// A stored idempotent response: (request digest, response).
    fn idempotent(
        &self,
        scope: Scope,
        operation: &str,
        token: &str,
    ) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let space = space_or!(self, scope, "", None);
        Ok(self
            .conn
            .prepare_cached(
                "SELECT digest, response FROM idempotency WHERE space=?1 AND operation=?2 AND token=?3",
            )?
            .query_row(params![space, operation, token], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }
}

/// A transaction reads what it has written.
macro_rules! delegate_reads {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $out:ty;)*) => {
        impl ReadOps for SqliteTx<'_> {
            $(fn $name(&self, $($arg: $ty),*) -> Result<$out, StoreError> {
                self.conn().$name($($arg),*)
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
        let space = self.space_made(scope, kind)?;
        self.tx
            .prepare_cached(
                "INSERT INTO rows (space, id, name, state, vpc, subnet, zone, version, doc)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                space,
                row.id,
                row.index.name,
                row.index.state,
                row.index.vpc,
                row.index.subnet,
                row.index.zone,
                row.version,
                row.doc
            ])?;
        self.count_zone(space, row.index.zone.clone(), row.index.state.clone(), 1);
        Ok(())
    }

    /// Replaces an existing row; returns whether it existed.
    fn update_row(&self, scope: Scope, kind: &str, row: &Row) -> Result<bool, StoreError> {
        let Some(space) = self.conn().space(scope, kind)? else {
            return Ok(false);
        };
        // What the row counted for before: its zone and state.
        let Some((zone, state)) = self
            .tx
            .prepare_cached("SELECT zone, state FROM rows WHERE space=?1 AND id=?2")?
            .query_row(params![space, row.id], |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?,
                    r.get::<_, Option<String>>(1)?,
                ))
            })
            .optional()?
        else {
            return Ok(false);
        };
        let n = self
            .tx
            .prepare_cached(
                "UPDATE rows SET name=?3, state=?4, vpc=?5, subnet=?6, zone=?7, version=?8, doc=?9
                 WHERE space=?1 AND id=?2",
            )?
            .execute(params![
                space,
                row.id,
                row.index.name,
                row.index.state,
                row.index.vpc,
                row.index.subnet,
                row.index.zone,
                row.version,
                row.doc
            ])?;
        if (&zone, &state) != (&row.index.zone, &row.index.state) {
            self.count_zone(space, zone, state, -1);
            self.count_zone(space, row.index.zone.clone(), row.index.state.clone(), 1);
        }
        Ok(n == 1)
    }

    /// Deletes a row and its tags; returns whether it existed.
    fn delete_row(&self, scope: Scope, kind: &str, id: &str) -> Result<bool, StoreError> {
        let Some(space) = self.conn().space(scope, kind)? else {
            return Ok(false);
        };
        let gone = self
            .tx
            .prepare_cached("DELETE FROM rows WHERE space=?1 AND id=?2 RETURNING zone, state")?
            .query_row(params![space, id], |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?,
                    r.get::<_, Option<String>>(1)?,
                ))
            })
            .optional()?;
        let n = usize::from(gone.is_some());
        if let Some((zone, state)) = gone {
            self.count_zone(space, zone, state, -1);
        }
        if let Some(tags) = self.conn().space(scope, "")? {
            self.tx
                .prepare_cached("DELETE FROM tags WHERE space=?1 AND resource_id=?2")?
                .execute(params![tags, id])?;
        }
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
        let space = self.scope_made(scope)?;
        self.tx
            .prepare_cached(
                "INSERT INTO tags (space, resource_id, key, value, resource_type) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (space, resource_id, key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![space, resource_id, key, value, resource_type])?;
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
        let Some(space) = self.conn().space(scope, "")? else {
            return Ok(false);
        };
        let n = match value {
            Some(v) => self
                .tx
                .prepare_cached(
                    "DELETE FROM tags WHERE space=?1 AND resource_id=?2 AND key=?3 AND value=?4",
                )?
                .execute(params![space, resource_id, key, v])?,
            None => self
                .tx
                .prepare_cached("DELETE FROM tags WHERE space=?1 AND resource_id=?2 AND key=?3")?
                .execute(params![space, resource_id, key])?,
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
        let space = self.scope_made(scope)?;
        let mut stmt = self
            .tx
            .prepare_cached("INSERT INTO ips (space, pool, addr, owner) VALUES (?1, ?2, ?3, ?4)")?;
        for a in addrs {
            stmt.execute(params![space, pool, *a as i64, owner])?;
        }
        Ok(())
    }

    /// Gives addresses back to their pool.
    fn release_addrs(&self, scope: Scope, pool: &str, addrs: &[u32]) -> Result<(), StoreError> {
        let Some(space) = self.conn().space(scope, "")? else {
            return Ok(());
        };
        let mut stmt = self
            .tx
            .prepare_cached("DELETE FROM ips WHERE space=?1 AND pool=?2 AND addr=?3")?;
        for a in addrs {
            stmt.execute(params![space, pool, *a as i64])?;
        }
        Ok(())
    }

    /// Gives back every address `owner` holds, in any pool.
    fn release_owner(&self, scope: Scope, owner: &str) -> Result<usize, StoreError> {
        let Some(space) = self.conn().space(scope, "")? else {
            return Ok(0);
        };
        Ok(self
            .tx
            .prepare_cached("DELETE FROM ips WHERE space=?1 AND owner=?2")?
            .execute(params![space, owner])?)
    }

    /// Moves addresses to a new owner (reassignment).
    fn move_addrs(
        &self,
        scope: Scope,
        pool: &str,
        owner: &str,
        addrs: &[u32],
    ) -> Result<(), StoreError> {
        let Some(space) = self.conn().space(scope, "")? else {
            return Ok(());
        };
        let mut stmt = self
            .tx
            .prepare_cached("UPDATE ips SET owner=?4 WHERE space=?1 AND pool=?2 AND addr=?3")?;
        for a in addrs {
            stmt.execute(params![space, pool, *a as i64, owner])?;
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
        let space = self.scope_made(scope)?;
        self.tx
            .prepare_cached(
                "INSERT INTO idempotency (space, operation, token, digest, response) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![space, operation, token, digest, response])?;
        Ok(())
    }
}
