//! Who a recorded process is. A pid alone names a process only while it lives: after a
//! crash of rkind the pid in a record may belong to something else by the time rkind
//! starts again. A pid together with its start time (clock ticks after boot, which the
//! kernel never changes for a process) and, where the process has one of its own, its
//! mount namespace names exactly one process, as containerd's shims are found again
//! after a restart of containerd.

use serde::{Deserialize, Serialize};

/// The identity of one process, taken while it runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessIdentity {
    /// Host pid (0: none recorded).
    pub pid: u32,
    /// Start time in clock ticks after boot (`/proc/<pid>/stat` field 22).
    pub start_ticks: u64,
    /// Inode of its mount namespace (0: not checked, e.g. it shares the host's).
    pub mnt_ns: u64,
}

impl ProcessIdentity {
    /// Reads the identity of the running process `pid`; `with_mnt_ns` also records its
    /// mount namespace (only worth it when the process has one of its own).
    pub fn of(pid: u32, with_mnt_ns: bool) -> Option<ProcessIdentity> {
        let start_ticks = start_ticks(pid)?;
        let mnt_ns = if with_mnt_ns {
            crate::runtime::linux::mount_namespace(pid).unwrap_or(0)
        } else {
            0
        };
        Some(ProcessIdentity {
            pid,
            start_ticks,
            mnt_ns,
        })
    }

    /// Whether the recorded process still runs (not a zombie) and is the same one: same
    /// start time and, where recorded, the same mount namespace.
    pub fn is_running(&self) -> bool {
        if self.pid == 0 || self.start_ticks == 0 || !crate::runtime::pid_alive(self.pid) {
            return false;
        }
        if start_ticks(self.pid) != Some(self.start_ticks) {
            return false;
        }
        self.mnt_ns == 0 || crate::runtime::linux::mount_namespace(self.pid) == Some(self.mnt_ns)
    }
}

/// The start time of `pid` in clock ticks after boot.
pub fn start_ticks(pid: u32) -> Option<u64> {
    crate::trace::evidence::stat_fields(pid)?
        .get(19)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifies_a_live_process_and_rejects_a_changed_start_time() {
        let me = ProcessIdentity::of(std::process::id(), true).expect("own identity");
        assert!(me.is_running());
        let other = ProcessIdentity {
            start_ticks: me.start_ticks + 1,
            ..me
        };
        assert!(!other.is_running(), "a reused pid must not pass");
        let moved = ProcessIdentity {
            mnt_ns: me.mnt_ns + 1,
            ..me
        };
        assert!(!moved.is_running(), "another mount namespace must not pass");
        assert!(!ProcessIdentity::default().is_running());
    }
}
