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
    let xml = response::response(
        idp.entity_id(),
        &pending.acs,
        pending.request_id.as_deref(),
        status,
        "",
        Some(&cred),
        now,
    )?;
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
    let details = crate::directory::details_by_id(
        &idp.db,
        &idp.config.directory,
        &session.person_id,
        crate::directory::roles::day_of(now),
    )
    .await?;
    let details = match details {
        Some(d) if d.person.active => d,
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
    // Signed here, on the async thread: one RSA-2048 signature with the decoded key is about
    // 0.3 ms, and a hand-off to a blocking thread cost more (two cross-CPU wake-ups, and a
    // thread per concurrent SSO whose allocator heap stayed: docs/benchmarks.md, issue 16).
    let cred = idp.credential(now).await?;
    let assertion = response::signed_assertion(
        &AssertionParts {
            idp: idp.entity_id(),
            sp: sp.entity_id(),
            acs: &pending.acs,
            in_response_to: pending.request_id.as_deref(),
            name_id: &name_id,
            name_id_format: &rule.format,
            session_index: &index,
            auth_time: session.auth_time,
            authn_context: &context_for(session, &pending.requirement),
            attributes: &attrs,
            now,
            ttl: idp.config.saml.assertion_ttl,
            skew: idp.config.tokens.clock_skew,
        },
        &cred,
    )?;
    let assertion = match response::encryption_for(sp) {
        Some((cert, data, transport)) => {
            crate::saml::encrypt::encrypt_assertion(&assertion, cert, data, transport)?
        }
        None => assertion,
    };
    let xml = response::response(
        idp.entity_id(),
        &pending.acs,
        pending.request_id.as_deref(),
        Status::OK,
        &assertion,
        sp.policy.sign_response.then_some(&cred),
        now,
    )?;
    crate::metrics::assertion_issued(sp.entity_id());
    Ok(form(pending, xml))
}
