//! A register pushing over EGIL SCIM: `PORTVAKT_BENCH_ONLY=scimpush cargo bench --bench load`.
//!
//! One `portvakt serve` process on loopback (SQLite in its data directory) with a push source;
//! an Organisation and a SchoolUnit, then `PORTVAKT_BENCH_SCIM_USERS` Users (default 10,000),
//! each enrolled at the unit, one POST each from 8 concurrent workers (as an EGIL client
//! with parallel requests would send them). Reports the time, requests/s, latencies, the
//! server's peak RSS and the push runs recorded. Only 127.0.0.1 is contacted.

use super::*;

const TOKEN: &str = "bench-push-token-0123456789abcdef0123456789";
const CONCURRENCY: usize = 8;

fn users() -> u64 {
    std::env::var("PORTVAKT_BENCH_SCIM_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| (1..=200_000).contains(n))
        .unwrap_or(10_000)
}

fn user(i: u64, unit: &str) -> String {
    serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:scim:schemas:extension:sis:school:1.0:User"],
        "externalId": format!("00000000-0000-4000-8000-{i:012}"),
        "userName": format!("p{i:07}@edu.bench.example"),
        "displayName": format!("Elev {i}"),
        "name": { "givenName": "Elev", "familyName": format!("Nummer{i}") },
        "urn:scim:schemas:extension:sis:school:1.0:User": {
            "enrolments": [{ "value": unit, "$ref": format!("SchoolUnits/{unit}"), "schoolYear": 1 + i % 9 }],
        },
    })
    .to_string()
}

pub(crate) async fn scim_push(s: &Settings) -> Res<()> {
    if s.caller_config {
        return Err("scimpush writes its own configuration; unset PORTVAKT_BENCH_CONFIG".into());
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let token = dir.path().join("push.token");
    std::fs::write(&token, TOKEN).map_err(|e| e.to_string())?;
    let config = dir.path().join("scimpush.toml");
    std::fs::write(
        &config,
        format!(
            "[sync.sources.egil]\nkind = \"scim\"\ntoken_file = \"{}\"\n",
            token.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let (server, _) = Server::serving(dir.path(), false, Some(&config))?;
    let base = format!("{}/scim/v2", server.base);
    let http = reqwest::Client::new();
    let post = |endpoint: &str, body: String| {
        http.post(format!("{base}/{endpoint}"))
            .bearer_auth(TOKEN)
            .header(CONTENT_TYPE, "application/scim+json")
            .body(body)
            .send()
    };
    let org = "10000000-0000-4000-8000-000000000001";
    let unit = "10000000-0000-4000-8000-000000000002";
    for (endpoint, body) in [
        (
            "Organisations",
            serde_json::json!({"schemas": ["urn:scim:schemas:extension:sis:school:1.0:Organisation"],
                "externalId": org, "displayName": "Bänkköpings kommun"}),
        ),
        (
            "SchoolUnits",
            serde_json::json!({"schemas": ["urn:scim:schemas:extension:sis:school:1.0:SchoolUnit"],
                "externalId": unit, "displayName": "Bänkskolan", "schoolUnitCode": "99990001",
                "organisation": {"value": org, "$ref": format!("Organisations/{org}")}}),
        ),
    ] {
        let r = post(endpoint, body.to_string())
            .await
            .map_err(err(endpoint))?;
        if r.status() != StatusCode::CREATED {
            return Err(format!("POST {endpoint}: {}", r.status()));
        }
    }
    let n = users();
    println!(
        "portvakt SCIM push: {n} Users, one POST each, concurrency {CONCURRENCY}, on `serve` \
         (SQLite); binary {BIN}"
    );
    reset_peak_rss(server.pid());
    let next = Arc::new(AtomicU64::new(0));
    let cpu = CpuMeter::start(server.pid());
    let t0 = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (next, http, base) = (next.clone(), http.clone(), base.clone());
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let start = Instant::now();
                let r = http
                    .post(format!("{base}/Users"))
                    .bearer_auth(TOKEN)
                    .header(CONTENT_TYPE, "application/scim+json")
                    .body(user(i, unit))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == StatusCode::CREATED => lat.push(start.elapsed()),
                    Ok(r) => errors.push(format!("{}", r.status())),
                    Err(e) => errors.push(e.to_string()),
                }
            }
            (lat, errors)
        }));
    }
    let mut lat = Vec::new();
    let mut errors = Vec::new();
    for w in workers {
        let (l, e) = w.await.map_err(|e| e.to_string())?;
        lat.extend(l);
        errors.extend(e);
    }
    let secs = t0.elapsed().as_secs_f64();
    let used = cpu.read();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len().max(1) - 1) as f64 * p).round() as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let peak = proc_status_kib(server.pid(), "VmHWM:").unwrap_or(0);
    let rss = proc_status_kib(server.pid(), "VmRSS:").unwrap_or(0);
    println!("\n## SCIM push (SQLite)\n");
    println!(
        "| users | c | seconds | requests/s | p50 ms | p99 ms | errors | server CPU (cores) | peak RSS MiB | RSS after MiB |"
    );
    println!("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    println!(
        "| {n} | {CONCURRENCY} | {secs:.1} | {:.0} | {} | {} | {} | {:.1} | {:.1} | {:.1} |",
        lat.len() as f64 / secs,
        fmt_ms(pct(0.5)),
        fmt_ms(pct(0.99)),
        errors.len(),
        used.server,
        peak as f64 / 1024.0,
        rss as f64 / 1024.0,
    );
    if let Some(e) = errors.first() {
        println!("first error: {e}");
    }
    // How the pushes were recorded.
    let out = with_config(portvakt(dir.path(), 0, false), &config)
        .args(["sync", "runs", "--json", "--limit", "1000"])
        .output()
        .map_err(|e| e.to_string())?;
    let runs: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
    println!("runs recorded: {}", runs.len());
    drop(server);
    Ok(())
}
