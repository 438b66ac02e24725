//! The HTTP accept loop: hyper's HTTP/1 with a header read timeout and a cap
//! on connections held at once. `axum::serve` offers neither (it gives hyper
//! no timer, so hyper's own header timeout never runs): a client that sends
//! half a request, or connects and says nothing, would hold its connection
//! and a file descriptor for ever, and enough of them lock operators out.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// How long requests in flight get to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// A connection whose request header is not complete this long after
    /// the connection (or its previous response) is closed.
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

/// Serves `app` on `listener` until `cancel`.
pub async fn run(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    cancel: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            r = listener.accept() => r,
        };
        let (stream, from) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE/ENFILE land here: back off instead of spinning.
                warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            debug!(src = %from, "http.max_connections reached; connection closed");
            continue;
        };
        let (app, cancel) = (app.clone(), cancel.clone());
        tokio::spawn(async move {
            connection(stream, from, app, limits, cancel).await;
            drop(slot);
        });
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    from: SocketAddr,
    app: Router,
    limits: HttpLimits,
    cancel: CancellationToken,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = cancel.cancelled() => {
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(DRAIN, conn.as_mut()).await {
                Ok(r) => r,
                Err(_) => return,
            }
        }
    };
    if let Err(e) = result {
        // Header timeouts and clients that vanish end here.
        debug!(src = %from, error = %e, "HTTP connection ended");
    }
}
