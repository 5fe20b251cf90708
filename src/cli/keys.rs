//! `keys rotate`: publish new signing keys. `keys rewrap`: re-seal everything under a new
//! key-encryption key.

use super::{audit, cli_actor};
use crate::app::{open_db, open_keys};
use crate::clock::Clock;
use crate::config::Config;
use crate::keys::{Kek, KeyStore, kek};
use crate::storage;
use anyhow::Context;
use clap::Subcommand;
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Publish new signing keys now; they sign after the configured delay (or at once).
    Rotate {
        #[arg(long)]
        activate: bool,
    },
    /// Re-seal every sealed value (signing keys, server secrets, upstream client secrets)
    /// under a new key-encryption key, in one transaction. Stop every instance first; start
    /// them again with kek_file set to the new file.
    Rewrap {
        /// The new KEK: a file of 64 hex characters; created (mode 0600) if it does not exist.
        #[arg(long, value_name = "FILE")]
        new_kek: PathBuf,
    },
}

pub(super) async fn keys(config: Config, cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Rotate { activate } => rotate(config, activate).await,
        KeysCommand::Rewrap { new_kek } => rewrap(config, &new_kek).await,
    }
}

async fn rotate(config: Config, activate: bool) -> anyhow::Result<()> {
    let db = open_db(&config).await?;
    let now = Clock::system().now();
    open_keys(&config, &db, now).await?;
    let kek = crate::app::load_kek(&config)?;
    let kids = KeyStore::rotate(&db, &kek, config.keys.activation_delay, activate, now).await?;
    let when = if activate {
        "now".to_string()
    } else {
        format!("in {} s", config.keys.activation_delay)
    };
    audit(&db, "keys.rotate", &kids.join(" "), now).await?;
    println!("published new keys {}; they sign {when}", kids.join(", "));
    Ok(())
}

async fn rewrap(config: Config, new_file: &Path) -> anyhow::Result<()> {
    let old = crate::app::load_kek(&config)?;
    let db = open_db(&config).await?;
    let created = !new_file.exists();
    let new = if created {
        Kek::create(new_file)?
    } else {
        Kek::load(new_file)?
    };
    let now = Clock::system().now();
    let mut tx = db.begin().await?;
    let done = kek::rewrap_in(&mut tx, &old, &new)
        .await
        .context("nothing was changed")?;
    let detail =
        serde_json::json!({ "new_kek_file": new_file.display().to_string(), "resealed": done });
    storage::records::audit_in(
        &mut tx,
        "keys.rewrap",
        &cli_actor(),
        &detail.to_string(),
        now,
    )
    .await?;
    tx.commit().await?;
    // Read back under the new KEK before saying it is done.
    kek::opens_all(&db, &new).await?;
    let file = new_file.display();
    if created {
        println!("created a new key-encryption key in {file} (mode 0600)");
    }
    println!(
        "re-sealed {} signing keys, {} server secrets and {} upstream client secrets under \
         the key-encryption key in {file}; set kek_file = \"{file}\" (or PORTVAKT_KEK_FILE) on \
         every instance and start them; the old KEK opens this database no more (keep it as \
         long as backups made under it)",
        done.signing_keys, done.server_secrets, done.upstream_secrets
    );
    Ok(())
}
