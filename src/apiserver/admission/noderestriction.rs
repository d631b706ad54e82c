//! The NodeRestriction admission plugin (upstream's `plugin/pkg/admission/noderestriction`):
//! what the Node authoriser lets every kubelet do, a kubelet may do only to its own
//! objects. It may write only its own Node and its own Lease, create only mirror pods
//! bound to itself, update the status of and delete only pods bound to itself, and ask
//! for tokens only bound to a pod on its node.

use serde_json::Value;

use super::serviceaccount::{MIRROR_ANNOTATION, is_mirror};
use super::{Admit, Operation, Plugin, Request};
use crate::apiserver::ApiServer;
use crate::apiserver::authz::node::node_of;
use crate::apiserver::status::ApiError;

/// The `NodeRestriction` plugin.
#[derive(Debug, Default)]
pub struct NodeRestriction;

fn bound_to(pod: &Value, node: &str) -> bool {
    pod["spec"]["nodeName"] == node
}

impl NodeRestriction {
    fn pod(&self, req: &Request<'_>, node: &str, obj: &Value) -> Result<(), ApiError> {
        let old = req.old.unwrap_or(obj);
        match (req.operation, req.subresource) {
            (Operation::Create, None) => {
                if !is_mirror(obj) {
                    return Err(req.forbidden(format!(
                            "pod does not have \"{MIRROR_ANNOTATION}\" annotation, node \"{node}\" can only create mirror pods"
                        ),
                    ));
                }
                if !bound_to(obj, node) {
                    return Err(req.forbidden(format!(
                            "node \"{node}\" can only create pods with spec.nodeName set to itself"
                        ),
                    ));
                }
                Ok(())
            }
            (Operation::Update, Some("status")) if !bound_to(old, node) => Err(req.forbidden(format!(
                    "node \"{node}\" can only update pod status for pods with spec.nodeName set to itself"
                ),
            )),
            (Operation::Update, Some("status")) => Ok(()),
            (Operation::Delete, None) if !bound_to(old, node) => Err(req.forbidden(format!("node \"{node}\" can only delete pods with spec.nodeName set to itself"),
            )),
            (Operation::Delete, None) => Ok(()),
            (op, _) => Err(req.forbidden(format!(
                    "unexpected operation {op:?}, node \"{node}\" can only create and delete mirror pods"
                ),
            )),
        }
    }
}

impl Plugin for NodeRestriction {
    fn name(&self) -> &'static str {
        "NodeRestriction"
    }

    fn validate<'a>(
        &'a self,
        _srv: &'a ApiServer,
        req: &'a Request<'a>,
        obj: &'a Value,
    ) -> Admit<'a> {
        Box::pin(async move {
            let Some(node) = node_of(req.user) else {
                return Ok(());
            };
            let def = req.kind.def();
            match (def.group.as_str(), def.plural.as_str()) {
                ("", "pods") => self.pod(req, node, obj),
                ("", "nodes") if req.name != node => Err(req.forbidden(format!(
                    "node \"{node}\" is not allowed to modify node \"{}\"",
                    req.name
                ))),
                ("coordination.k8s.io", "leases")
                    if req.namespace == Some("kube-node-lease") && req.name != node =>
                {
                    Err(req.forbidden(
                        "can only access node lease with the same name as the requesting node",
                    ))
                }
                _ => Ok(()),
            }
        })
    }
}

/// A kubelet's TokenRequest must be bound to a pod on its node (the plugin's check of
/// `serviceaccounts/token`, which is not a stored write).
pub fn check_token_request(
    srv: &ApiServer,
    user: &crate::pki::UserInfo,
    namespace: &str,
    account: &str,
    request: &Value,
) -> Result<(), ApiError> {
    let Some(node) = node_of(user) else {
        return Ok(());
    };
    let refused = |why: &str| {
        ApiError::forbidden(format!("serviceaccounts \"{account}\" is forbidden: {why}"))
    };
    let bound = &request["spec"]["boundObjectRef"];
    let snap = srv.registry.snapshot();
    let pods = snap.find("", "v1", "pods");
    // The kind's name comes from the registry (kind names live in kinds/ only).
    if pods.is_none_or(|k| bound["kind"] != k.def().kind.as_str()) {
        return Err(refused("node requested token not bound to a pod"));
    }
    let name = bound["name"].as_str().unwrap_or("");
    let pod = pods.and_then(|k| {
        srv.store
            .get(&k.def().key(Some(namespace), name))
            .ok()
            .flatten()
    });
    match pod {
        Some(p) if bound_to(&p, node) => {
            if bound["uid"].as_str().is_some_and(|u| !u.is_empty())
                && p["metadata"]["uid"] != bound["uid"]
            {
                return Err(refused(
                    "the UID in the bound object reference does not match the pod's",
                ));
            }
            Ok(())
        }
        Some(_) => Err(refused(
            "node requested token bound to a pod scheduled on a different node",
        )),
        None => Err(refused(
            "node requested token bound to a pod that does not exist",
        )),
    }
}
