//! A Run Command (SSM SendCommand) and each instance's run of it, kept so that
//! GetCommandInvocation, ListCommands and ListCommandInvocations answer after a restart.

use kumo_store::Index;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How long an invocation may take before it is `TimedOut`: SendCommand's default
/// `TimeoutSeconds`, 3,600.
pub const TIMEOUT_MS: i64 = 3_600_000;

/// A sent command, in its account and region.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandRecord {
    /// SSM's command id (a UUID).
    pub id: String,
    pub instances: Vec<String>,
    /// The `commands` parameter of `AWS-RunShellScript`, one line each.
    pub commands: Vec<String>,
    pub comment: String,
    pub requested_ms: i64,
    /// The instances whose run has ended, with how it ended.
    pub finished: BTreeMap<String, Finished>,
}

/// An instance's ended run: `Success` or `Failed`, the exit code and the output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finished {
    pub status: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub finished_ms: i64,
}

record!(CommandRecord, "ssm-command", |_c| Index::default());

impl CommandRecord {
    /// Whether every instance's run has ended, or the command has timed out.
    pub fn done(&self, now_ms: i64) -> bool {
        self.finished.len() >= self.instances.len() || now_ms > self.requested_ms + TIMEOUT_MS
    }

    /// The command's status over its instances, as ListCommands shows it: `Pending` until
    /// one started, `InProgress` while any runs, then `Success` when all succeeded, else
    /// `Failed` (or `TimedOut` when one never ended).
    pub fn status(&self, live: impl Fn(&str) -> String, now_ms: i64) -> String {
        let each: Vec<String> = self
            .instances
            .iter()
            .map(|i| self.invocation_status(i, &live, now_ms))
            .collect();
        let ended = |s: &String| matches!(s.as_str(), "Success" | "Failed" | "TimedOut");
        if each.iter().all(ended) {
            if each.iter().all(|s| s == "Success") {
                "Success"
            } else if each.iter().any(|s| s == "TimedOut") {
                "TimedOut"
            } else {
                "Failed"
            }
        } else if each.iter().any(|s| s != "Pending") {
            "InProgress"
        } else {
            "Pending"
        }
        .to_string()
    }

    /// One instance's status: its ended run's, else what its agent reports now (`live`),
    /// else `TimedOut` once the timeout has passed.
    pub fn invocation_status(
        &self,
        instance: &str,
        live: impl Fn(&str) -> String,
        now_ms: i64,
    ) -> String {
        if let Some(f) = self.finished.get(instance) {
            return f.status.clone();
        }
        if now_ms > self.requested_ms + TIMEOUT_MS {
            return "TimedOut".into();
        }
        live(instance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(instances: &[&str]) -> CommandRecord {
        CommandRecord {
            id: "c".into(),
            instances: instances.iter().map(|s| s.to_string()).collect(),
            commands: vec!["true".into()],
            comment: String::new(),
            requested_ms: 1_000,
            finished: BTreeMap::new(),
        }
    }

    fn end(c: &mut CommandRecord, i: &str, status: &str) {
        c.finished.insert(
            i.into(),
            Finished {
                status: status.into(),
                code: 0,
                stdout: String::new(),
                stderr: String::new(),
                finished_ms: 2_000,
            },
        );
    }

    #[test]
    fn a_command_status_follows_its_invocations() {
        let pending = |_: &str| "Pending".to_string();
        let running = |_: &str| "InProgress".to_string();
        let mut c = cmd(&["i-1", "i-2"]);
        assert_eq!(c.status(pending, 1_500), "Pending");
        assert_eq!(c.status(running, 1_500), "InProgress");
        end(&mut c, "i-1", "Success");
        assert_eq!(c.status(pending, 1_500), "InProgress");
        assert!(!c.done(1_500));
        end(&mut c, "i-2", "Failed");
        assert_eq!(c.status(pending, 1_500), "Failed");
        assert!(c.done(1_500));
        let mut ok = cmd(&["i-1"]);
        end(&mut ok, "i-1", "Success");
        assert_eq!(ok.status(pending, 1_500), "Success");
        // A run that never ends times out after an hour.
        let late = cmd(&["i-1"]);
        assert_eq!(late.status(running, 1_000 + TIMEOUT_MS + 1), "TimedOut");
        assert!(late.done(1_000 + TIMEOUT_MS + 1));
    }
}
