//! `migrate`: create or upgrade the database schema.

use crate::app::open_db;
use crate::config::Config;

pub(super) async fn migrate(config: Config) -> anyhow::Result<()> {
    open_db(&config).await?;
    println!("database is up to date");
    Ok(())
}
