//! The demo SAML SP: sends an AuthnRequest over HTTP-Redirect, receives the Response at its
//! ACS, verifies the signature against the IdP's published certificates (libxmlsec1) and
//! shows the attributes. Demo only: a real SP is another program.

use crate::app::AppState;
use crate::saml::{dsig, sp, xml};
use crate::web::{self, WebError, i18n::Lang, paths};
use askama::Template;
use axum::Form;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::{Engine, engine::general_purpose::STANDARD};
use std::io::Write;

/// The attributes the demo SP may receive: an ordinary school service's, never the
/// personnummer.
const RELEASE: [&str; 9] = [
    "eduPersonPrincipalName",
    "eduPersonAffiliation",
    "eduPersonScopedAffiliation",
    "eduPersonAssurance",
    "givenName",
    "sn",
    "displayName",
    "mail",
    "sisSchoolUnitCode",
];
const COOKIE: &str = "demo_sp_request";

pub fn entity_id(issuer: &str) -> String {
    format!("{issuer}{}", paths::DEMO_SP)
}

fn metadata(issuer: &str) -> String {
    format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:mdui="urn:oasis:names:tc:SAML:metadata:ui" entityID="{eid}"><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:Extensions><mdui:UIInfo><mdui:DisplayName xml:lang="sv">Demotjänst (SAML)</mdui:DisplayName><mdui:DisplayName xml:lang="en">Demo service (SAML)</mdui:DisplayName></mdui:UIInfo></md:Extensions><md:NameIDFormat>{fmt}</md:NameIDFormat><md:AssertionConsumerService Binding="{post}" Location="{issuer}{acs}" index="0"/></md:SPSSODescriptor></md:EntityDescriptor>"#,
        eid = xml::esc(&entity_id(issuer)),
        fmt = sp::PERSISTENT,
        post = sp::POST,
        acs = paths::DEMO_SP_ACS,
    )
}

/// Registers (or re-registers, when the issuer changed) the demo SP.
pub async fn seed(state: &AppState) -> anyhow::Result<()> {
    let issuer = &state.config.issuer;
    let policy = sp::Policy {
        release: RELEASE.iter().map(|s| s.to_string()).collect(),
        name_id: Some(sp::NameIdRule::parse("persistent")?),
        idp_initiated: true,
        ..Default::default()
    };
    let eid = entity_id(issuer);
    let now = state.clock.now();
    if crate::storage::saml::get_sp(&state.db, &eid)
        .await?
        .is_some()
    {
        sp::update(
            &state.db,
            &eid,
            Some((&metadata(issuer), None)),
            &policy,
            now,
        )
        .await?;
    } else {
        sp::add(&state.db, &metadata(issuer), None, &policy, now).await?;
    }
    Ok(())
}

#[derive(Template)]
#[template(path = "demo_sp.html")]
struct DemoSpPage<'a> {
    lang: Lang,
    name_id: &'a str,
    attributes: Vec<(String, Vec<String>)>,
}

/// Starts SP-initiated SSO (HTTP-Redirect binding).
pub async fn login_get(State(state): State<AppState>) -> Result<Response, WebError> {
    let issuer = &state.config.issuer;
    let id = xml::new_id();
    let request = format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{now}" Destination="{issuer}{sso}" AssertionConsumerServiceURL="{issuer}{acs}" ProtocolBinding="{post}"><saml:Issuer>{eid}</saml:Issuer></samlp:AuthnRequest>"#,
        now = xml::instant(state.clock.now()),
        sso = paths::SAML_SSO,
        acs = paths::DEMO_SP_ACS,
        post = sp::POST,
        eid = xml::esc(&entity_id(issuer)),
    );
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(request.as_bytes())
        .map_err(WebError::internal)?;
    let encoded = STANDARD.encode(e.finish().map_err(WebError::internal)?);
    let url = format!(
        "{issuer}{}?SAMLRequest={}",
        paths::SAML_SSO,
        url::form_urlencoded::byte_serialize(encoded.as_bytes()).collect::<String>()
    );
    let cookie = web::set_cookie(
        COOKIE,
        &id,
        Some(600),
        state.config.secure_cookies(),
        web::SameSite::Lax,
    );
    let mut res = Redirect::to(&url).into_response();
    res.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(res)
}

#[derive(serde::Deserialize)]
pub struct AcsForm {
    #[serde(rename = "SAMLResponse")]
    saml_response: String,
}

/// The ACS: checks the Response like an SP must, then shows what it says.
pub async fn acs_post(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    Form(f): Form<AcsForm>,
) -> Result<Response, WebError> {
    let failed = || WebError::bad_request("demo.failed");
    let now = state.clock.now();
    let compact: String = f.saml_response.split_ascii_whitespace().collect();
    let raw = STANDARD.decode(compact.as_bytes()).map_err(|_| failed())?;
    let text = String::from_utf8(raw).map_err(|_| failed())?;
    let certs: Vec<Vec<u8>> = state
        .idp
        .published_certificates(now)
        .await
        .map_err(WebError::internal)?
        .iter()
        .filter_map(|c| STANDARD.decode(c.as_bytes()).ok())
        .collect();
    let reduced = tokio::task::spawn_blocking(move || dsig::verify_and_reduce(&text, &certs))
        .await
        .map_err(WebError::internal)?
        .map_err(|_| failed())?;
    let root = xml::parse(&reduced).map_err(|_| failed())?;
    let assertion = if root.is(xml::SAML, "Assertion") {
        &root
    } else {
        root.child(xml::SAML, "Assertion").ok_or_else(failed)?
    };
    let issuer = &state.config.issuer;
    let mut audiences = Vec::new();
    assertion.descendants(xml::SAML, "Audience", &mut audiences);
    let mut confirmations = Vec::new();
    assertion.descendants(xml::SAML, "SubjectConfirmationData", &mut confirmations);
    let confirmation = confirmations.first().ok_or_else(failed)?;
    let expected_request = web::cookie(&headers, COOKIE);
    let ok = audiences.iter().any(|a| a.trimmed_text() == entity_id(issuer))
        && confirmation.attr("Recipient") == Some(&format!("{issuer}{}", paths::DEMO_SP_ACS))
        && confirmation
            .attr("NotOnOrAfter")
            .and_then(xml::parse_instant)
            .is_some_and(|t| t > now)
        // IdP-initiated responses have no InResponseTo; SP-initiated ones must match ours.
        && (confirmation.attr("InResponseTo").is_none()
            || confirmation.attr("InResponseTo") == expected_request);
    if !ok {
        return Err(failed());
    }
    let name_id = assertion
        .child(xml::SAML, "Subject")
        .and_then(|s| s.child(xml::SAML, "NameID"))
        .map(|n| n.trimmed_text().to_string())
        .unwrap_or_default();
    let mut attrs = Vec::new();
    assertion.descendants(xml::SAML, "Attribute", &mut attrs);
    let attributes = attrs
        .iter()
        .map(|a| {
            (
                a.attr("FriendlyName")
                    .or(a.attr("Name"))
                    .unwrap_or_default()
                    .to_string(),
                a.children(xml::SAML, "AttributeValue")
                    .map(|v| v.text.clone())
                    .collect(),
            )
        })
        .collect();
    web::render(&DemoSpPage {
        lang,
        name_id: &name_id,
        attributes,
    })
}
