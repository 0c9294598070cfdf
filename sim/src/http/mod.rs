//! The HTTP front of the simulated API server: an axum service that parses each request
//! (path, verb, content negotiation), applies injected faults, and hands it to the handlers.
//! Serves plain HTTP on loopback only.

pub mod handlers;
pub mod paging;
pub mod query;
pub mod routes;
pub mod table;

use crate::error::ApiError;
use crate::faults::{Faults, RequestInfo};
use crate::history::RequestRecord;
use crate::store::Store;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use query::Query;
use routes::Target;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Shared state of the HTTP layer.
pub struct App {
    /// The object store.
    pub store: Arc<Store>,
    /// Fault rules.
    pub faults: Arc<Faults>,
    /// Interval of BOOKMARK events on watches that allow them.
    pub bookmark_interval: Duration,
    /// `host:port` the server listens on.
    pub server_addr: String,
    /// Serializes evictions so that two cannot both spend the last allowed disruption.
    pub eviction_lock: tokio::sync::Mutex<()>,
}

/// The router serving the whole API.
pub fn router(app: Arc<App>) -> Router {
    Router::new().fallback(handle).with_state(app)
}

/// A JSON response.
pub fn json_response(code: u16, v: &Value) -> Response {
    bytes_response(
        code,
        serde_json::to_vec(v).expect("JSON values always serialize"),
    )
}

/// A JSON response from bytes.
pub fn bytes_response(code: u16, bytes: Vec<u8>) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::OK))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(bytes))
        .expect("a valid response")
}

/// The `Status` response of an error.
pub fn error_response(e: &ApiError) -> Response {
    let mut r = json_response(e.code, &e.to_status());
    if let Some(secs) = e
        .details
        .as_ref()
        .and_then(|d| d.get("retryAfterSeconds"))
        .and_then(Value::as_i64)
        .filter(|s| *s > 0)
    {
        r.headers_mut().insert(
            header::RETRY_AFTER,
            secs.to_string().parse().expect("digits are a valid header"),
        );
    }
    r
}

/// How the client wants objects encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Plain JSON objects.
    Json,
    /// `meta.k8s.io/v1` Table.
    Table(table::IncludeObject),
    /// `PartialObjectMetadata`.
    Metadata,
}

fn format_of(headers: &HeaderMap, q: &Query) -> Format {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let first_json = accept
        .split(',')
        .map(str::trim)
        .find(|a| a.starts_with("application/json") || a.starts_with("*/*"))
        .unwrap_or("");
    if first_json.contains("as=Table") {
        Format::Table(table::IncludeObject::parse(q.get("includeObject")))
    } else if first_json.contains("as=PartialObjectMetadata") {
        Format::Metadata
    } else {
        Format::Json
    }
}

async fn handle(State(app): State<Arc<App>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let q = Query::parse(parts.uri.query());
    let target = routes::parse(parts.uri.path(), &app.store.registry());
    let method = parts.method.clone();
    let result = match target {
        Target::Version => Ok(json_response(200, &crate::discovery::version())),
        Target::Health => Ok(Response::new(Body::from("ok"))),
        Target::CoreVersions => Ok(json_response(
            200,
            &crate::discovery::core_versions(&app.server_addr),
        )),
        Target::Groups => Ok(json_response(
            200,
            &crate::discovery::groups(&app.store.registry()),
        )),
        Target::Group(g) => {
            let all = crate::discovery::groups(&app.store.registry());
            match all["groups"]
                .as_array()
                .and_then(|gs| gs.iter().find(|x| x["name"] == g.as_str()))
            {
                Some(found) => {
                    let mut v = found.clone();
                    v["kind"] = "APIGroup".into();
                    v["apiVersion"] = "v1".into();
                    Ok(json_response(200, &v))
                }
                None => Err(not_found_path()),
            }
        }
        Target::ResourceList(g, v) => {
            match crate::discovery::resource_list(&app.store.registry(), &g, &v) {
                Some(l) => Ok(json_response(200, &l)),
                None => Err(not_found_path()),
            }
        }
        Target::OpenApi(rest) => match crate::openapi::serve(&app.store.registry(), &rest) {
            Some(doc) => Ok(json_response(200, &doc)),
            None => Err(not_found_path()),
        },
        Target::Unknown => Err(not_found_path()),
        Target::Resource(rp) => {
            let verb = verb_of(&method, &rp, &q);
            let resource = match &rp.sub {
                Some(s) => format!("{}/{s}", rp.rt.plural),
                None => rp.rt.plural.clone(),
            };
            let user = bearer_token(&parts.headers);
            let decision = app.faults.decide(&RequestInfo {
                verb,
                resource: &resource,
                namespace: rp.namespace.as_deref().unwrap_or(""),
                name: rp.name.as_deref().unwrap_or(""),
                user: &user,
            });
            app.store.history().record_request(RequestRecord {
                user,
                verb,
                group: rp.rt.group.clone(),
                resource: resource.clone(),
                namespace: rp.namespace.clone().unwrap_or_default(),
            });
            if !decision.latency.is_zero() {
                tokio::time::sleep(decision.latency).await;
            }
            if let Some(e) = decision.error {
                Err(e)
            } else {
                match axum::body::to_bytes(body, 64 << 20).await {
                    Err(e) => Err(ApiError::bad_request(format!(
                        "reading the request body: {e}"
                    ))),
                    Ok(bytes) => {
                        let req = handlers::Req {
                            app: &app,
                            rp: &rp,
                            q: &q,
                            headers: &parts.headers,
                            body: &bytes,
                            format: format_of(&parts.headers, &q),
                            drop_watch: decision.drop_watch,
                        };
                        handlers::dispatch(verb, req).await
                    }
                }
            }
        }
    };
    result.unwrap_or_else(|e| error_response(&e))
}

/// The bearer token of a request, or "" (the simulator authenticates nobody; the token only
/// tells clients apart in the history).
fn bearer_token(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string()
}

fn not_found_path() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

fn verb_of(method: &Method, rp: &routes::ResourcePath, q: &Query) -> &'static str {
    match (method.as_str(), rp.name.is_some()) {
        ("GET", true) => "get",
        ("GET", false) if q.flag("watch") => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}
