//! The exec chain end to end: stock kubectl → API server → kubelet (mTLS) → CRI `Exec`
//! / `PortForward` → the runtime's streaming server → a process in the container.
//! Every remote-command scenario runs three ways: kubectl 1.32 over WebSocket (the
//! default), kubectl 1.32 forced to SPDY, and kubectl 1.27 (SPDY only).

mod common;

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Cluster, kubectl_dir};
use sha2::Digest;

/// One way of running kubectl.
#[derive(Debug, Clone, Copy)]
struct Client {
    bin: &'static str,
    spdy: bool,
}

const CLIENTS: [Client; 3] = [
    Client {
        bin: "kubectl.1.32",
        spdy: false,
    },
    Client {
        bin: "kubectl.1.32",
        spdy: true,
    },
    Client {
        bin: "kubectl.1.27",
        spdy: true,
    },
];

impl Client {
    fn command(&self, c: &Cluster, args: &[&str]) -> Command {
        let mut cmd = Command::new(kubectl_dir().join(self.bin));
        cmd.args(args).envs(c.envs());
        if self.spdy {
            cmd.env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")
                .env("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false");
        }
        cmd
    }

    /// Runs kubectl with `stdin` bytes (None = no stdin at all).
    fn run(&self, c: &Cluster, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = self.command(c, args);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn kubectl");
        if let Some(data) = stdin {
            let mut s = child.stdin.take().expect("stdin");
            let data = data.to_vec();
            std::thread::spawn(move || {
                let _ = s.write_all(&data);
            });
        }
        child.wait_with_output().expect("kubectl output")
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run_pod(c: &Cluster, name: &str, command: &[&str]) {
    let mut args = vec!["run", name, "--image=rkind/host", "--restart=Never", "--"];
    args.extend_from_slice(command);
    c.ok(&args);
}

fn wait_ready(c: &Cluster, pod: &str) {
    c.ok(&[
        "wait",
        "--for=condition=Ready",
        &format!("pod/{pod}"),
        "--timeout=60s",
    ]);
}

#[test]
fn exec_exit_codes_stdin_stderr_and_errors_three_ways() {
    let c = Cluster::start("exec");
    run_pod(&c, "box", &["sleep", "3600"]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"two"},"spec":{"containers":[
            {"name":"main","image":"rkind/host","command":["sleep","3600"]},
            {"name":"side","image":"rkind/host","command":["sh","-c","echo side > /tmp/who; sleep 3600"]}]}}"#,
    );
    run_pod(&c, "done", &["true"]);
    wait_ready(&c, "box");
    wait_ready(&c, "two");
    c.eventually(30, "pod done Succeeded", || {
        c.ok(&["get", "pod", "done", "-o", "jsonpath={.status.phase}"]) == "Succeeded"
    });

    for client in CLIENTS {
        let ctx = format!("{client:?}");
        // Exit code, stdout and stderr kept apart.
        let out = client.run(
            &c,
            &[
                "exec",
                "box",
                "--",
                "sh",
                "-c",
                "echo out; echo err >&2; exit 7",
            ],
            None,
        );
        assert_eq!(out.status.code(), Some(7), "{ctx}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "out\n", "{ctx}");
        let err = text(&out.stderr);
        assert!(err.starts_with("err\n"), "{ctx}: stderr {err:?}");
        assert!(
            err.contains("command terminated with exit code 7"),
            "{ctx}: {err}"
        );

        // stdin streams and its EOF ends `cat`.
        let out = client.run(
            &c,
            &["exec", "-i", "box", "--", "cat"],
            Some(b"hi\nthere\n"),
        );
        assert!(out.status.success(), "{ctx}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "hi\nthere\n", "{ctx}");

        // A missing binary: upstream's wording, exit 1.
        let out = client.run(&c, &["exec", "box", "--", "no-such-binary"], None);
        assert_eq!(out.status.code(), Some(1), "{ctx}");
        let err = text(&out.stderr);
        assert!(
            err.contains("exec: \"no-such-binary\": executable file not found in $PATH"),
            "{ctx}: {err}"
        );

        // A non-default container, and a container that does not exist.
        let out = client.run(
            &c,
            &["exec", "two", "-c", "side", "--", "cat", "/tmp/who"],
            None,
        );
        assert_eq!(text(&out.stdout), "side\n", "{ctx}: {}", text(&out.stderr));
        let out = client.run(&c, &["exec", "two", "-c", "nope", "--", "true"], None);
        assert_eq!(out.status.code(), Some(1), "{ctx}");
        assert!(
            text(&out.stderr).contains("container nope is not valid for pod two"),
            "{ctx}: {}",
            text(&out.stderr)
        );

        // A completed pod.
        let out = client.run(&c, &["exec", "done", "--", "true"], None);
        assert_eq!(out.status.code(), Some(1), "{ctx}");
        assert!(
            text(&out.stderr).contains("cannot exec into a container in a completed pod"),
            "{ctx}: {}",
            text(&out.stderr)
        );
    }
    // Every kubectl from 1.27 to 1.33 (each picks its own transport).
    for minor in 27..=33 {
        let bin = kubectl_dir().join(format!("kubectl.1.{minor}"));
        assert!(bin.exists(), "{} is missing", bin.display());
        let mut child = Command::new(&bin)
            .args(["exec", "-i", "box", "--", "sh", "-c", "cat; exit 9"])
            .envs(c.envs())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("in-1.{minor}\n").as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("output");
        assert_eq!(
            out.status.code(),
            Some(9),
            "kubectl 1.{minor}: {}",
            text(&out.stderr)
        );
        assert_eq!(text(&out.stdout), format!("in-1.{minor}\n"));
    }
    // A pod that does not exist: 404 Status from the API server.
    let err = c.fails(&["exec", "ghost", "--", "true"]);
    assert!(err.contains("pods \"ghost\" not found"), "{err}");
}

#[test]
fn large_stdin_and_stdout_arrive_intact_three_ways() {
    let c = Cluster::start("exec-big");
    run_pod(&c, "box", &["sleep", "3600"]);
    wait_ready(&c, "box");
    // 100 MiB of pseudo-random bytes.
    let mut data = vec![0u8; 100 << 20];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let want = hex::encode(sha2::Sha256::digest(&data));
    for client in CLIENTS {
        let out = client.run(&c, &["exec", "-i", "box", "--", "cat"], Some(&data));
        assert!(out.status.success(), "{client:?}: {}", text(&out.stderr));
        assert_eq!(out.stdout.len(), data.len(), "{client:?}");
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&out.stdout)),
            want,
            "{client:?}"
        );
    }
}

/// Runs `script` so kubectl sees a terminal of `cols`×`rows`; `inner` is a shell line
/// run on that terminal, `typed` is keyboard input sent after a pause. Stdin stays
/// open until the session ends.
fn on_terminal(
    c: &Cluster,
    client: Client,
    cols: u16,
    rows: u16,
    inner: &str,
    typed: Option<&str>,
) -> Output {
    let kubectl = kubectl_dir().join(client.bin);
    let line = format!(
        "stty cols {cols} rows {rows}; {}",
        inner.replace("KUBECTL", &kubectl.display().to_string())
    );
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"]).envs(c.envs());
    if client.spdy {
        cmd.env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false");
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux) is needed for the tty tests");
    let mut stdin = child.stdin.take();
    if let (Some(keys), Some(w)) = (typed, stdin.as_mut()) {
        std::thread::sleep(Duration::from_secs(3));
        w.write_all(keys.as_bytes())
            .expect("type into the terminal");
        w.flush().expect("flush");
    }
    let start = Instant::now();
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "terminal session hung"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(stdin);
    child.wait_with_output().expect("script output")
}

#[test]
fn tty_sessions_follow_the_terminal_size_three_ways() {
    let c = Cluster::start("exec-tty");
    run_pod(&c, "box", &["sleep", "3600"]);
    wait_ready(&c, "box");
    for client in CLIENTS {
        // The size at start, then after a resize of the client's terminal.
        let out = on_terminal(
            &c,
            client,
            101,
            33,
            "(sleep 1; stty cols 120 rows 40 < /dev/tty) & KUBECTL exec -it box -- sh -c 'stty size; sleep 2; stty size; exit 3'",
            None,
        );
        let o = text(&out.stdout);
        assert!(o.contains("33 101\r\n"), "{client:?}: {o:?}");
        assert!(o.contains("40 120\r\n"), "{client:?}: {o:?}");
        assert!(
            o.contains("command terminated with exit code 3"),
            "{client:?}: {o:?}"
        );
        assert_eq!(out.status.code(), Some(3), "{client:?}: {o:?}");
        // stdout and stderr merge on a terminal.
        let out = on_terminal(
            &c,
            client,
            80,
            24,
            "KUBECTL exec -it box -- sh -c 'echo to-out; echo to-err >&2; test -t 0 && echo stdin-is-tty; t=$(tty) && test $t -ef /proc/self/fd/0 && echo named-$t'",
            None,
        );
        let o = text(&out.stdout);
        assert!(
            o.contains("to-out\r\nto-err\r\nstdin-is-tty\r\n"),
            "{client:?}: {o:?}"
        );
        // The terminal comes from the container's own devpts, so it has a name there.
        assert!(o.contains("named-/dev/pts/"), "{client:?}: {o:?}");
        // Ctrl-C typed on the client's terminal becomes SIGINT for the process.
        let out = on_terminal(
            &c,
            client,
            80,
            24,
            "KUBECTL exec -it box -- sh -c 'trap \"echo got-int; exit 9\" INT; echo waiting; sleep 30 & wait'",
            Some("\u{3}"),
        );
        let o = text(&out.stdout);
        assert!(o.contains("got-int"), "{client:?}: {o:?}");
        assert_eq!(out.status.code(), Some(9), "{client:?}: {o:?}");
    }
}

#[test]
fn cp_both_ways_three_ways() {
    let c = Cluster::start("exec-cp");
    run_pod(&c, "box", &["sleep", "3600"]);
    wait_ready(&c, "box");
    let local = c.dir.path().join("src");
    std::fs::create_dir_all(local.join("sub")).expect("mkdir");
    std::fs::write(local.join("a.txt"), "alpha\n").expect("write");
    let blob: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(local.join("sub/blob.bin"), &blob).expect("write");
    for (i, client) in CLIENTS.iter().enumerate() {
        let dest = format!("box:/tmp/cp{i}");
        let out = client.run(&c, &["cp", &local.display().to_string(), &dest], None);
        assert!(out.status.success(), "{client:?}: {}", text(&out.stderr));
        let out = client.run(
            &c,
            &["exec", "box", "--", "cat", &format!("/tmp/cp{i}/a.txt")],
            None,
        );
        assert_eq!(text(&out.stdout), "alpha\n", "{client:?}");
        let back = c.dir.path().join(format!("back{i}"));
        let out = client.run(
            &c,
            &[
                "cp",
                &format!("box:/tmp/cp{i}"),
                &back.display().to_string(),
            ],
            None,
        );
        assert!(out.status.success(), "{client:?}: {}", text(&out.stderr));
        assert_eq!(
            std::fs::read(back.join("sub/blob.bin")).expect("copied back"),
            blob,
            "{client:?}"
        );
    }
}

fn http_get(port: u16) -> Result<String, String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut body = String::new();
    s.read_to_string(&mut body).map_err(|e| e.to_string())?;
    Ok(body)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[test]
fn port_forward_over_websocket_and_spdy() {
    let c = Cluster::start("portfwd");
    run_pod(
        &c,
        "web",
        &[
            "sh",
            "-c",
            "cd /tmp && echo served-from-pod > index.html && exec python3 -m http.server 8080",
        ],
    );
    wait_ready(&c, "web");
    c.wait_listening("web", 8080);
    for (bin, ws) in [
        ("kubectl.1.32", true),
        ("kubectl.1.32", false),
        ("kubectl.1.27", false),
    ] {
        let port = free_port();
        let mut cmd = Command::new(kubectl_dir().join(bin));
        cmd.args(["port-forward", "pod/web", &format!("{port}:8080")])
            .envs(c.envs())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if !ws {
            cmd.env("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false");
        }
        let mut child = cmd.spawn().expect("port-forward");
        let mut stdout = child.stdout.take().expect("stdout");
        let mut first = [0u8; 10];
        let _ = stdout.read(&mut first); // "Forwarding from ..." once listening
        // Several connections at once, each on its own stream pair.
        let handles: Vec<_> = (0..8)
            .map(|_| std::thread::spawn(move || http_get(port)))
            .collect();
        for h in handles {
            let body = h.join().expect("thread").expect("http through the forward");
            assert!(body.contains("served-from-pod"), "{bin} ws={ws}: {body}");
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    // A port nobody listens on: upstream's error, and kubectl gives up the session.
    let port = free_port();
    let mut child = Command::new(kubectl_dir().join("kubectl.1.32"))
        .args(["port-forward", "pod/web", &format!("{port}:9999")])
        .envs(c.envs())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("port-forward");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 10];
    let _ = stdout.read(&mut first);
    let _ = http_get(port);
    let out = child.wait_with_output().expect("port-forward exits");
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("failed to connect to localhost:9999 inside namespace")
            && err.contains("connection refused"),
        "{err}"
    );
}

fn host_processes_with(arg: &str) -> usize {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    std::fs::read(e.path().join("cmdline"))
                        .map(|c| c.split(|b| *b == 0).any(|a| a == arg.as_bytes()))
                        .unwrap_or(false)
                })
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn concurrent_sessions_and_vanishing_clients() {
    let c = Cluster::start("exec-many");
    run_pod(&c, "box", &["sleep", "3600"]);
    wait_ready(&c, "box");
    // 20 concurrent execs, alternating transports.
    let envs = c.envs();
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let envs = envs.clone();
            std::thread::spawn(move || {
                let mut cmd = Command::new(kubectl_dir().join("kubectl.1.32"));
                cmd.args([
                    "exec",
                    "box",
                    "--",
                    "sh",
                    "-c",
                    &format!("echo n{i}; exit {}", i % 5),
                ])
                .envs(envs);
                if i % 2 == 1 {
                    cmd.env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false");
                }
                (i, cmd.output().expect("kubectl"))
            })
        })
        .collect();
    for h in handles {
        let (i, out) = h.join().expect("thread");
        assert_eq!(text(&out.stdout), format!("n{i}\n"));
        assert_eq!(out.status.code(), Some(i % 5), "{}", text(&out.stderr));
    }
    // A client that dies mid-session: the process in the container goes too.
    for spdy in [false, true] {
        let marker = if spdy { "4243" } else { "4242" };
        let mut cmd = Command::new(kubectl_dir().join("kubectl.1.32"));
        cmd.args(["exec", "box", "--", "sleep", marker])
            .envs(c.envs())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if spdy {
            cmd.env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false");
        }
        let mut child = cmd.spawn().expect("kubectl");
        c.eventually(20, "exec'd sleep running", || {
            host_processes_with(marker) > 0
        });
        child.kill().expect("kill kubectl");
        let _ = child.wait();
        c.eventually(20, "exec'd sleep killed after the client vanished", || {
            host_processes_with(marker) == 0
        });
    }
    // The cluster still serves after all that.
    assert_eq!(
        c.ok(&["exec", "box", "--", "echo", "still-here"]),
        "still-here\n"
    );
}

#[test]
fn attach_and_run_interactive_three_ways() {
    let c = Cluster::start("attach");
    for (i, client) in CLIENTS.iter().enumerate() {
        // `kubectl run -it --rm`: a shell on a terminal, its exit code, the pod removed.
        let pod = format!("shell{i}");
        let out = on_terminal(
            &c,
            *client,
            100,
            30,
            &format!("KUBECTL run -it --rm {pod} --image=rkind/host --restart=Never -- sh"),
            Some(
                "echo from-$((6*7)); stty size; t=$(tty) && test -e $t && echo named-$t; exit 4\r",
            ),
        );
        let o = text(&out.stdout);
        assert!(o.contains("from-42"), "{client:?}: {o:?}");
        assert!(
            o.contains("named-/dev/pts/"),
            "{client:?}: the container's terminal has a name in its own /dev/pts: {o:?}"
        );
        assert!(
            o.contains("30 100"),
            "{client:?}: terminal size reached the container: {o:?}"
        );
        assert_eq!(out.status.code(), Some(4), "{client:?}: {o:?}");
        c.eventually(30, "--rm deleted the pod", || {
            !c.kubectl(&["get", "pod", &pod]).status.success()
        });

        // `kubectl attach -i` to a container with stdin (stdinOnce): input reaches it,
        // its output comes back, and the session ends when the container does.
        let pod = format!("reader{i}");
        c.ok_stdin(
            &["apply", "-f", "-"],
            &format!(
                r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{pod}"}},"spec":{{"restartPolicy":"Never","containers":[
                {{"name":"r","image":"rkind/host","stdin":true,"stdinOnce":true,
                  "command":["sh","-c","while read l; do echo got:$l; echo err:$l >&2; done; echo bye"]}}]}}}}"#
            ),
        );
        wait_ready(&c, &pod);
        let out = client.run(&c, &["attach", "-i", &pod], Some(b"one\ntwo\n"));
        assert!(out.status.success(), "{client:?}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "got:one\ngot:two\nbye\n", "{client:?}");
        assert!(
            text(&out.stderr).contains("err:two"),
            "{client:?}: {}",
            text(&out.stderr)
        );
    }
    // Plain `kubectl attach` follows the output of a running container.
    run_pod(
        &c,
        "ticker",
        &[
            "sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.2; done",
        ],
    );
    wait_ready(&c, "ticker");
    let mut child = CLIENTS[0]
        .command(&c, &["attach", "ticker"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("attach");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while String::from_utf8_lossy(&got).matches("tick-").count() < 2 {
        let n = stdout.read(&mut buf).expect("read attach output");
        assert!(n > 0, "attach ended early: {}", text(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The runtime's streaming server, driven directly through the CRI socket and a Rust
/// SPDY client: one-shot tokens, bad requests and bad streams get clean answers.
#[test]
fn streaming_server_rejects_bad_input_cleanly() {
    use rkind::runtime::cri;
    use rkind::stream::session::{Role, Session};
    use rkind::stream::spdy::Headers;
    use rkind::stream::upgrade::{ClientUpgrade, client_upgrade};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let c = Cluster::start("stream-bad");
    run_pod(&c, "box", &["sleep", "3600"]);
    wait_ready(&c, "box");
    let sock = c.data_dir().join("cri.sock");
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    rt.block_on(async {
        let ch = rkind::kubelet::pods::connect_cri(&sock).await.expect("cri");
        let mut runtime = cri::runtime_service_client::RuntimeServiceClient::new(ch);
        let id = runtime
            .list_containers(cri::ListContainersRequest { filter: None })
            .await
            .expect("list")
            .into_inner()
            .containers
            .into_iter()
            .find(|x| x.state == cri::ContainerState::ContainerRunning as i32)
            .expect("running container")
            .id;
        let client = runtime.clone();
        let exec_url = |cmd: &[&str]| {
            let mut runtime = client.clone();
            let req = cri::ExecRequest {
                container_id: id.clone(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                tty: false,
                stdin: false,
                stdout: true,
                stderr: false,
            };
            async move { runtime.exec(req).await.expect("Exec").into_inner().url }
        };
        // CRI validation: no streams at all, tty with stderr.
        let mut bad = cri::ExecRequest {
            container_id: id.clone(),
            cmd: vec!["true".into()],
            ..Default::default()
        };
        let err = runtime.exec(bad.clone()).await.expect_err("no streams");
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        bad.stdout = true;
        bad.stderr = true;
        bad.tty = true;
        assert!(runtime.exec(bad).await.is_err());

        let upgrade = |url: String, protocol: Option<&'static str>| async move {
            let uri: http::Uri = url.parse().expect("url");
            let tcp = tokio::net::TcpStream::connect(uri.authority().expect("host").as_str())
                .await
                .expect("connect");
            let mut req = http::Request::post(uri.path())
                .header("connection", "Upgrade")
                .header("upgrade", "SPDY/3.1");
            if let Some(p) = protocol {
                req = req.header("x-stream-protocol-version", p);
            }
            client_upgrade(tcp, req.body(http_body_util::Empty::new()).expect("req"))
                .await
                .expect("http")
        };
        let status_of = |u: ClientUpgrade| match u {
            ClientUpgrade::Switched { .. } => 101,
            ClientUpgrade::Refused { parts, .. } => parts.status.as_u16(),
        };

        // No protocol header: 400, and the token is spent: reuse gives 404.
        let url = exec_url(&["true"]).await;
        assert_eq!(status_of(upgrade(url.clone(), None).await), 400);
        assert_eq!(
            status_of(upgrade(url.clone(), Some("v4.channel.k8s.io")).await),
            404
        );
        // No common protocol: 403.
        let url = exec_url(&["true"]).await;
        assert_eq!(
            status_of(upgrade(url, Some("v9.channel.k8s.io")).await),
            403
        );
        // A made-up token: 404.
        let fake = format!("{}/exec/AAAAAAAA", url_base(&exec_url(&["true"]).await));
        assert_eq!(
            status_of(upgrade(fake, Some("v4.channel.k8s.io")).await),
            404
        );

        // Garbage after the upgrade: the server hangs up, nothing else happens.
        let url = exec_url(&["sleep", "5151"]).await;
        let ClientUpgrade::Switched { io: mut raw, .. } =
            upgrade(url, Some("v4.channel.k8s.io")).await
        else {
            panic!("upgrade refused")
        };
        raw.write_all(&[0x80, 0x07, 0x00, 0x01, 0, 0, 0, 4, 1, 2, 3, 4])
            .await
            .expect("write garbage");
        let mut sink = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut sink))
            .await
            .expect("server closes a connection that sent garbage")
            .ok();

        // A client that upgrades and vanishes.
        let url = exec_url(&["sleep", "5152"]).await;
        drop(upgrade(url, Some("v4.channel.k8s.io")).await);

        // A well-behaved session with an unknown stream type thrown in.
        let url = exec_url(&["sh", "-c", "echo via-rust-client; exit 3"]).await;
        let ClientUpgrade::Switched { parts, io } = upgrade(url, Some("v4.channel.k8s.io")).await
        else {
            panic!("upgrade refused")
        };
        assert_eq!(
            parts.headers["x-stream-protocol-version"],
            "v4.channel.k8s.io"
        );
        let session = Session::new(io, Role::Client);
        let open = |t: &str| {
            let mut h = Headers::new();
            h.insert("streamtype", t);
            let session = session.clone();
            async move { session.open(h).await }
        };
        let mut error = open("error").await.expect("error stream");
        let mut bogus = open("bogus").await.expect("reply precedes the reset");
        assert!(
            bogus.reader.recv().await.is_none(),
            "unknown stream is reset"
        );
        let mut stdout = open("stdout").await.expect("stdout stream");
        let mut out = Vec::new();
        while let Some(d) = stdout.reader.recv().await {
            out.extend_from_slice(&d);
        }
        assert_eq!(String::from_utf8_lossy(&out), "via-rust-client\n");
        let mut status = Vec::new();
        while let Some(d) = error.reader.recv().await {
            status.extend_from_slice(&d);
        }
        let v: serde_json::Value = serde_json::from_slice(&status).expect("status json");
        assert_eq!(v["reason"], "NonZeroExitCode");
        assert_eq!(v["details"]["causes"][0]["message"], "3");
        session.shutdown().await;
    });
    // Nothing from the broken sessions is left running.
    c.eventually(20, "no exec'd process left behind", || {
        host_processes_with("5151") == 0 && host_processes_with("5152") == 0
    });
    assert_eq!(c.ok(&["exec", "box", "--", "echo", "fine"]), "fine\n");
}

fn url_base(url: &str) -> String {
    let uri: http::Uri = url.parse().expect("url");
    format!("http://{}", uri.authority().expect("authority"))
}

/// What a direct WebSocket client of the streaming server receives: every message as
/// (channel, payload), up to the server's Close, and the close code.
async fn ws_session(
    url: &str,
    protocol: &str,
    send: Vec<Vec<u8>>,
    base64: bool,
) -> (Vec<(u8, Vec<u8>)>, Option<u16>) {
    use futures_util::{SinkExt, StreamExt};
    use rkind::stream::wschannel::{ChannelMessage, Framing, decode};
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
    let ws_url = url.replacen("http://", "ws://", 1);
    let mut req = ws_url.into_client_request().expect("request");
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        protocol.parse().expect("protocol header"),
    );
    let uri: http::Uri = url.parse().expect("url");
    let tcp = tokio::net::TcpStream::connect(uri.authority().expect("host").as_str())
        .await
        .expect("connect");
    let (mut ws, resp) = tokio_tungstenite::client_async(req, tcp)
        .await
        .expect("websocket upgrade");
    assert_eq!(resp.headers()["sec-websocket-protocol"], protocol);
    for m in send {
        let msg = if base64 {
            Message::Text(String::from_utf8(m).expect("base64 text").into())
        } else {
            Message::Binary(m.into())
        };
        ws.send(msg).await.expect("send");
    }
    let framing = Framing::for_protocol(protocol);
    let mut got = Vec::new();
    let mut close = None;
    while let Some(Ok(msg)) = tokio::time::timeout(Duration::from_secs(30), ws.next())
        .await
        .expect("server answers in time")
    {
        let body = match msg {
            Message::Binary(b) => b.to_vec(),
            Message::Text(t) => t.as_bytes().to_vec(),
            Message::Close(f) => {
                close = f.map(|f| u16::from(f.code));
                break;
            }
            _ => continue,
        };
        match decode(framing, &body).expect("server message decodes") {
            ChannelMessage::Data(ch, d) => got.push((ch, d)),
            ChannelMessage::Close(ch) => panic!("server sent a close signal for {ch}"),
        }
    }
    (got, close)
}

fn channel_text(got: &[(u8, Vec<u8>)], ch: u8) -> String {
    got.iter()
        .filter(|(c, _)| *c == ch)
        .map(|(_, d)| String::from_utf8_lossy(d).into_owned())
        .collect()
}

/// Clients that come to the runtime's streaming server directly with a WebSocket
/// (v5, v4 base64) get exec and attach there too; tokens expire (TTL shortened to 3 s
/// for this cluster through `RKIND_STREAMING_TOKEN_TTL`).
#[test]
fn streaming_server_speaks_websocket_and_expires_tokens() {
    use rkind::runtime::cri;
    use rkind::stream::wschannel::{ERROR, RESIZE, STDERR, STDIN, STDOUT};

    let c = Cluster::start_with_env("stream-ws", &[("RKIND_STREAMING_TOKEN_TTL", "3")]);
    run_pod(&c, "box", &["sleep", "3600"]);
    wait_ready(&c, "box");
    let sock = c.data_dir().join("cri.sock");
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    rt.block_on(async {
        let ch = rkind::kubelet::pods::connect_cri(&sock).await.expect("cri");
        let runtime = cri::runtime_service_client::RuntimeServiceClient::new(ch);
        let id = runtime
            .clone()
            .list_containers(cri::ListContainersRequest { filter: None })
            .await
            .expect("list")
            .into_inner()
            .containers
            .into_iter()
            .find(|x| x.state == cri::ContainerState::ContainerRunning as i32)
            .expect("running container")
            .id;
        let exec_url = |cmd: &[&str], stdin: bool, stderr: bool, tty: bool| {
            let mut runtime = runtime.clone();
            let req = cri::ExecRequest {
                container_id: id.clone(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                tty,
                stdin,
                stdout: true,
                stderr,
            };
            async move { runtime.exec(req).await.expect("Exec").into_inner().url }
        };

        // v5: stdin, then the stdin close signal is EOF for `cat`.
        let url = exec_url(&["cat"], true, false, false).await;
        let (got, close) = ws_session(
            &url,
            "v5.channel.k8s.io",
            vec![b"\x00hello over ws\n".to_vec(), vec![0xFF, STDIN]],
            false,
        )
        .await;
        assert_eq!(
            got.first(),
            Some(&(STDOUT, Vec::new())),
            "ready message first"
        );
        assert_eq!(channel_text(&got, STDOUT), "hello over ws\n");
        let status: serde_json::Value =
            serde_json::from_str(&channel_text(&got, ERROR)).expect("status json");
        assert_eq!(status["status"], "Success");
        assert_eq!(close, Some(1000));

        // v4 base64: stdout and stderr apart, the exit code in the status.
        let url = exec_url(
            &["sh", "-c", "echo out; echo err >&2; exit 3"],
            false,
            true,
            false,
        )
        .await;
        let (got, close) = ws_session(&url, "v4.base64.channel.k8s.io", vec![], true).await;
        assert_eq!(channel_text(&got, STDOUT), "out\n");
        assert_eq!(channel_text(&got, STDERR), "err\n");
        let status: serde_json::Value =
            serde_json::from_str(&channel_text(&got, ERROR)).expect("status json");
        assert_eq!(status["reason"], "NonZeroExitCode");
        assert_eq!(status["details"]["causes"][0]["message"], "3");
        assert_eq!(close, Some(1000));

        // A terminal follows the resize channel.
        let url = exec_url(&["sh", "-c", "sleep 1; stty size"], true, false, true).await;
        let (got, _) = ws_session(
            &url,
            "v5.channel.k8s.io",
            vec![[&[RESIZE][..], br#"{"Width":91,"Height":17}"#].concat()],
            false,
        )
        .await;
        assert!(channel_text(&got, STDOUT).contains("17 91"), "{got:?}");

        // Port-forward here is SPDY only: a WebSocket gets a clear 400, not a hang.
        let sandbox = runtime
            .clone()
            .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
            .await
            .expect("list sandboxes")
            .into_inner()
            .items
            .into_iter()
            .find(|s| s.metadata.as_ref().is_some_and(|m| m.name == "box"))
            .expect("the pod's sandbox")
            .id;
        let pf_url = runtime
            .clone()
            .port_forward(cri::PortForwardRequest {
                pod_sandbox_id: sandbox,
                port: vec![80],
            })
            .await
            .expect("PortForward")
            .into_inner()
            .url;
        {
            use tokio_tungstenite::tungstenite::client::IntoClientRequest;
            let req = pf_url
                .replacen("http://", "ws://", 1)
                .into_client_request()
                .expect("request");
            let uri: http::Uri = pf_url.parse().expect("url");
            let tcp = tokio::net::TcpStream::connect(uri.authority().expect("host").as_str())
                .await
                .expect("connect");
            match tokio_tungstenite::client_async(req, tcp).await {
                Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                    assert_eq!(resp.status(), 400)
                }
                other => panic!("expected 400, got {:?}", other.map(|(_, r)| r.status())),
            }
        }

        // A token is good for the TTL only: used after it, 404.
        let url = exec_url(&["true"], false, false, false).await;
        tokio::time::sleep(Duration::from_secs(4)).await;
        let uri: http::Uri = url.parse().expect("url");
        let tcp = tokio::net::TcpStream::connect(uri.authority().expect("host").as_str())
            .await
            .expect("connect");
        let req = http::Request::post(uri.path())
            .header("connection", "Upgrade")
            .header("upgrade", "SPDY/3.1")
            .header("x-stream-protocol-version", "v4.channel.k8s.io")
            .body(http_body_util::Empty::new())
            .expect("request");
        match rkind::stream::upgrade::client_upgrade(tcp, req)
            .await
            .expect("http")
        {
            rkind::stream::upgrade::ClientUpgrade::Refused { parts, body } => {
                assert_eq!(parts.status, 404);
                assert!(
                    String::from_utf8_lossy(&body).contains("invalid or expired"),
                    "{body:?}"
                );
            }
            rkind::stream::upgrade::ClientUpgrade::Switched { .. } => {
                panic!("an expired token was accepted")
            }
        }

        // A WebSocket client that leaves mid-session takes its process with it.
        let url = exec_url(&["sleep", "5161"], false, false, false).await;
        {
            use tokio_tungstenite::tungstenite::client::IntoClientRequest;
            let mut req = url
                .replacen("http://", "ws://", 1)
                .into_client_request()
                .expect("request");
            req.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                "v5.channel.k8s.io".parse().expect("hdr"),
            );
            let tcp = tokio::net::TcpStream::connect(uri.authority().expect("host").as_str())
                .await
                .expect("connect");
            let (ws, _) = tokio_tungstenite::client_async(req, tcp)
                .await
                .expect("upgrade");
            tokio::time::sleep(Duration::from_millis(500)).await;
            drop(ws);
        }
    });
    c.eventually(20, "the vanished client's process is gone", || {
        host_processes_with("5161") == 0
    });
}
