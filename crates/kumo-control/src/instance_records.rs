//! The stored instance, and the clock that drives its time-based transitions.

use kumo_model::lifecycle::State;
use kumo_store::{Index, Record};
use serde::{Deserialize, Serialize};

/// An instance. Its network interfaces are ENI records attached to it; its primary one is
/// `enis[0]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceRecord {
    pub id: String,
    pub reservation_id: String,
    pub image_id: String,
    pub instance_type: String,
    pub architecture: String,
    pub key_name: Option<String>,
    pub launch_ms: i64,
    pub launch_index: i32,
    /// The stored state; a transitional state settles after `since_ms` + the driver's delay.
    pub state: String,
    pub since_ms: i64,
    pub transition_reason: String,
    pub state_reason: Option<(String, String)>,
    pub zone: String,
    pub zone_id: String,
    pub subnet_id: String,
    pub vpc_id: String,
    /// Interface ids in device-index order.
    pub enis: Vec<String>,
    /// The public address given at launch or start (not an Elastic IP).
    pub public_ip: Option<String>,
    /// Whether the instance gets a public address at each start.
    pub auto_public_ip: bool,
    /// Base64, as the API carries it.
    pub user_data: Option<String>,
    pub disable_api_termination: bool,
    pub disable_api_stop: bool,
    pub shutdown_behavior: String,
    pub monitoring: bool,
    pub ebs_optimized: bool,
    pub tenancy: String,
    pub root_device_name: String,
    pub root_device_type: String,
    pub ena_support: bool,
    pub boot_mode: String,
    pub credit_specification: Option<String>,
    pub http_tokens: String,
    pub http_endpoint: String,
    pub http_hop_limit: i32,
    pub instance_metadata_tags: String,
    pub hibernation: bool,
    pub iam_instance_profile: Option<String>,
    pub capacity_reservation_preference: String,
    pub client_token: Option<String>,
}

impl Record for InstanceRecord {
    const KIND: &'static str = "instance";
    const VERSION: u32 = 1;
    fn id(&self) -> &str {
        &self.id
    }
    fn index(&self) -> Index {
        Index {
            state: Some(self.state.clone()),
            vpc: Some(self.vpc_id.clone()),
            subnet: Some(self.subnet_id.clone()),
            zone: Some(self.zone.clone()),
            ..Index::default()
        }
    }
}

impl InstanceRecord {
    pub fn state(&self) -> State {
        State::parse(&self.state).unwrap_or(State::Terminated)
    }

    /// Applies the transitions that time has completed by `now` (each takes `delay_ms`).
    /// Returns whether anything changed.
    pub fn settle(&mut self, now_ms: i64, delay_ms: i64) -> bool {
        let mut changed = false;
        while let Some(next) = self.state().settles_to() {
            if now_ms < self.since_ms + delay_ms {
                break;
            }
            self.since_ms += delay_ms;
            self.state = next.name().to_string();
            if next == State::Running {
                // A running instance has no state reason.
                self.state_reason = None;
            }
            changed = true;
        }
        changed
    }

    pub fn ebs_backed(&self) -> bool {
        self.root_device_type == "ebs"
    }
}

/// How long terminated instances stay visible.
pub const TERMINATED_VISIBLE_MS: i64 = 3_600_000;
