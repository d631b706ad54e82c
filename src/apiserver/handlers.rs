//! Resource handlers: get, list, watch, create, update, patch, delete, deletecollection
//! and the `status`/`binding` subresources, with upstream's semantics (server-owned
//! fields, optimistic concurrency, graceful deletion, finalizers, namespace lifecycle).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{Map, Value, json};

use super::crd::conversion;
use super::kinds::{Kind, ResourceDef, Strategy};
use super::selectors::{FieldSelector, LabelSelector};
use super::status::{self, ApiError};
use super::{
    ApiServer, Body, Ctx, admission, apply, defaults, deletion, kinds, read_body, validation, watch,
};
use crate::store::StoreError;

// Deletion lives in its own module; eviction and the namespace cleanup reach it here.
pub(crate) use super::deletion::DeleteOpts;

/// Errors inside store closures: either the store's or a handler's own.
enum Fail {
    Store(StoreError),
    Api(ApiError),
    /// The object changed since it was read: compute the write again.
    Stale,
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl From<ApiError> for Fail {
    fn from(e: ApiError) -> Self {
        Fail::Api(e)
    }
}

impl Fail {
    fn into_api(self, res: &ResourceDef, name: &str) -> ApiError {
        match self {
            Fail::Store(e) => ApiError::from_store(res, name, e),
            Fail::Api(e) => e,
            Fail::Stale => ApiError::conflict(res, name),
        }
    }
}

/// Entry point for every resource path.
pub async fn resource(
    srv: &Arc<ApiServer>,
    ctx: &Ctx,
    req: Request<Incoming>,
    kind: Kind,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
) -> Result<Response<Body>, ApiError> {
    let res: &dyn Strategy = &*kind;
    let ns = namespace.as_deref();
    if let Some(sub) = sub.as_deref() {
        let name = name.as_deref().unwrap_or("");
        if res.def().find_subresource(sub).is_none() {
            return Err(ApiError::path_not_found());
        }
        return subresource(srv, ctx, req, res, ns, name, sub).await;
    }
    if let Some(objects) = res.live_objects(&srv.store) {
        return super::live::serve(ctx, res, name.as_deref(), objects);
    }
    check_write_options(ctx)?;
    match (&ctx.method, name.as_deref()) {
        (&Method::GET, None) => {
            if is_true(ctx.q("watch")) {
                watch::serve(srv, ctx, kind.clone(), ns).await
            } else {
                list(srv, ctx, res, ns).await
            }
        }
        (&Method::GET, Some(n)) => get(srv, ctx, res, ns, n).await,
        (&Method::POST, None) => {
            let body = read_body(req).await?;
            create(srv, ctx, res, ns, &body).await
        }
        (&Method::PUT, Some(n)) => {
            let body = read_body(req).await?;
            update(srv, ctx, res, ns, n, &body, None).await
        }
        (&Method::PATCH, Some(n)) => {
            let body = read_body(req).await?;
            patch(srv, ctx, res, ns, n, &body, None).await
        }
        (&Method::DELETE, Some(n)) => {
            let body = read_body(req).await?;
            deletion::delete(srv, ctx, res, ns, n, &body).await
        }
        (&Method::DELETE, None) => {
            let body = read_body(req).await?;
            deletion::delete_collection(srv, ctx, res, ns, &body).await
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({})",
            ctx.method
        ))),
    }
}

async fn subresource(
    srv: &Arc<ApiServer>,
    ctx: &Ctx,
    req: Request<Incoming>,
    res: &dyn Strategy,
    ns: Option<&str>,
    name: &str,
    sub: &str,
) -> Result<Response<Body>, ApiError> {
    // Subresources that are views of the object itself (`status`, `finalize`,
    // `ephemeralcontainers`, ...): read and written through the kind's strategy.
    let writable = res.writable_subresources().contains(&sub);
    if writable || sub == "binding" {
        check_write_options(ctx)?;
    }
    let allows = |verb: &str| {
        res.def()
            .find_subresource(sub)
            .is_some_and(|s| s.verbs.iter().any(|v| v == verb))
    };
    match (sub, &ctx.method) {
        (_, &Method::GET) if writable && allows("get") => get(srv, ctx, res, ns, name).await,
        (_, &Method::PUT) if writable && allows("update") => {
            let body = read_body(req).await?;
            update(srv, ctx, res, ns, name, &body, Some(sub)).await
        }
        (_, &Method::PATCH) if writable && allows("patch") => {
            let body = read_body(req).await?;
            patch(srv, ctx, res, ns, name, &body, Some(sub)).await
        }
        ("scale", _) if res.scale().is_some() => {
            super::scale::serve(srv, ctx, req, res, ns, name).await
        }
        ("binding", &Method::POST) => {
            let body = read_body(req).await?;
            bind(srv, ctx, res, ns.unwrap_or(""), name, &body).await
        }
        ("log", &Method::GET) => pod_log(srv, res, ns.unwrap_or(""), name, ctx).await,
        ("token", &Method::POST) if allows("create") => {
            let body = read_body(req).await?;
            let obj = decode_body(ctx, &body)?;
            admission::noderestriction::check_token_request(
                srv,
                &ctx.user,
                ns.unwrap_or(""),
                name,
                &obj,
            )?;
            let reply = super::kinds::authentication::tokenrequest::create(
                srv,
                ns.unwrap_or(""),
                name,
                obj,
            )
            .await?;
            Ok(super::negotiate::object_response(
                ctx,
                StatusCode::CREATED,
                &reply,
                &[],
            ))
        }
        ("eviction", &Method::POST) => {
            let body = read_body(req).await?;
            super::eviction::evict(srv, ctx, res, ns.unwrap_or(""), name, &body).await
        }
        ("proxy", _) => super::proxy::serve(srv, ctx, req, res, ns, name).await,
        ("exec" | "attach" | "portforward", _) => {
            super::streaming::connect(srv, req, res.def(), ns.unwrap_or(""), name, sub).await
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({} {})",
            ctx.method, sub
        ))),
    }
}

/// The list/watch query parameters upstream decodes into `ListOptions` as integers. A
/// value that is not one is refused with 400 BadRequest, as upstream's parameter codec
/// does (with Go's `strconv.ParseInt` message); a present value is otherwise taken as is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListParams {
    /// `timeoutSeconds` (watch): 0 means the server's default, a negative value a watch
    /// that ends at once.
    pub timeout_seconds: Option<i64>,
    /// `limit`: 0 or negative means no limit.
    pub limit: Option<i64>,
}

impl ListParams {
    /// Parses the parameters of `ctx`.
    pub fn from_ctx(ctx: &Ctx) -> Result<Self, ApiError> {
        Ok(ListParams {
            timeout_seconds: int64_param(ctx, "timeoutSeconds")?,
            limit: int64_param(ctx, "limit")?,
        })
    }
}

/// The first value of `name` as an int64 (upstream decodes the first of repeated values).
fn int64_param(ctx: &Ctx, name: &str) -> Result<Option<i64>, ApiError> {
    let Some((_, v)) = ctx.multi.iter().find(|(k, _)| k == name) else {
        return Ok(None);
    };
    v.parse::<i64>().map(Some).map_err(|e| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        ApiError::bad_request(format!(
            "strconv.ParseInt: parsing {}: {why}",
            status::go_quote(v)
        ))
    })
}

/// Checks `resourceVersionMatch`, `sendInitialEvents` and `continue` of a list or watch
/// as upstream's `ValidateListOptions` does: 422 Invalid `ListOptions.meta.k8s.io`.
pub fn check_list_options(ctx: &Ctx, watch: bool) -> Result<(), ApiError> {
    let forbidden = |why: &str| validation::forbidden("resourceVersionMatch", why);
    let rv = ctx.q("resourceVersion").unwrap_or("");
    let cont = ctx.q("continue").unwrap_or("");
    let initial = ctx.q("sendInitialEvents");
    let mut causes = Vec::new();
    match ctx.q("resourceVersionMatch").unwrap_or("") {
        _ if watch => {
            let m = ctx.q("resourceVersionMatch").unwrap_or("");
            if initial.is_some() && m != "NotOlderThan" {
                causes.push(forbidden(
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                ));
            }
            if !m.is_empty() {
                if initial.is_none() {
                    causes.push(forbidden(
                        "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                    ));
                }
                if m != "NotOlderThan" {
                    causes.push(validation::not_supported(
                        "resourceVersionMatch",
                        m,
                        &["NotOlderThan"],
                    ));
                }
                if !cont.is_empty() {
                    causes.push(forbidden(
                        "resourceVersionMatch is forbidden when continue is provided",
                    ));
                }
            }
        }
        "" => {}
        m => {
            if rv.is_empty() {
                causes.push(forbidden(
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            if !cont.is_empty() {
                causes.push(forbidden(
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
            if m != "Exact" && m != "NotOlderThan" {
                causes.push(validation::not_supported(
                    "resourceVersionMatch",
                    m,
                    &["Exact", "NotOlderThan", ""],
                ));
            }
            if m == "Exact" && rv == "0" {
                causes.push(forbidden(
                    "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
        }
    }
    if !watch && initial.is_some() {
        causes.push(validation::forbidden(
            "sendInitialEvents",
            "sendInitialEvents is forbidden for list",
        ));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid_options("ListOptions", &causes))
    }
}

/// Checks `dryRun` and `fieldValidation` of a write the way upstream validates its
/// Create/Update/Patch/DeleteOptions: anything but the known values is 422 Invalid.
pub(crate) fn check_write_options(ctx: &Ctx) -> Result<(), ApiError> {
    let kind = match ctx.method {
        Method::POST => "CreateOptions",
        Method::PUT => "UpdateOptions",
        Method::PATCH => "PatchOptions",
        Method::DELETE => "DeleteOptions",
        _ => return Ok(()),
    };
    let dry: Vec<&str> = ctx
        .multi
        .iter()
        .filter(|(k, _)| k == "dryRun")
        .map(|(_, v)| v.as_str())
        .collect();
    let mut causes = Vec::new();
    causes.extend(dry_run_cause(&dry));
    if kind != "DeleteOptions"
        && let Some((_, mode)) = ctx.multi.iter().find(|(k, _)| k == "fieldValidation")
        && !["", "Ignore", "Warn", "Strict"].contains(&mode.as_str())
    {
        causes.push(validation::Cause {
            reason: "FieldValueNotSupported".into(),
            message: format!(
                "Unsupported value: {}: supported values: \"\", \"Ignore\", \"Strict\", \"Warn\"",
                status::go_quote(mode)
            ),
            field: "fieldValidation".into(),
        });
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid_options(kind, &causes))
    }
}

/// The cause for `dryRun` values other than `All` (upstream prints the Go slice).
pub(crate) fn dry_run_cause(values: &[&str]) -> Option<validation::Cause> {
    if values.iter().all(|v| *v == "All") {
        return None;
    }
    let list: Vec<String> = values.iter().map(|v| status::go_quote(v)).collect();
    Some(validation::Cause {
        reason: "FieldValueNotSupported".into(),
        message: format!(
            "Unsupported value: []string{{{}}}: supported values: \"All\"",
            list.join(", ")
        ),
        field: "dryRun".into(),
    })
}

fn is_true(v: Option<&str>) -> bool {
    matches!(v, Some("true" | "1"))
}

/// The objects a list or watch returns, with their parsed selectors.
pub struct Filter {
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
}

impl Filter {
    /// Parses and checks `labelSelector` and `fieldSelector`.
    pub fn from_ctx(ctx: &Ctx, res: &dyn Strategy) -> Result<Self, ApiError> {
        let labels = LabelSelector::parse(ctx.q("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let fields = FieldSelector::parse(ctx.q("fieldSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let supported = kinds::supported_fields(res);
        fields
            .check_supported(&supported)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(Filter { labels, fields })
    }

    /// Whether a (view) object of `res` passes both selectors.
    pub fn matches(&self, res: &dyn Strategy, obj: &Value) -> bool {
        self.labels.matches_object(obj) && self.fields.matches_with(|f| res.field_value(obj, f))
    }
}

async fn get(
    srv: &Arc<ApiServer>,
    ctx: &Ctx,
    res: &dyn Strategy,
    ns: Option<&str>,
    name: &str,
) -> Result<Response<Body>, ApiError> {
    let obj = srv
        .store
        .get_shared(&res.def().key(ns, name))
        .ok_or_else(|| ApiError::not_found(res.def(), name))?;
    let view = conversion::from_store(srv, res, view_of(res, obj)).await?;
    if ctx.wants_table() {
        let rv = view["metadata"]["resourceVersion"].clone();
        return Ok(super::negotiate::object_response(
            ctx,
            StatusCode::OK,
            &make_table(res, &[view], ctx, Some(rv), None, true),
            &[],
        ));
    }
    Ok(super::negotiate::object_response(
        ctx,
        StatusCode::OK,
        &view,
        &[],
    ))
}

/// Builds a `meta.k8s.io/v1 Table` for `items`.
pub fn make_table<T: std::borrow::Borrow<Value>>(
    res: &dyn Strategy,
    items: &[T],
    ctx: &Ctx,
    rv: Option<Value>,
    cont: Option<String>,
    with_columns: bool,
) -> Value {
    let now = jiff::Timestamp::now();
    let include = ctx.q("includeObject").unwrap_or("Metadata");
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let o: &Value = o.borrow();
            let mut row = json!({
                "cells": res.cells(o, now),
            });
            let conds = res.row_conditions(o);
            if !conds.is_empty() {
                row["conditions"] = json!(conds);
            }
            match include {
                "None" => {}
                "Object" => row["object"] = o.clone(),
                _ => {
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": o.get("metadata").cloned().unwrap_or(json!({})),
                    })
                }
            }
            row
        })
        .collect();
    let mut meta = Map::new();
    if let Some(rv) = rv {
        meta.insert("resourceVersion".into(), rv);
    }
    if let Some(c) = cont {
        meta.insert("continue".into(), json!(c));
    }
    let mut t = json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "rows": rows,
    });
    t["columnDefinitions"] = if with_columns {
        json!(res.columns())
    } else {
        json!([])
    };
    t
}

/// The `<namespace>/<name>` an object is ordered by in lists and continue tokens.
fn list_key(obj: &Value) -> String {
    let m = &obj["metadata"];
    format!(
        "{}/{}",
        m["namespace"].as_str().unwrap_or(""),
        m["name"].as_str().unwrap_or("")
    )
}

/// What a read answers for a stored object: the object itself, shared, when the kind's
/// view is its stored form; else its view.
fn view_of(res: &dyn Strategy, stored: Arc<Value>) -> Arc<Value> {
    if res.stored_is_view() {
        stored
    } else {
        Arc::new(res.to_view(&stored))
    }
}

/// Listed views by [`list_key`], shared with the store, and the revision of the list.
pub type Listed = (Vec<(String, Arc<Value>)>, u64);

/// The views of the objects under `ns` (or all namespaces) that pass the request's
/// selectors, by [`list_key`], shared with the store (nothing is copied).
pub fn list_views(
    srv: &ApiServer,
    res: &dyn Strategy,
    ns: Option<&str>,
    filter: &Filter,
) -> Listed {
    let prefix = res.def().prefix(ns);
    let (items, rv) = srv.store.list_shared(&prefix);
    let mut out = Vec::with_capacity(items.len());
    for obj in items {
        let view = view_of(res, obj);
        if filter.matches(res, &view) {
            out.push((list_key(&view), view));
        }
    }
    // Scans are key-ordered; sort anyway so continue tokens are stable (cheap when
    // sorted already).
    out.sort_by(|a, b| a.0.cmp(&b.0));
    (out, rv)
}

/// Lists the objects under `ns` (or all namespaces) that pass the request's selectors,
/// as copies the caller may change.
pub fn list_matching(
    srv: &ApiServer,
    res: &dyn Strategy,
    ns: Option<&str>,
    filter: &Filter,
) -> Result<(Vec<(String, Value)>, u64), ApiError> {
    let (items, rv) = list_views(srv, res, ns, filter);
    let items = items
        .into_iter()
        .map(|(k, v)| (k, Arc::unwrap_or_clone(v)))
        .collect();
    Ok((items, rv))
}

/// Lists the objects under `ns` as they were at revision `at` (`resourceVersionMatch=
/// Exact`): the current state with the changes after `at` undone from the watch window's
/// record of each event's previous state. Older than the window: 410 Expired, as upstream
/// answers for a compacted revision.
pub fn list_at(
    srv: &ApiServer,
    res: &dyn Strategy,
    ns: Option<&str>,
    filter: &Filter,
    at: u64,
) -> Result<Listed, ApiError> {
    let prefix = res.def().prefix(ns);
    let (items, now) = srv.store.list_shared(&prefix);
    let too_old =
        || ApiError::expired("The resourceVersion for the provided list is too old.".to_string());
    let mut cursor = srv.store.watch(&prefix, at).map_err(|_| too_old())?;
    let mut state: std::collections::BTreeMap<String, Arc<Value>> =
        items.into_iter().map(|o| (list_key(&o), o)).collect();
    let mut later = Vec::new();
    while cursor.revision() < now {
        let batch = srv.store.next_events(&mut cursor).map_err(|_| too_old())?;
        if batch.is_empty() {
            break;
        }
        later.extend(batch.into_iter().filter(|e| e.revision <= now));
    }
    for ev in later.iter().rev() {
        let current = ev.object().map_err(|e| ApiError::internal(e.to_string()))?;
        let key = list_key(&current);
        match ev
            .previous()
            .map_err(|e| ApiError::internal(e.to_string()))?
        {
            Some(prev) => {
                state.insert(key, Arc::new(prev));
            }
            None => {
                state.remove(&key);
            }
        }
    }
    let out = state
        .into_iter()
        .map(|(k, o)| (k, view_of(res, o)))
        .filter(|(_, v)| filter.matches(res, v))
        .collect();
    Ok((out, at))
}

/// How long a read waits for the store to reach a requested resourceVersion before it
/// fails with "Too large resource version" (upstream's watch cache blocks for 3 s).
pub const FRESHNESS_WAIT: Duration = Duration::from_secs(3);

/// Waits until the store has reached `rv` (a read "not older than" it), or fails after
/// [`FRESHNESS_WAIT`] with upstream's 504 Timeout and `ResourceVersionTooLarge` cause.
pub async fn wait_until_fresh(srv: &ApiServer, rv: u64) -> Result<(), ApiError> {
    let current = srv.store.wait_for_revision(rv, FRESHNESS_WAIT).await;
    if current >= rv {
        Ok(())
    } else {
        Err(ApiError::too_large_resource_version(rv, current))
    }
}

async fn list(
    srv: &Arc<ApiServer>,
    ctx: &Ctx,
    res: &dyn Strategy,
    ns: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    check_list_options(ctx, false)?;
    let params = ListParams::from_ctx(ctx)?;
    let filter = Filter::from_ctx(ctx, res)?;
    let continuing = ctx.q("continue").is_some_and(|s| !s.is_empty());
    let exact = ctx.q("resourceVersionMatch") == Some("Exact");
    let asked_rv = ctx
        .q("resourceVersion")
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {v}")))
        })
        .transpose()?;
    if !continuing && let Some(rv) = asked_rv.filter(|rv| *rv > 0) {
        wait_until_fresh(srv, rv).await?;
    }
    let token = match ctx.q("continue").filter(|s| !s.is_empty()) {
        Some(tok) => {
            let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(tok)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .ok_or_else(|| {
                    ApiError::bad_request("continue key is not valid: malformed token")
                })?;
            let start = decoded["start"].as_str().unwrap_or("").to_string();
            Some((start, decoded["rv"].as_u64()))
        }
        None => None,
    };
    let (mut items, rv) = match (asked_rv, &token) {
        (Some(at), None) if exact => list_at(srv, res, ns, &filter, at)?,
        // A next page is the list as it was at the first page's version, as upstream
        // serves it; past the watch window, the current state.
        (_, Some((_, Some(at)))) => match list_at(srv, res, ns, &filter, *at) {
            Ok(listed) => listed,
            Err(_) => list_views(srv, res, ns, &filter),
        },
        _ => list_views(srv, res, ns, &filter),
    };
    let mut rv_out = rv;
    if let Some((start, at)) = &token {
        rv_out = at.unwrap_or(rv);
        items.retain(|(k, _)| k > start);
    }
    let limit = params
        .limit
        .filter(|l| *l > 0)
        .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    let mut cont = None;
    let mut remaining = None;
    if items.len() > limit {
        let rest = items.len() - limit;
        items.truncate(limit);
        let last = items.last().map(|(k, _)| k.clone()).unwrap_or_default();
        let tok = serde_json::to_vec(&json!({"start": last, "rv": rv_out})).unwrap_or_default();
        cont = Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tok));
        remaining = Some(rest);
    }
    let mut items: Vec<Arc<Value>> = items.into_iter().map(|(_, v)| v).collect();
    let metadata_only = super::negotiate::wants_metadata(ctx);
    if !metadata_only {
        // Metadata does not change with the version: metadata-only lists (the garbage
        // collector's) need no conversion.
        items = conversion::from_store_all(srv, res, items).await?;
    }
    if ctx.wants_table() {
        return Ok(super::negotiate::object_response(
            ctx,
            StatusCode::OK,
            &make_table(
                res,
                &items,
                ctx,
                Some(json!(rv_out.to_string())),
                cont,
                true,
            ),
            &[],
        ));
    }
    let mut meta = json!({"resourceVersion": rv_out.to_string()});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    if let Some(r) = remaining {
        meta["remainingItemCount"] = json!(r);
    }
    if metadata_only {
        // Metadata-only informers (the garbage collector's) ask for this.
        let head = json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": meta,
        });
        let parts: Vec<Value> = items
            .iter()
            .map(|o| super::negotiate::partial_metadata(o))
            .collect();
        return Ok(super::negotiate::list_response(ctx, &head, &parts));
    }
    let head = json!({
        "kind": format!("{}List", res.def().kind),
        "apiVersion": res.def().api_version(),
        "metadata": meta,
    });
    Ok(super::negotiate::list_response(ctx, &head, &items))
}

/// Decodes a request body by Content-Type: JSON, YAML or Kubernetes protobuf.
pub fn decode_body(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let ct = ctx.header("content-type");
    let media = ct.split(';').next().unwrap_or("").trim();
    match media {
        "application/json" | "" => serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        }),
        "application/yaml" | "application/apply-patch+yaml" => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::bad_request("the body is not valid UTF-8"))?;
            serde_saphyr::from_str::<Value>(text)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
        }
        "application/vnd.kubernetes.protobuf" => super::protobuf::decode_body(body).map_err(|e| {
            if e.is_unsupported_media_type() {
                ApiError::unsupported_media_type(&format!("{ct} ({e})"))
            } else {
                ApiError::bad_request(format!("error decoding protobuf body: {e}"))
            }
        }),
        _ => Err(ApiError::unsupported_media_type(ct)),
    }
}

/// Checks apiVersion/kind of a body against the resource, filling them when absent.
fn check_type(res: &dyn Strategy, obj: &mut Value) -> Result<(), ApiError> {
    let Some(map) = obj.as_object_mut() else {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    };
    let want = res.def().api_version();
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("apiVersion".into(), json!(want));
        }
        Some(v) if v != want => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({want})"
            )));
        }
        _ => {}
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".into(), json!(res.def().kind));
        }
        Some(k) if k != res.def().kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                res.def().kind
            )));
        }
        _ => {}
    }
    Ok(())
}

/// Typed round trip + `fieldValidation` handling. Returns the normalised object and the
/// warnings to send.
fn admit(
    ctx: &Ctx,
    res: &dyn Strategy,
    obj: Value,
    name_hint: &str,
) -> Result<(Value, Vec<String>), ApiError> {
    let (norm, unknown) = res.normalize(obj).map_err(|e| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {}",
            res.def().kind,
            res.def().version,
            res.def().kind,
            e
        ))
    })?;
    let mode = ctx.q("fieldValidation").unwrap_or("Warn");
    let mut warnings = Vec::new();
    if !unknown.is_empty() {
        match mode {
            "Strict" => {
                let list: Vec<String> = unknown
                    .iter()
                    .map(|f| format!("unknown field \"{f}\""))
                    .collect();
                let _ = name_hint;
                return Err(ApiError::bad_request(format!(
                    "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                    res.def().kind,
                    res.def().version,
                    res.def().kind,
                    list.join(", ")
                )));
            }
            "Ignore" => {}
            _ => warnings.extend(unknown.iter().map(|f| format!("unknown field \"{f}\""))),
        }
    }
    Ok((norm, warnings))
}

fn namespace_check(
    srv: &ApiServer,
    ns: &str,
    res: &ResourceDef,
    name: &str,
) -> Result<(), ApiError> {
    let snap = srv.registry.snapshot();
    let nsdef = snap
        .find("", "v1", "namespaces")
        .ok_or_else(|| ApiError::internal("no namespaces"))?
        .def();
    let obj = srv
        .store
        .get(&nsdef.key(None, ns))
        .map_err(|e| ApiError::from_store(nsdef, ns, e))?
        .ok_or_else(|| ApiError::namespace_not_found(ns))?;
    if obj["metadata"]["deletionTimestamp"].is_string() {
        // Upstream's NamespaceLifecycle admission: a Forbidden about the object, with
        // a NamespaceTerminating cause.
        let mut e = ApiError::forbidden(format!(
            "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
            res.qualified()
        ));
        e.details = Some(
            json!({"name": name, "group": res.group, "kind": res.plural, "causes": [{
                "reason": "NamespaceTerminating",
                "message": format!("namespace {ns} is being terminated"),
                "field": "metadata.namespace",
            }]}),
        );
        return Err(e);
    }
    Ok(())
}

/// Whether the request is a server-side apply.
fn is_apply(ctx: &Ctx) -> bool {
    ctx.header("content-type")
        .starts_with("application/apply-patch")
}

/// The Status of a failed apply (409 with `FieldManagerConflict` causes for conflicts).
fn apply_err(e: apply::ApplyError) -> ApiError {
    let mut out = ApiError {
        code: e.status_code(),
        reason: e.reason(),
        message: e.message(),
        details: None,
    };
    if e.status_code() == 409 {
        out.details = Some(json!({"causes": e.causes()}));
    }
    out
}

/// The managed-fields target of a write of `res` (main resource or `status`).
fn apply_target<'a>(
    schema: &'a apply::schema::KindSchema,
    api_version: &'a str,
    sub: Option<&'a str>,
    now: &'a str,
) -> apply::Target<'a> {
    apply::Target {
        schema,
        api_version,
        subresource: sub.unwrap_or(""),
        now,
    }
}

/// Records the fields a non-apply write changed as owned by its manager
/// (`fieldManager`, else the client's User-Agent), as upstream's field manager does.
fn track(ctx: &Ctx, res: &dyn Strategy, old: Option<&Value>, new: &mut Value, sub: Option<&str>) {
    let schema = res.field_schema();
    let av = res.def().api_version();
    let now = defaults::now_rfc3339();
    let target = apply_target(&schema, &av, sub, &now);
    let manager = apply::manager_or_user_agent(ctx.q("fieldManager"), ctx.header("user-agent"));
    apply::track_update(old, new, &manager, &target);
}

pub(crate) fn dry_run(ctx: &Ctx) -> bool {
    ctx.multi.iter().any(|(k, v)| k == "dryRun" && v == "All")
}

/// Creates an object (POST on a collection), as `kubectl create/run/apply` do.
pub async fn create(
    srv: &Arc<ApiServer>,
    ctx: &Ctx,
    res: &dyn Strategy,
    ns: Option<&str>,
    body: &[u8],
) -> Result<Response<Body>, ApiError> {
    let mut obj = decode_body(ctx, body)?;
    check_type(res, &mut obj)?;
    if let Some(answer) = res.review(srv, &ctx.user, ns, obj.clone()) {
        let reply = answer.await?;
        return Ok(super::negotiate::object_response(
            ctx,
            StatusCode::CREATED,
            &reply,
            &[],
        ));
    }
    create_object(srv, ctx, res, ns, &mut obj).await
}

async fn create_object(
    srv: &Arc<ApiServer>,
    ctx: &Ctx,
    res: &dyn Strategy,
    ns: Option<&str>,
    obj: &mut Value,
) -> Result<Response<Body>, ApiError> {
    check_type(res, obj)?;
    if let Some(why) = res.creates_refused(&srv.store) {
        return Err(ApiError::method_not_allowed(why)
            .with_details(json!({"group": res.def().group, "kind": res.def().plural})));
    }
    if res.def().namespaced && ns.is_none() {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource: namespaced objects are created in a namespace",
        ));
    }
    let name_hint = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    let (mut obj, mut warnings) = admit(ctx, res, obj.take(), &name_hint)?;
    obj = res.to_storage(obj);
    let meta = obj["metadata"]
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
    if res.def().namespaced {
        let ns = ns.unwrap_or("default");
        match meta.get("namespace").and_then(Value::as_str) {
            Some(n) if !n.is_empty() && n != ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {
                meta.insert("namespace".into(), json!(ns));
            }
        }
    } else {
        meta.remove("namespace");
    }
    let generate = meta
        .get("generateName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut name = meta
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if name.is_empty() && !generate.is_empty() {
        name = defaults::generate_name(&generate);
        meta.insert("name".into(), json!(name));
    }
    if name.is_empty() {
        return Err(ApiError::invalid(
            res.def(),
            "",
            &[validation::Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value: name or generateName is required".into(),
                field: "metadata.name".into(),
            }],
        ));
    }
    let given_fields = obj["metadata"].get("managedFields").cloned();
    defaults::init_metadata(&mut obj);
    res.prepare_for_create(&mut obj);
    match given_fields {
        // An apply that creates: its managed fields were computed by `apply`.
        Some(mf) if is_apply(ctx) => obj["metadata"]["managedFields"] = mf,
        _ => track(ctx, res, None, &mut obj, None),
    }
    let req = admission::Request {
        operation: admission::Operation::Create,
        kind: res,
        namespace: ns,
        name: &name,
        subresource: None,
        old: None,
        user: &ctx.user,
        dry_run: dry_run(ctx),
        warnings: Default::default(),
    };
    // Upstream's NamespaceLifecycle is the first admission plugin.
    if res.def().namespaced {
        namespace_check(srv, ns.unwrap_or("default"), res.def(), &name)?;
    }
    let mut view = res.to_view(&obj);
    srv.admission.mutate(srv, &req, &mut view).await?;
    obj = res.to_storage(view);
    let mut causes: Vec<validation::Cause> = res
        .validate_name(&name)
        .into_iter()
        .map(|m| validation::Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: \"{name}\": {m}"),
            field: "metadata.name".into(),
        })
        .collect();
    if causes.is_empty() {
        let view = res.to_view(&obj);
        validation::validate_meta(&view, &mut causes);
        causes.extend(res.validate(&view));
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(res.def(), &name, &causes));
    }
    srv.admission
        .validate(srv, &req, &res.to_view(&obj))
        .await?;
    warnings.extend(req.take_warnings());
    if dry_run(ctx) {
        return Ok(super::negotiate::object_response(
            ctx,
            StatusCode::CREATED,
            &res.to_view(&obj),
            &warnings,
        ));
    }
    let key = res.def().key(ns, &name);
    let obj = conversion::to_store(srv, res, obj).await?;
    let stored = srv
        .store
        .create(&key, obj)
        .await
        .map_err(|e| ApiError::from_store(res.def(), &name, e))?;
    let stored = conversion::from_store(srv, res, Arc::new(stored)).await?;
    Ok(super::negotiate::object_response(
        ctx,
        StatusCode::CREATED,
        &res.to_view(&stored),
        &warnings,
    ))
}

/// Merges an incoming full object with the stored one for an update: server-owned
/// metadata is kept, the status (or, for status updates, everything but the status) is
/// kept, and the generation moves when the spec changes.
fn merge_for_update(
    res: &dyn Strategy,
    current: &Value,
    mut incoming: Value,
    sub: Option<&str>,
) -> Result<Value, ApiError> {
    let name = current["metadata"]["name"].as_str().unwrap_or("");
    if let Some(uid) = incoming["metadata"]["uid"].as_str() {
        let have = current["metadata"]["uid"].as_str().unwrap_or("");
        if !uid.is_empty() && uid != have {
            return Err(ApiError::conflict_msg(
                res.def(),
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {have}"
                ),
            ));
        }
    }
    if let Some(sub) = sub {
        return Ok(res.prepare_for_subresource_update(sub, current, &incoming));
    }
    {
        let meta = incoming["metadata"]
            .as_object_mut()
            .ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
        for k in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "namespace",
            "generation",
        ] {
            match current["metadata"].get(k) {
                Some(v) => {
                    meta.insert(k.into(), v.clone());
                }
                None => {
                    meta.remove(k);
                }
            }
        }
        // Finalizers may only be removed, not added, once deletion has started.
        if current["metadata"]["deletionTimestamp"].is_string() {
            let old: Vec<Value> = current["metadata"]["finalizers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if let Some(new) = meta.get("finalizers").and_then(Value::as_array)
                && new.iter().any(|f| !old.contains(f))
            {
                return Err(ApiError::invalid(
                        res.def(),
                        name,
                        &[validation::Cause {
                            reason: "FieldValueForbidden".into(),
                            message: "Forbidden: no new finalizers can be added if the object is being deleted".into(),
                            field: "metadata.finalizers".into(),
                        }],
                    ));
            }
        }
    }
    res.prepare_for_update(current, &mut incoming);
    let spec_changed = incoming.get("spec") != current.get("spec");
    if spec_changed {
        let g = current["metadata"]["generation"].as_i64().unwrap_or(1);
        incoming["metadata"]["generation"] = json!(g + 1);
    }
    Ok(incoming)
}

async fn update(
    srv: &Arc<ApiServer>,
    ctx: &Ctx,
    res: &dyn Strategy,
    ns: Option<&str>,
    name: &str,
    body: &[u8],
    sub: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let mut obj = decode_body(ctx, body)?;
    check_type(res, &mut obj)?;
    let body_name = obj["metadata"]["name"].as_str().unwrap_or("");
    if body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    if let (Some(ns), Some(bns)) = (ns, obj["metadata"]["namespace"].as_str())
        && !bns.is_empty()
        && bns != ns
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let (obj, mut warnings) = admit(ctx, res, obj, name)?;
    let obj = res.to_storage(obj);
    let written = write_update(srv, ctx, res, ns, name, |_| Ok(obj.clone()), sub).await?;
    warnings.extend(written.warnings);
    Ok(super::negotiate::object_response(
        ctx,
        StatusCode::OK,
        &res.to_view(&written.object),
        &warnings,
    ))
}

/// The checks of every update: metadata, an unchanged name, then the kind's rules.
fn validate_update(
    res: &dyn Strategy,
    old: &Value,
    new: &Value,
    sub: Option<&str>,
) -> Vec<validation::Cause> {
    let mut out = Vec::new();
    validation::validate_meta(new, &mut out);
    if old["metadata"]["name"] != new["metadata"]["name"] {
        out.push(validation::invalid(
            "metadata.name",
            new["metadata"]["name"].as_str().unwrap_or(""),
            "field is immutable",
        ));
    }
    match sub {
        Some(sub) => out.extend(res.validate_subresource_update(sub, old, new)),
        None => out.extend(res.validate_update(old, new)),
    }
    out
}

/// What an update wrote: the object (in the request's version) and the warnings
/// admission gave.
pub(crate) struct Written {
    pub object: Value,
    pub warnings: Vec<String>,
}

/// The common update path: `make` builds the incoming object from the current (view)
/// object; the result is merged, validated, admitted and stored. The write is guarded by
/// the resourceVersion it was computed from; when another write came in between, it is
/// computed again from the new state (a client's own resourceVersion still conflicts).
pub(crate) async fn write_update(
    srv: &Arc<ApiServer>,
    ctx: &Ctx,
    res: &dyn Strategy,
    ns: Option<&str>,
    name: &str,
    make: impl Fn(&Value) -> Result<Value, ApiError>,
    sub: Option<&str>,
) -> Result<Written, ApiError> {
    let key = res.def().key(ns, name);
    for _ in 0..8 {
        let current = srv
            .store
            .get_shared(&key)
            .ok_or_else(|| ApiError::not_found(res.def(), name))?;
        // In the request's version from here on; converted back just before the write.
        let current = Arc::unwrap_or_clone(conversion::from_store(srv, res, current).await?);
        let old_view = res.to_view(&current);
        let incoming = make(&old_view)?;
        let applied_fields = is_apply(ctx)
            .then(|| incoming["metadata"].get("managedFields").cloned())
            .flatten();
        let mut merged = merge_for_update(res, &current, incoming, sub)?;
        match applied_fields {
            Some(mf) => merged["metadata"]["managedFields"] = mf,
            None => track(ctx, res, Some(&current), &mut merged, sub),
        }
        let req = admission::Request {
            operation: admission::Operation::Update,
            kind: res,
            namespace: ns,
            name,
            subresource: sub,
            old: Some(&old_view),
            user: &ctx.user,
            dry_run: dry_run(ctx),
            warnings: Default::default(),
        };
        let mut view = res.to_view(&merged);
        srv.admission.mutate(srv, &req, &mut view).await?;
        // As upstream: the kind's rules see the object mutating admission produced.
        merged = res.to_storage(view);
        let view = res.to_view(&merged);
        let causes = validate_update(res, &old_view, &view, sub);
        if !causes.is_empty() {
            return Err(ApiError::invalid(res.def(), name, &causes));
        }
        srv.admission.validate(srv, &req, &view).await?;
        let warnings = req.take_warnings();
        if dry_run(ctx) {
            return Ok(Written {
                object: merged,
                warnings,
            });
        }
        let seen = current["metadata"]["resourceVersion"].clone();
        let merged = conversion::to_store(srv, res, merged).await?;
        if deletion::emptied_while_deleting(res, &merged) {
            // As upstream's store: an update that takes the last finalizer off an object
            // being deleted removes it instead, so nobody sees it held by nothing.
            let removed = srv
                .store
                .delete(&key, |now: &Value| -> Result<(), Fail> {
                    if now["metadata"]["resourceVersion"] != seen {
                        return Err(Fail::Stale);
                    }
                    Ok(())
                })
                .await;
            match removed {
                Ok(gone) => {
                    let gone = conversion::from_store(srv, res, Arc::new(gone)).await?;
                    srv.admission.deleted(srv, res, &res.to_view(&gone)).await;
                    let object = conversion::from_store(srv, res, Arc::new(merged)).await?;
                    return Ok(Written {
                        object: Arc::unwrap_or_clone(object),
                        warnings,
                    });
                }
                Err(Fail::Stale) => continue,
                Err(f) => return Err(f.into_api(res.def(), name)),
            }
        }
        let written = srv
            .store
            .update(&key, |now: Value| -> Result<Value, Fail> {
                if now["metadata"]["resourceVersion"] != seen {
                    return Err(Fail::Stale);
                }
                Ok(merged)
            })
            .await;
        match written {
            Ok(stored) => {
                let stored = conversion::from_store(srv, res, Arc::new(stored)).await?;
                return Ok(Written {
                    object: Arc::unwrap_or_clone(stored),
                    warnings,
                });
            }
            Err(Fail::Stale) => continue,
            Err(f) => return Err(f.into_api(res.def(), name)),
        }
    }
    Err(ApiError::conflict(res.def(), name))
}

async fn patch(
    srv: &Arc<ApiServer>,
    ctx: &Ctx,
    res: &dyn Strategy,
    ns: Option<&str>,
    name: &str,
    body: &[u8],
    sub: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let ct = ctx
        .header("content-type")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let patch_doc: Value = match ct.as_str() {
        "application/apply-patch+yaml" => decode_body(ctx, body)?,
        "application/json-patch+json"
        | "application/merge-patch+json"
        | "application/strategic-merge-patch+json" => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?,
        _ => return Err(ApiError::unsupported_media_type(&ct)),
    };
    let apply_causes = apply::validate_patch_options(
        ctx.q("fieldManager"),
        ct == "application/apply-patch+yaml",
        ctx.q("force").is_some(),
    );
    if !apply_causes.is_empty() {
        return Err(ApiError::invalid_options("PatchOptions", &apply_causes));
    }
    let schema = res.field_schema();
    let av = res.def().api_version();
    let now = defaults::now_rfc3339();
    let target = apply_target(&schema, &av, sub, &now);
    let force = ctx.q("force") == Some("true");
    let manager = ctx.q("fieldManager").unwrap_or("").to_string();
    let key = res.def().key(ns, name);
    let exists = srv
        .store
        .get(&key)
        .map_err(|e| ApiError::from_store(res.def(), name, e))?
        .is_some();
    if !exists {
        if ct == "application/apply-patch+yaml" && sub.is_none() {
            let mut obj =
                apply::apply(None, &patch_doc, &manager, force, &target).map_err(apply_err)?;
            apply::check_name(&obj, name, ns).map_err(apply_err)?;
            return create_object(srv, ctx, res, ns, &mut obj).await;
        }
        return Err(ApiError::not_found(res.def(), name));
    }
    let mut warnings = Vec::new();
    let mut last_err = None;
    for _ in 0..5 {
        let patch_doc = patch_doc.clone();
        let ct = ct.clone();
        let warn_slot = std::sync::Mutex::new(Vec::new());
        let r = write_update(
            srv,
            ctx,
            res,
            ns,
            name,
            |current| {
                let mut patched = if ct == "application/apply-patch+yaml" {
                    let o = apply::apply(Some(current), &patch_doc, &manager, force, &target)
                        .map_err(apply_err)?;
                    apply::check_name(&o, name, ns).map_err(apply_err)?;
                    o
                } else {
                    apply_patch(res, &ct, current, &patch_doc)?
                };
                check_type(res, &mut patched)?;
                let (norm, w) = admit(ctx, res, patched, name)?;
                if let Ok(mut s) = warn_slot.lock() {
                    *s = w;
                }
                Ok(res.to_storage(norm))
            },
            sub,
        )
        .await;
        match r {
            Ok(written) => {
                if let Ok(w) = warn_slot.lock() {
                    warnings.extend(w.iter().cloned());
                }
                warnings.extend(written.warnings);
                return Ok(super::negotiate::object_response(
                    ctx,
                    StatusCode::OK,
                    &res.to_view(&written.object),
                    &warnings,
                ));
            }
            Err(e)
                if e.reason == "Conflict" && patch_doc["metadata"]["resourceVersion"].is_null() =>
            {
                last_err = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| ApiError::conflict(res.def(), name)))
}

/// Applies a patch document of media type `ct` to `current`.
pub fn apply_patch(
    res: &dyn Strategy,
    ct: &str,
    current: &Value,
    patch_doc: &Value,
) -> Result<Value, ApiError> {
    let mut out = current.clone();
    match ct {
        "application/json-patch+json" => {
            let p: json_patch::Patch = serde_json::from_value(patch_doc.clone())
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            json_patch::patch(&mut out, &p).map_err(|e| {
                ApiError::invalid(
                    res.def(),
                    current["metadata"]["name"].as_str().unwrap_or(""),
                    &[validation::Cause {
                        reason: "FieldValueInvalid".into(),
                        message: format!(
                            "the server rejected our request due to an error in our request: {e}"
                        ),
                        field: String::new(),
                    }],
                )
            })?;
        }
        "application/merge-patch+json" => {
            if !patch_doc.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            json_patch::merge(&mut out, patch_doc);
        }
        "application/strategic-merge-patch+json" | "application/apply-patch+yaml" => {
            out = super::smp::strategic_merge_patch(res, current, patch_doc)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
        }
        other => return Err(ApiError::unsupported_media_type(other)),
    }
    Ok(out)
}

async fn bind(
    srv: &Arc<ApiServer>,
    ctx: &Ctx,
    res: &dyn Strategy,
    ns: &str,
    name: &str,
    body: &[u8],
) -> Result<Response<Body>, ApiError> {
    let binding = decode_body(ctx, body)?;
    let node = binding["target"]["name"].as_str().unwrap_or("").to_string();
    if node.is_empty() {
        return Err(ApiError::bad_request("binding target name is required"));
    }
    let now = defaults::now_rfc3339();
    srv.store
        .update(&res.def().key(Some(ns), name), |mut pod: Value| -> Result<Value, Fail> {
            if let Some(existing) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
                return Err(ApiError::conflict_msg(
                    res.def(),
                    name,
                    &format!("pod {name} is already assigned to node \"{existing}\""),
                )
                .into());
            }
            if pod["metadata"]["deletionTimestamp"].is_string() {
                return Err(ApiError::conflict_msg(res.def(), name, "pod is being deleted, cannot be assigned to a host").into());
            }
            pod["spec"]["nodeName"] = json!(node);
            let conds = pod["status"]
                .as_object_mut()
                .map(|s| s.entry("conditions").or_insert(json!([])));
            if let Some(Value::Array(c)) = conds {
                c.retain(|c| c["type"] != "PodScheduled");
                c.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}));
            }
            Ok(pod)
        })
        .await
        .map_err(|f| f.into_api(res.def(), name))?;
    Ok(super::negotiate::object_response(
        ctx,
        StatusCode::CREATED,
        &status::success(res.def(), name, None),
        &[],
    ))
}

async fn pod_log(
    srv: &Arc<ApiServer>,
    res: &dyn Strategy,
    ns: &str,
    name: &str,
    ctx: &Ctx,
) -> Result<Response<Body>, ApiError> {
    let pod = srv
        .store
        .get(&res.def().key(Some(ns), name))
        .map_err(|e| ApiError::from_store(res.def(), name, e))?
        .ok_or_else(|| ApiError::not_found(res.def(), name))?;
    let container = match ctx.q("container") {
        Some(c) => c.to_string(),
        None => pod["spec"]["containers"][0]["name"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    };
    let known = ["containers", "initContainers"].iter().any(|l| {
        pod["spec"][l]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["name"] == container.as_str()))
    });
    if !known {
        return Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {name}"
        )));
    }
    let status = ["containerStatuses", "initContainerStatuses"]
        .iter()
        .filter_map(|l| pod["status"][l].as_array())
        .flatten()
        .find(|c| c["name"] == container.as_str());
    let started = status.is_some_and(|c| {
        c["state"]["running"].is_object()
            || c["state"]["terminated"].is_object()
            || c["lastState"]["terminated"].is_object()
    });
    let node = pod["spec"]["nodeName"].as_str().unwrap_or("");
    if !started || node.is_empty() {
        let reason = status
            .and_then(|c| c["state"]["waiting"]["reason"].as_str())
            .unwrap_or("ContainerCreating")
            .to_string();
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
        )));
    }
    let query = {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for key in [
            "follow",
            "tailLines",
            "timestamps",
            "sinceSeconds",
            "sinceTime",
            "limitBytes",
            "previous",
        ] {
            if let Some(v) = ctx.q(key) {
                q.append_pair(key, v);
            }
        }
        q.finish()
    };
    let path = format!("/containerLogs/{ns}/{name}/{container}?{query}");
    super::kubelet_proxy::proxy_get(srv, node, &path).await
}
