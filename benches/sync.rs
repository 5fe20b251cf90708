//! Sync benchmark: `cargo bench --bench sync`.
//!
//! Generates a municipality (`PORTVAKT_BENCH_PERSONS`, default 500,000 persons with
//! guardians, groups and duties), serves it from the built-in SS 12000 mock in this process
//! on a loopback port, and runs the release binary `portvakt sync run` against it as a
//! separate process, into a fresh SQLite file and a fresh PostgreSQL database:
//!
//! 1. a full first run (everyone created), wall time and the sync process's peak RSS;
//! 2. a second full run with nothing changed;
//! 3. an incremental run after 1,000 changes in the register (800 name changes, 100 new
//!    people, 100 deletions).
//!
//! Targets (issue 16): full first run ≤ 30 s and ≤ 700 MB RSS, full run with nothing new
//! ≤ 8 s and ≤ 700 MB, incremental ≤ 1 s (issue 4's were 60 s, 1 GB and 2 s). The logins
//! measured during a full sync are `PORTVAKT_BENCH_ONLY=synclogin cargo bench --bench load`
//! (benches/load/sync_logins.rs). Environment:
//! `PORTVAKT_BENCH_DBS=sqlite,postgres` (default both), `PORTVAKT_BENCH_VERBOSE=1` (the
//! runs' progress lines on stderr), `PORTVAKT_TEST_PG_URL` (default
//! postgres://postgres:postgres@127.0.0.1:5432/test). Only loopback is contacted.

use portvakt::sim::ss12000::generate::{USERNAME_CONTEXT, generate};
use portvakt::sim::ss12000::mock::{self, Kind, Mock};
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_portvakt");

struct Measured {
    wall: Duration,
    max_rss_mb: f64,
    summary: String,
}

/// The peak RSS (VmHWM) of a running process, in KiB; 0 once it is gone.
fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs `portvakt sync run`, sampling its VmHWM every 20 ms. (wait4's ru_maxrss is no use
/// here: Linux carries the parent's high-water mark across the spawn's exec, and this
/// process holds the whole register.)
fn sync_run(db_url: &str, data_dir: &std::path::Path, base: &str, full: bool) -> Measured {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "sync",
        "run",
        "--ss12000",
        base,
        "--username-context",
        USERNAME_CONTEXT,
    ]);
    if full {
        cmd.arg("--full");
    }
    cmd.env("PORTVAKT_DATABASE_URL", db_url)
        .env("PORTVAKT_DATA_DIR", data_dir)
        .env_remove("PORTVAKT_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(if std::env::var_os("PORTVAKT_BENCH_VERBOSE").is_some() {
            std::process::Stdio::inherit()
        } else {
            std::process::Stdio::null()
        });
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn portvakt");
    let pid = child.id();
    let mut peak = 0;
    let status = loop {
        peak = peak.max(vm_hwm_kib(pid));
        if let Some(status) = child.try_wait().expect("wait for portvakt") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let wall = start.elapsed();
    let mut out = String::new();
    if let Some(mut so) = child.stdout.take() {
        use std::io::Read;
        let _ = so.read_to_string(&mut out);
    }
    assert!(status.success(), "sync run failed: {out}");
    Measured {
        wall,
        max_rss_mb: peak as f64 / 1024.0,
        summary: out.lines().next().unwrap_or_default().to_string(),
    }
}

fn pg_database(name: &str) -> String {
    let base = std::env::var("PORTVAKT_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/test".into());
    let psql = |sql: &str| {
        let ok = Command::new("psql")
            .args([base.as_str(), "-q", "-c", sql])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "psql failed: {sql} (is PostgreSQL running at {base}?)");
    };
    psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    psql(&format!("CREATE DATABASE {name}"));
    let mut url = url::Url::parse(&base).expect("PORTVAKT_TEST_PG_URL");
    url.set_path(name);
    url.to_string()
}

/// 800 name changes, 100 new people (copies without a civic number), 100 deletions.
fn change_register(mock: &Mock, people: &[(String, String)], now: i64) {
    for (i, (id, json)) in people.iter().enumerate().take(1000) {
        let mut v: Value = serde_json::from_str(json).expect("stored person JSON");
        match i {
            0..800 => {
                let family = v["familyName"].as_str().unwrap_or_default().to_string();
                v["familyName"] = Value::String(format!("{family}-Lind"));
                mock.upsert_at(Kind::Person, v, now).expect("upsert");
            }
            800..900 => {
                v["id"] = Value::String(uuid::Uuid::new_v4().to_string());
                v.as_object_mut().map(|o| o.remove("civicNo"));
                v["externalIdentifiers"] = serde_json::json!([{
                    "value": format!("ny{i}"), "context": USERNAME_CONTEXT, "globallyUnique": false
                }]);
                mock.upsert_at(Kind::Person, v, now).expect("insert");
            }
            _ => {
                mock.delete_at(Kind::Person, id, now);
            }
        }
    }
}

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    let persons: usize = std::env::var("PORTVAKT_BENCH_PERSONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500_000);
    let dbs = std::env::var("PORTVAKT_BENCH_DBS").unwrap_or_else(|_| "sqlite,postgres".into());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // The server under test reads the system clock; so does the register it syncs from.
    let clock = portvakt::clock::Clock::system();
    let today = portvakt::directory::roles::day_of(clock.now());
    let t = Instant::now();
    let data = generate(1, persons, today);
    let gen_time = t.elapsed();
    println!(
        "generated {} persons, {} groups, {} duties, {} organisations in {:.1} s",
        data.len(Kind::Person),
        data.len(Kind::Group),
        data.len(Kind::Duty),
        data.len(Kind::Organisation),
        gen_time.as_secs_f64()
    );
    // The people the incremental run changes, taken before the dataset moves into the mock.
    let people: Vec<(String, String)> = data
        .records(Kind::Person)
        .step_by((persons / 1000).max(1))
        .take(1000)
        .map(|(id, _, json)| (id.to_string(), json.to_string()))
        .collect();
    for db in dbs.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let mock = Mock::new(generate(1, persons, today));
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let base = format!("http://{}/v2.0/", listener.local_addr().expect("addr"));
        let served = mock.clone();
        rt.spawn(async move {
            let _ = mock::serve(listener, served).await;
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let url = match db {
            "sqlite" => format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("bench.db").display()
            ),
            "postgres" => pg_database("portvakt_bench_sync"),
            other => panic!("unknown database {other} in PORTVAKT_BENCH_DBS"),
        };
        let first = sync_run(&url, dir.path(), &base, true);
        println!(
            "{db:<8} full, first run:      {:>6.1} s  peak RSS {:>6.0} MB  {}",
            first.wall.as_secs_f64(),
            first.max_rss_mb,
            first.summary
        );
        let again = sync_run(&url, dir.path(), &base, true);
        println!(
            "{db:<8} full, nothing new:    {:>6.1} s  peak RSS {:>6.0} MB  {}",
            again.wall.as_secs_f64(),
            again.max_rss_mb,
            again.summary
        );
        // The next incremental window starts 5 minutes before the last run; changes are
        // stamped now, after it.
        let now = clock.now();
        change_register(&mock, &people, now);
        let inc = sync_run(&url, dir.path(), &base, false);
        println!(
            "{db:<8} incremental, 1,000:   {:>6.2} s  peak RSS {:>6.0} MB  {}",
            inc.wall.as_secs_f64(),
            inc.max_rss_mb,
            inc.summary
        );
    }
}
