//! A placement group.

use kumo_store::Index;
use serde::{Deserialize, Serialize};

/// A stored placement group. Its name is unique in the region and never changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementGroupRecord {
    pub id: String,
    pub name: String,
    /// `cluster`, `spread` or `partition`.
    pub strategy: String,
    /// A spread group's level (`rack`).
    pub spread_level: Option<String>,
    /// A partition group's number of partitions.
    pub partition_count: Option<i32>,
    pub created_ms: i64,
    /// The instances placed in it (some may since have terminated or vanished): its members
    /// are read by id, never by scanning the region's instances.
    #[serde(default)]
    pub instances: Vec<String>,
}

// Groups are regional: each counts under the zone counters' regional zone, so the region's
// quota is one counter read.
record!(PlacementGroupRecord, "placement-group", |g| {
    Index {
        name: Some(g.name.clone()),
        zone: Some(super::launch_template::REGIONAL.to_string()),
        ..Index::default()
    }
});
