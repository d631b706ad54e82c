//! A CRD version's `additionalPrinterColumns` as Table columns and cells (upstream's
//! `pkg/registry/customresource/tableconvertor`): NAME first, then the declared columns,
//! or a single Age column when none are declared. Only the simple JSONPath upstream
//! allows (`.spec.replicas`, `.status.conditions[0].type`) is evaluated.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use serde_json::{Value, json};

use crate::apiserver::table::{self, Column};

/// One declared column: its Table definition and where its value is.
#[derive(Debug, Clone)]
pub struct PrinterColumn {
    /// The Table column.
    pub column: Column,
    /// The JSONPath segments.
    pub path: Vec<Segment>,
}

/// One step of a simple JSONPath.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// `.field`
    Field(String),
    /// `[n]`
    Index(usize),
}

/// Table columns hold `&'static str`; CRD columns are few and long-lived, so their texts
/// are interned once (a re-created CRD with the same texts costs nothing more).
fn intern(s: &str) -> &'static str {
    static SEEN: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut seen = SEEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(s) = seen.get(s) {
        return s;
    }
    let leaked: &'static str = Box::leak(s.to_string().into_boxed_str());
    seen.insert(leaked);
    leaked
}

/// Parses `.a.b[0].c` (also wrapped as `{.a.b}`).
pub fn parse_path(p: &str) -> Vec<Segment> {
    let p = p.trim();
    let p = p
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .unwrap_or(p);
    let mut out = Vec::new();
    for part in p.split('.').filter(|s| !s.is_empty()) {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            if i > 0 {
                out.push(Segment::Field(rest[..i].to_string()));
            }
            rest = &rest[i..];
            while let Some(end) = rest.find(']') {
                if let Ok(n) = rest[1..end].parse::<usize>() {
                    out.push(Segment::Index(n));
                }
                rest = &rest[end + 1..];
                if !rest.starts_with('[') {
                    break;
                }
            }
        } else {
            out.push(Segment::Field(rest.to_string()));
        }
    }
    out
}

/// The value at `path` in `obj`.
pub fn lookup<'a>(obj: &'a Value, path: &[Segment]) -> Option<&'a Value> {
    let mut cur = obj;
    for seg in path {
        cur = match seg {
            Segment::Field(f) => cur.get(f)?,
            Segment::Index(i) => cur.get(*i)?,
        };
    }
    (!cur.is_null()).then_some(cur)
}

/// The declared columns of a CRD version (or the default Age column).
pub fn from_version(version: &Value) -> Vec<PrinterColumn> {
    let declared = version["additionalPrinterColumns"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if declared.is_empty() {
        return vec![PrinterColumn {
            column: Column {
                kind: "date",
                ..table::age_col()
            },
            path: parse_path(".metadata.creationTimestamp"),
        }];
    }
    declared
        .iter()
        .map(|c| PrinterColumn {
            column: Column {
                name: intern(c["name"].as_str().unwrap_or("")),
                kind: intern(c["type"].as_str().unwrap_or("string")),
                format: intern(c["format"].as_str().unwrap_or("")),
                description: intern(c["description"].as_str().unwrap_or("")),
                priority: c["priority"].as_i64().unwrap_or(0) as i32,
            },
            path: parse_path(c["jsonPath"].as_str().unwrap_or("")),
        })
        .collect()
}

/// The Table columns: NAME, then the declared ones.
pub fn columns(cols: &[PrinterColumn]) -> Vec<Column> {
    let mut out = vec![table::name_col()];
    out.extend(cols.iter().map(|c| c.column.clone()));
    out
}

/// One row's cells.
pub fn cells(cols: &[PrinterColumn], obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let mut out = vec![json!(table::s(&obj["metadata"]["name"]))];
    for c in cols {
        let v = lookup(obj, &c.path);
        let cell = match v {
            None => Value::Null,
            Some(v) => match c.column.kind {
                "date" => match v.as_str().map(|t| (t, t.parse::<jiff::Timestamp>())) {
                    Some((t, Ok(_))) => json!(table::age(Some(t), now)),
                    _ => json!("<invalid>"),
                },
                "integer" if v.is_i64() || v.is_u64() => v.clone(),
                "number" if v.is_number() => v.clone(),
                "boolean" if v.is_boolean() => v.clone(),
                _ => match v {
                    Value::String(t) => json!(t),
                    o => json!(o.to_string()),
                },
            },
        };
        out.push(cell);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_json_paths_fill_typed_cells() {
        assert_eq!(
            parse_path("{.status.conditions[0].type}"),
            vec![
                Segment::Field("status".into()),
                Segment::Field("conditions".into()),
                Segment::Index(0),
                Segment::Field("type".into()),
            ]
        );
        let version = json!({"additionalPrinterColumns": [
            {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
            {"name": "Size", "type": "string", "jsonPath": ".spec.size"},
            {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[0].status"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]});
        let cols = from_version(&version);
        let now = jiff::Timestamp::now();
        let created =
            crate::apiserver::defaults::format_time(now - jiff::SignedDuration::from_secs(90));
        let obj = json!({"metadata": {"name": "w1", "creationTimestamp": created}, "spec": {"replicas": 2, "size": "small"}});
        let cells = cells(&cols, &obj, now);
        assert_eq!(
            cells,
            vec![
                json!("w1"),
                json!(2),
                json!("small"),
                Value::Null,
                json!("90s")
            ]
        );
        assert_eq!(columns(&cols)[0].name, "Name");
        assert_eq!(from_version(&json!({}))[0].column.name, "Age");
    }
}
