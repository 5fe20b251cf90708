//! Logins during a full sync: `PORTVAKT_BENCH_ONLY=synclogin cargo bench --bench load`.
//!
//! One `portvakt demo` process on loopback (SQLite in its data directory) and a simulated
//! register (`portvakt ss12000-mock`, `PORTVAKT_BENCH_SYNC_PERSONS` people, default
//! 100,000). One worker logs in with a password and exchanges the code, over and over
//! (closed loop, bounded by time): first for a baseline without a sync, then while a first
//! full `portvakt sync run` of the register writes into the same database as a separate
//! process. The sync's progress lines (stderr) say when its apply begins ("planned") and
//! ends; the login latencies of requests started inside the apply are compared with the
//! baseline (target, issue 16: p99 during the apply ≤ 2× p99 without a sync).
//! Only 127.0.0.1 is contacted.

use super::*;

/// People in the simulated register.
fn register_persons() -> String {
    std::env::var("PORTVAKT_BENCH_SYNC_PERSONS")
        .ok()
        .filter(|v| v.parse::<u32>().is_ok_and(|n| (1..=1_000_000).contains(&n)))
        .unwrap_or_else(|| "100000".into())
}

/// (start since t0, latency) of each completed login; errors counted.
#[derive(Default)]
struct Logins {
    done: Vec<(Duration, Duration)>,
    errors: u64,
    first_error: Option<String>,
}

/// Logs in with `user` until `stop` is set or `limit` passes.
async fn login_loop(
    ctx: Ctx,
    user: &'static str,
    t0: Instant,
    limit: Duration,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Logins {
    let mut out = Logins::default();
    while !stop.load(Ordering::Relaxed) && t0.elapsed() < limit {
        let start = Instant::now();
        let r = async {
            let (_, code) = password_login(&ctx, user).await?;
            exchange_code(&ctx, &code).await
        }
        .await;
        match r {
            Ok(_) => out.done.push((start - t0, start.elapsed())),
            Err(e) => {
                out.errors += 1;
                out.first_error.get_or_insert(e);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    out
}

fn percentile(lat: &mut [Duration], p: f64) -> f64 {
    lat.sort_unstable();
    lat.get(((lat.len().max(1) - 1) as f64 * p).round() as usize)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

pub(crate) async fn sync_logins(s: &Settings) -> Res<()> {
    if s.caller_config {
        return Err("synclogin writes its own configuration; unset PORTVAKT_BENCH_CONFIG".into());
    }
    let persons = register_persons();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    add_rp(dir.path())?;
    let (_register, register_url) = start_mock(dir.path(), &persons)?;
    let config = dir.path().join("synclogin.toml");
    // `PORTVAKT_BENCH_SYNC_CHUNK`: the sync's `[sync] chunk_size` (people per transaction,
    // and so how long a login may wait for the write lock); the server's default when unset.
    let chunk = std::env::var("PORTVAKT_BENCH_SYNC_CHUNK")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(String::new(), |n| format!("[sync]\nchunk_size = {n}\n"));
    std::fs::write(
        &config,
        format!("[throttle]\naddress_attempts = 1000000\n{chunk}"),
    )
    .map_err(|e| e.to_string())?;
    let (server, _) = Server::start_with(dir.path(), false, Some(&config))?;
    let ctx = Ctx::new(&server.base, 1)?;
    println!(
        "portvakt logins during a full sync: 1 login worker (password + code exchange), \
         a first full sync of {persons} people by `sync run` beside `demo` (SQLite); binary {BIN}"
    );
    // A demo pupil: one worker, so no second login ever waits on the account's hold.
    let user = "elev1001";
    // Warm-up, then the baseline.
    password_login(&ctx, user).await?;
    let base_dur = s.dur.max(Duration::from_secs(20));
    let no_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cpu = CpuMeter::start(server.pid());
    let baseline = login_loop(ctx.clone(), user, Instant::now(), base_dur, no_stop).await;
    let base_cpu = cpu.read();

    // The sync, as a separate process on the same database.
    let mut sync = Command::new(BIN);
    sync.current_dir(dir.path())
        .env("PORTVAKT_DATA_DIR", dir.path())
        .env("PORTVAKT_LOG", "warn")
        .env_remove("PORTVAKT_CONFIG")
        .env_remove("PORTVAKT_DATABASE_URL")
        .args(["--config"])
        .arg(&config)
        .args(["sync", "run", "--full", "--ss12000", &register_url])
        .args(["--username-context", "urn:portvakt:demo:username"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let t0 = Instant::now();
    let mut child = sync
        .spawn()
        .map_err(|e| format!("cannot start sync run: {e}"))?;
    let stderr = child.stderr.take().ok_or("no stderr of sync run")?;
    // (time since t0, line) of every progress line.
    let lines = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .map(|l| (t0.elapsed(), l))
            .collect::<Vec<_>>()
    });
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let worker = tokio::spawn(login_loop(
        ctx.clone(),
        user,
        t0,
        Duration::from_secs(1800),
        stop.clone(),
    ));
    let cpu = CpuMeter::start(server.pid());
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if t0.elapsed() > Duration::from_secs(1800) {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the sync did not finish within 30 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop.store(true, Ordering::Relaxed);
    let during = worker.await.map_err(|e| e.to_string())?;
    let used = cpu.read();
    let lines = lines.join().map_err(|_| "reading sync output failed")?;
    if !status.success() {
        let tail: Vec<&str> = lines
            .iter()
            .rev()
            .take(5)
            .map(|(_, l)| l.as_str())
            .collect();
        return Err(format!("sync run failed: {status}: {tail:?}"));
    }
    let at = |needle: &str| {
        lines
            .iter()
            .find(|(_, l)| l.contains(needle))
            .map(|(t, _)| *t)
    };
    let apply_start = at("] planned").ok_or("no \"planned\" line from sync run")?;
    let apply_end = at("applied duties and status changes").unwrap_or(t0.elapsed());

    let mut base: Vec<Duration> = baseline.done.iter().map(|(_, l)| *l).collect();
    let mut applying: Vec<Duration> = during
        .done
        .iter()
        .filter(|(st, _)| *st >= apply_start && *st < apply_end)
        .map(|(_, l)| *l)
        .collect();
    let (b50, b99) = (percentile(&mut base, 0.5), percentile(&mut base, 0.99));
    let (a50, a99) = (
        percentile(&mut applying, 0.5),
        percentile(&mut applying, 0.99),
    );
    let amax = percentile(&mut applying, 1.0);
    println!("\n## Logins during a full sync (SQLite)\n");
    println!("| logins | n | errors | p50 ms | p99 ms | max ms |\n|---|--:|--:|--:|--:|--:|");
    println!(
        "| without a sync | {} | {} | {} | {} | {} |",
        base.len(),
        baseline.errors,
        fmt_ms(b50),
        fmt_ms(b99),
        fmt_ms(percentile(&mut base, 1.0))
    );
    println!(
        "| during the apply ({:.1} s of {:.1} s) | {} | {} | {} | {} | {} |",
        (apply_end - apply_start).as_secs_f64(),
        t0.elapsed().as_secs_f64(),
        applying.len(),
        during.errors,
        fmt_ms(a50),
        fmt_ms(a99),
        fmt_ms(amax)
    );
    println!(
        "\n- p99 during the apply ÷ p99 without a sync: {:.2} (target ≤ 2)",
        a99 / b99.max(1e-9)
    );
    if let Some(e) = baseline.first_error.or(during.first_error) {
        println!("- first error: {e}");
    }
    println!(
        "- server CPU {:.0}% / {:.0}% of one core (baseline / during the sync), the rest of \
         the machine {:.0}% / {:.0}% (the sync process, the mock and other work)",
        base_cpu.server * 100.0,
        used.server * 100.0,
        base_cpu.other * 100.0,
        used.other * 100.0
    );
    drop(server);
    Ok(())
}
