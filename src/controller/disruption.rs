//! kube-controller-manager's disruption controller (upstream's pkg/controller/disruption):
//! keeps every PodDisruptionBudget's status, which evictions read.
//!
//! One sync of a budget: the pods of its namespace its selector matches; the number of
//! pods expected — the pods themselves for an integer minAvailable, else the summed
//! scale of their controllers (a ReplicaSet owned by a Deployment counts as the
//! Deployment; any other owner is asked for its `scale` subresource, so RCs,
//! StatefulSets and custom kinds count without this file knowing them); the healthy
//! (Ready, not terminating, not recently evicted) pods; then `disruptionsAllowed =
//! currentHealthy - desiredHealthy` (0 while nothing is expected), `disruptedPods` less
//! the entries older than [`DELETION_TIMEOUT`], observedGeneration and the
//! DisruptionAllowed condition. A failed sync leaves the budget safe: no disruption
//! allowed, reason SyncFailed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube_client::Api;
use kube_client::api::PostParams;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::informer::{self, BY_NAMESPACE, Cache, Change, Informer, ObjectKey};
use super::{Action, WorkQueue, run_workers, watch_config};
use crate::apiserver::kinds::policy::poddisruptionbudget::{
    DISRUPTION_ALLOWED, scaled_value, selector_matches,
};

/// The component its Events name (upstream's disruption controller recorder).
pub const COMPONENT: &str = "controllermanager";

/// How long an eviction's entry in `disruptedPods` keeps its pod out of the healthy
/// count before the controller assumes the delete is not coming (upstream's
/// `DeletionTimeout`).
pub const DELETION_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A pod has no controller that could be found.
    #[error("found no controllers for pod {0:?}")]
    NoController(String),
    /// A controller does not serve `scale`.
    #[error("{0} does not implement the scale subresource")]
    NoScale(String),
    /// A bound could not be scaled.
    #[error("{0}")]
    Bound(String),
    /// Reading a controller failed.
    #[error("getting {what}: {source}")]
    Owner {
        /// The object read.
        what: String,
        /// The client's error.
        source: kube_client::Error,
    },
    /// Writing the status failed.
    #[error("updating the status of {key}: {source}")]
    Status {
        /// The budget.
        key: String,
        /// The client's error.
        source: kube_client::Error,
    },
}

impl SyncError {
    /// A conflict on the status write is retried without the fail-safe.
    fn is_conflict(&self) -> bool {
        matches!(self, SyncError::Status { source, .. } if super::code(source) == 409)
    }
}

/// The controller, wired to its informers (start it with [`Controller::start`]).
pub struct Controller {
    ctx: Arc<Ctx>,
    pdb_feed: mpsc::Receiver<Change<PodDisruptionBudget>>,
    pod_feed: mpsc::Receiver<Change<Pod>>,
    pdbs: Informer<PodDisruptionBudget>,
    shutdown: CancellationToken,
}

struct Ctx {
    client: kube_client::Client,
    pdbs: Cache<PodDisruptionBudget>,
    pods: Cache<Pod>,
    queue: Arc<WorkQueue<ObjectKey>>,
    /// The last Event reason recorded per budget, so a budget that stays without pods
    /// does not get one Event per sync.
    last_event: Mutex<HashMap<String, String>>,
}

impl Controller {
    /// Sets up the budget informer and subscribes to the controller-manager's shared pod
    /// informer (which must index by namespace).
    pub fn new(
        client: kube_client::Client,
        pods: &mut Informer<Pod>,
        shutdown: CancellationToken,
    ) -> Self {
        let mut pdbs = Informer::new(
            Api::all(client.clone()),
            watch_config(),
            "poddisruptionbudgets",
            vec![informer::by_namespace()],
        );
        let ctx = Arc::new(Ctx {
            client,
            pdbs: pdbs.cache(),
            pods: pods.cache(),
            queue: Arc::new(WorkQueue::new(shutdown.clone())),
            last_event: Mutex::default(),
        });
        Controller {
            ctx,
            pdb_feed: pdbs.subscribe(),
            pod_feed: pods.subscribe(),
            pdbs,
            shutdown,
        }
    }

    /// Runs the budget informer, the triggers and the worker; returns their tasks and the
    /// budget cache (to wait for its sync).
    pub fn start(self) -> (Vec<JoinHandle<()>>, Cache<PodDisruptionBudget>) {
        let Controller {
            ctx,
            mut pdb_feed,
            mut pod_feed,
            pdbs,
            shutdown,
        } = self;
        let cache = pdbs.cache();
        let mut tasks = vec![tokio::spawn(pdbs.run(shutdown.clone()))];
        let trig = ctx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    Some(c) = pdb_feed.recv() => trig.queue.add(ObjectKey::of(&**c.object())),
                    Some(c) = pod_feed.recv() => trig.pod_changed(c.object()),
                    else => return,
                }
            }
        }));
        let queue = ctx.queue.clone();
        tasks.push(tokio::spawn(run_workers(
            "disruption",
            queue,
            move |key: ObjectKey| {
                let ctx = ctx.clone();
                async move { ctx.sync(&key).await }
            },
        )));
        (tasks, cache)
    }
}

/// The pod's labels as a JSON map (what the selector matcher reads).
fn labels_json(pod: &Pod) -> Value {
    json!(pod.metadata.labels.clone().unwrap_or_default())
}

/// Whether `pdb` selects `pod` (same namespace is the caller's business).
fn selects(pdb: &PodDisruptionBudget, pod: &Pod) -> bool {
    let sel = pdb
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .map(|s| serde_json::to_value(s).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    selector_matches(&sel, &labels_json(pod))
}

/// Whether the pod's Ready condition is True.
fn is_ready(pod: &Pod) -> bool {
    super::podcontrol::is_ready(pod)
}

/// The healthy pods: not terminating, not evicted within [`DELETION_TIMEOUT`], Ready
/// (upstream's `countHealthyPods`).
fn count_healthy(
    pods: &[Arc<Pod>],
    disrupted: &BTreeMap<String, Time>,
    now: jiff::Timestamp,
) -> i32 {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            let name = p.metadata.name.as_deref().unwrap_or("");
            disrupted.get(name).is_none_or(|t| expires(t) <= now)
        })
        .filter(|p| is_ready(p))
        .count() as i32
}

/// When an eviction recorded at `t` stops counting.
fn expires(t: &Time) -> jiff::Timestamp {
    t.0 + jiff::SignedDuration::from_secs(DELETION_TIMEOUT.as_secs() as i64)
}

/// The entries of `disruptedPods` still pending — their pod exists, is not terminating
/// and was evicted less than [`DELETION_TIMEOUT`] ago — the earliest time one expires,
/// and the pods whose delete never came (upstream's `buildDisruptedPodMap`).
fn pending_disruptions(
    pods: &[Arc<Pod>],
    recorded: Option<&BTreeMap<String, Time>>,
    now: jiff::Timestamp,
) -> (
    BTreeMap<String, Time>,
    Option<jiff::Timestamp>,
    Vec<Arc<Pod>>,
) {
    let mut out = BTreeMap::new();
    let mut recheck: Option<jiff::Timestamp> = None;
    let mut not_deleted = Vec::new();
    let Some(recorded) = recorded else {
        return (out, recheck, not_deleted);
    };
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = pod.metadata.name.as_deref().unwrap_or("");
        let Some(at) = recorded.get(name) else {
            continue;
        };
        let deadline = expires(at);
        if deadline < now {
            not_deleted.push(pod.clone());
        } else {
            recheck = Some(recheck.map_or(deadline, |r| r.min(deadline)));
            out.insert(name.to_string(), at.clone());
        }
    }
    (out, recheck, not_deleted)
}

/// Upstream's `UpdateDisruptionAllowedCondition` / `SetStatusCondition`: the condition
/// with the given status, reason and message; the transition time moves only when the
/// status does.
fn set_condition(
    status: &mut PodDisruptionBudgetStatus,
    allowed: bool,
    reason: &str,
    message: &str,
    now: jiff::Timestamp,
) {
    let st = if allowed { "True" } else { "False" };
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let next = Condition {
        type_: DISRUPTION_ALLOWED.into(),
        status: st.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: status.observed_generation,
        last_transition_time: Time(now),
    };
    match conditions
        .iter_mut()
        .find(|c| c.type_ == DISRUPTION_ALLOWED)
    {
        Some(c) => {
            let since = if c.status == st {
                c.last_transition_time.clone()
            } else {
                Time(now)
            };
            *c = Condition {
                last_transition_time: since,
                ..next
            };
        }
        None => conditions.push(next),
    }
}

/// The condition that follows from the counts (SufficientPods / InsufficientPods).
fn allowed_condition(status: &mut PodDisruptionBudgetStatus, now: jiff::Timestamp) {
    if status.disruptions_allowed > 0 {
        set_condition(status, true, "SufficientPods", "", now);
    } else {
        set_condition(status, false, "InsufficientPods", "", now);
    }
}

/// The status a sync computes from the counts (upstream's `updatePdbStatus`): nothing
/// may be disrupted while no pod is expected.
fn computed_status(
    pdb: &PodDisruptionBudget,
    current: i32,
    desired: i32,
    expected: i32,
    disrupted: BTreeMap<String, Time>,
    now: jiff::Timestamp,
) -> PodDisruptionBudgetStatus {
    let mut allowed = current - desired;
    if expected <= 0 || allowed <= 0 {
        allowed = 0;
    }
    let mut status = PodDisruptionBudgetStatus {
        current_healthy: current,
        desired_healthy: desired,
        expected_pods: expected,
        disruptions_allowed: allowed,
        disrupted_pods: (!disrupted.is_empty()).then_some(disrupted),
        observed_generation: pdb.metadata.generation,
        conditions: pdb.status.as_ref().and_then(|s| s.conditions.clone()),
    };
    allowed_condition(&mut status, now);
    status
}

/// The `scale` of the controller behind one owner reference, and its uid.
struct Scale {
    uid: String,
    replicas: i32,
}

/// A collection path for `api_version` (`v1` or `group/version`).
fn api_root(api_version: &str) -> String {
    if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    }
}

impl Ctx {
    /// A pod changed: the budgets of its namespace that select it look again.
    fn pod_changed(&self, pod: &Pod) {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        for pdb in self.pdbs.by_index(BY_NAMESPACE, ns) {
            if selects(&pdb, pod) {
                self.queue.add(ObjectKey::of(&*pdb));
            }
        }
    }

    /// Records an Event about the budget unless it is the one recorded last.
    async fn event(&self, pdb: &PodDisruptionBudget, kind: &str, reason: &str, message: &str) {
        let key = ObjectKey::of(pdb).to_string();
        {
            let mut last = self.last_event.lock().unwrap_or_else(|e| e.into_inner());
            if last.get(&key).is_some_and(|r| r == reason) {
                return;
            }
            last.insert(key, reason.to_string());
        }
        let mut obj = serde_json::to_value(pdb).unwrap_or(Value::Null);
        obj["apiVersion"] = json!("policy/v1");
        obj["kind"] = json!("PodDisruptionBudget");
        super::events::record_event_kube(&self.client, &obj, kind, reason, message, COMPONENT)
            .await;
    }

    /// Forgets the last Event of a budget whose sync went well.
    fn clear_event(&self, key: &ObjectKey) {
        let mut last = self.last_event.lock().unwrap_or_else(|e| e.into_inner());
        last.remove(&key.to_string());
    }

    async fn sync(&self, key: &ObjectKey) -> Result<Action, SyncError> {
        let Some(pdb) = self.pdbs.get(key) else {
            self.clear_event(key);
            return Ok(Action::Done);
        };
        match self.try_sync(key, &pdb).await {
            Ok(action) => Ok(action),
            Err(e) if e.is_conflict() => Err(e),
            Err(e) => {
                // Upstream's failSafe: nothing may be disrupted while the status is unknown.
                let now = jiff::Timestamp::now();
                let mut status = pdb.status.clone().unwrap_or_default();
                status.disruptions_allowed = 0;
                set_condition(&mut status, false, "SyncFailed", &e.to_string(), now);
                self.write_status(key, &pdb, status).await?;
                Err(e)
            }
        }
    }

    async fn try_sync(
        &self,
        key: &ObjectKey,
        pdb: &Arc<PodDisruptionBudget>,
    ) -> Result<Action, SyncError> {
        let pods: Vec<Arc<Pod>> = self
            .pods
            .by_index(BY_NAMESPACE, &key.namespace)
            .into_iter()
            .filter(|p| selects(pdb, p))
            .collect();
        if pods.is_empty() {
            self.event(pdb, "Normal", "NoPods", "No matching pods found")
                .await;
        }
        let (expected, desired, unmanaged) = self.expected_count(pdb, &pods).await?;
        if !unmanaged.is_empty() {
            let sel = pdb
                .spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .map(|s| serde_json::to_string(s).unwrap_or_default())
                .unwrap_or_default();
            let msg = format!(
                "Pods selected by this PodDisruptionBudget (selector: {sel}) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value."
            );
            self.event(pdb, "Warning", "UnmanagedPods", &msg).await;
        } else if !pods.is_empty() {
            self.clear_event(key);
        }
        let now = jiff::Timestamp::now();
        let recorded = pdb.status.as_ref().and_then(|s| s.disrupted_pods.as_ref());
        let (disrupted, recheck, not_deleted) = pending_disruptions(&pods, recorded, now);
        for pod in not_deleted {
            let mut obj = serde_json::to_value(&*pod).unwrap_or(Value::Null);
            obj["apiVersion"] = json!("v1");
            obj["kind"] = json!("Pod");
            let msg = format!(
                "Pod was expected by PDB {}/{} to be deleted but it wasn't",
                key.namespace, key.name
            );
            super::events::record_event_kube(
                &self.client,
                &obj,
                "Warning",
                "NotDeleted",
                &msg,
                COMPONENT,
            )
            .await;
        }
        let current = count_healthy(&pods, &disrupted, now);
        let status = computed_status(pdb, current, desired, expected, disrupted, now);
        if !same_status(pdb.status.as_ref(), &status) {
            self.write_status(key, pdb, status).await?;
        }
        Ok(match recheck {
            // Look again when the first pending eviction expires.
            Some(at) => {
                Action::RequeueAfter(at.duration_since(now).unsigned_abs() + Duration::from_secs(1))
            }
            None => Action::Done,
        })
    }

    /// expectedPods, desiredHealthy and the unmanaged pods (upstream's
    /// `getExpectedPodCount`).
    async fn expected_count(
        &self,
        pdb: &PodDisruptionBudget,
        pods: &[Arc<Pod>],
    ) -> Result<(i32, i32, Vec<String>), SyncError> {
        let spec = pdb.spec.clone().unwrap_or_default();
        let bound = |v: &IntOrString| match v {
            IntOrString::Int(n) => json!(n),
            IntOrString::String(s) => json!(s),
        };
        if let Some(max) = &spec.max_unavailable {
            let (expected, unmanaged) = self.expected_scale(pdb, pods).await?;
            let max =
                scaled_value(&bound(max), i64::from(expected), true).map_err(SyncError::Bound)?;
            let desired = (i64::from(expected) - max).max(0) as i32;
            return Ok((expected, desired, unmanaged));
        }
        match &spec.min_available {
            Some(IntOrString::Int(n)) => Ok((pods.len() as i32, *n, Vec::new())),
            Some(min @ IntOrString::String(_)) => {
                let (expected, unmanaged) = self.expected_scale(pdb, pods).await?;
                let desired = scaled_value(&bound(min), i64::from(expected), true)
                    .map_err(SyncError::Bound)?;
                Ok((expected, desired as i32, unmanaged))
            }
            None => Ok((0, 0, Vec::new())),
        }
    }

    /// The summed scale of the pods' controllers, each counted once, and the pods
    /// without a controller (upstream's `getExpectedScale`).
    async fn expected_scale(
        &self,
        pdb: &PodDisruptionBudget,
        pods: &[Arc<Pod>],
    ) -> Result<(i32, Vec<String>), SyncError> {
        let mut scales: HashMap<String, i32> = HashMap::new();
        let mut unmanaged = Vec::new();
        for pod in pods {
            let Some(owner) = super::podcontrol::controller_of(pod) else {
                unmanaged.push(pod.metadata.name.clone().unwrap_or_default());
                continue;
            };
            if scales.contains_key(&owner.uid) {
                continue;
            }
            let ns = pod.metadata.namespace.as_deref().unwrap_or("");
            match self
                .scale_of(ns, &owner.api_version, &owner.kind, &owner.name, &owner.uid)
                .await?
            {
                Some(s) => {
                    scales.insert(s.uid, s.replicas);
                }
                None => {
                    let e = SyncError::NoController(pod.metadata.name.clone().unwrap_or_default());
                    self.event(pdb, "Warning", "NoControllers", &e.to_string())
                        .await;
                    return Err(e);
                }
            }
        }
        Ok((scales.values().sum(), unmanaged))
    }

    /// The scale of the controller `kind`/`name` with uid `uid`, or None when there is
    /// no such controller. A ReplicaSet that a Deployment controls counts as that
    /// Deployment; any other kind answers through its `scale` subresource.
    async fn scale_of(
        &self,
        ns: &str,
        api_version: &str,
        kind: &str,
        name: &str,
        uid: &str,
    ) -> Result<Option<Scale>, SyncError> {
        if kind == "ReplicaSet" && api_version == "apps/v1" {
            let path = format!("/apis/apps/v1/namespaces/{ns}/replicasets/{name}");
            let Some(rs) = self.get(&path).await? else {
                return Ok(None);
            };
            if rs["metadata"]["uid"] != uid {
                return Ok(None);
            }
            let refs = rs["metadata"]["ownerReferences"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if let Some(dep) = refs.iter().find(|r| r["controller"] == true)
                && dep["kind"] == "Deployment"
                && dep["apiVersion"] == "apps/v1"
            {
                let dname = dep["name"].as_str().unwrap_or("");
                let duid = dep["uid"].as_str().unwrap_or("");
                return self
                    .scale_subresource(ns, "apps/v1", "Deployment", dname, duid)
                    .await;
            }
        }
        self.scale_subresource(ns, api_version, kind, name, uid)
            .await
    }

    /// The scale of `kind`/`name` (uid `uid`) through its `scale` subresource.
    async fn scale_subresource(
        &self,
        ns: &str,
        api_version: &str,
        kind: &str,
        name: &str,
        uid: &str,
    ) -> Result<Option<Scale>, SyncError> {
        let Some(plural) = self.plural_of(api_version, kind).await? else {
            return Ok(None);
        };
        let root = api_root(api_version);
        let path = format!("{root}/namespaces/{ns}/{plural}/{name}/scale");
        match self.get(&path).await? {
            Some(scale) => {
                if scale["metadata"]["uid"] != uid {
                    return Ok(None);
                }
                Ok(Some(Scale {
                    uid: uid.to_string(),
                    replicas: scale["spec"]["replicas"].as_i64().unwrap_or(0) as i32,
                }))
            }
            None => {
                // The object is gone, or its kind serves no scale: upstream tells them apart.
                let list = format!("{root}/namespaces/{ns}/{plural}/{name}");
                match self.get(&list).await? {
                    Some(_) => Err(SyncError::NoScale(format!(
                        "{plural}.{}",
                        group_of(api_version)
                    ))),
                    None => Ok(None),
                }
            }
        }
    }

    /// The plural of `kind` in `api_version` from discovery (None: not served, the
    /// "owner kind not found" case).
    async fn plural_of(&self, api_version: &str, kind: &str) -> Result<Option<String>, SyncError> {
        let Some(list) = self.get(&api_root(api_version)).await? else {
            return Ok(None);
        };
        Ok(list["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["kind"] == kind && !r["name"].as_str().unwrap_or("/").contains('/'))
            .and_then(|r| r["name"].as_str().map(String::from)))
    }

    /// GETs `path`; None on 404.
    async fn get(&self, path: &str) -> Result<Option<Value>, SyncError> {
        match super::api_resources::get_json(&self.client, path).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if super::code(&e) == 404 => Ok(None),
            Err(source) => Err(SyncError::Owner {
                what: path.to_string(),
                source,
            }),
        }
    }

    /// Writes `status` (with the cached resourceVersion: a conflict retries the sync).
    async fn write_status(
        &self,
        key: &ObjectKey,
        pdb: &PodDisruptionBudget,
        status: PodDisruptionBudgetStatus,
    ) -> Result<(), SyncError> {
        let mut next = pdb.clone();
        next.status = Some(status);
        let span = tracing::debug_span!("controller_to_apiserver_pdb_status", pdb = %key);
        let api = Api::<PodDisruptionBudget>::namespaced(self.client.clone(), &key.namespace);
        match tracing::Instrument::instrument(
            api.replace_status(&key.name, &PostParams::default(), &next),
            span,
        )
        .await
        {
            Ok(_) => Ok(()),
            Err(e) if super::code(&e) == 404 => Ok(()),
            Err(source) => Err(SyncError::Status {
                key: key.to_string(),
                source,
            }),
        }
    }
}

/// The group of `api_version` ("" for core).
fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(g, _)| g)
}

/// Whether the stored status already says what the sync computed (the condition's
/// transition time aside).
fn same_status(old: Option<&PodDisruptionBudgetStatus>, new: &PodDisruptionBudgetStatus) -> bool {
    let Some(old) = old else {
        return false;
    };
    let strip = |s: &PodDisruptionBudgetStatus| {
        let mut s = s.clone();
        for c in s.conditions.iter_mut().flatten() {
            c.last_transition_time = Time(jiff::Timestamp::UNIX_EPOCH);
        }
        s
    };
    strip(old) == strip(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::api::policy::v1::PodDisruptionBudgetSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(name: &str, ready: bool) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    fn pdb(min: i32) -> PodDisruptionBudget {
        PodDisruptionBudget {
            metadata: ObjectMeta {
                generation: Some(2),
                ..Default::default()
            },
            spec: Some(PodDisruptionBudgetSpec {
                min_available: Some(IntOrString::Int(min)),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn healthy_pods_exclude_unready_terminating_and_recently_evicted() {
        let now = jiff::Timestamp::now();
        let mut gone = (*pod("c", true)).clone();
        gone.metadata.deletion_timestamp = Some(Time(now));
        let pods = vec![
            pod("a", true),
            pod("b", false),
            Arc::new(gone),
            pod("d", true),
        ];
        let mut disrupted = BTreeMap::new();
        assert_eq!(count_healthy(&pods, &disrupted, now), 2);
        disrupted.insert("d".to_string(), Time(now));
        assert_eq!(count_healthy(&pods, &disrupted, now), 1);
        let old = now - jiff::SignedDuration::from_secs(121);
        disrupted.insert("d".to_string(), Time(old));
        assert_eq!(count_healthy(&pods, &disrupted, now), 2, "expired entry");
    }

    #[test]
    fn disrupted_pods_expire_after_two_minutes() {
        let now = jiff::Timestamp::now();
        let fresh = now - jiff::SignedDuration::from_secs(30);
        let stale = now - jiff::SignedDuration::from_secs(200);
        let recorded: BTreeMap<String, Time> = [
            ("a".to_string(), Time(fresh)),
            ("b".to_string(), Time(stale)),
            ("gone".to_string(), Time(fresh)),
        ]
        .into();
        let pods = vec![pod("a", true), pod("b", true)];
        let (kept, recheck, not_deleted) = pending_disruptions(&pods, Some(&recorded), now);
        assert_eq!(kept.keys().collect::<Vec<_>>(), vec!["a"]);
        assert_eq!(recheck, Some(expires(&Time(fresh))));
        assert_eq!(not_deleted.len(), 1);
        assert_eq!(not_deleted[0].metadata.name.as_deref(), Some("b"));
    }

    #[test]
    fn allowed_disruptions_and_condition() {
        let now = jiff::Timestamp::now();
        let st = computed_status(&pdb(2), 3, 2, 3, BTreeMap::new(), now);
        assert_eq!(st.disruptions_allowed, 1);
        assert_eq!(st.observed_generation, Some(2));
        let c = &st.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", "SufficientPods")
        );
        let none = computed_status(&pdb(3), 3, 3, 3, BTreeMap::new(), now);
        assert_eq!(none.disruptions_allowed, 0);
        let c = &none.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "InsufficientPods")
        );
        let nothing_expected = computed_status(&pdb(0), 2, 0, 0, BTreeMap::new(), now);
        assert_eq!(nothing_expected.disruptions_allowed, 0);
        assert!(same_status(Some(&none), &none));
        assert!(!same_status(Some(&none), &st));
    }

    #[test]
    fn selectors_follow_policy_v1() {
        let mut b = pdb(1);
        let mut p = (*pod("a", true)).clone();
        p.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
        assert!(!selects(&b, &p), "no selector selects nothing");
        b.spec.as_mut().unwrap().selector = Some(Default::default());
        assert!(selects(&b, &p), "an empty selector selects every pod");
    }
}
