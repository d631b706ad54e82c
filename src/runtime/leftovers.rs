//! After a crash (rkind killed with SIGKILL, the machine's OOM killer…) the containers,
//! their shims and the pod namespace holders keep running and their cgroups stay.
//! `rkind down` on a cluster that is not running removes them, as `kind delete` leaves
//! nothing behind: processes are recognised by the data directory in their command line
//! (shims and holders) or by sitting in a container's cgroup, never by pid alone.
//! `rkind down` also runs it after a cluster it had to kill (one that hung in shutdown),
//! and after a graceful stop, so that one `down` always leaves nothing behind.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use super::ContainerRecord;

/// What was cleaned.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Cleaned {
    /// Processes killed.
    pub processes: usize,
    /// Container cgroups removed.
    pub cgroups: usize,
}

fn records(runtime_dir: &Path) -> Vec<ContainerRecord> {
    std::fs::read_dir(runtime_dir.join("containers"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_to_string(e.path().join("record.json")).ok())
                .filter_map(|t| serde_json::from_str(&t).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn kill(pid: u32) -> bool {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .is_ok()
}

/// What a cluster whose runtime state is in `runtime_dir` has running or allocated.
#[derive(Debug, Default)]
pub struct Found {
    /// Shims, namespace holders and container processes (host pids).
    pub processes: Vec<u32>,
    /// Container cgroups that still exist.
    pub cgroups: Vec<super::linux::cgroup::ContainerCgroup>,
}

impl Found {
    /// Nothing left.
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty() && self.cgroups.is_empty()
    }
}

/// Finds what the cluster whose runtime state is in `runtime_dir` has running: shims and
/// holders by the data directory in their command line, container processes by their
/// cgroup or (without cgroups) by their record, never by pid alone.
pub fn find(runtime_dir: &Path) -> Found {
    let mut found = Found::default();
    let marker = runtime_dir.display().to_string();
    // Shims and namespace holders name their state under the data directory.
    for p in crate::trace::evidence::processes() {
        if p.pid != std::process::id()
            && (p.args.contains("__rkind-init") || p.args.contains("__rkind-sandbox"))
            && p.args.contains(&marker)
        {
            found.processes.push(p.pid);
        }
    }
    for rec in records(runtime_dir) {
        match &rec.cgroup {
            Some(cg) => {
                for d in &cg.dirs {
                    found.processes.extend(
                        std::fs::read_to_string(d.join("cgroup.procs"))
                            .unwrap_or_default()
                            .lines()
                            .filter_map(|l| l.trim().parse::<u32>().ok()),
                    );
                }
                if cg.dirs.iter().any(|d| d.exists()) {
                    found.cgroups.push(cg.clone());
                }
            }
            None if is_container_process(&rec) => found.processes.push(rec.pid),
            None => {}
        }
    }
    // A zombie is already dead: nothing to stop, and whoever reaps it is not ours.
    found.processes.retain(|pid| !is_zombie(*pid));
    found.processes.sort_unstable();
    found.processes.dedup();
    found
}

/// Whether `pid` has exited and waits to be reaped (or is gone altogether).
fn is_zombie(pid: u32) -> bool {
    crate::trace::evidence::stat_fields(pid)
        .and_then(|f| f.into_iter().next())
        .is_none_or(|state| state == "Z" || state == "X")
}

/// Whether the recorded main pid of a container without a cgroup is still that
/// container's process: it has the container's environment and is either in other pid
/// and mount namespaces than ours (a container's) or, at the unprivileged level where
/// namespaces are shared, started when the container did. Not a process that reused it.
fn is_container_process(rec: &ContainerRecord) -> bool {
    let ns = |pid: u32, kind: &str| std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).ok();
    let me = std::process::id();
    let env = std::fs::read(format!("/proc/{}/environ", rec.pid)).unwrap_or_default();
    let own_namespaces = ns(rec.pid, "pid").is_some()
        && ns(rec.pid, "pid") != ns(me, "pid")
        && ns(rec.pid, "mnt") != ns(me, "mnt");
    let started_then =
        start_time_ns(rec.pid).is_some_and(|t| (t as i64 - rec.started_at).abs() < 2_000_000_000);
    rec.pid != 0
        && (own_namespaces || started_then)
        && rec
            .env
            .iter()
            .all(|e| env.split(|b| *b == 0).any(|v| v == e.as_bytes()))
}

/// How long [`clean`] keeps at it: killed processes must be reaped before their cgroup
/// can be removed, and a container process may fork while its siblings are killed.
const CLEAN_TIMEOUT: Duration = Duration::from_secs(10);

/// Kills what a crashed (or killed) cluster whose runtime state is in `runtime_dir` left
/// running and removes its containers' cgroups and CRI socket, repeating until nothing
/// is found (at most [`CLEAN_TIMEOUT`]). Each process is counted once. Blocking; idempotent.
pub fn clean(runtime_dir: &Path, cri_socket: &Path) -> Cleaned {
    let started = Instant::now();
    let mut killed = HashSet::new();
    let mut cgroups = 0;
    loop {
        let found = find(runtime_dir);
        if found.is_empty() {
            break;
        }
        for pid in &found.processes {
            if *pid != std::process::id() && kill(*pid) {
                killed.insert(*pid);
            }
        }
        for cg in &found.cgroups {
            cg.remove();
            if cg.dirs.iter().all(|d| !d.exists()) {
                cgroups += 1;
            }
        }
        if started.elapsed() > CLEAN_TIMEOUT {
            tracing::warn!(
                runtime = %runtime_dir.display(),
                left = ?find(runtime_dir),
                "could not clean up everything"
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_file(cri_socket);
    Cleaned {
        processes: killed.len(),
        cgroups,
    }
}

/// When process `pid` started, in nanoseconds since the epoch (its `/proc` stat start
/// time in clock ticks after boot, plus the boot time).
fn start_time_ns(pid: u32) -> Option<u64> {
    let ticks = crate::runtime::identity::start_ticks(pid)?;
    let boot: u64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: sysconf has no side effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(boot * 1_000_000_000 + ticks * (1_000_000_000 / hz))
}
