//! The runtime under a crash and under hostile input: a restarted rkind adopts the
//! containers that still run (no second copy), pods cannot read the cluster's keys, a
//! sandbox name the kernel refuses as a hostname neither hangs nor leaks, and stopping
//! a container ends every process in it.

mod common;

use std::time::{Duration, Instant};

use common::Cluster;
use rkind::runtime::cri;

/// Command lines of the live processes that contain `marker`.
fn processes_with(marker: &str) -> Vec<(u32, String)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let raw = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let zombie = stat.rsplit(')').next()?.trim_start().starts_with('Z');
            (!zombie && cmd.contains(marker)).then_some((pid, cmd))
        })
        .collect()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

fn jsonpath(c: &Cluster, pod: &str, path: &str) -> String {
    c.ok(&["get", "pod", pod, "-o", &format!("jsonpath={path}")])
        .trim()
        .to_string()
}

fn wait_running(c: &Cluster, pod: &str) {
    c.eventually(60, &format!("{pod} Running"), || {
        !jsonpath(
            c,
            pod,
            "{.status.containerStatuses[0].state.running.startedAt}",
        )
        .is_empty()
    });
}

#[test]
fn a_restarted_cluster_adopts_its_running_containers() {
    let mut c = Cluster::start("adopt");
    let marker = unique("/tmp/adopt");
    c.ok(&[
        "run",
        "web",
        "--image=rkind/host",
        "--",
        "python3",
        "-m",
        "http.server",
        "8080",
        "--directory",
        &marker,
    ]);
    // A terminal container too: its output goes through the pty the shim keeps open.
    c.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: tick}\nspec:\n  containers:\n  - name: c\n    image: rkind/host\n    tty: true\n    command: [sh, -c, 'i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.2; done']\n",
    );
    wait_running(&c, "web");
    wait_running(&c, "tick");
    c.wait_listening("web", 8080);
    let id = jsonpath(&c, "web", "{.status.containerStatuses[0].containerID}");
    let before = processes_with(&marker);
    assert_eq!(before.len(), 1, "one server before the crashes: {before:?}");
    for round in 1..=2 {
        c.kill9();
        c.boot();
        // The kubelet has seen the pod again once the node is Ready; give it time to
        // (wrongly) start a second copy before counting.
        c.wait_listening("web", 8080);
        std::thread::sleep(Duration::from_secs(2));
        let now = processes_with(&marker);
        assert_eq!(
            now.iter().map(|p| p.0).collect::<Vec<_>>(),
            before.iter().map(|p| p.0).collect::<Vec<_>>(),
            "after crash {round}: the same single server runs: {now:?}"
        );
        assert_eq!(
            jsonpath(&c, "web", "{.status.containerStatuses[0].restartCount}"),
            "0",
            "after crash {round}"
        );
        assert_eq!(
            jsonpath(&c, "web", "{.status.containerStatuses[0].containerID}"),
            id,
            "after crash {round}: the same container"
        );
        assert_eq!(jsonpath(&c, "web", "{.status.phase}"), "Running");
    }
    // Its output still reaches its log: a request made now is logged by the server
    // (http.server writes one line per request to stderr, pumped from the FIFO again).
    let path = unique("/after-crash");
    c.ok(&[
        "exec",
        "web",
        "--",
        "python3",
        "-c",
        &format!(
            "import urllib.request as u\ntry: u.urlopen('http://127.0.0.1:8080{path}')\nexcept Exception: pass"
        ),
    ]);
    c.eventually(20, "the request after the crashes in the log", || {
        String::from_utf8_lossy(&c.kubectl(&["logs", "web"]).stdout).contains(&path)
    });
    // The terminal container's output kept flowing into its log across the crashes: a
    // tick counted after the last restart is there, and it never restarted.
    let ticks = |c: &Cluster| -> usize {
        let logs = String::from_utf8_lossy(&c.kubectl(&["logs", "tick"]).stdout).into_owned();
        logs.lines()
            .filter_map(|l| l.trim().strip_prefix("tick-")?.parse().ok())
            .max()
            .unwrap_or(0)
    };
    let seen = ticks(&c);
    c.eventually(20, "new ticks after the crashes", || ticks(&c) > seen + 3);
    assert_eq!(
        jsonpath(&c, "tick", "{.status.containerStatuses[0].restartCount}"),
        "0"
    );
    // Stopping it after adoption still works (no shim of ours is its parent).
    c.ok(&["delete", "pod", "web", "--grace-period=1", "--wait=true"]);
    c.eventually(20, "the adopted server is gone", || {
        processes_with(&marker).is_empty()
    });
}

#[test]
fn a_container_that_died_during_the_crash_is_restarted_by_policy() {
    let mut c = Cluster::start("died");
    // `sleep` with a unique number that marks the process.
    let secs = format!("{}", 900_000 + rand::random::<u32>() % 99_999);
    c.ok(&["run", "nap", "--image=rkind/host", "--", "sleep", &secs]);
    wait_running(&c, "nap");
    let napping = processes_with(&format!("sleep {secs}"));
    assert_eq!(napping.len(), 1, "{napping:?}");
    c.kill9();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(napping[0].0 as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let start = Instant::now();
    while !processes_with(&format!("sleep {secs}")).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "sleep did not end"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    c.boot();
    c.eventually(60, "the container restarted once", || {
        jsonpath(&c, "nap", "{.status.containerStatuses[0].restartCount}") == "1"
            && !jsonpath(
                &c,
                "nap",
                "{.status.containerStatuses[0].state.running.startedAt}",
            )
            .is_empty()
    });
    assert_eq!(
        jsonpath(
            &c,
            "nap",
            "{.status.containerStatuses[0].lastState.terminated.exitCode}"
        ),
        "137",
        "the exit its shim saw (SIGKILL) is the last state"
    );
    assert_eq!(processes_with(&format!("sleep {secs}")).len(), 1);
}

#[test]
fn pods_cannot_read_the_clusters_keys() {
    let c = Cluster::start("masked");
    c.ok(&[
        "run",
        "peek",
        "--image=rkind/host",
        "--restart=Never",
        "--",
        "sleep",
        "300",
    ]);
    wait_running(&c, "peek");
    let data = std::fs::canonicalize(c.data_dir()).unwrap();
    let xdg = c.dir.path().join("xdg/rkind");
    std::fs::create_dir_all(xdg.join("other")).unwrap();
    std::fs::write(xdg.join("other/ca.key"), "secret").unwrap();
    let kubeconfig = std::fs::canonicalize(c.kubeconfig()).unwrap();
    let script = format!(
        "ls -A {d}; ls -A {x}; cat {k}; cat {d}/pki/ca.key {d}/ca.key 2>/dev/null; true",
        d = data.display(),
        x = xdg.display(),
        k = kubeconfig.display()
    );
    let out = c.ok(&["exec", "peek", "--", "sh", "-c", &script]);
    if c.isolation() == "unprivileged" {
        // No mount namespace: nothing can be hidden (the README says so); pods see
        // the host as the user does.
        assert!(out.contains("runtime"), "{out}");
        return;
    }
    assert_eq!(out.trim(), "", "the pod sees nothing of rkind's: {out}");
    // Hidden, not writable either.
    let write = c.kubectl(&[
        "exec",
        "peek",
        "--",
        "sh",
        "-c",
        &format!("echo x > {}/planted", data.display()),
    ]);
    assert!(!write.status.success());
    assert!(!data.join("planted").exists());
    // The store is the user's alone.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data.join("store")), 0o700);
    assert_eq!(mode(&data.join("store/db")), 0o600);
}

/// Runs `f` with CRI clients on the cluster's socket.
fn with_cri<F, Fut>(c: &Cluster, f: F)
where
    F: FnOnce(cri::runtime_service_client::RuntimeServiceClient<tonic::transport::Channel>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let sock = c.data_dir().join("cri.sock");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ch = rkind::kubelet::pods::connect_cri(&sock).await.unwrap();
        f(cri::runtime_service_client::RuntimeServiceClient::new(ch)).await
    });
}

fn sandbox_config(
    c: &Cluster,
    name: &str,
    hostname: &str,
    pid: cri::NamespaceMode,
) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: name.into(),
            uid: unique("uid"),
            namespace: "critest".into(),
            attempt: 0,
        }),
        hostname: hostname.into(),
        log_directory: c.dir.path().join("crilogs").display().to_string(),
        linux: Some(cri::LinuxPodSandboxConfig {
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    pid: pid as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn long_sandbox_names_neither_hang_nor_leak() {
    let c = Cluster::start("longname");
    let holders = || {
        processes_with("__rkind-sandbox")
            .into_iter()
            .filter(|p| p.1.contains(&c.dir.path().display().to_string()))
            .count()
    };
    let before = holders();
    let cc = &c;
    with_cri(cc, |mut rt| async move {
        for i in 0..10 {
            let name = format!("{}-{i}", "n".repeat(70));
            // critest's way: a long name and no hostname, in a pod-wide PID namespace
            // (the case that used to leave the pod's PID 1 holding the ready pipe).
            let start = Instant::now();
            let id = tokio::time::timeout(
                Duration::from_secs(30),
                rt.run_pod_sandbox(cri::RunPodSandboxRequest {
                    config: Some(sandbox_config(cc, &name, "", cri::NamespaceMode::Pod)),
                    runtime_handler: String::new(),
                }),
            )
            .await
            .expect("RunPodSandbox answers")
            .expect("a sandbox without a hostname runs (the node's hostname)")
            .into_inner()
            .pod_sandbox_id;
            assert!(start.elapsed() < Duration::from_secs(20));
            rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: id.clone(),
            })
            .await
            .unwrap();
            rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: id })
                .await
                .unwrap();
            // A hostname the kernel refuses fails the call at once, with the reason.
            let err = tokio::time::timeout(
                Duration::from_secs(30),
                rt.run_pod_sandbox(cri::RunPodSandboxRequest {
                    config: Some(sandbox_config(cc, &name, &name, cri::NamespaceMode::Pod)),
                    runtime_handler: String::new(),
                }),
            )
            .await
            .expect("RunPodSandbox answers")
            .unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
            assert!(err.message().contains("63"), "{err:?}");
        }
    });
    // Nothing of the twenty attempts is left running.
    c.eventually(10, "no holder left behind", || holders() == before);
    // And a pod with a 70-character name runs through the kubelet (hostname cut to 63).
    let name = "p".repeat(70);
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  containers:\n  - {{name: c, image: rkind/host, command: [sleep, '300']}}\n"
        ),
    );
    wait_running(&c, &name);
    if c.isolation() != "unprivileged" {
        let h = c.ok(&["exec", &name, "--", "hostname"]);
        assert_eq!(h.trim(), &name[..63]);
    }
}

#[test]
fn stopping_a_container_ends_every_process_in_it() {
    let c = Cluster::start("stopall");
    let marker = format!("{}", 800_000 + rand::random::<u32>() % 99_999);
    let cc = &c;
    with_cri(cc, |mut rt| async move {
        for pid_mode in [cri::NamespaceMode::Pod, cri::NamespaceMode::Container] {
            let sb = rt
                .run_pod_sandbox(cri::RunPodSandboxRequest {
                    config: Some(sandbox_config(cc, "stopall", "stopall", pid_mode)),
                    runtime_handler: String::new(),
                })
                .await
                .unwrap()
                .into_inner()
                .pod_sandbox_id;
            let id = rt
                .create_container(cri::CreateContainerRequest {
                    pod_sandbox_id: sb.clone(),
                    config: Some(cri::ContainerConfig {
                        metadata: Some(cri::ContainerMetadata {
                            name: "kids".into(),
                            attempt: 0,
                        }),
                        image: Some(cri::ImageSpec {
                            image: "rkind/host".into(),
                            ..Default::default()
                        }),
                        command: vec![
                            "sh".into(),
                            "-c".into(),
                            format!("sleep {marker} & sleep {marker} & wait"),
                        ],
                        log_path: "kids.log".into(),
                        ..Default::default()
                    }),
                    sandbox_config: None,
                })
                .await
                .unwrap()
                .into_inner()
                .container_id;
            rt.start_container(cri::StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .unwrap();
            let start = Instant::now();
            while processes_with(&format!("sleep {marker}")).len() < 2 {
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "children started"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // `crictl stop -t 0`.
            tokio::time::timeout(
                Duration::from_secs(20),
                rt.stop_container(cri::StopContainerRequest {
                    container_id: id.clone(),
                    timeout: 0,
                }),
            )
            .await
            .expect("StopContainer answers")
            .expect("StopContainer");
            let st = rt
                .container_status(cri::ContainerStatusRequest {
                    container_id: id.clone(),
                    verbose: false,
                })
                .await
                .unwrap()
                .into_inner()
                .status
                .unwrap();
            assert_eq!(
                st.state,
                cri::ContainerState::ContainerExited as i32,
                "{pid_mode:?}"
            );
            let left = processes_with(&format!("sleep {marker}"));
            assert!(
                left.is_empty(),
                "{pid_mode:?}: children outlived the stop: {left:?}"
            );
            // `crictl rmp -f`.
            rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: sb })
                .await
                .expect("remove the sandbox after the stop");
        }
    });
}

/// Unmounts a tmpfs the test mounted, even when the test fails.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn tmp_stays_writable_in_rootless_pods_while_the_host_has_mounts_under_tmp() {
    // As root, the rootless level is tried by capping it, with a mount of the host's under
    // /tmp (what another cluster's memory volume is): the overlay of /tmp used to fail
    // then and fall back to a read-only bind.
    let root = nix::unistd::Uid::effective().is_root();
    let env: &[(&str, &str)] = if root {
        &[("RKIND_ISOLATION", "rootless")]
    } else {
        &[]
    };
    let c = Cluster::start_with_env("tmpwrite", env);
    let _mounted = if root && c.isolation() == "rootless" && c.dir.path().starts_with("/tmp") {
        let m = c.dir.path().join("host-volume");
        std::fs::create_dir_all(&m).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            &m,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .expect("mount a tmpfs under /tmp");
        Some(Mounted(m))
    } else {
        None
    };
    c.ok(&["run", "w", "--image=rkind/host", "--", "sleep", "300"]);
    wait_running(&c, "w");
    let marker = unique("written");
    c.ok(&[
        "exec",
        "w",
        "--",
        "sh",
        "-c",
        &format!(
            "mkdir -p /tmp/{marker}/d && echo ok > /tmp/{marker}/d/f && cat /tmp/{marker}/d/f"
        ),
    ]);
}

#[test]
fn exec_sync_timeouts_end_the_command_and_the_host_image_has_a_size() {
    let c = Cluster::start("execsync");
    c.ok(&["run", "box", "--image=rkind/host", "--", "sleep", "300"]);
    wait_running(&c, "box");
    let id = jsonpath(&c, "box", "{.status.containerStatuses[0].containerID}")
        .trim_start_matches("rkind://")
        .to_string();
    let secs = format!("{}", 700_000 + rand::random::<u32>() % 99_999);
    let sock = c.data_dir().join("cri.sock");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ch = rkind::kubelet::pods::connect_cri(&sock).await.unwrap();
        let mut runtime = cri::runtime_service_client::RuntimeServiceClient::new(ch.clone());
        let err = runtime
            .exec_sync(cri::ExecSyncRequest {
                container_id: id.clone(),
                cmd: vec!["sleep".into(), secs.clone()],
                timeout: 1,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::DeadlineExceeded, "{err:?}");
        // Gone by the time the caller hears of the timeout (critest checks at once).
        let left = processes_with(&format!("sleep {secs}"));
        assert!(
            left.is_empty(),
            "the timed-out command still runs: {left:?}"
        );
        // A stock kubelet refuses an image whose status has no size.
        let mut images = cri::image_service_client::ImageServiceClient::new(ch);
        let host = images
            .image_status(cri::ImageStatusRequest {
                image: Some(cri::ImageSpec {
                    image: "rkind/host".into(),
                    ..Default::default()
                }),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner()
            .image
            .expect("the host image");
        assert!(host.size > 0 && !host.id.is_empty(), "{host:?}");
    });
}
