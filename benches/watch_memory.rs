//! Watch-cache memory benchmark (not a test): the RSS of a release `rkind up` when idle,
//! right after a burst of PUTs of a ~1 MB ConfigMap, and some seconds after the burst
//! (does the memory come back?), plus the RSS while a watcher that never reads stays
//! open during a second burst. Medians over several clusters. Run with
//! `scripts/bench.sh` (release build).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};

mod common;
use common::{api_addr, median, pki_for, rss_kib, start, stop};

/// PUTs per burst.
const PUTS: usize = 200;
/// Size of the ConfigMap's one value.
const BLOB: usize = 1024 * 1024;
/// How long after the burst the "settled" figure is taken.
const SETTLE: Duration = Duration::from_secs(10);
/// Clusters measured (each figure is the median over them).
const ROUNDS: usize = 3;

const CM: &str = "/api/v1/namespaces/default/configmaps";

fn main() {
    rkind::install_crypto_provider();
    println!(
        "rkind watch-cache memory ({PUTS} PUTs of a {} KiB ConfigMap; medians of {ROUNDS} clusters)",
        BLOB / 1024
    );
    let mut idle = Vec::new();
    let mut burst = Vec::new();
    let mut settled = Vec::new();
    let mut stalled = Vec::new();
    let mut stalled_after = Vec::new();
    for _ in 0..ROUNDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let (child, _) = start(dir.path());
        let pid = child.id();
        std::thread::sleep(Duration::from_secs(2));
        idle.push(sample(pid));

        let data = dir.path().join("data");
        let pki = pki_for(&data);
        let addr: SocketAddr = api_addr(&data);
        let tls = pki.client_tls(&pki.admin).expect("tls");
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let api = rkind::client::ApiClient::new(addr, tls.clone());
            api.post(CM, &configmap(0)).await.expect("create");
            for i in 1..=PUTS {
                api.put(&format!("{CM}/big"), &configmap(i))
                    .await
                    .expect("put");
            }
        });
        burst.push(sample(pid));
        std::thread::sleep(SETTLE);
        settled.push(sample(pid));

        // A watcher that never reads its stream while another burst goes by: what it
        // can pin (its own buffers, the shared event window) shows up here.
        rt.block_on(async {
            let watcher = Arc::new(rkind::client::ApiClient::new(addr, tls.clone()));
            let rv = watcher.get(CM).await.expect("list")["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or("0")
                .to_string();
            let stream = watcher
                .watch(&format!("{CM}?watch=true&resourceVersion={rv}"))
                .await
                .expect("watch");
            let mut stream = Box::pin(stream);
            let api = rkind::client::ApiClient::new(addr, tls.clone());
            for i in 1..=PUTS {
                api.put(&format!("{CM}/big"), &configmap(PUTS + i))
                    .await
                    .expect("put");
            }
            stalled.push(sample(pid));
            // Let the watcher go: it reads what it is given (it may be ended as too slow).
            let drain = async { while let Some(Ok(_)) = stream.next().await {} };
            let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
        });
        std::thread::sleep(SETTLE);
        stalled_after.push(sample(pid));
        stop(child);
    }
    let mb = |v: Vec<f64>| median(v);
    println!(
        "idle RSS:                                  {:.1} MB  (goal < 30 MB)",
        mb(idle)
    );
    println!(
        "RSS right after the burst:                 {:.1} MB",
        mb(burst)
    );
    println!(
        "RSS {} s after the burst:                  {:.1} MB  (should be back near idle)",
        SETTLE.as_secs(),
        mb(settled)
    );
    println!(
        "RSS after a burst with a stalled watcher:  {:.1} MB",
        mb(stalled)
    );
    println!(
        "RSS {} s after that watcher went away:     {:.1} MB",
        SETTLE.as_secs(),
        mb(stalled_after)
    );
}

/// The median of five RSS samples 200 ms apart, in MB.
fn sample(pid: u32) -> f64 {
    let mut v = Vec::new();
    for _ in 0..5 {
        v.push(rss_kib(pid) as f64 / 1024.0);
        std::thread::sleep(Duration::from_millis(200));
    }
    median(v)
}

/// The ConfigMap `big` with one ~1 MB value that differs per version `i`.
fn configmap(i: usize) -> Value {
    let mut blob = format!("{i:08}-");
    let fill = char::from(b'a' + (i % 26) as u8);
    blob.extend(std::iter::repeat_n(fill, BLOB - blob.len()));
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "big", "namespace": "default"},
        "data": {"blob": blob}})
}
