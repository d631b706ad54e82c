//! The runtime's local image store. Today it holds the built-in `rkind/host` image (the
//! host's root filesystem, read-only, under a per-container writable layer), so pods run
//! offline with no image at all. The index (`images.json`) and the content-addressed
//! layout (`blobs/`, `layers/`) are where imported OCI images and, later, registry pulls
//! go.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Errors of the image store.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// File system trouble.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The image is not in the store.
    #[error("image {0:?} not found in the local store")]
    NotFound(String),
    /// What was asked is not supported (yet).
    #[error("{0}")]
    Unsupported(String),
}

/// The parts of an image's configuration a container needs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ImageConfig {
    /// ENTRYPOINT.
    pub entrypoint: Vec<String>,
    /// CMD.
    pub cmd: Vec<String>,
    /// ENV (`K=V`).
    pub env: Vec<String>,
    /// WORKDIR.
    pub working_dir: String,
    /// USER (`uid[:gid]`).
    pub user: String,
}

/// One image in the store.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ImageRecord {
    /// `sha256:<config digest>`.
    pub id: String,
    /// Normalised references (`docker.io/library/busybox:latest`).
    pub repo_tags: Vec<String>,
    /// Digested references.
    pub repo_digests: Vec<String>,
    /// Size in bytes.
    pub size: u64,
    /// Unpacked layer directories, bottom first (empty for the host image).
    pub layers: Vec<PathBuf>,
    /// Its configuration.
    pub config: ImageConfig,
}

/// The built-in image: the host's root filesystem.
pub const HOST_IMAGE: &str = "rkind/host";

/// The id of the built-in host image.
pub const HOST_IMAGE_ID: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000686f7374";

fn host_image() -> ImageRecord {
    ImageRecord {
        id: HOST_IMAGE_ID.into(),
        repo_tags: vec!["docker.io/rkind/host:latest".into()],
        repo_digests: Vec::new(),
        size: 0,
        layers: Vec::new(),
        config: ImageConfig {
            entrypoint: Vec::new(),
            cmd: vec!["sh".into()],
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            working_dir: "/".into(),
            user: String::new(),
        },
    }
}

/// Normalises a reference the way containerd does (`busybox` → `docker.io/library/busybox:latest`).
pub fn normalize(reference: &str) -> String {
    if reference.starts_with("sha256:") {
        return reference.to_string();
    }
    let (name, digest) = match reference.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (reference, None),
    };
    let first = name.split('/').next().unwrap_or("");
    let has_registry =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let mut full = if has_registry {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    let last = full.rsplit('/').next().unwrap_or("");
    if digest.is_none() && !last.contains(':') {
        full.push_str(":latest");
    }
    match digest {
        Some(d) => format!("{full}@{d}"),
        None => full,
    }
}

/// The image store.
pub struct ImageStore {
    root: PathBuf,
}

impl ImageStore {
    /// Opens (or creates) the store under `root`.
    pub fn open(root: &Path) -> Result<Self, ImageError> {
        for d in ["blobs/sha256", "layers"] {
            let p = root.join(d);
            std::fs::create_dir_all(&p).map_err(|source| ImageError::Io {
                path: p.clone(),
                source,
            })?;
        }
        Ok(ImageStore {
            root: root.to_path_buf(),
        })
    }

    fn index(&self) -> Vec<ImageRecord> {
        std::fs::read(self.root.join("images.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Imports an image archive or layout. Not supported yet: says so clearly.
    pub fn import(&self, path: &Path) -> Result<Vec<ImageRecord>, ImageError> {
        if !path.exists() {
            return Err(ImageError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such file or directory",
                ),
            });
        }
        Err(ImageError::Unsupported(
            "importing OCI/docker archives is not implemented yet in this version of rkind; use the built-in image rkind/host".into(),
        ))
    }

    /// Every image, the host image first.
    pub fn list(&self) -> Vec<ImageRecord> {
        let mut out = vec![host_image()];
        out.extend(self.index());
        out
    }

    /// Resolves a reference (name, normalised name, id or id prefix).
    pub fn resolve(&self, reference: &str) -> Option<ImageRecord> {
        let r = reference.trim();
        if r.is_empty() {
            return None;
        }
        let norm = normalize(r);
        self.list().into_iter().find(|img| {
            img.id == r
                || img.repo_tags.iter().any(|t| *t == norm || t == r)
                || img.repo_digests.contains(&norm)
                || (r.len() >= 12
                    && img
                        .id
                        .trim_start_matches("sha256:")
                        .starts_with(r.trim_start_matches("sha256:")))
        })
    }

    /// Removes an image from the index (the host image cannot be removed).
    pub fn remove(&self, reference: &str) -> Result<(), ImageError> {
        let Some(img) = self.resolve(reference) else {
            return Err(ImageError::NotFound(reference.to_string()));
        };
        if img.id == HOST_IMAGE_ID {
            return Err(ImageError::Unsupported(
                "the built-in image rkind/host cannot be removed".into(),
            ));
        }
        let rest: Vec<ImageRecord> = self
            .index()
            .into_iter()
            .filter(|i| i.id != img.id)
            .collect();
        let p = self.root.join("images.json");
        let tmp = self.root.join("images.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(&rest).unwrap_or_default())
            .and_then(|_| std::fs::rename(&tmp, &p))
            .map_err(|source| ImageError::Io { path: p, source })
    }

    /// Lower directories for overlayfs, top-most first; `/` for the host image.
    pub fn layer_dirs(&self, image: &ImageRecord) -> Vec<PathBuf> {
        if image.id == HOST_IMAGE_ID {
            return vec![PathBuf::from("/")];
        }
        image.layers.iter().rev().cloned().collect()
    }

    /// Bytes and inodes used by the store.
    pub fn fs_usage(&self) -> (u64, u64) {
        fn walk(p: &Path, acc: &mut (u64, u64)) {
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    acc.1 += 1;
                    if let Ok(m) = e.metadata() {
                        if m.is_dir() {
                            walk(&e.path(), acc);
                        } else {
                            acc.0 += m.len();
                        }
                    }
                }
            }
        }
        let mut acc = (0, 0);
        walk(&self.root, &mut acc);
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_host_image() {
        assert_eq!(normalize("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(normalize("rkind/host"), "docker.io/rkind/host:latest");
        assert_eq!(normalize("localhost:5000/x:1"), "localhost:5000/x:1");
        assert_eq!(normalize("quay.example/a/b"), "quay.example/a/b:latest");
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        for r in [
            "rkind/host",
            "rkind/host:latest",
            "docker.io/rkind/host:latest",
            HOST_IMAGE_ID,
        ] {
            assert_eq!(
                s.resolve(r).map(|i| i.id),
                Some(HOST_IMAGE_ID.to_string()),
                "{r}"
            );
        }
        assert!(s.resolve("busybox").is_none());
        assert!(s.remove("rkind/host").is_err());
        assert!(matches!(
            s.import(&dir.path().join("nope.tar")),
            Err(ImageError::Io { .. })
        ));
    }
}
