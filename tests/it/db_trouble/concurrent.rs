//! Concurrent writers: logins and refresh-token rotations in a loop while `portvakt sync run`
//! (another process, as in production) applies a full sync of thousands of people to the
//! same database: first the creates, then a run that renames and deactivates people. On
//! SQLite the two processes share one write lock; every transaction that reads before it
//! writes begins `IMMEDIATE` (storage's `begin_on` test shows the failure it prevents), so
//! nothing fails with "database is locked" and every login and refresh succeeds.

use super::*;
use portvakt::clock::Clock;
use portvakt::sim::ss12000::generate::{USERNAME_CONTEXT, generate};
use portvakt::sim::ss12000::mock::{self, Kind, Mock};
use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// People in the register: enough that each apply runs for seconds in a debug build.
const PEOPLE: usize = 12_000;
/// Concurrent browsers logging in and refreshing.
const WORKERS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_and_refreshes_while_a_full_sync_applies_all_succeed() {
    let app = Arc::new(spawn_impatient_app(|c| c.database.acquire_timeout = 5).await);
    app.add_client("rp", |_| {}).await;
    for w in 0..WORKERS {
        app.add_person(&format!("larare{w}"), &["teacher@SU1"])
            .await;
    }
    let today = portvakt::directory::roles::day_of(Clock::system().now());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let register = format!("http://{}/v2.0/", listener.local_addr().unwrap());
    let data = generate(4711, PEOPLE, today);
    let persons: Vec<serde_json::Value> = data
        .records(Kind::Person)
        .map(|(_, _, j)| serde_json::from_str(j).unwrap())
        .collect();
    let mock = Mock::new(data);
    tokio::spawn(mock::serve(listener, mock.clone()));
    // Small chunks: many short write transactions, each a chance for a login to interleave.
    let config = app.dir.path().join("sync.toml");
    std::fs::write(&config, "[sync]\nchunk_size = 200\n").unwrap();

    sync_while_logging_in(&app, &config, &register, "the first run (creates)").await;

    // The register changes: 1% leave (deactivated: sessions ended, tokens revoked, in the
    // status transactions that read before they write), the others all change their given name.
    let now = Clock::system().now();
    let mut in_register = std::collections::BTreeSet::new();
    for (i, p) in persons.iter().enumerate() {
        let id = p["id"].as_str().unwrap();
        if i % 100 == 0 {
            assert!(mock.delete_at(Kind::Person, id, now));
        } else {
            in_register.insert(portvakt::directory::ident::person_id("ss12000", id));
        }
    }
    let mut renames = 0;
    for (_, p) in persons.iter().enumerate().filter(|(i, _)| i % 100 != 0) {
        renames += 1;
        let mut p = p.clone();
        p["givenName"] = "Omdöpt".into();
        p["meta"]["modified"] = "2099-01-01T00:00:00Z".into();
        mock.upsert_at(Kind::Person, p, now).unwrap();
    }
    sync_while_logging_in(&app, &config, &register, "the second run (changes)").await;

    // The directory holds the register: everyone in it, with the new names; the people who
    // left are deactivated.
    let stored: std::collections::BTreeMap<String, (String, bool)> =
        portvakt::storage::persons::list(&app.db)
            .await
            .unwrap()
            .into_iter()
            .filter(|p| p.source == "ss12000")
            .map(|p| (p.id, (p.given_name, p.active)))
            .collect();
    let missing = in_register
        .iter()
        .filter(|id| !stored.contains_key(*id))
        .count();
    assert_eq!(
        missing, 0,
        "people of the register missing from the directory"
    );
    let left: Vec<_> = stored
        .iter()
        .filter(|(id, _)| !in_register.contains(*id))
        .collect();
    assert_eq!(left.len(), persons.len().div_ceil(100));
    assert!(
        left.iter().all(|(_, (_, active))| !active),
        "a person who left is active"
    );
    let renamed = stored
        .values()
        .filter(|(given, _)| given == "Omdöpt")
        .count();
    assert_eq!(renamed, renames);
}

/// Runs `sync run --full` against the register while WORKERS browsers log in and refresh,
/// and checks that everything succeeded and that enough of it overlapped the apply.
async fn sync_while_logging_in(
    app: &Arc<TestApp>,
    config: &std::path::Path,
    register: &str,
    what: &str,
) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_portvakt"))
        .args(["--config", config.to_str().unwrap()])
        .args(["sync", "run", "--full", "--ss12000", register])
        .args(["--username-context", USERNAME_CONTEXT])
        .env("PORTVAKT_DATABASE_URL", &app.config.database_url)
        .env("PORTVAKT_DATA_DIR", &app.config.data_dir)
        .env("PORTVAKT_ISSUER", &app.config.issuer)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The run prints "planned" just before it applies; from then on until it exits, every
    // login and refresh that finishes counts as concurrent with the apply.
    let applying = Arc::new(AtomicBool::new(false));
    let stderr = child.stderr.take().unwrap();
    let reader = {
        let applying = applying.clone();
        std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in std::io::BufReader::new(stderr).lines() {
                let line = line.unwrap_or_default();
                if line.contains("planned") {
                    applying.store(true, Ordering::SeqCst);
                }
                lines.push(line);
            }
            lines
        })
    };
    let running = Arc::new(AtomicBool::new(true));
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (app, running, applying) = (app.clone(), running.clone(), applying.clone());
        workers.push(tokio::spawn(async move {
            let user = format!("larare{w}");
            // Latencies of what finished while the sync applied, and before.
            let (mut during, mut before) = (Vec::new(), Vec::new());
            let mut count = |t: Instant| {
                if applying.load(Ordering::SeqCst) && running.load(Ordering::SeqCst) {
                    during.push(t.elapsed());
                } else {
                    before.push(t.elapsed());
                }
            };
            while running.load(Ordering::SeqCst) {
                let t = Instant::now();
                let (_, tokens) = app.login_tokens("rp", &user).await;
                count(t);
                let mut refresh = tokens["refresh_token"].as_str().unwrap().to_string();
                for _ in 0..3 {
                    let t = Instant::now();
                    let (s, body) = app
                        .token(
                            "rp",
                            SECRET,
                            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
                        )
                        .await;
                    assert_eq!(s, 200, "a refresh during the sync failed: {body}");
                    refresh = body["refresh_token"].as_str().unwrap().to_string();
                    count(t);
                }
            }
            (during, before)
        }));
    }
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let took = started.elapsed();
    running.store(false, Ordering::SeqCst);
    let stderr = reader.join().unwrap().join("\n");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (mut during, mut before) = (Vec::new(), Vec::new());
    for w in workers {
        let (d, b) = w.await.expect("a login or refresh failed during the sync");
        during.extend(d);
        before.extend(b);
    }
    assert!(out.status.success(), "{what} failed:\n{stdout}\n{stderr}");
    assert!(
        !format!("{stdout}{stderr}").contains("database is locked"),
        "{stderr}"
    );
    during.sort();
    before.sort();
    eprintln!(
        "{what}: {took:.1?}; logins and refreshes while it applied: {} (median {:?}, slowest \
         {:?}); before: {} (median {:?}, slowest {:?})",
        during.len(),
        during.get(during.len() / 2),
        during.last(),
        before.len(),
        before.get(before.len() / 2),
        before.last(),
    );
    assert!(
        during.len() >= 10,
        "too few logins overlapped the apply of {what} to tell anything:\n{stderr}"
    );
}
