//! kube-controller-manager's replication manager: upstream runs its ReplicaSet manager
//! on ReplicationControllers through an adapter (pkg/controller/replication), and so does
//! this: the RC adapter of [`super::replicaset::Manager`]. Only what differs is here: an
//! RC's selector is a label map, its Events come from `replication-controller`.

use k8s_openapi::api::core::v1::{
    Pod, PodTemplateSpec, ReplicationController, ReplicationControllerCondition,
    ReplicationControllerStatus,
};

use super::replicaset::{Manager, ReplicaCondition, ReplicaKind, ReplicaStatus};

/// The component Events name (upstream's replication manager source).
pub const COMPONENT: &str = "replication-controller";

pub use super::replicaset::REPLICA_FAILURE;

/// The replication manager.
pub type Controller = Manager<ReplicationController>;

impl ReplicaKind for ReplicationController {
    const COMPONENT: &'static str = COMPONENT;
    const WORKER: &'static str = "replicationcontroller";

    /// The selector is a non-empty label map, all of whose pairs the pod carries.
    fn selects(&self, pod: &Pod) -> bool {
        let Some(sel) = self.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
            return false;
        };
        if sel.is_empty() {
            return false;
        }
        let labels = pod.metadata.labels.as_ref();
        sel.iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
    }

    fn desired(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }

    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().and_then(|s| s.template.as_ref())
    }

    fn replica_status(&self) -> Option<ReplicaStatus> {
        let s = self.status.as_ref()?;
        Some(ReplicaStatus {
            replicas: s.replicas,
            fully_labeled_replicas: s.fully_labeled_replicas,
            ready_replicas: s.ready_replicas,
            available_replicas: s.available_replicas,
            observed_generation: s.observed_generation,
            conditions: s
                .conditions
                .iter()
                .flatten()
                .map(|c| ReplicaCondition {
                    type_: c.type_.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    last_transition_time: c.last_transition_time.clone(),
                })
                .collect(),
        })
    }

    fn with_status(&self, s: ReplicaStatus) -> Self {
        let mut next = self.clone();
        let conditions: Vec<ReplicationControllerCondition> = s
            .conditions
            .into_iter()
            .map(|c| ReplicationControllerCondition {
                type_: c.type_,
                status: c.status,
                reason: c.reason,
                message: c.message,
                last_transition_time: c.last_transition_time,
            })
            .collect();
        next.status = Some(ReplicationControllerStatus {
            replicas: s.replicas,
            fully_labeled_replicas: s.fully_labeled_replicas,
            ready_replicas: s.ready_replicas,
            available_replicas: s.available_replicas,
            observed_generation: s.observed_generation,
            conditions: (!conditions.is_empty()).then_some(conditions),
        });
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ReplicationControllerSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn labeled(labels: &[(&str, &str)]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn an_empty_selector_selects_nothing() {
        let mut rc = ReplicationController {
            spec: Some(ReplicationControllerSpec::default()),
            ..Default::default()
        };
        assert!(!rc.selects(&labeled(&[("a", "1")])));
        rc.spec.as_mut().unwrap().selector = Some([("a".to_string(), "1".to_string())].into());
        assert!(rc.selects(&labeled(&[("a", "1"), ("b", "2")])));
        assert!(!rc.selects(&labeled(&[("a", "2")])));
    }

    #[test]
    fn status_round_trips_through_the_common_form() {
        let rc = ReplicationController::default();
        let st = ReplicaStatus {
            replicas: 2,
            ready_replicas: Some(1),
            observed_generation: Some(3),
            ..Default::default()
        };
        assert_eq!(rc.with_status(st.clone()).replica_status(), Some(st));
    }
}
