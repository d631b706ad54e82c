//! admissionregistration.k8s.io/v1 MutatingWebhookConfigurations (cluster-scoped): upstream's
//! defaults and validation (shared with the other webhook kind in the group's module)
//! and the NAME WEBHOOKS AGE printer. The webhooks are called by
//! `crate::apiserver::admission::webhook`.

use serde_json::{Value, json};

use super::{default_webhooks, validate_webhooks, webhook_cells, webhook_columns};
use crate::apiserver::kinds::{ResourceDef, Strategy};
use crate::apiserver::table::Column;
use crate::apiserver::validation::Cause;

/// The `MutatingWebhookConfiguration` strategy.
pub struct MutatingWebhookConfigurations {
    def: ResourceDef,
}

impl MutatingWebhookConfigurations {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        MutatingWebhookConfigurations {
            def: ResourceDef::new(
                super::GROUP,
                "v1",
                "MutatingWebhookConfiguration",
                "mutatingwebhookconfigurations",
            )
            .cluster_scoped()
            .categories(&["api-extensions"]),
        }
    }
}

impl Default for MutatingWebhookConfigurations {
    fn default() -> Self {
        Self::new()
    }
}

impl Strategy for MutatingWebhookConfigurations {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration);

    fn zero_object(&self) -> Value {
        json!({"metadata": {"creationTimestamp": null}})
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        default_webhooks(obj, true);
    }

    fn prepare_for_update(&self, _old: &Value, new: &mut Value) {
        default_webhooks(new, true);
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        validate_webhooks(obj, true, &mut out);
        out
    }

    fn validate_update(&self, _old: &Value, new: &Value) -> Vec<Cause> {
        self.validate(new)
    }

    fn columns(&self) -> Vec<Column> {
        webhook_columns()
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        webhook_cells(obj, now)
    }
}
