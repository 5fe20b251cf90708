//! A minimal W3C WebDriver client for headless Chromium: just what the browser tests need.
//! It talks to a `chromedriver` this process starts on a free loopback port, over plain
//! JSON (reqwest + serde_json). The driver and its browser die with the `Driver` value.
//!
//! Spec: <https://www.w3.org/TR/webdriver2/>. Every command answers `{"value": ...}`; an
//! error answers `{"value": {"error", "message"}}` with a 4xx/5xx status.

use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The key under which WebDriver returns an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running chromedriver. Dropping it kills chromedriver and every Chromium process it
/// started, also when a test panics half way.
pub struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
    /// Chromium's profile: fresh per driver, so no cookie survives from another test.
    profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Chromium does not exit when chromedriver does, but it stays in chromedriver's
        // process group (made its own at spawn), so the whole group goes at once.
        let pgid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) with a negative pid signals only the group we created.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Driver {
    /// Starts chromedriver and waits until it accepts sessions. Panics with a clear message
    /// when Chromium or chromedriver is not installed: the browser tests never skip.
    pub async fn start() -> Driver {
        use std::os::unix::process::CommandExt;
        for bin in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(bin).exists(),
                "{bin} is missing: the browser tests need the Debian packages chromium and \
                 chromium-driver (scripts/setup.sh installs them)"
            );
        }
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            profile: tempfile::tempdir().unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await;
            if let Ok(res) = ready
                && let Ok(v) = res.json::<Value>().await
                && v["value"]["ready"] == true
            {
                return driver;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A new headless Chromium window.
    pub async fn session(&self) -> Session {
        let profile = format!("--user-data-dir={}", self.profile.path().display());
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            // The test server's certificate is self-signed.
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--ignore-certificate-errors",
                    profile,
                ],
            },
        }}});
        let v = call(
            &self.http,
            reqwest::Method::POST,
            &format!("{}/session", self.base),
            Some(caps),
        )
        .await;
        let id = v["sessionId"].as_str().expect("a session id").to_string();
        Session {
            http: self.http.clone(),
            url: format!("{}/session/{id}", self.base),
        }
    }
}

/// One browser window. `quit` closes it; otherwise it goes with its `Driver`.
pub struct Session {
    http: reqwest::Client,
    url: String,
}

/// An element found on the current page.
pub struct Element(String);

impl Session {
    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        call(&self.http, method, &format!("{}{path}", self.url), body).await
    }

    /// Opens `url` and waits for its page load. Only loopback addresses: these tests must
    /// never send a browser to the internet.
    pub async fn goto(&self, url: &str) {
        let host = url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string));
        assert!(
            matches!(host.as_deref(), Some("127.0.0.1" | "localhost" | "[::1]")),
            "not a loopback URL: {url}"
        );
        self.cmd(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn current_url(&self) -> String {
        let v = self.cmd(reqwest::Method::GET, "/url", None).await;
        v.as_str().unwrap_or_default().to_string()
    }

    pub async fn source(&self) -> String {
        let v = self.cmd(reqwest::Method::GET, "/source", None).await;
        v.as_str().unwrap_or_default().to_string()
    }

    /// The cookies the browser holds for the current page's origin, as WebDriver cookie
    /// objects (`name`, `value`, `secure`, `httpOnly`, `sameSite`, ...).
    pub async fn cookies(&self) -> Vec<Value> {
        let v = self.cmd(reqwest::Method::GET, "/cookie", None).await;
        v.as_array().cloned().unwrap_or_default()
    }

    pub async fn find(&self, css: &str) -> Element {
        let body = json!({ "using": "css selector", "value": css });
        let v = self
            .cmd(reqwest::Method::POST, "/element", Some(body))
            .await;
        Element(v[ELEMENT_KEY].as_str().expect("an element id").to_string())
    }

    pub async fn send_keys(&self, el: &Element, text: &str) {
        let path = format!("/element/{}/value", el.0);
        self.cmd(reqwest::Method::POST, &path, Some(json!({ "text": text })))
            .await;
    }

    pub async fn click(&self, el: &Element) {
        let path = format!("/element/{}/click", el.0);
        self.cmd(reqwest::Method::POST, &path, Some(json!({})))
            .await;
    }

    /// Waits until the current URL satisfies `done` and returns it. Pages that submit
    /// themselves by script move on after WebDriver reported the load, so tests poll.
    pub async fn wait_for_url(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let url = self.current_url().await;
            if done(&url) {
                return url;
            }
            if Instant::now() > deadline {
                let source = self.source().await;
                panic!("waited in vain for {what}; the browser is at {url}:\n{source}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page and returns
    /// its value. WebDriver's scripts are not subject to the page's CSP.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        let body = json!({ "script": script, "args": args });
        self.cmd(reqwest::Method::POST, "/execute/sync", Some(body))
            .await
    }

    /// Like `execute`, for a script that calls its last argument with the result.
    pub async fn execute_async(&self, script: &str, args: Vec<Value>) -> Value {
        let body = json!({ "script": script, "args": args });
        self.cmd(reqwest::Method::POST, "/execute/async", Some(body))
            .await
    }

    /// Writes a PNG of the window to `path` (the docs' screenshots).
    pub async fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine;
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("a base64 PNG"))
            .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// Sets the window's size (a phone: 390 × 844).
    pub async fn window_size(&self, width: u32, height: u32) {
        let body = json!({ "width": width, "height": height });
        self.cmd(reqwest::Method::POST, "/window/rect", Some(body))
            .await;
    }

    /// Runs axe-core (from npm, `PORTVAKT_NODE_MODULES`) on the current page against WCAG
    /// 2.1 A and AA and panics with every violation found: rule, impact and the elements.
    pub async fn assert_accessible(&self, what: &str) {
        let source = std::fs::read_to_string(axe_path())
            .unwrap_or_else(|e| panic!("axe-core is missing ({e}): run scripts/interop-setup.sh"));
        self.execute(&source, vec![]).await;
        let script = "const done = arguments[arguments.length - 1];\n\
            axe.run(document, { runOnly: { type: 'tag', values: \
              ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })\n\
              .then(r => done(r.violations.map(v => ({ id: v.id, impact: v.impact, \
                help: v.help, nodes: v.nodes.map(n => n.html).slice(0, 5) }))))\n\
              .catch(e => done([{ id: 'axe-error', help: String(e) }]));";
        let v = self.execute_async(script, vec![]).await;
        let violations = v.as_array().cloned().unwrap_or_default();
        assert!(
            violations.is_empty(),
            "{what} fails axe-core (WCAG 2.1 AA) at {}:\n{}",
            self.current_url().await,
            serde_json::to_string_pretty(&violations).unwrap()
        );
    }

    /// Closes the window (and with the last one, Chromium).
    pub async fn quit(self) {
        self.cmd(reqwest::Method::DELETE, "", None).await;
    }
}

/// One WebDriver command; panics with the driver's error message when it fails.
async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Value {
    let mut req = http.request(method.clone(), url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("WebDriver {method} {url}: {e}"));
    let status = res.status();
    let mut v: Value = res.json().await.unwrap_or(Value::Null);
    assert!(
        status.is_success(),
        "WebDriver {method} {url} answered {status}: {} {}",
        v["value"]["error"],
        v["value"]["message"]
    );
    v["value"].take()
}

/// axe-core's browser build, installed by scripts/interop-setup.sh beside oidc-provider.
fn axe_path() -> std::path::PathBuf {
    let dir = std::env::var("PORTVAKT_NODE_MODULES")
        .unwrap_or_else(|_| "/var/tmp/portvakt-node/node_modules".into());
    std::path::Path::new(&dir).join("axe-core/axe.min.js")
}

/// A port nobody listens on right now (the OS picks it; it is released at once).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
