//! The last hop of `kubectl exec`: a process started inside a running container's
//! namespaces and root by the `__rkind-nsexec` helper, with plain pipes or, for `-t`,
//! a pseudo-terminal from `portable-pty`. Independent of any wire protocol: the
//! streaming server feeds it channels and gets back an [`Outcome`].

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::stream::remotecommand::{Outcome, TerminalSize};

use super::linux;

/// What to run and where.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    /// The container's main process (its namespaces and root are entered).
    pub pid: u32,
    /// The command.
    pub argv: Vec<String>,
    /// The container's environment.
    pub env: Vec<String>,
    /// Working directory inside the container.
    pub cwd: String,
    /// Allocate a terminal.
    pub tty: bool,
    /// A scratch file for the start-failure reason (see `ExecSpec::error_file`).
    pub error_file: PathBuf,
    /// Also report what a trace shows of the process (see `ExecSpec::report`).
    pub report: bool,
    /// The container's cgroup (the exec'd process counts against its limits).
    pub cgroup: Option<super::linux::cgroup::ContainerCgroup>,
    /// The container's user and group (the exec'd process runs as them).
    pub uid: u32,
    /// See `uid`.
    pub gid: u32,
    /// The isolation level the container runs at.
    pub level: super::linux::Level,
    /// The container's root directory at the unprivileged level (see `ExecSpec::root`).
    pub root: Option<String>,
    /// Names the exec in error messages, as upstream names the exec id.
    pub exec_id: String,
}

/// What a trace shows of an exec'd process: its host pid and the namespace inodes it
/// saw itself in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecReport {
    /// The command's pid on the host.
    pub pid: Option<u32>,
    /// `(type, inode)` for pid, mnt, net, ipc, uts.
    pub namespaces: Vec<(String, u64)>,
}

/// Splits an exec's error file into the start error (if any) and the trace report.
fn split_error_file(text: &str) -> (String, ExecReport) {
    let mut report = ExecReport::default();
    let mut error = String::new();
    for line in text.lines() {
        let Some(r) = line.strip_prefix(linux::REPORT_PREFIX) else {
            error.push_str(line);
            error.push('\n');
            continue;
        };
        let f: Vec<&str> = r.split_whitespace().collect();
        match f.as_slice() {
            ["pid", p] => report.pid = p.parse().ok(),
            ["ns", t, ino] => {
                if let Ok(i) = ino.parse() {
                    report.namespaces.push((t.to_string(), i));
                }
            }
            _ => {}
        }
    }
    (error, report)
}

/// The process's streams, as channels. `None` = the client did not ask for it.
pub struct ExecIo {
    /// Client input; the channel closing is stdin EOF.
    pub stdin: Option<mpsc::Receiver<Bytes>>,
    /// Terminal size events (tty only).
    pub resize: Option<mpsc::Receiver<TerminalSize>>,
    /// Standard output (with a tty: the terminal's output).
    pub stdout: Option<mpsc::Sender<Bytes>>,
    /// Standard error (never with a tty).
    pub stderr: Option<mpsc::Sender<Bytes>>,
    /// Cancelled when the client went away: the process is killed.
    pub cancel: CancellationToken,
}

/// How long output may keep flowing after the process exited before the session ends
/// without it (a background child holding the pipe open must not hang the session).
const DRAIN_IDLE: Duration = Duration::from_secs(2);

/// Runs the command and reports how it ended (and, if asked, what a trace shows of it).
pub async fn run(req: ExecRequest, io: ExecIo) -> (Outcome, ExecReport) {
    let _ = std::fs::remove_file(&req.error_file);
    let result = if req.tty {
        run_tty(&req, io).await
    } else {
        run_pipes(&req, io).await
    };
    let text = std::fs::read_to_string(&req.error_file).unwrap_or_default();
    let _ = std::fs::remove_file(&req.error_file);
    let (start_error, report) = split_error_file(&text);
    (outcome(&req, result, &start_error), report)
}

fn outcome(req: &ExecRequest, result: Result<i32, String>, start_error: &str) -> Outcome {
    if !start_error.trim().is_empty() {
        return Outcome::Error(format!(
            "error executing command in container: failed to exec in container: failed to start exec {:?}: exec failed: unable to start container process: {}: unknown",
            req.exec_id,
            start_error.trim()
        ));
    }
    match result {
        Ok(0) => Outcome::Success,
        Ok(code) => Outcome::ExitCode(code),
        Err(e) => Outcome::Error(format!("error executing command in container: {e}")),
    }
}

fn command(req: &ExecRequest) -> std::process::Command {
    let mut env = req.env.clone();
    if req.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    linux::exec_command(&linux::ExecSpec {
        pid: req.pid,
        argv: req.argv.clone(),
        env,
        cwd: req.cwd.clone(),
        tty: req.tty,
        error_file: Some(req.error_file.display().to_string()),
        report: req.report,
        cgroup: req.cgroup.clone(),
        uid: req.uid,
        gid: req.gid,
        level: req.level,
        root: req.root.clone(),
    })
}

async fn run_pipes(req: &ExecRequest, io: ExecIo) -> Result<i32, String> {
    use std::process::Stdio;
    let mut cmd = tokio::process::Command::from(command(req));
    cmd.stdin(if io.stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(if io.stdout.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stderr(if io.stderr.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("starting the exec helper: {e}"))?;
    let moved = Arc::new(AtomicU64::new(0));
    let stdin_task = match (child.stdin.take(), io.stdin) {
        (Some(pipe), Some(rx)) => Some(tokio::spawn(feed_stdin(pipe, rx))),
        _ => None,
    };
    let mut outputs = Vec::new();
    if let (Some(pipe), Some(tx)) = (child.stdout.take(), io.stdout) {
        outputs.push(tokio::spawn(pump_output(pipe, tx, moved.clone())));
    }
    if let (Some(pipe), Some(tx)) = (child.stderr.take(), io.stderr) {
        outputs.push(tokio::spawn(pump_output(pipe, tx, moved.clone())));
    }
    let status = tokio::select! {
        s = child.wait() => s.map_err(|e| e.to_string())?,
        _ = io.cancel.cancelled() => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err("the client went away".into());
        }
    };
    // The process is gone: its stdin no longer matters (pitfall P27).
    if let Some(t) = stdin_task {
        t.abort();
    }
    drain(outputs, &moved, &io.cancel).await;
    Ok(exit_code(status))
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Waits for the output pumps to reach EOF, giving up when nothing has moved for
/// [`DRAIN_IDLE`].
async fn drain(
    mut outputs: Vec<tokio::task::JoinHandle<()>>,
    moved: &AtomicU64,
    cancel: &CancellationToken,
) {
    let mut last = moved.load(Ordering::Relaxed);
    loop {
        let all = futures_util::future::join_all(outputs.iter_mut());
        tokio::select! {
            _ = all => return,
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(DRAIN_IDLE) => {
                let now = moved.load(Ordering::Relaxed);
                if now == last {
                    break;
                }
                last = now;
            }
        }
    }
    for t in outputs {
        t.abort();
    }
}

async fn feed_stdin<W: AsyncWrite + Unpin>(mut pipe: W, mut rx: mpsc::Receiver<Bytes>) {
    while let Some(chunk) = rx.recv().await {
        if pipe.write_all(&chunk).await.is_err() {
            // The process closed its stdin; keep draining so the client is not blocked.
            while rx.recv().await.is_some() {}
            return;
        }
    }
    let _ = pipe.shutdown().await;
}

async fn pump_output<R: AsyncRead + Unpin>(
    mut pipe: R,
    tx: mpsc::Sender<Bytes>,
    moved: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                moved.fetch_add(n as u64, Ordering::Relaxed);
                if tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn run_tty(req: &ExecRequest, mut io: ExecIo) -> Result<i32, String> {
    use portable_pty::{CommandBuilder, PtySize, native_pty_system};
    use std::os::fd::{AsRawFd, BorrowedFd};
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 24,
            cols: 80,
            pixel_width: 0,
            pixel_height: 0,
        })
        .map_err(|e| format!("allocating a terminal: {e}"))?;
    let std_cmd = command(req);
    let mut builder = CommandBuilder::new(std_cmd.get_program());
    builder.args(std_cmd.get_args());
    let mut child = pair
        .slave
        .spawn_command(builder)
        .map_err(|e| format!("starting the exec helper on a terminal: {e}"))?;
    drop(pair.slave);
    let mut killer = child.clone_killer();
    let master = pair.master;
    let raw = master
        .as_raw_fd()
        .ok_or_else(|| "terminal has no file descriptor".to_string())?;
    // Two non-blocking duplicates of the master side drive tokio I/O; the original
    // stays with portable-pty for resizing.
    // SAFETY: `raw` is open for as long as `master` lives, which outlives this call.
    let borrowed = unsafe { BorrowedFd::borrow_raw(raw) };
    let read_fd = borrowed
        .try_clone_to_owned()
        .map_err(|e| format!("dup terminal: {e}"))?;
    let write_fd = borrowed
        .try_clone_to_owned()
        .map_err(|e| format!("dup terminal: {e}"))?;
    set_nonblocking(read_fd.as_raw_fd())?;
    let reader = tokio::net::unix::pipe::Receiver::from_owned_fd_unchecked(read_fd)
        .map_err(|e| format!("terminal reader: {e}"))?;
    let writer = tokio::net::unix::pipe::Sender::from_owned_fd_unchecked(write_fd)
        .map_err(|e| format!("terminal writer: {e}"))?;

    let moved = Arc::new(AtomicU64::new(0));
    let mut outputs = Vec::new();
    if let Some(tx) = io.stdout.take() {
        outputs.push(tokio::spawn(pump_output(reader, tx, moved.clone())));
    }
    let stdin_task = io
        .stdin
        .take()
        .map(|rx| tokio::spawn(feed_terminal(writer, rx)));
    let master = Arc::new(std::sync::Mutex::new(master));
    let resize_task = io.resize.take().map(|mut rx| {
        let master = master.clone();
        tokio::spawn(async move {
            while let Some(size) = rx.recv().await {
                if size.width == 0 || size.height == 0 {
                    continue;
                }
                let m = master.lock().unwrap_or_else(|e| e.into_inner());
                let _ = m.resize(PtySize {
                    rows: size.height,
                    cols: size.width,
                    pixel_width: 0,
                    pixel_height: 0,
                });
            }
        })
    });
    let (exit_tx, exit_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("exec-tty-wait".into())
        .spawn(move || {
            let _ = exit_tx.send(child.wait());
        })
        .map_err(|e| e.to_string())?;
    let status = tokio::select! {
        s = exit_rx => s.map_err(|_| "lost the exec process".to_string())?.map_err(|e| e.to_string())?,
        _ = io.cancel.cancelled() => {
            let _ = killer.kill();
            return Err("the client went away".into());
        }
    };
    if let Some(t) = stdin_task {
        t.abort();
    }
    if let Some(t) = resize_task {
        t.abort();
    }
    drain(outputs, &moved, &io.cancel).await;
    drop(master);
    Ok(status.exit_code() as i32)
}

/// Writes client bytes to the terminal as they are (Ctrl-C is byte 0x03; the line
/// discipline turns it into SIGINT for the foreground process). Stdin EOF on a
/// terminal is delivered as the EOF character, as a terminal user would type it.
async fn feed_terminal(mut w: tokio::net::unix::pipe::Sender, mut rx: mpsc::Receiver<Bytes>) {
    while let Some(chunk) = rx.recv().await {
        if w.write_all(&chunk).await.is_err() {
            return;
        }
    }
    let _ = w.write_all(&[0x04]).await;
}

fn set_nonblocking(fd: std::os::fd::RawFd) -> Result<(), String> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    // SAFETY: fd is a valid descriptor we own for the duration of the call.
    let bfd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let flags = fcntl(bfd, FcntlArg::F_GETFL).map_err(|e| e.to_string())?;
    fcntl(
        bfd,
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .map_err(|e| e.to_string())?;
    Ok(())
}
