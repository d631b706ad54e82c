//! PodSecurity admission with stock kubectl: the namespace labels of the Pod Security
//! Standards refuse pods that break the enforce level with upstream's message (on create,
//! and on updates that change an image), and warn about pods and workloads that break
//! the warn (or enforce) level; bad labels are refused, and tightening a namespace's
//! level warns about its existing pods, grouped as upstream groups them.
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

#[test]
fn namespace_labels_are_checked_and_a_tighter_level_reports_existing_pods() {
    let c = Cluster::start("podsecurity-ns");
    // Bad labels are refused on create and on update, with upstream's messages.
    let bad = serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "typo", "labels": {"pod-security.kubernetes.io/enforce": "strict"}}});
    let err = c.fails_stdin(&["create", "-f", "-"], &bad.to_string());
    assert!(
        err.contains("Namespace \"typo\" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: \"strict\": must be one of privileged, baseline, restricted"),
        "{err}"
    );
    c.ok(&["create", "ns", "open"]);
    let err = c.fails(&[
        "label",
        "ns",
        "open",
        "pod-security.kubernetes.io/warn-version=1.30",
    ]);
    assert!(
        err.contains("metadata.labels[pod-security.kubernetes.io/warn-version]: Invalid value: \"1.30\": must be \"latest\" or \"v1.x\""),
        "{err}"
    );
    // Pods that would break a stricter level: two on the host network, one plain.
    for (name, overrides) in [
        ("h1", r#"{"spec":{"hostNetwork":true}}"#),
        ("h2", r#"{"spec":{"hostNetwork":true}}"#),
        ("p1", "{}"),
    ] {
        c.ok(&[
            "-n",
            "open",
            "run",
            name,
            "--image=rkind/host",
            &format!("--overrides={overrides}"),
            "--",
            "sleep",
            "300",
        ]);
    }
    let out = c.kubectl(&[
        "label",
        "ns",
        "open",
        "pod-security.kubernetes.io/enforce=baseline",
    ]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        [
            "Warning: existing pods in namespace \"open\" violate the new PodSecurity enforce level \"baseline:latest\"",
            "Warning: h1 (and 1 other pod): host namespaces",
        ],
        "{stderr}"
    );
    // Relaxing (or keeping) the level checks nothing; a pinned version is named.
    let out = c.kubectl(&[
        "label",
        "--overwrite",
        "ns",
        "open",
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=v1.30",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Warning: existing pods in namespace \"open\" violate the new PodSecurity enforce level \"restricted:v1.30\"")
            && stderr.contains("Warning: h1 (and 1 other pod): host namespaces, allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile")
            && stderr.contains("Warning: p1: allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile"),
        "{stderr}"
    );
    let out = c.kubectl(&[
        "label",
        "--overwrite",
        "ns",
        "open",
        "pod-security.kubernetes.io/enforce=baseline",
        "pod-security.kubernetes.io/enforce-version=v1.30",
    ]);
    assert!(out.status.success());
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("Warning"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Existing pods stay; a label change passes, an image change is checked.
    c.ok(&["-n", "open", "label", "pod", "h1", "seen=yes"]);
    let err = c.fails(&["-n", "open", "set", "image", "pod/h1", "h1=rkind/other"]);
    assert!(
        err.contains("pods \"h1\" is forbidden: violates PodSecurity \"baseline:v1.30\": host namespaces (hostNetwork=true)"),
        "{err}"
    );
}
