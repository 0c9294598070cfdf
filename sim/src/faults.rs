//! Fault injection for API requests: rules that match a verb, resource, namespace, name and
//! requesting user (bearer token) and answer an error status, add latency, or cut watch
//! streams, a number of times or with a seeded probability. Only HTTP requests are affected,
//! never the in-process controllers.

use crate::error::ApiError;
use std::sync::Mutex;
use std::time::Duration;

/// What a matching rule does to a request.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultAction {
    /// Answer this HTTP status (409, 429, 500, ...) with a `Status` body instead of serving.
    Status(u16),
    /// Serve the request after this delay.
    Latency(Duration),
    /// Close matching watch streams after this long (zero: at once, after the initial events).
    DropWatch(Duration),
}

/// A fault rule. Empty matchers match everything.
#[derive(Clone, Debug)]
pub struct FaultRule {
    /// Verb: `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: Option<String>,
    /// Resource plural, optionally with a subresource (`pods`, `pods/eviction`,
    /// `maintenanceplans/status`).
    pub resource: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
    /// Object name.
    pub name: Option<String>,
    /// The requesting user: the bearer token the client sent ("" for none). Lets a test
    /// fault one client (the operator) while its own client is served normally.
    pub user: Option<String>,
    /// The effect.
    pub action: FaultAction,
    /// How many times the rule fires (None: unlimited).
    pub times: Option<u32>,
    /// Probability of firing on a matching request (1.0: always).
    pub probability: f64,
}

impl FaultRule {
    /// A rule with the given effect on every request; narrow it with the builder methods.
    pub fn new(action: FaultAction) -> Self {
        FaultRule {
            verb: None,
            resource: None,
            namespace: None,
            name: None,
            user: None,
            action,
            times: None,
            probability: 1.0,
        }
    }
    /// Answer `code` instead of serving.
    pub fn status(code: u16) -> Self {
        Self::new(FaultAction::Status(code))
    }
    /// Delay serving by `d`.
    pub fn latency(d: Duration) -> Self {
        Self::new(FaultAction::Latency(d))
    }
    /// Cut watch streams after `d`.
    pub fn drop_watch(d: Duration) -> Self {
        let mut r = Self::new(FaultAction::DropWatch(d));
        r.verb = Some("watch".into());
        r
    }
    /// Only for this verb.
    pub fn verb(mut self, v: &str) -> Self {
        self.verb = Some(v.into());
        self
    }
    /// Only for this resource (`pods`, `pods/eviction`).
    pub fn resource(mut self, r: &str) -> Self {
        self.resource = Some(r.into());
        self
    }
    /// Only in this namespace.
    pub fn namespace(mut self, n: &str) -> Self {
        self.namespace = Some(n.into());
        self
    }
    /// Only for this object name.
    pub fn name(mut self, n: &str) -> Self {
        self.name = Some(n.into());
        self
    }
    /// Only for requests of this user (the bearer token; "" for requests without one).
    pub fn user(mut self, token: &str) -> Self {
        self.user = Some(token.into());
        self
    }
    /// Fire at most `n` times.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }
    /// Fire with probability `p` (drawn from the seeded generator).
    pub fn probability(mut self, p: f64) -> Self {
        self.probability = p;
        self
    }

    fn matches(&self, req: &RequestInfo<'_>) -> bool {
        self.verb.as_deref().is_none_or(|v| v == req.verb)
            && self.resource.as_deref().is_none_or(|r| r == req.resource)
            && self.namespace.as_deref().is_none_or(|n| n == req.namespace)
            && self.name.as_deref().is_none_or(|n| n == req.name)
            && self.user.as_deref().is_none_or(|u| u == req.user)
    }
}

/// What the fault layer knows about a request.
#[derive(Clone, Copy, Debug)]
pub struct RequestInfo<'a> {
    /// Verb.
    pub verb: &'a str,
    /// Resource plural with optional `/subresource`.
    pub resource: &'a str,
    /// Namespace ("" if none).
    pub namespace: &'a str,
    /// Name ("" if none).
    pub name: &'a str,
    /// The bearer token of the request ("" if none).
    pub user: &'a str,
}

/// The effects decided for one request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decision {
    /// Delay before serving.
    pub latency: Duration,
    /// An error to answer instead.
    pub error: Option<ApiError>,
    /// For watches: cut the stream after this long.
    pub drop_watch: Option<Duration>,
}

struct State {
    rules: Vec<(u64, FaultRule, u32)>,
    next_id: u64,
    rng: u64,
}

/// The active fault rules.
pub struct Faults {
    state: Mutex<State>,
}

impl Faults {
    /// No rules; `seed` drives probabilistic rules.
    pub fn new(seed: u64) -> Self {
        Faults {
            state: Mutex::new(State {
                rules: Vec::new(),
                next_id: 1,
                rng: seed,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a rule; returns its id for [`Faults::remove`].
    pub fn add(&self, rule: FaultRule) -> u64 {
        let mut s = self.lock();
        let id = s.next_id;
        s.next_id += 1;
        s.rules.push((id, rule, 0));
        id
    }

    /// Removes a rule.
    pub fn remove(&self, id: u64) {
        self.lock().rules.retain(|(i, _, _)| *i != id);
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// How many times a rule has fired.
    pub fn fired(&self, id: u64) -> u32 {
        self.lock()
            .rules
            .iter()
            .find(|(i, _, _)| *i == id)
            .map(|(_, _, n)| *n)
            .unwrap_or(0)
    }

    /// Decides the effects for a request (consuming counted firings).
    pub fn decide(&self, req: &RequestInfo<'_>) -> Decision {
        let mut s = self.lock();
        let mut d = Decision::default();
        if s.rules.is_empty() {
            return d;
        }
        let mut rng = s.rng;
        for (_, rule, fired) in s.rules.iter_mut() {
            if !rule.matches(req) || rule.times.is_some_and(|t| *fired >= t) {
                continue;
            }
            if rule.probability < 1.0 {
                rng = crate::util::splitmix64(rng);
                let draw = (rng >> 11) as f64 / (1u64 << 53) as f64;
                if draw >= rule.probability {
                    continue;
                }
            }
            match &rule.action {
                FaultAction::Status(code) => {
                    if d.error.is_some() {
                        continue;
                    }
                    d.error = Some(fault_error(*code));
                }
                FaultAction::Latency(l) => d.latency += *l,
                FaultAction::DropWatch(after) => {
                    if req.verb != "watch" || d.drop_watch.is_some() {
                        continue;
                    }
                    d.drop_watch = Some(*after);
                }
            }
            *fired += 1;
        }
        s.rng = rng;
        d
    }
}

fn fault_error(code: u16) -> ApiError {
    let reason = match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        410 => "Expired",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    };
    let mut e = ApiError::new(code, reason, format!("injected fault: {reason} ({code})"));
    if code == 429 {
        e.details = Some(serde_json::json!({"retryAfterSeconds": 1}));
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(verb: &'a str, resource: &'a str, name: &'a str) -> RequestInfo<'a> {
        RequestInfo {
            verb,
            resource,
            namespace: "default",
            name,
            user: "",
        }
    }

    #[test]
    fn counted_rules_fire_n_times_and_match_narrowly() {
        let f = Faults::new(1);
        let id = f.add(
            FaultRule::status(500)
                .verb("patch")
                .resource("deployments")
                .times(2),
        );
        assert!(f.decide(&req("get", "deployments", "a")).error.is_none());
        assert_eq!(
            f.decide(&req("patch", "deployments", "a"))
                .error
                .unwrap()
                .code,
            500
        );
        assert_eq!(
            f.decide(&req("patch", "deployments", "b"))
                .error
                .unwrap()
                .code,
            500
        );
        assert!(f.decide(&req("patch", "deployments", "a")).error.is_none());
        assert_eq!(f.fired(id), 2);
    }

    #[test]
    fn user_rules_fault_only_that_user() {
        let f = Faults::new(1);
        let id = f.add(FaultRule::status(500).user("operator"));
        let of = |user| RequestInfo {
            user,
            ..req("get", "pods", "p")
        };
        assert!(f.decide(&of("")).error.is_none());
        assert!(f.decide(&of("someone-else")).error.is_none());
        assert_eq!(f.decide(&of("operator")).error.unwrap().code, 500);
        assert_eq!(f.fired(id), 1);
        // Without a user matcher, every client is hit.
        f.clear();
        f.add(FaultRule::status(500));
        assert!(f.decide(&of("")).error.is_some());
        assert!(f.decide(&of("operator")).error.is_some());
    }

    #[test]
    fn probabilistic_rules_are_reproducible_with_a_seed() {
        let run = |seed| {
            let f = Faults::new(seed);
            f.add(FaultRule::status(429).probability(0.5));
            (0..64)
                .map(|_| f.decide(&req("get", "pods", "p")).error.is_some())
                .collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        let hits = a.iter().filter(|x| **x).count();
        assert!((16..=48).contains(&hits), "{hits} of 64");
    }
}
