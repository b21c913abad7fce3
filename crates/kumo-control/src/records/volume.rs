//! A volume's stored document: its configuration, attachments (with their state) and
//! modifications, and the region's EBS settings.

use kumo_store::Record;
use serde::{Deserialize, Serialize};

/// Where an attachment stands. Stored by AWS's names (the strings of version 1), so an
/// unknown one fails to decode.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AttachState {
    /// Settles to `Attached` after the transition delay.
    Attaching,
    Attached,
    /// Removed after the transition delay.
    Detaching,
    /// A detach that the guest refused because it has the volume mounted: the attachment
    /// stays, `busy`, until an unmounted or forced detach.
    Busy,
}

impl AttachState {
    pub fn name(self) -> &'static str {
        match self {
            AttachState::Attaching => "attaching",
            AttachState::Attached => "attached",
            AttachState::Detaching => "detaching",
            AttachState::Busy => "busy",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VolAttachment {
    pub instance_id: String,
    pub device: String,
    pub state: AttachState,
    pub since_ms: i64,
    pub attach_ms: i64,
    pub delete_on_termination: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Modification {
    pub start_ms: i64,
    pub original: (String, i32, Option<i32>, Option<i32>, bool),
    pub target: (String, i32, Option<i32>, Option<i32>, bool),
    /// Why the modification failed, when its effect on the volume's file could not be made;
    /// the volume then keeps its original configuration, as a failed EBS modification does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeRecord {
    pub id: String,
    pub size: i32,
    pub volume_type: String,
    pub iops: Option<i32>,
    pub throughput: Option<i32>,
    pub zone: String,
    pub zone_id: String,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    pub snapshot_id: Option<String>,
    pub multi_attach: bool,
    pub create_ms: i64,
    pub attachments: Vec<VolAttachment>,
    pub modifications: Vec<Modification>,
    /// The snapshot layer the volume's file sits on, if any.
    #[serde(default)]
    pub backing: Option<String>,
    /// Whether I/O resumes by itself after a data-consistency event (ModifyVolumeAttribute).
    #[serde(default)]
    pub auto_enable_io: bool,
}

impl Record for VolumeRecord {
    const KIND: &'static str = "volume";
    const VERSION: u32 = 1;
    fn id(&self) -> &str {
        &self.id
    }
    // No index column: no query finds volumes by one, and a launch writes a row per volume.
}

/// Account-wide EBS settings of a region.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EbsSettings {
    pub id: String,
    pub encryption_by_default: bool,
}

impl Record for EbsSettings {
    const KIND: &'static str = "ebs-settings";
    const VERSION: u32 = 1;
    fn id(&self) -> &str {
        &self.id
    }
}

impl VolumeRecord {
    /// Settles attachments and modifications against the clock.
    pub fn settle(&mut self, now: i64, delay: i64) {
        for a in self.attachments.iter_mut() {
            if a.state == AttachState::Attaching && now >= a.since_ms + delay {
                a.state = AttachState::Attached;
            }
        }
        self.attachments
            .retain(|a| !(a.state == AttachState::Detaching && now >= a.since_ms + delay));
    }

    pub fn state(&self, now: i64, delay: i64) -> &'static str {
        if now < self.create_ms + delay {
            "creating"
        } else if self.attachments.is_empty() {
            "available"
        } else {
            "in-use"
        }
    }
}
