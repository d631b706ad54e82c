//! Test harness: starts the real `rkind` binary in a private temporary directory (its
//! own HOME, data dir, kubeconfig and free ports) and drives it with stock kubectl.
//! The cluster process is stopped when the handle drops, even if the test panics.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running test cluster.
pub struct Cluster {
    /// The temporary directory holding everything.
    pub dir: tempfile::TempDir,
    /// Cluster name.
    pub name: String,
    child: Option<Child>,
    /// Extra environment for the rkind process only (knobs such as the token TTL).
    rkind_env: Vec<(String, String)>,
}

/// The rkind binary under test (`RKIND_TEST_BIN` overrides it when the suite runs from a
/// copy, as `scripts/test-isolation-levels.sh` does for a non-root user).
pub fn rkind_bin() -> PathBuf {
    std::env::var_os("RKIND_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_rkind")))
}

/// The source tree's files the tests use (`scripts/`, `docs/`, `testdata/`);
/// `RKIND_TEST_SOURCE_DIR` overrides it like `RKIND_TEST_BIN`.
pub fn source_file(rel: &str) -> PathBuf {
    std::env::var_os("RKIND_TEST_SOURCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join(rel)
}

/// The directory with the versioned kubectl binaries (`kubectl.1.27` ...).
pub fn kubectl_dir() -> PathBuf {
    let real = std::fs::canonicalize(which("kubectl")).expect("kubectl on PATH");
    real.parent().expect("kubectl dir").to_path_buf()
}

fn which(bin: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(bin))
                .find(|p| p.exists())
        })
        .unwrap_or_else(|| PathBuf::from(format!("/usr/bin/{bin}")))
}

impl Cluster {
    /// Starts a cluster named `name` in a new temporary directory.
    pub fn start(name: &str) -> Cluster {
        Self::start_with_env(name, &[])
    }

    /// Starts a cluster whose rkind process also gets `env`.
    pub fn start_with_env(name: &str, env: &[(&str, &str)]) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix(&format!("rkind-test-{name}-"))
            .tempdir()
            .expect("tempdir");
        let mut c = Cluster {
            dir,
            name: name.to_string(),
            child: None,
            rkind_env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        c.boot();
        c
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The kubeconfig the cluster was merged into.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// Environment every command of this test gets: private HOME (kubectl's caches),
    /// XDG data home, XDG state home (rkind's cluster index) and KUBECONFIG.
    pub fn envs(&self) -> Vec<(String, String)> {
        let d = self.dir.path();
        vec![
            ("HOME".into(), d.display().to_string()),
            ("XDG_DATA_HOME".into(), d.join("xdg").display().to_string()),
            (
                "XDG_STATE_HOME".into(),
                self.state_home().display().to_string(),
            ),
            ("KUBECONFIG".into(), self.kubeconfig().display().to_string()),
        ]
    }

    /// This test's XDG state home: rkind's cluster index is `rkind/clusters.json` in it.
    pub fn state_home(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// (Re)starts the rkind process in the foreground and waits for "is ready".
    pub fn boot(&mut self) {
        let mut cmd = Command::new(rkind_bin());
        // Own process group: the harness can kill whatever the cluster left behind.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.args(["up", "--name", &self.name, "--data-dir"])
            .arg(self.data_dir())
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .envs(self.envs())
            .envs(self.rkind_env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn rkind");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let ready = line.contains("is ready");
                lines.push(line);
                if ready {
                    let _ = tx.send(Ok(()));
                }
            }
            let _ = tx.send(Err(lines.join("\n")));
        });
        self.child = Some(child);
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(())) => {}
            Ok(Err(out)) => panic!("rkind up failed:\n{out}"),
            Err(_) => panic!("rkind up did not become ready within 60 s"),
        }
    }

    /// The pid of the rkind process.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Stops the process with SIGTERM and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let start = Instant::now();
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if start.elapsed() > Duration::from_secs(20) {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("rkind did not stop within 20 s of SIGTERM");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Kills the process with SIGKILL (crash simulation).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs `kubectl` (the system dispatcher) with `args`.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_bin("kubectl", args, None)
    }

    /// Runs a specific kubectl binary (e.g. `kubectl.1.27`) with optional stdin.
    pub fn kubectl_bin(&self, bin: &str, args: &[&str], stdin: Option<&str>) -> Output {
        let path = if bin == "kubectl" {
            PathBuf::from("kubectl")
        } else {
            kubectl_dir().join(bin)
        };
        let mut cmd = Command::new(path);
        cmd.args(args)
            .envs(self.envs())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn kubectl");
        if let Some(input) = stdin {
            use std::io::Write;
            let mut s = child.stdin.take().expect("stdin");
            s.write_all(input.as_bytes()).expect("write stdin");
        }
        child.wait_with_output().expect("kubectl output")
    }

    /// The isolation level the cluster's runtime found (`namespaces`, `rootless` or
    /// `unprivileged`), as `rkind status` reports it (from the cluster's state file).
    pub fn isolation(&self) -> String {
        let text = std::fs::read_to_string(self.data_dir().join("cluster.json"))
            .expect("the cluster's state file");
        let v: serde_json::Value = serde_json::from_str(&text).expect("state JSON");
        v["isolation"]
            .as_str()
            .expect("isolation in cluster.json")
            .to_string()
    }

    /// Runs kubectl and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Releases an object held by finalizers: `kubectl patch <target>` clearing them
    /// (`target` is what names it: `["widget", "w1"]`, `["-n", "ns", "configmap", "c"]`).
    pub fn clear_finalizers(&self, target: &[&str]) {
        let mut args = vec!["patch"];
        args.extend_from_slice(target);
        args.extend(["--type=merge", "-p", r#"{"metadata":{"finalizers":null}}"#]);
        self.ok(&args);
    }

    /// Runs kubectl with stdin and asserts success; returns stdout.
    pub fn ok_stdin(&self, args: &[&str], stdin: &str) -> String {
        let out = self.kubectl_bin("kubectl", args, Some(stdin));
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl with stdin, asserts failure, returns stderr.
    pub fn fails_stdin(&self, args: &[&str], stdin: &str) -> String {
        let out = self.kubectl_bin("kubectl", args, Some(stdin));
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Runs kubectl, asserts failure, returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Runs the rkind CLI with this cluster's environment.
    pub fn rkind(&self, args: &[&str]) -> Output {
        Command::new(rkind_bin())
            .args(args)
            .envs(self.envs())
            .stdin(Stdio::null())
            .output()
            .expect("run rkind")
    }

    /// Waits until something in pod `pod` accepts TCP connections on `port` (its
    /// loopback), checked from inside with `kubectl exec`.
    pub fn wait_listening(&self, pod: &str, port: u16) {
        let probe = format!("import socket; socket.create_connection(('127.0.0.1', {port}))");
        self.eventually(30, &format!("{pod} listens on {port}"), || {
            self.kubectl(&["exec", pod, "--", "python3", "-c", &probe])
                .status
                .success()
        });
    }

    /// Polls `f` until it returns true (or panics after `secs`).
    pub fn eventually(&self, secs: u64, what: &str, mut f: impl FnMut() -> bool) {
        let start = Instant::now();
        while !f() {
            assert!(
                start.elapsed() < Duration::from_secs(secs),
                "timed out after {secs}s waiting for: {what}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let pgid = self.child.as_ref().map(|c| c.id() as i32);
        let stopped = self.shutdown_child();
        if let Some(pgid) = pgid {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        // After every test: a cluster that stopped left nothing behind (checked, not
        // assumed). A test that already fails only gets the cleanup.
        let left = self.leftovers();
        if !left.is_empty() {
            rkind::runtime::leftovers::clean(&self.data_dir().join("runtime"), Path::new(""));
        }
        if !std::thread::panicking() {
            assert!(stopped, "rkind did not stop within 15 s of SIGTERM");
            assert!(
                left.is_empty(),
                "left behind by cluster {}: {left:?}",
                self.name
            );
        }
    }
}

impl Cluster {
    /// What the cluster left: processes and cgroups (its runtime's records), and mounts
    /// under its directory; polled for a moment, as the last holders exit asynchronously.
    fn leftovers(&self) -> Vec<String> {
        let runtime = self.data_dir().join("runtime");
        let dir = self.dir.path().display().to_string();
        let start = Instant::now();
        loop {
            let found = rkind::runtime::leftovers::find(&runtime);
            let mut left: Vec<String> = found
                .processes
                .iter()
                .map(|p| {
                    let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                    format!(
                        "process {p}: {}",
                        String::from_utf8_lossy(&cmd).replace('\0', " ")
                    )
                })
                .collect();
            left.extend(found.cgroups.iter().map(|c| format!("cgroup {:?}", c.dirs)));
            left.extend(
                std::fs::read_to_string("/proc/self/mountinfo")
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| l.contains(&dir))
                    .map(|l| format!("mount {l}")),
            );
            if left.is_empty() || start.elapsed() > Duration::from_secs(5) {
                return left;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Cluster {
    /// SIGTERM, then SIGKILL after 15 s; false if it had to be killed.
    fn shutdown_child(&mut self) -> bool {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(15) {
                if let Ok(Some(_)) = child.try_wait() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        true
    }
}

/// Writes `text` to a file in the cluster's temp dir and returns its path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write test file");
    p
}
