//! kube-controller-manager's garbage collector, as upstream's: a graph of owners and
//! dependents ([`graph`]) built from metadata-only informers of every deletable resource
//! ([`discovery`]), and workers that
//!
//! - delete objects whose owners are all gone (verified by GET: a uid mismatch is gone
//!   too), with the propagation their own finalizers ask for;
//! - finish foreground deletions: dependents of an owner with `foregroundDeletion` are
//!   deleted (in the foreground when they have dependents of their own), and the
//!   finalizer is removed once no dependent with `blockOwnerDeletion` remains;
//! - orphan: the owner with the `orphan` finalizer is removed from its dependents'
//!   `ownerReferences`, then the finalizer;
//! - break dependency circles (a dependent of a foreground-deleting owner that is itself
//!   waiting for its dependents stops blocking its owners).
//!
//! A namespaced owner named from another namespace or from a cluster-scoped object is
//! never found there (lookups are in the dependent's namespace); the graph reports it
//! with an `OwnerRefInvalidNamespace` warning Event on the dependent.

pub mod discovery;
pub mod graph;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use kube_client::Api;
use kube_client::api::{DeleteParams, Patch, PatchParams, Preconditions, PropagationPolicy};
use kube_client::core::{DynamicObject, PartialObjectMeta};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::discovery::{Discovered, Monitor, Served};
use self::graph::{FOREGROUND, Graph, Identity, ORPHAN, Observed, OwnerRef, Work};
use super::informer::Change;
use super::{Action, WorkQueue, code, run_workers};

/// The component name in Events.
const COMPONENT: &str = "garbage-collector-controller";
/// How many workers reconcile at once.
const WORKERS: usize = 2;
/// How long an owner that exists but has not been seen by a monitor waits to be seen.
const UNOBSERVED_RETRY: Duration = Duration::from_secs(5);

/// Why a reconcile failed (it is retried with back-off).
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// The API refused or failed a request.
    #[error("{what}: {source}")]
    Api {
        /// What the collector was doing.
        what: String,
        /// The client's error.
        source: kube_client::Error,
    },
    /// An owner reference names a kind the API does not serve (yet: CRDs come later).
    #[error("no resource serves {api_version} {kind}")]
    UnknownKind {
        /// The reference's apiVersion.
        api_version: String,
        /// The reference's kind.
        kind: String,
    },
}

/// A unit of work of the queue.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Item {
    /// Upstream's attemptToDelete queue: the object of this uid.
    Delete(String),
    /// Upstream's attemptToOrphan queue: the owner of this uid.
    Orphan(String),
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Delete(u) => write!(f, "delete:{u}"),
            Item::Orphan(u) => write!(f, "orphan:{u}"),
        }
    }
}

/// How one owner reference stands (upstream's `classifyReferences`).
enum Standing {
    /// The owner exists and is not waiting for its dependents.
    Solid,
    /// The owner does not exist (or is another object by now).
    Dangling,
    /// The owner is being deleted in the foreground.
    Waiting,
}

/// The collector's shared state.
struct Gc {
    client: kube_client::Client,
    graph: Mutex<Graph>,
    discovered: RwLock<Discovered>,
    queue: Arc<WorkQueue<Item>>,
    /// Workers hold it shared for each item; discovery holds it exclusively while new
    /// monitors make their first list, so no decision is taken on a graph that does not
    /// yet know every dependent (upstream's `workerLock`).
    gate: Arc<tokio::sync::RwLock<()>>,
    /// The resources whose first list the graph holds.
    synced: Mutex<HashSet<Served>>,
    /// Wakes discovery when `synced` grows.
    synced_grew: tokio::sync::Notify,
}

/// Starts the collector: discovery (now and every 30 s), one monitor per deletable
/// resource, the graph builder and the workers. Returns their tasks.
pub fn start(client: kube_client::Client, shutdown: CancellationToken) -> Vec<JoinHandle<()>> {
    let gc = Arc::new(Gc {
        client,
        graph: Mutex::new(Graph::default()),
        discovered: RwLock::new(Discovered::default()),
        queue: Arc::new(WorkQueue::new(shutdown.clone())),
        gate: Arc::new(tokio::sync::RwLock::new(())),
        synced: Mutex::new(HashSet::new()),
        synced_grew: tokio::sync::Notify::new(),
    });
    // Taken before any worker runs: the workers wait for the first discovery's monitors.
    let first = gc
        .gate
        .clone()
        .try_write_owned()
        .expect("a new lock is free");
    let (tx, rx) = mpsc::channel(256);
    let mut tasks = vec![
        tokio::spawn(gc.clone().keep_monitors(tx, first, shutdown.clone())),
        tokio::spawn(gc.clone().build_graph(rx, shutdown)),
    ];
    for _ in 0..WORKERS {
        let gc = gc.clone();
        tasks.push(tokio::spawn(run_workers(
            "garbage-collector",
            gc.queue.clone(),
            move |item: Item| {
                let gc = gc.clone();
                async move {
                    let _running = gc.gate.read().await;
                    match item {
                        Item::Delete(uid) => gc.attempt_to_delete(&uid).await,
                        Item::Orphan(uid) => gc.attempt_to_orphan(&uid).await,
                    }
                }
            },
        )));
    }
    tasks
}

/// The graph's view of an object's metadata.
fn observed(res: &Served, obj: &PartialObjectMeta<DynamicObject>) -> Observed {
    let m = &obj.metadata;
    Observed {
        identity: Identity {
            api_version: res.api_version(),
            kind: res.kind.clone(),
            namespace: m.namespace.clone().unwrap_or_default(),
            name: m.name.clone().unwrap_or_default(),
            uid: m.uid.clone().unwrap_or_default(),
        },
        owners: owner_refs(&obj.metadata),
        being_deleted: m.deletion_timestamp.is_some(),
        finalizers: m.finalizers.clone().unwrap_or_default(),
    }
}

fn owner_refs(m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Vec<OwnerRef> {
    m.owner_references
        .iter()
        .flatten()
        .map(|r| OwnerRef {
            api_version: r.api_version.clone(),
            kind: r.kind.clone(),
            name: r.name.clone(),
            uid: r.uid.clone(),
            block: r.block_owner_deletion == Some(true),
            controller: r.controller,
        })
        .collect()
}

fn has_finalizer(obj: &PartialObjectMeta<DynamicObject>, f: &str) -> bool {
    obj.metadata.finalizers.iter().flatten().any(|x| x == f)
}

fn api_err(what: impl Into<String>) -> impl FnOnce(kube_client::Error) -> GcError {
    let what = what.into();
    move |source| GcError::Api { what, source }
}

impl Gc {
    /// Discovers the served resources now and every 30 s, starting a monitor for each new
    /// deletable one and stopping those of resources no longer served.
    async fn keep_monitors(
        self: Arc<Self>,
        events: mpsc::Sender<discovery::Event>,
        first: tokio::sync::OwnedRwLockWriteGuard<()>,
        shutdown: CancellationToken,
    ) {
        let mut monitors: HashMap<Served, Monitor> = HashMap::new();
        let mut first = Some(first);
        loop {
            match discovery::discover(&self.client).await {
                Ok(found) => {
                    monitors.retain(|res, _| found.monitored.contains(res));
                    self.lock_synced()
                        .retain(|res| found.monitored.contains(res));
                    let new: Vec<&Served> = found
                        .monitored
                        .iter()
                        .filter(|res| !monitors.contains_key(*res))
                        .collect();
                    let pause = match first.take() {
                        Some(g) => Some(g),
                        None if !new.is_empty() => Some(self.gate.clone().write_owned().await),
                        None => None,
                    };
                    for res in new {
                        let m =
                            Monitor::start(&self.client, res.clone(), events.clone(), &shutdown);
                        monitors.insert(res.clone(), m);
                    }
                    let wanted: Vec<Served> = found.monitored.clone();
                    *self.discovered.write().unwrap_or_else(|e| e.into_inner()) = found;
                    if let Some(paused) = pause {
                        self.wait_graph_synced(&wanted, &shutdown).await;
                        drop(paused);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "garbage collector: discovery failed"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(discovery::REDISCOVERY) => {}
            }
        }
    }

    fn lock_synced(&self) -> std::sync::MutexGuard<'_, HashSet<Served>> {
        self.synced.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits (at most [`super::SYNC_TIMEOUT`], as upstream bounds its resync wait) until the
    /// graph holds the first list of every resource in `wanted`.
    async fn wait_graph_synced(&self, wanted: &[Served], shutdown: &CancellationToken) {
        let deadline = tokio::time::Instant::now() + super::SYNC_TIMEOUT;
        loop {
            let grew = self.synced_grew.notified();
            let missing: Vec<String> = {
                let synced = self.lock_synced();
                wanted
                    .iter()
                    .filter(|r| !synced.contains(*r))
                    .map(|r| r.api_resource().plural)
                    .collect()
            };
            if missing.is_empty() {
                return;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = grew => {}
                _ = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(?missing, "garbage collector: monitors not synced; resuming workers anyway");
                    return;
                }
            }
        }
    }

    /// Applies the monitors' changes to the graph and queues what they call for.
    async fn build_graph(
        self: Arc<Self>,
        mut events: mpsc::Receiver<discovery::Event>,
        shutdown: CancellationToken,
    ) {
        loop {
            let (res, change) = tokio::select! {
                _ = shutdown.cancelled() => return,
                e = events.recv() => match e {
                    Some(discovery::Event::Change(res, change)) => (res, change),
                    Some(discovery::Event::Synced(res)) => {
                        self.lock_synced().insert(res);
                        self.synced_grew.notify_waiters();
                        continue;
                    }
                    None => return,
                },
            };
            let work = {
                let mut g = self.graph.lock().unwrap_or_else(|e| e.into_inner());
                match &change {
                    Change::Applied(o) => g.observe(observed(&res, o)),
                    Change::Deleted(o) => {
                        let uid = o.metadata.uid.clone().unwrap_or_default();
                        // A relist may report an object gone whose uid was replaced.
                        match g.node(&uid) {
                            Some(n) if n.observed => g.remove(&uid),
                            _ => Vec::new(),
                        }
                    }
                }
            };
            self.dispatch(work).await;
        }
    }

    async fn dispatch(&self, work: Vec<Work>) {
        for w in work {
            match w {
                Work::AttemptToDelete(uid) => self.queue.add(Item::Delete(uid)),
                Work::AttemptToOrphan(uid) => self.queue.add(Item::Orphan(uid)),
                Work::InvalidNamespace { dependent, owner } => {
                    let obj = json!({
                        "apiVersion": dependent.api_version,
                        "kind": dependent.kind,
                        "metadata": {
                            "name": dependent.name,
                            "namespace": dependent.namespace,
                            "uid": dependent.uid,
                        },
                    });
                    let msg = format!(
                        "ownerRef {owner} does not exist in namespace {:?}",
                        dependent.namespace
                    );
                    super::events::record_event_kube(
                        &self.client,
                        &obj,
                        "Warning",
                        "OwnerRefInvalidNamespace",
                        &msg,
                        COMPONENT,
                    )
                    .await;
                }
            }
        }
    }

    fn resolve(&self, api_version: &str, kind: &str) -> Result<Served, GcError> {
        self.discovered
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .resolve(api_version, kind)
            .cloned()
            .ok_or_else(|| GcError::UnknownKind {
                api_version: api_version.into(),
                kind: kind.into(),
            })
    }

    fn api(&self, res: &Served, namespace: &str) -> Api<DynamicObject> {
        let ar = res.api_resource();
        if res.namespaced {
            let ns = if namespace.is_empty() {
                "default"
            } else {
                namespace
            };
            Api::namespaced_with(self.client.clone(), ns, &ar)
        } else {
            Api::all_with(self.client.clone(), &ar)
        }
    }

    /// The live metadata of `id` (None: not found).
    async fn get(
        &self,
        id: &Identity,
    ) -> Result<Option<PartialObjectMeta<DynamicObject>>, GcError> {
        let res = self.resolve(&id.api_version, &id.kind)?;
        self.api(&res, &id.namespace)
            .get_metadata_opt(&id.name)
            .await
            .map_err(api_err(format!("get {}", id)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Graph> {
        self.graph.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Upstream's `attemptToDeleteItem`.
    async fn attempt_to_delete(&self, uid: &str) -> Result<Action, GcError> {
        let Some(node) = self.lock().node(uid).cloned() else {
            return Ok(Action::Done);
        };
        if node.being_deleted && !node.deleting_dependents {
            return Ok(Action::Done);
        }
        let latest = self.get(&node.identity).await?;
        let Some(latest) = latest.filter(|l| l.metadata.uid.as_deref() == Some(uid)) else {
            if !node.observed {
                // A virtual owner verified absent: its dependents are told.
                let work = self.lock().forget_virtual(uid);
                self.dispatch(work).await;
            }
            // An observed object: its monitor's delete event follows.
            return Ok(Action::Done);
        };
        if !node.observed {
            return Ok(Action::RequeueAfter(UNOBSERVED_RETRY));
        }
        if latest.metadata.deletion_timestamp.is_some() && has_finalizer(&latest, FOREGROUND) {
            return self.deleting_dependents(&node.identity, &latest).await;
        }
        let refs = owner_refs(&latest.metadata);
        if refs.is_empty() {
            return Ok(Action::Done);
        }
        let (mut solid, mut dangling, mut waiting) = (Vec::new(), Vec::new(), Vec::new());
        for r in &refs {
            match self.standing(r, &node.identity).await? {
                Some(Standing::Solid) => solid.push(r),
                Some(Standing::Dangling) => dangling.push(r),
                Some(Standing::Waiting) => waiting.push(r),
                // A cluster-scoped object naming a namespaced owner: never resolvable.
                None => return Ok(Action::Done),
            }
        }
        if !solid.is_empty() {
            if dangling.is_empty() && waiting.is_empty() {
                return Ok(Action::Done);
            }
            // Drop the references to gone owners and to owners waiting for their
            // dependents (those would wait for this one forever).
            let gone: Vec<&str> = dangling
                .iter()
                .chain(&waiting)
                .map(|r| r.uid.as_str())
                .collect();
            self.remove_owner_refs(&node.identity, &latest, &gone)
                .await?;
            return Ok(Action::Done);
        }
        let has_dependents = !self.lock().dependents(uid).is_empty();
        let policy = if !waiting.is_empty() && has_dependents {
            // Circle breaking: a dependent of this object waits for its own dependents
            // too; this object stops blocking its owners before going in the foreground.
            let circle = self
                .lock()
                .dependents(uid)
                .iter()
                .any(|d| d.deleting_dependents);
            if circle {
                self.unblock_owner_refs(&node.identity, &latest).await?;
            }
            PropagationPolicy::Foreground
        } else if has_finalizer(&latest, ORPHAN) {
            PropagationPolicy::Orphan
        } else if has_finalizer(&latest, FOREGROUND) {
            PropagationPolicy::Foreground
        } else {
            PropagationPolicy::Background
        };
        self.delete(&node.identity, &latest, policy).await
    }

    /// Whether the owner `r` of `item` exists (GET in the item's namespace, uid checked).
    /// None for a cluster-scoped item naming a namespaced kind.
    async fn standing(&self, r: &OwnerRef, item: &Identity) -> Result<Option<Standing>, GcError> {
        let res = self.resolve(&r.api_version, &r.kind)?;
        if res.namespaced && item.namespace.is_empty() {
            return Ok(None);
        }
        let owner = Identity {
            api_version: r.api_version.clone(),
            kind: r.kind.clone(),
            namespace: if res.namespaced {
                item.namespace.clone()
            } else {
                String::new()
            },
            name: r.name.clone(),
            uid: r.uid.clone(),
        };
        Ok(Some(match self.get(&owner).await? {
            Some(o) if o.metadata.uid.as_deref() == Some(r.uid.as_str()) => {
                if o.metadata.deletion_timestamp.is_some() && has_finalizer(&o, FOREGROUND) {
                    Standing::Waiting
                } else {
                    Standing::Solid
                }
            }
            _ => Standing::Dangling,
        }))
    }

    /// Upstream's `processDeletingDependentsItem`.
    async fn deleting_dependents(
        &self,
        id: &Identity,
        latest: &PartialObjectMeta<DynamicObject>,
    ) -> Result<Action, GcError> {
        let blocking: Vec<(String, bool)> = self
            .lock()
            .blocking_dependents(&id.uid)
            .iter()
            .map(|d| (d.identity.uid.clone(), d.deleting_dependents))
            .collect();
        if blocking.is_empty() {
            self.remove_finalizer(id, latest, FOREGROUND).await?;
            return Ok(Action::Done);
        }
        for (uid, deleting) in blocking {
            if !deleting {
                self.queue.add(Item::Delete(uid));
            }
        }
        Ok(Action::Done)
    }

    /// Upstream's `attemptToOrphanWorker`.
    async fn attempt_to_orphan(&self, uid: &str) -> Result<Action, GcError> {
        let (owner, dependents) = {
            let g = self.lock();
            let Some(n) = g.node(uid) else {
                return Ok(Action::Done);
            };
            let deps: Vec<Identity> = g
                .dependents(uid)
                .iter()
                .map(|d| d.identity.clone())
                .collect();
            (n.identity.clone(), deps)
        };
        for dep in &dependents {
            let Some(latest) = self.get(dep).await? else {
                continue;
            };
            if latest.metadata.uid.as_deref() != Some(dep.uid.as_str()) {
                continue;
            }
            self.remove_owner_refs(dep, &latest, &[uid]).await?;
        }
        match self.get(&owner).await? {
            Some(latest) if latest.metadata.uid.as_deref() == Some(uid) => {
                self.remove_finalizer(&owner, &latest, ORPHAN).await?;
            }
            _ => {}
        }
        Ok(Action::Done)
    }

    /// A JSON merge patch of `id`'s metadata, guarded by its uid and resourceVersion.
    async fn patch_meta(
        &self,
        id: &Identity,
        latest: &PartialObjectMeta<DynamicObject>,
        what: &str,
        mut metadata: serde_json::Value,
    ) -> Result<(), GcError> {
        let res = self.resolve(&id.api_version, &id.kind)?;
        metadata["uid"] = json!(id.uid);
        metadata["resourceVersion"] = json!(latest.metadata.resource_version);
        let patch = json!({ "metadata": metadata });
        match self
            .api(&res, &id.namespace)
            .patch_metadata(&id.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if code(&e) == 404 => Ok(()),
            Err(e) => Err(api_err(format!("{what} {id}"))(e)),
        }
    }

    async fn remove_owner_refs(
        &self,
        id: &Identity,
        latest: &PartialObjectMeta<DynamicObject>,
        owners: &[&str],
    ) -> Result<(), GcError> {
        let refs: Vec<_> = latest
            .metadata
            .owner_references
            .iter()
            .flatten()
            .filter(|r| !owners.contains(&r.uid.as_str()))
            .cloned()
            .collect();
        if refs.len()
            == latest
                .metadata
                .owner_references
                .as_ref()
                .map_or(0, Vec::len)
        {
            return Ok(());
        }
        let value = if refs.is_empty() {
            json!(null)
        } else {
            json!(refs)
        };
        self.patch_meta(
            id,
            latest,
            "remove owner references of",
            json!({ "ownerReferences": value }),
        )
        .await
    }

    async fn unblock_owner_refs(
        &self,
        id: &Identity,
        latest: &PartialObjectMeta<DynamicObject>,
    ) -> Result<(), GcError> {
        let refs: Vec<_> = latest
            .metadata
            .owner_references
            .iter()
            .flatten()
            .cloned()
            .map(|mut r| {
                if r.block_owner_deletion == Some(true) {
                    r.block_owner_deletion = Some(false);
                }
                r
            })
            .collect();
        self.patch_meta(
            id,
            latest,
            "unblock owner references of",
            json!({ "ownerReferences": refs }),
        )
        .await
    }

    async fn remove_finalizer(
        &self,
        id: &Identity,
        latest: &PartialObjectMeta<DynamicObject>,
        finalizer: &str,
    ) -> Result<(), GcError> {
        if !has_finalizer(latest, finalizer) {
            return Ok(());
        }
        let rest: Vec<&String> = latest
            .metadata
            .finalizers
            .iter()
            .flatten()
            .filter(|f| *f != finalizer)
            .collect();
        let value = if rest.is_empty() {
            json!(null)
        } else {
            json!(rest)
        };
        self.patch_meta(
            id,
            latest,
            "remove finalizer of",
            json!({ "finalizers": value }),
        )
        .await
    }

    /// Deletes `id` as it was read (uid and resourceVersion preconditions).
    async fn delete(
        &self,
        id: &Identity,
        latest: &PartialObjectMeta<DynamicObject>,
        policy: PropagationPolicy,
    ) -> Result<Action, GcError> {
        let res = self.resolve(&id.api_version, &id.kind)?;
        let params = DeleteParams {
            propagation_policy: Some(policy),
            preconditions: Some(Preconditions {
                uid: Some(id.uid.clone()),
                resource_version: latest.metadata.resource_version.clone(),
            }),
            ..Default::default()
        };
        tracing::debug!(object = %id, policy = ?params.propagation_policy, "garbage collector: deleting");
        match self
            .api(&res, &id.namespace)
            .delete(&id.name, &params)
            .await
        {
            Ok(_) => Ok(Action::Done),
            Err(e) if code(&e) == 404 => Ok(Action::Done),
            Err(e) => Err(api_err(format!("delete {id}"))(e)),
        }
    }
}
