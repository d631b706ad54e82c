//! kube-controller-manager's service-account token controller (upstream's
//! `serviceaccount-token-controller`, `tokens_controller.go`): a Secret of type
//! `kubernetes.io/service-account-token` that names a service account in its
//! `kubernetes.io/service-account.name` annotation gets a legacy, non-expiring token for
//! that account (`data.token`), the cluster CA (`ca.crt`) and its namespace, and the
//! account's uid in `kubernetes.io/service-account.uid`; it is deleted when its account
//! is gone or replaced. Upstream no longer creates such Secrets by itself (since 1.24):
//! only those users create are filled. Like upstream, the controller signs with the
//! service-account key the manager is given, and runs as the manager itself (its role
//! may read, update and delete Secrets for this).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube_client::Api;
use kube_client::api::{DeleteParams, PostParams, Preconditions};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::informer::{Cache, Change, Informer, ObjectKey, by_namespace};
use super::{Action, WorkQueue, code, run_workers, watch_config};
use crate::apiserver::authn::serviceaccount::{Signer, legacy_claims};

/// The Secret type this controller fills.
pub const TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
/// The annotation naming the Secret's service account.
pub const NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
/// The annotation holding the service account's uid.
pub const UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";

/// Why one Secret could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum TokenSyncError {
    /// A request failed.
    #[error(transparent)]
    Request(#[from] kube_client::Error),
    /// The token could not be signed.
    #[error("signing: {0}")]
    Sign(#[from] crate::apiserver::authn::serviceaccount::TokenError),
}

/// The controller, wired to its informers (start it with [`Controller::start`]).
pub struct Controller {
    ctx: Arc<Ctx>,
    secret_feed: mpsc::Receiver<Change<Secret>>,
    account_feed: mpsc::Receiver<Change<ServiceAccount>>,
    secrets: Informer<Secret>,
    accounts: Informer<ServiceAccount>,
    shutdown: CancellationToken,
}

struct Ctx {
    client: kube_client::Client,
    signer: Signer,
    ca_pem: String,
    secrets: Cache<Secret>,
    accounts: Cache<ServiceAccount>,
    queue: Arc<WorkQueue<ObjectKey>>,
}

fn annotation<'a>(
    meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) -> &'a str {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
        .unwrap_or("")
}

impl Controller {
    /// Sets up the informers of token Secrets and of service accounts, signing with
    /// `signer` and publishing `ca_pem`.
    pub fn new(
        client: kube_client::Client,
        signer: Signer,
        ca_pem: String,
        shutdown: CancellationToken,
    ) -> Self {
        let mut secrets = Informer::new(
            Api::all(client.clone()),
            watch_config().fields(&format!("type={TOKEN_TYPE}")),
            "secrets",
            vec![by_namespace()],
        );
        let mut accounts = Informer::new(
            Api::all(client.clone()),
            watch_config(),
            "serviceaccounts",
            vec![by_namespace()],
        );
        let ctx = Arc::new(Ctx {
            client,
            signer,
            ca_pem,
            secrets: secrets.cache(),
            accounts: accounts.cache(),
            queue: Arc::new(WorkQueue::new(shutdown.clone())),
        });
        Controller {
            ctx,
            secret_feed: secrets.subscribe(),
            account_feed: accounts.subscribe(),
            secrets,
            accounts,
            shutdown,
        }
    }

    /// Runs the informers, the triggers and the worker; returns their tasks and the
    /// Secret cache (to wait for its sync).
    pub fn start(self) -> (Vec<JoinHandle<()>>, Cache<Secret>) {
        let Controller {
            ctx,
            mut secret_feed,
            mut account_feed,
            secrets,
            accounts,
            shutdown,
        } = self;
        let cache = secrets.cache();
        let mut tasks = vec![
            tokio::spawn(secrets.run(shutdown.clone())),
            tokio::spawn(accounts.run(shutdown.clone())),
        ];
        let q = ctx.queue.clone();
        let c = ctx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    Some(ch) = secret_feed.recv() => if let Change::Applied(s) = ch {
                        q.add(ObjectKey::of(s.as_ref()));
                    },
                    // An account created, replaced or deleted: its Secrets look again.
                    Some(ch) = account_feed.recv() => {
                        let sa = ch.object();
                        let ns = sa.metadata.namespace.clone().unwrap_or_default();
                        let name = sa.metadata.name.clone().unwrap_or_default();
                        for s in c.secrets.by_index(super::informer::BY_NAMESPACE, &ns) {
                            if annotation(&s.metadata, NAME_ANNOTATION) == name {
                                q.add(ObjectKey::of(s.as_ref()));
                            }
                        }
                    },
                    else => return,
                }
            }
        }));
        let queue = ctx.queue.clone();
        tasks.push(tokio::spawn(run_workers(
            "serviceaccount-token",
            queue,
            move |key: ObjectKey| {
                let ctx = ctx.clone();
                async move { ctx.reconcile(&key).await }
            },
        )));
        (tasks, cache)
    }
}

impl Ctx {
    /// The Secret's account as it is now (the cache, then the server), if it exists and
    /// is the one the Secret names by uid.
    async fn account(
        &self,
        ns: &str,
        name: &str,
        uid: &str,
    ) -> Result<Option<ServiceAccount>, kube_client::Error> {
        let found = match self.accounts.get(&ObjectKey::new(ns, name)) {
            Some(sa) => Some((*sa).clone()),
            None => match Api::<ServiceAccount>::namespaced(self.client.clone(), ns)
                .get(name)
                .await
            {
                Ok(sa) => Some(sa),
                Err(e) if code(&e) == 404 => None,
                Err(e) => return Err(e),
            },
        };
        Ok(found.filter(|sa| uid.is_empty() || sa.metadata.uid.as_deref() == Some(uid)))
    }

    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, TokenSyncError> {
        let Some(secret) = self.secrets.get(key) else {
            return Ok(Action::Done);
        };
        if secret.metadata.deletion_timestamp.is_some() {
            return Ok(Action::Done);
        }
        let sa_name = annotation(&secret.metadata, NAME_ANNOTATION);
        if sa_name.is_empty() {
            return Ok(Action::Done);
        }
        let uid = annotation(&secret.metadata, UID_ANNOTATION);
        let api = Api::<Secret>::namespaced(self.client.clone(), &key.namespace);
        let Some(sa) = self.account(&key.namespace, sa_name, uid).await? else {
            tracing::info!(secret = %key, "service account is gone: deleting its token");
            let dp = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: secret.metadata.uid.clone(),
                    resource_version: None,
                }),
                ..Default::default()
            };
            return match api.delete(&key.name, &dp).await {
                Ok(_) => Ok(Action::Done),
                Err(e) if matches!(code(&e), 404 | 409) => Ok(Action::Done),
                Err(e) => Err(e.into()),
            };
        };
        let sa_uid = sa.metadata.uid.clone().unwrap_or_default();
        let data = secret.data.clone().unwrap_or_default();
        let has = |k: &str, want: &[u8]| data.get(k).is_some_and(|v| v.0 == want);
        let token_present = data.get("token").is_some_and(|t| !t.0.is_empty());
        if token_present
            && has("ca.crt", self.ca_pem.as_bytes())
            && has("namespace", key.namespace.as_bytes())
            && uid == sa_uid
        {
            return Ok(Action::Done);
        }
        let mut updated = (*secret).clone();
        let mut data: BTreeMap<String, ByteString> = data;
        data.insert(
            "ca.crt".into(),
            ByteString(self.ca_pem.clone().into_bytes()),
        );
        data.insert(
            "namespace".into(),
            ByteString(key.namespace.clone().into_bytes()),
        );
        if !token_present {
            let claims = legacy_claims(&key.namespace, sa_name, &sa_uid, &key.name);
            let token = self.signer.sign(&claims)?;
            data.insert("token".into(), ByteString(token.into_bytes()));
        }
        updated.data = Some(data);
        let annotations = updated
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new);
        annotations.insert(NAME_ANNOTATION.into(), sa_name.to_string());
        annotations.insert(UID_ANNOTATION.into(), sa_uid);
        match api
            .replace(&key.name, &PostParams::default(), &updated)
            .await
        {
            Ok(_) => Ok(Action::Done),
            // Gone meanwhile; a conflict comes back with the newer copy.
            Err(e) if code(&e) == 404 => Ok(Action::Done),
            Err(e) => Err(e.into()),
        }
    }
}
