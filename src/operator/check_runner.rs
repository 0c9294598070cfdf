//! Makes the attempts of HTTP and webhook checks that `actuate` hands it: each attempt once, in
//! a task of its own (a slow answer holds up no reconcile), its answer kept in memory by plan
//! until the plan ends, and the plan woken to read it (`observe` puts the answers in the
//! snapshot). An operator that stops loses the answers; the step then asks for the attempt
//! again, so a check is never counted as passed from an attempt nobody saw answered. It does
//! not decide anything: what an answer means is the step's.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::Stream;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::mpsc;

use super::probe::{ProbeAnswer, ProbeKind, ProbeRequest};
use crate::api::MaintenancePlan;

/// Answers kept per plan: the last ones (a plan asks for one attempt per check at a time).
const KEPT: usize = 64;

type Https = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

#[derive(Default)]
struct Book {
    in_flight: HashSet<String>,
    answers: Vec<ProbeAnswer>,
}

/// Shared by every reconcile of one operator.
#[derive(Clone)]
pub struct CheckRunner {
    books: Arc<Mutex<HashMap<String, Book>>>,
    wake: mpsc::UnboundedSender<ObjectRef<MaintenancePlan>>,
    http: Https,
}

impl CheckRunner {
    /// A runner, and the stream of plans to reconcile because an answer came in.
    pub fn new() -> (
        Self,
        impl Stream<Item = ObjectRef<MaintenancePlan>> + Send + 'static,
    ) {
        let (wake, woken) = mpsc::unbounded_channel();
        let connector = match hyper_rustls::HttpsConnectorBuilder::new().with_native_roots() {
            Ok(builder) => builder.https_or_http().enable_http1().build(),
            Err(e) => {
                // Without the system's roots plain http still works; https fails to verify.
                tracing::warn!(error = %e, "no TLS roots for https webhooks");
                let config = rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth();
                hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(config)
                    .https_or_http()
                    .enable_http1()
                    .build()
            }
        };
        let http = Client::builder(TokioExecutor::new()).build(connector);
        let woken = futures::stream::unfold(woken, |mut rx| async move {
            rx.recv().await.map(|plan| (plan, rx))
        });
        (
            CheckRunner {
                books: Arc::default(),
                wake,
                http,
            },
            woken,
        )
    }

    fn books(&self) -> std::sync::MutexGuard<'_, HashMap<String, Book>> {
        self.books.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The answers to the attempts of the plan with `uid` so far.
    pub fn answers(&self, uid: &str) -> Vec<ProbeAnswer> {
        self.books()
            .get(uid)
            .map(|b| b.answers.clone())
            .unwrap_or_default()
    }

    /// Forgets what the plan with `uid` asked (it ended).
    pub fn forget(&self, uid: &str) {
        self.books().remove(uid);
    }

    /// Starts `request` unless it is answered or in flight; `plan` is woken with the answer.
    pub fn start(&self, request: &ProbeRequest, plan: ObjectRef<MaintenancePlan>) {
        {
            let mut books = self.books();
            let book = books.entry(request.plan_uid.clone()).or_default();
            if book.in_flight.contains(&request.key)
                || book.answers.iter().any(|a| a.key == request.key)
            {
                return;
            }
            book.in_flight.insert(request.key.clone());
        }
        let runner = self.clone();
        let request = request.clone();
        tokio::spawn(async move {
            let (passed, message) = runner.attempt(&request).await;
            {
                let mut books = runner.books();
                let book = books.entry(request.plan_uid.clone()).or_default();
                book.in_flight.remove(&request.key);
                book.answers.push(ProbeAnswer {
                    key: request.key.clone(),
                    passed,
                    message,
                    at: Timestamp::now(),
                });
                let extra = book.answers.len().saturating_sub(KEPT);
                book.answers.drain(..extra);
            }
            let _ = runner.wake.send(plan);
        });
    }

    async fn attempt(&self, request: &ProbeRequest) -> (bool, String) {
        let http = &self.http;
        match &request.kind {
            ProbeKind::Http { urls, expect } => {
                if urls.is_empty() {
                    return (false, "no pod to ask".into());
                }
                let mut seen = Vec::new();
                let mut passed = true;
                for (pod, url) in urls {
                    let answer = call(http, get(url), request.timeout).await;
                    let word = match answer {
                        Ok(status) if status == *expect => format!("{status}"),
                        Ok(status) => {
                            passed = false;
                            format!("{status}, not {expect}")
                        }
                        Err(e) => {
                            passed = false;
                            e
                        }
                    };
                    seen.push(format!("pod {pod} answered {word}"));
                }
                let path = urls
                    .first()
                    .and_then(|(_, u)| u.parse::<hyper::Uri>().ok())
                    .map(|u| format!("GET {}: ", u.path()))
                    .unwrap_or_default();
                (passed, format!("{path}{}", seen.join(", ")))
            }
            ProbeKind::Webhook { url, body } => {
                match call(http, post(url, body), request.timeout).await {
                    Ok(status) if (200..300).contains(&status) => {
                        (true, format!("POST {url} answered {status}"))
                    }
                    Ok(status) => (false, format!("POST {url} answered {status}")),
                    Err(e) => (false, format!("POST {url}: {e}")),
                }
            }
        }
    }
}

fn get(url: &str) -> Result<hyper::Request<Full<Bytes>>, String> {
    hyper::Request::get(url)
        .header("user-agent", "cutover")
        .body(Full::new(Bytes::new()))
        .map_err(|e| format!("bad request {url}: {e}"))
}

fn post(url: &str, body: &serde_json::Value) -> Result<hyper::Request<Full<Bytes>>, String> {
    hyper::Request::post(url)
        .header("content-type", "application/json")
        .header("user-agent", "cutover")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| format!("bad request {url}: {e}"))
}

/// The status of the answer to `request`, or why there was none within `timeout`.
async fn call(
    http: &Https,
    request: Result<hyper::Request<Full<Bytes>>, String>,
    timeout: Duration,
) -> Result<u16, String> {
    let request = request?;
    let answered = tokio::time::timeout(timeout, async {
        let response = http.request(request).await.map_err(|e| {
            let mut why = e.to_string();
            if let Some(source) = std::error::Error::source(&e) {
                why = format!("{why}: {source}");
            }
            why
        })?;
        let status = response.status().as_u16();
        // Read the body so that the connection can be used again.
        let _ = response.into_body().collect().await;
        Ok::<u16, String>(status)
    })
    .await;
    match answered {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {}s", timeout.as_secs_f64())),
    }
}
