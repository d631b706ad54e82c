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
