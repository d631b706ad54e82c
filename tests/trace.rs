//! `rkind trace`: every kind of session leaves a trace whose hops, bytes and outcome
//! match what happened; the JSON validates against docs/trace-schema.json; the HTML
//! page renders in headless Chromium; the debug endpoint refuses strangers.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::Cluster;
use serde_json::Value;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn start_box(c: &Cluster) {
    c.ok(&[
        "run",
        "box",
        "--image=rkind/host",
        "--restart=Never",
        "--",
        "sleep",
        "3600",
    ]);
    c.ok(&["wait", "--for=condition=Ready", "pod/box", "--timeout=60s"]);
}

/// `rkind trace KIND -o json`, validated against the documented schema.
fn traces(c: &Cluster, kind: &str) -> Vec<Value> {
    let data = c.data_dir();
    let out = c.rkind(&[
        "trace",
        kind,
        "-o",
        "json",
        "--limit",
        "50",
        "--name",
        &c.name,
        "--data-dir",
        &data.display().to_string(),
    ]);
    assert!(out.status.success(), "rkind trace: {}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("trace JSON");
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(common::source_file("docs/trace-schema.json"))
            .expect("docs/trace-schema.json"),
    )
    .expect("schema JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "schema violations: {errors:#?}\n{doc:#}");
    doc["traces"].as_array().cloned().unwrap_or_default()
}

/// The newest trace whose command contains `marker` (waits for it to be recorded).
fn trace_with(c: &Cluster, kind: &str, marker: &str) -> Value {
    let mut found = None;
    c.eventually(10, &format!("a {kind} trace for {marker:?}"), || {
        found = traces(c, kind).into_iter().rev().find(|t| {
            t["command"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|w| w.as_str().is_some_and(|w| w.contains(marker)))
            }) && t["outcome"].is_object()
        });
        found.is_some()
    });
    found.expect("trace")
}

fn hop<'a>(t: &'a Value, id: &str) -> &'a Value {
    t["hops"]
        .as_array()
        .and_then(|h| h.iter().find(|h| h["id"] == id))
        .unwrap_or_else(|| panic!("no {id} hop in {t:#}"))
}

fn stream<'a>(h: &'a Value, name: &str) -> &'a Value {
    h["streams"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no {name} stream in {h:#}"))
}

fn ms(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// Hops start in chain order and each inner hop ends within the one that carries it
/// (1 ms slack for the order in which concurrent tasks write their records).
fn assert_nested(t: &Value) {
    let ids = [
        "kubectl_to_apiserver",
        "apiserver_to_kubelet",
        "kubelet_to_cri",
        "kubelet_to_streaming_server",
        "streaming_server_to_process",
    ];
    let got: Vec<&str> = t["hops"]
        .as_array()
        .expect("hops")
        .iter()
        .filter_map(|h| h["id"].as_str())
        .collect();
    assert_eq!(got, ids, "{t:#}");
    let span = |id: &str| {
        let h = hop(t, id);
        (
            ms(&h["offsetMs"]),
            ms(&h["offsetMs"]) + ms(&h["durationMs"]),
        )
    };
    let mut last_start = 0.0;
    for id in ids {
        let (s, _) = span(id);
        assert!(
            s + 1e-6 >= last_start,
            "{id} starts before the hop before it: {t:#}"
        );
        last_start = s;
    }
    for (inner, outer) in [
        ("apiserver_to_kubelet", "kubectl_to_apiserver"),
        ("kubelet_to_cri", "apiserver_to_kubelet"),
        ("kubelet_to_streaming_server", "apiserver_to_kubelet"),
        ("streaming_server_to_process", "kubelet_to_streaming_server"),
    ] {
        let (is, ie) = span(inner);
        let (os, oe) = span(outer);
        assert!(
            is >= os && ie <= oe + 1.0,
            "{inner} [{is:.3}, {ie:.3}] is not within {outer} [{os:.3}, {oe:.3}]: {t:#}"
        );
    }
    assert!(
        ms(&t["durationMs"]) + 1.0 >= span("kubectl_to_apiserver").1,
        "{t:#}"
    );
}

fn kubectl_with(
    c: &Cluster,
    env: &[(&str, &str)],
    args: &[&str],
    stdin: &[u8],
) -> std::process::Output {
    let mut child = Command::new("kubectl")
        .args(args)
        .envs(c.envs())
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl");
    let mut w = child.stdin.take().expect("stdin");
    w.write_all(stdin).expect("stdin");
    drop(w);
    child.wait_with_output().expect("kubectl")
}

#[test]
fn exec_sessions_are_traced_hop_by_hop() {
    let c = Cluster::start("trace-exec");
    start_box(&c);

    // WebSocket (kubectl's default): stdin, stdout and stderr counted, exit code kept.
    let out = kubectl_with(
        &c,
        &[],
        &[
            "exec",
            "-i",
            "box",
            "--",
            "sh",
            "-c",
            "cat; printf err >&2; exit 4 # ws-marker",
        ],
        b"12345",
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "12345");
    let t = trace_with(&c, "exec", "ws-marker");
    assert_nested(&t);
    assert_eq!(t["pod"], "default/box");
    assert_eq!(t["container"], "box");
    assert_eq!(t["outcome"]["status"], "Failure");
    assert_eq!(t["outcome"]["exitCode"], 4);
    let client = hop(&t, "kubectl_to_apiserver");
    assert_eq!(client["request"]["upgrade"], "websocket");
    assert_eq!(client["request"]["negotiatedProtocol"], "v5.channel.k8s.io");
    assert_eq!(client["request"]["status"], 101);
    assert_eq!(client["connection"]["transport"], "TLS 1.3 over TCP");
    assert!(
        client["connection"]["callerSubject"]
            .as_str()
            .is_some_and(|s| s.contains("O=system:masters")),
        "{client:#}"
    );
    assert_eq!(stream(client, "stdin")["bytesIn"], 5);
    assert_eq!(stream(client, "stdout")["bytesOut"], 5);
    assert_eq!(stream(client, "stderr")["bytesOut"], 3);
    let kubelet = hop(&t, "apiserver_to_kubelet");
    assert_eq!(
        kubelet["request"]["negotiatedProtocol"],
        "v4.channel.k8s.io"
    );
    assert_eq!(
        kubelet["connection"]["callerSubject"],
        "CN=kube-apiserver-kubelet-client, O=kubeadm:cluster-admins"
    );
    assert!(
        kubelet["connection"]["calleeSubject"]
            .as_str()
            .is_some_and(|s| s.contains("trace-exec-control-plane")),
        "{kubelet:#}"
    );
    let cri = hop(&t, "kubelet_to_cri");
    assert_eq!(cri["grpc"]["method"], "/runtime.v1.RuntimeService/Exec");
    assert_eq!(cri["grpc"]["request"]["cmd"][0], "sh");
    assert!(
        cri["grpc"]["responseUrl"]
            .as_str()
            .is_some_and(|u| u.ends_with("/exec/********")),
        "token masked: {cri:#}"
    );
    let streaming = hop(&t, "kubelet_to_streaming_server");
    assert_eq!(streaming["request"]["path"], "/exec/********");
    assert_eq!(streaming["request"]["status"], 101);
    let process = hop(&t, "streaming_server_to_process");
    assert_eq!(process["process"]["exitCode"], 4);
    assert_eq!(process["process"]["tty"], false);
    assert!(process["process"]["pid"].as_u64().is_some(), "{process:#}");
    // The unprivileged level shares the host's namespaces, and the trace shows it.
    let shared = c.isolation() == "unprivileged";
    for ns in process["process"]["namespaces"]
        .as_array()
        .expect("namespaces")
    {
        assert_eq!(
            ns["process"], ns["container"],
            "entered the container's: {ns}"
        );
        if shared {
            assert_eq!(
                ns["container"], ns["host"],
                "shared at the unprivileged level: {ns}"
            );
        } else {
            assert_ne!(ns["container"], ns["host"], "not the host's: {ns}");
        }
    }
    assert_eq!(stream(process, "stdin")["bytesIn"], 5);
    assert_eq!(stream(process, "stdout")["bytesOut"], 5);
    assert_eq!(stream(process, "stderr")["bytesOut"], 3);
    // The SPDY legs carry at least the payload, each way.
    for h in [kubelet, streaming] {
        assert!(h["bytesToCallee"].as_u64().unwrap_or(0) >= 5, "{h:#}");
        assert!(h["bytesToCaller"].as_u64().unwrap_or(0) >= 8, "{h:#}");
    }
    let raw = serde_json::to_string(&t).expect("json");
    let url = cri["grpc"]["responseUrl"].as_str().unwrap_or_default();
    assert!(!raw.contains("BEGIN"), "no keys or certificates in a trace");
    assert!(url.contains("********"));

    // SPDY (the fallback): the API server proxies bytes, the process hop tells the end.
    let out = kubectl_with(
        &c,
        &[("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")],
        &["exec", "-i", "box", "--", "sh", "-c", "cat # spdy-marker"],
        b"abc",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = trace_with(&c, "exec", "spdy-marker");
    assert_nested(&t);
    assert_eq!(t["outcome"]["status"], "Success");
    let client = hop(&t, "kubectl_to_apiserver");
    assert_eq!(client["request"]["upgrade"], "SPDY/3.1");
    assert_eq!(client["request"]["method"], "POST");
    assert_eq!(client["request"]["status"], 101);
    assert!(
        client["bytesToCallee"].as_u64().unwrap_or(0) >= 3,
        "{client:#}"
    );
    let process = hop(&t, "streaming_server_to_process");
    assert_eq!(stream(process, "stdin")["bytesIn"], 3);
    assert_eq!(stream(process, "stdout")["bytesOut"], 3);

    // exec -it with the client's terminal size, driven through util-linux `script`.
    let out = Command::new("script")
        .args([
            "-qec",
            "stty cols 101 rows 33; kubectl exec -it box -- sh -c 'stty size # tty-marker'",
            "/dev/null",
        ])
        .envs(c.envs())
        .stdin(Stdio::null())
        .output()
        .expect("script");
    assert!(
        text(&out.stdout).contains("33 101"),
        "{}",
        text(&out.stdout)
    );
    let t = trace_with(&c, "exec", "tty-marker");
    let process = hop(&t, "streaming_server_to_process");
    assert_eq!(process["process"]["tty"], true);
    assert!(
        process["process"]["resizes"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["width"] == 101 && r["height"] == 33)),
        "{process:#}"
    );

    // kubectl cp is tar over exec: the file's bytes (and tar's framing) go in.
    let src = c.dir.path().join("payload.bin");
    std::fs::write(&src, vec![7u8; 20_000]).expect("write");
    c.ok(&["cp", &src.display().to_string(), "box:/tmp/payload.bin"]);
    let t = trace_with(&c, "exec", "tar");
    let process = hop(&t, "streaming_server_to_process");
    assert!(
        stream(process, "stdin")["bytesIn"].as_u64().unwrap_or(0) >= 20_000,
        "{process:#}"
    );

    // A failed exec: refused before the upgrade, with the API server's answer.
    let err = c.fails(&["exec", "box", "-c", "nope", "--", "true", "nope-marker"]);
    assert!(err.contains("container nope is not valid"), "{err}");
    let t = trace_with(&c, "exec", "nope-marker");
    assert_eq!(t["outcome"]["httpStatus"], 400);
    assert_eq!(t["hops"].as_array().map(Vec::len), Some(1), "{t:#}");
    assert_eq!(hop(&t, "kubectl_to_apiserver")["request"]["status"], 400);

    // The narrative and the diagram read the same trace.
    let data = c.data_dir().display().to_string();
    let narrative = c.rkind(&["trace", "exec", "--name", &c.name, "--data-dir", &data]);
    let narrative = text(&narrative.stdout);
    assert!(narrative.contains("1. kubectl → API server"), "{narrative}");
    assert!(
        narrative.contains("/runtime.v1.RuntimeService/Exec"),
        "{narrative}"
    );
    let mermaid = c.rkind(&[
        "trace",
        "exec",
        "-o",
        "mermaid",
        "--limit",
        "1",
        "--name",
        &c.name,
        "--data-dir",
        &data,
    ]);
    let mermaid = text(&mermaid.stdout);
    assert!(mermaid.starts_with("sequenceDiagram"), "{mermaid}");
}

#[test]
fn attach_port_forward_html_and_endpoint_security() {
    let c = Cluster::start("trace-more");
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"},"spec":{"containers":[
            {"name":"web","image":"rkind/host","stdin":true,
             "command":["sh","-c","cd /tmp && echo hi > index.html && exec python3 -m http.server 8080 --bind 127.0.0.1"]}]}}"#,
    );
    c.ok(&["wait", "--for=condition=Ready", "pod/web", "--timeout=60s"]);
    c.wait_listening("web", 8080);

    // attach: the container's stdio, traced under kind "attach".
    let mut attach = Command::new("kubectl")
        .args(["attach", "web"])
        .envs(c.envs())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("attach");
    std::thread::sleep(Duration::from_secs(2));
    let _ = attach.kill();
    let _ = attach.wait();
    let mut attached = None;
    c.eventually(10, "an attach trace", || {
        attached = traces(&c, "attach").into_iter().last();
        attached.is_some()
    });
    let t = attached.expect("attach trace");
    assert_eq!(t["kind"], "attach");
    let process = hop(&t, "streaming_server_to_process");
    assert_eq!(
        process["process"]["containerId"].as_str().map(str::len),
        Some(64)
    );

    // port-forward: one record per forwarded connection, bytes each way.
    let mut pf = Command::new("kubectl")
        .args(["port-forward", "pod/web", ":8080"])
        .envs(c.envs())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(c.dir.path().join("pf.err")).expect("pf.err"))
        .spawn()
        .expect("port-forward");
    let mut line = String::new();
    {
        use std::io::{BufRead, Read};
        let mut r = std::io::BufReader::new(pf.stdout.take().expect("stdout"));
        r.read_line(&mut line)
            .expect("port-forward prints its port");
        // kubectl writes a line per connection and drops the connection if it cannot:
        // keep its stdout open and drained.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = r.read_to_end(&mut sink);
        });
    }
    let port: u16 = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    let body = {
        use std::io::Read;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| {
            panic!(
                "connect: {e}; port-forward said {}",
                std::fs::read_to_string(c.dir.path().join("pf.err")).unwrap_or_default()
            )
        });
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("request");
        let mut b = Vec::new();
        if let Err(e) = s.read_to_end(&mut b) {
            eprintln!("reading the forwarded connection: {e}");
        }
        b
    };
    let _ = pf.kill();
    let _ = pf.wait();
    assert!(
        text(&body).starts_with("HTTP/1.0 200"),
        "{:?} (port-forward said {:?})",
        text(&body),
        std::fs::read_to_string(c.dir.path().join("pf.err")).unwrap_or_default(),
    );
    let mut forwarded = None;
    c.eventually(10, "a port-forward trace with the connection", || {
        forwarded = traces(&c, "portforward").into_iter().rev().find(|t| {
            t["hops"].as_array().is_some_and(|h| {
                h.iter().any(|h| {
                    h["id"] == "streaming_server_to_process" && h["to"] == "port 8080 in the pod"
                })
            })
        });
        forwarded.is_some()
    });
    let t = forwarded.expect("port-forward trace");
    let conn = hop(&t, "streaming_server_to_process");
    let data = stream(conn, "port 8080 data");
    assert_eq!(data["bytesIn"], 18, "the request: {conn:#}");
    assert_eq!(
        data["bytesOut"].as_u64(),
        Some(body.len() as u64),
        "{conn:#}"
    );
    assert_eq!(
        hop(&t, "kubectl_to_apiserver")["request"]["upgrade"],
        "websocket"
    );

    // The HTML page, rendered by headless Chromium (in a network namespace with only
    // loopback, so nothing leaves the machine); arrow 2 is the CRI call.
    let dir = c.data_dir().display().to_string();
    let html = c.rkind(&[
        "trace",
        "all",
        "-o",
        "html",
        "--name",
        &c.name,
        "--data-dir",
        &dir,
    ]);
    assert!(html.status.success());
    let page = c.dir.path().join("trace.html");
    std::fs::write(&page, &html.stdout).expect("write page");
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new("sh")
                .args(["-c", &format!("command -v {b}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("headless Chromium is needed (scripts/test.sh installs it)");
    // Its own network namespace (loopback only), in a user namespace so that this works
    // as any user and inside an unprivileged container.
    let dom = Command::new("unshare")
        .args([
            "--map-root-user",
            "--net",
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--dump-dom",
        ])
        .arg(format!("file://{}#pin=2", page.display()))
        .env("HOME", c.dir.path())
        .output()
        .expect("chromium");
    let dom = text(&dom.stdout);
    assert!(
        dom.contains("data-laid-out=\"true\""),
        "the SVG was laid out: {dom}"
    );
    let drawn: usize = dom
        .split("data-arrows-drawn=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(drawn >= 5, "arrows drawn: {drawn}");
    assert!(
        dom.contains("class=\"arrow pinned\""),
        "clicking pins an arrow: {dom}"
    );
    let detail = dom
        .split("class=\"detail\"")
        .nth(1)
        .and_then(|s| s.split("</pre>").next())
        .unwrap_or("");
    assert!(
        detail.contains("gRPC: /runtime.v1.RuntimeService/"),
        "details of the clicked hop: {detail}"
    );

    // The endpoint: no certificate → 401; a node's certificate → 403.
    let st: Value = serde_json::from_str(
        &std::fs::read_to_string(c.data_dir().join("cluster.json")).expect("state"),
    )
    .expect("state json");
    let url = format!("https://127.0.0.1:{}/debug/rkind/traces", st["api_port"]);
    let pki = c.data_dir().join("pki");
    let code = |extra: &[String]| {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(pki.join("ca.crt"))
            .args(extra)
            .arg(&url)
            .output()
            .expect("curl");
        text(&out.stdout)
    };
    assert_eq!(code(&[]), "401");
    let node = [
        "--cert".to_string(),
        pki.join("kubelet-client.crt").display().to_string(),
        "--key".to_string(),
        pki.join("kubelet-client.key").display().to_string(),
    ];
    assert_eq!(code(&node), "403");
    let admin = [
        "--cert".to_string(),
        pki.join("admin.crt").display().to_string(),
        "--key".to_string(),
        pki.join("admin.key").display().to_string(),
    ];
    assert_eq!(code(&admin), "200");
}

#[test]
fn follow_and_explain() {
    let c = Cluster::start("trace-explain");
    start_box(&c);
    let data = c.data_dir().display().to_string();

    // `--follow` prints each session as it ends.
    let mut follow = Command::new(common::rkind_bin())
        .args([
            "trace",
            "exec",
            "--follow",
            "--name",
            &c.name,
            "--data-dir",
            &data,
        ])
        .envs(c.envs())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rkind trace --follow");
    let stdout = follow.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    c.ok(&["exec", "box", "--", "echo", "follow-marker"]);
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !seen.iter().any(|l: &String| l.contains("follow-marker")) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => seen.push(l),
            Err(_) => panic!("--follow printed no session for the exec: {seen:#?}"),
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();

    // The guided walk-through: a real kubectl exec on a demo pod, narrated with live
    // evidence, and the pod removed afterwards.
    let out = c.rkind(&["explain", "exec", "--name", &c.name, "--data-dir", &data]);
    let o = text(&out.stdout);
    assert!(out.status.success(), "{o}\n{}", text(&out.stderr));
    // Pods have their own hostname except at the unprivileged level.
    let greeting = if c.isolation() == "unprivileged" {
        "hello from ".to_string()
    } else {
        "hello from rkind-explain-".to_string()
    };
    for want in [
        greeting.as_str(),
        "── Step 1: kubectl → API server ──",
        "── Step 5: streaming server → process ──",
        "kubectl(pid",
        "← this session",
        "__rkind-nsexec",
        "exit code 3",
        "Removed pod default/rkind-explain-",
    ] {
        assert!(o.contains(want), "missing {want:?} in:\n{o}");
    }
    c.eventually(30, "the demo pod is gone", || {
        !c.ok(&["get", "pods", "-o", "name"])
            .contains("rkind-explain-")
    });
}
