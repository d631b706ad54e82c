//! Serving the kinds CustomResourceDefinitions define, as upstream's
//! apiextensions-apiserver does in-process: the [`registrar`] follows the stored CRDs,
//! sets their conditions and keeps the [`crate::apiserver::registry::Registry`] in step;
//! each served version is a [`custom::CustomKind`] strategy whose validation, pruning,
//! defaulting and Table come from the version's structural schema.

pub mod approval;
pub mod cel_rules;
pub mod columns;
pub mod conversion;
pub mod custom;
pub mod default;
pub mod prune;
pub mod registrar;
pub mod schema;
pub mod structural;
