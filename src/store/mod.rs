//! The object store: JSON objects keyed like etcd (`/registry/<resource>/<ns>/<name>`),
//! a cluster-wide monotonically increasing `resourceVersion`, optimistic concurrency,
//! and a watch window: the recent changes, bounded by count *and* bytes, from which
//! watches resume.
//!
//! Events hold the stored JSON bytes (shared, never copied per watcher), and watchers
//! read the window at their own pace through a [`Cursor`]; the only per-watcher state
//! in the store is a revision number. So the memory of watches is the window's budget,
//! whatever the number or speed of watchers: a watcher the window has left behind gets
//! [`StoreError::Expired`] and ends, as upstream's watch cache ends a watcher that
//! cannot keep up.
//!
//! The persistence engine sits behind the small [`Backend`] trait ([`sled_backend`] is
//! the one in use), so it can be swapped without touching the API server.

pub mod sled_backend;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::watch;

/// Errors of the store; the API server maps them to `metav1.Status` codes.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Create of a key that exists (409 AlreadyExists).
    #[error("already exists")]
    AlreadyExists,
    /// Update/delete of a key that does not exist (404 NotFound).
    #[error("not found")]
    NotFound,
    /// The caller's resourceVersion precondition does not hold (409 Conflict).
    #[error("the object has been modified")]
    Conflict,
    /// A watch asked for history that is no longer kept (410 Gone / Expired).
    #[error("too old resource version: {requested} ({oldest})")]
    Expired {
        /// The version the client asked for.
        requested: u64,
        /// The oldest version still available.
        oldest: u64,
    },
    /// The persistence engine failed.
    #[error("storage backend: {0}")]
    Backend(String),
    /// A stored value could not be decoded (corruption) or encoded.
    #[error("stored value: {0}")]
    Codec(#[from] serde_json::Error),
    /// A caller-provided update function refused the change.
    #[error("{0}")]
    Rejected(String),
}

/// The persistence engine under the store. Writes are serialised by [`Store`], so the
/// backend only needs atomic single-key writes together with the revision counter.
pub trait Backend: Send + Sync + 'static {
    /// Reads one value.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Reads every key under `prefix`, in key order.
    fn scan_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Atomically sets (`Some`) or removes (`None`) `key` and records `revision` as the
    /// store's current revision.
    fn write(&self, key: &str, value: Option<&[u8]>, revision: u64) -> Result<(), StoreError>;
    /// The last recorded revision (0 for a new store).
    fn revision(&self) -> Result<u64, StoreError>;
    /// Blocks until every write so far is durable.
    fn flush(&self) -> Result<(), StoreError>;
    /// A function that makes the engine free the memory it defers freeing (sled's old
    /// page versions wait for epoch-based reclamation), run a moment after a burst of
    /// large writes, before the allocator is trimmed.
    fn release_hook(&self) -> Option<fn()> {
        None
    }
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// The object was created.
    Added,
    /// The object was changed.
    Modified,
    /// The object was removed.
    Deleted,
}

impl EventType {
    /// The watch wire name (`ADDED`, `MODIFIED`, `DELETED`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as watches see it. Cloning is cheap: the objects are shared bytes.
#[derive(Debug, Clone)]
pub struct Event {
    /// What happened.
    pub kind: EventType,
    /// The object's key.
    pub key: Arc<str>,
    /// The revision of this change.
    pub revision: u64,
    /// The object after the change, as stored JSON (for deletes: its last state, with
    /// the new revision).
    pub object: Bytes,
    /// The object before the change, as stored JSON, if any (lets watchers with
    /// selectors see transitions).
    pub previous: Option<Bytes>,
}

impl Event {
    /// The object after the change, decoded.
    pub fn object(&self) -> Result<Value, StoreError> {
        Ok(serde_json::from_slice(&self.object)?)
    }

    /// The object before the change, decoded.
    pub fn previous(&self) -> Result<Option<Value>, StoreError> {
        match &self.previous {
            Some(b) => Ok(Some(serde_json::from_slice(b)?)),
            None => Ok(None),
        }
    }

    /// What keeping this event costs the window: its bytes and its bookkeeping.
    fn cost(&self) -> usize {
        self.object.len()
            + self.previous.as_ref().map_or(0, Bytes::len)
            + self.key.len()
            + std::mem::size_of::<Event>()
    }
}

/// The limits of the watch window. An event leaves the window when either is exceeded;
/// a watch from a revision before the window gets 410 Expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchWindow {
    /// At most this many events.
    pub max_events: usize,
    /// At most this many bytes of events (stored JSON of the objects and their previous
    /// states, plus bookkeeping).
    pub max_bytes: usize,
}

impl Default for WatchWindow {
    /// 10,000 events or 4 MiB: hundreds of changes of ordinary objects (enough for any
    /// watcher that keeps up to resume), while a burst of megabyte objects cannot grow
    /// the process by more than the budget.
    fn default() -> Self {
        WatchWindow {
            max_events: 10_000,
            max_bytes: 4 * 1024 * 1024,
        }
    }
}

impl WatchWindow {
    /// The default, with `RKIND_WATCH_CACHE_EVENTS` / `RKIND_WATCH_CACHE_BYTES` where set
    /// (for clusters that must resume watches further back).
    pub fn from_env() -> Self {
        let mut w = WatchWindow::default();
        let read = |name: &str| -> Option<usize> {
            let v = std::env::var(name).ok()?;
            match v.trim().parse::<usize>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    tracing::warn!(variable = name, value = %v, "ignored: not a positive number");
                    None
                }
            }
        };
        if let Some(n) = read("RKIND_WATCH_CACHE_EVENTS") {
            w.max_events = n;
        }
        if let Some(n) = read("RKIND_WATCH_CACHE_BYTES") {
            w.max_bytes = n;
        }
        w
    }
}

/// The recent events, oldest first, within the [`WatchWindow`].
struct History {
    events: VecDeque<Event>,
    bytes: usize,
    /// Oldest revision from which a watch can resume.
    oldest: u64,
    window: WatchWindow,
}

impl History {
    /// Appends `event` and drops the oldest events beyond the window; returns the bytes
    /// dropped.
    fn push(&mut self, event: Event) -> usize {
        self.bytes += event.cost();
        self.events.push_back(event);
        let mut dropped = 0;
        // The newest event always stays, however large: a watcher that is current must
        // still see it.
        while self.events.len() > 1
            && (self.events.len() > self.window.max_events || self.bytes > self.window.max_bytes)
        {
            let Some(old) = self.events.pop_front() else {
                break;
            };
            let cost = old.cost();
            self.bytes -= cost;
            dropped += cost;
            self.oldest = old.revision;
        }
        dropped
    }
}

struct WriteState {
    revision: u64,
}

/// The store shared by the API server's handlers.
pub struct Store {
    backend: Box<dyn Backend>,
    state: Mutex<WriteState>,
    history: Mutex<History>,
    /// The latest revision in the window; watchers wait on it for news.
    latest: watch::Sender<u64>,
}

/// A watcher's place in the event window: the revision it has read up to and the
/// prefix it follows. Read on with [`Store::next_events`].
pub struct Cursor {
    prefix: String,
    after: u64,
    news: watch::Receiver<u64>,
}

impl Cursor {
    /// The revision up to which this watcher has seen every change under its prefix
    /// (what a bookmark reports).
    pub fn revision(&self) -> u64 {
        self.after
    }

    /// Waits until the store has a change newer than the last [`Store::next_events`]
    /// looked at. Returns false when the store is gone.
    pub async fn changed(&mut self) -> bool {
        self.news.changed().await.is_ok()
    }
}

/// Largest batch [`Store::next_events`] hands out at once.
const BATCH_EVENTS: usize = 64;
/// Byte budget of one batch (a batch always has at least one event).
const BATCH_BYTES: usize = 1024 * 1024;

/// Objects above this size make a write worth a later allocator trim.
const LARGE_OBJECT: usize = 64 * 1024;

impl Store {
    /// Opens a store over `backend`, with the watch window from the environment
    /// ([`WatchWindow::from_env`]).
    pub fn new(backend: Box<dyn Backend>) -> Result<Self, StoreError> {
        Store::with_window(backend, WatchWindow::from_env())
    }

    /// Opens a store over `backend` with an explicit watch window.
    pub fn with_window(backend: Box<dyn Backend>, window: WatchWindow) -> Result<Self, StoreError> {
        crate::memory::tune_allocator();
        let revision = backend.revision()?;
        let (latest, _) = watch::channel(revision);
        Ok(Store {
            backend,
            state: Mutex::new(WriteState { revision }),
            history: Mutex::new(History {
                events: VecDeque::new(),
                bytes: 0,
                oldest: revision,
                window,
            }),
            latest,
        })
    }

    /// Opens (or creates) the sled-backed store in `dir`.
    pub fn open_sled(dir: &std::path::Path) -> Result<Self, StoreError> {
        Store::new(Box::new(sled_backend::SledBackend::open(dir)?))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WriteState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn history(&self) -> std::sync::MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current revision of the whole store.
    pub fn revision(&self) -> u64 {
        self.lock().revision
    }

    /// The events and bytes the watch window holds now.
    pub fn window_usage(&self) -> (usize, usize) {
        let h = self.history();
        (h.events.len(), h.bytes)
    }

    /// Reads one object.
    pub fn get(&self, key: &str) -> Result<Option<Value>, StoreError> {
        match self.backend.get(key)? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Lists every object under `prefix` together with the revision the list is consistent at.
    pub fn list(&self, prefix: &str) -> Result<(Vec<Value>, u64), StoreError> {
        let state = self.lock();
        let rows = self.backend.scan_prefix(prefix)?;
        let revision = state.revision;
        drop(state);
        let mut out = Vec::with_capacity(rows.len());
        for (_, bytes) in rows {
            out.push(serde_json::from_slice(&bytes)?);
        }
        Ok((out, revision))
    }

    /// Waits up to `limit` for the store to reach `revision`; returns the revision it is
    /// at then (smaller than `revision` when the wait timed out).
    pub async fn wait_for_revision(&self, revision: u64, limit: std::time::Duration) -> u64 {
        let mut news = self.latest.subscribe();
        let reached = tokio::time::timeout(limit, news.wait_for(|r| *r >= revision)).await;
        match reached {
            Ok(Ok(r)) => *r,
            _ => self.revision(),
        }
    }

    /// Creates `key` with `object`; sets `metadata.resourceVersion`. Durable when it returns.
    pub async fn create(&self, key: &str, object: Value) -> Result<Value, StoreError> {
        let stored = self.mutate(key, |current| match current {
            Some(_) => Err(StoreError::AlreadyExists),
            None => Ok(Some(object)),
        })?;
        self.flush::<StoreError>().await?;
        stored.ok_or(StoreError::NotFound)
    }

    /// Replaces `key` with what `f` returns from the current object. If the new object has
    /// a `metadata.resourceVersion` different from the stored one, the write fails with
    /// [`StoreError::Conflict`] (optimistic concurrency). If `f` returns the object
    /// unchanged, nothing is written and no event is sent.
    pub async fn update<E: From<StoreError>>(
        &self,
        key: &str,
        f: impl FnOnce(Value) -> Result<Value, E>,
    ) -> Result<Value, E> {
        let stored = self.mutate(key, |current| -> Result<Option<Value>, E> {
            let current = current.ok_or(StoreError::NotFound)?;
            let next = f(current.clone())?;
            let want = next
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or("");
            let have = current
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !want.is_empty() && want != have {
                return Err(StoreError::Conflict.into());
            }
            Ok(Some(next))
        })?;
        self.flush().await?;
        stored.ok_or_else(|| StoreError::NotFound.into())
    }

    /// Removes `key`, returning its last state. `precondition` checks the current object
    /// first (e.g. a uid or resourceVersion precondition).
    pub async fn delete<E: From<StoreError>>(
        &self,
        key: &str,
        precondition: impl FnOnce(&Value) -> Result<(), E>,
    ) -> Result<Value, E> {
        let mut last = None;
        self.mutate(key, |current| -> Result<Option<Value>, E> {
            let current = current.ok_or(StoreError::NotFound)?;
            precondition(&current)?;
            last = Some(current);
            Ok(None)
        })?;
        self.flush().await?;
        last.ok_or_else(|| StoreError::NotFound.into())
    }

    async fn flush<E: From<StoreError>>(&self) -> Result<(), E> {
        // The flush covers every write so far, so concurrent writers share its cost.
        tokio::task::block_in_place(|| self.backend.flush()).map_err(E::from)
    }

    /// The single write path: serialised, revision-stamped, recorded in the watch window
    /// and announced to watchers. Returns the stored object (None for a delete).
    fn mutate<E: From<StoreError>>(
        &self,
        key: &str,
        f: impl FnOnce(Option<Value>) -> Result<Option<Value>, E>,
    ) -> Result<Option<Value>, E> {
        let mut state = self.lock();
        let previous_bytes: Option<Bytes> = self.backend.get(key)?.map(Bytes::from);
        let current: Option<Value> = match &previous_bytes {
            Some(b) => Some(serde_json::from_slice(b).map_err(StoreError::from)?),
            None => None,
        };
        let previous = current.clone();
        let next = f(current)?;
        if let (Some(prev), Some(next)) = (&previous, &next)
            && strip_rv(prev) == strip_rv(next)
        {
            return Ok(Some(prev.clone()));
        }
        let revision = state.revision + 1;
        let (kind, object, bytes) = match next {
            Some(mut obj) => {
                set_rv(&mut obj, revision);
                let kind = if previous.is_some() {
                    EventType::Modified
                } else {
                    EventType::Added
                };
                let bytes = encode(&obj)?;
                (kind, Some(obj), bytes)
            }
            None => {
                let mut obj = previous.ok_or(StoreError::NotFound)?;
                set_rv(&mut obj, revision);
                (EventType::Deleted, None, encode(&obj)?)
            }
        };
        let value = (kind != EventType::Deleted).then_some(bytes.as_ref());
        self.backend.write(key, value, revision)?;
        state.revision = revision;
        let size = bytes.len();
        let event = Event {
            kind,
            key: Arc::from(key),
            revision,
            object: bytes,
            previous: previous_bytes,
        };
        let dropped = self.history().push(event);
        self.latest.send_replace(revision);
        drop(state);
        if size >= LARGE_OBJECT || dropped >= LARGE_OBJECT {
            // The request's own copies of a large object are freed once it is answered;
            // have the allocator give that memory back after the burst.
            crate::memory::large_free(self.backend.release_hook());
        }
        Ok(object)
    }

    /// Starts a watch of changes under `prefix` strictly after revision `after`. Fails
    /// with [`StoreError::Expired`] when that part of the history has left the window.
    pub fn watch(&self, prefix: &str, after: u64) -> Result<Cursor, StoreError> {
        let history = self.history();
        if after < history.oldest {
            return Err(StoreError::Expired {
                requested: after,
                oldest: history.oldest,
            });
        }
        let news = self.latest.subscribe();
        drop(history);
        Ok(Cursor {
            prefix: prefix.to_string(),
            after,
            news,
        })
    }

    /// The next events under the cursor's prefix (at most a small batch; empty when the
    /// watcher is current: then wait with [`Cursor::changed`]), advancing the cursor.
    /// Fails with [`StoreError::Expired`] when the window has moved past the cursor: the
    /// watcher was too slow for the window, and must start again from a list.
    pub fn next_events(&self, cursor: &mut Cursor) -> Result<Vec<Event>, StoreError> {
        // Marked seen before reading, so a write after the read is always announced.
        cursor.news.borrow_and_update();
        let history = self.history();
        if cursor.after < history.oldest {
            return Err(StoreError::Expired {
                requested: cursor.after,
                oldest: history.oldest,
            });
        }
        let start = history
            .events
            .partition_point(|e| e.revision <= cursor.after);
        let mut out = Vec::new();
        let mut bytes = 0;
        for ev in history.events.range(start..) {
            if ev.key.starts_with(cursor.prefix.as_str()) {
                let cost = ev.cost();
                if out.len() >= BATCH_EVENTS || (!out.is_empty() && bytes + cost > BATCH_BYTES) {
                    break;
                }
                bytes += cost;
                out.push(ev.clone());
            }
            cursor.after = ev.revision;
        }
        Ok(out)
    }
}

/// Serialises a stored object, without spare capacity (the bytes may stay in the window).
fn encode(obj: &Value) -> Result<Bytes, StoreError> {
    let mut v = serde_json::to_vec(obj)?;
    v.shrink_to_fit();
    Ok(Bytes::from(v))
}

fn set_rv(obj: &mut Value, revision: u64) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert(
            "resourceVersion".into(),
            Value::String(revision.to_string()),
        );
    }
}

fn strip_rv(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open_sled(dir.path()).unwrap();
        (dir, s)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn revisions_increase_and_conflicts_are_detected() {
        let (_d, s) = store();
        let a = s
            .create("/registry/pods/ns/a", json!({"metadata":{"name":"a"}}))
            .await
            .unwrap();
        assert_eq!(a["metadata"]["resourceVersion"], "1");
        let err = s
            .create("/registry/pods/ns/a", json!({"metadata":{"name":"a"}}))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::AlreadyExists));
        let b = s
            .update("/registry/pods/ns/a", |mut o| {
                o["spec"] = json!({"x": 1});
                Ok::<_, StoreError>(o)
            })
            .await
            .unwrap();
        assert_eq!(b["metadata"]["resourceVersion"], "2");
        // A write that carries the stale version 1 must fail and change nothing.
        let err = s
            .update("/registry/pods/ns/a", |mut o| {
                o["metadata"]["resourceVersion"] = json!("1");
                o["spec"] = json!({"x": 2});
                Ok::<_, StoreError>(o)
            })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict));
        assert_eq!(
            s.get("/registry/pods/ns/a").unwrap().unwrap()["spec"]["x"],
            1
        );
        // No-op update: no new revision.
        let c = s
            .update("/registry/pods/ns/a", Ok::<_, StoreError>)
            .await
            .unwrap();
        assert_eq!(c["metadata"]["resourceVersion"], "2");
        assert_eq!(s.revision(), 2);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn watch_replays_history_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open_sled(dir.path()).unwrap();
            s.create("/registry/pods/ns/a", json!({"metadata":{"name":"a"}}))
                .await
                .unwrap();
            let mut cursor = s.watch("/registry/pods/", 0).unwrap();
            let backlog = s.next_events(&mut cursor).unwrap();
            assert_eq!(backlog.len(), 1);
            assert!(s.next_events(&mut cursor).unwrap().is_empty());
            s.delete("/registry/pods/ns/a", |_| Ok::<_, StoreError>(()))
                .await
                .unwrap();
            assert!(cursor.changed().await);
            let evs = s.next_events(&mut cursor).unwrap();
            assert_eq!(evs.len(), 1);
            assert_eq!(evs[0].kind, EventType::Deleted);
            assert_eq!(evs[0].revision, 2);
            assert_eq!(evs[0].object().unwrap()["metadata"]["resourceVersion"], "2");
            assert_eq!(
                evs[0].previous().unwrap().unwrap()["metadata"]["resourceVersion"],
                "1"
            );
            s.create("/registry/pods/ns/b", json!({"metadata":{"name":"b"}}))
                .await
                .unwrap();
        }
        let s = Store::open_sled(dir.path()).unwrap();
        assert_eq!(s.revision(), 3);
        let (items, rv) = s.list("/registry/pods/").unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(rv, 3);
        assert!(matches!(
            s.watch("/registry/pods/", 1),
            Err(StoreError::Expired { .. })
        ));
        assert!(s.watch("/registry/pods/", 3).is_ok());
    }

    fn small_window_store(window: WatchWindow) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let backend = sled_backend::SledBackend::open(dir.path()).unwrap();
        let s = Store::with_window(Box::new(backend), window).unwrap();
        (dir, s)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_window_is_bounded_by_bytes_and_old_versions_expire() {
        let (_d, s) = small_window_store(WatchWindow {
            max_events: 1000,
            max_bytes: 64 * 1024,
        });
        let blob = "x".repeat(20 * 1024);
        s.create(
            "/registry/configmaps/ns/big",
            json!({"metadata":{"name":"big"}}),
        )
        .await
        .unwrap();
        for i in 0..10 {
            s.update("/registry/configmaps/ns/big", |mut o| {
                o["data"] = json!({"blob": format!("{i}{blob}")});
                Ok::<_, StoreError>(o)
            })
            .await
            .unwrap();
        }
        let (events, bytes) = s.window_usage();
        assert!(bytes <= 64 * 1024, "window holds {bytes} bytes");
        assert!(events < 11, "window holds {events} events");
        match s.watch("/registry/configmaps/", 1) {
            Err(StoreError::Expired { requested, oldest }) => {
                assert_eq!(requested, 1);
                assert!(oldest > 1 && oldest < 11, "oldest {oldest}");
            }
            Err(e) => panic!("unexpected {e}"),
            Ok(_) => panic!("revision 1 should have left the window"),
        }
        // The newest event always stays, even when it alone exceeds the budget.
        let huge = "y".repeat(100 * 1024);
        s.update("/registry/configmaps/ns/big", |mut o| {
            o["data"] = json!({ "blob": huge });
            Ok::<_, StoreError>(o)
        })
        .await
        .unwrap();
        let mut cursor = s.watch("/registry/configmaps/", s.revision() - 1).unwrap();
        assert_eq!(s.next_events(&mut cursor).unwrap().len(), 1);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_watcher_left_behind_by_the_window_is_told_so() {
        let (_d, s) = small_window_store(WatchWindow {
            max_events: 5,
            max_bytes: 1024 * 1024,
        });
        let mut slow = s.watch("/registry/pods/", 0).unwrap();
        for i in 0..20 {
            s.create(
                &format!("/registry/pods/ns/p{i}"),
                json!({"metadata":{"name": format!("p{i}")}}),
            )
            .await
            .unwrap();
        }
        assert!(matches!(
            s.next_events(&mut slow),
            Err(StoreError::Expired { requested: 0, .. })
        ));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn cursors_skip_other_prefixes_and_advance_past_them() {
        let (_d, s) = store();
        let mut cursor = s.watch("/registry/pods/", 0).unwrap();
        s.create(
            "/registry/configmaps/ns/a",
            json!({"metadata":{"name":"a"}}),
        )
        .await
        .unwrap();
        s.create("/registry/pods/ns/a", json!({"metadata":{"name":"a"}}))
            .await
            .unwrap();
        s.create(
            "/registry/configmaps/ns/b",
            json!({"metadata":{"name":"b"}}),
        )
        .await
        .unwrap();
        let evs = s.next_events(&mut cursor).unwrap();
        assert_eq!(evs.len(), 1);
        assert_eq!(&*evs[0].key, "/registry/pods/ns/a");
        assert_eq!(cursor.revision(), 3);
    }
}
