//! The schema's version: the migrations this release carries against those the database
//! has applied (sqlx's `_sqlx_migrations` table). Production never changes the schema
//! behind other instances' backs: `serve` and the other commands only check it, and
//! `portvakt migrate` applies what is missing.

use super::{Backend, Db, Result};
use sqlx::Row;
use sqlx::migrate::Migrator;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// The migrations this release carries for `backend`.
pub(super) fn migrator(backend: Backend) -> &'static Migrator {
    match backend {
        Backend::Sqlite => &SQLITE_MIGRATIONS,
        Backend::Postgres => &POSTGRES_MIGRATIONS,
    }
}

/// How the database's schema stands against this release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schema {
    /// Every migration of this release is applied, unchanged.
    Current,
    /// No schema at all (a new database).
    Empty { expected: i64 },
    /// Older: these migrations of this release are not applied yet.
    Behind { applied: i64, expected: i64 },
    /// Newer: the database has migrations this release does not know (a newer release ran
    /// `migrate`, and this older binary must not serve it).
    Ahead { applied: i64, expected: i64 },
    /// A migration failed part-way (sqlx marks it unsuccessful).
    Dirty { version: i64 },
    /// An applied migration's file was changed after it was applied.
    Edited { version: i64 },
}

impl std::fmt::Display for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schema::Current => f.write_str("the database schema is current"),
            Schema::Empty { expected } => write!(
                f,
                "the database has no schema yet (this release needs migration {expected:04}): \
                 run `portvakt migrate` first"
            ),
            Schema::Behind { applied, expected } => write!(
                f,
                "the database schema is at migration {applied:04} and this release needs \
                 {expected:04}: stop the instances of the older release, back up the database \
                 (`portvakt backup FILE` or pg_dump), then run `portvakt migrate`"
            ),
            Schema::Ahead { applied, expected } => write!(
                f,
                "the database schema is at migration {applied:04}, newer than this release \
                 knows ({expected:04}): run the release that migrated it, or restore a backup \
                 made before that upgrade"
            ),
            Schema::Dirty { version } => write!(
                f,
                "migration {version:04} failed part-way: restore the backup made before the \
                 upgrade, then run `portvakt migrate` again"
            ),
            Schema::Edited { version } => write!(
                f,
                "migration {version:04} applied to this database differs from this release's \
                 file: a released migration was edited; use the release's unchanged file"
            ),
        }
    }
}

impl Db {
    /// Compares the applied migrations with this release's, without changing anything.
    pub async fn schema(&self) -> Result<Schema> {
        let migrations = migrator(self.backend);
        let expected = migrations.iter().map(|m| m.version).max().unwrap_or(0);
        let exists_sql = match self.backend {
            Backend::Sqlite => {
                "SELECT count(*) AS n FROM sqlite_master \
                 WHERE type = 'table' AND name = '_sqlx_migrations'"
            }
            Backend::Postgres => {
                "SELECT count(*) AS n FROM information_schema.tables \
                 WHERE table_name = '_sqlx_migrations' AND table_schema = current_schema()"
            }
        };
        let n: i64 = sqlx::query(exists_sql)
            .fetch_one(self.pool())
            .await?
            .try_get("n")?;
        if n == 0 {
            return Ok(Schema::Empty { expected });
        }
        if let Some(r) = sqlx::query(
            "SELECT version FROM _sqlx_migrations WHERE success = false ORDER BY version LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await?
        {
            return Ok(Schema::Dirty {
                version: r.try_get("version")?,
            });
        }
        let rows = sqlx::query(
            "SELECT version, checksum FROM _sqlx_migrations WHERE success = true ORDER BY version",
        )
        .fetch_all(self.pool())
        .await?;
        let mut applied = Vec::with_capacity(rows.len());
        for r in &rows {
            applied.push((
                r.try_get::<i64, _>("version")?,
                r.try_get::<Vec<u8>, _>("checksum")?,
            ));
        }
        if applied.is_empty() {
            return Ok(Schema::Empty { expected });
        }
        let top = applied.iter().map(|(v, _)| *v).max().unwrap_or(0);
        if applied.iter().any(|(v, _)| !migrations.version_exists(*v)) {
            return Ok(Schema::Ahead {
                applied: top,
                expected,
            });
        }
        for m in migrations.iter() {
            match applied.iter().find(|(v, _)| *v == m.version) {
                Some((_, sum)) if sum.as_slice() != &*m.checksum => {
                    return Ok(Schema::Edited { version: m.version });
                }
                Some(_) => {}
                None => {
                    return Ok(Schema::Behind {
                        applied: top,
                        expected,
                    });
                }
            }
        }
        Ok(Schema::Current)
    }
}
