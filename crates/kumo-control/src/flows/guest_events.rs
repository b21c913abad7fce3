//! What a guest does on its own: a reboot boots it again; a power-off is an
//! instance-initiated shutdown, through the lifecycle.

use super::boot::{after, boot};
use crate::core::error::Fail;
use crate::records::instance::InstanceRecord;
use crate::Kumo;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_model::lifecycle::{self, State};
use kumo_store::{Read, Scope};

/// A guest stopped on its own. A reboot boots it again; a power-off is an instance-initiated
/// shutdown, which stops or terminates the instance as its `InstanceInitiatedShutdownBehavior`
/// says.
pub fn guest_event(k: &Kumo, ev: kumo_compute::GuestEvent) {
    let cm = &k.compute;
    if let Some(g) = cm.driver.guest(&ev.id) {
        g.reap();
    }
    let owner = cm
        .owners
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&ev.id)
        .cloned();
    let Some((account, region)) = owner else {
        return;
    };
    let ctx = RequestContext {
        account_id: account.clone(),
        region: region.clone(),
        ..RequestContext::default()
    };
    if ev.reboot {
        boot(k, &ctx, std::slice::from_ref(&ev.id));
        // Terminated, or the whole state reset, while it booted again: it does not run on.
        let s = crate::scope(&ctx);
        let live = k
            .store
            .read(|v| Ok::<_, Fail>(v.get::<InstanceRecord>(s, &ev.id)?))
            .ok()
            .flatten()
            .is_some_and(|r| r.state() == State::Running || r.state() == State::Pending);
        if !live {
            let _ = cm.driver.destroy(&ev.id);
        }
        return;
    }
    match crate::flows::guest_events::guest_shutdown(k, &account, &region, &ev.id) {
        Ok(v) => {
            tracing::info!(instance = %ev.id, state = %v["state"], "instance-initiated shutdown")
        }
        Err(e) => {
            tracing::warn!(instance = %ev.id, error = %e, "cannot record the guest's power-off")
        }
    }
}

/// The guest powers itself off: the instance stops or terminates as its
/// `InstanceInitiatedShutdownBehavior` says.
pub fn guest_shutdown(
    k: &Kumo,
    account: &str,
    region: &str,
    instance: &str,
) -> Result<serde_json::Value, Ec2Error> {
    let s = Scope { account, region };
    let now = k.now_ms();
    let mut gone = Vec::new();
    let state = k
        .store
        .write(true, |tx| {
            let mut r = crate::repo::instance::load(k, tx, s, &[instance.to_string()])?.remove(0);
            let terminate = r.shutdown_behavior == "terminate";
            let next = match lifecycle::apply(
                r.state(),
                lifecycle::Action::GuestShutdown { terminate },
                r.ebs_backed(),
            ) {
                Ok(lifecycle::Outcome::MoveTo(next)) => next,
                Ok(lifecycle::Outcome::NoChange) | Err(_) => {
                    return Err(Fail(Ec2Error::new(
                        "IncorrectInstanceState",
                        format!("The instance '{instance}' is not running."),
                    )))
                }
            };
            r.run_credits(now);
            r.state = next;
            r.since_ms = now;
            r.transition_reason = "Instance initiated shutdown".into();
            r.state_reason = Some((
                "Client.InstanceInitiatedShutdown".into(),
                "Client.InstanceInitiatedShutdown: Instance initiated shutdown".into(),
            ));
            crate::flows::lifecycle::leave(k, tx, s, &mut r, next, &mut gone)?;
            tx.update(s, &r)?;
            Ok(next)
        })
        .map_err(|f: Fail| f.0)?;
    // The guest is down (it powered off, or is told to now).
    let ctx = kumo_ec2_wire::RequestContext {
        account_id: account.to_string(),
        region: region.to_string(),
        ..Default::default()
    };
    after(
        k,
        &ctx,
        &[(instance.to_string(), State::Running, state)],
        false,
        true,
    );
    crate::host::delete_files(k, &gone);
    Ok(serde_json::json!({ "instance_id": instance, "state": state.name() }))
}
