//! The SP registry: service providers are registered from their metadata (a file or a URL)
//! plus the administrator's policy. ACS and SLO endpoints, certificates, NameID formats and
//! requested attributes come only from the metadata; nothing in a request can add to them.

pub use crate::storage::saml::{NameIdRule, Policy, SpRecord};
use crate::storage::{Db, StorageError, Tx};
use crate::xmlsec::xml::{self, Element, MD, MDUI};
use base64::{Engine, engine::general_purpose::STANDARD};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

pub const POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
pub const REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";

pub const TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";
pub const PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
pub const EMAIL: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
pub const UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";

#[derive(Debug, thiserror::Error)]
pub enum SpError {
    #[error("invalid SP metadata: {0}")]
    Metadata(String),
    #[error("cannot fetch metadata from {0}: {1}")]
    Fetch(String, String),
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("no SP is registered with entityID {0}")]
    Unknown(String),
    #[error("an SP with entityID {0} is already registered")]
    Exists(String),
    #[error("invalid policy: {0}")]
    Policy(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// An endpoint from metadata.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Endpoint {
    pub binding: String,
    pub location: String,
    pub response_location: Option<String>,
    pub index: Option<u32>,
    pub is_default: bool,
}

/// What an SP's metadata says, parsed once.
#[derive(Debug, Clone)]
pub struct SpMetadata {
    pub entity_id: String,
    pub display_name: Option<String>,
    pub acs: Vec<Endpoint>,
    pub slo: Vec<Endpoint>,
    pub signing_certs: Vec<Vec<u8>>,
    /// The encryption certificate and the algorithms the SP lists for it (may be empty).
    pub encryption: Option<(Vec<u8>, Vec<String>)>,
    pub authn_requests_signed: bool,
    pub want_assertions_signed: bool,
    pub name_id_formats: Vec<String>,
    /// Requested attributes, by FriendlyName or Name as the SP wrote them.
    pub requested_attributes: Vec<(String, Option<String>)>,
    pub valid_until: Option<i64>,
}

/// NameID sources an SP may be configured with.
pub const NAME_ID_SOURCES: [&str; 3] = ["mail", "eppn", "username"];

impl NameIdRule {
    /// Parses `FORMAT[=SOURCE]`; FORMAT is a short name or a full URN.
    pub fn parse(s: &str) -> Result<Self, SpError> {
        let (f, source) = match s.split_once('=') {
            Some((f, src)) => (f, Some(src.to_string())),
            None => (s, None),
        };
        let format = match f {
            "transient" => TRANSIENT,
            "persistent" => PERSISTENT,
            "emailAddress" | "email" => EMAIL,
            "unspecified" => UNSPECIFIED,
            full if full.starts_with("urn:") => full,
            other => return Err(SpError::Policy(format!("unknown NameID format {other}"))),
        }
        .to_string();
        if let Some(src) = &source
            && !NAME_ID_SOURCES.contains(&src.as_str())
        {
            return Err(SpError::Policy(format!(
                "unknown NameID source {src} (one of {})",
                NAME_ID_SOURCES.join(", ")
            )));
        }
        let needs_source = format != TRANSIENT && format != PERSISTENT;
        if needs_source && source.is_none() {
            return Err(SpError::Policy(format!(
                "NameID format {f} needs a source, e.g. {f}=mail"
            )));
        }
        if !needs_source && source.is_some() {
            return Err(SpError::Policy(format!(
                "NameID format {f} takes no source"
            )));
        }
        Ok(Self { format, source })
    }
}

/// A registered SP: metadata and policy.
#[derive(Debug, Clone)]
pub struct Sp {
    pub meta: SpMetadata,
    pub policy: Policy,
    pub metadata_url: Option<String>,
    /// Disabled in the admin UI: logins to it are refused with a page, nothing is sent to it.
    pub disabled: bool,
}

impl Sp {
    pub fn entity_id(&self) -> &str {
        &self.meta.entity_id
    }

    pub fn name(&self) -> &str {
        self.meta
            .display_name
            .as_deref()
            .unwrap_or(&self.meta.entity_id)
    }

    /// Requests must be signed: the SP's metadata or our policy says so.
    pub fn requires_signed_requests(&self) -> bool {
        self.meta.authn_requests_signed || self.policy.require_signed_requests
    }

    /// The metadata's validUntil has passed: the SP is not served until it is refreshed.
    pub fn expired(&self, now: i64) -> bool {
        self.meta.valid_until.is_some_and(|v| v <= now)
    }

    /// The HTTP-POST ACS named by URL or index, or the default one. Only endpoints from the
    /// metadata; a URL must match exactly.
    pub fn acs(&self, url: Option<&str>, index: Option<u32>) -> Option<&Endpoint> {
        let post = self.meta.acs.iter().filter(|e| e.binding == POST);
        match (url, index) {
            (Some(u), _) => post.clone().find(|e| e.location == u),
            (None, Some(i)) => post.clone().find(|e| e.index == Some(i)),
            (None, None) => post
                .clone()
                .find(|e| e.is_default)
                .or_else(|| post.clone().min_by_key(|e| e.index.unwrap_or(u32::MAX))),
        }
    }

    /// The SLO endpoint to send a logout message to: Redirect preferred, then POST.
    pub fn slo(&self) -> Option<&Endpoint> {
        let find = |b: &str| self.meta.slo.iter().find(|e| e.binding == b);
        find(REDIRECT).or_else(|| find(POST))
    }

    /// Attributes released to this SP: the policy's list, narrowed to what the metadata
    /// requests when it requests anything.
    pub fn released(&self, known: impl Fn(&str) -> Option<&'static str>) -> Vec<&'static str> {
        let requested: Vec<&'static str> = self
            .meta
            .requested_attributes
            .iter()
            .filter_map(|(name, friendly)| {
                friendly.as_deref().and_then(&known).or_else(|| known(name))
            })
            .collect();
        self.policy
            .release
            .iter()
            .filter_map(|r| known(r))
            .filter(|r| requested.is_empty() || requested.contains(r))
            .collect()
    }
}

fn text_b64_der(el: &Element) -> Option<Vec<u8>> {
    let compact: String = el.text.chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD.decode(compact).ok()?;
    openssl::x509::X509::from_der(&der).ok()?;
    Some(der)
}

fn certs_of(kd: &Element) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    kd.descendants(xml::DS, "X509Certificate", &mut found);
    found.into_iter().filter_map(text_b64_der).collect()
}

fn truthy(v: Option<&str>) -> bool {
    matches!(v, Some("true") | Some("1"))
}

/// Parses one SP's metadata (an EntityDescriptor with an SPSSODescriptor).
pub fn parse_metadata(doc: &str, now: i64) -> Result<SpMetadata, SpError> {
    let bad = |m: &str| SpError::Metadata(m.to_string());
    let root = xml::parse(doc).map_err(|e| SpError::Metadata(e.to_string()))?;
    let xml::Entity {
        entity_id,
        role: sp,
        valid_until,
    } = xml::metadata_entity(&root, "SPSSODescriptor", now).map_err(SpError::Metadata)?;
    let endpoint = |e: &Element, indexed: bool| -> Result<Endpoint, SpError> {
        let location = e
            .attr("Location")
            .ok_or_else(|| bad("an endpoint has no Location"))?;
        let u = url::Url::parse(location).map_err(|_| bad("an endpoint Location is not a URL"))?;
        if !matches!(u.scheme(), "https" | "http") {
            return Err(bad("an endpoint Location is not http(s)"));
        }
        Ok(Endpoint {
            binding: e.attr("Binding").unwrap_or_default().to_string(),
            location: location.to_string(),
            response_location: e.attr("ResponseLocation").map(String::from),
            index: if indexed {
                e.attr("index").and_then(|i| i.parse().ok())
            } else {
                None
            },
            is_default: truthy(e.attr("isDefault")),
        })
    };
    let acs = sp
        .children(MD, "AssertionConsumerService")
        .map(|e| endpoint(e, true))
        .collect::<Result<Vec<_>, _>>()?;
    if !acs.iter().any(|e| e.binding == POST) {
        return Err(bad(
            "no AssertionConsumerService with the HTTP-POST binding",
        ));
    }
    let slo = sp
        .children(MD, "SingleLogoutService")
        .map(|e| endpoint(e, false))
        .collect::<Result<Vec<_>, _>>()?;
    let mut signing_certs = Vec::new();
    let mut encryption = None;
    for kd in sp.children(MD, "KeyDescriptor") {
        let certs = certs_of(kd);
        let usage = kd.attr("use");
        if usage != Some("encryption") {
            signing_certs.extend(certs.iter().cloned());
        }
        if usage != Some("signing")
            && encryption.is_none()
            && let Some(c) = certs.into_iter().next()
        {
            let methods = kd
                .children(MD, "EncryptionMethod")
                .filter_map(|m| m.attr("Algorithm").map(String::from))
                .collect();
            encryption = Some((c, methods));
        }
    }
    let display_name = {
        let mut names = Vec::new();
        sp.descendants(MDUI, "DisplayName", &mut names);
        names
            .iter()
            .find(|n| n.attr("xml:lang") == Some("sv"))
            .or_else(|| names.first())
            .map(|n| n.trimmed_text().to_string())
            .filter(|n| !n.is_empty())
    };
    let mut requested_attributes = Vec::new();
    for acs in sp.children(MD, "AttributeConsumingService") {
        for ra in acs.children(MD, "RequestedAttribute") {
            if let Some(name) = ra.attr("Name") {
                requested_attributes
                    .push((name.to_string(), ra.attr("FriendlyName").map(String::from)));
            }
        }
    }
    Ok(SpMetadata {
        entity_id,
        display_name,
        acs,
        slo,
        signing_certs,
        encryption,
        authn_requests_signed: truthy(sp.attr("AuthnRequestsSigned")),
        want_assertions_signed: truthy(sp.attr("WantAssertionsSigned")),
        name_id_formats: sp
            .children(MD, "NameIDFormat")
            .map(|n| n.trimmed_text().to_string())
            .collect(),
        requested_attributes,
        valid_until,
    })
}

/// The largest metadata document read from a URL.
pub const MAX_METADATA_BYTES: usize = 1024 * 1024;

/// Reads metadata from a file path or a URL: https, or plain http only when `allow_http`
/// (development mode). The body is read as it streams and abandoned past
/// `MAX_METADATA_BYTES`, so a hostile server cannot make us buffer more.
pub async fn load_source(
    http: &reqwest::Client,
    source: &str,
    allow_http: bool,
) -> Result<String, SpError> {
    let fetch = |e: String| SpError::Fetch(source.to_string(), e);
    if source.starts_with("http://") && !allow_http {
        return Err(fetch(
            "plain http is refused outside development mode; use https".into(),
        ));
    }
    if !(source.starts_with("https://") || source.starts_with("http://")) {
        return std::fs::read_to_string(source).map_err(|e| SpError::Read(source.to_string(), e));
    }
    let too_large = || fetch("larger than 1 MiB".into());
    let mut res = http
        .get(source)
        .send()
        .await
        .map_err(|e| fetch(e.to_string()))?;
    if !res.status().is_success() {
        return Err(fetch(format!("HTTP {}", res.status())));
    }
    if res
        .content_length()
        .is_some_and(|n| n > MAX_METADATA_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| fetch(e.to_string()))? {
        if body.len() + chunk.len() > MAX_METADATA_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| fetch("not UTF-8".into()))
}

/// A PEM certificate as the base64 DER that `Policy::metadata_signing_cert` pins.
pub fn pinned_certificate(pem: &[u8]) -> Result<String, SpError> {
    let cert = openssl::x509::X509::from_pem(pem)
        .map_err(|e| SpError::Policy(format!("metadata signing certificate: {e}")))?;
    let der = cert
        .to_der()
        .map_err(|e| SpError::Policy(format!("metadata signing certificate: {e}")))?;
    Ok(STANDARD.encode(der))
}

/// The metadata to keep: as given when no certificate is pinned; otherwise only the part
/// the pinned certificate signed (the signature's shape checked before it is verified).
pub fn signed_by_pin(doc: &str, policy: &Policy) -> Result<String, SpError> {
    let Some(pinned) = &policy.metadata_signing_cert else {
        return Ok(doc.to_string());
    };
    let refuse =
        |e: String| SpError::Metadata(format!("not signed by the pinned certificate: {e}"));
    let der = STANDARD
        .decode(pinned)
        .map_err(|e| SpError::Policy(format!("pinned certificate: {e}")))?;
    let root = xml::parse(doc).map_err(|e| refuse(e.to_string()))?;
    crate::xmlsec::dsig::precheck(&root).map_err(|e| refuse(e.to_string()))?;
    crate::xmlsec::dsig::verify_and_reduce(doc, &[der]).map_err(|e| refuse(e.to_string()))
}

impl SpRecord {
    pub fn load(&self, now: i64) -> Result<Sp, SpError> {
        // Stored metadata was valid when registered; an expired validUntil is reported by
        // `Sp::expired` rather than making the SP unknown.
        let meta = parse_metadata_lenient(&self.metadata, now)?;
        Ok(Sp {
            meta,
            policy: self.policy.clone(),
            metadata_url: self.metadata_url.clone(),
            disabled: self.disabled,
        })
    }
}

fn parse_metadata_lenient(doc: &str, now: i64) -> Result<SpMetadata, SpError> {
    match parse_metadata(doc, now) {
        Err(SpError::Metadata(m)) if m.contains("validUntil") => {
            let mut meta = parse_metadata(doc, i64::MIN)?;
            meta.valid_until = Some(meta.valid_until.unwrap_or(now).min(now));
            Ok(meta)
        }
        other => other,
    }
}

/// Registers an SP. Fails if the entityID is taken.
pub async fn add(
    db: &Db,
    metadata: &str,
    metadata_url: Option<&str>,
    policy: &Policy,
    now: i64,
) -> Result<SpMetadata, SpError> {
    let mut tx = db.begin().await?;
    let meta = add_in(&mut tx, metadata, metadata_url, policy, now).await?;
    tx.commit().await?;
    Ok(meta)
}

/// `add` inside the caller's transaction (the admin UI writes its audit event in it).
pub async fn add_in(
    tx: &mut Tx,
    metadata: &str,
    metadata_url: Option<&str>,
    policy: &Policy,
    now: i64,
) -> Result<SpMetadata, SpError> {
    let metadata = &signed_by_pin(metadata, policy)?;
    let meta = parse_metadata(metadata, now)?;
    if crate::storage::saml::get_sp_in(tx, &meta.entity_id)
        .await?
        .is_some()
    {
        return Err(SpError::Exists(meta.entity_id));
    }
    crate::storage::saml::insert_sp_in(
        tx,
        &SpRecord {
            entity_id: meta.entity_id.clone(),
            name: meta.display_name.clone().unwrap_or_default(),
            metadata: metadata.to_string(),
            metadata_url: metadata_url.map(String::from),
            valid_until: meta.valid_until,
            fetched_at: now,
            policy: policy.clone(),
            disabled: false,
        },
        now,
    )
    .await?;
    Ok(meta)
}

/// Replaces an SP's metadata (when `metadata` is given) and policy.
pub async fn update(
    db: &Db,
    entity_id: &str,
    metadata: Option<(&str, Option<&str>)>,
    policy: &Policy,
    now: i64,
) -> Result<(), SpError> {
    let mut tx = db.begin().await?;
    update_in(&mut tx, entity_id, metadata, policy, now).await?;
    tx.commit().await?;
    Ok(())
}

/// `update` inside the caller's transaction.
pub async fn update_in(
    tx: &mut Tx,
    entity_id: &str,
    metadata: Option<(&str, Option<&str>)>,
    policy: &Policy,
    now: i64,
) -> Result<(), SpError> {
    let mut rec = crate::storage::saml::get_sp_in(tx, entity_id)
        .await?
        .ok_or_else(|| SpError::Unknown(entity_id.to_string()))?;
    if let Some((doc, url)) = metadata {
        let doc = &signed_by_pin(doc, policy)?;
        let meta = parse_metadata(doc, now)?;
        if meta.entity_id != entity_id {
            return Err(SpError::Metadata(format!(
                "it is for {}, not {entity_id}",
                meta.entity_id
            )));
        }
        rec.metadata = doc.to_string();
        rec.metadata_url = url.map(String::from);
        rec.valid_until = meta.valid_until;
        rec.fetched_at = now;
        rec.name = meta.display_name.unwrap_or_default();
    }
    rec.policy = policy.clone();
    crate::storage::saml::update_sp_in(tx, &rec, now).await?;
    Ok(())
}

/// Fetches again the metadata of SPs registered from a URL when `every` seconds have passed
/// or their validUntil is within the hour. A failed fetch keeps the old metadata (which stops
/// serving once its validUntil passes) and is logged.
///
/// A refresh that changes the SP's ACS URLs or certificates is audited
/// (`sp.metadata_changed`) and shown by `sp list`: where an SP's assertions go, or whose
/// key it trusts, should not change unnoticed. `allow_http`: development mode only.
pub async fn refresh_due(
    db: &Db,
    http: &reqwest::Client,
    every: i64,
    allow_http: bool,
    now: i64,
) -> Result<u32, SpError> {
    let mut refreshed = 0;
    for rec in crate::storage::saml::list_sps(db).await? {
        let Some(url) = rec.metadata_url.clone() else {
            continue;
        };
        let due = now - rec.fetched_at >= every || rec.valid_until.is_some_and(|v| v - now < 3600);
        if !due {
            continue;
        }
        let fetched = match load_source(http, &url, allow_http).await {
            Ok(doc) => refresh_one(db, &rec, &doc, &url, now).await,
            Err(e) => Err(e),
        };
        match fetched {
            Ok(()) => refreshed += 1,
            Err(e) => tracing::warn!(
                "refreshing metadata of {} from {url} failed: {}",
                rec.entity_id,
                crate::error_chain(&e)
            ),
        }
    }
    Ok(refreshed)
}

/// Stores fetched metadata of `rec` and audits what changed of its endpoints and keys.
async fn refresh_one(
    db: &Db,
    rec: &SpRecord,
    doc: &str,
    url: &str,
    now: i64,
) -> Result<(), SpError> {
    let mut tx = db.begin().await?;
    refresh_in(&mut tx, rec, doc, url, "metadata refresh", now).await?;
    tx.commit().await?;
    Ok(())
}

/// Stores `doc`, fetched again from `url`, as `rec`'s metadata, inside the caller's
/// transaction; a change of ACS URLs or certificates is audited there (`METADATA_CHANGED`,
/// by `actor`). Returns what changed.
pub async fn refresh_in(
    tx: &mut Tx,
    rec: &SpRecord,
    doc: &str,
    url: &str,
    actor: &str,
    now: i64,
) -> Result<Vec<&'static str>, SpError> {
    let new = parse_metadata(&signed_by_pin(doc, &rec.policy)?, now)?;
    let changed = parse_metadata_lenient(&rec.metadata, now)
        .map(|old| metadata_changes(&old, &new))
        .unwrap_or_default();
    update_in(tx, &rec.entity_id, Some((doc, Some(url))), &rec.policy, now).await?;
    if !changed.is_empty() {
        let detail = format!("{}: {}", rec.entity_id, changed.join(", "));
        crate::storage::records::audit_in(tx, METADATA_CHANGED, actor, &detail, now).await?;
        tracing::warn!("{detail} changed at the metadata refresh");
    }
    Ok(changed)
}

/// The audit kind of a metadata refresh that changed ACS URLs or certificates.
pub const METADATA_CHANGED: &str = "sp.metadata_changed";

/// What of interest differs between two versions of an SP's metadata.
fn metadata_changes(old: &SpMetadata, new: &SpMetadata) -> Vec<&'static str> {
    let acs = |m: &SpMetadata| {
        let mut v: Vec<String> = m.acs.iter().map(|e| e.location.clone()).collect();
        v.sort();
        v
    };
    let certs = |m: &SpMetadata| {
        let mut v = m.signing_certs.clone();
        v.extend(m.encryption.iter().map(|(c, _)| c.clone()));
        v.sort();
        v
    };
    let mut out = Vec::new();
    if acs(old) != acs(new) {
        out.push("ACS URLs");
    }
    if certs(old) != certs(new) {
        out.push("certificates");
    }
    out
}

/// Parsed SPs with the time they were loaded, by entityID.
type Loaded = HashMap<String, (i64, Arc<Sp>)>;

/// Short-lived cache of parsed SPs (parsing metadata on every request would dominate).
#[derive(Clone)]
pub struct SpCache {
    ttl: i64,
    map: Arc<RwLock<Loaded>>,
}

impl SpCache {
    pub fn new(ttl: i64) -> Self {
        Self {
            ttl,
            map: Default::default(),
        }
    }

    pub async fn get(
        &self,
        db: &Db,
        entity_id: &str,
        now: i64,
    ) -> Result<Option<Arc<Sp>>, SpError> {
        if self.ttl > 0
            && let Some((at, sp)) = self.map.read().ok().and_then(|m| m.get(entity_id).cloned())
            && now - at < self.ttl
        {
            return Ok(Some(sp));
        }
        let Some(rec) = crate::storage::saml::get_sp(db, entity_id).await? else {
            return Ok(None);
        };
        let sp = Arc::new(rec.load(now)?);
        if self.ttl > 0
            && let Ok(mut m) = self.map.write()
        {
            if m.len() > 10_000 {
                m.clear();
            }
            m.insert(entity_id.to_string(), (now, sp.clone()));
        }
        Ok(Some(sp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MD_DOC: &str = r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://sp.example.se">
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" AuthnRequestsSigned="true">
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://sp.example.se/slo"/>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact" Location="https://sp.example.se/art" index="0"/>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://sp.example.se/acs2" index="2"/>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://sp.example.se/acs1" index="1"/>
    <md:AttributeConsumingService index="0"><md:ServiceName xml:lang="sv">Tjänst</md:ServiceName>
      <md:RequestedAttribute FriendlyName="mail" Name="urn:oid:0.9.2342.19200300.100.1.3"/>
      <md:RequestedAttribute Name="urn:oid:2.5.4.42"/>
    </md:AttributeConsumingService>
  </md:SPSSODescriptor>
</md:EntityDescriptor>"#;

    fn sp(release: &[&str]) -> Sp {
        Sp {
            meta: parse_metadata(MD_DOC, 0).unwrap(),
            policy: Policy {
                release: release.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
            metadata_url: None,
            disabled: false,
        }
    }

    #[test]
    fn acs_only_from_metadata() {
        let s = sp(&[]);
        assert_eq!(
            s.acs(None, None).unwrap().location,
            "https://sp.example.se/acs1"
        );
        assert_eq!(
            s.acs(None, Some(2)).unwrap().location,
            "https://sp.example.se/acs2"
        );
        assert!(s.acs(Some("https://sp.example.se/acs2"), None).is_some());
        assert!(s.acs(Some("https://sp.example.se/acs2/"), None).is_none());
        assert!(s.acs(Some("https://sp.example.se/art"), None).is_none());
        assert!(s.acs(None, Some(0)).is_none());
        assert!(s.meta.authn_requests_signed && s.requires_signed_requests());
    }

    #[test]
    fn release_is_policy_narrowed_by_requested() {
        let known = |n: &str| crate::services::attributes::canonical(n);
        assert_eq!(
            sp(&["mail", "sn", "givenName"]).released(known),
            vec!["mail", "givenName"]
        );
        assert!(sp(&[]).released(known).is_empty());
    }

    #[test]
    fn bad_metadata() {
        assert!(parse_metadata("<x/>", 0).is_err());
        let expired = MD_DOC.replace("entityID=", "validUntil=\"2001-01-01T00:00:00Z\" entityID=");
        assert!(parse_metadata(&expired, 1_800_000_000).is_err());
        let no_post = MD_DOC.replace("bindings:HTTP-POST", "bindings:PAOS");
        assert!(parse_metadata(&no_post, 0).is_err());
    }

    #[test]
    fn name_id_rules() {
        assert_eq!(NameIdRule::parse("persistent").unwrap().format, PERSISTENT);
        let e = NameIdRule::parse("emailAddress=mail").unwrap();
        assert_eq!(
            (e.format.as_str(), e.source.as_deref()),
            (EMAIL, Some("mail"))
        );
        assert!(NameIdRule::parse("emailAddress").is_err());
        assert!(NameIdRule::parse("emailAddress=civic_no").is_err());
        assert!(NameIdRule::parse("persistent=mail").is_err());
    }
}
