//! Who gets into the admin UI. An admin login is a login transaction of its own
//! (`Protocol::Admin`) with `[admin]`'s methods and level; once the person has logged in,
//! their roles decide, and an admin session (a cookie of its own, `admin_sessions`) starts on
//! top of the SSO session. The session ends after `[admin] idle_timeout` without a request,
//! with its SSO session, or at logout; roles are read again on every request, so taking the
//! admin role away takes effect at once.

use super::{Admin, audit};
use crate::authn::{Begin, Protocol, Requirement, Resumed, Session};
use crate::directory::RoleKind;
use crate::storage;
use crate::web::{self, SameSite, SsoCookie, WebError, csrf, paths};
use axum::Router;
use axum::extract::{Extension, FromRequestParts, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

pub(super) fn routes() -> Router<Admin> {
    Router::new()
        .route(paths::ADMIN_LOGIN, get(login_get))
        .route(paths::ADMIN_RESUME, get(resume_get))
        .route(paths::ADMIN_LOGOUT, post(logout_post))
}

/// The relying party name an admin login shows on the login page.
const RP_ID: &str = "portvakt-admin";
const RP_NAME: &str = "Portvakt admin";

fn cookie_name(admin: &Admin) -> &'static str {
    if admin.config.secure_cookies() {
        "__Host-portvakt_admin"
    } else {
        "portvakt_admin"
    }
}

/// A logged-in administrator, as every admin handler takes it. Extracting it checks the
/// admin session and the person's roles; without them a GET is sent to log in and anything
/// else is refused.
#[derive(Debug, Clone)]
pub struct Access {
    pub person_id: String,
    pub username: String,
    pub display_name: String,
    write: bool,
    /// Holds `admin-protected`: sees people with a protected identity.
    pub sees_protected: bool,
    pub sso_session_id: String,
    /// The CSRF token of this admin session's forms.
    pub csrf: String,
    /// What the token is bound to: the admin session's id (its cookie's hash).
    csrf_binding: String,
    /// The requested path and query of a GET, for the language switch (empty for a POST).
    pub here: String,
}

impl Access {
    pub fn can_write(&self) -> bool {
        self.write
    }

    /// Whether this admin may see `p`: people with a protected identity only with
    /// `admin-protected`, as the directory's rules say.
    pub fn may_see(&self, p: &crate::directory::Person) -> bool {
        !p.protected_identity || self.sees_protected
    }

    /// Who did it, in audit events.
    pub fn actor(&self) -> String {
        format!("admin:{}", self.username)
    }

    /// A form's CSRF token (constant-time check): every POST calls this or `change`.
    pub fn check_csrf(&self, admin: &Admin, submitted: &str) -> Result<(), WebError> {
        if csrf::verify(
            &admin.keys.secrets().csrf,
            "admin",
            &self.csrf_binding,
            submitted,
        ) {
            Ok(())
        } else {
            Err(WebError::new(StatusCode::FORBIDDEN, "error.csrf"))
        }
    }

    /// For every POST that changes something: the CSRF token, then the `admin` role
    /// (`admin-readonly` is refused).
    pub fn change(&self, admin: &Admin, submitted_csrf: &str) -> Result<(), WebError> {
        self.check_csrf(admin, submitted_csrf)?;
        if self.write {
            Ok(())
        } else {
            Err(WebError::new(StatusCode::FORBIDDEN, "admin.readonly"))
        }
    }
}

/// Which admin roles a person's roles give: (may change, sees protected identities), or
/// None for someone who is no administrator.
fn admin_rights(roles: &[crate::directory::Role]) -> Option<(bool, bool)> {
    let has = |k| roles.iter().any(|r| r.kind == k);
    let protected = has(RoleKind::AdminProtected);
    if has(RoleKind::Admin) {
        Some((true, protected))
    } else if has(RoleKind::AdminReadonly) {
        Some((false, protected))
    } else {
        None
    }
}

/// Why a request did not get an `Access`.
pub enum Denied {
    /// No live admin session: log in, then come back to `next`.
    Login {
        next: String,
    },
    /// No session on a POST: the form cannot be replayed after a login.
    Expired,
    /// Logged in, but not (or no longer) an administrator.
    NotAdmin,
    Error(WebError),
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        match self {
            Denied::Login { next } => Redirect::to(&format!(
                "{}?next={}",
                paths::ADMIN_LOGIN,
                url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
            ))
            .into_response(),
            Denied::Expired => {
                WebError::new(StatusCode::FORBIDDEN, "admin.session_ended").into_response()
            }
            Denied::NotAdmin => {
                WebError::new(StatusCode::FORBIDDEN, "admin.not_admin").into_response()
            }
            Denied::Error(e) => e.into_response(),
        }
    }
}

impl<E: std::error::Error> From<E> for Denied {
    fn from(e: E) -> Self {
        Denied::Error(e.into())
    }
}

impl FromRequestParts<Admin> for Access {
    type Rejection = Denied;

    async fn from_request_parts(parts: &mut Parts, admin: &Admin) -> Result<Self, Denied> {
        let now = admin.now();
        let denied = || {
            if parts.method == Method::GET || parts.method == Method::HEAD {
                Denied::Login {
                    next: safe_next(parts.uri.path_and_query().map(|p| p.as_str())),
                }
            } else {
                Denied::Expired
            }
        };
        let Some(value) = web::cookie(&parts.headers, cookie_name(admin)) else {
            return Err(denied());
        };
        let id = crate::keys::hash_token(value);
        let idle = admin.config.admin.idle_timeout;
        let Some(row) = storage::admin::touch_session(&admin.db, &id, idle, now).await? else {
            return Err(denied());
        };
        let person = storage::persons::by_id(&admin.db, &row.person_id)
            .await?
            .filter(|p| p.active);
        let roles = storage::persons::roles(&admin.db, &row.person_id).await?;
        let (Some(person), Some((write, sees_protected))) = (person, admin_rights(&roles)) else {
            storage::admin::end_session(&admin.db, &id).await?;
            return Err(Denied::NotAdmin);
        };
        let csrf = csrf::token(&admin.keys.secrets().csrf, "admin", &id);
        Ok(Access {
            person_id: person.id.clone(),
            display_name: match person.display_name() {
                n if n.is_empty() => person.username.clone(),
                n => n,
            },
            username: person.username,
            write,
            sees_protected,
            sso_session_id: row.sso_session_id,
            csrf,
            csrf_binding: id,
            // The answer to a POST (a secret shown once, a password sheet) has no address
            // to show again in the other language: the switch goes to the section instead.
            here: if parts.method == Method::GET {
                parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default()
            } else {
                String::new()
            },
        })
    }
}

/// Where to go after logging in: a path under /admin given by the request, else /admin.
/// Never another origin (`//host`, `/\host`) and never a path outside the admin UI.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if (n == paths::ADMIN || n.starts_with("/admin/") || n.starts_with("/admin?"))
                && !n.contains('\\')
                && !n.starts_with(paths::ADMIN_LOGIN)
                && !n.starts_with(paths::ADMIN_RESUME) =>
        {
            n.to_string()
        }
        _ => paths::ADMIN.to_string(),
    }
}

/// What an admin login transaction carries to its resume.
#[derive(Serialize, Deserialize)]
struct AdminRequest {
    next: String,
    requirement: Requirement,
}

fn requirement(admin: &Admin) -> Requirement {
    Requirement {
        allowed_methods: admin.config.admin.methods.clone(),
        min_level: admin.config.admin.min_level.clone(),
        ..Default::default()
    }
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

async fn login_get(
    State(admin): State<Admin>,
    Extension(sso): Extension<SsoCookie>,
    Query(q): Query<LoginQuery>,
) -> Result<Response, WebError> {
    let now = admin.now();
    let next = safe_next(q.next.as_deref());
    let requirement = requirement(&admin);
    let session = admin.authn.session(sso.value(), now).await?;
    if let Some(s) = session.as_ref().filter(|s| requirement.reusable(s, now)) {
        return enter(&admin, s, &next, now).await;
    }
    let request = serde_json::to_string(&AdminRequest {
        next,
        requirement: requirement.clone(),
    })
    .map_err(WebError::internal)?;
    let tx = admin
        .authn
        .begin(
            Begin {
                protocol: Protocol::Admin,
                rp_id: RP_ID,
                rp_name: RP_NAME,
                request,
                login_hint: None,
                upstream_hint: None,
                requirement: &requirement,
                session: session.as_ref(),
            },
            now,
        )
        .await?;
    Ok(Redirect::to(&format!("{}?tx={tx}", paths::LOGIN)).into_response())
}

#[derive(Deserialize)]
struct ResumeQuery {
    tx: String,
}

async fn resume_get(
    State(admin): State<Admin>,
    Extension(sso): Extension<SsoCookie>,
    Query(q): Query<ResumeQuery>,
) -> Result<Response, WebError> {
    let now = admin.now();
    let resumed = admin
        .authn
        .resume::<AdminRequest>(Protocol::Admin, &q.tx, sso.value(), |r| &r.requirement, now)
        .await?;
    match resumed {
        Resumed::Expired => Err(WebError::bad_request("login.expired")),
        Resumed::Login(tx) => {
            Ok(Redirect::to(&format!("{}?tx={tx}", paths::LOGIN)).into_response())
        }
        Resumed::Ready {
            tx,
            request,
            session,
        } => {
            if !admin.authn.finish(&tx.id).await? {
                return Err(WebError::bad_request("login.expired"));
            }
            enter(&admin, &session, &safe_next(Some(&request.next)), now).await
        }
    }
}

/// Starts an admin session for a person who logged in, if their roles allow it.
async fn enter(
    admin: &Admin,
    session: &Session,
    next: &str,
    now: i64,
) -> Result<Response, WebError> {
    let roles = storage::persons::roles(&admin.db, &session.person_id).await?;
    let person = storage::persons::by_id(&admin.db, &session.person_id)
        .await?
        .filter(|p| p.active)
        .ok_or(WebError::bad_request("login.expired"))?;
    let actor = format!("admin:{}", person.username);
    if admin_rights(&roles).is_none() {
        audit::event(&admin.db, "admin.refused", &actor, now).await?;
        return Err(WebError::new(StatusCode::FORBIDDEN, "admin.not_admin"));
    }
    let value = crate::keys::random_token();
    let id = crate::keys::hash_token(&value);
    storage::admin::insert_session(&admin.db, &id, &session.id, &person.id, now).await?;
    audit::event(&admin.db, "admin.login", &actor, now).await?;
    let cookie = web::set_cookie(
        cookie_name(admin),
        &value,
        None,
        admin.config.secure_cookies(),
        SameSite::Lax,
    );
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to(next)).into_response())
}

#[derive(Deserialize)]
struct LogoutForm {
    csrf: String,
}

/// Ends the admin session and the SSO session under it: an administrator who logs out on a
/// shared computer is logged out everywhere.
async fn logout_post(
    State(admin): State<Admin>,
    access: Access,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LogoutForm>,
) -> Result<Response, WebError> {
    access.check_csrf(&admin, &form.csrf)?;
    let now = admin.now();
    if let Some(value) = web::cookie(&headers, cookie_name(&admin)) {
        storage::admin::end_session(&admin.db, &crate::keys::hash_token(value)).await?;
    }
    if let Some(s) = admin
        .authn
        .session_by_id(&access.sso_session_id, now)
        .await?
    {
        admin.authn.end_session(&s, now).await?;
    }
    audit::event(&admin.db, "admin.logout", &access.actor(), now).await?;
    let clear = web::set_cookie(
        cookie_name(&admin),
        "",
        Some(0),
        admin.config.secure_cookies(),
        SameSite::Lax,
    );
    let mut res = (
        [(header::SET_COOKIE, clear)],
        Redirect::to(paths::LOGGED_OUT),
    )
        .into_response();
    res.extensions_mut().insert(web::ClearSsoCookie);
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Role;

    #[test]
    fn next_stays_inside_the_admin_ui() {
        assert_eq!(safe_next(Some("/admin/people?q=a")), "/admin/people?q=a");
        assert_eq!(safe_next(Some("/admin")), "/admin");
        for bad in [
            "//evil.example/admin",
            "https://evil.example/admin",
            "/administrator",
            "/admin/\\evil",
            "/login",
            "/admin/login?next=/admin",
            "/admin/resume?tx=1",
        ] {
            assert_eq!(safe_next(Some(bad)), "/admin", "{bad}");
        }
        assert_eq!(safe_next(None), "/admin");
    }

    #[test]
    fn only_admin_roles_get_in() {
        let r = |s: &str| Role::parse(s).unwrap();
        assert_eq!(admin_rights(&[r("teacher")]), None);
        assert_eq!(admin_rights(&[r("admin-protected")]), None);
        assert_eq!(admin_rights(&[r("admin")]), Some((true, false)));
        assert_eq!(
            admin_rights(&[r("admin-readonly"), r("admin-protected")]),
            Some((false, true))
        );
    }
}
