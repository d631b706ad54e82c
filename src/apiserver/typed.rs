//! The typed view of each served kind, from the `k8s-openapi` Rust types.
//!
//! Every body the API server accepts goes through a typed round trip: decoding checks the
//! field types (as upstream's decoder does), re-encoding drops unknown fields (upstream
//! prunes them too), and the difference between the two names the unknown fields for
//! `fieldValidation=Strict|Warn`. The same types generate the OpenAPI schemas.

use serde_json::{Map, Value};

use k8s_openapi::api::coordination::v1 as coordination;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::events::v1 as events;

/// Decodes `value` as the typed kind and re-encodes it. Returns the normalised object and
/// the paths of fields the type does not know (`spec.foo`, `spec.containers[0].bar`).
pub fn normalize(group: &str, kind: &str, value: Value) -> Result<(Value, Vec<String>), String> {
    macro_rules! with_type {
        ($($g:literal, $k:literal => $t:ty;)*) => {
            match (group, kind) {
                $(($g, $k) => roundtrip::<$t>(value),)*
                _ => Ok((value, Vec::new())),
            }
        };
    }
    with_type! {
        "", "Pod" => core::Pod;
        "", "Namespace" => core::Namespace;
        "", "Node" => core::Node;
        "", "Event" => core::Event;
        "", "Service" => core::Service;
        "", "ConfigMap" => core::ConfigMap;
        "", "Secret" => core::Secret;
        "", "ServiceAccount" => core::ServiceAccount;
        "", "Binding" => core::Binding;
        "coordination.k8s.io", "Lease" => coordination::Lease;
        "events.k8s.io", "Event" => events::Event;
    }
}

/// Adds the schema of every served kind to `generator` and returns, per kind, the
/// schema's component name (`io.k8s.api.core.v1.Pod`).
pub fn schema_names(
    generator: &mut schemars::SchemaGenerator,
) -> Vec<(&'static str, &'static str, String)> {
    macro_rules! names {
        ($($g:literal, $k:literal => $t:ty;)*) => {
            vec![$({
                generator.subschema_for::<$t>();
                ($g, $k, <$t as schemars::JsonSchema>::schema_name().into_owned())
            },)*]
        };
    }
    names! {
        "", "Pod" => core::Pod;
        "", "Namespace" => core::Namespace;
        "", "Node" => core::Node;
        "", "Event" => core::Event;
        "", "Service" => core::Service;
        "", "ConfigMap" => core::ConfigMap;
        "", "Secret" => core::Secret;
        "", "ServiceAccount" => core::ServiceAccount;
        "", "Binding" => core::Binding;
        "coordination.k8s.io", "Lease" => coordination::Lease;
        "events.k8s.io", "Event" => events::Event;
    }
}

fn roundtrip<T>(mut value: Value) -> Result<(Value, Vec<String>), String>
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    if let Some(obj) = value.as_object_mut() {
        obj.entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
    }
    let typed: T = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    let out = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    let mut unknown = Vec::new();
    diff_unknown(&value, &out, "", &mut unknown);
    Ok((out, unknown))
}

fn diff_unknown(input: &Value, output: &Value, path: &str, out: &mut Vec<String>) {
    match (input, output) {
        (Value::Object(i), Value::Object(o)) => {
            for (k, v) in i {
                if v.is_null() {
                    continue;
                }
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match o.get(k) {
                    Some(ov) => diff_unknown(v, ov, &p, out),
                    None => out.push(p),
                }
            }
        }
        (Value::Array(i), Value::Array(o)) => {
            for (n, (iv, ov)) in i.iter().zip(o.iter()).enumerate() {
                diff_unknown(iv, ov, &format!("{path}[{n}]"), out);
            }
        }
        _ => {}
    }
}

/// Converts a stored (core/v1) Event into its events.k8s.io/v1 form.
pub fn event_core_to_events_v1(core: &Value) -> Value {
    let mut out = Map::new();
    out.insert("apiVersion".into(), "events.k8s.io/v1".into());
    out.insert("kind".into(), "Event".into());
    let pairs = [
        ("metadata", "metadata"),
        ("involvedObject", "regarding"),
        ("related", "related"),
        ("reason", "reason"),
        ("message", "note"),
        ("type", "type"),
        ("action", "action"),
        ("reportingComponent", "reportingController"),
        ("reportingInstance", "reportingInstance"),
        ("eventTime", "eventTime"),
        ("series", "series"),
        ("source", "deprecatedSource"),
        ("firstTimestamp", "deprecatedFirstTimestamp"),
        ("lastTimestamp", "deprecatedLastTimestamp"),
        ("count", "deprecatedCount"),
    ];
    for (from, to) in pairs {
        if let Some(v) = core.get(from)
            && !v.is_null()
        {
            out.insert(to.into(), v.clone());
        }
    }
    Value::Object(out)
}

/// Converts an events.k8s.io/v1 Event into the core/v1 form it is stored in.
pub fn event_events_v1_to_core(ev: &Value) -> Value {
    let mut out = Map::new();
    out.insert("apiVersion".into(), "v1".into());
    out.insert("kind".into(), "Event".into());
    let pairs = [
        ("metadata", "metadata"),
        ("regarding", "involvedObject"),
        ("related", "related"),
        ("reason", "reason"),
        ("note", "message"),
        ("type", "type"),
        ("action", "action"),
        ("reportingController", "reportingComponent"),
        ("reportingInstance", "reportingInstance"),
        ("eventTime", "eventTime"),
        ("series", "series"),
        ("deprecatedSource", "source"),
        ("deprecatedFirstTimestamp", "firstTimestamp"),
        ("deprecatedLastTimestamp", "lastTimestamp"),
        ("deprecatedCount", "count"),
    ];
    for (from, to) in pairs {
        if let Some(v) = ev.get(from)
            && !v.is_null()
        {
            out.insert(to.into(), v.clone());
        }
    }
    if !out.contains_key("involvedObject") {
        out.insert("involvedObject".into(), Value::Object(Map::new()));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_named_and_pruned() {
        let pod = json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"x","creationTimestamp":null},
            "spec":{"foo":1,"containers":[{"name":"x","image":"i","bar":true,"resources":{}}]},"status":{}});
        let (out, unknown) = normalize("", "Pod", pod).unwrap();
        assert_eq!(unknown, vec!["spec.foo", "spec.containers[0].bar"]);
        assert!(out["spec"].get("foo").is_none());
        assert_eq!(out["spec"]["containers"][0]["image"], "i");
    }

    #[test]
    fn wrong_types_are_rejected() {
        let pod = json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"},"spec":{"containers":"nope"}});
        assert!(normalize("", "Pod", pod).is_err());
    }

    #[test]
    fn events_convert_both_ways() {
        let core = json!({"apiVersion":"v1","kind":"Event","metadata":{"name":"e"},"involvedObject":{"name":"p"},"message":"hi","count":2});
        let v1 = event_core_to_events_v1(&core);
        assert_eq!(v1["regarding"]["name"], "p");
        assert_eq!(v1["note"], "hi");
        assert_eq!(event_events_v1_to_core(&v1), core);
    }
}
