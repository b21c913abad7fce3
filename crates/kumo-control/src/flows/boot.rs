//! Boots and the lifecycle's effects on guests: the boot queue and recovery at start, a
//! launch's or a start's boot (eight guests at a time), and what the driver does after each
//! lifecycle change has committed. Under the null driver nothing boots.

use crate::core::error::Fail;
use crate::firewall_sync::reach_of_instances;
use crate::host::spec::spec;
use crate::records::instance::InstanceRecord;
use crate::Kumo;
use kumo_ec2_wire::RequestContext;
use kumo_model::lifecycle::{self, Action, Outcome, State};
use kumo_store::Read;

/// Boots instances that just launched or started. One that cannot boot is terminated, with
/// AWS's internal-error reason, rather than left pretending to run.
pub fn boot(k: &Kumo, ctx: &RequestContext, ids: &[String]) {
    let cm = &k.compute;
    // The null driver's instances have no guest to boot: their state is the API's alone.
    if !cm.driver.runs_guests() {
        return;
    }
    let one = |id: &String| {
        cm.owners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), (ctx.account_id.clone(), ctx.region.clone()));
        let started = spec(k, cm, ctx, id)
            .map_err(|f| f.0.to_string())
            .and_then(|sp| cm.driver.start(&sp).map_err(|e| e.to_string()));
        if let Err(e) = started {
            tracing::error!(instance = %id, error = %e, "instance failed to boot; terminating it");
            fail_launch(k, ctx, id);
        }
    };
    // Each guest boots under its own lock in the driver, so a launch's instances boot side
    // by side: a boot mostly waits on the processes that set its guest up.
    for chunk in ids.chunks(PARALLEL_BOOTS) {
        if chunk.len() == 1 {
            one(&chunk[0]);
            continue;
        }
        std::thread::scope(|s| {
            for id in chunk {
                s.spawn(|| one(id));
            }
        });
    }
    if !ids.is_empty() {
        k.sync_firewall(ctx, reach_of_instances(k, ctx, ids));
    }
}

/// How many guests of one launch boot at once.
pub(crate) const PARALLEL_BOOTS: usize = 8;

pub(crate) fn fail_launch(k: &Kumo, ctx: &RequestContext, id: &str) {
    let s = crate::scope(ctx);
    let now = k.now_ms();
    let mut gone = Vec::new();
    let r = k.store.write(true, |tx| {
        let Some(mut r) = tx.get::<InstanceRecord>(s, id)? else {
            return Ok(());
        };
        let Ok(Outcome::MoveTo(next)) = lifecycle::apply(r.state(), Action::LaunchFailed, true)
        else {
            // Stopped or terminated meanwhile: nothing left to fail.
            return Ok(());
        };
        crate::flows::lifecycle::leave(k, tx, s, &mut r, State::ShuttingDown, &mut gone)?;
        r.state = next;
        r.since_ms = now;
        r.state_reason = Some((
            "Server.InternalError".into(),
            "Server.InternalError: Internal error on launch".into(),
        ));
        tx.update(s, &r)?;
        Ok::<_, Fail>(())
    });
    if r.is_ok() {
        crate::host::delete_files(k, &gone);
    }
}

/// Tells the driver about lifecycle changes that committed: `(instance, from, to)`.
pub fn after(
    k: &Kumo,
    ctx: &RequestContext,
    changes: &[(String, State, State)],
    reboot: bool,
    force: bool,
) {
    let cm = &k.compute;
    let mut starts = Vec::new();
    for (id, before, after) in changes {
        let result = match after {
            _ if reboot => cm.driver.guest(id).map_or(Ok(()), |g| g.reboot()),
            State::Stopping | State::Stopped if *before != *after => cm.driver.stop(id, force),
            State::ShuttingDown | State::Terminated if *before != *after => cm.driver.destroy(id),
            State::Pending | State::Running
                if matches!(before, State::Stopped | State::Stopping) =>
            {
                starts.push(id.clone());
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            tracing::error!(instance = %id, error = %e, "the driver failed a lifecycle change");
        }
    }
    // Booting refreshes the security groups of the scope; without a boot, refresh here.
    if starts.is_empty() {
        if !changes.is_empty() {
            let ids: Vec<String> = changes.iter().map(|(id, _, _)| id.clone()).collect();
            k.sync_firewall(ctx, reach_of_instances(k, ctx, &ids));
        }
    } else if !cm.image.is_ready() {
        // Recorded as awaiting their boot (see `instance_actions`): they stay pending in the
        // queue until the base image is built.
        queue_boot(k, ctx, starts);
    } else {
        boot(k, ctx, &starts);
    }
}

/// At start: boots again every instance the store says runs (the server stopped them when it
/// stopped, or it crashed and its sweep removed them). Stopped instances stay stopped.
pub fn recover(k: &Kumo) {
    let cm = &k.compute;
    if !cm.driver.runs_guests() {
        return;
    }
    cm.image.wait();
    let found = match k.store.scan_states("instance", &["pending", "running"]) {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "cannot list the instances to restart");
            return;
        }
    };
    for (account, region, id) in found {
        let ctx = RequestContext {
            account_id: account,
            region,
            ..RequestContext::default()
        };
        let s = crate::scope(&ctx);
        let launched = k
            .store
            .read(|v| Ok::<_, Fail>(v.get::<InstanceRecord>(s, &id)?))
            .ok()
            .flatten()
            .is_some_and(|r| r.awaiting_boot);
        if launched {
            tracing::info!(instance = %id, "booting an instance that was waiting for its boot");
            // Never booted yet: it becomes running once it has.
            boot_launched(k, &ctx.account_id, &ctx.region, std::slice::from_ref(&id));
        } else {
            tracing::info!(instance = %id, "restarting an instance that was running");
            boot(k, &ctx, std::slice::from_ref(&id));
        }
    }
}

/// Hands a launch's instances to the boot thread; boots them here if there is none.
pub fn queue_boot(k: &Kumo, ctx: &RequestContext, ids: Vec<String>) {
    let cm = &k.compute;
    let sent = cm
        .boots
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map(|tx| {
            tx.send((ctx.account_id.clone(), ctx.region.clone(), ids.clone()))
                .is_ok()
        });
    if sent != Some(true) {
        boot_launched(k, &ctx.account_id, &ctx.region, &ids);
    }
}

/// The boot thread's queue, taken once.
pub fn boot_queue(k: &Kumo) -> Option<std::sync::mpsc::Receiver<(String, String, Vec<String>)>> {
    k.compute
        .boot_queue
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
}

/// Boots launched instances that still wait for it, and marks each `running` from the moment
/// its guest started. One terminated meanwhile is not booted (or is destroyed at once if the
/// termination raced the boot).
pub fn boot_launched(k: &Kumo, account: &str, region: &str, ids: &[String]) {
    let cm = &k.compute;
    // Nothing boots under the null driver: its instances never wait for a boot.
    if !cm.driver.runs_guests() {
        return;
    }
    cm.image.wait();
    let ctx = RequestContext {
        account_id: account.to_string(),
        region: region.to_string(),
        ..RequestContext::default()
    };
    let s = crate::scope(&ctx);
    // One read for the whole launch.
    let todo: Vec<String> = k
        .store
        .read(|v| {
            let mut todo = Vec::new();
            for id in ids {
                let waits = v
                    .get::<InstanceRecord>(s, id)?
                    .is_some_and(|r| r.awaiting_boot && r.state() == State::Pending);
                if waits {
                    todo.push(id.clone());
                }
            }
            Ok::<_, Fail>(todo)
        })
        .unwrap_or_default();
    boot(k, &ctx, &todo);
    for id in &todo {
        if !cm.driver.is_running(id) {
            continue;
        }
        let now = k.now_ms();
        let still = k.store.write(true, |tx| {
            let Some(mut r) = tx.get::<InstanceRecord>(s, id)? else {
                return Ok(false);
            };
            if r.state() != State::Pending || !r.awaiting_boot {
                return Ok(false);
            }
            r.awaiting_boot = false;
            r.since_ms = now;
            tx.update(s, &r)?;
            Ok::<_, Fail>(true)
        });
        if !matches!(still, Ok(true)) {
            // Terminated (or stopped) while it booted: it does not run on.
            let _ = cm.driver.destroy(id);
        }
    }
}
