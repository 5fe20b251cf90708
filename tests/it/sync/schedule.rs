//! The register's bearer token from the environment, and configured sources run on
//! serve's schedule.

use super::*;

// ---------------------------------------------------------------------------------------
// The register's token from the environment; configured sources on serve's schedule.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ad_hoc_run_takes_its_bearer_token_from_the_environment() {
    let app = spawn_app().await;
    let register = Register::start(municipality(150)).await;
    register.mock.require_bearer("registrets-hemliga-token");
    let run = |token: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_portvakt"));
        cmd.args(["sync", "run", "--ss12000", &register.url])
            .env("PORTVAKT_DATABASE_URL", &app.config.database_url)
            .env("PORTVAKT_DATA_DIR", &app.config.data_dir)
            .env_remove("PORTVAKT_CONFIG")
            .env_remove("PORTVAKT_SS12000_TOKEN");
        if let Some(t) = token {
            cmd.env("PORTVAKT_SS12000_TOKEN", t);
        }
        tokio::task::block_in_place(|| cmd.output().unwrap())
    };
    let refused = run(None);
    assert!(!refused.status.success());
    let err = text(&refused.stderr);
    assert!(
        err.contains("401") || err.to_lowercase().contains("unauthorized"),
        "{err}"
    );
    assert!(!err.contains("registrets-hemliga-token"));
    assert!(directory(&app).await.is_empty(), "nothing written");
    let wrong = run(Some("fel-token"));
    assert!(!wrong.status.success());
    assert!(
        !text(&wrong.stderr).contains("fel-token"),
        "a token never reaches a message"
    );
    let out = run(Some("registrets-hemliga-token"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!directory(&app).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_a_configured_source_on_its_schedule() {
    let register = Register::start(municipality(150)).await;
    let source: portvakt::config::SourceConfig = toml::from_str(&format!(
        "base_url = \"{}\"\nusername_context = \"{USERNAME_CONTEXT}\"\nfull_every = 3600\n",
        register.url
    ))
    .unwrap();
    let app = spawn_app_with(|c| {
        c.sync.sources.insert("kommunen".into(), source);
    })
    .await;
    // The schedule looks at once when serve starts, then every minute.
    let mut synced = Vec::new();
    for _ in 0..100 {
        synced = portvakt::storage::persons::list(&app.db)
            .await
            .unwrap()
            .into_iter()
            .filter(|p| p.source == "kommunen")
            .collect();
        if !synced.is_empty() && !runs(&app).is_empty() && last_run(&app)["status"] == "applied" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        synced.len() > 100,
        "{} people synced by the schedule",
        synced.len()
    );
    let run = last_run(&app);
    assert_eq!(run["source"], "kommunen");
    assert_eq!(run["kind"], "full");
    assert!(synced.iter().any(|p| p.username == "elev1001"));
}
