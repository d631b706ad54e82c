//! `pods/eviction`: a delete that respects the pod's disruption budget, as upstream's
//! `EvictionREST` (pkg/registry/core/pod/storage/eviction.go). The body is a policy/v1
//! (or v1beta1) `Eviction` whose `deleteOptions` the delete gets; the answer is 201 with
//! a `Success` Status. A pod that is pending, finished or already terminating goes
//! without a budget check; any other pod first asks [`disruption_allowed`], where the
//! PodDisruptionBudget check slots in once that kind is served.

use std::sync::Arc;

use http::{Response, StatusCode};
use serde_json::{Value, json};
use tracing::Instrument;

use super::handlers::{self, DeleteOpts};
use super::kinds::Strategy;
use super::status::ApiError;
use super::{ApiServer, Body, Ctx};

/// Upstream retries an eviction that conflicts with another write (20 × 500 ms); the
/// store's own writes here retry fast, so a few rounds suffice.
const CONFLICT_RETRIES: usize = 20;

/// The Eviction API versions the subresource accepts.
const ACCEPTED: &[&str] = &["policy/v1", "policy/v1beta1"];

/// Handles `POST .../pods/{name}/eviction`.
pub async fn evict(
    srv: &Arc<ApiServer>,
    ctx: &Ctx,
    pods: &dyn Strategy,
    ns: &str,
    name: &str,
    body: &[u8],
) -> Result<Response<Body>, ApiError> {
    let span = tracing::debug_span!("apiserver_eviction", pod = %format!("{ns}/{name}"));
    async move {
        handlers::check_write_options(ctx)?;
        let eviction = handlers::decode_body(ctx, body)?;
        check_type(&eviction)?;
        if eviction["metadata"]["name"].as_str().unwrap_or("") != name {
            return Err(ApiError::bad_request(
                "name in URL does not match name in Eviction object",
            ));
        }
        let options = &eviction["deleteOptions"];
        let dry = dry_run(ctx, options)?;
        let opts = DeleteOpts {
            grace: options["gracePeriodSeconds"].as_i64().map(|g| g.max(0)),
            uid: options["preconditions"]["uid"].as_str().map(String::from),
            rv: options["preconditions"]["resourceVersion"]
                .as_str()
                .map(String::from),
        };
        let client_rv = opts.rv.is_some();
        let mut last = None;
        for _ in 0..CONFLICT_RETRIES {
            let pod = srv
                .store
                .get(&pods.def().key(Some(ns), name))
                .map_err(|e| ApiError::from_store(pods.def(), name, e))?
                .ok_or_else(|| ApiError::not_found(pods.def(), name))?;
            let pod = pods.to_view(&pod);
            if !can_ignore_budget(&pod) {
                disruption_allowed(srv, &pod, dry)?;
            }
            // A pending pod could become ready meanwhile: delete only the version that
            // was checked (the client's own precondition wins).
            let mut attempt = DeleteOpts {
                grace: opts.grace,
                uid: opts.uid.clone(),
                rv: opts.rv.clone(),
            };
            if attempt.rv.is_none() && enforces_resource_version(&pod) {
                attempt.rv = pod["metadata"]["resourceVersion"]
                    .as_str()
                    .map(String::from);
            }
            match handlers::delete_one(srv, pods, Some(ns), name, &attempt, dry).await {
                Ok(_) => {
                    return Ok(super::negotiate::object_response(
                        ctx,
                        StatusCode::CREATED,
                        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
                        &[],
                    ));
                }
                Err(e) if e.code == 409 && !client_rv => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| ApiError::conflict(pods.def(), name)))
    }
    .instrument(span)
    .await
}

/// The body must be an Eviction of an accepted version (absent fields mean the
/// endpoint's own, policy/v1 Eviction).
fn check_type(eviction: &Value) -> Result<(), ApiError> {
    if !eviction.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    let av = eviction["apiVersion"].as_str().unwrap_or("");
    if !av.is_empty() && !ACCEPTED.contains(&av) {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version (policy/v1)"
        )));
    }
    let kind = eviction["kind"].as_str().unwrap_or("");
    if !kind.is_empty() && kind != "Eviction" {
        return Err(ApiError::bad_request(format!(
            "not a Eviction object: {kind}"
        )));
    }
    Ok(())
}

/// Whether the delete is a dry run: the request's `dryRun` and the body's
/// `deleteOptions.dryRun` must agree when both are set (upstream's `propagateDryRun`).
fn dry_run(ctx: &Ctx, options: &Value) -> Result<bool, ApiError> {
    let query: Vec<&str> = ctx
        .multi
        .iter()
        .filter(|(k, _)| k == "dryRun")
        .map(|(_, v)| v.as_str())
        .collect();
    let body: Vec<&str> = options["dryRun"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(v) = body.iter().find(|v| **v != "All") {
        return Err(ApiError::invalid_options(
            "DeleteOptions",
            &[super::validation::not_supported("dryRun", v, &["All"])],
        ));
    }
    if !query.is_empty() && !body.is_empty() && query != body {
        return Err(ApiError::internal(format!(
            "Non-matching dry-run options in request and content: [{}] and [{}]",
            query.join(" "),
            body.join(" ")
        )));
    }
    Ok(query.contains(&"All") || body.contains(&"All"))
}

/// A pod that already caused (or cannot cause) a disruption is deleted without a
/// budget check: pending, finished, or being deleted.
fn can_ignore_budget(pod: &Value) -> bool {
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    matches!(phase, "Succeeded" | "Failed" | "Pending")
        || pod["metadata"]["deletionTimestamp"].is_string()
}

/// Whether the delete must be pinned to the resourceVersion that was checked (upstream's
/// `shouldEnforceResourceVersion`): not for finished or terminating pods.
fn enforces_resource_version(pod: &Value) -> bool {
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    !matches!(phase, "Succeeded" | "Failed") && !pod["metadata"]["deletionTimestamp"].is_string()
}

/// The disruption budget check: the PodDisruptionBudgets of the pod's namespace whose
/// selector matches the pod. No policy/v1 PodDisruptionBudget kind is served yet, so no
/// budget covers any pod and every eviction is allowed; with the kind, this is where
/// more than one budget is a 500, `disruptionsAllowed == 0` a 429 TooManyRequests
/// ("Cannot evict pod as it would violate the pod's disruption budget.", cause
/// `DisruptionBudget`), and an allowed eviction decrements the budget (not in a dry run).
fn disruption_allowed(srv: &ApiServer, pod: &Value, dry: bool) -> Result<(), ApiError> {
    let snap = srv.registry.snapshot();
    if snap.find("policy", "v1", "poddisruptionbudgets").is_none() {
        return Ok(());
    }
    let _ = (pod, dry);
    Err(ApiError::internal(
        "PodDisruptionBudget is served but the eviction budget check is not implemented",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_skipped_for_pods_that_cannot_be_disrupted() {
        let running = json!({"metadata": {}, "status": {"phase": "Running"}});
        assert!(!can_ignore_budget(&running));
        assert!(enforces_resource_version(&running));
        for phase in ["Pending", "Succeeded", "Failed"] {
            assert!(can_ignore_budget(
                &json!({"metadata": {}, "status": {"phase": phase}})
            ));
        }
        let deleting = json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}, "status": {"phase": "Running"}});
        assert!(can_ignore_budget(&deleting));
        assert!(!enforces_resource_version(&deleting));
    }

    #[test]
    fn only_evictions_are_accepted() {
        assert!(check_type(&json!({"apiVersion": "policy/v1beta1", "kind": "Eviction"})).is_ok());
        let e = check_type(&json!({"apiVersion": "v1", "kind": "Eviction"})).unwrap_err();
        assert_eq!(e.code, 400);
        assert!(e.message.contains("(v1) does not match"), "{}", e.message);
    }
}
