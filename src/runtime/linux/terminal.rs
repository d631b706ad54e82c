//! The container's own terminal. A pty allocated by the runtime comes from the host's
//! devpts, which a container (with its own `devpts` instance) cannot name: `tty` says
//! "not a tty" and programs that look up their terminal by name fail. So, as runc does
//! with its console socket, the helper allocates a second pty from the container's
//! `/dev/ptmx` for the process and relays bytes, window size and hang-up between the
//! runtime's terminal (its stdin/stdout) and that one. Runs in the single-threaded
//! helpers only.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// How long the container's terminal may keep producing output after its process
/// exited before the relay stops waiting for it (a background child holding the
/// terminal must not keep the session open).
const DRAIN_IDLE: Duration = Duration::from_millis(200);

/// A pty pair from the `/dev/ptmx` visible to the calling process (after chroot or
/// pivot_root: the container's).
pub struct ContainerPty {
    /// The side the relay reads and writes.
    pub master: OwnedFd,
    /// The side the process gets as stdin/stdout/stderr and controlling terminal.
    pub slave: OwnedFd,
}

/// Allocates a pty from `/dev/ptmx` (the container's, once inside its root).
pub fn open_container_pty() -> Result<ContainerPty, String> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|e| format!("opening the container's /dev/ptmx: {e}"))?;
    grantpt(&master).map_err(|e| format!("grantpt: {e}"))?;
    unlockpt(&master).map_err(|e| format!("unlockpt: {e}"))?;
    let name = ptsname_r(&master).map_err(|e| format!("ptsname: {e}"))?;
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("opening {name}: {e}"))?;
    // SAFETY: a master pty is a plain file descriptor; `into_raw_fd` hands over ownership.
    let master = unsafe {
        <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(
            master,
        ))
    };
    // The process may read its size before the relay runs: start with the outer
    // terminal's size (when this helper's stdin is one), not 0x0.
    copy_window_size(0, master.as_raw_fd());
    Ok(ContainerPty { master, slave })
}

/// In the process about to exec: makes `slave` its stdin/stdout/stderr and its
/// controlling terminal in a new session.
pub fn adopt_as_controlling_terminal(slave: OwnedFd) -> Result<(), String> {
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    for target in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors of this (about to exec) process.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } == -1 {
            return Err(format!("dup2: {}", std::io::Error::last_os_error()));
        }
    }
    drop(slave);
    // SAFETY: TIOCSCTTY on fd 0 with an integer argument.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } == -1 {
        return Err(format!(
            "making the terminal the controlling terminal: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Copies the window size of `from` to `to` (a resize reaches the process as SIGWINCH).
fn copy_window_size(from: RawFd, to: RawFd) {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ with a valid winsize pointer.
    unsafe {
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &ws);
        }
    }
}

fn set_nonblocking(fd: BorrowedFd<'_>) {
    if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL) {
        let _ = fcntl(
            fd,
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
        );
    }
}

/// One direction of the relay: bytes read from `from`, not yet written to `to`.
struct Direction {
    pending: Vec<u8>,
    /// `from` reached EOF or hung up.
    closed: bool,
}

impl Direction {
    fn new() -> Self {
        Self {
            pending: Vec::new(),
            closed: false,
        }
    }

    /// Reads what is there (when nothing is pending); returns false at EOF/hang-up.
    fn fill(&mut self, from: RawFd) -> bool {
        if !self.pending.is_empty() || self.closed {
            return true;
        }
        let mut buf = [0u8; 16 * 1024];
        match nix::unistd::read(unsafe { BorrowedFd::borrow_raw(from) }, &mut buf) {
            Ok(0) => self.closed = true,
            Ok(n) => self.pending.extend_from_slice(&buf[..n]),
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            // EIO: the other side of a pty is closed.
            Err(_) => self.closed = true,
        }
        !self.closed
    }

    /// Writes what is pending; returns false when `to` is gone.
    fn flush(&mut self, to: RawFd) -> bool {
        while !self.pending.is_empty() {
            match nix::unistd::write(unsafe { BorrowedFd::borrow_raw(to) }, &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(Errno::EAGAIN) => return true,
                Err(Errno::EINTR) => continue,
                Err(_) => {
                    self.pending.clear();
                    return false;
                }
            }
        }
        true
    }
}

/// The descriptors the relay waits on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    OuterIn,
    Inner,
    OuterOut,
    Signals,
}

fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Relays between the runtime's terminal (this process's stdin and stdout) and the
/// container's pty `master` until `child` has exited and its output is drained;
/// returns the child's exit code (128 + signal when killed).
pub fn relay(master: OwnedFd, child: Pid) -> i32 {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGWINCH);
    mask.add(Signal::SIGCHLD);
    let _ = mask.thread_block();
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).ok();
    // The runtime's side hangs up when the client goes away; the process decides
    // what to do about that through its own terminal, not through this relay.
    // SAFETY: ignoring SIGHUP installs no handler.
    unsafe {
        let _ = nix::sys::signal::signal(Signal::SIGHUP, nix::sys::signal::SigHandler::SigIgn);
    }
    let outer_in: RawFd = 0;
    let outer_out: RawFd = 1;
    let inner = master.as_raw_fd();
    // The container's pty does all line discipline (echo, Ctrl-C, CR/LF); the outer
    // one only carries bytes.
    // SAFETY: fd 0 stays open for the life of this process.
    let stdin = unsafe { BorrowedFd::borrow_raw(outer_in) };
    if let Ok(mut t) = tcgetattr(stdin) {
        cfmakeraw(&mut t);
        let _ = tcsetattr(stdin, SetArg::TCSANOW, &t);
    }
    copy_window_size(outer_in, inner);
    set_nonblocking(stdin);
    set_nonblocking(master.as_fd());

    let mut to_inner = Direction::new();
    let mut to_outer = Direction::new();
    let mut code: Option<i32> = None;
    let mut exited_at: Option<Instant> = None;
    loop {
        if code.is_none()
            && let Ok(s) = waitpid(child, Some(WaitPidFlag::WNOHANG))
        {
            code = exit_code(s);
            if code.is_some() {
                exited_at = Some(Instant::now());
            }
        }
        if let Some(at) = exited_at
            && (to_outer.closed || at.elapsed() > DRAIN_IDLE)
        {
            let _ = to_outer.flush(outer_out);
            break;
        }
        if code.is_none() && to_outer.closed {
            // Nothing holds the container's terminal any more: only the exit is left.
            return wait_blocking(child);
        }
        // SAFETY: the descriptors stay open for the duration of the poll.
        let (b_in, b_out, b_inner) = unsafe {
            (
                BorrowedFd::borrow_raw(outer_in),
                BorrowedFd::borrow_raw(outer_out),
                BorrowedFd::borrow_raw(inner),
            )
        };
        let read_outer = !to_inner.closed && to_inner.pending.is_empty();
        let read_inner = !to_outer.closed && to_outer.pending.is_empty();
        let mut inner_flags = PollFlags::empty();
        if read_inner {
            inner_flags |= PollFlags::POLLIN;
        }
        if !to_inner.pending.is_empty() {
            inner_flags |= PollFlags::POLLOUT;
        }
        // Only descriptors with something to wait for are polled: a hung-up terminal
        // reports POLLHUP whatever is asked, which would spin this loop.
        let mut wanted: Vec<(Slot, PollFd<'_>)> = Vec::with_capacity(4);
        if read_outer {
            wanted.push((Slot::OuterIn, PollFd::new(b_in, PollFlags::POLLIN)));
        }
        if !inner_flags.is_empty() {
            wanted.push((Slot::Inner, PollFd::new(b_inner, inner_flags)));
        }
        if !to_outer.pending.is_empty() {
            wanted.push((Slot::OuterOut, PollFd::new(b_out, PollFlags::POLLOUT)));
        }
        if let Some(s) = signals.as_ref() {
            wanted.push((Slot::Signals, PollFd::new(s.as_fd(), PollFlags::POLLIN)));
        }
        let timeout = if exited_at.is_some() {
            PollTimeout::from(50u16)
        } else {
            PollTimeout::from(1000u16)
        };
        let (slots, mut fds): (Vec<Slot>, Vec<PollFd<'_>>) = wanted.into_iter().unzip();
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => break,
        }
        let ready = |slot: Slot| {
            slots
                .iter()
                .position(|s| *s == slot)
                .and_then(|i| fds[i].revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (r_in, r_inner, r_sig) = (
            ready(Slot::OuterIn),
            ready(Slot::Inner),
            ready(Slot::Signals),
        );
        drop(fds);
        if r_in {
            to_inner.fill(outer_in);
        }
        if !to_inner.pending.is_empty() && !to_inner.flush(inner) {
            to_inner.closed = true;
        }
        if r_inner && read_inner {
            to_outer.fill(inner);
            if exited_at.is_some() && !to_outer.pending.is_empty() {
                exited_at = Some(Instant::now());
            }
        }
        if !to_outer.pending.is_empty() && !to_outer.flush(outer_out) {
            // The runtime's side is gone: keep reading the container's terminal so the
            // process never blocks on output, and drop what it writes.
            to_outer.pending.clear();
        }
        if r_sig && let Some(s) = signals.as_ref() {
            while let Ok(Some(info)) = s.read_signal() {
                if info.ssi_signo == Signal::SIGWINCH as u32 {
                    copy_window_size(outer_in, inner);
                }
            }
        }
    }
    code.unwrap_or_else(|| wait_blocking(child))
}

fn wait_blocking(child: Pid) -> i32 {
    loop {
        match waitpid(child, None) {
            Ok(s) => {
                if let Some(c) = exit_code(s) {
                    return c;
                }
            }
            Err(Errno::EINTR) => continue,
            Err(_) => return 255,
        }
    }
}

/// One end of a socket pair over which the container process hands the master of its
/// terminal to the shim (SCM_RIGHTS), as runc's console socket does.
pub struct ConsoleSocket(OwnedFd);

impl ConsoleSocket {
    /// A connected pair, close-on-exec: (receiving end, sending end).
    pub fn pair() -> Result<(ConsoleSocket, ConsoleSocket), String> {
        use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| format!("console socket pair: {e}"))?;
        Ok((ConsoleSocket(a), ConsoleSocket(b)))
    }

    /// The socket itself, to hand to a helper process.
    pub fn into_fd(self) -> OwnedFd {
        self.0
    }

    /// Adopts a socket this process inherited (a helper's end of a pair).
    ///
    /// # Safety
    /// `fd` must be an open socket that nothing else owns.
    pub unsafe fn from_inherited(fd: RawFd) -> ConsoleSocket {
        use std::os::fd::FromRawFd;
        // SAFETY: the caller guarantees ownership.
        ConsoleSocket(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Sends `fd` to the other end.
    pub fn send(&self, fd: OwnedFd) -> Result<(), String> {
        use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
        let fds = [fd.as_raw_fd()];
        let iov = [std::io::IoSlice::new(b"t")];
        sendmsg::<()>(
            self.0.as_raw_fd(),
            &iov,
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .map_err(|e| format!("sending the terminal to the shim: {e}"))?;
        Ok(())
    }

    /// Waits for a descriptor from the other end; `None` when it closed without one
    /// (the container failed before its terminal existed).
    pub fn receive(self) -> Option<OwnedFd> {
        use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
        use std::os::fd::FromRawFd;
        let mut byte = [0u8; 1];
        let mut iov = [std::io::IoSliceMut::new(&mut byte)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let msg = loop {
            match recvmsg::<()>(
                self.0.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(m) => break m,
                Err(Errno::EINTR) => continue,
                Err(_) => return None,
            }
        };
        for cmsg in msg.cmsgs().ok()? {
            if let ControlMessageOwned::ScmRights(fds) = cmsg
                && let Some(fd) = fds.first()
            {
                // SAFETY: the kernel just installed this descriptor for us.
                return Some(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
        None
    }
}
