//! `spec.podFailurePolicy` matching (upstream's pod_failure_policy.go): the first rule
//! whose exit-code or pod-condition requirement matches a failed pod decides what the
//! failure does (FailJob, FailIndex, Ignore, Count).

use k8s_openapi::api::batch::v1::{PodFailurePolicy, PodFailurePolicyRule};
use k8s_openapi::api::core::v1::Pod;

/// What a rule makes of a failed pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The whole Job fails at once.
    FailJob,
    /// The pod's index fails (backoffLimitPerIndex jobs).
    FailIndex,
    /// The failure is not counted against any limit.
    Ignore,
    /// Counted as usual.
    Count,
}

/// A matched rule: its action and upstream's message for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The rule's action.
    pub action: Action,
    /// `Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 0`.
    pub message: String,
}

fn action_of(rule: &PodFailurePolicyRule) -> Option<Action> {
    Some(match rule.action.as_str() {
        "FailJob" => Action::FailJob,
        "FailIndex" => Action::FailIndex,
        "Ignore" => Action::Ignore,
        "Count" => Action::Count,
        _ => return None,
    })
}

/// The first rule of `policy` matching the failed `pod`, if any.
pub fn matching(policy: &PodFailurePolicy, pod: &Pod) -> Option<Match> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let status = pod.status.as_ref();
    for (i, rule) in policy.rules.iter().enumerate() {
        let Some(action) = action_of(rule) else {
            continue;
        };
        if let Some(req) = &rule.on_exit_codes {
            let statuses = status
                .into_iter()
                .flat_map(|s| {
                    s.init_container_statuses
                        .iter()
                        .flatten()
                        .chain(s.container_statuses.iter().flatten())
                })
                .filter(|c| req.container_name.as_ref().is_none_or(|n| *n == c.name));
            for c in statuses {
                let Some(code) = c
                    .state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref())
                    .map(|t| t.exit_code)
                else {
                    continue;
                };
                if code == 0 {
                    continue;
                }
                let listed = req.values.contains(&code);
                let hit = match req.operator.as_str() {
                    "In" => listed,
                    "NotIn" => !listed,
                    _ => false,
                };
                if hit {
                    return Some(Match {
                        action,
                        message: format!(
                            "Container {} for pod {ns}/{name} failed with exit code {code} matching {} rule at index {i}",
                            c.name, rule.action
                        ),
                    });
                }
            }
        }
        for pattern in rule.on_pod_conditions.iter().flatten() {
            let want = if pattern.status.is_empty() {
                "True"
            } else {
                pattern.status.as_str()
            };
            let hit = status
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .any(|c| c.type_ == pattern.type_ && c.status == want);
            if hit {
                return Some(Match {
                    action,
                    message: format!(
                        "Pod {ns}/{name} has condition {} matching {} rule at index {i}",
                        pattern.type_, rule.action
                    ),
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy() -> PodFailurePolicy {
        serde_json::from_value(json!({"rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
            {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1, 2]}},
        ]}))
        .unwrap()
    }

    fn failed(code: i32, conditions: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "d"},
            "status": {"phase": "Failed", "conditions": conditions, "containerStatuses": [
                {"name": "main", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                 "state": {"terminated": {"exitCode": code}}}]}}))
        .unwrap()
    }

    #[test]
    fn first_matching_rule_decides() {
        let p = policy();
        let m = matching(&p, &failed(42, json!([]))).unwrap();
        assert_eq!(m.action, Action::FailJob);
        assert_eq!(
            m.message,
            "Container main for pod d/p failed with exit code 42 matching FailJob rule at index 1"
        );
        let m = matching(
            &p,
            &failed(42, json!([{"type": "DisruptionTarget", "status": "True"}])),
        )
        .unwrap();
        assert_eq!(m.action, Action::Ignore);
        assert_eq!(
            m.message,
            "Pod d/p has condition DisruptionTarget matching Ignore rule at index 0"
        );
        assert_eq!(
            matching(&p, &failed(7, json!([]))).unwrap().action,
            Action::Count
        );
        assert_eq!(matching(&p, &failed(1, json!([]))), None);
    }
}
