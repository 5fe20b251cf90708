//! PostgreSQL restarted under load: a private cluster made by the test (initdb in a temporary
//! directory, on a free loopback port), stopped and started while a loop logs in. While it is
//! down, requests fail with 503 within the acquire timeout; after it is back the server
//! recovers by itself, and the SSO session and refresh token made before the restart work.
//! The cluster is the test's own, so it runs in both passes; without PostgreSQL 15's
//! binaries it fails, it never skips.

use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// Accounts the login loop takes turns with.
const LOOP_ACCOUNTS: usize = 4;

/// A PostgreSQL cluster of the test's own; stopped when dropped.
struct PgCluster {
    dir: tempfile::TempDir,
    port: u16,
    /// initdb and the server refuse to run as root: then they run as `postgres`.
    as_postgres: bool,
}

impl PgCluster {
    fn new() -> Self {
        assert!(
            Path::new(PG_BIN).join("initdb").exists(),
            "this test needs PostgreSQL 15's initdb and pg_ctl in {PG_BIN} \
             (apt-get install postgresql-15)"
        );
        let as_postgres = run_quiet(Command::new("id").arg("-u")).trim() == "0";
        let dir = tempfile::tempdir().unwrap();
        if as_postgres {
            run_quiet(
                Command::new("chown")
                    .args(["-R", "postgres:"])
                    .arg(dir.path()),
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Self {
            dir,
            port,
            as_postgres,
        };
        let data = cluster.data();
        cluster.pg(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        cluster.start();
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs a PostgreSQL program (as `postgres` when we are root); panics when it fails.
    fn pg(&self, program: &str, args: &[&str]) -> String {
        let exe = Path::new(PG_BIN).join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        run_quiet(cmd.args(args).current_dir(self.dir.path()))
    }

    fn start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let data = self.data();
        let log = self.dir.path().join("postgres.log");
        self.pg(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
    }

    /// `mode`: fast (sessions are ended, as a service restart does) or immediate.
    fn stop(&self, mode: &str) {
        let data = self.data();
        self.pg(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", mode, "-w", "stop"],
        );
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data();
        let exe = Path::new(PG_BIN).join("pg_ctl");
        let args = ["-D", data.to_str().unwrap(), "-m", "immediate", "stop"];
        let _ = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(exe)
                .args(args)
                .output()
        } else {
            Command::new(exe).args(args).output()
        };
    }
}

fn run_quiet(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What the login loop saw: each attempt's end (since the loop began) and outcome.
type Attempts = Vec<(Duration, Result<(), (u16, Duration, String)>)>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_recovers_and_keeps_sessions() {
    let cluster = tokio::task::block_in_place(PgCluster::new);
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let app = spawn_instance(&cluster.url(), dir, None, |c| {
        c.database.acquire_timeout = 2;
        c.throttle.address_attempts = 1_000_000;
    })
    .await;
    app.add_client("rp", |_| {}).await;
    for n in 1..=LOOP_ACCOUNTS + 1 {
        app.add_person(&format!("elev{n}"), &["student@SU1"]).await;
    }
    let (browser, tokens) = app.login_tokens("rp", "elev1").await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();

    // The loop: one login after another, each with a fresh browser, taking turns among a
    // few accounts.
    let app = Arc::new(app);
    let running = Arc::new(AtomicBool::new(true));
    let attempts: Arc<std::sync::Mutex<Attempts>> = Default::default();
    let begun = Instant::now();
    let looping = {
        let (app, running, attempts) = (app.clone(), running.clone(), attempts.clone());
        tokio::spawn(async move {
            for n in (0..LOOP_ACCOUNTS).cycle() {
                if !running.load(Ordering::SeqCst) {
                    break;
                }
                let outcome = try_login(&app, "rp", &format!("elev{}", n + 2)).await;
                let failed = outcome.is_err();
                attempts.lock().unwrap().push((begun.elapsed(), outcome));
                if failed {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        })
    };
    type Outcome = Result<(), (u16, Duration, String)>;
    let wait_for = |what: &'static str, after: Duration, want: fn(&Outcome) -> bool| {
        let attempts = attempts.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let seen = attempts
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|(at, o)| *at >= after && want(o))
                    .count();
                if seen >= 3 {
                    return;
                }
                assert!(Instant::now() < deadline, "no {what} within 30 s");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let succeeded: fn(&Outcome) -> bool = Result::is_ok;
    wait_for("logins before the restart", Duration::ZERO, succeeded).await;

    let stopped_at = begun.elapsed();
    tokio::task::block_in_place(|| cluster.stop("fast"));
    wait_for(
        "failed logins while PostgreSQL is down",
        stopped_at,
        Result::is_err,
    )
    .await;
    let started_at = begun.elapsed();
    tokio::task::block_in_place(|| cluster.start());
    // A login the outage cut short between the throttle's hold on its account and the
    // hold's release leaves the account held for 30 s (429 meanwhile), as it would after
    // any failure; let that time pass.
    wait_for(
        "answers from the database after the restart",
        started_at,
        |o| !matches!(o, Err((503, _, _))),
    )
    .await;
    app.clock.advance(31);
    let moved_at = begun.elapsed();
    wait_for("logins after the restart", moved_at, succeeded).await;
    running.store(false, Ordering::SeqCst);
    looping.await.unwrap();

    let attempts = attempts.lock().unwrap().clone();
    let failures: Vec<_> = attempts
        .iter()
        .filter_map(|(at, o)| o.as_ref().err().map(|e| (*at, e)))
        .collect();
    eprintln!(
        "{} login attempts, {} failed (PostgreSQL down from {stopped_at:?} to \
         {started_at:?}): {:?}",
        attempts.len(),
        failures.len(),
        failures
            .iter()
            .map(|(_, (status, took, _))| (status, took))
            .collect::<Vec<_>>()
    );
    for (at, (status, took, body)) in &failures {
        assert!(
            *at >= stopped_at,
            "a failure before the stop, at {at:?}: {status}"
        );
        if *status == 429 {
            assert!(
                *at >= started_at,
                "429 while PostgreSQL was down, at {at:?}"
            );
            assert!(*at < moved_at + Duration::from_secs(5), "429 at {at:?}");
            continue;
        }
        // A failure is the 503 page, within the acquire timeout (2 s) and a margin, never a
        // 500 and never sqlx's 30 s.
        let message = body.split("role=\"alert\">").nth(1).unwrap_or(body);
        let message: String = message.chars().take(200).collect();
        assert_eq!(*status, 503, "at {at:?} after {took:?}: {message}");
        assert!(*took < Duration::from_secs(5), "a 503 after {took:?}");
        assert!(message.contains(UNAVAILABLE_SV), "{message}");
    }

    // The session and the refresh token made before the restart still work.
    let (url, _, _, _) = app.authorize_url("rp", &[]);
    let r = browser.get(&url).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let back = r.location.unwrap();
    assert!(
        back.starts_with(RP_REDIRECT) && back.contains("code="),
        "the SSO session made before the restart is gone: {back}"
    );
    let (s, body) = app
        .token(
            "rp",
            SECRET,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(s, 200, "{body}");
    drop(app);
    drop(cluster);
}
