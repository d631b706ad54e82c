//! End-to-end tests of Kubernetes protobuf (`application/vnd.kubernetes.protobuf`) over
//! raw HTTPS with the cluster's admin certificate: GET, LIST (limit/continue), WATCH
//! (length-prefixed WatchEvent frames), CREATE with a protobuf body and answer, DELETE
//! with protobuf DeleteOptions, 406; and stock kubectl 1.27 / 1.33, whose typed commands
//! ask for protobuf, working against protobuf answers.
//!
//! Isolation levels: root only (no container behaviour is under test here).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rkind::apiserver::protobuf::{MAGIC, decode_body, encode_object};
use rustls_pki_types::ServerName;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use common::Cluster;

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
/// What client-go sends by default for typed clients.
const CLIENT_GO_ACCEPT: &str = "application/vnd.kubernetes.protobuf, */*";
const CM: &str = "/api/v1/namespaces/default/configmaps";
const PODS: &str = "/api/v1/namespaces/default/pods";

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

/// A raw HTTP/1.1-over-TLS client: each request on its own connection, any headers.
struct Raw {
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
}

/// One answer: status, Content-Type, whole body.
struct Answer {
    status: StatusCode,
    content_type: String,
    body: Bytes,
}

impl Answer {
    /// The body as JSON, decoding protobuf when the Content-Type says so.
    fn object(&self) -> Value {
        if self.content_type == PROTOBUF {
            assert!(self.body.starts_with(MAGIC), "protobuf body has the magic");
            decode_body(&self.body).expect("protobuf body decodes")
        } else {
            serde_json::from_slice(&self.body).unwrap_or(Value::Null)
        }
    }
}

impl Raw {
    async fn open(
        &self,
        method: Method,
        path: &str,
        accept: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> http::Response<Incoming> {
        let tcp = TcpStream::connect(self.addr).await.expect("connect");
        let name = ServerName::IpAddress(self.addr.ip().into());
        let tls = TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .expect("tls");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .expect("handshake");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string())
            .header("user-agent", "rkind-protobuf-test");
        if !accept.is_empty() {
            req = req.header("accept", accept);
        }
        let payload = match body {
            Some((ct, bytes)) => {
                req = req.header("content-type", ct);
                bytes
            }
            None => Vec::new(),
        };
        let req = req.body(Full::new(Bytes::from(payload))).expect("request");
        tokio::time::timeout(Duration::from_secs(60), sender.send_request(req))
            .await
            .expect("answer within 60 s")
            .expect("response")
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        accept: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Answer {
        let resp = self.open(method, path, accept, body).await;
        let status = resp.status();
        let content_type = resp
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
        Answer {
            status,
            content_type,
            body,
        }
    }
}

/// Splits complete length-prefixed frames off `buf`, decoding each `meta.v1.WatchEvent`
/// (bare, not enveloped) into `(type, object)`.
fn take_frames(buf: &mut Vec<u8>, out: &mut Vec<(String, Value)>) {
    loop {
        if buf.len() < 4 {
            return;
        }
        let len = u32::from_be_bytes(buf[..4].try_into().expect("4 bytes")) as usize;
        if buf.len() < 4 + len {
            return;
        }
        let frame: Vec<u8> = buf.drain(..4 + len).skip(4).collect();
        out.push(parse_watch_event(&frame));
    }
}

/// `WatchEvent {1 type, 2 RawExtension {1 raw}}`, read by hand so the test checks the
/// layout rather than trusting the server's own codec for it.
fn parse_watch_event(frame: &[u8]) -> (String, Value) {
    fn fields(mut b: &[u8]) -> Vec<(u64, &[u8])> {
        let mut out = Vec::new();
        let varint = |b: &mut &[u8]| {
            let mut v = 0u64;
            for i in 0..10 {
                let byte = b[0];
                *b = &b[1..];
                v |= u64::from(byte & 0x7f) << (7 * i);
                if byte & 0x80 == 0 {
                    break;
                }
            }
            v
        };
        while !b.is_empty() {
            let key = varint(&mut b);
            assert_eq!(key & 7, 2, "WatchEvent fields are length-delimited");
            let len = varint(&mut b) as usize;
            out.push((key >> 3, &b[..len]));
            b = &b[len..];
        }
        out
    }
    assert!(!frame.starts_with(MAGIC), "watch frames carry no envelope");
    let mut event_type = String::new();
    let mut object = Value::Null;
    for (num, value) in fields(frame) {
        match num {
            1 => event_type = String::from_utf8(value.to_vec()).expect("type"),
            2 => {
                let (n, raw) = fields(value)[0];
                assert_eq!(n, 1, "RawExtension.raw");
                object = decode_body(raw).expect("embedded object is an envelope");
            }
            _ => {}
        }
    }
    (event_type, object)
}

fn configmap(name: &str, value: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": "default", "labels": {"suite": "pb"}},
           "data": {"k": value}})
}

#[test]
fn protobuf_get_list_watch_create_delete_and_406_over_https() {
    let c = Cluster::start("protobuf");
    let (addr, tls) = endpoint(&c);
    let raw = Raw { addr, tls };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        // CREATE with a protobuf body, protobuf answer.
        let body = encode_object(&configmap("pb-0", "v0")).expect("encode");
        let a = raw
            .call(Method::POST, CM, PROTOBUF, Some((PROTOBUF, body)))
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
        assert_eq!(a.content_type, PROTOBUF);
        let created = a.object();
        assert_eq!(created["kind"], "ConfigMap");
        assert_eq!(created["apiVersion"], "v1");
        assert_eq!(created["data"]["k"], "v0");
        assert!(created["metadata"]["uid"].is_string());
        assert!(created["metadata"]["creationTimestamp"].is_string());

        // GET in protobuf when preferred, JSON when asked for JSON.
        let a = raw
            .call(Method::GET, &format!("{CM}/pb-0"), CLIENT_GO_ACCEPT, None)
            .await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.content_type, PROTOBUF);
        assert_eq!(a.object()["metadata"]["uid"], created["metadata"]["uid"]);
        let a = raw
            .call(Method::GET, &format!("{CM}/pb-0"), "application/json", None)
            .await;
        assert_eq!(a.content_type, "application/json");
        assert_eq!(a.object()["data"]["k"], "v0");

        // WATCH from the current version, in protobuf frames.
        let rv = created["metadata"]["resourceVersion"]
            .as_str()
            .expect("rv")
            .to_string();
        let resp = raw
            .open(
                Method::GET,
                &format!(
                    "{CM}?watch=true&resourceVersion={rv}&allowWatchBookmarks=true&labelSelector=suite%3Dpb"
                ),
                PROTOBUF,
                None,
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers()["content-type"],
            "application/vnd.kubernetes.protobuf;stream=watch"
        );
        let mut stream = resp.into_body();

        for i in 1..=4 {
            let body = encode_object(&configmap(&format!("pb-{i}"), "v")).expect("encode");
            let a = raw
                .call(Method::POST, CM, PROTOBUF, Some((PROTOBUF, body)))
                .await;
            assert_eq!(a.status, StatusCode::CREATED);
        }
        let put = {
            let mut cm = created.clone();
            cm["data"]["k"] = json!("v0-changed");
            encode_object(&cm).expect("encode")
        };
        let a = raw
            .call(Method::PUT, &format!("{CM}/pb-0"), PROTOBUF, Some((PROTOBUF, put)))
            .await;
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.object());
        assert_eq!(a.object()["data"]["k"], "v0-changed");

        // DELETE with protobuf DeleteOptions (a ConfigMap has no grace: gone at once).
        let options = encode_object(&json!({"kind": "DeleteOptions", "apiVersion": "v1",
                                            "propagationPolicy": "Background"}))
        .expect("encode");
        let a = raw
            .call(
                Method::DELETE,
                &format!("{CM}/pb-1"),
                PROTOBUF,
                Some((PROTOBUF, options)),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.object());

        // The watch saw all of it; bookmarks may come between.
        let mut buf = Vec::new();
        let mut events: Vec<(String, Value)> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(90);
        let want = |events: &[(String, Value)]| {
            let has = |t: &str, name: &str| {
                events
                    .iter()
                    .any(|(et, o)| et == t && o["metadata"]["name"] == name)
            };
            (1..=4).all(|i| has("ADDED", &format!("pb-{i}")))
                && has("MODIFIED", "pb-0")
                && has("DELETED", "pb-1")
        };
        while !want(&events) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "watch events so far: {events:?}");
            match tokio::time::timeout(left, stream.frame()).await {
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        buf.extend_from_slice(&data);
                        take_frames(&mut buf, &mut events);
                    }
                }
                other => panic!("watch ended early ({:?}); events: {events:?}", other.is_ok()),
            }
        }
        let modified = events
            .iter()
            .find(|(t, _)| t == "MODIFIED")
            .map(|(_, o)| o)
            .expect("modified");
        assert_eq!(modified["kind"], "ConfigMap");
        assert_eq!(modified["data"]["k"], "v0-changed");
        drop(stream);

        // A watch that starts with the initial state sends a BOOKMARK after it.
        let resp = raw
            .open(
                Method::GET,
                &format!(
                    "{CM}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&labelSelector=suite%3Dpb"
                ),
                CLIENT_GO_ACCEPT,
                None,
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let mut stream = resp.into_body();
        let mut buf = Vec::new();
        let mut events: Vec<(String, Value)> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(90);
        while !events.iter().any(|(t, _)| t == "BOOKMARK") {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no BOOKMARK; events: {events:?}");
            match tokio::time::timeout(left, stream.frame()).await {
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        buf.extend_from_slice(&data);
                        take_frames(&mut buf, &mut events);
                    }
                }
                other => panic!("watch ended early ({:?}); events: {events:?}", other.is_ok()),
            }
        }
        let bookmark = &events.iter().find(|(t, _)| t == "BOOKMARK").expect("bookmark").1;
        assert_eq!(bookmark["kind"], "ConfigMap");
        assert!(bookmark["metadata"]["resourceVersion"].is_string());
        let added = events.iter().filter(|(t, _)| t == "ADDED").count();
        assert_eq!(added, 4, "pb-0, pb-2, pb-3, pb-4 before the bookmark");
        drop(stream);

        // LIST with limit/continue, in protobuf.
        let mut names = Vec::new();
        let mut path = format!("{CM}?labelSelector=suite%3Dpb&limit=2");
        loop {
            let a = raw.call(Method::GET, &path, CLIENT_GO_ACCEPT, None).await;
            assert_eq!(a.status, StatusCode::OK);
            assert_eq!(a.content_type, PROTOBUF);
            let list = a.object();
            assert_eq!(list["kind"], "ConfigMapList");
            let items = list["items"].as_array().expect("items");
            assert!(items.len() <= 2);
            names.extend(items.iter().map(|i| i["metadata"]["name"].as_str().unwrap_or("").to_string()));
            match list["metadata"]["continue"].as_str() {
                Some(token) if !token.is_empty() => {
                    assert!(list["metadata"]["remainingItemCount"].as_i64().unwrap_or(0) > 0);
                    path = format!("{CM}?labelSelector=suite%3Dpb&limit=2&continue={token}");
                }
                _ => break,
            }
        }
        assert_eq!(names, ["pb-0", "pb-2", "pb-3", "pb-4"]);

        // Errors stay Status objects the client can read.
        let a = raw
            .call(Method::GET, &format!("{CM}/absent"), CLIENT_GO_ACCEPT, None)
            .await;
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        assert_eq!(a.object()["reason"], "NotFound");

        // 406 when nothing acceptable is served, and the request had no effect.
        let body = serde_json::to_vec(&configmap("pb-406", "x")).expect("json");
        let a = raw
            .call(Method::POST, CM, "text/html", Some(("application/json", body)))
            .await;
        assert_eq!(a.status, StatusCode::NOT_ACCEPTABLE);
        let status = a.object();
        assert_eq!(status["reason"], "NotAcceptable");
        assert_eq!(status["code"], 406);
        assert_eq!(
            status["message"],
            "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf"
        );
        let a = raw
            .call(Method::GET, &format!("{CM}/pb-406"), "application/json", None)
            .await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "the refused create did nothing");
        // Table requests stay JSON even when protobuf is also acceptable.
        let a = raw
            .call(
                Method::GET,
                CM,
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/vnd.kubernetes.protobuf",
                None,
            )
            .await;
        assert_eq!(a.content_type, "application/json");
        assert_eq!(a.object()["kind"], "Table");

        // A pod: protobuf DeleteOptions' gracePeriodSeconds is honoured.
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"name": "pb-pod", "namespace": "default"},
                         "spec": {"containers": [{"name": "main", "image": "rkind/host",
                                                  "command": ["sleep", "3600"]}]}});
        let a = raw
            .call(
                Method::POST,
                PODS,
                PROTOBUF,
                Some((PROTOBUF, encode_object(&pod).expect("encode"))),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.object());
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let a = raw
                .call(Method::GET, &format!("{PODS}/pb-pod"), PROTOBUF, None)
                .await;
            if a.object()["spec"]["nodeName"].is_string() {
                break;
            }
            assert!(Instant::now() < deadline, "pod never scheduled");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let options = json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 7});
        let a = raw
            .call(
                Method::DELETE,
                &format!("{PODS}/pb-pod"),
                PROTOBUF,
                Some((PROTOBUF, encode_object(&options).expect("encode"))),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.object());
        assert_eq!(a.content_type, PROTOBUF);
        assert_eq!(a.object()["metadata"]["deletionGracePeriodSeconds"], 7);
        let options = json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0});
        let a = raw
            .call(
                Method::DELETE,
                &format!("{PODS}/pb-pod"),
                PROTOBUF,
                Some((PROTOBUF, encode_object(&options).expect("encode"))),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.object());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let a = raw
                .call(Method::GET, &format!("{PODS}/pb-pod"), PROTOBUF, None)
                .await;
            if a.status == StatusCode::NOT_FOUND {
                break;
            }
            assert!(Instant::now() < deadline, "gracePeriodSeconds=0 did not delete at once");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

#[test]
fn kubectl_typed_commands_work_against_protobuf_answers() {
    let c = Cluster::start("pbkubectl");
    c.ok(&[
        "run",
        "pbdesc",
        "--image=rkind/host",
        "--restart=Never",
        "--",
        "sleep",
        "3600",
    ]);
    for bin in ["kubectl.1.27", "kubectl.1.33"] {
        let ns = format!("pb-{}", bin.replace('.', "-"));
        let out = c.kubectl_bin(bin, &["create", "namespace", &ns], None);
        assert!(
            out.status.success(),
            "{bin} create namespace: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("namespace/{ns} created")
        );
        let out = c.kubectl_bin(bin, &["describe", "pod", "pbdesc"], None);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{bin} describe: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("Name:") && text.contains("pbdesc"), "{text}");
        assert!(
            text.contains("Image:") && text.contains("rkind/host"),
            "{text}"
        );
        let out = c.kubectl_bin(bin, &["describe", "namespace", &ns], None);
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Active"),
            "{bin} describe namespace: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = c.kubectl_bin(
            bin,
            &[
                "create",
                "configmap",
                &format!("{ns}-cm"),
                "--from-literal=a=b",
            ],
            None,
        );
        assert!(out.status.success(), "{bin} create configmap");
        let out = c.kubectl_bin(bin, &["delete", "configmap", &format!("{ns}-cm")], None);
        assert!(
            out.status.success(),
            "{bin} delete configmap: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // kubectl's typed commands really were answered in protobuf: the server counts
    // nothing, so ask it the way they do.
    let (addr, tls) = endpoint(&c);
    let raw = Raw { addr, tls };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let a = raw
            .call(
                Method::GET,
                "/api/v1/namespaces/pb-kubectl-1-33",
                "application/vnd.kubernetes.protobuf,application/json",
                None,
            )
            .await;
        assert_eq!(a.content_type, PROTOBUF);
        assert_eq!(a.object()["status"]["phase"], "Active");
    });
}
