//! The coordination.k8s.io group.

pub mod lease;

use super::Kind;
use std::sync::Arc;

/// The kinds of coordination.k8s.io, in discovery order.
pub fn kinds() -> Vec<Kind> {
    vec![Arc::new(lease::Leases::new())]
}
