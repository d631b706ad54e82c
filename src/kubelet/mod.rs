//! The kubelet: registers its Node through the API server (with its own certificate),
//! keeps the Node status and its Lease fresh, follows the pods bound to it through an
//! informer of the controller runtime ([`crate::controller`]), and serves
//! its own HTTPS port (mutual TLS: only the API server's client certificate is let in).
//!
//! Pods run through the CRI runtime: the kubelet is only ever a gRPC client of it
//! (see [`pods`]).

pub mod logs;
pub mod node;
pub mod pods;
pub mod server;
pub mod service_env;
pub mod streaming;
pub mod tokens;
pub mod volumes;

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Service};
use tokio_util::sync::CancellationToken;

use crate::client::ApiClient;
use crate::controller::informer::{Change, Informer, by_node};

/// What the kubelet needs to run.
pub struct KubeletConfig {
    /// The node name (`<cluster>-control-plane`).
    pub node_name: String,
    /// The kubelet's HTTPS port (published in the Node's daemonEndpoints).
    pub port: u16,
    /// The runtime's CRI socket.
    pub cri_socket: std::path::PathBuf,
    /// Where pod directories (volumes, logs) live.
    pub pods_dir: std::path::PathBuf,
}

/// Registers the node and returns once it is Ready and its pod informer is synced; then
/// keeps it alive in the background. `api` and `kube` authenticate as the node
/// (`system:node:<name>`).
pub async fn start(
    cfg: KubeletConfig,
    api: Arc<ApiClient>,
    kube: kube_client::Client,
    shutdown: CancellationToken,
) -> Result<(), KubeletError> {
    let channel = pods::connect_cri(&cfg.cri_socket).await.map_err(|e| {
        KubeletError::Cri(format!("connecting to {}: {e}", cfg.cri_socket.display()))
    })?;
    let mut runtime =
        crate::runtime::cri::runtime_service_client::RuntimeServiceClient::new(channel.clone());
    let version = runtime
        .version(crate::runtime::cri::VersionRequest {
            version: "v1".into(),
        })
        .await
        .map_err(|e| KubeletError::Cri(format!("CRI Version: {}", e.message())))?
        .into_inner();
    let runtime_version = format!("{}://{}", version.runtime_name, version.runtime_version);
    // What the runtime reports beyond readiness (e.g. whether limits are enforced).
    let runtime_conditions: Vec<node::RuntimeCondition> = runtime
        .status(crate::runtime::cri::StatusRequest { verbose: false })
        .await
        .map(|r| {
            r.into_inner()
                .status
                .map(|s| s.conditions)
                .unwrap_or_default()
                .into_iter()
                .filter(|c| c.r#type != "RuntimeReady" && c.r#type != "NetworkReady")
                .map(|c| node::RuntimeCondition {
                    kind: c.r#type,
                    status: c.status,
                    reason: c.reason,
                    message: c.message,
                })
                .collect()
        })
        .unwrap_or_default();
    node::register(&api, &cfg, &runtime_version, &runtime_conditions).await?;
    let a = api.clone();
    let name = cfg.node_name.clone();
    let s = shutdown.clone();
    tokio::spawn(async move { node::heartbeat(a, name, runtime_conditions, s).await });
    // Every Service, for the containers' service-link variables (upstream's kubelet keeps
    // the same informer).
    let services: Informer<Service> = Informer::new(
        kube_client::Api::all(kube.clone()),
        crate::controller::watch_config(),
        "services",
        vec![],
    );
    let service_cache = services.cache();
    tokio::spawn(services.run(shutdown.clone()));
    let env = pods::PodEnv {
        tokens: Arc::new(tokens::TokenManager::default()),
        services: service_cache.clone(),
        api: api.clone(),
        runtime,
        images: crate::runtime::cri::image_service_client::ImageServiceClient::new(channel),
        node: cfg.node_name.clone(),
        pods_dir: cfg.pods_dir.clone(),
    };
    let manager = pods::PodManager::new(env, shutdown.clone());
    let mut informer: Informer<Pod> = Informer::new(
        kube_client::Api::all(kube),
        crate::controller::watch_config().fields(&format!("spec.nodeName={}", cfg.node_name)),
        "pods",
        vec![by_node()],
    );
    let feed = informer.subscribe();
    let cache = informer.cache();
    tokio::spawn(informer.run(shutdown.clone()));
    tokio::spawn(pod_source(feed, manager, shutdown));
    crate::controller::synced(&cache, "kubelet", "pods").await?;
    crate::controller::synced(&service_cache, "kubelet", "services").await?;
    Ok(())
}

/// Errors starting the kubelet.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    /// The API server refused or could not be reached.
    #[error(transparent)]
    Api(#[from] crate::client::ClientError),
    /// The pod informer could not list this node's pods.
    #[error(transparent)]
    Informer(#[from] crate::controller::ControllerError),
    /// The CRI runtime could not be reached.
    #[error("container runtime: {0}")]
    Cri(String),
}

/// Hands each change of the pods bound to this node to its pod worker, in order.
async fn pod_source(
    mut feed: tokio::sync::mpsc::Receiver<Change<Pod>>,
    mut manager: pods::PodManager,
    shutdown: CancellationToken,
) {
    loop {
        let change = tokio::select! {
            _ = shutdown.cancelled() => return,
            c = feed.recv() => match c {
                Some(c) => c,
                None => return,
            },
        };
        let pod = serde_json::to_value(change.object().as_ref()).unwrap_or_default();
        match change {
            // Gone from the API without the kubelet's final delete (forced), or missed
            // while the watch was down and found gone by a relist: stop it.
            Change::Deleted(_) => manager.removed(pod).await,
            Change::Applied(_) => manager.update(pod).await,
        }
    }
}
