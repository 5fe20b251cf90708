//! New metadata for a registered SP, and a pinned metadata signing certificate.

use super::*;

#[tokio::test]
async fn new_metadata_replaces_the_old_for_the_same_entity_and_keeps_the_settings() {
    use base64::Engine;
    let app = spawn_app().await;
    let b = admin_browser(&app, "adm", &["admin"]).await;
    let old = TestSp::new("https://byte.example.se");
    let r = register_via_form(&app, &b, &old.metadata(), &[("idp_initiated", "on")]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let before = registered(&app, &old.entity_id).await.unwrap();
    // The supplier's new key: the same entity, another certificate.
    let new = TestSp::new("https://byte.example.se");
    assert_eq!(new.entity_id, old.entity_id);
    let replace_url = app.url(&format!("{NEW}?replace={}", enc(&old.entity_id)));
    let form = b.get(&replace_url).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("Ny metadata för tjänsten"));
    let c = csrf(&form.body);
    let p = b
        .post(
            &app.url(NEW),
            &[
                ("csrf", &c),
                ("step", "preview"),
                ("replace", &old.entity_id),
                ("metadata", &new.metadata()),
            ],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("behålls"), "{}", p.body);
    assert_eq!(
        registered(&app, &old.entity_id).await.unwrap().metadata,
        before.metadata,
        "the preview saves nothing"
    );
    let doc = unescape(&hidden(&p.body, "document"));
    let r = b
        .post(
            &app.url(NEW),
            &[
                ("csrf", &c),
                ("step", "save"),
                ("replace", &old.entity_id),
                ("document", &doc),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location.unwrap().contains("done=metadata"));
    let after = registered(&app, &old.entity_id).await.unwrap();
    let b64 = |der: &[u8]| base64::engine::general_purpose::STANDARD.encode(der);
    assert!(after.metadata.contains(&b64(&new.cert_der)));
    assert!(!after.metadata.contains(&b64(&old.cert_der)));
    assert_eq!(after.policy, before.policy, "the settings are kept");
    let event = audited(&app, "service.saml.metadata_replaced").await;
    assert_ne!(
        event["before"]["certificates"],
        event["after"]["certificates"]
    );

    // Metadata of another entity is refused and changes nothing.
    let other = TestSp::new("https://annan.example.se");
    let r = b
        .post(
            &app.url(NEW),
            &[
                ("csrf", &c),
                ("step", "preview"),
                ("replace", &old.entity_id),
                ("metadata", &other.metadata()),
            ],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("gäller en annan tjänst"), "{}", r.body);

    // A read-only admin cannot replace it.
    let reader = admin_browser(&app, "reader", &["admin-readonly"]).await;
    let c = csrf_of(&app, &reader).await;
    let r = reader
        .post(
            &app.url(NEW),
            &[
                ("csrf", &c),
                ("step", "save"),
                ("replace", &old.entity_id),
                ("document", &old.metadata()),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        registered(&app, &old.entity_id).await.unwrap().metadata,
        after.metadata
    );
}

#[tokio::test]
async fn a_pinned_certificate_lets_only_metadata_it_signed_in() {
    let app = spawn_app().await;
    let b = admin_browser(&app, "adm", &["admin"]).await;
    let federation = TestSp::new("https://federation.example.se");
    let pem = String::from_utf8(
        openssl::x509::X509::from_der(&federation.cert_der)
            .unwrap()
            .to_pem()
            .unwrap(),
    )
    .unwrap();
    let sp = TestSp::new("https://pinned.example.se");
    let c = csrf_of(&app, &b).await;
    let step = |md: String, pin: String| {
        let (b, app, c) = (&b, &app, c.clone());
        async move {
            b.post(
                &app.url(NEW),
                &[
                    ("csrf", c.as_str()),
                    ("step", "preview"),
                    ("metadata", &md),
                    ("pin", &pin),
                ],
            )
            .await
        }
    };
    // Not a certificate; metadata nobody signed; metadata a stranger signed: refused.
    let r = step(sp.metadata(), "not a certificate".into()).await;
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("Certifikatet gick inte att läsa"),
        "{}",
        r.body
    );
    let r = step(sp.metadata(), pem.clone()).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("inte signerad"), "{}", r.body);
    let stranger = TestSp::new("https://stranger.example.se");
    let r = step(
        crate::saml_registry::signed_metadata(&sp.metadata(), &stranger),
        pem.clone(),
    )
    .await;
    assert_eq!(r.status, 400);
    // Signed by the federation: previewed, then saved with the pin.
    let signed = crate::saml_registry::signed_metadata(&sp.metadata(), &federation);
    let p = step(signed, pem.clone()).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("Metadatan är signerad med det certifikat"));
    let doc = unescape(&hidden(&p.body, "document"));
    let r = b
        .post(
            &app.url(NEW),
            &[
                ("csrf", &c),
                ("step", "save"),
                ("document", &doc),
                ("pin", &unescape(&hidden(&p.body, "pin"))),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let rec = registered(&app, &sp.entity_id).await.unwrap();
    assert!(rec.policy.metadata_signing_cert.is_some());
    // New metadata for it must be signed by the pin too (it is kept).
    let r = b
        .post(
            &app.url(NEW),
            &[
                ("csrf", &c),
                ("step", "preview"),
                ("replace", &sp.entity_id),
                ("metadata", &sp.metadata()),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("inte signerad"), "{}", r.body);
}
