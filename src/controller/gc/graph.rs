//! The garbage collector's graph of owners and dependents (upstream's `uidToNode`), fed
//! by the metadata informers and read by the workers. It only does bookkeeping: every
//! decision that needs the live object is the workers' ([`super::Gc`]), and this module
//! says which objects they must look at after each change.

use std::collections::{BTreeSet, HashMap};

/// The finalizer that makes the collector delete an object's dependents first.
pub const FOREGROUND: &str = "foregroundDeletion";
/// The finalizer that makes the collector remove the object from its dependents' owners.
pub const ORPHAN: &str = "orphan";

/// Where an object is and what it is (upstream's `objectReference`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Identity {
    /// `v1`, `apps/v1`.
    pub api_version: String,
    /// `ConfigMap`.
    pub kind: String,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    /// The name.
    pub name: String,
    /// The uid (the graph's key).
    pub uid: String,
}

impl std::fmt::Display for Identity {
    /// Upstream's wording (`[v1/ConfigMap, namespace: ns, name: a, uid: …]`), used in Events.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}/{}, namespace: {}, name: {}, uid: {}]",
            self.api_version, self.kind, self.namespace, self.name, self.uid
        )
    }
}

/// One entry of `metadata.ownerReferences`, as far as the collector cares.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OwnerRef {
    /// The owner's apiVersion.
    pub api_version: String,
    /// The owner's kind.
    pub kind: String,
    /// The owner's name.
    pub name: String,
    /// The owner's uid.
    pub uid: String,
    /// `blockOwnerDeletion`: a foreground deletion of the owner waits for this dependent.
    pub block: bool,
    /// `controller`.
    pub controller: Option<bool>,
}

/// What an informer event says about an object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    /// The object.
    pub identity: Identity,
    /// Its owner references.
    pub owners: Vec<OwnerRef>,
    /// Whether `deletionTimestamp` is set.
    pub being_deleted: bool,
    /// Its finalizers.
    pub finalizers: Vec<String>,
}

impl Observed {
    fn has(&self, finalizer: &str) -> bool {
        self.finalizers.iter().any(|f| f == finalizer)
    }
}

/// One object of the graph: observed through an informer, or "virtual" (only named as
/// an owner so far, to be verified by the workers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Its identity (for a virtual node: as the first dependent referenced it).
    pub identity: Identity,
    /// Seen through an informer (false: virtual).
    pub observed: bool,
    /// Its owner references.
    pub owners: Vec<OwnerRef>,
    /// The uids of the objects naming it as owner.
    pub dependents: BTreeSet<String>,
    /// `deletionTimestamp` set.
    pub being_deleted: bool,
    /// Being deleted with the `foregroundDeletion` finalizer: its dependents go first.
    pub deleting_dependents: bool,
    /// Being deleted with the `orphan` finalizer.
    pub orphaning: bool,
}

impl Node {
    fn virtual_owner(owner: &OwnerRef, dependent_namespace: &str) -> Self {
        Node {
            identity: Identity {
                api_version: owner.api_version.clone(),
                kind: owner.kind.clone(),
                namespace: dependent_namespace.to_string(),
                name: owner.name.clone(),
                uid: owner.uid.clone(),
            },
            observed: false,
            owners: Vec::new(),
            dependents: BTreeSet::new(),
            being_deleted: false,
            deleting_dependents: false,
            orphaning: false,
        }
    }
}

/// What the workers must do after a graph change.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Work {
    /// Look at this object: collect it, or finish its foreground deletion.
    AttemptToDelete(String),
    /// Orphan this object's dependents, then remove its `orphan` finalizer.
    AttemptToOrphan(String),
    /// Record the `OwnerRefInvalidNamespace` Event on `dependent` about the owner `owner`.
    InvalidNamespace {
        /// The dependent's identity.
        dependent: Box<Identity>,
        /// The owner reference in question, with the dependent's namespace.
        owner: Box<Identity>,
    },
}

/// The graph itself.
#[derive(Debug, Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
}

impl Graph {
    /// The node of `uid`.
    pub fn node(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    /// How many nodes (observed and virtual) the graph holds.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the graph is empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The dependents of `uid` whose reference to it has `blockOwnerDeletion` (they hold
    /// a foreground deletion of `uid`).
    pub fn blocking_dependents(&self, uid: &str) -> Vec<&Node> {
        let Some(node) = self.nodes.get(uid) else {
            return Vec::new();
        };
        node.dependents
            .iter()
            .filter_map(|d| self.nodes.get(d))
            .filter(|d| d.owners.iter().any(|o| o.uid == uid && o.block))
            .collect()
    }

    /// The dependents of `uid`.
    pub fn dependents(&self, uid: &str) -> Vec<&Node> {
        self.nodes
            .get(uid)
            .map(|n| {
                n.dependents
                    .iter()
                    .filter_map(|d| self.nodes.get(d))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// An object was added or changed (upstream's add/update events).
    pub fn observe(&mut self, obj: Observed) -> Vec<Work> {
        let uid = obj.identity.uid.clone();
        let mut work = Vec::new();
        let deleting_dependents = obj.being_deleted && obj.has(FOREGROUND);
        let orphaning = obj.being_deleted && obj.has(ORPHAN);
        let (was_deleting_dependents, was_orphaning, old_owners) = match self.nodes.get(&uid) {
            Some(n) => (n.deleting_dependents, n.orphaning, Some(n.owners.clone())),
            None => (false, false, None),
        };
        match self.nodes.get_mut(&uid) {
            Some(node) => {
                if !node.observed {
                    // A virtual node seen at last: dependents that named it from another
                    // namespace had a wrong reference (the bad-child-first order).
                    node.observed = true;
                    if node.identity != obj.identity {
                        node.identity = obj.identity.clone();
                        let deps: Vec<String> = node.dependents.iter().cloned().collect();
                        for d in deps {
                            if let Some(dep) = self.nodes.get(&d) {
                                if !obj.identity.namespace.is_empty()
                                    && dep.identity.namespace != obj.identity.namespace
                                {
                                    work.push(invalid_namespace(dep, &uid));
                                }
                                work.push(Work::AttemptToDelete(d));
                            }
                        }
                    }
                }
                let node = self.nodes.get_mut(&uid).expect("node present");
                node.identity = obj.identity.clone();
                node.being_deleted = obj.being_deleted;
                node.deleting_dependents = deleting_dependents;
                node.orphaning = orphaning;
            }
            None => {
                self.nodes.insert(
                    uid.clone(),
                    Node {
                        identity: obj.identity.clone(),
                        observed: true,
                        owners: Vec::new(),
                        dependents: BTreeSet::new(),
                        being_deleted: obj.being_deleted,
                        deleting_dependents,
                        orphaning,
                    },
                );
            }
        }
        // Owner references: added ones link to their owners (virtual if unseen),
        // removed or unblocked ones may let a foreground deletion finish.
        let old = old_owners.unwrap_or_default();
        let added: Vec<OwnerRef> = obj
            .owners
            .iter()
            .filter(|o| !old.iter().any(|p| p.uid == o.uid))
            .cloned()
            .collect();
        for gone in old
            .iter()
            .filter(|p| !obj.owners.iter().any(|o| o.uid == p.uid))
        {
            if let Some(owner) = self.nodes.get_mut(&gone.uid) {
                owner.dependents.remove(&uid);
                if gone.block {
                    work.push(Work::AttemptToDelete(gone.uid.clone()));
                }
            }
            self.drop_unneeded_virtual(&gone.uid);
        }
        for now in &obj.owners {
            if let Some(before) = old.iter().find(|p| p.uid == now.uid)
                && before.block
                && !now.block
                && self.nodes.contains_key(&now.uid)
            {
                work.push(Work::AttemptToDelete(now.uid.clone()));
            }
        }
        if let Some(n) = self.nodes.get_mut(&uid) {
            n.owners = obj.owners.clone();
        }
        work.extend(self.add_to_owners(&uid, &added));
        // Transitions into a deletion the collector finishes.
        if orphaning && !was_orphaning {
            work.push(Work::AttemptToOrphan(uid.clone()));
        } else if deleting_dependents && !was_deleting_dependents {
            for d in self.nodes[&uid].dependents.iter() {
                work.push(Work::AttemptToDelete(d.clone()));
            }
            work.push(Work::AttemptToDelete(uid.clone()));
        }
        work
    }

    /// Links `uid` as a dependent of each of `owners` (upstream's `addDependentToOwners`).
    fn add_to_owners(&mut self, uid: &str, owners: &[OwnerRef]) -> Vec<Work> {
        let mut work = Vec::new();
        let Some(dep) = self.nodes.get(uid).cloned() else {
            return work;
        };
        let mut suspicious = false;
        for o in owners {
            match self.nodes.get_mut(&o.uid) {
                None => {
                    let mut owner = Node::virtual_owner(o, &dep.identity.namespace);
                    owner.dependents.insert(uid.to_string());
                    self.nodes.insert(o.uid.clone(), owner);
                    work.push(Work::AttemptToDelete(o.uid.clone()));
                }
                Some(owner) => {
                    owner.dependents.insert(uid.to_string());
                    if suspicious {
                        continue;
                    }
                    let owner_ns = &owner.identity.namespace;
                    if !owner_ns.is_empty() && *owner_ns != dep.identity.namespace {
                        if owner.observed {
                            work.push(invalid_namespace(&dep, &o.uid));
                        }
                        suspicious = true;
                    } else if !matches_coordinates(o, &owner.identity)
                        || (owner_ns.is_empty()
                            && dep.identity.namespace != *owner_ns
                            && !owner.observed)
                    {
                        suspicious = true;
                    }
                }
            }
        }
        if suspicious {
            work.push(Work::AttemptToDelete(uid.to_string()));
        }
        work
    }

    /// A virtual node no dependent names any more goes away.
    fn drop_unneeded_virtual(&mut self, uid: &str) {
        if self
            .nodes
            .get(uid)
            .is_some_and(|n| !n.observed && n.dependents.is_empty())
        {
            self.nodes.remove(uid);
        }
    }

    /// An object is gone (observed delete, or a virtual owner verified absent): its
    /// dependents are looked at, and its owners finishing a foreground deletion too.
    pub fn remove(&mut self, uid: &str) -> Vec<Work> {
        let Some(node) = self.nodes.remove(uid) else {
            return Vec::new();
        };
        let mut work: Vec<Work> = node
            .dependents
            .iter()
            .map(|d| Work::AttemptToDelete(d.clone()))
            .collect();
        if !node.dependents.is_empty() {
            // Dependents still name it: keep it as virtual so they find it absent.
            let mut ghost = Node::virtual_owner(
                &OwnerRef {
                    api_version: node.identity.api_version.clone(),
                    kind: node.identity.kind.clone(),
                    name: node.identity.name.clone(),
                    uid: uid.to_string(),
                    ..Default::default()
                },
                &node.identity.namespace,
            );
            ghost.dependents = node.dependents.clone();
            ghost.observed = false;
            self.nodes.insert(uid.to_string(), ghost);
        }
        for o in &node.owners {
            if let Some(owner) = self.nodes.get_mut(&o.uid) {
                owner.dependents.remove(uid);
                if owner.deleting_dependents {
                    work.push(Work::AttemptToDelete(o.uid.clone()));
                }
            }
            self.drop_unneeded_virtual(&o.uid);
        }
        work
    }

    /// A virtual node verified absent: forgotten once its dependents have been told.
    pub fn forget_virtual(&mut self, uid: &str) -> Vec<Work> {
        match self.nodes.get(uid) {
            Some(n) if !n.observed => {
                let work = n
                    .dependents
                    .iter()
                    .map(|d| Work::AttemptToDelete(d.clone()))
                    .collect();
                self.nodes.remove(uid);
                work
            }
            _ => Vec::new(),
        }
    }
}

/// Whether `r` names the object `id` by the same apiVersion, kind and name.
fn matches_coordinates(r: &OwnerRef, id: &Identity) -> bool {
    r.api_version == id.api_version && r.kind == id.kind && r.name == id.name
}

/// The Event about `dep`'s reference to `owner_uid` naming an owner from elsewhere.
fn invalid_namespace(dep: &Node, owner_uid: &str) -> Work {
    let r = dep
        .owners
        .iter()
        .find(|o| o.uid == owner_uid)
        .cloned()
        .unwrap_or_default();
    Work::InvalidNamespace {
        dependent: Box::new(dep.identity.clone()),
        owner: Box::new(Identity {
            api_version: r.api_version,
            kind: r.kind,
            namespace: dep.identity.namespace.clone(),
            name: r.name,
            uid: r.uid,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ns: &str, name: &str, uid: &str) -> Identity {
        Identity {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: ns.into(),
            name: name.into(),
            uid: uid.into(),
        }
    }

    fn owned(ns: &str, name: &str, uid: &str, owners: &[(&str, &str, bool)]) -> Observed {
        Observed {
            identity: id(ns, name, uid),
            owners: owners
                .iter()
                .map(|(n, u, block)| OwnerRef {
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    name: (*n).into(),
                    uid: (*u).into(),
                    block: *block,
                    controller: None,
                })
                .collect(),
            ..Default::default()
        }
    }

    fn deletes(work: &[Work]) -> Vec<&str> {
        let mut v: Vec<&str> = work
            .iter()
            .filter_map(|w| match w {
                Work::AttemptToDelete(u) => Some(u.as_str()),
                _ => None,
            })
            .collect();
        v.sort();
        v.dedup();
        v
    }

    #[test]
    fn unseen_owners_are_virtual_until_observed() {
        let mut g = Graph::default();
        let w = g.observe(owned("ns", "child", "c", &[("root", "r", true)]));
        assert_eq!(deletes(&w), ["r"], "the virtual owner is verified");
        assert!(!g.node("r").expect("virtual").observed);
        assert_eq!(g.dependents("r").len(), 1);
        let w = g.observe(owned("ns", "root", "r", &[]));
        assert!(w.is_empty(), "same coordinates: nothing to check: {w:?}");
        assert!(g.node("r").expect("observed").observed);
        // The dependent loses its reference: the owner is no longer needed by it.
        g.observe(owned("ns", "child", "c", &[]));
        assert!(g.dependents("r").is_empty());
        assert_eq!(g.len(), 2);
    }

    #[test]
    fn a_removed_owner_sends_its_dependents_to_the_workers() {
        let mut g = Graph::default();
        g.observe(owned("ns", "root", "r", &[]));
        g.observe(owned("ns", "mid", "m", &[("root", "r", true)]));
        g.observe(owned("ns", "leaf", "l", &[("mid", "m", true)]));
        assert_eq!(deletes(&g.remove("r")), ["m"]);
        // m still names r: r stays as a virtual node until m is gone.
        assert!(!g.node("r").expect("ghost").observed);
        assert_eq!(deletes(&g.remove("m")), ["l"]);
        assert!(g.node("r").is_none(), "nobody names r any more");
        assert_eq!(deletes(&g.forget_virtual("m")), ["l"]);
        assert!(g.node("m").is_none());
    }

    #[test]
    fn foreground_deletion_waits_for_blocking_dependents() {
        let mut g = Graph::default();
        g.observe(owned("ns", "root", "r", &[]));
        g.observe(owned("ns", "a", "a", &[("root", "r", true)]));
        g.observe(owned("ns", "b", "b", &[("root", "r", false)]));
        let mut root = owned("ns", "root", "r", &[]);
        root.being_deleted = true;
        root.finalizers = vec![FOREGROUND.into()];
        let w = g.observe(root.clone());
        assert_eq!(deletes(&w), ["a", "b", "r"]);
        assert!(g.node("r").expect("root").deleting_dependents);
        let blocking: Vec<&str> = g
            .blocking_dependents("r")
            .iter()
            .map(|n| n.identity.name.as_str())
            .collect();
        assert_eq!(blocking, ["a"]);
        // The same state again is no transition.
        assert!(g.observe(root).is_empty());
        // a unblocks: the root is looked at again; a's removal too.
        let w = g.observe(owned("ns", "a", "a", &[("root", "r", false)]));
        assert_eq!(deletes(&w), ["r"]);
        assert!(g.blocking_dependents("r").is_empty());
        assert_eq!(deletes(&g.remove("b")), ["r"]);
    }

    #[test]
    fn orphan_finalizer_starts_orphaning_once() {
        let mut g = Graph::default();
        let mut root = owned("ns", "root", "r", &[]);
        g.observe(root.clone());
        root.being_deleted = true;
        root.finalizers = vec![ORPHAN.into()];
        assert_eq!(g.observe(root.clone()), [Work::AttemptToOrphan("r".into())]);
        assert!(g.observe(root).is_empty());
    }

    #[test]
    fn owners_in_another_namespace_are_reported() {
        let mut g = Graph::default();
        g.observe(owned("a", "owner", "o", &[]));
        let w = g.observe(owned("b", "child", "c", &[("owner", "o", false)]));
        assert_eq!(deletes(&w), ["c"]);
        let event = w.iter().find_map(|w| match w {
            Work::InvalidNamespace { dependent, owner } => Some((dependent, owner)),
            _ => None,
        });
        let (dep, owner) = event.expect("an OwnerRefInvalidNamespace event");
        assert_eq!(dep.name, "child");
        assert_eq!(
            owner.to_string(),
            "[v1/ConfigMap, namespace: b, name: owner, uid: o]"
        );

        // The child first, then the owner: reported when the owner is observed.
        let mut g = Graph::default();
        g.observe(owned("b", "child", "c", &[("owner", "o", false)]));
        let w = g.observe(owned("a", "owner", "o", &[]));
        assert_eq!(deletes(&w), ["c"]);
        assert!(w.iter().any(|w| matches!(w, Work::InvalidNamespace { .. })));
    }

    #[test]
    fn a_circle_is_linked_both_ways() {
        let mut g = Graph::default();
        g.observe(owned("ns", "a", "a", &[("c", "c", true)]));
        g.observe(owned("ns", "b", "b", &[("a", "a", true)]));
        g.observe(owned("ns", "c", "c", &[("b", "b", true)]));
        for (owner, dep) in [("a", "b"), ("b", "c"), ("c", "a")] {
            let deps: Vec<&str> = g
                .blocking_dependents(owner)
                .iter()
                .map(|n| n.identity.uid.as_str())
                .collect();
            assert_eq!(deps, [dep]);
        }
        assert_eq!(g.len(), 3);
    }
}
