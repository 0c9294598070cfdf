//! A webhook receiver for check tests: an HTTP server on 127.0.0.1 that records the JSON body
//! of every POST and answers with the status the test sets; it can also hold requests without
//! answering (to stop the operator in the middle of an attempt).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;

#[derive(Default)]
struct Shared {
    status: u16,
    hold: bool,
    bodies: Vec<serde_json::Value>,
}

pub struct Receiver {
    shared: Arc<Mutex<Shared>>,
    pub url: String,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// A receiver answering `status` to every POST.
    pub async fn answering(status: u16) -> Receiver {
        let shared = Arc::new(Mutex::new(Shared {
            status,
            ..Default::default()
        }));
        let app = Router::new()
            .route("/", post(receive))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            shared,
            url,
            server,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap()
    }

    /// Answer `status` from now on.
    pub fn answer(&self, status: u16) {
        self.lock().status = status;
    }

    /// Hold every request from now on without answering (until `answer` is called).
    pub fn hold(&self) {
        self.lock().hold = true;
    }

    /// Answer again (after `hold`).
    pub fn release(&self) {
        self.lock().hold = false;
    }

    /// The bodies received so far, held requests included.
    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.lock().bodies.clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(State(shared): State<Arc<Mutex<Shared>>>, body: axum::body::Bytes) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    shared.lock().unwrap().bodies.push(value);
    loop {
        let (hold, status) = {
            let s = shared.lock().unwrap();
            (s.hold, s.status)
        };
        if !hold {
            return StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
