//! The `rkind` command line as a user runs it: `up --detach`, `status`, `kubeconfig`,
//! `down`, two clusters side by side, and clear errors for bad input.

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The rkind binary under test (see `tests/common`: `RKIND_TEST_BIN` overrides it).
fn rkind_bin() -> std::path::PathBuf {
    std::env::var_os("RKIND_TEST_BIN")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_rkind").into())
}

fn rkind(home: &Path, args: &[&str]) -> Output {
    Command::new(rkind_bin())
        .args(args)
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("xdg"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("run rkind")
}

/// A private home, named so that scripts/check-leftovers.sh counts what it leaves.
fn test_home() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("rkind-test-cli-")
        .tempdir()
        .expect("tempdir")
}

fn kubectl(home: &Path, args: &[&str]) -> Output {
    Command::new("kubectl")
        .args(args)
        .env("HOME", home)
        .env_remove("KUBECONFIG")
        .output()
        .expect("run kubectl")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Stops every cluster of a test home even if the test fails.
struct Cleanup<'a>(&'a Path, Vec<&'static str>);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for name in &self.1 {
            let _ = rkind(self.0, &["down", "--name", name]);
        }
    }
}

#[test]
fn detached_clusters_side_by_side() {
    let home = test_home();
    let h = home.path();
    let _cleanup = Cleanup(h, vec!["one", "two"]);
    let up1 = rkind(h, &["up", "--name", "one", "--detach"]);
    assert!(up1.status.success(), "{}", text(&up1));
    let out = text(&up1);
    for step in [
        "Certificates",
        "Store",
        "API server",
        "Node one-control-plane Ready",
        "Running in the background",
    ] {
        assert!(out.contains(step), "missing {step:?} in:\n{out}");
    }
    let up2 = rkind(h, &["up", "--name", "two", "-d"]);
    assert!(up2.status.success(), "{}", text(&up2));
    // Both contexts are in ~/.kube/config; the last one is current.
    let ctxs = text(&kubectl(h, &["config", "get-contexts", "-o", "name"]));
    assert!(
        ctxs.contains("rkind-one") && ctxs.contains("rkind-two"),
        "{ctxs}"
    );
    let nodes = text(&kubectl(h, &["get", "nodes"]));
    assert!(nodes.contains("two-control-plane"), "{nodes}");
    let nodes = text(&kubectl(h, &["--context", "rkind-one", "get", "nodes"]));
    assert!(nodes.contains("one-control-plane"), "{nodes}");
    // Key files are private.
    use std::os::unix::fs::PermissionsExt;
    let key = h.join("xdg/rkind/one/pki/admin.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(h.join("xdg/rkind/one/rkind.pid").exists());
    assert!(h.join("xdg/rkind/one/rkind.log").exists());

    let st = rkind(h, &["status", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).expect("status json");
    let clusters = v["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 2, "{v}");
    assert!(clusters.iter().all(|c| c["ready"] == true), "{v}");
    // The isolation level found by trying: which one depends on who runs the suite.
    assert!(
        clusters
            .iter()
            .all(|c| ["namespaces", "rootless", "unprivileged"]
                .contains(&c["isolation"].as_str().unwrap_or(""))),
        "{v}"
    );
    let table = text(&rkind(h, &["status"]));
    assert!(table.contains("ISOLATION"), "{table}");
    // `up` names the level; a weaker one is explained (with what was tried).
    let up_text = text(&up1);
    let level = clusters[0]["isolation"].as_str().unwrap_or("");
    assert!(
        up_text.contains(&format!("isolation: {level}")),
        "{up_text}"
    );
    assert_eq!(
        up_text.contains("   ! tried: "),
        level != "namespaces",
        "{up_text}"
    );
    assert_ne!(clusters[0]["server"], clusters[1]["server"]);

    let kc = rkind(h, &["kubeconfig", "--name", "one"]);
    assert!(text(&kc).contains("rkind-one") && text(&kc).contains("client-key-data"));

    // A second `up` of a running cluster is refused clearly.
    let again = rkind(h, &["up", "--name", "one", "-d"]);
    assert!(!again.status.success());
    assert!(text(&again).contains("already running"), "{}", text(&again));

    let pid: i32 = std::fs::read_to_string(h.join("xdg/rkind/one/rkind.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let down = rkind(h, &["down", "--name", "one"]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid),
        "process still running"
    );
    let ctxs = text(&kubectl(h, &["config", "get-contexts", "-o", "name"]));
    assert!(
        !ctxs.contains("rkind-one") && ctxs.contains("rkind-two"),
        "{ctxs}"
    );
    let st = text(&rkind(h, &["status", "--name", "one"]));
    assert!(st.contains("Stopped"), "{st}");
    // Restart keeps the data (same port, same objects).
    let up1 = rkind(h, &["up", "--name", "one", "-d"]);
    assert!(up1.status.success(), "{}", text(&up1));
    let nodes = text(&kubectl(h, &["get", "nodes", "--context", "rkind-one"]));
    assert!(nodes.contains("one-control-plane"), "{nodes}");
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

#[test]
fn bad_input_gets_clear_messages() {
    let home = test_home();
    let h = home.path();
    let out = rkind(h, &["up", "--name", "Bad_Name"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("invalid cluster name"),
        "{}",
        text(&out)
    );
    let out = rkind(h, &["down", "--name", "ghost"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no cluster \"ghost\" found"),
        "{}",
        text(&out)
    );
    let out = rkind(h, &["kubeconfig", "--name", "ghost"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no cluster \"ghost\""),
        "{}",
        text(&out)
    );
    // A bad isolation level is refused by name, before any pod could run.
    let out = Command::new(rkind_bin())
        .args(["up", "--name", "badlevel"])
        .env("HOME", h)
        .env("XDG_DATA_HOME", h.join("xdg"))
        .env("KUBECONFIG", h.join("kubeconfig"))
        .env("RKIND_ISOLATION", "bogus")
        .stdin(Stdio::null())
        .output()
        .expect("rkind up");
    assert!(!out.status.success());
    assert!(
        text(&out)
            .contains("RKIND_ISOLATION=\"bogus\": expected namespaces, rootless or unprivileged"),
        "{}",
        text(&out)
    );
    let out = rkind(h, &["--version"]);
    assert!(text(&out).starts_with("rkind "), "{}", text(&out));
    let out = rkind(h, &["completion", "bash"]);
    assert!(out.status.success() && text(&out).contains("rkind"));
    let out = rkind(h, &["up", "--help"]);
    assert!(text(&out).contains("--detach"));
}

/// `rkind run` as a CI job uses it: the command sees a private cluster through
/// KUBECONFIG, its exit code comes back, logs are exported on failure, nothing is left
/// behind, and two runs at once do not collide.
#[test]
fn run_is_a_hermetic_harness() {
    let home = test_home();
    let h = home.path();
    std::fs::create_dir_all(h.join(".kube")).expect("mkdir");
    let run = |name: &str, script: &str| {
        let h = h.to_path_buf();
        let name = name.to_string();
        let script = script.to_string();
        std::thread::spawn(move || {
            Command::new(rkind_bin())
                .args(["run", "--name", &name, "--", "sh", "-c", &script])
                .current_dir(&h)
                .env("HOME", &h)
                .env("XDG_DATA_HOME", h.join("xdg"))
                .env_remove("KUBECONFIG")
                .stdin(Stdio::null())
                .output()
                .expect("rkind run")
        })
    };
    let ok = run(
        "run-ok",
        "kubectl run p --image=rkind/host --restart=Never -- true >/dev/null && \
         kubectl wait --for=jsonpath={.status.phase}=Succeeded pod/p --timeout=60s >/dev/null && \
         kubectl get nodes -o name",
    );
    let failing = run("run-fail", "kubectl get nodes -o name; exit 7");
    let ok = ok.join().expect("thread");
    let failing = failing.join().expect("thread");
    assert!(ok.status.success(), "{}", text(&ok));
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout),
        "node/run-ok-control-plane\n",
        "stdout belongs to the command"
    );
    assert_eq!(failing.status.code(), Some(7), "{}", text(&failing));
    assert_eq!(
        String::from_utf8_lossy(&failing.stdout),
        "node/run-fail-control-plane\n"
    );
    let logs = h.join("rkind-logs-run-fail");
    let nodes = std::fs::read_to_string(logs.join("nodes.json")).expect("exported nodes");
    assert!(nodes.contains("run-fail-control-plane"));
    assert!(!h.join("rkind-logs-run-ok").exists());
    // Nothing global touched, nothing left in the temp dir.
    assert!(!h.join(".kube/config").exists(), "~/.kube/config untouched");
    let leftovers: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .expect("tmp")
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with("rkind-run-run-ok-") || n.starts_with("rkind-run-run-fail-")
        })
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

/// Ctrl-C on `rkind run` (SIGINT to its whole process group, as a terminal sends it)
/// stops the command and the cluster with its pod, and leaves nothing behind.
#[test]
fn run_cleans_up_on_sigint() {
    use std::io::BufRead;
    let home = test_home();
    let h = home.path();
    let mut cmd = Command::new(rkind_bin());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    // As in a terminal's foreground job, SIGINT has its default action (the suite may
    // run under a runner that ignores it, and ignoring is inherited).
    // SAFETY: signal() is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = cmd
        .args(["run", "--name", "run-int", "--", "sh", "-c"])
        .arg(
            "kubectl run p --image=rkind/host -- sleep 4343 >/dev/null && \
             kubectl wait --for=condition=Ready pod/p --timeout=60s >/dev/null && \
             echo ready && sleep 120",
        )
        .current_dir(h)
        .env("HOME", h)
        .env("XDG_DATA_HOME", h.join("xdg"))
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rkind run");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    assert_eq!(line.trim(), "ready", "the pod runs");
    let pod_running = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .any(|c| String::from_utf8_lossy(&c).contains("sleep\u{0}4343"))
    };
    assert!(pod_running(), "the pod's process is there before Ctrl-C");
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    let out = child.wait_with_output().expect("rkind run exits");
    assert_eq!(
        out.status.code(),
        Some(130),
        "128 + SIGINT: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!pod_running(), "the pod's process is gone");
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .expect("tmp")
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("rkind-run-run-int-")
        })
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn down_cleans_up_after_a_crashed_cluster() {
    let home = test_home();
    let h = home.path();
    let _cleanup = Cleanup(h, vec!["crash"]);
    let up = rkind(h, &["up", "--name", "crash", "-d"]);
    assert!(up.status.success(), "{}", text(&up));
    let run = kubectl(
        h,
        &[
            "run",
            "victim",
            "--image=rkind/host",
            "--restart=Never",
            "--",
            "sleep",
            "4242",
        ],
    );
    assert!(run.status.success(), "{}", text(&run));
    let wait = kubectl(
        h,
        &[
            "wait",
            "--for=condition=Ready",
            "pod/victim",
            "--timeout=60s",
        ],
    );
    assert!(wait.status.success(), "{}", text(&wait));
    let id = text(&kubectl(
        h,
        &[
            "get",
            "pod",
            "victim",
            "-o",
            "jsonpath={.status.containerStatuses[0].containerID}",
        ],
    ))
    .trim_start_matches("rkind://")
    .to_string();
    let cgroup_dirs = [
        std::path::PathBuf::from("/sys/fs/cgroup/memory/rkind").join(&id),
        std::path::PathBuf::from("/sys/fs/cgroup/rkind").join(&id),
    ];
    // Where the node has cgroups (root here; not for a non-root user or in a container)
    // the container has one, and the cleanup must remove it.
    let limits = text(&kubectl(
        h,
        &[
            "get",
            "node",
            "-o",
            "jsonpath={.items[0].status.conditions[?(@.type==\"CgroupLimits\")].status}",
        ],
    ));
    assert!(
        limits.trim() == "False" || cgroup_dirs.iter().any(|d| d.exists()),
        "the container has a cgroup (CgroupLimits {limits}): {cgroup_dirs:?}"
    );
    let data = h.join("xdg/rkind/crash");
    let pid: i32 = std::fs::read_to_string(data.join("rkind.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // A crash: the cluster dies, its pod does not.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let marker = data.display().to_string();
    let leftovers = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains("sleep 4242") || (c.contains("__rkind-") && c.contains(&marker)))
            .count()
    };
    assert!(
        leftovers() >= 2,
        "the pod outlives the crash (shim, holder, sleep)"
    );
    let down = rkind(h, &["down", "--name", "crash"]);
    let out = text(&down);
    assert!(down.status.success(), "{out}");
    assert!(out.contains("is not running"), "{out}");
    assert!(out.contains("Cleaned up after a crash"), "{out}");
    let start = std::time::Instant::now();
    while leftovers() > 0 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "processes left after rkind down"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        cgroup_dirs.iter().all(|d| !d.exists()),
        "the container's cgroup is removed: {cgroup_dirs:?}"
    );
}
