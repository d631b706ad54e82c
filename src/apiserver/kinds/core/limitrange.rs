//! LimitRanges: upstream's defaults (a Container item's `default` falls back to `max`,
//! its `defaultRequest` to `default`, then `min`), validation (`ValidateLimitRange`: one
//! item per type, resource names, min <= defaultRequest <= default <= max, ratios of at
//! least 1, a storage bound for claims) and canonical quantities. The LimitRanger
//! admission plugin applies and enforces them; `kubectl get` shows NAME and CREATED AT.

use serde_json::{Map, Value};

use super::resourcequota::{is_extended_resource, validate_resource_name};
use crate::apiserver::admission::quantity::{self, Quantity};
use crate::apiserver::kinds::{ResourceDef, Strategy};
use crate::apiserver::validation::{Cause, duplicate, forbidden, invalid};

/// The quantity lists of an item.
/// The `type` of a LimitRange item that limits each container.
pub const LIMIT_TYPE_CONTAINER: &str = "Container";
/// The `type` of a LimitRange item that limits a pod's total.
pub const LIMIT_TYPE_POD: &str = "Pod";
/// The `type` of a LimitRange item that limits a claim's storage request.
pub const LIMIT_TYPE_CLAIM: &str = "PersistentVolumeClaim";

const LISTS: &[&str] = &[
    "max",
    "min",
    "default",
    "defaultRequest",
    "maxLimitRequestRatio",
];

/// Upstream's `SetDefaults_LimitRangeItem` for Container items, then canonical quantities.
fn set_defaults(obj: &mut Value) {
    let Some(items) = obj["spec"]["limits"].as_array_mut() else {
        return;
    };
    for item in items {
        if item["type"] == "Container" {
            let fill = |item: &mut Value, into: &str, from: &str| {
                let source: Map<String, Value> =
                    item[from].as_object().cloned().unwrap_or_default();
                if source.is_empty() {
                    return;
                }
                let target = crate::apiserver::defaults::obj_mut(item, into);
                for (k, v) in source {
                    target.entry(k).or_insert(v);
                }
            };
            fill(item, "default", "max");
            fill(item, "defaultRequest", "default");
            fill(item, "defaultRequest", "min");
        }
        for list in LISTS {
            if item[*list].is_object() {
                quantity::canonicalize(&mut item[*list]);
            }
        }
    }
}

/// Upstream's `validateContainerResourceName`.
fn validate_container_resource_name(value: &str, field: &str, out: &mut Vec<Cause>) {
    validate_resource_name(value, field, out);
    if !value.contains('/') {
        let standard = ["cpu", "memory", "ephemeral-storage"].contains(&value)
            || value.starts_with("hugepages-");
        if !standard {
            out.push(invalid(
                field,
                value,
                "must be a standard resource for containers",
            ));
        }
    } else if !value.contains("kubernetes.io/") && !is_extended_resource(value) {
        out.push(invalid(
            field,
            value,
            "doesn't follow extended resource name standard",
        ));
    }
}

/// The quantities of one list of an item, names checked; values that do not parse are
/// reported and left out.
fn checked_list(
    item: &Value,
    list: &str,
    kind: &str,
    path: &str,
    out: &mut Vec<Cause>,
) -> Vec<(String, Quantity)> {
    let mut found = Vec::new();
    for (k, v) in item[list].as_object().into_iter().flatten() {
        let field = format!("{path}.{list}[{k}]");
        if kind == "Pod" || kind == "Container" {
            validate_container_resource_name(k, &field, out);
        } else {
            validate_resource_name(k, &field, out);
        }
        match quantity::parse_value(v) {
            Ok(q) => found.push((k.clone(), q)),
            Err(e) => out.push(invalid(&field, v.as_str().unwrap_or(""), &e.to_string())),
        }
    }
    found
}

fn get(list: &[(String, Quantity)], k: &str) -> Option<Quantity> {
    list.iter().find(|(n, _)| n == k).map(|(_, q)| *q)
}

/// Upstream's `ValidateLimitRange` for the spec.
fn validate_spec(obj: &Value, out: &mut Vec<Cause>) {
    let mut types: Vec<&str> = Vec::new();
    for (i, item) in obj["spec"]["limits"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let path = format!("spec.limits[{i}]");
        let kind = item["type"].as_str().unwrap_or("");
        let type_field = format!("{path}.type");
        let mut name_errs = Vec::new();
        validate_resource_name(kind, &type_field, &mut name_errs);
        let qualified_ok = name_errs.iter().all(|c| {
            c.message
                .ends_with("must be a standard resource type or fully qualified")
        });
        if !qualified_ok {
            out.extend(name_errs);
        } else if !kind.contains('/')
            && !["Pod", "Container", "PersistentVolumeClaim"].contains(&kind)
        {
            out.push(invalid(
                &type_field,
                kind,
                "must be a standard limit type or fully qualified",
            ));
        }
        if types.contains(&kind) {
            out.push(duplicate(&type_field, kind));
        }
        types.push(kind);

        let max = checked_list(item, "max", kind, &path, out);
        let min = checked_list(item, "min", kind, &path, out);
        let (default, default_request) = if kind == "Pod" {
            for list in ["default", "defaultRequest"] {
                if item[list].as_object().is_some_and(|m| !m.is_empty()) {
                    out.push(forbidden(
                        format!("{path}.{list}"),
                        "may not be specified when `type` is 'Pod'",
                    ));
                }
            }
            (Vec::new(), Vec::new())
        } else {
            (
                checked_list(item, "default", kind, &path, out),
                checked_list(item, "defaultRequest", kind, &path, out),
            )
        };
        if kind == "PersistentVolumeClaim"
            && get(&min, "storage").is_none()
            && get(&max, "storage").is_none()
        {
            out.push(Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value: either minimum or maximum storage value is required, but neither was provided".into(),
                field: format!("{path}.limits"),
            });
        }
        let ratio = checked_list(item, "maxLimitRequestRatio", kind, &path, out);

        let mut keys: Vec<&String> = [&max, &min, &default, &default_request, &ratio]
            .iter()
            .flat_map(|l| l.iter().map(|(k, _)| k))
            .collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            let (mn, mx) = (get(&min, k), get(&max, k));
            let (df, dr, rt) = (get(&default, k), get(&default_request, k), get(&ratio, k));
            let at = |list: &str| format!("{path}.{list}[{k}]");
            if let (Some(a), Some(b)) = (mn, mx)
                && a > b
            {
                out.push(invalid(
                    at("min"),
                    &a.to_string(),
                    &format!("min value {a} is greater than max value {b}"),
                ));
            }
            if let (Some(r), Some(a)) = (dr, mn)
                && a > r
            {
                out.push(invalid(
                    at("defaultRequest"),
                    &r.to_string(),
                    &format!("min value {a} is greater than default request value {r}"),
                ));
            }
            if let (Some(r), Some(b)) = (dr, mx)
                && r > b
            {
                out.push(invalid(
                    at("defaultRequest"),
                    &r.to_string(),
                    &format!("default request value {r} is greater than max value {b}"),
                ));
            }
            if let (Some(r), Some(d)) = (dr, df)
                && r > d
            {
                out.push(invalid(
                    at("defaultRequest"),
                    &r.to_string(),
                    &format!("default request value {r} is greater than default limit value {d}"),
                ));
            }
            if let (Some(d), Some(a)) = (df, mn)
                && a > d
            {
                out.push(invalid(
                    at("default"),
                    &a.to_string(),
                    &format!("min value {a} is greater than default value {d}"),
                ));
            }
            if let (Some(d), Some(b)) = (df, mx)
                && d > b
            {
                out.push(invalid(
                    at("default"),
                    &b.to_string(),
                    &format!("default value {d} is greater than max value {b}"),
                ));
            }
            if let Some(r) = rt {
                if r < Quantity::from_int(1, quantity::Format::DecimalSi) {
                    out.push(invalid(
                        at("maxLimitRequestRatio"),
                        &r.to_string(),
                        &format!("ratio {r} is less than 1"),
                    ));
                }
                if let (Some(a), Some(b)) = (mn, mx)
                    && a.milli_value() > 0
                {
                    #[allow(clippy::cast_precision_loss)]
                    let (limit, ratio) = (
                        b.milli_value() as f64 / a.milli_value() as f64,
                        r.milli_value() as f64 / 1000.0,
                    );
                    if ratio > limit {
                        out.push(invalid(
                            at("maxLimitRequestRatio"),
                            &r.to_string(),
                            &format!("ratio {r} is greater than max/min = {limit:.6}"),
                        ));
                    }
                }
            }
            let overcommit =
                !k.starts_with("hugepages-") && (!k.contains('/') || k.contains("kubernetes.io/"));
            if let (false, Some(d), Some(r)) = (overcommit, df, dr)
                && d != r
            {
                out.push(invalid(
                    at("defaultRequest"),
                    &r.to_string(),
                    &format!("default value {d} must equal to defaultRequest value {r} in {k}"),
                ));
            }
        }
    }
}

/// The `LimitRanges` strategy.
pub struct LimitRanges {
    def: ResourceDef,
}

impl LimitRanges {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        LimitRanges {
            def: ResourceDef::new("", "v1", "LimitRange", "limitranges").short_names(&["limits"]),
        }
    }
}

impl Default for LimitRanges {
    fn default() -> Self {
        Self::new()
    }
}

impl Strategy for LimitRanges {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(k8s_openapi::api::core::v1::LimitRange);

    fn prepare_for_create(&self, obj: &mut Value) {
        set_defaults(obj);
    }

    fn prepare_for_update(&self, _old: &Value, new: &mut Value) {
        set_defaults(new);
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        validate_spec(obj, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::validation::invalid_message;
    use serde_json::json;

    #[test]
    fn container_items_get_upstream_defaults() {
        let mut lr = json!({"spec": {"limits": [
            {"type": "Container", "max": {"cpu": "1000m", "memory": "1Gi"}, "min": {"ephemeral-storage": "1Gi"}},
            {"type": "Pod", "max": {"cpu": "2"}}
        ]}});
        LimitRanges::new().prepare_for_create(&mut lr);
        let c = &lr["spec"]["limits"][0];
        assert_eq!(c["max"]["cpu"], "1");
        assert_eq!(c["default"], json!({"cpu": "1", "memory": "1Gi"}));
        assert_eq!(
            c["defaultRequest"],
            json!({"cpu": "1", "memory": "1Gi", "ephemeral-storage": "1Gi"})
        );
        assert!(lr["spec"]["limits"][1].get("default").is_none());
        assert!(LimitRanges::new().validate(&lr).is_empty());
    }

    #[test]
    fn validation_has_upstream_wording() {
        let lr = json!({"spec": {"limits": [
            {"type": "Container", "min": {"cpu": "1"}, "max": {"cpu": "500m"}, "maxLimitRequestRatio": {"memory": "500m"}},
            {"type": "Container"},
            {"type": "Pod", "default": {"cpu": "1"}},
            {"type": "PersistentVolumeClaim", "max": {"foo": "1"}},
            {"type": "Node"}
        ]}});
        let text = invalid_message("LimitRange", "l", &LimitRanges::new().validate(&lr));
        for want in [
            "spec.limits[0].min[cpu]: Invalid value: \"1\": min value 1 is greater than max value 500m",
            "spec.limits[0].maxLimitRequestRatio[memory]: Invalid value: \"500m\": ratio 500m is less than 1",
            "spec.limits[1].type: Duplicate value: \"Container\"",
            "spec.limits[2].default: Forbidden: may not be specified when `type` is 'Pod'",
            "spec.limits[3].limits: Required value: either minimum or maximum storage value is required, but neither was provided",
            "spec.limits[3].max[foo]: Invalid value: \"foo\": must be a standard resource type or fully qualified",
            "spec.limits[4].type: Invalid value: \"Node\": must be a standard limit type or fully qualified",
        ] {
            assert!(text.contains(want), "{want}\n{text}");
        }
    }
}
