//! HorizontalPodAutoscalers end to end through stock kubectl: `kubectl autoscale`, the
//! upstream printer columns, the same object read and written through autoscaling/v2 and
//! autoscaling/v1 (what v1 cannot hold kept in its annotations), upstream's defaults and
//! validation messages. Nothing acts on them yet (that needs the metrics API).
//!
//! Isolation levels: root only (no container behaviour is under test here).

mod common;

use common::{Cluster, write_file};
use serde_json::Value;

/// An RC with no replicas: a scale target that runs nothing.
const RC: &str = "apiVersion: v1
kind: ReplicationController
metadata:
  name: web
spec:
  replicas: 0
  selector:
    app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: main
        image: rkind/host
        command: [\"sleep\", \"3600\"]
";

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn words(line: &str) -> Vec<String> {
    line.split("  ")
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn kubectl_autoscale_and_both_versions() {
    let c = Cluster::start("hpa");
    let f = write_file(c.dir.path(), "rc.yaml", RC);
    c.ok(&["apply", "-f", &f.display().to_string()]);

    let out = c.ok(&[
        "autoscale",
        "rc",
        "web",
        "--min=2",
        "--max=4",
        "--cpu-percent=60",
    ]);
    assert!(
        out.contains("horizontalpodautoscaler.autoscaling/web autoscaled"),
        "{out}"
    );
    let table = c.ok(&["get", "hpa"]);
    let mut lines = table.lines();
    assert_eq!(
        words(lines.next().unwrap_or("")),
        [
            "NAME",
            "REFERENCE",
            "TARGETS",
            "MINPODS",
            "MAXPODS",
            "REPLICAS",
            "AGE"
        ],
        "{table}"
    );
    let row = words(lines.next().unwrap_or(""));
    assert_eq!(
        &row[..6],
        [
            "web",
            "ReplicationController/web",
            "cpu: <unknown>/60%",
            "2",
            "4",
            "0"
        ],
        "{table}"
    );

    // The preferred version is v2; v1 shows the CPU target as its own field.
    let v2 = json(&c.ok(&["get", "hpa", "web", "-o", "json"]));
    assert_eq!(v2["apiVersion"], "autoscaling/v2");
    assert_eq!(
        v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        60
    );
    let v1 = json(&c.ok(&[
        "get",
        "horizontalpodautoscalers.v1.autoscaling",
        "web",
        "-o",
        "json",
    ]));
    assert_eq!(v1["apiVersion"], "autoscaling/v1");
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 60);
    assert_eq!(v1["spec"]["minReplicas"], 2);
    let resources = c.ok(&["api-resources", "--api-group=autoscaling"]);
    assert!(
        resources.lines().any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w == [
                "horizontalpodautoscalers",
                "hpa",
                "autoscaling/v2",
                "true",
                "HorizontalPodAutoscaler",
            ]
        }),
        "{resources}"
    );

    // A v1 object without a target gets upstream's 80 % CPU default, seen in both.
    let v1_yaml = "apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata:
  name: plain
spec:
  maxReplicas: 3
  scaleTargetRef:
    apiVersion: v1
    kind: ReplicationController
    name: web
";
    let f = write_file(c.dir.path(), "v1.yaml", v1_yaml);
    c.ok(&["create", "-f", &f.display().to_string()]);
    let plain = json(&c.ok(&[
        "get",
        "horizontalpodautoscalers.v2.autoscaling",
        "plain",
        "-o",
        "json",
    ]));
    assert_eq!(plain["spec"]["minReplicas"], 1);
    assert_eq!(
        plain["spec"]["metrics"],
        serde_json::json!([{"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 80}}}])
    );

    // A v2-only metric and behavior survive a write through v1.
    let v2_yaml = "apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: qps
spec:
  minReplicas: 1
  maxReplicas: 5
  scaleTargetRef:
    apiVersion: v1
    kind: ReplicationController
    name: web
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 60
  metrics:
  - type: Pods
    pods:
      metric:
        name: requests-per-second
      target:
        type: AverageValue
        averageValue: \"10\"
";
    let f = write_file(c.dir.path(), "v2.yaml", v2_yaml);
    c.ok(&["apply", "-f", &f.display().to_string()]);
    let seen_v1 = json(&c.ok(&[
        "get",
        "horizontalpodautoscalers.v1.autoscaling",
        "qps",
        "-o",
        "json",
    ]));
    let notes = &seen_v1["metadata"]["annotations"];
    assert!(
        notes["autoscaling.alpha.kubernetes.io/metrics"]
            .as_str()
            .is_some_and(|m| m.contains("requests-per-second")),
        "{seen_v1}"
    );
    assert!(
        seen_v1["spec"]
            .get("targetCPUUtilizationPercentage")
            .is_none()
    );
    c.ok(&[
        "patch",
        "horizontalpodautoscalers.v1.autoscaling",
        "qps",
        "--type=merge",
        "-p",
        r#"{"spec":{"maxReplicas":9}}"#,
    ]);
    let after = json(&c.ok(&[
        "get",
        "horizontalpodautoscalers.v2.autoscaling",
        "qps",
        "-o",
        "json",
    ]));
    assert_eq!(after["spec"]["maxReplicas"], 9);
    assert_eq!(after["spec"]["metrics"][0]["type"], "Pods");
    assert_eq!(
        after["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
        60
    );
    assert_eq!(after["spec"]["behavior"]["scaleUp"]["selectPolicy"], "Max");
    assert!(
        after["metadata"]["annotations"]
            .get("autoscaling.alpha.kubernetes.io/metrics")
            .is_none(),
        "{after}"
    );
    assert_eq!(after["metadata"]["generation"], 2);
    let table = c.ok(&["get", "hpa", "qps"]);
    assert!(table.contains("<unknown>/10"), "{table}");

    // Validation with upstream's wording.
    let bad = v2_yaml
        .replace("name: qps", "name: bad")
        .replace("minReplicas: 1", "minReplicas: 6");
    let err = c.fails_stdin(&["create", "-f", "-"], &bad);
    assert!(
        err.contains(
            "The HorizontalPodAutoscaler \"bad\" is invalid: spec.maxReplicas: Invalid value: 5: must be greater than or equal to `minReplicas`"
        ),
        "{err}"
    );

    // An old client autoscales too.
    c.ok(&["delete", "hpa", "web"]);
    let out = c.kubectl_bin("kubectl.1.27", &["autoscale", "rc", "web", "--max=3"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let old = json(&c.ok(&["get", "hpa", "web", "-o", "json"]));
    assert_eq!(old["spec"]["maxReplicas"], 3);
    assert_eq!(old["spec"]["minReplicas"], 1);
    c.ok(&["delete", "hpa", "--all"]);
    c.ok(&["delete", "rc", "web"]);
}
