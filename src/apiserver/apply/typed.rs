//! Schema-aware operations on JSON objects, as structured-merge-diff's `typed` package
//! does them: validation of an applied configuration, the set of fields a value sets,
//! the merge of a configuration into a live object, the comparison of two objects
//! (added / modified / removed fields) and the removal of a set of fields.

use serde_json::{Map, Value};

use super::fieldpath::{FieldSet, Path, PathElement};
use super::schema::{Arena, Atom, DEDUCED, ListRel, NodeId};

/// What changed between two objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Paths present only in the new object (with the nodes that appeared).
    pub added: FieldSet,
    /// Leaves whose value changed.
    pub modified: FieldSet,
    /// Paths present only in the old object.
    pub removed: FieldSet,
}

impl Comparison {
    /// Drops the paths under `fields` (fields a strategy resets are never compared).
    pub fn exclude(mut self, fields: &FieldSet) -> Comparison {
        if !fields.is_empty() {
            self.added = self.added.recursive_difference(fields);
            self.modified = self.modified.recursive_difference(fields);
            self.removed = self.removed.recursive_difference(fields);
        }
        self
    }
}

/// A value of some type in an arena.
#[derive(Clone, Copy)]
pub struct Typed<'a> {
    /// The types.
    pub arena: &'a Arena,
    /// The root type.
    pub root: NodeId,
}

fn field_type(atom: &Atom<'_>, key: &str) -> Option<NodeId> {
    match atom {
        Atom::Map { fields, elem, .. } => fields.and_then(|f| f.get(key).copied()).or(*elem),
        _ => None,
    }
}

fn is_declared(atom: &Atom<'_>, key: &str) -> bool {
    matches!(atom, Atom::Map { fields: Some(f), .. } if f.contains_key(key))
}

/// The path element identifying a list item, per the list's relationship.
fn item_element(rel: &ListRel, item: &Value) -> Result<PathElement, String> {
    match rel {
        ListRel::Set => match item {
            Value::Object(_) | Value::Array(_) => {
                Err("only scalar items are supported in sets".to_string())
            }
            v => Ok(PathElement::Value(v.clone())),
        },
        ListRel::Map { keys, defaults } => {
            let Value::Object(m) = item else {
                return Err(format!("expected map, got {}", kind_of(item)));
            };
            let mut fields = Vec::with_capacity(keys.len());
            for k in keys {
                match m
                    .get(k)
                    .filter(|v| !v.is_null())
                    .or_else(|| defaults.get(k))
                {
                    Some(v) => fields.push((k.clone(), v.clone())),
                    None => {
                        return Err(format!(
                            "associative list with keys has an element that omits key field {k:?} (and doesn't have default value)"
                        ));
                    }
                }
            }
            Ok(PathElement::key(fields))
        }
        ListRel::Atomic => Err("invalid indexing of non-associative list".to_string()),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

fn at(path: &[PathElement], pe: PathElement) -> Vec<PathElement> {
    let mut p = path.to_vec();
    p.push(pe);
    p
}

/// Formats validation errors as upstream's `ValidationErrors.Error()` does.
pub fn join_errors(errs: &[String]) -> String {
    if errs.len() == 1 {
        return errs[0].clone();
    }
    let mut lines = vec!["errors:".to_string()];
    lines.extend(errs.iter().map(|e| format!("  {e}")));
    lines.join("\n")
}

impl<'a> Typed<'a> {
    /// Checks `value` against the schema: undeclared fields, shapes, list keys, and
    /// (unless `allow_duplicates`) duplicate list items. Errors are `path: message`.
    pub fn validate(&self, value: &Value, allow_duplicates: bool) -> Vec<String> {
        let mut errs = Vec::new();
        self.validate_at(self.root, &[], value, allow_duplicates, &mut errs);
        errs
    }

    fn validate_at(
        &self,
        id: NodeId,
        path: &[PathElement],
        v: &Value,
        dups: bool,
        errs: &mut Vec<String>,
    ) {
        if v.is_null() {
            return;
        }
        let p = Path(path.to_vec());
        match self.arena.resolve(id, Some(v)) {
            Atom::Scalar => {
                if v.is_object() || v.is_array() {
                    errs.push(format!("{p}: expected scalar, got {}", kind_of(v)));
                }
            }
            atom @ Atom::Map { fields, elem, .. } => {
                let Value::Object(m) = v else {
                    errs.push(format!("{p}: expected map, got {}", kind_of(v)));
                    return;
                };
                for (k, cv) in m {
                    let cp = at(path, PathElement::Field(k.clone()));
                    match field_type(&atom, k) {
                        Some(t) => self.validate_at(t, &cp, cv, dups, errs),
                        None if fields.is_some() && elem.is_none() => {
                            errs.push(format!("{}: field not declared in schema", Path(cp)));
                        }
                        None => {}
                    }
                }
            }
            Atom::List { elem, rel } => {
                let Value::Array(items) = v else {
                    errs.push(format!("{p}: expected list, got {}", kind_of(v)));
                    return;
                };
                if *rel == ListRel::Atomic {
                    for (i, item) in items.iter().enumerate() {
                        self.validate_at(
                            elem,
                            &at(path, PathElement::Index(i as i64)),
                            item,
                            dups,
                            errs,
                        );
                    }
                    return;
                }
                let mut seen: Vec<PathElement> = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item_element(rel, item) {
                        Ok(pe) => {
                            if seen.contains(&pe) {
                                if !dups {
                                    errs.push(format!("{p}: duplicate entries for key {pe}"));
                                }
                                continue;
                            }
                            self.validate_at(elem, &at(path, pe.clone()), item, dups, errs);
                            seen.push(pe);
                        }
                        Err(e) => errs.push(format!("{p}: element {i}: {e}")),
                    }
                }
            }
        }
    }

    /// The fields `value` sets (structured-merge-diff's `ToFieldSet`): leaves, atomic
    /// lists and maps, list items, empty or null fields, and keys of maps (as opposed
    /// to declared struct fields).
    pub fn to_field_set(&self, value: &Value) -> FieldSet {
        let mut s = FieldSet::new();
        self.fields_at(self.root, &mut Vec::new(), value, &mut s);
        s
    }

    fn fields_at(&self, id: NodeId, path: &mut Vec<PathElement>, v: &Value, s: &mut FieldSet) {
        match self.arena.resolve(id, Some(v)) {
            Atom::Scalar => s.insert(path),
            atom @ Atom::Map { atomic, .. } => {
                if atomic {
                    s.insert(path);
                    return;
                }
                let Value::Object(m) = v else { return };
                for (k, cv) in m {
                    let t = field_type(&atom, k).unwrap_or(DEDUCED);
                    path.push(PathElement::Field(k.clone()));
                    self.fields_at(t, path, cv, s);
                    let empty = cv.is_null() || cv.as_object().is_some_and(Map::is_empty);
                    if empty || !is_declared(&atom, k) {
                        s.insert(path);
                    }
                    path.pop();
                }
            }
            Atom::List { elem, rel } => {
                if *rel == ListRel::Atomic {
                    s.insert(path);
                    return;
                }
                let Value::Array(items) = v else { return };
                let pes: Vec<Option<PathElement>> =
                    items.iter().map(|i| item_element(rel, i).ok()).collect();
                for (i, (item, pe)) in items.iter().zip(&pes).enumerate() {
                    let Some(pe) = pe else { continue };
                    let dup = pes
                        .iter()
                        .enumerate()
                        .any(|(j, o)| j != i && o.as_ref() == Some(pe));
                    path.push(pe.clone());
                    if dup {
                        // Duplicated items are owned whole, never field by field.
                        s.insert(path);
                    } else {
                        self.fields_at(elem, path, item, s);
                        s.insert(path);
                    }
                    path.pop();
                }
            }
        }
    }

    /// Merges `config` into `live` (the configuration's values win; maps merge key by
    /// key, associative lists item by item, atomic values are replaced).
    pub fn merge(&self, live: &Value, config: &Value) -> Result<Value, Vec<String>> {
        let mut errs = Vec::new();
        let out = self.walk(
            self.root,
            &mut Vec::new(),
            Some(live),
            Some(config),
            &mut NoHooks,
            &mut errs,
        );
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(out.unwrap_or_else(|| Value::Object(Map::new())))
    }

    /// What changed from `old` to `new`.
    pub fn compare(&self, old: &Value, new: &Value) -> Result<Comparison, Vec<String>> {
        let mut errs = Vec::new();
        let mut c = CompareHooks::default();
        self.walk(
            self.root,
            &mut Vec::new(),
            Some(old),
            Some(new),
            &mut c,
            &mut errs,
        );
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(c.0)
    }

    /// The list item identities of `items`; errors (and, unless allowed, duplicates)
    /// are reported. Duplicated identities map to `null` in `observed`.
    fn index_items<'v>(
        &self,
        rel: &ListRel,
        items: &'v [Value],
        allow_duplicates: bool,
        path: &[PathElement],
        errs: &mut Vec<String>,
    ) -> (Vec<PathElement>, Vec<(PathElement, &'v Value)>) {
        static NULL: Value = Value::Null;
        let mut pes = Vec::new();
        let mut observed: Vec<(PathElement, &Value)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let pe = match item_element(rel, item) {
                Ok(pe) => pe,
                Err(e) => {
                    errs.push(format!("{}: element {i}: {e}", Path(path.to_vec())));
                    continue;
                }
            };
            if let Some(slot) = observed.iter_mut().find(|(p, _)| *p == pe) {
                if !allow_duplicates {
                    errs.push(format!(
                        "{}: duplicate entries for key {pe}",
                        Path(path.to_vec())
                    ));
                    continue;
                }
                slot.1 = &NULL;
            } else {
                observed.push((pe.clone(), item));
            }
            pes.push(pe);
        }
        (pes, observed)
    }

    /// The merge walk (structured-merge-diff's `mergingWalker`): leaves call
    /// `hooks.leaf`, descended nodes call `hooks.post` afterwards; returns the merged
    /// value (`None` when nothing remains).
    fn walk(
        &self,
        id: NodeId,
        path: &mut Vec<PathElement>,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        hooks: &mut dyn Hooks,
        errs: &mut Vec<String>,
    ) -> Option<Value> {
        let leaf = |hooks: &mut dyn Hooks, path: &[PathElement]| {
            hooks.leaf(path, lhs, rhs);
            rhs.or(lhs).cloned()
        };
        // Untyped values whose shapes differ on the two sides are replaced whole.
        if let (Some(l), Some(r)) = (lhs, rhs)
            && matches!(self.arena.node(id), super::schema::Node::Deduced)
            && kind_of(l) != kind_of(r)
        {
            return leaf(hooks, path);
        }
        let atom = self.arena.resolve(id, rhs.or(lhs));
        match atom {
            Atom::Scalar => leaf(hooks, path),
            Atom::Map { atomic, .. } => {
                let lm = lhs.and_then(Value::as_object);
                let rm = rhs.and_then(Value::as_object);
                let empty = lm.is_none_or(Map::is_empty) && rm.is_none_or(Map::is_empty);
                if atomic || empty {
                    return leaf(hooks, path);
                }
                let mut out = Map::new();
                let keys: Vec<&String> = lm
                    .into_iter()
                    .flat_map(|m| m.keys())
                    .chain(
                        rm.into_iter()
                            .flat_map(|m| m.keys())
                            .filter(|k| !lm.is_some_and(|l| l.contains_key(*k))),
                    )
                    .collect();
                for k in keys {
                    let t = field_type(&atom, k).unwrap_or(DEDUCED);
                    path.push(PathElement::Field(k.clone()));
                    let child = self.walk(
                        t,
                        path,
                        lm.and_then(|m| m.get(k)),
                        rm.and_then(|m| m.get(k)),
                        hooks,
                        errs,
                    );
                    path.pop();
                    if let Some(c) = child {
                        out.insert(k.clone(), c);
                    }
                }
                hooks.post(path, lhs, rhs);
                (!out.is_empty()).then_some(Value::Object(out))
            }
            Atom::List { elem, rel } => {
                let ll = lhs.and_then(Value::as_array).map(Vec::as_slice);
                let rl = rhs.and_then(Value::as_array).map(Vec::as_slice);
                let empty =
                    ll.is_none_or(<[Value]>::is_empty) && rl.is_none_or(<[Value]>::is_empty);
                if *rel == ListRel::Atomic || empty {
                    return leaf(hooks, path);
                }
                let before = errs.len();
                let (rpes, robs) = self.index_items(rel, rl.unwrap_or(&[]), false, path, errs);
                let (lpes, lobs) = self.index_items(rel, ll.unwrap_or(&[]), true, path, errs);
                if errs.len() > before {
                    return None;
                }
                let out = self.merge_items(
                    elem,
                    path,
                    &lpes,
                    &lobs,
                    ll.unwrap_or(&[]),
                    &rpes,
                    &robs,
                    hooks,
                    errs,
                );
                hooks.post(path, lhs, rhs);
                (!out.is_empty()).then_some(Value::Array(out))
            }
        }
    }

    /// Orders merged list items: items only in `lhs` keep their place, items in both
    /// follow the order of `rhs`, items only in `rhs` come where `rhs` puts them.
    #[allow(clippy::too_many_arguments)]
    fn merge_items(
        &self,
        elem: NodeId,
        path: &mut Vec<PathElement>,
        lpes: &[PathElement],
        lobs: &[(PathElement, &Value)],
        litems: &[Value],
        rpes: &[PathElement],
        robs: &[(PathElement, &Value)],
        hooks: &mut dyn Hooks,
        errs: &mut Vec<String>,
    ) -> Vec<Value> {
        let find = |obs: &[(PathElement, &Value)], pe: &PathElement| -> Option<Value> {
            obs.iter().find(|(p, _)| p == pe).map(|(_, v)| (*v).clone())
        };
        let mut shared: std::collections::VecDeque<&PathElement> = rpes
            .iter()
            .filter(|pe| lobs.iter().any(|(p, _)| p == *pe))
            .collect();
        let mut next_shared = shared.pop_front();
        let mut merged_rhs: Vec<PathElement> = Vec::new();
        let mut out = Vec::new();
        let (mut li, mut ri) = (0usize, 0usize);
        let item = |this: &Self,
                    pe: &PathElement,
                    l: Option<Value>,
                    r: Option<Value>,
                    path: &mut Vec<PathElement>,
                    hooks: &mut dyn Hooks,
                    errs: &mut Vec<String>,
                    out: &mut Vec<Value>| {
            path.push(pe.clone());
            if let Some(v) = this.walk(elem, path, l.as_ref(), r.as_ref(), hooks, errs) {
                out.push(v);
            }
            path.pop();
        };
        while li < lpes.len() || ri < rpes.len() {
            if li < lpes.len() && ri < rpes.len() {
                let pe = &lpes[li];
                if *pe == rpes[ri] {
                    merged_rhs.push(pe.clone());
                    item(
                        self,
                        pe,
                        find(lobs, pe),
                        find(robs, pe),
                        path,
                        hooks,
                        errs,
                        &mut out,
                    );
                    li += 1;
                    ri += 1;
                    next_shared = shared.pop_front();
                    continue;
                }
                if robs.iter().any(|(p, _)| p == pe) && next_shared.is_some_and(|n| n != pe) {
                    // A shared item, but not the one due next: it comes in rhs order.
                    li += 1;
                    continue;
                }
            }
            if li < lpes.len() {
                let pe = &lpes[li];
                if !robs.iter().any(|(p, _)| p == pe) {
                    item(
                        self,
                        pe,
                        Some(litems[li].clone()),
                        None,
                        path,
                        hooks,
                        errs,
                        &mut out,
                    );
                    li += 1;
                    continue;
                } else if merged_rhs.contains(pe) {
                    li += 1;
                    continue;
                }
            }
            if ri < rpes.len() {
                let pe = &rpes[ri];
                merged_rhs.push(pe.clone());
                item(
                    self,
                    pe,
                    find(lobs, pe),
                    find(robs, pe),
                    path,
                    hooks,
                    errs,
                    &mut out,
                );
                ri += 1;
                if next_shared.is_some_and(|n| n == pe) {
                    next_shared = shared.pop_front();
                }
            }
        }
        out
    }

    /// `value` without the paths in `remove` (a list or map left empty disappears).
    pub fn remove(&self, value: &Value, remove: &FieldSet) -> Value {
        self.remove_at(self.root, value, remove)
            .unwrap_or_else(|| Value::Object(Map::new()))
    }

    fn remove_at(&self, id: NodeId, v: &Value, remove: &FieldSet) -> Option<Value> {
        match self.arena.resolve(id, Some(v)) {
            Atom::Scalar => Some(v.clone()),
            atom @ Atom::Map { atomic, .. } => {
                let Value::Object(m) = v else {
                    return Some(v.clone());
                };
                if atomic || m.is_empty() {
                    return Some(v.clone());
                }
                let mut out = Map::new();
                for (k, cv) in m {
                    let pe = PathElement::Field(k.clone());
                    if remove.has(std::slice::from_ref(&pe)) {
                        continue;
                    }
                    match remove.with_prefix(&pe) {
                        Some(sub) if !sub.is_empty() => {
                            let t = field_type(&atom, k).unwrap_or(DEDUCED);
                            if let Some(c) = self.remove_at(t, cv, sub) {
                                out.insert(k.clone(), c);
                            }
                        }
                        _ => {
                            out.insert(k.clone(), cv.clone());
                        }
                    }
                }
                (!out.is_empty()).then_some(Value::Object(out))
            }
            Atom::List { elem, rel } => {
                let Value::Array(items) = v else {
                    return Some(v.clone());
                };
                if *rel == ListRel::Atomic || items.is_empty() {
                    return Some(v.clone());
                }
                let mut out = Vec::new();
                for item in items {
                    let Ok(pe) = item_element(rel, item) else {
                        out.push(item.clone());
                        continue;
                    };
                    if remove.has(std::slice::from_ref(&pe)) {
                        continue;
                    }
                    match remove.with_prefix(&pe) {
                        Some(sub) if !sub.is_empty() => {
                            if let Some(c) = self.remove_at(elem, item, sub) {
                                out.push(c);
                            }
                        }
                        _ => out.push(item.clone()),
                    }
                }
                (!out.is_empty()).then_some(Value::Array(out))
            }
        }
    }

    /// `set` with every declared struct field that has children made a member too
    /// (upstream's `EnsureNamedFieldsAreMembers`, used when pruning).
    pub fn named_fields_as_members(&self, set: &FieldSet) -> FieldSet {
        let mut out = set.clone();
        self.named_at(self.root, &mut out);
        out
    }

    fn named_at(&self, id: NodeId, set: &mut FieldSet) {
        let atom = self.arena.resolve(id, None);
        let mut add = Vec::new();
        for (pe, child) in set.children_mut() {
            let t = match (pe, &atom) {
                (PathElement::Field(n), Atom::Map { .. }) => {
                    if is_declared(&atom, n) {
                        add.push(pe.clone());
                    }
                    field_type(&atom, n).unwrap_or(DEDUCED)
                }
                (PathElement::Key(_), Atom::List { elem, .. }) => *elem,
                _ => DEDUCED,
            };
            self.named_at(t, child);
        }
        for pe in add {
            set.add_member(pe);
        }
    }
}

/// Callbacks of the merge walk.
trait Hooks {
    fn leaf(&mut self, path: &[PathElement], lhs: Option<&Value>, rhs: Option<&Value>);
    fn post(&mut self, path: &[PathElement], lhs: Option<&Value>, rhs: Option<&Value>);
}

struct NoHooks;

impl Hooks for NoHooks {
    fn leaf(&mut self, _: &[PathElement], _: Option<&Value>, _: Option<&Value>) {}
    fn post(&mut self, _: &[PathElement], _: Option<&Value>, _: Option<&Value>) {}
}

#[derive(Default)]
struct CompareHooks(Comparison);

impl Hooks for CompareHooks {
    fn leaf(&mut self, path: &[PathElement], lhs: Option<&Value>, rhs: Option<&Value>) {
        match (lhs, rhs) {
            (None, _) => self.0.added.insert(path),
            (_, None) => self.0.removed.insert(path),
            (Some(l), Some(r)) if l != r => self.0.modified.insert(path),
            _ => {}
        }
    }

    fn post(&mut self, path: &[PathElement], lhs: Option<&Value>, rhs: Option<&Value>) {
        match (lhs, rhs) {
            (None, _) => self.0.added.insert(path),
            (_, None) => self.0.removed.insert(path),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::schema::for_kind;
    use super::*;
    use serde_json::json;

    fn paths(s: &FieldSet) -> Vec<String> {
        s.paths().iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn field_set_of_a_pod_config() {
        let s = for_kind("", "Pod");
        let t = Typed {
            arena: &s.arena,
            root: s.root,
        };
        let cfg = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}],
                "resources": {}}],
                "tolerations": [{"key": "k"}]}
        });
        assert!(t.validate(&cfg, false).is_empty());
        let fs = t.to_field_set(&cfg);
        let got = paths(&fs);
        assert!(got.contains(&".metadata.labels.app".to_string()), "{got:?}");
        assert!(!got.contains(&".metadata.labels".to_string()), "{got:?}");
        assert!(
            got.contains(&".spec.containers[name=\"c\"]".to_string()),
            "{got:?}"
        );
        assert!(got.contains(&".spec.containers[name=\"c\"].resources".to_string()));
        assert!(got.contains(
            &".spec.containers[name=\"c\"].ports[containerPort=80,protocol=\"TCP\"]".to_string()
        ));
        assert!(
            got.contains(&".spec.tolerations".to_string()),
            "atomic list: {got:?}"
        );
        assert!(!got.iter().any(|p| p.starts_with(".spec.tolerations[")));
    }

    #[test]
    fn validation_reports_undeclared_fields_duplicates_and_missing_keys() {
        let s = for_kind("", "Pod");
        let t = Typed {
            arena: &s.arena,
            root: s.root,
        };
        let cfg = json!({"spec": {"foo": 1, "containers": [{"name": "a"}, {"name": "a"}, {"image": "x"}]}});
        let errs = t.validate(&cfg, false);
        assert!(
            errs.contains(&".spec.foo: field not declared in schema".to_string()),
            "{errs:?}"
        );
        assert!(
            errs.contains(&".spec.containers: duplicate entries for key [name=\"a\"]".to_string())
        );
        assert!(errs.contains(&".spec.containers: element 2: associative list with keys has an element that omits key field \"name\" (and doesn't have default value)".to_string()));
        assert_eq!(
            join_errors(&errs[..2]),
            format!("errors:\n  {}\n  {}", errs[0], errs[1])
        );
        assert!(
            t.validate(
                &json!({"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}),
                true
            )
            .is_empty()
        );
    }

    #[test]
    fn merge_by_key_keeps_live_items_and_replaces_atomic_lists() {
        let s = for_kind("", "Pod");
        let t = Typed {
            arena: &s.arena,
            root: s.root,
        };
        let live = json!({"spec": {
            "containers": [{"name": "a", "image": "a1", "tty": true}, {"name": "b", "image": "b1"}],
            "tolerations": [{"key": "x"}, {"key": "y"}]}});
        let cfg = json!({"spec": {
            "containers": [{"name": "c", "image": "c1"}, {"name": "a", "image": "a2"}],
            "tolerations": [{"key": "z"}]}});
        let m = t.merge(&live, &cfg).unwrap();
        assert_eq!(
            m,
            json!({"spec": {
                "containers": [{"name": "c", "image": "c1"}, {"name": "a", "image": "a2", "tty": true},
                    {"name": "b", "image": "b1"}],
                "tolerations": [{"key": "z"}]}})
        );
        let c = t.compare(&live, &m).unwrap();
        assert_eq!(
            paths(&c.modified),
            [".spec.tolerations", ".spec.containers[name=\"a\"].image"]
        );
        assert_eq!(
            paths(&c.added),
            [
                ".spec.containers[name=\"c\"]",
                ".spec.containers[name=\"c\"].image",
                ".spec.containers[name=\"c\"].name"
            ]
        );
        assert!(c.removed.is_empty());
        let err = t
            .merge(
                &live,
                &json!({"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}),
            )
            .unwrap_err();
        assert_eq!(
            err,
            [".spec.containers: duplicate entries for key [name=\"a\"]"]
        );
    }

    #[test]
    fn compare_records_new_maps_as_added_nodes_and_removals() {
        let s = for_kind("", "ConfigMap");
        let t = Typed {
            arena: &s.arena,
            root: s.root,
        };
        let old = json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}});
        let new = json!({"metadata": {"name": "c", "labels": {"x": "y"}}, "data": {"a": "1"}});
        let c = t.compare(&old, &new).unwrap();
        assert_eq!(paths(&c.added), [".metadata.labels", ".metadata.labels.x"]);
        assert_eq!(paths(&c.removed), [".data.b"]);
        assert!(c.modified.is_empty());
        let removed = t.remove(
            &new,
            &FieldSet::from_paths(&[Path::fields(&["metadata", "labels", "x"])]),
        );
        assert_eq!(
            removed,
            json!({"metadata": {"name": "c"}, "data": {"a": "1"}})
        );
    }

    #[test]
    fn untyped_objects_are_granular_maps_and_lists_atomic() {
        let u = for_kind("example.com", "Widget");
        let t = Typed {
            arena: &u.arena,
            root: u.root,
        };
        let cfg = json!({"spec": {"a": 1, "l": [1, 2]}});
        assert_eq!(
            paths(&t.to_field_set(&cfg)),
            [".spec", ".spec.a", ".spec.l"]
        );
        let m = t.merge(&json!({"spec": {"b": 2, "l": [3]}}), &cfg).unwrap();
        assert_eq!(m, json!({"spec": {"b": 2, "l": [1, 2], "a": 1}}));
    }
}
