//! ReplicationControllers end to end through stock kubectl: the replication manager
//! creates pods owned by the RC, replaces deleted ones, scales up and down through the
//! `scale` subresource (kubectl scale, raw GET/PUT with resourceVersion semantics),
//! adopts matching orphans and releases pods that stop matching, and surfaces a failing
//! create (exceeded quota) as the `ReplicaFailure` condition; deleting an RC takes its
//! pods with it (garbage collector), unless asked to orphan them.

mod common;

use common::{Cluster, write_file};
use serde_json::Value;

const WAIT: u64 = 90;

fn rc_yaml(name: &str, app: &str, replicas: u32, selector: &str) -> String {
    format!(
        "apiVersion: v1
kind: ReplicationController
metadata:
  name: {name}
spec:
  replicas: {replicas}
{selector}  template:
    metadata:
      labels:
        app: {app}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: rkind/host
        command: [\"sleep\", \"3600\"]
"
    )
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn get(c: &Cluster, ns: &str, args: &[&str]) -> Value {
    let mut all = vec!["-n", ns, "get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    json(&c.ok(&all))
}

/// The active (not terminating) pods labelled `app=<app>`.
fn pods(c: &Cluster, ns: &str, app: &str) -> Vec<Value> {
    let list = get(c, ns, &["pods", "-l", &format!("app={app}")]);
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect()
}

fn running(c: &Cluster, ns: &str, app: &str) -> Vec<Value> {
    pods(c, ns, app)
        .into_iter()
        .filter(|p| p["status"]["phase"] == "Running")
        .collect()
}

fn names(pods: &[Value]) -> Vec<String> {
    let mut n: Vec<String> = pods
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect();
    n.sort();
    n
}

fn wait_running(c: &Cluster, ns: &str, app: &str, n: usize) {
    c.eventually(WAIT, &format!("{n} running pods app={app}"), || {
        pods(c, ns, app).len() == n && running(c, ns, app).len() == n
    });
}

/// Scales to zero, waits for the pods to go, deletes the RC.
fn remove_rc(c: &Cluster, ns: &str, rc: &str, app: &str) {
    c.ok(&["-n", ns, "scale", "rc", rc, "--replicas=0"]);
    c.eventually(WAIT, &format!("no pods app={app}"), || {
        get(c, ns, &["pods", "-l", &format!("app={app}")])["items"]
            .as_array()
            .is_some_and(|a| a.is_empty())
    });
    c.ok(&["-n", ns, "delete", "rc", rc]);
}

fn scale_path(ns: &str, rc: &str) -> String {
    format!("/api/v1/namespaces/{ns}/replicationcontrollers/{rc}/scale")
}

#[test]
fn pods_are_created_owned_replaced_and_scaled() {
    let c = Cluster::start("rc-basic");
    let f = write_file(c.dir.path(), "rc.yaml", &rc_yaml("web", "web", 2, ""));
    c.ok(&["apply", "-f", &f.display().to_string()]);
    wait_running(&c, "default", "web", 2);
    let rc = get(&c, "default", &["rc", "web"]);
    let uid = rc["metadata"]["uid"].as_str().expect("uid").to_string();
    assert_eq!(rc["spec"]["selector"], serde_json::json!({"app": "web"}));
    assert_eq!(rc["metadata"]["labels"], serde_json::json!({"app": "web"}));
    for p in pods(&c, "default", "web") {
        let name = p["metadata"]["name"].as_str().unwrap_or("");
        assert!(name.starts_with("web-"), "{name}");
        assert_eq!(
            p["metadata"]["ownerReferences"],
            serde_json::json!([{"apiVersion": "v1", "kind": "ReplicationController",
                "name": "web", "uid": uid, "controller": true, "blockOwnerDeletion": true}])
        );
    }
    c.eventually(
        WAIT,
        "status: 2 ready and available, generation 1 seen",
        || {
            let s = get(&c, "default", &["rc", "web"])["status"].clone();
            s["replicas"] == 2
                && s["readyReplicas"] == 2
                && s["availableReplicas"] == 2
                && s["fullyLabeledReplicas"] == 2
                && s["observedGeneration"] == 1
        },
    );

    // Table columns, wide columns, short name and the `all` category.
    let table = c.ok(&["get", "rc"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
        "{table}"
    );
    let row: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(&row[..4], ["web", "2", "2", "2"], "{table}");
    let wide = c.ok(&["get", "replicationcontrollers", "-o", "wide"]);
    let header: Vec<&str> = wide
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ],
        "{wide}"
    );
    assert!(
        wide.lines()
            .nth(1)
            .is_some_and(|l| l.split_whitespace().skip(5).collect::<Vec<_>>()
                == ["main", "rkind/host", "app=web"]),
        "{wide}"
    );
    let all = c.ok(&["get", "all"]);
    assert!(all.contains("replicationcontroller/web"), "{all}");

    // A deleted pod is replaced.
    let before = names(&pods(&c, "default", "web"));
    c.ok(&["delete", "pod", &before[0], "--wait=false"]);
    c.eventually(WAIT, "a replacement pod", || {
        let now = names(&running(&c, "default", "web"));
        now.len() == 2 && !now.contains(&before[0])
    });

    // kubectl scale up, through the scale subresource.
    let out = c.ok(&["scale", "rc", "web", "--replicas=3"]);
    assert!(out.contains("replicationcontroller/web scaled"), "{out}");
    wait_running(&c, "default", "web", 3);
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "reason=SuccessfulCreate,involvedObject.kind=ReplicationController",
        "-o",
        "jsonpath={.items[*].message}",
    ]);
    assert!(events.contains("Created pod: web-"), "{events}");

    // Raw GET of the Scale.
    let path = scale_path("default", "web");
    let scale = json(&c.ok(&["get", "--raw", &path]));
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["metadata"]["uid"], uid.as_str());
    assert_eq!(scale["spec"]["replicas"], 3);
    assert_eq!(scale["status"]["selector"], "app=web");
    let rv = scale["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();

    // PUT with the current resourceVersion scales down; the same version again is stale.
    let mut down = scale.clone();
    down["spec"]["replicas"] = serde_json::json!(1);
    let f = write_file(c.dir.path(), "scale.json", &down.to_string());
    let out = json(&c.ok(&["replace", "--raw", &path, "-f", &f.display().to_string()]));
    assert_eq!(out["spec"]["replicas"], 1);
    assert_ne!(out["metadata"]["resourceVersion"], rv.as_str());
    let err = c.fails(&["replace", "--raw", &path, "-f", &f.display().to_string()]);
    assert!(
        err.contains("Operation cannot be fulfilled on replicationcontrollers \"web\": the object has been modified; please apply your changes to the latest version and try again"),
        "{err}"
    );
    wait_running(&c, "default", "web", 1);
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "reason=SuccessfulDelete",
        "-o",
        "jsonpath={.items[*].message}",
    ]);
    assert!(events.contains("Deleted pod: web-"), "{events}");

    // Negative replicas: upstream's Scale validation.
    let mut neg = down.clone();
    neg["metadata"]["resourceVersion"] = serde_json::json!("");
    neg["spec"]["replicas"] = serde_json::json!(-1);
    let f = write_file(c.dir.path(), "neg.json", &neg.to_string());
    let err = c.fails(&["replace", "--raw", &path, "-f", &f.display().to_string()]);
    assert!(
        err.contains("The Scale \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
        "{err}"
    );
    // A missing RC's scale.
    let err = c.fails(&["get", "--raw", &scale_path("default", "nope")]);
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );

    // Every scale moved the generation; the controller saw the last one.
    c.eventually(WAIT, "observedGeneration 3", || {
        let rc = get(&c, "default", &["rc", "web"]);
        rc["metadata"]["generation"] == 3 && rc["status"]["observedGeneration"] == 3
    });

    // An old kubectl scales and lists too.
    let out = c.kubectl_bin(
        "kubectl.1.27",
        &["scale", "rc", "web", "--replicas=2"],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_running(&c, "default", "web", 2);
    let out = c.kubectl_bin("kubectl.1.27", &["get", "rc", "web"], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("DESIRED"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    remove_rc(&c, "default", "web", "web");
}

#[test]
fn orphans_are_adopted_non_matching_pods_released_and_bad_specs_refused() {
    let c = Cluster::start("rc-adopt");
    c.ok(&[
        "run",
        "orphan",
        "--image=rkind/host",
        "--labels=app=adopt",
        "--",
        "sleep",
        "3600",
    ]);
    wait_running(&c, "default", "adopt", 1);
    let f = write_file(c.dir.path(), "rc.yaml", &rc_yaml("adopter", "adopt", 1, ""));
    c.ok(&["apply", "-f", &f.display().to_string()]);
    let uid = get(&c, "default", &["rc", "adopter"])["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_string();
    c.eventually(WAIT, "the orphan adopted", || {
        let p = get(&c, "default", &["pod", "orphan"]);
        p["metadata"]["ownerReferences"][0]["uid"] == uid.as_str()
            && p["metadata"]["ownerReferences"][0]["controller"] == true
    });
    c.eventually(WAIT, "status counts the adopted pod", || {
        let s = get(&c, "default", &["rc", "adopter"])["status"].clone();
        s["replicas"] == 1 && s["readyReplicas"] == 1
    });
    assert_eq!(names(&pods(&c, "default", "adopt")), ["orphan"]);

    // Labels that stop matching: released, and replaced.
    c.ok(&["label", "pod", "orphan", "app=gone", "--overwrite"]);
    c.eventually(WAIT, "the pod released", || {
        let refs = &get(&c, "default", &["pod", "orphan"])["metadata"]["ownerReferences"];
        refs.is_null() || refs.as_array().is_some_and(|a| a.is_empty())
    });
    wait_running(&c, "default", "adopt", 1);
    assert_ne!(names(&pods(&c, "default", "adopt")), ["orphan"]);

    // A selector that does not match the template: 422 with upstream's message.
    let bad = rc_yaml("bad", "actual", 1, "  selector:\n    app: wanted\n");
    let f = write_file(c.dir.path(), "bad.yaml", &bad);
    let err = c.fails(&["apply", "-f", &f.display().to_string()]);
    assert!(
        err.contains("The ReplicationController \"bad\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"actual\"}: `selector` does not match template `labels`"),
        "{err}"
    );
    let err = c.fails(&["get", "rc", "bad"]);
    assert!(err.contains("NotFound"), "{err}");

    remove_rc(&c, "default", "adopter", "adopt");
    c.ok(&["delete", "pod", "orphan", "--wait=false"]);
    c.eventually(WAIT, "the released pod gone", || {
        get(&c, "default", &["pods"])["items"]
            .as_array()
            .is_some_and(|a| a.is_empty())
    });
}

#[test]
fn exceeded_quota_surfaces_a_replica_failure_condition() {
    let c = Cluster::start("rc-quota");
    c.ok(&["create", "ns", "q"]);
    c.ok(&["-n", "q", "create", "quota", "pods", "--hard=pods=2"]);
    let f = write_file(c.dir.path(), "rc.yaml", &rc_yaml("capped", "capped", 3, ""));
    c.ok(&["-n", "q", "apply", "-f", &f.display().to_string()]);
    let condition = |c: &Cluster| -> Option<Value> {
        get(c, "q", &["rc", "capped"])["status"]["conditions"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["type"] == "ReplicaFailure").cloned())
    };
    c.eventually(WAIT, "a ReplicaFailure condition", || {
        condition(&c).is_some()
    });
    let cond = condition(&c).expect("condition");
    assert_eq!(cond["status"], "True");
    assert_eq!(cond["reason"], "FailedCreate");
    let msg = cond["message"].as_str().unwrap_or("");
    assert!(
        msg.starts_with("pods \"capped-")
            && msg.ends_with(
                "\" is forbidden: exceeded quota: pods, requested: pods=1, used: pods=2, limited: pods=2"
            ),
        "{cond}"
    );
    let events = c.ok(&[
        "-n",
        "q",
        "get",
        "events",
        "--field-selector",
        "reason=FailedCreate",
        "-o",
        "jsonpath={.items[*].message}",
    ]);
    assert!(
        events.contains("Error creating: pods \"capped-") && events.contains("exceeded quota"),
        "{events}"
    );
    assert_eq!(pods(&c, "q", "capped").len(), 2);

    // Within the quota again: the condition goes.
    c.ok(&["-n", "q", "scale", "rc", "capped", "--replicas=2"]);
    c.eventually(WAIT, "the condition removed", || condition(&c).is_none());
    wait_running(&c, "q", "capped", 2);
    remove_rc(&c, "q", "capped", "capped");
}

/// Upstream's GC conformance cases on RCs: `kubectl delete rc` (background) takes the
/// pods; `--cascade=orphan` leaves them without the ownerReference, and a new RC with the
/// same selector adopts them; `--cascade=foreground` keeps the RC (with the
/// `foregroundDeletion` finalizer) until its pods are gone.
#[test]
fn deleting_an_rc_cascades_to_its_pods_unless_orphaning() {
    let c = Cluster::start("rc-gc");
    let f = write_file(c.dir.path(), "rc.yaml", &rc_yaml("gc", "gc", 2, ""));
    let path = f.display().to_string();

    c.ok(&["apply", "-f", &path]);
    wait_running(&c, "default", "gc", 2);
    c.ok(&["delete", "rc", "gc", "--cascade=background"]);
    c.eventually(WAIT, "background: the RC's pods are collected", || {
        get(&c, "default", &["pods", "-l", "app=gc"])["items"]
            .as_array()
            .is_some_and(|a| a.is_empty())
    });

    c.ok(&["apply", "-f", &path]);
    wait_running(&c, "default", "gc", 2);
    let kept = names(&pods(&c, "default", "gc"));
    c.ok(&["delete", "rc", "gc", "--cascade=orphan"]);
    c.eventually(
        WAIT,
        "orphan: the RC is gone, its pods stay unowned",
        || {
            rc_gone(&c, "gc")
                && pods(&c, "default", "gc")
                    .iter()
                    .all(|p| p["metadata"]["ownerReferences"].is_null())
        },
    );
    assert_eq!(
        names(&pods(&c, "default", "gc")),
        kept,
        "orphaned pods survive"
    );

    // A new RC with the same selector adopts the orphans instead of creating pods.
    c.ok(&["apply", "-f", &path]);
    let uid = get(&c, "default", &["rc", "gc"])["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_string();
    c.eventually(WAIT, "the orphans are adopted", || {
        pods(&c, "default", "gc")
            .iter()
            .all(|p| p["metadata"]["ownerReferences"][0]["uid"] == uid.as_str())
    });
    assert_eq!(
        names(&pods(&c, "default", "gc")),
        kept,
        "adopted, not replaced"
    );

    let out = c.ok(&["delete", "rc", "gc", "--cascade=foreground", "--wait=false"]);
    assert!(out.contains("deleted"), "{out}");
    let held = c.kubectl(&["get", "rc", "gc", "-o", "json"]);
    if held.status.success() {
        let rc = json(&String::from_utf8_lossy(&held.stdout));
        // Still there while its pods terminate: held by the foreground finalizer.
        assert_eq!(
            rc["metadata"]["finalizers"],
            serde_json::json!(["foregroundDeletion"]),
            "{rc}"
        );
        assert!(rc["metadata"]["deletionTimestamp"].is_string(), "{rc}");
    }
    c.eventually(WAIT, "foreground: pods and then the RC are gone", || {
        rc_gone(&c, "gc")
            && get(&c, "default", &["pods", "-l", "app=gc"])["items"]
                .as_array()
                .is_some_and(|a| a.is_empty())
    });
}

/// Whether RC `name` is gone (kubectl answers NotFound).
fn rc_gone(c: &Cluster, name: &str) -> bool {
    let out = c.kubectl(&["get", "rc", name]);
    !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NotFound")
}
