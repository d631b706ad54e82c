//! kube-controller-manager's root-CA publisher: a ConfigMap `kube-root-ca.crt` holding
//! the cluster CA (`data["ca.crt"]`) in every namespace, as upstream's
//! rootcacertpublisher keeps it: recreated when deleted, restored when changed, never
//! created in a terminating namespace.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_client::Api;
use kube_client::api::PostParams;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::informer::{Cache, Change, Informer, ObjectKey};
use super::{Action, WorkQueue, code, run_workers, terminating, watch_config};

/// The ConfigMap's name.
pub const NAME: &str = "kube-root-ca.crt";
/// The annotation describing what the ConfigMap is for.
pub const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
/// Its value, as upstream words it.
pub const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// The controller, wired to its informers (start it with [`Controller::start`]).
pub struct Controller {
    ctx: Arc<Ctx>,
    ns_feed: mpsc::Receiver<Change<Namespace>>,
    cm_feed: mpsc::Receiver<Change<ConfigMap>>,
    configmaps: Informer<ConfigMap>,
    shutdown: CancellationToken,
}

struct Ctx {
    client: kube_client::Client,
    ca_pem: String,
    namespaces: Cache<Namespace>,
    configmaps: Cache<ConfigMap>,
    queue: Arc<WorkQueue<String>>,
}

impl Controller {
    /// Subscribes to `namespaces` and sets up the informer of the `kube-root-ca.crt`
    /// ConfigMaps (only those: a field selector on the name).
    /// Its informer runs as `informers` (the controller manager's identity, which may
    /// list and watch; the publisher's own role may only write ConfigMaps), as upstream's
    /// shared informer factory does.
    pub fn new(
        client: kube_client::Client,
        informers: &kube_client::Client,
        namespaces: &mut Informer<Namespace>,
        ca_pem: String,
        shutdown: CancellationToken,
    ) -> Self {
        let mut configmaps = Informer::new(
            Api::all(informers.clone()),
            watch_config().fields(&format!("metadata.name={NAME}")),
            "configmaps",
            vec![super::informer::by_namespace()],
        );
        let ctx = Arc::new(Ctx {
            client,
            ca_pem,
            namespaces: namespaces.cache(),
            configmaps: configmaps.cache(),
            queue: Arc::new(WorkQueue::new(shutdown.clone())),
        });
        Controller {
            ctx,
            ns_feed: namespaces.subscribe(),
            cm_feed: configmaps.subscribe(),
            configmaps,
            shutdown,
        }
    }

    /// Runs the informer, the triggers and the worker; returns their tasks and the
    /// ConfigMap cache (to wait for its sync).
    pub fn start(self) -> (Vec<JoinHandle<()>>, Cache<ConfigMap>) {
        let Controller {
            ctx,
            mut ns_feed,
            mut cm_feed,
            configmaps,
            shutdown,
        } = self;
        let cache = configmaps.cache();
        let mut tasks = vec![tokio::spawn(configmaps.run(shutdown.clone()))];
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
                    // Changed or deleted: look at that namespace's copy again.
                    Some(c) = cm_feed.recv() => {
                        q.add(c.object().metadata.namespace.clone().unwrap_or_default());
                    },
                    else => return,
                }
            }
        }));
        let queue = ctx.queue.clone();
        tasks.push(tokio::spawn(run_workers(
            "root-ca-cert-publisher",
            queue,
            move |ns: String| {
                let ctx = ctx.clone();
                async move { ctx.reconcile(&ns).await }
            },
        )));
        (tasks, cache)
    }
}

/// Whether `cm` holds exactly `data` and a description.
fn up_to_date(cm: &ConfigMap, data: &BTreeMap<String, String>) -> bool {
    cm.data.as_ref() == Some(data)
        && cm
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(DESCRIPTION_ANNOTATION))
            .is_some_and(|d| !d.is_empty())
}

impl Ctx {
    async fn reconcile(&self, ns: &str) -> Result<Action, kube_client::Error> {
        let Some(namespace) = self.namespaces.get(&ObjectKey::new("", ns)) else {
            return Ok(Action::Done);
        };
        if terminating(&namespace) {
            return Ok(Action::Done);
        }
        let data = BTreeMap::from([("ca.crt".to_string(), self.ca_pem.clone())]);
        let api = Api::<ConfigMap>::namespaced(self.client.clone(), ns);
        let result = match self.configmaps.get(&ObjectKey::new(ns, NAME)) {
            None => {
                let cm = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(NAME.into()),
                        namespace: Some(ns.into()),
                        annotations: Some(BTreeMap::from([(
                            DESCRIPTION_ANNOTATION.to_string(),
                            DESCRIPTION.to_string(),
                        )])),
                        ..Default::default()
                    },
                    data: Some(data),
                    ..Default::default()
                };
                api.create(&PostParams::default(), &cm).await.map(|_| ())
            }
            Some(cm) if up_to_date(&cm, &data) => return Ok(Action::Done),
            Some(cm) => {
                let mut cm = (*cm).clone();
                cm.data = Some(data);
                cm.binary_data = None;
                cm.metadata
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .insert(DESCRIPTION_ANNOTATION.into(), DESCRIPTION.into());
                api.replace(NAME, &PostParams::default(), &cm)
                    .await
                    .map(|_| ())
            }
        };
        match result {
            Ok(()) => Ok(Action::Done),
            // Exists already / deleted meanwhile: the informer's event brings the key back.
            // 404 and 403 (namespace terminating) on create: the namespace is going away.
            Err(e) if matches!(code(&e), 409 | 404 | 403) => Ok(Action::Done),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bundle_with_a_description_is_up_to_date() {
        let data = BTreeMap::from([("ca.crt".to_string(), "PEM".to_string())]);
        let mut cm = ConfigMap {
            data: Some(data.clone()),
            ..Default::default()
        };
        assert!(!up_to_date(&cm, &data), "no description");
        cm.metadata.annotations = Some(BTreeMap::from([(
            DESCRIPTION_ANNOTATION.to_string(),
            DESCRIPTION.to_string(),
        )]));
        assert!(up_to_date(&cm, &data));
        cm.data.as_mut().unwrap().insert("extra".into(), "x".into());
        assert!(!up_to_date(&cm, &data), "an extra key");
    }
}
