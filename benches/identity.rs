//! Identity and CRD benchmark (not a test), on a release `rkind up`:
//! - a token request (`serviceaccounts/bot/token`) over HTTPS, median latency;
//! - listing pods as the admin certificate (the privileged group, no RBAC walk) and as a
//!   service account's token allowed by a RoleBinding (token check plus RBAC), median
//!   latency of each and their difference;
//! - the RBAC decision itself, timed in process on the cluster's own store after it
//!   stopped (the bootstrap policy plus the bench's Role), allowed and denied;
//! - how long after its create a CRD is served (its group version in discovery and in
//!   OpenAPI v3);
//! - 1,000 custom resources created by 32 concurrent requests on one HTTP/2 connection;
//! - reading a custom resource in its storage version and in a version a conversion
//!   webhook (a TLS server in this process) converts to: one object, and a list of 100
//!   converted in one review.
//!
//! Run with `scripts/bench.sh` (release build).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;
use common::{api_addr, median, pki_for, start, stop};

use rkind::apiserver::authz::{Attributes, Authorizer};
use rkind::client::ApiClient;
use rkind::pki::UserInfo;

/// Samples for each latency median.
const SAMPLES: usize = 300;
/// CRDs created one after another for the "served" figure.
const CRDS: usize = 5;
/// Custom resources created for the throughput figure, and requests in flight.
const OBJECTS: usize = 1000;
const IN_FLIGHT: usize = 32;
/// The longest a CRD may take to be served before the benchmark gives up.
const LIMIT: Duration = Duration::from_secs(30);

fn main() {
    rkind::install_crypto_provider();
    println!("rkind identity and CRDs (one cluster; medians)");
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, _) = start(dir.path());
    let data = dir.path().join("data");
    let pki = pki_for(&data);
    let addr: SocketAddr = api_addr(&data);
    let admin_tls = pki.client_tls(&pki.admin).expect("tls");
    let anonymous_tls = Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(pki.roots().expect("roots"))
            .with_no_client_auth(),
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let admin = Arc::new(ApiClient::new(addr, admin_tls));
        let token = grant_bot(&admin).await;

        let token_ms = median_ms(SAMPLES, || async {
            request_token(&admin).await;
        })
        .await;
        println!("token request: p50 {:.3} ms", token_ms);

        let bot = ApiClient::new(addr, anonymous_tls).with_bearer(token);
        let list = "/api/v1/namespaces/default/pods?limit=1";
        admin.get(list).await.expect("admin list");
        bot.get(list).await.expect("bot list");
        let admin_ms = median_ms(SAMPLES, || async {
            admin.get(list).await.expect("admin list");
        })
        .await;
        let bot_ms = median_ms(SAMPLES, || async {
            bot.get(list).await.expect("bot list");
        })
        .await;
        println!(
            "list pods: admin certificate p50 {:.3} ms, service-account token + RBAC p50 {:.3} ms \
             (+{:.0} µs)",
            admin_ms,
            bot_ms,
            (bot_ms - admin_ms) * 1000.0
        );

        let (mut in_discovery, mut served) = (Vec::new(), Vec::new());
        for i in 0..CRDS {
            let (d, s) = crd_served_ms(&admin, &format!("g{i}.bench.example.com")).await;
            in_discovery.push(d);
            served.push(s);
        }
        println!(
            "CRD served after create: in discovery p50 {:.1} ms, in discovery and OpenAPI v3 \
             p50 {:.1} ms (of {CRDS})",
            median(in_discovery),
            median(served)
        );

        let rate = create_objects(&admin).await;
        println!("{OBJECTS} custom resources, {IN_FLIGHT} in flight: {rate:.0} objects/s");

        conversion(&admin).await;
    });
    stop(child);

    let store = Arc::new(rkind::store::Store::open_sled(&data.join("store")).expect("store"));
    let authz = Authorizer::new(store);
    let bot = UserInfo {
        name: "system:serviceaccount:default:bot".into(),
        groups: vec![
            "system:serviceaccounts".into(),
            "system:serviceaccounts:default".into(),
            "system:authenticated".into(),
        ],
        ..UserInfo::default()
    };
    let ask = |verb: &str| Attributes {
        verb: verb.into(),
        resource_request: true,
        resource: "pods".into(),
        namespace: "default".into(),
        ..Attributes::default()
    };
    let (list, delete) = (ask("list"), ask("delete"));
    assert!(
        authz.authorize(&bot, &list).allowed(),
        "the bot may list pods"
    );
    assert!(
        !authz.authorize(&bot, &delete).allowed(),
        "the bot may not delete"
    );
    let allowed = decision_us(&authz, &bot, &list);
    let denied = decision_us(&authz, &bot, &delete);
    println!("RBAC decision in process: allowed p50 {allowed:.1} µs, denied p50 {denied:.1} µs");
}

/// A service account `bot` that may get, list and watch pods, and a token for it.
async fn grant_bot(admin: &ApiClient) -> String {
    admin
        .post(
            "/api/v1/namespaces/default/serviceaccounts",
            &json!({"metadata": {"name": "bot"}}),
        )
        .await
        .expect("sa");
    admin
        .post(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
            &json!({"metadata": {"name": "pod-reader"}, "rules": [{"apiGroups": [""],
                "resources": ["pods"], "verbs": ["get", "list", "watch"]}]}),
        )
        .await
        .expect("role");
    admin
        .post(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
            &json!({"metadata": {"name": "bot-reads"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "pod-reader"},
                "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": "default"}]}),
        )
        .await
        .expect("binding");
    request_token(admin).await
}

async fn request_token(admin: &ApiClient) -> String {
    let tr = admin
        .post(
            "/api/v1/namespaces/default/serviceaccounts/bot/token",
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": 3600}}),
        )
        .await
        .expect("token");
    tr["status"]["token"]
        .as_str()
        .expect("a token in the answer")
        .to_string()
}

/// Median wall time of `n` sequential runs of `f`, in ms.
async fn median_ms<F, Fut>(n: usize, f: F) -> f64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f().await;
        v.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    median(v)
}

/// Creates a namespaced CRD in `group` and returns the ms from its create answer until
/// its group version is in discovery, and until it is in OpenAPI v3 too.
async fn crd_served_ms(admin: &ApiClient, group: &str) -> (f64, f64) {
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("gizmos.{group}")},
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "size": {"type": "integer"}}}}}}}]
        }
    });
    admin
        .post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            &crd,
        )
        .await
        .expect("crd");
    let t = Instant::now();
    let discovery = format!("/apis/{group}/v1");
    let openapi = format!("/openapi/v3/apis/{group}/v1");
    let mut in_discovery = None;
    loop {
        if in_discovery.is_none()
            && admin
                .get(&discovery)
                .await
                .map(|d| d["resources"].as_array().is_some_and(|r| !r.is_empty()))
                .unwrap_or(false)
        {
            in_discovery = Some(t.elapsed().as_secs_f64() * 1000.0);
        }
        if let Some(d) = in_discovery
            && admin.get(&openapi).await.is_ok()
        {
            return (d, t.elapsed().as_secs_f64() * 1000.0);
        }
        assert!(t.elapsed() < LIMIT, "{group} not served after {LIMIT:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Creates [`OBJECTS`] gizmos in the first bench group; returns objects per second.
async fn create_objects(admin: &Arc<ApiClient>) -> f64 {
    let path = "/apis/g0.bench.example.com/v1/namespaces/default/gizmos";
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (admin, next) = (admin.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= OBJECTS {
                    return;
                }
                let g: Value = json!({"apiVersion": "g0.bench.example.com/v1", "kind": "Gizmo",
                    "metadata": {"name": format!("gizmo-{i}")}, "spec": {"size": i}});
                admin.post(path, &g).await.expect("create gizmo");
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let rate = OBJECTS as f64 / t.elapsed().as_secs_f64();
    let listed = admin.get(path).await.expect("list");
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(OBJECTS),
        "every gizmo stored"
    );
    rate
}

/// Objects listed through the conversion webhook.
const CONVERTED: usize = 100;

/// A conversion webhook on 127.0.0.1 (one thread per connection, as the API server opens
/// one per review): relabels every object to the desired version. Returns its port and
/// its certificate as a `caBundle`.
fn start_converter() -> (u16, String) {
    use base64::Engine;
    use std::io::{BufRead, BufReader, Read, Write};
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).expect("cert");
    let ca = base64::engine::general_purpose::STANDARD.encode(cert.cert.pem());
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).expect("key");
    let tls = Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .expect("server config"),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let tls = tls.clone();
            std::thread::spawn(move || -> std::io::Result<()> {
                let conn = rustls::ServerConnection::new(tls).map_err(std::io::Error::other)?;
                let mut stream = rustls::StreamOwned::new(conn, tcp);
                let mut reader = BufReader::new(&mut stream);
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line)?;
                    let line = line.trim_end().to_ascii_lowercase();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body)?;
                let review: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let desired = review["request"]["desiredAPIVersion"].clone();
                let objects: Vec<Value> = review["request"]["objects"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|o| {
                        let mut o = o.clone();
                        o["apiVersion"] = desired.clone();
                        o
                    })
                    .collect();
                let out =
                    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
                    "response": {"uid": review["request"]["uid"], "convertedObjects": objects,
                        "result": {"status": "Success"}}})
                    .to_string();
                write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{out}",
                    out.len()
                )?;
                stream.flush()
            });
        }
    });
    (port, ca)
}

/// GET one object and LIST [`CONVERTED`] in the storage version and through the webhook.
async fn conversion(admin: &ApiClient) {
    let (port, ca) = start_converter();
    let group = "conv.bench.example.com";
    let schema = json!({"openAPIV3Schema": {"type": "object", "properties": {
        "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}});
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("gizmos.{group}")},
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo"},
            "versions": [
                {"name": "v1", "served": true, "storage": true, "schema": schema},
                {"name": "v2", "served": true, "storage": false, "schema": schema}],
            "conversion": {"strategy": "Webhook", "webhook": {
                "conversionReviewVersions": ["v1"],
                "clientConfig": {"url": format!("https://127.0.0.1:{port}/convert"), "caBundle": ca}}}
        }
    });
    admin
        .post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            &crd,
        )
        .await
        .expect("crd");
    let path = |v: &str| format!("/apis/{group}/{v}/namespaces/default/gizmos");
    let t = Instant::now();
    for i in 0..CONVERTED {
        let g = json!({"apiVersion": format!("{group}/v1"), "kind": "Gizmo",
            "metadata": {"name": format!("g{i}")}, "spec": {"size": i}});
        loop {
            match admin.post(&path("v1"), &g).await {
                Ok(_) => break,
                Err(_) if t.elapsed() < LIMIT => tokio::time::sleep(Duration::from_millis(5)).await,
                Err(e) => panic!("create gizmo: {e}"),
            }
        }
    }
    let one = |v: &str| format!("{}/g0", path(v));
    let converted = admin.get(&one("v2")).await.expect("converted get");
    assert_eq!(converted["apiVersion"], format!("{group}/v2"));
    let get_v1 = median_ms(SAMPLES, || async {
        admin.get(&one("v1")).await.expect("get v1");
    })
    .await;
    let get_v2 = median_ms(SAMPLES, || async {
        admin.get(&one("v2")).await.expect("get v2");
    })
    .await;
    let list_v1 = median_ms(SAMPLES / 3, || async {
        admin.get(&path("v1")).await.expect("list v1");
    })
    .await;
    let list_v2 = median_ms(SAMPLES / 3, || async {
        let l = admin.get(&path("v2")).await.expect("list v2");
        assert_eq!(l["items"].as_array().map(Vec::len), Some(CONVERTED));
    })
    .await;
    println!(
        "custom resource read: GET stored version p50 {get_v1:.3} ms, through the conversion \
         webhook p50 {get_v2:.3} ms (+{:.3}); LIST {CONVERTED} p50 {list_v1:.3} ms, converted in \
         one review p50 {list_v2:.3} ms",
        get_v2 - get_v1
    );
}

/// Median µs of one authorisation decision, over batches of 1,000.
fn decision_us(authz: &Authorizer, user: &UserInfo, attrs: &Attributes) -> f64 {
    let mut v = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        for _ in 0..1000 {
            std::hint::black_box(authz.authorize(user, attrs));
        }
        v.push(t.elapsed().as_secs_f64() * 1e6 / 1000.0);
    }
    median(v)
}
