//! TokenRequest: the `serviceaccounts/<name>/token` subresource mints a bound,
//! expiring service-account token (`kubectl create token`).

use serde_json::{Value, json};

use crate::apiserver::ApiServer;
use crate::apiserver::authn::serviceaccount::{ISSUER, claims};
use crate::apiserver::kinds::ResourceDef;
use crate::apiserver::status::ApiError;
use crate::apiserver::validation::Cause;

/// Upstream's default lifetime (an hour).
const DEFAULT_SECONDS: i64 = 3600;
/// Upstream's minimum (ten minutes).
const MIN_SECONDS: i64 = 600;
/// The longest lifetime handed out (a longer request is shortened, as upstream does with
/// its maximum token expiration).
const MAX_SECONDS: i64 = 48 * 3600;

fn def() -> ResourceDef {
    ResourceDef::new(
        "authentication.k8s.io",
        "v1",
        "TokenRequest",
        "tokenrequests",
    )
}

fn core(srv: &ApiServer, plural: &str) -> Result<ResourceDef, ApiError> {
    srv.registry
        .snapshot()
        .find("", "v1", plural)
        .map(|k| k.def().clone())
        .ok_or_else(|| ApiError::internal(format!("{plural} not served")))
}

fn load(srv: &ApiServer, d: &ResourceDef, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
    srv.store
        .get(&d.key(ns, name))
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| ApiError::not_found(d, name))
}

/// Answers a TokenRequest for service account `ns/name`.
pub async fn create(
    srv: &ApiServer,
    ns: &str,
    name: &str,
    mut req: Value,
) -> Result<Value, ApiError> {
    let sa = load(srv, &core(srv, "serviceaccounts")?, Some(ns), name)?;
    let spec = &req["spec"];
    let seconds = spec["expirationSeconds"]
        .as_i64()
        .unwrap_or(DEFAULT_SECONDS);
    if seconds < MIN_SECONDS {
        return Err(ApiError::invalid(
            &def(),
            name,
            &[Cause {
                reason: "FieldValueInvalid".into(),
                message: format!(
                    "Invalid value: {seconds}: may not specify a duration less than 10 minutes"
                ),
                field: "spec.expirationSeconds".into(),
            }],
        ));
    }
    let seconds = seconds.min(MAX_SECONDS);
    let audiences: Vec<String> = spec["audiences"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .filter(|a: &Vec<String>| !a.is_empty())
        .unwrap_or_else(|| vec![ISSUER.to_string()]);
    let mut bound = None;
    let mut node = None;
    let r = &spec["boundObjectRef"];
    if let Some(kind) = r["kind"].as_str() {
        let (plural, field) = match kind {
            "Pod" => ("pods", "pod"),
            "Secret" => ("secrets", "secret"),
            other => {
                return Err(ApiError::bad_request(format!(
                    "cannot bind token for object of kind {other}"
                )));
            }
        };
        let obj_name = r["name"].as_str().unwrap_or("");
        let obj = load(srv, &core(srv, plural)?, Some(ns), obj_name)?;
        let uid = obj["metadata"]["uid"].as_str().unwrap_or("").to_string();
        if let Some(want) = r["uid"].as_str().filter(|u| !u.is_empty())
            && want != uid
        {
            return Err(ApiError::conflict_msg(
                &core(srv, plural)?,
                obj_name,
                &format!(
                    "the UID in the bound object reference ({want}) does not match the UID in record. The object might have been deleted and then recreated"
                ),
            ));
        }
        if field == "pod"
            && let Some(node_name) = obj["spec"]["nodeName"].as_str()
        {
            let node_def = core(srv, "nodes")?;
            if let Ok(n) = load(srv, &node_def, None, node_name) {
                let nuid = n["metadata"]["uid"].as_str().unwrap_or("").to_string();
                node = Some((node_name.to_string(), nuid));
            }
        }
        bound = Some((field, obj_name.to_string(), uid));
    }
    let now = jiff::Timestamp::now().as_second();
    let c = claims(
        ns,
        name,
        sa["metadata"]["uid"].as_str().unwrap_or(""),
        &audiences,
        now,
        seconds,
        bound.as_ref().map(|(f, n, u)| (*f, n.as_str(), u.as_str())),
        node.as_ref().map(|(n, u)| (n.as_str(), u.as_str())),
    );
    let token = srv
        .authn
        .signer
        .sign(&c)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let expires = jiff::Timestamp::from_second(now + seconds)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    req["apiVersion"] = json!("authentication.k8s.io/v1");
    req["kind"] = json!("TokenRequest");
    req["metadata"]["name"] = json!(name);
    req["metadata"]["namespace"] = json!(ns);
    req["spec"]["audiences"] = json!(audiences);
    req["spec"]["expirationSeconds"] = json!(seconds);
    req["status"] = json!({"token": token, "expirationTimestamp": expires});
    Ok(req)
}
