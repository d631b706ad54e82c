//! ControllerRevision history shared by the StatefulSet and DaemonSet controllers
//! (upstream's pkg/controller/history): a revision is a snapshot of the owner's pod
//! template (as the strategic-merge patch that restores it), named `<owner>-<hash>` and
//! labelled `controller.kubernetes.io/hash`; the hash covers the patch and the owner's
//! collisionCount, which is bumped when a different revision already has the name.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube_client::Api;
use kube_client::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::code;
use super::podcontrol::{Owner, PodControlError};

/// The label holding a revision's hash.
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";

/// The label pods carry naming the revision they were made from.
pub const REVISION_LABEL: &str = "controller-revision-hash";

/// Why a history operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The API server refused or failed the request.
    #[error(transparent)]
    Api(#[from] PodControlError),
}

impl From<kube_client::Error> for HistoryError {
    fn from(e: kube_client::Error) -> Self {
        HistoryError::Api(e.into())
    }
}

/// FNV-1a, 32 bits (what upstream's `HashControllerRevision` uses).
pub fn fnv32a(chunks: &[&[u8]]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for c in chunks {
        for b in *c {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

/// Upstream's `rand.SafeEncodeString`: every character mapped onto an alphabet without
/// vowels or look-alikes, so that a hash never spells a word.
pub fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// The hash of revision data and the owner's collision count.
pub fn hash_revision(data: &Value, collision_count: Option<i32>) -> String {
    let raw = serde_json::to_vec(data).unwrap_or_default();
    let probe = collision_count.map(|c| c.to_string());
    let mut chunks: Vec<&[u8]> = vec![&raw];
    if let Some(p) = &probe {
        chunks.push(p.as_bytes());
    }
    safe_encode(&fnv32a(&chunks).to_string())
}

/// `<prefix>-<hash>`, the prefix cut so that the name stays a valid name (upstream's
/// `ControllerRevisionName`).
pub fn revision_name(prefix: &str, hash: &str) -> String {
    let prefix: String = prefix.chars().take(223).collect();
    format!("{prefix}-{hash}")
}

/// The data of a revision: the patch replacing the owner's pod template.
pub fn template_patch(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(m) = t.as_object_mut() {
        m.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": t}})
}

/// The pod template a revision's data restores.
pub fn template_of(rev: &ControllerRevision) -> Option<Value> {
    let mut t = rev.data.as_ref()?.0.get("spec")?.get("template")?.clone();
    t.as_object_mut()?.remove("$patch");
    Some(t)
}

/// A new revision of `owner` (not yet stored) with `labels` (the template's), `data`,
/// revision number `revision`, named by the hash of data and `collision_count`.
pub fn new_revision(
    owner: &Owner,
    labels: &BTreeMap<String, String>,
    data: Value,
    revision: i64,
    collision_count: Option<i32>,
) -> ControllerRevision {
    let hash = hash_revision(&data, collision_count);
    let mut labels = labels.clone();
    labels.insert(HASH_LABEL.into(), hash.clone());
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(revision_name(&owner.name, &hash)),
            namespace: Some(owner.namespace.clone()),
            labels: Some(labels),
            owner_references: Some(vec![owner.controller_ref()]),
            ..Default::default()
        },
        data: Some(RawExtension(data)),
        revision,
    }
}

/// A revision's hash label.
pub fn hash_of(rev: &ControllerRevision) -> &str {
    rev.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(HASH_LABEL))
        .map_or("", String::as_str)
}

/// Whether two revisions hold the same data (upstream's `EqualRevision`: differing hash
/// labels settle it at once).
pub fn equal(a: &ControllerRevision, b: &ControllerRevision) -> bool {
    let (ha, hb) = (hash_of(a), hash_of(b));
    if !ha.is_empty() && !hb.is_empty() && ha != hb {
        return false;
    }
    a.data.as_ref().map(|d| &d.0) == b.data.as_ref().map(|d| &d.0)
}

/// Sorts revisions by revision number, then creation time, then name.
pub fn sort(revs: &mut [Arc<ControllerRevision>]) {
    revs.sort_by(|a, b| {
        a.revision
            .cmp(&b.revision)
            .then_with(|| {
                let t =
                    |r: &ControllerRevision| r.metadata.creation_timestamp.as_ref().map(|t| t.0);
                t(a).cmp(&t(b))
            })
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
}

/// The next revision number after `revs`.
pub fn next_revision(revs: &[Arc<ControllerRevision>]) -> i64 {
    revs.iter().map(|r| r.revision).max().unwrap_or(0) + 1
}

/// Whether `labels` satisfy `sel` (matchLabels and matchExpressions); an empty selector
/// selects everything, as upstream's `LabelSelectorAsSelector`.
pub fn selector_matches(sel: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    let get = |k: &str| labels.and_then(|l| l.get(k));
    let by_labels = sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| get(k) == Some(v));
    by_labels
        && sel.match_expressions.iter().flatten().all(|e| {
            let vals = e.values.as_deref().unwrap_or(&[]);
            match e.operator.as_str() {
                "In" => get(&e.key).is_some_and(|v| vals.contains(v)),
                "NotIn" => get(&e.key).is_none_or(|v| !vals.contains(v)),
                "Exists" => get(&e.key).is_some(),
                "DoesNotExist" => get(&e.key).is_none(),
                _ => false,
            }
        })
}

/// Whether the selector is empty (a workload with one selects nothing it may adopt).
pub fn selector_is_empty(sel: &LabelSelector) -> bool {
    sel.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && sel.match_expressions.as_ref().is_none_or(|m| m.is_empty())
}

/// The revisions before `limit` is applied: the non-live ones, oldest first, beyond the
/// `limit` newest non-live ones (upstream's `truncateHistory`). `revs` must be sorted.
pub fn to_truncate(
    revs: &[Arc<ControllerRevision>],
    live: &HashSet<String>,
    limit: usize,
) -> Vec<Arc<ControllerRevision>> {
    let history: Vec<_> = revs
        .iter()
        .filter(|r| !live.contains(r.metadata.name.as_deref().unwrap_or("")))
        .cloned()
        .collect();
    let n = history.len().saturating_sub(limit);
    history.into_iter().take(n).collect()
}

/// ControllerRevision writes for one owner kind.
#[derive(Clone)]
pub struct History {
    client: kube_client::Client,
}

impl History {
    /// Revision operations through `client`.
    pub fn new(client: kube_client::Client) -> Self {
        History { client }
    }

    fn api(&self, ns: &str) -> Api<ControllerRevision> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// Stores `rev` (built with `*collision_count`); when another revision already holds
    /// its name, an equal one is returned, otherwise the collision count is bumped and
    /// the name recomputed (upstream's `CreateControllerRevision`).
    pub async fn create(
        &self,
        owner: &Owner,
        rev: &ControllerRevision,
        collision_count: &mut i32,
    ) -> Result<ControllerRevision, HistoryError> {
        let data = rev
            .data
            .as_ref()
            .map(|d| d.0.clone())
            .unwrap_or(Value::Null);
        let mut labels = rev.metadata.labels.clone().unwrap_or_default();
        labels.remove(HASH_LABEL);
        loop {
            let candidate = new_revision(
                owner,
                &labels,
                data.clone(),
                rev.revision,
                Some(*collision_count),
            );
            let mut candidate = candidate;
            // DaemonSet revisions also carry the hash as `controller-revision-hash`.
            let hash = hash_of(&candidate).to_string();
            if let Some(l) = candidate.metadata.labels.as_mut()
                && l.contains_key(REVISION_LABEL)
            {
                l.insert(REVISION_LABEL.into(), hash);
            }
            let name = candidate.metadata.name.clone().unwrap_or_default();
            let span =
                tracing::debug_span!("controller_to_apiserver_create_revision", revision = %name);
            let r = tracing::Instrument::instrument(
                self.api(&owner.namespace)
                    .create(&PostParams::default(), &candidate),
                span,
            )
            .await;
            match r {
                Ok(created) => return Ok(created),
                Err(e) if code(&e) == 409 => {
                    let existing = self.api(&owner.namespace).get(&name).await?;
                    if equal(&existing, &candidate) {
                        return Ok(existing);
                    }
                    *collision_count += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Sets a revision's number (a rollback to an old template makes it the newest).
    pub async fn update_revision(
        &self,
        rev: &ControllerRevision,
        revision: i64,
    ) -> Result<ControllerRevision, HistoryError> {
        let ns = rev.metadata.namespace.as_deref().unwrap_or("");
        let name = rev.metadata.name.as_deref().unwrap_or("");
        let patch = json!({"revision": revision});
        Ok(self
            .api(ns)
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?)
    }

    /// Deletes a revision (one already gone is fine).
    pub async fn delete(&self, rev: &ControllerRevision) -> Result<(), HistoryError> {
        let ns = rev.metadata.namespace.as_deref().unwrap_or("");
        let name = rev.metadata.name.as_deref().unwrap_or("");
        match self.api(ns).delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(e) if code(&e) == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The revisions `owner` controls after adopting matching orphans and releasing owned
    /// revisions that stopped matching (upstream's `ClaimControllerRevisions`).
    pub async fn claim(
        &self,
        owner: &Owner,
        deleting: bool,
        selector: &LabelSelector,
        revs: &[Arc<ControllerRevision>],
    ) -> Result<Vec<Arc<ControllerRevision>>, HistoryError> {
        let mut out = Vec::new();
        for r in revs {
            let matches = !selector_is_empty(selector)
                && selector_matches(selector, r.metadata.labels.as_ref());
            let ctrl = r
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.controller == Some(true));
            let name = r.metadata.name.as_deref().unwrap_or("");
            match ctrl {
                Some(o) if o.uid != owner.uid => {}
                Some(_) if matches => out.push(r.clone()),
                Some(_) if !deleting => {
                    let patch = json!({"metadata": {
                        "ownerReferences": [{"$patch": "delete", "uid": owner.uid}],
                        "uid": r.metadata.uid}});
                    match self
                        .api(&owner.namespace)
                        .patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
                        .await
                    {
                        Err(e) if !matches!(code(&e), 404 | 409 | 422) => {
                            return Err(e.into());
                        }
                        _ => {}
                    }
                }
                Some(_) => {}
                None if matches && !deleting && r.metadata.deletion_timestamp.is_none() => {
                    let patch = json!({"metadata": {
                        "ownerReferences": [owner.controller_ref()], "uid": r.metadata.uid}});
                    match self
                        .api(&owner.namespace)
                        .patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
                        .await
                    {
                        Ok(p) => out.push(Arc::new(p)),
                        Err(e) if code(&e) == 404 => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                None => {}
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn owner() -> Owner {
        Owner {
            api_version: "apps/v1".into(),
            kind: "StatefulSet".into(),
            namespace: "default".into(),
            name: "web".into(),
            uid: "u1".into(),
            resource_version: "1".into(),
        }
    }

    #[test]
    fn fnv_matches_the_reference_vectors() {
        assert_eq!(fnv32a(&[b""]), 0x811c_9dc5);
        assert_eq!(fnv32a(&[b"a"]), 0xe40c_292c);
        assert_eq!(fnv32a(&[b"foo", b"bar"]), fnv32a(&[b"foobar"]));
    }

    #[test]
    fn hashes_are_stable_and_follow_data_and_collisions() {
        let t = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}});
        let data = template_patch(&t);
        let h = hash_revision(&data, Some(0));
        assert_eq!(h, hash_revision(&data.clone(), Some(0)));
        assert_ne!(h, hash_revision(&data, Some(1)));
        assert!(h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        let other = template_patch(&json!({"metadata": {"labels": {"app": "x"}}}));
        assert_ne!(h, hash_revision(&other, Some(0)));
        let rev = new_revision(&owner(), &BTreeMap::new(), data.clone(), 1, Some(0));
        assert_eq!(rev.metadata.name.as_deref(), Some(&*format!("web-{h}")));
        assert_eq!(hash_of(&rev), h);
        assert_eq!(template_of(&rev), Some(t));
        let again = new_revision(&owner(), &BTreeMap::new(), data, 2, Some(0));
        assert!(equal(&rev, &again));
        let diff = new_revision(&owner(), &BTreeMap::new(), other, 2, Some(0));
        assert!(!equal(&rev, &diff));
    }

    #[test]
    fn truncation_keeps_live_revisions_and_the_newest() {
        let mut revs: Vec<Arc<ControllerRevision>> = (1..=5)
            .map(|i| {
                Arc::new(new_revision(
                    &owner(),
                    &BTreeMap::new(),
                    json!({"i": i}),
                    i,
                    None,
                ))
            })
            .collect();
        revs.reverse();
        sort(&mut revs);
        assert_eq!(revs[0].revision, 1);
        assert_eq!(next_revision(&revs), 6);
        let live: HashSet<String> = [revs[0].metadata.name.clone().unwrap()].into();
        let gone = to_truncate(&revs, &live, 2);
        let nums: Vec<i64> = gone.iter().map(|r| r.revision).collect();
        assert_eq!(nums, vec![2, 3]);
    }

    #[test]
    fn label_selectors_match_labels_and_expressions() {
        let sel = LabelSelector {
            match_labels: Some([("app".to_string(), "web".to_string())].into()),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "NotIn".into(),
                values: Some(vec!["db".into()]),
            }]),
        };
        let l = |p: &[(&str, &str)]| -> BTreeMap<String, String> {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(selector_matches(&sel, Some(&l(&[("app", "web")]))));
        assert!(!selector_matches(
            &sel,
            Some(&l(&[("app", "web"), ("tier", "db")]))
        ));
        assert!(!selector_matches(&sel, None));
        assert!(selector_is_empty(&LabelSelector::default()));
    }
}
