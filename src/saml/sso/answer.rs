//! The Response to a checked request: a status alone, or a signed assertion about the
//! session's person (optionally encrypted, the Response optionally signed too).

use super::name_id::{name_id_rule, name_id_value, session_index};
use super::{Pending, PostForm};
use crate::authn::{Requirement, Session, acr};
use crate::saml::attributes;
use crate::saml::response::{self, AssertionParts, Status};
use crate::saml::sp::Sp;
use crate::saml::{Idp, SamlError};
use base64::{Engine, engine::general_purpose::STANDARD};

/// The AuthnContextClassRef to state: the level the session reached (the method mapping in
/// `authn::acr`), or the requested level it satisfies.
fn context_for(session: &Session, requirement: &Requirement) -> String {
    requirement
        .acr_values
        .iter()
        .filter(|a| acr::rank(&session.acr) >= acr::rank(a))
        .max_by_key(|a| acr::rank(a))
        .cloned()
        .unwrap_or_else(|| session.acr.clone())
}

/// Answers with a status only (no assertion), signed.
pub async fn status_response(
    idp: &Idp,
    pending: &Pending,
    status: Status,
    now: i64,
) -> Result<PostForm, SamlError> {
    let cred = idp.credential(now).await?;
    let (idp_id, acs, irt) = (
        idp.entity_id().to_string(),
        pending.acs.clone(),
        pending.request_id.clone(),
    );
    let xml = crate::saml::blocking(move || {
        response::response(&idp_id, &acs, irt.as_deref(), status, "", Some(&cred), now)
    })
    .await?;
    Ok(form(pending, xml))
}

fn form(pending: &Pending, xml: String) -> PostForm {
    PostForm {
        action: pending.acs.clone(),
        field: "SAMLResponse",
        value: STANDARD.encode(xml),
        relay_state: pending.relay_state.clone(),
    }
}

/// Answers with an assertion about the session's person.
pub async fn answer(
    idp: &Idp,
    sp: &Sp,
    pending: &Pending,
    session: &Session,
    now: i64,
) -> Result<PostForm, SamlError> {
    let person = match crate::storage::persons::by_id(&idp.db, &session.person_id).await? {
        Some(p) if p.active => p,
        _ => {
            return status_response(
                idp,
                pending,
                Status::responder(Some(response::AUTHN_FAILED), "the account is not active"),
                now,
            )
            .await;
        }
    };
    let details = crate::directory::details(
        &idp.db,
        &idp.config.directory,
        person,
        crate::directory::roles::day_of(now),
    )
    .await?;
    let Some(rule) = name_id_rule(sp, pending.name_id_format.as_deref()) else {
        return status_response(
            idp,
            pending,
            Status::requester(
                response::INVALID_NAMEID_POLICY,
                "NameID format not available",
            ),
            now,
        )
        .await;
    };
    let Some(name_id) = name_id_value(idp, &rule, sp, &details, session) else {
        return status_response(
            idp,
            pending,
            Status::responder(
                Some(response::INVALID_NAMEID_POLICY),
                "the person has no value for this NameID",
            ),
            now,
        )
        .await;
    };
    let scope = idp.config.saml_scope();
    let released = attributes::release(
        sp,
        &attributes::Subject {
            details: &details,
            acr: Some(&session.acr),
            scope: &scope,
        },
    );
    let attrs = attributes::statement(&released, &idp.config.saml.attribute_names);
    // What this SP learns about the person, recorded as every issuance is (the attributes
    // actually sent, by FriendlyName).
    let sent: Vec<String> = released.iter().map(|(a, _)| a.to_string()).collect();
    crate::storage::records::insert_release(
        &idp.db,
        &details.person.id,
        sp.entity_id(),
        "saml",
        "assertion",
        &sent,
        now,
    )
    .await?;
    let index = session_index(idp, session, sp);
    let subject = crate::storage::saml::Subject {
        session_id: session.id.clone(),
        sp: sp.entity_id().to_string(),
        name_id: name_id.clone(),
        name_id_format: rule.format.clone(),
        session_index: index.clone(),
    };
    // Repeated SSO to the same SP in a session tells it the same: no write needed.
    let known = crate::storage::saml::subject(&idp.db, &session.id, sp.entity_id()).await?;
    if known.as_ref() != Some(&subject) {
        crate::storage::saml::upsert_subject(&idp.db, &subject).await?;
        idp.authn
            .add_participant(session, sp.entity_id(), "saml", now)
            .await?;
    }
    let cred = idp.credential(now).await?;
    let idp_id = idp.entity_id().to_string();
    let ctx = context_for(session, &pending.requirement);
    let (ttl, skew) = (idp.config.saml.assertion_ttl, idp.config.tokens.clock_skew);
    let encryption = response::encryption_for(sp).map(|(c, d, t)| (c.to_vec(), d, t));
    let sign_response = sp.policy.sign_response;
    let sp_id = sp.entity_id().to_string();
    let p = pending.clone();
    let auth_time = session.auth_time;
    let xml = crate::saml::blocking(move || {
        let assertion = response::signed_assertion(
            &AssertionParts {
                idp: &idp_id,
                sp: &sp_id,
                acs: &p.acs,
                in_response_to: p.request_id.as_deref(),
                name_id: &name_id,
                name_id_format: &rule.format,
                session_index: &index,
                auth_time,
                authn_context: &ctx,
                attributes: &attrs,
                now,
                ttl,
                skew,
            },
            &cred,
        )?;
        let assertion = match encryption {
            Some((cert, data, transport)) => {
                crate::saml::encrypt::encrypt_assertion(&assertion, &cert, data, transport)?
            }
            None => assertion,
        };
        response::response(
            &idp_id,
            &p.acs,
            p.request_id.as_deref(),
            Status::OK,
            &assertion,
            sign_response.then_some(&cred),
            now,
        )
    })
    .await?;
    crate::metrics::assertion_issued(sp.entity_id());
    Ok(form(pending, xml))
}
