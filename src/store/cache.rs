//! The store's in-memory copy of every object, as upstream's watch cache keeps one: gets
//! and lists are answered from here, never from the persistence engine, and hand out
//! shared decoded objects, so a LIST parses no JSON and copies no object. Each entry also
//! keeps the object's stored JSON, the same bytes the watch window's events hold, so a
//! write never reads the engine back to learn the previous state.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

/// One object: its stored JSON and its decoded form, both shared.
#[derive(Clone)]
pub struct Entry {
    /// The JSON the engine holds (shared with the watch window's events).
    pub bytes: Bytes,
    /// The decoded object (shared with readers).
    pub value: Arc<Value>,
}

/// Every object by key, and the revision they are all current at.
#[derive(Default)]
pub struct Objects {
    map: BTreeMap<Arc<str>, Entry>,
    revision: u64,
}

impl Objects {
    /// An empty cache at `revision`.
    pub fn new(revision: u64) -> Self {
        Objects {
            map: BTreeMap::new(),
            revision,
        }
    }

    /// The revision every object here is current at.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Records that the store has reached `revision`.
    pub fn set_revision(&mut self, revision: u64) {
        self.revision = revision;
    }

    /// Sets (`Some`) or removes (`None`) the object at `key`.
    pub fn put(&mut self, key: Arc<str>, entry: Option<Entry>) {
        match entry {
            Some(e) => {
                self.map.insert(key, e);
            }
            None => {
                self.map.remove(&*key);
            }
        }
    }

    /// The object at `key`.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.map.get(key)
    }

    /// The objects whose keys start with `prefix`, in key order.
    pub fn prefixed<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.map
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(_, e)| e)
    }

    /// How many objects there are.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The bytes of stored JSON held (the decoded objects take a few times that).
    pub fn json_bytes(&self) -> usize {
        self.map.values().map(|e| e.bytes.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(v: Value) -> Option<Entry> {
        Some(Entry {
            bytes: Bytes::from(serde_json::to_vec(&v).unwrap()),
            value: Arc::new(v),
        })
    }

    #[test]
    fn prefixes_select_whole_path_segments_in_key_order() {
        let mut o = Objects::new(0);
        for k in [
            "/registry/pods/b/x",
            "/registry/pods/a/y",
            "/registry/pods/a/x",
            "/registry/podtemplates/a/z",
            "/registry/pods/ab/w",
        ] {
            o.put(Arc::from(k), entry(json!({ "k": k })));
        }
        let keys: Vec<String> = o
            .prefixed("/registry/pods/a/")
            .map(|e| e.value["k"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(keys, ["/registry/pods/a/x", "/registry/pods/a/y"]);
        assert_eq!(o.prefixed("/registry/pods/").count(), 4);
        o.put(Arc::from("/registry/pods/a/x"), None);
        assert_eq!(o.prefixed("/registry/pods/a/").count(), 1);
        assert_eq!(o.len(), 4);
    }
}
