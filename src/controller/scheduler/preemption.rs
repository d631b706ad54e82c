//! DefaultPreemption (upstream's `framework/preemption` and `plugins/defaultpreemption`):
//! when a pod fits nowhere, find a node where evicting lower-priority pods makes room,
//! with the fewest and least important victims.

use super::filter;
use super::framework::{Code, NodeInfo, PodInfo, Snapshot, Status, fit_error, priority};

/// Why a node cannot help by preemption (upstream's wording).
pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
/// No pod of lower priority on the node.
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

/// A node where preemption makes the pod fit, and the pods to evict there.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The node.
    pub node: String,
    /// The pods to evict.
    pub victims: Vec<PodInfo>,
}

/// The outcome of a preemption attempt.
#[derive(Debug)]
pub enum Outcome {
    /// Evict these and nominate the node.
    Preempt(Candidate),
    /// Nothing to do; the message upstream appends to the FitError.
    NotPossible(String),
}

/// Upstream's `PodEligibleToPreemptOthers`: `preemptionPolicy: Never` opts out, and a pod
/// already nominated to a node where lower-priority pods are terminating waits for them.
fn eligible(pod: &PodInfo, snap: &Snapshot) -> Result<(), String> {
    let spec = pod.pod.spec.as_ref();
    if spec.and_then(|s| s.preemption_policy.as_deref()) == Some("Never") {
        return Err("not eligible due to preemptionPolicy=Never.".into());
    }
    let nominated = pod
        .pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .filter(|n| !n.is_empty());
    if let Some(node) = nominated.and_then(|n| snap.node(n))
        && node
            .pods
            .iter()
            .any(|p| p.pod.metadata.deletion_timestamp.is_some() && p.priority() < pod.priority())
    {
        return Err("not eligible due to a terminating pod on the nominated node.".into());
    }
    Ok(())
}

/// Upstream's `SelectVictimsOnNode`: remove every lower-priority pod, check the pod fits,
/// then give back as many of them as still lets it fit, most important first.
fn victims_on(pod: &PodInfo, index: usize, snap: &Snapshot) -> Result<Vec<PodInfo>, Status> {
    let mut trial = snap.clone();
    let mut potential: Vec<PodInfo> = trial.nodes[index]
        .pods
        .iter()
        .filter(|p| p.priority() < pod.priority())
        .cloned()
        .collect();
    if potential.is_empty() {
        return Err(Status::unresolvable(NO_VICTIMS));
    }
    for v in &potential {
        trial.nodes[index].remove_pod(v.pod.metadata.uid.as_deref().unwrap_or(""));
    }
    let fits = |t: &Snapshot| filter::run(pod, &t.nodes[index], t);
    fits(&trial)?;
    // Most important first: higher priority, then the longer running.
    potential.sort_by(|a, b| {
        b.priority().cmp(&a.priority()).then_with(|| {
            let start = |p: &PodInfo| p.pod.status.as_ref().and_then(|s| s.start_time.clone());
            start(a).cmp(&start(b))
        })
    });
    let mut victims = Vec::new();
    for v in potential {
        trial.nodes[index].add_pod(v.clone());
        if fits(&trial).is_err() {
            trial.nodes[index].remove_pod(v.pod.metadata.uid.as_deref().unwrap_or(""));
            victims.push(v);
        }
    }
    Ok(victims)
}

/// Runs preemption for `pod` given each node's filter status (`statuses`, one per node
/// that failed; nodes absent here passed, which does not happen when preemption runs).
pub fn preempt(pod: &PodInfo, snap: &Snapshot, statuses: &[(String, Status)]) -> Outcome {
    // Upstream's PostFilter prefixes every message of its evaluator with "preemption: ".
    if let Err(msg) = eligible(pod, snap) {
        return Outcome::NotPossible(format!("preemption: {msg}"));
    }
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut results: Vec<(String, Status)> = Vec::new();
    for (name, status) in statuses {
        if status.code == Code::UnschedulableAndUnresolvable {
            results.push((name.clone(), Status::unresolvable(NOT_HELPFUL)));
            continue;
        }
        let Some(index) = snap.nodes.iter().position(|n: &NodeInfo| n.name() == name) else {
            continue;
        };
        match victims_on(pod, index, snap) {
            Ok(victims) if !victims.is_empty() => candidates.push(Candidate {
                node: name.clone(),
                victims,
            }),
            Ok(_) => results.push((name.clone(), Status::unresolvable(NO_VICTIMS))),
            Err(s) => results.push((name.clone(), s)),
        }
    }
    // Upstream's pickOneNodeForPreemption, without PDBs: the lowest highest-victim
    // priority, then the smallest priority sum, then the fewest victims.
    let key = |c: &Candidate| {
        let prios: Vec<i64> = c
            .victims
            .iter()
            .map(|v| i64::from(priority(&v.pod)))
            .collect();
        (
            prios.iter().copied().max().unwrap_or(i64::MIN),
            prios.iter().sum::<i64>(),
            c.victims.len(),
        )
    };
    match candidates.into_iter().min_by_key(key) {
        Some(c) => Outcome::Preempt(c),
        None => Outcome::NotPossible(format!(
            "preemption: {}",
            fit_error(statuses.len(), &results, "")
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::super::filter::tests::{node, pod, snap};
    use super::*;

    fn on(name: &str, node: &str, cpu: &str, prio: i32) -> k8s_openapi::api::core::v1::Pod {
        pod(
            name,
            json!({}),
            json!({"nodeName": node, "priority": prio, "containers": [{"name": "c", "image": "i",
                "resources": {"requests": {"cpu": cpu}}}]}),
        )
    }

    fn statuses(p: &PodInfo, s: &Snapshot) -> Vec<(String, Status)> {
        s.nodes
            .iter()
            .filter_map(|n| {
                filter::run(p, n, s)
                    .err()
                    .map(|e| (n.name().to_string(), e))
            })
            .collect()
    }

    #[test]
    fn picks_the_minimal_set_of_the_least_important_victims() {
        let s = snap(
            vec![
                node("a", &[], json!([]), "2"),
                node("b", &[], json!([]), "2"),
            ],
            vec![
                on("a-low", "a", "1", 1),
                on("a-mid", "a", "1", 5),
                on("b-mid1", "b", "1", 5),
                on("b-mid2", "b", "1", 5),
            ],
        );
        let p = PodInfo::new(Arc::new(pod(
            "high",
            json!({}),
            json!({"priority": 10, "containers": [{"name": "c", "image": "i",
                "resources": {"requests": {"cpu": "1"}}}]}),
        )));
        let st = statuses(&p, &s);
        assert_eq!(st.len(), 2);
        match preempt(&p, &s, &st) {
            Outcome::Preempt(c) => {
                assert_eq!(c.node, "a");
                let names: Vec<_> = c
                    .victims
                    .iter()
                    .map(|v| v.pod.metadata.name.clone().unwrap())
                    .collect();
                assert_eq!(names, ["a-low"]);
            }
            o => panic!("expected preemption, got {o:?}"),
        }
    }

    #[test]
    fn no_victims_and_unresolvable_nodes_give_upstreams_message() {
        let s = snap(
            vec![
                node("a", &[], json!([]), "1"),
                node("b", &[], json!([{"key": "k", "effect": "NoSchedule"}]), "8"),
            ],
            vec![on("a-same", "a", "1", 10)],
        );
        let p = PodInfo::new(Arc::new(pod(
            "high",
            json!({}),
            json!({"priority": 10, "containers": [{"name": "c", "image": "i",
                "resources": {"requests": {"cpu": "1"}}}]}),
        )));
        let st = statuses(&p, &s);
        match preempt(&p, &s, &st) {
            Outcome::NotPossible(m) => assert_eq!(
                m,
                "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, \
                 1 Preemption is not helpful for scheduling."
            ),
            o => panic!("expected no preemption, got {o:?}"),
        }
        let never = PodInfo::new(Arc::new(pod(
            "never",
            json!({}),
            json!({"priority": 100, "preemptionPolicy": "Never"}),
        )));
        assert!(matches!(
            preempt(&never, &s, &st),
            Outcome::NotPossible(m) if m == "preemption: not eligible due to preemptionPolicy=Never."
        ));
    }
}
