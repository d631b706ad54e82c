//! Filter plugins (upstream's `framework/plugins/*` Filter extension points), run in
//! upstream's default order; the first that rejects a node gives its status.

use std::collections::{BTreeMap, HashMap, HashSet};

use k8s_openapi::api::core::v1::{
    NodeSelectorRequirement, NodeSelectorTerm, Pod, PodAffinityTerm, Taint, Toleration,
    TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::framework::{NodeInfo, PodInfo, Snapshot, Status};

/// NodeUnschedulable's reason.
pub const ERR_UNSCHEDULABLE: &str = "node(s) were unschedulable";
/// NodeAffinity's reason (nodeSelector and required affinity alike).
pub const ERR_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
/// NodePorts' reason.
pub const ERR_NODE_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";
/// InterPodAffinity: required affinity not met.
pub const ERR_AFFINITY: &str = "node(s) didn't match pod affinity rules";
/// InterPodAffinity: the pod's own anti-affinity not met.
pub const ERR_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
/// InterPodAffinity: an existing pod's anti-affinity forbids the node.
pub const ERR_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";
/// PodTopologySpread: the skew would exceed maxSkew.
pub const ERR_SPREAD: &str = "node(s) didn't match pod topology spread constraints";
/// PodTopologySpread: the node lacks a constraint's topology key.
pub const ERR_SPREAD_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
/// The taint a cordoned node is treated as having.
pub const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

/// Runs every filter on `node` for `pod` (upstream's `RunFilterPlugins`).
pub fn run(pod: &PodInfo, node: &NodeInfo, snap: &Snapshot) -> Result<(), Status> {
    node_unschedulable(pod, node)?;
    taint_toleration(pod, node)?;
    node_affinity(pod, node)?;
    node_ports(pod, node)?;
    node_resources_fit(pod, node)?;
    pod_topology_spread(pod, node, snap)?;
    inter_pod_affinity(pod, node, snap)?;
    Ok(())
}

fn tolerations(pod: &Pod) -> &[Toleration] {
    pod.spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[])
}

/// Upstream's `Toleration.ToleratesTaint`.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    let effect = t.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = t.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

/// Whether any of `tols` tolerates `taint`.
pub fn tolerated(tols: &[Toleration], taint: &Taint) -> bool {
    tols.iter().any(|t| tolerates(t, taint))
}

/// NodeUnschedulable: a cordoned node takes only pods tolerating its unschedulable taint.
fn node_unschedulable(pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    let cordoned = node
        .node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    let taint = Taint {
        key: UNSCHEDULABLE_TAINT.into(),
        effect: "NoSchedule".into(),
        ..Default::default()
    };
    if cordoned && !tolerated(tolerations(&pod.pod), &taint) {
        return Err(Status::unresolvable(ERR_UNSCHEDULABLE));
    }
    Ok(())
}

/// TaintToleration: the first NoSchedule/NoExecute taint the pod does not tolerate.
fn taint_toleration(pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    let tols = tolerations(&pod.pod);
    for t in node.taints() {
        if (t.effect == "NoSchedule" || t.effect == "NoExecute") && !tolerated(tols, &t) {
            return Err(Status::unresolvable(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                t.key,
                t.value.as_deref().unwrap_or("")
            )));
        }
    }
    Ok(())
}

/// One node selector requirement against `labels` (upstream's `nodeaffinity`).
fn requirement_matches(r: &NodeSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let values = r.values.as_deref().unwrap_or(&[]);
    let have = labels.get(&r.key);
    match r.operator.as_str() {
        "In" => have.is_some_and(|v| values.contains(v)),
        "NotIn" => !have.is_some_and(|v| values.contains(v)),
        "Exists" => have.is_some(),
        "DoesNotExist" => have.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                have.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// A node selector term: every expression on labels and every field expression match;
/// an empty term matches nothing.
pub fn term_matches(term: &NodeSelectorTerm, node: &NodeInfo) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = node.labels();
    let field_set: BTreeMap<String, String> =
        [("metadata.name".to_string(), node.name().to_string())].into();
    exprs.iter().all(|r| requirement_matches(r, &labels))
        && fields.iter().all(|r| requirement_matches(r, &field_set))
}

/// Whether `node` satisfies the pod's nodeSelector and required node affinity.
pub fn matches_node_selector_and_affinity(pod: &Pod, node: &NodeInfo) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return true;
    };
    if let Some(sel) = &spec.node_selector {
        let labels = node.labels();
        if !sel.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return false;
        }
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    match required {
        Some(r) => r.node_selector_terms.iter().any(|t| term_matches(t, node)),
        None => true,
    }
}

/// NodeAffinity (with nodeSelector).
fn node_affinity(pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    if matches_node_selector_and_affinity(&pod.pod, node) {
        Ok(())
    } else {
        Err(Status::unresolvable(ERR_NODE_AFFINITY))
    }
}

/// The host ports a pod asks for: (protocol, host IP, port).
fn host_ports(pod: &Pod) -> Vec<(String, String, i32)> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port.filter(|h| *h > 0)?;
            let ip = p
                .host_ip
                .clone()
                .filter(|i| !i.is_empty())
                .unwrap_or_else(|| "0.0.0.0".into());
            Some((p.protocol.clone().unwrap_or_else(|| "TCP".into()), ip, port))
        })
        .collect()
}

/// NodePorts: a host port (protocol, port) already used on the node on the same or the
/// wildcard IP.
fn node_ports(pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    let want = host_ports(&pod.pod);
    if want.is_empty() {
        return Ok(());
    }
    let used: Vec<_> = node.pods.iter().flat_map(|p| host_ports(&p.pod)).collect();
    let clash = want.iter().any(|(proto, ip, port)| {
        used.iter().any(|(up, uip, uport)| {
            up == proto && uport == port && (ip == uip || ip == "0.0.0.0" || uip == "0.0.0.0")
        })
    });
    if clash {
        Err(Status::unschedulable(ERR_NODE_PORTS))
    } else {
        Ok(())
    }
}

/// NodeResourcesFit: pod count, then cpu, memory, ephemeral-storage, then other
/// (extended) resources, each against allocatable minus what the node's pods request.
fn node_resources_fit(pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    let alloc = node.allocatable();
    let mut reasons = Vec::new();
    let max_pods = alloc.get("pods").map_or(0, |q| q.milli_value() / 1000);
    if node.pods.len() as i128 + 1 > max_pods {
        reasons.push("Too many pods".to_string());
    }
    let mut names: Vec<&String> = pod.requests.keys().collect();
    let rank = |n: &str| match n {
        "cpu" => 0,
        "memory" => 1,
        "ephemeral-storage" => 2,
        _ => 3,
    };
    names.sort_by_key(|n| (rank(n), (*n).clone()));
    for name in names {
        let want = pod.requests[name].milli_value();
        if want <= 0 || name == "pods" {
            continue;
        }
        let have = alloc.get(name).map_or(0, |q| q.milli_value());
        let used = node.requested.get(name).map_or(0, |q| q.milli_value());
        if want > have - used {
            reasons.push(format!("Insufficient {name}"));
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(Status {
            code: super::framework::Code::Unschedulable,
            reasons,
        })
    }
}

/// A label selector against labels (null matches nothing, empty everything).
pub fn selector_matches(sel: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    let Some(sel) = sel else {
        return false;
    };
    let by_labels = sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_exprs = sel.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or(&[]);
        let have = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => have.is_some_and(|v| values.contains(v)),
            "NotIn" => !have.is_some_and(|v| values.contains(v)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        }
    });
    by_labels && by_exprs
}

/// Whether `other` is selected by an affinity term of a pod in namespace `own_ns`.
/// `namespaceSelector` is honoured when empty (every namespace) only: the scheduler has
/// no namespace informer yet.
pub fn term_selects(term: &PodAffinityTerm, own_ns: &str, other: &PodInfo) -> bool {
    let nss = term.namespaces.as_deref().unwrap_or(&[]);
    let all_ns = term
        .namespace_selector
        .as_ref()
        .is_some_and(|s| s.match_labels.is_none() && s.match_expressions.is_none());
    let ns_ok = all_ns
        || if nss.is_empty() && term.namespace_selector.is_none() {
            other.namespace() == own_ns
        } else {
            nss.iter().any(|n| n == other.namespace())
        };
    ns_ok && selector_matches(term.label_selector.as_ref(), &other.labels())
}

fn required_affinity(pod: &Pod) -> &[PodAffinityTerm] {
    pod.spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.pod_affinity.as_ref())
        .and_then(|p| {
            p.required_during_scheduling_ignored_during_execution
                .as_deref()
        })
        .unwrap_or(&[])
}

/// A pod's required anti-affinity terms.
pub fn required_anti_affinity(pod: &Pod) -> &[PodAffinityTerm] {
    pod.spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .and_then(|p| {
            p.required_during_scheduling_ignored_during_execution
                .as_deref()
        })
        .unwrap_or(&[])
}

/// Whether two nodes share a value of `key` (both having it).
fn same_domain(a: &NodeInfo, b: &NodeInfo, key: &str) -> bool {
    matches!((a.label(key), b.label(key)), (Some(x), Some(y)) if x == y)
}

/// InterPodAffinity: the pod's required affinity, its required anti-affinity, then the
/// required anti-affinity of pods already placed (upstream's order and codes).
fn inter_pod_affinity(pod: &PodInfo, node: &NodeInfo, snap: &Snapshot) -> Result<(), Status> {
    let ns = pod.namespace();
    let uid = pod.pod.metadata.uid.as_deref();
    let others = || {
        snap.nodes.iter().flat_map(move |n| {
            n.pods
                .iter()
                .filter(move |p| p.pod.metadata.uid.as_deref() != uid || uid.is_none())
                .map(move |p| (n, p))
        })
    };
    for term in required_affinity(&pod.pod) {
        let mut any_match = false;
        let mut here = false;
        for (n, p) in others() {
            if term_selects(term, ns, p) {
                any_match = true;
                if same_domain(n, node, &term.topology_key) {
                    here = true;
                    break;
                }
            }
        }
        // Upstream lets the first pod of a group that selects itself in.
        let self_match =
            !any_match && term_selects(term, ns, pod) && node.label(&term.topology_key).is_some();
        if !here && !self_match {
            return Err(Status::unresolvable(ERR_AFFINITY));
        }
    }
    for term in required_anti_affinity(&pod.pod) {
        if others()
            .any(|(n, p)| term_selects(term, ns, p) && same_domain(n, node, &term.topology_key))
        {
            return Err(Status::unschedulable(ERR_ANTI_AFFINITY));
        }
    }
    for (n, p) in others() {
        for term in required_anti_affinity(&p.pod) {
            if term_selects(term, p.namespace(), pod) && same_domain(n, node, &term.topology_key) {
                return Err(Status::unschedulable(ERR_EXISTING_ANTI_AFFINITY));
            }
        }
    }
    Ok(())
}

/// The pod's topology spread constraints with `whenUnsatisfiable` = `mode`.
pub fn spread_constraints<'a>(pod: &'a Pod, mode: &str) -> Vec<&'a TopologySpreadConstraint> {
    pod.spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| c.when_unsatisfiable == mode)
        .collect()
}

/// Matching pods per domain of `c.topologyKey`, over the nodes that count for the pod
/// (nodeAffinityPolicy Honor by default: only nodes matching its node selector/affinity;
/// nodeTaintsPolicy Honor: only nodes whose taints it tolerates). Every counted domain
/// appears, with zero where no pod matches.
pub fn spread_counts(
    pod: &PodInfo,
    c: &TopologySpreadConstraint,
    all_keys: &[&str],
    snap: &Snapshot,
) -> HashMap<String, i64> {
    let honor_affinity = c.node_affinity_policy.as_deref().unwrap_or("Honor") == "Honor";
    let honor_taints = c.node_taints_policy.as_deref().unwrap_or("Ignore") == "Honor";
    let tols = tolerations(&pod.pod);
    let mut counts: HashMap<String, i64> = HashMap::new();
    for n in &snap.nodes {
        if !all_keys.iter().all(|k| n.label(k).is_some()) {
            continue;
        }
        if honor_affinity && !matches_node_selector_and_affinity(&pod.pod, n) {
            continue;
        }
        if honor_taints
            && n.taints().iter().any(|t| {
                (t.effect == "NoSchedule" || t.effect == "NoExecute") && !tolerated(tols, t)
            })
        {
            continue;
        }
        let Some(domain) = n.label(&c.topology_key) else {
            continue;
        };
        let matching = n
            .pods
            .iter()
            .filter(|p| {
                p.namespace() == pod.namespace()
                    && p.pod.metadata.deletion_timestamp.is_none()
                    && selector_matches(c.label_selector.as_ref(), &p.labels())
            })
            .count() as i64;
        *counts.entry(domain.to_string()).or_default() += matching;
    }
    counts
}

/// PodTopologySpread (DoNotSchedule constraints): the node must carry every topology key,
/// and placing the pod there must keep `count + self - globalMin <= maxSkew` (the global
/// minimum taken as 0 while there are fewer domains than `minDomains`).
fn pod_topology_spread(pod: &PodInfo, node: &NodeInfo, snap: &Snapshot) -> Result<(), Status> {
    let constraints = spread_constraints(&pod.pod, "DoNotSchedule");
    if constraints.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = constraints
        .iter()
        .map(|c| c.topology_key.as_str())
        .collect();
    if !keys.iter().all(|k| node.label(k).is_some()) {
        return Err(Status::unresolvable(ERR_SPREAD_LABEL));
    }
    let labels = pod.labels();
    for c in constraints {
        let counts = spread_counts(pod, c, &keys, snap);
        let domain = node.label(&c.topology_key).unwrap_or("");
        let here = counts.get(domain).copied().unwrap_or(0);
        let domains: HashSet<&String> = counts.keys().collect();
        let mut min = counts.values().copied().min().unwrap_or(0);
        if (domains.len() as i64) < i64::from(c.min_domains.unwrap_or(1)) {
            min = 0;
        }
        let self_match = i64::from(selector_matches(c.label_selector.as_ref(), &labels));
        if here + self_match - min > i64::from(c.max_skew) {
            return Err(Status::unschedulable(ERR_SPREAD));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::{Node, NodeCondition, NodeSpec, NodeStatus};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity as Q;
    use serde_json::json;

    use super::super::framework::Code;
    use super::*;

    /// A Ready node with labels, taints and allocatable cpu/memory/pods.
    pub fn node(name: &str, labels: &[(&str, &str)], taints: serde_json::Value, cpu: &str) -> Node {
        let mut l: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        l.insert("kubernetes.io/hostname".into(), name.into());
        Node {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(name.into()),
                labels: Some(l),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                taints: serde_json::from_value(taints).ok(),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                allocatable: Some(
                    [
                        ("cpu".to_string(), Q(cpu.into())),
                        ("memory".to_string(), Q("4Gi".into())),
                        ("pods".to_string(), Q("110".into())),
                    ]
                    .into(),
                ),
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    /// A pod from a JSON spec, with labels, bound to `node` if given.
    pub fn pod(name: &str, labels: serde_json::Value, spec: serde_json::Value) -> Pod {
        let mut spec = spec;
        if spec.get("containers").is_none() {
            spec["containers"] = json!([{"name": "c", "image": "i"}]);
        }
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": name, "labels": labels},
            "spec": spec,
        }))
        .expect("pod fixture")
    }

    /// A snapshot of `nodes` with `pods` (bound through spec.nodeName).
    pub fn snap(nodes: Vec<Node>, pods: Vec<Pod>) -> Snapshot {
        let nodes: Vec<Arc<Node>> = nodes.into_iter().map(Arc::new).collect();
        let pods: Vec<Arc<Pod>> = pods.into_iter().map(Arc::new).collect();
        Snapshot::new(&nodes, &pods, &HashMap::new())
    }

    fn check(p: &Pod, snap: &Snapshot, node: &str) -> Result<(), Status> {
        run(
            &PodInfo::new(Arc::new(p.clone())),
            snap.node(node).unwrap(),
            snap,
        )
    }

    #[test]
    fn tolerations_match_as_upstream() {
        let taint: Taint =
            serde_json::from_value(json!({"key": "k", "value": "v", "effect": "NoSchedule"}))
                .unwrap();
        let tol = |v: serde_json::Value| -> Toleration { serde_json::from_value(v).unwrap() };
        assert!(tolerates(&tol(json!({"key": "k", "value": "v"})), &taint));
        assert!(tolerates(
            &tol(json!({"key": "k", "operator": "Exists"})),
            &taint
        ));
        assert!(tolerates(&tol(json!({"operator": "Exists"})), &taint));
        assert!(!tolerates(&tol(json!({"key": "k", "value": "w"})), &taint));
        assert!(!tolerates(
            &tol(json!({"key": "k", "operator": "Exists", "effect": "NoExecute"})),
            &taint
        ));
    }

    #[test]
    fn taints_cordon_and_not_ready_are_reported_as_upstream() {
        let mut cordoned = node("a", &[], json!([]), "2");
        cordoned.spec.as_mut().unwrap().unschedulable = Some(true);
        let tainted = node(
            "b",
            &[],
            json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]),
            "2",
        );
        let mut not_ready = node("c", &[], json!([]), "2");
        not_ready.status.as_mut().unwrap().conditions = None;
        let s = snap(vec![cordoned, tainted, not_ready], vec![]);
        let p = pod("p", json!({}), json!({}));
        assert_eq!(check(&p, &s, "a").unwrap_err().reasons, [ERR_UNSCHEDULABLE]);
        let e = check(&p, &s, "b").unwrap_err();
        assert_eq!(
            e.reasons,
            ["node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"]
        );
        assert_eq!(e.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(
            check(&p, &s, "c").unwrap_err().reasons,
            ["node(s) had untolerated taint {node.kubernetes.io/not-ready: }"]
        );
        let tolerant = pod(
            "t",
            json!({}),
            json!({"tolerations": [{"operator": "Exists"}]}),
        );
        assert!(check(&tolerant, &s, "a").is_ok());
        assert!(check(&tolerant, &s, "b").is_ok());
    }

    #[test]
    fn node_affinity_operators_and_fields() {
        let s = snap(
            vec![
                node("a", &[("zone", "z1"), ("gen", "3")], json!([]), "2"),
                node("b", &[("zone", "z2")], json!([]), "2"),
            ],
            vec![],
        );
        let with = |expr: serde_json::Value| {
            pod(
                "p",
                json!({}),
                json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                    {"nodeSelectorTerms": [expr]}}}}),
            )
        };
        let e = with(
            json!({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}]}),
        );
        assert!(check(&e, &s, "a").is_ok());
        assert_eq!(check(&e, &s, "b").unwrap_err().reasons, [ERR_NODE_AFFINITY]);
        let e =
            with(json!({"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["2"]}]}));
        assert!(check(&e, &s, "a").is_ok());
        assert!(check(&e, &s, "b").is_err());
        let e = with(json!({"matchExpressions": [{"key": "gen", "operator": "DoesNotExist"}]}));
        assert!(check(&e, &s, "a").is_err());
        assert!(check(&e, &s, "b").is_ok());
        let e = with(
            json!({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["z1"]}]}),
        );
        assert!(check(&e, &s, "b").is_ok());
        let e = with(
            json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["b"]}]}),
        );
        assert!(check(&e, &s, "a").is_err());
        assert!(check(&e, &s, "b").is_ok());
        let sel = pod("p", json!({}), json!({"nodeSelector": {"zone": "z2"}}));
        assert_eq!(
            check(&sel, &s, "a").unwrap_err().reasons,
            [ERR_NODE_AFFINITY]
        );
        assert!(check(&sel, &s, "b").is_ok());
    }

    #[test]
    fn resources_fit_counts_pods_on_the_node_init_containers_and_overhead() {
        let busy = pod(
            "busy",
            json!({}),
            json!({"nodeName": "a", "containers": [{"name": "c", "image": "i",
                "resources": {"requests": {"cpu": "1500m"}}}]}),
        );
        let s = snap(vec![node("a", &[], json!([]), "2")], vec![busy]);
        let small = pod(
            "s",
            json!({}),
            json!({"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "500m"}}}]}),
        );
        assert!(check(&small, &s, "a").is_ok());
        let init = pod(
            "i",
            json!({}),
            json!({"initContainers": [{"name": "i", "image": "i", "resources": {"requests": {"cpu": "600m"}}}],
                   "containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "100m"}}}]}),
        );
        assert_eq!(
            check(&init, &s, "a").unwrap_err().reasons,
            ["Insufficient cpu"]
        );
        let overhead = pod(
            "o",
            json!({}),
            json!({"overhead": {"cpu": "100m"}, "containers": [{"name": "c", "image": "i",
                "resources": {"requests": {"cpu": "500m", "memory": "5Gi", "example.com/gpu": "1"}}}]}),
        );
        let e = check(&overhead, &s, "a").unwrap_err();
        assert_eq!(e.code, Code::Unschedulable);
        assert_eq!(
            e.reasons,
            [
                "Insufficient cpu",
                "Insufficient memory",
                "Insufficient example.com/gpu"
            ]
        );
    }

    #[test]
    fn host_ports_clash_on_the_same_protocol_and_ip() {
        let used = pod(
            "u",
            json!({}),
            json!({"nodeName": "a", "containers": [{"name": "c", "image": "i",
                "ports": [{"containerPort": 80, "hostPort": 8080}]}]}),
        );
        let s = snap(vec![node("a", &[], json!([]), "2")], vec![used]);
        let same = pod(
            "p",
            json!({}),
            json!({"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}),
        );
        assert_eq!(check(&same, &s, "a").unwrap_err().reasons, [ERR_NODE_PORTS]);
        let udp = pod(
            "p",
            json!({}),
            json!({"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}]}]}),
        );
        assert!(check(&udp, &s, "a").is_ok());
    }

    #[test]
    fn anti_affinity_both_ways_and_affinity() {
        let anti = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}}});
        let mut placed_spec = anti.clone();
        placed_spec["nodeName"] = json!("a");
        let placed = pod("w1", json!({"app": "web"}), placed_spec);
        let s = snap(
            vec![
                node("a", &[], json!([]), "2"),
                node("b", &[], json!([]), "2"),
            ],
            vec![placed],
        );
        let second = pod("w2", json!({"app": "web"}), anti);
        assert_eq!(
            check(&second, &s, "a").unwrap_err().reasons,
            [ERR_ANTI_AFFINITY]
        );
        assert!(check(&second, &s, "b").is_ok());
        // A plain pod the placed one's anti-affinity selects cannot join it either.
        let plain = pod("w3", json!({"app": "web"}), json!({}));
        assert_eq!(
            check(&plain, &s, "a").unwrap_err().reasons,
            [ERR_EXISTING_ANTI_AFFINITY]
        );
        let aff = pod(
            "f",
            json!({}),
            json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}}}),
        );
        assert!(check(&aff, &s, "a").is_ok());
        let e = check(&aff, &s, "b").unwrap_err();
        assert_eq!(
            (e.code, e.reasons),
            (
                Code::UnschedulableAndUnresolvable,
                vec![ERR_AFFINITY.to_string()]
            )
        );
    }

    #[test]
    fn spread_skew_min_domains_and_missing_label() {
        let spread = |min_domains: Option<i32>| {
            let mut c = json!({"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": "s"}}});
            if let Some(m) = min_domains {
                c["minDomains"] = json!(m);
            }
            json!({"topologySpreadConstraints": [c]})
        };
        let on = |name: &str, node: &str| {
            let mut spec = json!({});
            spec["nodeName"] = json!(node);
            pod(name, json!({"app": "s"}), spec)
        };
        let s = snap(
            vec![
                node("a", &[("zone", "z1")], json!([]), "2"),
                node("b", &[("zone", "z2")], json!([]), "2"),
                node("c", &[], json!([]), "2"),
            ],
            vec![on("s1", "a")],
        );
        let p = pod("s2", json!({"app": "s"}), spread(None));
        // z1 has 1, z2 has 0: another in z1 makes skew 2.
        assert_eq!(check(&p, &s, "a").unwrap_err().reasons, [ERR_SPREAD]);
        assert!(check(&p, &s, "b").is_ok());
        assert_eq!(check(&p, &s, "c").unwrap_err().reasons, [ERR_SPREAD_LABEL]);
        // With 3 domains required but 2 present, the global minimum is 0: z2 still fits,
        // z1 (1 + 1 - 0 = 2) does not.
        let p = pod("s2", json!({"app": "s"}), spread(Some(3)));
        assert!(check(&p, &s, "b").is_ok());
        assert!(check(&p, &s, "a").is_err());
    }
}
