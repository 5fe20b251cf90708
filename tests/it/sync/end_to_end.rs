//! End to end: a synced student logs in (OIDC and SAML) with school claims until they
//! leave.

use super::*;

// ---------------------------------------------------------------------------------------
// 9. End to end: sync, log in, leave.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synced_student_logs_in_with_school_claims_until_they_leave() {
    let app = spawn_app().await;
    let data = municipality(300);
    let persons = persons_of(&data);
    let orgs = records_of(&data, Kind::Organisation);
    let groups = records_of(&data, Kind::Group);
    let pupil = persons
        .iter()
        .find(|p| is_student(p) && p["securityMarking"] == "Ingen")
        .unwrap()
        .clone();
    let username = username_of(&pupil);
    let e = &pupil["enrolments"][0];
    let code = orgs
        .iter()
        .find(|o| o["id"] == e["enroledAt"]["id"])
        .unwrap()["schoolUnitCode"]
        .as_str()
        .unwrap()
        .to_string();
    let grade = e["schoolYear"].as_i64().unwrap().to_string();
    let mut expected_groups: Vec<String> = groups
        .iter()
        .filter(|g| {
            g["groupMemberships"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["person"]["id"] == pupil["id"])
        })
        .map(|g| g["displayName"].as_str().unwrap().to_string())
        .collect();
    expected_groups.sort();
    assert!(!expected_groups.is_empty());

    let reg = Register::start(data).await;
    reg.sync_ok(&app, &["--full"]);
    set_password(&app, &username);
    app.add_client("rp", |_| {}).await;
    let (browser, tokens) = app.login_tokens("rp", &username).await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let (s, info) = app.userinfo(&access).await;
    assert_eq!(s, 200, "{info}");
    for claims in [&jwt_claims(tokens["id_token"].as_str().unwrap()), &info] {
        assert_eq!(strings(&claims["roles"]), ["student"], "{claims}");
        assert_eq!(strings(&claims["school_unit_codes"]), [code.as_str()]);
        let aff = strings(&claims["eduperson_affiliation"]);
        assert!(
            aff.contains(&"student".into()) && aff.contains(&"member".into()),
            "{claims}"
        );
        assert_eq!(strings(&claims["school_grades"]), [grade.as_str()]);
        let mut g = strings(&claims["groups"]);
        g.sort();
        assert_eq!(g, expected_groups);
        assert_eq!(claims["given_name"], pupil["givenName"]);
    }

    let sp = TestSp::new("https://sp.example.se");
    sp.register(
        &app,
        &[
            "--release",
            "eduPersonAffiliation",
            "--release",
            "sisSchoolUnitCode",
            "--release",
            "sisSchoolGrade",
        ],
    );
    let b = app.browser();
    let req = sp.authn_request(&app, &fresh_id(), "", "");
    let a = redirect_sso(&b, &app, &sp, &req, Some(&username)).await;
    assert_eq!(a.status().0, SUCCESS, "{}", a.xml);
    let attrs = attributes(&verified_assertion(&a.xml, &idp_cert(&app).await));
    let mut aff = attrs["eduPersonAffiliation"].clone();
    aff.sort();
    assert_eq!(aff, ["member", "student"]);
    assert_eq!(attrs["sisSchoolUnitCode"], [code.as_str()]);
    assert_eq!(attrs["sisSchoolGrade"], [grade.as_str()]);

    // The student leaves the register.
    reg.delete(Kind::Person, &id_of(&pupil));
    reg.sync_ok(&app, &[]);
    assert_eq!(last_run(&app)["status"], "applied");
    assert!(!active(&app, &id_of(&pupil)).await);

    let (s, body) = app.userinfo(&access).await;
    assert_eq!(s, 401, "userinfo with an old access token: {body}");
    let (s, body) = app
        .token(
            "rp",
            SECRET,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(s, 400, "refresh after deactivation: {body}");
    // The SSO session ended: the old browser is asked to log in again …
    let (url, _, _, _) = app.authorize_url("rp", &[]);
    let r = browser.get(&url).await;
    assert_eq!(r.status, 303);
    assert!(
        r.location.as_deref().unwrap_or("").contains("/login?tx="),
        "the SSO session must be ended: {:?}",
        r.location
    );
    // … and the password no longer logs in.
    let fresh = app.browser();
    let (tx, csrf, _) = fresh.open_login(&url).await;
    let r = fresh
        .post_login(&app, &tx, &csrf, &username, PASSWORD)
        .await;
    assert_ne!(r.status, 303, "a deactivated person cannot log in");
    // Nor through SAML.
    let b = app.browser();
    let req = sp.authn_request(&app, &fresh_id(), "", "");
    let first = b
        .get(&sp.redirect_url(&app.url("/saml/sso"), "SAMLRequest", &req, None))
        .await;
    let login_url = first.location.clone().expect("to the login page");
    let page = b.get(&login_url).await;
    let r = b
        .post_login(
            &app,
            &hidden(&page.body, "tx"),
            &hidden(&page.body, "csrf"),
            &username,
            PASSWORD,
        )
        .await;
    assert_ne!(r.status, 303, "no SAML login either");
}
