//! PriorityClasses end to end: the built-in classes exist from boot (and cannot be
//! deleted), `kubectl get priorityclass` shows upstream's columns, and the Priority
//! admission plugin resolves a pod's class into spec.priority (403 for an unknown
//! class, the global default for a pod without one, one global default at most).
//!
//! Isolation levels: root only (no container behaviour is under test here).

mod common;

use common::Cluster;
use serde_json::Value;

fn pod(name: &str, class: Option<&str>) -> String {
    let class = class.map_or(String::new(), |c| format!("  priorityClassName: {c}\n"));
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
{class}  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: rkind/host
    command: [\"sleep\", \"3600\"]
"
    )
}

fn class(name: &str, value: i64, global: bool) -> String {
    format!(
        "apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata:
  name: {name}
value: {value}
globalDefault: {global}
"
    )
}

fn spec(c: &Cluster, name: &str) -> Value {
    let out = c.ok(&["get", "pod", name, "-o", "json"]);
    let v: Value = serde_json::from_str(&out).expect("pod JSON");
    v["spec"].clone()
}

#[test]
fn priority_classes_resolve_into_pod_priority() {
    let c = Cluster::start("priority");
    // The built-ins and upstream's columns.
    let table = c.ok(&["get", "priorityclass"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(
        header,
        vec!["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"],
        "{table}"
    );
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect();
    let find = |n: &str| rows.iter().find(|r| r[0] == n).cloned().unwrap_or_default();
    let cluster = find("system-cluster-critical");
    assert_eq!(cluster[1..3], ["2000000000", "false"], "{table}");
    assert_eq!(cluster[4], "PreemptLowerPriority", "{table}");
    assert_eq!(find("system-node-critical")[1], "2000001000", "{table}");
    let err = c.fails(&["delete", "priorityclass", "system-node-critical"]);
    assert!(
        err.contains("this is a system priority class and cannot be deleted"),
        "{err}"
    );
    let err = c.fails_stdin(&["apply", "-f", "-"], &class("system-mine", 5, false));
    assert!(
        err.contains("priority class names with 'system-' prefix are reserved for system use only"),
        "{err}"
    );
    let err = c.fails_stdin(&["apply", "-f", "-"], &class("huge", 1_000_000_001, false));
    assert!(
        err.contains("maximum allowed value of a user defined priority is 1000000000"),
        "{err}"
    );

    // A pod without a class and no global default: priority 0.
    c.ok_stdin(&["apply", "-f", "-"], &pod("plain", None));
    assert_eq!(spec(&c, "plain")["priority"], 0);

    // A named class.
    c.ok_stdin(&["apply", "-f", "-"], &class("high", 1000, false));
    c.ok_stdin(&["apply", "-f", "-"], &pod("important", Some("high")));
    let s = spec(&c, "important");
    assert_eq!(s["priority"], 1000, "{s}");
    assert_eq!(s["preemptionPolicy"], "PreemptLowerPriority", "{s}");
    c.ok(&["label", "pod", "plain", "touched=yes"]);
    let s = spec(&c, "plain");
    assert_eq!(
        s["priority"], 0,
        "an update never changes the priority: {s}"
    );
    let critical = pod("critical", Some("system-cluster-critical"));
    c.ok_stdin(&["apply", "-f", "-"], &critical);
    assert_eq!(spec(&c, "critical")["priority"], 2_000_000_000);

    // An unknown class is refused.
    let err = c.fails_stdin(&["apply", "-f", "-"], &pod("lost", Some("nope")));
    assert!(err.contains("Forbidden"), "{err}");
    assert!(
        err.contains("pods \"lost\" is forbidden: no PriorityClass with name nope was found"),
        "{err}"
    );
    // So is a priority the class does not give.
    let own = pod("own", Some("high")).replace("spec:\n", "spec:\n  priority: 5\n");
    let err = c.fails_stdin(&["apply", "-f", "-"], &own);
    assert!(
        err.contains("the integer value of priority (5) must not be provided in pod spec"),
        "{err}"
    );

    // The global default applies to pods without a class; only one may exist.
    c.ok_stdin(&["apply", "-f", "-"], &class("everyone", 77, true));
    let err = c.fails_stdin(&["apply", "-f", "-"], &class("second", 78, true));
    assert!(
        err.contains(
            "PriorityClass everyone is already marked as default. Only one default can exist"
        ),
        "{err}"
    );
    c.ok_stdin(&["apply", "-f", "-"], &pod("defaulted", None));
    let s = spec(&c, "defaulted");
    assert_eq!(s["priority"], 77, "{s}");
    assert_eq!(s["priorityClassName"], "everyone", "{s}");
    let row = c.ok(&["get", "pc", "everyone", "--no-headers"]);
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[1..3], ["77", "true"], "{row}");

    c.ok(&[
        "delete",
        "pod",
        "plain",
        "important",
        "critical",
        "defaulted",
    ]);
    c.ok(&["delete", "pc", "high", "everyone"]);
    c.eventually(90, "every pod is gone", || {
        c.ok(&["get", "pods", "-A", "--no-headers"])
            .trim()
            .is_empty()
    });
}
