//! Scheduled events acted out on the guests. An event completes when its time comes, in
//! whichever read or write settles the instance first ([`InstanceRecord::settle`]); this
//! worker then tells the guest, once: a stop or retirement event stops it (terminates an
//! instance-store-backed one), a reboot or maintenance event reboots it.

use crate::core::error::Fail;
use crate::records::instance::{InstanceRecord, ScheduledEvent};
use crate::Kumo;
use kumo_ec2_wire::RequestContext;
use kumo_model::lifecycle::State;
use kumo_store::{Read, Scope};

/// One round over the guests the driver runs.
pub fn events_tick(k: &Kumo) {
    for (id, (account, region)) in k.compute.owned() {
        if k.compute.driver.is_running(&id) {
            act(k, &id, &account, &region);
        }
    }
}

/// Completes the instance's due events and takes the ones not acted out yet.
fn act(k: &Kumo, id: &str, account: &str, region: &str) {
    let s = Scope { account, region };
    let now = k.now_ms();
    // Most rounds find nothing to do: a read finds that out without taking the store's
    // writer, which the requests and the credits worker need.
    let pending = k.store.read(|v| {
        Ok::<_, Fail>(
            v.get::<InstanceRecord>(s, id)?
                .is_some_and(|r| r.events.iter().any(|e| e.pending(now))),
        )
    });
    if !matches!(pending, Ok(true)) {
        return;
    }
    let mut gone = Vec::new();
    let taken = k.store.write(true, |tx| {
        let Some(mut r) = tx.get::<InstanceRecord>(s, id)? else {
            return Ok(None);
        };
        let before = r.state();
        let changed = r.settle(now, k.options.transition_ms);
        let todo: Vec<ScheduledEvent> = r
            .events
            .iter()
            .filter(|e| e.completed_ms.is_some() && !e.acted)
            .cloned()
            .collect();
        if todo.is_empty() {
            if changed {
                tx.update(s, &r)?;
            }
            return Ok(None);
        }
        for e in r.events.iter_mut() {
            if e.completed_ms.is_some() {
                e.acted = true;
            }
        }
        // What is left to act out took effect when it completed (see `settle`).
        let stopped = todo.iter().any(|e| e.stops());
        if stopped {
            // What an instance gives up as it stops or shuts down, as for a caller's stop.
            let next = if r.ebs_backed() {
                State::Stopping
            } else {
                State::ShuttingDown
            };
            crate::flows::lifecycle::leave(k, tx, s, &mut r, next, &mut gone)?;
        }
        tx.update(s, &r)?;
        let reboot = !stopped && todo.iter().any(|e| e.reboots());
        Ok::<_, Fail>(Some((before, r.state(), reboot)))
    });
    let (before, after, reboot) = match taken {
        Ok(Some(t)) => t,
        Ok(None) => return,
        Err(f) => {
            tracing::error!(instance = id, error = %f.0, "cannot complete the instance's scheduled events");
            return;
        }
    };
    tracing::info!(
        instance = id,
        ?before,
        ?after,
        reboot,
        "scheduled event: acting on the guest"
    );
    let ctx = RequestContext {
        account_id: account.to_string(),
        region: region.to_string(),
        ..RequestContext::default()
    };
    // A guest still running with its record stopped (or gone) is stopped (or destroyed).
    let before = if before == after && !reboot {
        State::Running
    } else {
        before
    };
    crate::flows::boot::after(k, &ctx, &[(id.to_string(), before, after)], reboot, false);
    crate::host::delete_files(k, &gone);
}
