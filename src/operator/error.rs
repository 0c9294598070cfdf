//! Errors of the operator's IO, each with a short fixed reason used in Events, logs and the
//! `reconcile_errors_total` metric label, sorted into transient ones (worth trying again
//! soon) and permanent ones (the API server refused the request itself; only a fix by a
//! person makes it pass).

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
            Error::Api { source, .. } => match status_code(source) {
                Some(429) => "TooManyRequests",
                Some(code) if code >= 500 => "ServerError",
                Some(400) => "BadRequest",
                Some(401) => "Unauthorized",
                Some(403) => "Forbidden",
                Some(404) => "NotFound",
                Some(422) => "Invalid",
                Some(_) => "ApiRejected",
                None => "Transport",
            },
            Error::EvictionBlocked(_) => "EvictionBlocked",
            Error::Conflict(_) => "Conflict",
        }
    }

    /// The API server refused the request itself (a client error other than a conflict, a
    /// timeout or throttling): the same request fails again until a person fixes the cause
    /// (the operator's RBAC, an admission webhook, the object, the plan).
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::Api { source, .. } => status_code(source)
                .is_some_and(|c| (400..500).contains(&c) && ![408, 409, 429].contains(&c)),
            Error::EvictionBlocked(_) | Error::Conflict(_) => false,
        }
    }

    /// How long to wait before the first retry of a transient error; later retries back
    /// off from there (`retry`).
    pub fn first_retry(&self) -> Duration {
        match self {
            Error::Conflict(_) => Duration::from_millis(20),
            Error::EvictionBlocked(_) => Duration::from_secs(1),
            Error::Api { source, .. } if status_code(source) == Some(429) => {
                Duration::from_millis(500)
            }
            Error::Api { .. } => Duration::from_millis(200),
        }
    }

    /// For a permanent error, a sentence for the plan's status and Event: what the operator
    /// may not do, and the server's own words.
    pub fn refusal(&self) -> String {
        let Error::Api { verb, what, source } = self else {
            return self.to_string();
        };
        let (code, said) = match source {
            kube::Error::Api(status) => (status.code, status.message.as_str()),
            _ => (0, ""),
        };
        let said = if said.is_empty() {
            source.to_string()
        } else {
            said.to_string()
        };
        let refused = match code {
            401 => format!(
                "unauthorized: the API server does not accept the operator's credentials to {verb} {what}"
            ),
            403 => format!("forbidden: the operator may not {verb} {what}"),
            404 => format!("not found: the operator could not {verb} {what}"),
            _ => format!("refused: the API server would not let the operator {verb} {what}"),
        };
        let fix = match code {
            401 | 403 => "grant the operator's ServiceAccount the permission",
            404 => "put back what is missing",
            _ => "fix what the server names",
        };
        format!(
            "{refused}: {said} ({code} {}); {fix} and the plan goes on (it tries again now and then)",
            self.reason()
        )
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// What the API server answers with `code`.
    pub(crate) fn answered(code: u16, reason: &str, message: &str) -> Error {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": code, "reason": reason, "message": message
        }))
        .expect("a Status");
        Error::api(
            "patch",
            "statefulset liferay",
            kube::Error::Api(Box::new(status)),
        )
    }

    #[test]
    fn client_errors_are_permanent_and_the_rest_transient() {
        for code in [400, 401, 403, 404, 422] {
            let e = answered(code, "X", "no");
            assert!(e.is_permanent(), "{code}");
        }
        for code in [408, 409, 429, 500, 503, 504] {
            let e = answered(code, "X", "busy");
            assert!(!e.is_permanent(), "{code}");
        }
        let transport = Error::api(
            "get",
            "pods",
            kube::Error::Service(std::io::Error::other("connection reset").into()),
        );
        assert!(!transport.is_permanent());
        assert_eq!(transport.reason(), "Transport");
        assert!(!Error::EvictionBlocked("p".into()).is_permanent());
    }

    #[test]
    fn a_refusal_names_the_verb_the_object_and_the_server_s_words() {
        let e = answered(
            403,
            "Forbidden",
            "statefulsets.apps \"liferay\" is forbidden: User \"system:serviceaccount:cutover:cutover\" cannot patch resource \"statefulsets\"",
        );
        assert_eq!(e.reason(), "Forbidden");
        let said = e.refusal();
        assert!(
            said.starts_with("forbidden: the operator may not patch statefulset liferay: statefulsets.apps \"liferay\" is forbidden: User"),
            "{said}"
        );
        assert!(said.contains("(403 Forbidden)"), "{said}");
        assert!(
            answered(422, "Invalid", "spec.replicas: Invalid value")
                .refusal()
                .contains("spec.replicas: Invalid value (422 Invalid)")
        );
        assert!(
            answered(404, "NotFound", "services \"x\" not found")
                .refusal()
                .starts_with("not found: the operator could not patch")
        );
    }
}
