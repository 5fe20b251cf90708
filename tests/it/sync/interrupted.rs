//! Interrupted runs: the lease is short and renewed by a heartbeat; a run whose lease ran
//! out is marked `interrupted` by the next; SIGTERM stops a run, which records it and
//! releases its lease; `sync unlock` frees a source; and a `portvakt sync run` killed with
//! SIGKILL in the middle of its apply is completed by the next run, to the same directory as
//! a run that was never interrupted.

use super::*;
use portvakt::storage::sync::{start_run, take_lease};
use portvakt::sync::lease::LEASE_SECONDS;
use portvakt::sync::run::{Fetched, Runner, Status, SyncError};
use std::io::BufRead;
use std::time::{Duration, Instant};

/// `portvakt sync run` as a process of its own, its stderr (the progress) read line by line.
struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    /// `sync run --ss12000 URL EXTRA…` on the app's database, with the settings of
    /// `config_file` if given.
    fn start(app: &TestApp, reg: &Register, extra: &[&str], config_file: Option<&str>) -> Self {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_portvakt"));
        cmd.args(["sync", "run", "--ss12000", &reg.url])
            .args(["--username-context", &reg.context])
            .args(extra)
            .env("PORTVAKT_DATABASE_URL", &app.config.database_url)
            .env("PORTVAKT_DATA_DIR", &app.config.data_dir)
            .env("PORTVAKT_ISSUER", &app.config.issuer)
            .env_remove("PORTVAKT_CONFIG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        if let Some(file) = config_file {
            cmd.args(["--config", file]);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits at most `secs` for a progress line that `pred` accepts.
    fn wait_for(&mut self, secs: u64, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        tokio::task::block_in_place(|| {
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.lines.recv_timeout(left) {
                    Ok(line) => {
                        self.seen.push(line.clone());
                        if pred(&line) {
                            return line;
                        }
                    }
                    Err(e) => panic!(
                        "no such line within {secs} s ({e}); seen:\n{}",
                        self.seen.join("\n")
                    ),
                }
            }
        })
    }

    /// Sends `signal` (`TERM`, `KILL`) to the process.
    fn signal(&self, signal: &str) {
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Waits at most `secs` for the process to end; its exit status and the rest of stderr.
    fn finish(mut self, secs: u64) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let status = tokio::task::block_in_place(|| {
            loop {
                if let Some(status) = self.child.try_wait().unwrap() {
                    return status;
                }
                assert!(
                    Instant::now() < deadline,
                    "the process did not end within {secs} s"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        // The reader thread ends with the pipe.
        let rest: Vec<String> = self.lines.iter().collect();
        self.seen.extend(rest);
        (status, self.seen.join("\n"))
    }
}

/// (done, total) of an "applied 2100 of 10000 people" progress line.
fn applied(line: &str) -> Option<(u64, u64)> {
    let rest = line.split("] applied ").nth(1)?;
    let mut words = rest.split(' ');
    let done = words.next()?.parse().ok()?;
    let total = words.nth(1)?.parse().ok()?;
    Some((done, total))
}

/// A config file that applies 100 people per chunk, so the apply of a few thousand people
/// takes many transactions (and reports its progress every 2,000).
fn small_chunks(app: &TestApp) -> String {
    let path = app.dir.path().join("small-chunks.toml");
    std::fs::write(&path, "[sync]\nchunk_size = 100\n").unwrap();
    path.display().to_string()
}

/// A run record by id (`sync runs --json`).
fn run_record(app: &TestApp, id: i64) -> Value {
    runs(app)
        .into_iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no run {id}"))
}

/// Rows per table of the directory the sync writes.
async fn table_counts(app: &TestApp) -> BTreeMap<&'static str, i64> {
    use sqlx::{Connection, Row};
    let mut conn = sqlx::AnyConnection::connect(&app.config.database_url)
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for table in [
        "persons",
        "enrolments",
        "guardianships",
        "organisations",
        "school_units",
        "school_groups",
        "group_members",
        "duties",
    ] {
        let sql = format!("SELECT COUNT(*) AS n FROM {table}");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        out.insert(table, row.try_get::<i64, _>("n").unwrap());
    }
    out
}

/// A SHA-256 over the rows of a query whose columns are all text, in its order.
async fn digest(app: &TestApp, sql: &'static str, columns: usize) -> String {
    use sqlx::{Connection, Row};
    let mut conn = sqlx::AnyConnection::connect(&app.config.database_url)
        .await
        .unwrap();
    let rows = sqlx::query(sql).fetch_all(&mut conn).await.unwrap();
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for row in &rows {
        for i in 0..columns {
            let v: Option<String> = row.try_get(i).unwrap();
            ctx.update(v.as_deref().unwrap_or("\u{0}NULL").as_bytes());
            ctx.update(b"\x1f");
        }
        ctx.update(b"\x1e");
    }
    ctx.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The directory as the register made it: a digest of the persons table (every column but
/// the times of writing) and of the guardianships and group memberships.
async fn directory_digest(app: &TestApp) -> [String; 3] {
    [
        digest(
            app,
            "SELECT id, username, eppn, given_name, family_name, email, civic_no, \
             CAST(protected_identity AS TEXT), status, source, external_id, search_name, \
             emails, security_marking, active_from, active_until, sync_hash \
             FROM persons ORDER BY id",
            17,
        )
        .await,
        digest(
            app,
            "SELECT guardian_id, student_id, relation_type, source FROM guardianships \
             ORDER BY guardian_id, student_id",
            4,
        )
        .await,
        digest(
            app,
            "SELECT group_id, person_id, start_date, end_date FROM group_members \
             ORDER BY group_id, person_id",
            4,
        )
        .await,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_in_its_apply_is_completed_by_the_next_one() {
    let app = spawn_app().await;
    let data = municipality(10_000);
    let people = data.len(Kind::Person) as i64;
    let reg = Register::start(data).await;

    // SIGKILL once the apply has committed a few thousand people.
    let config = small_chunks(&app);
    let mut run = Running::start(&app, &reg, &["--full"], Some(&config));
    run.wait_for(180, |l| {
        applied(l).is_some_and(|(done, total)| done >= 2000 && done < total)
    });
    run.signal("KILL");
    let (status, _) = run.finish(30);
    assert!(!status.success());
    let killed = last_run(&app);
    assert_eq!(killed["status"], "running", "{killed}");
    let partial = table_counts(&app).await["persons"];
    assert!(
        partial >= 2000 && partial < people,
        "killed in the middle of the apply: {partial} of {people} people written"
    );

    // Its lease is left: the next run waits until it runs out (the app's clock moves) ...
    let client = reg.client(1000, 0);
    let err = run_in(env(&app), &client, Some(USERNAME_CONTEXT), RunKind::Full)
        .await
        .expect_err("the lease is still held");
    assert!(matches!(err, SyncError::Busy(_)), "{err}");
    app.clock.advance(LEASE_SECONDS + 1);
    // ... then it marks the killed run interrupted and completes the directory.
    let out = run_in(env(&app), &client, Some(USERNAME_CONTEXT), RunKind::Full)
        .await
        .unwrap();
    assert_eq!(out.status, Status::Applied);
    let killed = run_record(&app, killed["id"].as_i64().unwrap());
    assert_eq!(killed["status"], "interrupted", "{killed}");
    assert!(
        killed["reason"].as_str().unwrap().contains("lease ran out"),
        "{killed}"
    );
    assert!(killed["finished_at"].is_i64(), "{killed}");

    // The same register synced once, never interrupted, into a database of its own.
    let reference = spawn_app().await;
    reference.clock.advance(LEASE_SECONDS + 1);
    let out = run_in(
        env(&reference),
        &client,
        Some(USERNAME_CONTEXT),
        RunKind::Full,
    )
    .await
    .unwrap();
    assert_eq!(out.status, Status::Applied);
    let counts = table_counts(&app).await;
    assert_eq!(counts["persons"], people);
    assert_eq!(counts, table_counts(&reference).await);
    assert_eq!(
        directory_digest(&app).await,
        directory_digest(&reference).await,
        "the directory equals that of a run never interrupted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_run_which_records_it_and_releases_its_lease() {
    let app = spawn_app().await;
    let data = municipality(10_000);
    let people = data.len(Kind::Person);
    let reg = Register::start(data).await;
    let config = small_chunks(&app);
    let mut run = Running::start(&app, &reg, &["--full"], Some(&config));
    run.wait_for(180, |l| {
        applied(l).is_some_and(|(done, total)| done < total)
    });
    run.signal("TERM");
    let (status, stderr) = run.finish(30);
    assert!(!status.success(), "{stderr}");
    let stopped = last_run(&app);
    let id = stopped["id"].as_i64().unwrap();
    assert!(
        stderr.contains(&format!("run {id} was interrupted: stopped by a signal")),
        "{stderr}"
    );
    assert_eq!(stopped["status"], "interrupted", "{stopped}");
    assert!(stopped["finished_at"].is_i64(), "{stopped}");
    assert!(
        directory(&app).await.len() < people,
        "stopped before the end"
    );

    // The lease was released: a run by hand (on the system's clock) goes ahead at once.
    reg.sync_ok(&app, &["--full"]);
    assert_eq!(last_run(&app)["status"], "applied");
    assert_eq!(directory(&app).await.len(), people);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_lease_ran_out_is_marked_interrupted_by_the_next_one() {
    let app = spawn_app().await;
    let reg = Register::start(municipality(50)).await;
    let client = reg.client(100, 0);
    // What a killed process leaves: its lease and its record, `running`.
    let now = app.clock.now();
    assert!(
        take_lease(&app.db, SOURCE, "a-killed-run", now, now + LEASE_SECONDS)
            .await
            .unwrap()
    );
    let dead = start_run(&app.db, SOURCE, "full", now).await.unwrap();

    app.clock.advance(LEASE_SECONDS - 5);
    let err = run_in(env(&app), &client, Some(USERNAME_CONTEXT), RunKind::Full)
        .await
        .expect_err("the lease still runs");
    assert!(matches!(err, SyncError::Busy(_)), "{err}");
    assert_eq!(run_record(&app, dead)["status"], "running");

    app.clock.advance(10);
    let out = run_in(env(&app), &client, Some(USERNAME_CONTEXT), RunKind::Full)
        .await
        .unwrap();
    assert_eq!(out.status, Status::Applied);
    let record = run_record(&app, dead);
    assert_eq!(record["status"], "interrupted", "{record}");
    assert!(record["reason"].as_str().unwrap().contains("lease ran out"));
    assert_eq!(run_record(&app, out.run_id)["status"], "applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heartbeat_keeps_the_lease_of_a_run_that_works_long() {
    let app = spawn_app().await;
    let reg = Register::start(municipality(50)).await;
    let client = reg.client(100, 0);
    let mut runner = Runner::new(env(&app), SOURCE);
    runner.username_context = Some(USERNAME_CONTEXT);
    runner.heartbeat = Duration::from_millis(50);
    let (app_ref, client_ref) = (&app, &client);
    let out = runner
        .run(
            RunKind::Full,
            |_| async move {
                // Three minutes of the app's clock, three leases' worth, pass while the
                // source is read; another instance never gets the lease.
                for _ in 0..6 {
                    app_ref.clock.advance(30);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    let now = app_ref.clock.now();
                    let taken = take_lease(&app_ref.db, SOURCE, "another", now, now + 60)
                        .await
                        .map_err(|e| e.to_string())?;
                    if taken {
                        return Err("another instance took the lease".to_string());
                    }
                }
                let snapshot = client_ref
                    .snapshot(&|_| {})
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Fetched::Full(snapshot))
            },
            &|_| {},
            std::future::pending(),
        )
        .await
        .unwrap();
    assert_eq!(out.status, Status::Applied);
}

/// The CLI as a command of its own (owned, for a blocking thread).
fn cli_command(app: &TestApp, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_portvakt"));
    cmd.args(args)
        .env("PORTVAKT_DATABASE_URL", &app.config.database_url)
        .env("PORTVAKT_DATA_DIR", &app.config.data_dir)
        .env("PORTVAKT_ISSUER", &app.config.issuer)
        .env_remove("PORTVAKT_CONFIG");
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_unlock_frees_a_source_and_stops_a_run_still_working() {
    let app = spawn_app().await;
    let reg = Register::start(municipality(50)).await;
    reg.sync_ok(&app, &["--full"]);

    let out = run_cli(&app, &["sync", "unlock", "okand"], None);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("no sync source okand") && err.contains("known: ss12000"),
        "{err}"
    );

    // A run that reads for a long time (the register hangs), with a quick heartbeat.
    let mut runner = Runner::new(env(&app), SOURCE);
    runner.username_context = Some(USERNAME_CONTEXT);
    runner.heartbeat = Duration::from_millis(50);
    let work = runner.run(
        RunKind::Full,
        |_| async {
            tokio::time::sleep(Duration::from_secs(120)).await;
            Err("the register never answered".to_string())
        },
        &|_| {},
        std::future::pending(),
    );
    let unlock = async {
        let deadline = Instant::now() + Duration::from_secs(20);
        while portvakt::storage::sync::runs(&app.db, 1).await.unwrap()[0].status != "running" {
            assert!(Instant::now() < deadline, "the run did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let cmd = cli_command(&app, &["sync", "unlock", SOURCE]);
        tokio::task::spawn_blocking(move || {
            let mut cmd = cmd;
            cmd.output().unwrap()
        })
        .await
        .unwrap()
    };
    let (stopped, unlocked) = tokio::join!(work, unlock);
    let err = stopped.expect_err("the unlocked run stops");
    let SyncError::Interrupted(id, why) = &err else {
        panic!("{err}")
    };
    assert!(why.contains("lease was taken away"), "{err}");
    let said = ok(&unlocked);
    assert!(
        said.contains(&format!(
            "ss12000: lease released; run {id} marked interrupted"
        )),
        "{said}"
    );
    let record = run_record(&app, *id);
    assert_eq!(record["status"], "interrupted", "{record}");
    assert!(
        record["reason"]
            .as_str()
            .unwrap()
            .starts_with("interrupted: unlocked by "),
        "{record}"
    );
    let audit = portvakt::storage::records::recent_audit(&app.db, 20)
        .await
        .unwrap();
    let (_, _, actor, detail) = audit
        .iter()
        .find(|(_, kind, _, _)| kind == "sync.unlocked")
        .expect("an audit event");
    assert!(!actor.is_empty());
    assert!(
        detail.contains(&format!("run {id} marked interrupted")),
        "{detail}"
    );

    // Nothing left to unlock; and the next run goes ahead at once.
    let said = ok(&run_cli(&app, &["sync", "unlock", SOURCE], None));
    assert!(said.contains("not locked"), "{said}");
    reg.sync_ok(&app, &["--full"]);
    assert_eq!(last_run(&app)["status"], "applied");
}
