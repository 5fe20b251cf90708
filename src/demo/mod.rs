//! Demo mode: a synthetic municipality (two schools, classes, students, teachers, a
//! guardian, a principal, an admin), demo relying parties that log in through Portvakt
//! with the authorization code flow and show the ID token's claims, and the municipality's
//! staff IdP (a second Portvakt, `staff_idp`) as an upstream with two staff services: one
//! that takes a password or the staff IdP, one that needs loa/2fa (step-up to BankID).
//! Never in production mode (`portvakt demo` refuses it).

pub mod saml_sp;
pub mod staff_idp;

use crate::app::AppState;
use crate::directory::{self, NewPerson, Role};
use crate::oidc::authorize::Params;
use crate::oidc::client::{self, ClientSpec};
use crate::sim::ss12000::generate::{USERNAME_CONTEXT, generate};
use crate::sim::ss12000::mock::{self, Mock};
use crate::storage;
use crate::sync::plan::RunKind;
use crate::web::{self, WebError, i18n::Lang, paths};
use askama::Template;
use axum::Router;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

/// The demo password of every demo person. Demo data only.
pub const DEMO_PASSWORD: &str = "sommarlov";
pub const DEMO_CLIENTS: [(&str, &str); 4] = [
    ("demo-app-1", "Demoappen Ett"),
    ("demo-app-2", "Demoappen Två"),
    (STAFF_ROOM, "Personalrummet"),
    (GRADES, "Betygsrapportering"),
];
/// A staff service that takes a password or the municipality's account (loa/bas).
pub const STAFF_ROOM: &str = "demo-personal";
/// A staff service that needs loa/2fa: a password or staff IdP session is stepped up with
/// BankID (the stub in the demo), proved by the same person.
pub const GRADES: &str = "demo-betyg";

/// The login policy of a demo client: (allowed methods, minimum level). The first two
/// allow every method.
fn demo_policy(client_id: &str) -> (Vec<String>, Option<String>) {
    let upstream = format!("upstream:{}", staff_idp::UPSTREAM);
    match client_id {
        STAFF_ROOM => (vec!["password".into(), upstream], None),
        GRADES => (
            vec!["bankid".into(), upstream],
            Some(crate::authn::acr::TWO_FACTOR.into()),
        ),
        _ => (Vec::new(), None),
    }
}

/// Builds the demo: starts the staff IdP, builds the application with the demo data
/// (`seed`), then registers the staff IdP as its upstream. `portvakt demo` and the tests
/// start it here.
pub async fn build(
    config: crate::config::Config,
    listener: std::net::TcpListener,
    clock: crate::clock::Clock,
) -> anyhow::Result<crate::app::App> {
    let staff = staff_idp::start(&config).await?;
    let app = crate::app::App::build_with_clock(config, true, listener, clock).await?;
    staff_idp::wire(&app.state, &staff).await?;
    Ok(app)
}

/// The demo register: a generated municipality served by the built-in SS 12000 mock on a
/// loopback port, synced like a real register.
pub const DEMO_SOURCE: &str = "demo-register";
const DEMO_SEED: u64 = 1;
const DEMO_PERSONS: usize = 2000;

/// (username, name, roles) of a demo person the banner lists.
type Listed = (String, String, String);

/// The register's URL and the people the banner lists, filled by `seed`.
static DEMO_PEOPLE: std::sync::OnceLock<(String, Vec<Listed>)> = std::sync::OnceLock::new();

fn redirect_uri(state: &AppState, client_id: &str) -> String {
    format!(
        "{}{}",
        state.config.issuer,
        paths::fill(paths::DEMO_CALLBACK, "client", client_id)
    )
}

/// Fills the demo municipality through the SS 12000 mock and a real sync, gives a few of its
/// people the demo password, and creates the local admin and the demo relying parties.
pub async fn seed(state: &AppState) -> anyhow::Result<()> {
    let db = &state.db;
    let now = state.clock.now();
    if storage::persons::by_login_name(db, "admin")
        .await?
        .is_none()
    {
        let new = NewPerson {
            username: "admin".into(),
            given_name: "Ada".into(),
            family_name: "Admin".into(),
            email: Some("admin@demo.portvakt.se".into()),
            civic_no: None,
            protected_identity: false,
            roles: vec![Role::parse("admin")?],
            source: "local".into(),
        };
        let admin = directory::add_person(db, &new, &state.config.saml_scope(), now).await?;
        state
            .authn
            .set_password(&admin.id, DEMO_PASSWORD.into(), now)
            .await?;
    }
    let register = start_register(now).await?;
    let client = crate::sync::ad_hoc_client(&register, None).map_err(anyhow::Error::msg)?;
    let env = crate::sync::Env {
        db,
        config: &state.config,
        clock: &state.clock,
        kek: state.keys.kek(),
    };
    let mut runner = crate::sync::run::Runner::new(env, DEMO_SOURCE);
    runner.username_context = Some(USERNAME_CONTEXT);
    let outcome = runner
        .run_source(&client, RunKind::Full, &|_| {}, std::future::pending())
        .await?;
    if let crate::sync::run::Status::Held(reason) = outcome.status {
        // A demo database from another school year: the demo decides for the admin.
        tracing::info!("demo sync held ({reason}); approving it");
        crate::sync::run::approve(env, outcome.run_id, "demo", std::future::pending()).await?;
    }
    let mut people = vec![(
        "admin".to_string(),
        "Ada Admin".to_string(),
        "admin".to_string(),
    )];
    for username in demo_usernames(db).await? {
        let Some(p) = storage::persons::by_login_name(db, &username).await? else {
            continue;
        };
        if storage::persons::password_hash(db, &p.id).await?.is_none() {
            state
                .authn
                .set_password(&p.id, DEMO_PASSWORD.into(), now)
                .await?;
        }
        let name = p.display_name();
        let d = directory::details(
            db,
            &state.config.directory,
            p,
            crate::directory::roles::day_of(now),
        )
        .await?;
        let roles: Vec<String> = d.roles.iter().map(|r| r.to_string()).collect();
        people.push((username, name, roles.join(", ")));
    }
    let _ = DEMO_PEOPLE.set((register, people));
    for (id, name) in DEMO_CLIENTS {
        let (allowed_methods, min_level) = demo_policy(id);
        let allow_any_method = allowed_methods.is_empty();
        // The issuer may have changed since the last demo run (another port): the demo
        // clients follow it.
        if let Some(existing) = client::get(db, id).await? {
            if existing.redirect_uri_registered(&redirect_uri(state, id))
                && existing.record.login.allowed_methods == allowed_methods
                && existing.record.login.min_level == min_level
            {
                continue;
            }
            let spec = ClientSpec {
                client_id: id.into(),
                redirect_uris: vec![redirect_uri(state, id)],
                post_logout_redirect_uris: vec![format!("{}{}", state.config.issuer, paths::DEMO)],
                allowed_methods,
                allow_any_method,
                min_level: Some(min_level),
                ..Default::default()
            };
            client::update(db, &state.keys, &spec, now).await?;
            continue;
        }
        let spec = ClientSpec {
            client_id: id.into(),
            name: Some(name.into()),
            secret: Some(client::generate_secret()),
            redirect_uris: vec![redirect_uri(state, id)],
            post_logout_redirect_uris: vec![format!("{}{}", state.config.issuer, paths::DEMO)],
            release: crate::directory::release::ordinary_claims(),
            allowed_methods,
            min_level: Some(min_level),
            // Scopes and grants: the defaults (openid profile email school; code + refresh).
            ..Default::default()
        };
        client::add(db, &state.keys, &spec, now).await?;
    }
    saml_sp::seed(state).await?;
    Ok(())
}

/// What `portvakt demo` prints for a newcomer.
pub fn banner(issuer: &str, bankid_stub: bool) -> String {
    let mut s = format!(
        "\nPortvakt demo: open {issuer}{}\nDemo people (password for all: {DEMO_PASSWORD}):\n",
        paths::DEMO
    );
    if let Some((register, people)) = DEMO_PEOPLE.get() {
        for (username, name, roles) in people {
            s.push_str(&format!("  {username:<16} {name} ({roles})\n"));
        }
        s.push_str(&format!(
            "The register (SS 12000 mock, {DEMO_PERSONS} fictional people): {register}\n"
        ));
    }
    s.push_str(&format!(
        "Administration: open {issuer}{} and log in as admin (password as above).\n",
        paths::ADMIN
    ));
    if bankid_stub {
        s.push_str(&format!(
            "BankID is played by a stub: on the login page choose a BankID button, then the\n\
             stub's test app ({issuer}{}/app) identifies any demo person by personal number.\n",
            paths::BANKID_STUB
        ));
    }
    if let Some(staff) = staff_idp::SHOWN.get() {
        s.push_str(&format!(
            "The municipality's staff IdP (a second Portvakt) runs at {}.\n\
             On /demo open Personalrummet, choose \"{}\" and log in there as\n",
            staff.issuer,
            staff_idp::DISPLAY_NAME
        ));
        for a in &staff.accounts {
            let to = match &a.links_to {
                Some(person) => format!("links to {person}"),
                None => "unknown to the register: refused".into(),
            };
            s.push_str(&format!("  {:<16} {} ({to})\n", a.username, a.email));
        }
        s.push_str(
            "(password as above): Portvakt links the account to the register's person by\n\
             the verified email. Then open Betygsrapportering: it needs loa/2fa, so the\n\
             session is stepped up with BankID (the stub) for the same person's number.\n",
        );
    }
    s
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(paths::DEMO, get(demo_get))
        .route(paths::DEMO_LOGIN, get(demo_login_get))
        .route(paths::DEMO_CALLBACK, get(demo_callback_get))
        .route(paths::DEMO_SP_LOGIN, get(saml_sp::login_get))
        .route(paths::DEMO_SP_ACS, axum::routing::post(saml_sp::acs_post))
}

#[derive(Template)]
#[template(path = "demo.html")]
struct DemoPage<'a> {
    lang: Lang,
    clients: Vec<(String, &'a str)>,
    saml_login: &'a str,
    /// The staff IdP's address and accounts, when it runs.
    staff: Option<&'a staff_idp::Shown>,
}

#[derive(Template)]
#[template(path = "demo_rp.html")]
struct DemoRpPage<'a> {
    lang: Lang,
    name: &'a str,
    claims: String,
    userinfo: String,
    logout_url: String,
}

async fn demo_get(Extension(lang): Extension<Lang>) -> Result<Response, WebError> {
    let clients = DEMO_CLIENTS
        .iter()
        .map(|(id, name)| (paths::fill(paths::DEMO_LOGIN, "client", id), *name))
        .collect();
    web::render(&DemoPage {
        lang,
        clients,
        saml_login: paths::DEMO_SP_LOGIN,
        staff: staff_idp::SHOWN.get(),
    })
}

fn demo_cookie(client_id: &str) -> String {
    format!("demo_rp_{}", client_id.replace('-', "_"))
}

/// The demo relying party starts a code flow with state, nonce and PKCE, as a real one would.
async fn demo_login_get(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
) -> Result<Response, WebError> {
    if !DEMO_CLIENTS.iter().any(|(id, _)| *id == client_id) {
        return Err(WebError::new(
            axum::http::StatusCode::NOT_FOUND,
            "error.not_found",
        ));
    }
    let (st, nonce, verifier) = (
        crate::keys::random_token(),
        crate::keys::random_token(),
        crate::keys::random_token(),
    );
    let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ));
    let url = crate::oidc::authorize::redirect_with(
        &format!("{}{}", state.config.issuer, paths::AUTHORIZE),
        &[
            ("client_id", Some(client_id.as_str())),
            ("redirect_uri", Some(&redirect_uri(&state, &client_id))),
            ("response_type", Some("code")),
            ("scope", Some("openid profile email school")),
            ("state", Some(&st)),
            ("nonce", Some(&nonce)),
            ("code_challenge", Some(&challenge)),
            ("code_challenge_method", Some("S256")),
        ],
    );
    let cookie = web::set_cookie(
        &demo_cookie(&client_id),
        &format!("{st}.{nonce}.{verifier}"),
        Some(600),
        state.config.secure_cookies(),
        web::SameSite::Lax,
    );
    let mut res = Redirect::to(&url).into_response();
    res.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(res)
}

#[derive(serde::Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
}

async fn demo_callback_get(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    Query(cb): Query<Callback>,
) -> Result<Response, WebError> {
    let failed = || WebError::bad_request("demo.failed");
    let (client, name) = DEMO_CLIENTS
        .iter()
        .find(|(id, _)| *id == client_id)
        .ok_or_else(failed)?;
    let saved = web::cookie(&headers, &demo_cookie(client)).ok_or_else(failed)?;
    let mut parts = saved.split('.');
    let (Some(st), Some(nonce), Some(verifier)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(failed());
    };
    if cb.state.as_deref() != Some(st) || cb.iss.as_deref() != Some(state.config.issuer.as_str()) {
        return Err(failed());
    }
    let code = cb.code.ok_or_else(failed)?;
    // In-process token exchange: the demo relying party lives in the same binary.
    let registered = client::get(&state.db, client).await?.ok_or_else(failed)?;
    let now = state.clock.now();
    let params = Params::from_pairs(vec![
        ("grant_type".into(), "authorization_code".into()),
        ("code".into(), code),
        ("redirect_uri".into(), redirect_uri(&state, client)),
        ("code_verifier".into(), verifier.into()),
    ]);
    let tokens = crate::oidc::grants::token(&state.op, &registered, &params, now)
        .await
        .map_err(|_| failed())?;
    let id_token = tokens["id_token"].as_str().ok_or_else(failed)?;
    let verified = state.keys.verify_jwt(id_token, now).map_err(|_| failed())?;
    if verified.claims["nonce"] != nonce {
        return Err(failed());
    }
    let access = tokens["access_token"].as_str().ok_or_else(failed)?;
    let userinfo = crate::oidc::grants::userinfo(&state.op, access, now)
        .await
        .map_err(|_| failed())?;
    let logout_url = crate::oidc::authorize::redirect_with(
        &format!("{}{}", state.config.issuer, paths::END_SESSION),
        &[
            ("id_token_hint", Some(id_token)),
            (
                "post_logout_redirect_uri",
                Some(&format!("{}{}", state.config.issuer, paths::DEMO)),
            ),
        ],
    );
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let mut res = web::render(&DemoRpPage {
        lang,
        name,
        claims: pretty(&verified.claims),
        userinfo: pretty(&userinfo),
        logout_url,
    })?;
    res.headers_mut().append(
        header::SET_COOKIE,
        web::set_cookie(
            &demo_cookie(client),
            "",
            Some(0),
            state.config.secure_cookies(),
            web::SameSite::Lax,
        ),
    );
    Ok(res)
}

/// Serves the generated municipality on a loopback port for as long as the demo runs;
/// returns its base URL.
async fn start_register(now: i64) -> anyhow::Result<String> {
    let data = generate(
        DEMO_SEED,
        DEMO_PERSONS,
        crate::directory::roles::day_of(now),
    );
    let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = mock::serve(listener, Mock::new(data)).await {
            tracing::warn!("demo register stopped: {e}");
        }
    });
    Ok(format!("http://{addr}/v2.0/"))
}

/// The demo people who get the demo password: three pupils, the first pupil's guardians,
/// a teacher and a principal.
async fn demo_usernames(db: &storage::Db) -> anyhow::Result<Vec<String>> {
    let mut out: Vec<String> = ["elev1001", "elev1002", "elev1003"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(p) = storage::persons::by_login_name(db, "elev1001").await? {
        let facts = storage::persons::facts(db, &p.id).await?;
        out.extend(facts.guardians.iter().map(|g| g.username.clone()));
    }
    for role in ["Lärare", "Rektor"] {
        if let Some(u) = storage::sync::first_with_duty(db, DEMO_SOURCE, role).await? {
            out.push(u);
        }
    }
    Ok(out)
}

/// (personal number, "Name (username)") of the listed demo people who have a personnummer,
/// for the BankID stub's app to offer. Empty before `seed`.
pub async fn bankid_suggestions(db: &storage::Db) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let Some((_, people)) = DEMO_PEOPLE.get() else {
        return Ok(out);
    };
    for (username, name, _) in people {
        let Some(p) = storage::persons::by_login_name(db, username).await? else {
            continue;
        };
        if let Some(c) = p.civic_no.as_ref().filter(|c| !c.is_temporary()) {
            out.push((c.as_str().to_string(), format!("{name} ({username})")));
        }
    }
    Ok(out)
}
