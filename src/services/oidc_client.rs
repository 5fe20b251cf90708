//! Registered OIDC clients: parsing a registration (CLI, admin UI) and storing the secret
//! as HMAC-SHA-256 under the server key (the OIDC front authenticates clients against it).
//! argon2 is for people's passwords; client secrets are high-entropy, so a keyed hash is
//! enough and keeps the token endpoint fast.

use crate::directory::release;
use crate::keys::{Alg, KeyStore};
use crate::storage::{self, Db, Tx, clients::ClientRecord};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

pub const GRANTS: [&str; 3] = ["authorization_code", "refresh_token", "client_credentials"];
pub const MIN_SECRET_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A registration refused: which part, and the sentence the CLI prints.
    #[error("{message}")]
    Invalid { field: Field, message: String },
    #[error("client {0} already exists")]
    Exists(String),
    #[error("no client {0}")]
    NotFound(String),
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
}

/// The part of a registration a refusal is about: the admin UI marks that field and shows
/// its own catalogue text (`Field::key`), the CLI prints the sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    ClientId,
    Secret,
    RedirectUris,
    PostLogoutUris,
    BackchannelUri,
    Scopes,
    Grants,
    Subject,
    Alg,
    Release,
    LoginPolicy,
}

impl Field {
    /// The form field's name (`admin/oidc_fields.html`).
    pub fn name(self) -> &'static str {
        match self {
            Field::ClientId => "client_id",
            Field::Secret => "kind",
            Field::RedirectUris => "redirect_uris",
            Field::PostLogoutUris => "post_logout_redirect_uris",
            Field::BackchannelUri => "backchannel_logout_uri",
            Field::Scopes => "scopes",
            Field::Grants => "grants",
            Field::Subject => "subject",
            Field::Alg => "alg",
            Field::Release => "release",
            Field::LoginPolicy => "login",
        }
    }

    /// The catalogue key of what to check in that field.
    pub fn key(self) -> &'static str {
        match self {
            Field::ClientId => "admin.oidc.refused.client_id",
            Field::Secret => "admin.oidc.refused.secret",
            Field::RedirectUris => "admin.oidc.refused.redirect_uris",
            Field::PostLogoutUris => "admin.oidc.refused.post_logout_redirect_uris",
            Field::BackchannelUri => "admin.oidc.refused.backchannel_logout_uri",
            Field::Scopes => "admin.oidc.refused.scopes",
            Field::Grants => "admin.oidc.refused.grants",
            Field::Subject => "admin.oidc.refused.subject",
            Field::Alg => "admin.oidc.refused.alg",
            Field::Release => "admin.oidc.refused.release",
            Field::LoginPolicy => "admin.oidc.refused.login",
        }
    }
}

fn invalid(field: Field, message: impl Into<String>) -> ClientError {
    ClientError::Invalid {
        field,
        message: message.into(),
    }
}

/// A registered client, as the protocol code uses it.
#[derive(Debug, Clone)]
pub struct Client {
    pub record: ClientRecord,
    pub alg: Alg,
}

impl Client {
    pub fn id(&self) -> &str {
        &self.record.client_id
    }
    pub fn allows_grant(&self, g: &str) -> bool {
        self.record.grants.iter().any(|x| x == g)
    }
    pub fn allows_scope(&self, s: &str) -> bool {
        self.record.scopes.iter().any(|x| x == s)
    }
    /// Exact string match, as OIDC Core §3.1.2.1 and RFC 9700 §2.1 require.
    pub fn redirect_uri_registered(&self, uri: &str) -> bool {
        self.record.redirect_uris.iter().any(|r| r == uri)
    }
    pub fn post_logout_uri_registered(&self, uri: &str) -> bool {
        self.record
            .post_logout_redirect_uris
            .iter()
            .any(|r| r == uri)
    }
    pub fn sector(&self) -> &str {
        self.record
            .sector
            .as_deref()
            .unwrap_or(&self.record.client_id)
    }
}

/// A client registration as given on the command line (or later the admin UI).
#[derive(Debug, Clone, Default)]
pub struct ClientSpec {
    pub client_id: String,
    pub name: Option<String>,
    /// Some(secret) to set it, None to keep (update) or make public (with `public`).
    pub secret: Option<String>,
    pub public: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub scopes: Vec<String>,
    pub grants: Vec<String>,
    pub subject: Option<String>,
    pub sector: Option<String>,
    pub id_token_alg: Option<String>,
    pub release: Vec<String>,
    /// Replaces the allowed login methods when not empty.
    pub allowed_methods: Vec<String>,
    /// Allow every enabled method again (clears the list).
    pub allow_any_method: bool,
    /// Some(Some(level)) sets the minimum level, Some(None) clears it.
    pub min_level: Option<Option<String>>,
}

pub fn hash_secret(keys: &KeyStore, secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::hmac::sign(
        &keys.secrets().client_secret,
        secret.as_bytes(),
    ))
}

/// A new random client secret (256 bits).
pub fn generate_secret() -> String {
    crate::keys::random_token()
}

fn check_uri(
    uri: &str,
    what: &str,
    field: Field,
    allow_http_loopback_only: bool,
) -> Result<(), ClientError> {
    let u = url::Url::parse(uri).map_err(|e| invalid(field, format!("{what} {uri:?}: {e}")))?;
    if u.fragment().is_some() {
        return Err(invalid(
            field,
            format!("{what} {uri:?} must not have a fragment"),
        ));
    }
    let loopback = matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match u.scheme() {
        "https" => Ok(()),
        "http" if loopback || !allow_http_loopback_only => Ok(()),
        "http" => Err(invalid(
            field,
            format!("{what} {uri:?} must use https (http only for localhost)"),
        )),
        // Private-use schemes for native apps (RFC 8252 §7.1) contain a dot.
        s if s.contains('.') => Ok(()),
        _ => Err(invalid(
            field,
            format!("{what} {uri:?} has an unsupported scheme"),
        )),
    }
}

fn validate(
    spec: &ClientSpec,
    existing: Option<&ClientRecord>,
    keys: &KeyStore,
) -> Result<ClientRecord, ClientError> {
    let id = &spec.client_id;
    if id.is_empty()
        || id.len() > 128
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    {
        return Err(invalid(
            Field::ClientId,
            "client id must be 1-128 characters of a-z, A-Z, 0-9, '-', '_', '.', ':'",
        ));
    }
    let mut rec = existing.cloned().unwrap_or_else(|| ClientRecord {
        client_id: id.clone(),
        name: id.clone(),
        secret_hash: None,
        public_client: false,
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        backchannel_logout_uri: None,
        scopes: ["openid", "profile", "email", "school"]
            .map(String::from)
            .to_vec(),
        grants: ["authorization_code", "refresh_token"]
            .map(String::from)
            .to_vec(),
        subject_type: "pairwise".into(),
        sector: None,
        id_token_alg: "ES256".into(),
        release: vec![],
        login: Default::default(),
        disabled: false,
    });
    if let Some(n) = &spec.name {
        rec.name = n.clone();
    }
    if spec.public {
        rec.public_client = true;
        rec.secret_hash = None;
    } else if let Some(secret) = &spec.secret {
        if secret.len() < MIN_SECRET_LEN {
            return Err(invalid(
                Field::Secret,
                format!("client secret must be at least {MIN_SECRET_LEN} characters"),
            ));
        }
        rec.public_client = false;
        rec.secret_hash = Some(hash_secret(keys, secret));
    }
    if !rec.public_client && rec.secret_hash.is_none() {
        return Err(invalid(
            Field::Secret,
            "a confidential client needs --secret-stdin or --generate-secret (or use --public)",
        ));
    }
    if !spec.redirect_uris.is_empty() {
        rec.redirect_uris = spec.redirect_uris.clone();
    }
    for u in &rec.redirect_uris {
        check_uri(u, "redirect URI", Field::RedirectUris, true)?;
    }
    if !spec.post_logout_redirect_uris.is_empty() {
        rec.post_logout_redirect_uris = spec.post_logout_redirect_uris.clone();
    }
    for u in &rec.post_logout_redirect_uris {
        check_uri(u, "post-logout redirect URI", Field::PostLogoutUris, true)?;
    }
    if let Some(u) = &spec.backchannel_logout_uri {
        check_uri(u, "back-channel logout URI", Field::BackchannelUri, true)?;
        rec.backchannel_logout_uri = Some(u.clone());
    }
    if !spec.scopes.is_empty() {
        let known = ["openid", "offline_access"]
            .iter()
            .chain(release::CLAIM_SCOPES.iter());
        let known: Vec<&str> = known.copied().collect();
        if let Some(bad) = spec.scopes.iter().find(|s| !known.contains(&s.as_str())) {
            return Err(invalid(
                Field::Scopes,
                format!("unknown scope {bad:?} (known: {})", known.join(", ")),
            ));
        }
        rec.scopes = spec.scopes.clone();
    }
    if !spec.grants.is_empty() {
        if let Some(bad) = spec.grants.iter().find(|g| !GRANTS.contains(&g.as_str())) {
            return Err(invalid(
                Field::Grants,
                format!("unknown grant {bad:?} (known: {})", GRANTS.join(", ")),
            ));
        }
        rec.grants = spec.grants.clone();
    }
    if rec.public_client && rec.grants.iter().any(|g| g == "client_credentials") {
        return Err(invalid(
            Field::Grants,
            "a public client cannot use client_credentials",
        ));
    }
    if rec.grants.iter().any(|g| g == "authorization_code") && rec.redirect_uris.is_empty() {
        return Err(invalid(
            Field::RedirectUris,
            "the authorization_code grant needs at least one --redirect-uri",
        ));
    }
    if let Some(s) = &spec.subject {
        if s != "public" && s != "pairwise" {
            return Err(invalid(
                Field::Subject,
                "--subject must be public or pairwise",
            ));
        }
        rec.subject_type = s.clone();
    }
    if let Some(s) = &spec.sector {
        rec.sector = Some(s.clone());
    }
    if let Some(a) = &spec.id_token_alg {
        if Alg::parse(a).is_none() {
            return Err(invalid(Field::Alg, "--id-token-alg must be ES256 or RS256"));
        }
        rec.id_token_alg = a.clone();
    }
    if !spec.release.is_empty() {
        let known = release::known_claims();
        if let Some(bad) = spec.release.iter().find(|c| !known.contains(&c.as_str())) {
            return Err(invalid(
                Field::Release,
                format!("unknown claim {bad:?} (known: {})", known.join(", ")),
            ));
        }
        rec.release = spec.release.clone();
    }
    if spec.allow_any_method {
        rec.login.allowed_methods.clear();
    } else if !spec.allowed_methods.is_empty() {
        rec.login.allowed_methods = dedup(&spec.allowed_methods);
    }
    if let Some(level) = &spec.min_level {
        rec.login.min_level = level.clone();
    }
    crate::authn::policy::check_policy(&rec.login).map_err(|m| invalid(Field::LoginPolicy, m))?;
    Ok(rec)
}

/// The list in its order, each value once.
fn dedup(v: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for x in v {
        if !out.contains(x) {
            out.push(x.clone());
        }
    }
    out
}

pub async fn add(
    db: &Db,
    keys: &KeyStore,
    spec: &ClientSpec,
    now: i64,
) -> Result<ClientRecord, ClientError> {
    let mut tx = db.begin().await?;
    let rec = add_in(&mut tx, keys, spec, now).await?;
    tx.commit().await?;
    Ok(rec)
}

/// `add` inside the caller's transaction (the admin UI writes its audit event in it).
pub async fn add_in(
    tx: &mut Tx,
    keys: &KeyStore,
    spec: &ClientSpec,
    now: i64,
) -> Result<ClientRecord, ClientError> {
    let rec = validate(spec, None, keys)?;
    storage::clients::insert_in(tx, &rec, now)
        .await
        .map_err(|e| match e {
            storage::StorageError::Conflict(_) => ClientError::Exists(spec.client_id.clone()),
            other => other.into(),
        })?;
    Ok(rec)
}

pub async fn update(
    db: &Db,
    keys: &KeyStore,
    spec: &ClientSpec,
    now: i64,
) -> Result<ClientRecord, ClientError> {
    let mut tx = db.begin().await?;
    let (_, rec) = update_in(&mut tx, keys, spec, now).await?;
    tx.commit().await?;
    Ok(rec)
}

/// The stored registration, inside the transaction that changes it.
async fn existing(tx: &mut Tx, client_id: &str) -> Result<ClientRecord, ClientError> {
    storage::clients::get_in(tx, client_id)
        .await?
        .ok_or_else(|| ClientError::NotFound(client_id.to_string()))
}

/// `update` inside the caller's transaction: options given replace the stored values, the
/// rest is kept (the CLI's `client update`). Returns (before, after).
pub async fn update_in(
    tx: &mut Tx,
    keys: &KeyStore,
    spec: &ClientSpec,
    now: i64,
) -> Result<(ClientRecord, ClientRecord), ClientError> {
    let before = existing(tx, &spec.client_id).await?;
    let rec = validate(spec, Some(&before), keys)?;
    storage::clients::update_in(tx, &rec, now).await?;
    Ok((before, rec))
}

/// A whole registration as an edit form gives it: unlike `update_in`, an empty list or a
/// missing URI or sector clears the stored one. The secret is kept unless `spec.secret`
/// sets one or `spec.public` drops it; the release list and login policy are kept.
/// Returns (before, after).
pub async fn replace_in(
    tx: &mut Tx,
    keys: &KeyStore,
    spec: &ClientSpec,
    now: i64,
) -> Result<(ClientRecord, ClientRecord), ClientError> {
    let before = existing(tx, &spec.client_id).await?;
    let base = ClientRecord {
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        backchannel_logout_uri: None,
        scopes: vec![],
        grants: vec![],
        sector: None,
        ..before.clone()
    };
    let rec = validate(spec, Some(&base), keys)?;
    if rec.grants.is_empty() {
        return Err(invalid(
            Field::Grants,
            format!("choose at least one grant ({})", GRANTS.join(", ")),
        ));
    }
    storage::clients::update_in(tx, &rec, now).await?;
    Ok((before, rec))
}

/// A new secret for a confidential client (a public one has none). Returns (before, after,
/// the secret): the caller shows the secret once; only its hash is stored.
pub async fn rotate_secret_in(
    tx: &mut Tx,
    keys: &KeyStore,
    client_id: &str,
    now: i64,
) -> Result<(ClientRecord, ClientRecord, String), ClientError> {
    let before = existing(tx, client_id).await?;
    if before.public_client {
        return Err(invalid(
            Field::Secret,
            "a public client has no secret to rotate",
        ));
    }
    let secret = generate_secret();
    let rec = ClientRecord {
        secret_hash: Some(hash_secret(keys, &secret)),
        ..before.clone()
    };
    storage::clients::update_in(tx, &rec, now).await?;
    Ok((before, rec, secret))
}

/// Disables or enables a client; its registration, tokens' records and releases stay.
/// Returns (before, after).
pub async fn set_disabled_in(
    tx: &mut Tx,
    client_id: &str,
    disabled: bool,
    now: i64,
) -> Result<(ClientRecord, ClientRecord), ClientError> {
    let before = existing(tx, client_id).await?;
    let rec = ClientRecord {
        disabled,
        ..before.clone()
    };
    storage::clients::update_in(tx, &rec, now).await?;
    Ok((before, rec))
}

/// Removes a client inside the caller's transaction; returns what was removed.
pub async fn remove_in(tx: &mut Tx, client_id: &str) -> Result<ClientRecord, ClientError> {
    let before = existing(tx, client_id).await?;
    storage::clients::remove_in(tx, client_id).await?;
    Ok(before)
}

pub async fn get(db: &Db, client_id: &str) -> Result<Option<Client>, storage::StorageError> {
    Ok(storage::clients::get(db, client_id).await?.map(|record| {
        let alg = Alg::parse(&record.id_token_alg).unwrap_or(Alg::Es256);
        Client { record, alg }
    }))
}
