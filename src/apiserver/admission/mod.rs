//! Admission: the plugins every write passes after defaulting, as upstream's admission
//! chain (mutating plugins first, then validating ones), e.g. LimitRanger (defaults and
//! limits) and ResourceQuota (charges and refuses).
//!
//! The handlers call [`Chain::mutate`] and [`Chain::validate`] on create and update
//! (update with the stored object as `old`), [`Chain::validate`] on delete, and
//! [`Chain::deleted`] once an object is really gone (what upstream's quota controller
//! learns from its informers; the controller runtime will take that over).

pub mod default_tolerations;
pub mod limitranger;
pub mod matching;
pub mod noderestriction;
pub mod podsecurity;
pub mod policy;
pub mod priority;
pub mod quantity;
pub mod quota_usage;
pub mod rbacescalation;
pub mod resourcequota;
pub mod serviceaccount;
pub mod webhook;
pub mod webhook_client;

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;
use tracing::Instrument;

use super::ApiServer;
use super::kinds::Strategy;
use super::status::ApiError;
use crate::pki::UserInfo;

/// What a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// POST on a collection.
    Create,
    /// PUT or PATCH (of the object or a subresource).
    Update,
    /// DELETE of one object.
    Delete,
}

/// The request as admission plugins see it.
pub struct Request<'a> {
    /// What is done.
    pub operation: Operation,
    /// The kind written.
    pub kind: &'a dyn Strategy,
    /// The object's namespace (None for cluster-scoped kinds).
    pub namespace: Option<&'a str>,
    /// The object's name.
    pub name: &'a str,
    /// `status`, `binding`, ... when a subresource is written.
    pub subresource: Option<&'a str>,
    /// The stored object, for updates and deletes (view form).
    pub old: Option<&'a Value>,
    /// Who asks.
    pub user: &'a UserInfo,
    /// `dryRun=All`: plugins must not change anything but the object.
    pub dry_run: bool,
    /// Warnings for the client (the response's `Warning` headers).
    pub warnings: std::sync::Mutex<Vec<String>>,
}

impl Request<'_> {
    /// Adds a warning for the client.
    pub fn warn(&self, message: String) {
        self.warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(message);
    }

    /// A refusal of this object in upstream's wording: `<resource> "<name>" is
    /// forbidden: <why>`.
    pub fn forbidden(&self, why: impl std::fmt::Display) -> ApiError {
        ApiError::forbidden(format!(
            "{} \"{}\" is forbidden: {why}",
            self.kind.def().qualified(),
            self.name
        ))
    }

    /// The warnings plugins added.
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The future an admission step returns.
pub type Admit<'a> = Pin<Box<dyn Future<Output = Result<(), ApiError>> + Send + 'a>>;

/// One admission plugin. Both steps default to admitting everything.
pub trait Plugin: Send + Sync {
    /// The plugin's name, as upstream calls it (`LimitRanger`, `ResourceQuota`).
    fn name(&self) -> &'static str;

    /// May change `obj` (the view form of the object being written).
    fn mutate<'a>(
        &'a self,
        srv: &'a ApiServer,
        req: &'a Request<'a>,
        obj: &'a mut Value,
    ) -> Admit<'a> {
        let _ = (srv, req, obj);
        Box::pin(async { Ok(()) })
    }

    /// May refuse the write of `obj` (for deletes: the stored object).
    fn validate<'a>(
        &'a self,
        srv: &'a ApiServer,
        req: &'a Request<'a>,
        obj: &'a Value,
    ) -> Admit<'a> {
        let _ = (srv, req, obj);
        Box::pin(async { Ok(()) })
    }

    /// Learns that `obj` of `kind` was removed from the store.
    fn deleted<'a>(
        &'a self,
        srv: &'a ApiServer,
        kind: &'a dyn Strategy,
        obj: &'a Value,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        let _ = (srv, kind, obj);
        Box::pin(async {})
    }
}

/// The plugins, in order.
#[derive(Default)]
pub struct Chain {
    plugins: Vec<Box<dyn Plugin>>,
}

impl Chain {
    /// A chain of `plugins`.
    pub fn new(plugins: Vec<Box<dyn Plugin>>) -> Self {
        Chain { plugins }
    }

    /// The plugins an rkind cluster runs, in upstream's order (LimitRanger, then ServiceAccount, before
    /// ResourceQuota, so quota charges what the defaults gave a pod).
    pub fn standard(service_accounts: serviceaccount::ServiceAccount) -> Self {
        Chain::new(vec![
            Box::new(limitranger::LimitRanger),
            Box::new(service_accounts),
            Box::new(noderestriction::NodeRestriction),
            Box::new(podsecurity::PodSecurity),
            Box::new(rbacescalation::RbacEscalation),
            Box::new(default_tolerations::DefaultTolerationSeconds),
            Box::new(priority::Priority),
            Box::new(webhook::MutatingAdmissionWebhook),
            Box::new(policy::ValidatingAdmissionPolicy),
            Box::new(webhook::ValidatingAdmissionWebhook),
            Box::new(resourcequota::ResourceQuota::new()),
        ])
    }

    /// Runs every plugin's mutating step.
    pub async fn mutate(
        &self,
        srv: &ApiServer,
        req: &Request<'_>,
        obj: &mut Value,
    ) -> Result<(), ApiError> {
        for p in &self.plugins {
            let span = tracing::debug_span!("admission_mutate", plugin = p.name());
            p.mutate(srv, req, obj).instrument(span).await?;
        }
        Ok(())
    }

    /// Runs every plugin's validating step.
    pub async fn validate(
        &self,
        srv: &ApiServer,
        req: &Request<'_>,
        obj: &Value,
    ) -> Result<(), ApiError> {
        for p in &self.plugins {
            let span = tracing::debug_span!("admission_validate", plugin = p.name());
            p.validate(srv, req, obj).instrument(span).await?;
        }
        Ok(())
    }

    /// Tells every plugin that `obj` is gone.
    pub async fn deleted(&self, srv: &ApiServer, kind: &dyn Strategy, obj: &Value) {
        for p in &self.plugins {
            p.deleted(srv, kind, obj).await;
        }
    }
}
