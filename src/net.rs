//! The accept loop and what protects it from slow or idle clients.
//!
//! `axum::serve` gives hyper no timer, so hyper's header timeout never fires and a client that sends
//! half a request head holds its connection (and a file descriptor) forever; 1,100 of them exhausted
//! the open-file limit and the server stopped answering. This loop serves the same router with:
//!
//! - **a request-head timeout** (`HTTP_HEADER_TIMEOUT_SECS`): hyper's HTTP/1 `header_read_timeout`,
//!   which also bounds how long a keep-alive connection may sit idle between requests. Connections
//!   that are not in HTTP/1 yet (nothing sent, or a partial HTTP/2 preface) or that speak HTTP/2 get
//!   the same bound from our own idle watch: a connection with no request in flight for that long is
//!   closed;
//! - **a body idle timeout** (`HTTP_BODY_IDLE_TIMEOUT_SECS`), both ways: a request body that sends
//!   nothing for that long while a handler waits on it fails the request with 408 and closes the
//!   connection ([`IdleBody`], [`body_timeout_as_408`]); a response the client stops reading (its
//!   socket buffer full, no byte accepted for that long) closes the connection ([`GuardedIo`]).
//!   A slow but moving download is never cut: only silence counts;
//! - **a connection cap** (`MAX_CONNECTIONS`, clamped to the open-file limit, see
//!   [`connection_cap`]). At the cap the loop stops accepting: further connections wait in the
//!   kernel's listen backlog and are served as soon as a slot frees (the stalled ones leave within the
//!   timeouts above). Accepting and closing them instead would spend a descriptor on each, turn a
//!   short wait into an error clients retry at once, and let a flood push out nothing but honest
//!   clients;
//! - **accept errors back off** (10 ms doubling to 1 s) instead of spinning, so EMFILE cannot burn a
//!   core while descriptors are short.
//!
//! Graceful shutdown is hyper-util's `GracefulShutdown`: stop accepting (the listener is dropped, so
//! new connections are refused), let each connection finish its in-flight requests, return.
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use http::{header, HeaderValue, StatusCode, Version};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use metrics::{counter, gauge};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::config::Config;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// File descriptors kept free for everything that is not a client connection: stdio, the listener,
/// the runtime's epoll and wakers, the secret file, log files, S3 client sockets between requests.
const RESERVED_FDS: u64 = 64;
/// Each pooled database connection: one socket (PostgreSQL) or the database, WAL and shared-memory
/// files (SQLite).
const FDS_PER_DB_CONNECTION: u64 = 3;
/// Each client connection: its socket, plus the tarball file a download streams from or the temp
/// file a GraphQL upload spools to.
const FDS_PER_CLIENT: u64 = 2;

/// The server's protections against slow clients, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    pub header_timeout: Duration,
    pub body_idle_timeout: Duration,
    pub max_connections: usize,
}

impl ServerLimits {
    /// Reads the settings and fits MAX_CONNECTIONS into the process's open-file limit, with a warning
    /// when that lowers it.
    pub fn from_config(c: &Config) -> ServerLimits {
        let soft = open_file_limit();
        let max_connections = connection_cap(c.max_connections as usize, soft, c.db_max_connections);
        if max_connections < c.max_connections as usize {
            tracing::warn!(
                configured = c.max_connections,
                effective = max_connections,
                open_file_limit = soft,
                "MAX_CONNECTIONS lowered to fit the open-file limit (ulimit -n) with room for the database and \
                 storage; raise the limit (e.g. LimitNOFILE=, docker --ulimit nofile=) to allow more"
            );
        }
        ServerLimits {
            header_timeout: Duration::from_secs(c.http_header_timeout_secs),
            body_idle_timeout: Duration::from_secs(c.http_body_idle_timeout_secs),
            max_connections,
        }
    }
}

/// The connection cap: `configured`, but never more than the descriptors the soft open-file limit
/// leaves after the reserve and the database pool, at [`FDS_PER_CLIENT`] each. Always at least 1.
pub fn connection_cap(configured: usize, open_file_limit: Option<u64>, db_connections: u32) -> usize {
    let Some(soft) = open_file_limit else { return configured.max(1) };
    let reserve = RESERVED_FDS + FDS_PER_DB_CONNECTION * u64::from(db_connections);
    let fit = soft.saturating_sub(reserve) / FDS_PER_CLIENT;
    configured.min(usize::try_from(fit).unwrap_or(usize::MAX)).max(1)
}

/// The soft RLIMIT_NOFILE, or None when unlimited or unknown.
pub fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes into the struct we pass and reads nothing else.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 || lim.rlim_cur == libc::RLIM_INFINITY {
            return None;
        }
        Some(rlim_u64(lim.rlim_cur))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// `rlim_t` is u64 on Linux, not on every unix.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)]
fn rlim_u64(v: libc::rlim_t) -> u64 {
    v as u64
}

/// Raises the soft open-file limit to the hard one, as Go's runtime and most servers do: the soft
/// default of many systems (1024) is below MAX_CONNECTIONS' default. Returns (before, after).
pub fn raise_open_file_limit() -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: as above; setrlimit reads the struct we pass.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                return None;
            }
            let before = lim.rlim_cur;
            if lim.rlim_max == libc::RLIM_INFINITY || before >= lim.rlim_max {
                return Some((rlim_u64(before), rlim_u64(before)));
            }
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Some((rlim_u64(before), rlim_u64(before)));
            }
            Some((rlim_u64(before), rlim_u64(lim.rlim_cur)))
        }
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Serves `router` on `listener` until `signal` resolves, then waits for open connections to finish
/// their requests. Each request carries `ConnectInfo<SocketAddr>` (the peer), as with axum's
/// `into_make_service_with_connect_info`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    signal: impl Future<Output = ()> + Send + 'static,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    // HTTP/2 (prior knowledge) has no head timeout in hyper: the idle watch covers connections
    // without streams, and pings find peers that vanished while a request runs.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.body_idle_timeout)
        .keep_alive_timeout(limits.header_timeout);
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    gauge!("raven_http_connections_max").set(limits.max_connections as f64);
    let graceful = GracefulShutdown::new();
    let mut signal = std::pin::pin!(signal);
    let mut backoff = Backoff::default();
    let mut warned_full_at: Option<Instant> = None;

    'accept: loop {
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if warned_full_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                    warned_full_at = Some(Instant::now());
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "at MAX_CONNECTIONS: new connections wait in the listen backlog until one closes"
                    );
                }
                tokio::select! {
                    biased;
                    _ = &mut signal => break 'accept,
                    p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
                }
            }
        };
        let (tcp, peer) = loop {
            tokio::select! {
                biased;
                _ = &mut signal => break 'accept,
                r = listener.accept() => match r {
                    Ok(conn) => {
                        backoff.reset();
                        break conn;
                    }
                    Err(e) if is_connection_error(&e) => {
                        tracing::debug!(error = %e, "a connection failed before it was accepted");
                    }
                    Err(e) => {
                        let delay = backoff.next_delay();
                        tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "accept error; backing off");
                        tokio::select! {
                            biased;
                            _ = &mut signal => break 'accept,
                            _ = tokio::time::sleep(delay) => {}
                        }
                    }
                },
            }
        };
        // Streamed bodies (tarballs) go out in a write after the head's: with Nagle's algorithm
        // that write waits for the client's delayed ACK of the head, ~40 ms per download.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "could not set TCP_NODELAY on a connection");
        }
        tokio::spawn(serve_connection(builder.clone(), graceful.watcher(), tcp, peer, router.clone(), limits, permit));
    }
    drop(listener);
    tracing::debug!(connections = graceful.count(), "not accepting; waiting for open connections");
    graceful.shutdown().await;
}

async fn serve_connection(
    builder: Arc<auto::Builder<TokioExecutor>>,
    watcher: hyper_util::server::graceful::Watcher,
    tcp: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ServerLimits,
    permit: OwnedSemaphorePermit,
) {
    let _open = OpenConnection::new(permit);
    let track = Arc::new(ConnTrack::new());
    let service = {
        let track = track.clone();
        hyper::service::service_fn(move |req: http::Request<Incoming>| {
            let in_flight = track.begin();
            let flag = BodyIdleFlag::default();
            let mut req = req.map(|b| Body::new(IdleBody::new(b, limits.body_idle_timeout, flag.clone())));
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(flag);
            let router = router.clone();
            async move {
                let res = router.oneshot(req).await.unwrap_or_else(|e: Infallible| match e {});
                Ok::<_, Infallible>(res.map(|inner| TrackedBody { inner, _in_flight: in_flight }))
            }
        })
    };
    let io = TokioIo::new(GuardedIo::new(tcp, limits.body_idle_timeout));
    // With upgrades: /graphql/ws turns its connection into a WebSocket, which then lives on in
    // its own task (with its own idle bounds, see graphql::ws) and leaves this one.
    let conn = watcher.watch(builder.serve_connection_with_upgrades(io, service));
    tokio::select! {
        r = conn => {
            if let Err(e) = r {
                if e.downcast_ref::<hyper::Error>().is_some_and(|e| e.is_timeout()) {
                    counter!("raven_http_timeouts_total", "kind" => "header").increment(1);
                }
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        }
        _ = track.idle_for(limits.header_timeout) => {
            counter!("raven_http_timeouts_total", "kind" => "idle").increment(1);
            tracing::debug!(%peer, "closing a connection idle for HTTP_HEADER_TIMEOUT_SECS");
        }
    }
}

/// One open client connection: holds its slot, and counts itself in the gauge.
struct OpenConnection(#[allow(dead_code)] OwnedSemaphorePermit);

impl OpenConnection {
    fn new(permit: OwnedSemaphorePermit) -> OpenConnection {
        gauge!("raven_http_connections_open").increment(1.0);
        OpenConnection(permit)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        gauge!("raven_http_connections_open").decrement(1.0);
    }
}

/// Errors of one connection that never got to us: retry at once.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    ) || matches!(e.raw_os_error(), Some(libc::EPROTO) | Some(libc::EPERM))
}

/// 10 ms, doubling up to 1 s, back to 10 ms after a successful accept.
#[derive(Debug, Default)]
struct Backoff(Option<Duration>);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    fn next_delay(&mut self) -> Duration {
        let d = self.0.map_or(Backoff::FIRST, |d| (d * 2).min(Backoff::MAX));
        self.0 = Some(d);
        d
    }

    fn reset(&mut self) {
        self.0 = None;
    }
}

/// Requests in flight on one connection and when the last one started or ended.
struct ConnTrack {
    state: Mutex<(usize, Instant)>,
    idle: Notify,
}

impl ConnTrack {
    fn new() -> ConnTrack {
        ConnTrack { state: Mutex::new((0, Instant::now())), idle: Notify::new() }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.0 += 1;
        s.1 = Instant::now();
        InFlight(self.clone())
    }

    /// Resolves once the connection has had no request in flight for `timeout`: since it was
    /// accepted, or since its last response was sent.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let (in_flight, since) = *self.state.lock().unwrap_or_else(|p| p.into_inner());
            if in_flight > 0 {
                self.idle.notified().await;
                continue;
            }
            let deadline = since + timeout;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// One request in flight, until its response body is dropped (sent, or the connection closed).
struct InFlight(Arc<ConnTrack>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        s.0 -= 1;
        s.1 = Instant::now();
        if s.0 == 0 {
            self.0.idle.notify_one();
        }
    }
}

/// A response body that keeps its request counted as in flight until it is done.
struct TrackedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Set when a request's body timed out, so that [`body_timeout_as_408`] answers 408.
#[derive(Debug, Clone, Default)]
pub struct BodyIdleFlag(Arc<AtomicBool>);

impl BodyIdleFlag {
    pub fn fired(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The error a timed-out request body yields to the handler reading it.
#[derive(Debug)]
pub struct BodyIdleTimeout(Duration);

impl std::fmt::Display for BodyIdleTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the request body sent nothing for {} s", self.0.as_secs())
    }
}

impl std::error::Error for BodyIdleTimeout {}

/// A request body that fails once it has sent nothing for `timeout` while someone waits on it. The
/// clock runs only while the handler is waiting for bytes, so a handler busy with earlier bytes
/// (hashing, a database write) does not count against the client. Once failed it keeps failing: a
/// truncated body must never look complete.
pub struct IdleBody {
    inner: Incoming,
    timeout: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    waiting: bool,
    flag: BodyIdleFlag,
}

impl IdleBody {
    fn new(inner: Incoming, timeout: Duration, flag: BodyIdleFlag) -> IdleBody {
        IdleBody { inner, timeout, sleep: None, waiting: false, flag }
    }
}

impl HttpBody for IdleBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.flag.fired() {
            return Poll::Ready(Some(Err(Box::new(BodyIdleTimeout(this.timeout)))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.waiting = false;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                if !this.waiting {
                    this.waiting = true;
                    let deadline = Instant::now() + this.timeout;
                    match &mut this.sleep {
                        Some(s) => s.as_mut().reset(deadline),
                        None => this.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
                    }
                }
                let sleep = this.sleep.as_mut().expect("armed above");
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.flag.0.store(true, Ordering::Relaxed);
                counter!("raven_http_timeouts_total", "kind" => "body").increment(1);
                tracing::info!(timeout_secs = this.timeout.as_secs(), "request body idle timeout");
                Poll::Ready(Some(Err(Box::new(BodyIdleTimeout(this.timeout)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        !self.flag.fired() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Middleware: a request whose body timed out is answered 408 (REST error body, or a GraphQL error
/// with code `REQUEST_TIMEOUT` on /graphql) with `Connection: close`, whatever the handler made of
/// the failed read. Inside the trace and metrics layers, so the logs and metrics see the 408.
pub async fn body_timeout_as_408(req: Request, next: Next) -> Response {
    let Some(flag) = req.extensions().get::<BodyIdleFlag>().cloned() else {
        return next.run(req).await;
    };
    let graphql = req.uri().path() == "/graphql";
    let http1 = req.version() < Version::HTTP_2;
    let res = next.run(req).await;
    if !flag.fired() {
        return res;
    }
    let message = "the request body stalled: nothing arrived within HTTP_BODY_IDLE_TIMEOUT_SECS";
    let body = if graphql {
        serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": "REQUEST_TIMEOUT" } }] })
    } else {
        serde_json::json!({ "error": "request_timeout", "message": message, "details": {} })
    };
    let mut res = (StatusCode::REQUEST_TIMEOUT, axum::Json(body)).into_response();
    if http1 {
        res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

/// The client socket, closed with an error when a write has made no progress for `stall_timeout`:
/// a client that stops reading its response (full socket buffers) cannot hold the connection, the
/// handler and any open tarball forever.
struct GuardedIo {
    inner: TcpStream,
    stall_timeout: Duration,
    stall: Option<Pin<Box<Sleep>>>,
    stalled: bool,
}

impl GuardedIo {
    fn new(inner: TcpStream, stall_timeout: Duration) -> GuardedIo {
        GuardedIo { inner, stall_timeout, stall: None, stalled: false }
    }

    /// Called when a write returned Pending: starts the stall clock if it is not running, and
    /// fails once it has run out.
    fn poll_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if !self.stalled {
            self.stalled = true;
            let deadline = Instant::now() + self.stall_timeout;
            match &mut self.stall {
                Some(s) => s.as_mut().reset(deadline),
                None => self.stall = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        let sleep = self.stall.as_mut().expect("armed above");
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        counter!("raven_http_timeouts_total", "kind" => "write").increment(1);
        tracing::info!(timeout_secs = self.stall_timeout.as_secs(), "client stopped reading its response; closing");
        Poll::Ready(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client read nothing within HTTP_BODY_IDLE_TIMEOUT_SECS",
        ))
    }

    fn guard<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match r {
            Poll::Pending => match self.poll_stall(cx) {
                Poll::Ready(e) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
            ready => {
                self.stalled = false;
                ready
            }
        }
    }
}

impl AsyncRead for GuardedIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for GuardedIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.guard(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.guard(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.guard(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.guard(cx, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_the_open_file_limit() {
        // Unknown or unlimited: as configured.
        assert_eq!(connection_cap(1024, None, 16), 1024);
        // Plenty of descriptors: as configured.
        assert_eq!(connection_cap(1024, Some(1 << 20), 16), 1024);
        // 1024 soft: 64 reserved, 48 for 16 database connections, two per client.
        assert_eq!(connection_cap(1024, Some(1024), 16), (1024 - 64 - 48) / 2);
        assert_eq!(connection_cap(100, Some(1024), 16), 100);
        // Never zero, even when the limit is absurdly low.
        assert_eq!(connection_cap(1024, Some(10), 16), 1);
    }

    #[test]
    fn backoff_grows_to_a_second_and_resets() {
        let mut b = Backoff::default();
        let seq: Vec<u64> = (0..9).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(seq, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(10));
    }
}
