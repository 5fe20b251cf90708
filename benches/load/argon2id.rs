//! argon2id, raw: the hash rate at the server's parameters on 2 threads, to compare the
//! password logins with.

use super::*;

// ---------------------------------------------------------------------------------------
// argon2id, raw
// ---------------------------------------------------------------------------------------

/// Hashes/s of argon2id at the server's parameters on `threads` threads for `dur`, each
/// thread reusing one memory buffer (as the server's PasswordHasher does).
/// Raw argon2id hashes/s on `threads` threads; with `huge`, each thread's buffer asks for
/// transparent huge pages first, as the server's hashing threads do.
pub(crate) fn argon2_rate(threads: usize, dur: Duration, huge: bool) -> (u64, f64) {
    let Ok(params) = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, Some(32)) else {
        return (0, 0.0);
    };
    let t0 = Instant::now();
    let deadline = t0 + dur;
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let params = params.clone();
                s.spawn(move || {
                    let a = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
                    let mut mem = hash_buffer(params.block_count(), huge);
                    let salt = [i as u8; 16];
                    let mut out = [0u8; 32];
                    let mut n = 0u64;
                    while Instant::now() < deadline && n < 100_000 {
                        if a.hash_password_into_with_memory(
                            PASSWORD.as_bytes(),
                            &salt,
                            &mut out,
                            &mut mem[..],
                        )
                        .is_ok()
                        {
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    (total, total as f64 / t0.elapsed().as_secs_f64())
}

/// Measures and reports raw argon2id on 2 threads; returns (hashes/s, CPU ms per hash).
/// A hashing buffer, optionally advised to use transparent huge pages before first touch.
pub(crate) fn hash_buffer(blocks: usize, huge: bool) -> Vec<Block> {
    let mut v: Vec<Block> = Vec::with_capacity(blocks);
    if huge {
        let start = v.as_mut_ptr() as usize;
        let end = start + blocks * std::mem::size_of::<Block>();
        let aligned = start.div_ceil(4096) * 4096;
        if end > aligned {
            // SAFETY: the range is inside this Vec's allocation; madvise changes only how the
            // kernel backs it.
            unsafe {
                libc::madvise(
                    aligned as *mut libc::c_void,
                    end - aligned,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    v.resize(blocks, Block::new());
    v
}

/// The raw rate on 2 threads, with plain and with huge-page buffers; returns the better
/// (rate, CPU ms per hash), so the server is compared with the fastest raw hashing.
pub(crate) fn raw_argon2(server_pid: u32, dur: Duration, report: &mut Report) -> (f64, f64) {
    let plain = raw_argon2_one(server_pid, dur, report, false);
    let huge = raw_argon2_one(server_pid, dur, report, true);
    if huge.0 > plain.0 { huge } else { plain }
}

pub(crate) fn raw_argon2_one(
    server_pid: u32,
    dur: Duration,
    report: &mut Report,
    huge: bool,
) -> (f64, f64) {
    let cpu = CpuMeter::start(server_pid);
    let (hashes, rate) = argon2_rate(2, dur, huge);
    let used = cpu.read();
    // The bench process did nothing else meanwhile: its CPU is the hashing threads'.
    let elapsed = hashes as f64 / rate.max(1e-9);
    let cpu_ms = used.bench * elapsed * 1000.0 / (hashes.max(1) as f64);
    let row = Row {
        what: format!(
            "raw argon2id m={ARGON2_M_KIB} t={ARGON2_T} p={ARGON2_P}, 2 threads{}",
            if huge { ", huge pages" } else { "" }
        ),
        client: "-",
        conc: 2,
        rate,
        ok: hashes,
        errors: 0,
        p50: f64::NAN,
        p99: f64::NAN,
        cpu: Some(Cpu {
            server: f64::NAN,
            ..used
        }),
        target: None,
        peak_rss_kib: None,
    };
    report.print(&row);
    report.rows.push(row);
    report.notes.push(format!(
        "raw argon2id{}: {hashes} hashes in {:.1} s on 2 threads: {:.1} ms wall per hash per \
         thread, {cpu_ms:.1} ms CPU per hash",
        if huge { " (huge pages)" } else { "" },
        dur.as_secs_f64(),
        2000.0 / rate.max(1e-9)
    ));
    (rate, cpu_ms)
}
