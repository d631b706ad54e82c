//! kube-controller-manager's TTL-after-finished controller (upstream's
//! pkg/controller/ttlafterfinished): a finished Job (Complete or Failed) with
//! `spec.ttlSecondsAfterFinished` is deleted, with background propagation, that many
//! seconds after it finished. Before deleting, the Job is read afresh and checked again
//! (its TTL may have changed), and the delete is guarded by its uid and resourceVersion.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use kube_client::Api;
use kube_client::api::{DeleteParams, Preconditions, PropagationPolicy};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::informer::{Cache, Change, Informer, ObjectKey};
use super::{Action, WorkQueue, run_workers};

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
#[error("{what} job {key}: {source}")]
pub struct SyncError {
    what: &'static str,
    key: String,
    source: kube_client::Error,
}

/// When `job` finished (its Complete or Failed condition's transition), if it did.
pub fn finish_time(job: &Job) -> Option<Timestamp> {
    job.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .map(|c| {
            c.last_transition_time
                .as_ref()
                .map_or(Timestamp::UNIX_EPOCH, |t| t.0)
        })
}

/// What to do with `job` at `now`: `None` when it has no TTL or has not finished,
/// `Some(Duration::ZERO)` when it is due, else the time left (upstream's
/// `processTTL`/`timeLeft`).
pub fn time_left(job: &Job, now: Timestamp) -> Option<Duration> {
    if job.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    let finished = finish_time(job)?;
    let due = finished.as_millisecond() + i64::from(ttl) * 1000;
    let left = due - now.as_millisecond();
    Some(Duration::from_millis(left.max(0) as u64))
}

/// The controller, subscribed to the Job controller's informer.
pub struct Controller {
    ctx: Arc<Ctx>,
    feed: mpsc::Receiver<Change<Job>>,
    shutdown: CancellationToken,
}

struct Ctx {
    client: kube_client::Client,
    jobs: Cache<Job>,
    queue: Arc<WorkQueue<ObjectKey>>,
}

impl Controller {
    /// Subscribes to `jobs` (the shared Job informer).
    pub fn new(
        client: kube_client::Client,
        jobs: &mut Informer<Job>,
        shutdown: CancellationToken,
    ) -> Self {
        Controller {
            ctx: Arc::new(Ctx {
                client,
                jobs: jobs.cache(),
                queue: Arc::new(WorkQueue::new(shutdown.clone())),
            }),
            feed: jobs.subscribe(),
            shutdown,
        }
    }

    /// Runs the trigger and the worker.
    pub fn start(self) -> Vec<JoinHandle<()>> {
        let Controller {
            ctx,
            mut feed,
            shutdown,
        } = self;
        let trig = ctx.clone();
        let mut tasks = vec![tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    Some(c) = feed.recv() => {
                        if let Change::Applied(job) = c
                            && time_left(&job, Timestamp::now()).is_some()
                        {
                            trig.queue.add(ObjectKey::of(&*job));
                        }
                    },
                    else => return,
                }
            }
        })];
        let queue = ctx.queue.clone();
        tasks.push(tokio::spawn(run_workers(
            "ttlafterfinished",
            queue,
            move |key: ObjectKey| {
                let ctx = ctx.clone();
                async move { ctx.sync(&key).await }
            },
        )));
        tasks
    }
}

impl Ctx {
    async fn sync(&self, key: &ObjectKey) -> Result<Action, SyncError> {
        let Some(cached) = self.jobs.get(key) else {
            return Ok(Action::Done);
        };
        match time_left(&cached, Timestamp::now()) {
            None => return Ok(Action::Done),
            Some(d) if !d.is_zero() => return Ok(Action::RequeueAfter(d)),
            Some(_) => {}
        }
        let err = |what: &'static str| {
            let key = key.to_string();
            move |source| SyncError { what, key, source }
        };
        let api = Api::<Job>::namespaced(self.client.clone(), &key.namespace);
        let Some(fresh) = api.get_opt(&key.name).await.map_err(err("reading"))? else {
            return Ok(Action::Done);
        };
        match time_left(&fresh, Timestamp::now()) {
            None => return Ok(Action::Done),
            Some(d) if !d.is_zero() => return Ok(Action::RequeueAfter(d)),
            Some(_) => {}
        }
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            preconditions: Some(Preconditions {
                uid: fresh.metadata.uid.clone(),
                resource_version: fresh.metadata.resource_version.clone(),
            }),
            ..Default::default()
        };
        let span = tracing::debug_span!("controller_to_apiserver_ttl_delete_job", job = %key);
        match tracing::Instrument::instrument(api.delete(&key.name, &params), span).await {
            Ok(_) => Ok(Action::Done),
            Err(e) if matches!(super::code(&e), 404 | 409) => Ok(Action::Done),
            Err(e) => Err(err("deleting")(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn due_after_the_ttl() {
        let job: Job = serde_json::from_value(json!({"metadata": {"name": "j"},
            "spec": {"ttlSecondsAfterFinished": 5, "template": {}},
            "status": {"conditions": [{"type": "Complete", "status": "True",
                "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}))
        .unwrap();
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(
            time_left(&job, at("2026-01-01T00:00:02Z")),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            time_left(&job, at("2026-01-01T00:00:09Z")),
            Some(Duration::ZERO)
        );
        let mut running = job.clone();
        running.status = None;
        assert_eq!(time_left(&running, at("2026-01-01T00:00:09Z")), None);
        let mut no_ttl = job;
        no_ttl.spec.as_mut().unwrap().ttl_seconds_after_finished = None;
        assert_eq!(time_left(&no_ttl, at("2026-01-01T00:00:09Z")), None);
    }
}
