//! The controller runtime end to end: the controller-manager's loops (kube-root-ca.crt
//! in every namespace, the default ServiceAccount), the scheduler surviving an expired
//! watch version (relist), and each component authenticating with its own certificate.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{Cluster, rkind_bin, write_file};

const CM: &str = "kube-root-ca.crt";

fn ca_pem(c: &Cluster) -> String {
    std::fs::read_to_string(c.data_dir().join("pki/ca.crt")).expect("the cluster CA")
}

/// `kubectl get -o json` of an object, or None while it does not exist.
fn get_json(c: &Cluster, args: &[&str]) -> Option<serde_json::Value> {
    let mut a = vec!["get"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["-o", "json"]);
    let out = c.kubectl(&a);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).expect("kubectl JSON"))
}

/// Whether `cm` is exactly what the root-CA publisher keeps.
fn is_published(cm: &serde_json::Value, pem: &str) -> bool {
    let data = cm["data"].as_object();
    data.is_some_and(|d| d.len() == 1 && d.get("ca.crt").and_then(|v| v.as_str()) == Some(pem))
        && cm["metadata"]["annotations"]["kubernetes.io/description"]
            .as_str()
            .is_some_and(|d| d.starts_with("Contains a CA bundle"))
}

#[test]
fn root_ca_configmap_is_published_recreated_and_restored() {
    let c = Cluster::start("rootca");
    let pem = ca_pem(&c);
    // In the namespaces that exist from the start, and in a new one.
    for ns in ["default", "kube-system", "kube-public"] {
        c.eventually(30, &format!("{CM} in {ns}"), || {
            get_json(&c, &["-n", ns, "configmap", CM]).is_some_and(|cm| is_published(&cm, &pem))
        });
    }
    c.ok(&["create", "namespace", "team"]);
    let mut first = serde_json::Value::Null;
    c.eventually(30, &format!("{CM} in team"), || {
        match get_json(&c, &["-n", "team", "configmap", CM]) {
            Some(cm) if is_published(&cm, &pem) => {
                first = cm;
                true
            }
            _ => false,
        }
    });

    // Deleted: recreated (a new object).
    c.ok(&["-n", "team", "delete", "configmap", CM]);
    c.eventually(30, &format!("{CM} recreated"), || {
        get_json(&c, &["-n", "team", "configmap", CM]).is_some_and(|cm| {
            is_published(&cm, &pem) && cm["metadata"]["uid"] != first["metadata"]["uid"]
        })
    });

    // Edited (the bundle replaced, a key added): restored.
    c.ok(&[
        "-n",
        "team",
        "patch",
        "configmap",
        CM,
        "--type=merge",
        "-p",
        r#"{"data":{"ca.crt":"tampered","extra":"x"}}"#,
    ]);
    c.eventually(30, &format!("{CM} restored"), || {
        get_json(&c, &["-n", "team", "configmap", CM]).is_some_and(|cm| is_published(&cm, &pem))
    });
}

#[test]
fn default_service_account_of_a_new_namespace_is_recreated_when_deleted() {
    let c = Cluster::start("sa");
    c.ok(&["create", "namespace", "apps"]);
    let mut uid = serde_json::Value::Null;
    c.eventually(30, "default service account in apps", || {
        match get_json(&c, &["-n", "apps", "serviceaccount", "default"]) {
            Some(sa) => {
                uid = sa["metadata"]["uid"].clone();
                true
            }
            None => false,
        }
    });
    c.ok(&["-n", "apps", "delete", "serviceaccount", "default"]);
    c.eventually(30, "default service account recreated", || {
        get_json(&c, &["-n", "apps", "serviceaccount", "default"])
            .is_some_and(|sa| sa["metadata"]["uid"] != uid)
    });
}

/// Many ConfigMaps in one `kubectl apply` (each one event in the watch window).
fn configmaps(n: usize) -> String {
    let items: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("filler-{i}"), "namespace": "default"},
                "data": {"i": i.to_string()},
            })
        })
        .collect();
    serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
}

#[test]
fn scheduler_and_kubelet_relist_after_their_watch_version_expired() {
    // A watch window of 20 events and watches that end every 2 s: after 60 other changes
    // every component's last-seen version is out of the window when it re-watches, so
    // it gets 410 Expired and must list again to see the pod created afterwards.
    let c = Cluster::start_with_env(
        "relist",
        &[
            ("RKIND_WATCH_CACHE_EVENTS", "20"),
            ("RKIND_CONTROLLER_WATCH_TIMEOUT", "2"),
        ],
    );
    let list = write_file(c.dir.path(), "fillers.json", &configmaps(60));
    c.ok(&["apply", "-f", list.to_str().unwrap()]);
    // Set-up, not an assertion: let every watch opened before the burst end (2 s) and
    // come back with its expired version.
    std::thread::sleep(Duration::from_secs(5));
    c.ok(&[
        "run",
        "late",
        "--image=rkind/host",
        "--restart=Never",
        "--",
        "sleep",
        "600",
    ]);
    c.eventually(60, "pod late scheduled", || {
        c.ok(&["get", "pod", "late", "-o", "jsonpath={.spec.nodeName}"]) == "relist-control-plane"
    });
    c.eventually(60, "pod late Running (the kubelet relisted too)", || {
        c.ok(&["get", "pod", "late", "-o", "jsonpath={.status.phase}"]) == "Running"
    });
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector=involvedObject.name=late,reason=Scheduled",
        "-o",
        "jsonpath={.items[*].reportingComponent}",
    ]);
    assert!(events.contains("default-scheduler"), "{events}");
}

/// Replaces the certificate `pki/<file>.crt` (and key) with one of user `cn`, signed by
/// the cluster CA: valid, but a user the authoriser does not know.
fn issue_intruder(pki: &Path, file: &str, cn: &str) {
    let ca_cert = std::fs::read_to_string(pki.join("ca.crt")).expect("ca.crt");
    let ca_key = std::fs::read_to_string(pki.join("ca.key")).expect("ca.key");
    let issuer = rcgen::Issuer::from_ca_cert_pem(
        &ca_cert,
        rcgen::KeyPair::from_pem(&ca_key).expect("CA key"),
    )
    .expect("issuer");
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &issuer).expect("sign");
    std::fs::write(pki.join(format!("{file}.crt")), cert.pem()).expect("write crt");
    std::fs::write(pki.join(format!("{file}.key")), key.serialize_pem()).expect("write key");
}

/// What `rkind up` printed: `Ok` with its output once ready (it is then stopped), `Err`
/// with its output if it exited first.
fn up_once(c: &Cluster) -> Result<String, String> {
    let mut child = Command::new(rkind_bin())
        .args(["up", "--name", &c.name, "--data-dir"])
        .arg(c.data_dir())
        .arg("--kubeconfig")
        .arg(c.kubeconfig())
        .envs(c.envs())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rkind up");
    let (tx, rx) = mpsc::channel();
    for pipe in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    drop(tx);
    let mut out = Vec::new();
    let ready = loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                let ready = line.contains("is ready");
                out.push(line);
                if ready {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    if ready {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let status = child.wait().expect("wait rkind up");
    out.extend(rx.try_iter());
    let text = out.join("\n");
    if ready {
        Ok(text)
    } else {
        assert!(
            !status.success(),
            "rkind up exited 0 without becoming ready:\n{text}"
        );
        Err(text)
    }
}

#[test]
fn each_component_authenticates_with_its_own_certificate() {
    // Observed through the authoriser: one component at a time gets a valid certificate
    // of an unknown user; `rkind up` then fails with the API server's Forbidden message
    // naming that user, which shows whose certificate each component presents.
    let mut c = Cluster::start("ids");
    c.stop();
    let pki = c.data_dir().join("pki");
    for (file, component) in [
        ("controller-manager", "kube-controller-manager"),
        ("scheduler", "kube-scheduler"),
        ("kubelet-client", "kubelet"),
    ] {
        let saved: Vec<(String, Vec<u8>)> = ["crt", "key"]
            .iter()
            .map(|ext| {
                let p = pki.join(format!("{file}.{ext}"));
                (
                    p.display().to_string(),
                    std::fs::read(&p).expect("cert file"),
                )
            })
            .collect();
        let intruder = format!("rkind-intruder-{file}");
        issue_intruder(&pki, file, &intruder);
        let out = match up_once(&c) {
            Ok(out) => panic!("{component} does not use {file}.crt: rkind up became ready:\n{out}"),
            Err(out) => out,
        };
        assert!(
            out.contains(&format!("User \"{intruder}\" cannot"))
                || out.contains(&format!("User \\\"{intruder}\\\" cannot")),
            "{component}: no Forbidden for {intruder}:\n{out}"
        );
        for (path, bytes) in saved {
            std::fs::write(path, bytes).expect("restore cert");
        }
    }
    // Nothing needs the admin identity: the cluster starts without a usable one.
    let admin: Vec<(std::path::PathBuf, Vec<u8>)> = ["crt", "key"]
        .iter()
        .map(|ext| {
            let p = pki.join(format!("admin.{ext}"));
            let bytes = std::fs::read(&p).expect("admin cert file");
            (p, bytes)
        })
        .collect();
    issue_intruder(&pki, "admin", "rkind-intruder-admin");
    if let Err(out) = up_once(&c) {
        panic!("rkind up needs the admin identity:\n{out}");
    }
    for (path, bytes) in admin {
        std::fs::write(path, bytes).expect("restore admin cert");
    }
    // And with every certificate back, the cluster is whole again.
    c.boot();
}
