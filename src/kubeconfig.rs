//! Kubeconfig generation and merging, following kind's rules: cluster, user and context
//! all named `rkind-<name>`, credentials embedded as data, merged into the chosen file
//! (replacing entries by name, leaving everything else alone), written atomically 0600
//! under a `<file>.lock`, and removed again by `rkind down`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::pki::ClusterPki;

/// Errors reading or writing a kubeconfig.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    /// File system trouble.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The existing file is not a kubeconfig we can read.
    #[error("{path}: not a valid kubeconfig: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Parser message.
        message: String,
    },
    /// Another process holds the lock file.
    #[error("{0}: locked by another process (remove the .lock file if it is stale)")]
    Locked(PathBuf),
}

/// The context/cluster/user name for cluster `name`.
pub fn context_name(name: &str) -> String {
    format!("rkind-{name}")
}

/// The kubeconfig document of one cluster (what `rkind kubeconfig` prints).
pub fn document(name: &str, server: &str, pki: &ClusterPki) -> Value {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let ctx = context_name(name);
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": ctx, "cluster": {"server": server, "certificate-authority-data": b64(&pki.ca.cert_pem)}}],
        "users": [{"name": ctx, "user": {"client-certificate-data": b64(&pki.admin.cert_pem), "client-key-data": b64(&pki.admin.key_pem)}}],
        "contexts": [{"name": ctx, "context": {"cluster": ctx, "user": ctx}}],
        "current-context": ctx,
    })
}

/// The file to merge into: `--kubeconfig`, else the first existing `$KUBECONFIG` entry
/// (the last one if none exists), else `~/.kube/config`.
pub fn target_path(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Ok(list) = std::env::var("KUBECONFIG") {
        let mut seen = Vec::new();
        for p in list.split(':').filter(|p| !p.is_empty()) {
            if !seen.iter().any(|s: &PathBuf| s == Path::new(p)) {
                seen.push(PathBuf::from(p));
            }
        }
        if let Some(p) = seen.iter().find(|p| p.exists()) {
            return p.clone();
        }
        if let Some(p) = seen.last() {
            return p.clone();
        }
    }
    home().join(".kube").join("config")
}

/// Every file a kubeconfig entry may have been merged into (for removal).
pub fn all_paths(explicit: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = explicit {
        return vec![p.to_path_buf()];
    }
    if let Ok(list) = std::env::var("KUBECONFIG") {
        let v: Vec<PathBuf> = list
            .split(':')
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect();
        if !v.is_empty() {
            return v;
        }
    }
    vec![home().join(".kube").join("config")]
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

fn read(path: &Path) -> Result<Value, KubeconfigError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(json!({})),
        Err(source) => {
            return Err(KubeconfigError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    if text.trim().is_empty() {
        return Ok(json!({}));
    }
    let v: Value = serde_saphyr::from_str(&text).map_err(|e| KubeconfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if v.is_null() {
        return Ok(json!({}));
    }
    if !v.is_object() {
        return Err(KubeconfigError::Parse {
            path: path.to_path_buf(),
            message: "top level is not a mapping".into(),
        });
    }
    Ok(v)
}

struct Lock(PathBuf);

impl Lock {
    fn acquire(path: &Path) -> Result<Lock, KubeconfigError> {
        let lock = PathBuf::from(format!("{}.lock", path.display()));
        if let Some(dir) = lock.parent() {
            fs::create_dir_all(dir).map_err(|source| KubeconfigError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        for _ in 0..50 {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock)
            {
                Ok(_) => return Ok(Lock(lock)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(source) => return Err(KubeconfigError::Io { path: lock, source }),
            }
        }
        Err(KubeconfigError::Locked(lock))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn write_atomic(path: &Path, doc: &Value) -> Result<(), KubeconfigError> {
    let io = |source| KubeconfigError::Io {
        path: path.to_path_buf(),
        source,
    };
    let text = serde_saphyr::to_string(doc).map_err(|e| KubeconfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let tmp = PathBuf::from(format!("{}.rkind-tmp", path.display()));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600)).map_err(io)?;
    fs::rename(&tmp, path).map_err(io)
}

fn upsert(doc: &mut Map<String, Value>, list: &str, entry: &Value) {
    let name = entry["name"].clone();
    let arr = doc.entry(list).or_insert_with(|| json!([]));
    if !arr.is_array() {
        *arr = json!([]);
    }
    let Some(items) = arr.as_array_mut() else {
        return;
    };
    match items.iter_mut().find(|e| e["name"] == name) {
        Some(e) => *e = entry.clone(),
        None => items.push(entry.clone()),
    }
}

/// Merges `ours` (from [`document`]) into `path`, replacing entries by name and making
/// its context current.
pub fn merge_into(path: &Path, ours: &Value) -> Result<(), KubeconfigError> {
    let _lock = Lock::acquire(path)?;
    let mut existing = read(path)?;
    let doc = existing.as_object_mut().expect("read returns an object");
    for k in ["apiVersion", "kind", "preferences"] {
        if !doc.contains_key(k) {
            doc.insert(k.into(), ours[k].clone());
        }
    }
    for list in ["clusters", "users", "contexts"] {
        if let Some(entries) = ours[list].as_array() {
            for e in entries {
                upsert(doc, list, e);
            }
        }
    }
    doc.insert("current-context".into(), ours["current-context"].clone());
    write_atomic(path, &existing)
}

/// Removes the entries of cluster `name` from `path`; clears `current-context` only if
/// it pointed at them. Missing files are fine.
pub fn remove_from(path: &Path, name: &str) -> Result<bool, KubeconfigError> {
    if !path.exists() {
        return Ok(false);
    }
    let _lock = Lock::acquire(path)?;
    let mut existing = read(path)?;
    let ctx = context_name(name);
    let doc = existing.as_object_mut().expect("read returns an object");
    let mut changed = false;
    for list in ["clusters", "users", "contexts"] {
        if let Some(Value::Array(items)) = doc.get_mut(list) {
            let before = items.len();
            items.retain(|e| e["name"] != ctx.as_str());
            changed |= items.len() != before;
        }
    }
    if doc.get("current-context").and_then(Value::as_str) == Some(ctx.as_str()) {
        doc.insert("current-context".into(), json!(""));
        changed = true;
    }
    if changed {
        write_atomic(path, &existing)?;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_replaces_by_name_and_keeps_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        fs::write(
            &path,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: other\n  cluster:\n    server: https://10.0.0.1\ncontexts:\n- name: other\n  context:\n    cluster: other\n    user: other\ncurrent-context: other\nusers:\n- name: other\n  user:\n    token: abc\n",
        )
        .unwrap();
        let pki = ClusterPki::load_or_create(&dir.path().join("pki"), "n").unwrap();
        let ours = document("dev", "https://127.0.0.1:1234", &pki);
        merge_into(&path, &ours).unwrap();
        merge_into(&path, &ours).unwrap();
        let v = read(&path).unwrap();
        assert_eq!(v["current-context"], "rkind-dev");
        assert_eq!(v["clusters"].as_array().unwrap().len(), 2);
        assert_eq!(v["users"][0]["user"]["token"], "abc");
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(remove_from(&path, "dev").unwrap());
        let v = read(&path).unwrap();
        assert_eq!(v["clusters"].as_array().unwrap().len(), 1);
        assert_eq!(v["current-context"], "");
        assert!(!PathBuf::from(format!("{}.lock", path.display())).exists());
    }
}
