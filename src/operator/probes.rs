//! The operator's HTTP endpoints: `/livez` (the process serves), `/readyz` (a standby waiting
//! for the leader Lease, or a leader whose plans have been listed) and `/metrics`
//! (Prometheus).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use kube::runtime::reflector::Store;
use tokio::sync::watch;

use super::metrics::Metrics;
use crate::api::MaintenancePlan;

/// Where the process stands with respect to the leader Lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Waiting for the Lease: healthy, ready to take over, acting on nothing.
    Standby,
    /// Acting on plans (the leader, or the only instance without leader election).
    Leading,
}

#[derive(Clone)]
pub struct Probes {
    pub role: watch::Receiver<Role>,
    /// Controllers whose plans have been listed, out of `controllers`.
    pub synced: watch::Receiver<usize>,
    pub controllers: usize,
    pub metrics: Arc<Metrics>,
    pub stores: Arc<Mutex<Vec<Store<MaintenancePlan>>>>,
}

pub async fn serve(
    addr: SocketAddr,
    probes: Probes,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(probes);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /livez, /readyz and /metrics");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn readyz(State(p): State<Probes>) -> impl IntoResponse {
    match *p.role.borrow() {
        // A standby counts as ready, so that a rollout of several replicas completes.
        Role::Standby => (
            StatusCode::OK,
            "ready: standby, waiting for the leader Lease",
        ),
        Role::Leading if *p.synced.borrow() >= p.controllers => (StatusCode::OK, "ready: leading"),
        Role::Leading => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: plans not listed yet",
        ),
    }
}

async fn metrics(State(p): State<Probes>) -> impl IntoResponse {
    let plans: Vec<_> = p
        .stores
        .lock()
        .expect("stores lock")
        .iter()
        .flat_map(|s| s.state())
        .collect();
    let body = p.metrics.render(plans.iter().map(|a| a.as_ref()));
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
}
