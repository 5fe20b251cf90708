//! CSV import benchmark (issue 17): `cargo bench --bench csv_import`.
//!
//! Generates a municipality (`PORTVAKT_BENCH_PERSONS`, default 100,000 persons) with the
//! SS 12000 generator the sync benchmark uses, writes it as the CSV import format (one row
//! per person and role: students with class and guardians, teachers with the classes they
//! are mentor of, principals, other staff, guardians), and runs the release binary
//! `portvakt sync run --file PEOPLE.csv` as a separate process into a fresh SQLite file and a
//! fresh PostgreSQL database:
//!
//! 1. the first import (everyone created), wall time and the process's peak RSS;
//! 2. the same file again (nothing changes);
//! 3. initial passwords: `PORTVAKT_BENCH_PASSWORDS` people (default 2,000) of a file of
//!    their own get a password column, imported into a fresh database: the time is mostly
//!    argon2id at the default `[password]` parameters, by design.
//!
//! Environment: `PORTVAKT_BENCH_DBS=sqlite,postgres` (default both),
//! `PORTVAKT_BENCH_VERBOSE=1` (the runs' progress lines on stderr), `PORTVAKT_TEST_PG_URL`
//! (default postgres://postgres:postgres@127.0.0.1:5432/test). Nothing but loopback is
//! contacted; every run is one process that ends.

use portvakt::sim::ss12000::generate::generate;
use portvakt::sim::ss12000::mock::{Dataset, Kind};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_portvakt");

const HEADER: &str = "id,given_name,family_name,civic_no,username,email,security_marking,role,\
                      school_unit_code,school_unit_name,school_type,school_year,class,guardians";

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

/// `portvakt sync run --file PATH`, sampling its VmHWM every 20 ms (see benches/sync.rs for
/// why not wait4's ru_maxrss).
fn import(db_url: &str, data_dir: &std::path::Path, file: &std::path::Path) -> Measured {
    let mut cmd = Command::new(BIN);
    cmd.args(["sync", "run", "--file"])
        .arg(file)
        .env("PORTVAKT_DATABASE_URL", db_url)
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
    let summary = out
        .lines()
        .filter(|l| l.starts_with("run ") || l.starts_with("initial passwords"))
        .collect::<Vec<_>>()
        .join(" | ");
    Measured {
        wall,
        max_rss_mb: peak as f64 / 1024.0,
        summary,
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

fn records(data: &Dataset, kind: Kind) -> Vec<Value> {
    data.records(kind)
        .map(|(_, _, j)| serde_json::from_str(j).expect("generated JSON"))
        .collect()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// The dataset as the CSV import format; (text, rows). With `passwords`, a password column
/// whose first `passwords` people get one (everyone else an empty cell).
fn to_csv(data: &Dataset, passwords: Option<usize>) -> (String, usize) {
    // Units by organisation id: (code, name, school type).
    let units: HashMap<String, (String, String, String)> = records(data, Kind::Organisation)
        .into_iter()
        .filter(|o| o["organisationType"] == "Skolenhet")
        .map(|o| {
            (
                s(&o["id"]).to_string(),
                (
                    s(&o["schoolUnitCode"]).to_string(),
                    s(&o["displayName"]).to_string(),
                    s(&o["schoolTypes"][0]).to_string(),
                ),
            )
        })
        .collect();
    // Classes: group id → name, and each student's class.
    let mut class_name: HashMap<String, String> = HashMap::new();
    let mut class_of: HashMap<String, String> = HashMap::new();
    for g in records(data, Kind::Group) {
        if g["groupType"] != "Klass" {
            continue;
        }
        let name = s(&g["displayName"]).to_string();
        for m in g["groupMemberships"].as_array().into_iter().flatten() {
            class_of.insert(s(&m["person"]["id"]).to_string(), name.clone());
        }
        class_name.insert(s(&g["id"]).to_string(), name);
    }
    // Duties by person: (unit id, duty role, mentor classes).
    let mut duties: HashMap<String, Vec<(String, String, Vec<String>)>> = HashMap::new();
    for d in records(data, Kind::Duty) {
        let mentor: Vec<String> = d["assignmentRole"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| class_name.get(s(&a["group"]["id"])).cloned())
            .collect();
        duties
            .entry(s(&d["person"]["id"]).to_string())
            .or_default()
            .push((
                s(&d["dutyAt"]["id"]).to_string(),
                s(&d["dutyRole"]).to_string(),
                mentor,
            ));
    }
    let mut out = String::from(HEADER);
    if passwords.is_some() {
        out.push_str(",password");
    }
    out.push('\n');
    let mut rows = 0;
    for (n, p) in records(data, Kind::Person).into_iter().enumerate() {
        let id = s(&p["id"]);
        let person = format!(
            "{id},{},{},{},{},{},{}",
            s(&p["givenName"]),
            s(&p["familyName"]),
            s(&p["civicNo"]["value"]),
            s(&p["externalIdentifiers"][0]["value"]),
            s(&p["emails"][0]["value"]),
            s(&p["securityMarking"]),
        );
        let password = match passwords {
            Some(k) if n < k => format!(",Bänk-lösen-{n:06}"),
            Some(_) => ",".to_string(),
            None => String::new(),
        };
        let mut row = |role: &str, unit: Option<&str>, year: &str, class: &str, guardians: &str| {
            let (code, name, school_type) = unit
                .and_then(|u| units.get(u))
                .map(|(c, n, t)| (c.as_str(), n.as_str(), t.as_str()))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{person},{role},{code},{name},{school_type},{year},{class},{guardians}{password}"
            );
            rows += 1;
        };
        let mut any = false;
        if let Some(e) = p["enrolments"].as_array().and_then(|e| e.first()) {
            let guardians: Vec<&str> = p["responsibles"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| s(&r["person"]["id"]))
                .collect();
            row(
                "student",
                Some(s(&e["enroledAt"]["id"])),
                &e["schoolYear"].to_string(),
                class_of.get(id).map_or("", String::as_str),
                &guardians.join("|"),
            );
            any = true;
        }
        for (unit, duty_role, mentor) in duties.get(id).into_iter().flatten() {
            let role = match duty_role.as_str() {
                "Lärare" => "teacher",
                "Rektor" => "principal",
                _ => "staff",
            };
            if mentor.is_empty() {
                row(role, Some(unit), "", "", "");
            }
            for class in mentor {
                row(role, Some(unit), "", class, "");
            }
            any = true;
        }
        if !any {
            row("guardian", None, "", "", "");
        }
    }
    (out, rows)
}

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    let env_usize = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let persons = env_usize("PORTVAKT_BENCH_PERSONS", 100_000);
    let with_passwords = env_usize("PORTVAKT_BENCH_PASSWORDS", 2_000);
    let dbs = std::env::var("PORTVAKT_BENCH_DBS").unwrap_or_else(|_| "sqlite,postgres".into());
    let today = portvakt::directory::roles::day_of(portvakt::clock::Clock::system().now());
    let dir = tempfile::tempdir().expect("tempdir");
    let t = Instant::now();
    let data = generate(1, persons, today);
    let (text, rows) = to_csv(&data, None);
    let file = dir.path().join("people.csv");
    std::fs::write(&file, &text).expect("write the CSV");
    println!(
        "generated {persons} persons as {rows} CSV rows ({:.1} MB) in {:.1} s",
        text.len() as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    drop(text);
    let small = generate(2, with_passwords, today);
    let (text, _) = to_csv(&small, Some(with_passwords));
    let pw_file = dir.path().join("passwords.csv");
    std::fs::write(&pw_file, &text).expect("write the CSV");
    drop((data, small, text));

    for db in dbs.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let url = |name: &str, data_dir: &std::path::Path| match db {
            "sqlite" => format!(
                "sqlite://{}?mode=rwc",
                data_dir.join(format!("{name}.db")).display()
            ),
            "postgres" => pg_database(name),
            other => panic!("unknown database {other} in PORTVAKT_BENCH_DBS"),
        };
        let data_dir = tempfile::tempdir().expect("tempdir");
        let db_url = url("portvakt_bench_csv", data_dir.path());
        let first = import(&db_url, data_dir.path(), &file);
        println!(
            "{db:<8} CSV, first import:   {:>6.1} s  peak RSS {:>6.0} MB  {}",
            first.wall.as_secs_f64(),
            first.max_rss_mb,
            first.summary
        );
        let again = import(&db_url, data_dir.path(), &file);
        println!(
            "{db:<8} CSV, unchanged:      {:>6.1} s  peak RSS {:>6.0} MB  {}",
            again.wall.as_secs_f64(),
            again.max_rss_mb,
            again.summary
        );
        if with_passwords > 0 {
            let pw_url = url("portvakt_bench_csv_pw", data_dir.path());
            let pw = import(&pw_url, data_dir.path(), &pw_file);
            println!(
                "{db:<8} CSV, {with_passwords} with passwords: {:>6.1} s  peak RSS {:>6.0} MB  \
                 {:.0} passwords/s overall  {}",
                pw.wall.as_secs_f64(),
                pw.max_rss_mb,
                with_passwords as f64 / pw.wall.as_secs_f64(),
                pw.summary
            );
        }
    }
}
