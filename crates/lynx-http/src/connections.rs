//! The accept loop: HTTP/1.1 connections with bounds, so idle and half-sent connections cannot pile up.
//!
//! axum's own `serve` keeps a connection for as long as the client does. Here every connection gets
//! a slot out of `max_connections` (over the cap it is closed at once, which a client notices, instead of
//! waiting in the kernel's backlog), a deadline for a request's headers (`header_timeout`, hyper's
//! timer, which runs from the moment the connection is ready for a request: a client that sends half
//! a request's headers, or keeps an idle keep-alive connection, is dropped when it passes) and an idle
//! deadline (`idle_timeout`: a connection with no bytes in either direction for that long — a body that
//! stopped half-way, say — is shut down gracefully, so a request in flight still gets its answer, and
//! dropped if nothing moves for another `idle_timeout`). Shutdown stops accepting, lets each connection finish its request,
//! and returns when all are closed.

use std::{
    pin::Pin,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{Semaphore, watch},
};

/// Bounds on the connections one instance keeps.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections open at once (`LYNX_HTTP_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// How long a client may take to send a request's headers (`LYNX_HTTP_HEADER_TIMEOUT_MS`).
    pub header_timeout: Duration,
    /// How long a connection may carry nothing before it is closed (`LYNX_HTTP_IDLE_TIMEOUT_MS`).
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self { max_connections: 1024, header_timeout: Duration::from_secs(30), idle_timeout: Duration::from_secs(120) }
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` resolves, then lets open connections
/// finish their requests and returns when they have closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS) as u32;
    let slots = Arc::new(Semaphore::new(max as usize));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                // Out of file descriptors, say: wait a moment rather than spin.
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(max = max, "connection closed at once: LYNX_HTTP_MAX_CONNECTIONS are open");
            drop(tcp);
            continue;
        };
        // Without TCP_NODELAY, replies wait on Nagle's algorithm and delayed ACKs (~40 ms each).
        let _ = tcp.set_nodelay(true);
        let activity = Arc::new(AtomicU64::new(now_ms()));
        let io = TokioIo::new(Watched { tcp, activity: activity.clone() });
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let connection = http.serve_connection(io, service);
        let mut stop = stop_rx.clone();
        let idle_timeout = limits.idle_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            tokio::pin!(connection);
            let mut closing = false;
            loop {
                tokio::select! {
                    _ = connection.as_mut() => break,
                    _ = stop.changed(), if !closing => {
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                    }
                    () = idle(&activity, idle_timeout) => {
                        // The first time, close after the request in flight, if any; the second (still
                        // nothing moved: a request stuck half-sent holds the graceful close), drop it.
                        if closing {
                            break;
                        }
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                        activity.store(now_ms(), Ordering::Relaxed);
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a slot until it has closed.
    let _ = slots.acquire_many(max).await;
    Ok(())
}

/// Milliseconds since the first call (a clock cheap enough to stamp every read and write).
fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// Resolves once nothing has moved on the connection for `timeout`.
async fn idle(activity: &AtomicU64, timeout: Duration) {
    loop {
        let since = now_ms().saturating_sub(activity.load(Ordering::Relaxed));
        let left = timeout.as_millis() as u64 - since.min(timeout.as_millis() as u64);
        if left == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(left)).await;
    }
}

/// A TCP stream that stamps the time of every read and write that moved bytes.
struct Watched {
    tcp: TcpStream,
    activity: Arc<AtomicU64>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.store(now_ms(), Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.tcp).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.store(now_ms(), Ordering::Relaxed);
        }
        polled
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.store(now_ms(), Ordering::Relaxed);
        }
        polled
    }
    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}
