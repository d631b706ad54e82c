//! `rkind explain exec`: a guided walk through the exec chain on a demo pod. It creates
//! the pod, runs one real `kubectl exec` and, while the session is open, takes the
//! evidence a curious engineer would collect by hand (`ss -tnp`, `ps --forest`, the
//! namespace inodes); then it narrates each hop from the session's trace beside that
//! evidence, and removes the pod.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use super::client::{TraceCliError, admin_client};
use super::evidence::{self, Proc, TcpSocket};
use super::model::{HopId, Trace};
use super::render;
use crate::cluster::state::ClusterState;

/// What was seen while the session was open.
struct Snapshot {
    sockets: Vec<TcpSocket>,
    owners: HashMap<u64, (u32, String)>,
    processes: Vec<Proc>,
    cri_socket_lines: usize,
    streaming_port: Option<u16>,
}

fn kubectl() -> Result<PathBuf, TraceCliError> {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("kubectl"))
                .find(|p| p.exists())
        })
        .ok_or_else(|| {
            TraceCliError::Usage(
                "rkind explain runs a real `kubectl exec`: put kubectl on PATH".into(),
            )
        })
}

fn owner(s: &Snapshot, inode: u64) -> String {
    s.owners
        .get(&inode)
        .map(|(pid, comm)| format!("{comm}(pid {pid})"))
        .unwrap_or_else(|| "?".into())
}

/// Both ends of the established connections whose server side is `port`, `ss`-style;
/// the one this session used (its caller address, from the trace) is marked. With
/// `only` set, other connections are counted instead of listed (rkind's own kubelet,
/// scheduler and controllers talk to the API server too).
fn connections_to(s: &Snapshot, port: u16, this: Option<&str>, only: Option<&str>) -> Vec<String> {
    let by_local: HashMap<SocketAddrV4, &TcpSocket> = s
        .sockets
        .iter()
        .filter(|t| t.state == "ESTAB")
        .map(|t| (t.local, t))
        .collect();
    let mut lines = Vec::new();
    let mut others = 0;
    for client in s
        .sockets
        .iter()
        .filter(|t| t.state == "ESTAB" && t.remote.port() == port)
    {
        let who = owner(s, client.inode);
        let mine = this == Some(client.local.to_string().as_str());
        if !mine && only.is_some_and(|o| !who.starts_with(o)) {
            others += 1;
            continue;
        }
        let server = by_local.get(&client.remote);
        lines.push(format!(
            "ESTAB  {:<21} → {:<21}  {} → {}{}",
            client.local.to_string(),
            client.remote.to_string(),
            who,
            server
                .map(|t| owner(s, t.inode))
                .unwrap_or_else(|| "?".into()),
            if mine { "   ← this session" } else { "" }
        ));
    }
    if others > 0 {
        lines.push(format!(
            "(+{others} other connection(s) from rkind's own components and this command)"
        ));
    }
    lines
}

fn snapshot(st: &ClusterState, data_dir: &Path) -> Snapshot {
    let sockets = evidence::tcp_sockets();
    let owners = evidence::socket_owners();
    // rkind's third loopback listener is the runtime's streaming server.
    let streaming_port = sockets
        .iter()
        .filter(|t| {
            t.state == "LISTEN"
                && owners.get(&t.inode).map(|o| o.0 as i64) == Some(st.pid as i64)
                && t.local.port() != st.api_port
                && t.local.port() != st.kubelet_port
        })
        .map(|t| t.local.port())
        .next();
    let cri = data_dir.join("cri.sock").display().to_string();
    let cri_socket_lines = std::fs::read_to_string("/proc/net/unix")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.ends_with(&cri))
        .count();
    Snapshot {
        sockets,
        owners,
        processes: evidence::processes(),
        cri_socket_lines,
        streaming_port,
    }
}

fn print_step(n: usize, title: &str, why: &str) {
    println!("\n── Step {n}: {title} ──");
    println!("Why: {why}");
}

fn quote(lines: &[String]) {
    if lines.is_empty() {
        println!("    (nothing seen)");
    }
    for l in lines {
        println!("    {l}");
    }
}

/// Runs the walk-through against the cluster in `data_dir`.
pub async fn explain_exec(data_dir: &Path) -> Result<(), TraceCliError> {
    let st = ClusterState::load(data_dir)
        .map_err(|e| TraceCliError::Cluster(data_dir.display().to_string(), e.to_string()))?;
    let kubectl = kubectl()?;
    let api = admin_client(data_dir)?;
    let pod = format!("rkind-explain-{}", std::process::id());
    println!(
        "This walk-through creates pod default/{pod}, runs one `kubectl exec` into it, shows what \
         each component of cluster {:?} did, and removes the pod again.",
        st.name
    );
    api.post(
        "/api/v1/namespaces/default/pods",
        &json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod, "labels": {"app.kubernetes.io/created-by": "rkind-explain"}},
            "spec": {"terminationGracePeriodSeconds": 0, "containers": [
                {"name": "demo", "image": "rkind/host", "command": ["sleep", "3600"]}]}
        }),
    )
    .await
    .map_err(|e| TraceCliError::Api(format!("creating the demo pod: {e}")))?;
    let result = walk(&st, data_dir, &kubectl, &api, &pod).await;
    let _ = api
        .delete(
            &format!("/api/v1/namespaces/default/pods/{pod}"),
            Some(&json!({"gracePeriodSeconds": 0})),
        )
        .await;
    println!("\nRemoved pod default/{pod}.");
    result
}

async fn walk(
    st: &ClusterState,
    data_dir: &Path,
    kubectl: &Path,
    api: &crate::client::ApiClient,
    pod: &str,
) -> Result<(), TraceCliError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let p = api
            .get(&format!("/api/v1/namespaces/default/pods/{pod}"))
            .await
            .map_err(|e| TraceCliError::Api(e.to_string()))?;
        if p["status"]["phase"] == "Running" {
            break;
        }
        if Instant::now() > deadline {
            return Err(TraceCliError::Api(format!(
                "the demo pod did not start within a minute (phase {})",
                p["status"]["phase"]
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let script = "echo \"hello from $(hostname)\"; read line; echo \"got: $line\"; exit 3";
    println!("\nRunning: kubectl exec -i {pod} -- sh -c '{script}'");
    let context = format!("rkind-{}", st.name);
    let mut cmd = Command::new(kubectl);
    if let Some(k) = &st.kubeconfig {
        cmd.env("KUBECONFIG", k);
    }
    let mut child = cmd
        .args([
            "--context",
            &context,
            "exec",
            "-i",
            pod,
            "--",
            "sh",
            "-c",
            script,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| TraceCliError::Usage(format!("running kubectl: {e}")))?;
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut first = String::new();
    // The process is now waiting in `read`: every hop's connection is open.
    let _ = stdout.read_line(&mut first);
    println!("  ← {}", first.trim_end());
    let snap = snapshot(st, data_dir);
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"a line typed into kubectl\n");
    }
    let out = child
        .wait_with_output()
        .map_err(|e| TraceCliError::Usage(format!("waiting for kubectl: {e}")))?;
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stdout, &mut rest);
    for l in rest.lines() {
        println!("  ← {l}");
    }
    println!(
        "  kubectl: {} (exit code {})",
        String::from_utf8_lossy(&out.stderr).trim(),
        out.status.code().unwrap_or(-1)
    );
    // The trace is published a moment after the client's connection ends.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let v = api
        .get(&format!(
            "{}?kind=exec&limit=50",
            crate::apiserver::debug_traces::PATH
        ))
        .await
        .map_err(|e| TraceCliError::Api(format!("reading traces: {e}")))?;
    let traces: Vec<Trace> = serde_json::from_value(v["traces"].clone())
        .map_err(|e| TraceCliError::Api(e.to_string()))?;
    let t = traces
        .into_iter()
        .rev()
        .find(|t| t.pod == format!("default/{pod}"))
        .ok_or_else(|| TraceCliError::Api("the session's trace was not recorded".into()))?;
    narrate(st, &snap, &t);
    Ok(())
}

fn narrate(st: &ClusterState, snap: &Snapshot, t: &Trace) {
    println!("\n{}", render::headline(t));
    let hop = |id: HopId| t.hops.iter().find(|h| h.id == id);
    let mut n = 0;
    for id in [
        HopId::KubectlToApiserver,
        HopId::ApiserverToKubelet,
        HopId::KubeletToCri,
        HopId::KubeletToStreamingServer,
        HopId::StreamingServerToProcess,
    ] {
        let Some(h) = hop(id) else { continue };
        n += 1;
        let caller = h.connection.as_ref().map(|c| c.caller.as_str());
        print_step(n, &format!("{} → {}", h.from, h.to), render::why(id));
        let mut detail = String::new();
        super::render::hop_lines_into(h, &mut detail);
        println!(
            "From the trace (+{:.1} ms, lasted {:.1} ms):",
            h.offset_ms, h.duration_ms
        );
        print!("{detail}");
        println!("Live, while the session was open:");
        match id {
            HopId::KubectlToApiserver => {
                println!(
                    "  ss -tnp, connections to the API server port {}:",
                    st.api_port
                );
                quote(&connections_to(snap, st.api_port, caller, Some("kubectl")));
            }
            HopId::ApiserverToKubelet => {
                println!(
                    "  ss -tnp, connections to the kubelet port {}:",
                    st.kubelet_port
                );
                quote(&connections_to(snap, st.kubelet_port, caller, None));
            }
            HopId::KubeletToCri => {
                println!(
                    "  /proc/net/unix: {} socket(s) on the CRI socket (the kubelet keeps one gRPC connection open; this call was one request on it)",
                    snap.cri_socket_lines
                );
            }
            HopId::KubeletToStreamingServer => match snap.streaming_port {
                Some(p) => {
                    println!("  ss -tnp, connections to the streaming server port {p}:");
                    quote(&connections_to(snap, p, caller, None));
                }
                None => println!("    (streaming server port not found)"),
            },
            HopId::StreamingServerToProcess => {
                let helper = snap
                    .processes
                    .iter()
                    .find(|p| p.args.contains("__rkind-nsexec") && p.args.contains("hello from"));
                match helper {
                    Some(h) => {
                        println!("  ps --forest, from the exec helper:");
                        quote(&evidence::forest(&snap.processes, h.pid));
                    }
                    None => println!("    (the exec helper was not found)"),
                }
                if let Some(p) = &h.process {
                    println!(
                        "  The helper entered the namespaces of the container's main process (pid {}) and forked the command there: its namespace inodes above are the container's, not rkind's.",
                        p.container_pid
                    );
                }
            }
        }
    }
    println!(
        "\nOutcome: {} — kubectl printed the status the runtime wrote on the error stream, \
         which travelled back through every hop above.",
        render::outcome_text(t)
    );
}
