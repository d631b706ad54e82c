//! End-to-end tests of the API server's limits, over HTTPS with the cluster's admin
//! certificate: the watch window is bounded by bytes (old versions expire, a watcher
//! left behind is ended), and list/watch/write query parameters are checked as upstream
//! checks them.
//!
//! Isolation levels: root only (no container behaviour is under test here).

mod common;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use http::Method;
use rkind::client::{ApiClient, ClientError};
use serde_json::{Value, json};

use common::Cluster;

const CM: &str = "/api/v1/namespaces/default/configmaps";

/// A ConfigMap `name` with one value of about 900 KB that differs per `version`.
fn big_configmap(name: &str, version: usize) -> Value {
    let blob = format!("{version:06}-{}", "z".repeat(900 * 1000));
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": {"blob": blob}})
}

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

/// Sends a request and returns the status code and the decoded JSON body; panics if the
/// whole answer has not come within a minute (e.g. a watch that should have been refused).
async fn call(api: &ApiClient, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
    let what = format!("{method} {path}");
    tokio::time::timeout(Duration::from_secs(60), call_once(api, method, path, body))
        .await
        .unwrap_or_else(|_| panic!("{what}: no complete answer within 60 s"))
}

async fn call_once(
    api: &ApiClient,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let ct = if method == Method::PATCH {
        "application/merge-patch+json"
    } else {
        "application/json"
    };
    let bytes = body.map(|b| serde_json::to_vec(b).expect("json"));
    let (status, resp) = api
        .request(method, path, Some(ct), bytes)
        .await
        .expect("request");
    let v = serde_json::from_slice(&resp).unwrap_or(Value::Null);
    (status.as_u16(), v)
}

type Events = Pin<Box<dyn Stream<Item = Result<Value, ClientError>> + Send>>;

async fn open_watch(api: &ApiClient, path: &str) -> Events {
    Box::pin(api.watch(path).await.expect("watch accepted"))
}

/// Reads a watch until the server ends it; panics if it is still open after `secs`.
async fn read_to_end(events: &mut Events, secs: u64) -> Vec<Value> {
    let mut out = Vec::new();
    let read = async {
        while let Some(ev) = events.next().await {
            out.push(ev.expect("watch event"));
        }
    };
    let ended = tokio::time::timeout(Duration::from_secs(secs), read).await;
    assert!(
        ended.is_ok(),
        "the watch was still open after {secs} s (events so far: {})",
        out.len()
    );
    out
}

fn rv_of(v: &Value) -> u64 {
    v["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no resourceVersion in {v}"))
}

#[test]
fn the_watch_window_is_bounded_by_bytes() {
    let c = Cluster::start("window");
    let (addr, tls) = endpoint(&c);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let api = ApiClient::new(addr, tls.clone());
        let created = api
            .post(CM, &big_configmap("big", 0))
            .await
            .expect("create");
        let first = rv_of(&created);
        // A watcher that does not read while megabytes of changes go by.
        let stalled = ApiClient::new(addr, tls.clone());
        let mut events = open_watch(
            &stalled,
            &format!("{CM}?watch=true&resourceVersion={first}"),
        )
        .await;
        let mut last = first;
        for i in 1..=15 {
            last = rv_of(
                &api.put(&format!("{CM}/big"), &big_configmap("big", i))
                    .await
                    .expect("put"),
            );
        }

        // 15 versions of ~1.8 MB each (object and previous state) do not fit the
        // window: a watch from before them is 410 Expired, with upstream's message.
        let (code, status) = call(
            &api,
            Method::GET,
            &format!("{CM}?watch=true&resourceVersion={first}"),
            None,
        )
        .await;
        // Accepted (200), then one ERROR event with the 410 Status, as upstream's
        // watch cache answers; clients relist on it.
        assert_eq!(code, 200, "{status}");
        assert_eq!(status["type"], "ERROR", "{status}");
        let status = &status["object"];
        assert_eq!(status["code"], 410, "{status}");
        assert_eq!(status["reason"], "Expired", "{status}");
        let msg = status["message"].as_str().unwrap_or("");
        assert!(
            msg.starts_with(&format!("too old resource version: {first} (")),
            "{msg}"
        );
        // The newest version is still in the window.
        let (code, _) = call(
            &api,
            Method::GET,
            &format!(
                "{CM}?watch=true&resourceVersion={}&timeoutSeconds=1",
                last - 1
            ),
            None,
        )
        .await;
        assert_eq!(code, 200);

        // The stalled watcher, once it reads, gets what it had been given, then its
        // stream ends (it was left behind) instead of pinning the versions it missed.
        let got = read_to_end(&mut events, 120).await;
        let seen: Vec<u64> = got.iter().map(|e| rv_of(&e["object"])).collect();
        assert!(
            seen.len() < 15,
            "the stalled watcher got all 15 versions: {seen:?}"
        );
        // Re-watching from where it stopped is 410 Expired: the client must relist.
        let from = seen.last().copied().unwrap_or(first);
        let (code, status) = call(
            &api,
            Method::GET,
            &format!("{CM}?watch=true&resourceVersion={from}"),
            None,
        )
        .await;
        assert_eq!(code, 200, "{status}");
        assert_eq!(status["object"]["code"], 410, "{status}");
    });
}

#[test]
fn list_and_watch_parameters_are_checked_like_upstream() {
    let c = Cluster::start("params");
    let (addr, tls) = endpoint(&c);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let api = ApiClient::new(addr, tls.clone());
        for name in ["a", "b", "c"] {
            api.post(CM, &json!({"metadata": {"name": name}, "data": {"k": "v"}}))
                .await
                .expect("create");
        }

        // Integers that do not parse are 400 BadRequest with Go's ParseInt message.
        for (query, msg) in [
            ("watch=true&timeoutSeconds=abc", r#"strconv.ParseInt: parsing "abc": invalid syntax"#),
            ("watch=true&timeoutSeconds=", r#"strconv.ParseInt: parsing "": invalid syntax"#),
            (
                "watch=true&timeoutSeconds=99999999999999999999",
                r#"strconv.ParseInt: parsing "99999999999999999999": value out of range"#,
            ),
            ("limit=abc", r#"strconv.ParseInt: parsing "abc": invalid syntax"#),
            ("limit=1.5", r#"strconv.ParseInt: parsing "1.5": invalid syntax"#),
        ] {
            let (code, status) = call(&api, Method::GET, &format!("{CM}?{query}"), None).await;
            assert_eq!(code, 400, "{query}: {status}");
            assert_eq!(status["reason"], "BadRequest", "{query}: {status}");
            assert_eq!(status["message"], msg, "{query}");
        }

        // A negative limit is no limit (upstream), a positive one pages.
        let (code, all) = call(&api, Method::GET, &format!("{CM}?limit=-1"), None).await;
        assert_eq!(code, 200, "{all}");
        assert!(all["items"].as_array().map_or(0, Vec::len) >= 3, "{all}");
        assert!(all["metadata"]["continue"].is_null(), "{all}");
        let (_, page) = call(&api, Method::GET, &format!("{CM}?limit=2"), None).await;
        assert_eq!(page["items"].as_array().map_or(0, Vec::len), 2, "{page}");

        // A negative timeoutSeconds ends the watch at once (upstream's timer fires
        // immediately); a positive one after that long.
        let mut ended = open_watch(&api, &format!("{CM}?watch=true&timeoutSeconds=-5")).await;
        assert!(read_to_end(&mut ended, 60).await.is_empty());
        let mut timed = open_watch(
            &api,
            &format!("{CM}?watch=true&timeoutSeconds=1&resourceVersion=0"),
        )
        .await;
        let initial = read_to_end(&mut timed, 60).await;
        assert!(initial.len() >= 3, "{initial:?}");

        // A list of a resourceVersion the store has not reached waits, then fails with
        // upstream's 504 "Too large resource version".
        let current = rv_of(&api.get(CM).await.expect("list"));
        let huge = u64::MAX;
        let (code, status) = call(
            &api,
            Method::GET,
            &format!("{CM}?resourceVersion={huge}"),
            None,
        )
        .await;
        assert_eq!(code, 504, "{status}");
        assert_eq!(status["reason"], "Timeout");
        let msg = status["message"].as_str().unwrap_or("");
        assert!(
            msg.starts_with(&format!("Timeout: Too large resource version: {huge}, current: ")),
            "{msg}"
        );
        let at: u64 = msg.rsplit(' ').next().and_then(|s| s.parse().ok()).unwrap_or(0);
        assert!(at >= current, "{msg}");
        assert_eq!(
            status["details"]["causes"][0]["reason"],
            "ResourceVersionTooLarge",
            "{status}"
        );
        assert_eq!(status["details"]["retryAfterSeconds"], 1, "{status}");
        // A version the store has reached is served at once.
        let (code, _) = call(
            &api,
            Method::GET,
            &format!("{CM}?resourceVersion={current}"),
            None,
        )
        .await;
        assert_eq!(code, 200);

        // The same for a watch that asks for the initial state at that version: the
        // watch is accepted and its one event is the ERROR.
        let mut initial_events = open_watch(
            &api,
            &format!(
                "{CM}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&resourceVersion={huge}"
            ),
        )
        .await;
        let got = read_to_end(&mut initial_events, 60).await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0]["type"], "ERROR", "{got:?}");
        assert_eq!(got[0]["object"]["code"], 504, "{got:?}");
        assert_eq!(
            got[0]["object"]["details"]["causes"][0]["reason"],
            "ResourceVersionTooLarge"
        );
        // A plain watch from a future version waits for it, silently, until its
        // timeout (upstream's watch cache does not refuse it either).
        let mut future = open_watch(
            &api,
            &format!("{CM}?watch=true&resourceVersion={huge}&timeoutSeconds=2"),
        )
        .await;
        assert!(read_to_end(&mut future, 60).await.is_empty());
    });
}

#[test]
fn write_options_are_checked_like_upstream() {
    let c = Cluster::start("options");
    let (addr, tls) = endpoint(&c);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let api = ApiClient::new(addr, tls);
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "opts"}, "data": {"k": "v"}});

        let (code, status) = call(&api, Method::POST, &format!("{CM}?dryRun=Bogus"), Some(&cm)).await;
        assert_eq!(code, 422, "{status}");
        assert_eq!(status["reason"], "Invalid");
        assert_eq!(
            status["message"],
            r#"CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{"Bogus"}: supported values: "All""#
        );
        assert_eq!(status["details"]["kind"], "CreateOptions");
        assert_eq!(status["details"]["group"], "meta.k8s.io");
        assert_eq!(status["details"]["causes"][0]["field"], "dryRun");
        assert_eq!(status["details"]["causes"][0]["reason"], "FieldValueNotSupported");
        let (code, _) = call(&api, Method::GET, &format!("{CM}/opts"), None).await;
        assert_eq!(code, 404, "a refused create stores nothing");

        let (code, status) = call(
            &api,
            Method::POST,
            &format!("{CM}?fieldValidation=strict"),
            Some(&cm),
        )
        .await;
        assert_eq!(code, 422, "{status}");
        assert_eq!(
            status["message"],
            r#"CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "strict": supported values: "", "Ignore", "Strict", "Warn""#
        );
        // Both at once: upstream's aggregate.
        let (code, status) = call(
            &api,
            Method::POST,
            &format!("{CM}?dryRun=All&dryRun=x&fieldValidation=No"),
            Some(&cm),
        )
        .await;
        assert_eq!(code, 422, "{status}");
        assert_eq!(
            status["message"],
            r#"CreateOptions.meta.k8s.io "" is invalid: [dryRun: Unsupported value: []string{"All", "x"}: supported values: "All", fieldValidation: Unsupported value: "No": supported values: "", "Ignore", "Strict", "Warn"]"#
        );

        // The accepted values still work.
        for q in ["dryRun=All", "fieldValidation=Strict&dryRun=All", "fieldValidation="] {
            let (code, status) = call(&api, Method::POST, &format!("{CM}?{q}"), Some(&cm)).await;
            assert!(code == 201 || code == 200, "{q}: {status}");
            if q.contains("dryRun") {
                let (code, _) = call(&api, Method::GET, &format!("{CM}/opts"), None).await;
                assert_eq!(code, 404, "{q} is a dry run");
            }
        }

        let mut changed = cm.clone();
        changed["data"]["k"] = json!("w");
        let (code, status) = call(
            &api,
            Method::PUT,
            &format!("{CM}/opts?fieldValidation=Bogus"),
            Some(&changed),
        )
        .await;
        assert_eq!(code, 422, "{status}");
        assert_eq!(status["details"]["kind"], "UpdateOptions", "{status}");
        let (code, status) = call(
            &api,
            Method::PATCH,
            &format!("{CM}/opts?dryRun=yes"),
            Some(&json!({"data": {"k": "p"}})),
        )
        .await;
        assert_eq!(code, 422, "{status}");
        assert_eq!(
            status["message"],
            r#"PatchOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{"yes"}: supported values: "All""#
        );
        let (code, status) = call(&api, Method::DELETE, &format!("{CM}/opts?dryRun=1"), None).await;
        assert_eq!(code, 422, "{status}");
        assert_eq!(status["details"]["kind"], "DeleteOptions", "{status}");
        let (code, status) = call(
            &api,
            Method::DELETE,
            &format!("{CM}/opts"),
            Some(&json!({"kind": "DeleteOptions", "apiVersion": "v1", "dryRun": ["Some"]})),
        )
        .await;
        assert_eq!(code, 422, "{status}");
        let (code, kept) = call(&api, Method::GET, &format!("{CM}/opts"), None).await;
        assert_eq!(code, 200, "refused writes change nothing: {kept}");
        assert_eq!(kept["data"]["k"], "v");
    });
    // kubectl's own dry runs and validation modes are unaffected.
    let out = c.ok(&[
        "create",
        "configmap",
        "kc",
        "--from-literal=a=b",
        "--dry-run=server",
        "-o",
        "name",
    ]);
    assert_eq!(out.trim(), "configmap/kc");
    c.fails(&["get", "configmap", "kc"]);
    c.ok_stdin(
        &["apply", "--validate=strict", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kc\ndata:\n  a: b\n",
    );
    c.ok(&["get", "configmap", "kc"]);
}
