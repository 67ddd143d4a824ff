//! Prometheus metrics, served as text at `GET /metrics`.
//!
//! Recorded through the `metrics` facade into one process-wide Prometheus recorder (installed once,
//! even when a test process builds many apps):
//! - `raven_http_requests_total{method,route,status}` and `raven_http_request_duration_seconds{method,route}`
//!   (route is the route template, e.g. `/api/v1/packages/{name}`; `unmatched` for 404s of the fallback;
//!   the latency is the time until the response head, not the end of a streamed body);
//! - `raven_graphql_operations_total{operation,outcome}` and `raven_graphql_operation_duration_seconds{operation}`;
//!   `raven_graphql_refused_total{reason}` (documents refused by the limits before validation);
//! - `raven_publishes_total`, `raven_yanks_total{action}`, `raven_downloads_total`,
//!   `raven_rate_limited_total{kind}`;
//! - `raven_db_statements_total`, `raven_db_pool_connections{state}`, `raven_db_pool_max_connections`,
//!   `raven_db_pool_acquire_seconds` (sampled at each scrape);
//! - `raven_storage_operation_duration_seconds{op,outcome}` and `raven_storage_errors_total{op}`;
//! - `raven_build_info{version,git_sha}`.
//!
//! Every instance has its own counters: Prometheus sums them across instances.
use std::sync::OnceLock;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Upper bounds (seconds) of the latency histograms: 1 ms to 30 s.
const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The git commit the binary was built from, when the build set `GIT_SHA`.
pub const GIT_SHA: &str = match option_env!("GIT_SHA") {
    Some(sha) => sha,
    None => "unknown",
};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder on first use and returns its handle. Later calls (a second
/// app in the same process) share it.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new().set_buckets(LATENCY_BUCKETS).expect("latency buckets are not empty");
        let handle = match builder.install_recorder() {
            Ok(handle) => handle,
            Err(e) => {
                // Someone else installed a global recorder first: serve an empty, detached one
                // rather than failing to start.
                tracing::warn!(error = %e, "metrics recorder not installed; /metrics will be empty");
                PrometheusBuilder::new().build_recorder().handle()
            }
        };
        describe();
        gauge!("raven_build_info", "version" => env!("CARGO_PKG_VERSION"), "git_sha" => GIT_SHA).set(1.0);
        handle
    })
}

fn describe() {
    describe_counter!("raven_http_requests_total", "HTTP requests by route template, method and status.");
    describe_histogram!(
        "raven_http_request_duration_seconds",
        Unit::Seconds,
        "Time until the response head, by route template and method."
    );
    describe_counter!("raven_graphql_operations_total", "GraphQL operations by operation name and outcome.");
    describe_histogram!("raven_graphql_operation_duration_seconds", Unit::Seconds, "GraphQL operation latency.");
    describe_counter!(
        "raven_graphql_refused_total",
        "GraphQL documents refused by the document limits before validation, by reason (too_large, too_complex)."
    );
    describe_counter!("raven_publishes_total", "Versions published.");
    describe_counter!("raven_yanks_total", "Versions yanked or unyanked (action label).");
    describe_counter!("raven_downloads_total", "Complete, verified tarball downloads.");
    describe_counter!(
        "raven_cache_lookups_total",
        "Lookups in the generation caches, by cache (pages, keywords, metadata) and result (hit, miss)."
    );
    describe_counter!("raven_rate_limited_total", "Requests refused by a rate limit, by limit kind.");
    describe_counter!("raven_db_statements_total", "Database statements run by this instance.");
    describe_gauge!("raven_db_pool_connections", "Open database connections by state (idle, in_use).");
    describe_gauge!("raven_db_pool_max_connections", "Largest size of the database pool (DB_MAX_CONNECTIONS).");
    describe_gauge!(
        "raven_db_pool_acquire_seconds",
        Unit::Seconds,
        "Time to acquire a database connection, sampled at scrape (1 s when the pool is exhausted)."
    );
    describe_histogram!(
        "raven_storage_operation_duration_seconds",
        Unit::Seconds,
        "Tarball storage operations by operation and outcome (ok, not_found, error)."
    );
    describe_counter!("raven_storage_errors_total", "Failed tarball storage operations.");
    describe_gauge!("raven_build_info", "Version and git commit of the running binary.");
}

/// A GraphQL document refused by the limits of [`crate::graphql::limits`] before it ran.
pub fn graphql_refused(reason: &'static str) {
    counter!("raven_graphql_refused_total", "reason" => reason).increment(1);
}

/// Folds recorded histogram samples into their buckets every few seconds. The exporter keeps every
/// sample until upkeep runs, and upkeep otherwise runs only when /metrics is scraped: unscraped,
/// the process grew by ~50 bytes per request (+42 MB in a 10-minute soak).
pub async fn upkeep_periodically() {
    let handle = install();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}

/// A version was published.
pub fn published(name: &str, version: &str) {
    counter!("raven_publishes_total").increment(1);
    crate::telemetry::record_package(name, version);
}

/// A version was yanked (`yanked`) or unyanked.
pub fn yanked(name: &str, version: &str, yanked: bool) {
    counter!("raven_yanks_total", "action" => if yanked { "yank" } else { "unyank" }).increment(1);
    crate::telemetry::record_package(name, version);
}

/// A tarball was downloaded completely and verified.
pub fn downloaded() {
    counter!("raven_downloads_total").increment(1);
}

/// A page or body was asked of one of the generation caches (`pages`, `metadata`).
pub fn cache_lookup(cache: &'static str, hit: bool) {
    counter!("raven_cache_lookups_total", "cache" => cache, "result" => if hit { "hit" } else { "miss" }).increment(1);
}

/// A request was refused by the rate limit of `kind` (e.g. "unauthenticated", "login", "publish").
pub fn rate_limited(kind: &str) {
    counter!("raven_rate_limited_total", "kind" => kind.to_owned()).increment(1);
}
