//! What every pod-owning workload controller shares (upstream's
//! pkg/controller/controller_utils.go and controller_ref_manager.go):
//!
//! - [`PodControl`]: create a pod from a template with a controller ownerReference
//!   (`controller: true, blockOwnerDeletion: true`), delete one, record the
//!   `SuccessfulCreate`/`FailedCreate`/`SuccessfulDelete`/`FailedDelete` Events;
//! - [`Expectations`]: the creates and deletes a controller issued and has not yet seen
//!   in its informer, so that it does not act twice on a stale cache;
//! - [`claim_pods`]: adopt matching orphans and release owned pods that stopped matching,
//!   by patching their ownerReferences (upstream's `PodControllerRefManager`);
//! - [`slow_start_batch`]: creations in batches of 1, 2, 4, ... stopping at the first
//!   batch with a failure;
//! - [`pods_to_delete`]: the scale-down victim order (upstream's `ActivePodsWithRanks`).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube_client::Api;
use kube_client::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::code;
use super::events::record_event_kube;

/// How long an expectation holds before the controller acts anyway (upstream's
/// `ExpectationsTimeout`).
pub const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// The most pods one sync creates or deletes (upstream's `BurstReplicas`).
pub const BURST_REPLICAS: usize = 500;

/// Upstream's `SlowStartInitialBatchSize`.
pub const SLOW_START_INITIAL_BATCH: usize = 1;

/// The annotation whose (integer) value orders scale-down: lower cost goes first.
pub const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// Why a pod operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PodControlError {
    /// The API server refused or failed the request; the message is the server's.
    #[error("{message}")]
    Api {
        /// HTTP code (0 when the request did not get an answer).
        code: u16,
        /// The server's message, or the client's error.
        message: String,
    },
    /// The owner changed since it was listed (upstream's `RecheckDeletionTimestamp`).
    #[error("original {kind} {namespace}/{name} is gone: got uid {got}, wanted {wanted}")]
    OwnerGone {
        /// The owner's kind.
        kind: String,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The uid found now.
        got: String,
        /// The uid listed.
        wanted: String,
    },
    /// The owner is being deleted: no adoption.
    #[error("{kind} {namespace}/{name} has just been deleted at {at}")]
    OwnerDeleting {
        /// The owner's kind.
        kind: String,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Its deletionTimestamp.
        at: String,
    },
}

impl PodControlError {
    /// The HTTP code of an API failure (0 otherwise).
    pub fn code(&self) -> u16 {
        match self {
            PodControlError::Api { code, .. } => *code,
            _ => 0,
        }
    }
}

impl From<kube_client::Error> for PodControlError {
    fn from(e: kube_client::Error) -> Self {
        match super::informer::api_status(&e) {
            Some(s) => PodControlError::Api {
                code: s.code,
                message: s.message.clone(),
            },
            None => PodControlError::Api {
                code: 0,
                message: e.to_string(),
            },
        }
    }
}

/// The owner a controller acts for: what its pods' ownerReference and Events name.
#[derive(Debug, Clone)]
pub struct Owner {
    /// `v1`, `apps/v1`, ...
    pub api_version: String,
    /// `ReplicationController`, `ReplicaSet`, ...
    pub kind: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its uid.
    pub uid: String,
    /// Its resourceVersion (Events quote it).
    pub resource_version: String,
}

impl Owner {
    /// The owner of an object's metadata.
    pub fn new(api_version: &str, kind: &str, meta: &ObjectMeta) -> Self {
        Owner {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            uid: meta.uid.clone().unwrap_or_default(),
            resource_version: meta.resource_version.clone().unwrap_or_default(),
        }
    }

    /// The controller ownerReference its pods carry.
    pub fn controller_ref(&self) -> OwnerReference {
        OwnerReference {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    /// The object Events are recorded about.
    fn event_object(&self) -> Value {
        json!({"apiVersion": self.api_version, "kind": self.kind,
            "metadata": {"name": self.name, "namespace": self.namespace, "uid": self.uid,
                "resourceVersion": self.resource_version}})
    }
}

/// The controller ownerReference of `pod`, if any.
pub fn controller_of(pod: &Pod) -> Option<&OwnerReference> {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// The pod a controller creates from `template` (upstream's `GetPodFromTemplate`): the
/// template's labels, annotations, finalizers and spec, named `<owner>-<random>`.
pub fn pod_from_template(template: &PodTemplateSpec, owner: &Owner) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", owner.name)),
            namespace: Some(owner.namespace.clone()),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner.controller_ref()]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// Creates and deletes pods for a controller, recording Events as `component`.
#[derive(Clone)]
pub struct PodControl {
    client: kube_client::Client,
    component: &'static str,
}

impl PodControl {
    /// Pod operations through `client`, Events from `component` (`replication-controller`).
    pub fn new(client: kube_client::Client, component: &'static str) -> Self {
        PodControl { client, component }
    }

    async fn event(&self, owner: &Owner, kind_type: &str, reason: &str, message: &str) {
        record_event_kube(
            &self.client,
            &owner.event_object(),
            kind_type,
            reason,
            message,
            self.component,
        )
        .await;
    }

    /// Creates a pod from `template` owned by `owner`; returns its name. A refusal because
    /// the namespace is terminating is not an Event (upstream skips those too).
    pub async fn create(
        &self,
        template: &PodTemplateSpec,
        owner: &Owner,
    ) -> Result<String, PodControlError> {
        self.create_with_generate_name(template, owner, &format!("{}-", owner.name))
            .await
    }

    /// [`PodControl::create`] with the pod's `generateName` chosen by the controller
    /// (an Indexed Job names its pods `<job>-<index>-`).
    pub async fn create_with_generate_name(
        &self,
        template: &PodTemplateSpec,
        owner: &Owner,
        generate_name: &str,
    ) -> Result<String, PodControlError> {
        let span = tracing::debug_span!("controller_to_apiserver_create_pod", owner = %owner.name);
        let mut pod = pod_from_template(template, owner);
        pod.metadata.generate_name = Some(generate_name.to_string());
        let api = Api::<Pod>::namespaced(self.client.clone(), &owner.namespace);
        let created =
            tracing::Instrument::instrument(api.create(&PostParams::default(), &pod), span)
                .await
                .map_err(PodControlError::from);
        match created {
            Ok(p) => {
                let name = p.metadata.name.unwrap_or_default();
                self.event(
                    owner,
                    "Normal",
                    "SuccessfulCreate",
                    &format!("Created pod: {name}"),
                )
                .await;
                Ok(name)
            }
            Err(e) => {
                if !is_namespace_terminating(&e) {
                    self.event(
                        owner,
                        "Warning",
                        "FailedCreate",
                        &format!("Error creating: {e}"),
                    )
                    .await;
                }
                Err(e)
            }
        }
    }

    /// Deletes pod `name` of `owner` (a pod already gone is not an error).
    pub async fn delete(&self, owner: &Owner, name: &str) -> Result<(), PodControlError> {
        let span = tracing::debug_span!("controller_to_apiserver_delete_pod", pod = %name);
        let api = Api::<Pod>::namespaced(self.client.clone(), &owner.namespace);
        let r =
            tracing::Instrument::instrument(api.delete(name, &DeleteParams::default()), span).await;
        match r {
            Ok(_) => {
                self.event(
                    owner,
                    "Normal",
                    "SuccessfulDelete",
                    &format!("Deleted pod: {name}"),
                )
                .await;
                Ok(())
            }
            Err(e) if code(&e) == 404 => Ok(()),
            Err(e) => {
                let e = PodControlError::from(e);
                self.event(
                    owner,
                    "Warning",
                    "FailedDelete",
                    &format!("Error deleting: {e}"),
                )
                .await;
                Err(e)
            }
        }
    }

    /// Strategic-merge-patches pod `name` in `ns`.
    async fn patch(&self, ns: &str, name: &str, patch: &Value) -> Result<(), PodControlError> {
        let span = tracing::debug_span!("controller_to_apiserver_patch_pod", pod = %name);
        let api = Api::<Pod>::namespaced(self.client.clone(), ns);
        tracing::Instrument::instrument(
            api.patch(name, &PatchParams::default(), &Patch::Strategic(patch)),
            span,
        )
        .await
        .map(|_| ())
        .map_err(PodControlError::from)
    }

    /// Makes `owner` the controller of `pod` (the pod's uid guards the patch).
    pub async fn adopt(&self, owner: &Owner, pod: &Pod) -> Result<(), PodControlError> {
        let patch = json!({"metadata": {
            "ownerReferences": [owner.controller_ref()],
            "uid": pod.metadata.uid,
        }});
        self.patch(&owner.namespace, pod_name(pod), &patch).await
    }

    /// Removes `owner`'s reference from `pod`; a pod that is gone or changed is left alone.
    pub async fn release(&self, owner: &Owner, pod: &Pod) -> Result<(), PodControlError> {
        let patch = json!({"metadata": {
            "ownerReferences": [{"$patch": "delete", "uid": owner.uid}],
            "uid": pod.metadata.uid,
        }});
        match self.patch(&owner.namespace, pod_name(pod), &patch).await {
            Err(e) if matches!(e.code(), 404 | 409 | 422) => Ok(()),
            r => r,
        }
    }
}

fn is_namespace_terminating(e: &PodControlError) -> bool {
    matches!(e, PodControlError::Api { code: 403, message } if message.contains("because it is being terminated"))
}

fn pod_name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or("")
}

/// What a controller is still waiting to see for one of its objects.
#[derive(Debug)]
struct Expectation {
    creates: HashSet<String>,
    deletes: HashSet<String>,
    since: Instant,
}

/// The pods each controller key created or deleted and has not yet seen so in its cache
/// (upstream's `UIDTrackingControllerExpectations`, by pod name).
#[derive(Debug, Default)]
pub struct Expectations {
    map: Mutex<HashMap<String, Expectation>>,
}

/// What a pod cache says about one pod name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not in the cache.
    Absent,
    /// In the cache, not being deleted.
    Present,
    /// In the cache with a deletionTimestamp.
    Terminating,
}

impl Expectations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Expectation>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Expects the creation of `names` for `key`.
    pub fn expect_creations(&self, key: &str, names: impl IntoIterator<Item = String>) {
        let mut m = self.lock();
        let e = m.entry(key.to_string()).or_insert_with(|| Expectation {
            creates: HashSet::new(),
            deletes: HashSet::new(),
            since: Instant::now(),
        });
        e.creates.extend(names);
        e.since = Instant::now();
    }

    /// Expects the deletion of `names` for `key`.
    pub fn expect_deletions(&self, key: &str, names: impl IntoIterator<Item = String>) {
        let mut m = self.lock();
        let e = m.entry(key.to_string()).or_insert_with(|| Expectation {
            creates: HashSet::new(),
            deletes: HashSet::new(),
            since: Instant::now(),
        });
        e.deletes.extend(names);
        e.since = Instant::now();
    }

    /// A delete that will not be observed (it failed): stop waiting for it.
    pub fn deletion_failed(&self, key: &str, name: &str) {
        if let Some(e) = self.lock().get_mut(key) {
            e.deletes.remove(name);
        }
    }

    /// Whether `key` may act: every expected pod was seen as created (or already gone
    /// again) and every expected deletion as terminating or gone, or the expectations
    /// timed out. `seen` looks a pod name up in the cache.
    pub fn satisfied(&self, key: &str, seen: impl Fn(&str) -> Seen) -> bool {
        let mut m = self.lock();
        let Some(e) = m.get_mut(key) else {
            return true;
        };
        e.creates.retain(|n| seen(n) == Seen::Absent);
        e.deletes.retain(|n| seen(n) == Seen::Present);
        if (e.creates.is_empty() && e.deletes.is_empty())
            || e.since.elapsed() > EXPECTATIONS_TIMEOUT
        {
            m.remove(key);
            return true;
        }
        false
    }

    /// A pod controlled by `key` was deleted: a create of it is observed too.
    pub fn observed_gone(&self, key: &str, name: &str) {
        if let Some(e) = self.lock().get_mut(key) {
            e.creates.remove(name);
            e.deletes.remove(name);
        }
    }

    /// Forgets `key` (its object was deleted).
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }
}

/// Runs `count` calls of `f` in batches of `initial`, then twice as many each time, the
/// calls of a batch at once; stops after the first batch with a failure. Returns the
/// successes' results and the first error.
pub async fn slow_start_batch<T, E, F, Fut>(
    count: usize,
    initial: usize,
    f: F,
) -> (Vec<T>, Option<E>)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut done = Vec::new();
    let mut remaining = count;
    let mut batch = initial.max(1).min(remaining);
    while batch > 0 {
        let results = futures_util::future::join_all((0..batch).map(|_| f())).await;
        let mut first_err = None;
        for r in results {
            match r {
                Ok(v) => done.push(v),
                Err(e) => {
                    if first_err.is_none() {
                        first_err = Some(e);
                    }
                }
            }
        }
        if first_err.is_some() {
            return (done, first_err);
        }
        remaining -= batch;
        batch = (batch * 2).min(remaining);
    }
    (done, None)
}

/// Whether `pod` counts for its controller: not finished and not being deleted
/// (upstream's `IsPodActive`).
pub fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    !matches!(phase, Some("Succeeded" | "Failed")) && pod.metadata.deletion_timestamp.is_none()
}

/// The time the pod's Ready condition turned True, if it is ready.
pub fn ready_since(pod: &Pod) -> Option<jiff::Timestamp> {
    let cond = pod
        .status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready" && c.status == "True")?;
    Some(
        cond.last_transition_time
            .as_ref()
            .map(|t| t.0)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
    )
}

/// Whether the pod is ready.
pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// Whether the pod has been ready for `min_ready_seconds` at `now` (upstream's
/// `IsPodAvailable`).
pub fn is_available(pod: &Pod, min_ready_seconds: i64, now: jiff::Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(t) => t.as_second() + min_ready_seconds <= now.as_second(),
    }
}

/// The order in which pods go on scale-down, most expendable first (upstream's
/// `ActivePodsWithRanks.Less`): unassigned before assigned; Pending before Unknown before
/// Running; not ready before ready; lower deletion cost first; more pods of the same
/// owner on the node first; ready more recently first; more restarts first; newer first.
fn less(a: &Pod, rank_a: usize, b: &Pod, rank_b: usize) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let node = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty())
    };
    let phase = |p: &Pod| match p.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") => 0,
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 0,
    };
    let cost = |p: &Pod| {
        p.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(DELETION_COST))
            .and_then(|v| v.parse::<i32>().ok())
            .unwrap_or(0)
    };
    let restarts = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
            .unwrap_or(0)
    };
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let ord = node(a)
        .cmp(&node(b))
        .then(phase(a).cmp(&phase(b)))
        .then(is_ready(a).cmp(&is_ready(b)))
        .then(cost(a).cmp(&cost(b)))
        .then(rank_b.cmp(&rank_a));
    if ord != Ordering::Equal {
        return ord;
    }
    if let (Some(ra), Some(rb)) = (ready_since(a), ready_since(b))
        && ra != rb
    {
        return rb.cmp(&ra);
    }
    let ord = restarts(b).cmp(&restarts(a));
    if ord != Ordering::Equal {
        return ord;
    }
    match (created(a), created(b)) {
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => y.cmp(&x),
        (None, None) => Ordering::Equal,
    }
}

/// The `diff` pods to delete first from `pods`, ranked by how many of `pods` share their
/// node (upstream's `getPodsToDelete` with `getPodsRankedByRelatedPodsOnSameNode`).
pub fn pods_to_delete(pods: &[Arc<Pod>], diff: usize) -> Vec<Arc<Pod>> {
    let node = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default()
    };
    let mut per_node: HashMap<String, usize> = HashMap::new();
    for p in pods {
        let n = node(p);
        if !n.is_empty() {
            *per_node.entry(n).or_default() += 1;
        }
    }
    let mut ranked: Vec<(usize, Arc<Pod>)> = pods
        .iter()
        .map(|p| (per_node.get(&node(p)).copied().unwrap_or(0), p.clone()))
        .collect();
    ranked.sort_by(|(ra, a), (rb, b)| less(a, *ra, b, *rb));
    ranked.into_iter().take(diff).map(|(_, p)| p).collect()
}

/// What [`claim_pods`] needs of the owner beyond its identity.
pub struct Claim<'a> {
    /// The owner.
    pub owner: &'a Owner,
    /// Whether the owner is being deleted (it then neither adopts nor releases).
    pub deleting: bool,
    /// Whether a pod's labels match the owner's selector.
    pub matches: &'a (dyn Fn(&Pod) -> bool + Sync),
}

/// The pods `claim.owner` controls after adopting matching orphans and releasing owned
/// pods that no longer match (upstream's `ClaimPods`). `can_adopt` is asked once, before
/// the first adoption (a fresh read of the owner: not deleted, same uid).
pub async fn claim_pods<F, Fut>(
    control: &PodControl,
    claim: &Claim<'_>,
    pods: &[Arc<Pod>],
    can_adopt: F,
) -> Result<Vec<Arc<Pod>>, PodControlError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(), PodControlError>>,
{
    let mut claimed = Vec::new();
    let mut can_adopt = Some(can_adopt);
    let mut adopt_checked: Option<Result<(), String>> = None;
    let mut first_err = None;
    for pod in pods {
        match controller_of(pod) {
            Some(r) if r.uid != claim.owner.uid => continue,
            Some(_) => {
                if (claim.matches)(pod) {
                    claimed.push(pod.clone());
                } else if !claim.deleting
                    && let Err(e) = control.release(claim.owner, pod).await
                {
                    first_err.get_or_insert(e);
                }
            }
            None => {
                if claim.deleting
                    || !(claim.matches)(pod)
                    || pod.metadata.deletion_timestamp.is_some()
                {
                    continue;
                }
                if adopt_checked.is_none()
                    && let Some(f) = can_adopt.take()
                {
                    adopt_checked = Some(f().await.map_err(|e| e.to_string()));
                }
                if let Some(Err(_)) = &adopt_checked {
                    continue;
                }
                match control.adopt(claim.owner, pod).await {
                    Ok(()) => claimed.push(pod.clone()),
                    Err(e) if e.code() == 404 => {}
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(claimed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn pod(name: &str, node: Option<&str>, phase: &str, ready_at: Option<i64>) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(Time(jiff::Timestamp::from_second(1000).unwrap())),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: node.map(String::from),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: ready_at.map(|t| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(Time(jiff::Timestamp::from_second(t).unwrap())),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
        })
    }

    fn names(p: &[Arc<Pod>]) -> Vec<&str> {
        p.iter().map(|p| pod_name(p)).collect()
    }

    #[test]
    fn victims_are_unscheduled_pending_unready_and_recent_first() {
        let pods = vec![
            pod("old-ready", Some("n"), "Running", Some(100)),
            pod("new-ready", Some("n"), "Running", Some(200)),
            pod("unready", Some("n"), "Running", None),
            pod("pending", Some("n"), "Pending", None),
            pod("unscheduled", None, "Pending", None),
        ];
        assert_eq!(
            names(&pods_to_delete(&pods, 5)),
            vec![
                "unscheduled",
                "pending",
                "unready",
                "new-ready",
                "old-ready"
            ]
        );
        assert_eq!(
            names(&pods_to_delete(&pods, 2)),
            vec!["unscheduled", "pending"]
        );
    }

    #[test]
    fn deletion_cost_and_node_crowding() {
        let mut cheap = (*pod("cheap", Some("a"), "Running", Some(100))).clone();
        cheap.metadata.annotations = Some([(DELETION_COST.to_string(), "-5".to_string())].into());
        let pods = vec![
            pod("alone", Some("b"), "Running", Some(100)),
            pod("crowded", Some("a"), "Running", Some(100)),
            Arc::new(cheap),
        ];
        assert_eq!(
            names(&pods_to_delete(&pods, 3)),
            vec!["cheap", "crowded", "alone"]
        );
    }

    #[test]
    fn availability_needs_min_ready_seconds() {
        let p = pod("p", Some("n"), "Running", Some(100));
        let now = jiff::Timestamp::from_second(105).unwrap();
        assert!(is_available(&p, 0, now));
        assert!(is_available(&p, 5, now));
        assert!(!is_available(&p, 6, now));
        assert!(!is_available(&pod("u", None, "Pending", None), 0, now));
    }

    #[tokio::test]
    async fn slow_start_doubles_and_stops_at_a_failing_batch() {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let (ok, err) = slow_start_batch(10, 1, || async {
            let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if n >= 4 { Err("quota") } else { Ok(n) }
        })
        .await;
        // Batches 1, 2, then 4 of which the second call on fails: 7 calls in all.
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 7);
        assert_eq!(ok.len(), 4);
        assert_eq!(err, Some("quota"));
        let (ok, err) = slow_start_batch(5, 1, || async { Ok::<_, ()>(()) }).await;
        assert_eq!((ok.len(), err), (5, None));
    }

    #[test]
    fn expectations_wait_for_the_cache() {
        let e = Expectations::default();
        assert!(e.satisfied("k", |_| Seen::Absent));
        e.expect_creations("k", ["a".to_string()]);
        assert!(!e.satisfied("k", |_| Seen::Absent));
        assert!(e.satisfied("k", |_| Seen::Present));
        e.expect_deletions("k", ["b".to_string()]);
        assert!(!e.satisfied("k", |_| Seen::Present));
        assert!(e.satisfied("k", |_| Seen::Terminating));
        e.expect_creations("k", ["c".to_string()]);
        e.observed_gone("k", "c");
        assert!(e.satisfied("k", |_| Seen::Absent));
    }

    #[test]
    fn pods_from_templates_carry_a_controller_ref() {
        let owner = Owner {
            api_version: "v1".into(),
            kind: "ReplicationController".into(),
            namespace: "d".into(),
            name: "web".into(),
            uid: "u1".into(),
            resource_version: "1".into(),
        };
        let t: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}))
        .unwrap();
        let p = pod_from_template(&t, &owner);
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["metadata"]["generateName"], "web-");
        assert_eq!(v["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(
            v["metadata"]["ownerReferences"],
            json!([{"apiVersion": "v1", "kind": "ReplicationController", "name": "web",
                "uid": "u1", "controller": true, "blockOwnerDeletion": true}])
        );
    }
}
