//! TokenReview: whether a token authenticates, and as whom (webhook authenticators and
//! admins ask).

use serde_json::{Value, json};

use crate::apiserver::authn::serviceaccount::ISSUER;
use crate::apiserver::kinds::{ResourceDef, Review, Strategy};

/// The `TokenReview` strategy.
pub struct TokenReviews {
    def: ResourceDef,
}

impl TokenReviews {
    /// The strategy with its resource definition.
    pub fn new() -> Self {
        TokenReviews {
            def: ResourceDef::new("authentication.k8s.io", "v1", "TokenReview", "tokenreviews")
                .cluster_scoped()
                .verbs(&["create"]),
        }
    }
}

impl Default for TokenReviews {
    fn default() -> Self {
        Self::new()
    }
}

impl Strategy for TokenReviews {
    fn def(&self) -> &ResourceDef {
        &self.def
    }

    fn review<'a>(
        &'a self,
        srv: &'a crate::apiserver::ApiServer,
        _user: &'a crate::pki::UserInfo,
        _namespace: Option<&'a str>,
        obj: Value,
    ) -> Option<Review<'a>> {
        Some(Box::pin(async move {
            let token = obj["spec"]["token"].as_str().unwrap_or("");
            let asked: Vec<String> = obj["spec"]["audiences"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            // No audiences asked: the API server's own, as upstream.
            let audiences = if asked.is_empty() {
                vec![ISSUER.to_string()]
            } else {
                asked
            };
            let status = match srv.authn.token_user(srv, token, &audiences) {
                Ok(u) => json!({
                    "authenticated": true,
                    "user": super::user_json(&u),
                    "audiences": audiences,
                }),
                Err(e) => json!({"user": {}, "error": e.to_string()}),
            };
            let mut reply = obj;
            reply["apiVersion"] = json!(self.def.api_version());
            reply["kind"] = json!("TokenReview");
            if reply["metadata"].is_null() {
                reply["metadata"] = json!({"creationTimestamp": null});
            }
            reply["status"] = status;
            Ok(reply)
        }))
    }
}
