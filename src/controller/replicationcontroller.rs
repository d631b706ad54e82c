//! kube-controller-manager's replication manager: upstream runs its ReplicaSet
//! controller (pkg/controller/replicaset) on ReplicationControllers, and so does this.
//!
//! One sync of an RC: wait until the pods it created or deleted have shown up in the pod
//! cache ([`Expectations`]); claim the active pods of its namespace (adopt matching
//! orphans, release owned pods that stopped matching); create the missing pods in slow
//! start batches or delete the surplus, most expendable first; then write the status
//! (replicas, fullyLabeledReplicas, readyReplicas, availableReplicas, observedGeneration
//! and the `ReplicaFailure` condition while creating or deleting fails).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Pod, ReplicationController, ReplicationControllerCondition, ReplicationControllerStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube_client::Api;
use kube_client::api::PostParams;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::informer::{self, BY_NAMESPACE, Cache, Change, Informer, ObjectKey};
use super::podcontrol::{
    self, BURST_REPLICAS, Claim, Expectations, Owner, PodControl, PodControlError, Seen,
};
use super::{Action, WorkQueue, run_workers, watch_config};

/// The component Events name (upstream's replication manager source).
pub const COMPONENT: &str = "replication-controller";

/// The condition type a failing create or delete sets.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

const KIND: &str = "ReplicationController";

/// Why a sync failed (it is retried with back-off).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Creating, deleting or claiming pods failed.
    #[error(transparent)]
    Pods(#[from] PodControlError),
    /// Writing the status failed.
    #[error("updating the status of {key}: {source}")]
    Status {
        /// The RC.
        key: String,
        /// The client's error.
        source: kube_client::Error,
    },
}

/// The controller, wired to its informers (start it with [`Controller::start`]).
pub struct Controller {
    ctx: Arc<Ctx>,
    rc_feed: mpsc::Receiver<Change<ReplicationController>>,
    pod_feed: mpsc::Receiver<Change<Pod>>,
    rcs: Informer<ReplicationController>,
    shutdown: CancellationToken,
}

struct Ctx {
    client: kube_client::Client,
    control: PodControl,
    rcs: Cache<ReplicationController>,
    pods: Cache<Pod>,
    expectations: Expectations,
    queue: Arc<WorkQueue<ObjectKey>>,
}

impl Controller {
    /// Sets up the RC informer (all namespaces) and subscribes to the controller-manager's
    /// shared pod informer (which must index by namespace and by owner).
    pub fn new(
        client: kube_client::Client,
        pods: &mut Informer<Pod>,
        shutdown: CancellationToken,
    ) -> Self {
        let mut rcs = Informer::new(
            Api::all(client.clone()),
            watch_config(),
            "replicationcontrollers",
            vec![informer::by_namespace()],
        );
        let ctx = Arc::new(Ctx {
            control: PodControl::new(client.clone(), COMPONENT),
            client,
            rcs: rcs.cache(),
            pods: pods.cache(),
            expectations: Expectations::default(),
            queue: Arc::new(WorkQueue::new(shutdown.clone())),
        });
        Controller {
            ctx,
            rc_feed: rcs.subscribe(),
            pod_feed: pods.subscribe(),
            rcs,
            shutdown,
        }
    }

    /// Runs the RC informer, the triggers and the worker; returns their tasks and the RC
    /// cache (to wait for its sync).
    pub fn start(self) -> (Vec<JoinHandle<()>>, Cache<ReplicationController>) {
        let Controller {
            ctx,
            mut rc_feed,
            mut pod_feed,
            rcs,
            shutdown,
        } = self;
        let rc_cache = rcs.cache();
        let mut tasks = vec![tokio::spawn(rcs.run(shutdown.clone()))];
        let trig = ctx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    Some(c) = rc_feed.recv() => {
                        let key = ObjectKey::of(&**c.object());
                        if let Change::Deleted(_) = c {
                            trig.expectations.forget(&key.to_string());
                        }
                        trig.queue.add(key);
                    },
                    Some(c) = pod_feed.recv() => trig.pod_changed(&c),
                    else => return,
                }
            }
        }));
        let queue = ctx.queue.clone();
        tasks.push(tokio::spawn(run_workers(
            "replicationcontroller",
            queue,
            move |key: ObjectKey| {
                let ctx = ctx.clone();
                async move { ctx.sync(&key).await }
            },
        )));
        (tasks, rc_cache)
    }
}

/// Whether the RC's selector (a non-empty label map) matches `pod`.
fn selects(rc: &ReplicationController, pod: &Pod) -> bool {
    let Some(sel) = rc.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return false;
    };
    if sel.is_empty() {
        return false;
    }
    let labels = pod.metadata.labels.as_ref();
    sel.iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// Whether every template label is on the pod (`fullyLabeledReplicas`).
fn fully_labeled(template: &BTreeMap<String, String>, pod: &Pod) -> bool {
    let labels = pod.metadata.labels.as_ref();
    template
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

impl Ctx {
    /// The RC controlling `pod` by its controller reference (same uid), if cached.
    fn controller_key(&self, pod: &Pod) -> Option<ObjectKey> {
        let r = podcontrol::controller_of(pod)?;
        if r.kind != KIND {
            return None;
        }
        let key = ObjectKey::new(pod.metadata.namespace.as_deref().unwrap_or(""), &r.name);
        let rc = self.rcs.get(&key)?;
        (rc.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some(key)
    }

    /// A pod changed: its controller looks again; an orphan makes every RC whose
    /// selector matches it look (one may adopt it).
    fn pod_changed(&self, change: &Change<Pod>) {
        let pod = change.object();
        if let Some(key) = self.controller_key(pod) {
            if matches!(change, Change::Deleted(_)) {
                self.expectations
                    .observed_gone(&key.to_string(), pod.metadata.name.as_deref().unwrap_or(""));
            }
            self.queue.add(key);
            return;
        }
        if podcontrol::controller_of(pod).is_some() || matches!(change, Change::Deleted(_)) {
            return;
        }
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        for rc in self.rcs.by_index(BY_NAMESPACE, ns) {
            if selects(&rc, pod) {
                self.queue.add(ObjectKey::of(&*rc));
            }
        }
    }

    fn seen(&self, ns: &str, name: &str) -> Seen {
        match self.pods.get(&ObjectKey::new(ns, name)) {
            None => Seen::Absent,
            Some(p) if p.metadata.deletion_timestamp.is_some() => Seen::Terminating,
            Some(_) => Seen::Present,
        }
    }

    async fn sync(&self, key: &ObjectKey) -> Result<Action, SyncError> {
        let Some(rc) = self.rcs.get(key) else {
            self.expectations.forget(&key.to_string());
            return Ok(Action::Done);
        };
        let ekey = key.to_string();
        let needs_sync = self
            .expectations
            .satisfied(&ekey, |n| self.seen(&key.namespace, n));
        let owner = Owner::new("v1", KIND, &rc.metadata);
        let deleting = rc.metadata.deletion_timestamp.is_some();
        let active: Vec<Arc<Pod>> = self
            .pods
            .by_index(BY_NAMESPACE, &key.namespace)
            .into_iter()
            .filter(|p| podcontrol::is_active(p))
            .collect();
        let matches = |p: &Pod| selects(&rc, p);
        let claim = Claim {
            owner: &owner,
            deleting,
            matches: &matches,
        };
        let claimed =
            podcontrol::claim_pods(&self.control, &claim, &active, || self.recheck(key, &owner))
                .await?;
        let mut manage_err = None;
        if needs_sync && !deleting {
            manage_err = self.manage(&rc, &owner, &claimed).await.err();
        }
        let status = self.status(&rc, &claimed, manage_err.as_ref());
        let rc = self.write_status(key, &rc, status).await?;
        if let Some(e) = manage_err {
            return Err(e.into());
        }
        let spec = rc.spec.as_ref();
        let min_ready = i64::from(spec.and_then(|s| s.min_ready_seconds).unwrap_or(0));
        let st = rc.status.as_ref();
        let want = st.map(|s| s.replicas).unwrap_or(0);
        let ready = st.and_then(|s| s.ready_replicas).unwrap_or(0);
        let available = st.and_then(|s| s.available_replicas).unwrap_or(0);
        if min_ready > 0 && ready == want && available != want {
            return Ok(Action::RequeueAfter(Duration::from_secs(min_ready as u64)));
        }
        Ok(Action::Done)
    }

    /// A fresh read of the RC before adopting: it must still be the same, undeleted one.
    async fn recheck(&self, key: &ObjectKey, owner: &Owner) -> Result<(), PodControlError> {
        let api = Api::<ReplicationController>::namespaced(self.client.clone(), &key.namespace);
        let fresh = api.get(&key.name).await?;
        let got = fresh.metadata.uid.clone().unwrap_or_default();
        if got != owner.uid {
            return Err(PodControlError::OwnerGone {
                kind: KIND.into(),
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                got,
                wanted: owner.uid.clone(),
            });
        }
        if let Some(t) = fresh.metadata.deletion_timestamp {
            return Err(PodControlError::OwnerDeleting {
                kind: KIND.into(),
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                at: t.0.to_string(),
            });
        }
        Ok(())
    }

    /// Creates the missing pods or deletes the surplus (at most [`BURST_REPLICAS`]).
    async fn manage(
        &self,
        rc: &ReplicationController,
        owner: &Owner,
        pods: &[Arc<Pod>],
    ) -> Result<(), PodControlError> {
        let ekey = format!("{}/{}", owner.namespace, owner.name);
        let want = rc
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1)
            .max(0) as usize;
        if pods.len() < want {
            let Some(template) = rc.spec.as_ref().and_then(|s| s.template.as_ref()) else {
                return Ok(());
            };
            let missing = (want - pods.len()).min(BURST_REPLICAS);
            tracing::debug!(rc = %ekey, missing, "creating pods");
            let (created, err) =
                podcontrol::slow_start_batch(missing, podcontrol::SLOW_START_INITIAL_BATCH, || {
                    self.control.create(template, owner)
                })
                .await;
            self.expectations.expect_creations(&ekey, created);
            return err.map_or(Ok(()), Err);
        }
        if pods.len() > want {
            let surplus = (pods.len() - want).min(BURST_REPLICAS);
            let victims = podcontrol::pods_to_delete(pods, surplus);
            let names: Vec<String> = victims
                .iter()
                .map(|p| p.metadata.name.clone().unwrap_or_default())
                .collect();
            tracing::debug!(rc = %ekey, surplus, "deleting pods");
            self.expectations.expect_deletions(&ekey, names.clone());
            let results =
                futures_util::future::join_all(names.iter().map(|n| self.control.delete(owner, n)))
                    .await;
            let mut first = None;
            for (n, r) in names.iter().zip(results) {
                if let Err(e) = r {
                    self.expectations.deletion_failed(&ekey, n);
                    first.get_or_insert(e);
                }
            }
            return first.map_or(Ok(()), Err);
        }
        Ok(())
    }

    /// The status a sync computes (upstream's `calculateStatus`).
    fn status(
        &self,
        rc: &ReplicationController,
        pods: &[Arc<Pod>],
        manage_err: Option<&PodControlError>,
    ) -> ReplicationControllerStatus {
        let spec = rc.spec.as_ref();
        let template_labels = spec
            .and_then(|s| s.template.as_ref())
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        let min_ready = i64::from(spec.and_then(|s| s.min_ready_seconds).unwrap_or(0));
        let now = jiff::Timestamp::now();
        let count = |f: &dyn Fn(&Pod) -> bool| pods.iter().filter(|p| f(p)).count() as i32;
        let mut status = rc.status.clone().unwrap_or_default();
        status.replicas = pods.len() as i32;
        status.fully_labeled_replicas = Some(count(&|p| fully_labeled(&template_labels, p)));
        status.ready_replicas = Some(count(&podcontrol::is_ready));
        status.available_replicas = Some(count(&|p| podcontrol::is_available(p, min_ready, now)));
        status.observed_generation = rc.metadata.generation;
        let mut conditions = status.conditions.take().unwrap_or_default();
        let has_failure = conditions.iter().any(|c| c.type_ == REPLICA_FAILURE);
        match manage_err {
            Some(e) if !has_failure => {
                let want = spec.and_then(|s| s.replicas).unwrap_or(1).max(0) as usize;
                let reason = if pods.len() < want {
                    "FailedCreate"
                } else {
                    "FailedDelete"
                };
                conditions.push(ReplicationControllerCondition {
                    type_: REPLICA_FAILURE.into(),
                    status: "True".into(),
                    reason: Some(reason.into()),
                    message: Some(e.to_string()),
                    last_transition_time: Some(Time(now)),
                });
            }
            None if has_failure => conditions.retain(|c| c.type_ != REPLICA_FAILURE),
            _ => {}
        }
        status.conditions = (!conditions.is_empty()).then_some(conditions);
        status
    }

    /// Writes `status` unless the RC already has it; returns the RC as stored.
    async fn write_status(
        &self,
        key: &ObjectKey,
        rc: &Arc<ReplicationController>,
        status: ReplicationControllerStatus,
    ) -> Result<Arc<ReplicationController>, SyncError> {
        if rc.status.as_ref() == Some(&status) {
            return Ok(rc.clone());
        }
        let mut next = (**rc).clone();
        next.status = Some(status);
        let span = tracing::debug_span!("controller_to_apiserver_rc_status", rc = %key);
        let api = Api::<ReplicationController>::namespaced(self.client.clone(), &key.namespace);
        match tracing::Instrument::instrument(
            api.replace_status(&key.name, &PostParams::default(), &next),
            span,
        )
        .await
        {
            Ok(stored) => Ok(Arc::new(stored)),
            // Gone meanwhile: its deletion event ends the story.
            Err(e) if super::code(&e) == 404 => Ok(Arc::new(next)),
            Err(e) => Err(SyncError::Status {
                key: key.to_string(),
                source: e,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ReplicationControllerSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn labeled(labels: &[(&str, &str)]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn an_empty_selector_selects_nothing() {
        let mut rc = ReplicationController {
            spec: Some(ReplicationControllerSpec::default()),
            ..Default::default()
        };
        assert!(!selects(&rc, &labeled(&[("a", "1")])));
        rc.spec.as_mut().unwrap().selector = Some([("a".to_string(), "1".to_string())].into());
        assert!(selects(&rc, &labeled(&[("a", "1"), ("b", "2")])));
        assert!(!selects(&rc, &labeled(&[("a", "2")])));
    }
}
