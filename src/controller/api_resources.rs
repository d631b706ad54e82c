//! What the API server serves, as controllers learn it over HTTPS (client-go's
//! `ServerPreferredNamespacedResources`): the legacy discovery documents `/api`, `/apis`
//! and one `APIResourceList` per preferred group-version, read anew on each call so
//! kinds added or removed at run time (CRDs) are seen. Also the few JSON verbs generic
//! controllers need on resources they know only by name.

use std::collections::BTreeMap;

use http::Method;
use serde_json::Value;

/// One namespaced resource the server serves (a top-level resource, no subresources).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiResource {
    /// The API group ("" for core).
    pub group: String,
    /// The (preferred) version.
    pub version: String,
    /// The plural resource name (`pods`).
    pub plural: String,
    /// The kind (`Pod`).
    pub kind: String,
    /// The verbs discovery lists.
    pub verbs: Vec<String>,
}

impl ApiResource {
    /// Whether discovery lists `verb` for it.
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// `group/version`, or `version` for core.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The collection path in `namespace`.
    pub fn collection(&self, namespace: &str) -> String {
        let base = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        format!("{base}/namespaces/{namespace}/{}", self.plural)
    }

    /// The cluster-wide collection path (list/watch in every namespace).
    pub fn all_namespaces(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}/{}", self.version, self.plural)
        } else {
            format!("/apis/{}/{}/{}", self.group, self.version, self.plural)
        }
    }

    /// kube-client's description of it (for dynamic watches).
    pub fn kube(&self) -> kube_client::discovery::ApiResource {
        kube_client::discovery::ApiResource {
            group: self.group.clone(),
            version: self.version.clone(),
            api_version: self.api_version(),
            kind: self.kind.clone(),
            plural: self.plural.clone(),
        }
    }
}

/// What one discovery round found.
#[derive(Debug, Default)]
pub struct Discovered {
    /// Namespaced resources of every group-version that answered.
    pub resources: Vec<ApiResource>,
    /// Group-versions whose resource list could not be read, with why (client-go's
    /// `ErrGroupDiscoveryFailed`: the others are still usable).
    pub failed: BTreeMap<String, String>,
    /// Group-version strings that do not parse (`ParseGroupVersion`'s error text).
    pub unparsable: Vec<String>,
}

impl Discovered {
    /// client-go's text for the failed groups (`ErrGroupDiscoveryFailed.Error()`).
    pub fn failure_message(&self) -> Option<String> {
        if self.failed.is_empty() {
            return None;
        }
        let parts: Vec<String> = self
            .failed
            .iter()
            .map(|(gv, e)| format!("{gv}: {e}"))
            .collect();
        Some(format!(
            "unable to retrieve the complete list of server APIs: {}",
            parts.join(", ")
        ))
    }
}

/// Why discovery found nothing at all.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// `/api` or `/apis` could not be read.
    #[error("{path}: {source}")]
    Root {
        /// The document.
        path: &'static str,
        /// The client's error.
        source: kube_client::Error,
    },
}

/// Sends `method` to `path` with an optional JSON body and decodes the JSON answer.
pub async fn request_json(
    client: &kube_client::Client,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, kube_client::Error> {
    let bytes = match body {
        Some(b) => serde_json::to_vec(b).map_err(kube_client::Error::SerdeError)?,
        None => Vec::new(),
    };
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::ACCEPT, "application/json");
    if body.is_some() {
        req = req.header(http::header::CONTENT_TYPE, "application/json");
    }
    let req = req.body(bytes).map_err(kube_client::Error::HttpError)?;
    client.request::<Value>(req).await
}

/// GETs `path` as JSON.
pub async fn get_json(
    client: &kube_client::Client,
    path: &str,
) -> Result<Value, kube_client::Error> {
    request_json(client, Method::GET, path, None).await
}

/// Splits a `group/version` string as `schema.ParseGroupVersion` does.
fn parse_group_version(gv: &str) -> Result<(String, String), String> {
    match gv.split('/').collect::<Vec<_>>()[..] {
        [v] if !v.is_empty() => Ok((String::new(), v.to_string())),
        [g, v] if !v.is_empty() => Ok((g.to_string(), v.to_string())),
        _ => Err(format!("unexpected GroupVersion string: {gv}")),
    }
}

/// The namespaced top-level resources of one `APIResourceList`.
fn namespaced_of(list: &Value, group: &str, version: &str) -> Vec<ApiResource> {
    list["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["namespaced"] == true)
        .filter_map(|r| {
            let plural = r["name"].as_str()?;
            (!plural.contains('/')).then(|| ApiResource {
                group: group.to_string(),
                version: version.to_string(),
                plural: plural.to_string(),
                kind: r["kind"].as_str().unwrap_or("").to_string(),
                verbs: r["verbs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect(),
            })
        })
        .collect()
}

/// The namespaced resources of every group at its preferred version.
pub async fn preferred_namespaced(
    client: &kube_client::Client,
) -> Result<Discovered, DiscoveryError> {
    let mut out = Discovered::default();
    let core = get_json(client, "/api")
        .await
        .map_err(|source| DiscoveryError::Root {
            path: "/api",
            source,
        })?;
    let groups = get_json(client, "/apis")
        .await
        .map_err(|source| DiscoveryError::Root {
            path: "/apis",
            source,
        })?;
    let mut gvs: Vec<String> = Vec::new();
    if let Some(v) = core["versions"].as_array().and_then(|v| v.first()) {
        gvs.push(v.as_str().unwrap_or("v1").to_string());
    }
    for g in groups["groups"].as_array().into_iter().flatten() {
        let preferred = g["preferredVersion"]["groupVersion"]
            .as_str()
            .or_else(|| g["versions"][0]["groupVersion"].as_str());
        if let Some(gv) = preferred {
            gvs.push(gv.to_string());
        }
    }
    for gv in gvs {
        let (group, version) = match parse_group_version(&gv) {
            Ok(p) => p,
            Err(e) => {
                out.unparsable.push(e);
                continue;
            }
        };
        let path = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{gv}")
        };
        match get_json(client, &path).await {
            Ok(list) => out.resources.extend(namespaced_of(&list, &group, &version)),
            Err(e) => {
                out.failed.insert(gv, e.to_string());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn group_versions_parse_as_client_go_does() {
        assert_eq!(
            parse_group_version("v1"),
            Ok((String::new(), "v1".to_string()))
        );
        assert_eq!(
            parse_group_version("apps/v1"),
            Ok(("apps".to_string(), "v1".to_string()))
        );
        assert_eq!(
            parse_group_version("a/b/c"),
            Err("unexpected GroupVersion string: a/b/c".to_string())
        );
    }

    #[test]
    fn only_namespaced_top_level_resources_are_kept() {
        let list = json!({"resources": [
            {"name": "pods", "namespaced": true, "kind": "Pod", "verbs": ["list", "delete"]},
            {"name": "pods/log", "namespaced": true, "kind": "Pod", "verbs": ["get"]},
            {"name": "nodes", "namespaced": false, "kind": "Node", "verbs": ["list"]}
        ]});
        let rs = namespaced_of(&list, "", "v1");
        assert_eq!(rs.len(), 1);
        assert_eq!(rs[0].collection("ns"), "/api/v1/namespaces/ns/pods");
        assert!(rs[0].supports("delete") && !rs[0].supports("deletecollection"));
    }
}
