//! Reading the rest of an upload that was answered early.
//!
//! A route may answer before it has read the whole request body: a 413 from the Content-Length
//! alone or from the stream passing the limit, a 401 before the first byte of a tarball. hyper then
//! stops reading and closes the connection after the response, while a client that sends its whole
//! body before reading (`raven pkg publish`, curl) is still writing: it sees the connection reset
//! ("channel closed") instead of the answer. So the upload routes keep hold of the body, and once
//! the response is ready, read and discard what the client still sends, within a budget of bytes
//! (the route's limit plus MAX_TARBALL_BYTES) and of time (10 s), before the response goes out. A
//! 413 then closes the connection; a client past either budget has its connection closed without
//! more reading. A client that asked `Expect: 100-continue` and was never told to continue has
//! sent no body, and nothing is read.
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::Frame;

/// How long the rest of a body may take to arrive.
pub const MAX_TIME: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Body bytes read in all, by the route and the drain together.
    pub max_body_bytes: u64,
    pub max_time: Duration,
}

struct Inner {
    body: Mutex<Option<Body>>,
    polled: AtomicBool,
    read: AtomicU64,
}

/// The request body as the route sees it: the real body stays in `Inner`, so it outlives the
/// route dropping its handle, and every data byte is counted.
struct Shared(Arc<Inner>);

impl HttpBody for Shared {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let inner = &self.0;
        inner.polled.store(true, Ordering::Relaxed);
        let mut guard = inner.body.lock().unwrap_or_else(|e| e.into_inner());
        let Some(body) = guard.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                inner.read.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.0.body.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0.body.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|b| b.size_hint()).unwrap_or_default()
    }
}

/// What became of the unread rest of a body.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Read to its end: the connection can carry on.
    Finished,
    /// Past the byte or time budget, or broken: the connection must close.
    GaveUp,
}

pub async fn middleware(State(budget): State<Budget>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let expects_continue =
        parts.headers.get(header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let declared =
        parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let inner =
        Arc::new(Inner { body: Mutex::new(Some(body)), polled: AtomicBool::new(false), read: AtomicU64::new(0) });
    let mut res = next.run(Request::from_parts(parts, Body::new(Shared(Arc::clone(&inner))))).await;

    let body = inner.body.lock().unwrap_or_else(|e| e.into_inner()).take();
    let Some(body) = body else {
        return res;
    };
    if expects_continue && !inner.polled.load(Ordering::Relaxed) {
        // hyper sends "100 Continue" on the first read only: the client has sent nothing.
        return res;
    }
    let outcome = if body.is_end_stream() {
        Outcome::Finished
    } else if declared.is_some_and(|len| len > budget.max_body_bytes) {
        // It says it will send more than will ever be read: do not start.
        Outcome::GaveUp
    } else {
        let already = inner.read.load(Ordering::Relaxed);
        let outcome = drain(body, budget.max_body_bytes.saturating_sub(already), budget.max_time).await;
        if outcome == Outcome::GaveUp {
            tracing::info!(status = %res.status(), "closing the connection: the client sent more than the drain budget");
        }
        outcome
    };
    if outcome == Outcome::GaveUp || res.status() == StatusCode::PAYLOAD_TOO_LARGE {
        res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

/// Reads `body` to its end and discards it, giving up past `max_bytes` or `max_time`.
pub async fn drain(mut body: Body, max_bytes: u64, max_time: Duration) -> Outcome {
    use http_body_util::BodyExt;
    let mut read = 0u64;
    let reading = async {
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return Outcome::GaveUp;
            };
            if let Some(data) = frame.data_ref() {
                read += data.len() as u64;
                if read > max_bytes {
                    return Outcome::GaveUp;
                }
            }
        }
        Outcome::Finished
    };
    tokio::time::timeout(max_time, reading).await.unwrap_or(Outcome::GaveUp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_is_read_to_its_end_within_the_byte_budget() {
        assert_eq!(drain(Body::empty(), 0, MAX_TIME).await, Outcome::Finished);
        assert_eq!(drain(Body::from(vec![0u8; 1024]), 1024, MAX_TIME).await, Outcome::Finished);
        assert_eq!(drain(Body::from(vec![0u8; 1025]), 1024, MAX_TIME).await, Outcome::GaveUp);
        let chunks = futures::stream::iter((0..4).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![1u8; 300]))));
        assert_eq!(drain(Body::from_stream(chunks), 1024, MAX_TIME).await, Outcome::GaveUp);
        let broken = futures::stream::iter([Err::<Bytes, _>(std::io::Error::other("reset"))]);
        assert_eq!(drain(Body::from_stream(broken), 1024, MAX_TIME).await, Outcome::GaveUp);
    }

    /// A client that stops sending is not waited for past the time budget (a stream that never
    /// yields can only end by the timeout).
    #[tokio::test]
    async fn a_stalled_body_is_given_up() {
        let stalled = Body::from_stream(futures::stream::pending::<Result<Bytes, std::io::Error>>());
        assert_eq!(drain(stalled, 1024, Duration::from_millis(20)).await, Outcome::GaveUp);
    }
}
