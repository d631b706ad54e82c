//! Deployments end to end through stock kubectl: the deployment controller runs pods
//! through ReplicaSets named `<deployment>-<pod-template-hash>` (hash label in selector,
//! template and pods, controller ownerReference, revision annotations), rolls a changed
//! template out (RollingUpdate within maxSurge/maxUnavailable, Recreate with the old pods
//! gone first), keeps revision history for `kubectl rollout history` and `undo`, pauses
//! and resumes, restarts, reports a stuck rollout as ProgressDeadlineExceeded, and
//! `kubectl delete deploy` takes the ReplicaSets and pods along (garbage collector), also
//! in the foreground.

mod common;

use common::{Cluster, write_file};
use serde_json::Value;

const WAIT: u64 = 180;

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn get(c: &Cluster, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    json(&c.ok(&all))
}

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

fn name(v: &Value) -> String {
    v["metadata"]["name"].as_str().unwrap_or("").to_string()
}

/// The ReplicaSets controlled by deployment `d` (by its uid), oldest revision first.
fn replica_sets(c: &Cluster, d: &str) -> Vec<Value> {
    let uid = get(c, &["deploy", d])["metadata"]["uid"].clone();
    let mut rss: Vec<Value> = items(&get(c, &["rs"]))
        .into_iter()
        .filter(|rs| {
            rs["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| {
                    refs.iter()
                        .any(|r| r["uid"] == uid && r["controller"] == true)
                })
        })
        .collect();
    rss.sort_by_key(revision);
    rss
}

fn annotation(v: &Value, key: &str) -> String {
    v["metadata"]["annotations"][key]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn revision(v: &Value) -> i64 {
    annotation(v, "deployment.kubernetes.io/revision")
        .parse()
        .unwrap_or(0)
}

/// The active pods labelled `app=<app>`.
fn pods(c: &Cluster, app: &str) -> Vec<Value> {
    items(&get(c, &["pods", "-l", &format!("app={app}")]))
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect()
}

fn condition(d: &Value, type_: &str) -> Value {
    d["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_).cloned())
        .unwrap_or(Value::Null)
}

fn events(c: &Cluster, kind: &str, reason: &str) -> String {
    c.ok(&[
        "get",
        "events",
        "--field-selector",
        &format!("reason={reason},involvedObject.kind={kind}"),
        "-o",
        "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}",
    ])
}

fn rollout_status(c: &Cluster, bin: &str, d: &str) -> String {
    let out = c.kubectl_bin(
        bin,
        &[
            "rollout",
            "status",
            &format!("deploy/{d}"),
            "--timeout=170s",
        ],
        None,
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "rollout status {d} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("deployment \"{d}\" successfully rolled out")),
        "{stdout}"
    );
    stdout
}

/// Waits until the deployment's status shows `n` updated, ready and available replicas
/// and nothing else left, for its current generation.
fn wait_complete(c: &Cluster, d: &str, n: i64) {
    c.eventually(WAIT, &format!("deployment {d} complete with {n}"), || {
        let v = get(c, &["deploy", d]);
        let s = &v["status"];
        s["observedGeneration"] == v["metadata"]["generation"]
            && s["replicas"] == n
            && s["updatedReplicas"] == n
            && s["readyReplicas"] == n
            && s["availableReplicas"] == n
            && condition(&v, "Available")["status"] == "True"
    });
}

fn table(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

#[test]
fn the_user_flow_create_scale_set_env_history_undo_pause_restart_delete() {
    let c = Cluster::start("deploy-flow");
    let out = c.ok(&[
        "create",
        "deployment",
        "web",
        "--image=rkind/host",
        "--replicas=2",
        // Not a server on a fixed port: at the unprivileged level pods share the
        // host's network, and a second replica would fail to bind and restart.
        "--",
        "sleep",
        "3600",
    ]);
    assert!(out.contains("deployment.apps/web created"), "{out}");
    rollout_status(&c, "kubectl.1.33", "web");
    wait_complete(&c, "web", 2);

    // The ReplicaSet: named after the hash, which is in its selector, template and pods.
    let rss = replica_sets(&c, "web");
    assert_eq!(rss.len(), 1, "{rss:?}");
    let rs1 = &rss[0];
    let rs1_name = name(rs1);
    let hash = rs1["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .expect("hash label")
        .to_string();
    assert_eq!(rs1_name, format!("web-{hash}"));
    assert!(
        hash.chars()
            .all(|ch| "bcdfghjklmnpqrstvwxz2456789".contains(ch)),
        "{hash}"
    );
    assert_eq!(
        rs1["spec"]["selector"]["matchLabels"],
        serde_json::json!({"app": "web", "pod-template-hash": hash})
    );
    assert_eq!(
        rs1["spec"]["template"]["metadata"]["labels"]["pod-template-hash"],
        hash.as_str()
    );
    let d = get(&c, &["deploy", "web"]);
    assert_eq!(
        rs1["metadata"]["ownerReferences"],
        serde_json::json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
            "uid": d["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}])
    );
    assert_eq!(annotation(rs1, "deployment.kubernetes.io/revision"), "1");
    assert_eq!(
        annotation(rs1, "deployment.kubernetes.io/desired-replicas"),
        "2"
    );
    assert_eq!(
        annotation(rs1, "deployment.kubernetes.io/max-replicas"),
        "3"
    );
    assert_eq!(annotation(&d, "deployment.kubernetes.io/revision"), "1");
    let avail = condition(&d, "Available");
    assert_eq!(avail["status"], "True");
    assert_eq!(avail["reason"], "MinimumReplicasAvailable");
    assert_eq!(avail["message"], "Deployment has minimum availability.");
    let prog = condition(&d, "Progressing");
    assert_eq!(prog["status"], "True");
    assert_eq!(prog["reason"], "NewReplicaSetAvailable");
    assert_eq!(
        prog["message"],
        format!("ReplicaSet \"{rs1_name}\" has successfully progressed.")
    );
    for p in pods(&c, "web") {
        assert_eq!(p["metadata"]["labels"]["pod-template-hash"], hash.as_str());
        assert!(
            name(&p).starts_with(&format!("{rs1_name}-")),
            "{}",
            name(&p)
        );
    }
    let ev = events(&c, "Deployment", "ScalingReplicaSet");
    assert!(
        ev.contains(&format!("Scaled up replica set {rs1_name} to 2")),
        "{ev}"
    );

    // Scale to 5; the tables read as upstream's.
    let out = c.ok(&["scale", "deploy", "web", "--replicas=5"]);
    assert!(out.contains("deployment.apps/web scaled"), "{out}");
    wait_complete(&c, "web", 5);
    let out = c.ok(&["get", "deploy,rs,pods"]);
    let t = table(&out);
    assert!(
        t.iter()
            .any(|r| r[..] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]),
        "{out}"
    );
    assert!(
        t.iter()
            .any(|r| r.len() >= 4 && r[..4] == ["deployment.apps/web", "5/5", "5", "5"]),
        "{out}"
    );
    assert!(
        t.iter()
            .any(|r| r[..] == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]),
        "{out}"
    );
    let rs_row = format!("replicaset.apps/{rs1_name}");
    assert!(
        t.iter()
            .any(|r| r.len() >= 4 && r[..4] == [rs_row.as_str(), "5", "5", "5"]),
        "{out}"
    );
    let pod_rows = t
        .iter()
        .filter(|r| {
            r.first()
                .is_some_and(|n| n.starts_with(&format!("pod/{rs1_name}-")))
        })
        .filter(|r| {
            r.get(1).map(String::as_str) == Some("1/1")
                && r.get(2).map(String::as_str) == Some("Running")
        })
        .count();
    assert_eq!(pod_rows, 5, "{out}");
    let ev = events(&c, "Deployment", "ScalingReplicaSet");
    assert!(
        ev.contains(&format!("Scaled up replica set {rs1_name} to 5 from 2")),
        "{ev}"
    );

    // A new template: a second ReplicaSet takes over, revision 2.
    c.ok(&[
        "annotate",
        "deploy",
        "web",
        "kubernetes.io/change-cause=set A=B",
    ]);
    c.ok(&["set", "env", "deploy/web", "A=B"]);
    rollout_status(&c, "kubectl.1.33", "web");
    wait_complete(&c, "web", 5);
    let rss = replica_sets(&c, "web");
    assert_eq!(rss.len(), 2, "{rss:?}");
    assert_eq!(name(&rss[0]), rs1_name);
    assert_eq!(rss[0]["spec"]["replicas"], 0);
    let rs2_name = name(&rss[1]);
    assert_ne!(rs2_name, rs1_name);
    assert_eq!(revision(&rss[1]), 2);
    assert_eq!(annotation(&rss[1], "kubernetes.io/change-cause"), "set A=B");
    assert_eq!(
        annotation(
            &get(&c, &["deploy", "web"]),
            "deployment.kubernetes.io/revision"
        ),
        "2"
    );
    for p in pods(&c, "web") {
        assert!(
            name(&p).starts_with(&format!("{rs2_name}-")),
            "{}",
            name(&p)
        );
    }
    let ev = events(&c, "Deployment", "ScalingReplicaSet");
    assert!(
        ev.lines().any(
            |l| l.starts_with(&format!("Scaled down replica set {rs1_name} to "))
                && l.contains(" from ")
        ),
        "{ev}"
    );
    let hist = c.ok(&["rollout", "history", "deploy/web"]);
    let t = table(&hist);
    assert!(hist.contains("REVISION"), "{hist}");
    assert!(
        t.iter().any(|r| r.first().map(String::as_str) == Some("1")),
        "{hist}"
    );
    assert!(
        t.iter()
            .any(|r| r.first().map(String::as_str) == Some("2") && r[1..].join(" ") == "set A=B"),
        "{hist}"
    );
    let rev2 = c.ok(&["rollout", "history", "deploy/web", "--revision=2"]);
    assert!(rev2.contains("A:") && rev2.contains("B"), "{rev2}");

    // Undo: back to the first template, on the first ReplicaSet, now revision 3.
    let out = c.ok(&["rollout", "undo", "deploy/web"]);
    assert!(out.contains("deployment.apps/web rolled back"), "{out}");
    rollout_status(&c, "kubectl.1.33", "web");
    wait_complete(&c, "web", 5);
    let d = get(&c, &["deploy", "web"]);
    assert!(
        d["spec"]["template"]["spec"]["containers"][0]["env"].is_null(),
        "{d}"
    );
    assert_eq!(annotation(&d, "deployment.kubernetes.io/revision"), "3");
    let rss = replica_sets(&c, "web");
    assert_eq!(rss.len(), 2, "{rss:?}");
    let back = rss.iter().find(|r| name(r) == rs1_name).expect("first RS");
    assert_eq!(revision(back), 3);
    assert_eq!(
        annotation(back, "deployment.kubernetes.io/revision-history"),
        "1"
    );
    assert_eq!(back["spec"]["replicas"], 5);
    let hist = c.ok(&["rollout", "history", "deploy/web"]);
    let revs: Vec<String> = table(&hist)
        .into_iter()
        .filter_map(|r| r.first().cloned())
        .filter(|f| f.parse::<u32>().is_ok())
        .collect();
    assert_eq!(revs, ["2", "3"], "{hist}");

    // Paused: a template change waits, scaling does not.
    let out = c.ok(&["rollout", "pause", "deploy/web"]);
    assert!(out.contains("deployment.apps/web paused"), "{out}");
    c.eventually(WAIT, "Progressing: DeploymentPaused", || {
        let p = condition(&get(&c, &["deploy", "web"]), "Progressing");
        p["reason"] == "DeploymentPaused"
            && p["status"] == "Unknown"
            && p["message"] == "Deployment is paused"
    });
    c.ok(&["set", "env", "deploy/web", "C=D"]);
    c.ok(&["scale", "deploy", "web", "--replicas=3"]);
    // While paused no ReplicaSet has the new template, so none is "updated" yet.
    c.eventually(WAIT, "paused deployment scaled to 3", || {
        let v = get(&c, &["deploy", "web"]);
        let s = &v["status"];
        s["observedGeneration"] == v["metadata"]["generation"]
            && s["replicas"] == 3
            && s["readyReplicas"] == 3
            && s["availableReplicas"] == 3
    });
    let rss = replica_sets(&c, "web");
    assert_eq!(rss.len(), 2, "no rollout while paused: {rss:?}");
    let out = c.ok(&["rollout", "resume", "deploy/web"]);
    assert!(out.contains("deployment.apps/web resumed"), "{out}");
    rollout_status(&c, "kubectl.1.33", "web");
    wait_complete(&c, "web", 3);
    let rss = replica_sets(&c, "web");
    assert_eq!(rss.len(), 3, "{rss:?}");
    assert_eq!(revision(&rss[2]), 4);

    // Restart: the template gains restartedAt, a new ReplicaSet rolls out.
    let out = c.ok(&["rollout", "restart", "deploy/web"]);
    assert!(out.contains("deployment.apps/web restarted"), "{out}");
    rollout_status(&c, "kubectl.1.33", "web");
    wait_complete(&c, "web", 3);
    let d = get(&c, &["deploy", "web"]);
    assert!(
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string(),
        "{d}"
    );
    let rss = replica_sets(&c, "web");
    assert_eq!(rss.len(), 4, "{rss:?}");
    assert_eq!(revision(&rss[3]), 5);
    let newest = name(&rss[3]);
    for p in pods(&c, "web") {
        assert!(name(&p).starts_with(&format!("{newest}-")), "{}", name(&p));
    }

    // Delete: ReplicaSets and pods go too.
    c.ok(&["delete", "deploy", "web"]);
    c.eventually(WAIT, "no ReplicaSets and no pods left", || {
        items(&get(&c, &["rs"])).is_empty() && items(&get(&c, &["pods"])).is_empty()
    });
}

fn recreate_yaml() -> &'static str {
    "apiVersion: apps/v1
kind: Deployment
metadata:
  name: batch
spec:
  replicas: 2
  revisionHistoryLimit: 1
  strategy:
    type: Recreate
  selector:
    matchLabels:
      app: batch
  template:
    metadata:
      labels:
        app: batch
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: rkind/host
        command: [\"sleep\", \"3600\"]
"
}

#[test]
fn recreate_stops_the_old_pods_before_starting_new_ones_and_foreground_delete() {
    let c = Cluster::start("deploy-recreate");
    let f = write_file(c.dir.path(), "batch.yaml", recreate_yaml());
    c.ok(&["apply", "-f", &f.display().to_string()]);
    rollout_status(&c, "kubectl.1.27", "batch");
    wait_complete(&c, "batch", 2);
    let first = name(&replica_sets(&c, "batch")[0]);

    c.ok(&["set", "env", "deploy/batch", "V=2"]);
    // Never old and new pods at once: sample until the new ones all run.
    c.eventually(WAIT, "the new ReplicaSet's two pods running alone", || {
        let ps = pods(&c, "batch");
        let (old, new): (Vec<&Value>, Vec<&Value>) = ps
            .iter()
            .partition(|p| name(p).starts_with(&format!("{first}-")));
        assert!(
            old.is_empty() || new.is_empty(),
            "old and new pods together: {:?}",
            ps.iter().map(name).collect::<Vec<_>>()
        );
        new.len() == 2 && new.iter().all(|p| p["status"]["phase"] == "Running")
    });
    rollout_status(&c, "kubectl.1.27", "batch");
    wait_complete(&c, "batch", 2);
    let rss = replica_sets(&c, "batch");
    assert_eq!(rss.len(), 2, "{rss:?}");
    assert_eq!(rss[0]["spec"]["replicas"], 0);
    let second = name(&rss[1]);
    let ev = events(&c, "Deployment", "ScalingReplicaSet");
    assert!(
        ev.contains(&format!("Scaled down replica set {first} to 0 from 2")),
        "{ev}"
    );
    assert!(
        ev.contains(&format!("Scaled up replica set {second} to 2")),
        "{ev}"
    );

    // A third template: with revisionHistoryLimit 1 the oldest ReplicaSet goes.
    c.ok(&["set", "env", "deploy/batch", "V=3"]);
    rollout_status(&c, "kubectl.1.27", "batch");
    c.eventually(WAIT, "only two ReplicaSets kept", || {
        let names: Vec<String> = replica_sets(&c, "batch").iter().map(name).collect();
        names.len() == 2 && !names.contains(&first) && names.contains(&second)
    });

    // Foreground deletion: the deployment waits for its dependents, then goes.
    let out = c.kubectl_bin(
        "kubectl.1.27",
        &[
            "delete",
            "deploy",
            "batch",
            "--cascade=foreground",
            "--timeout=170s",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.eventually(WAIT, "deployment, ReplicaSets and pods gone", || {
        items(&get(&c, &["deploy"])).is_empty()
            && items(&get(&c, &["rs"])).is_empty()
            && items(&get(&c, &["pods"])).is_empty()
    });
}

#[test]
fn a_rollout_that_never_gets_ready_exceeds_its_progress_deadline() {
    let c = Cluster::start("deploy-stuck");
    let yaml = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: stuck
spec:
  replicas: 1
  progressDeadlineSeconds: 5
  selector:
    matchLabels:
      app: stuck
  template:
    metadata:
      labels:
        app: stuck
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: rkind/host
        command: [\"sleep\", \"3600\"]
        readinessProbe:
          exec:
            command: [\"false\"]
          periodSeconds: 1
";
    let f = write_file(c.dir.path(), "stuck.yaml", yaml);
    c.ok(&["apply", "-f", &f.display().to_string()]);
    let out = c.kubectl_bin(
        "kubectl.1.33",
        &["rollout", "status", "deploy/stuck", "--timeout=170s"],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains("deployment \"stuck\" exceeded its progress deadline"),
        "{stderr}"
    );
    let d = get(&c, &["deploy", "stuck"]);
    let rs = name(&replica_sets(&c, "stuck")[0]);
    let p = condition(&d, "Progressing");
    assert_eq!(p["status"], "False", "{d}");
    assert_eq!(p["reason"], "ProgressDeadlineExceeded");
    assert_eq!(
        p["message"],
        format!("ReplicaSet \"{rs}\" has timed out progressing.")
    );
    let a = condition(&d, "Available");
    assert_eq!(a["status"], "False");
    assert_eq!(a["reason"], "MinimumReplicasUnavailable");
    assert_eq!(d["status"]["unavailableReplicas"], 1);
    let desc = c.ok(&["describe", "deploy", "stuck"]);
    assert!(desc.contains("ProgressDeadlineExceeded"), "{desc}");

    c.ok(&["delete", "deploy", "stuck"]);
    c.eventually(WAIT, "ReplicaSet and pod gone", || {
        items(&get(&c, &["rs"])).is_empty() && items(&get(&c, &["pods"])).is_empty()
    });
}
