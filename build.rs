//! Compiles rkind's CRI v1 protocol definition (`proto/runtime.proto`) into tonic client
//! and server code, and upstream Kubernetes' vendored `generated.proto` files
//! (`proto/k8s/`) into one descriptor set (`$OUT_DIR/k8s.pb`) that the API server's
//! protobuf codec reads its message tables from. protoc comes from the
//! `protoc-bin-vendored` crate, so no system package is needed.

use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/runtime.proto");
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; nothing else reads the environment now.
    unsafe { std::env::set_var("PROTOC", &protoc) };
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .generate_default_stubs(true)
        .compile_protos(&["proto/runtime.proto"], &["proto"])?;
    k8s_descriptor_set(&protoc)
}

/// Runs protoc over every vendored `generated.proto` with `--include_imports`. The files
/// import no gogo.proto at this version, so no extra include path is needed.
fn k8s_descriptor_set(protoc: &Path) -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/k8s");
    let root = Path::new("proto/k8s");
    let mut files = Vec::new();
    collect_protos(&root.join("k8s.io"), &mut files)?;
    files.sort();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("k8s.pb");
    let output = std::process::Command::new(protoc)
        .arg(format!("-I{}", root.display()))
        .arg("--include_imports")
        .arg(format!("--descriptor_set_out={}", out.display()))
        .args(files.iter().map(|f| f.strip_prefix(root).unwrap_or(f)))
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "protoc failed on proto/k8s: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(())
}

fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
