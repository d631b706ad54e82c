//! The index of the clusters a user started: cluster name → data directory, kept in
//! `$XDG_STATE_HOME/rkind/clusters.json` (default `~/.local/state/rkind/clusters.json`).
//! `up` records every cluster there, so `status`, `down`, `load image` and the other
//! commands find a cluster by its name alone, also one started with `--data-dir`.
//! Updates are read-modify-write under an exclusive lock on `clusters.lock` and replace
//! the file atomically (write a temporary file, rename it over the old one), so two
//! `up`s at once lose neither entry and a reader never sees half a file.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Errors reading or updating the index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// File system trouble.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The index is not the JSON rkind writes.
    #[error("{path}: {source}")]
    Corrupt {
        /// The path.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
}

/// One indexed cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Its data directory (absolute).
    pub data_dir: PathBuf,
}

/// The whole file.
#[derive(Debug, Default, Serialize, Deserialize)]
struct IndexFile {
    /// Name → entry, sorted by name.
    #[serde(default)]
    clusters: BTreeMap<String, Entry>,
}

/// `$XDG_STATE_HOME`, or `~/.local/state`.
pub fn state_home() -> PathBuf {
    match std::env::var_os("XDG_STATE_HOME") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/root"))
            .join(".local/state"),
    }
}

/// The index file.
pub fn path() -> PathBuf {
    state_home().join("rkind").join("clusters.json")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IndexError + '_ {
    move |source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read(path: &Path) -> Result<IndexFile, IndexError> {
    match fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|source| IndexError::Corrupt {
            path: path.to_path_buf(),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(IndexFile::default()),
        Err(e) => Err(io(path)(e)),
    }
}

/// Every indexed cluster (none if there is no index yet). Reading creates nothing.
pub fn entries() -> Result<BTreeMap<String, Entry>, IndexError> {
    read(&path()).map(|f| f.clusters)
}

/// The data directory recorded for cluster `name`.
pub fn lookup(name: &str) -> Result<Option<PathBuf>, IndexError> {
    Ok(entries()?.remove(name).map(|e| e.data_dir))
}

/// Records (or moves) cluster `name` to `data_dir`.
pub fn record(name: &str, data_dir: &Path) -> Result<(), IndexError> {
    update(|f| {
        f.clusters.insert(
            name.to_string(),
            Entry {
                data_dir: data_dir.to_path_buf(),
            },
        );
        true
    })
}

/// Removes cluster `name` if its entry points at `data_dir`; true if it did.
pub fn remove(name: &str, data_dir: &Path) -> Result<bool, IndexError> {
    if !path().exists() {
        return Ok(false);
    }
    let mut removed = false;
    update(|f| {
        if f.clusters
            .get(name)
            .is_some_and(|e| same_dir(&e.data_dir, data_dir))
        {
            f.clusters.remove(name);
            removed = true;
        }
        removed
    })?;
    Ok(removed)
}

/// Whether two paths name the same directory (also when one is spelled differently).
pub fn same_dir(a: &Path, b: &Path) -> bool {
    a == b
        || match (fs::canonicalize(a), fs::canonicalize(b)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
}

/// Read-modify-write under the lock; `change` returns whether to write.
fn update(change: impl FnOnce(&mut IndexFile) -> bool) -> Result<(), IndexError> {
    let path = path();
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    fs::create_dir_all(&dir).map_err(io(&dir))?;
    let lock_path = dir.join("clusters.lock");
    let lock_file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| io(&lock_path)(std::io::Error::from(errno)))?;
    let mut file = read(&path)?;
    if !change(&mut file) {
        return Ok(());
    }
    let tmp = dir.join(format!("clusters.json.{}.tmp", std::process::id()));
    let text = serde_json::to_string_pretty(&file).unwrap_or_default();
    let written = fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()
        })
        .and_then(|()| fs::rename(&tmp, &path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io(&path)(e));
    }
    Ok(())
}
