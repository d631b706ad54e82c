//! kube-controller-manager's deployment controller (upstream's
//! pkg/controller/deployment): a Deployment runs its pods through ReplicaSets named
//! `<deployment>-<pod-template-hash>`, one per pod template it has had, and moves
//! replicas from the old ones to the new one as its strategy says.
//!
//! One sync of a Deployment ([`sync`]): claim the ReplicaSets of its namespace its selector
//! matches (adopt orphans, release those that stopped matching); then, in upstream's
//! order, only the status while it is being deleted, the paused/resumed condition,
//! scaling alone (paused, or `replicas` changed: proportionally across the active
//! ReplicaSets), else a rollout step ([`rolling`] or [`recreate`]), old ReplicaSets beyond
//! `revisionHistoryLimit` deleted once the rollout is complete, and the status and
//! conditions ([`progress`]) written, with a requeue to notice a progress deadline.
//!
//! The API hops (ReplicaSet create/update/delete, the deployment's status, Events) are
//! here; the arithmetic is pure, in [`util`] and [`progress`].

pub mod progress;
pub mod recreate;
pub mod rolling;
pub mod sync;
pub mod util;

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube_client::Api;
use kube_client::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::events::record_event_kube;
use super::informer::{self, BY_NAMESPACE, Cache, Change, Informer, ObjectKey};
use super::{WorkQueue, run_workers, watch_config};

/// The component Events name (upstream's `deployment-controller`).
pub const COMPONENT: &str = "deployment-controller";

const KIND: &str = "Deployment";
const API_VERSION: &str = "apps/v1";

/// Why a sync failed (it is retried with back-off).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A request to the API server failed.
    #[error("{what}: {source}")]
    Api {
        /// What the controller was doing.
        what: String,
        /// The client's error.
        source: kube_client::Error,
    },
    /// The deployment's spec cannot be acted on.
    #[error("deployment {key}: {source}")]
    Spec {
        /// The deployment.
        key: String,
        /// What is wrong.
        source: util::UtilError,
    },
    /// The new ReplicaSet's name is taken by another one: collisionCount was raised and
    /// the next sync tries the next name.
    #[error("replicaset {name} already exists with another template (hash collision)")]
    Collision {
        /// The name taken.
        name: String,
    },
    /// The deployment changed or went away while adopting.
    #[error("original Deployment {key} is gone: got uid {got}, wanted {wanted}")]
    OwnerGone {
        /// The deployment.
        key: String,
        /// The uid found.
        got: String,
        /// The uid listed.
        wanted: String,
    },
}

fn api(what: impl Into<String>) -> impl FnOnce(kube_client::Error) -> SyncError {
    let what = what.into();
    move |source| SyncError::Api { what, source }
}

/// The controller, wired to its informers (start it with [`Controller::start`]).
pub struct Controller {
    ctx: Arc<Ctx>,
    deploy_feed: mpsc::Receiver<Change<Deployment>>,
    rs_feed: mpsc::Receiver<Change<ReplicaSet>>,
    pod_feed: mpsc::Receiver<Change<Pod>>,
    deploys: Informer<Deployment>,
    rss: Informer<ReplicaSet>,
    shutdown: CancellationToken,
}

/// What every sync reads and writes through.
pub struct Ctx {
    client: kube_client::Client,
    deploys: Cache<Deployment>,
    rss: Cache<ReplicaSet>,
    pods: Cache<Pod>,
    queue: Arc<WorkQueue<ObjectKey>>,
}

impl Controller {
    /// Sets up the Deployment and ReplicaSet informers (all namespaces) and subscribes to
    /// the controller-manager's shared pod informer (indexed by owner; Recreate waits
    /// for old pods to be gone).
    pub fn new(
        client: kube_client::Client,
        pods: &mut Informer<Pod>,
        shutdown: CancellationToken,
    ) -> Self {
        let mut deploys = Informer::new(
            Api::all(client.clone()),
            watch_config(),
            "deployments",
            vec![informer::by_namespace()],
        );
        let mut rss = Informer::new(
            Api::all(client.clone()),
            watch_config(),
            "replicasets",
            vec![informer::by_namespace(), informer::by_owner()],
        );
        let ctx = Arc::new(Ctx {
            client,
            deploys: deploys.cache(),
            rss: rss.cache(),
            pods: pods.cache(),
            queue: Arc::new(WorkQueue::new(shutdown.clone())),
        });
        Controller {
            ctx,
            deploy_feed: deploys.subscribe(),
            rs_feed: rss.subscribe(),
            pod_feed: pods.subscribe(),
            deploys,
            rss,
            shutdown,
        }
    }

    /// Runs the informers, the triggers and the worker; returns their tasks and the two
    /// caches (to wait for their sync).
    pub fn start(self) -> (Vec<JoinHandle<()>>, Cache<Deployment>, Cache<ReplicaSet>) {
        let Controller {
            ctx,
            mut deploy_feed,
            mut rs_feed,
            mut pod_feed,
            deploys,
            rss,
            shutdown,
        } = self;
        let (dc, rc) = (deploys.cache(), rss.cache());
        let mut tasks = vec![
            tokio::spawn(deploys.run(shutdown.clone())),
            tokio::spawn(rss.run(shutdown.clone())),
        ];
        let trig = ctx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    Some(c) = deploy_feed.recv() => trig.queue.add(ObjectKey::of(&**c.object())),
                    Some(c) = rs_feed.recv() => trig.rs_changed(&c),
                    Some(c) = pod_feed.recv() => {
                        if let Change::Deleted(p) = c {
                            trig.pod_deleted(&p);
                        }
                    },
                    else => return,
                }
            }
        }));
        let queue = ctx.queue.clone();
        tasks.push(tokio::spawn(run_workers(
            "deployment",
            queue,
            move |key: ObjectKey| {
                let ctx = ctx.clone();
                async move { ctx.sync(&key).await }
            },
        )));
        (tasks, dc, rc)
    }
}

/// The controller reference of an object's metadata, if any.
fn controller_ref(refs: Option<&Vec<OwnerReference>>) -> Option<&OwnerReference> {
    refs.into_iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

impl Ctx {
    /// The deployment controlling `rs`, if it is cached with the referenced uid.
    fn owner_of(&self, rs: &ReplicaSet) -> Option<Arc<Deployment>> {
        let r = controller_ref(rs.metadata.owner_references.as_ref())?;
        if r.kind != KIND {
            return None;
        }
        let ns = rs.metadata.namespace.as_deref().unwrap_or("");
        let d = self.deploys.get(&ObjectKey::new(ns, &r.name))?;
        (d.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some(d)
    }

    /// A ReplicaSet changed: its deployment looks again; an orphan makes every deployment
    /// whose selector matches it look (one may adopt it).
    fn rs_changed(&self, change: &Change<ReplicaSet>) {
        let rs = change.object();
        if let Some(d) = self.owner_of(rs) {
            self.queue.add(ObjectKey::of(&*d));
            return;
        }
        if controller_ref(rs.metadata.owner_references.as_ref()).is_some()
            || matches!(change, Change::Deleted(_))
        {
            return;
        }
        let ns = rs.metadata.namespace.as_deref().unwrap_or("");
        for d in self.deploys.by_index(BY_NAMESPACE, ns) {
            let sel = d.spec.as_ref().map(|s| &s.selector);
            if util::selector_matches(sel, rs.metadata.labels.as_ref()) == Ok(true) {
                self.queue.add(ObjectKey::of(&*d));
            }
        }
    }

    /// A pod went away: a Recreate deployment may have been waiting for it.
    fn pod_deleted(&self, pod: &Pod) {
        let Some(r) = controller_ref(pod.metadata.owner_references.as_ref()) else {
            return;
        };
        if r.kind != "ReplicaSet" {
            return;
        }
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        let Some(rs) = self.rss.get(&ObjectKey::new(ns, &r.name)) else {
            return;
        };
        if let Some(d) = self.owner_of(&rs)
            && util::is_recreate(&d)
        {
            self.queue.add(ObjectKey::of(&*d));
        }
    }

    /// Records an Event about the deployment.
    async fn event(&self, d: &Deployment, type_: &str, reason: &str, message: &str) {
        let obj = json!({"apiVersion": API_VERSION, "kind": KIND, "metadata": {
            "name": d.metadata.name, "namespace": d.metadata.namespace,
            "uid": d.metadata.uid, "resourceVersion": d.metadata.resource_version}});
        record_event_kube(&self.client, &obj, type_, reason, message, COMPONENT).await;
    }

    fn rs_api(&self, ns: &str) -> Api<ReplicaSet> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// Creates a ReplicaSet.
    async fn create_rs(&self, rs: &ReplicaSet) -> Result<ReplicaSet, kube_client::Error> {
        let ns = rs.metadata.namespace.as_deref().unwrap_or("");
        let span = tracing::debug_span!("controller_to_apiserver_create_replicaset", rs = ?rs.metadata.name);
        tracing::Instrument::instrument(self.rs_api(ns).create(&PostParams::default(), rs), span)
            .await
    }

    /// Replaces a ReplicaSet (its resourceVersion guards against a stale cache).
    async fn update_rs(&self, rs: &ReplicaSet) -> Result<ReplicaSet, SyncError> {
        let ns = rs.metadata.namespace.as_deref().unwrap_or("");
        let name = rs.metadata.name.as_deref().unwrap_or("");
        let span = tracing::debug_span!("controller_to_apiserver_update_replicaset", rs = %name);
        tracing::Instrument::instrument(
            self.rs_api(ns).replace(name, &PostParams::default(), rs),
            span,
        )
        .await
        .map_err(api(format!("updating replicaset {ns}/{name}")))
    }

    /// Deletes an old ReplicaSet (its pods follow through the garbage collector).
    async fn delete_rs(&self, rs: &ReplicaSet) -> Result<(), SyncError> {
        let ns = rs.metadata.namespace.as_deref().unwrap_or("");
        let name = rs.metadata.name.as_deref().unwrap_or("");
        let span = tracing::debug_span!("controller_to_apiserver_delete_replicaset", rs = %name);
        let dp = DeleteParams {
            preconditions: rs
                .metadata
                .uid
                .clone()
                .map(|uid| kube_client::api::Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
            ..Default::default()
        };
        match tracing::Instrument::instrument(self.rs_api(ns).delete(name, &dp), span).await {
            Ok(_) => Ok(()),
            Err(e) if super::code(&e) == 404 => Ok(()),
            Err(e) => Err(api(format!("deleting replicaset {ns}/{name}"))(e)),
        }
    }

    /// Writes the deployment's status (and its revision annotation, which upstream
    /// writes through the same status update); `d` becomes the stored object.
    async fn update_status(&self, d: &mut Deployment) -> Result<(), SyncError> {
        let ns = d.metadata.namespace.clone().unwrap_or_default();
        let name = d.metadata.name.clone().unwrap_or_default();
        let api_d = Api::<Deployment>::namespaced(self.client.clone(), &ns);
        let span =
            tracing::debug_span!("controller_to_apiserver_deployment_status", deployment = %name);
        let stored = tracing::Instrument::instrument(
            api_d.replace_status(&name, &PostParams::default(), &*d),
            span,
        )
        .await
        .map_err(api(format!(
            "updating the status of deployment {ns}/{name}"
        )))?;
        let want = d
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(util::REVISION))
            .cloned();
        let got = stored
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(util::REVISION))
            .cloned();
        *d = stored;
        if let Some(rev) = want
            && got.as_ref() != Some(&rev)
        {
            // The status subresource did not carry the annotation: set it on the object.
            let patch = json!({"metadata": {"annotations": {util::REVISION: rev},
                "resourceVersion": d.metadata.resource_version}});
            let span = tracing::debug_span!("controller_to_apiserver_deployment_revision", deployment = %name);
            *d = tracing::Instrument::instrument(
                api_d.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)),
                span,
            )
            .await
            .map_err(api(format!(
                "setting the revision of deployment {ns}/{name}"
            )))?;
        }
        Ok(())
    }

    /// Scales `rs` to `scale` and refreshes its replicas annotations (upstream's
    /// `scaleReplicaSet`); records `ScalingReplicaSet` when the size changed. Returns
    /// whether it was scaled and the ReplicaSet as stored.
    async fn scale_rs(
        &self,
        d: &Deployment,
        rs: &ReplicaSet,
        scale: i32,
        op: &str,
    ) -> Result<(bool, ReplicaSet), SyncError> {
        let want = util::replicas(d);
        let max = want + util::max_surge(d);
        let old = util::rs_replicas(rs);
        let resize = old != scale;
        if !resize && !util::replicas_annotations_need_update(rs, want, max) {
            return Ok((false, rs.clone()));
        }
        let mut next = rs.clone();
        if let Some(s) = next.spec.as_mut() {
            s.replicas = Some(scale);
        }
        util::set_replicas_annotations(&mut next, want, max);
        let stored = self.update_rs(&next).await?;
        if resize {
            let name = stored.metadata.name.as_deref().unwrap_or("");
            self.event(
                d,
                "Normal",
                "ScalingReplicaSet",
                &format!("Scaled {op} replica set {name} to {scale} from {old}"),
            )
            .await;
        }
        Ok((resize, stored))
    }

    /// [`Ctx::scale_rs`] naming the direction (upstream's `scaleReplicaSetAndRecordEvent`).
    async fn scale_rs_and_record(
        &self,
        d: &Deployment,
        rs: &ReplicaSet,
        scale: i32,
    ) -> Result<(bool, ReplicaSet), SyncError> {
        let old = util::rs_replicas(rs);
        if old == scale {
            return Ok((false, rs.clone()));
        }
        let op = if old < scale { "up" } else { "down" };
        self.scale_rs(d, rs, scale, op).await
    }
}
