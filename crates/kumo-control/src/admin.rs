//! The operator's side: scheduled events, a guest powering itself off, the credit ledger, and
//! a test clock. Reached through `kumo admin …`, never through the EC2 API.

use crate::core::error::Fail;
use crate::core::ids::new_id;
use crate::records::instance::ScheduledEvent;
use crate::repo::instance::load;
use crate::Kumo;
use kumo_ec2_wire::{DateTime, Ec2Error};
use kumo_model::lifecycle::State;
use kumo_store::Scope;
use serde_json::{json, Value};

const EVENT_CODES: &[&str] = &[
    "instance-stop",
    "instance-retirement",
    "system-reboot",
    "instance-reboot",
    "system-maintenance",
];

/// Schedules an event `in_secs` from now; returns it as DescribeInstanceStatus will show it.
pub fn schedule_event(
    k: &Kumo,
    account: &str,
    region: &str,
    instance: &str,
    code: &str,
    in_secs: i64,
) -> Result<Value, Ec2Error> {
    if !EVENT_CODES.contains(&code) {
        return Err(Ec2Error::invalid_value(format!(
            "Unknown event code {code}; expected one of {}.",
            EVENT_CODES.join(", ")
        )));
    }
    let s = Scope { account, region };
    let now = k.now_ms();
    let at = now + in_secs.max(0) * 1000;
    let description = match code {
        "instance-stop" => "The instance is running on degraded hardware",
        "instance-retirement" => "The instance is scheduled for retirement",
        "system-reboot" => "scheduled reboot",
        "instance-reboot" => "scheduled reboot",
        _ => "scheduled maintenance",
    };
    let event = ScheduledEvent {
        id: new_id("instance-event"),
        code: code.to_string(),
        description: description.to_string(),
        not_before_ms: at,
        deadline_ms: at,
        completed_ms: None,
        acted: false,
    };
    k.store
        .write(true, |tx| {
            let mut r = load(k, tx, s, &[instance.to_string()])?.remove(0);
            if !matches!(r.state(), State::Running | State::Pending) {
                return Err(Fail(Ec2Error::new(
                    "IncorrectInstanceState",
                    format!("The instance '{instance}' is not running."),
                )));
            }
            r.events.push(event.clone());
            tx.update(s, &r)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)?;
    Ok(json!({
        "instance_id": instance,
        "instance_event_id": event.id,
        "code": event.code,
        "not_before": DateTime(at).to_iso8601(),
    }))
}

/// Moves the test clock forward (servers started with `--test-clock` only).
pub fn advance_clock(k: &Kumo, secs: i64) -> Result<Value, Ec2Error> {
    if !k.options.test_clock {
        return Err(Ec2Error::new(
            "OperationNotPermitted",
            "The clock can only be advanced on a server started with --test-clock.",
        ));
    }
    let off = k
        .clock_offset
        .fetch_add(secs.max(0) * 1000, std::sync::atomic::Ordering::SeqCst)
        + secs.max(0) * 1000;
    Ok(json!({ "offset_seconds": off / 1000, "now": DateTime(k.now_ms()).to_iso8601() }))
}
