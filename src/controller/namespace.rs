//! kube-controller-manager's namespace controller (upstream's
//! `pkg/controller/namespace` and its `deletion` package): a namespace being deleted is
//! emptied over HTTPS — every namespaced resource discovery lists with `delete` gets a
//! `deletecollection` (list + delete each where the server does not allow it) — its
//! `status.conditions` say what went wrong or what remains, and once nothing remains the
//! `kubernetes` finalizer is removed with `PUT .../finalize`. The API server removes the
//! namespace when both finalizer lists are empty; other `spec.finalizers` keep it
//! `Terminating` until their owners finalize it too.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use k8s_openapi::api::core::v1::Namespace;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::api_resources::{self, ApiResource, get_json, request_json};
use super::informer::{Change, Informer};
use super::{Action, WorkQueue, code, run_workers};

/// The finalizer this controller owns.
pub const FINALIZER: &str = "kubernetes";

/// How long upstream assumes content with finalizers takes to go away.
const FINALIZER_ESTIMATE_SECONDS: i64 = 15;

/// The condition types the controller maintains, in upstream's order, with the reason
/// and message of their "all is well" form.
const CONDITIONS: &[(&str, &str, &str)] = &[
    (
        "NamespaceDeletionDiscoveryFailure",
        "ResourcesDiscovered",
        "All resources successfully discovered",
    ),
    (
        "NamespaceDeletionGroupVersionParsingFailure",
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (
        "NamespaceDeletionContentFailure",
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    (
        "NamespaceContentRemaining",
        "ContentRemoved",
        "All content successfully removed",
    ),
    (
        "NamespaceFinalizersRemaining",
        "ContentRemoved",
        "All content successfully removed",
    ),
];

/// How long a namespace event waits before it is processed. Upstream waits 5 s so that
/// other API servers' lifecycle admission sees the deletion first; rkind has one API
/// server reading one store, so none by default (`RKIND_NAMESPACE_EVENT_DELAY_MS`).
fn event_delay() -> Duration {
    std::env::var("RKIND_NAMESPACE_EVENT_DELAY_MS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::ZERO)
}

/// Why one pass over a namespace did not finish it.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A request about the namespace itself failed.
    #[error("{what}: {source}")]
    Request {
        /// What was being done.
        what: &'static str,
        /// The client's error.
        source: kube_client::Error,
    },
    /// The namespace was replaced by another of the same name between retries.
    #[error("namespace uid has changed across retries")]
    UidChanged,
    /// Emptying failed for some resources (upstream's aggregate error).
    #[error("{}", aggregate(.0))]
    Content(Vec<String>),
}

/// `utilerrors.NewAggregate(...).Error()`: one message alone, several in brackets.
fn aggregate(msgs: &[String]) -> String {
    match msgs {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// The controller, subscribed to the shared Namespace informer.
pub struct Controller {
    client: kube_client::Client,
    feed: mpsc::Receiver<Change<Namespace>>,
    queue: Arc<WorkQueue<String>>,
    shutdown: CancellationToken,
}

impl Controller {
    /// Subscribes to `namespaces` (register before the informer runs).
    pub fn new(
        client: kube_client::Client,
        namespaces: &mut Informer<Namespace>,
        shutdown: CancellationToken,
    ) -> Self {
        Controller {
            client,
            feed: namespaces.subscribe(),
            queue: Arc::new(WorkQueue::new(shutdown.clone())),
            shutdown,
        }
    }

    /// Runs the trigger and the worker.
    pub fn start(self) -> Vec<JoinHandle<()>> {
        let Controller {
            client,
            mut feed,
            queue,
            shutdown,
        } = self;
        let q = queue.clone();
        let delay = event_delay();
        let trigger = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    c = feed.recv() => match c {
                        Some(Change::Applied(ns)) if ns.metadata.deletion_timestamp.is_some() => {
                            q.add_after(ns.metadata.name.clone().unwrap_or_default(), delay);
                        }
                        Some(_) => {}
                        None => return,
                    },
                }
            }
        });
        let worker = tokio::spawn(run_workers("namespace", queue, move |name: String| {
            let client = client.clone();
            async move { sync(&client, &name).await }
        }));
        vec![trigger, worker]
    }
}

fn ns_path(name: &str) -> String {
    format!("/api/v1/namespaces/{name}")
}

/// Upstream's `Delete`: one pass over namespace `name`.
async fn sync(client: &kube_client::Client, name: &str) -> Result<Action, SyncError> {
    let ns = match get_json(client, &ns_path(name)).await {
        Ok(ns) => ns,
        Err(e) if code(&e) == 404 => return Ok(Action::Done),
        Err(source) => {
            return Err(SyncError::Request {
                what: "get namespace",
                source,
            });
        }
    };
    if !ns["metadata"]["deletionTimestamp"].is_string() {
        return Ok(Action::Done);
    }
    let ns = match retry_on_conflict(client, ns, Step::MarkTerminating).await {
        Ok(ns) => ns,
        Err(SyncError::Request { source, .. }) if code(&source) == 404 => {
            return Ok(Action::Done);
        }
        Err(e) => return Err(e),
    };
    if finalizers(&ns).is_empty() {
        return Ok(Action::Done);
    }
    let estimate = delete_all_content(client, ns.clone()).await?;
    if estimate > 0 {
        tracing::debug!(
            namespace = name,
            estimate,
            "some content remains in the namespace"
        );
        let secs = u64::try_from(estimate / 2 + 1).unwrap_or(1);
        return Ok(Action::RequeueAfter(Duration::from_secs(secs)));
    }
    match retry_on_conflict(client, ns, Step::Finalize).await {
        Ok(_) => Ok(Action::Done),
        Err(SyncError::Request { source, .. }) if code(&source) == 404 => Ok(Action::Done),
        Err(e) => Err(e),
    }
}

fn finalizers(ns: &Value) -> Vec<String> {
    ns["spec"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(String::from))
        .collect()
}

/// The namespace writes that are retried on conflict.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Set phase Terminating if a deleted namespace does not show it yet.
    MarkTerminating,
    /// Remove this controller's finalizer (the rest stay, sorted, as upstream's set).
    Finalize,
}

/// One attempt of `step` on `ns`.
async fn attempt(client: &kube_client::Client, ns: &Value, step: Step) -> Result<Value, SyncError> {
    let name = ns["metadata"]["name"].as_str().unwrap_or("");
    let mut new = ns.clone();
    let (sub, what) = match step {
        Step::MarkTerminating => {
            if ns["status"]["phase"] == "Terminating" {
                return Ok(ns.clone());
            }
            new["status"]["phase"] = json!("Terminating");
            ("status", "update namespace status")
        }
        Step::Finalize => {
            let mut rest: Vec<String> = finalizers(ns)
                .into_iter()
                .filter(|f| f != FINALIZER)
                .collect();
            rest.sort();
            rest.dedup();
            new["spec"]["finalizers"] = json!(rest);
            ("finalize", "finalize namespace")
        }
    };
    let path = format!("{}/{sub}", ns_path(name));
    request_json(client, Method::PUT, &path, Some(&new))
        .await
        .map_err(|source| SyncError::Request { what, source })
}

/// Runs `step` on the namespace, re-reading it after each conflict (upstream's
/// `retryOnConflictError`, which also refuses a namespace whose uid changed).
async fn retry_on_conflict(
    client: &kube_client::Client,
    mut ns: Value,
    step: Step,
) -> Result<Value, SyncError> {
    loop {
        match attempt(client, &ns, step).await {
            Err(SyncError::Request { source, .. }) if code(&source) == 409 => {
                let name = ns["metadata"]["name"].as_str().unwrap_or("");
                let latest = get_json(client, &ns_path(name)).await.map_err(|source| {
                    SyncError::Request {
                        what: "get namespace",
                        source,
                    }
                })?;
                if latest["metadata"]["uid"] != ns["metadata"]["uid"] {
                    return Err(SyncError::UidChanged);
                }
                ns = latest;
            }
            other => return other,
        }
    }
}

/// What remains of one resource after a deletion pass.
#[derive(Debug, Default)]
struct Remaining {
    /// Seconds to wait before looking again (0: no estimate).
    estimate: i64,
    /// How many objects are left.
    count: usize,
    /// Finalizer → how many of the left objects carry it.
    finalizers: BTreeMap<String, usize>,
}

/// The options every content deletion sends: no orphaning, dependents in the background.
fn background() -> Value {
    json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})
}

/// Upstream's `deleteAllContent`: every resource is emptied, the conditions are written
/// when they changed, and the longest estimate is returned (or the aggregate error).
async fn delete_all_content(client: &kube_client::Client, mut ns: Value) -> Result<i64, SyncError> {
    let name = ns["metadata"]["name"].as_str().unwrap_or("").to_string();
    let deleted_at = ns["metadata"]["deletionTimestamp"]
        .as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .unwrap_or_else(jiff::Timestamp::now);
    let mut errors: Vec<String> = Vec::new();
    let mut failed: BTreeMap<&'static str, (&'static str, String)> = BTreeMap::new();
    let discovered = match api_resources::preferred_namespaced(client).await {
        Ok(d) => d,
        Err(e) => {
            errors.push(e.to_string());
            failed.insert(
                "NamespaceDeletionDiscoveryFailure",
                ("DiscoveryFailed", e.to_string()),
            );
            Default::default()
        }
    };
    if let Some(msg) = discovered.failure_message() {
        errors.push(msg.clone());
        failed.insert(
            "NamespaceDeletionDiscoveryFailure",
            (
                "DiscoveryFailed",
                format!(
                    "Discovery failed for some groups, {} failing: {msg}",
                    discovered.failed.len()
                ),
            ),
        );
    }
    if let Some(first) = discovered.unparsable.first() {
        errors.push(first.clone());
        failed.insert(
            "NamespaceDeletionGroupVersionParsingFailure",
            ("GroupVersionParsingFailed", first.clone()),
        );
    }
    let mut estimate = 0i64;
    let mut content_errors = Vec::new();
    let mut remaining: Vec<(String, usize)> = Vec::new();
    let mut by_finalizer: BTreeMap<String, usize> = BTreeMap::new();
    for res in discovered.resources.iter().filter(|r| r.supports("delete")) {
        let (left, err) = delete_resource(client, res, &name, deleted_at).await;
        if let Some(e) = err {
            content_errors.push(e);
        }
        estimate = estimate.max(left.estimate);
        if left.count > 0 {
            remaining.push((format!("{}.{}", res.plural, res.group), left.count));
            for (f, n) in left.finalizers {
                *by_finalizer.entry(f).or_default() += n;
            }
        }
    }
    errors.extend(content_errors.iter().cloned());
    let mut wanted = failed;
    if !content_errors.is_empty() {
        let mut msgs = content_errors.clone();
        msgs.sort();
        wanted.insert(
            "NamespaceDeletionContentFailure",
            (
                "ContentDeletionFailed",
                format!(
                    "Failed to delete all resource types, {} remaining: {}",
                    msgs.len(),
                    msgs.join(", ")
                ),
            ),
        );
    }
    if !remaining.is_empty() {
        let mut parts: Vec<String> = remaining
            .iter()
            .map(|(r, n)| format!("{r} has {n} resource instances"))
            .collect();
        parts.sort();
        wanted.insert(
            "NamespaceContentRemaining",
            (
                "SomeResourcesRemain",
                format!("Some resources are remaining: {}", parts.join(", ")),
            ),
        );
    }
    if !by_finalizer.is_empty() {
        let mut parts: Vec<String> = by_finalizer
            .iter()
            .map(|(f, n)| format!("{f} in {n} resource instances"))
            .collect();
        parts.sort();
        wanted.insert(
            "NamespaceFinalizersRemaining",
            (
                "SomeFinalizersRemain",
                format!(
                    "Some content in the namespace has finalizers remaining: {}",
                    parts.join(", ")
                ),
            ),
        );
    }
    if update_conditions(&mut ns, &wanted, &crate::apiserver::defaults::now_rfc3339()) {
        let path = format!("{}/status", ns_path(&name));
        if let Err(e) = request_json(client, Method::PUT, &path, Some(&ns)).await {
            tracing::warn!(namespace = %name, error = %e, "couldn't update status condition for namespace");
        }
    }
    if errors.is_empty() {
        Ok(estimate)
    } else {
        Err(SyncError::Content(errors))
    }
}

/// Brings the controller's conditions of `ns` to `wanted` (type → reason, message; the
/// others get their "all is well" form); true when something changed. The transition
/// time moves only when a condition's status does.
fn update_conditions(
    ns: &mut Value,
    wanted: &BTreeMap<&'static str, (&'static str, String)>,
    now: &str,
) -> bool {
    let mut conditions: Vec<Value> = ns["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut changed = false;
    for (ty, ok_reason, ok_message) in CONDITIONS {
        let (status, reason, message) = match wanted.get(ty) {
            Some((r, m)) => ("True", *r, m.clone()),
            None => ("False", *ok_reason, ok_message.to_string()),
        };
        match conditions.iter_mut().find(|c| c["type"] == *ty) {
            None => {
                conditions.push(
                    json!({"type": ty, "status": status, "lastTransitionTime": now,
                    "reason": reason, "message": message}),
                );
                changed = true;
            }
            Some(c) => {
                if c["status"] != status || c["reason"] != reason || c["message"] != message {
                    if c["status"] != status {
                        c["lastTransitionTime"] = json!(now);
                    }
                    c["status"] = json!(status);
                    c["reason"] = json!(reason);
                    c["message"] = json!(message);
                    changed = true;
                }
            }
        }
    }
    ns["status"]["conditions"] = json!(conditions);
    changed
}

/// Upstream's `deleteAllContentForGroupVersionResource`: estimate, deletecollection (or
/// list and delete each), then count what is left and the finalizers holding it.
async fn delete_resource(
    client: &kube_client::Client,
    res: &ApiResource,
    ns: &str,
    deleted_at: jiff::Timestamp,
) -> (Remaining, Option<String>) {
    let estimate = match estimate_graceful_termination(client, res, ns, deleted_at).await {
        Ok(e) => e,
        Err(e) => return (Remaining::default(), Some(e.to_string())),
    };
    let with = |e: kube_client::Error| {
        (
            Remaining {
                estimate,
                ..Default::default()
            },
            Some(e.to_string()),
        )
    };
    let path = res.collection(ns);
    let mut collection_done = false;
    if res.supports("deletecollection") {
        match request_json(client, Method::DELETE, &path, Some(&background())).await {
            Ok(_) => collection_done = true,
            Err(e) if matches!(code(&e), 404 | 405) => {}
            Err(e) => return with(e),
        }
    }
    if !res.supports("list") {
        return (
            Remaining {
                estimate,
                ..Default::default()
            },
            None,
        );
    }
    if !collection_done {
        let items = match list(client, &path).await {
            Ok(Some(items)) => items,
            Ok(None) => Vec::new(),
            Err(e) => return with(e),
        };
        for item in items {
            let name = item["metadata"]["name"].as_str().unwrap_or("");
            let one = format!("{path}/{name}");
            match request_json(client, Method::DELETE, &one, Some(&background())).await {
                Ok(_) => {}
                Err(e) if matches!(code(&e), 404 | 405) => {}
                Err(e) => return with(e),
            }
        }
    }
    let items = match list(client, &path).await {
        Ok(Some(items)) => items,
        Ok(None) => return (Remaining::default(), None),
        Err(e) => return with(e),
    };
    if items.is_empty() {
        return (Remaining::default(), None);
    }
    let mut finalizers: BTreeMap<String, usize> = BTreeMap::new();
    for item in &items {
        for f in item["metadata"]["finalizers"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(f) = f.as_str() {
                *finalizers.entry(f.to_string()).or_default() += 1;
            }
        }
    }
    let count = items.len();
    if estimate != 0 {
        return (
            Remaining {
                estimate,
                count,
                finalizers,
            },
            None,
        );
    }
    if !finalizers.is_empty() {
        return (
            Remaining {
                estimate: FINALIZER_ESTIMATE_SECONDS,
                count,
                finalizers,
            },
            None,
        );
    }
    let gvr = format!("{}/{}, Resource={}", res.group, res.version, res.plural);
    (
        Remaining {
            estimate,
            count,
            finalizers,
        },
        Some(format!(
            "unexpected items still remain in namespace: {ns} for gvr: {gvr}"
        )),
    )
}

/// The items of a collection; `None` when the server does not list it (404/405).
async fn list(
    client: &kube_client::Client,
    path: &str,
) -> Result<Option<Vec<Value>>, kube_client::Error> {
    match get_json(client, path).await {
        Ok(l) => Ok(Some(l["items"].as_array().cloned().unwrap_or_default())),
        Err(e) if matches!(code(&e), 404 | 405) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Upstream's `estimateGracefulTermination`: for pods, the longest grace period of a pod
/// still running, unless that much time has passed since the namespace was deleted.
async fn estimate_graceful_termination(
    client: &kube_client::Client,
    res: &ApiResource,
    ns: &str,
    deleted_at: jiff::Timestamp,
) -> Result<i64, kube_client::Error> {
    if !(res.group.is_empty() && res.plural == "pods") {
        return Ok(0);
    }
    let pods = get_json(client, &res.collection(ns)).await?;
    let estimate = pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
        .filter_map(|p| p["spec"]["terminationGracePeriodSeconds"].as_i64())
        .max()
        .unwrap_or(0);
    let elapsed = jiff::Timestamp::now().duration_since(deleted_at).as_secs();
    Ok(if elapsed >= estimate { 0 } else { estimate })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_get_their_ok_form_and_move_only_on_change() {
        let mut ns = json!({"status": {"phase": "Terminating"}});
        let mut wanted = BTreeMap::new();
        wanted.insert(
            "NamespaceContentRemaining",
            (
                "SomeResourcesRemain",
                "Some resources are remaining: pods. has 1 resource instances".to_string(),
            ),
        );
        assert!(update_conditions(&mut ns, &wanted, "t1"));
        let conds = ns["status"]["conditions"].as_array().unwrap().clone();
        assert_eq!(conds.len(), 5);
        assert_eq!(conds[3]["status"], "True");
        assert_eq!(conds[0]["reason"], "ResourcesDiscovered");
        assert!(
            !update_conditions(&mut ns, &wanted, "t2"),
            "nothing changed"
        );
        assert!(update_conditions(&mut ns, &BTreeMap::new(), "t3"));
        assert_eq!(ns["status"]["conditions"][3]["status"], "False");
        assert_eq!(ns["status"]["conditions"][3]["lastTransitionTime"], "t3");
        assert_eq!(ns["status"]["conditions"][0]["lastTransitionTime"], "t1");
    }

    #[test]
    fn aggregate_errors_read_as_upstream() {
        assert_eq!(aggregate(&["a".into()]), "a");
        assert_eq!(aggregate(&["a".into(), "b".into()]), "[a, b]");
    }
}
