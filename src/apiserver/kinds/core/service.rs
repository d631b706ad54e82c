//! Services: DNS-1035 names, ClusterIP allocation and the spec defaults upstream sets,
//! port validation, and an immutable cluster IP.

use serde_json::{Value, json};

use crate::apiserver::kinds::{GET_PATCH_UPDATE, ListMerge, ResourceDef, Strategy};
use crate::apiserver::table::{Column, age, age_col, col, name_col, none_if_empty, s};
use rand::Rng;

use crate::apiserver::defaults::obj_mut;
use crate::apiserver::validation::{Cause, invalid, invalid_num, not_supported, required};

fn set_defaults(svc: &mut Value) {
    let spec = obj_mut(svc, "spec");
    spec.entry("type").or_insert(json!("ClusterIP"));
    spec.entry("sessionAffinity").or_insert(json!("None"));
    let ty = spec["type"].as_str().unwrap_or("ClusterIP").to_string();
    if ty != "ExternalName" {
        if !spec.contains_key("clusterIP") {
            let mut rng = rand::rng();
            let ip = format!(
                "10.96.{}.{}",
                rng.random_range(0..255u8),
                rng.random_range(2..254u8)
            );
            spec.insert("clusterIP".into(), json!(ip));
        }
        let ip = spec["clusterIP"].clone();
        spec.entry("clusterIPs").or_insert(json!([ip]));
        spec.entry("ipFamilies").or_insert(json!(["IPv4"]));
        spec.entry("ipFamilyPolicy").or_insert(json!("SingleStack"));
        spec.entry("internalTrafficPolicy")
            .or_insert(json!("Cluster"));
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports {
            if let Some(p) = p.as_object_mut() {
                p.entry("protocol").or_insert(json!("TCP"));
                if let Some(port) = p.get("port").cloned() {
                    p.entry("targetPort").or_insert(port);
                }
            }
        }
    }
    svc["status"] = json!({"loadBalancer": {}});
}

/// The `Services` strategy.
pub struct Services {
    def: ResourceDef,
}

impl Services {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        Services {
            def: ResourceDef::new("", "v1", "Service", "services")
                .short_names(&["svc"])
                .categories(&["all"])
                .subresource("status", "Service", GET_PATCH_UPDATE)
                .subresource("proxy", "ServiceProxyOptions", super::pod::PROXY_VERBS)
                .storage("services/specs"),
        }
    }
}

impl Default for Services {
    fn default() -> Self {
        Self::new()
    }
}

impl Strategy for Services {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    fn zero_object(&self) -> Value {
        json!({"metadata": {"creationTimestamp": null}, "spec": {}, "status": {"loadBalancer": {}}})
    }

    crate::typed_kind!(k8s_openapi::api::core::v1::Service);

    fn validate_name(&self, name: &str) -> Vec<String> {
        crate::apiserver::validation::dns1035_name(name)
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        set_defaults(obj);
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        {
            let ty = obj["spec"]["type"].as_str().unwrap_or("ClusterIP");
            if !["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"].contains(&ty) {
                out.push(not_supported(
                    "spec.type",
                    ty,
                    &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
                ));
            }
            let ports = obj["spec"]["ports"].as_array().cloned().unwrap_or_default();
            let headless = obj["spec"]["clusterIP"].as_str() == Some("None");
            if ports.is_empty() && ty != "ExternalName" && !headless {
                out.push(required("spec.ports"));
            }
            for (i, p) in ports.iter().enumerate() {
                let port = p["port"].as_i64().unwrap_or(0);
                if !(1..=65535).contains(&port) {
                    out.push(invalid_num(
                        format!("spec.ports[{i}].port"),
                        port,
                        "must be between 1 and 65535, inclusive",
                    ));
                }
                if ports.len() > 1 && p["name"].as_str().unwrap_or("").is_empty() {
                    out.push(required(format!("spec.ports[{i}].name")));
                }
            }
        }
        out
    }

    fn validate_update(&self, old: &Value, new: &Value) -> Vec<Cause> {
        let mut out = self.validate(new);
        {
            let (o, n) = (&old["spec"]["clusterIP"], &new["spec"]["clusterIP"]);
            if !o.is_null() && !n.is_null() && o != n {
                out.push(invalid(
                    "spec.clusterIPs[0]",
                    n.as_str().unwrap_or(""),
                    "may not change once set",
                ));
            }
        }
        out
    }

    fn list_merge(&self, path: &[&str]) -> ListMerge {
        match path {
            ["spec", "ports"] => ListMerge::MergeByKey("port"),
            _ => ListMerge::Replace,
        }
    }

    fn columns(&self) -> Vec<Column> {
        let age = age_col();
        vec![
            name_col(),
            col("Type", "string", 0, "The type of the service."),
            col("Cluster-IP", "string", 0, "The cluster IP of the service."),
            col(
                "External-IP",
                "string",
                0,
                "The external IP of the service.",
            ),
            col("Port(s)", "string", 0, "The ports of the service."),
            age,
            col(
                "Selector",
                "string",
                1,
                "The label selector of the service.",
            ),
        ]
    }

    fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let name = json!(s(&obj["metadata"]["name"]));
        let created = obj["metadata"]["creationTimestamp"].as_str();
        let age_cell = json!(age(created, now));
        {
            let spec = &obj["spec"];
            let ty = s(&spec["type"]);
            let ports: Vec<String> = spec["ports"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|p| {
                    let proto = p["protocol"].as_str().unwrap_or("TCP");
                    match p["nodePort"].as_i64() {
                        Some(np) if np > 0 => format!("{}:{np}/{proto}", p["port"]),
                        _ => format!("{}/{proto}", p["port"]),
                    }
                })
                .collect();
            let mut ext: Vec<String> = spec["externalIPs"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            if ty == "ExternalName" {
                ext.push(s(&spec["externalName"]).to_string());
            }
            let ext = if ext.is_empty() {
                if ty == "LoadBalancer" {
                    "<pending>".to_string()
                } else {
                    "<none>".to_string()
                }
            } else {
                ext.join(",")
            };
            let mut sel: Vec<String> = spec["selector"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| format!("{k}={}", s(v))).collect())
                .unwrap_or_default();
            sel.sort();
            vec![
                name,
                json!(ty),
                json!(none_if_empty(s(&spec["clusterIP"]))),
                json!(ext),
                json!(if ports.is_empty() {
                    "<none>".to_string()
                } else {
                    ports.join(",")
                }),
                age_cell,
                json!(if sel.is_empty() {
                    "<none>".to_string()
                } else {
                    sel.join(",")
                }),
            ]
        }
    }
}
