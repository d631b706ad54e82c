//! The controller runtime of rkind's own components (scheduler, controller-manager
//! loops, the kubelet's pod source), each an API client with its own certificate:
//!
//! - [`client`]: a kube-rs client per identity, over our rustls (ring) connector;
//! - [`informer`]: kube-runtime's watcher (list + watch, resume from the last
//!   resourceVersion, bookmarks, relist on 410, back-off) feeding a shared cache indexed
//!   by namespace, owner uid and node name, and change feeds;
//! - [`queue`]: a rate-limited work queue with requeue;
//! - [`run_workers`]: the glue that reconciles queued keys.
//!
//! kube-runtime's own `Controller` is not used: it keeps a private reflector per
//! controller (a second copy of every object, where the informers here are shared), and
//! its watcher cannot be told to relist when a watch request itself is answered 410 (see
//! [`informer`]). Its watcher and kube-client are used as they are.

pub mod api_resources;
pub mod bootstrap;
pub mod client;
pub mod clusterroleaggregation;
pub mod credentials;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod events;
pub mod gc;
pub mod history;
pub mod informer;
pub mod job;
pub mod namespace;
pub mod nodelifecycle;
pub mod podcontrol;
pub mod queue;
pub mod replicaset;
pub mod replicationcontroller;
pub mod resourcequota;
pub mod rootca;
pub mod scheduler;
pub mod serviceaccount;
pub mod statefulset;
pub mod taintmanager;
pub mod tokens;
pub mod ttlafterfinished;

use std::fmt::Display;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tracing::Instrument;

pub use client::{ComponentIdentity, kube_client};
pub use informer::{Cache, Change, Informer, ObjectKey};
pub use queue::WorkQueue;

/// How long `rkind up` waits for a component's informers to hold a first full list.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a component could not start.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// An informer's first list did not complete (refused, or the server is unreachable).
    #[error("{component}: cannot list {kind}: {message}")]
    NotSynced {
        /// The component (`kube-scheduler`, `kube-controller-manager`, `kubelet`).
        component: &'static str,
        /// What it lists.
        kind: &'static str,
        /// The server's answer or what went wrong.
        message: String,
    },
    /// A controller's credentials could not be minted.
    #[error("kube-controller-manager: credentials of {account}: {message}")]
    Credentials {
        /// The controller's service account.
        account: &'static str,
        /// What went wrong.
        message: String,
    },
    /// A one-off request failed (bootstrap objects).
    #[error("{component}: {what}: {source}")]
    Request {
        /// The component.
        component: &'static str,
        /// What it was doing.
        what: String,
        /// The client's error.
        source: kube_client::Error,
    },
}

/// Waits for `cache` to sync, naming `component` and `kind` on failure.
pub async fn synced<K: kube_client::core::Resource>(
    cache: &Cache<K>,
    component: &'static str,
    kind: &'static str,
) -> Result<(), ControllerError> {
    cache
        .wait_synced(SYNC_TIMEOUT)
        .await
        .map_err(|message| ControllerError::NotSynced {
            component,
            kind,
            message,
        })
}

/// The watcher configuration every informer starts from: kube-runtime's defaults
/// (bookmarks, list then watch) with the watch timeout of `RKIND_CONTROLLER_WATCH_TIMEOUT`
/// seconds where set (tests shorten it to make watches reconnect often).
pub fn watch_config() -> kube_runtime::watcher::Config {
    let c = kube_runtime::watcher::Config::default();
    match std::env::var("RKIND_CONTROLLER_WATCH_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
    {
        Some(t) if t > 0 => c.timeout(t),
        _ => c,
    }
}

/// What a reconcile asks of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing more until the key changes again.
    Done,
    /// Look again after this long.
    RequeueAfter(Duration),
}

/// Reconciles keys from `queue` one at a time until shutdown: a failure is logged and
/// the key comes back after its back-off delay.
pub async fn run_workers<T, F, Fut, E>(name: &'static str, queue: Arc<WorkQueue<T>>, reconcile: F)
where
    T: Clone + Eq + Hash + Display,
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<Action, E>>,
    E: Display,
{
    while let Some(item) = queue.next().await {
        let span = tracing::debug_span!("controller_reconcile", controller = name, key = %item);
        match reconcile(item.clone()).instrument(span).await {
            Ok(Action::Done) => queue.forget(&item),
            Ok(Action::RequeueAfter(d)) => {
                queue.forget(&item);
                queue.add_after(item.clone(), d);
            }
            Err(e) => {
                let failures = queue.failures(&item);
                if failures < 3 {
                    tracing::debug!(controller = name, key = %item, error = %e, "reconcile failed; retrying");
                } else {
                    tracing::warn!(controller = name, key = %item, error = %e, failures, "reconcile keeps failing");
                }
                queue.add_rate_limited(item.clone());
            }
        }
        queue.done(&item);
    }
}

/// POSTs a JSON object to `path` and decodes the JSON answer.
pub async fn post_json(
    client: &kube_client::Client,
    path: &str,
    body: &Value,
) -> Result<Value, kube_client::Error> {
    api_resources::request_json(client, http::Method::POST, path, Some(body)).await
}

/// The HTTP code of an API error (0 for other failures).
pub fn code(e: &kube_client::Error) -> u16 {
    informer::api_status(e).map_or(0, |s| s.code)
}

/// Whether a namespace is going away (its objects must not be recreated).
pub fn terminating(ns: &k8s_openapi::api::core::v1::Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_some()
        || ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating")
}

/// The informers kube-controller-manager's loops share (upstream's shared informer
/// factory): one watch and one cache per kind, however many controllers read it. A
/// controller's `new` takes `&mut` to the ones it reads (to subscribe to changes and keep
/// the cache); [`SharedInformers::start`] runs them once every controller is wired.
pub struct SharedInformers {
    /// Every namespace.
    pub namespaces: Informer<k8s_openapi::api::core::v1::Namespace>,
    /// Every pod, indexed by namespace, by controller owner uid and by node name.
    pub pods: Informer<k8s_openapi::api::core::v1::Pod>,
    /// Every node (the DaemonSet controller places pods by them; node lifecycle and the
    /// taint manager read their conditions and taints).
    pub nodes: Informer<k8s_openapi::api::core::v1::Node>,
    /// Every ControllerRevision (StatefulSet and DaemonSet history), indexed by namespace.
    pub revisions: Informer<k8s_openapi::api::apps::v1::ControllerRevision>,
}

impl SharedInformers {
    /// The informers, not yet running.
    pub fn new(client: &kube_client::Client) -> Self {
        SharedInformers {
            namespaces: Informer::new(
                kube_client::Api::all(client.clone()),
                watch_config(),
                "namespaces",
                vec![],
            ),
            pods: Informer::new(
                kube_client::Api::all(client.clone()),
                watch_config(),
                "pods",
                vec![
                    informer::by_namespace(),
                    informer::by_owner(),
                    informer::by_node(),
                ],
            ),
            nodes: Informer::new(
                kube_client::Api::all(client.clone()),
                watch_config(),
                "nodes",
                vec![],
            ),
            revisions: Informer::new(
                kube_client::Api::all(client.clone()),
                watch_config(),
                "controllerrevisions",
                vec![informer::by_namespace()],
            ),
        }
    }

    /// Runs every informer; returns their tasks once each holds a first full list.
    pub async fn start(
        self,
        component: &'static str,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, ControllerError> {
        let (ns, pods) = (self.namespaces.cache(), self.pods.cache());
        let (nodes, revs) = (self.nodes.cache(), self.revisions.cache());
        let tasks = vec![
            tokio::spawn(self.namespaces.run(shutdown.clone())),
            tokio::spawn(self.pods.run(shutdown.clone())),
            tokio::spawn(self.nodes.run(shutdown.clone())),
            tokio::spawn(self.revisions.run(shutdown.clone())),
        ];
        synced(&ns, component, "namespaces").await?;
        synced(&pods, component, "pods").await?;
        synced(&nodes, component, "nodes").await?;
        synced(&revs, component, "controllerrevisions").await?;
        Ok(tasks)
    }
}

/// Starts kube-controller-manager's loops (default ServiceAccounts, the root CA
/// ConfigMap, namespace deletion, resource quota, the workload controllers, garbage
/// collection) on shared informers; returns once their caches are synced. The shared
/// informers run as the manager (`client`); each controller acts with its own service
/// account's token, minted by `credentials` ([`credentials`]).
pub async fn start_controller_manager(
    client: kube_client::Client,
    credentials: credentials::Credentials,
    token_signer: crate::apiserver::authn::serviceaccount::Signer,
    ca_pem: String,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<Vec<tokio::task::JoinHandle<()>>, ControllerError> {
    use crate::apiserver::authz::controller_policy::account;
    const CM: &str = "kube-controller-manager";
    let mut shared = SharedInformers::new(&client);
    let mut tasks = Vec::new();
    let mut own = async |name: &'static str| -> Result<kube_client::Client, ControllerError> {
        let (c, renew) = credentials.client(name).await?;
        tasks.push(renew);
        Ok(c)
    };
    let sa = serviceaccount::Controller::new(
        own(account::SERVICE_ACCOUNT).await?,
        &client,
        &mut shared.namespaces,
        shutdown.clone(),
    );
    let rc = replicationcontroller::Controller::new(
        own(account::REPLICATION).await?,
        &mut shared.pods,
        shutdown.clone(),
    );
    let sts = statefulset::Controller::new(
        own(account::STATEFULSET).await?,
        &mut shared.pods,
        &mut shared.revisions,
        shutdown.clone(),
    );
    let ds = daemonset::Controller::new(
        own(account::DAEMONSET).await?,
        &mut shared.pods,
        &mut shared.nodes,
        &mut shared.revisions,
        shutdown.clone(),
    );
    let rs = replicaset::Controller::new(
        own(account::REPLICASET).await?,
        &mut shared.pods,
        shutdown.clone(),
    );
    let deploy = deployment::Controller::new(
        own(account::DEPLOYMENT).await?,
        &mut shared.pods,
        shutdown.clone(),
    );
    let mut job =
        job::Controller::new(own(account::JOB).await?, &mut shared.pods, shutdown.clone());
    let clock = Arc::new(cronjob::SystemClock);
    let cj = cronjob::Controller::new(
        own(account::CRONJOB).await?,
        job.jobs(),
        clock,
        shutdown.clone(),
    );
    let ttl = ttlafterfinished::Controller::new(
        own(account::TTL_AFTER_FINISHED).await?,
        job.jobs(),
        shutdown.clone(),
    );
    let pdb = disruption::Controller::new(
        own(account::DISRUPTION).await?,
        &mut shared.pods,
        shutdown.clone(),
    );
    let gc_client = own(account::GARBAGE_COLLECTOR).await?;
    let ca = rootca::Controller::new(
        own(account::ROOT_CA).await?,
        &client,
        &mut shared.namespaces,
        ca_pem.clone(),
        shutdown.clone(),
    );
    let ns = namespace::Controller::new(
        own(account::NAMESPACE).await?,
        &mut shared.namespaces,
        shutdown.clone(),
    );
    // Node taints by condition and NoExecute eviction read the shared node informer.
    let node_client = own(account::NODE).await?;
    let lifecycle =
        nodelifecycle::Controller::new(node_client.clone(), &mut shared.nodes, shutdown.clone());
    let taints = taintmanager::Controller::new(
        node_client,
        &mut shared.pods,
        &mut shared.nodes,
        shutdown.clone(),
    );
    let aggregation = clusterroleaggregation::Controller::new(
        own(account::CLUSTERROLE_AGGREGATION).await?,
        shutdown.clone(),
    );
    let quota =
        resourcequota::Controller::new(own(account::RESOURCEQUOTA).await?, shutdown.clone());
    // The token controller runs as the manager itself, as upstream's.
    let legacy_tokens =
        tokens::Controller::new(client.clone(), token_signer, ca_pem, shutdown.clone());
    tasks.extend(gc::start(gc_client, shutdown.clone()));
    tasks.extend(lifecycle.start());
    tasks.extend(taints.start());
    let (sa_tasks, sa_cache) = sa.start();
    tasks.extend(sa_tasks);
    let (ca_tasks, ca_cache) = ca.start();
    tasks.extend(ca_tasks);
    let (rc_tasks, rc_cache) = rc.start();
    tasks.extend(rc_tasks);
    let (rs_tasks, rs_cache) = rs.start();
    tasks.extend(rs_tasks);
    let (deploy_tasks, deploy_cache, deploy_rs_cache) = deploy.start();
    tasks.extend(deploy_tasks);
    let (pdb_tasks, pdb_cache) = pdb.start();
    tasks.extend(pdb_tasks);
    tasks.extend(ns.start());
    let (job_tasks, job_cache) = job.start();
    tasks.extend(job_tasks);
    let (cj_tasks, cj_cache) = cj.start();
    tasks.extend(cj_tasks);
    tasks.extend(ttl.start());
    let (sts_tasks, sts_cache) = sts.start();
    tasks.extend(sts_tasks);
    let (ds_tasks, ds_cache) = ds.start();
    tasks.extend(ds_tasks);
    let (agg_tasks, agg_cache) = aggregation.start();
    tasks.extend(agg_tasks);
    let (quota_tasks, quota_cache) = quota.start();
    tasks.extend(quota_tasks);
    let (token_tasks, token_cache) = legacy_tokens.start();
    tasks.extend(token_tasks);
    tasks.extend(shared.start(CM, &shutdown).await?);
    synced(&sa_cache, CM, "serviceaccounts").await?;
    synced(&agg_cache, CM, "clusterroles").await?;
    synced(&ca_cache, CM, "configmaps").await?;
    synced(&rc_cache, CM, "replicationcontrollers").await?;
    synced(&rs_cache, CM, "replicasets").await?;
    synced(&deploy_cache, CM, "deployments").await?;
    synced(&deploy_rs_cache, CM, "replicasets").await?;
    synced(&pdb_cache, CM, "poddisruptionbudgets").await?;
    synced(&quota_cache, CM, "resourcequotas").await?;
    synced(&token_cache, CM, "secrets").await?;
    synced(&job_cache, CM, "jobs").await?;
    synced(&cj_cache, CM, "cronjobs").await?;
    synced(&sts_cache, CM, "statefulsets").await?;
    synced(&ds_cache, CM, "daemonsets").await?;
    Ok(tasks)
}
