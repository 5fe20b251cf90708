//! What the test servers logged. Every server this test process starts logs through one
//! subscriber — `portvakt::logging` with the JSON format of `[log] format = "json"` — into
//! one file per process, and every command `helpers::cli` runs appends its stderr to it.
//! `logs.rs` greps them; scripts/test.sh greps the whole suite's after both passes.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Where test processes leave their logs: PORTVAKT_TEST_LOG_DIR, else `server-logs` in
/// cargo's scratch directory for integration tests.
pub fn dir() -> PathBuf {
    std::env::var_os("PORTVAKT_TEST_LOG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("server-logs"))
}

static FILE: OnceLock<PathBuf> = OnceLock::new();

/// Installs the capture once per process (the servers' filter: PORTVAKT_TEST_LOG, else
/// everything Portvakt logs down to trace and the rest at info); returns its file.
pub fn install() -> &'static Path {
    FILE.get_or_init(|| {
        let dir = dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("it-{}.log", std::process::id()));
        // A file left by an earlier process with the same id is not ours to keep.
        let _ = std::fs::remove_file(&path);
        let file = open(&path);
        let filter = tracing_subscriber::EnvFilter::try_from_env("PORTVAKT_TEST_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,portvakt=trace"));
        let installed = portvakt::logging::install(
            portvakt::config::LogFormat::Json,
            filter,
            Mutex::new(file),
            false,
        );
        assert!(installed, "another log subscriber was installed first");
        path
    })
}

/// Appending, so the subscriber's lines and `append`'s never overwrite each other.
fn open(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

/// Adds a child process's output (a `portvakt` command's stderr) to this process's file.
pub fn append(bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let mut f = open(install());
    f.write_all(bytes).unwrap();
    if !bytes.ends_with(b"\n") {
        f.write_all(b"\n").unwrap();
    }
}

/// Everything this process's servers and commands have logged so far.
pub fn read() -> String {
    String::from_utf8_lossy(&std::fs::read(install()).unwrap()).into_owned()
}

/// This process's log lines that are JSON objects.
pub fn json_lines() -> Vec<serde_json::Value> {
    read()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.is_object())
        .collect()
}
