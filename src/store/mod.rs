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
//! Reads never touch the engine: every object is also held in memory, decoded and
//! shared ([`cache`]), as upstream's watch cache holds them, so gets and lists parse
//! nothing and a list is consistent at one revision without blocking writers.
//!
//! The persistence engine sits behind the small [`Backend`] trait ([`sled_backend`] is
//! the one in use), so it can be swapped without touching the API server.

pub mod cache;
pub mod sled_backend;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, RwLock};

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
    /// Reads every object key under `prefix` (all of them for `""`), in key order.
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
    /// Serialises writers (held across the engine write; readers never take it).
    state: Mutex<WriteState>,
    /// Every object, decoded; what reads are answered from.
    objects: RwLock<cache::Objects>,
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
        let mut objects = cache::Objects::new(revision);
        for (key, mut bytes) in backend.scan_prefix("")? {
            let value: Value = match serde_json::from_slice(&bytes) {
                Ok(v) => v,
                Err(e) => {
                    // Served as absent (a later create overwrites it) rather than keeping
                    // the whole cluster from starting.
                    tracing::error!(%key, error = %e, "undecodable stored object skipped");
                    continue;
                }
            };
            bytes.shrink_to_fit();
            let entry = cache::Entry {
                bytes: Bytes::from(bytes),
                value: Arc::new(value),
            };
            objects.put(Arc::from(key), Some(entry));
        }
        let (latest, _) = watch::channel(revision);
        Ok(Store {
            backend,
            state: Mutex::new(WriteState { revision }),
            objects: RwLock::new(objects),
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

    fn objects(&self) -> std::sync::RwLockReadGuard<'_, cache::Objects> {
        self.objects.read().unwrap_or_else(|p| p.into_inner())
    }

    fn objects_mut(&self) -> std::sync::RwLockWriteGuard<'_, cache::Objects> {
        self.objects.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The current revision of the whole store (of the last write readers can see).
    pub fn revision(&self) -> u64 {
        self.objects().revision()
    }

    /// How many objects the store holds, and their stored JSON's bytes.
    pub fn object_usage(&self) -> (usize, usize) {
        let o = self.objects();
        (o.len(), o.json_bytes())
    }

    /// The events and bytes the watch window holds now.
    pub fn window_usage(&self) -> (usize, usize) {
        let h = self.history();
        (h.events.len(), h.bytes)
    }

    /// Reads one object (a copy the caller may change).
    pub fn get(&self, key: &str) -> Result<Option<Value>, StoreError> {
        Ok(self.get_shared(key).map(Arc::unwrap_or_clone))
    }

    /// Reads one object, shared with the store (nothing is copied).
    pub fn get_shared(&self, key: &str) -> Option<Arc<Value>> {
        self.objects().get(key).map(|e| e.value.clone())
    }

    /// Lists every object under `prefix` together with the revision the list is consistent
    /// at (copies the caller may change).
    pub fn list(&self, prefix: &str) -> Result<(Vec<Value>, u64), StoreError> {
        let (items, revision) = self.list_shared(prefix);
        Ok((
            items.into_iter().map(Arc::unwrap_or_clone).collect(),
            revision,
        ))
    }

    /// Lists every object under `prefix`, in key order, shared with the store, together
    /// with the revision the list is consistent at. The read lock is held only while the
    /// pointers are copied.
    pub fn list_shared(&self, prefix: &str) -> (Vec<Arc<Value>>, u64) {
        let objects = self.objects();
        let items = objects.prefixed(prefix).map(|e| e.value.clone()).collect();
        (items, objects.revision())
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
        let previous: Option<cache::Entry> = self.objects().get(key).cloned();
        let current: Option<Value> = previous.as_ref().map(|e| (*e.value).clone());
        let next = f(current)?;
        if let (Some(prev), Some(next)) = (&previous, &next)
            && same_but_version(&prev.value, next)
        {
            return Ok(Some((*prev.value).clone()));
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
                let mut obj = previous
                    .as_ref()
                    .map(|e| (*e.value).clone())
                    .ok_or(StoreError::NotFound)?;
                set_rv(&mut obj, revision);
                (EventType::Deleted, None, encode(&obj)?)
            }
        };
        let value = (kind != EventType::Deleted).then_some(bytes.as_ref());
        self.backend.write(key, value, revision)?;
        state.revision = revision;
        let size = bytes.len();
        let key: Arc<str> = Arc::from(key);
        let entry = object.as_ref().map(|obj| cache::Entry {
            bytes: bytes.clone(),
            value: Arc::new(obj.clone()),
        });
        let event = Event {
            kind,
            key: key.clone(),
            revision,
            object: bytes,
            previous: previous.map(|e| e.bytes),
        };
        // The event is in the window before readers can see the revision, so a list at
        // this revision can always be rewound (list_at) and watched on from.
        let dropped = self.history().push(event);
        {
            let mut objects = self.objects_mut();
            objects.put(key, entry);
            objects.set_revision(revision);
        }
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

/// Whether two objects are equal but for `metadata.resourceVersion` (a write that
/// changes nothing else is not written), compared in place.
fn same_but_version(a: &Value, b: &Value) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let without = |m: &serde_json::Map<String, Value>, skip: &str| {
        m.iter().filter(|(k, _)| k.as_str() != skip).count()
    };
    if without(a, "metadata") != without(b, "metadata") {
        return false;
    }
    let same_rest = a
        .iter()
        .filter(|(k, _)| k.as_str() != "metadata")
        .all(|(k, v)| b.get(k) == Some(v));
    if !same_rest {
        return false;
    }
    match (a.get("metadata"), b.get("metadata")) {
        (Some(Value::Object(ma)), Some(Value::Object(mb))) => {
            without(ma, "resourceVersion") == without(mb, "resourceVersion")
                && ma
                    .iter()
                    .filter(|(k, _)| k.as_str() != "resourceVersion")
                    .all(|(k, v)| mb.get(k) == Some(v))
        }
        (ma, mb) => ma == mb,
    }
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

    #[tokio::test(flavor = "multi_thread")]
    async fn reads_are_served_from_memory_and_match_the_engine_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let before = {
            let s = Store::open_sled(dir.path()).unwrap();
            for i in 0..5 {
                s.create(
                    &format!("/registry/configmaps/ns/c{i}"),
                    json!({"metadata":{"name": format!("c{i}")}, "data": {"i": i.to_string()}}),
                )
                .await
                .unwrap();
            }
            s.update("/registry/configmaps/ns/c1", |mut o| {
                o["data"]["i"] = json!("changed");
                Ok::<_, StoreError>(o)
            })
            .await
            .unwrap();
            s.delete("/registry/configmaps/ns/c3", |_| Ok::<_, StoreError>(()))
                .await
                .unwrap();
            s.create("/registry/pods/ns/p", json!({"metadata":{"name":"p"}}))
                .await
                .unwrap();
            // Every read sees the last write at once, and the list's revision is it.
            let (items, rv) = s.list_shared("/registry/configmaps/ns/");
            assert_eq!(rv, s.revision());
            assert_eq!(rv, 8);
            let names: Vec<&str> = items
                .iter()
                .map(|o| o["metadata"]["name"].as_str().unwrap())
                .collect();
            assert_eq!(names, ["c0", "c1", "c2", "c4"]);
            assert_eq!(
                s.get_shared("/registry/configmaps/ns/c1").unwrap()["data"]["i"],
                "changed"
            );
            assert!(s.get("/registry/configmaps/ns/c3").unwrap().is_none());
            assert_eq!(s.object_usage().0, 5);
            s.list("/registry/").unwrap().0
        };
        let s = Store::open_sled(dir.path()).unwrap();
        let (after, rv) = s.list("/registry/").unwrap();
        assert_eq!(after, before);
        assert_eq!(rv, 8);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn callers_change_their_copies_not_the_store() {
        let (_d, s) = store();
        s.create(
            "/registry/configmaps/ns/a",
            json!({"metadata":{"name":"a"}}),
        )
        .await
        .unwrap();
        let mut copy = s.get("/registry/configmaps/ns/a").unwrap().unwrap();
        copy["data"] = json!({"x": "y"});
        let (mut listed, _) = s.list("/registry/configmaps/").unwrap();
        listed[0]["data"] = json!({"x": "z"});
        assert!(
            s.get_shared("/registry/configmaps/ns/a")
                .unwrap()
                .get("data")
                .is_none()
        );
    }

    #[test]
    fn only_the_version_may_differ_in_a_write_that_is_skipped() {
        let a = json!({"metadata":{"name":"a","resourceVersion":"1","labels":{"x":"1"}},"data":{"k":"v"}});
        let same = json!({"data":{"k":"v"},"metadata":{"labels":{"x":"1"},"name":"a","resourceVersion":"9"}});
        let no_rv = json!({"metadata":{"name":"a","labels":{"x":"1"}},"data":{"k":"v"}});
        assert!(same_but_version(&a, &same));
        assert!(same_but_version(&a, &no_rv));
        let changed = [
            json!({"metadata":{"name":"a","resourceVersion":"1","labels":{"x":"2"}},"data":{"k":"v"}}),
            json!({"metadata":{"name":"a","resourceVersion":"1","labels":{"x":"1"}},"data":{"k":"w"}}),
            json!({"metadata":{"name":"a","resourceVersion":"1","labels":{"x":"1"}}}),
            json!({"metadata":{"name":"a","resourceVersion":"1","labels":{"x":"1"}},"data":{"k":"v"},"extra":1}),
            json!({"metadata":{"name":"a","resourceVersion":"1","labels":{"x":"1"},"uid":"u"},"data":{"k":"v"}}),
            json!({"data":{"k":"v"}}),
        ];
        for c in changed {
            assert!(!same_but_version(&a, &c), "{c}");
            assert!(!same_but_version(&c, &a), "{c}");
        }
    }
}
