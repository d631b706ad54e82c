//! Namespace deletion through stock kubectl, as the namespace controller does it over
//! HTTPS: the namespace is emptied (ConfigMaps, Secrets, Events, pods after their grace
//! period), its conditions say what remains and which finalizers hold it (upstream's
//! reasons and messages), other `spec.finalizers` keep it Terminating until `finalize`
//! removes them, nothing new may be created in it meanwhile, and a deletion left
//! unfinished by a stopped cluster finishes after the restart.

mod common;

use common::Cluster;
use serde_json::{Value, json};

/// `kubectl get ns NAME -o json`, or None once it is gone.
fn namespace(c: &Cluster, name: &str) -> Option<Value> {
    let out = c.kubectl(&["get", "ns", name, "-o", "json"]);
    if out.status.success() {
        return Some(serde_json::from_slice(&out.stdout).expect("namespace JSON"));
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("NotFound"), "kubectl get ns {name}: {err}");
    None
}

/// The condition `ty` of a namespace object.
fn condition(ns: &Value, ty: &str) -> Option<Value> {
    ns["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == ty).cloned())
}

fn wait_gone(c: &Cluster, name: &str) {
    c.eventually(120, &format!("namespace {name} removed"), || {
        namespace(c, name).is_none()
    });
}

/// A pod that ignores SIGTERM, so its grace period is really used.
fn slow_pod(name: &str, grace: u32, finalizers: &[&str]) -> String {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "finalizers": finalizers},
        "spec": {"terminationGracePeriodSeconds": grace, "containers": [{"name": "c",
            "image": "rkind/host", "command": ["sh", "-c", "trap '' TERM; sleep 3600"]}]}})
    .to_string()
}

#[test]
fn deleting_a_namespace_empties_it_then_removes_it() {
    let c = Cluster::start("ns-empty");
    c.ok(&["create", "ns", "gone"]);
    c.ok(&[
        "-n",
        "gone",
        "create",
        "configmap",
        "cm",
        "--from-literal=a=1",
    ]);
    c.ok(&[
        "-n",
        "gone",
        "create",
        "secret",
        "generic",
        "s",
        "--from-literal=a=1",
    ]);
    let event = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "ev"},
        "involvedObject": {"kind": "ConfigMap", "name": "cm", "namespace": "gone"},
        "reason": "Testing", "message": "hello", "type": "Normal"});
    c.ok_stdin(&["-n", "gone", "create", "-f", "-"], &event.to_string());
    c.ok_stdin(&["-n", "gone", "create", "-f", "-"], &slow_pod("p", 5, &[]));
    c.eventually(60, "pod p running", || {
        c.ok(&[
            "-n",
            "gone",
            "get",
            "pod",
            "p",
            "-o",
            "jsonpath={.status.phase}",
        ]) == "Running"
    });

    let deleted = c.ok(&["delete", "ns", "gone", "--wait=false"]);
    assert!(deleted.contains("namespace \"gone\" deleted"), "{deleted}");
    let ns = namespace(&c, "gone").expect("the namespace is still there while it empties");
    assert_eq!(ns["status"]["phase"], "Terminating");
    wait_gone(&c, "gone");
    // Its content went with it (a list in a namespace that is gone is empty).
    let left = c.ok(&[
        "-n",
        "gone",
        "get",
        "configmaps,secrets,pods,events,serviceaccounts",
        "-o",
        "name",
    ]);
    assert_eq!(left.trim(), "", "left behind: {left}");
    // The name can be used again, for a fresh, empty namespace.
    c.ok(&["create", "ns", "gone"]);
    let cms = c.ok(&["-n", "gone", "get", "configmaps", "-o", "name"]);
    assert!(!cms.contains("configmap/cm"), "{cms}");
}

#[test]
fn content_with_finalizers_holds_the_namespace_with_upstream_conditions() {
    let c = Cluster::start("ns-held");
    c.ok(&["create", "ns", "held"]);
    c.ok_stdin(
        &["-n", "held", "create", "-f", "-"],
        &slow_pod("p", 1, &["example.com/hold"]),
    );
    c.ok(&["delete", "ns", "held", "--wait=false"]);

    let mut last = Value::Null;
    c.eventually(90, "conditions naming the held pod", || {
        last = namespace(&c, "held").expect("held namespace");
        condition(&last, "NamespaceFinalizersRemaining").is_some_and(|f| f["status"] == "True")
            && condition(&last, "NamespaceContentRemaining").is_some_and(|f| {
                f["message"] == "Some resources are remaining: pods. has 1 resource instances"
            })
    });
    let content = condition(&last, "NamespaceContentRemaining").unwrap();
    assert_eq!(content["status"], "True");
    assert_eq!(content["reason"], "SomeResourcesRemain");
    let fins = condition(&last, "NamespaceFinalizersRemaining").unwrap();
    assert_eq!(fins["reason"], "SomeFinalizersRemain");
    assert_eq!(
        fins["message"],
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
    );
    let discovery = condition(&last, "NamespaceDeletionDiscoveryFailure").unwrap();
    assert_eq!(discovery["status"], "False");
    assert_eq!(discovery["reason"], "ResourcesDiscovered");
    assert_eq!(
        discovery["message"],
        "All resources successfully discovered"
    );
    let failure = condition(&last, "NamespaceDeletionContentFailure").unwrap();
    assert_eq!(failure["status"], "False");
    assert_eq!(failure["reason"], "ContentDeleted");
    let parsing = condition(&last, "NamespaceDeletionGroupVersionParsingFailure").unwrap();
    assert_eq!(parsing["reason"], "ParsedGroupVersions");
    assert_eq!(last["spec"]["finalizers"], json!(["kubernetes"]));
    // Written by the namespace controller as kube-controller-manager.
    let status_writer = c.ok(&[
        "get",
        "ns",
        "held",
        "--show-managed-fields",
        "-o",
        "jsonpath={.metadata.managedFields[?(@.subresource==\"status\")].manager}",
    ]);
    assert!(
        status_writer.contains("kube-controller-manager"),
        "{status_writer}"
    );
    let table = c.ok(&["get", "ns", "held"]);
    assert!(table.contains("Terminating"), "{table}");

    // Nothing new may be created in it meanwhile (the NamespaceLifecycle admission).
    let late = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}});
    let err = c.fails_stdin(&["-n", "held", "create", "-f", "-"], &late.to_string());
    assert!(
        err.contains(
            "Error from server (Forbidden): error when creating \"STDIN\": configmaps \"late\" is forbidden: unable to create new content in namespace held because it is being terminated"
        ),
        "{err}"
    );

    // Releasing the pod lets the namespace go.
    c.ok(&[
        "-n",
        "held",
        "patch",
        "pod",
        "p",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    wait_gone(&c, "held");
}

#[test]
fn another_spec_finalizer_keeps_the_namespace_until_finalize_removes_it() {
    let c = Cluster::start("ns-finalize");
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fin"},
        "spec": {"finalizers": ["example.com/ns-hold"]}});
    c.ok_stdin(&["create", "-f", "-"], &ns.to_string());
    let created = namespace(&c, "fin").expect("fin");
    assert_eq!(
        created["spec"]["finalizers"],
        json!(["example.com/ns-hold", "kubernetes"])
    );
    c.ok(&["-n", "fin", "create", "configmap", "cm"]);
    c.ok(&["delete", "ns", "fin", "--wait=false"]);

    // The controller empties it and removes only its own finalizer.
    let mut last = Value::Null;
    c.eventually(90, "the kubernetes finalizer removed", || {
        last = namespace(&c, "fin").expect("fin stays while example.com/ns-hold is there");
        last["spec"]["finalizers"] == json!(["example.com/ns-hold"])
    });
    assert_eq!(last["status"]["phase"], "Terminating");
    let content = condition(&last, "NamespaceContentRemaining").expect("conditions");
    assert_eq!(content["status"], "False");
    assert_eq!(content["reason"], "ContentRemoved");
    assert_eq!(content["message"], "All content successfully removed");
    assert_eq!(
        c.ok(&["-n", "fin", "get", "configmaps", "-o", "name"])
            .trim(),
        ""
    );
    // Still there: only its last finalizer's owner may let it go.
    let again = namespace(&c, "fin").expect("fin is held by example.com/ns-hold");
    assert_eq!(again["spec"]["finalizers"], json!(["example.com/ns-hold"]));

    let mut finalized = again.clone();
    finalized["spec"]["finalizers"] = json!([]);
    c.ok_stdin(
        &[
            "replace",
            "--raw",
            "/api/v1/namespaces/fin/finalize",
            "-f",
            "-",
        ],
        &finalized.to_string(),
    );
    wait_gone(&c, "fin");
}

#[test]
fn a_deletion_left_unfinished_finishes_after_a_restart() {
    let mut c = Cluster::start("ns-restart");
    c.ok(&["create", "ns", "later"]);
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "held", "finalizers": ["example.com/hold"]}});
    c.ok_stdin(&["-n", "later", "create", "-f", "-"], &cm.to_string());
    c.ok(&["delete", "ns", "later", "--wait=false"]);
    c.eventually(90, "the held ConfigMap reported", || {
        namespace(&c, "later")
            .and_then(|ns| condition(&ns, "NamespaceFinalizersRemaining"))
            .is_some_and(|f| f["status"] == "True")
    });

    c.stop();
    c.boot();
    let ns = namespace(&c, "later").expect("still terminating after the restart");
    assert_eq!(ns["status"]["phase"], "Terminating");
    c.ok(&[
        "-n",
        "later",
        "patch",
        "configmap",
        "held",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    wait_gone(&c, "later");
}
