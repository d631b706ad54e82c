//! Pods run for real: end-to-end tests with stock kubectl against `rkind up`, plus
//! CRI-level tests that drive the runtime's socket with a gRPC client.

mod common;

use common::{Cluster, write_file};

fn phase(c: &Cluster, pod: &str) -> String {
    c.ok(&["get", "pod", pod, "-o", "jsonpath={.status.phase}"])
}

fn wait_phase(c: &Cluster, pod: &str, want: &str) {
    c.eventually(30, &format!("pod {pod} phase {want}"), || {
        phase(c, pod) == want
    });
}

fn logs(c: &Cluster, pod: &str, extra: &[&str]) -> String {
    let mut args = vec!["logs", pod];
    args.extend_from_slice(extra);
    c.ok(&args)
}

#[test]
fn pods_run_with_exit_codes_logs_and_restarts() {
    let c = Cluster::start("pods");
    c.ok(&[
        "run",
        "hello",
        "--image=rkind/host",
        "--restart=Never",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 0",
    ]);
    c.ok(&[
        "run",
        "fails",
        "--image=rkind/host",
        "--restart=Never",
        "--",
        "sh",
        "-c",
        "echo about to fail; exit 3",
    ]);
    c.ok(&[
        "run",
        "crash",
        "--image=rkind/host",
        "--",
        "sh",
        "-c",
        "echo crash; exit 1",
    ]);
    wait_phase(&c, "hello", "Succeeded");
    wait_phase(&c, "fails", "Failed");
    assert_eq!(
        c.ok(&[
            "get",
            "pod",
            "fails",
            "-o",
            "jsonpath={.status.containerStatuses[0].state.terminated.exitCode}"
        ]),
        "3"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "pod",
            "hello",
            "-o",
            "jsonpath={.status.containerStatuses[0].state.terminated.reason}"
        ]),
        "Completed"
    );
    let out = logs(&c, "hello", &[]);
    assert!(out.contains("out") && out.contains("err"), "{out}");
    let ts = logs(&c, "hello", &["--timestamps"]);
    assert!(ts.lines().all(|l| l.starts_with("20")), "{ts}");
    // Crash loop: the container restarts with back-off and reports CrashLoopBackOff.
    c.eventually(40, "crash restarted", || {
        c.ok(&[
            "get",
            "pod",
            "crash",
            "-o",
            "jsonpath={.status.containerStatuses[0].restartCount}",
        ])
        .parse::<i32>()
        .unwrap_or(0)
            >= 1
    });
    c.eventually(20, "CrashLoopBackOff", || {
        c.ok(&[
            "get",
            "pod",
            "crash",
            "-o",
            "jsonpath={.status.containerStatuses[0].state.waiting.reason}",
        ]) == "CrashLoopBackOff"
    });
    let prev = logs(&c, "crash", &["--previous"]);
    assert!(prev.contains("crash"), "{prev}");
    let describe = c.ok(&["describe", "pod", "crash"]);
    for ev in ["Scheduled", "Pulled", "Created", "Started", "BackOff"] {
        assert!(describe.contains(ev), "describe lacks {ev}:\n{describe}");
    }
    let get = c.ok(&["get", "pods"]);
    assert!(
        get.contains("Completed") && get.contains("CrashLoopBackOff"),
        "{get}"
    );
}

#[test]
fn pod_spec_reaches_the_process() {
    let c = Cluster::start("spec");
    c.ok(&[
        "create",
        "configmap",
        "cfg",
        "--from-literal=greeting=hi from cm",
    ]);
    c.ok(&[
        "create",
        "secret",
        "generic",
        "sec",
        "--from-literal=password=s3cret",
    ]);
    let manifest = r#"apiVersion: v1
kind: Pod
metadata:
  name: spec
  labels: {app: spec}
spec:
  restartPolicy: Never
  initContainers:
  - name: first
    image: rkind/host
    command: ["sh", "-c", "echo first >> /init-work/order"]
    volumeMounts: [{name: work, mountPath: /init-work}]
  - name: second
    image: rkind/host
    command: ["sh", "-c", "echo second >> /init-work/order"]
    volumeMounts: [{name: work, mountPath: /init-work}]
  containers:
  - name: main
    image: rkind/host
    command: ["sh", "-c"]
    args: ["echo cwd=$(pwd); echo env=$MY_VAR; echo host=$(hostname); cat /init-work/order; cat /cfg/greeting; echo; cat /sec/password; echo; cat /etc/podinfo/name; echo; sleep 2; cat /shared/from-side"]
    workingDir: /tmp
    env: [{name: MY_VAR, value: "hello $(POD)"}, {name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
    volumeMounts:
    - {name: work, mountPath: /init-work}
    - {name: cfg, mountPath: /cfg}
    - {name: sec, mountPath: /sec}
    - {name: info, mountPath: /etc/podinfo}
    - {name: shared, mountPath: /shared}
  - name: side
    image: rkind/host
    command: ["sh", "-c", "echo shared-ok > /shared/from-side"]
    volumeMounts: [{name: shared, mountPath: /shared}]
  volumes:
  - {name: work, emptyDir: {}}
  - {name: shared, emptyDir: {}}
  - {name: cfg, configMap: {name: cfg}}
  - {name: sec, secret: {secretName: sec}}
  - name: info
    downwardAPI:
      items: [{path: name, fieldRef: {fieldPath: metadata.name}}]
"#;
    let f = write_file(c.dir.path(), "spec.yaml", manifest);
    c.ok(&["apply", "-f", f.to_str().unwrap()]);
    wait_phase(&c, "spec", "Succeeded");
    let out = c.ok(&["logs", "spec", "-c", "main"]);
    // The unprivileged level cannot give pods a hostname of their own.
    let host = if c.isolation() == "unprivileged" {
        format!(
            "host={}",
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .unwrap()
                .trim()
        )
    } else {
        "host=spec".to_string()
    };
    for want in [
        "cwd=/tmp",
        "env=hello $(POD)",
        host.as_str(),
        "first\nsecond",
        "hi from cm",
        "s3cret",
        "spec",
        "shared-ok",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn pods_are_isolated_in_their_own_namespaces() {
    let c = Cluster::start("iso");
    c.ok(&["run", "ns", "--image=rkind/host", "--restart=Never", "--", "sh", "-c", "for n in mnt pid uts ipc net; do echo $n $(readlink /proc/self/ns/$n); done; ls /proc | grep -c '^[0-9]'; cat /sys/class/net/lo/operstate"]);
    wait_phase(&c, "ns", "Succeeded");
    let out = c.ok(&["logs", "ns"]);
    // The unprivileged level (inside an unprivileged container) creates no namespaces,
    // and says so; the test checks that it really shares them.
    let shared = c.isolation() == "unprivileged";
    for n in ["mnt", "pid", "uts", "ipc", "net"] {
        let host = std::fs::read_link(format!("/proc/self/ns/{n}")).unwrap();
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{n} ")))
            .unwrap_or_else(|| panic!("no {n} line in {out}"));
        if shared {
            assert_eq!(
                line.split_whitespace().nth(1).unwrap(),
                host.to_str().unwrap(),
                "{n} namespace at the unprivileged level"
            );
            continue;
        }
        assert_ne!(
            line.split_whitespace().nth(1).unwrap(),
            host.to_str().unwrap(),
            "{n} namespace is the host's"
        );
    }
    if shared {
        return;
    }
    let pids: usize = out
        .lines()
        .nth(5)
        .unwrap_or("999")
        .trim()
        .parse()
        .unwrap_or(999);
    assert!(
        pids < 10,
        "the container sees {pids} processes: not its own PID namespace\n{out}"
    );
    assert!(
        out.contains("up") || out.contains("unknown"),
        "loopback not up:\n{out}"
    );
    // A file written in the container does not reach the host.
    let marker = format!("/tmp/rkind-iso-{}", std::process::id());
    c.ok(&[
        "run",
        "writer",
        "--image=rkind/host",
        "--restart=Never",
        "--",
        "sh",
        "-c",
        &format!("echo x > {marker} && cat {marker}"),
    ]);
    wait_phase(&c, "writer", "Succeeded");
    assert!(
        !std::path::Path::new(&marker).exists(),
        "container wrote through to the host"
    );
}

#[test]
fn bad_pods_report_clear_reasons() {
    let c = Cluster::start("badpods");
    c.ok(&[
        "run",
        "noimage",
        "--image=does-not-exist:1.0",
        "--restart=Never",
    ]);
    c.eventually(30, "ErrImagePull", || {
        let r = c.ok(&[
            "get",
            "pod",
            "noimage",
            "-o",
            "jsonpath={.status.containerStatuses[0].state.waiting.reason}",
        ]);
        r == "ErrImagePull" || r == "ImagePullBackOff"
    });
    c.ok(&[
        "run",
        "nocmd",
        "--image=rkind/host",
        "--restart=Never",
        "--",
        "/no/such/binary",
    ]);
    c.eventually(30, "start error", || {
        let s = c.ok(&[
            "get",
            "pod",
            "nocmd",
            "-o",
            "jsonpath={.status.containerStatuses[0].state}",
        ]);
        s.contains("terminated") || s.contains("RunContainerError") || s.contains("StartError")
    });
    let manifest = "apiVersion: v1\nkind: Pod\nmetadata: {name: nocm}\nspec:\n  containers:\n  - {name: c, image: rkind/host, command: [sleep, '100'], volumeMounts: [{name: v, mountPath: /v}]}\n  volumes: [{name: v, configMap: {name: missing}}]\n";
    let f = write_file(c.dir.path(), "nocm.yaml", manifest);
    c.ok(&["apply", "-f", f.to_str().unwrap()]);
    c.eventually(20, "FailedMount event", || {
        c.ok(&["describe", "pod", "nocm"])
            .contains("configmap \"missing\" not found")
    });
    assert_eq!(phase(&c, "nocm"), "Pending");
}

#[test]
fn graceful_deletion_and_restart_keep_state() {
    let mut c = Cluster::start("lifecycle");
    c.ok(&[
        "run",
        "sleeper",
        "--image=rkind/host",
        "--",
        "sh",
        "-c",
        "echo started; trap 'echo got TERM; exit 0' TERM; while true; do sleep 0.2; done",
    ]);
    wait_phase(&c, "sleeper", "Running");
    c.ok(&[
        "run",
        "stubborn",
        "--image=rkind/host",
        "--",
        "sh",
        "-c",
        "trap '' TERM; while true; do sleep 0.2; done",
    ]);
    wait_phase(&c, "stubborn", "Running");
    // Restart of rkind keeps pods running and their logs.
    c.stop();
    c.boot();
    wait_phase(&c, "sleeper", "Running");
    assert!(logs(&c, "sleeper", &[]).contains("started"));
    let start = std::time::Instant::now();
    c.ok(&["delete", "pod", "sleeper", "--timeout=30s"]);
    assert!(
        start.elapsed().as_secs() < 10,
        "TERM-handling pod took {:?}",
        start.elapsed()
    );
    let start = std::time::Instant::now();
    c.ok(&[
        "delete",
        "pod",
        "stubborn",
        "--grace-period=2",
        "--timeout=30s",
    ]);
    let took = start.elapsed().as_secs_f64();
    assert!(
        took >= 1.5,
        "stubborn pod was killed before its grace period ({took}s)"
    );
    assert!(
        took < 15.0,
        "stubborn pod was not killed after its grace period ({took}s)"
    );
}

#[test]
fn cri_socket_answers_a_grpc_client() {
    use rkind::runtime::cri;
    let c = Cluster::start("cri");
    let sock = c.data_dir().join("cri.sock");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ch = rkind::kubelet::pods::connect_cri(&sock).await.unwrap();
        let mut runtime = cri::runtime_service_client::RuntimeServiceClient::new(ch.clone());
        let mut images = cri::image_service_client::ImageServiceClient::new(ch);
        let v = runtime
            .version(cri::VersionRequest {
                version: "v1".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(v.runtime_name, "rkind");
        assert_eq!(v.runtime_api_version, "v1");
        let st = runtime
            .status(cri::StatusRequest { verbose: false })
            .await
            .unwrap()
            .into_inner();
        let conditions = st.status.unwrap().conditions;
        let level = c.isolation();
        for cond in &conditions {
            // Limits need cgroups, which only root has on these machines.
            assert!(
                cond.status || (cond.r#type == "CgroupLimits" && level != "namespaces"),
                "{cond:?}"
            );
        }
        let isolation = conditions
            .iter()
            .find(|c| c.r#type == "Isolation")
            .expect("an Isolation condition");
        assert_eq!(isolation.reason.to_lowercase(), level, "{isolation:?}");
        // NotFound semantics: ImageStatus of an unknown image is empty, not an error.
        let s = images
            .image_status(cri::ImageStatusRequest {
                image: Some(cri::ImageSpec {
                    image: "nope:1".into(),
                    ..Default::default()
                }),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(s.image.is_none());
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
            .into_inner();
        assert!(host.image.is_some());
        // Stopping/removing an unknown sandbox is idempotent; its status is NotFound.
        runtime
            .stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: "nope".into(),
            })
            .await
            .unwrap();
        runtime
            .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: "nope".into(),
            })
            .await
            .unwrap();
        let err = runtime
            .pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: "nope".into(),
                verbose: false,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::NotFound);
        // A sandbox + container lifecycle through the socket.
        let sb = runtime
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(cri::PodSandboxConfig {
                    metadata: Some(cri::PodSandboxMetadata {
                        name: "crictl".into(),
                        uid: "u1".into(),
                        namespace: "default".into(),
                        attempt: 0,
                    }),
                    hostname: "crictl".into(),
                    log_directory: c.dir.path().join("crilogs").display().to_string(),
                    ..Default::default()
                }),
                runtime_handler: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .pod_sandbox_id;
        let id = runtime
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: sb.clone(),
                config: Some(cri::ContainerConfig {
                    metadata: Some(cri::ContainerMetadata {
                        name: "c".into(),
                        attempt: 0,
                    }),
                    image: Some(cri::ImageSpec {
                        image: "rkind/host".into(),
                        ..Default::default()
                    }),
                    command: vec!["sleep".into(), "30".into()],
                    log_path: "c.log".into(),
                    ..Default::default()
                }),
                sandbox_config: None,
            })
            .await
            .unwrap()
            .into_inner()
            .container_id;
        runtime
            .start_container(cri::StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .unwrap();
        let out = runtime
            .exec_sync(cri::ExecSyncRequest {
                container_id: id.clone(),
                cmd: vec!["hostname".into()],
                timeout: 5,
            })
            .await
            .unwrap()
            .into_inner();
        // The unprivileged level cannot give pods a hostname of their own.
        let hostname = if level == "unprivileged" {
            std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap()
        } else {
            "crictl".to_string()
        };
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), hostname.trim());
        let t = std::time::Instant::now();
        let err = runtime
            .exec_sync(cri::ExecSyncRequest {
                container_id: id.clone(),
                cmd: vec!["sleep".into(), "10".into()],
                timeout: 1,
            })
            .await;
        assert!(
            err.is_err() || t.elapsed().as_secs() < 5,
            "ExecSync ignored its timeout"
        );
        runtime
            .stop_container(cri::StopContainerRequest {
                container_id: id.clone(),
                timeout: 1,
            })
            .await
            .unwrap();
        let st = runtime
            .container_status(cri::ContainerStatusRequest {
                container_id: id.clone(),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            st.status.unwrap().state,
            cri::ContainerState::ContainerExited as i32
        );
        runtime
            .remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: sb })
            .await
            .unwrap();
        let list = runtime
            .list_containers(cri::ListContainersRequest { filter: None })
            .await
            .unwrap()
            .into_inner();
        assert!(list.containers.iter().all(|c| c.id != id));
    });
}

#[test]
fn probes_drive_readiness_and_restarts() {
    let c = Cluster::start("probes");
    let manifest = r#"apiVersion: v1
kind: Pod
metadata: {name: ready}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: rkind/host
    command: ["sh", "-c", "sleep 2; touch /tmp/ready; trap 'exit 0' TERM; while true; do sleep 0.2; done"]
    readinessProbe:
      exec: {command: ["test", "-f", "/tmp/ready"]}
      periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata: {name: live}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: rkind/host
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]
    livenessProbe:
      exec: {command: ["false"]}
      periodSeconds: 1
      failureThreshold: 2
---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: rkind/host
    command: ["python3", "-m", "http.server", "8080"]
    ports: [{name: http, containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /, port: http}
      periodSeconds: 1
    livenessProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 1
"#;
    let f = write_file(c.dir.path(), "probes.yaml", manifest);
    c.ok(&["apply", "-f", f.to_str().unwrap()]);
    let ready = |pod: &str| {
        c.ok(&[
            "get",
            "pod",
            pod,
            "-o",
            "jsonpath={.status.containerStatuses[0].ready}",
        ])
    };
    wait_phase(&c, "ready", "Running");
    assert_eq!(
        ready("ready"),
        "false",
        "ready before its readiness probe passed"
    );
    c.eventually(20, "readiness probe passes", || ready("ready") == "true");
    c.eventually(20, "condition Ready", || {
        c.ok(&[
            "get",
            "pod",
            "ready",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ]) == "True"
    });
    c.eventually(30, "http readiness probe passes", || ready("web") == "true");
    c.eventually(40, "liveness restarts", || {
        c.ok(&[
            "get",
            "pod",
            "live",
            "-o",
            "jsonpath={.status.containerStatuses[0].restartCount}",
        ])
        .parse::<i32>()
        .unwrap_or(0)
            >= 1
    });
    let describe = c.ok(&["describe", "pod", "live"]);
    assert!(describe.contains("Liveness probe failed"), "{describe}");
    assert_eq!(
        c.ok(&[
            "get",
            "pod",
            "web",
            "-o",
            "jsonpath={.status.containerStatuses[0].restartCount}"
        ]),
        "0"
    );
}

/// The cgroup file that holds `v1_file` (v1) or `v2_file` (v2) for a container.
fn cgroup_file(id: &str, controller: &str, v1_file: &str, v2_file: &str) -> std::path::PathBuf {
    let unified = std::path::Path::new("/sys/fs/cgroup/rkind").join(id);
    if unified.exists() {
        unified.join(v2_file)
    } else {
        std::path::Path::new("/sys/fs/cgroup")
            .join(controller)
            .join("rkind")
            .join(id)
            .join(v1_file)
    }
}

#[test]
fn limits_are_enforced_with_cgroups() {
    let c = Cluster::start("cgroups");
    // This machine allows cgroups (v1 here, v2 elsewhere): the node says so.
    let cond = c.ok(&[
        "get",
        "node",
        "cgroups-control-plane",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"CgroupLimits\")].status} {.status.conditions[?(@.type==\"CgroupLimits\")].message}",
    ]);
    if cond.starts_with("False") {
        // Not root (a non-root user, an unprivileged container): nothing is delegated
        // here. The node says why, and a pod with limits still runs, unlimited.
        assert_ne!(c.isolation(), "namespaces", "root has cgroups here: {cond}");
        assert!(cond.starts_with("False no cgroup limits"), "{cond}");
        c.ok_stdin(
            &["apply", "-f", "-"],
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"limited"},"spec":{"containers":[
                {"name":"c","image":"rkind/host","command":["sleep","3600"],
                 "resources":{"limits":{"memory":"48Mi"}}}]}}"#,
        );
        wait_phase(&c, "limited", "Running");
        return;
    }
    assert!(cond.starts_with("True cgroup v"), "{cond}");

    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"limited"},"spec":{"containers":[
            {"name":"c","image":"rkind/host","command":["sleep","3600"],
             "resources":{"limits":{"memory":"48Mi","cpu":"250m"},"requests":{"memory":"48Mi","cpu":"250m"}}}]}}"#,
    );
    wait_phase(&c, "limited", "Running");
    let id = c
        .ok(&[
            "get",
            "pod",
            "limited",
            "-o",
            "jsonpath={.status.containerStatuses[0].containerID}",
        ])
        .trim_start_matches("rkind://")
        .to_string();
    let memory = std::fs::read_to_string(cgroup_file(
        &id,
        "memory",
        "memory.limit_in_bytes",
        "memory.max",
    ))
    .expect("the container's memory cgroup");
    assert_eq!(memory.trim(), (48u64 << 20).to_string());
    let cpu = std::fs::read_to_string(cgroup_file(&id, "cpu", "cpu.cfs_quota_us", "cpu.max"))
        .expect("the container's cpu cgroup");
    assert!(cpu.trim().starts_with("25000"), "{cpu}");
    // The container's process and a process exec'd into it are both in its cgroup.
    let own = c.ok(&["exec", "limited", "--", "cat", "/proc/1/cgroup"]);
    let exec = c.ok(&["exec", "limited", "--", "cat", "/proc/self/cgroup"]);
    for text in [&own, &exec] {
        assert!(text.contains(&format!("/rkind/{id}")), "{text}");
    }

    // What the cgroup accounted, through CRI stats (as crictl stats reads it): burn
    // some CPU inside the container first.
    c.ok(&[
        "exec",
        "limited",
        "--",
        "sh",
        "-c",
        "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done",
    ]);
    let sock = c.data_dir().join("cri.sock");
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    rt.block_on(async {
        use rkind::runtime::cri;
        let ch = rkind::kubelet::pods::connect_cri(&sock).await.expect("cri");
        let mut runtime = cri::runtime_service_client::RuntimeServiceClient::new(ch);
        let stats = runtime
            .list_container_stats(cri::ListContainerStatsRequest {
                filter: Some(cri::ContainerStatsFilter {
                    id: id.clone(),
                    ..Default::default()
                }),
            })
            .await
            .expect("ListContainerStats")
            .into_inner()
            .stats;
        assert_eq!(stats.len(), 1);
        let cpu = stats[0]
            .cpu
            .as_ref()
            .and_then(|c| c.usage_core_nano_seconds.as_ref())
            .map(|v| v.value)
            .unwrap_or(0);
        assert!(
            cpu > 10_000_000,
            "the exec's CPU time is the container's: {cpu} ns"
        );
        let ws = stats[0]
            .memory
            .as_ref()
            .and_then(|m| m.working_set_bytes.as_ref())
            .map(|v| v.value)
            .unwrap_or(0);
        assert!(ws > 0 && ws < 48 << 20, "working set {ws}");
        let pods = runtime
            .list_pod_sandbox_stats(cri::ListPodSandboxStatsRequest { filter: None })
            .await
            .expect("ListPodSandboxStats")
            .into_inner()
            .stats;
        let pod = pods
            .iter()
            .find(|p| {
                p.attributes
                    .as_ref()
                    .and_then(|a| a.metadata.as_ref())
                    .is_some_and(|m| m.name == "limited")
            })
            .expect("the pod's stats");
        let linux = pod.linux.as_ref().expect("linux stats");
        assert_eq!(linux.containers.len(), 1);
        assert!(
            linux
                .process
                .as_ref()
                .and_then(|p| p.process_count.as_ref())
                .is_some_and(|n| n.value >= 1),
            "{linux:?}"
        );
        runtime
            .update_runtime_config(cri::UpdateRuntimeConfigRequest::default())
            .await
            .expect("UpdateRuntimeConfig");
    });

    // Over the limit, the kernel's OOM killer ends it, and the pod says OOMKilled.
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"hog"},"spec":{"restartPolicy":"Never","containers":[
            {"name":"c","image":"rkind/host","command":["python3","-c","b = bytearray(256 * 1024 * 1024); print(len(b))"],
             "resources":{"limits":{"memory":"32Mi"}}}]}}"#,
    );
    c.eventually(60, "hog is OOMKilled", || {
        c.ok(&[
            "get",
            "pod",
            "hog",
            "-o",
            "jsonpath={.status.containerStatuses[0].state.terminated.reason}",
        ]) == "OOMKilled"
    });
    let code = c.ok(&[
        "get",
        "pod",
        "hog",
        "-o",
        "jsonpath={.status.containerStatuses[0].state.terminated.exitCode}",
    ]);
    assert_eq!(code, "137");

    // An emptyDir with medium Memory is a tmpfs of its sizeLimit, gone with the pod.
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"ram"},"spec":{"terminationGracePeriodSeconds":1,"containers":[
            {"name":"c","image":"rkind/host","command":["sleep","3600"],
             "volumeMounts":[{"name":"cache","mountPath":"/cache"}]}],
            "volumes":[{"name":"cache","emptyDir":{"medium":"Memory","sizeLimit":"8Mi"}}]}}"#,
    );
    wait_phase(&c, "ram", "Running");
    let mounts = c.ok(&["exec", "ram", "--", "grep", " /cache ", "/proc/mounts"]);
    assert!(
        mounts.starts_with("tmpfs /cache tmpfs") && mounts.contains("size=8192k"),
        "{mounts}"
    );
    let full = c.kubectl(&[
        "exec",
        "ram",
        "--",
        "dd",
        "if=/dev/zero",
        "of=/cache/f",
        "bs=1M",
        "count=16",
    ]);
    assert!(
        !full.status.success(),
        "16 MiB do not fit in 8 MiB of memory"
    );
    let uid = c.ok(&["get", "pod", "ram", "-o", "jsonpath={.metadata.uid}"]);
    c.ok(&["delete", "pod", "ram"]);
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !host_mounts.contains(&uid),
        "the tmpfs is unmounted with its pod"
    );

    // Deleting the pod removes its cgroup.
    c.ok(&["delete", "pod", "limited", "--grace-period=0", "--force"]);
    c.eventually(30, "the container's cgroup is removed", || {
        !cgroup_file(&id, "memory", "", "").exists()
    });
}

#[test]
fn prestop_hook_runs_before_the_container_stops() {
    let c = Cluster::start("prestop");
    let host = c.dir.path().join("hook-out");
    std::fs::create_dir_all(&host).expect("mkdir");
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"hooked"}},"spec":{{"terminationGracePeriodSeconds":5,"containers":[
            {{"name":"c","image":"rkind/host","command":["sh","-c","trap 'echo term >> /out/log; exit 0' TERM; while true; do sleep 0.1; done"],
             "lifecycle":{{"preStop":{{"exec":{{"command":["sh","-c","echo prestop >> /out/log"]}}}}}},
             "volumeMounts":[{{"name":"out","mountPath":"/out"}}]}}],
            "volumes":[{{"name":"out","hostPath":{{"path":"{}"}}}}]}}}}"#,
            host.display()
        ),
    );
    wait_phase(&c, "hooked", "Running");
    c.ok(&["delete", "pod", "hooked"]);
    // The hook ran first, then the container got SIGTERM.
    let log = std::fs::read_to_string(host.join("log")).expect("hook output");
    assert_eq!(log, "prestop\nterm\n");
}

#[test]
fn exec_runs_as_the_containers_user() {
    let c = Cluster::start("runas");
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"user"},"spec":{"terminationGracePeriodSeconds":1,
            "securityContext":{"runAsUser":1234,"runAsGroup":2345},
            "containers":[{"name":"c","image":"rkind/host","command":["sleep","3600"],
             "readinessProbe":{"exec":{"command":["sh","-c","test $(id -u) = 1234"]},"periodSeconds":1}}]}}"#,
    );
    wait_phase(&c, "user", "Running");
    // kubectl exec (through the streaming server) and exec probes (ExecSync) both run
    // as the container's user, as runc exec does.
    assert_eq!(c.ok(&["exec", "user", "--", "id", "-u"]).trim(), "1234");
    assert_eq!(c.ok(&["exec", "user", "--", "id", "-g"]).trim(), "2345");
    c.eventually(20, "the probe ran as the container's user", || {
        c.ok(&[
            "get",
            "pod",
            "user",
            "-o",
            "jsonpath={.status.containerStatuses[0].ready}",
        ]) == "true"
    });
}

/// `shareProcessNamespace: true`: the pod's containers see each other's processes in one
/// PID namespace of the pod's own (not the host's), as on a real cluster.
#[test]
fn share_process_namespace() {
    let c = Cluster::start("sharepid");
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"shared"},"spec":{
            "shareProcessNamespace":true,"terminationGracePeriodSeconds":1,
            "containers":[{"name":"a","image":"rkind/host","command":["sleep","3601"]},
                          {"name":"b","image":"rkind/host","command":["sleep","3602"]}]}}"#,
    );
    wait_phase(&c, "shared", "Running");
    c.eventually(20, "both containers ready", || {
        c.ok(&[
            "get",
            "pod",
            "shared",
            "-o",
            "jsonpath={.status.containerStatuses[*].ready}",
        ]) == "true true"
    });
    let seen = c.ok(&[
        "exec",
        "shared",
        "-c",
        "b",
        "--",
        "sh",
        "-c",
        "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done",
    ]);
    assert!(seen.contains("sleep 3601"), "b sees a's process:\n{seen}");
    if c.isolation() == "unprivileged" {
        // No PID namespaces at this level: the whole machine's processes are visible.
        return;
    }
    let count = seen.lines().filter(|l| !l.trim().is_empty()).count();
    assert!(
        count <= 6,
        "only the pod's processes, not the host's:\n{seen}"
    );
    let pid1 = c.ok(&[
        "exec",
        "shared",
        "-c",
        "a",
        "--",
        "sh",
        "-c",
        "tr '\\0' ' ' < /proc/1/cmdline",
    ]);
    assert!(
        !pid1.contains("sleep"),
        "PID 1 is the pod's own init, not a container: {pid1}"
    );
}
