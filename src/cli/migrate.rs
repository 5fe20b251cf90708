//! `migrate`: create or upgrade the database schema. The one command that changes the schema
//! in production mode (`app::open_db` only checks it there).

use crate::app::connect_db;
use crate::config::Config;
use crate::storage::schema::Schema;
use anyhow::Context;

pub(super) async fn migrate(config: Config) -> anyhow::Result<()> {
    let db = connect_db(&config).await?;
    let before = db
        .schema()
        .await
        .context("cannot read the schema version")?;
    match before {
        Schema::Current => {
            println!("database is up to date");
            return Ok(());
        }
        Schema::Empty { .. } | Schema::Behind { .. } => {}
        // Nothing to apply would fix these; sqlx would refuse with a vaguer message.
        other => anyhow::bail!("{other}"),
    }
    db.migrate().await.context("database migration failed")?;
    match before {
        Schema::Behind { applied, expected } => {
            println!("database migrated from {applied:04} to {expected:04}")
        }
        Schema::Empty { expected } => println!("database created at migration {expected:04}"),
        _ => {}
    }
    Ok(())
}
