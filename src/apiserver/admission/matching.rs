//! Which writes a webhook or a ValidatingAdmissionPolicy sees: upstream's rule matching
//! (operations, groups, versions, resources with `sub`/`*` patterns, scope), namespace
//! and object selectors, and the `request` every AdmissionReview and CEL expression gets.

use serde_json::{Value, json};

use super::{Operation, Request};
use crate::apiserver::ApiServer;
use crate::apiserver::kinds::Strategy;
use crate::apiserver::kinds::apps::selector_matches;

/// The operation as admission APIs spell it.
pub fn operation_name(op: Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
    }
}

fn strings(v: &Value) -> impl Iterator<Item = &str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str)
}

fn listed(v: &Value, want: &str) -> bool {
    strings(v).any(|x| x == "*" || x == want)
}

/// Upstream's `rules.Matcher`: whether one `RuleWithOperations` covers the request.
pub fn rule_matches(rule: &Value, req: &Request<'_>) -> bool {
    let def = req.kind.def();
    if !listed(&rule["operations"], operation_name(req.operation))
        || !listed(&rule["apiGroups"], &def.group)
        || !listed(&rule["apiVersions"], &def.version)
    {
        return false;
    }
    let scope_ok = match rule["scope"].as_str().unwrap_or("*") {
        "Cluster" => !def.namespaced,
        "Namespaced" => def.namespaced,
        _ => true,
    };
    if !scope_ok {
        return false;
    }
    let sub = req.subresource.unwrap_or("");
    strings(&rule["resources"]).any(|r| {
        let (res, rsub) = r.split_once('/').unwrap_or((r, ""));
        (res == "*" || res == def.plural) && (rsub == "*" || rsub == sub)
    })
}

/// Whether any of `rules` covers the request.
pub fn any_rule_matches(rules: &Value, req: &Request<'_>) -> bool {
    rules
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| rule_matches(r, req))
}

/// Upstream's namespace matcher: cluster-scoped objects (but Namespaces themselves) always
/// match; otherwise the namespace's labels (a Namespace's own) must match `selector`.
pub fn namespace_matches(
    srv: &ApiServer,
    req: &Request<'_>,
    obj: &Value,
    selector: &Value,
) -> bool {
    if selector.as_object().is_none_or(|m| m.is_empty()) {
        return true;
    }
    let def = req.kind.def();
    let is_namespace = def.group.is_empty() && def.plural == "namespaces";
    if !def.namespaced && !is_namespace {
        return true;
    }
    let labels = if is_namespace {
        req.old
            .filter(|_| req.operation == Operation::Delete)
            .unwrap_or(obj)["metadata"]["labels"]
            .clone()
    } else {
        namespace_object(srv, req.namespace.unwrap_or(""))["metadata"]["labels"].clone()
    };
    selector_matches(selector, &labels_or_empty(labels))
}

/// The namespace object `name` (null when it does not exist).
pub fn namespace_object(srv: &ApiServer, name: &str) -> Value {
    let snap = srv.registry.snapshot();
    let Some(ns) = snap.find("", "v1", "namespaces") else {
        return Value::Null;
    };
    srv.store
        .get_shared(&ns.def().key(None, name))
        .map(|v| (*v).clone())
        .unwrap_or(Value::Null)
}

fn labels_or_empty(labels: Value) -> Value {
    if labels.is_object() {
        labels
    } else {
        json!({})
    }
}

/// Upstream's object matcher: the new or the old object's labels match `selector`.
pub fn object_matches(req: &Request<'_>, obj: &Value, selector: &Value) -> bool {
    if selector.as_object().is_none_or(|m| m.is_empty()) {
        return true;
    }
    let new = (req.operation != Operation::Delete).then_some(obj);
    [new, req.old]
        .into_iter()
        .flatten()
        .any(|o| selector_matches(selector, &labels_or_empty(o["metadata"]["labels"].clone())))
}

/// The group/version/kind of what is written as `kind` (a subresource's own kind).
pub fn kind_of(kind: &dyn Strategy, subresource: Option<&str>) -> Value {
    let def = kind.def();
    match subresource.and_then(|s| def.find_subresource(s)) {
        Some(sub) => json!({"group": sub.group, "version": sub.version, "kind": sub.kind}),
        None => json!({"group": def.group, "version": def.version, "kind": def.kind}),
    }
}

/// The group/version/resource of `kind`.
pub fn resource_of(kind: &dyn Strategy) -> Value {
    let def = kind.def();
    json!({"group": def.group, "version": def.version, "resource": def.plural})
}

/// The `userInfo` of an AdmissionReview (and CEL's `request.userInfo`).
pub fn user_info(req: &Request<'_>) -> Value {
    let mut u = json!({"username": req.user.name, "groups": req.user.groups});
    if !req.user.uid.is_empty() {
        u["uid"] = json!(req.user.uid);
    }
    if !req.user.extra.is_empty() {
        u["extra"] = json!(req.user.extra);
    }
    u
}

/// The options kind of the operation (`CreateOptions`, ...).
fn options(op: Operation) -> Value {
    let kind = match op {
        Operation::Create => "CreateOptions",
        Operation::Update => "UpdateOptions",
        Operation::Delete => "DeleteOptions",
    };
    json!({"apiVersion": "meta.k8s.io/v1", "kind": kind})
}

/// The `request` of an AdmissionReview v1 with `uid`, for `obj` (the new object; the
/// stored one on deletes). `requested` is the kind the client wrote: `req.kind`, unless
/// a webhook sees the write converted to an equivalent version (`matchPolicy:
/// Equivalent`), when `req.kind` is that version.
pub fn admission_request(
    req: &Request<'_>,
    requested: &dyn Strategy,
    uid: &str,
    obj: &Value,
) -> Value {
    let kind = kind_of(req.kind, req.subresource);
    let resource = resource_of(req.kind);
    let (object, old) = match req.operation {
        Operation::Create => (obj.clone(), Value::Null),
        Operation::Update => (obj.clone(), req.old.cloned().unwrap_or(Value::Null)),
        Operation::Delete => (Value::Null, req.old.cloned().unwrap_or_else(|| obj.clone())),
    };
    let mut r = json!({
        "uid": uid,
        "kind": kind,
        "resource": resource,
        "requestKind": kind_of(requested, req.subresource),
        "requestResource": resource_of(requested),
        "name": req.name,
        "operation": operation_name(req.operation),
        "userInfo": user_info(req),
        "object": object,
        "oldObject": old,
        "dryRun": req.dry_run,
        "options": options(req.operation),
    });
    if let Some(ns) = req.namespace {
        r["namespace"] = json!(ns);
    }
    if let Some(sub) = req.subresource {
        r["subResource"] = json!(sub);
        r["requestSubResource"] = json!(sub);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::kinds::Strategy;
    use crate::apiserver::kinds::core::pod::Pods;
    use crate::pki::UserInfo;

    fn req<'a>(kind: &'a dyn Strategy, user: &'a UserInfo, sub: Option<&'a str>) -> Request<'a> {
        Request {
            operation: Operation::Create,
            kind,
            namespace: Some("default"),
            name: "p",
            subresource: sub,
            old: None,
            user,
            dry_run: false,
            warnings: Default::default(),
        }
    }

    #[test]
    fn rules_match_as_upstream() {
        let pods = Pods::new();
        let user = UserInfo::default();
        let main = req(&pods, &user, None);
        let status = req(&pods, &user, Some("status"));
        let rule = |ops: &str, res: &str, scope: &str| {
            json!({"operations": [ops], "apiGroups": [""], "apiVersions": ["v1"],
                   "resources": [res], "scope": scope})
        };
        assert!(rule_matches(&rule("CREATE", "pods", "*"), &main));
        assert!(!rule_matches(&rule("UPDATE", "pods", "*"), &main));
        assert!(!rule_matches(&rule("CREATE", "pods", "Cluster"), &main));
        assert!(rule_matches(&rule("*", "*", "Namespaced"), &main));
        assert!(!rule_matches(&rule("*", "pods", "*"), &status));
        assert!(rule_matches(&rule("*", "pods/status", "*"), &status));
        assert!(rule_matches(&rule("*", "pods/*", "*"), &status));
        assert!(rule_matches(&rule("*", "pods/*", "*"), &main));
        assert!(!rule_matches(&rule("*", "*", "*"), &status));
        assert!(rule_matches(&rule("*", "*/*", "*"), &status));
        assert!(rule_matches(&rule("*", "*/*", "*"), &main));
        assert!(!rule_matches(&rule("*", "services", "*"), &main));
        let apps = json!({"operations": ["*"], "apiGroups": ["apps"], "apiVersions": ["*"],
                          "resources": ["*"]});
        assert!(!rule_matches(&apps, &main));
    }

    #[test]
    fn object_selectors_see_new_or_old_labels() {
        let pods = Pods::new();
        let user = UserInfo::default();
        let r = req(&pods, &user, None);
        let sel = json!({"matchLabels": {"app": "web"}});
        assert!(object_matches(
            &r,
            &json!({"metadata": {"labels": {"app": "web"}}}),
            &sel
        ));
        assert!(!object_matches(&r, &json!({"metadata": {}}), &sel));
        assert!(object_matches(&r, &json!({"metadata": {}}), &json!({})));
    }
}
