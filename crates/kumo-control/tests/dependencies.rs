//! The control plane's layering, read from its own source (in the spirit of Firecracker's
//! `verify_dependencies.rs`): every `crate::…` path a module names is an edge.
//!
//! - `core::*` (the control error, ids, filters, describe, paging, idempotency) uses only
//!   itself;
//! - `records::*` (the stored documents) use only each other;
//! - `repo::*` (lookups) use only the records, each other, the core and `sharing` (who may
//!   use a shared image or snapshot);
//! - `host::*` (the port to the driver and to files) uses only records, lookups, the core,
//!   `sharing` and the instance types;
//! - no module imports one that imports it back, however indirectly: the layers (records,
//!   lookups, the host port, families, flows) only point down.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path → the modules it names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut out = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap().with_extension("");
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().to_string())
            .collect();
        if parts.last().is_some_and(|p| p == "mod") {
            parts.pop();
        }
        let name = parts.join("::");
        let text = std::fs::read_to_string(&f).unwrap();
        // Unit tests may reach anywhere.
        let text = text.split("#[cfg(test)]").next().unwrap_or("");
        let mut deps = BTreeSet::new();
        let parent = parts.first().cloned().unwrap_or_default();
        for (prefix, base) in [("crate::", None), ("super::", Some(parent.as_str()))] {
            for (i, _) in text.match_indices(prefix) {
                // `crate::x` inside a longer path (`kumo_store::crate::…` never occurs, but
                // `self::super::` might) is still an edge; a word before it is not.
                if text[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let path: Vec<&str> = text[i + prefix.len()..]
                    .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .next()
                    .unwrap_or("")
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .collect();
                let Some(first) = path.first() else { continue };
                let dep = match (base, *first) {
                    (Some(b), m) if parts.len() > 1 => format!("{b}::{m}"),
                    (Some(_), _) => continue,
                    (None, top @ ("records" | "repo")) => match path.get(1) {
                        Some(m) => format!("{top}::{m}"),
                        None => top.to_string(),
                    },
                    (None, m) => m.to_string(),
                };
                deps.insert(dep);
            }
        }
        out.insert(name, deps);
    }
    let names: BTreeSet<String> = out.keys().cloned().collect();
    for (name, deps) in out.iter_mut() {
        // Only edges to modules; `crate::Kumo` and the root's helpers are the root's.
        deps.retain(|d| names.contains(d) && d != name && d != "lib");
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The modules that sit in a cycle (Tarjan's strongly connected components of size > 1).
fn cyclic(g: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: BTreeSet<String>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        t.on.insert(v);
        for w in &t.g[v] {
            let w = w.as_str();
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = t.stack.pop().unwrap();
                t.on.remove(w);
                comp.push(w);
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                t.out.extend(comp.into_iter().map(String::from));
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: BTreeSet::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn records_use_only_records() {
    let g = graph();
    assert!(
        g.keys().any(|m| m == "records::instance"),
        "the graph reads the records"
    );
    for (m, deps) in g.iter().filter(|(m, _)| m.starts_with("records")) {
        let bad: Vec<&String> = deps.iter().filter(|d| !d.starts_with("records")).collect();
        assert!(
            bad.is_empty(),
            "{m} imports {bad:?}: records use only records"
        );
    }
}

#[test]
fn lookups_use_only_records_and_errors() {
    let g = graph();
    for (m, deps) in g.iter().filter(|(m, _)| m.starts_with("repo")) {
        let bad: Vec<&String> = deps
            .iter()
            .filter(|d| {
                !(d.starts_with("records")
                    || d.starts_with("repo")
                    || *d == "core"
                    || *d == "sharing")
            })
            .collect();
        assert!(
            bad.is_empty(),
            "{m} imports {bad:?}: lookups use only records, lookups and the core"
        );
    }
}

#[test]
fn the_core_uses_only_itself() {
    let g = graph();
    assert!(
        g.keys().any(|m| m == "core::describe"),
        "the graph reads the core"
    );
    for (m, deps) in g.iter().filter(|(m, _)| m.starts_with("core")) {
        let bad: Vec<&String> = deps.iter().filter(|d| !d.starts_with("core")).collect();
        assert!(
            bad.is_empty(),
            "{m} imports {bad:?}: the core uses only itself"
        );
    }
}

#[test]
fn the_host_port_uses_no_family() {
    let g = graph();
    assert!(
        g.contains_key("host::spec"),
        "the graph reads the host's modules"
    );
    for (m, deps) in g.iter().filter(|(m, _)| m.starts_with("host")) {
        let bad: Vec<&String> = deps
            .iter()
            .filter(|d| {
                !(d.starts_with("records")
                    || d.starts_with("repo")
                    || d.starts_with("host")
                    || *d == "core"
                    || *d == "sharing"
                    || *d == "instance_types")
            })
            .collect();
        assert!(
            bad.is_empty(),
            "{m} imports {bad:?}: the port uses records and lookups only"
        );
    }
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let g = graph();
    let found = cyclic(&g);
    assert!(
        found.is_empty(),
        "{found:?} import each other: move the shared part down (records, repo, host) or the workflow up (flows)"
    );
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let g: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
        ("e", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(
        cyclic(&g),
        ["a", "b", "c"].into_iter().map(String::from).collect()
    );
}
