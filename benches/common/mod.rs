//! Helpers shared by the benchmarks: start/stop a release `rkind up`, medians,
//! process memory and kubectl timings.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use rkind::stream::session::{Role, Session};
use rkind::stream::spdy::Headers;
use rkind::stream::upgrade::{ClientUpgrade, client_upgrade};

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

pub fn start(dir: &Path) -> (Child, f64) {
    start_with_env(dir, &[])
}

/// Clusters started by this benchmark, stopped by the panic hook if a benchmark fails
/// (before its temp dir goes away under a running cluster).
static RUNNING: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

fn stop_on_panic() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            let pids: Vec<u32> = RUNNING.lock().map(|v| v.clone()).unwrap_or_default();
            for pid in pids {
                let pid = nix::unistd::Pid::from_raw(pid as i32);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
                let deadline = Instant::now() + std::time::Duration::from_secs(15);
                while nix::sys::signal::kill(pid, None).is_ok() && Instant::now() < deadline {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            }
        }));
    });
}

/// Starts a cluster whose rkind process also gets `env` (e.g. `RKIND_TRACE=off`).
pub fn start_with_env(dir: &Path, env: &[(&str, &str)]) -> (Child, f64) {
    stop_on_panic();
    let t = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rkind"))
        .envs(env.iter().copied())
        .args(["up", "--name", "bench", "--data-dir"])
        .arg(dir.join("data"))
        .arg("--kubeconfig")
        .arg(dir.join("kubeconfig"))
        .env("HOME", dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rkind");
    let out = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(out).lines();
    for line in lines.by_ref() {
        if line.expect("line").contains("is ready") {
            break;
        }
    }
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    std::thread::spawn(move || for _ in lines {});
    if let Ok(mut v) = RUNNING.lock() {
        v.push(child.id());
    }
    (child, ms)
}

pub fn stop(mut child: Child) {
    if let Ok(mut v) = RUNNING.lock() {
        v.retain(|p| *p != child.id());
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
}

pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

pub fn time_cmd(dir: &Path, args: &[&str], n: usize) -> f64 {
    let mut v = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let ok = Command::new("kubectl")
            .args(args)
            .env("HOME", dir)
            .env("KUBECONFIG", dir.join("kubeconfig"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kubectl {args:?} failed");
        v.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    median(v)
}

/// The API server's address of the cluster whose data dir is `data`.
pub fn api_addr(data: &Path) -> SocketAddr {
    let st = rkind::cluster::state::ClusterState::load(data).expect("state");
    SocketAddr::from(([127, 0, 0, 1], st.api_port))
}

pub fn pki_for(data: &Path) -> rkind::pki::ClusterPki {
    rkind::pki::ClusterPki::load_or_create(&data.join("pki"), "bench-control-plane").expect("pki")
}

/// An exec session over SPDY straight to the API server (what kubectl does, minus kubectl).
pub async fn open_exec(
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    query: &str,
) -> Arc<Session> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let _ = tcp.set_nodelay(true);
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(
            rustls_pki_types::ServerName::IpAddress(addr.ip().into()),
            tcp,
        )
        .await
        .expect("tls");
    let req = http::Request::post(format!("/api/v1/namespaces/default/pods/box/exec?{query}"))
        .header("host", addr.to_string())
        .header("connection", "Upgrade")
        .header("upgrade", "SPDY/3.1")
        .header("x-stream-protocol-version", "v4.channel.k8s.io")
        .body(http_body_util::Empty::<Bytes>::new())
        .expect("request");
    match client_upgrade(stream, req).await.expect("upgrade") {
        ClientUpgrade::Switched { io, .. } => Session::new(io, Role::Client),
        ClientUpgrade::Refused { parts, body } => {
            panic!(
                "exec refused: {} {}",
                parts.status,
                String::from_utf8_lossy(&body)
            )
        }
    }
}

pub fn headers(t: &str) -> Headers {
    let mut h = Headers::new();
    h.insert("streamtype", t);
    h
}

/// Runs `true` and waits for the status; returns the wall time in ms.
pub async fn rust_exec_true(addr: SocketAddr, tls: Arc<rustls::ClientConfig>) -> f64 {
    let t = Instant::now();
    let s = open_exec(addr, tls, "command=true&stdout=true").await;
    let mut error = s.open(headers("error")).await.expect("error");
    let mut out = s.open(headers("stdout")).await.expect("stdout");
    while out.reader.recv().await.is_some() {}
    let mut status = Vec::new();
    while let Some(d) = error.reader.recv().await {
        status.extend_from_slice(&d);
    }
    assert!(
        String::from_utf8_lossy(&status).contains("Success"),
        "{}",
        String::from_utf8_lossy(&status)
    );
    s.shutdown().await;
    t.elapsed().as_secs_f64() * 1000.0
}
