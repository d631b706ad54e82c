//! Secrets: type defaulted to Opaque, `stringData` merged into `data` on write, `immutable`
//! enforced, and the `type` field selector.

use serde_json::{Value, json};

use crate::apiserver::kinds::{ResourceDef, Strategy};
use crate::apiserver::table::{Column, age, age_col, col, name_col, s};
use base64::Engine as _;

use crate::apiserver::validation::Cause;

/// Upstream merges the write-only `stringData` into `data` (base64) and drops it.
fn merge_string_data(obj: &mut Value) {
    let Some(Value::Object(string_data)) = obj.as_object_mut().and_then(|m| m.remove("stringData"))
    else {
        return;
    };
    let data = crate::apiserver::defaults::obj_mut(obj, "data");
    for (k, v) in string_data {
        let text = v.as_str().unwrap_or("");
        data.insert(
            k,
            json!(base64::engine::general_purpose::STANDARD.encode(text.as_bytes())),
        );
    }
}

/// The `Secrets` strategy.
pub struct Secrets {
    def: ResourceDef,
}

impl Secrets {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        Secrets {
            def: ResourceDef::new("", "v1", "Secret", "secrets"),
        }
    }
}

impl Default for Secrets {
    fn default() -> Self {
        Self::new()
    }
}

impl Strategy for Secrets {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(k8s_openapi::api::core::v1::Secret);

    fn prepare_for_create(&self, obj: &mut Value) {
        if obj
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            obj["type"] = json!("Opaque");
        }
        merge_string_data(obj);
    }

    fn prepare_for_update(&self, _old: &Value, new: &mut Value) {
        merge_string_data(new);
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        super::validate_data_keys(obj, &mut out);
        // A service-account token Secret names its account; the token controller fills
        // in the rest.
        let account = "kubernetes.io/service-account.name";
        if obj["type"] == "kubernetes.io/service-account-token"
            && obj["metadata"]["annotations"][account]
                .as_str()
                .is_none_or(str::is_empty)
        {
            out.push(crate::apiserver::validation::required(format!(
                "metadata.annotations[{account}]"
            )));
        }
        out
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<Cause> {
        let mut out = self.validate(new);
        super::validate_immutable_data(old, new, &mut out);
        if old["type"] != new["type"] {
            out.push(crate::apiserver::validation::invalid(
                "type",
                new["type"].as_str().unwrap_or(""),
                "field is immutable",
            ));
        }
        out
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &["type"]
    }

    fn columns(&self) -> Vec<Column> {
        let age = age_col();
        vec![
            name_col(),
            col("Type", "string", 0, "The type of the secret"),
            col("Data", "integer", 0, "Number of keys."),
            age,
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let name = json!(s(&obj["metadata"]["name"]));
        let created = obj["metadata"]["creationTimestamp"].as_str();
        let age_cell = json!(age(created, now));
        {
            let n = obj["data"].as_object().map(|m| m.len()).unwrap_or(0);
            vec![name, json!(s(&obj["type"])), json!(n), age_cell]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_data_is_merged_into_data() {
        let mut s = json!({"metadata": {"name": "s"}, "data": {"a": "eA=="}, "stringData": {"b": "hi", "a": "yo"}});
        Secrets::new().prepare_for_create(&mut s);
        assert_eq!(s["data"]["a"], "eW8=");
        assert_eq!(s["data"]["b"], "aGk=");
        assert!(s.get("stringData").is_none());
        assert_eq!(s["type"], "Opaque");
    }
}
