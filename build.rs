//! Compiles the CRI v1 protocol (`proto/runtime.proto`) into tonic client and server
//! code. protoc comes from the `protoc-bin-vendored` crate, so no system package is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = std::env::var("RKIND_CRI_PROTO").unwrap_or_else(|_| "proto/runtime.proto".into());
    let include = std::path::Path::new(&proto)
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "proto".into());
    println!("cargo:rerun-if-changed={proto}");
    println!("cargo:rerun-if-env-changed=RKIND_CRI_PROTO");
    // SAFETY: build scripts are single-threaded; nothing else reads the environment now.
    unsafe { std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .generate_default_stubs(true)
        .compile_protos(&[proto.as_str()], &[include.as_str()])?;
    Ok(())
}
