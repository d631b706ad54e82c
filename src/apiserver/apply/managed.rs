//! `metadata.managedFields` ⇄ the field sets of each manager.
//!
//! Managers are keyed by an identifier: the JSON of the entry without its fields, time
//! and (for appliers, so one applier is one entry across versions) apiVersion, as
//! upstream's `BuildManagerIdentifier` makes it; conflicts name managers through it.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::fieldpath::{FieldSet, FieldsError};

/// `operation` of an Apply entry.
pub const APPLY: &str = "Apply";
/// `operation` of an Update entry.
pub const UPDATE: &str = "Update";

/// Update managers kept before the oldest are merged (upstream's
/// `DefaultMaxUpdateManagers`).
pub const MAX_UPDATE_MANAGERS: usize = 10;
/// The manager the oldest update entries are merged into.
pub const ANCIENT_CHANGES: &str = "ancient-changes";

/// The fields one manager owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedSet {
    /// Owned fields.
    pub set: FieldSet,
    /// The API version the fields were recorded in.
    pub api_version: String,
    /// Whether the manager is an applier.
    pub applied: bool,
}

/// Every manager's fields and last-change time, by identifier.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Managed {
    /// Field sets.
    pub fields: BTreeMap<String, VersionedSet>,
    /// Times (RFC 3339, seconds) of each manager's last change.
    pub times: BTreeMap<String, Option<String>>,
}

/// `metadata.managedFields` that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManagedFieldsError {
    /// Not a list of objects.
    #[error("managedFields must be a list of objects")]
    NotAList,
    /// An operation other than Apply or Update.
    #[error("operation must be `Apply` or `Update`")]
    BadOperation,
    /// No apiVersion.
    #[error("apiVersion must not be empty")]
    NoApiVersion,
    /// No fieldsType.
    #[error("missing fieldsType in managed fields entry {0}")]
    NoFieldsType(usize),
    /// A fieldsType other than FieldsV1.
    #[error("invalid fieldsType {0:?} in managed fields entry {1}")]
    BadFieldsType(String, usize),
    /// A fieldsV1 that does not parse.
    #[error("error decoding set: {0}")]
    Fields(#[from] FieldsError),
}

/// The identifier of a manager (upstream's `BuildManagerIdentifier`).
pub fn manager_id(manager: &str, operation: &str, api_version: &str, subresource: &str) -> String {
    let mut m = Map::new();
    if !manager.is_empty() {
        m.insert("manager".into(), json!(manager));
    }
    if !operation.is_empty() {
        m.insert("operation".into(), json!(operation));
    }
    if operation != APPLY && !api_version.is_empty() {
        m.insert("apiVersion".into(), json!(api_version));
    }
    if !subresource.is_empty() {
        m.insert("subresource".into(), json!(subresource));
    }
    Value::Object(m).to_string()
}

/// The parts of an identifier: manager, operation, apiVersion, subresource.
pub fn parse_id(id: &str) -> Option<(String, String, String, String)> {
    let v: Value = serde_json::from_str(id).ok()?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    Some((
        s("manager"),
        s("operation"),
        s("apiVersion"),
        s("subresource"),
    ))
}

/// How conflicts print a manager (upstream's `printManager`).
pub fn print_manager(id: &str) -> String {
    let Some((manager, operation, api_version, subresource)) = parse_id(id) else {
        return format!("{id:?}");
    };
    let mut s = format!("{manager:?}");
    if !subresource.is_empty() {
        s = format!("{s} with subresource {subresource:?}");
    }
    if operation == UPDATE {
        s = format!("{s} using {api_version}");
    }
    s
}

/// Whether `managedFields` is the reset value: an empty list or one empty entry.
pub fn is_reset(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Array(a)) => {
            a.is_empty() || (a.len() == 1 && a[0].as_object().is_some_and(Map::is_empty))
        }
        _ => false,
    }
}

/// Decodes `metadata.managedFields` (absent or null is empty).
pub fn decode(v: Option<&Value>) -> Result<Managed, ManagedFieldsError> {
    let mut out = Managed::default();
    let entries = match v {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(ManagedFieldsError::NotAList),
    };
    for (i, e) in entries.iter().enumerate() {
        let Value::Object(e) = e else {
            return Err(ManagedFieldsError::NotAList);
        };
        let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("");
        let operation = s("operation");
        if operation != APPLY && operation != UPDATE {
            return Err(ManagedFieldsError::BadOperation);
        }
        if s("apiVersion").is_empty() {
            return Err(ManagedFieldsError::NoApiVersion);
        }
        match s("fieldsType") {
            "FieldsV1" => {}
            "" => return Err(ManagedFieldsError::NoFieldsType(i)),
            other => return Err(ManagedFieldsError::BadFieldsType(other.to_string(), i)),
        }
        let set = match e.get("fieldsV1") {
            None | Some(Value::Null) => FieldSet::new(),
            Some(f) => FieldSet::from_fields_v1(f)?,
        };
        let id = manager_id(s("manager"), operation, s("apiVersion"), s("subresource"));
        out.fields.insert(
            id.clone(),
            VersionedSet {
                set,
                api_version: s("apiVersion").to_string(),
                applied: operation == APPLY,
            },
        );
        out.times
            .insert(id, e.get("time").and_then(Value::as_str).map(String::from));
    }
    Ok(out)
}

/// Seconds since the epoch of an RFC 3339 time (0 when absent or unparsable), for
/// ordering entries as upstream does.
fn seconds(t: Option<&String>) -> i64 {
    t.and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_second())
        .unwrap_or(0)
}

/// Encodes the managers as `metadata.managedFields` entries, in upstream's order
/// (Apply before Update, then by time, manager, apiVersion, subresource). `None` when
/// no manager owns anything.
pub fn encode(m: &Managed) -> Option<Value> {
    if m.fields.is_empty() {
        return None;
    }
    let mut entries: Vec<(String, i64, String, String, String, Value)> = Vec::new();
    for (id, vs) in &m.fields {
        let (manager, _, _, subresource) = parse_id(id).unwrap_or_default();
        let operation = if vs.applied { APPLY } else { UPDATE };
        let time = m.times.get(id).cloned().flatten();
        let mut e = Map::new();
        if !manager.is_empty() {
            e.insert("manager".into(), json!(manager));
        }
        e.insert("operation".into(), json!(operation));
        e.insert("apiVersion".into(), json!(vs.api_version));
        if let Some(t) = &time {
            e.insert("time".into(), json!(t));
        }
        e.insert("fieldsType".into(), json!("FieldsV1"));
        e.insert("fieldsV1".into(), vs.set.to_fields_v1());
        if !subresource.is_empty() {
            e.insert("subresource".into(), json!(subresource));
        }
        entries.push((
            operation.to_string(),
            seconds(time.as_ref()),
            manager,
            vs.api_version.clone(),
            subresource,
            Value::Object(e),
        ));
    }
    entries.sort_by(|a, b| (&a.0, a.1, &a.2, &a.3, &a.4).cmp(&(&b.0, b.1, &b.2, &b.3, &b.4)));
    Some(Value::Array(entries.into_iter().map(|e| e.5).collect()))
}

/// Merges the oldest update entries, per API version, into an `ancient-changes` entry
/// until at most `max` update entries remain (upstream's `capManagersManager`).
pub fn cap_update_managers(m: &mut Managed, max: usize) {
    let mut updaters: Vec<String> = m
        .fields
        .iter()
        .filter(|(_, vs)| !vs.applied)
        .map(|(id, _)| id.clone())
        .collect();
    if updaters.len() <= max {
        return;
    }
    updaters.sort_by(|a, b| {
        let (sa, sb) = (
            seconds(m.times.get(a).and_then(Option::as_ref)),
            seconds(m.times.get(b).and_then(Option::as_ref)),
        );
        sa.cmp(&sb).then_with(|| a.cmp(b))
    });
    let mut first_of_version: BTreeMap<String, String> = BTreeMap::new();
    let mut length = updaters.len();
    for id in updaters {
        if length <= max {
            break;
        }
        let Some(vs) = m.fields.get(&id).cloned() else {
            continue;
        };
        let time = m.times.get(&id).cloned().flatten();
        let version = vs.api_version.clone();
        let bucket = manager_id(ANCIENT_CHANGES, UPDATE, &version, "");
        match first_of_version.get(&version) {
            Some(first) => {
                if !m.fields.contains_key(&bucket)
                    && let Some(s) = m.fields.remove(first)
                {
                    m.times.remove(first);
                    m.fields.insert(bucket.clone(), s);
                }
                let merged = m
                    .fields
                    .get(&bucket)
                    .map(|b| vs.set.union(&b.set))
                    .unwrap_or_else(|| vs.set.clone());
                m.fields.insert(
                    bucket.clone(),
                    VersionedSet {
                        set: merged,
                        api_version: version,
                        applied: false,
                    },
                );
                m.fields.remove(&id);
                m.times.remove(&id);
                length -= 1;
                m.times.insert(bucket, time);
            }
            None => {
                first_of_version.insert(version, id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fieldpath::Path;
    use super::*;

    #[test]
    fn identifiers_and_printing_match_upstream() {
        assert_eq!(
            manager_id("a", APPLY, "v1", ""),
            r#"{"manager":"a","operation":"Apply"}"#
        );
        let u = manager_id("kubectl-client-side-apply", UPDATE, "v1", "");
        assert_eq!(
            u,
            r#"{"manager":"kubectl-client-side-apply","operation":"Update","apiVersion":"v1"}"#
        );
        assert_eq!(print_manager(&u), r#""kubectl-client-side-apply" using v1"#);
        assert_eq!(
            print_manager(&manager_id("k", APPLY, "v1", "status")),
            r#""k" with subresource "status""#
        );
        assert_eq!(print_manager("junk"), r#""junk""#);
    }

    #[test]
    fn decode_encode_round_trip_in_upstream_order() {
        let entries = json!([
            {"manager": "z", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:01Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:b": {}}}},
            {"manager": "b", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:00Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:c": {}}}, "subresource": "status"},
            {"manager": "a", "operation": "Apply", "apiVersion": "v1", "time": "2026-01-01T00:00:09Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}},
        ]);
        let m = decode(Some(&entries)).unwrap();
        assert_eq!(m.fields.len(), 3);
        let out = encode(&m).unwrap();
        let names: Vec<&str> = out
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["manager"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b", "z"]);
        assert_eq!(out[1]["subresource"], "status");
        assert_eq!(
            serde_json::to_string(&out[0]).unwrap(),
            r#"{"manager":"a","operation":"Apply","apiVersion":"v1","time":"2026-01-01T00:00:09Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{"f:a":{}}}}"#
        );
        assert_eq!(encode(&Managed::default()), None);
    }

    #[test]
    fn decode_rejects_what_upstream_rejects() {
        let bad = |e: Value| decode(Some(&json!([e]))).unwrap_err();
        assert_eq!(
            bad(
                json!({"manager": "a", "operation": "Patch", "apiVersion": "v1", "fieldsType": "FieldsV1"})
            ),
            ManagedFieldsError::BadOperation
        );
        assert_eq!(
            bad(json!({"manager": "a", "operation": "Apply", "fieldsType": "FieldsV1"})),
            ManagedFieldsError::NoApiVersion
        );
        assert_eq!(
            bad(json!({"manager": "a", "operation": "Apply", "apiVersion": "v1"})),
            ManagedFieldsError::NoFieldsType(0)
        );
        assert_eq!(
            bad(
                json!({"manager": "a", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV2"})
            ),
            ManagedFieldsError::BadFieldsType("FieldsV2".into(), 0)
        );
        assert!(is_reset(Some(&json!([]))));
        assert!(is_reset(Some(&json!([{}]))));
        assert!(!is_reset(None));
        assert!(!is_reset(Some(&json!([{"manager": "a"}]))));
    }

    #[test]
    fn oldest_update_managers_merge_into_ancient_changes() {
        let mut m = Managed::default();
        for i in 0..12 {
            let id = manager_id(&format!("m{i:02}"), UPDATE, "v1", "");
            m.fields.insert(
                id.clone(),
                VersionedSet {
                    set: FieldSet::from_paths(&[Path::fields(&["data", &format!("k{i}")])]),
                    api_version: "v1".into(),
                    applied: false,
                },
            );
            m.times
                .insert(id, Some(format!("2026-01-01T00:00:{i:02}Z")));
        }
        m.fields.insert(
            manager_id("applier", APPLY, "v1", ""),
            VersionedSet {
                set: FieldSet::from_paths(&[Path::fields(&["data", "z"])]),
                api_version: "v1".into(),
                applied: true,
            },
        );
        cap_update_managers(&mut m, MAX_UPDATE_MANAGERS);
        let updaters = m.fields.values().filter(|v| !v.applied).count();
        assert_eq!(updaters, 10);
        let bucket = &m.fields[&manager_id(ANCIENT_CHANGES, UPDATE, "v1", "")];
        for k in ["k0", "k1", "k2"] {
            assert!(bucket.set.has(&Path::fields(&["data", k]).0), "{k}");
        }
        assert!(!m.fields.contains_key(&manager_id("m00", UPDATE, "v1", "")));
        assert!(m.fields.contains_key(&manager_id("m03", UPDATE, "v1", "")));
        assert_eq!(
            m.times[&manager_id(ANCIENT_CHANGES, UPDATE, "v1", "")].as_deref(),
            Some("2026-01-01T00:00:02Z")
        );
    }
}
