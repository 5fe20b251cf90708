//! The report: the rows of every measurement and their printing.

use super::*;

// ---------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------

pub(crate) struct Row {
    pub(crate) what: String,
    pub(crate) client: &'static str,
    pub(crate) conc: usize,
    pub(crate) rate: f64,
    pub(crate) ok: u64,
    pub(crate) errors: u64,
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) cpu: Option<Cpu>,
    pub(crate) target: Option<f64>,
    /// The server's peak RSS during the measurement (KiB) and the server's pid, where read.
    pub(crate) peak_rss_kib: Option<(u64, u32)>,
}

#[derive(Default)]
pub(crate) struct Report {
    pub(crate) rows: Vec<Row>,
    pub(crate) notes: Vec<String>,
}

impl Report {
    pub(crate) fn add_run(
        &mut self,
        what: &str,
        conc: usize,
        mut run: Run,
        target: Option<f64>,
    ) -> f64 {
        let row = Row {
            what: what.into(),
            client: "reqwest",
            conc,
            rate: run.rate(),
            ok: run.ok,
            errors: run.errors,
            p50: run.percentile_ms(0.50),
            p99: run.percentile_ms(0.99),
            cpu: Some(run.cpu),
            target,
            peak_rss_kib: (run.peak_rss_kib > 0).then_some((run.peak_rss_kib, run.server_pid)),
        };
        if let Some(e) = &run.first_error {
            self.notes
                .push(format!("{what} c{conc}: {} errors, first: {e}", run.errors));
        }
        self.print(&row);
        let rate = row.rate;
        self.rows.push(row);
        rate
    }

    pub(crate) fn add_wrk(
        &mut self,
        what: &str,
        conc: usize,
        r: Res<(WrkResult, Cpu)>,
        target: Option<f64>,
    ) {
        match r {
            Ok((w, cpu)) => {
                let row = Row {
                    what: what.into(),
                    client: "wrk",
                    conc,
                    rate: w.rate,
                    ok: w.requests.saturating_sub(w.errors),
                    errors: w.errors,
                    p50: w.p50_ms,
                    p99: w.p99_ms,
                    cpu: Some(cpu),
                    target,
                    peak_rss_kib: None,
                };
                self.print(&row);
                self.rows.push(row);
            }
            Err(e) => self.notes.push(format!("{what} (wrk) c{conc}: {e}")),
        }
    }

    pub(crate) fn print(&self, r: &Row) {
        println!(
            "  {:<46} {:<7} c{:<3} {:>9.1}/s  ok {:>8}  err {:>5}  p50 {:>7} ms  p99 {:>7} ms  {}",
            r.what,
            r.client,
            r.conc,
            r.rate,
            r.ok,
            r.errors,
            fmt_ms(r.p50),
            fmt_ms(r.p99),
            fmt_mib(r.peak_rss_kib)
        );
    }

    pub(crate) fn table(&self) {
        println!();
        println!(
            "| measurement | client | c | ok/s | ok | errors | p50 ms | p99 ms | server CPU | \
             server µs/op | bench CPU | other CPU | server peak RSS | target | met |"
        );
        println!("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|");
        for r in &self.rows {
            let pct = |v: f64| {
                if v.is_finite() {
                    format!("{:.0}%", v * 100.0)
                } else {
                    "-".into()
                }
            };
            let (target, met) = match r.target {
                Some(t) => (
                    format!("≥ {t:.0}/s"),
                    if r.rate >= t { "yes" } else { "**no**" },
                ),
                None => ("-".into(), "-"),
            };
            let c = r.cpu.unwrap_or(Cpu {
                server: f64::NAN,
                bench: f64::NAN,
                other: f64::NAN,
            });
            let per_op = c.server * 1e6 / r.rate.max(1e-9);
            println!(
                "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.what,
                r.client,
                r.conc,
                r.rate,
                r.ok,
                r.errors,
                fmt_ms(r.p50),
                fmt_ms(r.p99),
                pct(c.server),
                if per_op.is_finite() {
                    format!("{per_op:.0}")
                } else {
                    "-".into()
                },
                pct(c.bench),
                pct(c.other),
                fmt_mib(r.peak_rss_kib),
                target,
                met
            );
        }
        println!(
            "\nCPU columns: share of one core (200% = both cores) used during the measurement by \
             the server process, by this benchmark process, and by everything else on the machine \
             (other builds and tests; wrk itself in wrk rows). server µs/op = server CPU time per \
             successful operation, the figure least disturbed by other load on the machine."
        );
        for n in &self.notes {
            println!("- {n}");
        }
    }
}

/// The `p` quantile (0..=1) of sorted latencies in µs, in milliseconds (0 when empty).
pub(crate) fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    sorted_us
        .get(((sorted_us.len().max(1) - 1) as f64 * p).round() as usize)
        .map_or(0.0, |v| f64::from(*v) / 1000.0)
}

/// A peak RSS in MiB, or "-" where none was read.
pub(crate) fn fmt_mib(peak: Option<(u64, u32)>) -> String {
    peak.map_or_else(
        || "-".into(),
        |(k, _)| format!("{:.1} MiB", k as f64 / 1024.0),
    )
}

pub(crate) fn fmt_ms(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "-".into()
    }
}

pub(crate) fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
