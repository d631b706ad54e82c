//! The RollingUpdate strategy (upstream's rolling.go): grow the new ReplicaSet as far as
//! maxSurge allows, shrink the old ones as far as maxUnavailable allows (unhealthy
//! replicas first, so they cannot block the rollout), one step per sync.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

use super::sync::Outcome;
use super::util::{self, rs_available, rs_replicas};
use super::{Ctx, SyncError, progress};

/// How far the old ReplicaSets may shrink in total now (upstream's `maxScaledDown` in
/// `reconcileOldReplicaSets`): all replicas minus the minimum available minus the new
/// ReplicaSet's not yet available ones.
pub fn max_scaled_down(d: &Deployment, all_replicas: i32, new_rs: &ReplicaSet) -> i32 {
    let min_available = util::replicas(d) - util::max_unavailable(d);
    let new_unavailable = rs_replicas(new_rs) - rs_available(new_rs);
    all_replicas - min_available - new_unavailable
}

/// The unhealthy replicas to remove from old ReplicaSets (oldest first), at most `max`
/// (upstream's `cleanupUnhealthyReplicas`): `(index, new size)`.
pub fn unhealthy_plan(old: &[&ReplicaSet], max: i32) -> Vec<(usize, i32)> {
    let mut idx: Vec<usize> = (0..old.len()).collect();
    idx.sort_by(|a, b| util::by_creation(old[*a], old[*b]));
    let mut done = 0;
    let mut plan = Vec::new();
    for i in idx {
        if done >= max {
            break;
        }
        let (want, avail) = (rs_replicas(old[i]), rs_available(old[i]));
        if want == 0 || want == avail {
            continue;
        }
        let down = (max - done).min(want - avail);
        plan.push((i, want - down));
        done += down;
    }
    plan
}

/// The old ReplicaSets to shrink while keeping the minimum available (oldest first;
/// upstream's `scaleDownOldReplicaSetsForRollingUpdate`): `(index, new size)`.
pub fn scale_down_plan(d: &Deployment, old: &[&ReplicaSet], available: i32) -> Vec<(usize, i32)> {
    let min_available = util::replicas(d) - util::max_unavailable(d);
    if available <= min_available {
        return Vec::new();
    }
    let total = available - min_available;
    let mut idx: Vec<usize> = (0..old.len()).collect();
    idx.sort_by(|a, b| util::by_creation(old[*a], old[*b]));
    let mut done = 0;
    let mut plan = Vec::new();
    for i in idx {
        if done >= total {
            break;
        }
        let want = rs_replicas(old[i]);
        if want == 0 {
            continue;
        }
        let down = want.min(total - done);
        plan.push((i, want - down));
        done += down;
    }
    plan
}

impl Ctx {
    /// One step of a rolling update (upstream's `rolloutRolling`).
    pub(super) async fn rollout_rolling(
        &self,
        d: &mut Deployment,
        rss: &mut Vec<ReplicaSet>,
    ) -> Outcome {
        let (new, mut old) = self.get_all_and_sync_revision(d, rss, true).await?;
        let Some(mut new) = new else {
            return self.sync_rollout_status(d, &old, None).await;
        };
        if self.reconcile_new(d, &old, &mut new).await? {
            return self.sync_rollout_status(d, &old, Some(&new)).await;
        }
        if self.reconcile_old(d, &mut old, &new).await? {
            return self.sync_rollout_status(d, &old, Some(&new)).await;
        }
        if progress::complete(d, &d.status.clone().unwrap_or_default()) {
            self.cleanup(d, &old).await?;
        }
        self.sync_rollout_status(d, &old, Some(&new)).await
    }

    /// Grows (or trims) the new ReplicaSet (upstream's `reconcileNewReplicaSet`).
    async fn reconcile_new(
        &self,
        d: &Deployment,
        old: &[ReplicaSet],
        new: &mut ReplicaSet,
    ) -> Result<bool, SyncError> {
        let want = util::replicas(d);
        let have = rs_replicas(new);
        if have == want {
            return Ok(false);
        }
        let target = if have > want {
            want
        } else {
            let all: Vec<&ReplicaSet> = old.iter().chain(std::iter::once(&*new)).collect();
            util::new_rs_new_replicas(d, &all, new).map_err(|source| SyncError::Spec {
                key: format!("{:?}", d.metadata.name),
                source,
            })?
        };
        let (scaled, stored) = self.scale_rs_and_record(d, new, target).await?;
        *new = stored;
        Ok(scaled)
    }

    /// Shrinks the old ReplicaSets within maxUnavailable (upstream's
    /// `reconcileOldReplicaSets`).
    async fn reconcile_old(
        &self,
        d: &Deployment,
        old: &mut [ReplicaSet],
        new: &ReplicaSet,
    ) -> Result<bool, SyncError> {
        let active: Vec<usize> = (0..old.len())
            .filter(|i| rs_replicas(&old[*i]) > 0)
            .collect();
        let old_pods: i32 = active.iter().map(|i| rs_replicas(&old[*i])).sum();
        if old_pods == 0 {
            return Ok(false);
        }
        let all_pods = old_pods + rs_replicas(new);
        let max = max_scaled_down(d, all_pods, new);
        if max <= 0 {
            return Ok(false);
        }
        let mut total = 0;
        let plan = {
            let refs: Vec<&ReplicaSet> = active.iter().map(|i| &old[*i]).collect();
            unhealthy_plan(&refs, max)
        };
        for (j, size) in plan {
            let i = active[j];
            total += rs_replicas(&old[i]) - size;
            old[i] = self.scale_rs_and_record(d, &old[i], size).await?.1;
        }
        let plan = {
            let refs: Vec<&ReplicaSet> = active.iter().map(|i| &old[*i]).collect();
            let available: i32 =
                refs.iter().map(|r| rs_available(r)).sum::<i32>() + rs_available(new);
            scale_down_plan(d, &refs, available)
        };
        for (j, size) in plan {
            let i = active[j];
            total += rs_replicas(&old[i]) - size;
            old[i] = self.scale_rs_and_record(d, &old[i], size).await?.1;
        }
        Ok(total > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::util::tests::{deploy, rs};
    use super::*;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    #[test]
    fn old_replicas_go_only_as_far_as_availability_allows() {
        // 3 replicas, maxSurge 1, maxUnavailable 0: old 3 (available), new 1 (not yet).
        let d = deploy(3, IntOrString::Int(1), IntOrString::Int(0));
        let old = rs("old", 1, 3, None);
        let mut new = rs("new", 2, 1, None);
        new.status.as_mut().unwrap().available_replicas = Some(0);
        assert_eq!(
            max_scaled_down(&d, 4, &new),
            0,
            "the new pod is not available yet"
        );
        new.status.as_mut().unwrap().available_replicas = Some(1);
        assert_eq!(max_scaled_down(&d, 4, &new), 1);
        assert_eq!(scale_down_plan(&d, &[&old], 4), vec![(0, 2)]);
    }

    #[test]
    fn unhealthy_old_replicas_go_first_oldest_first() {
        let mut a = rs("a", 1, 2, None);
        a.status.as_mut().unwrap().available_replicas = Some(1);
        let mut b = rs("b", 2, 3, None);
        b.status.as_mut().unwrap().available_replicas = Some(0);
        assert_eq!(unhealthy_plan(&[&b, &a], 2), vec![(1, 1), (0, 2)]);
        assert_eq!(unhealthy_plan(&[&b, &a], 10), vec![(1, 1), (0, 0)]);
    }

    #[test]
    fn percentages_in_a_rollout_of_four() {
        // 25%/25% of 4: surge 1, unavailable 1 → at most 5 pods, at least 3 available.
        let d = deploy(
            4,
            IntOrString::String("25%".into()),
            IntOrString::String("25%".into()),
        );
        let old = rs("old", 1, 4, None);
        let new = rs("new", 2, 0, None);
        assert_eq!(util::new_rs_new_replicas(&d, &[&old, &new], &new), Ok(1));
        assert_eq!(scale_down_plan(&d, &[&old], 4), vec![(0, 3)]);
    }
}
