//! A headless Chromium driven over WebDriver (chromedriver, W3C protocol over HTTP with reqwest),
//! with name resolution limited so that the browser can reach 127.0.0.1 and nothing else.
//!
//! `TEST_CHROMIUM` and `TEST_CHROMEDRIVER` name the binaries; when set they must work (CI sets
//! them, so the browser tests cannot silently skip there). Unset, `chromium` and `chromedriver` are
//! looked up in PATH, and a test without them is skipped.
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The binaries, or why there are none.
pub fn binaries() -> Result<(PathBuf, PathBuf), String> {
    let find = |var: &str, name: &str| -> Result<PathBuf, String> {
        if let Some(path) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            let path = PathBuf::from(path);
            assert!(path.is_file(), "{var}={} does not exist", path.display());
            return Ok(path);
        }
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| format!("{name} in PATH or {var} (Debian: apt-get install chromium chromium-driver)"))
    };
    Ok((find("TEST_CHROMIUM", "chromium")?, find("TEST_CHROMEDRIVER", "chromedriver")?))
}

/// A chromedriver process and one browser session. Dropping it ends the session (closing the
/// browser) and kills chromedriver, also when a test fails half-way.
pub struct Browser {
    base: String,
    session: String,
    http: reqwest::Client,
    driver: std::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start(chromium: &Path, chromedriver: &Path) -> Browser {
        let port = super::free_port();
        let driver = std::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Browser { base, session: String::new(), http, driver, _profile: profile };
        browser.wait_until_ready().await;
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            // Every host name fails to resolve: the page can load only what 127.0.0.1 serves.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1".to_owned(),
            format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
            // Console errors and Content-Security-Policy violations, read by `severe_logs`.
            "goog:loggingPrefs": { "browser": "ALL" },
        }}});
        let created = browser.call(reqwest::Method::POST, "/session", caps).await;
        browser.session = created["sessionId"].as_str().expect("a session id").to_owned();
        browser
    }

    async fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(res) = self.http.get(format!("{}/status", self.base)).send().await {
                if let Ok(body) = res.json::<Value>().await {
                    if body["value"]["ready"] == true {
                        return;
                    }
                }
            }
            if let Ok(Some(status)) = self.driver.try_wait() {
                panic!("chromedriver exited: {status}");
            }
            assert!(Instant::now() < deadline, "chromedriver did not become ready in 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One WebDriver command; panics on a WebDriver error. Returns its `value`.
    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let res = self.http.request(method, &url).json(&body).send().await.expect("chromedriver answers");
        let status = res.status();
        let body: Value = res.json().await.expect("a JSON answer");
        assert!(status.is_success(), "WebDriver {path}: {status} {body}");
        body["value"].clone()
    }

    async fn session_call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body).await
    }

    pub async fn goto(&self, url: &str) {
        self.session_call(reqwest::Method::POST, "/url", json!({ "url": url })).await;
    }

    /// Runs `script` (a function body) in the page and returns what it returns.
    pub async fn script(&self, script: &str, args: Value) -> Value {
        self.session_call(reqwest::Method::POST, "/execute/sync", json!({ "script": script, "args": args })).await
    }

    /// Polls `script` until it returns something other than null or false.
    pub async fn wait_for(&self, what: &str, script: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.script(script, json!([])).await;
            if !value.is_null() && value != false {
                return value;
            }
            assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the first element matching a CSS selector, as a user would (WebDriver element click).
    pub async fn click(&self, css: &str) {
        self.click_by("css selector", css).await
    }

    /// Clicks the first element found by a WebDriver locator strategy (`css selector`, `xpath`, ...).
    pub async fn click_by(&self, using: &str, value: &str) {
        let found =
            self.session_call(reqwest::Method::POST, "/element", json!({ "using": using, "value": value })).await;
        let id = found.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).expect("an element id");
        self.session_call(reqwest::Method::POST, &format!("/element/{id}/click"), json!({})).await;
    }

    /// The browser log entries of level SEVERE since the last call: failed loads, uncaught
    /// errors, Content-Security-Policy violations.
    pub async fn severe_logs(&self) -> Vec<String> {
        let entries = self.session_call(reqwest::Method::POST, "/se/log", json!({ "type": "browser" })).await;
        entries
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Drop cannot await: a plain HTTP/1.1 request ends the session, so that chromedriver
        // closes Chromium before it is killed itself (else Chromium would outlive the test).
        if !self.session.is_empty() {
            use std::io::{Read as _, Write as _};
            let addr = self.base.trim_start_matches("http://").to_owned();
            if let Ok(mut stream) = std::net::TcpStream::connect(&addr) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
                let request = format!(
                    "DELETE /session/{} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    self.session
                );
                let _ = stream.write_all(request.as_bytes());
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
