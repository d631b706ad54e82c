//! The garbage collector end to end, with stock kubectl (old and new) and raw requests:
//! `kubectl delete --cascade=background|foreground|orphan` on a three-level owner chain
//! (ConfigMap → Secret → ConfigMap, pods as dependents in one case), the intermediate
//! state of a foreground deletion and a second delete switching its policy, dangling
//! owners (uid mismatch, absent name), a dependency circle, an owner named from another
//! namespace, and `DeleteOptions` validation.
//!
//! Isolation levels: root only (no container behaviour is under test here).

mod common;

use common::{Cluster, write_file};
use serde_json::Value;

const OLD: &str = "kubectl.1.27";
const NEW: &str = "kubectl.1.33";

/// `kubectl get -o json` of one object, or None while it does not exist.
fn get(c: &Cluster, ns: &str, what: &str) -> Option<Value> {
    let out = c.kubectl(&["-n", ns, "get", what, "-o", "json"]);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).expect("kubectl JSON"))
}

fn uid(c: &Cluster, ns: &str, what: &str) -> String {
    get(c, ns, what).expect("object exists")["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_string()
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj["metadata"]["finalizers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn owner_uids(obj: &Value) -> Vec<String> {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["uid"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Creates `kind/name` in `ns` owned by `owner` (`(kind, name, uid)`), with
/// blockOwnerDeletion, and the extra metadata lines `extra` (finalizers).
fn create_owned(
    c: &Cluster,
    ns: &str,
    kind: &str,
    name: &str,
    owner: (&str, &str, &str),
    extra: &str,
) {
    let (okind, oname, ouid) = owner;
    let yaml = format!(
        "apiVersion: v1\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: {ns}\n{extra}  ownerReferences:\n  - apiVersion: v1\n    kind: {okind}\n    name: {oname}\n    uid: {ouid}\n    blockOwnerDeletion: true\n"
    );
    c.ok_stdin(&["create", "-f", "-"], &yaml);
}

/// The uids of a chain ConfigMap `root` → Secret `mid` → ConfigMap `leaf` in `ns`
/// (`leaf_extra`: more metadata of the leaf).
struct Chain {
    root: String,
    mid: String,
    leaf: String,
}

fn chain(c: &Cluster, ns: &str, leaf_extra: &str) -> Chain {
    c.ok(&["create", "namespace", ns]);
    c.ok(&["-n", ns, "create", "configmap", "root"]);
    let root = uid(c, ns, "configmap/root");
    create_owned(c, ns, "Secret", "mid", ("ConfigMap", "root", &root), "");
    let mid = uid(c, ns, "secret/mid");
    create_owned(
        c,
        ns,
        "ConfigMap",
        "leaf",
        ("Secret", "mid", &mid),
        leaf_extra,
    );
    let leaf = uid(c, ns, "configmap/leaf");
    Chain { root, mid, leaf }
}

fn kubectl_ok(c: &Cluster, bin: &str, args: &[&str]) -> String {
    let out = c.kubectl_bin(bin, args, None);
    assert!(
        out.status.success(),
        "{bin} {args:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn gone(c: &Cluster, ns: &str, what: &str) -> bool {
    get(c, ns, what).is_none()
}

#[test]
fn background_cascade_deletes_the_chain_and_its_pods() {
    let c = Cluster::start("gc-bg");
    for (ns, bin) in [("old", OLD), ("new", NEW)] {
        let ch = chain(&c, ns, "");
        // Pods as dependents of the middle object.
        for pod in ["p1", "p2"] {
            let yaml = format!(
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {pod}\n  namespace: {ns}\n  ownerReferences:\n  - apiVersion: v1\n    kind: Secret\n    name: mid\n    uid: {}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: rkind/host\n    command: [\"sleep\", \"3600\"]\n",
                ch.mid
            );
            c.ok_stdin(&["create", "-f", "-"], &yaml);
        }
        let out = kubectl_ok(
            &c,
            bin,
            &[
                "-n",
                ns,
                "delete",
                "configmap",
                "root",
                "--cascade=background",
            ],
        );
        assert!(out.contains("configmap \"root\" deleted"), "{out}");
        assert!(
            gone(&c, ns, "configmap/root"),
            "a background delete removes the owner at once"
        );
        c.eventually(
            60,
            &format!("{ns}: the whole chain and the pods collected"),
            || {
                ["secret/mid", "configmap/leaf", "pod/p1", "pod/p2"]
                    .iter()
                    .all(|w| gone(&c, ns, w))
            },
        );
        let _ = ch.leaf;
    }
}

#[test]
fn foreground_cascade_waits_for_blocking_dependents() {
    let c = Cluster::start("gc-fg");
    let hold = "  finalizers: [example.com/hold]\n";

    // New kubectl: the intermediate state, held by the leaf's own finalizer.
    let ch = chain(&c, "held", hold);
    kubectl_ok(
        &c,
        NEW,
        &[
            "-n",
            "held",
            "delete",
            "configmap",
            "root",
            "--cascade=foreground",
            "--wait=false",
        ],
    );
    c.eventually(
        30,
        "root and mid waiting for their dependents, leaf being deleted",
        || {
            let (Some(root), Some(mid), Some(leaf)) = (
                get(&c, "held", "configmap/root"),
                get(&c, "held", "secret/mid"),
                get(&c, "held", "configmap/leaf"),
            ) else {
                return false;
            };
            root["metadata"]["deletionTimestamp"].is_string()
                && finalizers(&root) == ["foregroundDeletion"]
                && mid["metadata"]["deletionTimestamp"].is_string()
                && finalizers(&mid) == ["foregroundDeletion"]
                && leaf["metadata"]["deletionTimestamp"].is_string()
                && finalizers(&leaf) == ["example.com/hold"]
        },
    );
    // Still there: nothing else releases them.
    let root = get(&c, "held", "configmap/root").expect("root is held by its dependents");
    assert_eq!(root["metadata"]["uid"].as_str(), Some(ch.root.as_str()));
    assert_eq!(
        owner_uids(&get(&c, "held", "secret/mid").expect("mid")),
        [ch.root.as_str()]
    );
    c.clear_finalizers(&["-n", "held", "configmap", "leaf"]);
    c.eventually(30, "the chain gone once the leaf is released", || {
        ["configmap/root", "secret/mid", "configmap/leaf"]
            .iter()
            .all(|w| gone(&c, "held", w))
    });

    // A second delete switches a foreground deletion to orphaning: the root goes, the
    // middle object loses its reference to it and keeps waiting for the leaf.
    let ch = chain(&c, "switch", hold);
    kubectl_ok(
        &c,
        NEW,
        &[
            "-n",
            "switch",
            "delete",
            "configmap",
            "root",
            "--cascade=foreground",
            "--wait=false",
        ],
    );
    c.eventually(30, "root waiting in the foreground", || {
        get(&c, "switch", "configmap/leaf")
            .is_some_and(|l| l["metadata"]["deletionTimestamp"].is_string())
            && get(&c, "switch", "configmap/root")
                .is_some_and(|r| finalizers(&r) == ["foregroundDeletion"])
    });
    kubectl_ok(
        &c,
        NEW,
        &[
            "-n",
            "switch",
            "delete",
            "configmap",
            "root",
            "--cascade=orphan",
        ],
    );
    assert!(gone(&c, "switch", "configmap/root"));
    let mid = get(&c, "switch", "secret/mid").expect("mid stays while the leaf holds it");
    assert!(owner_uids(&mid).is_empty(), "orphaned: {mid}");
    assert_eq!(finalizers(&mid), ["foregroundDeletion"]);
    c.clear_finalizers(&["-n", "switch", "configmap", "leaf"]);
    c.eventually(30, "mid and leaf gone", || {
        gone(&c, "switch", "secret/mid") && gone(&c, "switch", "configmap/leaf")
    });
    let _ = (ch.mid, ch.leaf);

    // Old kubectl waits for the foreground deletion to finish.
    chain(&c, "old", "");
    kubectl_ok(
        &c,
        OLD,
        &[
            "-n",
            "old",
            "delete",
            "configmap",
            "root",
            "--cascade=foreground",
        ],
    );
    assert!(gone(&c, "old", "configmap/root"));
    c.eventually(30, "old: the dependents gone", || {
        gone(&c, "old", "secret/mid") && gone(&c, "old", "configmap/leaf")
    });
}

#[test]
fn orphan_cascade_keeps_dependents_without_the_reference() {
    let c = Cluster::start("gc-orphan");
    for (ns, bin) in [("old", OLD), ("new", NEW)] {
        let ch = chain(&c, ns, "");
        kubectl_ok(
            &c,
            bin,
            &["-n", ns, "delete", "configmap", "root", "--cascade=orphan"],
        );
        assert!(gone(&c, ns, "configmap/root"));
        let mid = get(&c, ns, "secret/mid").expect("mid orphaned, not deleted");
        assert!(owner_uids(&mid).is_empty(), "{ns}: {mid}");
        let leaf = get(&c, ns, "configmap/leaf").expect("leaf kept");
        assert_eq!(
            owner_uids(&leaf),
            [ch.mid.as_str()],
            "the leaf keeps its own owner"
        );
        assert_eq!(leaf["metadata"]["uid"].as_str(), Some(ch.leaf.as_str()));
    }
    // The deprecated orphanDependents query parameter means the same.
    let ch = chain(&c, "query", "");
    c.ok(&[
        "delete",
        "--raw",
        "/api/v1/namespaces/query/configmaps/root?orphanDependents=true",
    ]);
    c.eventually(30, "root gone after orphaning", || {
        gone(&c, "query", "configmap/root")
    });
    let mid = get(&c, "query", "secret/mid").expect("mid kept");
    assert!(
        owner_uids(&mid).is_empty()
            && !owner_uids(&get(&c, "query", "configmap/leaf").expect("leaf")).is_empty()
    );
    let _ = ch.root;
}

#[test]
fn dangling_owners_circles_and_foreign_namespaces() {
    let c = Cluster::start("gc-dangling");
    c.ok(&["create", "secret", "generic", "real"]);
    let real = uid(&c, "default", "secret/real");
    // The owner's name exists but with another uid; an owner that does not exist at all;
    // and a control whose owner exists.
    create_owned(
        &c,
        "default",
        "ConfigMap",
        "wrong-uid",
        ("Secret", "real", "00000000-0000-0000-0000-000000000001"),
        "",
    );
    create_owned(
        &c,
        "default",
        "ConfigMap",
        "no-owner",
        (
            "ConfigMap",
            "nobody",
            "00000000-0000-0000-0000-000000000002",
        ),
        "",
    );
    create_owned(
        &c,
        "default",
        "ConfigMap",
        "kept",
        ("Secret", "real", &real),
        "",
    );
    c.eventually(30, "dependents of absent owners collected", || {
        gone(&c, "default", "configmap/wrong-uid") && gone(&c, "default", "configmap/no-owner")
    });
    assert!(
        get(&c, "default", "configmap/kept").is_some(),
        "a dependent of a live owner stays"
    );

    // A dependency circle a → c → b → a does not block a foreground deletion.
    c.ok(&["create", "namespace", "circle"]);
    for n in ["a", "b", "c"] {
        c.ok(&["-n", "circle", "create", "configmap", n]);
    }
    for (dep, owner) in [("a", "c"), ("b", "a"), ("c", "b")] {
        let ouid = uid(&c, "circle", &format!("configmap/{owner}"));
        let patch = format!(
            r#"{{"metadata":{{"ownerReferences":[{{"apiVersion":"v1","kind":"ConfigMap","name":"{owner}","uid":"{ouid}","controller":true,"blockOwnerDeletion":true}}]}}}}"#
        );
        c.ok(&[
            "-n",
            "circle",
            "patch",
            "configmap",
            dep,
            "--type=merge",
            "-p",
            &patch,
        ]);
    }
    kubectl_ok(
        &c,
        NEW,
        &[
            "-n",
            "circle",
            "delete",
            "configmap",
            "a",
            "--cascade=foreground",
            "--wait=false",
        ],
    );
    c.eventually(60, "the whole circle collected", || {
        ["configmap/a", "configmap/b", "configmap/c"]
            .iter()
            .all(|w| gone(&c, "circle", w))
    });

    // An owner named from another namespace is not found there: the dependent is
    // collected, with a warning Event saying why.
    c.ok(&["create", "namespace", "elsewhere"]);
    create_owned(
        &c,
        "elsewhere",
        "ConfigMap",
        "child",
        ("Secret", "real", &real),
        "",
    );
    c.eventually(30, "the child of a foreign owner collected", || {
        gone(&c, "elsewhere", "configmap/child")
    });
    c.eventually(30, "an OwnerRefInvalidNamespace Event", || {
        let out = c.ok(&["-n", "elsewhere", "get", "events", "-o", "json"]);
        let v: Value = serde_json::from_str(&out).expect("events JSON");
        v["items"].as_array().is_some_and(|items| {
            items.iter().any(|e| {
                e["reason"] == "OwnerRefInvalidNamespace"
                    && e["type"] == "Warning"
                    && e["involvedObject"]["name"] == "child"
                    && e["message"]
                        == format!("ownerRef [v1/Secret, namespace: elsewhere, name: real, uid: {real}] does not exist in namespace \"elsewhere\"").as_str()
            })
        })
    });
    assert!(get(&c, "default", "secret/real").is_some());
}

#[test]
fn delete_options_are_validated_as_upstream() {
    let c = Cluster::start("gc-options");
    c.ok(&["create", "configmap", "x"]);
    let path = "/api/v1/namespaces/default/configmaps/x";
    for bin in [OLD, NEW] {
        let out = c.kubectl_bin(
            bin,
            &[
                "delete",
                "--raw",
                &format!("{path}?propagationPolicy=Bogus"),
            ],
            None,
        );
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(r#"propagationPolicy: Unsupported value: "Bogus": supported values: "Foreground", "Background", "Orphan", "nil""#),
            "{bin}: {err}"
        );
    }
    // Both the deprecated and the new field, in a body.
    let body = write_file(
        c.dir.path(),
        "both.json",
        r#"{"kind":"DeleteOptions","apiVersion":"v1","orphanDependents":true,"propagationPolicy":"Foreground"}"#,
    );
    let err = c.fails(&["delete", "--raw", path, "-f", &body.display().to_string()]);
    assert!(
        err.contains(r#"propagationPolicy: Invalid value: "Foreground": orphanDependents and deletionPropagation cannot be both set"#),
        "{err}"
    );
    // The raw Status: 422 Invalid on DeleteOptions.meta.k8s.io.
    let out = c.kubectl(&[
        "delete",
        "--raw",
        &format!("{path}?propagationPolicy=Sideways"),
        "-v=8",
    ]);
    // kubectl logs the body with its quotes escaped.
    let log = String::from_utf8_lossy(&out.stderr).replace("\\\"", "\"");
    assert!(log.contains("Response Status: 422"), "{log}");
    assert!(
        log.contains(r#""reason":"Invalid""#)
            && log.contains(r#""kind":"DeleteOptions""#)
            && log.contains(r#""group":"meta.k8s.io""#),
        "{log}"
    );
    assert!(
        get(&c, "default", "configmap/x").is_some(),
        "a refused delete deletes nothing"
    );
    // Valid values in the body work; deleteCollection takes them too.
    let fg = write_file(
        c.dir.path(),
        "fg.json",
        r#"{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background"}"#,
    );
    c.ok(&["delete", "--raw", path, "-f", &fg.display().to_string()]);
    assert!(gone(&c, "default", "configmap/x"));
    let ch = chain(&c, "coll", "");
    c.ok(&[
        "delete",
        "--raw",
        "/api/v1/namespaces/coll/configmaps?propagationPolicy=Orphan",
    ]);
    c.eventually(30, "configmaps deleted as a collection", || {
        gone(&c, "coll", "configmap/root")
    });
    let mid = get(&c, "coll", "secret/mid").expect("mid orphaned by the collection delete");
    assert!(owner_uids(&mid).is_empty(), "{mid}");
    let _ = (ch.mid, ch.leaf);

    // ownerReferences are validated as upstream's ValidateOwnerReferences.
    let two = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: two\n  ownerReferences:\n  - {apiVersion: v1, kind: ConfigMap, name: a, uid: u1, controller: true}\n  - {apiVersion: v1, kind: Secret, name: b, uid: u2, controller: true}\n";
    let err = c.fails_stdin(&["create", "-f", "-"], two);
    assert!(
        err.contains("Only one reference can have Controller set to true. Found \"true\" in references for ConfigMap/a and Secret/b"),
        "{err}"
    );
    let no_uid = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: nouid\n  ownerReferences:\n  - {apiVersion: v1, kind: ConfigMap, name: a}\n";
    let err = c.fails_stdin(&["create", "-f", "-"], no_uid);
    assert!(
        err.contains(r#"metadata.ownerReferences.uid: Invalid value: "": uid must not be empty"#),
        "{err}"
    );
}

/// Sends one raw HTTP/1.1 GET with `accept` as the admin and reads the answer until the
/// server closes (watches end by their timeoutSeconds).
fn raw_get(c: &Cluster, path: &str, accept: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    rkind::install_crypto_provider();
    let st = rkind::cluster::state::ClusterState::load(&c.data_dir()).expect("cluster state");
    let pki = rkind::pki::ClusterPki::load_or_create(
        &c.data_dir().join("pki"),
        &format!("{}-control-plane", c.name),
    )
    .expect("pki");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", st.api_port).parse().expect("addr");
    let cfg = pki.client_tls(&pki.admin).expect("admin tls");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut s = tokio_rustls::TlsConnector::from(cfg)
            .connect(
                rustls_pki_types::ServerName::IpAddress(addr.ip().into()),
                tcp,
            )
            .await
            .expect("TLS handshake");
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.expect("write request");
        let mut out = Vec::new();
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(60), s.read_to_end(&mut out)).await;
        let text = String::from_utf8_lossy(&out).into_owned();
        let code = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (code, body)
    })
}

/// What the collector's informers ask for: upstream answers metadata only, in lists and
/// in watch events, as `meta.k8s.io/v1` PartialObjectMetadata.
#[test]
fn metadata_only_lists_and_watches() {
    let c = Cluster::start("gc-meta");
    c.ok(&[
        "create",
        "configmap",
        "big",
        "--from-literal=payload=not-in-metadata",
    ]);
    let (code, body) = raw_get(
        &c,
        "/api/v1/namespaces/default/configmaps",
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
    );
    assert_eq!(code, 200, "{body}");
    let list: Value = serde_json::from_str(body.trim()).expect("list JSON");
    assert_eq!(list["kind"], "PartialObjectMetadataList", "{list}");
    assert_eq!(list["apiVersion"], "meta.k8s.io/v1");
    assert!(list["metadata"]["resourceVersion"].is_string());
    let big = list["items"]
        .as_array()
        .and_then(|i| i.iter().find(|o| o["metadata"]["name"] == "big"))
        .expect("the ConfigMap listed");
    assert_eq!(big["kind"], "PartialObjectMetadata");
    assert!(big.get("data").is_none(), "metadata only: {big}");
    assert!(big["metadata"]["uid"].is_string());

    let (code, body) = raw_get(
        &c,
        "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1",
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
    );
    assert_eq!(code, 200, "{body}");
    assert!(!body.contains("not-in-metadata"), "{body}");
    assert!(
        body.contains(r#""kind":"PartialObjectMetadata""#) && body.contains(r#""name":"big""#),
        "{body}"
    );
}
