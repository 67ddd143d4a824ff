//! Every setting of the server. Each flag has an environment variable of the same meaning, and every
//! default works with nothing configured: SQLite under ./data, tarballs under ./data/storage.
use std::net::IpAddr;
use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand, ValueEnum};

#[derive(Debug, Clone, Parser)]
#[command(name = "raven-registry", version, about = "The RavensOne package registry (GraphQL + raven pkg REST shim)")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL) to stdout.
    Schema,
    /// Print the OpenAPI document of the REST API (JSON) to stdout.
    Openapi,
    /// Fill the database with realistic demo data through the service layer.
    Seed(SeedArgs),
    /// Check blobs against version rows: missing or corrupt blobs, and orphan blobs.
    Fsck(FsckArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct SeedArgs {
    /// Number of packages to create.
    #[arg(long, default_value_t = 100)]
    pub packages: u32,
    /// Versions per package.
    #[arg(long, default_value_t = 3)]
    pub versions: u32,
    /// Tarballs built and checked at once, in each of the two batches in flight.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: u32,
}

#[derive(Debug, Clone, clap::Args)]
pub struct FsckArgs {
    /// Delete orphan blobs (blobs no version owns). Versions are never deleted.
    #[arg(long)]
    pub repair: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StorageType {
    Local,
    S3,
    Memory,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Database URL: sqlite://path?mode=rwc or postgres://... (default: SQLite file DATA_DIR/registry.db).
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Directory for the default SQLite file, local tarballs and the generated JWT secret.
    #[arg(long, env = "DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,
    #[arg(long, env = "HOST", default_value = "0.0.0.0", global = true)]
    pub host: IpAddr,
    #[arg(long, env = "PORT", default_value_t = 8080, global = true)]
    pub port: u16,
    /// Base URL used for absolute download URLs (default http://localhost:PORT).
    #[arg(long, env = "PUBLIC_URL", global = true, value_parser = parse_http_url)]
    pub public_url: Option<url::Url>,
    /// HS256 signing secret, at least 32 bytes. When unset, one is generated and kept in DATA_DIR/jwt-secret.
    #[arg(long, env = "JWT_SECRET", global = true, hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Lifetime of login/register tokens in days.
    #[arg(long, env = "LOGIN_TOKEN_DAYS", default_value_t = 30, global = true, value_parser = clap::value_parser!(u32).range(1..=365))]
    pub login_token_days: u32,
    #[arg(long, env = "STORAGE_TYPE", value_enum, default_value = "local", global = true)]
    pub storage_type: StorageType,
    /// Directory of local tarball storage (default DATA_DIR/storage).
    #[arg(long, env = "STORAGE_PATH", global = true)]
    pub storage_path: Option<PathBuf>,
    #[arg(long, env = "S3_BUCKET", global = true)]
    pub s3_bucket: Option<String>,
    #[arg(long, env = "S3_REGION", default_value = "us-east-1", global = true)]
    pub s3_region: String,
    /// Endpoint of an S3-compatible service (path-style addressing is used when set).
    #[arg(long, env = "S3_ENDPOINT", global = true)]
    pub s3_endpoint: Option<String>,
    /// Answer downloads with a 302 to the blob instead of streaming it: to DOWNLOAD_CDN_URL when
    /// set, else to a presigned S3 URL (STORAGE_TYPE=s3). Downloads are still counted.
    #[arg(long, env = "DOWNLOAD_REDIRECT", default_value_t = false, action = ArgAction::Set, global = true)]
    pub download_redirect: bool,
    /// Public base URL that serves the storage's keys (a CDN in front of the bucket); redirects go
    /// to BASE/packages/NAME/NAME-VERSION.tar.gz.
    #[arg(long, env = "DOWNLOAD_CDN_URL", global = true, value_parser = parse_http_url)]
    pub download_cdn_url: Option<url::Url>,
    /// Lifetime of presigned download URLs, in seconds.
    #[arg(long, env = "DOWNLOAD_URL_TTL_SECS", default_value_t = 300, global = true, value_parser = clap::value_parser!(u64).range(10..=604_800))]
    pub download_url_ttl_secs: u64,
    /// Largest accepted tarball, compressed, in bytes.
    #[arg(long, env = "MAX_TARBALL_BYTES", default_value_t = 50 * 1024 * 1024, global = true, value_parser = clap::value_parser!(u64).range(1024..))]
    pub max_tarball_bytes: u64,
    /// Downloads from which a package's name is protected against names one edit away from it
    /// (folded-equal names are always refused, whatever the downloads; see README, name rules).
    #[arg(long, env = "NAME_CONFUSABLE_MIN_DOWNLOADS", default_value_t = 1000, global = true, value_parser = clap::value_parser!(i64).range(0..))]
    pub name_confusable_min_downloads: i64,
    /// Largest database pool size.
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 16, global = true, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_max_connections: u32,
    /// Search and browse pages kept per instance (0 turns the cache off). Every entry is dropped
    /// when the catalog changes, so a hit is as current as the database.
    #[arg(long, env = "PAGE_CACHE_ENTRIES", default_value_t = 512, global = true)]
    pub page_cache_entries: usize,
    /// REST package and version metadata bodies kept per instance (0 turns the cache off); dropped
    /// like search pages when the catalog changes.
    #[arg(long, env = "METADATA_CACHE_ENTRIES", default_value_t = 4096, global = true)]
    pub metadata_cache_entries: usize,
    /// Verified tarballs kept in memory for downloads, in bytes (0 turns the cache off). A blob is
    /// hashed once, when it enters; a blob larger than a quarter of this is always streamed from
    /// storage (and hashed on the way out).
    #[arg(long, env = "BLOB_CACHE_BYTES", default_value_t = 8 * 1024 * 1024, global = true, value_parser = clap::value_parser!(u64).range(0..=(1u64 << 40)))]
    pub blob_cache_bytes: u64,
    /// How long, in milliseconds, this instance trusts the catalog generation it last read when
    /// nothing tells it of writes (the PostgreSQL listener is down), before asking the database
    /// again (0: ask on every cached read). Its own writes are seen at once whatever this says.
    #[arg(long, env = "GENERATION_MAX_AGE_MS", default_value_t = 250, global = true, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub generation_max_age_ms: u64,
    /// Packages one dependency resolution may reach (`resolve`, `POST /api/v1/resolve`); a
    /// graph reaching more is refused (422 `too_complex`) before it is solved.
    #[arg(long, env = "RESOLVE_MAX_PACKAGES", default_value_t = 2000, global = true, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub resolve_max_packages: u32,
    /// Solver steps (versions chosen plus dependency lists read) one resolution may take.
    #[arg(long, env = "RESOLVE_MAX_STEPS", default_value_t = 100_000, global = true, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub resolve_max_steps: u64,
    /// Milliseconds one resolution may take in all, reading included.
    #[arg(long, env = "RESOLVE_TIMEOUT_MS", default_value_t = 2000, global = true, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub resolve_timeout_ms: u64,
    /// SQLite page cache per pooled connection, in KiB. The pool's caches together hold up to
    /// DB_MAX_CONNECTIONS times this much once warm: SQLite's own default (2000) made 16
    /// connections hold ~31 MiB, the larger part of the server's memory, while the file stays in
    /// the OS page cache either way (read ratios on the benchmark did not move beyond its noise).
    #[arg(long, env = "SQLITE_CACHE_KIB", default_value_t = 512, global = true, value_parser = clap::value_parser!(u32).range(64..=1_048_576))]
    pub sqlite_cache_kib: u32,
    /// Prepared statements each pooled SQLite connection keeps (sqlx's default, 100). They held
    /// ~15 MB of a soak's RSS at 100 against 4; batch queries with IN lists of varying length
    /// make a distinct statement per length.
    #[arg(long, env = "SQLITE_STATEMENT_CACHE", default_value_t = 100, global = true, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub sqlite_statement_cache: u32,
    /// Seconds to wait for a database connection before answering 503.
    #[arg(long, env = "DB_ACQUIRE_TIMEOUT_SECS", default_value_t = 5, global = true, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub db_acquire_timeout_secs: u64,
    /// Requests per hour per client IP without a token.
    #[arg(long, env = "RATE_LIMIT_UNAUTHENTICATED", default_value_t = 60, global = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_unauthenticated: u32,
    /// Requests per hour per signed-in user.
    #[arg(long, env = "RATE_LIMIT_AUTHENTICATED", default_value_t = 5000, global = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_authenticated: u32,
    #[arg(long, env = "RATE_LIMITS_ENABLED", default_value_t = true, action = ArgAction::Set, global = true)]
    pub rate_limits_enabled: bool,
    /// The window of the hourly budgets above and of the login budget, in seconds.
    #[arg(long, env = "RATE_LIMIT_WINDOW_SECS", default_value_t = 3600, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub rate_limit_window_secs: u64,
    /// Login attempts per window, per client IP and per email.
    #[arg(long, env = "RATE_LIMIT_LOGIN", default_value_t = 10, global = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_login: u32,
    /// New packages a user may publish at once...
    #[arg(long, env = "RATE_LIMIT_PUBLISH_NEW_BURST", default_value_t = 5, global = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_publish_new_burst: u32,
    /// ...then one per this many seconds.
    #[arg(long, env = "RATE_LIMIT_PUBLISH_NEW_PERIOD_SECS", default_value_t = 600, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub rate_limit_publish_new_period_secs: u64,
    /// New versions of existing packages a user may publish at once...
    #[arg(long, env = "RATE_LIMIT_PUBLISH_VERSION_BURST", default_value_t = 30, global = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_publish_version_burst: u32,
    /// ...then one per this many seconds.
    #[arg(long, env = "RATE_LIMIT_PUBLISH_VERSION_PERIOD_SECS", default_value_t = 60, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub rate_limit_publish_version_period_secs: u64,
    /// Yanks and unyanks a user may make at once...
    #[arg(long, env = "RATE_LIMIT_YANK_BURST", default_value_t = 100, global = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_yank_burst: u32,
    /// ...then one per this many seconds.
    #[arg(long, env = "RATE_LIMIT_YANK_PERIOD_SECS", default_value_t = 60, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub rate_limit_yank_period_secs: u64,
    /// Accounts created per window per client IP: REST registrations and each GraphQL `register`
    /// field (aliases included).
    #[arg(long, env = "RATE_LIMIT_REGISTER", default_value_t = 10, global = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_register: u32,
    /// Tokens a user may mint per window: refreshes and new API tokens, REST calls and each
    /// GraphQL `refreshToken` / `createApiToken` field.
    #[arg(long, env = "RATE_LIMIT_TOKENS", default_value_t = 60, global = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_tokens: u32,
    /// Owner changes a user may make per window: REST calls and each GraphQL `addOwner` /
    /// `removeOwner` field.
    #[arg(long, env = "RATE_LIMIT_OWNERS", default_value_t = 60, global = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_owners: u32,
    /// Read-only GraphQL queries per hour per client IP from clients without a token (GET or
    /// POST): a browser's own budget, apart from RATE_LIMIT_UNAUTHENTICATED, which keeps counting
    /// the REST shim and anonymous mutations. A 304 answer is not charged.
    #[arg(long, env = "RATE_LIMIT_BROWSE", default_value_t = 3_600, global = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_browse: u32,
    /// Keys of server-side-rendering frontends (comma-separated, each at least 16 characters). A
    /// request with a matching `X-Frontend-Key` is budgeted as the end user named by its
    /// `X-Frontend-Client-IP` header. Only digests of the keys are kept; they are never logged.
    #[arg(long, env = "FRONTEND_KEYS", global = true, hide_env_values = true, value_parser = crate::frontend_key::parse_keys)]
    pub frontend_keys: Option<crate::frontend_key::FrontendKeys>,
    /// Requests per window (RATE_LIMIT_WINDOW_SECS) through each frontend key, all end users
    /// together: what a leaked key can cost at most.
    #[arg(long, env = "RATE_LIMIT_FRONTEND_KEY", default_value_t = 100_000, global = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_frontend_key: u32,
    /// Live login tokens per user; a register, login or refresh at the cap revokes the oldest.
    #[arg(long, env = "MAX_LOGIN_TOKENS", default_value_t = 50, global = true, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_login_tokens: u32,
    /// The request header that carries the client address, set by the proxy in front of the server:
    /// `Fly-Client-IP` (Fly.io), `X-Forwarded-For` (read TRUSTED_PROXY_HOPS entries from the right),
    /// or another single-address header such as `X-Real-IP`. Unset: the TCP peer is the client.
    /// Only set it when clients cannot reach the server except through that proxy.
    #[arg(long, env = "CLIENT_IP_HEADER", global = true, value_parser = parse_client_ip_header)]
    pub client_ip_header: Option<http::HeaderName>,
    /// With CLIENT_IP_HEADER=X-Forwarded-For: how many proxies in front of the server append to the
    /// header. The client is the entry this many places from the right; entries to its left are
    /// whatever the client sent and are ignored.
    #[arg(long, env = "TRUSTED_PROXY_HOPS", default_value_t = 1, global = true, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub trusted_proxy_hops: u32,
    /// Older name: `true` without CLIENT_IP_HEADER means CLIENT_IP_HEADER=Fly-Client-IP.
    #[arg(long, env = "TRUST_PROXY_HEADERS", default_value_t = false, action = ArgAction::Set, global = true)]
    pub trust_proxy_headers: bool,
    /// Seconds a client has to send a complete request head (and the longest a connection may sit
    /// idle between requests) before the server closes the connection.
    #[arg(long, env = "HTTP_HEADER_TIMEOUT_SECS", default_value_t = 10, global = true, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub http_header_timeout_secs: u64,
    /// Seconds a request body may send nothing while the server waits for it (the request then fails
    /// with 408 and the connection is closed), and a response may sit unread by the client before the
    /// connection is closed.
    #[arg(long, env = "HTTP_BODY_IDLE_TIMEOUT_SECS", default_value_t = 30, global = true, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub http_body_idle_timeout_secs: u64,
    /// Most client connections open at once; further connections wait in the listen backlog. Lowered
    /// at start to fit the process's open-file limit (RLIMIT_NOFILE) with a warning.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 1024, global = true, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,
    #[arg(long, env = "GRAPHQL_INTROSPECTION", default_value_t = true, action = ArgAction::Set, global = true)]
    pub graphql_introspection: bool,
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text", global = true)]
    pub log_format: LogFormat,
    /// Largest GraphQL document (the query text), in bytes; larger ones answer QUERY_TOO_LARGE.
    #[arg(long, env = "GRAPHQL_MAX_DOCUMENT_BYTES", default_value_t = 65_536, global = true, value_parser = clap::value_parser!(u32).range(256..=16_777_216))]
    pub graphql_max_document_bytes: u32,
    /// `max-age`, in seconds, of the `Cache-Control: public` header on anonymous GraphQL GET
    /// answers (which also carry an ETag and answer `If-None-Match` with 304).
    #[arg(long, env = "GRAPHQL_CACHE_MAX_AGE", default_value_t = 30, global = true, value_parser = clap::value_parser!(u32).range(0..=86_400))]
    pub graphql_cache_max_age: u32,
    /// Bytes of query text the automatic persisted query store keeps (least recently used
    /// documents are dropped first; a document larger than this is not kept).
    #[arg(long, env = "PERSISTED_QUERIES_MAX_BYTES", default_value_t = 4 * 1024 * 1024, global = true, value_parser = clap::value_parser!(u64).range(1024..=1_073_741_824))]
    pub persisted_queries_max_bytes: u64,
    /// Fields a GraphQL document may select once its fragments are expanded (aliases and
    /// __typename count); more answer QUERY_TOO_COMPLEX before anything runs.
    #[arg(long, env = "GRAPHQL_MAX_FIELDS", default_value_t = 2_000, global = true, value_parser = clap::value_parser!(u32).range(10..=1_000_000))]
    pub graphql_max_fields: u32,
    /// Largest body of a non-multipart /graphql request (the JSON of query and variables), in
    /// bytes; larger ones answer 413 PAYLOAD_TOO_LARGE without being read to the end.
    #[arg(long, env = "GRAPHQL_MAX_BODY_BYTES", default_value_t = 1_048_576, global = true, value_parser = clap::value_parser!(u32).range(1024..=268_435_456))]
    pub graphql_max_body_bytes: u32,
    /// Origins a browser may call the API from: `*` (any origin, without credentials), or a
    /// comma-separated list of origins (`https://registry.example.com,http://localhost:3000`),
    /// whose requests are answered with credentials allowed; other origins get no CORS headers.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", default_value = "*", global = true, value_parser = parse_cors_origins)]
    pub cors_allowed_origins: CorsOrigins,
    /// Request headers a browser may send cross-origin: `*` allows whatever a preflight asks
    /// for, or a comma-separated list of header names (the API's own, such as authorization
    /// and content-type, are always allowed).
    #[arg(long, env = "CORS_ALLOWED_HEADERS", default_value = "*", global = true, value_parser = parse_cors_headers)]
    pub cors_allowed_headers: CorsHeaders,
    /// How long a browser may cache a preflight answer, in seconds (0 to 86400).
    #[arg(long, env = "CORS_MAX_AGE_SECS", default_value_t = 86_400, global = true, value_parser = clap::value_parser!(u32).range(0..=86_400))]
    pub cors_max_age_secs: u32,
    /// Event subscriptions (`/graphql/ws`) one client address may hold at once.
    #[arg(long, env = "SUBSCRIPTIONS_PER_IP", default_value_t = 10, global = true, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub subscriptions_per_ip: u32,
    /// Event subscriptions the instance holds at once, all clients together.
    #[arg(long, env = "SUBSCRIPTIONS_MAX", default_value_t = 1_000, global = true, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub subscriptions_max: u32,
    /// Most events a subscription with `after` replays before going live; a longer replay is
    /// refused, pointing to the `events` query.
    #[arg(long, env = "SUBSCRIPTION_REPLAY_MAX", default_value_t = 10_000, global = true, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub subscription_replay_max: u64,
    /// Seconds a WebSocket at /graphql/ws may go without a subscription, or without a frame from
    /// the client (it is pinged every half of this), before it is closed.
    #[arg(long, env = "WS_IDLE_TIMEOUT_SECS", default_value_t = 60, global = true, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub ws_idle_timeout_secs: u64,
    /// How often, in milliseconds, an instance with subscribers reads the feed for events written
    /// by other instances (its own are pushed at once).
    #[arg(long, env = "EVENTS_POLL_MS", default_value_t = 250, global = true, value_parser = clap::value_parser!(u64).range(10..=10_000))]
    pub events_poll_ms: u64,
}

/// `CORS_ALLOWED_ORIGINS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// Any origin, without credentials.
    Any,
    /// These origins (as browsers send them: `scheme://host[:port]`), with credentials.
    List(Vec<String>),
}

/// `CORS_ALLOWED_HEADERS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsHeaders {
    /// Whatever a preflight's `Access-Control-Request-Headers` asks for.
    Mirror,
    /// These header names, lowercase.
    List(Vec<String>),
}

fn parse_cors_origins(s: &str) -> Result<CorsOrigins, String> {
    if s.trim() == "*" {
        return Ok(CorsOrigins::Any);
    }
    let mut origins = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let u = url::Url::parse(item).map_err(|e| format!("{item:?} is not an origin: {e}"))?;
        let bare = matches!(u.path(), "" | "/") && u.query().is_none() && u.fragment().is_none();
        if !matches!(u.scheme(), "http" | "https") || !bare || !u.username().is_empty() || u.password().is_some() {
            return Err(format!(
                "{item:?} is not an origin: write scheme://host[:port], e.g. https://registry.example.com"
            ));
        }
        // As browsers send it: lowercase host, no default port, no trailing slash.
        origins.push(u.origin().ascii_serialization());
    }
    if origins.is_empty() {
        return Err("give * or at least one origin".into());
    }
    Ok(CorsOrigins::List(origins))
}

fn parse_cors_headers(s: &str) -> Result<CorsHeaders, String> {
    if s.trim() == "*" {
        return Ok(CorsHeaders::Mirror);
    }
    let names = s
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| {
            http::HeaderName::from_bytes(n.as_bytes())
                .map(|h| h.as_str().to_owned())
                .map_err(|_| format!("{n:?} is not a header name"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CorsHeaders::List(names))
}

fn parse_http_url(s: &str) -> Result<url::Url, String> {
    let u = url::Url::parse(s).map_err(|e| e.to_string())?;
    match u.scheme() {
        "http" | "https" => Ok(u),
        other => Err(format!("scheme must be http or https, not {other}")),
    }
}

fn parse_client_ip_header(s: &str) -> Result<http::HeaderName, String> {
    let name = http::HeaderName::from_bytes(s.trim().as_bytes()).map_err(|_| format!("{s:?} is not a header name"))?;
    if name == http::header::FORWARDED {
        return Err("the Forwarded header (RFC 7239) is not supported: use X-Forwarded-For".into());
    }
    Ok(name)
}

impl Cli {
    /// Parses the command line and environment. A bad value is reported naming both the flag and the
    /// environment variable, since operators mostly configure through the environment.
    pub fn parse_or_exit() -> Cli {
        match Cli::try_parse() {
            Ok(cli) => cli,
            Err(e) => {
                use clap::error::{ContextKind, ContextValue, ErrorKind};
                if matches!(e.kind(), ErrorKind::InvalidValue | ErrorKind::ValueValidation) {
                    if let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) {
                        if let Some(env) = env_name_of(arg) {
                            eprintln!("configuration error in {env} ({arg}):");
                        }
                    }
                }
                e.exit()
            }
        }
    }
}

/// Maps "--port <PORT>" to "PORT" using the command definition, so the two never drift.
fn env_name_of(arg: &str) -> Option<String> {
    use clap::CommandFactory;
    let long = arg.trim_start_matches("--").split_whitespace().next()?.to_owned();
    Cli::command()
        .get_arguments()
        .find(|a| a.get_long() == Some(long.as_str()))
        .and_then(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
}

impl Config {
    /// Defaults plus whatever the environment sets (tests override what matters to them).
    pub fn defaults() -> Config {
        Cli::try_parse_from(["raven-registry"]).expect("defaults parse").config
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.clone(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("registry.db").display()),
        }
    }

    pub fn storage_path(&self) -> PathBuf {
        self.storage_path.clone().unwrap_or_else(|| self.data_dir.join("storage"))
    }

    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(u) => u.as_str().trim_end_matches('/').to_owned(),
            None => format!("http://localhost:{}", self.port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origins_are_star_or_a_list_of_bare_origins() {
        assert_eq!(parse_cors_origins("*").unwrap(), CorsOrigins::Any);
        assert_eq!(
            parse_cors_origins(" https://Registry.Example/ , http://localhost:3000,https://x.example:443").unwrap(),
            CorsOrigins::List(vec![
                "https://registry.example".into(),
                "http://localhost:3000".into(),
                "https://x.example".into()
            ])
        );
        for bad in [
            "",
            ",",
            "registry.example",
            "https://x.example/app",
            "ftp://x.example",
            "https://u@x.example",
            "*,https://x.example",
        ] {
            assert!(parse_cors_origins(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cors_headers_are_star_or_header_names() {
        assert_eq!(parse_cors_headers("*").unwrap(), CorsHeaders::Mirror);
        assert_eq!(
            parse_cors_headers("Sentry-Trace, baggage").unwrap(),
            CorsHeaders::List(vec!["sentry-trace".into(), "baggage".into()])
        );
        assert!(parse_cors_headers("bad header").is_err());
    }

    #[test]
    fn cors_settings_parse_from_their_flags() {
        let cli = Cli::try_parse_from([
            "raven-registry",
            "--cors-allowed-origins",
            "https://a.example",
            "--cors-allowed-headers",
            "x-frontend-key",
            "--cors-max-age-secs",
            "60",
        ])
        .unwrap();
        assert_eq!(cli.config.cors_allowed_origins, CorsOrigins::List(vec!["https://a.example".into()]));
        assert_eq!(cli.config.cors_allowed_headers, CorsHeaders::List(vec!["x-frontend-key".into()]));
        assert_eq!(cli.config.cors_max_age_secs, 60);
        assert!(Cli::try_parse_from(["raven-registry", "--cors-max-age-secs", "86401"]).is_err());
    }
}
