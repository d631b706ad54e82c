//! API discovery, in both formats kubectl understands: aggregated
//! (`apidiscovery.k8s.io/v2`, two requests per cold kubectl) and legacy
//! (`APIVersions`/`APIGroupList`/`APIResourceList`, one request per group-version).

use serde_json::{Value, json};

use super::kinds::ResourceDef;
use super::registry::Snapshot;

/// The aggregated discovery version the client's Accept header asks for, if any
/// (`v2`, or `v2beta1` which kubectl 1.27/1.28 ask for).
pub fn wants_aggregated(accept: &str) -> Option<&'static str> {
    let mut best = None;
    for part in accept.split(',') {
        let params: Vec<&str> = part.split(';').map(str::trim).collect();
        if !params.contains(&"as=APIGroupDiscoveryList")
            || !params.contains(&"g=apidiscovery.k8s.io")
        {
            continue;
        }
        if params.contains(&"v=v2") {
            return Some("v2");
        }
        if params.contains(&"v=v2beta1") {
            best = Some("v2beta1");
        }
    }
    best
}

/// The Content-Type of an aggregated answer in `version`.
pub fn aggregated_content_type(version: &str) -> String {
    format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList")
}

fn aggregated_resource(r: &ResourceDef) -> Value {
    let mut v = json!({
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        v["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        v["categories"] = json!(r.categories);
    }
    if !r.subresources.is_empty() {
        v["subresources"] = r
            .subresources
            .iter()
            .map(|s| {
                json!({
                    "subresource": s.name,
                    "responseKind": {"group": s.group, "version": s.version, "kind": s.kind},
                    "verbs": s.verbs,
                })
            })
            .collect();
    }
    v
}

/// The aggregated list for `/api` (core only) or `/apis` (every named group), in
/// discovery version `version` (the v2beta1 and v2 shapes are the same). Built once per
/// registry generation.
pub fn aggregated(snap: &Snapshot, core: bool, version: &str) -> Value {
    let (api, apis) = snap
        .derived
        .aggregated
        .get_or_init(|| (build_aggregated(snap, true), build_aggregated(snap, false)));
    let mut out = if core { api.clone() } else { apis.clone() };
    out["apiVersion"] = json!(format!("apidiscovery.k8s.io/{version}"));
    out
}

fn build_aggregated(snap: &Snapshot, core: bool) -> Value {
    let items: Vec<Value> = snap
        .groups()
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|ver| {
                    let resources: Vec<Value> = snap
                        .defs()
                        .filter(|r| r.group == group && r.version == *ver)
                        .map(aggregated_resource)
                        .collect();
                    json!({"version": ver, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

/// Legacy `/api`.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_entry(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": vs,
        "preferredVersion": vs.first().cloned().unwrap_or(Value::Null),
    })
}

/// Legacy `/apis`.
pub fn api_group_list(snap: &Snapshot) -> Value {
    let groups: Vec<Value> = snap
        .groups()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_entry(&g, &vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// Legacy `/apis/<group>`, if the group is served.
pub fn api_group(snap: &Snapshot, group: &str) -> Option<Value> {
    snap.groups()
        .into_iter()
        .find(|(g, _)| *g == group && !g.is_empty())
        .map(|(g, vs)| {
            let mut v = group_entry(&g, &vs);
            v["kind"] = json!("APIGroup");
            v["apiVersion"] = json!("v1");
            v
        })
}

/// Legacy `/api/v1` or `/apis/<group>/<version>`, if served.
pub fn resource_list(snap: &Snapshot, group: &str, version: &str) -> Option<Value> {
    let rs: Vec<&ResourceDef> = snap
        .defs()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if rs.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for r in rs {
        let mut v = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs,
        });
        if !r.short_names.is_empty() {
            v["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            v["categories"] = json!(r.categories);
        }
        resources.push(v);
        for s in &r.subresources {
            let mut sub = json!({
                "name": format!("{}/{}", r.plural, s.name),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": s.kind,
                "verbs": s.verbs,
            });
            // A subresource of another group-version names it (`scale`: autoscaling/v1).
            if (s.group.as_str(), s.version.as_str()) != (r.group.as_str(), r.version.as_str()) {
                sub["group"] = json!(s.group);
                sub["version"] = json!(s.version);
            }
            resources.push(sub);
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_aggregated_resource_has_a_response_kind() {
        let reg = crate::apiserver::registry::Registry::builtin();
        let snap = reg.snapshot();
        for core in [true, false] {
            let d = aggregated(&snap, core, "v2");
            for item in d["items"].as_array().unwrap() {
                for v in item["versions"].as_array().unwrap() {
                    for r in v["resources"].as_array().unwrap() {
                        assert!(r["responseKind"]["kind"].is_string(), "{r}");
                    }
                }
            }
        }
        let core = aggregated(&snap, true, "v2");
        assert_eq!(
            aggregated(&snap, true, "v2beta1")["apiVersion"],
            "apidiscovery.k8s.io/v2beta1"
        );
        assert_eq!(
            wants_aggregated(
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
            ),
            Some("v2beta1")
        );
        assert_eq!(
            wants_aggregated(
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
            ),
            Some("v2")
        );
        assert_eq!(wants_aggregated("application/json"), None);
        assert_eq!(core["items"][0]["metadata"]["name"], "");
        let pods = resource_list(&snap, "", "v1").unwrap();
        assert!(
            pods["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["name"] == "pods/exec")
        );
        assert!(api_group(&snap, "coordination.k8s.io").is_some());
        assert!(api_group(&snap, "apps").is_some());
        assert!(api_group(&snap, "example.com").is_none());
    }
}
