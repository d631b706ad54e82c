//! Linux isolation for pods, runc-style: namespace work never happens on a tokio thread.
//! rkind's own binary is re-executed with a hidden first argument and does it single-
//! threaded, before anything else starts:
//!
//! - `__rkind-sandbox` — the pod sandbox holder: owns the pod's UTS, IPC and network
//!   namespaces, sets the hostname, brings `lo` up, then sleeps until killed;
//! - `__rkind-init` — a container's shim: joins the holder's namespaces, creates its own
//!   mount and PID namespaces, forks the container's PID 1 (overlay root on the image,
//!   fresh `/proc`, minimal `/dev`, read-only `/sys`, bind mounts, `pivot_root`, user,
//!   capability bounding set, `no_new_privs`), reports its pid and start result, waits
//!   and exits with its status;
//! - `__rkind-nsexec` — runs one more process inside a running container (exec, probes).
//!
//! The holder and shims are not tied to rkind's life (no parent-death signal): a crashed
//! rkind finds its containers running when it restarts; `rkind down` stops them.

pub mod cgroup;
mod helpers;
pub(crate) use helpers::mount_namespace;
pub use helpers::{ExecSpec, REPORT_PREFIX};
pub mod isolation;
mod terminal;
pub use isolation::{Isolation, Level};

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use helpers::maybe_run_helper;

/// Errors starting sandboxes and containers; they say what was tried.
#[derive(Debug, thiserror::Error)]
pub enum LinuxError {
    /// Spawning our own binary failed.
    #[error("cannot re-execute rkind ({what}): {source}")]
    Spawn {
        /// Which helper.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The helper reported a failure.
    #[error("{0}")]
    Helper(String),
    /// A state file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The pod sandbox to create.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxSpec {
    /// Hostname of the pod (its UTS namespace).
    pub hostname: String,
    /// Share the host's network namespace.
    pub host_network: bool,
    /// Share the host's IPC namespace.
    pub host_ipc: bool,
    /// shareProcessNamespace (not yet: each container gets its own PID namespace).
    pub share_pid: bool,
    /// hostPID.
    pub host_pid: bool,
    /// Directory for the sandbox's state files.
    pub state_dir: PathBuf,
    /// The isolation level (which namespaces the holder creates, if any).
    #[serde(default)]
    pub isolation: Level,
    /// Rootless: subordinate ids to map into the pod's user namespace.
    #[serde(default)]
    pub subids: Option<isolation::SubIds>,
}

/// A started sandbox holder.
#[derive(Debug, Clone, Copy)]
pub struct SandboxHandle {
    /// Pid of the holder (host view).
    pub pid: u32,
}

/// A container's root filesystem.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Rootfs {
    /// The host's root filesystem, read-only under a private writable layer.
    Host,
    /// Image layers (top-most first), under a private writable layer.
    Layers {
        /// Lower directories, top-most first.
        lower: Vec<PathBuf>,
    },
}

/// A mount inside a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Mount {
    /// A bind mount of a host path.
    Bind {
        /// Host path.
        source: PathBuf,
        /// Path inside the container.
        destination: PathBuf,
        /// Mount read-only.
        read_only: bool,
    },
}

/// cgroup limits, as the kubelet asks for them (see [`cgroup::create`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CgroupLimits {
    /// Memory limit in bytes (0 = none).
    pub memory_bytes: i64,
    /// CPU quota in µs per period (0 = none).
    pub cpu_quota: i64,
    /// CPU period in µs.
    pub cpu_period: i64,
    /// CPU shares.
    pub cpu_shares: u64,
}

/// A container to start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// The sandbox holder whose namespaces the container joins.
    pub sandbox_pid: u32,
    /// Directory for the container's state files (spec, pid, exit code).
    pub state_dir: PathBuf,
    /// Root filesystem.
    pub rootfs: Rootfs,
    /// argv.
    pub args: Vec<String>,
    /// Environment (`K=V`).
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: String,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// Extra mounts.
    pub mounts: Vec<Mount>,
    /// Hostname (already set by the sandbox; kept for hostNetwork pods).
    pub hostname: String,
    /// Share the host's PID namespace.
    pub host_pid: bool,
    /// Join this process's PID namespace instead of creating one.
    pub join_pid_of: Option<u32>,
    /// The container's cgroup, joined by its process before it starts (None: run
    /// without, on machines that allow no cgroups).
    pub cgroup: Option<cgroup::ContainerCgroup>,
    /// Allocate a terminal (not yet).
    pub tty: bool,
    /// Set `no_new_privs`.
    pub no_new_privs: bool,
    /// Capabilities to keep (None = Docker's default set).
    pub capabilities: Option<Vec<String>>,
    /// How the container is isolated and its root made.
    #[serde(default)]
    pub isolation: Isolation,
    /// Host paths hidden from the container (an empty read-only tmpfs over a directory,
    /// /dev/null over a file), as runc masks paths: rkind's data directories and the
    /// kubeconfig, whose keys would make a pod cluster admin.
    #[serde(default)]
    pub masked_paths: Vec<PathBuf>,
}

/// A started container.
#[derive(Debug)]
pub struct Started {
    /// The shim process (its exit status is the container's).
    pub helper: std::process::Child,
    /// The container's main process (host view).
    pub pid: u32,
}

/// A command that re-executes this very binary. `/proc/self/exe` rather than the path:
/// a running cluster keeps working when its binary is rebuilt or upgraded on disk (the
/// path then names a different file, or none). argv[0] keeps the readable name for `ps`.
pub(crate) fn own_binary() -> Command {
    let mut cmd = Command::new("/proc/self/exe");
    if let Ok(path) = std::env::current_exe() {
        std::os::unix::process::CommandExt::arg0(&mut cmd, path);
    }
    cmd
}

/// Starts a pod's namespace holder and returns once its namespaces exist.
pub fn start_sandbox(spec: &SandboxSpec) -> Result<SandboxHandle, LinuxError> {
    let json = serde_json::to_string(spec).unwrap_or_default();
    let mut child = own_binary()
        .arg(helpers::SANDBOX)
        .arg(json)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| LinuxError::Spawn {
            what: "sandbox holder",
            source,
        })?;
    let pid = child.id();
    let mut line = String::new();
    let mut mapped = Ok(());
    if let Some(out) = child.stdout.take() {
        let mut out = BufReader::new(out);
        if let (Some(ids), Some(input), Level::Rootless) =
            (&spec.subids, child.stdin.as_mut(), spec.isolation)
        {
            mapped = isolation::map_child(ids, pid, &mut out, input);
        }
        // A holder that neither says "ready" nor fails in time is killed: the RPC must
        // fail promptly, never hang.
        if out.buffer().is_empty() && !readable_within(out.get_ref(), SANDBOX_START_TIMEOUT) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(LinuxError::Helper(format!(
                "pod sandbox: the namespace holder did not start within {} s",
                SANDBOX_START_TIMEOUT.as_secs()
            )));
        }
        let _ = out.read_line(&mut line);
    }
    drop(child.stdin.take());
    if let Err(e) = mapped {
        let _ = child.kill();
        let _ = child.wait();
        return Err(LinuxError::Helper(format!("pod sandbox: {e}")));
    }
    if line.trim() != "ready" {
        let mut err = String::new();
        if let Some(e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut BufReader::new(e), &mut err);
        }
        let _ = child.kill();
        let _ = child.wait();
        return Err(LinuxError::Helper(format!("pod sandbox: {}", err.trim())));
    }
    drop(child.stderr.take());
    // Reap the holder whenever it ends, so no zombie stays behind.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(SandboxHandle { pid })
}

/// How long a pod sandbox's holder may take to set up its namespaces.
const SANDBOX_START_TIMEOUT: Duration = Duration::from_secs(20);

/// Whether `fd` has something to read (or hung up) within `within`.
fn readable_within(fd: &impl std::os::fd::AsFd, within: Duration) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) if left.is_zero() => return false,
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => return true,
            Err(_) => return true,
        }
    }
}

/// Starts a container; returns once its process runs (or fails to start, with the
/// reason, e.g. a command that does not exist).
pub fn start_container(
    spec: &ContainerSpec,
    stdio: crate::runtime::stdio::ShimStdio,
) -> Result<Started, LinuxError> {
    std::fs::create_dir_all(&spec.state_dir).map_err(|source| LinuxError::Io {
        path: spec.state_dir.clone(),
        source,
    })?;
    for f in ["pid", "started", "start-error", "exitcode"] {
        let _ = std::fs::remove_file(spec.state_dir.join(f));
    }
    let spec_path = spec.state_dir.join("spec.json");
    std::fs::write(&spec_path, serde_json::to_vec(spec).unwrap_or_default()).map_err(|source| {
        LinuxError::Io {
            path: spec_path.clone(),
            source,
        }
    })?;
    let mut cmd = own_binary();
    cmd.arg(helpers::INIT)
        .arg(&spec_path)
        .stdin(stdio.stdin)
        .stdout(stdio.stdout)
        .stderr(stdio.stderr);
    if let Some(keep) = &stdio.keep {
        pass_as_fd(&mut cmd, keep, crate::runtime::stdio::KEPT_MASTER_FD);
    }
    let mut child = cmd.spawn().map_err(|source| LinuxError::Spawn {
        what: "container shim",
        source,
    })?;
    drop(stdio.keep);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(msg) = std::fs::read_to_string(spec.state_dir.join("start-error")) {
            let _ = child.wait();
            return Err(LinuxError::Helper(msg.trim().to_string()));
        }
        if spec.state_dir.join("started").exists() {
            let pid = std::fs::read_to_string(spec.state_dir.join("pid"))
                .ok()
                .and_then(|p| p.trim().parse().ok())
                .unwrap_or(0);
            return Ok(Started { helper: child, pid });
        }
        if let Ok(Some(status)) = child.try_wait() {
            // It may have started and already finished: look once more.
            if spec.state_dir.join("started").exists() {
                continue;
            }
            if spec.state_dir.join("start-error").exists() {
                continue;
            }
            return Err(LinuxError::Helper(format!(
                "the container shim exited during start ({status})"
            )));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(LinuxError::Helper(
                "the container did not start within 20 s".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Makes `fd` the child's descriptor `target` (inherited across exec).
fn pass_as_fd(cmd: &mut Command, fd: &impl std::os::fd::AsRawFd, target: i32) {
    use std::os::unix::process::CommandExt;
    let raw = fd.as_raw_fd();
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if raw == target {
                if libc::fcntl(target, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(raw, target) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The command that runs an exec (kubectl exec, ExecSync, exec probes) inside the
/// running container whose main process is `spec.pid`. Exit status is the process's; a
/// missing binary gives 127 with the reason on stderr (or in `spec.error_file`).
pub fn exec_command(spec: &ExecSpec) -> Command {
    let mut cmd = own_binary();
    cmd.arg(helpers::NSEXEC)
        .arg(serde_json::to_string(spec).unwrap_or_default());
    cmd
}

/// The command that runs a tcpSocket (`http_path` None) or httpGet probe against
/// `port` on the pod's loopback, inside the network namespace of process `pid`.
pub fn netprobe_command(pid: u32, port: u16, http_path: Option<&str>, timeout: u64) -> Command {
    let spec = helpers::NetProbe {
        pid,
        port,
        http_path: http_path.map(String::from),
        timeout,
    };
    let mut cmd = own_binary();
    cmd.arg(helpers::NETPROBE)
        .arg(serde_json::to_string(&spec).unwrap_or_default());
    cmd
}

/// The namespace inodes of a process (`mnt` → inode), for tests and traces.
pub fn namespace_inodes(pid: u32) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for ns in ["cgroup", "ipc", "mnt", "net", "pid", "uts"] {
        if let Ok(link) = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")) {
            let s = link.to_string_lossy();
            if let Some(ino) = s
                .split('[')
                .nth(1)
                .and_then(|r| r.trim_end_matches(']').parse().ok())
            {
                out.insert(ns.to_string(), ino);
            }
        }
    }
    out
}

/// Cleans up after a container: its mounts live in its own mount namespace and vanish
/// with it; at the unprivileged level its volume links in the shared root go. Idempotent.
pub fn cleanup_container(state_dir: &Path) {
    helpers::unprivileged_cleanup(state_dir);
}

/// Connects to `port` on the loopback of the network namespace of process `pid`. Joins
/// that namespace on the calling thread (a thread of its own: it stays there), or has a
/// helper process do it when the namespace belongs to a user namespace this process has
/// no rights in (rootless pods); the socket comes back either way.
pub fn dial_pod_loopback(pid: u32, port: u16) -> Result<std::net::TcpStream, String> {
    if !helpers::same_namespace(pid, "net") {
        let path = format!("/proc/{pid}/ns/net");
        let f = std::fs::File::open(&path).map_err(|e| format!("open {path}: {e}"))?;
        match nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET) {
            Ok(()) => {}
            Err(nix::errno::Errno::EPERM) => return dial_via_helper(pid, port),
            Err(e) => return Err(format!("setns {path}: {e}")),
        }
    }
    dial_loopback(port)
}

/// Dials 127.0.0.1, then ::1, with Go's wording when both fail (as kubectl shows it).
pub(crate) fn dial_loopback(port: u16) -> Result<std::net::TcpStream, String> {
    use std::net::{SocketAddr, TcpStream};
    let v4 = SocketAddr::from(([127, 0, 0, 1], port));
    match TcpStream::connect_timeout(&v4, Duration::from_secs(5)) {
        Ok(s) => Ok(s),
        Err(e4) => {
            let v6 = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
            TcpStream::connect_timeout(&v6, Duration::from_secs(5)).map_err(|e6| {
                format!(
                    "IPv4: dial tcp4 {v4}: connect: {} IPv6 dial tcp6 {v6}: connect: {}",
                    errno_text(&e4),
                    errno_text(&e6)
                )
            })
        }
    }
}

/// Go's wording for the common connect errors.
fn errno_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::TimedOut => "i/o timeout".into(),
        _ => e.to_string(),
    }
}

/// Has the dial helper join the pod's namespaces and dial; it hands the connected
/// socket back over a socket pair (fd 3 in the helper).
fn dial_via_helper(pid: u32, port: u16) -> Result<std::net::TcpStream, String> {
    let (receiver, sender) = terminal::ConsoleSocket::pair()?;
    let theirs = sender.into_fd();
    let mut cmd = own_binary();
    cmd.arg(helpers::DIAL)
        .arg(serde_json::to_string(&helpers::Dial { pid, port }).unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    pass_as_fd(&mut cmd, &theirs, 3);
    let child = cmd
        .spawn()
        .map_err(|e| format!("port-forward dialer: {e}"))?;
    drop(theirs);
    let fd = receiver.receive();
    let out = child
        .wait_with_output()
        .map_err(|e| format!("port-forward dialer: {e}"))?;
    match fd {
        Some(fd) => Ok(std::net::TcpStream::from(fd)),
        None => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
    }
}
