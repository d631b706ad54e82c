//! kube-controller-manager's Job controller (upstream's pkg/controller/job): runs the
//! pods of each Job until enough succeed (NonIndexed or Indexed completions), or until
//! it fails (backoffLimit, backoffLimitPerIndex/maxFailedIndexes, activeDeadlineSeconds,
//! a FailJob pod failure policy rule); honours suspend, successPolicy and the replacement
//! back-off (exponential from `RKIND_JOB_BACKOFF_SECONDS`, 10 s by default as upstream;
//! tests shorten it). Pods carry the `batch.kubernetes.io/job-tracking` finalizer until
//! counted ([`plan`] has the protocol). The status computation is pure, in [`plan`];
//! this module reads the caches and carries the plan out.

pub mod indexed;
pub mod plan;
pub mod pod_failure_policy;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobStatus};
use k8s_openapi::api::core::v1::Pod;
use kube_client::Api;
use kube_client::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::informer::{self, BY_NAMESPACE, Cache, Change, Informer, ObjectKey};
use super::podcontrol::{self, Claim, Expectations, Owner, PodControl, PodControlError, Seen};
use super::{Action, WorkQueue, run_workers, watch_config};
use crate::apiserver::kinds::batch::job::{TRACKING_FINALIZER, selector_matches};

/// The component Events name (upstream's `job-controller`).
pub const COMPONENT: &str = "job-controller";

const KIND: &str = "Job";

/// Upstream's DefaultJobPodFailureBackOff, in seconds.
const DEFAULT_BACKOFF_SECONDS: i64 = 10;

/// Why a sync failed (it is retried with back-off).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Creating, deleting, claiming or patching pods failed.
    #[error(transparent)]
    Pods(#[from] PodControlError),
    /// Writing the status failed.
    #[error("updating the status of job {key}: {source}")]
    Status {
        /// The Job.
        key: String,
        /// The client's error.
        source: kube_client::Error,
    },
}

/// The controller, wired to its informers (start it with [`Controller::start`]).
pub struct Controller {
    ctx: Arc<Ctx>,
    job_feed: mpsc::Receiver<Change<Job>>,
    pod_feed: mpsc::Receiver<Change<Pod>>,
    jobs: Informer<Job>,
    shutdown: CancellationToken,
}

struct Ctx {
    client: kube_client::Client,
    control: PodControl,
    jobs: Cache<Job>,
    pods: Cache<Pod>,
    expectations: Expectations,
    /// Per Job: pod uids whose finalizer was removed, until the cache shows it.
    finalized: Mutex<HashMap<String, HashSet<String>>>,
    queue: Arc<WorkQueue<ObjectKey>>,
    backoff_seconds: i64,
}

/// The replacement back-off base: `RKIND_JOB_BACKOFF_SECONDS` where set (0 disables it),
/// else upstream's 10 s.
pub fn backoff_seconds() -> i64 {
    std::env::var("RKIND_JOB_BACKOFF_SECONDS")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|v| *v >= 0)
        .unwrap_or(DEFAULT_BACKOFF_SECONDS)
}

impl Controller {
    /// Sets up the Job informer (which the CronJob and TTL controllers share, see
    /// [`Controller::jobs`]) and subscribes to the controller-manager's shared pods.
    pub fn new(
        client: kube_client::Client,
        pods: &mut Informer<Pod>,
        shutdown: CancellationToken,
    ) -> Self {
        let mut jobs = Informer::new(
            Api::all(client.clone()),
            watch_config(),
            "jobs",
            vec![informer::by_namespace(), informer::by_owner()],
        );
        let ctx = Arc::new(Ctx {
            control: PodControl::new(client.clone(), COMPONENT),
            client,
            jobs: jobs.cache(),
            pods: pods.cache(),
            expectations: Expectations::default(),
            finalized: Mutex::new(HashMap::new()),
            queue: Arc::new(WorkQueue::new(shutdown.clone())),
            backoff_seconds: backoff_seconds(),
        });
        Controller {
            ctx,
            job_feed: jobs.subscribe(),
            pod_feed: pods.subscribe(),
            jobs,
            shutdown,
        }
    }

    /// The Job informer, for the other controllers that read Jobs (one cache for all).
    pub fn jobs(&mut self) -> &mut Informer<Job> {
        &mut self.jobs
    }

    /// Runs the Job informer, the triggers and the worker; returns their tasks and the
    /// Job cache (to wait for its sync).
    pub fn start(self) -> (Vec<JoinHandle<()>>, Cache<Job>) {
        let Controller {
            ctx,
            mut job_feed,
            mut pod_feed,
            jobs,
            shutdown,
        } = self;
        let cache = jobs.cache();
        let mut tasks = vec![tokio::spawn(jobs.run(shutdown.clone()))];
        let trig = ctx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    Some(c) = job_feed.recv() => {
                        let key = ObjectKey::of(&**c.object());
                        if let Change::Deleted(_) = c {
                            trig.expectations.forget(&key.to_string());
                            trig.lock_finalized().remove(&key.to_string());
                        }
                        trig.queue.add(key);
                    },
                    Some(c) = pod_feed.recv() => trig.pod_changed(&c),
                    else => return,
                }
            }
        }));
        let queue = ctx.queue.clone();
        tasks.push(tokio::spawn(run_workers(
            "job",
            queue,
            move |key: ObjectKey| {
                let ctx = ctx.clone();
                async move { ctx.sync(&key).await }
            },
        )));
        (tasks, cache)
    }
}

fn has_finalizer(p: &Pod) -> bool {
    p.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == TRACKING_FINALIZER)
}

impl Ctx {
    fn lock_finalized(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashSet<String>>> {
        self.finalized.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The Job controlling `pod` (same uid), if cached; `Err` if the pod names a Job
    /// controller that is gone.
    fn controller_key(&self, pod: &Pod) -> Result<Option<ObjectKey>, ()> {
        let Some(r) = podcontrol::controller_of(pod) else {
            return Ok(None);
        };
        if r.kind != KIND || !r.api_version.starts_with("batch/") {
            return Ok(None);
        }
        let key = ObjectKey::new(pod.metadata.namespace.as_deref().unwrap_or(""), &r.name);
        match self.jobs.get(&key) {
            Some(j) if j.metadata.uid.as_deref() == Some(r.uid.as_str()) => Ok(Some(key)),
            _ => Err(()),
        }
    }

    /// A pod changed: its Job looks again. A pod still holding the tracking finalizer
    /// whose Job is gone (or that was orphaned) gets it removed, as upstream does.
    fn pod_changed(&self, change: &Change<Pod>) {
        let pod = change.object();
        match self.controller_key(pod) {
            Ok(Some(key)) => {
                if matches!(change, Change::Deleted(_)) {
                    self.expectations.observed_gone(
                        &key.to_string(),
                        pod.metadata.name.as_deref().unwrap_or(""),
                    );
                }
                self.queue.add(key);
            }
            gone => {
                let orphan = matches!(gone, Err(())) || podcontrol::controller_of(pod).is_none();
                if orphan
                    && has_finalizer(pod)
                    && self.jobs.is_synced()
                    && matches!(change, Change::Applied(_))
                {
                    let client = self.client.clone();
                    let ns = pod.metadata.namespace.clone().unwrap_or_default();
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    tokio::spawn(async move {
                        if let Err(e) = remove_finalizer(&client, &ns, &name).await {
                            tracing::debug!(pod = %name, error = %e, "tracking finalizer not removed");
                        }
                    });
                }
            }
        }
    }

    fn seen(&self, ns: &str, name: &str) -> Seen {
        match self.pods.get(&ObjectKey::new(ns, name)) {
            None => Seen::Absent,
            Some(p) if p.metadata.deletion_timestamp.is_some() => Seen::Terminating,
            Some(_) => Seen::Present,
        }
    }

    async fn event(&self, job: &Job, kind: &str, reason: &str, message: &str) {
        let obj = json!({"apiVersion": "batch/v1", "kind": KIND, "metadata": {
            "name": job.metadata.name, "namespace": job.metadata.namespace,
            "uid": job.metadata.uid, "resourceVersion": job.metadata.resource_version}});
        super::events::record_event_kube(&self.client, &obj, kind, reason, message, COMPONENT)
            .await;
    }

    async fn sync(&self, key: &ObjectKey) -> Result<Action, SyncError> {
        let Some(job) = self.jobs.get(key) else {
            self.expectations.forget(&key.to_string());
            return Ok(Action::Done);
        };
        let ekey = key.to_string();
        let owner = Owner::new("batch/v1", KIND, &job.metadata);
        let spec = job.spec.clone().unwrap_or_default();
        let selector = serde_json::to_value(&spec.selector).unwrap_or_default();
        let deleting = job.metadata.deletion_timestamp.is_some();
        let ns_pods = self.pods.by_index(BY_NAMESPACE, &key.namespace);
        let matches = |p: &Pod| {
            selector.is_object()
                && selector_matches(
                    &selector,
                    &serde_json::to_value(&p.metadata.labels).unwrap_or_default(),
                )
        };
        let claim = Claim {
            owner: &owner,
            deleting,
            matches: &matches,
        };
        let pods = podcontrol::claim_pods(&self.control, &claim, &ns_pods, || {
            self.recheck(key, &owner)
        })
        .await?;
        if deleting {
            // A Job going away (foreground deletion) lets its pods go.
            for p in pods.iter().filter(|p| has_finalizer(p)) {
                let name = p.metadata.name.clone().unwrap_or_default();
                remove_finalizer(&self.client, &key.namespace, &name).await?;
            }
            return Ok(Action::Done);
        }
        let finalized = {
            let mut all = self.lock_finalized();
            let set = all.entry(ekey.clone()).or_default();
            set.retain(|u| {
                pods.iter()
                    .any(|p| p.metadata.uid.as_deref() == Some(u.as_str()) && has_finalizer(p))
            });
            set.clone()
        };
        let satisfied = self
            .expectations
            .satisfied(&ekey, |n| self.seen(&key.namespace, n));
        let input = plan::Input {
            job: Some(&job),
            pods: &pods,
            finalized: Some(&finalized),
            now: Some(jiff::Timestamp::now()),
            backoff_seconds: self.backoff_seconds,
        };
        let mut p = plan::plan(&input);
        if !satisfied {
            p.create.clear();
            p.delete.clear();
        }
        let mut current = job.clone();
        if let Some(interim) = p.interim.take() {
            current = self.write_status(key, &current, interim).await?;
        }
        for (name, uid) in &p.unfinalize {
            remove_finalizer(&self.client, &key.namespace, name).await?;
            self.lock_finalized()
                .entry(ekey.clone())
                .or_default()
                .insert(uid.clone());
        }
        let current = self.write_status(key, &current, p.status.clone()).await?;
        for e in &p.events {
            self.event(&current, e.kind, &e.reason, &e.message).await;
        }
        if !p.delete.is_empty() {
            self.expectations.expect_deletions(&ekey, p.delete.clone());
            let results = futures_util::future::join_all(
                p.delete.iter().map(|n| self.control.delete(&owner, n)),
            )
            .await;
            for (n, r) in p.delete.iter().zip(results) {
                if let Err(e) = r {
                    self.expectations.deletion_failed(&ekey, n);
                    return Err(e.into());
                }
            }
        }
        if !p.create.is_empty() {
            self.create_pods(&current, &owner, &ekey, &p.create).await?;
        }
        Ok(match p.requeue {
            Some(d) => Action::RequeueAfter(d + Duration::from_millis(100)),
            None => Action::Done,
        })
    }

    /// Creates `new` pods in slow-start batches (1, 2, 4, ...), stopping at a batch with
    /// a failure.
    async fn create_pods(
        &self,
        job: &Job,
        owner: &Owner,
        ekey: &str,
        new: &[plan::NewPod],
    ) -> Result<(), PodControlError> {
        let mut rest = new;
        let mut batch = podcontrol::SLOW_START_INITIAL_BATCH;
        while !rest.is_empty() {
            let (now, later) = rest.split_at(batch.min(rest.len()));
            let results = futures_util::future::join_all(now.iter().map(|n| {
                let (template, gen_name) = indexed::pod_template(job, n.index, n.failures);
                async move {
                    self.control
                        .create_with_generate_name(&template, owner, &gen_name)
                        .await
                }
            }))
            .await;
            let mut first = None;
            for r in results {
                match r {
                    Ok(name) => self.expectations.expect_creations(ekey, [name]),
                    Err(e) => {
                        first.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = first {
                return Err(e);
            }
            rest = later;
            batch *= 2;
        }
        Ok(())
    }

    /// A fresh read of the Job before adopting: it must still be the same, undeleted one.
    async fn recheck(&self, key: &ObjectKey, owner: &Owner) -> Result<(), PodControlError> {
        let api = Api::<Job>::namespaced(self.client.clone(), &key.namespace);
        let fresh = api.get(&key.name).await?;
        let got = fresh.metadata.uid.clone().unwrap_or_default();
        if got != owner.uid {
            return Err(PodControlError::OwnerGone {
                kind: KIND.into(),
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                got,
                wanted: owner.uid.clone(),
            });
        }
        if let Some(t) = fresh.metadata.deletion_timestamp {
            return Err(PodControlError::OwnerDeleting {
                kind: KIND.into(),
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                at: t.0.to_string(),
            });
        }
        Ok(())
    }

    /// Writes `status` unless the Job already has it (the cached resourceVersion guards
    /// against a stale cache); returns the Job as stored.
    async fn write_status(
        &self,
        key: &ObjectKey,
        job: &Arc<Job>,
        status: JobStatus,
    ) -> Result<Arc<Job>, SyncError> {
        if job.status.as_ref() == Some(&status) {
            return Ok(job.clone());
        }
        let mut next = (**job).clone();
        next.status = Some(status);
        let span = tracing::debug_span!("controller_to_apiserver_job_status", job = %key);
        let api = Api::<Job>::namespaced(self.client.clone(), &key.namespace);
        match tracing::Instrument::instrument(
            api.replace_status(&key.name, &PostParams::default(), &next),
            span,
        )
        .await
        {
            Ok(stored) => Ok(Arc::new(stored)),
            Err(e) => Err(SyncError::Status {
                key: key.to_string(),
                source: e,
            }),
        }
    }
}

/// Removes the tracking finalizer from pod `name` (a pod already gone is fine).
async fn remove_finalizer(
    client: &kube_client::Client,
    ns: &str,
    name: &str,
) -> Result<(), PodControlError> {
    let span = tracing::debug_span!("controller_to_apiserver_pod_finalizer", pod = %name);
    let api = Api::<Pod>::namespaced(client.clone(), ns);
    let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}});
    match tracing::Instrument::instrument(
        api.patch(name, &PatchParams::default(), &Patch::Strategic(&patch)),
        span,
    )
    .await
    {
        Ok(_) => Ok(()),
        Err(e) if super::code(&e) == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
