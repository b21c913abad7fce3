//! The store's contract, written once and run against every backend (today: SQLite on disk
//! and in memory; the postgres backend will run the same functions).

use crate::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Thing {
    id: String,
    name: String,
}

impl Record for Thing {
    const KIND: &'static str = "thing";
    const VERSION: u32 = 2;
    fn id(&self) -> &str {
        &self.id
    }
    fn index(&self) -> Index {
        Index {
            name: Some(self.name.clone()),
            ..Index::default()
        }
    }
    fn upgrade(version: u32, mut doc: serde_json::Value) -> Result<Self, serde_json::Error> {
        // Version 1 called the name `label`.
        if version == 1 {
            if let Some(label) = doc.get("label").cloned() {
                doc["name"] = label;
            }
        }
        serde_json::from_value(doc)
    }
}

const A: Scope = Scope {
    account: "111111111111",
    region: "eu-west-1",
};
const B: Scope = Scope {
    account: "222222222222",
    region: "eu-west-1",
};

fn thing(id: &str, name: &str) -> Thing {
    Thing {
        id: id.into(),
        name: name.into(),
    }
}

fn all(store: &Store) {
    committed_hooks(store);
    crud(store);
    names_are_unique(store);
    rollback_changes_nothing(store);
    scopes_are_isolated(store);
    tags(store);
    paging(store);
    upgrades_old_documents(store);
    addresses_are_unique_per_pool(store);
    zones_are_counted(store);
    rolled_back_scopes_leave_nothing(store);
    store.reset().unwrap();
}

fn crud(store: &Store) {
    store.reset().unwrap();
    store
        .write(true, |tx| tx.insert(A, &thing("t-1", "one")))
        .unwrap();
    let got: Option<Thing> = store.read(|v| v.get(A, "t-1")).unwrap();
    assert_eq!(got, Some(thing("t-1", "one")));
    let by_name: Option<Thing> = store.read(|v| v.get_by_name(A, "one")).unwrap();
    assert_eq!(by_name, Some(thing("t-1", "one")));
    assert!(store
        .write(true, |tx| tx.update(A, &thing("t-1", "uno")))
        .unwrap());
    assert!(store
        .write(true, |tx| tx.delete::<Thing>(A, "t-1"))
        .unwrap());
    let gone: Option<Thing> = store.read(|v| v.get(A, "t-1")).unwrap();
    assert_eq!(gone, None);
}

fn names_are_unique(store: &Store) {
    store.reset().unwrap();
    store
        .write(true, |tx| tx.insert(A, &thing("t-1", "same")))
        .unwrap();
    let e = store
        .write(true, |tx| tx.insert(A, &thing("t-2", "same")))
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict), "{e:?}");
    let e = store
        .write(true, |tx| tx.insert(A, &thing("t-1", "other")))
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict), "{e:?}");
}

fn rollback_changes_nothing(store: &Store) {
    store.reset().unwrap();
    // commit = false (DryRun) leaves nothing behind.
    store
        .write(false, |tx| tx.insert(A, &thing("t-1", "x")))
        .unwrap();
    // An error after a write undoes the write.
    let _ = store.write(true, |tx| {
        tx.insert(A, &thing("t-2", "y"))?;
        Err::<(), _>(StoreError::Conflict)
    });
    let rows: Vec<Thing> = store.read(|v| v.list(A, &Query::default())).unwrap();
    assert!(rows.is_empty(), "{rows:?}");
}

fn scopes_are_isolated(store: &Store) {
    store.reset().unwrap();
    store
        .write(true, |tx| tx.insert(A, &thing("t-1", "n")))
        .unwrap();
    // The same id and name in another account is another resource.
    store
        .write(true, |tx| tx.insert(B, &thing("t-1", "n")))
        .unwrap();
    let b: Vec<Thing> = store.read(|v| v.list(B, &Query::default())).unwrap();
    assert_eq!(b.len(), 1);
    store
        .write(true, |tx| tx.delete::<Thing>(A, "t-1"))
        .unwrap();
    let b: Vec<Thing> = store.read(|v| v.list(B, &Query::default())).unwrap();
    assert_eq!(b.len(), 1);
}

fn tags(store: &Store) {
    store.reset().unwrap();
    store
        .write(true, |tx| {
            tx.insert(A, &thing("t-1", "a"))?;
            tx.insert(A, &thing("t-2", "b"))?;
            tx.put_tag(A, "t-1", "thing", "env", "dev")?;
            tx.put_tag(A, "t-1", "thing", "env", "prod")?;
            tx.put_tag(A, "t-2", "thing", "env", "dev")
        })
        .unwrap();
    let t = store.read(|v| v.tags_of(A, "t-1")).unwrap();
    assert_eq!(t, vec![("env".to_string(), "prod".to_string())]);
    let dev: Vec<Thing> = store
        .read(|v| {
            v.list(
                A,
                &Query {
                    tag: Some(("env", &["dev"])),
                    ..Query::default()
                },
            )
        })
        .unwrap();
    assert_eq!(dev, vec![thing("t-2", "b")]);
    // A value that does not match deletes nothing.
    assert!(!store
        .write(true, |tx| tx.delete_tag(A, "t-2", "env", Some("x")))
        .unwrap());
    assert!(store
        .write(true, |tx| tx.delete_tag(A, "t-2", "env", None))
        .unwrap());
    // Deleting a row deletes its tags.
    store
        .write(true, |tx| tx.delete::<Thing>(A, "t-1"))
        .unwrap();
    let left = store
        .read(|v| v.list_tags(A, &TagQuery::default()))
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
}

fn paging(store: &Store) {
    store.reset().unwrap();
    store
        .write(true, |tx| {
            for i in 0..25 {
                tx.insert(A, &thing(&format!("t-{i:03}"), &format!("n{i}")))?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page: Vec<Thing> = store
            .read(|v| {
                v.list(
                    A,
                    &Query {
                        after: after.as_deref(),
                        limit: Some(10),
                        ..Query::default()
                    },
                )
            })
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|t| t.id.clone());
        seen.extend(page.into_iter().map(|t| t.id));
    }
    assert_eq!(seen.len(), 25);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    let some: Vec<Thing> = store
        .read(|v| {
            v.list(
                A,
                &Query {
                    ids: Some(&["t-003", "t-004", "t-999"]),
                    ..Query::default()
                },
            )
        })
        .unwrap();
    assert_eq!(some.len(), 2);
}

fn upgrades_old_documents(store: &Store) {
    store.reset().unwrap();
    let old = Row {
        id: "t-1".into(),
        index: Index::default(),
        version: 1,
        doc: br#"{"id":"t-1","label":"legacy"}"#.to_vec(),
    };
    store
        .write(true, |tx| tx.insert_row(A, "thing", &old))
        .unwrap();
    let got: Option<Thing> = store.read(|v| v.get(A, "t-1")).unwrap();
    assert_eq!(got, Some(thing("t-1", "legacy")));
}

fn addresses_are_unique_per_pool(store: &Store) {
    store.reset().unwrap();
    store
        .write(true, |tx| tx.claim_addrs(A, "subnet-1", "eni-1", &[10, 11]))
        .unwrap();
    let e = store
        .write(true, |tx| tx.claim_addrs(A, "subnet-1", "eni-2", &[12, 11]))
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict), "{e:?}");
    // The failed claim left nothing behind, not even its first address.
    assert_eq!(
        store.read(|v| v.addr_owner(A, "subnet-1", 12)).unwrap(),
        None
    );
    // Another pool, or another account, has its own addresses.
    store
        .write(true, |tx| tx.claim_addrs(A, "subnet-2", "eni-3", &[11]))
        .unwrap();
    store
        .write(true, |tx| tx.claim_addrs(B, "subnet-1", "eni-4", &[11]))
        .unwrap();
    store
        .write(true, |tx| tx.move_addrs(A, "subnet-1", "eni-9", &[11]))
        .unwrap();
    assert_eq!(
        store.read(|v| v.pool_addrs(A, "subnet-1")).unwrap(),
        vec![(10, "eni-1".to_string()), (11, "eni-9".to_string())]
    );
    assert_eq!(
        store
            .write(true, |tx| tx.release_owner(A, "eni-1"))
            .unwrap(),
        1
    );
    store
        .write(true, |tx| tx.release_addrs(A, "subnet-1", &[11]))
        .unwrap();
    assert!(store
        .read(|v| v.pool_addrs(A, "subnet-1"))
        .unwrap()
        .is_empty());
}

/// `committed` runs after a commit only, never after a rollback or a refused body.
fn committed_hooks(store: &Store) {
    let ran = std::cell::Cell::new(0);
    let r: Result<(), StoreError> = store.write_then(
        true,
        |tx| tx.insert(A, &thing("hook-1", "hook-one")),
        |_| ran.set(ran.get() + 1),
    );
    r.unwrap();
    let r: Result<(), StoreError> = store.write_then(
        false,
        |tx| tx.insert(A, &thing("hook-2", "hook-two")),
        |_| ran.set(ran.get() + 10),
    );
    r.unwrap();
    let r: Result<(), StoreError> = store.write_then(
        true,
        |tx| tx.insert(A, &thing("hook-3", "hook-one")),
        |_| ran.set(ran.get() + 100),
    );
    assert!(matches!(r, Err(StoreError::Conflict)));
    assert_eq!(ran.get(), 1);
    let found: Vec<Thing> = store.read(|v| v.list(A, &Query::default())).unwrap();
    assert!(found.iter().any(|t| t.id == "hook-1"));
    assert!(!found.iter().any(|t| t.id == "hook-2" || t.id == "hook-3"));
}

/// A record placed in a zone, with a state: what a capacity check counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Placed {
    id: String,
    zone: String,
    state: Option<String>,
}

impl Record for Placed {
    const KIND: &'static str = "placed";
    const VERSION: u32 = 1;
    fn id(&self) -> &str {
        &self.id
    }
    fn index(&self) -> Index {
        Index {
            zone: Some(self.zone.clone()),
            state: self.state.clone(),
            ..Index::default()
        }
    }
}

fn placed(id: &str, zone: &str, state: Option<&str>) -> Placed {
    Placed {
        id: id.into(),
        zone: zone.into(),
        state: state.map(str::to_string),
    }
}

/// The count a capacity check reads always equals the rows themselves, counted one by one.
fn zones_are_counted(store: &Store) {
    store.reset().unwrap();
    let except = ["terminated", "shutting-down"];
    let check = |scope: Scope| {
        let rows: Vec<Placed> = store.read(|v| v.list(scope, &Query::default())).unwrap();
        for zone in ["z-a", "z-b", "z-c"] {
            let want = rows
                .iter()
                .filter(|p| p.zone == zone)
                .filter(|p| p.state.as_deref().is_none_or(|s| !except.contains(&s)))
                .count() as u64;
            let got = store
                .read(|v| v.count_in_zone(scope, Placed::KIND, zone, &except))
                .unwrap();
            assert_eq!(got, want, "zone {zone} of {scope:?}");
        }
    };
    store
        .write(true, |tx| {
            tx.insert(A, &placed("p-1", "z-a", Some("running")))?;
            tx.insert(A, &placed("p-2", "z-a", Some("pending")))?;
            tx.insert(A, &placed("p-3", "z-a", None))?;
            tx.insert(A, &placed("p-4", "z-b", Some("running")))?;
            tx.insert(B, &placed("p-1", "z-a", Some("running")))
        })
        .unwrap();
    check(A);
    check(B);
    assert_eq!(
        store
            .read(|v| v.count_in_zone(A, Placed::KIND, "z-a", &except))
            .unwrap(),
        3
    );
    // A state change moves the row between counters; a zone change between zones.
    store
        .write(true, |tx| {
            tx.update(A, &placed("p-1", "z-a", Some("terminated")))?;
            tx.update(A, &placed("p-4", "z-c", Some("running")))?;
            tx.update(A, &placed("p-2", "z-a", Some("pending")))
        })
        .unwrap();
    check(A);
    assert_eq!(
        store
            .read(|v| v.count_in_zone(A, Placed::KIND, "z-a", &except))
            .unwrap(),
        2
    );
    // A rolled-back change counts for nothing.
    let _ = store.write(true, |tx| {
        tx.insert(A, &placed("p-5", "z-a", Some("running")))?;
        tx.update(A, &placed("p-3", "z-a", Some("shutting-down")))?;
        Err::<(), _>(StoreError::Conflict)
    });
    check(A);
    store
        .write(true, |tx| {
            tx.delete::<Placed>(A, "p-3")?;
            tx.delete::<Placed>(A, "p-1")
        })
        .unwrap();
    check(A);
    check(B);
    // The transaction sees its own counts.
    let inside = store
        .write(false, |tx| {
            tx.insert(A, &placed("p-6", "z-b", None))?;
            tx.count_in_zone(A, Placed::KIND, "z-b", &except)
        })
        .unwrap();
    assert_eq!(inside, 1);
    check(A);
}

/// Whatever a rolled-back write made for a scope it was first to touch is gone with it: a
/// later write to another new scope never shows up under the first.
fn rolled_back_scopes_leave_nothing(store: &Store) {
    store.reset().unwrap();
    let c = Scope {
        account: "333333333333",
        region: "ap-south-2",
    };
    let d = Scope {
        account: "444444444444",
        region: "ap-south-2",
    };
    let _ = store.write(true, |tx| {
        tx.insert(c, &thing("t-c", "c"))?;
        tx.put_tag(c, "t-c", "thing", "k", "v")?;
        Err::<(), _>(StoreError::Conflict)
    });
    store
        .write(true, |tx| {
            tx.insert(d, &thing("t-d", "d"))?;
            tx.put_tag(d, "t-d", "thing", "k", "v")
        })
        .unwrap();
    let in_c: Vec<Thing> = store.read(|v| v.list(c, &Query::default())).unwrap();
    assert!(in_c.is_empty(), "{in_c:?}");
    let tags_c = store.read(|v| v.tags_of(c, "t-d")).unwrap();
    assert!(tags_c.is_empty(), "{tags_c:?}");
    let in_d: Vec<Thing> = store.read(|v| v.list(d, &Query::default())).unwrap();
    assert_eq!(in_d, vec![thing("t-d", "d")]);
    // And the first scope, written for real now, holds only its own.
    store
        .write(true, |tx| tx.insert(c, &thing("t-c2", "c2")))
        .unwrap();
    let in_c: Vec<Thing> = store.read(|v| v.list(c, &Query::default())).unwrap();
    assert_eq!(in_c, vec![thing("t-c2", "c2")]);
    let in_d: Vec<Thing> = store.read(|v| v.list(d, &Query::default())).unwrap();
    assert_eq!(in_d, vec![thing("t-d", "d")]);
}

#[test]
fn sqlite_memory() {
    all(&Store::memory().unwrap());
}

#[test]
fn sqlite_file() {
    let dir = std::env::temp_dir().join(format!("kumo-store-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    all(&Store::open(&dir).unwrap());
    // Reopening finds the schema in place.
    drop(Store::open(&dir).unwrap());
    // A database from a newer build is refused, not written over.
    let conn = rusqlite::Connection::open(dir.join("kumo.db")).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    assert!(matches!(
        Store::open(&dir),
        Err(StoreError::NewerSchema { found: 99, .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A store opened on a database an older build wrote (`sql` makes it): (its folder, the
/// store).
fn open_old(name: &str, sql: &str) -> (std::path::PathBuf, Store) {
    let dir = std::env::temp_dir().join(format!("kumo-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let conn = rusqlite::Connection::open(dir.join("kumo.db")).unwrap();
    conn.execute_batch(sql).unwrap();
    drop(conn);
    let store = Store::open(&dir).unwrap();
    (dir, store)
}

/// The `rows` table as versions 1 to 3 made it, and one document in it.
const VERSION_3_ROWS: &str = "
CREATE TABLE rows (
    account TEXT NOT NULL, region TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL,
    name TEXT, state TEXT, vpc TEXT, subnet TEXT, zone TEXT,
    version INTEGER NOT NULL, doc BLOB NOT NULL,
    PRIMARY KEY (account, region, kind, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX rows_name ON rows (account, region, kind, name) WHERE name IS NOT NULL;
INSERT INTO rows VALUES ('111111111111', 'us-east-1', 'thing', 'old-1', 'old-name', NULL, NULL, NULL, NULL, 1, CAST('{\"id\":\"old-1\",\"label\":\"old-name\"}' AS BLOB));
PRAGMA user_version = 3;
";

#[test]
fn sqlite_upgrades_a_version_3_file() {
    let (dir, store) = open_old("v3", VERSION_3_ROWS);
    // The document is still there, found by id and by name, and still upgraded on read.
    let s = Scope {
        account: "111111111111",
        region: "us-east-1",
    };
    let got: Option<Thing> = store.read(|v| v.get(s, "old-1")).unwrap();
    assert_eq!(got, Some(thing("old-1", "old-name")));
    let by_name: Option<Thing> = store.read(|v| v.get_by_name(s, "old-name")).unwrap();
    assert_eq!(by_name.map(|t| t.id), Some("old-1".to_string()));
    // Its name is still unique.
    let dup: Result<(), StoreError> =
        store.write(true, |tx| tx.insert(s, &thing("new-1", "old-name")));
    assert!(matches!(dup, Err(StoreError::Conflict)));
    drop(store);
    let conn = rusqlite::Connection::open(dir.join("kumo.db")).unwrap();
    let sql: String = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'rows'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!sql.contains("WITHOUT ROWID"), "{sql}");
    let v: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, 5);
    // Every index is back, on the new table.
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'rows' AND name LIKE 'rows_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        indexes,
        ["rows_name", "rows_state", "rows_subnet", "rows_vpc"]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A version 4 database: text keys in every table, a rowid `rows`, one of each kind of row.
const VERSION_4: &str = "
CREATE TABLE rows (
    account TEXT NOT NULL, region TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL,
    name TEXT, state TEXT, vpc TEXT, subnet TEXT, zone TEXT,
    version INTEGER NOT NULL, doc BLOB NOT NULL,
    PRIMARY KEY (account, region, kind, id)
);
CREATE UNIQUE INDEX rows_name ON rows (account, region, kind, name) WHERE name IS NOT NULL;
CREATE INDEX rows_state ON rows (account, region, kind, state) WHERE state IS NOT NULL;
CREATE INDEX rows_vpc ON rows (account, region, kind, vpc) WHERE vpc IS NOT NULL;
CREATE INDEX rows_subnet ON rows (account, region, kind, subnet) WHERE subnet IS NOT NULL;
CREATE INDEX rows_zone_state ON rows (account, region, kind, zone, state) WHERE zone IS NOT NULL;
CREATE TABLE tags (
    account TEXT NOT NULL, region TEXT NOT NULL, resource_id TEXT NOT NULL, key TEXT NOT NULL,
    value TEXT NOT NULL, resource_type TEXT NOT NULL,
    PRIMARY KEY (account, region, resource_id, key)
) WITHOUT ROWID;
CREATE INDEX tags_key ON tags (account, region, key, value);
CREATE TABLE ips (
    account TEXT NOT NULL, region TEXT NOT NULL, pool TEXT NOT NULL, addr INTEGER NOT NULL,
    owner TEXT NOT NULL,
    PRIMARY KEY (account, region, pool, addr)
) WITHOUT ROWID;
CREATE INDEX ips_owner ON ips (account, region, owner);
CREATE INDEX ips_addr ON ips (account, region, addr);
CREATE TABLE idempotency (
    account TEXT NOT NULL, region TEXT NOT NULL, operation TEXT NOT NULL, token TEXT NOT NULL,
    digest TEXT NOT NULL, response BLOB NOT NULL,
    PRIMARY KEY (account, region, operation, token)
) WITHOUT ROWID;
INSERT INTO rows VALUES ('111111111111', 'eu-west-1', 'thing', 't-1', 'one', NULL, NULL, NULL, NULL, 2, CAST('{\"id\":\"t-1\",\"name\":\"one\"}' AS BLOB));
INSERT INTO rows VALUES ('111111111111', 'eu-west-1', 'placed', 'p-1', NULL, 'running', NULL, NULL, 'z-a', 1, CAST('{\"id\":\"p-1\",\"zone\":\"z-a\",\"state\":\"running\"}' AS BLOB));
INSERT INTO rows VALUES ('111111111111', 'eu-west-1', 'placed', 'p-2', NULL, 'terminated', NULL, NULL, 'z-a', 1, CAST('{\"id\":\"p-2\",\"zone\":\"z-a\",\"state\":\"terminated\"}' AS BLOB));
INSERT INTO rows VALUES ('222222222222', 'eu-west-1', 'placed', 'p-1', NULL, 'running', NULL, NULL, 'z-a', 1, CAST('{\"id\":\"p-1\",\"zone\":\"z-a\",\"state\":\"running\"}' AS BLOB));
INSERT INTO tags VALUES ('111111111111', 'eu-west-1', 't-1', 'env', 'dev', 'thing');
INSERT INTO ips VALUES ('111111111111', 'eu-west-1', 'subnet-1', 167772165, 'eni-1');
INSERT INTO idempotency VALUES ('111111111111', 'eu-west-1', 'RunInstances', 'tok', 'digest', CAST('r-1' AS BLOB));
PRAGMA user_version = 4;
";

#[test]
fn sqlite_upgrades_a_version_4_file() {
    let (dir, store) = open_old("v4", VERSION_4);
    // Every kind of row is there, in its own scope, and the zones are counted.
    let got: Option<Thing> = store.read(|v| v.get(A, "t-1")).unwrap();
    assert_eq!(got, Some(thing("t-1", "one")));
    let by_name: Option<Thing> = store.read(|v| v.get_by_name(A, "one")).unwrap();
    assert_eq!(by_name.map(|t| t.id), Some("t-1".to_string()));
    assert_eq!(
        store.read(|v| v.tags_of(A, "t-1")).unwrap(),
        vec![("env".to_string(), "dev".to_string())]
    );
    assert_eq!(
        store
            .read(|v| v.addr_owner(A, "subnet-1", 167772165))
            .unwrap(),
        Some("eni-1".to_string())
    );
    assert_eq!(
        store
            .read(|v| v.idempotent(A, "RunInstances", "tok"))
            .unwrap(),
        Some(("digest".to_string(), b"r-1".to_vec()))
    );
    let except = ["terminated"];
    assert_eq!(
        store
            .read(|v| v.count_in_zone(A, Placed::KIND, "z-a", &except))
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .read(|v| v.count_in_zone(B, Placed::KIND, "z-a", &except))
            .unwrap(),
        1
    );
    let none: Vec<Placed> = store.read(|v| v.list(B, &Query::default())).unwrap();
    assert_eq!(none, vec![placed("p-1", "z-a", Some("running"))]);
    // The unique rules hold on the new tables.
    let dup: Result<(), StoreError> = store.write(true, |tx| tx.insert(A, &thing("t-2", "one")));
    assert!(matches!(dup, Err(StoreError::Conflict)));
    let taken: Result<(), StoreError> = store.write(true, |tx| {
        tx.claim_addrs(A, "subnet-1", "eni-2", &[167772165])
    });
    assert!(matches!(taken, Err(StoreError::Conflict)));
    // Start-up's scan across scopes still finds the rows by state.
    let running = store.scan_states(Placed::KIND, &["running"]).unwrap();
    assert_eq!(running.len(), 2);
    drop(store);
    let conn = rusqlite::Connection::open(dir.join("kumo.db")).unwrap();
    let old: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'old_%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(old, 0);
    std::fs::remove_dir_all(&dir).unwrap();
}
