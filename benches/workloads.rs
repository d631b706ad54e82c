//! Workloads benchmark (not a test): a release `rkind up` scales a Deployment of sleeping
//! `rkind/host` pods from 1 to 100 replicas (time until the Deployment reports 100 ready,
//! and pods per second), rolls all 100 to a new template (time until the rollout is
//! complete), then measures the process's CPU while idle with 100 running pods and its
//! RSS. Medians over several clusters. Run with `scripts/bench.sh` (release build).
//!
//! The Deployment's status is what is timed: the figure covers the whole chain (the
//! Deployment and ReplicaSet controllers, the scheduler, the kubelet, the runtime, and
//! the status writes back), each over its own HTTPS connection as in a real cluster.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;
use common::{api_addr, median, pki_for, rss_kib, start, stop};

/// Replicas the Deployment is scaled to.
const REPLICAS: i64 = 100;
/// Clusters measured (each figure is the median over them).
const ROUNDS: usize = 3;
/// How long the idle CPU is sampled.
const IDLE: Duration = Duration::from_secs(10);
/// The longest a scale or rollout may take before the benchmark gives up.
const LIMIT: Duration = Duration::from_secs(600);

const DEPLOY: &str = "/apis/apps/v1/namespaces/default/deployments";

fn main() {
    rkind::install_crypto_provider();
    println!(
        "rkind workloads ({REPLICAS} replicas of a sleeping pod; medians of {ROUNDS} clusters)"
    );
    let mut scale_s = Vec::new();
    let mut rollout_s = Vec::new();
    let mut idle_cpu = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..ROUNDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let (child, _) = start(dir.path());
        let pid = child.id();
        let data = dir.path().join("data");
        let pki = pki_for(&data);
        let addr: SocketAddr = api_addr(&data);
        let tls = pki.client_tls(&pki.admin).expect("tls");
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let api = rkind::client::ApiClient::new(addr, tls);
            api.post(DEPLOY, &deployment()).await.expect("create");
            wait_complete(&api, 1).await;

            let t = Instant::now();
            api.merge_patch(
                &format!("{DEPLOY}/web/scale"),
                &json!({"spec": {"replicas": REPLICAS}}),
            )
            .await
            .expect("scale");
            wait_complete(&api, REPLICAS).await;
            scale_s.push(t.elapsed().as_secs_f64());

            let t = Instant::now();
            api.merge_patch(
                &format!("{DEPLOY}/web"),
                &json!({"spec": {"template": {"metadata": {"annotations": {"bench/rev": "2"}}}}}),
            )
            .await
            .expect("roll");
            wait_complete(&api, REPLICAS).await;
            rollout_s.push(t.elapsed().as_secs_f64());
        });
        // Let the old pods' deletion and the last status writes settle first.
        std::thread::sleep(Duration::from_secs(5));
        let before = cpu_ticks(pid);
        std::thread::sleep(IDLE);
        let ticks = cpu_ticks(pid) - before;
        idle_cpu.push(ticks as f64 / ticks_per_second() / IDLE.as_secs_f64() * 100.0);
        rss.push(rss_kib(pid) as f64 / 1024.0);
        stop(child);
    }
    let scale = median(scale_s);
    println!(
        "scale 1 → {REPLICAS} until {REPLICAS} ready: p50 {scale:.2} s ({:.1} pods/s)",
        (REPLICAS - 1) as f64 / scale
    );
    let roll = median(rollout_s);
    println!(
        "rolling update of {REPLICAS}: p50 {roll:.2} s ({:.1} pods/s replaced)",
        REPLICAS as f64 / roll
    );
    println!(
        "idle with {REPLICAS} pods: {:.2} % of one core over {} s",
        median(idle_cpu),
        IDLE.as_secs()
    );
    println!(
        "RSS of the rkind process with {REPLICAS} pods: {:.1} MiB",
        median(rss)
    );
}

/// A Deployment of one sleeping pod, with a short grace period so replaced pods go fast.
fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "main", "image": "rkind/host",
                        "command": ["sleep", "3600"]}]
                }
            }
        }
    })
}

/// Polls until the Deployment's status shows `n` updated, ready and available replicas
/// and nothing else, for its current generation.
async fn wait_complete(api: &rkind::client::ApiClient, n: i64) {
    let start = Instant::now();
    loop {
        let d = api.get(&format!("{DEPLOY}/web")).await.expect("get");
        let s = &d["status"];
        if s["observedGeneration"] == d["metadata"]["generation"]
            && s["replicas"] == n
            && s["updatedReplicas"] == n
            && s["readyReplicas"] == n
            && s["availableReplicas"] == n
        {
            return;
        }
        assert!(start.elapsed() < LIMIT, "no {n} ready replicas: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// User plus system CPU ticks of `pid` and its reaped children, from /proc/PID/stat.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command name (which may hold spaces) start at state (field 3).
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime, stime, cutime, cstime are fields 14..=17, i.e. 11..=14 here.
    f[11] + f[12] + f[13] + f[14]
}

fn ticks_per_second() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64
}
