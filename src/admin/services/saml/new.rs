//! Registering an SP: its metadata pasted, uploaded or fetched from a URL; the first POST
//! shows what the metadata says (nothing saved), the second ("Spara") saves it with the
//! policy chosen on the preview. The save parses and checks the document again (the hidden
//! field is the browser's copy, trusted no further than that) or, for a URL, fetches it again.
//! With `replace=ENTITY_ID` the same two steps give a registered SP new metadata (a vendor's
//! new certificate, what `sp update --metadata` does): the entity ID must stay the same, and
//! the SP's settings are kept.

use super::view::{EntityView, PolicyAudit, PolicyFields, id_query};
use crate::admin::{Access, Admin, Frame, audit};
use crate::services::saml_sp::{self, Policy, SpError};
use crate::storage;
use crate::web::{self, WebError, i18n::Lang, paths};
use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Extension, FromRequest, Multipart, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// Metadata up to the size `sp add` takes from a URL, pasted (URL-encoded, up to three
/// bytes a byte) or carried in the preview's hidden field: more than the app's 64 KiB.
const BODY_LIMIT: usize = 3 * saml_sp::MAX_METADATA_BYTES + 64 * 1024;

pub(super) fn routes() -> Router<Admin> {
    Router::new().route(
        paths::ADMIN_SAML_NEW,
        get(new_get)
            .post(new_post)
            .layer(DefaultBodyLimit::max(BODY_LIMIT)),
    )
}

#[derive(Template)]
#[template(path = "admin/saml_new.html")]
struct NewPage {
    lang: Lang,
    frame: Frame,
    metadata: String,
    url: String,
    error: Option<&'static str>,
    detail: Option<String>,
    /// The field the error is about: "metadata", "file", "url" or "" (the form).
    invalid: &'static str,
    /// The entity ID whose metadata is replaced ("" for a new SP), and its query.
    replace: String,
    replace_query: String,
    /// The PEM of the certificate the metadata must be signed by, as typed.
    pin: String,
}

#[derive(Template)]
#[template(path = "admin/saml_preview.html")]
struct PreviewPage {
    lang: Lang,
    frame: Frame,
    entity: EntityView,
    /// The document to save (for pasted or uploaded metadata).
    document: String,
    /// The URL it came from (fetched again on save).
    url: String,
    policy: PolicyFields,
    error: Option<&'static str>,
    replace: String,
    replace_query: String,
    /// The pinned certificate's PEM, carried to the save; the metadata was checked against it.
    pin: String,
    /// The metadata is (or must stay) signed by a pinned certificate.
    pinned: bool,
}

#[derive(serde::Deserialize)]
struct NewQuery {
    #[serde(default)]
    replace: String,
}

/// The registered SP whose metadata is to be replaced, or 404.
async fn replaced(admin: &Admin, id: &str) -> Result<storage::saml::SpRecord, WebError> {
    storage::saml::get_sp(&admin.db, id)
        .await?
        .ok_or(WebError::new(StatusCode::NOT_FOUND, "admin.saml.unknown"))
}

async fn new_get(
    State(admin): State<Admin>,
    Extension(lang): Extension<Lang>,
    access: Access,
    Query(q): Query<NewQuery>,
) -> Result<Response, WebError> {
    if !q.replace.is_empty() {
        replaced(&admin, &q.replace).await?;
    }
    web::render(&NewPage {
        lang,
        frame: Frame::new(lang, &access, "services"),
        metadata: String::new(),
        url: String::new(),
        error: None,
        detail: None,
        invalid: "",
        replace_query: id_query(&q.replace),
        replace: q.replace,
        pin: String::new(),
    })
}

/// A submitted form, URL-encoded or multipart (the upload): its text fields and the file.
struct Submitted {
    fields: Vec<(String, String)>,
    file: Option<Vec<u8>>,
}

impl Submitted {
    fn get(&self, name: &str) -> Option<String> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    /// A field with something in it.
    fn given(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.trim().is_empty())
    }
}

async fn read(req: Request) -> Result<Submitted, WebError> {
    let too_large = || WebError::new(StatusCode::PAYLOAD_TOO_LARGE, "admin.saml.err.too_large");
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !multipart {
        let axum::Form(fields) = axum::Form::<Vec<(String, String)>>::from_request(req, &())
            .await
            .map_err(|r| {
                if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large()
                } else {
                    WebError::bad_request("admin.saml.err.form")
                }
            })?;
        return Ok(Submitted { fields, file: None });
    }
    let mut mp = Multipart::from_request(req, &())
        .await
        .map_err(|_| WebError::bad_request("admin.saml.err.form"))?;
    let mut out = Submitted {
        fields: Vec::new(),
        file: None,
    };
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(_) => return Err(WebError::bad_request("admin.saml.err.form")),
        };
        let name = field.name().unwrap_or_default().to_string();
        let is_file = field.file_name().is_some();
        let bytes = field.bytes().await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                WebError::bad_request("admin.saml.err.form")
            }
        })?;
        if is_file {
            if name == "file" && !bytes.is_empty() {
                out.file = Some(bytes.to_vec());
            }
        } else {
            out.fields
                .push((name, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    Ok(out)
}

/// The catalogue key of what went wrong with metadata.
pub(super) fn error_key(e: &SpError) -> &'static str {
    match e {
        SpError::Metadata(_) | SpError::Policy(_) => "admin.saml.err.metadata",
        SpError::Fetch(..) | SpError::Read(..) => "admin.saml.err.fetch",
        SpError::Exists(_) => "admin.saml.err.exists",
        SpError::Unknown(_) => "admin.saml.unknown",
        SpError::Storage(_) => "error.internal",
    }
}

/// What a person can act on, after the catalogue's sentence: the parser's or the fetch's
/// own words (technical, in English).
pub(super) fn error_detail(e: &SpError) -> Option<String> {
    match e {
        SpError::Metadata(m) | SpError::Policy(m) => Some(m.clone()),
        SpError::Fetch(_, m) => Some(m.clone()),
        _ => None,
    }
}

/// Where the metadata comes from.
enum Source {
    Text(String),
    Url(String),
}

async fn new_post(
    State(admin): State<Admin>,
    Extension(lang): Extension<Lang>,
    access: Access,
    req: Request,
) -> Result<Response, WebError> {
    let form = read(req).await?;
    access.change(&admin, &form.get("csrf").unwrap_or_default())?;
    let save = form.get("step").as_deref() == Some("save");
    let replace = form.given("replace").unwrap_or_default();
    let existing = match replace.as_str() {
        "" => None,
        id => Some(replaced(&admin, id).await?),
    };
    let pasted = form.given("metadata");
    let url = form.given("url").map(|u| u.trim().to_string());
    let pin_pem = form.given("pin");
    // The form again, with what was typed and why it was refused.
    let refuse = |key: &'static str, detail: Option<String>, invalid: &'static str| {
        let page = NewPage {
            lang,
            frame: Frame::new(lang, &access, "services"),
            metadata: pasted.clone().unwrap_or_default(),
            url: url.clone().unwrap_or_default(),
            error: Some(key),
            detail,
            invalid,
            replace: replace.clone(),
            replace_query: id_query(&replace),
            pin: pin_pem.clone().unwrap_or_default(),
        };
        web::render_status(StatusCode::BAD_REQUEST, &page)
    };
    let source = if save {
        match (&url, form.get("document")) {
            (Some(u), _) => Source::Url(u.clone()),
            (None, Some(doc)) if !doc.trim().is_empty() => Source::Text(doc),
            _ => return refuse("admin.saml.err.nothing", None, ""),
        }
    } else {
        let file = match form.file.clone().map(String::from_utf8) {
            None => None,
            Some(Ok(text)) => Some(text),
            Some(Err(_)) => return refuse("admin.saml.err.not_utf8", None, "file"),
        };
        match (pasted.clone(), file, url.clone()) {
            (Some(text), None, None) | (None, Some(text), None) => Source::Text(text),
            (None, None, Some(u)) => Source::Url(u),
            (None, None, None) => return refuse("admin.saml.err.nothing", None, "metadata"),
            _ => return refuse("admin.saml.err.one_source", None, "metadata"),
        }
    };
    let (doc, from_url) = match source {
        Source::Text(text) => (text, None),
        Source::Url(u) => {
            // Only http(s): `load_source` reads a file path too, which is for the CLI.
            let scheme_ok = url::Url::parse(&u)
                .ok()
                .is_some_and(|p| matches!(p.scheme(), "https" | "http"));
            if !scheme_ok {
                return refuse("admin.saml.err.url", None, "url");
            }
            let allow_http = admin.config.mode == crate::config::Mode::Development;
            match saml_sp::load_source(&admin.http, &u, allow_http).await {
                Ok(doc) => (doc, Some(u)),
                Err(e) => return refuse(error_key(&e), error_detail(&e), "url"),
            }
        }
    };
    let field = if from_url.is_some() {
        "url"
    } else {
        "metadata"
    };
    if doc.len() > saml_sp::MAX_METADATA_BYTES {
        return refuse("admin.saml.err.too_large", None, field);
    }
    let now = admin.now();
    let meta = match saml_sp::parse_metadata(&doc, now) {
        Ok(m) => m,
        Err(e) => return refuse(error_key(&e), error_detail(&e), field),
    };
    if existing.is_some() {
        if meta.entity_id != replace {
            return refuse("admin.saml.err.other_entity", Some(meta.entity_id), field);
        }
    } else if storage::saml::get_sp(&admin.db, &meta.entity_id)
        .await?
        .is_some()
    {
        return refuse("admin.saml.err.exists", Some(meta.entity_id), field);
    }
    // A certificate to pin (a federation's, as `--metadata-signing-cert`): the metadata must
    // be signed by it, now and at every refresh. Replacing metadata keeps the SP's pin.
    let pin = match &pin_pem {
        Some(pem) => match saml_sp::pinned_certificate(pem.as_bytes()) {
            Ok(p) => Some(p),
            Err(e) => return refuse("admin.saml.err.pin", error_detail(&e), "pin"),
        },
        None => existing
            .as_ref()
            .and_then(|r| r.policy.metadata_signing_cert.clone()),
    };
    if let Some(p) = &pin {
        let check = Policy {
            metadata_signing_cert: Some(p.clone()),
            ..Policy::default()
        };
        if let Err(e) = saml_sp::signed_by_pin(&doc, &check) {
            return refuse("admin.saml.err.not_signed", error_detail(&e), "pin");
        }
    }
    let fields = if save {
        PolicyFields::read(|k| form.get(k))
    } else {
        PolicyFields::default()
    };
    let preview = |error: Option<&'static str>, fields: PolicyFields| PreviewPage {
        lang,
        frame: Frame::new(lang, &access, "services"),
        entity: EntityView::new(&meta, &doc, now),
        document: if from_url.is_some() {
            String::new()
        } else {
            doc.clone()
        },
        url: from_url.clone().unwrap_or_default(),
        policy: fields,
        error,
        replace: replace.clone(),
        replace_query: id_query(&replace),
        pin: pin_pem.clone().unwrap_or_default(),
        pinned: pin.is_some(),
    };
    if !save {
        return web::render(&preview(None, fields));
    }
    if let Some(rec) = existing {
        return replace_metadata(&admin, &access, rec, &doc, from_url.as_deref(), pin, now)
            .await
            .or_else(|e| match e {
                SpError::Storage(e) => Err(e.into()),
                e => refuse(error_key(&e), error_detail(&e), field),
            });
    }
    let policy = match fields.apply(Policy::default()) {
        Ok(p) => Policy {
            metadata_signing_cert: pin,
            ..p
        },
        Err(key) => {
            return web::render_status(StatusCode::BAD_REQUEST, &preview(Some(key), fields));
        }
    };
    let mut tx = admin.db.begin().await?;
    let added = match saml_sp::add_in(&mut tx, &doc, from_url.as_deref(), &policy, now).await {
        Ok(m) => m,
        Err(SpError::Storage(e)) => return Err(e.into()),
        Err(e) => return refuse(error_key(&e), error_detail(&e), field),
    };
    let id = added.entity_id.as_str();
    audit::change::<(), _>(
        &mut tx,
        &access,
        "service.saml.added",
        id,
        None,
        Some(&PolicyAudit::new(id, &policy, from_url.as_deref(), false)),
        now,
    )
    .await?;
    tx.commit().await?;
    // As `sp add`: a [[login_policy]] of the config file for this SP applies from the start.
    if let Err(e) =
        crate::authn::policy::apply_config(&admin.db, &admin.config.login_policies, Some(id), now)
            .await
    {
        tracing::warn!("login policy of {id} from the config file not applied: {e}");
    }
    Ok(Redirect::to(&format!(
        "{}?{}&done=added",
        paths::ADMIN_SAML,
        id_query(id)
    ))
    .into_response())
}

/// Where an SP's assertions go and which keys it signs and encrypts with: what a metadata
/// replacement's audit event says before and after (certificates by their SHA-256).
#[derive(serde::Serialize)]
struct MetadataAudit {
    metadata_url: Option<String>,
    acs: Vec<String>,
    certificates: Vec<String>,
    metadata_signing_cert_pinned: bool,
}

impl MetadataAudit {
    fn of(doc: &str, url: Option<&str>, pinned: bool, now: i64) -> Self {
        let meta = saml_sp::parse_metadata(doc, now).ok();
        Self {
            metadata_url: url.map(String::from),
            metadata_signing_cert_pinned: pinned,
            acs: meta
                .iter()
                .flat_map(|m| m.acs.iter().map(|e| e.location.clone()))
                .collect(),
            certificates: meta
                .iter()
                .flat_map(crate::services::saml_sp_facts::certificates)
                .map(|c| format!("{} {}", c.usage, c.sha256))
                .collect(),
        }
    }
}

/// Gives a registered SP new metadata, its settings kept (a pinned certificate replaced when
/// one was given), audited in the same transaction.
async fn replace_metadata(
    admin: &Admin,
    access: &Access,
    rec: storage::saml::SpRecord,
    doc: &str,
    url: Option<&str>,
    pin: Option<String>,
    now: i64,
) -> Result<Response, SpError> {
    let pinned_before = rec.policy.metadata_signing_cert.is_some();
    let before = MetadataAudit::of(
        &rec.metadata,
        rec.metadata_url.as_deref(),
        pinned_before,
        now,
    );
    let policy = Policy {
        metadata_signing_cert: pin,
        ..rec.policy.clone()
    };
    let mut tx = admin.db.begin().await?;
    saml_sp::update_in(&mut tx, &rec.entity_id, Some((doc, url)), &policy, now).await?;
    let stored = storage::saml::get_sp_in(&mut tx, &rec.entity_id).await?;
    let stored_doc = stored.as_ref().map_or(doc, |r| r.metadata.as_str());
    let after = MetadataAudit::of(stored_doc, url, policy.metadata_signing_cert.is_some(), now);
    audit::change(
        &mut tx,
        access,
        "service.saml.metadata_replaced",
        &rec.entity_id,
        Some(&before),
        Some(&after),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!(
        "{}?{}&done=metadata",
        paths::ADMIN_SAML,
        id_query(&rec.entity_id)
    ))
    .into_response())
}
