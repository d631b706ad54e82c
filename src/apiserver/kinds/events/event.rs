//! events.k8s.io/v1 Events: the same objects as core/v1 Events (one storage segment),
//! shown and accepted with the newer API's field names.

use serde_json::{Map, Value, json};

use crate::apiserver::kinds::core::event::{event_cells, event_columns};
use crate::apiserver::kinds::{ResourceDef, Strategy};
use crate::apiserver::table::Column;

/// The events.k8s.io/v1 `Event` strategy.
pub struct Events {
    def: ResourceDef,
}

impl Events {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        Events {
            def: ResourceDef::new("events.k8s.io", "v1", "Event", "events")
                .short_names(&["ev"])
                .storage("events"),
        }
    }
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

impl Strategy for Events {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    fn zero_object(&self) -> Value {
        json!({"metadata": {"creationTimestamp": null}, "eventTime": null,
            "regarding": {}, "deprecatedSource": {}, "deprecatedFirstTimestamp": null,
            "deprecatedLastTimestamp": null})
    }

    crate::typed_kind!(k8s_openapi::api::events::v1::Event);

    fn to_view(&self, stored: &Value) -> Value {
        core_to_events_v1(stored)
    }

    fn stored_is_view(&self) -> bool {
        false
    }

    fn to_storage(&self, obj: Value) -> Value {
        events_v1_to_core(&obj)
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &[
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "regarding.resourceVersion",
            "regarding.fieldPath",
            "reason",
            "reportingController",
            "type",
        ]
    }

    fn columns(&self) -> Vec<Column> {
        event_columns()
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        event_cells(obj, now, false)
    }
}

/// Converts a stored (core/v1) Event into its events.k8s.io/v1 form.
fn core_to_events_v1(core: &Value) -> Value {
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
fn events_v1_to_core(ev: &Value) -> Value {
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
    fn events_convert_both_ways() {
        let core = json!({"apiVersion":"v1","kind":"Event","metadata":{"name":"e"},"involvedObject":{"name":"p"},"message":"hi","count":2});
        let v1 = core_to_events_v1(&core);
        assert_eq!(v1["regarding"]["name"], "p");
        assert_eq!(v1["note"], "hi");
        assert_eq!(events_v1_to_core(&v1), core);
    }
}
