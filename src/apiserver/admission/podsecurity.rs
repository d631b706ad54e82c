//! The PodSecurity admission plugin (upstream's `k8s.io/pod-security-admission`): a
//! namespace's `pod-security.kubernetes.io/enforce`, `warn` and `audit` labels name a Pod
//! Security Standards level (`privileged`, `baseline`, `restricted`). A new pod that
//! breaks the enforce level is refused (`violates PodSecurity "restricted:latest": …`);
//! one that breaks the warn level, and any workload whose pod template would, gets a
//! warning (`would violate PodSecurity …`). Audit annotations need an audit log, which
//! rkind does not write. Only the `latest` version of the standards is known.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Admit, Operation, Plugin, Request};
use crate::apiserver::ApiServer;

const LABEL_PREFIX: &str = "pod-security.kubernetes.io/";

/// A Pod Security Standards level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Anything goes.
    Privileged,
    /// Known privilege escalations are refused.
    Baseline,
    /// Hardened, current best practice.
    Restricted,
}

impl Level {
    fn parse(s: &str) -> Option<Level> {
        match s {
            "privileged" => Some(Level::Privileged),
            "baseline" => Some(Level::Baseline),
            "restricted" => Some(Level::Restricted),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// The capabilities baseline lets a container add.
const BASELINE_CAPS: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];
/// The sysctls baseline allows.
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];
/// The volume types restricted allows.
const RESTRICTED_VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// `container "a"` / `containers "a", "b"`.
fn containers(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    match names.len() {
        1 => format!("container {}", quoted[0]),
        _ => format!("containers {}", quoted.join(", ")),
    }
}

/// Every init, regular and ephemeral container of a pod spec.
fn all_containers(spec: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .flat_map(move |l| spec[l].as_array().into_iter().flatten())
}

fn name_of(c: &Value) -> String {
    c["name"].as_str().unwrap_or("").to_string()
}

/// The checks of `level` that `spec` (a pod spec, with the pod's `metadata`) fails, in
/// upstream's wording and order.
pub fn violations(level: Level, metadata: &Value, spec: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if level == Level::Privileged {
        return out;
    }
    let psc = &spec["securityContext"];
    // Baseline.
    let hosts: Vec<String> = ["hostNetwork", "hostPID", "hostIPC"]
        .iter()
        .filter(|f| spec[**f] == true)
        .map(|f| format!("{f}=true"))
        .collect();
    if !hosts.is_empty() {
        out.push(format!("host namespaces ({})", hosts.join(", ")));
    }
    let privileged: Vec<String> = all_containers(spec)
        .filter(|c| c["securityContext"]["privileged"] == true)
        .map(name_of)
        .collect();
    if !privileged.is_empty() {
        out.push(format!(
            "privileged ({} must not set securityContext.privileged=true)",
            containers(&privileged)
        ));
    }
    let mut extra_caps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in all_containers(spec) {
        for cap in c["securityContext"]["capabilities"]["add"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !BASELINE_CAPS.contains(&cap) {
                extra_caps
                    .entry(name_of(c))
                    .or_default()
                    .push(cap.to_string());
            }
        }
    }
    if !extra_caps.is_empty() {
        let parts: Vec<String> = extra_caps
            .iter()
            .map(|(c, caps)| {
                let caps: Vec<String> = caps.iter().map(|c| format!("{c:?}")).collect();
                format!(
                    "{} must not include {} in securityContext.capabilities.add",
                    containers(std::slice::from_ref(c)),
                    caps.join(", ")
                )
            })
            .collect();
        out.push(format!("non-default capabilities ({})", parts.join("; ")));
    }
    let volumes: Vec<&Value> = spec["volumes"].as_array().into_iter().flatten().collect();
    let host_paths: Vec<String> = volumes
        .iter()
        .filter(|v| v["hostPath"].is_object())
        .map(|v| format!("{:?}", v["name"].as_str().unwrap_or("")))
        .collect();
    if !host_paths.is_empty() {
        let noun = if host_paths.len() == 1 {
            "volume"
        } else {
            "volumes"
        };
        out.push(format!(
            "hostPath volumes ({noun} {})",
            host_paths.join(", ")
        ));
    }
    let mut host_ports: Vec<String> = Vec::new();
    for c in all_containers(spec) {
        let ports: Vec<String> = c["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["hostPort"].as_i64().filter(|p| *p != 0))
            .map(|p| p.to_string())
            .collect();
        if !ports.is_empty() {
            let noun = if ports.len() == 1 {
                "hostPort"
            } else {
                "hostPorts"
            };
            host_ports.push(format!("{:?} uses {noun} {}", name_of(c), ports.join(", ")));
        }
    }
    if !host_ports.is_empty() {
        out.push(format!("hostPort (container {})", host_ports.join(", ")));
    }
    let apparmor_unconfined = psc["appArmorProfile"]["type"] == "Unconfined"
        || all_containers(spec)
            .any(|c| c["securityContext"]["appArmorProfile"]["type"] == "Unconfined")
        || metadata["annotations"].as_object().is_some_and(|a| {
            a.iter().any(|(k, v)| {
                k.starts_with("container.apparmor.security.beta.kubernetes.io/")
                    && v == "unconfined"
            })
        });
    if apparmor_unconfined {
        out.push("appArmorProfile (pod or container must not set the AppArmor profile type to \"Unconfined\")".into());
    }
    let selinux_bad = |sc: &Value| {
        let o = &sc["seLinuxOptions"];
        let ty = o["type"].as_str().unwrap_or("");
        !(ty.is_empty()
            || [
                "container_t",
                "container_init_t",
                "container_kvm_t",
                "container_engine_t",
            ]
            .contains(&ty))
            || o["user"].as_str().is_some_and(|s| !s.is_empty())
            || o["role"].as_str().is_some_and(|s| !s.is_empty())
    };
    if selinux_bad(psc) || all_containers(spec).any(|c| selinux_bad(&c["securityContext"])) {
        out.push("seLinuxOptions (pod or containers must not set forbidden securityContext.seLinuxOptions)".into());
    }
    let unmasked: Vec<String> = all_containers(spec)
        .filter(|c| {
            c["securityContext"]["procMount"]
                .as_str()
                .is_some_and(|p| p != "Default")
        })
        .map(name_of)
        .collect();
    if !unmasked.is_empty() {
        out.push(format!(
            "procMount ({} must not set securityContext.procMount to \"Unmasked\")",
            containers(&unmasked)
        ));
    }
    let unconfined = psc["seccompProfile"]["type"] == "Unconfined"
        || all_containers(spec)
            .any(|c| c["securityContext"]["seccompProfile"]["type"] == "Unconfined");
    if unconfined {
        out.push("seccompProfile (pod or containers must not set securityContext.seccompProfile.type to \"Unconfined\")".into());
    }
    let sysctls: Vec<String> = psc["sysctls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .filter(|n| !SAFE_SYSCTLS.contains(n))
        .map(|n| format!("{n:?}"))
        .collect();
    if !sysctls.is_empty() {
        out.push(format!("forbidden sysctls ({})", sysctls.join(", ")));
    }
    if level == Level::Baseline {
        return out;
    }
    // Restricted.
    let restricted_vols: Vec<String> = volumes
        .iter()
        .filter_map(|v| {
            let ty = v.as_object()?.keys().find(|k| *k != "name")?;
            (!RESTRICTED_VOLUMES.contains(&ty.as_str())).then(|| {
                format!(
                    "volume {:?} uses restricted volume type {ty:?}",
                    v["name"].as_str().unwrap_or("")
                )
            })
        })
        .collect();
    if !restricted_vols.is_empty() {
        out.push(format!(
            "restricted volume types ({})",
            restricted_vols.join(", ")
        ));
    }
    let escalating: Vec<String> = all_containers(spec)
        .filter(|c| c["securityContext"]["allowPrivilegeEscalation"] != false)
        .map(name_of)
        .collect();
    if !escalating.is_empty() {
        out.push(format!(
            "allowPrivilegeEscalation != false ({} must set securityContext.allowPrivilegeEscalation=false)",
            containers(&escalating)
        ));
    }
    let mut caps_drop = Vec::new();
    let mut caps_add: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in all_containers(spec) {
        let caps = &c["securityContext"]["capabilities"];
        let drops_all = caps["drop"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x == "ALL"));
        if !drops_all {
            caps_drop.push(name_of(c));
        }
        for cap in caps["add"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if cap != "NET_BIND_SERVICE" {
                caps_add
                    .entry(name_of(c))
                    .or_default()
                    .push(cap.to_string());
            }
        }
    }
    if !caps_drop.is_empty() || !caps_add.is_empty() {
        let mut parts = Vec::new();
        if !caps_drop.is_empty() {
            parts.push(format!(
                "{} must set securityContext.capabilities.drop=[\"ALL\"]",
                containers(&caps_drop)
            ));
        }
        for (c, caps) in &caps_add {
            let caps: Vec<String> = caps.iter().map(|c| format!("{c:?}")).collect();
            parts.push(format!(
                "{} must not include {} in securityContext.capabilities.add",
                containers(std::slice::from_ref(c)),
                caps.join(", ")
            ));
        }
        out.push(format!("unrestricted capabilities ({})", parts.join("; ")));
    }
    let pod_non_root = psc["runAsNonRoot"] == true;
    let root_ok: Vec<String> = all_containers(spec)
        .filter(|c| {
            let own = &c["securityContext"]["runAsNonRoot"];
            !(own == true || (own.is_null() && pod_non_root))
        })
        .map(name_of)
        .collect();
    if psc["runAsNonRoot"] == false || !root_ok.is_empty() {
        let who = if root_ok.is_empty() || psc["runAsNonRoot"] == false {
            "pod".to_string()
        } else if pod_non_root {
            containers(&root_ok)
        } else {
            format!("pod or {}", containers(&root_ok))
        };
        out.push(format!(
            "runAsNonRoot != true ({who} must set securityContext.runAsNonRoot=true)"
        ));
    }
    let mut root_users: Vec<String> = Vec::new();
    if psc["runAsUser"] == 0 {
        root_users.push("pod".into());
    }
    let root_containers: Vec<String> = all_containers(spec)
        .filter(|c| c["securityContext"]["runAsUser"] == 0)
        .map(name_of)
        .collect();
    if !root_containers.is_empty() {
        root_users.push(containers(&root_containers));
    }
    if !root_users.is_empty() {
        out.push(format!(
            "runAsUser=0 ({} must not set runAsUser=0)",
            root_users.join(" and ")
        ));
    }
    let profile_ok = |sc: &Value| {
        matches!(
            sc["seccompProfile"]["type"].as_str(),
            Some("RuntimeDefault" | "Localhost")
        )
    };
    let pod_profile = profile_ok(psc);
    let unset: Vec<String> = all_containers(spec)
        .filter(|c| {
            let own = &c["securityContext"]["seccompProfile"]["type"];
            !(profile_ok(&c["securityContext"]) || (own.is_null() && pod_profile))
        })
        .map(name_of)
        .collect();
    if !unset.is_empty() {
        let who = if pod_profile {
            containers(&unset)
        } else {
            format!("pod or {}", containers(&unset))
        };
        out.push(format!(
            "seccompProfile ({who} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
        ));
    }
    out
}

/// The namespace's level for `mode` (`enforce`, `warn`), if labelled.
fn level(ns: &Value, mode: &str) -> Option<Result<Level, String>> {
    let v = ns["metadata"]["labels"][format!("{LABEL_PREFIX}{mode}")].as_str()?;
    Some(Level::parse(v).ok_or_else(|| v.to_string()))
}

/// Where a kind keeps its pod template, for the workload kinds PodSecurity warns about.
fn template<'a>(group: &str, plural: &str, obj: &'a Value) -> Option<(&'a Value, &'a Value)> {
    let t = match (group, plural) {
        ("", "podtemplates") => &obj["template"],
        ("", "replicationcontrollers")
        | ("apps", "deployments" | "replicasets" | "statefulsets" | "daemonsets")
        | ("batch", "jobs") => &obj["spec"]["template"],
        ("batch", "cronjobs") => &obj["spec"]["jobTemplate"]["spec"]["template"],
        _ => return None,
    };
    Some((&t["metadata"], &t["spec"]))
}

/// The `PodSecurity` plugin.
#[derive(Debug, Default)]
pub struct PodSecurity;

impl Plugin for PodSecurity {
    fn name(&self) -> &'static str {
        "PodSecurity"
    }

    fn validate<'a>(
        &'a self,
        srv: &'a ApiServer,
        req: &'a Request<'a>,
        obj: &'a Value,
    ) -> Admit<'a> {
        Box::pin(async move {
            let def = req.kind.def();
            let Some(ns_name) = req.namespace else {
                return Ok(());
            };
            if req.operation != Operation::Create || req.subresource.is_some() {
                return Ok(());
            }
            let is_pod = def.group.is_empty() && def.plural == "pods";
            let (metadata, spec) = if is_pod {
                (&obj["metadata"], &obj["spec"])
            } else {
                match template(&def.group, &def.plural, obj) {
                    Some(t) => t,
                    None => return Ok(()),
                }
            };
            let snap = srv.registry.snapshot();
            let Some(nskind) = snap.find("", "v1", "namespaces") else {
                return Ok(());
            };
            let Ok(Some(ns)) = srv.store.get(&nskind.def().key(None, ns_name)) else {
                return Ok(());
            };
            if is_pod && let Some(enforce) = level(&ns, "enforce") {
                let enforce = enforce.map_err(|v| {
                    req.forbidden(format!(
                        "invalid PodSecurity level {v:?} in label {LABEL_PREFIX}enforce"
                    ))
                })?;
                let v = violations(enforce, metadata, spec);
                if !v.is_empty() {
                    return Err(req.forbidden(format!(
                        "violates PodSecurity \"{}:latest\": {}",
                        enforce.name(),
                        v.join(", ")
                    )));
                }
            }
            // Workloads are warned about for the enforce level too (their pods would be
            // refused), pods for the warn level.
            let mut warn_levels: Vec<Level> = Vec::new();
            if let Some(Ok(w)) = level(&ns, "warn") {
                warn_levels.push(w);
            }
            if !is_pod && let Some(Ok(e)) = level(&ns, "enforce") {
                warn_levels.push(e);
            }
            if let Some(l) = warn_levels.into_iter().max() {
                let v = violations(l, metadata, spec);
                if !v.is_empty() {
                    req.warn(format!(
                        "would violate PodSecurity \"{}:latest\": {}",
                        l.name(),
                        v.join(", ")
                    ));
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn restricted_names_each_missing_setting_as_upstream() {
        let spec = json!({"containers": [{"name": "c"}]});
        let v = violations(Level::Restricted, &json!({}), &spec);
        assert_eq!(
            v.join(", "),
            "allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false), \
             unrestricted capabilities (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), \
             runAsNonRoot != true (pod or container \"c\" must set securityContext.runAsNonRoot=true), \
             seccompProfile (pod or container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
        );
        assert!(violations(Level::Baseline, &json!({}), &spec).is_empty());
        let good = json!({"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "c", "securityContext": {"allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}]});
        assert!(violations(Level::Restricted, &json!({}), &good).is_empty());
    }

    #[test]
    fn baseline_refuses_host_access_and_privilege() {
        let spec = json!({"hostNetwork": true, "hostPID": true,
        "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
        "containers": [
            {"name": "a", "securityContext": {"privileged": true, "capabilities": {"add": ["NET_ADMIN", "CHOWN"]}},
             "ports": [{"containerPort": 80, "hostPort": 8080}]},
            {"name": "b", "securityContext": {"privileged": true}},
        ]});
        let v = violations(Level::Baseline, &json!({}), &spec);
        assert_eq!(v[0], "host namespaces (hostNetwork=true, hostPID=true)");
        assert_eq!(
            v[1],
            "privileged (containers \"a\", \"b\" must not set securityContext.privileged=true)"
        );
        assert_eq!(
            v[2],
            "non-default capabilities (container \"a\" must not include \"NET_ADMIN\" in securityContext.capabilities.add)"
        );
        assert_eq!(v[3], "hostPath volumes (volume \"root\")");
        assert_eq!(v[4], "hostPort (container \"a\" uses hostPort 8080)");
        assert!(violations(Level::Privileged, &json!({}), &spec).is_empty());
    }
}
