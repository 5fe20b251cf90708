//! The soak: `PORTVAKT_BENCH_ONLY=soak cargo bench --bench load`.
//!
//! Ten minutes (`PORTVAKT_SOAK_SECS`, at most an hour) of mixed traffic against one
//! `portvakt demo` process on loopback, at about half of the capacity measured for the same
//! mix just before: SSO to the OIDC client (authorize with the SSO cookie, code exchange),
//! SSO to the SAML SP, rotating refreshes and new password logins, from 16 paced workers.
//! Beside it the server's own schedule syncs a simulated register (`portvakt ss12000-mock`,
//! 2,000 people) in full every two minutes. It reports errors (target: none), the server's
//! RSS at the start and the end (target: flat within 10%) and p50/p99 per kind of request.
//! Every request comes from 127.0.0.1, which stands for a whole municipality here, so the
//! per-address login throttle is lifted; everything else is the demo's configuration.

use super::*;

/// Workers; each paces itself to its share of the rate.
const WORKERS: usize = 16;
/// People in the simulated register.
const REGISTER_PERSONS: &str = "2000";
/// Seconds between RSS samples.
const SAMPLE_EVERY: u64 = 10;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Oidc,
    Saml,
    Refresh,
    Login,
}

const KINDS: [Kind; 4] = [Kind::Oidc, Kind::Saml, Kind::Refresh, Kind::Login];

impl Kind {
    /// The mix, per 20 operations: 8 OIDC SSO, 5 SAML SSO, 5 refreshes, 2 password logins.
    fn nth(n: u64) -> Kind {
        match n % 20 {
            0..8 => Kind::Oidc,
            8..13 => Kind::Saml,
            13..18 => Kind::Refresh,
            _ => Kind::Login,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Oidc => "OIDC SSO (authorize + code exchange)",
            Kind::Saml => "SAML SSO (signed Response)",
            Kind::Refresh => "refresh_token grant (rotating)",
            Kind::Login => "password login + code exchange",
        }
    }
}

/// One operation of `kind` for the browser `b`, which keeps its session and refresh chain.
async fn step(b: &mut Browser, kind: Kind, user: &str) -> Res<()> {
    match kind {
        Kind::Oidc => {
            let code = sso_authorize(&b.ctx, &b.cookie).await?;
            b.refresh = Some(exchange_code(&b.ctx, &code).await?);
        }
        Kind::Saml => saml_sso(&b.ctx, &b.cookie).await?,
        Kind::Refresh => {
            let token = b
                .refresh
                .take()
                .ok_or("no refresh token (an earlier error)")?;
            b.refresh = Some(refresh(&b.ctx, &token).await?);
        }
        Kind::Login => {
            let (cookie, code) = password_login(&b.ctx, user).await?;
            b.refresh = Some(exchange_code(&b.ctx, &code).await?);
            b.cookie = cookie;
        }
    }
    Ok(())
}

#[derive(Default)]
struct Tally {
    lat_us: [Vec<u32>; 4],
    errors: [u64; 4],
    first_error: Option<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        for i in 0..4 {
            self.lat_us[i].extend(&other.lat_us[i]);
            self.errors[i] += other.errors[i];
        }
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    fn ops(&self) -> u64 {
        self.lat_us.iter().map(|v| v.len() as u64).sum()
    }
}

/// Runs the workers for `dur`. With `rate` each worker paces itself to `rate / WORKERS`
/// operations a second (an operation that runs late starts the next at once, so latency is
/// measured, not hidden); without, they run flat out (the capacity probe).
async fn run_mix(
    browsers: Vec<Browser>,
    dur: Duration,
    rate: Option<f64>,
) -> (Tally, Vec<Browser>) {
    let t0 = tokio::time::Instant::now();
    let deadline = t0 + dur;
    let interval = rate.map(|r| Duration::from_secs_f64(WORKERS as f64 / r.max(0.1)));
    let handles: Vec<_> = browsers
        .into_iter()
        .enumerate()
        .map(|(i, mut b)| {
            tokio::spawn(async move {
                let mut tally = Tally::default();
                // Workers start spread over one interval and at different places in the mix.
                let mut next =
                    t0 + interval.map_or(Duration::ZERO, |d| d * i as u32 / WORKERS as u32);
                let mut n = (i as u64 * 7) % 20;
                while next < deadline {
                    if interval.is_some() {
                        tokio::time::sleep_until(next).await;
                    }
                    let kind = Kind::nth(n);
                    let user = soak_user(i);
                    let t = Instant::now();
                    let r = step(&mut b, kind, &user).await;
                    let k = KINDS.iter().position(|x| *x == kind).unwrap_or(0);
                    tally.lat_us[k].push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                    if let Err(e) = r {
                        tally.errors[k] += 1;
                        tally
                            .first_error
                            .get_or_insert(format!("{}: {e}", kind.name()));
                        if b.refresh.is_none() {
                            // Start the refresh chain again (the SSO session is still there).
                            if let Ok(code) = sso_authorize(&b.ctx, &b.cookie).await {
                                b.refresh = exchange_code(&b.ctx, &code).await.ok();
                            }
                        }
                    }
                    n += 1;
                    next = match interval {
                        Some(d) => next + d,
                        None => tokio::time::Instant::now(),
                    };
                }
                (tally, b)
            })
        })
        .collect();
    let mut tally = Tally::default();
    let mut out = Vec::new();
    for h in handles {
        match h.await {
            Ok((t, b)) => {
                tally.merge(t);
                out.push(b);
            }
            Err(e) => {
                tally.errors[0] += 1;
                tally
                    .first_error
                    .get_or_insert(format!("worker failed: {e}"));
            }
        }
    }
    (tally, out)
}

/// Worker `i`'s own account: a login holds its account while it hashes, so workers that
/// shared accounts would refuse each other (429).
fn soak_user(i: usize) -> String {
    format!("soak{i:02}")
}

fn add_users(dir: &Path) -> Res<()> {
    (0..WORKERS).try_for_each(|i| add_user(dir, &soak_user(i), None))
}

/// One logged-in browser per worker, each with its own account.
async fn soak_browsers(ctx: &Ctx) -> Res<Vec<Browser>> {
    let mut out = Vec::with_capacity(WORKERS);
    for i in 0..WORKERS {
        let (cookie, code) = password_login(ctx, &soak_user(i)).await?;
        let refresh = exchange_code(ctx, &code).await?;
        out.push(Browser {
            ctx: ctx.clone(),
            cookie,
            refresh: Some(refresh),
        });
    }
    Ok(out)
}

fn soak_secs() -> f64 {
    std::env::var("PORTVAKT_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| *v > 0.0 && *v <= 3600.0)
        .unwrap_or(600.0)
}

pub(crate) async fn soak(s: &Settings) -> Res<()> {
    if s.caller_config {
        return Err("the soak writes its own configuration; unset PORTVAKT_BENCH_CONFIG".into());
    }
    let secs = soak_secs();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    add_rp(dir.path())?;
    add_sp(dir.path())?;
    add_users(dir.path())?;
    let (_register, register_url) = start_mock(dir.path(), REGISTER_PERSONS)?;
    let config = dir.path().join("soak.toml");
    std::fs::write(
        &config,
        format!(
            "[sync.sources.register]\nbase_url = \"{register_url}\"\n\
             full_every = 120\nincremental_every = 0\n\
             [throttle]\naddress_attempts = 1000000\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    let (server, _) = Server::start_with(dir.path(), true, Some(&config))?;
    let pid = server.pid();
    println!(
        "portvakt soak: {secs:.0} s of mixed traffic at half the measured capacity, \
         a full sync of {REGISTER_PERSONS} people every two minutes; binary {BIN}"
    );

    let ctx = Ctx::new(&server.base, WORKERS)?;
    let browsers = soak_browsers(&ctx).await?;
    let probe = s.dur.max(Duration::from_secs(20));
    let (cap, browsers) = run_mix(browsers, probe, None).await;
    let capacity = cap.ops() as f64 / probe.as_secs_f64();
    let rate = capacity / 2.0;
    println!(
        "capacity of the mix with {WORKERS} workers: {capacity:.0} ops/s ({} errors); soaking at {rate:.0} ops/s",
        cap.errors.iter().sum::<u64>()
    );

    let rss = |key| proc_status_kib(pid, key).unwrap_or(0);
    let start_rss = rss("VmRSS");
    let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sampler = tokio::spawn({
        let samples = samples.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(SAMPLE_EVERY));
            loop {
                tick.tick().await;
                let rss = proc_status_kib(pid, "VmRSS").unwrap_or(0);
                samples.lock().map(|mut v| v.push(rss)).ok();
            }
        }
    });
    let cpu = CpuMeter::start(pid);
    let t0 = Instant::now();
    let (mut tally, _) = run_mix(browsers, Duration::from_secs_f64(secs), Some(rate)).await;
    let wall = t0.elapsed().as_secs_f64();
    let used = cpu.read();
    let end_rss = rss("VmRSS");
    let peak = rss("VmHWM");
    sampler.abort();

    let runs = std::process::Command::new(BIN)
        .current_dir(dir.path())
        .env("PORTVAKT_DATA_DIR", dir.path())
        .env_remove("PORTVAKT_CONFIG")
        .env_remove("PORTVAKT_DATABASE_URL")
        .args(["sync", "runs", "--limit", "1000", "--json"])
        .output()
        .map_err(|e| e.to_string())?;
    let runs: Vec<Value> = serde_json::from_slice(&runs.stdout).unwrap_or_default();
    let by_status = |st: &str| runs.iter().filter(|r| r["status"] == st).count();
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
    let count = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();

    println!("\n## Soak results\n");
    println!("| kind | ops | errors | p50 ms | p99 ms | max ms |\n|---|--:|--:|--:|--:|--:|");
    let mut errors = 0;
    for (i, kind) in KINDS.iter().enumerate() {
        let lat = &mut tally.lat_us[i];
        lat.sort_unstable();
        errors += tally.errors[i];
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            kind.name(),
            lat.len(),
            tally.errors[i],
            fmt_ms(percentile_ms(lat, 0.5)),
            fmt_ms(percentile_ms(lat, 0.99)),
            fmt_ms(percentile_ms(lat, 1.0))
        );
    }
    let mib = |k: u64| k as f64 / 1024.0;
    println!(
        "\n- {:.0} ops in {wall:.0} s ({:.1}/s, target {rate:.1}/s); errors: {errors}{}",
        tally.ops(),
        tally.ops() as f64 / wall,
        tally
            .first_error
            .as_deref()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
    println!(
        "- server RSS: start {:.1} MiB, end {:.1} MiB ({:+.1}%), peak (VmHWM) {:.1} MiB",
        mib(start_rss),
        mib(end_rss),
        (end_rss as f64 / start_rss.max(1) as f64 - 1.0) * 100.0,
        mib(peak)
    );
    let samples = samples.lock().map(|v| v.clone()).unwrap_or_default();
    let line: Vec<String> = samples.iter().map(|k| format!("{:.0}", mib(*k))).collect();
    println!("- RSS every {SAMPLE_EVERY} s (MiB): {}", line.join(" "));
    println!(
        "- server CPU {:.0}% of one core, this process {:.0}%, the rest of the machine {:.0}%",
        used.server * 100.0,
        used.bench * 100.0,
        used.other * 100.0
    );
    println!(
        "- sync runs: {} ({} applied, {} failed, {} held)",
        runs.len(),
        by_status("applied"),
        by_status("failed"),
        by_status("held")
    );
    println!(
        "- server log: {} ERROR lines, {} WARN lines, {} mention \"database is locked\"",
        count("ERROR"),
        count("WARN"),
        count("database is locked")
    );
    drop(server);
    Ok(())
}
