//! apiextensions.k8s.io/v1 CustomResourceDefinitions (cluster-scoped, short names
//! `crd`/`crds`, `status` subresource, the default NAME CREATED AT columns): upstream's
//! `ValidateCustomResourceDefinition*` for the rules users meet first (the name is
//! `<plural>.<group>`, the group has a dot, exactly one storage version, a served
//! version, the scope is immutable, structural schemas). The conditions and the serving
//! of the defined kind are `crate::apiserver::crd`, as upstream's apiextensions-apiserver
//! keeps them apart from the CRD registry.

use serde_json::{Value, json};

use crate::apiserver::kinds::{GET_PATCH_UPDATE, ResourceDef, Strategy};
use crate::apiserver::validation::{Cause, forbidden, invalid, not_supported, required};

/// The group served.
pub const GROUP: &str = "apiextensions.k8s.io";

/// The finalizer the API server puts on every CRD so that deleting it first deletes its
/// objects (upstream's `CustomResourceCleanupFinalizer`).
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// The scopes a CRD may have.
pub const SCOPES: &[&str] = &["Cluster", "Namespaced"];

/// The `CustomResourceDefinition` strategy.
pub struct CustomResourceDefinitions {
    def: ResourceDef,
}

impl CustomResourceDefinitions {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        CustomResourceDefinitions { def: definition() }
    }
}

impl Default for CustomResourceDefinitions {
    fn default() -> Self {
        Self::new()
    }
}

/// The resource definition (the registrar needs its storage prefix too).
pub fn definition() -> ResourceDef {
    ResourceDef::new(
        GROUP,
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
    )
    .cluster_scoped()
    .short_names(&["crd", "crds"])
    .categories(&["api-extensions"])
    .subresource("status", "CustomResourceDefinition", GET_PATCH_UPDATE)
}

/// Upstream's `SetDefaults_*`: `names.singular` and `names.listKind` from the plural and
/// kind, `conversion.strategy: None`.
fn set_defaults(obj: &mut Value) {
    let names = &mut obj["spec"]["names"];
    if names.is_object() {
        if names["singular"].as_str().unwrap_or("").is_empty() {
            names["singular"] = json!(names["kind"].as_str().unwrap_or("").to_lowercase());
        }
        if names["listKind"].as_str().unwrap_or("").is_empty()
            && let Some(k) = names["kind"].as_str()
            && !k.is_empty()
        {
            names["listKind"] = json!(format!("{k}List"));
        }
    }
    if obj["spec"].is_object() && obj["spec"]["conversion"].is_null() {
        obj["spec"]["conversion"] = json!({"strategy": "None"});
    }
}

impl Strategy for CustomResourceDefinitions {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    crate::typed_kind!(
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition
    );

    fn zero_object(&self) -> Value {
        json!({"metadata": {"creationTimestamp": null}, "spec": {"group": "", "names": {"kind": "", "plural": ""}, "scope": "", "versions": null}, "status": {"acceptedNames": {"kind": "", "plural": ""}, "storedVersions": null}})
    }

    /// Upstream's `PrepareForCreate`: the status is the server's; generation 1.
    fn prepare_for_create(&self, obj: &mut Value) {
        set_defaults(obj);
        obj["status"] = json!({"acceptedNames": {"kind": "", "plural": ""}, "storedVersions": []});
        obj["metadata"]["generation"] = json!(1);
    }

    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        set_defaults(new);
        new["status"] = old.get("status").cloned().unwrap_or(json!({}));
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        validate_spec(obj, &mut out);
        out.extend(crate::apiserver::crd::approval::validate(None, obj));
        out
    }

    /// Upstream's `ValidateCustomResourceDefinitionUpdate`: the create rules, the scope
    /// never changes, and no stored version may disappear from the versions.
    fn validate_update(&self, old: &Value, new: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        validate_spec(new, &mut out);
        out.extend(crate::apiserver::crd::approval::validate(Some(old), new));
        if old["spec"]["scope"] != new["spec"]["scope"] {
            out.push(invalid(
                "spec.scope",
                new["spec"]["scope"].as_str().unwrap_or(""),
                "field is immutable",
            ));
        }
        if old["spec"]["group"] != new["spec"]["group"] {
            out.push(invalid(
                "spec.group",
                new["spec"]["group"].as_str().unwrap_or(""),
                "field is immutable",
            ));
        }
        let versions = version_names(new);
        for sv in old["status"]["storedVersions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !versions.iter().any(|v| v == sv) {
                out.push(invalid(
                    "status.storedVersions",
                    sv,
                    "must appear in spec.versions",
                ));
            }
        }
        out
    }

    fn validate_subresource_update(&self, _sub: &str, _old: &Value, new: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        let versions = version_names(new);
        for (i, sv) in new["status"]["storedVersions"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let s = sv.as_str().unwrap_or("");
            if !versions.iter().any(|v| v == s) {
                out.push(invalid(
                    format!("status.storedVersions[{i}]"),
                    s,
                    "must appear in spec.versions",
                ));
            }
        }
        out
    }
}

fn version_names(obj: &Value) -> Vec<String> {
    obj["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str().map(String::from))
        .collect()
}

/// The spec rules of upstream's `ValidateCustomResourceDefinitionSpec`.
fn validate_spec(obj: &Value, out: &mut Vec<Cause>) {
    let spec = &obj["spec"];
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    let group = spec["group"].as_str().unwrap_or("");
    let plural = spec["names"]["plural"].as_str().unwrap_or("");
    if name != format!("{plural}.{group}") {
        out.push(invalid(
            "metadata.name",
            name,
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    if group.is_empty() {
        out.push(required("spec.group"));
    } else if !group.contains('.') {
        out.push(invalid(
            "spec.group",
            group,
            "should be a domain with at least one dot",
        ));
    } else if !crate::apiserver::validation::is_dns1123_subdomain(group) {
        out.push(invalid(
            "spec.group",
            group,
            crate::apiserver::validation::DNS1123_SUBDOMAIN_MSG,
        ));
    }
    match spec["scope"].as_str().unwrap_or("") {
        "" => out.push(required("spec.scope")),
        s if !SCOPES.contains(&s) => out.push(not_supported("spec.scope", s, SCOPES)),
        _ => {}
    }
    validate_names(&spec["names"], "spec.names", out);
    validate_conversion(&spec["conversion"], out);
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        out.push(required("spec.versions"));
        return;
    }
    let storage = versions
        .iter()
        .filter(|v| v["storage"].as_bool().unwrap_or(false))
        .count();
    if storage != 1 {
        out.push(invalid(
            "spec.versions",
            &format!("{storage} storage versions"),
            "must have exactly one version marked as storage version",
        ));
    }
    if !versions
        .iter()
        .any(|v| v["served"].as_bool().unwrap_or(false))
    {
        out.push(invalid(
            "spec.versions",
            "no served version",
            "must have at least one version marked as served",
        ));
    }
    let mut seen: Vec<&str> = Vec::new();
    for (i, v) in versions.iter().enumerate() {
        let field = format!("spec.versions[{i}]");
        let vname = v["name"].as_str().unwrap_or("");
        if vname.is_empty() {
            out.push(required(format!("{field}.name")));
        } else if !crate::apiserver::validation::is_dns1035_label(vname) {
            out.push(invalid(
                format!("{field}.name"),
                vname,
                crate::apiserver::validation::DNS1035_MSG,
            ));
        } else if seen.contains(&vname) {
            out.push(crate::apiserver::validation::duplicate(
                format!("{field}.name"),
                vname,
            ));
        }
        seen.push(vname);
        match v["schema"].get("openAPIV3Schema") {
            Some(s) if !s.is_null() => {
                crate::apiserver::crd::structural::validate(
                    s,
                    &format!("{field}.schema.openAPIV3Schema"),
                    out,
                );
            }
            _ => out.push(required(format!("{field}.schema.openAPIV3Schema"))),
        }
        if let Some(scale) = v["subresources"].get("scale").filter(|s| s.is_object()) {
            for p in ["specReplicasPath", "statusReplicasPath"] {
                let path = scale[p].as_str().unwrap_or("");
                let f = format!("{field}.subresources.scale.{p}");
                if path.is_empty() {
                    out.push(required(f));
                } else if !path.starts_with('.') {
                    out.push(invalid(
                        f,
                        path,
                        "should be a json path under .spec or .status",
                    ));
                }
            }
        }
        for (j, c) in v["additionalPrinterColumns"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let f = format!("{field}.additionalPrinterColumns[{j}]");
            if c["name"].as_str().unwrap_or("").is_empty() {
                out.push(required(format!("{f}.name")));
            }
            if c["type"].as_str().unwrap_or("").is_empty() {
                out.push(required(format!("{f}.type")));
            }
            if c["jsonPath"].as_str().unwrap_or("").is_empty() {
                out.push(required(format!("{f}.jsonPath")));
            }
        }
    }
}

/// Upstream's `ValidateCustomResourceDefinitionNames`.
/// The ConversionReview versions the API server speaks.
const REVIEW_VERSIONS: &[&str] = &["v1", "v1beta1"];

/// Upstream's `validateCustomResourceConversion`: `None` or `Webhook`; a webhook needs
/// exactly one of url and service and a review version the server speaks; `None` takes
/// neither. Paths are upstream's internal ones (`spec.conversion.webhookClientConfig`),
/// as its messages print them.
fn validate_conversion(conv: &Value, out: &mut Vec<Cause>) {
    if conv.is_null() {
        return;
    }
    let strategy = conv["strategy"].as_str().unwrap_or("");
    let webhook = conv.get("webhook").filter(|w| !w.is_null());
    let client_config = webhook.and_then(|w| w.get("clientConfig").filter(|c| !c.is_null()));
    let versions: Vec<&str> = webhook
        .and_then(|w| w["conversionReviewVersions"].as_array())
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    match strategy {
        "Webhook" => {
            match client_config {
                None => {
                    let mut c = required("spec.conversion.webhookClientConfig");
                    c.message = "Required value: required when strategy is set to Webhook".into();
                    out.push(c);
                }
                Some(cc) => crate::apiserver::kinds::admissionregistration::validate_client_config(
                    cc,
                    "spec.conversion.webhookClientConfig",
                    out,
                ),
            }
            let at = "spec.conversion.conversionReviewVersions";
            if versions.is_empty() {
                out.push(required(at));
                return;
            }
            let mut seen = Vec::new();
            for (i, v) in versions.iter().enumerate() {
                if seen.contains(v) {
                    out.push(invalid(format!("{at}[{i}]"), v, "duplicate version"));
                    continue;
                }
                seen.push(v);
                if !crate::apiserver::validation::is_dns1035_label(v) {
                    out.push(invalid(
                        format!("{at}[{i}]"),
                        v,
                        crate::apiserver::validation::DNS1035_MSG,
                    ));
                }
            }
            if !versions.iter().any(|v| REVIEW_VERSIONS.contains(v)) {
                let list: Vec<String> = versions.iter().map(|v| format!("{v:?}")).collect();
                out.push(Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!(
                        "Invalid value: []string{{{}}}: must include at least one of {}",
                        list.join(", "),
                        REVIEW_VERSIONS.join(", ")
                    ),
                    field: at.into(),
                });
            }
        }
        "None" => {
            if client_config.is_some() {
                out.push(forbidden(
                    "spec.conversion.webhookClientConfig",
                    "should not be set when strategy is not set to Webhook",
                ));
            }
            if !versions.is_empty() {
                out.push(forbidden(
                    "spec.conversion.conversionReviewVersions",
                    "should not be set when strategy is not set to Webhook",
                ));
            }
        }
        other => out.push(not_supported(
            "spec.conversion.strategy",
            other,
            &["None", "Webhook"],
        )),
    }
}

fn validate_names(names: &Value, field: &str, out: &mut Vec<Cause>) {
    use crate::apiserver::validation::{DNS1035_MSG, is_dns1035_label};
    for key in ["plural", "singular"] {
        let v = names[key].as_str().unwrap_or("");
        if v.is_empty() && key == "plural" {
            out.push(required(format!("{field}.plural")));
        } else if !v.is_empty() && !is_dns1035_label(v) {
            out.push(invalid(format!("{field}.{key}"), v, DNS1035_MSG));
        }
    }
    let kind = names["kind"].as_str().unwrap_or("");
    if kind.is_empty() {
        out.push(required(format!("{field}.kind")));
    } else if !is_dns1035_label(&kind.to_lowercase()) {
        out.push(invalid(format!("{field}.kind"), kind, DNS1035_MSG));
    }
    for (i, s) in names["shortNames"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let v = s.as_str().unwrap_or("");
        if !is_dns1035_label(v) {
            out.push(invalid(format!("{field}.shortNames[{i}]"), v, DNS1035_MSG));
        }
    }
    if names["categories"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c.as_str().unwrap_or("").is_empty())
    {
        out.push(forbidden(
            format!("{field}.categories").as_str(),
            "categories must not be empty",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(causes: &[Cause]) -> Vec<String> {
        causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    fn crd(name: &str, group: &str) -> Value {
        json!({"metadata": {"name": name}, "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object"}}}]}})
    }

    #[test]
    fn names_groups_and_versions_follow_upstream() {
        let st = CustomResourceDefinitions::new();
        assert!(
            st.validate(&crd("widgets.example.com", "example.com"))
                .is_empty()
        );
        assert_eq!(
            messages(&st.validate(&crd("gadgets.example", "example"))),
            vec![
                "metadata.name: Invalid value: \"gadgets.example\": must be spec.names.plural+\".\"+spec.group",
                "spec.group: Invalid value: \"example\": should be a domain with at least one dot",
            ]
        );
        let mut two = crd("widgets.example.com", "example.com");
        let mut v2 = two["spec"]["versions"][0].clone();
        v2["name"] = json!("v2");
        two["spec"]["versions"].as_array_mut().unwrap().push(v2);
        assert_eq!(
            messages(&st.validate(&two)),
            vec![
                "spec.versions: Invalid value: \"2 storage versions\": must have exactly one version marked as storage version"
            ]
        );
        let mut a = crd("widgets.example.com", "example.com");
        st.prepare_for_create(&mut a);
        assert_eq!(a["spec"]["names"]["listKind"], "WidgetList");
        assert_eq!(a["spec"]["names"]["singular"], "widget");
        let mut b = a.clone();
        b["spec"]["scope"] = json!("Cluster");
        assert_eq!(
            messages(&st.validate_update(&a, &b)),
            vec!["spec.scope: Invalid value: \"Cluster\": field is immutable"]
        );
    }

    #[test]
    fn conversion_is_none_or_a_reachable_webhook() {
        let st = CustomResourceDefinitions::new();
        let with = |conv: Value| {
            let mut c = crd("widgets.example.com", "example.com");
            c["spec"]["conversion"] = conv;
            messages(&st.validate(&c))
        };
        assert!(with(json!({"strategy": "None"})).is_empty());
        assert!(
            with(
                json!({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"],
                "clientConfig": {"url": "https://127.0.0.1:9443/convert"}}})
            )
            .is_empty()
        );
        assert_eq!(
            with(json!({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v2"]}})),
            vec![
                "spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook",
                "spec.conversion.conversionReviewVersions: Invalid value: []string{\"v2\"}: must include at least one of v1, v1beta1",
            ]
        );
        assert_eq!(
            with(json!({"strategy": "None", "webhook": {"conversionReviewVersions": ["v1"]}})),
            vec![
                "spec.conversion.conversionReviewVersions: Forbidden: should not be set when strategy is not set to Webhook"
            ]
        );
        assert_eq!(
            with(json!({"strategy": "Magic"})),
            vec![
                "spec.conversion.strategy: Unsupported value: \"Magic\": supported values: \"None\", \"Webhook\""
            ]
        );
    }
}
