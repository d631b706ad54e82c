//! How strongly this machine lets rkind isolate pods, found by trying (never guessed from
//! the uid): each level is attempted in a throw-away helper process, strongest first.
//!
//! - [`Level::Namespaces`]: new UTS/IPC/network/PID/mount namespaces, overlay roots,
//!   `/proc`, devpts (root on a normal machine);
//! - [`Level::Rootless`]: the same inside a user namespace per pod that maps the user to
//!   root (a non-root user where user namespaces are allowed); container roots on overlay
//!   when the kernel allows it in a user namespace, else copies;
//! - [`Level::Unprivileged`]: no new namespaces at all (a default Docker/Podman container:
//!   no `CAP_SYS_ADMIN`, user namespaces refused); each container that has an image runs
//!   chrooted in a copy of it when `chroot` is allowed, everything else in the shared root.

use std::path::Path;
use std::process::Stdio;

use nix::mount::MsFlags;
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{ForkResult, fork};
use serde::{Deserialize, Serialize};

/// argv[1] of the probe helper.
pub const PROBE: &str = "__rkind-probe";

/// Environment variable that caps the level (tests, benchmarks, users who want less).
pub const ENV_LEVEL: &str = "RKIND_ISOLATION";

/// Set (to 1) for a probe helper whose user namespace gets subordinate id maps.
const ENV_PROBE_SUBIDS: &str = "RKIND_PROBE_SUBIDS";

/// Environment variable that turns overlay roots off (copies instead), as on kernels that
/// refuse overlayfs in a user namespace.
pub const ENV_NO_OVERLAY: &str = "RKIND_NO_OVERLAY";

/// An isolation level, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Root: namespaces and (where the machine has them) cgroups.
    #[default]
    Namespaces,
    /// A user namespace per pod, mapping the user to root inside.
    Rootless,
    /// No new namespaces: processes share the machine's (or outer container's) view.
    Unprivileged,
}

impl Level {
    /// The name used in `RKIND_ISOLATION`, `rkind status` and the Node annotation.
    pub fn name(self) -> &'static str {
        match self {
            Level::Namespaces => "namespaces",
            Level::Rootless => "rootless",
            Level::Unprivileged => "unprivileged",
        }
    }

    fn parse(s: &str) -> Option<Level> {
        [Level::Namespaces, Level::Rootless, Level::Unprivileged]
            .into_iter()
            .find(|l| l.name() == s.trim().to_ascii_lowercase())
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What was found: the level, how container roots are made, and what was tried.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Isolation {
    /// The level in use.
    pub level: Level,
    /// Container roots are overlay mounts (else copies of the image).
    pub overlay: bool,
    /// `chroot` works (matters at the unprivileged level only).
    pub chroot: bool,
    /// Each attempt and its outcome, strongest level first.
    pub tried: Vec<String>,
    /// Rootless: the user's subordinate ids, mapped into each pod's user namespace
    /// (1..=count inside) by `newuidmap`/`newgidmap`; None maps the user alone.
    pub subids: Option<SubIds>,
}

/// A user's subordinate uid and gid ranges (`/etc/subuid`, `/etc/subgid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubIds {
    /// First subordinate uid.
    pub uid_start: u32,
    /// How many.
    pub uid_count: u32,
    /// First subordinate gid.
    pub gid_start: u32,
    /// How many.
    pub gid_count: u32,
}

impl SubIds {
    /// The current user's ranges, when both files list them and both setuid helpers
    /// exist; None otherwise.
    pub fn of_current_user() -> Option<SubIds> {
        let uid = nix::unistd::geteuid();
        let name = nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_default();
        let find = |file: &str| -> Option<(u32, u32)> {
            let text = std::fs::read_to_string(file).ok()?;
            text.lines().find_map(|l| {
                let mut f = l.trim().split(':');
                let who = f.next()?;
                if who != name && who != uid.to_string() {
                    return None;
                }
                Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
            })
        };
        let helpers = ["newuidmap", "newgidmap"]
            .iter()
            .all(|h| Path::new("/usr/bin").join(h).exists());
        let (uid_start, uid_count) = find("/etc/subuid")?;
        let (gid_start, gid_count) = find("/etc/subgid")?;
        (helpers && uid_count > 0 && gid_count > 0).then_some(SubIds {
            uid_start,
            uid_count,
            gid_start,
            gid_count,
        })
    }

    /// Writes the maps of process `pid` (which has just entered a new user namespace):
    /// root inside is the user, 1..=count are the subordinate ids.
    pub fn map(&self, pid: u32) -> Result<(), String> {
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        for (tool, own, start, count) in [
            ("newuidmap", uid, self.uid_start, self.uid_count),
            ("newgidmap", gid, self.gid_start, self.gid_count),
        ] {
            let out = std::process::Command::new(Path::new("/usr/bin").join(tool))
                .args([pid, 0, own, 1, 1, start, count].map(|n| n.to_string()))
                .output()
                .map_err(|e| format!("{tool}: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "{tool} {pid} 0 {own} 1 1 {start} {count}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
        Ok(())
    }
}

/// The line a helper prints once it is in its new user namespace and waits for its
/// maps (followed by one line on its stdin when they are written).
pub const AWAITING_MAPS: &str = "userns";

/// The parent's side of [`enter_user_namespace`] with subordinate ids: reads the
/// helper's announcement from `out`, maps it, and lets it go on through `input`.
pub fn map_child(
    subids: &SubIds,
    pid: u32,
    out: &mut impl std::io::BufRead,
    input: &mut impl std::io::Write,
) -> Result<(), String> {
    let mut line = String::new();
    let _ = out.read_line(&mut line);
    if line.trim() != AWAITING_MAPS {
        return Err(format!(
            "expected the helper to wait for its id maps, it said {line:?}"
        ));
    }
    let mapped = subids.map(pid);
    input
        .write_all(if mapped.is_ok() { b"go\n" } else { b"stop\n" })
        .map_err(|e| format!("releasing the helper: {e}"))?;
    input
        .flush()
        .map_err(|e| format!("releasing the helper: {e}"))?;
    mapped
}

impl Default for Isolation {
    fn default() -> Self {
        Isolation {
            level: Level::Namespaces,
            overlay: true,
            chroot: true,
            tried: Vec::new(),
            subids: None,
        }
    }
}

impl Isolation {
    /// Tries each level, strongest first (or from `RKIND_ISOLATION` down), in helper
    /// processes that use `scratch` (created and removed here).
    pub fn detect(scratch: &Path) -> Result<Isolation, String> {
        let start = match std::env::var(ENV_LEVEL) {
            Ok(v) if !v.trim().is_empty() => Level::parse(&v).ok_or_else(|| {
                format!("{ENV_LEVEL}={v:?}: expected namespaces, rootless or unprivileged")
            })?,
            _ => Level::Namespaces,
        };
        let no_overlay = std::env::var_os(ENV_NO_OVERLAY).is_some_and(|v| v != "0");
        let mut tried = Vec::new();
        let subids = SubIds::of_current_user();
        let mut found = None;
        let mut found_subids = None;
        for level in [Level::Namespaces, Level::Rootless] {
            if level < start {
                tried.push(format!("{level}: not tried ({ENV_LEVEL}={start})"));
                continue;
            }
            if start == Level::Unprivileged {
                break;
            }
            let mut result = probe(scratch, level, no_overlay, subids.as_ref());
            let mut level_subids = subids.filter(|_| level == Level::Rootless);
            if level == Level::Rootless
                && let (Err(e), Some(_)) = (&result, &subids)
            {
                tried.push(format!("rootless with subordinate ids: {e}"));
                result = probe(scratch, level, no_overlay, None);
                level_subids = None;
            }
            match result {
                Ok(overlay) => {
                    found_subids = level_subids;
                    tried.push(format!(
                        "{level}: ok{}",
                        if overlay {
                            ""
                        } else {
                            " (container roots are copies: no overlayfs here)"
                        }
                    ));
                    found = Some((level, overlay));
                    break;
                }
                Err(e) => tried.push(format!("{level}: {e}")),
            }
        }
        let isolation = match found {
            Some((level, overlay)) => Isolation {
                level,
                overlay,
                chroot: true,
                tried,
                subids: found_subids,
            },
            None => {
                let chroot = match probe(scratch, Level::Unprivileged, true, None) {
                    Ok(_) => {
                        tried.push("unprivileged: ok (chroot works)".into());
                        true
                    }
                    Err(e) => {
                        tried.push(format!("unprivileged: ok, without chroot ({e})"));
                        false
                    }
                };
                Isolation {
                    level: Level::Unprivileged,
                    overlay: false,
                    chroot,
                    tried,
                    subids: None,
                }
            }
        };
        let _ = std::fs::remove_dir_all(scratch);
        Ok(isolation)
    }

    /// One line for `rkind up`: the level and how roots are made.
    pub fn summary(&self) -> String {
        match self.level {
            Level::Namespaces => format!(
                "isolation: namespaces, {} roots",
                if self.overlay { "overlay" } else { "copied" }
            ),
            Level::Rootless => format!(
                "isolation: rootless (a user namespace per pod, {}), {} roots",
                match &self.subids {
                    Some(s) => format!("your user and {} subordinate ids", s.uid_count),
                    None => "your user only".into(),
                },
                if self.overlay { "overlay" } else { "copied" }
            ),
            Level::Unprivileged => format!(
                "isolation: unprivileged (no namespaces{})",
                if self.chroot {
                    ", image containers chrooted"
                } else {
                    ", no chroot"
                }
            ),
        }
    }

    /// What users must know about a weaker level, shown at start; empty at full strength.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        match self.level {
            Level::Namespaces => {}
            Level::Rootless => out.push(match &self.subids {
                Some(s) => format!(
                    "rootless: each pod runs in its own user namespace: your user is root \
                     there, uids 1-{} are your subordinate ids; limits apply only where \
                     cgroups are delegated to you",
                    s.uid_count
                ),
                None => "rootless: each pod runs in its own user namespace where only your \
                         user is mapped (to root), as /etc/subuid or newuidmap are missing: \
                         other uids (runAsUser, files owned by others in kubectl cp) cannot \
                         be used, and limits apply only where cgroups are delegated to you"
                    .into(),
            }),
            Level::Unprivileged => {
                out.push(
                    "unprivileged: pod namespaces cannot be made here (see what was tried \
                     below), so pods are NOT isolated from each other or from rkind: they \
                     share processes, network (pod ports are ports on this loopback), \
                     hostname and, for rkind/host containers, the root filesystem"
                        .into(),
                );
                out.push(
                    "unprivileged: pods get no service-account token volume unless they ask \
                     (automountServiceAccountToken: true), as rkind/host containers would \
                     all need it at the same path of the shared root"
                        .into(),
                );
                out.push(if self.chroot {
                    "unprivileged: containers with an image run chrooted in a copy of it \
                     (volumes are copied in at start: writes are not shared); rkind/host \
                     containers run in the shared root, where volumes appear as symlinks"
                        .into()
                } else {
                    "unprivileged: chroot is refused too, so every container runs in the \
                     shared root filesystem"
                        .into()
                });
            }
        }
        if !self.tried.is_empty() && self.level != Level::Namespaces {
            out.push(format!("tried: {}", self.tried.join("; ")));
        }
        out
    }
}

/// Runs the probe helper for `level`; Ok(overlay works) or what failed.
fn probe(
    scratch: &Path,
    level: Level,
    no_overlay: bool,
    subids: Option<&SubIds>,
) -> Result<bool, String> {
    let dir = scratch.join(level.name());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    let mut child = super::own_binary()
        .arg(PROBE)
        .arg(level.name())
        .arg(&dir)
        .env(ENV_NO_OVERLAY, if no_overlay { "1" } else { "0" })
        .env(ENV_PROBE_SUBIDS, if subids.is_some() { "1" } else { "0" })
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run the probe helper: {e}"))?;
    let mut mapped = Ok(());
    let pid = child.id();
    if let (Some(ids), Some(out), Some(input)) =
        (subids, child.stdout.as_mut(), child.stdin.as_mut())
        && level == Level::Rootless
    {
        mapped = map_child(ids, pid, &mut std::io::BufReader::new(out), input);
    }
    drop(child.stdin.take());
    let out = child
        .wait_with_output()
        .map_err(|e| format!("the probe helper: {e}"))?;
    mapped?;
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() {
        Ok(stdout.trim() == "overlay")
    } else {
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(if err.is_empty() {
            format!("probe failed ({})", out.status)
        } else {
            err
        })
    }
}

/// Enters a new user namespace. With `subids`, announces [`AWAITING_MAPS`] on stdout and
/// waits for the parent to write the maps (see [`map_child`]); without, maps the current
/// user (and group) to root, the single mapping a process may write for itself.
pub fn enter_user_namespace(subids: bool) -> Result<(), String> {
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| format!("unshare(CLONE_NEWUSER): {e}"))?;
    if subids {
        use std::io::{BufRead, Write};
        println!("{AWAITING_MAPS}");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        if line.trim() != "go" {
            return Err("the subordinate id maps could not be written".into());
        }
        return Ok(());
    }
    let write = |file: &str, text: String| {
        std::fs::write(format!("/proc/self/{file}"), &text)
            .map_err(|e| format!("writing /proc/self/{file} ({}): {e}", text.trim()))
    };
    write("uid_map", format!("0 {uid} 1\n"))?;
    write("setgroups", "deny\n".into())?;
    write("gid_map", format!("0 {gid} 1\n"))?;
    Ok(())
}

/// The probe helper's body: does what a pod at `level` needs, in `dir`; exit 0 and
/// prints `overlay` when overlay roots work, else the reason on stderr.
pub fn run_probe(level: &str, dir: &Path) -> i32 {
    let fail = |msg: String| {
        eprintln!("{msg}");
        1
    };
    let Some(level) = Level::parse(level) else {
        return fail(format!("unknown level {level:?}"));
    };
    if level == Level::Unprivileged {
        // SAFETY: single-threaded helper.
        return match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                let code = match nix::unistd::chroot(dir) {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("chroot: {e}");
                        1
                    }
                };
                // SAFETY: leave the forked child without running destructors.
                unsafe { libc::_exit(code) }
            }
            Ok(ForkResult::Parent { child }) => super::helpers::wait_child(child),
            Err(e) => fail(format!("fork: {e}")),
        };
    }
    let subids = std::env::var_os(ENV_PROBE_SUBIDS).is_some_and(|v| v == "1");
    if level == Level::Rootless
        && let Err(e) = enter_user_namespace(subids)
    {
        return fail(e);
    }
    let flags = CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWNET;
    if let Err(e) = unshare(flags) {
        return fail(format!("unshare(UTS|IPC|NET): {e}"));
    }
    if let Err(e) = unshare(CloneFlags::CLONE_NEWPID) {
        return fail(format!("unshare(CLONE_NEWPID): {e}"));
    }
    let no_overlay = std::env::var_os(ENV_NO_OVERLAY).is_some_and(|v| v != "0");
    let (r, w) = match nix::unistd::pipe() {
        Ok(p) => p,
        Err(e) => return fail(format!("pipe: {e}")),
    };
    // SAFETY: single-threaded helper.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(r);
            let result = mounts_in_new_namespace(dir, !no_overlay);
            let msg = match &result {
                Ok(true) => "overlay".to_string(),
                Ok(false) => "copy".to_string(),
                Err(e) => format!("error {e}"),
            };
            let _ = nix::unistd::write(&w, msg.as_bytes());
            // SAFETY: leave the forked child without running destructors.
            unsafe { libc::_exit(if result.is_ok() { 0 } else { 1 }) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(w);
            let mut msg = String::new();
            let _ = std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut msg);
            let _ = super::helpers::wait_child(child);
            match msg.strip_prefix("error ") {
                Some(e) => fail(e.to_string()),
                None if msg == "overlay" => {
                    println!("overlay");
                    0
                }
                None if msg == "copy" => 0,
                None => fail(format!("the probe's child said {msg:?}")),
            }
        }
        Err(e) => fail(format!("fork: {e}")),
    }
}

/// In the probe's child (PID 1 of a new PID namespace): a private mount namespace with
/// what a container root needs. Ok(overlay works).
fn mounts_in_new_namespace(dir: &Path, try_overlay: bool) -> Result<bool, String> {
    use super::helpers::mnt;
    super::helpers::private_mount_namespace()?;
    let rw = dir.join("rw");
    let lower = dir.join("lower");
    let root = dir.join("root");
    for d in [&rw, &lower, &root] {
        std::fs::create_dir_all(d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
    }
    mnt(Some("tmpfs"), &rw, Some("tmpfs"), MsFlags::empty(), None)?;
    let overlay =
        try_overlay && super::helpers::overlay(&lower.display().to_string(), &rw, &root).is_ok();
    if !overlay {
        mnt(
            Some(&root.display().to_string()),
            &root,
            None,
            MsFlags::MS_BIND,
            None,
        )?;
    }
    super::helpers::mount_proc(&root.join("proc"))?;
    super::helpers::mount_devpts(&root.join("pts"))?;
    Ok(overlay)
}
