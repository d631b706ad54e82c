//! The apps/v1 kinds end to end through stock kubectl: Deployments, ReplicaSets,
//! StatefulSets, DaemonSets and ControllerRevisions created from YAML get upstream's
//! defaults, Table columns (also `-o wide`), short names and the `all` category, and read
//! in `kubectl describe`; invalid objects are refused with upstream's 422 messages; the
//! `scale` subresource of deployments, replicasets and statefulsets answers GET/PUT and
//! `kubectl scale`; every kind reads back identically in protobuf.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rkind::apiserver::protobuf::{MAGIC, decode_body};
use rustls_pki_types::ServerName;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use common::{Cluster, source_file, write_file};

const WAIT: u64 = 90;
const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
const APPS: &str = "/apis/apps/v1/namespaces/default";

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn get(c: &Cluster, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    json_of(&c.ok(&all))
}

/// The header words and the first row's words of `kubectl get <args>`.
fn table(c: &Cluster, args: &[&str]) -> (Vec<String>, Vec<String>) {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    let text = c.ok(&all);
    let mut lines = text.lines();
    let words = |l: Option<&str>| -> Vec<String> {
        l.unwrap_or("")
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    (words(lines.next()), words(lines.next()))
}

/// Whether `text` has a line that reads `want` with runs of blanks as one space.
fn has_line(text: &str, want: &str) -> bool {
    text.lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") == want)
}

fn kinds_file() -> String {
    source_file("testdata/apps/kinds.yaml")
        .display()
        .to_string()
}

/// Removes every workload and waits until no pod is left (a controller of any of these
/// kinds may have made some).
fn clean_up(c: &Cluster) {
    c.ok(&["delete", "deploy,rs,sts,ds,controllerrevisions", "--all"]);
    c.eventually(WAIT, "no pods left", || {
        get(c, &["pods"])["items"]
            .as_array()
            .is_some_and(|a| a.is_empty())
    });
}

#[test]
fn apps_kinds_are_defaulted_listed_and_described_as_upstream() {
    let c = Cluster::start("apps-kinds");
    let out = c.ok(&["apply", "-f", &kinds_file()]);
    for created in [
        "deployment.apps/web created",
        "replicaset.apps/front created",
        "statefulset.apps/db created",
        "daemonset.apps/agent created",
    ] {
        assert!(out.contains(created), "{out}");
    }
    let sts_uid = get(&c, &["sts", "db"])["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_string();
    let revision = json!({"apiVersion": "apps/v1", "kind": "ControllerRevision",
        // Labelled as the set's selector asks: the StatefulSet controller releases a
        // revision it controls whose labels do not match (upstream's claim rules).
        "metadata": {"name": "db-1", "labels": {"app": "db"}, "ownerReferences": [{"apiVersion": "apps/v1",
            "kind": "StatefulSet", "name": "db", "uid": sts_uid, "controller": true}]},
        "data": {"spec": {"template": {"metadata": {"labels": {"app": "db"}}}}},
        "revision": 1});
    c.ok_stdin(&["create", "-f", "-"], &revision.to_string());

    // Defaults as apps/v1 sets them.
    let d = get(&c, &["deploy", "web"]);
    assert_eq!(
        d["spec"]["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    );
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
    assert_eq!(d["metadata"]["generation"], 1);
    assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
    assert_eq!(d["spec"]["template"]["spec"]["dnsPolicy"], "ClusterFirst");
    let s = get(&c, &["sts", "db"]);
    assert_eq!(s["spec"]["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        s["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(
        s["spec"]["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    assert_eq!(
        s["spec"]["volumeClaimTemplates"][0]["spec"]["volumeMode"],
        "Filesystem"
    );
    let ds = get(&c, &["ds", "agent"]);
    assert_eq!(
        ds["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}})
    );
    assert_eq!(
        ds["metadata"]["annotations"]["deprecated.daemonset.template.generation"],
        "1"
    );
    assert_eq!(get(&c, &["rs", "front"])["spec"]["replicas"], 0);

    // Table columns, wide columns and short names, as upstream's printers.
    let (h, r) = table(&c, &["deploy", "web"]);
    assert_eq!(h, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    assert_eq!(&r[..4], ["web", "0/0", "0", "0"]);
    let (h, r) = table(&c, &["deployments.apps", "web", "-o", "wide"]);
    assert_eq!(
        h,
        [
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    assert_eq!(&r[5..], ["main", "rkind/host", "app=web"]);
    let (h, r) = table(&c, &["rs", "front", "-o", "wide"]);
    assert_eq!(
        h,
        [
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    assert_eq!(&r[..4], ["front", "0", "0", "0"]);
    // The selector with its expression, as `labels.Selector.String()`.
    let wide = c.ok(&["get", "replicasets", "front", "-o", "wide"]);
    assert!(wide.contains("app=front,tier in (edge,fe)"), "{wide}");
    let (h, r) = table(&c, &["sts", "db", "-o", "wide"]);
    assert_eq!(h, ["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"]);
    assert_eq!(&r[..2], ["db", "0/0"]);
    let (h, r) = table(&c, &["ds", "agent"]);
    assert_eq!(
        h,
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
        ]
    );
    assert_eq!(
        &r[..7],
        ["agent", "0", "0", "0", "0", "0", "rkind.test/none=true"]
    );
    let (h, r) = table(&c, &["controllerrevisions", "db-1"]);
    assert_eq!(h, ["NAME", "CONTROLLER", "REVISION", "AGE"]);
    assert_eq!(&r[..3], ["db-1", "statefulset.apps/db", "1"]);

    // The `all` category holds the workloads, not the revisions.
    let all = c.ok(&["get", "all"]);
    for name in [
        "deployment.apps/web",
        "replicaset.apps/front",
        "statefulset.apps/db",
        "daemonset.apps/agent",
    ] {
        assert!(all.contains(name), "{all}");
    }
    assert!(!all.contains("controllerrevision"), "{all}");

    // kubectl describe reads each kind.
    let out = c.ok(&["describe", "deploy", "web"]);
    assert!(has_line(&out, "StrategyType: RollingUpdate"), "{out}");
    assert!(
        has_line(
            &out,
            "RollingUpdateStrategy: 25% max unavailable, 25% max surge"
        ),
        "{out}"
    );
    let out = c.ok(&["describe", "rs", "front"]);
    assert!(
        has_line(&out, "Selector: app=front,tier in (edge,fe)"),
        "{out}"
    );
    assert!(has_line(&out, "Replicas: 0 current / 0 desired"), "{out}");
    let out = c.ok(&["describe", "sts", "db"]);
    assert!(has_line(&out, "Update Strategy: RollingUpdate"), "{out}");
    let out = c.ok(&["describe", "ds", "agent"]);
    assert!(
        has_line(&out, "Node-Selector: rkind.test/none=true"),
        "{out}"
    );
    let out = c.ok(&["describe", "controllerrevision", "db-1"]);
    assert!(has_line(&out, "Revision: 1"), "{out}");

    // An old kubectl reads the same tables.
    for bin in ["kubectl.1.27", "kubectl.1.33"] {
        let out = c.kubectl_bin(bin, &["get", "deploy,rs,sts,ds"], None);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("deployment.apps/web"),
            "{bin}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    clean_up(&c);
}

/// A workload YAML with `spec` lines appended under the common selector and template.
fn workload(kind: &str, name: &str, extra: &str, labels: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: {kind}
metadata:
  name: {name}
spec:
{extra}  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        {labels}
    spec:
      containers:
      - name: main
        image: rkind/host
        command: [\"sleep\", \"3600\"]
"
    )
}

#[test]
fn invalid_apps_objects_are_refused_with_upstream_messages() {
    let c = Cluster::start("apps-invalid");
    let cases: Vec<(String, &str)> = vec![
        (
            workload("Deployment", "d1", "  replicas: 0\n", "app: other"),
            "The Deployment \"d1\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`",
        ),
        (
            workload(
                "Deployment",
                "d2",
                "  replicas: 0\n  strategy:\n    rollingUpdate:\n      maxSurge: 0\n      maxUnavailable: 0\n",
                "app: d2",
            ),
            "The Deployment \"d2\" is invalid: spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0",
        ),
        (
            workload(
                "Deployment",
                "d3",
                "  replicas: 0\n  strategy:\n    type: Recreate\n    rollingUpdate:\n      maxSurge: 1\n",
                "app: d3",
            ),
            "The Deployment \"d3\" is invalid: spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'",
        ),
        (
            workload("ReplicaSet", "r1", "  replicas: 0\n", "app: r1").replace(
                "      containers:",
                "      restartPolicy: OnFailure\n      containers:",
            ),
            "The ReplicaSet \"r1\" is invalid: spec.template.spec.restartPolicy: Unsupported value: \"OnFailure\": supported values: \"Always\"",
        ),
        (
            workload(
                "StatefulSet",
                "s1",
                "  replicas: 0\n  podManagementPolicy: Random\n",
                "app: s1",
            ),
            "The StatefulSet \"s1\" is invalid: spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'",
        ),
        (
            workload(
                "DaemonSet",
                "ds1",
                "  updateStrategy:\n    rollingUpdate:\n      maxUnavailable: 1\n      maxSurge: 1\n",
                "app: ds1",
            ),
            "The DaemonSet \"ds1\" is invalid: spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:0, IntVal:1, StrVal:\"\"}: may not be set when maxUnavailable is non-zero",
        ),
        (
            "apiVersion: apps/v1\nkind: ControllerRevision\nmetadata:\n  name: cr1\nrevision: 1\n"
                .to_string(),
            "The ControllerRevision \"cr1\" is invalid: data: Required value: data is mandatory",
        ),
    ];
    for (yaml, want) in &cases {
        let err = c.fails_stdin(&["create", "-f", "-"], yaml);
        assert!(err.contains(want), "want {want}\ngot {err}");
    }
    // The Status itself names the kind with its group, as upstream's NewInvalid.
    let path = format!("{APPS}/deployments");
    let body = serde_json::to_string(&json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "raw"}, "spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "rkind/host"}]}}}}))
    .expect("json");
    let f = write_file(c.dir.path(), "raw.json", &body);
    let err = c.fails(&["create", "--raw", &path, "-f", &f.display().to_string()]);
    // kubectl prints the Status's causes one per line.
    for want in [
        "The Deployment \"raw\" is invalid",
        "spec.selector: Required value",
        "spec.template.metadata.labels: Invalid value: map[string]string(nil): `selector` does not match template `labels`",
    ] {
        assert!(err.contains(want), "want {want}\ngot {err}");
    }

    // Updates: the selector is immutable; a StatefulSet's fixed fields too.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &workload("Deployment", "keep", "  replicas: 0\n", "app: keep"),
    );
    let err = c.fails(&[
        "patch",
        "deploy",
        "keep",
        "--type=merge",
        "-p",
        r#"{"spec":{"selector":{"matchLabels":{"app":"keep","x":"y"}},"template":{"metadata":{"labels":{"x":"y"}}}}}"#,
    ]);
    assert!(
        err.contains("The Deployment \"keep\" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"keep\", \"x\":\"y\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"),
        "{err}"
    );
    c.ok_stdin(
        &["apply", "-f", "-"],
        &workload(
            "StatefulSet",
            "fixed",
            "  replicas: 0\n  serviceName: a\n",
            "app: fixed",
        ),
    );
    let err = c.fails(&[
        "patch",
        "sts",
        "fixed",
        "--type=merge",
        "-p",
        r#"{"spec":{"serviceName":"b"}}"#,
    ]);
    assert!(
        err.contains("The StatefulSet \"fixed\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"),
        "{err}"
    );
    // A spec change moves the generation; an annotation change moves a Deployment's too.
    c.ok(&["annotate", "deploy", "keep", "a=b"]);
    assert_eq!(get(&c, &["deploy", "keep"])["metadata"]["generation"], 2);
    c.ok(&["annotate", "sts", "fixed", "a=b"]);
    assert_eq!(get(&c, &["sts", "fixed"])["metadata"]["generation"], 1);
    clean_up(&c);
}

#[test]
fn scale_subresources_of_deployments_replicasets_and_statefulsets() {
    let c = Cluster::start("apps-scale");
    c.ok(&["apply", "-f", &kinds_file()]);
    for (kind, resource) in [
        ("deploy", "deployments"),
        ("rs", "replicasets"),
        ("sts", "statefulsets"),
    ] {
        let name = match kind {
            "deploy" => "web",
            "rs" => "front",
            _ => "db",
        };
        let path = format!("{APPS}/{resource}/{name}/scale");
        let scale = json_of(&c.ok(&["get", "--raw", &path]));
        assert_eq!(scale["kind"], "Scale", "{scale}");
        assert_eq!(scale["apiVersion"], "autoscaling/v1");
        // ScaleSpec.replicas is omitempty upstream: zero replicas leave `spec` empty.
        assert_eq!(
            scale["spec"]["replicas"].as_i64().unwrap_or(0),
            0,
            "{scale}"
        );
        let sel = scale["status"]["selector"].as_str().unwrap_or("");
        assert!(sel.starts_with("app="), "{scale}");
        // PUT through the subresource.
        let mut up = scale.clone();
        up["spec"]["replicas"] = json!(2);
        let f = write_file(c.dir.path(), "scale.json", &up.to_string());
        let out = json_of(&c.ok(&["replace", "--raw", &path, "-f", &f.display().to_string()]));
        assert_eq!(out["spec"]["replicas"], 2, "{out}");
        assert_eq!(get(&c, &[kind, name])["spec"]["replicas"], 2);
        assert_eq!(get(&c, &[kind, name])["metadata"]["generation"], 2);
        // kubectl scale (new and old).
        let out = c.ok(&["scale", kind, name, "--replicas=0"]);
        assert!(out.contains(&format!("{name} scaled")), "{out}");
        let out = c.kubectl_bin("kubectl.1.27", &["scale", kind, name, "--replicas=0"], None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(get(&c, &[kind, name])["spec"]["replicas"], 0);
    }
    let scale = json_of(&c.ok(&["get", "--raw", &format!("{APPS}/replicasets/front/scale")]));
    assert_eq!(
        scale["status"]["selector"], "app=front,tier in (edge,fe)",
        "{scale}"
    );
    let err = c.fails(&["get", "--raw", &format!("{APPS}/deployments/nope/scale")]);
    assert!(
        err.contains("deployments/scale.apps \\\"nope\\\" not found")
            || err.contains("deployments/scale.apps \"nope\" not found")
            || err.contains("NotFound"),
        "{err}"
    );
    // DaemonSets have no scale subresource.
    let err = c.fails(&["scale", "ds", "agent", "--replicas=2"]);
    assert!(!err.is_empty());
    clean_up(&c);
}

/// The address and the admin TLS configuration of the cluster's API server.
fn endpoint(c: &Cluster) -> (SocketAddr, Arc<rustls::ClientConfig>) {
    rkind::install_crypto_provider();
    let st = rkind::cluster::state::ClusterState::load(&c.data_dir()).expect("state");
    let pki = rkind::pki::ClusterPki::load_or_create(
        &c.data_dir().join("pki"),
        &format!("{}-control-plane", c.name),
    )
    .expect("pki");
    let addr = format!("127.0.0.1:{}", st.api_port).parse().expect("addr");
    (addr, pki.client_tls(&pki.admin).expect("admin tls"))
}

/// GET `path` over HTTPS accepting `accept`; the status, Content-Type and body.
async fn raw_get(
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    path: &str,
    accept: &str,
) -> (StatusCode, String, Bytes) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::IpAddress(addr.ip().into());
    let tls = TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .expect("tls");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = Request::builder()
        .method(Method::GET)
        .uri(path)
        .header("host", addr.to_string())
        .header("accept", accept)
        .body(Full::new(Bytes::new()))
        .expect("request");
    let resp = tokio::time::timeout(Duration::from_secs(60), sender.send_request(req))
        .await
        .expect("answer within 60 s")
        .expect("response");
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = tokio::time::timeout(Duration::from_secs(60), resp.into_body().collect())
        .await
        .expect("body within 60 s")
        .expect("body")
        .to_bytes();
    (status, ct, body)
}

#[test]
fn every_apps_kind_reads_back_in_protobuf() {
    let c = Cluster::start("apps-protobuf");
    c.ok(&["apply", "-f", &kinds_file()]);
    c.ok_stdin(
        &["create", "-f", "-"],
        &json!({"apiVersion": "apps/v1", "kind": "ControllerRevision",
            "metadata": {"name": "rev"}, "data": {"a": [1, "x"]}, "revision": 7})
        .to_string(),
    );
    let (addr, tls) = endpoint(&c);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    for (resource, name, kind) in [
        ("deployments", "web", "Deployment"),
        ("replicasets", "front", "ReplicaSet"),
        ("statefulsets", "db", "StatefulSet"),
        ("daemonsets", "agent", "DaemonSet"),
        ("controllerrevisions", "rev", "ControllerRevision"),
    ] {
        let path = format!("{APPS}/{resource}/{name}");
        let (status, ct, body) = rt.block_on(raw_get(addr, tls.clone(), &path, PROTOBUF));
        assert_eq!(status, StatusCode::OK, "{path}: {body:?}");
        assert_eq!(ct, PROTOBUF, "{path}");
        assert!(body.starts_with(MAGIC), "{path}");
        let pb = decode_body(&body).expect("protobuf decodes");
        let (_, _, body) = rt.block_on(raw_get(addr, tls.clone(), &path, "application/json"));
        let js: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(pb["kind"], kind);
        assert_eq!(pb["apiVersion"], "apps/v1");
        // The same object either way (managedFields' times aside, which round to seconds).
        // Zero counts in status are omitempty in Go, so protobuf does not carry them while
        // the stored JSON may: compare without them.
        let strip = |mut v: Value| {
            if let Some(m) = v["metadata"].as_object_mut() {
                m.remove("managedFields");
            }
            if let Some(st) = v["status"].as_object_mut() {
                st.retain(|_, x| x.as_i64() != Some(0));
            }
            // Upstream's JSON names the claim templates' kind (its v1 conversion sets it);
            // their protobuf message has no place for it.
            for t in v["spec"]["volumeClaimTemplates"]
                .as_array_mut()
                .into_iter()
                .flatten()
            {
                if let Some(m) = t.as_object_mut() {
                    m.remove("apiVersion");
                    m.remove("kind");
                }
            }
            v
        };
        assert_eq!(strip(pb), strip(js), "{path}");
    }
    clean_up(&c);
}
