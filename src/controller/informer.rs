//! Shared informers: kube-runtime's watcher (list, then watch from the list's
//! resourceVersion, resume from the last version seen after a dropped stream, bookmarks,
//! relist on 410, back-off on errors) feeding an indexed cache that every controller of
//! the process reads, and a change feed per subscriber.
//!
//! One deliberate addition to kube-runtime's watcher: when a *watch request* is answered
//! with HTTP 410 (rather than a 200 stream whose first event is an ERROR with code 410,
//! which is what upstream's API server sends and what kube-runtime expects), the watcher
//! would retry the same expired version forever; client-go's reflector relists instead,
//! and so does this informer (with a warning naming the server's deviation).

use std::collections::{BTreeSet, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use std::borrow::Cow;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use kube_client::Api;
use kube_client::core::{PartialObjectMeta, Resource};
use kube_runtime::WatchStreamExt;
use kube_runtime::watcher;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Where an object lives: namespace ("" for cluster-scoped objects) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// The namespace, empty for cluster-scoped kinds.
    pub namespace: String,
    /// The name.
    pub name: String,
}

impl ObjectKey {
    /// The key of `obj`.
    pub fn of<K: Resource>(obj: &K) -> Self {
        let meta = obj.meta();
        ObjectKey {
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
        }
    }

    /// The key of a namespaced object.
    pub fn new(namespace: &str, name: &str) -> Self {
        ObjectKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// What happened to a cached object, as subscribers are told.
#[derive(Debug)]
pub enum Change<K> {
    /// Created, changed, or (after a relist) seen anew.
    Applied(Arc<K>),
    /// Deleted (also: gone from a relist after a missed DELETED event).
    Deleted(Arc<K>),
}

impl<K> Clone for Change<K> {
    fn clone(&self) -> Self {
        match self {
            Change::Applied(o) => Change::Applied(o.clone()),
            Change::Deleted(o) => Change::Deleted(o.clone()),
        }
    }
}

impl<K> Change<K> {
    /// The object concerned.
    pub fn object(&self) -> &Arc<K> {
        match self {
            Change::Applied(o) | Change::Deleted(o) => o,
        }
    }
}

/// An index of the cache: a name and the values an object is filed under.
pub struct Indexer<K> {
    name: &'static str,
    values: fn(&K) -> Vec<String>,
}

impl<K> Indexer<K> {
    /// An index named `name` filing each object under `values(obj)`.
    pub const fn new(name: &'static str, values: fn(&K) -> Vec<String>) -> Self {
        Indexer { name, values }
    }
}

/// Index name: objects by namespace.
pub const BY_NAMESPACE: &str = "namespace";
/// Index name: objects by the uid of each owner reference.
pub const BY_OWNER: &str = "owner";
/// Index name: pods by `spec.nodeName`.
pub const BY_NODE: &str = "node";

/// Files objects under their namespace.
pub fn by_namespace<K: Resource>() -> Indexer<K> {
    Indexer::new(BY_NAMESPACE, |o: &K| {
        o.meta().namespace.clone().into_iter().collect()
    })
}

/// Files objects under the uid of each of their owners.
pub fn by_owner<K: Resource>() -> Indexer<K> {
    Indexer::new(BY_OWNER, |o: &K| {
        o.meta()
            .owner_references
            .iter()
            .flatten()
            .map(|r| r.uid.clone())
            .collect()
    })
}

/// Files pods under the node they are bound to.
pub fn by_node() -> Indexer<k8s_openapi::api::core::v1::Pod> {
    Indexer::new(BY_NODE, |p| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty())
            .into_iter()
            .collect()
    })
}

/// Whether an informer's cache holds a complete list yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncState {
    /// The first list has not completed.
    Pending,
    /// The cache has held a complete list at least once.
    Synced,
    /// The first list failed, with the server's message (it is being retried).
    Failing(String),
}

struct Inner<K> {
    objects: HashMap<ObjectKey, Arc<K>>,
    indexers: Vec<Indexer<K>>,
    /// Per indexer: value → keys filed under it.
    indexes: Vec<HashMap<String, BTreeSet<ObjectKey>>>,
    /// The objects of a relist in progress (between `Init` and `InitDone`).
    relist: Option<HashMap<ObjectKey, Arc<K>>>,
}

impl<K: Resource> Inner<K> {
    fn unindex(&mut self, key: &ObjectKey, obj: &K) {
        for (i, ix) in self.indexers.iter().enumerate() {
            for v in (ix.values)(obj) {
                if let Some(set) = self.indexes[i].get_mut(&v) {
                    set.remove(key);
                    if set.is_empty() {
                        self.indexes[i].remove(&v);
                    }
                }
            }
        }
    }

    fn index(&mut self, key: &ObjectKey, obj: &K) {
        for (i, ix) in self.indexers.iter().enumerate() {
            for v in (ix.values)(obj) {
                self.indexes[i].entry(v).or_default().insert(key.clone());
            }
        }
    }

    fn insert(&mut self, obj: Arc<K>) -> Option<Arc<K>> {
        let key = ObjectKey::of(obj.as_ref());
        let old = self.objects.insert(key.clone(), obj.clone());
        if let Some(o) = &old {
            self.unindex(&key, o);
        }
        self.index(&key, &obj);
        old
    }

    fn remove(&mut self, key: &ObjectKey) -> Option<Arc<K>> {
        let old = self.objects.remove(key)?;
        self.unindex(key, &old);
        Some(old)
    }
}

/// The cache an informer keeps: every object of its list/watch, readable by key or by
/// index from any task.
pub struct Cache<K> {
    inner: Arc<RwLock<Inner<K>>>,
    sync: tokio::sync::watch::Receiver<SyncState>,
}

impl<K> Clone for Cache<K> {
    fn clone(&self) -> Self {
        Cache {
            inner: self.inner.clone(),
            sync: self.sync.clone(),
        }
    }
}

fn same_version<K: Resource>(a: &K, b: &K) -> bool {
    a.meta().resource_version.is_some() && a.meta().resource_version == b.meta().resource_version
}

impl<K: Resource> Cache<K> {
    fn new(indexers: Vec<Indexer<K>>) -> (Self, tokio::sync::watch::Sender<SyncState>) {
        let (tx, rx) = tokio::sync::watch::channel(SyncState::Pending);
        let indexes = indexers.iter().map(|_| HashMap::new()).collect();
        let inner = Inner {
            objects: HashMap::new(),
            indexers,
            indexes,
            relist: None,
        };
        (
            Cache {
                inner: Arc::new(RwLock::new(inner)),
                sync: rx,
            },
            tx,
        )
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner<K>> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner<K>> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached object at `key`.
    pub fn get(&self, key: &ObjectKey) -> Option<Arc<K>> {
        self.read().objects.get(key).cloned()
    }

    /// Every cached object.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.read().objects.values().cloned().collect()
    }

    /// How many objects are cached.
    pub fn len(&self) -> usize {
        self.read().objects.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The objects filed under `value` in the index `index` (empty for an unknown index).
    pub fn by_index(&self, index: &str, value: &str) -> Vec<Arc<K>> {
        let inner = self.read();
        let Some(i) = inner.indexers.iter().position(|ix| ix.name == index) else {
            return Vec::new();
        };
        inner.indexes[i]
            .get(value)
            .into_iter()
            .flatten()
            .filter_map(|k| inner.objects.get(k).cloned())
            .collect()
    }

    /// Whether the cache holds a complete list (its first list has arrived).
    pub fn is_synced(&self) -> bool {
        *self.sync.borrow() == SyncState::Synced
    }

    /// Waits until the cache holds a complete list, for at most `timeout`. Fails with the
    /// server's message if the list is being refused (e.g. 403), or on timeout.
    pub async fn wait_synced(&self, timeout: Duration) -> Result<(), String> {
        let mut rx = self.sync.clone();
        let waited = tokio::time::timeout(timeout, async {
            loop {
                match &*rx.borrow_and_update() {
                    SyncState::Synced => return Ok(()),
                    SyncState::Failing(m) => return Err(m.clone()),
                    SyncState::Pending => {}
                }
                if rx.changed().await.is_err() {
                    return Err("the informer stopped".to_string());
                }
            }
        })
        .await;
        waited.unwrap_or_else(|_| Err(format!("no complete list within {timeout:?}")))
    }

    /// Applies one watcher event; returns what subscribers must be told.
    fn apply(&self, event: watcher::Event<K>) -> Vec<Change<K>> {
        let mut inner = self.write();
        match event {
            watcher::Event::Init => {
                inner.relist = Some(HashMap::new());
                Vec::new()
            }
            watcher::Event::InitApply(obj) => {
                let key = ObjectKey::of(&obj);
                inner
                    .relist
                    .get_or_insert_with(HashMap::new)
                    .insert(key, Arc::new(obj));
                Vec::new()
            }
            watcher::Event::InitDone => {
                let fresh = inner.relist.take().unwrap_or_default();
                let mut changes = Vec::new();
                let gone: Vec<ObjectKey> = inner
                    .objects
                    .keys()
                    .filter(|k| !fresh.contains_key(*k))
                    .cloned()
                    .collect();
                for key in gone {
                    if let Some(old) = inner.remove(&key) {
                        changes.push(Change::Deleted(old));
                    }
                }
                for (_, obj) in fresh {
                    let unchanged = inner
                        .objects
                        .get(&ObjectKey::of(obj.as_ref()))
                        .is_some_and(|old| same_version(old.as_ref(), obj.as_ref()));
                    if !unchanged {
                        inner.insert(obj.clone());
                        changes.push(Change::Applied(obj));
                    }
                }
                changes
            }
            watcher::Event::Apply(obj) => {
                let obj = Arc::new(obj);
                inner.insert(obj.clone());
                vec![Change::Applied(obj)]
            }
            watcher::Event::Delete(obj) => {
                let key = ObjectKey::of(&obj);
                let old = inner.remove(&key).unwrap_or_else(|| Arc::new(obj));
                vec![Change::Deleted(old)]
            }
        }
    }
}

impl<D> Informer<PartialObjectMeta<D>>
where
    D: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    D::DynamicType: Clone + Send + Sync,
    PartialObjectMeta<D>: Resource + Clone + DeserializeOwned + Debug + Send + Sync,
{
    /// An informer of only the metadata of `api`'s objects (kube-client asks for
    /// `PartialObjectMetadata` lists and watch events), kept without their managed
    /// fields: the garbage collector's monitors, which must stay small.
    pub fn metadata(
        api: Api<PartialObjectMeta<D>>,
        config: watcher::Config,
        what: String,
        indexers: Vec<Indexer<PartialObjectMeta<D>>>,
    ) -> Self {
        let source: StreamSource<PartialObjectMeta<D>> = Box::new(move |c| {
            watcher(api.clone(), c)
                .modify(|m: &mut PartialObjectMeta<D>| m.metadata.managed_fields = None)
                .boxed()
        });
        Self::with_source(source, config, Cow::Owned(what), indexers)
    }
}

/// The status a kube error carries, if it is an API error.
pub fn api_status(e: &kube_client::Error) -> Option<&kube_client::core::Status> {
    match e {
        kube_client::Error::Api(s) => Some(s),
        _ => None,
    }
}

/// Starts one list/watch stream (a fresh one on each relist).
type StreamSource<K> = Box<
    dyn Fn(watcher::Config) -> BoxStream<'static, Result<watcher::Event<K>, watcher::Error>>
        + Send
        + Sync,
>;

/// One list/watch of one kind, its cache and its subscribers.
pub struct Informer<K: Resource> {
    source: StreamSource<K>,
    config: watcher::Config,
    what: Cow<'static, str>,
    cache: Cache<K>,
    sync: tokio::sync::watch::Sender<SyncState>,
    subscribers: Vec<mpsc::Sender<Change<K>>>,
}

/// How many changes a subscriber may have unread before the informer waits for it.
const FEED_DEPTH: usize = 256;

impl<K> Informer<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    /// An informer of `api` with `config` (selectors, timeout), indexed by `indexers`;
    /// `what` names it in logs (`"pods"`, `"nodes"`).
    pub fn new(
        api: Api<K>,
        config: watcher::Config,
        what: &'static str,
        indexers: Vec<Indexer<K>>,
    ) -> Self {
        let source: StreamSource<K> = Box::new(move |c| watcher(api.clone(), c).boxed());
        Self::with_source(source, config, Cow::Borrowed(what), indexers)
    }

    fn with_source(
        source: StreamSource<K>,
        config: watcher::Config,
        what: Cow<'static, str>,
        indexers: Vec<Indexer<K>>,
    ) -> Self {
        let (cache, sync) = Cache::new(indexers);
        Informer {
            source,
            config,
            what,
            cache,
            sync,
            subscribers: Vec::new(),
        }
    }

    /// The cache (shared: clones read the same objects).
    pub fn cache(&self) -> Cache<K> {
        self.cache.clone()
    }

    /// A feed of every change from now on (register before [`Informer::run`]).
    pub fn subscribe(&mut self) -> mpsc::Receiver<Change<K>> {
        let (tx, rx) = mpsc::channel(FEED_DEPTH);
        self.subscribers.push(tx);
        rx
    }

    /// Lists, watches and feeds until shutdown.
    pub async fn run(self, shutdown: CancellationToken) {
        let span = tracing::debug_span!("informer_to_apiserver", kind = %self.what);
        tracing::Instrument::instrument(
            async move {
                let mut relists: u32 = 0;
                'relist: loop {
                    let mut stream = (self.source)(self.config.clone())
                        .default_backoff()
                        .boxed();
                    loop {
                        let next = tokio::select! {
                            _ = shutdown.cancelled() => return,
                            n = stream.next() => n,
                        };
                        let Some(item) = next else { continue 'relist };
                        match item {
                            Ok(event) => {
                                let done = matches!(event, watcher::Event::InitDone);
                                for change in self.cache.apply(event) {
                                    self.feed(change).await;
                                }
                                if done {
                                    relists = 0;
                                    self.sync.send_replace(SyncState::Synced);
                                }
                            }
                            Err(watcher::Error::WatchStartFailed(e))
                                if api_status(&e).is_some_and(|s| s.code == 410) =>
                            {
                                tracing::warn!(
                                    kind = %self.what,
                                    error = %e,
                                    "the API server answered a watch with HTTP 410 instead of a 410 ERROR event; relisting"
                                );
                                relists = relists.saturating_add(1);
                                let pause = Duration::from_millis(100)
                                    .saturating_mul(2u32.saturating_pow(relists.min(7)));
                                tokio::select! {
                                    _ = shutdown.cancelled() => return,
                                    _ = tokio::time::sleep(pause) => continue 'relist,
                                }
                            }
                            Err(e) => self.failed(e),
                        }
                    }
                }
            },
            span,
        )
        .await;
    }

    fn failed(&self, e: watcher::Error) {
        let status = match &e {
            watcher::Error::InitialListFailed(k)
            | watcher::Error::WatchStartFailed(k)
            | watcher::Error::WatchFailed(k) => api_status(k).cloned(),
            watcher::Error::WatchError(s) => Some((**s).clone()),
            _ => None,
        };
        match status {
            Some(s) if s.code == 403 || s.code == 401 => {
                tracing::warn!(kind = %self.what, code = s.code, message = %s.message, "list/watch refused");
                if *self.sync.borrow() != SyncState::Synced {
                    self.sync.send_replace(SyncState::Failing(format!(
                        "{} {}: {}",
                        s.code, s.reason, s.message
                    )));
                }
            }
            _ => tracing::debug!(kind = %self.what, error = %e, "watch error; retrying"),
        }
    }

    async fn feed(&self, change: Change<K>) {
        for s in &self.subscribers {
            // A subscriber that went away (its controller stopped) is simply skipped.
            let _ = s.send(change.clone()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Pod, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    fn pod(name: &str, rv: &str, node: Option<&str>, owner: Option<&str>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                resource_version: Some(rv.into()),
                owner_references: owner.map(|u| {
                    vec![OwnerReference {
                        uid: u.into(),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: node.map(String::from),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn names(v: Vec<Arc<Pod>>) -> Vec<String> {
        let mut n: Vec<String> = v
            .iter()
            .map(|p| p.metadata.name.clone().unwrap_or_default())
            .collect();
        n.sort();
        n
    }

    #[test]
    fn indexes_follow_changes_and_relists_report_what_vanished() {
        let (cache, _tx) = Cache::new(vec![by_namespace(), by_owner(), by_node()]);
        cache.apply(watcher::Event::Init);
        cache.apply(watcher::Event::InitApply(pod(
            "a",
            "1",
            Some("n1"),
            Some("u1"),
        )));
        cache.apply(watcher::Event::InitApply(pod("b", "2", None, Some("u1"))));
        let first = cache.apply(watcher::Event::InitDone);
        assert_eq!(first.len(), 2);
        assert_eq!(names(cache.by_index(BY_NODE, "n1")), ["a"]);
        assert_eq!(names(cache.by_index(BY_OWNER, "u1")), ["a", "b"]);
        assert_eq!(names(cache.by_index(BY_NAMESPACE, "ns")), ["a", "b"]);

        // b moves to n2; a is deleted while the watch was down: the relist tells.
        cache.apply(watcher::Event::Init);
        cache.apply(watcher::Event::InitApply(pod("b", "5", Some("n2"), None)));
        let changes = cache.apply(watcher::Event::InitDone);
        let mut seen: Vec<String> = changes
            .iter()
            .map(|c| match c {
                Change::Applied(p) => {
                    format!("applied {}", p.metadata.name.as_deref().unwrap_or(""))
                }
                Change::Deleted(p) => {
                    format!("deleted {}", p.metadata.name.as_deref().unwrap_or(""))
                }
            })
            .collect();
        seen.sort();
        assert_eq!(seen, ["applied b", "deleted a"]);
        assert!(cache.by_index(BY_NODE, "n1").is_empty());
        assert_eq!(names(cache.by_index(BY_NODE, "n2")), ["b"]);
        assert!(cache.by_index(BY_OWNER, "u1").is_empty());

        // A relist that finds nothing new reports nothing.
        cache.apply(watcher::Event::Init);
        cache.apply(watcher::Event::InitApply(pod("b", "5", Some("n2"), None)));
        assert!(cache.apply(watcher::Event::InitDone).is_empty());

        let gone = cache.apply(watcher::Event::Delete(pod("b", "6", Some("n2"), None)));
        assert_eq!(gone.len(), 1);
        assert!(cache.is_empty());
        assert!(cache.by_index(BY_NODE, "n2").is_empty());
    }
}
