//! Giving freed memory back to the kernel. glibc's malloc keeps what the process frees
//! in its arenas (one per thread that allocated), and its dynamic mmap threshold soon
//! serves even megabyte-sized blocks from those arenas; so after a burst of large
//! objects the RSS would stay at its peak for good. Two measures: a fixed mmap
//! threshold, so that large blocks are mapped on their own and unmapped when freed, and
//! `malloc_trim(0)` a moment after a burst of large writes has ended, which returns the
//! arenas' free pages. On other C libraries both are no-ops.

use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::Duration;

/// Blocks at least this large get their own mapping (glibc's default starts at 128 KiB
/// but climbs to 32 MiB as soon as such a block is freed, which is what keeps megabyte
/// objects resident; setting it explicitly stops the climb).
const MMAP_THRESHOLD: usize = 128 * 1024;

/// A trim runs once no large free has been reported for this long (one trim per burst,
/// not one per write: a trim walks every arena).
const QUIET: Duration = Duration::from_millis(500);

/// Sets the allocator up for a long-running process that sees bursts of large objects.
/// Idempotent; called before the first large object is allocated (by the store).
pub fn tune_allocator() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(target_env = "gnu")]
        // SAFETY: mallopt only changes allocator parameters; it is thread-safe.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
        }
    });
}

/// What a report carries: the storage engine's release function, if it has one.
type Report = Option<fn()>;

/// Reports that large objects are being (or are about to be) freed. Shortly after the
/// last such report, `release` runs (a storage engine freeing what it deferred) and the
/// allocator gives its free memory back to the kernel.
pub fn large_free(release: Option<fn()>) {
    static TRIMMER: OnceLock<Option<SyncSender<Report>>> = OnceLock::new();
    let sender = TRIMMER.get_or_init(|| {
        let (tx, rx) = sync_channel(1);
        std::thread::Builder::new()
            .name("rkind-trim".into())
            .spawn(move || trimmer(rx))
            .ok()
            .map(|_| tx)
    });
    if let Some(tx) = sender {
        // A full channel is fine: the report already queued triggers the trim anyway.
        let _ = tx.try_send(release);
    }
}

/// Waits for reports, lets a burst end, then releases and trims.
fn trimmer(rx: Receiver<Report>) {
    while let Ok(mut release) = rx.recv() {
        loop {
            match rx.recv_timeout(QUIET) {
                Ok(r) => release = release.or(r),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        let _span = tracing::debug_span!("malloc_trim").entered();
        if let Some(release) = release {
            release();
        }
        trim();
    }
}

/// Returns the allocator's free pages to the kernel.
pub fn trim() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}
