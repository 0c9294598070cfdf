//! The operator: observe the cluster, evaluate the plan, step the pure state machine,
//! actuate its actions, write the status. Only `observe`, `actuate` and the controller
//! wiring talk to the API server; everything else here is pure.

pub mod action;
pub mod actuate;
pub mod check_runner;
pub mod conditions;
pub mod controller;
pub mod error;
pub mod labels;
pub mod lock;
pub mod metrics;
pub mod names;
pub mod observe;
pub mod owned;
pub mod pods;
pub mod policy;
pub mod preflight;
pub mod probe;
pub mod probes;
pub mod reconcile;
pub mod replica_sets;
pub mod retry;
pub mod rollout;
pub mod snapshot;
pub mod status_write;
pub mod step;
pub mod template;
pub mod time;
pub mod workload;
