//! DefaultTolerationSeconds (upstream's `plugin/pkg/admission/defaulttolerationseconds`):
//! a new pod that does not already tolerate the not-ready / unreachable NoExecute taints
//! gets tolerations for them limited to 300 s, so taint-based eviction waits five minutes
//! before moving it off a failed node.

use serde_json::{Value, json};

use super::{Admit, Operation, Plugin, Request};
use crate::apiserver::ApiServer;

/// Upstream's default `--default-not-ready-toleration-seconds` and unreachable twin.
pub const SECONDS: i64 = 300;

const KEYS: [&str; 2] = [
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
];

/// The plugin.
pub struct DefaultTolerationSeconds;

/// Adds the missing tolerations to a pod (JSON view form).
pub fn add_defaults(pod: &mut Value) {
    let existing = pod["spec"]["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    // Upstream: an empty key or effect counts as covering the taint.
    let covers = |key: &str| {
        existing.iter().any(|t| {
            let k = t["key"].as_str().unwrap_or("");
            let e = t["effect"].as_str().unwrap_or("");
            (k == key || k.is_empty()) && (e == "NoExecute" || e.is_empty())
        })
    };
    let mut out = existing.clone();
    for key in KEYS {
        if !covers(key) {
            out.push(
                json!({"key": key, "operator": "Exists", "effect": "NoExecute",
                "tolerationSeconds": SECONDS}),
            );
        }
    }
    if out.len() != existing.len() && pod["spec"].is_object() {
        pod["spec"]["tolerations"] = Value::Array(out);
    }
}

impl Plugin for DefaultTolerationSeconds {
    fn name(&self) -> &'static str {
        "DefaultTolerationSeconds"
    }

    fn mutate<'a>(
        &'a self,
        _srv: &'a ApiServer,
        req: &'a Request<'a>,
        obj: &'a mut Value,
    ) -> Admit<'a> {
        Box::pin(async move {
            let def = req.kind.def();
            if def.group.is_empty()
                && def.plural == "pods"
                && req.subresource.is_none()
                && req.operation == Operation::Create
            {
                add_defaults(obj);
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_only_the_missing_tolerations() {
        let mut p = json!({"spec": {"containers": []}});
        add_defaults(&mut p);
        assert_eq!(
            p["spec"]["tolerations"],
            json!([
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ])
        );
        let mut all = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        add_defaults(&mut all);
        assert_eq!(all["spec"]["tolerations"], json!([{"operator": "Exists"}]));
        let mut one = json!({"spec": {"tolerations": [{"key": "node.kubernetes.io/unreachable",
            "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}]}});
        add_defaults(&mut one);
        let t = one["spec"]["tolerations"].as_array().unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0]["tolerationSeconds"], 10);
        assert_eq!(t[1]["key"], "node.kubernetes.io/not-ready");
    }
}
