//! TestApp: the real server on 127.0.0.1:0; Browser: a cookie-keeping HTTP client that does
//! not follow redirects, so each hop can be checked.

#![allow(dead_code)]

use portvakt::app::App;
use portvakt::config::Config;
use portvakt::directory::{self, NewPerson, Role};
use portvakt::oidc::client::{self, ClientSpec};
use std::collections::HashMap;
use std::sync::Mutex;
use tempfile::TempDir;

/// The Python of the interoperability tests (pysaml2, pybankid): PORTVAKT_PYTHON, else the
/// venv scripts/interop-setup.sh makes. Missing, the test fails: interop tests never skip.
pub fn interop_python() -> String {
    let p = std::env::var("PORTVAKT_PYTHON")
        .unwrap_or_else(|_| "/var/tmp/portvakt-venv/bin/python".into());
    assert!(
        std::path::Path::new(&p).exists(),
        "the interop tests need the Python with pysaml2 and pybankid at {p}: run \
         scripts/interop-setup.sh (or set PORTVAKT_PYTHON)"
    );
    p
}

pub const PASSWORD: &str = "rätt-lösenord-123";
pub const SECRET: &str = "a-client-secret-of-enough-length-42";
pub const RP_REDIRECT: &str = "http://127.0.0.1:9/cb";
pub const RP_LOGOUT: &str = "http://127.0.0.1:9/after-logout";

pub fn pg_base_url() -> String {
    std::env::var("PORTVAKT_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/test".into())
}

pub fn use_postgres() -> bool {
    std::env::var("PORTVAKT_TEST_DB").is_ok_and(|v| v == "postgres")
}

/// A new, empty PostgreSQL database for one test. Fails (never skips) when PostgreSQL
/// cannot be reached.
pub async fn fresh_pg_database() -> String {
    use sqlx::Connection;
    let base = pg_base_url();
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL is required for this test and is not reachable at {base}: {e}")
        });
    // Drop what earlier runs left behind, once per test process.
    static CLEANED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    CLEANED
        .get_or_init(|| async {
            let mut c = sqlx::PgConnection::connect(&base).await.unwrap();
            let old: Vec<(String,)> = sqlx::query_as(
                "SELECT datname FROM pg_database WHERE datname LIKE 'portvakt_it_%'",
            )
            .fetch_all(&mut c)
            .await
            .unwrap();
            for (db,) in old {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
                )))
                .execute(&mut c)
                .await;
            }
        })
        .await;
    let name = format!("portvakt_it_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(&name);
    url.to_string()
}

/// The database for a test on the engine chosen by PORTVAKT_TEST_DB.
pub async fn database_url(dir: &TempDir) -> String {
    if use_postgres() {
        fresh_pg_database().await
    } else {
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("portvakt.db").display()
        )
    }
}

pub struct TestApp {
    pub base: String,
    pub config: Config,
    pub db: portvakt::storage::Db,
    pub state: portvakt::app::AppState,
    /// The app's clock: tests move it instead of sleeping.
    pub clock: portvakt::clock::Clock,
    pub dir: std::sync::Arc<TempDir>,
    /// The self-signed certificate (PEM) when the app serves TLS.
    pub ca_pem: Option<Vec<u8>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tune: impl FnOnce(&mut Config)) -> TestApp {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let url = database_url(&dir).await;
    spawn_instance(&url, dir, None, tune).await
}

/// Starts an instance on `database_url` with files in `dir`. `issuer` None means this
/// instance's own address.
pub async fn spawn_instance(
    database_url: &str,
    dir: std::sync::Arc<TempDir>,
    issuer: Option<&str>,
    tune: impl FnOnce(&mut Config),
) -> TestApp {
    start(database_url, dir, issuer, false, tune).await
}

/// An app that terminates TLS itself with a fresh self-signed certificate for 127.0.0.1.
pub async fn spawn_tls_app() -> TestApp {
    spawn_tls_app_with(|_| {}).await
}

/// A TLS app with its configuration tuned.
pub async fn spawn_tls_app_with(tune: impl FnOnce(&mut Config)) -> TestApp {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let url = database_url(&dir).await;
    start(&url, dir, None, true, tune).await
}

async fn start(
    database_url: &str,
    dir: std::sync::Arc<TempDir>,
    issuer: Option<&str>,
    tls: bool,
    tune: impl FnOnce(&mut Config),
) -> TestApp {
    crate::server_logs::install();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("{}://{addr}", if tls { "https" } else { "http" });
    let mut config = Config::for_tests(database_url, dir.path().to_path_buf());
    config.issuer = issuer.unwrap_or(&base).to_string();
    let ca_pem = tls.then(|| {
        let (cert, key, pem) = self_signed(dir.path());
        config.tls = Some(portvakt::config::TlsConfig { cert, key });
        pem
    });
    tune(&mut config);
    let clock = portvakt::clock::Clock::movable();
    let app = App::build_with_clock(config.clone(), false, listener, clock.clone())
        .await
        .expect("app builds");
    let state = app.state.clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    TestApp {
        base,
        config,
        db: state.db.clone(),
        state,
        clock,
        dir,
        ca_pem,
        shutdown: Some(tx),
    }
}

/// `portvakt demo` as the command builds it (the BankID stub on, the staff IdP started and
/// registered as the upstream `kommun`), on 127.0.0.1 with a movable clock.
pub async fn spawn_demo() -> TestApp {
    crate::server_logs::install();
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let url = database_url(&dir).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = Config::for_tests(&url, dir.path().to_path_buf());
    config.issuer = base.clone();
    config.bankid.enabled = true;
    config.bankid.environment = portvakt::config::BankIdEnvironment::Stub;
    let clock = portvakt::clock::Clock::movable();
    let app = portvakt::demo::build(config.clone(), listener, clock.clone())
        .await
        .expect("the demo builds");
    let state = app.state.clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    TestApp {
        base,
        config,
        db: state.db.clone(),
        state,
        clock,
        dir,
        ca_pem: None,
        shutdown: Some(tx),
    }
}

fn self_signed(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    use openssl::{asn1::Asn1Time, bn::BigNum, hash::MessageDigest, pkey::PKey, rsa::Rsa, x509};
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "127.0.0.1").unwrap();
    let name = name.build();
    let mut b = x509::X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    let san = x509::extension::SubjectAlternativeName::new()
        .ip("127.0.0.1")
        .build(&b.x509v3_context(None, None))
        .unwrap();
    b.append_extension(san).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let pem = b.build().to_pem().unwrap();
    let (c, k) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&c, &pem).unwrap();
    std::fs::write(&k, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (c, k, pem)
}

impl TestApp {
    /// An HTTP client that trusts this app's certificate.
    pub fn client(&self) -> reqwest::Client {
        let mut b = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = &self.ca_pem {
            b = b.add_root_certificate(reqwest::Certificate::from_pem(pem).unwrap());
        }
        b.build().unwrap()
    }

    pub fn browser(&self) -> Browser {
        Browser {
            http: self.client(),
            cookies: Mutex::new(HashMap::new()),
            set_cookies: Mutex::new(Vec::new()),
            forwarded_for: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Adds a person with the test password.
    pub async fn add_person(&self, username: &str, roles: &[&str]) -> directory::Person {
        let new = NewPerson {
            username: username.into(),
            given_name: "Test".into(),
            family_name: username.into(),
            email: Some(format!("{username}@example.se")),
            civic_no: None,
            protected_identity: false,
            roles: roles.iter().map(|r| Role::parse(r).unwrap()).collect(),
            source: "local".into(),
        };
        let now = self.clock.now();
        for r in &new.roles {
            if let Some(u) = &r.school_unit_code {
                portvakt::storage::persons::upsert_school_unit(&self.db, u, u, "local")
                    .await
                    .unwrap();
            }
        }
        let p = directory::add_person(&self.db, &new, "test.example", now)
            .await
            .unwrap();
        self.state
            .authn
            .set_password(&p.id, PASSWORD.into(), now)
            .await
            .unwrap();
        p
    }

    /// Registers a confidential client with SECRET.
    pub async fn add_client(&self, id: &str, tune: impl FnOnce(&mut ClientSpec)) {
        let mut spec = ClientSpec {
            client_id: id.into(),
            secret: Some(SECRET.into()),
            redirect_uris: vec![RP_REDIRECT.into()],
            post_logout_redirect_uris: vec![RP_LOGOUT.into()],
            release: portvakt::directory::release::ordinary_claims(),
            ..Default::default()
        };
        tune(&mut spec);
        client::add(&self.db, &self.state.keys, &spec, self.clock.now())
            .await
            .unwrap();
    }

    /// An authorize URL for a client with PKCE. Returns (url, state, nonce, verifier).
    pub fn authorize_url(
        &self,
        client_id: &str,
        extra: &[(&str, &str)],
    ) -> (String, String, String, String) {
        let state = portvakt::keys::random_token();
        let nonce = portvakt::keys::random_token();
        let verifier = portvakt::keys::random_token();
        let challenge = pkce_challenge(&verifier);
        let mut u = url::Url::parse(&self.url("/oidc/authorize")).unwrap();
        {
            let mut q = u.query_pairs_mut();
            q.append_pair("client_id", client_id)
                .append_pair("redirect_uri", RP_REDIRECT)
                .append_pair("response_type", "code")
                .append_pair("scope", "openid profile email school")
                .append_pair("state", &state)
                .append_pair("nonce", &nonce)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            for (k, v) in extra {
                q.append_pair(k, v);
            }
        }
        (u.to_string(), state, nonce, verifier)
    }

    /// POST to the token endpoint with client_secret_basic.
    pub async fn token(
        &self,
        client_id: &str,
        secret: &str,
        form: &[(&str, &str)],
    ) -> (u16, serde_json::Value) {
        let res = self
            .client()
            .post(self.url("/oidc/token"))
            .basic_auth(client_id, Some(secret))
            .form(form)
            .send()
            .await
            .unwrap();
        status_json(res).await
    }

    /// POST to the token endpoint with the client in the form body (client_secret_post or
    /// a public client).
    pub async fn token_without_basic(&self, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
        let res = self
            .client()
            .post(self.url("/oidc/token"))
            .form(form)
            .send()
            .await
            .unwrap();
        status_json(res).await
    }

    pub async fn userinfo(&self, access_token: &str) -> (u16, serde_json::Value) {
        let res = self
            .client()
            .get(self.url("/oidc/userinfo"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap();
        status_json(res).await
    }

    /// Logs `username` in through a browser and returns (browser, code, verifier, nonce).
    pub async fn login_code(
        &self,
        client_id: &str,
        username: &str,
    ) -> (Browser, String, String, String) {
        let browser = self.browser();
        let (url, state, nonce, verifier) = self.authorize_url(client_id, &[]);
        let cb = browser.login(self, &url, username, PASSWORD).await;
        assert_eq!(query_param(&cb, "state").as_deref(), Some(state.as_str()));
        let code = query_param(&cb, "code").expect("code in redirect");
        (browser, code, verifier, nonce)
    }

    /// A full login and code exchange; returns the token response.
    pub async fn login_tokens(
        &self,
        client_id: &str,
        username: &str,
    ) -> (Browser, serde_json::Value) {
        let (browser, code, verifier, _) = self.login_code(client_id, username).await;
        let (status, body) = self
            .token(
                client_id,
                SECRET,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", RP_REDIRECT),
                    ("code_verifier", &verifier),
                ],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        (browser, body)
    }
}

/// A response's status and JSON body (Null when the body is not JSON).
pub async fn status_json(res: reqwest::Response) -> (u16, serde_json::Value) {
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

pub fn pkce_challenge(verifier: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The decoded payload of a JWT (no verification).
pub fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

pub fn jwt_header(token: &str) -> serde_json::Value {
    use base64::Engine;
    let h = token.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(h)
            .unwrap(),
    )
    .unwrap()
}

pub struct Resp {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

/// A browser: keeps cookies, never follows redirects.
pub struct Browser {
    http: reqwest::Client,
    pub cookies: Mutex<HashMap<String, String>>,
    /// Every Set-Cookie header seen, verbatim.
    pub set_cookies: Mutex<Vec<String>>,
    pub forwarded_for: Option<String>,
}

impl Browser {
    pub fn new() -> Self {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Mutex::new(HashMap::new()),
            set_cookies: Mutex::new(Vec::new()),
            forwarded_for: None,
        }
    }

    /// Whether the browser holds an SSO session cookie.
    pub fn has_sso(&self) -> bool {
        self.cookies
            .lock()
            .unwrap()
            .keys()
            .any(|k| k.ends_with("portvakt_sso"))
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&self, base: &str, res: reqwest::Response) -> Resp {
        for sc in res.headers().get_all("set-cookie") {
            let sc = sc.to_str().unwrap();
            self.set_cookies.lock().unwrap().push(sc.to_string());
            let (kv, attrs) = sc.split_once(';').unwrap_or((sc, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.lock().unwrap().remove(k);
            } else {
                self.cookies
                    .lock()
                    .unwrap()
                    .insert(k.to_string(), v.to_string());
            }
        }
        let location = res.headers().get("location").map(|l| {
            let l = l.to_str().unwrap();
            if l.starts_with('/') {
                format!("{base}{l}")
            } else {
                l.to_string()
            }
        });
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        Resp {
            status,
            location,
            headers,
            body: res.text().await.unwrap(),
        }
    }

    fn origin(url: &str) -> String {
        let u = url::Url::parse(url).unwrap();
        u.origin().ascii_serialization()
    }

    pub async fn get(&self, url: &str) -> Resp {
        let mut req = self.http.get(url).header("cookie", self.cookie_header());
        if let Some(x) = &self.forwarded_for {
            req = req.header("x-forwarded-for", x);
        }
        let res = req.send().await.unwrap();
        self.finish(&Self::origin(url), res).await
    }

    pub async fn post(&self, url: &str, form: &[(&str, &str)]) -> Resp {
        let mut req = self
            .http
            .post(url)
            .header("cookie", self.cookie_header())
            .form(form);
        if let Some(x) = &self.forwarded_for {
            req = req.header("x-forwarded-for", x);
        }
        let res = req.send().await.unwrap();
        self.finish(&Self::origin(url), res).await
    }

    /// Posts the login form.
    pub async fn post_login(
        &self,
        app: &TestApp,
        tx: &str,
        csrf: &str,
        username: &str,
        password: &str,
    ) -> Resp {
        let form = [
            ("tx", tx),
            ("csrf", csrf),
            ("username", username),
            ("password", password),
        ];
        self.post(&app.url("/login"), &form).await
    }

    /// From an authorize URL to the login form; returns (tx, csrf, login page response).
    pub async fn open_login(&self, authorize_url: &str) -> (String, String, Resp) {
        let r = self.get(authorize_url).await;
        assert_eq!(r.status, 303, "authorize should send to login: {}", r.body);
        let login_url = r.location.unwrap();
        assert!(login_url.contains("/login?tx="), "{login_url}");
        let page = self.get(&login_url).await;
        assert_eq!(page.status, 200);
        let tx = hidden(&page.body, "tx");
        let csrf = hidden(&page.body, "csrf");
        (tx, csrf, page)
    }

    /// Logs in from an authorize URL and returns the final redirect to the client.
    pub async fn login(
        &self,
        app: &TestApp,
        authorize_url: &str,
        username: &str,
        password: &str,
    ) -> String {
        let (tx, csrf, _) = self.open_login(authorize_url).await;
        let r = self.post_login(app, &tx, &csrf, username, password).await;
        assert_eq!(r.status, 303, "login failed: {}", r.body);
        let resume = r.location.unwrap();
        let r = self.get(&resume).await;
        assert_eq!(r.status, 303, "resume failed: {}", r.body);
        let back = r.location.unwrap();
        assert!(
            !back.contains("/login?"),
            "resume sent the browser back to the login page"
        );
        back
    }
}

/// The value of a hidden input in a page.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no hidden {name} in page"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

/// Runs the portvakt binary with the app's database and files.
pub fn cli(app: &TestApp, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    use std::io::Write;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_portvakt"));
    cmd.args(args)
        .env("PORTVAKT_DATABASE_URL", &app.config.database_url)
        .env("PORTVAKT_DATA_DIR", &app.config.data_dir)
        .env("PORTVAKT_ISSUER", &app.config.issuer)
        .env_remove("PORTVAKT_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        let mut si = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            si.write_all(s.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    crate::server_logs::append(&out.stderr);
    out
}
