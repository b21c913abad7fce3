//! A Session Manager session (SSM StartSession), kept so that DescribeSessions answers for
//! active sessions and, after they end, for the history, across restarts.

use kumo_store::Index;
use serde::{Deserialize, Serialize};

/// A session, in its account and region.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRecord {
    /// `<owner name>-<17 hex digits>`, as SSM names sessions.
    pub id: String,
    /// The instance.
    pub target: String,
    /// The ARN of the caller that started it.
    pub owner: String,
    pub document: String,
    pub reason: Option<String>,
    /// `Connecting` until a client opens its data channel, `Connected` while one is open,
    /// then `Terminated` (ended by TerminateSession, by the shell's exit or by the client
    /// leaving) or `Failed` (the agent never connected back).
    pub status: String,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
    /// The token a client presents on the data channel (a new one at ResumeSession).
    pub token: String,
}

record!(SessionRecord, "ssm-session", |_s| Index::default());

impl SessionRecord {
    /// Whether DescribeSessions lists it under `Active` (else under `History`).
    pub fn active(&self) -> bool {
        matches!(self.status.as_str(), "Connecting" | "Connected")
    }
}
