//! Authorisation: what a request asks to do (upstream's `RequestInfo` and authorizer
//! `Attributes`), and who may do it.
//!
//! The decision is made in three steps, as upstream's authorizer union:
//! 1. the privileged identities: `system:masters` (upstream's privileged group, always
//!    allowed);
//! 2. the Node authoriser ([`node`]) for kubelets;
//! 3. RBAC ([`rbac`]) over the Roles, ClusterRoles and their bindings in the store, with
//!    the bootstrap policy ([`bootstrap`]) written at start (the scheduler's and the
//!    controller manager's roles too, [`controller_policy`]).

pub mod bootstrap;
pub mod controller_policy;
pub mod escalation;
pub mod impersonation;
pub mod node;
pub mod rbac;

use std::sync::Arc;

use http::Method;

use super::Route;
use crate::pki::UserInfo;
use crate::store::Store;

/// What a request asks to do, as upstream's authorizer attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`, `impersonate`, ... (or the HTTP verb, lower case, for paths).
    pub verb: String,
    /// A request on a resource (true) or on a plain path (false).
    pub resource_request: bool,
    /// API group ("" for core).
    pub api_group: String,
    /// Plural resource name.
    pub resource: String,
    /// Subresource (`status`, `exec`, ...), "" when none.
    pub subresource: String,
    /// Namespace, "" when cluster-wide.
    pub namespace: String,
    /// Object name, "" when none.
    pub name: String,
    /// The URL path of a non-resource request.
    pub path: String,
}

impl Attributes {
    /// The attributes of a request that `route` and `method` describe.
    pub fn of_request(route: &Route, method: &Method, path: &str, watch: bool) -> Self {
        match route {
            Route::Resource {
                res,
                namespace,
                name,
                sub,
            } => {
                let d = res.def();
                let named = name.is_some();
                let verb = match *method {
                    Method::GET | Method::HEAD if named || sub.is_some() => "get",
                    Method::GET | Method::HEAD if watch => "watch",
                    Method::GET | Method::HEAD => "list",
                    Method::POST => "create",
                    Method::PUT => "update",
                    Method::PATCH => "patch",
                    Method::DELETE if named => "delete",
                    Method::DELETE => "deletecollection",
                    _ => "",
                };
                Attributes {
                    verb: verb.into(),
                    resource_request: true,
                    api_group: d.group.clone(),
                    resource: d.plural.clone(),
                    subresource: sub.clone().unwrap_or_default(),
                    namespace: namespace.clone().unwrap_or_default(),
                    name: name.clone().unwrap_or_default(),
                    path: path.into(),
                }
            }
            _ => Attributes {
                verb: method.as_str().to_lowercase(),
                resource_request: false,
                path: path.into(),
                ..Attributes::default()
            },
        }
    }

    /// Upstream's Forbidden message for `user` doing this.
    pub fn forbidden_message(&self, user: &UserInfo) -> String {
        if !self.resource_request {
            return format!(
                "forbidden: User \"{}\" cannot {} path \"{}\"",
                user.name, self.verb, self.path
            );
        }
        let resource = if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        };
        let qualified = if self.api_group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.api_group)
        };
        let subject = if self.name.is_empty() {
            format!("{qualified} is forbidden")
        } else {
            format!("{qualified} \"{}\" is forbidden", self.name)
        };
        let scope = if self.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace \"{}\"", self.namespace)
        };
        format!(
            "{subject}: User \"{}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}",
            user.name, self.verb, self.api_group
        )
    }
}

/// The answer for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed, with the reason (which binding allowed it).
    Allow(String),
    /// Not allowed by anything, with why (upstream adds it to the Forbidden message; ""
    /// when nothing had an opinion).
    Deny(String),
}

impl Decision {
    /// Whether the request may go on.
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

/// The API server's authoriser.
pub struct Authorizer {
    node: node::NodeAuthorizer,
    rbac: rbac::Rbac,
}

/// Identities allowed everything: `system:masters` (the admin and the API server's
/// loopback client) and the API server's kubelet client. Every other component has
/// least-privilege roles: kubelets the Node authorizer ([`node`]), the scheduler
/// `system:kube-scheduler`, the controller manager `system:kube-controller-manager` and
/// each controller `system:controller:<name>` ([`controller_policy`]).
fn privileged(user: &UserInfo) -> Option<&'static str> {
    let group = |g: &str| user.groups.iter().any(|x| x == g);
    if group("system:masters") {
        return Some("the privileged group system:masters");
    }
    if group("kubeadm:cluster-admins") {
        return Some("the cluster-admins group");
    }
    None
}

impl Authorizer {
    /// An authoriser reading RBAC objects from `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Authorizer {
            node: node::NodeAuthorizer::new(store.clone()),
            rbac: rbac::Rbac::new(store),
        }
    }

    /// Decides whether `user` may do `attrs`.
    pub fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Decision {
        if let Some(why) = privileged(user) {
            return Decision::Allow(why.into());
        }
        // Node, then RBAC, as upstream's `--authorization-mode=Node,RBAC`.
        let node_reason = match self.node.authorize(user, attrs) {
            Some(d @ Decision::Allow(_)) => return d,
            Some(Decision::Deny(reason)) => reason,
            None => String::new(),
        };
        let d = match self.rbac.authorize(user, attrs) {
            Decision::Deny(_) => Decision::Deny(node_reason),
            allowed => allowed,
        };
        if !d.allowed() {
            tracing::debug!(user = %user.name, verb = %attrs.verb, group = %attrs.api_group,
                resource = %attrs.resource, sub = %attrs.subresource,
                namespace = %attrs.namespace, path = %attrs.path, "denied");
        }
        d
    }

    /// The rules `user` holds in `namespace` (SelfSubjectRulesReview): resource rules and
    /// non-resource rules as JSON, as upstream lists them.
    pub fn rules_for(
        &self,
        user: &UserInfo,
        namespace: &str,
    ) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
        if privileged(user).is_some() {
            return (
                vec![serde_json::json!({"verbs":["*"],"apiGroups":["*"],"resources":["*"]})],
                vec![serde_json::json!({"verbs":["*"],"nonResourceURLs":["*"]})],
            );
        }
        self.rbac.rules_for(user, namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_messages_are_upstreams() {
        let bot = UserInfo {
            name: "system:serviceaccount:default:bot".into(),
            ..UserInfo::default()
        };
        let a = Attributes {
            verb: "delete".into(),
            resource_request: true,
            resource: "pods".into(),
            namespace: "default".into(),
            name: "x".into(),
            ..Attributes::default()
        };
        assert_eq!(
            a.forbidden_message(&bot),
            "pods \"x\" is forbidden: User \"system:serviceaccount:default:bot\" cannot delete resource \"pods\" in API group \"\" in the namespace \"default\""
        );
        let n = Attributes {
            verb: "list".into(),
            resource_request: true,
            api_group: "rbac.authorization.k8s.io".into(),
            resource: "clusterroles".into(),
            ..Attributes::default()
        };
        assert_eq!(
            n.forbidden_message(&bot),
            "clusterroles.rbac.authorization.k8s.io is forbidden: User \"system:serviceaccount:default:bot\" cannot list resource \"clusterroles\" in API group \"rbac.authorization.k8s.io\" at the cluster scope"
        );
    }
}
