//! Serving a tower service on a public listener with the limits a public server needs, and on
//! a private one.
//!
//! `axum::serve` and warp's `Server::run` give no way to bound how long a client may take to
//! send its request head, so a client that connects and trickles (or never finishes) its
//! headers holds a socket forever; a thousand of them exhaust the file descriptors. This serves
//! through hyper-util's connection builder instead, with a timer and:
//! - the first byte of a new connection must arrive within [`HEADER_READ_TIMEOUT`] (hyper's
//!   header timer starts only once bytes arrive), and then `header_read_timeout` bounds the
//!   rest of the request head;
//! - a connection on which nothing is read for [`IDLE_TIMEOUT`] is closed (an idle keep-alive
//!   connection, or one that stopped sending): longer than the webhook's store deadline, so a
//!   slow store never cuts a request off;
//! - the body deadline is the webhook's own (`StatusWebhookBuilder::body_read_timeout`);
//! - graceful shutdown: in-flight requests finish, for at most [`SHUTDOWN_GRACE`].
//!
//! A private listener ([`Limits::PRIVATE`], the admin one) keeps the deadline for request heads
//! but has no idle limit: the status page's event stream sends for as long as the page is
//! open while the browser sends nothing, and an idle limit would cut it.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_io_timeout::TimeoutStream;

/// How long a client may take to send a request head (or to start the next one on a
/// keep-alive connection).
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a connection may go without sending anything.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long shutdown waits for in-flight requests.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The deadlines a listener enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// How long a client may take to send a request head.
    pub(crate) header: Duration,
    /// How long a connection may go without sending anything; `None`: no limit.
    pub(crate) idle: Option<Duration>,
}

impl Limits {
    /// For the public listener: [`HEADER_READ_TIMEOUT`] and [`IDLE_TIMEOUT`].
    pub(crate) const PUBLIC: Self = Self {
        header: HEADER_READ_TIMEOUT,
        idle: Some(IDLE_TIMEOUT),
    };

    /// For a private listener: [`HEADER_READ_TIMEOUT`] but no idle limit, so a long response
    /// during which the client sends nothing (server-sent events) is not cut off. A response
    /// that never ends must end itself when shutdown comes, or shutdown waits
    /// [`SHUTDOWN_GRACE`] for it.
    pub(crate) const PRIVATE: Self = Self {
        header: HEADER_READ_TIMEOUT,
        idle: None,
    };
}

/// Serves `service` on `listener` with `limits` until `shutdown` resolves, then lets in-flight
/// requests finish for at most [`SHUTDOWN_GRACE`].
pub(crate) async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) where
    S: tower::Service<http::Request<Incoming>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Limits {
        header: header_timeout,
        idle,
    } = limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(20)));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, for instance: wait a little, then accept again.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (builder, service) = (builder.clone(), service.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // A client that connects and sends nothing is dropped here.
            let mut first = [0u8; 1];
            if !matches!(
                tokio::time::timeout(header_timeout, stream.peek(&mut first)).await,
                Ok(Ok(1..))
            ) {
                return;
            }
            let mut stream = TimeoutStream::new(stream);
            stream.set_read_timeout(idle);
            let connection = builder.serve_connection_with_upgrades(
                TokioIo::new(Box::pin(stream)),
                TowerToHyperService::new(service),
            );
            let _ = watcher.watch(connection.into_owned()).await;
        });
    }
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
}
