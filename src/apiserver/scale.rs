//! The generic `scale` subresource: an autoscaling/v1 `Scale` view of any kind whose
//! strategy says where its replicas and selector live ([`Strategy::scale`]), as upstream's
//! per-kind `ScaleREST` (pkg/registry/*/storage) and the CRD scale handler serve it.
//!
//! GET builds the Scale from the stored object. PUT and PATCH compute a new Scale from the
//! current one, validate it (`ValidateScale`), check a uid precondition, then write
//! `spec.replicas` and the Scale's `resourceVersion` into the object and update it through
//! the ordinary update path: a stale resourceVersion conflicts on the parent resource, an
//! empty one updates unconditionally, the generation moves, the kind's own validation
//! and admission run. A server-side apply on the Scale is an apply of the replicas field
//! on the parent, recorded with `subresource: scale` in its managedFields.

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tracing::Instrument;

use super::kinds::{ScalePaths, SelectorForm, Strategy};
use super::status::ApiError;
use super::validation::{self, Cause};
use super::{ApiServer, Body, Ctx, apply, defaults, handlers, read_body};

/// The group/version of the Scale kind served.
pub const API_VERSION: &str = "autoscaling/v1";

/// Why a Scale body cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScaleError {
    /// The body names another kind or version.
    #[error(
        "the API version or kind in the data ({api_version}, {kind}) does not match the expected autoscaling/v1 Scale"
    )]
    WrongType {
        /// The body's apiVersion.
        api_version: String,
        /// The body's kind.
        kind: String,
    },
    /// `spec.replicas` is not an integer.
    #[error("Scale in version \"v1\" cannot be handled as a Scale: spec.replicas: {0}")]
    NotAnInteger(String),
}

impl From<ScaleError> for ApiError {
    fn from(e: ScaleError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

/// Handles GET, PUT and PATCH on `<resource>/<name>/scale`.
pub async fn serve(
    srv: &Arc<ApiServer>,
    ctx: &Ctx,
    req: Request<Incoming>,
    res: &dyn Strategy,
    ns: Option<&str>,
    name: &str,
) -> Result<Response<Body>, ApiError> {
    let paths = res.scale().ok_or_else(ApiError::path_not_found)?;
    let span = tracing::debug_span!("apiserver_scale", resource = %res.def().plural, name = %name);
    async move {
        handlers::check_write_options(ctx)?;
        let scale = match ctx.method {
            Method::GET => {
                let obj = srv
                    .store
                    .get_shared(&res.def().key(ns, name))
                    .ok_or_else(|| not_found(res, &paths, name))?;
                let obj = super::crd::conversion::from_store(srv, res, obj).await?;
                scale_of(&paths, &res.to_view(&obj))
            }
            Method::PUT => {
                let body = read_body(req).await?;
                let mut given = handlers::decode_body(ctx, &body)?;
                check_type(&mut given)?;
                let body_name = given["metadata"]["name"].as_str().unwrap_or("");
                if body_name != name {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({body_name}) does not match the name on the URL ({name})"
                    )));
                }
                update(srv, ctx, res, &paths, ns, name, |_, _| Ok(given.clone())).await?
            }
            Method::PATCH => {
                let body = read_body(req).await?;
                patch(srv, ctx, res, &paths, ns, name, &body).await?
            }
            _ => {
                return Err(ApiError::method_not_allowed(format!(
                    "the server does not allow this method on the requested resource ({} scale)",
                    ctx.method
                )));
            }
        };
        let code = StatusCode::OK;
        Ok(super::negotiate::object_response(ctx, code, &scale, &[]))
    }
    .instrument(span)
    .await
}

/// The NotFound upstream's ScaleREST answers for a missing object.
fn not_found(res: &dyn Strategy, paths: &ScalePaths, name: &str) -> ApiError {
    let mut resource = format!("{}/scale", res.def().plural);
    if !paths.not_found_group.is_empty() {
        resource = format!("{resource}.{}", paths.not_found_group);
    }
    let mut e = ApiError::not_found_message(format!("{resource} \"{name}\" not found"));
    e.details = Some(json!({"name": name, "group": paths.not_found_group,
        "kind": format!("{}/scale", res.def().plural)}));
    e
}

/// Fills an absent apiVersion/kind and refuses any other type.
fn check_type(obj: &mut Value) -> Result<(), ScaleError> {
    let Some(map) = obj.as_object_mut() else {
        return Err(ScaleError::WrongType {
            api_version: String::new(),
            kind: String::new(),
        });
    };
    let av = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
    if (!av.is_empty() && av != API_VERSION) || (!kind.is_empty() && kind != "Scale") {
        return Err(ScaleError::WrongType {
            api_version: av.into(),
            kind: kind.into(),
        });
    }
    map.insert("apiVersion".into(), json!(API_VERSION));
    map.insert("kind".into(), json!("Scale"));
    Ok(())
}

/// The selector at `paths.selector` as a label-selector string (upstream's
/// `labels.Selector.String()`: requirements sorted by key).
pub fn selector_string(obj: &Value, paths: &ScalePaths) -> String {
    let Some((ptr, form)) = &paths.selector else {
        return String::new();
    };
    let Some(sel) = obj.pointer(ptr) else {
        return String::new();
    };
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let mut reqs: Vec<(String, String)> = Vec::new();
    match form {
        SelectorForm::String => return text(sel),
        SelectorForm::Map => {
            for (k, v) in sel.as_object().into_iter().flatten() {
                reqs.push((k.clone(), format!("{k}={}", text(v))));
            }
        }
        SelectorForm::LabelSelector => {
            for (k, v) in sel["matchLabels"].as_object().into_iter().flatten() {
                reqs.push((k.clone(), format!("{k}={}", text(v))));
            }
            for e in sel["matchExpressions"].as_array().into_iter().flatten() {
                let key = text(&e["key"]);
                let mut values: Vec<String> = e["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(text)
                    .collect();
                values.sort();
                let r = match e["operator"].as_str().unwrap_or("") {
                    "In" => format!("{key} in ({})", values.join(",")),
                    "NotIn" => format!("{key} notin ({})", values.join(",")),
                    "Exists" => key.clone(),
                    "DoesNotExist" => format!("!{key}"),
                    _ => continue,
                };
                reqs.push((key, r));
            }
        }
    }
    reqs.sort();
    reqs.into_iter()
        .map(|(_, r)| r)
        .collect::<Vec<_>>()
        .join(",")
}

/// The Scale view of `obj` (a view object of the parent kind).
pub fn scale_of(paths: &ScalePaths, obj: &Value) -> Value {
    let meta = &obj["metadata"];
    let mut m = serde_json::Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(k).filter(|v| !v.is_null()) {
            m.insert(k.into(), v.clone());
        }
    }
    let int = |p: &str| obj.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let mut spec = json!({});
    // `spec.replicas` is omitempty in Go; `status.replicas` is not.
    let want = int(&paths.spec_replicas);
    if want != 0 {
        spec["replicas"] = json!(want);
    }
    let mut status = json!({"replicas": int(&paths.status_replicas)});
    let selector = selector_string(obj, paths);
    if !selector.is_empty() {
        status["selector"] = json!(selector);
    }
    json!({"kind": "Scale", "apiVersion": API_VERSION, "metadata": m,
        "spec": spec, "status": status})
}

/// `ValidateScale`: the object metadata's name and a non-negative `spec.replicas`.
fn validate_scale(scale: &Value) -> Result<i64, ApiError> {
    let replicas = &scale["spec"]["replicas"];
    let n = match replicas {
        Value::Null => 0,
        v => v
            .as_i64()
            .ok_or_else(|| ScaleError::NotAnInteger(v.to_string()))?,
    };
    let name = scale["metadata"]["name"].as_str().unwrap_or("");
    let mut causes: Vec<Cause> = Vec::new();
    if name.is_empty() {
        causes.push(Cause {
            reason: "FieldValueRequired".into(),
            message: "Required value: name or generateName is required".into(),
            field: "metadata.name".into(),
        });
    }
    if n < 0 {
        causes.push(validation::invalid_num(
            "spec.replicas",
            n,
            "must be greater than or equal to 0",
        ));
    }
    if causes.is_empty() {
        return Ok(n);
    }
    Err(ApiError {
        code: 422,
        reason: "Invalid",
        message: validation::invalid_message("Scale.autoscaling", name, &causes),
        details: Some(
            json!({"name": name, "group": "autoscaling", "kind": "Scale",
            "causes": causes}),
        ),
    })
}

/// Sets `ptr` (a JSON pointer) in `obj` to `value`, creating the maps on the way.
fn set_pointer(obj: &mut Value, ptr: &str, value: Value) {
    let mut cur = obj;
    let parts: Vec<&str> = ptr.trim_start_matches('/').split('/').collect();
    for (i, p) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        if i + 1 == parts.len() {
            cur[*p] = value;
            return;
        }
        cur = &mut cur[*p];
    }
}

/// Updates the parent from the Scale `make` computes from the current Scale; returns the
/// Scale of the stored (or, for a dry run, the would-be) object.
async fn update(
    srv: &Arc<ApiServer>,
    ctx: &Ctx,
    res: &dyn Strategy,
    paths: &ScalePaths,
    ns: Option<&str>,
    name: &str,
    make: impl Fn(&Value, &Value) -> Result<Value, ApiError>,
) -> Result<Value, ApiError> {
    let applying = ctx
        .header("content-type")
        .starts_with("application/apply-patch");
    let stored = handlers::write_update(
        srv,
        ctx,
        res,
        ns,
        name,
        |current| {
            let old_scale = scale_of(paths, current);
            let mut scale = make(&old_scale, current)?;
            check_type(&mut scale)?;
            let replicas = validate_scale(&scale)?;
            let have = current["metadata"]["uid"].as_str().unwrap_or("");
            if let Some(uid) = scale["metadata"]["uid"].as_str()
                && !uid.is_empty()
                && uid != have
            {
                return Err(ApiError::conflict_msg(
                    res.def(),
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {have}"
                    ),
                ));
            }
            let mut obj = current.clone();
            set_pointer(&mut obj, &paths.spec_replicas, json!(replicas));
            if applying {
                obj["metadata"]["managedFields"] = scale["metadata"]["managedFields"].clone();
            }
            match scale["metadata"]["resourceVersion"].as_str() {
                Some(rv) if !rv.is_empty() => obj["metadata"]["resourceVersion"] = json!(rv),
                _ => {
                    if let Some(m) = obj["metadata"].as_object_mut() {
                        m.remove("resourceVersion");
                    }
                }
            }
            Ok(res.to_storage(obj))
        },
        None,
    )
    .await?
    .object;
    Ok(scale_of(paths, &res.to_view(&stored)))
}

/// PATCH: JSON, merge and strategic merge patches apply to the current Scale; an apply
/// patch applies its replicas to the parent as the manager's `scale` fields.
async fn patch(
    srv: &Arc<ApiServer>,
    ctx: &Ctx,
    res: &dyn Strategy,
    paths: &ScalePaths,
    ns: Option<&str>,
    name: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    let ct = ctx
        .header("content-type")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    match ct.as_str() {
        "application/apply-patch+yaml" => apply_scale(srv, ctx, res, paths, ns, name, body).await,
        "application/json-patch+json"
        | "application/merge-patch+json"
        | "application/strategic-merge-patch+json" => {
            let doc: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            update(srv, ctx, res, paths, ns, name, |old, _| {
                handlers::apply_patch(res, &ct, old, &doc)
            })
            .await
        }
        _ => Err(ApiError::unsupported_media_type(&ct)),
    }
}

/// Server-side apply of a Scale: the applied `spec.replicas` becomes an apply of that
/// one field on the parent, tracked under the manager with `subresource: scale`.
async fn apply_scale(
    srv: &Arc<ApiServer>,
    ctx: &Ctx,
    res: &dyn Strategy,
    paths: &ScalePaths,
    ns: Option<&str>,
    name: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    let causes =
        apply::validate_patch_options(ctx.q("fieldManager"), true, ctx.q("force").is_some());
    if !causes.is_empty() {
        return Err(ApiError::invalid_options("PatchOptions", &causes));
    }
    let mut applied = handlers::decode_body(ctx, body)?;
    check_type(&mut applied)?;
    let manager = ctx.q("fieldManager").unwrap_or("").to_string();
    let force = ctx.q("force") == Some("true");
    let schema = res.field_schema();
    let av = res.def().api_version();
    let now = defaults::now_rfc3339();
    let target = apply::Target {
        schema: &schema,
        api_version: &av,
        subresource: "scale",
        now: &now,
    };
    update(srv, ctx, res, paths, ns, name, |old, parent| {
        let mut config = json!({"apiVersion": av, "kind": res.def().kind,
            "metadata": {"name": name}});
        if let Some(ns) = ns {
            config["metadata"]["namespace"] = json!(ns);
        }
        if let Some(r) = applied["spec"].get("replicas") {
            set_pointer(&mut config, &paths.spec_replicas, r.clone());
        }
        let merged =
            apply::apply(Some(parent), &config, &manager, force, &target).map_err(apply_error)?;
        let mut scale = scale_of(paths, &merged);
        scale["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        scale["metadata"]["managedFields"] = merged["metadata"]["managedFields"].clone();
        Ok(scale)
    })
    .await
}

/// The Status of a failed apply (409 with `FieldManagerConflict` causes for conflicts).
fn apply_error(e: apply::ApplyError) -> ApiError {
    let details = (e.status_code() == 409).then(|| json!({"causes": e.causes()}));
    ApiError {
        code: e.status_code(),
        reason: e.reason(),
        message: e.message(),
        details,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(form: SelectorForm, ptr: &str) -> ScalePaths {
        ScalePaths {
            spec_replicas: "/spec/replicas".into(),
            status_replicas: "/status/replicas".into(),
            selector: Some((ptr.into(), form)),
            not_found_group: "autoscaling".into(),
        }
    }

    #[test]
    fn scale_view_of_an_object() {
        let obj = json!({"metadata": {"name": "web", "namespace": "d", "uid": "u",
            "resourceVersion": "7", "creationTimestamp": "2024-01-01T00:00:00Z",
            "labels": {"x": "y"}},
            "spec": {"replicas": 3, "selector": {"b": "2", "a": "1"}},
            "status": {"replicas": 2}});
        let s = scale_of(&paths(SelectorForm::Map, "/spec/selector"), &obj);
        assert_eq!(
            s,
            json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": "web", "namespace": "d", "uid": "u", "resourceVersion": "7",
                    "creationTimestamp": "2024-01-01T00:00:00Z"},
                "spec": {"replicas": 3}, "status": {"replicas": 2, "selector": "a=1,b=2"}})
        );
        let zero = json!({"metadata": {"name": "z"}, "spec": {"replicas": 0}});
        let s = scale_of(&paths(SelectorForm::Map, "/spec/selector"), &zero);
        assert_eq!(s["spec"], json!({}));
        assert_eq!(s["status"], json!({"replicas": 0}));
    }

    #[test]
    fn label_selectors_print_as_upstream() {
        let obj = json!({"spec": {"selector": {"matchLabels": {"app": "w"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]},
                {"key": "env", "operator": "DoesNotExist"}]}}});
        assert_eq!(
            selector_string(&obj, &paths(SelectorForm::LabelSelector, "/spec/selector")),
            "app=w,!env,tier in (a,b)"
        );
        let crd = json!({"status": {"sel": "a=b"}});
        assert_eq!(
            selector_string(&crd, &paths(SelectorForm::String, "/status/sel")),
            "a=b"
        );
    }

    #[test]
    fn negative_replicas_are_invalid_as_upstream_words_it() {
        let e = validate_scale(&json!({"metadata": {"name": "web"}, "spec": {"replicas": -1}}))
            .unwrap_err();
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            "Scale.autoscaling \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(
            validate_scale(&json!({"metadata": {"name": "w"}, "spec": {}})).ok(),
            Some(0)
        );
    }

    #[test]
    fn only_autoscaling_v1_scale_bodies() {
        let mut ok = json!({"metadata": {"name": "w"}});
        assert!(check_type(&mut ok).is_ok());
        assert_eq!(ok["apiVersion"], API_VERSION);
        let mut bad = json!({"apiVersion": "v1", "kind": "ReplicationController"});
        assert!(check_type(&mut bad).is_err());
    }

    #[test]
    fn a_scale_round_trips_through_protobuf() {
        let obj = json!({"metadata": {"name": "web", "namespace": "d", "uid": "u",
            "resourceVersion": "7", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"replicas": 3, "selector": {"a": "1"}}, "status": {"replicas": 0}});
        let s = scale_of(&paths(SelectorForm::Map, "/spec/selector"), &obj);
        let bytes = super::super::protobuf::encode_object(&s).expect("encode Scale");
        let back = super::super::protobuf::decode_body(&bytes).expect("decode Scale");
        assert_eq!(back, s);
    }
}
