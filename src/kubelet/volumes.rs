//! Pod volumes as the kubelet's volume plugins set them up before the first container:
//! hostPath, emptyDir (memory-backed with `medium: Memory`), configMap, secret,
//! downwardAPI and projected (whose `serviceAccountToken` sources come from the
//! [`TokenManager`](super::tokens::TokenManager)). Files are written to a temporary name and renamed, so a container
//! reading a projected volume while the kubelet refreshes its token never sees half a
//! file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use base64::Engine;
use serde_json::Value;

use super::pods::PodEnv;

/// What the volumes of a pod came to.
#[derive(Default)]
pub struct Prepared {
    /// Volume name → host directory (or hostPath) the containers mount.
    pub mounts: HashMap<String, PathBuf>,
    /// When a projected token is due for renewal (the earliest, if several).
    pub refresh_at: Option<Instant>,
}

/// Sets up every volume of `pod` under `base` (`<pods_dir>/<uid>/volumes`). The message of
/// an error is the `FailedMount` event's.
pub async fn prepare(env: &PodEnv, pod: &Value, base: &Path) -> Result<Prepared, String> {
    let mut out = Prepared::default();
    for v in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        let vname = v["name"].as_str().unwrap_or("").to_string();
        let dir = base.join(&vname);
        if let Some(hp) = v["hostPath"]["path"].as_str() {
            let ty = v["hostPath"]["type"].as_str().unwrap_or("");
            let p = PathBuf::from(hp);
            if ty == "DirectoryOrCreate" {
                let _ = std::fs::create_dir_all(&p);
            }
            if !p.exists() && !ty.is_empty() && ty != "DirectoryOrCreate" && ty != "FileOrCreate" {
                return Err(format!(
                    "MountVolume.SetUp failed for volume \"{vname}\" : hostPath type check failed: {hp} does not exist"
                ));
            }
            out.mounts.insert(vname, p);
            continue;
        }
        std::fs::create_dir_all(&dir).map_err(|e| format!("volume {vname}: {e}"))?;
        let failed = |e: String| format!("MountVolume.SetUp failed for volume \"{vname}\" : {e}");
        if v["emptyDir"]["medium"] == "Memory" {
            let size = v["emptyDir"]["sizeLimit"]
                .as_str()
                .and_then(super::pods::parse_bytes);
            mount_tmpfs(&dir, size).map_err(failed)?;
        } else if v["configMap"].is_object() || v["secret"].is_object() {
            let (source, kind) = if v["configMap"].is_object() {
                (&v["configMap"], Kind::ConfigMap)
            } else {
                (&v["secret"], Kind::Secret)
            };
            let mode = source["defaultMode"].as_u64().unwrap_or(0o644) as u32;
            write_object_source(env, pod, kind, source, &dir, mode)
                .await
                .map_err(failed)?;
        } else if v["downwardAPI"].is_object() {
            let mode = v["downwardAPI"]["defaultMode"].as_u64().unwrap_or(0o644) as u32;
            write_downward_source(pod, &v["downwardAPI"], &dir, mode).map_err(failed)?;
        } else if v["projected"].is_object() {
            let at = write_projected(env, pod, &v["projected"], &dir)
                .await
                .map_err(failed)?;
            out.refresh_at = earliest(out.refresh_at, at);
        }
        out.mounts.insert(vname, dir);
    }
    Ok(out)
}

/// Writes the projected volumes of `pod` again (the tokens they hold are due), returning
/// when the next renewal is due.
pub async fn refresh_projected(
    env: &PodEnv,
    pod: &Value,
    base: &Path,
) -> Result<Option<Instant>, String> {
    let mut next = None;
    for v in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        if !v["projected"].is_object() {
            continue;
        }
        let vname = v["name"].as_str().unwrap_or("");
        let at = write_projected(env, pod, &v["projected"], &base.join(vname))
            .await
            .map_err(|e| format!("MountVolume.SetUp failed for volume \"{vname}\" : {e}"))?;
        next = earliest(next, at);
    }
    Ok(next)
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The two kinds a volume can take its files from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    ConfigMap,
    Secret,
}

impl Kind {
    fn plural(self) -> &'static str {
        match self {
            Kind::ConfigMap => "configmaps",
            Kind::Secret => "secrets",
        }
    }
    fn singular(self) -> &'static str {
        match self {
            Kind::ConfigMap => "configmap",
            Kind::Secret => "secret",
        }
    }
}

/// The keys and bytes of a ConfigMap or Secret (`None`: not found and optional).
async fn fetch_object_data(
    env: &PodEnv,
    namespace: &str,
    kind: Kind,
    name: &str,
    optional: bool,
) -> Result<Option<Vec<(String, Vec<u8>)>>, String> {
    let path = format!("/api/v1/namespaces/{namespace}/{}/{name}", kind.plural());
    let obj = match env.api.get(&path).await {
        Ok(o) => o,
        Err(e) if e.code() == 404 && optional => return Ok(None),
        Err(e) if e.code() == 404 => {
            return Err(format!("{} \"{name}\" not found", kind.singular()));
        }
        Err(e) => return Err(e.to_string()),
    };
    let b64 = |v: &Value| {
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or(""))
            .unwrap_or_default()
    };
    let mut data: Vec<(String, Vec<u8>)> = Vec::new();
    for (k, val) in obj["data"].as_object().into_iter().flatten() {
        let bytes = match kind {
            Kind::Secret => b64(val),
            Kind::ConfigMap => val.as_str().unwrap_or("").as_bytes().to_vec(),
        };
        data.push((k.clone(), bytes));
    }
    for (k, val) in obj["binaryData"].as_object().into_iter().flatten() {
        data.push((k.clone(), b64(val)));
    }
    Ok(Some(data))
}

/// A configMap or secret volume, or such a projected source: its `items` (each with its
/// own path and mode), else every key.
async fn write_object_source(
    env: &PodEnv,
    pod: &Value,
    kind: Kind,
    source: &Value,
    dir: &Path,
    mode: u32,
) -> Result<(), String> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let name_field = if kind == Kind::Secret && source["secretName"].is_string() {
        "secretName"
    } else {
        "name"
    };
    let name = source[name_field].as_str().unwrap_or("");
    let optional = source["optional"].as_bool().unwrap_or(false);
    let Some(data) = fetch_object_data(env, ns, kind, name, optional).await? else {
        return Ok(());
    };
    match source["items"].as_array() {
        Some(items) if !items.is_empty() => {
            for it in items {
                let key = it["key"].as_str().unwrap_or("");
                let path = it["path"].as_str().unwrap_or(key);
                let m = it["mode"].as_u64().map(|m| m as u32).unwrap_or(mode);
                match data.iter().find(|(k, _)| k == key) {
                    Some((_, b)) => write_volume_file(dir, path, b, m)?,
                    None if optional => {}
                    None => {
                        return Err(match kind {
                            Kind::ConfigMap => {
                                format!("configmap references non-existent config key: {key}")
                            }
                            Kind::Secret => format!("references non-existent secret key: {key}"),
                        });
                    }
                }
            }
        }
        _ => {
            for (k, b) in &data {
                write_volume_file(dir, k, b, mode)?;
            }
        }
    }
    Ok(())
}

/// A downwardAPI volume or projected source: one file per item.
fn write_downward_source(pod: &Value, source: &Value, dir: &Path, mode: u32) -> Result<(), String> {
    for item in source["items"].as_array().into_iter().flatten() {
        let path = item["path"].as_str().unwrap_or("");
        let field = item["fieldRef"]["fieldPath"].as_str().unwrap_or("");
        let value = downward_value(pod, field);
        let m = item["mode"].as_u64().map(|m| m as u32).unwrap_or(mode);
        write_volume_file(dir, path, value.as_bytes(), m)?;
    }
    Ok(())
}

/// A projected volume: its sources written into one directory. Returns when its
/// tokens are due for renewal.
async fn write_projected(
    env: &PodEnv,
    pod: &Value,
    projected: &Value,
    dir: &Path,
) -> Result<Option<Instant>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mode = projected["defaultMode"].as_u64().unwrap_or(0o644) as u32;
    let mut refresh = None;
    for source in projected["sources"].as_array().into_iter().flatten() {
        if source["configMap"].is_object() {
            write_object_source(env, pod, Kind::ConfigMap, &source["configMap"], dir, mode).await?;
        } else if source["secret"].is_object() {
            write_object_source(env, pod, Kind::Secret, &source["secret"], dir, mode).await?;
        } else if source["downwardAPI"].is_object() {
            write_downward_source(pod, &source["downwardAPI"], dir, mode)?;
        } else if let Some(t) = source.get("serviceAccountToken").filter(|t| t.is_object()) {
            let seconds = t["expirationSeconds"].as_i64().unwrap_or(3600);
            let audience = t["audience"].as_str().filter(|a| !a.is_empty());
            let path = t["path"].as_str().unwrap_or("token");
            let token = env
                .tokens
                .token(&env.api, pod, audience, seconds)
                .await
                .map_err(|e| format!("failed to fetch token: {e}"))?;
            let m = t["mode"].as_u64().map(|m| m as u32).unwrap_or(mode);
            write_volume_file(dir, path, token.token.as_bytes(), m)?;
            refresh = earliest(refresh, Some(token.refresh_at));
        } else if source["clusterTrustBundle"].is_object() {
            return Err("clusterTrustBundle projections are not supported by rkind".into());
        }
    }
    Ok(refresh)
}

/// Writes `data` to `dir/rel` (creating parents) through a temporary file, so a reader
/// sees the old content or the new, never a mix.
fn write_volume_file(dir: &Path, rel: &str, data: &[u8], mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    if rel.split('/').any(|p| p == "..") || rel.starts_with('/') {
        return Err(format!("invalid volume item path {rel:?}"));
    }
    let p = dir.join(rel);
    let parent = p.parent().unwrap_or(dir);
    std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let file = p.file_name().and_then(|f| f.to_str()).unwrap_or("file");
    let tmp = parent.join(format!("..{file}.tmp"));
    std::fs::write(&tmp, data).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let _ = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode & 0o777));
    std::fs::rename(&tmp, &p).map_err(|e| format!("{}: {e}", p.display()))
}

/// Whether `dir` is a mount point (an emptyDir already backed by memory after a restart).
fn is_mount_point(dir: &Path) -> bool {
    let want = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().nth(4) == Some(want.as_str()))
}

/// Backs an emptyDir with memory (`medium: Memory`), `size` bytes at most, as the kubelet
/// does with tmpfs.
fn mount_tmpfs(dir: &Path, size: Option<i64>) -> Result<(), String> {
    if is_mount_point(dir) {
        return Ok(());
    }
    let mut opts = String::from("mode=0777");
    if let Some(n) = size.filter(|n| *n > 0) {
        opts.push_str(&format!(",size={n}"));
    }
    nix::mount::mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
        Some(opts.as_str()),
    )
    .map_err(|e| format!("mounting tmpfs on {}: {e}", dir.display()))
}

/// Unmounts the memory-backed volumes under a pod's volume directory (before it is
/// removed: no mount outlives its pod).
pub fn unmount_volumes(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if is_mount_point(&p) {
            let _ = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// The value of a downward-API `fieldPath` for `pod` (volumes and env share it).
pub fn downward_value(pod: &Value, field: &str) -> String {
    match field {
        "metadata.name" => pod["metadata"]["name"].as_str().unwrap_or("").into(),
        "metadata.namespace" => pod["metadata"]["namespace"].as_str().unwrap_or("").into(),
        "metadata.uid" => pod["metadata"]["uid"].as_str().unwrap_or("").into(),
        "spec.nodeName" => pod["spec"]["nodeName"].as_str().unwrap_or("").into(),
        "spec.serviceAccountName" => pod["spec"]["serviceAccountName"]
            .as_str()
            .unwrap_or("")
            .into(),
        "status.hostIP" | "status.podIP" => "127.0.0.1".into(),
        "metadata.labels" | "metadata.annotations" => {
            let key = if field == "metadata.labels" {
                "labels"
            } else {
                "annotations"
            };
            let mut lines: Vec<String> = pod["metadata"][key]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| {
                            format!("{k}={}", serde_json::to_string(v).unwrap_or_default())
                        })
                        .collect()
                })
                .unwrap_or_default();
            lines.sort();
            lines.join("\n")
        }
        f => {
            if let Some(rest) = f
                .strip_prefix("metadata.labels['")
                .and_then(|r| r.strip_suffix("']"))
            {
                return pod["metadata"]["labels"][rest]
                    .as_str()
                    .unwrap_or("")
                    .into();
            }
            if let Some(rest) = f
                .strip_prefix("metadata.annotations['")
                .and_then(|r| r.strip_suffix("']"))
            {
                return pod["metadata"]["annotations"][rest]
                    .as_str()
                    .unwrap_or("")
                    .into();
            }
            String::new()
        }
    }
}
