//! The PodSecurity admission plugin (upstream's `k8s.io/pod-security-admission`): a
//! namespace's `pod-security.kubernetes.io/enforce`, `warn` and `audit` labels (and their
//! `-version` labels) name a Pod Security Standards level (`privileged`, `baseline`,
//! `restricted`). A pod that breaks the enforce level is refused on create, and on an
//! update that changes an image or adds an ephemeral container (`violates PodSecurity
//! "restricted:latest": …`); one that breaks the warn level, and any workload whose pod
//! template would, gets a warning (`would violate PodSecurity …`). Namespaces with bad
//! labels are refused; tightening a namespace's enforce level warns about the existing
//! pods it would refuse. Audit annotations need an audit log, which rkind does not write
//! (nor does a kind cluster without an audit policy); no exemptions are configured, as
//! upstream's default. Every version label is checked with the latest checks.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Admit, Operation, Plugin, Request};
use crate::apiserver::ApiServer;
use crate::apiserver::status::ApiError;
use crate::apiserver::validation::{Cause, invalid};

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

/// A version of the standards a label pins (`latest`, `v1.29`). Every version is
/// checked with the latest checks (the standards have only been tightened where the
/// older versions allowed what no kubelet of today runs); the version is what messages
/// name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    Latest,
    V1(u32),
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Version::Latest => f.write_str("latest"),
            Version::V1(minor) => write!(f, "v1.{minor}"),
        }
    }
}

impl Version {
    fn parse(s: &str) -> Option<Version> {
        if s == "latest" {
            return Some(Version::Latest);
        }
        let minor = s.strip_prefix("v1.")?;
        let canonical = !minor.is_empty() && (minor == "0" || !minor.starts_with('0'));
        if !canonical || !minor.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        minor.parse().ok().map(Version::V1)
    }
}

/// One mode's level at a version, printed as upstream does (`restricted:latest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LevelVersion {
    level: Level,
    version: Version,
}

impl std::fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.level.name(), self.version)
    }
}

/// A namespace's policy: what is enforced, audited and warned about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Policy {
    enforce: LevelVersion,
    audit: LevelVersion,
    warn: LevelVersion,
}

/// The policy a namespace's `labels` give (upstream's `PolicyToEvaluate` with the default
/// configuration: everything privileged, at latest) and the labels' problems. A bad
/// enforce level fails closed (restricted), bad audit and warn levels open; an unlabelled
/// warn level follows a stricter enforce level.
fn policy(labels: &Value) -> (Policy, Vec<Cause>) {
    let any = LevelVersion {
        level: Level::Privileged,
        version: Version::Latest,
    };
    let mut p = Policy {
        enforce: any,
        audit: any,
        warn: any,
    };
    let mut errs = Vec::new();
    let label = |mode: &str, what: &str| {
        let key = if what.is_empty() {
            format!("{LABEL_PREFIX}{mode}")
        } else {
            format!("{LABEL_PREFIX}{mode}-{what}")
        };
        labels[&key].as_str().map(|v| (key, v.to_string()))
    };
    let mut has_enforce = false;
    for (mode, fallback) in [
        ("enforce", Level::Restricted),
        ("audit", Level::Privileged),
        ("warn", Level::Privileged),
    ] {
        let slot = match mode {
            "enforce" => &mut p.enforce,
            "audit" => &mut p.audit,
            _ => &mut p.warn,
        };
        if let Some((key, v)) = label(mode, "") {
            slot.level = Level::parse(&v).unwrap_or_else(|| {
                errs.push(invalid(
                    format!("metadata.labels[{key}]"),
                    &v,
                    "must be one of privileged, baseline, restricted",
                ));
                fallback
            });
            has_enforce |= mode == "enforce" && Level::parse(&v).is_some();
        }
        if let Some((key, v)) = label(mode, "version") {
            slot.version = Version::parse(&v).unwrap_or_else(|| {
                errs.push(invalid(
                    format!("metadata.labels[{key}]"),
                    &v,
                    "must be \"latest\" or \"v1.x\"",
                ));
                Version::Latest
            });
        }
    }
    if label("warn", "").is_none() && has_enforce && p.enforce.level > p.warn.level {
        p.warn.level = p.enforce.level;
        if label("warn", "version").is_none() {
            p.warn.version = p.enforce.version;
        }
    }
    (p, errs)
}

/// The reason part of a violation (`host namespaces` of `host namespaces (hostPID=true)`),
/// as upstream's `ForbiddenReason` lists them.
fn reason(violation: &str) -> &str {
    violation.split(" (").next().unwrap_or(violation)
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

/// Pod subresources whose writes cannot change what the standards check.
const IGNORED_POD_SUBRESOURCES: &[&str] = &[
    "exec",
    "attach",
    "binding",
    "eviction",
    "log",
    "portforward",
    "proxy",
    "status",
];

/// Whether a pod update can change what the standards check: upstream evaluates one
/// that changes an image, the number of containers, or adds an ephemeral container
/// (nothing else checked is mutable).
fn significant_pod_update(old: &Value, new: &Value) -> bool {
    let (o, n) = (&old["spec"], &new["spec"]);
    let list = |spec: &Value, l: &str| spec[l].as_array().cloned().unwrap_or_default();
    for l in ["containers", "initContainers"] {
        let (a, b) = (list(o, l), list(n, l));
        if a.len() != b.len() || a.iter().zip(&b).any(|(x, y)| x["image"] != y["image"]) {
            return true;
        }
    }
    let before = list(o, "ephemeralContainers");
    list(n, "ephemeralContainers").iter().any(|c| {
        before
            .iter()
            .find(|b| b["name"] == c["name"])
            .is_none_or(|b| b["image"] != c["image"])
    })
}

/// Upstream evaluates at most this many existing pods when an enforce level tightens.
const MAX_PODS_TO_CHECK: usize = 3000;

/// The warnings for a namespace whose enforce level tightens to `enforce`: the existing
/// pods that would now be refused, grouped by their reasons (one pod per controller
/// first, as upstream orders them).
fn existing_pod_warnings(srv: &ApiServer, ns: &str, enforce: LevelVersion) -> Vec<String> {
    let snap = srv.registry.snapshot();
    let Some(pods) = snap.find("", "v1", "pods") else {
        return Vec::new();
    };
    let (all, _) = srv.store.list_shared(&pods.def().prefix(Some(ns)));
    let mut first = Vec::new();
    let mut again = Vec::new();
    let mut controllers = std::collections::HashSet::new();
    for pod in &all {
        let controller = pod["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["controller"] == true)
            .and_then(|r| r["uid"].as_str());
        match controller {
            Some(uid) if !controllers.insert(uid.to_string()) => again.push(pod),
            _ => first.push(pod),
        }
    }
    first.extend(again);
    let total = first.len();
    first.truncate(MAX_PODS_TO_CHECK);
    // Reasons → (lexically first pod, count), in the order first seen.
    let mut groups: Vec<(String, String, usize)> = Vec::new();
    for pod in &first {
        let v = violations(enforce.level, &pod["metadata"], &pod["spec"]);
        if v.is_empty() {
            continue;
        }
        let reasons: Vec<&str> = v.iter().map(|v| reason(v)).collect();
        let reasons = reasons.join(", ");
        let name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
        match groups.iter_mut().find(|g| g.0 == reasons) {
            Some(g) => {
                g.2 += 1;
                if name < g.1 {
                    g.1 = name;
                }
            }
            None => groups.push((reasons, name, 1)),
        }
    }
    let mut out = Vec::new();
    if first.len() < total {
        out.push(format!(
            "new PodSecurity enforce level only checked against the first {} of {total} existing pods",
            first.len()
        ));
    }
    if !groups.is_empty() {
        out.push(format!(
            "existing pods in namespace {ns:?} violate the new PodSecurity enforce level \"{enforce}\""
        ));
    }
    let mut pods: Vec<String> = groups
        .into_iter()
        .map(|(reasons, name, n)| match n {
            1 => format!("{name}: {reasons}"),
            2 => format!("{name} (and 1 other pod): {reasons}"),
            _ => format!("{name} (and {} other pods): {reasons}", n - 1),
        })
        .collect();
    pods.sort();
    out.extend(pods);
    out
}

/// The `PodSecurity` plugin.
#[derive(Debug, Default)]
pub struct PodSecurity;

impl PodSecurity {
    /// Upstream's `ValidateNamespace`: labels must be valid (on update, only if their
    /// problems changed), and a tighter enforce level is tried on the existing pods.
    fn namespace(srv: &ApiServer, req: &Request<'_>, obj: &Value) -> Result<(), ApiError> {
        let (new, errs) = policy(&obj["metadata"]["labels"]);
        let refuse = |errs: &[Cause]| ApiError::invalid(req.kind.def(), req.name, errs);
        match (req.operation, req.old) {
            (Operation::Create, _) if !errs.is_empty() => Err(refuse(&errs)),
            (Operation::Update, Some(old)) => {
                let (before, old_errs) = policy(&old["metadata"]["labels"]);
                if !errs.is_empty() && (old_errs.is_empty() || old_errs != errs) {
                    return Err(refuse(&errs));
                }
                let relaxed = new.enforce.version == before.enforce.version
                    && new.enforce.level <= before.enforce.level;
                if new.enforce == before.enforce
                    || new.enforce.level == Level::Privileged
                    || relaxed
                {
                    return Ok(());
                }
                for w in existing_pod_warnings(srv, req.name, new.enforce) {
                    req.warn(w);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

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
            if def.group.is_empty() && def.plural == "namespaces" {
                return match req.subresource {
                    None => Self::namespace(srv, req, obj),
                    Some(_) => Ok(()),
                };
            }
            let Some(ns_name) = req.namespace else {
                return Ok(());
            };
            if !matches!(req.operation, Operation::Create | Operation::Update) {
                return Ok(());
            }
            let is_pod = def.group.is_empty() && def.plural == "pods";
            let (metadata, spec) = if is_pod {
                if req
                    .subresource
                    .is_some_and(|s| IGNORED_POD_SUBRESOURCES.contains(&s))
                {
                    return Ok(());
                }
                if let Some(old) = req.old
                    && !significant_pod_update(old, obj)
                {
                    return Ok(());
                }
                (&obj["metadata"], &obj["spec"])
            } else {
                let Some(t) = template(&def.group, &def.plural, obj) else {
                    return Ok(());
                };
                let unchanged = req
                    .old
                    .is_some_and(|old| template(&def.group, &def.plural, old) == Some(t));
                if req.subresource.is_some() || unchanged {
                    // A scale or status write, or an update that leaves the template.
                    return Ok(());
                }
                t
            };
            let snap = srv.registry.snapshot();
            let Some(nskind) = snap.find("", "v1", "namespaces") else {
                return Ok(());
            };
            let Some(ns) = srv.store.get_shared(&nskind.def().key(None, ns_name)) else {
                return Ok(());
            };
            let (p, _) = policy(&ns["metadata"]["labels"]);
            if is_pod {
                let v = violations(p.enforce.level, metadata, spec);
                if !v.is_empty() {
                    return Err(req.forbidden(format!(
                        "violates PodSecurity \"{}\": {}",
                        p.enforce,
                        v.join(", ")
                    )));
                }
            }
            // The audit level's findings are audit annotations, which go to the audit
            // log; rkind keeps none (as a kind cluster without an audit policy).
            let v = violations(p.warn.level, metadata, spec);
            if !v.is_empty() {
                req.warn(format!(
                    "would violate PodSecurity \"{}\": {}",
                    p.warn,
                    v.join(", ")
                ));
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
    fn labels_give_upstreams_policy() {
        for (v, ok) in [
            ("latest", true),
            ("v1.0", true),
            ("v1.30", true),
            ("v1.030", false),
            ("1.30", false),
            ("v2.1", false),
            ("v1.", false),
        ] {
            assert_eq!(Version::parse(v).is_some(), ok, "{v}");
        }
        let (p, errs) = policy(&json!({"pod-security.kubernetes.io/enforce": "baseline",
            "pod-security.kubernetes.io/enforce-version": "v1.29"}));
        assert!(errs.is_empty());
        assert_eq!(p.enforce.to_string(), "baseline:v1.29");
        assert_eq!(p.warn.to_string(), "baseline:v1.29", "warn follows enforce");
        let (p, errs) = policy(&json!({"pod-security.kubernetes.io/enforce": "nope",
            "pod-security.kubernetes.io/warn": "nope"}));
        assert_eq!(errs.len(), 2);
        assert_eq!(p.enforce.level, Level::Restricted, "enforce fails closed");
        assert_eq!(p.warn.level, Level::Privileged, "warn fails open");
    }

    #[test]
    fn only_image_and_container_changes_are_significant() {
        let pod = json!({"spec": {"containers": [{"name": "c", "image": "a"}]}});
        let mut relabelled = pod.clone();
        relabelled["metadata"] = json!({"labels": {"x": "y"}});
        assert!(!significant_pod_update(&pod, &relabelled));
        let mut image = pod.clone();
        image["spec"]["containers"][0]["image"] = json!("b");
        assert!(significant_pod_update(&pod, &image));
        let mut debug = pod.clone();
        debug["spec"]["ephemeralContainers"] = json!([{"name": "d", "image": "a"}]);
        assert!(significant_pod_update(&pod, &debug));
    }

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
