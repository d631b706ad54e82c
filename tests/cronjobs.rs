//! batch/v1 CronJobs end to end through stock kubectl, on one real minute tick:
//! `kubectl create cronjob --schedule='*/1 * * * *'` creates a Job named after its
//! scheduled minute that completes (status.active, lastScheduleTime,
//! lastSuccessfulTime, Events); a Forbid CronJob whose Job still runs skips the tick; a
//! suspended one creates nothing; a history limit of 0 deletes the finished Job;
//! `kubectl create job --from=cronjob/x` starts a manual run; the `kubectl get
//! cronjobs` columns; upstream's validation messages.

mod common;

use common::{Cluster, write_file};
use serde_json::Value;

/// A tick comes within a minute; its Job then runs.
const TICK: u64 = 150;

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn get(c: &Cluster, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    json(&c.ok(&all))
}

/// The Jobs controlled by CronJob `name`.
fn jobs_of(c: &Cluster, name: &str) -> Vec<Value> {
    get(c, &["jobs"])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|j| {
            j["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["kind"] == "CronJob" && r["name"] == name)
        })
        .collect()
}

fn complete(job: &Value) -> bool {
    job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Complete" && c["status"] == "True")
}

fn reasons(c: &Cluster, name: &str) -> Vec<String> {
    get(
        c,
        &[
            "events",
            "--field-selector",
            &format!("involvedObject.name={name},involvedObject.kind=CronJob"),
        ],
    )["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["reason"].as_str().unwrap_or("").to_string())
        .collect()
}

fn cronjob_yaml(name: &str, extra: &str, command: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: CronJob
metadata:
  name: {name}
spec:
  schedule: \"*/1 * * * *\"
{extra}  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          terminationGracePeriodSeconds: 1
          containers:
          - name: main
            image: rkind/host
            command: [\"sh\", \"-c\", {command:?}]
"
    )
}

#[test]
fn cronjobs_on_a_minute_tick() {
    let c = Cluster::start("cronjobs");
    let dir = c.data_dir().parent().expect("test dir").to_path_buf();
    c.ok(&[
        "create",
        "cronjob",
        "tick",
        "--image=rkind/host",
        "--schedule=*/1 * * * *",
        "--",
        "sh",
        "-c",
        "echo tick",
    ]);
    let manifests = [
        cronjob_yaml(
            "forbid",
            "  concurrencyPolicy: Forbid\n  suspend: true\n",
            "sleep 3600",
        ),
        cronjob_yaml("paused", "  suspend: true\n", "true"),
        cronjob_yaml(
            "keep-none",
            "  successfulJobsHistoryLimit: 0\n  timeZone: Etc/UTC\n",
            "true",
        ),
    ];
    for (i, m) in manifests.iter().enumerate() {
        let f = write_file(&dir, &format!("cj{i}.yaml"), m);
        c.ok(&["apply", "-f", f.to_str().expect("path")]);
    }

    // Defaults and columns before any tick.
    let cj = get(&c, &["cronjob", "tick"]);
    assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(cj["spec"]["successfulJobsHistoryLimit"], 3);
    assert_eq!(cj["spec"]["failedJobsHistoryLimit"], 1);
    assert_eq!(cj["spec"]["suspend"], false);
    for bin in ["kubectl.1.27", "kubectl.1.33"] {
        let out = c.kubectl_bin(bin, &["get", "cronjobs"], None);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{bin}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let header: Vec<&str> = text
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        assert_eq!(
            header,
            [
                "NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"
            ],
            "{bin}: {text}"
        );
        let paused = text
            .lines()
            .find(|l| l.starts_with("paused"))
            .expect("paused row");
        assert!(paused.contains("True"), "{paused}");
        let tz = text
            .lines()
            .find(|l| l.starts_with("keep-none"))
            .expect("keep-none row");
        assert!(tz.contains("Etc/UTC"), "{tz}");
    }

    // Forbid: a manual run (`--from`, controlled by the CronJob) listed as active keeps
    // the tick from starting another (suspended until the run is listed, so that no tick
    // comes first).
    c.ok(&["create", "job", "forbid-manual", "--from=cronjob/forbid"]);
    let manual = get(&c, &["job", "forbid-manual"]);
    assert_eq!(
        manual["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
        "manual"
    );
    let r = serde_json::json!({"status": {"active": [{"apiVersion": "batch/v1", "kind": "Job",
        "name": "forbid-manual", "namespace": "default", "uid": manual["metadata"]["uid"]}]}});
    c.ok(&[
        "patch",
        "cronjob",
        "forbid",
        "--subresource=status",
        "--type=merge",
        "-p",
        &r.to_string(),
    ]);
    c.ok(&[
        "patch",
        "cronjob",
        "forbid",
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":false}}"#,
    ]);

    // A manual run of `tick` completes too.
    c.ok(&["create", "job", "tick-manual", "--from=cronjob/tick"]);
    c.ok(&[
        "wait",
        "--for=condition=complete",
        "job/tick-manual",
        &format!("--timeout={TICK}s"),
    ]);

    // The tick: `tick` gets a Job named after the scheduled minute, which completes.
    c.eventually(TICK, "the scheduled job of tick completes", || {
        jobs_of(&c, "tick")
            .iter()
            .any(|j| j["metadata"]["name"] != "tick-manual" && complete(j))
    });
    let scheduled = jobs_of(&c, "tick")
        .into_iter()
        .find(|j| j["metadata"]["name"] != "tick-manual")
        .expect("a scheduled job");
    let stamp =
        scheduled["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
            .as_str()
            .expect("scheduled timestamp")
            .to_string();
    let at: jiff::Timestamp = stamp.parse().expect("RFC 3339");
    assert_eq!(at.as_second() % 60, 0, "{stamp}");
    assert_eq!(
        scheduled["metadata"]["name"],
        format!("tick-{}", at.as_second() / 60)
    );
    c.eventually(60, "lastScheduleTime and lastSuccessfulTime", || {
        let cj = get(&c, &["cronjob", "tick"]);
        cj["status"]["lastScheduleTime"].is_string()
            && cj["status"]["lastSuccessfulTime"].is_string()
    });
    c.eventually(30, "SuccessfulCreate and SawCompletedJob events", || {
        let r = reasons(&c, "tick");
        r.iter().any(|x| x == "SuccessfulCreate") && r.iter().any(|x| x == "SawCompletedJob")
    });

    // Forbid skipped the tick (its only Job is the manual one).
    c.eventually(60, "forbid reports JobAlreadyActive", || {
        reasons(&c, "forbid")
            .iter()
            .any(|r| r == "JobAlreadyActive")
    });
    let forbid_jobs: Vec<String> = jobs_of(&c, "forbid")
        .iter()
        .map(|j| j["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(forbid_jobs, ["forbid-manual"]);
    // Suspended: nothing.
    assert!(jobs_of(&c, "paused").is_empty());
    // History limit 0: its Job ran, completed and was deleted.
    c.eventually(TICK, "keep-none's finished job is deleted", || {
        let cj = get(&c, &["cronjob", "keep-none"]);
        cj["status"]["lastScheduleTime"].is_string()
            && reasons(&c, "keep-none")
                .iter()
                .any(|r| r == "SuccessfulDelete")
            && jobs_of(&c, "keep-none").is_empty()
    });

    // Validation as upstream.
    let bad = c.kubectl(&[
        "create",
        "cronjob",
        "bad",
        "--image=rkind/host",
        "--schedule=61 * * * *",
    ]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains(
            "spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61"
        ),
        "{err}"
    );
    let tz = c.kubectl(&[
        "create",
        "cronjob",
        "bad",
        "--image=rkind/host",
        "--schedule=TZ=UTC */1 * * * *",
    ]);
    let err = String::from_utf8_lossy(&tz.stderr);
    assert!(
        err.contains("cannot use TZ or CRON_TZ in schedule, use timeZone field instead"),
        "{err}"
    );

    c.ok(&["delete", "cronjob", "tick", "forbid", "paused", "keep-none"]);
    c.eventually(60, "the cronjobs' jobs are collected", || {
        get(&c, &["jobs"])["items"]
            .as_array()
            .is_none_or(|a| a.is_empty())
    });
}
