//! The object store: JSON objects keyed like etcd (`/registry/<resource>/<ns>/<name>`),
//! a cluster-wide monotonically increasing `resourceVersion`, optimistic concurrency,
//! and a watch fan-out with a bounded history for resuming watches.
//!
//! The persistence engine sits behind the small [`Backend`] trait ([`sled_backend`] is
//! the one in use), so it can be swapped without touching the API server.

pub mod sled_backend;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::broadcast;

/// How many past events are kept for watches that resume from a resourceVersion.
const HISTORY: usize = 50_000;

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

/// One change, as watches see it.
#[derive(Debug, Clone)]
pub struct Event {
    /// What happened.
    pub kind: EventType,
    /// The object's key.
    pub key: Arc<str>,
    /// The revision of this change.
    pub revision: u64,
    /// The object after the change (for deletes: its last state, with the new revision).
    pub object: Arc<Value>,
    /// The object before the change, if any (lets watchers with selectors see transitions).
    pub previous: Option<Arc<Value>>,
}

struct WriteState {
    revision: u64,
    history: VecDeque<Event>,
    /// Oldest revision from which a watch can resume.
    oldest: u64,
}

/// The store shared by the API server's handlers.
pub struct Store {
    backend: Box<dyn Backend>,
    state: Mutex<WriteState>,
    events: broadcast::Sender<Event>,
}

/// A watch subscription: the backlog of events after the requested revision, then live events.
pub struct Subscription {
    /// Events already past, in order.
    pub backlog: Vec<Event>,
    /// Live events (may report `Lagged` if the consumer is too slow; then the watch ends).
    pub live: broadcast::Receiver<Event>,
}

impl Store {
    /// Opens a store over `backend`.
    pub fn new(backend: Box<dyn Backend>) -> Result<Self, StoreError> {
        let revision = backend.revision()?;
        let (events, _) = broadcast::channel(16_384);
        Ok(Store {
            backend,
            state: Mutex::new(WriteState {
                revision,
                history: VecDeque::new(),
                oldest: revision,
            }),
            events,
        })
    }

    /// Opens (or creates) the sled-backed store in `dir`.
    pub fn open_sled(dir: &std::path::Path) -> Result<Self, StoreError> {
        Store::new(Box::new(sled_backend::SledBackend::open(dir)?))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WriteState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current revision of the whole store.
    pub fn revision(&self) -> u64 {
        self.lock().revision
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

    /// The single write path: serialised, revision-stamped, recorded in the history and
    /// published to watchers. Returns the stored object (None for a delete).
    fn mutate<E: From<StoreError>>(
        &self,
        key: &str,
        f: impl FnOnce(Option<Value>) -> Result<Option<Value>, E>,
    ) -> Result<Option<Value>, E> {
        let mut state = self.lock();
        let current: Option<Value> = match self.backend.get(key)? {
            Some(b) => Some(serde_json::from_slice(&b).map_err(StoreError::from)?),
            None => None,
        };
        let existed = current.is_some();
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
                let bytes = serde_json::to_vec(&obj).map_err(StoreError::from)?;
                let kind = if existed {
                    EventType::Modified
                } else {
                    EventType::Added
                };
                (kind, obj, Some(bytes))
            }
            None => {
                let mut obj = previous.clone().ok_or(StoreError::NotFound)?;
                set_rv(&mut obj, revision);
                (EventType::Deleted, obj, None)
            }
        };
        self.backend.write(key, bytes.as_deref(), revision)?;
        state.revision = revision;
        let event = Event {
            kind,
            key: Arc::from(key),
            revision,
            object: Arc::new(object.clone()),
            previous: previous.map(Arc::new),
        };
        state.history.push_back(event.clone());
        while state.history.len() > HISTORY {
            if let Some(old) = state.history.pop_front() {
                state.oldest = old.revision;
            }
        }
        let _ = self.events.send(event);
        Ok(if kind == EventType::Deleted {
            None
        } else {
            Some(object)
        })
    }

    /// Subscribes to changes under `prefix` strictly after revision `after`. Fails with
    /// [`StoreError::Expired`] when that part of the history is no longer kept.
    pub fn watch(&self, prefix: &str, after: u64) -> Result<Subscription, StoreError> {
        let state = self.lock();
        if after < state.oldest {
            return Err(StoreError::Expired {
                requested: after,
                oldest: state.oldest,
            });
        }
        let backlog = state
            .history
            .iter()
            .filter(|e| e.revision > after && e.key.starts_with(prefix))
            .cloned()
            .collect();
        let live = self.events.subscribe();
        drop(state);
        Ok(Subscription { backlog, live })
    }
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
            let sub = s.watch("/registry/pods/", 0).unwrap();
            assert_eq!(sub.backlog.len(), 1);
            let mut live = sub.live;
            s.delete("/registry/pods/ns/a", |_| Ok::<_, StoreError>(()))
                .await
                .unwrap();
            let ev = live.recv().await.unwrap();
            assert_eq!(ev.kind, EventType::Deleted);
            assert_eq!(ev.revision, 2);
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
}
