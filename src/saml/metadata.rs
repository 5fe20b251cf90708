//! The IdP's metadata document (SAML Metadata 2.0, with shibmd:Scope and mdui:UIInfo).

use super::xml::{esc, new_id};
use super::{Idp, SamlError, dsig, sp};
use crate::web::paths;
use axum::body::Bytes;
use std::sync::Arc;

/// The served document and the key ids (signer first, "" when unsigned) it was built for.
pub(super) type Served = (Vec<String>, Bytes);

/// The metadata as served: built (and, when configured, signed) once per key set, then the
/// same bytes until a key is published, activated or retired. Signing per request would let
/// anyone make the IdP sign at will.
pub async fn served(idp: &Idp, now: i64) -> Result<Bytes, SamlError> {
    // The key set is named by key ids (a key's certificate never changes once made), so a
    // request costs a comparison of a few short strings and a reference count.
    idp.keys.refresh(now).await;
    let (active, published) = idp.keys.rsa_keys(now)?;
    let sign = idp.config.saml.sign_metadata;
    let key_set = || {
        let signer = if sign { active.kid.as_str() } else { "" };
        std::iter::once(signer).chain(published.iter().map(|k| k.kid.as_str()))
    };
    {
        let cached = match idp.metadata.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some((built_for, doc)) = cached.as_ref()
            && built_for.iter().map(String::as_str).eq(key_set())
        {
            return Ok(doc.clone());
        }
    }
    // Built from the same keys the cache entry is named by.
    let mut certs = Vec::with_capacity(published.len());
    for k in &published {
        certs.push(idp.certificate(k, now).await?);
    }
    let cred = if sign {
        Some(idp.credential_of(&active, now).await?)
    } else {
        None
    };
    let doc = Bytes::from(document(idp, &certs, cred).await?);
    let mut slot = match idp.metadata.write() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    *slot = Some((key_set().map(String::from).collect(), doc.clone()));
    Ok(doc)
}

/// Builds (and, with a credential, signs) the metadata. Lists every published signing
/// certificate, so SPs learn the next key before it signs.
async fn document(
    idp: &Idp,
    certs: &[Arc<str>],
    cred: Option<super::Credential>,
) -> Result<String, SamlError> {
    let cfg = &idp.config.saml;
    let id = new_id();
    let keys: String = certs
        .iter()
        .map(|c| {
            format!(
                r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{c}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#
            )
        })
        .collect();
    let (sso, slo) = (esc_url(idp, paths::SAML_SSO), esc_url(idp, paths::SAML_SLO));
    let sig = cred
        .as_ref()
        .map(|c| dsig::template(&id, &c.cert_b64))
        .unwrap_or_default();
    let xml = format!(
        concat!(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" "#,
            r#"xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:mdui="urn:oasis:names:tc:SAML:metadata:ui" "#,
            r#"xmlns:shibmd="urn:mace:shibboleth:metadata:1.0" ID="{id}" entityID="{entity}" cacheDuration="PT1H">"#,
            "{sig}",
            r#"<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">"#,
            "<md:Extensions>",
            r#"<shibmd:Scope regexp="false">{scope}</shibmd:Scope>"#,
            "<mdui:UIInfo>",
            r#"<mdui:DisplayName xml:lang="sv">{name_sv}</mdui:DisplayName>"#,
            r#"<mdui:DisplayName xml:lang="en">{name_en}</mdui:DisplayName>"#,
            "</mdui:UIInfo>",
            "</md:Extensions>",
            "{keys}",
            r#"<md:SingleLogoutService Binding="{redirect}" Location="{slo}"/>"#,
            r#"<md:SingleLogoutService Binding="{post}" Location="{slo}"/>"#,
            "<md:NameIDFormat>{transient}</md:NameIDFormat>",
            "<md:NameIDFormat>{persistent}</md:NameIDFormat>",
            "<md:NameIDFormat>{email}</md:NameIDFormat>",
            r#"<md:SingleSignOnService Binding="{redirect}" Location="{sso}"/>"#,
            r#"<md:SingleSignOnService Binding="{post}" Location="{sso}"/>"#,
            "</md:IDPSSODescriptor>",
            "</md:EntityDescriptor>"
        ),
        id = id,
        entity = esc(idp.entity_id()),
        sig = sig,
        scope = esc(&idp.config.saml_scope()),
        name_sv = esc(&cfg.display_name_sv),
        name_en = esc(&cfg.display_name_en),
        keys = keys,
        redirect = sp::REDIRECT,
        post = sp::POST,
        slo = slo,
        sso = sso,
        transient = sp::TRANSIENT,
        persistent = sp::PERSISTENT,
        email = sp::EMAIL,
    );
    match cred {
        Some(c) => Ok(dsig::sign(&xml, &c.key_der)?),
        None => Ok(xml),
    }
}

fn esc_url(idp: &Idp, path: &str) -> String {
    esc(&idp.url(path)).into_owned()
}
