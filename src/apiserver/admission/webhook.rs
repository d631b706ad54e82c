//! MutatingAdmissionWebhook and ValidatingAdmissionWebhook: the writes that match a
//! `MutatingWebhookConfiguration` or `ValidatingWebhookConfiguration` are sent to the
//! webhook as an `AdmissionReview`, as upstream's webhook dispatchers do — mutating ones in
//! order (configurations by name, webhooks as listed), each seeing the previous one's
//! patch, with one reinvocation for `reinvocationPolicy: IfNeeded`; validating ones after
//! every mutation. A refusal is relayed with the webhook's status; a webhook that cannot
//! be called fails the write (`failurePolicy: Fail`) or is skipped (`Ignore`).

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use tracing::Instrument;

use super::matching::{admission_request, any_rule_matches, namespace_matches, object_matches};
use super::webhook_client::{self, CallError};
use super::{Admit, Plugin, Request};
use crate::apiserver::ApiServer;
use crate::apiserver::cel;
use crate::apiserver::crd::conversion;
use crate::apiserver::kinds::{Kind, Strategy};
use crate::apiserver::status::ApiError;

/// The group whose kinds configure admission: never sent to webhooks, so a broken webhook
/// can always be removed (upstream exempts the same resources).
const CONFIG_GROUP: &str = "admissionregistration.k8s.io";

/// Upstream's MutatingAdmissionWebhook plugin.
pub struct MutatingAdmissionWebhook;

/// Upstream's ValidatingAdmissionWebhook plugin.
pub struct ValidatingAdmissionWebhook;

/// One webhook of a configuration.
struct Hook {
    /// The webhook's `name` (what errors name).
    name: String,
    spec: Value,
}

impl Hook {
    fn fails_closed(&self) -> bool {
        self.spec["failurePolicy"].as_str() != Some("Ignore")
    }

    fn reinvoked(&self) -> bool {
        self.spec["reinvocationPolicy"].as_str() == Some("IfNeeded")
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(
            self.spec["timeoutSeconds"]
                .as_u64()
                .unwrap_or(10)
                .clamp(1, 30),
        )
    }
}

/// The webhooks of every configuration of `plural`, configurations ordered by name.
fn hooks(srv: &ApiServer, plural: &str) -> Vec<Hook> {
    let snap = srv.registry.snapshot();
    let Some(kind) = snap.find(CONFIG_GROUP, "v1", plural) else {
        return Vec::new();
    };
    let mut configs = srv.store.list_shared(&kind.def().prefix(None)).0;
    configs.sort_by(|a, b| {
        a["metadata"]["name"]
            .as_str()
            .cmp(&b["metadata"]["name"].as_str())
    });
    configs
        .iter()
        .flat_map(|c| c["webhooks"].as_array().cloned().unwrap_or_default())
        .map(|spec| Hook {
            name: spec["name"].as_str().unwrap_or("").to_string(),
            spec,
        })
        .collect()
}

/// An error calling `hook`, in upstream's `ErrCallingWebhook` wording.
fn calling_error(hook: &Hook, why: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("failed calling webhook \"{}\": {why}", hook.name))
}

/// The version a webhook sees a write in.
enum SeenAs {
    /// Its rules name the request's own version.
    Requested,
    /// They name another served version of the same stored resource and its
    /// `matchPolicy` is `Equivalent` (the default): the write is converted to that one.
    Equivalent(Kind),
}

/// The request as `kind` sees it (an equivalent version), with `old` converted to it.
fn as_kind<'a>(req: &Request<'a>, kind: &'a dyn Strategy, old: Option<&'a Value>) -> Request<'a> {
    Request {
        operation: req.operation,
        kind,
        namespace: req.namespace,
        name: req.name,
        subresource: req.subresource,
        old,
        user: req.user,
        dry_run: req.dry_run,
        warnings: Default::default(),
    }
}

/// Whether `hook`'s rules cover the write, and in which version (upstream's
/// `matchPolicy` with its equivalent resource mapper: the versions of one stored
/// resource are equivalent, e.g. a custom kind's versions or autoscaling v1 and v2).
fn seen_as(srv: &ApiServer, req: &Request<'_>, hook: &Hook) -> Option<SeenAs> {
    let rules = &hook.spec["rules"];
    if any_rule_matches(rules, req) {
        return Some(SeenAs::Requested);
    }
    if hook.spec["matchPolicy"].as_str() == Some("Exact") {
        return None;
    }
    let def = req.kind.def();
    let snap = srv.registry.snapshot();
    snap.kinds
        .iter()
        .filter(|k| {
            let d = k.def();
            d.storage == def.storage
                && (d.group != def.group || d.version != def.version)
                && req
                    .subresource
                    .is_none_or(|s| d.find_subresource(s).is_some())
        })
        .find(|k| any_rule_matches(rules, &as_kind(req, &***k, req.old)))
        .map(|k| SeenAs::Equivalent(k.clone()))
}

/// Whether `hook` wants this write (its rules matched): namespace and object selectors,
/// then its `matchConditions` (all must be true).
fn wants(
    srv: &ApiServer,
    req: &Request<'_>,
    requested: &dyn Strategy,
    obj: &Value,
    hook: &Hook,
) -> Result<bool, ApiError> {
    if !namespace_matches(srv, req, obj, &hook.spec["namespaceSelector"])
        || !object_matches(req, obj, &hook.spec["objectSelector"])
    {
        return Ok(false);
    }
    let conditions = hook.spec["matchConditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if conditions.is_empty() {
        return Ok(true);
    }
    let vars = cel_vars(req, requested, obj);
    for c in &conditions {
        let name = c["name"].as_str().unwrap_or("");
        let verdict = cel::compile(c["expression"].as_str().unwrap_or(""))
            .and_then(|p| cel::eval_bool(&p, &vars));
        match verdict {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(e) if hook.fails_closed() => {
                return Err(calling_error(
                    hook,
                    format!("failed to evaluate match condition {name:?}: {e}"),
                ));
            }
            Err(e) => {
                tracing::warn!(webhook = %hook.name, condition = name, error = %e,
                    "match condition failed; webhook skipped (failurePolicy Ignore)");
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// The variables of a webhook's match conditions: `object`, `oldObject`, `request`.
fn cel_vars(
    req: &Request<'_>,
    requested: &dyn Strategy,
    obj: &Value,
) -> Vec<(&'static str, ::cel::Value)> {
    let r = admission_request(req, requested, "", obj);
    vec![
        ("object", cel::to_cel(&r["object"])),
        ("oldObject", cel::to_cel(&r["oldObject"])),
        ("request", cel::to_cel(&r)),
    ]
}

/// The AdmissionReview version the webhook accepts (`v1` preferred).
fn review_version(hook: &Hook) -> &'static str {
    let versions = &hook.spec["admissionReviewVersions"];
    let has = |v: &str| {
        versions
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == v))
    };
    if !has("v1") && has("v1beta1") {
        "admission.k8s.io/v1beta1"
    } else {
        "admission.k8s.io/v1"
    }
}

/// Sends the review and checks the answer is one (upstream's `VerifyAdmissionResponse`).
async fn review(
    srv: &ApiServer,
    req: &Request<'_>,
    requested: &dyn Strategy,
    obj: &Value,
    hook: &Hook,
) -> Result<Value, CallError> {
    let uid = uuid::Uuid::new_v4().to_string();
    let version = review_version(hook);
    let review = json!({
        "apiVersion": version,
        "kind": "AdmissionReview",
        "request": admission_request(req, requested, &uid, obj),
    });
    let answer =
        webhook_client::post(srv, &hook.spec["clientConfig"], &review, hook.timeout()).await?;
    let invalid =
        |why: String| CallError::Response(format!("received invalid webhook response: {why}"));
    let (av, kind) = (
        answer["apiVersion"].as_str().unwrap_or(""),
        answer["kind"].as_str().unwrap_or(""),
    );
    if av != version || kind != "AdmissionReview" {
        return Err(invalid(format!(
            "expected webhook response of {version}, Kind=AdmissionReview, got {av}, Kind={kind}"
        )));
    }
    let response = &answer["response"];
    if !response.is_object() {
        return Err(invalid("webhook response was absent".into()));
    }
    let got = response["uid"].as_str().unwrap_or("");
    if got != uid {
        return Err(invalid(format!(
            "expected response.uid={uid:?}, got {got:?}"
        )));
    }
    Ok(response.clone())
}

/// A refusal as upstream's `ToStatusErr` words it.
fn denial(req: &Request<'_>, hook: &Hook, result: &Value) -> ApiError {
    let code = result["code"].as_u64().filter(|c| *c != 0).unwrap_or(403) as u16;
    let denied = format!("admission webhook {:?} denied the request", hook.name);
    let message = match (result["message"].as_str(), result["reason"].as_str()) {
        (Some(m), _) if !m.is_empty() => format!("{denied}: {m}"),
        (_, Some(r)) if !r.is_empty() => format!("{denied}: {r}"),
        _ => format!("{denied} without explanation"),
    };
    let def = req.kind.def();
    let name = if req.name.is_empty() {
        "Unknown"
    } else {
        req.name
    };
    let (message, details) = if code == 500 {
        (
            format!("Internal error occurred: {message}"),
            json!({"causes": [{"message": message}]}),
        )
    } else {
        let mut d = json!({"kind": def.plural, "name": name});
        if !def.group.is_empty() {
            d["group"] = json!(def.group);
        }
        (
            format!("{} {name:?} is forbidden: {message}", def.qualified()),
            d,
        )
    };
    let details = if result["details"].is_object() {
        result["details"].clone()
    } else {
        details
    };
    let reason = match result["reason"].as_str().unwrap_or("") {
        "" if code == 500 => "InternalError",
        "" => "Forbidden",
        r => r,
    };
    ApiError::relayed(code, reason, message, details)
}

/// What one webhook said that the dispatcher acts on.
enum Verdict {
    /// Allowed, with a JSON patch of the object as given.
    Allowed {
        patch: Option<Vec<u8>>,
    },
    /// Allowed and patched in an equivalent version: the object converted back.
    Replaced(Value),
    Skipped,
}

/// Calls `hook` if its rules cover the write — converted to the version they name when
/// that is an equivalent one — relaying warnings and refusals.
async fn dispatch(
    srv: &ApiServer,
    req: &Request<'_>,
    obj: &Value,
    hook: &Hook,
    mutating: bool,
) -> Result<Verdict, ApiError> {
    let kind = match seen_as(srv, req, hook) {
        None => return Ok(Verdict::Skipped),
        Some(SeenAs::Requested) => return call(srv, req, req.kind, obj, hook, mutating).await,
        Some(SeenAs::Equivalent(kind)) => kind,
    };
    let converted = conversion::between(srv, req.kind, &*kind, obj.clone()).await?;
    let old = match req.old {
        Some(o) => Some(conversion::between(srv, req.kind, &*kind, o.clone()).await?),
        None => None,
    };
    let seen = as_kind(req, &*kind, old.as_ref());
    let verdict = call(srv, &seen, req.kind, &converted, hook, mutating).await;
    for w in seen.take_warnings() {
        req.warn(w);
    }
    match verdict? {
        Verdict::Allowed { patch: Some(p) } => {
            let mut patched = converted;
            apply_patch(hook, &mut patched, &p)?;
            let back = conversion::between(srv, &*kind, req.kind, patched).await?;
            Ok(Verdict::Replaced(back))
        }
        v => Ok(v),
    }
}

/// Calls `hook` with the write as `req` shows it (`requested`: the kind the client
/// wrote) if its selectors and conditions want it.
async fn call(
    srv: &ApiServer,
    req: &Request<'_>,
    requested: &dyn Strategy,
    obj: &Value,
    hook: &Hook,
    mutating: bool,
) -> Result<Verdict, ApiError> {
    if !wants(srv, req, requested, obj, hook)? {
        return Ok(Verdict::Skipped);
    }
    let side_effects = hook.spec["sideEffects"].as_str().unwrap_or("Unknown");
    if req.dry_run && !matches!(side_effects, "None" | "NoneOnDryRun") {
        return Err(ApiError::bad_request(format!(
            "admission webhook {:?} does not support dry run",
            hook.name
        )));
    }
    let response = match review(srv, req, requested, obj, hook).await {
        Ok(r) => r,
        Err(e) if hook.fails_closed() => return Err(calling_error(hook, e)),
        Err(e) => {
            tracing::warn!(webhook = %hook.name, error = %e, "webhook call failed; ignored (failurePolicy Ignore)");
            return Ok(Verdict::Skipped);
        }
    };
    for w in response["warnings"].as_array().into_iter().flatten() {
        if let Some(w) = w.as_str() {
            req.warn(w.to_string());
        }
    }
    if response["allowed"].as_bool() != Some(true) {
        return Err(denial(req, hook, &response["status"]));
    }
    let Some(patch) = response["patch"].as_str().filter(|_| mutating) else {
        return Ok(Verdict::Allowed { patch: None });
    };
    let bad =
        |why: String| calling_error(hook, format!("received invalid webhook response: {why}"));
    match response["patchType"].as_str() {
        Some("JSONPatch") => {}
        other => {
            return Err(bad(format!(
                "unsupported patch type {:?}",
                other.unwrap_or("")
            )));
        }
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(patch)
        .map_err(|e| bad(format!("patch is not base64: {e}")))?;
    Ok(Verdict::Allowed { patch: Some(bytes) })
}

/// Applies a webhook's JSON patch to `obj`.
fn apply_patch(hook: &Hook, obj: &mut Value, patch: &[u8]) -> Result<(), ApiError> {
    let patch: json_patch::Patch = serde_json::from_slice(patch).map_err(|e| {
        calling_error(
            hook,
            format!("the webhook's patch is not a JSON patch: {e}"),
        )
    })?;
    let mut patched = obj.clone();
    json_patch::patch(&mut patched, &patch).map_err(|e| {
        ApiError::internal(format!(
            "JSON Patch of webhook {:?} could not be applied: {e}",
            hook.name
        ))
    })?;
    *obj = patched;
    Ok(())
}

/// Applies what a mutating webhook answered to `obj`; whether it changed.
fn take(hook: &Hook, obj: &mut Value, verdict: Verdict) -> Result<bool, ApiError> {
    let before = obj.clone();
    match verdict {
        Verdict::Allowed { patch: Some(p) } => apply_patch(hook, obj, &p)?,
        Verdict::Replaced(v) => *obj = v,
        Verdict::Allowed { patch: None } | Verdict::Skipped => return Ok(false),
    }
    Ok(*obj != before)
}

fn exempt(req: &Request<'_>) -> bool {
    req.kind.def().group == CONFIG_GROUP
}

impl Plugin for MutatingAdmissionWebhook {
    fn name(&self) -> &'static str {
        "MutatingAdmissionWebhook"
    }

    fn mutate<'a>(
        &'a self,
        srv: &'a ApiServer,
        req: &'a Request<'a>,
        obj: &'a mut Value,
    ) -> Admit<'a> {
        Box::pin(async move {
            if exempt(req) {
                return Ok(());
            }
            let hooks = hooks(srv, "mutatingwebhookconfigurations");
            // Which webhooks ran, and the index of the last one that changed the object.
            let mut called = vec![false; hooks.len()];
            let mut last_change = None;
            for (i, hook) in hooks.iter().enumerate() {
                let span = tracing::debug_span!("apiserver_to_webhook", webhook = %hook.name);
                let verdict = dispatch(srv, req, obj, hook, true).instrument(span).await?;
                if !matches!(verdict, Verdict::Skipped) {
                    called[i] = true;
                }
                if take(hook, obj, verdict)? {
                    last_change = Some(i);
                }
            }
            // `IfNeeded`: a webhook that ran before a later change sees the object again, once.
            let Some(last) = last_change else {
                return Ok(());
            };
            for (i, hook) in hooks.iter().enumerate() {
                if !(called[i] && hook.reinvoked() && i < last) {
                    continue;
                }
                let verdict = dispatch(srv, req, obj, hook, true).await?;
                take(hook, obj, verdict)?;
            }
            // The patched object goes through the kind's type again, as upstream decodes it.
            let (norm, _unknown) = req.kind.normalize(obj.take()).map_err(|e| {
                ApiError::internal(format!(
                    "the object mutating webhooks produced does not decode: {e}"
                ))
            })?;
            *obj = norm;
            Ok(())
        })
    }
}

impl Plugin for ValidatingAdmissionWebhook {
    fn name(&self) -> &'static str {
        "ValidatingAdmissionWebhook"
    }

    fn validate<'a>(
        &'a self,
        srv: &'a ApiServer,
        req: &'a Request<'a>,
        obj: &'a Value,
    ) -> Admit<'a> {
        Box::pin(async move {
            if exempt(req) {
                return Ok(());
            }
            let hooks = hooks(srv, "validatingwebhookconfigurations");
            // Upstream calls validating webhooks in parallel; the first refusal wins.
            let calls = hooks
                .iter()
                .map(|hook| dispatch(srv, req, obj, hook, false));
            for r in futures_util::future::join_all(calls).await {
                r?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::admission::Operation;
    use crate::apiserver::kinds::core::pod::Pods;
    use crate::pki::UserInfo;

    #[test]
    fn denials_read_as_upstream() {
        let pods = Pods::new();
        let user = UserInfo::default();
        let req = Request {
            operation: Operation::Create,
            kind: &pods,
            namespace: Some("default"),
            name: "web",
            subresource: None,
            old: None,
            user: &user,
            dry_run: false,
            warnings: Default::default(),
        };
        let hook = Hook {
            name: "deny.rkind.dev".into(),
            spec: json!({}),
        };
        let e = denial(&req, &hook, &json!({"message": "no pods today"}));
        assert_eq!((e.code, e.reason), (403, "Forbidden"));
        assert_eq!(
            e.message,
            "pods \"web\" is forbidden: admission webhook \"deny.rkind.dev\" denied the request: no pods today"
        );
        let e = denial(&req, &hook, &Value::Null);
        assert!(
            e.message
                .ends_with("denied the request without explanation"),
            "{}",
            e.message
        );
        let e = denial(&req, &hook, &json!({"code": 500, "reason": "Oops"}));
        assert_eq!((e.code, e.reason), (500, "InternalError"));
        assert_eq!(
            e.message,
            "Internal error occurred: admission webhook \"deny.rkind.dev\" denied the request: Oops"
        );
        let e = denial(
            &req,
            &hook,
            &json!({"code": 422, "reason": "Invalid", "message": "m"}),
        );
        assert_eq!((e.code, e.reason), (422, "Invalid"));
    }
}
