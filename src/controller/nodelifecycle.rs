//! The part of kube-controller-manager's node lifecycle controller that taints nodes by
//! condition (upstream's `doNoScheduleTaintingPass`, TaintNodesByCondition): a cordoned
//! node gets `node.kubernetes.io/unschedulable:NoSchedule`, a node whose Ready condition
//! is False (or missing) `node.kubernetes.io/not-ready:NoSchedule`, Unknown
//! `node.kubernetes.io/unreachable:NoSchedule`, and the pressure conditions theirs; each
//! goes away with its cause. Not yet: the heartbeat monitor (marking a silent node
//! Unknown after the grace period) and the NoExecute not-ready/unreachable taints of
//! taint-based eviction.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Taint};
use kube_client::Api;
use kube_client::api::PostParams;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::informer::{Cache, Change, Informer, ObjectKey};
use super::{Action, WorkQueue, code, run_workers};

/// The taint of a node whose Ready condition is False.
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
/// The taint of a node whose Ready condition is Unknown.
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// The taint of a cordoned node.
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// Condition (type, status) → the NoSchedule taint it implies (upstream's
/// `nodeConditionToTaintKeyStatusMap`).
const CONDITION_TAINTS: &[(&str, &str, &str)] = &[
    ("Ready", "False", NOT_READY),
    ("Ready", "Unknown", UNREACHABLE),
    (
        "MemoryPressure",
        "True",
        "node.kubernetes.io/memory-pressure",
    ),
    ("DiskPressure", "True", "node.kubernetes.io/disk-pressure"),
    (
        "NetworkUnavailable",
        "True",
        "node.kubernetes.io/network-unavailable",
    ),
    ("PIDPressure", "True", "node.kubernetes.io/pid-pressure"),
];

/// The NoSchedule taint keys this controller wants on `node`.
pub fn wanted(node: &Node) -> Vec<&'static str> {
    let mut keys = Vec::new();
    if node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
    {
        keys.push(UNSCHEDULABLE);
    }
    let conditions = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or(&[]);
    if !conditions.iter().any(|c| c.type_ == "Ready") {
        keys.push(NOT_READY);
    }
    for c in conditions {
        for (ty, status, key) in CONDITION_TAINTS {
            if c.type_ == *ty && c.status == *status {
                keys.push(key);
            }
        }
    }
    keys
}

fn managed(t: &Taint) -> bool {
    t.effect == "NoSchedule"
        && (t.key == UNSCHEDULABLE || CONDITION_TAINTS.iter().any(|(_, _, k)| *k == t.key))
}

/// The node's taints with the managed NoSchedule ones made to match `wanted`; `None`
/// when nothing changes.
pub fn reconcile_taints(node: &Node) -> Option<Vec<Taint>> {
    let have = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let want = wanted(node);
    let mut out: Vec<Taint> = have
        .iter()
        .filter(|t| !managed(t) || want.contains(&t.key.as_str()))
        .cloned()
        .collect();
    for key in &want {
        if !out
            .iter()
            .any(|t| t.key == *key && t.effect == "NoSchedule")
        {
            out.push(Taint {
                key: (*key).to_string(),
                effect: "NoSchedule".into(),
                ..Default::default()
            });
        }
    }
    (out != have).then_some(out)
}

/// The controller, wired to the node informer.
pub struct Controller {
    ctx: Arc<Ctx>,
    feed: mpsc::Receiver<Change<Node>>,
    shutdown: CancellationToken,
}

struct Ctx {
    client: kube_client::Client,
    nodes: Cache<Node>,
    queue: Arc<WorkQueue<ObjectKey>>,
}

impl Controller {
    /// Subscribes to `nodes`.
    pub fn new(
        client: kube_client::Client,
        nodes: &mut Informer<Node>,
        shutdown: CancellationToken,
    ) -> Self {
        Controller {
            ctx: Arc::new(Ctx {
                client,
                nodes: nodes.cache(),
                queue: Arc::new(WorkQueue::new(shutdown.clone())),
            }),
            feed: nodes.subscribe(),
            shutdown,
        }
    }

    /// Runs the trigger and the worker.
    pub fn start(self) -> Vec<JoinHandle<()>> {
        let Controller {
            ctx,
            mut feed,
            shutdown,
        } = self;
        let q = ctx.queue.clone();
        let mut tasks = vec![tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    Some(ch) = feed.recv() => if let Change::Applied(n) = ch {
                        q.add(ObjectKey::of(n.as_ref()));
                    },
                    else => return,
                }
            }
        })];
        let queue = ctx.queue.clone();
        tasks.push(tokio::spawn(run_workers(
            "nodelifecycle",
            queue,
            move |key: ObjectKey| {
                let ctx = ctx.clone();
                async move { ctx.sync(&key).await }
            },
        )));
        tasks
    }
}

impl Ctx {
    async fn sync(&self, key: &ObjectKey) -> Result<Action, kube_client::Error> {
        let Some(node) = self.nodes.get(key) else {
            return Ok(Action::Done);
        };
        let Some(taints) = reconcile_taints(&node) else {
            return Ok(Action::Done);
        };
        let mut updated = (*node).clone();
        updated.spec.get_or_insert_with(Default::default).taints =
            (!taints.is_empty()).then_some(taints);
        let api: Api<Node> = Api::all(self.client.clone());
        let span = tracing::debug_span!("controller_to_apiserver_taint_node", node = %key.name);
        match api
            .replace(&key.name, &PostParams::default(), &updated)
            .instrument(span)
            .await
        {
            Ok(_) => Ok(Action::Done),
            // A newer node is on its way through the informer, or the node is gone.
            Err(e) if matches!(code(&e), 409 | 404) => Ok(Action::Done),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn node(v: serde_json::Value) -> Node {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn cordon_and_conditions_add_and_remove_their_taints_only() {
        let n = node(
            json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true,
            "taints": [{"key": "own", "effect": "NoExecute"}]},
            "status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
        );
        let keys: Vec<String> = reconcile_taints(&n)
            .unwrap()
            .into_iter()
            .map(|t| format!("{}:{}", t.key, t.effect))
            .collect();
        assert_eq!(
            keys,
            [
                "own:NoExecute",
                "node.kubernetes.io/unschedulable:NoSchedule",
                "node.kubernetes.io/not-ready:NoSchedule"
            ]
        );
        let healed = node(json!({"metadata": {"name": "n"}, "spec": {"taints": [
            {"key": "own", "effect": "NoExecute"},
            {"key": UNSCHEDULABLE, "effect": "NoSchedule"},
            {"key": NOT_READY, "effect": "NoSchedule"}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}));
        let t = reconcile_taints(&healed).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].key, "own");
        let steady = node(json!({"metadata": {"name": "n"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}));
        assert!(reconcile_taints(&steady).is_none());
    }
}
