//! kube-controller-manager's CronJob controller (upstream's cronjob_controllerv2.go and
//! utils.go): on each schedule time it creates a Job `<cronjob>-<minutes since epoch>`
//! from the job template (annotated with `batch.kubernetes.io/cronjob-scheduled-timestamp`),
//! honouring `timeZone`, `startingDeadlineSeconds` (and the "too many missed start
//! times" warning), `suspend` and concurrencyPolicy Allow/Forbid/Replace; it keeps
//! `status.active`, `lastScheduleTime` and `lastSuccessfulTime`, and deletes finished
//! Jobs beyond the history limits. What to do is computed by [`plan`], a pure function of
//! the CronJob, its Jobs and the time from a [`Clock`] (tests drive their own).
//!
//! Schedules without a time zone are read in UTC, the zone of a kind node's
//! kube-controller-manager.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube_client::Api;
use kube_client::api::{DeleteParams, PostParams, PropagationPolicy};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::informer::{self, BY_OWNER, Cache, Change, Informer, ObjectKey};
use super::podcontrol::Owner;
use super::{Action, WorkQueue, run_workers, watch_config};
use crate::apiserver::kinds::batch::cron::{Schedule, load_zone};

/// The component Events name (upstream's `cronjob-controller`).
pub const COMPONENT: &str = "cronjob-controller";
/// The annotation with a Job's scheduled time.
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// Upstream's limit of missed start times before it warns.
const MANY_MISSED: usize = 100;
/// Upstream's nextScheduleDelta: look again just after the next schedule time.
const NEXT_DELTA: Duration = Duration::from_millis(100);

/// The time source of the controller (tests inject their own).
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// An API request failed.
    #[error("{what} for cronjob {key}: {source}")]
    Api {
        /// What was being done.
        what: &'static str,
        /// The CronJob.
        key: String,
        /// The client's error.
        source: kube_client::Error,
    },
}

/// An Event about the CronJob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `Normal` or `Warning`.
    pub kind: &'static str,
    /// Reason.
    pub reason: &'static str,
    /// Message.
    pub message: String,
}

/// What one sync of a CronJob does.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The status to write (the created Job is added to `active` once it exists).
    pub status: CronJobStatus,
    /// The Job to create, if a schedule time is due.
    pub create: Option<Job>,
    /// Active Jobs to delete first (Replace).
    pub replace: Vec<String>,
    /// Finished Jobs beyond the history limits.
    pub cleanup: Vec<String>,
    /// Active references whose Job is not in the cache (confirmed by a read).
    pub missing: Vec<ObjectReference>,
    /// Events.
    pub events: Vec<Event>,
    /// When the next schedule time comes.
    pub requeue: Option<Duration>,
}

fn finished_condition(job: &Job) -> Option<&str> {
    job.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .map(|c| c.type_.as_str())
}

/// The most recent schedule time not later than `now` and after the last one (or the
/// creation), with whether more than a hundred were missed (upstream's
/// `mostRecentScheduleTime`).
pub fn most_recent(
    cj: &CronJob,
    sched: &Schedule,
    tz: &TimeZone,
    now: Timestamp,
) -> (Option<Timestamp>, bool) {
    let created = cj
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(now);
    let mut earliest = cj
        .status
        .as_ref()
        .and_then(|s| s.last_schedule_time.as_ref())
        .map(|t| t.0)
        .unwrap_or(created);
    if let Some(sds) = cj.spec.as_ref().and_then(|s| s.starting_deadline_seconds)
        && let Ok(deadline) = Timestamp::from_second(now.as_second() - sds)
        && deadline > earliest
    {
        earliest = deadline;
    }
    let Some(first) = sched.next(earliest, tz) else {
        return (None, false);
    };
    if first > now {
        return (None, false);
    }
    let mut recent = first;
    let mut count = 1usize;
    while let Some(n) = sched.next(recent, tz) {
        if n > now {
            break;
        }
        count += 1;
        if count > MANY_MISSED {
            // Jump close to now (by the last period) and walk the rest.
            let period = (n.as_second() - recent.as_second()).max(1);
            let start = now.as_second() - 2 * period;
            recent = n;
            if start > n.as_second()
                && let Ok(t) = Timestamp::from_second(start)
            {
                recent = t;
            }
            while let Some(m) = sched.next(recent, tz) {
                if m > now {
                    break;
                }
                recent = m;
            }
            return (Some(recent), true);
        }
        recent = n;
    }
    (Some(recent), false)
}

/// Go's RFC 3339 in zone `tz` (`Z` for UTC).
fn rfc3339_in(t: Timestamp, tz: &TimeZone) -> String {
    let z = t.to_zoned(tz.clone());
    if z.offset().seconds() == 0 {
        z.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

/// The Job a CronJob starts for `scheduled` (upstream's `getJobFromTemplate2`).
pub fn job_for(cj: &CronJob, scheduled: Timestamp, tz: &TimeZone) -> Job {
    let spec = cj.spec.clone().unwrap_or_default();
    let template = spec.job_template;
    let tmeta = template.metadata.unwrap_or_default();
    let mut annotations = tmeta.annotations.unwrap_or_default();
    annotations.insert(SCHEDULED_TIMESTAMP.into(), rfc3339_in(scheduled, tz));
    let owner = Owner::new("batch/v1", "CronJob", &cj.metadata);
    Job {
        metadata: ObjectMeta {
            name: Some(format!(
                "{}-{}",
                cj.metadata.name.as_deref().unwrap_or(""),
                scheduled.as_second().div_euclid(60)
            )),
            namespace: cj.metadata.namespace.clone(),
            labels: tmeta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![owner.controller_ref()]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

fn job_ref(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        ..Default::default()
    }
}

/// Upstream's syncCronJob and cleanupFinishedJobs on cached state: `jobs` are the Jobs the
/// CronJob controls, `now` the clock's time.
pub fn plan(cj: &CronJob, jobs: &[Arc<Job>], now: Timestamp) -> Plan {
    let spec = cj.spec.clone().unwrap_or_default();
    let mut status = cj.status.clone().unwrap_or_default();
    let mut out = Plan::default();
    let mut active = status.active.take().unwrap_or_default();
    for j in jobs {
        let uid = j.metadata.uid.clone();
        let listed = active.iter().any(|r| r.uid == uid);
        let name = j.metadata.name.clone().unwrap_or_default();
        match finished_condition(j) {
            None if !listed => out.events.push(Event {
                kind: "Warning",
                reason: "UnexpectedJob",
                message: format!("Saw a job that the controller did not create or forgot: {name}"),
            }),
            Some(cond) if listed => {
                active.retain(|r| r.uid != uid);
                out.events.push(Event {
                    kind: "Normal",
                    reason: "SawCompletedJob",
                    message: format!("Saw completed job: {name}, condition: {cond}"),
                });
            }
            _ => {}
        }
        if finished_condition(j) == Some("Complete")
            && let Some(t) = j.status.as_ref().and_then(|s| s.completion_time.clone())
            && status
                .last_successful_time
                .as_ref()
                .is_none_or(|l| l.0 < t.0)
        {
            status.last_successful_time = Some(t);
        }
    }
    let (present, gone): (Vec<_>, Vec<_>) = active
        .into_iter()
        .partition(|r| jobs.iter().any(|j| j.metadata.uid == r.uid));
    out.missing = gone;
    let mut active = present;
    out.cleanup = history_cleanup(&spec, jobs);
    let finish = |mut out: Plan, status: CronJobStatus, active: Vec<ObjectReference>| {
        let mut status = status;
        status.active = (!active.is_empty()).then_some(active);
        out.status = status;
        out
    };
    if cj.metadata.deletion_timestamp.is_some() {
        return finish(out, status, active);
    }
    let tz = match spec.time_zone.as_deref() {
        None => TimeZone::UTC,
        Some(name) => match load_zone(name) {
            Ok(z) => z,
            Err(e) => {
                out.events.push(Event {
                    kind: "Warning",
                    reason: "UnknownTimeZone",
                    message: format!("invalid timeZone: {name:?}: {e}"),
                });
                return finish(out, status, active);
            }
        },
    };
    if spec.suspend == Some(true) {
        return finish(out, status, active);
    }
    if spec.schedule.contains("TZ") {
        out.events.push(Event {
            kind: "Warning",
            reason: "UnsupportedSchedule",
            message: format!("CRON_TZ or TZ used in schedule {:?} is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details", spec.schedule),
        });
    }
    let sched = match Schedule::parse(&spec.schedule) {
        Ok(s) => s,
        Err(e) => {
            out.events.push(Event {
                kind: "Warning",
                reason: "UnparseableSchedule",
                message: format!("unparseable schedule: {:?} : {e}", spec.schedule),
            });
            return finish(out, status, active);
        }
    };
    let (recent, many) = most_recent(cj, &sched, &tz, now);
    if many {
        out.events.push(Event {
            kind: "Warning",
            reason: "TooManyMissedTimes",
            message: "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew".into(),
        });
    }
    let next_after = |t: Timestamp| {
        sched.next(t, &tz).map(|n| {
            let ms = (n.as_millisecond() - now.as_millisecond()).max(0) as u64;
            Duration::from_millis(ms) + NEXT_DELTA
        })
    };
    let Some(scheduled) = recent else {
        out.requeue = next_after(now);
        return finish(out, status, active);
    };
    out.requeue = next_after(now);
    if let Some(sds) = spec.starting_deadline_seconds
        && scheduled.as_second() + sds < now.as_second()
    {
        out.events.push(Event {
            kind: "Warning",
            reason: "MissSchedule",
            message: format!(
                "Missed scheduled time to start a job: {}",
                scheduled
                    .to_zoned(TimeZone::UTC)
                    .strftime("%a, %d %b %Y %H:%M:%S %z")
            ),
        });
        return finish(out, status, active);
    }
    let job = job_for(cj, scheduled, &tz);
    let already = active.iter().any(|r| r.name == job.metadata.name)
        || status
            .last_schedule_time
            .as_ref()
            .is_some_and(|t| t.0 == scheduled);
    if already {
        return finish(out, status, active);
    }
    match spec.concurrency_policy.as_deref() {
        Some("Forbid") if !active.is_empty() => {
            out.events.push(Event {
                kind: "Normal",
                reason: "JobAlreadyActive",
                message: "Not starting job because prior execution is running and concurrency policy is Forbid".into(),
            });
            return finish(out, status, active);
        }
        Some("Replace") => {
            out.replace = active.iter().filter_map(|r| r.name.clone()).collect();
            active.clear();
        }
        _ => {}
    }
    status.last_schedule_time = Some(Time(scheduled));
    out.create = Some(job);
    finish(out, status, active)
}

/// The finished Jobs beyond `successfulJobsHistoryLimit`/`failedJobsHistoryLimit`,
/// oldest first (by start time, then name).
fn history_cleanup(
    spec: &k8s_openapi::api::batch::v1::CronJobSpec,
    jobs: &[Arc<Job>],
) -> Vec<String> {
    let mut out = Vec::new();
    for (cond, limit) in [
        ("Complete", spec.successful_jobs_history_limit),
        ("Failed", spec.failed_jobs_history_limit),
    ] {
        let Some(limit) = limit else { continue };
        let mut done: Vec<&Arc<Job>> = jobs
            .iter()
            .filter(|j| finished_condition(j) == Some(cond))
            .collect();
        done.sort_by_key(|j| {
            (
                j.status
                    .as_ref()
                    .and_then(|s| s.start_time.as_ref())
                    .map(|t| t.0),
                j.metadata.name.clone(),
            )
        });
        let extra = done.len().saturating_sub(limit.max(0) as usize);
        out.extend(
            done.iter()
                .take(extra)
                .filter_map(|j| j.metadata.name.clone()),
        );
    }
    out
}

/// The controller, wired to its informers.
pub struct Controller {
    ctx: Arc<Ctx>,
    cj_feed: mpsc::Receiver<Change<CronJob>>,
    job_feed: mpsc::Receiver<Change<Job>>,
    cronjobs: Informer<CronJob>,
    shutdown: CancellationToken,
}

struct Ctx {
    client: kube_client::Client,
    cronjobs: Cache<CronJob>,
    jobs: Cache<Job>,
    clock: Arc<dyn Clock>,
    queue: Arc<WorkQueue<ObjectKey>>,
}

impl Controller {
    /// Sets up the CronJob informer and subscribes to the Job controller's Job informer.
    pub fn new(
        client: kube_client::Client,
        jobs: &mut Informer<Job>,
        clock: Arc<dyn Clock>,
        shutdown: CancellationToken,
    ) -> Self {
        let mut cronjobs = Informer::new(
            Api::all(client.clone()),
            watch_config(),
            "cronjobs",
            vec![informer::by_namespace()],
        );
        let ctx = Arc::new(Ctx {
            client,
            cronjobs: cronjobs.cache(),
            jobs: jobs.cache(),
            clock,
            queue: Arc::new(WorkQueue::new(shutdown.clone())),
        });
        Controller {
            ctx,
            cj_feed: cronjobs.subscribe(),
            job_feed: jobs.subscribe(),
            cronjobs,
            shutdown,
        }
    }

    /// Runs the informer, the triggers and the worker; returns their tasks and the cache.
    pub fn start(self) -> (Vec<JoinHandle<()>>, Cache<CronJob>) {
        let Controller {
            ctx,
            mut cj_feed,
            mut job_feed,
            cronjobs,
            shutdown,
        } = self;
        let cache = cronjobs.cache();
        let mut tasks = vec![tokio::spawn(cronjobs.run(shutdown.clone()))];
        let trig = ctx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    Some(c) = cj_feed.recv() => trig.queue.add(ObjectKey::of(&**c.object())),
                    Some(c) = job_feed.recv() => {
                        let job = c.object();
                        if let Some(r) = job.metadata.owner_references.iter().flatten()
                            .find(|r| r.controller == Some(true) && r.kind == "CronJob")
                        {
                            let ns = job.metadata.namespace.as_deref().unwrap_or("");
                            trig.queue.add(ObjectKey::new(ns, &r.name));
                        }
                    },
                    else => return,
                }
            }
        }));
        let queue = ctx.queue.clone();
        tasks.push(tokio::spawn(run_workers(
            "cronjob",
            queue,
            move |key: ObjectKey| {
                let ctx = ctx.clone();
                async move { ctx.sync(&key).await }
            },
        )));
        (tasks, cache)
    }
}

impl Ctx {
    async fn event(&self, cj: &CronJob, e: &Event) {
        let obj = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {
            "name": cj.metadata.name, "namespace": cj.metadata.namespace,
            "uid": cj.metadata.uid, "resourceVersion": cj.metadata.resource_version}});
        super::events::record_event_kube(
            &self.client,
            &obj,
            e.kind,
            e.reason,
            &e.message,
            COMPONENT,
        )
        .await;
    }

    async fn sync(&self, key: &ObjectKey) -> Result<Action, SyncError> {
        let Some(cj) = self.cronjobs.get(key) else {
            return Ok(Action::Done);
        };
        let uid = cj.metadata.uid.clone().unwrap_or_default();
        let jobs: Vec<Arc<Job>> = self
            .jobs
            .by_index(BY_OWNER, &uid)
            .into_iter()
            .filter(|j| {
                j.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|r| r.uid == uid && r.controller == Some(true))
            })
            .collect();
        let mut plan = plan(&cj, &jobs, self.clock.now());
        let err = |what: &'static str| {
            let key = key.to_string();
            move |source| SyncError::Api { what, key, source }
        };
        let jobs_api = Api::<Job>::namespaced(self.client.clone(), &key.namespace);
        // An active Job missing from the cache may only be slow to show: read it.
        for r in std::mem::take(&mut plan.missing) {
            let name = r.name.clone().unwrap_or_default();
            match jobs_api.get_opt(&name).await.map_err(err("reading job"))? {
                None => plan.events.push(Event {
                    kind: "Normal",
                    reason: "MissingJob",
                    message: format!("Active job went missing: {name}"),
                }),
                Some(_) => {
                    plan.status.active.get_or_insert_with(Vec::new).push(r);
                }
            }
        }
        let background = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..Default::default()
        };
        for name in plan.replace.iter().chain(plan.cleanup.iter()) {
            let span = tracing::debug_span!("controller_to_apiserver_delete_job", job = %name);
            match tracing::Instrument::instrument(jobs_api.delete(name, &background), span).await {
                Ok(_) => plan.events.push(Event {
                    kind: "Normal",
                    reason: "SuccessfulDelete",
                    message: format!("Deleted job {name}"),
                }),
                Err(e) if super::code(&e) == 404 => {}
                Err(e) => {
                    self.event(
                        &cj,
                        &Event {
                            kind: "Warning",
                            reason: "FailedDelete",
                            message: format!("Deleted job: {e}"),
                        },
                    )
                    .await;
                    return Err(err("deleting job")(e));
                }
            }
        }
        if let Some(job) = plan.create.take() {
            let span = tracing::debug_span!("controller_to_apiserver_create_job", cronjob = %key);
            let name = job.metadata.name.clone().unwrap_or_default();
            match tracing::Instrument::instrument(
                jobs_api.create(&PostParams::default(), &job),
                span,
            )
            .await
            {
                Ok(created) => {
                    plan.events.push(Event {
                        kind: "Normal",
                        reason: "SuccessfulCreate",
                        message: format!("Created job {name}"),
                    });
                    plan.status
                        .active
                        .get_or_insert_with(Vec::new)
                        .push(job_ref(&created));
                }
                Err(e) if super::code(&e) == 409 => {
                    // Created by an earlier sync whose status write was lost.
                    if let Some(existing) =
                        jobs_api.get_opt(&name).await.map_err(err("reading job"))?
                        && existing
                            .metadata
                            .owner_references
                            .iter()
                            .flatten()
                            .any(|r| r.uid == uid)
                        && finished_condition(&existing).is_none()
                    {
                        let active = plan.status.active.get_or_insert_with(Vec::new);
                        if !active.iter().any(|r| r.uid == existing.metadata.uid) {
                            active.push(job_ref(&existing));
                        }
                    }
                }
                Err(e) => {
                    self.event(
                        &cj,
                        &Event {
                            kind: "Warning",
                            reason: "FailedCreate",
                            message: format!("Error creating job: {e}"),
                        },
                    )
                    .await;
                    return Err(err("creating job")(e));
                }
            }
        }
        if cj.status.as_ref() != Some(&plan.status) {
            let mut next = (*cj).clone();
            next.status = Some(plan.status.clone());
            let api = Api::<CronJob>::namespaced(self.client.clone(), &key.namespace);
            let span =
                tracing::debug_span!("controller_to_apiserver_cronjob_status", cronjob = %key);
            match tracing::Instrument::instrument(
                api.replace_status(&key.name, &PostParams::default(), &next),
                span,
            )
            .await
            {
                Ok(_) => {}
                Err(e) if super::code(&e) == 404 => return Ok(Action::Done),
                Err(e) => return Err(err("updating status")(e)),
            }
        }
        for e in &plan.events {
            self.event(&cj, e).await;
        }
        Ok(plan.requeue.map_or(Action::Done, Action::RequeueAfter))
    }
}

#[cfg(test)]
mod tests;
