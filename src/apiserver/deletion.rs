//! Deletion: `DeleteOptions` (grace period, preconditions), deleting one object or a
//! collection, and removing an object once nothing holds it any more, as upstream's
//! generic registry store does.

use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::handlers::{Filter, dry_run, dry_run_cause, list_matching};
use super::kinds::Strategy;
use super::status::ApiError;
use super::{ApiServer, Body, Ctx, defaults, validation};
use crate::store::StoreError;

/// What a delete was asked for: grace period and preconditions (`DeleteOptions`).
#[derive(Default)]
pub(crate) struct DeleteOpts {
    pub(crate) grace: Option<i64>,
    pub(crate) uid: Option<String>,
    pub(crate) rv: Option<String>,
}

/// The deprecated `orphanDependents` and `propagationPolicy` of a `DeleteOptions`: how
/// the garbage collector treats the deleted object's dependents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Cascade {
    pub(crate) policy: Option<Propagation>,
    pub(crate) orphan_dependents: Option<bool>,
}

/// `propagationPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Propagation {
    /// Dependents are kept: the `orphan` finalizer has the collector unlink them first.
    Orphan,
    /// The object goes at once; the collector deletes its dependents afterwards.
    Background,
    /// The `foregroundDeletion` finalizer keeps the object until the collector has
    /// deleted its blocking dependents.
    Foreground,
}

/// What a delete of a kind's object does to its dependents when the client does not say
/// (upstream's `rest.GarbageCollectionPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcPolicy {
    /// Background deletion of the dependents (upstream's `DeleteDependents`).
    DeleteDependents,
    /// The dependents are orphaned (the old workload API versions).
    OrphanDependents,
    /// The kind takes no part in garbage collection: no finalizers are ever added.
    Unsupported,
}

/// The finalizer of a foreground deletion.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
/// The finalizer of an orphaning deletion.
pub const ORPHAN_FINALIZER: &str = "orphan";

/// Go's `strconv.ParseBool` (what upstream's parameter codec decodes booleans with).
fn parse_go_bool(v: &str) -> Result<bool, ApiError> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "strconv.ParseBool: parsing {}: invalid syntax",
            super::status::go_quote(v)
        ))),
    }
}

/// Parses and validates a delete's options (the body, else the query), as upstream's
/// `ValidateDeleteOptions`: 422 Invalid `DeleteOptions.meta.k8s.io` for a policy that
/// is not one of the three, or for both `orphanDependents` and `propagationPolicy`.
pub(crate) fn delete_opts(ctx: &Ctx, body: &Bytes) -> Result<(DeleteOpts, Cascade), ApiError> {
    let mut o = DeleteOpts::default();
    let raw_policy: Option<String>;
    let orphan: Option<bool>;
    let mut body_dry: Vec<String> = Vec::new();
    let v = super::negotiate::decode_delete_options(ctx, body)?;
    if !v.is_null() {
        body_dry = v["dryRun"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        o.grace = v["gracePeriodSeconds"].as_i64();
        o.uid = v["preconditions"]["uid"].as_str().map(String::from);
        o.rv = v["preconditions"]["resourceVersion"]
            .as_str()
            .map(String::from);
        raw_policy = v["propagationPolicy"].as_str().map(String::from);
        orphan = v["orphanDependents"].as_bool();
    } else {
        // Upstream decodes the query into DeleteOptions only when there is no body.
        raw_policy = ctx
            .q("propagationPolicy")
            .filter(|p| !p.is_empty())
            .map(String::from);
        orphan = ctx.q("orphanDependents").map(parse_go_bool).transpose()?;
    }
    let mut causes = Vec::new();
    if let (Some(p), Some(_)) = (&raw_policy, orphan) {
        causes.push(validation::Cause {
            reason: "FieldValueInvalid".into(),
            message: format!(
                "Invalid value: {}: orphanDependents and deletionPropagation cannot be both set",
                super::status::go_quote(p)
            ),
            field: "propagationPolicy".into(),
        });
    }
    let policy = match raw_policy.as_deref() {
        None => None,
        Some("Orphan") => Some(Propagation::Orphan),
        Some("Background") => Some(Propagation::Background),
        Some("Foreground") => Some(Propagation::Foreground),
        Some(other) => {
            causes.push(validation::not_supported(
                "propagationPolicy",
                other,
                &["Foreground", "Background", "Orphan", "nil"],
            ));
            None
        }
    };
    let dry: Vec<&str> = body_dry.iter().map(String::as_str).collect();
    causes.extend(dry_run_cause(&dry));
    if !causes.is_empty() {
        return Err(ApiError::invalid_options("DeleteOptions", &causes));
    }
    if let Some(g) = ctx.q("gracePeriodSeconds").and_then(|g| g.parse().ok()) {
        o.grace = Some(g);
    }
    if o.grace.is_some_and(|g| g < 0) {
        o.grace = Some(0);
    }
    Ok((
        o,
        Cascade {
            policy,
            orphan_dependents: orphan,
        },
    ))
}

/// Whether the object's dependents are to be orphaned (upstream's
/// `shouldOrphanDependents`): the request, else the object's finalizers, else the kind.
fn should_orphan(default: GcPolicy, finalizers: &[String], c: Cascade) -> bool {
    if default == GcPolicy::Unsupported {
        return false;
    }
    if let Some(o) = c.orphan_dependents {
        return o;
    }
    if let Some(p) = c.policy {
        return p == Propagation::Orphan;
    }
    for f in finalizers {
        match f.as_str() {
            ORPHAN_FINALIZER => return true,
            FOREGROUND_FINALIZER => return false,
            _ => {}
        }
    }
    default == GcPolicy::OrphanDependents
}

/// Whether the dependents go first (upstream's `shouldDeleteDependents`).
fn should_delete_dependents(default: GcPolicy, finalizers: &[String], c: Cascade) -> bool {
    if default == GcPolicy::Unsupported || c.orphan_dependents.is_some() {
        return false;
    }
    match c.policy {
        Some(p) => p == Propagation::Foreground,
        None => finalizers.iter().any(|f| f == FOREGROUND_FINALIZER),
    }
}

/// The finalizers a delete leaves on the object when they differ from `finalizers`
/// (upstream's `deletionFinalizersForGarbageCollection`): both garbage-collection
/// finalizers are taken out, then the one the request calls for is added back.
fn gc_finalizers(default: GcPolicy, finalizers: &[String], c: Cascade) -> Option<Vec<String>> {
    let orphan = should_orphan(default, finalizers, c);
    let foreground = should_delete_dependents(default, finalizers, c);
    let mut out: Vec<String> = finalizers
        .iter()
        .filter(|f| *f != ORPHAN_FINALIZER && *f != FOREGROUND_FINALIZER)
        .cloned()
        .collect();
    if orphan {
        out.push(ORPHAN_FINALIZER.into());
    }
    if foreground {
        out.push(FOREGROUND_FINALIZER.into());
    }
    let same = |a: &[String], b: &[String]| a.iter().all(|x| b.contains(x));
    if same(&out, finalizers) && same(finalizers, &out) {
        None
    } else {
        Some(out)
    }
}

fn finalizers_of(obj: &Value) -> Vec<String> {
    obj["metadata"]["finalizers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) async fn delete(
    srv: &Arc<ApiServer>,
    ctx: &Ctx,
    res: &dyn Strategy,
    ns: Option<&str>,
    name: &str,
    body: &Bytes,
) -> Result<Response<Body>, ApiError> {
    let (opts, cascade) = delete_opts(ctx, body)?;
    // Validating admission sees the delete (the Priority plugin keeps the built-in classes).
    if let Some(current) = srv.store.get_shared(&res.def().key(ns, name)) {
        let current = super::crd::conversion::from_store(srv, res, current).await?;
        let view = res.to_view(&current);
        let req = super::admission::Request {
            operation: super::admission::Operation::Delete,
            kind: res,
            namespace: ns,
            name,
            subresource: None,
            old: Some(&view),
            user: &ctx.user,
            dry_run: dry_run(ctx),
            warnings: Default::default(),
        };
        srv.admission.validate(srv, &req, &view).await?;
    }
    let obj = delete_cascading(srv, res, ns, name, &opts, cascade, dry_run(ctx)).await?;
    let obj = super::crd::conversion::from_store(srv, res, Arc::new(obj)).await?;
    Ok(super::negotiate::object_response(
        ctx,
        StatusCode::OK,
        &res.to_view(&obj),
        &[],
    ))
}

/// Deletes (or starts deleting) one object, its dependents treated as `cascade` says
/// (a garbage-collection finalizer keeps it until the collector is done); returns the
/// object as it now is.
pub(crate) async fn delete_cascading(
    srv: &Arc<ApiServer>,
    res: &dyn Strategy,
    ns: Option<&str>,
    name: &str,
    opts: &DeleteOpts,
    cascade: Cascade,
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
    let has_finalizers = !finalizers_of(&current).is_empty();
    let grace = deletion.grace_seconds;
    let gc_policy = res.default_gc_policy();
    let gc_change = gc_finalizers(gc_policy, &finalizers_of(&current), cascade).is_some();
    if is_ns || has_finalizers || grace > 0 || gc_change {
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
                // Upstream's BeforeDelete: a graceful deletion in progress that this
                // request does not shorten is left as it is, finalizers included.
                let pending = already && old_grace.is_some_and(|g| g > 0 && grace >= g);
                if !pending && let Some(f) = gc_finalizers(gc_policy, &finalizers_of(&cur), cascade)
                {
                    match cur["metadata"].as_object_mut() {
                        Some(m) if f.is_empty() => {
                            m.remove("finalizers");
                        }
                        Some(m) => {
                            m.insert("finalizers".into(), json!(f));
                        }
                        None => {}
                    }
                }
                res.deletion_started(&mut cur);
                Ok(cur)
            })
            .await
            .map_err(|e| ApiError::from_store(res.def(), name, e))?;
        if finalizers_of(&stored).is_empty() && grace == 0 {
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
    let (opts, cascade) = delete_opts(ctx, body)?;
    let filter = Filter::from_ctx(ctx, res)?;
    let (items, _) = list_matching(srv, res, ns, &filter)?;
    let mut out = Vec::new();
    for (_, obj) in items {
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        let ons = obj["metadata"]["namespace"].as_str().map(String::from);
        match delete_cascading(
            srv,
            res,
            ons.as_deref(),
            &name,
            &opts,
            cascade,
            dry_run(ctx),
        )
        .await
        {
            Ok(o) => out.push(Arc::new(o)),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let out: Vec<Value> = super::crd::conversion::from_store_all(srv, res, out)
        .await?
        .iter()
        .map(|o| res.to_view(o))
        .collect();
    Ok(super::negotiate::object_response(
        ctx,
        StatusCode::OK,
        &json!({"kind": format!("{}List", res.def().kind), "apiVersion": res.def().api_version(), "metadata": {}, "items": out}),
        &[],
    ))
}

/// Whether `obj` is being deleted and nothing holds it any more (no finalizers, and the
/// kind does not keep it for its own reasons).
pub(crate) fn emptied_while_deleting(res: &dyn Strategy, obj: &Value) -> bool {
    let meta = &obj["metadata"];
    meta["deletionTimestamp"].is_string()
        && meta["finalizers"].as_array().is_none_or(|f| f.is_empty())
        && !res.deletion_held(obj)
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
    if emptied_while_deleting(res, obj) {
        let uid = obj["metadata"]["uid"].as_str().unwrap_or("").to_string();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn f(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn with(policy: Option<Propagation>, orphan: Option<bool>) -> Cascade {
        Cascade {
            policy,
            orphan_dependents: orphan,
        }
    }

    #[test]
    fn finalizers_follow_the_request_then_the_object_then_the_kind() {
        let bg = GcPolicy::DeleteDependents;
        let none = Cascade::default();
        assert_eq!(gc_finalizers(bg, &[], none), None);
        assert_eq!(
            gc_finalizers(bg, &f(&["x"]), with(Some(Propagation::Foreground), None)),
            Some(f(&["x", FOREGROUND_FINALIZER]))
        );
        assert_eq!(
            gc_finalizers(bg, &[], with(Some(Propagation::Orphan), None)),
            Some(f(&[ORPHAN_FINALIZER]))
        );
        assert_eq!(
            gc_finalizers(bg, &[], with(None, Some(true))),
            Some(f(&[ORPHAN_FINALIZER]))
        );
        // A second delete switches the policy: the other finalizer replaces the first.
        assert_eq!(
            gc_finalizers(
                bg,
                &f(&[FOREGROUND_FINALIZER]),
                with(Some(Propagation::Orphan), None)
            ),
            Some(f(&[ORPHAN_FINALIZER]))
        );
        assert_eq!(
            gc_finalizers(
                bg,
                &f(&[ORPHAN_FINALIZER]),
                with(Some(Propagation::Background), None)
            ),
            Some(Vec::new())
        );
        // No request: the object's own finalizer stands.
        assert_eq!(gc_finalizers(bg, &f(&[FOREGROUND_FINALIZER]), none), None);
        assert_eq!(gc_finalizers(bg, &f(&[ORPHAN_FINALIZER]), none), None);
        // The kind's default, and kinds outside garbage collection.
        assert_eq!(
            gc_finalizers(GcPolicy::OrphanDependents, &[], none),
            Some(f(&[ORPHAN_FINALIZER]))
        );
        assert_eq!(
            gc_finalizers(
                GcPolicy::Unsupported,
                &[],
                with(Some(Propagation::Foreground), None)
            ),
            None
        );
    }
}
