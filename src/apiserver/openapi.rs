//! OpenAPI v3 documents, generated from the `k8s-openapi` Rust types through schemars.
//!
//! kubectl needs them for `create -f`/`apply -f` (it checks that each kind's PATCH
//! operation accepts the `fieldValidation` query parameter, then leaves validation to the
//! server) and for `kubectl explain`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::kinds::ResourceDef;
use super::registry::Snapshot;

/// The generated documents, keyed by `api/v1` or `apis/<group>/<version>`, plus the
/// single Swagger 2.0 document older kubectl (1.27, 1.28) reads from `/openapi/v2`.
pub struct OpenApi {
    docs: BTreeMap<String, (Value, String)>,
}

/// The OpenAPI v3 documents of `snap`, built once per registry generation.
pub fn get(snap: &Snapshot) -> &OpenApi {
    snap.derived.openapi.get_or_init(|| build(snap))
}

/// The Swagger 2.0 document of `snap`, built once per registry generation and only when
/// asked for (kubectl 1.29 and later read v3; a CRD's create should not wait for v2).
pub fn v2(snap: &Snapshot) -> &Value {
    snap.derived.openapi_v2.get_or_init(|| build_v2(snap))
}

/// Per served kind with a schema: its definition and schema component name.
fn schema_names(
    snap: &Snapshot,
    generator: &mut schemars::SchemaGenerator,
) -> Vec<(ResourceDef, String)> {
    snap.kinds
        .iter()
        .filter_map(|k| k.schema(generator).map(|name| (k.def().clone(), name)))
        .collect()
}

/// Adds the raw-JSON schemas of kinds without a Rust type (custom kinds) to `defs` and
/// `names`; `ref_prefix` is where the document keeps its definitions.
pub(crate) fn add_raw_schemas(
    snap: &Snapshot,
    ref_prefix: &str,
    defs: &mut Map<String, Value>,
    names: &mut Vec<(ResourceDef, String)>,
) {
    let meta = format!("{ref_prefix}io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta");
    for k in &snap.kinds {
        if let Some((name, schema)) = k.raw_schema(&meta) {
            defs.insert(name.clone(), schema);
            names.push((k.def().clone(), name));
        }
    }
}

impl OpenApi {
    /// The `/openapi/v3` root: one entry per group-version with a hashed URL.
    pub fn root(&self) -> Value {
        let paths: Map<String, Value> = self
            .docs
            .iter()
            .map(|(k, (_, hash))| {
                (
                    k.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{k}?hash={hash}")}),
                )
            })
            .collect();
        json!({"paths": paths})
    }

    /// The document for `api/v1` or `apis/<g>/<v>`.
    pub fn doc(&self, path: &str) -> Option<&Value> {
        self.docs.get(path).map(|(d, _)| d)
    }
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn build(snap: &Snapshot) -> OpenApi {
    let mut generator = schemars::generate::SchemaSettings::openapi3().into_generator();
    let mut names = schema_names(snap, &mut generator);
    let mut defs: Map<String, Value> = generator.take_definitions(true);
    add_raw_schemas(snap, "#/components/schemas/", &mut defs, &mut names);
    // Mark the top-level kinds, as upstream does, so `kubectl explain` finds them.
    mark_kinds(&mut defs, &names);
    rewrite_refs(&mut defs);
    let mut by_gv: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for (r, schema) in &names {
        let paths = by_gv.entry(gv_path(&r.group, &r.version)).or_default();
        let base = if r.group.is_empty() {
            format!("/api/{}", r.version)
        } else {
            format!("/apis/{}/{}", r.group, r.version)
        };
        let item = if r.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("{base}/{}/{{name}}", r.plural)
        };
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        let schema_ref = json!({"$ref": format!("#/components/schemas/{schema}")});
        let param = |n: &str| json!({"name": n, "in": "query", "schema": {"type": "string"}, "uniqueItems": true});
        let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": schema_ref}}}});
        paths.insert(
            item,
            json!({
                "get": {"operationId": format!("read{}", r.kind), "x-kubernetes-action": "get", "x-kubernetes-group-version-kind": gvk, "responses": ok},
                "put": {"operationId": format!("replace{}", r.kind), "x-kubernetes-action": "put", "x-kubernetes-group-version-kind": gvk,
                        "parameters": [param("dryRun"), param("fieldManager"), param("fieldValidation")],
                        "requestBody": {"content": {"application/json": {"schema": schema_ref}}}, "responses": ok},
                "patch": {"operationId": format!("patch{}", r.kind), "x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk,
                          "parameters": [param("dryRun"), param("fieldManager"), param("fieldValidation"), param("force")],
                          "requestBody": {"content": {
                              "application/apply-patch+yaml": {"schema": {"type": "object"}},
                              "application/json-patch+json": {"schema": {"type": "object"}},
                              "application/merge-patch+json": {"schema": {"type": "object"}}}},
                          "responses": ok},
                "delete": {"operationId": format!("delete{}", r.kind), "x-kubernetes-action": "delete", "x-kubernetes-group-version-kind": gvk, "responses": ok},
            }),
        );
    }
    let mut docs = BTreeMap::new();
    for (gv, paths) in by_gv {
        // As upstream, a group version's document holds only the schemas its paths reach.
        let schemas = reachable_schemas(&paths, &defs);
        let doc = json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": crate::KUBE_GIT_VERSION},
            "paths": paths,
            "components": {"schemas": schemas},
        });
        let bytes = serde_json::to_vec(&doc).unwrap_or_default();
        let hash = format!("{:016X}", fnv1a(&bytes));
        docs.insert(gv, (doc, hash));
    }
    OpenApi { docs }
}

/// The schemas of `defs` that `paths` refer to, directly or through other schemas.
fn reachable_schemas(paths: &Map<String, Value>, defs: &Map<String, Value>) -> Map<String, Value> {
    const PREFIX: &str = "#/components/schemas/";
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x) {
                        ("$ref", Value::String(r)) => out.push(r),
                        _ => refs(x, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut pending = Vec::new();
    for p in paths.values() {
        refs(p, &mut pending);
    }
    let mut out = Map::new();
    while let Some(r) = pending.pop() {
        let Some(name) = r.strip_prefix(PREFIX) else {
            continue;
        };
        if out.contains_key(name) {
            continue;
        }
        if let Some(schema) = defs.get(name) {
            out.insert(name.to_string(), schema.clone());
            refs(schema, &mut pending);
        }
    }
    out
}

/// The Swagger 2.0 document: definitions from the same Rust types, and per kind an item
/// path whose PATCH operation declares `fieldValidation` (what kubectl 1.27/1.28 check).
fn build_v2(snap: &Snapshot) -> Value {
    let mut generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let mut names = schema_names(snap, &mut generator);
    let mut defs: Map<String, Value> = generator.take_definitions(true);
    add_raw_schemas(snap, "#/definitions/", &mut defs, &mut names);
    mark_kinds(&mut defs, &names);
    for (_, v) in defs.iter_mut() {
        unwrap_single_all_of(v);
    }
    add_patch_extensions(&mut defs);
    let mut paths = Map::new();
    for (r, schema) in &names {
        let base = if r.group.is_empty() {
            format!("/api/{}", r.version)
        } else {
            format!("/apis/{}/{}", r.group, r.version)
        };
        let item = if r.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("{base}/{}/{{name}}", r.plural)
        };
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        let q = |n: &str| json!({"uniqueItems": true, "type": "string", "name": n, "in": "query"});
        let ok = json!({"200": {"description": "OK", "schema": {"$ref": format!("#/definitions/{schema}")}}});
        paths.insert(
            item,
            json!({
                "get": {"operationId": format!("read{}", r.kind), "produces": ["application/json"], "responses": ok,
                        "x-kubernetes-action": "get", "x-kubernetes-group-version-kind": gvk},
                "patch": {"operationId": format!("patch{}", r.kind),
                          "consumes": ["application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json", "application/apply-patch+yaml"],
                          "produces": ["application/json"],
                          "parameters": [q("dryRun"), q("fieldManager"), q("fieldValidation"), {"uniqueItems": true, "type": "boolean", "name": "force", "in": "query"}],
                          "responses": ok, "x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk},
            }),
        );
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": crate::KUBE_GIT_VERSION},
        "paths": paths,
        "definitions": defs,
    })
}

/// Marks each served kind's schema with its group-version-kind, as upstream does.
fn mark_kinds(defs: &mut Map<String, Value>, names: &[(ResourceDef, String)]) {
    for (r, name) in names {
        if let Some(Value::Object(s)) = defs.get_mut(name) {
            s.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": r.group, "version": r.version, "kind": r.kind}]),
            );
        }
    }
}

/// The strategic-merge-patch metadata of list fields (what upstream's Go struct tags
/// say), so that kubectl computes list patches by key instead of replacing whole lists.
/// The server side of the same rules is in `smp.rs`.
const PATCH_META: &[(&str, &str, &str, &str)] = &[
    ("io.k8s.api.core.v1.PodSpec", "containers", "merge", "name"),
    (
        "io.k8s.api.core.v1.PodSpec",
        "initContainers",
        "merge",
        "name",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "ephemeralContainers",
        "merge",
        "name",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "volumes",
        "merge,retainKeys",
        "name",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "imagePullSecrets",
        "merge",
        "name",
    ),
    ("io.k8s.api.core.v1.PodSpec", "hostAliases", "merge", "ip"),
    (
        "io.k8s.api.core.v1.PodSpec",
        "topologySpreadConstraints",
        "merge",
        "topologyKey",
    ),
    (
        "io.k8s.api.core.v1.Container",
        "ports",
        "merge",
        "containerPort",
    ),
    ("io.k8s.api.core.v1.Container", "env", "merge", "name"),
    (
        "io.k8s.api.core.v1.Container",
        "volumeMounts",
        "merge",
        "mountPath",
    ),
    (
        "io.k8s.api.core.v1.Container",
        "volumeDevices",
        "merge",
        "devicePath",
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "env",
        "merge",
        "name",
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeMounts",
        "merge",
        "mountPath",
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "conditions",
        "merge",
        "type",
    ),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "conditions",
        "merge",
        "type",
    ),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "addresses",
        "merge",
        "type",
    ),
    ("io.k8s.api.core.v1.ServiceSpec", "ports", "merge", "port"),
    (
        "io.k8s.api.core.v1.ServiceAccount",
        "secrets",
        "merge",
        "name",
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
        "merge",
        "uid",
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
        "merge",
        "",
    ),
];

/// Swagger 2.0 readers (kubectl's) follow `$ref` but not `allOf`: turn a single-ref
/// `allOf` back into a plain `$ref` beside the description, as upstream's v2 does.
fn unwrap_single_all_of(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let single = m
                .get("allOf")
                .and_then(Value::as_array)
                .filter(|a| a.len() == 1)
                .and_then(|a| a[0].get("$ref").cloned());
            if let Some(r) = single {
                m.remove("allOf");
                m.insert("$ref".into(), r);
            }
            for (_, c) in m.iter_mut() {
                unwrap_single_all_of(c);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(unwrap_single_all_of),
        _ => {}
    }
}

fn add_patch_extensions(defs: &mut Map<String, Value>) {
    for (def, prop, strategy, key) in PATCH_META {
        if let Some(Value::Object(p)) = defs
            .get_mut(*def)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(*prop))
        {
            p.insert("x-kubernetes-patch-strategy".into(), json!(strategy));
            if !key.is_empty() {
                p.insert("x-kubernetes-patch-merge-key".into(), json!(key));
            }
        }
    }
}

/// schemars writes `$ref` next to other keywords; OpenAPI 3.0 readers expect `allOf` then.
fn rewrite_refs(defs: &mut Map<String, Value>) {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                if m.contains_key("$ref")
                    && m.len() > 1
                    && let Some(r) = m.remove("$ref")
                {
                    m.insert("allOf".into(), json!([{"$ref": r}]));
                }
                for (_, c) in m.iter_mut() {
                    walk(c);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    for (_, v) in defs.iter_mut() {
        walk(v);
    }
}

fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_patch_declares_field_validation_and_schema_exists() {
        let reg = crate::apiserver::registry::Registry::builtin();
        let snap = reg.snapshot();
        let o = get(&snap);
        let pod_kind = snap.find("", "v1", "pods").unwrap().def().kind.clone();
        let doc = o.doc("api/v1").expect("core doc");
        let path = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"];
        assert_eq!(
            path["patch"]["x-kubernetes-group-version-kind"]["kind"],
            pod_kind
        );
        assert!(
            path["patch"]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        let pod = &doc["components"]["schemas"]["io.k8s.api.core.v1.Pod"];
        assert_eq!(pod["x-kubernetes-group-version-kind"][0]["kind"], pod_kind);
        assert!(pod["properties"]["spec"].is_object());
        assert!(
            doc["components"]["schemas"]["io.k8s.api.core.v1.Container"]["properties"]["image"]
                .is_object()
        );
        assert!(
            o.root()["paths"]["apis/coordination.k8s.io/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .contains("hash=")
        );
    }
}
