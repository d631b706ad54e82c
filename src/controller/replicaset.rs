//! kube-controller-manager's ReplicaSet manager (pkg/controller/replicaset), generic over
//! the kind it manages: upstream runs the same manager on ReplicationControllers through
//! an adapter, and so does this ([`ReplicaKind`]; the RC adapter is
//! `super::replicationcontroller`).
//!
//! One sync of an owner: wait until the pods it created or deleted have shown up in the
//! pod cache ([`Expectations`]); claim the active pods of its namespace (adopt matching
//! orphans, release owned pods that stopped matching); create the missing pods in slow
//! start batches or delete the surplus, most expendable first (deletion cost, phase,
//! readiness, age); then write the status (replicas, fullyLabeledReplicas, readyReplicas,
//! availableReplicas, observedGeneration and the `ReplicaFailure` condition while
//! creating or deleting fails). A pod that becomes ready requeues its owner after
//! minReadySeconds, so availableReplicas follows without another event.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube_client::Api;
use kube_client::api::PostParams;
use kube_client::core::NamespaceResourceScope;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::informer::{self, BY_NAMESPACE, Cache, Change, Informer, ObjectKey};
use super::podcontrol::{
    self, BURST_REPLICAS, Claim, Expectations, Owner, PodControl, PodControlError, Seen,
};
use super::{Action, WorkQueue, run_workers, watch_config};

/// The component Events name (upstream's ReplicaSet controller source).
pub const COMPONENT: &str = "replicaset-controller";

/// The condition type a failing create or delete sets.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// One condition of the status, the same for every managed kind.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReplicaCondition {
    /// `ReplicaFailure`.
    pub type_: String,
    /// `True`/`False`.
    pub status: String,
    /// `FailedCreate`/`FailedDelete`.
    pub reason: Option<String>,
    /// The failure.
    pub message: Option<String>,
    /// When the condition appeared.
    pub last_transition_time: Option<Time>,
}

/// The status the manager computes, the same for every managed kind.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReplicaStatus {
    /// Active pods claimed.
    pub replicas: i32,
    /// Those carrying every template label.
    pub fully_labeled_replicas: Option<i32>,
    /// Those Ready.
    pub ready_replicas: Option<i32>,
    /// Those Ready for minReadySeconds.
    pub available_replicas: Option<i32>,
    /// The generation this status is about.
    pub observed_generation: Option<i64>,
    /// Conditions.
    pub conditions: Vec<ReplicaCondition>,
}

/// What the manager needs of a kind it manages (upstream's RC→RS conversion adapter).
pub trait ReplicaKind:
    k8s_openapi::Resource
    + kube_client::core::Resource<Scope = NamespaceResourceScope, DynamicType = ()>
    + Clone
    + Debug
    + DeserializeOwned
    + Serialize
    + Send
    + Sync
    + 'static
{
    /// The component its Events name.
    const COMPONENT: &'static str;
    /// The worker's name in logs and spans.
    const WORKER: &'static str;

    /// Whether its selector matches `pod` (an empty or missing selector matches nothing).
    fn selects(&self, pod: &Pod) -> bool;
    /// The desired replicas (`spec.replicas`, default 1).
    fn desired(&self) -> i32;
    /// `spec.minReadySeconds`.
    fn min_ready_seconds(&self) -> i32;
    /// The pod template.
    fn template(&self) -> Option<&PodTemplateSpec>;
    /// The stored status in the common form.
    fn replica_status(&self) -> Option<ReplicaStatus>;
    /// A copy with `status` as its status.
    fn with_status(&self, status: ReplicaStatus) -> Self;
}

/// Whether every template label is on the pod (`fullyLabeledReplicas`).
fn fully_labeled(template: &BTreeMap<String, String>, pod: &Pod) -> bool {
    let labels = pod.metadata.labels.as_ref();
    template
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// Whether a `metav1.LabelSelector` selects `labels` (upstream's
/// `LabelSelectorAsSelector(...).Matches`): an ill-formed selector selects nothing.
pub fn label_selector_matches(
    sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let get = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    let by_labels = sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| get(k) == Some(v.as_str()));
    by_labels
        && sel.match_expressions.iter().flatten().all(|e| {
            let v = get(&e.key);
            let values = e.values.as_deref().unwrap_or(&[]);
            let has = |v: &str| values.iter().any(|x| x == v);
            match e.operator.as_str() {
                "In" => !values.is_empty() && v.is_some_and(has),
                "NotIn" => !values.is_empty() && v.is_none_or(|v| !has(v)),
                "Exists" => values.is_empty() && v.is_some(),
                "DoesNotExist" => values.is_empty() && v.is_none(),
                _ => false,
            }
        })
}

impl ReplicaKind for ReplicaSet {
    const COMPONENT: &'static str = COMPONENT;
    const WORKER: &'static str = "replicaset";

    /// An empty selector would select every pod of the namespace; upstream refuses to
    /// manage with one (validation forbids it), so it selects nothing here.
    fn selects(&self, pod: &Pod) -> bool {
        let Some(sel) = self.spec.as_ref().map(|s| &s.selector) else {
            return false;
        };
        let empty = sel.match_labels.as_ref().is_none_or(|m| m.is_empty())
            && sel.match_expressions.as_ref().is_none_or(|m| m.is_empty());
        !empty && label_selector_matches(sel, pod.metadata.labels.as_ref())
    }

    fn desired(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }

    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().and_then(|s| s.template.as_ref())
    }

    fn replica_status(&self) -> Option<ReplicaStatus> {
        let s = self.status.as_ref()?;
        Some(ReplicaStatus {
            replicas: s.replicas,
            fully_labeled_replicas: s.fully_labeled_replicas,
            ready_replicas: s.ready_replicas,
            available_replicas: s.available_replicas,
            observed_generation: s.observed_generation,
            conditions: s
                .conditions
                .iter()
                .flatten()
                .map(|c| ReplicaCondition {
                    type_: c.type_.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    last_transition_time: c.last_transition_time.clone(),
                })
                .collect(),
        })
    }

    fn with_status(&self, s: ReplicaStatus) -> Self {
        let mut next = self.clone();
        let conditions: Vec<ReplicaSetCondition> = s
            .conditions
            .into_iter()
            .map(|c| ReplicaSetCondition {
                type_: c.type_,
                status: c.status,
                reason: c.reason,
                message: c.message,
                last_transition_time: c.last_transition_time,
            })
            .collect();
        next.status = Some(ReplicaSetStatus {
            replicas: s.replicas,
            fully_labeled_replicas: s.fully_labeled_replicas,
            ready_replicas: s.ready_replicas,
            available_replicas: s.available_replicas,
            observed_generation: s.observed_generation,
            conditions: (!conditions.is_empty()).then_some(conditions),
            // Not counted (upstream's DeploymentReplicaSetTerminatingReplicas is off by
            // default): kept as stored.
            ..self.status.clone().unwrap_or_default()
        });
        next
    }
}

/// Why a sync failed (it is retried with back-off).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Creating, deleting or claiming pods failed.
    #[error(transparent)]
    Pods(#[from] PodControlError),
    /// Writing the status failed.
    #[error("updating the status of {key}: {source}")]
    Status {
        /// The owner.
        key: String,
        /// The client's error.
        source: kube_client::Error,
    },
}

/// The manager of kind `K`, wired to its informers (start it with [`Manager::start`]).
pub struct Manager<K: ReplicaKind> {
    ctx: Arc<Ctx<K>>,
    owner_feed: mpsc::Receiver<Change<K>>,
    pod_feed: mpsc::Receiver<Change<Pod>>,
    owners: Informer<K>,
    shutdown: CancellationToken,
}

/// The ReplicaSet controller.
pub type Controller = Manager<ReplicaSet>;

struct Ctx<K: ReplicaKind> {
    client: kube_client::Client,
    control: PodControl,
    owners: Cache<K>,
    pods: Cache<Pod>,
    expectations: Expectations,
    queue: Arc<WorkQueue<ObjectKey>>,
}

impl<K: ReplicaKind> Manager<K> {
    /// Sets up the owner informer (all namespaces) and subscribes to the
    /// controller-manager's shared pod informer (which must index by namespace).
    pub fn new(
        client: kube_client::Client,
        pods: &mut Informer<Pod>,
        shutdown: CancellationToken,
    ) -> Self {
        let mut owners = Informer::new(
            Api::all(client.clone()),
            watch_config(),
            K::URL_PATH_SEGMENT,
            vec![informer::by_namespace()],
        );
        let ctx = Arc::new(Ctx {
            control: PodControl::new(client.clone(), K::COMPONENT),
            client,
            owners: owners.cache(),
            pods: pods.cache(),
            expectations: Expectations::default(),
            queue: Arc::new(WorkQueue::new(shutdown.clone())),
        });
        Manager {
            ctx,
            owner_feed: owners.subscribe(),
            pod_feed: pods.subscribe(),
            owners,
            shutdown,
        }
    }

    /// Runs the owner informer, the triggers and the worker; returns their tasks and the
    /// owner cache (to wait for its sync).
    pub fn start(self) -> (Vec<JoinHandle<()>>, Cache<K>) {
        let Manager {
            ctx,
            mut owner_feed,
            mut pod_feed,
            owners,
            shutdown,
        } = self;
        let cache = owners.cache();
        let mut tasks = vec![tokio::spawn(owners.run(shutdown.clone()))];
        let trig = ctx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    Some(c) = owner_feed.recv() => {
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
            K::WORKER,
            queue,
            move |key: ObjectKey| {
                let ctx = ctx.clone();
                async move { ctx.sync(&key).await }
            },
        )));
        (tasks, cache)
    }
}

fn meta<K: ReplicaKind>(o: &K) -> &ObjectMeta {
    kube_client::core::Resource::meta(o)
}

impl<K: ReplicaKind> Ctx<K> {
    /// The owner controlling `pod` by its controller reference (same uid), if cached.
    fn controller_key(&self, pod: &Pod) -> Option<ObjectKey> {
        let r = podcontrol::controller_of(pod)?;
        if r.kind != K::KIND {
            return None;
        }
        let key = ObjectKey::new(pod.metadata.namespace.as_deref().unwrap_or(""), &r.name);
        let owner = self.owners.get(&key)?;
        (meta(&*owner).uid.as_deref() == Some(r.uid.as_str())).then_some(key)
    }

    /// A pod changed: its controller looks again; an orphan makes every owner whose
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
        for owner in self.owners.by_index(BY_NAMESPACE, ns) {
            if owner.selects(pod) {
                self.queue.add(ObjectKey::of(&*owner));
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
        let Some(obj) = self.owners.get(key) else {
            self.expectations.forget(&key.to_string());
            return Ok(Action::Done);
        };
        let ekey = key.to_string();
        let needs_sync = self
            .expectations
            .satisfied(&ekey, |n| self.seen(&key.namespace, n));
        let owner = Owner::new(K::API_VERSION, K::KIND, meta(&*obj));
        let deleting = meta(&*obj).deletion_timestamp.is_some();
        let active: Vec<Arc<Pod>> = self
            .pods
            .by_index(BY_NAMESPACE, &key.namespace)
            .into_iter()
            .filter(|p| podcontrol::is_active(p))
            .collect();
        let matches = |p: &Pod| obj.selects(p);
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
            manage_err = self.manage(&*obj, &owner, &claimed).await.err();
        }
        let status = self.status(&*obj, &claimed, manage_err.as_ref());
        let stored = self.write_status(key, &obj, status).await?;
        if let Some(e) = manage_err {
            return Err(e.into());
        }
        Ok(self.next_look(&stored, &claimed))
    }

    /// When to look again without an event: when the first Ready pod that is not yet
    /// available becomes available (upstream requeues after minReadySeconds).
    fn next_look(&self, obj: &K, pods: &[Arc<Pod>]) -> Action {
        let min_ready = i64::from(obj.min_ready_seconds());
        if min_ready <= 0 {
            return Action::Done;
        }
        let now = jiff::Timestamp::now();
        let soonest = pods
            .iter()
            .filter(|p| podcontrol::is_ready(p) && !podcontrol::is_available(p, min_ready, now))
            .filter_map(|p| podcontrol::ready_since(p))
            .map(|t| {
                let left = t.as_second() + min_ready - now.as_second();
                left.max(0) as u64 + 1
            })
            .min();
        match soonest {
            Some(s) => Action::RequeueAfter(Duration::from_secs(s)),
            None => Action::Done,
        }
    }

    /// A fresh read of the owner before adopting: it must still be the same, undeleted one.
    async fn recheck(&self, key: &ObjectKey, owner: &Owner) -> Result<(), PodControlError> {
        let api = Api::<K>::namespaced(self.client.clone(), &key.namespace);
        let fresh = api.get(&key.name).await?;
        let m = meta(&fresh);
        let got = m.uid.clone().unwrap_or_default();
        if got != owner.uid {
            return Err(PodControlError::OwnerGone {
                kind: K::KIND.into(),
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                got,
                wanted: owner.uid.clone(),
            });
        }
        if let Some(t) = &m.deletion_timestamp {
            return Err(PodControlError::OwnerDeleting {
                kind: K::KIND.into(),
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
        obj: &K,
        owner: &Owner,
        pods: &[Arc<Pod>],
    ) -> Result<(), PodControlError> {
        let ekey = format!("{}/{}", owner.namespace, owner.name);
        let want = obj.desired().max(0) as usize;
        if pods.len() < want {
            let Some(template) = obj.template() else {
                return Ok(());
            };
            let missing = (want - pods.len()).min(BURST_REPLICAS);
            tracing::debug!(owner = %ekey, kind = K::KIND, missing, "creating pods");
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
            tracing::debug!(owner = %ekey, kind = K::KIND, surplus, "deleting pods");
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
        obj: &K,
        pods: &[Arc<Pod>],
        manage_err: Option<&PodControlError>,
    ) -> ReplicaStatus {
        let template_labels = obj
            .template()
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        let min_ready = i64::from(obj.min_ready_seconds());
        let now = jiff::Timestamp::now();
        let count = |f: &dyn Fn(&Pod) -> bool| pods.iter().filter(|p| f(p)).count() as i32;
        let mut status = obj.replica_status().unwrap_or_default();
        status.replicas = pods.len() as i32;
        status.fully_labeled_replicas = Some(count(&|p| fully_labeled(&template_labels, p)));
        status.ready_replicas = Some(count(&podcontrol::is_ready));
        status.available_replicas = Some(count(&|p| podcontrol::is_available(p, min_ready, now)));
        status.observed_generation = meta(obj).generation;
        let has_failure = status.conditions.iter().any(|c| c.type_ == REPLICA_FAILURE);
        match manage_err {
            Some(e) if !has_failure => {
                let want = obj.desired().max(0) as usize;
                let reason = if pods.len() < want {
                    "FailedCreate"
                } else {
                    "FailedDelete"
                };
                status.conditions.push(ReplicaCondition {
                    type_: REPLICA_FAILURE.into(),
                    status: "True".into(),
                    reason: Some(reason.into()),
                    message: Some(e.to_string()),
                    last_transition_time: Some(Time(now)),
                });
            }
            None if has_failure => status.conditions.retain(|c| c.type_ != REPLICA_FAILURE),
            _ => {}
        }
        status
    }

    /// Writes `status` unless the owner already has it; returns the owner as stored.
    async fn write_status(
        &self,
        key: &ObjectKey,
        obj: &Arc<K>,
        status: ReplicaStatus,
    ) -> Result<Arc<K>, SyncError> {
        if obj.replica_status().as_ref() == Some(&status) {
            return Ok(obj.clone());
        }
        let next = obj.with_status(status);
        let span = tracing::debug_span!("controller_to_apiserver_replicas_status", kind = K::KIND, owner = %key);
        let api = Api::<K>::namespaced(self.client.clone(), &key.namespace);
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
    use k8s_openapi::api::apps::v1::ReplicaSetSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

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

    fn rs(selector: LabelSelector) -> ReplicaSet {
        ReplicaSet {
            spec: Some(ReplicaSetSpec {
                selector,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn match_labels_and_expressions_select() {
        assert!(!rs(LabelSelector::default()).selects(&labeled(&[("a", "1")])));
        let sel = LabelSelector {
            match_labels: Some([("app".to_string(), "web".to_string())].into()),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "NotIn".into(),
                    values: Some(vec!["db".into()]),
                },
                LabelSelectorRequirement {
                    key: "track".into(),
                    operator: "Exists".into(),
                    values: None,
                },
            ]),
        };
        let r = rs(sel);
        assert!(r.selects(&labeled(&[("app", "web"), ("track", "x")])));
        assert!(!r.selects(&labeled(&[("app", "web"), ("track", "x"), ("tier", "db")])));
        assert!(!r.selects(&labeled(&[("app", "web")])));
        assert!(!r.selects(&labeled(&[("app", "api"), ("track", "x")])));
    }

    #[test]
    fn status_round_trips_through_the_common_form() {
        let r = rs(LabelSelector::default());
        let st = ReplicaStatus {
            replicas: 3,
            ready_replicas: Some(2),
            available_replicas: Some(1),
            fully_labeled_replicas: Some(3),
            observed_generation: Some(4),
            conditions: vec![ReplicaCondition {
                type_: REPLICA_FAILURE.into(),
                status: "True".into(),
                reason: Some("FailedCreate".into()),
                ..Default::default()
            }],
        };
        let next = r.with_status(st.clone());
        assert_eq!(next.replica_status(), Some(st));
        assert_eq!(r.desired(), 1, "replicas default to 1");
    }
}
