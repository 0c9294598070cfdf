//! Watch streams over HTTP: initial events, replay from a resourceVersion, live events filtered
//! by label and field selectors (with ADDED/DELETED when an object enters or leaves the
//! selection), BOOKMARK events, `timeoutSeconds`, the 410 ERROR event for a resourceVersion
//! that is too old, and cutting a stream on a fault. Encoding of objects is the caller's.

use crate::error::ApiError;
use crate::resources::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{EventType, Store, StoreEvent};
use axum::body::{Body, Bytes};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Turns a stored object into what the client asked for (version, Table, metadata only).
pub type Render = Arc<dyn Fn(&Arc<Value>) -> Arc<Value> + Send + Sync>;

/// The parameters of one watch request.
pub struct WatchParams {
    /// Start after this resourceVersion (None: now).
    pub since: Option<u64>,
    /// Send the current objects as ADDED events first.
    pub initial: bool,
    /// After the initial events, send a BOOKMARK marking their end (`sendInitialEvents`).
    pub initial_end_bookmark: bool,
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
    /// Send BOOKMARK events.
    pub bookmarks: bool,
    /// How often to send BOOKMARK events.
    pub bookmark_interval: Duration,
    /// Close the stream after this long.
    pub timeout: Option<Duration>,
    /// Close the stream after this long (an injected fault).
    pub drop_after: Option<Duration>,
}

fn line(kind: &str, obj: &Value) -> Bytes {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    serde_json::to_writer(&mut out, obj).expect("JSON values always serialize");
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

/// Starts a watch and returns the streaming response body.
pub fn start(
    store: &Arc<Store>,
    rt: &ResourceType,
    version: &str,
    ns: Option<&str>,
    p: WatchParams,
    render: Render,
) -> Body {
    let (tx, rx) = mpsc::channel::<Bytes>(1024);
    let sub = store.watch(
        &crate::convert::storage_key(&rt.key()),
        ns,
        p.since,
        p.initial,
    );
    let api_version = rt.api_version(version);
    let kind = rt.kind.clone();
    tokio::spawn(async move {
        let mut sub = match sub {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(line("ERROR", &error_status(&e))).await;
                return;
            }
        };
        let selected = |o: &Value| p.labels.matches_object(o) && p.fields.matches(o);
        let mut last_rv = sub.current_rv;
        for obj in std::mem::take(&mut sub.initial) {
            if selected(&obj) && tx.send(line("ADDED", &render(&obj))).await.is_err() {
                return;
            }
        }
        let bookmark = |rv: u64, end: bool| {
            let mut b = json!({"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": rv.to_string()}});
            if end {
                b["metadata"]["annotations"] = json!({"k8s.io/initial-events-end": "true"});
            }
            line("BOOKMARK", &b)
        };
        if p.initial_end_bookmark && tx.send(bookmark(last_rv, true)).await.is_err() {
            return;
        }
        for ev in std::mem::take(&mut sub.replay) {
            last_rv = last_rv.max(ev.rv);
            if let Some(l) = event_line(&ev, &selected, &render)
                && tx.send(l).await.is_err()
            {
                return;
            }
        }
        let deadline = async {
            match p.timeout.into_iter().chain(p.drop_after).min() {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(p.bookmark_interval.max(Duration::from_millis(10)));
        ticker.tick().await;
        loop {
            tokio::select! {
                ev = sub.rx.recv() => {
                    let Some(ev) = ev else { break };
                    last_rv = last_rv.max(ev.rv);
                    if let Some(l) = event_line(&ev, &selected, &render)
                        && tx.send(l).await.is_err()
                    {
                        break;
                    }
                }
                _ = ticker.tick(), if p.bookmarks => {
                    if tx.send(bookmark(last_rv, false)).await.is_err() {
                        break;
                    }
                }
                _ = &mut deadline => break,
                _ = tx.closed() => break,
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    Body::from_stream(stream)
}

fn event_line(
    ev: &StoreEvent,
    selected: &impl Fn(&Value) -> bool,
    render: &Render,
) -> Option<Bytes> {
    let now = selected(&ev.object);
    let kind = match ev.kind {
        EventType::Added => now.then_some("ADDED"),
        EventType::Deleted => now.then_some("DELETED"),
        EventType::Modified => {
            let before = ev.old.as_ref().is_none_or(|o| selected(o));
            match (before, now) {
                (true, true) => Some("MODIFIED"),
                (false, true) => Some("ADDED"),
                (true, false) => Some("DELETED"),
                (false, false) => None,
            }
        }
    }?;
    Some(line(kind, &render(&ev.object)))
}

fn error_status(e: &ApiError) -> Value {
    e.to_status()
}
