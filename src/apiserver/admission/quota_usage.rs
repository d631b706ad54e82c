//! What objects count against a ResourceQuota: upstream's quota evaluators
//! (`pkg/quota/v1/evaluator/core` and the generic object counter), as pure functions of
//! the objects: the ResourceQuota admission plugin charges with them, and the quota
//! controller (`crate::controller::resourcequota`) recalculates `status.used` with them
//! from what it lists over HTTPS.

use serde_json::Value;

use super::quantity::{self, Format, Quantity, ResourceList};
use crate::apiserver::kinds::ResourceDef;
use crate::apiserver::kinds::core::podspec;

/// The compute resources a pod is charged for (besides hugepages and extended ones).
const POD_RESOURCES: &[&str] = &[
    "count/pods",
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
];

/// Quota resources a pod must set on every container when a quota tracks them (upstream
/// calls this coupling a mistake it keeps for compatibility).
const MUST_SET: &[&str] = &[
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
];

const SERVICE_RESOURCES: &[&str] = &[
    "count/services",
    "services",
    "services.nodeports",
    "services.loadbalancers",
];

/// The storage-class suffix of per-class claim quotas
/// (`gold.storageclass.storage.k8s.io/requests.storage`).
const STORAGE_CLASS_SUFFIX: &str = ".storageclass.storage.k8s.io/";

/// Resources quota never counts (upstream's default ignored resources).
pub fn ignored(def: &ResourceDef) -> bool {
    ignored_resource(&def.group, &def.plural)
}

/// [`ignored`] by group and resource name.
pub fn ignored_resource(group: &str, plural: &str) -> bool {
    group.is_empty() && plural == "events"
}

/// How usage of one kind is measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evaluator {
    /// Pods: counts and compute resources, with scopes.
    Pods,
    /// Services: counts, node ports and load balancers.
    Services,
    /// PersistentVolumeClaims: counts and requested storage, also per storage class.
    Claims,
    /// Any other kind: `count/<resource>` (and the legacy name for a few core kinds).
    Count(Vec<String>),
}

/// The evaluator of a kind.
pub fn evaluator_for(def: &ResourceDef) -> Evaluator {
    evaluator_for_resource(&def.group, &def.plural)
}

/// The evaluator of the resource `plural` of `group` (what controllers know from
/// discovery).
pub fn evaluator_for_resource(group: &str, plural: &str) -> Evaluator {
    if group.is_empty() {
        match plural {
            "pods" => return Evaluator::Pods,
            "services" => return Evaluator::Services,
            "persistentvolumeclaims" => return Evaluator::Claims,
            _ => {}
        }
    }
    let qualified = if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    };
    let mut names = vec![format!("count/{qualified}")];
    if group.is_empty()
        && matches!(
            plural,
            "configmaps" | "resourcequotas" | "replicationcontrollers" | "secrets"
        )
    {
        names.push(plural.to_string());
    }
    Evaluator::Count(names)
}

/// Whether `name` is an extended resource quota name (`requests.example.com/dongle`).
fn is_extended_quota_name(name: &str) -> bool {
    name.starts_with("requests.") && name.contains('/') && !name.contains("kubernetes.io/")
}

/// Whether `name` is an extended resource (`example.com/dongle`) of a container.
fn is_extended_resource(name: &str) -> bool {
    name.contains('/') && !name.contains("kubernetes.io/") && !name.starts_with("requests.")
}

/// The storage class a claim asks for ("" for none).
fn claim_class(claim: &Value) -> String {
    claim["metadata"]["annotations"]["volume.beta.kubernetes.io/storage-class"]
        .as_str()
        .or_else(|| claim["spec"]["storageClassName"].as_str())
        .unwrap_or("")
        .to_string()
}

fn one() -> Quantity {
    Quantity::from_int(1, Format::DecimalSi)
}

/// Whether a pod still uses compute quota: not finished, and not stuck terminating past
/// its grace period (upstream's `QuotaV1Pod`).
pub fn pod_counts(pod: &Value, now: jiff::Timestamp) -> bool {
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        return false;
    }
    if let (Some(deleted), Some(grace)) = (
        pod["metadata"]["deletionTimestamp"]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok()),
        pod["metadata"]["deletionGracePeriodSeconds"].as_i64(),
    ) && now > deleted + jiff::SignedDuration::from_secs(grace)
    {
        return false;
    }
    true
}

/// Upstream's `podComputeUsageHelper`: the quota names a set of requests and limits
/// fill.
fn compute_usage(requests: &ResourceList, limits: &ResourceList) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("pods".into(), one());
    for base in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(q) = requests.get(base) {
            out.insert(base.into(), *q);
            out.insert(format!("requests.{base}"), *q);
        }
        if let Some(q) = limits.get(base) {
            out.insert(format!("limits.{base}"), *q);
        }
    }
    for (name, q) in requests {
        if name.starts_with("hugepages-") {
            out.insert(name.clone(), *q);
            out.insert(format!("requests.{name}"), *q);
        }
        if is_extended_resource(name) {
            out.insert(format!("requests.{name}"), *q);
        }
    }
    out
}

/// One scope requirement of a quota (`spec.scopes` entries are `Exists`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRequirement {
    /// `Terminating`, `BestEffort`, `PriorityClass`, ...
    pub scope: String,
    /// `In`, `NotIn`, `Exists`, `DoesNotExist`.
    pub operator: String,
    /// Values for `In`/`NotIn`.
    pub values: Vec<String>,
}

/// The scope requirements of a quota object.
pub fn quota_scopes(quota: &Value) -> Vec<ScopeRequirement> {
    let mut out: Vec<ScopeRequirement> = quota["spec"]["scopes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|s| ScopeRequirement {
            scope: s.to_string(),
            operator: "Exists".into(),
            values: Vec::new(),
        })
        .collect();
    for e in quota["spec"]["scopeSelector"]["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        out.push(ScopeRequirement {
            scope: e["scopeName"].as_str().unwrap_or("").to_string(),
            operator: e["operator"].as_str().unwrap_or("").to_string(),
            values: e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
        });
    }
    out
}

fn affinity_terms_cross_namespace(terms: &Value, weighted: bool) -> bool {
    terms.as_array().into_iter().flatten().any(|t| {
        let t = if weighted { &t["podAffinityTerm"] } else { t };
        t["namespaces"].as_array().is_some_and(|n| !n.is_empty())
            || t["namespaceSelector"].is_object()
    })
}

fn cross_namespace_affinity(pod: &Value) -> bool {
    let aff = &pod["spec"]["affinity"];
    ["podAffinity", "podAntiAffinity"].iter().any(|k| {
        affinity_terms_cross_namespace(
            &aff[k]["requiredDuringSchedulingIgnoredDuringExecution"],
            false,
        ) || affinity_terms_cross_namespace(
            &aff[k]["preferredDuringSchedulingIgnoredDuringExecution"],
            true,
        )
    })
}

/// Whether a pod matches one scope requirement (upstream's `podMatchesScopeFunc`).
fn pod_matches_scope(req: &ScopeRequirement, pod: &Value) -> bool {
    let terminating = pod["spec"]["activeDeadlineSeconds"]
        .as_i64()
        .is_some_and(|d| d >= 0);
    let best_effort = podspec::qos_class(&pod["spec"]) == "BestEffort";
    match req.scope.as_str() {
        "Terminating" => terminating,
        "NotTerminating" => !terminating,
        "BestEffort" => best_effort,
        "NotBestEffort" => !best_effort,
        "CrossNamespacePodAffinity" => cross_namespace_affinity(pod),
        "PriorityClass" => {
            let class = pod["spec"]["priorityClassName"].as_str().unwrap_or("");
            match req.operator.as_str() {
                "Exists" => !class.is_empty(),
                "DoesNotExist" => class.is_empty(),
                "In" => !class.is_empty() && req.values.iter().any(|v| v == class),
                "NotIn" => class.is_empty() || !req.values.iter().any(|v| v == class),
                _ => false,
            }
        }
        _ => false,
    }
}

impl Evaluator {
    /// Whether a write can change usage (upstream's `Handles`): object counts change on
    /// create; services and claims also on update (type, size).
    pub fn handles(&self, update: bool, subresource: Option<&str>) -> bool {
        if subresource.is_some() {
            return false;
        }
        match self {
            Evaluator::Pods | Evaluator::Count(_) => !update,
            Evaluator::Services | Evaluator::Claims => true,
        }
    }

    /// The names in `hard` this evaluator measures.
    pub fn matching<S: AsRef<str>>(&self, hard: &[S]) -> Vec<String> {
        hard.iter()
            .map(AsRef::as_ref)
            .filter(|n| match self {
                Evaluator::Pods => {
                    POD_RESOURCES.contains(n)
                        || n.starts_with("hugepages-")
                        || n.starts_with("requests.hugepages-")
                        || is_extended_quota_name(n)
                }
                Evaluator::Services => SERVICE_RESOURCES.contains(n),
                Evaluator::Claims => {
                    matches!(
                        *n,
                        "persistentvolumeclaims"
                            | "count/persistentvolumeclaims"
                            | "requests.storage"
                    ) || n.split_once(STORAGE_CLASS_SUFFIX).is_some_and(|(_, r)| {
                        r == "requests.storage" || r == "persistentvolumeclaims"
                    })
                }
                Evaluator::Count(names) => names.iter().any(|x| x == n),
            })
            .map(String::from)
            .collect()
    }

    /// Whether `obj` matches every scope requirement (only pods have scopes; a scoped
    /// quota matches nothing else).
    pub fn matches_scopes(&self, scopes: &[ScopeRequirement], obj: &Value) -> bool {
        match self {
            Evaluator::Pods => scopes.iter().all(|s| pod_matches_scope(s, obj)),
            _ => scopes.is_empty(),
        }
    }

    /// Whether the quota object `quota` covers `obj`: it limits something this evaluator
    /// measures and its scopes match.
    pub fn matches_quota(&self, quota: &Value, obj: &Value) -> bool {
        let hard: Vec<String> = quantity::list_of(&quota["status"]["hard"])
            .into_keys()
            .collect();
        !self.matching(&hard).is_empty() && self.matches_scopes(&quota_scopes(quota), obj)
    }

    /// What `obj` uses.
    pub fn usage(&self, obj: &Value, now: jiff::Timestamp) -> ResourceList {
        let mut out = ResourceList::new();
        match self {
            Evaluator::Pods => {
                out.insert("count/pods".into(), one());
                if pod_counts(obj, now) {
                    let spec = &obj["spec"];
                    let requests = quantity::pod_total(spec, "requests", true);
                    let limits = quantity::pod_total(spec, "limits", true);
                    out = quantity::add(&out, &compute_usage(&requests, &limits));
                }
            }
            Evaluator::Services => {
                let ports = obj["spec"]["ports"].as_array().map(Vec::len).unwrap_or(0);
                let ports = i64::try_from(ports).unwrap_or(i64::MAX);
                out.insert("count/services".into(), one());
                out.insert("services".into(), one());
                let (node_ports, lbs) = match obj["spec"]["type"].as_str() {
                    Some("NodePort") => (ports, 0),
                    Some("LoadBalancer") => {
                        let node_ports = if obj["spec"]["allocateLoadBalancerNodePorts"] == false {
                            let with = obj["spec"]["ports"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .filter(|p| p["nodePort"].as_i64().is_some_and(|n| n != 0))
                                .count();
                            i64::try_from(with).unwrap_or(i64::MAX)
                        } else {
                            ports
                        };
                        (node_ports, 1)
                    }
                    _ => (0, 0),
                };
                out.insert(
                    "services.nodeports".into(),
                    Quantity::from_int(node_ports, Format::DecimalSi),
                );
                out.insert(
                    "services.loadbalancers".into(),
                    Quantity::from_int(lbs, Format::DecimalSi),
                );
            }
            Evaluator::Claims => {
                out.insert("count/persistentvolumeclaims".into(), one());
                out.insert("persistentvolumeclaims".into(), one());
                let class = claim_class(obj);
                if !class.is_empty() {
                    out.insert(
                        format!("{class}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"),
                        one(),
                    );
                }
                let requested =
                    quantity::parse_value(&obj["spec"]["resources"]["requests"]["storage"]).ok();
                let allocated =
                    quantity::parse_value(&obj["status"]["allocatedResources"]["storage"]).ok();
                let storage = match (requested, allocated) {
                    (Some(r), Some(a)) if a > r => Some(a),
                    (Some(r), _) => Some(r),
                    (None, a) => a,
                };
                if let Some(s) = storage {
                    out.insert("requests.storage".into(), s);
                    if !class.is_empty() {
                        out.insert(format!("{class}{STORAGE_CLASS_SUFFIX}requests.storage"), s);
                    }
                }
            }
            Evaluator::Count(names) => {
                for n in names {
                    out.insert(n.clone(), one());
                }
            }
        }
        out
    }

    /// Upstream's `Constraints`: when a quota tracks cpu or memory, every container must
    /// set it. The message names each missing resource with its containers.
    pub fn constraints(&self, required: &[String], obj: &Value) -> Result<(), String> {
        if *self != Evaluator::Pods {
            return Ok(());
        }
        let required: Vec<&str> = required
            .iter()
            .map(String::as_str)
            .filter(|r| MUST_SET.contains(r))
            .collect();
        let mut missing: std::collections::BTreeMap<&str, std::collections::BTreeSet<String>> =
            Default::default();
        for list in ["containers", "initContainers"] {
            for c in obj["spec"][list].as_array().into_iter().flatten() {
                let usage = compute_usage(
                    &quantity::container_list(c, "requests"),
                    &quantity::container_list(c, "limits"),
                );
                for r in &required {
                    if !usage.contains_key(*r) {
                        missing
                            .entry(r)
                            .or_default()
                            .insert(c["name"].as_str().unwrap_or("").to_string());
                    }
                }
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let parts: Vec<String> = missing
            .iter()
            .map(|(r, names)| {
                format!(
                    "{r} for: {}",
                    names.iter().cloned().collect::<Vec<_>>().join(",")
                )
            })
            .collect();
        Err(format!("must specify {}", parts.join("; ")))
    }
}

/// The usage of the resources `names` (what `ev` measures of a quota's `hard`) by
/// `items`, the objects of one kind in one namespace, counting those `scopes` select
/// (one kind's share of upstream's `CalculateUsage`). Every name is present, 0 if unused.
pub fn kind_usage<'a>(
    ev: &Evaluator,
    scopes: &[ScopeRequirement],
    names: &[String],
    items: impl IntoIterator<Item = &'a Value>,
    now: jiff::Timestamp,
) -> ResourceList {
    let mut sum: ResourceList = names.iter().map(|n| (n.clone(), Quantity::ZERO)).collect();
    for item in items {
        if ev.matches_scopes(scopes, item) {
            sum = quantity::add(&sum, &quantity::mask(&ev.usage(item, now), names));
        }
    }
    sum
}

/// The status a quota should have given `computed`, the usage of what evaluators
/// measure (upstream's `syncResourceQuota`): `hard` from the spec, `used` the computed
/// values over the previous ones, limited to the names in `hard`.
pub fn quota_status(quota: &Value, computed: &ResourceList) -> Value {
    let hard = quantity::list_of(&quota["spec"]["hard"]);
    let names: Vec<String> = hard.keys().cloned().collect();
    let mut used = quantity::list_of(&quota["status"]["used"]);
    for (k, v) in computed {
        used.insert(k.clone(), *v);
    }
    let used = quantity::mask(&used, &names);
    serde_json::json!({
        "hard": quantity::list_to_json(&hard),
        "used": quantity::list_to_json(&used),
    })
}

/// Whether a quota's status already says `status` (quantities compared by value).
pub fn status_current(quota: &Value, status: &Value) -> bool {
    let same = |k: &str| {
        quota["status"].get(k).is_some()
            && quantity::list_of(&quota["status"][k]) == quantity::list_of(&status[k])
    };
    same("hard") && same("used")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> jiff::Timestamp {
        jiff::Timestamp::now()
    }

    #[test]
    fn pods_use_counts_and_compute_until_they_finish() {
        let pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m"}}},
            {"name": "b", "resources": {"requests": {"cpu": "150m", "example.com/dongle": "2"}}}
        ]}, "status": {"phase": "Running"}});
        let u = Evaluator::Pods.usage(&pod, now());
        assert_eq!(
            quantity::pretty(&u),
            "count/pods=1,cpu=250m,limits.cpu=200m,memory=64Mi,pods=1,requests.cpu=250m,requests.example.com/dongle=2,requests.memory=64Mi"
        );
        let mut done = pod.clone();
        done["status"]["phase"] = json!("Succeeded");
        assert_eq!(
            quantity::pretty(&Evaluator::Pods.usage(&done, now())),
            "count/pods=1"
        );
        let mut stuck = pod;
        stuck["metadata"] =
            json!({"deletionTimestamp": "2020-01-01T00:00:00Z", "deletionGracePeriodSeconds": 30});
        assert!(!pod_counts(&stuck, now()));
    }

    #[test]
    fn scopes_select_pods_and_nothing_else() {
        let best = json!({"spec": {"containers": [{"name": "a"}]}});
        let burst = json!({"spec": {"activeDeadlineSeconds": 5, "priorityClassName": "high",
            "containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]}});
        let quota = |scopes: Value| json!({"spec": {"scopes": scopes}});
        let be = quota_scopes(&quota(json!(["BestEffort"])));
        assert!(Evaluator::Pods.matches_scopes(&be, &best));
        assert!(!Evaluator::Pods.matches_scopes(&be, &burst));
        let term = quota_scopes(&quota(json!(["Terminating", "NotBestEffort"])));
        assert!(Evaluator::Pods.matches_scopes(&term, &burst));
        let sel = quota_scopes(&json!({"spec": {"scopeSelector": {"matchExpressions": [
            {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}}}));
        assert!(Evaluator::Pods.matches_scopes(&sel, &burst));
        assert!(!Evaluator::Pods.matches_scopes(&sel, &best));
        let cm = evaluator_for(&ResourceDef::new("", "v1", "ConfigMap", "configmaps"));
        assert!(!cm.matches_scopes(&be, &json!({})));
        assert!(cm.matches_scopes(&[], &json!({})));
    }

    #[test]
    fn object_counts_services_and_claims() {
        let cm = evaluator_for(&ResourceDef::new("", "v1", "ConfigMap", "configmaps"));
        assert_eq!(
            cm,
            Evaluator::Count(vec!["count/configmaps".into(), "configmaps".into()])
        );
        let rs = evaluator_for(&ResourceDef::new("apps", "v1", "ReplicaSet", "replicasets"));
        assert_eq!(
            rs.matching(&["count/replicasets.apps", "pods"]),
            vec!["count/replicasets.apps"]
        );
        assert!(
            cm.handles(false, None) && !cm.handles(true, None) && !cm.handles(false, Some("x"))
        );
        let lb = json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 1}, {"port": 2}]}});
        assert_eq!(
            quantity::pretty(&Evaluator::Services.usage(&lb, now())),
            "count/services=1,services=1,services.loadbalancers=1,services.nodeports=2"
        );
        let pvc = json!({"spec": {"storageClassName": "gold", "resources": {"requests": {"storage": "1Gi"}}}});
        let u = Evaluator::Claims.usage(&pvc, now());
        assert_eq!(
            u["gold.storageclass.storage.k8s.io/requests.storage"].to_string(),
            "1Gi"
        );
        assert_eq!(
            Evaluator::Claims.matching(&[
                "gold.storageclass.storage.k8s.io/persistentvolumeclaims",
                "cpu"
            ]),
            vec!["gold.storageclass.storage.k8s.io/persistentvolumeclaims"]
        );
    }

    #[test]
    fn constraints_name_containers_missing_tracked_resources() {
        let pod = json!({"spec": {"containers": [
            {"name": "b", "resources": {"requests": {"cpu": "1"}}},
            {"name": "a"}
        ], "initContainers": [{"name": "init"}]}});
        let req = vec![
            "requests.cpu".to_string(),
            "limits.memory".into(),
            "pods".into(),
        ];
        assert_eq!(
            Evaluator::Pods.constraints(&req, &pod).unwrap_err(),
            "must specify limits.memory for: a,b,init; requests.cpu for: a,init"
        );
        assert!(Evaluator::Pods.constraints(&["pods".into()], &pod).is_ok());
    }
}
