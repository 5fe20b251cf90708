//! The Monday-morning storm: `PORTVAKT_BENCH_ONLY=storm cargo bench --bench load`.
//!
//! 2,000 distinct pupils (`PORTVAKT_STORM_PUPILS`) arrive spread evenly over 30 s
//! (`PORTVAKT_STORM_SECS`), each in a fresh browser: a password login through the school's
//! start page (an OIDC client: authorize, login page, POST, resume, code exchange), then the
//! three services of the first lesson by SSO: two SAML SPs (a signed Response each) and one
//! more OIDC client (authorize with the session, code exchange). Arrivals do not wait for
//! each other (an open loop), so a server that falls behind builds a queue instead of
//! slowing the pupils down. Reported: completions per second, p50/p99 of each step, errors
//! (target: none), the hashing queue's peak (sampled from /metrics every 50 ms) and the
//! server's peak memory.
//!
//! The pupils are written into the demo's database before the storm (one argon2id hash at
//! the server's parameters shared by all: the server's verification cost is the same). All
//! of them connect from 127.0.0.1, which here stands for every school of a municipality, so
//! the per-address login throttle is lifted; everything else is the demo's configuration.

use super::*;
use portvakt::authn::password::PasswordHasher;
use portvakt::directory::{self, NewPerson, Role};

/// The start page the pupils log in through, and the OIDC service they open by SSO.
const PORTAL: (&str, &str) = ("storm-portal", "storm-portal-secret-0123456789abcdef");
const APP: (&str, &str) = ("storm-app", "storm-app-secret-0123456789abcdef");
/// The second SAML SP (the first is the benchmark's `SP_ENTITY_ID`).
const SP_B: (&str, &str) = (
    "http://127.0.0.1:9/storm-sp-b",
    "http://127.0.0.1:9/storm-sp-b/acs",
);
const STEPS: [&str; 4] = [
    "password login (authorize, login page, POST, resume, code exchange)",
    "SAML SSO, SP A (signed Response)",
    "SAML SSO, SP B (signed Response)",
    "OIDC SSO (authorize with the session, code exchange)",
];
/// Every pupil is done by then, or counted as failed.
const GRACE: Duration = Duration::from_secs(120);

fn env_number(name: &str, default: f64, max: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| *v > 0.0 && *v <= max)
        .unwrap_or(default)
}

fn pupil(i: usize) -> String {
    format!("storm{i:05}")
}

/// Writes `n` pupils with the benchmark's password into the server's database.
async fn add_pupils(dir: &Path, n: usize) -> Res<()> {
    let url = format!("sqlite://{}?mode=rwc", dir.join("portvakt.db").display());
    let db = portvakt::storage::Db::connect(&url, 1)
        .await
        .map_err(|e| format!("open the demo database: {e}"))?;
    // The server's own defaults (`[password]`): the verification cost is what is measured.
    let hasher =
        PasswordHasher::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, 1, 1).map_err(|e| e.to_string())?;
    let hash = hasher
        .hash(PASSWORD.into())
        .await
        .map_err(|e| e.to_string())?;
    let student = Role::parse("student").map_err(|e| e.to_string())?;
    let now = portvakt::clock::Clock::system().now();
    let mut tx = db.begin().await.map_err(|e| e.to_string())?;
    for i in 0..n {
        let new = NewPerson {
            username: pupil(i),
            given_name: "Elev".into(),
            family_name: format!("Nummer {i}"),
            email: None,
            civic_no: None,
            protected_identity: false,
            roles: vec![student.clone()],
            source: "local".into(),
        };
        let person = directory::add_person_in(&mut tx, &new, "127.0.0.1", now)
            .await
            .map_err(|e| e.to_string())?;
        portvakt::storage::persons::set_password_hash_in(&mut tx, &person.id, &hash, now)
            .await
            .map_err(|e| e.to_string())?;
    }
    tx.commit().await.map_err(|e| e.to_string())
}

fn add_services(dir: &Path) -> Res<()> {
    add_rp_as(dir, PORTAL.0, PORTAL.1)?;
    add_rp_as(dir, APP.0, APP.1)?;
    add_sp(dir)?;
    add_sp_as(dir, SP_B.0, SP_B.1)
}

impl Ctx {
    /// The same connection pool, speaking as another registered OIDC client (of a `Ctx`
    /// made by `new`, which speaks as the benchmark's RP).
    fn as_client(&self, (id, secret): (&str, &str)) -> Ctx {
        let mut ctx = self.clone();
        ctx.authorize_url = self.authorize_url.replacen(RP_ID, id, 1).into();
        ctx.rp_basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
        .into();
        ctx
    }
}

/// Step latencies of all pupils, and who failed where.
#[derive(Default)]
struct Steps {
    lat_us: [Vec<u32>; 4],
    errors: [u64; 4],
    first_error: [Option<String>; 4],
    done: u64,
}

/// One pupil's morning. Returns each step's latency, or the step that failed and why.
async fn morning(portal: &Ctx, app: &Ctx, user: &str) -> Result<[u32; 4], (usize, String)> {
    let mut lat = [0u32; 4];
    let timed = |step: usize, t: Instant, lat: &mut [u32; 4]| {
        lat[step] = u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX);
    };
    let t = Instant::now();
    let (cookie, code) = password_login(portal, user).await.map_err(|e| (0, e))?;
    exchange_code(portal, &code).await.map_err(|e| (0, e))?;
    timed(0, t, &mut lat);
    let t = Instant::now();
    saml_sso(portal, &cookie).await.map_err(|e| (1, e))?;
    timed(1, t, &mut lat);
    let t = Instant::now();
    saml_sso_as(portal, &cookie, SP_B.0, SP_B.1)
        .await
        .map_err(|e| (2, e))?;
    timed(2, t, &mut lat);
    let t = Instant::now();
    let code = sso_authorize(app, &cookie).await.map_err(|e| (3, e))?;
    exchange_code(app, &code).await.map_err(|e| (3, e))?;
    timed(3, t, &mut lat);
    Ok(lat)
}

/// The hashing queue's depth from the server's /metrics.
async fn queue_depth(ctx: &Ctx) -> Option<u64> {
    let text = ctx
        .http
        .get(format!("{}/metrics", ctx.base))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("portvakt_password_hash_queue_depth "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

pub(crate) async fn storm(s: &Settings) -> Res<()> {
    if s.caller_config {
        return Err("the storm writes its own configuration; unset PORTVAKT_BENCH_CONFIG".into());
    }
    let pupils = env_number("PORTVAKT_STORM_PUPILS", 2000.0, 20_000.0) as usize;
    let window = Duration::from_secs_f64(env_number("PORTVAKT_STORM_SECS", 30.0, 600.0));
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    add_services(dir.path())?;
    let config = dir.path().join("storm.toml");
    std::fs::write(&config, "[throttle]\naddress_attempts = 1000000\n")
        .map_err(|e| e.to_string())?;
    // The demo seeds the directory once; the storm hits `serve`, as a municipality runs it.
    drop(Server::start(dir.path(), false)?);
    add_pupils(dir.path(), pupils).await?;
    let (server, _) = Server::serving(dir.path(), false, Some(&config))?;
    let pid = server.pid();
    println!(
        "portvakt storm: {pupils} pupils arriving over {:.0} s, each: password login, \
         2 SAML SSO, 1 OIDC SSO; binary {BIN}",
        window.as_secs_f64()
    );

    let ctx = Ctx::new(&server.base, 512)?;
    let (portal, app) = (ctx.as_client(PORTAL), ctx.as_client(APP));
    let peak_queue = Arc::new(AtomicU64::new(0));
    let sampler = tokio::spawn({
        let (ctx, peak) = (portal.clone(), peak_queue.clone());
        async move {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            loop {
                tick.tick().await;
                if let Some(d) = queue_depth(&ctx).await {
                    peak.fetch_max(d, Ordering::Relaxed);
                }
            }
        }
    });
    let rss_before = proc_status_kib(pid, "VmRSS").unwrap_or(0);
    let cpu = CpuMeter::start(pid);
    let t0 = tokio::time::Instant::now();
    let deadline = t0 + window + GRACE;
    let tasks: Vec<_> = (0..pupils)
        .map(|i| {
            let (portal, app) = (portal.clone(), app.clone());
            let start = t0 + window.mul_f64(i as f64 / pupils as f64);
            tokio::spawn(async move {
                tokio::time::sleep_until(start).await;
                let user = pupil(i);
                tokio::time::timeout_at(deadline, morning(&portal, &app, &user))
                    .await
                    .unwrap_or_else(|_| Err((0, "not done before the deadline".into())))
            })
        })
        .collect();
    let mut steps = Steps::default();
    for task in tasks {
        match task.await {
            Ok(Ok(lat)) => {
                steps.done += 1;
                for (all, l) in steps.lat_us.iter_mut().zip(lat) {
                    all.push(l);
                }
            }
            Ok(Err((step, e))) => {
                steps.errors[step] += 1;
                steps.first_error[step].get_or_insert(e);
            }
            Err(e) => {
                steps.errors[0] += 1;
                steps.first_error[0].get_or_insert(format!("task failed: {e}"));
            }
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let used = cpu.read();
    sampler.abort();
    let peak = proc_status_kib(pid, "VmHWM").unwrap_or(0);
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
    let errors_logged = log.lines().filter(|l| l.contains("ERROR")).count();

    println!("\n## Storm results\n");
    println!("| step | ok | errors | p50 ms | p99 ms | max ms |\n|---|--:|--:|--:|--:|--:|");
    for (i, name) in STEPS.iter().enumerate() {
        let lat = &mut steps.lat_us[i];
        lat.sort_unstable();
        println!(
            "| {name} | {} | {} | {} | {} | {} |",
            lat.len(),
            steps.errors[i],
            fmt_ms(percentile_ms(lat, 0.5)),
            fmt_ms(percentile_ms(lat, 0.99)),
            fmt_ms(percentile_ms(lat, 1.0))
        );
    }
    let mib = |k: u64| k as f64 / 1024.0;
    let errors: u64 = steps.errors.iter().sum();
    println!(
        "\n- {} of {pupils} pupils through all four steps in {wall:.1} s: {:.1} completions/s \
         (arrivals {:.1}/s); errors: {errors}",
        steps.done,
        steps.done as f64 / wall,
        pupils as f64 / window.as_secs_f64(),
    );
    for (name, e) in STEPS.iter().zip(&steps.first_error) {
        if let Some(e) = e {
            println!("- first error of {name}: {e}");
        }
    }
    println!(
        "- hashing queue peak (sampled every 50 ms): {}",
        peak_queue.load(Ordering::Relaxed)
    );
    println!(
        "- server RSS before the storm {:.1} MiB, peak (VmHWM) {:.1} MiB",
        mib(rss_before),
        mib(peak)
    );
    println!(
        "- server CPU {:.0}% of one core, this process {:.0}%, the rest of the machine {:.0}%",
        used.server * 100.0,
        used.bench * 100.0,
        used.other * 100.0
    );
    println!("- ERROR lines in the server log: {errors_logged}");
    drop(server);
    Ok(())
}
