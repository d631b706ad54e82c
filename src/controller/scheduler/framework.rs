//! The scheduling framework's data (upstream's `framework.NodeInfo`, `Status`, `FitError`):
//! a snapshot of every node with the pods on it, filter statuses, and the message a pod
//! that fits nowhere gets.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Taint};

use crate::apiserver::admission::quantity::{self, Quantity, ResourceList};

/// Upstream's `NoNodeAvailableMsg` prefix.
const NO_NODE_AVAILABLE: &str = "nodes are available";
/// Upstream's `ErrNoNodesAvailable`.
pub const NO_NODES: &str = "no nodes available to schedule pods";

/// How a filter rejects a node (upstream's status codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Removing pods from the node (preemption) might help.
    Unschedulable,
    /// Preemption cannot help on this node.
    UnschedulableAndUnresolvable,
}

/// A filter's rejection with its reasons (a plugin may give several, as NodeResourcesFit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Whether preemption may help.
    pub code: Code,
    /// The reasons, as upstream words them.
    pub reasons: Vec<String>,
}

impl Status {
    /// A rejection preemption may resolve.
    pub fn unschedulable(reason: impl Into<String>) -> Status {
        Status {
            code: Code::Unschedulable,
            reasons: vec![reason.into()],
        }
    }

    /// A rejection preemption cannot resolve.
    pub fn unresolvable(reason: impl Into<String>) -> Status {
        Status {
            code: Code::UnschedulableAndUnresolvable,
            reasons: vec![reason.into()],
        }
    }
}

/// What the scheduler needs of one pod, computed once.
#[derive(Debug, Clone)]
pub struct PodInfo {
    /// The pod.
    pub pod: Arc<Pod>,
    /// `PodRequests` with overhead (what NodeResourcesFit compares).
    pub requests: ResourceList,
}

impl PodInfo {
    /// The pod with its requests summed.
    pub fn new(pod: Arc<Pod>) -> PodInfo {
        let spec = pod
            .spec
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok())
            .unwrap_or_default();
        let requests = quantity::pod_total(&spec, "requests", true);
        PodInfo { pod, requests }
    }

    /// `spec.priority` (0 where unset, as upstream's `corev1helpers.PodPriority`).
    pub fn priority(&self) -> i32 {
        priority(&self.pod)
    }

    /// The pod's namespace.
    pub fn namespace(&self) -> &str {
        self.pod.metadata.namespace.as_deref().unwrap_or("default")
    }

    /// The pod's labels.
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.pod.metadata.labels.clone().unwrap_or_default()
    }
}

/// A pod's priority (0 where unset).
pub fn priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

/// One node and the pods the scheduler counts on it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// The node.
    pub node: Arc<Node>,
    /// Pods bound (or assumed bound) to it, not terminal.
    pub pods: Vec<PodInfo>,
    /// The sum of their requests.
    pub requested: ResourceList,
}

impl NodeInfo {
    /// A node with no pods yet.
    pub fn new(node: Arc<Node>) -> NodeInfo {
        NodeInfo {
            node,
            pods: Vec::new(),
            requested: ResourceList::new(),
        }
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        self.node.metadata.name.as_deref().unwrap_or("")
    }

    /// The node's labels.
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.node.metadata.labels.clone().unwrap_or_default()
    }

    /// One label of the node.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.node
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(key))
            .map(String::as_str)
    }

    /// `status.allocatable`.
    pub fn allocatable(&self) -> ResourceList {
        self.node
            .status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref())
            .map(|a| {
                a.iter()
                    .filter_map(|(k, q)| Quantity::parse(&q.0).ok().map(|q| (k.clone(), q)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Adds a pod (as upstream's `NodeInfo.AddPod`).
    pub fn add_pod(&mut self, pod: PodInfo) {
        self.requested = quantity::add(&self.requested, &pod.requests);
        self.pods.push(pod);
    }

    /// Removes the pod with `uid`; whether it was there.
    pub fn remove_pod(&mut self, uid: &str) -> bool {
        let Some(i) = self
            .pods
            .iter()
            .position(|p| p.pod.metadata.uid.as_deref() == Some(uid))
        else {
            return false;
        };
        let p = self.pods.remove(i);
        self.requested = quantity::subtract_non_negative(&self.requested, &p.requests);
        true
    }

    /// The taints the filters see: the node's own, plus upstream's not-ready/unreachable
    /// NoSchedule taint for a node whose Ready condition is not True while the node
    /// lifecycle controller has not tainted it yet (so a fresh node never takes pods
    /// that do not tolerate its state).
    pub fn taints(&self) -> Vec<Taint> {
        let mut taints = self
            .node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        let ready = self
            .node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.status.as_str());
        let implied = match ready {
            Some("True") => None,
            Some("Unknown") => Some(crate::controller::nodelifecycle::UNREACHABLE),
            _ => Some(crate::controller::nodelifecycle::NOT_READY),
        };
        if let Some(key) = implied
            && !taints
                .iter()
                .any(|t| t.key == key && t.effect == "NoSchedule")
        {
            taints.push(Taint {
                key: key.to_string(),
                effect: "NoSchedule".into(),
                ..Default::default()
            });
        }
        taints
    }
}

/// Every node with its pods, as one scheduling cycle sees them.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The nodes, in name order.
    pub nodes: Vec<NodeInfo>,
}

impl Snapshot {
    /// Builds the snapshot from nodes and pods; `assumed` names pods bound by this
    /// scheduler that the pod cache does not show bound yet (uid → node).
    pub fn new(nodes: &[Arc<Node>], pods: &[Arc<Pod>], assumed: &HashMap<String, String>) -> Self {
        let mut infos: Vec<NodeInfo> = nodes.iter().map(|n| NodeInfo::new(n.clone())).collect();
        infos.sort_by(|a, b| a.name().cmp(b.name()));
        let index: HashMap<String, usize> = infos
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name().to_string(), i))
            .collect();
        for p in pods {
            if terminal(p) {
                continue;
            }
            let bound = p
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .filter(|n| !n.is_empty())
                .or_else(|| {
                    p.metadata
                        .uid
                        .as_ref()
                        .and_then(|u| assumed.get(u))
                        .cloned()
                });
            if let Some(i) = bound.and_then(|n| index.get(&n).copied()) {
                infos[i].add_pod(PodInfo::new(p.clone()));
            }
        }
        Snapshot { nodes: infos }
    }

    /// The node named `name`.
    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.nodes.iter().find(|n| n.name() == name)
    }
}

/// Whether a pod has finished (its resources are free).
pub fn terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Upstream's `FitError.Error()`: `0/N nodes are available: <count reason>, ... .`, the
/// reasons counted over nodes and sorted as strings, then the post-filter (preemption)
/// message.
pub fn fit_error(num_nodes: usize, statuses: &[(String, Status)], post_filter: &str) -> String {
    let mut msg = format!("0/{num_nodes} {NO_NODE_AVAILABLE}:");
    let mut hist: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, s) in statuses {
        for r in &s.reasons {
            *hist.entry(r.as_str()).or_default() += 1;
        }
    }
    let mut reasons: Vec<String> = hist.iter().map(|(r, n)| format!("{n} {r}")).collect();
    reasons.sort();
    msg.push_str(&format!(" {}.", reasons.join(", ")));
    if !post_filter.is_empty() {
        msg.push_str(&format!(" {post_filter}"));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_error_counts_and_sorts_reasons_then_the_preemption_message() {
        let statuses = vec![
            (
                "a".to_string(),
                Status::unresolvable("node(s) didn't match Pod's node affinity/selector"),
            ),
            (
                "b".to_string(),
                Status::unresolvable(
                    "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }",
                ),
            ),
        ];
        let pre = vec![
            (
                "a".to_string(),
                Status::unresolvable("Preemption is not helpful for scheduling"),
            ),
            (
                "b".to_string(),
                Status::unresolvable("Preemption is not helpful for scheduling"),
            ),
        ];
        let post = format!("preemption: {}", fit_error(2, &pre, ""));
        assert_eq!(
            fit_error(2, &statuses, &post),
            "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, \
             1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }. \
             preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn fit_error_counts_every_reason_of_a_node() {
        let s = Status {
            code: Code::Unschedulable,
            reasons: vec!["Insufficient cpu".into(), "Insufficient memory".into()],
        };
        let statuses = vec![("a".to_string(), s.clone()), ("b".to_string(), s)];
        assert_eq!(
            fit_error(2, &statuses, ""),
            "0/2 nodes are available: 2 Insufficient cpu, 2 Insufficient memory."
        );
    }
}
