//! A launch template and its versions.
//!
//! A template is its name and its version counters; each version is a record of its own (the
//! template's id, `/`, the number zero-padded), so a new version writes one small document
//! however many the template has, and a template's versions are one id range.

use kumo_store::Index;
use serde::{Deserialize, Serialize};

/// A stored launch template.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchTemplateRecord {
    pub id: String,
    pub name: String,
    pub created_ms: i64,
    /// The ARN of who created it (`arn:aws:iam::ACCOUNT:root`).
    pub created_by: String,
    pub default_version: i64,
    /// The newest version that exists (`$Latest`).
    pub latest_version: i64,
    /// The highest version number ever given: numbers are never reused, also after the
    /// newest version is deleted.
    pub last_number: i64,
    /// How many versions exist now.
    pub versions: i64,
}

// Templates are regional: each counts under the zone `""` of the store's zone counters, so
// the region's quota is one counter read ([`REGIONAL`]).
record!(LaunchTemplateRecord, "launch-template", |t| {
    Index {
        name: Some(t.name.clone()),
        zone: Some(REGIONAL.to_string()),
        ..Index::default()
    }
});

/// The zone a regional record counts under.
pub const REGIONAL: &str = "";

/// One version of a launch template.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchTemplateVersionRecord {
    /// [`version_id`].
    pub id: String,
    pub template_id: String,
    pub number: i64,
    pub description: Option<String>,
    pub created_ms: i64,
    pub created_by: String,
    /// The version's data: the `RequestLaunchTemplateData` it was given (merged onto its
    /// source version's), as JSON under the model's member names.
    pub data: serde_json::Value,
}

record!(
    LaunchTemplateVersionRecord,
    "launch-template-version",
    |_v| Index::default()
);

/// A version's record id: the template's id and the number, padded so that a template's
/// versions sort by number and form one id range after `{template}/`.
pub fn version_id(template_id: &str, number: i64) -> String {
    format!("{template_id}/{number:05}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_ids_sort_by_number_within_their_template() {
        let a: Vec<String> = [10_000, 2, 10, 1]
            .iter()
            .map(|n| super::version_id("lt-0a", *n))
            .collect();
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            ["lt-0a/00001", "lt-0a/00002", "lt-0a/00010", "lt-0a/10000"]
        );
        // Another template's versions are outside the range after `lt-0a/`.
        assert!(super::version_id("lt-0a0", 1).as_str() > "lt-0a/99999");
    }
}
