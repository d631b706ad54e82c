//! Deletion: `DeleteOptions` (grace period, preconditions), deleting one object or a
//! collection, and removing an object once nothing holds it any more, as upstream's
//! generic registry store does.

use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::handlers::{Filter, dry_run, dry_run_cause, list_matching, spawn_namespace_cleanup};
use super::kinds::Strategy;
use super::status::ApiError;
use super::{ApiServer, Body, Ctx, defaults};
use crate::store::StoreError;

/// What a delete was asked for: grace period and preconditions (`DeleteOptions`).
#[derive(Default)]
pub(crate) struct DeleteOpts {
    pub(crate) grace: Option<i64>,
    pub(crate) uid: Option<String>,
    pub(crate) rv: Option<String>,
}

pub(crate) fn delete_opts(ctx: &Ctx, body: &Bytes) -> Result<DeleteOpts, ApiError> {
    let mut o = DeleteOpts::default();
    let v = super::negotiate::decode_delete_options(ctx, body)?;
    if !v.is_null() {
        let body_dry: Vec<&str> = v["dryRun"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(cause) = dry_run_cause(&body_dry) {
            return Err(ApiError::invalid_options("DeleteOptions", &[cause]));
        }
        o.grace = v["gracePeriodSeconds"].as_i64();
        o.uid = v["preconditions"]["uid"].as_str().map(String::from);
        o.rv = v["preconditions"]["resourceVersion"]
            .as_str()
            .map(String::from);
    }
    if let Some(g) = ctx.q("gracePeriodSeconds").and_then(|g| g.parse().ok()) {
        o.grace = Some(g);
    }
    if o.grace.is_some_and(|g| g < 0) {
        o.grace = Some(0);
    }
    Ok(o)
}

pub(crate) async fn delete(
    srv: &Arc<ApiServer>,
    ctx: &Ctx,
    res: &dyn Strategy,
    ns: Option<&str>,
    name: &str,
    body: &Bytes,
) -> Result<Response<Body>, ApiError> {
    let opts = delete_opts(ctx, body)?;
    let obj = delete_one(srv, res, ns, name, &opts, dry_run(ctx)).await?;
    Ok(super::negotiate::object_response(
        ctx,
        StatusCode::OK,
        &res.to_view(&obj),
        &[],
    ))
}

/// Deletes (or starts deleting) one object; returns the object as it now is.
pub(crate) async fn delete_one(
    srv: &Arc<ApiServer>,
    res: &dyn Strategy,
    ns: Option<&str>,
    name: &str,
    opts: &DeleteOpts,
    dry: bool,
) -> Result<Value, ApiError> {
    let key = res.def().key(ns, name);
    let current = srv
        .store
        .get(&key)
        .map_err(|e| ApiError::from_store(res.def(), name, e))?
        .ok_or_else(|| ApiError::not_found(res.def(), name))?;
    let cur_uid = current["metadata"]["uid"]
        .as_str()
        .unwrap_or("")
        .to_string();
    if let Some(uid) = &opts.uid
        && *uid != cur_uid
    {
        return Err(ApiError::conflict_msg(
            res.def(),
            name,
            &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {cur_uid}"
            ),
        ));
    }
    if let Some(rv) = &opts.rv
        && Some(rv.as_str()) != current["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError::conflict_msg(
            res.def(),
            name,
            &format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                current["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or("")
            ),
        ));
    }
    if dry {
        return Ok(current);
    }
    let deletion = res.deletion(&current, opts.grace);
    let is_ns = deletion.empties_namespace;
    let has_finalizers = current["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty());
    let grace = deletion.grace_seconds;
    if is_ns || has_finalizers || grace > 0 {
        let now = jiff::Timestamp::now();
        let stored = srv
            .store
            .update(&key, |mut cur: Value| -> Result<Value, StoreError> {
                if cur["metadata"]["uid"].as_str() != Some(cur_uid.as_str()) {
                    return Err(StoreError::Conflict);
                }
                let already = cur["metadata"]["deletionTimestamp"].is_string();
                let old_grace = cur["metadata"]["deletionGracePeriodSeconds"].as_i64();
                // A second delete may only shorten the grace period.
                // Starting a graceful deletion is a change of the desired state: the
                // generation moves, as upstream's BeforeDelete does.
                if !already && let Some(g) = cur["metadata"]["generation"].as_i64() {
                    cur["metadata"]["generation"] = json!(g + 1);
                }
                if !already || old_grace.is_some_and(|g| grace < g) {
                    let when = now + jiff::SignedDuration::from_secs(grace);
                    cur["metadata"]["deletionTimestamp"] = json!(defaults::format_time(when));
                    cur["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
                }
                res.deletion_started(&mut cur);
                Ok(cur)
            })
            .await
            .map_err(|e| ApiError::from_store(res.def(), name, e))?;
        if is_ns {
            spawn_namespace_cleanup(srv.clone(), name.to_string());
        } else if !has_finalizers && grace == 0 {
            finish_if_deletable(srv, res, ns, name, &stored).await;
        }
        return Ok(stored);
    }
    let deleted = srv
        .store
        .delete(&key, |cur: &Value| {
            if cur["metadata"]["uid"].as_str() == Some(cur_uid.as_str()) {
                Ok(())
            } else {
                Err(StoreError::Conflict)
            }
        })
        .await
        .map_err(|e| ApiError::from_store(res.def(), name, e))?;
    srv.admission
        .deleted(srv, res, &res.to_view(&deleted))
        .await;
    Ok(deleted)
}

pub(crate) async fn delete_collection(
    srv: &Arc<ApiServer>,
    ctx: &Ctx,
    res: &dyn Strategy,
    ns: Option<&str>,
    body: &Bytes,
) -> Result<Response<Body>, ApiError> {
    if !res.def().allows("deletecollection") {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    let opts = delete_opts(ctx, body)?;
    let filter = Filter::from_ctx(ctx, res)?;
    let (items, _) = list_matching(srv, res, ns, &filter)?;
    let mut out = Vec::new();
    for (_, obj) in items {
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        let ons = obj["metadata"]["namespace"].as_str().map(String::from);
        match delete_one(srv, res, ons.as_deref(), &name, &opts, dry_run(ctx)).await {
            Ok(o) => out.push(res.to_view(&o)),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(super::negotiate::object_response(
        ctx,
        StatusCode::OK,
        &json!({"kind": format!("{}List", res.def().kind), "apiVersion": res.def().api_version(), "metadata": {}, "items": out}),
        &[],
    ))
}

/// Removes an object whose deletion was pending once nothing holds it any more
/// (finalizers gone; for pods, the kubelet confirmed with grace period 0).
pub(crate) async fn finish_if_deletable(
    srv: &Arc<ApiServer>,
    res: &dyn Strategy,
    ns: Option<&str>,
    name: &str,
    obj: &Value,
) {
    let meta = &obj["metadata"];
    if !meta["deletionTimestamp"].is_string() {
        return;
    }
    let finalizers_empty = meta["finalizers"].as_array().is_none_or(|f| f.is_empty());
    if finalizers_empty && !res.deletion_held(obj) {
        let uid = meta["uid"].as_str().unwrap_or("").to_string();
        let removed = srv
            .store
            .delete(&res.def().key(ns, name), |cur: &Value| {
                if cur["metadata"]["uid"].as_str() == Some(uid.as_str()) {
                    Ok(())
                } else {
                    Err(StoreError::Conflict)
                }
            })
            .await;
        if let Ok(gone) = removed {
            srv.admission.deleted(srv, res, &res.to_view(&gone)).await;
        }
    }
}
