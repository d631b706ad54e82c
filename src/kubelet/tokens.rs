//! The kubelet's token manager (upstream's `pkg/kubelet/token`): service-account tokens
//! for projected volumes, asked for with TokenRequest (`serviceaccounts/<name>/token`)
//! bound to the pod, cached per pod, account, audience and lifetime, and renewed once 80 %
//! of their lifetime has passed (or after a day, whichever is first).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::{ApiClient, ClientError};

/// A token is renewed after at most this long, however long it lives.
const MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Why a token could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The API server refused the TokenRequest.
    #[error(transparent)]
    Api(#[from] ClientError),
    /// It answered without a token.
    #[error("the TokenRequest answer holds no token")]
    Empty,
}

/// A token and when to ask for the next one.
#[derive(Clone)]
pub struct Token {
    /// The JWT.
    pub token: String,
    /// When it should be renewed.
    pub refresh_at: Instant,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    pod_uid: String,
    namespace: String,
    account: String,
    audience: String,
    seconds: i64,
}

/// The tokens of this node's pods.
#[derive(Default)]
pub struct TokenManager {
    cache: Mutex<HashMap<Key, Token>>,
}

impl TokenManager {
    /// A token for `pod`'s service account, from the cache while it is fresh.
    pub async fn token(
        &self,
        api: &ApiClient,
        pod: &Value,
        audience: Option<&str>,
        seconds: i64,
    ) -> Result<Token, TokenError> {
        let meta = &pod["metadata"];
        let key = Key {
            pod_uid: meta["uid"].as_str().unwrap_or("").into(),
            namespace: meta["namespace"].as_str().unwrap_or("default").into(),
            account: pod["spec"]["serviceAccountName"]
                .as_str()
                .unwrap_or("default")
                .into(),
            audience: audience.unwrap_or("").into(),
            seconds,
        };
        if let Some(t) = self.lock().get(&key)
            && Instant::now() < t.refresh_at
        {
            return Ok(t.clone());
        }
        let mut spec = json!({
            "expirationSeconds": seconds,
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod",
                               "name": meta["name"], "uid": meta["uid"]},
        });
        if let Some(a) = audience {
            spec["audiences"] = json!([a]);
        }
        let path = format!(
            "/api/v1/namespaces/{}/serviceaccounts/{}/token",
            key.namespace, key.account
        );
        let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                          "metadata": {"name": key.account}, "spec": spec});
        let reply = api.post(&path, &body).await?;
        let jwt = reply["status"]["token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or(TokenError::Empty)?;
        // The server may shorten or lengthen the lifetime; renew on what it granted.
        let granted = reply["spec"]["expirationSeconds"]
            .as_i64()
            .unwrap_or(seconds)
            .max(1) as u64;
        let refresh_in = Duration::from_secs(granted * 8 / 10).min(MAX_AGE);
        let token = Token {
            token: jwt.to_string(),
            refresh_at: Instant::now() + refresh_in,
        };
        self.lock().insert(key, token.clone());
        Ok(token)
    }

    /// Drops the tokens of a pod that is gone.
    pub fn forget(&self, pod_uid: &str) {
        self.lock().retain(|k, _| k.pod_uid != pod_uid);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Token>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}
