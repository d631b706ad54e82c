//! The typed view of a kind, from the `k8s-openapi` Rust types.
//!
//! Every body the API server accepts goes through a typed round trip: decoding checks the
//! field types (as upstream's decoder does), re-encoding drops unknown fields (upstream
//! prunes them too), and the difference between the two names the unknown fields for
//! `fieldValidation=Strict|Warn`. The same types generate the OpenAPI schemas.

use serde_json::{Map, Value};

/// Implements [`super::Strategy::normalize`] and [`super::Strategy::schema`] from a
/// `k8s-openapi` type.
#[macro_export]
macro_rules! typed_kind {
    ($t:ty) => {
        fn normalize(
            &self,
            value: serde_json::Value,
        ) -> Result<(serde_json::Value, Vec<String>), String> {
            $crate::apiserver::kinds::typed::roundtrip::<$t>(value)
        }

        fn schema(&self, generator: &mut schemars::SchemaGenerator) -> Option<String> {
            Some($crate::apiserver::kinds::typed::schema_of::<$t>(generator))
        }
    };
}

/// Adds `T`'s schema to `generator` and returns its component name.
pub fn schema_of<T: schemars::JsonSchema>(generator: &mut schemars::SchemaGenerator) -> String {
    generator.subschema_for::<T>();
    T::schema_name().into_owned()
}

/// Decodes `value` as `T` and re-encodes it. Returns the normalised object and the
/// paths of fields the type does not know (`spec.foo`, `spec.containers[0].bar`).
pub fn roundtrip<T>(mut value: Value) -> Result<(Value, Vec<String>), String>
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_named_and_pruned() {
        let pod = json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"x","creationTimestamp":null},
            "spec":{"foo":1,"containers":[{"name":"x","image":"i","bar":true,"resources":{}}]},"status":{}});
        let (out, unknown) = roundtrip::<Pod>(pod).unwrap();
        assert_eq!(unknown, vec!["spec.foo", "spec.containers[0].bar"]);
        assert!(out["spec"].get("foo").is_none());
        assert_eq!(out["spec"]["containers"][0]["image"], "i");
    }

    #[test]
    fn wrong_types_are_rejected() {
        let pod = json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"},"spec":{"containers":"nope"}});
        assert!(roundtrip::<Pod>(pod).is_err());
    }
}
