//! Reliability under faults: fsck, a database outage (PostgreSQL behind a chaos proxy), storage
//! faults, graceful shutdown with downloads in flight, SQLite under concurrent writers, SIGKILL in
//! the middle of concurrent publishes, and parsers fed arbitrary bytes.
use crate::testkit as common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use common::api::{
    download_path, expect_error, get_ok, publish_at, publish_ok, publish_package, register, register_at,
    register_request, registration, sha256_hex, PASSWORD,
};
use common::capture::Capture;
use common::documents::{aliases, fan_out};
use common::process::{self, Inherit, ServerProcess};
use common::proxy::spawn_behind_proxy;
use common::tarballs::{file, manifest, noise, package, package_targz};
use common::{free_port, spawn, spawn_with, TestApp};
use raven_registry::service::fsck::{self, BlobFault, OrphanState};
use raven_registry::storage::Storage;
use reqwest::StatusCode;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_raven-registry");

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A valid package carrying `size` bytes of incompressible data, so its tarball is about that big.
fn big_package(name: &str, version: &str, size: usize, seed: u64) -> Vec<u8> {
    package_targz(&[("raven.toml", manifest(name, version).into_bytes()), ("data/blob.bin", noise(size, seed))])
}

/// Sets the modification time of every file under `root` to an hour ago, so fsck treats the
/// orphans among them as left over rather than as blobs of a publish in flight.
fn backdate_all(root: &Path) {
    let past = SystemTime::now() - Duration::from_secs(3600);
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                std::fs::File::options().write(true).open(e.path()).unwrap().set_modified(past).unwrap();
            }
        }
    }
}

async fn versions_in_db(app: &TestApp) -> Vec<entity::versions::Model> {
    entity::versions::Entity::find().all(&app.state.db).await.unwrap()
}

/// Runs `raven-registry <args>` with nothing configured but the data directory and database.
fn run_cli(data_dir: &Path, database_url: Option<&str>, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_clear().env("DATA_DIR", data_dir).env("RUST_LOG", "warn");
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    cmd.output().expect("run the raven-registry binary")
}

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ---------------------------------------------------------------------------------------------
// 1. fsck
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn fsck_finds_missing_corrupt_and_orphan_blobs_and_repairs_only_orphans() {
    let app = spawn().await;
    let storage_dir = app.config.storage_path();
    let token = register(&app, "alice").await;
    let intact = publish_package(&app, &token, "alpha", "1.0.0").await;
    let bravo = publish_package(&app, &token, "bravo", "1.0.0").await;
    let charlie = publish_package(&app, &token, "charlie", "1.0.0").await;
    let delta = publish_package(&app, &token, "delta", "1.0.0").await;
    let clean = fsck::run(&app.state, false).await.unwrap();
    assert!(clean.is_clean(), "a fresh registry is clean:\n{clean}");
    assert_eq!(clean.versions_checked, 4);
    assert_eq!(clean.blobs_listed, 4);

    // The faults: an orphan, a blob with the right size but other bytes, a truncated blob, a deleted blob.
    let ghost = Storage::key("ghost", "1.0.0");
    app.state.storage.put(&ghost, package("ghost", "1.0.0").into()).await.unwrap();
    let flipped: Vec<u8> = bravo.iter().map(|b| b ^ 0x5a).collect();
    app.state.storage.put(&Storage::key("bravo", "1.0.0"), flipped.clone().into()).await.unwrap();
    app.state
        .storage
        .put(&Storage::key("charlie", "1.0.0"), charlie[..charlie.len() / 2].to_vec().into())
        .await
        .unwrap();
    app.state.storage.delete(&Storage::key("delta", "1.0.0")).await.unwrap();
    let rows_before = versions_in_db(&app).await;

    let report = fsck::run(&app.state, false).await.unwrap();
    assert!(!report.is_clean(), "{report}");
    assert_eq!(report.versions_checked, 4);
    assert_eq!(report.blobs_listed, 4, "alpha, bravo, charlie and ghost");
    let faults: Vec<(&str, &BlobFault)> = report.versions.iter().map(|p| (p.package.as_str(), &p.fault)).collect();
    assert_eq!(
        faults,
        vec![
            ("bravo", &BlobFault::WrongSha256 { recorded: sha256_hex(&bravo), stored: sha256_hex(&flipped) }),
            ("charlie", &BlobFault::WrongSize { recorded: charlie.len() as i64, stored: (charlie.len() / 2) as u64 }),
            ("delta", &BlobFault::Missing),
        ],
        "{report}"
    );
    assert_eq!(
        report.versions.iter().map(|p| p.key.clone()).collect::<Vec<_>>(),
        [
            "packages/bravo/bravo-1.0.0.tar.gz",
            "packages/charlie/charlie-1.0.0.tar.gz",
            "packages/delta/delta-1.0.0.tar.gz",
        ]
    );
    assert_eq!(report.missing().count(), 1);
    assert_eq!(report.corrupt().count(), 2);
    assert_eq!(report.orphans.len(), 1);
    assert_eq!(report.orphans[0].key, ghost.to_string());
    assert_eq!(report.orphans[0].state, OrphanState::Found);
    let text = report.to_string();
    for needle in [
        "version bravo 1.0.0: corrupt blob: sha256",
        "version charlie 1.0.0: corrupt blob: size",
        "version delta 1.0.0: missing blob",
        "orphan blob packages/ghost/ghost-1.0.0.tar.gz",
        "4 versions checked, 4 blobs listed; 1 missing, 2 corrupt, 0 unreadable; 1 orphan blobs (0 removed, 1 left); \
         0 staging files (0 removed)",
    ] {
        assert!(text.contains(needle), "{needle:?} in\n{text}");
    }
    assert!(!text.contains("alpha"), "an intact version is not reported:\n{text}");

    // The binary reports the same and fails.
    let db_url = app.config.database_url();
    let out = run_cli(app.dir.path(), Some(&db_url), &["fsck"]);
    assert!(!out.status.success(), "fsck exits non-zero with problems:\n{}", stdout_of(&out));
    let printed = stdout_of(&out);
    assert!(printed.contains("version delta 1.0.0: missing blob"), "{printed}");
    assert!(printed.contains("orphan blob packages/ghost/ghost-1.0.0.tar.gz"), "{printed}");

    // A fresh orphan may be a publish in flight: repair leaves it alone (and says so).
    let report = fsck::run(&app.state, true).await.unwrap();
    assert!(matches!(report.orphans[0].state, OrphanState::TooRecent { .. }), "{report}");
    assert!(app.state.storage.size(&ghost).await.is_ok(), "the recent orphan is kept");

    // An old orphan is deleted; nothing else is touched.
    backdate_all(&storage_dir);
    let report = fsck::run(&app.state, true).await.unwrap();
    assert_eq!(report.orphans.len(), 1);
    assert_eq!(report.orphans[0].state, OrphanState::Removed, "{report}");
    assert_eq!(report.versions.len(), 3, "repair never touches versions:\n{report}");
    assert!(!report.is_clean(), "missing and corrupt blobs are still problems");
    assert!(app.state.storage.size(&ghost).await.is_err(), "the orphan is gone");
    assert_eq!(app.state.storage.get_bytes(&Storage::key("alpha", "1.0.0")).await.unwrap(), intact);
    assert_eq!(app.state.storage.get_bytes(&Storage::key("bravo", "1.0.0")).await.unwrap(), flipped);
    assert_eq!(versions_in_db(&app).await, rows_before, "version rows are untouched");
    let mut keys = app.state.storage.list_keys().await.unwrap();
    keys.sort();
    assert_eq!(
        keys,
        [
            "packages/alpha/alpha-1.0.0.tar.gz",
            "packages/bravo/bravo-1.0.0.tar.gz",
            "packages/charlie/charlie-1.0.0.tar.gz"
        ]
    );

    // Once the blobs are back, fsck is clean, in the library and in the binary.
    app.state.storage.put(&Storage::key("bravo", "1.0.0"), bravo.into()).await.unwrap();
    app.state.storage.put(&Storage::key("charlie", "1.0.0"), charlie.into()).await.unwrap();
    app.state.storage.put(&Storage::key("delta", "1.0.0"), delta.into()).await.unwrap();
    let report = fsck::run(&app.state, false).await.unwrap();
    assert!(report.is_clean(), "{report}");
    let out = run_cli(app.dir.path(), Some(&db_url), &["fsck"]);
    assert!(
        out.status.success(),
        "fsck exits zero when clean:\n{}{}",
        stdout_of(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout_of(&out).contains("4 versions checked, 4 blobs listed; 0 missing, 0 corrupt"),
        "{}",
        stdout_of(&out)
    );
    assert!(stdout_of(&out).contains(": clean"));
}

/// object_store writes a local blob as `<key>#<n>` and renames it into place; a process killed
/// between the two leaves the staging file, which no listing shows. fsck finds it on disk.
#[tokio::test]
async fn fsck_finds_and_repairs_staging_files_left_by_an_interrupted_write() {
    let app = spawn().await;
    let storage_dir = app.config.storage_path();
    let token = register(&app, "alice").await;
    let blob = publish_package(&app, &token, "alpha", "1.0.0").await;
    let leftover = storage_dir.join("packages/alpha/alpha-2.0.0.tar.gz#3");
    std::fs::write(&leftover, &blob[..blob.len() / 2]).unwrap();
    assert!(app.state.storage.list_keys().await.unwrap().iter().all(|k| !k.contains('#')), "never listed");

    let report = fsck::run(&app.state, false).await.unwrap();
    assert!(!report.is_clean(), "{report}");
    assert!(report.orphans.is_empty() && report.versions.is_empty(), "{report}");
    assert_eq!(report.staging.len(), 1, "{report}");
    assert_eq!(report.staging[0].key, "packages/alpha/alpha-2.0.0.tar.gz#3");
    assert_eq!(report.staging[0].state, OrphanState::Found);
    assert!(report
        .to_string()
        .contains("staging file packages/alpha/alpha-2.0.0.tar.gz#3: left by an interrupted write"));

    // A fresh one may be a write in progress: kept.
    let report = fsck::run(&app.state, true).await.unwrap();
    assert!(matches!(report.staging[0].state, OrphanState::TooRecent { .. }), "{report}");
    assert!(leftover.exists());

    backdate_all(&storage_dir);
    let report = fsck::run(&app.state, true).await.unwrap();
    assert_eq!(report.staging[0].state, OrphanState::Removed, "{report}");
    assert!(report.is_clean(), "{report}");
    assert!(!leftover.exists(), "the staging file is deleted");
    assert_eq!(app.state.storage.get_bytes(&Storage::key("alpha", "1.0.0")).await.unwrap(), blob, "the blob stays");
    assert!(fsck::run(&app.state, false).await.unwrap().staging.is_empty());
}

#[tokio::test]
async fn fsck_repair_with_an_explicit_age_and_a_version_published_meanwhile() {
    let app = spawn().await;
    let token = register(&app, "alice").await;
    publish_package(&app, &token, "kept", "1.0.0").await;
    // Orphans under a package that exists, and under one that does not.
    let stray = Storage::key("kept", "9.9.9");
    app.state.storage.put(&stray, package("kept", "9.9.9").into()).await.unwrap();
    app.state.storage.put(&Storage::key("nobody", "0.1.0"), package("nobody", "0.1.0").into()).await.unwrap();
    let opts = fsck::Options { repair: true, orphan_min_age: Duration::ZERO };
    let report = fsck::run_with(&app.state, opts).await.unwrap();
    assert_eq!(report.orphans_removed(), 2, "{report}");
    assert!(report.is_clean(), "repaired orphans count as fixed:\n{report}");
    assert_eq!(app.state.storage.list_keys().await.unwrap(), ["packages/kept/kept-1.0.0.tar.gz"]);
    assert_eq!(versions_in_db(&app).await.len(), 1);
    let again = fsck::run(&app.state, false).await.unwrap();
    assert!(again.is_clean() && again.orphans.is_empty(), "{again}");
}

// ---------------------------------------------------------------------------------------------
// 2. Database outage (PostgreSQL behind a chaos proxy)
// ---------------------------------------------------------------------------------------------

/// The acquire timeout (1 s) plus slack for a loaded test machine.
const OUTAGE_ANSWER_WITHIN: Duration = Duration::from_millis(3500);

#[tokio::test]
async fn a_database_outage_is_503_while_downloads_keep_working_and_everything_recovers() {
    if !common::needs_postgres(
        "reliability::a_database_outage_is_503_while_downloads_keep_working_and_everything_recovers",
    ) {
        return;
    }
    let (app, proxy) = spawn_behind_proxy().await;
    let token = register(&app, "alice").await;
    let bytes = publish_package(&app, &token, "steady", "1.0.0").await;
    let sha = sha256_hex(&bytes);

    proxy.cut();

    // Reads and writes: 503 service_unavailable with Retry-After, within the acquire timeout.
    let timed = |what: &'static str, started: Instant| {
        let took = started.elapsed();
        assert!(took < OUTAGE_ANSWER_WITHIN, "{what} took {took:?} during the outage");
    };
    let t = Instant::now();
    let res = app.client.get(app.url("/api/v1/packages/steady")).send().await.unwrap();
    timed("GET package", t);
    expect_error(res, 503, "service_unavailable").await;
    let t = Instant::now();
    let res = app.client.get(app.url("/api/v1/packages/steady/1.0.0")).send().await.unwrap();
    timed("GET version", t);
    expect_error(res, 503, "service_unavailable").await;
    let t = Instant::now();
    let res = register_request(&app, "bob").send().await.unwrap();
    timed("register", t);
    expect_error(res, 503, "service_unavailable").await;
    let t = Instant::now();
    let res = publish_at(&app.client, &app.base, &token, "steady", "1.0.1", package("steady", "1.0.1")).await.unwrap();
    timed("publish", t);
    expect_error(res, 503, "service_unavailable").await;
    assert!(
        app.state.storage.size(&Storage::key("steady", "1.0.1")).await.is_err(),
        "a refused publish stores no blob"
    );

    // GraphQL: a query and a mutation fail with SERVICE_UNAVAILABLE, never a 500.
    for (doc, vars) in [
        ("query($n: String!) { package(name: $n) { name } }", json!({"n": "steady"})),
        (
            "mutation($i: RegisterInput!) { register(input: $i) { token } }",
            json!({"i": registration("carol", "carol@example.com", PASSWORD)}),
        ),
    ] {
        let t = Instant::now();
        let res =
            app.client.post(app.url("/graphql")).json(&json!({"query": doc, "variables": vars})).send().await.unwrap();
        timed("GraphQL", t);
        assert_ne!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "SERVICE_UNAVAILABLE", "{doc}: {body}");
    }

    // Probes.
    assert_eq!(app.client.get(app.url("/health")).send().await.unwrap().status(), 200);
    let res = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(res.status(), 503);

    // Downloads stream straight from storage and are counted in memory.
    for _ in 0..3 {
        let t = Instant::now();
        let res = app.client.get(app.url(&download_path("steady", "1.0.0"))).send().await.unwrap();
        timed("download", t);
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"], "application/gzip");
        assert_eq!(res.headers()["content-length"], bytes.len().to_string().as_str());
        assert_eq!(res.headers()["content-disposition"], "attachment; filename=\"steady-1.0.0.tar.gz\"");
        assert!(res.headers().get("etag").is_none(), "no checksum without the database, so no ETag");
        let body = res.bytes().await.unwrap();
        assert_eq!(sha256_hex(&body), sha, "the stored bytes are served");
    }
    let res = app.client.head(app.url(&download_path("steady", "1.0.0"))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "HEAD works too (and is not counted)");
    assert_eq!(app.state.downloads.pending_total(), 3, "three complete downloads wait in memory");
    // A version with no blob cannot be told apart from a lost row without the database: 503.
    let res = app.client.get(app.url(&download_path("steady", "7.7.7"))).send().await.unwrap();
    expect_error(res, 503, "service_unavailable").await;
    // A malformed name is refused before the database or storage is asked.
    let res = app.client.get(app.url(&download_path("Not_A_Name", "1.0.0"))).send().await.unwrap();
    expect_error(res, 400, "invalid_request").await;

    // Restore: everything recovers without a restart, and the periodic flusher writes the counts.
    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.client.get(app.url("/ready")).send().await.unwrap().status() != 200 {
        assert!(Instant::now() < deadline, "/ready recovers without a restart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let res = app.client.get(app.url(&download_path("steady", "1.0.0"))).send().await.unwrap();
    assert_eq!(res.headers()["etag"], format!("\"{sha}\"").as_str(), "verified downloads again");
    res.bytes().await.unwrap();
    publish_package(&app, &token, "steady", "1.0.1").await;
    register(&app, "bob").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let p = get_ok(&app, "/api/v1/packages/steady").await;
        if p["downloads_total"] == json!(4) {
            assert_eq!(p["versions"], json!(["1.0.0", "1.0.1"]));
            break;
        }
        assert!(Instant::now() < deadline, "the outage's downloads were flushed: {p}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(app.state.downloads.pending_total(), 0);
    let gql = app.gql("{ package(name: \"steady\") { name } }", json!({}), None).await;
    assert_eq!(gql["data"]["package"]["name"], "steady", "{gql}");
}

// ---------------------------------------------------------------------------------------------
// 3. Storage faults
// ---------------------------------------------------------------------------------------------

/// Makes the local storage directory refuse new blobs and returns how. A read-only directory does
/// not stop root, so when the tests run as root a regular file takes the place of the `packages`
/// directory instead: creating the blob's parent directory then fails.
fn make_storage_unwritable(storage: &Path) -> &'static str {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(storage, std::fs::Permissions::from_mode(0o555)).unwrap();
    let probe = storage.join("write-probe");
    if std::fs::create_dir(&probe).is_err() {
        return "read-only directory";
    }
    std::fs::remove_dir(&probe).unwrap();
    std::fs::set_permissions(storage, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(!storage.join("packages").exists(), "no blob was stored yet");
    std::fs::write(storage.join("packages"), b"not a directory").unwrap();
    "a file where the packages directory goes"
}

fn make_storage_writable(storage: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(storage, std::fs::Permissions::from_mode(0o755)).unwrap();
    if storage.join("packages").is_file() {
        std::fs::remove_file(storage.join("packages")).unwrap();
    }
}

#[tokio::test]
async fn unwritable_storage_makes_publish_503_and_writes_no_row() {
    let storage_dir = tempfile::tempdir().unwrap();
    let path = storage_dir.path().join("blobs");
    let app = spawn_with(|c| c.storage_path = Some(path.clone())).await;
    let token = register(&app, "alice").await;
    let audit_before = entity::audit_log::Entity::find().count(&app.state.db).await.unwrap();
    let how = make_storage_unwritable(&path);

    let res = publish_at(&app.client, &app.base, &token, "stuck", "1.0.0", package("stuck", "1.0.0")).await.unwrap();
    expect_error(res, 503, "service_unavailable").await;
    assert_eq!(entity::packages::Entity::find().count(&app.state.db).await.unwrap(), 0, "{how}: no package row");
    assert_eq!(entity::versions::Entity::find().count(&app.state.db).await.unwrap(), 0, "{how}: no version row");
    let audit_after = entity::audit_log::Entity::find().count(&app.state.db).await.unwrap();
    assert_eq!(audit_after, audit_before, "{how}: no audit row");
    make_storage_writable(&path);
    assert!(app.state.storage.list_keys().await.unwrap().is_empty(), "{how}: no blob");

    // Recovers as soon as the storage does.
    publish_package(&app, &token, "stuck", "1.0.0").await;
    assert_eq!(versions_in_db(&app).await.len(), 1);
    assert!(fsck::run(&app.state, false).await.unwrap().is_clean());
}

#[tokio::test]
async fn a_missing_blob_is_refused_and_logged() {
    // #[tokio::test] runs the server on this thread, so a thread-local subscriber sees its logs.
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = spawn().await;
    let token = register(&app, "alice").await;
    publish_package(&app, &token, "vanished", "1.0.0").await;
    app.state.storage.delete(&Storage::key("vanished", "1.0.0")).await.unwrap();

    let res = app.client.get(app.url(&download_path("vanished", "1.0.0"))).send().await.unwrap();
    let body = expect_error(res, 500, "internal_error").await;
    assert!(!body["message"].as_str().unwrap().contains("packages/"), "details stay in the logs: {body}");
    let res = app.client.head(app.url(&download_path("vanished", "1.0.0"))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let logged = capture.text();
    assert!(
        logged.contains("blob missing for a recorded version")
            && logged.contains("packages/vanished/vanished-1.0.0.tar.gz"),
        "the missing blob is logged:\n{logged}"
    );
    app.state.downloads.flush(&app.state.db, &app.state.generation).await.unwrap();
    let p = get_ok(&app, "/api/v1/packages/vanished").await;
    assert_eq!(p["downloads_total"], json!(0), "a refused download is not counted");
    // The version itself is still there: nothing was deleted.
    assert_eq!(get_ok(&app, "/api/v1/packages/vanished/1.0.0").await["version"], "1.0.0");
}

// ---------------------------------------------------------------------------------------------
// 4. Graceful shutdown
// ---------------------------------------------------------------------------------------------

/// Size of the tarballs downloaded during shutdown: bigger than what loopback socket buffers
/// hold, so the server cannot finish sending until the client reads.
const BIG: usize = 12 * 1024 * 1024;

#[tokio::test]
async fn stopping_with_downloads_in_flight_completes_them_and_flushes_the_counts() {
    let app = spawn().await;
    let token = register(&app, "alice").await;
    let bytes = big_package("heavy", "1.0.0", BIG, 7);
    publish_ok(&app, &token, "heavy", "1.0.0", bytes.clone()).await;

    // Eight downloads whose headers have arrived, bodies not read yet.
    const N: usize = 8;
    let mut in_flight = Vec::new();
    for _ in 0..N {
        let client = reqwest::Client::new();
        let res = client.get(app.url(&download_path("heavy", "1.0.0"))).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        in_flight.push(res);
    }
    let addr = app.addr;
    let stopping = tokio::spawn(app.stop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!stopping.is_finished(), "the server waits for the downloads in flight");
    // New connections are refused once shutdown has begun.
    let fresh = reqwest::Client::new().get(format!("http://{addr}/health")).send().await;
    assert!(fresh.is_err(), "a new connection is refused during shutdown: {fresh:?}");

    let bodies = futures::future::join_all(in_flight.into_iter().map(|r| r.bytes())).await;
    for body in bodies {
        assert_eq!(sha256_hex(&body.expect("the download completes")), sha256_hex(&bytes));
    }
    let (cfg, pg, dir) = tokio::time::timeout(Duration::from_secs(30), stopping).await.expect("stops").unwrap();

    // Restarted on the same data: the counts were flushed at shutdown.
    let app = common::start(cfg, pg, dir).await;
    let p = get_ok(&app, "/api/v1/packages/heavy").await;
    assert_eq!(p["downloads_total"], json!(N), "{p}");
    assert_eq!(get_ok(&app, "/api/v1/packages/heavy/stats").await["downloads"]["total"], json!(N));
}

/// The real binary as a child process on its own data directory: the testkit's `ServerProcess`
/// (the harness the load benchmark uses too), plus what the tests here need to restart it and to
/// run `fsck` on its data.
struct Server {
    process: ServerProcess,
    base: String,
    data_dir: PathBuf,
    database_url: Option<String>,
}

impl Server {
    async fn start(data_dir: &Path, database_url: Option<&str>, log_dir: &Path) -> Server {
        let port = free_port();
        let log = log_dir.join(format!("server-{port}.log"));
        let mut env = process::base_env(data_dir, port, database_url);
        env.push(("RUST_LOG".to_owned(), "info".to_owned()));
        let cmd = process::command(BIN, &env, Inherit::Nothing);
        let process = tokio::task::spawn_blocking(move || ServerProcess::start(cmd, port, log))
            .await
            .expect("the start-up thread")
            .unwrap_or_else(|e| panic!("the server did not start: {e}"));
        Server {
            base: process.base(),
            process,
            data_dir: data_dir.to_path_buf(),
            database_url: database_url.map(str::to_owned),
        }
    }

    fn signal(&self, sig: &str) {
        self.process.signal(sig).unwrap();
    }

    fn fsck(&self, repair: bool) -> std::process::Output {
        let args: &[&str] = if repair { &["fsck", "--repair"] } else { &["fsck"] };
        run_cli(&self.data_dir, self.database_url.as_deref(), args)
    }
}

/// `server.child`, `server.log_text()`: the process's. Dropping the server kills the process.
impl std::ops::Deref for Server {
    type Target = ServerProcess;
    fn deref(&self) -> &ServerProcess {
        &self.process
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut ServerProcess {
        &mut self.process
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_downloads_completes_them_flushes_and_exits_zero() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let pg = if common::on_postgres() { Some(common::PgDatabase::create().await) } else { None };
    let db_url = pg.as_ref().map(|p| p.url.clone());
    let mut server = Server::start(data.path(), db_url.as_deref(), logs.path()).await;
    let client = reqwest::Client::new();
    let token = register_at(&client, &server.base, "alice").await;
    let bytes = big_package("heavy", "1.0.0", BIG, 11);
    let res = publish_at(&client, &server.base, &token, "heavy", "1.0.0", bytes.clone()).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);

    const N: usize = 4;
    let mut in_flight = Vec::new();
    for _ in 0..N {
        let res = reqwest::Client::new()
            .get(format!("{}{}", server.base, download_path("heavy", "1.0.0")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        in_flight.push(res);
    }
    server.signal("TERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(server.child.try_wait().unwrap().is_none(), "the server waits for the downloads in flight");
    let fresh = reqwest::Client::new().get(format!("{}/health", server.base)).send().await;
    assert!(fresh.is_err(), "new connections are refused after SIGTERM: {fresh:?}");
    for res in in_flight {
        assert_eq!(sha256_hex(&res.bytes().await.expect("the download completes")), sha256_hex(&bytes));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server exits after SIGTERM:\n{}", server.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit code 0 after SIGTERM ({status}):\n{}", server.log_text());
    assert!(server.log_text().contains("shut down cleanly"), "{}", server.log_text());

    let server = Server::start(data.path(), db_url.as_deref(), logs.path()).await;
    let p: Value =
        client.get(format!("{}/api/v1/packages/heavy", server.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(p["downloads_total"], json!(N), "counted downloads were flushed at shutdown: {p}");
    drop(server);
    drop(pg);
}

// ---------------------------------------------------------------------------------------------
// 5. Concurrent writers
// ---------------------------------------------------------------------------------------------

/// One request's outcome: what it was, its status, whether it carried Retry-After.
#[derive(Debug)]
struct Outcome {
    what: String,
    status: StatusCode,
    retry_after: bool,
}

async fn outcome(what: String, res: reqwest::Response) -> Outcome {
    let status = res.status();
    let retry_after = res.headers().contains_key("retry-after");
    let _ = res.bytes().await;
    Outcome { what, status, retry_after }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_writers_and_readers_never_see_a_500() {
    // Written for SQLite's single writer; PostgreSQL runs it too (no 500 there either).
    let app = spawn().await;
    let mut tokens = Vec::new();
    for i in 0..4 {
        tokens.push(register(&app, &format!("writer{i}")).await);
    }
    register(&app, "helper").await;
    // Each writer's package exists before the storm, so owner changes and yanks have a target.
    for i in 0..16 {
        publish_package(&app, &tokens[i % 4], &format!("pkg{i}"), "0.1.0").await;
    }

    const VERSIONS: usize = 4;
    let writers = (0..16).map(|i| {
        let (client, base, token) = (app.client.clone(), app.base.clone(), tokens[i % 4].clone());
        tokio::spawn(async move {
            let name = format!("pkg{i}");
            let mut out = Vec::new();
            let mut published = Vec::new();
            // A brand-new package first: the package row, its owner and the search index in one go.
            let fresh = format!("new{i}");
            let res = publish_at(&client, &base, &token, &fresh, "1.0.0", package(&fresh, "1.0.0")).await.unwrap();
            if res.status() == StatusCode::CREATED {
                published.push((fresh.clone(), "1.0.0".to_owned()));
            }
            out.push(outcome(format!("publish {fresh} 1.0.0"), res).await);
            for k in 0..VERSIONS {
                let version = format!("1.0.{k}");
                let res = publish_at(&client, &base, &token, &name, &version, package(&name, &version)).await.unwrap();
                if res.status() == StatusCode::CREATED {
                    published.push((name.clone(), version.clone()));
                }
                out.push(outcome(format!("publish {name} {version}"), res).await);
                // A yank of the version just published, and an owner change, in between.
                let res = client
                    .delete(format!("{base}/api/v1/packages/{name}/0.1.0"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                out.push(outcome(format!("yank {name} 0.1.0"), res).await);
                let role = if k % 2 == 0 { "maintainer" } else { "owner" };
                let res = client
                    .put(format!("{base}/api/v1/packages/{name}/owners"))
                    .bearer_auth(&token)
                    .json(&json!({"username": "helper", "role": role}))
                    .send()
                    .await
                    .unwrap();
                out.push(outcome(format!("owner {name} helper {role}"), res).await);
                let res = client
                    .put(format!("{base}/api/v1/packages/{name}/0.1.0/unyank"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                out.push(outcome(format!("unyank {name} 0.1.0"), res).await);
            }
            (published, out)
        })
    });
    let writers: Vec<_> = writers.collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|r| {
            let (client, base, stop) = (app.client.clone(), app.base.clone(), stop.clone());
            tokio::spawn(async move {
                let mut out = Vec::new();
                let mut n = 0usize;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let name = format!("pkg{}", (n + r) % 16);
                    let res = match n % 4 {
                        0 => client.get(format!("{base}/api/v1/packages/{name}")).send().await.unwrap(),
                        1 => client.get(format!("{base}/api/v1/search?q=pkg")).send().await.unwrap(),
                        2 => client
                            .post(format!("{base}/graphql"))
                            .json(&json!({"query": format!("{{ package(name: \"{name}\") {{ name versions {{ version }} }} }}")}))
                            .send()
                            .await
                            .unwrap(),
                        _ => client.get(format!("{base}/api/v1/packages/{name}/0.1.0/download")).send().await.unwrap(),
                    };
                    out.push(outcome(format!("read {n}"), res).await);
                    n += 1;
                }
                out
            })
        })
        .collect();

    let mut outcomes = Vec::new();
    let mut published = Vec::new();
    for w in writers {
        let (versions, out) = w.await.unwrap();
        published.extend(versions);
        outcomes.extend(out);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut reads = 0;
    for r in readers {
        let out = r.await.unwrap();
        reads += out.len();
        outcomes.extend(out);
    }
    assert!(reads > 0, "the readers ran");
    for o in &outcomes {
        assert_ne!(o.status, StatusCode::INTERNAL_SERVER_ERROR, "{o:?}");
        if o.status == StatusCode::SERVICE_UNAVAILABLE {
            assert!(o.retry_after, "a 503 carries Retry-After: {o:?}");
        } else {
            assert!(o.status.is_success(), "only success or 503 under contention: {o:?}");
        }
    }
    let busy = outcomes.iter().filter(|o| o.status == StatusCode::SERVICE_UNAVAILABLE).count();
    let busy_what: Vec<&str> =
        outcomes.iter().filter(|o| o.status == StatusCode::SERVICE_UNAVAILABLE).map(|o| o.what.as_str()).collect();
    eprintln!("{} requests ({reads} reads), {busy} answered 503: {busy_what:?}", outcomes.len());

    // Consistency: one row per successful publish (plus the 16 first versions), each with its blob.
    let rows = versions_in_db(&app).await;
    assert_eq!(rows.len(), 16 + published.len(), "{} publishes succeeded", published.len());
    let attempted = outcomes.iter().filter(|o| o.what.starts_with("publish ")).count();
    assert_eq!(attempted, 16 * (VERSIONS + 1));
    assert!(published.len() >= attempted / 2, "most publishes succeed: {} of {attempted}", published.len());
    let report = fsck::run(&app.state, false).await.unwrap();
    assert!(report.is_clean() && report.orphans.is_empty(), "{report}");
    for (name, version) in &published {
        let v = get_ok(&app, &format!("/api/v1/packages/{name}/{version}")).await;
        assert_eq!(v["checksum"], format!("sha256:{}", sha256_hex(&package(name, version))), "{name} {version}");
    }
    for i in 0..16 {
        let owners = get_ok(&app, &format!("/api/v1/packages/pkg{i}/owners")).await;
        let names: Vec<&str> =
            owners["owners"].as_array().unwrap().iter().map(|o| o["username"].as_str().unwrap()).collect();
        let added = outcomes.iter().any(|o| o.what.starts_with(&format!("owner pkg{i} ")) && o.status.is_success());
        assert_eq!(names.contains(&"helper"), added, "pkg{i}: {owners}");
        let yanked = get_ok(&app, &format!("/api/v1/packages/pkg{i}/0.1.0")).await["yanked"].clone();
        let last_yank = outcomes
            .iter()
            .rev()
            .find(|o| o.what.ends_with(&format!("yank pkg{i} 0.1.0")) && o.status.is_success())
            .map(|o| o.what.starts_with("yank"));
        assert_eq!(yanked, json!(last_yank.unwrap_or(false)), "pkg{i}: the last successful (un)yank wins");
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Crash consistency
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_concurrent_publishes_loses_and_corrupts_nothing() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let pg = if common::on_postgres() { Some(common::PgDatabase::create().await) } else { None };
    let db_url = pg.as_ref().map(|p| p.url.clone());
    let mut server = Server::start(data.path(), db_url.as_deref(), logs.path()).await;
    let client = reqwest::Client::new();
    let token = register_at(&client, &server.base, "alice").await;

    // Six publishers, each a stream of versions of its own package, ~256 KiB each.
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, String, String)>::new()));
    let publishers: Vec<_> = (0..6)
        .map(|p| {
            let (client, base, token, acked) =
                (client.clone(), server.base.clone(), token.clone(), acknowledged.clone());
            tokio::spawn(async move {
                let name = format!("crash{p}");
                for k in 0..1000u64 {
                    let version = format!("1.0.{k}");
                    let bytes = big_package(&name, &version, 256 * 1024, p * 1000 + k + 1);
                    let sha = sha256_hex(&bytes);
                    // A client honours 503 + Retry-After (SQLite answers so under write contention).
                    let mut attempt = 0;
                    let sent = loop {
                        let sent = publish_at(&client, &base, &token, &name, &version, bytes.clone()).await;
                        match &sent {
                            Ok(res) if res.status() == StatusCode::SERVICE_UNAVAILABLE && attempt < 20 => {
                                assert!(res.headers().contains_key("retry-after"));
                                attempt += 1;
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                            _ => break sent,
                        }
                    };
                    match sent {
                        Ok(res) if res.status() == StatusCode::CREATED => {
                            let body: Value = res.json().await.unwrap();
                            assert_eq!(body["checksum"], format!("sha256:{sha}"));
                            acked.lock().unwrap().push((name.clone(), version, sha));
                        }
                        Ok(res) => {
                            let status = res.status();
                            return Some(format!(
                                "publish {name} {version}: {status} {}",
                                res.text().await.unwrap_or_default()
                            ));
                        }
                        Err(_) => return None, // the server is gone
                    }
                }
                None
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().unwrap().len() < 20 {
        assert!(Instant::now() < deadline, "publishes are slow:\n{}", server.log_text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.child.kill().unwrap(); // SIGKILL, mid-stream
    let status = server.child.wait().unwrap();
    assert!(!status.success(), "killed: {status}");
    for p in publishers {
        if let Some(refused) = p.await.expect("publisher") {
            panic!("{refused}\n{}", server.log_text());
        }
    }
    let acked = acknowledged.lock().unwrap().clone();

    // Before any restart: every row has its intact blob; at most orphans are left.
    let out = server.fsck(false);
    let printed = stdout_of(&out);
    assert!(
        !printed.lines().any(|l| l.starts_with("version ")),
        "no version lost its blob or was corrupted:\n{printed}"
    );
    assert!(
        printed.contains("0 missing, 0 corrupt, 0 unreadable"),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // No half-written blob is visible: every orphan is a complete, valid package.
    let mut cfg = common::base_config(data.path());
    cfg.database_url = db_url.clone();
    let storage = Storage::from_config(&cfg).unwrap();
    let orphan_lines: Vec<&str> = printed.lines().filter(|l| l.starts_with("orphan blob ")).collect();
    for line in &orphan_lines {
        let key = line.trim_start_matches("orphan blob ").split(':').next().unwrap();
        let bytes = storage.get_bytes(&object_store::path::Path::parse(key).unwrap()).await.unwrap();
        raven_registry::domain::inspect_tarball(bytes.as_ref(), &Default::default())
            .unwrap_or_else(|e| panic!("orphan {key} is not a complete package: {e}"));
    }
    // A write cut mid-way leaves a staging file (never listed as a blob); fsck reports it too.
    let staging_lines: Vec<&str> = printed.lines().filter(|l| l.starts_with("staging file ")).collect();
    assert_eq!(out.status.success(), orphan_lines.is_empty() && staging_lines.is_empty(), "{printed}");
    eprintln!(
        "{} publishes acknowledged before SIGKILL; {} orphan blobs, {} staging files",
        acked.len(),
        orphan_lines.len(),
        staging_lines.len()
    );

    // Orphans left by the crash are old by the time an operator repairs (backdated here).
    backdate_all(&cfg.storage_path());
    let out = server.fsck(true);
    assert!(out.status.success(), "fsck --repair leaves nothing:\n{}", stdout_of(&out));
    assert_eq!(
        stdout_of(&out).matches(": deleted").count(),
        orphan_lines.len() + staging_lines.len(),
        "{}",
        stdout_of(&out)
    );
    let out = server.fsck(false);
    assert!(out.status.success(), "{}", stdout_of(&out));
    assert!(stdout_of(&out).contains("0 orphan blobs"), "{}", stdout_of(&out));
    assert!(stdout_of(&out).contains("0 staging files"), "{}", stdout_of(&out));

    // Restart: every acknowledged publish is there, downloadable with its recorded sha256.
    let server = Server::start(data.path(), db_url.as_deref(), logs.path()).await;
    for (name, version, sha) in &acked {
        let v: Value = client
            .get(format!("{}/api/v1/packages/{name}/{version}", server.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["checksum"], format!("sha256:{sha}"), "{name} {version} survived the crash");
        let res = client.get(format!("{}{}", server.base, download_path(name, version))).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(&sha256_hex(&res.bytes().await.unwrap()), sha);
    }
    // The interrupted streams continue where they stopped.
    let next = format!("1.0.{}", acked.iter().filter(|a| a.0 == "crash0").count() + 5);
    let res = publish_at(&client, &server.base, &token, "crash0", &next, package("crash0", &next)).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    drop(server);
    drop(pg);
}

// ---------------------------------------------------------------------------------------------
// 7. Parsers never panic on arbitrary bytes (deterministic, runs on stable; `fuzz/` has the
//    coverage-guided cargo-fuzz targets for the same entry points)
// ---------------------------------------------------------------------------------------------

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = (self.next() % (max as u64 + 1)) as usize;
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// `base` with a few bytes overwritten, inserted or cut off.
    fn mutate(&mut self, base: &[u8]) -> Vec<u8> {
        let mut out = base.to_vec();
        for _ in 0..=(self.next() % 8) {
            if out.is_empty() {
                break;
            }
            let at = (self.next() as usize) % out.len();
            match self.next() % 4 {
                0 => out[at] = self.next() as u8,
                1 => out.insert(at, self.next() as u8),
                2 => out.truncate(at),
                _ => out[at] ^= 1 << (self.next() % 8),
            }
        }
        out
    }
}

fn fuzz_one(input: &[u8]) {
    use raven_registry::domain::{
        inspect_tarball, Email, Manifest, PackageName, PackageVersion, TarballLimits, Username,
    };
    let _ = inspect_tarball(input, &TarballLimits::default());
    let text = String::from_utf8_lossy(input);
    let _ = Manifest::parse(&text);
    let _ = PackageName::parse(&text);
    let _ = PackageVersion::parse(&text);
    let _ = Username::parse(&text);
    let _ = Email::parse(&text);
    let _ = raven_registry::graphql::cursor::decode(&text);
}

#[test]
fn parsers_never_panic_on_random_bytes() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let valid_tarball = package("seed", "1.0.0");
    let valid_tar = common::tarballs::tar_bytes(&[file("raven.toml", manifest("seed", "1.0.0"))]);
    let valid_manifest = common::tarballs::manifest_with(
        "seed",
        "1.0.0-beta.1+build.5",
        "description = \"d\"\nlicense = \"MIT\"\nkeywords = [\"a\"]",
        "other = \"^1.0\"",
    );
    let valid_cursor = raven_registry::graphql::cursor::encode(42);
    let seeds: [&[u8]; 6] = [
        &valid_tarball,
        &valid_tar,
        valid_manifest.as_bytes(),
        valid_cursor.as_bytes(),
        b"my-package",
        b"alice@example.com",
    ];
    for i in 0..20_000 {
        let input = if i % 4 == 0 { rng.bytes(256) } else { rng.mutate(seeds[(i / 4) % seeds.len()]) };
        fuzz_one(&input);
    }
    // Gzip-wrapped random tar data reaches the tar parser rather than stopping at the magic bytes.
    for _ in 0..2_000 {
        let tar = rng.mutate(&valid_tar);
        fuzz_one(&common::tarballs::gzip(&tar));
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile GraphQL documents against the real binary: refused before execution, memory flat
// ---------------------------------------------------------------------------------------------

/// Peak resident set of a process, in KiB (VmHWM of /proc/PID/status).
fn peak_rss_kib(pid: u32) -> u64 {
    process::read_status(pid, "VmHWM:").expect("VmHWM in /proc/PID/status")
}

/// A Prometheus counter's value (0 when it has no sample yet).
fn counter(metrics: &str, series: &str) -> f64 {
    metrics.lines().find_map(|l| l.strip_prefix(series)?.trim().parse().ok()).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_graphql_documents_are_refused_before_execution_and_memory_stays_flat() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    // Not a database matter: the binary runs on its default SQLite file.
    let server = Server::start(data.path(), None, logs.path()).await;
    let client = reqwest::Client::new();
    let gql = format!("{}/graphql", server.base);
    let metrics =
        || async { client.get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap() };
    // Warm: a real query has run, so allocator arenas and caches exist before the baseline.
    for _ in 0..4 {
        let body: Value = client
            .post(&gql)
            .json(&json!({"query": "{ stats { totalPackages } }"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["data"]["stats"]["totalPackages"], 0, "{body}");
    }
    let idle = peak_rss_kib(server.child.id());
    let executed = |m: &str| -> f64 {
        m.lines()
            .filter(|l| l.starts_with("raven_graphql_operations_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let executed_before = executed(&metrics().await);
    assert_eq!(executed_before, 4.0);

    let alias_flood = |n: usize| aliases(n, "__typename");
    let documents = [
        (fan_out(30, "__typename"), "QUERY_TOO_COMPLEX"),
        (fan_out(24, "stats { totalPackages }"), "QUERY_TOO_COMPLEX"),
        (alias_flood(3_000), "QUERY_TOO_COMPLEX"),
        (alias_flood(20_000), "QUERY_TOO_LARGE"),
        (alias_flood(200_000), "PAYLOAD_TOO_LARGE"),
    ];
    // Four at a time, as the attack was run.
    for (document, expected) in &documents {
        let body = json!({ "query": document }).to_string();
        let sends =
            (0..4).map(|_| client.post(&gql).header("content-type", "application/json").body(body.clone()).send());
        for res in futures::future::join_all(sends).await {
            let res = res.unwrap();
            let status = res.status();
            let body: Value = res.json().await.unwrap();
            let code = body["errors"][0]["extensions"]["code"].as_str().unwrap_or_default().to_owned();
            let status_ok = if *expected == "PAYLOAD_TOO_LARGE" { status == 413 } else { status == 400 };
            assert!(code == *expected && status_ok, "{status} {body}");
        }
    }
    // The reported flood: 2.2 M aliases in a 45 MB body, streamed. Answered (413) or cut off while
    // sending; either way the server never holds it.
    let flood = alias_flood(2_200_000);
    let sent = client
        .post(&gql)
        .header("content-type", "application/json")
        .body(json!({ "query": flood }).to_string())
        .send()
        .await;
    if let Ok(res) = sent {
        assert_eq!(res.status(), 413);
    }
    let after = metrics().await;
    let peak = peak_rss_kib(server.child.id());
    eprintln!("VmHWM idle {idle} KiB, after the hostile documents {peak} KiB");
    assert!(
        peak <= idle + 50 * 1024,
        "peak RSS grew from {idle} KiB to {peak} KiB under hostile documents:\n{}",
        server.log_text()
    );
    // Nothing executed, and every document was counted as refused.
    assert_eq!(executed(&after), executed_before, "{after}");
    assert_eq!(counter(&after, "raven_graphql_refused_total{reason=\"too_complex\"}"), 12.0, "{after}");
    assert_eq!(counter(&after, "raven_graphql_refused_total{reason=\"too_large\"}"), 4.0, "{after}");
}

// ---------------------------------------------------------------------------------------------
// 8. Slow clients: head and body timeouts, the connection cap
// ---------------------------------------------------------------------------------------------

/// Short timeouts, so that the tests below wait seconds rather than the defaults' tens of seconds.
fn impatient(c: &mut raven_registry::Config) {
    c.http_header_timeout_secs = 1;
    c.http_body_idle_timeout_secs = 1;
}

/// A connection that sent `bytes` and then nothing.
fn stalled(addr: std::net::SocketAddr, bytes: &[u8]) -> std::net::TcpStream {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(bytes).unwrap();
    s
}

/// Whether the server has closed `s` (end of stream or reset), without waiting.
fn closed_now(s: &std::net::TcpStream) -> bool {
    use std::io::Read;
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match (&*s).read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue, // a response the server wrote before closing
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    s.set_nonblocking(false).unwrap();
    closed
}

/// Reads `s` to its end; what the server sent before closing. The read timeout only keeps a broken
/// server from hanging the test: the assertion is that the stream ends.
fn read_until_closed(s: &std::net::TcpStream) -> Vec<u8> {
    use std::io::Read;
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match (&*s).read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                panic!("the server kept the connection open; it had sent {} bytes", out.len())
            }
            Err(_) => return out, // reset
        }
    }
}

const HALF_HEAD: &[u8] = b"GET /health HTTP/1.1\r\nHost: registry\r\nUser-Agent: slow";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_never_finish_their_request_head_are_closed() {
    let app = spawn_with(impatient).await;
    let addr = app.addr;
    let conns = tokio::task::spawn_blocking(move || {
        let mut conns: Vec<(&str, std::net::TcpStream)> =
            (0..50).map(|_| ("half a head", stalled(addr, HALF_HEAD))).collect();
        // Nothing at all, and half an HTTP/2 preface: hyper's HTTP/1 timer does not run before
        // the protocol is known, the server's idle watch does.
        conns.push(("nothing", stalled(addr, b"")));
        conns.push(("half an HTTP/2 preface", stalled(addr, b"PRI * HTTP/2.0\r\n")));
        // A complete request, then an idle keep-alive connection.
        conns.push(("idle keep-alive", stalled(addr, b"GET /health HTTP/1.1\r\nHost: registry\r\n\r\n")));
        for (what, c) in &conns {
            let sent = read_until_closed(c);
            if *what == "idle keep-alive" {
                assert!(sent.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&sent));
            } else {
                assert!(!sent.starts_with(b"HTTP/1.1 200"), "{what}: {}", String::from_utf8_lossy(&sent));
            }
        }
        conns.len()
    })
    .await
    .unwrap();
    assert_eq!(conns, 53);
    // And the server still answers.
    assert_eq!(app.client.get(app.url("/health")).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_max_connections_a_new_client_is_served_once_stalled_ones_time_out() {
    const K: usize = 4;
    let app = spawn_with(|c| {
        impatient(c);
        c.max_connections = K as u32;
    })
    .await;
    let addr = app.addr;
    let slow: Vec<std::net::TcpStream> =
        tokio::task::spawn_blocking(move || (0..K).map(|_| stalled(addr, HALF_HEAD)).collect()).await.unwrap();
    // Connections are accepted in the order they arrived, so the server holds the K stalled ones.
    // The (K+1)th connection waits in the listen backlog; its request is answered once a slot frees.
    let res = reqwest::Client::new().get(app.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let slow = tokio::task::spawn_blocking(move || {
        let closed = slow.iter().filter(|s| closed_now(s)).count();
        (closed, slow)
    });
    let (closed, slow) = slow.await.unwrap();
    assert!(closed >= 1, "the extra client was served while all {K} stalled connections held the slots");
    tokio::task::spawn_blocking(move || slow.iter().for_each(|s| drop(read_until_closed(s)))).await.unwrap();
    // Later clients get in as usual.
    for _ in 0..3 {
        assert_eq!(reqwest::Client::new().get(app.url("/health")).send().await.unwrap().status(), StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_request_body_fails_with_408_and_closes_the_connection() {
    let app = spawn_with(impatient).await;
    let addr = app.addr;
    tokio::task::spawn_blocking(move || {
        for (path, content_type, start, code) in [
            ("/api/v1/auth/login", "application/json", &b"{\"email\":\"a@example.com\","[..], "\"request_timeout\""),
            ("/graphql", "application/json", &b"{\"query\":\"{ stats { totalUsers"[..], "\"REQUEST_TIMEOUT\""),
            (
                "/api/v1/packages/publish",
                "multipart/form-data; boundary=XyZ",
                &b"--XyZ\r\nContent-Disposition: form-data; name=\"tarball\"; filename=\"p.tar.gz\"\r\n\r\n\x1f\x8b"[..],
                "",
            ),
        ] {
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: registry\r\nContent-Type: {content_type}\r\nContent-Length: 100000\r\n\r\n"
            );
            let mut request = head.into_bytes();
            request.extend_from_slice(start);
            let s = stalled(addr, &request);
            let answer = String::from_utf8_lossy(&read_until_closed(&s)).into_owned();
            if path == "/api/v1/packages/publish" {
                // Without a token the upload is refused before its body is read; either way the
                // connection does not stay open waiting for the rest.
                assert!(answer.starts_with("HTTP/1.1 4"), "{path}: {answer}");
            } else {
                assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
                assert!(answer.contains(code), "{path}: {answer}");
            }
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authenticated_upload_that_stalls_is_cut_and_stores_nothing() {
    let app = spawn_with(impatient).await;
    let token = register(&app, "slowpoke").await;
    let addr = app.addr;
    tokio::task::spawn_blocking(move || {
        let boundary = "XyZ";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"tarball\"; filename=\"p.tar.gz\"\r\n\
             Content-Type: application/gzip\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(&package("slowpoke", "1.0.0")[..64]);
        let head = format!(
            "POST /api/v1/packages/publish HTTP/1.1\r\nHost: registry\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 100000\r\n\r\n"
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(&body);
        let s = stalled(addr, &request);
        let answer = String::from_utf8_lossy(&read_until_closed(&s)).into_owned();
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("\"request_timeout\""), "{answer}");
    })
    .await
    .unwrap();
    assert!(versions_in_db(&app).await.is_empty(), "no version row");
    assert!(app.state.storage.list_keys().await.unwrap().is_empty(), "no blob");
}

/// `raven_http_timeouts_total{kind="write"}` as /metrics shows it (process-wide: read it before).
async fn write_timeouts(app: &TestApp) -> u64 {
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find(|l| l.starts_with("raven_http_timeouts_total{kind=\"write\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_its_download_is_disconnected() {
    let app = spawn_with(impatient).await;
    let token = register(&app, "alice").await;
    let bytes = big_package("heavy", "1.0.0", BIG, 13);
    publish_ok(&app, &token, "heavy", "1.0.0", bytes.clone()).await;
    let before = write_timeouts(&app).await;

    // A small receive buffer, the request, one read, then nothing.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(app.addr).await.unwrap().into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    let request = format!("GET {} HTTP/1.1\r\nHost: registry\r\n\r\n", download_path("heavy", "1.0.0"));
    let stream = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        (&stream).write_all(request.as_bytes()).unwrap();
        let mut head = [0u8; 1024];
        let n = (&stream).read(&mut head).unwrap();
        assert!(head[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head[..n]));
        stream
    })
    .await
    .unwrap();

    // The server gives up on the stalled write (observed through its own counter)...
    let deadline = Instant::now() + Duration::from_secs(60);
    while write_timeouts(&app).await <= before {
        assert!(Instant::now() < deadline, "the server never gave up on a client that reads nothing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ... and closed the connection: reading on gets what was buffered, then the end, short of the body.
    let rest = tokio::task::spawn_blocking(move || read_until_closed(&stream)).await.unwrap();
    assert!(rest.len() < bytes.len(), "the whole tarball arrived ({} bytes)", rest.len());
    // Nothing else was disturbed.
    assert_eq!(sha256_hex(&common::api::download(&app, "heavy", "1.0.0").await), sha256_hex(&bytes));
}
