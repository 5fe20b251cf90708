//! The sync's reads and writes: the directory state a plan is computed against (`load`),
//! the chunked apply and purging (`apply`), run records and per-source state (`runs`), and
//! the rows they read and write (`rows`), and a CSV import's initial passwords
//! (`credentials`).
//!
//! Writes go in multi-row statements inside one transaction per chunk, so a 500,000-person
//! first run is a few thousand statements, and a login waits at most one chunk on SQLite.

mod apply;
mod credentials;
mod load;
pub mod rows;
mod runs;

pub use apply::*;
pub use credentials::*;
pub use load::*;
pub use rows::*;
pub use runs::*;

/// Bound parameters per multi-row statement on SQLite. Far under the engine's limit on
/// purpose: SQLite looks up a `$N` parameter's name by a linear scan of all of them
/// (`sqlite3_bind_parameter_name`), so binding is quadratic in their number; at 4,000 per
/// statement it took half of a 500,000-person first run.
const PARAMS_PER_STATEMENT: usize = 400;

/// The same on PostgreSQL. Larger statements (4,000 parameters, a tenth of the round
/// trips) were measured slower there: a first run's people took 213 s instead of about
/// 70 s at 500,000 (issue 16, on a loaded machine), so both engines stay at 400.
const PARAMS_PER_STATEMENT_PG: usize = 400;

fn is_sqlite(conn: &sqlx::AnyConnection) -> bool {
    conn.backend_name() == "SQLite"
}

/// How long a sync leaves SQLite's write lock free before each of its transactions: longer
/// than the one-millisecond retry of a writer waiting for it (`storage::sqlite_wait`), so a
/// login that waited behind one chunk goes before the next instead of behind every one.
const GAP_FOR_WAITING_WRITERS: std::time::Duration = std::time::Duration::from_millis(2);

/// A chunk's transaction (`storage::begin_on`), after the gap on SQLite. About 1,100 gaps
/// in a 500,000-person first run: 2 s.
async fn begin_chunk(
    conn: &mut sqlx::AnyConnection,
) -> crate::storage::Result<sqlx::Transaction<'_, sqlx::Any>> {
    if is_sqlite(conn) {
        tokio::time::sleep(GAP_FOR_WAITING_WRITERS).await;
    }
    crate::storage::begin_on(conn).await
}

fn rows_per_statement(conn: &sqlx::AnyConnection, columns: usize) -> usize {
    let params = if is_sqlite(conn) {
        PARAMS_PER_STATEMENT
    } else {
        PARAMS_PER_STATEMENT_PG
    };
    (params / columns).max(1)
}

fn values_sql(head: &str, columns: usize, rows: usize, tail: &str) -> String {
    let mut sql = String::with_capacity(head.len() + rows * columns * 5 + tail.len());
    sql.push_str(head);
    sql.push_str(" VALUES ");
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..columns {
            if c > 0 {
                sql.push(',');
            }
            n += 1;
            sql.push('$');
            sql.push_str(&n.to_string());
        }
        sql.push(')');
    }
    sql.push(' ');
    sql.push_str(tail);
    sql
}
