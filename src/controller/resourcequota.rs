//! kube-controller-manager's resource quota controller (upstream's
//! `pkg/controller/resourcequota`): every quota's `status` (`hard` from the spec, `used`
//! recalculated from the namespace's objects, listed over HTTPS) is brought up to date
//!
//! - when a quota is created or its `spec.hard` changes;
//! - when an object it counts goes away, or stops counting (a pod finishing, a service
//!   changing type, a claim shrinking): one monitor (a watch) per quotable resource,
//!   found by discovery and re-discovered periodically so CRDs are followed;
//! - in a full resync of every quota, every 5 minutes as upstream
//!   (`RKIND_QUOTA_RESYNC_SECONDS` shortens it, for tests).
//!
//! The usage arithmetic is the admission plugin's ([`quota_usage`]), so both agree.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::Method;
use k8s_openapi::api::core::v1::ResourceQuota;
use kube_client::Api;
use kube_client::api::DynamicObject;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::api_resources::{self, ApiResource, get_json, request_json};
use super::informer::{BY_NAMESPACE, Cache, Change, Informer, ObjectKey, by_namespace};
use super::{Action, WorkQueue, run_workers, watch_config};
use crate::apiserver::admission::quantity::{self, ResourceList};
use crate::apiserver::admission::quota_usage::{self, Evaluator, evaluator_for_resource};

/// Upstream's full resync period of every quota.
const DEFAULT_RESYNC: Duration = Duration::from_secs(300);
/// How often the quotable resources are discovered again (upstream's 30 s).
const DISCOVERY_PERIOD: Duration = Duration::from_secs(30);

/// The full resync period: `RKIND_QUOTA_RESYNC_SECONDS`, else 5 minutes.
fn resync_period() -> Duration {
    std::env::var("RKIND_QUOTA_RESYNC_SECONDS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_RESYNC)
}

/// Why one quota could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A request failed.
    #[error("{what}: {source}")]
    Request {
        /// What was being done.
        what: String,
        /// The client's error.
        source: kube_client::Error,
    },
    /// Discovery found nothing.
    #[error(transparent)]
    Discovery(#[from] api_resources::DiscoveryError),
}

/// The controller, wired to its quota informer (start it with [`Controller::start`]).
pub struct Controller {
    ctx: Arc<Ctx>,
    feed: mpsc::Receiver<Change<ResourceQuota>>,
    quotas: Informer<ResourceQuota>,
    shutdown: CancellationToken,
}

struct Ctx {
    client: kube_client::Client,
    quotas: Cache<ResourceQuota>,
    queue: Arc<WorkQueue<ObjectKey>>,
    /// The namespaced resources last discovered.
    resources: RwLock<Vec<ApiResource>>,
}

impl Controller {
    /// Sets up the informer of every ResourceQuota.
    pub fn new(client: kube_client::Client, shutdown: CancellationToken) -> Self {
        let mut quotas = Informer::new(
            Api::all(client.clone()),
            watch_config(),
            "resourcequotas",
            vec![by_namespace()],
        );
        let ctx = Arc::new(Ctx {
            client,
            quotas: quotas.cache(),
            queue: Arc::new(WorkQueue::new(shutdown.clone())),
            resources: RwLock::new(Vec::new()),
        });
        Controller {
            ctx,
            feed: quotas.subscribe(),
            quotas,
            shutdown,
        }
    }

    /// Runs the informer, the triggers, the monitors, the resync and the worker; returns
    /// their tasks and the quota cache (to wait for its sync).
    pub fn start(self) -> (Vec<JoinHandle<()>>, Cache<ResourceQuota>) {
        let Controller {
            ctx,
            mut feed,
            quotas,
            shutdown,
        } = self;
        let cache = quotas.cache();
        let mut tasks = vec![tokio::spawn(quotas.run(shutdown.clone()))];
        let q = ctx.queue.clone();
        let stop = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            // spec.hard last seen per quota: status-only changes are this controller's own.
            let mut seen: HashMap<ObjectKey, Value> = HashMap::new();
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    c = feed.recv() => match c {
                        Some(Change::Applied(quota)) => {
                            let key = ObjectKey::of(quota.as_ref());
                            let hard = serde_json::to_value(quota.spec.as_ref().and_then(|s| s.hard.as_ref()))
                                .unwrap_or(Value::Null);
                            let status_hard = serde_json::to_value(quota.status.as_ref().and_then(|s| s.hard.as_ref()))
                                .unwrap_or(Value::Null);
                            let changed = seen.insert(key.clone(), hard.clone()).as_ref() != Some(&hard);
                            if changed || !same_list(&hard, &status_hard) {
                                q.add(key);
                            }
                        }
                        Some(Change::Deleted(quota)) => {
                            seen.remove(&ObjectKey::of(quota.as_ref()));
                        }
                        None => return,
                    },
                }
            }
        }));
        let period = resync_period();
        let resync_ctx = ctx.clone();
        let stop = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(period) => {}
                }
                for quota in resync_ctx.quotas.list() {
                    resync_ctx.queue.add(ObjectKey::of(quota.as_ref()));
                }
            }
        }));
        tasks.push(tokio::spawn(ctx.clone().monitors(shutdown.clone())));
        let queue = ctx.queue.clone();
        tasks.push(tokio::spawn(run_workers(
            "resourcequota",
            queue,
            move |key: ObjectKey| {
                let ctx = ctx.clone();
                async move { ctx.sync(&key).await }
            },
        )));
        (tasks, cache)
    }
}

/// Whether two JSON resource lists hold the same quantities.
fn same_list(a: &Value, b: &Value) -> bool {
    a.is_object() == b.is_object() && quantity::list_of(a) == quantity::list_of(b)
}

/// Whether the quota controller follows `res`: it can be listed, watched and deleted,
/// and quota does not ignore it (upstream's quotable resources).
fn quotable(res: &ApiResource) -> bool {
    ["create", "list", "watch", "delete"]
        .iter()
        .all(|v| res.supports(v))
        && !quota_usage::ignored_resource(&res.group, &res.plural)
}

impl Ctx {
    /// Keeps one monitor per quotable resource, discovering them again periodically.
    async fn monitors(self: Arc<Self>, shutdown: CancellationToken) {
        let mut running: BTreeMap<ApiResource, CancellationToken> = BTreeMap::new();
        loop {
            match api_resources::preferred_namespaced(&self.client).await {
                Ok(found) => {
                    let wanted: Vec<ApiResource> = found
                        .resources
                        .iter()
                        .filter(|r| quotable(r))
                        .cloned()
                        .collect();
                    running.retain(|res, stop| {
                        let keep = wanted.contains(res);
                        if !keep {
                            stop.cancel();
                        }
                        keep
                    });
                    for res in &wanted {
                        if !running.contains_key(res) {
                            let stop = shutdown.child_token();
                            self.clone().start_monitor(res.clone(), stop.clone());
                            running.insert(res.clone(), stop);
                        }
                    }
                    if let Ok(mut r) = self.resources.write() {
                        *r = found.resources;
                    }
                }
                Err(e) => tracing::debug!(error = %e, "quota controller: discovery failed"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(DISCOVERY_PERIOD) => {}
            }
        }
    }

    /// Watches `res` until `stop`: a deleted object, or one whose usage changed, sends
    /// its namespace's quotas that count it to be recalculated (upstream's replenishment).
    fn start_monitor(self: Arc<Self>, res: ApiResource, stop: CancellationToken) {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &res.kube());
        let mut informer = Informer::new(api, watch_config(), "quota-monitor", vec![]);
        let mut feed = informer.subscribe();
        tokio::spawn(informer.run(stop.clone()));
        let ev = evaluator_for_resource(&res.group, &res.plural);
        tokio::spawn(async move {
            // What each object used when last seen (only where usage changes in place).
            let mut usage: HashMap<ObjectKey, ResourceList> = HashMap::new();
            let tracks_updates = !matches!(ev, Evaluator::Count(_));
            loop {
                let change = tokio::select! {
                    _ = stop.cancelled() => return,
                    c = feed.recv() => match c { Some(c) => c, None => return },
                };
                match change {
                    Change::Deleted(obj) => {
                        let key = ObjectKey::of(obj.as_ref());
                        usage.remove(&key);
                        self.replenish(&key.namespace, &ev);
                    }
                    Change::Applied(obj) if tracks_updates => {
                        let key = ObjectKey::of(obj.as_ref());
                        let Ok(v) = serde_json::to_value(obj.as_ref()) else {
                            continue;
                        };
                        let now = ev.usage(&v, jiff::Timestamp::now());
                        if let Some(before) = usage.insert(key.clone(), now.clone())
                            && before != now
                        {
                            self.replenish(&key.namespace, &ev);
                        }
                    }
                    Change::Applied(_) => {}
                }
            }
        });
    }

    /// Queues the quotas of `namespace` that measure something `ev` measures.
    fn replenish(&self, namespace: &str, ev: &Evaluator) {
        for quota in self.quotas.by_index(BY_NAMESPACE, namespace) {
            let hard: Vec<String> = quota
                .spec
                .as_ref()
                .and_then(|s| s.hard.as_ref())
                .map(|h| h.keys().cloned().collect())
                .unwrap_or_default();
            if !ev.matching(&hard).is_empty() {
                self.queue.add(ObjectKey::of(quota.as_ref()));
            }
        }
    }

    /// The resources to count from (discovered now if the monitors have not yet).
    async fn resources(&self) -> Result<Vec<ApiResource>, SyncError> {
        let known = self.resources.read().map(|r| r.clone()).unwrap_or_default();
        if !known.is_empty() {
            return Ok(known);
        }
        Ok(api_resources::preferred_namespaced(&self.client)
            .await?
            .resources)
    }

    /// Upstream's `syncResourceQuota`: recalculates one quota and writes its status when
    /// it differs.
    async fn sync(&self, key: &ObjectKey) -> Result<Action, SyncError> {
        let path = format!(
            "/api/v1/namespaces/{}/resourcequotas/{}",
            key.namespace, key.name
        );
        // From the informer's cache, as upstream's lister (the controller's role may not
        // get quotas; a stale copy makes the status write conflict and come back).
        let Some(quota) = self.quotas.get(key) else {
            return Ok(Action::Done);
        };
        let quota = serde_json::to_value(quota.as_ref()).map_err(|e| SyncError::Request {
            what: "encode quota".into(),
            source: kube_client::Error::SerdeError(e),
        })?;
        let hard: Vec<String> = quantity::list_of(&quota["spec"]["hard"])
            .into_keys()
            .collect();
        let scopes = quota_usage::quota_scopes(&quota);
        let now = jiff::Timestamp::now();
        let mut computed = ResourceList::new();
        for res in self.resources().await? {
            if !res.supports("list") || quota_usage::ignored_resource(&res.group, &res.plural) {
                continue;
            }
            let ev = evaluator_for_resource(&res.group, &res.plural);
            let names = ev.matching(&hard);
            if names.is_empty() {
                continue;
            }
            let list = get_json(&self.client, &res.collection(&key.namespace))
                .await
                .map_err(|source| SyncError::Request {
                    what: format!("list {}", res.plural),
                    source,
                })?;
            let items = list["items"].as_array().cloned().unwrap_or_default();
            let used = quota_usage::kind_usage(&ev, &scopes, &names, &items, now);
            computed = quantity::add(&computed, &used);
        }
        let status = quota_usage::quota_status(&quota, &computed);
        if quota_usage::status_current(&quota, &status) {
            return Ok(Action::Done);
        }
        let mut new = quota;
        new["status"] = status;
        request_json(
            &self.client,
            Method::PUT,
            &format!("{path}/status"),
            Some(&new),
        )
        .await
        .map_err(|source| SyncError::Request {
            what: "update quota status".into(),
            source,
        })?;
        Ok(Action::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quotable_resources_need_the_verbs_and_are_not_events() {
        let res = |group: &str, plural: &str, verbs: &[&str]| ApiResource {
            group: group.into(),
            version: "v1".into(),
            plural: plural.into(),
            kind: String::new(),
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
        };
        let all = ["create", "delete", "list", "watch"];
        assert!(quotable(&res("", "pods", &all)));
        assert!(!quotable(&res("", "events", &all)));
        assert!(quotable(&res("events.k8s.io", "events", &all)));
        assert!(!quotable(&res("", "bindings", &["create"])));
    }

    #[test]
    fn status_takes_hard_from_the_spec_and_keeps_only_its_names() {
        let quota = json!({"spec": {"hard": {"pods": "2", "example.com/thing": "1"}},
            "status": {"hard": {"pods": "1"}, "used": {"pods": "5", "secrets": "1", "example.com/thing": "1"}}});
        let computed: ResourceList =
            [("pods".to_string(), quantity::Quantity::parse("1").unwrap())]
                .into_iter()
                .collect();
        let status = quota_usage::quota_status(&quota, &computed);
        assert_eq!(
            status,
            json!({"hard": {"example.com/thing": "1", "pods": "2"},
                   "used": {"example.com/thing": "1", "pods": "1"}})
        );
        assert!(!quota_usage::status_current(&quota, &status));
        let mut updated = quota.clone();
        updated["status"] = status.clone();
        assert!(quota_usage::status_current(&updated, &status));
        assert!(same_list(&json!({"cpu": "1"}), &json!({"cpu": "1000m"})));
        assert!(!same_list(&json!({}), &Value::Null));
    }
}
