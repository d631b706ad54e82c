//! rkind: a kind-style Kubernetes sandbox cluster in one process.
//!
//! `rkind up` starts an API server, a kubelet, a scheduler and (with the runtime) a
//! Linux-namespace container runtime as tokio tasks that talk to each other only over
//! their real network interfaces, so stock `kubectl` works against it and every hop
//! can be observed. See `README.md` for the architecture.

pub mod apiserver;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod controller;
pub mod harness;
pub mod kubeconfig;
pub mod kubelet;
pub mod limits;
pub mod memory;
pub mod pki;
pub mod runtime;
pub mod store;
pub mod stream;
pub mod trace;

/// The Kubernetes minor version rkind reports. The system's kubectl dispatcher picks the
/// matching kubectl binary from it, so it must name a real release.
pub const KUBE_MINOR: &str = "32";

/// The `gitVersion` rkind reports (valid semver, as kubectl requires).
pub const KUBE_GIT_VERSION: &str = "v1.32.4+rkind";

/// The architecture in Go's naming (`amd64`, `arm64`), as Kubernetes labels use it.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Installs the ring crypto provider for rustls (the only provider rkind uses). Safe to
/// call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
