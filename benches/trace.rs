//! What recording traces costs: the same exec against two clusters, one recording
//! (the default) and one with `RKIND_TRACE=off`, measured alternately so drift hits
//! both alike. Prints medians and the overhead ratio (goal < 2 %).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

mod common;
use common::{api_addr, median, pki_for, rust_exec_true, start_with_env, stop};

fn kubectl(dir: &Path, args: &[&str]) {
    assert!(
        Command::new("kubectl")
            .args(args)
            .env("HOME", dir)
            .env("KUBECONFIG", dir.join("kubeconfig"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("kubectl")
            .success(),
        "kubectl {args:?}"
    );
}

fn cluster(
    dir: &Path,
    env: &[(&str, &str)],
) -> (Child, SocketAddr, std::sync::Arc<rustls::ClientConfig>) {
    let (child, _) = start_with_env(dir, env);
    kubectl(
        dir,
        &[
            "run",
            "box",
            "--image=rkind/host",
            "--restart=Never",
            "--",
            "sleep",
            "36000",
        ],
    );
    kubectl(
        dir,
        &["wait", "--for=condition=Ready", "pod/box", "--timeout=60s"],
    );
    let data = dir.join("data");
    let pki = pki_for(&data);
    let tls = pki.client_tls(&pki.admin).expect("tls");
    (child, api_addr(&data), tls)
}

fn kubectl_exec_ms(dir: &Path) -> f64 {
    let t = Instant::now();
    kubectl(dir, &["exec", "box", "--", "true"]);
    t.elapsed().as_secs_f64() * 1000.0
}

fn main() {
    rkind::install_crypto_provider();
    println!("rkind trace-recording overhead (medians, alternating runs)");
    let on_dir = tempfile::tempdir().expect("tempdir");
    let off_dir = tempfile::tempdir().expect("tempdir");
    let (on_child, on_addr, on_tls) = cluster(on_dir.path(), &[]);
    let (off_child, off_addr, off_tls) = cluster(off_dir.path(), &[("RKIND_TRACE", "off")]);
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    let (mut on, mut off) = (Vec::new(), Vec::new());
    rt.block_on(async {
        for _ in 0..5 {
            rust_exec_true(on_addr, on_tls.clone()).await;
            rust_exec_true(off_addr, off_tls.clone()).await;
        }
        for _ in 0..101 {
            on.push(rust_exec_true(on_addr, on_tls.clone()).await);
            off.push(rust_exec_true(off_addr, off_tls.clone()).await);
        }
    });
    let (on_m, off_m) = (median(on), median(off));
    println!(
        "Rust client exec true (SPDY):  traced {on_m:.2} ms, untraced {off_m:.2} ms → overhead {:+.1} % (goal < 2 %)",
        (on_m / off_m - 1.0) * 100.0
    );
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for _ in 0..31 {
        on.push(kubectl_exec_ms(on_dir.path()));
        off.push(kubectl_exec_ms(off_dir.path()));
    }
    let (on_m, off_m) = (median(on), median(off));
    println!(
        "kubectl exec true (WebSocket): traced {on_m:.2} ms, untraced {off_m:.2} ms → overhead {:+.1} % (goal < 2 %)",
        (on_m / off_m - 1.0) * 100.0
    );
    stop(on_child);
    stop(off_child);
}
