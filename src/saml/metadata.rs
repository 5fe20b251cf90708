//! The IdP's metadata document (SAML Metadata 2.0, with shibmd:Scope and mdui:UIInfo).

use super::xml::{esc, new_id};
use super::{Idp, SamlError, dsig, sp};
use crate::web::paths;
use axum::body::Bytes;
use std::sync::Arc;

/// The metadata as served: built (and, when configured, signed) once per key set, then the
/// same bytes until a key is published, activated or retired. Signing per request would let
/// anyone make the IdP sign at will.
pub async fn served(idp: &Idp, now: i64) -> Result<Bytes, SamlError> {
    let certs = idp.published_certificates(now).await?;
    let cred = if idp.config.saml.sign_metadata {
        Some(idp.credential(now).await?)
    } else {
        None
    };
    let key_set = format!(
        "{}|{}",
        cred.as_ref().map_or("", |c| &*c.cert_b64),
        certs.join("|")
    );
    let cached = match idp.metadata.read() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    };
    if let Some((built_for, doc)) = cached
        && built_for == key_set
    {
        return Ok(doc);
    }
    let doc = Bytes::from(document(idp, &certs, cred).await?);
    let mut slot = match idp.metadata.write() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    *slot = Some((key_set, doc.clone()));
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
        Some(c) => super::blocking(move || Ok(dsig::sign(&xml, &c.key_der)?)).await,
        None => Ok(xml),
    }
}

fn esc_url(idp: &Idp, path: &str) -> String {
    esc(&idp.url(path)).into_owned()
}
