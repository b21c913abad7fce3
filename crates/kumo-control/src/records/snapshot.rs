//! A snapshot's stored document: the layer it is, the one it sits on, and who may use it.

use super::permissions::Permissions;
use kumo_store::{Index, Record};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRecord {
    pub id: String,
    pub volume_id: String,
    pub volume_size: i32,
    pub description: String,
    pub start_ms: i64,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    /// The older snapshot layer this one sits on.
    pub parent: Option<String>,
    /// Who else may create volumes from it.
    #[serde(default)]
    pub create_volume: Permissions,
}

impl Record for SnapshotRecord {
    const KIND: &'static str = "snapshot";
    const VERSION: u32 = 1;
    fn id(&self) -> &str {
        &self.id
    }
    fn index(&self) -> Index {
        Index::default()
    }
}
