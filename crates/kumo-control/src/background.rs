//! The control plane's background workers, started in one place: each is a named thread
//! that lives as long as the process and acts through the same [`Kumo`] the requests use.
//!
//! - **boot**: first the instances that were running (or waited for their boot) when the
//!   server last stopped, then launches and starts as they are queued. In that order, an
//!   instance queued while the base image was built boots once, not twice.
//! - **guest events**: guests that power off or reboot themselves.
//! - **credits**: CPU credits follow the guests' real CPU use, every second.
//! - **metrics**: each running guest's `AWS/EC2` metrics, measured once a minute (it looks
//!   every second whose minute has closed).
//! - **events**: scheduled events whose time came stop or reboot their guests, and Run
//!   Commands whose runs ended are stored, every second.
//! - **firewall**: re-renders the VPCs that changes marked ([`crate::firewall_sync`]).
//!
//! With the null driver only the boot worker runs (it records launches as running).

use crate::Kumo;

/// Starts every worker on `k`, a handle to the server's control plane.
pub fn start<H>(k: H) -> std::io::Result<()>
where
    H: AsRef<Kumo> + Clone + Send + 'static,
{
    let real = k.as_ref().compute.driver.runs_guests();
    let queue = k.as_ref().boot_queue();
    spawn("kumo-boot", k.clone(), move |k| {
        k.recover();
        for (account, region, ids) in queue.into_iter().flatten() {
            k.boot_launched(&account, &region, &ids);
        }
    })?;
    if let Some(events) = k.as_ref().guest_events() {
        spawn("kumo-guest-events", k.clone(), move |k| {
            for ev in events {
                k.guest_event(ev);
            }
        })?;
    }
    if real {
        spawn("kumo-credits", k.clone(), |k| loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
            k.credits_tick();
        })?;
        spawn("kumo-metrics", k.clone(), |k| loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
            k.metrics_tick();
        })?;
        spawn("kumo-events", k.clone(), |k| loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
            k.events_tick();
        })?;
        spawn("kumo-firewall", k, |k| k.firewall_worker())?;
    }
    Ok(())
}

fn spawn<H, F>(name: &str, k: H, f: F) -> std::io::Result<()>
where
    H: AsRef<Kumo> + Send + 'static,
    F: FnOnce(&Kumo) + Send + 'static,
{
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || f(k.as_ref()))
        .map(|_| ())
}
