//! The load driver: N tokio tasks stepping until a deadline or a request cap, and one
//! measurement's counts, latencies and CPU.

use super::*;

// ---------------------------------------------------------------------------------------
// The load driver
// ---------------------------------------------------------------------------------------

#[derive(Default)]
pub(crate) struct Run {
    pub(crate) ok: u64,
    pub(crate) errors: u64,
    pub(crate) secs: f64,
    pub(crate) lat_us: Vec<u32>,
    pub(crate) first_error: Option<String>,
    pub(crate) cpu: Cpu,
    /// The server's peak RSS (KiB) during this measurement, its warm-up included.
    pub(crate) peak_rss_kib: u64,
    /// Which server process was measured.
    pub(crate) server_pid: u32,
}

impl Run {
    pub(crate) fn rate(&self) -> f64 {
        self.ok as f64 / self.secs.max(1e-9)
    }
    pub(crate) fn percentile_ms(&mut self, p: f64) -> f64 {
        if self.lat_us.is_empty() {
            return 0.0;
        }
        self.lat_us.sort_unstable();
        let i = ((self.lat_us.len() - 1) as f64 * p).round() as usize;
        f64::from(self.lat_us[i]) / 1000.0
    }
}

/// Runs one task per state, each calling `step` in a loop until `dur` has passed or `OP_CAP`
/// operations were started in all. Returns the counts and the states (for chained work).
pub(crate) async fn drive<S, F, Fut>(
    server_pid: u32,
    dur: Duration,
    states: Vec<S>,
    step: F,
) -> (Run, Vec<S>)
where
    S: Send + 'static,
    F: Fn(S) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (S, Res<()>)> + Send + 'static,
{
    let step = Arc::new(step);
    let started = Arc::new(AtomicU64::new(0));
    let cpu = CpuMeter::start(server_pid);
    let t0 = tokio::time::Instant::now();
    let deadline = t0 + dur;
    let handles: Vec<_> = states
        .into_iter()
        .map(|mut s| {
            let step = step.clone();
            let started = started.clone();
            tokio::spawn(async move {
                let (mut ok, mut errors, mut lat, mut first) = (0u64, 0u64, Vec::new(), None);
                while tokio::time::Instant::now() < deadline
                    && started.fetch_add(1, Ordering::Relaxed) < OP_CAP
                {
                    let t = Instant::now();
                    let (next, r) = step(s).await;
                    s = next;
                    lat.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                    match r {
                        Ok(()) => ok += 1,
                        Err(e) => {
                            errors += 1;
                            first.get_or_insert(e);
                        }
                    }
                }
                (s, ok, errors, lat, first)
            })
        })
        .collect();
    let mut run = Run::default();
    let mut states = Vec::new();
    // Requests time out after 10 s, so a worker ends well within this bound.
    let hard_stop = deadline + Duration::from_secs(60);
    for h in handles {
        let abort = h.abort_handle();
        match tokio::time::timeout_at(hard_stop, h).await {
            Ok(Ok((s, ok, errors, lat, first))) => {
                states.push(s);
                run.ok += ok;
                run.errors += errors;
                run.lat_us.extend(lat);
                if run.first_error.is_none() {
                    run.first_error = first;
                }
            }
            Ok(Err(e)) => run.first_error = Some(format!("worker failed: {e}")),
            Err(_) => {
                abort.abort();
                run.first_error = Some("worker did not stop in time".into());
            }
        }
    }
    run.secs = t0.elapsed().as_secs_f64();
    run.cpu = cpu.read();
    (run, states)
}

/// Warm-up (half a second, not counted), then the measurement.
pub(crate) async fn measure<S, F, Fut>(
    server_pid: u32,
    dur: Duration,
    states: Vec<S>,
    step: F,
) -> (Run, Vec<S>)
where
    S: Send + 'static,
    F: Fn(S) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = (S, Res<()>)> + Send + 'static,
{
    let workers = states.len();
    super::server::reset_peak_rss(server_pid);
    let (warm, states) = drive(server_pid, Duration::from_millis(500), states, step.clone()).await;
    let lost = workers - states.len();
    let (mut run, states) = drive(server_pid, dur, states, step).await;
    if lost > 0 {
        run.errors += lost as u64;
        run.first_error = Some(format!(
            "{lost} of {workers} workers lost in the warm-up: {}",
            warm.first_error.unwrap_or_default()
        ));
    }
    run.peak_rss_kib = super::server::proc_status_kib(server_pid, "VmHWM").unwrap_or(0);
    run.server_pid = server_pid;
    (run, states)
}
