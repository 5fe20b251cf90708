//! Registered OIDC clients: parsing a registration (CLI, admin UI) and storing the secret
//! as HMAC-SHA-256 under the server key (the OIDC front authenticates clients against it).
//! argon2 is for people's passwords; client secrets are high-entropy, so a keyed hash is
//! enough and keeps the token endpoint fast.

use crate::directory::release;
use crate::keys::{Alg, KeyStore};
use crate::storage::{self, Db, clients::ClientRecord};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

pub const GRANTS: [&str; 3] = ["authorization_code", "refresh_token", "client_credentials"];
pub const MIN_SECRET_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Invalid(String),
    #[error("client {0} already exists")]
    Exists(String),
    #[error("no client {0}")]
    NotFound(String),
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
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

fn check_uri(uri: &str, what: &str, allow_http_loopback_only: bool) -> Result<(), ClientError> {
    let u =
        url::Url::parse(uri).map_err(|e| ClientError::Invalid(format!("{what} {uri:?}: {e}")))?;
    if u.fragment().is_some() {
        return Err(ClientError::Invalid(format!(
            "{what} {uri:?} must not have a fragment"
        )));
    }
    let loopback = matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match u.scheme() {
        "https" => Ok(()),
        "http" if loopback || !allow_http_loopback_only => Ok(()),
        "http" => Err(ClientError::Invalid(format!(
            "{what} {uri:?} must use https (http only for localhost)"
        ))),
        // Private-use schemes for native apps (RFC 8252 §7.1) contain a dot.
        s if s.contains('.') => Ok(()),
        _ => Err(ClientError::Invalid(format!(
            "{what} {uri:?} has an unsupported scheme"
        ))),
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
        return Err(ClientError::Invalid(
            "client id must be 1-128 characters of a-z, A-Z, 0-9, '-', '_', '.', ':'".into(),
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
    });
    if let Some(n) = &spec.name {
        rec.name = n.clone();
    }
    if spec.public {
        rec.public_client = true;
        rec.secret_hash = None;
    } else if let Some(secret) = &spec.secret {
        if secret.len() < MIN_SECRET_LEN {
            return Err(ClientError::Invalid(format!(
                "client secret must be at least {MIN_SECRET_LEN} characters"
            )));
        }
        rec.public_client = false;
        rec.secret_hash = Some(hash_secret(keys, secret));
    }
    if !rec.public_client && rec.secret_hash.is_none() {
        return Err(ClientError::Invalid(
            "a confidential client needs --secret-stdin or --generate-secret (or use --public)"
                .into(),
        ));
    }
    if !spec.redirect_uris.is_empty() {
        rec.redirect_uris = spec.redirect_uris.clone();
    }
    for u in &rec.redirect_uris {
        check_uri(u, "redirect URI", true)?;
    }
    if !spec.post_logout_redirect_uris.is_empty() {
        rec.post_logout_redirect_uris = spec.post_logout_redirect_uris.clone();
    }
    for u in &rec.post_logout_redirect_uris {
        check_uri(u, "post-logout redirect URI", true)?;
    }
    if let Some(u) = &spec.backchannel_logout_uri {
        check_uri(u, "back-channel logout URI", true)?;
        rec.backchannel_logout_uri = Some(u.clone());
    }
    if !spec.scopes.is_empty() {
        let known = ["openid", "offline_access"]
            .iter()
            .chain(release::CLAIM_SCOPES.iter());
        let known: Vec<&str> = known.copied().collect();
        if let Some(bad) = spec.scopes.iter().find(|s| !known.contains(&s.as_str())) {
            return Err(ClientError::Invalid(format!(
                "unknown scope {bad:?} (known: {})",
                known.join(", ")
            )));
        }
        rec.scopes = spec.scopes.clone();
    }
    if !spec.grants.is_empty() {
        if let Some(bad) = spec.grants.iter().find(|g| !GRANTS.contains(&g.as_str())) {
            return Err(ClientError::Invalid(format!(
                "unknown grant {bad:?} (known: {})",
                GRANTS.join(", ")
            )));
        }
        rec.grants = spec.grants.clone();
    }
    if rec.public_client && rec.grants.iter().any(|g| g == "client_credentials") {
        return Err(ClientError::Invalid(
            "a public client cannot use client_credentials".into(),
        ));
    }
    if rec.grants.iter().any(|g| g == "authorization_code") && rec.redirect_uris.is_empty() {
        return Err(ClientError::Invalid(
            "the authorization_code grant needs at least one --redirect-uri".into(),
        ));
    }
    if let Some(s) = &spec.subject {
        if s != "public" && s != "pairwise" {
            return Err(ClientError::Invalid(
                "--subject must be public or pairwise".into(),
            ));
        }
        rec.subject_type = s.clone();
    }
    if let Some(s) = &spec.sector {
        rec.sector = Some(s.clone());
    }
    if let Some(a) = &spec.id_token_alg {
        if Alg::parse(a).is_none() {
            return Err(ClientError::Invalid(
                "--id-token-alg must be ES256 or RS256".into(),
            ));
        }
        rec.id_token_alg = a.clone();
    }
    if !spec.release.is_empty() {
        let known = release::known_claims();
        if let Some(bad) = spec.release.iter().find(|c| !known.contains(&c.as_str())) {
            return Err(ClientError::Invalid(format!(
                "unknown claim {bad:?} (known: {})",
                known.join(", ")
            )));
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
    crate::authn::policy::check_policy(&rec.login).map_err(ClientError::Invalid)?;
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
    let rec = validate(spec, None, keys)?;
    storage::clients::insert(db, &rec, now)
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
    let existing = storage::clients::get(db, &spec.client_id)
        .await?
        .ok_or_else(|| ClientError::NotFound(spec.client_id.clone()))?;
    let rec = validate(spec, Some(&existing), keys)?;
    storage::clients::update(db, &rec, now).await?;
    Ok(rec)
}

pub async fn get(db: &Db, client_id: &str) -> Result<Option<Client>, storage::StorageError> {
    Ok(storage::clients::get(db, client_id).await?.map(|record| {
        let alg = Alg::parse(&record.id_token_alg).unwrap_or(Alg::Es256);
        Client { record, alg }
    }))
}
