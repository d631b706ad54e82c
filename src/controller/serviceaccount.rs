//! kube-controller-manager's service-account controller: a `default` ServiceAccount in
//! every active namespace, recreated when deleted.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_client::Api;
use kube_client::api::PostParams;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::informer::{Cache, Change, Informer, ObjectKey};
use super::{Action, WorkQueue, code, run_workers, terminating, watch_config};

/// The ServiceAccount every namespace gets.
pub const DEFAULT: &str = "default";

/// The controller, wired to its informers (start it with [`Controller::start`]).
pub struct Controller {
    ctx: Arc<Ctx>,
    ns_feed: mpsc::Receiver<Change<Namespace>>,
    sa_feed: mpsc::Receiver<Change<ServiceAccount>>,
    accounts: Informer<ServiceAccount>,
    shutdown: CancellationToken,
}

struct Ctx {
    client: kube_client::Client,
    namespaces: Cache<Namespace>,
    accounts: Cache<ServiceAccount>,
    queue: Arc<WorkQueue<String>>,
}

impl Controller {
    /// Subscribes to `namespaces` and sets up the (default-named) ServiceAccount informer.
    /// Its informer runs as `informers` (the controller manager's identity, which may
    /// list and watch; the controller's own role may only create ServiceAccounts), as
    /// upstream's shared informer factory does.
    pub fn new(
        client: kube_client::Client,
        informers: &kube_client::Client,
        namespaces: &mut Informer<Namespace>,
        shutdown: CancellationToken,
    ) -> Self {
        let mut accounts = Informer::new(
            Api::all(informers.clone()),
            watch_config().fields(&format!("metadata.name={DEFAULT}")),
            "serviceaccounts",
            vec![super::informer::by_namespace()],
        );
        let ctx = Arc::new(Ctx {
            client,
            namespaces: namespaces.cache(),
            accounts: accounts.cache(),
            queue: Arc::new(WorkQueue::new(shutdown.clone())),
        });
        Controller {
            ctx,
            ns_feed: namespaces.subscribe(),
            sa_feed: accounts.subscribe(),
            accounts,
            shutdown,
        }
    }

    /// Runs the informer, the triggers and the worker; returns their tasks and the
    /// ServiceAccount cache (to wait for its sync).
    pub fn start(self) -> (Vec<JoinHandle<()>>, Cache<ServiceAccount>) {
        let Controller {
            ctx,
            mut ns_feed,
            mut sa_feed,
            accounts,
            shutdown,
        } = self;
        let cache = accounts.cache();
        let mut tasks = vec![tokio::spawn(accounts.run(shutdown.clone()))];
        let q = ctx.queue.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    Some(c) = ns_feed.recv() => if let Change::Applied(ns) = c
                        && !terminating(&ns)
                    {
                        q.add(ns.metadata.name.clone().unwrap_or_default());
                    },
                    Some(c) = sa_feed.recv() => if let Change::Deleted(sa) = c {
                        q.add(sa.metadata.namespace.clone().unwrap_or_default());
                    },
                    else => return,
                }
            }
        }));
        let queue = ctx.queue.clone();
        tasks.push(tokio::spawn(run_workers(
            "serviceaccount",
            queue,
            move |ns: String| {
                let ctx = ctx.clone();
                async move { ctx.reconcile(&ns).await }
            },
        )));
        (tasks, cache)
    }
}

impl Ctx {
    async fn reconcile(&self, ns: &str) -> Result<Action, kube_client::Error> {
        let Some(namespace) = self.namespaces.get(&ObjectKey::new("", ns)) else {
            return Ok(Action::Done);
        };
        if terminating(&namespace) || self.accounts.get(&ObjectKey::new(ns, DEFAULT)).is_some() {
            return Ok(Action::Done);
        }
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(DEFAULT.into()),
                namespace: Some(ns.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        match Api::<ServiceAccount>::namespaced(self.client.clone(), ns)
            .create(&PostParams::default(), &sa)
            .await
        {
            Ok(_) => Ok(Action::Done),
            // Already there (the cache will catch up), or the namespace went away /
            // is terminating: nothing to do.
            Err(e) if matches!(code(&e), 409 | 404 | 403) => Ok(Action::Done),
            Err(e) => Err(e),
        }
    }
}
