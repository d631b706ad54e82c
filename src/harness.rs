//! The hermetic test harness: `rkind run -- CMD` boots a throw-away cluster in a temp
//! directory with free ports, runs CMD with `KUBECONFIG` pointing at it (nothing global
//! touched), exports logs if CMD fails, tears everything down and passes CMD's exit
//! code through. `rkind export logs DIR` writes a cluster's objects, events and logs for
//! CI artifacts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::cluster::{self, UpOptions, state::ClusterState};

/// Why the harness failed (CMD's own failure is an exit code, not an error).
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The cluster did not come up.
    #[error("starting the cluster: {0}")]
    Up(#[from] cluster::UpError),
    /// A file or directory.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// CMD could not be started.
    #[error("cannot run {cmd:?}: {source}")]
    Spawn {
        /// The command.
        cmd: String,
        /// Why.
        source: std::io::Error,
    },
    /// The API server could not be read.
    #[error("reading the cluster: {0}")]
    Api(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HarnessError + '_ {
    move |source| HarnessError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Boots, runs `command`, tears down; returns the exit code to use.
pub async fn run(
    name: Option<String>,
    keep_on_failure: bool,
    command: &[String],
) -> Result<i32, HarnessError> {
    let pid = std::process::id();
    let dir = std::env::temp_dir().join(match &name {
        Some(n) => format!("rkind-run-{n}-{pid}"),
        None => format!("rkind-run-{pid}"),
    });
    let name = name.unwrap_or_else(|| format!("run-{pid}"));
    crate::cluster::state::prepare_data_dir(&dir).map_err(|e| HarnessError::Api(e.to_string()))?;
    let kubeconfig = dir.join("kubeconfig");
    let opts = UpOptions {
        name: name.clone(),
        data_dir: dir.join("data"),
        kubeconfig: Some(kubeconfig.clone()),
        api_port: None,
    };
    cluster::progress_on_stderr();
    let running = match cluster::up(&opts).await {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e.into());
        }
    };
    let code = run_command(command, &kubeconfig).await;
    if code != 0 {
        let logs = PathBuf::from(format!("rkind-logs-{name}"));
        match export_logs(&opts.data_dir, &logs).await {
            Ok(()) => eprintln!("rkind: command failed; logs exported to {}", logs.display()),
            Err(e) => eprintln!("rkind: command failed; exporting logs failed: {e}"),
        }
    }
    running.shutdown().await;
    if code != 0 && keep_on_failure {
        eprintln!("rkind: kept the cluster's data in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(code)
}

/// Runs the user's command; SIGINT/SIGTERM are passed on to it, and its exit code (or
/// 128 + signal) comes back.
async fn run_command(command: &[String], kubeconfig: &Path) -> i32 {
    use tokio::signal::unix::{SignalKind, signal};
    let Some((prog, args)) = command.split_first() else {
        return 0;
    };
    let mut child = match tokio::process::Command::new(prog)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .spawn()
    {
        Ok(c) => c,
        Err(source) => {
            eprintln!(
                "rkind: {}",
                HarnessError::Spawn {
                    cmd: prog.clone(),
                    source
                }
            );
            return 127;
        }
    };
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return exit_code(child.wait().await.ok());
    };
    loop {
        let sig = tokio::select! {
            s = child.wait() => return exit_code(s.ok()),
            _ = int.recv() => nix::sys::signal::Signal::SIGINT,
            _ = term.recv() => nix::sys::signal::Signal::SIGTERM,
        };
        if let Some(pid) = child.id() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
        }
    }
}

fn exit_code(status: Option<std::process::ExitStatus>) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Some(s) => s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)),
        None => 1,
    }
}

/// Writes nodes, pods, events and every object kind kubectl users look at as JSON,
/// plus container logs and the cluster's own log, into `out`.
pub async fn export_logs(data_dir: &Path, out: &Path) -> Result<(), HarnessError> {
    std::fs::create_dir_all(out).map_err(io(out))?;
    let st = ClusterState::load(data_dir).map_err(|e| HarnessError::Api(e.to_string()))?;
    let node = cluster::node_name(&st.name);
    let pki = crate::pki::ClusterPki::load_or_create(&data_dir.join("pki"), &node)
        .map_err(|e| HarnessError::Api(e.to_string()))?;
    let tls = pki
        .client_tls(&pki.admin)
        .map_err(|e| HarnessError::Api(e.to_string()))?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], st.api_port));
    let api = Arc::new(crate::client::ApiClient::new(addr, tls));
    for (file, path) in [
        ("nodes.json", "/api/v1/nodes"),
        ("namespaces.json", "/api/v1/namespaces"),
        ("pods.json", "/api/v1/pods"),
        ("events.json", "/api/v1/events"),
        ("services.json", "/api/v1/services"),
        ("configmaps.json", "/api/v1/configmaps"),
    ] {
        let v: Value = api
            .get(path)
            .await
            .map_err(|e| HarnessError::Api(format!("GET {path}: {e}")))?;
        let target = out.join(file);
        std::fs::write(&target, serde_json::to_vec_pretty(&v).unwrap_or_default())
            .map_err(io(&target))?;
    }
    copy_tree(&data_dir.join("pods"), &out.join("pods"))?;
    let log = data_dir.join("rkind.log");
    if log.exists() {
        let target = out.join("rkind.log");
        std::fs::copy(&log, &target).map_err(io(&target))?;
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), HarnessError> {
    let Ok(entries) = std::fs::read_dir(from) else {
        return Ok(());
    };
    std::fs::create_dir_all(to).map_err(io(to))?;
    for e in entries.flatten() {
        let p = e.path();
        let target = to.join(e.file_name());
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            copy_tree(&p, &target)?;
        } else if ft.is_file() {
            std::fs::copy(&p, &target).map_err(io(&target))?;
        }
    }
    Ok(())
}
