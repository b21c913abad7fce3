//! A resource with its tags, loaded in one query per thousand rows.

use crate::core::error::Fail;
use kumo_store::{Read, Record, Scope, TagQuery};

/// A resource with its tags, for filtering and output.
pub struct Tagged<T> {
    pub item: T,
    pub tags: Vec<(String, String)>,
}

/// Loads the tags of each row, in one query per thousand rows.
pub fn attach<T: Record, V: Read>(v: &V, s: Scope, rows: Vec<T>) -> Result<Vec<Tagged<T>>, Fail> {
    let mut by_id: std::collections::HashMap<String, Vec<(String, String)>> =
        std::collections::HashMap::new();
    for chunk in rows.chunks(1000) {
        let ids: Vec<&str> = chunk.iter().map(|r| r.id()).collect();
        let q = TagQuery {
            resource_ids: Some(&ids),
            ..TagQuery::default()
        };
        for t in v.list_tags(s, &q)? {
            by_id
                .entry(t.resource_id)
                .or_default()
                .push((t.key, t.value));
        }
    }
    Ok(rows
        .into_iter()
        .map(|item| {
            let tags = by_id.remove(item.id()).unwrap_or_default();
            Tagged { item, tags }
        })
        .collect())
}
