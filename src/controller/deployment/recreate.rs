//! The Recreate strategy (upstream's recreate.go): every old ReplicaSet to zero, wait
//! until none of their pods is left, then create (or grow) the new one to full size.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;

use super::sync::Outcome;
use super::util::{self, rs_actual, rs_replicas};
use super::{Ctx, controller_ref, progress};
use crate::controller::informer::BY_OWNER;

/// Whether old pods may still run (upstream's `oldPodsRunning`): an old ReplicaSet still
/// reports replicas, or one of its pods is not finished (terminating ones count).
pub fn old_pods_running(old: &[&ReplicaSet], pods_of: impl Fn(&ReplicaSet) -> Vec<Pod>) -> bool {
    if old.iter().map(|r| rs_actual(r)).sum::<i32>() > 0 {
        return true;
    }
    old.iter().any(|rs| {
        pods_of(rs).iter().any(|p| {
            !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        })
    })
}

impl Ctx {
    /// The pods controlled by `rs`, from the shared pod cache.
    fn pods_of(&self, rs: &ReplicaSet) -> Vec<Pod> {
        let Some(uid) = rs.metadata.uid.as_deref() else {
            return Vec::new();
        };
        self.pods
            .by_index(BY_OWNER, uid)
            .into_iter()
            .filter(|p| {
                controller_ref(p.metadata.owner_references.as_ref()).is_some_and(|r| r.uid == uid)
            })
            .map(|p| (*p).clone())
            .collect()
    }

    /// One step of a Recreate rollout (upstream's `rolloutRecreate`).
    pub(super) async fn rollout_recreate(
        &self,
        d: &mut Deployment,
        rss: &mut Vec<ReplicaSet>,
    ) -> Outcome {
        let (mut new, mut old) = self.get_all_and_sync_revision(d, rss, false).await?;
        let mut scaled = false;
        for rs in old.iter_mut().filter(|r| rs_replicas(r) > 0) {
            let (s, stored) = self.scale_rs_and_record(d, rs, 0).await?;
            scaled |= s;
            *rs = stored;
        }
        if scaled {
            return self.sync_rollout_status(d, &old, new.as_ref()).await;
        }
        let running = {
            let refs: Vec<&ReplicaSet> = old.iter().collect();
            old_pods_running(&refs, |rs| self.pods_of(rs))
        };
        if running {
            return self.sync_rollout_status(d, &old, new.as_ref()).await;
        }
        if new.is_none() {
            (new, old) = self.get_all_and_sync_revision(d, rss, true).await?;
        }
        if let Some(n) = new.as_mut() {
            *n = self.scale_rs_and_record(d, n, util::replicas(d)).await?.1;
        }
        if progress::complete(d, &d.status.clone().unwrap_or_default()) {
            self.cleanup(d, &old).await?;
        }
        self.sync_rollout_status(d, &old, new.as_ref()).await
    }
}

#[cfg(test)]
mod tests {
    use super::super::util::tests::rs;
    use super::*;
    use k8s_openapi::api::core::v1::PodStatus;

    fn pod(phase: &str) -> Pod {
        Pod {
            status: Some(PodStatus {
                phase: Some(phase.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn old_pods_block_the_new_replica_set_until_finished() {
        let mut old = rs("old", 1, 0, None);
        old.status.as_mut().unwrap().replicas = 1;
        assert!(
            old_pods_running(&[&old], |_| vec![]),
            "status still counts one"
        );
        old.status.as_mut().unwrap().replicas = 0;
        assert!(old_pods_running(&[&old], |_| vec![pod("Running")]));
        assert!(!old_pods_running(&[&old], |_| vec![
            pod("Succeeded"),
            pod("Failed")
        ]));
        assert!(!old_pods_running(&[&old], |_| vec![]));
    }
}
