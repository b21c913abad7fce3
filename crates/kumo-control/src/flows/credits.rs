//! The CPU credit ledgers of burstable instances, from the CPU time their guests really use.

use crate::core::error::Fail;
use crate::records::instance::InstanceRecord;
use crate::Kumo;
use kumo_model::lifecycle::State;
use kumo_store::{Read, Scope};

/// One round of the CPU credit ledgers of the burstable instances the driver runs: spending
/// follows the CPU time the guest really used since the last round, earning the baseline; a
/// standard-mode instance whose balance reaches zero is capped at its baseline, and gets its
/// full vCPUs back once it has credits again (or runs unlimited).
pub fn credits_tick(k: &Kumo) {
    let cm = &k.compute;
    for (id, (account, region)) in k.compute.owned() {
        if !cm.driver.is_running(&id) {
            cm.cpu.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            continue;
        }
        let Some(used) = cm.driver.guest(&id).and_then(|g| g.cpu_usage_ns()) else {
            continue;
        };
        let at = std::time::Instant::now();
        let last = cm
            .cpu
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .copied();
        let capped = last.is_some_and(|l| l.2);
        let Some((prev_used, prev_at, _)) = last else {
            cm.cpu
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id, (used, at, false));
            continue;
        };
        let elapsed = at.duration_since(prev_at).as_secs_f64();
        if elapsed <= 0.0 {
            continue;
        }
        // Percent of one vCPU (a busy core is 100).
        let usage_pct = used.saturating_sub(prev_used) as f64 / 1e9 / elapsed * 100.0;
        let s = Scope {
            account: &account,
            region: &region,
        };
        let now = k.now_ms();
        let throttle = k.store.write(true, |tx| {
            let Some(mut r) = tx.get::<InstanceRecord>(s, &id)? else {
                return Ok(None);
            };
            let (Some(b), Some(mode)) = (
                kumo_model::credits::burst(&r.instance_type),
                r.credit_specification.clone(),
            ) else {
                return Ok(None);
            };
            // Earnings at the baseline up to now (and any state change time has made)...
            r.settle(now, k.options.transition_ms);
            if r.state() != State::Running {
                tx.update(s, &r)?;
                return Ok(None);
            }
            // ... then what the guest really used since the last round.
            let mut l = kumo_model::credits::Ledger {
                balance: r.credit_balance,
                surplus: r.credit_surplus,
            };
            l.spend(&mode, elapsed / 60.0, usage_pct);
            r.credit_balance = l.balance;
            r.credit_surplus = l.surplus;
            r.cpu_usage_pct = usage_pct;
            tx.update(s, &r)?;
            // Held at the baseline (the vCPUs' baseline share, as a fraction of one core) once
            // the balance is spent; let go once a whole credit is banked again, so that an
            // instance earning exactly what it spends stays at its baseline instead of
            // flapping between rounds.
            let hold = mode == "standard"
                && if capped {
                    l.balance < 1.0
                } else {
                    l.throttled(&mode)
                };
            Ok::<_, Fail>(Some(hold.then(|| b.baseline_pct / 100.0 * b.vcpus as f64)))
        });
        let cap = match throttle {
            Ok(Some(cap)) => cap,
            Ok(None) => None,
            Err(f) => {
                tracing::warn!(instance = %id, error = %f.0, "cannot run the credit ledger");
                continue;
            }
        };
        if cap.is_some() != capped {
            let capping = cm
                .driver
                .guest(&id)
                .ok_or_else(|| kumo_compute::ComputeError::Unknown(id.clone()))
                .and_then(|g| g.set_cpu_cap(cap));
            match capping {
                Ok(()) => {
                    tracing::info!(instance = %id, cap = ?cap, "CPU credits: {}", if cap.is_some() { "out of credits, held at the baseline" } else { "credits again, full CPU" })
                }
                Err(e) => tracing::warn!(instance = %id, error = %e, "cannot cap the CPU"),
            }
        }
        cm.cpu
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, (used, at, cap.is_some()));
    }
}
