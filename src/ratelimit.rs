//! Rate limits. The buckets are tower_governor's keyed GCRA limiters, built with its
//! `GovernorConfigBuilder` and keyed by its `KeyExtractor`s. Dispatch is our own middleware rather
//! than `GovernorLayer`, because the key depends on an async token verification (a verified user
//! gets their own, larger budget) and the refusal must be our JSON error.
//!
//! Buckets are per instance: N instances behind a balancer admit up to N times each budget.
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use tower_governor::governor::{GovernorConfigBuilder, SharedRateLimiter};
use tower_governor::key_extractor::KeyExtractor;
use tower_governor::GovernorError;
use uuid::Uuid;

use crate::config::Config;
use crate::error::AppError;

/// The client's address as the limits see it (peer, or the trusted proxy's header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Keys anonymous requests by client IP (from the `ClientIp` extension the middleware sets).
#[derive(Debug, Clone, Copy)]
pub struct IpKey;

impl KeyExtractor for IpKey {
    type Key = IpAddr;

    fn extract<T>(&self, req: &axum::http::Request<T>) -> Result<IpAddr, GovernorError> {
        req.extensions().get::<ClientIp>().map(|c| c.0).ok_or(GovernorError::UnableToExtractKey)
    }
}

/// Keys authenticated requests by the verified token's user, never by the token text.
#[derive(Debug, Clone, Copy)]
pub struct UserKey;

impl KeyExtractor for UserKey {
    type Key = Uuid;

    fn extract<T>(&self, req: &axum::http::Request<T>) -> Result<Uuid, GovernorError> {
        req.extensions().get::<crate::auth::Viewer>().map(|v| v.user_id).ok_or(GovernorError::UnableToExtractKey)
    }
}

type Limiter<K> = SharedRateLimiter<K, StateInformationMiddleware>;

/// One bucket kind: a keyed limiter and its advertised limit.
pub struct Bucket<K: std::hash::Hash + Eq + Clone> {
    limiter: Limiter<K>,
    limit: u32,
    interval: Duration,
}

/// What a check tells the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub limit: u32,
    pub remaining: u32,
    /// Epoch seconds at which the bucket is full again.
    pub reset: u64,
    /// Seconds to wait, when refused.
    pub retry_after: Option<u64>,
}

impl Verdict {
    /// The tighter of two verdicts: a refusal (the longer wait of two), else the one with fewer
    /// requests left (the smaller limit on a tie). This is the one a request's `X-RateLimit-*`
    /// headers report when it was charged to several buckets.
    pub fn tighter(self, other: Verdict) -> Verdict {
        match (self.retry_after, other.retry_after) {
            (Some(a), Some(b)) => {
                if b > a {
                    other
                } else {
                    self
                }
            }
            (Some(_), None) => self,
            (None, Some(_)) => other,
            (None, None) => {
                if (other.remaining, other.limit) < (self.remaining, self.limit) {
                    other
                } else {
                    self
                }
            }
        }
    }
}

tokio::task_local! {
    /// The tightest verdict of the buckets charged while the current request is handled: the
    /// middleware puts the request budget's verdict here, every charge made inside handlers and
    /// GraphQL resolvers (registration, login, tokens, owners, publish, yank; once per GraphQL
    /// field) tightens it, and the middleware reports what is left in the response headers. A
    /// task-local rather than a request extension: resolvers see the GraphQL context, not the HTTP
    /// request, and the transport that builds that context need not know about it. Handlers and
    /// resolvers run inside the middleware's future (nothing between them spawns); a charge made
    /// outside any request (seeding, a spawned task) is enforced all the same, only not reported.
    pub static CHARGED: Arc<std::sync::Mutex<Verdict>>;
}

/// Tightens the current request's reported verdict with `v` (no-op outside a request).
fn report(v: Verdict) {
    let _ = CHARGED.try_with(|cell| {
        let mut tightest = cell.lock().unwrap_or_else(|e| e.into_inner());
        *tightest = tightest.tighter(v);
    });
}

fn epoch_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl<K: std::hash::Hash + Eq + Clone + std::fmt::Debug> Bucket<K> {
    fn new<E: KeyExtractor<Key = K>>(extractor: E, burst: u32, interval: Duration) -> Bucket<K> {
        let burst = burst.max(1);
        let config = GovernorConfigBuilder::default()
            .key_extractor(extractor)
            .period(interval.max(Duration::from_nanos(1)))
            .burst_size(burst)
            .use_headers()
            .finish()
            .expect("non-zero burst and period");
        Bucket { limiter: config.limiter().clone(), limit: burst, interval }
    }

    /// `per_window` requests per `window`, all available at once.
    fn per_window<E: KeyExtractor<Key = K>>(extractor: E, per_window: u32, window: Duration) -> Bucket<K> {
        let per = per_window.max(1);
        Bucket::new(extractor, per, window / per)
    }

    pub fn check(&self, key: &K) -> Verdict {
        match self.limiter.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let refill = self.interval.as_secs_f64() * f64::from(self.limit - remaining.min(self.limit));
                Verdict { limit: self.limit, remaining, reset: epoch_now() + refill.ceil() as u64, retry_after: None }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let full = self.interval.as_secs_f64() * f64::from(self.limit);
                Verdict {
                    limit: self.limit,
                    remaining: 0,
                    reset: epoch_now() + full.ceil() as u64,
                    retry_after: Some(secs.max(1)),
                }
            }
        }
    }

    fn purge(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    pub fn tracked_keys(&self) -> usize {
        self.limiter.len()
    }
}

/// Every limit of one instance.
pub struct RateLimits {
    pub enabled: bool,
    client_ip: crate::client_ip::ClientIpSource,
    pub anonymous: Bucket<IpAddr>,
    pub authenticated: Bucket<Uuid>,
    pub login_ip: Bucket<IpAddr>,
    pub login_email: Bucket<String>,
    pub publish_new: Bucket<Uuid>,
    pub publish_version: Bucket<Uuid>,
    pub yank: Bucket<Uuid>,
    /// Accounts created per client IP (REST register and each GraphQL `register` field).
    pub register: Bucket<IpAddr>,
    /// Tokens minted per user: refreshes and new API tokens (each GraphQL field).
    pub tokens: Bucket<Uuid>,
    /// Owner changes per user: add, remove, change of role (each GraphQL field).
    pub owners: Bucket<Uuid>,
    /// Read-only GraphQL queries per client IP from clients without a token (a browser's budget).
    pub browse: Bucket<IpAddr>,
    /// Every request made through one frontend key (keyed by its position in FRONTEND_KEYS).
    pub frontend_key: Bucket<usize>,
}

impl RateLimits {
    pub fn from_config(c: &Config) -> RateLimits {
        let window = Duration::from_secs(c.rate_limit_window_secs);
        RateLimits {
            enabled: c.rate_limits_enabled,
            client_ip: crate::client_ip::ClientIpSource::from_config(c),
            anonymous: Bucket::per_window(IpKey, c.rate_limit_unauthenticated, window),
            authenticated: Bucket::per_window(UserKey, c.rate_limit_authenticated, window),
            login_ip: Bucket::per_window(IpKey, c.rate_limit_login, window),
            login_email: Bucket::new(EmailKey, c.rate_limit_login, window / c.rate_limit_login.max(1)),
            publish_new: Bucket::new(
                UserKey,
                c.rate_limit_publish_new_burst,
                Duration::from_secs(c.rate_limit_publish_new_period_secs),
            ),
            publish_version: Bucket::new(
                UserKey,
                c.rate_limit_publish_version_burst,
                Duration::from_secs(c.rate_limit_publish_version_period_secs),
            ),
            yank: Bucket::new(UserKey, c.rate_limit_yank_burst, Duration::from_secs(c.rate_limit_yank_period_secs)),
            register: Bucket::per_window(IpKey, c.rate_limit_register, window),
            tokens: Bucket::per_window(UserKey, c.rate_limit_tokens, window),
            owners: Bucket::per_window(UserKey, c.rate_limit_owners, window),
            browse: Bucket::per_window(IpKey, c.rate_limit_browse, window),
            frontend_key: Bucket::per_window(FrontendKeyIndex, c.rate_limit_frontend_key, window),
        }
    }

    /// Drops keys whose buckets are full again, so memory follows active clients, not all clients ever.
    pub fn purge(&self) {
        self.anonymous.purge();
        self.authenticated.purge();
        self.login_ip.purge();
        self.login_email.purge();
        self.publish_new.purge();
        self.publish_version.purge();
        self.yank.purge();
        self.register.purge();
        self.tokens.purge();
        self.owners.purge();
        self.browse.purge();
        self.frontend_key.purge();
    }

    /// Reports a charge to the current request and turns a refused one into the 429 error.
    fn refuse(&self, kind: &str, v: Verdict) -> Result<Verdict, AppError> {
        if self.enabled {
            report(v);
        }
        match v.retry_after {
            Some(retry_after) if self.enabled => {
                tracing::info!(kind, retry_after, "rate limit refusal");
                crate::metrics::rate_limited(kind);
                Err(AppError::RateLimited { retry_after })
            }
            _ => Ok(v),
        }
    }

    /// Login attempts count against both the client IP and the email, whichever runs out first.
    pub fn login(&self, ip: Option<IpAddr>, email: &str) -> Result<(), AppError> {
        if !self.enabled {
            return Ok(());
        }
        let ip = ip.unwrap_or(Ipv4Addr::UNSPECIFIED.into());
        self.refuse("login_ip", self.login_ip.check(&ip))?;
        self.refuse("login_email", self.login_email.check(&email.trim().to_lowercase()))?;
        Ok(())
    }

    pub fn publish(&self, user: Uuid, new_package: bool) -> Result<(), AppError> {
        if !self.enabled {
            return Ok(());
        }
        if new_package {
            self.refuse("publish_new", self.publish_new.check(&user))?;
        } else {
            self.refuse("publish_version", self.publish_version.check(&user))?;
        }
        Ok(())
    }

    pub fn yank(&self, user: Uuid) -> Result<(), AppError> {
        if !self.enabled {
            return Ok(());
        }
        self.refuse("yank", self.yank.check(&user)).map(|_| ())
    }

    /// One account creation from `ip` (a request without a usable address shares one bucket).
    pub fn register(&self, ip: Option<IpAddr>) -> Result<(), AppError> {
        if !self.enabled {
            return Ok(());
        }
        let ip = ip.unwrap_or(Ipv4Addr::UNSPECIFIED.into());
        self.refuse("register", self.register.check(&ip)).map(|_| ())
    }

    /// One token minted for `user` (a refresh or a new API token).
    pub fn tokens(&self, user: Uuid) -> Result<(), AppError> {
        if !self.enabled {
            return Ok(());
        }
        self.refuse("tokens", self.tokens.check(&user)).map(|_| ())
    }

    /// One owner change by `user`.
    pub fn owners(&self, user: Uuid) -> Result<(), AppError> {
        if !self.enabled {
            return Ok(());
        }
        self.refuse("owners", self.owners.check(&user)).map(|_| ())
    }

    /// The client address: the peer, or the one header CLIENT_IP_HEADER names (see `client_ip`).
    pub fn client_ip(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<IpAddr> {
        self.client_ip.client_ip(headers, peer)
    }
}

/// Which bucket an anonymous GraphQL request is charged to, once its operation is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphqlCharge {
    /// A read-only query: the browse budget (RATE_LIMIT_BROWSE).
    Query,
    /// A mutation, or a request whose operation is not known: the anonymous request budget.
    Other,
}

/// The request budget of an anonymous `/graphql` request, left to the transport: whether it is a
/// query (browse budget) or a mutation (anonymous budget) is known only once the body is read and
/// a persisted query resolved, and an answer of 304 is charged nothing. The middleware charges
/// what the transport did not ([`GraphqlCharge::Other`]), so no answer is free by omission.
#[derive(Debug)]
pub struct DeferredCharge {
    pub ip: IpAddr,
    /// The frontend key the request came through, whose own bucket is charged too.
    pub frontend_key: Option<usize>,
    /// Set once charged, or once settled as free (a 304).
    settled: std::sync::atomic::AtomicBool,
}

impl DeferredCharge {
    pub fn new(ip: IpAddr, frontend_key: Option<usize>) -> DeferredCharge {
        DeferredCharge { ip, frontend_key, settled: Default::default() }
    }

    /// Charges the request once (later calls do nothing); the refusal, if any, is the 429 error.
    pub fn charge(&self, limits: &RateLimits, kind: GraphqlCharge) -> Result<(), AppError> {
        if self.settled.swap(true, std::sync::atomic::Ordering::SeqCst) || !limits.enabled {
            return Ok(());
        }
        if let Some(key) = self.frontend_key {
            limits.refuse("frontend_key", limits.frontend_key.check(&key))?;
        }
        match kind {
            GraphqlCharge::Query => limits.refuse("browse", limits.browse.check(&self.ip)).map(|_| ()),
            GraphqlCharge::Other => limits.refuse("anonymous", limits.anonymous.check(&self.ip)).map(|_| ()),
        }
    }

    /// The answer costs nothing (a 304: the client already holds it).
    pub fn waive(&self) {
        self.settled.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn settled(&self) -> bool {
        self.settled.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Keys a frontend key's bucket by the key's position; the middleware checks it itself.
#[derive(Debug, Clone, Copy)]
pub struct FrontendKeyIndex;

impl KeyExtractor for FrontendKeyIndex {
    type Key = usize;

    fn extract<T>(&self, _req: &axum::http::Request<T>) -> Result<usize, GovernorError> {
        Err(GovernorError::UnableToExtractKey)
    }
}

/// Keys login attempts by the (lowercased) email they name.
#[derive(Debug, Clone, Copy)]
pub struct EmailKey;

impl KeyExtractor for EmailKey {
    type Key = String;

    fn extract<T>(&self, _req: &axum::http::Request<T>) -> Result<String, GovernorError> {
        // Emails live in bodies; login handlers check this bucket themselves.
        Err(GovernorError::UnableToExtractKey)
    }
}

/// Purges stale keys every minute.
pub async fn purge_periodically(limits: Arc<RateLimits>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        limits.purge();
    }
}
