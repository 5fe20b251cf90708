//! The HTTP steps of the load: discovery and JWKS GETs, token grants, code flows and
//! password logins through the login form.

use super::*;

// ---------------------------------------------------------------------------------------
// HTTP steps
// ---------------------------------------------------------------------------------------

/// Shared by all workers of one measurement: one reqwest client (one connection pool).
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) http: reqwest::Client,
    pub(crate) base: Arc<str>,
    pub(crate) token_url: Arc<str>,
    pub(crate) authorize_url: Arc<str>,
    pub(crate) cc_basic: Arc<str>,
    pub(crate) rp_basic: Arc<str>,
}

impl Ctx {
    pub(crate) fn new(base: &str, concurrency: usize) -> Res<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(concurrency)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .build()
            .map_err(|e| e.to_string())?;
        let basic = |id: &str, secret: &str| {
            let raw = format!("{id}:{secret}");
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            )
        };
        let authorize_url = format!(
            "{base}{AUTHORIZE}?response_type=code&client_id={RP_ID}&redirect_uri={}\
             &scope=openid+profile&state=bench-state&nonce=bench-nonce",
            enc(REDIRECT_URI)
        );
        Ok(Self {
            http,
            base: base.into(),
            token_url: format!("{base}{TOKEN}").into(),
            authorize_url: authorize_url.into(),
            cc_basic: basic(CC_ID, CC_SECRET).into(),
            rp_basic: basic(RP_ID, RP_SECRET).into(),
        })
    }

    pub(crate) fn absolute(&self, location: &str) -> String {
        if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location.to_string()
        }
    }
}

pub(crate) fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub(crate) fn location(res: &reqwest::Response, what: &str) -> Res<String> {
    if res.status() != StatusCode::SEE_OTHER {
        return Err(format!("{what}: expected 303, got {}", res.status()));
    }
    res.headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .ok_or_else(|| format!("{what}: 303 without Location"))
}

pub(crate) async fn get_ok(ctx: &Ctx, url: &str) -> Res<()> {
    let res = ctx.http.get(url).send().await.map_err(err("GET"))?;
    let status = res.status();
    let body = res.bytes().await.map_err(err("GET body"))?;
    if status != StatusCode::OK || body.is_empty() {
        return Err(format!("GET {url}: {status}"));
    }
    Ok(())
}

pub(crate) async fn client_credentials(ctx: &Ctx) -> Res<()> {
    let res = ctx
        .http
        .post(&*ctx.token_url)
        .header(AUTHORIZATION, &*ctx.cc_basic)
        .header(CONTENT_TYPE, FORM)
        .body(CC_BODY)
        .send()
        .await
        .map_err(err("token"))?;
    let status = res.status();
    let body = res.bytes().await.map_err(err("token body"))?;
    if status != StatusCode::OK || !body.starts_with(b"{\"access_token\"") {
        return Err(format!(
            "client_credentials: {status} {}",
            String::from_utf8_lossy(&body)
        ));
    }
    Ok(())
}

/// POSTs a grant for bench-rp and returns the JSON answer.
pub(crate) async fn rp_token(ctx: &Ctx, body: String) -> Res<Value> {
    let res = ctx
        .http
        .post(&*ctx.token_url)
        .header(AUTHORIZATION, &*ctx.rp_basic)
        .header(CONTENT_TYPE, FORM)
        .body(body)
        .send()
        .await
        .map_err(err("token"))?;
    let status = res.status();
    let body = res.bytes().await.map_err(err("token body"))?;
    if status != StatusCode::OK {
        return Err(format!(
            "token: {status} {}",
            String::from_utf8_lossy(&body)
        ));
    }
    let v: Value = serde_json::from_slice(&body).map_err(|e| format!("token JSON: {e}"))?;
    if v["access_token"].as_str().is_none() {
        return Err("token: no access_token".into());
    }
    Ok(v)
}

/// Exchanges a code; returns the refresh token. Fails unless an ID token came back.
pub(crate) async fn exchange_code(ctx: &Ctx, code: &str) -> Res<String> {
    let v = rp_token(
        ctx,
        format!(
            "grant_type=authorization_code&code={}&redirect_uri={}",
            enc(code),
            enc(REDIRECT_URI)
        ),
    )
    .await?;
    if v["id_token"].as_str().is_none() {
        return Err("code exchange: no id_token".into());
    }
    v["refresh_token"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| "code exchange: no refresh_token".into())
}

pub(crate) async fn refresh(ctx: &Ctx, token: &str) -> Res<String> {
    let v = rp_token(
        ctx,
        format!("grant_type=refresh_token&refresh_token={}", enc(token)),
    )
    .await?;
    v["refresh_token"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| "refresh: no new refresh_token".into())
}

pub(crate) fn code_of(redirect: &str) -> Res<String> {
    if !redirect.starts_with(REDIRECT_URI) {
        return Err(format!("authorize: unexpected redirect {redirect}"));
    }
    let url = url::Url::parse(redirect).map_err(|e| e.to_string())?;
    url.query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| format!("authorize: no code in {redirect}"))
}

/// authorize with the SSO cookie → 303 straight to the redirect URI with a code.
pub(crate) async fn sso_authorize(ctx: &Ctx, cookie: &str) -> Res<String> {
    let res = ctx
        .http
        .get(&*ctx.authorize_url)
        .header(COOKIE, format!("{SSO_COOKIE}={cookie}"))
        .send()
        .await
        .map_err(err("authorize"))?;
    code_of(&location(&res, "authorize")?)
}

pub(crate) fn hidden_input(html: &str, name: &str) -> Res<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .ok_or_else(|| format!("login page without {name}"))?
        + marker.len();
    let len = html[start..]
        .find('"')
        .ok_or_else(|| format!("login page: unterminated {name}"))?;
    Ok(html_unescape(&html[start..start + len]))
}

pub(crate) fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&#x2F;", "/")
        .replace("&#47;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A login form of a fresh browser: authorize → login page. Returns (tx, csrf, cookies the
/// page set, to send back with the POST).
pub(crate) async fn login_form(ctx: &Ctx) -> Res<(String, String, String)> {
    let res = ctx
        .http
        .get(&*ctx.authorize_url)
        .send()
        .await
        .map_err(err("authorize"))?;
    let login_url = ctx.absolute(&location(&res, "authorize")?);
    if !login_url.starts_with(&format!("{}{LOGIN}?", ctx.base)) {
        return Err(format!(
            "authorize: expected the login page, got {login_url}"
        ));
    }
    let res = ctx
        .http
        .get(&login_url)
        .send()
        .await
        .map_err(err("login page"))?;
    if res.status() != StatusCode::OK {
        return Err(format!("login page: {}", res.status()));
    }
    // Cookies the login page sets (e.g. a login-CSRF binding cookie) go back with the POST.
    let page_cookies = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next())
        .collect::<Vec<_>>()
        .join("; ");
    let html = res.text().await.map_err(err("login page body"))?;
    Ok((
        hidden_input(&html, "tx")?,
        hidden_input(&html, "csrf")?,
        page_cookies,
    ))
}

/// POSTs a login form; returns (SSO cookie, resume URL).
pub(crate) async fn login_post(
    ctx: &Ctx,
    user: &str,
    form: (String, String, String),
) -> Res<(String, String)> {
    let (tx, csrf, page_cookies) = form;
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("tx", &tx)
        .append_pair("csrf", &csrf)
        .append_pair("username", user)
        .append_pair("password", PASSWORD)
        .finish();
    let res = ctx
        .http
        .post(format!("{}{LOGIN}", ctx.base))
        .header(CONTENT_TYPE, FORM)
        .header(COOKIE, page_cookies)
        .body(form)
        .send()
        .await
        .map_err(err("login POST"))?;
    let resume = ctx.absolute(&location(&res, "login POST")?);
    let cookie = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{SSO_COOKIE}=")))
        .and_then(|v| v.split(';').next())
        .map(String::from)
        .ok_or("login POST: no SSO cookie")?;
    Ok((cookie, resume))
}

/// A fresh browser: authorize → login page → POST password → resume → code.
/// Returns (SSO cookie, code).
pub(crate) async fn password_login(ctx: &Ctx, user: &str) -> Res<(String, String)> {
    let form = login_form(ctx).await?;
    let (cookie, resume) = login_post(ctx, user, form).await?;
    let res = ctx
        .http
        .get(&resume)
        .header(COOKIE, format!("{SSO_COOKIE}={cookie}"))
        .send()
        .await
        .map_err(err("resume"))?;
    let code = code_of(&location(&res, "resume")?)?;
    Ok((cookie, code))
}

/// Per-worker state for flows that need a logged-in browser.
pub(crate) struct Browser {
    pub(crate) ctx: Ctx,
    pub(crate) cookie: String,
    pub(crate) refresh: Option<String>,
}

/// The server configuration when `PORTVAKT_BENCH_CONFIG` names none: the per-address
/// login throttle lifted, since every request comes from 127.0.0.1, which stands for a
/// whole municipality here (its default, 120 attempts a minute, answered the password
/// logins with 429).
pub(crate) const DEFAULT_CONFIG: &str = "[throttle]\naddress_attempts = 1000000\n";

/// Accounts of the benchmark's own, one per browser (`bench00`…): a login holds its account
/// while it hashes, so browsers sharing the demo's three accounts refused each other (429)
/// and the refresh and code groups measured the throttle instead of the protocol.
pub(crate) const BENCH_USERS: usize = 64;

pub(crate) fn bench_user(i: usize) -> String {
    format!("bench{i:02}")
}

/// `portvakt user add` for `bench00`… `bench{n-1}` (password `PASSWORD`), with `config`
/// given to the CLI when the server will run with it (its argon2 parameters).
pub(crate) fn add_bench_users(dir: &Path, n: usize, config: Option<&Path>) -> Res<()> {
    (0..n).try_for_each(|i| add_user(dir, &bench_user(i), config))
}

/// `portvakt user add USERNAME --role student` with the benchmark's password.
pub(crate) fn add_user(dir: &Path, username: &str, config: Option<&Path>) -> Res<()> {
    let mut cmd = portvakt(dir, 9, false);
    if let Some(config) = config {
        cmd = with_config(cmd, config);
    }
    cmd.args(["user", "add", "--username", username, "--password-stdin"])
        .args(["--role", "student"]);
    run_with_stdin(cmd, PASSWORD).map_err(|e| format!("user add: {e}"))
}

/// `cmd` (from `portvakt`) with `config` instead of `PORTVAKT_BENCH_CONFIG`'s.
pub(crate) fn with_config(cmd: Command, config: &Path) -> Command {
    let mut out = Command::new(cmd.get_program());
    out.arg("--config").arg(config);
    out.args(cmd.get_args().filter(|a| {
        std::env::var_os("PORTVAKT_BENCH_CONFIG").as_deref() != Some(*a) && *a != "--config"
    }));
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => out.env(k, v),
            None => out.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        out.current_dir(d);
    }
    out
}

/// Logs in `n` browsers (password login + code exchange), a few at a time, each with its
/// own account (`bench_user`).
pub(crate) async fn browsers(ctx: &Ctx, n: usize) -> Res<Vec<Browser>> {
    if n > BENCH_USERS {
        return Err(format!(
            "{n} browsers, but only {BENCH_USERS} bench accounts"
        ));
    }
    let mut out = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(8) {
        let handles: Vec<_> = chunk
            .iter()
            .map(|&i| {
                let ctx = ctx.clone();
                let user = bench_user(i);
                tokio::spawn(async move {
                    let (cookie, code) = password_login(&ctx, &user).await?;
                    let refresh = exchange_code(&ctx, &code).await?;
                    Ok::<_, String>(Browser {
                        ctx,
                        cookie,
                        refresh: Some(refresh),
                    })
                })
            })
            .collect();
        for h in handles {
            let b = tokio::time::timeout(Duration::from_secs(60), h)
                .await
                .map_err(|_| "login timed out".to_string())?
                .map_err(|e| e.to_string())??;
            out.push(b);
        }
    }
    Ok(out)
}
