//! The federation pages: the login page's upstream choices, `/upstream/NAME/start` (out to
//! the upstream) and `/upstream/NAME/callback` (back from an OpenID provider), and the pages
//! that say why a federated login did not go through, each with a way back.

use super::cookies::{binding_cookie_name, set_binding_cookie, set_sso_cookie};
use super::{Login, live_transaction, resume_url};
use crate::authn::upstream::UpstreamLogin;
use crate::authn::{AuthnError, EndedSession, LogoutNotifier, Transaction};
use crate::upstream::oidc::{CallbackParams, Secrets, Settings};
use crate::upstream::{Kind, Upstream, UpstreamError};
use crate::web::{self, SsoCookie, WebError, i18n::Lang, paths};
use askama::Template;
use axum::Router;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

pub(super) fn routes() -> Router<Login> {
    Router::new()
        .route(paths::UPSTREAM_START, get(start))
        .route(paths::UPSTREAM_CALLBACK, get(callback))
        .route(paths::UPSTREAM_LOGGED_OUT, get(logged_out))
}

/// Whether the upstream `name` is offered for this transaction: the relying party allows
/// `upstream:NAME` and its level reaches what the login requires (`Authn::offered`).
pub(super) async fn offered(login: &Login, tx: &Transaction, name: &str) -> bool {
    login
        .authn
        .offered(tx)
        .await
        .iter()
        .any(|m| m.upstream() == Some(name))
}

/// One upstream on the login page.
pub(super) struct Choice {
    pub href: String,
    pub name: String,
    pub logo: Option<String>,
}

/// The upstreams the login page offers for `tx`: the policy's offered upstream methods, in
/// its order, by display name, with the registry's logo where one is set.
pub(super) async fn choices(
    login: &Login,
    tx: &Transaction,
    offered: &[crate::authn::Method],
) -> Result<Vec<Choice>, WebError> {
    let registry = login.authn.upstreams().await?;
    Ok(offered
        .iter()
        .filter_map(|m| {
            let name = m.upstream()?;
            let logo = registry
                .iter()
                .find(|u| u.name == name)
                .and_then(|u| u.logo.clone());
            Some(Choice {
                href: format!(
                    "{}?tx={}",
                    paths::fill(paths::UPSTREAM_START, "name", name),
                    tx.id
                ),
                name: m.display_name.clone().unwrap_or_else(|| name.to_string()),
                logo,
            })
        })
        .collect())
}

/// The login page's Content-Security-Policy when upstream logos are shown: the default one
/// with the logos' origins allowed as images. None when no logo is shown.
pub(super) fn logo_csp(choices: &[Choice]) -> Option<String> {
    let mut origins: Vec<String> = choices
        .iter()
        .filter_map(|c| c.logo.as_deref())
        .filter_map(|l| url::Url::parse(l).ok())
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null")
        .collect();
    origins.sort();
    origins.dedup();
    (!origins.is_empty()).then(|| {
        format!(
            "default-src 'none'; style-src 'self'; img-src 'self' {}; base-uri 'none'; \
             frame-ancestors 'none'",
            origins.join(" ")
        )
    })
}

#[derive(Template)]
#[template(path = "upstream_error.html")]
struct ErrorPage<'a> {
    lang: Lang,
    message: &'a str,
    /// The transaction to go back to, when it is known.
    tx: Option<&'a str>,
}

/// A page that says why the federated login did not go through, with a way back to the
/// login page when the transaction is known.
pub(super) fn error_page(
    lang: Lang,
    status: StatusCode,
    message: &'static str,
    tx: Option<&str>,
) -> Result<Response, WebError> {
    let page = web::render(&ErrorPage { lang, message, tx })?;
    Ok((status, page).into_response())
}

/// The page for an upstream failure.
fn upstream_failure(lang: Lang, e: &UpstreamError, tx: &str) -> Result<Response, WebError> {
    let (status, message) = match e {
        UpstreamError::Denied => (StatusCode::FORBIDDEN, "upstream.cancelled"),
        UpstreamError::Unavailable(_) => (StatusCode::BAD_GATEWAY, "upstream.unavailable"),
        UpstreamError::Refused(_) | UpstreamError::Invalid(_) => {
            (StatusCode::BAD_GATEWAY, "upstream.broken")
        }
    };
    error_page(lang, status, message, Some(tx))
}

fn redirect_uri(login: &Login, name: &str) -> String {
    format!(
        "{}{}",
        login.config.issuer,
        paths::fill(paths::UPSTREAM_CALLBACK, "name", name)
    )
}

/// The settings the OpenID provider client needs, with the secret opened.
async fn oidc_settings(login: &Login, up: &Upstream) -> Result<Option<Settings>, WebError> {
    let Kind::Oidc {
        issuer,
        client_id,
        scopes,
    } = &up.kind
    else {
        return Ok(None);
    };
    let Some(client_secret) = login.authn.upstream_secret(&up.name).await? else {
        return Err(WebError::internal(format!(
            "upstream {} has no client secret",
            up.name
        )));
    };
    Ok(Some(Settings {
        name: up.name.clone(),
        issuer: issuer.clone(),
        client_id: client_id.clone(),
        client_secret,
        scopes: scopes.clone(),
        redirect_uri: redirect_uri(login, &up.name),
    }))
}

#[derive(serde::Deserialize)]
struct StartQuery {
    tx: String,
}

/// Out to the upstream: stores the login (bound to the transaction and this browser) and
/// redirects to the upstream's authorization endpoint.
async fn start(
    State(login): State<Login>,
    Extension(lang): Extension<Lang>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(q): Query<StartQuery>,
) -> Result<Response, WebError> {
    let now = login.authn.clock().now();
    let tx = live_transaction(&login, &q.tx, now).await?;
    let up = match login.authn.upstream(&name).await? {
        Some(up) if offered(&login, &tx, &name).await => up,
        _ => {
            return error_page(
                lang,
                StatusCode::NOT_FOUND,
                "upstream.not_offered",
                Some(&tx.id),
            );
        }
    };
    // A SAML IdP: a signed AuthnRequest, the login bound by a cookie of its own that
    // survives the IdP's cross-site POST (`upstream_saml`).
    if matches!(up.kind, crate::upstream::Kind::Saml { .. }) {
        return super::upstream_saml::start(&login, &up, &tx, now).await;
    }
    let cookie_name = binding_cookie_name(&login.config);
    let (binding, new_binding) = match web::cookie(&headers, cookie_name) {
        Some(b) if !b.is_empty() && b.len() <= 64 => (b.to_string(), false),
        _ => (crate::keys::random_token(), true),
    };
    let Some(settings) = oidc_settings(&login, &up).await? else {
        return error_page(
            lang,
            StatusCode::NOT_FOUND,
            "upstream.not_offered",
            Some(&tx.id),
        );
    };
    let secrets = Secrets::new();
    let pending = UpstreamLogin {
        upstream: up.name.clone(),
        tx_id: tx.id.clone(),
        nonce: Some(secrets.nonce.clone()),
        pkce_verifier: Some(secrets.pkce_verifier.clone()),
        request_id: None,
        created_at: now,
    };
    // Stored first, so the state sent is the stored login's handle (a login whose upstream
    // turns out to be down just expires).
    let state = login
        .authn
        .begin_upstream_login(&pending, &binding, now)
        .await?;
    let url = login
        .oidc
        .authorization_url(&settings, &state, &secrets, &tx.freshness())
        .await;
    let mut res = match url {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(e) => {
            tracing::warn!(upstream = %up.name, "upstream login could not start: {e}");
            upstream_failure(lang, &e, &tx.id)?
        }
    };
    if new_binding {
        res.headers_mut().append(
            header::SET_COOKIE,
            set_binding_cookie(&binding, &login.config),
        );
    }
    Ok(res)
}

/// Back from an OpenID provider: the state must be a login of this upstream started in this
/// browser; then the code is exchanged, the ID token validated, the person found, and the
/// transaction completed as a password login completes it.
async fn callback(
    State(login): State<Login>,
    Extension(lang): Extension<Lang>,
    Extension(sso): Extension<SsoCookie>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(params): Query<CallbackParams>,
) -> Result<Response, WebError> {
    let now = login.authn.clock().now();
    let binding = super::cookies::binding(&headers, &login.config);
    let state = params.state.as_deref().unwrap_or_default();
    let Some(pending) = login
        .authn
        .take_upstream_login(&name, state, binding, now)
        .await?
    else {
        return error_page(
            lang,
            StatusCode::BAD_REQUEST,
            "upstream.state_invalid",
            None,
        );
    };
    let tx = live_transaction(&login, &pending.tx_id, now).await?;
    let up = match login.authn.upstream(&name).await? {
        Some(up) if offered(&login, &tx, &name).await => up,
        _ => {
            return error_page(
                lang,
                StatusCode::NOT_FOUND,
                "upstream.not_offered",
                Some(&tx.id),
            );
        }
    };
    let Some(settings) = oidc_settings(&login, &up).await? else {
        return error_page(
            lang,
            StatusCode::NOT_FOUND,
            "upstream.not_offered",
            Some(&tx.id),
        );
    };
    let secrets = Secrets {
        nonce: pending.nonce.unwrap_or_default(),
        pkce_verifier: pending.pkce_verifier.unwrap_or_default(),
    };
    let (identity, id_token) = match login
        .oidc
        .finish(&settings, &params, &secrets, &tx.freshness())
        .await
    {
        Ok(done) => done,
        Err(e) => {
            crate::metrics::login(
                crate::metrics::method::UPSTREAM_OIDC,
                crate::metrics::result::FAILURE,
            );
            if !matches!(e, UpstreamError::Denied) {
                tracing::warn!(upstream = %up.name, "upstream login failed: {e}");
            }
            return upstream_failure(lang, &e, &tx.id);
        }
    };
    let finished = login
        .authn
        .finish_upstream(&tx, &up, &identity, sso.value(), now)
        .await;
    crate::metrics::login(
        crate::metrics::method::UPSTREAM_OIDC,
        match &finished {
            Ok(_) => crate::metrics::result::SUCCESS,
            Err(e) => super::page::login_result(e),
        },
    );
    let (cookie, session) = match finished {
        Ok(started) => started,
        Err(AuthnError::LinkRefused(r)) => {
            return error_page(lang, StatusCode::FORBIDDEN, r.message(), Some(&tx.id));
        }
        Err(AuthnError::Refused(r)) => {
            return error_page(lang, StatusCode::FORBIDDEN, r.message(), Some(&tx.id));
        }
        Err(e) => return Err(e.into()),
    };
    login
        .authn
        .remember_upstream_id_token(&session, &up.name, &id_token, now)
        .await?;
    let mut res = Redirect::to(&resume_url(&tx)).into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, set_sso_cookie(&cookie, &login.config));
    Ok(res)
}

/// The state of a logout at an upstream: where to go afterwards, signed so that the
/// logged-out page redirects only where Portvakt itself meant to.
fn logout_state(login: &Login, then: &str) -> String {
    use base64::Engine;
    let token = crate::web::csrf::token(login.csrf_key(), "upstream-logout", then);
    let then = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(then);
    format!("{then}.{token}")
}

fn logout_target(login: &Login, state: &str) -> Option<String> {
    use base64::Engine;
    let (then, token) = state.split_once('.')?;
    let then = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(then)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())?;
    crate::web::csrf::verify(login.csrf_key(), "upstream-logout", &then, token).then_some(then)
}

#[derive(serde::Deserialize)]
struct LoggedOutQuery {
    #[serde(default)]
    state: String,
}

/// Back from logging out at an upstream: on to where Portvakt's logout was going.
async fn logged_out(State(login): State<Login>, Query(q): Query<LoggedOutQuery>) -> Response {
    let target = logout_target(&login, &q.state).unwrap_or_else(|| paths::LOGGED_OUT.into());
    Redirect::to(&target).into_response()
}

/// Ends the upstream's session too when Portvakt's session came from an upstream OpenID
/// provider with an `end_session_endpoint` (RP-Initiated Logout 1.0, with `id_token_hint`):
/// the browser goes there last, and comes back to `/upstream/NAME/logged-out`; or from an
/// upstream SAML IdP with a Redirect SingleLogoutService (a signed LogoutRequest; its
/// LogoutResponse comes back to `/upstream/NAME/slo`, `upstream_saml::logout_hop`). Wired
/// as a `LogoutNotifier` in app.rs.
pub struct UpstreamLogout {
    pub login: Login,
}

impl UpstreamLogout {
    async fn target(&self, ended: &EndedSession, then: &str, now: i64) -> Option<String> {
        let login = &self.login;
        let (name, id_token) = match login.authn.take_upstream_id_token(&ended.id).await {
            Ok(Some(found)) => found,
            // Not from an OpenID provider: perhaps from a SAML IdP.
            Ok(None) => {
                return super::upstream_saml::logout_hop(login, &ended.id, then, now).await;
            }
            Err(e) => {
                tracing::warn!("upstream logout: {}", crate::error_chain(&e));
                return None;
            }
        };
        let up = login.authn.upstream(&name).await.ok()??;
        let Kind::Oidc {
            issuer, client_id, ..
        } = &up.kind
        else {
            return None;
        };
        let endpoint = login.oidc.end_session_endpoint(issuer).await?;
        let mut url = url::Url::parse(&endpoint).ok()?;
        let back = format!(
            "{}{}",
            login.config.issuer,
            paths::fill(paths::UPSTREAM_LOGGED_OUT, "name", &name)
        );
        url.query_pairs_mut()
            .append_pair("id_token_hint", &id_token)
            .append_pair("client_id", client_id)
            .append_pair("post_logout_redirect_uri", &back)
            .append_pair("state", &logout_state(login, then));
        Some(url.into())
    }
}

impl LogoutNotifier for UpstreamLogout {
    fn session_ended(&self, _ended: &EndedSession, _now: i64) {}

    fn front_channel<'a>(
        &'a self,
        ended: &'a EndedSession,
        then: &'a str,
        now: i64,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<String>> + Send + 'a>> {
        Box::pin(self.target(ended, then, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logos_widen_only_the_image_sources() {
        let c = |logo: Option<&str>| Choice {
            href: String::new(),
            name: String::new(),
            logo: logo.map(String::from),
        };
        assert_eq!(logo_csp(&[c(None)]), None);
        let csp = logo_csp(&[
            c(Some("https://cdn.example.se/a.svg")),
            c(Some("https://cdn.example.se/b.svg")),
        ])
        .unwrap();
        assert!(
            csp.contains("img-src 'self' https://cdn.example.se;"),
            "{csp}"
        );
        assert!(csp.contains("default-src 'none'") && !csp.contains("script"));
    }
}
