//! The ResourceQuota admission plugin (upstream's `ResourceQuota` plugin and its quota
//! evaluator): a write that would take a namespace's usage above a quota's `hard` is
//! refused with upstream's `exceeded quota` message; an admitted write is charged to
//! every quota covering it, atomically per quota (a store update guarded by the quota's
//! resourceVersion, re-checked when another charge came in between). Dry runs are
//! checked but never charged.
//!
//! Usage also has to go down, and charges of writes that never landed have to be undone:
//! that is the quota controller's work (`crate::controller::resourcequota`), which
//! recalculates `status.used` over HTTPS when a quota changes, when a counted object goes
//! away and in a periodic full resync; this plugin, as upstream's, only checks and
//! charges. A quota whose status the controller has not filled in yet refuses what it
//! covers (`status unknown for quota`), as upstream's does.

use serde_json::Value;

use super::quantity::{self, ResourceList};
use super::quota_usage::{self, Evaluator, evaluator_for};
use super::{Admit, Operation, Plugin, Request};
use crate::apiserver::ApiServer;
use crate::apiserver::registry::Snapshot;
use crate::apiserver::status::ApiError;
use crate::store::{Store, StoreError};

/// The `ResourceQuota` plugin.
#[derive(Default)]
pub struct ResourceQuota;

impl ResourceQuota {
    /// The plugin.
    pub fn new() -> Self {
        Self
    }
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
                    // Charges already written stay until the controller recalculates.
                    Err(msg) => return Err(forbidden(msg)),
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
                return Err(ApiError::internal(format!(
                    "resource quota evaluation failed: quota {name} kept changing"
                )));
            }
        }
        Ok(())
    }
}

impl Plugin for ResourceQuota {
    fn name(&self) -> &'static str {
        "ResourceQuota"
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
            self.charge(srv, req, obj).await
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
