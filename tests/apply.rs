//! Server-side apply end to end with stock kubectl: conflicts naming the other manager,
//! `--force-conflicts`, the shape of `metadata.managedFields` after create, update and
//! apply, removal of a field dropped from a configuration, the upgrade from client-side
//! apply, and status ownership. ConfigMaps and Services only: nothing here runs a
//! container.
//!
//! Isolation levels: root only (no container behaviour is under test here).

mod common;

use common::Cluster;
use serde_json::{Value, json};

fn cm(name: &str, data: &[(&str, &str)]) -> String {
    let mut y = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n");
    if !data.is_empty() {
        y.push_str("data:\n");
        for (k, v) in data {
            // Keys quoted: YAML 1.1 reads a bare `y` as `true`.
            y.push_str(&format!("  \"{k}\": \"{v}\"\n"));
        }
    }
    y
}

fn ssa(c: &Cluster, manager: &str, yaml: &str, force: bool) -> std::process::Output {
    let fm = format!("--field-manager={manager}");
    let mut args = vec!["apply", "--server-side", fm.as_str(), "-f", "-"];
    if force {
        args.push("--force-conflicts");
    }
    c.kubectl_bin("kubectl", &args, Some(yaml))
}

fn ssa_ok(c: &Cluster, manager: &str, yaml: &str) {
    let out = ssa(c, manager, yaml, false);
    assert!(
        out.status.success(),
        "apply by {manager} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn get_json(c: &Cluster, what: &[&str]) -> Value {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.extend_from_slice(&["-o", "json", "--show-managed-fields"]);
    serde_json::from_str(&c.ok(&args)).expect("kubectl get -o json")
}

/// The managedFields entry of `manager` with `operation`.
fn entry(obj: &Value, manager: &str, operation: &str) -> Option<Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
        .cloned()
}

#[test]
fn conflict_names_the_other_manager_and_force_takes_ownership() {
    let c = Cluster::start("ssa-conflict");
    ssa_ok(&c, "a", &cm("shared", &[("x", "1"), ("y", "1")]));
    let out = ssa(&c, "b", &cm("shared", &[("x", "2")]), false);
    assert!(!out.status.success(), "b must conflict with a");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"Apply failed with 1 conflict: conflict with "a": .data.x"#),
        "{err}"
    );
    let obj = get_json(&c, &["configmap", "shared"]);
    assert_eq!(obj["data"]["x"], "1", "a conflict changes nothing");
    // The same value is shared ownership, not a conflict.
    ssa_ok(&c, "b", &cm("shared", &[("y", "1")]));
    // Forcing takes the field over.
    let out = ssa(&c, "b", &cm("shared", &[("x", "2"), ("y", "1")]), true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let obj = get_json(&c, &["configmap", "shared"]);
    assert_eq!(obj["data"], json!({"x": "2", "y": "1"}));
    let a = entry(&obj, "a", "Apply").expect("a's entry");
    assert_eq!(a["fieldsV1"], json!({"f:data": {"f:y": {}}}), "{obj}");
    let b = entry(&obj, "b", "Apply").expect("b's entry");
    assert_eq!(
        b["fieldsV1"],
        json!({"f:data": {"f:x": {}, "f:y": {}}}),
        "{obj}"
    );
}

#[test]
fn managed_fields_after_create_update_and_apply() {
    let c = Cluster::start("ssa-shape");
    c.ok(&["create", "configmap", "m", "--from-literal=k=v"]);
    let obj = get_json(&c, &["configmap", "m"]);
    let created = entry(&obj, "kubectl-create", "Update").expect("kubectl-create's entry");
    assert_eq!(created["apiVersion"], "v1");
    assert_eq!(created["fieldsType"], "FieldsV1");
    assert!(created["time"].is_string(), "{created}");
    assert_eq!(
        created["fieldsV1"],
        json!({"f:data": {".": {}, "f:k": {}}}),
        "{obj}"
    );
    c.ok(&["label", "configmap", "m", "team=x"]);
    ssa_ok(&c, "a", &cm("m", &[("j", "1")]));
    let obj = get_json(&c, &["configmap", "m"]);
    let mf = obj["metadata"]["managedFields"]
        .as_array()
        .expect("entries");
    assert_eq!(mf[0]["manager"], "a", "Apply entries come first: {obj}");
    assert_eq!(mf[0]["fieldsV1"], json!({"f:data": {"f:j": {}}}));
    let label = entry(&obj, "kubectl-label", "Update").expect("kubectl-label's entry");
    assert_eq!(
        label["fieldsV1"],
        json!({"f:metadata": {"f:labels": {".": {}, "f:team": {}}}})
    );
    // Plain `get` leaves them out, as kubectl does against upstream.
    let plain: Value =
        serde_json::from_str(&c.ok(&["get", "configmap", "m", "-o", "json"])).expect("json");
    assert!(plain["metadata"].get("managedFields").is_none());
}

#[test]
fn a_field_dropped_from_the_config_is_removed_unless_someone_else_owns_it() {
    let c = Cluster::start("ssa-prune");
    ssa_ok(&c, "a", &cm("p", &[("x", "1"), ("y", "1"), ("z", "1")]));
    ssa_ok(&c, "b", &cm("p", &[("y", "1")]));
    ssa_ok(&c, "a", &cm("p", &[("x", "1")]));
    let obj = get_json(&c, &["configmap", "p"]);
    assert_eq!(
        obj["data"],
        json!({"x": "1", "y": "1"}),
        "z was a's alone, y is b's too"
    );
}

#[test]
fn conflict_with_client_side_apply_and_the_kubectl_upgrade() {
    let c = Cluster::start("ssa-csa");
    c.ok_stdin(&["apply", "-f", "-"], &cm("csa", &[("x", "1")]));
    let out = ssa(&c, "a", &cm("csa", &[("x", "2")]), false);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            r#"Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: .data.x"#
        ),
        "{err}"
    );
    // kubectl's own manager takes over what it applied client-side.
    let out = c.kubectl_bin(
        "kubectl",
        &["apply", "--server-side", "-f", "-"],
        Some(&cm("csa", &[("x", "3")])),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let obj = get_json(&c, &["configmap", "csa"]);
    assert_eq!(obj["data"]["x"], "3");
    assert!(entry(&obj, "kubectl", "Apply").is_some(), "{obj}");
}

#[test]
fn status_writes_are_owned_under_the_status_subresource() {
    let c = Cluster::start("ssa-status");
    let svc = "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  type: LoadBalancer\n  ports:\n  - port: 80\n";
    ssa_ok(&c, "a", svc);
    c.ok(&[
        "patch",
        "service",
        "s",
        "--subresource=status",
        "--type=merge",
        "--field-manager=lb",
        "-p",
        r#"{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.10"}]}}}"#,
    ]);
    let obj = get_json(&c, &["service", "s"]);
    let lb = entry(&obj, "lb", "Update").expect("lb's entry");
    assert_eq!(lb["subresource"], "status", "{obj}");
    assert!(
        lb["fieldsV1"]["f:status"]["f:loadBalancer"].is_object(),
        "{lb}"
    );
    let a = entry(&obj, "a", "Apply").expect("a's entry");
    assert!(a.get("subresource").is_none());
    assert!(a["fieldsV1"].get("f:status").is_none(), "{a}");
    assert_eq!(
        a["fieldsV1"]["f:spec"]["f:ports"],
        json!({"k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}}}),
        "{a}"
    );
}
