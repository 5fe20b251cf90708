//! wrk (optional): the GET endpoints and client_credentials through a lean C client.

use super::*;

// ---------------------------------------------------------------------------------------
// wrk (optional)
// ---------------------------------------------------------------------------------------

pub(crate) struct WrkResult {
    pub(crate) rate: f64,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
}

pub(crate) fn wrk_available() -> bool {
    if std::env::var("PORTVAKT_BENCH_WRK").is_ok_and(|v| v == "0") {
        return false;
    }
    Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

pub(crate) fn parse_duration_ms(s: &str) -> f64 {
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let v: f64 = num.parse().unwrap_or(0.0);
    match unit {
        "us" => v / 1000.0,
        "ms" => v,
        "s" => v * 1000.0,
        "m" => v * 60_000.0,
        _ => v,
    }
}

/// Runs wrk for `secs` (bounded: killed if it overstays by 30 s) and parses its summary.
pub(crate) fn run_wrk(
    url: &str,
    concurrency: usize,
    secs: u64,
    script: Option<&Path>,
) -> Res<WrkResult> {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t2", &format!("-c{concurrency}"), &format!("-d{secs}s")])
        .args(["--timeout", "5s", "--latency"]);
    if let Some(s) = script {
        cmd.arg("-s").arg(s);
    }
    let mut child = cmd
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("wrk: {e}"))?;
    let limit = Instant::now() + Duration::from_secs(secs + 30);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < limit => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("wrk did not finish in time".into());
            }
        }
    }
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    let mut r = WrkResult {
        rate: 0.0,
        requests: 0,
        errors: 0,
        p50_ms: 0.0,
        p99_ms: 0.0,
    };
    for line in out.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            r.rate = v.trim().parse().unwrap_or(0.0);
        } else if line.contains(" requests in ") {
            r.requests = words.first().and_then(|v| v.parse().ok()).unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            r.errors += v.trim().parse::<u64>().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            r.errors += v
                .split(',')
                .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                .sum::<u64>();
        } else if words.len() == 2 && words[0] == "50%" {
            r.p50_ms = parse_duration_ms(words[1]);
        } else if words.len() == 2 && words[0] == "99%" {
            r.p99_ms = parse_duration_ms(words[1]);
        }
    }
    if r.requests == 0 {
        return Err(format!("wrk: no summary in output: {out}"));
    }
    Ok(r)
}
