//! What pushes give the directory: a pushed student, teacher and guardian have the roles,
//! groups and guardianships the pushes say, and log in with them (OIDC claims, SAML
//! attributes).

use super::*;
use crate::saml_sp::{
    SUCCESS, TestSp, attributes, fresh_id, idp_cert, redirect_sso, verified_assertion,
};

fn strings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

fn group_names(shown: &Value) -> Vec<String> {
    let mut g: Vec<String> = shown["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_string())
        .collect();
    g.sort();
    g
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_student_logs_in_with_the_roles_the_push_gave() {
    // The last step deactivates one of five: the guard is not the point here.
    let (app, p) = scim_app_with(|c| c.sync.max_deactivation_share = 1.0).await;
    let s = School::push(&p, "13572468", 2).await;

    let student = person_of(&app, &s.students[0]);
    assert_eq!(student["source"], SOURCE);
    assert_eq!(student["active"], true, "{student}");
    assert_eq!(
        strings(&student["release"]["eduPersonAffiliation"]),
        ["member", "student"]
    );
    assert_eq!(
        strings(&student["release"]["sisSchoolUnitCode"]),
        ["13572468"]
    );
    assert_eq!(strings(&student["release"]["sisSchoolGrade"]), ["7"]);
    assert_eq!(group_names(&student), ["7A"]);
    assert_eq!(
        student["facts"]["guardians"][0]["relation"],
        "Vårdnadshavare"
    );
    assert_eq!(student["email"], "s13572468x0@skola.example.se");
    // The userName is the eppn (it carries no name).
    assert_eq!(student["eppn"], "s13572468x0@edu.example.se");

    // The teacher: a duty from the Employment, the class through the Activity.
    let teacher = person_of(&app, &s.teacher);
    assert_eq!(teacher["active"], true, "{teacher}");
    assert_eq!(
        strings(&teacher["release"]["eduPersonAffiliation"]),
        ["employee", "faculty", "member"]
    );
    assert_eq!(
        strings(&teacher["release"]["sisSchoolUnitCode"]),
        ["13572468"]
    );
    assert_eq!(group_names(&teacher), ["7A"]);
    let duty = &teacher["facts"]["duties"][0];
    assert_eq!(duty["duty_role"], "Lärare");
    assert_eq!(duty["assignments"].as_array().unwrap().len(), 1, "{duty}");

    // The guardian: active through the child, guardian of it.
    let guardian = person_of(&app, &s.guardians[0]);
    assert_eq!(guardian["active"], true, "{guardian}");
    assert_eq!(
        strings(&guardian["release"]["eduPersonAffiliation"]),
        ["affiliate"]
    );
    assert_eq!(
        guardian["facts"]["guardian_of"].as_array().unwrap().len(),
        1
    );

    // The student logs in: OIDC claims and SAML attributes show the pushed roles.
    let username = student["username"].as_str().unwrap().to_string();
    ok(&run_cli(
        &app,
        &["user", "set-password", &username, "--password-stdin"],
        Some(PASSWORD),
    ));
    app.add_client("rp", |_| {}).await;
    let (_browser, tokens) = app.login_tokens("rp", &username).await;
    let (status, info) = app.userinfo(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{info}");
    for claims in [&jwt_claims(tokens["id_token"].as_str().unwrap()), &info] {
        assert_eq!(strings(&claims["roles"]), ["student"], "{claims}");
        assert_eq!(
            strings(&claims["school_unit_codes"]),
            ["13572468"],
            "{claims}"
        );
        assert_eq!(strings(&claims["school_grades"]), ["7"], "{claims}");
        assert_eq!(strings(&claims["groups"]), ["7A"], "{claims}");
        assert_eq!(claims["given_name"], "Elev");
        assert_eq!(claims["family_name"], "Nummer0");
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
    assert_eq!(attrs["sisSchoolUnitCode"], ["13572468"]);
    assert_eq!(attrs["sisSchoolGrade"], ["7"]);

    // A push that moves the student out of the class and school ends the roles.
    let a = p
        .put(
            &format!("Users/{}", s.students[0]),
            &user(
                &s.students[0],
                "s13572468x0@edu.example.se",
                "Elev",
                "Nummer0",
                &[],
                &[],
            ),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let shown = person_of(&app, &s.students[0]);
    assert_eq!(shown["release"]["sisSchoolUnitCode"], json!([]), "{shown}");
    assert_eq!(shown["active"], false, "{shown}");
}
