//! The scheduler: binds every unscheduled pod to a Ready node through the `binding`
//! subresource, as kube-scheduler does. Pending pods come from an informer of pods with
//! no `spec.nodeName`; node state comes from a node informer's cache (no request per pod).

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube_client::Api;
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::events::record_event_kube;
use super::informer::{Cache, Change, Informer, ObjectKey, by_namespace, by_owner};
use super::{
    Action, ControllerError, WorkQueue, code, post_json, run_workers, synced, watch_config,
};

/// The scheduler's name (pods naming another `schedulerName` are left alone).
pub const NAME: &str = "default-scheduler";

struct Ctx {
    client: kube_client::Client,
    pods: Cache<Pod>,
    nodes: Cache<Node>,
}

/// Whether `node` can take pods: Ready and not cordoned.
fn schedulable(node: &Node) -> bool {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let cordoned = node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    ready && !cordoned
}

/// The first schedulable node by name, from the cache.
fn pick_node(nodes: &Cache<Node>) -> Option<String> {
    let mut names: Vec<String> = nodes
        .list()
        .iter()
        .filter(|n| schedulable(n))
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    names.sort();
    names.into_iter().next()
}

/// Starts the scheduler; returns once its caches hold a first full list.
pub async fn start(
    client: kube_client::Client,
    shutdown: CancellationToken,
) -> Result<Vec<JoinHandle<()>>, ControllerError> {
    let mut pods: Informer<Pod> = Informer::new(
        Api::all(client.clone()),
        watch_config().fields("spec.nodeName="),
        "pods",
        vec![by_namespace(), by_owner()],
    );
    let mut nodes: Informer<Node> =
        Informer::new(Api::all(client.clone()), watch_config(), "nodes", vec![]);
    let mut pod_feed = pods.subscribe();
    let mut node_feed = nodes.subscribe();
    let ctx = Arc::new(Ctx {
        client,
        pods: pods.cache(),
        nodes: nodes.cache(),
    });
    let queue = Arc::new(WorkQueue::new(shutdown.clone()));
    let mut tasks = vec![
        tokio::spawn(pods.run(shutdown.clone())),
        tokio::spawn(nodes.run(shutdown.clone())),
    ];
    let q = queue.clone();
    let c = ctx.clone();
    let stop = shutdown.clone();
    tasks.push(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                Some(ch) = pod_feed.recv() => if let Change::Applied(p) = ch {
                    q.add(ObjectKey::of(p.as_ref()));
                },
                // A node that can take pods now: every pending pod gets another try.
                Some(ch) = node_feed.recv() => if let Change::Applied(n) = ch
                    && schedulable(&n)
                {
                    for p in c.pods.list() {
                        q.add(ObjectKey::of(p.as_ref()));
                    }
                },
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
    async fn schedule(&self, key: &ObjectKey) -> Result<Action, kube_client::Error> {
        let Some(pod) = self.pods.get(key) else {
            return Ok(Action::Done);
        };
        let spec = pod.spec.as_ref();
        if pod.metadata.deletion_timestamp.is_some()
            || spec
                .and_then(|s| s.node_name.as_deref())
                .is_some_and(|n| !n.is_empty())
            || spec
                .and_then(|s| s.scheduler_name.as_deref())
                .unwrap_or(NAME)
                != NAME
        {
            return Ok(Action::Done);
        }
        let Some(node) = pick_node(&self.nodes) else {
            // A node turning Ready brings every pending pod back.
            tracing::info!(pod = %key, "no Ready node to schedule on yet");
            return Ok(Action::Done);
        };
        let (ns, name) = (&key.namespace, &key.name);
        let binding = json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": ns},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        });
        let path = format!("/api/v1/namespaces/{ns}/pods/{name}/binding");
        match post_json(&self.client, &path, &binding).await {
            Ok(_) => {
                let obj = serde_json::to_value(pod.as_ref()).unwrap_or_default();
                record_event_kube(
                    &self.client,
                    &obj,
                    "Normal",
                    "Scheduled",
                    &format!("Successfully assigned {ns}/{name} to {node}"),
                    NAME,
                )
                .await;
                Ok(Action::Done)
            }
            // Bound by someone else meanwhile, or gone.
            Err(e) if matches!(code(&e), 409 | 404) => Ok(Action::Done),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeCondition, NodeSpec, NodeStatus};

    fn node(ready: &str, cordoned: bool) -> Node {
        Node {
            spec: Some(NodeSpec {
                unschedulable: Some(cordoned),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: ready.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn only_ready_uncordoned_nodes_take_pods() {
        assert!(schedulable(&node("True", false)));
        assert!(!schedulable(&node("False", false)));
        assert!(!schedulable(&node("True", true)));
        assert!(!schedulable(&Node::default()));
    }
}
