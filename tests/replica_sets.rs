//! ReplicaSets end to end through stock kubectl (1.33 and 1.27): the ReplicaSet
//! controller brings up the pods, owned by the ReplicaSet, and reports them in the status
//! (replicas, readyReplicas, availableReplicas after minReadySeconds, observedGeneration);
//! scales up and down through `kubectl scale` (the cheapest pod by deletion cost goes
//! first); selects with matchLabels and matchExpressions, adopting a matching orphan and
//! releasing a pod whose labels stop matching; `kubectl delete rs` cascades to the pods
//! through the garbage collector, `--cascade=orphan` leaves them.

mod common;

use common::Cluster;
use serde_json::Value;

const WAIT: u64 = 90;

/// A ReplicaSet selecting `app=<app>` and `tier in (fe, edge)`, its pods labelled
/// `app=<app>, tier=fe`.
fn rs_yaml(name: &str, app: &str, replicas: u32, extra: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: {name}
spec:
  replicas: {replicas}
{extra}  selector:
    matchLabels:
      app: {app}
    matchExpressions:
    - key: tier
      operator: In
      values: [fe, edge]
  template:
    metadata:
      labels:
        app: {app}
        tier: fe
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

fn get(c: &Cluster, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    json(&c.ok(&all))
}

/// The active (not terminating) pods labelled `app=<app>`.
fn pods(c: &Cluster, app: &str) -> Vec<Value> {
    get(c, &["pods", "-l", &format!("app={app}")])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
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

fn wait_running(c: &Cluster, app: &str, n: usize) {
    c.eventually(WAIT, &format!("{n} running pods app={app}"), || {
        let p = pods(c, app);
        p.len() == n && p.iter().all(|p| p["status"]["phase"] == "Running")
    });
}

fn wait_no_pods(c: &Cluster, selector: &str) {
    c.eventually(WAIT, &format!("no pods {selector}"), || {
        get(c, &["pods", "-l", selector])["items"]
            .as_array()
            .is_some_and(|a| a.is_empty())
    });
}

fn status(c: &Cluster, rs: &str) -> Value {
    get(c, &["rs", rs])["status"].clone()
}

#[test]
fn replica_set_runs_owned_pods_scales_and_reports_status() {
    let c = Cluster::start("rs-basic");
    c.ok_stdin(&["apply", "-f", "-"], &rs_yaml("web", "web", 2, ""));
    wait_running(&c, "web", 2);
    let rs = get(&c, &["rs", "web"]);
    let uid = rs["metadata"]["uid"].as_str().expect("uid").to_string();
    for p in pods(&c, "web") {
        let name = p["metadata"]["name"].as_str().unwrap_or("");
        assert!(name.starts_with("web-"), "{name}");
        assert_eq!(
            p["metadata"]["ownerReferences"],
            serde_json::json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": "web", "uid": uid, "controller": true, "blockOwnerDeletion": true}])
        );
    }
    c.eventually(
        WAIT,
        "status: 2 ready, available, labelled; generation 1",
        || {
            let s = status(&c, "web");
            s["replicas"] == 2
                && s["readyReplicas"] == 2
                && s["availableReplicas"] == 2
                && s["fullyLabeledReplicas"] == 2
                && s["observedGeneration"] == 1
        },
    );
    let table = c.ok(&["get", "rs", "web"]);
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(&row[..4], ["web", "2", "2", "2"], "{table}");

    // Scale up with kubectl; upstream's Events.
    let out = c.ok(&["scale", "rs", "web", "--replicas=3"]);
    assert!(out.contains("replicaset.apps/web scaled"), "{out}");
    wait_running(&c, "web", 3);
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "reason=SuccessfulCreate,involvedObject.kind=ReplicaSet",
        "-o",
        "jsonpath={.items[*].message}",
    ]);
    assert!(events.contains("Created pod: web-"), "{events}");
    let source = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "reason=SuccessfulCreate,involvedObject.kind=ReplicaSet",
        "-o",
        "jsonpath={.items[0].source.component}",
    ]);
    assert_eq!(source.trim(), "replicaset-controller");

    // Scale down: the pod with the lowest deletion cost goes first.
    let cheap = names(&pods(&c, "web"))[1].clone();
    c.ok(&[
        "annotate",
        "pod",
        &cheap,
        "controller.kubernetes.io/pod-deletion-cost=-100",
    ]);
    for other in names(&pods(&c, "web")) {
        if other != cheap {
            c.ok(&[
                "annotate",
                "pod",
                &other,
                "controller.kubernetes.io/pod-deletion-cost=100",
            ]);
        }
    }
    c.ok(&["scale", "rs", "web", "--replicas=2"]);
    wait_running(&c, "web", 2);
    assert!(
        !names(&pods(&c, "web")).contains(&cheap),
        "{cheap} should have gone first"
    );
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "reason=SuccessfulDelete,involvedObject.kind=ReplicaSet",
        "-o",
        "jsonpath={.items[*].message}",
    ]);
    assert!(
        events.contains(&format!("Deleted pod: {cheap}")),
        "{events}"
    );

    // An old kubectl scales and reads too.
    let out = c.kubectl_bin(
        "kubectl.1.27",
        &["scale", "rs", "web", "--replicas=1"],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_running(&c, "web", 1);
    let out = c.kubectl_bin("kubectl.1.27", &["get", "rs", "web"], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("DESIRED"), "{text}");
    c.eventually(WAIT, "the last generation observed", || {
        let rs = get(&c, &["rs", "web"]);
        rs["metadata"]["generation"] == 4
            && rs["status"]["observedGeneration"] == 4
            && rs["status"]["replicas"] == 1
    });

    // minReadySeconds: a ready pod becomes available later, with no other change.
    c.ok(&[
        "patch",
        "rs",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"minReadySeconds":3,"replicas":2}}"#,
    ]);
    wait_running(&c, "web", 2);
    c.eventually(WAIT, "2 available after minReadySeconds", || {
        let s = status(&c, "web");
        s["readyReplicas"] == 2 && s["availableReplicas"] == 2
    });

    c.ok(&["delete", "rs", "web"]);
    wait_no_pods(&c, "app=web");
}

#[test]
fn expression_selectors_adopt_matching_orphans_and_release_pods() {
    let c = Cluster::start("rs-adopt");
    for (name, tier) in [("orphan", "edge"), ("stranger", "db")] {
        c.ok(&[
            "run",
            name,
            "--image=rkind/host",
            &format!("--labels=app=adopt,tier={tier}"),
            "--overrides={\"spec\":{\"terminationGracePeriodSeconds\":1}}",
            "--",
            "sleep",
            "3600",
        ]);
    }
    wait_running(&c, "adopt", 2);
    c.ok_stdin(&["apply", "-f", "-"], &rs_yaml("adopter", "adopt", 1, ""));
    let uid = get(&c, &["rs", "adopter"])["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_string();
    c.eventually(WAIT, "the matching orphan adopted", || {
        let p = get(&c, &["pod", "orphan"]);
        p["metadata"]["ownerReferences"][0]["uid"] == uid.as_str()
            && p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    });
    c.eventually(WAIT, "status counts the adopted pod", || {
        let s = status(&c, "adopter");
        s["replicas"] == 1 && s["readyReplicas"] == 1 && s["fullyLabeledReplicas"] == 0
    });
    // The pod outside `tier in (fe, edge)` stays an orphan, and no pod was created.
    let stranger = get(&c, &["pod", "stranger"]);
    assert!(
        stranger["metadata"]["ownerReferences"].is_null(),
        "{stranger}"
    );
    assert_eq!(names(&pods(&c, "adopt")), ["orphan", "stranger"]);

    // Labels that stop matching: released, and replaced by a new pod.
    c.ok(&["label", "pod", "orphan", "tier=db", "--overwrite"]);
    c.eventually(WAIT, "the pod released", || {
        let refs = &get(&c, &["pod", "orphan"])["metadata"]["ownerReferences"];
        refs.is_null() || refs.as_array().is_some_and(|a| a.is_empty())
    });
    c.eventually(WAIT, "a replacement owned by the ReplicaSet", || {
        let owned: Vec<Value> = pods(&c, "adopt")
            .into_iter()
            .filter(|p| p["metadata"]["ownerReferences"][0]["uid"] == uid.as_str())
            .collect();
        owned.len() == 1 && owned[0]["status"]["phase"] == "Running"
    });
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.kind=ReplicaSet",
        "-o",
        "jsonpath={.items[*].reason}",
    ]);
    assert!(events.contains("SuccessfulCreate"), "{events}");

    c.ok(&["delete", "rs", "adopter"]);
    c.ok(&["delete", "pod", "orphan", "stranger", "--wait=false"]);
    wait_no_pods(&c, "app=adopt");
}

#[test]
fn deleting_a_replica_set_cascades_unless_orphaning() {
    let c = Cluster::start("rs-gc");
    // kubectl 1.33: background deletion takes the pods.
    c.ok_stdin(&["apply", "-f", "-"], &rs_yaml("gc", "gc", 2, ""));
    wait_running(&c, "gc", 2);
    let out = c.ok(&["delete", "rs", "gc"]);
    assert!(out.contains("replicaset.apps \"gc\" deleted"), "{out}");
    wait_no_pods(&c, "app=gc");

    // kubectl 1.27, orphaning: the pods stay, without their owner; a new ReplicaSet
    // adopts them instead of creating more.
    c.ok_stdin(&["apply", "-f", "-"], &rs_yaml("gc", "gc", 2, ""));
    wait_running(&c, "gc", 2);
    let before = names(&pods(&c, "gc"));
    let out = c.kubectl_bin(
        "kubectl.1.27",
        &["delete", "rs", "gc", "--cascade=orphan"],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.eventually(WAIT, "the ReplicaSet gone, its pods orphaned", || {
        let gone = !c.kubectl(&["get", "rs", "gc"]).status.success();
        gone && pods(&c, "gc").iter().all(|p| {
            let r = &p["metadata"]["ownerReferences"];
            r.is_null() || r.as_array().is_some_and(|a| a.is_empty())
        })
    });
    assert_eq!(names(&pods(&c, "gc")), before);
    c.ok_stdin(&["apply", "-f", "-"], &rs_yaml("again", "gc", 2, ""));
    c.eventually(WAIT, "the orphans adopted by the new ReplicaSet", || {
        let p = pods(&c, "gc");
        p.len() == 2
            && p.iter()
                .all(|p| p["metadata"]["ownerReferences"][0]["name"] == "again")
    });
    assert_eq!(names(&pods(&c, "gc")), before);

    // Foreground: the ReplicaSet waits for its pods.
    let out = c.kubectl_bin(
        "kubectl.1.27",
        &["delete", "rs", "again", "--cascade=foreground"],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_no_pods(&c, "app=gc");
    c.eventually(WAIT, "the ReplicaSet gone after its pods", || {
        !c.kubectl(&["get", "rs", "again"]).status.success()
    });
}
