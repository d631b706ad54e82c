//! The scheduling.k8s.io group: PriorityClasses (the Priority admission plugin that
//! resolves them for pods is `crate::apiserver::admission::priority`).

pub mod priorityclass;

use super::Kind;
use std::sync::Arc;

/// The kinds of scheduling.k8s.io, in discovery order.
pub fn kinds() -> Vec<Kind> {
    vec![Arc::new(priorityclass::PriorityClasses::new())]
}
