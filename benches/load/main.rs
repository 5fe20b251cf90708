//! Load benchmark of the real server: `cargo bench --bench load`.
//!
//! Spawns the release binary as a separate process on a free loopback port with a temporary
//! data directory (`portvakt demo` once to seed it, then `portvakt serve`), registers two
//! clients and a SAML SP with the CLI, and measures:
//!
//! 1. process start to the first successful discovery response (median of 3 starts, cold
//!    and warm data directory);
//! 2. idle RSS after start and peak RSS (VmHWM) after all load;
//! 3. discovery and JWKS requests/s at concurrency 16 and 64;
//! 4. client_credentials grants/s at concurrency 16 and 64;
//! 5. refresh_token grants/s (each worker chains its own single-use, rotating token);
//! 6. complete code flows/s with an SSO session (authorize → 303 with code → token);
//! 7. password logins/s against the raw argon2id rate at the same parameters on 2 threads,
//!    and (group `flow`) full code flows with a fresh login at argon2's smallest parameters,
//!    on a server of their own;
//! 8. SAML metadata (`GET /saml/metadata`) requests/s at concurrency 16 and 64;
//! 9. SAML SSO round trips/s with a live SSO session at concurrency 1, 8 and 32: a fresh
//!    unsigned AuthnRequest (HTTP-Redirect binding, unique ID) from a registered SP with the
//!    SSO cookie → 200 with the POST form holding a signed Response (one RSA-2048 signature:
//!    the assertion's), beside the raw RSA-2048 SHA-256 signature rate of openssl on 2
//!    threads measured just before and after (target: SSO ≥ 60% of the raw rate), and
//!    once more with the key decoded from DER per signature, as libxmlsec1 does in the server;
//! 10. the cost of the access log (one server with `PORTVAKT_LOG=warn`, one at `info`).
//!
//! The load generator is reqwest with one shared client per measurement and N tokio tasks
//! looping until a deadline or a request cap. When `wrk` is on the PATH it also measures
//! the GET endpoints (metadata too) and client_credentials with it (a lean C client, for
//! comparison). Only loopback addresses are ever contacted; the registered redirect URI is
//! never followed (the Location header is read instead), nor is the SP's ACS (the form is read).
//!
//! Environment: `PORTVAKT_BENCH_SECS` (seconds per measurement, default 5),
//! `PORTVAKT_BENCH_WRK=0` to skip wrk even when it is installed, `PORTVAKT_BENCH_ONLY=a,b`
//! to run only some groups (get, cc, wrk, refresh, code, flow, md, saml, login, log; `md` runs
//! wrk on the metadata too unless `PORTVAKT_BENCH_WRK=0`),
//! `PORTVAKT_BENCH_CONFIG=FILE` to start the server (and the CLI) with `--config FILE`
//! (relative paths are resolved from the temporary data directory; give an absolute one),
//! `PORTVAKT_BENCH_LOGIN_C` for the concurrency of password logins (default 8).
//!
//! `PORTVAKT_BENCH_ONLY=soak` runs the soak instead (benches/load/soak.rs): ten minutes of
//! mixed traffic at half the measured capacity with a sync every two minutes.
//! `PORTVAKT_BENCH_ONLY=storm` runs the Monday-morning storm (benches/load/storm.rs): 2,000
//! pupils log in with passwords within 30 s and each opens two SAML and one OIDC service.
//! `PORTVAKT_BENCH_ONLY=synclogin` measures password logins during a full sync
//! (benches/load/sync_logins.rs; `PORTVAKT_BENCH_SYNC_PERSONS`, default 100,000, and
//! `PORTVAKT_BENCH_SYNC_CHUNK`, the sync's `[sync] chunk_size`).
//! `PORTVAKT_BENCH_ONLY=scimpush` pushes `PORTVAKT_BENCH_SCIM_USERS` (default 10,000) EGIL
//! SCIM Users, one POST each at concurrency 8 (benches/load/scim_push.rs).
//! See docs/benchmarks.md for results.

use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use serde_json::Value;
use std::fs::File;
use std::future::Future;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod argon2id;
mod driver;
mod http;
mod report;
mod saml;
mod scenarios;
mod scim_push;
mod server;
mod soak;
mod storm;
mod sync_logins;
mod wrk;

use argon2id::*;
use driver::*;
use http::*;
use report::*;
use saml::*;
use scenarios::*;
use scim_push::*;
use server::*;
use soak::*;
use storm::*;
use sync_logins::*;
use wrk::*;

const BIN: &str = env!("CARGO_BIN_EXE_portvakt");
const PASSWORD: &str = "sommarlov";
const CC_ID: &str = "bench-cc";
const CC_SECRET: &str = "bench-cc-secret-0123456789abcdef";
const RP_ID: &str = "bench-rp";
const RP_SECRET: &str = "bench-rp-secret-0123456789abcdef";
/// Never contacted: the benchmark reads the Location header instead of following it.
const REDIRECT_URI: &str = "http://127.0.0.1:9/cb";
const DISCOVERY: &str = "/.well-known/openid-configuration";
const JWKS: &str = "/oidc/jwks";
const TOKEN: &str = "/oidc/token";
const AUTHORIZE: &str = "/oidc/authorize";
const LOGIN: &str = "/login";
const SSO_COOKIE: &str = "portvakt_sso";
const FORM: &str = "application/x-www-form-urlencoded";
const CC_BODY: &str = "grant_type=client_credentials&scope=school";
/// Hard cap of operations per measurement, besides the time limit.
const OP_CAP: u64 = 2_000_000;
/// The server's default argon2id parameters (src/config.rs `PasswordConfig`).
const ARGON2_M_KIB: u32 = 19_456;
const ARGON2_T: u32 = 2;
const ARGON2_P: u32 = 1;
/// Clock ticks per second of the times in /proc (USER_HZ, 100 on Linux).
const CLK_TCK: f64 = 100.0;
/// The benchmark's SAML SP (registered with `portvakt sp add`); like the OIDC redirect URI,
/// its ACS is never contacted: the POST form is read instead.
const SP_ENTITY_ID: &str = "http://127.0.0.1:9/bench-sp";
const SP_ACS: &str = "http://127.0.0.1:9/bench-sp/acs";
const SAML_SSO: &str = "/saml/sso";
const SAML_METADATA: &str = "/saml/metadata";
/// What the SSO step signs per round trip: the assertion (the SP is registered without
/// `--sign-response`), so one RSA-2048 signature per SAML Response.
const SAML_SIGNATURES_PER_SSO: f64 = 1.0;
/// Bytes signed per raw signature: about the size of a canonical SignedInfo.
const RAW_SIGN_BYTES: usize = 300;

type Res<T> = Result<T, String>;

fn err(context: &str) -> impl FnOnce(reqwest::Error) -> String + '_ {
    move |e| format!("{context}: {e}")
}

// ---------------------------------------------------------------------------------------
// The benchmark
// ---------------------------------------------------------------------------------------

struct Settings {
    dur: Duration,
    wrk: bool,
    /// `PORTVAKT_BENCH_ONLY`: groups to run (get, cc, wrk, refresh, code, md, saml, login,
    /// log); all when unset. Start time and memory are always measured.
    only: Option<Vec<String>>,
    /// The caller named a configuration (`PORTVAKT_BENCH_CONFIG`); the scenarios that
    /// write their own (soak, storm, synclogin) refuse to run then.
    caller_config: bool,
}

impl Settings {
    /// A scenario that runs on its own server when named (soak, storm), never with "all".
    fn want_only(&self, group: &str) -> bool {
        self.only
            .as_ref()
            .is_some_and(|o| o.iter().any(|g| g == group))
    }

    fn want(&self, group: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|g| g == group))
    }
}

async fn bench(s: Settings) -> Res<()> {
    if s.want_only("soak") {
        return soak(&s).await;
    }
    if s.want_only("storm") {
        return storm(&s).await;
    }
    if s.want_only("scimpush") {
        return scim_push(&s).await;
    }
    if s.want_only("synclogin") {
        return sync_logins(&s).await;
    }
    let mut report = Report::default();
    println!(
        "portvakt load benchmark: binary {BIN}\n  {} s per measurement, wrk {}",
        s.dur.as_secs_f64(),
        if s.wrk { "on" } else { "off" }
    );

    // 1. Start time: cold (empty data directory: migrations, keys, demo seeding with
    //    8 argon2 hashes) and warm (existing data directory).
    let mut cold = Vec::new();
    for _ in 0..3 {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let (server, d) = Server::start(dir.path(), false)?;
        drop(server);
        cold.push(d);
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    add_client(
        dir.path(),
        CC_ID,
        CC_SECRET,
        &["--grant", "client_credentials", "--scope", "school"],
    )?;
    add_rp(dir.path())?;
    add_sp(dir.path())?;
    add_bench_users(dir.path(), BENCH_USERS, None)?;
    drop(Server::start(dir.path(), false)?); // seeds the demo municipality
    let mut warm = Vec::new();
    let mut main = None;
    for i in 0..3 {
        let (server, d) = Server::serving(dir.path(), false, None)?;
        warm.push(d);
        if i == 2 {
            main = Some(server);
        }
    }
    let server = main.ok_or("no server")?;
    let (cold_ms, warm_ms) = (ms(median(cold.clone())), ms(median(warm.clone())));
    println!(
        "start to first discovery: cold {cold_ms:.0} ms (runs {:?}), warm {warm_ms:.0} ms (runs {:?})",
        cold.iter().map(|d| ms(*d).round()).collect::<Vec<_>>(),
        warm.iter().map(|d| ms(*d).round()).collect::<Vec<_>>()
    );

    // 2. Idle memory.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = proc_status_kib(server.pid(), "VmRSS").unwrap_or(0);
    println!("idle RSS after start: {:.1} MiB", idle_rss as f64 / 1024.0);

    // 3-9.
    load(&server, &s, &mut report, false).await?;
    // Each measurement starts the kernel's peak over: the peak of all load is the highest
    // of this server's measurements.
    let peak = report
        .rows
        .iter()
        .filter_map(|r| r.peak_rss_kib)
        .filter(|&(_, pid)| pid == server.pid())
        .map(|(kib, _)| kib)
        .chain(proc_status_kib(server.pid(), "VmHWM"))
        .max()
        .unwrap_or(0);
    let end_rss = proc_status_kib(server.pid(), "VmRSS").unwrap_or(0);
    println!(
        "peak RSS (VmHWM) after all load: {:.1} MiB; RSS now {:.1} MiB",
        peak as f64 / 1024.0,
        end_rss as f64 / 1024.0
    );
    drop(server);

    // 10. The access log: the same data directory, log level info (one line per request).
    let mut with_log = Report::default();
    if s.want("log") {
        let (logged, _) = Server::serving(dir.path(), true, None)?;
        println!("with the access log (PORTVAKT_LOG=info, stderr to a file):");
        let quick = Settings {
            dur: s.dur,
            wrk: false,
            only: None,
            caller_config: s.caller_config,
        };
        load(&logged, &quick, &mut with_log, true).await?;
        drop(logged);
    }
    for mut r in with_log.rows {
        r.what = format!("{} + access log", r.what);
        report.rows.push(r);
    }
    report.notes.extend(with_log.notes);
    let log_bytes = std::fs::metadata(dir.path().join("server.log")).map_or(0, |m| m.len());

    println!("\n## Results");
    println!("\n| start / memory | value |\n|---|--:|");
    println!("| start → first discovery, cold data dir (median of 3) | {cold_ms:.0} ms |");
    println!("| start → first discovery, warm data dir (median of 3) | {warm_ms:.0} ms |");
    println!(
        "| idle RSS after start | {:.1} MiB |",
        idle_rss as f64 / 1024.0
    );
    println!(
        "| peak RSS (VmHWM) after all load | {:.1} MiB |",
        peak as f64 / 1024.0
    );
    println!(
        "| RSS after all load | {:.1} MiB |",
        end_rss as f64 / 1024.0
    );
    report.table();
    println!(
        "- server log (access log run included): {:.1} MiB",
        log_bytes as f64 / 1048576.0
    );
    let errors = std::fs::read_to_string(dir.path().join("server.log"))
        .map(|t| t.lines().filter(|l| l.contains("ERROR")).count())
        .unwrap_or(0);
    println!("- ERROR lines in the server log: {errors}");
    Ok(())
}

fn main() {
    // Without a configuration of the caller's, the server gets `DEFAULT_CONFIG`; set here,
    // before any thread exists, so `portvakt()` finds it like a caller's.
    let default_config = tempfile::NamedTempFile::new()
        .and_then(|mut f| f.write_all(DEFAULT_CONFIG.as_bytes()).map(|_| f));
    let caller_config = std::env::var_os("PORTVAKT_BENCH_CONFIG").is_some_and(|v| !v.is_empty());
    if !caller_config && let Ok(f) = &default_config {
        // SAFETY: single-threaded here (the runtime starts below), so nothing reads the
        // environment concurrently.
        unsafe { std::env::set_var("PORTVAKT_BENCH_CONFIG", f.path()) };
    }
    // cargo passes `--bench`; there are no options besides the environment.
    let secs = std::env::var("PORTVAKT_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| *v > 0.0 && *v <= 600.0)
        .unwrap_or(5.0);
    let settings = Settings {
        dur: Duration::from_secs_f64(secs),
        wrk: wrk_available(),
        only: std::env::var("PORTVAKT_BENCH_ONLY")
            .ok()
            .map(|v| v.split(',').map(|g| g.trim().to_string()).collect()),
        caller_config,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start tokio: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(bench(settings)) {
        eprintln!("benchmark failed: {e}");
        std::process::exit(1);
    }
}
