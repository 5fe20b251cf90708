//! `backup FILE`: a consistent copy of a running server's SQLite database. Restoring is
//! copying it back with the servers stopped (README "Backup and restore").

use super::audit;
use crate::app::connect_db;
use crate::clock::Clock;
use crate::config::Config;
use crate::storage::{Backend, StorageError, schema::Schema};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct BackupArgs {
    /// Where to write the copy; must not exist (a backup never overwrites a file).
    pub file: PathBuf,
}

pub(super) async fn backup(config: Config, args: BackupArgs) -> anyhow::Result<()> {
    // No schema check: a backup is what an operator makes before `migrate`.
    let db = connect_db(&config).await?;
    // Connecting made an empty SQLite file if there was none: that is no backup.
    if db.backend() == Backend::Sqlite && matches!(db.schema().await?, Schema::Empty { .. }) {
        anyhow::bail!(
            "the database has no schema: nothing to back up (check database_url and data_dir)"
        );
    }
    let copied = match db.backup_into(&args.file).await {
        Ok(c) => c,
        Err(e @ (StorageError::Unsupported(_) | StorageError::File(_))) => {
            anyhow::bail!("{e}")
        }
        Err(e) => return Err(anyhow::Error::new(e).context("the backup failed")),
    };
    let file = args.file.display().to_string();
    audit(&db, "backup", &file, Clock::system().now()).await?;
    println!(
        "backed up the database to {file} ({} KiB); keep the key-encryption key (kek_file) \
         too, stored apart from the backup: without it the backup's keys and secrets cannot \
         be opened",
        copied.bytes.div_ceil(1024)
    );
    Ok(())
}
