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
    pub state: State,
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
    /// Volumes attached to the instance at some point (the volumes' attachments are the truth;
    /// this is the index DescribeInstances reads them through).
    #[serde(default)]
    pub volumes: Vec<String>,
    pub ena_support: bool,
    pub boot_mode: String,
    pub credit_specification: Option<String>,
    pub http_tokens: String,
    pub http_endpoint: String,
    pub http_hop_limit: i32,
    /// `enabled` or `disabled` (`HttpProtocolIpv6`; older records: disabled).
    #[serde(default = "disabled")]
    pub http_protocol_ipv6: String,
    pub instance_metadata_tags: String,
    pub hibernation: bool,
    pub iam_instance_profile: Option<String>,
    pub capacity_reservation_preference: String,
    pub client_token: Option<String>,
    /// CPU credits of a burstable instance, as of `credits_at_ms`.
    #[serde(default)]
    pub credit_balance: f64,
    #[serde(default)]
    pub credit_surplus: f64,
    #[serde(default)]
    pub credits_at_ms: i64,
    /// CPU use over the last ledger round, in percent of one vCPU, as the driver measured it
    /// (the null driver runs no guest: 0).
    #[serde(default)]
    pub cpu_usage_pct: f64,
    /// Launched under a real driver and not booted yet: it stays `pending` until its guest
    /// has started, however long that takes.
    #[serde(default)]
    pub awaiting_boot: bool,
    /// Events scheduled by the operator (`kumo admin schedule-event`).
    #[serde(default)]
    pub events: Vec<ScheduledEvent>,
    /// (cores, threads per core) from the launch's `CpuOptions`; the type's defaults when
    /// absent. The guest gets cores × threads vCPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<(i32, i32)>,
    /// The host name options (`PrivateDnsNameOptions`). Records from before they were kept
    /// read as AWS's defaults: ip-name, no resource-name records.
    #[serde(default)]
    pub dns_names: DnsNames,
    /// Launched from a paravirtual image: it keeps to the types that run one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paravirtual: bool,
    /// Launched from a Windows image: its platform is `windows` (the guest still boots the
    /// Linux base image of its architecture).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub windows: bool,
    /// The placement group it is in: (id, name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement_group: Option<(String, String)>,
    /// Its partition, in a partition placement group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_number: Option<i32>,
    /// When detailed monitoring was last switched (`MonitorInstances`/`UnmonitorInstances`):
    /// it is `pending` or `disabling` for one transition after.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub monitoring_since_ms: i64,
    /// The capacity reservation whose slot it fills while it is pending or running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_reservation_id: Option<String>,
    /// Whether it targets that reservation by id (else it matched an open one).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub capacity_reservation_targeted: bool,
}

/// Which name is an instance's private DNS name and its guest's host name (the resource
/// name `i-….<region>.compute.internal`, or the IP name), and whether the VPC resolver
/// answers the resource name with an A and an AAAA record. The IP name always resolves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsNames {
    pub resource_name: bool,
    pub a_record: bool,
    pub aaaa_record: bool,
}

impl DnsNames {
    /// AWS's name of the host name type.
    pub fn hostname_type(&self) -> &'static str {
        if self.resource_name {
            "resource-name"
        } else {
            "ip-name"
        }
    }
}

/// A scheduled maintenance event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduledEvent {
    pub id: String,
    /// `instance-stop`, `instance-retirement`, `system-reboot`, `instance-reboot` or
    /// `system-maintenance`.
    pub code: String,
    pub description: String,
    pub not_before_ms: i64,
    pub deadline_ms: i64,
    /// When its time came: it stays listed as completed for [`COMPLETED_VISIBLE_MS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_ms: Option<i64>,
    /// Whether the guest has been told (stopped, rebooted): a completed event is acted out
    /// once, by the events worker, whichever read or write completed it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub acted: bool,
}

/// How long a completed event stays in DescribeInstanceStatus.
pub const COMPLETED_VISIBLE_MS: i64 = 7 * 86_400_000;

impl ScheduledEvent {
    /// Events that end with the instance stopped (or, instance-store-backed, terminated),
    /// unless a stop and start moves it first.
    pub fn stops(&self) -> bool {
        matches!(self.code.as_str(), "instance-stop" | "instance-retirement")
    }

    /// Whether the events worker has something to do with it at `now_ms`: it is due to
    /// complete, or completed and not acted out yet.
    pub fn pending(&self, now_ms: i64) -> bool {
        match self.completed_ms {
            None => now_ms >= self.not_before_ms,
            Some(_) => !self.acted,
        }
    }

    /// The description DescribeInstanceStatus shows: AWS marks an event whose time has passed.
    pub fn shown_description(&self) -> String {
        match self.completed_ms {
            Some(_) => format!("[Completed] {}", self.description),
            None => self.description.clone(),
        }
    }

    /// Events that end with the instance rebooted: `system-maintenance` too, as a reboot is
    /// what a guest feels of its host's maintenance.
    pub fn reboots(&self) -> bool {
        matches!(
            self.code.as_str(),
            "instance-reboot" | "system-reboot" | "system-maintenance"
        )
    }
}

impl Record for InstanceRecord {
    const KIND: &'static str = "instance";
    const VERSION: u32 = 1;
    fn id(&self) -> &str {
        &self.id
    }
    fn index(&self) -> Index {
        Index {
            state: Some(self.state.name().to_string()),
            vpc: Some(self.vpc_id.clone()),
            subnet: Some(self.subnet_id.clone()),
            zone: Some(self.zone.clone()),
            ..Index::default()
        }
    }
}

impl InstanceRecord {
    pub fn state(&self) -> State {
        self.state
    }

    /// Detailed monitoring's state: `pending` and `disabling` for one transition after
    /// MonitorInstances and UnmonitorInstances (until [`settle`](Self::settle) ends it), then
    /// `enabled` or `disabled`.
    pub fn monitoring_state(&self) -> &'static str {
        let settling = self.monitoring_since_ms != 0;
        match (self.monitoring, settling) {
            (true, true) => "pending",
            (true, false) => "enabled",
            (false, true) => "disabling",
            (false, false) => "disabled",
        }
    }

    /// Applies what time has done by `now`: transitions (each takes `delay_ms`), scheduled
    /// events whose time has come, and the credit ledger. Returns whether anything changed.
    ///
    /// An event whose time came is completed: a stop or retirement event stops a running
    /// instance (terminates an instance-store-backed one at retirement), as AWS does; a
    /// reboot event leaves the state as it is. The guest is told by the events worker
    /// (the `events` flow), which acts out each completed event once.
    pub fn settle(&mut self, now_ms: i64, delay_ms: i64) -> bool {
        let mut changed = self.settle_transitions(now_ms, delay_ms);
        if self.monitoring_since_ms != 0 && now_ms >= self.monitoring_since_ms + delay_ms {
            self.monitoring_since_ms = 0;
            changed = true;
        }
        let mut due: Vec<ScheduledEvent> = self
            .events
            .iter()
            .filter(|e| e.completed_ms.is_none() && now_ms >= e.not_before_ms)
            .cloned()
            .collect();
        due.sort_by_key(|e| e.not_before_ms);
        for e in due {
            // Whether the guest has anything to feel: a reboot of an instance that is not
            // running, or a stop that changed nothing, is done with as it completes.
            let mut felt = e.reboots() && self.state == State::Running;
            if e.stops() {
                let stops = kumo_model::lifecycle::apply(
                    self.state,
                    kumo_model::lifecycle::Action::ScheduledStop,
                    self.ebs_backed(),
                );
                if let (Ok(kumo_model::lifecycle::Outcome::MoveTo(next)), true) =
                    (stops, e.not_before_ms >= self.since_ms)
                {
                    self.run_credits(e.not_before_ms);
                    self.state = next;
                    self.since_ms = e.not_before_ms;
                    self.transition_reason = "Scheduled stop".into();
                    self.state_reason = Some((
                        "Server.ScheduledStop".into(),
                        "Server.ScheduledStop: Stopped due to scheduled retirement".into(),
                    ));
                    self.settle_transitions(now_ms, delay_ms);
                    felt = true;
                }
            }
            if let Some(x) = self.events.iter_mut().find(|x| x.id == e.id) {
                x.completed_ms = Some(e.not_before_ms);
                x.acted = !felt;
            }
            changed = true;
        }
        let before = self.events.len();
        self.events.retain(|e| {
            e.completed_ms
                .is_none_or(|c| now_ms < c + COMPLETED_VISIBLE_MS)
        });
        changed |= self.events.len() != before;
        changed |= self.run_credits(now_ms);
        changed
    }

    fn settle_transitions(&mut self, now_ms: i64, delay_ms: i64) -> bool {
        let mut changed = false;
        while let Some(next) = self.state().settles_to() {
            if now_ms < self.since_ms + delay_ms || (self.awaiting_boot && next == State::Running) {
                break;
            }
            self.since_ms += delay_ms;
            self.state = next;
            if next == State::Running {
                // A running instance has no state reason, and starts earning credits now.
                self.state_reason = None;
                self.credits_at_ms = self.since_ms;
            }
            changed = true;
        }
        changed
    }

    pub fn ebs_backed(&self) -> bool {
        self.root_device_type == "ebs"
    }

    /// Runs the credit ledger to `now` while the instance runs. The null driver reports an
    /// idle guest, so a running instance earns at its baseline rate.
    pub fn run_credits(&mut self, now_ms: i64) -> bool {
        let (Some(b), Some(mode)) = (
            kumo_model::credits::burst(&self.instance_type),
            self.credit_specification.clone(),
        ) else {
            return false;
        };
        if now_ms <= self.credits_at_ms || self.state() != State::Running {
            return false;
        }
        {
            let mut l = kumo_model::credits::Ledger {
                balance: self.credit_balance,
                surplus: self.credit_surplus,
            };
            l.run(
                &b,
                &mode,
                (now_ms - self.credits_at_ms) as f64 / 60_000.0,
                0.0,
            );
            self.credit_balance = l.balance;
            self.credit_surplus = l.surplus;
        }
        self.credits_at_ms = now_ms;
        true
    }
}

/// How long terminated instances stay visible.
pub const TERMINATED_VISIBLE_MS: i64 = 3_600_000;

fn is_zero(v: &i64) -> bool {
    *v == 0
}

fn disabled() -> String {
    "disabled".into()
}
