//! Connection hardening and streaming clients other than kubectl, through the real
//! listeners: raw TCP and TLS sockets held idle, unfinished handshakes, oversized request
//! heads over HTTP/1.1 and HTTP/2, WebSocket exec with text-frame stdin (the python
//! client), port-forward over the WebSocket channel protocol, malformed and stalled
//! WebSocket sessions, and kubectl 1.33's WebSocket exec with a clean stderr.

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Cluster, kubectl_dir};
use futures_util::{SinkExt, StreamExt};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

/// The API server's address and the cluster's client TLS settings.
struct Api {
    addr: SocketAddr,
    admin: Arc<rustls::ClientConfig>,
    anonymous: Arc<rustls::ClientConfig>,
}

fn api(c: &Cluster) -> Api {
    rkind::install_crypto_provider();
    let st = rkind::cluster::state::ClusterState::load(&c.data_dir()).expect("cluster state");
    let pki = rkind::pki::ClusterPki::load_or_create(
        &c.data_dir().join("pki"),
        &format!("{}-control-plane", c.name),
    )
    .expect("pki");
    let anonymous = rustls::ClientConfig::builder()
        .with_root_certificates(pki.roots().expect("roots"))
        .with_no_client_auth();
    Api {
        addr: format!("127.0.0.1:{}", st.api_port).parse().expect("addr"),
        admin: pki.client_tls(&pki.admin).expect("admin tls"),
        anonymous: Arc::new(anonymous),
    }
}

async fn tls(addr: SocketAddr, cfg: Arc<rustls::ClientConfig>) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    TlsConnector::from(cfg)
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
        .expect("TLS handshake")
}

/// Sends one raw HTTP/1.1 request and reads the answer until the server closes.
async fn raw_http1(addr: SocketAddr, cfg: Arc<rustls::ClientConfig>, req: &[u8]) -> (u16, String) {
    let mut s = tls(addr, cfg).await;
    s.write_all(req).await.expect("write request");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

fn assert_status(code: u16, body: &str, want: u16) {
    assert_eq!(code, want, "body: {body}");
    let v: serde_json::Value = serde_json::from_str(body.trim())
        .unwrap_or_else(|e| panic!("{want} answer without a Status body ({e}): {body:?}"));
    assert_eq!(v["kind"], "Status", "{body}");
    assert_eq!(v["status"], "Failure", "{body}");
    assert_eq!(v["code"], want, "{body}");
}

/// A fresh anonymous TLS `GET /healthz` answers 200 ok.
async fn healthz(api: &Api) -> bool {
    let req = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let fut = raw_http1(api.addr, api.anonymous.clone(), req);
    matches!(tokio::time::timeout(Duration::from_secs(20), fut).await, Ok((200, b)) if b == "ok")
}

/// Raises this process's soft descriptor limit to the hard one; returns it.
fn raise_own_nofile() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit").0
}

/// Starts a cluster whose rkind process inherits the common default soft limit of 1024
/// descriptors (what users' shells give it), whatever this test process has.
fn start_with_default_nofile(name: &str, env: &[(&str, &str)]) -> Cluster {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    let _ = setrlimit(Resource::RLIMIT_NOFILE, soft.min(1024), hard);
    let c = Cluster::start_with_env(name, env);
    let _ = setrlimit(Resource::RLIMIT_NOFILE, soft, hard);
    c
}

#[test]
fn idle_sockets_and_stalled_handshakes_do_not_starve_the_api_server() {
    let c = start_with_default_nofile("idlefd", &[("RKIND_TLS_HANDSHAKE_TIMEOUT", "2")]);
    let api = api(&c);
    let limit = raise_own_nofile();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        // A handshake that never completes is closed by the server.
        let mut silent = TcpStream::connect(api.addr).await.expect("connect");
        let started = Instant::now();
        let mut buf = [0u8; 64];
        let r = tokio::time::timeout(Duration::from_secs(60), silent.read(&mut buf)).await;
        assert!(
            matches!(r, Ok(Ok(0)) | Ok(Err(_))),
            "a TCP connection that never starts TLS was not closed by the server within 60 s: {r:?}"
        );
        println!(
            "figure: silent handshake closed after {:.1} s (RKIND_TLS_HANDSHAKE_TIMEOUT=2)",
            started.elapsed().as_secs_f64()
        );
        // The kubelet's port (mutual TLS) bounds handshakes alike.
        let kubelet_port: u16 = c
            .ok(&[
                "get",
                "node",
                "-o",
                "jsonpath={.items[0].status.daemonEndpoints.kubeletEndpoint.Port}",
            ])
            .trim()
            .parse()
            .expect("kubelet port");
        let mut silent = TcpStream::connect(("127.0.0.1", kubelet_port))
            .await
            .expect("connect kubelet");
        let r = tokio::time::timeout(Duration::from_secs(60), silent.read(&mut buf)).await;
        assert!(
            matches!(r, Ok(Ok(0)) | Ok(Err(_))),
            "the kubelet kept a silent TCP connection open for 60 s: {r:?}"
        );
        // A started but unfinished handshake (a ClientHello's first bytes) likewise.
        let mut partial = TcpStream::connect(api.addr).await.expect("connect");
        partial
            .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
            .await
            .expect("write");
        let r = tokio::time::timeout(Duration::from_secs(60), partial.read(&mut buf)).await;
        assert!(
            matches!(r, Ok(Ok(0)) | Ok(Err(_))),
            "a half-sent ClientHello was not closed within 60 s: {r:?}"
        );

        // Many more idle sockets than the default soft limit of 1024, held open by a
        // local user without credentials (this process's own limit permitting).
        let want = 1500usize.min(limit.saturating_sub(400) as usize);
        let mut held = Vec::with_capacity(want);
        for i in 0..want {
            match TcpStream::connect(api.addr).await {
                Ok(s) => held.push(s),
                Err(e) => panic!("connection {i} of {want} refused: {e}"),
            }
        }
        println!("figure: holding {} idle TCP connections", held.len());
        assert!(
            healthz(&api).await,
            "/healthz failed while {} idle connections were held",
            held.len()
        );
        // An authenticated client gets through too, over HTTP/1.1 and via kubectl.
        let (code, body) = raw_http1(
            api.addr,
            api.admin.clone(),
            b"GET /api/v1/namespaces/default HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(code, 200, "{body}");
        let out = c.kubectl(&[
            "get",
            "ns",
            "default",
            "-o",
            "name",
            "--request-timeout=30s",
        ]);
        assert!(
            out.status.success(),
            "kubectl failed while idle connections were held: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "namespace/default"
        );
        drop(held);
    });
}

#[test]
fn oversized_request_heads_get_status_bodies_over_http1_and_http2() {
    let c = Cluster::start("bighead");
    let api = api(&c);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        // HTTP/1.1: heads beyond hyper's own limits (it answers these itself).
        let big = "b".repeat(2 << 20);
        let req = format!("GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n");
        let (code, body) = raw_http1(api.addr, api.admin.clone(), req.as_bytes()).await;
        assert_status(code, &body, 431);
        let many: String = (0..400).map(|i| format!("X-H{i}: v\r\n")).collect();
        let req = format!("GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\n{many}\r\n");
        let (code, body) = raw_http1(api.addr, api.admin.clone(), req.as_bytes()).await;
        assert_status(code, &body, 431);
        let long = "a".repeat(70_000);
        let req =
            format!("GET /api/v1/namespaces?labelSelector={long} HTTP/1.1\r\nHost: x\r\n\r\n");
        let (code, body) = raw_http1(api.addr, api.admin.clone(), req.as_bytes()).await;
        assert_status(code, &body, 414);
        // Ordinary requests on the same listener are unaffected.
        let (code, _) = raw_http1(
            api.addr,
            api.admin.clone(),
            b"GET /api/v1/namespaces/default HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(code, 200);

        // HTTP/2 (what kubectl uses for ordinary requests).
        let mut cfg = (*api.admin).clone();
        cfg.alpn_protocols = vec![b"h2".to_vec()];
        let h2 = |uri: String, header: Option<String>| {
            let cfg = Arc::new(cfg.clone());
            async move {
                let io = hyper_util::rt::TokioIo::new(tls(api.addr, cfg).await);
                let (mut send, conn) =
                    hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                        .await
                        .expect("h2 handshake");
                tokio::spawn(conn);
                let mut b = http::Request::get(format!("https://127.0.0.1{uri}"));
                if let Some(h) = header {
                    b = b.header("x-big", h);
                }
                let resp = send
                    .send_request(
                        b.body(http_body_util::Empty::<bytes::Bytes>::new())
                            .expect("req"),
                    )
                    .await
                    .expect("h2 answer");
                let code = resp.status().as_u16();
                let body = http_body_util::BodyExt::collect(resp.into_body())
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                (code, String::from_utf8_lossy(&body).into_owned())
            }
        };
        let (code, body) = h2(
            "/api/v1/namespaces".into(),
            Some("b".repeat((1 << 20) + 1024)),
        )
        .await;
        assert_status(code, &body, 431);
        // (No HTTP/2 414: a :path over 65534 bytes is not a URI the http crate holds,
        // on either side, so such a request cannot reach a handler or be built here.)
        let (code, body) = h2("/api/v1/namespaces/default".into(), Some("small".into())).await;
        assert_eq!(code, 200, "{body}");
    });
}

/// Opens a WebSocket to `path` by hand (so the raw stream stays available) and returns
/// the stream after the 101, and the 101's head.
async fn ws_raw(api: &Api, path: &str, protocol: &str) -> (TlsStream<TcpStream>, String) {
    let mut s = tls(api.addr, api.admin.clone()).await;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("write upgrade");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(60), s.read(&mut b))
            .await
            .expect("101 within 60 s")
            .expect("read 101");
        assert!(
            n == 1,
            "connection closed during the upgrade: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    (s, head)
}

async fn ws(api: &Api, path: &str, protocol: &str) -> WebSocketStream<TlsStream<TcpStream>> {
    let (s, head) = ws_raw(api, path, protocol).await;
    assert!(head.starts_with("HTTP/1.1 101"), "upgrade refused: {head}");
    WebSocketStream::from_raw_socket(s, Role::Client, None).await
}

/// Reads one (unmasked) server frame: opcode and payload.
async fn read_frame<S: AsyncRead + Unpin>(s: &mut S) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).await.ok()?;
    let len = match h[1] & 0x7f {
        126 => {
            let mut l = [0u8; 2];
            s.read_exact(&mut l).await.ok()?;
            u64::from(u16::from_be_bytes(l))
        }
        127 => {
            let mut l = [0u8; 8];
            s.read_exact(&mut l).await.ok()?;
            u64::from_be_bytes(l)
        }
        n => u64::from(n),
    };
    let mut payload = vec![0u8; len as usize];
    s.read_exact(&mut payload).await.ok()?;
    Some((h[0] & 0x0f, payload))
}

/// Pids of processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| {
                    std::fs::read(format!("/proc/{pid}/cmdline"))
                        .map(|c| {
                            String::from_utf8_lossy(&c)
                                .replace('\0', " ")
                                .contains(marker)
                        })
                        .unwrap_or(false)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn exec_path(pod: &str, argv: &[&str], stdin: bool) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for a in argv {
        q.append_pair("command", a);
    }
    if stdin {
        q.append_pair("stdin", "true");
    }
    q.append_pair("stdout", "true");
    q.append_pair("stderr", "true");
    format!("/api/v1/namespaces/default/pods/{pod}/exec?{}", q.finish())
}

/// Collects a channel session until the server's Close: per-channel bytes and the Close.
async fn drain<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
) -> (std::collections::BTreeMap<u8, Vec<u8>>, Option<u16>) {
    let mut chans = std::collections::BTreeMap::<u8, Vec<u8>>::new();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .expect("session ends within 60 s");
        match m {
            Some(Ok(Message::Binary(b))) if !b.is_empty() => {
                chans.entry(b[0]).or_default().extend_from_slice(&b[1..]);
            }
            Some(Ok(Message::Close(f))) => return (chans, f.map(|f| u16::from(f.code))),
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("WebSocket error before the Close: {e}"),
            None => return (chans, None),
        }
    }
}

#[test]
fn websocket_clients_other_than_kubectl() {
    let c = Cluster::start_with_env("wsclients", &[("RKIND_WEBSOCKET_IDLE_TIMEOUT", "3")]);
    let port = 18473u16;
    c.ok(&[
        "run",
        "box",
        "--image=rkind/host",
        "--restart=Never",
        "--",
        "sleep",
        "3600",
    ]);
    let serve = format!("python3 -m http.server {port} --bind 127.0.0.1");
    c.ok(&[
        "run",
        "web",
        "--image=rkind/host",
        "--restart=Never",
        "--",
        "sh",
        "-c",
        &serve,
    ]);
    for p in ["box", "web"] {
        c.ok(&[
            "wait",
            "--for=condition=Ready",
            &format!("pod/{p}"),
            "--timeout=60s",
        ]);
    }
    c.wait_listening("web", port);
    let api = api(&c);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        // Stdin as TEXT frames, as the python client sends it (v4 channel protocol).
        let path = exec_path("box", &["sh", "-c", "read l; echo got:$l"], true);
        let mut s = ws(&api, &path, "v4.channel.k8s.io").await;
        s.send(Message::Text("\u{0}hello\n".into())).await.expect("send stdin");
        let (chans, close) = drain(&mut s).await;
        let stdout = String::from_utf8_lossy(chans.get(&1).map(Vec::as_slice).unwrap_or(&[])).into_owned();
        let status = String::from_utf8_lossy(chans.get(&3).map(Vec::as_slice).unwrap_or(&[])).into_owned();
        assert_eq!(stdout, "got:hello\n", "status: {status}");
        assert!(status.contains("\"Success\""), "{status}");
        assert_eq!(close, Some(1000));

        // v5 (kubectl): nothing is sent before the command's own output. kubectl 1.33
        // registers its streams while its reader already runs, so an early message (the
        // empty "ready" write older clients get) is logged as "Unknown stream id 1".
        let path = exec_path("box", &["sh", "-c", "sleep 1; echo late"], false);
        let mut s = ws(&api, &path, "v5.channel.k8s.io").await;
        let first = loop {
            match tokio::time::timeout(Duration::from_secs(60), s.next()).await.expect("first message") {
                Some(Ok(Message::Binary(b))) => break b.to_vec(),
                Some(Ok(Message::Close(f))) => panic!("closed before any output: {f:?}"),
                Some(Ok(_)) => {}
                other => panic!("no output: {other:?}"),
            }
        };
        assert_eq!(first, b"\x01late\n", "first message of a v5 session");
        let (_, close) = drain(&mut s).await;
        assert_eq!(close, Some(1000));

        // Port-forward with the channel protocol: data 0, error 1, each opened with the
        // port (little-endian), then an HTTP exchange with the pod's server.
        let pf = format!("/api/v1/namespaces/default/pods/web/portforward?ports={port}");
        let mut s = ws(&api, &pf, "v4.channel.k8s.io").await;
        let le = port.to_le_bytes();
        let mut first = Vec::new();
        while first.len() < 2 {
            match tokio::time::timeout(Duration::from_secs(60), s.next()).await.expect("prefix") {
                Some(Ok(Message::Binary(b))) => first.push(b.to_vec()),
                Some(Ok(_)) => {}
                other => panic!("no port prefix: {other:?}"),
            }
        }
        assert_eq!(first, vec![vec![0, le[0], le[1]], vec![1, le[0], le[1]]]);
        let mut req = vec![0u8];
        req.extend_from_slice(b"GET / HTTP/1.0\r\nHost: pod\r\n\r\n");
        s.send(Message::Binary(req.into())).await.expect("send request");
        let (chans, close) = drain(&mut s).await;
        let data = String::from_utf8_lossy(chans.get(&0).map(Vec::as_slice).unwrap_or(&[])).into_owned();
        assert!(data.starts_with("HTTP/1.0 200"), "{data:?} / errors {:?}", chans.get(&1));
        assert!(chans.get(&1).is_none_or(|e| e.is_empty()), "error channel: {:?}", chans.get(&1));
        assert_eq!(close, Some(1000));
        // Without ports the API server refuses before any upgrade.
        let (_, head) = ws_raw(&api, "/api/v1/namespaces/default/pods/web/portforward", "v4.channel.k8s.io").await;
        assert!(head.starts_with("HTTP/1.1 400"), "{head}");

        // A malformed frame (unmasked, from a client) ends the session with Close 1002,
        // not a Status, and releases the process.
        let marker = "3602";
        let path = exec_path("box", &["sleep", marker], false);
        let (mut raw, head) = ws_raw(&api, &path, "v5.channel.k8s.io").await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        c.eventually(60, "the exec'd sleep runs", || !processes_with(&format!("sleep {marker}")).is_empty());
        raw.write_all(&[0x82, 0x02, 0x00, 0x41]).await.expect("write bad frame");
        let mut close = None;
        let mut statuses = Vec::new();
        while close.is_none() {
            match tokio::time::timeout(Duration::from_secs(60), read_frame(&mut raw)).await {
                Ok(Some((8, p))) => close = Some(p),
                Ok(Some((2, p))) if p.first() == Some(&3) => statuses.push(p),
                Ok(Some(_)) => {}
                Ok(None) => panic!("connection ended without a Close frame"),
                Err(_) => panic!("no Close frame within 60 s"),
            }
        }
        let close = close.unwrap_or_default();
        assert_eq!(close.get(..2), Some(&[0x03, 0xEA][..]), "close frame {close:?}");
        assert!(statuses.is_empty(), "a Status was sent: {statuses:?}");
        c.eventually(60, "the process of the broken session is gone", || processes_with(&format!("sleep {marker}")).is_empty());

        // A stalled session (upgrade, then silence: no pongs, no data) ends and its
        // process goes, while the client still holds the connection.
        let marker = "3603";
        let path = exec_path("box", &["sleep", marker], true);
        let (stalled, head) = ws_raw(&api, &path, "v5.channel.k8s.io").await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        c.eventually(60, "the exec'd sleep runs", || !processes_with(&format!("sleep {marker}")).is_empty());
        let seen = Instant::now();
        c.eventually(90, "the stalled session's process is gone", || processes_with(&format!("sleep {marker}")).is_empty());
        println!(
            "figure: stalled WebSocket exec session's process lived {:.1} s after it was seen (RKIND_WEBSOCKET_IDLE_TIMEOUT=3)",
            seen.elapsed().as_secs_f64()
        );
        drop(stalled);
    });
}

#[test]
fn kubectl_1_33_websocket_exec_leaves_stderr_empty() {
    let c = Cluster::start("ws133");
    c.ok(&[
        "run",
        "box",
        "--image=rkind/host",
        "--restart=Never",
        "--",
        "sleep",
        "3600",
    ]);
    c.ok(&["wait", "--for=condition=Ready", "pod/box", "--timeout=60s"]);
    let bin = kubectl_dir().join("kubectl.1.33");
    for i in 0..30 {
        let out = Command::new(&bin)
            .args(["exec", "box", "--", "true"])
            .envs(c.envs())
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl.1.33");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "run {i}: {err}");
        assert!(err.is_empty(), "run {i}: kubectl printed on stderr: {err}");
    }
}
