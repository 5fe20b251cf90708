//! An online copy of a SQLite database (`portvakt backup`). PostgreSQL has its own tools
//! (pg_dump), which Portvakt does not reimplement.

use super::{Backend, Db, Result, StorageError};
use sqlx::Connection;
use std::path::Path;

/// What a backup wrote.
#[derive(Debug, Clone, Copy)]
pub struct Copied {
    pub bytes: u64,
}

impl Db {
    /// Copies the whole database to `target` with `VACUUM INTO`: one read transaction, so the
    /// copy is consistent while the server keeps writing, and compact. `target` must not
    /// exist: it is created here with mode 0600 (it holds password hashes and civic numbers),
    /// and removed again if the copy fails. The copy is checked (`PRAGMA quick_check`)
    /// before it is reported good. On PostgreSQL: `StorageError::Unsupported`.
    pub async fn backup_into(&self, target: &Path) -> Result<Copied> {
        if self.backend != Backend::Sqlite {
            return Err(StorageError::Unsupported(
                "a PostgreSQL database is backed up with pg_dump \
                 (pg_dump --format=custom --file=FILE DATABASE_URL); \
                 `portvakt backup` copies SQLite databases",
            ));
        }
        create_private(target)?;
        let copied = self.vacuum_into(target).await;
        if copied.is_err() {
            let _ = std::fs::remove_file(target);
        }
        copied
    }

    async fn vacuum_into(&self, target: &Path) -> Result<Copied> {
        let name = target
            .to_str()
            .ok_or_else(|| io_error(target, "the path is not valid UTF-8"))?;
        // VACUUM INTO accepts an empty existing file, which `create_private` made.
        sqlx::query("VACUUM INTO $1")
            .bind(name)
            .execute(self.pool())
            .await?;
        // Opened read-only and apart from the pool, so the copy gets no -wal file and no
        // pragma of ours.
        let url = format!("sqlite://{name}?mode=ro");
        let mut conn = sqlx::AnyConnection::connect(&url).await?;
        let check: String = sqlx::query_scalar("PRAGMA quick_check")
            .fetch_one(&mut conn)
            .await?;
        conn.close().await?;
        if check != "ok" {
            return Err(StorageError::Corrupt(format!(
                "the copy failed its integrity check: {check}"
            )));
        }
        let bytes = std::fs::metadata(target)
            .map_err(|e| io_error(target, &e.to_string()))?
            .len();
        Ok(Copied { bytes })
    }
}

/// Creates `path` empty with mode 0600, refusing one that exists (never overwrite a backup).
fn create_private(path: &Path) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path).map(drop).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            io_error(
                path,
                "exists already; a backup never overwrites a file, give a new name",
            )
        } else {
            io_error(path, &e.to_string())
        }
    })
}

fn io_error(path: &Path, what: &str) -> StorageError {
    StorageError::File(format!("{}: {what}", path.display()))
}
