//! What the garbage collector watches: every resource the API serves (found through
//! `/api` and `/apis` discovery, again every [`REDISCOVERY`], as kinds come and go) that
//! supports list, watch and delete, each through a metadata-only informer (a "monitor").

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList;
use kube_client::Api;
use kube_client::core::{ApiResource, DynamicObject, PartialObjectMeta};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::controller::informer::{Change, Informer};
use crate::controller::watch_config;

/// How often the served resources are discovered again (upstream: 30 s).
pub const REDISCOVERY: Duration = Duration::from_secs(30);

/// How often a monitor checks whether its first list is complete.
const SYNC_POLL: Duration = Duration::from_millis(50);

/// Resources never watched (upstream's default `GCIgnoredResources`): Events are many,
/// short-lived and never owners.
const IGNORED: &[(&str, &str)] = &[("", "events"), ("events.k8s.io", "events")];

/// One served resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Served {
    /// Group ("" for core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Plural resource name.
    pub plural: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
}

impl Served {
    /// `v1` or `<group>/<version>`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// kube-rs's dynamic description of it.
    pub fn api_resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.clone(),
            version: self.version.clone(),
            api_version: self.api_version(),
            kind: self.kind.clone(),
            plural: self.plural.clone(),
        }
    }
}

/// The result of one discovery.
#[derive(Debug, Default, Clone)]
pub struct Discovered {
    /// Preferred versions of the resources to monitor.
    pub monitored: Vec<Served>,
    /// Every served resource by (apiVersion, kind), all versions: how owner references
    /// are resolved.
    pub by_kind: HashMap<(String, String), Served>,
}

impl Discovered {
    /// The resource an owner reference's apiVersion and kind name.
    pub fn resolve(&self, api_version: &str, kind: &str) -> Option<&Served> {
        self.by_kind
            .get(&(api_version.to_string(), kind.to_string()))
    }

    fn add(&mut self, group: &str, version: &str, list: &APIResourceList, preferred: bool) {
        for r in &list.resources {
            if r.name.contains('/') {
                continue;
            }
            let served = Served {
                group: group.to_string(),
                version: version.to_string(),
                kind: r.kind.clone(),
                plural: r.name.clone(),
                namespaced: r.namespaced,
            };
            let verbs = |v: &str| r.verbs.iter().any(|x| x == v);
            let ignored = IGNORED.contains(&(group, r.name.as_str()));
            if preferred && !ignored && verbs("list") && verbs("watch") && verbs("delete") {
                self.monitored.push(served.clone());
            }
            self.by_kind
                .entry((served.api_version(), served.kind.clone()))
                .or_insert(served);
        }
    }
}

/// Lists the served resources (`/api`, `/api/<v>`, `/apis`, `/apis/<g>/<v>`).
pub async fn discover(client: &kube_client::Client) -> Result<Discovered, kube_client::Error> {
    let mut out = Discovered::default();
    let core = client.list_core_api_versions().await?;
    for (i, v) in core.versions.iter().enumerate() {
        let list = client.list_core_api_resources(v).await?;
        out.add("", v, &list, i == 0);
    }
    let groups = client.list_api_groups().await?;
    for g in &groups.groups {
        let preferred = g
            .preferred_version
            .as_ref()
            .map(|p| p.version.clone())
            .or_else(|| g.versions.first().map(|v| v.version.clone()));
        for v in &g.versions {
            match client.list_api_group_resources(&v.group_version).await {
                Ok(list) => out.add(
                    &g.name,
                    &v.version,
                    &list,
                    preferred.as_deref() == Some(v.version.as_str()),
                ),
                // A group that went away meanwhile: the next discovery settles it.
                Err(e) => {
                    tracing::debug!(group_version = %v.group_version, error = %e, "discovery failed")
                }
            }
        }
    }
    Ok(out)
}

/// What a monitor tells the graph builder, in the order it happened.
pub enum Event {
    /// One object change of a monitored resource.
    Change(Served, Change<PartialObjectMeta<DynamicObject>>),
    /// Every object of the resource's first list has been sent before this: once the
    /// builder has applied it, the graph knows the whole resource.
    Synced(Served),
}

/// A running monitor: its informer and forwarder stop when `stop` fires.
pub struct Monitor {
    stop: CancellationToken,
}

impl Monitor {
    /// Starts watching `res`'s metadata; its changes go to `events`, followed by one
    /// [`Event::Synced`] once its first list is complete.
    pub fn start(
        client: &kube_client::Client,
        res: Served,
        events: mpsc::Sender<Event>,
        shutdown: &CancellationToken,
    ) -> Self {
        let stop = shutdown.child_token();
        let ar = res.api_resource();
        let api: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(client.clone(), &ar);
        let mut informer =
            Informer::metadata(api, watch_config(), format!("gc:{}", ar.plural), Vec::new());
        let mut feed = informer.subscribe();
        let cache = informer.cache();
        tokio::spawn(informer.run(stop.clone()));
        let done = stop.clone();
        tokio::spawn(async move {
            let mut announced = false;
            let mut tick = tokio::time::interval(SYNC_POLL);
            loop {
                tokio::select! {
                    _ = done.cancelled() => return,
                    c = feed.recv() => match c {
                        Some(c) => if events.send(Event::Change(res.clone(), c)).await.is_err() {
                            return;
                        },
                        None => return,
                    },
                    _ = tick.tick(), if !announced => {}
                }
                // The informer feeds its first list before it reports the sync, so
                // what is queued once it has reported is the rest of that list.
                if !announced && cache.is_synced() {
                    while let Ok(c) = feed.try_recv() {
                        if events.send(Event::Change(res.clone(), c)).await.is_err() {
                            return;
                        }
                    }
                    if events.send(Event::Synced(res.clone())).await.is_err() {
                        return;
                    }
                    announced = true;
                }
            }
        });
        Monitor { stop }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResource;

    fn resource(name: &str, kind: &str, verbs: &[&str]) -> APIResource {
        APIResource {
            name: name.into(),
            kind: kind.into(),
            namespaced: true,
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn monitors_deletable_preferred_resources_but_resolves_every_version() {
        let all = ["create", "delete", "get", "list", "watch"];
        let list = APIResourceList {
            group_version: "v1".into(),
            resources: vec![
                resource("configmaps", "ConfigMap", &all),
                resource("pods/status", "Pod", &all),
                resource("events", "Event", &all),
                resource("bindings", "Binding", &["create"]),
            ],
        };
        let mut d = Discovered::default();
        d.add("", "v1", &list, true);
        let old = APIResourceList {
            group_version: "example.com/v1beta1".into(),
            resources: vec![resource("widgets", "Widget", &all)],
        };
        d.add("example.com", "v1beta1", &old, false);
        let names: Vec<&str> = d.monitored.iter().map(|r| r.plural.as_str()).collect();
        assert_eq!(names, ["configmaps"]);
        assert_eq!(
            d.resolve("example.com/v1beta1", "Widget")
                .map(|r| r.plural.as_str()),
            Some("widgets")
        );
        assert!(d.resolve("v1", "Binding").is_some());
        assert!(d.resolve("v1", "Nope").is_none());
    }
}
