//! The container runtime: pod sandboxes and containers as processes in Linux
//! namespaces, a local image store, CRI-format logs, and records that survive a restart
//! of rkind. The CRI gRPC server in [`service`] wraps it; the kubelet only ever reaches
//! it through that socket.

pub mod attach;
pub mod cri;
pub mod exec;
pub mod identity;
pub mod images;
pub mod leftovers;
pub mod linux;
pub mod logs;
pub mod service;
pub mod stats;
pub mod stdio;
pub mod streaming;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tonic::Status;

/// Nanoseconds since the epoch (CRI timestamps).
pub fn now_ns() -> i64 {
    jiff::Timestamp::now().as_nanosecond() as i64
}

fn new_id() -> String {
    format!(
        "{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    )
}

/// One pod sandbox as the runtime remembers it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxRecord {
    /// Sandbox id.
    pub id: String,
    /// Pod name.
    pub name: String,
    /// Pod namespace.
    pub namespace: String,
    /// Pod uid.
    pub uid: String,
    /// Attempt number.
    pub attempt: u32,
    /// Hostname inside the pod.
    pub hostname: String,
    /// Where container logs go.
    pub log_directory: String,
    /// Labels from the kubelet.
    pub labels: HashMap<String, String>,
    /// Annotations from the kubelet.
    pub annotations: HashMap<String, String>,
    /// Creation time (ns).
    pub created_at: i64,
    /// Whether the sandbox is ready (its holder runs).
    pub ready: bool,
    /// Pid of the namespace holder process (0 if none).
    pub holder_pid: u32,
    /// hostNetwork.
    pub host_network: bool,
    /// hostPID.
    pub host_pid: bool,
    /// hostIPC.
    pub host_ipc: bool,
    /// shareProcessNamespace.
    pub share_pid: bool,
    /// Who the holder is (pid and start time), so a restarted rkind adopts only the
    /// process it started.
    #[serde(default)]
    pub holder: identity::ProcessIdentity,
}

/// Container states, as CRI names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerStateKind {
    /// Created, not started.
    Created,
    /// Running.
    Running,
    /// Exited.
    Exited,
}

/// One container as the runtime remembers it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// Container id.
    pub id: String,
    /// Its sandbox.
    pub sandbox_id: String,
    /// Container name.
    pub name: String,
    /// Attempt.
    pub attempt: u32,
    /// Image as the user wrote it.
    pub image: String,
    /// Resolved image id.
    pub image_ref: String,
    /// Labels.
    pub labels: HashMap<String, String>,
    /// Annotations.
    pub annotations: HashMap<String, String>,
    /// State.
    pub state: ContainerStateKind,
    /// Created (ns).
    pub created_at: i64,
    /// Started (ns).
    pub started_at: i64,
    /// Finished (ns).
    pub finished_at: i64,
    /// Exit code.
    pub exit_code: i32,
    /// Reason (Completed, Error, OOMKilled, StartError).
    pub reason: String,
    /// Message.
    pub message: String,
    /// Main process pid (host view).
    pub pid: u32,
    /// Absolute log path.
    pub log_path: String,
    /// Resolved argv.
    pub argv: Vec<String>,
    /// Environment.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: String,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Bind mounts: (host path, container path, read-only).
    pub mounts: Vec<(String, String, bool)>,
    /// Allocate a tty.
    pub tty: bool,
    /// Keep stdin open.
    pub stdin: bool,
    /// Close stdin after the first attach session.
    #[serde(default)]
    pub stdin_once: bool,
    /// Lower layer dirs of the root filesystem (empty for the host image).
    pub layers: Vec<PathBuf>,
    /// Memory limit (bytes, 0 = none).
    pub memory_limit: i64,
    /// CPU quota/period.
    pub cpu_quota: i64,
    /// CPU period.
    pub cpu_period: i64,
    /// The container's cgroup, once started (None where the machine allows none).
    #[serde(default)]
    pub cgroup: Option<linux::cgroup::ContainerCgroup>,
    /// Who the main process is (pid, start time, mount namespace), once started.
    #[serde(default)]
    pub process: identity::ProcessIdentity,
    /// Who its shim is: it holds the container's stdio and writes its exit code.
    #[serde(default)]
    pub shim: identity::ProcessIdentity,
    /// The container whose PID namespace this one joins (CRI namespace mode `TARGET`:
    /// an ephemeral container aimed at another with `targetContainerName`).
    #[serde(default)]
    pub pid_target: Option<String>,
}

impl ContainerRecord {
    /// The cgroup a process exec'd into this container joins: the container's, when it
    /// has limits to enforce. Joining a cgroup costs a whole RCU grace period on an idle
    /// machine (~15-20 ms for an isolated migration on cgroup v1, measured here), which
    /// would triple `kubectl exec`'s latency; for an unlimited container it buys only
    /// accounting, so its exec'd processes stay outside (their usage is not in its stats).
    pub fn exec_cgroup(&self) -> Option<linux::cgroup::ContainerCgroup> {
        self.cgroup
            .clone()
            .filter(|_| self.memory_limit > 0 || self.cpu_quota > 0)
    }
}

/// The pump threads of a container's output and its attach hub.
struct Pumps {
    threads: Vec<std::thread::JoinHandle<()>>,
    hub: Arc<attach::AttachHub>,
}

#[derive(Default)]
struct State {
    sandboxes: HashMap<String, SandboxRecord>,
    containers: HashMap<String, ContainerRecord>,
}

/// The runtime.
pub struct Runtime {
    root: PathBuf,
    /// Attachable stdio of the containers this process started.
    hubs: Mutex<HashMap<String, Arc<attach::AttachHub>>>,
    /// The image store.
    pub images: images::ImageStore,
    state: Mutex<State>,
    /// The cgroup layout this machine allows (found by trying at start-up).
    cgroups: linux::cgroup::Mode,
    /// The isolation level this machine allows (found by trying at start-up).
    isolation: linux::Isolation,
    /// Set by [`Runtime::shutdown`]: no container starts any more.
    closing: std::sync::atomic::AtomicBool,
    /// Held (shared) by every container start; shutdown takes it exclusively, so it
    /// waits for starts under way instead of racing them.
    starting: std::sync::RwLock<()>,
    /// Host paths no container may see (see [`Runtime::hide_from_pods`]).
    masked: Mutex<Vec<PathBuf>>,
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

impl Runtime {
    /// Opens the runtime's state in `root` (records of a previous run are reloaded;
    /// containers whose process died meanwhile are reported as exited).
    pub fn open(root: &Path) -> Result<Arc<Self>, String> {
        for d in ["sandboxes", "containers", "images"] {
            std::fs::create_dir_all(root.join(d))
                .map_err(|e| format!("{}: {e}", root.join(d).display()))?;
        }
        let _ = std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700));
        let images = images::ImageStore::open(&root.join("images")).map_err(|e| e.to_string())?;
        let mut state = State::default();
        for entry in std::fs::read_dir(root.join("sandboxes"))
            .map_err(|e| e.to_string())?
            .flatten()
        {
            if let Ok(text) = std::fs::read_to_string(entry.path())
                && let Ok(mut s) = serde_json::from_str::<SandboxRecord>(&text)
            {
                let alive = if s.holder.pid != 0 {
                    s.holder.is_running()
                } else {
                    pid_alive(s.holder_pid)
                };
                if s.holder_pid != 0 && !alive {
                    s.ready = false;
                    s.holder_pid = 0;
                }
                state.sandboxes.insert(s.id.clone(), s);
            }
        }
        for entry in std::fs::read_dir(root.join("containers"))
            .map_err(|e| e.to_string())?
            .flatten()
        {
            let rec = entry.path().join("record.json");
            if let Ok(text) = std::fs::read_to_string(&rec)
                && let Ok(mut c) = serde_json::from_str::<ContainerRecord>(&text)
            {
                if c.state != ContainerStateKind::Running
                    && let Some(cg) = &c.cgroup
                {
                    // Left behind by a crash of the previous rkind.
                    cg.remove();
                }
                if c.state == ContainerStateKind::Running {
                    let sandbox_ready = state.sandboxes.get(&c.sandbox_id).is_some_and(|s| s.ready);
                    match adoption(&c, sandbox_ready) {
                        Adoption::Adopt => {}
                        Adoption::Died => {
                            c.state = ContainerStateKind::Exited;
                            c.finished_at = now_ns();
                            match read_exit_code(&entry.path()) {
                                Some(code) => {
                                    c.exit_code = code;
                                    if c.reason.is_empty() {
                                        c.reason =
                                            if code == 0 { "Completed" } else { "Error" }.into();
                                    }
                                }
                                None => {
                                    c.exit_code = 255;
                                    c.reason = "Unknown".into();
                                    c.message =
                                        "the container exited while rkind was not running".into();
                                }
                            }
                        }
                        Adoption::Orphaned(why) => {
                            // Running, but nothing can reach it any more: stop it, as the
                            // kubelet would a container whose sandbox is gone.
                            kill(c.pid, nix::sys::signal::Signal::SIGKILL);
                            c.state = ContainerStateKind::Exited;
                            c.finished_at = now_ns();
                            c.exit_code = 137;
                            c.reason = "Error".into();
                            c.message = why.into();
                        }
                    }
                    if c.state == ContainerStateKind::Exited {
                        if let Some(cg) = &c.cgroup {
                            cg.remove();
                        }
                        write_container_record(&entry.path(), &c);
                    }
                }
                state.containers.insert(c.id.clone(), c);
            }
        }
        let cgroups = linux::cgroup::detect();
        tracing::debug!(cgroups = %cgroups.describe(), "container limits");
        let isolation = linux::Isolation::detect(&root.join("isolation-probe"))?;
        tracing::debug!(tried = ?isolation.tried, "{}", isolation.summary());
        let rt = Arc::new(Runtime {
            root: root.to_path_buf(),
            hubs: Mutex::new(HashMap::new()),
            images,
            state: Mutex::new(state),
            cgroups,
            isolation,
            closing: std::sync::atomic::AtomicBool::new(false),
            starting: std::sync::RwLock::new(()),
            masked: Mutex::new(default_masked_paths(root)),
        });
        // Containers that still run from a previous rkind: adopt them.
        let running: Vec<ContainerRecord> = rt
            .lock()
            .containers
            .values()
            .filter(|c| c.state == ContainerStateKind::Running)
            .cloned()
            .collect();
        for c in running {
            rt.clone().adopt(c);
        }
        Ok(rt)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    fn save_sandbox(&self, s: &SandboxRecord) {
        let p = self.root.join("sandboxes").join(format!("{}.json", s.id));
        let tmp = p.with_extension("tmp");
        if std::fs::write(&tmp, serde_json::to_vec(s).unwrap_or_default()).is_ok() {
            let _ = std::fs::rename(tmp, p);
        }
    }

    fn save_container(&self, c: &ContainerRecord) {
        write_container_record(&self.container_dir(&c.id), c);
    }

    /// All sandboxes.
    pub fn sandboxes(&self) -> Vec<SandboxRecord> {
        self.lock().sandboxes.values().cloned().collect()
    }

    /// One sandbox (id or unique prefix).
    pub fn sandbox(&self, id: &str) -> Result<SandboxRecord, Status> {
        let st = self.lock();
        find_by_prefix(&st.sandboxes, id)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("pod sandbox {id:?} not found")))
    }

    /// All containers.
    pub fn containers(&self) -> Vec<ContainerRecord> {
        self.lock().containers.values().cloned().collect()
    }

    /// The containers `keep` accepts, cloned under the lock. The kubelet lists one
    /// sandbox's containers per pod and sync; cloning every record for each such call
    /// made an idle node with n pods do O(n²) clone work.
    pub fn containers_where(
        &self,
        keep: impl Fn(&ContainerRecord) -> bool,
    ) -> Vec<ContainerRecord> {
        self.lock()
            .containers
            .values()
            .filter(|c| keep(c))
            .cloned()
            .collect()
    }

    /// One container (id or unique prefix).
    pub fn container(&self, id: &str) -> Result<ContainerRecord, Status> {
        let st = self.lock();
        find_by_prefix(&st.containers, id)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("container {id:?} not found")))
    }

    /// Creates and starts a pod sandbox (its namespace holder process).
    pub fn run_sandbox(&self, mut rec: SandboxRecord) -> Result<String, Status> {
        // Idempotent per pod uid + attempt, as the kubelet may retry.
        if let Some(existing) = self
            .lock()
            .sandboxes
            .values()
            .find(|s| s.uid == rec.uid && s.attempt == rec.attempt && s.ready)
        {
            return Ok(existing.id.clone());
        }
        rec.hostname = pod_hostname(&rec.hostname, rec.host_network)?;
        rec.id = new_id();
        rec.created_at = now_ns();
        let dir = self.root.join("sandboxes").join(&rec.id);
        std::fs::create_dir_all(&dir).map_err(internal)?;
        write_pod_files(&dir, &rec.hostname).map_err(internal)?;
        let spec = linux::SandboxSpec {
            hostname: rec.hostname.clone(),
            host_network: rec.host_network,
            host_ipc: rec.host_ipc,
            share_pid: rec.share_pid,
            host_pid: rec.host_pid,
            state_dir: dir.clone(),
            isolation: self.isolation.level,
            subids: self.isolation.subids,
        };
        let handle = match linux::start_sandbox(&spec) {
            Ok(h) => h,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(Status::internal(format!("starting the pod sandbox: {e}")));
            }
        };
        rec.holder_pid = handle.pid;
        rec.holder = identity::ProcessIdentity::of(handle.pid, false).unwrap_or_default();
        rec.ready = true;
        self.save_sandbox(&rec);
        let id = rec.id.clone();
        self.lock().sandboxes.insert(id.clone(), rec);
        Ok(id)
    }

    /// Stops a sandbox: its containers and its holder (idempotent).
    pub fn stop_sandbox(&self, id: &str) -> Result<(), Status> {
        let Ok(sb) = self.sandbox(id) else {
            return Ok(());
        };
        let ids: Vec<String> = self
            .containers_where(|c| c.sandbox_id == sb.id && c.state == ContainerStateKind::Running)
            .into_iter()
            .map(|c| c.id)
            .collect();
        for c in ids {
            self.stop_container_blocking(&c, 0)?;
        }
        if sb.holder_pid != 0 {
            kill(sb.holder_pid, nix::sys::signal::Signal::SIGKILL);
            wait_gone(sb.holder_pid, Duration::from_secs(5));
        }
        let mut st = self.lock();
        if let Some(s) = st.sandboxes.get_mut(&sb.id) {
            s.ready = false;
            s.holder_pid = 0;
            let s = s.clone();
            drop(st);
            self.save_sandbox(&s);
        }
        Ok(())
    }

    /// Removes a sandbox and its containers (idempotent).
    pub fn remove_sandbox(&self, id: &str) -> Result<(), Status> {
        let Ok(sb) = self.sandbox(id) else {
            return Ok(());
        };
        self.stop_sandbox(&sb.id)?;
        let ids: Vec<String> = self
            .containers_where(|c| c.sandbox_id == sb.id)
            .into_iter()
            .map(|c| c.id)
            .collect();
        for c in ids {
            self.remove_container(&c)?;
        }
        let _ = std::fs::remove_dir_all(self.root.join("sandboxes").join(&sb.id));
        let _ = std::fs::remove_file(self.root.join("sandboxes").join(format!("{}.json", sb.id)));
        self.lock().sandboxes.remove(&sb.id);
        Ok(())
    }

    /// Creates a container record (resolving the image and the command as upstream's
    /// ENTRYPOINT/CMD rules say).
    #[allow(clippy::too_many_arguments)]
    pub fn create_container(
        &self,
        sandbox_id: &str,
        name: &str,
        attempt: u32,
        image: &str,
        command: &[String],
        args: &[String],
        working_dir: &str,
        envs: &[(String, String)],
        mounts: Vec<(String, String, bool)>,
        labels: HashMap<String, String>,
        annotations: HashMap<String, String>,
        log_path: &str,
        tty: bool,
        (stdin, stdin_once): (bool, bool),
        user: (Option<i64>, Option<i64>),
        limits: (i64, i64, i64),
    ) -> Result<String, Status> {
        let sb = self.sandbox(sandbox_id)?;
        if !sb.ready {
            return Err(Status::failed_precondition(format!(
                "pod sandbox {} is not ready",
                sb.id
            )));
        }
        let img = self.images.resolve(image).ok_or_else(|| {
            Status::not_found(format!("image {image:?} not found in the local store"))
        })?;
        let cfg = &img.config;
        let argv: Vec<String> = if !command.is_empty() {
            command.iter().chain(args.iter()).cloned().collect()
        } else if !args.is_empty() {
            cfg.entrypoint.iter().chain(args.iter()).cloned().collect()
        } else {
            cfg.entrypoint
                .iter()
                .chain(cfg.cmd.iter())
                .cloned()
                .collect()
        };
        if argv.is_empty() {
            return Err(Status::invalid_argument("no command specified"));
        }
        let mut env: Vec<String> = cfg.env.clone();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
        }
        env.push(format!("HOSTNAME={}", sb.hostname));
        for (k, v) in envs {
            env.retain(|e| !e.starts_with(&format!("{k}=")));
            env.push(format!("{k}={v}"));
        }
        let (img_uid, img_gid) = parse_user(&cfg.user);
        let id = new_id();
        let log_path = if log_path.is_empty() {
            String::new()
        } else {
            Path::new(&sb.log_directory)
                .join(log_path)
                .display()
                .to_string()
        };
        let layers = self.images.layer_dirs(&img);
        let mut all_mounts = mounts;
        let sdir = self.root.join("sandboxes").join(&sb.id);
        for f in ["hosts", "hostname", "resolv.conf"] {
            let dest = format!("/etc/{f}");
            if !all_mounts.iter().any(|m| m.1 == dest) {
                all_mounts.push((sdir.join(f).display().to_string(), dest, false));
            }
        }
        let rec = ContainerRecord {
            id: id.clone(),
            sandbox_id: sb.id.clone(),
            name: name.to_string(),
            attempt,
            image: image.to_string(),
            image_ref: img.id.clone(),
            labels,
            annotations,
            state: ContainerStateKind::Created,
            created_at: now_ns(),
            started_at: 0,
            finished_at: 0,
            exit_code: 0,
            reason: String::new(),
            message: String::new(),
            pid: 0,
            log_path,
            argv,
            env,
            cwd: if !working_dir.is_empty() {
                working_dir.to_string()
            } else if !cfg.working_dir.is_empty() {
                cfg.working_dir.clone()
            } else {
                "/".into()
            },
            uid: user.0.map(|u| u as u32).unwrap_or(img_uid),
            gid: user.1.map(|g| g as u32).unwrap_or(img_gid),
            mounts: all_mounts,
            tty,
            stdin,
            stdin_once,
            layers: if layers.len() == 1 && layers[0] == Path::new("/") {
                Vec::new()
            } else {
                layers
            },
            memory_limit: limits.0,
            cpu_quota: limits.1,
            cpu_period: limits.2,
            cgroup: None,
            process: Default::default(),
            shim: Default::default(),
            pid_target: None,
        };
        self.save_container(&rec);
        self.lock().containers.insert(id.clone(), rec);
        Ok(id)
    }

    /// Starts a created container; its output goes to its CRI log file.
    pub fn start_container(self: &Arc<Self>, id: &str) -> Result<(), Status> {
        let _starting = self.starting.read().unwrap_or_else(|e| e.into_inner());
        if self.closing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Status::unavailable(
                "the container runtime is shutting down",
            ));
        }
        let mut rec = self.container(id)?;
        if rec.state != ContainerStateKind::Created {
            return Err(Status::failed_precondition(format!(
                "container {} is not in created state",
                rec.id
            )));
        }
        let sb = self.sandbox(&rec.sandbox_id)?;
        let dir = self.container_dir(&rec.id);
        let rootfs = if rec.layers.is_empty() {
            linux::Rootfs::Host
        } else {
            linux::Rootfs::Layers {
                lower: rec.layers.clone(),
            }
        };
        rec.cgroup = self.container_cgroup(&rec)?;
        let spec = linux::ContainerSpec {
            sandbox_pid: sb.holder_pid,
            state_dir: dir.clone(),
            rootfs,
            args: rec.argv.clone(),
            env: rec.env.clone(),
            cwd: rec.cwd.clone(),
            uid: rec.uid,
            gid: rec.gid,
            additional_gids: Vec::new(),
            mounts: rec
                .mounts
                .iter()
                .map(|(h, c, ro)| linux::Mount::Bind {
                    source: PathBuf::from(h),
                    destination: PathBuf::from(c),
                    read_only: *ro,
                })
                .collect(),
            hostname: sb.hostname.clone(),
            host_pid: sb.host_pid,
            join_pid_of: match self.pid_target_pid(&rec)? {
                Some(pid) => Some(pid),
                None if sb.share_pid => Some(sb.holder_pid),
                None => None,
            },
            cgroup: rec.cgroup.clone(),
            tty: rec.tty,
            no_new_privs: true,
            capabilities: None,
            isolation: self.isolation.clone(),
            masked_paths: self
                .masked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        };
        // The container's stdio: a terminal (pty) for `tty: true`, else FIFOs the shim
        // keeps open (see `stdio`); stdin only for `stdin: true`. The runtime keeps its
        // ends so attach can reach them.
        let pty = if rec.tty {
            let p = nix::pty::openpty(None, None).map_err(internal)?;
            attach::set_window_size(
                std::os::fd::AsRawFd::as_raw_fd(&p.master),
                crate::stream::remotecommand::TerminalSize {
                    width: 80,
                    height: 24,
                },
            );
            Some(p)
        } else {
            None
        };
        let (shim_stdio, mut ends) =
            stdio::create(&dir, pty.as_ref(), rec.stdin && !rec.tty).map_err(internal)?;
        let started = linux::start_container(&spec, shim_stdio);
        let mut started = match started {
            Ok(s) => s,
            Err(e) => {
                rec.state = ContainerStateKind::Exited;
                rec.exit_code = 128;
                rec.reason = "StartError".into();
                rec.message = e.to_string();
                rec.finished_at = now_ns();
                self.save_container(&rec);
                self.lock().containers.insert(rec.id.clone(), rec.clone());
                return Err(Status::unknown(format!(
                    "failed to start container {:?}: {e}",
                    rec.name
                )));
            }
        };
        rec.pid = started.pid;
        let own_mnt = self.isolation.level != linux::Level::Unprivileged;
        rec.process = identity::ProcessIdentity::of(started.pid, own_mnt).unwrap_or_default();
        rec.shim = identity::ProcessIdentity::of(started.helper.id(), false).unwrap_or_default();
        rec.state = ContainerStateKind::Running;
        rec.started_at = now_ns();
        self.save_container(&rec);
        self.lock().containers.insert(rec.id.clone(), rec.clone());
        let stdin: Option<Box<dyn std::io::Write + Send>> = started
            .helper
            .stdin
            .take()
            .map(|w| Box::new(w) as Box<dyn std::io::Write + Send>);
        if let Some(p) = pty {
            // Only the shim holds the slave now: EIO on the master = exit.
            drop(p.slave);
            ends.master = Some(p.master);
        }
        let pumps = self.wire_stdio(&rec, ends, stdin)?;
        let me = self.clone();
        let id = rec.id.clone();
        let mut helper = started.helper;
        std::thread::spawn(move || {
            let status = helper.wait();
            for p in pumps.threads {
                let _ = p.join();
            }
            pumps.hub.close_stdin();
            pumps.hub.mark_exited();
            let code = match status {
                Ok(s) => s.code().unwrap_or_else(|| {
                    use std::os::unix::process::ExitStatusExt;
                    128 + s.signal().unwrap_or(0)
                }),
                Err(_) => 255,
            };
            me.mark_exited(&id, code);
        });
        Ok(())
    }

    /// Makes a created container join the PID namespace of the running container
    /// `target` when it starts (CRI namespace mode `TARGET`). Without PID namespaces
    /// (the unprivileged level) every process is visible already and nothing is joined.
    pub fn set_pid_target(&self, id: &str, target: &str) -> Result<(), Status> {
        let target = self.container(target)?;
        let mut rec = self.container(id)?;
        if target.sandbox_id != rec.sandbox_id {
            return Err(Status::invalid_argument(format!(
                "target container {} is not in the sandbox of container {}",
                target.id, rec.id
            )));
        }
        if self.isolation.level == linux::Level::Unprivileged {
            return Ok(());
        }
        rec.pid_target = Some(target.id);
        self.save_container(&rec);
        self.lock().containers.insert(rec.id.clone(), rec);
        Ok(())
    }

    /// The pid whose PID namespace a starting container joins for its target.
    fn pid_target_pid(&self, rec: &ContainerRecord) -> Result<Option<u32>, Status> {
        let Some(target) = &rec.pid_target else {
            return Ok(None);
        };
        let t = self.container(target)?;
        if t.state != ContainerStateKind::Running || t.pid == 0 {
            return Err(Status::failed_precondition(format!(
                "target container {} is not running",
                t.id
            )));
        }
        Ok(Some(t.pid))
    }

    /// Changes the limits of a container (CRI `UpdateContainerResources`): recorded, and
    /// applied to its cgroup when it runs in one. Where the machine allows no cgroups the
    /// container runs unlimited anyway (the node's `CgroupLimits` condition says so).
    pub fn update_container_resources(
        &self,
        id: &str,
        limits: linux::CgroupLimits,
    ) -> Result<(), Status> {
        let mut rec = self.container(id)?;
        if let Some(cg) = &rec.cgroup
            && rec.state == ContainerStateKind::Running
        {
            cg.update(&limits).map_err(|e| {
                Status::unknown(format!(
                    "failed to update container {} resources: {e}",
                    rec.id
                ))
            })?;
        }
        rec.memory_limit = limits.memory_bytes;
        rec.cpu_quota = limits.cpu_quota;
        rec.cpu_period = limits.cpu_period;
        self.save_container(&rec);
        self.lock().containers.insert(rec.id.clone(), rec);
        Ok(())
    }

    /// Connects a running container's stdio to its CRI log and its attach hub: one pump
    /// thread per output stream. `stdin` is the writer of a non-terminal container.
    fn wire_stdio(
        &self,
        rec: &ContainerRecord,
        ends: stdio::RuntimeEnds,
        stdin: Option<Box<dyn std::io::Write + Send>>,
    ) -> Result<Pumps, Status> {
        let log = if rec.log_path.is_empty() {
            None
        } else {
            if let Some(parent) = Path::new(&rec.log_path).parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            Some(Arc::new(Mutex::new(
                logs::LogWriter::open(Path::new(&rec.log_path), 10 << 20, 5).map_err(internal)?,
            )))
        };
        type Reader = Box<dyn std::io::Read + Send>;
        let (out, err, hub): (Option<Reader>, Option<Reader>, Arc<attach::AttachHub>) =
            match ends.master {
                Some(master) => {
                    let reader = std::fs::File::from(master.try_clone().map_err(internal)?);
                    let writer: Option<Box<dyn std::io::Write + Send>> = if rec.stdin {
                        Some(Box::new(std::fs::File::from(
                            master.try_clone().map_err(internal)?,
                        )))
                    } else {
                        None
                    };
                    (
                        Some(Box::new(reader)),
                        None,
                        Arc::new(attach::AttachHub::new(writer, Some(master), rec.stdin_once)),
                    )
                }
                None => (
                    ends.stdout.map(|o| Box::new(o) as Reader),
                    ends.stderr.map(|e| Box::new(e) as Reader),
                    Arc::new(attach::AttachHub::new(stdin, None, rec.stdin_once)),
                ),
            };
        self.hubs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(rec.id.clone(), hub.clone());
        let mut threads = Vec::new();
        for (pipe, stream, out_stream) in [
            (out, logs::Stream::Stdout, attach::OutputStream::Stdout),
            (err, logs::Stream::Stderr, attach::OutputStream::Stderr),
        ] {
            if let Some(mut pipe) = pipe {
                let log = log.clone();
                let hub = hub.clone();
                threads.push(std::thread::spawn(move || {
                    let mut buf = vec![0u8; 32 * 1024];
                    loop {
                        match std::io::Read::read(&mut pipe, &mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                hub.publish(out_stream, &buf[..n]);
                                if let Some(l) = &log
                                    && let Ok(mut w) = l.lock()
                                {
                                    let _ = w.write(stream, &buf[..n]);
                                }
                            }
                        }
                    }
                    if let Some(l) = &log
                        && let Ok(mut w) = l.lock()
                    {
                        let _ = w.close_stream(stream);
                    }
                }));
            }
        }
        Ok(Pumps { threads, hub })
    }

    /// At the unprivileged level, the directory a container runs in: its copied image, or
    /// the shared root for the host image (see `linux::helpers::unprivileged_root`).
    pub(crate) fn unprivileged_root(&self, rec: &ContainerRecord) -> Option<String> {
        (self.isolation.level == linux::Level::Unprivileged).then(|| {
            if self.isolation.chroot && !rec.layers.is_empty() {
                self.container_dir(&rec.id)
                    .join("rootfs")
                    .display()
                    .to_string()
            } else {
                "/".to_string()
            }
        })
    }

    /// Hides `paths` from every container started from now on, besides rkind's data
    /// directories (the cluster's kubeconfig, say).
    pub fn hide_from_pods(&self, paths: impl IntoIterator<Item = PathBuf>) {
        let mut masked = self.masked.lock().unwrap_or_else(|e| e.into_inner());
        for p in paths {
            if !masked.contains(&p) {
                masked.push(p);
            }
        }
    }

    /// The isolation level in use (for `rkind up`, `rkind status` and the Node).
    pub fn isolation(&self) -> &linux::Isolation {
        &self.isolation
    }

    /// The cgroup layout in use (for the node's `CgroupLimits` condition).
    pub fn cgroup_mode(&self) -> &linux::cgroup::Mode {
        &self.cgroups
    }

    /// Creates the container's cgroup with its limits. Without cgroups on this machine
    /// the container runs unlimited (the node's `CgroupLimits` condition says so); a
    /// cgroup that cannot be set up where cgroups work fails the start.
    fn container_cgroup(
        &self,
        rec: &ContainerRecord,
    ) -> Result<Option<linux::cgroup::ContainerCgroup>, Status> {
        if matches!(self.cgroups, linux::cgroup::Mode::Unavailable(_)) {
            return Ok(None);
        }
        let limits = linux::CgroupLimits {
            memory_bytes: rec.memory_limit,
            cpu_quota: rec.cpu_quota,
            cpu_period: rec.cpu_period,
            cpu_shares: 0,
        };
        let cg = linux::cgroup::create(&self.cgroups, &rec.id, &limits).map_err(|e| {
            Status::unknown(format!(
                "failed to create containerd task: failed to apply cgroup limits: {e}"
            ))
        })?;
        Ok(Some(cg))
    }

    fn mark_exited(&self, id: &str, code: i32) {
        let dir = self.container_dir(id);
        let _ = std::fs::write(dir.join("exitcode"), code.to_string());
        linux::cleanup_container(&dir);
        let mut st = self.lock();
        if let Some(c) = st.containers.get_mut(id) {
            if c.state == ContainerStateKind::Running {
                c.state = ContainerStateKind::Exited;
                c.exit_code = code;
                c.finished_at = now_ns();
                if c.reason.is_empty() {
                    let oom = c.cgroup.as_ref().is_some_and(|cg| cg.oom_killed());
                    c.reason = if oom || oom_killed(&dir) {
                        "OOMKilled".into()
                    } else if code == 0 {
                        "Completed".into()
                    } else {
                        "Error".into()
                    };
                }
            }
            let c = c.clone();
            drop(st);
            self.save_container(&c);
            // Its limits served their purpose (the OOM verdict is taken): no empty
            // cgroup stays behind, even if rkind stops before the container is removed.
            if let Some(cg) = &c.cgroup {
                cg.remove();
            }
        }
    }

    /// Takes over a container that a previous rkind started and that still runs: its
    /// output is pumped into its log again, attach reaches it again, and its exit (the
    /// code its shim writes) is recorded when its shim ends.
    fn adopt(self: Arc<Self>, rec: ContainerRecord) {
        let dir = self.container_dir(&rec.id);
        let ends = match stdio::reopen(&dir, rec.tty, rec.shim.pid) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(container = %rec.id, "adopted without its output: {e}");
                stdio::RuntimeEnds::default()
            }
        };
        let pumps = match self.wire_stdio(&rec, ends, None) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(container = %rec.id, "adopted without its log: {}", e.message());
                Pumps {
                    threads: Vec::new(),
                    hub: Arc::new(attach::AttachHub::new(None, None, rec.stdin_once)),
                }
            }
        };
        tracing::info!(container = %rec.id, pid = rec.pid, "adopted a running container");
        std::thread::spawn(move || {
            // Not our child: wait for the shim to go (it writes the exit code first).
            while rec.shim.is_running() || (rec.shim.pid == 0 && pid_alive(rec.pid)) {
                std::thread::sleep(Duration::from_millis(200));
            }
            for p in pumps.threads {
                let _ = p.join();
            }
            pumps.hub.close_stdin();
            pumps.hub.mark_exited();
            let code = read_exit_code(&dir).unwrap_or(255);
            self.mark_exited(&rec.id, code);
        });
    }

    /// Stops a container: SIGTERM, then SIGKILL after `timeout` seconds (blocking).
    pub fn stop_container_blocking(&self, id: &str, timeout: i64) -> Result<(), Status> {
        let rec = self.container(id)?;
        let unprivileged = self.isolation.level == linux::Level::Unprivileged;
        if rec.state != ContainerStateKind::Running || rec.pid == 0 {
            return Ok(());
        }
        if timeout > 0 {
            signal_container(rec.pid, nix::sys::signal::Signal::SIGTERM, unprivileged);
            let deadline = std::time::Instant::now() + Duration::from_secs(timeout as u64);
            while std::time::Instant::now() < deadline {
                if self
                    .container(id)
                    .map(|c| c.state != ContainerStateKind::Running)
                    .unwrap_or(true)
                {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        signal_container(rec.pid, nix::sys::signal::Signal::SIGKILL, unprivileged);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if self
                .container(id)
                .map(|c| c.state != ContainerStateKind::Running)
                .unwrap_or(true)
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(Status::deadline_exceeded(format!(
            "container {id} did not stop"
        )))
    }

    /// Stops every container (SIGTERM, then SIGKILL after `grace`) and every sandbox
    /// holder, as `rkind down` / SIGTERM must leave no process behind. Records stay, so
    /// the kubelet recreates the pods on the next start.
    pub fn shutdown(&self, grace: Duration) {
        self.closing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        // Wait for starts under way: what they started is then in the records.
        drop(self.starting.write().unwrap_or_else(|e| e.into_inner()));
        // A start that was already under way when the flag was set shows up as running
        // on the next pass.
        for _ in 0..3 {
            // Each container gets its pod's grace period, at most `grace`.
            let running: Vec<(String, i64)> = self
                .containers()
                .into_iter()
                .filter(|c| c.state == ContainerStateKind::Running)
                .map(|c| {
                    let pod_grace = c
                        .annotations
                        .get("io.kubernetes.pod.terminationGracePeriod")
                        .and_then(|v| v.parse::<i64>().ok())
                        .unwrap_or(i64::MAX);
                    (c.id, pod_grace.min(grace.as_secs() as i64))
                })
                .collect();
            if running.is_empty() {
                break;
            }
            std::thread::scope(|scope| {
                for (id, secs) in &running {
                    scope.spawn(move || {
                        let _ = self.stop_container_blocking(id, *secs);
                    });
                }
            });
        }
        for sb in self.sandboxes() {
            if sb.ready {
                let _ = self.stop_sandbox(&sb.id);
            }
        }
        // No cgroup outlives the cluster (they are recreated with the containers).
        for c in self.containers() {
            if let Some(cg) = &c.cgroup {
                cg.remove();
            }
        }
    }

    /// Removes a container (stopping it first) and its state (idempotent).
    pub fn remove_container(&self, id: &str) -> Result<(), Status> {
        let Ok(rec) = self.container(id) else {
            return Ok(());
        };
        self.stop_container_blocking(&rec.id, 0)?;
        let dir = self.container_dir(&rec.id);
        linux::cleanup_container(&dir);
        if let Some(cg) = &rec.cgroup {
            cg.remove();
        }
        let _ = std::fs::remove_dir_all(&dir);
        self.lock().containers.remove(&rec.id);
        self.hubs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&rec.id);
        Ok(())
    }

    /// The attachable stdio of a running container started by this process.
    pub fn attach_hub(&self, id: &str) -> Option<Arc<attach::AttachHub>> {
        self.hubs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// Runs a command in a running container and collects its output (ExecSync).
    pub async fn exec_sync(
        &self,
        id: &str,
        cmd: &[String],
        timeout: i64,
    ) -> Result<(Vec<u8>, Vec<u8>, i32), Status> {
        let rec = self.container(id)?;
        if rec.state != ContainerStateKind::Running {
            return Err(Status::failed_precondition(format!(
                "container {} is not running",
                rec.id
            )));
        }
        let mut command = linux::exec_command(&linux::ExecSpec {
            pid: rec.pid,
            argv: cmd.to_vec(),
            env: rec.env.clone(),
            cwd: if rec.cwd.is_empty() {
                "/".into()
            } else {
                rec.cwd.clone()
            },
            tty: false,
            error_file: None,
            report: false,
            cgroup: rec.exec_cgroup(),
            uid: rec.uid,
            gid: rec.gid,
            level: self.isolation.level,
            root: self.unprivileged_root(&rec),
        });
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut command = tokio::process::Command::from(command);
        command.kill_on_drop(true);
        let child = command.spawn().map_err(internal)?;
        let helper = child.id().unwrap_or(0);
        let mut fut = Box::pin(child.wait_with_output());
        let out = if timeout > 0 {
            tokio::select! {
                r = &mut fut => r.map_err(internal)?,
                _ = tokio::time::sleep(Duration::from_secs(timeout as u64)) => {
                    // The command is gone before the caller hears of the timeout (a
                    // caller that looks right away must not find it, as critest does):
                    // the helper is killed with the future, the command explicitly.
                    let command = children_of(helper);
                    drop(fut);
                    for pid in command {
                        kill(pid, nix::sys::signal::Signal::SIGKILL);
                        let deadline = std::time::Instant::now() + Duration::from_secs(5);
                        while pid_alive(pid) && std::time::Instant::now() < deadline {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                    return Err(Status::deadline_exceeded(format!(
                        "command {cmd:?} timed out after {timeout}s"
                    )));
                }
            }
        } else {
            fut.await.map_err(internal)?
        };
        let code = out.status.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            128 + out.status.signal().unwrap_or(0)
        });
        Ok((out.stdout, out.stderr, code))
    }
}

/// What no pod may see, whatever its image: this cluster's data directory (the runtime's
/// `root` is in it) and every cluster's under rkind's XDG data home, which hold the CA
/// and admin keys and the store with every Secret.
fn default_masked_paths(root: &Path) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(data_dir) = root.parent() {
        paths.push(std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf()));
    }
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
    if let Some(home) = data_home {
        let all = home.join("rkind");
        paths.push(std::fs::canonicalize(&all).unwrap_or(all));
    }
    paths
}

/// Writes a container's record into its directory `dir`, atomically (a crash mid-write
/// leaves the previous record).
fn write_container_record(dir: &Path, c: &ContainerRecord) {
    let _ = std::fs::create_dir_all(dir);
    let tmp = dir.join("record.json.tmp");
    if std::fs::write(&tmp, serde_json::to_vec(c).unwrap_or_default()).is_ok() {
        let _ = std::fs::rename(tmp, dir.join("record.json"));
    }
}

/// What a restarted runtime does with a container its records say is running.
enum Adoption {
    /// It runs, and so do its shim and its sandbox: take it over.
    Adopt,
    /// Its process ended while no rkind ran.
    Died,
    /// It runs but cannot be taken over (why): it is stopped.
    Orphaned(&'static str),
}

fn adoption(c: &ContainerRecord, sandbox_ready: bool) -> Adoption {
    // Records from before identities were kept: the pid alone.
    let alive = if c.process.pid != 0 {
        c.process.is_running()
    } else {
        pid_alive(c.pid)
    };
    if !alive {
        return Adoption::Died;
    }
    if c.shim.pid == 0 || !c.shim.is_running() {
        return Adoption::Orphaned("its shim was gone when rkind restarted");
    }
    if !sandbox_ready {
        return Adoption::Orphaned("its pod sandbox was gone when rkind restarted");
    }
    Adoption::Adopt
}

/// The exit code a container's shim wrote.
fn read_exit_code(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(dir.join("exitcode"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

fn find_by_prefix<'a, T>(map: &'a HashMap<String, T>, id: &str) -> Option<&'a T> {
    if let Some(v) = map.get(id) {
        return Some(v);
    }
    if id.is_empty() {
        return None;
    }
    let mut it = map.iter().filter(|(k, _)| k.starts_with(id));
    match (it.next(), it.next()) {
        (Some((_, v)), None) => Some(v),
        _ => None,
    }
}

fn parse_user(user: &str) -> (u32, u32) {
    let mut parts = user.split(':');
    let u = parts.next().and_then(|u| u.parse().ok()).unwrap_or(0);
    let g = parts.next().and_then(|g| g.parse().ok()).unwrap_or(0);
    (u, g)
}

/// The hostname a pod sandbox gets. As containerd: the one the kubelet asks for, or the
/// node's when it asks for none (a sandbox name is no hostname: critest's are longer
/// than the kernel's 64-byte limit). A requested name the kernel would refuse fails the
/// call at once with what is wrong (the kubelet truncates pod names to 63 first).
fn pod_hostname(requested: &str, host_network: bool) -> Result<String, Status> {
    if requested.is_empty() || host_network {
        return Ok(nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into()));
    }
    if requested.len() > 63 {
        return Err(Status::invalid_argument(format!(
            "hostname {requested:?} is longer than 63 characters"
        )));
    }
    let valid = requested.split('.').all(|label| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if !valid {
        return Err(Status::invalid_argument(format!(
            "hostname {requested:?} is not a valid DNS name"
        )));
    }
    Ok(requested.to_string())
}

fn write_pod_files(dir: &Path, h: &str) -> std::io::Result<()> {
    std::fs::write(dir.join("hostname"), format!("{h}\n"))?;
    std::fs::write(
        dir.join("hosts"),
        format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{h}\n"
        ),
    )?;
    // No DNS server is reachable from a pod yet; keep resolution local.
    std::fs::write(
        dir.join("resolv.conf"),
        "search default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n",
    )?;
    Ok(())
}

/// Whether `pid` exists (and is not a zombie).
pub fn pid_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// The children of process `pid` (its threads' `children` lists).
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    out
}

fn kill(pid: u32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
}

/// Signals a container's process; when that is refused (a rootless pod's process under a
/// subordinate uid) its shim, root in the pod's user namespace, forwards the signal
/// (SIGTERM as is, SIGKILL as SIGUSR2; see the shim's `forward_stop_signals`).
/// At the unprivileged level the container's process group is signalled (it has no PID
/// namespace whose end would take the rest along).
fn signal_container(pid: u32, sig: nix::sys::signal::Signal, group: bool) {
    use nix::sys::signal::Signal;
    let target = nix::unistd::Pid::from_raw(pid as i32);
    if group {
        let _ = nix::sys::signal::killpg(target, sig);
    }
    if let Err(nix::errno::Errno::EPERM) = nix::sys::signal::kill(target, sig) {
        let shim = crate::trace::evidence::stat_fields(pid)
            .and_then(|f| f.get(1).and_then(|p| p.parse::<u32>().ok()));
        if let Some(shim) = shim {
            kill(
                shim,
                if sig == Signal::SIGKILL {
                    Signal::SIGUSR2
                } else {
                    sig
                },
            );
        }
    }
}

fn wait_gone(pid: u32, max: Duration) {
    let deadline = std::time::Instant::now() + max;
    while pid_alive(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn oom_killed(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("oom")).is_ok()
}
