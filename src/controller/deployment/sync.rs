//! One sync of a deployment (upstream's deployment_controller.go `syncDeployment` and
//! sync.go): claiming ReplicaSets, finding or creating the new one with its revision,
//! scaling without a rollout (proportionally while several are active), the paused
//! condition, history cleanup, and writing the status.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube_client::Api;

use super::progress::{self, PROGRESSING};
use super::util::{self, rs_replicas};
use super::{API_VERSION, Ctx, KIND, SyncError, controller_ref};
use crate::controller::informer::{BY_NAMESPACE, ObjectKey};
use crate::controller::{Action, code};

/// What a rollout step ends with: the status written, and a requeue while a progress
/// deadline may pass.
pub type Outcome = Result<Action, SyncError>;

/// The old ReplicaSets a completed rollout deletes beyond `revisionHistoryLimit` (upstream's
/// `cleanupDeployment`): the lowest revisions first, only those scaled to zero with no
/// pods left and their status caught up.
pub fn cleanup_victims<'a>(d: &Deployment, old: &[&'a ReplicaSet]) -> Vec<&'a ReplicaSet> {
    let Some(limit) = d
        .spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .filter(|l| *l != i32::MAX)
    else {
        return Vec::new();
    };
    let mut alive: Vec<&ReplicaSet> = old
        .iter()
        .copied()
        .filter(|r| r.metadata.deletion_timestamp.is_none())
        .collect();
    let diff = alive.len() as i64 - i64::from(limit);
    if diff <= 0 {
        return Vec::new();
    }
    alive.sort_by(|a, b| util::by_revision(a, b));
    alive
        .into_iter()
        .take(diff as usize)
        .filter(|rs| {
            let observed = rs.status.as_ref().and_then(|s| s.observed_generation);
            util::rs_actual(rs) == 0
                && rs_replicas(rs) == 0
                && rs.metadata.generation.unwrap_or(0) <= observed.unwrap_or(0)
        })
        .collect()
}

/// The ReplicaSet a deployment creates for its current template (name, hash label in
/// labels, selector and template, controller reference, zero replicas for now).
pub fn new_replica_set(d: &Deployment) -> ReplicaSet {
    let spec = d.spec.clone().unwrap_or_default();
    let mut template = spec.template.clone();
    let hash = util::compute_hash(&template, d.status.as_ref().and_then(|s| s.collision_count));
    let meta = template.metadata.get_or_insert_with(Default::default);
    let mut labels = meta.labels.clone().unwrap_or_default();
    labels.insert(util::POD_TEMPLATE_HASH.into(), hash.clone());
    meta.labels = Some(labels.clone());
    let mut selector = spec.selector.clone();
    selector
        .match_labels
        .get_or_insert_with(BTreeMap::new)
        .insert(util::POD_TEMPLATE_HASH.into(), hash.clone());
    let name = d.metadata.name.clone().unwrap_or_default();
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("{name}-{hash}")),
            namespace: d.metadata.namespace.clone(),
            labels: Some(labels),
            owner_references: Some(vec![OwnerReference {
                api_version: API_VERSION.into(),
                kind: KIND.into(),
                name,
                uid: d.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(0),
            min_ready_seconds: spec.min_ready_seconds,
            selector,
            template: Some(template),
        }),
        status: None,
    }
}

fn set_revision(d: &mut Deployment, rev: &str) -> bool {
    let a = d.metadata.annotations.get_or_insert_with(BTreeMap::new);
    if a.get(util::REVISION).map(String::as_str) == Some(rev) {
        return false;
    }
    a.insert(util::REVISION.into(), rev.into());
    true
}

fn key_of(d: &Deployment) -> String {
    format!(
        "{}/{}",
        d.metadata.namespace.as_deref().unwrap_or(""),
        d.metadata.name.as_deref().unwrap_or("")
    )
}

fn refs(old: &[ReplicaSet], new: Option<&ReplicaSet>) -> Vec<ReplicaSet> {
    let mut all: Vec<ReplicaSet> = old.to_vec();
    all.extend(new.cloned());
    all
}

impl Ctx {
    /// Reconciles one deployment (upstream's `syncDeployment`).
    pub(super) async fn sync(&self, key: &ObjectKey) -> Outcome {
        let Some(cached) = self.deploys.get(key) else {
            return Ok(Action::Done);
        };
        let mut d = (*cached).clone();
        let selector = d.spec.as_ref().map(|s| &s.selector);
        if util::selects_everything(selector) {
            self.event(
                &d,
                "Warning",
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.",
            )
            .await;
            let observed = d.status.as_ref().and_then(|s| s.observed_generation);
            if observed.unwrap_or(0) < d.metadata.generation.unwrap_or(0) {
                d.status
                    .get_or_insert_with(Default::default)
                    .observed_generation = d.metadata.generation;
                self.update_status(&mut d).await?;
            }
            return Ok(Action::Done);
        }
        let mut rss = self.claim_replica_sets(&d).await?;
        if d.metadata.deletion_timestamp.is_some() {
            let (new, old) = self
                .get_all_and_sync_revision(&mut d, &mut rss, false)
                .await?;
            self.sync_status(&mut d, &old, new.as_ref()).await?;
            return Ok(Action::Done);
        }
        self.check_paused(&mut d).await?;
        let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
        if paused || self.is_scaling_event(&mut d, &mut rss).await? {
            self.sync_scale(&mut d, &mut rss, paused).await?;
            return Ok(Action::Done);
        }
        if util::is_recreate(&d) {
            self.rollout_recreate(&mut d, &mut rss).await
        } else {
            self.rollout_rolling(&mut d, &mut rss).await
        }
    }

    /// The ReplicaSets this deployment controls after adopting matching orphans and
    /// releasing owned ones that stopped matching (upstream's `ClaimReplicaSets`).
    async fn claim_replica_sets(&self, d: &Deployment) -> Result<Vec<ReplicaSet>, SyncError> {
        let ns = d.metadata.namespace.as_deref().unwrap_or("");
        let uid = d.metadata.uid.clone().unwrap_or_default();
        let selector = d.spec.as_ref().map(|s| &s.selector);
        let deleting = d.metadata.deletion_timestamp.is_some();
        let mut claimed = Vec::new();
        let mut adopt_ok: Option<bool> = None;
        for rs in self.rss.by_index(BY_NAMESPACE, ns) {
            let matches = util::selector_matches(selector, rs.metadata.labels.as_ref()).map_err(
                |source| SyncError::Spec {
                    key: key_of(d),
                    source,
                },
            )?;
            match controller_ref(rs.metadata.owner_references.as_ref()) {
                Some(r) if r.uid != uid => continue,
                Some(_) if matches => claimed.push((*rs).clone()),
                Some(_) => {
                    if !deleting {
                        self.release(&rs, &uid).await?;
                    }
                }
                None => {
                    if deleting || !matches || rs.metadata.deletion_timestamp.is_some() {
                        continue;
                    }
                    if adopt_ok.is_none() {
                        adopt_ok = Some(self.can_adopt(d).await?);
                    }
                    if adopt_ok == Some(true)
                        && let Some(adopted) = self.adopt(d, &rs).await?
                    {
                        claimed.push(adopted);
                    }
                }
            }
        }
        Ok(claimed)
    }

    /// A fresh read of the deployment before adopting: the same one, not being deleted.
    async fn can_adopt(&self, d: &Deployment) -> Result<bool, SyncError> {
        let ns = d.metadata.namespace.as_deref().unwrap_or("");
        let name = d.metadata.name.as_deref().unwrap_or("");
        let fresh = Api::<Deployment>::namespaced(self.client.clone(), ns)
            .get(name)
            .await
            .map_err(super::api(format!("reading deployment {ns}/{name}")))?;
        let (got, wanted) = (
            fresh.metadata.uid.clone().unwrap_or_default(),
            d.metadata.uid.clone().unwrap_or_default(),
        );
        if got != wanted {
            return Err(SyncError::OwnerGone {
                key: key_of(d),
                got,
                wanted,
            });
        }
        Ok(fresh.metadata.deletion_timestamp.is_none())
    }

    /// Makes the deployment the controller of an orphan ReplicaSet.
    async fn adopt(
        &self,
        d: &Deployment,
        rs: &ReplicaSet,
    ) -> Result<Option<ReplicaSet>, SyncError> {
        let mut next = rs.clone();
        next.metadata
            .owner_references
            .get_or_insert_with(Vec::new)
            .push(OwnerReference {
                api_version: API_VERSION.into(),
                kind: KIND.into(),
                name: d.metadata.name.clone().unwrap_or_default(),
                uid: d.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            });
        match self.update_rs(&next).await {
            Ok(stored) => Ok(Some(stored)),
            Err(SyncError::Api { source, .. }) if code(&source) == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes the deployment's reference from a ReplicaSet that no longer matches.
    async fn release(&self, rs: &ReplicaSet, uid: &str) -> Result<(), SyncError> {
        let mut next = rs.clone();
        if let Some(refs) = next.metadata.owner_references.as_mut() {
            refs.retain(|r| r.uid != uid);
        }
        match self.update_rs(&next).await {
            Err(SyncError::Api { source, .. }) if matches!(code(&source), 404 | 409 | 422) => {
                Ok(())
            }
            r => r.map(|_| ()),
        }
    }

    /// The new ReplicaSet (created if asked and missing) and the old ones, with the
    /// revisions brought up to date (upstream's `getAllReplicaSetsAndSyncRevision`).
    /// `rss` is kept current with what was written.
    pub(super) async fn get_all_and_sync_revision(
        &self,
        d: &mut Deployment,
        rss: &mut Vec<ReplicaSet>,
        create: bool,
    ) -> Result<(Option<ReplicaSet>, Vec<ReplicaSet>), SyncError> {
        let new_idx = util::find_new(d, rss);
        let old: Vec<ReplicaSet> = rss
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != new_idx)
            .map(|(_, r)| r.clone())
            .collect();
        let new = self.get_new_rs(d, rss, new_idx, &old, create).await?;
        Ok((new, old))
    }

    /// Upstream's `getNewReplicaSet`.
    async fn get_new_rs(
        &self,
        d: &mut Deployment,
        rss: &mut Vec<ReplicaSet>,
        existing: Option<usize>,
        old: &[ReplicaSet],
        create: bool,
    ) -> Result<Option<ReplicaSet>, SyncError> {
        let old_refs: Vec<&ReplicaSet> = old.iter().collect();
        let new_revision = util::max_revision(&old_refs) + 1;
        let deadline = progress::has_progress_deadline(d);
        let min_ready = d.spec.as_ref().and_then(|s| s.min_ready_seconds);
        if let Some(i) = existing {
            let mut copy = rss[i].clone();
            let changed = util::set_new_rs_annotations(d, &mut copy, new_revision, true);
            let spec = copy.spec.get_or_insert_with(Default::default);
            if changed || spec.min_ready_seconds.unwrap_or(0) != min_ready.unwrap_or(0) {
                spec.min_ready_seconds = min_ready;
                let stored = self.update_rs(&copy).await?;
                rss[i] = stored.clone();
                return Ok(Some(stored));
            }
            let rev = copy
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(util::REVISION))
                .cloned()
                .unwrap_or_default();
            let mut needs = set_revision(d, &rev);
            if deadline && progress::get(d.status.as_ref(), PROGRESSING).is_none() {
                let name = copy.metadata.name.clone().unwrap_or_default();
                let c = progress::condition(
                    PROGRESSING,
                    "True",
                    progress::FOUND_NEW_RS,
                    format!("Found new replica set {name:?}"),
                    jiff::Timestamp::now(),
                );
                progress::set(d.status.get_or_insert_with(Default::default), c);
                needs = true;
            }
            if needs {
                self.update_status(d).await?;
            }
            return Ok(Some(copy));
        }
        if !create {
            return Ok(None);
        }
        let mut rs = new_replica_set(d);
        let name = rs.metadata.name.clone().unwrap_or_default();
        let mut all: Vec<&ReplicaSet> = old_refs.clone();
        all.push(&rs);
        let count = util::new_rs_new_replicas(d, &all, &rs).map_err(|source| SyncError::Spec {
            key: key_of(d),
            source,
        })?;
        if let Some(s) = rs.spec.as_mut() {
            s.replicas = Some(count);
        }
        util::set_new_rs_annotations(d, &mut rs, new_revision, false);
        let mut already = false;
        let created = match self.create_rs(&rs).await {
            Ok(c) => c,
            Err(e) if code(&e) == 409 => {
                let ns = d.metadata.namespace.clone().unwrap_or_default();
                let Some(found) = self.rss.get(&ObjectKey::new(&ns, &name)) else {
                    return Err(super::api(format!("reading replicaset {ns}/{name}"))(e));
                };
                let ours = controller_ref(found.metadata.owner_references.as_ref())
                    .is_some_and(|r| Some(&r.uid) == d.metadata.uid.as_ref());
                let same = found
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .zip(d.spec.as_ref().map(|s| &s.template))
                    .is_some_and(|(a, b)| util::equal_ignore_hash(a, b));
                if !(ours && same) {
                    let st = d.status.get_or_insert_with(Default::default);
                    st.collision_count = Some(st.collision_count.unwrap_or(0) + 1);
                    self.update_status(d).await?;
                    return Err(SyncError::Collision { name });
                }
                already = true;
                (*found).clone()
            }
            Err(e) if namespace_terminating(&e) => {
                return Err(super::api(format!("creating replicaset {name}"))(e));
            }
            Err(e) => {
                let why = crate::controller::informer::api_status(&e)
                    .map(|s| s.message.clone())
                    .unwrap_or_else(|| e.to_string());
                let msg = format!("Failed to create new replica set {name:?}: {why}");
                if deadline {
                    let c = progress::condition(
                        PROGRESSING,
                        "False",
                        progress::FAILED_RS_CREATE,
                        msg.clone(),
                        jiff::Timestamp::now(),
                    );
                    progress::set(d.status.get_or_insert_with(Default::default), c);
                    let _ = self.update_status(d).await;
                }
                self.event(d, "Warning", progress::FAILED_RS_CREATE, &msg)
                    .await;
                return Err(super::api(format!("creating replicaset {name}"))(e));
            }
        };
        if !already && count > 0 {
            self.event(
                d,
                "Normal",
                "ScalingReplicaSet",
                &format!("Scaled up replica set {name} to {count}"),
            )
            .await;
        }
        let mut needs = set_revision(d, &new_revision.to_string());
        if !already && deadline {
            let c = progress::condition(
                PROGRESSING,
                "True",
                progress::NEW_RS_CREATED,
                format!("Created new replica set {name:?}"),
                jiff::Timestamp::now(),
            );
            progress::set(d.status.get_or_insert_with(Default::default), c);
            needs = true;
        }
        if needs {
            self.update_status(d).await?;
        }
        if !rss.iter().any(|r| r.metadata.name == created.metadata.name) {
            rss.push(created.clone());
        }
        Ok(Some(created))
    }

    /// Whether `replicas` changed since the active ReplicaSets were last scaled (upstream's
    /// `isScalingEvent`).
    async fn is_scaling_event(
        &self,
        d: &mut Deployment,
        rss: &mut Vec<ReplicaSet>,
    ) -> Result<bool, SyncError> {
        let (new, old) = self.get_all_and_sync_revision(d, rss, false).await?;
        let all = refs(&old, new.as_ref());
        let all: Vec<&ReplicaSet> = all.iter().collect();
        let want = util::replicas(d);
        Ok(util::active(&all)
            .iter()
            .any(|rs| util::desired_annotation(rs).is_some_and(|v| v != want)))
    }

    /// Scaling without a rollout (upstream's `sync`): paused or resized deployments.
    async fn sync_scale(
        &self,
        d: &mut Deployment,
        rss: &mut Vec<ReplicaSet>,
        paused: bool,
    ) -> Result<(), SyncError> {
        let (mut new, mut old) = self.get_all_and_sync_revision(d, rss, false).await?;
        self.scale(d, &mut new, &mut old).await?;
        if paused {
            self.cleanup(d, &old).await?;
        }
        self.sync_status(d, &old, new.as_ref()).await
    }

    /// Upstream's `scale`: the only active (or newest) ReplicaSet takes all replicas; a
    /// saturated new one sends the old to zero; else rolling deployments scale every
    /// active ReplicaSet in proportion.
    async fn scale(
        &self,
        d: &Deployment,
        new: &mut Option<ReplicaSet>,
        old: &mut [ReplicaSet],
    ) -> Result<(), SyncError> {
        let want = util::replicas(d);
        let target = {
            let old_refs: Vec<&ReplicaSet> = old.iter().collect();
            util::active_or_latest(new.as_ref(), &old_refs)
                .map(|r| (r.metadata.name.clone(), rs_replicas(r)))
        };
        if let Some((name, size)) = target {
            if size == want {
                return Ok(());
            }
            let slot = slot(new, old, name.as_deref());
            if let Some(rs) = slot {
                *rs = self.scale_rs_and_record(d, rs, want).await?.1;
            }
            return Ok(());
        }
        if util::is_saturated(d, new.as_ref()) {
            for rs in old.iter_mut().filter(|r| rs_replicas(r) > 0) {
                *rs = self.scale_rs_and_record(d, rs, 0).await?.1;
            }
            return Ok(());
        }
        if util::is_recreate(d) {
            return Ok(());
        }
        let (sizes, op) = {
            let all: Vec<&ReplicaSet> = old.iter().chain(new.iter()).collect();
            util::proportional_sizes(d, &util::active(&all))
        };
        for (name, size) in sizes {
            if let Some(rs) = slot(new, old, Some(&name)) {
                *rs = self.scale_rs(d, rs, size, op).await?.1;
            }
        }
        Ok(())
    }

    /// Deletes the old ReplicaSets beyond the history limit.
    pub(super) async fn cleanup(
        &self,
        d: &Deployment,
        old: &[ReplicaSet],
    ) -> Result<(), SyncError> {
        let old: Vec<&ReplicaSet> = old.iter().collect();
        for rs in cleanup_victims(d, &old) {
            tracing::debug!(rs = ?rs.metadata.name, "deleting old replica set beyond the history limit");
            self.delete_rs(rs).await?;
        }
        Ok(())
    }

    /// Sets the paused or resumed Progressing condition (upstream's `checkPausedConditions`).
    async fn check_paused(&self, d: &mut Deployment) -> Result<(), SyncError> {
        if !progress::has_progress_deadline(d) {
            return Ok(());
        }
        let cond = progress::get(d.status.as_ref(), PROGRESSING);
        let reason = cond.and_then(|c| c.reason.as_deref());
        if reason == Some(progress::TIMED_OUT) {
            return Ok(());
        }
        let paused_cond = reason == Some(progress::PAUSED);
        let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
        let c = if paused && !paused_cond {
            (progress::PAUSED, "Deployment is paused")
        } else if !paused && paused_cond {
            (progress::RESUMED, "Deployment is resumed")
        } else {
            return Ok(());
        };
        let c = progress::condition(
            PROGRESSING,
            "Unknown",
            c.0,
            c.1.into(),
            jiff::Timestamp::now(),
        );
        progress::set(d.status.get_or_insert_with(Default::default), c);
        self.update_status(d).await
    }

    /// Writes the status the ReplicaSets give (upstream's `syncDeploymentStatus`).
    pub(super) async fn sync_status(
        &self,
        d: &mut Deployment,
        old: &[ReplicaSet],
        new: Option<&ReplicaSet>,
    ) -> Result<(), SyncError> {
        let all: Vec<&ReplicaSet> = old.iter().chain(new).collect();
        let s = progress::calculate(d, &all, new, jiff::Timestamp::now());
        if progress::same(d.status.as_ref(), &s) {
            return Ok(());
        }
        d.status = Some(s);
        self.update_status(d).await
    }

    /// Writes the status after a rollout step (upstream's `syncRolloutStatus`); asks to
    /// be looked at again when a stuck rollout may pass its deadline.
    pub(super) async fn sync_rollout_status(
        &self,
        d: &mut Deployment,
        old: &[ReplicaSet],
        new: Option<&ReplicaSet>,
    ) -> Outcome {
        let now = jiff::Timestamp::now();
        let all: Vec<&ReplicaSet> = old.iter().chain(new).collect();
        let s = progress::rollout_status(d, &all, new, now);
        if progress::same(d.status.as_ref(), &s) {
            return Ok(match progress::requeue_after(d, &s, now) {
                Some(after) => Action::RequeueAfter(after.max(Duration::from_secs(1))),
                None => Action::Done,
            });
        }
        d.status = Some(s);
        self.update_status(d).await?;
        Ok(Action::Done)
    }
}

/// The ReplicaSet named `name` among the new and old ones, to replace after a write.
fn slot<'a>(
    new: &'a mut Option<ReplicaSet>,
    old: &'a mut [ReplicaSet],
    name: Option<&str>,
) -> Option<&'a mut ReplicaSet> {
    if new
        .as_ref()
        .is_some_and(|n| n.metadata.name.as_deref() == name)
    {
        return new.as_mut();
    }
    old.iter_mut().find(|r| r.metadata.name.as_deref() == name)
}

fn namespace_terminating(e: &kube_client::Error) -> bool {
    crate::controller::informer::api_status(e)
        .is_some_and(|s| s.code == 403 && s.message.contains("because it is being terminated"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn old(name: &str, rev: i64, replicas: i32) -> ReplicaSet {
        let mut r = super::super::util::tests::rs(name, rev, replicas, None);
        r.metadata.annotations = Some([(util::REVISION.to_string(), rev.to_string())].into());
        r
    }

    #[test]
    fn cleanup_deletes_the_oldest_empty_revisions_beyond_the_limit() {
        let mut d = super::super::util::tests::deploy(2, IntOrString::Int(1), IntOrString::Int(0));
        d.spec.as_mut().unwrap().revision_history_limit = Some(1);
        let (a, b, c) = (old("a", 1, 0), old("b", 2, 1), old("c", 3, 0));
        let victims: Vec<_> = cleanup_victims(&d, &[&c, &b, &a])
            .into_iter()
            .map(|r| r.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(
            victims,
            vec!["a"],
            "b still has replicas; c is within the limit"
        );
        d.spec.as_mut().unwrap().revision_history_limit = None;
        assert!(cleanup_victims(&d, &[&a, &b, &c]).is_empty());
    }

    #[test]
    fn the_new_replica_set_carries_the_hash_everywhere() {
        let mut d = super::super::util::tests::deploy(2, IntOrString::Int(1), IntOrString::Int(0));
        d.metadata.uid = Some("u1".into());
        d.spec.as_mut().unwrap().selector.match_labels =
            Some([("app".to_string(), "web".to_string())].into());
        d.spec.as_mut().unwrap().template.metadata = Some(ObjectMeta {
            labels: Some([("app".to_string(), "web".to_string())].into()),
            ..Default::default()
        });
        let rs = new_replica_set(&d);
        let hash = util::compute_hash(&d.spec.as_ref().unwrap().template, None);
        assert_eq!(rs.metadata.name, Some(format!("web-{hash}")));
        let spec = rs.spec.as_ref().unwrap();
        let sel = spec.selector.match_labels.as_ref().unwrap();
        assert_eq!(sel.get(util::POD_TEMPLATE_HASH), Some(&hash));
        let tl = spec
            .template
            .as_ref()
            .unwrap()
            .metadata
            .as_ref()
            .unwrap()
            .labels
            .as_ref()
            .unwrap();
        assert_eq!(tl.get(util::POD_TEMPLATE_HASH), Some(&hash));
        assert_eq!(tl.get("app").map(String::as_str), Some("web"));
        let owner = &rs.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("Deployment", "u1", Some(true))
        );
        assert!(util::equal_ignore_hash(
            spec.template.as_ref().unwrap(),
            &d.spec.as_ref().unwrap().template
        ));
        let mut collided = d.clone();
        collided.status = Some(k8s_openapi::api::apps::v1::DeploymentStatus {
            collision_count: Some(1),
            ..Default::default()
        });
        assert_ne!(new_replica_set(&collided).metadata.name, rs.metadata.name);
    }
}
