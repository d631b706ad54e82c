//! Foundation benchmarks (not tests): start-up time, idle memory, per-request latency
//! against kubectl's own floor, pod creation throughput and large lists. Prints medians
//! and ratios. Run with `scripts/bench.sh` (release build).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

mod common;
use common::{api_addr, median, pki_for, rss_kib, start, stop, time_cmd};

fn main() {
    rkind::install_crypto_provider();
    println!("rkind foundation benchmarks (medians)");

    // RKIND_BENCH_READ_PATH=1: only the API server's read-path figures (idle RSS, get
    // pods, lists), skipping start-up, `rkind run` and pod-start measurements.
    let read_path_only = std::env::var_os("RKIND_BENCH_READ_PATH").is_some();
    if !read_path_only {
        startup_and_run();
    }
    read_path();
    if !read_path_only {
        pod_start();
    }
}

fn startup_and_run() {
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    for _ in 0..5 {
        let dir = tempfile::tempdir().expect("tempdir");
        let (c, ms) = start(dir.path());
        cold.push(ms);
        stop(c);
        let (c, ms) = start(dir.path());
        warm.push(ms);
        stop(c);
    }
    let cold_m = median(cold);
    let warm_m = median(warm);
    println!(
        "up → node Ready, cold (new certs): {cold_m:.1} ms   (goal < 300 ms; kind ~11000 ms: {:.0}x faster)",
        11000.0 / cold_m
    );
    println!("up → node Ready, warm:             {warm_m:.1} ms   (goal < 100 ms)");

    // The hermetic harness end to end: boot in a temp dir, Ready, run, tear down; at
    // each isolation level (capped with RKIND_ISOLATION, as root), and as the non-root
    // user scripts/test-isolation-levels.sh creates when it exists (rootless for real).
    for level in ["namespaces", "rootless", "unprivileged"] {
        let run_m = median_run(&[("RKIND_ISOLATION", level)], None);
        println!(
            "rkind run -- true ({level:<12}):  {run_m:.1} ms   (goal < 500 ms; kind's cluster create alone ~11000 ms: {:.0}x)",
            11000.0 / run_m
        );
    }
    if let Some(user) = non_root_user() {
        let run_m = median_run(&[], Some(&user));
        println!("rkind run -- true (user {user}):  {run_m:.1} ms   (rootless as found by trying)");
    }
}

fn read_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, _) = start(dir.path());
    std::thread::sleep(Duration::from_secs(2));
    println!(
        "idle RSS of the whole process:     {:.1} MB  (goal < 30 MB)",
        rss_kib(child.id()) as f64 / 1024.0
    );

    let floor = time_cmd(dir.path(), &["version", "--client"], 15);
    let get = time_cmd(dir.path(), &["get", "pods"], 15);
    println!("kubectl version --client:          {floor:.1} ms (kubectl's own floor)");
    println!(
        "kubectl get pods:                  {get:.1} ms  (difference {:.1} ms, ratio {:.2})",
        get - floor,
        get / floor
    );

    let data = dir.path().join("data");
    let pki = pki_for(&data);
    let addr: SocketAddr = api_addr(&data);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let api = Arc::new(rkind::client::ApiClient::new(addr, pki.client_tls(&pki.admin).expect("tls")));
        let mut lat = Vec::new();
        for _ in 0..300 {
            let t = Instant::now();
            api.get("/api/v1/namespaces/default/pods").await.expect("get");
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        println!("server GET pods (empty), Rust h2 client: {:.3} ms  (goal < 2 ms)", median(lat));

        let t = Instant::now();
        let mut handles = Vec::new();
        for w in 0..16 {
            let api = api.clone();
            handles.push(tokio::spawn(async move {
                for i in 0..(1000 / 16 + 1) {
                    let pod = json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":format!("p-{w}-{i}")},
                        "spec":{"schedulerName":"none","containers":[{"name":"c","image":"rkind/host"}]}});
                    api.post("/api/v1/namespaces/default/pods", &pod).await.expect("create");
                }
            }));
        }
        for h in handles {
            h.await.expect("join");
        }
        let created = 16 * (1000 / 16 + 1);
        let secs = t.elapsed().as_secs_f64();
        println!("create {created} pods (16 concurrent): {:.0} pods/s  (goal ≥ 1000/s)", created as f64 / secs);
        let mut lists = Vec::new();
        for _ in 0..10 {
            let t = Instant::now();
            let l = api.get("/api/v1/namespaces/default/pods").await.expect("list");
            assert!(l["items"].as_array().map(|a| a.len()).unwrap_or(0) >= 1000);
            lists.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        println!("list {created} pods: {:.1} ms  (goal < 50 ms)", median(lists));
    });
    let get_many = time_cmd(dir.path(), &["get", "pods"], 5);
    println!("kubectl get pods with 1000+ pods (Table): {get_many:.1} ms");
    println!(
        "RSS with 1000+ pods stored: {:.1} MB",
        rss_kib(child.id()) as f64 / 1024.0
    );
    stop(child);
}

fn pod_start() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");

    // Pod create → Running (container really started in its namespaces), host image.
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, _) = start(dir.path());
    let data = dir.path().join("data");
    let addr: SocketAddr = api_addr(&data);
    rt.block_on(async {
        let api = Arc::new(rkind::client::ApiClient::new(addr, pki_for(&data).client_tls(&pki_for(&data).admin).expect("tls")));
        let run = |name: String| {
            let api = api.clone();
            async move {
                let pod = json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":name},
                    "spec":{"terminationGracePeriodSeconds":0,"containers":[{"name":"c","image":"rkind/host","command":["sleep","600"]}]}});
                let t = Instant::now();
                api.post("/api/v1/namespaces/default/pods", &pod).await.expect("create");
                loop {
                    let p = api.get(&format!("/api/v1/namespaces/default/pods/{name}")).await.expect("get");
                    if p["status"]["phase"] == "Running" {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                t.elapsed().as_secs_f64() * 1000.0
            }
        };
        let mut lat = Vec::new();
        for i in 0..20 {
            lat.push(run(format!("seq-{i}")).await);
        }
        lat.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        println!("pod create → Running, sequential (20): p50 {:.1} ms, max {:.1} ms  (goal p50 < 30 ms, p99 < 100 ms)", lat[lat.len() / 2], lat[lat.len() - 1]);
        let t = Instant::now();
        let handles: Vec<_> = (0..100).map(|i| tokio::spawn(run(format!("par-{i}")))).collect();
        let mut par = Vec::new();
        for h in handles {
            par.push(h.await.expect("join"));
        }
        par.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        println!("100 pods in parallel: all Running after {:.0} ms; p50 {:.0} ms, p99 {:.0} ms", t.elapsed().as_secs_f64() * 1000.0, par[50], par[98]);
    });
    std::thread::sleep(Duration::from_secs(1));
    println!(
        "RSS with 120 running pods (rkind process only): {:.1} MB",
        rss_kib(child.id()) as f64 / 1024.0
    );
    stop(child);
}

/// Median of 11 `rkind run -- true`, with `env`, as `user` when given (from a copy of the
/// binary that user can read).
fn median_run(env: &[(&str, &str)], user: Option<&str>) -> f64 {
    let stage = tempfile::tempdir().expect("tempdir");
    let bin = stage.path().join("rkind");
    std::fs::copy(env!("CARGO_BIN_EXE_rkind"), &bin).expect("copy rkind");
    let mut runs = Vec::new();
    for _ in 0..11 {
        let mut cmd = match user {
            Some(u) => {
                use std::os::unix::fs::PermissionsExt;
                let _ =
                    std::fs::set_permissions(stage.path(), std::fs::Permissions::from_mode(0o755));
                let mut c = std::process::Command::new("runuser");
                c.args([
                    "-u",
                    u,
                    "--",
                    "env",
                    "-i",
                    "PATH=/usr/bin:/bin",
                    "HOME=/tmp",
                ])
                .arg(&bin);
                c
            }
            None => std::process::Command::new(&bin),
        };
        cmd.args(["run", "--", "true"])
            .current_dir("/tmp")
            .envs(env.iter().copied())
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let t = std::time::Instant::now();
        let status = cmd.status().expect("rkind run");
        assert!(
            status.success(),
            "rkind run -- true failed ({env:?}, {user:?})"
        );
        runs.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    median(runs)
}

/// The non-root test user, if the machine has one.
fn non_root_user() -> Option<String> {
    let user = "rkind-ci";
    std::process::Command::new("id")
        .arg(user)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| user.to_string())
}
