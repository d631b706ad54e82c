//! The CronJob sync computed on fixtures with a fixed clock.

use super::*;
use serde_json::{Value, json};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn cj(spec: Value, status: Value) -> CronJob {
    let mut spec = spec;
    for (k, v) in [
        ("concurrencyPolicy", json!("Allow")),
        ("suspend", json!(false)),
        ("successfulJobsHistoryLimit", json!(3)),
        ("failedJobsHistoryLimit", json!(1)),
    ] {
        if spec.get(k).is_none() {
            spec[k] = v;
        }
    }
    spec["jobTemplate"] = json!({"metadata": {"labels": {"l": "v"}},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}});
    serde_json::from_value(
        json!({"metadata": {"name": "tick", "namespace": "d", "uid": "cu",
        "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": spec, "status": status}),
    )
    .unwrap()
}

fn job(name: &str, cond: Option<&str>, start: &str) -> Arc<Job> {
    let conds = match cond {
        Some(c) => json!([{"type": c, "status": "True"}]),
        None => json!([]),
    };
    Arc::new(
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "d", "uid": format!("u-{name}"),
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "tick", "uid": "cu", "controller": true}]},
            "spec": {"template": {}},
            "status": {"conditions": conds, "startTime": start, "completionTime": start}}))
        .unwrap(),
    )
}

struct Fixed(Timestamp);

impl Clock for Fixed {
    fn now(&self) -> Timestamp {
        self.0
    }
}

#[test]
fn a_due_schedule_creates_a_named_annotated_job() {
    let c = cj(json!({"schedule": "*/1 * * * *"}), json!({}));
    let clock = Fixed(ts("2026-01-01T00:05:30Z"));
    let p = plan(&c, &[], clock.now());
    let job = p.create.expect("a job");
    // The most recent time (00:05) is used, earlier missed ones are not.
    let minutes = ts("2026-01-01T00:05:00Z").as_second() / 60;
    assert_eq!(
        job.metadata.name.as_deref(),
        Some(format!("tick-{minutes}").as_str())
    );
    assert_eq!(
        job.metadata.annotations.as_ref().unwrap()[SCHEDULED_TIMESTAMP],
        "2026-01-01T00:05:00Z"
    );
    assert_eq!(job.metadata.labels.as_ref().unwrap()["l"], "v");
    assert_eq!(job.metadata.owner_references.as_ref().unwrap()[0].uid, "cu");
    assert_eq!(
        p.status.last_schedule_time.as_ref().map(|t| t.0),
        Some(ts("2026-01-01T00:05:00Z"))
    );
    assert_eq!(p.requeue, Some(Duration::from_millis(30_100)));
    // Nothing due again within the same minute.
    let done = cj(
        json!({"schedule": "*/1 * * * *"}),
        serde_json::to_value(&p.status).unwrap(),
    );
    assert!(
        plan(&done, &[], ts("2026-01-01T00:05:50Z"))
            .create
            .is_none()
    );
}

#[test]
fn time_zones_shape_the_annotation() {
    let c = cj(
        json!({"schedule": "0 9 * * *", "timeZone": "Asia/Tokyo"}),
        json!({}),
    );
    let p = plan(&c, &[], ts("2026-01-02T00:00:30Z"));
    let job = p.create.expect("09:00 Tokyo is 00:00 UTC");
    assert_eq!(
        job.metadata.annotations.as_ref().unwrap()[SCHEDULED_TIMESTAMP],
        "2026-01-02T09:00:00+09:00"
    );
}

#[test]
fn forbid_skips_while_a_job_runs_and_replace_deletes_it() {
    let active = json!({"active": [{"apiVersion": "batch/v1", "kind": "Job", "name": "tick-1", "namespace": "d", "uid": "u-tick-1"}],
        "lastScheduleTime": "2026-01-01T00:01:00Z"});
    let running = [job("tick-1", None, "2026-01-01T00:01:00Z")];
    let forbid = cj(
        json!({"schedule": "*/1 * * * *", "concurrencyPolicy": "Forbid"}),
        active.clone(),
    );
    let p = plan(&forbid, &running, ts("2026-01-01T00:02:10Z"));
    assert!(p.create.is_none());
    assert_eq!(p.events[0].reason, "JobAlreadyActive");
    assert_eq!(p.status.active.as_ref().unwrap().len(), 1);
    let replace = cj(
        json!({"schedule": "*/1 * * * *", "concurrencyPolicy": "Replace"}),
        active,
    );
    let p = plan(&replace, &running, ts("2026-01-01T00:02:10Z"));
    assert_eq!(p.replace, vec!["tick-1".to_string()]);
    assert!(p.create.is_some());
}

#[test]
fn completed_jobs_leave_active_and_history_is_trimmed() {
    let active = json!({"active": [{"name": "tick-4", "uid": "u-tick-4"}], "lastScheduleTime": "2026-01-01T00:05:00Z"});
    let c = cj(
        json!({"schedule": "*/1 * * * *", "successfulJobsHistoryLimit": 2}),
        active,
    );
    let jobs = [
        job("tick-1", Some("Complete"), "2026-01-01T00:01:00Z"),
        job("tick-2", Some("Complete"), "2026-01-01T00:02:00Z"),
        job("tick-3", Some("Failed"), "2026-01-01T00:03:00Z"),
        job("tick-4", Some("Complete"), "2026-01-01T00:04:00Z"),
    ];
    let p = plan(&c, &jobs, ts("2026-01-01T00:05:10Z"));
    assert!(p.status.active.is_none());
    assert_eq!(
        p.events[0].message,
        "Saw completed job: tick-4, condition: Complete"
    );
    assert_eq!(
        p.status.last_successful_time.as_ref().map(|t| t.0),
        Some(ts("2026-01-01T00:04:00Z"))
    );
    assert_eq!(p.cleanup, vec!["tick-1".to_string()]);
}

#[test]
fn missed_schedules() {
    // Created long ago, never run: more than a hundred minutes missed.
    let c = cj(json!({"schedule": "*/1 * * * *"}), json!({}));
    let p = plan(&c, &[], ts("2026-01-01T05:00:30Z"));
    assert!(p.events.iter().any(|e| e.reason == "TooManyMissedTimes"));
    assert_eq!(
        p.status.last_schedule_time.as_ref().map(|t| t.0),
        Some(ts("2026-01-01T05:00:00Z"))
    );
    // A deadline bounds how far back it looks: no warning, and a late start is skipped.
    let late = cj(
        json!({"schedule": "0 * * * *", "startingDeadlineSeconds": 10}),
        json!({}),
    );
    let p = plan(&late, &[], ts("2026-01-01T05:00:30Z"));
    assert!(p.create.is_none());
    assert_eq!(p.events.len(), 0, "{:?}", p.events);
    let late = cj(
        json!({"schedule": "0 * * * *", "startingDeadlineSeconds": 60}),
        json!({}),
    );
    let p = plan(&late, &[], ts("2026-01-01T05:00:30Z"));
    assert!(p.create.is_some());
    let (recent, many) = most_recent(
        &c,
        &Schedule::parse("0 * * * *").unwrap(),
        &TimeZone::UTC,
        ts("2026-01-01T05:00:30Z"),
    );
    assert_eq!((recent, many), (Some(ts("2026-01-01T05:00:00Z")), false));
}

#[test]
fn suspended_and_unparseable() {
    let c = cj(
        json!({"schedule": "*/1 * * * *", "suspend": true}),
        json!({}),
    );
    assert!(plan(&c, &[], ts("2026-01-01T00:05:30Z")).create.is_none());
    let bad = cj(json!({"schedule": "nope"}), json!({}));
    let p = plan(&bad, &[], ts("2026-01-01T00:05:30Z"));
    assert_eq!(p.events[0].reason, "UnparseableSchedule");
    assert_eq!(
        p.events[0].message,
        "unparseable schedule: \"nope\" : expected exactly 5 fields, found 1: [nope]"
    );
}
