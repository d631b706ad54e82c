//! kube-controller-manager's ClusterRole aggregation controller: a ClusterRole with an
//! `aggregationRule` holds the rules of every other ClusterRole its selectors pick
//! (taken in name order, each rule once), kept in step as those roles come, change and
//! go. Any ClusterRole change queues every aggregated role again, as upstream does
//! (aggregated roles are few).

use std::sync::Arc;

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kube_client::Api;
use kube_client::api::PostParams;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::history::selector_matches;
use super::informer::{Cache, Change, Informer, ObjectKey};
use super::{Action, WorkQueue, code, run_workers, watch_config};

/// The controller, wired to its informer (start it with [`Controller::start`]).
pub struct Controller {
    ctx: Arc<Ctx>,
    feed: mpsc::Receiver<Change<ClusterRole>>,
    roles: Informer<ClusterRole>,
    shutdown: CancellationToken,
}

struct Ctx {
    client: kube_client::Client,
    roles: Cache<ClusterRole>,
    queue: Arc<WorkQueue<String>>,
}

/// The rules `role` aggregates from `all`.
fn aggregate(role: &ClusterRole, all: &[Arc<ClusterRole>]) -> Vec<PolicyRule> {
    let selectors = role
        .aggregation_rule
        .as_ref()
        .and_then(|a| a.cluster_role_selectors.clone())
        .unwrap_or_default();
    let mut sources: Vec<&Arc<ClusterRole>> = all
        .iter()
        .filter(|r| r.metadata.name != role.metadata.name)
        .filter(|r| {
            selectors
                .iter()
                .any(|s| selector_matches(s, r.metadata.labels.as_ref()))
        })
        .collect();
    sources.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut rules: Vec<PolicyRule> = Vec::new();
    for r in sources {
        for rule in r.rules.iter().flatten() {
            if !rules.contains(rule) {
                rules.push(rule.clone());
            }
        }
    }
    rules
}

impl Controller {
    /// Sets up the ClusterRole informer.
    pub fn new(client: kube_client::Client, shutdown: CancellationToken) -> Self {
        let mut roles = Informer::new(
            Api::all(client.clone()),
            watch_config(),
            "clusterroles",
            vec![],
        );
        let ctx = Arc::new(Ctx {
            client,
            roles: roles.cache(),
            queue: Arc::new(WorkQueue::new(shutdown.clone())),
        });
        Controller {
            ctx,
            feed: roles.subscribe(),
            roles,
            shutdown,
        }
    }

    /// Runs the informer, the trigger and the worker; returns their tasks and the cache.
    pub fn start(self) -> (Vec<JoinHandle<()>>, Cache<ClusterRole>) {
        let Controller {
            ctx,
            mut feed,
            roles,
            shutdown,
        } = self;
        let cache = roles.cache();
        let mut tasks = vec![tokio::spawn(roles.run(shutdown.clone()))];
        let trigger = ctx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    Some(_) = feed.recv() => {
                        for r in trigger.roles.list() {
                            if r.aggregation_rule.is_some() {
                                trigger.queue.add(r.metadata.name.clone().unwrap_or_default());
                            }
                        }
                    },
                    else => return,
                }
            }
        }));
        let queue = ctx.queue.clone();
        tasks.push(tokio::spawn(run_workers(
            "clusterrole-aggregation",
            queue,
            move |name: String| {
                let ctx = ctx.clone();
                async move { ctx.reconcile(&name).await }
            },
        )));
        (tasks, cache)
    }
}

impl Ctx {
    async fn reconcile(&self, name: &str) -> Result<Action, kube_client::Error> {
        let Some(role) = self.roles.get(&ObjectKey::new("", name)) else {
            return Ok(Action::Done);
        };
        if role.aggregation_rule.is_none() {
            return Ok(Action::Done);
        }
        let rules = aggregate(&role, &self.roles.list());
        if role.rules.as_deref().unwrap_or(&[]) == rules.as_slice() {
            return Ok(Action::Done);
        }
        let mut updated = (*role).clone();
        updated.rules = Some(rules);
        match Api::<ClusterRole>::all(self.client.clone())
            .replace(name, &PostParams::default(), &updated)
            .await
        {
            Ok(_) => Ok(Action::Done),
            // Changed or gone meanwhile: the informer's event brings the key back.
            Err(e) if matches!(code(&e), 409 | 404) => Ok(Action::Done),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str, labels: serde_json::Value, verbs: &[&str]) -> Arc<ClusterRole> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "labels": labels},
                "rules": [{"verbs": verbs, "apiGroups": [""], "resources": ["pods"]}],
            }))
            .unwrap(),
        )
    }

    #[test]
    fn aggregates_the_selected_roles_in_name_order_once_each() {
        let sel = "rbac.example.com/aggregate-to-monitoring";
        let mut target: ClusterRole = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "monitoring"},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {sel: "true"}}]},
        }))
        .unwrap();
        let all = vec![
            role("b", serde_json::json!({sel: "true"}), &["list"]),
            role("a", serde_json::json!({sel: "true"}), &["get"]),
            role("dup", serde_json::json!({sel: "true"}), &["get"]),
            role("other", serde_json::json!({}), &["delete"]),
        ];
        let rules = aggregate(&target, &all);
        let verbs: Vec<&str> = rules.iter().map(|r| r.verbs[0].as_str()).collect();
        assert_eq!(verbs, ["get", "list"]);
        target.aggregation_rule = None;
        assert!(aggregate(&target, &all).is_empty());
    }
}
