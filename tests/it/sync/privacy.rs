//! Protected identities: no personnummer released (OIDC or SAML), no guardian naming them,
//! and listings hide them unless asked.

use super::*;

// ---------------------------------------------------------------------------------------
// 8. Protected identities.

/// A login with `scope` through a browser; the token response.
async fn login_with_scope(app: &TestApp, client_id: &str, username: &str, scope: &str) -> Value {
    let (url, state, _, verifier) = app.authorize_url(client_id, &[]);
    let mut u = url::Url::parse(&url).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "scope" {
                scope.to_string()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    let browser = app.browser();
    let cb = browser.login(app, u.as_str(), username, PASSWORD).await;
    assert_eq!(query_param(&cb, "state").as_deref(), Some(state.as_str()));
    let code = query_param(&cb, "code").expect("a code");
    let (status, body) = app
        .token(
            client_id,
            SECRET,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", RP_REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_identities_release_no_personnummer_and_are_not_named() {
    let app = spawn_app().await;
    let h = uid();
    let unit = uid();
    let (hidden_child, open_child, open_guardian, hidden_guardian) = (uid(), uid(), uid(), uid());
    let mut hidden = student(
        &hidden_child,
        "elevskydd",
        "Skyddsson",
        &unit,
        &[&open_guardian],
    );
    hidden["securityMarking"] = json!("Skyddad folkbokföring");
    let open = student(
        &open_child,
        "elevoppen",
        "Öppensson",
        &unit,
        &[&open_guardian, &hidden_guardian],
    );
    let mut g2 = person(
        &hidden_guardian,
        "Dold",
        "Skyddsson",
        "vhskydd",
        &civic("19790505", 246),
    );
    g2["securityMarking"] = json!("Sekretessmarkering");
    let g1 = person(
        &open_guardian,
        "Öppen",
        "Öppensson",
        "vhoppen",
        &civic("19810606", 135),
    );
    let data = Dataset::from_values(
        &[
            huvudman(&h, "Exempelby kommun"),
            school_unit(&unit, "Ekskolan", "11111111", &h),
        ],
        &[hidden.clone(), open.clone(), g1.clone(), g2.clone()],
        &[],
        &[],
    )
    .unwrap();
    let reg = Register::start(data).await;
    reg.sync_ok(&app, &["--full"]);
    for u in ["elevskydd", "elevoppen", "vhoppen", "vhskydd"] {
        set_password(&app, u);
    }
    let open_eppn = show(&app, "elevoppen")["eppn"]
        .as_str()
        .unwrap()
        .to_string();
    let hidden_eppn = show(&app, "elevskydd")["eppn"]
        .as_str()
        .unwrap()
        .to_string();

    app.add_client("civic", |s| {
        s.scopes = ["openid", "profile", "email", "school", CIVIC_NO_SCOPE]
            .map(String::from)
            .to_vec();
        s.release.push(CIVIC_NO_CLAIM.to_string());
    })
    .await;
    let scope = format!("openid profile school {CIVIC_NO_SCOPE}");
    let claims_of = |t: &Value| jwt_claims(t["id_token"].as_str().unwrap());
    let mut seen = BTreeMap::new();
    for u in ["elevskydd", "elevoppen", "vhoppen", "vhskydd"] {
        let t = login_with_scope(&app, "civic", u, &scope).await;
        let (s, info) = app.userinfo(t["access_token"].as_str().unwrap()).await;
        assert_eq!(s, 200, "{info}");
        seen.insert(u, (claims_of(&t), info));
    }
    let civic_of = |p: &Value| p["civicNo"]["value"].as_str().unwrap().to_string();
    for (u, expected) in [
        ("elevoppen", Some(civic_of(&open))),
        ("vhoppen", Some(civic_of(&g1))),
        ("elevskydd", None),
        ("vhskydd", None),
    ] {
        let (id_token, info) = &seen[u];
        for claims in [id_token, info] {
            assert_eq!(
                claims.get(CIVIC_NO_CLAIM).and_then(Value::as_str),
                expected.as_deref(),
                "{u}: {claims}"
            );
        }
    }
    // The open guardian names the open child only; the protected guardian names no one.
    let (_, info) = &seen["vhoppen"];
    assert_eq!(
        strings(&info["guardian_of"]),
        [open_eppn.as_str()],
        "{info}"
    );
    assert!(!info.to_string().contains(&hidden_eppn));
    let (id_token, info) = &seen["vhskydd"];
    assert!(info.get("guardian_of").is_none(), "{info}");
    assert!(id_token.get("guardian_of").is_none(), "{id_token}");
    assert!(strings(&info["roles"]).contains(&"guardian".to_string()));

    // SAML: the same rules.
    let sp = TestSp::new("https://sp.example.se");
    sp.register(
        &app,
        &[
            "--release",
            "norEduPersonNIN",
            "--release",
            "sisLegalGuardianFor",
            "--release",
            "givenName",
        ],
    );
    let saml = |u: &'static str| {
        let (app, sp) = (&app, &sp);
        async move {
            let b = app.browser();
            let req = sp.authn_request(app, &fresh_id(), "", "");
            let a = redirect_sso(&b, app, sp, &req, Some(u)).await;
            assert_eq!(a.status().0, SUCCESS, "{}", a.xml);
            attributes(&verified_assertion(&a.xml, &idp_cert(app).await))
        }
    };
    let attrs = saml("elevskydd").await;
    assert!(!attrs.contains_key("norEduPersonNIN"), "{attrs:?}");
    let attrs = saml("elevoppen").await;
    assert_eq!(attrs["norEduPersonNIN"], [civic_of(&open)]);
    let attrs = saml("vhoppen").await;
    assert_eq!(attrs["sisLegalGuardianFor"], [open_eppn.as_str()]);
    let attrs = saml("vhskydd").await;
    assert!(!attrs.contains_key("sisLegalGuardianFor"), "{attrs:?}");
    assert!(!attrs.contains_key("norEduPersonNIN"), "{attrs:?}");

    // Listings hide the protected unless asked.
    let list = |extra: &[&str]| {
        let mut args = vec!["user", "list", "--search", "skyddsson", "--json"];
        args.extend_from_slice(extra);
        let v: Value = serde_json::from_str(&ok(&run_cli(&app, &args, None))).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| p["username"].as_str().unwrap().to_string())
            .collect::<BTreeSet<_>>()
    };
    assert!(list(&[]).is_empty(), "{:?}", list(&[]));
    assert_eq!(
        list(&["--include-protected"]),
        BTreeSet::from(["elevskydd".to_string(), "vhskydd".to_string()])
    );
    let out = ok(&run_cli(
        &app,
        &["user", "list", "--search", "elevskydd"],
        None,
    ));
    assert!(!out.contains("elevskydd"), "{out}");
}
