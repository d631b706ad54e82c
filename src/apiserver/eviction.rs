//! `pods/eviction`: a delete that respects the pod's disruption budget, as upstream's
//! `EvictionREST` (pkg/registry/core/pod/storage/eviction.go). The body is a policy/v1
//! (or v1beta1) `Eviction` whose `deleteOptions` the delete gets; the answer is 201 with
//! a `Success` Status.
//!
//! A pod that is pending, finished or already terminating goes without a budget check.
//! Any other pod is checked against the one PodDisruptionBudget selecting it (more than
//! one is a 500): a budget whose status is stale or allows no disruption refuses with 429
//! TooManyRequests (cause `DisruptionBudget`); otherwise the eviction records the pod in
//! the budget's `status.disruptedPods` and decrements `disruptionsAllowed` with a
//! resourceVersion-checked status write (retried on conflict), so two evictions cannot
//! spend the same disruption. An unready pod skips the decrement when the budget is
//! healthy anyway, or always with `unhealthyPodEvictionPolicy: AlwaysAllow`. Before the
//! delete the pod gets the `DisruptionTarget` condition (reason EvictionByEvictionAPI).

use std::sync::Arc;

use http::{Response, StatusCode};
use serde_json::{Value, json};
use tracing::Instrument;

use super::deletion::{Cascade, Propagation, delete_cascading};
use super::handlers::{self, DeleteOpts};
use super::kinds::Strategy;
use super::kinds::policy::poddisruptionbudget::{
    DISRUPTION_ALLOWED, PodDisruptionBudgets, selector_matches,
};
use super::status::ApiError;
use super::{ApiServer, Body, Ctx};
use crate::store::StoreError;

/// Upstream retries an eviction that conflicts with another write (20 × 500 ms); the
/// store's own writes here retry fast, so a few rounds suffice.
const CONFLICT_RETRIES: usize = 20;

/// The Eviction API versions the subresource accepts.
const ACCEPTED: &[&str] = &["policy/v1", "policy/v1beta1"];

/// Upstream's `MaxDisruptedPodSize`: a budget with more unconfirmed evictions refuses.
const MAX_DISRUPTED_PODS: usize = 2000;

/// The message of every refused eviction.
const VIOLATES: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

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
        let cascade = cascade_of(options)?;
        let ev = Evictor {
            srv,
            pods,
            ns,
            name,
            dry,
            cascade,
        };
        let client_rv = opts.rv.is_some();
        // Pods that cannot be disrupted any more go at once (retrying conflicts unless
        // the client pinned a version); the others leave the loop for the budget check.
        let mut last = None;
        let mut checked = None;
        for _ in 0..CONFLICT_RETRIES {
            let pod = ev.get_pod()?;
            if !can_ignore_budget(&pod) {
                checked = Some(pod);
                break;
            }
            let mut attempt = copy_opts(&opts);
            if attempt.rv.is_none() && enforces_resource_version(&pod) {
                attempt.rv = rv_of(&pod);
            }
            match ev.condition_and_delete(&attempt).await {
                Ok(()) => return Ok(success(ctx)),
                Err(e) if e.code == 409 && !client_rv => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        let Some(pod) = checked else {
            return Err(last.unwrap_or_else(|| ApiError::conflict(pods.def(), name)));
        };
        let budgets = ev.budgets_of(&pod)?;
        let mut pin_version = false;
        let mut budget_name = String::new();
        match budgets.as_slice() {
            [] => {}
            [pdb] => {
                budget_name = pdb["metadata"]["name"].as_str().unwrap_or("").to_string();
                if !is_ready(&pod) && unhealthy_may_go(pdb) {
                    pin_version = true;
                } else {
                    ev.check_and_decrement(pdb.clone()).await?;
                }
            }
            _ => return Ok(more_than_one_budget(ctx)),
        }
        let mut attempt = copy_opts(&opts);
        if pin_version && attempt.rv.is_none() {
            // The pod must not have become ready since the check.
            attempt.rv = rv_of(&pod);
        }
        match ev.condition_and_delete(&attempt).await {
            Ok(()) => Ok(success(ctx)),
            Err(e) if e.code == 409 && pin_version && !client_rv => {
                Err(too_many_requests(format!(
                    "The disruption budget {budget_name} is still being processed by the server."
                )))
            }
            Err(e) => Err(e),
        }
    }
    .instrument(span)
    .await
}

/// The 201 `Success` Status of an eviction.
fn success(ctx: &Ctx) -> Response<Body> {
    super::negotiate::object_response(
        ctx,
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
        &[],
    )
}

/// Upstream answers a pod under two budgets with a bare 500 Status (no reason).
fn more_than_one_budget(ctx: &Ctx) -> Response<Body> {
    super::negotiate::object_response(
        ctx,
        StatusCode::INTERNAL_SERVER_ERROR,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            "code": 500}),
        &[],
    )
}

/// A 429 refusal with the `DisruptionBudget` cause saying why.
fn too_many_requests(cause: String) -> ApiError {
    let mut e = ApiError::too_many_requests(VIOLATES);
    e.details = Some(json!({"causes": [{"reason": "DisruptionBudget", "message": cause}]}));
    e
}

/// The pod's resourceVersion.
fn rv_of(pod: &Value) -> Option<String> {
    pod["metadata"]["resourceVersion"]
        .as_str()
        .map(String::from)
}

/// Whether the pod's Ready condition is True (upstream's `IsPodReady`, its notion of a
/// healthy pod).
pub fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// Whether an unready pod may go without spending a disruption: always under
/// `AlwaysAllow`, else (`IfHealthyBudget`, the default) when the budget is healthy.
fn unhealthy_may_go(pdb: &Value) -> bool {
    if pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow" {
        return true;
    }
    let st = &pdb["status"];
    let (current, desired) = (
        st["currentHealthy"].as_i64().unwrap_or(0),
        st["desiredHealthy"].as_i64().unwrap_or(0),
    );
    current >= desired && desired > 0
}

/// The propagation the Eviction's DeleteOptions ask for.
fn cascade_of(options: &Value) -> Result<Cascade, ApiError> {
    let policy = match options["propagationPolicy"].as_str() {
        None => None,
        Some("Orphan") => Some(Propagation::Orphan),
        Some("Background") => Some(Propagation::Background),
        Some("Foreground") => Some(Propagation::Foreground),
        Some(other) => {
            return Err(ApiError::invalid_options(
                "DeleteOptions",
                &[super::validation::not_supported(
                    "propagationPolicy",
                    other,
                    &["Foreground", "Background", "Orphan", "nil"],
                )],
            ));
        }
    };
    Ok(Cascade {
        policy,
        orphan_dependents: options["orphanDependents"].as_bool(),
    })
}

/// One eviction's target and options.
struct Evictor<'a> {
    srv: &'a Arc<ApiServer>,
    pods: &'a dyn Strategy,
    ns: &'a str,
    name: &'a str,
    dry: bool,
    cascade: Cascade,
}

impl Evictor<'_> {
    fn get_pod(&self) -> Result<Value, ApiError> {
        let pod = self
            .srv
            .store
            .get(&self.pods.def().key(Some(self.ns), self.name))
            .map_err(|e| ApiError::from_store(self.pods.def(), self.name, e))?
            .ok_or_else(|| ApiError::not_found(self.pods.def(), self.name))?;
        Ok(self.pods.to_view(&pod))
    }

    /// The budgets of the pod's namespace whose selector matches it (upstream's
    /// `getPodDisruptionBudgets`); none while the kind is not served.
    fn budgets_of(&self, pod: &Value) -> Result<Vec<Value>, ApiError> {
        let snap = self.srv.registry.snapshot();
        let Some(kind) = snap.find("policy", "v1", "poddisruptionbudgets") else {
            return Ok(Vec::new());
        };
        let (items, _) = self
            .srv
            .store
            .list(&kind.def().prefix(Some(self.ns)))
            .map_err(|e| ApiError::from_store(kind.def(), "", e))?;
        Ok(items
            .iter()
            .map(|i| kind.to_view(i))
            .filter(|pdb| selector_matches(&pdb["spec"]["selector"], &pod["metadata"]["labels"]))
            .collect())
    }

    /// Upstream's `checkAndDecrement`, retried with a fresh read while the status write
    /// conflicts with another.
    async fn check_and_decrement(&self, mut pdb: Value) -> Result<(), ApiError> {
        let res = PodDisruptionBudgets::new();
        let pdb_name = pdb["metadata"]["name"].as_str().unwrap_or("").to_string();
        let key = res.def().key(Some(self.ns), &pdb_name);
        for _ in 0..CONFLICT_RETRIES {
            let next = decremented(&pdb, self.name, jiff::Timestamp::now())?;
            if self.dry {
                return Ok(());
            }
            let write = self
                .srv
                .store
                .update::<StoreError>(&key, |_| Ok(next))
                .await;
            match write {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict) => {
                    pdb = self
                        .srv
                        .store
                        .get(&key)
                        .map_err(|e| ApiError::from_store(res.def(), &pdb_name, e))?
                        .ok_or_else(|| ApiError::not_found(res.def(), &pdb_name))?;
                }
                Err(e) => return Err(ApiError::from_store(res.def(), &pdb_name, e)),
            }
        }
        // Upstream's `NewTimeoutError(..., 10)`.
        Err(ApiError {
            code: 504,
            reason: "Timeout",
            message: format!(
                "Timeout: couldn't update PodDisruptionBudget \"{pdb_name}\" due to conflicts"
            ),
            details: Some(json!({"retryAfterSeconds": 10})),
        })
    }

    /// Marks the pod `DisruptionTarget` (not in a dry run), then deletes it with the
    /// Eviction's options (upstream's `addConditionAndDeletePod`).
    async fn condition_and_delete(&self, opts: &DeleteOpts) -> Result<(), ApiError> {
        let mut opts = copy_opts(opts);
        if !self.dry {
            let key = self.pods.def().key(Some(self.ns), self.name);
            let def = self.pods.def();
            let now = super::defaults::now_rfc3339();
            let stored = self
                .srv
                .store
                .update::<PodWrite>(&key, |mut pod| {
                    check_preconditions(def, self.name, &pod, &opts).map_err(PodWrite::Api)?;
                    set_disruption_target(&mut pod, &now);
                    Ok(pod)
                })
                .await
                .map_err(|e| match e {
                    PodWrite::Store(e) => ApiError::from_store(def, self.name, e),
                    PodWrite::Api(e) => e,
                })?;
            if opts.rv.is_some() {
                // The condition moved the version the client (or the check) pinned.
                opts.rv = rv_of(&stored);
            }
        }
        delete_cascading(
            self.srv,
            self.pods,
            Some(self.ns),
            self.name,
            &opts,
            self.cascade,
            self.dry,
        )
        .await
        .map(|_| ())
    }
}

/// A copy of the delete's options (one per attempt).
fn copy_opts(o: &DeleteOpts) -> DeleteOpts {
    DeleteOpts {
        grace: o.grace,
        uid: o.uid.clone(),
        rv: o.rv.clone(),
    }
}

/// A failure inside the pod's store update: the store's, or a failed precondition.
enum PodWrite {
    Store(StoreError),
    Api(ApiError),
}

impl From<StoreError> for PodWrite {
    fn from(e: StoreError) -> Self {
        PodWrite::Store(e)
    }
}

/// The uid and resourceVersion preconditions against the latest pod.
fn check_preconditions(
    def: &super::kinds::ResourceDef,
    name: &str,
    pod: &Value,
    opts: &DeleteOpts,
) -> Result<(), ApiError> {
    let meta = &pod["metadata"];
    if let Some(uid) = opts.uid.as_deref().filter(|u| !u.is_empty())
        && meta["uid"].as_str() != Some(uid)
    {
        return Err(ApiError::conflict_msg(
            def,
            name,
            &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                meta["uid"].as_str().unwrap_or("")
            ),
        ));
    }
    if let Some(rv) = opts.rv.as_deref().filter(|r| !r.is_empty())
        && meta["resourceVersion"].as_str() != Some(rv)
    {
        return Err(ApiError::conflict_msg(
            def,
            name,
            &format!(
                "the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({}). The object might have been modified",
                meta["resourceVersion"].as_str().unwrap_or("")
            ),
        ));
    }
    Ok(())
}

/// Upstream's `UpdatePodCondition` with DisruptionTarget=True, EvictionByEvictionAPI
/// (the transition time moves only when the status changes).
fn set_disruption_target(pod: &mut Value, now: &str) {
    let cond = json!({"type": "DisruptionTarget", "status": "True", "lastProbeTime": null,
        "lastTransitionTime": now, "reason": "EvictionByEvictionAPI",
        "message": "Eviction API: evicting"});
    if !pod["status"].is_object() {
        pod["status"] = json!({});
    }
    if !pod["status"]["conditions"].is_array() {
        pod["status"]["conditions"] = json!([]);
    }
    let list = pod["status"]["conditions"]
        .as_array_mut()
        .expect("conditions is an array");
    match list.iter_mut().find(|c| c["type"] == "DisruptionTarget") {
        Some(c) => {
            let mut next = cond;
            if c["status"] == "True" {
                next["lastTransitionTime"] = c["lastTransitionTime"].clone();
            }
            *c = next;
        }
        None => list.push(cond),
    }
}

/// The budget after one more disruption, or why it allows none (upstream's
/// `checkAndDecrement`): a status not yet computed for the current generation and no
/// disruption left are 429, a negative count or too many unconfirmed evictions 403.
fn decremented(pdb: &Value, pod: &str, now: jiff::Timestamp) -> Result<Value, ApiError> {
    let name = pdb["metadata"]["name"].as_str().unwrap_or("");
    let st = &pdb["status"];
    let observed = st["observedGeneration"].as_i64().unwrap_or(0);
    let generation = pdb["metadata"]["generation"].as_i64().unwrap_or(0);
    if observed < generation {
        return Err(too_many_requests(format!(
            "The disruption budget {name} is still being processed by the server."
        )));
    }
    let allowed = st["disruptionsAllowed"].as_i64().unwrap_or(0);
    let forbidden = |why: &str| {
        ApiError::forbidden(format!(
            "poddisruptionbudget.policy \"{name}\" is forbidden: {why}"
        ))
    };
    if allowed < 0 {
        return Err(forbidden("pdb disruptions allowed is negative"));
    }
    let disrupted = st["disruptedPods"].as_object().map_or(0, |m| m.len());
    if disrupted > MAX_DISRUPTED_PODS {
        return Err(forbidden(
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        ));
    }
    if allowed == 0 {
        return Err(too_many_requests(format!(
            "The disruption budget {name} needs {} healthy pods and has {} currently",
            st["desiredHealthy"].as_i64().unwrap_or(0),
            st["currentHealthy"].as_i64().unwrap_or(0)
        )));
    }
    let mut next = pdb.clone();
    next["status"]["disruptionsAllowed"] = json!(allowed - 1);
    if allowed - 1 == 0 {
        set_allowed_condition(&mut next["status"], false, now);
    }
    if !next["status"]["disruptedPods"].is_object() {
        next["status"]["disruptedPods"] = json!({});
    }
    next["status"]["disruptedPods"][pod] = json!(super::defaults::format_time(now));
    Ok(next)
}

/// Upstream's `UpdateDisruptionAllowedCondition` on `status`: True/SufficientPods while
/// a disruption is allowed, False/InsufficientPods otherwise.
pub fn set_allowed_condition(status: &mut Value, allowed: bool, now: jiff::Timestamp) {
    let (st, reason) = if allowed {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    let observed = status["observedGeneration"].clone();
    let mut cond = json!({"type": DISRUPTION_ALLOWED, "status": st, "reason": reason,
        "message": "", "lastTransitionTime": super::defaults::format_time(now)});
    if !observed.is_null() {
        cond["observedGeneration"] = observed;
    }
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    let list = status["conditions"]
        .as_array_mut()
        .expect("conditions is an array");
    match list.iter_mut().find(|c| c["type"] == DISRUPTION_ALLOWED) {
        Some(c) => {
            if c["status"] == st {
                cond["lastTransitionTime"] = c["lastTransitionTime"].clone();
            }
            *c = cond;
        }
        None => list.push(cond),
    }
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

    fn budget(allowed: i64) -> Value {
        json!({"metadata": {"name": "web", "generation": 2, "resourceVersion": "7"},
            "spec": {"minAvailable": 1},
            "status": {"observedGeneration": 2, "disruptionsAllowed": allowed,
                "currentHealthy": 2, "desiredHealthy": 2, "expectedPods": 2}})
    }

    #[test]
    fn a_budget_without_disruptions_refuses_with_upstreams_cause() {
        let e = decremented(&budget(0), "p", jiff::Timestamp::now()).unwrap_err();
        assert_eq!((e.code, e.reason), (429, "TooManyRequests"));
        assert_eq!(e.message, VIOLATES);
        assert_eq!(
            e.details.unwrap(),
            json!({"causes": [{"reason": "DisruptionBudget",
                "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}]})
        );
        let mut stale = budget(1);
        stale["metadata"]["generation"] = json!(3);
        let e = decremented(&stale, "p", jiff::Timestamp::now()).unwrap_err();
        assert_eq!(e.code, 429);
        assert!(
            e.details
                .unwrap()
                .to_string()
                .contains("is still being processed by the server."),
        );
        let e = decremented(&budget(-1), "p", jiff::Timestamp::now()).unwrap_err();
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "poddisruptionbudget.policy \"web\" is forbidden: pdb disruptions allowed is negative"
        );
    }

    #[test]
    fn an_allowed_eviction_records_the_pod_and_spends_a_disruption() {
        let now = jiff::Timestamp::now();
        let next = decremented(&budget(1), "p", now).unwrap();
        assert_eq!(next["status"]["disruptionsAllowed"], 0);
        assert_eq!(
            next["status"]["disruptedPods"]["p"],
            json!(super::super::defaults::format_time(now))
        );
        assert_eq!(
            next["metadata"]["resourceVersion"], "7",
            "written with the read version"
        );
        let cond = &next["status"]["conditions"][0];
        assert_eq!(cond["type"], DISRUPTION_ALLOWED);
        assert_eq!(cond["status"], "False");
        assert_eq!(cond["reason"], "InsufficientPods");
        let more = decremented(&budget(3), "p", now).unwrap();
        assert_eq!(more["status"]["disruptionsAllowed"], 2);
        assert!(more["status"]["conditions"].is_null());
    }

    #[test]
    fn unready_pods_may_go_when_the_budget_is_healthy_or_always_allowed() {
        assert!(unhealthy_may_go(&budget(0)), "2 healthy of 2 desired");
        let mut short = budget(0);
        short["status"]["currentHealthy"] = json!(1);
        assert!(!unhealthy_may_go(&short));
        short["spec"]["unhealthyPodEvictionPolicy"] = json!("AlwaysAllow");
        assert!(unhealthy_may_go(&short));
    }

    #[test]
    fn the_disruption_target_condition_is_added_once() {
        let mut pod = json!({"metadata": {}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        set_disruption_target(&mut pod, "2026-01-01T00:00:00Z");
        set_disruption_target(&mut pod, "2026-01-01T00:05:00Z");
        let conds = pod["status"]["conditions"].as_array().unwrap();
        assert_eq!(conds.len(), 2);
        assert_eq!(conds[1]["reason"], "EvictionByEvictionAPI");
        assert_eq!(conds[1]["lastTransitionTime"], "2026-01-01T00:00:00Z");
    }
}
