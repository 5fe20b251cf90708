//! The admin UI's people search at 500,000 people: `cargo bench --bench people_search`.
//!
//! Fills a fresh SQLite file and a fresh PostgreSQL database with synthetic people (bulk
//! multi-row INSERTs in one transaction; Swedish names with å, ä, ö, é, search keys made by
//! `directory::ident::search_name` as the sync makes them), pupils enrolled at 200 school
//! units in classes of 25, then times 50 searches through `storage::person_search::find`
//! (the function behind /admin/people) and prints p50, p99 and the slowest.
//!
//! Making the sync benchmark's municipality takes minutes per engine (docs/benchmarks.md,
//! "Sync"); the search only reads persons, enrolments and group_members, so these rows stand
//! in for it. Environment: `PORTVAKT_BENCH_PERSONS` (default 500,000),
//! `PORTVAKT_BENCH_DBS=sqlite,postgres` (default both), `PORTVAKT_TEST_PG_URL` (default
//! postgres://postgres:postgres@127.0.0.1:5432/test; a database `people_search_bench` is
//! created beside it).

use portvakt::directory::ident;
use portvakt::sim::ss12000::generate;
use portvakt::storage::Db;
use portvakt::storage::person_search::{PersonQuery, find};
use std::time::{Duration, Instant};

/// The generator's names, and a few with other diacritics the search folds.
const GIVEN: &[&str] = generate::GIVEN_NAMES;
const MORE_GIVEN: &[&str] = &["Renée", "Zoë", "Søren", "Jürgen"];
const FAMILY: &[&str] = generate::FAMILY_NAMES;
/// Family names beyond the common ones: two parts, so most names are rare, as in a town.
const PARTS: &[&str] = &[
    "Ek", "Berg", "Lind", "Holm", "Sjö", "Ström", "Å", "Gran", "Löv", "Fors", "Dahl", "Näs", "Hög",
    "Mal", "Björk", "Sten", "Ås", "Kvist", "Lund", "Vik", "Brand", "Hed", "Ör", "Mo",
];
const UNITS: usize = 200;

fn family(i: usize, r: u64) -> String {
    if i.is_multiple_of(2) {
        FAMILY[(r % FAMILY.len() as u64) as usize].to_string()
    } else {
        let a = PARTS[(r % PARTS.len() as u64) as usize];
        let b = PARTS[((r >> 8) % PARTS.len() as u64) as usize].to_lowercase();
        let c = ["", "en", "ér", "man", "ling"][((r >> 16) % 5) as usize];
        format!("{a}{b}{c}")
    }
}

/// A small deterministic generator (splitmix64): the same people on every run.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

async fn exec(
    pool: &sqlx::AnyPool,
    conn: &mut sqlx::AnyConnection,
    sql: String,
    binds: Vec<String>,
) {
    let _ = pool;
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = q.bind(b);
    }
    q.execute(&mut *conn).await.expect("bulk insert");
}

/// `($1,…,$cols, extra…),(…)` for `rows` rows; `extra(r)` adds literal numbers of row r.
fn placeholders(rows: usize, cols: usize, extra: impl Fn(usize) -> String) -> String {
    (0..rows)
        .map(|r| {
            let v: Vec<String> = (1..=cols).map(|c| format!("${}", r * cols + c)).collect();
            format!("({}{})", v.join(","), extra(r))
        })
        .collect::<Vec<_>>()
        .join(",")
}

async fn fill(url: &str, n: usize) -> Db {
    let db = Db::connect(url, 4).await.expect("connect");
    db.migrate().await.expect("migrate");
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.expect("pool");
    let mut tx = pool.begin().await.expect("begin");
    let start = Instant::now();
    for u in 0..UNITS {
        let code = format!("SU{u:04}");
        exec(
            &pool,
            &mut tx,
            "INSERT INTO school_units (code, name, source) VALUES ($1, $2, 'bench')".into(),
            vec![code.clone(), format!("Skola {u}")],
        )
        .await;
    }
    // 9 bound columns × 36 rows: SQLite finds `$N` by a linear scan, so statements stay small.
    const ROWS: usize = 36;
    let mut i = 0;
    while i < n {
        let end = (i + ROWS).min(n);
        let mut binds = Vec::with_capacity((end - i) * 9);
        let mut protected = Vec::with_capacity(end - i);
        for k in i..end {
            let r = mix(k as u64);
            let g = (r % (GIVEN.len() + MORE_GIVEN.len()) as u64) as usize;
            let given = GIVEN.get(g).unwrap_or_else(|| &MORE_GIVEN[g - GIVEN.len()]);
            let fam = family(k, r >> 12);
            binds.extend([
                format!("p{k:07}"),
                format!("u{k:07}"),
                format!("e{k:07}@bench.example"),
                given.to_string(),
                fam.clone(),
                format!("x{k}"),
                ident::search_name(given, &fam),
                "bench".into(),
                "active".into(),
            ]);
            protected.push(u8::from((r >> 40).is_multiple_of(1000)));
        }
        let sql = format!(
            "INSERT INTO persons (id, username, eppn, given_name, family_name, external_id, \
             search_name, source, status, protected_identity, created_at, updated_at) \
             VALUES {}",
            placeholders(end - i, 9, |r| format!(",{},0,0", protected[r]))
        );
        exec(&pool, &mut tx, sql, binds).await;
        i = end;
    }
    // 45% pupils: enrolled at a unit, in a class of 25 there.
    let pupils: Vec<usize> = (0..n).filter(|k| mix(*k as u64 ^ 7) % 100 < 45).collect();
    let classes = pupils.len().div_ceil(25);
    for c in 0..classes {
        let unit = c % UNITS;
        exec(&pool, &mut tx, "INSERT INTO school_groups (id, school_unit_code, name, kind, source) VALUES ($1, $2, $3, 'class', 'bench')".into(), vec![format!("g{c:06}"), format!("SU{unit:04}"), format!("{}{}", 1 + c % 9, ["A", "B", "C"][c % 3])]).await;
    }
    for (chunk_no, chunk) in pupils.chunks(ROWS).enumerate() {
        let mut e = Vec::new();
        let mut m = Vec::new();
        for (j, k) in chunk.iter().enumerate() {
            let c = (chunk_no * ROWS + j) / 25;
            e.extend([format!("p{k:07}"), format!("SU{:04}", c % UNITS)]);
            m.extend([format!("g{c:06}"), format!("p{k:07}")]);
        }
        let rows = chunk.len();
        exec(
            &pool,
            &mut tx,
            format!(
                "INSERT INTO enrolments (person_id, school_unit_code, seq) VALUES {}",
                placeholders(rows, 2, |_| ",0".into())
            ),
            e,
        )
        .await;
        exec(
            &pool,
            &mut tx,
            format!(
                "INSERT INTO group_members (group_id, person_id) VALUES {}",
                placeholders(rows, 2, |_| String::new())
            ),
            m,
        )
        .await;
    }
    tx.commit().await.expect("commit");
    let analyze = "ANALYZE";
    sqlx::query(analyze).execute(&pool).await.expect("analyze");
    pool.close().await;
    eprintln!(
        "  filled {n} people in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    db
}

/// The 50 searches: common and rare names, folded or not, words in either order, a
/// username prefix, and names within a school unit or a class.
fn searches() -> Vec<(String, Option<String>, Option<String>)> {
    let mut v: Vec<(String, Option<String>, Option<String>)> = Vec::new();
    for t in [
        "asa oberg",
        "Åsa Öberg",
        "oberg asa",
        "märta",
        "linnea",
        "renee",
        "zoe",
        "soren",
        "jurgen",
        "Ängström",
        "karin sjöberg",
        "ek",
        "holmberg",
        "björn lindqvist",
        "lovisa nyström",
        "sölve",
        "orjan bäckström",
        "sandberg",
        "agnes",
        "stenlund",
        "åsa åslöv",
        "hedmoman",
        "mo",
        "kvistvik",
        "olle persson",
        "u00123",
        "u0420000",
        "e",
        "nobody here",
        "xyz",
        "gran",
        "Göran Hägglund",
        "tove forsberg",
        "lövdahlen",
        "nils",
        "brandhed",
        "å",
        "axel ekström",
        "viktor",
        "Malbjörk",
    ] {
        v.push((t.to_string(), None, None));
    }
    for (t, unit) in [
        ("asa", "SU0007"),
        ("berg", "SU0100"),
        ("", "SU0150"),
        ("karin", "SU0001"),
        ("oberg", "SU0199"),
    ] {
        v.push((t.to_string(), Some(unit.to_string()), None));
    }
    for (t, class) in [
        ("", "g000010"),
        ("a", "g001000"),
        ("", "g002500"),
        ("e", "g000300"),
        ("", "g004000"),
    ] {
        v.push((t.to_string(), None, Some(class.to_string())));
    }
    v
}

async fn measure(db: &Db, label: &str) {
    let mut times: Vec<(Duration, String, usize)> = Vec::new();
    // One warm-up pass: the figures are for a running server, not a cold page cache.
    for (round, _) in [(), ()].iter().enumerate() {
        for (text, unit, class) in searches() {
            let q = PersonQuery {
                words: ident::search_words(&text),
                username: Some(text.trim().to_lowercase()).filter(|u| !u.contains(' ')),
                username_prefix: true,
                school_unit: unit,
                group: class,
                include_protected: false,
                by_username: false,
                limit: 101,
            };
            let start = Instant::now();
            let found = find(db, &q).await.expect("search");
            let took = start.elapsed();
            if round == 1 {
                times.push((took, text, found.len()));
            }
        }
    }
    times.sort_by_key(|t| t.0);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1].0;
    let slowest = times.last().unwrap();
    println!(
        "{label}: {} searches: p50 {:.1} ms, p99 {:.1} ms, slowest {:.1} ms ({:?}, {} found)",
        times.len(),
        ms(p(0.5)),
        ms(p(0.99)),
        ms(slowest.0),
        slowest.1,
        slowest.2
    );
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("PORTVAKT_BENCH_PERSONS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(500_000);
    let dbs = std::env::var("PORTVAKT_BENCH_DBS").unwrap_or_else(|_| "sqlite,postgres".into());
    if dbs.contains("sqlite") {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/bench.db?mode=rwc", dir.path().display());
        eprintln!("SQLite, {n} people");
        let db = fill(&url, n).await;
        measure(&db, "SQLite").await;
        db.close().await;
    }
    if dbs.contains("postgres") {
        let base = std::env::var("PORTVAKT_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/test".into());
        sqlx::any::install_default_drivers();
        let admin = sqlx::AnyPool::connect(&base).await.expect("postgres");
        let name = "people_search_bench";
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}"
        )))
        .execute(&admin)
        .await;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("create database");
        let url = format!("{}/{name}", base.rsplit_once('/').expect("db url").0);
        eprintln!("PostgreSQL, {n} people");
        let db = fill(&url, n).await;
        measure(&db, "PostgreSQL").await;
        db.close().await;
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
            .execute(&admin)
            .await;
    }
}
