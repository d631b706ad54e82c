//! The events.k8s.io group.

pub mod event;

use super::Kind;
use std::sync::Arc;

/// The kinds of events.k8s.io, in discovery order.
pub fn kinds() -> Vec<Kind> {
    vec![Arc::new(event::Events::new())]
}
