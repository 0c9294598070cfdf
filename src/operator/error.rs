//! Errors of the operator's IO, each with a short fixed reason used in Events, logs and the
//! `reconcile_errors_total` metric label.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or failed a request.
    #[error("{verb} {what}: {source}")]
    Api {
        verb: &'static str,
        what: String,
        #[source]
        source: kube::Error,
    },
    /// An eviction was refused because a PodDisruptionBudget does not allow it now.
    #[error("eviction of pod {0} is blocked by a PodDisruptionBudget; retrying")]
    EvictionBlocked(String),
    /// What was read is already out of date (409): read again and decide again.
    #[error("{0} changed while the operator acted on it; reading it again")]
    Conflict(String),
}

impl Error {
    /// A short fixed word for metrics and Events.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Api {
                source: kube::Error::Api(status),
                ..
            } if status.code == 429 => "TooManyRequests",
            Error::Api {
                source: kube::Error::Api(status),
                ..
            } if status.code >= 500 => "ServerError",
            Error::Api {
                source: kube::Error::Api(_),
                ..
            } => "ApiRejected",
            Error::Api { .. } => "Transport",
            Error::EvictionBlocked(_) => "EvictionBlocked",
            Error::Conflict(_) => "Conflict",
        }
    }

    /// How long to wait before trying again.
    pub fn retry_after(&self) -> Duration {
        match self {
            Error::Conflict(_) => Duration::from_millis(20),
            Error::EvictionBlocked(_) => Duration::from_secs(1),
            Error::Api {
                source: kube::Error::Api(status),
                ..
            } if status.code == 429 => Duration::from_millis(500),
            Error::Api { .. } => Duration::from_millis(200),
        }
    }

    pub fn api(verb: &'static str, what: impl Into<String>, source: kube::Error) -> Self {
        let what = what.into();
        match &source {
            kube::Error::Api(status) if status.code == 409 => Error::Conflict(what),
            _ => Error::Api { verb, what, source },
        }
    }
}

/// The HTTP status of an API error, if it is one.
pub fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}
