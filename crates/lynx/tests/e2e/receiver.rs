//! A webhook receiver for the tests: a real HTTP server on 127.0.0.1 that records every request it
//! is sent, and verifies Standard Webhooks signatures with the `standardwebhooks` crate — an
//! implementation other than Lynx's.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, Uri},
};
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
    pub fn webhook_id(&self) -> String {
        self.headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    }
    /// Checks the signature against `secret` with the official Standard Webhooks library.
    pub fn verify(&self, secret: &str) {
        let wh = standardwebhooks::Webhook::new(secret).expect("a whsec_ secret");
        wh.verify(&self.body, &self.headers).unwrap_or_else(|e| panic!("signature of {} does not verify: {e:?}", self.webhook_id()));
    }
}

type Log = Arc<Mutex<Vec<Received>>>;

pub struct Receiver {
    pub port: u16,
    log: Log,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

async fn record(State(log): State<Log>, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    log.lock().unwrap().push(Received { path: uri.path().to_string(), headers, body });
    StatusCode::NO_CONTENT
}

impl Receiver {
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// On a given port (a receiver that comes back where Lynx was told it is).
    pub async fn start_on(port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("receiver binds");
        let port = listener.local_addr().unwrap().port();
        let log: Log = Default::default();
        let app = Router::new().fallback(record).with_state(log.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Self { port, log, stop: Some(tx) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until `done` holds of what arrived (at most `within`), and returns it all.
    pub async fn wait_until(&self, within: Duration, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let got = self.received();
            if done(&got) {
                return got;
            }
            assert!(std::time::Instant::now() < deadline, "the receiver did not get what was expected in {within:?}; it got: {:#?}", got.iter().map(|r| (r.path.clone(), r.json())).collect::<Vec<_>>());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The events (type, data) about one draft, in arrival order.
pub fn events_of<'a>(got: &'a [Received], draft_id: &str) -> Vec<&'a Received> {
    got.iter().filter(|r| r.json()["data"]["draft_id"] == draft_id).collect()
}

pub fn event_types(got: &[&Received]) -> Vec<String> {
    got.iter().map(|r| r.json()["type"].as_str().unwrap_or_default().to_string()).collect()
}
