//! Interoperability with pysaml2, a SAML SP library we did not write: tests/interop/saml_sp.py
//! is the SP and the browser, the real server is the IdP. The script prints what pysaml2
//! accepted as JSON; these tests check it.
//!
//! The Python comes from `interop_python()`: PORTVAKT_PYTHON or
//! /var/tmp/portvakt-venv/bin/python, made by scripts/interop-setup.sh. When it is missing
//! the tests fail: they never skip.

use crate::helpers::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const SP_ENTITY: &str = "https://sp.interop.example/saml2/metadata";
// Never fetched: the script stops when the IdP sends the browser there.
const SP_ACS: &str = "https://sp.interop.example/saml2/acs/post";
const SP_SLO: &str = "https://sp.interop.example/saml2/ls";

const EPPN: &str = "eduPersonPrincipalName";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/saml_sp.py")
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        assert!(self.ok, "saml_sp.py failed: {}", self.stderr.trim());
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("saml_sp.py printed no JSON ({e}): {}", self.stdout))
    }
}

/// Runs the script off the runtime's thread: the server under test runs on that thread.
async fn run_sp(args: Vec<String>) -> Run {
    let py = interop_python();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(py)
            .arg(script())
            .args(&args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run saml_sp.py")
    })
    .await
    .unwrap();
    // Shown by the test harness only when a test fails.
    eprintln!(
        "saml_sp.py {}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The SP's work directory (keys, config, IdP metadata) inside the app's temp dir.
struct Sp {
    work: PathBuf,
}

/// Makes the SP (keys, metadata) and registers it with `portvakt sp add`.
async fn register_sp(app: &TestApp, encryption: bool, extra: &[&str]) -> Sp {
    let work = app
        .dir
        .path()
        .join(format!("sp-{}", uuid::Uuid::new_v4().simple()));
    let md = work.join("sp-metadata.xml");
    let mut args: Vec<String> = [
        "metadata",
        "--work",
        work.to_str().unwrap(),
        "--entity-id",
        SP_ENTITY,
        "--acs",
        SP_ACS,
        "--slo",
        SP_SLO,
        "--out",
        md.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    if encryption {
        args.push("--encryption".into());
    }
    run_sp(args).await.json();

    let mut add = vec!["sp", "add", "--metadata", md.to_str().unwrap()];
    for r in ["givenName", "mail", EPPN] {
        add.extend(["--release", r]);
    }
    add.extend(["--nameid", "persistent"]);
    add.extend(extra);
    let out = cli(app, &add, None);
    assert!(
        out.status.success(),
        "portvakt sp add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Sp { work }
}

/// `login` with the usual arguments plus `extra`.
async fn login(app: &TestApp, sp: &Sp, username: &str, extra: &[&str]) -> Run {
    let mut args: Vec<String> = vec![
        "login".into(),
        "--work".into(),
        sp.work.to_str().unwrap().into(),
        "--idp-metadata-url".into(),
        app.url("/saml/metadata"),
        "--username".into(),
        username.into(),
        "--password".into(),
        PASSWORD.into(),
    ];
    if let Some(pem) = &app.ca_pem {
        let ca = app.dir.path().join("ca.pem");
        std::fs::write(&ca, pem).unwrap();
        args.extend(["--ca".into(), ca.to_str().unwrap().into()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    run_sp(args).await
}

/// What every accepted login must show.
fn check_login(out: &Value, app: &TestApp, person: &portvakt::directory::Person) {
    assert_eq!(out["issuer"], app.url("/saml/metadata"), "{out}");
    assert_eq!(
        out["name_id_format"], "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
        "{out}"
    );
    let name_id = out["name_id"].as_str().expect("NameID");
    assert!(!name_id.is_empty());
    // Persistent NameIDs are opaque: neither the username nor the eppn.
    assert!(!name_id.contains(&person.username), "{name_id}");
    assert!(!name_id.contains(&person.eppn), "{name_id}");
    assert!(
        out["session_index"].as_str().is_some_and(|s| !s.is_empty()),
        "{out}"
    );
    let attrs = &out["attributes"];
    assert_eq!(attrs["givenName"], serde_json::json!(["Test"]), "{out}");
    assert_eq!(
        attrs["mail"],
        serde_json::json!([format!("{}@example.se", person.username)]),
        "{out}"
    );
    assert_eq!(attrs[EPPN], serde_json::json!([person.eppn]), "{out}");
    // Only what was released.
    let names: Vec<&String> = attrs.as_object().unwrap().keys().collect();
    assert_eq!(names.len(), 3, "unreleased attributes sent: {names:?}");
}

#[tokio::test]
async fn pysaml2_logs_in_over_redirect_and_post() {
    let app = spawn_app().await;
    let person = app.add_person("astrid", &["student"]).await;
    let sp = register_sp(&app, false, &[]).await;
    let mail = format!("mail={}@example.se", person.username);

    let first = login(
        &app,
        &sp,
        "astrid",
        &["--binding", "redirect", "--expect-attr", &mail],
    )
    .await
    .json();
    check_login(&first, &app, &person);
    assert_eq!(first["encrypted"], false, "{first}");
    assert_eq!(first["response_signed"], false, "{first}");

    // A new browser, the POST binding: a new session, the same persistent NameID.
    let second = login(&app, &sp, "astrid", &["--binding", "post"])
        .await
        .json();
    check_login(&second, &app, &person);
    assert_eq!(second["name_id"], first["name_id"]);
    assert_ne!(second["session_index"], first["session_index"]);
}

#[tokio::test]
async fn pysaml2_decrypts_an_encrypted_assertion() {
    let app = spawn_app().await;
    let person = app.add_person("bertil", &["teacher"]).await;
    let sp = register_sp(&app, true, &[]).await;
    let out = login(&app, &sp, "bertil", &["--encrypted"]).await.json();
    check_login(&out, &app, &person);
    assert_eq!(out["encrypted"], true, "{out}");
    // The contract: AES-256-GCM for the data, RSA-OAEP for the key.
    let algs: Vec<&str> = out["encryption_algorithms"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        algs.contains(&"http://www.w3.org/2009/xmlenc11#aes256-gcm"),
        "{algs:?}"
    );
    assert!(
        algs.iter()
            .any(|a| a.ends_with("#rsa-oaep-mgf1p") || a.ends_with("#rsa-oaep")),
        "{algs:?}"
    );
}

#[tokio::test]
async fn pysaml2_accepts_a_signed_response_when_it_wants_one() {
    let app = spawn_app().await;
    let person = app.add_person("cecilia", &["student"]).await;
    let sp = register_sp(&app, false, &["--sign-response"]).await;
    let out = login(&app, &sp, "cecilia", &["--want-response-signed"])
        .await
        .json();
    check_login(&out, &app, &person);
    assert_eq!(out["response_signed"], true, "{out}");
}

#[tokio::test]
async fn pysaml2_rejects_a_tampered_assertion() {
    let app = spawn_app().await;
    app.add_person("david", &["student"]).await;
    let sp = register_sp(&app, false, &[]).await;
    let out = login(&app, &sp, "david", &["--tamper"]).await.json();
    assert_eq!(out["rejected"], true, "{out}");
    assert_eq!(out["tampered"], "NameID", "{out}");
    let reason = out["reason"].as_str().unwrap();
    assert!(
        reason.contains("SignatureError"),
        "rejected, but not for the signature: {reason}"
    );

    // Encrypted, the change hits the ciphertext: AES-GCM must refuse it.
    let app = spawn_app().await;
    app.add_person("david", &["student"]).await;
    let sp = register_sp(&app, true, &[]).await;
    let out = login(&app, &sp, "david", &["--tamper"]).await.json();
    assert_eq!(out["rejected"], true, "{out}");
    assert_eq!(out["tampered"], "encrypted data", "{out}");
}

#[tokio::test]
async fn pysaml2_logs_out_and_the_idp_session_ends() {
    let app = spawn_tls_app().await;
    let person = app.add_person("erik", &["student"]).await;
    let sp = register_sp(&app, true, &[]).await;
    let out = login(&app, &sp, "erik", &["--encrypted", "--then-logout"])
        .await
        .json();
    check_login(&out, &app, &person);
    assert_eq!(out["logout"]["status"], "success", "{out}");
    assert_eq!(out["logout"]["session_gone"], true, "{out}");
}

#[tokio::test]
async fn a_wrong_password_gets_no_assertion() {
    let app = spawn_app().await;
    app.add_person("fredrik", &["student"]).await;
    let sp = register_sp(&app, false, &[]).await;
    let args = [
        "login",
        "--work",
        sp.work.to_str().unwrap(),
        "--idp-metadata-url",
        &app.url("/saml/metadata"),
        "--username",
        "fredrik",
        "--password",
        "fel-lösenord",
    ];
    let run = run_sp(args.map(String::from).to_vec()).await;
    assert!(
        !run.ok,
        "login with a wrong password succeeded: {}",
        run.stdout
    );
    // It got as far as the password and stopped there: the login page again, no SAMLResponse.
    assert!(
        run.stderr.starts_with("FAIL: after the password: 401"),
        "{}",
        run.stderr
    );
}
