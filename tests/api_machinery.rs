//! End-to-end tests of API machinery semantics through stock kubectl: list
//! `resourceVersionMatch` rules and exact lists, `/metrics`, writes through a status
//! subresource keeping metadata changes, Secret `stringData`, immutable ConfigMaps, the
//! QoS class, and names up to 253 characters.

mod common;

use common::Cluster;
use serde_json::Value;

const CM: &str = "/api/v1/namespaces/default/configmaps";

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// The names in a list, less the `kube-root-ca.crt` ConfigMap the controller-manager
/// publishes in every namespace.
fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap_or("").to_string())
        .filter(|n| n != "kube-root-ca.crt")
        .collect()
}

#[test]
fn lists_honour_resource_version_match() {
    let c = Cluster::start("rvmatch");
    c.ok(&["create", "configmap", "a", "--from-literal=k=1"]);
    let rv = json(&c.ok(&["get", "--raw", CM]))["metadata"]["resourceVersion"]
        .as_str()
        .expect("list rv")
        .to_string();
    c.ok(&["create", "configmap", "b", "--from-literal=k=2"]);
    c.ok(&[
        "patch",
        "configmap",
        "a",
        "--type=merge",
        "-p",
        r#"{"data":{"k":"changed"}}"#,
    ]);
    c.ok(&["delete", "configmap", "a"]);

    // Exact: the state as it was at rv, and the list says so.
    let exact = json(&c.ok(&[
        "get",
        "--raw",
        &format!("{CM}?resourceVersion={rv}&resourceVersionMatch=Exact"),
    ]));
    assert_eq!(names(&exact), vec!["a"], "{exact}");
    let a = exact["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["metadata"]["name"] == "a"))
        .expect("a at rv");
    assert_eq!(a["data"]["k"], "1");
    assert_eq!(exact["metadata"]["resourceVersion"], rv.as_str());
    // NotOlderThan: the current state.
    let now = json(&c.ok(&[
        "get",
        "--raw",
        &format!("{CM}?resourceVersion={rv}&resourceVersionMatch=NotOlderThan"),
    ]));
    assert_eq!(names(&now), vec!["b"], "{now}");

    // Upstream's ListOptions validation.
    let err = c.fails(&["get", "--raw", &format!("{CM}?resourceVersionMatch=Exact")]);
    assert!(
        err.contains("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"),
        "{err}"
    );
    let err = c.fails(&[
        "get",
        "--raw",
        &format!("{CM}?resourceVersion=0&resourceVersionMatch=Exact"),
    ]);
    assert!(
        err.contains(r#"resourceVersionMatch "exact" is forbidden for resourceVersion "0""#),
        "{err}"
    );
    let err = c.fails(&[
        "get",
        "--raw",
        &format!("{CM}?resourceVersion=1&resourceVersionMatch=Soon"),
    ]);
    assert!(err.contains(r#"Unsupported value: "Soon""#), "{err}");
    let err = c.fails(&["get", "--raw", &format!("{CM}?sendInitialEvents=true")]);
    assert!(
        err.contains("sendInitialEvents is forbidden for list"),
        "{err}"
    );
    let err = c.fails(&[
        "get",
        "--raw",
        &format!("{CM}?watch=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=1"),
    ]);
    assert!(
        err.contains(
            "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"
        ),
        "{err}"
    );
}

#[test]
fn metrics_count_requests_by_verb_and_resource() {
    let c = Cluster::start("metrics");
    c.ok(&["get", "pods"]);
    c.ok(&["create", "configmap", "m", "--from-literal=k=v"]);
    let text = c.ok(&["get", "--raw", "/metrics"]);
    let line = |verb: &str, resource: &str| {
        text.lines()
            .find(|l| {
                l.starts_with("apiserver_request_total{")
                    && l.contains(&format!("verb=\"{verb}\""))
                    && l.contains(&format!("resource=\"{resource}\""))
                    && l.contains("code=\"20")
            })
            .map(String::from)
    };
    let list = line("LIST", "pods").unwrap_or_else(|| panic!("no LIST pods count:\n{text}"));
    let count: u64 = list.rsplit(' ').next().unwrap().parse().expect("count");
    assert!(count >= 1, "{list}");
    assert!(line("CREATE", "configmaps").is_some(), "{text}");
    assert!(
        text.contains("apiserver_request_duration_seconds_bucket{") && text.contains("le=\"+Inf\""),
        "{text}"
    );
}

#[test]
fn object_semantics_match_upstream() {
    let c = Cluster::start("semantics");
    // A write through the status subresource keeps metadata changes.
    c.ok(&["create", "service", "clusterip", "s", "--tcp=80:8080"]);
    c.ok(&[
        "patch",
        "service",
        "s",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"metadata":{"annotations":{"seen":"yes"}},"status":{"conditions":[{"type":"Ready","status":"True","reason":"R","message":"m","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}"#,
    ]);
    let svc = json(&c.ok(&["get", "service", "s", "-o", "json"]));
    assert_eq!(svc["metadata"]["annotations"]["seen"], "yes", "{svc}");
    assert_eq!(svc["status"]["conditions"][0]["type"], "Ready");

    // Secret stringData is merged into data.
    c.ok_stdin(
        &["create", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"sd"},"data":{"a":"eA=="},"stringData":{"b":"hello"}}"#,
    );
    let sec = json(&c.ok(&["get", "secret", "sd", "-o", "json"]));
    assert_eq!(sec["data"]["a"], "eA==");
    assert_eq!(sec["data"]["b"], "aGVsbG8=");
    assert!(sec.get("stringData").is_none(), "{sec}");

    // Immutable ConfigMaps keep their data.
    c.ok_stdin(
        &["create", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"frozen"},"data":{"k":"v"},"immutable":true}"#,
    );
    let err = c.fails(&[
        "patch",
        "configmap",
        "frozen",
        "--type=merge",
        "-p",
        r#"{"data":{"k":"w"}}"#,
    ]);
    assert!(
        err.contains("data: Forbidden: field is immutable when `immutable` is set"),
        "{err}"
    );

    // Requests equal to limits make a Guaranteed pod.
    c.ok_stdin(
        &["create", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"g"},"spec":{"containers":[{"name":"c","image":"rkind/host","command":["sleep","1"],"resources":{"limits":{"cpu":"100m","memory":"32Mi"}}}]}}"#,
    );
    let qos = c.ok(&["get", "pod", "g", "-o", "jsonpath={.status.qosClass}"]);
    assert_eq!(qos, "Guaranteed");

    // Names: a DNS-1123 subdomain of up to 253 characters.
    let long = format!("{}.{}", "a".repeat(126), "b".repeat(126));
    assert_eq!(long.len(), 253);
    c.ok(&["create", "configmap", &long]);
    let too_long = format!("{long}c");
    let err = c.fails(&["create", "configmap", &too_long]);
    assert!(err.contains("must be no more than 253 characters"), "{err}");
}

#[test]
fn pods_track_generation_and_reject_bad_sysctls() {
    let c = Cluster::start("podgen");
    let err = c.fails_stdin(
        &["create", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"bad"},"spec":{"securityContext":{"sysctls":[{"name":"kernel.shm_rmid_forced-","value":"0"}]},"containers":[{"name":"c","image":"rkind/host"}]}}"#,
    );
    assert!(
        err.contains(r#"spec.securityContext.sysctls[0].name: Invalid value: "kernel.shm_rmid_forced-": must have at most 253 characters and match regex"#),
        "{err}"
    );
    c.ok_stdin(
        &["create", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"gen"},"spec":{"terminationGracePeriodSeconds":60,"containers":[{"name":"c","image":"rkind/host","command":["sh","-c","trap '' TERM; sleep 3600"]}]}}"#,
    );
    c.ok(&["wait", "--for=condition=Ready", "pod/gen", "--timeout=60s"]);
    c.eventually(30, "status.observedGeneration 1", || {
        c.ok(&[
            "get",
            "pod",
            "gen",
            "-o",
            "jsonpath={.status.observedGeneration}",
        ]) == "1"
    });
    assert_eq!(
        c.ok(&["get", "pod", "gen", "-o", "jsonpath={.metadata.generation}"]),
        "1"
    );
    c.ok(&["delete", "pod", "gen", "--wait=false"]);
    let meta = json(&c.ok(&["get", "pod", "gen", "-o", "json"]));
    assert!(meta["metadata"]["deletionTimestamp"].is_string(), "{meta}");
    assert_eq!(meta["metadata"]["generation"], 2, "{meta}");
    c.ok(&["delete", "pod", "gen", "--grace-period=0", "--force"]);
}
