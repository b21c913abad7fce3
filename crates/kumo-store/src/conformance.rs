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
    let dir = std::env::temp_dir().join(format!("kumo-store-v3-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let conn = rusqlite::Connection::open(dir.join("kumo.db")).unwrap();
    conn.execute_batch(VERSION_3_ROWS).unwrap();
    drop(conn);
    let store = Store::open(&dir).unwrap();
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
    assert_eq!(v, 4);
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
        [
            "rows_name",
            "rows_state",
            "rows_subnet",
            "rows_vpc",
            "rows_zone_state"
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
