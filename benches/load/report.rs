//! How figures are printed: numbers, the machine and commit, the verdicts against the targets,
//! and the server settings that change what is measured.
use super::*;

pub(crate) fn fmt_ms(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(ms) if ms < 10.0 => format!("{ms:.2}"),
        Some(ms) => format!("{ms:.1}"),
    }
}

pub(crate) fn fmt_rps(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

pub(crate) fn machine() -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| t.lines().next().and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()))
        .map(|kb| format!(", {:.0} GiB RAM", kb as f64 / 1024.0 / 1024.0))
        .unwrap_or_default();
    format!("{cores} cores, {model}{mem}")
}

pub(crate) fn commit() -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// "met" / "MISSED" against the targets (halved, or doubled for latency, on PostgreSQL).
pub(crate) fn judge(row: &mut Row, health: f64, slack: f64) -> (String, String) {
    let rps = row.stats.rps();
    let ratio = if health > 0.0 { rps / health } else { 0.0 };
    let p99 = row.stats.percentile_ms(0.99).unwrap_or(f64::INFINITY);
    let verdict = |ok: bool| if ok { "met".to_owned() } else { "MISSED".to_owned() };
    match row.target {
        Target::None => (String::new(), String::new()),
        Target::Ratio(t) => (format!(">= {:.2}x", t / slack), verdict(ratio >= t / slack)),
        Target::RatioAndP99(t, ms) => (
            format!(">= {:.2}x, p99 <= {:.0} ms", t / slack, ms * slack),
            verdict(ratio >= t / slack && p99 <= ms * slack),
        ),
        Target::Rps(t) => (format!(">= {:.0}/s", t / slack), verdict(rps >= t / slack)),
        Target::P99(ms) => (format!("p99 < {:.0} ms", ms * slack), verdict(p99 < ms * slack)),
        Target::P99AndCpu(ms, us) => {
            (format!("p99 <= {ms:.0} ms, <= {us:.0} µs CPU"), verdict(p99 <= ms && row.cpu_us.is_some_and(|c| c <= us)))
        }
    }
}

pub(crate) fn log_filter() -> String {
    let mut text =
        std::env::var("RUST_LOG").map(|l| format!("RUST_LOG={l}")).unwrap_or_else(|_| "the default (info)".into());
    // Server settings passed through from the environment that change what is measured.
    for var in ["PAGE_CACHE_ENTRIES", "METADATA_CACHE_ENTRIES", "SQLITE_CACHE_KIB", "DB_MAX_CONNECTIONS"] {
        if let Ok(v) = std::env::var(var) {
            text.push_str(&format!("; {var}={v}"));
        }
    }
    text
}
