//! Prometheus metrics of the operator: plans by phase (read from the plan cache at scrape
//! time), reconcile durations, pods replaced, plan durations and reconcile errors by reason.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::api::MaintenancePlan;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabel {
    pub phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub strategy: String,
    pub phase: String,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    plans: Family<PhaseLabel, Gauge>,
    pub reconcile_seconds: Histogram,
    pub reconcile_errors: Family<ReasonLabel, Counter>,
    pub pods_replaced: Counter,
    pub plan_seconds: Family<OutcomeLabel, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("cutover");
        let plans = Family::<PhaseLabel, Gauge>::default();
        registry.register("plans", "Plans by phase", plans.clone());
        let reconcile_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "reconcile_duration_seconds",
            "Time of one reconcile",
            reconcile_seconds.clone(),
        );
        let reconcile_errors = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconcile errors by reason",
            reconcile_errors.clone(),
        );
        let pods_replaced = Counter::default();
        registry.register(
            "pods_replaced",
            "Pods replaced by plans",
            pods_replaced.clone(),
        );
        let plan_seconds = Family::<OutcomeLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.1, 2.0, 16))
        });
        registry.register(
            "plan_duration_seconds",
            "Time from start to end of a plan",
            plan_seconds.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            plans,
            reconcile_seconds,
            reconcile_errors,
            pods_replaced,
            plan_seconds,
        }
    }
}

impl Metrics {
    /// The exposition text, with the plan counts taken from `plans`.
    pub fn render<'a>(&self, plans: impl Iterator<Item = &'a MaintenancePlan>) -> String {
        self.plans.clear();
        for plan in plans {
            let phase = plan
                .status
                .as_ref()
                .and_then(|s| s.phase)
                .map(|p| format!("{p:?}"))
                .unwrap_or_else(|| "New".into());
            self.plans.get_or_create(&PhaseLabel { phase }).inc();
        }
        let mut out = String::new();
        let registry = self.registry.lock().expect("metrics registry lock");
        prometheus_client::encoding::text::encode(&mut out, &registry).expect("metrics encode");
        out
    }
}
