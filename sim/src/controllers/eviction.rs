//! The Eviction API: deleting a pod only if no PodDisruptionBudget that selects it would be
//! violated (429 otherwise), and the live budget arithmetic shared with the PDB status
//! controller.

use crate::error::ApiError;
use crate::resources::keys;
use crate::selectors::LabelSelector;
use crate::store::{DeleteOpts, Store, WriteCtx};
use crate::util;
use serde_json::{Value, json};

/// The live figures of one budget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Pods the budget expects: the scale of their controllers, or the selected pods (see
    /// `budget_scale`).
    pub expected: i64,
    /// Of the selected pods that are not terminating, the Ready ones.
    pub healthy: i64,
    /// How many must stay healthy.
    pub desired: i64,
    /// How many may go now.
    pub allowed: i64,
    /// Why the budget could not be computed (it then allows nothing).
    pub sync_error: Option<String>,
}

/// Whether the budget counts the pod as healthy: Ready and not terminating.
pub fn pod_healthy(pod: &Value) -> bool {
    !util::is_terminating(pod) && crate::controllers::pod_ready(pod)
}

/// Computes a budget from the pods of its namespace, as the real disruption controller does.
pub fn budget(store: &Store, pdb: &Value, pods: &[std::sync::Arc<Value>]) -> Budget {
    let sel = LabelSelector::from_object(pdb.pointer("/spec/selector"));
    let selected: Vec<_> = pods
        .iter()
        .filter(|p| sel.matches_object(p) && !util::is_terminating(p))
        .collect();
    let healthy = selected.iter().filter(|p| pod_healthy(p)).count() as i64;
    let (expected, sync_error) = match super::budget_scale::expected_pods(store, pdb, &selected) {
        Ok(n) => (n, None),
        Err(e) => (0, Some(e)),
    };
    let desired = if let Some(min) = pdb.pointer("/spec/minAvailable") {
        util::int_or_percent(Some(min), expected, true, 0)
    } else if let Some(max) = pdb.pointer("/spec/maxUnavailable") {
        (expected - util::int_or_percent(Some(max), expected, true, 0)).max(0)
    } else {
        0
    };
    let allowed = if sync_error.is_some() {
        0
    } else {
        (healthy - desired).max(0)
    };
    Budget {
        expected,
        healthy,
        desired,
        allowed,
        sync_error,
    }
}

/// Evicts a pod: 429 with the budget's figures when a budget forbids it, else a graceful delete.
pub fn evict(
    store: &Store,
    ns: &str,
    name: &str,
    grace: Option<i64>,
    ctx: &WriteCtx,
) -> Result<(), ApiError> {
    let pod = store
        .get(&keys::PODS, ns, name)
        .ok_or_else(|| ApiError::not_found("pods", name))?;
    if !util::is_terminating(&pod) {
        let (pods, _) = store.list(&keys::PODS, Some(ns));
        let (pdbs, _) = store.list(&keys::PDBS, Some(ns));
        let labels = util::labels(&pod);
        let matching: Vec<_> = pdbs
            .iter()
            .filter(|b| LabelSelector::from_object(b.pointer("/spec/selector")).matches(&labels))
            .collect();
        if matching.len() > 1 {
            return Err(ApiError::internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ));
        }
        if let Some(pdb) = matching.first() {
            let b = budget(store, pdb, &pods);
            let healthy_pod = pod_healthy(&pod);
            let blocked = if healthy_pod {
                b.allowed <= 0
            } else {
                b.healthy < b.desired
            };
            if blocked {
                let mut e = ApiError::new(
                    429,
                    "TooManyRequests",
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                );
                e.details = Some(json!({"causes": [{
                    "reason": "DisruptionBudget",
                    "message": format!("The disruption budget {} needs {} healthy pods and has {} currently", util::name(pdb), b.desired, b.healthy),
                }]}));
                return Err(e);
            }
        }
    }
    let opts = DeleteOpts {
        grace_period: grace,
        ..DeleteOpts::default()
    };
    let ctx = WriteCtx {
        verb: "evict",
        ..ctx.clone()
    };
    store.delete(&keys::PODS, ns, name, &opts, &ctx)?;
    Ok(())
}
