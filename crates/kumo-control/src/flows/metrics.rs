//! The `AWS/EC2` metrics of the instances whose guests run here, measured, not made up: CPU
//! time from the guest's cgroup, bytes and packets from the counters of its links.
//!
//! Once a minute (by Kumo's clock, so the test clock moves it too) each running guest is
//! read, and what it did since the last reading becomes one sample:
//! - `CPUUtilization` (Percent: CPU time over the vCPUs' time), `NetworkIn`/`NetworkOut`
//!   (Bytes) and `NetworkPacketsIn`/`NetworkPacketsOut` (Count), dimension `InstanceId`.
//!   With detailed monitoring each minute is its own data point, and is also added to the
//!   `InstanceType`, `ImageId` and all-instances aggregates; with basic monitoring the
//!   samples of five minutes build one data point, stamped at its start (SampleCount 5 once
//!   complete), as AWS's Nitro hosts do.
//! - `StatusCheckFailed`, `StatusCheckFailed_Instance`, `StatusCheckFailed_System`: 0 each
//!   minute the guest runs, whatever the monitoring.
//! - Burstable types, every five minutes whatever the monitoring: `CPUCreditUsage` (the
//!   vCPU-minutes the guest used), `CPUCreditBalance`, and in `unlimited` mode
//!   `CPUSurplusCreditBalance` and `CPUSurplusCreditsCharged` (Kumo charges no surplus: 0).
//!
//! - `DiskReadOps`/`DiskWriteOps`/`DiskReadBytes`/`DiskWriteBytes` of the instance store
//!   (AWS counts only instance store there), where the instance has one.
//! - `AWS/EBS`, dimension `VolumeId`, a point a minute for each attached volume (as AWS now
//!   sends for every volume type): ops, bytes, total read and write time, idle time and
//!   queue length, from the kernel's statistics of the volume's loop device (or QEMU's for
//!   a disk a `vm` guest's QEMU opens itself); and for gp2 below 3,000 IOPS, st1 and sc1,
//!   `BurstBalance` (Percent): AWS's bucket for the volume (gp2's 5.4 million credits, st1's
//!   and sc1's bytes) run on what the device counted, full when the sampler first sees the
//!   volume attached, as the throttle that enforces the same bucket is when its export
//!   starts (QEMU does not expose its own bucket's level).
//!
//! The null driver runs no guests, so its instances have no `AWS/EC2` or `AWS/EBS` metrics.

use crate::core::error::Fail;
use crate::host::Reading;
use crate::metrics::record;
use crate::records::instance::InstanceRecord;
use crate::records::volume::VolumeRecord;
use crate::Kumo;
use kumo_model::lifecycle::State;
use kumo_model::metrics::Stat;
use kumo_store::{Read, Scope};
use std::time::Instant;

const NS: &str = "AWS/EC2";

/// One round: every running guest whose minute has closed is measured and published.
pub fn metrics_tick(k: &Kumo) {
    let cm = &k.compute;
    let minute = k.now_ms().div_euclid(60_000);
    for (id, (account, region)) in cm.owned() {
        let guest = cm.driver.guest(&id).filter(|g| g.is_running());
        let Some(guest) = guest else {
            cm.readings
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            continue;
        };
        let last = cm
            .readings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned();
        if last.as_ref().is_some_and(|l| l.minute == minute) {
            continue;
        }
        let Some(cpu_ns) = guest.cpu_usage_ns() else {
            continue;
        };
        let net = guest.net_counters();
        let disks = guest.disk_counters();
        let at = Instant::now();
        let mut next = Reading {
            minute,
            at,
            cpu_ns,
            net,
            disks,
            // Carried on unless this minute's sample says otherwise.
            buckets: last.as_ref().map(|l| l.buckets.clone()).unwrap_or_default(),
            window_credits: last.as_ref().map_or(0.0, |l| l.window_credits),
        };
        let attached = &next.disks.volumes;
        next.buckets
            .retain(|v, _| attached.iter().any(|(a, _)| a == v));
        if let Some(l) = last {
            let s = Scope {
                account: &account,
                region: &region,
            };
            match publish(k, s, &id, &l, &mut next) {
                Ok(()) => {}
                Err(f) => tracing::warn!(instance = %id, error = %f.0, "cannot store metrics"),
            }
        }
        cm.readings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, next);
    }
}

/// The sample of the minute `last` opened, up to `next`.
fn publish(k: &Kumo, s: Scope, id: &str, last: &Reading, next: &mut Reading) -> Result<(), Fail> {
    let elapsed = next.at.duration_since(last.at).as_secs_f64();
    if elapsed <= 0.0 {
        return Ok(());
    }
    let busy_s = next.cpu_ns.saturating_sub(last.cpu_ns) as f64 / 1e9;
    let t = last.minute * 60;
    let now = k.now_ms();
    k.store.write(true, |tx| {
        let Some(mut r) = tx.get::<InstanceRecord>(s, id)? else {
            return Ok(());
        };
        r.settle(now, k.options.transition_ms);
        if r.state() != State::Running {
            return Ok(());
        }
        let vcpus = f64::from(crate::host::spec::vcpus(&r));
        let cpu = (busy_s / (elapsed * vcpus) * 100.0).clamp(0.0, 100.0);
        let detailed = r.monitoring_state() == "enabled";
        let at = if detailed { t } else { t.div_euclid(300) * 300 };
        let mut metrics: Vec<(&str, &str, f64)> = vec![("CPUUtilization", "Percent", cpu)];
        let d = |x: u64, y: u64| x.saturating_sub(y) as f64;
        if let (Some(a), Some(b)) = (last.net, next.net) {
            metrics.extend([
                ("NetworkIn", "Bytes", d(b.bytes_in, a.bytes_in)),
                ("NetworkOut", "Bytes", d(b.bytes_out, a.bytes_out)),
                ("NetworkPacketsIn", "Count", d(b.packets_in, a.packets_in)),
                (
                    "NetworkPacketsOut",
                    "Count",
                    d(b.packets_out, a.packets_out),
                ),
            ]);
        }
        // Instance store (the only disks the Disk* metrics count).
        if let (Some(a), Some(b)) = (last.disks.instance_store, next.disks.instance_store) {
            metrics.extend([
                ("DiskReadOps", "Count", d(b.read_ops, a.read_ops)),
                ("DiskWriteOps", "Count", d(b.write_ops, a.write_ops)),
                ("DiskReadBytes", "Bytes", d(b.read_bytes, a.read_bytes)),
                ("DiskWriteBytes", "Bytes", d(b.write_bytes, a.write_bytes)),
            ]);
        }
        // EBS: each attached volume's device, a point a minute whatever the monitoring.
        for (vol, b) in &next.disks.volumes {
            let Some((_, a)) = last.disks.volumes.iter().find(|(v, _)| v == vol) else {
                continue;
            };
            let busy_s = d(b.busy_ms, a.busy_ms) / 1000.0;
            let ebs = [
                ("VolumeReadOps", "Count", d(b.read_ops, a.read_ops)),
                ("VolumeWriteOps", "Count", d(b.write_ops, a.write_ops)),
                ("VolumeReadBytes", "Bytes", d(b.read_bytes, a.read_bytes)),
                ("VolumeWriteBytes", "Bytes", d(b.write_bytes, a.write_bytes)),
                (
                    "VolumeTotalReadTime",
                    "Seconds",
                    d(b.read_time_ms, a.read_time_ms) / 1000.0,
                ),
                (
                    "VolumeTotalWriteTime",
                    "Seconds",
                    d(b.write_time_ms, a.write_time_ms) / 1000.0,
                ),
                (
                    "VolumeIdleTime",
                    "Seconds",
                    (elapsed - busy_s).clamp(0.0, elapsed),
                ),
                (
                    "VolumeQueueLength",
                    "Count",
                    d(b.queue_ms, a.queue_ms) / 1000.0 / elapsed,
                ),
            ];
            let dims = [("VolumeId".to_string(), vol.clone())];
            for (name, unit, v) in ebs {
                record(
                    tx,
                    s,
                    "AWS/EBS",
                    name,
                    &dims,
                    &[(t, unit, Stat::value(v, 1.0))],
                    now,
                )?;
            }
            // BurstBalance: AWS's bucket for the volume's type and size, run on the
            // operations and bytes its device counted.
            let Some(v) = tx.get::<VolumeRecord>(s, vol)? else {
                continue;
            };
            let perf = kumo_model::ebs::performance(&v.volume_type, v.size, v.iops, v.throughput);
            if let Some(bucket) = perf.bucket() {
                let level = last.buckets.get(vol).copied().unwrap_or(bucket.capacity);
                let ops = d(b.read_ops, a.read_ops) + d(b.write_ops, a.write_ops);
                let bytes = d(b.read_bytes, a.read_bytes) + d(b.write_bytes, a.write_bytes);
                let level = bucket.run(level, elapsed, ops, bytes);
                next.buckets.insert(vol.clone(), level);
                let pct = level / bucket.capacity * 100.0;
                record(
                    tx,
                    s,
                    "AWS/EBS",
                    "BurstBalance",
                    &dims,
                    &[(t, "Percent", Stat::value(pct, 1.0))],
                    now,
                )?;
            }
        }
        let by_instance = [("InstanceId".to_string(), r.id.clone())];
        let mut groups: Vec<Vec<(String, String)>> = vec![by_instance.to_vec()];
        if detailed {
            groups.push(vec![("InstanceType".into(), r.instance_type.clone())]);
            groups.push(vec![("ImageId".into(), r.image_id.clone())]);
            groups.push(Vec::new());
        }
        for dims in &groups {
            for (name, unit, v) in &metrics {
                record(
                    tx,
                    s,
                    NS,
                    name,
                    dims,
                    &[(at, unit, Stat::value(*v, 1.0))],
                    now,
                )?;
            }
        }
        for name in [
            "StatusCheckFailed",
            "StatusCheckFailed_Instance",
            "StatusCheckFailed_System",
        ] {
            record(
                tx,
                s,
                NS,
                name,
                &by_instance,
                &[(t, "Count", Stat::value(0.0, 1.0))],
                now,
            )?;
        }
        // CPU credits: the window's use, published when its five minutes are over.
        if let Some(mode) = r.credit_specification.clone() {
            let used = last.window_credits + busy_s / 60.0;
            let window = last.minute.div_euclid(5);
            if next.minute.div_euclid(5) == window {
                next.window_credits = used;
            } else {
                next.window_credits = 0.0;
                let w = window * 300;
                let mut credit = vec![
                    ("CPUCreditUsage", used),
                    ("CPUCreditBalance", r.credit_balance),
                ];
                if mode == "unlimited" {
                    credit.push(("CPUSurplusCreditBalance", r.credit_surplus));
                    credit.push(("CPUSurplusCreditsCharged", 0.0));
                }
                for (name, v) in credit {
                    record(
                        tx,
                        s,
                        NS,
                        name,
                        &by_instance,
                        &[(w, "Count", Stat::value(v, 1.0))],
                        now,
                    )?;
                }
            }
        }
        Ok::<_, Fail>(())
    })
}
