//! CPU credits of burstable (T-family) instances, as AWS documents them: a baseline per vCPU,
//! credits earned at the baseline rate (one credit is one vCPU-minute at 100 %), at most 24
//! hours of earnings banked, launch credits for T2 in standard mode, and in unlimited mode
//! surplus credits when the balance runs dry.

/// A burstable type's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Burst {
    /// `t2`, `t3`, `t3a` or `t4g`.
    pub family: &'static str,
    pub vcpus: u32,
    /// Baseline utilisation per vCPU, in percent.
    pub baseline_pct: f64,
}

/// The burstable figures of a type, `None` for other types.
pub fn burst(instance_type: &str) -> Option<Burst> {
    let (family, size) = instance_type.split_once('.')?;
    let family: &'static str = match family {
        "t2" => "t2",
        "t3" => "t3",
        "t3a" => "t3a",
        "t4g" => "t4g",
        _ => return None,
    };
    let t2 = family == "t2";
    let (vcpus, baseline_pct) = match size {
        "nano" => (if t2 { 1 } else { 2 }, 5.0),
        "micro" => (if t2 { 1 } else { 2 }, 10.0),
        "small" => (if t2 { 1 } else { 2 }, 20.0),
        "medium" => (2, 20.0),
        "large" => (2, 30.0),
        "xlarge" => (4, if t2 { 22.5 } else { 40.0 }),
        "2xlarge" => (8, if t2 { 17.0 } else { 40.0 }),
        _ => return None,
    };
    Some(Burst {
        family,
        vcpus,
        baseline_pct,
    })
}

/// The family a `GetDefaultCreditSpecification` names, if burstable.
pub fn is_family(f: &str) -> bool {
    matches!(f, "t2" | "t3" | "t3a" | "t4g")
}

/// AWS's default credit mode per family: T2 standard, later families unlimited.
pub fn default_mode(family: &str) -> &'static str {
    if family == "t2" {
        "standard"
    } else {
        "unlimited"
    }
}

impl Burst {
    pub fn earned_per_hour(&self) -> f64 {
        self.baseline_pct / 100.0 * self.vcpus as f64 * 60.0
    }

    /// The most credits an instance can bank: 24 hours of earnings.
    pub fn max_balance(&self) -> f64 {
        24.0 * self.earned_per_hour()
    }

    /// Launch credits: 30 per vCPU, for T2 in standard mode only.
    pub fn launch_credits(&self, mode: &str) -> f64 {
        if self.family == "t2" && mode == "standard" {
            30.0 * self.vcpus as f64
        } else {
            0.0
        }
    }
}

/// An instance's credit account.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Ledger {
    pub balance: f64,
    /// Credits spent beyond the balance in unlimited mode.
    pub surplus: f64,
}

impl Ledger {
    /// Runs the account forward by `minutes` at `usage_pct` total utilisation (100 % per
    /// vCPU): earnings at the baseline rate, spending at the actual rate.
    pub fn run(&mut self, b: &Burst, mode: &str, minutes: f64, usage_pct: f64) {
        if minutes <= 0.0 {
            return;
        }
        let earned = b.earned_per_hour() / 60.0 * minutes;
        let spent = usage_pct / 100.0 * minutes;
        let mut balance = self.balance + earned - spent;
        if balance < 0.0 {
            if mode == "unlimited" {
                self.surplus += -balance;
            }
            balance = 0.0;
        } else if self.surplus > 0.0 {
            // Earned credits first pay back surplus.
            let pay = self.surplus.min(balance);
            self.surplus -= pay;
            balance -= pay;
        }
        self.balance = balance.min(b.max_balance());
    }

    /// Spends what a guest used over `minutes` at `usage_pct` (100 % per vCPU), without
    /// earning: for a driver that measures use after the baseline earnings were run.
    pub fn spend(&mut self, mode: &str, minutes: f64, usage_pct: f64) {
        let spent = usage_pct.max(0.0) / 100.0 * minutes.max(0.0);
        let balance = self.balance - spent;
        if balance < 0.0 {
            if mode == "unlimited" {
                self.surplus += -balance;
            }
            self.balance = 0.0;
        } else {
            self.balance = balance;
        }
    }

    /// Whether a standard-mode instance is held at its baseline.
    pub fn throttled(&self, mode: &str) -> bool {
        mode == "standard" && self.balance <= 0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_figures() {
        let t3 = burst("t3.micro").unwrap();
        assert_eq!(t3.earned_per_hour(), 12.0);
        assert_eq!(t3.max_balance(), 288.0);
        assert_eq!(burst("t2.micro").unwrap().earned_per_hour(), 6.0);
        assert_eq!(burst("t2.micro").unwrap().launch_credits("standard"), 30.0);
        assert_eq!(t3.launch_credits("unlimited"), 0.0);
        assert!((burst("t2.2xlarge").unwrap().earned_per_hour() - 81.6).abs() < 1e-9);
        assert_eq!(burst("t3.2xlarge").unwrap().earned_per_hour(), 192.0);
        assert!(burst("m5.large").is_none());
        assert_eq!(default_mode("t2"), "standard");
        assert_eq!(default_mode("t4g"), "unlimited");
    }

    #[test]
    fn measured_use_is_spent() {
        let mut l = Ledger {
            balance: 1.0,
            surplus: 0.0,
        };
        l.spend("standard", 2.0, 100.0);
        assert_eq!(
            l,
            Ledger {
                balance: 0.0,
                surplus: 0.0
            }
        );
        assert!(l.throttled("standard") && !l.throttled("unlimited"));
        let mut u = Ledger {
            balance: 0.5,
            surplus: 0.0,
        };
        u.spend("unlimited", 1.0, 150.0);
        assert!((u.surplus - 1.0).abs() < 1e-9 && u.balance == 0.0);
    }

    #[test]
    fn idle_accrues_to_the_cap_and_busy_spends() {
        let b = burst("t3.micro").unwrap();
        let mut l = Ledger::default();
        l.run(&b, "standard", 60.0, 0.0);
        assert!((l.balance - 12.0).abs() < 1e-9);
        l.run(&b, "standard", 60.0 * 48.0, 0.0);
        assert_eq!(l.balance, 288.0);
        // Two vCPUs at 100 % spend 2 credits a minute and earn 0.2.
        l.run(&b, "standard", 200.0, 200.0);
        assert_eq!(l.balance, 0.0);
        assert!(l.throttled("standard"));
        let mut u = Ledger::default();
        u.run(&b, "unlimited", 10.0, 200.0);
        assert!((u.surplus - 18.0).abs() < 1e-9);
        assert!(!u.throttled("unlimited"));
        u.run(&b, "unlimited", 100.0, 0.0);
        assert!((u.surplus - 0.0).abs() < 1e-9);
    }
}
