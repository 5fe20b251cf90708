//! Every SQL statement of Portvakt, grouped by table. One query set serves SQLite and
//! PostgreSQL through `sqlx::Any`: `$N` placeholders, INTEGER 0/1 booleans, BIGINT unix
//! seconds, TEXT ids and JSON (DEPENDENCIES.md §4). A statement that must differ between
//! the engines branches inside its one function here, never in callers.

pub mod admin;
pub mod backup;
pub mod bankid;
pub mod clients;
pub mod health;
pub mod person_search;
pub mod persons;
pub mod records;
pub mod retention;
pub mod saml;
pub mod schema;
pub mod scim;
pub mod secrets;
pub mod sessions;
mod sqlite_wait;
pub mod sync;
pub mod throttle;
pub mod tokens;
pub mod upstream;
pub mod upstream_saml;

use sqlx::any::{AnyPoolOptions, AnyQueryResult};
use sqlx::{AnyPool, Executor};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error")]
    Sqlx(#[from] sqlx::Error),
    /// A unique constraint refused the write; the string names what already exists.
    #[error("already exists: {0}")]
    Conflict(&'static str),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The engine cannot do this; the string says what to use instead.
    #[error("{0}")]
    Unsupported(&'static str),
    /// A file the storage layer writes (a backup): its path and what went wrong.
    #[error("{0}")]
    File(String),
}

pub type Result<T> = std::result::Result<T, StorageError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The database handle: cheap clones of the pool.
///
/// Storage functions that write use `writer()`, reads `pool()`. Today both are one pool on
/// both engines: on SQLite a separate single-connection writer (writes queue in sqlx rather
/// than in SQLite's busy handler) was measured 20-30% slower for refresh and code flows on
/// 2 cores (docs/benchmarks.md, run 7), so the split is kept only as a seam.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    writer: AnyPool,
    backend: Backend,
}

/// How long a statement waits for a connection when the caller names no limit: a request
/// must fail fast when the database is gone, not after sqlx's default of 30 s.
pub const DEFAULT_ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

async fn open_pool(
    url: &str,
    backend: Backend,
    max: u32,
    acquire_timeout: std::time::Duration,
) -> Result<AnyPool> {
    Ok(AnyPoolOptions::new()
        .max_connections(max)
        .min_connections(0)
        // Also bounds a new connection's attempts: sqlx retries a refused connection (a
        // restarting PostgreSQL) until this deadline, then reports PoolTimedOut.
        .acquire_timeout(acquire_timeout)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    // WAL lets readers run beside the one writer; NORMAL is durable across
                    // application crashes, which is what a login store needs. The size
                    // limit truncates the WAL after checkpoints instead of keeping its peak.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    // Up to 10 s for the write lock, retried every millisecond.
                    conn.execute(sqlite_wait::WAIT_10_S).await?;
                    conn.execute("PRAGMA journal_size_limit = 67108864").await?;
                    // A commit checkpoints the WAL only past 20,000 pages (80 MB), not
                    // SQLite's 1,000: the sync's commits rewrote the same index pages into
                    // the database file after nearly every chunk. `serve` checkpoints every
                    // second from a task (`checkpoint`), so a request rarely crosses it.
                    conn.execute("PRAGMA wal_autocheckpoint = 20000").await?;
                    // 32 MB of page cache per connection (the default is 2 MB): a
                    // directory of 500,000 people has indexes on random keys (uuid, eppn),
                    // and a sync's inserts otherwise read most index pages from the OS.
                    conn.execute("PRAGMA cache_size = -32768").await?;
                    conn.execute("PRAGMA temp_store = MEMORY").await?;
                } else {
                    // Our statements are short lookups and batched writes; PostgreSQL's JIT
                    // compiles any whose estimated cost is high, and the sync's statements of
                    // 100 units or 400 values are: 1.1 s of JIT for a 1.2 s statement
                    // (docs/benchmarks.md, issue 16).
                    conn.execute("SET jit = off").await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await?)
}

impl Db {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        Self::connect_with(url, max_connections, DEFAULT_ACQUIRE_TIMEOUT).await
    }

    /// `connect` with the time a statement may wait for a connection (`[database]
    /// acquire_timeout`); past it the statement fails with `PoolTimedOut`, which the web
    /// layer answers with 503.
    pub async fn connect_with(
        url: &str,
        max_connections: u32,
        acquire_timeout: std::time::Duration,
    ) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = &match backend {
            Backend::Sqlite => {
                sqlite_wait::install();
                create_sqlite_parent_dir(url);
                sqlite_creating(url)
            }
            Backend::Postgres => url.to_string(),
        };
        // An in-memory SQLite database exists per connection, so it needs a pool of one.
        let max = if url.contains(":memory:") {
            1
        } else {
            max_connections.max(1)
        };
        let pool = open_pool(url, backend, max, acquire_timeout).await?;
        let writer = pool.clone();
        Ok(Self {
            pool,
            writer,
            backend,
        })
    }

    /// Applies this release's migrations that the database lacks (`schema::Schema`).
    pub async fn migrate(&self) -> Result<()> {
        schema::migrator(self.backend).run(&self.writer).await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// For reads.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// For every statement that writes.
    pub(crate) fn writer(&self) -> &AnyPool {
        &self.writer
    }

    /// On SQLite, moves what it can of the WAL into the database without waiting for
    /// anyone (PASSIVE): run often, off the requests' path, it keeps the WAL below the
    /// threshold at which a committing request would checkpoint it itself.
    pub async fn checkpoint(&self) -> Result<()> {
        self.wal_checkpoint("PRAGMA wal_checkpoint(PASSIVE)").await
    }

    /// Periodic upkeep: on SQLite, a checkpoint that moves the WAL into the database and
    /// truncates it, so it does not keep the size of the last load peak.
    pub async fn maintain(&self) -> Result<()> {
        self.wal_checkpoint("PRAGMA wal_checkpoint(TRUNCATE)").await
    }

    async fn wal_checkpoint(&self, pragma: &'static str) -> Result<()> {
        if self.backend == Backend::Sqlite {
            sqlx::query(pragma).execute(&self.writer).await?;
        }
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A write transaction: a change and its audit event commit together or not at all.
    /// On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`): these transactions read
    /// before they write, and a deferred one whose snapshot another writer has changed fails
    /// at its first write with SQLITE_BUSY, without waiting out the busy timeout.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(Tx(match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.writer.begin().await?,
        }))
    }
}

/// A write transaction on a connection the caller holds (the sync's apply connection), with
/// `Db::begin`'s rule: on SQLite `BEGIN IMMEDIATE`, so a transaction that reads before it
/// writes waits for the write lock up front (the busy timeout) instead of failing with
/// "database is locked" when another process (a `sync run` beside `serve`) wrote meanwhile.
pub(crate) async fn begin_on(
    conn: &mut sqlx::AnyConnection,
) -> Result<sqlx::Transaction<'_, sqlx::Any>> {
    use sqlx::Connection;
    let sqlite = conn.backend_name() == "SQLite";
    Ok(if sqlite {
        conn.begin_with("BEGIN IMMEDIATE").await?
    } else {
        conn.begin().await?
    })
}

/// A transaction handed to storage functions that take part in a caller's change (the
/// `*_in` functions); dropped without `commit`, it rolls back.
pub struct Tx(sqlx::Transaction<'static, sqlx::Any>);

impl Tx {
    pub(crate) fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.0
    }

    pub async fn commit(self) -> Result<()> {
        Ok(self.0.commit().await?)
    }
}

/// A SQLite URL that creates its file when missing (`mode=rwc`), as the documented
/// `database_url = "sqlite://PATH"` promises; sqlx opens read-write without creating by
/// default, which fails on a first start with "unable to open database file". A URL that
/// names its own `mode` keeps it.
fn sqlite_creating(url: &str) -> String {
    if url.contains(":memory:") || url.contains("mode=") {
        return url.to_string();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}mode=rwc")
}

fn create_sqlite_parent_dir(url: &str) {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or_default();
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        let _ = std::fs::create_dir_all(parent);
    }
}

/// Maps a unique-constraint violation to `Conflict(what)`, other errors unchanged.
pub(crate) fn on_conflict(what: &'static str) -> impl FnOnce(sqlx::Error) -> StorageError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StorageError::Conflict(what),
        _ => StorageError::Sqlx(e),
    }
}

/// Values per `IN (…)` list.
pub(crate) const IN_LIST: usize = 200;

/// `$first,…` for an `IN (…)` list of `count` values.
pub(crate) fn in_list(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn affected(r: AnyQueryResult) -> u64 {
    r.rows_affected()
}

/// A relying party's login policy as stored, for OIDC clients and SAML SPs alike; its
/// meaning is `authn::policy`'s.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LoginPolicy {
    /// `password`, `bankid`, `upstream:NAME`; empty: every enabled method.
    pub allowed_methods: Vec<String>,
    /// The lowest level of assurance (a LoA URI) the relying party accepts.
    pub min_level: Option<String>,
}

impl LoginPolicy {
    pub(crate) fn from_row(r: &sqlx::any::AnyRow) -> Result<Self> {
        use sqlx::Row;
        Ok(Self {
            allowed_methods: parse_list(&r.try_get::<String, _>("allowed_methods")?)?,
            min_level: r.try_get("min_level")?,
        })
    }
}

pub(crate) fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn parse_list(s: &str) -> Result<Vec<String>> {
    serde_json::from_str(s).map_err(|e| StorageError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_sqlite_url_creates_its_file_unless_it_names_a_mode() {
        use super::sqlite_creating;
        assert_eq!(
            sqlite_creating("sqlite:///var/a.db"),
            "sqlite:///var/a.db?mode=rwc"
        );
        assert_eq!(
            sqlite_creating("sqlite://a.db?cache=shared"),
            "sqlite://a.db?cache=shared&mode=rwc"
        );
        assert_eq!(
            sqlite_creating("sqlite://a.db?mode=ro"),
            "sqlite://a.db?mode=ro"
        );
        assert_eq!(sqlite_creating("sqlite::memory:"), "sqlite::memory:");
    }

    #[tokio::test]
    async fn the_documented_sqlite_url_makes_a_new_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/portvakt.db");
        let db = super::Db::connect(&format!("sqlite://{}", path.display()), 2)
            .await
            .unwrap();
        db.migrate().await.unwrap();
        assert!(path.exists());
        db.close().await;
    }

    /// Why write transactions begin `IMMEDIATE` on SQLite: a deferred one that reads, then
    /// finds that another connection (here another pool, as `sync run` is another process)
    /// wrote meanwhile, fails at its first write with "database is locked" at once, whatever
    /// the busy timeout; begun with `begin_on`, the other writer waits for it instead.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_that_reads_before_it_writes_is_not_refused_by_another_writer() {
        use sqlx::Connection;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let (a, b) = (
            super::Db::connect(&url, 2).await.unwrap(),
            super::Db::connect(&url, 1).await.unwrap(),
        );
        sqlx::query("CREATE TABLE t (n INTEGER)")
            .execute(a.writer())
            .await
            .unwrap();
        sqlx::query("INSERT INTO t (n) VALUES (0)")
            .execute(a.writer())
            .await
            .unwrap();
        let read = "SELECT n FROM t";
        let other = |b: super::Db| async move {
            sqlx::query("UPDATE t SET n = n + 100")
                .execute(b.writer())
                .await
        };

        // Deferred: the other writer commits between our read and our write.
        let mut conn = a.writer().acquire().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        sqlx::query(read).fetch_one(&mut *tx).await.unwrap();
        other(b.clone()).await.unwrap();
        let err = sqlx::query("UPDATE t SET n = n + 1")
            .execute(&mut *tx)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("database is locked"), "{err}");
        drop(tx);

        // Immediate: the other writer waits until we commit; both writes count.
        let mut tx = super::begin_on(&mut conn).await.unwrap();
        sqlx::query(read).fetch_one(&mut *tx).await.unwrap();
        let waiting = tokio::spawn(other(b.clone()));
        sqlx::query("UPDATE t SET n = n + 1")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        waiting.await.unwrap().unwrap();
        let n: i64 = sqlx::Row::get(&sqlx::query(read).fetch_one(a.pool()).await.unwrap(), "n");
        assert_eq!(n, 201);
    }

    #[test]
    fn migration_folders_match() {
        let names = |dir: &str| {
            let mut v: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        };
        let root = env!("CARGO_MANIFEST_DIR");
        assert_eq!(
            names(&format!("{root}/migrations/sqlite")),
            names(&format!("{root}/migrations/postgres"))
        );
    }
}
