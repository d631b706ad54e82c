//! The apiextensions.k8s.io group: CustomResourceDefinitions. Serving the kinds they
//! define is `crate::apiserver::crd`.

pub mod customresourcedefinition;

use super::Kind;
use std::sync::Arc;

/// The kinds of apiextensions.k8s.io, in discovery order.
pub fn kinds() -> Vec<Kind> {
    vec![Arc::new(
        customresourcedefinition::CustomResourceDefinitions::new(),
    )]
}
