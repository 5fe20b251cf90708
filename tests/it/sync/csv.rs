//! CSV file import (issue 17): `sync run --file PEOPLE.csv`, one row per person and role,
//! planned, guarded and applied like any other source; initial passwords hashed after the
//! run is applied and never shown.

use super::*;
use portvakt::sync::file::FILE_SOURCE;

const HEADER: &str = "id,given_name,family_name,civic_no,username,email,role,\
                      school_unit_code,school_unit_name,school_type,school_year,class,\
                      guardians,password";

/// A CSV file of `rows` under [`HEADER`], with Windows line ends (what Excel writes).
fn write_csv(dir: &std::path::Path, rows: &[String]) -> std::path::PathBuf {
    let path = dir.join("people.csv");
    let mut text = String::from(HEADER);
    for r in rows {
        text += "\r\n";
        text += r;
    }
    text += "\r\n";
    std::fs::write(&path, text).unwrap();
    path
}

fn import(app: &TestApp, path: &std::path::Path, extra: &[&str]) -> Output {
    let mut args = vec!["sync", "run", "--file", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    run_cli(app, &args, None)
}

/// A student row of class `class` at unit 12345678 with these guardians.
fn student_row(id: &str, serial: u32, class: &str, guardians: &str) -> String {
    format!(
        "{id},Elev,Ek{serial},{},,,student,12345678,Norrskolan,GR,5,{class},{guardians},",
        civic("20140101", serial)
    )
}

/// The internal id of a person of the file.
fn internal(register_id: &str) -> String {
    person_id(FILE_SOURCE, register_id)
}

async fn is_active(app: &TestApp, register_id: &str) -> bool {
    portvakt::storage::persons::by_id(&app.db, &internal(register_id))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{register_id} is not in the directory"))
        .active
}

async fn password_hash(app: &TestApp, register_id: &str) -> Option<String> {
    portvakt::storage::persons::password_hash(&app.db, &internal(register_id))
        .await
        .unwrap()
}

/// Logs `username` in with `password` at a client "rp"; true when the login completed.
async fn can_log_in(app: &TestApp, username: &str, password: &str) -> bool {
    let browser = app.browser();
    let (url, _, _, _) = app.authorize_url("rp", &[]);
    let (tx, csrf, _) = browser.open_login(&url).await;
    let r = browser
        .post_login(app, &tx, &csrf, username, password)
        .await;
    r.status == 303
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_file_imports_roles_classes_guardians_and_passwords_and_again_changes_nothing() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    const INITIAL: &str = "Första-lösen-4711";
    let rows = vec![
        student_row("s1", 1, "5A", "g1"),
        student_row("s2", 2, "5A", "g1|g2"),
        "t1,Karin,Lärarsson,,karin.l,karin@skolan.example.se,teacher,12345678,Norrskolan,GR,,5A,,"
            .to_string(),
        // Karin also works at another unit, without a class there.
        "t1,Karin,Lärarsson,,,,teacher,87654321,Söderskolan,GY,,,,".to_string(),
        "r1,Nils,Rektorsson,,,,principal,12345678,Norrskolan,,,,,".to_string(),
        "a1,Ada,Vaktmästare,,,,staff,87654321,Söderskolan,,,,,".to_string(),
        format!("g1,Lars,Ek,,lars.ek,,guardian,,,,,,,{INITIAL}"),
        "g2,Anna,Ek,,,,,,,,,,,".to_string(),
    ];
    let path = write_csv(dir.path(), &rows);

    // A dry run writes nothing and sets no password.
    let dry = ok(&import(&app, &path, &["--dry-run"]));
    assert!(
        dry.contains("7 created") && dry.contains("dry run"),
        "{dry}"
    );
    assert!(
        dry.contains("initial passwords: 1 in the file; none set in a dry run"),
        "{dry}"
    );
    assert!(
        portvakt::storage::persons::list(&app.db)
            .await
            .unwrap()
            .is_empty()
    );

    let out = import(&app, &path, &[]);
    let first = ok(&out);
    assert!(
        first.contains("7 created, 0 updated, 0 unchanged, 0 deactivated"),
        "{first}"
    );
    assert!(
        first.contains("initial passwords: 1 set, 0 kept"),
        "{first}"
    );
    assert!(
        text(&out.stderr).contains("read 2 organisations, 7 persons, 1 groups and 4 duties"),
        "{}",
        text(&out.stderr)
    );

    // What an administrator sees.
    let s1 = show(&app, "s1");
    assert_eq!(strings(&s1["roles"]), ["student@12345678"], "{s1}");
    assert_eq!(group_names(&s1), ["5A"]);
    assert_eq!(s1["facts"]["enrolments"][0]["school_year"], 5);
    let guardians: Vec<&str> = s1["facts"]["guardians"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["username"].as_str().unwrap())
        .collect();
    assert_eq!(guardians, ["lars.ek"], "{s1}");
    assert_eq!(s1["active"], true);

    let karin = show(&app, "karin.l");
    let mut roles = strings(&karin["roles"]);
    roles.sort();
    assert_eq!(roles, ["teacher@12345678", "teacher@87654321"], "{karin}");
    assert_eq!(karin["email"], "karin@skolan.example.se");
    let duties = karin["facts"]["duties"].as_array().unwrap();
    let mentor: Vec<&Value> = duties
        .iter()
        .flat_map(|d| d["assignments"].as_array().unwrap())
        .collect();
    assert_eq!(mentor.len(), 1, "{karin}");
    assert_eq!(mentor[0]["kind"], "Mentor");
    assert_eq!(mentor[0]["group"], s1["groups"][0]["id"]);
    assert_eq!(strings(&show(&app, "r1")["roles"]), ["principal@12345678"]);
    assert_eq!(strings(&show(&app, "a1")["roles"]), ["staff@87654321"]);

    let lars = show(&app, "lars.ek");
    assert!(
        strings(&lars["roles"]).contains(&"guardian".to_string()),
        "{lars}"
    );
    let children: Vec<&str> = lars["facts"]["guardian_of"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["relation"].as_str().unwrap())
        .collect();
    assert_eq!(children, ["Vårdnadshavare", "Vårdnadshavare"], "{lars}");
    // Someone without a username in the file gets a generated one and a name-free eppn.
    let anna = show(&app, "g2");
    assert_generated_eppn(anna["eppn"].as_str().unwrap(), "anna");
    assert_eq!(
        anna["active"], true,
        "a guardian is active with the children"
    );

    // The initial password works at the login page.
    app.add_client("rp", |_| {}).await;
    assert!(can_log_in(&app, "lars.ek", INITIAL).await);
    assert!(!can_log_in(&app, "lars.ek", "Fel-lösenord-0000").await);

    // Lars picks a password of his own; the same file again changes nothing, his stays.
    ok(&run_cli(
        &app,
        &["user", "set-password", "lars.ek", "--password-stdin"],
        Some(PASSWORD),
    ));
    let before = password_hash(&app, "g1").await;
    let again = ok(&import(&app, &path, &[]));
    assert!(
        again.contains(
            "0 created, 0 updated, 7 unchanged, 0 deactivated, 0 reactivated; groups 0 \
             changed, 0 removed; duties 0 changed, 0 removed; organisations 0 changed"
        ),
        "{again}"
    );
    assert!(
        again.contains("initial passwords: 0 set, 1 kept"),
        "{again}"
    );
    assert_eq!(password_hash(&app, "g1").await, before);
    assert!(can_log_in(&app, "lars.ek", PASSWORD).await);
    let runs = runs(&app);
    assert_eq!(runs.len(), 3, "the dry run and two imports");
    let counts = &runs[0]["counts"];
    for key in [
        "persons_created",
        "persons_updated",
        "deactivations",
        "groups_changed",
        "duties_changed",
        "organisations_changed",
    ] {
        assert_eq!(counts[key], 0, "{key}: {counts}");
    }
    assert_eq!(runs[0]["source"], FILE_SOURCE);
    assert_eq!(runs[0]["kind"], "full");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_row_is_named_by_its_line_and_stops_the_import_unless_skipped() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let rows = vec![
        student_row("s1", 1, "5A", ""),
        // A quoted name over two lines: the rows after it are a line further down.
        format!(
            "s2,\"Elev\r\nAndra\",Ek,{},,,student,12345678,Norrskolan,GR,5,5A,,",
            civic("20140101", 2)
        ),
        // Line 5: a check digit that does not match.
        "s3,Elev,Fel,201401010000,,,student,12345678,Norrskolan,GR,5,5A,,".to_string(),
        student_row("s4", 4, "5B", ""),
        // Line 7: a role the import does not know.
        "s5,Elev,Roll,,,,pupil,12345678,Norrskolan,GR,5,5A,,".to_string(),
    ];
    let path = write_csv(dir.path(), &rows);
    let shown = path.display().to_string();

    let refused = import(&app, &path, &[]);
    assert!(!refused.status.success());
    let err = text(&refused.stderr);
    assert!(
        err.contains(&format!(
            "{shown}:5: civic_no is not a personnummer or samordningsnummer"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{shown}:7: unknown role \"pupil\"")),
        "{err}"
    );
    assert!(
        !err.contains("201401010000"),
        "a bad value is not shown: {err}"
    );
    assert!(
        err.contains("2 bad rows") && err.contains("nothing was applied"),
        "{err}"
    );
    assert!(runs(&app).is_empty(), "no run was started");
    assert!(
        portvakt::storage::persons::list(&app.db)
            .await
            .unwrap()
            .is_empty()
    );

    let out = import(&app, &path, &["--skip-bad-rows"]);
    let applied = ok(&out);
    assert!(applied.contains("3 created"), "{applied}");
    assert!(text(&out.stderr).contains(&format!("{shown}:5: ")));
    let stored: BTreeSet<String> = portvakt::storage::persons::list(&app.db)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|p| p.external_id)
        .collect();
    assert_eq!(
        stored,
        ["s1", "s2", "s4"].map(String::from).into_iter().collect()
    );
    assert_eq!(show(&app, "s2")["given_name"], "Elev\r\nAndra");
    let run = last_run(&app);
    assert_eq!(
        run["report"]["skipped"]["CSV row: unknown role"], 1,
        "{run}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_holds_a_csv_that_drops_too_many_people_and_sets_no_password_meanwhile() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<String> = (0..40)
        .map(|i| student_row(&format!("s{i}"), i, if i < 20 { "5A" } else { "5B" }, ""))
        .collect();
    let path = write_csv(dir.path(), &rows);
    ok(&import(&app, &path, &[]));

    // Four leave (10 % > 5 %); s39, who stays, gets an initial password in the new file.
    let mut kept: Vec<String> = rows[4..].to_vec();
    let last = kept.len() - 1;
    kept[last] = format!("{}Ett-lösenord-99", kept[last]);
    let path = write_csv(dir.path(), &kept);
    let out = import(&app, &path, &[]);
    let id = held_run_id(&out);
    assert!(
        text(&out.stdout).contains("initial passwords: 1 in the file; none set while"),
        "{}",
        text(&out.stdout)
    );
    let run = last_run(&app);
    assert_eq!(
        (run["id"].as_i64(), run["status"].as_str()),
        (Some(id), Some("held"))
    );
    assert_eq!(run["counts"]["deactivations"], 4, "{run}");
    for i in 0..4 {
        assert!(
            is_active(&app, &format!("s{i}")).await,
            "nothing applied while held"
        );
    }
    assert_eq!(password_hash(&app, "s39").await, None);

    // Approved, the same file again sets the password (and plans nothing else).
    ok(&run_cli(&app, &["sync", "approve", &id.to_string()], None));
    let again = ok(&import(&app, &path, &[]));
    assert!(
        again.contains("0 created, 0 updated, 36 unchanged"),
        "{again}"
    );
    assert!(again.contains("initial passwords: 1 set"), "{again}");
    assert!(
        password_hash(&app, "s39")
            .await
            .is_some_and(|h| h.starts_with("$argon2id$"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_initial_password_is_stored_only_as_an_argon2_hash_and_never_shown() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    const SECRET_PW: &str = "Hemlig-start-8Qz3";
    const REFUSED_PW: &str = "kort8Qz3";
    let rows = vec![
        format!("{}{SECRET_PW}", student_row("s1", 1, "5A", "")),
        // Too short for the policy: a bad row that does not show it.
        format!("{}{REFUSED_PW}", student_row("s2", 2, "5A", "")),
    ];
    let path = write_csv(dir.path(), &rows);
    let refused = import(&app, &path, &[]);
    let out = import(&app, &path, &["--skip-bad-rows"]);
    let applied = ok(&out);
    assert!(applied.contains("initial passwords: 1 set"), "{applied}");
    let err = text(&out.stderr);
    assert!(
        err.contains(":3: password refused: it must be 10 to 256 characters (not shown)"),
        "{err}"
    );
    let runs_json = ok(&run_cli(&app, &["sync", "runs", "--json"], None));
    let shown = ok(&run_cli(&app, &["person", "show", "s1", "--json"], None));
    for (what, text) in [
        ("refused stdout", text(&refused.stdout)),
        ("refused stderr", text(&refused.stderr)),
        ("stdout", applied.clone()),
        ("stderr", err.clone()),
        ("sync runs", runs_json),
        ("person show", shown),
    ] {
        for pw in [SECRET_PW, REFUSED_PW] {
            assert!(!text.contains(pw), "{what} shows a password: {text}");
        }
    }
    let hash = password_hash(&app, "s1").await.unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert_eq!(password_hash(&app, "s2").await, None);
    app.add_client("rp", |_| {}).await;
    let username = show(&app, "s1")["username"].as_str().unwrap().to_string();
    assert!(can_log_in(&app, &username, SECRET_PW).await);

    // Nowhere in the database in clear: every table's rows as text (PostgreSQL), or the
    // database file and its write-ahead log (SQLite).
    for pw in [SECRET_PW, REFUSED_PW] {
        assert_eq!(database_occurrences(&app, pw).await, 0, "{pw} stored");
    }
    // The scan finds what is there: the hash.
    assert!(database_occurrences(&app, &hash).await > 0);
}

/// How often `needle` occurs in the app's database.
async fn database_occurrences(app: &TestApp, needle: &str) -> usize {
    let url = &app.config.database_url;
    if use_postgres() {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(url).await.unwrap();
        let tables: Vec<(String,)> = sqlx::query_as(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert!(tables.len() > 10, "{tables:?}");
        let mut n = 0;
        for (t,) in tables {
            let (count,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM \"{t}\" x WHERE strpos(x::text, $1) > 0"
            )))
            .bind(needle)
            .fetch_one(&pool)
            .await
            .unwrap();
            n += count as usize;
        }
        pool.close().await;
        n
    } else {
        let file = url
            .strip_prefix("sqlite://")
            .unwrap()
            .split('?')
            .next()
            .unwrap();
        let mut n = 0;
        for path in [file.to_string(), format!("{file}-wal")] {
            let bytes = std::fs::read(&path).unwrap_or_default();
            n += bytes
                .windows(needle.len())
                .filter(|w| *w == needle.as_bytes())
                .count();
        }
        n
    }
}

/// `sync run` off a terminal (stderr a pipe, as here): the phases as plain lines, no bar.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_off_a_terminal_is_plain_phase_lines() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<String> = (0..7)
        .map(|i| student_row(&format!("s{i}"), i, "5A", ""))
        .collect();
    let path = write_csv(dir.path(), &rows);
    let out = import(&app, &path, &[]);
    ok(&out);
    let err = text(&out.stderr);
    let phases: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix("file: ["))
        .filter_map(|l| l.split_once(" s] ").map(|(_, phase)| phase))
        .collect();
    assert_eq!(
        phases,
        [
            "planning",
            "planned",
            "applied 7 of 7 people",
            "applied guardianships",
            "applied groups",
            "applied duties and status changes"
        ],
        "{err}"
    );
    assert!(
        !err.contains('\u{1b}') && !err.contains('\r'),
        "no terminal control off a terminal: {err:?}"
    );
}

/// `sync run` on a terminal (a pseudo-terminal from util-linux `script`): a bar drawn
/// with terminal control, the phases kept as lines above it, the bar cleared at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_on_a_terminal_is_drawn_and_cleared() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no `script` (util-linux) to make a pseudo-terminal");
        return;
    }
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    const PW: &str = "Terminal-lösen-5150";
    let mut rows: Vec<String> = (0..300)
        .map(|i| student_row(&format!("s{i}"), i, "5A", ""))
        .collect();
    rows[0] += PW;
    let path = write_csv(dir.path(), &rows);
    let command = format!(
        "{} sync run --file {}",
        env!("CARGO_BIN_EXE_portvakt"),
        path.display()
    );
    let out = tokio::task::block_in_place(|| {
        std::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env("PORTVAKT_DATABASE_URL", &app.config.database_url)
            .env("PORTVAKT_DATA_DIR", &app.config.data_dir)
            .env("PORTVAKT_ISSUER", &app.config.issuer)
            .env("TERM", "xterm")
            .env_remove("PORTVAKT_CONFIG")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    });
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("run 1 (full, applied): 300 created"),
        "{shown}"
    );
    assert!(shown.contains("initial passwords: 1 set"), "{shown}");
    assert!(
        shown.contains('\u{1b}'),
        "a terminal gets terminal control: {shown:?}"
    );
    assert!(shown.contains("] applied 300 of 300 people"), "{shown:?}");
    assert!(!shown.contains(PW), "{shown:?}");
}

/// Ctrl-C (SIGINT) while the initial passwords are hashed stops the command; the run stays
/// applied and the same file again sets the passwords.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_stops_the_hashing_and_a_reimport_sets_the_rest() {
    use std::io::BufRead;
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<String> = (0..400)
        .map(|i| {
            format!(
                "{}Lösen-nr-{i:05}",
                student_row(&format!("s{i}"), i, "5A", "")
            )
        })
        .collect();
    let path = write_csv(dir.path(), &rows);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_portvakt"))
        .args(["sync", "run", "--file", path.to_str().unwrap()])
        .env("PORTVAKT_DATABASE_URL", &app.config.database_url)
        .env("PORTVAKT_DATA_DIR", &app.config.data_dir)
        .env("PORTVAKT_ISSUER", &app.config.issuer)
        .env_remove("PORTVAKT_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            if line.contains("hashing 400 initial passwords") {
                let _ = tx.send(());
            }
            lines.push(line);
        }
        lines
    });
    rx.recv_timeout(std::time::Duration::from_secs(120))
        .expect("the hashing began");
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = std::time::Instant::now();
    let out = tokio::task::block_in_place(|| child.wait_with_output().unwrap());
    let err = reader.join().unwrap().join("\n");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "stopped at once, not after the hashing"
    );
    assert!(!out.status.success());
    assert!(
        err.contains("stopped while setting initial passwords"),
        "{err}"
    );
    assert!(last_run(&app)["status"] == "applied");
    assert_eq!(password_hash(&app, "s399").await, None, "batches of 500");

    let again = ok(&import(&app, &path, &[]));
    assert!(
        again.contains("initial passwords: 400 set, 0 kept"),
        "{again}"
    );
}
