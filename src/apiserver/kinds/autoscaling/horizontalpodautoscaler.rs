//! HorizontalPodAutoscalers (+`status`), served as autoscaling/v2 (stored, preferred) and
//! autoscaling/v1 (a view of the same objects). Upstream keeps what v1 cannot say (other
//! metrics, behavior, current metrics, conditions) in `autoscaling.alpha.kubernetes.io/*`
//! annotations of the v1 view; the conversions here do the same, so an object written
//! through one version reads back whole through the other. The controller that acts on
//! them needs the metrics API and comes with it.

use serde_json::{Map, Value, json};

use crate::apiserver::kinds::{GET_PATCH_UPDATE, ResourceDef, Strategy};
use crate::apiserver::table::{Column, age, age_col, col, name_col, s};
use crate::apiserver::validation::{Cause, invalid, invalid_num, not_supported, required};

/// The v1 annotation holding the metrics other than the CPU utilization target.
pub const METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
/// The v1 annotation holding every current metric of the status.
pub const CURRENT_METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
/// The v1 annotation holding the status conditions.
pub const CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";
/// The v1 annotation holding the scaling behavior.
pub const BEHAVIOR_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/behavior";
/// Upstream's `DefaultCPUUtilization`: the target when none is given.
pub const DEFAULT_CPU_UTILIZATION: i64 = 80;

const PLURAL: &str = "horizontalpodautoscalers";
const KIND: &str = "HorizontalPodAutoscaler";

/// The autoscaling/v2 `HorizontalPodAutoscaler` strategy (the stored form).
pub struct HorizontalPodAutoscalers {
    def: ResourceDef,
}

/// The autoscaling/v1 `HorizontalPodAutoscaler` strategy: a view of the v2 objects.
pub struct HorizontalPodAutoscalersV1 {
    def: ResourceDef,
}

fn def(version: &str) -> ResourceDef {
    ResourceDef::new("autoscaling", version, KIND, PLURAL)
        .short_names(&["hpa"])
        .categories(&["all"])
        .subresource("status", KIND, GET_PATCH_UPDATE)
}

impl HorizontalPodAutoscalers {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        HorizontalPodAutoscalers { def: def("v2") }
    }
}

impl Default for HorizontalPodAutoscalers {
    fn default() -> Self {
        Self::new()
    }
}

impl HorizontalPodAutoscalersV1 {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        HorizontalPodAutoscalersV1 { def: def("v1") }
    }
}

impl Default for HorizontalPodAutoscalersV1 {
    fn default() -> Self {
        Self::new()
    }
}

/// The scaling rules upstream fills in for a behavior that names some of them.
fn default_rules(up: bool) -> Value {
    if up {
        json!({"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 15},
            {"type": "Percent", "value": 100, "periodSeconds": 15}]})
    } else {
        json!({"selectPolicy": "Max", "policies": [
            {"type": "Percent", "value": 100, "periodSeconds": 15}]})
    }
}

/// Upstream's v2 `SetDefaults_HorizontalPodAutoscaler`: one minimum replica, a CPU
/// utilization target of 80 % when no metric is given, and a behavior's missing rules
/// filled from the defaults.
fn set_defaults(obj: &mut Value) {
    if !obj["spec"].is_object() {
        obj["spec"] = json!({});
    }
    let spec = &mut obj["spec"];
    if spec["minReplicas"].is_null() {
        spec["minReplicas"] = json!(1);
    }
    if spec["metrics"].as_array().is_none_or(|m| m.is_empty()) {
        spec["metrics"] = json!([cpu_metric(DEFAULT_CPU_UTILIZATION)]);
    }
    if spec["behavior"].is_object() {
        for (key, up) in [("scaleUp", true), ("scaleDown", false)] {
            let mut rules = default_rules(up);
            if let Some(given) = spec["behavior"][key].as_object() {
                for (k, v) in given {
                    if !v.is_null() {
                        rules[k] = v.clone();
                    }
                }
            }
            spec["behavior"][key] = rules;
        }
    }
}

/// A `Resource` metric on CPU with a utilization target.
fn cpu_metric(utilization: i64) -> Value {
    json!({"type": "Resource", "resource": {"name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": utilization}}})
}

/// The CPU utilization target of a v2 metric, if it is one.
fn cpu_utilization_target(metric: &Value) -> Option<i64> {
    (metric["type"] == "Resource"
        && metric["resource"]["name"] == "cpu"
        && metric["resource"]["target"]["type"] == "Utilization")
        .then(|| metric["resource"]["target"]["averageUtilization"].as_i64())
        .flatten()
}

const METRIC_TYPES: &[&str] = &[
    "ContainerResource",
    "External",
    "Object",
    "Pods",
    "Resource",
];
const TARGET_TYPES: &[&str] = &["AverageValue", "Utilization", "Value"];

/// Upstream's `field.Required` with a detail: `Required value: <why>`.
fn required_because(field: impl Into<String>, why: &str) -> Cause {
    let mut c = required(field);
    c.message = format!("Required value: {why}");
    c
}

/// Whether a quantity string is positive (`0`, `-1`, `0m` are not).
fn positive_quantity(q: &Value) -> bool {
    let text = s(q).trim();
    let digits: String = text
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-' || *c == '+')
        .collect();
    digits.parse::<f64>().is_ok_and(|n| n > 0.0)
}

/// Upstream's `ValidateCrossVersionObjectReference` at `path`.
fn validate_ref(r: &Value, path: &str, out: &mut Vec<Cause>) {
    for field in ["kind", "name"] {
        let v = s(&r[field]);
        let at = format!("{path}.{field}");
        if v.is_empty() {
            out.push(required(at));
        } else if v == "." || v == ".." {
            out.push(invalid(at, v, &format!("may not be '{v}'")));
        } else if let Some(c) = ['/', '%'].into_iter().find(|c| v.contains(*c)) {
            out.push(invalid(at, v, &format!("may not contain '{c}'")));
        }
    }
}

/// Upstream's `validateMetricTarget` at `path`.
fn validate_target(t: &Value, path: &str, out: &mut Vec<Cause>) {
    let kind = s(&t["type"]);
    if kind.is_empty() {
        out.push(required_because(
            format!("{path}.type"),
            "must specify a metric target type",
        ));
    } else if !TARGET_TYPES.contains(&kind) {
        out.push(invalid(
            format!("{path}.type"),
            kind,
            "must be either Utilization, Value, or AverageValue",
        ));
    }
    if let Some(u) = t["averageUtilization"].as_i64()
        && u < 1
    {
        out.push(invalid_num(
            format!("{path}.averageUtilization"),
            u,
            "must be greater than 0",
        ));
    }
    for field in ["value", "averageValue"] {
        if !t[field].is_null() && !positive_quantity(&t[field]) {
            out.push(invalid(
                format!("{path}.{field}"),
                s(&t[field]),
                "must be positive",
            ));
        }
    }
}

/// The field of a metric that carries its source, per `type`.
fn source_field(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "Object" => "object",
        "Pods" => "pods",
        "Resource" => "resource",
        "ContainerResource" => "containerResource",
        "External" => "external",
        _ => return None,
    })
}

/// Upstream's `validateMetricSpec` at `path`.
fn validate_metric(m: &Value, path: &str, out: &mut Vec<Cause>) {
    let kind = s(&m["type"]);
    if kind.is_empty() {
        out.push(required_because(
            format!("{path}.type"),
            "must specify a metric source type",
        ));
    } else if !METRIC_TYPES.contains(&kind) {
        out.push(not_supported(format!("{path}.type"), kind, METRIC_TYPES));
    }
    let present: Vec<&str> = METRIC_TYPES
        .iter()
        .filter_map(|t| source_field(t))
        .filter(|f| m[*f].is_object())
        .collect();
    if let Some(expected) = source_field(kind) {
        if !present.contains(&expected) {
            out.push(required_because(
                format!("{path}.{expected}"),
                "must populate information for the given metric source",
            ));
        }
        for other in present.iter().filter(|f| **f != expected) {
            out.push(crate::apiserver::validation::forbidden(
                format!("{path}.{other}"),
                "must populate the given metric source only",
            ));
        }
        let src = &m[expected];
        if src.is_object() {
            let at = format!("{path}.{expected}");
            match expected {
                "resource" | "containerResource" => {
                    if s(&src["name"]).is_empty() {
                        out.push(required_because(
                            format!("{at}.name"),
                            "must specify a resource name",
                        ));
                    }
                    if expected == "containerResource" && s(&src["container"]).is_empty() {
                        out.push(required_because(
                            format!("{at}.container"),
                            "must specify a container",
                        ));
                    }
                }
                "object" => validate_ref(
                    &src["describedObject"],
                    &format!("{at}.describedObject"),
                    out,
                ),
                _ => {}
            }
            if matches!(expected, "object" | "pods" | "external")
                && s(&src["metric"]["name"]).is_empty()
            {
                out.push(required_because(
                    format!("{at}.metric.name"),
                    "must specify a metric name",
                ));
            }
            validate_target(&src["target"], &format!("{at}.target"), out);
        }
    }
}

/// Upstream's `validateHorizontalPodAutoscalerSpec` (v2 form).
fn validate_spec(spec: &Value, out: &mut Vec<Cause>) {
    let min = spec["minReplicas"].as_i64();
    if let Some(m) = min
        && m < 1
    {
        out.push(invalid_num("spec.minReplicas", m, "must be greater than 0"));
    }
    let max = spec["maxReplicas"].as_i64().unwrap_or(0);
    if max < 1 {
        out.push(invalid_num(
            "spec.maxReplicas",
            max,
            "must be greater than 0",
        ));
    }
    if let Some(m) = min
        && max < m
    {
        out.push(invalid_num(
            "spec.maxReplicas",
            max,
            "must be greater than or equal to `minReplicas`",
        ));
    }
    validate_ref(&spec["scaleTargetRef"], "spec.scaleTargetRef", out);
    for (i, m) in spec["metrics"].as_array().into_iter().flatten().enumerate() {
        validate_metric(m, &format!("spec.metrics[{i}]"), out);
    }
    for key in ["scaleUp", "scaleDown"] {
        let rules = &spec["behavior"][key];
        if let Some(w) = rules["stabilizationWindowSeconds"].as_i64()
            && !(0..=3600).contains(&w)
        {
            out.push(invalid_num(
                format!("spec.behavior.{key}.stabilizationWindowSeconds"),
                w,
                if w < 0 {
                    "must be greater than or equal to zero"
                } else {
                    "must be less than or equal to 3600"
                },
            ));
        }
        for (i, p) in rules["policies"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let at = format!("spec.behavior.{key}.policies[{i}]");
            let t = s(&p["type"]);
            if !["Pods", "Percent"].contains(&t) {
                out.push(not_supported(format!("{at}.type"), t, &["Percent", "Pods"]));
            }
            if p["value"].as_i64().unwrap_or(0) <= 0 {
                out.push(invalid_num(
                    format!("{at}.value"),
                    p["value"].as_i64().unwrap_or(0),
                    "must be greater than zero",
                ));
            }
            let period = p["periodSeconds"].as_i64().unwrap_or(0);
            if period <= 0 {
                out.push(invalid_num(
                    format!("{at}.periodSeconds"),
                    period,
                    "must be greater than zero",
                ));
            } else if period > 1800 {
                out.push(invalid_num(
                    format!("{at}.periodSeconds"),
                    period,
                    "must be less than or equal to 1800",
                ));
            }
        }
    }
}

/// The status counts must not be negative (`ValidateHorizontalPodAutoscalerStatusUpdate`).
fn validate_status(status: &Value, out: &mut Vec<Cause>) {
    for field in ["currentReplicas", "desiredReplicas"] {
        if let Some(n) = status[field].as_i64()
            && n < 0
        {
            out.push(invalid_num(
                format!("status.{field}"),
                n,
                "must be greater than or equal to 0",
            ));
        }
    }
}

/// Upstream's `formatHPAMetrics`: the TARGETS cell, at most two metrics shown.
fn format_metrics(specs: &Value, statuses: &Value) -> String {
    let Some(specs) = specs.as_array().filter(|a| !a.is_empty()) else {
        return "<none>".into();
    };
    let current = |i: usize, field: &str, value: &str| -> Option<String> {
        let v = &statuses[i][field]["current"][value];
        (!v.is_null()).then(|| match v.as_i64() {
            Some(n) if value == "averageUtilization" => format!("{n}%"),
            _ => s(v).to_string(),
        })
    };
    let unknown = || "<unknown>".to_string();
    let mut list: Vec<String> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let item = match s(&spec["type"]) {
            "External" | "Object" => {
                let field = if spec["type"] == "External" {
                    "external"
                } else {
                    "object"
                };
                let target = &spec[field]["target"];
                if !target["averageValue"].is_null() {
                    let cur = current(i, field, "averageValue").unwrap_or_else(unknown);
                    format!("{cur}/{} (avg)", s(&target["averageValue"]))
                } else {
                    let cur = current(i, field, "value").unwrap_or_else(unknown);
                    format!("{cur}/{}", s(&target["value"]))
                }
            }
            "Pods" => {
                let cur = current(i, "pods", "averageValue").unwrap_or_else(unknown);
                format!("{cur}/{}", s(&spec["pods"]["target"]["averageValue"]))
            }
            t @ ("Resource" | "ContainerResource") => {
                let field = if t == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let src = &spec[field];
                let name = s(&src["name"]);
                if !src["target"]["averageValue"].is_null() {
                    let cur = current(i, field, "averageValue").unwrap_or_else(unknown);
                    format!("{name}: {cur}/{}", s(&src["target"]["averageValue"]))
                } else {
                    let cur = current(i, field, "averageUtilization").unwrap_or_else(unknown);
                    let target = src["target"]["averageUtilization"]
                        .as_i64()
                        .map_or("<auto>".to_string(), |n| format!("{n}%"));
                    format!("{name}: {cur}/{target}")
                }
            }
            _ => "<unknown type>".into(),
        };
        list.push(item);
    }
    let count = list.len();
    if count > 2 {
        list.truncate(2);
        return format!("{} + {} more...", list.join(", "), count - 2);
    }
    list.join(", ")
}

fn hpa_columns() -> Vec<Column> {
    vec![
        name_col(),
        col(
            "Reference",
            "string",
            0,
            "The kind and name of the object whose scale is controlled.",
        ),
        col(
            "Targets",
            "string",
            0,
            "The current and target value of each metric (at most two shown).",
        ),
        col(
            "MinPods",
            "string",
            0,
            "The lower limit for the number of replicas.",
        ),
        col(
            "MaxPods",
            "string",
            0,
            "The upper limit for the number of replicas.",
        ),
        col(
            "Replicas",
            "string",
            0,
            "The current number of replicas of the scaled object.",
        ),
        age_col(),
    ]
}

/// The row of a v2-form object.
fn hpa_cells(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let spec = &obj["spec"];
    let min = spec["minReplicas"]
        .as_i64()
        .map_or("<unset>".to_string(), |n| n.to_string());
    vec![
        json!(s(&obj["metadata"]["name"])),
        json!(format!(
            "{}/{}",
            s(&spec["scaleTargetRef"]["kind"]),
            s(&spec["scaleTargetRef"]["name"])
        )),
        json!(format_metrics(
            &spec["metrics"],
            &obj["status"]["currentMetrics"]
        )),
        json!(min),
        json!(spec["maxReplicas"].as_i64().unwrap_or(0)),
        json!(obj["status"]["currentReplicas"].as_i64().unwrap_or(0)),
        json!(age(obj["metadata"]["creationTimestamp"].as_str(), now)),
    ]
}

/// Copies the fields named in `keys` from `from` into a new map.
fn pick(from: &Value, keys: &[&str]) -> Map<String, Value> {
    keys.iter()
        .filter_map(|k| {
            from.get(*k)
                .filter(|v| !v.is_null())
                .map(|v| (k.to_string(), v.clone()))
        })
        .collect()
}

/// The v1 view of a stored (v2) object.
pub fn v2_to_v1(v2: &Value) -> Value {
    let mut meta = v2["metadata"].clone();
    let mut notes: Map<String, Value> =
        meta["annotations"].as_object().cloned().unwrap_or_default();
    let spec_in = &v2["spec"];
    let mut spec = pick(spec_in, &["scaleTargetRef", "minReplicas", "maxReplicas"]);
    let mut others = Vec::new();
    let mut cpu = None;
    for m in spec_in["metrics"].as_array().into_iter().flatten() {
        match cpu_utilization_target(m) {
            Some(u) if cpu.is_none() => cpu = Some(u),
            _ => others.push(m.clone()),
        }
    }
    if let Some(u) = cpu {
        spec.insert("targetCPUUtilizationPercentage".into(), json!(u));
    }
    let mut note = |key: &str, v: &Value| {
        notes.insert(key.into(), Value::String(v.to_string()));
    };
    if !others.is_empty() {
        note(METRICS_ANNOTATION, &Value::Array(others));
    }
    if spec_in["behavior"].is_object() {
        note(BEHAVIOR_ANNOTATION, &spec_in["behavior"]);
    }
    let status_in = &v2["status"];
    let mut status = pick(
        status_in,
        &[
            "observedGeneration",
            "lastScaleTime",
            "currentReplicas",
            "desiredReplicas",
        ],
    );
    status.entry("currentReplicas").or_insert_with(|| json!(0));
    status.entry("desiredReplicas").or_insert_with(|| json!(0));
    if let Some(current) = status_in["currentMetrics"]
        .as_array()
        .filter(|a| !a.is_empty())
    {
        if let Some(u) = current.iter().find_map(|m| {
            (m["type"] == "Resource" && m["resource"]["name"] == "cpu")
                .then(|| m["resource"]["current"]["averageUtilization"].as_i64())
                .flatten()
        }) {
            status.insert("currentCPUUtilizationPercentage".into(), json!(u));
        }
        note(CURRENT_METRICS_ANNOTATION, &status_in["currentMetrics"]);
    }
    if status_in["conditions"]
        .as_array()
        .is_some_and(|c| !c.is_empty())
    {
        note(CONDITIONS_ANNOTATION, &status_in["conditions"]);
    }
    if !notes.is_empty() {
        meta["annotations"] = Value::Object(notes);
    }
    json!({"apiVersion": "autoscaling/v1", "kind": KIND, "metadata": meta,
        "spec": spec, "status": status})
}

/// Takes the JSON held in annotation `key` out of `notes`.
fn take_note(notes: &mut Map<String, Value>, key: &str) -> Option<Value> {
    notes
        .remove(key)
        .and_then(|v| serde_json::from_str(v.as_str()?).ok())
}

/// The stored (v2) form of a v1 object.
pub fn v1_to_v2(v1: &Value) -> Value {
    let mut meta = v1["metadata"].clone();
    let mut notes: Map<String, Value> =
        meta["annotations"].as_object().cloned().unwrap_or_default();
    let spec_in = &v1["spec"];
    let mut spec = pick(spec_in, &["scaleTargetRef", "minReplicas", "maxReplicas"]);
    let mut metrics = Vec::new();
    if let Some(u) = spec_in["targetCPUUtilizationPercentage"].as_i64() {
        metrics.push(cpu_metric(u));
    }
    if let Some(Value::Array(others)) = take_note(&mut notes, METRICS_ANNOTATION) {
        metrics.extend(others);
    }
    if metrics.is_empty() {
        metrics.push(cpu_metric(DEFAULT_CPU_UTILIZATION));
    }
    spec.insert("metrics".into(), Value::Array(metrics));
    if let Some(b) = take_note(&mut notes, BEHAVIOR_ANNOTATION).filter(Value::is_object) {
        spec.insert("behavior".into(), b);
    }
    let status_in = &v1["status"];
    let mut status = pick(
        status_in,
        &[
            "observedGeneration",
            "lastScaleTime",
            "currentReplicas",
            "desiredReplicas",
        ],
    );
    match take_note(&mut notes, CURRENT_METRICS_ANNOTATION) {
        Some(Value::Array(current)) => {
            status.insert("currentMetrics".into(), Value::Array(current));
        }
        _ => {
            if let Some(u) = status_in["currentCPUUtilizationPercentage"].as_i64() {
                status.insert(
                    "currentMetrics".into(),
                    json!([{"type": "Resource", "resource": {"name": "cpu",
                        "current": {"averageUtilization": u}}}]),
                );
            }
        }
    }
    if let Some(Value::Array(conditions)) = take_note(&mut notes, CONDITIONS_ANNOTATION) {
        status.insert("conditions".into(), Value::Array(conditions));
    }
    if let Some(m) = meta.as_object_mut() {
        if notes.is_empty() {
            m.remove("annotations");
        } else {
            m.insert("annotations".into(), Value::Object(notes));
        }
    }
    json!({"apiVersion": "autoscaling/v2", "kind": KIND, "metadata": meta,
        "spec": spec, "status": status})
}

/// Status is reset on create; the generation moves when the spec changes.
fn prepare_create(obj: &mut Value) {
    obj["status"] = json!({});
}

fn prepare_update(old: &Value, new: &mut Value) {
    new["status"] = old["status"].clone();
    if old["spec"] != new["spec"] {
        let g = old["metadata"]["generation"].as_i64().unwrap_or(1);
        new["metadata"]["generation"] = json!(g + 1);
    }
}

impl Strategy for HorizontalPodAutoscalers {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler);

    fn prepare_for_create(&self, obj: &mut Value) {
        prepare_create(obj);
        set_defaults(obj);
    }

    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        prepare_update(old, new);
        set_defaults(new);
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        validate_spec(&obj["spec"], &mut out);
        out
    }

    fn validate_update(&self, _old: &Value, new: &Value) -> Vec<Cause> {
        self.validate(new)
    }

    fn validate_subresource_update(&self, _sub: &str, _old: &Value, new: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        validate_status(&new["status"], &mut out);
        out
    }

    fn columns(&self) -> Vec<Column> {
        hpa_columns()
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        hpa_cells(obj, now)
    }
}

impl Strategy for HorizontalPodAutoscalersV1 {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler);

    fn to_view(&self, stored: &Value) -> Value {
        v2_to_v1(stored)
    }

    fn stored_is_view(&self) -> bool {
        false
    }

    /// Defaults apply to the stored form, as upstream defaults after converting.
    fn to_storage(&self, obj: Value) -> Value {
        let mut v2 = v1_to_v2(&obj);
        set_defaults(&mut v2);
        v2
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        prepare_create(obj);
        if obj["spec"]["minReplicas"].is_null() && obj["spec"].is_object() {
            obj["spec"]["minReplicas"] = json!(1);
        }
    }

    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        prepare_update(old, new);
    }

    /// The v1 object is checked in its v2 form (upstream validates the internal one).
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        if let Some(u) = obj["spec"]["targetCPUUtilizationPercentage"].as_i64()
            && u < 1
        {
            out.push(invalid_num(
                "spec.targetCPUUtilizationPercentage",
                u,
                "must be greater than 0",
            ));
            return out;
        }
        let mut v2 = v1_to_v2(obj);
        set_defaults(&mut v2);
        validate_spec(&v2["spec"], &mut out);
        out
    }

    fn validate_update(&self, _old: &Value, new: &Value) -> Vec<Cause> {
        self.validate(new)
    }

    fn validate_subresource_update(&self, _sub: &str, _old: &Value, new: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        validate_status(&new["status"], &mut out);
        out
    }

    fn columns(&self) -> Vec<Column> {
        hpa_columns()
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        hpa_cells(&v1_to_v2(obj), now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> jiff::Timestamp {
        "2026-01-01T00:01:00Z".parse().unwrap()
    }

    fn v2(metrics: Value) -> Value {
        json!({"apiVersion": "autoscaling/v2", "kind": KIND,
            "metadata": {"name": "web", "namespace": "default",
                "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "maxReplicas": 5, "metrics": metrics}})
    }

    #[test]
    fn defaults_fill_min_replicas_cpu_target_and_behavior_rules() {
        let mut o = v2(json!([]));
        o["spec"]["behavior"] = json!({"scaleDown": {"stabilizationWindowSeconds": 60}});
        HorizontalPodAutoscalers::new().prepare_for_create(&mut o);
        assert_eq!(o["spec"]["minReplicas"], 1);
        assert_eq!(o["spec"]["metrics"], json!([cpu_metric(80)]));
        assert_eq!(
            o["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
            60
        );
        assert_eq!(o["spec"]["behavior"]["scaleDown"]["selectPolicy"], "Max");
        assert_eq!(o["spec"]["behavior"]["scaleUp"]["policies"][0]["value"], 4);
        assert_eq!(o["status"], json!({}));
    }

    #[test]
    fn validation_uses_upstream_messages() {
        let mut o = v2(json!([{"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 0}}},
            {"type": "Pods"}, {"type": "Bogus"}]));
        o["spec"]["minReplicas"] = json!(6);
        o["spec"]["scaleTargetRef"]["name"] = json!("");
        let causes = HorizontalPodAutoscalers::new().validate(&o);
        let text: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let has = |needle: &str| text.iter().any(|t| t.contains(needle));
        assert!(
            has(
                "spec.maxReplicas: Invalid value: 5: must be greater than or equal to `minReplicas`"
            ),
            "{text:?}"
        );
        assert!(has("spec.scaleTargetRef.name: Required value"), "{text:?}");
        assert!(
            has(
                "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0"
            ),
            "{text:?}"
        );
        assert!(
            has(
                "spec.metrics[1].pods: Required value: must populate information for the given metric source"
            ),
            "{text:?}"
        );
        assert!(
            has("spec.metrics[2].type: Unsupported value: \"Bogus\""),
            "{text:?}"
        );
    }

    #[test]
    fn v1_and_v2_convert_both_ways_without_loss() {
        let mut o = v2(json!([cpu_metric(50), {"type": "Pods", "pods": {
            "metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}}]));
        o["spec"]["minReplicas"] = json!(2);
        o["status"] = json!({"currentReplicas": 2, "desiredReplicas": 3,
            "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu",
                "current": {"averageUtilization": 42}}}],
            "conditions": [{"type": "AbleToScale", "status": "True"}]});
        let v1 = v2_to_v1(&o);
        assert_eq!(v1["apiVersion"], "autoscaling/v1");
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 50);
        assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 42);
        let notes = &v1["metadata"]["annotations"];
        assert!(s(&notes[METRICS_ANNOTATION]).contains("qps"));
        assert!(s(&notes[CONDITIONS_ANNOTATION]).contains("AbleToScale"));
        let back = v1_to_v2(&v1);
        assert_eq!(back["spec"]["metrics"], o["spec"]["metrics"]);
        assert_eq!(back["status"], o["status"]);
        assert!(back["metadata"].get("annotations").is_none());
    }

    #[test]
    fn a_v1_object_without_target_gets_the_default_cpu_target() {
        let v1 = json!({"metadata": {"name": "a"}, "spec": {"maxReplicas": 3,
            "scaleTargetRef": {"kind": "Deployment", "name": "a"}}});
        let stored = HorizontalPodAutoscalersV1::new().to_storage(v1);
        assert_eq!(stored["spec"]["metrics"], json!([cpu_metric(80)]));
        assert_eq!(
            v2_to_v1(&stored)["spec"]["targetCPUUtilizationPercentage"],
            80
        );
    }

    #[test]
    fn table_row_matches_upstream_printer() {
        let mut o = v2(json!([cpu_metric(80)]));
        HorizontalPodAutoscalers::new().prepare_for_create(&mut o);
        let cells = HorizontalPodAutoscalers::new().cells(&o, now());
        assert_eq!(
            cells,
            vec![
                json!("web"),
                json!("Deployment/web"),
                json!("cpu: <unknown>/80%"),
                json!("1"),
                json!(5),
                json!(0),
                json!("60s")
            ]
        );
        let three = json!([cpu_metric(1), cpu_metric(2), cpu_metric(3)]);
        assert_eq!(
            format_metrics(
                &three,
                &json!([{"resource": {"current": {"averageUtilization": 7}}}])
            ),
            "cpu: 7%/1%, cpu: <unknown>/2% + 1 more..."
        );
    }
}
