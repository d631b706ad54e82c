//! kube-controller-manager's DaemonSet controller (upstream's pkg/controller/daemon):
//! one pod per node that should run it. A daemon pod is not bound by the controller: it
//! carries a required node affinity `matchFields metadata.name In [<node>]` and the
//! default scheduler binds it. The controller adds upstream's default tolerations
//! (not-ready/unreachable NoExecute, disk/memory/pid pressure and unschedulable
//! NoSchedule, network-unavailable for hostNetwork pods) and the
//! `controller-revision-hash` and `pod-template-generation` labels; it updates pods by
//! RollingUpdate (maxUnavailable, maxSurge) or OnDelete through ControllerRevisions and
//! follows node additions, label, taint and cordon changes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodSpec, PodTemplateSpec, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube_client::Api;
use kube_client::api::PostParams;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::events::record_event_kube;
use super::history::{self, History, HistoryError, REVISION_LABEL};
use super::informer::{self, BY_NAMESPACE, Cache, Change, Informer, ObjectKey};
use super::podcontrol::{self, Claim, Expectations, Owner, PodControl, PodControlError, Seen};
use super::{Action, WorkQueue, code, run_workers, watch_config};

/// The component Events name (upstream's `daemonset-controller`).
pub const COMPONENT: &str = "daemonset-controller";
/// The (deprecated, still set) label holding the DaemonSet's generation.
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

const KIND: &str = "DaemonSet";
const API_VERSION: &str = "apps/v1";
const DEFAULT_HISTORY: i32 = 10;

/// Why a sync failed (it is retried with back-off).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A pod operation failed.
    #[error(transparent)]
    Pods(#[from] PodControlError),
    /// A revision operation failed.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// Writing the status failed.
    #[error("updating the status of {key}: {source}")]
    Status {
        /// The DaemonSet.
        key: String,
        /// The client's error.
        source: kube_client::Error,
    },
}

// ---- Node eligibility (upstream's NodeShouldRunDaemonPod and the scheduler predicates it
// uses: node name, node selector and required node affinity, taints).

/// Whether `tol` tolerates `taint` (upstream's `Toleration.ToleratesTaint`).
pub fn tolerates(tol: &Toleration, taint: &Taint) -> bool {
    if let Some(e) = tol.effect.as_deref()
        && !e.is_empty()
        && e != taint.effect
    {
        return false;
    }
    if let Some(k) = tol.key.as_deref()
        && !k.is_empty()
        && k != taint.key
    {
        return false;
    }
    match tol.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => tol.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

/// The first taint with an effect `effect_filter` accepts that no toleration tolerates.
pub fn untolerated<'a>(
    taints: &'a [Taint],
    tols: &[Toleration],
    effect_filter: impl Fn(&str) -> bool,
) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| effect_filter(&t.effect))
        .find(|t| !tols.iter().any(|tol| tolerates(tol, t)))
}

fn requirement_matches(req: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let vals = req.values.as_deref().unwrap_or(&[]);
    match req.operator.as_str() {
        "In" => value.is_some_and(|v| vals.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !vals.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                vals.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if req.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = node.metadata.labels.as_ref();
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.and_then(|l| l.get(&r.key)).map(String::as_str)))
        && fields.iter().all(|r| {
            r.key == "metadata.name" && requirement_matches(r, node.metadata.name.as_deref())
        })
}

/// Whether the pod spec's nodeSelector and required node affinity admit `node`.
pub fn fits_node_affinity(spec: &PodSpec, node: &Node) -> bool {
    let labels = node.metadata.labels.as_ref();
    let selector_ok = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    selector_ok
        && required.is_none_or(|r| r.node_selector_terms.iter().any(|t| term_matches(t, node)))
}

/// The tolerations upstream's `AddOrUpdateDaemonPodTolerations` gives every daemon pod.
pub fn default_tolerations(host_network: bool) -> Vec<Toleration> {
    let t = |key: &str, effect: &str| Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        ..Default::default()
    };
    let mut v = vec![
        t("node.kubernetes.io/not-ready", "NoExecute"),
        t("node.kubernetes.io/unreachable", "NoExecute"),
        t("node.kubernetes.io/disk-pressure", "NoSchedule"),
        t("node.kubernetes.io/memory-pressure", "NoSchedule"),
        t("node.kubernetes.io/pid-pressure", "NoSchedule"),
        t("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if host_network {
        v.push(t("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    v
}

/// Adds the default tolerations a spec lacks (same key, operator and effect).
fn add_default_tolerations(spec: &mut PodSpec) {
    let host_network = spec.host_network.unwrap_or(false);
    let tols = spec.tolerations.get_or_insert_with(Vec::new);
    for d in default_tolerations(host_network) {
        let same = |t: &Toleration| {
            t.key == d.key
                && t.effect == d.effect
                && t.operator.as_deref().unwrap_or("Equal") == "Exists"
        };
        if let Some(t) = tols
            .iter_mut()
            .find(|t| t.key == d.key && t.effect == d.effect)
        {
            if !same(t) {
                *t = d;
            }
        } else {
            tols.push(d);
        }
    }
}

/// Whether a daemon pod should be created on `node` and whether one there may keep
/// running (upstream's `NodeShouldRunDaemonPod`).
pub fn should_run(template: &PodSpec, node: &Node) -> (bool, bool) {
    let node_name = node.metadata.name.as_deref().unwrap_or("");
    if let Some(n) = template.node_name.as_deref()
        && !n.is_empty()
        && n != node_name
    {
        return (false, false);
    }
    if !fits_node_affinity(template, node) {
        return (false, false);
    }
    let mut spec = template.clone();
    add_default_tolerations(&mut spec);
    let tols = spec.tolerations.unwrap_or_default();
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    if untolerated(&taints, &tols, |e| e == "NoSchedule" || e == "NoExecute").is_some() {
        let keeps = untolerated(&taints, &tols, |e| e == "NoExecute").is_none();
        return (false, keeps);
    }
    (true, true)
}

/// The node a daemon pod is for: its nodeName, or its affinity's `metadata.name` field
/// (upstream's `GetTargetNodeName`).
pub fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_deref()
        && !n.is_empty()
    {
        return Some(n.into());
    }
    let req = spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?;
    req.node_selector_terms.iter().find_map(|t| {
        t.match_fields.iter().flatten().find_map(|f| {
            (f.key == "metadata.name" && f.operator == "In")
                .then(|| f.values.as_ref().and_then(|v| v.first().cloned()))
                .flatten()
        })
    })
}

/// The required node affinity that pins a pod to `node` (upstream's
/// `ReplaceDaemonSetPodNodeNameNodeAffinity`: other required terms are replaced).
pub fn pin_to_node(affinity: Option<Affinity>, node: &str) -> Affinity {
    let selector = NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![NodeSelectorRequirement {
                key: "metadata.name".into(),
                operator: "In".into(),
                values: Some(vec![node.into()]),
            }]),
        }],
    };
    let mut a = affinity.unwrap_or_default();
    let na = a.node_affinity.get_or_insert_with(NodeAffinity::default);
    na.required_during_scheduling_ignored_during_execution = Some(selector);
    a
}

/// The DaemonSet's template generation (upstream's `GetTemplateGeneration`: the
/// `deprecated.daemonset.template.generation` annotation the API server keeps).
pub fn template_generation(ds: &DaemonSet) -> Option<i64> {
    ds.metadata
        .annotations
        .as_ref()?
        .get(crate::apiserver::kinds::apps::daemonset::TEMPLATE_GENERATION)?
        .parse()
        .ok()
}

/// The template of a daemon pod for `node` at revision `hash`.
pub fn pod_template_for(ds: &DaemonSet, hash: &str, node: &str) -> PodTemplateSpec {
    let mut t = ds
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let meta = t.metadata.get_or_insert_with(Default::default);
    let labels = meta.labels.get_or_insert_with(Default::default);
    labels.insert(REVISION_LABEL.into(), hash.into());
    if let Some(g) = template_generation(ds) {
        labels.insert(TEMPLATE_GENERATION_LABEL.into(), g.to_string());
    }
    let spec = t.spec.get_or_insert_with(Default::default);
    add_default_tolerations(spec);
    spec.affinity = Some(pin_to_node(spec.affinity.take(), node));
    t
}

/// Whether a pod is of the current template (upstream's `IsPodUpdated`).
pub fn is_updated(pod: &Pod, hash: &str, generation: Option<i64>) -> bool {
    let labels = pod.metadata.labels.as_ref();
    let get = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    let template =
        generation.is_some_and(|g| get(TEMPLATE_GENERATION_LABEL) == Some(&*g.to_string()));
    (!hash.is_empty() && get(REVISION_LABEL) == Some(hash)) || template
}

/// An int-or-percent of `total`, percentages rounded up.
pub fn scaled(v: Option<&IntOrString>, total: i32, default: i32) -> i32 {
    match v {
        None => default,
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) => {
            let p: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            ((p * i64::from(total) + 99) / 100) as i32
        }
    }
}

fn created(p: &Pod) -> Option<jiff::Timestamp> {
    p.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

fn name_of(p: &Pod) -> &str {
    p.metadata.name.as_deref().unwrap_or("")
}

fn failed(p: &Pod) -> bool {
    p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed")
}

/// What the rolling update does next: pods to delete and nodes to surge onto.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UpdatePlan {
    /// Old pods to delete.
    pub delete: Vec<String>,
    /// Nodes that get a new pod beside the old one.
    pub surge: Vec<String>,
}

/// A node's updated pod and old pod, each if any.
type NewAndOld<'a> = (Option<&'a Arc<Pod>>, Option<&'a Arc<Pod>>);

/// The new and old pod of a node, or `None` when there are several of either kind
/// (upstream's `findUpdatedPodsOnNode`).
fn new_and_old<'a>(
    pods: &'a [Arc<Pod>],
    hash: &str,
    generation: Option<i64>,
) -> Option<NewAndOld<'a>> {
    let (mut new, mut old) = (None, None);
    for p in pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        let slot = if is_updated(p, hash, generation) {
            &mut new
        } else {
            &mut old
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(p);
    }
    Some((new, old))
}

/// The next rolling-update step over the pods of each node that should run one
/// (upstream's `rollingUpdate`, with and without surge).
pub fn rolling_update(
    per_node: &BTreeMap<String, Vec<Arc<Pod>>>,
    hash: &str,
    generation: Option<i64>,
    max_surge: i32,
    max_unavailable: i32,
    min_ready: i64,
    now: jiff::Timestamp,
) -> UpdatePlan {
    let available = |p: &Pod| podcontrol::is_available(p, min_ready, now);
    let mut plan = UpdatePlan::default();
    if max_surge == 0 {
        let mut unavailable = 0;
        let mut candidates = Vec::new();
        for pods in per_node.values() {
            let Some((new, old)) = new_and_old(pods, hash, generation) else {
                unavailable += 1;
                continue;
            };
            match (new, old) {
                (None, None) | (Some(_), Some(_)) => unavailable += 1,
                (Some(n), None) => {
                    if !available(n) {
                        unavailable += 1;
                    }
                }
                (None, Some(o)) => {
                    if !available(o) {
                        plan.delete.push(name_of(o).to_string());
                    } else if unavailable < max_unavailable {
                        candidates.push(name_of(o).to_string());
                    }
                }
            }
        }
        let room = (max_unavailable - unavailable).max(0) as usize;
        plan.delete.extend(candidates.into_iter().take(room));
        return plan;
    }
    let mut surging = 0;
    let mut candidates = Vec::new();
    for (node, pods) in per_node {
        let Some((new, old)) = new_and_old(pods, hash, generation) else {
            surging += 1;
            continue;
        };
        match (new, old) {
            (_, None) => {}
            (None, Some(o)) => {
                if !available(o) {
                    plan.surge.push(node.clone());
                } else if surging < max_surge {
                    candidates.push(node.clone());
                }
            }
            (Some(n), Some(o)) => {
                if available(n) {
                    plan.delete.push(name_of(o).to_string());
                } else {
                    surging += 1;
                }
            }
        }
    }
    let room = (max_surge - surging).max(0) as usize;
    plan.surge.extend(candidates.into_iter().take(room));
    plan
}

/// The controller, wired to its informers (start it with [`Controller::start`]).
pub struct Controller {
    ctx: Arc<Ctx>,
    ds_feed: mpsc::Receiver<Change<DaemonSet>>,
    pod_feed: mpsc::Receiver<Change<Pod>>,
    node_feed: mpsc::Receiver<Change<Node>>,
    rev_feed: mpsc::Receiver<Change<ControllerRevision>>,
    sets: Informer<DaemonSet>,
    shutdown: CancellationToken,
}

struct Ctx {
    client: kube_client::Client,
    control: PodControl,
    history: History,
    sets: Cache<DaemonSet>,
    pods: Cache<Pod>,
    nodes: Cache<Node>,
    revisions: Cache<ControllerRevision>,
    expectations: Expectations,
    /// What of each node decides daemon placement (labels, taints, cordon), to skip
    /// heartbeat-only node updates.
    node_facts: Mutex<HashMap<String, Value>>,
    queue: Arc<WorkQueue<ObjectKey>>,
}

impl Controller {
    /// Sets up the DaemonSet informer and subscribes to the shared pod, node and
    /// ControllerRevision informers.
    pub fn new(
        client: kube_client::Client,
        pods: &mut Informer<Pod>,
        nodes: &mut Informer<Node>,
        revisions: &mut Informer<ControllerRevision>,
        shutdown: CancellationToken,
    ) -> Self {
        let mut sets = Informer::new(
            Api::all(client.clone()),
            watch_config(),
            "daemonsets",
            vec![informer::by_namespace()],
        );
        let ctx = Arc::new(Ctx {
            control: PodControl::new(client.clone(), COMPONENT),
            history: History::new(client.clone()),
            client,
            sets: sets.cache(),
            pods: pods.cache(),
            nodes: nodes.cache(),
            revisions: revisions.cache(),
            expectations: Expectations::default(),
            node_facts: Mutex::new(HashMap::new()),
            queue: Arc::new(WorkQueue::new(shutdown.clone())),
        });
        Controller {
            ctx,
            ds_feed: sets.subscribe(),
            pod_feed: pods.subscribe(),
            node_feed: nodes.subscribe(),
            rev_feed: revisions.subscribe(),
            sets,
            shutdown,
        }
    }

    /// Runs the DaemonSet informer, the triggers and the worker; returns their tasks and
    /// the DaemonSet cache (to wait for its sync).
    pub fn start(self) -> (Vec<JoinHandle<()>>, Cache<DaemonSet>) {
        let Controller {
            ctx,
            mut ds_feed,
            mut pod_feed,
            mut node_feed,
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
                    Some(c) = ds_feed.recv() => {
                        let key = ObjectKey::of(&**c.object());
                        if let Change::Deleted(_) = c {
                            trig.expectations.forget(&key.to_string());
                        }
                        trig.queue.add(key);
                    },
                    Some(c) = pod_feed.recv() => trig.pod_changed(&c),
                    Some(c) = node_feed.recv() => trig.node_changed(&c),
                    Some(c) = rev_feed.recv() => {
                        let r = c.object();
                        let ns = r.metadata.namespace.as_deref().unwrap_or("");
                        if let Some(k) = trig.owner_key(ns, r.metadata.owner_references.as_ref()) {
                            trig.queue.add(k);
                        }
                    },
                    else => return,
                }
            }
        }));
        let queue = ctx.queue.clone();
        tasks.push(tokio::spawn(run_workers(
            "daemonset",
            queue,
            move |key: ObjectKey| {
                let ctx = ctx.clone();
                async move { ctx.sync(&key).await }
            },
        )));
        (tasks, cache)
    }
}

fn selects(ds: &DaemonSet, pod: &Pod) -> bool {
    let Some(spec) = ds.spec.as_ref() else {
        return false;
    };
    !history::selector_is_empty(&spec.selector)
        && history::selector_matches(&spec.selector, pod.metadata.labels.as_ref())
}

impl Ctx {
    fn owner_key(&self, ns: &str, refs: Option<&Vec<OwnerReference>>) -> Option<ObjectKey> {
        let r = refs?.iter().find(|r| r.controller == Some(true))?;
        if r.kind != KIND {
            return None;
        }
        let key = ObjectKey::new(ns, &r.name);
        let ds = self.sets.get(&key)?;
        (ds.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some(key)
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
        for ds in self.sets.by_index(BY_NAMESPACE, ns) {
            if selects(&ds, pod) {
                self.queue.add(ObjectKey::of(&*ds));
            }
        }
    }

    /// A node appeared, went, or changed what placement reads: every DaemonSet looks.
    fn node_changed(&self, change: &Change<Node>) {
        let node = change.object();
        let name = node.metadata.name.clone().unwrap_or_default();
        let changed = {
            let mut facts = self.node_facts.lock().unwrap_or_else(|e| e.into_inner());
            match change {
                Change::Deleted(_) => facts.remove(&name).is_some(),
                Change::Applied(_) => {
                    let spec = node.spec.as_ref();
                    let f = json!({"labels": node.metadata.labels,
                        "taints": spec.and_then(|s| s.taints.as_ref()),
                        "unschedulable": spec.and_then(|s| s.unschedulable)});
                    facts.insert(name, f.clone()) != Some(f)
                }
            }
        };
        if changed {
            for ds in self.sets.list() {
                self.queue.add(ObjectKey::of(&*ds));
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

    async fn event(&self, ds: &DaemonSet, kind_type: &str, reason: &str, message: &str) {
        let obj = json!({"apiVersion": API_VERSION, "kind": KIND, "metadata": {
            "name": ds.metadata.name, "namespace": ds.metadata.namespace,
            "uid": ds.metadata.uid, "resourceVersion": ds.metadata.resource_version}});
        record_event_kube(&self.client, &obj, kind_type, reason, message, COMPONENT).await;
    }

    async fn sync(&self, key: &ObjectKey) -> Result<Action, SyncError> {
        let Some(ds) = self.sets.get(key) else {
            self.expectations.forget(&key.to_string());
            return Ok(Action::Done);
        };
        let ekey = key.to_string();
        let settled = self
            .expectations
            .satisfied(&ekey, |n| self.seen(&key.namespace, n));
        let owner = Owner::new(API_VERSION, KIND, &ds.metadata);
        let deleting = ds.metadata.deletion_timestamp.is_some();
        let spec = ds.spec.clone().unwrap_or_default();
        let all = self.pods.by_index(BY_NAMESPACE, &key.namespace);
        let matches = |p: &Pod| selects(&ds, p);
        let claim = Claim {
            owner: &owner,
            deleting,
            matches: &matches,
        };
        let pods =
            podcontrol::claim_pods(&self.control, &claim, &all, || self.recheck(key, &owner))
                .await?;
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
        let mut collision = ds
            .status
            .as_ref()
            .and_then(|s| s.collision_count)
            .unwrap_or(0);
        let cur = self
            .current_revision(&ds, &owner, &revs, &mut collision)
            .await?;
        let hash = cur
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(REVISION_LABEL))
            .cloned()
            .unwrap_or_else(|| history::hash_of(&cur).to_string());
        let nodes = self.nodes.list();
        let node_names: HashSet<String> = nodes
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        let mut per_node: BTreeMap<String, Vec<Arc<Pod>>> = BTreeMap::new();
        let mut orphans = Vec::new();
        for p in &pods {
            match target_node(p) {
                Some(n) if node_names.contains(&n) => {
                    per_node.entry(n).or_default().push(p.clone())
                }
                _ if p
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_deref())
                    .is_none_or(str::is_empty) =>
                {
                    orphans.push(p.clone());
                }
                _ => {}
            }
        }
        for v in per_node.values_mut() {
            v.sort_by_key(|p| created(p));
        }
        let now = jiff::Timestamp::now();
        let min_ready = i64::from(spec.min_ready_seconds.unwrap_or(0));
        let strategy = spec.update_strategy.clone().unwrap_or_default();
        let rolling = strategy.type_.as_deref() != Some("OnDelete");
        let ru = strategy.rolling_update.clone().unwrap_or_default();
        let mut err = None;
        if !deleting && settled {
            err = self
                .manage(
                    &ds, &owner, &nodes, &per_node, &orphans, &hash, rolling, &ru, min_ready, now,
                )
                .await
                .err();
        }
        let status = self.status(&ds, &nodes, &per_node, &hash, collision, min_ready, now);
        self.write_status(key, &ds, status.clone()).await?;
        // History: keep revisions some pod still uses, and the newest others up to the limit.
        let live: HashSet<String> = revs
            .iter()
            .filter(|r| {
                let h = r
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(REVISION_LABEL))
                    .map(String::as_str)
                    .unwrap_or(history::hash_of(r));
                r.metadata.name == cur.metadata.name
                    || pods.iter().any(|p| {
                        p.metadata
                            .labels
                            .as_ref()
                            .and_then(|l| l.get(REVISION_LABEL))
                            .map(String::as_str)
                            == Some(h)
                    })
            })
            .filter_map(|r| r.metadata.name.clone())
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
        if min_ready > 0 && status.number_ready > status.number_available.unwrap_or(0) {
            return Ok(Action::RequeueAfter(Duration::from_secs(min_ready as u64)));
        }
        Ok(Action::Done)
    }

    /// The revision of the current template, created or renumbered as needed (upstream's
    /// `constructHistory`).
    async fn current_revision(
        &self,
        ds: &DaemonSet,
        owner: &Owner,
        revs: &[Arc<ControllerRevision>],
        collision: &mut i32,
    ) -> Result<Arc<ControllerRevision>, SyncError> {
        let spec = ds.spec.clone().unwrap_or_default();
        let template = serde_json::to_value(&spec.template).unwrap_or(Value::Null);
        let mut labels = spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        labels.insert(REVISION_LABEL.into(), String::new());
        let data = history::template_patch(&template);
        let matching: Vec<&Arc<ControllerRevision>> = revs
            .iter()
            .filter(|r| r.data.as_ref().map(|d| &d.0) == Some(&data))
            .collect();
        let old_max = revs
            .iter()
            .filter(|r| r.data.as_ref().map(|d| &d.0) != Some(&data))
            .map(|r| r.revision)
            .max()
            .unwrap_or(0);
        let next = old_max + 1;
        match matching.last() {
            Some(cur) if cur.revision >= next => Ok((*cur).clone()),
            Some(cur) => Ok(Arc::new(self.history.update_revision(cur, next).await?)),
            None => {
                let rev = history::new_revision(owner, &labels, data, next, Some(*collision));
                Ok(Arc::new(self.history.create(owner, &rev, collision).await?))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn manage(
        &self,
        ds: &DaemonSet,
        owner: &Owner,
        nodes: &[Arc<Node>],
        per_node: &BTreeMap<String, Vec<Arc<Pod>>>,
        orphans: &[Arc<Pod>],
        hash: &str,
        rolling: bool,
        ru: &k8s_openapi::api::apps::v1::RollingUpdateDaemonSet,
        min_ready: i64,
        now: jiff::Timestamp,
    ) -> Result<(), SyncError> {
        let ns = owner.namespace.clone();
        let template = ds
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let tspec = template.spec.clone().unwrap_or_default();
        let generation = template_generation(ds);
        let mut create_on: Vec<String> = Vec::new();
        let mut delete: Vec<String> = Vec::new();
        let mut desired = 0;
        let mut eligible: BTreeMap<String, Vec<Arc<Pod>>> = BTreeMap::new();
        let max_surge_raw = if rolling { ru.max_surge.as_ref() } else { None };
        for node in nodes {
            let name = node.metadata.name.clone().unwrap_or_default();
            let (run, keep) = should_run(&tspec, node);
            let pods = per_node.get(&name).cloned().unwrap_or_default();
            if run {
                desired += 1;
            }
            if keep {
                let mut running = Vec::new();
                for p in &pods {
                    if p.metadata.deletion_timestamp.is_some() {
                        continue;
                    }
                    if failed(p) {
                        let msg = format!(
                            "Found failed daemon pod {ns}/{} on node {name}, will try to kill it",
                            name_of(p)
                        );
                        self.event(ds, "Warning", "FailedDaemonPod", &msg).await;
                        delete.push(name_of(p).into());
                    } else {
                        running.push(p.clone());
                    }
                }
                if running.is_empty() && run {
                    create_on.push(name.clone());
                } else if running.len() > 1 {
                    // Keep the oldest (with surge: the oldest new and oldest old).
                    let surge = max_surge_raw.is_some_and(|s| scaled(Some(s), 1, 0) > 0);
                    let (mut kept_new, mut kept_old) = (false, false);
                    for (i, p) in running.iter().enumerate() {
                        let keep_it = if surge {
                            let slot = if is_updated(p, hash, generation) {
                                &mut kept_new
                            } else {
                                &mut kept_old
                            };
                            !std::mem::replace(slot, true)
                        } else {
                            i == 0
                        };
                        if !keep_it {
                            delete.push(name_of(p).into());
                        }
                    }
                }
                if run {
                    eligible.insert(name.clone(), running);
                }
            } else {
                for p in &pods {
                    if p.metadata.deletion_timestamp.is_none() {
                        delete.push(name_of(p).into());
                    }
                }
            }
        }
        for p in orphans {
            if p.metadata.deletion_timestamp.is_none() {
                delete.push(name_of(p).into());
            }
        }
        if rolling && create_on.is_empty() && delete.is_empty() {
            let max_surge = scaled(ru.max_surge.as_ref(), desired, 0);
            let mut max_unavailable = scaled(ru.max_unavailable.as_ref(), desired, 1);
            if max_surge == 0 && max_unavailable == 0 {
                max_unavailable = 1;
            }
            let step = rolling_update(
                &eligible,
                hash,
                generation,
                max_surge,
                max_unavailable,
                min_ready,
                now,
            );
            delete.extend(step.delete);
            create_on.extend(step.surge);
        }
        self.sync_nodes(ds, owner, &create_on, &delete, hash).await
    }

    /// Creates a daemon pod on each of `create_on` (slow-start batches) and deletes
    /// `delete`.
    async fn sync_nodes(
        &self,
        ds: &DaemonSet,
        owner: &Owner,
        create_on: &[String],
        delete: &[String],
        hash: &str,
    ) -> Result<(), SyncError> {
        let ekey = format!("{}/{}", owner.namespace, owner.name);
        let mut first: Option<PodControlError> = None;
        if !delete.is_empty() {
            self.expectations
                .expect_deletions(&ekey, delete.iter().cloned());
            let results = futures_util::future::join_all(
                delete.iter().map(|n| self.control.delete(owner, n)),
            )
            .await;
            for (n, r) in delete.iter().zip(results) {
                if let Err(e) = r {
                    self.expectations.deletion_failed(&ekey, n);
                    first.get_or_insert(e);
                }
            }
        }
        if !create_on.is_empty() {
            let idx = std::sync::atomic::AtomicUsize::new(0);
            let (made, err) = podcontrol::slow_start_batch(
                create_on.len().min(podcontrol::BURST_REPLICAS),
                podcontrol::SLOW_START_INITIAL_BATCH,
                || {
                    let i = idx.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let t = pod_template_for(ds, hash, &create_on[i]);
                    async move { self.control.create(&t, owner).await }
                },
            )
            .await;
            self.expectations.expect_creations(&ekey, made);
            if let Some(e) = err {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), |e| Err(e.into()))
    }

    #[allow(clippy::too_many_arguments)]
    fn status(
        &self,
        ds: &DaemonSet,
        nodes: &[Arc<Node>],
        per_node: &BTreeMap<String, Vec<Arc<Pod>>>,
        hash: &str,
        collision: i32,
        min_ready: i64,
        now: jiff::Timestamp,
    ) -> DaemonSetStatus {
        let tspec = ds
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.clone())
            .unwrap_or_default();
        let mut s = DaemonSetStatus {
            conditions: ds.status.as_ref().and_then(|s| s.conditions.clone()),
            ..Default::default()
        };
        let (mut ready, mut available, mut updated) = (0, 0, 0);
        for node in nodes {
            let name = node.metadata.name.clone().unwrap_or_default();
            let (run, _) = should_run(&tspec, node);
            let pods: Vec<&Arc<Pod>> = per_node
                .get(&name)
                .into_iter()
                .flatten()
                .filter(|p| !failed(p) || p.metadata.deletion_timestamp.is_none())
                .collect();
            let scheduled = !pods.is_empty();
            if run {
                s.desired_number_scheduled += 1;
                if let Some(p) = pods.first() {
                    s.current_number_scheduled += 1;
                    if podcontrol::is_ready(p) {
                        ready += 1;
                        if podcontrol::is_available(p, min_ready, now) {
                            available += 1;
                        }
                    }
                    if is_updated(p, hash, template_generation(ds)) {
                        updated += 1;
                    }
                }
            } else if scheduled {
                s.number_misscheduled += 1;
            }
        }
        s.number_ready = ready;
        s.number_available = Some(available);
        s.number_unavailable = Some(s.desired_number_scheduled - available);
        s.updated_number_scheduled = Some(updated);
        s.observed_generation = ds.metadata.generation;
        s.collision_count = Some(collision);
        s
    }

    /// A fresh read of the DaemonSet before adopting.
    async fn recheck(&self, key: &ObjectKey, owner: &Owner) -> Result<(), PodControlError> {
        let api = Api::<DaemonSet>::namespaced(self.client.clone(), &key.namespace);
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
        ds: &DaemonSet,
        status: DaemonSetStatus,
    ) -> Result<(), SyncError> {
        if ds.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let mut next = ds.clone();
        next.status = Some(status);
        let span = tracing::debug_span!("controller_to_apiserver_daemonset_status", ds = %key);
        let api = Api::<DaemonSet>::namespaced(self.client.clone(), &key.namespace);
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeSpec, PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn node(name: &str, labels: &[(&str, &str)], taints: &[(&str, &str)]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                taints: Some(
                    taints
                        .iter()
                        .map(|(k, e)| Taint {
                            key: k.to_string(),
                            effect: e.to_string(),
                            value: None,
                            time_added: None,
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn taints_decide_placement_and_keeping() {
        let spec = PodSpec::default();
        assert_eq!(should_run(&spec, &node("a", &[], &[])), (true, true));
        // NoSchedule: no new pod, but a running one stays.
        assert_eq!(
            should_run(&spec, &node("a", &[], &[("dedicated", "NoSchedule")])),
            (false, true)
        );
        // NoExecute: neither.
        assert_eq!(
            should_run(&spec, &node("a", &[], &[("dedicated", "NoExecute")])),
            (false, false)
        );
        // PreferNoSchedule is ignored.
        assert_eq!(
            should_run(&spec, &node("a", &[], &[("x", "PreferNoSchedule")])),
            (true, true)
        );
        // The default tolerations cover cordoned and not-ready nodes.
        assert_eq!(
            should_run(
                &spec,
                &node(
                    "a",
                    &[],
                    &[
                        ("node.kubernetes.io/unschedulable", "NoSchedule"),
                        ("node.kubernetes.io/not-ready", "NoExecute")
                    ]
                )
            ),
            (true, true)
        );
        let tolerant = PodSpec {
            tolerations: Some(vec![Toleration {
                key: Some("dedicated".into()),
                operator: Some("Exists".into()),
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert_eq!(
            should_run(&tolerant, &node("a", &[], &[("dedicated", "NoExecute")])),
            (true, true)
        );
        // network-unavailable is tolerated only by hostNetwork pods.
        let n = node(
            "a",
            &[],
            &[("node.kubernetes.io/network-unavailable", "NoSchedule")],
        );
        assert_eq!(should_run(&spec, &n), (false, true));
        let host = PodSpec {
            host_network: Some(true),
            ..Default::default()
        };
        assert_eq!(should_run(&host, &n), (true, true));
    }

    #[test]
    fn selectors_affinity_and_node_name_decide_placement() {
        let spec = PodSpec {
            node_selector: Some([("disk".to_string(), "ssd".to_string())].into()),
            ..Default::default()
        };
        assert_eq!(
            should_run(&spec, &node("a", &[("disk", "ssd")], &[])),
            (true, true)
        );
        assert_eq!(
            should_run(&spec, &node("a", &[("disk", "hdd")], &[])),
            (false, false)
        );
        let pinned = PodSpec {
            affinity: Some(pin_to_node(None, "b")),
            ..Default::default()
        };
        assert_eq!(should_run(&pinned, &node("a", &[], &[])), (false, false));
        assert_eq!(should_run(&pinned, &node("b", &[], &[])), (true, true));
        let named = PodSpec {
            node_name: Some("b".into()),
            ..Default::default()
        };
        assert_eq!(should_run(&named, &node("a", &[], &[])), (false, false));
    }

    #[test]
    fn daemon_pods_are_pinned_labelled_and_tolerant() {
        let ds: DaemonSet = serde_json::from_value(json!({
            "metadata": {"name": "agent", "namespace": "d", "uid": "u", "generation": 4,
                "annotations": {"deprecated.daemonset.template.generation": "3"}},
            "spec": {"selector": {"matchLabels": {"app": "a"}},
                "template": {"metadata": {"labels": {"app": "a"}},
                    "spec": {"containers": [{"name": "c", "image": "i"}],
                        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                            {"nodeSelectorTerms": [{"matchExpressions": [
                                {"key": "k", "operator": "Exists"}]}]}}}}}}}))
        .unwrap();
        let t = pod_template_for(&ds, "h1", "node-1");
        let pod = Pod {
            metadata: t.metadata.clone().unwrap(),
            spec: t.spec.clone(),
            status: None,
        };
        assert_eq!(target_node(&pod).as_deref(), Some("node-1"));
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["metadata"]["labels"][REVISION_LABEL], "h1");
        assert_eq!(v["metadata"]["labels"][TEMPLATE_GENERATION_LABEL], "3");
        assert_eq!(
            v["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"],
            json!({"nodeSelectorTerms": [{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": ["node-1"]}]}]})
        );
        assert_eq!(v["spec"]["tolerations"].as_array().unwrap().len(), 6);
        assert!(is_updated(&pod, "h1", None));
        assert!(is_updated(&pod, "other", Some(3)));
        assert!(!is_updated(&pod, "other", Some(4)));
    }

    fn dpod(name: &str, hash: &str, ready: bool) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some([(REVISION_LABEL.to_string(), hash.to_string())].into()),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                phase: Some("Running".into()),
                conditions: ready.then(|| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(Time(jiff::Timestamp::UNIX_EPOCH)),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
        })
    }

    #[test]
    fn rolling_update_respects_max_unavailable_and_surge() {
        let now = jiff::Timestamp::now();
        let per_node: BTreeMap<String, Vec<Arc<Pod>>> = [
            ("a".to_string(), vec![dpod("pa", "old", true)]),
            ("b".to_string(), vec![dpod("pb", "old", true)]),
            ("c".to_string(), vec![dpod("pc", "new", false)]),
        ]
        .into();
        // c is updating and not yet available: with maxUnavailable 1 nothing more goes.
        assert_eq!(
            rolling_update(&per_node, "new", None, 0, 1, 0, now),
            UpdatePlan::default()
        );
        let plan = rolling_update(&per_node, "new", None, 0, 2, 0, now);
        assert_eq!(plan.delete, vec!["pa".to_string()]);
        // An unavailable old pod goes regardless of the budget.
        let mut m = per_node.clone();
        m.insert("b".into(), vec![dpod("pb", "old", false)]);
        assert_eq!(
            rolling_update(&m, "new", None, 0, 1, 0, now).delete,
            vec!["pb".to_string()]
        );
        // Surge: a new pod beside the old one, then the old one goes once the new is up.
        let one: BTreeMap<String, Vec<Arc<Pod>>> =
            [("a".to_string(), vec![dpod("pa", "old", true)])].into();
        assert_eq!(
            rolling_update(&one, "new", None, 1, 0, 0, now).surge,
            vec!["a".to_string()]
        );
        let both: BTreeMap<String, Vec<Arc<Pod>>> = [(
            "a".to_string(),
            vec![dpod("pa", "old", true), dpod("pa2", "new", true)],
        )]
        .into();
        assert_eq!(
            rolling_update(&both, "new", None, 1, 0, 0, now).delete,
            vec!["pa".to_string()]
        );
    }

    #[test]
    fn percentages_round_up() {
        assert_eq!(scaled(Some(&IntOrString::String("25%".into())), 3, 1), 1);
        assert_eq!(scaled(Some(&IntOrString::String("50%".into())), 3, 1), 2);
        assert_eq!(scaled(Some(&IntOrString::Int(2)), 3, 1), 2);
        assert_eq!(scaled(None, 3, 1), 1);
    }
}
