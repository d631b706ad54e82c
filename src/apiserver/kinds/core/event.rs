//! core/v1 Events, and the printer both event APIs share (events.k8s.io/v1 Events are
//! stored in this form; see `kinds/events/event.rs`).

use serde_json::{Value, json};

use crate::apiserver::kinds::{ResourceDef, Strategy};
use crate::apiserver::table::{Column, age, col, s};

/// The core/v1 `Event` strategy.
pub struct Events {
    def: ResourceDef,
}

impl Events {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        Events {
            def: ResourceDef::new("", "v1", "Event", "events").short_names(&["ev"]),
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
        json!({"metadata": {"creationTimestamp": null}, "involvedObject": {}, "source": {},
            "firstTimestamp": null, "lastTimestamp": null, "eventTime": null,
            "reportingComponent": "", "reportingInstance": ""})
    }

    crate::typed_kind!(k8s_openapi::api::core::v1::Event);

    fn selectable_fields(&self) -> &'static [&'static str] {
        &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ]
    }

    /// `source` is the source component, or the reporting controller of events written
    /// through events.k8s.io (which have no source), as upstream's event fields.
    fn field_value(&self, obj: &Value, path: &str) -> String {
        match path {
            "source" => {
                let component = s(&obj["source"]["component"]);
                if component.is_empty() {
                    s(&obj["reportingComponent"]).to_string()
                } else {
                    component.to_string()
                }
            }
            p => crate::apiserver::selectors::field_value(obj, p),
        }
    }

    fn columns(&self) -> Vec<Column> {
        event_columns()
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        event_cells(obj, now, true)
    }
}

/// The columns of `kubectl get events` (both APIs).
pub fn event_columns() -> Vec<Column> {
    vec![
        col("Last Seen", "string", 0, "Time when last event occurred"),
        col("Type", "string", 0, "Type of this event."),
        col(
            "Reason",
            "string",
            0,
            "Reason why this event was generated.",
        ),
        col("Object", "string", 0, "The object this event is about."),
        col(
            "Subobject",
            "string",
            1,
            "The subobject this event is about.",
        ),
        col("Source", "string", 1, "The component reporting this event."),
        col(
            "Message",
            "string",
            0,
            "A human-readable description of the status of this operation.",
        ),
        col(
            "First Seen",
            "string",
            1,
            "Time when this event occurred first.",
        ),
        col(
            "Count",
            "string",
            1,
            "The number of times this event has occurred.",
        ),
        Column {
            name: "Name",
            kind: "string",
            format: "name",
            description: "Name of the event.",
            priority: 1,
        },
    ]
}

/// The cells of one event; `core` says which API's field names `obj` has.
pub fn event_cells(obj: &Value, now: jiff::Timestamp, core: bool) -> Vec<Value> {
    let name = json!(s(&obj["metadata"]["name"]));
    let created = obj["metadata"]["creationTimestamp"].as_str();
    {
        let (inv, src, msg, first, last, count) = if core {
            (
                &obj["involvedObject"],
                s(&obj["source"]["component"]).to_string(),
                s(&obj["message"]),
                &obj["firstTimestamp"],
                &obj["lastTimestamp"],
                obj["count"].as_i64().unwrap_or(1),
            )
        } else {
            (
                &obj["regarding"],
                s(&obj["reportingController"]).to_string(),
                s(&obj["note"]),
                &obj["deprecatedFirstTimestamp"],
                &obj["deprecatedLastTimestamp"],
                obj["deprecatedCount"].as_i64().unwrap_or(1),
            )
        };
        let last_t = last.as_str().or(obj["eventTime"].as_str()).or(created);
        let first_t = first.as_str().or(obj["eventTime"].as_str()).or(created);
        let last_seen = if count > 1 {
            format!("{} (x{count} over {})", age(last_t, now), age(first_t, now))
        } else {
            age(last_t, now)
        };
        let kind = s(&inv["kind"]).to_lowercase();
        vec![
            json!(last_seen),
            json!(s(&obj["type"])),
            json!(s(&obj["reason"])),
            json!(format!("{kind}/{}", s(&inv["name"]))),
            json!(s(&inv["fieldPath"])),
            json!(src),
            json!(msg.trim()),
            json!(age(first_t, now)),
            json!(count.to_string()),
            name,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_selector_falls_back_to_the_reporting_controller() {
        let ev = Events::new();
        let from_events_api = json!({"reportingComponent": "test-controller"});
        assert_eq!(
            ev.field_value(&from_events_api, "source"),
            "test-controller"
        );
        let kubelet = json!({"source": {"component": "kubelet"}, "reportingComponent": "x"});
        assert_eq!(ev.field_value(&kubelet, "source"), "kubelet");
        assert_eq!(
            event_cells(&kubelet, jiff::Timestamp::now(), true).len(),
            event_columns().len()
        );
    }
}
