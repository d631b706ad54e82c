//! Container cgroups: memory, CPU and pids limits, on cgroup v2 (what most machines
//! have) or v1 (what some CI machines have), detected by trying rather than guessing.
//! Each container gets `rkind/<container id>` under every controller it uses; its
//! processes (and those exec'd into it) join by writing their pid to `cgroup.procs`.
//! Plain file writes: nothing here needs a namespace, so any thread may call it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::CgroupLimits;

const ROOT: &str = "/sys/fs/cgroup";
/// The directory under each hierarchy that holds rkind's containers.
const PARENT: &str = "rkind";

/// Which cgroup layout this machine lets rkind use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// The unified hierarchy with the memory, cpu and pids controllers delegated.
    V2,
    /// Separate v1 hierarchies (`memory`, `cpu`, `pids`).
    V1,
    /// No writable cgroups; the reason says what was tried.
    Unavailable(String),
}

impl Mode {
    /// One line for node conditions and `rkind up`.
    pub fn describe(&self) -> String {
        match self {
            Mode::V2 => {
                format!("cgroup v2 ({ROOT}/{PARENT}): memory, cpu and pids limits enforced")
            }
            Mode::V1 => format!(
                "cgroup v1 ({ROOT}/{{memory,cpu,cpuacct,pids}}/{PARENT}): memory, cpu and pids limits enforced"
            ),
            Mode::Unavailable(why) => format!("no cgroup limits: {why}"),
        }
    }
}

/// Creates `dir` if needed, then proves that containers' cgroups can go under it by
/// creating and removing one (rkind's parent may exist, made by another user).
fn try_mkdir(dir: &Path) -> Result<(), String> {
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("mkdir {}: {e}", dir.display())),
    }
    let probe = dir.join(format!("probe-{}", std::process::id()));
    std::fs::create_dir(&probe).map_err(|e| format!("mkdir {}: {e}", probe.display()))?;
    let _ = std::fs::remove_dir(&probe);
    Ok(())
}

/// Finds out what works here by creating rkind's parent cgroups.
pub fn detect() -> Mode {
    let unified = Path::new(ROOT).join("cgroup.controllers");
    let mut tried = Vec::new();
    if let Ok(controllers) = std::fs::read_to_string(&unified) {
        let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
        if has("memory") && has("cpu") {
            let parent = Path::new(ROOT).join(PARENT);
            match try_mkdir(&parent).and_then(|_| {
                std::fs::write(parent.join("cgroup.subtree_control"), "+memory +cpu +pids")
                    .map_err(|e| format!("enabling controllers under {}: {e}", parent.display()))
            }) {
                Ok(()) => return Mode::V2,
                Err(e) => tried.push(format!("cgroup v2: {e}")),
            }
        } else {
            tried.push(format!(
                "cgroup v2 at {ROOT} has no memory and cpu controllers ({})",
                controllers.trim()
            ));
        }
    }
    let mut v1 = Ok(());
    for c in ["memory", "cpu", "pids"] {
        let hierarchy = Path::new(ROOT).join(c);
        if !hierarchy.join("cgroup.procs").exists() {
            v1 = Err(format!(
                "cgroup v1: no {c} hierarchy at {}",
                hierarchy.display()
            ));
            break;
        }
        if let Err(e) = try_mkdir(&hierarchy.join(PARENT)) {
            v1 = Err(format!("cgroup v1: {e}"));
            break;
        }
    }
    match v1 {
        Ok(()) => Mode::V1,
        Err(e) => {
            tried.push(e);
            Mode::Unavailable(tried.join("; "))
        }
    }
}

/// A container's cgroup directories (one per v1 controller, or one for v2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerCgroup {
    /// The directories; the container's processes are in each.
    pub dirs: Vec<PathBuf>,
    /// v2 (`memory.events`) rather than v1 (`memory.oom_control`).
    pub unified: bool,
}

/// Creates the container's cgroup and writes its limits.
pub fn create(
    mode: &Mode,
    container_id: &str,
    limits: &CgroupLimits,
) -> Result<ContainerCgroup, String> {
    let write = |dir: &Path, file: &str, value: String| {
        std::fs::write(dir.join(file), &value)
            .map_err(|e| format!("writing {value} to {}: {e}", dir.join(file).display()))
    };
    match mode {
        Mode::V2 => {
            let dir = Path::new(ROOT).join(PARENT).join(container_id);
            try_mkdir(&dir)?;
            if limits.memory_bytes > 0 {
                write(&dir, "memory.max", limits.memory_bytes.to_string())?;
                // No swap beyond the limit, as the kubelet configures it.
                let _ = write(&dir, "memory.swap.max", "0".into());
            }
            if limits.cpu_quota > 0 && limits.cpu_period > 0 {
                write(
                    &dir,
                    "cpu.max",
                    format!("{} {}", limits.cpu_quota, limits.cpu_period),
                )?;
            }
            if limits.cpu_shares > 0 {
                // The kubelet's shares → weight conversion (1..10000).
                let weight = 1 + ((limits.cpu_shares.clamp(2, 262_144) - 2) * 9999) / 262_142;
                write(&dir, "cpu.weight", weight.to_string())?;
            }
            Ok(ContainerCgroup {
                dirs: vec![dir],
                unified: true,
            })
        }
        Mode::V1 => {
            let mut dirs = Vec::new();
            for c in ["memory", "cpu", "pids", "cpuacct"] {
                let hierarchy = Path::new(ROOT).join(c);
                // cpuacct (CPU time accounting) is its own hierarchy on some machines,
                // mounted with cpu on others, absent on a few.
                if c == "cpuacct" && !hierarchy.join("cgroup.procs").exists() {
                    continue;
                }
                let _ = try_mkdir(&hierarchy.join(PARENT));
                let dir = hierarchy.join(PARENT).join(container_id);
                try_mkdir(&dir)?;
                if !dirs.iter().any(|d: &PathBuf| same_dir(d, &dir)) {
                    dirs.push(dir);
                }
            }
            if limits.memory_bytes > 0 {
                write(
                    &dirs[0],
                    "memory.limit_in_bytes",
                    limits.memory_bytes.to_string(),
                )?;
                let _ = write(
                    &dirs[0],
                    "memory.memsw.limit_in_bytes",
                    limits.memory_bytes.to_string(),
                );
            }
            if limits.cpu_quota > 0 && limits.cpu_period > 0 {
                write(&dirs[1], "cpu.cfs_period_us", limits.cpu_period.to_string())?;
                write(&dirs[1], "cpu.cfs_quota_us", limits.cpu_quota.to_string())?;
            }
            if limits.cpu_shares > 0 {
                write(&dirs[1], "cpu.shares", limits.cpu_shares.to_string())?;
            }
            Ok(ContainerCgroup {
                dirs,
                unified: false,
            })
        }
        Mode::Unavailable(why) => Err(why.clone()),
    }
}

/// What a container used, from its cgroup (what `crictl stats` and the kubelet's
/// summary show).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time used, nanoseconds.
    pub cpu_ns: Option<u64>,
    /// Memory charged, bytes.
    pub memory_bytes: Option<u64>,
    /// Memory minus inactive file cache (the kubelet's eviction signal).
    pub working_set_bytes: Option<u64>,
    /// Anonymous memory.
    pub rss_bytes: Option<u64>,
    /// Processes in the cgroup.
    pub processes: Option<u64>,
}

/// Whether two paths name the same directory (co-mounted v1 controllers).
fn same_dir(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn stat_field(path: &Path, key: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

impl ContainerCgroup {
    /// Current usage; fields the machine does not account are `None`.
    pub fn usage(&self) -> Usage {
        let mut u = Usage::default();
        if self.unified {
            let Some(d) = self.dirs.first() else {
                return u;
            };
            u.cpu_ns = stat_field(&d.join("cpu.stat"), "usage_usec").map(|us| us * 1000);
            u.memory_bytes = read_u64(&d.join("memory.current"));
            let inactive = stat_field(&d.join("memory.stat"), "inactive_file").unwrap_or(0);
            u.working_set_bytes = u.memory_bytes.map(|m| m.saturating_sub(inactive));
            u.rss_bytes = stat_field(&d.join("memory.stat"), "anon");
            u.processes = read_u64(&d.join("pids.current"));
        } else {
            let dir = |c: &str| {
                self.dirs
                    .iter()
                    .find(|d| d.starts_with(Path::new(ROOT).join(c)))
            };
            if let Some(d) = dir("memory") {
                u.memory_bytes = read_u64(&d.join("memory.usage_in_bytes"));
                let inactive =
                    stat_field(&d.join("memory.stat"), "total_inactive_file").unwrap_or(0);
                u.working_set_bytes = u.memory_bytes.map(|m| m.saturating_sub(inactive));
                u.rss_bytes = stat_field(&d.join("memory.stat"), "total_rss");
            }
            u.cpu_ns = ["cpuacct", "cpu"]
                .iter()
                .filter_map(|c| dir(c))
                .find_map(|d| read_u64(&d.join("cpuacct.usage")));
            if let Some(d) = dir("pids") {
                u.processes = read_u64(&d.join("pids.current"));
            }
        }
        u
    }

    /// Changes the limits of a running container in place (CRI
    /// `UpdateContainerResources`): 0 lifts a limit. On v1 the memory+swap limit moves
    /// with the memory limit, in the order the kernel accepts (it may never be below it).
    pub fn update(&self, limits: &CgroupLimits) -> Result<(), String> {
        let write = |dir: &Path, file: &str, value: String| {
            std::fs::write(dir.join(file), &value)
                .map_err(|e| format!("writing {value} to {}: {e}", dir.join(file).display()))
        };
        if self.unified {
            let Some(dir) = self.dirs.first() else {
                return Ok(());
            };
            let mem = if limits.memory_bytes > 0 {
                limits.memory_bytes.to_string()
            } else {
                "max".into()
            };
            write(dir, "memory.max", mem)?;
            let period = if limits.cpu_period > 0 {
                limits.cpu_period
            } else {
                100_000
            };
            let quota = if limits.cpu_quota > 0 {
                limits.cpu_quota.to_string()
            } else {
                "max".into()
            };
            write(dir, "cpu.max", format!("{quota} {period}"))?;
            if limits.cpu_shares > 0 {
                let weight = 1 + ((limits.cpu_shares.clamp(2, 262_144) - 2) * 9999) / 262_142;
                write(dir, "cpu.weight", weight.to_string())?;
            }
            return Ok(());
        }
        let dir = |c: &str| {
            self.dirs
                .iter()
                .find(|d| d.starts_with(Path::new(ROOT).join(c)))
        };
        if let Some(d) = dir("memory") {
            let new = if limits.memory_bytes > 0 {
                limits.memory_bytes
            } else {
                -1
            };
            let current = std::fs::read_to_string(d.join("memory.limit_in_bytes"))
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or(i64::MAX);
            let growing = new < 0 || new > current;
            if growing {
                let _ = write(d, "memory.memsw.limit_in_bytes", new.to_string());
            }
            write(d, "memory.limit_in_bytes", new.to_string())?;
            if !growing {
                let _ = write(d, "memory.memsw.limit_in_bytes", new.to_string());
            }
        }
        if let Some(d) = dir("cpu") {
            if limits.cpu_period > 0 {
                write(d, "cpu.cfs_period_us", limits.cpu_period.to_string())?;
            }
            let quota = if limits.cpu_quota > 0 {
                limits.cpu_quota
            } else {
                -1
            };
            write(d, "cpu.cfs_quota_us", quota.to_string())?;
            if limits.cpu_shares > 0 {
                write(d, "cpu.shares", limits.cpu_shares.to_string())?;
            }
        }
        Ok(())
    }

    /// Moves the calling process into the cgroup (its children follow).
    pub fn join_self(&self) -> Result<(), String> {
        for d in &self.dirs {
            std::fs::write(d.join("cgroup.procs"), std::process::id().to_string())
                .map_err(|e| format!("joining {}: {e}", d.display()))?;
        }
        Ok(())
    }

    /// Whether the kernel's OOM killer killed a process of this cgroup.
    pub fn oom_killed(&self) -> bool {
        let Some(dir) = self.dirs.first() else {
            return false;
        };
        let file = if self.unified {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        std::fs::read_to_string(dir.join(file))
            .unwrap_or_default()
            .lines()
            .any(|l| {
                l.strip_prefix("oom_kill ")
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .is_some_and(|n| n > 0)
            })
    }

    /// Removes the directories, killing what is still inside (a process exec'd into
    /// the container that outlived it) and waiting up to a second for the kernel to
    /// let go of exiting tasks. Idempotent; blocking.
    pub fn remove(&self) {
        tracing::debug!(dirs = ?self.dirs, "removing a container cgroup");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        for d in &self.dirs {
            loop {
                match std::fs::remove_dir(d) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(_) if std::time::Instant::now() < deadline => {
                        for pid in std::fs::read_to_string(d.join("cgroup.procs"))
                            .unwrap_or_default()
                            .lines()
                            .filter_map(|l| l.trim().parse::<i32>().ok())
                        {
                            let _ = nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(pid),
                                nix::sys::signal::Signal::SIGKILL,
                            );
                        }
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    Err(e) => {
                        tracing::warn!(cgroup = %d.display(), error = %e, "cannot remove a container cgroup");
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_describe_themselves() {
        assert!(Mode::V1.describe().contains("cgroup v1"));
        assert!(Mode::V2.describe().contains("cgroup v2"));
        assert!(
            Mode::Unavailable("read-only".into())
                .describe()
                .contains("no cgroup limits: read-only")
        );
    }
}
