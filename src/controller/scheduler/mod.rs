//! The scheduler (kube-scheduler, identity `system:kube-scheduler`), shaped as upstream's
//! `pkg/scheduler`: one pod at a time from a queue ([`Ctx::schedule`], upstream's
//! `schedulingCycle`), filter plugins on a snapshot of every node and the pods on it
//! ([`filter`]), score plugins on the nodes that pass ([`score`]), preemption when none
//! does ([`preemption`]), then the binding ([`binding`]).
//!
//! Pods that fit nowhere wait in an unschedulable set (upstream's unschedulablePods) and
//! come back when something that could make room happens: a node added or changed
//! (labels, taints, allocatable, conditions, cordon), an assigned pod deleted or finished,
//! an assigned pod added (for pod affinity and spread), and every
//! `RKIND_SCHEDULER_UNSCHEDULABLE_FLUSH_SECONDS` (60 s by default, upstream's periodic
//! flush). Not yet: nominated pods reserving room on their node for later cycles, PDBs
//! in victim choice, namespaceSelector with labels in pod affinity terms, NodeName,
//! ImageLocality, volume plugins.

pub mod binding;
pub mod filter;
pub mod framework;
pub mod preemption;
pub mod score;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube_client::Api;
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::informer::{Cache, Change, Informer, ObjectKey, by_namespace, by_node};
use super::{Action, ControllerError, WorkQueue, run_workers, synced, watch_config};
use framework::{NO_NODES, PodInfo, Snapshot, Status, fit_error, terminal};
use preemption::Outcome;

/// The scheduler's name (pods naming another `schedulerName` are left alone).
pub const NAME: &str = "default-scheduler";

/// How often unschedulable pods are retried regardless of events.
fn flush_interval() -> Duration {
    let secs = std::env::var("RKIND_SCHEDULER_UNSCHEDULABLE_FLUSH_SECONDS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(60);
    Duration::from_secs(secs)
}

/// A pod waiting in the unschedulable set.
struct Waiting {
    /// What of the pod the last attempt saw (a change brings it back at once).
    signature: String,
    /// Whether pod affinity or spread rejected it (then new pods may help).
    by_pods: bool,
}

#[derive(Default)]
struct State {
    unschedulable: HashMap<ObjectKey, Waiting>,
    /// Pods bound by this scheduler that the cache does not show bound yet: uid → node.
    assumed: HashMap<String, String>,
    /// The scheduling-relevant part of every node last seen.
    nodes: HashMap<String, String>,
    /// Uids of the assigned, non-terminal pods seen.
    assigned: HashSet<String>,
}

struct Ctx {
    client: kube_client::Client,
    pods: Cache<Pod>,
    nodes: Cache<Node>,
    queue: Arc<WorkQueue<ObjectKey>>,
    state: Mutex<State>,
}

/// Whether `pod` waits for this scheduler (not bound, not finished or going, ours, and
/// without scheduling gates, upstream's SchedulingGates plugin).
fn pending(pod: &Pod) -> bool {
    let spec = pod.spec.as_ref();
    pod.metadata.deletion_timestamp.is_none()
        && !terminal(pod)
        && spec
            .and_then(|s| s.scheduling_gates.as_ref())
            .is_none_or(Vec::is_empty)
        && spec
            .and_then(|s| s.node_name.as_deref())
            .is_none_or(str::is_empty)
        && spec
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or(NAME)
            == NAME
}

fn bound_node(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// What of a pending pod a scheduling attempt depends on (not its status).
fn pod_signature(pod: &Pod) -> String {
    json!({"spec": pod.spec, "labels": pod.metadata.labels}).to_string()
}

/// What of a node the filters read (not the condition heartbeats).
fn node_signature(node: &Node) -> String {
    let conditions: Vec<(String, String)> = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .map(|c| (c.type_.clone(), c.status.clone()))
        .collect();
    json!({
        "labels": node.metadata.labels,
        "spec": node.spec,
        "allocatable": node.status.as_ref().and_then(|s| s.allocatable.as_ref()),
        "conditions": conditions,
    })
    .to_string()
}

/// Starts the scheduler; returns once its caches hold a first full list.
pub async fn start(
    client: kube_client::Client,
    shutdown: CancellationToken,
) -> Result<Vec<JoinHandle<()>>, ControllerError> {
    let mut pods: Informer<Pod> = Informer::new(
        Api::all(client.clone()),
        watch_config(),
        "pods",
        vec![by_namespace(), by_node()],
    );
    let mut nodes: Informer<Node> =
        Informer::new(Api::all(client.clone()), watch_config(), "nodes", vec![]);
    let mut pod_feed = pods.subscribe();
    let mut node_feed = nodes.subscribe();
    let queue = Arc::new(WorkQueue::new(shutdown.clone()));
    let ctx = Arc::new(Ctx {
        client,
        pods: pods.cache(),
        nodes: nodes.cache(),
        queue: queue.clone(),
        state: Mutex::new(State::default()),
    });
    let mut tasks = vec![
        tokio::spawn(pods.run(shutdown.clone())),
        tokio::spawn(nodes.run(shutdown.clone())),
    ];
    let c = ctx.clone();
    let stop = shutdown.clone();
    tasks.push(tokio::spawn(async move {
        let mut flush = tokio::time::interval(flush_interval());
        flush.tick().await;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                Some(ch) = pod_feed.recv() => c.pod_changed(ch),
                Some(ch) = node_feed.recv() => c.node_changed(ch),
                _ = flush.tick() => c.flush(false),
                else => return,
            }
        }
    }));
    let c = ctx.clone();
    tasks.push(tokio::spawn(run_workers("scheduler", queue, move |key| {
        let ctx = c.clone();
        async move { ctx.schedule(&key).await }
    })));
    synced(&ctx.nodes, "kube-scheduler", "nodes").await?;
    synced(&ctx.pods, "kube-scheduler", "pods").await?;
    Ok(tasks)
}

impl Ctx {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves unschedulable pods back to the queue (only those pods may help, if asked).
    fn flush(&self, only_by_pods: bool) {
        let st = self.state();
        for (k, w) in &st.unschedulable {
            if !only_by_pods || w.by_pods {
                self.queue.add(k.clone());
            }
        }
    }

    fn pod_changed(&self, ch: Change<Pod>) {
        let key = ObjectKey::of(ch.object().as_ref());
        let uid = ch.object().metadata.uid.clone().unwrap_or_default();
        match ch {
            Change::Applied(p) if pending(&p) => {
                let st = self.state();
                let same = st
                    .unschedulable
                    .get(&key)
                    .is_some_and(|w| w.signature == pod_signature(&p));
                if !same && !st.assumed.contains_key(&uid) {
                    self.queue.add(key);
                }
            }
            Change::Applied(p) => {
                let mut st = self.state();
                st.assumed.remove(&uid);
                st.unschedulable.remove(&key);
                let assigned = bound_node(&p).is_some();
                if assigned && !terminal(&p) {
                    if st.assigned.insert(uid) {
                        drop(st);
                        self.flush(true);
                    }
                } else if st.assigned.remove(&uid) {
                    drop(st);
                    self.flush(false);
                }
            }
            Change::Deleted(_) => {
                let mut st = self.state();
                st.assumed.remove(&uid);
                st.unschedulable.remove(&key);
                if st.assigned.remove(&uid) {
                    drop(st);
                    self.flush(false);
                }
            }
        }
    }

    fn node_changed(&self, ch: Change<Node>) {
        let name = ch.object().metadata.name.clone().unwrap_or_default();
        match ch {
            Change::Applied(n) => {
                let sig = node_signature(&n);
                let changed = self.state().nodes.insert(name, sig.clone()) != Some(sig);
                if changed {
                    self.flush(false);
                }
            }
            Change::Deleted(_) => {
                self.state().nodes.remove(&name);
            }
        }
    }

    /// One scheduling cycle for the pod at `key` (upstream's `scheduleOne`).
    async fn schedule(&self, key: &ObjectKey) -> Result<Action, kube_client::Error> {
        let Some(pod) = self.pods.get(key) else {
            return Ok(Action::Done);
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if !pending(&pod) || self.state().assumed.contains_key(&uid) {
            return Ok(Action::Done);
        }
        let snap = {
            let st = self.state();
            Snapshot::new(&self.nodes.list(), &self.pods.list(), &st.assumed)
        };
        let info = PodInfo::new(pod.clone());
        let span = tracing::debug_span!("scheduler_cycle", pod = %key);
        let (feasible, statuses) = span.in_scope(|| find_nodes(&info, &snap));
        if !feasible.is_empty() {
            let scores = score::score(&info, &feasible, &snap);
            let chosen = score::select(&scores)
                .map(|i| feasible[i])
                .unwrap_or(feasible[0]);
            let node = snap.nodes[chosen].name().to_string();
            self.state().assumed.insert(uid.clone(), node.clone());
            let span =
                tracing::debug_span!("scheduler_to_apiserver_bind", pod = %key, node = %node);
            if let Err(e) = binding::bind(&self.client, &pod, &node)
                .instrument(span)
                .await
            {
                self.state().assumed.remove(&uid);
                return Err(e);
            }
            return Ok(Action::Done);
        }
        let mut nominated = None;
        let message = if snap.nodes.is_empty() {
            NO_NODES.to_string()
        } else {
            match preemption::preempt(&info, &snap, &statuses) {
                Outcome::Preempt(c) => {
                    for v in &c.victims {
                        let span = tracing::debug_span!("scheduler_to_apiserver_preempt", pod = %key, node = %c.node);
                        binding::preempt_victim(&self.client, &v.pod, &info.pod, &c.node)
                            .instrument(span)
                            .await?;
                    }
                    nominated = Some(c.node);
                    fit_error(snap.nodes.len(), &statuses, "")
                }
                Outcome::NotPossible(msg) => fit_error(snap.nodes.len(), &statuses, &msg),
            }
        };
        let by_pods = statuses.iter().any(|(_, s)| {
            s.reasons.iter().any(|r| {
                r.contains("pod affinity")
                    || r.contains("anti-affinity")
                    || r.contains("topology spread")
            })
        });
        tracing::info!(pod = %key, %message, "pod is unschedulable");
        self.state().unschedulable.insert(
            key.clone(),
            Waiting {
                signature: pod_signature(&pod),
                by_pods,
            },
        );
        binding::unschedulable(&self.client, &pod, &message, nominated.as_deref()).await?;
        Ok(Action::Done)
    }
}

/// Runs the filters on every node: the feasible nodes' indexes and the others' statuses.
fn find_nodes(pod: &PodInfo, snap: &Snapshot) -> (Vec<usize>, Vec<(String, Status)>) {
    let mut feasible = Vec::new();
    let mut statuses = Vec::new();
    for (i, n) in snap.nodes.iter().enumerate() {
        match filter::run(pod, n, snap) {
            Ok(()) => feasible.push(i),
            Err(s) => statuses.push((n.name().to_string(), s)),
        }
    }
    (feasible, statuses)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::filter::tests::{node, pod, snap};
    use super::*;

    #[test]
    fn a_pod_too_large_for_every_node_gets_upstreams_message() {
        let s = snap(
            vec![
                node(
                    "cp",
                    &[],
                    json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]),
                    "2",
                ),
                node("w", &[], json!([]), "2"),
            ],
            vec![],
        );
        let p = PodInfo::new(Arc::new(pod(
            "big",
            json!({}),
            json!({"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "3"}}}]}),
        )));
        let (feasible, statuses) = find_nodes(&p, &s);
        assert!(feasible.is_empty());
        let Outcome::NotPossible(post) = preemption::preempt(&p, &s, &statuses) else {
            panic!("no victims exist");
        };
        assert_eq!(
            fit_error(2, &statuses, &post),
            "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint \
             {node-role.kubernetes.io/control-plane: }. preemption: 0/2 nodes are available: \
             1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn signatures_ignore_status_and_heartbeats() {
        let mut p = pod("p", json!({}), json!({}));
        let before = pod_signature(&p);
        p.status = Some(Default::default());
        assert_eq!(before, pod_signature(&p));
        let mut n = node("n", &[], json!([]), "2");
        let before = node_signature(&n);
        n.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].last_heartbeat_time = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Default::default()),
        );
        assert_eq!(before, node_signature(&n));
        n.spec.as_mut().unwrap().unschedulable = Some(true);
        assert_ne!(before, node_signature(&n));
    }
}
