//! cutover: safe maintenance of clustered applications on Kubernetes.
//!
//! The library holds the `MaintenancePlan` API ([`api`]), the pure rules engine ([`rules`]),
//! the offline reading of plans ([`input`]) and the CRD generator ([`crd`]).

pub mod api;
pub mod crd;
pub mod input;
pub mod invariants;
pub mod manifest;
pub mod operator;
pub mod rbac;
pub mod report;
pub mod rules;
pub mod tree;
