//! Authentication: who a request comes from. Client certificates (checked by TLS) and
//! `Authorization: Bearer` service-account tokens; every authenticated user also gets
//! `system:authenticated`, as upstream's authenticator union adds it.

pub mod serviceaccount;

use serde_json::Value;

use crate::apiserver::ApiServer;
use crate::pki::UserInfo;
use serviceaccount::{ISSUER, Signer, TokenError};

/// The API server's authenticator.
pub struct Authenticator {
    /// Signs and verifies service-account tokens.
    pub signer: Signer,
}

/// Adds `system:authenticated` (once).
pub fn authenticated(mut user: UserInfo) -> UserInfo {
    if !user.groups.iter().any(|g| g == "system:authenticated") {
        user.groups.push("system:authenticated".into());
    }
    user
}

/// The bearer token of an `Authorization` header, if it carries one.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl Authenticator {
    /// The authenticator around the PKI's service-account key.
    pub fn new(sa_key_pem: &str) -> Result<Self, TokenError> {
        Ok(Authenticator {
            signer: Signer::from_pem(sa_key_pem)?,
        })
    }

    /// The user a service-account token stands for, checked against `audiences` (the
    /// API server's own: the issuer) and against the live objects it names.
    pub fn token_user(
        &self,
        srv: &ApiServer,
        token: &str,
        audiences: &[String],
    ) -> Result<UserInfo, TokenError> {
        let now = jiff::Timestamp::now().as_second();
        let claims = self.signer.verify_signature(token)?;
        if claims["iss"] == serviceaccount::LEGACY_ISSUER {
            // Legacy tokens know only the API server's own audience.
            if !audiences.iter().any(|a| a == ISSUER) {
                return Err(TokenError::Audience);
            }
            return legacy_user(srv, token, &claims);
        }
        serviceaccount::check_bound(&claims, audiences, now)?;
        let k = &claims["kubernetes.io"];
        let ns = k["namespace"].as_str().ok_or(TokenError::Malformed)?;
        let sa = &k["serviceaccount"];
        let name = sa["name"].as_str().ok_or(TokenError::Malformed)?;
        let uid = sa["uid"].as_str().unwrap_or("");
        // As upstream's validator: the objects must still exist, with the same uid.
        let live = |plural: &str, field: &str| -> Result<(), TokenError> {
            let want = &k[field];
            match want["name"].as_str() {
                Some(obj_name) => same_object(srv, plural, ns, obj_name, &want["uid"]),
                None => Ok(()),
            }
        };
        live("serviceaccounts", "serviceaccount")?;
        live("pods", "pod")?;
        live("secrets", "secret")?;
        let mut extra = std::collections::BTreeMap::new();
        let mut put = |key: &str, v: &Value| {
            if let Some(v) = v.as_str() {
                extra.insert(
                    format!("authentication.kubernetes.io/{key}"),
                    vec![v.into()],
                );
            }
        };
        put("pod-name", &k["pod"]["name"]);
        put("pod-uid", &k["pod"]["uid"]);
        put("node-name", &k["node"]["name"]);
        put("node-uid", &k["node"]["uid"]);
        if let Some(jti) = claims["jti"].as_str() {
            extra.insert(
                "authentication.kubernetes.io/credential-id".into(),
                vec![format!("JTI={jti}")],
            );
        }
        Ok(service_account_user(ns, name, uid, extra))
    }

    /// The user of a request's bearer token, for the API server's own audience.
    pub fn bearer_user(&self, srv: &ApiServer, token: &str) -> Result<UserInfo, TokenError> {
        self.token_user(srv, token, &[ISSUER.to_string()])
    }

    /// `/.well-known/openid-configuration`, as upstream's discovery document.
    pub fn openid_configuration(&self) -> Value {
        serde_json::json!({
            "issuer": ISSUER,
            "jwks_uri": format!("{ISSUER}/openid/v1/jwks"),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        })
    }
}

/// The user of a legacy, Secret-based token (upstream's legacy validator): its Secret
/// must exist, not be being deleted and hold this very token, and its service account
/// must exist with the uid the token names.
fn legacy_user(srv: &ApiServer, token: &str, claims: &Value) -> Result<UserInfo, TokenError> {
    use base64::Engine;
    let claim = |k: &str| {
        claims[format!("kubernetes.io/serviceaccount/{k}")]
            .as_str()
            .filter(|v| !v.is_empty())
            .ok_or(TokenError::Malformed)
    };
    let (ns, secret_name) = (claim("namespace")?, claim("secret.name")?);
    let (name, uid) = (
        claim("service-account.name")?,
        claim("service-account.uid")?,
    );
    let secret = core_object(srv, "secrets", ns, secret_name)?
        .ok_or_else(|| TokenError::Stale(format!("secret {ns}/{secret_name} no longer exists")))?;
    if secret["metadata"]["deletionTimestamp"].is_string() {
        return Err(TokenError::Stale(format!(
            "secret {ns}/{secret_name} is being deleted"
        )));
    }
    let held = secret["data"]["token"]
        .as_str()
        .and_then(|t| base64::engine::general_purpose::STANDARD.decode(t).ok());
    // Compared without stopping at the first difference.
    let same = held.is_some_and(|h| {
        h.len() == token.len()
            && h.iter()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    });
    if !same {
        return Err(TokenError::Stale(format!(
            "token does not match secret {ns}/{secret_name}"
        )));
    }
    same_object(srv, "serviceaccounts", ns, name, &Value::from(uid))?;
    Ok(service_account_user(ns, name, uid, Default::default()))
}

/// A core/v1 object as stored, shared (this runs on every bearer request).
fn core_object(
    srv: &ApiServer,
    plural: &str,
    ns: &str,
    name: &str,
) -> Result<Option<std::sync::Arc<Value>>, TokenError> {
    let snap = srv.registry.snapshot();
    let def = snap
        .find("", "v1", plural)
        .ok_or(TokenError::Malformed)?
        .def()
        .clone();
    Ok(srv.store.get_shared(&def.key(Some(ns), name)))
}

/// That the object a token names still exists with the uid the token names.
fn same_object(
    srv: &ApiServer,
    plural: &str,
    ns: &str,
    name: &str,
    uid: &Value,
) -> Result<(), TokenError> {
    match core_object(srv, plural, ns, name)? {
        Some(o) if o["metadata"]["uid"] == *uid => Ok(()),
        Some(_) => Err(TokenError::Stale(format!(
            "{plural} {ns}/{name} has changed since the token was issued"
        ))),
        None => Err(TokenError::Stale(format!(
            "{plural} {ns}/{name} no longer exists"
        ))),
    }
}

/// The user a service account's token stands for, with upstream's groups.
fn service_account_user(
    ns: &str,
    name: &str,
    uid: &str,
    extra: std::collections::BTreeMap<String, Vec<String>>,
) -> UserInfo {
    authenticated(UserInfo {
        name: format!("system:serviceaccount:{ns}:{name}"),
        uid: uid.into(),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{ns}"),
        ],
        extra,
    })
}
