//! The resource registry: one row per served resource. Discovery, OpenAPI, routing,
//! storage keys and Table printing are all derived from this table, so serving a new
//! kind is a few lines here plus its typed normaliser in `typed.rs`.

/// Verbs of a full read/write resource.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// A subresource and what it returns.
#[derive(Debug, Clone, Copy)]
pub struct SubresourceDef {
    /// Name after the object's path (`status`, `log`, `exec`, ...).
    pub name: &'static str,
    /// Group of the returned kind.
    pub group: &'static str,
    /// Version of the returned kind.
    pub version: &'static str,
    /// Kind returned (or accepted) by the subresource.
    pub kind: &'static str,
    /// Verbs allowed on it.
    pub verbs: &'static [&'static str],
}

/// One served resource.
#[derive(Debug, Clone, Copy)]
pub struct ResourceDef {
    /// API group ("" for core).
    pub group: &'static str,
    /// Version.
    pub version: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Plural resource name used in URLs.
    pub plural: &'static str,
    /// Singular name.
    pub singular: &'static str,
    /// Namespaced (true) or cluster-scoped.
    pub namespaced: bool,
    /// Short names (`po`, `ns`, ...).
    pub short_names: &'static [&'static str],
    /// Categories (`all`).
    pub categories: &'static [&'static str],
    /// Verbs on the resource itself.
    pub verbs: &'static [&'static str],
    /// Subresources.
    pub subresources: &'static [SubresourceDef],
    /// Storage key segment: objects live under `/registry/<storage>/...`. Two resources
    /// sharing one segment share their objects (core and events.k8s.io events).
    pub storage: &'static str,
}

impl ResourceDef {
    /// `v1` or `<group>/<version>`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The resource as `<plural>[.<group>]`, as upstream names it in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Storage key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("/registry/{}/{}/{}", self.storage, ns, name),
            _ => format!("/registry/{}/{}", self.storage, name),
        }
    }

    /// Storage prefix of a collection (one namespace, or all of them).
    pub fn prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("/registry/{}/{}/", self.storage, ns),
            _ => format!("/registry/{}/", self.storage),
        }
    }

    /// The subresource called `name`, if served.
    pub fn subresource(&self, name: &str) -> Option<&'static SubresourceDef> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// Whether this kind has a `status` subresource, so that main-resource writes keep
    /// the stored status and status writes keep the stored spec.
    pub fn has_status(&self) -> bool {
        self.subresource("status").is_some()
    }
}

const GET_PATCH_UPDATE: &[&str] = &["get", "patch", "update"];

const fn sub(
    name: &'static str,
    kind: &'static str,
    verbs: &'static [&'static str],
) -> SubresourceDef {
    SubresourceDef {
        name,
        group: "",
        version: "v1",
        kind,
        verbs,
    }
}

/// Every resource rkind serves, core first (the first group is preferred by clients).
pub static RESOURCES: &[ResourceDef] = &[
    ResourceDef {
        group: "",
        version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        singular: "namespace",
        namespaced: false,
        short_names: &["ns"],
        categories: &[],
        verbs: &[
            "create", "delete", "get", "list", "patch", "update", "watch",
        ],
        subresources: &[
            sub("status", "Namespace", GET_PATCH_UPDATE),
            sub("finalize", "Namespace", &["update"]),
        ],
        storage: "namespaces",
    },
    ResourceDef {
        group: "",
        version: "v1",
        kind: "Pod",
        plural: "pods",
        singular: "pod",
        namespaced: true,
        short_names: &["po"],
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources: &[
            sub("status", "Pod", GET_PATCH_UPDATE),
            sub("binding", "Binding", &["create"]),
            sub("log", "Pod", &["get"]),
            sub("exec", "PodExecOptions", &["create", "get"]),
            sub("attach", "PodAttachOptions", &["create", "get"]),
            sub("portforward", "PodPortForwardOptions", &["create", "get"]),
        ],
        storage: "pods",
    },
    ResourceDef {
        group: "",
        version: "v1",
        kind: "Node",
        plural: "nodes",
        singular: "node",
        namespaced: false,
        short_names: &["no"],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[sub("status", "Node", GET_PATCH_UPDATE)],
        storage: "minions",
    },
    ResourceDef {
        group: "",
        version: "v1",
        kind: "Event",
        plural: "events",
        singular: "event",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        storage: "events",
    },
    ResourceDef {
        group: "",
        version: "v1",
        kind: "Service",
        plural: "services",
        singular: "service",
        namespaced: true,
        short_names: &["svc"],
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources: &[sub("status", "Service", GET_PATCH_UPDATE)],
        storage: "services/specs",
    },
    ResourceDef {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        singular: "configmap",
        namespaced: true,
        short_names: &["cm"],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        storage: "configmaps",
    },
    ResourceDef {
        group: "",
        version: "v1",
        kind: "Secret",
        plural: "secrets",
        singular: "secret",
        namespaced: true,
        short_names: &[],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        storage: "secrets",
    },
    ResourceDef {
        group: "",
        version: "v1",
        kind: "ServiceAccount",
        plural: "serviceaccounts",
        singular: "serviceaccount",
        namespaced: true,
        short_names: &["sa"],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        storage: "serviceaccounts",
    },
    ResourceDef {
        group: "coordination.k8s.io",
        version: "v1",
        kind: "Lease",
        plural: "leases",
        singular: "lease",
        namespaced: true,
        short_names: &[],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        storage: "leases",
    },
    ResourceDef {
        group: "events.k8s.io",
        version: "v1",
        kind: "Event",
        plural: "events",
        singular: "event",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        storage: "events",
    },
];

/// Finds a resource by group, version and plural.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The groups served, in preference order, with their versions.
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for r in RESOURCES {
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) => {
                if !versions.contains(&r.version) {
                    versions.push(r.version);
                }
            }
            None => out.push((r.group, vec![r.version])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_look_like_etcd() {
        let pods = find("", "v1", "pods").unwrap();
        assert_eq!(pods.key(Some("dev"), "web"), "/registry/pods/dev/web");
        assert_eq!(pods.prefix(None), "/registry/pods/");
        let ns = find("", "v1", "namespaces").unwrap();
        assert_eq!(ns.key(Some("ignored"), "dev"), "/registry/namespaces/dev");
        assert_eq!(
            find("coordination.k8s.io", "v1", "leases")
                .unwrap()
                .qualified(),
            "leases.coordination.k8s.io"
        );
        let gs = groups();
        assert_eq!(gs[0].0, "");
        assert!(gs.iter().any(|(g, _)| *g == "events.k8s.io"));
    }
}
