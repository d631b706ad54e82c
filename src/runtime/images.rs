//! The runtime's local image store: the built-in `rkind/host` image (the host's root
//! filesystem, read-only, under a per-container writable layer), so pods run offline with
//! no image at all, and images imported with `rkind load image` from an OCI layout
//! directory, an OCI archive or a `docker save` archive. Layers (gzip, zstd or plain tar)
//! are verified by digest and unpacked once into `layers/sha256/<digest>/`, with OCI
//! whiteouts turned into overlayfs whiteouts so the layers stack directly as lowerdirs.
//! `images.json` is the index; registry pulls will add to the same layout.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Errors of the image store.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// File system trouble.
    #[error("{path}: {source}{}", cause(source))]
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
        size: host_root_used_bytes(),
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

/// What the host image weighs: the bytes used on the host's root filesystem (statvfs,
/// cheap; walking `/` would not be). Never 0: upstream's kubelet refuses an image whose
/// ImageStatus has no size ("Id or size of image ... is not set").
fn host_root_used_bytes() -> u64 {
    nix::sys::statvfs::statvfs("/")
        .map(|s| s.blocks().saturating_sub(s.blocks_free()) * s.fragment_size())
        .unwrap_or(0)
        .max(1)
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

use sha2::Digest;

fn safe_join(dir: &Path, rel: &str) -> Result<PathBuf, ImageError> {
    let p = Path::new(rel);
    if p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(ImageError::Unsupported(format!(
            "path {rel:?} escapes the archive"
        )));
    }
    Ok(dir.join(p))
}

/// The underlying reason of a wrapped I/O error (the tar crate names the entry on top).
fn cause(e: &std::io::Error) -> String {
    std::error::Error::source(e)
        .map(|c| format!(": {c}"))
        .unwrap_or_default()
}

fn file_digest(path: &Path) -> Result<String, ImageError> {
    let mut f = std::fs::File::open(path).map_err(|source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).map_err(|source| ImageError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

fn verify_digest(path: &Path, want: &str) -> Result<(), ImageError> {
    let have = file_digest(path)?;
    if have != want {
        return Err(ImageError::Unsupported(format!(
            "{}: digest mismatch: expected {want}, got {have}",
            path.display()
        )));
    }
    Ok(())
}

/// Unpacks one layer (gzip, zstd or plain tar) into `dst`, turning OCI whiteouts into
/// overlayfs ones (a 0/0 character device; `trusted.overlay.opaque` on opaque dirs).
fn unpack_layer(blob: &Path, dst: &Path) -> Result<(), ImageError> {
    use std::io::Read;
    let err = |source| ImageError::Io {
        path: blob.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(blob).map_err(err)?;
    let mut magic = [0u8; 4];
    let n = f.read(&mut magic).map_err(err)?;
    drop(f);
    let f = std::fs::File::open(blob).map_err(err)?;
    let reader: Box<dyn Read> = if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(f))
    } else if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Box::new(zstd::Decoder::new(f).map_err(err)?)
    } else {
        Box::new(f)
    };
    let mut ar = tar::Archive::new(reader);
    ar.set_preserve_permissions(true);
    // Only root can give files away; a rootless runtime owns them all (and its user is
    // root inside the pods' user namespaces, which is what images mostly ask for).
    ar.set_preserve_ownerships(nix::unistd::geteuid().is_root());
    ar.set_overwrite(true);
    for entry in ar.entries().map_err(err)? {
        let mut entry = entry.map_err(err)?;
        let path = entry.path().map_err(err)?.into_owned();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = path.parent().map(Path::to_path_buf).unwrap_or_default();
        if name == ".wh..wh..opq" {
            let d = safe_join(dst, &parent.to_string_lossy())?;
            std::fs::create_dir_all(&d).map_err(|source| ImageError::Io {
                path: d.clone(),
                source,
            })?;
            let _ = set_opaque(&d);
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            let target = safe_join(dst, &parent.join(hidden).to_string_lossy())?;
            if let Some(p) = target.parent() {
                std::fs::create_dir_all(p).map_err(|source| ImageError::Io {
                    path: p.to_path_buf(),
                    source,
                })?;
            }
            let _ = std::fs::remove_file(&target);
            nix::sys::stat::mknod(
                &target,
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::empty(),
                0,
            )
            .map_err(|e| ImageError::Io {
                path: target.clone(),
                source: std::io::Error::from(e),
            })?;
            continue;
        }
        if !entry.unpack_in(dst).map_err(err)? {
            return Err(ImageError::Unsupported(format!(
                "layer entry {} escapes the layer",
                path.display()
            )));
        }
    }
    Ok(())
}

fn set_opaque(dir: &Path) -> std::io::Result<()> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(std::io::Error::other)?;
    // SAFETY: NUL-terminated strings and a valid value buffer.
    let r = unsafe {
        libc::setxattr(
            c.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            b"y".as_ptr().cast(),
            1,
            0,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
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

    /// Imports an OCI layout directory, an OCI archive or a `docker save` archive and
    /// returns the images it held. A failed import leaves the index unchanged.
    pub fn import(&self, path: &Path) -> Result<Vec<ImageRecord>, ImageError> {
        let io = |source| ImageError::Io {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        let tmp = self.root.join(format!("tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let result = (|| {
            let dir = if meta.is_dir() {
                path.to_path_buf()
            } else {
                std::fs::create_dir_all(&tmp).map_err(|source| ImageError::Io {
                    path: tmp.clone(),
                    source,
                })?;
                let f = std::fs::File::open(path).map_err(|source| ImageError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
                let mut ar = tar::Archive::new(f);
                let entries = ar.entries().map_err(|source| ImageError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
                for entry in entries {
                    let mut entry = entry.map_err(|source| ImageError::Io {
                        path: path.to_path_buf(),
                        source,
                    })?;
                    if !entry.unpack_in(&tmp).map_err(|source| ImageError::Io {
                        path: path.to_path_buf(),
                        source,
                    })? {
                        return Err(ImageError::Unsupported(format!(
                            "{}: archive entry escapes the archive",
                            path.display()
                        )));
                    }
                }
                tmp.clone()
            };
            if dir.join("index.json").exists() {
                self.import_oci(&dir)
            } else if dir.join("manifest.json").exists() {
                self.import_docker(&dir)
            } else {
                Err(ImageError::Unsupported(format!(
                    "{}: neither an OCI image layout (index.json) nor a docker save archive (manifest.json)",
                    path.display()
                )))
            }
        })();
        let _ = std::fs::remove_dir_all(&tmp);
        let imported = result?;
        let mut index: Vec<ImageRecord> = self.index();
        for img in &imported {
            for other in index.iter_mut() {
                other.repo_tags.retain(|t| !img.repo_tags.contains(t));
            }
            index.retain(|i| i.id != img.id);
            index.push(img.clone());
        }
        self.write_index(&index)?;
        Ok(imported)
    }

    fn write_index(&self, index: &[ImageRecord]) -> Result<(), ImageError> {
        let p = self.root.join("images.json");
        let tmp = self.root.join("images.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(index).unwrap_or_default())
            .and_then(|_| std::fs::rename(&tmp, &p))
            .map_err(|source| ImageError::Io { path: p, source })
    }

    fn read_json(path: &Path) -> Result<serde_json::Value, ImageError> {
        let b = std::fs::read(path).map_err(|source| ImageError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_slice(&b)
            .map_err(|e| ImageError::Unsupported(format!("{}: {e}", path.display())))
    }

    fn blob(dir: &Path, digest: &str) -> Result<PathBuf, ImageError> {
        let (alg, hex) = digest
            .split_once(':')
            .ok_or_else(|| ImageError::Unsupported(format!("bad digest {digest:?}")))?;
        if alg != "sha256" || hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ImageError::Unsupported(format!(
                "unsupported digest {digest:?}"
            )));
        }
        Ok(dir.join("blobs").join(alg).join(hex))
    }

    fn import_oci(&self, dir: &Path) -> Result<Vec<ImageRecord>, ImageError> {
        let index = Self::read_json(&dir.join("index.json"))?;
        let mut out = Vec::new();
        let mut queue: Vec<serde_json::Value> =
            index["manifests"].as_array().cloned().unwrap_or_default();
        while let Some(desc) = queue.pop() {
            let digest = desc["digest"].as_str().unwrap_or("");
            let path = Self::blob(dir, digest)?;
            verify_digest(&path, digest)?;
            let m = Self::read_json(&path)?;
            if m["manifests"].is_array() {
                // A nested index: take the manifest for this platform (or the first).
                let ms = m["manifests"].as_array().cloned().unwrap_or_default();
                let pick = ms
                    .iter()
                    .find(|x| {
                        x["platform"]["os"] == "linux"
                            && x["platform"]["architecture"] == crate::go_arch()
                    })
                    .or(ms.first())
                    .cloned();
                if let Some(mut p) = pick {
                    p["annotations"] = desc["annotations"].clone();
                    queue.push(p);
                }
                continue;
            }
            let name = desc["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap_or("");
            let tags = if name.is_empty() {
                Vec::new()
            } else if name.contains('/') || name.contains(':') {
                vec![normalize(name)]
            } else {
                vec![normalize(&format!("{name}:latest"))]
            };
            let config_digest = m["config"]["digest"].as_str().unwrap_or("");
            let config_path = Self::blob(dir, config_digest)?;
            verify_digest(&config_path, config_digest)?;
            let layers: Vec<(PathBuf, String)> = m["layers"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|l| {
                    let d = l["digest"].as_str().unwrap_or("").to_string();
                    Ok((Self::blob(dir, &d)?, d))
                })
                .collect::<Result<_, ImageError>>()?;
            out.push(self.store_image(&config_path, config_digest, &layers, tags, true)?);
        }
        Ok(out)
    }

    fn import_docker(&self, dir: &Path) -> Result<Vec<ImageRecord>, ImageError> {
        let manifest = Self::read_json(&dir.join("manifest.json"))?;
        let mut out = Vec::new();
        for entry in manifest.as_array().cloned().unwrap_or_default() {
            let config = entry["Config"].as_str().unwrap_or("");
            let config_path = safe_join(dir, config)?;
            let config_digest = file_digest(&config_path)?;
            let layers: Vec<(PathBuf, String)> = entry["Layers"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|l| {
                    let p = safe_join(dir, l.as_str().unwrap_or(""))?;
                    let d = file_digest(&p)?;
                    Ok((p, d))
                })
                .collect::<Result<_, ImageError>>()?;
            let tags = entry["RepoTags"]
                .as_array()
                .map(|a| a.iter().filter_map(|t| t.as_str().map(normalize)).collect())
                .unwrap_or_default();
            out.push(self.store_image(&config_path, &config_digest, &layers, tags, false)?);
        }
        Ok(out)
    }

    /// Unpacks the layers (once each) and builds the image's record.
    fn store_image(
        &self,
        config_path: &Path,
        config_digest: &str,
        layers: &[(PathBuf, String)],
        tags: Vec<String>,
        verify: bool,
    ) -> Result<ImageRecord, ImageError> {
        let cfg = Self::read_json(config_path)?;
        let c = &cfg["config"];
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut dirs = Vec::new();
        let mut size = 0u64;
        for (blob, digest) in layers {
            if verify {
                verify_digest(blob, digest)?;
            }
            size += std::fs::metadata(blob).map(|m| m.len()).unwrap_or(0);
            let hexd = digest.trim_start_matches("sha256:");
            let target = self.root.join("layers").join("sha256").join(hexd);
            if !target.exists() {
                let partial = self
                    .root
                    .join("layers")
                    .join("sha256")
                    .join(format!("{hexd}.partial"));
                let _ = std::fs::remove_dir_all(&partial);
                std::fs::create_dir_all(&partial).map_err(|source| ImageError::Io {
                    path: partial.clone(),
                    source,
                })?;
                unpack_layer(blob, &partial)?;
                std::fs::rename(&partial, &target).map_err(|source| ImageError::Io {
                    path: target.clone(),
                    source,
                })?;
            }
            dirs.push(target);
        }
        let blob_dst = self
            .root
            .join("blobs")
            .join("sha256")
            .join(config_digest.trim_start_matches("sha256:"));
        let _ = std::fs::copy(config_path, &blob_dst);
        Ok(ImageRecord {
            id: config_digest.to_string(),
            repo_tags: tags,
            repo_digests: Vec::new(),
            size,
            layers: dirs,
            config: ImageConfig {
                entrypoint: strings(&c["Entrypoint"]),
                cmd: strings(&c["Cmd"]),
                env: strings(&c["Env"]),
                working_dir: c["WorkingDir"].as_str().unwrap_or("").to_string(),
                user: c["User"].as_str().unwrap_or("").to_string(),
            },
        })
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
        self.write_index(&rest)
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

    #[test]
    fn whiteouts_become_overlay_whiteouts_and_traversal_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |name: &str, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_cksum();
            b.append_data(&mut h, name, data).unwrap();
        };
        add("etc/keep", b"x");
        add("etc/.wh.gone", b"");
        add("var/.wh..wh..opq", b"");
        let layer = dir.path().join("layer.tar");
        std::fs::write(&layer, b.into_inner().unwrap()).unwrap();
        let dst = dir.path().join("out");
        std::fs::create_dir_all(&dst).unwrap();
        unpack_layer(&layer, &dst).unwrap();
        use std::os::unix::fs::FileTypeExt;
        assert!(
            std::fs::metadata(dst.join("etc/gone"))
                .unwrap()
                .file_type()
                .is_char_device()
        );
        assert_eq!(std::fs::read(dst.join("etc/keep")).unwrap(), b"x");
        assert!(dst.join("var").is_dir());
        assert!(safe_join(&dst, "../etc/passwd").is_err());
        assert!(safe_join(&dst, "/etc/passwd").is_err());
        // A digest that does not match is refused.
        assert!(verify_digest(&layer, &format!("sha256:{}", "0".repeat(64))).is_err());
    }
}
