//! One file per served kind, each behind the [`Strategy`] trait (upstream's
//! `rest.RESTCreateStrategy`/`RESTUpdateStrategy`/`RESTDeleteStrategy` on a generic store).
//!
//! The handlers, discovery, OpenAPI, watch and Table code know nothing about particular
//! kinds: they ask the kind's strategy. What is the same for every kind (name rules,
//! typed round trip, status handling, default Table) is a default method here, so a kind
//! file holds only what makes that kind different.

pub mod admissionregistration;
pub mod apiextensions;
pub mod apps;
pub mod authentication;
pub mod authorization;
pub mod autoscaling;
pub mod batch;
pub mod coordination;
pub mod core;
pub mod events;
pub mod policy;
pub mod rbac;
pub mod scheduling;
pub mod typed;

use std::sync::Arc;

use serde_json::{Value, json};

use super::table::{self, Column};
use super::validation::{self, Cause};

/// Verbs of a full read/write resource.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Verbs of a `status`-like subresource.
pub const GET_PATCH_UPDATE: &[&str] = &["get", "patch", "update"];

/// A subresource and what it returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubresourceDef {
    /// Name after the object's path (`status`, `log`, `exec`, ...).
    pub name: String,
    /// Group of the returned kind.
    pub group: String,
    /// Version of the returned kind.
    pub version: String,
    /// Kind returned (or accepted) by the subresource.
    pub kind: String,
    /// Verbs allowed on it.
    pub verbs: Vec<String>,
}

/// The names and shape of one served resource: what discovery lists and routing,
/// storage keys and error messages use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceDef {
    /// API group ("" for core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Plural resource name used in URLs.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Namespaced (true) or cluster-scoped.
    pub namespaced: bool,
    /// Short names (`po`, `ns`, ...).
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Verbs on the resource itself.
    pub verbs: Vec<String>,
    /// Subresources.
    pub subresources: Vec<SubresourceDef>,
    /// Storage key segment: objects live under `/registry/<storage>/...`. Two resources
    /// sharing one segment share their objects (core and events.k8s.io events).
    pub storage: String,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

impl ResourceDef {
    /// A namespaced resource with every verb, stored under its plural; refine with the
    /// builder methods.
    pub fn new(group: &str, version: &str, kind: &str, plural: &str) -> Self {
        ResourceDef {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            namespaced: true,
            short_names: Vec::new(),
            categories: Vec::new(),
            verbs: strings(ALL_VERBS),
            subresources: Vec::new(),
            storage: plural.into(),
        }
    }

    /// Cluster-scoped.
    pub fn cluster_scoped(mut self) -> Self {
        self.namespaced = false;
        self
    }

    /// Short names.
    pub fn short_names(mut self, names: &[&str]) -> Self {
        self.short_names = strings(names);
        self
    }

    /// Categories.
    pub fn categories(mut self, names: &[&str]) -> Self {
        self.categories = strings(names);
        self
    }

    /// Verbs on the resource.
    pub fn verbs(mut self, verbs: &[&str]) -> Self {
        self.verbs = strings(verbs);
        self
    }

    /// The storage segment (when it differs from the plural).
    pub fn storage(mut self, segment: &str) -> Self {
        self.storage = segment.into();
        self
    }

    /// A subresource returning `kind` of this resource's group and version.
    pub fn subresource(mut self, name: &str, kind: &str, verbs: &[&str]) -> Self {
        self.subresources.push(SubresourceDef {
            name: name.into(),
            group: self.group.clone(),
            version: self.version.clone(),
            kind: kind.into(),
            verbs: strings(verbs),
        });
        self
    }

    /// A subresource returning `kind` of another group-version (`eviction` returns
    /// policy/v1 Eviction).
    pub fn foreign_subresource(
        mut self,
        name: &str,
        group: &str,
        version: &str,
        kind: &str,
        verbs: &[&str],
    ) -> Self {
        self.subresources.push(SubresourceDef {
            name: name.into(),
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            verbs: strings(verbs),
        });
        self
    }

    /// `v1` or `<group>/<version>`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The resource as `<plural>[.<group>]`, as upstream names it in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Storage key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("/registry/{}/{}/{}", self.storage, ns, name),
            _ => format!("/registry/{}/{}", self.storage, name),
        }
    }

    /// Storage prefix of a collection (one namespace, or all of them).
    pub fn prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("/registry/{}/{}/", self.storage, ns),
            _ => format!("/registry/{}/", self.storage),
        }
    }

    /// The subresource called `name`, if served.
    pub fn find_subresource(&self, name: &str) -> Option<&SubresourceDef> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// Whether this kind has a `status` subresource, so that main-resource writes keep
    /// the stored status and status writes keep the stored spec.
    pub fn has_status(&self) -> bool {
        self.find_subresource("status").is_some()
    }

    /// Whether `verb` is allowed on the resource itself.
    pub fn allows(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }
}

/// How a delete proceeds for one object, decided by its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deletion {
    /// Seconds until the object may be removed (0: at once, unless finalizers hold it).
    pub grace_seconds: i64,
    /// Whether the object is only marked (deletionTimestamp) even with no finalizers and
    /// no grace period: its contents are removed first (namespaces).
    pub empties_namespace: bool,
}

impl Deletion {
    /// Removed at once (after finalizers).
    pub const IMMEDIATE: Deletion = Deletion {
        grace_seconds: 0,
        empties_namespace: false,
    };
}

/// How strategic merge patch (and server-side apply) treats the list at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListMerge {
    /// Atomic: the patch's list replaces the object's.
    Replace,
    /// Items merged by the value of this key.
    MergeByKey(&'static str),
    /// A set of scalars: values are merged.
    MergePrimitives,
}

/// How a kind writes the selector its `scale` subresource reports as a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectorForm {
    /// A map of labels (core/v1 ReplicationController's `spec.selector`).
    Map,
    /// A `metav1.LabelSelector` (`matchLabels`/`matchExpressions`, apps/v1 workloads).
    LabelSelector,
    /// Already a selector string (a CRD's `labelSelectorPath`).
    String,
}

/// Where a kind keeps what its `scale` subresource (autoscaling/v1 `Scale`) reads and
/// writes, as upstream's per-kind ScaleREST (and a CRD's `subresources.scale`) names it.
/// Paths are JSON pointers (`/spec/replicas`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalePaths {
    /// The desired replicas (`Scale.spec.replicas`), written by scale updates.
    pub spec_replicas: String,
    /// The observed replicas (`Scale.status.replicas`).
    pub status_replicas: String,
    /// The selector (`Scale.status.selector`) and its form, if the kind has one.
    pub selector: Option<(String, SelectorForm)>,
    /// The group upstream names in the subresource's NotFound message
    /// (`replicationcontrollers/scale.autoscaling "x" not found`).
    pub not_found_group: String,
}

/// The behaviour of one kind. Every method but [`Strategy::def`] has a default that is
/// what upstream's generic store does for a kind that does not override it.
pub trait Strategy: Send + Sync + 'static {
    /// The resource's names and shape.
    fn def(&self) -> &ResourceDef;

    /// Decodes `value` as the typed kind and re-encodes it: the normalised object and the
    /// paths of fields the type does not know (`spec.foo`), or why it does not decode.
    /// Kinds without a Rust type keep the object as it is.
    fn normalize(&self, value: Value) -> Result<(Value, Vec<String>), String> {
        Ok((value, Vec::new()))
    }

    /// Adds the kind's OpenAPI schema to `generator` and returns its component name
    /// (`io.k8s.api.core.v1.Pod`), if the kind has one.
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> Option<String> {
        let _ = generator;
        None
    }

    /// The kind's OpenAPI schema as raw JSON, for a kind without a Rust type (a custom
    /// kind's `openAPIV3Schema`): its component name and schema. `object_meta_ref` is the
    /// `$ref` to ObjectMeta in the document being built.
    fn raw_schema(&self, object_meta_ref: &str) -> Option<(String, Value)> {
        let _ = object_meta_ref;
        None
    }

    /// The stored object as this resource's API version shows it.
    fn to_view(&self, stored: &Value) -> Value {
        stored.clone()
    }

    /// Whether `to_view` is the stored object unchanged, so reads share it uncopied (a
    /// kind that overrides `to_view` returns false).
    fn stored_is_view(&self) -> bool {
        true
    }

    /// An object of this resource's API version as it is stored.
    fn to_storage(&self, obj: Value) -> Value {
        obj
    }

    /// The webhook that converts this kind's objects between versions (a custom kind
    /// whose CRD asks for `Webhook` conversion): reads and writes call it through
    /// [`crate::apiserver::crd::conversion`], and `to_view`/`to_storage` leave objects as
    /// they are.
    fn conversion_webhook(&self) -> Option<&crate::apiserver::crd::conversion::ConversionWebhook> {
        None
    }

    /// The problems with `name` as this kind's object name (upstream wording); most kinds
    /// take a DNS-1123 subdomain.
    fn validate_name(&self, name: &str) -> Vec<String> {
        validation::subdomain_name(name)
    }

    /// Sets defaults and resets what clients may not set on create (status, usually).
    fn prepare_for_create(&self, obj: &mut Value) {
        let _ = obj;
    }

    /// Fixes up an update of the main resource: by default a kind with a `status`
    /// subresource keeps its stored status.
    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        if self.def().has_status() {
            match old.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        }
    }

    /// The subresources that read and write (part of) the object itself, through
    /// [`Strategy::prepare_for_subresource_update`]: `status` when the kind has one.
    fn writable_subresources(&self) -> &'static [&'static str] {
        if self.def().has_status() {
            &["status"]
        } else {
            &[]
        }
    }

    /// The object a write through subresource `sub` stores, from the stored `old` and
    /// the written `new`: by default only `status` is writable this way.
    fn prepare_for_subresource_update(&self, sub: &str, old: &Value, new: &Value) -> Value {
        let _ = sub;
        self.prepare_for_status_update(old, new)
    }

    /// The object a write through the `status` subresource stores: the old object with
    /// the new status, and the new labels and annotations (upstream's status strategies
    /// reset the spec but keep metadata changes).
    fn prepare_for_status_update(&self, old: &Value, new: &Value) -> Value {
        default_status_update(old, new)
    }

    /// Validates a new object (kind rules; metadata is checked by the caller).
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let _ = obj;
        Vec::new()
    }

    /// Validates an update: by default the create rules on the new object.
    fn validate_update(&self, old: &Value, new: &Value) -> Vec<Cause> {
        let _ = old;
        self.validate(new)
    }

    /// Validates a write through the writable subresource `sub` (upstream gives each its
    /// own strategy: `pods/ephemeralcontainers` and `pods/resize` have their own rules);
    /// by default the rules of a main-resource update.
    fn validate_subresource_update(&self, sub: &str, old: &Value, new: &Value) -> Vec<Cause> {
        let _ = sub;
        self.validate_update(old, new)
    }

    /// Why creating objects of this kind is refused right now, if it is (upstream's
    /// custom resource handler refuses creates while the CRD is being deleted).
    fn creates_refused(&self, store: &crate::store::Store) -> Option<String> {
        let _ = store;
        None
    }

    /// How deleting `current` proceeds, given the client's grace period.
    fn deletion(&self, current: &Value, requested_grace: Option<i64>) -> Deletion {
        let _ = (current, requested_grace);
        Deletion::IMMEDIATE
    }

    /// What deleting an object does to its dependents when the request does not say
    /// (upstream's `DefaultGarbageCollectionPolicy`): background deletion by default.
    fn default_gc_policy(&self) -> crate::apiserver::deletion::GcPolicy {
        crate::apiserver::deletion::GcPolicy::DeleteDependents
    }

    /// Marks the start of a deletion in the object (namespaces go `Terminating`).
    fn deletion_started(&self, obj: &mut Value) {
        let _ = obj;
    }

    /// Whether an object being deleted must stay although its finalizers are gone (a
    /// pod until its kubelet confirms; a namespace until it is empty).
    fn deletion_held(&self, obj: &Value) -> bool {
        let _ = obj;
        false
    }

    /// The Table columns `kubectl get` shows.
    fn columns(&self) -> Vec<Column> {
        table::default_columns()
    }

    /// The cells of one row, in [`Strategy::columns`] order.
    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let _ = now;
        table::default_cells(obj)
    }

    /// Row conditions (`Completed` for finished pods).
    fn row_conditions(&self, obj: &Value) -> Vec<Value> {
        let _ = obj;
        Vec::new()
    }

    /// Field selector fields beyond `metadata.name` and `metadata.namespace`.
    fn selectable_fields(&self) -> &'static [&'static str] {
        &[]
    }

    /// The value of a selectable field as field selectors compare it.
    fn field_value(&self, obj: &Value, path: &str) -> String {
        super::selectors::field_value(obj, path)
    }

    /// What server-side apply needs to know of the kind's fields (list and map types,
    /// what status writes reset); built-in kinds get theirs from their Rust type.
    fn field_schema(&self) -> crate::apiserver::apply::schema::KindSchema {
        crate::apiserver::apply::schema::for_strategy(self)
    }

    /// The kind's zero object: what upstream's empty Go struct of the kind encodes to
    /// (fields without `omitempty` appear), the "live" object server-side apply compares a
    /// create against.
    fn zero_object(&self) -> Value {
        json!({"metadata": {"creationTimestamp": null}})
    }

    /// The top-level fields a write through the `status` subresource resets (never owned
    /// there): the spec and the metadata for most kinds.
    fn status_resets(&self) -> &'static [&'static str] {
        &["spec", "metadata"]
    }

    /// The objects of a kind computed on every read instead of stored (ComponentStatus
    /// reports the components' health now), or `None` for a stored kind. A kind with live
    /// objects is served by [`crate::apiserver::live`]: get and list only.
    fn live_objects(&self, store: &crate::store::Store) -> Option<Vec<Value>> {
        let _ = store;
        None
    }

    /// For kinds that are answered, not stored (upstream's TokenReview,
    /// SubjectAccessReview, SelfSubjectReview, ...): a create (POST) computes the reply
    /// from the decoded request object and the caller, and nothing is written. `None`
    /// (the default) for stored kinds. The reply is sent with 201 Created, as upstream.
    fn review<'a>(
        &'a self,
        srv: &'a crate::apiserver::ApiServer,
        user: &'a crate::pki::UserInfo,
        namespace: Option<&'a str>,
        obj: Value,
    ) -> Option<Review<'a>> {
        let _ = (srv, user, namespace, obj);
        None
    }

    /// The `Warning` upstream sends with responses for a deprecated API version (`v1
    /// ComponentStatus is deprecated in v1.19+`). Only the live serving path sends it yet.
    fn deprecation_warning(&self) -> Option<String> {
        None
    }

    /// Where the kind's `scale` subresource finds its replicas and selector, for a kind
    /// that serves one ([`crate::apiserver::scale`]).
    fn scale(&self) -> Option<ScalePaths> {
        None
    }

    /// How strategic merge patch treats the list at `path` (field names from the root;
    /// list items contribute no segment). `metadata` lists are handled by the caller.
    fn list_merge(&self, path: &[&str]) -> ListMerge {
        let _ = path;
        ListMerge::Replace
    }
}

/// What a write through the `status` subresource stores, by default: the old object
/// with the new status and the new labels and annotations (upstream's status strategies
/// reset the spec but keep metadata changes).
pub fn default_status_update(old: &Value, new: &Value) -> Value {
    let mut out = old.clone();
    out["status"] = new.get("status").cloned().unwrap_or(json!({}));
    for k in ["labels", "annotations"] {
        match new["metadata"].get(k) {
            Some(v) if !v.is_null() => out["metadata"][k] = v.clone(),
            _ => {
                if let Some(m) = out["metadata"].as_object_mut() {
                    m.remove(k);
                }
            }
        }
    }
    if let Some(rv) = new["metadata"].get("resourceVersion") {
        out["metadata"]["resourceVersion"] = rv.clone();
    }
    out
}

/// A shared strategy, as the registry hands them out.
pub type Kind = Arc<dyn Strategy>;

/// The reply of a [`Strategy::review`]: the answered object (with its `status`).
pub type Review<'a> = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<Value, crate::apiserver::status::ApiError>>
            + Send
            + 'a,
    >,
>;

/// The field selector fields of `res` (common ones first).
pub fn supported_fields(res: &dyn Strategy) -> Vec<&'static str> {
    let mut f = vec!["metadata.name", "metadata.namespace"];
    f.extend_from_slice(res.selectable_fields());
    f
}

/// Every built-in kind, core first (the first group is preferred by clients).
pub fn builtins() -> Vec<Kind> {
    let mut out: Vec<Kind> = Vec::new();
    out.extend(core::kinds());
    out.extend(apps::kinds());
    out.extend(coordination::kinds());
    out.extend(batch::kinds());
    out.extend(events::kinds());
    out.extend(autoscaling::kinds());
    out.extend(policy::kinds());
    out.extend(scheduling::kinds());
    out.extend(admissionregistration::kinds());
    out.extend(apiextensions::kinds());
    out.extend(authentication::kinds());
    out.extend(authorization::kinds());
    out.extend(rbac::kinds());
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every kind's behaviour lives in its file under `kinds/`: the generic machinery
    /// (handlers, discovery, OpenAPI, watch, Table, apply, protobuf, admission) names no
    /// kind. Test code is not checked.
    #[test]
    fn only_kind_files_name_a_kind() {
        fn walk(dir: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).expect("read src/apiserver") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    if !path.ends_with("kinds") {
                        walk(&path, out);
                    }
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") || path.ends_with("tests.rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("read source");
                let code = text.split("#[cfg(test)]").next().unwrap_or("");
                for (n, line) in code.lines().enumerate() {
                    if line.contains("\"Pod\"") {
                        out.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                    }
                }
            }
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/apiserver");
        let mut found = Vec::new();
        walk(&root, &mut found);
        assert!(
            found.is_empty(),
            "kind names outside kinds/:\n{}",
            found.join("\n")
        );
    }
}
