//! Nodes: cluster-scoped, stored under `minions` as upstream does, with the
//! `kubectl get nodes` columns (STATUS, ROLES, VERSION, ...).

use serde_json::{Value, json};

use crate::apiserver::kinds::{GET_PATCH_UPDATE, ListMerge, ResourceDef, Strategy};
use crate::apiserver::table::{Column, age, age_col, col, name_col, none_if_empty, s};

/// The `Node` strategy.
pub struct Nodes {
    def: ResourceDef,
}

impl Nodes {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        Nodes {
            def: ResourceDef::new("", "v1", "Node", "nodes")
                .cluster_scoped()
                .short_names(&["no"])
                .subresource("status", "Node", GET_PATCH_UPDATE)
                .subresource("proxy", "NodeProxyOptions", super::pod::PROXY_VERBS)
                .storage("minions"),
        }
    }
}

impl Default for Nodes {
    fn default() -> Self {
        Self::new()
    }
}

impl Strategy for Nodes {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    fn zero_object(&self) -> Value {
        json!({"metadata": {"creationTimestamp": null}, "spec": {}, "status": {
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {"machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "",
                "osImage": "", "containerRuntimeVersion": "", "kubeletVersion": "",
                "kubeProxyVersion": "", "operatingSystem": "", "architecture": ""}}})
    }

    crate::typed_kind!(k8s_openapi::api::core::v1::Node);

    fn selectable_fields(&self) -> &'static [&'static str] {
        &["spec.unschedulable"]
    }

    fn field_value(&self, obj: &Value, path: &str) -> String {
        match path {
            "spec.unschedulable" if obj["spec"]["unschedulable"].is_null() => "false".into(),
            p => crate::apiserver::selectors::field_value(obj, p),
        }
    }

    fn list_merge(&self, path: &[&str]) -> ListMerge {
        match path {
            ["status", "conditions" | "addresses"] => ListMerge::MergeByKey("type"),
            _ => ListMerge::Replace,
        }
    }

    fn columns(&self) -> Vec<Column> {
        let age = age_col();
        vec![
            name_col(),
            col("Status", "string", 0, "The status of the node"),
            col("Roles", "string", 0, "The roles of the node"),
            age,
            col(
                "Version",
                "string",
                0,
                "Kubelet Version reported by the node.",
            ),
            col(
                "Internal-IP",
                "string",
                1,
                "List of internal IPs of the node.",
            ),
            col(
                "External-IP",
                "string",
                1,
                "List of external IPs of the node.",
            ),
            col("OS-Image", "string", 1, "OS Image reported by the node."),
            col(
                "Kernel-Version",
                "string",
                1,
                "Kernel Version reported by the node.",
            ),
            col(
                "Container-Runtime",
                "string",
                1,
                "Container Runtime Version reported by the node.",
            ),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let name = json!(s(&obj["metadata"]["name"]));
        let created = obj["metadata"]["creationTimestamp"].as_str();
        let age_cell = json!(age(created, now));
        {
            let ready = obj["status"]["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
                .map(|c| s(&c["status"]).to_string());
            let mut status = match ready.as_deref() {
                Some("True") => "Ready".to_string(),
                Some(_) => "NotReady".to_string(),
                None => "Unknown".to_string(),
            };
            if obj["spec"]["unschedulable"].as_bool() == Some(true) {
                status.push_str(",SchedulingDisabled");
            }
            let mut roles: Vec<String> = obj["metadata"]["labels"]
                .as_object()
                .map(|l| {
                    l.iter()
                        .filter_map(|(k, v)| {
                            if let Some(r) = k.strip_prefix("node-role.kubernetes.io/") {
                                Some(r.to_string())
                            } else if k == "kubernetes.io/role" {
                                v.as_str().map(String::from)
                            } else {
                                None
                            }
                        })
                        .filter(|r| !r.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            roles.sort();
            let addr = |t: &str| {
                obj["status"]["addresses"]
                    .as_array()
                    .and_then(|a| a.iter().find(|x| x["type"] == t))
                    .map(|x| s(&x["address"]).to_string())
                    .unwrap_or_else(|| "<none>".into())
            };
            let info = &obj["status"]["nodeInfo"];
            vec![
                name,
                json!(status),
                json!(if roles.is_empty() {
                    "<none>".to_string()
                } else {
                    roles.join(",")
                }),
                age_cell,
                json!(s(&info["kubeletVersion"])),
                json!(addr("InternalIP")),
                json!(addr("ExternalIP")),
                json!(none_if_empty(s(&info["osImage"]))),
                json!(none_if_empty(s(&info["kernelVersion"]))),
                json!(none_if_empty(s(&info["containerRuntimeVersion"]))),
            ]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows() {
        let nodes = Nodes::new();
        let now = jiff::Timestamp::now();
        let node = json!({"metadata": {"name": "n", "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v1.32.4"}, "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}]}});
        let cells = nodes.cells(&node, now);
        assert_eq!(cells.len(), nodes.columns().len());
        assert_eq!(cells[1], "Ready");
        assert_eq!(cells[2], "control-plane");
        assert_eq!(cells[5], "127.0.0.1");
    }
}
