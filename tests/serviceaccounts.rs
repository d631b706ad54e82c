//! Service accounts in pods end to end: the ServiceAccount admission plugin gives a pod
//! its account and the projected `kube-api-access-*` volume, the kubelet fills it (a
//! bound token from TokenRequest, the cluster CA, the namespace) and sets
//! `KUBERNETES_SERVICE_HOST/PORT`, and an in-cluster client in the pod
//! (`testdata/incluster/client.py`) reads pods with the mounted token and is refused what
//! its role does not allow. A missing account is refused with upstream's message, and
//! `automountServiceAccountToken: false` leaves the pod without the volume.
//!
//! The pod uses the node's network (`hostNetwork`): until the pod network exists, that is
//! where the API server's address in its environment is reachable.

mod common;

use common::{Cluster, source_file};

const MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

#[test]
fn a_pod_reads_the_api_with_its_mounted_token() {
    let c = Cluster::start("sa-pods");
    c.ok(&["create", "sa", "bot"]);
    c.ok(&[
        "create",
        "role",
        "pod-reader",
        "--verb=get,list,watch",
        "--resource=pods",
    ]);
    c.ok(&[
        "create",
        "rolebinding",
        "bot-reads",
        "--role=pod-reader",
        "--serviceaccount=default:bot",
    ]);
    // The client's source goes in through the environment: at some isolation levels the
    // test's checkout (under /tmp) is not in the pod's filesystem.
    let client = std::fs::read_to_string(source_file("testdata/incluster/client.py"))
        .expect("read the in-cluster client");
    let script = format!(
        "python3 -c \"$CLIENT\" list; python3 -c \"$CLIENT\" delete op; \
         echo ns=$(cat {MOUNT}/namespace); echo host=$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT; \
         if touch {MOUNT}/x 2>/dev/null; then echo writable; else echo read-only; fi"
    );
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "op"},
        "spec": {
            "serviceAccountName": "bot",
            "hostNetwork": true,
            // The unprivileged level mounts no token unless asked (see the README).
            "automountServiceAccountToken": true,
            "restartPolicy": "Never",
            "containers": [{"name": "op", "image": "rkind/host",
                            "command": ["sh", "-c", script],
                            "env": [{"name": "CLIENT", "value": client}]}],
        }
    });
    c.ok_stdin(&["apply", "-f", "-"], &pod.to_string());
    let volume = c.ok(&["get", "pod", "op", "-o", "jsonpath={.spec.volumes[0].name}"]);
    assert!(volume.starts_with("kube-api-access-"), "{volume}");
    let mount = c.ok(&[
        "get",
        "pod",
        "op",
        "-o",
        "jsonpath={.spec.containers[0].volumeMounts[0].mountPath} {.spec.containers[0].volumeMounts[0].readOnly} {.spec.serviceAccount}",
    ]);
    assert_eq!(mount, format!("{MOUNT} true bot"));
    c.eventually(120, "pod op to finish", || {
        c.ok(&["get", "pod", "op", "-o", "jsonpath={.status.phase}"]) == "Succeeded"
    });
    let logs = c.ok(&["logs", "op"]);
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines.first(), Some(&"op"), "the pod lists itself:\n{logs}");
    assert!(
        logs.contains("delete: 403 Forbidden: pods \"op\" is forbidden: User \"system:serviceaccount:default:bot\" cannot delete resource \"pods\" in API group \"\" in the namespace \"default\""),
        "{logs}"
    );
    assert!(logs.contains("ns=default"), "{logs}");
    let server = c.ok(&[
        "config",
        "view",
        "--raw",
        "-o",
        "jsonpath={.clusters[0].cluster.server}",
    ]);
    assert!(
        logs.contains(&format!("host={}", server.trim_start_matches("https://"))),
        "the environment names the API server ({server}):\n{logs}"
    );
    if c.isolation() != "unprivileged" {
        assert!(logs.contains("read-only"), "{logs}");
    }
    // The token the kubelet asked for is bound to the pod.
    let events = c.ok(&["get", "events", "--field-selector=involvedObject.name=op"]);
    assert!(!events.contains("FailedMount"), "{events}");
}

#[test]
fn missing_accounts_are_refused_and_automount_can_be_turned_off() {
    let c = Cluster::start("sa-admission");
    let err = c.fails(&[
        "run",
        "ghostly",
        "--image=rkind/host",
        "--overrides={\"spec\":{\"serviceAccountName\":\"ghost\"}}",
        "--",
        "true",
    ]);
    assert!(
        err.contains("pods \"ghostly\" is forbidden: error looking up service account default/ghost: serviceaccount \"ghost\" not found"),
        "{err}"
    );
    c.ok(&["create", "sa", "quiet"]);
    c.ok(&[
        "patch",
        "sa",
        "quiet",
        "-p",
        "{\"automountServiceAccountToken\":false}",
    ]);
    // Server-side dry runs pass admission without starting anything (at the unprivileged
    // level a running pod with the volume would hold its path in the shared root).
    let vols = c.ok(&[
        "run",
        "hush",
        "--image=rkind/host",
        "--overrides={\"spec\":{\"serviceAccountName\":\"quiet\"}}",
        "--dry-run=server",
        "-o",
        "jsonpath={.spec.volumes}",
        "--",
        "sleep",
        "60",
    ]);
    assert!(!vols.contains("kube-api-access"), "{vols}");
    // The pod's own setting wins over the account's.
    let vols = c.ok(&[
        "run",
        "loud",
        "--image=rkind/host",
        "--overrides={\"spec\":{\"serviceAccountName\":\"quiet\",\"automountServiceAccountToken\":true}}",
        "--dry-run=server",
        "-o",
        "jsonpath={.spec.volumes[*].name}",
        "--",
        "sleep",
        "60",
    ]);
    assert!(vols.starts_with("kube-api-access-"), "{vols}");
}
