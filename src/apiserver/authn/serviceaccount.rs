//! Service-account JWTs (ES256), issued by TokenRequest and verified on every bearer
//! request, with upstream's claims. Signed with ring directly: the tree already has it
//! via rustls, and a compact JWS over one fixed algorithm is a few lines.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, UnparsedPublicKey};
use serde_json::{Value, json};
use sha2::Digest;

/// The issuer (and the API server's own audience), as kind's clusters have it.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not a compact JWS of three base64url parts with JSON header and claims.
    #[error("malformed token")]
    Malformed,
    /// Signed by another key or with another algorithm.
    #[error("invalid signature")]
    Signature,
    /// Issued by someone else.
    #[error("token issuer is not {ISSUER}")]
    Issuer,
    /// Outside its validity window.
    #[error("token has expired or is not yet valid")]
    Expired,
    /// Not meant for this audience.
    #[error("token audiences do not match")]
    Audience,
    /// The service account, pod or secret it names is gone or was replaced.
    #[error("{0}")]
    Stale(String),
    /// The signing key could not be loaded.
    #[error("service-account key: {0}")]
    Key(String),
}

/// The key pair that signs and verifies tokens.
pub struct Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    kid: String,
    /// Claims of tokens whose signature already verified, by the token's SHA-256: the
    /// ECDSA check is most of a bearer request's authentication cost, and a signature
    /// that verified once with this key always will. Issuer, time window and audience
    /// are still checked on every request, and the caller still checks the live objects,
    /// so a deleted account's token stops working at once.
    verified: std::sync::Mutex<std::collections::HashMap<[u8; 32], Value>>,
}

/// Verified signatures remembered before the cache starts over.
const VERIFIED_CAPACITY: usize = 4096;

impl Signer {
    /// Loads the PKCS#8 PEM key the PKI step wrote.
    pub fn from_pem(pem: &str) -> Result<Self, TokenError> {
        let kp = rcgen::KeyPair::from_pem(pem).map_err(|e| TokenError::Key(e.to_string()))?;
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &kp.serialize_der(),
            &rng,
        )
        .map_err(|e| TokenError::Key(e.to_string()))?;
        // Upstream's key id: the unpadded base64url SHA-256 of the PKIX public key.
        let kid = B64.encode(sha2::Sha256::digest(
            rcgen::PublicKeyData::subject_public_key_info(&kp),
        ));
        Ok(Signer {
            key,
            rng,
            kid,
            verified: Default::default(),
        })
    }

    /// Signs `claims` as a compact JWS.
    pub fn sign(&self, claims: &Value) -> Result<String, TokenError> {
        let header = json!({"alg": "ES256", "kid": self.kid});
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = self
            .key
            .sign(&self.rng, input.as_bytes())
            .map_err(|e| TokenError::Key(e.to_string()))?;
        Ok(format!("{input}.{}", B64.encode(sig.as_ref())))
    }

    /// Checks signature, issuer, time window and audience of a bound token; returns the
    /// claims.
    pub fn verify(&self, token: &str, audiences: &[String], now: i64) -> Result<Value, TokenError> {
        let claims = self.verify_signature(token)?;
        check_bound(&claims, audiences, now)?;
        Ok(claims)
    }

    /// Checks only that this key signed `token`; returns its claims (whatever their
    /// issuer: legacy tokens are checked against their Secret instead).
    pub fn verify_signature(&self, token: &str) -> Result<Value, TokenError> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header: Value = B64
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(TokenError::Malformed)?;
        if header["alg"] != "ES256" {
            return Err(TokenError::Signature);
        }
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let known = self
            .verified
            .lock()
            .ok()
            .and_then(|m| m.get(&digest).cloned());
        let claims = match known {
            Some(claims) => claims,
            None => {
                let sig = B64.decode(s).map_err(|_| TokenError::Malformed)?;
                UnparsedPublicKey::new(
                    &signature::ECDSA_P256_SHA256_FIXED,
                    self.key.public_key().as_ref(),
                )
                .verify(format!("{h}.{c}").as_bytes(), &sig)
                .map_err(|_| TokenError::Signature)?;
                let claims: Value = B64
                    .decode(c)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .ok_or(TokenError::Malformed)?;
                if let Ok(mut m) = self.verified.lock() {
                    if m.len() >= VERIFIED_CAPACITY {
                        m.clear();
                    }
                    m.insert(digest, claims.clone());
                }
                claims
            }
        };
        Ok(claims)
    }

    /// The JSON Web Key Set served at `/openid/v1/jwks`.
    pub fn jwks(&self) -> Value {
        // An uncompressed P-256 point: 0x04 || x (32 bytes) || y (32 bytes).
        let point = self.key.public_key().as_ref();
        json!({"keys": [{
            "use": "sig",
            "kty": "EC",
            "kid": self.kid,
            "crv": "P-256",
            "alg": "ES256",
            "x": B64.encode(&point[1..33]),
            "y": B64.encode(&point[33..65]),
        }]})
    }
}

/// A bound token's issuer, time window and audiences.
pub fn check_bound(claims: &Value, audiences: &[String], now: i64) -> Result<(), TokenError> {
    if claims["iss"] != ISSUER {
        return Err(TokenError::Issuer);
    }
    // Upstream allows a little clock skew on both ends.
    let leeway = 60;
    let exp = claims["exp"].as_i64().ok_or(TokenError::Malformed)?;
    let nbf = claims["nbf"].as_i64().unwrap_or(0);
    if now > exp + leeway || now + leeway < nbf {
        return Err(TokenError::Expired);
    }
    let aud: Vec<&str> = match &claims["aud"] {
        Value::String(a) => vec![a.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !audiences.iter().any(|a| aud.contains(&a.as_str())) {
        return Err(TokenError::Audience);
    }
    Ok(())
}

/// The issuer of legacy, Secret-based tokens (they carry no audience and no expiry).
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";

/// Upstream's claims of a legacy token of service account `ns/name` (uid `uid`) kept in
/// the Secret `secret`.
pub fn legacy_claims(ns: &str, name: &str, uid: &str, secret: &str) -> Value {
    json!({
        "iss": LEGACY_ISSUER,
        "kubernetes.io/serviceaccount/namespace": ns,
        "kubernetes.io/serviceaccount/secret.name": secret,
        "kubernetes.io/serviceaccount/service-account.name": name,
        "kubernetes.io/serviceaccount/service-account.uid": uid,
        "sub": format!("system:serviceaccount:{ns}:{name}"),
    })
}

/// Upstream's claims for a token of service account `ns/name` (uid `uid`), valid
/// `seconds` from `now`, optionally bound to an object (`("pod"|"secret", name, uid)`)
/// and the pod's node.
#[allow(clippy::too_many_arguments)]
pub fn claims(
    ns: &str,
    name: &str,
    uid: &str,
    audiences: &[String],
    now: i64,
    seconds: i64,
    bound: Option<(&str, &str, &str)>,
    node: Option<(&str, &str)>,
) -> Value {
    let mut k8s = json!({
        "namespace": ns,
        "serviceaccount": {"name": name, "uid": uid},
    });
    if let Some((field, n, u)) = bound {
        k8s[field] = json!({"name": n, "uid": u});
    }
    if let Some((n, u)) = node {
        k8s["node"] = json!({"name": n, "uid": u});
    }
    json!({
        "aud": audiences,
        "exp": now + seconds,
        "iat": now,
        "iss": ISSUER,
        "jti": uuid::Uuid::new_v4().to_string(),
        "kubernetes.io": k8s,
        "nbf": now,
        "sub": format!("system:serviceaccount:{ns}:{name}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        Signer::from_pem(&kp.serialize_pem()).unwrap()
    }

    #[test]
    fn round_trip_and_refusals() {
        let s = signer();
        let aud = vec![ISSUER.to_string()];
        let c = claims("default", "bot", "u1", &aud, 1000, 600, None, None);
        let t = s.sign(&c).unwrap();
        let back = s.verify(&t, &aud, 1100).unwrap();
        assert_eq!(back["sub"], "system:serviceaccount:default:bot");
        assert!(matches!(
            s.verify(&t, &aud, 1000 + 600 + 61),
            Err(TokenError::Expired)
        ));
        assert!(matches!(
            s.verify(&t, &["other".into()], 1100),
            Err(TokenError::Audience)
        ));
        let other = signer();
        assert!(matches!(
            other.verify(&t, &aud, 1100),
            Err(TokenError::Signature)
        ));
        assert!(matches!(
            s.verify("garbage", &aud, 1100),
            Err(TokenError::Malformed)
        ));
        let jwks = s.jwks();
        assert_eq!(jwks["keys"][0]["crv"], "P-256");
    }

    #[test]
    fn remembered_signatures_still_check_the_rest() {
        let s = signer();
        let aud = vec![ISSUER.to_string()];
        let t = s
            .sign(&claims("default", "bot", "u1", &aud, 1000, 600, None, None))
            .unwrap();
        assert!(s.verify(&t, &aud, 1100).is_ok());
        // Now remembered: the window and audience are still enforced.
        assert!(s.verify(&t, &aud, 1100).is_ok());
        assert!(matches!(s.verify(&t, &aud, 5000), Err(TokenError::Expired)));
        assert!(matches!(
            s.verify(&t, &["other".into()], 1100),
            Err(TokenError::Audience)
        ));
        // The same claims under another signature are checked afresh.
        let (input, _) = t.rsplit_once('.').unwrap();
        let forged = format!("{input}.{}", B64.encode([7u8; 64]));
        assert!(matches!(
            s.verify(&forged, &aud, 1100),
            Err(TokenError::Signature)
        ));
    }
}
