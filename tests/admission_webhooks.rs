//! Dynamic admission end to end with stock kubectl: a mutating and a validating webhook
//! (an HTTPS server this test runs on 127.0.0.1, trusted through the configuration's
//! `caBundle`) see AdmissionReviews, patch, warn and refuse; a webhook that cannot be
//! reached fails the write or is skipped as its `failurePolicy` says, and its
//! configuration can still be deleted; ValidatingAdmissionPolicies with bindings, params,
//! variables and `Deny`/`Warn` actions refuse and warn with upstream's texts; mutating
//! webhooks are reinvoked when `IfNeeded`; webhook and policy `matchConditions` and the
//! policy's `namespaceObject` decide and check per request.
//!
//! Isolation levels: root only (the objects under test are ConfigMaps; no container runs).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use base64::Engine;
use common::Cluster;
use serde_json::{Value, json};

/// The AdmissionReviews the webhook server received, by path.
type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// A webhook server on 127.0.0.1: `/mutate` labels ConfigMaps `webhook: seen` (with a
/// warning), `/label/<key>` labels them `<key>: yes`, `/validate` refuses ConfigMaps that
/// have a `forbidden` key; ConversionReviews are answered by [`convert`].
struct WebhookServer {
    port: u16,
    ca_bundle: String,
    seen: Seen,
}

/// A ConversionReview answer for the Gizmo CRD: `v1` calls the colour `spec.colour`,
/// `v2` calls it `spec.color`; converted objects get a `converted-to` label.
/// `/refuse-conversion` refuses every review.
fn convert(path: &str, review: &Value) -> Value {
    let req = &review["request"];
    let desired = req["desiredAPIVersion"].as_str().unwrap_or("");
    let (from, to) = if desired.ends_with("/v2") {
        ("colour", "color")
    } else {
        ("color", "colour")
    };
    let result = if path == "/refuse-conversion" {
        json!({"status": "Failure", "message": "conversion refused by the test webhook"})
    } else {
        json!({"status": "Success"})
    };
    let converted: Vec<Value> = req["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            let mut o = o.clone();
            if let Some(v) = o["spec"].as_object_mut().and_then(|s| s.remove(from)) {
                o["spec"][to] = v;
            }
            o["apiVersion"] = json!(desired);
            o["metadata"]["labels"]["converted-to"] = json!(desired.rsplit('/').next());
            // Only labels and annotations may change: this must not stick.
            o["metadata"]["generation"] = json!(99);
            o
        })
        .collect();
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
        "response": {"uid": req["uid"], "convertedObjects": converted, "result": result}})
}

fn answer(path: &str, review: &Value) -> Value {
    if review["kind"] == "ConversionReview" {
        return convert(path, review);
    }
    let req = &review["request"];
    let uid = req["uid"].clone();
    // A JSONPatch that sets label `key` to `value`.
    let label = |key: &str, value: &str| {
        let ops = if req["object"]["metadata"]["labels"].is_object() {
            json!([{"op": "add", "path": format!("/metadata/labels/{key}"), "value": value}])
        } else {
            json!([{"op": "add", "path": "/metadata/labels", "value": {key: value}}])
        };
        base64::engine::general_purpose::STANDARD.encode(ops.to_string())
    };
    let response = match path {
        "/mutate" => json!({
            "uid": uid,
            "allowed": true,
            "patchType": "JSONPatch",
            "patch": label("webhook", "seen"),
            "warnings": ["labelled by the test webhook"],
        }),
        // `/label/<key>`: sets label <key>=yes (and changes nothing once it is there).
        _ if path.starts_with("/label/") => {
            let key = &path["/label/".len()..];
            if req["object"]["metadata"]["labels"][key] == "yes" {
                json!({"uid": uid, "allowed": true})
            } else {
                json!({"uid": uid, "allowed": true, "patchType": "JSONPatch", "patch": label(key, "yes")})
            }
        }
        _ if req["object"]["data"]["forbidden"].is_string() => json!({
            "uid": uid,
            "allowed": false,
            "status": {"message": "ConfigMaps may not have a forbidden key"},
        }),
        _ => json!({"uid": uid, "allowed": true}),
    };
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}

fn serve_one(tls: Arc<rustls::ServerConfig>, tcp: TcpStream, seen: &Seen) -> std::io::Result<()> {
    let conn = rustls::ServerConnection::new(tls).map_err(std::io::Error::other)?;
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    let mut reader = BufReader::new(&mut stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let target = request_line.split_whitespace().nth(1).unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    assert!(
        query.starts_with("timeout="),
        "the API server sends ?timeout: {target}"
    );
    let review: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    seen.lock()
        .unwrap()
        .push((path.to_string(), review.clone()));
    let out = answer(path, &review).to_string();
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{out}",
        out.len()
    )?;
    stream.flush()
}

impl WebhookServer {
    fn start() -> WebhookServer {
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("self-signed certificate");
        let cert_pem = cert.cert.pem();
        let der = rustls::pki_types::CertificateDer::from(cert.cert.der().to_vec());
        let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der())
            .expect("key");
        let tls = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![der], key)
            .expect("server config"),
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let seen: Seen = Arc::default();
        let s = seen.clone();
        std::thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let (tls, s) = (tls.clone(), s.clone());
                std::thread::spawn(move || {
                    if let Err(e) = serve_one(tls, tcp, &s) {
                        eprintln!("webhook server: {e}");
                    }
                });
            }
        });
        WebhookServer {
            port,
            ca_bundle: base64::engine::general_purpose::STANDARD.encode(cert_pem),
            seen,
        }
    }

    /// The reviews `path` received about the object `name`.
    fn reviews(&self, path: &str, name: &str) -> Vec<Value> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, r)| p == path && r["request"]["name"] == name)
            .map(|(_, r)| r.clone())
            .collect()
    }
}

/// A webhook entry for ConfigMaps in namespaces labelled `webhooks: on`.
fn hook(name: &str, url: &str, ca: &str, failure: &str, extra: Value) -> Value {
    let mut h = json!({
        "name": name,
        "clientConfig": {"url": url, "caBundle": ca},
        "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"],
                   "resources": ["configmaps"]}],
        "namespaceSelector": {"matchLabels": {"webhooks": "on"}},
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "failurePolicy": failure,
        "timeoutSeconds": 5,
    });
    if let (Some(h), Some(extra)) = (h.as_object_mut(), extra.as_object()) {
        h.extend(extra.clone());
    }
    h
}

/// A ConfigMap manifest (`kubectl create -f -` reports a refusal as "Error from server
/// (<reason>)", `kubectl create configmap` wraps it).
fn configmap(name: &str, ns: &str, data: Value) -> String {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": ns}, "data": data})
    .to_string()
}

fn labels(c: &Cluster, ns: &str, name: &str) -> Value {
    let cm: Value =
        serde_json::from_str(&c.ok(&["get", "cm", name, "-n", ns, "-o", "json"])).unwrap();
    cm["metadata"]["labels"].clone()
}

#[test]
fn webhooks_patch_warn_refuse_and_fail_as_configured() {
    let c = Cluster::start("webhooks");
    let server = WebhookServer::start();
    let base = format!("https://127.0.0.1:{}", server.port);
    c.ok(&["create", "namespace", "hooked"]);
    c.ok(&["label", "namespace", "hooked", "webhooks=on"]);
    let mutating = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "label-configmaps"},
        "webhooks": [hook("label.rkind.test", &format!("{base}/mutate"), &server.ca_bundle, "Fail", json!({}))],
    });
    let validating = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "check-configmaps"},
        "webhooks": [hook("check.rkind.test", &format!("{base}/validate"), &server.ca_bundle, "Fail", json!({}))],
    });
    let out = c.ok_stdin(&["apply", "-f", "-"], &mutating.to_string());
    assert!(
        out.contains(
            "mutatingwebhookconfiguration.admissionregistration.k8s.io/label-configmaps created"
        ),
        "{out}"
    );
    c.ok_stdin(&["apply", "-f", "-"], &validating.to_string());
    let table = c.ok(&["get", "mutatingwebhookconfigurations"]);
    assert!(
        table.contains("NAME") && table.contains("WEBHOOKS") && table.contains("label-configmaps"),
        "{table}"
    );

    // The mutating webhook labels the ConfigMap, and its warning reaches kubectl.
    let out = c.kubectl(&[
        "create",
        "configmap",
        "ok",
        "-n",
        "hooked",
        "--from-literal=a=b",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Warning: labelled by the test webhook"),
        "{stderr}"
    );
    assert_eq!(labels(&c, "hooked", "ok")["webhook"], "seen");
    let reviews = server.reviews("/mutate", "ok");
    let r = &reviews.last().expect("the mutating webhook was called")["request"];
    assert_eq!(r["operation"], "CREATE");
    assert_eq!(
        r["resource"],
        json!({"group": "", "version": "v1", "resource": "configmaps"})
    );
    assert_eq!(r["kind"]["kind"], "ConfigMap");
    assert_eq!(r["namespace"], "hooked");
    assert_eq!(r["name"], "ok");
    assert!(
        r["userInfo"]["username"]
            .as_str()
            .is_some_and(|u| !u.is_empty()),
        "{r}"
    );
    assert_eq!(r["object"]["data"]["a"], "b");
    // The validating webhook saw the mutated object.
    let v = server.reviews("/validate", "ok");
    assert_eq!(
        v.last().expect("validated")["request"]["object"]["metadata"]["labels"]["webhook"],
        "seen"
    );

    // Other namespaces are not sent (namespaceSelector).
    c.ok(&["create", "configmap", "elsewhere", "--from-literal=a=b"]);
    assert!(server.reviews("/mutate", "elsewhere").is_empty());
    assert!(labels(&c, "default", "elsewhere").get("webhook").is_none());

    // The validating webhook refuses, in upstream's words.
    let err = c.fails_stdin(
        &["create", "-f", "-"],
        &configmap("bad", "hooked", json!({"forbidden": "x"})),
    );
    assert!(
        err.contains("Error from server (Forbidden)")
            && err.contains("configmaps \"bad\" is forbidden: admission webhook \"check.rkind.test\" denied the request: ConfigMaps may not have a forbidden key"),
        "{err}"
    );
    assert!(
        c.fails(&["get", "cm", "bad", "-n", "hooked"])
            .contains("NotFound")
    );

    // Updates are reviewed with the old object; dry runs say so.
    c.ok(&[
        "label",
        "cm",
        "ok",
        "-n",
        "hooked",
        "second=yes",
        "--dry-run=server",
    ]);
    let r = server.reviews("/mutate", "ok").last().cloned().unwrap();
    assert_eq!(r["request"]["operation"], "UPDATE");
    assert_eq!(r["request"]["dryRun"], true);
    assert_eq!(r["request"]["oldObject"]["metadata"]["name"], "ok");

    // A webhook nobody answers: Fail refuses the write, Ignore lets it through.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("https://127.0.0.1:{}/", dead.local_addr().unwrap().port());
    drop(dead);
    let broken = |policy: &str, label: &str| {
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": format!("broken-{}", policy.to_lowercase())},
            "webhooks": [hook(&format!("{}.broken.rkind.test", policy.to_lowercase()), &dead_url,
                              &server.ca_bundle, policy,
                              json!({"objectSelector": {"matchLabels": {"broken": label}}}))],
        })
    };
    c.ok_stdin(&["apply", "-f", "-"], &broken("Fail", "fail").to_string());
    c.ok_stdin(
        &["apply", "-f", "-"],
        &broken("Ignore", "ignore").to_string(),
    );
    let cm = |name: &str, label: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "namespace": "hooked", "labels": {"broken": label}}})
        .to_string()
    };
    let err = c.fails_stdin(&["create", "-f", "-"], &cm("to-dead", "fail"));
    assert!(
        err.contains("Error from server (InternalError)")
            && err.contains("Internal error occurred: failed calling webhook \"fail.broken.rkind.test\": failed to call webhook: Post \"")
            && err.contains("?timeout=5s\""),
        "{err}"
    );
    c.ok_stdin(&["create", "-f", "-"], &cm("past-dead", "ignore"));
    // Webhook configurations are never sent to webhooks: a broken one can be removed.
    c.ok(&["delete", "validatingwebhookconfiguration", "broken-fail"]);
    c.ok_stdin(&["create", "-f", "-"], &cm("to-dead", "fail"));

    // Bad configurations are refused with upstream's field errors.
    let bad = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "bad"},
        "webhooks": [{"name": "short", "clientConfig": {"url": "http://127.0.0.1/"},
                      "sideEffects": "Unknown", "admissionReviewVersions": ["v1"]}],
    });
    let err = c.fails_stdin(&["create", "-f", "-"], &bad.to_string());
    assert!(
        err.contains("is invalid") && err.contains("webhooks[0].name"),
        "{err}"
    );
}

fn policy_yaml() -> String {
    json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
             "metadata": {"name": "max-keys"},
             "spec": {
                "failurePolicy": "Fail",
                "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
                "matchConstraints": {
                    "resourceRules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""],
                                       "apiVersions": ["v1"], "resources": ["configmaps"]}],
                    "excludeResourceRules": [{"operations": ["*"], "apiGroups": [""], "apiVersions": ["v1"],
                                              "resources": ["configmaps"], "resourceNames": ["limits"]}],
                },
                "variables": [{"name": "keys", "expression": "has(object.data) ? object.data.size() : 0"}],
                "validations": [
                    {"expression": "variables.keys <= int(params.data.max)",
                     "messageExpression": "'at most ' + params.data.max + ' keys, got ' + string(variables.keys)"},
                    {"expression": "!object.metadata.name.startsWith('tmp-')", "reason": "Forbidden"},
                ],
             }},
            {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
             "metadata": {"name": "max-keys-policed"},
             "spec": {"policyName": "max-keys", "validationActions": ["Deny"],
                      "paramRef": {"name": "limits", "namespace": "policed", "parameterNotFoundAction": "Deny"},
                      "matchResources": {"namespaceSelector": {"matchLabels": {"policy": "deny"}}}}},
            {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
             "metadata": {"name": "max-keys-warned"},
             "spec": {"policyName": "max-keys", "validationActions": ["Warn"],
                      "paramRef": {"name": "limits", "namespace": "policed", "parameterNotFoundAction": "Deny"},
                      "matchResources": {"namespaceSelector": {"matchLabels": {"policy": "warn"}}}}},
        ],
    })
    .to_string()
}

#[test]
fn validating_admission_policies_deny_and_warn() {
    let c = Cluster::start("vap");
    for (ns, mode) in [("policed", "deny"), ("watched", "warn")] {
        c.ok(&["create", "namespace", ns]);
        c.ok(&["label", "namespace", ns, &format!("policy={mode}")]);
    }
    c.ok_stdin(&["apply", "-f", "-"], &policy_yaml());
    let table = c.ok(&["get", "validatingadmissionpolicies"]);
    assert!(
        table.contains("VALIDATIONS") && table.contains("PARAMKIND") && table.contains("max-keys"),
        "{table}"
    );
    let table = c.ok(&["get", "validatingadmissionpolicybindings"]);
    assert!(
        table.contains("POLICYNAME") && table.contains("max-keys-policed"),
        "{table}"
    );

    // The param object is missing: Deny says so.
    let err = c.fails(&[
        "create",
        "configmap",
        "one",
        "-n",
        "policed",
        "--from-literal=a=1",
    ]);
    assert!(
        err.contains("ValidatingAdmissionPolicy 'max-keys' with binding 'max-keys-policed' denied request: no params found for policy binding with `Deny` parameterNotFoundAction"),
        "{err}"
    );
    // The param object itself is excluded by name.
    c.ok(&[
        "create",
        "configmap",
        "limits",
        "-n",
        "policed",
        "--from-literal=max=2",
        "--from-literal=x=1",
        "--from-literal=y=2",
    ]);
    c.ok(&[
        "create",
        "configmap",
        "two",
        "-n",
        "policed",
        "--from-literal=a=1",
        "--from-literal=b=2",
    ]);
    let err = c.fails_stdin(
        &["create", "-f", "-"],
        &configmap("three", "policed", json!({"a": "1", "b": "2", "c": "3"})),
    );
    assert!(
        // kubectl's rendering of an Invalid status with a field-less cause, as upstream's
        // documentation shows it.
        err.contains("The configmaps \"three\" is invalid: : ValidatingAdmissionPolicy 'max-keys' with binding 'max-keys-policed' denied request: at most 2 keys, got 3"),
        "{err}"
    );
    let err = c.fails_stdin(
        &["create", "-f", "-"],
        &configmap("tmp-x", "policed", json!({})),
    );
    assert!(
        err.contains("Error from server (Forbidden)")
            && err.contains(
                "denied request: failed expression: !object.metadata.name.startsWith('tmp-')"
            ),
        "{err}"
    );
    // Updates are checked too.
    let err = c.fails(&[
        "patch",
        "configmap",
        "two",
        "-n",
        "policed",
        "--type=merge",
        "-p",
        r#"{"data":{"c":"3"}}"#,
    ]);
    assert!(err.contains("at most 2 keys, got 3"), "{err}");

    // Warn: the write goes through and kubectl prints the warning.
    let out = c.kubectl(&[
        "create",
        "configmap",
        "three",
        "-n",
        "watched",
        "--from-literal=a=1",
        "--from-literal=b=2",
        "--from-literal=c=3",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Warning: Validation failed for ValidatingAdmissionPolicy 'max-keys' with binding 'max-keys-warned': at most 2 keys, got 3"),
        "{stderr}"
    );
    // Namespaces no binding selects are not checked.
    c.ok(&[
        "create",
        "configmap",
        "tmp-free",
        "--from-literal=a=1",
        "--from-literal=b=2",
        "--from-literal=c=3",
    ]);

    // A policy whose expression does not compile is refused with the field.
    let bad = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
                     "metadata": {"name": "bad"},
                     "spec": {"matchConstraints": {"resourceRules": [{"operations": ["*"], "apiGroups": ["*"],
                                                                       "apiVersions": ["*"], "resources": ["*"]}]},
                              "validations": [{"expression": "object.("}]}});
    let err = c.fails_stdin(&["create", "-f", "-"], &bad.to_string());
    assert!(
        err.contains("is invalid") && err.contains("spec.validations[0].expression"),
        "{err}"
    );
}

/// Upstream's reinvocation rule: a mutating webhook with `reinvocationPolicy: IfNeeded`
/// that ran before a later webhook changed the object is called once more (and sees that
/// change); one with `Never` is called once. `matchConditions` decide per request whether
/// a webhook is called at all.
#[test]
fn webhooks_are_reinvoked_if_needed_and_skipped_by_match_conditions() {
    let c = Cluster::start("reinvoke");
    let server = WebhookServer::start();
    let base = format!("https://127.0.0.1:{}", server.port);
    c.ok(&["create", "namespace", "hooked"]);
    c.ok(&["label", "namespace", "hooked", "webhooks=on"]);
    let url = |key: &str| format!("{base}/label/{key}");
    let skip_named = json!({"matchConditions": [
        {"name": "not-skipped", "expression": "object.metadata.name != 'skip-me'"}]});
    let mut again = hook(
        "again.rkind.test",
        &url("again"),
        &server.ca_bundle,
        "Fail",
        json!({"reinvocationPolicy": "IfNeeded"}),
    );
    again["matchConditions"] = skip_named["matchConditions"].clone();
    let once = hook(
        "once.rkind.test",
        &url("once"),
        &server.ca_bundle,
        "Fail",
        json!({"reinvocationPolicy": "Never"}),
    );
    let last = hook(
        "last.rkind.test",
        &url("last"),
        &server.ca_bundle,
        "Fail",
        json!({}),
    );
    let config = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "in-order"},
        "webhooks": [again, once, last],
    });
    c.ok_stdin(&["apply", "-f", "-"], &config.to_string());
    let stored: Value = serde_json::from_str(&c.ok(&[
        "get",
        "mutatingwebhookconfiguration",
        "in-order",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(
        stored["webhooks"][2]["reinvocationPolicy"], "Never",
        "the default"
    );

    c.ok(&[
        "create",
        "configmap",
        "ordered",
        "-n",
        "hooked",
        "--from-literal=a=b",
    ]);
    let got = labels(&c, "hooked", "ordered");
    for key in ["again", "once", "last"] {
        assert_eq!(got[key], "yes", "{got}");
    }
    let again_calls = server.reviews("/label/again", "ordered");
    assert_eq!(
        again_calls.len(),
        2,
        "IfNeeded: called again after later changes"
    );
    assert!(
        again_calls[0]["request"]["object"]["metadata"]["labels"]["last"].is_null(),
        "the first call comes before the later webhooks"
    );
    assert_eq!(
        again_calls[1]["request"]["object"]["metadata"]["labels"]["last"], "yes",
        "the second call sees what the later webhooks did"
    );
    assert_eq!(
        server.reviews("/label/once", "ordered").len(),
        1,
        "Never: once"
    );
    assert_eq!(server.reviews("/label/last", "ordered").len(), 1);

    // A match condition that is false skips the webhook; the others still run.
    c.ok(&[
        "create",
        "configmap",
        "skip-me",
        "-n",
        "hooked",
        "--from-literal=a=b",
    ]);
    assert!(server.reviews("/label/again", "skip-me").is_empty());
    let got = labels(&c, "hooked", "skip-me");
    assert!(got["again"].is_null() && got["once"] == "yes", "{got}");

    // A condition that does not compile is refused when the configuration is written.
    let mut bad = hook(
        "bad.rkind.test",
        &url("bad"),
        &server.ca_bundle,
        "Fail",
        json!({}),
    );
    bad["matchConditions"] = json!([{"name": "broken", "expression": "object.("}]);
    let err = c.fails_stdin(
        &["create", "-f", "-"],
        &json!({"apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "MutatingWebhookConfiguration",
                "metadata": {"name": "bad"}, "webhooks": [bad]})
        .to_string(),
    );
    assert!(
        err.contains("is invalid") && err.contains("webhooks[0].matchConditions[0].expression"),
        "{err}"
    );
}

/// A policy's `matchConditions` narrow what it checks, and its expressions see the
/// request's namespace as `namespaceObject`.
#[test]
fn policies_use_match_conditions_and_the_namespace_object() {
    let c = Cluster::start("vap-ns");
    c.ok(&["create", "namespace", "red"]);
    c.ok(&["label", "namespace", "red", "team=red"]);
    let objects = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
         "metadata": {"name": "team-matches"},
         "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{"operations": ["CREATE", "UPDATE"],
                "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}]},
            "matchConditions": [{"name": "checked-only",
                                 "expression": "object.metadata.name.startsWith('checked-')"}],
            "validations": [{
                "expression": "has(object.data) && has(object.data.team) && object.data.team == namespaceObject.metadata.labels.team",
                "messageExpression": "'team must be ' + namespaceObject.metadata.labels.team",
            }],
         }},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
         "metadata": {"name": "team-matches"},
         "spec": {"policyName": "team-matches", "validationActions": ["Deny"],
                  "matchResources": {"namespaceSelector": {"matchExpressions": [
                      {"key": "team", "operator": "Exists"}]}}}},
    ]});
    c.ok_stdin(&["apply", "-f", "-"], &objects.to_string());

    c.ok_stdin(
        &["create", "-f", "-"],
        &configmap("checked-ok", "red", json!({"team": "red"})),
    );
    let err = c.fails_stdin(
        &["create", "-f", "-"],
        &configmap("checked-bad", "red", json!({"team": "blue"})),
    );
    assert!(
        err.contains("ValidatingAdmissionPolicy 'team-matches' with binding 'team-matches' denied request: team must be red"),
        "{err}"
    );
    assert!(
        c.fails(&["get", "cm", "checked-bad", "-n", "red"])
            .contains("NotFound")
    );
    // The match condition is false: not checked.
    c.ok_stdin(
        &["create", "-f", "-"],
        &configmap("free", "red", json!({"team": "blue"})),
    );
    // A namespace without the label is not selected by the binding.
    c.ok_stdin(
        &["create", "-f", "-"],
        &configmap("checked-elsewhere", "default", json!({"team": "blue"})),
    );
    // The namespace is read at admission time: relabelling it changes the verdict.
    c.ok(&["label", "namespace", "red", "team=blue", "--overwrite"]);
    c.ok_stdin(
        &["create", "-f", "-"],
        &configmap("checked-blue", "red", json!({"team": "blue"})),
    );
}

/// The Gizmo CRD: v1 (stored) and v2 (served), converted by the test server at `path`.
fn gizmo_crd(server: &WebhookServer, path: &str) -> String {
    let schema = |field: &str| {
        json!({"openAPIV3Schema": {"type": "object", "properties": {
            "spec": {"type": "object", "properties": {field: {"type": "string"}}}}}})
    };
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gizmos.conv.rkind.test"},
        "spec": {
            "group": "conv.rkind.test",
            "scope": "Namespaced",
            "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo"},
            "versions": [
                {"name": "v1", "served": true, "storage": true, "schema": schema("colour")},
                {"name": "v2", "served": true, "storage": false, "schema": schema("color")},
            ],
            "conversion": {"strategy": "Webhook", "webhook": {
                "conversionReviewVersions": ["v1"],
                "clientConfig": {"url": format!("https://127.0.0.1:{}{path}", server.port),
                                 "caBundle": server.ca_bundle}}},
        },
    })
    .to_string()
}

/// The ConversionReviews the server received asking for `desired`.
fn conversions(server: &WebhookServer, desired: &str) -> Vec<Value> {
    server
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, r)| {
            r["kind"] == "ConversionReview" && r["request"]["desiredAPIVersion"] == desired
        })
        .map(|(_, r)| r.clone())
        .collect()
}

#[test]
fn a_conversion_webhook_converts_custom_resources_between_versions() {
    let c = Cluster::start("conversion");
    let server = WebhookServer::start();
    // A webhook strategy without a client config is refused with upstream's messages.
    let mut bad: Value = serde_json::from_str(&gizmo_crd(&server, "/convert")).unwrap();
    bad["spec"]["conversion"]["webhook"] = json!({"conversionReviewVersions": ["v9"]});
    let err = c.fails_stdin(&["create", "-f", "-"], &bad.to_string());
    assert!(
        err.contains("spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook")
            && err.contains("spec.conversion.conversionReviewVersions: Invalid value: []string{\"v9\"}: must include at least one of v1, v1beta1"),
        "{err}"
    );

    c.ok_stdin(&["create", "-f", "-"], &gizmo_crd(&server, "/convert"));
    c.ok(&[
        "wait",
        "--for=condition=established",
        "crd/gizmos.conv.rkind.test",
        "--timeout=20s",
    ]);
    // Written in v2: the webhook converts it to the storage version, v1.
    let g1 = json!({"apiVersion": "conv.rkind.test/v2", "kind": "Gizmo",
        "metadata": {"name": "g1"}, "spec": {"color": "red"}});
    let out = c.ok_stdin(&["create", "-f", "-"], &g1.to_string());
    assert!(out.contains("gizmo.conv.rkind.test/g1 created"), "{out}");
    let to_v1 = conversions(&server, "conv.rkind.test/v1");
    assert_eq!(to_v1.len(), 1, "{to_v1:?}");
    assert_eq!(to_v1[0]["apiVersion"], "apiextensions.k8s.io/v1");
    assert_eq!(
        to_v1[0]["request"]["objects"][0]["spec"],
        json!({"color": "red"})
    );

    // Read in v1 (the stored form, no webhook call) and in v2 (converted on the way out).
    let get = |version: &str| -> Value {
        let out = c.ok(&[
            "get",
            &format!("gizmos.{version}.conv.rkind.test"),
            "g1",
            "-o",
            "json",
        ]);
        serde_json::from_str(&out).unwrap()
    };
    // (The create's answer was converted back to v2 already.)
    let to_v2 = conversions(&server, "conv.rkind.test/v2").len();
    assert_eq!(to_v2, 1);
    let v1 = get("v1");
    assert_eq!(v1["apiVersion"], "conv.rkind.test/v1");
    assert_eq!(v1["spec"], json!({"colour": "red"}));
    assert_eq!(v1["metadata"]["labels"]["converted-to"], "v1");
    assert_eq!(
        v1["metadata"]["generation"], 1,
        "only labels and annotations come back"
    );
    assert_eq!(conversions(&server, "conv.rkind.test/v2").len(), to_v2);
    let v2 = get("v2");
    assert_eq!(v2["apiVersion"], "conv.rkind.test/v2");
    assert_eq!(v2["spec"], json!({"color": "red"}));
    assert_eq!(v2["metadata"]["labels"]["converted-to"], "v2");
    assert_eq!(v2["metadata"]["uid"], v1["metadata"]["uid"]);

    // A patch in v2 is applied to the converted object, then stored as v1.
    let rv = v2["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    c.ok(&[
        "patch",
        "gizmos.v2.conv.rkind.test",
        "g1",
        "--type=merge",
        "-p",
        r#"{"spec":{"color":"green"}}"#,
    ]);
    assert_eq!(get("v1")["spec"], json!({"colour": "green"}));

    // Lists and watches (initial state and later events) are converted too.
    let list: Value =
        serde_json::from_str(&c.ok(&["get", "gizmos.v2.conv.rkind.test", "-o", "json"])).unwrap();
    assert_eq!(list["items"][0]["spec"], json!({"color": "green"}));
    let path = "/apis/conv.rkind.test/v2/namespaces/default/gizmos";
    let initial = c.ok(&[
        "get",
        "--raw",
        &format!("{path}?watch=true&timeoutSeconds=1"),
    ]);
    assert!(
        initial.contains(r#""type":"ADDED""#) && initial.contains(r#""color":"green""#),
        "{initial}"
    );
    let later = c.ok(&[
        "get",
        "--raw",
        &format!("{path}?watch=true&timeoutSeconds=1&resourceVersion={rv}"),
    ]);
    assert!(
        later.contains(r#""type":"MODIFIED""#) && later.contains(r#""color":"green""#),
        "{later}"
    );
    assert!(!later.contains("colour"), "{later}");
    let table = c.ok(&["get", "gizmos.v2.conv.rkind.test"]);
    assert!(table.contains("g1"), "{table}");

    // Admission webhooks whose rules name v1 see a v2 write converted to v1 (matchPolicy
    // Equivalent, the default), and their patch comes back to v2; `Exact` ones do not.
    let gizmo_hook = |name: &str, path: &str, policy: &str| {
        json!({"name": name, "matchPolicy": policy, "sideEffects": "None",
            "admissionReviewVersions": ["v1"], "failurePolicy": "Fail",
            "clientConfig": {"url": format!("https://127.0.0.1:{}{path}", server.port),
                             "caBundle": server.ca_bundle},
            "rules": [{"operations": ["CREATE"], "apiGroups": ["conv.rkind.test"],
                       "apiVersions": ["v1"], "resources": ["gizmos"]}]})
    };
    let config = json!({"apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration", "metadata": {"name": "gizmo-hooks"},
        "webhooks": [gizmo_hook("equivalent.rkind.test", "/label/equivalent", "Equivalent"),
                     gizmo_hook("exact.rkind.test", "/label/exact", "Exact")]});
    c.ok_stdin(&["create", "-f", "-"], &config.to_string());
    let g3 = json!({"apiVersion": "conv.rkind.test/v2", "kind": "Gizmo",
        "metadata": {"name": "g3"}, "spec": {"color": "teal"}});
    c.ok_stdin(&["create", "-f", "-"], &g3.to_string());
    let seen = server.reviews("/label/equivalent", "g3");
    assert_eq!(seen.len(), 1, "{seen:?}");
    let r = &seen[0]["request"];
    assert_eq!(
        r["kind"],
        json!({"group": "conv.rkind.test", "version": "v1", "kind": "Gizmo"})
    );
    assert_eq!(r["requestKind"]["version"], "v2");
    assert_eq!(r["resource"]["version"], "v1");
    assert_eq!(r["requestResource"]["version"], "v2");
    assert_eq!(r["object"]["apiVersion"], "conv.rkind.test/v1");
    assert_eq!(r["object"]["spec"], json!({"colour": "teal"}));
    assert!(
        server.reviews("/label/exact", "g3").is_empty(),
        "Exact skips v2"
    );
    let g3: Value =
        serde_json::from_str(&c.ok(&["get", "gizmos.v2.conv.rkind.test", "g3", "-o", "json"]))
            .unwrap();
    assert_eq!(g3["metadata"]["labels"]["equivalent"], "yes");
    assert_eq!(g3["spec"], json!({"color": "teal"}));
    c.ok(&["delete", "mutatingwebhookconfiguration", "gizmo-hooks"]);

    // A webhook that refuses: reads in v2 fail with upstream's error, v1 reads still work.
    let mut crd: Value =
        serde_json::from_str(&c.ok(&["get", "crd", "gizmos.conv.rkind.test", "-o", "json"]))
            .unwrap();
    crd["spec"]["conversion"]["webhook"]["clientConfig"]["url"] = json!(format!(
        "https://127.0.0.1:{}/refuse-conversion",
        server.port
    ));
    c.ok_stdin(&["replace", "-f", "-"], &crd.to_string());
    c.eventually(10, "the refusing webhook is in use", || {
        let out = c.kubectl(&["get", "gizmos.v2.conv.rkind.test", "g1"]);
        String::from_utf8_lossy(&out.stderr).contains("refused")
    });
    let err = c.fails(&["get", "gizmos.v2.conv.rkind.test", "g1"]);
    assert!(
        err.contains("Error from server (InternalError): Internal error occurred: conversion webhook for conv.rkind.test/v1, Kind=Gizmo failed: conversion refused by the test webhook"),
        "{err}"
    );
    let err = c.fails_stdin(
        &["apply", "-f", "-"],
        &json!({"apiVersion": "conv.rkind.test/v2", "kind": "Gizmo",
            "metadata": {"name": "g2"}, "spec": {"color": "blue"}})
        .to_string(),
    );
    assert!(
        err.contains("conversion refused by the test webhook"),
        "{err}"
    );
    assert_eq!(get("v1")["spec"], json!({"colour": "green"}));
    let err = c.fails(&["get", "gizmo.v1.conv.rkind.test", "g2"]);
    assert!(err.contains("NotFound"), "nothing half-written: {err}");
}
