//! End-to-end tests of the read path (get, list, watch) served from the store's
//! in-memory objects: reads see every write at once, writes that change nothing keep
//! the version, paged lists are consistent at the first page's version, and a
//! restarted cluster serves what was persisted.
//!
//! Isolation levels: root only (no container behaviour is under test here).

mod common;

use common::Cluster;
use serde_json::Value;

const CM: &str = "/api/v1/namespaces/default/configmaps";

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// The names in a list, less the `kube-root-ca.crt` ConfigMap the controller-manager
/// publishes in every namespace.
fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap_or("").to_string())
        .filter(|n| n != "kube-root-ca.crt")
        .collect()
}

fn rv_of(obj: &Value) -> u64 {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no resourceVersion in {obj}"))
}

#[test]
fn reads_see_each_write_at_once() {
    let c = Cluster::start("readwrite");
    for i in 0..5 {
        let name = format!("cm-{i}");
        c.ok(&[
            "create",
            "configmap",
            &name,
            &format!("--from-literal=k={i}"),
        ]);
        // The very next read, get and list, has the object.
        let got = json(&c.ok(&["get", "--raw", &format!("{CM}/{name}")]));
        assert_eq!(got["data"]["k"], i.to_string());
        let list = json(&c.ok(&["get", "--raw", CM]));
        assert!(names(&list).contains(&name), "{name} missing from {list}");
        assert!(
            rv_of(&list) >= rv_of(&got),
            "list older than the write: {list}"
        );
    }
    c.ok(&[
        "patch",
        "configmap",
        "cm-2",
        "--type=merge",
        "-p",
        r#"{"data":{"k":"changed"}}"#,
    ]);
    let list = json(&c.ok(&["get", "--raw", CM]));
    let cm2 = list["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["metadata"]["name"] == "cm-2"))
        .expect("cm-2 listed");
    assert_eq!(cm2["data"]["k"], "changed");
    c.ok(&["delete", "configmap", "cm-3"]);
    let list = json(&c.ok(&["get", "--raw", CM]));
    assert_eq!(names(&list), ["cm-0", "cm-1", "cm-2", "cm-4"], "{list}");
    let err = c.fails(&["get", "configmap", "cm-3"]);
    assert!(err.contains(r#"configmaps "cm-3" not found"#), "{err}");
    // A list in another namespace does not see these (prefixes are whole segments).
    c.ok(&["create", "namespace", "default2"]);
    let other = json(&c.ok(&["get", "--raw", "/api/v1/namespaces/default2/configmaps"]));
    assert!(names(&other).is_empty(), "{other}");
}

#[test]
fn a_write_that_changes_nothing_keeps_the_version() {
    let c = Cluster::start("noopwrite");
    c.ok(&["create", "configmap", "same", "--from-literal=k=v"]);
    let before = json(&c.ok(&["get", "configmap", "same", "-o", "json"]));
    let file = common::write_file(c.dir.path(), "same.json", &before.to_string());
    let path = file.display().to_string();
    let after = json(&c.ok(&["replace", "-f", &path, "-o", "json"]));
    assert_eq!(rv_of(&after), rv_of(&before), "{after}");
    // A real change does get a new version.
    c.ok(&["label", "configmap", "same", "x=y"]);
    let changed = json(&c.ok(&["get", "configmap", "same", "-o", "json"]));
    assert!(rv_of(&changed) > rv_of(&before), "{changed}");
}

#[test]
fn a_restarted_cluster_serves_what_was_persisted() {
    let mut c = Cluster::start("persisted");
    for i in 0..3 {
        c.ok(&[
            "create",
            "configmap",
            &format!("keep-{i}"),
            &format!("--from-literal=k={i}"),
        ]);
    }
    c.ok(&["delete", "configmap", "keep-1"]);
    let before = json(&c.ok(&["get", "--raw", CM]));
    c.stop();
    c.boot();
    let after = json(&c.ok(&["get", "--raw", CM]));
    assert_eq!(names(&after), ["keep-0", "keep-2"], "{after}");
    let keep2 = |list: &Value| {
        list["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["metadata"]["name"] == "keep-2"))
            .cloned()
            .expect("keep-2")
    };
    assert_eq!(keep2(&after), keep2(&before));
    assert!(
        rv_of(&after) >= rv_of(&before),
        "revision went back: {after}"
    );
    // New writes continue after the persisted revision.
    let new = json(&c.ok(&[
        "create",
        "configmap",
        "new",
        "--from-literal=k=n",
        "-o",
        "json",
    ]));
    assert!(rv_of(&new) > rv_of(&before), "{new}");
}

#[test]
fn later_pages_are_consistent_with_the_first() {
    let c = Cluster::start("pages");
    for n in ["a", "b", "c", "d"] {
        c.ok(&["create", "configmap", n, "--from-literal=k=old"]);
    }
    let first = json(&c.ok(&["get", "--raw", &format!("{CM}?limit=2")]));
    assert_eq!(names(&first), ["a", "b"], "{first}");
    let token = first["metadata"]["continue"]
        .as_str()
        .expect("continue token")
        .to_string();
    // Changes after the first page: a new object sorting last, a change, a delete.
    c.ok(&["create", "configmap", "zz", "--from-literal=k=new"]);
    c.ok(&[
        "patch",
        "configmap",
        "c",
        "--type=merge",
        "-p",
        r#"{"data":{"k":"changed"}}"#,
    ]);
    c.ok(&["delete", "configmap", "d"]);
    let next = json(&c.ok(&["get", "--raw", &format!("{CM}?limit=10&continue={token}")]));
    // The rest of the list as it was when the first page was served.
    assert_eq!(names(&next), ["c", "d"], "{next}");
    let c_item = next["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["metadata"]["name"] == "c"))
        .expect("c");
    assert_eq!(c_item["data"]["k"], "old", "{next}");
    assert_eq!(
        next["metadata"]["resourceVersion"], first["metadata"]["resourceVersion"],
        "{next}"
    );
    // A new list sees the changes.
    let now = json(&c.ok(&["get", "--raw", CM]));
    assert_eq!(names(&now), ["a", "b", "c", "zz"], "{now}");
}
