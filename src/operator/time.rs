//! Small helpers for deadlines and for how soon a waiting plan looks again: how long until a
//! moment, the earlier of two waits, the floor under every requeue, and a backoff for waits
//! that a watch event normally ends.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

/// The shortest time a waiting plan sleeps before it looks again on its own. A moment that
/// has just passed asks for a few milliseconds (`until`); without a floor, a wait whose
/// condition does not follow its moment would read the cluster every few milliseconds.
pub const FLOOR: Duration = Duration::from_secs(1);

/// The longest: a wait noticed by nothing but its requeue is looked at at least this often.
pub const CEILING: Duration = Duration::from_secs(30);

/// Time from `now` until `then` (zero when it has passed), plus a little slack so that a
/// requeue lands after the moment rather than just before it.
pub fn until(now: Timestamp, then: Timestamp) -> Duration {
    let millis = (then.as_millisecond() - now.as_millisecond()).max(0) as u64;
    Duration::from_millis(millis + 5)
}

/// The time from `since` to `now` (zero when `since` lies ahead).
pub fn since(since: Timestamp, now: Timestamp) -> Duration {
    Duration::from_millis((now.as_millisecond() - since.as_millisecond()).max(0) as u64)
}

/// The shorter of two optional waits.
pub fn earliest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// How long to sleep in a wait that has lasted `waited` and that a watch event normally
/// ends: half of that, between [`FLOOR`] and [`CEILING`], so that the looks grow further
/// apart the longer nothing happens.
pub fn backoff(waited: Duration) -> Duration {
    (waited / 2).clamp(FLOOR, CEILING)
}

/// The next look of a wait that holds until `hold` and gives up at `deadline`: the end of
/// the hold while it lies ahead; after it, a backoff that grows with the time since the hold
/// ended, never later than the deadline.
pub fn after_hold(now: Timestamp, hold: Timestamp, deadline: Timestamp) -> Duration {
    if now < hold {
        return until(now, hold);
    }
    backoff(since(hold, now)).min(until(now, deadline))
}

/// The requeue of a step that keeps going: what it asked for, but never sooner than
/// [`FLOOR`]; when it asked for nothing, a backoff over the time it has been in its step.
pub fn next_look(asked: Option<Duration>, in_step: Duration) -> Duration {
    match asked {
        Some(asked) => asked.max(FLOOR),
        None => backoff(in_step),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(1_800_000_000_000 + ms).unwrap()
    }

    #[test]
    fn a_passed_hold_backs_off_from_the_floor_and_stops_at_the_deadline() {
        let (hold, deadline) = (at(0), at(100_000));
        assert_eq!(
            after_hold(at(-2_000), hold, deadline),
            until(at(-2_000), hold)
        );
        let looks: Vec<Duration> = [1, 1_000, 10_000, 65_000, 99_000]
            .iter()
            .map(|t| after_hold(at(*t), hold, deadline))
            .collect();
        assert_eq!(looks[0], FLOOR, "just after the hold: the floor, not 5 ms");
        assert!(looks.windows(2).take(3).all(|w| w[0] <= w[1]), "{looks:?}");
        assert_eq!(looks[2], Duration::from_secs(5));
        assert_eq!(looks[3], CEILING);
        assert_eq!(
            looks[4],
            until(at(99_000), deadline),
            "never past the deadline"
        );
    }

    #[test]
    fn every_requeue_has_the_floor_and_an_empty_one_a_backoff() {
        assert_eq!(
            next_look(Some(Duration::from_millis(5)), Duration::ZERO),
            FLOOR
        );
        let five = Duration::from_secs(5);
        assert_eq!(next_look(Some(five), Duration::ZERO), five);
        assert_eq!(next_look(None, Duration::ZERO), FLOOR);
        assert_eq!(
            next_look(None, Duration::from_secs(20)),
            Duration::from_secs(10)
        );
        assert_eq!(next_look(None, Duration::from_secs(3_600)), CEILING);
    }
}
