//! RBAC end to end with stock kubectl: a Role and a RoleBinding for a service account,
//! `kubectl auth can-i` as that account (impersonation, SelfSubjectAccessReview), and
//! upstream's Forbidden message for what its role does not allow.
//!
//! Isolation levels: root only (no container behaviour is under test here).

mod common;

use common::Cluster;

/// `kubectl auth can-i`'s answer (it exits 1 for "no").
fn can_i(c: &Cluster, args: &[&str]) -> String {
    let mut all = vec!["auth", "can-i"];
    all.extend_from_slice(args);
    let out = c.kubectl(&all);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_role_binding_grants_its_rules_and_nothing_more() {
    let c = Cluster::start("rbac");
    let bot = "--as=system:serviceaccount:default:bot";
    c.ok(&["create", "sa", "bot"]);
    c.ok(&[
        "create",
        "role",
        "pod-reader",
        "--verb=get,list,watch",
        "--resource=pods",
    ]);
    assert_eq!(can_i(&c, &["list", "pods", bot]), "no");
    c.ok(&[
        "create",
        "rolebinding",
        "bot-reads",
        "--role=pod-reader",
        "--serviceaccount=default:bot",
    ]);
    assert_eq!(c.ok(&["auth", "can-i", "list", "pods", bot]).trim(), "yes");
    assert_eq!(can_i(&c, &["delete", "pods", bot]), "no");
    assert_eq!(can_i(&c, &["list", "pods", "-n", "kube-system", bot]), "no");
    c.ok(&["create", "configmap", "c"]);
    let err = c.fails(&["delete", "configmap", "c", bot]);
    assert!(
        err.contains("configmaps \"c\" is forbidden: User \"system:serviceaccount:default:bot\" cannot delete resource \"configmaps\" in API group \"\" in the namespace \"default\""),
        "{err}"
    );
    c.ok(&["get", "pods", bot]);
    let rules = c.ok(&["auth", "can-i", "--list", bot]);
    assert!(
        rules.contains("pods") && rules.contains("[get list watch]"),
        "{rules}"
    );
    assert!(!rules.contains("configmaps"), "{rules}");
}

/// A kubelet's identity reads only what its pods use (Node authorizer) and writes only
/// its own objects (NodeRestriction), with upstream's reasons in the Forbidden messages.
#[test]
fn a_kubelet_reads_only_what_its_pods_use() {
    let c = Cluster::start("rbac-node");
    let node = c.ok(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"]);
    let as_node = format!("--as=system:node:{node}");
    let as_other = "--as=system:node:elsewhere";
    let nodes = "--as-group=system:nodes";
    let user = format!("User \"system:node:{node}\"");
    let err = c.fails(&["get", "secrets", &as_node, nodes]);
    assert!(
        err.contains(&format!("secrets is forbidden: {user} cannot list resource \"secrets\" in API group \"\" in the namespace \"default\": No Object name found")),
        "{err}"
    );
    c.ok(&["create", "secret", "generic", "s", "--from-literal=k=v"]);
    let err = c.fails(&["get", "secret", "s", &as_node, nodes]);
    assert!(
        err.contains(&format!("secrets \"s\" is forbidden: {user} cannot get resource \"secrets\" in API group \"\" in the namespace \"default\": no relationship found between node '{node}' and this object")),
        "{err}"
    );
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "uses-s"},
        "spec": {"automountServiceAccountToken": false,
                 "volumes": [{"name": "s", "secret": {"secretName": "s"}}],
                 "containers": [{"name": "c", "image": "rkind/host", "command": ["sleep", "600"],
                                 "volumeMounts": [{"name": "s", "mountPath": "/s"}]}]}
    });
    c.ok_stdin(&["apply", "-f", "-"], &pod.to_string());
    c.eventually(60, "pod uses-s to be scheduled", || {
        !c.ok(&["get", "pod", "uses-s", "-o", "jsonpath={.spec.nodeName}"])
            .is_empty()
    });
    c.ok(&["get", "secret", "s", &as_node, nodes]);
    // The real kubelet mounted it with that same identity.
    c.eventually(60, "pod uses-s to run", || {
        c.ok(&["get", "pod", "uses-s", "-o", "jsonpath={.status.phase}"]) == "Running"
    });
    // Other kubelets may not touch this node's objects.
    let err = c.fails(&["get", "secret", "s", as_other, nodes]);
    assert!(
        err.contains("no relationship found between node 'elsewhere'"),
        "{err}"
    );
    let err = c.fails(&["label", "node", &node, "x=y", as_other, nodes]);
    assert!(
        err.contains(&format!("nodes \"{node}\" is forbidden: node \"elsewhere\" is not allowed to modify node \"{node}\"")),
        "{err}"
    );
    let err = c.fails(&["delete", "pod", "uses-s", "--wait=false", as_other, nodes]);
    assert!(
        err.contains("pods \"uses-s\" is forbidden: node \"elsewhere\" can only delete pods with spec.nodeName set to itself"),
        "{err}"
    );
    let err = c.fails(&["run", "p", "--image=rkind/host", &as_node, nodes]);
    assert!(
        err.contains(&format!("node \"{node}\" can only create mirror pods")),
        "{err}"
    );
    assert_eq!(
        can_i(&c, &["list", "secrets", &as_node, nodes]),
        "no - No Object name found"
    );
    assert_eq!(
        can_i(&c, &["create", "pods/eviction", &as_node, nodes]),
        "yes"
    );
}

/// Escalation prevention: a user who may write roles and bindings can grant only what
/// they hold, unless they have `escalate` or `bind` on the role.
#[test]
fn roles_and_bindings_grant_only_what_the_writer_holds() {
    let c = Cluster::start("rbac-escalate");
    let dev = "--as=dev";
    c.ok(&[
        "create",
        "role",
        "rbac-writer",
        "--verb=create,update,get",
        "--resource=roles.rbac.authorization.k8s.io,rolebindings.rbac.authorization.k8s.io",
    ]);
    c.ok(&[
        "create",
        "role",
        "pod-reader",
        "--verb=get,list",
        "--resource=pods",
    ]);
    c.ok(&[
        "create",
        "rolebinding",
        "dev-writes",
        "--role=rbac-writer",
        "--user=dev",
    ]);
    c.ok(&[
        "create",
        "rolebinding",
        "dev-reads",
        "--role=pod-reader",
        "--user=dev",
    ]);
    c.ok(&[
        "create",
        "role",
        "mine",
        "--verb=get",
        "--resource=pods",
        dev,
    ]);
    let err = c.fails(&[
        "create",
        "role",
        "more",
        "--verb=delete",
        "--resource=pods",
        dev,
    ]);
    assert!(
        err.contains("roles.rbac.authorization.k8s.io \"more\" is forbidden: user \"dev\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}"),
        "{err}"
    );
    c.ok(&[
        "create",
        "rolebinding",
        "b1",
        "--role=pod-reader",
        "--user=other",
        dev,
    ]);
    let err = c.fails(&[
        "create",
        "rolebinding",
        "b2",
        "--clusterrole=edit",
        "--user=other",
        dev,
    ]);
    assert!(
        err.contains("rolebindings.rbac.authorization.k8s.io \"b2\" is forbidden: user \"dev\"")
            && err.contains("attempting to grant RBAC permissions not currently held"),
        "{err}"
    );
    // With `bind` on the ClusterRole the binding is allowed.
    c.ok(&[
        "create",
        "role",
        "may-bind-edit",
        "--verb=bind",
        "--resource=clusterroles.rbac.authorization.k8s.io",
        "--resource-name=edit",
    ]);
    c.ok(&[
        "create",
        "rolebinding",
        "dev-binds",
        "--role=may-bind-edit",
        "--user=dev",
    ]);
    c.ok(&[
        "create",
        "rolebinding",
        "b2",
        "--clusterrole=edit",
        "--user=other",
        dev,
    ]);
}

/// ClusterRole aggregation: a role labelled `aggregate-to-view` extends view, and through
/// it edit and admin; removing the label takes the rules away again.
#[test]
fn labelled_roles_extend_view_edit_and_admin() {
    let c = Cluster::start("rbac-aggregate");
    c.ok(&[
        "create",
        "clusterrole",
        "lease-reader",
        "--verb=list",
        "--resource=leases.coordination.k8s.io",
    ]);
    c.ok(&[
        "create",
        "rolebinding",
        "eve-views",
        "--clusterrole=view",
        "--user=eve",
    ]);
    assert_eq!(can_i(&c, &["list", "leases", "--as=eve"]), "no");
    c.ok(&[
        "label",
        "clusterrole",
        "lease-reader",
        "rbac.authorization.k8s.io/aggregate-to-view=true",
    ]);
    for role in ["view", "edit", "admin"] {
        c.eventually(20, &format!("{role} to hold the lease rule"), || {
            c.ok(&[
                "get",
                "clusterrole",
                role,
                "-o",
                "jsonpath={.rules[*].resources}",
            ])
            .contains("leases")
        });
    }
    assert_eq!(can_i(&c, &["list", "leases", "--as=eve"]), "yes");
    // view keeps what it had.
    assert_eq!(can_i(&c, &["list", "pods", "--as=eve"]), "yes");
    c.ok(&[
        "label",
        "clusterrole",
        "lease-reader",
        "rbac.authorization.k8s.io/aggregate-to-view-",
    ]);
    c.eventually(20, "view to lose the lease rule", || {
        !c.ok(&[
            "get",
            "clusterrole",
            "view",
            "-o",
            "jsonpath={.rules[*].resources}",
        ])
        .contains("leases")
    });
    assert_eq!(can_i(&c, &["list", "leases", "--as=eve"]), "no");
}

/// The bootstrap policy is reconciled at every start: a rule removed from a bootstrap
/// role comes back, a rule a user added stays, and `autoupdate: "false"` opts out.
#[test]
fn the_bootstrap_policy_is_reconciled_at_start() {
    let mut c = Cluster::start("rbac-reconcile");
    let rules = |c: &Cluster, role: &str| {
        c.ok(&[
            "get",
            "clusterrole",
            role,
            "-o",
            "jsonpath={.rules[*].resources}",
        ])
    };
    assert!(rules(&c, "system:basic-user").contains("selfsubjectaccessreviews"));
    let replace = r#"[{"op":"replace","path":"/rules","value":[{"verbs":["get"],"apiGroups":[""],"resources":["configmaps"]}]}]"#;
    c.ok(&[
        "patch",
        "clusterrole",
        "system:basic-user",
        "--type=json",
        "-p",
        replace,
    ]);
    c.ok(&[
        "patch",
        "clusterrole",
        "system:discovery",
        "--type=json",
        "-p",
        replace,
    ]);
    c.ok(&[
        "annotate",
        "clusterrole",
        "system:discovery",
        "--overwrite",
        "rbac.authorization.kubernetes.io/autoupdate=false",
    ]);
    c.stop();
    c.boot();
    let basic = rules(&c, "system:basic-user");
    assert!(
        basic.contains("selfsubjectaccessreviews") && basic.contains("configmaps"),
        "{basic}"
    );
    assert_eq!(rules(&c, "system:discovery"), "[\"configmaps\"]");
}

/// The controller manager and each of its controllers act with least privilege, as
/// upstream's `--use-service-account-credentials`: the manager may run informers and mint
/// its controllers' tokens; each controller is the service account `kube-system/<name>`
/// bound to `system:controller:<name>`. With the pods rule taken from its role the
/// ReplicaSet controller is refused, says so in a `FailedCreate` event, and catches up
/// once the policy is reconciled at the next start.
#[test]
fn controllers_act_with_their_own_least_privilege_accounts() {
    let mut c = Cluster::start("rbac-controllers");
    let cm = "--as=system:kube-controller-manager";
    assert_eq!(can_i(&c, &["list", "secrets", "-A", cm]), "yes");
    assert_eq!(
        can_i(
            &c,
            &["create", "serviceaccounts/token", "-n", "kube-system", cm]
        ),
        "yes"
    );
    assert_eq!(can_i(&c, &["delete", "pods", cm]), "no");
    assert_eq!(can_i(&c, &["create", "deployments.apps", cm]), "no");
    let accounts = c.ok(&["get", "sa", "-n", "kube-system", "-o", "name"]);
    for sa in [
        "replicaset-controller",
        "deployment-controller",
        "generic-garbage-collector",
        "namespace-controller",
        "root-ca-cert-publisher",
    ] {
        assert!(
            accounts.contains(&format!("serviceaccount/{sa}")),
            "{accounts}"
        );
        let binding = c.ok(&[
            "get",
            "clusterrolebinding",
            &format!("system:controller:{sa}"),
            "-o",
            "jsonpath={.roleRef.name} {.subjects[0].kind} {.subjects[0].namespace}/{.subjects[0].name}",
        ]);
        assert_eq!(
            binding,
            format!("system:controller:{sa} ServiceAccount kube-system/{sa}")
        );
    }
    let rs = "--as=system:serviceaccount:kube-system:replicaset-controller";
    assert_eq!(can_i(&c, &["create", "pods", rs]), "yes");
    assert_eq!(can_i(&c, &["get", "secrets", rs]), "no");
    assert_eq!(can_i(&c, &["create", "replicasets.apps", rs]), "no");
    let deploy = "--as=system:serviceaccount:kube-system:deployment-controller";
    assert_eq!(can_i(&c, &["create", "replicasets.apps", deploy]), "yes");
    assert_eq!(can_i(&c, &["create", "pods", deploy]), "no");

    // Its role without pods: it still writes events and status, but creates nothing.
    let without_pods = r#"[{"op":"replace","path":"/rules","value":[
        {"verbs":["get","list","watch","update"],"apiGroups":["apps"],"resources":["replicasets"]},
        {"verbs":["update"],"apiGroups":["apps"],"resources":["replicasets/status"]},
        {"verbs":["create","update","patch"],"apiGroups":[""],"resources":["events"]}]}]"#;
    c.ok(&[
        "patch",
        "clusterrole",
        "system:controller:replicaset-controller",
        "--type=json",
        "-p",
        without_pods,
    ]);
    let replicaset = r#"{"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "lp"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "lp"}},
                 "template": {"metadata": {"labels": {"app": "lp"}},
                              "spec": {"containers": [{"name": "c", "image": "rkind/host",
                                                       "command": ["sleep", "600"]}]}}}}"#;
    c.ok_stdin(&["create", "-f", "-"], replicaset);
    let refused = "is forbidden: User \"system:serviceaccount:kube-system:replicaset-controller\" cannot create resource \"pods\" in API group \"\" in the namespace \"default\"";
    c.eventually(
        30,
        "a FailedCreate event naming the controller's account",
        || {
            let events = c.ok(&[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=lp,reason=FailedCreate",
                "-o",
                "jsonpath={.items[*].message}",
            ]);
            events.contains(refused)
        },
    );
    assert_eq!(
        c.ok(&["get", "pods", "-l", "app=lp", "-o", "name"]),
        "",
        "no pod without the rule"
    );
    c.stop();
    c.boot();
    let rules = c.ok(&[
        "get",
        "clusterrole",
        "system:controller:replicaset-controller",
        "-o",
        "jsonpath={.rules[*].resources}",
    ]);
    assert!(rules.contains("pods"), "reconciled: {rules}");
    c.eventually(60, "the ReplicaSet's pod, once the rule is back", || {
        c.ok(&["get", "rs", "lp", "-o", "jsonpath={.status.replicas}"]) == "1"
    });

    // Deleting the controller's account voids its token: the first refused request has
    // the manager recreate the account and mint a new token at once (not at the timer,
    // 48 minutes away), and the controller goes on.
    let uid = |c: &Cluster| {
        c.ok(&[
            "get",
            "sa",
            "-n",
            "kube-system",
            "replicaset-controller",
            "-o",
            "jsonpath={.metadata.uid}",
        ])
    };
    let before = uid(&c);
    c.ok(&["delete", "sa", "-n", "kube-system", "replicaset-controller"]);
    c.ok(&["scale", "rs", "lp", "--replicas=2"]);
    c.eventually(60, "the second pod, made with a renewed token", || {
        c.ok(&["get", "rs", "lp", "-o", "jsonpath={.status.replicas}"]) == "2"
    });
    let after = uid(&c);
    assert!(!after.is_empty() && after != before, "{before} → {after}");
}

/// The trace endpoint is a non-resource URL like any other: refused to a user RBAC does
/// not let `get` it (with upstream's message), served once a role grants it.
#[test]
fn the_trace_endpoint_is_granted_by_rbac() {
    let c = Cluster::start("rbac-traces");
    let path = "/debug/rkind/traces?limit=1";
    let err = c.fails(&["get", "--raw", path, "--as=alice"]);
    assert!(
        err.contains("forbidden: User \"alice\" cannot get path \"/debug/rkind/traces\""),
        "{err}"
    );
    c.ok(&[
        "create",
        "clusterrole",
        "trace-reader",
        "--verb=get",
        "--non-resource-url=/debug/rkind/traces",
    ]);
    c.ok(&[
        "create",
        "clusterrolebinding",
        "alice-reads-traces",
        "--clusterrole=trace-reader",
        "--user=alice",
    ]);
    let traces: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "--raw", path, "--as=alice"])).expect("JSON");
    assert_eq!(traces["schemaVersion"], 1, "{traces}");
    assert!(traces["traces"].is_array(), "{traces}");
}
