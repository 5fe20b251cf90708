//! How people must log in to a service: the allowed methods and the lowest level.
//!
//! A service named by `[[login_policy]]` in the config file gets that policy again at every
//! start (`authn::policy::apply_config`), so an edit here would silently come undone: the
//! page says the file manages it and refuses the change.

use super::{Fields, Service, Which};
use crate::admin::{Access, Admin, Frame, audit};
use crate::authn::{acr, policy};
use crate::storage::{self, LoginPolicy};
use crate::web::{self, WebError, i18n::Lang, paths};
use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

pub(super) fn routes() -> Router<Admin> {
    Router::new().route(paths::ADMIN_LOGIN_POLICY, get(login_get).post(login_post))
}

pub(crate) struct MethodBox {
    pub value: String,
    /// Catalogue key for password and BankID; empty for an upstream (its name is shown).
    pub label_key: &'static str,
    pub label: String,
    pub checked: bool,
}

pub(crate) struct LevelOption {
    pub value: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "admin/login_policy.html")]
struct LoginPolicyPage {
    lang: Lang,
    frame: Frame,
    protocol: &'static str,
    id: String,
    name: String,
    service_page: String,
    methods: Vec<MethodBox>,
    levels: Vec<LevelOption>,
    no_level: bool,
    /// The config file's `[[login_policy]]` names this service.
    managed: bool,
    saved: bool,
    /// A refused change: the catalogue key of why.
    error: &'static str,
}

#[derive(Deserialize)]
struct LoginQuery {
    #[serde(flatten)]
    which: Which,
    #[serde(default)]
    saved: Option<String>,
}

fn managed(admin: &Admin, service: &Service) -> bool {
    admin
        .config
        .login_policies
        .iter()
        .any(|e| e.relying_party == service.id())
}

async fn page(
    admin: &Admin,
    lang: Lang,
    access: &Access,
    service: &Service,
    shown: &LoginPolicy,
    saved: bool,
    error: &'static str,
) -> Result<LoginPolicyPage, WebError> {
    let mut methods = vec![
        MethodBox {
            value: policy::PASSWORD.into(),
            label_key: "admin.policy.method.password",
            label: String::new(),
            checked: false,
        },
        MethodBox {
            value: policy::BANKID.into(),
            label_key: "admin.policy.method.bankid",
            label: String::new(),
            checked: false,
        },
    ];
    for u in storage::upstream::list(&admin.db).await? {
        methods.push(MethodBox {
            value: format!("{}{}", policy::UPSTREAM_PREFIX, u.name),
            label_key: "",
            label: u.display_name,
            checked: false,
        });
    }
    // A stored method no longer offered (an upstream removed) stays visible, so saving the
    // page does not drop it unseen.
    for m in &shown.allowed_methods {
        if !methods.iter().any(|b| &b.value == m) {
            methods.push(MethodBox {
                value: m.clone(),
                label_key: "",
                label: m.clone(),
                checked: false,
            });
        }
    }
    for b in &mut methods {
        b.checked = shown.allowed_methods.contains(&b.value);
    }
    let levels = acr::KNOWN
        .iter()
        .map(|(l, _)| LevelOption {
            value: l.to_string(),
            selected: shown.min_level.as_deref() == Some(l),
        })
        .collect();
    Ok(LoginPolicyPage {
        lang,
        frame: Frame::new(lang, access, "services"),
        protocol: service.protocol(),
        id: service.id().to_string(),
        name: service.name().to_string(),
        service_page: service.page(),
        methods,
        levels,
        no_level: shown.min_level.is_none(),
        managed: managed(admin, service),
        saved,
        error,
    })
}

async fn login_get(
    State(admin): State<Admin>,
    Extension(lang): Extension<Lang>,
    access: Access,
    Query(q): Query<LoginQuery>,
) -> Result<Response, WebError> {
    let service = Service::load(&admin, &q.which).await?;
    let shown = service.login().clone();
    web::render(
        &page(
            &admin,
            lang,
            &access,
            &service,
            &shown,
            q.saved.is_some(),
            "",
        )
        .await?,
    )
}

async fn login_post(
    State(admin): State<Admin>,
    Extension(lang): Extension<Lang>,
    access: Access,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = Fields::parse(&body);
    access.change(&admin, &form.one("csrf"))?;
    let service = Service::load(&admin, &form.which()).await?;
    let level = form.one("min_level");
    let wanted = LoginPolicy {
        allowed_methods: form.all("method"),
        min_level: (!level.is_empty()).then_some(level),
    };
    let refuse = |status: StatusCode, page: LoginPolicyPage| web::render_status(status, &page);
    if managed(&admin, &service) {
        let current = service.login().clone();
        let p = page(
            &admin,
            lang,
            &access,
            &service,
            &current,
            false,
            "admin.policy.login.managed",
        )
        .await?;
        return refuse(StatusCode::CONFLICT, p);
    }
    // The same checks as `client add`/`sp add --allow-method/--min-level` and the config
    // file: known method names, a registered upstream, a known level.
    let upstreams: Vec<String> = storage::upstream::list(&admin.db)
        .await?
        .into_iter()
        .map(|u| u.name)
        .collect();
    let invalid = policy::check_policy(&wanted).is_err()
        || wanted.allowed_methods.iter().any(|m| {
            m.strip_prefix(policy::UPSTREAM_PREFIX)
                .is_some_and(|u| !upstreams.iter().any(|n| n == u))
        });
    if invalid {
        let p = page(
            &admin,
            lang,
            &access,
            &service,
            &wanted,
            false,
            "admin.policy.login.invalid",
        )
        .await?;
        return refuse(StatusCode::BAD_REQUEST, p);
    }
    let before = service.login().clone();
    let now = admin.now();
    let mut tx = admin.db.begin().await?;
    let found = match &service {
        Service::Oidc(c) => {
            storage::clients::set_login_in(&mut tx, &c.client_id, &wanted, now).await?
        }
        Service::Saml(s) => {
            storage::saml::set_login_in(&mut tx, &s.entity_id, &wanted, now).await?
        }
    };
    if !found {
        return Err(WebError::new(
            StatusCode::NOT_FOUND,
            "admin.policy.no_service",
        ));
    }
    let view =
        |l: &LoginPolicy| json!({ "allowed_methods": l.allowed_methods, "min_level": l.min_level });
    audit::change(
        &mut tx,
        &access,
        "service.login_policy_changed",
        &service.target(),
        Some(&view(&before)),
        Some(&view(&wanted)),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!(
        "{}?{}&saved=1",
        paths::ADMIN_LOGIN_POLICY,
        service.query()
    ))
    .into_response())
}
