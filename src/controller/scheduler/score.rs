//! Score plugins (upstream's Score + NormalizeScore, default weights): every feasible
//! node gets 0..=100 per plugin; the weighted sum ranks them, ties broken at random as
//! upstream's `selectHost` does.

use std::collections::BTreeMap;

use rand::Rng;

use super::filter::{spread_constraints, spread_counts, term_matches, term_selects, tolerates};
use super::framework::{NodeInfo, PodInfo, Snapshot};

/// Upstream's `MaxNodeScore`.
const MAX: i64 = 100;
/// Requests counted for containers that set none, for scoring only (upstream's
/// `DefaultMilliCPURequest`, `DefaultMemoryRequest`).
const DEFAULT_MILLI_CPU: i128 = 100;
const DEFAULT_MEMORY_MILLI: i128 = 200 * 1024 * 1024 * 1000;

/// The weighted score of every node in `feasible` (indexes into `snap.nodes`).
pub fn score(pod: &PodInfo, feasible: &[usize], snap: &Snapshot) -> Vec<i64> {
    let nodes: Vec<&NodeInfo> = feasible.iter().map(|i| &snap.nodes[*i]).collect();
    let mut total = vec![0i64; nodes.len()];
    let mut add = |scores: Vec<i64>, weight: i64| {
        for (t, s) in total.iter_mut().zip(scores) {
            *t += s * weight;
        }
    };
    add(taint_toleration(pod, &nodes), 3);
    add(node_affinity(pod, &nodes), 2);
    add(topology_spread(pod, &nodes, snap), 2);
    add(inter_pod_affinity(pod, &nodes, snap), 2);
    add(nodes.iter().map(|n| least_allocated(pod, n)).collect(), 1);
    add(
        nodes.iter().map(|n| balanced_allocation(pod, n)).collect(),
        1,
    );
    total
}

/// The index (into `feasible`) of a best-scored node, a random one among equals.
pub fn select(scores: &[i64]) -> Option<usize> {
    let best = *scores.iter().max()?;
    let ties: Vec<usize> = (0..scores.len()).filter(|i| scores[*i] == best).collect();
    Some(ties[rand::rng().random_range(0..ties.len())])
}

/// Upstream's `DefaultNormalizeScore`: scale to 0..=100 by the maximum, reversed if asked.
fn normalize(scores: Vec<i64>, reverse: bool) -> Vec<i64> {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        return if reverse {
            vec![MAX; scores.len()]
        } else {
            scores
        };
    }
    scores
        .into_iter()
        .map(|s| {
            let s = s * MAX / max;
            if reverse { MAX - s } else { s }
        })
        .collect()
}

/// (requested incl. the pod, allocatable) in milli-units for cpu and memory, the pod's
/// and each placed pod's unset requests counted at upstream's non-zero defaults.
fn cpu_mem(pod: &PodInfo, node: &NodeInfo) -> [(i128, i128); 2] {
    let alloc = node.allocatable();
    let nonzero = |p: &PodInfo, name: &str, default: i128| {
        p.requests
            .get(name)
            .map(|q| q.milli_value())
            .filter(|v| *v > 0)
            .unwrap_or(default)
    };
    let mut out = [(0, 0); 2];
    for (i, (name, default)) in [("cpu", DEFAULT_MILLI_CPU), ("memory", DEFAULT_MEMORY_MILLI)]
        .into_iter()
        .enumerate()
    {
        let used: i128 = node
            .pods
            .iter()
            .map(|p| nonzero(p, name, default))
            .sum::<i128>()
            + nonzero(pod, name, default);
        out[i] = (used, alloc.get(name).map_or(0, |q| q.milli_value()));
    }
    out
}

/// NodeResourcesFit's LeastAllocated strategy: the mean free fraction of cpu and memory.
fn least_allocated(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let parts = cpu_mem(pod, node);
    let sum: i128 = parts
        .iter()
        .map(|(used, alloc)| {
            if *alloc == 0 || used > alloc {
                0
            } else {
                (alloc - used) * i128::from(MAX) / alloc
            }
        })
        .sum();
    (sum / parts.len() as i128) as i64
}

/// NodeResourcesBalancedAllocation: `(1 - stddev of the used fractions) * 100`.
fn balanced_allocation(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let fractions: Vec<f64> = cpu_mem(pod, node)
        .iter()
        .map(|(used, alloc)| {
            if *alloc == 0 {
                1.0
            } else {
                (*used as f64 / *alloc as f64).min(1.0)
            }
        })
        .collect();
    let mean = fractions.iter().sum::<f64>() / fractions.len() as f64;
    let var = fractions.iter().map(|f| (f - mean).powi(2)).sum::<f64>() / fractions.len() as f64;
    ((1.0 - var.sqrt()) * MAX as f64) as i64
}

/// TaintToleration: fewer untolerated PreferNoSchedule taints score higher.
fn taint_toleration(pod: &PodInfo, nodes: &[&NodeInfo]) -> Vec<i64> {
    let tols: Vec<_> = pod
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|t| {
            matches!(
                t.effect.as_deref(),
                None | Some("") | Some("PreferNoSchedule")
            )
        })
        .collect();
    let raw = nodes
        .iter()
        .map(|n| {
            n.taints()
                .iter()
                .filter(|t| t.effect == "PreferNoSchedule" && !tols.iter().any(|x| tolerates(x, t)))
                .count() as i64
        })
        .collect();
    normalize(raw, true)
}

/// NodeAffinity: the summed weights of the preferred terms a node matches.
fn node_affinity(pod: &PodInfo, nodes: &[&NodeInfo]) -> Vec<i64> {
    let preferred = pod
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.preferred_during_scheduling_ignored_during_execution
                .clone()
        })
        .unwrap_or_default();
    let raw = nodes
        .iter()
        .map(|n| {
            preferred
                .iter()
                .filter(|t| term_matches(&t.preference, n))
                .map(|t| i64::from(t.weight))
                .sum()
        })
        .collect();
    normalize(raw, false)
}

/// PodTopologySpread (ScheduleAnyway): fewer matching pods in the node's domains score
/// higher.
fn topology_spread(pod: &PodInfo, nodes: &[&NodeInfo], snap: &Snapshot) -> Vec<i64> {
    let constraints = spread_constraints(&pod.pod, "ScheduleAnyway");
    if constraints.is_empty() {
        return vec![0; nodes.len()];
    }
    let counts: Vec<_> = constraints
        .iter()
        .map(|c| (c, spread_counts(pod, c, &[c.topology_key.as_str()], snap)))
        .collect();
    let raw = nodes
        .iter()
        .map(|n| {
            counts
                .iter()
                .map(|(c, m)| {
                    n.label(&c.topology_key)
                        .and_then(|d| m.get(d))
                        .copied()
                        .unwrap_or(0)
                })
                .sum()
        })
        .collect();
    normalize(raw, true)
}

/// InterPodAffinity: weights of preferred (anti-)affinity terms the pods in a node's
/// domain satisfy, min-max scaled.
fn inter_pod_affinity(pod: &PodInfo, nodes: &[&NodeInfo], snap: &Snapshot) -> Vec<i64> {
    let Some(aff) = pod.pod.spec.as_ref().and_then(|s| s.affinity.as_ref()) else {
        return vec![0; nodes.len()];
    };
    let mut terms = Vec::new();
    for t in aff
        .pod_affinity
        .as_ref()
        .and_then(|p| {
            p.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .into_iter()
        .flatten()
    {
        terms.push((&t.pod_affinity_term, i64::from(t.weight)));
    }
    for t in aff
        .pod_anti_affinity
        .as_ref()
        .and_then(|p| {
            p.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .into_iter()
        .flatten()
    {
        terms.push((&t.pod_affinity_term, -i64::from(t.weight)));
    }
    if terms.is_empty() {
        return vec![0; nodes.len()];
    }
    // Score per topology value, then per node.
    let mut by_domain: BTreeMap<(String, String), i64> = BTreeMap::new();
    for n in &snap.nodes {
        for p in &n.pods {
            for (term, w) in &terms {
                if let Some(v) = n.label(&term.topology_key)
                    && term_selects(term, pod.namespace(), p)
                {
                    *by_domain
                        .entry((term.topology_key.clone(), v.to_string()))
                        .or_default() += w;
                }
            }
        }
    }
    let raw: Vec<i64> = nodes
        .iter()
        .map(|n| {
            let mut keys: Vec<&str> = terms.iter().map(|(t, _)| t.topology_key.as_str()).collect();
            keys.dedup();
            keys.iter()
                .filter_map(|k| {
                    n.label(k)
                        .and_then(|v| by_domain.get(&(k.to_string(), v.to_string())))
                })
                .sum()
        })
        .collect();
    let (min, max) = (
        raw.iter().copied().min().unwrap_or(0),
        raw.iter().copied().max().unwrap_or(0),
    );
    if max == min {
        return vec![0; nodes.len()];
    }
    raw.into_iter()
        .map(|s| (s - min) * MAX / (max - min))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::super::filter::tests::{node, pod, snap};
    use super::*;

    #[test]
    fn emptier_nodes_and_preferred_affinity_score_higher() {
        let busy = pod(
            "b",
            json!({}),
            json!({"nodeName": "a", "containers": [{"name": "c", "image": "i",
                "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]}),
        );
        let s = snap(
            vec![
                node("a", &[], json!([]), "2"),
                node("b", &[("disk", "ssd")], json!([]), "2"),
            ],
            vec![busy],
        );
        let p = PodInfo::new(Arc::new(pod("p", json!({}), json!({}))));
        let scores = score(&p, &[0, 1], &s);
        assert!(scores[1] > scores[0], "{scores:?}");
        assert_eq!(select(&scores), Some(1));
        let pref = PodInfo::new(Arc::new(pod(
            "p",
            json!({}),
            json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}}}),
        )));
        assert_eq!(node_affinity(&pref, &[&s.nodes[0], &s.nodes[1]]), [0, 100]);
    }

    #[test]
    fn prefer_no_schedule_taints_lower_the_score() {
        let s = snap(
            vec![
                node(
                    "a",
                    &[],
                    json!([{"key": "k", "effect": "PreferNoSchedule"}]),
                    "2",
                ),
                node("b", &[], json!([]), "2"),
            ],
            vec![],
        );
        let p = PodInfo::new(Arc::new(pod("p", json!({}), json!({}))));
        assert_eq!(taint_toleration(&p, &[&s.nodes[0], &s.nodes[1]]), [0, 100]);
    }
}
