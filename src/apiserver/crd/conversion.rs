//! Webhook conversion of custom resources (a CRD with `conversion.strategy: Webhook`), as
//! upstream's apiextensions-apiserver does it: objects are converted at the storage
//! boundary only — from the storage version when read, to it when written — by POSTing a
//! `ConversionReview` to the CRD's webhook. Everything between (defaulting, admission,
//! validation, managed fields) sees the request's version.
//!
//! The sync [`Strategy::to_view`]/[`Strategy::to_storage`] of such a kind leave objects
//! as they are; [`from_store`] and [`to_store`] are the async conversions every read and
//! write path of the handlers calls. For every other kind they are no-ops.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::apiserver::ApiServer;
use crate::apiserver::admission::webhook_client;
use crate::apiserver::kinds::Strategy;
use crate::apiserver::status::ApiError;

/// Upstream's conversion client gives a webhook the default REST client timeout.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The ConversionReview versions rkind speaks, as upstream's.
const REVIEW_VERSIONS: [&str; 2] = ["v1", "v1beta1"];

/// A CRD's conversion webhook.
#[derive(Debug, Clone)]
pub struct ConversionWebhook {
    /// `spec.conversion.webhook.clientConfig`.
    client_config: Value,
    /// The first of `conversionReviewVersions` rkind speaks, if any.
    review_version: Option<String>,
    /// The storage version's apiVersion (`example.com/v1`): what writes convert to.
    storage_api_version: String,
}

/// Why a conversion failed: upstream's message, served as 500 InternalError.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConversionError(String);

impl From<ConversionError> for ApiError {
    fn from(e: ConversionError) -> Self {
        ApiError::internal(e.0)
    }
}

impl ConversionWebhook {
    /// The webhook of `crd`, when its conversion strategy is `Webhook`.
    pub fn of(crd: &Value, storage_api_version: &str) -> Option<Self> {
        let conv = &crd["spec"]["conversion"];
        if conv["strategy"].as_str() != Some("Webhook") {
            return None;
        }
        let review_version = conv["webhook"]["conversionReviewVersions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .find(|v| REVIEW_VERSIONS.contains(v))
            .map(String::from);
        Some(Self {
            client_config: conv["webhook"]["clientConfig"].clone(),
            review_version,
            storage_api_version: storage_api_version.to_string(),
        })
    }

    /// Converts `objects` to `desired` (`example.com/v2`): those already in it are kept,
    /// the rest go to the webhook in one review. Errors name what was converted as
    /// upstream does (`example.com/v1, Kind=Widget`, `…Kind=WidgetList` for a `list`).
    pub async fn convert(
        &self,
        srv: &ApiServer,
        objects: Vec<Arc<Value>>,
        desired: &str,
        list: bool,
    ) -> Result<Vec<Arc<Value>>, ConversionError> {
        let pending: Vec<usize> = (0..objects.len())
            .filter(|i| objects[*i]["apiVersion"].as_str() != Some(desired))
            .collect();
        let Some(first) = pending.first().map(|i| &objects[*i]) else {
            return Ok(objects);
        };
        let gvk = format!(
            "{}, Kind={}{}",
            first["apiVersion"].as_str().unwrap_or(""),
            first["kind"].as_str().unwrap_or(""),
            if list { "List" } else { "" }
        );
        let failed =
            |why: String| ConversionError(format!("conversion webhook for {gvk} failed: {why}"));
        let version = self
            .review_version
            .as_deref()
            .ok_or_else(|| failed("no supported conversion review versions".into()))?;
        let uid = uuid::Uuid::new_v4().to_string();
        let sent: Vec<&Value> = pending.iter().map(|i| &*objects[*i]).collect();
        let review = json!({
            "apiVersion": format!("apiextensions.k8s.io/{version}"),
            "kind": "ConversionReview",
            "request": {"uid": uid, "desiredAPIVersion": desired, "objects": sent},
        });
        let answer = webhook_client::post(srv, &self.client_config, &review, TIMEOUT)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let converted = converted_objects(&answer, version, &uid).map_err(failed)?;
        if converted.len() != pending.len() {
            return Err(ConversionError(format!(
                "conversion webhook for {gvk} returned {} objects, expected {}",
                converted.len(),
                pending.len()
            )));
        }
        let mut out = objects;
        for (n, (i, mut obj)) in pending.into_iter().zip(converted).enumerate() {
            let invalid = |why: String| {
                ConversionError(format!(
                    "conversion webhook for {gvk} returned invalid converted object at index {n}: {why}"
                ))
            };
            let original = &out[i];
            let got = obj["apiVersion"].as_str().unwrap_or("");
            if got != desired {
                return Err(invalid(format!(
                    "invalid groupVersion (expected {desired}, received {got})"
                )));
            }
            check_identity(original, &obj).map_err(invalid)?;
            restore_metadata(original, &mut obj).map_err(|why| {
                ConversionError(format!(
                    "conversion webhook for {gvk} returned invalid metadata in object at index {n}: {why}"
                ))
            })?;
            out[i] = Arc::new(obj);
        }
        Ok(out)
    }
}

/// The converted objects of a webhook's `answer` to a review of `version` with `uid`.
fn converted_objects(answer: &Value, version: &str, uid: &str) -> Result<Vec<Value>, String> {
    let resp = answer
        .get("response")
        .filter(|r| r.is_object())
        .ok_or("no response provided")?;
    if version == "v1" {
        // v1 reviews are checked for their kind and uid; v1beta1 ones never were.
        let gvk = format!(
            "{}, Kind={}",
            answer["apiVersion"].as_str().unwrap_or(""),
            answer["kind"].as_str().unwrap_or("")
        );
        if gvk != "apiextensions.k8s.io/v1, Kind=ConversionReview" {
            return Err(format!(
                "expected webhook response of apiextensions.k8s.io/v1, Kind=ConversionReview, got {gvk}"
            ));
        }
        let got = resp["uid"].as_str().unwrap_or("");
        if got != uid {
            return Err(format!("expected response.uid=\"{uid}\", got \"{got}\""));
        }
    }
    let status = resp["result"]["status"].as_str().unwrap_or("");
    if status != "Success" {
        return Err(match resp["result"]["message"].as_str() {
            Some(m) if !m.is_empty() => m.to_string(),
            _ => format!("response.result.status was '{status}', not 'Success'"),
        });
    }
    Ok(resp["convertedObjects"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// A conversion may not change what an object is: its kind, name, namespace and uid.
fn check_identity(original: &Value, converted: &Value) -> Result<(), String> {
    for (what, path) in [
        ("kind", "/kind"),
        ("name", "/metadata/name"),
        ("namespace", "/metadata/namespace"),
        ("UID", "/metadata/uid"),
    ] {
        let text = |v: &Value| {
            v.pointer(path)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let (e, a) = (text(original), text(converted));
        if e != a {
            return Err(format!("must have the same {what}: {e} != {a}"));
        }
    }
    Ok(())
}

/// The converted object keeps the original's metadata, but for the labels and
/// annotations the webhook returned (which must be maps of strings).
fn restore_metadata(original: &Value, converted: &mut Value) -> Result<(), String> {
    let answered = match converted.get("metadata") {
        Some(Value::Object(m)) => m.clone(),
        Some(other) => {
            return Err(format!(
                "invalid metadata of type {} in converted object",
                type_name(other)
            ));
        }
        None => return Err("missing metadata in converted object".into()),
    };
    let mut meta = original["metadata"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for field in ["labels", "annotations"] {
        match answered.get(field) {
            None | Some(Value::Null) => {
                meta.remove(field);
            }
            Some(Value::Object(m)) => {
                if let Some((k, v)) = m.iter().find(|(_, v)| !v.is_string()) {
                    return Err(format!(
                        "metadata.{field}[{k}] must be a string, but is {} in converted object",
                        type_name(v)
                    ));
                }
                meta.insert(field.into(), Value::Object(m.clone()));
            }
            Some(other) => {
                return Err(format!(
                    "invalid metadata.{field} of type {} in converted object",
                    type_name(other)
                ));
            }
        }
    }
    converted["metadata"] = Value::Object(meta);
    Ok(())
}

/// A JSON value's type as Go names the decoded type in upstream's messages.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Stored objects of `res` in the request's version (one review for all of them).
pub async fn from_store_all(
    srv: &ApiServer,
    res: &dyn Strategy,
    stored: Vec<Arc<Value>>,
) -> Result<Vec<Arc<Value>>, ApiError> {
    match res.conversion_webhook() {
        Some(hook) if !stored.is_empty() => Ok(hook
            .convert(srv, stored, &res.def().api_version(), true)
            .await?),
        _ => Ok(stored),
    }
}

/// A stored object of `res` in the request's version.
pub async fn from_store(
    srv: &ApiServer,
    res: &dyn Strategy,
    stored: Arc<Value>,
) -> Result<Arc<Value>, ApiError> {
    match res.conversion_webhook() {
        Some(hook) => Ok(hook
            .convert(srv, vec![stored], &res.def().api_version(), false)
            .await?
            .pop()
            .unwrap_or_default()),
        None => Ok(stored),
    }
}

/// An object of `res` in the request's version, converted to its storage version to be
/// written.
pub async fn to_store(srv: &ApiServer, res: &dyn Strategy, obj: Value) -> Result<Value, ApiError> {
    match res.conversion_webhook() {
        Some(hook) => {
            let storage = &hook.storage_api_version;
            let out = hook
                .convert(srv, vec![Arc::new(obj)], storage, false)
                .await?;
            Ok(out
                .into_iter()
                .next()
                .map(Arc::unwrap_or_clone)
                .unwrap_or_default())
        }
        None => Ok(obj),
    }
}

/// An object of `from` (in its version) as `to` (an equivalent version of the same
/// stored resource) shows it: through the webhook when `from` has one, else through
/// the stored form.
pub async fn between(
    srv: &ApiServer,
    from: &dyn Strategy,
    to: &dyn Strategy,
    obj: Value,
) -> Result<Value, ApiError> {
    match from.conversion_webhook() {
        Some(hook) => {
            let out = hook
                .convert(srv, vec![Arc::new(obj)], &to.def().api_version(), false)
                .await?;
            Ok(out
                .into_iter()
                .next()
                .map(Arc::unwrap_or_clone)
                .unwrap_or_default())
        }
        None => Ok(to.to_view(&from.to_storage(obj))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_labels_and_annotations_come_back_from_the_webhook() {
        let original = json!({"metadata": {"name": "w", "uid": "u", "labels": {"a": "1"},
            "resourceVersion": "5"}});
        let mut converted = json!({"metadata": {"name": "w", "uid": "u", "labels": {"b": "2"},
            "resourceVersion": "9", "finalizers": ["x"]}, "spec": {}});
        restore_metadata(&original, &mut converted).unwrap();
        assert_eq!(
            converted["metadata"],
            json!({"name": "w", "uid": "u", "labels": {"b": "2"}, "resourceVersion": "5"})
        );
        let mut bad = json!({"metadata": {"labels": {"n": 1}}});
        assert_eq!(
            restore_metadata(&original, &mut bad).unwrap_err(),
            "metadata.labels[n] must be a string, but is int64 in converted object"
        );
        assert_eq!(
            restore_metadata(&original, &mut json!({})).unwrap_err(),
            "missing metadata in converted object"
        );
    }

    #[test]
    fn a_review_answer_is_checked_as_upstream_checks_it() {
        let ok = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "response": {"uid": "1", "result": {"status": "Success"}, "convertedObjects": [{}]}});
        assert_eq!(converted_objects(&ok, "v1", "1").unwrap().len(), 1);
        assert_eq!(
            converted_objects(&ok, "v1", "2").unwrap_err(),
            "expected response.uid=\"2\", got \"1\""
        );
        let refused = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "response": {"uid": "1", "result": {"status": "Failure", "message": "no way"}}});
        assert_eq!(
            converted_objects(&refused, "v1", "1").unwrap_err(),
            "no way"
        );
        assert_eq!(
            converted_objects(&json!({}), "v1beta1", "1").unwrap_err(),
            "no response provided"
        );
        assert_eq!(
            check_identity(&json!({"kind": "W"}), &json!({"kind": "X"})).unwrap_err(),
            "must have the same kind: W != X"
        );
    }
}
