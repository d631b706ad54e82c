//! A container's stdio, wired so that the container outlives a crash of rkind, as
//! containerd's shims keep their containers' FIFOs open while containerd restarts.
//!
//! - Without a terminal, stdout and stderr are FIFOs in the container's state
//!   directory. The shim holds them open for reading and writing, so the container never
//!   gets `EPIPE`/`SIGPIPE` while no rkind reads; its output waits in the pipe buffer
//!   (and the container blocks when that is full) until the next rkind opens the FIFOs
//!   again and pumps them into the CRI log.
//! - With a terminal, the shim keeps a copy of the runtime's pty master as its fd 3, so
//!   the terminal does not hang up when rkind dies; the next rkind takes that master back
//!   from the shim with `pidfd_getfd`.
//! - stdin without a terminal stays a plain pipe: a crash of rkind closes it (the
//!   container reads end-of-file), which is recorded as a known limit.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// The shim's descriptor that keeps the terminal's master open.
pub const KEPT_MASTER_FD: i32 = 3;

/// Failures wiring a container's stdio.
#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    /// A FIFO or terminal could not be made or opened.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The terminal of a running container could not be taken back from its shim.
    #[error("taking the terminal back from shim {pid}: {source}")]
    Reclaim {
        /// The shim.
        pid: u32,
        /// Why.
        source: io::Error,
    },
}

/// What the shim gets as its stdio, plus what it must keep open.
pub struct ShimStdio {
    /// The shim's stdin.
    pub stdin: Stdio,
    /// The shim's stdout.
    pub stdout: Stdio,
    /// The shim's stderr.
    pub stderr: Stdio,
    /// Handed to the shim as [`KEPT_MASTER_FD`] (the pty master, with a terminal).
    pub keep: Option<OwnedFd>,
}

/// The runtime's ends of a container's stdio.
#[derive(Default)]
pub struct RuntimeEnds {
    /// Where stdout (everything, with a terminal) is read.
    pub stdout: Option<File>,
    /// Where stderr is read (none with a terminal).
    pub stderr: Option<File>,
    /// The pty master (terminal containers): input, resize.
    pub master: Option<OwnedFd>,
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StdioError + 'a {
    move |source| StdioError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

fn fifo_path(dir: &Path, stream: &str) -> PathBuf {
    dir.join(format!("{stream}.fifo"))
}

/// Makes a new FIFO (replacing one left by an earlier attempt).
fn make_fifo(path: &Path) -> Result<(), StdioError> {
    let _ = std::fs::remove_file(path);
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(|e| io_err("mkfifo", path)(io::Error::from(e)))
}

/// Opens a FIFO for reading without waiting for a writer, then makes reads block.
fn open_reader(path: &Path) -> Result<File, StdioError> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(io_err("open", path))?;
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(f.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK);
    }
    Ok(f)
}

/// Opens a FIFO for reading and writing: what the shim holds, so writes never fail for
/// want of a reader.
fn open_keeper(path: &Path) -> Result<File, StdioError> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err("open", path))
}

/// Wires a new container's stdio in its state directory `dir`. `stdin` pipes are made by
/// the spawn (the writer is then the child's stdin handle).
pub fn create(
    dir: &Path,
    pty: Option<&nix::pty::OpenptyResult>,
    stdin: bool,
) -> Result<(ShimStdio, RuntimeEnds), StdioError> {
    if let Some(p) = pty {
        let slave = |p: &nix::pty::OpenptyResult| -> Result<Stdio, StdioError> {
            Ok(Stdio::from(
                p.slave
                    .try_clone()
                    .map_err(io_err("dup", Path::new("pty")))?,
            ))
        };
        let keep = p
            .master
            .try_clone()
            .map_err(io_err("dup", Path::new("pty")))?;
        return Ok((
            ShimStdio {
                stdin: slave(p)?,
                stdout: slave(p)?,
                stderr: slave(p)?,
                keep: Some(keep),
            },
            RuntimeEnds::default(),
        ));
    }
    let mut shim = Vec::new();
    let mut ends = Vec::new();
    for stream in ["stdout", "stderr"] {
        let path = fifo_path(dir, stream);
        make_fifo(&path)?;
        // The reader first: opening the keeper (read-write) never blocks either way.
        ends.push(open_reader(&path)?);
        shim.push(open_keeper(&path)?);
    }
    let (err_end, out_end) = (ends.pop(), ends.pop());
    let (err_keep, out_keep) = (shim.pop(), shim.pop());
    Ok((
        ShimStdio {
            stdin: if stdin { Stdio::piped() } else { Stdio::null() },
            stdout: out_keep.map(Stdio::from).unwrap_or_else(Stdio::null),
            stderr: err_keep.map(Stdio::from).unwrap_or_else(Stdio::null),
            keep: None,
        },
        RuntimeEnds {
            stdout: out_end,
            stderr: err_end,
            master: None,
        },
    ))
}

/// The runtime's ends of a running container started by an earlier rkind: its FIFOs
/// opened again, or its terminal's master taken back from shim `shim_pid`.
pub fn reopen(dir: &Path, tty: bool, shim_pid: u32) -> Result<RuntimeEnds, StdioError> {
    if tty {
        let master =
            fd_of_process(shim_pid, KEPT_MASTER_FD).map_err(|source| StdioError::Reclaim {
                pid: shim_pid,
                source,
            })?;
        return Ok(RuntimeEnds {
            master: Some(master),
            ..Default::default()
        });
    }
    Ok(RuntimeEnds {
        stdout: Some(open_reader(&fifo_path(dir, "stdout"))?),
        stderr: Some(open_reader(&fifo_path(dir, "stderr"))?),
        master: None,
    })
}

/// A copy of descriptor `fd` of process `pid` (pidfd_getfd, Linux 5.6+; needs the
/// right to ptrace it, which the user who started the shim has).
fn fd_of_process(pid: u32, fd: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscalls; the returned descriptors are owned here.
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0);
        if pidfd < 0 {
            return Err(io::Error::last_os_error());
        }
        let pidfd = OwnedFd::from_raw_fd(pidfd as i32);
        let got = libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0);
        if got < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(got as i32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn fifo_output_survives_its_reader_and_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let (shim, ends) = create(dir.path(), None, false).unwrap();
        drop(shim.stdin);
        // What the container holds: the keeper, read-write.
        let mut keeper = open_keeper(&fifo_path(dir.path(), "stdout")).unwrap();
        drop(shim.stdout);
        drop(ends);
        // No reader but the keeper: the write succeeds (no EPIPE) and waits in the pipe.
        keeper.write_all(b"while rkind was away\n").unwrap();
        let (mut out, _err) = {
            let e = reopen(dir.path(), false, 0).unwrap();
            (e.stdout.unwrap(), e.stderr)
        };
        let mut buf = [0u8; 64];
        let n = out.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"while rkind was away\n");
        drop(keeper);
        drop(shim.stderr);
        assert_eq!(
            out.read(&mut buf).unwrap(),
            0,
            "EOF once every writer is gone"
        );
    }
}
