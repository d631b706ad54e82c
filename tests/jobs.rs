//! batch/v1 Jobs end to end through stock kubectl: `kubectl create job` runs to
//! Complete (SuccessCriteriaMet then Complete, Events, finalizers released), parallel
//! completions, suspend and resume, ttlSecondsAfterFinished, the `kubectl get jobs`
//! columns with kubectl 1.27 and 1.33, an Indexed Job whose pods see
//! `$JOB_COMPLETION_INDEX` with one failing index under backoffLimitPerIndex, and the
//! failure rules: backoffLimit, activeDeadlineSeconds, podFailurePolicy FailJob and
//! Ignore. The replacement back-off is shortened to 1 s (`RKIND_JOB_BACKOFF_SECONDS`).

mod common;

use common::{Cluster, write_file};
use serde_json::Value;

const WAIT: u64 = 150;

fn start(name: &str) -> Cluster {
    Cluster::start_with_env(name, &[("RKIND_JOB_BACKOFF_SECONDS", "1")])
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn job(c: &Cluster, name: &str) -> Value {
    json(&c.ok(&["get", "job", name, "-o", "json"]))
}

fn pods_of(c: &Cluster, name: &str) -> Vec<Value> {
    let list = json(&c.ok(&[
        "get",
        "pods",
        "-l",
        &format!("batch.kubernetes.io/job-name={name}"),
        "-o",
        "json",
    ]));
    list["items"].as_array().cloned().unwrap_or_default()
}

fn condition<'a>(job: &'a Value, kind: &str) -> Option<&'a Value> {
    job["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind && c["status"] == "True")
}

fn apply(c: &Cluster, yaml: &str) {
    let dir = c.data_dir();
    let f = write_file(dir.parent().expect("test dir"), "manifest.yaml", yaml);
    c.ok(&["apply", "-f", f.to_str().expect("path")]);
}

fn event_reasons(c: &Cluster, name: &str) -> Vec<String> {
    let list = json(&c.ok(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={name},involvedObject.kind=Job"),
        "-o",
        "json",
    ]));
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["reason"].as_str().unwrap_or("").to_string())
        .collect()
}

fn wait_condition(c: &Cluster, name: &str, cond: &str) {
    c.ok(&[
        "wait",
        &format!("--for=condition={cond}"),
        &format!("job/{name}"),
        &format!("--timeout={WAIT}s"),
    ]);
}

fn job_yaml(name: &str, spec: &str, command: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
{spec}  template:
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
fn jobs_run_to_completion() {
    let c = start("jobs-complete");
    c.ok(&[
        "create",
        "job",
        "once",
        "--image=rkind/host",
        "--",
        "sh",
        "-c",
        "echo done",
    ]);
    wait_condition(&c, "once", "complete");
    let j = job(&c, "once");
    assert_eq!(j["status"]["succeeded"], 1, "{j}");
    assert_eq!(j["status"]["active"], 0, "{j}");
    assert!(j["status"]["completionTime"].is_string(), "{j}");
    assert!(condition(&j, "SuccessCriteriaMet").is_some(), "{j}");
    let complete = condition(&j, "Complete").expect("Complete");
    assert_eq!(complete["reason"], "CompletionsReached");
    let uid = j["metadata"]["uid"].as_str().expect("uid");
    assert_eq!(
        j["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
        uid
    );
    assert_eq!(j["metadata"]["labels"]["job-name"], "once");
    let pods = pods_of(&c, "once");
    assert_eq!(pods.len(), 1);
    let pod = &pods[0];
    assert_eq!(pod["status"]["phase"], "Succeeded");
    assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "Job");
    // Counted, so the tracking finalizer is gone.
    c.eventually(30, "the tracking finalizer is removed", || {
        pods_of(&c, "once")[0]["metadata"]["finalizers"]
            .as_array()
            .is_none_or(|f| f.is_empty())
    });
    let pod_name = pod["metadata"]["name"].as_str().expect("pod name");
    assert!(pod_name.starts_with("once-"), "{pod_name}");
    assert_eq!(c.ok(&["logs", pod_name]).trim(), "done");
    c.eventually(30, "SuccessfulCreate and Completed events", || {
        let r = event_reasons(&c, "once");
        r.iter().any(|x| x == "SuccessfulCreate") && r.iter().any(|x| x == "Completed")
    });

    // The columns, with both ends of the supported kubectl range.
    for bin in ["kubectl.1.27", "kubectl.1.33"] {
        let out = c.kubectl_bin(bin, &["get", "jobs"], None);
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
            ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
            "{bin}: {text}"
        );
        let row: Vec<&str> = text
            .lines()
            .nth(1)
            .unwrap_or("")
            .split_whitespace()
            .collect();
        assert_eq!(&row[..3], ["once", "Complete", "1/1"], "{bin}: {text}");
        let wide = c.kubectl_bin(bin, &["get", "jobs", "-o", "wide"], None);
        let wide = String::from_utf8_lossy(&wide.stdout).into_owned();
        let wide_header: Vec<&str> = wide
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        assert_eq!(
            &wide_header[5..],
            ["CONTAINERS", "IMAGES", "SELECTOR"],
            "{bin}: {wide}"
        );
        assert!(
            wide.contains(&format!("batch.kubernetes.io/controller-uid={uid}")),
            "{wide}"
        );
    }
    let out = c.kubectl_bin(
        "kubectl.1.27",
        &[
            "create",
            "job",
            "old-client",
            "--image=rkind/host",
            "--",
            "true",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_condition(&c, "old-client", "complete");

    // Three completions, two at a time.
    apply(
        &c,
        &job_yaml("par", "  completions: 3\n  parallelism: 2\n", "echo part"),
    );
    wait_condition(&c, "par", "complete");
    let j = job(&c, "par");
    assert_eq!(j["status"]["succeeded"], 3, "{j}");
    let succeeded = pods_of(&c, "par")
        .iter()
        .filter(|p| p["status"]["phase"] == "Succeeded")
        .count();
    assert_eq!(succeeded, 3);
    assert!(c.ok(&["get", "job", "par"]).contains("3/3"));

    // Suspended: no pods until resumed.
    apply(&c, &job_yaml("later", "  suspend: true\n", "echo resumed"));
    c.eventually(WAIT, "the Suspended condition", || {
        condition(&job(&c, "later"), "Suspended").is_some()
    });
    let j = job(&c, "later");
    assert_eq!(
        condition(&j, "Suspended").expect("Suspended")["reason"],
        "JobSuspended"
    );
    assert!(pods_of(&c, "later").is_empty());
    assert!(j["status"]["startTime"].is_null(), "{j}");
    assert!(c.ok(&["get", "job", "later"]).contains("Suspended"));
    c.ok(&[
        "patch",
        "job",
        "later",
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":false}}"#,
    ]);
    wait_condition(&c, "later", "complete");
    let j = job(&c, "later");
    let resumed = j["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .find(|c| c["type"] == "Suspended")
        .expect("Suspended condition kept")
        .clone();
    assert_eq!(
        (resumed["status"].as_str(), resumed["reason"].as_str()),
        (Some("False"), Some("JobResumed"))
    );
    assert!(event_reasons(&c, "later").iter().any(|r| r == "Resumed"));

    // ttlSecondsAfterFinished: the finished Job and its pods are deleted.
    apply(
        &c,
        &job_yaml("short-lived", "  ttlSecondsAfterFinished: 2\n", "true"),
    );
    c.eventually(WAIT, "the TTL controller deletes the finished job", || {
        let out = c.kubectl(&["get", "job", "short-lived"]);
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NotFound")
    });
    c.eventually(60, "its pods go with it", || {
        pods_of(&c, "short-lived").is_empty()
    });

    // kubectl deletes with background propagation: the pods go too.
    c.ok(&["delete", "job", "once"]);
    c.eventually(60, "the job's pods are collected", || {
        pods_of(&c, "once").is_empty()
    });
}

#[test]
fn indexed_job_with_a_failing_index() {
    let c = start("jobs-indexed");
    let spec = "  completionMode: Indexed\n  completions: 3\n  parallelism: 3\n  backoffLimitPerIndex: 1\n";
    let cmd = "echo index=$JOB_COMPLETION_INDEX; test \"$JOB_COMPLETION_INDEX\" != 1";
    apply(&c, &job_yaml("ix", spec, cmd));
    wait_condition(&c, "ix", "failed");
    let j = job(&c, "ix");
    let failed = condition(&j, "Failed").expect("Failed");
    assert_eq!(failed["reason"], "FailedIndexes", "{j}");
    assert_eq!(failed["message"], "Job has failed indexes");
    assert!(condition(&j, "FailureTarget").is_some(), "{j}");
    assert_eq!(j["status"]["completedIndexes"], "0,2", "{j}");
    assert_eq!(j["status"]["failedIndexes"], "1", "{j}");
    // Index 1 ran twice (one retry), the others once.
    assert_eq!(j["status"]["failed"], 2, "{j}");
    assert_eq!(j["status"]["succeeded"], 2, "{j}");
    let pods = pods_of(&c, "ix");
    assert_eq!(pods.len(), 4, "{pods:?}");
    for p in &pods {
        let name = p["metadata"]["name"].as_str().expect("name");
        let index = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
            .as_str()
            .expect("index annotation");
        assert_eq!(
            p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"],
            index
        );
        assert!(name.starts_with(&format!("ix-{index}-")), "{name}");
        assert_eq!(p["spec"]["hostname"], format!("ix-{index}"));
        assert_eq!(c.ok(&["logs", name]).trim(), format!("index={index}"));
    }
    let retried = pods
        .iter()
        .filter(|p| {
            p["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"] == "1"
        })
        .count();
    assert_eq!(retried, 1, "the retry of index 1 records its failure");
    assert!(c.ok(&["get", "job", "ix"]).contains("Failed"));
    assert!(event_reasons(&c, "ix").iter().any(|r| r == "FailedIndexes"));
}

#[test]
fn failing_jobs() {
    let c = start("jobs-failing");
    // backoffLimit 1: the second failure fails the Job.
    apply(&c, &job_yaml("flaky", "  backoffLimit: 1\n", "exit 1"));
    wait_condition(&c, "flaky", "failed");
    let j = job(&c, "flaky");
    let failed = condition(&j, "Failed").expect("Failed");
    assert_eq!(failed["reason"], "BackoffLimitExceeded");
    assert_eq!(
        failed["message"],
        "Job has reached the specified backoff limit"
    );
    assert_eq!(j["status"]["failed"], 2, "{j}");
    assert!(j["status"]["completionTime"].is_null());
    assert!(
        event_reasons(&c, "flaky")
            .iter()
            .any(|r| r == "BackoffLimitExceeded")
    );

    // activeDeadlineSeconds: the running pod is killed and the Job fails.
    apply(
        &c,
        &job_yaml("slow", "  activeDeadlineSeconds: 3\n", "sleep 3600"),
    );
    wait_condition(&c, "slow", "failed");
    let j = job(&c, "slow");
    assert_eq!(
        condition(&j, "Failed").expect("Failed")["reason"],
        "DeadlineExceeded"
    );
    assert_eq!(
        condition(&j, "Failed").expect("Failed")["message"],
        "Job was active longer than specified deadline"
    );
    c.eventually(60, "its pod is gone or finished", || {
        pods_of(&c, "slow").iter().all(|p| {
            !p["metadata"]["deletionTimestamp"].is_null() || p["status"]["phase"] == "Failed"
        })
    });

    // podFailurePolicy: exit 42 fails the Job at once, whatever the backoffLimit.
    let policy = "  backoffLimit: 6
  podFailurePolicy:
    rules:
    - action: Ignore
      onExitCodes: {operator: In, values: [7]}
    - action: FailJob
      onExitCodes: {containerName: main, operator: In, values: [42]}
";
    apply(&c, &job_yaml("fatal", policy, "exit 42"));
    wait_condition(&c, "fatal", "failed");
    let j = job(&c, "fatal");
    let failed = condition(&j, "Failed").expect("Failed");
    assert_eq!(failed["reason"], "PodFailurePolicy");
    let pod = pods_of(&c, "fatal")[0]["metadata"]["name"]
        .as_str()
        .expect("pod")
        .to_string();
    assert_eq!(
        failed["message"],
        format!(
            "Container main for pod default/{pod} failed with exit code 42 matching FailJob rule at index 1"
        )
    );
    assert_eq!(
        pods_of(&c, "fatal").len(),
        1,
        "no replacement after FailJob"
    );

    // Ignore: with backoffLimit 0 an ignored failure neither counts nor fails the Job;
    // the pod is replaced.
    let ignore = "  backoffLimit: 0
  podFailurePolicy:
    rules:
    - action: Ignore
      onExitCodes: {operator: In, values: [7]}
";
    apply(&c, &job_yaml("ignored", ignore, "exit 7"));
    c.eventually(WAIT, "the ignored failure is replaced", || {
        pods_of(&c, "ignored").len() >= 2
    });
    let j = job(&c, "ignored");
    assert_eq!(j["status"]["failed"].as_i64().unwrap_or(0), 0, "{j}");
    assert!(condition(&j, "Failed").is_none(), "{j}");
    assert!(condition(&j, "FailureTarget").is_none(), "{j}");
    c.ok(&["delete", "job", "ignored", "slow", "--wait=true"]);
    c.eventually(60, "the deleted jobs' pods are gone", || {
        pods_of(&c, "ignored").is_empty() && pods_of(&c, "slow").is_empty()
    });
}
