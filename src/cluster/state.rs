//! The cluster's on-disk state: the data directory (0700), `cluster.json` (ports,
//! kubeconfig path, readiness) and `rkind.pid`, which `down` and `status` read.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Errors about the data directory and its files.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// File system trouble.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `cluster.json` is unreadable.
    #[error("{path}: {message}")]
    Corrupt {
        /// The path.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// What a running (or stopped) cluster left in its data directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterState {
    /// Cluster name.
    pub name: String,
    /// API server port on 127.0.0.1.
    pub api_port: u16,
    /// Kubelet port on 127.0.0.1.
    pub kubelet_port: u16,
    /// Pid of the rkind process that runs it.
    pub pid: i32,
    /// The kubeconfig file its entries were merged into.
    pub kubeconfig: Option<PathBuf>,
    /// Whether it finished starting (and has not stopped since).
    pub ready: bool,
    /// The isolation level its runtime found (namespaces, rootless, unprivileged).
    #[serde(default)]
    pub isolation: String,
}

/// `$XDG_DATA_HOME`, or `~/.local/share`.
pub fn data_home() -> PathBuf {
    match std::env::var_os("XDG_DATA_HOME") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/root"))
            .join(".local/share"),
    }
}

/// Creates the data directory with mode 0700.
pub fn prepare_data_dir(dir: &Path) -> Result<(), StateError> {
    crate::pki::create_private_dir(dir).map_err(|e| match e {
        crate::pki::PkiError::Io { path, source } => StateError::Io { path, source },
        other => StateError::Corrupt {
            path: dir.to_path_buf(),
            message: other.to_string(),
        },
    })
}

impl ClusterState {
    fn path(dir: &Path) -> PathBuf {
        dir.join("cluster.json")
    }

    /// Reads `cluster.json`.
    pub fn load(dir: &Path) -> Result<Self, StateError> {
        let path = Self::path(dir);
        let text = fs::read_to_string(&path).map_err(|source| StateError::Io {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
            path,
            message: e.to_string(),
        })
    }

    /// Writes `cluster.json` atomically.
    pub fn save(&self, dir: &Path) -> Result<(), StateError> {
        let path = Self::path(dir);
        let tmp = dir.join("cluster.json.tmp");
        let io = |source| StateError::Io {
            path: path.clone(),
            source,
        };
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        fs::write(&tmp, text).map_err(io)?;
        fs::rename(&tmp, &path).map_err(io)
    }
}

fn pid_path(dir: &Path) -> PathBuf {
    dir.join("rkind.pid")
}

/// Records this process as the cluster's runner.
pub fn write_pid(dir: &Path) -> Result<(), StateError> {
    let path = pid_path(dir);
    fs::write(&path, format!("{}\n", std::process::id()))
        .map_err(|source| StateError::Io { path, source })
}

/// Removes the pid file.
pub fn remove_pid(dir: &Path) {
    let _ = fs::remove_file(pid_path(dir));
}

/// The pid in the pid file, if that process is alive and is an rkind.
pub fn running_pid(dir: &Path) -> Option<i32> {
    let pid: i32 = fs::read_to_string(pid_path(dir))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let comm = fs::read_to_string(format!("/proc/{pid}/cmdline")).ok()?;
    let argv0 = comm.split('\0').next().unwrap_or("");
    let is_rkind = Path::new(argv0)
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("rkind"));
    is_rkind.then_some(pid)
}
