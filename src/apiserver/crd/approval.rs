//! API approval of CRDs in the Kubernetes community's own groups (`k8s.io`,
//! `kubernetes.io` and their subdomains): such a CRD must carry the
//! `api-approved.kubernetes.io` annotation, a URL of its approval or a reason starting
//! with `unapproved` (upstream's `validateAPIApproval` and its API approval controller,
//! which reports the state as the `KubernetesAPIApprovalPolicyConformant` condition).

use serde_json::Value;

use crate::apiserver::validation::{Cause, invalid};

/// The annotation a protected group's CRD must carry.
pub const ANNOTATION: &str = "api-approved.kubernetes.io";
/// The condition reporting a protected CRD's approval.
pub const CONDITION: &str = "KubernetesAPIApprovalPolicyConformant";
const SEE: &str = "see https://github.com/kubernetes/enhancements/pull/1111";

/// Where a CRD stands with respect to the approval policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    /// The annotation is a URL.
    Approved,
    /// The annotation starts with `unapproved`: allowed, but reported as not conformant.
    Bypassed,
    /// No annotation.
    Missing,
    /// The annotation is neither.
    Invalid,
}

impl Approval {
    /// The condition's reason for this state.
    pub fn reason(self) -> &'static str {
        match self {
            Approval::Approved => "ApprovedAnnotation",
            Approval::Bypassed => "UnapprovedAnnotation",
            Approval::Missing => "MissingAnnotation",
            Approval::Invalid => "InvalidAnnotation",
        }
    }
}

/// Whether `group` is one the policy protects.
pub fn protected(group: &str) -> bool {
    group == "k8s.io"
        || group == "kubernetes.io"
        || group.ends_with(".k8s.io")
        || group.ends_with(".kubernetes.io")
}

fn annotation(crd: &Value) -> &str {
    crd["metadata"]["annotations"][ANNOTATION]
        .as_str()
        .unwrap_or("")
}

/// Go's `url.ParseRequestURI` acceptance, as far as it matters here: an absolute URL
/// (a scheme, then `:`) or an absolute path, with no spaces.
fn request_uri(s: &str) -> bool {
    if s.contains(' ') {
        return false;
    }
    if s.starts_with('/') {
        return true;
    }
    let Some((scheme, _)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

/// `crd`'s approval state and its message.
pub fn state(crd: &Value) -> (Approval, String) {
    let value = annotation(crd);
    if value.is_empty() {
        return (
            Approval::Missing,
            format!("protected groups must have approval annotation {ANNOTATION:?}, {SEE}"),
        );
    }
    if value.starts_with("unapproved") {
        return (Approval::Bypassed, format!("not approved: {value:?}"));
    }
    if !request_uri(value) {
        return (
            Approval::Invalid,
            format!(
                "protected groups must have approval annotation {ANNOTATION:?} with either a URL or a reason starting with \"unapproved\", {SEE}"
            ),
        );
    }
    (Approval::Approved, format!("approved in {value}"))
}

/// The validation errors of `new` (updated from `old`, if it is an update): a CRD of a
/// protected group needs an approval; an update that leaves the state as it was passes,
/// so that controllers writing only the spec are not refused.
pub fn validate(old: Option<&Value>, new: &Value) -> Vec<Cause> {
    if !protected(new["spec"]["group"].as_str().unwrap_or("")) {
        return Vec::new();
    }
    let (now, message) = state(new);
    if old.is_some_and(|o| state(o).0 == now) {
        return Vec::new();
    }
    let field = format!("metadata.annotations[{ANNOTATION}]");
    match now {
        Approval::Approved | Approval::Bypassed => Vec::new(),
        Approval::Missing => vec![Cause {
            reason: "FieldValueRequired".into(),
            message: format!("Required value: {message}"),
            field,
        }],
        Approval::Invalid => vec![invalid(field, annotation(new), &message)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd(group: &str, value: Option<&str>) -> Value {
        let mut c = json!({"metadata": {"name": "x"}, "spec": {"group": group}});
        if let Some(v) = value {
            c["metadata"]["annotations"] = json!({ANNOTATION: v});
        }
        c
    }

    #[test]
    fn only_protected_groups_need_an_approval() {
        assert!(validate(None, &crd("example.com", None)).is_empty());
        assert!(validate(None, &crd("notk8s.io", None)).is_empty());
        let missing = validate(None, &crd("sigs.k8s.io", None));
        assert_eq!(missing.len(), 1);
        assert_eq!(
            missing[0].field,
            "metadata.annotations[api-approved.kubernetes.io]"
        );
        assert_eq!(
            missing[0].message,
            "Required value: protected groups must have approval annotation \"api-approved.kubernetes.io\", see https://github.com/kubernetes/enhancements/pull/1111"
        );
        let bad = validate(None, &crd("sigs.k8s.io", Some("invalid")));
        assert_eq!(
            bad[0].message,
            "Invalid value: \"invalid\": protected groups must have approval annotation \"api-approved.kubernetes.io\" with either a URL or a reason starting with \"unapproved\", see https://github.com/kubernetes/enhancements/pull/1111"
        );
        let url = "https://github.com/kubernetes/kubernetes/pull/79724";
        assert!(validate(None, &crd("x.kubernetes.io", Some(url))).is_empty());
        assert!(validate(None, &crd("k8s.io", Some("unapproved, testing"))).is_empty());
        assert_eq!(
            state(&crd("k8s.io", Some(url))).1,
            format!("approved in {url}")
        );
    }

    #[test]
    fn an_unchanged_state_passes_an_update() {
        let old = crd("sigs.k8s.io", Some("invalid"));
        assert!(validate(Some(&old), &crd("sigs.k8s.io", Some("still bad"))).is_empty());
        assert_eq!(validate(Some(&old), &crd("sigs.k8s.io", None)).len(), 1);
    }
}
