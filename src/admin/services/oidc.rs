//! OIDC clients: register one (`/admin/services/oidc/new`), its page with the edit form,
//! a new secret, disable and enable, and removal after a confirmation. The secret of a
//! confidential client is made here, shown once in the answer to the POST that made it
//! (never in a URL, never stored or logged in clear) and only its hash is kept.
//!
//! Every change runs in one transaction with its audit event (`service.oidc.*`), whose
//! before/after views (`ClientView`) leave out the secret's hash. The OIDC front reads
//! clients through a cache of `[cache] client_ttl` seconds, so a change (a disable too)
//! takes effect at the front within that time.

mod form;

use super::list::query_value;
use crate::admin::{Access, Admin, Frame, audit};
use crate::services::oidc_client::{self, ClientError};
use crate::storage::{self, clients::ClientRecord};
use crate::web::{self, WebError, i18n::Lang, paths};
use askama::Template;
use axum::Router;
use axum::extract::{Extension, Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use form::{ClientForm, all_grants, all_scopes};
use serde::{Deserialize, Serialize};

pub(super) fn routes() -> Router<Admin> {
    Router::new()
        .route(paths::ADMIN_OIDC_NEW, get(new_get).post(new_post))
        .route(paths::ADMIN_OIDC, get(client_get).post(client_post))
        .route(paths::ADMIN_OIDC_SECRET, post(secret_post))
        .route(paths::ADMIN_OIDC_DISABLE, post(disable_post))
        .route(paths::ADMIN_OIDC_ENABLE, post(enable_post))
        .route(paths::ADMIN_OIDC_REMOVE, get(remove_get).post(remove_post))
}

/// A client as audit events show it: everything but the secret's hash.
#[derive(Serialize)]
struct ClientView<'a> {
    client_id: &'a str,
    name: &'a str,
    public: bool,
    redirect_uris: &'a [String],
    post_logout_redirect_uris: &'a [String],
    backchannel_logout_uri: Option<&'a str>,
    scopes: &'a [String],
    grants: &'a [String],
    subject_type: &'a str,
    sector: Option<&'a str>,
    id_token_alg: &'a str,
    release: &'a [String],
    allowed_methods: &'a [String],
    min_level: Option<&'a str>,
    disabled: bool,
}

fn view(r: &ClientRecord) -> ClientView<'_> {
    ClientView {
        client_id: &r.client_id,
        name: &r.name,
        public: r.public_client,
        redirect_uris: &r.redirect_uris,
        post_logout_redirect_uris: &r.post_logout_redirect_uris,
        backchannel_logout_uri: r.backchannel_logout_uri.as_deref(),
        scopes: &r.scopes,
        grants: &r.grants,
        subject_type: &r.subject_type,
        sector: r.sector.as_deref(),
        id_token_alg: &r.id_token_alg,
        release: &r.release,
        allowed_methods: &r.login.allowed_methods,
        min_level: r.login.min_level.as_deref(),
        disabled: r.disabled,
    }
}

/// What the form says went wrong: a catalogue text, or the registry's own message (in
/// English; the page marks it so).
enum Problem {
    Key(&'static str),
    /// The registry refused: what to check in the field (catalogue), and its own sentence
    /// (English, from the command line's vocabulary) naming the value.
    Registry(&'static str, String),
}

/// The form's state shared by the new and edit pages (`admin/oidc_fields.html`).
struct Fields {
    form: ClientForm,
    problem: Option<Problem>,
    /// The field the problem is about ("" for none).
    field: &'static str,
    grants: Vec<&'static str>,
    scopes: Vec<&'static str>,
    /// Editing an existing client: the client id cannot change.
    editing: bool,
}

impl Fields {
    fn new(form: ClientForm, editing: bool) -> Self {
        Self {
            form,
            problem: None,
            field: "",
            grants: all_grants(),
            scopes: all_scopes(),
            editing,
        }
    }

    /// What to check, from the catalogue.
    fn problem_key(&self) -> Option<&'static str> {
        match &self.problem {
            Some(Problem::Key(k) | Problem::Registry(k, _)) => Some(k),
            None => None,
        }
    }

    /// The registry's own sentence naming the value, shown below in English.
    fn problem_detail(&self) -> Option<&str> {
        match &self.problem {
            Some(Problem::Registry(_, m)) => Some(m),
            _ => None,
        }
    }

    /// `aria-invalid` and `aria-describedby` for a field the problem is about.
    fn invalid(&self, field: &str) -> bool {
        self.problem.is_some() && self.field == field
    }

    /// The catalogue key that explains a grant or a scope.
    fn describe(&self, value: &str) -> &'static str {
        match value {
            "authorization_code" => "admin.oidc.opt.authorization_code",
            "refresh_token" => "admin.oidc.opt.refresh_token",
            "client_credentials" => "admin.oidc.opt.client_credentials",
            "openid" => "admin.oidc.opt.openid",
            "profile" => "admin.oidc.opt.profile",
            "email" => "admin.oidc.opt.email",
            "school" => "admin.oidc.opt.school",
            "offline_access" => "admin.oidc.opt.offline_access",
            crate::directory::release::CIVIC_NO_SCOPE => "admin.oidc.opt.civic_no",
            _ => "admin.oidc.opt.other",
        }
    }

    fn with_problem(mut self, field: &'static str, problem: Problem) -> Self {
        self.field = field;
        self.problem = Some(problem);
        self
    }
}

#[derive(Template)]
#[template(path = "admin/oidc_new.html")]
struct NewPage {
    lang: Lang,
    frame: Frame,
    f: Fields,
}

/// The facts the client page shows above its form.
struct Facts {
    id: String,
    name: String,
    public: bool,
    disabled: bool,
    release: Vec<String>,
    methods: Vec<String>,
    min_level: Option<String>,
    release_link: String,
    login_policy_link: String,
    remove_link: String,
}

#[derive(Template)]
#[template(path = "admin/oidc_client.html")]
struct ClientPage {
    lang: Lang,
    frame: Frame,
    c: Facts,
    /// Catalogue key of what just happened (after a redirect).
    notice: Option<&'static str>,
    f: Fields,
}

#[derive(Template)]
#[template(path = "admin/oidc_secret.html")]
struct SecretPage {
    lang: Lang,
    frame: Frame,
    client_id: String,
    name: String,
    secret: String,
    /// A new secret for an existing client (not a new client).
    rotated: bool,
    page: String,
}

#[derive(Template)]
#[template(path = "admin/oidc_remove.html")]
struct RemovePage {
    lang: Lang,
    frame: Frame,
    client_id: String,
    name: String,
    page: String,
}

#[derive(Deserialize)]
struct IdQuery {
    #[serde(default)]
    id: String,
    #[serde(default)]
    done: String,
}

/// The forms that only name the client: secret, disable, enable, remove.
#[derive(Deserialize)]
struct IdForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
}

fn page_of(client_id: &str) -> String {
    format!("{}?id={}", paths::ADMIN_OIDC, query_value(client_id))
}

fn not_found() -> WebError {
    WebError::new(StatusCode::NOT_FOUND, "admin.oidc.not_found")
}

/// Errors of a change that are no form problem.
fn failed(e: ClientError) -> WebError {
    match e {
        ClientError::NotFound(_) => not_found(),
        ClientError::Storage(e) => e.into(),
        other => WebError::internal(other),
    }
}

async fn load(admin: &Admin, id: &str) -> Result<ClientRecord, WebError> {
    storage::clients::get(&admin.db, id)
        .await?
        .ok_or_else(not_found)
}

async fn new_get(Extension(lang): Extension<Lang>, access: Access) -> Result<Response, WebError> {
    web::render(&NewPage {
        lang,
        frame: Frame::new(lang, &access, "services"),
        f: Fields::new(ClientForm::default(), false),
    })
}

fn bad(page: &impl Template) -> Result<Response, WebError> {
    web::render_status(StatusCode::BAD_REQUEST, page)
}

/// The registry's refusal as a form problem, or None for an error of another kind.
fn problem_of(e: &ClientError) -> Option<(&'static str, Problem)> {
    match e {
        ClientError::Invalid { field, message } => Some((
            field.name(),
            Problem::Registry(field.key(), message.clone()),
        )),
        ClientError::Exists(_) => Some(("client_id", Problem::Key("admin.oidc.error.exists"))),
        _ => None,
    }
}

async fn new_post(
    State(admin): State<Admin>,
    Extension(lang): Extension<Lang>,
    access: Access,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let form = ClientForm::from_pairs(pairs);
    access.change(&admin, &form.csrf)?;
    let refuse = |form: ClientForm, field, problem| {
        bad(&NewPage {
            lang,
            frame: Frame::new(lang, &access, "services"),
            f: Fields::new(form, false).with_problem(field, problem),
        })
    };
    if let Some((field, key)) = form.precheck() {
        return refuse(form, field, Problem::Key(key));
    }
    let now = admin.now();
    let secret = (!form.public()).then(oidc_client::generate_secret);
    let mut tx = admin.db.begin().await?;
    let rec = match oidc_client::add_in(&mut tx, &admin.keys, &form.spec(secret.clone()), now).await
    {
        Ok(rec) => rec,
        Err(e) => match problem_of(&e) {
            Some((field, problem)) => return refuse(form, field, problem),
            None => return Err(failed(e)),
        },
    };
    let after = view(&rec);
    audit::change(
        &mut tx,
        &access,
        "service.oidc.added",
        &rec.client_id,
        None::<&ClientView>,
        Some(&after),
        now,
    )
    .await?;
    tx.commit().await?;
    // A [[login_policy]] of the config file for this id applies at once, as with the CLI.
    crate::authn::policy::apply_config(
        &admin.db,
        &admin.config.login_policies,
        Some(&rec.client_id),
        now,
    )
    .await
    .map_err(WebError::internal)?;
    match secret {
        Some(secret) => web::render(&SecretPage {
            lang,
            frame: Frame::new(lang, &access, "services"),
            page: page_of(&rec.client_id),
            client_id: rec.client_id,
            name: rec.name,
            secret,
            rotated: false,
        }),
        None => {
            Ok(Redirect::to(&format!("{}&done=added", page_of(&rec.client_id))).into_response())
        }
    }
}

fn facts(r: &ClientRecord) -> Facts {
    let id = query_value(&r.client_id);
    Facts {
        id: r.client_id.clone(),
        name: r.name.clone(),
        public: r.public_client,
        disabled: r.disabled,
        release: r.release.clone(),
        methods: r.login.allowed_methods.clone(),
        min_level: r.login.min_level.clone(),
        release_link: format!("{}?protocol=oidc&id={id}", paths::ADMIN_RELEASE),
        login_policy_link: format!("{}?protocol=oidc&id={id}", paths::ADMIN_LOGIN_POLICY),
        remove_link: format!("{}?id={id}", paths::ADMIN_OIDC_REMOVE),
    }
}

fn notice(done: &str) -> Option<&'static str> {
    match done {
        "added" => Some("admin.oidc.done.added"),
        "saved" => Some("admin.saved"),
        "disabled" => Some("admin.oidc.done.disabled"),
        "enabled" => Some("admin.oidc.done.enabled"),
        _ => None,
    }
}

async fn client_get(
    State(admin): State<Admin>,
    Extension(lang): Extension<Lang>,
    access: Access,
    Query(q): Query<IdQuery>,
) -> Result<Response, WebError> {
    let rec = load(&admin, &q.id).await?;
    web::render(&ClientPage {
        lang,
        frame: Frame::new(lang, &access, "services"),
        c: facts(&rec),
        notice: notice(&q.done),
        f: Fields::new(ClientForm::from_record(&rec), true),
    })
}

async fn client_post(
    State(admin): State<Admin>,
    Extension(lang): Extension<Lang>,
    access: Access,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let form = ClientForm::from_pairs(pairs);
    access.change(&admin, &form.csrf)?;
    let now = admin.now();
    let mut tx = admin.db.begin().await?;
    let existing = storage::clients::get_in(&mut tx, &form.client_id)
        .await?
        .ok_or_else(not_found)?;
    let refuse = |form: ClientForm, field, problem| {
        bad(&ClientPage {
            lang,
            frame: Frame::new(lang, &access, "services"),
            c: facts(&existing),
            notice: None,
            f: Fields::new(form, true).with_problem(field, problem),
        })
    };
    if let Some((field, key)) = form.precheck() {
        return refuse(form, field, Problem::Key(key));
    }
    // A public client made confidential needs a secret: made here and shown once.
    let secret = (!form.public() && existing.public_client).then(oidc_client::generate_secret);
    let (before, after) = match oidc_client::replace_in(
        &mut tx,
        &admin.keys,
        &form.spec(secret.clone()),
        now,
    )
    .await
    {
        Ok(v) => v,
        Err(e) => match problem_of(&e) {
            Some((field, problem)) => return refuse(form, field, problem),
            None => return Err(failed(e)),
        },
    };
    audit::change(
        &mut tx,
        &access,
        "service.oidc.updated",
        &after.client_id,
        Some(&view(&before)),
        Some(&view(&after)),
        now,
    )
    .await?;
    tx.commit().await?;
    match secret {
        Some(secret) => web::render(&SecretPage {
            lang,
            frame: Frame::new(lang, &access, "services"),
            page: page_of(&after.client_id),
            client_id: after.client_id,
            name: after.name,
            secret,
            rotated: true,
        }),
        None => {
            Ok(Redirect::to(&format!("{}&done=saved", page_of(&after.client_id))).into_response())
        }
    }
}

async fn secret_post(
    State(admin): State<Admin>,
    Extension(lang): Extension<Lang>,
    access: Access,
    Form(f): Form<IdForm>,
) -> Result<Response, WebError> {
    access.change(&admin, &f.csrf)?;
    let now = admin.now();
    let mut tx = admin.db.begin().await?;
    let (before, after, secret) =
        match oidc_client::rotate_secret_in(&mut tx, &admin.keys, &f.id, now).await {
            Ok(v) => v,
            Err(ClientError::Invalid { .. }) => {
                return Err(WebError::bad_request("admin.oidc.error.public_no_secret"));
            }
            Err(e) => return Err(failed(e)),
        };
    audit::change(
        &mut tx,
        &access,
        "service.oidc.secret_rotated",
        &after.client_id,
        Some(&view(&before)),
        Some(&view(&after)),
        now,
    )
    .await?;
    tx.commit().await?;
    web::render(&SecretPage {
        lang,
        frame: Frame::new(lang, &access, "services"),
        page: page_of(&after.client_id),
        client_id: after.client_id,
        name: after.name,
        secret,
        rotated: true,
    })
}

async fn set_disabled(
    admin: Admin,
    access: Access,
    f: IdForm,
    disabled: bool,
) -> Result<Response, WebError> {
    access.change(&admin, &f.csrf)?;
    let now = admin.now();
    let mut tx = admin.db.begin().await?;
    let (before, after) = oidc_client::set_disabled_in(&mut tx, &f.id, disabled, now)
        .await
        .map_err(failed)?;
    let (kind, done) = if disabled {
        ("service.oidc.disabled", "disabled")
    } else {
        ("service.oidc.enabled", "enabled")
    };
    audit::change(
        &mut tx,
        &access,
        kind,
        &after.client_id,
        Some(&view(&before)),
        Some(&view(&after)),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("{}&done={done}", page_of(&after.client_id))).into_response())
}

async fn disable_post(
    State(admin): State<Admin>,
    access: Access,
    Form(f): Form<IdForm>,
) -> Result<Response, WebError> {
    set_disabled(admin, access, f, true).await
}

async fn enable_post(
    State(admin): State<Admin>,
    access: Access,
    Form(f): Form<IdForm>,
) -> Result<Response, WebError> {
    set_disabled(admin, access, f, false).await
}

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
        page: page_of(&rec.client_id),
        client_id: rec.client_id,
        name: rec.name,
    })
}

async fn remove_post(
    State(admin): State<Admin>,
    access: Access,
    Form(f): Form<IdForm>,
) -> Result<Response, WebError> {
    access.change(&admin, &f.csrf)?;
    let now = admin.now();
    let mut tx = admin.db.begin().await?;
    let before = oidc_client::remove_in(&mut tx, &f.id)
        .await
        .map_err(failed)?;
    audit::change(
        &mut tx,
        &access,
        "service.oidc.removed",
        &before.client_id,
        Some(&view(&before)),
        None::<&ClientView>,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!(
        "{}?removed={}",
        paths::ADMIN_SERVICES,
        query_value(&before.client_id)
    ))
    .into_response())
}
