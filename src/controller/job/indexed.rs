//! Indexed Jobs (upstream's indexed_job_utils.go): each pod carries its completion index
//! (annotation and label), `JOB_COMPLETION_INDEX` from the downward API, a hostname
//! `<job>-<index>`, and with `backoffLimitPerIndex` the failures of its index so far.

use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    Container, EnvVar, EnvVarSource, ObjectFieldSelector, Pod, PodTemplateSpec,
};

use crate::apiserver::kinds::batch::job::{COMPLETION_INDEX, TRACKING_FINALIZER};

/// The annotation with the failures of an index before this pod.
pub const INDEX_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-failure-count";
/// The environment variable with the completion index.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// Whether the Job is Indexed.
pub fn is_indexed(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.completion_mode.as_deref()) == Some("Indexed")
}

/// The completion index of `pod`, if it has a valid one below `completions`.
pub fn index_of(pod: &Pod, completions: i32) -> Option<i64> {
    let v = pod.metadata.annotations.as_ref()?.get(COMPLETION_INDEX)?;
    let i: i64 = v.parse().ok()?;
    (0..i64::from(completions)).contains(&i).then_some(i)
}

/// The failures of its index recorded on `pod` when it was created.
pub fn failure_count(pod: &Pod) -> i64 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(INDEX_FAILURE_COUNT))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn add_index_env(c: &mut Container) {
    let env = c.env.get_or_insert_with(Vec::new);
    if env.iter().any(|e| e.name == INDEX_ENV) {
        return;
    }
    env.push(EnvVar {
        name: INDEX_ENV.into(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: format!("metadata.annotations['{COMPLETION_INDEX}']"),
            }),
            ..Default::default()
        }),
    });
}

/// The template of a new pod of `job`: the Job's template with the tracking finalizer,
/// and for an Indexed Job the index, its environment, hostname and failure count.
/// Returns it with the pod's `generateName`.
pub fn pod_template(
    job: &Job,
    index: Option<i64>,
    failures: Option<i64>,
) -> (PodTemplateSpec, String) {
    let name = job.metadata.name.clone().unwrap_or_default();
    let mut t = job
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let meta = t.metadata.get_or_insert_with(Default::default);
    let finalizers = meta.finalizers.get_or_insert_with(Vec::new);
    if !finalizers.iter().any(|f| f == TRACKING_FINALIZER) {
        finalizers.push(TRACKING_FINALIZER.into());
    }
    let Some(i) = index else {
        return (t, format!("{name}-"));
    };
    let annotations = meta.annotations.get_or_insert_with(Default::default);
    annotations.insert(COMPLETION_INDEX.into(), i.to_string());
    if let Some(f) = failures {
        annotations.insert(INDEX_FAILURE_COUNT.into(), f.to_string());
    }
    meta.labels
        .get_or_insert_with(Default::default)
        .insert(COMPLETION_INDEX.into(), i.to_string());
    if let Some(spec) = t.spec.as_mut() {
        spec.hostname = Some(format!("{name}-{i}"));
        for c in spec.init_containers.iter_mut().flatten() {
            add_index_env(c);
        }
        for c in spec.containers.iter_mut() {
            add_index_env(c);
        }
    }
    (t, format!("{name}-{i}-"))
}

/// The pods holding each index (active ones), for duplicate detection.
pub fn by_index(
    pods: &[Arc<Pod>],
    completions: i32,
) -> std::collections::BTreeMap<i64, Vec<Arc<Pod>>> {
    let mut out: std::collections::BTreeMap<i64, Vec<Arc<Pod>>> = Default::default();
    for p in pods {
        if let Some(i) = index_of(p, completions) {
            out.entry(i).or_default().push(p.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn indexed_pods_carry_their_index() {
        let job: Job = serde_json::from_value(json!({
            "metadata": {"name": "ix", "namespace": "d", "uid": "u"},
            "spec": {"completionMode": "Indexed", "completions": 3, "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"subdomain": "svc", "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "i"}]}}}}))
        .unwrap();
        let (t, gen_name) = pod_template(&job, Some(2), Some(1));
        assert_eq!(gen_name, "ix-2-");
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["metadata"]["annotations"][COMPLETION_INDEX], "2");
        assert_eq!(v["metadata"]["annotations"][INDEX_FAILURE_COUNT], "1");
        assert_eq!(v["metadata"]["labels"][COMPLETION_INDEX], "2");
        assert_eq!(v["metadata"]["finalizers"], json!([TRACKING_FINALIZER]));
        assert_eq!(v["spec"]["hostname"], "ix-2");
        assert_eq!(v["spec"]["subdomain"], "svc");
        assert_eq!(
            v["spec"]["containers"][0]["env"],
            json!([{"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
                "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}}])
        );
        let pod: Pod =
            serde_json::from_value(json!({"metadata": {"annotations": {COMPLETION_INDEX: "2"}}}))
                .unwrap();
        assert_eq!(index_of(&pod, 3), Some(2));
        assert_eq!(index_of(&pod, 2), None);
        let (plain, gen_name) = pod_template(&job, None, None);
        assert_eq!(gen_name, "ix-");
        assert!(plain.spec.unwrap().hostname.is_none());
    }
}
