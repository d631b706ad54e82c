//! The PodSpec shared by every kind that embeds one (Pod, PodTemplate,
//! ReplicationController, and the workload kinds): upstream's defaults, validation and QoS
//! class.

use serde_json::{Value, json};

use crate::apiserver::defaults::obj_mut;
use crate::apiserver::validation::{
    self, Cause, DNS1123_LABEL_MSG, duplicate, forbidden, invalid, invalid_num, is_dns1123_label,
    not_supported, required,
};

/// Sets a pod's defaults in its spec object `spec`: the PodSpec defaults every template
/// gets too ([`set_spec_defaults`]) and what upstream's admission plugins add to pods
/// only (service account, the not-ready/unreachable tolerations). Priority and
/// preemptionPolicy are left to the Priority admission plugin, which refuses a pod whose
/// own values differ from its class's.
pub fn set_defaults(spec: &mut Value) {
    set_spec_defaults(spec);
    let spec = spec
        .as_object_mut()
        .expect("made an object by set_spec_defaults");
    let defaults = [
        ("enableServiceLinks", json!(true)),
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
}

/// Sets upstream's PodSpec defaults (`SetDefaults_PodSpec` and the container defaults) in
/// `spec`: what a pod template's spec gets, without the pod-only admission defaults.
pub fn set_spec_defaults(spec: &mut Value) {
    if !spec.is_object() {
        *spec = json!({});
    }
    let spec = spec.as_object_mut().expect("just made an object");
    let defaults = [
        ("restartPolicy", json!("Always")),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("securityContext", json!({})),
    ];
    for (k, v) in defaults {
        spec.entry(k).or_insert(v);
    }
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
                default_requests_from_limits(res);
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
}

/// Upstream defaults a container's unset requests to its limits.
fn default_requests_from_limits(resources: &mut Value) {
    let Some(limits) = resources.get("limits").and_then(Value::as_object).cloned() else {
        return;
    };
    let requests = obj_mut(resources, "requests");
    for (k, v) in limits {
        requests.entry(k).or_insert(v);
    }
    if requests.is_empty() {
        resources.as_object_mut().map(|m| m.remove("requests"));
    }
}

/// The QoS class of a pod with `spec` (defaults applied), as upstream's
/// `GetPodQOS`: Guaranteed when every container limits cpu and memory and requests equal
/// limits, BestEffort when nothing requests or limits cpu or memory, else Burstable.
pub fn qos_class(spec: &Value) -> &'static str {
    let mut any = false;
    let mut guaranteed = true;
    for list in ["initContainers", "containers"] {
        for c in spec[list].as_array().into_iter().flatten() {
            let req = &c["resources"]["requests"];
            let lim = &c["resources"]["limits"];
            for r in ["cpu", "memory"] {
                let (rq, lm) = (quantity(&req[r]), quantity(&lim[r]));
                if rq.is_some_and(|q| q != 0.0) || lm.is_some_and(|q| q != 0.0) {
                    any = true;
                }
                match (rq, lm) {
                    (Some(a), Some(b)) if (a - b).abs() <= f64::EPSILON * b.abs().max(1.0) => {}
                    (None, Some(_)) => {}
                    _ => guaranteed = false,
                }
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// The numeric value of a resource quantity (`100m`, `1Gi`, `2`, `1e3`), if it is one.
pub fn quantity(v: &Value) -> Option<f64> {
    let s = match v {
        Value::String(s) => s.trim(),
        Value::Number(n) => return n.as_f64(),
        _ => return None,
    };
    let split = s
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let base: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return None,
    };
    Some(base * mult)
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

/// Sets the defaults of a PodTemplateSpec (a PodTemplate's `template`, a workload's
/// `spec.template`): the PodSpec defaults in its `spec`.
pub fn set_template_defaults(template: &mut Value) {
    if !template.is_object() {
        *template = json!({});
    }
    set_spec_defaults(&mut template["spec"]);
}

/// Validates a PodTemplateSpec found at `root` (`template`, `spec.template`) as upstream's
/// `ValidatePodTemplateSpec`: its labels and annotations (reported at `<root>.labels`),
/// its spec at `<root>.spec`, and no ephemeral containers.
pub fn validate_template(template: &Value, root: &str, out: &mut Vec<Cause>) {
    let mut meta = Vec::new();
    validation::validate_meta(&json!({"metadata": template["metadata"]}), &mut meta);
    out.extend(meta.into_iter().map(|mut c| {
        c.field = c.field.replacen("metadata", root, 1);
        c
    }));
    let spec_root = format!("{root}.spec");
    validate(&template["spec"], &spec_root, out);
    if template["spec"]["ephemeralContainers"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        out.push(forbidden(
            format!("{spec_root}.ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
}

/// The CONTAINERS and IMAGES cells of a template's `spec` (comma-joined, as upstream's
/// `layoutContainerCells`).
pub fn container_cells(spec: &Value) -> (String, String) {
    let containers = spec["containers"].as_array().cloned().unwrap_or_default();
    let field = |k: &str| -> String {
        containers
            .iter()
            .map(|c| c[k].as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    (field("name"), field("image"))
}

/// Validates a PodSpec found at `root` (`spec`, or `spec.template.spec` in templates).
pub fn validate(spec: &Value, root: &str, out: &mut Vec<Cause>) {
    let volumes: Vec<String> = spec["volumes"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|v| v["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    for (i, v) in spec["volumes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let name = v["name"].as_str().unwrap_or("");
        let f = format!("{root}.volumes[{i}].name");
        if name.is_empty() {
            out.push(required(f));
        } else if !is_dns1123_label(name) {
            out.push(invalid(f, name, DNS1123_LABEL_MSG));
        } else if volumes.iter().filter(|n| *n == name).count() > 1
            && volumes.iter().position(|n| n == name) != Some(i)
        {
            out.push(duplicate(f, name));
        }
    }
    let mut names: Vec<String> = Vec::new();
    let containers = spec["containers"].as_array().cloned().unwrap_or_default();
    if containers.is_empty() {
        out.push(required(format!("{root}.containers")));
    }
    for list in ["initContainers", "containers"] {
        for (i, c) in spec[list]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let base = format!("{root}.{list}[{i}]");
            let name = c["name"].as_str().unwrap_or("");
            if name.is_empty() {
                out.push(required(format!("{base}.name")));
            } else if !is_dns1123_label(name) {
                out.push(invalid(format!("{base}.name"), name, DNS1123_LABEL_MSG));
            } else if names.iter().any(|n| n == name) {
                out.push(duplicate(format!("{base}.name"), name));
            } else {
                names.push(name.to_string());
            }
            if c["image"].as_str().unwrap_or("").trim().is_empty() {
                out.push(required(format!("{base}.image")));
            }
            let mut port_names: Vec<String> = Vec::new();
            for (j, p) in c["ports"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let pf = format!("{base}.ports[{j}]");
                let port = p["containerPort"].as_i64().unwrap_or(0);
                if !(1..=65535).contains(&port) {
                    out.push(invalid_num(
                        format!("{pf}.containerPort"),
                        port,
                        "must be between 1 and 65535, inclusive",
                    ));
                }
                if let Some(proto) = p["protocol"].as_str()
                    && !["TCP", "UDP", "SCTP"].contains(&proto)
                {
                    out.push(not_supported(
                        format!("{pf}.protocol"),
                        proto,
                        &["SCTP", "TCP", "UDP"],
                    ));
                }
                if let Some(n) = p["name"].as_str().filter(|n| !n.is_empty()) {
                    if n.len() > 15
                        || !n
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                        || !n.bytes().any(|b| b.is_ascii_lowercase())
                    {
                        out.push(invalid(format!("{pf}.name"), n, "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-), at most 15 characters, and at least one letter"));
                    } else if port_names.iter().any(|x| x == n) {
                        out.push(duplicate(format!("{pf}.name"), n));
                    } else {
                        port_names.push(n.to_string());
                    }
                }
            }
            for (j, e) in c["env"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let n = e["name"].as_str().unwrap_or("");
                if n.is_empty() {
                    out.push(required(format!("{base}.env[{j}].name")));
                } else if n.contains('=') || n.bytes().any(|b| !(0x20..0x7f).contains(&b)) {
                    out.push(invalid(format!("{base}.env[{j}].name"), n, "a valid environment variable name must consist only of printable ASCII characters other than '='"));
                }
            }
            for (j, m) in c["volumeMounts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let n = m["name"].as_str().unwrap_or("");
                if !volumes.iter().any(|v| v == n) {
                    out.push(Cause {
                        reason: "FieldValueNotFound".into(),
                        message: format!(
                            "Not found: {}",
                            serde_json::to_string(n).unwrap_or_default()
                        ),
                        field: format!("{base}.volumeMounts[{j}].name"),
                    });
                }
                if m["mountPath"].as_str().unwrap_or("").is_empty() {
                    out.push(required(format!("{base}.volumeMounts[{j}].mountPath")));
                }
            }
        }
    }
    validate_sysctls(&spec["securityContext"]["sysctls"], root, out);
    validate_ephemeral_containers(spec, root, out);
    if let Some(rp) = spec["restartPolicy"].as_str()
        && !["Always", "OnFailure", "Never"].contains(&rp)
    {
        out.push(not_supported(
            format!("{root}.restartPolicy"),
            rp,
            &["Always", "OnFailure", "Never"],
        ));
    }
    if let Some(dp) = spec["dnsPolicy"].as_str()
        && !["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"].contains(&dp)
    {
        out.push(not_supported(
            format!("{root}.dnsPolicy"),
            dp,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        ));
    }
    if let Some(g) = spec["terminationGracePeriodSeconds"].as_i64()
        && g < 0
    {
        out.push(invalid_num(
            format!("{root}.terminationGracePeriodSeconds"),
            g,
            "must be greater than or equal to 0",
        ));
    }
}

/// Fields an ephemeral container may not set (upstream's allow list, inverted), in the
/// order of the Container struct, as upstream reports them.
const EPHEMERAL_FORBIDDEN: &[&str] = &[
    "ports",
    "resources",
    "resizePolicy",
    "restartPolicy",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
];

/// Whether a JSON value is a Go zero value (absent, null, empty object/list/string).
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.values().all(is_zero),
        Value::Array(a) => a.is_empty(),
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
    }
}

/// Sets the container defaults (pull policy, termination message) on ephemeral
/// containers, as upstream's defaulting does on every write of a pod.
pub fn set_ephemeral_defaults(spec: &mut Value) {
    let Some(cs) = spec
        .get_mut("ephemeralContainers")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
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
    }
}

/// Upstream's `validateEphemeralContainers`: the common container rules, a name unique
/// across every container of the pod, a `targetContainerName` naming a regular or init
/// container, and none of the fields that would make the pod rely on it (ports, probes,
/// resources, lifecycle, subPath mounts).
pub fn validate_ephemeral_containers(spec: &Value, root: &str, out: &mut Vec<Cause>) {
    let Some(ecs) = spec["ephemeralContainers"].as_array() else {
        return;
    };
    let volumes: Vec<&str> = spec["volumes"]
        .as_array()
        .map(|v| v.iter().filter_map(|v| v["name"].as_str()).collect())
        .unwrap_or_default();
    let mut others: Vec<&str> = Vec::new();
    for list in ["containers", "initContainers"] {
        for c in spec[list].as_array().into_iter().flatten() {
            if let Some(n) = c["name"].as_str() {
                others.push(n);
            }
        }
    }
    let mut all = others.clone();
    for (i, c) in ecs.iter().enumerate() {
        let base = format!("{root}.ephemeralContainers[{i}]");
        let name = c["name"].as_str().unwrap_or("");
        if name.is_empty() {
            out.push(required(format!("{base}.name")));
        } else if !is_dns1123_label(name) {
            out.push(invalid(format!("{base}.name"), name, DNS1123_LABEL_MSG));
        }
        if c["image"].as_str().unwrap_or("").trim().is_empty() {
            out.push(required(format!("{base}.image")));
        }
        for (j, m) in c["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let n = m["name"].as_str().unwrap_or("");
            if !volumes.contains(&n) {
                out.push(Cause {
                    reason: "FieldValueNotFound".into(),
                    message: format!(
                        "Not found: {}",
                        serde_json::to_string(n).unwrap_or_default()
                    ),
                    field: format!("{base}.volumeMounts[{j}].name"),
                });
            }
            if m["mountPath"].as_str().unwrap_or("").is_empty() {
                out.push(required(format!("{base}.volumeMounts[{j}].mountPath")));
            }
        }
        if !name.is_empty() {
            if all.contains(&name) {
                out.push(duplicate(format!("{base}.name"), name));
            } else {
                all.push(name);
            }
        }
        if let Some(t) = c["targetContainerName"].as_str().filter(|t| !t.is_empty())
            && !others.contains(&t)
        {
            out.push(Cause {
                reason: "FieldValueNotFound".into(),
                message: format!(
                    "Not found: {}",
                    serde_json::to_string(t).unwrap_or_default()
                ),
                field: format!("{base}.targetContainerName"),
            });
        }
        for f in EPHEMERAL_FORBIDDEN {
            if !is_zero(&c[*f]) {
                out.push(forbidden(
                    format!("{base}.{f}"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
        for (j, m) in c["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            for f in ["subPath", "subPathExpr"] {
                if !is_zero(&m[f]) {
                    out.push(forbidden(
                        format!("{base}.volumeMounts[{j}].{f}"),
                        "cannot be set for an Ephemeral Container",
                    ));
                }
            }
        }
    }
}

/// A sysctl name: dot- or slash-separated segments of `[a-z0-9]([-_a-z0-9]*[a-z0-9])?`,
/// at most 253 characters.
fn is_sysctl_name(name: &str) -> bool {
    name.len() <= 253
        && name.split(['.', '/']).all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
                && seg
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric())
                && seg
                    .bytes()
                    .last()
                    .is_some_and(|b| b.is_ascii_alphanumeric())
        })
}

/// Upstream's sysctl rules: a name is required, well formed and not repeated.
fn validate_sysctls(sysctls: &Value, root: &str, out: &mut Vec<Cause>) {
    let mut seen: Vec<&str> = Vec::new();
    for (i, s) in sysctls.as_array().into_iter().flatten().enumerate() {
        let field = format!("{root}.securityContext.sysctls[{i}].name");
        let name = s["name"].as_str().unwrap_or("");
        if name.is_empty() {
            out.push(required(field));
        } else if !is_sysctl_name(name) {
            out.push(invalid(
                field,
                name,
                r"must have at most 253 characters and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$",
            ));
        } else if seen.contains(&name) {
            out.push(duplicate(field, name));
        } else {
            seen.push(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_qos() {
        let mut spec = json!({"containers":[{"name":"x","image":"busybox"}]});
        set_defaults(&mut spec);
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(qos_class(&spec), "BestEffort");
        let mut g = json!({"containers":[{"name":"x","image":"i:1","resources":{"limits":{"cpu":"100m","memory":"64Mi"}}}]});
        set_defaults(&mut g);
        assert_eq!(g["containers"][0]["resources"]["requests"]["cpu"], "100m");
        assert_eq!(qos_class(&g), "Guaranteed");
        let b = json!({"containers":[{"name":"x","resources":{"requests":{"cpu":"0.1"},"limits":{"cpu":"200m","memory":"1Gi"}}}]});
        assert_eq!(qos_class(&b), "Burstable");
        let eq = json!({"containers":[{"name":"x","resources":{"requests":{"cpu":"0.1","memory":"1Gi"},"limits":{"cpu":"100m","memory":"1024Mi"}}}]});
        assert_eq!(qos_class(&eq), "Guaranteed");
        assert!(image_tag_is_latest("nginx") && image_tag_is_latest("a/b:latest"));
        assert!(!image_tag_is_latest("localhost:5000/nginx:1.2"));
    }

    #[test]
    fn errors_have_upstream_wording() {
        let spec = json!({"containers":[{"name":"a"},{"name":"a","image":"i","volumeMounts":[{"name":"v","mountPath":"/v"}]}],"restartPolicy":"Sometimes"});
        let mut causes = Vec::new();
        validate(&spec, "spec", &mut causes);
        let text = crate::apiserver::validation::invalid_message("Pod", "bad", &causes);
        assert!(
            text.contains("spec.containers[0].image: Required value"),
            "{text}"
        );
        assert!(
            text.contains("spec.containers[1].name: Duplicate value: \"a\""),
            "{text}"
        );
        assert!(
            text.contains("spec.containers[1].volumeMounts[0].name: Not found: \"v\""),
            "{text}"
        );
        assert!(
            text.contains("spec.restartPolicy: Unsupported value: \"Sometimes\""),
            "{text}"
        );
        let mut sc = Vec::new();
        let spec = json!({"containers":[{"name":"a","image":"i"}],"securityContext":{"sysctls":[
            {"name":"kernel.shm_rmid_forced","value":"1"},{"name":"foo-"},{"name":"net.ipv4/conf/lo/x"},{"name":"kernel.shm_rmid_forced"},{"name":""}]}});
        validate(&spec, "spec", &mut sc);
        let text = crate::apiserver::validation::invalid_message("Pod", "s", &sc);
        assert!(text.contains("spec.securityContext.sysctls[1].name: Invalid value: \"foo-\": must have at most 253 characters and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$"), "{text}");
        assert!(text.contains("sysctls[3].name: Duplicate value"), "{text}");
        assert!(text.contains("sysctls[4].name: Required value"), "{text}");
        assert_eq!(sc.len(), 3, "{text}");
        let mut t = Vec::new();
        validate(&json!({}), "spec.template.spec", &mut t);
        assert_eq!(t[0].field, "spec.template.spec.containers");
    }
}
