//! The `MaintenancePlan` custom resource (group `cutover.dev`, version `v1alpha1`):
//! spec, change union and status types, exactly as the user-facing contract fixes them.
//! Nothing here talks to a cluster; validation beyond the schema lives in `crate::input`.

mod changes;
mod checks;
mod spec;
mod status;

pub use changes::*;
pub use checks::*;
pub use spec::*;
pub use status::*;
