//! The scheduler, the node lifecycle controller's taints and the taint manager end to
//! end through stock kubectl. Extra Node objects are posted through the API (status
//! Ready with allocatable through `nodes/status`); pods bound to them have no kubelet and
//! stay Pending, which is enough to see where the scheduler put them. Each test deletes
//! its fake nodes and pods at the end.

mod common;

use common::Cluster;
use serde_json::{Value, json};

const WAIT: u64 = 90;

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Posts a Ready node with `labels`, `taints` and allocatable cpu/memory/pods.
fn add_node(c: &Cluster, name: &str, labels: Value, taints: Value, cpu: &str) {
    let mut labels = labels;
    labels["kubernetes.io/hostname"] = json!(name);
    let node = json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}});
    c.ok_stdin(&["create", "-f", "-"], &node.to_string());
    let alloc = json!({"cpu": cpu, "memory": "8Gi", "pods": "110"});
    let status = json!({"status": {"capacity": alloc, "allocatable": alloc, "conditions": [{
        "type": "Ready", "status": "True", "reason": "KubeletReady", "message": "fake node",
        "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    c.ok(&[
        "patch",
        "node",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ]);
}

/// Creates pod `name` (sleeping, 1 s grace) with extra `spec` fields and `labels`.
fn add_pod(c: &Cluster, name: &str, labels: Value, spec: Value) {
    let mut s = json!({"terminationGracePeriodSeconds": 1, "containers": [{
        "name": "main", "image": "rkind/host", "command": ["sleep", "3600"]}]});
    for (k, v) in spec.as_object().cloned().unwrap_or_default() {
        s[k] = v;
    }
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels}, "spec": s});
    c.ok_stdin(&["create", "-f", "-"], &pod.to_string());
}

fn pod(c: &Cluster, name: &str) -> Value {
    parse(&c.ok(&["get", "pod", name, "-o", "json"]))
}

/// Waits until pod `name` is bound; its node.
fn wait_bound(c: &Cluster, name: &str) -> String {
    let mut node = String::new();
    c.eventually(WAIT, &format!("{name} bound to a node"), || {
        node = pod(c, name)["spec"]["nodeName"]
            .as_str()
            .unwrap_or("")
            .to_string();
        !node.is_empty()
    });
    node
}

/// Waits until pod `name` carries PodScheduled=False with `message`.
fn wait_unschedulable(c: &Cluster, name: &str, message: &str) {
    let mut last = Value::Null;
    c.eventually(
        WAIT,
        &format!("{name} unschedulable: {message} (last {last})"),
        || {
            let p = pod(c, name);
            last = p["status"]["conditions"].clone();
            assert!(p["spec"]["nodeName"].is_null(), "{name} was bound: {p}");
            p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|cd| {
                    cd["type"] == "PodScheduled"
                        && cd["status"] == "False"
                        && cd["reason"] == "Unschedulable"
                        && cd["message"] == message
                })
        },
    );
}

fn gone(c: &Cluster, name: &str) -> bool {
    let out = c.kubectl(&["get", "pod", name, "--ignore-not-found", "-o", "name"]);
    out.status.success() && out.stdout.is_empty()
}

/// Deletes pods (at once: pods on fake nodes have no kubelet to finish them) and nodes.
fn cleanup(c: &Cluster, pods: &[&str], nodes: &[&str]) {
    if !pods.is_empty() {
        let mut args = vec![
            "delete",
            "pod",
            "--force",
            "--grace-period=0",
            "--ignore-not-found",
        ];
        args.extend_from_slice(pods);
        c.ok(&args);
    }
    if !nodes.is_empty() {
        let mut args = vec!["delete", "node", "--ignore-not-found"];
        args.extend_from_slice(nodes);
        c.ok(&args);
    }
    c.eventually(WAIT, "pods gone", || pods.iter().all(|p| gone(c, p)));
}

#[test]
fn placement_follows_selectors_affinity_taints_anti_affinity_and_spread() {
    let c = Cluster::start("sched-place");
    add_node(
        &c,
        "fake-a",
        json!({"zone": "a", "disk": "ssd"}),
        json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
        "4",
    );
    add_node(&c, "fake-b", json!({"zone": "b"}), json!([]), "4");
    let tolerate_all = json!([{"operator": "Exists"}]);

    // nodeSelector onto the tainted node: only with a toleration.
    add_pod(
        &c,
        "sel-tolerant",
        json!({}),
        json!({"nodeSelector": {"disk": "ssd"},
               "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]}),
    );
    assert_eq!(wait_bound(&c, "sel-tolerant"), "fake-a");
    add_pod(
        &c,
        "sel-plain",
        json!({}),
        json!({"nodeSelector": {"disk": "ssd"}}),
    );
    let msg = "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, \
               2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are \
               available: 3 Preemption is not helpful for scheduling.";
    wait_unschedulable(&c, "sel-plain", msg);
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=sel-plain,reason=FailedScheduling",
        "-o",
        "json",
    ]);
    let events = parse(&events);
    let ev = &events["items"][0];
    assert_eq!(ev["type"], "Warning", "{events}");
    assert_eq!(ev["message"], msg, "{events}");
    assert_eq!(ev["source"]["component"], "default-scheduler", "{events}");

    // Required node affinity.
    add_pod(
        &c,
        "affinity",
        json!({}),
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}]}}}}),
    );
    assert_eq!(wait_bound(&c, "affinity"), "fake-b");

    // Two pods with the same anti-affinity (restricted to the fake nodes) split up.
    let anti = json!({"tolerations": tolerate_all,
        "affinity": {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "Exists"}]}]}},
            "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                "labelSelector": {"matchLabels": {"app": "anti"}}, "topologyKey": "kubernetes.io/hostname"}]}}});
    add_pod(&c, "anti-1", json!({"app": "anti"}), anti.clone());
    let n1 = wait_bound(&c, "anti-1");
    add_pod(&c, "anti-2", json!({"app": "anti"}), anti.clone());
    let n2 = wait_bound(&c, "anti-2");
    assert_ne!(n1, n2, "anti-affinity pods share a node");
    // A third has nowhere to go: each fake node holds one, the real one lacks the zone.
    add_pod(&c, "anti-3", json!({"app": "anti"}), anti);
    wait_unschedulable(
        &c,
        "anti-3",
        "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, \
         2 node(s) didn't match pod anti-affinity rules. preemption: 0/3 nodes are available: \
         1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.",
    );

    // Topology spread over zones: the second pod goes to the other zone.
    let spread = json!({"tolerations": tolerate_all, "topologySpreadConstraints": [{
        "maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"app": "spread"}}}]});
    add_pod(&c, "spread-1", json!({"app": "spread"}), spread.clone());
    let z1 = wait_bound(&c, "spread-1");
    add_pod(&c, "spread-2", json!({"app": "spread"}), spread);
    let z2 = wait_bound(&c, "spread-2");
    assert_ne!(z1, z2, "spread pods share a zone");
    assert!(
        z1.starts_with("fake-") && z2.starts_with("fake-"),
        "{z1} {z2}"
    );

    cleanup(
        &c,
        &[
            "sel-tolerant",
            "sel-plain",
            "affinity",
            "anti-1",
            "anti-2",
            "anti-3",
            "spread-1",
            "spread-2",
        ],
        &["fake-a", "fake-b"],
    );
}

#[test]
fn unschedulable_pods_say_why_and_schedule_once_there_is_room() {
    let c = Cluster::start("sched-room");
    let real = format!("{}-control-plane", c.name);
    // Cordon: the node gets the unschedulable taint and a new pod waits.
    c.ok(&["cordon", real.as_str()]);
    c.eventually(WAIT, "unschedulable taint on the cordoned node", || {
        c.ok(&[
            "get",
            "node",
            real.as_str(),
            "-o",
            "jsonpath={.spec.taints}",
        ])
        .contains("node.kubernetes.io/unschedulable")
    });
    add_pod(&c, "waits", json!({}), json!({}));
    wait_unschedulable(
        &c,
        "waits",
        "0/1 nodes are available: 1 node(s) were unschedulable. preemption: 0/1 nodes are \
         available: 1 Preemption is not helpful for scheduling.",
    );
    c.ok(&["uncordon", real.as_str()]);
    assert_eq!(wait_bound(&c, "waits"), real.as_str());
    c.eventually(WAIT, "unschedulable taint removed", || {
        !c.ok(&[
            "get",
            "node",
            real.as_str(),
            "-o",
            "jsonpath={.spec.taints}",
        ])
        .contains("node.kubernetes.io/unschedulable")
    });
    let scheduled = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=waits,reason=Scheduled",
        "-o",
        "jsonpath={.items[*].message}",
    ]);
    assert!(
        scheduled.contains(&format!("Successfully assigned default/waits to {real}")),
        "{scheduled}"
    );

    // Too large for the real node: the exact FailedScheduling message, in describe too.
    add_pod(
        &c,
        "big",
        json!({}),
        json!({"containers": [{"name": "main", "image": "rkind/host", "command": ["sleep", "3600"],
            "resources": {"requests": {"cpu": "500", "memory": "1Gi"}}}]}),
    );
    let msg = "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are \
               available: 1 No preemption victims found for incoming pod.";
    wait_unschedulable(&c, "big", msg);
    c.eventually(WAIT, "describe shows FailedScheduling", || {
        let d = c.ok(&["describe", "pod", "big"]);
        d.contains("FailedScheduling") && d.contains(msg) && d.contains("default-scheduler")
    });
    // A node with room appears: the pod goes there.
    add_node(&c, "fake-big", json!({}), json!([]), "1000");
    assert_eq!(wait_bound(&c, "big"), "fake-big");
    cleanup(&c, &["waits", "big"], &["fake-big"]);
}

#[test]
fn no_execute_taints_evict_pods_that_do_not_tolerate_them() {
    let c = Cluster::start("sched-evict");
    let real = format!("{}-control-plane", c.name);
    let key = "rkind.test/evict";
    add_pod(&c, "plain", json!({}), json!({}));
    add_pod(
        &c,
        "tolerant",
        json!({}),
        json!({"tolerations": [{"key": key, "operator": "Exists", "effect": "NoExecute"}]}),
    );
    add_pod(
        &c,
        "timed",
        json!({}),
        json!({"tolerations": [{"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 3}]}),
    );
    for p in ["plain", "tolerant", "timed"] {
        assert_eq!(wait_bound(&c, p), real.as_str());
    }
    c.ok(&[
        "taint",
        "node",
        real.as_str(),
        &format!("{key}=now:NoExecute"),
    ]);
    c.eventually(WAIT, "plain evicted", || gone(&c, "plain"));
    c.eventually(WAIT, "timed evicted after its tolerationSeconds", || {
        gone(&c, "timed")
    });
    // The pod tolerating the taint for good stays.
    let t = pod(&c, "tolerant");
    assert!(t["metadata"]["deletionTimestamp"].is_null(), "{t}");
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "reason=TaintManagerEviction",
        "-o",
        "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}",
    ]);
    assert!(
        events.contains("Marking for deletion Pod default/plain"),
        "{events}"
    );
    assert!(
        events.contains("Marking for deletion Pod default/timed"),
        "{events}"
    );
    assert!(!events.contains("default/tolerant"), "{events}");
    c.ok(&["taint", "node", real.as_str(), &format!("{key}-")]);
    // Once untainted, plain pods schedule on the node again.
    add_pod(&c, "after", json!({}), json!({}));
    assert_eq!(wait_bound(&c, "after"), real.as_str());
    c.ok(&["delete", "pod", "tolerant", "after", "--wait=true"]);
    c.eventually(WAIT, "pods gone", || {
        gone(&c, "tolerant") && gone(&c, "after")
    });
}

/// The node's allocatable CPU in millicores.
fn allocatable_millicpu(c: &Cluster, node: &str) -> i64 {
    let cpu = c.ok(&[
        "get",
        "node",
        node,
        "-o",
        "jsonpath={.status.allocatable.cpu}",
    ]);
    match cpu.trim().strip_suffix('m') {
        Some(m) => m.parse().expect("millicores"),
        None => cpu.trim().parse::<i64>().expect("cores") * 1000,
    }
}

#[test]
fn a_higher_priority_pod_preempts_a_lower_one_unless_its_class_says_never() {
    let c = Cluster::start("sched-preempt");
    let real = format!("{}-control-plane", c.name);
    // Each pod asks for most of the node, so two never fit together.
    let req = allocatable_millicpu(&c, &real) * 3 / 4;
    let resources = json!({"requests": {"cpu": format!("{req}m")}});
    let container = |r: &Value| json!([{"name": "main", "image": "rkind/host", "command": ["sleep", "3600"], "resources": r}]);
    c.ok(&["create", "priorityclass", "high", "--value=1000"]);
    c.ok(&[
        "create",
        "priorityclass",
        "polite",
        "--value=2000",
        "--preemption-policy=Never",
    ]);
    add_pod(
        &c,
        "low",
        json!({}),
        json!({"containers": container(&resources)}),
    );
    assert_eq!(wait_bound(&c, "low"), real.as_str());
    let low_uid = pod(&c, "low")["metadata"]["uid"].clone();

    // Higher priority and no room: the scheduler preempts the low pod and takes its place.
    add_pod(
        &c,
        "high",
        json!({}),
        json!({"priorityClassName": "high", "containers": container(&resources)}),
    );
    let high = pod(&c, "high");
    assert_eq!(high["spec"]["priority"], 1000);
    let high_uid = high["metadata"]["uid"].as_str().expect("uid").to_string();
    assert_eq!(wait_bound(&c, "high"), real.as_str());
    c.eventually(WAIT, "low preempted", || gone(&c, "low"));
    let preempted = c.ok(&[
        "get",
        "events",
        "--field-selector",
        &format!(
            "involvedObject.uid={},reason=Preempted",
            low_uid.as_str().expect("uid")
        ),
        "-o",
        "jsonpath={.items[*].message}",
    ]);
    assert_eq!(
        preempted.trim(),
        format!("Preempted by pod {high_uid} on node {real}")
    );

    // An even higher class that never preempts: it waits, and says why.
    add_pod(
        &c,
        "polite",
        json!({}),
        json!({"priorityClassName": "polite", "containers": container(&resources)}),
    );
    assert_eq!(pod(&c, "polite")["spec"]["preemptionPolicy"], "Never");
    wait_unschedulable(
        &c,
        "polite",
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to \
         preemptionPolicy=Never.",
    );
    let h = pod(&c, "high");
    assert!(h["metadata"]["deletionTimestamp"].is_null(), "{h}");
    cleanup(&c, &["high", "polite"], &[]);
}
