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
/// run on that terminal. Stdin stays open (empty) for `secs`.
fn on_terminal(c: &Cluster, client: Client, cols: u16, rows: u16, inner: &str) -> Output {
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
    let stdin = child.stdin.take();
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
            "KUBECTL exec -it box -- sh -c 'echo to-out; echo to-err >&2; test -t 0 && echo stdin-is-tty'",
        );
        let o = text(&out.stdout);
        assert!(
            o.contains("to-out\r\nto-err\r\nstdin-is-tty\r\n"),
            "{client:?}: {o:?}"
        );
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
    c.eventually(30, "http server in the pod", || {
        c.kubectl(&[
            "exec",
            "web",
            "--",
            "python3",
            "-c",
            "import socket; socket.create_connection(('127.0.0.1', 8080))",
        ])
        .status
        .success()
    });
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
