//! Helpers shared by the integration tests: starting a cluster and waiting for conditions.

#![allow(dead_code)]

use cutover_sim::{SimCluster, SimOptions};
use std::time::{Duration, Instant};

/// A cluster with the controllers running.
pub async fn cluster() -> SimCluster {
    SimCluster::start(SimOptions::default())
        .await
        .expect("the simulated cluster starts")
}

/// A bare API server without controllers.
pub async fn bare() -> SimCluster {
    SimCluster::start(SimOptions {
        controllers: false,
        ..SimOptions::default()
    })
    .await
    .expect("the simulated cluster starts")
}

/// Waits until `f` returns `Some`, checking every few milliseconds; panics with `what` after
/// `timeout`.
pub async fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
