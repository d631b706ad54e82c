//! The ServiceAccount admission plugin (upstream's `plugin/pkg/admission/serviceaccount`):
//! a new pod runs as `default` unless it names an account, the account must exist, and
//! unless automounting is turned off (on the pod, else on the account) every container
//! mounts a projected `kube-api-access-xxxxx` volume at
//! `/var/run/secrets/kubernetes.io/serviceaccount` holding a bound token, the cluster CA
//! and the namespace. The kubelet fills that volume (it asks for the token with
//! TokenRequest).
//!
//! Mirror pods (static pods a kubelet posts) may not use a service account at all.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Admit, Operation, Plugin, Request};
use crate::apiserver::ApiServer;
use crate::apiserver::defaults::generate_name;

/// Where the token, `ca.crt` and `namespace` appear in a container.
pub const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The prefix of the projected volume's name.
pub const VOLUME_PREFIX: &str = "kube-api-access-";
/// The token's lifetime in the projected volume (upstream's 1 h plus 7 s, which tells a
/// token made for a volume from one asked for by a client).
pub const TOKEN_SECONDS: i64 = 3607;
/// The ConfigMap every namespace gets with the cluster CA.
pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";
/// The annotation that makes a pod a mirror pod.
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// Lookups of the `default` account: the controller makes it right after the namespace,
/// so a pod created in a brand-new namespace waits a moment for it, as upstream does.
const DEFAULT_ATTEMPTS: u32 = 10;
const RETRY_INTERVAL: Duration = Duration::from_millis(150);

/// The `ServiceAccount` plugin.
#[derive(Debug)]
pub struct ServiceAccount {
    /// Whether pods get the API volume unless they or their account say otherwise. Off
    /// where pods share one root filesystem (the unprivileged isolation level): there a
    /// volume appears at its mount path itself, and only one pod at a time could have
    /// one at `/var/run/secrets/kubernetes.io/serviceaccount`.
    pub automount_by_default: bool,
}

impl Default for ServiceAccount {
    fn default() -> Self {
        ServiceAccount {
            automount_by_default: true,
        }
    }
}

/// Only pods, on create, and not their subresources.
fn applies(req: &Request<'_>) -> bool {
    let def = req.kind.def();
    def.group.is_empty()
        && def.plural == "pods"
        && req.subresource.is_none()
        && req.operation == Operation::Create
        && req.namespace.is_some()
}

/// Whether `pod` is a mirror pod (a static pod a kubelet posts).
pub fn is_mirror(pod: &Value) -> bool {
    pod["metadata"]["annotations"][MIRROR_ANNOTATION].is_string()
}

/// Why an account could not be had.
#[derive(Debug, thiserror::Error)]
enum LookupError {
    #[error("error looking up service account {0}/{1}: serviceaccount \"{1}\" not found")]
    NotFound(String, String),
    #[error("error looking up service account {0}/{1}: {2}")]
    Store(String, String, String),
}

/// The stored account `namespace/name`, looked up again for a while if it is `default`.
async fn lookup(srv: &ApiServer, namespace: &str, name: &str) -> Result<Value, LookupError> {
    let snap = srv.registry.snapshot();
    let Some(kind) = snap.find("", "v1", "serviceaccounts") else {
        return Err(LookupError::NotFound(namespace.into(), name.into()));
    };
    let key = kind.def().key(Some(namespace), name);
    let attempts = if name == "default" {
        DEFAULT_ATTEMPTS
    } else {
        1
    };
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(RETRY_INTERVAL).await;
        }
        match srv.store.get(&key) {
            Ok(Some(sa)) => return Ok(kind.to_view(&sa)),
            Ok(None) => {}
            Err(e) => {
                return Err(LookupError::Store(
                    namespace.into(),
                    name.into(),
                    e.to_string(),
                ));
            }
        }
    }
    Err(LookupError::NotFound(namespace.into(), name.into()))
}

/// Whether the pod gets the API volume: the pod's own setting wins over the account's,
/// which wins over `default`.
fn automount(pod: &Value, sa: &Value, default: bool) -> bool {
    pod["spec"]["automountServiceAccountToken"]
        .as_bool()
        .or_else(|| sa["automountServiceAccountToken"].as_bool())
        .unwrap_or(default)
}

/// The projected volume upstream's plugin adds.
pub fn api_access_volume(name: &str) -> Value {
    json!({
        "name": name,
        "projected": {
            "defaultMode": 0o644,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": TOKEN_SECONDS, "path": "token"}},
                {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace",
                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ]
        }
    })
}

/// Mounts the API volume in every init and regular container that has nothing at
/// [`MOUNT_PATH`] yet, adding the volume when one of them needs it.
pub fn mount_api_access(pod: &mut Value) {
    let spec = &mut pod["spec"];
    let existing = spec["volumes"].as_array().and_then(|vs| {
        vs.iter()
            .filter_map(|v| v["name"].as_str())
            .find(|n| n.starts_with(VOLUME_PREFIX))
            .map(String::from)
    });
    let volume = existing
        .clone()
        .unwrap_or_else(|| generate_name(VOLUME_PREFIX));
    let mount = json!({"name": volume, "readOnly": true, "mountPath": MOUNT_PATH});
    let mut needed = false;
    for list in ["initContainers", "containers"] {
        let Some(containers) = spec[list].as_array_mut() else {
            continue;
        };
        for c in containers {
            let taken = c["volumeMounts"]
                .as_array()
                .is_some_and(|ms| ms.iter().any(|m| m["mountPath"] == MOUNT_PATH));
            if taken {
                continue;
            }
            if !c["volumeMounts"].is_array() {
                c["volumeMounts"] = json!([]);
            }
            if let Some(ms) = c["volumeMounts"].as_array_mut() {
                ms.push(mount.clone());
            }
            needed = true;
        }
    }
    if needed && existing.is_none() {
        if !spec["volumes"].is_array() {
            spec["volumes"] = json!([]);
        }
        if let Some(vs) = spec["volumes"].as_array_mut() {
            vs.push(api_access_volume(&volume));
        }
    }
}

/// Why a mirror pod is refused, if it is (upstream refuses rather than mutates them).
fn mirror_violation(pod: &Value) -> Option<&'static str> {
    let named = pod["spec"]["serviceAccountName"]
        .as_str()
        .is_some_and(|s| !s.is_empty() && s != "default");
    if named {
        return Some("a mirror pod may not reference service accounts");
    }
    let projected_token = pod["spec"]["volumes"].as_array().is_some_and(|vs| {
        vs.iter().any(|v| {
            v["projected"]["sources"]
                .as_array()
                .is_some_and(|ss| ss.iter().any(|s| s["serviceAccountToken"].is_object()))
        })
    });
    if projected_token {
        return Some("a mirror pod may not use ServiceAccountToken volume projections");
    }
    None
}

impl Plugin for ServiceAccount {
    fn name(&self) -> &'static str {
        "ServiceAccount"
    }

    fn mutate<'a>(
        &'a self,
        srv: &'a ApiServer,
        req: &'a Request<'a>,
        obj: &'a mut Value,
    ) -> Admit<'a> {
        Box::pin(async move {
            if !applies(req) {
                return Ok(());
            }
            if is_mirror(obj) {
                return match mirror_violation(obj) {
                    Some(why) => Err(req.forbidden(why)),
                    None => Ok(()),
                };
            }
            let ns = req.namespace.unwrap_or("default");
            let name = match obj["spec"]["serviceAccountName"].as_str() {
                Some(n) if !n.is_empty() => n.to_string(),
                _ => {
                    obj["spec"]["serviceAccountName"] = json!("default");
                    "default".to_string()
                }
            };
            obj["spec"]["serviceAccount"] = json!(name);
            let sa = lookup(srv, ns, &name).await.map_err(|e| req.forbidden(e))?;
            if automount(obj, &sa, self.automount_by_default) {
                mount_api_access(obj);
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Value {
        json!({"metadata": {"name": "p"}, "spec": {
            "initContainers": [{"name": "i"}],
            "containers": [{"name": "a"}, {"name": "b", "volumeMounts": [
                {"name": "mine", "mountPath": MOUNT_PATH}]}],
        }})
    }

    #[test]
    fn every_container_without_a_mount_there_gets_the_volume() {
        let mut p = pod();
        mount_api_access(&mut p);
        let vols = p["spec"]["volumes"].as_array().unwrap();
        assert_eq!(vols.len(), 1);
        let name = vols[0]["name"].as_str().unwrap();
        assert!(name.starts_with(VOLUME_PREFIX) && name.len() == VOLUME_PREFIX.len() + 5);
        assert_eq!(
            vols[0]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            3607
        );
        assert_eq!(
            p["spec"]["initContainers"][0]["volumeMounts"][0]["name"],
            name
        );
        assert_eq!(
            p["spec"]["containers"][0]["volumeMounts"][0]["readOnly"],
            true
        );
        let b = p["spec"]["containers"][1]["volumeMounts"]
            .as_array()
            .unwrap();
        assert_eq!(b.len(), 1, "a mount at the path already wins");
        // Admitting twice does not add a second volume.
        mount_api_access(&mut p);
        assert_eq!(p["spec"]["volumes"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn the_pod_setting_wins_over_the_account() {
        let sa_off = json!({"automountServiceAccountToken": false});
        let mut p = pod();
        assert!(!automount(&p, &sa_off, true));
        p["spec"]["automountServiceAccountToken"] = json!(true);
        assert!(automount(&p, &sa_off, false));
        assert!(automount(&pod(), &json!({}), true));
        assert!(!automount(&pod(), &json!({}), false));
    }

    #[test]
    fn mirror_pods_may_not_use_accounts() {
        let mut p = pod();
        p["spec"]["serviceAccountName"] = json!("bot");
        assert!(mirror_violation(&p).is_some());
        let mut q = pod();
        q["spec"]["volumes"] = json!([api_access_volume("kube-api-access-x")]);
        assert!(mirror_violation(&q).is_some());
        assert!(mirror_violation(&pod()).is_none());
    }
}
