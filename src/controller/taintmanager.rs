//! kube-controller-manager's taint eviction controller (upstream's
//! `pkg/controller/tainteviction`): a pod on a node with NoExecute taints it does not
//! tolerate is deleted at once; one tolerating them all with a `tolerationSeconds` limit
//! is deleted when the shortest limit runs out (counted from when this controller first
//! saw the pod under the taints), unless the taints go first. Each deletion gets the
//! DisruptionTarget condition (reason DeletionByTaintManager) and a
//! `TaintManagerEviction` Event.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use kube_client::Api;
use kube_client::api::{DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::events::record_event_kube;
use super::informer::{BY_NODE, Cache, Change, Informer, ObjectKey};
use super::scheduler::filter::tolerates;
use super::{Action, WorkQueue, code, run_workers};
use crate::apiserver::defaults::now_rfc3339;

/// The component its Events name (upstream's).
pub const COMPONENT: &str = "taint-eviction-controller";

/// What the taints ask for a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No NoExecute taint applies, or every one is tolerated forever.
    Keep,
    /// An untolerated NoExecute taint (or a limit of zero): delete now.
    EvictNow,
    /// Every taint tolerated, the shortest limit this long.
    EvictAfter(Duration),
}

/// Upstream's `getMinTolerationTime` over the tolerations that tolerate the NoExecute
/// taints (the first matching toleration per taint).
pub fn verdict(pod: &Pod, taints: &[Taint]) -> Verdict {
    let taints: Vec<&Taint> = taints.iter().filter(|t| t.effect == "NoExecute").collect();
    if taints.is_empty() {
        return Verdict::Keep;
    }
    let tols = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[]);
    let mut min: Option<i64> = None;
    for t in taints {
        let Some(tol) = tols.iter().find(|x| tolerates(x, t)) else {
            return Verdict::EvictNow;
        };
        if let Some(s) = tol.toleration_seconds {
            min = Some(min.map_or(s, |m| m.min(s)));
        }
    }
    match min {
        None => Verdict::Keep,
        Some(s) if s <= 0 => Verdict::EvictNow,
        Some(s) => Verdict::EvictAfter(Duration::from_secs(s as u64)),
    }
}

fn no_execute_signature(node: &Node) -> String {
    let taints: Vec<&Taint> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .filter(|t| t.effect == "NoExecute")
        .collect();
    json!(taints).to_string()
}

/// The controller, wired to the shared pod informer and the node informer.
pub struct Controller {
    ctx: Arc<Ctx>,
    pod_feed: mpsc::Receiver<Change<Pod>>,
    node_feed: mpsc::Receiver<Change<Node>>,
    shutdown: CancellationToken,
}

struct Ctx {
    client: kube_client::Client,
    pods: Cache<Pod>,
    nodes: Cache<Node>,
    queue: Arc<WorkQueue<ObjectKey>>,
    /// When each pod with a pending timed eviction was first seen under its taints.
    since: Mutex<HashMap<String, Instant>>,
    /// Each node's NoExecute taints last seen.
    seen: Mutex<HashMap<String, String>>,
}

impl Controller {
    /// Subscribes to `pods` (indexed by node) and `nodes`.
    pub fn new(
        client: kube_client::Client,
        pods: &mut Informer<Pod>,
        nodes: &mut Informer<Node>,
        shutdown: CancellationToken,
    ) -> Self {
        Controller {
            ctx: Arc::new(Ctx {
                client,
                pods: pods.cache(),
                nodes: nodes.cache(),
                queue: Arc::new(WorkQueue::new(shutdown.clone())),
                since: Mutex::default(),
                seen: Mutex::default(),
            }),
            pod_feed: pods.subscribe(),
            node_feed: nodes.subscribe(),
            shutdown,
        }
    }

    /// Runs the triggers and the worker.
    pub fn start(self) -> Vec<JoinHandle<()>> {
        let Controller {
            ctx,
            mut pod_feed,
            mut node_feed,
            shutdown,
        } = self;
        let c = ctx.clone();
        let mut tasks = vec![tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    Some(ch) = pod_feed.recv() => match ch {
                        Change::Applied(p) => {
                            if p.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| !n.is_empty()) {
                                c.queue.add(ObjectKey::of(p.as_ref()));
                            }
                        }
                        Change::Deleted(p) => {
                            let uid = p.metadata.uid.clone().unwrap_or_default();
                            c.since.lock().unwrap_or_else(|e| e.into_inner()).remove(&uid);
                        }
                    },
                    Some(ch) = node_feed.recv() => c.node_changed(ch),
                    else => return,
                }
            }
        })];
        let queue = ctx.queue.clone();
        tasks.push(tokio::spawn(run_workers(
            "taint-eviction",
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
    fn node_changed(&self, ch: Change<Node>) {
        let name = ch.object().metadata.name.clone().unwrap_or_default();
        let Change::Applied(n) = ch else {
            self.seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&name);
            return;
        };
        let sig = no_execute_signature(&n);
        let changed = self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.clone(), sig.clone())
            != Some(sig);
        if changed {
            for p in self.pods.by_index(BY_NODE, &name) {
                self.queue.add(ObjectKey::of(p.as_ref()));
            }
        }
    }

    async fn sync(&self, key: &ObjectKey) -> Result<Action, kube_client::Error> {
        let Some(pod) = self.pods.get(key) else {
            return Ok(Action::Done);
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .and_then(|n| self.nodes.get(&ObjectKey::new("", n)));
        let finished = matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        );
        let (Some(node), false, false) =
            (node, finished, pod.metadata.deletion_timestamp.is_some())
        else {
            self.forget(&uid);
            return Ok(Action::Done);
        };
        let taints = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        match verdict(&pod, &taints) {
            Verdict::Keep => {
                if self.forget(&uid) {
                    self.event(&pod, "Cancelling deletion of Pod").await;
                }
                Ok(Action::Done)
            }
            Verdict::EvictNow => self.evict(&pod).await,
            Verdict::EvictAfter(limit) => {
                let since = *self
                    .since
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(uid)
                    .or_insert_with(Instant::now);
                let left = (since + limit).saturating_duration_since(Instant::now());
                if left.is_zero() {
                    self.evict(&pod).await
                } else {
                    Ok(Action::RequeueAfter(left))
                }
            }
        }
    }

    /// Drops a pending timed eviction; whether there was one.
    fn forget(&self, uid: &str) -> bool {
        self.since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid)
            .is_some()
    }

    async fn event(&self, pod: &Pod, what: &str) {
        let mut obj = serde_json::to_value(pod).unwrap_or_default();
        obj["apiVersion"] = json!("v1");
        obj["kind"] = json!("Pod");
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let name = pod.metadata.name.as_deref().unwrap_or("");
        record_event_kube(
            &self.client,
            &obj,
            "Normal",
            "TaintManagerEviction",
            &format!("{what} {ns}/{name}"),
            COMPONENT,
        )
        .await;
    }

    /// Upstream's `addConditionAndDeletePod`, after the Event.
    async fn evict(&self, pod: &Pod) -> Result<Action, kube_client::Error> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let name = pod.metadata.name.as_deref().unwrap_or("");
        let span = tracing::debug_span!("controller_to_apiserver_taint_evict", pod = %name);
        async {
            self.event(pod, "Marking for deletion Pod").await;
            let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
            let patch = json!({"status": {"conditions": [{
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "DeletionByTaintManager",
                "message": "Taint manager: deleting due to NoExecute taint",
                "lastTransitionTime": now_rfc3339(),
            }]}});
            match api
                .patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
                .await
            {
                Ok(_) => {}
                Err(e) if code(&e) == 404 => return Ok(Action::Done),
                Err(e) => return Err(e),
            }
            let dp = DeleteParams {
                preconditions: pod.metadata.uid.clone().map(|uid| Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match api.delete(name, &dp).await {
                Ok(_) => Ok(Action::Done),
                Err(e) if matches!(code(&e), 404 | 409) => Ok(Action::Done),
                Err(e) => Err(e),
            }
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(tols: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c"}], "tolerations": tols}}))
        .unwrap()
    }

    fn taints(v: serde_json::Value) -> Vec<Taint> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn verdicts_follow_tolerations_and_the_shortest_limit() {
        let t = taints(
            json!([{"key": "a", "effect": "NoExecute"}, {"key": "b", "effect": "NoExecute"},
            {"key": "c", "effect": "NoSchedule"}]),
        );
        assert_eq!(verdict(&pod(json!([])), &t), Verdict::EvictNow);
        assert_eq!(
            verdict(&pod(json!([{"key": "a", "operator": "Exists"}])), &t),
            Verdict::EvictNow
        );
        assert_eq!(
            verdict(&pod(json!([{"operator": "Exists"}])), &t),
            Verdict::Keep
        );
        assert_eq!(
            verdict(
                &pod(json!([
                    {"key": "a", "operator": "Exists", "tolerationSeconds": 30},
                    {"key": "b", "operator": "Exists", "tolerationSeconds": 5}
                ])),
                &t
            ),
            Verdict::EvictAfter(Duration::from_secs(5))
        );
        assert_eq!(
            verdict(
                &pod(json!([{"operator": "Exists", "tolerationSeconds": 0}])),
                &t
            ),
            Verdict::EvictNow
        );
        let only_no_schedule = taints(json!([{"key": "c", "effect": "NoSchedule"}]));
        assert_eq!(verdict(&pod(json!([])), &only_no_schedule), Verdict::Keep);
    }
}
