//! The load generator, wrk-like: HTTP/1.1 keep-alive connections driven by hyper directly (the
//! cheapest client, since it shares the machine with the server), request generators, answer checks
//! and the latency statistics of a run.
use super::*;

pub(crate) struct Conn {
    pub(crate) addr: SocketAddr,
    pub(crate) sender: Option<http1::SendRequest<Full<Bytes>>>,
}

impl Conn {
    pub(crate) fn new(addr: SocketAddr) -> Conn {
        Conn { addr, sender: None }
    }

    pub(crate) async fn connect(&mut self) -> Result<(), String> {
        let stream = tokio::net::TcpStream::connect(self.addr).await.map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).ok();
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    pub(crate) async fn send(&mut self, req: &Req) -> Result<(StatusCode, Bytes), String> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.connect().await?;
        }
        let sender = self.sender.as_mut().expect("connected");
        if let Err(e) = sender.ready().await {
            self.sender = None;
            return Err(format!("connection: {e}"));
        }
        let mut b =
            Request::builder().method(req.method.clone()).uri(req.path.as_str()).header(header::HOST, "127.0.0.1");
        if let Some(ct) = &req.content_type {
            b = b.header(header::CONTENT_TYPE, ct.clone());
        }
        if let Some(auth) = &req.auth {
            b = b.header(header::AUTHORIZATION, auth.clone());
        }
        let request = b.body(Full::new(req.body.clone())).map_err(|e| e.to_string())?;
        let res = match sender.send_request(request).await {
            Ok(r) => r,
            Err(e) => {
                self.sender = None;
                return Err(format!("request: {e}"));
            }
        };
        let status = res.status();
        match res.into_body().collect().await {
            Ok(body) => Ok((status, body.to_bytes())),
            Err(e) => {
                self.sender = None;
                Err(format!("body: {e}"))
            }
        }
    }
}

#[derive(Clone)]
pub(crate) struct Req {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) body: Bytes,
    pub(crate) content_type: Option<HeaderValue>,
    pub(crate) auth: Option<HeaderValue>,
}

impl Req {
    pub(crate) fn get(path: String) -> Req {
        Req { method: Method::GET, path, body: Bytes::new(), content_type: None, auth: None }
    }

    pub(crate) fn json(path: &str, body: &serde_json::Value) -> Req {
        Req {
            method: Method::POST,
            path: path.to_owned(),
            body: Bytes::from(serde_json::to_vec(body).expect("json")),
            content_type: Some(HeaderValue::from_static("application/json")),
            auth: None,
        }
    }
}

pub(crate) type Generator = Arc<dyn Fn(u64) -> Req + Send + Sync>;

#[derive(Clone, Copy)]
pub(crate) struct Check {
    pub(crate) status: StatusCode,
    pub(crate) graphql: bool,
}

impl Check {
    pub(crate) const OK: Check = Check { status: StatusCode::OK, graphql: false };
    pub(crate) const CREATED: Check = Check { status: StatusCode::CREATED, graphql: false };
    pub(crate) const GRAPHQL: Check = Check { status: StatusCode::OK, graphql: true };

    pub(crate) fn verify(&self, status: StatusCode, body: &[u8]) -> Result<(), String> {
        let graphql_error = self.graphql && memchr_find(body, b"\"errors\"");
        if status != self.status || graphql_error {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            return Err(format!("{status}: {text}"));
        }
        Ok(())
    }
}

pub(crate) fn memchr_find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// How many error details a run keeps.
pub(crate) const ERROR_DETAILS: usize = 5;

#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) ok: u64,
    pub(crate) errors: u64,
    /// Every completed request, warm-up included (server CPU time is divided by it).
    pub(crate) all: u64,
    pub(crate) secs: f64,
    /// Latencies of successful requests, in microseconds.
    pub(crate) lat: Vec<u32>,
    pub(crate) bytes: u64,
    /// The first few errors.
    pub(crate) first_errors: Vec<String>,
}

impl Stats {
    pub(crate) fn merge(&mut self, other: Stats) {
        self.ok += other.ok;
        self.all += other.all;
        self.errors += other.errors;
        self.bytes += other.bytes;
        self.lat.extend(other.lat);
        let room = ERROR_DETAILS.saturating_sub(self.first_errors.len());
        self.first_errors.extend(other.first_errors.into_iter().take(room));
    }

    pub(crate) fn rps(&self) -> f64 {
        if self.secs > 0.0 {
            self.ok as f64 / self.secs
        } else {
            0.0
        }
    }

    pub(crate) fn percentile_ms(&mut self, p: f64) -> Option<f64> {
        if self.lat.is_empty() {
            return None;
        }
        self.lat.sort_unstable();
        let idx = ((self.lat.len() as f64 * p).ceil() as usize).clamp(1, self.lat.len()) - 1;
        Some(self.lat[idx] as f64 / 1000.0)
    }
}

/// A stream of requests: what to send and expect, on how many connections, how fast.
#[derive(Clone)]
pub(crate) struct Load {
    pub(crate) gen: Generator,
    pub(crate) check: Check,
    pub(crate) connections: usize,
    /// The least time between the starts of two requests on one connection; `None`: back to back.
    pub(crate) pace: Option<Duration>,
}

impl Load {
    pub(crate) fn new(connections: usize, check: Check, gen: Generator) -> Load {
        Load { gen, check, connections, pace: None }
    }
}

/// Shared by the drivers of a run: a stop flag, and running totals (the soak samples them).
#[derive(Default)]
pub(crate) struct Live {
    pub(crate) stop: AtomicBool,
    pub(crate) requests: AtomicU64,
    pub(crate) errors: AtomicU64,
}

/// Drives `load` for `warmup + measure` (or until `live.stop`), recording only requests that start
/// and finish inside the measured window.
pub(crate) async fn drive(addr: SocketAddr, load: Load, warmup: Duration, measure: Duration, live: Arc<Live>) -> Stats {
    let counter = Arc::new(AtomicU64::new(0));
    let begin = Instant::now();
    let start = begin + warmup;
    let end = start + measure;
    let mut tasks = Vec::with_capacity(load.connections);
    for _ in 0..load.connections {
        let (load, counter, live) = (load.clone(), counter.clone(), live.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(addr);
            let mut s = Stats { lat: Vec::with_capacity(4096), ..Default::default() };
            loop {
                let t0 = Instant::now();
                if t0 >= end || live.stop.load(Ordering::Relaxed) {
                    break;
                }
                let req = (load.gen)(counter.fetch_add(1, Ordering::Relaxed));
                let result = conn.send(&req).await;
                let t1 = Instant::now();
                let measured = t0 >= start && t1 <= end;
                let outcome = result.and_then(|(status, body)| load.check.verify(status, &body).map(|()| body.len()));
                s.all += 1;
                live.requests.fetch_add(1, Ordering::Relaxed);
                match outcome {
                    Ok(n) if measured => {
                        s.ok += 1;
                        s.bytes += n as u64;
                        s.lat.push((t1 - t0).as_micros().min(u32::MAX as u128) as u32);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        // Failures count whenever they happen, warm-up included.
                        s.errors += 1;
                        live.errors.fetch_add(1, Ordering::Relaxed);
                        if s.first_errors.len() < ERROR_DETAILS {
                            s.first_errors.push(e);
                        }
                        // Do not spin on a dead server.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                if let Some(pace) = load.pace {
                    tokio::time::sleep_until((t0 + pace).into()).await;
                }
            }
            s
        }));
    }
    let mut total = Stats::default();
    for t in tasks {
        if let Ok(s) = t.await {
            total.merge(s);
        }
    }
    total.secs = measure.as_secs_f64();
    total
}

/// The same as `drive`, on a thread and runtime of its own, so its latencies are not disturbed by
/// the client work of a concurrent scenario.
pub(crate) fn drive_on_own_thread(
    addr: SocketAddr,
    load: Load,
    warmup: Duration,
    measure: Duration,
) -> std::thread::JoinHandle<Stats> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(drive(addr, load, warmup, measure, Arc::default()))
    })
}

pub(crate) async fn request_once(addr: SocketAddr, req: &Req) -> Result<(StatusCode, serde_json::Value), String> {
    let mut c = Conn::new(addr);
    let (status, body) = c.send(req).await?;
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    Ok((status, json))
}
