//! `portvakt demo`'s federation, as a newcomer meets it: the municipality's staff IdP (a
//! second Portvakt the demo starts) is offered as "Logga in med kommunens konto" at the
//! staff service, links a teacher by email, and the 2fa service steps the session up with
//! BankID (the stub) for the same person. Real HTTP between the two instances.

use crate::bankid::{by_qr, start};
use crate::helpers::*;
use portvakt::demo::{DEMO_PASSWORD, DEMO_SOURCE, staff_idp};

/// Follows the demo relying party's login link to Portvakt's login page.
async fn login_page(app: &TestApp, a: &Browser, client: &str) -> Resp {
    let r = a.get(&app.url(&format!("/demo/rp/{client}/login"))).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = a.get(&r.location.unwrap()).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let to = r.location.unwrap();
    assert!(to.contains("/login?tx="), "{to}");
    let page = a.get(&to).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page
}

/// From the login page through the staff IdP (its own cookie jar `b`: another host) back to
/// Portvakt's callback; returns Portvakt's answer to the callback.
async fn through_staff_idp(
    app: &TestApp,
    a: &Browser,
    b: &Browser,
    page: &Resp,
    user: &str,
) -> Resp {
    let tx = hidden(&page.body, "tx");
    let r = a
        .get(&app.url(&format!("/upstream/{}/start?tx={tx}", staff_idp::UPSTREAM)))
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let at_staff = r.location.unwrap();
    let staff = staff_idp::shown().expect("the staff IdP is wired");
    assert!(
        at_staff.starts_with(&format!("{}/oidc/authorize?", staff.issuer)),
        "{at_staff}"
    );
    let (stx, csrf, _) = b.open_login(&at_staff).await;
    let form = [
        ("tx", stx.as_str()),
        ("csrf", csrf.as_str()),
        ("username", user),
        ("password", DEMO_PASSWORD),
    ];
    let r = b.post(&format!("{}/login", staff.issuer), &form).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = b.get(&r.location.unwrap()).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let callback = r.location.unwrap();
    assert!(
        callback.starts_with(&app.url("/upstream/kommun/callback?")),
        "{callback}"
    );
    a.get(&callback).await
}

/// Resumes the relying party's request after a login and shows its page.
async fn back_at_the_service(app: &TestApp, a: &Browser, resume: &str, name: &str) {
    let r = a.get(resume).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let cb = r.location.unwrap();
    assert!(cb.starts_with(&app.url("/demo/rp/")), "{cb}");
    let r = a.get(&cb).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains(name), "{}", r.body);
}

async fn session(app: &TestApp, a: &Browser) -> portvakt::authn::Session {
    let cookie = a.cookies.lock().unwrap().get("portvakt_sso").cloned();
    app.state
        .authn
        .session(cookie.as_deref(), app.clock.now())
        .await
        .unwrap()
        .expect("a session at Portvakt")
}

#[tokio::test]
async fn the_demo_federates_with_its_staff_idp_links_by_email_and_steps_up_to_bankid() {
    let app = spawn_demo().await;
    let staff = staff_idp::shown().expect("the staff IdP is wired");
    // Another host than the demo's, so the two instances' cookies do not meet.
    assert!(
        staff.issuer.starts_with("http://localhost:"),
        "{}",
        staff.issuer
    );
    let upstreams = portvakt::authn::upstream::list(&app.db).await.unwrap();
    assert_eq!(upstreams.len(), 1);
    assert_eq!(upstreams[0].name, "kommun");
    assert_eq!(upstreams[0].display_name, "Logga in med kommunens konto");
    assert_eq!(
        upstreams[0].provider_id().as_deref(),
        Some(staff.issuer.as_str())
    );

    // The register's first teacher; the staff IdP knows them by the same email address.
    let username = portvakt::storage::sync::first_with_duty(&app.db, DEMO_SOURCE, "Lärare")
        .await
        .unwrap()
        .expect("a teacher in the demo register");
    let teacher = portvakt::storage::persons::by_login_name(&app.db, &username)
        .await
        .unwrap()
        .unwrap();
    let email = teacher.email.clone().unwrap();
    let login = email.split('@').next().unwrap().to_string();
    assert!(
        staff
            .accounts
            .iter()
            .any(|a| a.username == login && a.links_to.is_some()),
        "{:?}",
        staff.accounts
    );

    // The demo page and the banner say how.
    let a = Browser::new();
    let demo = a.get(&app.url("/demo")).await;
    assert!(
        demo.body.contains("Logga in med kommunens konto"),
        "{}",
        demo.body
    );
    assert!(demo.body.contains(&staff.issuer), "{}", demo.body);
    let banner = portvakt::demo::banner(&app.base, true);
    assert!(
        banner.contains(&staff.issuer) && banner.contains(&login),
        "{banner}"
    );

    let vikarie = staff
        .accounts
        .iter()
        .find(|a| a.username == "vikarie")
        .unwrap();
    assert!(vikarie.links_to.is_none() && demo.body.contains(&vikarie.email));

    // A substitute the register does not know is refused, with a way back.
    let b = Browser::new();
    let page = login_page(&app, &a, portvakt::demo::STAFF_ROOM).await;
    let r = through_staff_idp(&app, &a, &b, &page, "vikarie").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("Vi hittade inget konto här"), "{}", r.body);
    assert!(r.body.contains("/login?tx="), "a way back: {}", r.body);
    assert!(!a.has_sso());

    // The staff service offers the password and the staff IdP, not BankID.
    let (a, b) = (Browser::new(), Browser::new());
    let page = login_page(&app, &a, portvakt::demo::STAFF_ROOM).await;
    assert!(
        page.body.contains("Logga in med kommunens konto"),
        "{}",
        page.body
    );
    assert!(page.body.contains("name=\"password\""), "{}", page.body);
    assert!(!page.body.contains("/login/bankid"), "{}", page.body);
    let r = through_staff_idp(&app, &a, &b, &page, &login).await;
    assert_eq!(r.status, 303, "{}", r.body);
    back_at_the_service(&app, &a, &r.location.unwrap(), "Personalrummet").await;
    let s = session(&app, &a).await;
    assert_eq!(
        s.person_id, teacher.id,
        "linked by email to the register's teacher"
    );
    assert_eq!(s.amr(), vec!["fed"]);
    assert_eq!(s.acr, portvakt::authn::acr::BAS);

    // The grades service needs loa/2fa: BankID only, for the teacher's personal number.
    let page = login_page(&app, &a, portvakt::demo::GRADES).await;
    assert!(!page.body.contains("name=\"password\""), "{}", page.body);
    assert!(
        !page.body.contains("/upstream/kommun/start"),
        "{}",
        page.body
    );
    let (order, _) = start(&a, &app, &page, "other", "login").await;
    let civic = teacher.civic_no.clone().expect("a personal number");
    let v = by_qr(&a, &app, &order, "approve", civic.as_str()).await;
    assert_eq!(v["state"], "complete", "{v}");
    back_at_the_service(
        &app,
        &a,
        &app.url(v["next"].as_str().unwrap()),
        "Betygsrapportering",
    )
    .await;
    let s = session(&app, &a).await;
    assert_eq!(s.person_id, teacher.id);
    assert_eq!(s.acr, portvakt::authn::acr::TWO_FACTOR);
    let amr = s.amr();
    assert!(
        amr.contains(&"fed".into()) && amr.contains(&"bankid".into()),
        "{amr:?}"
    );
}
