//! RBAC escalation prevention on writes of Roles, ClusterRoles and their bindings
//! (upstream does it in the RBAC registry's "policy based" storage; here it is an
//! admission step, which sees the same user and objects). The rules are in
//! [`crate::apiserver::authz::escalation`].

use serde_json::{Value, json};

use super::{Admit, Operation, Plugin, Request};
use crate::apiserver::ApiServer;
use crate::apiserver::authz::{Attributes, escalation};
use crate::apiserver::status::ApiError;

const GROUP: &str = "rbac.authorization.k8s.io";

/// The plugin.
#[derive(Debug, Default)]
pub struct RbacEscalation;

/// Whether the user holds `verb` (`escalate`, `bind`) on the role `name`.
fn may(
    srv: &ApiServer,
    req: &Request<'_>,
    verb: &str,
    resource: &str,
    ns: &str,
    name: &str,
) -> bool {
    let a = Attributes {
        verb: verb.into(),
        resource_request: true,
        api_group: GROUP.into(),
        resource: resource.into(),
        namespace: ns.into(),
        name: name.into(),
        ..Attributes::default()
    };
    srv.authz.authorize(req.user, &a).allowed()
}

/// Refuses when `wanted` holds rules the user does not hold in `ns`.
fn confirm(srv: &ApiServer, req: &Request<'_>, ns: &str, wanted: &[Value]) -> Result<(), ApiError> {
    let (mut held, non_resource) = srv.authz.rules_for(req.user, ns);
    held.extend(non_resource);
    let missing = escalation::uncovered(&held, wanted);
    if missing.is_empty() {
        return Ok(());
    }
    Err(req.forbidden(escalation::message(req.user, &missing)))
}

fn rules(obj: &Value) -> Vec<Value> {
    obj["rules"].as_array().cloned().unwrap_or_default()
}

impl RbacEscalation {
    fn role(&self, srv: &ApiServer, req: &Request<'_>, obj: &Value) -> Result<(), ApiError> {
        let plural = req.kind.def().plural.as_str();
        let ns = req.namespace.unwrap_or("");
        if req.old.is_some_and(|old| {
            old["rules"] == obj["rules"] && old["aggregationRule"] == obj["aggregationRule"]
        }) {
            return Ok(());
        }
        if may(srv, req, "escalate", plural, ns, req.name) {
            return Ok(());
        }
        if obj["aggregationRule"].is_object() {
            let all = [
                json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}),
                json!({"verbs": ["*"], "nonResourceURLs": ["*"]}),
            ];
            return confirm(srv, req, ns, &all).map_err(|_| {
                req.forbidden("must have cluster-admin privileges to use the aggregationRule")
            });
        }
        confirm(srv, req, ns, &rules(obj))
    }

    fn binding(&self, srv: &ApiServer, req: &Request<'_>, obj: &Value) -> Result<(), ApiError> {
        let ns = req.namespace.unwrap_or("");
        let role_ref = &obj["roleRef"];
        let name = role_ref["name"].as_str().unwrap_or("");
        let (resource, key) = match role_ref["kind"].as_str() {
            Some("Role") => ("roles", format!("/registry/roles/{ns}/{name}")),
            _ => ("clusterroles", format!("/registry/clusterroles/{name}")),
        };
        // `bind` on a ClusterRole may be granted in the binding's namespace.
        if may(srv, req, "bind", resource, ns, name) {
            return Ok(());
        }
        let role = srv
            .store
            .get(&key)
            .map_err(|e| ApiError::internal(e.to_string()))?
            .ok_or_else(|| req.forbidden(format!("{resource}.{GROUP} \"{name}\" not found")))?;
        confirm(srv, req, ns, &rules(&role))
    }
}

impl Plugin for RbacEscalation {
    fn name(&self) -> &'static str {
        "RBACEscalation"
    }

    fn validate<'a>(
        &'a self,
        srv: &'a ApiServer,
        req: &'a Request<'a>,
        obj: &'a Value,
    ) -> Admit<'a> {
        Box::pin(async move {
            let def = req.kind.def();
            if def.group != GROUP
                || req.subresource.is_some()
                || !matches!(req.operation, Operation::Create | Operation::Update)
            {
                return Ok(());
            }
            match def.plural.as_str() {
                "roles" | "clusterroles" => self.role(srv, req, obj),
                "rolebindings" | "clusterrolebindings" => self.binding(srv, req, obj),
                _ => Ok(()),
            }
        })
    }
}
