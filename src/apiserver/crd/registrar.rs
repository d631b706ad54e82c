//! Keeps the served kinds in step with the stored CustomResourceDefinitions, inside the
//! API server (upstream's apiextensions-apiserver runs its naming, establishing and
//! finalizer controllers in-process on its own CRD informer; here one loop follows the
//! store's watch of the CRD prefix and reconciles every CRD on each change):
//!
//! - names: a CRD whose plural, singular, kind, list kind or a short name is already
//!   accepted for another CRD of its group gets `NamesAccepted=False` (`PluralConflict`,
//!   ...) and is not served; otherwise `NamesAccepted=True`, `status.acceptedNames` and
//!   `Established=True`, and its storage version joins `status.storedVersions`;
//! - serving: each served version of an established CRD is a registry entry
//!   ([`super::custom::kinds_of`]); a changed spec re-registers its versions; a CRD that is
//!   gone stops being served (its objects of removed versions stay stored);
//! - deletion: established CRDs carry the `customresourcecleanup.apiextensions.k8s.io`
//!   finalizer; a deleted CRD goes `Terminating=True` (creates of its kind are refused),
//!   its objects are deleted as a client would (their own finalizers hold them, and the
//!   loop looks again every second while any is left), then `Terminating=False`, the
//!   finalizer goes, and with it the CRD.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};
use tracing::Instrument;

use super::{approval, custom};
use crate::apiserver::ApiServer;
use crate::apiserver::defaults;
use crate::apiserver::deletion::{Cascade, DeleteOpts, delete_cascading};
use crate::apiserver::kinds::apiextensions::customresourcedefinition::{
    CLEANUP_FINALIZER, definition,
};
use crate::store::StoreError;

/// Why one reconcile round failed (the loop logs it and retries on the next change).
#[derive(Debug, thiserror::Error)]
pub enum RegistrarError {
    /// A store read or write failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// What the registrar serves for one CRD: the spec it was built from and the entries.
struct Served {
    /// Compared as a value: the same spec written back may order its keys differently.
    spec: Value,
    entries: Vec<(String, String, String)>,
}

/// The registrar's memory of what it registered.
#[derive(Default)]
pub struct Registrar {
    served: HashMap<String, Served>,
    /// A CRD being deleted still has objects (held by their finalizers): the loop looks
    /// again in a second, as upstream's finalizer polls.
    waiting: bool,
}

/// Serves the stored CRDs now (so that after a restart custom objects are reachable
/// before the API server answers its first request), then follows changes until
/// `shutdown`.
pub async fn start(
    srv: Arc<ApiServer>,
    shutdown: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let mut reg = Registrar::default();
    let prefix = definition().prefix(None);
    let (_, mut rev) = srv.store.list_shared(&prefix);
    if let Err(e) = reg.reconcile(&srv).await {
        tracing::warn!(error = %e, "crd registrar: first round");
    }
    tokio::spawn(
        async move {
            loop {
                let mut cursor = match srv.store.watch(&prefix, rev) {
                    Ok(c) => c,
                    Err(_) => {
                        rev = srv.store.revision();
                        continue;
                    }
                };
                // Wait for a change under the CRD prefix.
                loop {
                    match srv.store.next_events(&mut cursor) {
                        Ok(evs) if !evs.is_empty() => break,
                        Ok(_) => {}
                        Err(_) => break,
                    }
                    let retry = reg.waiting;
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        ok = cursor.changed() => if !ok { return },
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)), if retry => break,
                    }
                }
                rev = srv.store.list_shared(&prefix).1;
                if let Err(e) = reg.reconcile(&srv).await {
                    tracing::warn!(error = %e, "crd registrar");
                }
            }
        }
        .instrument(tracing::info_span!("crd_registrar")),
    )
}

/// A condition as upstream writes it.
fn condition(kind: &str, status: bool, reason: &str, message: &str) -> Value {
    json!({
        "type": kind,
        "status": if status { "True" } else { "False" },
        "lastTransitionTime": defaults::now_rfc3339(),
        "reason": reason,
        "message": message,
    })
}

/// Sets `cond` in `conditions`, keeping the transition time when the status is unchanged.
fn set_condition(conditions: &mut Vec<Value>, mut cond: Value) {
    match conditions.iter_mut().find(|c| c["type"] == cond["type"]) {
        Some(c) => {
            if c["status"] == cond["status"] {
                cond["lastTransitionTime"] = c["lastTransitionTime"].clone();
            }
            *c = cond;
        }
        None => conditions.push(cond),
    }
}

/// The names of a CRD that must be unique in its group, with the reason a clash gives.
fn claimed_names(names: &Value) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (key, reason) in [
        ("plural", "PluralConflict"),
        ("singular", "SingularConflict"),
        ("kind", "KindConflict"),
        ("listKind", "ListKindConflict"),
    ] {
        if let Some(v) = names[key].as_str().filter(|v| !v.is_empty()) {
            out.push((reason, v.to_string()));
        }
    }
    for s in names["shortNames"].as_array().into_iter().flatten() {
        if let Some(v) = s.as_str() {
            out.push(("ShortNamesConflict", v.to_string()));
        }
    }
    out
}

/// Upstream's naming check: the first clash of `crd`'s names with names already taken in
/// its group, as (reason, message).
fn name_conflict(crd: &Value, taken: &HashMap<String, Vec<String>>) -> Option<(String, String)> {
    let group = crd["spec"]["group"].as_str().unwrap_or("");
    let used = taken.get(group)?;
    claimed_names(&crd["spec"]["names"])
        .into_iter()
        .find(|(_, n)| used.contains(n))
        .map(|(reason, n)| (reason.to_string(), format!("{n:?} is already in use")))
}

/// Whether `crd` carries the cleanup finalizer.
fn cleaning(crd: &Value) -> bool {
    crd["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| f.contains(&json!(CLEANUP_FINALIZER)))
}

/// Deletes the objects of `crd` that are not being deleted yet, each as a client's
/// delete with default options would; returns whether none is left.
async fn delete_instances(srv: &Arc<ApiServer>, crd: &Value) -> Result<bool, RegistrarError> {
    let prefix = format!("/registry/{}/", custom::storage_segment(crd));
    let (objects, _) = srv.store.list_shared(&prefix);
    // Any served version's strategy deletes them: they share one storage.
    let strategy = custom::kinds_of(crd).into_iter().next();
    for o in objects.iter() {
        if o["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        let ns = o["metadata"]["namespace"].as_str();
        let n = o["metadata"]["name"].as_str().unwrap_or("");
        let Some(res) = &strategy else {
            // No version is served: nothing can hold them, so they go as they are.
            let key = match ns {
                Some(ns) => format!("{prefix}{ns}/{n}"),
                None => format!("{prefix}{n}"),
            };
            match srv.store.delete(&key, |_| Ok::<(), StoreError>(())).await {
                Ok(_) | Err(StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
            continue;
        };
        let opts = DeleteOpts::default();
        match delete_cascading(srv, res.as_ref(), ns, n, &opts, Cascade::default(), false).await {
            Ok(_) => {}
            Err(e) if e.code == 404 || e.code == 409 => {}
            Err(e) => tracing::warn!(object = n, error = %e.message, "could not delete"),
        }
    }
    Ok(srv.store.list_shared(&prefix).0.is_empty())
}

impl Registrar {
    /// One round over every stored CRD.
    pub async fn reconcile(&mut self, srv: &Arc<ApiServer>) -> Result<(), RegistrarError> {
        self.waiting = false;
        let prefix = definition().prefix(None);
        let (stored, _) = srv.store.list_shared(&prefix);
        let mut crds: Vec<Value> = stored.iter().map(|c| (**c).clone()).collect();
        // CRDs whose names are accepted keep them; the others are accepted in creation
        // order.
        let order = |c: &Value| {
            (
                c["status"]["acceptedNames"]["kind"]
                    .as_str()
                    .is_none_or(str::is_empty),
                c["metadata"]["creationTimestamp"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                c["metadata"]["name"].as_str().unwrap_or("").to_string(),
            )
        };
        crds.sort_by_key(order);
        let mut taken: HashMap<String, Vec<String>> = HashMap::new();
        let mut live: Vec<String> = Vec::new();
        for crd in crds {
            let name = crd["metadata"]["name"].as_str().unwrap_or("").to_string();
            let conflict = name_conflict(&crd, &taken);
            if conflict.is_none() {
                let group = crd["spec"]["group"].as_str().unwrap_or("").to_string();
                taken.entry(group).or_default().extend(
                    claimed_names(&crd["spec"]["names"])
                        .into_iter()
                        .map(|(_, n)| n),
                );
            }
            let crd = self.write_status(srv, &name, conflict.as_ref()).await?;
            let Some(crd) = crd else { continue };
            if crd["metadata"]["deletionTimestamp"].is_string()
                && self.clean_up(srv, &name, &crd).await?
            {
                continue;
            }
            if conflict.is_none() {
                live.push(name.clone());
                self.serve(srv, &name, &crd);
            } else {
                self.unserve(srv, &name);
            }
        }
        let gone: Vec<String> = self
            .served
            .keys()
            .filter(|n| !live.contains(n))
            .cloned()
            .collect();
        for n in gone {
            self.unserve(srv, &n);
        }
        Ok(())
    }

    /// Writes the conditions, accepted names, stored versions and the cleanup finalizer;
    /// returns the CRD as stored after it (None if it is gone).
    async fn write_status(
        &self,
        srv: &Arc<ApiServer>,
        name: &str,
        conflict: Option<&(String, String)>,
    ) -> Result<Option<Value>, RegistrarError> {
        let key = definition().key(None, name);
        let res = srv
            .store
            .update(&key, |mut crd: Value| -> Result<Value, StoreError> {
                let deleting = crd["metadata"]["deletionTimestamp"].is_string();
                let mut conds: Vec<Value> = crd["status"]["conditions"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                match conflict {
                    None => {
                        set_condition(
                            &mut conds,
                            condition("NamesAccepted", true, "NoConflicts", "no conflicts found"),
                        );
                        set_condition(
                            &mut conds,
                            condition(
                                "Established",
                                true,
                                "InitialNamesAccepted",
                                "the initial names have been accepted",
                            ),
                        );
                        crd["status"]["acceptedNames"] = crd["spec"]["names"].clone();
                        let storage = crd["spec"]["versions"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .find(|v| v["storage"].as_bool() == Some(true))
                            .and_then(|v| v["name"].as_str())
                            .map(String::from);
                        let mut stored: Vec<Value> = crd["status"]["storedVersions"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default();
                        if let Some(s) = storage
                            && !stored.contains(&json!(s))
                        {
                            stored.push(json!(s));
                        }
                        crd["status"]["storedVersions"] = json!(stored);
                        if !deleting && !cleaning(&crd) {
                            let mut fins: Vec<Value> = crd["metadata"]["finalizers"]
                                .as_array()
                                .cloned()
                                .unwrap_or_default();
                            fins.push(json!(CLEANUP_FINALIZER));
                            crd["metadata"]["finalizers"] = json!(fins);
                        }
                    }
                    Some((reason, message)) => {
                        set_condition(
                            &mut conds,
                            condition("NamesAccepted", false, reason, message),
                        );
                        if !conds
                            .iter()
                            .any(|c| c["type"] == "Established" && c["status"] == "True")
                        {
                            set_condition(
                                &mut conds,
                                condition(
                                    "Established",
                                    false,
                                    "NotAccepted",
                                    "not all names are accepted",
                                ),
                            );
                        }
                    }
                }
                if approval::protected(crd["spec"]["group"].as_str().unwrap_or("")) {
                    let (state, message) = approval::state(&crd);
                    let conformant = state == approval::Approval::Approved;
                    set_condition(
                        &mut conds,
                        condition(approval::CONDITION, conformant, state.reason(), &message),
                    );
                }
                if deleting && cleaning(&crd) {
                    set_condition(
                        &mut conds,
                        condition(
                            "Terminating",
                            true,
                            "InstanceDeletionInProgress",
                            "CustomResource deletion is in progress",
                        ),
                    );
                }
                crd["status"]["conditions"] = json!(conds);
                // No resourceVersion check: this is the stored object itself.
                Ok(crd)
            })
            .await;
        match res {
            Ok(v) => Ok(Some(v)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The cleanup finalizer's work for a CRD being deleted (upstream's CRD finalizer):
    /// deletes its objects as a client's delete would (their own finalizers hold them),
    /// and once none is left, marks `Terminating=False`, drops the finalizer and, with no
    /// finalizers left, the CRD. Returns whether the CRD is gone.
    async fn clean_up(
        &mut self,
        srv: &Arc<ApiServer>,
        name: &str,
        crd: &Value,
    ) -> Result<bool, RegistrarError> {
        if cleaning(crd) && !delete_instances(srv, crd).await? {
            self.waiting = true;
            return Ok(false);
        }
        let key = definition().key(None, name);
        let after = srv
            .store
            .update(&key, |mut c: Value| -> Result<Value, StoreError> {
                let rest: Vec<Value> = c["metadata"]["finalizers"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|f| f != CLEANUP_FINALIZER)
                    .collect();
                if let Some(m) = c["metadata"].as_object_mut() {
                    if rest.is_empty() {
                        m.remove("finalizers");
                    } else {
                        m.insert("finalizers".into(), json!(rest));
                    }
                }
                let mut conds: Vec<Value> = c["status"]["conditions"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                set_condition(
                    &mut conds,
                    condition(
                        "Terminating",
                        false,
                        "InstanceDeletionCompleted",
                        "removed all instances",
                    ),
                );
                c["status"]["conditions"] = json!(conds);
                Ok(c)
            })
            .await?;
        if after["metadata"]["finalizers"]
            .as_array()
            .is_none_or(|f| f.is_empty())
        {
            match srv.store.delete(&key, |_| Ok::<(), StoreError>(())).await {
                Ok(_) | Err(StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
            self.unserve(srv, name);
            return Ok(true);
        }
        Ok(false)
    }

    /// Registers the served versions of `crd` unless they are registered as they are.
    fn serve(&mut self, srv: &Arc<ApiServer>, name: &str, crd: &Value) {
        if self.served.get(name).is_some_and(|s| s.spec == crd["spec"]) {
            return;
        }
        self.unserve(srv, name);
        let mut entries = Vec::new();
        for kind in custom::kinds_of(crd) {
            let d = kind.def();
            let entry = (d.group.clone(), d.version.clone(), d.plural.clone());
            match srv.registry.add(kind) {
                Ok(generation) => {
                    tracing::info!(crd = name, version = %entry.1, generation, "serving");
                    entries.push(entry);
                }
                Err(e) => tracing::warn!(crd = name, error = %e, "not served"),
            }
        }
        self.served.insert(
            name.to_string(),
            Served {
                spec: crd["spec"].clone(),
                entries,
            },
        );
    }

    /// Stops serving what was registered for `name`.
    fn unserve(&mut self, srv: &Arc<ApiServer>, name: &str) {
        if let Some(s) = self.served.remove(name) {
            for (g, v, p) in s.entries {
                if let Err(e) = srv.registry.remove(&g, &v, &p) {
                    tracing::warn!(crd = name, error = %e, "unserve");
                }
            }
            tracing::info!(crd = name, "no longer served");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_crds_with_taken_names_conflict() {
        let a = json!({"spec": {"group": "example.com", "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]}}});
        let b = json!({"spec": {"group": "example.com", "names": {"plural": "gadgets", "kind": "Gadget", "shortNames": ["wd"]}}});
        let c = json!({"spec": {"group": "other.com", "names": {"plural": "widgets", "kind": "Widget"}}});
        let mut taken: HashMap<String, Vec<String>> = HashMap::new();
        assert!(name_conflict(&a, &taken).is_none());
        taken.entry("example.com".into()).or_default().extend(
            claimed_names(&a["spec"]["names"])
                .into_iter()
                .map(|(_, n)| n),
        );
        assert_eq!(
            name_conflict(&b, &taken),
            Some((
                "ShortNamesConflict".into(),
                "\"wd\" is already in use".into()
            ))
        );
        assert!(name_conflict(&c, &taken).is_none());
    }
}
