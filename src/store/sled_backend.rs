//! The sled implementation of [`Backend`]: one tree for objects, the revision counter
//! stored beside them and written in the same atomic batch.

use std::path::Path;

use super::{Backend, StoreError};

const REVISION_KEY: &[u8] = b"\0revision";

/// sled's page cache. Its default is 1 GiB, which a burst of large objects fills and
/// never gives back; the working set of a sandbox cluster is a few megabytes, and reads
/// that miss the cache are served from the OS page cache anyway.
const CACHE_CAPACITY: u64 = 8 * 1024 * 1024;

/// Values above this size have this thread's deferred frees handed over at once (see
/// [`release_deferred`]).
const LARGE_VALUE: usize = 64 * 1024;

/// Frees what sled has deferred. sled replaces a page's in-memory versions lock-free and
/// frees the old ones through epoch-based reclamation: they wait in the writing thread's
/// local garbage bag (64 entries) until that thread does enough further work, so after a
/// burst of megabyte values tens of megabytes stay allocated for minutes whatever
/// `cache_capacity` says. Flushing a guard hands the bag to the global queue and
/// collects; a few rounds advance the epoch far enough for the collection to free it.
pub fn release_deferred() {
    for _ in 0..4 {
        sled::pin().flush();
    }
}

/// A sled database holding the cluster's objects.
pub struct SledBackend {
    db: sled::Db,
    objects: sled::Tree,
}

fn err(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SledBackend {
    /// Opens or creates the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_CAPACITY)
            .flush_every_ms(Some(500))
            .open()
            .map_err(err)?;
        let objects = db.open_tree("objects").map_err(err)?;
        Ok(SledBackend { db, objects })
    }
}

impl Backend for SledBackend {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.objects.get(key).map_err(err)?.map(|v| v.to_vec()))
    }

    fn scan_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.objects
            .scan_prefix(prefix)
            .filter(|r| !matches!(r, Ok((k, _)) if k.as_ref() == REVISION_KEY))
            .map(|r| {
                let (k, v) = r.map_err(err)?;
                Ok((String::from_utf8_lossy(&k).into_owned(), v.to_vec()))
            })
            .collect()
    }

    fn write(&self, key: &str, value: Option<&[u8]>, revision: u64) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        match value {
            Some(v) => batch.insert(key.as_bytes(), v),
            None => batch.remove(key.as_bytes()),
        }
        batch.insert(REVISION_KEY, &revision.to_be_bytes());
        self.objects.apply_batch(batch).map_err(err)?;
        if value.is_some_and(|v| v.len() >= LARGE_VALUE) {
            // Hand this thread's garbage (the replaced version) over now; the trim after
            // the burst frees it (release_hook).
            sled::pin().flush();
        }
        Ok(())
    }

    fn revision(&self) -> Result<u64, StoreError> {
        match self.objects.get(REVISION_KEY).map_err(err)? {
            Some(v) if v.len() == 8 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&v);
                Ok(u64::from_be_bytes(b))
            }
            Some(_) => Err(StoreError::Backend("corrupt revision counter".into())),
            None => Ok(0),
        }
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(err)
    }

    fn release_hook(&self) -> Option<fn()> {
        Some(release_deferred)
    }
}
