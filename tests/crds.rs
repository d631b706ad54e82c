//! CustomResourceDefinitions end to end with stock kubectl: `kubectl apply -f
//! testdata/crd/` (the CRD, then the Widget), printer columns, the short name, `kubectl
//! explain` (1.27 reads OpenAPI v2, 1.33 v3), the scale and status subresources, schema
//! errors with upstream's messages, pruning and `--validate=strict`, defaulting, both
//! versions, watch, discovery within a second of creation and deletion, a CRD's deletion
//! removing its objects (waiting for their finalizers, refusing creates meanwhile), names
//! conflicts, API approval of protected groups, cluster scope, and custom resources
//! surviving a restart.
//!
//! Isolation levels: root only (no container behaviour is under test here).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Cluster;
use serde_json::Value;

fn dir() -> String {
    common::source_file("testdata/crd").display().to_string()
}

fn json(c: &Cluster, args: &[&str]) -> Value {
    serde_json::from_str(&c.ok(args)).expect("JSON")
}

/// Applies testdata/crd/ as a user would: kubectl reads both files before writing, so
/// the first apply may miss the Widget's kind (as on any cluster); the second succeeds.
fn apply_testdata(c: &Cluster) {
    let out = c.kubectl(&["apply", "-f", &dir()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout
            .contains("customresourcedefinition.apiextensions.k8s.io/widgets.example.com created"),
        "{stdout}{stderr}"
    );
    eprintln!(
        "first apply -f testdata/crd/: success={} stderr={stderr}",
        out.status.success()
    );
    if !out.status.success() {
        assert!(
            stderr.contains("no matches for kind \"Widget\" in version \"example.com/v1\"")
                && stderr.contains("ensure CRDs are installed first"),
            "{stderr}"
        );
        let again = c.ok(&["apply", "-f", &dir()]);
        assert!(again.contains("widget.example.com/w1 created"), "{again}");
    } else {
        assert!(stdout.contains("widget.example.com/w1 created"), "{stdout}");
    }
}

/// Discovery and OpenAPI carry a new CRD's kind within a second, and drop it within a
/// second of its deletion.
#[test]
fn discovery_follows_crds_within_a_second() {
    let c = Cluster::start("crd-disco");
    let crd = std::fs::read_to_string(common::source_file("testdata/crd/crd.yaml")).unwrap();
    // Server-side apply of a CRD (its schema type is recursive).
    c.ok_stdin(&["apply", "--server-side", "-f", "-"], &crd);
    let start = Instant::now();
    c.eventually(5, "example.com/v1 in discovery", || {
        c.kubectl(&["get", "--raw", "/apis/example.com/v1"])
            .status
            .success()
    });
    let served = start.elapsed();
    assert!(served < Duration::from_secs(1), "served after {served:?}");
    let disco = json(&c, &["get", "--raw", "/apis/example.com/v1"]);
    let widgets = disco["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "widgets")
        .cloned()
        .expect("widgets listed");
    assert_eq!(widgets["kind"], "Widget");
    assert_eq!(widgets["namespaced"], true);
    assert_eq!(widgets["shortNames"], serde_json::json!(["wd"]));
    assert_eq!(widgets["categories"], serde_json::json!(["all"]));
    let names: Vec<&str> = disco["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(
        names.contains(&"widgets/status") && names.contains(&"widgets/scale"),
        "{names:?}"
    );
    let v3 = json(&c, &["get", "--raw", "/openapi/v3"]);
    assert!(v3["paths"]["apis/example.com/v1"].is_object(), "{v3}");
    let doc = json(&c, &["get", "--raw", "/openapi/v3/apis/example.com/v1"]);
    assert_eq!(
        doc["components"]["schemas"]["com.example.v1.Widget"]["properties"]["spec"]["properties"]["size"]
            ["enum"],
        serde_json::json!(["small", "medium", "large"])
    );
    // The CRD's conditions.
    let got = json(&c, &["get", "crd", "widgets.example.com", "-o", "json"]);
    let conds = got["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let cond = |t: &str| {
        conds
            .iter()
            .find(|x| x["type"] == t)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(cond("NamesAccepted")["status"], "True", "{got}");
    assert_eq!(cond("NamesAccepted")["reason"], "NoConflicts");
    assert_eq!(cond("Established")["status"], "True");
    assert_eq!(cond("Established")["reason"], "InitialNamesAccepted");
    assert_eq!(got["status"]["acceptedNames"]["kind"], "Widget");
    assert_eq!(got["status"]["storedVersions"], serde_json::json!(["v1"]));
    let table = c.ok(&["get", "crds"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, vec!["NAME", "CREATED", "AT"], "{table}");
    assert!(table.contains("widgets.example.com"), "{table}");

    c.ok(&["delete", "crd", "widgets.example.com", "--wait=false"]);
    c.eventually(10, "the CRD is gone", || {
        !c.kubectl(&["get", "crd", "widgets.example.com"])
            .status
            .success()
    });
    let gone = Instant::now();
    c.eventually(5, "example.com/v1 out of discovery", || {
        !c.kubectl(&["get", "--raw", "/apis/example.com/v1"])
            .status
            .success()
    });
    assert!(
        gone.elapsed() < Duration::from_secs(1),
        "{:?}",
        gone.elapsed()
    );
}

#[test]
fn widgets_end_to_end() {
    let c = Cluster::start("crd-widgets");
    apply_testdata(&c);

    // Printer columns, the short name, the category, both kubectl versions.
    for bin in ["kubectl.1.27", "kubectl.1.33"] {
        let out = c.kubectl_bin(bin, &["get", "widgets"], None);
        let table = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{bin}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut lines = table.lines();
        let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
        assert_eq!(
            header,
            vec!["NAME", "REPLICAS", "SIZE", "AGE"],
            "{bin}: {table}"
        );
        let row: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
        assert_eq!(row[..3], ["w1", "2", "small"], "{bin}: {table}");
        let out = c.kubectl_bin(bin, &["explain", "widget.spec"], None);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{bin}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("What the widget should be."), "{bin}: {text}");
        assert!(
            text.contains("replicas") && text.contains("size"),
            "{bin}: {text}"
        );
    }
    let short = c.ok(&["get", "wd"]);
    assert!(short.contains("w1"), "{short}");
    let all = c.ok(&["get", "all"]);
    assert!(all.contains("widget.example.com/w1"), "{all}");

    // Defaulting: colour came from the schema.
    let w1 = json(&c, &["get", "widget", "w1", "-o", "json"]);
    assert_eq!(w1["spec"]["colour"], "blue", "{w1}");
    assert_eq!(w1["metadata"]["generation"], 1);

    // Scale.
    let out = c.ok(&["scale", "widget/w1", "--replicas=3"]);
    assert!(out.contains("widget.example.com/w1 scaled"), "{out}");
    let r = c.ok(&["get", "widget", "w1", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(r, "3");
    let scale = json(
        &c,
        &[
            "get",
            "--raw",
            "/apis/example.com/v1/namespaces/default/widgets/w1/scale",
        ],
    );
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 3);

    // A schema error, with upstream's message.
    let bad = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: bad\nspec:\n  size: small\n  replicas: \"string\"\n";
    let err = c.fails_stdin(&["apply", "--validate=false", "-f", "-"], bad);
    assert!(
        err.contains("spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\""),
        "{err}"
    );
    let bad =
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: bad\nspec:\n  size: huge\n";
    let err = c.fails_stdin(&["create", "-f", "-"], bad);
    assert!(
        err.contains("The Widget \"bad\" is invalid: spec.size: Unsupported value: \"huge\": supported values: \"small\", \"medium\", \"large\""),
        "{err}"
    );

    // Pruning: an unknown field is dropped with a warning; --validate=strict refuses it.
    let extra = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w2\nspec:\n  size: large\n  flavour: lemon\n";
    let err = c.fails_stdin(&["create", "--validate=strict", "-f", "-"], extra);
    assert!(err.contains("unknown field \"spec.flavour\""), "{err}");
    let out = c.kubectl_bin(
        "kubectl",
        &["create", "--validate=warn", "-f", "-"],
        Some(extra),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown field \"spec.flavour\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let w2 = json(&c, &["get", "widget", "w2", "-o", "json"]);
    assert!(w2["spec"].get("flavour").is_none(), "{w2}");
    assert_eq!(w2["spec"]["replicas"], 1, "{w2}");

    // Status subresource: a PUT of the main resource ignores the status, a PUT of
    // /status keeps the spec.
    let mut obj = json(&c, &["get", "widget", "w1", "-o", "json"]);
    obj["status"] = serde_json::json!({"phase": "Ready", "replicas": 3});
    obj["spec"]["size"] = serde_json::json!("medium");
    let tmp = tempfile::tempdir().unwrap();
    let f = common::write_file(tmp.path(), "w1.json", &obj.to_string());
    let path = "/apis/example.com/v1/namespaces/default/widgets/w1";
    let put: Value =
        serde_json::from_str(&c.ok(&["replace", "--raw", path, "-f", &f.display().to_string()]))
            .unwrap();
    assert!(
        put.get("status").is_none_or(|s| s.get("phase").is_none()),
        "{put}"
    );
    assert_eq!(put["spec"]["size"], "medium");
    assert_eq!(put["metadata"]["generation"], 3, "{put}");
    let mut obj = put.clone();
    obj["status"] = serde_json::json!({"phase": "Ready", "replicas": 3});
    obj["spec"]["size"] = serde_json::json!("large");
    let f = common::write_file(tmp.path(), "w1s.json", &obj.to_string());
    let st: Value = serde_json::from_str(&c.ok(&[
        "replace",
        "--raw",
        &format!("{path}/status"),
        "-f",
        &f.display().to_string(),
    ]))
    .unwrap();
    assert_eq!(st["status"]["phase"], "Ready", "{st}");
    assert_eq!(st["spec"]["size"], "medium", "{st}");
    assert_eq!(st["metadata"]["generation"], 3, "{st}");

    // Both versions read the same object, each with its own apiVersion.
    let beta = json(
        &c,
        &[
            "get",
            "--raw",
            "/apis/example.com/v1beta1/namespaces/default/widgets/w1",
        ],
    );
    assert_eq!(beta["apiVersion"], "example.com/v1beta1");
    assert_eq!(beta["spec"]["replicas"], 3);
    let list = json(&c, &["get", "--raw", "/apis/example.com/v1/widgets"]);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2), "{list}");
    assert_eq!(list["items"][0]["apiVersion"], "example.com/v1");

    // Field selectors on metadata.
    let sel = c.ok(&[
        "get",
        "widgets",
        "--field-selector",
        "metadata.name=w2",
        "-o",
        "name",
    ]);
    assert_eq!(sel.trim(), "widget.example.com/w2");

    // Server-side apply of a custom kind.
    let ssa = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w3\nspec:\n  size: small\n  labels:\n    a: b\n";
    c.ok_stdin(&["apply", "--server-side", "-f", "-"], ssa);
    let w3 = json(&c, &["get", "widget", "w3", "-o", "json"]);
    assert_eq!(w3["spec"]["labels"]["a"], "b", "{w3}");
    c.ok(&["delete", "widget", "w3"]);

    // Watch sees a change.
    let mut watch = Command::new("kubectl")
        .args(["get", "widgets", "--watch", "-o", "name"])
        .envs(c.envs())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("watch lists");
    assert!(first.starts_with("widget.example.com/"), "{first}");
    c.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w4\nspec:\n  size: small\n",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = false;
    while Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200))
            && l == "widget.example.com/w4"
        {
            seen = true;
            break;
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(seen, "the watch saw w4");

    // Deleting the CRD deletes its objects.
    c.ok(&["delete", "crd", "widgets.example.com"]);
    assert!(
        !c.kubectl(&["get", "crd", "widgets.example.com"])
            .status
            .success()
    );
    let err = c.fails(&["get", "widgets"]);
    // kubectl's cached discovery still names widgets, so the list is a 404 (as upstream).
    assert!(
        err.contains("the server could not find the requested resource")
            || err.contains("the server doesn't have a resource type \"widgets\""),
        "{err}"
    );
    assert!(
        !c.kubectl(&["get", "--raw", "/apis/example.com/v1"])
            .status
            .success()
    );
    // Re-created, it has no objects left.
    let crd = std::fs::read_to_string(common::source_file("testdata/crd/crd.yaml")).unwrap();
    c.ok_stdin(&["create", "-f", "-"], &crd);
    c.eventually(5, "widgets served again", || {
        c.kubectl(&["get", "--raw", "/apis/example.com/v1/widgets"])
            .status
            .success()
    });
    let list = json(&c, &["get", "--raw", "/apis/example.com/v1/widgets"]);
    assert_eq!(list["items"], serde_json::json!([]), "{list}");
}

/// The condition of `type` on a CRD, if it has one.
fn crd_condition(c: &Cluster, name: &str, type_: &str) -> Option<Value> {
    let got = json(c, &["get", "crd", name, "-o", "json"]);
    got["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|x| x["type"] == type_)
        .cloned()
}

/// A deleted CRD stays `Terminating` while an object's finalizer holds it, refuses
/// creates of its kind with upstream's 405, deletes its other objects as a client would,
/// and goes once the last object is released; a finalizer of its own keeps it after that
/// with `Terminating=False`.
#[test]
fn a_terminating_crd_waits_for_its_objects_and_refuses_creates() {
    let c = Cluster::start("crd-terminating");
    let crd = std::fs::read_to_string(common::source_file("testdata/crd/crd.yaml")).unwrap();
    c.ok_stdin(&["create", "-f", "-"], &crd);
    c.eventually(5, "widgets served", || {
        c.kubectl(&["get", "--raw", "/apis/example.com/v1/widgets"])
            .status
            .success()
    });
    let widget = |name: &str, finalizers: &str| {
        format!(
            "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: {name}\n  finalizers: [{finalizers}]\nspec:\n  size: small\n"
        )
    };
    c.ok_stdin(&["create", "-f", "-"], &widget("held", "example.com/hold"));
    c.ok_stdin(&["create", "-f", "-"], &widget("free", ""));
    c.ok(&[
        "patch", "crd", "widgets.example.com", "--type=merge", "-p",
        r#"{"metadata":{"finalizers":["customresourcecleanup.apiextensions.k8s.io","example.com/keep"]}}"#,
    ]);
    c.ok(&["delete", "crd", "widgets.example.com", "--wait=false"]);

    // The free object goes; the held one is being deleted, and holds the CRD.
    c.eventually(5, "free deleted, held marked", || {
        let free_gone = !c.kubectl(&["get", "widget", "free"]).status.success();
        let held = json(&c, &["get", "widget", "held", "-o", "json"]);
        free_gone && held["metadata"]["deletionTimestamp"].is_string()
    });
    let terminating = crd_condition(&c, "widgets.example.com", "Terminating").expect("Terminating");
    assert_eq!(terminating["status"], "True", "{terminating}");
    assert_eq!(
        terminating["reason"], "InstanceDeletionInProgress",
        "{terminating}"
    );
    assert_eq!(
        terminating["message"],
        "CustomResource deletion is in progress"
    );

    // Creates are refused, by kubectl create and by a server-side apply that would create.
    let err = c.fails_stdin(&["create", "-f", "-"], &widget("late", ""));
    assert!(
        err.contains("Error from server (MethodNotAllowed)")
            && err.contains("create not allowed while custom resource definition is terminating"),
        "{err}"
    );
    let err = c.fails_stdin(&["apply", "--server-side", "-f", "-"], &widget("late", ""));
    assert!(
        err.contains("create not allowed while custom resource definition is terminating"),
        "{err}"
    );
    // Updates of what is left still work (the finalizer's owner must be able to act).
    c.ok(&["label", "widget", "held", "seen=yes"]);

    // Releasing the object completes the cleanup; the CRD's own finalizer keeps it.
    c.clear_finalizers(&["widget", "held"]);
    c.eventually(5, "Terminating=False", || {
        crd_condition(&c, "widgets.example.com", "Terminating")
            .is_some_and(|t| t["status"] == "False" && t["reason"] == "InstanceDeletionCompleted")
    });
    let after = json(&c, &["get", "crd", "widgets.example.com", "-o", "json"]);
    assert_eq!(
        after["metadata"]["finalizers"],
        serde_json::json!(["example.com/keep"]),
        "{after}"
    );
    assert_eq!(
        crd_condition(&c, "widgets.example.com", "Terminating").unwrap()["message"],
        "removed all instances"
    );
    assert!(!c.kubectl(&["get", "widget", "held"]).status.success());
    c.clear_finalizers(&["crd", "widgets.example.com"]);
    c.eventually(5, "the CRD gone", || {
        !c.kubectl(&["get", "crd", "widgets.example.com"])
            .status
            .success()
    });
}

/// A custom resource is stored like any object: it is there after a restart.
#[test]
fn custom_resources_survive_a_restart_and_names_conflict() {
    let mut c = Cluster::start("crd-restart");
    apply_testdata(&c);
    // A second CRD claiming the short name `wd` in the same group is not accepted.
    let other = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Cluster
  names: {plural: gadgets, kind: Gadget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
";
    c.ok_stdin(&["create", "-f", "-"], other);
    c.eventually(5, "NamesAccepted=False", || {
        crd_condition(&c, "gadgets.example.com", "NamesAccepted").is_some_and(|x| {
            x["status"] == "False"
                && x["reason"] == "ShortNamesConflict"
                && x["message"] == "\"wd\" is already in use"
        })
    });
    // Invalid CRDs are refused with upstream's messages.
    let bad = other
        .replace("gadgets.example.com", "gadgets.example")
        .replace("group: example.com", "group: example");
    let err = c.fails_stdin(&["create", "-f", "-"], &bad);
    assert!(
        err.contains(
            "spec.group: Invalid value: \"example\": should be a domain with at least one dot"
        ),
        "{err}"
    );
    let bad = other.replace("schema:\n      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}", "schema:\n      openAPIV3Schema: {type: object, properties: {spec: {}}}");
    let err = c.fails_stdin(&["create", "-f", "-"], &bad);
    assert!(
        err.contains("spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields"),
        "{err}"
    );
    // The community's own groups need an API approval annotation.
    let protected = other
        .replace("gadgets.example.com", "gadgets.sigs.k8s.io")
        .replace("group: example.com", "group: sigs.k8s.io");
    let err = c.fails_stdin(&["create", "-f", "-"], &protected);
    assert!(
        err.contains("metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must have approval annotation \"api-approved.kubernetes.io\", see https://github.com/kubernetes/enhancements/pull/1111"),
        "{err}"
    );
    let unapproved = protected.replace(
        "  name: gadgets.sigs.k8s.io\n",
        "  name: gadgets.sigs.k8s.io\n  annotations: {api-approved.kubernetes.io: \"unapproved, a test\"}\n",
    );
    c.ok_stdin(&["create", "-f", "-"], &unapproved);
    c.eventually(5, "KubernetesAPIApprovalPolicyConformant=False", || {
        crd_condition(
            &c,
            "gadgets.sigs.k8s.io",
            "KubernetesAPIApprovalPolicyConformant",
        )
        .is_some_and(|x| {
            x["status"] == "False"
                && x["reason"] == "UnapprovedAnnotation"
                && x["message"] == "not approved: \"unapproved, a test\""
        })
    });
    // Cluster scope: a non-conflicting cluster-scoped CRD.
    let things = other
        .replace("gadgets", "things")
        .replace("Gadget", "Thing")
        .replace("shortNames: [wd]", "shortNames: [th]");
    c.ok_stdin(&["create", "-f", "-"], &things);
    c.eventually(5, "things served", || {
        c.kubectl(&["get", "things"]).status.success()
    });
    c.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: example.com/v1\nkind: Thing\nmetadata:\n  name: t1\nanything: [1, 2]\n",
    );
    let t1 = json(&c, &["get", "thing", "t1", "-o", "json"]);
    assert!(t1["metadata"].get("namespace").is_none(), "{t1}");
    assert_eq!(t1["anything"], serde_json::json!([1, 2]));

    c.stop();
    c.boot();
    let w1 = json(&c, &["get", "widget", "w1", "-o", "json"]);
    assert_eq!(w1["spec"]["size"], "small");
    let t1 = json(&c, &["get", "thing", "t1", "-o", "json"]);
    assert_eq!(t1["anything"], serde_json::json!([1, 2]));
}

/// A CRD whose schema carries `x-kubernetes-validations`: plain rules, a rule with a
/// field path, and a transition rule.
const GADGETS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - rule: self.min <= self.max
            - rule: self.max <= 10
              fieldPath: .max
              messageExpression: "'max must be at most 10, not ' + string(self.max)"
            - rule: self.size == oldSelf.size
              message: size is immutable
              reason: FieldValueForbidden
            properties:
              min: {type: integer}
              max: {type: integer}
              size: {type: string}
"#;

fn gadget(name: &str, min: i64, max: i64, size: &str) -> String {
    format!(
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {{name: {name}}}\nspec: {{min: {min}, max: {max}, size: {size}}}\n"
    )
}

/// CEL rules of a CRD's schema refuse custom objects with upstream's field errors; a
/// transition rule runs on updates only; a rule that does not compile refuses the CRD.
#[test]
fn cel_rules_validate_custom_objects() {
    let c = Cluster::start("crd-cel");
    c.ok_stdin(&["apply", "-f", "-"], GADGETS);
    c.eventually(10, "gadgets served", || {
        c.kubectl(&["get", "gadgets"]).status.success()
    });
    c.ok_stdin(&["create", "-f", "-"], &gadget("g1", 1, 2, "s"));
    let err = c.fails_stdin(&["create", "-f", "-"], &gadget("g2", 13, 12, "s"));
    assert!(
        err.contains("The Gadget \"g2\" is invalid")
            && err.contains("spec: Invalid value: \"object\": failed rule: self.min <= self.max")
            && err.contains("spec.max: Invalid value: \"object\": max must be at most 10, not 12"),
        "{err}"
    );
    // The transition rule: size may not change, other fields may.
    c.ok(&[
        "patch",
        "gadget",
        "g1",
        "--type=merge",
        "-p",
        r#"{"spec":{"max":3}}"#,
    ]);
    let err = c.fails(&[
        "patch",
        "gadget",
        "g1",
        "--type=merge",
        "-p",
        r#"{"spec":{"size":"m"}}"#,
    ]);
    assert!(err.contains("spec: Forbidden: size is immutable"), "{err}");
    let got = json(&c, &["get", "gadget", "g1", "-o", "json"]);
    assert_eq!(
        got["spec"],
        serde_json::json!({"min": 1, "max": 3, "size": "s"})
    );

    let broken = GADGETS
        .replace("gadgets.example.com", "gizmos.example.com")
        .replace(
            "{plural: gadgets, singular: gadget, kind: Gadget}",
            "{plural: gizmos, singular: gizmo, kind: Gizmo}",
        )
        .replace("rule: self.min <= self.max", "rule: self.min <=");
    let err = c.fails_stdin(&["create", "-f", "-"], &broken);
    assert!(
        err.contains("is invalid")
            && err.contains("properties[spec].x-kubernetes-validations[0].rule")
            && err.contains("compilation failed"),
        "{err}"
    );
}
