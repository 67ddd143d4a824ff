//! GraphQL subscriptions over WebSocket at `GET /graphql/ws` (protocol `graphql-transport-ws`;
//! the older `graphql-ws` is accepted too), with async-graphql's protocol machine and our own
//! bounds around it:
//!
//! - subscriptions only: a query or mutation sent over the socket is refused (they go to
//!   `POST /graphql`); every document meets the same limits as at `/graphql` ([`limits`], then the
//!   schema's depth and complexity limits);
//! - messages and frames of at most [`MAX_MESSAGE_BYTES`] (64 KiB); a larger one closes the socket;
//! - subscriptions per client address (`SUBSCRIPTIONS_PER_IP`) and in total (`SUBSCRIPTIONS_MAX`);
//!   an upgrade from an address (or to an instance) already at its cap is refused with 429 (503);
//! - idle sockets closed: no `connection_init` within [`INIT_TIMEOUT`] (close 4408, as the protocol
//!   says), no subscription for `WS_IDLE_TIMEOUT_SECS`, or nothing heard from the client for that
//!   long (it is pinged every half of it, and WebSocket clients answer pings on their own).
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::http::{WebSocketProtocols, WsMessage, ALL_WEBSOCKET_PROTOCOLS};
use async_graphql::parser::types::OperationType;
use async_graphql::{Data, Executor, Request, Response, ServerError};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response as HttpResponse};
use futures::stream::BoxStream;
use futures::{SinkExt, StreamExt};
use tokio::time::Instant;

use crate::config::Config;
use crate::graphql::http::GraphqlEndpoint;
use crate::graphql::{limits, RegistrySchema};
use crate::ratelimit::ClientIp;
use crate::state::AppState;

/// Largest message (and frame) a client may send.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Time a client has to send `connection_init` after the upgrade.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The subscriptions held, per client address and in total (an extension of the router).
pub struct Subscriptions {
    per_ip: usize,
    max: usize,
    held: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// Why a subscription (or an upgrade) is refused: `code` is its `extensions.code`.
struct Full {
    code: &'static str,
    message: String,
}

impl Subscriptions {
    pub fn from_config(c: &Config) -> Arc<Subscriptions> {
        Arc::new(Subscriptions {
            per_ip: c.subscriptions_per_ip as usize,
            max: c.subscriptions_max as usize,
            held: Default::default(),
        })
    }

    fn full(&self, total: usize, of_ip: usize) -> Option<Full> {
        if of_ip >= self.per_ip {
            return Some(Full {
                code: "RATE_LIMITED",
                message: format!(
                    "this client address already holds {} subscriptions (SUBSCRIPTIONS_PER_IP); end one first",
                    self.per_ip
                ),
            });
        }
        if total >= self.max {
            return Some(Full {
                code: "SERVICE_UNAVAILABLE",
                message: "this server holds as many subscriptions as it may (SUBSCRIPTIONS_MAX); retry later \
                          or on another instance"
                    .into(),
            });
        }
        None
    }

    fn check(&self, ip: IpAddr) -> Option<Full> {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        self.full(held.0, held.1.get(&ip).copied().unwrap_or(0))
    }

    fn acquire(self: &Arc<Self>, ip: IpAddr) -> Result<Held, Full> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(full) = self.full(held.0, held.1.get(&ip).copied().unwrap_or(0)) {
            return Err(full);
        }
        held.0 += 1;
        *held.1.entry(ip).or_default() += 1;
        metrics::gauge!("raven_graphql_subscriptions").set(held.0 as f64);
        Ok(Held { subscriptions: self.clone(), ip })
    }
}

/// One subscription's place, given back when its stream is dropped.
struct Held {
    subscriptions: Arc<Subscriptions>,
    ip: IpAddr,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = self.subscriptions.held.lock().unwrap_or_else(|e| e.into_inner());
        held.0 -= 1;
        if let Some(n) = held.1.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                held.1.remove(&self.ip);
            }
        }
        metrics::gauge!("raven_graphql_subscriptions").set(held.0 as f64);
    }
}

fn refused(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (status, axum::Json(body)).into_response()
}

/// `GET /graphql/ws`: the WebSocket upgrade.
pub async fn upgrade(
    State(state): State<AppState>,
    axum::Extension(endpoint): axum::Extension<GraphqlEndpoint>,
    axum::Extension(subscriptions): axum::Extension<Arc<Subscriptions>>,
    client: Option<axum::Extension<ClientIp>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> HttpResponse {
    let Ok(ws) = ws else {
        return refused(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "/graphql/ws serves GraphQL subscriptions over WebSocket (graphql-transport-ws); queries and \
             mutations go to POST /graphql",
        );
    };
    let ws =
        ws.protocols(ALL_WEBSOCKET_PROTOCOLS).max_message_size(MAX_MESSAGE_BYTES).max_frame_size(MAX_MESSAGE_BYTES);
    let Some(protocol) =
        ws.selected_protocol().and_then(|p| p.to_str().ok()).and_then(|p| WebSocketProtocols::from_str(p).ok())
    else {
        return refused(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "the Sec-WebSocket-Protocol header must offer graphql-transport-ws (or graphql-ws)",
        );
    };
    let ip = client.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0 .0);
    if let Some(full) = subscriptions.check(ip) {
        let status =
            if full.code == "RATE_LIMITED" { StatusCode::TOO_MANY_REQUESTS } else { StatusCode::SERVICE_UNAVAILABLE };
        return refused(status, full.code, &full.message);
    }
    let idle = Duration::from_secs(state.config.ws_idle_timeout_secs);
    let executor = SubscriptionsOnly {
        schema: endpoint.schema,
        state,
        subscriptions,
        ip,
        activity: Arc::new(Activity { active: AtomicUsize::new(0), changed: Mutex::new(Instant::now()) }),
    };
    ws.on_upgrade(move |socket| serve(socket, executor, protocol, idle))
}

/// The subscriptions of one socket: how many run, and since when that number last changed.
struct Activity {
    active: AtomicUsize,
    changed: Mutex<Instant>,
}

impl Activity {
    fn change(&self, by: isize) {
        if by > 0 {
            self.active.fetch_add(1, Ordering::SeqCst);
        } else {
            self.active.fetch_sub(1, Ordering::SeqCst);
        }
        *self.changed.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// Since when the socket has had no subscription, if it has none.
    fn idle_since(&self) -> Option<Instant> {
        let changed = *self.changed.lock().unwrap_or_else(|e| e.into_inner());
        (self.active.load(Ordering::SeqCst) == 0).then_some(changed)
    }
}

/// A running subscription: holds its place in the caps and the socket's activity.
struct Running {
    _held: Held,
    activity: Arc<Activity>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.activity.change(-1);
    }
}

/// The executor the protocol machine runs documents with: subscriptions only, within the limits.
#[derive(Clone)]
struct SubscriptionsOnly {
    schema: RegistrySchema,
    state: AppState,
    subscriptions: Arc<Subscriptions>,
    ip: IpAddr,
    activity: Arc<Activity>,
}

fn error_response(code: &str, message: impl Into<String>) -> Response {
    let mut e = ServerError::new(message, None);
    e.extensions.get_or_insert_with(Default::default).set("code", code);
    Response::from_errors(vec![e])
}

fn once(response: Response) -> BoxStream<'static, Response> {
    futures::stream::once(async move { response }).boxed()
}

/// The type of the operation `request` selects, when its document parses and names one.
fn operation_type(request: &mut Request) -> Option<OperationType> {
    let name = request.operation_name.clone();
    let doc = request.parsed_query().ok()?;
    let mut ops = doc.operations.iter();
    let chosen = match &name {
        Some(name) => ops.find(|(n, _)| n.map(|n| n.as_str()) == Some(name.as_str())),
        None => ops.next(),
    };
    chosen.map(|(_, op)| op.node.ty)
}

impl Executor for SubscriptionsOnly {
    /// Not reached (the WebSocket protocol machine only starts streams); refused all the same.
    async fn execute(&self, _request: Request) -> Response {
        error_response("BAD_REQUEST", "this WebSocket carries subscriptions only")
    }

    fn execute_stream(&self, mut request: Request, session_data: Option<Arc<Data>>) -> BoxStream<'static, Response> {
        let limits = limits::DocumentLimits::from_config(&self.state.config);
        let checked = limits::check_source(&request.query, &limits).and_then(|()| match request.parsed_query() {
            Ok(doc) => limits::check_document(doc, &limits),
            Err(_) => Ok(()),
        });
        if let Err(refusal) = checked {
            crate::metrics::graphql_refused(refusal.reason());
            return once(error_response(refusal.code, refusal.message));
        }
        match operation_type(&mut request) {
            Some(OperationType::Subscription) => {}
            // A document that does not parse, or names no operation, gets execution's own error.
            None => {}
            Some(_) => {
                return once(error_response(
                    "BAD_REQUEST",
                    "this WebSocket carries subscriptions only: send queries and mutations to POST /graphql",
                ))
            }
        }
        let held = match self.subscriptions.acquire(self.ip) {
            Ok(held) => held,
            Err(full) => return once(error_response(full.code, full.message)),
        };
        self.activity.change(1);
        let running = Running { _held: held, activity: self.activity.clone() };
        let stream = self
            .schema
            .execute_stream_with_session_data(request.data(ClientIp(self.ip)), session_data.unwrap_or_default());
        // The place is held for as long as the stream lives (the protocol machine drops it on
        // `complete`, at its end, or with the socket).
        stream
            .map(move |response| {
                let _running = &running;
                response
            })
            .boxed()
    }
}

fn close(code: u16, reason: impl Into<String>) -> Message {
    let reason: String = reason.into();
    Message::Close(Some(CloseFrame { code, reason: reason.into() }))
}

/// Runs one socket until it closes (see the module doc for when the server closes it).
async fn serve(socket: WebSocket, executor: SubscriptionsOnly, protocol: WebSocketProtocols, idle: Duration) {
    let opened = Instant::now();
    let activity = executor.activity.clone();
    let (mut sink, source) = socket.split();
    let heard = Arc::new(Mutex::new(opened));
    // Why the client's side ended, when it was an error (a message over the cap, a broken frame).
    let failed: Arc<Mutex<Option<(u16, String)>>> = Default::default();
    let input = {
        let (heard, failed) = (heard.clone(), failed.clone());
        source
            .take_while(move |r| {
                if let Err(e) = r {
                    let code = if e.to_string().contains("too long") || e.to_string().contains("too big") {
                        1009
                    } else {
                        1002
                    };
                    *failed.lock().unwrap_or_else(|e| e.into_inner()) = Some((code, e.to_string()));
                }
                futures::future::ready(r.is_ok())
            })
            .filter_map(move |r| {
                *heard.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
                futures::future::ready(match r {
                    Ok(m @ (Message::Text(_) | Message::Binary(_))) => Some(m.into_data()),
                    _ => None,
                })
            })
    };
    let initialised = Arc::new(AtomicBool::new(false));
    let on_init = {
        let initialised = initialised.clone();
        move |_payload: serde_json::Value| async move {
            initialised.store(true, Ordering::SeqCst);
            Ok::<_, async_graphql::Error>(Data::default())
        }
    };
    let machine = async_graphql::http::WebSocket::new(executor, input, protocol).on_connection_init(on_init);
    let mut machine = std::pin::pin!(machine);
    let ping_every = idle / 2;
    let mut pinged = opened;
    loop {
        let now = Instant::now();
        let last_heard = *heard.lock().unwrap_or_else(|e| e.into_inner());
        let mut deadlines = vec![last_heard + idle, pinged + ping_every];
        let goodbye = if !initialised.load(Ordering::SeqCst) {
            deadlines.push(opened + INIT_TIMEOUT);
            (now >= opened + INIT_TIMEOUT).then(|| close(4408, "Connection initialisation timeout"))
        } else {
            None
        };
        let goodbye = goodbye.or_else(|| {
            let since = activity.idle_since()?;
            deadlines.push(since + idle);
            (now >= since + idle).then(|| close(1000, format!("no subscription for {} s", idle.as_secs())))
        });
        let goodbye = goodbye.or_else(|| {
            (now >= last_heard + idle)
                .then(|| close(1001, format!("nothing heard from the client for {} s", idle.as_secs())))
        });
        if let Some(goodbye) = goodbye {
            let _ = sink.send(goodbye).await;
            break;
        }
        if now >= pinged + ping_every {
            pinged = now;
            if sink.send(Message::Ping(bytes::Bytes::from_static(b"raven"))).await.is_err() {
                break;
            }
            continue;
        }
        let next = deadlines.into_iter().filter(|d| *d > now).min().unwrap_or(now + ping_every);
        tokio::select! {
            out = machine.next() => match out {
                Some(WsMessage::Text(text)) => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                Some(WsMessage::Close(code, reason)) => {
                    let _ = sink.send(close(code, reason)).await;
                    break;
                }
                None => {
                    let ended = failed.lock().unwrap_or_else(|e| e.into_inner()).take();
                    if let Some((code, reason)) = ended {
                        tracing::debug!(code, reason = %reason, "closing a WebSocket after a client error");
                        let _ = sink.send(close(code, reason)).await;
                    }
                    break;
                }
            },
            _ = tokio::time::sleep_until(next) => {}
        }
    }
    let _ = sink.close().await;
}
