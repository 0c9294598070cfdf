//! Small helpers for deadlines: how long until a moment, the earlier of two waits.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

/// Time from `now` until `then` (zero when it has passed), plus a little slack so that a
/// requeue lands after the moment rather than just before it.
pub fn until(now: Timestamp, then: Timestamp) -> Duration {
    let millis = (then.as_millisecond() - now.as_millisecond()).max(0) as u64;
    Duration::from_millis(millis + 5)
}

/// The shorter of two optional waits.
pub fn earliest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
