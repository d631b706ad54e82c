//! The pod subresources beyond exec/attach/logs, end to end with stock kubectl:
//! `ephemeralcontainers` (`kubectl debug`), `eviction`, `resize`, and the `proxy`
//! subresources of pods, services and nodes.

mod common;

use common::{Cluster, write_file};

fn wait_ready(c: &Cluster, pod: &str) {
    c.ok(&[
        "wait",
        "--for=condition=Ready",
        &format!("pod/{pod}"),
        "--timeout=60s",
    ]);
}

fn jsonpath(c: &Cluster, pod: &str, path: &str) -> String {
    c.ok(&["get", "pod", pod, "-o", &format!("jsonpath={path}")])
}

/// A pod `web` whose container `c` sleeps (the target of the debug containers).
fn sleeper(c: &Cluster, name: &str) {
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}"}},"spec":{{"containers":[
            {{"name":"c","image":"rkind/host","command":["sleep","3600"]}}]}}}}"#
        ),
    );
    wait_ready(c, name);
}

/// The pod as JSON with `ephemeral` as its ephemeral containers, for a PUT.
fn with_ephemeral(c: &Cluster, pod: &str, ephemeral: serde_json::Value) -> String {
    let mut p: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "pod", pod, "-o", "json"])).expect("pod JSON");
    p["spec"]["ephemeralContainers"] = ephemeral;
    p.to_string()
}

#[test]
fn ephemeral_containers_debug_target_status_and_validation() {
    let c = Cluster::start("ephemeral");
    sleeper(&c, "web");
    // `kubectl debug` adds the container through pods/ephemeralcontainers, the kubelet
    // starts it in the pod, and kubectl attaches to it. With --target it shares the
    // target container's PID namespace: it sees its `sleep`.
    let out = c.ok_stdin(
        &[
            "debug",
            "-i",
            "web",
            "--image=rkind/host",
            "--target=c",
            "--container=dbg",
            "--",
            "sh",
        ],
        "echo from-$((6*7)); echo sleepers=$(cat /proc/[0-9]*/comm 2>/dev/null | grep -c '^sleep$'); exit 0\n",
    );
    assert!(out.contains("from-42"), "debug output: {out:?}");
    assert!(
        !out.contains("sleepers=0"),
        "the target's processes are visible in the debug container: {out:?}"
    );
    assert_eq!(
        jsonpath(
            &c,
            "web",
            "{.spec.ephemeralContainers[0].targetContainerName}"
        ),
        "c"
    );
    c.eventually(30, "dbg reported terminated", || {
        jsonpath(
            &c,
            "web",
            "{.status.ephemeralContainerStatuses[0].state.terminated.exitCode}",
        ) == "0"
    });
    assert_eq!(
        jsonpath(&c, "web", "{.status.ephemeralContainerStatuses[0].name}"),
        "dbg"
    );
    // Not restarted, and the pod keeps running.
    assert_eq!(jsonpath(&c, "web", "{.status.phase}"), "Running");

    if c.isolation() != "unprivileged" {
        // Without a target the debug container has a PID namespace of its own.
        let out = c.ok_stdin(
            &[
                "debug",
                "-i",
                "web",
                "--image=rkind/host",
                "--container=alone",
                "--",
                "sh",
            ],
            "echo sleepers=$(cat /proc/[0-9]*/comm 2>/dev/null | grep -c '^sleep$'); exit 0\n",
        );
        assert!(out.contains("sleepers=0"), "{out:?}");
    }

    // Upstream's rules, through a PUT of the subresource.
    let path = "/api/v1/namespaces/default/pods/web/ephemeralcontainers";
    let dbg = serde_json::json!({"name": "dbg", "image": "rkind/host", "command": ["sh"],
        "stdin": true, "targetContainerName": "c", "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File", "imagePullPolicy": "Always"});
    let current: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "pod", "web", "-o", "json"])).expect("pod JSON");
    let existing = current["spec"]["ephemeralContainers"].clone();
    let mut bad = existing.as_array().cloned().unwrap_or_default();
    bad.push(serde_json::json!({"name": "c", "image": "rkind/host",
        "ports": [{"containerPort": 80}], "targetContainerName": "nope",
        "readinessProbe": {"exec": {"command": ["true"]}}}));
    let f = write_file(
        c.dir.path(),
        "bad.json",
        &with_ephemeral(&c, "web", serde_json::Value::Array(bad.clone())),
    );
    let n = bad.len() - 1;
    let err = c.fails(&["replace", "--raw", path, "-f", &f.display().to_string()]);
    for want in [
        format!("spec.ephemeralContainers[{n}].name: Duplicate value: \"c\""),
        format!("spec.ephemeralContainers[{n}].targetContainerName: Not found: \"nope\""),
        format!(
            "spec.ephemeralContainers[{n}].ports: Forbidden: cannot be set for an Ephemeral Container"
        ),
        format!(
            "spec.ephemeralContainers[{n}].readinessProbe: Forbidden: cannot be set for an Ephemeral Container"
        ),
    ] {
        assert!(err.contains(&want), "want {want:?} in {err}");
    }
    let f = write_file(
        c.dir.path(),
        "removed.json",
        &with_ephemeral(&c, "web", serde_json::json!([])),
    );
    let err = c.fails(&["replace", "--raw", path, "-f", &f.display().to_string()]);
    assert!(
        err.contains("existing ephemeral containers \\\"dbg\\\" may not be removed")
            || err.contains("existing ephemeral containers \"dbg\" may not be removed"),
        "{err}"
    );
    let mut changed = existing.as_array().cloned().unwrap_or_default();
    changed[0]["command"] = serde_json::json!(["sh", "-c", "other"]);
    let f = write_file(
        c.dir.path(),
        "changed.json",
        &with_ephemeral(&c, "web", serde_json::Value::Array(changed)),
    );
    let err = c.fails(&["replace", "--raw", path, "-f", &f.display().to_string()]);
    assert!(err.contains("may not be changed"), "{err}");
    let _ = dbg;
    // The main resource cannot add them, nor can a create.
    let f = write_file(
        c.dir.path(),
        "main.json",
        &with_ephemeral(
            &c,
            "web",
            serde_json::json!([{"name": "more", "image": "rkind/host"}]),
        ),
    );
    let err = c.fails(&["replace", "-f", &f.display().to_string()]);
    assert!(
        err.contains("pod updates may not change fields other than"),
        "{err}"
    );
    let err = c.fails_stdin(
        &["create", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"born"},"spec":{"containers":[{"name":"c","image":"rkind/host"}],
           "ephemeralContainers":[{"name":"e","image":"rkind/host"}]}}"#,
    );
    assert!(
        err.contains("spec.ephemeralContainers: Forbidden: cannot be set on create"),
        "{err}"
    );
    // Discovery lists the subresource as upstream does.
    let disc = c.ok(&["get", "--raw", "/api/v1"]);
    let v: serde_json::Value = serde_json::from_str(&disc).expect("discovery");
    let sub = v["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == "pods/ephemeralcontainers"))
        .cloned()
        .expect("pods/ephemeralcontainers in discovery");
    assert_eq!(sub["kind"], "Pod");
}

#[test]
fn eviction_deletes_the_pod_gracefully_with_upstreams_answers() {
    let c = Cluster::start("eviction");
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"victim"},"spec":{"terminationGracePeriodSeconds":30,"containers":[
           {"name":"c","image":"rkind/host","command":["sh","-c","trap 'sleep 3; exit 0' TERM; while true; do sleep 0.2; done"]}]}}"#,
    );
    wait_ready(&c, "victim");
    let path = "/api/v1/namespaces/default/pods/victim/eviction";
    let body = |name: &str, extra: &str| {
        format!(
            r#"{{"apiVersion":"policy/v1","kind":"Eviction","metadata":{{"name":"{name}","namespace":"default"}}{extra}}}"#
        )
    };
    // The name in the body must be the pod's.
    let f = write_file(c.dir.path(), "other.json", &body("other", ""));
    let err = c.fails(&["create", "--raw", path, "-f", &f.display().to_string()]);
    assert!(
        err.contains("name in URL does not match name in Eviction object"),
        "{err}"
    );
    // A dry run changes nothing.
    let f = write_file(c.dir.path(), "evict.json", &body("victim", ""));
    let out = c.ok(&[
        "create",
        "--raw",
        &format!("{path}?dryRun=All"),
        "-f",
        &f.display().to_string(),
    ]);
    assert!(out.contains("\"status\":\"Success\""), "{out}");
    assert_eq!(jsonpath(&c, "victim", "{.metadata.deletionTimestamp}"), "");
    // The eviction: Success, then a graceful deletion with the body's grace period.
    let f = write_file(
        c.dir.path(),
        "evict-grace.json",
        &body("victim", r#","deleteOptions":{"gracePeriodSeconds":20}"#),
    );
    let out = c.ok(&["create", "--raw", path, "-f", &f.display().to_string()]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("Status");
    assert_eq!(v["kind"], "Status");
    assert_eq!(v["status"], "Success");
    // Still there while its container handles SIGTERM (the trap takes 3 s).
    assert_eq!(
        jsonpath(&c, "victim", "{.metadata.deletionGracePeriodSeconds}"),
        "20"
    );
    c.eventually(60, "the evicted pod is gone", || {
        !c.kubectl(&["get", "pod", "victim"]).status.success()
    });
    // A pod that does not exist.
    let f = write_file(c.dir.path(), "nope.json", &body("nope", ""));
    let err = c.fails(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/pods/nope/eviction",
        "-f",
        &f.display().to_string(),
    ]);
    assert!(
        err.contains("pods \\\"nope\\\" not found") || err.contains("pods \"nope\" not found"),
        "{err}"
    );
    // Only Evictions of policy/v1 or v1beta1.
    let f = write_file(
        c.dir.path(),
        "wrong.json",
        r#"{"apiVersion":"v1","kind":"Eviction","metadata":{"name":"victim"}}"#,
    );
    let err = c.fails(&["create", "--raw", path, "-f", &f.display().to_string()]);
    assert!(
        err.contains("does not match the expected API version"),
        "{err}"
    );
}

/// Touches 100 MiB of memory (more than the resized pod's first limit).
const ALLOCATE_100MI: &str = "b = bytearray(100 * 1024 * 1024); print('allocated')";

/// Whether the node enforces container limits (its `CgroupLimits` condition).
fn limits_enforced(c: &Cluster) -> bool {
    c.ok(&[
        "get",
        "nodes",
        "-o",
        "jsonpath={.items[0].status.conditions[?(@.type==\"CgroupLimits\")].status}",
    ])
    .trim()
        == "True"
}

#[test]
fn resize_changes_the_spec_the_status_and_the_cgroup() {
    let c = Cluster::start("resize");
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"sized"},"spec":{"containers":[
           {"name":"c","image":"rkind/host","command":["sleep","3600"],
            "resources":{"requests":{"cpu":"100m","memory":"64Mi"},"limits":{"cpu":"100m","memory":"64Mi"}}}]}}"#,
    );
    wait_ready(&c, "sized");
    if c.isolation() == "namespaces" && limits_enforced(&c) {
        // Before the resize the limit holds: the allocation is OOM-killed.
        let out = c.kubectl(&["exec", "sized", "--", "python3", "-c", ALLOCATE_100MI]);
        assert_eq!(out.status.code(), Some(137), "{out:?}");
    }
    c.eventually(30, "resources reported", || {
        jsonpath(
            &c,
            "sized",
            "{.status.containerStatuses[0].resources.limits.memory}",
        ) == "64Mi"
    });
    let resize = |patch: &str| {
        c.kubectl_bin(
            "kubectl.1.33",
            &[
                "patch",
                "pod",
                "sized",
                "--subresource",
                "resize",
                "--patch",
                patch,
            ],
            None,
        )
    };
    let out = resize(
        r#"{"spec":{"containers":[{"name":"c","image":"ignored:1","resources":{"requests":{"cpu":"200m","memory":"128Mi"},"limits":{"cpu":"200m","memory":"128Mi"}}}]}}"#,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Only the resources changed (the image in the patch is dropped, as upstream's
    // resize strategy drops everything else).
    assert_eq!(
        jsonpath(&c, "sized", "{.spec.containers[0].image}"),
        "rkind/host"
    );
    assert_eq!(
        jsonpath(&c, "sized", "{.spec.containers[0].resources.limits.memory}"),
        "128Mi"
    );
    c.eventually(30, "the kubelet applied the resize", || {
        jsonpath(
            &c,
            "sized",
            "{.status.containerStatuses[0].resources.limits.memory}",
        ) == "128Mi"
    });
    assert_eq!(
        jsonpath(
            &c,
            "sized",
            "{.status.containerStatuses[0].allocatedResources.cpu}"
        ),
        "200m"
    );
    assert_eq!(jsonpath(&c, "sized", "{.status.qosClass}"), "Guaranteed");
    assert_eq!(
        jsonpath(&c, "sized", "{.status.containerStatuses[0].restartCount}"),
        "0",
        "resized in place"
    );
    if c.isolation() == "namespaces" && limits_enforced(&c) {
        // The container's cgroup has the new limit, and inside the container 100 MiB,
        // beyond the old 64 MiB, can now be allocated.
        let id = jsonpath(&c, "sized", "{.status.containerStatuses[0].containerID}")
            .trim_start_matches("rkind://")
            .to_string();
        let files = [
            format!("/sys/fs/cgroup/memory/rkind/{id}/memory.limit_in_bytes"),
            format!("/sys/fs/cgroup/rkind/{id}/memory.max"),
        ];
        let limit = files
            .iter()
            .find_map(|f| std::fs::read_to_string(f).ok())
            .expect("the container's memory cgroup file");
        assert_eq!(limit.trim(), "134217728");
        let out = c.ok(&["exec", "sized", "--", "python3", "-c", ALLOCATE_100MI]);
        assert_eq!(out.trim(), "allocated");
    }
    // Upstream's rules.
    let err = resize(
        r#"{"spec":{"containers":[{"name":"c","resources":{"requests":{"cpu":"100m"},"limits":{"cpu":"200m","memory":"128Mi"}}}]}}"#,
    );
    let text = String::from_utf8_lossy(&err.stderr).to_string();
    assert!(!err.status.success());
    assert!(
        text.contains("Pod QOS Class may not change as a result of resizing"),
        "{text}"
    );
    let err = resize(
        r#"{"spec":{"containers":[{"name":"c","resources":{"requests":{"cpu":"200m","memory":"64Mi"},"limits":{"cpu":"200m","memory":"64Mi"}}}]}}"#,
    );
    let text = String::from_utf8_lossy(&err.stderr).to_string();
    assert!(
        text.contains("spec.containers[0].resources.limits[memory]: Forbidden: memory limits cannot be decreased unless resizePolicy is RestartContainer"),
        "{text}"
    );
    let err = resize(
        r#"{"spec":{"containers":[{"name":"c","resources":{"requests":{"cpu":"200m","memory":"128Mi","ephemeral-storage":"1Gi"},"limits":{"cpu":"200m","memory":"128Mi","ephemeral-storage":"1Gi"}}}]}}"#,
    );
    let text = String::from_utf8_lossy(&err.stderr).to_string();
    assert!(
        text.contains("spec: Forbidden: only cpu and memory resources are mutable"),
        "{text}"
    );
    // The main resource cannot change resources.
    let err = c.fails(&[
        "patch",
        "pod",
        "sized",
        "--patch",
        r#"{"spec":{"containers":[{"name":"c","resources":{"limits":{"cpu":"300m"}}}]}}"#,
    ]);
    assert!(err.contains("pod updates may not change fields"), "{err}");
}

#[test]
fn proxy_reaches_pods_services_and_nodes() {
    let c = Cluster::start("proxy");
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"app":"web"}},"spec":{"containers":[
           {"name":"c","image":"rkind/host","workingDir":"/tmp/site","ports":[{"containerPort":8000,"name":"http"}],
            "command":["sh","-c","mkdir -p /tmp/site && cd /tmp/site && echo proxied-page > index.html && exec python3 -m http.server 8000"]}]}}"#,
    );
    wait_ready(&c, "web");
    c.wait_listening("web", 8000);
    // pods/proxy: by port number, by the container port's name, or the first port.
    for id in ["web:8000", "web:http", "web", "http:web:8000"] {
        let out = c.ok(&[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/default/pods/{id}/proxy/"),
        ]);
        assert_eq!(out.trim(), "proxied-page", "{id}");
    }
    let out = c.ok(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/pods/web:8000/proxy/index.html?x=1",
    ]);
    assert_eq!(out.trim(), "proxied-page");
    // The backend's own status comes back (http.server has no POST).
    let f = write_file(c.dir.path(), "post.json", "{}");
    let err = c.fails(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/pods/web:8000/proxy/",
        "-f",
        &f.display().to_string(),
    ]);
    assert!(
        err.contains("501") || err.contains("Unsupported method"),
        "{err}"
    );
    // Nothing listens there.
    let err = c.fails(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/pods/web:9/proxy/",
    ]);
    assert!(err.contains("error trying to reach service"), "{err}");
    // services/proxy: a ready pod of the selector, the port's targetPort.
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"site"},"spec":{"selector":{"app":"web"},
           "ports":[{"name":"web","port":80,"targetPort":"http"}]}}"#,
    );
    for id in ["site:web", "site:80", "http:site:web"] {
        let out = c.ok(&[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/default/services/{id}/proxy/"),
        ]);
        assert_eq!(out.trim(), "proxied-page", "{id}");
    }
    let err = c.fails(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/services/site:81/proxy/",
    ]);
    assert!(
        err.contains("no service port 81 found for service \\\"site\\\"")
            || err.contains("no service port 81 found for service \"site\""),
        "{err}"
    );
    // nodes/proxy: the kubelet's HTTPS server.
    let node = c.ok(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"]);
    let out = c.ok(&[
        "get",
        "--raw",
        &format!("/api/v1/nodes/{}/proxy/healthz", node.trim()),
    ]);
    assert_eq!(out.trim(), "ok");
    let out = c.ok(&[
        "get",
        "--raw",
        &format!("/api/v1/nodes/{}/proxy/pods", node.trim()),
    ]);
    assert!(out.contains("\"PodList\""), "{out}");
}

/// `kubectl debug -it` on a real terminal (util-linux `script`): the ephemeral
/// container gets a terminal of its own and the typed line reaches its shell.
#[test]
fn debug_interactive_on_a_terminal() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let c = Cluster::start("debug-tty");
    sleeper(&c, "web");
    let line = "stty cols 100 rows 30; kubectl debug -it web --image=rkind/host --target=c --container=tty -- sh";
    let mut child = Command::new("script")
        .args(["-qec", line, "/dev/null"])
        .envs(c.envs())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux) is needed for the tty tests");
    let mut stdin = child.stdin.take().expect("stdin");
    // Typed at once: the terminal keeps the line until kubectl, attached, reads it.
    stdin
        .write_all(b"echo tty-$((6*7)); t=$(tty) && echo on-$t; exit 0\r")
        .expect("type into the terminal");
    stdin.flush().expect("flush");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "kubectl debug -it hung"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(stdin);
    let out = child.wait_with_output().expect("script output");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("tty-42"), "{text:?}");
    assert!(text.contains("on-/dev/pts/"), "{text:?}");
    assert_eq!(
        jsonpath(&c, "web", "{.spec.ephemeralContainers[0].tty}"),
        "true"
    );
}
