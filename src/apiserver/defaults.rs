//! Server-side defaulting: the fields a real API server fills in on create (uid,
//! timestamps, generated names, pod/service/namespace defaults), so objects read back
//! look like a real cluster's.

use rand::Rng;
use serde_json::{Map, Value, json};

/// The current time in the API's `YYYY-MM-DDTHH:MM:SSZ` form.
pub fn now_rfc3339() -> String {
    format_time(jiff::Timestamp::now())
}

/// Formats a timestamp as the API does (seconds precision, UTC).
pub fn format_time(t: jiff::Timestamp) -> String {
    jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%SZ", t).unwrap_or_default()
}

/// The alphabet upstream uses for `generateName` suffixes (no vowels, no confusable digits).
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `prefix` plus five random characters, as upstream's SimpleNameGenerator does.
pub fn generate_name(prefix: &str) -> String {
    let mut rng = rand::rng();
    let mut s = String::from(prefix);
    if s.len() > 58 {
        s.truncate(58);
    }
    for _ in 0..5 {
        s.push(NAME_ALPHABET[rng.random_range(0..NAME_ALPHABET.len())] as char);
    }
    s
}

fn obj_mut<'a>(v: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !v.get(key).is_some_and(Value::is_object) {
        v[key] = Value::Object(Map::new());
    }
    v[key].as_object_mut().expect("just made an object")
}

/// Sets the server-owned metadata of a new object: uid, creationTimestamp, generation,
/// and clears what clients may not set on create.
pub fn init_metadata(obj: &mut Value) {
    let meta = obj_mut(obj, "metadata");
    meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
    meta.insert("generation".into(), json!(1));
    for k in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
        "managedFields",
    ] {
        meta.remove(k);
    }
}

/// Applies per-kind defaults on create (what upstream's defaulting functions set).
pub fn apply_create_defaults(kind: &str, group: &str, obj: &mut Value) {
    match (group, kind) {
        ("", "Pod") => default_pod(obj),
        ("", "Namespace") => {
            let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
            obj_mut(&mut obj["metadata"], "labels")
                .insert("kubernetes.io/metadata.name".into(), json!(name));
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["status"] = json!({"phase": "Active"});
        }
        ("", "Secret")
            if obj
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty() =>
        {
            obj["type"] = json!("Opaque");
        }
        ("", "Service") => default_service(obj),
        _ => {}
    }
}

/// Keeps namespace invariants on every write (the metadata.name label).
pub fn apply_update_invariants(kind: &str, group: &str, obj: &mut Value) {
    if group.is_empty() && kind == "Namespace" {
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        obj_mut(&mut obj["metadata"], "labels")
            .insert("kubernetes.io/metadata.name".into(), json!(name));
    }
}

fn default_pod(pod: &mut Value) {
    let spec = obj_mut(pod, "spec");
    let defaults = [
        ("restartPolicy", json!("Always")),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("securityContext", json!({})),
        ("enableServiceLinks", json!(true)),
        ("preemptionPolicy", json!("PreemptLowerPriority")),
        ("priority", json!(0)),
        ("serviceAccountName", json!("default")),
    ];
    for (k, v) in defaults {
        spec.entry(k).or_insert(v);
    }
    if !spec.contains_key("serviceAccount")
        && let Some(sa) = spec.get("serviceAccountName").cloned()
    {
        spec.insert("serviceAccount".into(), sa);
    }
    spec.entry("tolerations").or_insert_with(|| {
        json!([
            {"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":300},
            {"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}
        ])
    });
    let mut all_best_effort = true;
    for list in ["initContainers", "containers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs {
                let Some(c) = c.as_object_mut() else { continue };
                let image = c.get("image").and_then(Value::as_str).unwrap_or("");
                let pull = if image_tag_is_latest(image) {
                    "Always"
                } else {
                    "IfNotPresent"
                };
                c.entry("imagePullPolicy").or_insert(json!(pull));
                c.entry("terminationMessagePath")
                    .or_insert(json!("/dev/termination-log"));
                c.entry("terminationMessagePolicy").or_insert(json!("File"));
                let res = c.entry("resources").or_insert(json!({}));
                if res
                    .get("requests")
                    .is_some_and(|r| r.as_object().is_some_and(|m| !m.is_empty()))
                    || res
                        .get("limits")
                        .is_some_and(|r| r.as_object().is_some_and(|m| !m.is_empty()))
                {
                    all_best_effort = false;
                }
                if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports {
                        if let Some(p) = p.as_object_mut() {
                            p.entry("protocol").or_insert(json!("TCP"));
                        }
                    }
                }
            }
        }
    }
    let qos = if all_best_effort {
        "BestEffort"
    } else {
        "Burstable"
    };
    pod["status"] = json!({"phase": "Pending", "qosClass": qos});
}

/// Whether the image reference has no tag or the `latest` tag (pull policy Always).
fn image_tag_is_latest(image: &str) -> bool {
    if image.contains('@') {
        return false;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) => tag == "latest",
        None => true,
    }
}

fn default_service(svc: &mut Value) {
    let spec = obj_mut(svc, "spec");
    spec.entry("type").or_insert(json!("ClusterIP"));
    spec.entry("sessionAffinity").or_insert(json!("None"));
    let ty = spec["type"].as_str().unwrap_or("ClusterIP").to_string();
    if ty != "ExternalName" {
        if !spec.contains_key("clusterIP") {
            let mut rng = rand::rng();
            let ip = format!(
                "10.96.{}.{}",
                rng.random_range(0..255u8),
                rng.random_range(2..254u8)
            );
            spec.insert("clusterIP".into(), json!(ip));
        }
        let ip = spec["clusterIP"].clone();
        spec.entry("clusterIPs").or_insert(json!([ip]));
        spec.entry("ipFamilies").or_insert(json!(["IPv4"]));
        spec.entry("ipFamilyPolicy").or_insert(json!("SingleStack"));
        spec.entry("internalTrafficPolicy")
            .or_insert(json!("Cluster"));
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports {
            if let Some(p) = p.as_object_mut() {
                p.entry("protocol").or_insert(json!("TCP"));
                if let Some(port) = p.get("port").cloned() {
                    p.entry("targetPort").or_insert(port);
                }
            }
        }
    }
    svc["status"] = json!({"loadBalancer": {}});
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_defaults_match_upstream() {
        let mut pod = json!({"metadata":{"name":"x"},"spec":{"containers":[{"name":"x","image":"busybox"}]},"status":{"phase":"Running"}});
        init_metadata(&mut pod);
        apply_create_defaults("Pod", "", &mut pod);
        assert_eq!(pod["spec"]["restartPolicy"], "Always");
        assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(pod["status"]["phase"], "Pending");
        assert_eq!(pod["status"]["qosClass"], "BestEffort");
        assert_eq!(pod["metadata"]["generation"], 1);
        assert!(pod["metadata"]["uid"].as_str().unwrap().len() == 36);
    }

    #[test]
    fn generated_names_have_five_char_suffix() {
        let n = generate_name("web-");
        assert!(n.starts_with("web-") && n.len() == 9);
        assert!(image_tag_is_latest("nginx") && image_tag_is_latest("a/b:latest"));
        assert!(!image_tag_is_latest("localhost:5000/nginx:1.2"));
    }
}
