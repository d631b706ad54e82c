//! API server under load (not a test): 50 concurrent clients, each on its own HTTP/2
//! connection with the admin certificate, for 60 s (`RKIND_LOAD_SECS` to change), doing
//! what controllers and kubectl do — list pods of a namespace, get one pod, list
//! configmaps, update a configmap, create and delete one. Prints p50/p99 per request
//! class and overall, and the RSS of the rkind process idle, at the end of the load, and
//! 10 s after it. Goals (issue 12): p99 < 50 ms, RSS back near idle afterwards.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

mod common;
use common::{api_addr, pki_for, rss_kib, start, stop};

const CLIENTS: usize = 50;

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

fn main() {
    rkind::install_crypto_provider();
    let secs: u64 = std::env::var("RKIND_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, _) = start(dir.path());
    std::thread::sleep(Duration::from_secs(3));
    let idle = rss_kib(child.id()) as f64 / 1024.0;
    let data = dir.path().join("data");
    let pki = pki_for(&data);
    let addr: SocketAddr = api_addr(&data);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (classes, after_load) = rt.block_on(async {
        let admin = Arc::new(rkind::client::ApiClient::new(
            addr,
            pki.client_tls(&pki.admin).expect("tls"),
        ));
        // 100 unscheduled pods to list and get.
        for i in 0..100 {
            let pod = json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":format!("p{i}"),"labels":{"app":"load"}},
                "spec":{"schedulerName":"none","containers":[{"name":"c","image":"rkind/host"}]}});
            admin
                .post("/api/v1/namespaces/default/pods", &pod)
                .await
                .expect("seed pod");
        }
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut handles = Vec::new();
        for w in 0..CLIENTS {
            // One connection per client, as 50 separate processes would have.
            let api = rkind::client::ApiClient::new(addr, pki.client_tls(&pki.admin).expect("tls"));
            handles.push(tokio::spawn(async move {
                let mut out: Vec<(&'static str, f64)> = Vec::new();
                let cm = format!("/api/v1/namespaces/default/configmaps/load-{w}");
                let body = json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":format!("load-{w}")},"data":{"n":"0"}});
                api.post("/api/v1/namespaces/default/configmaps", &body)
                    .await
                    .expect("configmap");
                let mut n = 0u64;
                while Instant::now() < deadline {
                    n += 1;
                    let t = Instant::now();
                    let (class, ok) = match n % 10 {
                        0..=3 => ("list pods", api.get("/api/v1/namespaces/default/pods?labelSelector=app%3Dload").await.is_ok()),
                        4..=6 => ("get pod", api.get(&format!("/api/v1/namespaces/default/pods/p{}", n % 100)).await.is_ok()),
                        7 => ("list configmaps", api.get("/api/v1/namespaces/default/configmaps").await.is_ok()),
                        8 => ("update configmap", api.merge_patch(&cm, &json!({"data": {"n": n.to_string()}})).await.is_ok()),
                        _ => {
                            let name = format!("tmp-{w}-{n}");
                            let ok = api
                                .post("/api/v1/namespaces/default/configmaps", &json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name": name}}))
                                .await
                                .is_ok()
                                && api.delete(&format!("/api/v1/namespaces/default/configmaps/{name}"), None).await.is_ok();
                            ("create+delete configmap", ok)
                        }
                    };
                    assert!(ok, "{class} failed");
                    out.push((class, t.elapsed().as_secs_f64() * 1000.0));
                }
                out
            }));
        }
        let mut all: Vec<(&'static str, f64)> = Vec::new();
        for h in handles {
            all.extend(h.await.expect("join"));
        }
        (all, rss_kib(child.id()) as f64 / 1024.0)
    });
    std::thread::sleep(Duration::from_secs(10));
    let settled = rss_kib(child.id()) as f64 / 1024.0;
    stop(child);

    println!("rkind API server under load: {CLIENTS} clients, {secs} s");
    let mut total: Vec<f64> = classes.iter().map(|(_, ms)| *ms).collect();
    let count = total.len();
    for class in [
        "list pods",
        "get pod",
        "list configmaps",
        "update configmap",
        "create+delete configmap",
    ] {
        let mut v: Vec<f64> = classes
            .iter()
            .filter(|(c, _)| *c == class)
            .map(|(_, ms)| *ms)
            .collect();
        println!(
            "  {class:<24} n={:<7} p50 {:>7.2} ms  p99 {:>7.2} ms",
            v.len(),
            pct(&mut v, 0.5),
            pct(&mut v, 0.99)
        );
    }
    println!(
        "  all                      n={count:<7} p50 {:>7.2} ms  p99 {:>7.2} ms  (goal p99 < 50 ms)  {:.0} req/s",
        pct(&mut total, 0.5),
        pct(&mut total, 0.99),
        count as f64 / secs as f64
    );
    println!(
        "RSS: idle {idle:.1} MB, end of load {after_load:.1} MB, 10 s later {settled:.1} MB  (goal: back near idle; idle < 30 MB)"
    );
}
