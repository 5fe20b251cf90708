//! SAML SPs in the admin UI: register one from its metadata (`new.rs`: pasted, uploaded or
//! from a URL, previewed before it is saved), and an SP's page: what its metadata says, the
//! refresh status of URL-registered ones, its policy, refresh, disable/enable and removal.
//! Every change is one transaction with its audit event (`service.saml.*`).

mod new;
mod view;

use super::super::{Access, Admin, Frame, audit, home::time};
use crate::services::saml_sp::{self, SpRecord};
use crate::storage;
use crate::web::{self, WebError, i18n::Lang, paths};
use askama::Template;
use axum::Router;
use axum::extract::{Extension, Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use view::{EntityView, PolicyAudit, PolicyFields, id_query};

pub(super) fn routes() -> Router<Admin> {
    Router::new()
        .route(paths::ADMIN_SAML, get(sp_get).post(settings_post))
        .route(paths::ADMIN_SAML_REFRESH, axum::routing::post(refresh_post))
        .route(paths::ADMIN_SAML_DISABLE, axum::routing::post(disable_post))
        .route(paths::ADMIN_SAML_ENABLE, axum::routing::post(enable_post))
        .route(paths::ADMIN_SAML_REMOVE, get(remove_get).post(remove_post))
        .merge(new::routes())
}

#[derive(serde::Deserialize)]
struct IdQuery {
    id: String,
    /// What was just done (a notice): added, updated, refreshed, disabled, enabled.
    done: Option<String>,
}

/// The refresh status of an SP registered from a URL.
struct RefreshView {
    url: String,
    fetched_at: String,
    /// The last refresh that changed ACS URLs or certificates: (when, what).
    changed: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "admin/saml_sp.html")]
struct SpPage {
    lang: Lang,
    frame: Frame,
    entity: EntityView,
    id_query: String,
    disabled: bool,
    expired: bool,
    refresh: Option<RefreshView>,
    policy: PolicyFields,
    release: Vec<String>,
    notice: Option<&'static str>,
    error: Option<&'static str>,
    /// The fetch's or parser's own words about a failed refresh.
    error_detail: Option<String>,
    /// Seconds a change may take to reach every instance (the SP cache).
    cache_ttl: i64,
}

async fn load(admin: &Admin, id: &str) -> Result<SpRecord, WebError> {
    storage::saml::get_sp(&admin.db, id)
        .await?
        .ok_or_else(|| WebError::new(StatusCode::NOT_FOUND, "admin.saml.unknown"))
}

async fn sp_page(
    admin: &Admin,
    lang: Lang,
    access: &Access,
    rec: &SpRecord,
    policy: Option<PolicyFields>,
    notice: Option<&'static str>,
    error: Option<&'static str>,
) -> Result<SpPage, WebError> {
    let now = admin.now();
    let sp = rec
        .load(now)
        .map_err(|e| WebError::internal(crate::error_chain(&e)))?;
    let refresh = match &rec.metadata_url {
        None => None,
        Some(url) => {
            let prefix = format!("{}: ", rec.entity_id);
            let changed =
                storage::records::last_audit(&admin.db, saml_sp::METADATA_CHANGED, &prefix)
                    .await?
                    .map(|(at, detail)| (time(at), detail[prefix.len()..].to_string()));
            Some(RefreshView {
                url: url.clone(),
                fetched_at: time(rec.fetched_at),
                changed,
            })
        }
    };
    Ok(SpPage {
        lang,
        frame: Frame::new(lang, access, "services"),
        entity: EntityView::new(&sp.meta, &rec.metadata, now),
        id_query: id_query(&rec.entity_id),
        disabled: rec.disabled,
        expired: sp.expired(now),
        refresh,
        policy: policy.unwrap_or_else(|| PolicyFields::of(&rec.policy)),
        release: rec.policy.release.clone(),
        notice,
        error,
        error_detail: None,
        cache_ttl: admin.config.cache.client_ttl,
    })
}

fn notice_of(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "added" => "admin.saml.done.added",
        "updated" => "admin.saml.done.updated",
        "metadata" => "admin.saml.done.metadata",
        "refreshed" => "admin.saml.done.refreshed",
        "disabled" => "admin.saml.done.disabled",
        "enabled" => "admin.saml.done.enabled",
        _ => return None,
    })
}

async fn sp_get(
    State(admin): State<Admin>,
    Extension(lang): Extension<Lang>,
    access: Access,
    Query(q): Query<IdQuery>,
) -> Result<Response, WebError> {
    let rec = load(&admin, &q.id).await?;
    let page = sp_page(
        &admin,
        lang,
        &access,
        &rec,
        None,
        notice_of(q.done.as_deref()),
        None,
    )
    .await?;
    web::render(&page)
}

/// Back to the SP's page with a notice of what was done.
fn to_sp(entity_id: &str, done: &str) -> Response {
    Redirect::to(&format!(
        "{}?{}&done={done}",
        paths::ADMIN_SAML,
        id_query(entity_id)
    ))
    .into_response()
}

async fn settings_post(
    State(admin): State<Admin>,
    Extension(lang): Extension<Lang>,
    access: Access,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    access.change(&admin, &get("csrf").unwrap_or_default())?;
    let id = get("id").unwrap_or_default();
    let now = admin.now();
    let mut tx = admin.db.begin().await?;
    let rec = storage::saml::get_sp_in(&mut tx, &id)
        .await?
        .ok_or_else(|| WebError::new(StatusCode::NOT_FOUND, "admin.saml.unknown"))?;
    let fields = PolicyFields::read(get);
    let policy = match fields.apply(rec.policy.clone()) {
        Ok(p) => p,
        Err(key) => {
            drop(tx);
            let page = sp_page(&admin, lang, &access, &rec, Some(fields), None, Some(key)).await?;
            return web::render_status(StatusCode::BAD_REQUEST, &page);
        }
    };
    saml_sp::update_in(&mut tx, &id, None, &policy, now)
        .await
        .map_err(|e| WebError::internal(crate::error_chain(&e)))?;
    let url = rec.metadata_url.as_deref();
    audit::change(
        &mut tx,
        &access,
        "service.saml.updated",
        &id,
        Some(&PolicyAudit::new(&id, &rec.policy, url, rec.disabled)),
        Some(&PolicyAudit::new(&id, &policy, url, rec.disabled)),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(to_sp(&id, "updated"))
}

#[derive(serde::Deserialize)]
struct ActionForm {
    /// Missing is refused by the CSRF check (403), not by the form's parser.
    #[serde(default)]
    csrf: String,
    id: String,
}

/// Fetches an URL-registered SP's metadata again now.
async fn refresh_post(
    State(admin): State<Admin>,
    Extension(lang): Extension<Lang>,
    access: Access,
    Form(form): Form<ActionForm>,
) -> Result<Response, WebError> {
    access.change(&admin, &form.csrf)?;
    let rec = load(&admin, &form.id).await?;
    let Some(url) = rec.metadata_url.clone() else {
        return Err(WebError::bad_request("admin.saml.err.no_url"));
    };
    let allow_http = admin.config.mode == crate::config::Mode::Development;
    let now = admin.now();
    let fetched = saml_sp::load_source(&admin.http, &url, allow_http).await;
    let result = match fetched {
        Ok(doc) => {
            let mut tx = admin.db.begin().await?;
            match saml_sp::refresh_in(&mut tx, &rec, &doc, &url, &access.actor(), now).await {
                Ok(changed) => {
                    let before = serde_json::json!({
                        "entity_id": rec.entity_id, "metadata_url": url,
                        "fetched_at": rec.fetched_at, "valid_until": rec.valid_until,
                    });
                    let after = serde_json::json!({
                        "entity_id": rec.entity_id, "metadata_url": url, "fetched_at": now,
                        "changed": changed,
                    });
                    audit::change(
                        &mut tx,
                        &access,
                        "service.saml.refreshed",
                        &rec.entity_id,
                        Some(&before),
                        Some(&after),
                        now,
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(to_sp(&rec.entity_id, "refreshed")),
        Err(e) => {
            tracing::warn!(
                "refreshing metadata of {} failed: {}",
                rec.entity_id,
                crate::error_chain(&e)
            );
            let key = new::error_key(&e);
            let mut page = sp_page(&admin, lang, &access, &rec, None, None, Some(key)).await?;
            page.error_detail = new::error_detail(&e);
            web::render_status(StatusCode::BAD_GATEWAY, &page)
        }
    }
}

async fn set_disabled(
    admin: &Admin,
    access: &Access,
    form: &ActionForm,
    disabled: bool,
) -> Result<Response, WebError> {
    access.change(admin, &form.csrf)?;
    let now = admin.now();
    let mut tx = admin.db.begin().await?;
    let rec = storage::saml::get_sp_in(&mut tx, &form.id)
        .await?
        .ok_or_else(|| WebError::new(StatusCode::NOT_FOUND, "admin.saml.unknown"))?;
    storage::saml::set_disabled_in(&mut tx, &rec.entity_id, disabled, now).await?;
    let url = rec.metadata_url.as_deref();
    let (kind, done) = if disabled {
        ("service.saml.disabled", "disabled")
    } else {
        ("service.saml.enabled", "enabled")
    };
    audit::change(
        &mut tx,
        access,
        kind,
        &rec.entity_id,
        Some(&PolicyAudit::new(
            &rec.entity_id,
            &rec.policy,
            url,
            rec.disabled,
        )),
        Some(&PolicyAudit::new(
            &rec.entity_id,
            &rec.policy,
            url,
            disabled,
        )),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(to_sp(&rec.entity_id, done))
}

async fn disable_post(
    State(admin): State<Admin>,
    access: Access,
    Form(form): Form<ActionForm>,
) -> Result<Response, WebError> {
    set_disabled(&admin, &access, &form, true).await
}

async fn enable_post(
    State(admin): State<Admin>,
    access: Access,
    Form(form): Form<ActionForm>,
) -> Result<Response, WebError> {
    set_disabled(&admin, &access, &form, false).await
}

#[derive(Template)]
#[template(path = "admin/saml_remove.html")]
struct RemovePage {
    lang: Lang,
    frame: Frame,
    entity_id: String,
    name: String,
    id_query: String,
}

/// Asks before removing (the page is the confirmation without JavaScript).
async fn remove_get(
    State(admin): State<Admin>,
    Extension(lang): Extension<Lang>,
    access: Access,
    Query(q): Query<IdQuery>,
) -> Result<Response, WebError> {
    let rec = load(&admin, &q.id).await?;
    web::render(&RemovePage {
        lang,
        frame: Frame::new(lang, &access, "services"),
        name: rec.name.clone(),
        id_query: id_query(&rec.entity_id),
        entity_id: rec.entity_id,
    })
}

async fn remove_post(
    State(admin): State<Admin>,
    access: Access,
    Form(form): Form<ActionForm>,
) -> Result<Response, WebError> {
    access.change(&admin, &form.csrf)?;
    let now = admin.now();
    let mut tx = admin.db.begin().await?;
    let rec = storage::saml::get_sp_in(&mut tx, &form.id)
        .await?
        .ok_or_else(|| WebError::new(StatusCode::NOT_FOUND, "admin.saml.unknown"))?;
    storage::saml::delete_sp_in(&mut tx, &rec.entity_id).await?;
    audit::change::<_, ()>(
        &mut tx,
        &access,
        "service.saml.removed",
        &rec.entity_id,
        Some(&PolicyAudit::new(
            &rec.entity_id,
            &rec.policy,
            rec.metadata_url.as_deref(),
            rec.disabled,
        )),
        None,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!(
        "{}?removed={}",
        paths::ADMIN_SERVICES,
        super::list::query_value(&rec.entity_id)
    ))
    .into_response())
}
