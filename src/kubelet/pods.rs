//! Pod workers: one task per pod bound to this node, reconciling the pod through the
//! CRI runtime (a gRPC client only): sandbox → volumes → init containers in order →
//! containers, restart policy with exponential back-off, graceful termination, and an
//! accurate pod status written back through the API server.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use k8s_openapi::api::core::v1::Service;

use super::volumes::{self, downward_value};
use crate::apiserver::defaults::now_rfc3339;
use crate::client::ApiClient;
use crate::controller::events::record_event;
use crate::controller::informer::Cache;
use crate::runtime::cri;
use cri::image_service_client::ImageServiceClient;
use cri::runtime_service_client::RuntimeServiceClient;

/// Back-off after a container exits: 10 s doubling up to 5 min, as upstream.
const BACKOFF_START: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// What a pod worker needs.
#[derive(Clone)]
pub struct PodEnv {
    /// API client with the kubelet's identity.
    pub api: Arc<ApiClient>,
    /// CRI runtime service client.
    pub runtime: RuntimeServiceClient<Channel>,
    /// CRI image service client.
    pub images: ImageServiceClient<Channel>,
    /// Node name.
    pub node: String,
    /// Where pod directories (volumes, logs) live.
    pub pods_dir: PathBuf,
    /// The service-account tokens of this node's pods.
    pub tokens: Arc<super::tokens::TokenManager>,
    /// Every Service (their variables go into containers' environments).
    pub services: Cache<Service>,
}

/// Connects to the runtime's CRI socket (the kubelet is only ever a gRPC client).
pub async fn connect_cri(socket: &std::path::Path) -> Result<Channel, tonic::transport::Error> {
    tonic::transport::Endpoint::try_from(format!("unix://{}", socket.display()))?
        .connect()
        .await
}

/// What the worker knows about one container of the pod (across restarts).
#[derive(Default, Clone)]
struct ContainerTrack {
    /// The current container's id ("" before the first create).
    id: String,
    /// Restarts so far.
    restart_count: i32,
    /// Current back-off (doubles after each failure).
    backoff: Option<Duration>,
    /// Not before this instant may the container be started again.
    next_start: Option<Instant>,
    /// How the current container ended, once it has.
    last_terminated: Option<Value>,
    /// How the previous attempt ended (`lastState`).
    previous: Option<Value>,
    /// Whether a container was ever started.
    started_once: bool,
    /// Waiting reason and message (CrashLoopBackOff, ErrImagePull, ...).
    waiting: Option<(String, String)>,
    /// Probe bookkeeping of the current container.
    probes: ProbeState,
    /// Image id the current container runs.
    image_id: String,
    /// The resources (requests and limits) the current container runs with: set at its
    /// start and by each in-place resize the runtime applied.
    applied: Option<Value>,
    /// Why the last in-place resize of the current container failed, if it did.
    resize_error: Option<String>,
}

/// Results of one container's probes (reset when the container restarts).
#[derive(Default, Clone)]
struct ProbeState {
    /// Startup probe passed (or there is none).
    started: bool,
    /// Readiness probe passing (or there is none).
    ready: bool,
    /// Per probe kind: consecutive successes, consecutive failures, next run.
    counters: HashMap<&'static str, (i64, i64, Option<Instant>)>,
}

struct Worker {
    env: PodEnv,
    pod: Value,
    sandbox_id: Option<String>,
    tracks: HashMap<String, ContainerTrack>,
    volumes_ready: bool,
    mounts: HashMap<String, PathBuf>,
    /// When the projected volumes' tokens are due for renewal.
    tokens_due: Option<Instant>,
    last_status: Value,
    start_time: String,
    terminating: bool,
    /// Whether what the runtime still runs for this pod was looked up (once per worker).
    recovered: bool,
}

/// Dispatches pod events to one worker per pod uid.
pub struct PodManager {
    env: PodEnv,
    workers: HashMap<String, mpsc::Sender<Value>>,
    shutdown: CancellationToken,
}

impl PodManager {
    /// A manager for this node's pods.
    pub fn new(env: PodEnv, shutdown: CancellationToken) -> Self {
        PodManager {
            env,
            workers: HashMap::new(),
            shutdown,
        }
    }

    /// Hands the latest state of a pod to its worker, starting one if needed.
    pub async fn update(&mut self, pod: Value) {
        let uid = pod["metadata"]["uid"].as_str().unwrap_or("").to_string();
        if uid.is_empty() {
            return;
        }
        self.workers.retain(|_, tx| !tx.is_closed());
        if let Some(tx) = self.workers.get(&uid) {
            let _ = tx.send(pod).await;
            return;
        }
        let (tx, rx) = mpsc::channel(16);
        let worker = Worker {
            env: self.env.clone(),
            pod: pod.clone(),
            sandbox_id: None,
            tracks: HashMap::new(),
            volumes_ready: false,
            mounts: HashMap::new(),
            tokens_due: None,
            last_status: Value::Null,
            start_time: pod["status"]["startTime"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(now_rfc3339),
            terminating: false,
            recovered: false,
        };
        tokio::spawn(worker.run(rx, self.shutdown.clone()));
        self.workers.insert(uid, tx);
    }
}

impl PodManager {
    /// A pod that left the API (e.g. `kubectl delete --force`): its worker stops the
    /// containers and removes the sandbox as for a deletion, with the grace period the
    /// object last had (none for a forced deletion).
    pub async fn removed(&mut self, mut pod: Value) {
        let uid = pod["metadata"]["uid"].as_str().unwrap_or("").to_string();
        let Some(tx) = self.workers.get(&uid) else {
            return;
        };
        if !pod["metadata"]["deletionTimestamp"].is_string() {
            pod["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
        }
        if pod["metadata"]["deletionGracePeriodSeconds"].is_null() {
            pod["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        }
        let _ = tx.send(pod).await;
    }
}

/// The pod's hostname as upstream's kubelet makes it: `spec.hostname`, else the pod's
/// name, cut to the kernel's 63 characters without a trailing `-` or `.`.
fn pod_hostname(pod: &Value) -> String {
    let name = pod["spec"]["hostname"]
        .as_str()
        .filter(|h| !h.is_empty())
        .or_else(|| pod["metadata"]["name"].as_str())
        .unwrap_or("");
    let mut h: String = name.chars().take(63).collect();
    while h.ends_with('-') || h.ends_with('.') {
        h.pop();
    }
    h
}

fn pod_key(pod: &Value) -> (String, String, String) {
    (
        pod["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string(),
        pod["metadata"]["name"].as_str().unwrap_or("").to_string(),
        pod["metadata"]["uid"].as_str().unwrap_or("").to_string(),
    )
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Value>, shutdown: CancellationToken) {
        let (ns, name, _) = pod_key(&self.pod);
        let span = tracing::info_span!("kubelet_pod_worker", pod = %format!("{ns}/{name}"));
        let _e = span.enter();
        drop(_e);
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            if let Err(e) = self.sync().await {
                tracing::warn!(pod = %name, error = %e, "pod sync failed");
            }
            if self.terminating && self.sandbox_id.is_none() {
                return;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                p = rx.recv() => match p {
                    Some(p) => self.pod = p,
                    None => return,
                },
                _ = tick.tick() => {}
            }
        }
    }

    fn spec(&self) -> &Value {
        &self.pod["spec"]
    }

    async fn event(&self, kind: &str, reason: &str, msg: &str) {
        record_event(&self.env.api, &self.pod, kind, reason, msg, "kubelet").await;
    }

    async fn sync(&mut self) -> Result<(), String> {
        if self.pod["metadata"]["deletionTimestamp"].is_string() {
            return self.terminate().await;
        }
        if !self.recovered {
            self.recover().await?;
            self.recovered = true;
        }
        if self.sandbox_id.is_none() {
            self.run_sandbox().await?;
        }
        let base = self.volumes_dir();
        if !self.volumes_ready {
            match volumes::prepare(&self.env, &self.pod, &base).await {
                Ok(prepared) => {
                    self.mounts = prepared.mounts;
                    self.tokens_due = prepared.refresh_at;
                    self.volumes_ready = true;
                }
                Err(msg) => {
                    self.event("Warning", "FailedMount", &msg).await;
                    self.write_status().await;
                    return Ok(());
                }
            }
        } else if self.tokens_due.is_some_and(|at| Instant::now() >= at) {
            match volumes::refresh_projected(&self.env, &self.pod, &base).await {
                Ok(next) => self.tokens_due = next,
                Err(msg) => self.event("Warning", "FailedMount", &msg).await,
            }
        }
        self.refresh_containers().await;
        let restart = self.spec()["restartPolicy"]
            .as_str()
            .unwrap_or("Always")
            .to_string();
        // Init containers, one after the other.
        let inits: Vec<Value> = self.spec()["initContainers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut inits_done = true;
        for c in &inits {
            let cname = c["name"].as_str().unwrap_or("").to_string();
            let t = self.tracks.get(&cname).cloned().unwrap_or_default();
            let exit = t
                .last_terminated
                .as_ref()
                .and_then(|s| s["exitCode"].as_i64());
            let running = !t.id.is_empty() && t.last_terminated.is_none();
            if exit == Some(0) {
                continue;
            }
            inits_done = false;
            if running {
                break;
            }
            if exit.is_some() && restart == "Never" {
                break;
            }
            self.maybe_start(c, true).await;
            break;
        }
        if inits_done {
            let cs: Vec<Value> = self.spec()["containers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for c in &cs {
                let cname = c["name"].as_str().unwrap_or("").to_string();
                let t = self.tracks.get(&cname).cloned().unwrap_or_default();
                let running = !t.id.is_empty() && t.last_terminated.is_none();
                if running {
                    continue;
                }
                if let Some(term) = &t.last_terminated {
                    let code = term["exitCode"].as_i64().unwrap_or(0);
                    let again = match restart.as_str() {
                        "Never" => false,
                        "OnFailure" => code != 0,
                        _ => true,
                    };
                    if !again {
                        continue;
                    }
                }
                self.maybe_start(c, false).await;
            }
        }
        if inits_done {
            self.start_ephemeral_containers().await;
        }
        self.resize_containers().await;
        self.run_probes().await;
        self.write_status().await;
        Ok(())
    }

    /// Starts the ephemeral containers not started yet; they are never restarted.
    async fn start_ephemeral_containers(&mut self) {
        let ecs: Vec<Value> = self.spec()["ephemeralContainers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for c in &ecs {
            let cname = c["name"].as_str().unwrap_or("");
            if self.tracks.get(cname).is_some_and(|t| t.started_once) {
                continue;
            }
            self.maybe_start(c, false).await;
        }
    }

    /// Applies in place (CRI `UpdateContainerResources`) the resources a resize wrote
    /// into the spec of a running container, as upstream's kubelet actuates
    /// `pods/resize`.
    async fn resize_containers(&mut self) {
        let cs: Vec<Value> = self.spec()["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for c in cs {
            let cname = c["name"].as_str().unwrap_or("").to_string();
            let Some(t) = self.tracks.get(&cname) else {
                continue;
            };
            let wanted = cpu_memory(&c["resources"]);
            let running = !t.id.is_empty() && t.last_terminated.is_none() && t.waiting.is_none();
            if !running || t.applied.as_ref() == Some(&wanted) {
                continue;
            }
            let id = t.id.clone();
            let span = tracing::debug_span!("kubelet_to_cri", method = "UpdateContainerResources", container = %cname);
            let _e = span.enter();
            let r = self
                .env
                .runtime
                .clone()
                .update_container_resources(cri::UpdateContainerResourcesRequest {
                    container_id: id,
                    linux: Some(linux_resources(&wanted)),
                    ..Default::default()
                })
                .await;
            drop(_e);
            let Some(tm) = self.tracks.get_mut(&cname) else {
                continue;
            };
            match r {
                Ok(_) => {
                    tm.applied = Some(wanted);
                    tm.resize_error = None;
                }
                Err(e) => {
                    let msg = e.message().to_string();
                    if tm.resize_error.as_deref() != Some(msg.as_str()) {
                        tm.resize_error = Some(msg.clone());
                        self.event(
                            "Warning",
                            "ResizeError",
                            &format!("Failed to resize container {cname}: {msg}"),
                        )
                        .await;
                    }
                }
            }
        }
    }

    /// Runs the startup, readiness and liveness probes that are due (exec through CRI
    /// ExecSync; tcpSocket/httpGet inside the pod's network namespace).
    async fn run_probes(&mut self) {
        let containers: Vec<Value> = self.spec()["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for c in containers {
            let cname = c["name"].as_str().unwrap_or("").to_string();
            let Some(t) = self.tracks.get(&cname).cloned() else {
                continue;
            };
            if t.id.is_empty() || t.last_terminated.is_some() || t.waiting.is_some() {
                continue;
            }
            let started = !c["startupProbe"].is_object() || t.probes.started;
            let kinds: Vec<&'static str> = if started {
                vec!["readinessProbe", "livenessProbe"]
            } else {
                vec!["startupProbe"]
            };
            for kind in kinds {
                let probe = &c[kind];
                if !probe.is_object() {
                    if kind == "readinessProbe"
                        && let Some(tm) = self.tracks.get_mut(&cname)
                    {
                        tm.probes.ready = true;
                    }
                    continue;
                }
                let period = probe["periodSeconds"].as_u64().unwrap_or(10).max(1);
                let delay = probe["initialDelaySeconds"].as_u64().unwrap_or(0);
                let (succ, fail, next) =
                    t.probes.counters.get(kind).cloned().unwrap_or((0, 0, None));
                let now = Instant::now();
                let due = match next {
                    Some(n) => now >= n,
                    None => true,
                };
                if !due {
                    continue;
                }
                if next.is_none() && delay > 0 {
                    if let Some(tm) = self.tracks.get_mut(&cname) {
                        tm.probes
                            .counters
                            .insert(kind, (0, 0, Some(now + Duration::from_secs(delay))));
                    }
                    continue;
                }
                let result = self.probe_once(&t.id, &c, probe).await;
                let (succ, fail) = match &result {
                    Ok(()) => (succ + 1, 0),
                    Err(_) => (0, fail + 1),
                };
                let success_threshold = probe["successThreshold"].as_i64().unwrap_or(1).max(1);
                let failure_threshold = probe["failureThreshold"].as_i64().unwrap_or(3).max(1);
                let label = match kind {
                    "startupProbe" => "Startup",
                    "readinessProbe" => "Readiness",
                    _ => "Liveness",
                };
                if let Err(msg) = &result {
                    self.event(
                        "Warning",
                        "Unhealthy",
                        &format!("{label} probe failed: {msg}"),
                    )
                    .await;
                }
                let mut kill = false;
                if let Some(tm) = self.tracks.get_mut(&cname) {
                    tm.probes
                        .counters
                        .insert(kind, (succ, fail, Some(now + Duration::from_secs(period))));
                    match kind {
                        "startupProbe" => {
                            if succ >= success_threshold {
                                tm.probes.started = true;
                            } else if fail >= failure_threshold {
                                kill = true;
                            }
                        }
                        "readinessProbe" => {
                            if succ >= success_threshold {
                                tm.probes.ready = true;
                            } else if fail >= failure_threshold {
                                tm.probes.ready = false;
                            }
                        }
                        _ => kill = fail >= failure_threshold,
                    }
                }
                if kill {
                    self.event(
                        "Normal",
                        "Killing",
                        &format!(
                            "Container {cname} failed {} probe, will be restarted",
                            label.to_lowercase()
                        ),
                    )
                    .await;
                    let grace = self.spec()["terminationGracePeriodSeconds"]
                        .as_i64()
                        .unwrap_or(30);
                    let _ = self
                        .env
                        .runtime
                        .clone()
                        .stop_container(cri::StopContainerRequest {
                            container_id: t.id.clone(),
                            timeout: grace,
                        })
                        .await;
                    break;
                }
            }
        }
    }

    async fn probe_once(&self, id: &str, c: &Value, probe: &Value) -> Result<(), String> {
        let timeout = probe["timeoutSeconds"].as_i64().unwrap_or(1).max(1);
        if let Some(cmd) = probe["exec"]["command"].as_array() {
            let cmd: Vec<String> = cmd
                .iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect();
            let r = self
                .env
                .runtime
                .clone()
                .exec_sync(cri::ExecSyncRequest {
                    container_id: id.to_string(),
                    cmd,
                    timeout,
                })
                .await
                .map_err(|e| e.message().to_string())?
                .into_inner();
            return if r.exit_code == 0 {
                Ok(())
            } else {
                let out = String::from_utf8_lossy(&r.stdout).to_string()
                    + &String::from_utf8_lossy(&r.stderr);
                Err(if out.trim().is_empty() {
                    format!("command exited with {}", r.exit_code)
                } else {
                    out.trim().to_string()
                })
            };
        }
        let (port_v, path) = if probe["httpGet"].is_object() {
            (
                &probe["httpGet"]["port"],
                Some(probe["httpGet"]["path"].as_str().unwrap_or("/").to_string()),
            )
        } else if probe["tcpSocket"].is_object() {
            (&probe["tcpSocket"]["port"], None)
        } else {
            return Err("unsupported probe type".into());
        };
        let port = match port_v {
            Value::Number(n) => n.as_u64().unwrap_or(0) as u16,
            Value::String(name) => c["ports"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p["name"] == name.as_str()))
                .and_then(|p| p["containerPort"].as_u64())
                .unwrap_or(0) as u16,
            _ => 0,
        };
        let st = self
            .env
            .runtime
            .clone()
            .container_status(cri::ContainerStatusRequest {
                container_id: id.to_string(),
                verbose: true,
            })
            .await
            .map_err(|e| e.message().to_string())?
            .into_inner();
        let pid = st
            .info
            .get("info")
            .and_then(|i| serde_json::from_str::<Value>(i).ok())
            .and_then(|v| v["pid"].as_u64())
            .unwrap_or(0) as u32;
        let mut cmd = tokio::process::Command::from(crate::runtime::linux::netprobe_command(
            pid,
            port,
            path.as_deref(),
            timeout as u64,
        ));
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(timeout as u64 + 2), cmd.output())
            .await
            .map_err(|_| "probe timed out".to_string())?
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    /// Takes up what the runtime still runs for this pod, as upstream's kubelet rebuilds
    /// its view from the runtime when it starts: after a restart of rkind the pod's ready
    /// sandbox and its containers (adopted by the runtime) are this worker's again, with
    /// their restart counts, instead of being started a second time. Sandboxes of the pod
    /// that are no longer ready are stopped (their containers with them).
    async fn recover(&mut self) -> Result<(), String> {
        let (_, _, uid) = pod_key(&self.pod);
        let sandboxes = self
            .env
            .runtime
            .clone()
            .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
            .await
            .map_err(|e| format!("ListPodSandbox: {}", e.message()))?
            .into_inner()
            .items;
        let mut mine: Vec<cri::PodSandbox> = sandboxes
            .into_iter()
            .filter(|s| s.metadata.as_ref().is_some_and(|m| m.uid == uid))
            .collect();
        mine.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        for s in mine {
            if s.state == cri::PodSandboxState::SandboxReady as i32 && self.sandbox_id.is_none() {
                self.sandbox_id = Some(s.id);
                continue;
            }
            if s.state == cri::PodSandboxState::SandboxReady as i32 {
                let _ = self
                    .env
                    .runtime
                    .clone()
                    .stop_pod_sandbox(cri::StopPodSandboxRequest {
                        pod_sandbox_id: s.id,
                    })
                    .await;
            }
        }
        let Some(sandbox) = self.sandbox_id.clone() else {
            return Ok(());
        };
        let mut containers = self
            .sandbox_containers(sandbox)
            .await
            .map_err(|e| format!("ListContainers: {}", e.message()))?;
        // The latest attempt of each container is the current one.
        containers.sort_by_key(|c| (c.metadata.as_ref().map(|m| m.attempt), c.created_at));
        for c in containers {
            let Some(meta) = c.metadata else { continue };
            let t = self.tracks.entry(meta.name.clone()).or_default();
            t.id = c.id;
            t.restart_count = meta.attempt as i32;
            t.started_once = true;
            t.image_id = c.image_ref;
        }
        if !self.tracks.is_empty() {
            // Its volumes were set up by the kubelet before (idempotently again below).
            tracing::info!(pod = %uid, containers = self.tracks.len(), "took up the running pod");
        }
        Ok(())
    }

    async fn run_sandbox(&mut self) -> Result<(), String> {
        let (ns, name, uid) = pod_key(&self.pod);
        let log_dir = self.env.pods_dir.join(format!("{ns}_{name}_{uid}"));
        let _ = std::fs::create_dir_all(&log_dir);
        let host_network = self.spec()["hostNetwork"].as_bool().unwrap_or(false);
        let host_pid = self.spec()["hostPID"].as_bool().unwrap_or(false);
        let host_ipc = self.spec()["hostIPC"].as_bool().unwrap_or(false);
        let share_pid = self.spec()["shareProcessNamespace"]
            .as_bool()
            .unwrap_or(false);
        let mode = |host: bool| {
            if host {
                cri::NamespaceMode::Node as i32
            } else {
                cri::NamespaceMode::Pod as i32
            }
        };
        let pid_mode = if host_pid {
            cri::NamespaceMode::Node as i32
        } else if share_pid {
            cri::NamespaceMode::Pod as i32
        } else {
            cri::NamespaceMode::Container as i32
        };
        let config = cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: name.clone(),
                uid: uid.clone(),
                namespace: ns.clone(),
                attempt: 0,
            }),
            hostname: if host_network {
                String::new()
            } else {
                pod_hostname(&self.pod)
            },
            log_directory: log_dir.display().to_string(),
            labels: labels_of(&self.pod["metadata"]["labels"]),
            annotations: labels_of(&self.pod["metadata"]["annotations"]),
            linux: Some(cri::LinuxPodSandboxConfig {
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(cri::NamespaceOption {
                        network: mode(host_network),
                        pid: pid_mode,
                        ipc: mode(host_ipc),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let resp = self
            .env
            .runtime
            .clone()
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: String::new(),
            })
            .await
            .map_err(|e| format!("RunPodSandbox: {}", e.message()))?;
        self.sandbox_id = Some(resp.into_inner().pod_sandbox_id);
        Ok(())
    }

    /// `<pods_dir>/<uid>/volumes`.
    fn volumes_dir(&self) -> PathBuf {
        let (_, _, uid) = pod_key(&self.pod);
        self.env.pods_dir.join(uid).join("volumes")
    }

    /// The containers of `sandbox`, as the runtime lists them.
    async fn sandbox_containers(
        &self,
        sandbox: String,
    ) -> Result<Vec<cri::Container>, tonic::Status> {
        Ok(self
            .env
            .runtime
            .clone()
            .list_containers(cri::ListContainersRequest {
                filter: Some(cri::ContainerFilter {
                    pod_sandbox_id: sandbox,
                    ..Default::default()
                }),
            })
            .await?
            .into_inner()
            .containers)
    }

    /// Reads the state of this pod's containers from the runtime.
    async fn refresh_containers(&mut self) {
        let Some(sandbox) = self.sandbox_id.clone() else {
            return;
        };
        let Ok(list) = self.sandbox_containers(sandbox).await else {
            return;
        };
        for c in list {
            let cname = c
                .metadata
                .as_ref()
                .map(|m| m.name.clone())
                .unwrap_or_default();
            let Some(t) = self.tracks.get_mut(&cname) else {
                continue;
            };
            if t.id != c.id {
                continue;
            }
            if c.state == cri::ContainerState::ContainerExited as i32
                && t.last_terminated.is_none()
                && let Ok(st) = self
                    .env
                    .runtime
                    .clone()
                    .container_status(cri::ContainerStatusRequest {
                        container_id: c.id.clone(),
                        verbose: false,
                    })
                    .await
                && let Some(s) = st.into_inner().status
            {
                let term = json!({
                    "exitCode": s.exit_code,
                    "reason": if s.reason.is_empty() { if s.exit_code == 0 { "Completed".to_string() } else { "Error".to_string() } } else { s.reason.clone() },
                    "message": if s.message.is_empty() { Value::Null } else { json!(s.message) },
                    "startedAt": ns_to_rfc3339(s.started_at),
                    "finishedAt": ns_to_rfc3339(s.finished_at),
                    "containerID": format!("rkind://{}", s.id),
                });
                t.last_terminated = Some(term);
                let b = t
                    .backoff
                    .map(|b| (b * 2).min(BACKOFF_MAX))
                    .unwrap_or(BACKOFF_START);
                t.backoff = Some(b);
                t.next_start = Some(Instant::now() + b);
            }
        }
    }

    async fn maybe_start(&mut self, c: &Value, init: bool) {
        let cname = c["name"].as_str().unwrap_or("").to_string();
        let t = self.tracks.get(&cname).cloned().unwrap_or_default();
        if let Some(when) = t.next_start
            && Instant::now() < when
        {
            if t.last_terminated.is_some()
                && t.waiting.as_ref().map(|w| w.0.as_str()) != Some("CrashLoopBackOff")
            {
                let msg = format!(
                    "back-off {}s restarting failed container={cname} pod={}",
                    t.backoff.unwrap_or(BACKOFF_START).as_secs(),
                    self.pod["metadata"]["name"].as_str().unwrap_or("")
                );
                self.event("Warning", "BackOff", "Back-off restarting failed container")
                    .await;
                if let Some(tm) = self.tracks.get_mut(&cname) {
                    tm.waiting = Some(("CrashLoopBackOff".into(), msg));
                }
            }
            return;
        }
        let image = c["image"].as_str().unwrap_or("").to_string();
        // Image: resolve locally (PullImage fails cleanly for images not in the store).
        let pulled = self
            .env
            .images
            .clone()
            .pull_image(cri::PullImageRequest {
                image: Some(cri::ImageSpec {
                    image: image.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await;
        let image_ref = match pulled {
            Ok(r) => r.into_inner().image_ref,
            Err(e) => {
                let first = t.waiting.as_ref().map(|w| w.0.as_str()) != Some("ErrImagePull")
                    && t.waiting.as_ref().map(|w| w.0.as_str()) != Some("ImagePullBackOff");
                let msg = format!("Failed to pull image \"{image}\": {}", e.message());
                if first {
                    self.event("Warning", "Failed", &msg).await;
                    self.event("Warning", "Failed", "Error: ErrImagePull").await;
                }
                let tm = self.tracks.entry(cname.clone()).or_default();
                let reason = if first {
                    "ErrImagePull"
                } else {
                    "ImagePullBackOff"
                };
                tm.waiting = Some((reason.into(), msg));
                let b = tm
                    .backoff
                    .map(|b| (b * 2).min(BACKOFF_MAX))
                    .unwrap_or(BACKOFF_START);
                tm.backoff = Some(b);
                tm.next_start = Some(Instant::now() + b);
                return;
            }
        };
        if !t.started_once {
            self.event(
                "Normal",
                "Pulled",
                &format!("Container image \"{image}\" already present on machine"),
            )
            .await;
        }
        let (ns, name, uid) = pod_key(&self.pod);
        let attempt = if t.started_once {
            t.restart_count as u32 + 1
        } else {
            0
        };
        let mut mounts = Vec::new();
        for vm in c["volumeMounts"].as_array().cloned().unwrap_or_default() {
            let vname = vm["name"].as_str().unwrap_or("");
            if let Some(host) = self.mounts.get(vname) {
                let mut hp = host.clone();
                if let Some(sub) = vm["subPath"].as_str().filter(|s| !s.is_empty()) {
                    hp = hp.join(sub);
                }
                mounts.push(cri::Mount {
                    container_path: vm["mountPath"].as_str().unwrap_or("").to_string(),
                    host_path: hp.display().to_string(),
                    readonly: vm["readOnly"].as_bool().unwrap_or(false),
                    ..Default::default()
                });
            }
        }
        let services = self.env.services.list();
        let service_vars = super::service_env::service_env(
            services.iter().map(|s| s.as_ref()),
            &ns,
            self.spec()["enableServiceLinks"].as_bool().unwrap_or(true),
            self.env.api.addr(),
        );
        let envs = container_env(&self.env.api, &self.pod, c, service_vars).await;
        let sc = &c["securityContext"];
        let psc = &self.spec()["securityContext"];
        let run_as = sc["runAsUser"]
            .as_i64()
            .or_else(|| psc["runAsUser"].as_i64());
        let run_as_group = sc["runAsGroup"]
            .as_i64()
            .or_else(|| psc["runAsGroup"].as_i64());
        let to_strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let resources = linux_resources(&c["resources"]);
        // An ephemeral container aimed at another shares that one's PID namespace.
        let pid_target = c["targetContainerName"]
            .as_str()
            .and_then(|t| self.tracks.get(t))
            .filter(|t| !t.id.is_empty() && t.last_terminated.is_none())
            .map(|t| t.id.clone());
        let config = cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: cname.clone(),
                attempt,
            }),
            image: Some(cri::ImageSpec {
                image: image_ref.clone(),
                user_specified_image: image.clone(),
                ..Default::default()
            }),
            command: to_strings(&c["command"]),
            args: to_strings(&c["args"]),
            working_dir: c["workingDir"].as_str().unwrap_or("").to_string(),
            envs,
            mounts,
            labels: [
                ("io.kubernetes.container.name".to_string(), cname.clone()),
                ("io.kubernetes.pod.name".to_string(), name.clone()),
                ("io.kubernetes.pod.namespace".to_string(), ns.clone()),
                ("io.kubernetes.pod.uid".to_string(), uid.clone()),
            ]
            .into_iter()
            .collect(),
            // As upstream's kubelet: the runtime may need the pod's grace period when it
            // stops containers on its own (rkind's shutdown).
            annotations: [(
                "io.kubernetes.pod.terminationGracePeriod".to_string(),
                self.spec()["terminationGracePeriodSeconds"]
                    .as_i64()
                    .unwrap_or(30)
                    .to_string(),
            )]
            .into_iter()
            .collect(),
            log_path: format!("{cname}/{attempt}.log"),
            stdin: c["stdin"].as_bool().unwrap_or(false),
            stdin_once: c["stdinOnce"].as_bool().unwrap_or(false),
            tty: c["tty"].as_bool().unwrap_or(false),
            linux: Some(cri::LinuxContainerConfig {
                resources: Some(resources),
                security_context: Some(cri::LinuxContainerSecurityContext {
                    namespace_options: pid_target.map(|target_id| cri::NamespaceOption {
                        pid: cri::NamespaceMode::Target as i32,
                        target_id,
                        ..Default::default()
                    }),
                    run_as_user: run_as.map(|v| cri::Int64Value { value: v }),
                    run_as_group: run_as_group.map(|v| cri::Int64Value { value: v }),
                    privileged: sc["privileged"].as_bool().unwrap_or(false),
                    readonly_rootfs: sc["readOnlyRootFilesystem"].as_bool().unwrap_or(false),
                    // Docker-like default: no_new_privs unless escalation is explicitly allowed.
                    no_new_privs: sc["allowPrivilegeEscalation"].as_bool() != Some(true),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        };
        let Some(sandbox) = self.sandbox_id.clone() else {
            return;
        };
        let created = self
            .env
            .runtime
            .clone()
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: sandbox,
                config: Some(config),
                sandbox_config: None,
            })
            .await;
        let id = match created {
            Ok(r) => r.into_inner().container_id,
            Err(e) => {
                let msg = e.message().to_string();
                self.event("Warning", "Failed", &format!("Error: {msg}"))
                    .await;
                let tm = self.tracks.entry(cname.clone()).or_default();
                tm.waiting = Some(("CreateContainerError".into(), msg));
                let b = tm
                    .backoff
                    .map(|b| (b * 2).min(BACKOFF_MAX))
                    .unwrap_or(BACKOFF_START);
                tm.backoff = Some(b);
                tm.next_start = Some(Instant::now() + b);
                return;
            }
        };
        self.event("Normal", "Created", &format!("Created container {cname}"))
            .await;
        let started = self
            .env
            .runtime
            .clone()
            .start_container(cri::StartContainerRequest {
                container_id: id.clone(),
            })
            .await;
        let tm = self.tracks.entry(cname.clone()).or_default();
        if tm.started_once {
            tm.restart_count += 1;
        }
        if let Some(prev) = tm.last_terminated.take() {
            tm.previous = Some(prev);
        }
        tm.id = id.clone();
        tm.image_id = image_ref.clone();
        tm.applied = Some(cpu_memory(&c["resources"]));
        tm.resize_error = None;
        tm.started_once = true;
        tm.waiting = None;
        tm.next_start = None;
        tm.probes = ProbeState::default();
        match started {
            Ok(_) => {
                self.event("Normal", "Started", &format!("Started container {cname}"))
                    .await;
            }
            Err(e) => {
                let msg = e.message().to_string();
                tm.waiting = Some(("RunContainerError".into(), msg.clone()));
                let b = tm
                    .backoff
                    .map(|b| (b * 2).min(BACKOFF_MAX))
                    .unwrap_or(BACKOFF_START);
                tm.backoff = Some(b);
                tm.next_start = Some(Instant::now() + b);
                self.event("Warning", "Failed", &format!("Error: {msg}"))
                    .await;
            }
        }
        let _ = init;
    }

    /// Builds and writes the pod status when it changed.
    async fn write_status(&mut self) {
        let status = self.compute_status().await;
        if status == self.last_status {
            return;
        }
        let (ns, name, uid) = pod_key(&self.pod);
        let mut st = status.clone();
        // Keep the scheduler's condition.
        if let Some(ps) = self.pod["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "PodScheduled"))
            && let Some(arr) = st["conditions"].as_array_mut()
        {
            arr.push(ps.clone());
        }
        let body = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "uid": uid}, "status": st});
        match self
            .env
            .api
            .json(
                http::Method::PATCH,
                &format!("/api/v1/namespaces/{ns}/pods/{name}/status"),
                "application/merge-patch+json",
                Some(&json!({"status": body["status"]})),
            )
            .await
        {
            Ok(p) => {
                self.last_status = status;
                self.pod["status"] = p["status"].clone();
            }
            Err(e) => tracing::debug!(error = %e, "status update failed"),
        }
    }

    async fn compute_status(&self) -> Value {
        let now = now_rfc3339();
        let mut statuses = Vec::new();
        let mut init_statuses = Vec::new();
        let mut running = 0;
        let mut all_terminated = true;
        let mut any_failed = false;
        let mut ready_all = true;
        let restart = self.spec()["restartPolicy"].as_str().unwrap_or("Always");
        let inits: Vec<Value> = self.spec()["initContainers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut initialized = true;
        for c in &inits {
            let cname = c["name"].as_str().unwrap_or("");
            let s = self.container_status(c).await;
            let ok = s["state"]["terminated"]["exitCode"] == 0;
            if !ok {
                initialized = false;
                if s["state"]["terminated"].is_object() && restart == "Never" {
                    any_failed = true;
                }
            }
            let _ = cname;
            init_statuses.push(s);
        }
        for c in self.spec()["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let s = self.container_status(&c).await;
            if s["state"]["running"].is_object() {
                running += 1;
                all_terminated = false;
            } else if let Some(code) = s["state"]["terminated"]["exitCode"].as_i64() {
                if code != 0 {
                    any_failed = true;
                }
            } else {
                all_terminated = false;
            }
            if s["ready"] != true {
                ready_all = false;
            }
            statuses.push(s);
        }
        let will_restart = |failed: bool| match restart {
            "Always" => true,
            "OnFailure" => failed,
            _ => false,
        };
        let _ = running;
        let containers_started = self.spec()["containers"].as_array().is_some_and(|cs| {
            cs.iter().any(|c| {
                self.tracks
                    .get(c["name"].as_str().unwrap_or(""))
                    .is_some_and(|t| t.started_once)
            })
        });
        let phase = if !initialized {
            if any_failed { "Failed" } else { "Pending" }
        } else if all_terminated && !statuses.is_empty() && !will_restart(any_failed) {
            if any_failed { "Failed" } else { "Succeeded" }
        } else if containers_started {
            "Running"
        } else {
            "Pending"
        };
        let cond = |t: &str, ok: bool, reason: Option<&str>| {
            let mut c = json!({"type": t, "status": if ok { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": now});
            if let (false, Some(r)) = (ok, reason) {
                c["reason"] = json!(r);
            }
            c
        };
        let sandbox_ok = self.sandbox_id.is_some();
        let ready = ready_all && initialized && phase == "Running";
        let mut status = json!({
            "phase": phase,
            "conditions": [
                cond("PodReadyToStartContainers", sandbox_ok, None),
                cond("Initialized", initialized, Some("ContainersNotInitialized")),
                cond("Ready", ready, Some(if phase == "Succeeded" || phase == "Failed" { "PodCompleted" } else { "ContainersNotReady" })),
                cond("ContainersReady", ready, Some(if phase == "Succeeded" || phase == "Failed" { "PodCompleted" } else { "ContainersNotReady" })),
            ],
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "startTime": self.start_time,
            "containerStatuses": statuses,
            "qosClass": self.pod["status"]["qosClass"].clone(),
        });
        if !init_statuses.is_empty() {
            status["initContainerStatuses"] = json!(init_statuses);
        }
        let mut ephemeral = Vec::new();
        for c in self.spec()["ephemeralContainers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let mut s = self.container_status(&c).await;
            if let Some(m) = s.as_object_mut() {
                // Ephemeral containers have no resources of their own.
                m.remove("resources");
                m.remove("allocatedResources");
            }
            ephemeral.push(s);
        }
        if !ephemeral.is_empty() {
            status["ephemeralContainerStatuses"] = json!(ephemeral);
        }
        // A resize the runtime could not apply is still in progress, with its error
        // (upstream 1.33's PodResizeInProgress condition, reason Error).
        let resize_errors: Vec<String> = self.spec()["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| {
                let name = c["name"].as_str().unwrap_or("");
                self.tracks
                    .get(name)
                    .and_then(|t| t.resize_error.as_ref())
                    .map(|e| format!("container {name}: {e}"))
            })
            .collect();
        if !resize_errors.is_empty()
            && let Some(conds) = status["conditions"].as_array_mut()
        {
            conds.push(
                json!({"type": "PodResizeInProgress", "status": "True", "lastProbeTime": null,
                "lastTransitionTime": now, "reason": "Error", "message": resize_errors.join("; ")}),
            );
        }
        // The generation this status describes, as upstream's kubelet reports it.
        if let Some(g) = self.pod["metadata"]["generation"].as_i64() {
            status["observedGeneration"] = json!(g);
        }
        if self.spec()["hostNetwork"].as_bool().unwrap_or(false) {
            status["podIP"] = json!("127.0.0.1");
            status["podIPs"] = json!([{"ip": "127.0.0.1"}]);
        }
        // Conditions carry the time of their last change only; keep earlier times stable.
        if let Some(old) = self.last_status["conditions"].as_array()
            && let Some(new) = status["conditions"].as_array_mut()
        {
            for c in new.iter_mut() {
                if let Some(o) = old
                    .iter()
                    .find(|o| o["type"] == c["type"] && o["status"] == c["status"])
                {
                    c["lastTransitionTime"] = o["lastTransitionTime"].clone();
                }
            }
        }
        status
    }

    async fn container_status(&self, c: &Value) -> Value {
        let cname = c["name"].as_str().unwrap_or("");
        let image = c["image"].as_str().unwrap_or("");
        let t = self.tracks.get(cname).cloned().unwrap_or_default();
        let mut s = json!({"name": cname, "image": image, "imageID": t.image_id, "ready": false, "restartCount": t.restart_count, "started": false});
        if !t.id.is_empty() {
            s["containerID"] = json!(format!("rkind://{}", t.id));
        }
        let live = if !t.id.is_empty() && t.last_terminated.is_none() {
            self.env
                .runtime
                .clone()
                .container_status(cri::ContainerStatusRequest {
                    container_id: t.id.clone(),
                    verbose: false,
                })
                .await
                .ok()
                .and_then(|r| r.into_inner().status)
        } else {
            None
        };
        if let Some(ls) = &live {
            s["imageID"] = json!(ls.image_ref);
            // What the container runs with (upstream reports it for running containers;
            // the API server allows resizes only where it is reported).
            let applied = t
                .applied
                .clone()
                .unwrap_or_else(|| cpu_memory(&c["resources"]));
            if applied["requests"].is_object() {
                s["allocatedResources"] = applied["requests"].clone();
            }
            s["resources"] = applied;
        }
        let mut last = t.previous.clone();
        if let Some((reason, msg)) = &t.waiting {
            s["state"] = json!({"waiting": {"reason": reason, "message": msg}});
            if t.last_terminated.is_some() {
                last = t.last_terminated.clone();
            }
        } else if let Some(ls) =
            live.filter(|l| l.state == cri::ContainerState::ContainerRunning as i32)
        {
            s["state"] = json!({"running": {"startedAt": ns_to_rfc3339(ls.started_at)}});
            let has_startup = c["startupProbe"].is_object();
            let has_readiness = c["readinessProbe"].is_object();
            let started = !has_startup || t.probes.started;
            s["ready"] = json!(started && (!has_readiness || t.probes.ready));
            s["started"] = json!(started);
        } else if let Some(term) = &t.last_terminated {
            s["state"] = json!({"terminated": term});
        } else {
            s["state"] = json!({"waiting": {"reason": "ContainerCreating"}});
        }
        s["lastState"] = match last {
            Some(term) => json!({"terminated": term}),
            None => json!({}),
        };
        s
    }

    /// Graceful termination: stop containers with the pod's grace period, remove the
    /// sandbox, then finish the deletion at the API server.
    async fn terminate(&mut self) -> Result<(), String> {
        if !self.terminating {
            self.terminating = true;
            let grace = self.pod["metadata"]["deletionGracePeriodSeconds"]
                .as_i64()
                .unwrap_or(30);
            let ids: Vec<(String, String)> = self
                .tracks
                .iter()
                .filter(|(_, t)| !t.id.is_empty() && t.last_terminated.is_none())
                .map(|(n, t)| (n.clone(), t.id.clone()))
                .collect();
            for (n, _) in &ids {
                self.event("Normal", "Killing", &format!("Stopping container {n}"))
                    .await;
            }
            let mut handles = Vec::new();
            for (name, id) in ids {
                let mut rt = self.env.runtime.clone();
                // The preStop hook runs first and counts against the grace period, as
                // upstream's kubelet does it.
                let hook: Vec<String> = self.spec()["containers"]
                    .as_array()
                    .and_then(|cs| cs.iter().find(|c| c["name"] == name.as_str()))
                    .and_then(|c| {
                        c["lifecycle"]["preStop"]["exec"]["command"]
                            .as_array()
                            .cloned()
                    })
                    .map(|a| {
                        a.iter()
                            .filter_map(|w| w.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                let pod = self.pod.clone();
                let api = self.env.api.clone();
                handles.push(tokio::spawn(async move {
                    let started = std::time::Instant::now();
                    if !hook.is_empty() {
                        let r = rt
                            .exec_sync(cri::ExecSyncRequest {
                                container_id: id.clone(),
                                cmd: hook.clone(),
                                timeout: grace.max(1),
                            })
                            .await;
                        let failed = match r {
                            Ok(r) if r.get_ref().exit_code == 0 => None,
                            Ok(r) => Some(format!(
                                "PreStopHook failed: command {hook:?} exited with {}: {}",
                                r.get_ref().exit_code,
                                String::from_utf8_lossy(&r.get_ref().stderr).trim()
                            )),
                            Err(e) => Some(format!("PreStopHook failed: {}", e.message())),
                        };
                        if let Some(msg) = failed {
                            record_event(
                                &api,
                                &pod,
                                "Warning",
                                "FailedPreStopHook",
                                &msg,
                                "kubelet",
                            )
                            .await;
                        }
                    }
                    let left = grace - started.elapsed().as_secs() as i64;
                    let _ = rt
                        .stop_container(cri::StopContainerRequest {
                            container_id: id,
                            timeout: left.max(0),
                        })
                        .await;
                }));
            }
            for h in handles {
                let _ = h.await;
            }
        }
        if let Some(sb) = self.sandbox_id.clone() {
            let mut rt = self.env.runtime.clone();
            let _ = rt
                .stop_pod_sandbox(cri::StopPodSandboxRequest {
                    pod_sandbox_id: sb.clone(),
                })
                .await;
            let _ = rt
                .remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: sb })
                .await;
            self.sandbox_id = None;
        }
        let (ns, name, uid) = pod_key(&self.pod);
        volumes::unmount_volumes(&self.env.pods_dir.join(&uid).join("volumes"));
        self.env.tokens.forget(&uid);
        let _ = std::fs::remove_dir_all(self.env.pods_dir.join(&uid));
        let opts = json!({"gracePeriodSeconds": 0, "preconditions": {"uid": uid}});
        match self
            .env
            .api
            .delete(&format!("/api/v1/namespaces/{ns}/pods/{name}"), Some(&opts))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == 404 || e.code() == 409 => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

fn labels_of(v: &Value) -> HashMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn ns_to_rfc3339(ns: i64) -> Value {
    if ns <= 0 {
        return Value::Null;
    }
    jiff::Timestamp::from_nanosecond(ns as i128)
        .map(|t| json!(crate::apiserver::defaults::format_time(t)))
        .unwrap_or(Value::Null)
}

/// Environment of a container: `env` (values, fieldRefs, configMap/secret keys) and `envFrom`.
/// The Services' variables (`services`) come first; the container's own win over them.
async fn container_env(
    api: &ApiClient,
    pod: &Value,
    c: &Value,
    services: Vec<cri::KeyValue>,
) -> Vec<cri::KeyValue> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let mut out: Vec<cri::KeyValue> = services;
    let push = |k: String, v: String, out: &mut Vec<cri::KeyValue>| {
        out.retain(|kv| kv.key != k);
        out.push(cri::KeyValue { key: k, value: v });
    };
    for ef in c["envFrom"].as_array().cloned().unwrap_or_default() {
        let prefix = ef["prefix"].as_str().unwrap_or("");
        let (kind, name) = if let Some(n) = ef["configMapRef"]["name"].as_str() {
            ("configmaps", n)
        } else if let Some(n) = ef["secretRef"]["name"].as_str() {
            ("secrets", n)
        } else {
            continue;
        };
        if let Ok(obj) = api
            .get(&format!("/api/v1/namespaces/{ns}/{kind}/{name}"))
            .await
            && let Some(m) = obj["data"].as_object()
        {
            for (k, v) in m {
                let val = decode_data(kind, v);
                push(format!("{prefix}{k}"), val, &mut out);
            }
        }
    }
    for e in c["env"].as_array().cloned().unwrap_or_default() {
        let k = e["name"].as_str().unwrap_or("").to_string();
        let v = if let Some(v) = e["value"].as_str() {
            expand_env(v, &out)
        } else if let Some(f) = e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            downward_value(pod, f)
        } else if let Some(r) = e["valueFrom"]["configMapKeyRef"].as_object() {
            let name = r.get("name").and_then(Value::as_str).unwrap_or("");
            let key = r.get("key").and_then(Value::as_str).unwrap_or("");
            api.get(&format!("/api/v1/namespaces/{ns}/configmaps/{name}"))
                .await
                .ok()
                .map(|o| decode_data("configmaps", &o["data"][key]))
                .unwrap_or_default()
        } else if let Some(r) = e["valueFrom"]["secretKeyRef"].as_object() {
            let name = r.get("name").and_then(Value::as_str).unwrap_or("");
            let key = r.get("key").and_then(Value::as_str).unwrap_or("");
            api.get(&format!("/api/v1/namespaces/{ns}/secrets/{name}"))
                .await
                .ok()
                .map(|o| decode_data("secrets", &o["data"][key]))
                .unwrap_or_default()
        } else {
            String::new()
        };
        push(k, v, &mut out);
    }
    out
}

fn decode_data(kind: &str, v: &Value) -> String {
    let s = v.as_str().unwrap_or("");
    if kind == "secrets" {
        use base64::Engine;
        String::from_utf8_lossy(
            &base64::engine::general_purpose::STANDARD
                .decode(s)
                .unwrap_or_default(),
        )
        .into_owned()
    } else {
        s.to_string()
    }
}

/// `$(VAR)` expansion against the variables defined so far, as upstream does.
fn expand_env(v: &str, defined: &[cri::KeyValue]) -> String {
    let mut out = String::new();
    let mut rest = v;
    while let Some(i) = rest.find("$(") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        if i > 0 && rest.as_bytes()[i - 1] == b'$' {
            out.pop();
            out.push_str("$(");
            rest = after;
            continue;
        }
        match after.find(')') {
            Some(j) => {
                let name = &after[..j];
                match defined.iter().find(|kv| kv.key == name) {
                    Some(kv) => out.push_str(&kv.value),
                    None => {
                        out.push_str("$(");
                        out.push_str(name);
                        out.push(')');
                    }
                }
                rest = &after[j + 1..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The cpu and memory requests and limits of a container's `resources` (what a resize
/// may change and what the runtime enforces); empty lists are left out.
fn cpu_memory(r: &Value) -> Value {
    let mut out = json!({});
    for k in ["limits", "requests"] {
        let list: serde_json::Map<String, Value> = ["cpu", "memory"]
            .iter()
            .filter_map(|n| r[k].get(*n).map(|v| (n.to_string(), v.clone())))
            .collect();
        if !list.is_empty() {
            out[k] = Value::Object(list);
        }
    }
    out
}

/// CPU and memory limits for the runtime's cgroups.
fn linux_resources(r: &Value) -> cri::LinuxContainerResources {
    let mut out = cri::LinuxContainerResources::default();
    if let Some(cpu) = r["limits"]["cpu"].as_str().and_then(parse_cpu_millis) {
        out.cpu_period = 100_000;
        out.cpu_quota = cpu * 100;
    }
    if let Some(cpu) = r["requests"]["cpu"].as_str().and_then(parse_cpu_millis) {
        out.cpu_shares = (cpu * 1024 / 1000).max(2);
    }
    if let Some(mem) = r["limits"]["memory"].as_str().and_then(parse_bytes) {
        out.memory_limit_in_bytes = mem;
    }
    out
}

fn parse_cpu_millis(s: &str) -> Option<i64> {
    if let Some(m) = s.strip_suffix('m') {
        return m.parse().ok();
    }
    s.parse::<f64>().ok().map(|c| (c * 1000.0) as i64)
}

pub(super) fn parse_bytes(s: &str) -> Option<i64> {
    let units = [
        ("Ki", 1i64 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
    ];
    for (suffix, mult) in units {
        if let Some(n) = s.strip_suffix(suffix) {
            return n.parse::<f64>().ok().map(|v| (v * mult as f64) as i64);
        }
    }
    s.parse::<f64>().ok().map(|v| v as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_are_cut_as_upstream_cuts_them() {
        let long = format!("{}-{}", "a".repeat(62), "b".repeat(10));
        let pod = json!({"metadata": {"name": long}, "spec": {}});
        assert_eq!(
            pod_hostname(&pod),
            "a".repeat(62),
            "cut at 63, trailing '-' dropped"
        );
        let pod = json!({"metadata": {"name": "web"}, "spec": {"hostname": "box"}});
        assert_eq!(pod_hostname(&pod), "box");
    }

    #[test]
    fn env_expansion_like_upstream() {
        let defined = vec![cri::KeyValue {
            key: "A".into(),
            value: "x".into(),
        }];
        assert_eq!(expand_env("$(A)-$(B)-$$(A)", &defined), "x-$(B)-$(A)");
        assert_eq!(parse_bytes("64Mi"), Some(64 << 20));
        assert_eq!(parse_cpu_millis("250m"), Some(250));
        assert_eq!(parse_cpu_millis("1.5"), Some(1500));
    }
}
