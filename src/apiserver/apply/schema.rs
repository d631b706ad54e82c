//! What server-side apply needs to know about a kind's shape: which objects are structs
//! (declared fields) or maps (free keys), which are atomic, and which lists are atomic,
//! sets, or maps keyed by some item fields. Built once from the `k8s-openapi` schemars
//! schemas (the shapes) and `schema_data.rs` (the list and map types of upstream's
//! OpenAPI extensions); kinds without a schema get upstream's untyped ("deduced")
//! behaviour: every object a granular map, every list atomic.
//!
//! `schema_data.rs` was generated from `k8s-openapi`'s `DeepMerge` impls by a short
//! script reading `crate::merge_strategies::{list,map}::*` calls (definition name from
//! `schema_name()`, JSON names from the `Field::Key_*` table).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value, json};

use super::fieldpath::{FieldSet, Path};
use crate::apiserver::kinds::Strategy;

/// How a field of a definition merges (upstream's `x-kubernetes-list-type` /
/// `x-kubernetes-map-type`, or a patch merge key where no list type is given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldRel {
    /// An associative list keyed by these item fields.
    ListMap(&'static [&'static str]),
    /// A list of unique scalars.
    ListSet,
    /// A list replaced as a whole.
    ListAtomic,
    /// A map replaced as a whole.
    MapAtomic,
}

/// Index of a node in a [`Arena`].
pub type NodeId = usize;

/// How a list's items are identified.
#[derive(Debug, Clone, PartialEq)]
pub enum ListRel {
    /// The list is one value.
    Atomic,
    /// Items are scalars identified by value.
    Set,
    /// Items are objects identified by these fields; a missing key field takes its
    /// default when the schema has one (`protocol: TCP`).
    Map {
        /// Key field names.
        keys: Vec<String>,
        /// Defaults of key fields.
        defaults: BTreeMap<String, Value>,
    },
}

/// One type in the schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A string, number, boolean (or int-or-string, quantity, time).
    Scalar,
    /// An object: declared `fields` (a struct), or free keys of type `elem` (a map),
    /// merged key by key unless `atomic`.
    Map {
        /// Declared fields.
        fields: BTreeMap<String, NodeId>,
        /// The type of undeclared keys; `None` means undeclared keys are errors.
        elem: Option<NodeId>,
        /// Replaced as a whole.
        atomic: bool,
    },
    /// A list.
    List {
        /// The item type.
        elem: NodeId,
        /// How items are identified.
        rel: ListRel,
    },
    /// Untyped: the shape is taken from the value (objects are granular maps of
    /// untyped values, lists atomic).
    Deduced,
}

/// A set of nodes; node 0 is [`Node::Deduced`].
#[derive(Debug, Clone, Default)]
pub struct Arena {
    nodes: Vec<Node>,
}

/// The untyped node present in every arena.
pub const DEDUCED: NodeId = 0;

impl Arena {
    /// An arena holding only the untyped node.
    pub fn new() -> Arena {
        Arena {
            nodes: vec![Node::Deduced],
        }
    }

    /// Adds a node.
    pub fn push(&mut self, n: Node) -> NodeId {
        self.nodes.push(n);
        self.nodes.len() - 1
    }

    /// The node at `id`.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }
}

/// The resolved shape of a node for one value (untyped nodes take the value's shape).
#[derive(Debug, Clone, Copy)]
pub enum Atom<'a> {
    /// A leaf value.
    Scalar,
    /// An object.
    Map {
        /// Declared fields (empty for maps and untyped objects).
        fields: Option<&'a BTreeMap<String, NodeId>>,
        /// Type of undeclared keys.
        elem: Option<NodeId>,
        /// Replaced as a whole.
        atomic: bool,
    },
    /// A list.
    List {
        /// Item type.
        elem: NodeId,
        /// Identification of items.
        rel: &'a ListRel,
    },
}

static ATOMIC: ListRel = ListRel::Atomic;

impl Arena {
    /// The shape of `id` for `value` (`None` when absent).
    pub fn resolve<'a>(&'a self, id: NodeId, value: Option<&Value>) -> Atom<'a> {
        match self.node(id) {
            Node::Scalar => Atom::Scalar,
            Node::Map {
                fields,
                elem,
                atomic,
            } => Atom::Map {
                fields: Some(fields),
                elem: *elem,
                atomic: *atomic,
            },
            Node::List { elem, rel } => Atom::List { elem: *elem, rel },
            Node::Deduced => match value {
                Some(Value::Object(_)) => Atom::Map {
                    fields: None,
                    elem: Some(DEDUCED),
                    atomic: false,
                },
                Some(Value::Array(_)) => Atom::List {
                    elem: DEDUCED,
                    rel: &ATOMIC,
                },
                _ => Atom::Scalar,
            },
        }
    }
}

/// Everything apply needs about one kind.
#[derive(Debug, Clone)]
pub struct KindSchema {
    /// API group ("" for core).
    pub group: String,
    /// Kind.
    pub kind: String,
    /// The types.
    pub arena: Arc<Arena>,
    /// The kind's root type.
    pub root: NodeId,
    /// The kind's zero object (upstream's empty Go struct in JSON): the "live" object of
    /// a create, so fields that always exist are not recorded as added wholesale.
    pub zero: Value,
    /// Fields the main resource's strategy resets (its status); never owned there.
    pub reset_main: FieldSet,
    /// Fields the status subresource resets (everything but the status).
    pub reset_status: FieldSet,
}

impl KindSchema {
    /// The untyped schema (upstream's behaviour for kinds without a structural schema).
    pub fn untyped(group: &str, kind: &str) -> KindSchema {
        KindSchema {
            group: group.to_string(),
            kind: kind.to_string(),
            arena: Arc::new(Arena::new()),
            root: DEDUCED,
            zero: json!({}),
            reset_main: FieldSet::new(),
            reset_status: FieldSet::new(),
        }
    }

    /// The fields reset by the strategy of `subresource` ("" or "status").
    pub fn reset_fields(&self, subresource: &str) -> &FieldSet {
        if subresource == "status" {
            &self.reset_status
        } else {
            &self.reset_main
        }
    }
}

/// Corrections where upstream's list type differs from the patch merge key that
/// `k8s-openapi` reports (`x-kubernetes-list-map-keys` with two keys).
const KEY_OVERRIDES: &[(&str, &str, FieldRel)] = &[
    (
        "io.k8s.api.core.v1.Container",
        "ports",
        FieldRel::ListMap(&["containerPort", "protocol"]),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "ports",
        FieldRel::ListMap(&["containerPort", "protocol"]),
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "ports",
        FieldRel::ListMap(&["port", "protocol"]),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "topologySpreadConstraints",
        FieldRel::ListMap(&["topologyKey", "whenUnsatisfiable"]),
    ),
];

/// Key fields with an OpenAPI default, used when an item omits them.
const KEY_DEFAULTS: &[(&str, &str, &str)] = &[
    ("io.k8s.api.core.v1.ContainerPort", "protocol", "TCP"),
    ("io.k8s.api.core.v1.ServicePort", "protocol", "TCP"),
];

/// Definitions upstream marks `x-kubernetes-map-type: atomic` (`+structType=atomic`).
const ATOMIC_STRUCTS: &[&str] = &[
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
    "io.k8s.api.core.v1.ObjectReference",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.TypedLocalObjectReference",
    "io.k8s.api.core.v1.TypedObjectReference",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.NodeSelectorTerm",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.ObjectFieldSelector",
    "io.k8s.api.core.v1.ResourceFieldSelector",
    "io.k8s.api.core.v1.TopologySelectorTerm",
];

struct Builder<'d> {
    defs: &'d Map<String, Value>,
    /// `definition#field` → relationship.
    rels: HashMap<String, FieldRel>,
    arena: Arena,
    by_name: HashMap<String, NodeId>,
}

fn ref_name(s: &Value) -> Option<&str> {
    let r = s.get("$ref").and_then(Value::as_str).or_else(|| {
        s.get("allOf")
            .and_then(Value::as_array)
            .filter(|a| a.len() == 1)
            .and_then(|a| a[0].get("$ref"))
            .and_then(Value::as_str)
    })?;
    r.rsplit('/').next()
}

impl Builder<'_> {
    fn def(&mut self, name: &str) -> NodeId {
        if let Some(id) = self.by_name.get(name) {
            return *id;
        }
        let Some(s) = self.defs.get(name) else {
            return DEDUCED;
        };
        // Reserve the id first: definitions can be recursive.
        let id = self.arena.push(Node::Deduced);
        self.by_name.insert(name.to_string(), id);
        let node = if let Some(Value::Object(props)) = s.get("properties") {
            let mut fields = BTreeMap::new();
            for (field, fs) in props {
                let rel = self.rels.get(&format!("{name}#{field}")).copied();
                let fid = self.value(fs, rel);
                fields.insert(field.clone(), fid);
            }
            Node::Map {
                fields,
                elem: None,
                atomic: ATOMIC_STRUCTS.contains(&name),
            }
        } else {
            self.shape(s, None)
        };
        self.arena.nodes[id] = node;
        id
    }

    fn value(&mut self, s: &Value, rel: Option<FieldRel>) -> NodeId {
        if let Some(name) = ref_name(s) {
            let name = name.to_string();
            return self.def(&name);
        }
        let n = self.shape(s, rel);
        self.arena.push(n)
    }

    fn shape(&mut self, s: &Value, rel: Option<FieldRel>) -> Node {
        if s.get("x-kubernetes-int-or-string").is_some() {
            return Node::Scalar;
        }
        match s.get("type").and_then(Value::as_str) {
            Some("array") => {
                let items = s.get("items").cloned().unwrap_or(json!({}));
                let elem = self.value(&items, None);
                let rel = match rel {
                    Some(FieldRel::ListMap(keys)) => {
                        let item_def = ref_name(&items).unwrap_or("");
                        let defaults = keys
                            .iter()
                            .filter_map(|k| {
                                KEY_DEFAULTS
                                    .iter()
                                    .find(|(d, f, _)| *d == item_def && f == k)
                                    .map(|(_, f, v)| (f.to_string(), json!(v)))
                            })
                            .collect();
                        ListRel::Map {
                            keys: keys.iter().map(|k| k.to_string()).collect(),
                            defaults,
                        }
                    }
                    Some(FieldRel::ListSet) => ListRel::Set,
                    _ => ListRel::Atomic,
                };
                Node::List { elem, rel }
            }
            Some("object") => match s.get("additionalProperties") {
                Some(ap) if ap.is_object() => {
                    let elem = self.value(ap, None);
                    Node::Map {
                        fields: BTreeMap::new(),
                        elem: Some(elem),
                        atomic: rel == Some(FieldRel::MapAtomic),
                    }
                }
                _ => Node::Deduced,
            },
            Some(_) => Node::Scalar,
            None => Node::Deduced,
        }
    }
}

/// The schema of `kind`, built from its Rust type (what [`Strategy::schema`] gives the
/// OpenAPI documents) and cached per kind; untyped (upstream's behaviour for kinds
/// without a structural schema) when the kind has none.
pub fn for_strategy<S: Strategy + ?Sized>(kind: &S) -> KindSchema {
    static CACHE: OnceLock<Mutex<HashMap<String, KindSchema>>> = OnceLock::new();
    let d = kind.def();
    let key = format!("{}/{}", d.api_version(), d.kind);
    let cache = CACHE.get_or_init(Default::default);
    if let Some(s) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return s.clone();
    }
    let mut generator = schemars::generate::SchemaSettings::openapi3().into_generator();
    let Some(name) = kind.schema(&mut generator) else {
        return KindSchema::untyped(&d.group, &d.kind);
    };
    let defs = generator.take_definitions(true);
    let mut rels: HashMap<String, FieldRel> = super::schema_data::FIELD_RELS
        .iter()
        .map(|(d, f, r)| (format!("{d}#{f}"), *r))
        .collect();
    for (d, f, r) in KEY_OVERRIDES {
        rels.insert(format!("{d}#{f}"), *r);
    }
    let mut b = Builder {
        defs: &defs,
        rels,
        arena: Arena::new(),
        by_name: HashMap::new(),
    };
    let root = b.def(&name);
    let (reset_main, reset_status) = if d.has_status() {
        let status: Vec<Path> = kind
            .status_resets()
            .iter()
            .map(|f| Path::fields(&[f]))
            .collect();
        (
            FieldSet::from_paths(&[Path::fields(&["status"])]),
            FieldSet::from_paths(&status),
        )
    } else {
        (FieldSet::new(), FieldSet::new())
    };
    let schema = KindSchema {
        group: d.group.clone(),
        kind: d.kind.clone(),
        arena: Arc::new(b.arena),
        root,
        zero: kind.zero_object(),
        reset_main,
        reset_status,
    };
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, schema.clone());
    schema
}

/// The schema of a built-in `(group, kind)`, or of the workload kinds the tests use
/// before they are served; untyped otherwise.
#[cfg(test)]
pub fn for_kind(group: &str, kind: &str) -> KindSchema {
    use crate::apiserver::kinds::{GET_PATCH_UPDATE, ResourceDef};
    use std::marker::PhantomData;

    struct Test<T> {
        def: ResourceDef,
        zero: Value,
        _t: PhantomData<fn() -> T>,
    }
    impl<T: schemars::JsonSchema + 'static> Strategy for Test<T> {
        fn def(&self) -> &ResourceDef {
            &self.def
        }
        fn schema(&self, generator: &mut schemars::SchemaGenerator) -> Option<String> {
            Some(crate::apiserver::kinds::typed::schema_of::<T>(generator))
        }
        fn zero_object(&self) -> Value {
            self.zero.clone()
        }
    }
    if let Some(k) = crate::apiserver::kinds::builtins()
        .into_iter()
        .find(|k| k.def().group == group && k.def().kind == kind)
    {
        return for_strategy(&*k);
    }
    let meta = json!({"creationTimestamp": null});
    let template = json!({"metadata": meta, "spec": {"containers": null}});
    match (group, kind) {
        ("apps", "Deployment") => for_strategy(&Test::<k8s_openapi::api::apps::v1::Deployment> {
            def: ResourceDef::new("apps", "v1", "Deployment", "deployments").subresource(
                "status",
                "Deployment",
                GET_PATCH_UPDATE,
            ),
            zero: json!({"metadata": meta, "spec": {"selector": null, "template": template, "strategy": {}}, "status": {}}),
            _t: PhantomData,
        }),
        ("batch", "CronJob") => for_strategy(&Test::<k8s_openapi::api::batch::v1::CronJob> {
            def: ResourceDef::new("batch", "v1", "CronJob", "cronjobs").subresource(
                "status",
                "CronJob",
                GET_PATCH_UPDATE,
            ),
            zero: json!({"metadata": meta, "spec": {"schedule": "",
                "jobTemplate": {"metadata": meta, "spec": {"template": template}}}, "status": {}}),
            _t: PhantomData,
        }),
        _ => KindSchema::untyped(group, kind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(s: &KindSchema, path: &[&str]) -> NodeId {
        let mut id = s.root;
        for p in path {
            id = match s.arena.node(id) {
                Node::Map { fields, elem, .. } => {
                    fields.get(*p).copied().or(*elem).expect("field exists")
                }
                Node::List { elem, .. } => *elem,
                other => panic!("no field {p} in {other:?}"),
            };
        }
        id
    }

    #[test]
    fn pod_containers_are_a_list_map_by_name_and_ports_by_port_and_protocol() {
        let s = for_kind("", "Pod");
        match s.arena.node(field(&s, &["spec", "containers"])) {
            Node::List {
                rel: ListRel::Map { keys, .. },
                ..
            } => assert_eq!(keys, &["name"]),
            other => panic!("{other:?}"),
        }
        match s
            .arena
            .node(field(&s, &["spec", "containers", "*", "ports"]))
        {
            Node::List {
                rel: ListRel::Map { keys, defaults },
                ..
            } => {
                assert_eq!(keys, &["containerPort", "protocol"]);
                assert_eq!(defaults.get("protocol"), Some(&json!("TCP")));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            s.arena.node(field(&s, &["spec", "tolerations"])),
            Node::List {
                rel: ListRel::Atomic,
                ..
            }
        ));
        assert!(matches!(
            s.arena.node(field(&s, &["metadata", "finalizers"])),
            Node::List {
                rel: ListRel::Set,
                ..
            }
        ));
        assert!(matches!(
            s.arena.node(field(&s, &["metadata", "labels"])),
            Node::Map {
                atomic: false,
                elem: Some(_),
                ..
            }
        ));
        assert!(matches!(
            s.arena.node(field(&s, &["spec", "nodeSelector"])),
            Node::Map { atomic: true, .. }
        ));
        assert!(matches!(
            s.arena
                .node(field(&s, &["spec", "containers", "*", "image"])),
            Node::Scalar
        ));
    }

    #[test]
    fn workloads_reuse_the_pod_template_and_selectors_are_atomic() {
        let s = for_kind("apps", "Deployment");
        assert!(matches!(
            s.arena.node(field(&s, &["spec", "selector"])),
            Node::Map { atomic: true, .. }
        ));
        assert!(matches!(
            s.arena
                .node(field(&s, &["spec", "template", "spec", "containers"])),
            Node::List {
                rel: ListRel::Map { .. },
                ..
            }
        ));
        assert!(matches!(
            s.arena.node(field(&s, &["spec", "replicas"])),
            Node::Scalar
        ));
        let cj = for_kind("batch", "CronJob");
        assert!(matches!(
            cj.arena.node(field(
                &cj,
                &["spec", "jobTemplate", "spec", "template", "spec", "volumes"]
            )),
            Node::List {
                rel: ListRel::Map { .. },
                ..
            }
        ));
        let svc = for_kind("", "Service");
        match svc.arena.node(field(&svc, &["spec", "ports"])) {
            Node::List {
                rel: ListRel::Map { keys, .. },
                ..
            } => assert_eq!(keys, &["port", "protocol"]),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            svc.arena.node(field(&svc, &["spec", "selector"])),
            Node::Map { atomic: true, .. }
        ));
    }

    #[test]
    fn unknown_kinds_are_untyped_and_status_kinds_reset_status() {
        let u = for_kind("example.com", "Widget");
        assert_eq!(u.root, DEDUCED);
        assert!(u.reset_main.is_empty());
        let pod = for_kind("", "Pod");
        assert!(pod.reset_main.has(&Path::fields(&["status"]).0));
        assert!(pod.reset_status.has(&Path::fields(&["spec"]).0));
        assert!(for_kind("", "ConfigMap").reset_main.is_empty());
    }
}
