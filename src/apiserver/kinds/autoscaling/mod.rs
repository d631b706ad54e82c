//! The autoscaling group: HorizontalPodAutoscalers at v2 (stored, preferred) and v1.

pub mod horizontalpodautoscaler;

use super::Kind;
use std::sync::Arc;

/// The kinds of autoscaling, v2 first (the preferred version is the first registered).
pub fn kinds() -> Vec<Kind> {
    vec![
        Arc::new(horizontalpodautoscaler::HorizontalPodAutoscalers::new()),
        Arc::new(horizontalpodautoscaler::HorizontalPodAutoscalersV1::new()),
    ]
}
