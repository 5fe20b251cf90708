//! `portvakt upstream add|update|list|remove|unlink`.

use crate::helpers::*;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

fn fails_with(out: std::process::Output, needle: &str) {
    assert!(!out.status.success(), "should fail: {}", text(&out.stdout));
    let err = text(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains(needle), "{err}");
}

fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

#[tokio::test]
async fn upstreams_are_managed_from_the_command_line() {
    let app = spawn_app().await;
    let out = ok(cli(
        &app,
        &[
            "upstream",
            "add",
            "entra",
            "--oidc",
            "https://login.example.com/t1/v2.0/",
            "--client-id",
            "portvakt",
            "--client-secret-stdin",
            "--link-on",
            "email=email",
            "--require-claim",
            "tid=t1",
            "--display-name",
            "Kommunens konto",
            "--logo",
            "https://kommun.example.se/logo.svg",
        ],
        Some("hemligt-hemligt\n"),
    ));
    assert!(out.contains("added upstream entra"), "{out}");
    assert!(
        out.contains(&format!("{}/upstream/entra/callback", app.base)),
        "prints the redirect URI: {out}"
    );
    let list: serde_json::Value =
        serde_json::from_str(&ok(cli(&app, &["upstream", "list", "--json"], None))).unwrap();
    let e = &list[0];
    assert_eq!(e["name"], "entra");
    assert_eq!(e["kind"], "oidc");
    assert_eq!(e["issuer"], "https://login.example.com/t1/v2.0");
    assert_eq!(
        e["scopes"],
        serde_json::json!(["openid", "email", "profile"])
    );
    assert_eq!(e["link_on"], "email=email");
    assert_eq!(e["require_claims"], serde_json::json!(["tid=t1"]));
    assert_eq!(e["level"], portvakt::authn::acr::BAS);
    assert_eq!(e["display_name"], "Kommunens konto");
    assert_eq!(e["enabled"], true);
    assert!(!list.to_string().contains("hemligt"), "no secret listed");
    assert_eq!(
        app.state
            .authn
            .upstream_secret("entra")
            .await
            .unwrap()
            .as_deref(),
        Some("hemligt-hemligt")
    );

    // Update: what is given replaces; the secret stays unless given.
    ok(cli(
        &app,
        &[
            "upstream",
            "update",
            "entra",
            "--level",
            portvakt::authn::acr::TWO_FACTOR,
            "--scope",
            "openid",
            "--disable",
        ],
        None,
    ));
    let list: serde_json::Value =
        serde_json::from_str(&ok(cli(&app, &["upstream", "list", "--json"], None))).unwrap();
    assert_eq!(list[0]["level"], portvakt::authn::acr::TWO_FACTOR);
    assert_eq!(list[0]["scopes"], serde_json::json!(["openid"]));
    assert_eq!(list[0]["enabled"], false);
    assert_eq!(list[0]["link_on"], "email=email");
    assert!(
        app.state.authn.upstream("entra").await.unwrap().is_none(),
        "disabled"
    );
    assert_eq!(
        app.state
            .authn
            .upstream_secret("entra")
            .await
            .unwrap()
            .as_deref(),
        Some("hemligt-hemligt")
    );

    // SAML from a metadata file: stored for the SAML client to read.
    let md = app.dir.path().join("idp.xml");
    // IdP metadata must name a signing certificate and a Redirect SSO endpoint (fed-saml).
    let key = openssl::rsa::Rsa::generate(2048)
        .and_then(openssl::pkey::PKey::from_rsa)
        .and_then(|k| k.private_key_to_pkcs8())
        .unwrap();
    let cert = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        portvakt::upstream::saml::certificate(&key, "idp").unwrap(),
    );
    std::fs::write(&md, format!(r#"<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.example.se"><IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></KeyDescriptor><SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.se/sso"/></IDPSSODescriptor></EntityDescriptor>"#)).unwrap();
    ok(cli(
        &app,
        &[
            "upstream",
            "add",
            "skolfed",
            "--saml-metadata",
            md.to_str().unwrap(),
            "--link-on",
            "eppn=eppn",
        ],
        None,
    ));
    let saml = portvakt::authn::upstream::get(&app.db, "skolfed")
        .await
        .unwrap()
        .unwrap();
    match saml.kind {
        portvakt::upstream::Kind::Saml {
            metadata_url,
            metadata,
        } => {
            assert!(metadata_url.is_none());
            assert!(
                metadata
                    .unwrap()
                    .contains("entityID=\"https://idp.example.se\"")
            );
        }
        k => panic!("{k:?}"),
    }
    let plain = ok(cli(&app, &["upstream", "list"], None));
    assert!(
        plain.contains("entra") && plain.contains("(disabled)") && plain.contains("skolfed"),
        "{plain}"
    );

    ok(cli(&app, &["upstream", "remove", "skolfed"], None));
    fails_with(
        cli(&app, &["upstream", "remove", "skolfed"], None),
        "no upstream skolfed",
    );
    let kinds: Vec<String> = portvakt::storage::records::recent_audit(&app.db, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, k, _, _)| k)
        .collect();
    for k in ["upstream.add", "upstream.update", "upstream.remove"] {
        assert!(kinds.iter().any(|x| x == k), "{k} audited: {kinds:?}");
    }
}

#[tokio::test]
async fn bad_upstream_input_is_one_clear_line() {
    let app = spawn_app().await;
    let add = |extra: &[&str]| {
        let mut args = vec!["upstream", "add"];
        args.extend_from_slice(extra);
        cli(&app, &args, Some("secret\n"))
    };
    fails_with(
        add(&["x", "--link-on", "email=email"]),
        "--oidc ISSUER or --saml-metadata",
    );
    fails_with(
        add(&[
            "x",
            "--oidc",
            "https://i.example",
            "--client-id",
            "c",
            "--client-secret-stdin",
        ]),
        "--link-on",
    );
    fails_with(
        add(&[
            "x",
            "--oidc",
            "https://i.example",
            "--client-id",
            "c",
            "--client-secret-stdin",
            "--link-on",
            "email",
        ]),
        "CLAIM=FIELD",
    );
    fails_with(
        add(&[
            "x",
            "--oidc",
            "https://i.example",
            "--client-id",
            "c",
            "--client-secret-stdin",
            "--link-on",
            "email=phone",
        ]),
        "FIELD must be one of",
    );
    fails_with(
        add(&[
            "x",
            "--oidc",
            "https://i.example",
            "--client-id",
            "c",
            "--client-secret-stdin",
            "--link-on",
            "email=email",
        ]),
        "--require-claim",
    );
    fails_with(
        add(&[
            "x",
            "--oidc",
            "http://i.example",
            "--client-id",
            "c",
            "--client-secret-stdin",
            "--link-on",
            "upn=eppn",
        ]),
        "https",
    );
    fails_with(
        add(&[
            "x",
            "--oidc",
            "https://i.example",
            "--client-id",
            "c",
            "--link-on",
            "upn=eppn",
        ]),
        "--client-secret-stdin",
    );
    fails_with(
        add(&[
            "Bad/Name",
            "--oidc",
            "https://i.example",
            "--client-id",
            "c",
            "--client-secret-stdin",
            "--link-on",
            "upn=eppn",
        ]),
        "upstream name",
    );
    fails_with(
        add(&[
            "x",
            "--saml-metadata",
            "/nonexistent/md.xml",
            "--link-on",
            "eppn=eppn",
        ]),
        "cannot read the metadata file",
    );
    fails_with(
        add(&[
            "x",
            "--oidc",
            "https://i.example",
            "--client-id",
            "c",
            "--client-secret-stdin",
            "--link-on",
            "upn=eppn",
            "--require-claim",
            "tid",
        ]),
        "CLAIM=VALUE",
    );
    fails_with(
        cli(
            &app,
            &["upstream", "update", "nope", "--level", "x:y"],
            None,
        ),
        "no upstream nope",
    );
    ok(add(&[
        "x",
        "--oidc",
        "https://i.example",
        "--client-id",
        "c",
        "--client-secret-stdin",
        "--link-on",
        "upn=eppn",
    ]));
    fails_with(
        add(&[
            "x",
            "--oidc",
            "https://i.example",
            "--client-id",
            "c",
            "--client-secret-stdin",
            "--link-on",
            "upn=eppn",
        ]),
        "already exists",
    );
    fails_with(
        cli(&app, &["upstream", "unlink", "x", "--person", "p"], None),
        "has no link",
    );
}

#[tokio::test]
async fn upstreams_in_the_config_file_are_applied_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("entra.secret");
    std::fs::write(&secret, "fran-filen\n").unwrap();
    let entry = portvakt::config::UpstreamConfig {
        name: "entra".into(),
        oidc: Some("https://login.example.com/t1/v2.0".into()),
        client_id: Some("portvakt".into()),
        client_secret_file: Some(secret.clone()),
        link_on: "email=email".into(),
        require_claims: vec!["tid=t1".into()],
        display_name: Some("Kommunens konto".into()),
        ..Default::default()
    };
    let e = entry.clone();
    let app = spawn_app_with(move |c| c.upstreams = vec![e]).await;
    let up = app
        .state
        .authn
        .upstream("entra")
        .await
        .unwrap()
        .expect("created");
    assert_eq!(up.display_name, "Kommunens konto");
    assert_eq!(
        up.require_claims,
        vec![("tid".to_string(), "t1".to_string())]
    );
    assert_eq!(
        app.state
            .authn
            .upstream_secret("entra")
            .await
            .unwrap()
            .as_deref(),
        Some("fran-filen")
    );

    // A bad entry stops the start with a line naming it.
    let mut bad = entry;
    bad.link_on = "email=phone".into();
    let mut config = app.config.clone();
    config.upstreams = vec![bad];
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = portvakt::app::App::build_on(config, false, listener)
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("[[upstream]] \"entra\"") && err.to_string().contains("FIELD"),
        "{err}"
    );
}
