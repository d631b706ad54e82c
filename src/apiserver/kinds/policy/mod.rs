//! The policy group: policy/v1 PodDisruptionBudgets (the `pods/eviction` subresource
//! that honours them lives with the pods, in `crate::apiserver::eviction`).

pub mod poddisruptionbudget;

use super::Kind;
use std::sync::Arc;

/// The kinds of policy, in discovery order.
pub fn kinds() -> Vec<Kind> {
    vec![Arc::new(poddisruptionbudget::PodDisruptionBudgets::new())]
}
