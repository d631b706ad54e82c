//! The controller manager's least-privilege policy, by upstream's names
//! (`bootstrappolicy/controller_policy.go` and the `system:kube-controller-manager` role of
//! `policy.go`): the manager's own identity may run the shared informers (list and watch
//! everything), emit events and mint its controllers' credentials; each controller runs
//! as the service account `kube-system/<name>` bound to `system:controller:<name>` with
//! only what that controller does. Only the controllers rkind runs are listed.

use serde_json::{Value, json};

/// The namespace of the controllers' service accounts.
pub const NAMESPACE: &str = "kube-system";
/// The prefix of a controller's ClusterRole and ClusterRoleBinding.
pub const ROLE_PREFIX: &str = "system:controller:";

/// The controllers' service accounts, as upstream names them.
pub mod account {
    /// ClusterRole aggregation.
    pub const CLUSTERROLE_AGGREGATION: &str = "clusterrole-aggregation-controller";
    /// CronJobs.
    pub const CRONJOB: &str = "cronjob-controller";
    /// DaemonSets.
    pub const DAEMONSET: &str = "daemon-set-controller";
    /// Deployments.
    pub const DEPLOYMENT: &str = "deployment-controller";
    /// PodDisruptionBudgets.
    pub const DISRUPTION: &str = "disruption-controller";
    /// The garbage collector.
    pub const GARBAGE_COLLECTOR: &str = "generic-garbage-collector";
    /// Jobs.
    pub const JOB: &str = "job-controller";
    /// Namespace deletion.
    pub const NAMESPACE: &str = "namespace-controller";
    /// Node lifecycle and NoExecute taint eviction.
    pub const NODE: &str = "node-controller";
    /// ReplicaSets.
    pub const REPLICASET: &str = "replicaset-controller";
    /// ReplicationControllers.
    pub const REPLICATION: &str = "replication-controller";
    /// ResourceQuota usage.
    pub const RESOURCEQUOTA: &str = "resourcequota-controller";
    /// The `kube-root-ca.crt` ConfigMaps.
    pub const ROOT_CA: &str = "root-ca-cert-publisher";
    /// Default service accounts.
    pub const SERVICE_ACCOUNT: &str = "service-account-controller";
    /// StatefulSets.
    pub const STATEFULSET: &str = "statefulset-controller";
    /// Finished Jobs' TTL.
    pub const TTL_AFTER_FINISHED: &str = "ttl-after-finished-controller";
}

const READ: &[&str] = &["get", "list", "watch"];

fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Value {
    json!({"verbs": verbs, "apiGroups": groups, "resources": resources})
}

/// Upstream's `eventsRule`: writing events in both event groups.
fn events() -> Value {
    rule(
        &["create", "update", "patch"],
        &["", "events.k8s.io"],
        &["events"],
    )
}

/// What the controller manager's own identity holds.
pub fn manager_rules() -> Vec<Value> {
    vec![
        events(),
        rule(&["create"], &["coordination.k8s.io"], &["leases"]),
        json!({"verbs": ["get", "update"], "apiGroups": ["coordination.k8s.io"],
               "resources": ["leases"], "resourceNames": ["kube-controller-manager"]}),
        rule(&["get"], &[""], &["configmaps"]),
        rule(&["create"], &[""], &["secrets", "serviceaccounts"]),
        rule(&["delete"], &[""], &["secrets"]),
        rule(
            &["get"],
            &[""],
            &["namespaces", "secrets", "serviceaccounts"],
        ),
        rule(&["update"], &[""], &["secrets", "serviceaccounts"]),
        rule(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
        rule(
            &["create"],
            &["authorization.k8s.io"],
            &["subjectaccessreviews"],
        ),
        // The shared informers.
        rule(&["list", "watch"], &["*"], &["*"]),
        rule(&["create"], &[""], &["serviceaccounts/token"]),
    ]
}

/// Each controller's service account and rules.
pub fn controller_rules() -> Vec<(&'static str, Vec<Value>)> {
    use account::*;
    let all = &["*"];
    vec![
        (
            CLUSTERROLE_AGGREGATION,
            vec![rule(
                &["escalate", "get", "list", "watch", "update", "patch"],
                &["rbac.authorization.k8s.io"],
                &["clusterroles"],
            )],
        ),
        (
            CRONJOB,
            vec![
                rule(
                    &["get", "list", "watch", "update"],
                    &["batch"],
                    &["cronjobs"],
                ),
                rule(
                    &[
                        "get", "list", "watch", "create", "update", "delete", "patch",
                    ],
                    &["batch"],
                    &["jobs"],
                ),
                rule(&["update"], &["batch"], &["cronjobs/status"]),
                rule(&["update"], &["batch"], &["cronjobs/finalizers"]),
                rule(&["list", "watch", "delete"], &[""], &["pods"]),
                events(),
            ],
        ),
        (
            DAEMONSET,
            vec![
                rule(READ, &["extensions", "apps"], &["daemonsets"]),
                rule(&["update"], &["extensions", "apps"], &["daemonsets/status"]),
                rule(
                    &["update"],
                    &["extensions", "apps"],
                    &["daemonsets/finalizers"],
                ),
                rule(&["list", "watch"], &[""], &["nodes"]),
                rule(
                    &["list", "watch", "create", "delete", "patch"],
                    &[""],
                    &["pods"],
                ),
                rule(&["create"], &[""], &["pods/binding"]),
                rule(
                    &[
                        "get", "list", "watch", "create", "delete", "update", "patch",
                    ],
                    &["apps"],
                    &["controllerrevisions"],
                ),
                events(),
            ],
        ),
        (
            DEPLOYMENT,
            vec![
                rule(
                    &["get", "list", "watch", "update"],
                    &["extensions", "apps"],
                    &["deployments"],
                ),
                rule(
                    &["update"],
                    &["extensions", "apps"],
                    &["deployments/status"],
                ),
                rule(
                    &["update"],
                    &["extensions", "apps"],
                    &["deployments/finalizers"],
                ),
                rule(
                    &[
                        "get", "list", "watch", "create", "update", "patch", "delete",
                    ],
                    &["apps", "extensions"],
                    &["replicasets"],
                ),
                rule(&["get", "list", "watch", "update"], &[""], &["pods"]),
                events(),
            ],
        ),
        (
            DISRUPTION,
            vec![
                rule(READ, &["extensions", "apps"], &["deployments"]),
                rule(READ, &["apps", "extensions"], &["replicasets"]),
                rule(READ, &[""], &["replicationcontrollers"]),
                rule(READ, &["policy"], &["poddisruptionbudgets"]),
                rule(READ, &["apps"], &["statefulsets"]),
                rule(&["update"], &["policy"], &["poddisruptionbudgets/status"]),
                rule(&["patch", "update"], &[""], &["pods/status"]),
                rule(&["get"], all, &["*/scale"]),
                events(),
            ],
        ),
        (
            GARBAGE_COLLECTOR,
            vec![
                rule(
                    &["get", "list", "watch", "patch", "update", "delete"],
                    all,
                    all,
                ),
                events(),
            ],
        ),
        (
            JOB,
            vec![
                rule(
                    &["get", "list", "watch", "update", "patch"],
                    &["batch"],
                    &["jobs"],
                ),
                rule(&["update"], &["batch"], &["jobs/status"]),
                rule(&["update"], &["batch"], &["jobs/finalizers"]),
                rule(
                    &["list", "watch", "create", "delete", "patch"],
                    &[""],
                    &["pods"],
                ),
                events(),
            ],
        ),
        (
            account::NAMESPACE,
            vec![
                rule(&["get", "list", "watch", "delete"], &[""], &["namespaces"]),
                rule(
                    &["update"],
                    &[""],
                    &["namespaces/finalize", "namespaces/status"],
                ),
                rule(
                    &["get", "list", "watch", "delete", "deletecollection"],
                    all,
                    all,
                ),
            ],
        ),
        (
            NODE,
            vec![
                rule(
                    &["get", "list", "watch", "update", "delete", "patch"],
                    &[""],
                    &["nodes"],
                ),
                rule(&["patch", "update"], &[""], &["nodes/status"]),
                rule(&["patch", "update"], &[""], &["pods/status"]),
                rule(&["list", "watch", "get", "delete"], &[""], &["pods"]),
                events(),
            ],
        ),
        (
            REPLICASET,
            vec![
                rule(
                    &["get", "list", "watch", "update"],
                    &["apps", "extensions"],
                    &["replicasets"],
                ),
                rule(
                    &["update"],
                    &["apps", "extensions"],
                    &["replicasets/status"],
                ),
                rule(
                    &["update"],
                    &["apps", "extensions"],
                    &["replicasets/finalizers"],
                ),
                rule(
                    &["list", "watch", "patch", "create", "delete"],
                    &[""],
                    &["pods"],
                ),
                events(),
            ],
        ),
        (
            REPLICATION,
            vec![
                rule(
                    &["get", "list", "watch", "update"],
                    &[""],
                    &["replicationcontrollers"],
                ),
                rule(&["update"], &[""], &["replicationcontrollers/status"]),
                rule(&["update"], &[""], &["replicationcontrollers/finalizers"]),
                rule(
                    &["list", "watch", "patch", "create", "delete"],
                    &[""],
                    &["pods"],
                ),
                events(),
            ],
        ),
        (
            RESOURCEQUOTA,
            vec![
                rule(&["list", "watch"], all, all),
                rule(&["update"], &[""], &["resourcequotas/status"]),
                events(),
            ],
        ),
        (
            ROOT_CA,
            vec![
                rule(&["create", "update"], &[""], &["configmaps"]),
                events(),
            ],
        ),
        (
            SERVICE_ACCOUNT,
            vec![rule(&["create"], &[""], &["serviceaccounts"]), events()],
        ),
        (
            STATEFULSET,
            vec![
                rule(&["list", "watch"], &[""], &["pods"]),
                rule(READ, &["apps"], &["statefulsets"]),
                rule(&["update"], &["apps"], &["statefulsets/status"]),
                rule(&["update"], &["apps"], &["statefulsets/finalizers"]),
                rule(
                    &["get", "create", "delete", "update", "patch"],
                    &[""],
                    &["pods"],
                ),
                rule(
                    &[
                        "get", "create", "delete", "update", "patch", "list", "watch",
                    ],
                    &["apps"],
                    &["controllerrevisions"],
                ),
                rule(
                    &["get", "create", "list", "watch"],
                    &[""],
                    &["persistentvolumeclaims"],
                ),
                rule(&["update", "delete"], &[""], &["persistentvolumeclaims"]),
                rule(&["update"], &[""], &["pods/finalizers"]),
                events(),
            ],
        ),
        (
            TTL_AFTER_FINISHED,
            vec![
                rule(&["get", "list", "watch", "delete"], &["batch"], &["jobs"]),
                events(),
            ],
        ),
    ]
}

/// The service account subject of controller `account`.
pub fn subject(account: &str) -> Value {
    json!({"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE})
}
