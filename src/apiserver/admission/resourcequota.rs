//! The ResourceQuota admission plugin (upstream's `ResourceQuota` plugin and its quota
//! evaluator): a write that would take a namespace's usage above a quota's `hard` is
//! refused with upstream's `exceeded quota` message; an admitted write is charged to
//! every quota covering it, atomically per quota (a store update guarded by the quota's
//! resourceVersion, re-checked when another charge came in between). Dry runs are
//! checked but never charged.
//!
//! Usage also has to go down, and charges of writes that never landed have to be undone:
//! upstream's quota controller recalculates from its informers. Until a controller on the
//! controller runtime does that, this plugin triggers
//! [`quota_usage::recalculate_namespace`] itself: when a quota is created or its spec or
//! status is written, when a counted object is deleted, when a pod finishes, when a
//! charged write did not land, and in a slow periodic resync.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::quantity::{self, ResourceList};
use super::quota_usage::{self, Evaluator, evaluator_for};
use super::{Admit, Operation, Plugin, Request};
use crate::apiserver::ApiServer;
use crate::apiserver::kinds::{Kind, Strategy};
use crate::apiserver::registry::Snapshot;
use crate::apiserver::status::ApiError;
use crate::store::{Store, StoreError};

/// How often every quota is recalculated regardless of triggers (upstream's controller
/// resyncs every 5 minutes; triggers here cover the common cases, so this only mops up).
const RESYNC: Duration = Duration::from_secs(60);

/// How long a follow-up waits for the write it follows to land before recalculating.
const LANDING_WAIT: Duration = Duration::from_secs(10);

/// The `ResourceQuota` plugin.
#[derive(Default)]
pub struct ResourceQuota {
    background: OnceLock<Arc<Background>>,
}

impl ResourceQuota {
    /// The plugin; its background work starts with the first write it sees.
    pub fn new() -> Self {
        Self::default()
    }

    /// The shared state of follow-ups and the resync, started on first use, with the
    /// kinds served now.
    fn background(&self, srv: &ApiServer) -> Arc<Background> {
        let bg = self
            .background
            .get_or_init(|| {
                let bg = Arc::new(Background {
                    store: srv.store.clone(),
                    shutdown: srv.shutdown.clone(),
                    snapshot: Mutex::new(srv.registry.snapshot()),
                });
                tokio::spawn(bg.clone().resync_loop());
                bg
            })
            .clone();
        if let Ok(mut s) = bg.snapshot.lock() {
            *s = srv.registry.snapshot();
        }
        bg
    }
}

fn is_quota_kind(kind: &dyn Strategy) -> bool {
    let d = kind.def();
    d.group.is_empty() && d.plural == "resourcequotas"
}

fn store_error(e: StoreError) -> ApiError {
    ApiError::internal(format!("resource quota evaluation failed: {e}"))
}

/// The quota objects of `namespace` (view form).
fn quotas_in(snap: &Snapshot, store: &Store, namespace: &str) -> Result<Vec<Value>, StoreError> {
    let Some(kind) = snap.find("", "v1", "resourcequotas") else {
        return Ok(Vec::new());
    };
    let (items, _) = store.list(&kind.def().prefix(Some(namespace)))?;
    Ok(items.iter().map(|q| kind.to_view(q)).collect())
}

/// How one write affects one quota: its new `status.used`, `None` when the quota is not
/// affected, or why the write is refused (upstream's `CheckRequest` for one quota).
pub fn check(
    ev: &Evaluator,
    quota: &Value,
    obj: &Value,
    old: Option<&Value>,
    status_write: bool,
    now: jiff::Timestamp,
) -> Result<Option<ResourceList>, String> {
    if !ev.matches_quota(quota, obj) {
        return Ok(None);
    }
    let name = quota["metadata"]["name"].as_str().unwrap_or("");
    let hard = quantity::list_of(&quota["status"]["hard"]);
    let used = quantity::list_of(&quota["status"]["used"]);
    let hard_names: Vec<String> = hard.keys().cloned().collect();
    let restricted = ev.matching(&hard_names);
    ev.constraints(&restricted, obj)
        .map_err(|e| format!("failed quota: {name}: {e}"))?;
    if restricted.iter().any(|r| !used.contains_key(r)) {
        let mut names = restricted.clone();
        names.sort();
        return Err(format!(
            "status unknown for quota: {name}, resources: {}",
            names.join(",")
        ));
    }
    let input = ev.usage(obj, now);
    let negative = quantity::negative_names(&input);
    if !negative.is_empty() {
        return Err(format!(
            "quota usage is negative for resource(s): {}",
            negative.join(",")
        ));
    }
    let mut delta = input.clone();
    if let Some(prev) = old.filter(|o| o["metadata"]["resourceVersion"].is_string())
        && ev.matches_quota(quota, prev)
    {
        delta = quantity::subtract_non_negative(&input, &ev.usage(prev, now));
    }
    let requested = quantity::mask(&quantity::remove_zeros(&delta), &hard_names);
    if requested.is_empty() {
        return Ok(None);
    }
    let new_used = quantity::add(&used, &requested);
    if !status_write {
        let names: Vec<String> = requested.keys().cloned().collect();
        let exceeded = quantity::exceeding(&quantity::mask(&new_used, &names), &hard);
        if !exceeded.is_empty() {
            return Err(format!(
                "exceeded quota: {name}, requested: {}, used: {}, limited: {}",
                quantity::pretty(&quantity::mask(&requested, &exceeded)),
                quantity::pretty(&quantity::mask(&used, &exceeded)),
                quantity::pretty(&quantity::mask(&hard, &exceeded)),
            ));
        }
    }
    Ok(Some(new_used))
}

/// What a follow-up waits for before it decides whether to recalculate.
enum Landing {
    /// The created object, by uid.
    Created(String),
    /// Any change of the object from this resourceVersion (or its removal).
    Changed(Value),
}

/// State shared by the plugin's follow-ups and resync (all 'static, so they can run as
/// tasks of their own).
struct Background {
    store: Arc<Store>,
    shutdown: CancellationToken,
    snapshot: Mutex<Arc<Snapshot>>,
}

impl Background {
    fn kinds(&self) -> Vec<Kind> {
        self.snapshot
            .lock()
            .map(|s| s.kinds.clone())
            .unwrap_or_default()
    }

    async fn recalculate(&self, namespace: &str) {
        let span = tracing::debug_span!("quota_recalculate", namespace = %namespace);
        let kinds = self.kinds();
        if let Err(e) = quota_usage::recalculate_namespace(&self.store, &kinds, namespace)
            .instrument(span)
            .await
        {
            tracing::warn!(namespace = %namespace, error = %e, "quota recalculation failed");
        }
    }

    /// Recalculates every namespace with a quota, now and then, until shutdown.
    async fn resync_loop(self: Arc<Self>) {
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(RESYNC) => {}
            }
            let Ok((items, _)) = self.store.list("/registry/resourcequotas/") else {
                continue;
            };
            let mut namespaces: Vec<String> = items
                .iter()
                .filter_map(|q| q["metadata"]["namespace"].as_str().map(String::from))
                .collect();
            namespaces.dedup();
            for ns in namespaces {
                self.recalculate(&ns).await;
            }
        }
    }

    /// Waits (in a task of its own) for the write to `key` to land; recalculates
    /// `namespace` if it did not, or always with `always`.
    fn follow_up(self: Arc<Self>, key: String, landing: Landing, namespace: String, always: bool) {
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + LANDING_WAIT;
            let landed = loop {
                let now = self.store.get(&key).ok().flatten();
                // `None`: not known yet.
                let landed = match (&landing, &now) {
                    (Landing::Created(uid), Some(o)) => {
                        // Another object by that name: this create fails.
                        Some(o["metadata"]["uid"].as_str() == Some(uid.as_str()))
                    }
                    (Landing::Created(_), None) => None,
                    (Landing::Changed(rv), Some(o)) => {
                        (o["metadata"]["resourceVersion"] != *rv).then_some(true)
                    }
                    (Landing::Changed(_), None) => Some(true),
                };
                if let Some(landed) = landed {
                    break landed;
                }
                if tokio::time::Instant::now() >= deadline {
                    break false;
                }
                tokio::select! {
                    _ = self.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            };
            if always || !landed {
                self.recalculate(&namespace).await;
            }
        });
    }
}

impl ResourceQuota {
    /// Charges `obj` to every quota of its namespace covering it, or refuses it.
    async fn charge(
        &self,
        srv: &ApiServer,
        req: &Request<'_>,
        obj: &Value,
    ) -> Result<(), ApiError> {
        let Some(ns) = req.namespace else {
            return Ok(());
        };
        let def = req.kind.def();
        let ev = evaluator_for(def);
        let update = req.operation == Operation::Update;
        if quota_usage::ignored(def) || !ev.handles(update, req.subresource) {
            return Ok(());
        }
        let snap = srv.registry.snapshot();
        let quotas = quotas_in(&snap, &srv.store, ns).map_err(store_error)?;
        if quotas.is_empty() {
            return Ok(());
        }
        let forbidden = |msg: String| {
            ApiError::forbidden(format!(
                "{} \"{}\" is forbidden: {msg}",
                def.qualified(),
                req.name
            ))
        };
        let now = jiff::Timestamp::now();
        let status_write = req.subresource == Some("status");
        let mut affected = Vec::new();
        for q in &quotas {
            if check(&ev, q, obj, req.old, status_write, now)
                .map_err(&forbidden)?
                .is_some()
            {
                affected.push(q["metadata"]["name"].as_str().unwrap_or("").to_string());
            }
        }
        if req.dry_run || affected.is_empty() {
            return Ok(());
        }
        let Some(qkind) = snap.find("", "v1", "resourcequotas") else {
            return Ok(());
        };
        let bg = self.background(srv);
        let mut charged = false;
        for name in affected {
            let key = qkind.def().key(Some(ns), &name);
            let mut done = false;
            for _ in 0..8 {
                let Some(current) = srv.store.get(&key).map_err(store_error)? else {
                    done = true;
                    break;
                };
                let view = qkind.to_view(&current);
                let used = match check(&ev, &view, obj, req.old, status_write, now) {
                    Ok(Some(used)) => used,
                    Ok(None) => {
                        done = true;
                        break;
                    }
                    Err(msg) => {
                        if charged {
                            bg.recalculate(ns).await;
                        }
                        return Err(forbidden(msg));
                    }
                };
                let seen = current["metadata"]["resourceVersion"].clone();
                let written = srv
                    .store
                    .update(&key, |mut now: Value| {
                        if now["metadata"]["resourceVersion"] != seen {
                            return Err(StoreError::Conflict);
                        }
                        now["status"]["used"] = quantity::list_to_json(&used);
                        Ok(now)
                    })
                    .await;
                match written {
                    Ok(_) => {
                        charged = true;
                        done = true;
                        break;
                    }
                    Err(StoreError::NotFound) => {
                        done = true;
                        break;
                    }
                    Err(StoreError::Conflict) => continue,
                    Err(e) => return Err(store_error(e)),
                }
            }
            if !done {
                if charged {
                    bg.recalculate(ns).await;
                }
                return Err(ApiError::internal(format!(
                    "resource quota evaluation failed: quota {name} kept changing"
                )));
            }
        }
        if charged {
            let key = def.key(Some(ns), req.name);
            // An update may be retried by the handler after another write came in (and
            // charged again): its usage is recalculated once it landed.
            let (landing, always) = match req.old {
                Some(old) => (
                    Landing::Changed(old["metadata"]["resourceVersion"].clone()),
                    true,
                ),
                None => (
                    Landing::Created(obj["metadata"]["uid"].as_str().unwrap_or("").into()),
                    false,
                ),
            };
            bg.follow_up(key, landing, ns.to_string(), always);
        }
        Ok(())
    }

    /// Writes that change usage without being charged: a pod finishing, a quota's status
    /// written by a client. Recalculated once they land.
    fn watch_for_release(&self, srv: &ApiServer, req: &Request<'_>, obj: &Value) {
        let (Some(ns), Some(old)) = (req.namespace, req.old) else {
            return;
        };
        let def = req.kind.def();
        let now = jiff::Timestamp::now();
        let finished = evaluator_for(def) == Evaluator::Pods
            && quota_usage::pod_counts(old, now)
            && !quota_usage::pod_counts(obj, now);
        let quota_status = is_quota_kind(req.kind) && req.subresource == Some("status");
        if req.dry_run || !(finished || quota_status) {
            return;
        }
        if !finished
            || quotas_in(&srv.registry.snapshot(), &srv.store, ns).is_ok_and(|q| !q.is_empty())
        {
            let key = def.key(Some(ns), req.name);
            let rv = old["metadata"]["resourceVersion"].clone();
            self.background(srv)
                .follow_up(key, Landing::Changed(rv), ns.to_string(), true);
        }
    }
}

impl Plugin for ResourceQuota {
    fn name(&self) -> &'static str {
        "ResourceQuota"
    }

    /// A quota being created or changed gets its status: `hard` from the spec and
    /// `used` calculated (upstream's controller fills it in right after the write).
    fn mutate<'a>(
        &'a self,
        srv: &'a ApiServer,
        req: &'a Request<'a>,
        obj: &'a mut Value,
    ) -> Admit<'a> {
        Box::pin(async move {
            let (Some(ns), true, None) = (req.namespace, is_quota_kind(req.kind), req.subresource)
            else {
                return Ok(());
            };
            if req.operation == Operation::Delete {
                return Ok(());
            }
            let kinds = srv.registry.snapshot().kinds.clone();
            let pending = (req.operation == Operation::Create).then_some((req.kind, &*obj));
            let status = quota_usage::quota_status(&srv.store, &kinds, ns, obj, pending)
                .map_err(store_error)?;
            obj["status"] = status;
            Ok(())
        })
    }

    fn validate<'a>(
        &'a self,
        srv: &'a ApiServer,
        req: &'a Request<'a>,
        obj: &'a Value,
    ) -> Admit<'a> {
        Box::pin(async move {
            if req.operation == Operation::Delete {
                return Ok(());
            }
            self.charge(srv, req, obj).await?;
            self.watch_for_release(srv, req, obj);
            Ok(())
        })
    }

    /// A counted object is gone: its namespace's quotas are recalculated before the
    /// delete returns.
    fn deleted<'a>(
        &'a self,
        srv: &'a ApiServer,
        kind: &'a dyn Strategy,
        obj: &'a Value,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            let def = kind.def();
            let Some(ns) = obj["metadata"]["namespace"].as_str() else {
                return;
            };
            if !def.namespaced || quota_usage::ignored(def) {
                return;
            }
            let ev = evaluator_for(def);
            let Ok(quotas) = quotas_in(&srv.registry.snapshot(), &srv.store, ns) else {
                return;
            };
            let counted = quotas.iter().any(|q| {
                let hard: Vec<String> = quantity::list_of(&q["status"]["hard"])
                    .into_keys()
                    .collect();
                !ev.matching(&hard).is_empty()
            });
            if counted {
                self.background(srv).recalculate(ns).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn quota(hard: Value, used: Value) -> Value {
        json!({"metadata": {"name": "q"}, "spec": {"hard": hard.clone()},
               "status": {"hard": hard, "used": used}})
    }

    fn pod(resources: Value) -> Value {
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "resources": resources}]},
               "status": {"phase": "Pending"}})
    }

    #[test]
    fn exceeded_quota_has_upstream_message() {
        let now = jiff::Timestamp::now();
        let q = quota(json!({"pods": "1"}), json!({"pods": "1"}));
        let err = check(&Evaluator::Pods, &q, &pod(json!({})), None, false, now).unwrap_err();
        assert_eq!(
            err,
            "exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1"
        );
        let q = quota(
            json!({"pods": "2", "requests.cpu": "1"}),
            json!({"pods": "0", "requests.cpu": "0"}),
        );
        let used = check(
            &Evaluator::Pods,
            &q,
            &pod(json!({"requests": {"cpu": "500m"}})),
            None,
            false,
            now,
        )
        .unwrap()
        .unwrap();
        assert_eq!(quantity::pretty(&used), "pods=1,requests.cpu=500m");
        let err = check(&Evaluator::Pods, &q, &pod(json!({})), None, false, now).unwrap_err();
        assert_eq!(err, "failed quota: q: must specify requests.cpu for: c");
    }

    #[test]
    fn unknown_status_scopes_and_updates() {
        let now = jiff::Timestamp::now();
        let q = json!({"metadata": {"name": "q"}, "status": {"hard": {"pods": "3"}}});
        assert_eq!(
            check(&Evaluator::Pods, &q, &pod(json!({})), None, false, now).unwrap_err(),
            "status unknown for quota: q, resources: pods"
        );
        let mut scoped = quota(json!({"pods": "1"}), json!({"pods": "1"}));
        scoped["spec"]["scopes"] = json!(["NotBestEffort"]);
        assert_eq!(
            check(&Evaluator::Pods, &scoped, &pod(json!({})), None, false, now),
            Ok(None)
        );
        let svc = Evaluator::Services;
        let q = quota(
            json!({"services.nodeports": "1", "services": "5"}),
            json!({"services.nodeports": "0", "services": "1"}),
        );
        let old = json!({"metadata": {"resourceVersion": "3"}, "spec": {"type": "ClusterIP", "ports": [{"port": 1}]}});
        let new = json!({"metadata": {"resourceVersion": "3"}, "spec": {"type": "NodePort", "ports": [{"port": 1}]}});
        let used = check(&svc, &q, &new, Some(&old), false, now)
            .unwrap()
            .unwrap();
        assert_eq!(quantity::pretty(&used), "services=1,services.nodeports=1");
    }
}
