//! Server-side apply and field ownership (`metadata.managedFields`), with upstream's
//! semantics (structured-merge-diff plus the apiserver's field manager layers): a pure
//! module over JSON objects; the handlers call it.
//!
//! - [`apply`] serves `PATCH` with `application/apply-patch+yaml`: merges the applied
//!   configuration into the live object by the kind's schema, records the applier's
//!   fields, removes fields the applier set before and no longer sets (unless another
//!   manager owns them), and fails with [`ApplyError::Conflicts`] (409, causes
//!   `FieldManagerConflict`) when it would change a field another manager owns, unless
//!   `force`.
//! - [`track_update`] records ownership for every other write (create, update, the
//!   other patch types): the writer owns what it changed, the others lose it.
//!
//! # Integration (handlers)
//!
//! Checked end to end in a scratch copy (never committed) where `tests/apply.rs`,
//! `tests/foundation.rs`, `tests/hardening_api.rs` and `tests/pods.rs` all pass.
//!
//! Per request build a [`Target`]: `schema: schema::for_kind(res.group, res.kind)`,
//! `api_version: &res.api_version()`, `subresource: ""` or `"status"` (`status_only`),
//! `now: &defaults::now_rfc3339()`.
//!
//! - **Patch options** (every patch type, right after decoding the body):
//!   [`validate_patch_options`]`(ctx.q("fieldManager"), is_apply, ctx.q("force").is_some())`;
//!   causes → `ApiError::invalid_options("PatchOptions", &causes)` (422
//!   `PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required
//!   for apply patch`). This replaces today's check, which names the resource's kind.
//! - **Apply on an existing object** (`patch`, inside the `write_update` closure): instead
//!   of `apply_patch(..)`, `apply::apply(Some(current), &patch_doc, field_manager, force,
//!   &target)` with `force = ctx.q("force") == Some("true")`, then
//!   [`check_name`]`(&result, name, ns)`; `check_type`/`admit`/`to_storage` as today.
//! - **Apply creating the object**: `apply::apply(None, ..)`, [`check_name`], and the
//!   result (not the raw patch) goes to `create_object`.
//! - Errors: `ApiError { code: e.status_code(), reason: e.reason(), message:
//!   e.message(), details }` with `details = {"causes": e.causes()}` for 409 only (as
//!   upstream: no name or kind there). `reason()` is `""` for the 500s, which kubectl
//!   prints as `Error from server: failed to create typed patch object ...`.
//! - **Create** (`create_object`): keep the body's `managedFields` across
//!   `init_metadata` (it drops them); after `apply_create_defaults`, for an apply
//!   create put them back unchanged, otherwise call `apply::track_update(None, &mut obj,
//!   &manager, &target)` with the body's managedFields in place (a create may set them).
//!   Upstream tracks before admission, so fields our create defaults add that upstream
//!   adds in admission (`tolerations`, `priority`, `serviceAccount`, ...) end up owned
//!   by the creator here; calling `track_update` between the decoding defaults and those
//!   would match exactly.
//! - **Update and non-apply patch** (`write_update`, both the dry-run and the store
//!   path): drop `"managedFields"` from the keys `merge_for_update` copies from the
//!   current object, and after it call `apply::track_update(Some(&current), &mut merged,
//!   &manager, &target)` unless the write is an apply (its result already has them).
//!   Client-sent managedFields then replace the tracked ones when they decode, `[]`
//!   clears them, anything invalid or absent keeps the stored ones.
//! - `manager` for non-apply writes: [`manager_or_user_agent`]`(ctx.q("fieldManager"),
//!   ctx.header("user-agent"))`.
//! - `events.k8s.io` Events are stored as core Events: track them in one form (the
//!   view form with the `events.k8s.io` schema, or storage form with the core schema),
//!   never a mix.

pub mod fieldpath;
pub mod managed;
pub mod schema;
mod schema_data;
pub mod typed;

use serde_json::{Map, Value, json};

use fieldpath::{FieldSet, Path};
use managed::{APPLY, Managed, ManagedFieldsError, UPDATE, VersionedSet};
use schema::KindSchema;
use typed::{Comparison, Typed, join_errors};

/// The annotation client-side `kubectl apply` keeps its last configuration in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The manager whose conflicts may be resolved from the last-applied annotation
/// (upgrading client-side to server-side apply).
const KUBECTL: &str = "kubectl";

/// The Update manager that takes ownership of everything on an object whose fields
/// were never tracked, when it is first applied to.
pub const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// The longest field manager name.
pub const FIELD_MANAGER_MAX_LENGTH: usize = 128;

/// The identifier fields of the current write are collected under before they are
/// merged into the writer's entry.
const CURRENT_OPERATION: &str = "current-operation";

/// What is being written.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The kind's schema ([`schema::for_kind`]).
    pub schema: &'a KindSchema,
    /// The group/version of the resource (`v1`, `apps/v1`).
    pub api_version: &'a str,
    /// `""` for the main resource, `"status"` for the status subresource.
    pub subresource: &'a str,
    /// The time recorded in changed entries (RFC 3339, seconds).
    pub now: &'a str,
}

impl Target<'_> {
    fn typed(&self) -> Typed<'_> {
        Typed {
            arena: &self.schema.arena,
            root: self.schema.root,
        }
    }

    fn ignored(&self) -> &FieldSet {
        self.schema.reset_fields(self.subresource)
    }

    /// `group/version, Kind=kind`, as upstream prints a GroupVersionKind.
    fn gvk(&self) -> String {
        gvk_string(self.api_version, &self.schema.kind)
    }
}

fn gvk_string(api_version: &str, kind: &str) -> String {
    let (g, v) = api_version.split_once('/').unwrap_or(("", api_version));
    format!("{g}/{v}, Kind={kind}")
}

/// One field another manager owns that the apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager's identifier ([`managed::manager_id`]).
    pub manager: String,
    /// The field.
    pub path: Path,
}

/// One cause of a 409 apply conflict (`details.causes` of the Status).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConflictCause {
    /// Always `FieldManagerConflict`.
    pub reason: &'static str,
    /// `conflict with "manager"`.
    pub message: String,
    /// The field (`.spec.replicas`).
    pub field: String,
}

/// Why an apply failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Fields owned by other managers would change (409 Conflict).
    #[error("{}", conflict_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The configuration is not an object (400).
    #[error("error decoding YAML: the apply configuration must be an object")]
    NotAnObject,
    /// The configuration's apiVersion/kind is not the resource's (400).
    #[error("invalid object type: {0}")]
    InvalidObjectType(String),
    /// The configuration carries managedFields (400).
    #[error("metadata.managedFields must be nil")]
    ManagedFieldsInConfig,
    /// The resulting object's name is not the URL's (400).
    #[error("the name of the object ({object}) does not match the name on the URL ({url})")]
    NameMismatch {
        /// In the object.
        object: String,
        /// On the URL.
        url: String,
    },
    /// The resulting object's namespace is not the request's (400).
    #[error(
        "the namespace of the object ({object}) does not match the namespace on the request ({url})"
    )]
    NamespaceMismatch {
        /// In the object.
        object: String,
        /// On the URL.
        url: String,
    },
    /// The configuration does not fit the kind's schema (upstream answers 500 with no
    /// reason: `Error from server: failed to create typed patch object ...`).
    #[error("failed to create typed patch object ({object}): {errors}")]
    TypedPatch {
        /// `namespace/name; group/version, Kind=kind`.
        object: String,
        /// The schema errors.
        errors: String,
    },
    /// The stored object does not fit the schema (500).
    #[error("failed to create typed live object ({object}): {errors}")]
    TypedLive {
        /// `namespace/name; gvk`.
        object: String,
        /// The schema errors.
        errors: String,
    },
    /// The stored managedFields do not decode (500).
    #[error("failed to decode managed fields: {0}")]
    LiveManagedFields(ManagedFieldsError),
}

fn conflict_message(c: &[Conflict]) -> String {
    if let [one] = c {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            managed::print_manager(&one.manager),
            one.path
        );
    }
    let mut by_manager: std::collections::BTreeMap<&str, Vec<&Path>> = Default::default();
    for x in c {
        by_manager.entry(&x.manager).or_default().push(&x.path);
    }
    let mut lines = Vec::new();
    for (m, paths) in by_manager {
        lines.push(format!("conflicts with {}:", managed::print_manager(m)));
        lines.extend(paths.iter().map(|p| format!("- {p}")));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        c.len(),
        lines.join("\n")
    )
}

impl ApplyError {
    /// The message of the Status.
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// The HTTP status code of the Status.
    pub fn status_code(&self) -> u16 {
        match self {
            ApplyError::Conflicts(_) => 409,
            ApplyError::NotAnObject
            | ApplyError::InvalidObjectType(_)
            | ApplyError::ManagedFieldsInConfig
            | ApplyError::NameMismatch { .. }
            | ApplyError::NamespaceMismatch { .. } => 400,
            ApplyError::TypedPatch { .. }
            | ApplyError::TypedLive { .. }
            | ApplyError::LiveManagedFields(_) => 500,
        }
    }

    /// The Status reason (`""` is upstream's StatusReasonUnknown).
    pub fn reason(&self) -> &'static str {
        match self.status_code() {
            409 => "Conflict",
            400 => "BadRequest",
            _ => "",
        }
    }

    /// `details.causes` of a conflict Status (empty otherwise).
    pub fn causes(&self) -> Vec<ConflictCause> {
        match self {
            ApplyError::Conflicts(c) => c
                .iter()
                .map(|x| ConflictCause {
                    reason: "FieldManagerConflict",
                    message: format!("conflict with {}", managed::print_manager(&x.manager)),
                    field: x.path.to_string(),
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Paths never owned by anyone (upstream's `stripMetaManager`).
fn strip_set() -> FieldSet {
    let mut paths = vec![
        Path::fields(&["apiVersion"]),
        Path::fields(&["kind"]),
        Path::fields(&["metadata"]),
    ];
    for f in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        paths.push(Path::fields(&["metadata", f]));
    }
    FieldSet::from_paths(&paths)
}

fn strip(m: &mut Managed, id: &str) {
    if let Some(vs) = m.fields.get_mut(id) {
        vs.set = vs.set.difference(&strip_set());
        if vs.set.is_empty() {
            m.fields.remove(id);
        }
    }
}

fn object_label(obj: &Value, t: &Target) -> String {
    let s = |k: &str| obj["metadata"][k].as_str().unwrap_or("").to_string();
    format!("{}/{}; {}", s("namespace"), s("name"), t.gvk())
}

fn without_managed_fields(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    v
}

fn set_managed_fields(obj: &mut Value, m: &Managed) {
    let Some(o) = obj.as_object_mut() else { return };
    let meta = o
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    match managed::encode(m) {
        Some(v) => {
            meta.insert("managedFields".into(), v);
        }
        None => {
            meta.remove("managedFields");
        }
    }
}

/// Other managers lose what changed; with `force == false`, fields they own that
/// were modified or added are conflicts instead (structured-merge-diff's `update`).
fn update_managers(
    t: &Target,
    old: &Value,
    new: &Value,
    fields: &mut std::collections::BTreeMap<String, VersionedSet>,
    workflow: &str,
    force: bool,
) -> Result<Comparison, ApplyError> {
    let cmp = t
        .typed()
        .compare(old, new)
        .map_err(|e| ApplyError::TypedLive {
            object: object_label(new, t),
            errors: join_errors(&e),
        })?
        .exclude(t.ignored());
    let changed = cmp.modified.union(&cmp.added);
    let mut conflicts = Vec::new();
    for (id, vs) in fields.iter() {
        if id == workflow {
            continue;
        }
        let c = vs.set.intersection(&changed);
        for p in c.paths() {
            conflicts.push(Conflict {
                manager: id.clone(),
                path: p,
            });
        }
    }
    if !force && !conflicts.is_empty() {
        return Err(ApplyError::Conflicts(conflicts));
    }
    for (id, vs) in fields.iter_mut() {
        if id == workflow {
            continue;
        }
        vs.set = vs.set.difference(&changed).difference(&cmp.removed);
    }
    fields.retain(|_, vs| !vs.set.is_empty());
    Ok(cmp)
}

/// An Update by `manager` (the field manager layers upstream stacks on
/// structured-merge-diff's `Update`): its changed fields move to its entry.
fn update_with_manager(
    t: &Target,
    live: &Value,
    new: &Value,
    m: &mut Managed,
    manager: &str,
) -> Result<(), ApplyError> {
    let id = managed::manager_id(manager, UPDATE, t.api_version, t.subresource);
    let cmp = update_managers(t, live, new, &mut m.fields, CURRENT_OPERATION, true)?;
    let prev = m
        .fields
        .get(CURRENT_OPERATION)
        .map(|v| v.set.clone())
        .unwrap_or_default();
    let set = prev
        .difference(&cmp.removed)
        .union(&cmp.modified)
        .union(&cmp.added)
        .recursive_difference(t.ignored());
    m.fields.insert(
        CURRENT_OPERATION.into(),
        VersionedSet {
            set,
            api_version: t.api_version.to_string(),
            applied: false,
        },
    );
    strip(m, CURRENT_OPERATION);
    if let Some(mut vs) = m.fields.remove(CURRENT_OPERATION) {
        if let Some(prev) = m.fields.get(&id) {
            vs.set = vs.set.union(&prev.set);
        }
        m.fields.insert(id.clone(), vs);
        m.times.insert(id, Some(t.now.to_string()));
    }
    managed::cap_update_managers(m, managed::MAX_UPDATE_MANAGERS);
    Ok(())
}

/// Removes what the applier set last time and no longer sets, unless someone still
/// owns it (structured-merge-diff's `prune`, `addBackOwnedItems`,
/// `addBackDanglingItems`).
fn prune(
    t: &Target,
    merged: Value,
    fields: &std::collections::BTreeMap<String, VersionedSet>,
    last: Option<&VersionedSet>,
) -> Value {
    let Some(last) = last.filter(|l| !l.set.is_empty()) else {
        return merged;
    };
    let ty = t.typed();
    let last_set = ty.named_fields_as_members(&last.set);
    let pruned = ty.remove(&merged, &last_set);
    let managed_all = fields
        .values()
        .fold(FieldSet::new(), |acc, vs| acc.union(&vs.set));
    let merged_set = ty.named_fields_as_members(&ty.to_field_set(&merged));
    let pruned_set = ty.named_fields_as_members(&ty.to_field_set(&pruned));
    let keep = pruned_set.union(&ty.named_fields_as_members(&managed_all));
    let pruned = ty.remove(&merged, &merged_set.difference(&keep));
    let pruned_set = ty.named_fields_as_members(&ty.to_field_set(&pruned));
    ty.remove(
        &merged,
        &merged_set.difference(&pruned_set).intersection(&last_set),
    )
}

/// The apply proper (structured-merge-diff's `Apply` with the strip-meta and
/// managed-fields-updater layers): `None` when the object does not change.
fn apply_with_manager(
    t: &Target,
    live: &Value,
    config: &Value,
    m: &mut Managed,
    manager: &str,
    force: bool,
) -> Result<Option<Value>, ApplyError> {
    let ty = t.typed();
    let errs = ty.validate(config, false);
    if !errs.is_empty() {
        return Err(ApplyError::TypedPatch {
            object: object_label(config, t),
            errors: join_errors(&errs),
        });
    }
    let id = managed::manager_id(manager, APPLY, t.api_version, t.subresource);
    let merged = ty.merge(live, config).map_err(|e| ApplyError::TypedLive {
        object: object_label(live, t),
        errors: join_errors(&e),
    })?;
    let mut fields = m.fields.clone();
    let last = fields.get(&id).cloned();
    let set = ty.to_field_set(config).recursive_difference(t.ignored());
    fields.insert(
        id.clone(),
        VersionedSet {
            set,
            api_version: t.api_version.to_string(),
            applied: true,
        },
    );
    let new = prune(t, merged, &fields, last.as_ref());
    update_managers(t, live, &new, &mut fields, &id, force)?;
    m.fields = fields;
    m.times.retain(|k, _| m.fields.contains_key(k));
    strip(m, &id);
    if new == *live {
        return Ok(None);
    }
    m.times.insert(id, Some(t.now.to_string()));
    Ok(Some(new))
}

/// Conflicts kubectl may take over when upgrading from client-side apply: fields of
/// the last-applied annotation whose live value is still the applied one.
fn allowed_from_last_applied(t: &Target, live: &Value) -> Option<FieldSet> {
    let raw = live["metadata"]["annotations"][LAST_APPLIED].as_str()?;
    if raw.is_empty() {
        return None;
    }
    let last: Value = serde_json::from_str(raw).ok()?;
    if last["apiVersion"].as_str() != Some(t.api_version) {
        return None;
    }
    let ty = t.typed();
    if !ty.validate(&last, false).is_empty() {
        return None;
    }
    let set = ty.to_field_set(&last);
    let cmp = ty.compare(&last, live).ok()?;
    Some(
        set.difference(&cmp.modified)
            .difference(&cmp.added)
            .difference(&cmp.removed),
    )
}

fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// The last-applied annotation kubectl's server-side apply keeps in sync: the applied
/// configuration without the annotation, keys sorted, newline-terminated.
fn build_last_applied(config: &Value) -> String {
    let mut c = config.clone();
    if let Some(a) = c
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    {
        a.remove(LAST_APPLIED);
    }
    format!("{}\n", sorted(&c))
}

/// Applies `config` for `manager` to `live` (`None`: the object does not exist yet)
/// and returns the new object with its managedFields. Defaults are not applied.
#[tracing::instrument(name = "apiserver_apply", skip_all, fields(manager = %manager, force))]
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    t: &Target,
) -> Result<Value, ApplyError> {
    if !config.is_object() {
        return Err(ApplyError::NotAnObject);
    }
    let live_managed = match live {
        Some(l) => managed::decode(l["metadata"].get("managedFields"))
            .map_err(ApplyError::LiveManagedFields)?,
        None => Managed::default(),
    };
    let api_version = config["apiVersion"].as_str().unwrap_or("");
    let kind = config["kind"].as_str().unwrap_or("");
    if api_version != t.api_version || kind != t.schema.kind {
        return Err(ApplyError::InvalidObjectType(gvk_string(api_version, kind)));
    }
    if config["metadata"]
        .get("managedFields")
        .is_some_and(|v| !v.is_null())
    {
        return Err(ApplyError::ManagedFieldsInConfig);
    }
    let live_obj = match live {
        Some(l) => without_managed_fields(l),
        None => t.schema.zero.clone(),
    };
    let attempt = |force: bool| -> Result<(Option<Value>, Managed), ApplyError> {
        let mut m = live_managed.clone();
        if m.fields.is_empty() {
            // Nothing was tracked: whatever is there belongs to "before-first-apply".
            update_with_manager(t, &t.schema.zero, &live_obj, &mut m, BEFORE_FIRST_APPLY)?;
        }
        let out = apply_with_manager(t, &live_obj, config, &mut m, manager, force)?;
        Ok((out, m))
    };
    let (out, m) = match attempt(force) {
        Err(ApplyError::Conflicts(conflicts)) if manager == KUBECTL => {
            match allowed_from_last_applied(t, &live_obj) {
                Some(allowed) => {
                    let rest: Vec<Conflict> = conflicts
                        .iter()
                        .filter(|c| !allowed.has(&c.path.0))
                        .cloned()
                        .collect();
                    if rest.is_empty() {
                        attempt(true)?
                    } else {
                        return Err(ApplyError::Conflicts(rest));
                    }
                }
                None => return Err(ApplyError::Conflicts(conflicts)),
            }
        }
        other => other?,
    };
    let mut obj = out.unwrap_or(live_obj);
    if live.is_none()
        && let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut)
        && meta.get("creationTimestamp").is_some_and(Value::is_null)
    {
        meta.remove("creationTimestamp");
    }
    set_managed_fields(&mut obj, &m);
    if manager == KUBECTL
        && obj["metadata"]["annotations"].get(LAST_APPLIED).is_some()
        && let Some(a) = obj["metadata"]["annotations"].as_object_mut()
    {
        a.insert(LAST_APPLIED.into(), json!(build_last_applied(config)));
    }
    Ok(obj)
}

/// Records `manager`'s ownership of what changed from `old` (`None`: a create) to
/// `new`, for a create, update or non-apply patch, and sets `new`'s managedFields.
/// Never fails: like upstream, an object that cannot be tracked is stored without
/// managedFields.
#[tracing::instrument(name = "apiserver_track_update", skip_all, fields(manager = %manager))]
pub fn track_update(old: Option<&Value>, new: &mut Value, manager: &str, t: &Target) {
    let live_managed = old
        .and_then(|o| managed::decode(o["metadata"].get("managedFields")).ok())
        .unwrap_or_default();
    let sent = new["metadata"].get("managedFields").cloned();
    let mut m = if !t.subresource.is_empty() {
        live_managed
    } else if managed::is_reset(sent.as_ref()) {
        Managed::default()
    } else {
        match managed::decode(sent.as_ref()) {
            Ok(m) if !m.fields.is_empty() => m,
            _ => live_managed,
        }
    };
    if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    let is_create = old.is_none_or(|o| o["metadata"]["uid"].as_str().unwrap_or("").is_empty());
    if m.fields.is_empty() && !is_create {
        // Never tracked (or cleared): stays untracked until the next apply.
        return;
    }
    let live = match old {
        Some(o) => without_managed_fields(o),
        None => t.schema.zero.clone(),
    };
    match update_with_manager(t, &live, new, &mut m, manager) {
        Ok(()) => set_managed_fields(new, &m),
        Err(e) => tracing::warn!(error = %e, "managedFields not tracked for this write"),
    }
}

/// The field manager of a non-apply write: the `fieldManager` parameter, else the
/// User-Agent up to its first `/`, printable characters only, at most 128 bytes.
pub fn manager_or_user_agent(field_manager: Option<&str>, user_agent: &str) -> String {
    if let Some(m) = field_manager.filter(|m| !m.is_empty()) {
        return m.to_string();
    }
    let prefix = user_agent.split('/').next().unwrap_or("");
    let mut out = String::new();
    for c in prefix.chars() {
        if c.is_control() {
            continue;
        }
        if out.len() + c.len_utf8() > FIELD_MANAGER_MAX_LENGTH {
            break;
        }
        out.push(c);
    }
    out
}

/// The `PatchOptions` errors upstream reports (422, kind `PatchOptions`, group
/// `meta.k8s.io`): `force` on a non-apply patch, a missing `fieldManager` on apply,
/// a too long or unprintable `fieldManager`.
pub fn validate_patch_options(
    field_manager: Option<&str>,
    is_apply: bool,
    force_given: bool,
) -> Vec<crate::apiserver::validation::Cause> {
    use crate::apiserver::validation::Cause;
    let fm = field_manager.unwrap_or("");
    let mut out = Vec::new();
    if !is_apply && force_given {
        out.push(Cause {
            reason: "FieldValueForbidden".into(),
            message: "Forbidden: may not be specified for non-apply patch".into(),
            field: "force".into(),
        });
    }
    if is_apply && fm.is_empty() {
        out.push(Cause {
            reason: "FieldValueRequired".into(),
            message: "Required value: is required for apply patch".into(),
            field: "fieldManager".into(),
        });
    }
    if fm.len() > FIELD_MANAGER_MAX_LENGTH {
        out.push(Cause {
            reason: "FieldValueTooLong".into(),
            message: format!("Too long: may not be more than {FIELD_MANAGER_MAX_LENGTH} bytes"),
            field: "fieldManager".into(),
        });
    }
    if let Some((i, _)) = fm.char_indices().find(|(_, c)| c.is_control()) {
        out.push(Cause {
            reason: "FieldValueInvalid".into(),
            message: format!(
                "Invalid value: {fm:?}: invalid characters at index {i}, fieldManager must only contain printable characters"
            ),
            field: "fieldManager".into(),
        });
    }
    out
}

/// Checks the name and namespace of the object an apply produced against the URL's.
pub fn check_name(obj: &Value, name: &str, namespace: Option<&str>) -> Result<(), ApplyError> {
    let got = obj["metadata"]["name"].as_str().unwrap_or("");
    if got != name {
        return Err(ApplyError::NameMismatch {
            object: got.to_string(),
            url: name.to_string(),
        });
    }
    if let Some(ns) = namespace.filter(|n| !n.is_empty()) {
        let got = obj["metadata"]["namespace"].as_str().unwrap_or("");
        if !got.is_empty() && got != ns {
            return Err(ApplyError::NamespaceMismatch {
                object: got.to_string(),
                url: ns.to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
