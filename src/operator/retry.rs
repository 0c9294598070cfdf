//! How soon a plan is tried again after its reconcile failed, by the kind of error and the
//! number of failures in a row: transient errors (conflicts, throttling, server errors, no
//! answer) soon, then less and less often; permanent ones (the API server refused the request
//! itself) much later, since only a person's fix makes them pass. Pure.

use std::time::Duration;

use super::error::Error;

/// The bounds of the backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The longest wait between two tries after a transient error.
    pub transient_cap: Duration,
    /// The wait before the first retry after a permanent error.
    pub permanent_first: Duration,
    /// The longest wait between two tries after a permanent error.
    pub permanent_cap: Duration,
}

/// A blocked eviction waits for a PodDisruptionBudget, which can allow it any moment.
const EVICTION_CAP: Duration = Duration::from_secs(2);

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            // Transient errors pass by themselves, often at the next try. Each try is a whole
            // reconcile of a dozen requests, so under a flaky API server most tries fail and
            // the cap, not the first wait, sets the pace: a short one keeps the plan moving
            // (the fault campaign's rates took several times as long with a cap of 1 s).
            transient_cap: Duration::from_millis(500),
            permanent_first: Duration::from_secs(10),
            permanent_cap: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The wait before the next try after `error`, the `failures`-th in a row (1 for the
    /// first): doubling from the error's first wait up to its cap.
    pub fn delay(&self, error: &Error, failures: u32) -> Duration {
        let (first, cap) = if error.is_permanent() {
            (self.permanent_first, self.permanent_cap)
        } else if let Error::EvictionBlocked(_) = error {
            (error.first_retry(), EVICTION_CAP)
        } else {
            (error.first_retry(), self.transient_cap)
        };
        let doublings = failures.saturating_sub(1).min(20);
        first.saturating_mul(1 << doublings).min(cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::error::tests::answered;

    #[test]
    fn transient_errors_back_off_from_their_first_wait_to_the_cap() {
        let policy = RetryPolicy::default();
        let busy = answered(503, "ServiceUnavailable", "busy");
        let waits: Vec<Duration> = (1..=12).map(|n| policy.delay(&busy, n)).collect();
        assert_eq!(waits[0], Duration::from_millis(200));
        assert_eq!(waits[1], Duration::from_millis(400));
        assert!(waits.windows(2).all(|w| w[0] <= w[1]), "{waits:?}");
        assert_eq!(*waits.last().unwrap(), policy.transient_cap);
        let conflict = Error::Conflict("deployment liferay".into());
        assert_eq!(policy.delay(&conflict, 1), Duration::from_millis(20));
        let blocked = Error::EvictionBlocked("liferay-0".into());
        assert_eq!(policy.delay(&blocked, 100), EVICTION_CAP);
    }

    #[test]
    fn permanent_errors_wait_much_longer_from_the_first_try() {
        let policy = RetryPolicy::default();
        let forbidden = answered(403, "Forbidden", "no");
        let throttled = answered(429, "TooManyRequests", "slow down");
        assert!(policy.delay(&forbidden, 1) > policy.delay(&throttled, 1) * 10);
        assert_eq!(policy.delay(&forbidden, 2), 2 * policy.permanent_first);
        assert_eq!(policy.delay(&forbidden, 50), policy.permanent_cap);
    }
}
