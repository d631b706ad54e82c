//! The core group (`/api/v1`).

pub mod componentstatus;
pub mod configmap;
pub mod endpoints;
pub mod event;
pub mod limitrange;
pub mod namespace;
pub mod node;
pub mod persistentvolume;
pub mod persistentvolumeclaim;
pub mod pod;
pub mod podspec;
pub mod podtemplate;
pub mod replicationcontroller;
pub mod resourcequota;
pub mod secret;
pub mod service;
pub mod serviceaccount;

use std::sync::Arc;

use serde_json::Value;

use super::Kind;
use crate::apiserver::validation::{Cause, forbidden, invalid};

/// The kinds of the core group, in discovery order.
pub fn kinds() -> Vec<Kind> {
    vec![
        Arc::new(namespace::Namespaces::new()),
        Arc::new(pod::Pods::new()),
        Arc::new(node::Nodes::new()),
        Arc::new(event::Events::new()),
        Arc::new(service::Services::new()),
        Arc::new(configmap::ConfigMaps::new()),
        Arc::new(secret::Secrets::new()),
        Arc::new(serviceaccount::ServiceAccounts::new()),
        // Upstream lists /api/v1 resources alphabetically; these keep that order.
        Arc::new(componentstatus::ComponentStatuses::new()),
        Arc::new(endpoints::EndpointsKind::new()),
        Arc::new(limitrange::LimitRanges::new()),
        Arc::new(persistentvolumeclaim::PersistentVolumeClaims::new()),
        Arc::new(persistentvolume::PersistentVolumes::new()),
        Arc::new(podtemplate::PodTemplates::new()),
        Arc::new(replicationcontroller::ReplicationControllers::new()),
        Arc::new(resourcequota::ResourceQuotas::new()),
    ]
}

/// The key rules and the 1 MiB total of ConfigMap and Secret data.
fn validate_data_keys(obj: &Value, out: &mut Vec<Cause>) {
    let mut total = 0usize;
    for field in ["data", "binaryData", "stringData"] {
        if let Some(m) = obj[field].as_object() {
            for (k, v) in m {
                if k.is_empty()
                    || k.len() > 253
                    || !k
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
                {
                    out.push(invalid(format!("{field}[{k}]"), k, "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"));
                }
                total += v.as_str().map(str::len).unwrap_or(0);
            }
        }
    }
    if total > 1024 * 1024 {
        out.push(Cause {
            reason: "FieldValueTooLong".into(),
            message: "Too long: must have at most 1048576 bytes".into(),
            field: "data".into(),
        });
    }
}

/// ConfigMaps and Secrets marked `immutable: true` keep their data, and stay immutable.
fn validate_immutable_data(old: &Value, new: &Value, out: &mut Vec<Cause>) {
    if old["immutable"].as_bool() != Some(true) {
        return;
    }
    if old["data"] != new["data"] || old["binaryData"] != new["binaryData"] {
        out.push(forbidden(
            "data",
            "field is immutable when `immutable` is set",
        ));
    }
    if new["immutable"].as_bool() != Some(true) {
        out.push(forbidden(
            "immutable",
            "field is immutable when `immutable` is set",
        ));
    }
}
