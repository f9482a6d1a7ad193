//! Whether a check-in is on the wire, and whether another was asked for while it was.

/// The check-in's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CheckinRun {
    /// Check-ins are off (`Builder::checkins(false)`): none ever runs.
    Disabled,
    /// None is running.
    Idle,
    /// One is running. `again`: a request came meanwhile, after the running one may already
    /// have read the identity, so one more runs after it.
    Running { again: bool },
}

impl CheckinRun {
    /// Whether a check-in starts now. One already running is asked to run once more.
    pub fn begin(&mut self) -> bool {
        match self {
            CheckinRun::Disabled => false,
            CheckinRun::Running { again } => {
                *again = true;
                false
            }
            CheckinRun::Idle => {
                *self = CheckinRun::Running { again: false };
                true
            }
        }
    }

    /// The running check-in ended; returns whether another one was asked for meanwhile.
    pub fn end(&mut self) -> bool {
        match *self {
            CheckinRun::Running { again } => {
                *self = CheckinRun::Idle;
                again
            }
            CheckinRun::Disabled | CheckinRun::Idle => false,
        }
    }

    /// Forgets a running check-in: its future went with the actor's old context (a restart).
    pub fn forget(&mut self) {
        if let CheckinRun::Running { .. } = self {
            *self = CheckinRun::Idle;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_during_a_check_in_runs_one_more_after_it() {
        let mut run = CheckinRun::Idle;
        assert!(run.begin());
        assert!(!run.begin());
        assert!(!run.begin());
        assert!(run.end());
        assert_eq!(run, CheckinRun::Idle);
        assert!(run.begin());
        assert!(!run.end());
    }

    #[test]
    fn disabled_never_runs() {
        let mut run = CheckinRun::Disabled;
        assert!(!run.begin());
        assert!(!run.end());
        run.forget();
        assert_eq!(run, CheckinRun::Disabled);
    }
}
