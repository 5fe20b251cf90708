//! The authorization and token endpoints' parameter reading: the form/query parser with its
//! cap, the duplicate check, the authorization request's rules for a registered client, HTTP
//! Basic client authentication, and the PKCE verifier check.
//!
//! Input: an `Authorization` header value, a NUL byte, then the query or form body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portvakt::keys::Alg;
use portvakt::oidc::authorize::{self, MAX_PARAMS, Params, Rejection};
use portvakt::oidc::client::Client;
use portvakt::oidc::grants;
use portvakt::storage::clients::ClientRecord;
use std::sync::LazyLock;

const REDIRECT: &str = "https://rp.example/cb";

static CLIENT: LazyLock<Client> = LazyLock::new(|| Client {
    record: ClientRecord {
        client_id: "rp".into(),
        name: "RP".into(),
        secret_hash: None,
        public_client: true,
        redirect_uris: vec![REDIRECT.into()],
        post_logout_redirect_uris: vec![],
        backchannel_logout_uri: None,
        scopes: vec!["openid".into(), "profile".into(), "email".into()],
        grants: vec!["authorization_code".into(), "refresh_token".into()],
        subject_type: "pairwise".into(),
        sector: None,
        id_token_alg: "ES256".into(),
        release: vec![],
        login: Default::default(),
        disabled: false,
    },
    alg: Alg::Es256,
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (header, body) = text.split_once('\0').unwrap_or(("", text));
    let p = Params::parse(body);
    let malformed = p.malformed();

    match authorize::read(&CLIENT, REDIRECT, &p) {
        Ok(req) => {
            // What is accepted keeps the rules the endpoint promises.
            assert!(malformed.is_none());
            assert!(req.scope.iter().any(|s| s == "openid"));
            assert!(
                req.scope
                    .iter()
                    .all(|s| s == "openid" || CLIENT.allows_scope(s))
            );
            let challenge = req
                .code_challenge
                .as_deref()
                .expect("a public client needs PKCE");
            assert_eq!(challenge.len(), 43);
            assert!(!(req.prompt_none && req.requirement.force));
            assert!(req.requirement.max_age.is_none_or(|a| a >= 0));
            assert_eq!(req.redirect_uri, REDIRECT);
        }
        Err(Rejection::Redirect { redirect_uri, .. }) => assert_eq!(redirect_uri, REDIRECT),
        Err(other) => {
            panic!("a registered client's request is answered at its redirect_uri: {other:?}")
        }
    }

    let header = (!header.is_empty()).then_some(header);
    if let Ok(presented) = grants::presented(header, &p) {
        assert!(header.is_some() || p.get("client_id").is_some());
        // A Basic header and a form client_id never disagree.
        if header.is_some()
            && let Some(id) = p.get("client_id")
        {
            assert_eq!(id, presented.client_id);
        }
    }
    if let (Some(challenge), Some(verifier)) = (p.get("code_challenge"), p.get("code_verifier")) {
        let _ = grants::pkce_ok(challenge, verifier);
    }
    if body.matches('&').count() >= MAX_PARAMS + 1 && body.split('&').all(|kv| !kv.is_empty()) {
        assert!(
            malformed.is_some(),
            "more than {MAX_PARAMS} parameters are refused"
        );
    }
});
