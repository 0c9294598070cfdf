//! The requests of HTTP and webhook checks and their answers, as plain data: the step asks for
//! an attempt (`Action::Probe`), the check runner makes it, and the answer comes back to the
//! step through the snapshot. No IO here.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

/// One attempt of an HTTP or webhook check.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeRequest {
    /// The plan's UID: answers are kept per plan.
    pub plan_uid: String,
    /// Names the attempt: stage, check, subject and attempt number. An answer is counted only
    /// for the attempt it answers.
    pub key: String,
    pub kind: ProbeKind,
    /// How long the attempt may take.
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProbeKind {
    /// GET each URL (one per pod under test, by pod name); every one must answer `expect`.
    Http {
        urls: Vec<(String, String)>,
        expect: u16,
    },
    /// POST `body`; a 2xx answer passes.
    Webhook {
        url: String,
        body: serde_json::Value,
    },
}

/// The answer to one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeAnswer {
    pub key: String,
    pub passed: bool,
    /// What was answered (the statuses seen, or why there was no answer).
    pub message: String,
    pub at: Timestamp,
}
