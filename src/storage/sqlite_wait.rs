//! How a SQLite connection waits for the write lock: a retry every millisecond.
//!
//! SQLite's own busy handler (`PRAGMA busy_timeout`) sleeps 1, 2, 5, … and then 100 ms
//! between tries. Against a writer that commits and begins again at once (a sync applying
//! chunk after chunk, possibly from another process) a waiting login then wakes up mostly
//! while the lock is taken again: logins during a sync's apply waited up to 1.4 s
//! (docs/benchmarks.md, "Logins during a sync"). Retrying every millisecond, a waiter gets
//! the lock in the first gap between two of the sync's transactions, which the sync leaves
//! on purpose (`storage::sync::begin_chunk`).
//!
//! sqlx installs SQLite's default handler on every connection it opens and keeps the raw
//! handle behind `sqlx::Any`, so the handler is installed from SQL: an auto-extension
//! gives every new connection the function `portvakt_busy_wait(ms)`, which replaces the
//! connection's handler with this one, waiting up to `ms` in all.

use libsqlite3_sys as ffi;
use std::ffi::{c_char, c_int, c_void};

/// The SQL that sets a connection's wait for the write lock: up to 10 s, as
/// `PRAGMA busy_timeout = 10000` did.
pub(crate) const WAIT_10_S: &str = "SELECT portvakt_busy_wait(10000)";

/// Registers the auto-extension, once per process, before the first connection opens.
pub(crate) fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: `register` has the entry point's signature and only registers a function
        // on the connection it is given, which SQLite keeps open around the call.
        unsafe {
            ffi::sqlite3_auto_extension(Some(register));
        }
    });
}

unsafe extern "C" fn register(
    db: *mut ffi::sqlite3,
    _err: *mut *mut c_char,
    _api: *const ffi::sqlite3_api_routines,
) -> c_int {
    // SAFETY: `db` is the connection being opened; the name is a NUL-terminated static.
    unsafe {
        ffi::sqlite3_create_function_v2(
            db,
            c"portvakt_busy_wait".as_ptr(),
            1,
            ffi::SQLITE_UTF8,
            std::ptr::null_mut(),
            Some(set_wait),
            None,
            None,
            None,
        )
    }
}

unsafe extern "C" fn set_wait(
    ctx: *mut ffi::sqlite3_context,
    argc: c_int,
    argv: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: SQLite calls this with `argc` values in `argv` (one, as registered) and a
    // context whose connection is open; the handler's argument is a plain integer, no pointer.
    unsafe {
        let ms = if argc == 1 {
            ffi::sqlite3_value_int(*argv).max(0)
        } else {
            0
        };
        let db = ffi::sqlite3_context_db_handle(ctx);
        ffi::sqlite3_busy_handler(db, Some(retry), ms as usize as *mut c_void);
        ffi::sqlite3_result_int(ctx, ms);
    }
}

/// Called by SQLite while the lock is taken: `tries` is how often it has been called for
/// this wait. Each try sleeps a millisecond (at least), so `limit` tries wait at least
/// `limit` ms.
unsafe extern "C" fn retry(limit: *mut c_void, tries: c_int) -> c_int {
    if tries as usize >= limit as usize {
        return 0;
    }
    std::thread::sleep(std::time::Duration::from_millis(1));
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiter_retries_until_its_limit_and_then_gives_up() {
        let limit = 3usize as *mut c_void;
        // SAFETY: `retry` reads its argument as an integer only.
        let answers: Vec<c_int> = (0..5).map(|tries| unsafe { retry(limit, tries) }).collect();
        assert_eq!(answers, [1, 1, 1, 0, 0]);
    }

    #[tokio::test]
    async fn every_sqlite_connection_of_the_pool_has_the_function() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        let db = crate::storage::Db::connect(&url, 2).await.unwrap();
        let set: i64 = sqlx::query_scalar("SELECT portvakt_busy_wait(250)")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(set, 250);
    }
}
