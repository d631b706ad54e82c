//! A deployment's status and conditions (upstream's progress.go and the status half of
//! sync.go): the replica counts summed over its ReplicaSets, `Available`
//! (MinimumReplicasAvailable/Unavailable), `Progressing` (ReplicaSetUpdated,
//! NewReplicaSetAvailable, ProgressDeadlineExceeded…) against progressDeadlineSeconds, and
//! when to look again for a rollout that might time out.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::util::{self, rs_actual, rs_available, rs_ready, rs_replicas, sum};

/// Condition type: enough replicas are available.
pub const AVAILABLE: &str = "Available";
/// Condition type: the rollout is moving (or stuck).
pub const PROGRESSING: &str = "Progressing";
/// Condition type copied from a ReplicaSet failing to create or delete pods.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// Progressing reason: a ReplicaSet was scaled during the rollout.
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
/// Progressing reason: creating the new ReplicaSet failed.
pub const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";
/// Progressing reason: the new ReplicaSet was created.
pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
/// Progressing reason: an existing ReplicaSet is the new one.
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
/// Progressing reason: the rollout completed.
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
/// Progressing reason: no progress within progressDeadlineSeconds.
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
/// Progressing reason: paused.
pub const PAUSED: &str = "DeploymentPaused";
/// Progressing reason: resumed.
pub const RESUMED: &str = "DeploymentResumed";
/// Available reason: at least replicas - maxUnavailable are available.
pub const MIN_AVAILABLE: &str = "MinimumReplicasAvailable";
/// Available reason: fewer are.
pub const MIN_UNAVAILABLE: &str = "MinimumReplicasUnavailable";

/// A condition stamped now (upstream's `NewDeploymentCondition`).
pub fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: jiff::Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// The condition of this type, if any.
pub fn get<'a>(
    status: Option<&'a DeploymentStatus>,
    type_: &str,
) -> Option<&'a DeploymentCondition> {
    status?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// Sets a condition (upstream's `SetDeploymentCondition`): nothing changes when one with
/// the same status and reason exists; the transition time is kept when only the reason
/// changes; the condition moves to the end.
pub fn set(status: &mut DeploymentStatus, mut c: DeploymentCondition) {
    let conds = status.conditions.get_or_insert_with(Vec::new);
    if let Some(cur) = conds.iter().find(|x| x.type_ == c.type_) {
        if cur.status == c.status && cur.reason == c.reason {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    conds.retain(|x| x.type_ != c.type_);
    conds.push(c);
}

/// Removes the condition of this type.
pub fn remove(status: &mut DeploymentStatus, type_: &str) {
    if let Some(c) = status.conditions.as_mut() {
        c.retain(|x| x.type_ != type_);
        if c.is_empty() {
            status.conditions = None;
        }
    }
}

/// Whether progressDeadlineSeconds is set (and not the "never" value).
pub fn has_progress_deadline(d: &Deployment) -> bool {
    deadline(d).is_some()
}

fn deadline(d: &Deployment) -> Option<i32> {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .filter(|s| *s != i32::MAX)
}

fn omit_zero(v: i32) -> Option<i32> {
    (v != 0).then_some(v)
}

fn n(v: Option<i32>) -> i32 {
    v.unwrap_or(0)
}

/// The status the ReplicaSets give the deployment (upstream's `calculateStatus`); zero
/// counts are left out as the Go types omit them.
pub fn calculate(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    now: jiff::Timestamp,
) -> DeploymentStatus {
    let available = sum(all, rs_available);
    let total = sum(all, rs_replicas);
    let unavailable = (total - available).max(0);
    let old = d.status.as_ref();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation.filter(|g| *g != 0),
        replicas: omit_zero(sum(all, rs_actual)),
        updated_replicas: omit_zero(new_rs.map_or(0, rs_actual)),
        ready_replicas: omit_zero(sum(all, rs_ready)),
        available_replicas: omit_zero(available),
        unavailable_replicas: omit_zero(unavailable),
        collision_count: old.and_then(|s| s.collision_count),
        conditions: old.and_then(|s| s.conditions.clone()),
        terminating_replicas: None,
    };
    let c = if available >= util::replicas(d) - util::max_unavailable(d) {
        condition(
            AVAILABLE,
            "True",
            MIN_AVAILABLE,
            "Deployment has minimum availability.".into(),
            now,
        )
    } else {
        condition(
            AVAILABLE,
            "False",
            MIN_UNAVAILABLE,
            "Deployment does not have minimum availability.".into(),
            now,
        )
    };
    set(&mut status, c);
    status
}

/// Whether the rollout is done (upstream's `DeploymentComplete`).
pub fn complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let want = util::replicas(d);
    n(s.updated_replicas) == want
        && n(s.replicas) == want
        && n(s.available_replicas) == want
        && s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// Whether the new status shows progress over the stored one (upstream's
/// `DeploymentProgressing`).
pub fn progressing(d: &Deployment, s: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let old_old = n(old.replicas) - n(old.updated_replicas);
    let new_old = n(s.replicas) - n(s.updated_replicas);
    n(s.updated_replicas) > n(old.updated_replicas)
        || new_old < old_old
        || n(s.ready_replicas) > n(old.ready_replicas)
        || n(s.available_replicas) > n(old.available_replicas)
}

/// Whether the rollout has gone without progress for longer than its deadline
/// (upstream's `DeploymentTimedOut`).
pub fn timed_out(d: &Deployment, s: &DeploymentStatus, now: jiff::Timestamp) -> bool {
    let Some(secs) = deadline(d) else {
        return false;
    };
    let Some(c) = get(Some(s), PROGRESSING) else {
        return false;
    };
    match c.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => false,
        Some(TIMED_OUT) => true,
        _ => c
            .last_update_time
            .as_ref()
            .is_some_and(|t| t.0.as_second() + i64::from(secs) < now.as_second()),
    }
}

/// The status after a rollout step (upstream's `syncRolloutStatus` up to the write):
/// the Progressing condition moved on as the rollout completes, progresses or times out,
/// and ReplicaSet failures surfaced.
pub fn rollout_status(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    now: jiff::Timestamp,
) -> DeploymentStatus {
    let mut s = calculate(d, all, new_rs, now);
    if !has_progress_deadline(d) {
        remove(&mut s, PROGRESSING);
    }
    let cur = get(d.status.as_ref(), PROGRESSING);
    let finished = n(s.replicas) == n(s.updated_replicas)
        && cur.is_some_and(|c| c.reason.as_deref() == Some(NEW_RS_AVAILABLE));
    let name = d.metadata.name.clone().unwrap_or_default();
    let subject = |verb: &str| match new_rs.and_then(|r| r.metadata.name.as_deref()) {
        Some(rs) => format!("ReplicaSet {rs:?} {verb}"),
        None => format!("Deployment {name:?} {verb}"),
    };
    if has_progress_deadline(d) && !finished {
        if complete(d, &s) {
            let c = condition(
                PROGRESSING,
                "True",
                NEW_RS_AVAILABLE,
                subject("has successfully progressed."),
                now,
            );
            set(&mut s, c);
        } else if progressing(d, &s) {
            let mut c = condition(
                PROGRESSING,
                "True",
                RS_UPDATED,
                subject("is progressing."),
                now,
            );
            if let Some(cur) = cur {
                if cur.status == "True" {
                    c.last_transition_time = cur.last_transition_time.clone();
                }
                remove(&mut s, PROGRESSING);
            }
            set(&mut s, c);
        } else if timed_out(d, &s, now) {
            let c = condition(
                PROGRESSING,
                "False",
                TIMED_OUT,
                subject("has timed out progressing."),
                now,
            );
            set(&mut s, c);
        }
    }
    match replica_failure(all, new_rs) {
        Some(c) => set(&mut s, c),
        None => remove(&mut s, REPLICA_FAILURE),
    }
    s
}

/// The first ReplicaFailure condition of the new ReplicaSet, else of any of them.
fn replica_failure(
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
) -> Option<DeploymentCondition> {
    let failure = |rs: &ReplicaSet| {
        rs.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == REPLICA_FAILURE)
            .map(|c| DeploymentCondition {
                type_: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
                last_update_time: c.last_transition_time.clone(),
                last_transition_time: c.last_transition_time.clone(),
            })
    };
    new_rs
        .and_then(failure)
        .or_else(|| all.iter().find_map(|r| failure(r)))
}

/// When to look again at a rollout that has not progressed, to notice its deadline
/// (upstream's `requeueStuckDeployment`); `None` when there is nothing to watch for.
pub fn requeue_after(
    d: &Deployment,
    s: &DeploymentStatus,
    now: jiff::Timestamp,
) -> Option<Duration> {
    let secs = deadline(d)?;
    let cur = get(d.status.as_ref(), PROGRESSING)?;
    if complete(d, s) || cur.reason.as_deref() == Some(TIMED_OUT) {
        return None;
    }
    let from = cur.last_update_time.as_ref()?.0;
    let at = from.as_millisecond() + i64::from(secs) * 1000;
    let left = at - now.as_millisecond();
    Some(Duration::from_millis(left.max(1000) as u64))
}

/// Whether two statuses differ beyond the stamps of conditions that did not change.
pub fn same(a: Option<&DeploymentStatus>, b: &DeploymentStatus) -> bool {
    let norm = |s: &DeploymentStatus| {
        let mut s = s.clone();
        for v in [
            &mut s.replicas,
            &mut s.updated_replicas,
            &mut s.ready_replicas,
            &mut s.available_replicas,
            &mut s.unavailable_replicas,
        ] {
            if *v == Some(0) {
                *v = None;
            }
        }
        if s.observed_generation == Some(0) {
            s.observed_generation = None;
        }
        if s.conditions.as_ref().is_some_and(|c| c.is_empty()) {
            s.conditions = None;
        }
        s.terminating_replicas = None;
        s
    };
    norm(&a.cloned().unwrap_or_default()) == norm(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn t(s: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(s).unwrap()
    }

    fn deploy(replicas: i32) -> Deployment {
        let mut d = super::super::util::tests::deploy(
            replicas,
            IntOrString::String("25%".into()),
            IntOrString::String("25%".into()),
        );
        d.metadata.generation = Some(1);
        d.spec.as_mut().unwrap().progress_deadline_seconds = Some(10);
        d
    }

    fn rs(name: &str, replicas: i32, available: i32) -> ReplicaSet {
        let mut r = super::super::util::tests::rs(name, 1, replicas, None);
        r.status.as_mut().unwrap().available_replicas = Some(available);
        r.status.as_mut().unwrap().ready_replicas = Some(available);
        r
    }

    #[test]
    fn status_sums_the_replica_sets_and_sets_availability() {
        let d = deploy(4);
        let old = rs("old", 2, 2);
        let new = rs("new", 2, 0);
        let s = calculate(&d, &[&old, &new], Some(&new), t(100));
        assert_eq!(s.replicas, Some(4));
        assert_eq!(s.updated_replicas, Some(2));
        assert_eq!(s.available_replicas, Some(2));
        assert_eq!(s.unavailable_replicas, Some(2));
        assert_eq!(s.observed_generation, Some(1));
        let a = get(Some(&s), AVAILABLE).unwrap();
        assert_eq!(a.status, "False", "4 - 1 unavailable allowed > 2 available");
        assert_eq!(a.reason.as_deref(), Some(MIN_UNAVAILABLE));
        assert_eq!(
            a.message.as_deref(),
            Some("Deployment does not have minimum availability.")
        );
    }

    #[test]
    fn progressing_moves_from_updated_to_available_or_timed_out() {
        let mut d = deploy(2);
        let new = rs("web-abc", 2, 0);
        let mut st = DeploymentStatus::default();
        set(
            &mut st,
            condition(PROGRESSING, "True", NEW_RS_CREATED, "x".into(), t(100)),
        );
        d.status = Some(st);
        // No progress within the deadline: timed out.
        let s = rollout_status(&d, &[&new], Some(&new), t(105));
        assert_eq!(
            get(Some(&s), PROGRESSING).unwrap().reason.as_deref(),
            Some(RS_UPDATED),
            "replicas went 0 → 2"
        );
        d.status = Some(s);
        let s = rollout_status(&d, &[&new], Some(&new), t(106));
        assert!(same(d.status.as_ref(), &s), "no progress, no change");
        assert!(requeue_after(&d, &s, t(106)).is_some());
        let s = rollout_status(&d, &[&new], Some(&new), t(200));
        let c = get(Some(&s), PROGRESSING).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref()),
            ("False", Some(TIMED_OUT))
        );
        assert_eq!(
            c.message.as_deref(),
            Some("ReplicaSet \"web-abc\" has timed out progressing.")
        );
        // Once available: complete.
        let done = rs("web-abc", 2, 2);
        d.status = Some(s);
        let s = rollout_status(&d, &[&done], Some(&done), t(201));
        let c = get(Some(&s), PROGRESSING).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref()),
            ("True", Some(NEW_RS_AVAILABLE))
        );
        assert_eq!(
            c.message.as_deref(),
            Some("ReplicaSet \"web-abc\" has successfully progressed.")
        );
        assert!(requeue_after(&d, &s, t(201)).is_none());
    }

    #[test]
    fn set_keeps_the_transition_time_when_the_status_stays() {
        let mut s = DeploymentStatus::default();
        set(
            &mut s,
            condition(PROGRESSING, "True", NEW_RS_CREATED, "a".into(), t(1)),
        );
        set(
            &mut s,
            condition(PROGRESSING, "True", NEW_RS_CREATED, "b".into(), t(2)),
        );
        assert_eq!(
            get(Some(&s), PROGRESSING).unwrap().message.as_deref(),
            Some("a")
        );
        set(
            &mut s,
            condition(PROGRESSING, "True", RS_UPDATED, "c".into(), t(3)),
        );
        let c = get(Some(&s), PROGRESSING).unwrap();
        assert_eq!(c.last_transition_time, Some(Time(t(1))));
        assert_eq!(c.last_update_time, Some(Time(t(3))));
    }
}
