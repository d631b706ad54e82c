//! End-to-end tests of the cluster foundation, driven with stock kubectl exactly as a
//! user would: discovery, CRUD, apply (client- and server-side), patch, watch, wait,
//! selectors, protobuf bodies, errors, authentication and durability.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Cluster, write_file};

const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web
  labels:
    app: web
spec:
  containers:
  - name: web
    image: rkind/host
    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 0.2; done\"]
";

#[test]
fn version_discovery_and_node() {
    let c = Cluster::start("disc");
    let v = c.ok(&["version"]);
    assert!(v.contains("Server Version: v1.32"), "{v}");
    let info = c.ok(&["cluster-info"]);
    assert!(
        info.contains("Kubernetes control plane is running at https://127.0.0.1:"),
        "{info}"
    );
    let res = c.ok(&["api-resources"]);
    for want in [
        "pods",
        "po",
        "namespaces",
        "nodes",
        "configmaps",
        "leases",
        "events.k8s.io/v1",
    ] {
        assert!(
            res.contains(want),
            "{want} missing from api-resources:\n{res}"
        );
    }
    let nodes = c.ok(&["get", "nodes"]);
    assert!(nodes.contains("disc-control-plane"), "{nodes}");
    assert!(nodes.contains("Ready"), "{nodes}");
    assert!(nodes.contains("control-plane"), "{nodes}");
    let wide = c.ok(&["get", "nodes", "-o", "wide"]);
    assert!(
        wide.contains("127.0.0.1") && wide.contains("rkind://"),
        "{wide}"
    );
    // Node Ready condition through kubectl wait, and a lease in kube-node-lease.
    c.ok(&[
        "wait",
        "--for=condition=Ready",
        "node/disc-control-plane",
        "--timeout=20s",
    ]);
    let lease = c.ok(&[
        "-n",
        "kube-node-lease",
        "get",
        "lease",
        "disc-control-plane",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    assert_eq!(lease, "disc-control-plane");
    // The kubernetes service exists (cluster-info needs it) and default SAs exist.
    c.ok(&["get", "svc", "kubernetes"]);
    c.eventually(10, "default service account", || {
        c.kubectl(&["get", "sa", "default"]).status.success()
    });
    let explain = c.ok(&["explain", "pod.spec.containers"]);
    assert!(explain.contains("image"), "{explain}");
    let all = c.ok(&["get", "all"]);
    assert!(all.contains("service/kubernetes"), "{all}");
}

#[test]
fn create_apply_patch_replace_delete() {
    let c = Cluster::start("crud");
    let pod = write_file(c.dir.path(), "pod.yaml", POD);
    let pod = pod.to_str().unwrap();
    // Typed create commands send protobuf bodies.
    assert!(
        c.ok(&["create", "ns", "dev"])
            .contains("namespace/dev created")
    );
    assert!(
        c.ok(&["-n", "dev", "apply", "-f", pod])
            .contains("pod/web created")
    );
    assert!(
        c.ok(&["-n", "dev", "apply", "-f", pod])
            .contains("pod/web unchanged")
    );
    let changed = POD.replace("app: web", "app: web\n    tier: front");
    let pod2 = write_file(c.dir.path(), "pod2.yaml", &changed);
    assert!(
        c.ok(&["-n", "dev", "apply", "-f", pod2.to_str().unwrap()])
            .contains("pod/web configured")
    );
    let labels = c.ok(&[
        "-n",
        "dev",
        "get",
        "pod",
        "web",
        "-o",
        "jsonpath={.metadata.labels.tier}",
    ]);
    assert_eq!(labels, "front");
    // Back to the first manifest: the label disappears again (SMP null).
    c.ok(&["-n", "dev", "apply", "-f", pod]);
    let labels = c.ok(&[
        "-n",
        "dev",
        "get",
        "pod",
        "web",
        "-o",
        "jsonpath={.metadata.labels}",
    ]);
    assert!(!labels.contains("tier"), "{labels}");
    // Server-side apply, on an existing and a new object.
    assert!(
        c.ok(&["-n", "dev", "apply", "--server-side", "-f", pod])
            .contains("serverside-applied")
    );
    let ssa_new = POD.replace("name: web\n", "name: ssa\n");
    let f = write_file(c.dir.path(), "ssa.yaml", &ssa_new);
    assert!(
        c.ok(&[
            "-n",
            "dev",
            "apply",
            "--server-side",
            "-f",
            f.to_str().unwrap()
        ])
        .contains("pod/ssa serverside-applied")
    );
    // The three patch types.
    c.ok(&[
        "-n",
        "dev",
        "patch",
        "pod",
        "web",
        "-p",
        r#"{"metadata":{"labels":{"p":"smp"}}}"#,
    ]);
    c.ok(&[
        "-n",
        "dev",
        "patch",
        "pod",
        "web",
        "--type=merge",
        "-p",
        r#"{"metadata":{"annotations":{"a":"merge"}}}"#,
    ]);
    c.ok(&[
        "-n",
        "dev",
        "patch",
        "pod",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/metadata/labels/j","value":"json"}]"#,
    ]);
    let got = c.ok(&[
        "-n",
        "dev",
        "get",
        "pod",
        "web",
        "-o",
        "jsonpath={.metadata.labels.p},{.metadata.annotations.a},{.metadata.labels.j}",
    ]);
    assert_eq!(got, "smp,merge,json");
    // Edit by replace.
    let yaml = c.ok(&["-n", "dev", "get", "pod", "web", "-o", "yaml"]);
    let replaced = yaml.replace("p: smp", "p: replaced");
    assert!(
        c.ok_stdin(&["-n", "dev", "replace", "-f", "-"], &replaced)
            .contains("pod/web replaced")
    );
    assert_eq!(
        c.ok(&[
            "-n",
            "dev",
            "get",
            "pod",
            "web",
            "-o",
            "jsonpath={.metadata.labels.p}"
        ]),
        "replaced"
    );
    // Scheduled onto the node by the scheduler.
    c.eventually(10, "pod bound", || {
        c.ok(&[
            "-n",
            "dev",
            "get",
            "pod",
            "web",
            "-o",
            "jsonpath={.spec.nodeName}",
        ]) == "crud-control-plane"
    });
    let describe = c.ok(&["-n", "dev", "describe", "pod", "web"]);
    assert!(describe.contains("Scheduled"), "{describe}");
    // configmap / secret via protobuf.
    c.ok(&[
        "-n",
        "dev",
        "create",
        "configmap",
        "cfg",
        "--from-literal=k=v",
    ]);
    assert_eq!(
        c.ok(&["-n", "dev", "get", "cm", "cfg", "-o", "jsonpath={.data.k}"]),
        "v"
    );
    c.ok(&[
        "-n",
        "dev",
        "create",
        "secret",
        "generic",
        "sec",
        "--from-literal=user=admin",
    ]);
    assert_eq!(
        c.ok(&[
            "-n",
            "dev",
            "get",
            "secret",
            "sec",
            "-o",
            "jsonpath={.data.user}"
        ]),
        "YWRtaW4="
    );
    // Delete waits for the kubelet to finish the graceful deletion.
    assert!(
        c.ok(&["-n", "dev", "delete", "pod", "web", "--timeout=30s"])
            .contains("deleted")
    );
    assert!(
        c.fails(&["-n", "dev", "get", "pod", "web"])
            .contains("NotFound")
    );
    // Namespace deletion removes what it holds.
    c.ok(&["delete", "ns", "dev", "--timeout=30s"]);
    assert!(c.fails(&["get", "ns", "dev"]).contains("NotFound"));
}

#[test]
fn bad_input_gets_upstream_errors_and_changes_nothing() {
    let c = Cluster::start("errs");
    let bad = POD.replace("name: web\n", "name: Bad_Name\n");
    let f = write_file(c.dir.path(), "bad.yaml", &bad);
    let err = c.fails(&["apply", "-f", f.to_str().unwrap()]);
    assert!(
        err.contains("is invalid") && err.contains("metadata.name"),
        "{err}"
    );
    let unknown = POD.replace("  containers:", "  foo: bar\n  containers:");
    let f = write_file(c.dir.path(), "unknown.yaml", &unknown);
    let err = c.fails(&["create", "--validate=strict", "-f", f.to_str().unwrap()]);
    assert!(err.contains("unknown field \"spec.foo\""), "{err}");
    let err = c.fails(&["-n", "nope", "run", "x", "--image=rkind/host"]);
    assert!(err.contains("namespaces \"nope\" not found"), "{err}");
    // A stale resourceVersion on replace is a Conflict and does not change the object.
    c.ok(&["create", "configmap", "cm1", "--from-literal=a=1"]);
    let old = c.ok(&["get", "cm", "cm1", "-o", "json"]);
    c.ok(&[
        "patch",
        "cm",
        "cm1",
        "--type=merge",
        "-p",
        r#"{"data":{"a":"2"}}"#,
    ]);
    let stale = old.replace("\"a\": \"1\"", "\"a\": \"3\"");
    let out = c.kubectl_bin("kubectl", &["replace", "-f", "-"], Some(&stale));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Conflict") && err.contains("the object has been modified"),
        "{err}"
    );
    assert_eq!(c.ok(&["get", "cm", "cm1", "-o", "jsonpath={.data.a}"]), "2");
    // AlreadyExists.
    let err = c.fails(&["create", "configmap", "cm1"]);
    assert!(err.contains("configmaps \"cm1\" already exists"), "{err}");
    c.ok(&["run", "dup", "--image=rkind/host", "--", "sleep", "60"]);
    let err = c.fails(&["run", "dup", "--image=rkind/host"]);
    assert!(err.contains("AlreadyExists"), "{err}");
    // Unsupported field selector.
    let err = c.fails(&["get", "pods", "--field-selector", "spec.foo=bar"]);
    assert!(err.contains("field label not supported: spec.foo"), "{err}");
}

#[test]
fn anonymous_requests_get_401() {
    let c = Cluster::start("anon");
    rkind::install_crypto_provider();
    let st = rkind::cluster::state::ClusterState::load(&c.data_dir()).unwrap();
    let pki =
        rkind::pki::ClusterPki::load_or_create(&c.data_dir().join("pki"), "anon-control-plane")
            .unwrap();
    let cfg = rustls::ClientConfig::builder()
        .with_root_certificates(pki.roots().unwrap())
        .with_no_client_auth();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", st.api_port).parse().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let anon = rkind::client::ApiClient::new(addr, std::sync::Arc::new(cfg));
        let err = anon.get("/api/v1/namespaces").await.unwrap_err();
        assert_eq!(err.code(), 401, "{err}");
        // The admin certificate is accepted.
        let admin = rkind::client::ApiClient::new(addr, pki.client_tls(&pki.admin).unwrap());
        let ns = admin.get("/api/v1/namespaces").await.unwrap();
        assert_eq!(ns["kind"], "NamespaceList");
        // A body over 3 MiB is refused with 413 and stores nothing.
        let big = serde_json::json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"x":"a".repeat(4 * 1024 * 1024)}});
        let err = admin.post("/api/v1/namespaces/default/configmaps", &big).await.unwrap_err();
        assert_eq!(err.code(), 413, "{err}");
        assert_eq!(admin.get("/api/v1/namespaces/default/configmaps/big").await.unwrap_err().code(), 404);
    });
}

#[test]
fn watch_wait_and_selectors() {
    let c = Cluster::start("watch");
    let mut envs = c.envs();
    envs.push(("PATH".into(), std::env::var("PATH").unwrap_or_default()));
    let mut watcher = Command::new("kubectl")
        .args(["get", "pods", "-w", "--request-timeout=0"])
        .envs(envs)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    for (name, tier) in [("a", "front"), ("b", "back"), ("c", "front")] {
        c.ok(&[
            "run",
            name,
            "--image=rkind/host",
            &format!("--labels=tier={tier}"),
            "--",
            "sleep",
            "3600",
        ]);
    }
    c.eventually(10, "pods bound", || {
        c.ok(&[
            "get",
            "pods",
            "--field-selector",
            "spec.nodeName=watch-control-plane",
            "-o",
            "name",
        ])
        .lines()
        .count()
            == 3
    });
    let front = c.ok(&["get", "pods", "-l", "tier=front", "-o", "name"]);
    assert_eq!(front.trim(), "pod/a\npod/c");
    let notin = c.ok(&["get", "pods", "-l", "tier notin (front)", "-o", "name"]);
    assert_eq!(notin.trim(), "pod/b");
    let chunked = c.ok(&["get", "pods", "--chunk-size=1", "-o", "name"]);
    assert_eq!(chunked.trim(), "pod/a\npod/b\npod/c");
    // wait --for=delete returns when the pod is gone.
    let mut envs = c.envs();
    envs.push(("PATH".into(), std::env::var("PATH").unwrap_or_default()));
    let waiter = Command::new("kubectl")
        .args(["wait", "--for=delete", "pod/a", "--timeout=30s"])
        .envs(envs)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    c.ok(&["delete", "pod", "a", "--wait=false", "--grace-period=1"]);
    let out = waiter.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("condition met"));
    std::thread::sleep(Duration::from_millis(500));
    let _ = watcher.kill();
    let mut text = String::new();
    watcher
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let _ = watcher.wait();
    for name in ["a ", "b ", "c "] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "watch missed {name}:\n{text}"
        );
    }
}

#[test]
fn objects_survive_restart_and_kill9() {
    let mut c = Cluster::start("durable");
    c.ok(&[
        "create",
        "configmap",
        "before-restart",
        "--from-literal=k=v",
    ]);
    c.stop();
    c.boot();
    assert_eq!(
        c.ok(&["get", "cm", "before-restart", "-o", "jsonpath={.data.k}"]),
        "v"
    );
    c.ok(&["create", "configmap", "before-kill", "--from-literal=k=w"]);
    c.kill9();
    c.boot();
    assert_eq!(
        c.ok(&["get", "cm", "before-kill", "-o", "jsonpath={.data.k}"]),
        "w"
    );
    let rv1: u64 = c
        .ok(&[
            "get",
            "cm",
            "before-kill",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
        .parse()
        .unwrap();
    c.ok(&["create", "configmap", "after", "--from-literal=k=x"]);
    let rv2: u64 = c
        .ok(&[
            "get",
            "cm",
            "after",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
        .parse()
        .unwrap();
    assert!(
        rv2 > rv1,
        "resourceVersion must keep increasing across restarts"
    );
}

#[test]
fn old_and_new_kubectl_clients() {
    let c = Cluster::start("clients");
    let pod = write_file(c.dir.path(), "pod.yaml", POD);
    for bin in ["kubectl.1.27", "kubectl.1.30", "kubectl.1.33"] {
        let out = c.kubectl_bin(bin, &["apply", "-f", pod.to_str().unwrap()], None);
        assert!(
            out.status.success(),
            "{bin}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = c.kubectl_bin(bin, &["get", "pods"], None);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("web"),
            "{bin}: {text}"
        );
        let out = c.kubectl_bin(
            bin,
            &[
                "create",
                "namespace",
                &format!("ns-{}", &bin[8..].replace('.', "-")),
            ],
            None,
        );
        assert!(
            out.status.success(),
            "{bin}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
