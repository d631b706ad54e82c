//! PodSecurity admission with stock kubectl: the namespace labels of the Pod Security
//! Standards refuse pods that break the enforce level with upstream's message, and warn
//! about pods and workloads that break the warn (or enforce) level.
//!
//! Isolation levels: root only (no container behaviour is under test here).

mod common;

use common::Cluster;

#[test]
fn namespace_labels_enforce_and_warn_the_standards() {
    let c = Cluster::start("podsecurity");
    c.ok(&["create", "ns", "locked"]);
    c.ok(&[
        "label",
        "ns",
        "locked",
        "pod-security.kubernetes.io/enforce=restricted",
    ]);
    let err = c.fails(&[
        "-n",
        "locked",
        "run",
        "bad",
        "--image=rkind/host",
        "--",
        "true",
    ]);
    assert!(
        err.contains("pods \"bad\" is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"bad\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"bad\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or container \"bad\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"bad\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"),
        "{err}"
    );
    let good = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "good", "namespace": "locked"},
        "spec": {
            "securityContext": {"runAsNonRoot": true, "runAsUser": 1000,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "c", "image": "rkind/host", "command": ["true"],
                "securityContext": {"allowPrivilegeEscalation": false,
                                    "capabilities": {"drop": ["ALL"]}}}]}
    });
    c.ok_stdin(&["apply", "--dry-run=server", "-f", "-"], &good.to_string());
    // A workload is admitted, with a warning about the pods it would make.
    let out = c.kubectl(&[
        "-n",
        "locked",
        "create",
        "deployment",
        "web",
        "--image=rkind/host",
    ]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Warning: would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false"),
        "{stderr}"
    );
    // baseline: host namespaces are refused, warn=restricted still speaks up.
    c.ok(&["create", "ns", "base"]);
    c.ok(&[
        "label",
        "ns",
        "base",
        "pod-security.kubernetes.io/enforce=baseline",
        "pod-security.kubernetes.io/warn=restricted",
    ]);
    let err = c.fails(&[
        "-n",
        "base",
        "run",
        "host",
        "--image=rkind/host",
        "--overrides={\"spec\":{\"hostNetwork\":true}}",
        "--",
        "true",
    ]);
    assert!(
        err.contains(
            "violates PodSecurity \"baseline:latest\": host namespaces (hostNetwork=true)"
        ),
        "{err}"
    );
    let out = c.kubectl(&[
        "-n",
        "base",
        "run",
        "plain",
        "--image=rkind/host",
        "--dry-run=server",
        "--",
        "true",
    ]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Warning: would violate PodSecurity \"restricted:latest\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Unlabelled namespaces are privileged.
    c.ok(&[
        "run",
        "free",
        "--image=rkind/host",
        "--overrides={\"spec\":{\"hostNetwork\":true}}",
        "--dry-run=server",
        "--",
        "true",
    ]);
}
