//! Demo mode: a synthetic municipality (two schools, classes, students, teachers, a
//! guardian, a principal, an admin) and two demo relying parties that log in through
//! Portvakt with the authorization code flow and show the ID token's claims. Never in
//! production mode (`portvakt demo` refuses it).

pub mod saml_sp;

use crate::app::AppState;
use crate::directory::{self, CivicNo, NewPerson, Role};
use crate::oidc::authorize::Params;
use crate::oidc::client::{self, ClientSpec};
use crate::storage;
use crate::unix_now;
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
pub const DEMO_CLIENTS: [(&str, &str); 2] = [
    ("demo-app-1", "Demoappen Ett"),
    ("demo-app-2", "Demoappen Två"),
];

struct DemoPerson {
    username: &'static str,
    given: &'static str,
    family: &'static str,
    roles: &'static [&'static str],
    groups: &'static [&'static str],
    civic: Option<&'static str>,
}

const PEOPLE: &[DemoPerson] = &[
    DemoPerson {
        username: "elev.anna",
        given: "Anna",
        family: "Ek",
        roles: &["student@EKS"],
        groups: &["EKS-7A"],
        civic: None,
    },
    DemoPerson {
        username: "elev.bo",
        given: "Bo",
        family: "Lind",
        roles: &["student@EKS"],
        groups: &["EKS-7B"],
        civic: None,
    },
    DemoPerson {
        username: "elev.cia",
        given: "Cia",
        family: "Björk",
        roles: &["student@BJS"],
        groups: &["BJS-4C"],
        civic: None,
    },
    DemoPerson {
        username: "larare.david",
        given: "David",
        family: "Alm",
        roles: &["teacher@EKS"],
        groups: &["EKS-7A", "EKS-7B"],
        civic: None,
    },
    DemoPerson {
        username: "larare.eva",
        given: "Eva",
        family: "Asp",
        roles: &["teacher@BJS"],
        groups: &["BJS-4C"],
        civic: None,
    },
    DemoPerson {
        username: "vardnad.fatima",
        given: "Fatima",
        family: "Ek",
        roles: &["guardian"],
        groups: &[],
        civic: Some("19121212-1212"),
    },
    DemoPerson {
        username: "rektor.gustav",
        given: "Gustav",
        family: "Gran",
        roles: &["principal@EKS", "staff@EKS"],
        groups: &[],
        civic: None,
    },
    DemoPerson {
        username: "admin",
        given: "Ada",
        family: "Admin",
        roles: &["admin"],
        groups: &[],
        civic: None,
    },
];

fn redirect_uri(state: &AppState, client_id: &str) -> String {
    format!(
        "{}{}",
        state.config.issuer,
        paths::fill(paths::DEMO_CALLBACK, "client", client_id)
    )
}

/// Creates the demo municipality and demo clients if they are not there yet.
pub async fn seed(state: &AppState) -> anyhow::Result<()> {
    let db = &state.db;
    let now = unix_now();
    let scope = url::Url::parse(&state.config.issuer)?
        .host_str()
        .unwrap_or("localhost")
        .to_string();
    if storage::persons::by_login_name(db, "admin")
        .await?
        .is_none()
    {
        storage::persons::upsert_school_unit(db, "EKS", "Ekskolan", "local").await?;
        storage::persons::upsert_school_unit(db, "BJS", "Björkskolan", "local").await?;
        for (id, unit, name) in [
            ("EKS-7A", "EKS", "7A"),
            ("EKS-7B", "EKS", "7B"),
            ("BJS-4C", "BJS", "4C"),
        ] {
            storage::persons::upsert_group(db, id, unit, name, "local").await?;
        }
        let mut anna = None;
        let mut fatima = None;
        for p in PEOPLE {
            let new = NewPerson {
                username: p.username.into(),
                given_name: p.given.into(),
                family_name: p.family.into(),
                email: Some(format!("{}@demo.portvakt.se", p.username)),
                civic_no: p.civic.map(CivicNo::parse).transpose()?,
                protected_identity: false,
                roles: p
                    .roles
                    .iter()
                    .map(|r| Role::parse(r))
                    .collect::<Result<_, _>>()?,
                source: "local".into(),
            };
            let person = directory::add_person(db, &new, &scope, now).await?;
            state
                .authn
                .set_password(&person.id, DEMO_PASSWORD.into(), now)
                .await?;
            for g in p.groups {
                storage::persons::add_group_member(db, g, &person.id).await?;
            }
            match p.username {
                "elev.anna" => anna = Some(person.id.clone()),
                "vardnad.fatima" => fatima = Some(person.id.clone()),
                _ => {}
            }
        }
        if let (Some(g), Some(s)) = (fatima, anna) {
            storage::persons::add_guardianship(db, &g, &s).await?;
        }
    }
    for (id, name) in DEMO_CLIENTS {
        // The issuer may have changed since the last demo run (another port): the demo
        // clients follow it.
        if let Some(existing) = client::get(db, id).await? {
            if existing.redirect_uri_registered(&redirect_uri(state, id)) {
                continue;
            }
            let spec = ClientSpec {
                client_id: id.into(),
                redirect_uris: vec![redirect_uri(state, id)],
                post_logout_redirect_uris: vec![format!("{}{}", state.config.issuer, paths::DEMO)],
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
            // Scopes and grants: the defaults (openid profile email school; code + refresh).
            ..Default::default()
        };
        client::add(db, &state.keys, &spec, now).await?;
    }
    saml_sp::seed(state).await?;
    Ok(())
}

/// What `portvakt demo` prints for a newcomer.
pub fn banner(issuer: &str) -> String {
    let mut s = format!(
        "\nPortvakt demo: open {issuer}{}\nDemo people (password for all: {DEMO_PASSWORD}):\n",
        paths::DEMO
    );
    for p in PEOPLE {
        s.push_str(&format!(
            "  {:<16} {} {} ({})\n",
            p.username,
            p.given,
            p.family,
            p.roles.join(", ")
        ));
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
    let now = unix_now();
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
