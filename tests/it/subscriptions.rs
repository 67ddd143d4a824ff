//! Event subscriptions over WebSocket at /graphql/ws (graphql-transport-ws): live events, resuming
//! with `after` without gaps, two instances sharing a database, and the socket's bounds
//! (subscriptions only, document limits, message size, caps per address and in total, idle
//! sockets, replay length).
use crate::events::{seq, summary};
use crate::testkit as common;

use std::time::{Duration, Instant};

use common::api::*;
use common::TestApp;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const SUBSCRIBE: &str = "subscription($after: String, $package: String) {
  events(after: $after, package: $package) { cursor kind package version at }
}";

/// The guard on every wait: generous, so a slow machine never fails a test; never a measurement.
const GUARD: Duration = Duration::from_secs(10);

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Ws {
    socket: Socket,
}

/// Opens /graphql/ws with graphql-transport-ws; the HTTP status when the upgrade is refused.
async fn open(app: &TestApp) -> Result<Ws, u16> {
    let mut req = format!("ws://{}/graphql/ws", app.addr).into_client_request().unwrap();
    req.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Ok((socket, res)) => {
            assert_eq!(res.headers()["sec-websocket-protocol"], "graphql-transport-ws");
            Ok(Ws { socket })
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
        Err(e) => panic!("connecting: {e}"),
    }
}

/// Opens and initialises a socket.
async fn connect(app: &TestApp) -> Ws {
    let mut ws = open(app).await.expect("the upgrade is accepted");
    ws.send(json!({ "type": "connection_init" })).await;
    assert_eq!(ws.recv().await["type"], "connection_ack");
    ws
}

impl Ws {
    async fn send(&mut self, msg: Value) {
        self.socket.send(Message::text(msg.to_string())).await.unwrap();
    }

    /// The next protocol message (pings are answered by the client library on its own).
    async fn recv(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(GUARD, self.socket.next())
                .await
                .expect("a message within the guard")
                .expect("the socket is open")
                .expect("a valid frame");
            match msg {
                Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
                Message::Close(frame) => panic!("closed: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// Waits for the server to close the socket; its close code.
    async fn closed(&mut self) -> Option<u16> {
        loop {
            match tokio::time::timeout(GUARD, self.socket.next()).await.expect("closed within the guard") {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } }))
            .await;
    }

    async fn events(&mut self, id: &str, after: Option<&str>, package: Option<&str>) {
        self.subscribe(id, SUBSCRIBE, json!({ "after": after, "package": package })).await;
    }

    /// The next event of subscription `id` (asserting that nothing else arrives first).
    async fn event(&mut self, id: &str) -> Value {
        let msg = self.recv().await;
        assert_eq!(msg["type"], "next", "{msg}");
        assert_eq!(msg["id"], id, "{msg}");
        assert_eq!(msg["payload"]["errors"], Value::Null, "{msg}");
        msg["payload"]["data"]["events"].clone()
    }

    /// The next event of subscription `id`, if one arrives within `wait` (a poll, not a check).
    async fn try_event(&mut self, id: &str, wait: Duration) -> Option<Value> {
        let msg = loop {
            match tokio::time::timeout(wait, self.socket.next()).await {
                Err(_) => return None,
                Ok(Some(Ok(Message::Text(text)))) => break serde_json::from_str::<Value>(text.as_str()).unwrap(),
                Ok(Some(Ok(Message::Close(frame)))) => panic!("closed: {frame:?}"),
                Ok(Some(Ok(_))) => continue,
                Ok(other) => panic!("the socket failed: {other:?}"),
            }
        };
        assert_eq!((msg["type"].as_str(), msg["id"].as_str()), (Some("next"), Some(id)), "{msg}");
        Some(msg["payload"]["data"]["events"].clone())
    }

    /// The error that ends subscription `id` (its `next`, then `complete`).
    async fn refused(&mut self, id: &str) -> Value {
        let msg = self.recv().await;
        assert_eq!(msg["id"], id, "{msg}");
        let error = msg["payload"]["errors"][0].clone();
        assert!(error.is_object(), "an error: {msg}");
        assert_eq!(self.recv().await, json!({ "type": "complete", "id": id }));
        error
    }
}

/// The cursor before every event (opaque to clients; the tests know its form).
fn start_cursor() -> String {
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, "event:0")
}

/// The REST feed after `after` (all of it).
async fn feed_after(app: &TestApp, after: Option<&str>) -> Vec<Value> {
    let path = match after {
        Some(a) => format!("/api/v1/events?after={a}"),
        None => "/api/v1/events".to_owned(),
    };
    get_ok(app, &path).await["events"].as_array().unwrap().clone()
}

fn same_events(got: &[Value], feed: &[Value]) {
    let cursors = |v: &[Value]| v.iter().map(|e| e["cursor"].clone()).collect::<Vec<_>>();
    assert_eq!(cursors(got), cursors(feed), "got {got:?}\nfeed {feed:?}");
    assert_eq!(summary(got), summary(feed));
}

#[tokio::test]
async fn a_subscriber_gets_live_events_and_a_reconnect_with_after_misses_nothing() {
    let app = common::spawn().await;
    let token = register(&app, "streamer").await;
    publish_package(&app, &token, "before", "1.0.0").await;
    let tail = feed_after(&app, None).await[1]["cursor"].as_str().unwrap().to_owned();

    // After the newest event: nothing to replay, then live events. A second subscription on the
    // same socket, filtered to one package.
    let mut ws = connect(&app).await;
    ws.events("1", Some(&tail), None).await;
    ws.events("2", Some(&tail), Some("live")).await;
    publish_package(&app, &token, "other", "1.0.0").await;
    publish_package(&app, &token, "live", "1.0.0").await;
    let mut got1 = Vec::new();
    let mut got2 = Vec::new();
    while got1.len() < 4 || got2.len() < 2 {
        let msg = ws.recv().await;
        assert_eq!(msg["type"], "next", "{msg}");
        let e = msg["payload"]["data"]["events"].clone();
        if msg["id"] == "1" {
            got1.push(e)
        } else {
            got2.push(e)
        }
    }
    let feed = feed_after(&app, Some(&tail)).await;
    same_events(&got1, &feed);
    same_events(&got2, &feed[2..]);

    // The client goes away; meanwhile more happens.
    let seen = got1.last().unwrap()["cursor"].as_str().unwrap().to_owned();
    drop(ws);
    publish_package(&app, &token, "live", "1.1.0").await;
    yank_ok(&app, &token, "live", "1.0.0").await;
    publish_package(&app, &token, "more", "1.0.0").await;

    // Back with `after`: what it missed (replayed), then live events, each once, in order.
    let mut ws = connect(&app).await;
    ws.events("r", Some(&seen), None).await;
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(ws.event("r").await);
    }
    yank_ok(&app, &token, "live", "1.1.0").await;
    got.push(ws.event("r").await);
    same_events(&got, &feed_after(&app, Some(&seen)).await);
    assert!(got.windows(2).all(|w| seq(&w[0]["cursor"]) < seq(&w[1]["cursor"])));

    // `complete` ends a subscription; the socket stays usable.
    ws.send(json!({ "id": "r", "type": "complete" })).await;
    assert_eq!(ws.recv().await, json!({ "type": "complete", "id": "r" }));
    ws.events("p", Some(&seen), Some("more")).await;
    let e = ws.event("p").await;
    assert_eq!((e["kind"].as_str(), e["package"].as_str()), (Some("PACKAGE_CREATED"), Some("more")));
}

/// Publishes versions 1.0.0, 1.0.1 ... of `name` on `on` until subscription `id` delivers an
/// event (a subscription without `after` only sees writes that commit after it started, and the
/// protocol does not say when that is); returns the events of that publish and the time it took.
async fn publish_until_live(on: &TestApp, token: &str, ws: &mut Ws, id: &str, name: &str) -> (Vec<Value>, Duration) {
    for i in 0..20 {
        let start = Instant::now();
        publish_package(on, token, name, &format!("1.0.{i}")).await;
        if let Some(e) = ws.try_event(id, Duration::from_secs(2)).await {
            let took = start.elapsed();
            let mut got = vec![e];
            if got[0]["kind"] == "PACKAGE_CREATED" {
                got.push(ws.event(id).await);
            }
            return (got, took);
        }
    }
    panic!("no event reached the subscriber");
}

#[tokio::test]
async fn without_after_only_live_events_arrive() {
    let app = common::spawn().await;
    let token = register(&app, "liveonly").await;
    publish_package(&app, &token, "old", "1.0.0").await;
    let mut ws = connect(&app).await;
    ws.events("1", None, None).await;
    let (got, _) = publish_until_live(&app, &token, &mut ws, "1", "fresh").await;
    assert_eq!(got.last().unwrap()["package"], "fresh", "{got:?}");
    let feed = feed_after(&app, None).await;
    let at = feed.iter().position(|e| e["cursor"] == got[0]["cursor"]).unwrap();
    assert!(at >= 2, "nothing of `old`: {got:?}");
    same_events(&got, &feed[at..]);
}

#[tokio::test]
async fn an_event_written_on_one_instance_reaches_a_subscriber_on_another() {
    // Two instances on one database: PostgreSQL only (one process serves a SQLite file).
    if !common::needs_postgres("subscriptions::an_event_written_on_one_instance_reaches_a_subscriber_on_another") {
        return;
    }
    let a = common::spawn().await;
    let b = common::start(a.config.clone(), None, tempfile::tempdir().unwrap()).await;
    let token = register(&a, "twin").await;
    let mut ws = connect(&b).await;
    ws.events("1", None, None).await;
    let (mut got, first) = publish_until_live(&a, &token, &mut ws, "1", "twinpkg").await;
    // Now that it runs, each publish on A reaches B; the delay is measured, not asserted
    // (EVENTS_POLL_MS bounds it; see README).
    let mut delays = vec![first];
    for i in 0..5 {
        let start = Instant::now();
        publish_package(&a, &token, "twinpkg", &format!("2.0.{i}")).await;
        got.push(ws.event("1").await);
        delays.push(start.elapsed());
    }
    eprintln!("publish through instance A -> event at a subscriber on instance B: {delays:?}");
    let feed = feed_after(&a, None).await;
    same_events(&got, &feed[feed.len() - got.len()..]);
    assert_eq!(got.last().unwrap()["version"], "2.0.4");
}

#[tokio::test]
async fn only_subscriptions_within_the_document_limits_run_over_the_socket() {
    let app = common::spawn_with(|c| c.graphql_max_fields = 10).await;
    let mut ws = connect(&app).await;
    ws.subscribe("q", "{ stats { totalPackages } }", Value::Null).await;
    let e = ws.refused("q").await;
    assert_eq!(e["extensions"]["code"], "BAD_REQUEST", "{e}");
    assert!(e["message"].as_str().unwrap().contains("POST /graphql"), "{e}");
    ws.subscribe("m", "mutation { login(email: \"a@b.cd\", password: \"12345678\") { token } }", Value::Null).await;
    assert_eq!(ws.refused("m").await["extensions"]["code"], "BAD_REQUEST");
    let wide = format!("subscription {{ events {{ {} }} }}", vec!["cursor"; 20].join(" "));
    ws.subscribe("w", &wide, Value::Null).await;
    assert_eq!(ws.refused("w").await["extensions"]["code"], "QUERY_TOO_COMPLEX");
    ws.subscribe("b", "subscription { events(after: \"nope\") { cursor } }", Value::Null).await;
    let e = ws.refused("b").await;
    assert_eq!(
        (e["extensions"]["code"].as_str(), e["extensions"]["field"].as_str()),
        (Some("BAD_USER_INPUT"), Some("after"))
    );

    // A message over 64 KiB closes the socket (1009: message too big).
    let big = json!({ "id": "x", "type": "subscribe", "payload": { "query": "x".repeat(70 * 1024) } });
    ws.socket.send(Message::text(big.to_string())).await.unwrap();
    assert_eq!(ws.closed().await, Some(1009));

    // A plain GET is not an upgrade.
    let body = expect_graphql_error(get(&app, "/graphql/ws").await, 400).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST");
}

async fn expect_graphql_error(res: reqwest::Response, status: u16) -> Value {
    assert_eq!(res.status().as_u16(), status);
    res.json().await.unwrap()
}

#[tokio::test]
async fn subscriptions_are_capped_per_address_and_in_total() {
    let app = common::spawn_with(|c| c.subscriptions_per_ip = 2).await;
    // From the start of the (empty) feed: every event, so none is missed by starting late.
    let start = start_cursor();
    let mut ws = connect(&app).await;
    ws.events("1", Some(&start), None).await;
    ws.events("2", Some(&start), None).await;
    ws.events("3", Some(&start), None).await;
    let e = ws.refused("3").await;
    assert_eq!(e["extensions"]["code"], "RATE_LIMITED", "{e}");
    assert!(e["message"].as_str().unwrap().contains("SUBSCRIPTIONS_PER_IP"), "{e}");
    // A new socket from the same address is refused at the upgrade.
    assert_eq!(open(&app).await.err(), Some(429));
    // Ending one frees its place.
    ws.send(json!({ "id": "1", "type": "complete" })).await;
    assert_eq!(ws.recv().await, json!({ "type": "complete", "id": "1" }));
    ws.events("4", Some(&start), None).await;
    let token = register(&app, "capper").await;
    publish_package(&app, &token, "capped", "1.0.0").await;
    // Both running subscriptions get the event: "2" and "4", in either order.
    let mut ids = Vec::new();
    while ids.len() < 4 {
        let msg = ws.recv().await;
        assert_eq!(msg["type"], "next", "{msg}");
        ids.push(msg["id"].as_str().unwrap().to_owned());
    }
    ids.sort();
    assert_eq!(ids, ["2", "2", "4", "4"]);

    // The total.
    let app = common::spawn_with(|c| c.subscriptions_max = 1).await;
    let mut ws = connect(&app).await;
    ws.events("1", None, None).await;
    ws.events("2", None, None).await;
    assert_eq!(ws.refused("2").await["extensions"]["code"], "SERVICE_UNAVAILABLE");
    assert_eq!(open(&app).await.err(), Some(503));
}

#[tokio::test]
async fn a_replay_longer_than_the_limit_is_refused_pointing_to_the_events_query() {
    let app = common::spawn_with(|c| c.subscription_replay_max = 3).await;
    let token = register(&app, "replayer").await;
    publish_package(&app, &token, "replay", "1.0.0").await;
    publish_package(&app, &token, "replay", "1.1.0").await;
    publish_package(&app, &token, "replay", "1.2.0").await;
    let feed = feed_after(&app, None).await;
    assert_eq!(feed.len(), 4);
    let mut ws = connect(&app).await;
    // After the first event: three follow, which is the limit.
    let first = feed[0]["cursor"].as_str().unwrap();
    ws.events("ok", Some(first), None).await;
    let got = vec![ws.event("ok").await, ws.event("ok").await, ws.event("ok").await];
    same_events(&got, &feed[1..]);
    // From the start: four, one too many.
    let start = start_cursor();
    ws.events("long", Some(&start), None).await;
    let e = ws.refused("long").await;
    assert_eq!(
        (e["extensions"]["code"].as_str(), e["extensions"]["field"].as_str()),
        (Some("BAD_USER_INPUT"), Some("after")),
        "{e}"
    );
    assert!(e["message"].as_str().unwrap().contains("`events` query"), "{e}");
    // Filtered to one package, the replay may be within the limit. ("ok" is live: end it first.)
    ws.send(json!({ "id": "ok", "type": "complete" })).await;
    assert_eq!(ws.recv().await, json!({ "type": "complete", "id": "ok" }));
    publish_package(&app, &token, "small", "1.0.0").await;
    ws.events("small", Some(&start), Some("small")).await;
    assert_eq!(ws.event("small").await["kind"], "PACKAGE_CREATED");
}

#[tokio::test]
async fn idle_sockets_are_closed() {
    // The HTTP connection's own idle bound (1 s here) no longer applies once it is a WebSocket.
    let app = common::spawn_with(|c| {
        c.ws_idle_timeout_secs = 1;
        c.http_header_timeout_secs = 1;
    })
    .await;
    // Never initialised, never subscribed.
    let mut ws = open(&app).await.unwrap();
    assert!(ws.closed().await.is_some());
    // Initialised, but no subscription.
    let mut ws = connect(&app).await;
    assert_eq!(ws.closed().await, Some(1000));
    // A subscribed socket that answers pings stays open past both timeouts: it gets an event
    // published after three of them.
    let mut ws = connect(&app).await;
    ws.events("1", Some(&start_cursor()), None).await;
    let token = register(&app, "idler").await;
    let reader = tokio::spawn(async move { ws.event("1").await });
    tokio::time::sleep(Duration::from_secs(3)).await;
    publish_package(&app, &token, "awake", "1.0.0").await;
    assert_eq!(reader.await.unwrap()["package"], "awake");
}
