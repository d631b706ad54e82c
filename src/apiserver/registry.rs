//! The registry of served kinds, owned by the running API server.
//!
//! Requests read an immutable [`Snapshot`]; adding or removing a kind (CustomResource
//! Definitions will) publishes a new snapshot with the next generation. Discovery and
//! OpenAPI documents are derived from a snapshot and cached in it, so they are computed
//! once per generation and a change is visible to the next request.

use std::sync::{Arc, OnceLock, RwLock};

use serde_json::Value;

use super::kinds::{self, Kind, ResourceDef};

/// What discovery and OpenAPI derive from one snapshot, computed on first use.
#[derive(Default)]
pub struct Derived {
    /// Aggregated discovery for `/api` and `/apis` (v2 shape).
    pub aggregated: OnceLock<(Value, Value)>,
    /// The OpenAPI documents.
    pub openapi: OnceLock<super::openapi::OpenApi>,
    /// The Swagger 2.0 document.
    pub openapi_v2: OnceLock<Value>,
    /// `/openapi/v2` in protobuf.
    pub openapi_v2_protobuf: OnceLock<bytes::Bytes>,
}

/// The kinds served at one moment.
pub struct Snapshot {
    /// Increases with every change.
    pub generation: u64,
    /// The kinds, core first, in discovery order.
    pub kinds: Vec<Kind>,
    /// Documents derived from this snapshot.
    pub derived: Derived,
}

impl Snapshot {
    /// The kind served at `group`/`version`/`plural`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&Kind> {
        self.kinds.iter().find(|k| {
            let d = k.def();
            d.group == group && d.version == version && d.plural == plural
        })
    }

    /// The kind of `group` with `kind`, in its first served version.
    pub fn find_kind(&self, group: &str, kind: &str) -> Option<&Kind> {
        self.kinds.iter().find(|k| {
            let d = k.def();
            d.group == group && d.kind == kind
        })
    }

    /// The resource definitions, in order.
    pub fn defs(&self) -> impl Iterator<Item = &ResourceDef> {
        self.kinds.iter().map(|k| k.def())
    }

    /// The groups served, in preference order, with their versions.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for r in self.defs() {
            match out.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, versions)) => {
                    if !versions.contains(&r.version) {
                        versions.push(r.version.clone());
                    }
                }
                None => out.push((r.group.clone(), vec![r.version.clone()])),
            }
        }
        out
    }
}

/// Why a registry change was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    /// Another kind already serves this group, version and plural.
    #[error("resource {0} is already served")]
    AlreadyServed(String),
    /// No kind serves this group, version and plural.
    #[error("resource {0} is not served")]
    NotServed(String),
}

/// The served kinds, swapped atomically as a whole.
pub struct Registry {
    current: RwLock<Arc<Snapshot>>,
}

impl Registry {
    /// A registry with `kinds`.
    pub fn new(kinds: Vec<Kind>) -> Self {
        Registry {
            current: RwLock::new(Arc::new(Snapshot {
                generation: 1,
                kinds,
                derived: Derived::default(),
            })),
        }
    }

    /// A registry with every built-in kind.
    pub fn builtin() -> Self {
        Self::new(kinds::builtins())
    }

    /// The kinds served now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn change(
        &self,
        edit: impl FnOnce(&mut Vec<Kind>) -> Result<(), RegistryError>,
    ) -> Result<u64, RegistryError> {
        let mut cur = self.current.write().unwrap_or_else(|e| e.into_inner());
        let mut kinds = cur.kinds.clone();
        edit(&mut kinds)?;
        let generation = cur.generation + 1;
        *cur = Arc::new(Snapshot {
            generation,
            kinds,
            derived: Derived::default(),
        });
        Ok(generation)
    }

    /// Serves `kind` from now on; returns the new generation.
    pub fn add(&self, kind: Kind) -> Result<u64, RegistryError> {
        self.change(|kinds| {
            let d = kind.def();
            if kinds.iter().any(|k| {
                let e = k.def();
                e.group == d.group && e.version == d.version && e.plural == d.plural
            }) {
                return Err(RegistryError::AlreadyServed(format!(
                    "{}/{}",
                    d.api_version(),
                    d.plural
                )));
            }
            kinds.push(kind);
            Ok(())
        })
    }

    /// Stops serving `group`/`version`/`plural`; returns the new generation.
    pub fn remove(&self, group: &str, version: &str, plural: &str) -> Result<u64, RegistryError> {
        self.change(|kinds| {
            let before = kinds.len();
            kinds.retain(|k| {
                let d = k.def();
                !(d.group == group && d.version == version && d.plural == plural)
            });
            if kinds.len() == before {
                let gv = if group.is_empty() {
                    version.to_string()
                } else {
                    format!("{group}/{version}")
                };
                return Err(RegistryError::NotServed(format!("{gv}/{plural}")));
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::kinds::Strategy;

    struct Widgets(ResourceDef);

    impl Strategy for Widgets {
        fn def(&self) -> &ResourceDef {
            &self.0
        }
    }

    #[test]
    fn keys_look_like_etcd() {
        let reg = Registry::builtin();
        let snap = reg.snapshot();
        let pods = snap.find("", "v1", "pods").unwrap().def();
        assert_eq!(pods.key(Some("dev"), "web"), "/registry/pods/dev/web");
        assert_eq!(pods.prefix(None), "/registry/pods/");
        let ns = snap.find("", "v1", "namespaces").unwrap().def();
        assert_eq!(ns.key(Some("ignored"), "dev"), "/registry/namespaces/dev");
        assert_eq!(
            snap.find("coordination.k8s.io", "v1", "leases")
                .unwrap()
                .def()
                .qualified(),
            "leases.coordination.k8s.io"
        );
        let gs = snap.groups();
        assert_eq!(gs[0].0, "");
        assert!(gs.iter().any(|(g, _)| g == "events.k8s.io"));
    }

    #[test]
    fn kinds_come_and_go_with_new_generations() {
        let reg = Registry::builtin();
        let g0 = reg.snapshot().generation;
        let w = ResourceDef::new("example.com", "v1", "Widget", "widgets");
        let g1 = reg.add(Arc::new(Widgets(w.clone()))).unwrap();
        assert_eq!(g1, g0 + 1);
        assert!(
            reg.snapshot()
                .find("example.com", "v1", "widgets")
                .is_some()
        );
        assert!(matches!(
            reg.add(Arc::new(Widgets(w))),
            Err(RegistryError::AlreadyServed(_))
        ));
        let old = reg.snapshot();
        reg.remove("example.com", "v1", "widgets").unwrap();
        assert!(
            reg.snapshot()
                .find("example.com", "v1", "widgets")
                .is_none()
        );
        // A request that took the old snapshot still sees it.
        assert!(old.find("example.com", "v1", "widgets").is_some());
        assert!(reg.remove("example.com", "v1", "widgets").is_err());
    }
}
