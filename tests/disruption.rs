//! PodDisruptionBudgets end to end: the disruption controller computes a budget's status
//! over an RC's pods (ALLOWED DISRUPTIONS as upstream), raw policy/v1 evictions are
//! refused with upstream's 429 body while the budget allows nothing and succeed (201,
//! the pod marked DisruptionTarget) once it does, and stock `kubectl cordon`, `drain`
//! and `uncordon` work against the node: drain is held by the budget (kubectl retries
//! the 429s until its timeout), finishes after the budget is relaxed, and a pod created
//! while the node is cordoned waits for the uncordon.

mod common;

use common::{Cluster, write_file};
use serde_json::Value;

const WAIT: u64 = 90;

const RC: &str = "apiVersion: v1
kind: ReplicationController
metadata:
  name: web
spec:
  replicas: 2
  selector:
    app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: rkind/host
        # SIGTERM ignored, so an evicted pod stays Terminating for its grace period at
        # every level (PID 1 ignores it anyway; at the unprivileged level sleep is not
        # PID 1 and would die at once).
        command: [\"sh\", \"-c\", \"trap '' TERM; exec sleep 3600\"]
";

const LATE: &str = "apiVersion: v1
kind: Pod
metadata:
  name: late
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: rkind/host
    command: [\"sleep\", \"3600\"]
";

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn get(c: &Cluster, what: &[&str]) -> Value {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.extend_from_slice(&["-o", "json"]);
    json(&c.ok(&args))
}

/// The RC's pods that are Running, Ready and not terminating.
fn ready_web_pods(c: &Cluster) -> Vec<String> {
    let list = get(c, &["pods", "-l", "app=web"]);
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter(|p| {
            p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .filter_map(|p| p["metadata"]["name"].as_str().map(String::from))
        .collect()
}

fn pdb_status(c: &Cluster) -> Value {
    get(c, &["pdb", "web"])["status"].clone()
}

/// Sends one raw HTTP/1.1 POST of a JSON body as the admin; returns code and body.
fn raw_post(c: &Cluster, path: &str, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    rkind::install_crypto_provider();
    let st = rkind::cluster::state::ClusterState::load(&c.data_dir()).expect("cluster state");
    let pki = rkind::pki::ClusterPki::load_or_create(
        &c.data_dir().join("pki"),
        &format!("{}-control-plane", c.name),
    )
    .expect("pki");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", st.api_port).parse().expect("addr");
    let cfg = pki.client_tls(&pki.admin).expect("admin tls");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let body = body.to_string();
    let path = path.to_string();
    rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut s = tokio_rustls::TlsConnector::from(cfg)
            .connect(
                rustls_pki_types::ServerName::IpAddress(addr.ip().into()),
                tcp,
            )
            .await
            .expect("TLS handshake");
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.expect("write request");
        let mut out = Vec::new();
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(60), s.read_to_end(&mut out)).await;
        let text = String::from_utf8_lossy(&out).into_owned();
        let code = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let payload = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        // The JSON object (a chunked body has its sizes around it).
        let json = match (payload.find('{'), payload.rfind('}')) {
            (Some(a), Some(b)) if b >= a => payload[a..=b].to_string(),
            _ => String::new(),
        };
        (code, json)
    })
}

fn eviction(pod: &str, extra: &str) -> String {
    format!(
        r#"{{"apiVersion":"policy/v1","kind":"Eviction","metadata":{{"name":"{pod}","namespace":"default"}}{extra}}}"#
    )
}

fn evict_path(pod: &str) -> String {
    format!("/api/v1/namespaces/default/pods/{pod}/eviction")
}

fn node_row(c: &Cluster, node: &str) -> String {
    c.ok(&["get", "nodes", node, "--no-headers"])
}

#[test]
fn budgets_hold_evictions_and_drain_until_relaxed() {
    let c = Cluster::start("disruption");
    let node = format!("{}-control-plane", c.name);
    // Nothing else runs on the node: drain only meets this test's pods.
    let before = get(&c, &["pods", "-A"]);
    assert_eq!(
        before["items"].as_array().map_or(0, Vec::len),
        0,
        "pods before the test: {before}"
    );
    c.ok_stdin(&["apply", "-f", "-"], RC);
    c.eventually(WAIT, "2 ready web pods", || ready_web_pods(&c).len() == 2);
    let pdb = write_file(
        c.dir.path(),
        "pdb.yaml",
        &std::fs::read_to_string(common::source_file("testdata/policy/pdb.yaml"))
            .expect("testdata/policy/pdb.yaml"),
    );
    c.ok(&["apply", "-f", &pdb.display().to_string()]);

    // The controller's status: all expected pods healthy, none may go.
    c.eventually(WAIT, "the budget's status", || {
        let st = pdb_status(&c);
        st["currentHealthy"] == 2
            && st["desiredHealthy"] == 2
            && st["expectedPods"] == 2
            && st["observedGeneration"] == 1
    });
    let st = pdb_status(&c);
    assert_eq!(st["disruptionsAllowed"], 0, "{st}");
    let cond = &st["conditions"][0];
    assert_eq!(cond["type"], "DisruptionAllowed", "{st}");
    assert_eq!(cond["status"], "False", "{st}");
    assert_eq!(cond["reason"], "InsufficientPods", "{st}");
    let table = c.ok(&["get", "pdb", "web"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(
        header,
        vec![
            "NAME",
            "MIN",
            "AVAILABLE",
            "MAX",
            "UNAVAILABLE",
            "ALLOWED",
            "DISRUPTIONS",
            "AGE"
        ],
        "{table}"
    );
    let row: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(&row[..4], &["web", "2", "N/A", "0"], "{table}");

    // A raw eviction is refused with upstream's body.
    let victim = ready_web_pods(&c)[0].clone();
    let (code, body) = raw_post(&c, &evict_path(&victim), &eviction(&victim, ""));
    assert_eq!(code, 429, "{body}");
    let status = json(&body);
    assert_eq!(status["reason"], "TooManyRequests", "{body}");
    assert_eq!(
        status["message"], "Cannot evict pod as it would violate the pod's disruption budget.",
        "{body}"
    );
    assert_eq!(status["details"]["causes"][0]["reason"], "DisruptionBudget");
    assert_eq!(
        status["details"]["causes"][0]["message"],
        "The disruption budget web needs 2 healthy pods and has 2 currently"
    );
    assert_eq!(ready_web_pods(&c).len(), 2, "nothing was evicted");

    // Cordon: the node shows SchedulingDisabled and a new pod waits.
    let out = c.ok(&["cordon", &node]);
    assert!(out.contains(&format!("node/{node} cordoned")), "{out}");
    assert!(
        node_row(&c, &node).contains("Ready,SchedulingDisabled"),
        "{}",
        node_row(&c, &node)
    );
    c.ok_stdin(&["apply", "-f", "-"], LATE);

    // Drain evicts through policy/v1, retries the 429s and gives up at its timeout.
    let out = c.kubectl(&[
        "drain",
        &node,
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=20s",
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "drain should be refused:\n{text}");
    assert!(
        text.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{text}"
    );
    assert!(text.contains("will retry after 5s"), "{text}");
    assert_eq!(ready_web_pods(&c).len(), 2, "the budget held:\n{text}");
    let late = get(&c, &["pod", "late"]);
    assert!(
        late["spec"]["nodeName"].is_null() && late["status"]["phase"] == "Pending",
        "a pod created on a cordoned cluster stays Pending: {late}"
    );

    // One disruption allowed: an eviction goes through and marks the pod.
    c.ok(&[
        "patch",
        "pdb",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"minAvailable":1}}"#,
    ]);
    c.eventually(WAIT, "one allowed disruption", || {
        let st = pdb_status(&c);
        st["disruptionsAllowed"] == 1 && st["observedGeneration"] == 2
    });
    let victim = ready_web_pods(&c)[0].clone();
    let (code, body) = raw_post(
        &c,
        &evict_path(&victim),
        &eviction(&victim, r#","deleteOptions":{"gracePeriodSeconds":30}"#),
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(json(&body)["status"], "Success", "{body}");
    let pod = get(&c, &["pod", &victim]);
    assert!(pod["metadata"]["deletionTimestamp"].is_string(), "{pod}");
    let target = pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "DisruptionTarget")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(target["status"], "True", "{pod}");
    assert_eq!(target["reason"], "EvictionByEvictionAPI", "{pod}");
    assert_eq!(target["message"], "Eviction API: evicting", "{pod}");

    // The eviction spent the disruption: the next one is refused.
    let other = ready_web_pods(&c)
        .into_iter()
        .find(|p| *p != victim)
        .expect("the other web pod");
    let (code, body) = raw_post(&c, &evict_path(&other), &eviction(&other, ""));
    assert_eq!(code, 429, "{body}");

    // Relaxed to nothing: drain evicts everything and finishes.
    c.ok(&[
        "patch",
        "pdb",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"minAvailable":0}}"#,
    ]);
    c.eventually(WAIT, "the relaxed budget is observed", || {
        pdb_status(&c)["observedGeneration"] == 3
    });
    let out = c.kubectl(&[
        "drain",
        &node,
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=90s",
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "drain:\n{text}");
    assert!(text.contains(&format!("node/{node} drained")), "{text}");
    assert!(text.contains(&format!("pod/{other} evicted")), "{text}");

    // Uncordon: scheduling resumes, the waiting pods run.
    let out = c.ok(&["uncordon", &node]);
    assert!(out.contains(&format!("node/{node} uncordoned")), "{out}");
    assert!(
        !node_row(&c, &node).contains("SchedulingDisabled"),
        "{}",
        node_row(&c, &node)
    );
    c.eventually(WAIT, "the late pod runs after the uncordon", || {
        get(&c, &["pod", "late"])["status"]["phase"] == "Running"
    });
    c.eventually(WAIT, "the RC's replacements are ready", || {
        ready_web_pods(&c).len() == 2
    });

    c.ok(&["delete", "pdb", "web"]);
    c.ok(&["delete", "rc", "web"]);
    c.ok(&["delete", "pod", "late"]);
    c.eventually(WAIT, "every pod is gone", || {
        get(&c, &["pods", "-A"])["items"]
            .as_array()
            .is_none_or(Vec::is_empty)
    });
}

/// A dry run answers Success and spends nothing; two budgets over one pod are upstream's
/// 500.
#[test]
fn overlapping_budgets_dry_runs_and_unhealthy_pods() {
    let c = Cluster::start("disruption-edge");
    c.ok_stdin(&["apply", "-f", "-"], RC);
    c.eventually(WAIT, "2 ready web pods", || ready_web_pods(&c).len() == 2);
    c.ok(&[
        "create",
        "pdb",
        "web",
        "--selector=app=web",
        "--min-available=1",
    ]);
    c.eventually(WAIT, "one allowed disruption", || {
        pdb_status(&c)["disruptionsAllowed"] == 1
    });
    let victim = ready_web_pods(&c)[0].clone();

    // A dry run answers Success and spends nothing.
    let (code, body) = raw_post(
        &c,
        &format!("{}?dryRun=All", evict_path(&victim)),
        &eviction(&victim, ""),
    );
    assert_eq!(code, 201, "{body}");
    let st = pdb_status(&c);
    assert_eq!(st["disruptionsAllowed"], 1, "{st}");
    assert!(st["disruptedPods"].is_null(), "{st}");
    assert!(get(&c, &["pod", &victim])["metadata"]["deletionTimestamp"].is_null());

    // A second budget over the same pods.
    c.ok(&[
        "create",
        "pdb",
        "web2",
        "--selector=app=web",
        "--max-unavailable=1",
    ]);
    let (code, body) = raw_post(&c, &evict_path(&victim), &eviction(&victim, ""));
    assert_eq!(code, 500, "{body}");
    assert_eq!(
        json(&body)["message"],
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
        "{body}"
    );
    c.ok(&["delete", "pdb", "web2"]);

    c.ok(&["delete", "pdb", "web"]);
    c.ok(&["delete", "rc", "web"]);
    c.eventually(WAIT, "every pod is gone", || {
        get(&c, &["pods", "-A"])["items"]
            .as_array()
            .is_none_or(Vec::is_empty)
    });
}
