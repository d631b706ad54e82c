//! The simple core/v1 kinds (PodTemplate, Endpoints, PersistentVolume,
//! PersistentVolumeClaim, ComponentStatus) through stock kubectl: create from YAML, the
//! `kubectl get` columns, `-o json`, describe, delete and deletecollection, upstream's
//! validation messages, name lengths, discovery, and older and newer kubectl.
//!
//! Isolation levels: root only (no container behaviour is under test here).

mod common;

use common::Cluster;

/// stdout and stderr of a kubectl run that must succeed.
fn ok_with_stderr(c: &Cluster, bin: &str, args: &[&str]) -> (String, String) {
    let out = c.kubectl_bin(bin, args, None);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "{bin} {args:?} failed:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

/// stderr of `kubectl create -f -` with `yaml`, which must fail.
fn create_fails(c: &Cluster, yaml: &str) -> String {
    let out = c.kubectl_bin("kubectl", &["create", "-f", "-"], Some(yaml));
    assert!(
        !out.status.success(),
        "create unexpectedly succeeded:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts that `err` is upstream's Invalid error for `kind` `name` with `causes`, as
/// kubectl prints it (one cause inline, several as a `* ` list).
fn assert_invalid(err: &str, kind: &str, name: &str, causes: &[&str]) {
    let head = format!("The {kind} \"{name}\" is invalid: ");
    if let [one] = causes {
        assert!(err.contains(&format!("{head}{one}")), "{err}");
        return;
    }
    assert!(err.contains(&head), "{err}");
    let listed: Vec<&str> = err.lines().filter_map(|l| l.strip_prefix("* ")).collect();
    assert_eq!(listed, causes, "{err}");
}

/// The whitespace-separated cells of the table row starting with `name`.
fn row(table: &str, name: &str) -> Vec<String> {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{table}"))
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// The header cells (split on runs of two or more spaces, as kubectl pads them).
fn header(table: &str) -> Vec<String> {
    table
        .lines()
        .next()
        .unwrap_or("")
        .split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

const TEMPLATES: &str = "\
apiVersion: v1
kind: PodTemplate
metadata:
  name: web
  labels:
    tier: front
template:
  metadata:
    labels:
      app: web
      tier: front
  spec:
    containers:
    - name: web
      image: nginx
    - name: log
      image: busybox:1.36
---
apiVersion: v1
kind: PodTemplate
metadata:
  name: db
template:
  spec:
    containers:
    - name: db
      image: postgres:16
---
apiVersion: v1
kind: PodTemplate
metadata:
  name: cache
template:
  spec:
    containers:
    - name: cache
      image: redis:7
";

#[test]
fn pod_templates_get_describe_chunk_and_delete_collection() {
    let c = Cluster::start("podtemplates");
    c.ok_stdin(&["create", "-f", "-"], TEMPLATES);
    let table = c.ok(&["get", "podtemplates"]);
    assert_eq!(
        header(&table),
        ["NAME", "CONTAINERS", "IMAGES", "POD LABELS"],
        "{table}"
    );
    assert_eq!(
        row(&table, "web"),
        ["web", "web,log", "nginx,busybox:1.36", "app=web,tier=front"]
    );
    assert_eq!(row(&table, "db"), ["db", "db", "postgres:16", "<none>"]);

    // The template got the PodSpec defaults, not the pod-only admission ones.
    let json: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "podtemplate", "web", "-o", "json"])).unwrap();
    let spec = &json["template"]["spec"];
    assert_eq!(spec["restartPolicy"], "Always", "{json}");
    assert_eq!(spec["dnsPolicy"], "ClusterFirst");
    assert_eq!(spec["schedulerName"], "default-scheduler");
    assert_eq!(spec["terminationGracePeriodSeconds"], 30);
    assert_eq!(spec["containers"][0]["imagePullPolicy"], "Always");
    assert_eq!(spec["containers"][1]["imagePullPolicy"], "IfNotPresent");
    assert!(spec.get("serviceAccountName").is_none(), "{json}");
    assert_eq!(json["metadata"]["generation"], 1);

    // A template change moves the generation; a label change does not.
    c.ok(&["label", "podtemplate", "web", "extra=yes"]);
    let generation = || {
        c.ok(&[
            "get",
            "podtemplate",
            "web",
            "-o",
            "jsonpath={.metadata.generation}",
        ])
    };
    assert_eq!(generation(), "1");
    c.ok(&[
        "patch",
        "podtemplate",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/template/spec/containers/0/image","value":"nginx:1.27"}]"#,
    ]);
    assert_eq!(generation(), "2");

    // kubectl has no PodTemplate describer: the generic one prints the object.
    let described = c.ok(&["describe", "podtemplate", "web"]);
    assert!(
        described.contains("Kind:         PodTemplate"),
        "{described}"
    );
    assert!(described.contains("nginx:1.27"), "{described}");

    // API chunking: one template per page still lists them all.
    let chunked = c.ok(&["get", "podtemplates", "--chunk-size=1", "-o", "name"]);
    assert_eq!(
        chunked.lines().collect::<Vec<_>>(),
        ["podtemplate/cache", "podtemplate/db", "podtemplate/web"]
    );

    let deleted = c.ok(&["delete", "podtemplates", "--all"]);
    for name in ["web", "db", "cache"] {
        assert!(
            deleted.contains(&format!("podtemplate \"{name}\" deleted")),
            "{deleted}"
        );
    }
    let (out, err) = ok_with_stderr(&c, "kubectl", &["get", "podtemplates"]);
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("No resources found in default namespace."),
        "{err}"
    );

    let err = create_fails(
        &c,
        "apiVersion: v1\nkind: PodTemplate\nmetadata:\n  name: bad\ntemplate:\n  spec:\n    containers:\n    - name: c\n",
    );
    assert_invalid(
        &err,
        "PodTemplate",
        "bad",
        &["template.spec.containers[0].image: Required value"],
    );
}

#[test]
fn endpoints_columns_validation_and_describe() {
    let c = Cluster::start("endpoints");
    c.ok_stdin(
        &["create", "-f", "-"],
        "\
apiVersion: v1
kind: Endpoints
metadata:
  name: web
subsets:
- addresses:
  - ip: 10.1.0.1
  - ip: 10.1.0.2
  - ip: 10.1.0.3
  - ip: 10.1.0.4
  ports:
  - port: 8080
---
apiVersion: v1
kind: Endpoints
metadata:
  name: empty
",
    );
    let table = c.ok(&["get", "ep"]);
    assert_eq!(header(&table), ["NAME", "ENDPOINTS", "AGE"], "{table}");
    let web = row(&table, "web");
    assert_eq!(
        web[1..web.len() - 1].join(" "),
        "10.1.0.1:8080,10.1.0.2:8080,10.1.0.3:8080 + 1 more...",
        "{table}"
    );
    assert_eq!(row(&table, "empty")[1], "<none>");
    assert_eq!(
        c.ok(&[
            "get",
            "endpoints",
            "web",
            "-o",
            "jsonpath={.subsets[0].ports[0].protocol}"
        ]),
        "TCP"
    );
    let described = c.ok(&["describe", "endpoints", "web"]);
    assert!(
        described.contains("10.1.0.1,10.1.0.2,10.1.0.3,10.1.0.4"),
        "{described}"
    );

    let err = create_fails(
        &c,
        "\
apiVersion: v1
kind: Endpoints
metadata:
  name: bad
subsets:
- addresses:
  - ip: 127.0.0.1
  ports:
  - port: 80
  - port: 70000
    name: high
",
    );
    assert_invalid(
        &err,
        "Endpoints",
        "bad",
        &[
            "subsets[0].addresses[0].ip: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)",
            "subsets[0].ports[0].name: Required value",
            "subsets[0].ports[1].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
        ],
    );
    c.ok(&["delete", "endpoints", "--all"]);
    assert!(c.ok(&["get", "endpoints", "-o", "name"]).is_empty());
}

const PV: &str = "\
apiVersion: v1
kind: PersistentVolume
metadata:
  name: pv1
spec:
  capacity:
    storage: 1Gi
  accessModes: [ReadWriteOnce, ReadOnlyMany]
  hostPath:
    path: /tmp/rkind-pv1
";

const PVC: &str = "\
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 500Mi
";

#[test]
fn persistent_volumes_and_claims() {
    let c = Cluster::start("storage");
    c.ok_stdin(&["create", "-f", "-"], PV);
    let table = c.ok(&["get", "pv"]);
    assert_eq!(
        header(&table),
        [
            "NAME",
            "CAPACITY",
            "ACCESS MODES",
            "RECLAIM POLICY",
            "STATUS",
            "CLAIM",
            "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS",
            "REASON",
            "AGE"
        ],
        "{table}"
    );
    assert_eq!(
        row(&table, "pv1")[..6],
        ["pv1", "1Gi", "RWO,ROX", "Retain", "Available", "<unset>"],
        "{table}"
    );
    let wide = c.ok(&["get", "pv", "-o", "wide"]);
    assert_eq!(header(&wide).last().map(String::as_str), Some("VOLUMEMODE"));
    assert_eq!(
        row(&wide, "pv1").last().map(String::as_str),
        Some("Filesystem")
    );
    let pv: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "pv", "pv1", "-o", "json"])).unwrap();
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    assert_eq!(pv["spec"]["volumeMode"], "Filesystem");
    assert!(pv["metadata"].get("namespace").is_none(), "{pv}");
    let described = c.ok(&["describe", "pv", "pv1"]);
    assert!(described.contains("Reclaim Policy:  Retain"), "{described}");

    // The status subresource moves the phase (and its transition time); the main
    // resource keeps it, and the volume source is immutable.
    let before = pv["status"]["lastPhaseTransitionTime"]
        .as_str()
        .unwrap()
        .to_string();
    c.ok(&[
        "patch",
        "pv",
        "pv1",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Released"}}"#,
    ]);
    assert_eq!(
        c.ok(&["get", "pv", "pv1", "-o", "jsonpath={.status.phase}"]),
        "Released"
    );
    c.ok(&["label", "pv", "pv1", "kind=test"]);
    assert_eq!(
        c.ok(&["get", "pv", "pv1", "-o", "jsonpath={.status.phase}"]),
        "Released"
    );
    let after = c.ok(&[
        "get",
        "pv",
        "pv1",
        "-o",
        "jsonpath={.status.lastPhaseTransitionTime}",
    ]);
    assert!(after >= before, "{before} -> {after}");
    let err = c.fails(&[
        "patch",
        "pv",
        "pv1",
        "--type=merge",
        "-p",
        r#"{"spec":{"hostPath":{"path":"/elsewhere"}}}"#,
    ]);
    assert!(
        err.contains("spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation"),
        "{err}"
    );

    let err = create_fails(
        &c,
        "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: bad\nspec:\n  accessModes: [ReadWriteMany]\n",
    );
    assert_invalid(
        &err,
        "PersistentVolume",
        "bad",
        &[
            "spec.capacity: Required value",
            "spec.capacity: Unsupported value: core.ResourceList(nil): supported values: \"storage\"",
            "spec: Required value: must specify a volume type",
        ],
    );

    c.ok_stdin(&["create", "-f", "-"], PVC);
    let table = c.ok(&["get", "pvc"]);
    assert_eq!(
        header(&table),
        [
            "NAME",
            "STATUS",
            "VOLUME",
            "CAPACITY",
            "ACCESS MODES",
            "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS",
            "AGE"
        ],
        "{table}"
    );
    assert_eq!(
        row(&table, "data")[..3],
        ["data", "Pending", "<unset>"],
        "{table}"
    );
    assert_eq!(
        c.ok(&["get", "pvc", "data", "-o", "jsonpath={.spec.volumeMode}"]),
        "Filesystem"
    );
    let described = c.ok(&["describe", "pvc", "data"]);
    assert!(described.contains("Status:        Pending"), "{described}");
    let err = c.fails(&[
        "patch",
        "pvc",
        "data",
        "--type=merge",
        "-p",
        r#"{"spec":{"accessModes":["ReadWriteMany"]}}"#,
    ]);
    assert!(
        err.contains("spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"),
        "{err}"
    );
    let err = create_fails(
        &c,
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: bad\nspec:\n  accessModes: [ReadWriteOnce]\n",
    );
    assert!(
        err.contains(
            "The PersistentVolumeClaim \"bad\" is invalid: spec.resources[storage]: Required value"
        ),
        "{err}"
    );

    c.ok(&["delete", "pvc", "--all"]);
    c.ok(&["delete", "pv", "--all"]);
    assert!(c.ok(&["get", "pv,pvc", "-o", "name"]).is_empty());
}

#[test]
fn names_up_to_253_characters() {
    let c = Cluster::start("kindnames");
    let ok = "a".repeat(253);
    let long = "a".repeat(254);
    let docs = |name: &str| {
        vec![
            format!(
                "apiVersion: v1\nkind: PodTemplate\nmetadata:\n  name: {name}\ntemplate:\n  spec:\n    containers:\n    - name: c\n      image: i\n"
            ),
            format!("apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: {name}\n"),
            PV.replace("name: pv1", &format!("name: {name}")),
            PVC.replace("name: data", &format!("name: {name}")),
        ]
    };
    for (doc, kind) in docs(&ok).iter().zip([
        "podtemplate",
        "endpoints",
        "persistentvolume",
        "persistentvolumeclaim",
    ]) {
        let out = c.ok_stdin(&["create", "-f", "-", "-o", "name"], doc);
        assert_eq!(out.trim(), format!("{kind}/{ok}"));
    }
    for (doc, kind) in docs(&long).iter().zip([
        "PodTemplate",
        "Endpoints",
        "PersistentVolume",
        "PersistentVolumeClaim",
    ]) {
        let err = create_fails(&c, doc);
        let cause = format!(
            "metadata.name: Invalid value: \"{long}\": must be no more than 253 characters"
        );
        assert_invalid(&err, kind, &long, &[&cause]);
    }
}

#[test]
fn discovery_component_statuses_and_kubectl_versions() {
    let c = Cluster::start("corekinds");
    let resources = c.ok(&["api-resources"]);
    for want in [
        ["componentstatuses", "cs", "v1", "false", "ComponentStatus"].as_slice(),
        &["endpoints", "ep", "v1", "true", "Endpoints"],
        &[
            "persistentvolumeclaims",
            "pvc",
            "v1",
            "true",
            "PersistentVolumeClaim",
        ],
        &["persistentvolumes", "pv", "v1", "false", "PersistentVolume"],
        &["podtemplates", "v1", "true", "PodTemplate"],
    ] {
        assert_eq!(row(&resources, want[0]), want, "{resources}");
    }

    let (table, warning) = ok_with_stderr(&c, "kubectl", &["get", "cs"]);
    assert!(
        warning.contains("Warning: v1 ComponentStatus is deprecated in v1.19+"),
        "{warning}"
    );
    assert_eq!(
        header(&table),
        ["NAME", "STATUS", "MESSAGE", "ERROR"],
        "{table}"
    );
    for name in ["scheduler", "controller-manager", "etcd-0"] {
        assert_eq!(row(&table, name), [name, "Healthy", "ok"], "{table}");
    }
    let etcd: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "componentstatus", "etcd-0", "-o", "json"])).unwrap();
    assert_eq!(etcd["kind"], "ComponentStatus");
    assert_eq!(etcd["conditions"][0]["type"], "Healthy");
    assert_eq!(etcd["conditions"][0]["status"], "True");
    let err = c.fails(&["get", "cs", "nope"]);
    assert!(err.contains("Component not found: nope"), "{err}");
    let err = c.fails(&["delete", "cs", "scheduler"]);
    assert!(
        err.contains("the server does not allow this method on the requested resource"),
        "{err}"
    );
    let err = c.fails(&["get", "cs", "--watch", "--request-timeout=5s"]);
    assert!(err.contains("watch is not supported"), "{err}");

    c.ok_stdin(&["create", "-f", "-"], TEMPLATES);
    for bin in ["kubectl.1.27", "kubectl.1.33"] {
        let (table, _) = ok_with_stderr(&c, bin, &["get", "podtemplates"]);
        assert_eq!(
            row(&table, "db"),
            ["db", "db", "postgres:16", "<none>"],
            "{bin}: {table}"
        );
        let (table, warning) = ok_with_stderr(&c, bin, &["get", "cs"]);
        assert_eq!(row(&table, "etcd-0")[1], "Healthy", "{bin}: {table}");
        assert!(warning.contains("deprecated"), "{bin}: {warning}");
    }
}
