//! Exec-chain benchmarks (not tests): `kubectl exec` latency against `kubectl get`
//! (kubectl's own floor), 1 GiB through `cat` with kubectl and with a Rust SPDY client
//! (the chain itself), and 100 concurrent sessions (p50/p99, memory per session).
//! Prints medians and ratios. Run with `scripts/bench.sh` (release build).

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

mod common;
use common::{api_addr, headers, median, open_exec, pki_for, rss_kib, rust_exec_true, start, stop};

const GIB: usize = 1 << 30;

fn kubectl_ms(dir: &std::path::Path, args: &[&str], spdy: bool, n: usize) -> f64 {
    let mut v = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let mut cmd = Command::new("kubectl");
        cmd.args(args)
            .env("HOME", dir)
            .env("KUBECONFIG", dir.join("kubeconfig"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if spdy {
            cmd.env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false");
        }
        assert!(cmd.status().expect("kubectl").success(), "kubectl {args:?}");
        v.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    median(v)
}

/// Streams `total` bytes through `kubectl exec -i box -- cat`, discarding the output.
fn kubectl_cat(dir: &std::path::Path, total: usize, spdy: bool) -> f64 {
    use std::io::{Read, Write};
    let mut cmd = Command::new("kubectl");
    cmd.args(["exec", "-i", "box", "--", "cat"])
        .env("HOME", dir)
        .env("KUBECONFIG", dir.join("kubeconfig"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if spdy {
        cmd.env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false");
    }
    let t = Instant::now();
    let mut child = cmd.spawn().expect("kubectl");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let writer = std::thread::spawn(move || {
        let chunk = vec![0x5Au8; 1 << 20];
        for _ in 0..total / chunk.len() {
            stdin.write_all(&chunk).expect("write");
        }
    });
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = stdout.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        got += n;
    }
    writer.join().expect("writer");
    assert!(child.wait().expect("wait").success());
    assert_eq!(got, total, "bytes back");
    t.elapsed().as_secs_f64()
}

async fn rust_cat(addr: SocketAddr, tls: Arc<rustls::ClientConfig>, total: usize) -> f64 {
    let t = Instant::now();
    let s = open_exec(addr, tls, "command=cat&stdin=true&stdout=true").await;
    let mut error = s.open(headers("error")).await.expect("error");
    let stdin = s.open(headers("stdin")).await.expect("stdin");
    let mut out = s.open(headers("stdout")).await.expect("stdout");
    let writer = tokio::spawn(async move {
        let chunk = Bytes::from(vec![0xA5u8; 1 << 20]);
        for _ in 0..total / chunk.len() {
            stdin.writer.write(chunk.clone()).await.expect("write");
        }
        stdin.writer.close().await;
    });
    let mut got = 0usize;
    while let Some(d) = out.reader.recv().await {
        got += d.len();
    }
    writer.await.expect("writer");
    while error.reader.recv().await.is_some() {}
    s.shutdown().await;
    assert_eq!(got, total);
    t.elapsed().as_secs_f64()
}

/// Whether a section runs: all of them, or those named on the command line
/// (`cargo bench --bench exec -- rust-cat`; names: latency, kubectl-cat, rust-latency,
/// rust-cat, concurrent).
fn wanted(section: &str) -> bool {
    let names: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    names.is_empty() || names.iter().any(|n| n == section)
}

fn main() {
    rkind::install_crypto_provider();
    println!("rkind exec-chain benchmarks (medians)");
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, _) = start(dir.path());
    let d = dir.path();
    let k = |args: &[&str]| {
        assert!(
            Command::new("kubectl")
                .args(args)
                .env("HOME", d)
                .env("KUBECONFIG", d.join("kubeconfig"))
                .stdout(Stdio::null())
                .status()
                .expect("kubectl")
                .success()
        )
    };
    k(&[
        "run",
        "box",
        "--image=rkind/host",
        "--restart=Never",
        "--",
        "sleep",
        "36000",
    ]);
    k(&["wait", "--for=condition=Ready", "pod/box", "--timeout=60s"]);

    if wanted("latency") {
        let get = kubectl_ms(d, &["get", "pod", "box"], false, 21);
        let exec_ws = kubectl_ms(d, &["exec", "box", "--", "true"], false, 21);
        let exec_spdy = kubectl_ms(d, &["exec", "box", "--", "true"], true, 21);
        println!(
            "kubectl get pod box:               {get:.1} ms (kubectl's floor for this cluster)"
        );
        println!(
            "kubectl exec box -- true (WS):     {exec_ws:.1} ms  (difference {:.1} ms, ratio {:.2}; goal < 5 ms)",
            exec_ws - get,
            exec_ws / get
        );
        println!(
            "kubectl exec box -- true (SPDY):   {exec_spdy:.1} ms  (difference {:.1} ms, ratio {:.2})",
            exec_spdy - get,
            exec_spdy / get
        );
    }

    if wanted("kubectl-cat") {
        for spdy in [false, true] {
            let secs = kubectl_cat(d, GIB, spdy);
            println!(
                "kubectl exec -i cat, 1 GiB ({}): {secs:.2} s = {:.2} GB/s each way (goal >= 1 GB/s)",
                if spdy { "SPDY" } else { "WS  " },
                GIB as f64 / secs / 1e9
            );
        }
    }

    let data = d.join("data");
    let pki = pki_for(&data);
    let tls = pki.client_tls(&pki.admin).expect("tls");
    let addr: SocketAddr = api_addr(&data);
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    rt.block_on(async {
        if wanted("rust-latency") {
            let mut lat = Vec::new();
            for _ in 0..21 {
                lat.push(rust_exec_true(addr, tls.clone()).await);
            }
            println!(
                "Rust client exec true (SPDY):      {:.1} ms (the chain without kubectl)",
                median(lat)
            );
        }
        if wanted("rust-cat") {
            let secs = rust_cat(addr, tls.clone(), GIB).await;
            println!(
                "Rust client cat, 1 GiB (SPDY):     {secs:.2} s = {:.2} GB/s each way (the chain itself)",
                GIB as f64 / secs / 1e9
            );
        }
        if !wanted("concurrent") {
            return;
        }

        // 100 concurrent sessions.
        let before = rss_kib(child.id());
        let t = Instant::now();
        let tasks: Vec<_> = (0..100)
            .map(|_| tokio::spawn(rust_exec_true(addr, tls.clone())))
            .collect();
        let mut lat = Vec::new();
        for t in tasks {
            lat.push(t.await.expect("session"));
        }
        let wall = t.elapsed().as_secs_f64() * 1000.0;
        lat.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        println!(
            "100 concurrent exec true:          all done in {wall:.0} ms, p50 {:.0} ms, p99 {:.0} ms",
            lat[49], lat[98]
        );
        // Memory per open session: 100 sessions held open on `sleep`.
        let sessions: Vec<_> = (0..100)
            .map(|_| {
                let tls = tls.clone();
                tokio::spawn(async move {
                    let s = open_exec(addr, tls, "command=sleep&command=3&stdout=true").await;
                    let e = s.open(headers("error")).await.expect("error");
                    let o = s.open(headers("stdout")).await.expect("stdout");
                    (s, e, o)
                })
            })
            .collect();
        let mut open = Vec::new();
        for s in sessions {
            open.push(s.await.expect("open"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let during = rss_kib(child.id());
        println!(
            "memory per open exec session:      {:.1} KiB in the rkind process ({} KiB → {} KiB; helper processes not counted)",
            (during.saturating_sub(before)) as f64 / 100.0,
            before,
            during
        );
        for (s, mut e, mut o) in open {
            while o.reader.recv().await.is_some() {}
            while e.reader.recv().await.is_some() {}
            s.shutdown().await;
        }
    });
    stop(child);
}
