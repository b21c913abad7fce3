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

/// How the host reaches a running instance (`kumo ssh`): its private and public addresses,
/// the host's own address on its link into the instance's VPC (binding to it reaches that
/// VPC even where another VPC on the host overlaps it), its image's login user, and the SSH
/// host keys its guest printed on its console, as cloud-init prints them on EC2.
pub fn reach(k: &Kumo, account: &str, region: &str, instance: &str) -> Result<Value, Ec2Error> {
    let s = Scope { account, region };
    let (r, private, public, image) = k
        .store
        .read(|v| {
            let r = load(k, v, s, &[instance.to_string()])?.remove(0);
            let c = crate::repo::instance::context(v, s, &[&r])?;
            let private = c
                .enis_of(&r)
                .next()
                .and_then(|e| e.addresses.iter().find(|a| a.primary))
                .map(|a| a.addr.clone());
            let public = c.public_ip(&r);
            let image = crate::host::spec::image_name(v, s, &r.image_id)?;
            Ok((r, private, public, image))
        })
        .map_err(|f: Fail| f.0)?;
    if r.state() != State::Running {
        return Err(Ec2Error::new(
            "IncorrectInstanceState",
            format!(
                "The instance '{instance}' is {}, not running.",
                r.state.name()
            ),
        ));
    }
    let console = k.compute.driver.console(&r.id).unwrap_or_default();
    Ok(json!({
        "instance_id": r.id,
        "vpc_id": r.vpc_id,
        "private_ip": private,
        "public_ip": public,
        "source": k.compute.driver.host_source(&r.vpc_id),
        "runs_guests": k.compute.driver.runs_guests(),
        "user": crate::host::spec::default_user(&image),
        "host_keys": host_keys(&String::from_utf8_lossy(&console)),
    }))
}

/// The public host keys of the last `SSH HOST KEY KEYS` block of a console log.
fn host_keys(console: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut inside = false;
    for line in console.lines().map(str::trim) {
        match line {
            "-----BEGIN SSH HOST KEY KEYS-----" => {
                inside = true;
                keys.clear();
            }
            "-----END SSH HOST KEY KEYS-----" => inside = false,
            l if inside && (l.starts_with("ssh-") || l.starts_with("ecdsa-")) => {
                keys.push(l.to_string())
            }
            _ => {}
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_keys_are_read_from_the_last_block_on_the_console() {
        let console = "boot\n-----BEGIN SSH HOST KEY KEYS-----\nssh-ed25519 AAAAold root@a\n-----END SSH HOST KEY KEYS-----\n\
            reboot\n-----BEGIN SSH HOST KEY KEYS-----\necdsa-sha2-nistp256 AAAAe root@a\nssh-ed25519 AAAAnew root@a\n\
            -----END SSH HOST KEY KEYS-----\nssh-rsa AAAAnot-a-key-block\n";
        assert_eq!(
            super::host_keys(console),
            [
                "ecdsa-sha2-nistp256 AAAAe root@a",
                "ssh-ed25519 AAAAnew root@a"
            ]
        );
        assert!(super::host_keys("no keys yet").is_empty());
    }
}
