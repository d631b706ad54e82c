//! Process resource limits rkind adjusts at start. Every connection costs a file
//! descriptor, and the usual soft `RLIMIT_NOFILE` of 1024 let anyone on the machine
//! exhaust it with idle sockets; the hard limit is what the administrator allows, so the
//! soft limit is raised to it. Refusal (no `CAP_SYS_RESOURCE`, odd sandboxes) is only
//! logged: rkind works with whatever it has.

use std::sync::OnceLock;

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// The (soft, hard) `RLIMIT_NOFILE` the process started with, before [`raise_nofile`].
static INHERITED: OnceLock<(u64, u64)> = OnceLock::new();

/// The descriptor limits rkind inherited, if [`raise_nofile`] ran: what processes started
/// for pods may want back (they inherit the raised soft limit otherwise).
pub fn inherited_nofile() -> Option<(u64, u64)> {
    INHERITED.get().copied()
}

/// What [`raise_nofile`] did, for the start log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NofileOutcome {
    /// The soft limit was raised from `from` to `to` (the hard limit).
    Raised {
        /// The soft limit before.
        from: u64,
        /// The soft limit now.
        to: u64,
    },
    /// The soft limit already equalled the hard limit.
    AlreadyAtHard(u64),
    /// The limits could not be read or set (the current soft limit stays).
    Refused,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; never fails.
pub fn raise_nofile() -> NofileOutcome {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return NofileOutcome::Refused;
    };
    let _ = INHERITED.set((soft, hard));
    if soft >= hard {
        return NofileOutcome::AlreadyAtHard(soft);
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => NofileOutcome::Raised {
            from: soft,
            to: hard,
        },
        Err(_) => NofileOutcome::Refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_limit_ends_at_the_hard_limit_or_is_left_alone() {
        let before = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
        let outcome = raise_nofile();
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
        assert_eq!(inherited_nofile(), Some(before));
        match outcome {
            NofileOutcome::Raised { from, to } => {
                assert_eq!((from, to), (before.0, hard));
                assert_eq!(soft, hard);
            }
            NofileOutcome::AlreadyAtHard(s) => assert_eq!(s, hard),
            NofileOutcome::Refused => assert_eq!(soft, before.0),
        }
    }
}
