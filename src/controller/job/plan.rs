//! One sync of a Job as a pure computation (upstream's syncJob,
//! trackJobStatusAndRemoveFinalizers, manageJob and the success/failure rules): from the
//! Job, its pods and the time, what to write, which finalizers to drop, which pods to
//! create or delete, which Events to record, and when to look again.
//!
//! Counting follows upstream's finalizer protocol: a finished pod that still carries
//! `batch.kubernetes.io/job-tracking` is first recorded in
//! `status.uncountedTerminatedPods` (the interim status), then its finalizer is removed,
//! then it moves into `succeeded`/`failed` (the final status). A crash between the steps
//! neither loses nor double-counts a pod.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::indexed::{self, failure_count, index_of, is_indexed};
use super::pod_failure_policy::{self, Action as PolicyAction};
use crate::apiserver::kinds::batch::job::{TRACKING_FINALIZER, format_indexes, parse_indexes};
use crate::controller::podcontrol;

/// Condition types and reasons (upstream's batch constants).
pub mod reason {
    /// The Job finished successfully.
    pub const COMPLETE: &str = "Complete";
    /// The Job failed.
    pub const FAILED: &str = "Failed";
    /// Success decided; pods are still terminating.
    pub const SUCCESS_CRITERIA_MET: &str = "SuccessCriteriaMet";
    /// Failure decided; pods are still terminating.
    pub const FAILURE_TARGET: &str = "FailureTarget";
    /// The Job is suspended.
    pub const SUSPENDED: &str = "Suspended";
}

/// The longest delay before a failed pod is replaced (upstream's MaxJobPodFailureBackOff).
const MAX_BACKOFF_SECONDS: i64 = 600;

/// What one sync computes.
#[derive(Debug, Clone, Default)]
pub struct Input<'a> {
    /// The Job (from the cache).
    pub job: Option<&'a Job>,
    /// Its pods (every phase).
    pub pods: &'a [Arc<Pod>],
    /// Uids of pods whose finalizer this controller removed and whose removal the cache
    /// may not show yet (upstream's finalizer expectations).
    pub finalized: Option<&'a HashSet<String>>,
    /// Now.
    pub now: Option<Timestamp>,
    /// The first replacement delay after a failure, in seconds (10 upstream).
    pub backoff_seconds: i64,
}

/// An Event to record about the Job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `Normal` or `Warning`.
    pub kind: &'static str,
    /// The reason.
    pub reason: String,
    /// The message.
    pub message: String,
}

/// A pod to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewPod {
    /// Its completion index (Indexed Jobs).
    pub index: Option<i64>,
    /// The failures of its index so far (backoffLimitPerIndex).
    pub failures: Option<i64>,
}

/// The outcome of a sync.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The status to write before removing finalizers (newly finished pods recorded as
    /// uncounted), when some pods are being counted.
    pub interim: Option<JobStatus>,
    /// Pods (name, uid) whose tracking finalizer goes.
    pub unfinalize: Vec<(String, String)>,
    /// The status once they are counted.
    pub status: JobStatus,
    /// Pods to create.
    pub create: Vec<NewPod>,
    /// Active pods to delete (names).
    pub delete: Vec<String>,
    /// Events to record.
    pub events: Vec<Event>,
    /// When to sync again (deadline, back-off), if nothing else triggers it.
    pub requeue: Option<Duration>,
}

fn has_finalizer(p: &Pod) -> bool {
    p.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == TRACKING_FINALIZER)
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn uid(p: &Pod) -> String {
    p.metadata.uid.clone().unwrap_or_default()
}

fn name(p: &Pod) -> String {
    p.metadata.name.clone().unwrap_or_default()
}

/// Being deleted and not finished.
fn is_terminating(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some() && !matches!(phase(p), "Succeeded" | "Failed")
}

/// Failed for counting (upstream's `isPodFailed`): phase Failed, or deleted before it
/// succeeded (an orphan that never reaches a phase is a failure).
fn is_failed(p: &Pod) -> bool {
    phase(p) == "Failed" || (p.metadata.deletion_timestamp.is_some() && phase(p) != "Succeeded")
}

/// When the pod finished: its last container's finish, else its deletion, else its
/// creation.
fn finished_at(p: &Pod) -> Option<Timestamp> {
    let st = p.status.as_ref();
    let finish = st
        .into_iter()
        .flat_map(|s| {
            s.container_statuses
                .iter()
                .flatten()
                .chain(s.init_container_statuses.iter().flatten())
        })
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(|t| t.0)
        .max();
    finish
        .or_else(|| p.metadata.deletion_timestamp.as_ref().map(|t| t.0))
        .or_else(|| p.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

fn condition<'a>(status: &'a JobStatus, kind: &str) -> Option<&'a JobCondition> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == kind && c.status == "True")
}

fn new_condition(kind: &str, reason: &str, message: &str, now: Timestamp) -> JobCondition {
    JobCondition {
        type_: kind.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// Sets condition `c` (replacing one of its type; a status change moves its times).
fn set_condition(status: &mut JobStatus, c: JobCondition) {
    let conds = status.conditions.get_or_insert_with(Vec::new);
    match conds.iter_mut().find(|x| x.type_ == c.type_) {
        Some(x) if x.status == c.status && x.reason == c.reason => {}
        Some(x) => *x = c,
        None => conds.push(c),
    }
}

/// The delay before the next replacement after `failures` consecutive failures.
pub fn backoff_delay(base: i64, failures: i64) -> i64 {
    if failures <= 0 || base <= 0 {
        return 0;
    }
    let shift = (failures - 1).min(20) as u32;
    base.saturating_mul(1i64 << shift).min(MAX_BACKOFF_SECONDS)
}

/// Whether a pod's failure counts (not ignored by the pod failure policy).
fn policy_match(job: &Job, p: &Pod) -> Option<pod_failure_policy::Match> {
    let policy = job.spec.as_ref()?.pod_failure_policy.as_ref()?;
    if phase(p) != "Failed" {
        return None;
    }
    pod_failure_policy::matching(policy, p)
}

/// Upstream's `pastBackoffLimitOnFailure`: with restartPolicy OnFailure the container
/// restarts of running pods count against backoffLimit.
fn past_backoff_on_failure(job: &Job, pods: &[Arc<Pod>]) -> bool {
    let Some(spec) = job.spec.as_ref() else {
        return false;
    };
    let policy = spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref());
    if policy != Some("OnFailure") {
        return false;
    }
    let limit = i64::from(spec.backoff_limit.unwrap_or(6));
    let restarts: i64 = pods
        .iter()
        .filter(|p| matches!(phase(p), "Running" | "Pending"))
        .filter_map(|p| p.status.as_ref())
        .flat_map(|s| {
            s.container_statuses
                .iter()
                .flatten()
                .chain(s.init_container_statuses.iter().flatten())
        })
        .map(|c| i64::from(c.restart_count))
        .sum();
    if limit == 0 {
        restarts > 0
    } else {
        restarts >= limit
    }
}

/// Computes one sync of `input.job`.
pub fn plan(input: &Input) -> Plan {
    let job = input.job.expect("a job to plan");
    let now = input.now.unwrap_or_else(Timestamp::now);
    let empty = HashSet::new();
    let finalized = input.finalized.unwrap_or(&empty);
    let spec = job.spec.clone().unwrap_or_default();
    let old = job.status.clone().unwrap_or_default();
    let mut plan = Plan::default();
    let indexed = is_indexed(job);
    let completions = spec.completions;
    let comp_n = completions.unwrap_or(0);
    let finished =
        condition(&old, reason::COMPLETE).is_some() || condition(&old, reason::FAILED).is_some();
    let suspended = spec.suspend == Some(true);

    // --- Counting (finalizer protocol).
    let old_unc = old.uncounted_terminated_pods.clone().unwrap_or_default();
    let unc_succ: BTreeSet<String> = old_unc.succeeded.iter().flatten().cloned().collect();
    let unc_fail: BTreeSet<String> = old_unc.failed.iter().flatten().cloned().collect();
    let by_uid: std::collections::HashMap<String, &Arc<Pod>> =
        input.pods.iter().map(|p| (uid(p), p)).collect();
    let done_tracking = |u: &String| {
        by_uid
            .get(u)
            .is_none_or(|p| !has_finalizer(p) || finalized.contains(u))
    };
    let moved_succ: Vec<String> = unc_succ
        .iter()
        .filter(|u| done_tracking(u))
        .cloned()
        .collect();
    let moved_fail: Vec<String> = unc_fail
        .iter()
        .filter(|u| done_tracking(u))
        .cloned()
        .collect();
    let mut new_succ: Vec<&Arc<Pod>> = Vec::new();
    let mut new_fail: Vec<&Arc<Pod>> = Vec::new();
    let mut fail_job: Option<String> = None;
    for p in input.pods {
        if !has_finalizer(p) || finalized.contains(&uid(p)) {
            continue;
        }
        if phase(p) == "Succeeded" {
            new_succ.push(p);
            plan.unfinalize.push((name(p), uid(p)));
        } else if finished || (is_failed(p) && !(suspended && is_terminating(p))) {
            match policy_match(job, p) {
                Some(m) if m.action == PolicyAction::Ignore => {}
                Some(m) => {
                    if m.action == PolicyAction::FailJob && fail_job.is_none() {
                        fail_job = Some(m.message);
                    }
                    new_fail.push(p);
                }
                None => new_fail.push(p),
            }
            plan.unfinalize.push((name(p), uid(p)));
        } else if is_terminating(p) && suspended {
            // Removed by a suspension: not a failure.
            plan.unfinalize.push((name(p), uid(p)));
        }
    }
    if !new_succ.is_empty() || !new_fail.is_empty() {
        let mut interim = old.clone();
        let mut s: BTreeSet<String> = unc_succ.clone();
        s.extend(new_succ.iter().map(|p| uid(p)));
        let mut f: BTreeSet<String> = unc_fail.clone();
        f.extend(new_fail.iter().map(|p| uid(p)));
        interim.uncounted_terminated_pods = Some(UncountedTerminatedPods {
            succeeded: Some(s.into_iter().collect()),
            failed: Some(f.into_iter().collect()),
        });
        plan.interim = Some(interim);
    }
    let mut status = old.clone();
    let succeeded =
        i64::from(old.succeeded.unwrap_or(0)) + (moved_succ.len() + new_succ.len()) as i64;
    let failed = i64::from(old.failed.unwrap_or(0)) + (moved_fail.len() + new_fail.len()) as i64;
    status.succeeded = Some(succeeded as i32);
    status.failed = Some(failed as i32);
    let mut left_succ: Vec<String> = unc_succ
        .iter()
        .filter(|u| !done_tracking(u))
        .cloned()
        .collect();
    let mut left_fail: Vec<String> = unc_fail
        .iter()
        .filter(|u| !done_tracking(u))
        .cloned()
        .collect();
    // Pods being counted now leave the uncounted lists once their finalizer is gone.
    let counting: HashSet<String> = plan.unfinalize.iter().map(|(_, u)| u.clone()).collect();
    left_succ.retain(|u| !counting.contains(u));
    left_fail.retain(|u| !counting.contains(u));
    status.uncounted_terminated_pods = Some(UncountedTerminatedPods {
        succeeded: (!left_succ.is_empty()).then_some(left_succ),
        failed: (!left_fail.is_empty()).then_some(left_fail),
    });

    // --- Indexes.
    let mut completed: BTreeSet<i64> = old
        .completed_indexes
        .as_deref()
        .and_then(|t| parse_indexes(t, i64::from(comp_n)))
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut failed_ix: BTreeSet<i64> = old
        .failed_indexes
        .as_deref()
        .and_then(|t| parse_indexes(t, i64::from(comp_n)))
        .unwrap_or_default()
        .into_iter()
        .collect();
    // Upstream's per-index failure counts, from the pods themselves.
    let per_index = spec.backoff_limit_per_index;
    let mut index_failures: std::collections::BTreeMap<i64, (i64, Option<Timestamp>)> =
        Default::default();
    if indexed {
        for p in new_succ.iter() {
            if let Some(i) = index_of(p, comp_n) {
                completed.insert(i);
            }
        }
        for u in &moved_succ {
            if let Some(i) = by_uid.get(u).and_then(|p| index_of(p, comp_n)) {
                completed.insert(i);
            }
        }
        if let Some(limit) = per_index {
            for p in input.pods.iter().filter(|p| is_failed(p)) {
                let Some(i) = index_of(p, comp_n) else {
                    continue;
                };
                let m = policy_match(job, p);
                if m.as_ref().is_some_and(|m| m.action == PolicyAction::Ignore) {
                    continue;
                }
                let n = failure_count(p) + 1;
                let e = index_failures.entry(i).or_insert((0, None));
                if n > e.0 {
                    e.0 = n;
                }
                e.1 = e.1.max(finished_at(p));
                if n > i64::from(limit) || m.is_some_and(|m| m.action == PolicyAction::FailIndex) {
                    failed_ix.insert(i);
                }
            }
            for i in &failed_ix {
                completed.remove(i);
            }
        }
        status.completed_indexes = Some(format_indexes(
            &completed.iter().copied().collect::<Vec<_>>(),
        ));
        if per_index.is_some() {
            status.failed_indexes = Some(format_indexes(
                &failed_ix.iter().copied().collect::<Vec<_>>(),
            ));
        }
    }

    // --- Pod counts.
    let active: Vec<Arc<Pod>> = input
        .pods
        .iter()
        .filter(|p| podcontrol::is_active(p))
        .cloned()
        .collect();
    let terminating = input.pods.iter().filter(|p| is_terminating(p)).count() as i32;
    status.active = Some(active.len() as i32);
    status.ready = Some(active.iter().filter(|p| podcontrol::is_ready(p)).count() as i32);
    status.terminating = Some(terminating);

    if finished {
        plan.status = status;
        return plan;
    }

    // --- Suspension and start time.
    let was_suspended = condition(&old, reason::SUSPENDED).is_some();
    if suspended {
        if !was_suspended {
            set_condition(
                &mut status,
                new_condition(reason::SUSPENDED, "JobSuspended", "Job suspended", now),
            );
            plan.events.push(Event {
                kind: "Normal",
                reason: "Suspended".into(),
                message: "Job suspended".into(),
            });
        }
    } else {
        if was_suspended {
            let mut c = new_condition(reason::SUSPENDED, "JobResumed", "Job resumed", now);
            c.status = "False".into();
            set_condition(&mut status, c);
            status.start_time = Some(Time(now));
            plan.events.push(Event {
                kind: "Normal",
                reason: "Resumed".into(),
                message: "Job resumed".into(),
            });
        }
        if status.start_time.is_none() {
            status.start_time = Some(Time(now));
        }
    }

    // --- Failure and success.
    let mut finishing = condition(&status, reason::FAILURE_TARGET)
        .map(|c| {
            (
                true,
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
        .or_else(|| {
            condition(&status, reason::SUCCESS_CRITERIA_MET).map(|c| {
                (
                    false,
                    c.reason.clone().unwrap_or_default(),
                    c.message.clone().unwrap_or_default(),
                )
            })
        });
    if finishing.is_none() {
        let backoff_limit = i64::from(spec.backoff_limit.unwrap_or(6));
        let fail = |r: &str, m: &str| Some((true, r.to_string(), m.to_string()));
        if let Some(m) = fail_job {
            finishing = fail("PodFailurePolicy", &m);
        } else if per_index.is_none()
            && (failed > backoff_limit || past_backoff_on_failure(job, input.pods))
        {
            finishing = fail(
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            );
        } else if let (Some(ads), Some(start), false) = (
            spec.active_deadline_seconds,
            status.start_time.as_ref(),
            suspended,
        ) {
            let end = start.0.as_second() + ads;
            if now.as_second() >= end {
                finishing = fail(
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                );
            } else {
                plan.requeue = Some(Duration::from_secs((end - now.as_second()) as u64));
            }
        }
        if finishing.is_none() && indexed && per_index.is_some() {
            if spec
                .max_failed_indexes
                .is_some_and(|m| failed_ix.len() as i64 > i64::from(m))
            {
                finishing = fail(
                    "MaxFailedIndexesExceeded",
                    "Job has exceeded the specified maximal number of failed indexes",
                );
            } else if !failed_ix.is_empty()
                && (failed_ix.len() + completed.len()) as i64 >= i64::from(comp_n)
            {
                finishing = fail("FailedIndexes", "Job has failed indexes");
            }
        }
        if finishing.is_none() {
            let reached = (
                false,
                "CompletionsReached".to_string(),
                "Reached expected number of succeeded pods".to_string(),
            );
            if indexed {
                if let Some(i) = success_policy_match(job, &completed) {
                    finishing = Some((
                        false,
                        "SuccessPolicy".into(),
                        format!("Matched rules at index {i}"),
                    ));
                } else if completed.len() as i64 >= i64::from(comp_n) {
                    finishing = Some(reached);
                }
            } else {
                let done = match completions {
                    Some(c) => succeeded >= i64::from(c),
                    None => succeeded > 0 && active.is_empty(),
                };
                if done {
                    finishing = Some(reached);
                }
            }
        }
        if let Some((is_failure, r, m)) = &finishing {
            let kind = if *is_failure {
                reason::FAILURE_TARGET
            } else {
                reason::SUCCESS_CRITERIA_MET
            };
            set_condition(&mut status, new_condition(kind, r, m, now));
        }
    }

    // --- Pods.
    if let Some((is_failure, r, m)) = finishing {
        plan.delete = active.iter().map(|p| name(p)).collect();
        // Terminal once no pod runs and every pod is counted.
        let pending = input.pods.iter().any(|p| {
            is_terminating(p)
                || (has_finalizer(p) && !counting.contains(&uid(p)) && !finalized.contains(&uid(p)))
        });
        if active.is_empty() && !pending {
            if is_failure {
                set_condition(&mut status, new_condition(reason::FAILED, &r, &m, now));
                plan.events.push(Event {
                    kind: "Warning",
                    reason: r,
                    message: m,
                });
            } else {
                set_condition(&mut status, new_condition(reason::COMPLETE, &r, &m, now));
                status.completion_time = Some(Time(now));
                plan.events.push(Event {
                    kind: "Normal",
                    reason: "Completed".into(),
                    message: "Job completed".into(),
                });
            }
            status.active = Some(0);
            status.ready = Some(0);
        }
        plan.status = status;
        return plan;
    }
    if suspended {
        plan.delete = active.iter().map(|p| name(p)).collect();
        plan.status = status;
        return plan;
    }
    manage(
        job,
        &spec,
        input,
        &active,
        terminating,
        succeeded,
        &completed,
        &failed_ix,
        &index_failures,
        now,
        &mut plan,
    );
    plan.status = status;
    plan
}

/// The index of the first success policy rule the completed indexes satisfy.
fn success_policy_match(job: &Job, completed: &BTreeSet<i64>) -> Option<usize> {
    let spec = job.spec.as_ref()?;
    let comp = i64::from(spec.completions.unwrap_or(0));
    for (i, rule) in spec.success_policy.as_ref()?.rules.iter().enumerate() {
        let set: Vec<i64> = match &rule.succeeded_indexes {
            Some(t) => parse_indexes(t, comp).unwrap_or_default(),
            None => (0..comp).collect(),
        };
        let have = set.iter().filter(|i| completed.contains(i)).count() as i64;
        let ok = match rule.succeeded_count {
            Some(n) => have >= i64::from(n),
            None => have == set.len() as i64 && !set.is_empty(),
        };
        if ok {
            return Some(i);
        }
    }
    None
}

/// Creates the missing pods and deletes the surplus (upstream's manageJob), honouring
/// the replacement back-off.
#[allow(clippy::too_many_arguments)]
fn manage(
    job: &Job,
    spec: &k8s_openapi::api::batch::v1::JobSpec,
    input: &Input,
    active: &[Arc<Pod>],
    terminating: i32,
    succeeded: i64,
    completed: &BTreeSet<i64>,
    failed_ix: &BTreeSet<i64>,
    index_failures: &std::collections::BTreeMap<i64, (i64, Option<Timestamp>)>,
    now: Timestamp,
    plan: &mut Plan,
) {
    let parallelism = i64::from(spec.parallelism.unwrap_or(1).max(0));
    let only_failed = spec.pod_replacement_policy.as_deref() == Some("Failed");
    let busy = active.len() as i64
        + if only_failed {
            i64::from(terminating)
        } else {
            0
        };
    let requeue = |secs: i64, plan: &mut Plan| {
        let d = Duration::from_secs(secs.max(1) as u64);
        plan.requeue = Some(plan.requeue.map_or(d, |r| r.min(d)));
    };
    // Global back-off: consecutive failures since the last success.
    let last_success = input
        .pods
        .iter()
        .filter(|p| phase(p) == "Succeeded")
        .filter_map(|p| finished_at(p))
        .max();
    let failures: Vec<Timestamp> = input
        .pods
        .iter()
        .filter(|p| is_failed(p))
        .filter_map(|p| finished_at(p))
        .filter(|t| last_success.is_none_or(|s| *t > s))
        .collect();
    let global_wait = match failures.iter().max() {
        Some(last) => {
            let ready =
                last.as_second() + backoff_delay(input.backoff_seconds, failures.len() as i64);
            ready - now.as_second()
        }
        None => 0,
    };
    if !is_indexed(job) {
        let want = match spec.completions {
            Some(c) => parallelism.min((i64::from(c) - succeeded).max(0)),
            None if succeeded > 0 => active.len() as i64,
            None => parallelism,
        };
        if (active.len() as i64) > want {
            let surplus = active.len() - want as usize;
            plan.delete = podcontrol::pods_to_delete(active, surplus)
                .iter()
                .map(|p| name(p))
                .collect();
            return;
        }
        let missing = (want - busy).max(0) as usize;
        if missing > 0 {
            if global_wait > 0 {
                requeue(global_wait, plan);
                return;
            }
            plan.create = vec![
                NewPod {
                    index: None,
                    failures: None
                };
                missing.min(podcontrol::BURST_REPLICAS)
            ];
        }
        return;
    }
    let comp = spec.completions.unwrap_or(0);
    let held = indexed::by_index(active, comp);
    // Active pods without a valid index, with a finished index, or duplicates go.
    for p in active {
        match index_of(p, comp) {
            None => plan.delete.push(name(p)),
            Some(i) if completed.contains(&i) || failed_ix.contains(&i) => {
                plan.delete.push(name(p))
            }
            _ => {}
        }
    }
    for pods in held.values() {
        for p in pods.iter().skip(1) {
            plan.delete.push(name(p));
        }
    }
    let kept = held
        .keys()
        .filter(|i| !completed.contains(*i) && !failed_ix.contains(*i))
        .count() as i64;
    if kept > parallelism {
        // Highest indexes first.
        let extra = (kept - parallelism) as usize;
        for (_, pods) in held
            .iter()
            .rev()
            .filter(|(i, _)| !completed.contains(*i) && !failed_ix.contains(*i))
            .take(extra)
        {
            plan.delete.push(name(&pods[0]));
        }
        return;
    }
    let terminating_ix: BTreeSet<i64> = if only_failed {
        input
            .pods
            .iter()
            .filter(|p| is_terminating(p))
            .filter_map(|p| index_of(p, comp))
            .collect()
    } else {
        BTreeSet::new()
    };
    let mut room = (parallelism
        - kept
        - if only_failed {
            terminating_ix.len() as i64
        } else {
            0
        })
    .max(0);
    for i in 0..i64::from(comp) {
        if room == 0 {
            break;
        }
        if completed.contains(&i)
            || failed_ix.contains(&i)
            || held.contains_key(&i)
            || terminating_ix.contains(&i)
        {
            continue;
        }
        let (wait, failures) = match (spec.backoff_limit_per_index, index_failures.get(&i)) {
            (Some(_), Some((n, last))) => {
                let ready =
                    last.map_or(0, |t| t.as_second()) + backoff_delay(input.backoff_seconds, *n);
                (ready - now.as_second(), Some(*n))
            }
            (Some(_), None) => (0, Some(0)),
            (None, _) => (global_wait, None),
        };
        if wait > 0 {
            requeue(wait, plan);
            continue;
        }
        plan.create.push(NewPod {
            index: Some(i),
            failures,
        });
        room -= 1;
    }
}

#[cfg(test)]
mod tests;
