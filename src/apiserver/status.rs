//! `metav1.Status` errors: every failure the API server reports is one of these, with the
//! upstream reason, code and message shape, so kubectl prints what users know.

use http::StatusCode;
use serde_json::{Value, json};

use super::kinds::ResourceDef;
use super::validation::Cause;
use crate::store::StoreError;

/// An API error, rendered as a `metav1.Status` body.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `reason` (NotFound, AlreadyExists, Conflict, Invalid, BadRequest, ...).
    pub reason: &'static str,
    /// Human-readable message (kubectl prints it).
    pub message: String,
    /// `details`, when upstream sends them.
    pub details: Option<Value>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub(crate) fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// An error a webhook (or another remote party) chose: its `code`, and its `reason`
    /// when it is one of upstream's `StatusReason`s (otherwise the code's own reason), so
    /// clients see the status the webhook sent.
    pub fn relayed(code: u16, reason: &str, message: impl Into<String>, details: Value) -> Self {
        const KNOWN: &[&str] = &[
            "Unauthorized",
            "Forbidden",
            "NotFound",
            "AlreadyExists",
            "Conflict",
            "Gone",
            "Invalid",
            "ServerTimeout",
            "StoreReadError",
            "Timeout",
            "TooManyRequests",
            "BadRequest",
            "MethodNotAllowed",
            "NotAcceptable",
            "RequestEntityTooLarge",
            "UnsupportedMediaType",
            "InternalError",
            "Expired",
            "ServiceUnavailable",
        ];
        let reason = KNOWN
            .iter()
            .copied()
            .find(|k| *k == reason)
            .unwrap_or(match code {
                400 => "BadRequest",
                401 => "Unauthorized",
                404 => "NotFound",
                409 => "Conflict",
                422 => "Invalid",
                429 => "TooManyRequests",
                500 => "InternalError",
                503 => "ServiceUnavailable",
                _ => "Forbidden",
            });
        Self::new(code, reason, message).with_details(details)
    }

    /// 404 NotFound with a message from elsewhere (e.g. a kubelet).
    pub fn not_found_message(message: impl Into<String>) -> Self {
        Self::new(404, "NotFound", message)
    }

    /// 429 TooManyRequests.
    pub fn too_many_requests(message: impl Into<String>) -> Self {
        Self::new(429, "TooManyRequests", message)
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 401 Unauthorized.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// 404 for a path nothing serves.
    pub fn path_not_found() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    /// 404 NotFound for a named object.
    pub fn not_found(res: &ResourceDef, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{}\" not found", res.qualified(), name),
        )
        .with_details(details(res, name))
    }

    /// 404 for a missing namespace when creating into it.
    pub fn namespace_not_found(ns: &str) -> Self {
        Self::new(404, "NotFound", format!("namespaces \"{ns}\" not found"))
            .with_details(json!({"name": ns, "kind": "namespaces"}))
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message).with_details(json!({}))
    }

    /// 409 AlreadyExists.
    pub fn already_exists(res: &ResourceDef, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{}\" already exists", res.qualified(), name),
        )
        .with_details(details(res, name))
    }

    /// 409 Conflict (stale resourceVersion).
    pub fn conflict(res: &ResourceDef, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                res.qualified(),
                name
            ),
        )
        .with_details(details(res, name))
    }

    /// 409 Conflict with a custom message (e.g. uid precondition).
    pub fn conflict_msg(res: &ResourceDef, name: &str, msg: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": {}",
                res.qualified(),
                name,
                msg
            ),
        )
        .with_details(details(res, name))
    }

    /// 410 Expired (watch from a version no longer kept).
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 504 Timeout for a read of a resourceVersion the store has not reached (upstream's
    /// watch cache: "Too large resource version", cause `ResourceVersionTooLarge`, retry
    /// after 1 s).
    pub fn too_large_resource_version(requested: u64, current: u64) -> Self {
        Self::new(
            504,
            "Timeout",
            format!("Timeout: Too large resource version: {requested}, current: {current}"),
        )
        .with_details(json!({
            "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
            "retryAfterSeconds": 1,
        }))
    }

    /// 413 RequestEntityTooLarge.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(ct: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {ct:?})"
            ),
        )
    }

    /// 422 Invalid with causes.
    pub fn invalid(res: &ResourceDef, name: &str, causes: &[Cause]) -> Self {
        // Upstream names the kind with its group (`Deployment.apps "web" is invalid`).
        let kind = if res.group.is_empty() {
            res.kind.clone()
        } else {
            format!("{}.{}", res.kind, res.group)
        };
        let msg = super::validation::invalid_message(&kind, name, causes);
        let mut d = json!({"name": name, "kind": res.kind, "causes": causes});
        if !res.group.is_empty() {
            d["group"] = json!(res.group);
        }
        Self::new(422, "Invalid", msg).with_details(d)
    }

    /// 422 Invalid for request options (`CreateOptions`, `DeleteOptions`, ... of
    /// `meta.k8s.io`), as upstream reports a bad `dryRun` or `fieldValidation`.
    pub fn invalid_options(kind: &str, causes: &[Cause]) -> Self {
        let msg = super::validation::invalid_message(&format!("{kind}.meta.k8s.io"), "", causes);
        Self::new(422, "Invalid", msg)
            .with_details(json!({"group": "meta.k8s.io", "kind": kind, "causes": causes}))
    }

    /// 500 InternalError (never with internals beyond a short message).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }

    /// 503 ServiceUnavailable.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// Maps a store error for the object `name` of `res`.
    pub fn from_store(res: &ResourceDef, name: &str, e: StoreError) -> Self {
        match e {
            StoreError::AlreadyExists => Self::already_exists(res, name),
            StoreError::NotFound => Self::not_found(res, name),
            StoreError::Conflict => Self::conflict(res, name),
            StoreError::Expired { requested, oldest } => {
                Self::expired(format!("too old resource version: {requested} ({oldest})"))
            }
            StoreError::Rejected(m) => Self::bad_request(m),
            other => {
                tracing::error!(error = %other, "store failure");
                Self::internal("storage error")
            }
        }
    }

    /// The HTTP status code.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The `metav1.Status` JSON body.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

/// A string quoted as Go's `strconv.Quote` does, for messages that upstream formats with
/// `%q` (printable characters as they are, the rest escaped).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn details(res: &ResourceDef, name: &str) -> Value {
    let mut d = json!({"name": name, "kind": res.plural});
    if !res.group.is_empty() {
        d["group"] = json!(res.group);
    }
    d
}

/// A `Status` with `status: Success`, as returned by some deletes.
pub fn success(res: &ResourceDef, name: &str, uid: Option<&str>) -> Value {
    let mut d = details(res, name);
    if let Some(uid) = uid {
        d["uid"] = json!(uid);
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": d,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_quote_matches_strconv_quote() {
        assert_eq!(go_quote("abc"), r#""abc""#);
        assert_eq!(go_quote(""), r#""""#);
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("x\ny\u{1}"), r#""x\ny\x01""#);
        assert_eq!(go_quote("héllo"), r#""héllo""#);
    }

    #[test]
    fn too_large_resource_version_is_upstreams_timeout() {
        let s = ApiError::too_large_resource_version(99, 7).to_status();
        assert_eq!(s["code"], 504);
        assert_eq!(s["reason"], "Timeout");
        assert_eq!(
            s["message"],
            "Timeout: Too large resource version: 99, current: 7"
        );
        assert_eq!(
            s["details"]["causes"][0]["reason"],
            "ResourceVersionTooLarge"
        );
        assert_eq!(s["details"]["retryAfterSeconds"], 1);
    }
}
