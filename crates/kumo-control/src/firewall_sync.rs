//! Firewall sync: a change marks the VPCs it touches, and one worker re-renders only those.
//!
//! A security-group rule, an interface's groups, an Elastic IP or an instance's state all
//! change what a VPC's firewall lets through (and what its instances' metadata says). The
//! request that made the change marks the VPCs it reached (or its whole account and region,
//! for a change whose reach is wider: an Elastic IP moving between VPCs) and waits until the
//! worker has applied a render that includes its mark, so a caller that connects right after
//! its AuthorizeSecurityGroupIngress answered finds the port open.
//!
//! Marks that arrive while the worker renders are merged: fifty requests changing one VPC's
//! groups at once cost one or two renders of that VPC, not fifty, and a VPC nobody touched is
//! never rendered. Without a worker (a control plane driven in-process, with no background
//! started), [`FirewallSync::mark`] answers `None` and the caller renders inline, as before.

use crate::core::error::Fail;
use crate::records::instance::InstanceRecord;
use crate::Kumo;
use kumo_ec2_wire::RequestContext;
use kumo_store::Read;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// What a scope (account, region) needs re-rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Every VPC of the scope.
    Scope,
    /// These VPCs only.
    Vpcs(BTreeSet<String>),
}

impl Reach {
    fn merge(&mut self, other: Reach) {
        match (&mut *self, other) {
            (Reach::Scope, _) => {}
            (_, Reach::Scope) => *self = Reach::Scope,
            (Reach::Vpcs(a), Reach::Vpcs(b)) => a.extend(b),
        }
    }

    /// The VPCs to render: `None` for all of the scope's.
    pub fn only(&self) -> Option<Vec<String>> {
        match self {
            Reach::Scope => None,
            Reach::Vpcs(v) => Some(v.iter().cloned().collect()),
        }
    }
}

/// One round of work for the worker: what each scope needs, and the last mark it covers.
pub struct Round {
    pub upto: u64,
    pub work: Vec<((String, String), Reach)>,
}

#[derive(Default)]
struct Inner {
    marks: HashMap<(String, String), Reach>,
    /// The number of the last mark made.
    next: u64,
    /// Every mark up to this one is applied.
    applied: u64,
    worker: bool,
}

#[derive(Default)]
pub struct FirewallSync {
    inner: Mutex<Inner>,
    /// Wakes the worker: a mark was made.
    marked: Condvar,
    /// Wakes waiting requests: a round was applied.
    applied: Condvar,
}

impl FirewallSync {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// From now on a worker takes the rounds ([`FirewallSync::take`]).
    pub fn worker_started(&self) {
        self.lock().worker = true;
    }

    /// Marks what a change reached in `scope`; its ticket for [`FirewallSync::wait`], or
    /// `None` when no worker runs and the caller renders itself.
    pub fn mark(&self, scope: (String, String), reach: Reach) -> Option<u64> {
        let mut g = self.lock();
        if !g.worker {
            return None;
        }
        g.next += 1;
        let ticket = g.next;
        match g.marks.get_mut(&scope) {
            Some(r) => r.merge(reach),
            None => {
                g.marks.insert(scope, reach);
            }
        }
        drop(g);
        self.marked.notify_one();
        Some(ticket)
    }

    /// Waits until the mark `ticket` was applied, at most `timeout`; whether it was.
    pub fn wait(&self, ticket: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = self.lock();
        while g.applied < ticket {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            g = self
                .applied
                .wait_timeout(g, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }

    /// The worker's next round: every mark made so far, merged per scope. Blocks until
    /// there is one.
    pub fn take(&self) -> Round {
        let mut g = self.lock();
        while g.marks.is_empty() {
            g = self.marked.wait(g).unwrap_or_else(|p| p.into_inner());
        }
        let mut work: Vec<_> = g.marks.drain().collect();
        work.sort_by(|a, b| a.0.cmp(&b.0));
        Round { upto: g.next, work }
    }

    /// The worker applied a round: its marks' requests go on.
    pub fn done(&self, round_upto: u64) {
        let mut g = self.lock();
        g.applied = g.applied.max(round_upto);
        drop(g);
        self.applied.notify_all();
    }
}

/// The VPCs of these instances, for [`Kumo::sync_firewall`] (the scope when one cannot be
/// read: better a render too many than a firewall left behind).
pub fn reach_of_instances(k: &Kumo, ctx: &RequestContext, ids: &[String]) -> Reach {
    let s = crate::scope(ctx);
    let vpcs = k.store.read(|v| {
        let mut out = std::collections::BTreeSet::new();
        for id in ids {
            if let Some(r) = v.get::<InstanceRecord>(s, id)? {
                out.insert(r.vpc_id);
            }
        }
        Ok::<_, Fail>(out)
    });
    vpcs.map(Reach::Vpcs).unwrap_or(Reach::Scope)
}

/// The VPC of a network interface, as [`reach_of_instances`].
pub fn reach_of_eni(k: &Kumo, ctx: &RequestContext, id: &str) -> Reach {
    let s = crate::scope(ctx);
    k.store
        .read(|v| Ok::<_, Fail>(v.get::<crate::records::net::EniRecord>(s, id)?))
        .ok()
        .flatten()
        .map(|e| Reach::Vpcs([e.vpc_id].into()))
        .unwrap_or(Reach::Scope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn scope(a: &str) -> (String, String) {
        (a.to_string(), "eu-west-1".to_string())
    }

    fn vpcs(v: &[&str]) -> Reach {
        Reach::Vpcs(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn without_a_worker_the_caller_renders() {
        let s = FirewallSync::default();
        assert_eq!(s.mark(scope("1"), Reach::Scope), None);
    }

    #[test]
    fn marks_made_during_a_round_merge_into_the_next() {
        let s = FirewallSync::default();
        s.worker_started();
        let t1 = s.mark(scope("1"), vpcs(&["vpc-a"])).unwrap();
        let round = s.take();
        assert_eq!(round.upto, t1);
        assert_eq!(round.work, vec![(scope("1"), vpcs(&["vpc-a"]))]);
        // While the worker renders, three changes arrive: two VPCs of one account, and a
        // scope-wide change of another that absorbs its VPC mark.
        let t2 = s.mark(scope("1"), vpcs(&["vpc-b"])).unwrap();
        let t3 = s.mark(scope("1"), vpcs(&["vpc-a"])).unwrap();
        s.mark(scope("2"), vpcs(&["vpc-z"])).unwrap();
        let t5 = s.mark(scope("2"), Reach::Scope).unwrap();
        assert!(!s.wait(t2, Duration::from_millis(10)), "not applied yet");
        s.done(round.upto);
        assert!(s.wait(t1, Duration::ZERO));
        let round = s.take();
        assert_eq!(round.upto, t5);
        assert_eq!(
            round.work,
            vec![
                (scope("1"), vpcs(&["vpc-a", "vpc-b"])),
                (scope("2"), Reach::Scope)
            ]
        );
        assert_eq!(
            round.work[0].1.only(),
            Some(vec!["vpc-a".into(), "vpc-b".into()])
        );
        assert_eq!(round.work[1].1.only(), None);
        s.done(round.upto);
        assert!(s.wait(t3, Duration::ZERO) && s.wait(t5, Duration::ZERO));
    }

    #[test]
    fn concurrent_changes_cost_fewer_rounds_than_changes() {
        let s = Arc::new(FirewallSync::default());
        s.worker_started();
        let rounds = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let worker = {
            let (s, rounds) = (s.clone(), rounds.clone());
            std::thread::spawn(move || loop {
                let r = s.take();
                if r.work.iter().any(|(sc, _)| sc.0 == "stop") {
                    s.done(r.upto);
                    return;
                }
                rounds.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                // A render takes a while: marks pile up meanwhile.
                std::thread::sleep(Duration::from_millis(20));
                s.done(r.upto);
            })
        };
        let changers: Vec<_> = (0..50)
            .map(|i| {
                let s = s.clone();
                std::thread::spawn(move || {
                    let t = s
                        .mark(scope("1"), vpcs(&[&format!("vpc-{}", i % 3)]))
                        .unwrap();
                    assert!(
                        s.wait(t, Duration::from_secs(10)),
                        "every change is applied"
                    );
                })
            })
            .collect();
        for c in changers {
            c.join().unwrap();
        }
        let t = s.mark(scope("stop"), Reach::Scope).unwrap();
        assert!(s.wait(t, Duration::from_secs(10)));
        worker.join().unwrap();
        let n = rounds.load(std::sync::atomic::Ordering::SeqCst);
        assert!((1..50).contains(&n), "50 changes took {n} rounds");
    }
}
