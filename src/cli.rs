//! The `rkind` command line (clap). Parsing and user-facing messages only; the work is
//! done by [`crate::cluster`] and friends.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::cluster::{self, UpOptions, state};

/// rkind: a kind-style Kubernetes sandbox cluster in one process.
#[derive(Debug, Parser)]
#[command(name = "rkind", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

/// Output formats of `status`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Output {
    /// A table for people.
    Text,
    /// JSON for tools.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create (or restart) a cluster and wait until its node is Ready.
    Up {
        /// Cluster name (contexts are named rkind-<name>).
        #[arg(long, default_value = "rkind")]
        name: String,
        /// Data directory [default: $XDG_DATA_HOME/rkind/<name>].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Kubeconfig file to merge the cluster into [default: $KUBECONFIG or ~/.kube/config].
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// API server port on 127.0.0.1 [default: the previous one, else a free one].
        #[arg(long)]
        api_port: Option<u16>,
        /// Run in the background: return once Ready, leaving rkind.pid and rkind.log in the data dir.
        #[arg(short, long)]
        detach: bool,
    },
    /// Stop a cluster gracefully and remove its kubeconfig entries.
    Down {
        /// Cluster name.
        #[arg(long, default_value = "rkind")]
        name: String,
        /// Data directory [default: $XDG_DATA_HOME/rkind/<name>].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Kubeconfig file to remove the entries from [default: as `up` chose].
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// Also delete the data directory (objects, certificates, logs).
        #[arg(long)]
        purge: bool,
    },
    /// Show clusters and whether they run.
    Status {
        /// Only this cluster.
        #[arg(long)]
        name: Option<String>,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Print a cluster's kubeconfig to stdout (the admin's, or with --user a service
    /// account's, holding a fresh token).
    Kubeconfig {
        /// Cluster name.
        #[arg(long, default_value = "rkind")]
        name: String,
        /// Data directory [default: $XDG_DATA_HOME/rkind/<name>].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// A service account (`NAME`, `NAMESPACE/NAME` or
        /// `system:serviceaccount:NAMESPACE:NAME`): the kubeconfig authenticates with a token
        /// for it (TokenRequest) instead of the admin certificate.
        #[arg(long)]
        user: Option<String>,
        /// The token's lifetime, in seconds (with --user).
        #[arg(long, default_value_t = 3600)]
        duration: i64,
    },
    /// Import an image into a cluster's local store (OCI layout dir, OCI archive or `docker save` archive).
    Load {
        /// What to load.
        #[command(subcommand)]
        what: LoadWhat,
    },
    /// List the images in a cluster's local store.
    Images {
        /// Cluster name.
        #[arg(long, default_value = "rkind")]
        name: String,
        /// Data directory [default: $XDG_DATA_HOME/rkind/<name>].
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Run a command against a throw-away cluster: boot in a temp dir, set KUBECONFIG for
    /// the command, export logs if it fails, tear down, exit with the command's code.
    Run {
        /// Cluster name [default: run-<pid>].
        #[arg(long)]
        name: Option<String>,
        /// Keep the cluster's data directory when the command fails.
        #[arg(long)]
        keep_on_failure: bool,
        /// The command and its arguments (after `--`).
        #[arg(trailing_var_arg = true, required = true)]
        command: Vec<String>,
    },
    /// Export a running cluster's objects, events and logs (for CI artifacts).
    Export {
        /// What to export.
        #[command(subcommand)]
        what: ExportWhat,
    },
    /// Show recent exec/attach/port-forward sessions hop by hop (kubectl → API server →
    /// kubelet → CRI → streaming server → process), from the cluster's trace ring.
    Trace {
        /// Which sessions.
        #[arg(value_enum, default_value = "exec")]
        kind: TraceKind,
        /// Print sessions live, as they end.
        #[arg(long, short = 'f')]
        follow: bool,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: crate::trace::client::Format,
        /// How many of the most recent sessions.
        #[arg(long, default_value_t = 5)]
        limit: usize,
        /// Cluster name.
        #[arg(long, default_value = "rkind")]
        name: String,
        /// Data directory [default: $XDG_DATA_HOME/rkind/<name>].
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// A guided walk through the exec chain on a demo pod: one real `kubectl exec`,
    /// narrated hop by hop with live evidence (connections, processes, namespaces).
    Explain {
        /// What to explain.
        #[arg(value_enum)]
        what: ExplainWhat,
        /// Cluster name.
        #[arg(long, default_value = "rkind")]
        name: String,
        /// Data directory [default: $XDG_DATA_HOME/rkind/<name>].
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Print shell completions.
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// What `rkind explain` walks through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExplainWhat {
    /// `kubectl exec`, from kubectl to the process.
    Exec,
}

/// Which sessions `rkind trace` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TraceKind {
    /// `kubectl exec` (and `cp`).
    Exec,
    /// `kubectl attach` (and `run -it`).
    Attach,
    /// `kubectl port-forward`.
    Portforward,
    /// All of them.
    All,
}

/// Things `rkind export` writes.
#[derive(Debug, Subcommand)]
pub enum ExportWhat {
    /// Objects (JSON), events, container logs and the cluster log, into DIR.
    Logs {
        /// Target directory (created).
        dir: PathBuf,
        /// Cluster name.
        #[arg(long, default_value = "rkind")]
        name: String,
        /// Data directory [default: $XDG_DATA_HOME/rkind/<name>].
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

/// Things `rkind load` imports.
#[derive(Debug, Subcommand)]
pub enum LoadWhat {
    /// An image archive or OCI layout directory.
    Image {
        /// The archive or directory.
        path: PathBuf,
        /// Cluster name.
        #[arg(long, default_value = "rkind")]
        name: String,
        /// Data directory [default: $XDG_DATA_HOME/rkind/<name>].
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

/// Runs the CLI; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    crate::install_crypto_provider();
    match run(cli) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("ERROR: {msg}");
            1
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("rkind=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// `bot`, `ns/bot` or `system:serviceaccount:ns:bot` → (namespace, name).
fn service_account(user: &str) -> Result<(String, String), String> {
    let (ns, name) = if let Some(rest) = user.strip_prefix("system:serviceaccount:") {
        rest.split_once(':').unwrap_or(("", rest))
    } else {
        user.split_once('/').unwrap_or(("default", user))
    };
    if ns.is_empty() || name.is_empty() || name.contains(['/', ':']) {
        return Err(format!(
            "--user {user:?}: expected NAME, NAMESPACE/NAME or system:serviceaccount:NAMESPACE:NAME"
        ));
    }
    Ok((ns.to_string(), name.to_string()))
}

/// A token for `ns/sa`, asked for over HTTPS with the admin identity (TokenRequest).
async fn service_account_token(
    pki: &crate::pki::ClusterPki,
    port: u16,
    ns: &str,
    sa: &str,
    seconds: i64,
) -> Result<String, String> {
    let tls = pki.client_tls(&pki.admin).map_err(|e| e.to_string())?;
    let api = crate::client::ApiClient::new(([127, 0, 0, 1], port).into(), tls);
    let body = serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                  "spec": {"expirationSeconds": seconds}});
    let reply = api
        .post(
            &format!("/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token"),
            &body,
        )
        .await
        .map_err(|e| format!("cannot get a token for {ns}/{sa}: {e}"))?;
    reply["status"]["token"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| format!("cannot get a token for {ns}/{sa}: the answer holds none"))
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn check_name(name: &str) -> Result<(), String> {
    if crate::apiserver::validation::is_dns1123_label(name) && name.len() <= 40 {
        Ok(())
    } else {
        Err(format!(
            "invalid cluster name {name:?}: use at most 40 lower-case letters, digits and '-', starting and ending with a letter or digit"
        ))
    }
}

fn run(cli: Cli) -> Result<i32, String> {
    match cli.command {
        Cmd::Up {
            name,
            data_dir,
            kubeconfig,
            api_port,
            detach,
        } => {
            check_name(&name)?;
            let dir = claim(&name, data_dir.map(absolute).as_deref())?;
            let kubeconfig = kubeconfig.map(absolute);
            if detach {
                return up_detached(&name, &dir, kubeconfig.as_deref(), api_port);
            }
            init_logging();
            let opts = UpOptions {
                name,
                data_dir: dir,
                kubeconfig,
                api_port,
            };
            runtime()?
                .block_on(cluster::run_foreground(&opts))
                .map_err(|e| e.to_string())?;
            Ok(0)
        }
        Cmd::Down {
            name,
            data_dir,
            kubeconfig,
            purge,
        } => {
            let dir = find(&name, data_dir)?;
            down(&name, &dir, kubeconfig.as_deref(), purge)
        }
        Cmd::Status { name, output } => status(name.as_deref(), output),
        Cmd::Kubeconfig {
            name,
            data_dir,
            user,
            duration,
        } => {
            let dir = find(&name, data_dir)?;
            let st = state::ClusterState::load(&dir).map_err(|e| e.to_string())?;
            let node = cluster::node_name(&name);
            let pki = crate::pki::ClusterPki::load_or_create(&dir.join("pki"), &node)
                .map_err(|e| e.to_string())?;
            let server = format!("https://127.0.0.1:{}", st.api_port);
            let mut doc = crate::kubeconfig::document(&name, &server, &pki);
            if let Some(user) = user {
                let (ns, sa) = service_account(&user)?;
                let token = runtime()?.block_on(service_account_token(
                    &pki,
                    st.api_port,
                    &ns,
                    &sa,
                    duration,
                ))?;
                let ctx = crate::kubeconfig::context_name(&name);
                let user_name = format!("system:serviceaccount:{ns}:{sa}");
                doc["users"] = serde_json::json!([{"name": user_name, "user": {"token": token}}]);
                doc["contexts"] = serde_json::json!([{"name": ctx, "context":
                    {"cluster": ctx, "user": user_name, "namespace": ns}}]);
            }
            print!(
                "{}",
                serde_saphyr::to_string(&doc).map_err(|e| e.to_string())?
            );
            Ok(0)
        }
        Cmd::Load {
            what:
                LoadWhat::Image {
                    path,
                    name,
                    data_dir,
                },
        } => {
            let dir = find(&name, data_dir)?;
            let store =
                crate::runtime::images::ImageStore::open(&dir.join("runtime").join("images"))
                    .map_err(|e| e.to_string())?;
            let imported = store
                .import(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            for img in imported {
                println!(
                    "Loaded image {} ({})",
                    img.repo_tags
                        .first()
                        .cloned()
                        .unwrap_or_else(|| img.id.clone()),
                    img.id
                );
            }
            Ok(0)
        }
        Cmd::Images { name, data_dir } => {
            let dir = find(&name, data_dir)?;
            let store =
                crate::runtime::images::ImageStore::open(&dir.join("runtime").join("images"))
                    .map_err(|e| e.to_string())?;
            println!("{:<50} {:<20} {:>10}", "IMAGE", "IMAGE ID", "SIZE");
            for img in store.list() {
                let short = img
                    .id
                    .trim_start_matches("sha256:")
                    .chars()
                    .take(12)
                    .collect::<String>();
                for tag in if img.repo_tags.is_empty() {
                    vec!["<none>".to_string()]
                } else {
                    img.repo_tags.clone()
                } {
                    println!("{:<50} {:<20} {:>10}", tag, short, human_size(img.size));
                }
            }
            Ok(0)
        }
        Cmd::Run {
            name,
            keep_on_failure,
            command,
        } => {
            if let Some(n) = &name {
                check_name(n)?;
            }
            runtime()?
                .block_on(crate::harness::run(name, keep_on_failure, &command))
                .map_err(|e| e.to_string())
        }
        Cmd::Export {
            what:
                ExportWhat::Logs {
                    dir,
                    name,
                    data_dir,
                },
        } => {
            let data = find(&name, data_dir)?;
            runtime()?
                .block_on(crate::harness::export_logs(&data, &dir))
                .map_err(|e| e.to_string())?;
            println!("Exported cluster {name:?} to {}", dir.display());
            Ok(0)
        }
        Cmd::Trace {
            kind,
            follow,
            output,
            limit,
            name,
            data_dir,
        } => {
            if limit == 0 {
                return Err("--limit must be at least 1".into());
            }
            let data = find(&name, data_dir)?;
            let kind = match kind {
                TraceKind::Exec => "exec",
                TraceKind::Attach => "attach",
                TraceKind::Portforward => "portforward",
                TraceKind::All => "",
            };
            runtime()?
                .block_on(crate::trace::client::show(
                    &data, kind, limit, follow, output,
                ))
                .map_err(|e| e.to_string())?;
            Ok(0)
        }
        Cmd::Explain {
            what: ExplainWhat::Exec,
            name,
            data_dir,
        } => {
            let data = find(&name, data_dir)?;
            runtime()?
                .block_on(crate::trace::explain::explain_exec(&data))
                .map_err(|e| e.to_string())?;
            Ok(0)
        }
        Cmd::Completion { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "rkind", &mut std::io::stdout());
            Ok(0)
        }
    }
}

/// The data directory of the existing cluster `name` (see [`cluster::find`]); an error
/// naming where it looked if there is none. Creates nothing.
fn find(name: &str, data_dir: Option<PathBuf>) -> Result<PathBuf, String> {
    check_name(name)?;
    cluster::find(name, data_dir.map(absolute).as_deref()).map_err(|e| e.to_string())
}

/// Picks `up`'s data directory, refuses a name already running from another directory
/// (both would be context `rkind-<name>`), creates the directory and records it in the
/// cluster index.
fn claim(name: &str, explicit: Option<&Path>) -> Result<PathBuf, String> {
    let dir = cluster::up_data_dir(name, explicit).map_err(|e| e.to_string())?;
    if let Some(other) = cluster::index::lookup(name).map_err(|e| e.to_string())?
        && !cluster::index::same_dir(&other, &dir)
        && let Some(pid) = state::running_pid(&other)
    {
        return Err(format!(
            "cluster {name:?} is already running from {} (pid {pid}); use `rkind down --name {name}` first",
            other.display()
        ));
    }
    state::prepare_data_dir(&dir).map_err(|e| e.to_string())?;
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    cluster::index::record(name, &dir).map_err(|e| e.to_string())?;
    Ok(dir)
}

fn human_size(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1}GB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1}MB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1}kB", n as f64 / 1024.0),
        n => format!("{n}B"),
    }
}

fn absolute(p: PathBuf) -> PathBuf {
    if p.is_absolute() {
        p
    } else {
        std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p)
    }
}

fn up_detached(
    name: &str,
    dir: &Path,
    kubeconfig: Option<&Path>,
    api_port: Option<u16>,
) -> Result<i32, String> {
    state::prepare_data_dir(dir).map_err(|e| e.to_string())?;
    if let Some(pid) = state::running_pid(dir) {
        return Err(format!(
            "cluster {name:?} is already running (pid {pid}); use `rkind down --name {name}` first"
        ));
    }
    let log_path = dir.join("rkind.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("{}: {e}", log_path.display()))?;
    let start_offset = log.metadata().map(|m| m.len()).unwrap_or(0);
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own binary: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("up")
        .arg("--name")
        .arg(name)
        .arg("--data-dir")
        .arg(dir);
    if let Some(k) = kubeconfig {
        cmd.arg("--kubeconfig").arg(k);
    }
    if let Some(p) = api_port {
        cmd.arg("--api-port").arg(p.to_string());
    }
    let err_log = log.try_clone().map_err(|e| e.to_string())?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(err_log));
    // SAFETY: setsid is async-signal-safe; it detaches the daemon from our terminal so
    // that Ctrl-C in the shell that ran `up -d` does not reach it.
    unsafe {
        cmd.pre_exec(|| {
            let _ = nix::unistd::setsid();
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start rkind: {e}"))?;
    let pid = child.id() as i32;
    let started = Instant::now();
    let mut offset = start_offset;
    loop {
        offset = echo_progress(&log_path, offset);
        if let Ok(st) = state::ClusterState::load(dir)
            && st.ready
            && st.pid == pid
        {
            println!(
                "Running in the background (pid {pid}); logs: {}",
                log_path.display()
            );
            return Ok(0);
        }
        if let Ok(Some(status)) = child.try_wait() {
            echo_progress(&log_path, offset);
            return Err(format!(
                "rkind exited during start-up ({status}); see {}",
                log_path.display()
            ));
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            return Err(format!(
                "the cluster did not become ready within 120 s; see {}",
                log_path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Prints the progress lines the background process wrote since `offset`.
fn echo_progress(path: &Path, offset: u64) -> u64 {
    let Ok(mut f) = std::fs::File::open(path) else {
        return offset;
    };
    if f.seek(SeekFrom::Start(offset)).is_err() {
        return offset;
    }
    let mut buf = String::new();
    let _ = f.read_to_string(&mut buf);
    let complete = match buf.rfind('\n') {
        Some(i) => &buf[..=i],
        None => return offset,
    };
    for line in complete.lines() {
        // Progress, the isolation warnings ("   ! ..."), errors.
        if line.starts_with(" ✓")
            || line.starts_with("   !")
            || line.starts_with("Creating")
            || line.starts_with("ERROR")
        {
            println!("{line}");
        }
    }
    offset + complete.len() as u64
}

/// How long `down` waits for a cluster to stop by itself after SIGTERM: shutdown gives
/// pods at most 5 s of grace and then winds the components down; a cluster still there
/// after this hangs, and is killed (then cleaned up after, as after a crash).
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

fn down(name: &str, dir: &Path, kubeconfig: Option<&Path>, purge: bool) -> Result<i32, String> {
    let st = state::ClusterState::load(dir).ok();
    let how = match state::running_pid(dir) {
        Some(pid) => {
            println!("Stopping cluster {name:?} (pid {pid}) ...");
            let how = stop(name, pid);
            state::remove_pid(dir);
            if how == Stopped::Killed
                && let Some(mut st) = st.clone()
            {
                st.ready = false;
                let _ = st.save(dir);
            }
            how
        }
        None => {
            println!("Cluster {name:?} is not running.");
            Stopped::Crashed
        }
    };
    // Whatever ended the cluster, none of its pods may outlive it: one `down` leaves
    // nothing behind (after a graceful stop this finds nothing).
    let c = crate::runtime::leftovers::clean(&dir.join("runtime"), &dir.join("cri.sock"));
    if c.processes > 0 || c.cgroups > 0 {
        let after = match how {
            Stopped::Gracefully => "after the stop",
            Stopped::Killed => "after the killed cluster",
            Stopped::Crashed => "after a crash",
        };
        println!(
            "Cleaned up {after}: stopped {} leftover process(es), removed {} container cgroup(s).",
            c.processes, c.cgroups
        );
    }
    let paths = match (kubeconfig, st.as_ref().and_then(|s| s.kubeconfig.clone())) {
        (Some(k), _) => vec![k.to_path_buf()],
        (None, Some(k)) => vec![k],
        (None, None) => crate::kubeconfig::all_paths(None),
    };
    for p in paths {
        match crate::kubeconfig::remove_from(&p, name) {
            Ok(true) => println!(
                "Removed context {:?} from {}",
                crate::kubeconfig::context_name(name),
                p.display()
            ),
            Ok(false) => {}
            Err(e) => eprintln!("warning: {e}"),
        }
    }
    if purge {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            println!("Deleted {}", dir.display());
        }
        cluster::index::remove(name, dir).map_err(|e| e.to_string())?;
    }
    Ok(0)
}

/// How the cluster's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopped {
    /// It exited after SIGTERM.
    Gracefully,
    /// It hung and was killed.
    Killed,
    /// It was not running (crashed or killed earlier).
    Crashed,
}

/// SIGTERM (and SIGCONT, as systemd does, so that a stopped process can act on it),
/// then SIGKILL if the process is still there after [`STOP_TIMEOUT`].
fn stop(name: &str, pid: i32) -> Stopped {
    use nix::sys::signal::{Signal, kill};
    let target = nix::unistd::Pid::from_raw(pid);
    let _ = kill(target, Signal::SIGTERM);
    let _ = kill(target, Signal::SIGCONT);
    if wait_gone(pid, STOP_TIMEOUT) {
        return Stopped::Gracefully;
    }
    eprintln!(
        "cluster {name:?} did not stop within {} s; killing it",
        STOP_TIMEOUT.as_secs()
    );
    let _ = kill(target, Signal::SIGKILL);
    // SIGKILL cannot be ignored; the wait only covers a process in uninterruptible sleep.
    wait_gone(pid, Duration::from_secs(10));
    Stopped::Killed
}

/// Waits (at most `timeout`) until `pid` has exited; true if it has.
fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let started = Instant::now();
    loop {
        if !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid) {
            return true;
        }
        if started.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|r| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

fn status(only: Option<&str>, output: Output) -> Result<i32, String> {
    let clusters = match only {
        Some(n) => vec![(n.to_string(), find(n, None)?)],
        None => cluster::list().map_err(|e| e.to_string())?,
    };
    let mut rows = Vec::new();
    for (_, d) in clusters {
        let Ok(st) = state::ClusterState::load(&d) else {
            continue;
        };
        let running = state::running_pid(&d);
        rows.push(json!({
            "name": st.name,
            "running": running.is_some(),
            "ready": running.is_some() && st.ready,
            "pid": running,
            "server": format!("https://127.0.0.1:{}", st.api_port),
            "kubeletPort": st.kubelet_port,
            "context": crate::kubeconfig::context_name(&st.name),
            "kubeconfig": st.kubeconfig,
            "dataDir": d,
            "isolation": st.isolation,
        }));
    }
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({"clusters": rows})).unwrap_or_default()
        ),
        Output::Text => {
            if rows.is_empty() {
                println!("No clusters found.");
                return Ok(if only.is_some() { 1 } else { 0 });
            }
            println!(
                "{:<16} {:<10} {:<28} {:<20} {:<13} DATA DIR",
                "NAME", "STATUS", "SERVER", "CONTEXT", "ISOLATION"
            );
            for r in &rows {
                let st = if r["ready"] == true {
                    "Running"
                } else if r["running"] == true {
                    "Starting"
                } else {
                    "Stopped"
                };
                println!(
                    "{:<16} {:<10} {:<28} {:<20} {:<13} {}",
                    r["name"].as_str().unwrap_or(""),
                    st,
                    r["server"].as_str().unwrap_or(""),
                    r["context"].as_str().unwrap_or(""),
                    r["isolation"].as_str().unwrap_or(""),
                    r["dataDir"].as_str().unwrap_or("")
                );
            }
        }
    }
    Ok(0)
}
