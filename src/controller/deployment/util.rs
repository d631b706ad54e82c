//! The pure helpers of the Deployment controller (upstream's
//! pkg/controller/deployment/util/deployment_util.go and the hashing and sorting helpers of
//! pkg/controller/controller_utils.go): annotation names, the pod-template hash, label
//! selectors, template comparison, maxSurge/maxUnavailable arithmetic, replica counts and
//! the orders ReplicaSets are sorted in.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

/// The revision of a ReplicaSet (and the deployment's current one).
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// The earlier revisions a ReplicaSet served (set when a rollback reuses it).
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// The deployment's replicas when the ReplicaSet was last scaled by it.
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// The deployment's replicas + maxSurge when the ReplicaSet was last scaled by it.
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// The label (and selector term) telling a deployment's ReplicaSets apart.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// kubectl apply's annotation (never copied onto ReplicaSets).
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The extensions/v1beta1 rollback annotation (never copied either).
pub const ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";

/// The longest revision-history annotation kept (upstream's `maxRevHistoryLengthInChars`).
pub const MAX_REV_HISTORY_CHARS: usize = 2000;

/// Why a value could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UtilError {
    /// maxSurge/maxUnavailable is a string that is not a percentage.
    #[error("invalid value for IntOrString: invalid type: string is not a percentage")]
    NotPercent,
    /// A percentage whose number does not parse.
    #[error("invalid value {0:?}: not an integer percentage")]
    BadPercent(String),
    /// A selector operator upstream does not know.
    #[error("{0:?} is not a valid label selector operator")]
    BadOperator(String),
}

/// Annotations a deployment never copies onto its ReplicaSets (upstream's
/// `annotationsToSkip`).
pub fn skip_copy_annotation(key: &str) -> bool {
    matches!(
        key,
        LAST_APPLIED | REVISION | REVISION_HISTORY | DESIRED_REPLICAS | MAX_REPLICAS | ROLLBACK_TO
    )
}

/// FNV-1a, 32 bits (what upstream's `ComputeHash` hashes with).
fn fnv32a(bytes: &[u8], mut h: u32) -> u32 {
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

const FNV32_OFFSET: u32 = 0x811c_9dc5;

/// Upstream's `rand.SafeEncodeString`: every byte mapped into an alphabet without vowels
/// and look-alike digits, so generated names never spell words.
pub fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// The `pod-template-hash` of a template (upstream's `ComputeHash`): FNV-32a of the
/// template, then of the collision count (8 bytes, the low 4 little-endian), the decimal
/// sum safe-encoded. Upstream hashes Go's debug print of the struct; this hashes the
/// template's JSON, so values differ from upstream's but look the same.
pub fn compute_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let bytes = serde_json::to_vec(template).unwrap_or_default();
    let mut h = fnv32a(&bytes, FNV32_OFFSET);
    if let Some(c) = collision_count {
        let mut buf = [0u8; 8];
        buf[..4].copy_from_slice(&(c as u32).to_le_bytes());
        h = fnv32a(&buf, h);
    }
    safe_encode(&h.to_string())
}

/// Whether `labels` satisfy `selector` (`None` selects nothing, an empty one everything).
pub fn selector_matches(
    selector: Option<&LabelSelector>,
    labels: Option<&BTreeMap<String, String>>,
) -> Result<bool, UtilError> {
    let Some(sel) = selector else {
        return Ok(false);
    };
    let get = |k: &str| labels.and_then(|l| l.get(k));
    for (k, v) in sel.match_labels.iter().flatten() {
        if get(k) != Some(v) {
            return Ok(false);
        }
    }
    for e in sel.match_expressions.iter().flatten() {
        let values = e.values.as_deref().unwrap_or_default();
        let have = get(&e.key);
        let ok = match e.operator.as_str() {
            "In" => have.is_some_and(|v| values.contains(v)),
            "NotIn" => have.is_none_or(|v| !values.contains(v)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            other => return Err(UtilError::BadOperator(other.into())),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether a selector is the empty one (selects every pod).
pub fn selects_everything(sel: Option<&LabelSelector>) -> bool {
    sel.is_some_and(|s| {
        s.match_labels.as_ref().is_none_or(|m| m.is_empty())
            && s.match_expressions.as_ref().is_none_or(|m| m.is_empty())
    })
}

/// Drops nulls, empty objects and empty arrays (Go's semantic equality treats nil and
/// empty maps and slices alike).
fn prune(v: &mut Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => {
            m.retain(|_, x| !prune(x));
            m.is_empty()
        }
        Value::Array(a) => {
            for x in a.iter_mut() {
                prune(x);
            }
            a.is_empty()
        }
        _ => false,
    }
}

fn normalized(t: &PodTemplateSpec) -> Value {
    let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
    if let Some(l) = v
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        l.remove(POD_TEMPLATE_HASH);
    }
    prune(&mut v);
    v
}

/// Whether two templates are equal once the `pod-template-hash` label is ignored
/// (upstream's `EqualIgnoreHash`).
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    normalized(a) == normalized(b)
}

/// `maxSurge` or `maxUnavailable` as a count of `total` (upstream's
/// `GetScaledValueFromIntOrPercent`): a percentage rounds up or down as asked.
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> Result<i32, UtilError> {
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let Some(n) = s.strip_suffix('%') else {
                return Err(UtilError::NotPercent);
            };
            let p: i64 = n
                .trim()
                .parse()
                .map_err(|_| UtilError::BadPercent(s.clone()))?;
            let prod = p * i64::from(total);
            let v = if round_up {
                (prod + 99).div_euclid(100)
            } else {
                prod.div_euclid(100)
            };
            Ok(v as i32)
        }
    }
}

/// The deployment's desired replicas (defaulted to 1 as the API server does).
pub fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// Whether the strategy is Recreate (anything else is RollingUpdate, the default).
pub fn is_recreate(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        == Some("Recreate")
}

fn rolling_params(d: &Deployment) -> (IntOrString, IntOrString) {
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let default = || IntOrString::String("25%".into());
    (
        ru.and_then(|r| r.max_surge.clone()).unwrap_or_else(default),
        ru.and_then(|r| r.max_unavailable.clone())
            .unwrap_or_else(default),
    )
}

/// maxSurge and maxUnavailable as counts (upstream's `ResolveFenceposts`): surge rounds
/// up, unavailable down, and both zero means one unavailable.
pub fn resolve_fenceposts(
    surge: &IntOrString,
    unavailable: &IntOrString,
    desired: i32,
) -> Result<(i32, i32), UtilError> {
    let s = scaled_value(surge, desired, true)?;
    let mut u = scaled_value(unavailable, desired, false)?;
    if s == 0 && u == 0 {
        u = 1;
    }
    Ok((s, u))
}

/// The deployment's maxSurge as a count (0 for Recreate and for invalid values).
pub fn max_surge(d: &Deployment) -> i32 {
    if is_recreate(d) {
        return 0;
    }
    let (s, u) = rolling_params(d);
    resolve_fenceposts(&s, &u, replicas(d)).map_or(0, |(s, _)| s)
}

/// The deployment's maxUnavailable as a count, at most its replicas.
pub fn max_unavailable(d: &Deployment) -> i32 {
    let want = replicas(d);
    if is_recreate(d) || want == 0 {
        return 0;
    }
    let (s, u) = rolling_params(d);
    resolve_fenceposts(&s, &u, want).map_or(0, |(_, u)| u.min(want))
}

/// A ReplicaSet's desired replicas.
pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// A ReplicaSet's observed replicas.
pub fn rs_actual(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map_or(0, |s| s.replicas)
}

/// A ReplicaSet's ready replicas.
pub fn rs_ready(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

/// A ReplicaSet's available replicas.
pub fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

/// The sum of `f` over ReplicaSets.
pub fn sum(rss: &[&ReplicaSet], f: fn(&ReplicaSet) -> i32) -> i32 {
    rss.iter().map(|r| f(r)).sum()
}

/// The ReplicaSets with desired replicas (upstream's `FilterActiveReplicaSets`).
pub fn active<'a>(rss: &[&'a ReplicaSet]) -> Vec<&'a ReplicaSet> {
    rss.iter().copied().filter(|r| rs_replicas(r) > 0).collect()
}

/// The revision of an object's annotations (0 when absent; an error when unparsable).
pub fn revision(annotations: Option<&BTreeMap<String, String>>) -> Result<i64, String> {
    match annotations.and_then(|a| a.get(REVISION)) {
        None => Ok(0),
        Some(v) => v.parse().map_err(|_| v.clone()),
    }
}

/// The highest revision among ReplicaSets (unparsable ones skipped).
pub fn max_revision(rss: &[&ReplicaSet]) -> i64 {
    rss.iter()
        .filter_map(|r| revision(r.metadata.annotations.as_ref()).ok())
        .max()
        .unwrap_or(0)
        .max(0)
}

fn created(rs: &ReplicaSet) -> Option<jiff::Timestamp> {
    rs.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

/// Oldest first, then by name (upstream's `ReplicaSetsByCreationTimestamp`).
pub fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    created(a)
        .cmp(&created(b))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// Lowest revision first, then oldest (upstream's `ReplicaSetsByRevision`).
pub fn by_revision(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let r = |x: &ReplicaSet| revision(x.metadata.annotations.as_ref()).unwrap_or(0);
    r(a).cmp(&r(b)).then_with(|| by_creation(a, b))
}

/// Largest first, older first among equals (upstream's `ReplicaSetsBySizeOlder`).
pub fn by_size_older(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    rs_replicas(b)
        .cmp(&rs_replicas(a))
        .then_with(|| by_creation(a, b))
}

/// Largest first, newer first among equals (upstream's `ReplicaSetsBySizeNewer`).
pub fn by_size_newer(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    rs_replicas(b)
        .cmp(&rs_replicas(a))
        .then_with(|| by_creation(b, a))
}

fn template(d: &Deployment) -> PodTemplateSpec {
    d.spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default()
}

fn rs_template(rs: &ReplicaSet) -> Option<&PodTemplateSpec> {
    rs.spec.as_ref().and_then(|s| s.template.as_ref())
}

/// The oldest ReplicaSet whose template is the deployment's (upstream's
/// `FindNewReplicaSet`), as an index into `rss`.
pub fn find_new(d: &Deployment, rss: &[ReplicaSet]) -> Option<usize> {
    let t = template(d);
    let mut idx: Vec<usize> = (0..rss.len()).collect();
    idx.sort_by(|a, b| by_creation(&rss[*a], &rss[*b]));
    idx.into_iter()
        .find(|i| rs_template(&rss[*i]).is_some_and(|rt| equal_ignore_hash(rt, &t)))
}

/// How many replicas the new ReplicaSet should have now (upstream's `NewRSNewReplicas`):
/// for a rolling update as many as the surge allows, for Recreate all of them.
pub fn new_rs_new_replicas(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: &ReplicaSet,
) -> Result<i32, UtilError> {
    let want = replicas(d);
    if is_recreate(d) {
        return Ok(want);
    }
    let (surge, _) = rolling_params(d);
    let surge = scaled_value(&surge, want, true)?;
    let current = sum(all, rs_replicas);
    let max_total = want + surge;
    let new = rs_replicas(new_rs);
    if current >= max_total {
        return Ok(new);
    }
    let up = (max_total - current).min(want - new);
    Ok(new + up)
}

/// The desired-replicas annotation of a ReplicaSet, if it parses.
pub fn desired_annotation(rs: &ReplicaSet) -> Option<i32> {
    rs.metadata
        .annotations
        .as_ref()?
        .get(DESIRED_REPLICAS)?
        .parse()
        .ok()
}

fn max_annotation(rs: &ReplicaSet) -> Option<i32> {
    rs.metadata
        .annotations
        .as_ref()?
        .get(MAX_REPLICAS)?
        .parse()
        .ok()
}

/// Sets the desired/max replicas annotations; returns whether they changed.
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let a = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let v = v.to_string();
        if a.get(k) != Some(&v) {
            a.insert(k.into(), v);
            changed = true;
        }
    }
    changed
}

/// Whether the desired/max replicas annotations differ from these values.
pub fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    desired_annotation(rs) != Some(desired) || max_annotation(rs) != Some(max)
}

/// Whether the new ReplicaSet runs the whole deployment (upstream's `IsSaturated`).
pub fn is_saturated(d: &Deployment, rs: Option<&ReplicaSet>) -> bool {
    let Some(rs) = rs else { return false };
    let want = replicas(d);
    desired_annotation(rs) == Some(want) && rs_replicas(rs) == want && rs_available(rs) == want
}

/// The only active ReplicaSet, or the newest when none is active; `None` when several
/// are active (they scale proportionally). Upstream's `FindActiveOrLatest`.
pub fn active_or_latest<'a>(
    new_rs: Option<&'a ReplicaSet>,
    old: &[&'a ReplicaSet],
) -> Option<&'a ReplicaSet> {
    if new_rs.is_none() && old.is_empty() {
        return None;
    }
    let mut old: Vec<&ReplicaSet> = old.to_vec();
    old.sort_by(|a, b| by_creation(b, a));
    let mut all = old.clone();
    all.extend(new_rs);
    let act = active(&all);
    match act.len() {
        0 => new_rs.or_else(|| old.first().copied()),
        1 => Some(act[0]),
        _ => None,
    }
}

/// The share of `to_add` (`added` of it already given) the ReplicaSet gets when the
/// deployment is scaled mid-rollout (upstream's `GetReplicaSetProportion`).
pub fn proportion(rs: &ReplicaSet, d: &Deployment, to_add: i32, added: i32) -> i32 {
    if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = fraction(rs, d);
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

/// How much the ReplicaSet would grow or shrink if the whole deployment resized to its
/// new maximum (upstream's `getReplicaSetFraction`).
fn fraction(rs: &ReplicaSet, d: &Deployment) -> i32 {
    let want = replicas(d);
    if want == 0 {
        return -rs_replicas(rs);
    }
    let total = want + max_surge(d);
    let annotated = max_annotation(rs).unwrap_or_else(|| {
        d.status
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or_default()
    });
    if annotated == 0 {
        return 0;
    }
    let size = f64::from(rs_replicas(rs)) * f64::from(total) / f64::from(annotated);
    size.round() as i32 - rs_replicas(rs)
}

/// The sizes proportional scaling gives the active ReplicaSets (upstream's `scale` for
/// rolling deployments): `(name, new size)` in the order they are written, plus "up" or
/// "down" for the Events ("" when nothing is added or removed).
pub fn proportional_sizes(
    d: &Deployment,
    active_rss: &[&ReplicaSet],
) -> (Vec<(String, i32)>, &'static str) {
    let mut rss: Vec<&ReplicaSet> = active_rss.to_vec();
    let current = sum(&rss, rs_replicas);
    let want = replicas(d);
    let allowed = if want > 0 { want + max_surge(d) } else { 0 };
    let to_add = allowed - current;
    let op = match to_add.cmp(&0) {
        Ordering::Greater => {
            rss.sort_by(|a, b| by_size_newer(a, b));
            "up"
        }
        Ordering::Less => {
            rss.sort_by(|a, b| by_size_older(a, b));
            "down"
        }
        Ordering::Equal => "",
    };
    let mut added = 0;
    let mut sizes: Vec<(String, i32)> = rss
        .iter()
        .map(|rs| {
            let name = rs.metadata.name.clone().unwrap_or_default();
            if to_add == 0 {
                return (name, rs_replicas(rs));
            }
            let p = proportion(rs, d, to_add, added);
            added += p;
            (name, rs_replicas(rs) + p)
        })
        .collect();
    if to_add != 0
        && let Some(first) = sizes.first_mut()
    {
        first.1 = (first.1 + to_add - added).max(0);
    }
    (sizes, op)
}

/// Copies the deployment's annotations (but the skipped ones) onto the ReplicaSet;
/// returns whether any changed.
fn copy_annotations(d: &Deployment, rs: &mut ReplicaSet) -> bool {
    let a = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if skip_copy_annotation(k) || a.get(k) == Some(v) {
            continue;
        }
        a.insert(k.clone(), v.clone());
        changed = true;
    }
    changed
}

/// Brings the new ReplicaSet's annotations up to date (upstream's
/// `SetNewReplicaSetAnnotations`): the deployment's annotations, the revision (raised to
/// `new_revision` if lower, the old one then appended to the revision history), and for
/// a ReplicaSet about to be created the replicas annotations. Returns whether any changed.
pub fn set_new_rs_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
) -> bool {
    let mut changed = copy_annotations(d, rs);
    let a = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let old = a.get(REVISION).cloned();
    let old_int = match old.as_deref() {
        None | Some("") => 0,
        Some(v) => match v.parse::<i64>() {
            Ok(n) => n,
            Err(_) => return false,
        },
    };
    if old_int < new_revision {
        a.insert(REVISION.into(), new_revision.to_string());
        changed = true;
        if let Some(old) = old {
            let history = a.get(REVISION_HISTORY).cloned().unwrap_or_default();
            if history.is_empty() {
                a.insert(REVISION_HISTORY.into(), old);
            } else {
                let parts: Vec<&str> = history.split(',').collect();
                let mut total = history.len() + old.len() + 1;
                let mut start = 0;
                while total > MAX_REV_HISTORY_CHARS && start < parts.len() {
                    total -= parts[start].len() + 1;
                    start += 1;
                }
                if total <= MAX_REV_HISTORY_CHARS {
                    let mut kept: Vec<&str> = parts[start..].to_vec();
                    kept.push(&old);
                    a.insert(REVISION_HISTORY.into(), kept.join(","));
                }
            }
        }
    }
    if !exists {
        let want = replicas(d);
        if set_replicas_annotations(rs, want, want + max_surge(d)) {
            changed = true;
        }
    }
    changed
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{
        DeploymentSpec, DeploymentStrategy, ReplicaSetSpec, ReplicaSetStatus,
        RollingUpdateDeployment,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    pub(crate) fn deploy(
        replicas: i32,
        surge: IntOrString,
        unavailable: IntOrString,
    ) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(surge),
                        max_unavailable: Some(unavailable),
                    }),
                }),
                ..Default::default()
            }),
            status: None,
        }
    }

    pub(crate) fn rs(name: &str, created: i64, replicas: i32, max: Option<i32>) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(Time(jiff::Timestamp::from_second(created).unwrap())),
                annotations: max.map(|m| [(MAX_REPLICAS.to_string(), m.to_string())].into()),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                ..Default::default()
            }),
            status: Some(ReplicaSetStatus {
                replicas,
                available_replicas: Some(replicas),
                ..Default::default()
            }),
        }
    }

    fn pct(s: &str) -> IntOrString {
        IntOrString::String(s.into())
    }

    #[test]
    fn safe_encoding_maps_digits_as_upstream() {
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
        let h = compute_hash(&PodTemplateSpec::default(), None);
        assert!(h.len() <= 10 && !h.is_empty(), "{h}");
        assert!(h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        assert_ne!(h, compute_hash(&PodTemplateSpec::default(), Some(1)));
        assert_eq!(h, compute_hash(&PodTemplateSpec::default(), None));
    }

    #[test]
    fn fnv32a_matches_the_reference_vectors() {
        assert_eq!(fnv32a(b"", FNV32_OFFSET), 0x811c9dc5);
        assert_eq!(fnv32a(b"a", FNV32_OFFSET), 0xe40c292c);
        assert_eq!(fnv32a(b"foobar", FNV32_OFFSET), 0xbf9cf968);
    }

    #[test]
    fn percentages_round_surge_up_and_unavailable_down() {
        assert_eq!(scaled_value(&pct("25%"), 5, true), Ok(2));
        assert_eq!(scaled_value(&pct("25%"), 5, false), Ok(1));
        assert_eq!(scaled_value(&IntOrString::Int(3), 5, false), Ok(3));
        assert_eq!(
            scaled_value(&pct("25"), 5, false),
            Err(UtilError::NotPercent)
        );
        assert_eq!(resolve_fenceposts(&pct("25%"), &pct("25%"), 1), Ok((1, 0)));
        assert_eq!(
            resolve_fenceposts(&IntOrString::Int(0), &pct("10%"), 5),
            Ok((0, 1)),
            "both zero means one unavailable"
        );
        let d = deploy(2, IntOrString::Int(0), IntOrString::Int(5));
        assert_eq!(max_unavailable(&d), 2, "capped at replicas");
        assert_eq!(max_surge(&d), 0);
    }

    #[test]
    fn new_replicas_respect_the_surge() {
        let d = deploy(4, IntOrString::Int(1), IntOrString::Int(0));
        let old = rs("old", 1, 4, None);
        let mut new = rs("new", 2, 0, None);
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), Ok(1));
        new.spec.as_mut().unwrap().replicas = Some(1);
        assert_eq!(
            new_rs_new_replicas(&d, &[&old, &new], &new),
            Ok(1),
            "at the surge"
        );
        let old3 = rs("old", 1, 3, None);
        assert_eq!(new_rs_new_replicas(&d, &[&old3, &new], &new), Ok(2));
    }

    #[test]
    fn scaling_mid_rollout_is_proportional() {
        // 10 replicas, maxSurge 3: old 8 + new 5 = 13 (at max); scale to 15 (max 18).
        let mut d = deploy(15, IntOrString::Int(3), IntOrString::Int(2));
        d.status = Some(Default::default());
        let old = rs("old", 1, 8, Some(13));
        let new = rs("new", 2, 5, Some(13));
        let (sizes, op) = proportional_sizes(&d, &[&old, &new]);
        assert_eq!(op, "up");
        let total: i32 = sizes.iter().map(|s| s.1).sum();
        assert_eq!(total, 18);
        assert_eq!(sizes, vec![("old".into(), 11), ("new".into(), 7)]);
        // Down to 5 (max 8): the larger shrinks first.
        let d = deploy(5, IntOrString::Int(3), IntOrString::Int(2));
        let (sizes, op) = proportional_sizes(&d, &[&old, &new]);
        assert_eq!(op, "down");
        assert_eq!(sizes, vec![("old".into(), 5), ("new".into(), 3)]);
        // To zero: everything goes.
        let d = deploy(0, IntOrString::Int(3), IntOrString::Int(2));
        let (sizes, _) = proportional_sizes(&d, &[&old, &new]);
        assert_eq!(sizes, vec![("old".into(), 0), ("new".into(), 0)]);
    }

    #[test]
    fn active_or_latest_picks_the_only_active_or_the_newest() {
        let a = rs("a", 1, 0, None);
        let b = rs("b", 2, 0, None);
        let c = rs("c", 3, 2, None);
        assert_eq!(
            active_or_latest(None, &[&a, &b])
                .unwrap()
                .metadata
                .name
                .as_deref(),
            Some("b")
        );
        assert_eq!(
            active_or_latest(Some(&a), &[&c])
                .unwrap()
                .metadata
                .name
                .as_deref(),
            Some("c")
        );
        let d = rs("d", 4, 1, None);
        assert!(active_or_latest(Some(&d), &[&c]).is_none());
    }

    #[test]
    fn revisions_and_history_follow_a_rollback() {
        let mut d = deploy(2, pct("25%"), pct("25%"));
        d.metadata.annotations = Some(
            [
                ("kubernetes.io/change-cause".to_string(), "v2".to_string()),
                (REVISION.to_string(), "9".to_string()),
                (LAST_APPLIED.to_string(), "{}".to_string()),
            ]
            .into(),
        );
        let mut new = rs("web-1", 1, 0, None);
        assert!(set_new_rs_annotations(&d, &mut new, 1, false));
        let a = new.metadata.annotations.clone().unwrap();
        assert_eq!(a.get(REVISION).map(String::as_str), Some("1"));
        assert_eq!(
            a.get("kubernetes.io/change-cause").map(String::as_str),
            Some("v2")
        );
        assert_eq!(a.get(DESIRED_REPLICAS).map(String::as_str), Some("2"));
        assert_eq!(a.get(MAX_REPLICAS).map(String::as_str), Some("3"));
        assert!(!a.contains_key(LAST_APPLIED));
        assert!(!set_new_rs_annotations(&d, &mut new, 1, true), "unchanged");
        assert!(set_new_rs_annotations(&d, &mut new, 3, true));
        assert!(set_new_rs_annotations(&d, &mut new, 5, true));
        let a = new.metadata.annotations.unwrap();
        assert_eq!(a.get(REVISION).map(String::as_str), Some("5"));
        assert_eq!(a.get(REVISION_HISTORY).map(String::as_str), Some("1,3"));
    }

    #[test]
    fn templates_compare_without_the_hash_label() {
        let a = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut b = a.clone();
        b.metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert(POD_TEMPLATE_HASH.into(), "x".into());
        b.metadata.as_mut().unwrap().annotations = Some(BTreeMap::new());
        assert!(equal_ignore_hash(&a, &b));
        b.metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert("v".into(), "2".into());
        assert!(!equal_ignore_hash(&a, &b));
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
        let labels: BTreeMap<String, String> = [
            ("app".to_string(), "web".to_string()),
            ("tier".to_string(), "fe".to_string()),
        ]
        .into();
        let sel = LabelSelector {
            match_labels: Some([("app".to_string(), "web".to_string())].into()),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["fe".into(), "be".into()]),
            }]),
        };
        assert_eq!(selector_matches(Some(&sel), Some(&labels)), Ok(true));
        assert_eq!(selector_matches(None, Some(&labels)), Ok(false));
        assert_eq!(
            selector_matches(Some(&LabelSelector::default()), None),
            Ok(true)
        );
        assert!(selects_everything(Some(&LabelSelector::default())));
        let not = LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "DoesNotExist".into(),
                values: None,
            }]),
            ..Default::default()
        };
        assert_eq!(selector_matches(Some(&not), Some(&labels)), Ok(false));
    }
}
