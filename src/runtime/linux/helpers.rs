//! The re-executed helpers. Everything here runs in a fresh, single-threaded process
//! (rkind's `main` dispatches to it before starting any thread), which is what
//! `unshare`/`setns` of mount and PID namespaces require.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Uid, chdir, fork, pivot_root};
use serde::{Deserialize, Serialize};

use super::isolation::{self, Level};
use super::terminal;
use super::{ContainerSpec, Mount, Rootfs, SandboxSpec};

/// argv[1] of the sandbox holder.
pub const SANDBOX: &str = "__rkind-sandbox";
/// argv[1] of the container shim.
pub const INIT: &str = "__rkind-init";
/// argv[1] of the exec helper.
pub const NSEXEC: &str = "__rkind-nsexec";
/// argv[1] of the network probe helper.
pub const NETPROBE: &str = "__rkind-netprobe";
/// argv[1] of the port-forward dialer (for pods in a user namespace).
pub const DIAL: &str = "__rkind-dial";

/// Marks the trace-report lines in an exec's error file (start errors never begin so).
pub const REPORT_PREFIX: &str = "\u{1e}rkind-report ";

/// What the exec helper runs.
#[derive(Debug, Serialize, Deserialize)]
pub struct ExecSpec {
    /// Target container main process.
    pub pid: u32,
    /// argv.
    pub argv: Vec<String>,
    /// Environment.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: String,
    /// Terminal requested.
    pub tty: bool,
    /// Host file that receives the reason when the command cannot be started (missing
    /// binary, bad cwd), so the runtime can report it as upstream does instead of as
    /// output; `None` prints the reason on stderr (probes, ExecSync).
    #[serde(default)]
    pub error_file: Option<String>,
    /// Also write what a trace shows of the process into `error_file`, as lines that
    /// start with [`REPORT_PREFIX`]: `pid <host pid>` and `ns <type> <inode>` (the
    /// namespaces as the process sees itself inside the container).
    #[serde(default)]
    pub report: bool,
    /// The container's cgroup: the exec'd process counts against its limits.
    #[serde(default)]
    pub cgroup: Option<super::cgroup::ContainerCgroup>,
    /// The container's user and group: an exec'd process runs as the container's
    /// process does (runAsUser/runAsGroup), as with runc exec.
    #[serde(default)]
    pub uid: u32,
    /// See `uid`.
    #[serde(default)]
    pub gid: u32,
    /// The isolation level the container runs at.
    #[serde(default)]
    pub level: Level,
    /// The container's root directory, for when `/proc/<pid>/root` may not be opened
    /// (unprivileged level, the container running as another user, no CAP_SYS_PTRACE).
    #[serde(default)]
    pub root: Option<String>,
}

/// Runs a helper if this process was started as one; returns its exit code.
pub fn maybe_run_helper() -> Option<i32> {
    let mut args = std::env::args_os();
    let _ = args.next();
    let which = args.next()?;
    let arg = args
        .next()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    match which.to_str()? {
        SANDBOX => Some(run_sandbox(&arg)),
        INIT => Some(run_init(Path::new(&arg))),
        NSEXEC => Some(run_nsexec(&arg)),
        NETPROBE => Some(run_netprobe(&arg)),
        DIAL => Some(run_dial(&arg)),
        isolation::PROBE => Some(isolation::run_probe(
            &arg,
            Path::new(&args.next().unwrap_or_default()),
        )),
        _ => None,
    }
}

fn fail(msg: String) -> i32 {
    eprintln!("{msg}");
    1
}

/// Brings the loopback interface of the current network namespace up.
fn loopback_up() -> Result<(), String> {
    // SAFETY: plain socket/ioctl calls on a zeroed ifreq with a NUL-terminated name.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(format!("socket: {}", std::io::Error::last_os_error()));
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        if libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut req) < 0 {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            return Err(format!("SIOCGIFFLAGS lo: {e}"));
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        let r = libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &req);
        let e = std::io::Error::last_os_error();
        libc::close(fd);
        if r < 0 {
            return Err(format!("SIOCSIFFLAGS lo: {e}"));
        }
    }
    Ok(())
}

fn run_sandbox(json: &str) -> i32 {
    let spec: SandboxSpec = match serde_json::from_str(json) {
        Ok(s) => s,
        Err(e) => return fail(format!("bad sandbox spec: {e}")),
    };
    match spec.isolation {
        Level::Namespaces => {}
        Level::Rootless => {
            if let Err(e) = isolation::enter_user_namespace(spec.subids.is_some()) {
                return fail(e);
            }
        }
        Level::Unprivileged => return hold(),
    }
    let mut flags = CloneFlags::CLONE_NEWUTS;
    if !spec.host_ipc {
        flags |= CloneFlags::CLONE_NEWIPC;
    }
    if !spec.host_network {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    if spec.host_network {
        // hostNetwork pods keep the host's UTS namespace too (their hostname is the node's).
        flags.remove(CloneFlags::CLONE_NEWUTS);
    }
    if let Err(e) = unshare(flags) {
        return fail(format!("unshare({flags:?}): {e}"));
    }
    // Everything that can fail comes before the pod's PID 1 exists, so that a failure
    // leaves no process behind.
    if !spec.host_network {
        if let Err(e) = nix::unistd::sethostname(&spec.hostname) {
            return fail(format!("sethostname({}): {e}", spec.hostname));
        }
        if let Err(e) = loopback_up() {
            return fail(format!("bringing lo up: {e}"));
        }
    }
    if spec.share_pid && !spec.host_pid {
        // The pod's shared PID namespace: its PID 1 is a child of the holder that sleeps
        // and reaps; containers join it (the holder's `pid_for_children`).
        if let Err(e) = unshare(CloneFlags::CLONE_NEWPID) {
            return fail(format!("unshare(CLONE_NEWPID): {e}"));
        }
        // The holder keeps the write end for its whole life: the child sees the pipe hang
        // up exactly when the holder is gone (it cannot see its parent's pid from inside
        // the new PID namespace, where getppid() is 0).
        let (alive_r, alive_w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
            Ok(p) => p,
            Err(e) => return fail(format!("pipe: {e}")),
        };
        // SAFETY: single-threaded helper.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                // SAFETY: plain prctl call; the pod's PID 1 goes with its holder. It
                // keeps none of the holder's stdio (the runtime reads "ready" there
                // until every writer is gone), and ends at once if the holder already
                // did.
                unsafe {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                    for fd in 0..3 {
                        libc::dup2(null, fd);
                    }
                    if null > 2 {
                        libc::close(null);
                    }
                }
                drop(alive_w);
                let mut fds = [nix::poll::PollFd::new(
                    std::os::fd::AsFd::as_fd(&alive_r),
                    nix::poll::PollFlags::POLLIN,
                )];
                let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO);
                if fds[0].revents().is_some_and(|r| !r.is_empty()) {
                    // SAFETY: leaving the forked child.
                    unsafe { libc::_exit(0) };
                }
                loop {
                    if let Err(nix::errno::Errno::ECHILD) = waitpid(None, None) {
                        std::thread::sleep(std::time::Duration::from_secs(1));
                    }
                }
            }
            Ok(ForkResult::Parent { .. }) => {
                drop(alive_r);
                // Held until the holder ends.
                std::mem::forget(alive_w);
            }
            Err(e) => return fail(format!("fork: {e}")),
        }
    }
    hold()
}

/// Says "ready" and sleeps until killed: the holder's namespaces live as long as it does.
fn hold() -> i32 {
    println!("ready");
    let _ = std::io::stdout().flush();
    // SAFETY: closing our copies of stdout/stderr; the holder writes nothing more.
    unsafe {
        libc::close(1);
        libc::close(2);
    }
    loop {
        nix::unistd::pause();
    }
}

const DEFAULT_CAPS: &[u32] = &[0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31];

fn cap_number(name: &str) -> Option<u32> {
    let n = name.trim_start_matches("CAP_").to_ascii_uppercase();
    let all = [
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ];
    all.iter().position(|c| *c == n).map(|p| p as u32)
}

pub(super) fn mnt(
    src: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), String> {
    mount(src, target, fstype, flags, data).map_err(|e| {
        format!(
            "mount {:?} on {} ({:?}): {e}",
            src.unwrap_or(""),
            target.display(),
            fstype.unwrap_or("")
        )
    })
}

/// A fresh `/proc` at `dir` (created), for a process in a new PID namespace.
pub(super) fn mount_proc(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    mnt(
        Some("proc"),
        dir,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
    )
}

/// A private devpts instance at `dir` (created): the container's own terminals.
pub(super) fn mount_devpts(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    mnt(
        Some("devpts"),
        dir,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )
}

/// How read-only a bind mount must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadOnly {
    /// Writable.
    No,
    /// Read-only or fail (a read-only volume).
    Required,
    /// Read-only where the kernel allows it (a view of the host, whose locked mounts a
    /// user namespace may not remount).
    BestEffort,
}

/// Binds `source` (recursively) on `target`, read-only as asked.
fn bind(source: &Path, target: &Path, read_only: ReadOnly) -> Result<(), String> {
    mnt(
        Some(&source.display().to_string()),
        target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    if read_only == ReadOnly::No {
        return Ok(());
    }
    let remounted = mnt(
        None,
        target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None,
    );
    match read_only {
        ReadOnly::Required => remounted,
        _ => Ok(()),
    }
}

fn ensure_target(source: &Path, target: &Path) -> Result<(), String> {
    if source.is_dir() {
        std::fs::create_dir_all(target).map_err(|e| format!("mkdir {}: {e}", target.display()))
    } else {
        if let Some(p) = target.parent() {
            std::fs::create_dir_all(p).map_err(|e| format!("mkdir {}: {e}", p.display()))?;
        }
        if !target.exists() {
            File::create(target).map_err(|e| format!("create {}: {e}", target.display()))?;
        }
        Ok(())
    }
}

/// The host path of `path` inside the container root `root`, with every symlink on the
/// way resolved as the container would see it (an absolute target starts again at
/// `root`, `..` never climbs above it), as runc's securejoin does: a mount at
/// `/var/run/secrets/...` where the image has `/var/run -> /run` lands on the root's
/// `/run`, never on the host's.
fn resolve_in_root(root: &Path, path: &Path) -> PathBuf {
    use std::path::Component;
    // The components still to walk, last first.
    let mut todo: Vec<std::ffi::OsString> = path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut inside = PathBuf::new();
    let mut links = 0;
    while let Some(part) = todo.pop() {
        if part == ".." {
            inside.pop();
            continue;
        }
        let candidate = inside.join(&part);
        match std::fs::read_link(root.join(&candidate)) {
            Ok(target) if links < 40 => {
                links += 1;
                if target.is_absolute() {
                    inside = PathBuf::new();
                }
                todo.extend(target.components().rev().filter_map(|c| match c {
                    Component::Normal(n) => Some(n.to_os_string()),
                    Component::ParentDir => Some("..".into()),
                    _ => None,
                }));
            }
            _ => inside = candidate,
        }
    }
    root.join(inside)
}

/// Builds the container's root filesystem under `root` and switches into it.
fn setup_root(spec: &ContainerSpec) -> Result<(), String> {
    let root = spec.state_dir.join("rootfs");
    let rw = spec.state_dir.join("rw");
    for d in [&root, &rw] {
        std::fs::create_dir_all(d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
    }
    // The writable layer lives on a private tmpfs: per container, and never on a
    // filesystem that overlaps the lower layers.
    mnt(
        Some("tmpfs"),
        &rw,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("mode=0755"),
    )?;
    if spec.isolation.overlay
        && matches!(spec.rootfs, Rootfs::Host)
        && spec.isolation.level == Level::Rootless
    {
        host_root_per_directory(&root, &rw)?;
    } else if spec.isolation.overlay {
        let lower = match &spec.rootfs {
            Rootfs::Host => "/".to_string(),
            Rootfs::Layers { lower } => lower
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(":"),
        };
        overlay(&lower, &rw, &root)?;
    } else {
        copied_root(&spec.rootfs, &root)?;
    }
    // Before the volumes, so that a volume the pod asks for explicitly still appears.
    mask_paths(&root, &spec.masked_paths)?;
    for m in &spec.mounts {
        let Mount::Bind {
            source,
            destination,
            read_only,
        } = m;
        let target = resolve_in_root(&root, destination);
        ensure_target(source, &target)?;
        bind(
            source,
            &target,
            if *read_only {
                ReadOnly::Required
            } else {
                ReadOnly::No
            },
        )?;
    }
    mount_proc(&root.join("proc"))?;
    let dev = root.join("dev");
    std::fs::create_dir_all(&dev).map_err(|e| format!("mkdir dev: {e}"))?;
    mnt(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID,
        Some("mode=755,size=65536k"),
    )?;
    for node in ["null", "zero", "full", "random", "urandom", "tty"] {
        let target = dev.join(node);
        File::create(&target).map_err(|e| format!("create {}: {e}", target.display()))?;
        mnt(
            Some(&format!("/dev/{node}")),
            &target,
            None,
            MsFlags::MS_BIND,
            None,
        )?;
    }
    mount_devpts(&dev.join("pts"))?;
    let _ = std::os::unix::fs::symlink("pts/ptmx", dev.join("ptmx"));
    let shm = dev.join("shm");
    std::fs::create_dir_all(&shm).map_err(|e| format!("mkdir shm: {e}"))?;
    mnt(
        Some("shm"),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    )?;
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let _ = std::os::unix::fs::symlink(target, dev.join(name));
    }
    let sys = root.join("sys");
    std::fs::create_dir_all(&sys).map_err(|e| format!("mkdir sys: {e}"))?;
    let ro = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if mnt(Some("sysfs"), &sys, Some("sysfs"), ro, None).is_err() {
        bind(Path::new("/sys"), &sys, ReadOnly::BestEffort)?;
    }
    chdir(&root).map_err(|e| format!("chdir {}: {e}", root.display()))?;
    pivot_root(".", ".").map_err(|e| format!("pivot_root: {e}"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| format!("unmount old root: {e}"))?;
    chdir("/").map_err(|e| format!("chdir /: {e}"))?;
    Ok(())
}

/// Hides `paths` (host paths) inside the container root `root`: a directory under an
/// empty read-only tmpfs, a file under /dev/null. Paths the root does not show (an image
/// root, a private /tmp) need nothing.
fn mask_paths(root: &Path, paths: &[PathBuf]) -> Result<(), String> {
    for path in paths {
        let target = root.join(path.strip_prefix("/").unwrap_or(path));
        let Ok(meta) = std::fs::metadata(&target) else {
            continue;
        };
        if meta.is_dir() {
            mnt(
                Some("tmpfs"),
                &target,
                Some("tmpfs"),
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some("mode=0755,size=4k"),
            )
            .map_err(|e| format!("hiding {}: {e}", path.display()))?;
        } else {
            bind(Path::new("/dev/null"), &target, ReadOnly::BestEffort)
                .map_err(|e| format!("hiding {}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// The host image in a user namespace: the host's `/` cannot be an overlay lower layer
/// there (its submounts are locked to it), so the root is a tmpfs with one overlay per
/// top-level directory (writes go to the container's upper layer), a read-only bind
/// where a directory has submounts of its own, a private /tmp, and the host's top-level
/// symlinks.
fn host_root_per_directory(root: &Path, rw: &Path) -> Result<(), String> {
    tmpfs_root(root)?;
    let entries = std::fs::read_dir("/").map_err(|e| format!("reading /: {e}"))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if ["proc", "sys", "dev"].iter().any(|n| name == *n) {
            continue;
        }
        let src = entry.path();
        let dst = root.join(&name);
        let Ok(meta) = std::fs::symlink_metadata(&src) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            if let Ok(target) = std::fs::read_link(&src) {
                let _ = std::os::unix::fs::symlink(target, &dst);
            }
            continue;
        }
        if !meta.is_dir() {
            continue;
        }
        std::fs::create_dir(&dst).map_err(|e| format!("mkdir {}: {e}", dst.display()))?;
        if name == "tmp" {
            // A private /tmp, always. An overlay of the host's /tmp works only while no
            // mount of the host lies under it (in a user namespace the kernel refuses a
            // lower layer with locked submounts: clone_private_mount's EINVAL), and the
            // read-only bind it then fell back to broke every pod that writes to /tmp
            // whenever another cluster on the machine had a tmpfs volume mounted there.
            mnt(
                Some("tmpfs"),
                &dst,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some("mode=1777"),
            )?;
            continue;
        }
        if overlay(&src.display().to_string(), &rw.join(&name), &dst).is_err() {
            if name == "run" {
                private_run(root)?;
                continue;
            }
            bind(&src, &dst, ReadOnly::BestEffort)?;
        }
    }
    Ok(())
}

/// An overlay of `lower` (overlayfs's colon-separated list) on `target`, whose writes go
/// to `layer/upper` (with `layer/work`, both created here).
pub(super) fn overlay(lower: &str, layer: &Path, target: &Path) -> Result<(), String> {
    let (upper, work) = (layer.join("upper"), layer.join("work"));
    for d in [&upper, &work] {
        std::fs::create_dir_all(d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
    }
    mnt(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(&format!(
            "lowerdir={lower},upperdir={},workdir={}",
            upper.display(),
            work.display()
        )),
    )
}

/// A mount namespace of this process's own, whose mounts never propagate back.
pub(super) fn private_mount_namespace() -> Result<(), String> {
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
    mnt(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )
}

/// An empty in-memory root directory for a container (gone with its mount namespace).
fn tmpfs_root(root: &Path) -> Result<(), String> {
    mnt(
        Some("tmpfs"),
        root,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("mode=0755"),
    )
}

/// A container root without overlayfs: a private tmpfs holding a copy of the image's
/// layers, or (for the host image, which is too big to copy) the host's root bound
/// read-only with a private `/tmp`.
fn copied_root(rootfs: &Rootfs, root: &Path) -> Result<(), String> {
    match rootfs {
        Rootfs::Layers { lower } => {
            tmpfs_root(root)?;
            copy_layers(lower, root)
        }
        Rootfs::Host => {
            bind(Path::new("/"), root, ReadOnly::BestEffort)?;
            mnt(
                Some("tmpfs"),
                &root.join("tmp"),
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some("mode=1777"),
            )?;
            private_run(root)
        }
    }
}

/// A private, empty `/run` in a root made from the host's read-only: as in an image,
/// and with room for mount targets under it (`/var/run/secrets/...` for the
/// service-account volume, as `/var/run` links to `/run`).
fn private_run(root: &Path) -> Result<(), String> {
    let run = root.join("run");
    if !std::fs::symlink_metadata(&run).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    mnt(
        Some("tmpfs"),
        &run,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755"),
    )
}

/// Copies image layers (top-most first, as overlay takes them) into `dst`, bottom-most
/// first, applying whiteouts (0/0 character devices) as deletions.
pub(super) fn copy_layers(lower: &[PathBuf], dst: &Path) -> Result<(), String> {
    for layer in lower.iter().rev() {
        copy_tree(layer, dst)?;
    }
    Ok(())
}

/// Copies the tree at `src` over `dst` (files, directories, symlinks; modes kept,
/// owners where allowed).
pub(super) fn copy_tree(src: &Path, dst: &Path) -> Result<(), String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    let err = |p: &Path, e: std::io::Error| format!("copying {}: {e}", p.display());
    let meta = std::fs::symlink_metadata(src).map_err(|e| err(src, e))?;
    let ft = meta.file_type();
    let remove = |p: &Path| match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(_) => Ok(()),
    };
    if ft.is_char_device() && meta.rdev() == 0 {
        return remove(dst).map_err(|e| err(dst, e));
    }
    if ft.is_dir() {
        if !std::fs::symlink_metadata(dst).is_ok_and(|m| m.is_dir()) {
            remove(dst).map_err(|e| err(dst, e))?;
            std::fs::create_dir(dst).map_err(|e| err(dst, e))?;
        }
        for entry in std::fs::read_dir(src).map_err(|e| err(src, e))? {
            let entry = entry.map_err(|e| err(src, e))?;
            copy_tree(&entry.path(), &dst.join(entry.file_name()))?;
        }
    } else if ft.is_symlink() {
        let target = std::fs::read_link(src).map_err(|e| err(src, e))?;
        remove(dst).map_err(|e| err(dst, e))?;
        std::os::unix::fs::symlink(target, dst).map_err(|e| err(dst, e))?;
        let _ = std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid()));
        return Ok(());
    } else if ft.is_file() {
        remove(dst).map_err(|e| err(dst, e))?;
        std::fs::copy(src, dst).map_err(|e| err(dst, e))?;
    } else {
        // Devices, fifos and sockets have no place in a copied root.
        return Ok(());
    }
    let _ = std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid()));
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(|e| err(dst, e))
}

/// The unprivileged level's root (no mount namespace, no mounts): a container with an
/// image gets a fresh copy of it with its volumes copied in and is chrooted there (when
/// allowed); the host image runs in the shared root, where each volume appears as a
/// symlink at its mount path (recorded in `host-links` so cleanup removes them).
fn unprivileged_root(spec: &ContainerSpec) -> Result<(), String> {
    match &spec.rootfs {
        Rootfs::Layers { lower } if spec.isolation.chroot => {
            let root = spec.state_dir.join("rootfs");
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir_all(&root).map_err(|e| format!("mkdir {}: {e}", root.display()))?;
            copy_layers(lower, &root)?;
            for m in &spec.mounts {
                let Mount::Bind {
                    source,
                    destination,
                    ..
                } = m;
                let target = resolve_in_root(&root, destination);
                if let Some(p) = target.parent() {
                    std::fs::create_dir_all(p)
                        .map_err(|e| format!("mkdir {}: {e}", p.display()))?;
                }
                copy_tree(source, &target)?;
            }
            for d in ["dev", "proc", "sys", "tmp"] {
                let _ = std::fs::create_dir_all(root.join(d));
            }
            nix::unistd::chroot(&root).map_err(|e| format!("chroot {}: {e}", root.display()))?;
            chdir("/").map_err(|e| format!("chdir /: {e}"))
        }
        _ => {
            let mut links = String::new();
            for m in &spec.mounts {
                let Mount::Bind {
                    source,
                    destination,
                    ..
                } = m;
                // The pod files every container gets: the shared root's own serve.
                let pod_file = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"]
                    .iter()
                    .any(|f| destination == Path::new(f));
                match std::fs::read_link(destination) {
                    Ok(t) if t == *source => continue,
                    _ if pod_file && std::fs::symlink_metadata(destination).is_ok() => continue,
                    _ if std::fs::symlink_metadata(destination).is_ok() => {
                        return Err(format!(
                            "cannot mount volume at {}: the unprivileged isolation level cannot mount, \
                             and that path already exists in the shared root filesystem",
                            destination.display()
                        ));
                    }
                    _ => {}
                }
                if let Some(p) = destination.parent() {
                    std::fs::create_dir_all(p)
                        .map_err(|e| format!("mkdir {}: {e}", p.display()))?;
                }
                std::os::unix::fs::symlink(source, destination)
                    .map_err(|e| format!("linking volume at {}: {e}", destination.display()))?;
                links.push_str(&format!(
                    "{}\t{}\n",
                    destination.display(),
                    source.display()
                ));
            }
            if !links.is_empty() {
                std::fs::write(spec.state_dir.join("host-links"), links)
                    .map_err(|e| format!("recording volume links: {e}"))?;
            }
            Ok(())
        }
    }
}

/// Removes the volume symlinks an unprivileged host-image container made (only those
/// that still point where it made them) and a copied root.
pub(super) fn unprivileged_cleanup(state_dir: &Path) {
    if let Ok(text) = std::fs::read_to_string(state_dir.join("host-links")) {
        for line in text.lines() {
            if let Some((dest, source)) = line.split_once('\t')
                && std::fs::read_link(dest).is_ok_and(|t| t == Path::new(source))
            {
                let _ = std::fs::remove_file(dest);
            }
        }
        let _ = std::fs::remove_file(state_dir.join("host-links"));
    }
}

fn find_in_path(cmd: &str, env: &[String]) -> Option<PathBuf> {
    if cmd.contains('/') {
        return Some(PathBuf::from(cmd));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':').map(|d| Path::new(d).join(cmd)).find(|p| {
        std::fs::metadata(p).is_ok_and(|m| {
            use std::os::unix::fs::PermissionsExt;
            m.is_file() && m.permissions().mode() & 0o111 != 0
        })
    })
}

/// Who the process runs as and with which privileges.
struct Identity<'a> {
    uid: u32,
    gid: u32,
    groups: &'a [u32],
    caps: Option<&'a [String]>,
    no_new_privs: bool,
    /// Where switching users is refused (unprivileged, not root), a request for root
    /// keeps the current user instead of failing.
    root_may_be_self: bool,
}

/// Drops privileges and execs; returns only on failure, with the reason.
fn exec_as(argv: &[String], env: &[String], cwd: &str, id: &Identity<'_>) -> String {
    if argv.is_empty() {
        return "no command specified".into();
    }
    if !cwd.is_empty() {
        let _ = std::fs::create_dir_all(cwd);
        if let Err(e) = chdir(cwd) {
            return format!("chdir to cwd (\"{cwd}\") set in config.json failed: {e}");
        }
    }
    let keep: Vec<u32> = match id.caps {
        Some(list) => list.iter().filter_map(|c| cap_number(c)).collect(),
        None => DEFAULT_CAPS.to_vec(),
    };
    for cap in 0..=40u32 {
        if !keep.contains(&cap) {
            // SAFETY: prctl with integer arguments.
            unsafe {
                libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0);
            }
        }
    }
    let gids: Vec<Gid> = id.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    let refused = |e: nix::errno::Errno| e == nix::errno::Errno::EPERM;
    // In a user namespace that maps one id, setgroups is denied by design.
    if let Err(e) = nix::unistd::setgroups(&gids)
        && !(refused(e) && gids.is_empty())
    {
        return format!("setgroups: {e}");
    }
    let keep_self =
        |wanted: u32, e: nix::errno::Errno| id.root_may_be_self && wanted == 0 && refused(e);
    if let Err(e) = nix::unistd::setgid(Gid::from_raw(id.gid))
        && !keep_self(id.gid, e)
    {
        return format!("setgid {}: {e}{}", id.gid, unmapped_hint(e));
    }
    if let Err(e) = nix::unistd::setuid(Uid::from_raw(id.uid))
        && !keep_self(id.uid, e)
    {
        return format!("setuid {}: {e}{}", id.uid, unmapped_hint(e));
    }
    if id.no_new_privs {
        // SAFETY: prctl with integer arguments.
        unsafe {
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        }
    }
    let Some(prog) = find_in_path(&argv[0], env) else {
        return format!("exec: \"{}\": executable file not found in $PATH", argv[0]);
    };
    let to_c = |s: &str| CString::new(s.as_bytes()).unwrap_or_default();
    let cargs: Vec<CString> = argv.iter().map(|a| to_c(a)).collect();
    let cenv: Vec<CString> = env.iter().map(|e| to_c(e)).collect();
    let err = nix::unistd::execve(&to_c(&prog.display().to_string()), &cargs, &cenv).unwrap_err();
    match err {
        nix::errno::Errno::ENOENT => format!(
            "exec: \"{}\": stat {}: no such file or directory",
            argv[0],
            prog.display()
        ),
        nix::errno::Errno::EACCES => format!("exec: \"{}\": permission denied", argv[0]),
        e => format!("exec: \"{}\": {e}", argv[0]),
    }
}

/// Why an id switch fails in a user namespace that maps only the user's own id.
fn unmapped_hint(e: nix::errno::Errno) -> &'static str {
    if e == nix::errno::Errno::EINVAL {
        " (rootless isolation maps only your own user, as root: other ids do not exist here)"
    } else {
        ""
    }
}

fn exit_code(status: WaitStatus) -> i32 {
    match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
        _ => 255,
    }
}

pub(super) fn wait_child(pid: nix::unistd::Pid) -> i32 {
    loop {
        match waitpid(pid, None) {
            Ok(s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => return exit_code(s),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 255,
        }
    }
}

/// Whether process `pid` is in the same namespace `name` as this one.
pub(super) fn same_namespace(pid: u32, name: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (
        std::fs::metadata(format!("/proc/self/ns/{name}")),
        std::fs::metadata(format!("/proc/{pid}/ns/{name}")),
    ) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Joins the namespaces `kinds` of process `pid`: its user namespace first when it
/// differs (the others belong to it), and only those that differ from ours (setns into
/// one's own namespace needs privileges an unprivileged level does not have).
fn join_namespaces(pid: u32, kinds: &[(&str, CloneFlags)]) -> Result<(), String> {
    let mut fds = Vec::new();
    let user = [("user", CloneFlags::CLONE_NEWUSER)];
    for (name, flag) in user.iter().chain(kinds) {
        if same_namespace(pid, name) {
            continue;
        }
        let path = format!("/proc/{pid}/ns/{name}");
        let f = File::open(&path).map_err(|e| format!("open {path}: {e}"))?;
        fds.push((f, *flag, path));
    }
    for (f, flag, path) in &fds {
        setns(f, *flag).map_err(|e| format!("setns {path}: {e}"))?;
    }
    Ok(())
}

fn run_init(spec_path: &Path) -> i32 {
    let spec: ContainerSpec = match std::fs::read(spec_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
    {
        Some(s) => s,
        None => {
            return fail(format!(
                "cannot read container spec {}",
                spec_path.display()
            ));
        }
    };
    let report_error = |msg: &str| {
        let _ = std::fs::write(spec.state_dir.join("start-error"), msg);
        1
    };
    if spec.tty {
        // The runtime's pty master, kept open here so the terminal outlives a crash of
        // rkind (see runtime::stdio); never inherited by the container.
        // SAFETY: fcntl on an inherited descriptor number.
        unsafe {
            libc::fcntl(
                crate::runtime::stdio::KEPT_MASTER_FD,
                libc::F_SETFD,
                libc::FD_CLOEXEC,
            )
        };
    }
    if let Err(e) = join_namespaces(
        spec.sandbox_pid,
        &[
            ("ipc", CloneFlags::CLONE_NEWIPC),
            ("uts", CloneFlags::CLONE_NEWUTS),
            ("net", CloneFlags::CLONE_NEWNET),
        ],
    ) {
        return report_error(&format!("joining the pod's namespaces: {e}"));
    }
    // A pod-wide PID namespace is the one the holder made for its children.
    if let Some(p) = spec.join_pid_of
        && let Err(e) = join_namespaces(p, &[("pid_for_children", CloneFlags::CLONE_NEWPID)])
    {
        return report_error(&e);
    }
    let unprivileged = spec.isolation.level == Level::Unprivileged;
    if !spec.host_pid
        && !unprivileged
        && spec.join_pid_of.is_none()
        && let Err(e) = unshare(CloneFlags::CLONE_NEWPID)
    {
        return report_error(&format!("unshare(CLONE_NEWPID): {e}"));
    }
    let (r, w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => return report_error(&format!("pipe: {e}")),
    };
    // With a tty the shim relays between the runtime's pty (its stdio, made its
    // controlling terminal so resizes reach it as SIGWINCH) and the container's own,
    // whose master the container process sends back once its devpts exists.
    let console = if spec.tty {
        let _ = nix::unistd::setsid();
        // SAFETY: TIOCSCTTY on fd 0 with an integer argument.
        unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) };
        match terminal::ConsoleSocket::pair() {
            Ok(p) => Some(p),
            Err(e) => return report_error(&e),
        }
    } else {
        None
    };
    // SAFETY: this helper process is single-threaded, so fork is safe.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(r);
            // Into the container's cgroup first (a host path; its limits apply from the
            // first instruction of the container's process on).
            let joined = spec.cgroup.as_ref().map_or(Ok(()), |cg| cg.join_self());
            // The container's own mount namespace (the shim stays in the host's, so that
            // pivot_root does not move the shim's root too).
            let prepared = if unprivileged {
                // No PID namespace to end with the container: its own process group
                // (session) is what the runtime signals and the shim sweeps at exit.
                if !spec.tty {
                    let _ = nix::unistd::setsid();
                }
                // No mounts: the terminal comes from the shared /dev/ptmx, before chroot.
                joined
                    .and_then(|_| match console {
                        Some((_, ref sender)) => terminal::open_container_pty().and_then(|pty| {
                            sender.send(pty.master)?;
                            terminal::adopt_as_controlling_terminal(pty.slave)
                        }),
                        None => Ok(()),
                    })
                    .and_then(|_| unprivileged_root(&spec))
            } else {
                joined
                    .and_then(|_| private_mount_namespace())
                    .and_then(|_| setup_root(&spec))
                    .and_then(|_| match console {
                        Some((_, ref sender)) => terminal::open_container_pty().and_then(|pty| {
                            sender.send(pty.master)?;
                            terminal::adopt_as_controlling_terminal(pty.slave)
                        }),
                        None => Ok(()),
                    })
            };
            let msg = match prepared {
                Ok(()) => exec_as(
                    &spec.args,
                    &spec.env,
                    &spec.cwd,
                    &Identity {
                        uid: spec.uid,
                        gid: spec.gid,
                        groups: &spec.additional_gids,
                        caps: spec.capabilities.as_deref(),
                        no_new_privs: spec.no_new_privs,
                        root_may_be_self: unprivileged,
                    },
                ),
                Err(e) => e,
            };
            let mut w = File::from(w);
            let _ = w.write_all(msg.as_bytes());
            drop(w);
            // SAFETY: leave the forked child without running destructors.
            unsafe { libc::_exit(127) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(w);
            forward_stop_signals(child);
            let master = console.and_then(|(receiver, sender)| {
                drop(sender);
                receiver.receive()
            });
            let _ = std::fs::write(spec.state_dir.join("pid"), child.as_raw().to_string());
            let mut msg = String::new();
            let _ = File::from(r).read_to_string(&mut msg);
            // The container's own mount namespace, taken while its process surely runs.
            let mnt = mount_namespace(child.as_raw() as u32);
            if msg.is_empty() {
                let _ = std::fs::write(spec.state_dir.join("started"), "ok");
            } else {
                let _ = std::fs::write(spec.state_dir.join("start-error"), &msg);
            }
            let code = match master {
                Some(m) => terminal::relay(m, child),
                None => wait_child(child),
            };
            if unprivileged {
                // What ending a PID namespace does: the container's other processes go
                // with its main one.
                let _ = nix::sys::signal::killpg(child, nix::sys::signal::Signal::SIGKILL);
            } else if spec.join_pid_of.is_some() || spec.host_pid {
                // No PID namespace of its own ends with the main process: its other
                // processes are found by its mount namespace, as runc kills a container
                // sharing a PID namespace through its cgroup.
                if let Some(mnt) = mnt {
                    sweep_mount_namespace(mnt);
                }
            }
            let _ = std::fs::write(spec.state_dir.join("exitcode"), code.to_string());
            if !msg.is_empty() {
                return 128;
            }
            code
        }
        Err(e) => report_error(&format!("fork: {e}")),
    }
}

/// The inode of the mount namespace of `pid`.
pub(crate) fn mount_namespace(pid: u32) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok()?;
    link.to_str()?
        .strip_prefix("mnt:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// SIGKILLs every process in the mount namespace `mnt` until none is left (or 5 s
/// passed): the rest of a container after its main process ended.
pub(super) fn sweep_mount_namespace(mnt: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let mut found = false;
        for pid in std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        {
            if mount_namespace(pid) == Some(mnt) && crate::runtime::pid_alive(pid) {
                found = true;
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        if !found || std::time::Instant::now() > deadline {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The container process the shim forwards stop signals to.
static CONTAINER_PID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn forward_signal(sig: libc::c_int) {
    let to = if sig == libc::SIGUSR2 {
        libc::SIGKILL
    } else {
        sig
    };
    // SAFETY: kill is async-signal-safe.
    unsafe { libc::kill(CONTAINER_PID.load(std::sync::atomic::Ordering::Relaxed), to) };
}

/// SIGTERM to the shim reaches the container process as SIGTERM, SIGUSR2 as SIGKILL: the
/// runtime's way to stop a process it may not signal itself (a rootless pod's process
/// running as a subordinate uid), since the shim is root in the pod's user namespace.
fn forward_stop_signals(child: nix::unistd::Pid) {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    CONTAINER_PID.store(child.as_raw(), std::sync::atomic::Ordering::Relaxed);
    let action = SigAction::new(
        SigHandler::Handler(forward_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGTERM, Signal::SIGUSR2] {
        // SAFETY: the handler only calls kill.
        unsafe {
            let _ = sigaction(sig, &action);
        }
    }
}

fn run_nsexec(json: &str) -> i32 {
    let spec: ExecSpec = match serde_json::from_str(json) {
        Ok(s) => s,
        Err(e) => return fail(format!("bad exec spec: {e}")),
    };
    let root = match File::open(format!("/proc/{}/root", spec.pid)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && spec.root.is_some() => {
            match File::open(spec.root.as_deref().unwrap_or("/")) {
                Ok(f) => f,
                Err(e) => return fail(format!("the container's root: {e}")),
            }
        }
        Err(e) => return fail(format!("container process {} is gone: {e}", spec.pid)),
    };
    // Opened before entering the container (it is a host path); close-on-exec, so it stays empty
    // when the command starts.
    let mut error_file = spec.error_file.as_ref().and_then(|p| {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(p)
            .ok()
    });
    if let Some(cg) = &spec.cgroup
        && let Err(e) = cg.join_self()
    {
        return fail(e);
    }
    // Nothing to join at the unprivileged level (and the namespaces of a container
    // running as another user may not even be looked at).
    if spec.level != Level::Unprivileged
        && let Err(e) = join_namespaces(
            spec.pid,
            &[
                ("ipc", CloneFlags::CLONE_NEWIPC),
                ("uts", CloneFlags::CLONE_NEWUTS),
                ("net", CloneFlags::CLONE_NEWNET),
                ("pid", CloneFlags::CLONE_NEWPID),
                ("mnt", CloneFlags::CLONE_NEWNS),
            ],
        )
    {
        return fail(e);
    }
    let unprivileged = spec.level == Level::Unprivileged;
    // Unprivileged containers have no devpts of their own: the shared one, opened
    // before entering their root.
    let early_pty = if spec.tty && unprivileged {
        match terminal::open_container_pty() {
            Ok(p) => Some(p),
            Err(e) => return fail(e),
        }
    } else {
        None
    };
    let shared_root = unprivileged && {
        use std::os::unix::fs::MetadataExt;
        match (root.metadata(), std::fs::metadata("/")) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    };
    if !shared_root {
        if let Err(e) = nix::unistd::fchdir(&root) {
            return fail(format!("fchdir to the container root: {e}"));
        }
        if let Err(e) = nix::unistd::chroot(".") {
            return fail(format!("chroot: {e}"));
        }
    }
    // A terminal from the container's own devpts, so the command can name it.
    let pty = if early_pty.is_some() {
        early_pty
    } else if spec.tty {
        match terminal::open_container_pty() {
            Ok(p) => Some(p),
            Err(e) => return fail(e),
        }
    } else {
        None
    };
    // SAFETY: single-threaded helper; the pid namespace join applies to children only.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            // When the runtime kills this helper (the client went away), the command
            // goes with it.
            // SAFETY: plain prctl call.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
            if spec.report
                && let Some(f) = error_file.as_mut()
            {
                report_namespaces(f);
            }
            let adopted = match pty {
                Some(p) => {
                    drop(p.master);
                    terminal::adopt_as_controlling_terminal(p.slave)
                }
                None => Ok(()),
            };
            let msg = adopted.err().unwrap_or_else(|| {
                exec_as(
                    &spec.argv,
                    &spec.env,
                    &spec.cwd,
                    &Identity {
                        uid: spec.uid,
                        gid: spec.gid,
                        groups: &[],
                        caps: None,
                        no_new_privs: true,
                        root_may_be_self: unprivileged,
                    },
                )
            });
            match error_file.as_mut() {
                Some(f) => {
                    let _ = f.write_all(msg.as_bytes());
                }
                None => eprintln!("{msg}"),
            }
            // SAFETY: leave the forked child without running destructors.
            unsafe { libc::_exit(127) }
        }
        Ok(ForkResult::Parent { child }) => {
            if spec.report
                && let Some(f) = error_file.as_mut()
            {
                // One write: the child may be writing its lines to the same file.
                let line = format!("{REPORT_PREFIX}pid {}\n", child.as_raw());
                let _ = f.write_all(line.as_bytes());
            }
            drop(error_file);
            match pty {
                Some(p) => {
                    drop(p.slave);
                    terminal::relay(p.master, child)
                }
                None => wait_child(child),
            }
        }
        Err(e) => fail(format!("fork: {e}")),
    }
}

/// Writes the namespaces this process is in (`ns <type> <inode>` lines) for a trace.
fn report_namespaces(f: &mut File) {
    use std::os::unix::fs::MetadataExt;
    let mut out = String::new();
    for ns in ["pid", "mnt", "net", "ipc", "uts"] {
        if let Ok(m) = std::fs::metadata(format!("/proc/self/ns/{ns}")) {
            out.push_str(&format!("{REPORT_PREFIX}ns {ns} {}\n", m.ino()));
        }
    }
    let _ = f.write_all(out.as_bytes());
}

/// What the port-forward dialer connects to.
#[derive(Debug, Serialize, Deserialize)]
pub struct Dial {
    /// A process in the pod (its namespaces are entered).
    pub pid: u32,
    /// Port on the pod's loopback.
    pub port: u16,
}

/// Joins the pod's user and network namespaces, dials, and sends the socket back over
/// fd 3; the reason for a failure goes to stderr.
fn run_dial(json: &str) -> i32 {
    let spec: Dial = match serde_json::from_str(json) {
        Ok(s) => s,
        Err(e) => return fail(format!("bad dial spec: {e}")),
    };
    // SAFETY: fd 3 is the socket the runtime handed us (see `dial_via_helper`).
    let back = unsafe { terminal::ConsoleSocket::from_inherited(3) };
    if let Err(e) = join_namespaces(spec.pid, &[("net", CloneFlags::CLONE_NEWNET)]) {
        return fail(e);
    }
    match super::dial_loopback(spec.port) {
        Ok(stream) => match back.send(std::os::fd::OwnedFd::from(stream)) {
            Ok(()) => 0,
            Err(e) => fail(e),
        },
        Err(e) => fail(e),
    }
}

/// What a tcpSocket/httpGet probe checks, from inside the pod's network namespace.
#[derive(Debug, Serialize, Deserialize)]
pub struct NetProbe {
    /// A process in the pod (its network namespace is entered).
    pub pid: u32,
    /// Port.
    pub port: u16,
    /// HTTP path; `None` for a plain TCP connect.
    pub http_path: Option<String>,
    /// Timeout in seconds.
    pub timeout: u64,
}

/// Connects (and for HTTP, GETs) inside the pod's network namespace. Exit 0 = success;
/// the reason for a failure goes to stderr, as the kubelet reports it.
fn run_netprobe(json: &str) -> i32 {
    use std::net::{Ipv4Addr, SocketAddr, TcpStream};
    use std::time::Duration;
    let spec: NetProbe = match serde_json::from_str(json) {
        Ok(s) => s,
        Err(e) => return fail(format!("bad probe spec: {e}")),
    };
    if let Err(e) = join_namespaces(spec.pid, &[("net", CloneFlags::CLONE_NEWNET)]) {
        return fail(e);
    }
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, spec.port));
    let timeout = Duration::from_secs(spec.timeout.max(1));
    let mut stream = match TcpStream::connect_timeout(&addr, timeout) {
        Ok(s) => s,
        Err(e) => return fail(format!("dial tcp {addr}: connect: {e}")),
    };
    let Some(path) = spec.http_path else { return 0 };
    let _ = stream.set_read_timeout(Some(timeout));
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: kube-probe/1.32\r\nConnection: close\r\n\r\n"
    );
    if let Err(e) = stream.write_all(req.as_bytes()) {
        return fail(format!("Get \"http://{addr}{path}\": {e}"));
    }
    let mut buf = [0u8; 64];
    let n = stream.read(&mut buf).unwrap_or(0);
    let line = String::from_utf8_lossy(&buf[..n]);
    let code: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if (200..400).contains(&code) {
        0
    } else if code == 0 {
        fail(format!("Get \"http://{addr}{path}\": no HTTP response"))
    } else {
        fail(format!("HTTP probe failed with statuscode: {code}"))
    }
}

#[cfg(test)]
mod tests {
    use super::resolve_in_root;
    use std::path::Path;

    #[test]
    fn mount_targets_stay_inside_the_root() {
        let dir = std::env::temp_dir().join(format!("rkind-resolve-{}", std::process::id()));
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("run")).unwrap();
        std::fs::create_dir_all(root.join("var")).unwrap();
        std::os::unix::fs::symlink("/run", root.join("var/run")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("run/up")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        let at = |p: &str| resolve_in_root(&root, Path::new(p));
        assert_eq!(at("/var/run/secrets/x"), root.join("run/secrets/x"));
        assert_eq!(at("/run/up/etc"), root.join("etc"));
        assert_eq!(at("/../../etc/passwd"), root.join("etc/passwd"));
        assert_eq!(at("/data"), root.join("data"));
        // A symlink loop ends instead of spinning.
        assert!(at("/loop/x").starts_with(&root));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
