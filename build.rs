//! Compiles rkind's CRI v1 protocol definition (`proto/runtime.proto`) into tonic client
//! and server code. protoc comes from the `protoc-bin-vendored` crate, so no system
//! package is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/runtime.proto");
    // SAFETY: build scripts are single-threaded; nothing else reads the environment now.
    unsafe { std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .generate_default_stubs(true)
        .compile_protos(&["proto/runtime.proto"], &["proto"])?;
    Ok(())
}
