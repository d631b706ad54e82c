//! DaemonSets end to end through stock kubectl: one pod on the real node (pinned by a
//! required node affinity on `metadata.name`, with upstream's default tolerations), a
//! rolling update replacing it, `kubectl rollout status/history`, the printer columns and
//! Events; fake Nodes (POSTed, made Ready through nodes/status) get a daemon pod each
//! (it stays Pending: no kubelet), a tainted one gets none until the taint goes, and a
//! deleted node's pod goes with it.

mod common;

use common::{Cluster, source_file, write_file};
use serde_json::{Value, json};

const WAIT: u64 = 120;

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn get(c: &Cluster, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    parse(&c.ok(&all))
}

fn pods(c: &Cluster, app: &str) -> Vec<Value> {
    get(c, &["pods", "-l", &format!("app={app}")])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect()
}

fn ready(p: &Value) -> bool {
    p["status"]["phase"] == "Running"
        && p["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// The node a daemon pod's required affinity names.
fn affinity_node(p: &Value) -> String {
    p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"][0]["matchFields"][0]["values"][0]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn real_node(c: &Cluster) -> String {
    format!("{}-control-plane", c.name)
}

fn ds_yaml(name: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {name}
spec:
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      terminationGracePeriodSeconds: 1
      tolerations:
      - key: node-role.kubernetes.io/control-plane
        operator: Exists
        effect: NoSchedule
      containers:
      - name: main
        image: rkind/host
        command: [\"sleep\", \"3600\"]
"
    )
}

/// Creates a Node with no kubelet behind it and marks it Ready through nodes/status.
fn fake_node(c: &Cluster, name: &str) {
    fake_node_with_taints(c, name, json!([]));
}

/// A fake node carrying `taints` from its creation (a taint added later could come after
/// the controller already placed a pod there, which upstream keeps running).
fn fake_node_with_taints(c: &Cluster, name: &str, taints: Value) {
    let node = json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {"taints": taints}});
    c.ok_stdin(&["create", "-f", "-"], &node.to_string());
    let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True",
        "reason": "KubeletReady", "message": "fake"}]}});
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

fn remove_ds(c: &Cluster, name: &str) {
    c.ok(&["delete", "ds", name]);
    c.eventually(WAIT, &format!("pods of {name} collected"), || {
        get(c, &["pods", "-l", &format!("app={name}")])["items"]
            .as_array()
            .is_some_and(|a| a.is_empty())
    });
}

#[test]
fn daemonset_runs_on_the_real_node_and_rolls_its_pod() {
    let c = Cluster::start("ds-real");
    let node = real_node(&c);
    let f = source_file("testdata/workloads/daemonset.yaml");
    c.ok(&["apply", "-f", &f.display().to_string()]);
    let out = c.ok(&["rollout", "status", "ds/node-agent", "--timeout=120s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    let ps = pods(&c, "node-agent");
    assert_eq!(ps.len(), 1, "{ps:?}");
    let p = &ps[0];
    assert!(ready(p), "{p}");
    assert_eq!(p["spec"]["nodeName"], node.as_str());
    assert_eq!(affinity_node(p), node);
    assert!(
        p["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("node-agent-"))
    );
    let hash = p["metadata"]["labels"]["controller-revision-hash"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(!hash.is_empty(), "{p}");
    assert_eq!(p["metadata"]["labels"]["pod-template-generation"], "1");
    let tols = p["spec"]["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
        "node.kubernetes.io/disk-pressure",
        "node.kubernetes.io/memory-pressure",
        "node.kubernetes.io/pid-pressure",
        "node.kubernetes.io/unschedulable",
        "node-role.kubernetes.io/control-plane",
    ] {
        assert!(tols.iter().any(|t| t["key"] == key), "no {key}: {tols:?}");
    }
    let ds = get(&c, &["ds", "node-agent"]);
    let uid = ds["metadata"]["uid"].clone();
    assert_eq!(
        p["metadata"]["ownerReferences"],
        json!([{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "node-agent",
            "uid": uid, "controller": true, "blockOwnerDeletion": true}])
    );
    c.eventually(WAIT, "status of one scheduled, ready pod", || {
        let s = get(&c, &["ds", "node-agent"])["status"].clone();
        s["desiredNumberScheduled"] == 1
            && s["currentNumberScheduled"] == 1
            && s["numberReady"] == 1
            && s["numberAvailable"] == 1
            && s["updatedNumberScheduled"] == 1
            && s["numberMisscheduled"] == 0
            && s["observedGeneration"] == 1
    });
    let table = c.ok(&["get", "ds"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "NODE",
            "SELECTOR",
            "AGE"
        ],
        "{table}"
    );
    let row: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(
        &row[..7],
        ["node-agent", "1", "1", "1", "1", "1", "<none>"],
        "{table}"
    );
    let pod_name = p["metadata"]["name"].as_str().unwrap_or("").to_string();
    c.eventually(WAIT, "the SuccessfulCreate Event", || {
        let ev = c.ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.kind=DaemonSet,involvedObject.name=node-agent",
            "-o",
            "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
        ]);
        ev.contains(&format!("SuccessfulCreate: Created pod: {pod_name}"))
    });

    // A template change replaces the pod on the node.
    c.ok(&["set", "env", "ds/node-agent", "STAGE=two"]);
    let out = c.ok(&["rollout", "status", "ds/node-agent", "--timeout=180s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    c.eventually(WAIT, "one new pod Ready on the node", || {
        let ps = pods(&c, "node-agent");
        ps.len() == 1
            && ready(&ps[0])
            && ps[0]["metadata"]["name"] != pod_name.as_str()
            && ps[0]["metadata"]["labels"]["controller-revision-hash"] != hash.as_str()
            && ps[0]["metadata"]["labels"]["pod-template-generation"] == "2"
            && ps[0]["spec"]["nodeName"] == node.as_str()
    });
    let hist = c.ok(&["rollout", "history", "ds/node-agent"]);
    let rows = hist
        .lines()
        .filter(|l| l.trim_start().starts_with(char::is_numeric))
        .count();
    assert_eq!(rows, 2, "{hist}");
    // Undo: the first template comes back under its first revision's hash.
    c.ok(&["rollout", "undo", "ds/node-agent"]);
    c.eventually(WAIT, "the pod back at the first hash", || {
        let ps = pods(&c, "node-agent");
        ps.len() == 1
            && ready(&ps[0])
            && ps[0]["metadata"]["labels"]["controller-revision-hash"] == hash.as_str()
    });
    remove_ds(&c, "node-agent");
}

#[test]
fn daemonset_follows_nodes_and_taints() {
    let c = Cluster::start("ds-nodes");
    let f = write_file(c.dir.path(), "ds.yaml", &ds_yaml("follow"));
    c.ok(&["apply", "-f", &f.display().to_string()]);
    c.eventually(WAIT, "the daemon pod on the real node Ready", || {
        let ps = pods(&c, "follow");
        ps.len() == 1 && ready(&ps[0])
    });

    // A new Ready node gets a pod pinned to it (Pending: nothing runs it).
    fake_node(&c, "zz-fake-a");
    c.eventually(WAIT, "a daemon pod for zz-fake-a", || {
        pods(&c, "follow")
            .iter()
            .any(|p| affinity_node(p) == "zz-fake-a")
    });
    let ps = pods(&c, "follow");
    let fake = ps.iter().find(|p| affinity_node(p) == "zz-fake-a").unwrap();
    assert!(
        fake["spec"]["nodeName"].is_null() || fake["spec"]["nodeName"] == "zz-fake-a",
        "{fake}"
    );
    assert_ne!(fake["status"]["phase"], "Running", "{fake}");
    c.eventually(WAIT, "status counts two nodes", || {
        let s = get(&c, &["ds", "follow"])["status"].clone();
        s["desiredNumberScheduled"] == 2
            && s["currentNumberScheduled"] == 2
            && s["numberReady"] == 1
    });

    // A tainted node the pods do not tolerate gets none; without the taint it does.
    fake_node_with_taints(
        &c,
        "zz-fake-b",
        json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
    );
    // A third node added after the taint proves the controller looked at the nodes again.
    fake_node(&c, "zz-fake-c");
    c.eventually(WAIT, "a daemon pod for zz-fake-c", || {
        pods(&c, "follow")
            .iter()
            .any(|p| affinity_node(p) == "zz-fake-c")
    });
    assert!(
        !pods(&c, "follow")
            .iter()
            .any(|p| affinity_node(p) == "zz-fake-b")
    );
    let s = get(&c, &["ds", "follow"])["status"].clone();
    assert_eq!(s["desiredNumberScheduled"], 3, "{s}");
    c.ok(&["taint", "node", "zz-fake-b", "dedicated=db:NoSchedule-"]);
    c.eventually(WAIT, "a daemon pod for zz-fake-b once untainted", || {
        pods(&c, "follow")
            .iter()
            .any(|p| affinity_node(p) == "zz-fake-b")
    });
    // NoExecute evicts: the pod of a node tainted so goes.
    c.ok(&["taint", "node", "zz-fake-b", "dedicated=db:NoExecute"]);
    c.eventually(WAIT, "zz-fake-b's pod deleted under NoExecute", || {
        !pods(&c, "follow")
            .iter()
            .any(|p| affinity_node(p) == "zz-fake-b")
    });

    // Deleting the fake nodes takes their (unscheduled) pods with them.
    c.ok(&["delete", "node", "zz-fake-a", "zz-fake-b", "zz-fake-c"]);
    c.eventually(WAIT, "only the real node's pod left", || {
        let ps = pods(&c, "follow");
        ps.len() == 1 && affinity_node(&ps[0]) == real_node(&c)
    });
    c.eventually(WAIT, "status back to one node", || {
        let s = get(&c, &["ds", "follow"])["status"].clone();
        s["desiredNumberScheduled"] == 1 && s["numberReady"] == 1
    });
    remove_ds(&c, "follow");
}
