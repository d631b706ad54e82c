//! The Job sync computed on fixture Jobs and pods.

use super::*;
use serde_json::{Value, json};

const NOW: &str = "2026-01-01T00:10:00Z";

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

fn job(spec: Value, status: Value) -> Job {
    let mut spec = spec;
    let base = json!({"parallelism": 1, "backoffLimit": 6, "completionMode": "NonIndexed",
        "suspend": false, "podReplacementPolicy": "TerminatingOrFailed",
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "i"}]}}});
    for (k, v) in base.as_object().unwrap() {
        if spec.get(k).is_none() {
            spec[k] = v.clone();
        }
    }
    serde_json::from_value(
        json!({"metadata": {"name": "j", "namespace": "d", "uid": "ju"},
        "spec": spec, "status": status}),
    )
    .unwrap()
}

fn pod(name: &str, phase: &str, index: Option<i64>, tracked: bool, exit: Option<i32>) -> Arc<Pod> {
    let mut ann = serde_json::Map::new();
    if let Some(i) = index {
        ann.insert(
            crate::apiserver::kinds::batch::job::COMPLETION_INDEX.into(),
            json!(i.to_string()),
        );
    }
    let finalizers = if tracked {
        json!([TRACKING_FINALIZER])
    } else {
        json!([])
    };
    let state = match exit {
        Some(code) => {
            json!({"terminated": {"exitCode": code, "finishedAt": "2026-01-01T00:09:00Z"}})
        }
        None => json!({"running": {}}),
    };
    Arc::new(
        serde_json::from_value(
            json!({"metadata": {"name": name, "namespace": "d", "uid": format!("u-{name}"),
            "annotations": ann, "finalizers": finalizers,
            "creationTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"phase": phase, "containerStatuses": [{"name": "main", "image": "i",
                "imageID": "", "ready": phase == "Running", "restartCount": 0, "state": state}]}}),
        )
        .unwrap(),
    )
}

fn run(job: &Job, pods: &[Arc<Pod>]) -> Plan {
    plan(&Input {
        job: Some(job),
        pods,
        finalized: None,
        now: Some(now()),
        backoff_seconds: 10,
    })
}

fn cond<'a>(s: &'a JobStatus, kind: &str) -> Option<&'a JobCondition> {
    condition(s, kind)
}

#[test]
fn a_new_job_starts_its_pods_and_its_clock() {
    let j = job(json!({"completions": 3, "parallelism": 2}), json!({}));
    let p = run(&j, &[]);
    assert_eq!(p.create.len(), 2);
    assert_eq!(p.status.start_time.as_ref().map(|t| t.0), Some(now()));
    assert_eq!(p.status.active, Some(0));
    // One succeeded (counted) and one running: one more is needed.
    let j = job(
        json!({"completions": 3, "parallelism": 2}),
        json!({"succeeded": 1, "startTime": NOW}),
    );
    let p = run(
        &j,
        &[
            pod("a", "Succeeded", None, false, Some(0)),
            pod("b", "Running", None, true, None),
        ],
    );
    assert_eq!(p.create.len(), 1);
}

#[test]
fn finished_pods_are_counted_through_uncounted_then_finalizers_go() {
    let j = job(json!({"completions": 1}), json!({"startTime": NOW}));
    let done = pod("a", "Succeeded", None, true, Some(0));
    let p = run(&j, std::slice::from_ref(&done));
    let interim = p.interim.expect("interim status");
    assert_eq!(
        interim.uncounted_terminated_pods.unwrap().succeeded,
        Some(vec!["u-a".to_string()])
    );
    assert_eq!(p.unfinalize, vec![("a".to_string(), "u-a".to_string())]);
    assert_eq!(p.status.succeeded, Some(1));
    assert_eq!(
        p.status.uncounted_terminated_pods,
        Some(UncountedTerminatedPods::default())
    );
    // Success is decided at once, and terminal since no pod is left to count.
    assert_eq!(
        cond(&p.status, "SuccessCriteriaMet")
            .unwrap()
            .reason
            .as_deref(),
        Some("CompletionsReached")
    );
    let complete = cond(&p.status, "Complete").expect("Complete");
    assert_eq!(
        complete.message.as_deref(),
        Some("Reached expected number of succeeded pods")
    );
    assert!(p.status.completion_time.is_some());
    assert_eq!(p.events[0].reason, "Completed");
    // A second look (cache not yet showing the removal) does not count it twice.
    let finalized: HashSet<String> = ["u-a".to_string()].into();
    let again = plan(&Input {
        job: Some(&job(
            json!({"completions": 1}),
            serde_json::to_value(&p.status).unwrap(),
        )),
        pods: &[done],
        finalized: Some(&finalized),
        now: Some(now()),
        backoff_seconds: 10,
    });
    assert_eq!(again.status.succeeded, Some(1));
    assert!(again.unfinalize.is_empty());
}

#[test]
fn backoff_limit_exceeded_fails_the_job() {
    let j = job(
        json!({"completions": 1, "backoffLimit": 1}),
        json!({"failed": 1, "startTime": NOW}),
    );
    let p = run(
        &j,
        &[
            pod("a", "Failed", None, false, Some(1)),
            pod("b", "Failed", None, true, Some(1)),
        ],
    );
    assert_eq!(p.status.failed, Some(2));
    let target = cond(&p.status, "FailureTarget").unwrap();
    assert_eq!(target.reason.as_deref(), Some("BackoffLimitExceeded"));
    let failed = cond(&p.status, "Failed").unwrap();
    assert_eq!(
        failed.message.as_deref(),
        Some("Job has reached the specified backoff limit")
    );
    assert!(p.status.completion_time.is_none());
    assert_eq!(p.events[0].reason, "BackoffLimitExceeded");
    assert!(p.create.is_empty());
}

#[test]
fn replacements_wait_for_the_backoff() {
    let j = job(
        json!({"completions": 1}),
        json!({"failed": 1, "startTime": NOW}),
    );
    // Failed at 00:09:00, first delay 10 s: due long ago.
    let p = run(&j, &[pod("a", "Failed", None, false, Some(1))]);
    assert_eq!(p.create.len(), 1);
    let later = plan(&Input {
        job: Some(&j),
        pods: &[pod("a", "Failed", None, false, Some(1))],
        finalized: None,
        now: Some("2026-01-01T00:09:04Z".parse().unwrap()),
        backoff_seconds: 10,
    });
    assert!(later.create.is_empty());
    assert_eq!(later.requeue, Some(Duration::from_secs(6)));
    assert_eq!(backoff_delay(10, 1), 10);
    assert_eq!(backoff_delay(10, 3), 40);
    assert_eq!(backoff_delay(10, 30), 600);
    assert_eq!(backoff_delay(0, 3), 0);
}

#[test]
fn deadline_exceeded_deletes_the_pods() {
    let j = job(
        json!({"completions": 1, "activeDeadlineSeconds": 5}),
        json!({"startTime": "2026-01-01T00:00:00Z"}),
    );
    let p = run(&j, &[pod("a", "Running", None, true, None)]);
    assert_eq!(
        cond(&p.status, "FailureTarget").unwrap().reason.as_deref(),
        Some("DeadlineExceeded")
    );
    assert!(
        cond(&p.status, "Failed").is_none(),
        "terminal only once its pods are gone"
    );
    assert_eq!(p.delete, vec!["a".to_string()]);
    let running = job(
        json!({"completions": 1, "activeDeadlineSeconds": 900}),
        json!({"startTime": "2026-01-01T00:00:00Z"}),
    );
    assert_eq!(
        run(&running, &[pod("a", "Running", None, true, None)]).requeue,
        Some(Duration::from_secs(300))
    );
}

#[test]
fn indexed_jobs_track_completed_and_failed_indexes() {
    let spec = json!({"completionMode": "Indexed", "completions": 3, "parallelism": 3, "backoffLimitPerIndex": 0});
    let j = job(spec.clone(), json!({"startTime": NOW}));
    let p = run(&j, &[]);
    let idx: Vec<Option<i64>> = p.create.iter().map(|n| n.index).collect();
    assert_eq!(idx, vec![Some(0), Some(1), Some(2)]);
    assert!(p.create.iter().all(|n| n.failures == Some(0)));
    let pods = [
        pod("j-0", "Succeeded", Some(0), true, Some(0)),
        pod("j-1", "Failed", Some(1), true, Some(3)),
        pod("j-2", "Succeeded", Some(2), true, Some(0)),
    ];
    let p = run(&j, &pods);
    assert_eq!(p.status.completed_indexes.as_deref(), Some("0,2"));
    assert_eq!(p.status.failed_indexes.as_deref(), Some("1"));
    let failed = cond(&p.status, "Failed").expect("Failed");
    assert_eq!(failed.reason.as_deref(), Some("FailedIndexes"));
    assert_eq!(failed.message.as_deref(), Some("Job has failed indexes"));
    // With one retry per index, the failed index is run again (its count recorded).
    let mut retry = spec;
    retry["backoffLimitPerIndex"] = json!(1);
    let p = run(&job(retry, json!({"startTime": NOW})), &pods);
    assert!(cond(&p.status, "FailureTarget").is_none());
    assert_eq!(
        p.create,
        vec![NewPod {
            index: Some(1),
            failures: Some(1)
        }]
    );
}

#[test]
fn pod_failure_policy_rules() {
    let spec = json!({"completions": 1, "podReplacementPolicy": "Failed", "podFailurePolicy": {"rules": [
        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [7]}},
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}});
    let j = job(spec, json!({"startTime": NOW}));
    let ignored = run(&j, &[pod("a", "Failed", None, true, Some(7))]);
    assert_eq!(ignored.status.failed, Some(0));
    assert_eq!(ignored.unfinalize.len(), 1);
    assert_eq!(ignored.create.len(), 1);
    let fatal = run(&j, &[pod("a", "Failed", None, true, Some(42))]);
    let failed = cond(&fatal.status, "Failed").expect("Failed");
    assert_eq!(failed.reason.as_deref(), Some("PodFailurePolicy"));
    assert_eq!(
        failed.message.as_deref(),
        Some(
            "Container main for pod d/a failed with exit code 42 matching FailJob rule at index 1"
        )
    );
}

#[test]
fn success_policy_ends_an_indexed_job_early() {
    let spec = json!({"completionMode": "Indexed", "completions": 3, "parallelism": 3,
        "successPolicy": {"rules": [{"succeededIndexes": "0"}]}});
    let j = job(spec, json!({"startTime": NOW}));
    let p = run(
        &j,
        &[
            pod("j-0", "Succeeded", Some(0), true, Some(0)),
            pod("j-1", "Running", Some(1), true, None),
        ],
    );
    let met = cond(&p.status, "SuccessCriteriaMet").unwrap();
    assert_eq!(met.reason.as_deref(), Some("SuccessPolicy"));
    assert_eq!(met.message.as_deref(), Some("Matched rules at index 0"));
    assert_eq!(p.delete, vec!["j-1".to_string()]);
    assert!(cond(&p.status, "Complete").is_none());
}

#[test]
fn suspend_and_resume() {
    let j = job(json!({"completions": 1, "suspend": true}), json!({}));
    let p = run(&j, &[pod("a", "Running", None, true, None)]);
    let s = cond(&p.status, "Suspended").unwrap();
    assert_eq!(
        (s.reason.as_deref(), s.message.as_deref()),
        (Some("JobSuspended"), Some("Job suspended"))
    );
    assert_eq!(p.delete, vec!["a".to_string()]);
    assert!(p.status.start_time.is_none());
    assert!(p.create.is_empty());
    let resumed = job(
        json!({"completions": 1}),
        serde_json::to_value(&p.status).unwrap(),
    );
    let p = run(&resumed, &[]);
    let c = p
        .status
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == "Suspended")
        .unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("False", Some("JobResumed"))
    );
    assert_eq!(p.events[0].reason, "Resumed");
    assert_eq!(p.create.len(), 1);
}
