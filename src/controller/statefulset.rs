//! kube-controller-manager's StatefulSet controller (upstream's pkg/controller/statefulset):
//! pods with a stable identity `<set>-<ordinal>` (hostname, subdomain = serviceName, the
//! `statefulset.kubernetes.io/pod-name` and `apps.kubernetes.io/pod-index` labels), their
//! PersistentVolumeClaims `<template>-<set>-<ordinal>` created first, OrderedReady
//! (one pod at a time, each Running and Ready before the next; scale-down from the
//! highest ordinal) or Parallel management, RollingUpdate (highest ordinal first, down
//! to the partition, one pod at a time) or OnDelete through ControllerRevisions, and the
//! status kubectl's `rollout status` reads.
//!
//! One sync: claim the pods and revisions the set's selector matches; find or create
//! the update revision (rolling back renumbers an equal old revision); sort the pods into
//! the replicas in the ordinal range and the condemned beyond it; plan the next steps
//! ([`plan`], pure); carry them out; write the status; truncate the history.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube_client::Api;
use kube_client::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::events::record_event_kube;
use super::history::{self, History, HistoryError, REVISION_LABEL};
use super::informer::{self, BY_NAMESPACE, Cache, Change, Informer, ObjectKey};
use super::podcontrol::{self, Claim, Expectations, Owner, PodControl, PodControlError, Seen};
use super::{Action, WorkQueue, code, run_workers, watch_config};

/// The component Events name (upstream's `statefulset-controller`).
pub const COMPONENT: &str = "statefulset-controller";
/// The label naming a pod of a set.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label holding a pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

const KIND: &str = "StatefulSet";
const API_VERSION: &str = "apps/v1";
/// Upstream's default `revisionHistoryLimit`.
const DEFAULT_HISTORY: i32 = 10;

/// Why a sync failed (it is retried with back-off).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A pod or claim operation failed.
    #[error(transparent)]
    Pods(#[from] PodControlError),
    /// A revision operation failed.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// Writing the status failed.
    #[error("updating the status of {key}: {source}")]
    Status {
        /// The set.
        key: String,
        /// The client's error.
        source: kube_client::Error,
    },
    /// The set's template does not round-trip through its revision (a bug).
    #[error("revision {0} holds no pod template")]
    BadRevision(String),
}

impl From<kube_client::Error> for SyncError {
    fn from(e: kube_client::Error) -> Self {
        SyncError::Pods(e.into())
    }
}

/// The ordinal of `pod_name` if it is `<set>-<n>` (upstream's `getParentNameAndOrdinal`).
pub fn ordinal_of(set: &str, pod_name: &str) -> Option<i32> {
    let (parent, ord) = pod_name.rsplit_once('-')?;
    if parent != set || ord.is_empty() || !ord.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    ord.parse().ok()
}

/// The name of ordinal `ord` of `set`.
pub fn pod_name(set: &str, ord: i32) -> String {
    format!("{set}-{ord}")
}

/// The name of the claim from template `claim` for ordinal `ord` of `set`.
pub fn claim_name(claim: &str, set: &str, ord: i32) -> String {
    format!("{claim}-{set}-{ord}")
}

/// `spec.ordinals.start` (0 unless set).
pub fn start_ordinal(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.ordinals.as_ref())
        .and_then(|o| o.start)
        .unwrap_or(0)
}

fn replicas_of(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1)
        .max(0)
}

fn min_ready(set: &StatefulSet) -> i64 {
    i64::from(
        set.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0),
    )
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

fn running_and_ready(pod: &Pod) -> bool {
    phase(pod) == "Running" && podcontrol::is_ready(pod)
}

fn running_and_available(pod: &Pod, min_ready: i64, now: jiff::Timestamp) -> bool {
    phase(pod) == "Running" && podcontrol::is_available(pod, min_ready, now)
}

fn healthy(pod: &Pod) -> bool {
    running_and_ready(pod) && !terminating(pod)
}

/// The revision a pod was made from (its `controller-revision-hash` label).
pub fn revision_of(pod: &Pod) -> &str {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(REVISION_LABEL))
        .map_or("", String::as_str)
}

fn name_of(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or("")
}

/// Whether the set updates pods itself (RollingUpdate, the default) or on deletion.
fn on_delete(set: &StatefulSet) -> bool {
    set.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.type_.as_deref())
        == Some("OnDelete")
}

fn partition(set: &StatefulSet) -> Option<i32> {
    set.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.rolling_update.as_ref())
        .map(|r| r.partition.unwrap_or(0))
}

fn parallel(set: &StatefulSet) -> bool {
    set.spec
        .as_ref()
        .and_then(|s| s.pod_management_policy.as_deref())
        == Some("Parallel")
}

/// One step of a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create the pod of this ordinal, from the current revision (`true`) or the update
    /// revision.
    Create {
        /// The ordinal.
        ord: i32,
        /// Whether the current revision's template is used (below the partition).
        current: bool,
    },
    /// Delete this pod: failed or succeeded, condemned by a scale-down, or outdated.
    Delete {
        /// The pod.
        name: String,
        /// Whether it goes because it is beyond the replica count (claims may follow it).
        condemned: bool,
    },
}

/// What [`plan`] reads of a set.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    /// The set's name.
    pub name: &'a str,
    /// `spec.replicas`.
    pub replicas: i32,
    /// `spec.ordinals.start`.
    pub start: i32,
    /// OrderedReady (false) or Parallel.
    pub parallel: bool,
    /// OnDelete.
    pub on_delete: bool,
    /// The rolling update's partition (None: no rollingUpdate block).
    pub partition: Option<i32>,
    /// `status.currentReplicas`.
    pub current_replicas: i32,
    /// The update revision's name.
    pub update_revision: &'a str,
    /// `spec.minReadySeconds`.
    pub min_ready: i64,
    /// Now.
    pub now: jiff::Timestamp,
}

/// The steps of one sync over the set's `pods` (upstream's `updateStatefulSet` minus the
/// status): each replica in order (failed ones deleted, missing ones created; OrderedReady
/// stops at the first that is not Running, Ready and available), then the condemned from
/// the highest ordinal, then one outdated pod of the rolling update.
pub fn plan(input: &PlanInput<'_>, pods: &[Arc<Pod>]) -> Vec<Step> {
    let monotonic = !input.parallel;
    let end = input.start + input.replicas;
    let mut replicas: BTreeMap<i32, Arc<Pod>> = BTreeMap::new();
    let mut condemned: Vec<(i32, Arc<Pod>)> = Vec::new();
    for p in pods {
        let Some(ord) = ordinal_of(input.name, name_of(p)) else {
            continue;
        };
        if ord >= input.start && ord < end {
            replicas.insert(ord, p.clone());
        } else {
            condemned.push((ord, p.clone()));
        }
    }
    condemned.sort_by_key(|c| std::cmp::Reverse(c.0));
    // The first unhealthy pod: replicas by ordinal, then condemned from the lowest.
    let first_unhealthy: Option<String> = (input.start..end)
        .find_map(|o| match replicas.get(&o) {
            None => Some(pod_name(input.name, o)),
            Some(p) if !healthy(p) => Some(name_of(p).to_string()),
            _ => None,
        })
        .or_else(|| {
            condemned
                .iter()
                .rev()
                .find(|(_, p)| !healthy(p))
                .map(|(_, p)| name_of(p).to_string())
        });
    let mut steps = Vec::new();
    for ord in input.start..end {
        let Some(p) = replicas.get(&ord) else {
            let current = !input.on_delete
                && match input.partition {
                    None => ord < input.start + input.current_replicas,
                    Some(part) => ord < input.start + part,
                };
            steps.push(Step::Create { ord, current });
            if monotonic {
                return steps;
            }
            continue;
        };
        if matches!(phase(p), "Failed" | "Succeeded") {
            if !terminating(p) {
                steps.push(Step::Delete {
                    name: name_of(p).into(),
                    condemned: false,
                });
            }
            if monotonic {
                return steps;
            }
            continue;
        }
        if monotonic
            && (terminating(p)
                || !running_and_ready(p)
                || !running_and_available(p, input.min_ready, input.now))
        {
            return steps;
        }
    }
    for (_, p) in &condemned {
        if terminating(p) {
            if monotonic {
                return steps;
            }
            continue;
        }
        let first = first_unhealthy.as_deref() == Some(name_of(p));
        if monotonic
            && !first
            && (!running_and_ready(p) || !running_and_available(p, input.min_ready, input.now))
        {
            return steps;
        }
        steps.push(Step::Delete {
            name: name_of(p).into(),
            condemned: true,
        });
        if monotonic {
            return steps;
        }
    }
    if input.on_delete {
        return steps;
    }
    // With Parallel, pods still being created or deleted come first.
    if !steps.is_empty() {
        return steps;
    }
    let update_min = input.start + input.partition.unwrap_or(0).max(0);
    for ord in (update_min..end).rev() {
        let Some(p) = replicas.get(&ord) else {
            return steps;
        };
        if revision_of(p) != input.update_revision && !terminating(p) {
            steps.push(Step::Delete {
                name: name_of(p).into(),
                condemned: false,
            });
            return steps;
        }
        if !healthy(p) {
            return steps;
        }
    }
    steps
}

/// The counts of the status (upstream's `computeReplicaStatus`).
pub fn count_status(
    pods: &[Arc<Pod>],
    min_ready: i64,
    now: jiff::Timestamp,
    current_revision: &str,
    update_revision: &str,
) -> StatefulSetStatus {
    let mut s = StatefulSetStatus::default();
    let (mut ready, mut available, mut current, mut updated) = (0, 0, 0, 0);
    for p in pods {
        s.replicas += 1;
        if running_and_ready(p) {
            ready += 1;
            if running_and_available(p, min_ready, now) {
                available += 1;
            }
        }
        if !terminating(p) {
            let r = revision_of(p);
            if r == current_revision {
                current += 1;
            }
            if r == update_revision {
                updated += 1;
            }
        }
    }
    s.ready_replicas = Some(ready);
    s.available_replicas = Some(available);
    s.current_replicas = Some(current);
    s.updated_replicas = Some(updated);
    s.current_revision = Some(current_revision.into());
    s.update_revision = Some(update_revision.into());
    s
}

/// The claims (not yet stored) of ordinal `ord`: each template renamed, in the set's
/// namespace, with the selector's labels (upstream's `getPersistentVolumeClaims`).
pub fn claims_for(set: &StatefulSet, ord: i32) -> Vec<PersistentVolumeClaim> {
    let name = set.metadata.name.as_deref().unwrap_or("");
    let Some(spec) = set.spec.as_ref() else {
        return vec![];
    };
    let sel = spec.selector.match_labels.clone().unwrap_or_default();
    spec.volume_claim_templates
        .iter()
        .flatten()
        .map(|t| {
            let mut c = t.clone();
            let tname = t.metadata.name.clone().unwrap_or_default();
            c.metadata = ObjectMeta {
                name: Some(claim_name(&tname, name, ord)),
                namespace: set.metadata.namespace.clone(),
                labels: Some({
                    let mut l = t.metadata.labels.clone().unwrap_or_default();
                    l.extend(sel.clone());
                    l
                }),
                annotations: t.metadata.annotations.clone(),
                ..Default::default()
            };
            c.status = None;
            c
        })
        .collect()
}

/// The retention policy's two answers: (whenDeleted is Delete, whenScaled is Delete).
fn retention(set: &StatefulSet) -> (bool, bool) {
    let p = set
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.as_ref());
    let del = |v: Option<&String>| v.map(String::as_str) == Some("Delete");
    (
        del(p.and_then(|p| p.when_deleted.as_ref())),
        del(p.and_then(|p| p.when_scaled.as_ref())),
    )
}

/// The pod of ordinal `ord` from `template` at revision `revision` (upstream's
/// `newVersionedStatefulSetPod`): identity, claims as volumes, revision label.
pub fn new_pod(set: &StatefulSet, template: &PodTemplateSpec, revision: &str, ord: i32) -> Pod {
    let set_name = set.metadata.name.as_deref().unwrap_or("");
    let owner = Owner::new(API_VERSION, KIND, &set.metadata);
    let mut pod = podcontrol::pod_from_template(template, &owner);
    let name = pod_name(set_name, ord);
    pod.metadata.generate_name = None;
    pod.metadata.name = Some(name.clone());
    let labels = pod.metadata.labels.get_or_insert_with(Default::default);
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ord.to_string());
    labels.insert(REVISION_LABEL.into(), revision.into());
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.hostname = Some(name);
    spec.subdomain = set
        .spec
        .as_ref()
        .and_then(|s| s.service_name.clone())
        .filter(|s| !s.is_empty());
    let claims = claims_for(set, ord);
    if !claims.is_empty() {
        let templates: Vec<String> = set
            .spec
            .as_ref()
            .and_then(|s| s.volume_claim_templates.as_ref())
            .into_iter()
            .flatten()
            .map(|t| t.metadata.name.clone().unwrap_or_default())
            .collect();
        let mut volumes: Vec<Volume> = spec
            .volumes
            .take()
            .unwrap_or_default()
            .into_iter()
            .filter(|v| !templates.contains(&v.name))
            .collect();
        for (t, c) in templates.iter().zip(&claims) {
            volumes.push(Volume {
                name: t.clone(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: c.metadata.name.clone().unwrap_or_default(),
                    read_only: None,
                }),
                ..Default::default()
            });
        }
        spec.volumes = Some(volumes);
    }
    pod
}

/// The controller, wired to its informers (start it with [`Controller::start`]).
pub struct Controller {
    ctx: Arc<Ctx>,
    set_feed: mpsc::Receiver<Change<StatefulSet>>,
    pod_feed: mpsc::Receiver<Change<Pod>>,
    rev_feed: mpsc::Receiver<Change<ControllerRevision>>,
    sets: Informer<StatefulSet>,
    shutdown: CancellationToken,
}

struct Ctx {
    client: kube_client::Client,
    control: PodControl,
    history: History,
    sets: Cache<StatefulSet>,
    pods: Cache<Pod>,
    revisions: Cache<ControllerRevision>,
    expectations: Expectations,
    queue: Arc<WorkQueue<ObjectKey>>,
}

impl Controller {
    /// Sets up the StatefulSet informer and subscribes to the shared pod and
    /// ControllerRevision informers (indexed by namespace).
    pub fn new(
        client: kube_client::Client,
        pods: &mut Informer<Pod>,
        revisions: &mut Informer<ControllerRevision>,
        shutdown: CancellationToken,
    ) -> Self {
        let mut sets = Informer::new(
            Api::all(client.clone()),
            watch_config(),
            "statefulsets",
            vec![informer::by_namespace()],
        );
        let ctx = Arc::new(Ctx {
            control: PodControl::new(client.clone(), COMPONENT),
            history: History::new(client.clone()),
            client,
            sets: sets.cache(),
            pods: pods.cache(),
            revisions: revisions.cache(),
            expectations: Expectations::default(),
            queue: Arc::new(WorkQueue::new(shutdown.clone())),
        });
        Controller {
            ctx,
            set_feed: sets.subscribe(),
            pod_feed: pods.subscribe(),
            rev_feed: revisions.subscribe(),
            sets,
            shutdown,
        }
    }

    /// Runs the set informer, the triggers and the worker; returns their tasks and the
    /// set cache (to wait for its sync).
    pub fn start(self) -> (Vec<JoinHandle<()>>, Cache<StatefulSet>) {
        let Controller {
            ctx,
            mut set_feed,
            mut pod_feed,
            mut rev_feed,
            sets,
            shutdown,
        } = self;
        let cache = sets.cache();
        let mut tasks = vec![tokio::spawn(sets.run(shutdown.clone()))];
        let trig = ctx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    Some(c) = set_feed.recv() => {
                        let key = ObjectKey::of(&**c.object());
                        if let Change::Deleted(_) = c {
                            trig.expectations.forget(&key.to_string());
                        }
                        trig.queue.add(key);
                    },
                    Some(c) = pod_feed.recv() => trig.pod_changed(&c),
                    Some(c) = rev_feed.recv() => trig.revision_changed(&c),
                    else => return,
                }
            }
        }));
        let queue = ctx.queue.clone();
        tasks.push(tokio::spawn(run_workers(
            "statefulset",
            queue,
            move |key: ObjectKey| {
                let ctx = ctx.clone();
                async move { ctx.sync(&key).await }
            },
        )));
        (tasks, cache)
    }
}

fn selects(set: &StatefulSet, labels: Option<&BTreeMap<String, String>>) -> bool {
    let Some(spec) = set.spec.as_ref() else {
        return false;
    };
    !history::selector_is_empty(&spec.selector) && history::selector_matches(&spec.selector, labels)
}

impl Ctx {
    fn owner_key(&self, ns: &str, refs: Option<&Vec<OwnerReference>>) -> Option<ObjectKey> {
        let r = refs?.iter().find(|r| r.controller == Some(true))?;
        if r.kind != KIND {
            return None;
        }
        let key = ObjectKey::new(ns, &r.name);
        let set = self.sets.get(&key)?;
        (set.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some(key)
    }

    fn pod_changed(&self, change: &Change<Pod>) {
        let pod = change.object();
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        if let Some(key) = self.owner_key(ns, pod.metadata.owner_references.as_ref()) {
            if matches!(change, Change::Deleted(_)) {
                self.expectations
                    .observed_gone(&key.to_string(), name_of(pod));
            }
            self.queue.add(key);
            return;
        }
        if podcontrol::controller_of(pod).is_some() || matches!(change, Change::Deleted(_)) {
            return;
        }
        for set in self.sets.by_index(BY_NAMESPACE, ns) {
            if selects(&set, pod.metadata.labels.as_ref()) {
                self.queue.add(ObjectKey::of(&*set));
            }
        }
    }

    fn revision_changed(&self, change: &Change<ControllerRevision>) {
        let rev = change.object();
        let ns = rev.metadata.namespace.as_deref().unwrap_or("");
        if let Some(key) = self.owner_key(ns, rev.metadata.owner_references.as_ref()) {
            self.queue.add(key);
        }
    }

    fn seen(&self, ns: &str, name: &str) -> Seen {
        match self.pods.get(&ObjectKey::new(ns, name)) {
            None => Seen::Absent,
            Some(p) if p.metadata.deletion_timestamp.is_some() => Seen::Terminating,
            Some(_) => Seen::Present,
        }
    }

    async fn event(&self, set: &StatefulSet, kind_type: &str, reason: &str, message: &str) {
        let obj = json!({"apiVersion": API_VERSION, "kind": KIND, "metadata": {
            "name": set.metadata.name, "namespace": set.metadata.namespace,
            "uid": set.metadata.uid, "resourceVersion": set.metadata.resource_version}});
        record_event_kube(&self.client, &obj, kind_type, reason, message, COMPONENT).await;
    }

    /// Records a pod operation as upstream's `recordPodEvent` words it.
    async fn pod_event(&self, set: &StatefulSet, verb: &str, pod: &str, err: Option<&str>) {
        let set_name = set.metadata.name.as_deref().unwrap_or("");
        let title = format!("{}{}", verb[..1].to_uppercase(), &verb[1..]);
        match err {
            None => {
                let msg = format!("{verb} Pod {pod} in StatefulSet {set_name} successful");
                self.event(set, "Normal", &format!("Successful{title}"), &msg)
                    .await;
            }
            Some(e) => {
                let msg = format!("{verb} Pod {pod} in StatefulSet {set_name} failed error: {e}");
                self.event(set, "Warning", &format!("Failed{title}"), &msg)
                    .await;
            }
        }
    }

    async fn sync(&self, key: &ObjectKey) -> Result<Action, SyncError> {
        let Some(set) = self.sets.get(key) else {
            self.expectations.forget(&key.to_string());
            return Ok(Action::Done);
        };
        let ekey = key.to_string();
        let settled = self
            .expectations
            .satisfied(&ekey, |n| self.seen(&key.namespace, n));
        let owner = Owner::new(API_VERSION, KIND, &set.metadata);
        let deleting = set.metadata.deletion_timestamp.is_some();
        let set_name = key.name.clone();
        let all: Vec<Arc<Pod>> = self.pods.by_index(BY_NAMESPACE, &key.namespace);
        let matches = |p: &Pod| {
            selects(&set, p.metadata.labels.as_ref()) && ordinal_of(&set_name, name_of(p)).is_some()
        };
        let claim = Claim {
            owner: &owner,
            deleting,
            matches: &matches,
        };
        let pods =
            podcontrol::claim_pods(&self.control, &claim, &all, || self.recheck(key, &owner))
                .await?;
        let spec = set.spec.clone().unwrap_or_default();
        let revs: Vec<Arc<ControllerRevision>> = self
            .revisions
            .by_index(BY_NAMESPACE, &key.namespace)
            .into_iter()
            .filter(|r| {
                r.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .all(|o| o.controller != Some(true) || o.uid == owner.uid)
            })
            .collect();
        let mut revs = self
            .history
            .claim(&owner, deleting, &spec.selector, &revs)
            .await?;
        history::sort(&mut revs);
        let mut collision = set
            .status
            .as_ref()
            .and_then(|s| s.collision_count)
            .unwrap_or(0);
        let (current_rev, update_rev) = self.revisions(&set, &owner, &revs, &mut collision).await?;
        let current_name = current_rev.metadata.name.clone().unwrap_or_default();
        let update_name = update_rev.metadata.name.clone().unwrap_or_default();
        let now = jiff::Timestamp::now();
        let mr = min_ready(&set);
        let mut err = None;
        if !deleting && settled {
            let input = PlanInput {
                name: &set_name,
                replicas: replicas_of(&set),
                start: start_ordinal(&set),
                parallel: parallel(&set),
                on_delete: on_delete(&set),
                partition: partition(&set),
                current_replicas: set
                    .status
                    .as_ref()
                    .and_then(|s| s.current_replicas)
                    .unwrap_or(0),
                update_revision: &update_name,
                min_ready: mr,
                now,
            };
            let steps = plan(&input, &pods);
            for step in steps {
                if let Err(e) = self
                    .apply(&set, &owner, &pods, &current_rev, &update_rev, &step)
                    .await
                {
                    err = Some(e);
                    break;
                }
            }
        }
        let mut status = count_status(&pods, mr, now, &current_name, &update_name);
        status.observed_generation = set.metadata.generation;
        status.collision_count = Some(collision);
        status.conditions = set.status.as_ref().and_then(|s| s.conditions.clone());
        if !on_delete(&set)
            && status.updated_replicas == Some(status.replicas)
            && status.ready_replicas == Some(status.replicas)
        {
            status.current_replicas = status.updated_replicas;
            status.current_revision = status.update_revision.clone();
        }
        self.write_status(key, &set, status.clone()).await?;
        let live: HashSet<String> = pods
            .iter()
            .map(|p| revision_of(p).to_string())
            .chain([current_name, update_name])
            .collect();
        let limit = spec
            .revision_history_limit
            .unwrap_or(DEFAULT_HISTORY)
            .max(0) as usize;
        for r in history::to_truncate(&revs, &live, limit) {
            self.history.delete(&r).await?;
        }
        if let Some(e) = err {
            return Err(e);
        }
        let ready = status.ready_replicas.unwrap_or(0);
        if mr > 0 && ready > status.available_replicas.unwrap_or(0) {
            return Ok(Action::RequeueAfter(Duration::from_secs(mr as u64)));
        }
        Ok(Action::Done)
    }

    /// The current and update revisions (upstream's `getStatefulSetRevisions`).
    async fn revisions(
        &self,
        set: &StatefulSet,
        owner: &Owner,
        revs: &[Arc<ControllerRevision>],
        collision: &mut i32,
    ) -> Result<(Arc<ControllerRevision>, Arc<ControllerRevision>), SyncError> {
        let spec = set.spec.clone().unwrap_or_default();
        let template = serde_json::to_value(&spec.template).unwrap_or(Value::Null);
        let labels = spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        let candidate = history::new_revision(
            owner,
            &labels,
            history::template_patch(&template),
            history::next_revision(revs),
            Some(*collision),
        );
        let equal: Vec<&Arc<ControllerRevision>> = revs
            .iter()
            .filter(|r| history::equal(r, &candidate))
            .collect();
        let update = match (equal.last(), revs.last()) {
            (Some(e), Some(last)) if history::equal(last, e) => last.clone(),
            (Some(e), _) => Arc::new(self.history.update_revision(e, candidate.revision).await?),
            (None, _) => Arc::new(self.history.create(owner, &candidate, collision).await?),
        };
        let wanted = set
            .status
            .as_ref()
            .and_then(|s| s.current_revision.as_deref())
            .unwrap_or("");
        let current = revs
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(wanted))
            .cloned()
            .unwrap_or_else(|| update.clone());
        Ok((current, update))
    }

    async fn apply(
        &self,
        set: &StatefulSet,
        owner: &Owner,
        pods: &[Arc<Pod>],
        current: &ControllerRevision,
        update: &ControllerRevision,
        step: &Step,
    ) -> Result<(), SyncError> {
        let ekey = format!("{}/{}", owner.namespace, owner.name);
        match step {
            Step::Create {
                ord,
                current: use_current,
            } => {
                let rev = if *use_current { current } else { update };
                let rev_name = rev.metadata.name.clone().unwrap_or_default();
                let template: PodTemplateSpec = history::template_of(rev)
                    .and_then(|t| serde_json::from_value(t).ok())
                    .ok_or_else(|| SyncError::BadRevision(rev_name.clone()))?;
                let pod = new_pod(set, &template, &rev_name, *ord);
                self.create_claims(set, *ord).await?;
                let name = name_of(&pod).to_string();
                let span = tracing::debug_span!("controller_to_apiserver_create_pod", pod = %name);
                let api = Api::<Pod>::namespaced(self.client.clone(), &owner.namespace);
                let r =
                    tracing::Instrument::instrument(api.create(&PostParams::default(), &pod), span)
                        .await;
                match r {
                    Ok(_) => {
                        self.expectations.expect_creations(&ekey, [name.clone()]);
                        self.pod_event(set, "create", &name, None).await;
                        Ok(())
                    }
                    // The cache lags behind: the pod is there already.
                    Err(e) if code(&e) == 409 => Ok(()),
                    Err(e) => {
                        let e = PodControlError::from(e);
                        self.pod_event(set, "create", &name, Some(&e.to_string()))
                            .await;
                        Err(e.into())
                    }
                }
            }
            Step::Delete { name, condemned } => {
                if *condemned
                    && retention(set).1
                    && let Some(p) = pods.iter().find(|p| name_of(p) == name)
                    && let Some(ord) = ordinal_of(&owner.name, name)
                {
                    self.claims_to_pod(set, p, ord).await?;
                }
                self.expectations.expect_deletions(&ekey, [name.clone()]);
                let api = Api::<Pod>::namespaced(self.client.clone(), &owner.namespace);
                let span = tracing::debug_span!("controller_to_apiserver_delete_pod", pod = %name);
                let r = tracing::Instrument::instrument(
                    api.delete(name, &DeleteParams::default()),
                    span,
                )
                .await;
                match r {
                    Ok(_) => {
                        self.pod_event(set, "delete", name, None).await;
                        Ok(())
                    }
                    Err(e) if code(&e) == 404 => Ok(()),
                    Err(e) => {
                        self.expectations.deletion_failed(&ekey, name);
                        let e = PodControlError::from(e);
                        self.pod_event(set, "delete", name, Some(&e.to_string()))
                            .await;
                        Err(e.into())
                    }
                }
            }
        }
    }

    /// Creates the missing claims of ordinal `ord` (owned by the set when its
    /// whenDeleted policy is Delete), recording upstream's claim Events.
    async fn create_claims(&self, set: &StatefulSet, ord: i32) -> Result<(), SyncError> {
        let ns = set.metadata.namespace.as_deref().unwrap_or("");
        let set_name = set.metadata.name.as_deref().unwrap_or("");
        let pod = pod_name(set_name, ord);
        let api = Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), ns);
        for mut claim in claims_for(set, ord) {
            let name = claim.metadata.name.clone().unwrap_or_default();
            match api.get_opt(&name).await? {
                Some(_) => continue,
                None => {
                    if retention(set).0 {
                        claim.metadata.owner_references =
                            Some(vec![plain_ref(API_VERSION, KIND, &set.metadata)]);
                    }
                    let span =
                        tracing::debug_span!("controller_to_apiserver_create_claim", claim = %name);
                    let r = tracing::Instrument::instrument(
                        api.create(&PostParams::default(), &claim),
                        span,
                    )
                    .await;
                    match r {
                        Ok(_) => {
                            let msg = format!(
                                "create Claim {name} Pod {pod} in StatefulSet {set_name} success"
                            );
                            self.event(set, "Normal", "SuccessfulCreate", &msg).await;
                        }
                        Err(e) if code(&e) == 409 => {}
                        Err(e) => {
                            let e = PodControlError::from(e);
                            let msg = format!(
                                "create Claim {name} for Pod {pod} in StatefulSet {set_name} failed error: {e}"
                            );
                            self.event(set, "Warning", "FailedCreate", &msg).await;
                            return Err(e.into());
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Before a condemned pod goes under whenScaled=Delete: its claims get the pod as
    /// owner (and lose the set), so the garbage collector takes them after it.
    async fn claims_to_pod(&self, set: &StatefulSet, pod: &Pod, ord: i32) -> Result<(), SyncError> {
        let ns = set.metadata.namespace.as_deref().unwrap_or("");
        let api = Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), ns);
        let set_uid = set.metadata.uid.clone().unwrap_or_default();
        let pod_ref = plain_ref("v1", "Pod", &pod.metadata);
        for claim in claims_for(set, ord) {
            let name = claim.metadata.name.clone().unwrap_or_default();
            let Some(stored) = api.get_opt(&name).await? else {
                continue;
            };
            let mut refs: Vec<OwnerReference> = stored
                .metadata
                .owner_references
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|r| r.uid != set_uid)
                .collect();
            if refs.iter().any(|r| r.uid == pod_ref.uid) {
                continue;
            }
            refs.push(pod_ref.clone());
            let patch = json!({"metadata": {"ownerReferences": refs,
                "resourceVersion": stored.metadata.resource_version}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
        Ok(())
    }

    /// A fresh read of the set before adopting: it must still be the same, undeleted one.
    async fn recheck(&self, key: &ObjectKey, owner: &Owner) -> Result<(), PodControlError> {
        let api = Api::<StatefulSet>::namespaced(self.client.clone(), &key.namespace);
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

    async fn write_status(
        &self,
        key: &ObjectKey,
        set: &StatefulSet,
        status: StatefulSetStatus,
    ) -> Result<(), SyncError> {
        if set.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let mut next = set.clone();
        next.status = Some(status);
        let span = tracing::debug_span!("controller_to_apiserver_statefulset_status", set = %key);
        let api = Api::<StatefulSet>::namespaced(self.client.clone(), &key.namespace);
        match tracing::Instrument::instrument(
            api.replace_status(&key.name, &PostParams::default(), &next),
            span,
        )
        .await
        {
            Ok(_) => Ok(()),
            Err(e) if code(&e) == 404 => Ok(()),
            Err(e) => Err(SyncError::Status {
                key: key.to_string(),
                source: e,
            }),
        }
    }
}

/// A non-controller owner reference (what claims carry under a retention policy).
fn plain_ref(api_version: &str, kind: &str, meta: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: api_version.into(),
        kind: kind.into(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        controller: None,
        block_owner_deletion: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};

    fn pod(name: &str, phase: &str, ready: bool, rev: &str) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some([(REVISION_LABEL.to_string(), rev.to_string())].into()),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: ready.then(|| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
        })
    }

    fn input(replicas: i32) -> PlanInput<'static> {
        PlanInput {
            name: "web",
            replicas,
            start: 0,
            parallel: false,
            on_delete: false,
            partition: Some(0),
            current_replicas: 0,
            update_revision: "web-new",
            min_ready: 0,
            now: jiff::Timestamp::now(),
        }
    }

    #[test]
    fn ordinals_parse_only_the_sets_own_names() {
        assert_eq!(ordinal_of("web", "web-0"), Some(0));
        assert_eq!(ordinal_of("web", "web-12"), Some(12));
        assert_eq!(ordinal_of("my-web", "my-web-3"), Some(3));
        assert_eq!(ordinal_of("web", "web-x"), None);
        assert_eq!(ordinal_of("web", "web-"), None);
        assert_eq!(ordinal_of("web", "webb-1"), None);
        assert_eq!(ordinal_of("web", "my-web-1"), None);
        assert_eq!(pod_name("web", 4), "web-4");
        assert_eq!(claim_name("www", "web", 1), "www-web-1");
    }

    #[test]
    fn ordered_ready_creates_one_at_a_time_after_readiness() {
        let i = input(3);
        assert_eq!(
            plan(&i, &[]),
            vec![Step::Create {
                ord: 0,
                current: false
            }]
        );
        // web-0 exists but is not ready: nothing.
        assert!(plan(&i, &[pod("web-0", "Pending", false, "web-new")]).is_empty());
        assert!(plan(&i, &[pod("web-0", "Running", false, "web-new")]).is_empty());
        assert_eq!(
            plan(&i, &[pod("web-0", "Running", true, "web-new")]),
            vec![Step::Create {
                ord: 1,
                current: false
            }]
        );
    }

    #[test]
    fn parallel_creates_every_missing_pod() {
        let mut i = input(3);
        i.parallel = true;
        let steps = plan(&i, &[pod("web-1", "Pending", false, "web-new")]);
        assert_eq!(
            steps,
            vec![
                Step::Create {
                    ord: 0,
                    current: false
                },
                Step::Create {
                    ord: 2,
                    current: false
                }
            ]
        );
    }

    #[test]
    fn scale_down_goes_from_the_highest_ordinal() {
        let i = input(1);
        let pods = vec![
            pod("web-0", "Running", true, "web-new"),
            pod("web-1", "Running", true, "web-new"),
            pod("web-2", "Running", true, "web-new"),
        ];
        assert_eq!(
            plan(&i, &pods),
            vec![Step::Delete {
                name: "web-2".into(),
                condemned: true
            }]
        );
        // A terminating condemned pod blocks the next one.
        let mut t = (*pods[2]).clone();
        t.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            jiff::Timestamp::now(),
        ));
        assert!(plan(&i, &[pods[0].clone(), pods[1].clone(), Arc::new(t)]).is_empty());
        // An unhealthy replica blocks the scale-down.
        let sick = vec![pod("web-0", "Running", false, "web-new"), pods[1].clone()];
        assert!(plan(&i, &sick).is_empty());
    }

    #[test]
    fn failed_pods_are_deleted_to_be_recreated() {
        let i = input(2);
        let pods = vec![
            pod("web-0", "Failed", false, "web-new"),
            pod("web-1", "Running", true, "web-new"),
        ];
        assert_eq!(
            plan(&i, &pods),
            vec![Step::Delete {
                name: "web-0".into(),
                condemned: false
            }]
        );
    }

    #[test]
    fn rolling_update_replaces_from_the_top_down_to_the_partition() {
        let mut i = input(3);
        let old = |n: &str| pod(n, "Running", true, "web-old");
        let pods = vec![old("web-0"), old("web-1"), old("web-2")];
        assert_eq!(
            plan(&i, &pods),
            vec![Step::Delete {
                name: "web-2".into(),
                condemned: false
            }]
        );
        // web-2 updated but not ready yet: wait.
        let pods = vec![
            old("web-0"),
            old("web-1"),
            pod("web-2", "Running", false, "web-new"),
        ];
        assert!(plan(&i, &pods).is_empty());
        // With partition 2, only web-2 is updated; web-1 is left alone.
        i.partition = Some(2);
        let pods = vec![
            old("web-0"),
            old("web-1"),
            pod("web-2", "Running", true, "web-new"),
        ];
        assert!(plan(&i, &pods).is_empty());
        // A missing ordinal below the partition is recreated at the current revision.
        assert_eq!(
            plan(&i, &[old("web-0")]),
            vec![Step::Create {
                ord: 1,
                current: true
            }]
        );
        // OnDelete never deletes for an update.
        i.on_delete = true;
        i.partition = None;
        assert!(plan(&i, &[old("web-0"), old("web-1"), old("web-2")]).is_empty());
    }

    #[test]
    fn start_ordinal_shifts_the_range() {
        let mut i = input(2);
        i.start = 5;
        assert_eq!(
            plan(&i, &[pod("web-5", "Running", true, "web-new")]),
            vec![Step::Create {
                ord: 6,
                current: false
            }]
        );
        assert_eq!(
            plan(
                &i,
                &[
                    pod("web-0", "Running", true, "web-new"),
                    pod("web-5", "Running", true, "web-new"),
                    pod("web-6", "Running", true, "web-new")
                ]
            ),
            vec![Step::Delete {
                name: "web-0".into(),
                condemned: true
            }]
        );
    }

    #[test]
    fn pods_carry_identity_claims_and_revision() {
        let set: StatefulSet = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "d", "uid": "u"},
            "spec": {"serviceName": "svc", "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "i"}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "www"},
                    "spec": {"accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}}}}]}}))
        .unwrap();
        let p = new_pod(&set, &set.spec.as_ref().unwrap().template, "web-abc", 2);
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["metadata"]["name"], "web-2");
        assert!(v["metadata"]["generateName"].is_null());
        assert_eq!(v["metadata"]["labels"][POD_NAME_LABEL], "web-2");
        assert_eq!(v["metadata"]["labels"][POD_INDEX_LABEL], "2");
        assert_eq!(v["metadata"]["labels"][REVISION_LABEL], "web-abc");
        assert_eq!(v["spec"]["hostname"], "web-2");
        assert_eq!(v["spec"]["subdomain"], "svc");
        assert_eq!(
            v["spec"]["volumes"],
            json!([{"name": "www", "persistentVolumeClaim": {"claimName": "www-web-2"}}])
        );
        let c = claims_for(&set, 2);
        assert_eq!(c[0].metadata.name.as_deref(), Some("www-web-2"));
        assert_eq!(
            c[0].metadata
                .labels
                .as_ref()
                .unwrap()
                .get("app")
                .map(String::as_str),
            Some("web")
        );
    }

    #[test]
    fn status_counts_revisions_and_readiness() {
        let pods = vec![
            pod("web-0", "Running", true, "old"),
            pod("web-1", "Running", true, "new"),
            pod("web-2", "Pending", false, "new"),
        ];
        let s = count_status(&pods, 0, jiff::Timestamp::now(), "old", "new");
        assert_eq!(s.replicas, 3);
        assert_eq!(s.ready_replicas, Some(2));
        assert_eq!(s.current_replicas, Some(1));
        assert_eq!(s.updated_replicas, Some(2));
    }
}
