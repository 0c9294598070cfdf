//! Writes a plan's status with server-side apply under the operator's field manager, and
//! only when it differs from what the plan already shows.

use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

use super::actuate::FIELD_MANAGER;
use super::error::{Error, status_code};
use crate::api::{MaintenancePlan, MaintenancePlanStatus};

/// Applies `status` to the plan unless it is unchanged. A plan that is gone is not an error.
pub async fn write(
    client: &Client,
    plan: &MaintenancePlan,
    status: &MaintenancePlanStatus,
) -> Result<bool, Error> {
    if plan.status.as_ref() == Some(status) {
        return Ok(false);
    }
    let ns = plan.metadata.namespace.as_deref().unwrap_or("default");
    let name = plan.metadata.name.as_deref().unwrap_or_default();
    let api: Api<MaintenancePlan> = Api::namespaced(client.clone(), ns);
    let body = serde_json::json!({
        "apiVersion": "cutover.dev/v1alpha1",
        "kind": "MaintenancePlan",
        "status": status,
    });
    match api
        .patch_status(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
    {
        Err(e) if status_code(&e) == Some(404) => Ok(false),
        other => other
            .map(|_| true)
            .map_err(|e| Error::api("patch", format!("plan {name} status"), e)),
    }
}
