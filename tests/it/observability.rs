//! What an operator's tools see: /healthz, /readyz, /metrics (who may read it, where it is
//! served, what it counts), supervised background tasks, and a real `portvakt serve`
//! draining its requests on SIGTERM.
//!
//! The counters are one set per test process, shared by every server the suite starts:
//! assertions use labels unique to the test (a client id, an SP, a source) or deltas.

use crate::helpers::*;
use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// GET `path` from 127.0.0.1 (the default `[metrics] allow`).
async fn get(base: &str, path: &str) -> (u16, String, String) {
    let res = reqwest::get(format!("{base}{path}")).await.unwrap();
    let status = res.status().as_u16();
    let ctype = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ctype, res.text().await.unwrap())
}

async fn scrape(base: &str) -> String {
    let (status, ctype, body) = get(base, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    assert!(body.ends_with("# EOF\n"));
    body
}

/// The value of the sample `series` (name and labels exactly as exposed), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

async fn ready(app: &TestApp) -> (u16, serde_json::Value) {
    let res = app.client().get(app.url("/readyz")).send().await.unwrap();
    status_json(res).await
}

#[tokio::test]
async fn healthz_and_readyz_answer_and_say_why_not_ready() {
    let app = spawn_app().await;
    let (status, _, body) = get(&app.base, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, body) = ready(&app).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["keys"], "ok");
    assert_eq!(body["checks"]["draining"], false);
    assert_eq!(body["problems"], serde_json::json!([]));

    // Shutting down: not ready, and the body says why.
    let draining = &app.state.ops.draining;
    draining.store(true, std::sync::atomic::Ordering::Relaxed);
    let (status, body) = ready(&app).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not ready");
    assert!(
        body["problems"][0]
            .as_str()
            .unwrap()
            .contains("shutting down")
    );
    draining.store(false, std::sync::atomic::Ordering::Relaxed);

    // The database gone: not ready within the deadline, the process still alive.
    app.db.close().await;
    let started = Instant::now();
    let (status, body) = ready(&app).await;
    assert_eq!(status, 503, "{body}");
    assert_ne!(body["checks"]["database"], "ok");
    assert!(
        body["problems"][0].as_str().unwrap().contains("database"),
        "{body}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(get(&app.base, "/healthz").await.0, 200);
}

/// A source nobody serves: the schedule's runs fail at once, which readiness ignores.
fn unreachable_source() -> portvakt::config::SourceConfig {
    toml::from_str("base_url = \"http://127.0.0.1:9/\"\nfull_every = 3600\n").unwrap()
}

#[tokio::test]
async fn readyz_reports_each_sync_source_and_a_held_run_as_warnings() {
    use portvakt::storage::sync as runs;
    let app = spawn_app_with(|c| {
        c.sync
            .sources
            .insert("ops-kommun".into(), unreachable_source());
        c.sync
            .sources
            .insert("ops-friskola".into(), unreachable_source());
    })
    .await;
    let now = app.clock.now();
    let applied = runs::start_run(&app.db, "ops-kommun", "full", now)
        .await
        .unwrap();
    assert!(
        runs::set_run_status(&app.db, applied, "running", "applied", None, now)
            .await
            .unwrap()
    );
    app.clock.advance(3600);
    let held = runs::start_run(&app.db, "ops-kommun", "full", app.clock.now())
        .await
        .unwrap();
    assert!(
        runs::set_run_status(&app.db, held, "running", "held", Some("guard"), now)
            .await
            .unwrap()
    );

    let (status, body) = ready(&app).await;
    // Held is a warning: logins go on while an administrator decides.
    assert_eq!(status, 200, "{body}");
    let sources = body["sync"].as_array().unwrap();
    let kommun = sources
        .iter()
        .find(|s| s["source"] == "ops-kommun")
        .unwrap();
    let age = kommun["last_success_age_seconds"].as_i64().unwrap();
    assert!((3600..3660).contains(&age), "{kommun}");
    assert_eq!(kommun["held_run"], held);
    let friskola = sources
        .iter()
        .find(|s| s["source"] == "ops-friskola")
        .unwrap();
    assert!(friskola["last_success"].is_null());
    assert!(friskola["held_run"].is_null());
    let warnings = body["warnings"].to_string();
    assert!(
        warnings.contains(&format!("portvakt sync approve {held}")),
        "{warnings}"
    );
    assert!(warnings.contains("ops-friskola: no successful run yet"));

    // The same, for alerts.
    let text = scrape(&app.base).await;
    assert_eq!(
        sample(&text, r#"portvakt_sync_held{source="ops-kommun"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"portvakt_sync_held{source="ops-friskola"}"#),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"portvakt_sync_last_success_timestamp_seconds{source="ops-kommun"}"#
        ),
        Some(now as f64)
    );
    // The schedule ran both sources at start; their failures are counted per source.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = scrape(&app.base).await;
        let failed = sample(
            &text,
            r#"portvakt_sync_runs_total{source="ops-friskola",result="failed"}"#,
        );
        if failed == Some(1.0) {
            assert!(
                text.contains(
                    r#"portvakt_sync_run_duration_seconds_count{source="ops-friskola"} 1"#
                )
            );
            break;
        }
        assert!(Instant::now() < deadline, "no failed run counted: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn metrics_count_requests_by_matched_route_never_by_raw_path() {
    let app = spawn_app().await;
    let http = app.client();
    let unique = portvakt::keys::random_token();
    let r = http
        .get(app.url(&format!("/upstream/{unique}/metadata")))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    http.get(app.url(&format!("/no-such-page-{unique}")))
        .send()
        .await
        .unwrap();
    let text = scrape(&app.base).await;
    let series = format!(
        r#"portvakt_http_requests_total{{route="/upstream/{{name}}/metadata",method="GET",status="{status}"}}"#
    );
    assert!(sample(&text, &series).unwrap() >= 1.0, "{text}");
    assert!(
        sample(
            &text,
            r#"portvakt_http_request_duration_seconds_count{route="/upstream/{name}/metadata",method="GET"}"#
        )
        .unwrap()
            >= 1.0
    );
    assert!(text.contains(r#"route="unmatched",method="GET",status="404""#));
    assert!(!text.contains(&unique), "a raw path reached the metrics");
    // What is read from this server's state when scraped.
    for series in [
        "portvakt_password_hash_queue_depth",
        "portvakt_password_hash_running",
        r#"portvakt_db_pool_connections{state="in_use"}"#,
        r#"portvakt_db_pool_connections{state="idle"}"#,
        "portvakt_db_pool_max_connections",
        "portvakt_draining",
    ] {
        assert!(sample(&text, series).is_some(), "{series} missing: {text}");
    }
    let es256 = sample(
        &text,
        r#"portvakt_signing_key_activated_timestamp_seconds{alg="ES256"}"#,
    )
    .unwrap();
    assert!(es256 <= app.clock.now() as f64 && es256 > 0.0);
}

#[tokio::test]
async fn metrics_are_served_only_to_allowed_peers_by_their_real_address() {
    // Behind a trusted proxy, X-Forwarded-For names the client, but /metrics looks at the
    // connection: a forged header from loopback is no way in, nor out.
    let app = spawn_app_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        c.metrics.allow = vec![portvakt::config::AllowedNet::new(
            "10.9.8.7".parse().unwrap(),
            32,
        )];
    })
    .await;
    let r = app
        .client()
        .get(app.url("/metrics"))
        .header("x-forwarded-for", "10.9.8.7")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body = r.text().await.unwrap();
    assert!(body.contains("[metrics] allow"), "{body}");
    assert!(!body.contains("portvakt_"));
    // The probes stay open to everyone (load balancers).
    assert_eq!(get(&app.base, "/readyz").await.0, 200);
    // The default allows loopback, but not what a proxy on the same host forwards from the
    // world: the proxy's connection comes from loopback too.
    let open = spawn_app().await;
    scrape(&open.base).await;
    for (name, value) in [
        ("x-forwarded-for", "203.0.113.9"),
        ("forwarded", "for=203.0.113.9"),
        ("x-real-ip", "203.0.113.9"),
    ] {
        let r = open
            .client()
            .get(open.url("/metrics"))
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{name}");
        assert!(!r.text().await.unwrap().contains("portvakt_"));
    }
}

#[tokio::test]
async fn metrics_move_to_their_own_listener_when_configured() {
    let app = spawn_app_with(|c| c.metrics.listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let side = format!("http://{}", app.state.ops.metrics_addr.unwrap());
    assert_eq!(get(&app.base, "/metrics").await.0, 404);
    let text = scrape(&side).await;
    assert!(text.contains("portvakt_http_requests_total"));
    assert_eq!(get(&side, "/readyz").await.0, 200);
    assert_eq!(get(&side, "/healthz").await.0, 200);
    // The side listener serves nothing else.
    assert_eq!(get(&side, "/oidc/jwks").await.0, 404);
}

#[tokio::test]
async fn metrics_count_logins_throttling_tokens_and_assertions() {
    let app = spawn_app_with(|c| c.throttle.address_attempts = 3).await;
    app.add_person(crate::saml::ANNA, &["student@EKS"]).await;
    let client = format!("ops-{}", portvakt::keys::random_token());
    app.add_client(&client, |s| {
        s.grants = vec!["authorization_code".into(), "client_credentials".into()];
    })
    .await;
    let sp = crate::saml_sp::TestSp::new(&format!(
        "https://ops-{}.example.se",
        portvakt::keys::random_token()
    ));
    sp.register(&app, &[]);
    let logins = |text: &str, result: &str| {
        sample(
            text,
            &format!(r#"portvakt_logins_total{{method="password",result="{result}"}}"#),
        )
        .unwrap_or(0.0)
    };
    let before = scrape(&app.base).await;

    // A login with a code exchange, and a client_credentials token.
    app.login_tokens(&client, crate::saml::ANNA).await;
    let (status, _) = app
        .token(&client, SECRET, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(status, 200);
    // A SAML login to the SP.
    crate::saml::login_assertion(&app, &sp, crate::saml::ANNA, "").await;
    // A wrong password, then the address's attempts run out.
    let b = app.browser();
    let (url, ..) = app.authorize_url(&client, &[]);
    let (tx, csrf, _) = b.open_login(&url).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = b
            .post_login(&app, &tx, &csrf, crate::saml::ANNA, "fel-lösenord")
            .await;
        statuses.push(r.status);
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");

    let after = scrape(&app.base).await;
    assert!(logins(&after, "success") >= logins(&before, "success") + 2.0);
    assert!(logins(&after, "failure") >= logins(&before, "failure") + 1.0);
    assert!(logins(&after, "throttled") >= logins(&before, "throttled") + 1.0);
    let throttled = r#"portvakt_login_throttled_total{method="password"}"#;
    assert!(sample(&after, throttled).unwrap() >= sample(&before, throttled).unwrap_or(0.0) + 1.0);
    for (grant, n) in [("authorization_code", 1.0), ("client_credentials", 1.0)] {
        let series =
            format!(r#"portvakt_tokens_issued_total{{client_id="{client}",grant_type="{grant}"}}"#);
        assert_eq!(sample(&after, &series), Some(n), "{series}: {after}");
    }
    let series = format!(
        r#"portvakt_saml_assertions_issued_total{{sp="{}"}}"#,
        sp.entity_id
    );
    assert_eq!(sample(&after, &series), Some(1.0), "{after}");
}

#[tokio::test]
async fn a_certificate_from_the_configuration_is_reported_with_its_expiry() {
    let app = spawn_tls_app().await;
    let res = app.client().get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    let not_after = sample(
        &text,
        r#"portvakt_certificate_expiry_timestamp_seconds{name="tls"}"#,
    )
    .unwrap();
    // The test certificate is valid for a day.
    let left = not_after - app.clock.now() as f64;
    assert!((80_000.0..=86_500.0).contains(&left), "{left}");
}

#[tokio::test]
async fn a_background_task_that_panics_is_restarted_and_works_again() {
    let app = spawn_app().await;
    let tasks = &app.state.ops.tasks;
    let deadline = Instant::now() + Duration::from_secs(10);
    while tasks.starts("housekeeping") < 1 || tasks.starts("metadata_refresh") < 1 {
        assert!(Instant::now() < deadline, "the tasks did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A throttle counter housekeeping forgets a day after its last failure.
    let key = format!("ops-test-{}", portvakt::keys::random_token());
    portvakt::storage::throttle::record_failure(&app.db, &key, app.clock.now())
        .await
        .unwrap();
    // Housekeeping's first round (at start) is over and kept the fresh counter.
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.clock.advance(2 * 86_400);
    let counted = || portvakt::storage::throttle::failures(&app.db, &key);
    assert_eq!(counted().await.unwrap(), 1);
    let before = sample(
        &scrape(&app.base).await,
        r#"portvakt_task_restarts_total{task="housekeeping"}"#,
    )
    .unwrap_or(0.0);

    assert_eq!(tasks.starts("housekeeping"), 1);
    assert!(tasks.inject_panic("housekeeping"));
    while tasks.starts("housekeeping") < 2 {
        assert!(Instant::now() < deadline, "housekeeping was not restarted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The restarted task runs its first round at once: the stale counter goes.
    while counted().await.unwrap() != 0 {
        assert!(
            Instant::now() < deadline,
            "the restarted housekeeping did no work"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = sample(
        &scrape(&app.base).await,
        r#"portvakt_task_restarts_total{task="housekeeping"}"#,
    )
    .unwrap();
    assert!(after >= before + 1.0);
    // The other task was left alone, and the server still serves.
    assert_eq!(tasks.starts("metadata_refresh"), 1);
    assert_eq!(ready(&app).await.0, 200);
}

/// A request whose body arrives in two parts, to hold it in flight: (stream, rest of body).
fn half_sent_token_request(addr: &str, client: &str) -> (TcpStream, Vec<u8>) {
    use base64::Engine;
    let body = b"grant_type=client_credentials".to_vec();
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{client}:{SECRET}").as_bytes());
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let head = format!(
        "POST /oidc/token HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {basic}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let (first, rest) = body.split_at(10);
    s.write_all(first).unwrap();
    (s, rest.to_vec())
}

fn refused(addr: &str) -> bool {
    TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(500)).is_err()
}

/// The real binary: SIGTERM while requests are in flight. They finish; new connections are
/// refused on both listeners; the process exits 0 within `request_timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_requests_in_flight_and_exits_zero_within_the_deadline() {
    let app = spawn_app().await;
    let client = format!("drain-{}", portvakt::keys::random_token());
    app.add_client(&client, |s| {
        s.grants = vec!["client_credentials".into()];
        s.redirect_uris = vec![];
    })
    .await;
    let config = app.dir.path().join("serve.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\n[server]\nrequest_timeout = 6\nbody_timeout = 4\n\
         [metrics]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_portvakt"))
        .args(["--config", config.to_str().unwrap(), "serve"])
        .env("PORTVAKT_DATABASE_URL", &app.config.database_url)
        .env("PORTVAKT_DATA_DIR", &app.config.data_dir)
        .env("PORTVAKT_ISSUER", &app.config.issuer)
        .env_remove("PORTVAKT_LISTEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addr = None;
    let mut metrics = None;
    while addr.is_none() || metrics.is_none() {
        let Some(Ok(line)) = lines.next() else {
            panic!("serve ended early: {}", stderr.join().unwrap());
        };
        if let Some(rest) = line.strip_prefix("Portvakt listening on http://") {
            addr = Some(rest.split(' ').next().unwrap().to_string());
        }
        if let Some(rest) = line.strip_prefix("Metrics on http://") {
            metrics = Some(rest.trim_end_matches("/metrics").to_string());
        }
    }
    let (addr, metrics) = (addr.unwrap(), metrics.unwrap());
    let base = format!("http://{addr}");
    assert_eq!(get(&base, "/readyz").await.0, 200);
    assert_eq!(get(&format!("http://{metrics}"), "/readyz").await.0, 200);

    let (addr2, client2) = (addr.clone(), client.clone());
    tokio::task::spawn_blocking(move || {
        // Requests in flight: their bodies half sent.
        let mut open: Vec<_> = (0..4)
            .map(|_| half_sent_token_request(&addr2, &client2))
            .collect();
        // And one that never finishes its body: it must not hold the exit past the deadline.
        let (stuck, _) = half_sent_token_request(&addr2, &client2);
        std::thread::sleep(Duration::from_millis(300));
        let pid = child.id() as libc::pid_t;
        // SAFETY: signals only the child this test started.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let signalled = Instant::now();
        // New connections are refused at once, on both listeners.
        while !(refused(&addr2) && refused(&metrics)) {
            assert!(
                signalled.elapsed() < Duration::from_secs(3),
                "still accepting after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // The requests in flight finish and are answered.
        for (s, rest) in &mut open {
            s.write_all(rest).unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            let text = String::from_utf8_lossy(&got);
            assert!(text.starts_with("HTTP/1.1 200"), "{text}");
            assert!(text.contains("access_token"), "{text}");
        }
        let status = child.wait().unwrap();
        let took = signalled.elapsed();
        assert!(status.success(), "{status:?}: {}", stderr.join().unwrap());
        // request_timeout = 6: the stuck body ended at body_timeout, the drain did not wait
        // past its deadline.
        assert!(took < Duration::from_secs(8), "took {took:?}");
        drop(stuck);
    })
    .await
    .unwrap();
}
