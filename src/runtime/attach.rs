//! What `kubectl attach` and `kubectl run -it` connect to: a running container's own
//! stdio, kept by the runtime. Output is fanned out to every attached client (and the
//! CRI log, by the caller); stdin (when the container was created with `stdin: true`)
//! and the terminal (with `tty: true`) stay open in the runtime for as long as the
//! container runs.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::stream::remotecommand::TerminalSize;

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    /// Standard output (and everything, with a tty).
    Stdout,
    /// Standard error.
    Stderr,
}

/// One container's attachable stdio.
pub struct AttachHub {
    output: broadcast::Sender<(OutputStream, Bytes)>,
    stdin: Mutex<Option<Box<dyn Write + Send>>>,
    terminal: Option<OwnedFd>,
    /// Close the container's stdin after the first attach session ends.
    pub stdin_once: bool,
    /// Cancelled when the container's process exited.
    pub exited: CancellationToken,
    /// The container has a terminal.
    pub tty: bool,
}

impl AttachHub {
    /// A hub; `stdin` writes to the container, `terminal` is the pty master (resize).
    pub fn new(
        stdin: Option<Box<dyn Write + Send>>,
        terminal: Option<OwnedFd>,
        stdin_once: bool,
    ) -> AttachHub {
        let (output, _) = broadcast::channel(1024);
        AttachHub {
            output,
            tty: terminal.is_some(),
            stdin: Mutex::new(stdin),
            terminal,
            stdin_once,
            exited: CancellationToken::new(),
        }
    }

    /// Called by the output pumps for every chunk (clients that are not attached, or
    /// too slow, simply miss it, as with a real terminal).
    pub fn publish(&self, stream: OutputStream, data: &[u8]) {
        if self.output.receiver_count() > 0 {
            let _ = self.output.send((stream, Bytes::copy_from_slice(data)));
        }
    }

    /// A receiver of everything written from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<(OutputStream, Bytes)> {
        self.output.subscribe()
    }

    /// Whether the container accepts input.
    pub fn has_stdin(&self) -> bool {
        self.stdin.lock().map(|s| s.is_some()).unwrap_or(false)
    }

    /// Writes client input to the container (blocking; call from a blocking context).
    pub fn write_stdin(&self, data: &[u8]) -> std::io::Result<()> {
        let mut guard = self.stdin.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_mut() {
            Some(w) => {
                w.write_all(data)?;
                w.flush()
            }
            None => Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe)),
        }
    }

    /// Closes the container's stdin (stdinOnce, or the container went away).
    pub fn close_stdin(&self) {
        let mut guard = self.stdin.lock().unwrap_or_else(|e| e.into_inner());
        if self.tty {
            // On a terminal, end of input is the EOF character.
            if let Some(w) = guard.as_mut() {
                let _ = w.write_all(&[0x04]);
            }
        }
        *guard = None;
    }

    /// Applies a terminal size event.
    pub fn resize(&self, size: TerminalSize) {
        if let Some(fd) = &self.terminal {
            set_window_size(fd.as_raw_fd(), size);
        }
    }

    /// Marks the container as exited; attached sessions end.
    pub fn mark_exited(&self) {
        self.exited.cancel();
    }
}

/// Sets a terminal's window size (TIOCSWINSZ), which also signals SIGWINCH to its
/// foreground process group.
pub fn set_window_size(fd: std::os::fd::RawFd, size: TerminalSize) {
    if size.width == 0 || size.height == 0 {
        return;
    }
    let ws = libc::winsize {
        ws_row: size.height,
        ws_col: size.width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize struct we own from a valid pointer.
    unsafe {
        libc::ioctl(fd, libc::TIOCSWINSZ, &ws);
    }
}
