//! The whole code flow driven by the openidconnect crate as an independent relying party.

use crate::helpers::*;
use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType, CoreRevocableToken,
    CoreSubjectIdentifierType, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AdditionalProviderMetadata, AuthenticationFlow, AuthorizationCode, ClientId,
    ClientSecret, CsrfToken, IntrospectionUrl, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, ProviderMetadata, RedirectUrl, RevocationUrl, Scope,
    TokenIntrospectionResponse, TokenResponse,
};

/// The endpoints CoreProviderMetadata has no fields for (DEPENDENCIES.md §10).
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
struct ExtraMetadata {
    introspection_endpoint: String,
    revocation_endpoint: String,
    end_session_endpoint: String,
}
impl AdditionalProviderMetadata for ExtraMetadata {}

type Metadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

fn http() -> openidconnect::reqwest::Client {
    openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The relying party's HTTP client: trusts the test certificate, follows no redirects.
fn http_for(app: &TestApp) -> openidconnect::reqwest::Client {
    app.client()
}

#[tokio::test]
async fn code_flow_with_an_independent_relying_party() {
    // Over TLS: the crate refuses plain-http revocation endpoints, and it exercises rustls.
    let app = spawn_tls_app().await;
    app.add_person("elev.anna", &["student@EKS"]).await;
    app.add_client("rp-one", |_| {}).await;
    app.add_client("machine", |s| {
        s.grants = vec!["client_credentials".into()];
        s.redirect_uris = vec![];
        s.scopes = vec!["school".into()];
    })
    .await;
    let http = http_for(&app);

    // Discovery and JWKS.
    let md = Metadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &http)
        .await
        .unwrap();
    assert_eq!(md.issuer().as_str(), app.base);
    let extra = md.additional_metadata().clone();
    let client = CoreClient::from_provider_metadata(
        md,
        ClientId::new("rp-one".into()),
        Some(ClientSecret::new(SECRET.into())),
    )
    .set_redirect_uri(RedirectUrl::new(RP_REDIRECT.into()).unwrap())
    .set_introspection_url(IntrospectionUrl::new(extra.introspection_endpoint.clone()).unwrap())
    .set_revocation_url(RevocationUrl::new(extra.revocation_endpoint.clone()).unwrap());

    // Authorization request with PKCE, state and nonce.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf_state, nonce) = client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("school".into()))
        .set_pkce_challenge(challenge)
        .url();

    // The browser logs in through the form (with its CSRF token).
    let browser = app.browser();
    let callback = browser
        .login(&app, auth_url.as_str(), "elev.anna", PASSWORD)
        .await;
    let cookies = browser.cookies.lock().unwrap().clone();
    assert!(
        cookies.contains_key("__Host-portvakt_sso"),
        "a __Host- cookie under TLS: {cookies:?}"
    );
    assert!(callback.starts_with(RP_REDIRECT), "{callback}");
    assert_eq!(
        query_param(&callback, "state").unwrap(),
        *csrf_state.secret()
    );
    assert_eq!(
        query_param(&callback, "iss").unwrap(),
        app.base,
        "RFC 9207 iss"
    );
    let code = query_param(&callback, "code").unwrap();

    // Code exchange and ID token validation: signature via JWKS, issuer, audience, nonce.
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.id_token().expect("id token");
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]);
    let claims = id_token.claims(&verifier, &nonce).unwrap();
    assert_eq!(
        claims.given_name().unwrap().get(None).unwrap().as_str(),
        "Test"
    );
    assert!(claims.email().is_none(), "email scope was not requested");
    assert!(claims.auth_time().is_some());
    assert_eq!(
        claims.auth_context_ref().unwrap().as_str(),
        "http://id.skolfederation.se/loa/bas"
    );
    // at_hash binds the access token to the ID token.
    let at_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&at_hash));
    // A wrong nonce is refused.
    assert!(
        id_token
            .claims(&verifier, &Nonce::new("other".into()))
            .is_err()
    );
    // Pairwise subject: not the internal id.
    let raw = jwt_claims(&id_token.to_string());
    assert_eq!(raw["sid"].as_str().map(str::len), Some(43));
    assert_eq!(raw["roles"], serde_json::json!(["student"]));
    assert_eq!(raw["school_unit_codes"], serde_json::json!(["EKS"]));

    // Userinfo, checked against the ID token's subject.
    let info: CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(
        info.family_name().unwrap().get(None).unwrap().as_str(),
        "elev.anna"
    );

    // Refresh: a new access token and a rotated refresh token.
    let refreshed = client
        .exchange_refresh_token(tokens.refresh_token().unwrap())
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_ne!(
        refreshed.access_token().secret(),
        tokens.access_token().secret()
    );
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        tokens.refresh_token().unwrap().secret()
    );
    let new_claims = refreshed
        .id_token()
        .unwrap()
        .claims(&verifier, |_: Option<&Nonce>| Ok(()))
        .unwrap();
    assert_eq!(new_claims.subject(), claims.subject());

    // Introspection of our own token.
    let intro = client
        .introspect(refreshed.access_token())
        .request_async(&http)
        .await
        .unwrap();
    assert!(intro.active());
    assert_eq!(intro.client_id().unwrap().as_str(), "rp-one");

    // Revocation: the access token is dead everywhere afterwards.
    client
        .revoke_token(CoreRevocableToken::from(refreshed.access_token().clone()))
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    let intro = client
        .introspect(refreshed.access_token())
        .request_async(&http)
        .await
        .unwrap();
    assert!(!intro.active());
    let (status, _) = app.userinfo(refreshed.access_token().secret()).await;
    assert_eq!(status, 401);
    // Revoking the refresh token ends its family.
    client
        .revoke_token(CoreRevocableToken::from(
            refreshed.refresh_token().unwrap().clone(),
        ))
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert!(
        client
            .exchange_refresh_token(refreshed.refresh_token().unwrap())
            .unwrap()
            .request_async(&http)
            .await
            .is_err()
    );

    // Client credentials for a machine client.
    let machine = CoreClient::from_provider_metadata(
        Metadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &http)
            .await
            .unwrap(),
        ClientId::new("machine".into()),
        Some(ClientSecret::new(SECRET.into())),
    );
    let cc = machine
        .exchange_client_credentials()
        .unwrap()
        .add_scope(Scope::new("school".into()))
        .request_async(&http)
        .await
        .unwrap();
    let cc_claims = jwt_claims(cc.access_token().secret());
    assert_eq!(cc_claims["sub"], "machine");
    assert_eq!(cc_claims["scope"], "school");
    assert_eq!(jwt_header(cc.access_token().secret())["typ"], "at+jwt");

    // Logout with id_token_hint: redirect to the registered URI with state, cookie cleared.
    let mut logout = url::Url::parse(&extra.end_session_endpoint).unwrap();
    logout
        .query_pairs_mut()
        .append_pair("id_token_hint", &id_token.to_string())
        .append_pair("post_logout_redirect_uri", RP_LOGOUT)
        .append_pair("state", "bye");
    let r = browser.get(logout.as_str()).await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.location.as_deref(),
        Some(format!("{RP_LOGOUT}?state=bye").as_str())
    );
    assert!(!browser.has_sso(), "SSO cookie cleared");
    // The session is over: prompt=none now answers login_required.
    let (url, _, _, _) = app.authorize_url("rp-one", &[("prompt", "none")]);
    let r = browser.get(&url).await;
    assert_eq!(
        query_param(r.location.as_deref().unwrap(), "error").as_deref(),
        Some("login_required")
    );
}

#[tokio::test]
async fn a_tampered_id_token_is_rejected_by_the_relying_party() {
    let app = spawn_app().await;
    app.add_person("elev.bo", &["student"]).await;
    app.add_client("rp-one", |_| {}).await;
    let http = http();
    let md = Metadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &http)
        .await
        .unwrap();
    let client = CoreClient::from_provider_metadata(
        md,
        ClientId::new("rp-one".into()),
        Some(ClientSecret::new(SECRET.into())),
    );
    let (_, tokens) = app.login_tokens("rp-one", "elev.bo").await;
    let token = tokens["id_token"].as_str().unwrap();
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]);
    let parse = |s: &str| -> openidconnect::core::CoreIdToken {
        serde_json::from_value(serde_json::json!(s)).unwrap()
    };
    assert!(
        parse(token)
            .claims(&verifier, |_: Option<&Nonce>| Ok(()))
            .is_ok()
    );
    // Change the subject in the payload, keep the signature.
    use base64::Engine;
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    let mut claims = jwt_claims(token);
    claims["sub"] = serde_json::json!("someone-else");
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
    let forged = parts.join(".");
    assert!(
        parse(&forged)
            .claims(&verifier, |_: Option<&Nonce>| Ok(()))
            .is_err()
    );
}

#[tokio::test]
async fn rs256_per_client_and_public_subjects() {
    let app = spawn_app().await;
    let person = app.add_person("larare.eva", &["teacher@BJS"]).await;
    app.add_client("rs-client", |s| {
        s.id_token_alg = Some("RS256".into());
        s.subject = Some("public".into());
    })
    .await;
    let http = http();
    let md = Metadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &http)
        .await
        .unwrap();
    let client = CoreClient::from_provider_metadata(
        md,
        ClientId::new("rs-client".into()),
        Some(ClientSecret::new(SECRET.into())),
    );
    let (_, tokens) = app.login_tokens("rs-client", "larare.eva").await;
    let token = tokens["id_token"].as_str().unwrap();
    assert_eq!(jwt_header(token)["alg"], "RS256");
    let id: openidconnect::core::CoreIdToken =
        serde_json::from_value(serde_json::json!(token)).unwrap();
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]);
    let claims = id.claims(&verifier, |_: Option<&Nonce>| Ok(())).unwrap();
    assert_eq!(claims.subject().as_str(), person.id);
}

#[tokio::test]
async fn pairwise_subjects_differ_between_sectors_and_agree_within_one() {
    let app = spawn_app().await;
    app.add_person("elev.cia", &["student"]).await;
    app.add_client("a", |_| {}).await;
    app.add_client("b", |_| {}).await;
    app.add_client("c", |s| s.sector = Some("a".into())).await;
    let mut subs = Vec::new();
    for c in ["a", "b", "c"] {
        let (_, t) = app.login_tokens(c, "elev.cia").await;
        subs.push(
            jwt_claims(t["id_token"].as_str().unwrap())["sub"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_ne!(subs[0], subs[1]);
    assert_eq!(subs[0], subs[2], "same sector, same subject");
}

#[tokio::test]
async fn release_policy_is_deny_by_default_and_issuance_is_recorded() {
    let app = spawn_app().await;
    let p = app.add_person("elev.dan", &["student@EKS"]).await;
    app.add_client("stingy", |s| s.release = vec![]).await;
    let (_, t) = app.login_tokens("stingy", "elev.dan").await;
    let claims = jwt_claims(t["id_token"].as_str().unwrap());
    for c in [
        "given_name",
        "family_name",
        "name",
        "email",
        "roles",
        "school_unit_codes",
        "groups",
    ] {
        assert!(claims.get(c).is_none(), "{c} must not be released");
    }
    let (status, info) = app.userinfo(t["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(
        info.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["sub"]
    );
    let records = portvakt::storage::records::releases_for_person(&app.db, &p.id)
        .await
        .unwrap();
    let kinds: Vec<&str> = records.iter().map(|r| r.artifact.as_str()).collect();
    assert_eq!(kinds, vec!["id_token", "userinfo"]);
    assert!(
        records
            .iter()
            .all(|r| r.rp_id == "stingy" && r.claims.is_empty())
    );
}
