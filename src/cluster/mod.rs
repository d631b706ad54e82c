//! The cluster's life cycle: the start-up pipeline (certificates → store → API server →
//! bootstrap objects → kubelet/node → scheduler → controller-manager → kubeconfig; each
//! component with its own certificate), readiness, graceful
//! shutdown, and the on-disk state that `down`, `status` and `kubeconfig` read.

pub mod index;
pub mod state;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::apiserver::ApiServer;
use crate::client::ApiClient;
use crate::controller::ComponentIdentity;
use crate::pki::ClusterPki;
use crate::store::Store;
use state::ClusterState;

/// Errors that stop `rkind up`.
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    /// Certificates.
    #[error("certificates: {0}")]
    Pki(#[from] crate::pki::PkiError),
    /// The service-account signing key.
    #[error("authentication: {0}")]
    Authn(#[from] crate::apiserver::authn::serviceaccount::TokenError),
    /// The object store.
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// A port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// A component could not talk to the API server.
    #[error("{step}: {source}")]
    Api {
        /// What was being done.
        step: &'static str,
        /// The client error.
        source: crate::client::ClientError,
    },
    /// The kubeconfig could not be written.
    #[error("kubeconfig: {0}")]
    Kubeconfig(#[from] crate::kubeconfig::KubeconfigError),
    /// The cluster's state file or data directory.
    #[error("{0}")]
    State(#[from] state::StateError),
    /// The container runtime could not start.
    #[error("runtime: {0}")]
    Runtime(String),
    /// The CRI socket could not be bound.
    #[error("CRI socket: {0}")]
    CriSocket(std::io::Error),
    /// A controller-runtime component (scheduler, controller-manager) could not start.
    #[error("{0}")]
    Controller(#[from] crate::controller::ControllerError),
    /// The kubelet could not start.
    #[error("kubelet: {0}")]
    Kubelet(#[from] crate::kubelet::KubeletError),
    /// Another rkind already runs this cluster.
    #[error(
        "cluster {name:?} is already running (pid {pid}); use `rkind down --name {name}` first"
    )]
    AlreadyRunning {
        /// Cluster name.
        name: String,
        /// Its pid.
        pid: i32,
    },
}

/// Options of `rkind up`.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Cluster name.
    pub name: String,
    /// Data directory (default `$XDG_DATA_HOME/rkind/<name>`).
    pub data_dir: PathBuf,
    /// Kubeconfig file to merge into (default: kind's rules).
    pub kubeconfig: Option<PathBuf>,
    /// API server port (default: the previous one, else a free one).
    pub api_port: Option<u16>,
}

/// A running cluster (all components are tasks of this process).
pub struct RunningCluster {
    /// Where the API server listens.
    pub api_addr: SocketAddr,
    /// The kubeconfig file written.
    pub kubeconfig: PathBuf,
    /// The data directory.
    pub data_dir: PathBuf,
    shutdown: CancellationToken,
    store: Arc<Store>,
    runtime: Arc<crate::runtime::Runtime>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// The store holds every Secret: its directory is the user's alone (0700), its files
/// too (0600), whatever the umask was when sled made them.
fn owner_only(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600));
        }
    }
}

/// The node name of cluster `name`, as kind names it.
pub fn node_name(name: &str) -> String {
    format!("{name}-control-plane")
}

/// Whether start-up progress goes to stderr (`rkind run`: stdout belongs to the
/// user's command) instead of stdout.
static PROGRESS_ON_STDERR: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Sends start-up progress to stderr from now on.
pub fn progress_on_stderr() {
    PROGRESS_ON_STDERR.store(true, std::sync::atomic::Ordering::Relaxed);
}

fn say(msg: &str) {
    if PROGRESS_ON_STDERR.load(std::sync::atomic::Ordering::Relaxed) {
        eprintln!("{msg}");
    } else {
        println!("{msg}");
    }
}

fn step<T>(label: &str, start: Instant, r: T) -> T {
    say(&format!(" ✓ {label} ({} ms)", start.elapsed().as_millis()));
    r
}

async fn bind(port: u16) -> Result<TcpListener, UpError> {
    let addr = format!("127.0.0.1:{port}");
    TcpListener::bind(&addr)
        .await
        .map_err(|source| UpError::Bind { addr, source })
}

/// Starts every component and returns once the node is Ready and the kubeconfig is
/// written. Progress lines go to stdout.
pub async fn up(opts: &UpOptions) -> Result<RunningCluster, UpError> {
    let total = Instant::now();
    state::prepare_data_dir(&opts.data_dir)?;
    let previous = ClusterState::load(&opts.data_dir).ok();
    if let Some(pid) = state::running_pid(&opts.data_dir)
        && pid != std::process::id() as i32
    {
        return Err(UpError::AlreadyRunning {
            name: opts.name.clone(),
            pid,
        });
    }
    state::write_pid(&opts.data_dir)?;
    let node = node_name(&opts.name);
    say(&format!("Creating cluster {:?} ...", opts.name));

    let t = Instant::now();
    let pki = ClusterPki::load_or_create(&opts.data_dir.join("pki"), &node)?;
    step("Certificates", t, ());

    let t = Instant::now();
    let store = Arc::new(Store::open_sled(&opts.data_dir.join("store"))?);
    owner_only(&opts.data_dir.join("store"));
    step("Store (sled)", t, ());

    // The runtime is opened first: its isolation level decides what pods get by default.
    let runtime_opened = Instant::now();
    let runtime =
        crate::runtime::Runtime::open(&opts.data_dir.join("runtime")).map_err(UpError::Runtime)?;
    // The kubeconfig holds the admin key: no pod may read it.
    runtime.hide_from_pods([crate::kubeconfig::target_path(opts.kubeconfig.as_deref())]);
    let runtime_open_time = runtime_opened.elapsed();
    let shared_root = runtime.isolation().level == crate::runtime::linux::Level::Unprivileged;

    let t = Instant::now();
    let port = opts
        .api_port
        .or(previous.as_ref().map(|p| p.api_port))
        .unwrap_or(0);
    let listener = match bind(port).await {
        Ok(l) => l,
        // The previous port may be taken now: fall back to a free one unless it was asked for.
        Err(_) if opts.api_port.is_none() && port != 0 => bind(0).await?,
        Err(e) => return Err(e),
    };
    let api_addr = listener.local_addr().map_err(|source| UpError::Bind {
        addr: "127.0.0.1".into(),
        source,
    })?;
    let shutdown = CancellationToken::new();
    // One trace ring for the whole cluster: every component records its own hop.
    let trace = crate::trace::Recorder::from_env();
    let server = Arc::new(ApiServer {
        store: store.clone(),
        advertise: api_addr.to_string(),
        shutdown: shutdown.clone(),
        kubelet_tls: Some(pki.client_tls(&pki.apiserver_kubelet_client)?),
        trace: trace.clone(),
        registry: crate::apiserver::registry::Registry::builtin(),
        admission: crate::apiserver::admission::Chain::standard(
            crate::apiserver::admission::serviceaccount::ServiceAccount {
                automount_by_default: !shared_root,
            },
        ),
        metrics: Default::default(),
        authn: crate::apiserver::authn::Authenticator::new(&pki.service_account_key)?,
        authz: crate::apiserver::authz::Authorizer::new(store.clone()),
    });
    let mut tasks = Vec::new();
    let tls = pki.apiserver_tls()?;
    // Stored CRDs are served before the first request is answered.
    tasks.push(crate::apiserver::crd::registrar::start(server.clone(), shutdown.clone()).await);
    tasks.push(tokio::spawn(server.clone().serve(listener, tls)));
    // No component uses the admin identity: each has its own certificate.
    let identity =
        |binary: &str, id: &crate::pki::Identity| -> Result<ComponentIdentity, UpError> {
            Ok(ComponentIdentity::new(binary, pki.client_tls(id)?))
        };
    // The API server's start-up hooks write the bootstrap objects and policy with its
    // loopback identity; the controller manager acts with its own, least-privilege one.
    let loopback =
        crate::controller::kube_client(api_addr, &identity("kube-apiserver", &pki.loopback)?);
    crate::controller::bootstrap::ensure(&loopback, api_addr.port()).await?;
    let controller_manager = crate::controller::kube_client(
        api_addr,
        &identity("kube-controller-manager", &pki.controller_manager)?,
    );
    step(&format!("API server on https://{api_addr}"), t, ());

    let t = Instant::now()
        .checked_sub(runtime_open_time)
        .unwrap_or_else(Instant::now);
    let cri_socket = opts.data_dir.join("cri.sock");
    {
        let listener = crate::runtime::service::bind(&cri_socket).map_err(UpError::CriSocket)?;
        let streaming = crate::runtime::streaming::StreamingServer::start(
            runtime.clone(),
            crate::runtime::streaming::token_ttl_from_env(),
            trace.clone(),
            shutdown.clone(),
        )
        .await
        .map_err(UpError::CriSocket)?;
        let rt = runtime.clone();
        let sock = cri_socket.clone();
        let s = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = crate::runtime::service::serve(rt, streaming, listener, &sock, s).await
            {
                tracing::error!(error = %e, "CRI server failed");
            }
        }));
    }
    step(
        &format!(
            "Runtime (CRI on {}; {}; {})",
            cri_socket.display(),
            runtime.isolation().summary(),
            runtime.cgroup_mode().describe()
        ),
        t,
        (),
    );
    for warning in runtime.isolation().warnings() {
        say(&format!("   ! {warning}"));
    }

    let t = Instant::now();
    let kubelet_listener = bind(0).await?;
    let kubelet_port = kubelet_listener
        .local_addr()
        .map(|a| a.port())
        .unwrap_or_default();
    tasks.push(tokio::spawn(crate::kubelet::server::serve(
        kubelet_listener,
        pki.kubelet_tls()?,
        node.clone(),
        cri_socket.clone(),
        trace.clone(),
        shutdown.clone(),
    )));
    let kubelet_api = Arc::new(ApiClient::new(
        api_addr,
        pki.client_tls(&pki.kubelet_client)?,
    ));
    let kubelet_kube =
        crate::controller::kube_client(api_addr, &identity("kubelet", &pki.kubelet_client)?);
    crate::kubelet::start(
        crate::kubelet::KubeletConfig {
            node_name: node.clone(),
            port: kubelet_port,
            cri_socket: cri_socket.clone(),
            pods_dir: opts.data_dir.join("pods"),
        },
        kubelet_api,
        kubelet_kube,
        shutdown.clone(),
    )
    .await
    .map_err(UpError::Kubelet)?;
    let scheduler =
        crate::controller::kube_client(api_addr, &identity("kube-scheduler", &pki.scheduler)?);
    tasks.extend(crate::controller::scheduler::start(scheduler, shutdown.clone()).await?);
    tasks.extend(
        crate::controller::start_controller_manager(
            controller_manager.clone(),
            crate::controller::credentials::Credentials::new(
                controller_manager,
                api_addr,
                pki.anonymous_client_tls()?,
                shutdown.clone(),
            ),
            crate::apiserver::authn::serviceaccount::Signer::from_pem(&pki.service_account_key)?,
            pki.ca.cert_pem.clone(),
            shutdown.clone(),
        )
        .await?,
    );
    step(&format!("Node {node} Ready"), t, ());

    let t = Instant::now();
    let kubeconfig = crate::kubeconfig::target_path(opts.kubeconfig.as_deref());
    let doc = crate::kubeconfig::document(&opts.name, &format!("https://{api_addr}"), &pki);
    crate::kubeconfig::merge_into(&kubeconfig, &doc)?;
    step(&format!("Kubeconfig {}", kubeconfig.display()), t, ());

    ClusterState {
        name: opts.name.clone(),
        api_port: api_addr.port(),
        kubelet_port,
        pid: std::process::id() as i32,
        kubeconfig: Some(kubeconfig.clone()),
        ready: true,
        isolation: runtime.isolation().level.name().into(),
    }
    .save(&opts.data_dir)?;
    let ctx = crate::kubeconfig::context_name(&opts.name);
    say(&format!(
        "Cluster {:?} is ready in {} ms. Set kubectl context to {:?}",
        opts.name,
        total.elapsed().as_millis(),
        ctx
    ));
    let flag = opts
        .kubeconfig
        .as_ref()
        .map(|p| format!(" --kubeconfig {}", p.display()))
        .unwrap_or_default();
    say(&format!(
        "You can now use your cluster with:\n\nkubectl cluster-info --context {ctx}{flag}\n"
    ));
    Ok(RunningCluster {
        api_addr,
        kubeconfig,
        data_dir: opts.data_dir.clone(),
        shutdown,
        store,
        runtime,
        tasks,
    })
}

impl RunningCluster {
    /// Stops every component, waits for them (bounded), and marks the cluster stopped.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let rt = self.runtime.clone();
        // Pods get their own grace period, at most 5 s: `rkind down` stays quick.
        let _ = tokio::task::spawn_blocking(move || rt.shutdown(Duration::from_secs(5))).await;
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        if let Ok(mut st) = ClusterState::load(&self.data_dir) {
            st.ready = false;
            let _ = st.save(&self.data_dir);
        }
        drop(self.store);
        state::remove_pid(&self.data_dir);
    }
}

/// Runs `up` in the foreground until SIGINT/SIGTERM, then shuts down gracefully.
pub async fn run_foreground(opts: &UpOptions) -> Result<(), UpError> {
    let cluster = match up(opts).await {
        Ok(c) => c,
        Err(e) => {
            if let Some(pid) = state::running_pid(&opts.data_dir)
                && pid == std::process::id() as i32
            {
                state::remove_pid(&opts.data_dir);
            }
            return Err(e);
        }
    };
    wait_for_signal().await;
    println!("Shutting down cluster {:?} ...", opts.name);
    cluster.shutdown().await;
    println!("Cluster {:?} stopped.", opts.name);
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// The default data directory of cluster `name`.
pub fn default_data_dir(name: &str) -> PathBuf {
    state::data_home().join("rkind").join(name)
}

/// Resolves the data directory from an explicit flag or the default.
pub fn data_dir(name: &str, explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .unwrap_or_else(|| default_data_dir(name))
}

/// Why a command aimed at a cluster found none (it then changes nothing).
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    /// `--data-dir` names a directory without a cluster.
    #[error("no cluster {name:?} found in {dir}")]
    NotInDir {
        /// Cluster name.
        name: String,
        /// The directory given.
        dir: PathBuf,
    },
    /// Neither the index nor the default data directory knows the name.
    #[error(
        "no cluster {name:?} found (not in the cluster index {index}, nor in {default}); create it with `rkind up --name {name}`"
    )]
    Unknown {
        /// Cluster name.
        name: String,
        /// The index file consulted.
        index: PathBuf,
        /// The default data directory consulted.
        default: PathBuf,
    },
    /// The index could not be read.
    #[error("cluster index: {0}")]
    Index(#[from] index::IndexError),
}

/// Whether `dir` holds a cluster: its state file, or the pid file of one still starting.
pub fn exists(dir: &Path) -> bool {
    dir.join("cluster.json").is_file() || dir.join("rkind.pid").is_file()
}

/// The data directory of the existing cluster `name`: `--data-dir` if given, else the
/// one the index records, else the default one (clusters from before the index).
/// Looks only: creates nothing.
pub fn find(name: &str, explicit: Option<&Path>) -> Result<PathBuf, FindError> {
    if let Some(dir) = explicit {
        return if exists(dir) {
            Ok(dir.to_path_buf())
        } else {
            Err(FindError::NotInDir {
                name: name.into(),
                dir: dir.to_path_buf(),
            })
        };
    }
    if let Some(dir) = index::lookup(name)?
        && exists(&dir)
    {
        return Ok(dir);
    }
    let default = default_data_dir(name);
    if exists(&default) {
        return Ok(default);
    }
    Err(FindError::Unknown {
        name: name.into(),
        index: index::path(),
        default,
    })
}

/// Where `rkind up` keeps cluster `name`: `--data-dir` if given, else where the index
/// says it lives (so a cluster created with `--data-dir` restarts from there), else the
/// default data directory.
pub fn up_data_dir(name: &str, explicit: Option<&Path>) -> Result<PathBuf, FindError> {
    if let Some(dir) = explicit {
        return Ok(dir.to_path_buf());
    }
    Ok(match index::lookup(name)? {
        Some(dir) if exists(&dir) => dir,
        _ => default_data_dir(name),
    })
}

/// Every cluster the user has (indexed ones, then unindexed ones in the default data
/// home), as (name, data directory), without duplicates. Stale index entries (their
/// directory deleted by hand) are left out.
pub fn list() -> Result<Vec<(String, PathBuf)>, FindError> {
    let mut found: Vec<(String, PathBuf)> = index::entries()?
        .into_iter()
        .filter(|(_, e)| exists(&e.data_dir))
        .map(|(n, e)| (n, e.data_dir))
        .collect();
    let root = state::data_home().join("rkind");
    let mut legacy: Vec<PathBuf> = std::fs::read_dir(&root)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    legacy.sort();
    for dir in legacy {
        let Some(name) = dir.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        if exists(&dir)
            && !found
                .iter()
                .any(|(n, d)| *n == name || index::same_dir(d, &dir))
        {
            found.push((name, dir));
        }
    }
    Ok(found)
}
