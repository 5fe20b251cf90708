//! The command line: success exits 0; bad input exits non-zero with one line saying why.

use crate::helpers::*;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

fn fails_with(out: std::process::Output, needle: &str) {
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains(needle), "{err}");
}

#[tokio::test]
async fn clients_are_managed_from_the_command_line() {
    let app = spawn_app().await;
    let out = cli(
        &app,
        &[
            "client",
            "add",
            "--client-id",
            "lms",
            "--generate-secret",
            "--redirect-uri",
            "https://lms.example.se/cb",
            "--release",
            "given_name",
            "--release",
            "roles",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let secret = stdout
        .lines()
        .find_map(|l| l.strip_prefix("client secret (shown once): "))
        .unwrap()
        .to_string();
    assert!(secret.len() >= 43);
    // The generated secret works at the token endpoint (after enabling client_credentials).
    let out = cli(
        &app,
        &[
            "client",
            "update",
            "lms",
            "--grant",
            "client_credentials",
            "--scope",
            "school",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (s, _) = app
        .token("lms", &secret, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(s, 200);

    let out = cli(&app, &["client", "list", "--json"], None);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["client_id"], "lms");
    assert_eq!(
        list[0]["release"],
        serde_json::json!(["given_name", "roles"])
    );
    assert!(
        !text(&out.stdout).contains(&secret),
        "secrets are never listed"
    );

    let out = cli(
        &app,
        &[
            "client",
            "add",
            "--client-id",
            "s",
            "--secret-stdin",
            "--redirect-uri",
            "https://x.example/cb",
        ],
        Some("a-secret-of-exactly-24-ch\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (s, _) = app
        .token(
            "s",
            "a-secret-of-exactly-24-ch",
            &[("grant_type", "refresh_token"), ("refresh_token", "x")],
        )
        .await;
    assert_eq!(s, 400, "authenticated; the refresh token is what is wrong");

    fails_with(
        cli(
            &app,
            &[
                "client",
                "add",
                "--client-id",
                "lms",
                "--generate-secret",
                "--redirect-uri",
                "https://a.example/cb",
            ],
            None,
        ),
        "already exists",
    );
    fails_with(
        cli(
            &app,
            &[
                "client",
                "add",
                "--client-id",
                "t",
                "--secret-stdin",
                "--redirect-uri",
                "https://a.example/cb",
            ],
            Some("short"),
        ),
        "at least 24",
    );
    fails_with(
        cli(
            &app,
            &[
                "client",
                "add",
                "--client-id",
                "t",
                "--public",
                "--redirect-uri",
                "http://evil.example/cb",
            ],
            None,
        ),
        "https",
    );
    fails_with(
        cli(
            &app,
            &[
                "client",
                "add",
                "--client-id",
                "t",
                "--public",
                "--redirect-uri",
                "https://a.example/cb",
                "--release",
                "shoe_size",
            ],
            None,
        ),
        "unknown claim",
    );
    fails_with(cli(&app, &["client", "remove", "nope"], None), "no client");
    let out = cli(&app, &["client", "remove", "lms"], None);
    assert!(out.status.success());
    let audit = portvakt::storage::records::recent_audit(&app.db, 10)
        .await
        .unwrap();
    let kinds: Vec<&str> = audit.iter().map(|(_, k, _, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        vec!["client.remove", "client.add", "client.update", "client.add"]
    );
    assert!(
        audit
            .iter()
            .all(|(_, _, actor, detail)| actor.starts_with("cli:") && !detail.contains(&secret))
    );
    // The actor is the process's real user (or who ran sudo), whatever $USER says.
    assert!(
        audit
            .iter()
            .all(|(_, _, actor, _)| actor.contains(" (uid ") || actor.ends_with(" (sudo)")),
        "{audit:?}"
    );
    let (s, _) = app
        .token("lms", &secret, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn people_are_added_from_the_command_line_and_can_log_in() {
    let app = spawn_app().await;
    app.add_client("one", |_| {}).await;
    let out = cli(
        &app,
        &["school-unit", "add", "--code", "EKS", "--name", "Ekskolan"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = cli(&app, &["school-unit", "list", "--json"], None);
    let units: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        units,
        serde_json::json!([{"code": "EKS", "name": "Ekskolan"}])
    );
    fails_with(
        cli(
            &app,
            &["school-unit", "add", "--code", "a b", "--name", "X"],
            None,
        ),
        "school unit code",
    );
    let out = cli(
        &app,
        &[
            "user",
            "add",
            "--username",
            "Ny.Elev",
            "--password-stdin",
            "--given-name",
            "Ny",
            "--family-name",
            "Elev",
            "--civic-no",
            "19121212-1212",
            "--role",
            "student@EKS",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let b = Browser::new();
    let (url, _, _, _) = app.authorize_url("one", &[]);
    let cb = b.login(&app, &url, "ny.elev", PASSWORD).await;
    assert!(query_param(&cb, "code").is_some());

    let out = cli(&app, &["user", "list", "--json"], None);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["username"], "ny.elev");
    assert_eq!(list[0]["roles"], serde_json::json!(["student@EKS"]));
    assert!(
        !text(&out.stdout).contains("1212"),
        "civic numbers are not listed"
    );

    let out = cli(
        &app,
        &["user", "set-password", "ny.elev", "--password-stdin"],
        Some("ett-nytt-lösenord\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (url, _, _, _) = app.authorize_url("one", &[("prompt", "login")]);
    b.login(&app, &url, "ny.elev", "ett-nytt-lösenord").await;

    fails_with(
        cli(
            &app,
            &["user", "add", "--username", "x", "--role", "wizard"],
            None,
        ),
        "unknown role",
    );
    fails_with(
        cli(
            &app,
            &["user", "add", "--username", "x", "--role", "student@NOPE"],
            None,
        ),
        "unknown school unit",
    );
    fails_with(
        cli(
            &app,
            &[
                "user",
                "add",
                "--username",
                "x",
                "--civic-no",
                "19121212-1213",
            ],
            None,
        ),
        "civic number",
    );
    fails_with(
        cli(&app, &["user", "add", "--username", "ny.elev"], None),
        "already exists",
    );
    fails_with(
        cli(
            &app,
            &["user", "set-password", "ghost", "--password-stdin"],
            Some("pw\n"),
        ),
        "no such user",
    );
}

#[tokio::test]
async fn a_bad_config_file_is_one_clear_line() {
    let app = spawn_app().await;
    let path = app.dir.path().join("bad.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:0\"\nlistn = 1\n").unwrap();
    fails_with(
        cli(&app, &["--config", path.to_str().unwrap(), "migrate"], None),
        "listn",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portvakt"))
        .args(["demo"])
        .env("PORTVAKT_MODE", "production")
        .env("PORTVAKT_ISSUER", "https://idp.example.se")
        .env("PORTVAKT_DATA_DIR", app.dir.path())
        .output()
        .unwrap();
    fails_with(out, "production");
    // Production refuses to start without a key-encryption key file.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portvakt"))
        .args(["serve"])
        .env("PORTVAKT_MODE", "production")
        .env("PORTVAKT_ISSUER", "https://idp.example.se")
        .env("PORTVAKT_LISTEN", "127.0.0.1:0")
        .env("PORTVAKT_DATA_DIR", app.dir.path())
        .env("PORTVAKT_DATABASE_URL", &app.config.database_url)
        .output()
        .unwrap();
    fails_with(out, "PORTVAKT_KEK_FILE");
    // A usage error is one line too.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portvakt"))
        .args(["client", "add"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    fails_with(out, "--client-id");
}

#[tokio::test]
async fn client_changes_reach_a_running_server_within_the_cache_lifetime() {
    let app = spawn_app_with(|c| c.cache.client_ttl = 1).await;
    app.add_client("m2m", |s| {
        s.grants = vec!["client_credentials".into()];
        s.redirect_uris = vec![];
    })
    .await;
    let (s, _) = app
        .token("m2m", SECRET, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(s, 200);
    let out = cli(&app, &["client", "remove", "m2m"], None);
    assert!(out.status.success());
    app.clock.advance(2);
    let (s, body) = app
        .token("m2m", SECRET, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!((s, body["error"].as_str()), (401, Some("invalid_client")));
}

#[tokio::test]
async fn user_add_scopes_the_eppn_with_the_configured_saml_scope() {
    let app = spawn_app().await;
    let path = app.dir.path().join("scope.toml");
    std::fs::write(&path, "[saml]\nscope = \"skolor.example.se\"\n").unwrap();
    assert!(!app.config.issuer.contains("skolor.example.se"));
    let out = cli(
        &app,
        &[
            "--config",
            path.to_str().unwrap(),
            "user",
            "add",
            "--username",
            "scoped",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("@skolor.example.se)"),
        "{}",
        text(&out.stdout)
    );
    let out = cli(&app, &["user", "list", "--json"], None);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let eppn = list[0]["eppn"].as_str().unwrap();
    assert!(eppn.ends_with("@skolor.example.se"), "{eppn}");
}

#[tokio::test]
async fn a_bad_identifier_pattern_stops_a_command_before_it_starts() {
    let app = spawn_app().await;
    let path = app.dir.path().join("pattern.toml");
    std::fs::write(&path, "[directory]\nusername_pattern = \"elev\"\n").unwrap();
    fails_with(
        cli(&app, &["--config", path.to_str().unwrap(), "migrate"], None),
        "invalid setting [directory] username_pattern",
    );
}

#[test]
fn the_config_accepts_the_levels_authn_knows_for_bankid() {
    use portvakt::authn::acr;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acr.toml");
    for level in [acr::BAS, acr::TWO_FACTOR] {
        std::fs::write(
            &path,
            format!("[bankid]\nenabled = true\nenvironment = \"stub\"\nacr = \"{level}\"\n"),
        )
        .unwrap();
        let c = portvakt::config::Config::load(Some(&path), |_| None).unwrap();
        assert_eq!(c.bankid.acr, level);
    }
    assert_eq!(
        portvakt::config::BankIdConfig::default().acr,
        acr::TWO_FACTOR
    );
}
