//! Linking what an upstream proved to one person, against the real database: the rule, the
//! stored link, the refusals and their audit events, and the single-use login state.

use super::{last_audit, person_with_email, sql};
use crate::helpers::*;
use portvakt::authn::AuthnError;
use portvakt::authn::upstream::{self as fed, LinkRefusal, UpstreamLogin};
use portvakt::upstream::{Identity, Kind, LinkRule, Upstream};
use std::collections::BTreeMap;

fn upstream(name: &str, rule: &str, pins: &[(&str, &str)]) -> Upstream {
    Upstream {
        name: name.into(),
        kind: Kind::Oidc {
            issuer: "https://idp.example.se".into(),
            client_id: "portvakt".into(),
            scopes: vec![],
        },
        display_name: "Kommunens konto".into(),
        logo: None,
        level: portvakt::authn::acr::BAS.into(),
        link: LinkRule::parse(rule).unwrap(),
        require_claims: pins
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        enabled: true,
    }
}

fn identity(up: &str, subject: &str, claims: &[(&str, &str)]) -> Identity {
    Identity {
        upstream: up.into(),
        subject: subject.into(),
        claims: claims
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        level: None,
    }
}

async fn register(app: &TestApp, up: &Upstream) -> Upstream {
    fed::add(
        &app.db,
        &app.state.keys,
        up.clone(),
        Some("s3cret"),
        app.clock.now(),
    )
    .await
    .unwrap()
}

async fn refusal(app: &TestApp, up: &Upstream, id: &Identity) -> LinkRefusal {
    match app
        .state
        .authn
        .resolve_upstream(up, id, app.clock.now())
        .await
    {
        Err(AuthnError::LinkRefused(r)) => r,
        Ok(p) => panic!("linked {} instead of refusing", p.username),
        Err(e) => panic!("{e}"),
    }
}

const PIN: (&str, &str) = ("tid", "kommunen");

#[tokio::test]
async fn a_verified_email_in_a_pinned_tenant_links_once_and_the_link_then_decides() {
    let app = spawn_app().await;
    let anna = person_with_email(&app, "anna", "anna@kommun.se").await;
    let up = register(&app, &upstream("entra", "email=email", &[PIN])).await;
    let first = identity(
        "entra",
        "sub-anna",
        &[("email", "Anna@Kommun.se"), ("email_verified", "true"), PIN],
    );
    let p = app
        .state
        .authn
        .resolve_upstream(&up, &first, app.clock.now())
        .await
        .unwrap();
    assert_eq!(p.id, anna.id);
    let link = last_audit(&app, "upstream.link").await.unwrap();
    assert!(
        link.contains(&anna.id) && link.contains("email=email"),
        "{link}"
    );
    assert!(
        !link.contains("kommun.se"),
        "no email address in the audit: {link}"
    );
    // The email changed upstream (and now names nobody, or somebody else): the link decides.
    let bertil = person_with_email(&app, "bertil", "bertil@kommun.se").await;
    for email in ["anna.new@kommun.se", "bertil@kommun.se"] {
        let later = identity(
            "entra",
            "sub-anna",
            &[("email", email), ("email_verified", "true"), PIN],
        );
        let p = app
            .state
            .authn
            .resolve_upstream(&up, &later, app.clock.now())
            .await
            .unwrap();
        assert_eq!(p.id, anna.id);
    }
    // Bertil's own first login links Bertil; a second subject for Anna does not.
    let b = identity(
        "entra",
        "sub-bertil",
        &[
            ("email", "bertil@kommun.se"),
            ("email_verified", "true"),
            PIN,
        ],
    );
    assert_eq!(
        app.state
            .authn
            .resolve_upstream(&up, &b, app.clock.now())
            .await
            .unwrap()
            .id,
        bertil.id
    );
    let other = identity(
        "entra",
        "sub-anna-2",
        &[("email", "anna@kommun.se"), ("email_verified", "true"), PIN],
    );
    assert_eq!(refusal(&app, &up, &other).await, LinkRefusal::AlreadyLinked);
}

#[tokio::test]
async fn unknown_ambiguous_unverified_and_unpinned_are_refused_and_audited() {
    let app = spawn_app().await;
    person_with_email(&app, "c1", "delad@kommun.se").await;
    person_with_email(&app, "c2", "Delad@kommun.se").await;
    person_with_email(&app, "solo", "solo@kommun.se").await;
    let up = register(&app, &upstream("entra", "email=email", &[PIN])).await;
    let id = |email: &str, verified: &str| {
        identity(
            "entra",
            &format!("s-{email}"),
            &[("email", email), ("email_verified", verified), PIN],
        )
    };
    assert_eq!(
        refusal(&app, &up, &id("ingen@kommun.se", "true")).await,
        LinkRefusal::Unknown
    );
    let audit = last_audit(&app, "upstream.refused").await.unwrap();
    assert!(
        audit.contains("reason=unknown") && !audit.contains("ingen@"),
        "{audit}"
    );
    assert_eq!(
        refusal(&app, &up, &id("delad@kommun.se", "true")).await,
        LinkRefusal::Ambiguous
    );
    assert!(
        last_audit(&app, "upstream.refused")
            .await
            .unwrap()
            .contains("reason=ambiguous")
    );
    // Not said to be verified: never linked, whatever else matches.
    assert_eq!(
        refusal(&app, &up, &id("solo@kommun.se", "false")).await,
        LinkRefusal::UnverifiedEmail
    );
    let mut missing = id("solo@kommun.se", "true");
    missing.claims.remove("email_verified");
    assert_eq!(
        refusal(&app, &up, &missing).await,
        LinkRefusal::UnverifiedEmail
    );
    // An email rule without a pin is refused when stored, and refused at login had it been
    // stored some other way.
    let unpinned = upstream("google", "email=email", &[]);
    let err = fed::add(&app.db, &app.state.keys, unpinned.clone(), Some("x"), 0)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--require-claim"), "{err}");
    let g = identity(
        "google",
        "g1",
        &[("email", "solo@kommun.se"), ("email_verified", "true")],
    );
    assert_eq!(
        refusal(&app, &unpinned, &g).await,
        LinkRefusal::UnverifiedEmail
    );
    // No linking claim at all.
    let none = identity("entra", "s-none", &[("email_verified", "true"), PIN]);
    assert_eq!(refusal(&app, &up, &none).await, LinkRefusal::Unknown);
}

#[tokio::test]
async fn pins_are_checked_on_every_login_even_when_linked() {
    let app = spawn_app().await;
    let p = person_with_email(&app, "pia", "pia@kommun.se").await;
    let up = register(
        &app,
        &upstream("entra", "email=email", &[PIN, ("hd", "kommun.se")]),
    )
    .await;
    let good = identity(
        "entra",
        "s-pia",
        &[
            ("email", "pia@kommun.se"),
            ("email_verified", "true"),
            PIN,
            ("hd", "kommun.se"),
        ],
    );
    assert_eq!(
        app.state
            .authn
            .resolve_upstream(&up, &good, 0)
            .await
            .unwrap()
            .id,
        p.id
    );
    let mut other_tenant = good.clone();
    other_tenant
        .claims
        .insert("tid".into(), "en-annan-kommun".into());
    assert_eq!(
        refusal(&app, &up, &other_tenant).await,
        LinkRefusal::PinMismatch
    );
    let audit = last_audit(&app, "upstream.refused").await.unwrap();
    assert!(audit.contains("reason=pin_mismatch claims=tid"), "{audit}");
    let mut no_hd = good.clone();
    no_hd.claims.remove("hd");
    assert_eq!(refusal(&app, &up, &no_hd).await, LinkRefusal::PinMismatch);
}

#[tokio::test]
async fn deactivated_and_protected_people_cannot_log_in_through_an_upstream() {
    let app = spawn_app().await;
    let dora = person_with_email(&app, "dora", "dora@kommun.se").await;
    let up = register(&app, &upstream("entra", "email=email", &[PIN])).await;
    let id = |sub: &str, email: &str| {
        identity(
            "entra",
            sub,
            &[("email", email), ("email_verified", "true"), PIN],
        )
    };
    app.state
        .authn
        .resolve_upstream(&up, &id("s-dora", "dora@kommun.se"), 0)
        .await
        .unwrap();
    sql(
        &app,
        "UPDATE persons SET status = 'deactivated' WHERE id = $1",
        &[&dora.id],
    )
    .await;
    // Linked, then deactivated: refused.
    assert_eq!(
        refusal(&app, &up, &id("s-dora", "dora@kommun.se")).await,
        LinkRefusal::Deactivated
    );
    // Deactivated and not linked: refused too.
    let erik = person_with_email(&app, "erik", "erik@kommun.se").await;
    sql(
        &app,
        "UPDATE persons SET status = 'deactivated' WHERE id = $1",
        &[&erik.id],
    )
    .await;
    assert_eq!(
        refusal(&app, &up, &id("s-erik", "erik@kommun.se")).await,
        LinkRefusal::Deactivated
    );
    // A protected identity is never linked by email (and the refusal looks like "unknown").
    let skyddad = person_with_email(&app, "skyddad", "skyddad@kommun.se").await;
    sql(
        &app,
        "UPDATE persons SET protected_identity = 1 WHERE id = $1",
        &[&skyddad.id],
    )
    .await;
    let r = refusal(&app, &up, &id("s-skyddad", "skyddad@kommun.se")).await;
    assert_eq!(r, LinkRefusal::Protected);
    assert_eq!(r.message(), LinkRefusal::Unknown.message());
    // ...but may be linked by another rule (here: the username).
    let by_name = register(
        &app,
        &upstream("skolid", "preferred_username=username", &[]),
    )
    .await;
    let n = identity("skolid", "x", &[("preferred_username", "skyddad")]);
    assert_eq!(
        app.state
            .authn
            .resolve_upstream(&by_name, &n, 0)
            .await
            .unwrap()
            .id,
        skyddad.id
    );
}

#[tokio::test]
async fn the_login_state_is_taken_once_by_its_own_browser_and_upstream() {
    let app = spawn_app().await;
    let authn = &app.state.authn;
    let now = app.clock.now();
    let login = UpstreamLogin {
        upstream: "entra".into(),
        tx_id: "tx1".into(),
        nonce: Some("n".into()),
        pkce_verifier: Some("v".into()),
        request_id: Some("_req".into()),
        created_at: now,
    };
    let handle = authn
        .begin_upstream_login(&login, "browser-a", now)
        .await
        .unwrap();
    assert!(
        authn
            .take_upstream_login("entra", &handle, "browser-b", now)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        authn
            .take_upstream_login("other", &handle, "browser-a", now)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        authn
            .take_upstream_login("entra", "forged", "browser-a", now)
            .await
            .unwrap()
            .is_none()
    );
    let got = authn
        .take_upstream_login("entra", &handle, "browser-a", now)
        .await
        .unwrap();
    assert_eq!(got, Some(login.clone()));
    assert!(
        authn
            .take_upstream_login("entra", &handle, "browser-a", now)
            .await
            .unwrap()
            .is_none()
    );
    // Expired: gone.
    let handle = authn
        .begin_upstream_login(&login, "browser-a", now)
        .await
        .unwrap();
    app.clock.advance(app.config.session.login_ttl);
    let later = app.clock.now();
    assert!(
        authn
            .take_upstream_login("entra", &handle, "browser-a", later)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn the_client_secret_is_sealed_in_the_database() {
    let app = spawn_app().await;
    let up = register(&app, &upstream("entra", "upn=eppn", &[])).await;
    let rec = portvakt::storage::upstream::get(&app.db, &up.name)
        .await
        .unwrap()
        .unwrap();
    let sealed = rec.client_secret.unwrap();
    assert!(!sealed.contains("s3cret"));
    assert_eq!(
        app.state
            .authn
            .upstream_secret("entra")
            .await
            .unwrap()
            .as_deref(),
        Some("s3cret")
    );
}
