//! ResourceQuota and LimitRange through stock kubectl: quotas refuse what exceeds them
//! with upstream's messages, their `status.used` follows creates, deletes and finished
//! pods, dry runs are not charged, and LimitRange defaults and maxima apply to new pods.

mod common;

use common::Cluster;

fn used(c: &Cluster, ns: &str, quota: &str, resource: &str) -> String {
    let path = format!("jsonpath={{.status.used.{}}}", resource.replace('.', "\\."));
    c.ok(&["-n", ns, "get", "quota", quota, "-o", &path])
}

fn wait_used(c: &Cluster, ns: &str, quota: &str, resource: &str, want: &str) {
    c.eventually(30, &format!("{quota} uses {resource}={want}"), || {
        used(c, ns, quota, resource) == want
    });
}

fn run_pod(c: &Cluster, ns: &str, name: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "-n",
        ns,
        "run",
        name,
        "--image=rkind/host",
        "--restart=Never",
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "sleep", "3600"]);
    c.kubectl(&args)
}

fn stderr(out: &std::process::Output) -> String {
    assert!(
        !out.status.success(),
        "unexpectedly succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `Used` and `Hard` columns of one resource in `kubectl describe quota`.
fn described(c: &Cluster, ns: &str, quota: &str, resource: &str) -> Vec<String> {
    let text = c.ok(&["-n", ns, "describe", "quota", quota]);
    text.lines()
        .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
        .find(|w| w.first().map(String::as_str) == Some(resource))
        .map(|w| w[1..].to_vec())
        .unwrap_or_else(|| panic!("no {resource} row in:\n{text}"))
}

#[test]
fn pod_quota_refuses_the_second_pod_and_follows_deletes_and_dry_runs() {
    let c = Cluster::start("quota-pods");
    c.ok(&["create", "ns", "q"]);
    c.ok(&["-n", "q", "create", "quota", "pods", "--hard=pods=1"]);
    // The quota controller fills the status in, over HTTPS with its own identity.
    wait_used(&c, "q", "pods", "pods", "0");
    let quota: serde_json::Value = serde_json::from_str(&c.ok(&[
        "-n",
        "q",
        "get",
        "quota",
        "pods",
        "-o",
        "json",
        "--show-managed-fields",
    ]))
    .expect("quota JSON");
    let managers: Vec<(String, String)> = quota["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["manager"].as_str().unwrap_or("").to_string(),
                m["subresource"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        managers.contains(&("kube-controller-manager".to_string(), "status".to_string())),
        "{managers:?}"
    );
    assert_eq!(
        c.ok(&[
            "-n",
            "q",
            "get",
            "quota",
            "pods",
            "-o",
            "jsonpath={.status.hard.pods}"
        ]),
        "1"
    );

    // A dry run is checked but not charged.
    let out = run_pod(&c, "q", "dry", &["--dry-run=server"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(used(&c, "q", "pods", "pods"), "0");

    let out = run_pod(&c, "q", "first", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(used(&c, "q", "pods", "pods"), "1");
    assert_eq!(described(&c, "q", "pods", "pods"), ["1", "1"]);
    let table = c.ok(&["-n", "q", "get", "quota"]);
    assert!(table.contains("pods: 1/1"), "{table}");
    assert!(table.starts_with("NAME"), "{table}");

    let err = stderr(&run_pod(&c, "q", "second", &[]));
    assert!(
        err.contains(
            "Error from server (Forbidden): pods \"second\" is forbidden: exceeded quota: pods, requested: pods=1, used: pods=1, limited: pods=1"
        ),
        "{err}"
    );
    // A refused dry run is refused the same way.
    let err = stderr(&run_pod(&c, "q", "second", &["--dry-run=server"]));
    assert!(err.contains("exceeded quota: pods"), "{err}");

    // Deleting the pod gives the quota back (the controller sees it go).
    c.ok(&[
        "-n",
        "q",
        "delete",
        "pod",
        "first",
        "--grace-period=0",
        "--force",
    ]);
    wait_used(&c, "q", "pods", "pods", "0");
    assert_eq!(described(&c, "q", "pods", "pods"), ["0", "1"]);

    // A pod that finishes stops counting without being deleted.
    let out = c.kubectl(&[
        "-n",
        "q",
        "run",
        "done",
        "--image=rkind/host",
        "--restart=Never",
        "--",
        "true",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.eventually(60, "pod done Succeeded", || {
        c.ok(&[
            "-n",
            "q",
            "get",
            "pod",
            "done",
            "-o",
            "jsonpath={.status.phase}",
        ]) == "Succeeded"
    });
    wait_used(&c, "q", "pods", "pods", "0");
    let out = run_pod(&c, "q", "third", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(used(&c, "q", "pods", "pods"), "1");
}

#[test]
fn object_counts_and_compute_quotas() {
    let c = Cluster::start("quota-counts");
    c.ok(&["create", "ns", "q"]);
    // The controller-manager publishes kube-root-ca.crt in every namespace; it counts
    // against ConfigMap quotas as on a real cluster.
    c.eventually(30, "kube-root-ca.crt in q", || {
        c.kubectl(&["-n", "q", "get", "configmap", "kube-root-ca.crt"])
            .status
            .success()
    });
    c.ok(&[
        "-n",
        "q",
        "create",
        "quota",
        "cm",
        "--hard=count/configmaps=2,configmaps=6",
    ]);
    wait_used(&c, "q", "cm", "count/configmaps", "1");
    c.ok(&["-n", "q", "create", "configmap", "one"]);
    assert_eq!(used(&c, "q", "cm", "count/configmaps"), "2");
    assert_eq!(used(&c, "q", "cm", "configmaps"), "2");
    let err = c.fails(&["-n", "q", "create", "configmap", "two"]);
    assert!(
        err.contains(
            "configmaps \"two\" is forbidden: exceeded quota: cm, requested: count/configmaps=1, used: count/configmaps=2, limited: count/configmaps=2"
        ),
        "{err}"
    );
    c.ok(&["-n", "q", "delete", "configmap", "one"]);
    wait_used(&c, "q", "cm", "count/configmaps", "1");
    c.ok(&["-n", "q", "create", "configmap", "two"]);
    assert_eq!(used(&c, "q", "cm", "count/configmaps"), "2");
    // A new spec.hard reaches the status.
    c.ok(&[
        "-n",
        "q",
        "patch",
        "quota",
        "cm",
        "-p",
        r#"{"spec":{"hard":{"count/configmaps":"4"}}}"#,
    ]);
    c.eventually(30, "status.hard follows the spec", || {
        c.ok(&[
            "-n",
            "q",
            "get",
            "quota",
            "cm",
            "-o",
            "jsonpath={.status.hard.count/configmaps}",
        ]) == "4"
    });
    assert_eq!(used(&c, "q", "cm", "count/configmaps"), "2");

    // A quota on requests.cpu: pods must say what they request, and fit.
    c.ok(&[
        "-n",
        "q",
        "create",
        "quota",
        "cpu",
        "--hard=requests.cpu=1,limits.memory=1Gi",
    ]);
    wait_used(&c, "q", "cpu", "requests.cpu", "0");
    let err = stderr(&run_pod(&c, "q", "nocpu", &[]));
    assert!(
        err.contains(
            "pods \"nocpu\" is forbidden: failed quota: cpu: must specify limits.memory for: nocpu; requests.cpu for: nocpu"
        ),
        "{err}"
    );
    let sized = |cpu: &str| {
        format!(
            r#"{{"spec":{{"containers":[{{"name":"c","image":"rkind/host","command":["sleep","3600"],"resources":{{"requests":{{"cpu":"{cpu}"}},"limits":{{"memory":"256Mi"}}}}}}]}}}}"#
        )
    };
    let out = run_pod(
        &c,
        "q",
        "half",
        &[&format!("--overrides={}", sized("500m"))],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(used(&c, "q", "cpu", "requests.cpu"), "500m");
    assert_eq!(used(&c, "q", "cpu", "limits.memory"), "256Mi");
    let err = stderr(&run_pod(
        &c,
        "q",
        "more",
        &[&format!("--overrides={}", sized("600m"))],
    ));
    assert!(
        err.contains(
            "pods \"more\" is forbidden: exceeded quota: cpu, requested: requests.cpu=600m, used: requests.cpu=500m, limited: requests.cpu=1"
        ),
        "{err}"
    );
    let table = c.ok(&["-n", "q", "get", "quota", "cpu"]);
    assert!(table.contains("requests.cpu: 500m/1"), "{table}");
    assert!(table.contains("limits.memory: 256Mi/1Gi"), "{table}");
    assert_eq!(described(&c, "q", "cpu", "requests.cpu"), ["500m", "1"]);
}

/// The controller's full resync (shortened here; upstream's is 5 minutes) is what undoes
/// the charge of a create that failed after admission, and what corrects a status a
/// client wrote.
#[test]
fn the_full_resync_undoes_charges_that_did_not_land() {
    let c = Cluster::start_with_env("quota-resync", &[("RKIND_QUOTA_RESYNC_SECONDS", "2")]);
    c.ok(&["create", "ns", "q"]);
    c.eventually(30, "kube-root-ca.crt in q", || {
        c.kubectl(&["-n", "q", "get", "configmap", "kube-root-ca.crt"])
            .status
            .success()
    });
    c.ok(&[
        "-n",
        "q",
        "create",
        "quota",
        "cm",
        "--hard=count/configmaps=4",
    ]);
    wait_used(&c, "q", "cm", "count/configmaps", "1");
    c.ok(&["-n", "q", "create", "configmap", "two"]);
    wait_used(&c, "q", "cm", "count/configmaps", "2");
    // The name is taken: admission charged, the store refused.
    let err = c.fails(&["-n", "q", "create", "configmap", "two"]);
    assert!(err.contains("already exists"), "{err}");
    wait_used(&c, "q", "cm", "count/configmaps", "2");
    // A status written by hand is recalculated.
    c.ok(&[
        "-n",
        "q",
        "patch",
        "quota",
        "cm",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"used":{"count/configmaps":"3"}}}"#,
    ]);
    wait_used(&c, "q", "cm", "count/configmaps", "2");
}

#[test]
fn limit_range_defaults_new_pods_and_enforces_its_maximum() {
    let c = Cluster::start("quota-limits");
    c.ok(&["create", "ns", "lr"]);
    c.ok_stdin(
        &["-n", "lr", "apply", "-f", "-"],
        r#"
apiVersion: v1
kind: LimitRange
metadata:
  name: limits
spec:
  limits:
  - type: Container
    max: {cpu: 500m, memory: 1Gi}
    defaultRequest: {cpu: 100m, memory: 128Mi}
"#,
    );
    // `default` falls back to `max`, as upstream defaults it.
    assert_eq!(
        c.ok(&[
            "-n",
            "lr",
            "get",
            "limits",
            "limits",
            "-o",
            "jsonpath={.spec.limits[0].default}"
        ]),
        r#"{"cpu":"500m","memory":"1Gi"}"#
    );
    let table = c.ok(&["-n", "lr", "get", "limitranges"]);
    assert!(
        table.starts_with("NAME") && table.contains("CREATED AT"),
        "{table}"
    );

    let out = run_pod(&c, "lr", "plain", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        c.ok(&[
            "-n",
            "lr",
            "get",
            "pod",
            "plain",
            "-o",
            "jsonpath={.spec.containers[0].resources}"
        ]),
        r#"{"limits":{"cpu":"500m","memory":"1Gi"},"requests":{"cpu":"100m","memory":"128Mi"}}"#
    );
    assert_eq!(
        c.ok(&[
            "-n",
            "lr",
            "get",
            "pod",
            "plain",
            "-o",
            "jsonpath={.status.qosClass}"
        ]),
        "Burstable"
    );
    let note = c.ok(&[
        "-n",
        "lr",
        "get",
        "pod",
        "plain",
        "-o",
        r"jsonpath={.metadata.annotations.kubernetes\.io/limit-ranger}",
    ]);
    assert_eq!(
        note,
        "LimitRanger plugin set: cpu, memory request for container plain; cpu, memory limit for container plain"
    );

    let big = r#"--overrides={"spec":{"containers":[{"name":"big","image":"rkind/host","command":["sleep","3600"],"resources":{"limits":{"cpu":"1"}}}]}}"#;
    let err = stderr(&run_pod(&c, "lr", "big", &[big]));
    assert!(
        err.contains(
            "Error from server (Forbidden): pods \"big\" is forbidden: maximum cpu usage per Container is 500m, but limit is 1\n"
        ),
        "{err}"
    );

    // A new quota counts the pods already there; defaults come before quota, so a
    // requests.cpu quota admits a pod that set nothing.
    c.ok(&[
        "-n",
        "lr",
        "create",
        "quota",
        "cpu",
        "--hard=requests.cpu=250m",
    ]);
    wait_used(&c, "lr", "cpu", "requests.cpu", "100m");
    let out = run_pod(&c, "lr", "defaulted", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(used(&c, "lr", "cpu", "requests.cpu"), "200m");
    let err = stderr(&run_pod(&c, "lr", "over", &[]));
    assert!(
        err.contains("exceeded quota: cpu, requested: requests.cpu=100m, used: requests.cpu=200m, limited: requests.cpu=250m"),
        "{err}"
    );
}
