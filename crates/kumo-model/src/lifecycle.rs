//! The instance lifecycle as one state machine: which action is allowed in which state, what
//! it leads to, and which transitions then happen over time. Every match is exhaustive, so a
//! new state or action cannot be forgotten anywhere.

/// An instance's state, with AWS's codes. Stored as AWS's name (`shutting-down`), so a stored
/// state that is none of these fails to decode instead of passing for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
    Stopping,
    Stopped,
}

impl State {
    pub fn code(self) -> i32 {
        match self {
            State::Pending => 0,
            State::Running => 16,
            State::ShuttingDown => 32,
            State::Terminated => 48,
            State::Stopping => 64,
            State::Stopped => 80,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Running => "running",
            State::ShuttingDown => "shutting-down",
            State::Terminated => "terminated",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        [
            State::Pending,
            State::Running,
            State::ShuttingDown,
            State::Terminated,
            State::Stopping,
            State::Stopped,
        ]
        .into_iter()
        .find(|st| st.name() == s)
    }

    /// The state a transitional state settles into over time.
    pub fn settles_to(self) -> Option<State> {
        match self {
            State::Pending => Some(State::Running),
            State::Stopping => Some(State::Stopped),
            State::ShuttingDown => Some(State::Terminated),
            State::Running | State::Stopped | State::Terminated => None,
        }
    }
}

/// What a caller asks of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Reboot,
    Terminate,
    /// The guest powered itself off (`shutdown -h` inside): it stops, or terminates when its
    /// `InstanceInitiatedShutdownBehavior` says `terminate` (or it has no EBS root to keep).
    GuestShutdown {
        terminate: bool,
    },
    /// A scheduled `instance-stop` or `instance-retirement` event's time came.
    ScheduledStop,
    /// The guest could not be booted: the launch ends in `terminated`, as AWS's
    /// `Server.InternalError` launches do.
    LaunchFailed,
}

/// What an allowed action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The instance moves to this state.
    MoveTo(State),
    /// Nothing changes; the call still succeeds (start a running instance, stop a stopped
    /// one, terminate a terminated one).
    NoChange,
}

/// Why an action is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `IncorrectInstanceState`.
    IncorrectState,
    /// `UnsupportedOperation`: instance-store-backed instances cannot stop.
    InstanceStoreCannotStop,
}

/// Decides an action in a state. `ebs_backed` is false for instance-store-backed instances.
pub fn apply(state: State, action: Action, ebs_backed: bool) -> Result<Outcome, Refusal> {
    use Action::*;
    use State::*;
    match (action, state) {
        (Start, Stopped) => Ok(Outcome::MoveTo(Pending)),
        (Start, Pending | Running) => Ok(Outcome::NoChange),
        (Start, Stopping | ShuttingDown | Terminated) => Err(Refusal::IncorrectState),
        (Stop, _) if !ebs_backed => Err(Refusal::InstanceStoreCannotStop),
        (Stop, Running) => Ok(Outcome::MoveTo(Stopping)),
        (Stop, Stopping | Stopped) => Ok(Outcome::NoChange),
        (Stop, Pending | ShuttingDown | Terminated) => Err(Refusal::IncorrectState),
        // "Requests to reboot terminated instances are ignored."
        (Reboot, Running | Pending | Terminated) => Ok(Outcome::NoChange),
        (Reboot, Stopping | Stopped | ShuttingDown) => Err(Refusal::IncorrectState),
        (Terminate, Pending | Running | Stopping | Stopped) => Ok(Outcome::MoveTo(ShuttingDown)),
        (Terminate, ShuttingDown | Terminated) => Ok(Outcome::NoChange),
        (GuestShutdown { terminate }, Running) => {
            Ok(Outcome::MoveTo(if terminate || !ebs_backed {
                ShuttingDown
            } else {
                Stopping
            }))
        }
        (GuestShutdown { .. }, Pending | Stopping | Stopped | ShuttingDown | Terminated) => {
            Err(Refusal::IncorrectState)
        }
        // "Instance retirement: the instance is stopped if it is backed by Amazon EBS, or
        // terminated if it is backed by instance store."
        (ScheduledStop, Running) => Ok(Outcome::MoveTo(if ebs_backed {
            Stopping
        } else {
            ShuttingDown
        })),
        (ScheduledStop, Pending | Stopping | Stopped | ShuttingDown | Terminated) => {
            Ok(Outcome::NoChange)
        }
        (LaunchFailed, Pending | Running) => Ok(Outcome::MoveTo(Terminated)),
        (LaunchFailed, Stopping | Stopped | ShuttingDown | Terminated) => Ok(Outcome::NoChange),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_stored_by_their_aws_names_and_nothing_else() {
        for st in [
            State::Pending,
            State::Running,
            State::ShuttingDown,
            State::Terminated,
            State::Stopping,
            State::Stopped,
        ] {
            let text = serde_json::to_string(&st).unwrap();
            assert_eq!(text, format!("\"{}\"", st.name()));
            assert_eq!(serde_json::from_str::<State>(&text).unwrap(), st);
        }
        // Unknown text once became Terminated silently; now it is an unreadable record.
        assert!(serde_json::from_str::<State>("\"hibernated\"").is_err());
    }
    use proptest::prelude::*;

    #[test]
    fn what_the_system_does() {
        use Outcome::MoveTo;
        let off = |terminate, ebs| apply(State::Running, Action::GuestShutdown { terminate }, ebs);
        assert_eq!(off(false, true), Ok(MoveTo(State::Stopping)));
        assert_eq!(off(true, true), Ok(MoveTo(State::ShuttingDown)));
        assert_eq!(off(false, false), Ok(MoveTo(State::ShuttingDown)));
        assert_eq!(
            apply(
                State::Stopped,
                Action::GuestShutdown { terminate: false },
                true
            ),
            Err(Refusal::IncorrectState)
        );
        assert_eq!(
            apply(State::Running, Action::ScheduledStop, true),
            Ok(MoveTo(State::Stopping))
        );
        assert_eq!(
            apply(State::Stopped, Action::ScheduledStop, true),
            Ok(Outcome::NoChange)
        );
        assert_eq!(
            apply(State::Pending, Action::LaunchFailed, true),
            Ok(MoveTo(State::Terminated))
        );
        assert_eq!(
            apply(State::Terminated, Action::LaunchFailed, true),
            Ok(Outcome::NoChange)
        );
    }

    #[test]
    fn aws_rules() {
        assert_eq!(
            apply(State::Running, Action::Stop, true),
            Ok(Outcome::MoveTo(State::Stopping))
        );
        assert_eq!(
            apply(State::Pending, Action::Stop, true),
            Err(Refusal::IncorrectState)
        );
        assert_eq!(
            apply(State::Running, Action::Stop, false),
            Err(Refusal::InstanceStoreCannotStop)
        );
        assert_eq!(
            apply(State::Running, Action::Start, true),
            Ok(Outcome::NoChange)
        );
        assert_eq!(
            apply(State::Terminated, Action::Start, true),
            Err(Refusal::IncorrectState)
        );
        assert_eq!(
            apply(State::Stopped, Action::Terminate, true),
            Ok(Outcome::MoveTo(State::ShuttingDown))
        );
        assert_eq!(
            apply(State::Stopped, Action::Reboot, true),
            Err(Refusal::IncorrectState)
        );
        assert_eq!(State::parse("shutting-down"), Some(State::ShuttingDown));
        assert_eq!(State::Stopped.code(), 80);
    }

    fn state() -> impl Strategy<Value = State> {
        prop::sample::select(vec![
            State::Pending,
            State::Running,
            State::ShuttingDown,
            State::Terminated,
            State::Stopping,
            State::Stopped,
        ])
    }

    fn action() -> impl Strategy<Value = Action> {
        prop::sample::select(vec![
            Action::Start,
            Action::Stop,
            Action::Reboot,
            Action::Terminate,
        ])
    }

    proptest! {
        /// Over any sequence of actions and settling: terminated is final, and an
        /// instance-store-backed instance never reaches stopping or stopped.
        #[test]
        fn lifecycle_invariants(steps in prop::collection::vec((action(), any::<bool>()), 1..60), ebs in any::<bool>(), start in state()) {
            let mut s = if matches!(start, State::Stopped | State::Stopping) && !ebs { State::Running } else { start };
            for (a, settle) in steps {
                let before = s;
                if let Ok(Outcome::MoveTo(next)) = apply(s, a, ebs) {
                    s = next;
                }
                if settle {
                    if let Some(next) = s.settles_to() { s = next; }
                }
                if before == State::Terminated {
                    prop_assert_eq!(s, State::Terminated);
                }
                if !ebs {
                    prop_assert!(s != State::Stopping && s != State::Stopped);
                }
            }
        }
    }
}
