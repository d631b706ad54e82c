//! Protobuf benchmark (not a test): encoding and decoding a list of 1,000 realistic pods
//! in-process (what the API server does per LIST), against JSON; then a LIST of 1,000
//! pods over HTTPS from a release `rkind up`, in JSON and in protobuf. Prints medians
//! (ms), sizes and the JSON/protobuf ratios. Target: a protobuf LIST of 1,000 pods under
//! 20 ms. Run with `cargo bench --bench protobuf` (release build).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rkind::apiserver::protobuf::{decode_body, encode_object};
use serde_json::{Value, json};

mod common;
use common::{api_addr, median, pki_for, start, stop};

const PODS: usize = 1000;
const ROUNDS: usize = 21;

/// A defaulted pod as the API server stores it (status, probes, volumes, managedFields).
/// `spec.nodeName` names a node that does not exist, so no kubelet runs it.
fn pod(i: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("bench-{i:04}"), "namespace": "default",
            "labels": {"app": "bench", "pod-template-hash": "5d8f9c"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2025-01-02T03:00:00Z"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "bench-5d8f9c",
                                 "uid": "0f0e0d0c-0000-4000-8000-000000000001", "controller": true,
                                 "blockOwnerDeletion": true}]
        },
        "spec": {
            "nodeName": "bench-nowhere",
            "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "1Gi"}},
                        {"name": "cfg", "configMap": {"name": "bench", "defaultMode": 420}}],
            "containers": [{
                "name": "app", "image": "rkind/host", "command": ["sleep", "3600"],
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                "env": [{"name": "MODE", "value": "bench"},
                        {"name": "POD", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
                "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m", "memory": "64Mi"}},
                "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "cfg", "mountPath": "/etc/cfg", "readOnly": true}],
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
                                  "initialDelaySeconds": 3, "timeoutSeconds": 1, "periodSeconds": 10,
                                  "successThreshold": 1, "failureThreshold": 3},
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent"
            }],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default", "securityContext": {}, "schedulerName": "default-scheduler",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                             "tolerationSeconds": 300}],
            "priority": 0, "enableServiceLinks": true, "preemptionPolicy": "PreemptLowerPriority"
        }
    })
}

/// The same pod as the server holds it (uid, version, times, status), for in-process runs.
fn stored_pod(i: usize) -> Value {
    let mut p = pod(i);
    p["metadata"]["uid"] = json!(format!("6b1c4f7e-0000-4000-8000-{i:012}"));
    p["metadata"]["resourceVersion"] = json!(format!("{}", 1000 + i));
    p["metadata"]["creationTimestamp"] = json!("2025-01-02T03:04:05Z");
    p["metadata"]["managedFields"] = json!([{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
        "time": "2025-01-02T03:04:05Z", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {}}}}]);
    p["status"] = json!({"phase": "Running",
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2025-01-02T03:04:09Z"}],
        "hostIP": "172.18.0.2", "podIP": "10.244.0.7", "podIPs": [{"ip": "10.244.0.7"}],
        "startTime": "2025-01-02T03:04:05Z",
        "containerStatuses": [{"name": "app", "state": {"running": {"startedAt": "2025-01-02T03:04:07Z"}},
            "lastState": {}, "ready": true, "restartCount": 0, "image": "rkind/host",
            "imageID": "sha256:0123abcd", "containerID": "rkind://abc123", "started": true}],
        "qosClass": "Burstable"});
    p
}

fn time_ms(mut f: impl FnMut()) -> f64 {
    let mut v = Vec::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        f();
        v.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    median(v)
}

fn main() {
    rkind::install_crypto_provider();
    println!("rkind protobuf benchmark ({PODS} pods; medians of {ROUNDS} runs)");

    let items: Vec<Value> = (0..PODS)
        .map(|i| {
            let mut p = stored_pod(i);
            let m = p.as_object_mut().expect("object");
            m.remove("kind");
            m.remove("apiVersion");
            p
        })
        .collect();
    let list = json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "2000"}, "items": items});
    // Warm the schema (built once per process).
    let pb = encode_object(&list).expect("encode");
    let js = serde_json::to_vec(&list).expect("json");
    let enc_pb = time_ms(|| {
        std::hint::black_box(encode_object(&list).expect("encode"));
    });
    let enc_js = time_ms(|| {
        std::hint::black_box(serde_json::to_vec(&list).expect("json"));
    });
    let dec_pb = time_ms(|| {
        std::hint::black_box(decode_body(&pb).expect("decode"));
    });
    let dec_js = time_ms(|| {
        std::hint::black_box(serde_json::from_slice::<Value>(&js).expect("json"));
    });
    println!(
        "in-process PodList encode: protobuf {enc_pb:.2} ms, JSON {enc_js:.2} ms (JSON/protobuf {:.2}x)",
        enc_js / enc_pb
    );
    println!(
        "in-process PodList decode: protobuf {dec_pb:.2} ms, JSON {dec_js:.2} ms (JSON/protobuf {:.2}x)",
        dec_js / dec_pb
    );
    println!(
        "size: protobuf {} KiB, JSON {} KiB (JSON/protobuf {:.2}x)",
        pb.len() / 1024,
        js.len() / 1024,
        js.len() as f64 / pb.len() as f64
    );

    // End to end: LIST of 1,000 pods over HTTPS.
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, _) = start(dir.path());
    let data = dir.path().join("data");
    let pki = pki_for(&data);
    let addr: SocketAddr = api_addr(&data);
    let tls = pki.client_tls(&pki.admin).expect("tls");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let api = rkind::client::ApiClient::new(addr, tls.clone());
        for i in 0..PODS {
            api.post("/api/v1/namespaces/default/pods", &pod(i))
                .await
                .expect("create pod");
        }
        let path = "/api/v1/namespaces/default/pods";
        let mut json_ms = Vec::new();
        let mut pb_ms = Vec::new();
        let (mut json_len, mut pb_len) = (0, 0);
        for _ in 0..ROUNDS {
            let t = Instant::now();
            json_len = list_over_https(addr, &tls, path, "application/json").await;
            json_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            let t = Instant::now();
            pb_len = list_over_https(addr, &tls, path, "application/vnd.kubernetes.protobuf").await;
            pb_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let (j, p) = (median(json_ms), median(pb_ms));
        println!(
            "HTTPS LIST of {PODS} pods: protobuf {p:.1} ms ({} KiB), JSON {j:.1} ms ({} KiB) (JSON/protobuf {:.2}x; target protobuf < 20 ms)",
            pb_len / 1024,
            json_len / 1024,
            j / p
        );
    });
    stop(child);
}

/// One LIST on a fresh HTTP/1.1 connection (TLS handshake included); returns the size.
async fn list_over_https(
    addr: SocketAddr,
    tls: &Arc<rustls::ClientConfig>,
    path: &str,
    accept: &str,
) -> usize {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
    let stream = tokio_rustls::TlsConnector::from(tls.clone())
        .connect(name, tcp)
        .await
        .expect("tls");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
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
    let resp = sender.send_request(req).await.expect("response");
    assert!(resp.status().is_success());
    let ct = resp.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .to_string();
    assert!(accept.starts_with(&ct), "answered {ct} for {accept}");
    resp.into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .len()
}
