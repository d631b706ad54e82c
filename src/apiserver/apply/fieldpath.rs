//! Field paths and field sets, and their `FieldsV1` encoding in `metadata.managedFields`.
//!
//! A path is a list of elements: a field name (`f:spec`), an associative-list item by
//! its key fields (`k:{"name":"nginx"}`), a set item by value (`v:"a"`) or a list item
//! by index (`i:0`). A [`FieldSet`] is a trie of such paths; a node is a member when the
//! path ending there is in the set (`"."` in `FieldsV1` for a node that also has
//! children). Ordering and printing follow upstream's structured-merge-diff, since both
//! show up in API responses (managedFields key order, conflict messages).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

/// One step of a field path.
#[derive(Debug, Clone)]
pub enum PathElement {
    /// A field of a map or struct.
    Field(String),
    /// An item of an associative list, by its key fields (sorted by name).
    Key(Vec<(String, Value)>),
    /// An item of a set (a list of scalars), by value.
    Value(Value),
    /// An item of a list by position (only read from `FieldsV1`; never produced).
    Index(i64),
}

/// A `FieldsV1` document that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldsError {
    /// The document (or one of its nodes) is not a JSON object.
    #[error("expected an object in the field set")]
    NotAnObject,
    /// A key without a known `f:`/`k:`/`v:`/`i:` prefix.
    #[error("unknown path element prefix in {0:?}")]
    UnknownPrefix(String),
    /// A `k:`, `v:` or `i:` element whose payload does not parse.
    #[error("malformed path element {0:?}")]
    Malformed(String),
}

fn type_rank(v: &Value) -> u8 {
    match v {
        Value::Number(_) => 0,
        Value::String(_) => 1,
        Value::Bool(_) => 2,
        Value::Array(_) => 3,
        Value::Object(_) => 4,
        Value::Null => 5,
    }
}

/// A total order on JSON values: numbers, then strings, booleans, lists, maps, null
/// (structured-merge-diff's `value.Compare`).
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i.cmp(&j),
            _ => {
                let (f, g) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                f.partial_cmp(&g).unwrap_or(Ordering::Equal)
            }
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (i, j) in x.iter().zip(y) {
                let c = compare_values(i, j);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut xs: Vec<_> = x.iter().collect();
            let mut ys: Vec<_> = y.iter().collect();
            xs.sort_by(|p, q| p.0.cmp(q.0));
            ys.sort_by(|p, q| p.0.cmp(q.0));
            for ((kx, vx), (ky, vy)) in xs.iter().zip(&ys) {
                let c = kx.cmp(ky).then_with(|| compare_values(vx, vy));
                if c != Ordering::Equal {
                    return c;
                }
            }
            xs.len().cmp(&ys.len())
        }
        (Value::Null, Value::Null) => Ordering::Equal,
        _ => type_rank(a).cmp(&type_rank(b)),
    }
}

impl PathElement {
    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The `FieldsV1` key of this element (`f:name`, `k:{...}`, `v:...`, `i:N`).
    pub fn to_fields_key(&self) -> String {
        match self {
            PathElement::Field(n) => format!("f:{n}"),
            PathElement::Key(k) => {
                let m: Map<String, Value> = k.iter().cloned().collect();
                format!("k:{}", Value::Object(m))
            }
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a `FieldsV1` key.
    pub fn from_fields_key(s: &str) -> Result<PathElement, FieldsError> {
        let bad = || FieldsError::Malformed(s.to_string());
        if let Some(n) = s.strip_prefix("f:") {
            return Ok(PathElement::Field(n.to_string()));
        }
        if let Some(k) = s.strip_prefix("k:") {
            let v: Value = serde_json::from_str(k).map_err(|_| bad())?;
            let Value::Object(m) = v else {
                return Err(bad());
            };
            return Ok(PathElement::key(m.into_iter().collect()));
        }
        if let Some(v) = s.strip_prefix("v:") {
            return Ok(PathElement::Value(
                serde_json::from_str(v).map_err(|_| bad())?,
            ));
        }
        if let Some(i) = s.strip_prefix("i:") {
            return Ok(PathElement::Index(i.parse().map_err(|_| bad())?));
        }
        Err(FieldsError::UnknownPrefix(s.to_string()))
    }

    /// A key element with its fields sorted by name.
    pub fn key(mut fields: Vec<(String, Value)>) -> PathElement {
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        PathElement::Key(fields)
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((ka, va), (kb, vb)) in a.iter().zip(b) {
                    let c = ka.cmp(kb).then_with(|| compare_values(va, vb));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => compare_values(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

impl fmt::Display for PathElement {
    /// Upstream's path printing: `.name`, `[k=v,k2=v2]`, `[=v]`, `[0]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(n) => write!(f, ".{n}"),
            PathElement::Key(k) => {
                let parts: Vec<String> = k.iter().map(|(n, v)| format!("{n}={v}")).collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={v}]"),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A field path from the object root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Path(pub Vec<PathElement>);

impl Path {
    /// A path of field names (`Path::fields(&["spec", "replicas"])`).
    pub fn fields(names: &[&str]) -> Path {
        Path(
            names
                .iter()
                .map(|n| PathElement::Field((*n).to_string()))
                .collect(),
        )
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.0 {
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// A set of field paths, as a trie.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    /// Elements that end a path in the set at this node.
    members: std::collections::BTreeSet<PathElement>,
    /// Sub-sets below an element (never empty).
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> FieldSet {
        FieldSet::default()
    }

    /// A set of the given paths.
    pub fn from_paths(paths: &[Path]) -> FieldSet {
        let mut s = FieldSet::new();
        for p in paths {
            s.insert(&p.0);
        }
        s
    }

    /// Whether the set has no paths.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    /// Adds a path (the empty path, the whole object, is never tracked).
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    /// Whether `path` is in the set.
    pub fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    /// The sub-set below `pe` (paths with that first element, without it).
    pub fn with_prefix(&self, pe: &PathElement) -> Option<&FieldSet> {
        self.children.get(pe)
    }

    /// Paths in either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, c) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(c),
                None => c.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out
    }

    /// Paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        out.members = self.members.intersection(&other.members).cloned().collect();
        for (pe, c) in &self.children {
            if let Some(o) = other.children.get(pe) {
                let i = c.intersection(o);
                if !i.is_empty() {
                    out.children.insert(pe.clone(), i);
                }
            }
        }
        out
    }

    /// Paths of `self` that are not paths of `other` (exact paths only: a member of
    /// `other` does not remove the paths below it).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        out.members = self.members.difference(&other.members).cloned().collect();
        for (pe, c) in &self.children {
            let d = match other.children.get(pe) {
                Some(o) => c.difference(o),
                None => c.clone(),
            };
            if !d.is_empty() {
                out.children.insert(pe.clone(), d);
            }
        }
        out
    }

    /// Paths of `self` that are neither in `other` nor below a member of `other`.
    pub fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        out.members = self.members.difference(&other.members).cloned().collect();
        for (pe, c) in &self.children {
            if other.members.contains(pe) {
                continue;
            }
            let d = match other.children.get(pe) {
                Some(o) => c.recursive_difference(o),
                None => c.clone(),
            };
            if !d.is_empty() {
                out.children.insert(pe.clone(), d);
            }
        }
        out
    }

    /// Every path, members of a node before the paths below it, each group in element
    /// order (the order upstream lists conflicts in).
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Path>) {
        for m in &self.members {
            let mut p = prefix.clone();
            p.push(m.clone());
            out.push(Path(p));
        }
        for (pe, c) in &self.children {
            prefix.push(pe.clone());
            c.collect(prefix, out);
            prefix.pop();
        }
    }

    /// Adds `pe` as a member at this node (for schema-driven fix-ups).
    pub(crate) fn add_member(&mut self, pe: PathElement) {
        self.members.insert(pe);
    }

    /// Mutable access to a child set, for schema-driven fix-ups.
    pub(crate) fn children_mut(&mut self) -> impl Iterator<Item = (&PathElement, &mut FieldSet)> {
        self.children.iter_mut()
    }

    /// The `FieldsV1` JSON of the set.
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.emit(false))
    }

    fn emit(&self, include_self: bool) -> Map<String, Value> {
        let mut out = Map::new();
        if include_self {
            out.insert(".".into(), Value::Object(Map::new()));
        }
        // Members and children interleave in element order; an element that is both a
        // member and has children is written once, with ".".
        let mut keys: Vec<&PathElement> = self.members.iter().chain(self.children.keys()).collect();
        keys.sort();
        keys.dedup();
        for pe in keys {
            let member = self.members.contains(pe);
            let v = match self.children.get(pe) {
                Some(c) => c.emit(member),
                None => Map::new(),
            };
            out.insert(pe.to_fields_key(), Value::Object(v));
        }
        out
    }

    /// Decodes a `FieldsV1` document.
    pub fn from_fields_v1(v: &Value) -> Result<FieldSet, FieldsError> {
        let Value::Object(m) = v else {
            return Err(FieldsError::NotAnObject);
        };
        let mut s = FieldSet::new();
        for (k, child) in m {
            if k == "." {
                continue;
            }
            let pe = PathElement::from_fields_key(k)?;
            let Value::Object(cm) = child else {
                return Err(FieldsError::NotAnObject);
            };
            if cm.is_empty() || cm.contains_key(".") {
                s.members.insert(pe.clone());
            }
            let sub = FieldSet::from_fields_v1(child)?;
            if !sub.is_empty() {
                s.children.insert(pe, sub);
            }
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(n: &str) -> PathElement {
        PathElement::Field(n.into())
    }

    #[test]
    fn fields_v1_round_trip_keeps_dot_members_and_order() {
        let doc = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:containers": {
                    "k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {}},
                },
                "f:finalizers": {"v:\"a\"": {}},
                "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}},
                "f:x": {"i:0": {}},
            }
        });
        let s = FieldSet::from_fields_v1(&doc).unwrap();
        assert!(s.has(&[f("metadata"), f("labels")]));
        assert!(s.has(&[f("metadata"), f("labels"), f("app")]));
        assert!(!s.has(&[f("metadata")]));
        let nginx = PathElement::key(vec![("name".into(), json!("nginx"))]);
        assert!(s.has(&[f("spec"), f("containers"), nginx.clone()]));
        assert!(s.has(&[f("spec"), f("containers"), nginx, f("image")]));
        assert!(s.has(&[f("spec"), f("finalizers"), PathElement::Value(json!("a"))]));
        assert!(s.has(&[f("spec"), f("x"), PathElement::Index(0)]));
        assert_eq!(s.to_fields_v1(), doc);
        assert_eq!(
            serde_json::to_string(&s.to_fields_v1()).unwrap(),
            serde_json::to_string(&doc).unwrap()
        );
    }

    #[test]
    fn fields_v1_rejects_unknown_prefixes_and_non_objects() {
        assert_eq!(
            FieldSet::from_fields_v1(&json!({"x:a": {}})),
            Err(FieldsError::UnknownPrefix("x:a".into()))
        );
        assert_eq!(
            FieldSet::from_fields_v1(&json!({"f:a": 1})),
            Err(FieldsError::NotAnObject)
        );
        assert!(FieldSet::from_fields_v1(&json!({"k:nope": {}})).is_err());
    }

    #[test]
    fn element_order_is_fields_keys_values_indexes() {
        let mut v = [
            PathElement::Index(0),
            PathElement::Value(json!("b")),
            PathElement::key(vec![("name".into(), json!("a"))]),
            f("z"),
            PathElement::Value(json!(1)),
            f("a"),
        ];
        v.sort();
        let printed: Vec<String> = v.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            printed,
            [".a", ".z", "[name=\"a\"]", "[=1]", "[=\"b\"]", "[0]"]
        );
    }

    #[test]
    fn path_printing_matches_upstream() {
        let p = Path(vec![
            f("spec"),
            f("containers"),
            PathElement::key(vec![
                ("protocol".into(), json!("TCP")),
                ("containerPort".into(), json!(80)),
            ]),
            f("name"),
        ]);
        assert_eq!(
            p.to_string(),
            ".spec.containers[containerPort=80,protocol=\"TCP\"].name"
        );
    }

    #[test]
    fn set_operations() {
        let a = FieldSet::from_paths(&[
            Path::fields(&["spec", "replicas"]),
            Path::fields(&["spec", "template"]),
            Path::fields(&["spec", "template", "x"]),
            Path::fields(&["data", "k"]),
        ]);
        let b = FieldSet::from_paths(&[
            Path::fields(&["spec", "template"]),
            Path::fields(&["data", "k"]),
        ]);
        let d = a.difference(&b);
        assert_eq!(
            d.paths(),
            vec![
                Path::fields(&["spec", "replicas"]),
                Path::fields(&["spec", "template", "x"])
            ]
        );
        let r = a.recursive_difference(&b);
        assert_eq!(r.paths(), vec![Path::fields(&["spec", "replicas"])]);
        let i = a.intersection(&b);
        assert_eq!(i, b);
        assert_eq!(a.union(&b), a);
        assert!(FieldSet::new().is_empty());
        assert!(a.difference(&a).is_empty());
    }
}
