//! StatefulSets end to end through stock kubectl: ordered scale-up (web-0 Running and
//! Ready before web-1 exists) and reverse scale-down, stable identity (the pod's
//! `hostname` is its name, under the governing Service), rolling updates with a
//! partition, `kubectl rollout status/history/undo`, the printer columns, Events, the
//! PersistentVolumeClaims of volumeClaimTemplates (kept on scale-down by default, owned
//! by the set under whenDeleted=Delete), and `testdata/workloads/statefulset.yaml`.

mod common;

use common::{Cluster, source_file, write_file};
use serde_json::Value;

const WAIT: u64 = 120;

fn sts_yaml(name: &str, replicas: u32, extra_spec: &str) -> String {
    format!(
        "apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  clusterIP: None
  selector:
    app: {name}
  ports:
  - port: 80
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {name}
spec:
  serviceName: {name}
  replicas: {replicas}
{extra_spec}  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
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

/// The pods labelled `app=<app>` by name.
fn pods(c: &Cluster, app: &str) -> Vec<Value> {
    let mut v = get(c, &["pods", "-l", &format!("app={app}")])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    v.sort_by_key(|p| p["metadata"]["name"].as_str().unwrap_or("").to_string());
    v
}

fn ready(p: &Value) -> bool {
    p["status"]["phase"] == "Running"
        && p["metadata"]["deletionTimestamp"].is_null()
        && p["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn find<'a>(pods: &'a [Value], name: &str) -> Option<&'a Value> {
    pods.iter().find(|p| p["metadata"]["name"] == name)
}

fn names(pods: &[Value]) -> Vec<String> {
    pods.iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect()
}

fn revision(p: &Value) -> String {
    p["metadata"]["labels"]["controller-revision-hash"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// Scales to 0, waits for the pods to go, deletes the set and its Service.
fn remove(c: &Cluster, name: &str) {
    c.ok(&["scale", "sts", name, "--replicas=0"]);
    c.eventually(WAIT, &format!("no pods of {name}"), || {
        pods(c, name).is_empty()
    });
    c.ok(&["delete", "sts", name]);
    c.ok(&["delete", "service", name]);
}

#[test]
fn statefulset_scales_in_order_with_stable_identities() {
    let c = Cluster::start("sts-order");
    let f = write_file(c.dir.path(), "web.yaml", &sts_yaml("web", 0, ""));
    c.ok(&["apply", "-f", &f.display().to_string()]);
    c.eventually(WAIT, "status of an empty set", || {
        let s = get(&c, &["sts", "web"])["status"].clone();
        s["observedGeneration"] == 1 && s["replicas"] == 0
    });

    // 0 → 3: at every look, a pod exists only if its predecessor is Running and Ready.
    c.ok(&["scale", "sts", "web", "--replicas=3"]);
    let mut seen_states = 0;
    c.eventually(WAIT, "web-0..2 Running and Ready", || {
        let ps = pods(&c, "web");
        for i in 1..3 {
            if find(&ps, &format!("web-{i}")).is_some() {
                let prev = find(&ps, &format!("web-{}", i - 1));
                assert!(
                    prev.is_some_and(ready),
                    "web-{i} exists before web-{} is Ready: {:?}",
                    i - 1,
                    names(&ps)
                );
            }
        }
        seen_states += 1;
        ps.len() == 3 && ps.iter().all(ready)
    });
    assert!(seen_states > 0);
    let ps = pods(&c, "web");
    let set = get(&c, &["sts", "web"]);
    let uid = set["metadata"]["uid"].as_str().unwrap_or("").to_string();
    for (i, p) in ps.iter().enumerate() {
        let name = format!("web-{i}");
        assert_eq!(p["metadata"]["name"], name.as_str());
        assert_eq!(p["spec"]["hostname"], name.as_str());
        assert_eq!(p["spec"]["subdomain"], "web");
        assert_eq!(
            p["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"],
            name.as_str()
        );
        assert_eq!(
            p["metadata"]["labels"]["apps.kubernetes.io/pod-index"],
            i.to_string().as_str()
        );
        assert!(revision(p).starts_with("web-"), "{p}");
        assert_eq!(
            p["metadata"]["ownerReferences"],
            serde_json::json!([{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                "uid": uid, "controller": true, "blockOwnerDeletion": true}])
        );
    }
    // The pod's own hostname is its name (pods share the host's at the unprivileged
    // level, README).
    if c.isolation() != "unprivileged" {
        let host = c.ok(&["exec", "web-1", "--", "hostname"]);
        assert_eq!(host.trim(), "web-1");
    }

    c.eventually(WAIT, "status: 3 ready, current = update revision", || {
        let s = get(&c, &["sts", "web"])["status"].clone();
        s["replicas"] == 3
            && s["readyReplicas"] == 3
            && s["availableReplicas"] == 3
            && s["currentReplicas"] == 3
            && s["updatedReplicas"] == 3
            && s["currentRevision"] == s["updateRevision"]
            && s["currentRevision"]
                .as_str()
                .is_some_and(|r| r.starts_with("web-"))
            && s["collisionCount"] == 0
    });
    // Columns.
    let table = c.ok(&["get", "sts"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "AGE"], "{table}");
    let row: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(&row[..2], ["web", "3/3"], "{table}");
    // Events as upstream words them.
    c.eventually(WAIT, "SuccessfulCreate events", || {
        let ev = c.ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.kind=StatefulSet,involvedObject.name=web",
            "-o",
            "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
        ]);
        ev.contains("SuccessfulCreate: create Pod web-0 in StatefulSet web successful")
            && ev.contains("SuccessfulCreate: create Pod web-2 in StatefulSet web successful")
    });

    // A deleted pod comes back under the same name.
    let old_uid = find(&ps, "web-1").unwrap()["metadata"]["uid"].clone();
    c.ok(&["delete", "pod", "web-1", "--wait=false"]);
    c.eventually(WAIT, "web-1 recreated and Ready", || {
        let ps = pods(&c, "web");
        find(&ps, "web-1").is_some_and(|p| ready(p) && p["metadata"]["uid"] != old_uid)
    });

    // 3 → 1: the highest ordinal goes first.
    c.ok(&["scale", "sts", "web", "--replicas=1"]);
    c.eventually(WAIT, "only web-0 left", || {
        let ps = pods(&c, "web");
        if find(&ps, "web-2").is_some() {
            assert!(
                find(&ps, "web-1").is_some_and(|p| p["metadata"]["deletionTimestamp"].is_null()),
                "web-1 deleted before web-2: {:?}",
                names(&ps)
            );
        }
        names(&ps) == ["web-0"]
    });
    c.eventually(WAIT, "SuccessfulDelete events", || {
        let ev = c.ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.kind=StatefulSet,involvedObject.name=web,reason=SuccessfulDelete",
            "-o",
            "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}",
        ]);
        ev.contains("delete Pod web-2 in StatefulSet web successful")
            && ev.contains("delete Pod web-1 in StatefulSet web successful")
    });
    remove(&c, "web");
}

#[test]
fn rolling_update_honours_the_partition_and_rollout_commands() {
    let c = Cluster::start("sts-update");
    let f = write_file(c.dir.path(), "web.yaml", &sts_yaml("roll", 3, ""));
    c.ok(&["apply", "-f", &f.display().to_string()]);
    c.ok(&["rollout", "status", "sts/roll", "--timeout=120s"]);
    let first = get(&c, &["sts", "roll"])["status"]["currentRevision"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(first.starts_with("roll-"), "{first}");

    // Partition 2: only roll-2 is updated.
    c.ok(&[
        "patch",
        "sts",
        "roll",
        "-p",
        r#"{"spec":{"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":2}}}}"#,
    ]);
    c.ok(&["set", "env", "sts/roll", "STAGE=two"]);
    let mut second = String::new();
    c.eventually(WAIT, "roll-2 at the new revision and Ready", || {
        let s = get(&c, &["sts", "roll"])["status"].clone();
        second = s["updateRevision"].as_str().unwrap_or("").to_string();
        let ps = pods(&c, "roll");
        second != first
            && ps.len() == 3
            && ps.iter().all(ready)
            && find(&ps, "roll-2").is_some_and(|p| revision(p) == second)
            && s["updatedReplicas"] == 1
            && s["currentRevision"] == first.as_str()
    });
    let ps = pods(&c, "roll");
    assert_eq!(revision(find(&ps, "roll-0").unwrap()), first);
    assert_eq!(revision(find(&ps, "roll-1").unwrap()), first);
    // kubectl reports a partitioned rollout as complete.
    let out = c.ok(&["rollout", "status", "sts/roll", "--timeout=60s"]);
    assert!(out.contains("partitioned roll out complete"), "{out}");

    // Partition 0: the rest follows, highest first.
    c.ok(&[
        "patch",
        "sts",
        "roll",
        "-p",
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}"#,
    ]);
    let out = c.ok(&["rollout", "status", "sts/roll", "--timeout=180s"]);
    assert!(
        out.contains("roll out complete") || out.contains("rolling update complete"),
        "{out}"
    );
    let ps = pods(&c, "roll");
    assert!(ps.iter().all(|p| revision(p) == second), "{ps:?}");
    let s = get(&c, &["sts", "roll"])["status"].clone();
    assert_eq!(s["currentRevision"], second.as_str());
    assert_eq!(s["updatedReplicas"], 3);

    // History: two revisions; undo brings the first template back as revision 3.
    let hist = c.ok(&["rollout", "history", "sts/roll"]);
    let rows: Vec<&str> = hist
        .lines()
        .filter(|l| l.trim_start().starts_with(char::is_numeric))
        .collect();
    assert_eq!(rows.len(), 2, "{hist}");
    let revs = get(&c, &["controllerrevisions", "-l", "app=roll"]);
    assert_eq!(revs["items"].as_array().map(Vec::len), Some(2), "{revs}");
    c.ok(&["rollout", "undo", "sts/roll"]);
    let out = c.ok(&["rollout", "status", "sts/roll", "--timeout=180s"]);
    assert!(
        out.contains("roll out complete") || out.contains("rolling update complete"),
        "{out}"
    );
    let ps = pods(&c, "roll");
    assert!(ps.iter().all(|p| revision(p) == first), "{ps:?}");
    let env = get(&c, &["sts", "roll"])["spec"]["template"]["spec"]["containers"][0]["env"].clone();
    assert!(env.is_null(), "{env}");
    let revs = get(&c, &["controllerrevisions", "-l", "app=roll"]);
    let mut nums: Vec<(String, i64)> = revs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["metadata"]["name"].as_str().unwrap_or("").to_string(),
                r["revision"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    nums.sort();
    let first_num = nums.iter().find(|(n, _)| *n == first).map(|x| x.1);
    assert_eq!(first_num, Some(3), "{nums:?}");

    // OnDelete: a template change waits for the pod's deletion.
    c.ok(&[
        "patch",
        "sts",
        "roll",
        "--type=merge",
        "-p",
        r#"{"spec":{"updateStrategy":{"type":"OnDelete","rollingUpdate":null}}}"#,
    ]);
    c.ok(&["set", "env", "sts/roll", "STAGE=three"]);
    c.eventually(WAIT, "a new update revision", || {
        let s = get(&c, &["sts", "roll"])["status"].clone();
        s["updateRevision"] != first.as_str() && s["updateRevision"] != second.as_str()
    });
    let ps = pods(&c, "roll");
    assert!(ps.iter().all(|p| revision(p) == first), "{ps:?}");
    c.ok(&["delete", "pod", "roll-0", "--wait=false"]);
    c.eventually(WAIT, "roll-0 recreated at the update revision", || {
        let s = get(&c, &["sts", "roll"])["status"].clone();
        let ps = pods(&c, "roll");
        find(&ps, "roll-0").is_some_and(|p| ready(p) && s["updateRevision"] == revision(p).as_str())
    });
    let ps = pods(&c, "roll");
    assert_eq!(revision(find(&ps, "roll-1").unwrap()), first);
    remove(&c, "roll");
}

#[test]
fn claims_from_templates_are_created_and_kept_or_owned() {
    let c = Cluster::start("sts-claims");
    let claims = "  podManagementPolicy: Parallel
  volumeClaimTemplates:
  - metadata:
      name: www
    spec:
      accessModes: [\"ReadWriteOnce\"]
      resources:
        requests:
          storage: 1Gi
";
    let f = write_file(c.dir.path(), "keep.yaml", &sts_yaml("keep", 2, claims));
    c.ok(&["apply", "-f", &f.display().to_string()]);
    let pvc = |name: &str| -> Option<Value> {
        let out = c.kubectl(&["get", "pvc", name, "-o", "json"]);
        out.status
            .success()
            .then(|| json(&String::from_utf8_lossy(&out.stdout)))
    };
    c.eventually(WAIT, "claims www-keep-0 and www-keep-1", || {
        pvc("www-keep-0").is_some() && pvc("www-keep-1").is_some()
    });
    let claim = pvc("www-keep-1").unwrap();
    assert_eq!(claim["metadata"]["labels"]["app"], "keep");
    assert!(claim["metadata"]["ownerReferences"].is_null(), "{claim}");
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "1Gi");
    c.eventually(WAIT, "both pods created with the claims as volumes", || {
        let ps = pods(&c, "keep");
        ps.len() == 2
            && ps.iter().all(|p| {
                let name = p["metadata"]["name"].as_str().unwrap_or("");
                p["spec"]["volumes"].as_array().is_some_and(|vs| {
                    vs.iter().any(|v| {
                        v["name"] == "www"
                            && v["persistentVolumeClaim"]["claimName"]
                                == format!("www-{name}").as_str()
                    })
                })
            })
    });
    c.eventually(WAIT, "claim creation Events", || {
        let ev = c.ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=keep,reason=SuccessfulCreate",
            "-o",
            "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}",
        ]);
        ev.contains("create Claim www-keep-0 Pod keep-0 in StatefulSet keep success")
    });
    // Scale-down keeps the claim (whenScaled: Retain by default).
    c.ok(&["scale", "sts", "keep", "--replicas=1"]);
    c.eventually(WAIT, "keep-1 gone", || {
        names(&pods(&c, "keep")) == ["keep-0"]
    });
    assert!(pvc("www-keep-1").is_some());

    // whenDeleted: Delete → the claims are owned by the set and go with it.
    let owned = format!(
        "{claims}  persistentVolumeClaimRetentionPolicy:
    whenDeleted: Delete
    whenScaled: Retain
"
    );
    let f = write_file(c.dir.path(), "own.yaml", &sts_yaml("own", 1, &owned));
    c.ok(&["apply", "-f", &f.display().to_string()]);
    c.eventually(WAIT, "claim www-own-0", || pvc("www-own-0").is_some());
    let set_uid = get(&c, &["sts", "own"])["metadata"]["uid"].clone();
    let claim = pvc("www-own-0").unwrap();
    let refs = claim["metadata"]["ownerReferences"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        refs.iter()
            .any(|r| r["kind"] == "StatefulSet" && r["name"] == "own" && r["uid"] == set_uid),
        "{claim}"
    );
    c.ok(&["delete", "sts", "own"]);
    c.eventually(WAIT, "the owned claim and pod collected", || {
        pvc("www-own-0").is_none() && pods(&c, "own").is_empty()
    });
    c.ok(&["delete", "service", "own"]);
    remove(&c, "keep");
    c.ok(&["delete", "pvc", "www-keep-0", "www-keep-1"]);
}

#[test]
fn the_workloads_statefulset_applies_and_runs() {
    let c = Cluster::start("sts-testdata");
    let f = source_file("testdata/workloads/statefulset.yaml");
    c.ok(&["apply", "-f", &f.display().to_string()]);
    let out = c.ok(&["rollout", "status", "sts/web-sts", "--timeout=180s"]);
    assert!(
        out.contains("roll out complete") || out.contains("rolling update complete"),
        "{out}"
    );
    let ps = pods(&c, "web-sts");
    assert_eq!(names(&ps), ["web-sts-0", "web-sts-1"]);
    assert!(ps.iter().all(ready));
    // Pods share the host's hostname at the unprivileged level (README); elsewhere each
    // has its stable name.
    if c.isolation() != "unprivileged" {
        let host = c.ok(&["exec", "web-sts-1", "--", "hostname"]);
        assert_eq!(host.trim(), "web-sts-1");
    }
    let table = c.ok(&["get", "statefulsets", "-o", "wide"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"],
        "{table}"
    );
    remove(&c, "web-sts");
}
