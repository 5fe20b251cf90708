//! `keys rotate`: publish new signing keys.

use super::audit;
use crate::app::{open_db, open_keys};
use crate::clock::Clock;
use crate::config::Config;
use crate::keys::KeyStore;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Publish new signing keys now; they sign after the configured delay (or at once).
    Rotate {
        #[arg(long)]
        activate: bool,
    },
}

pub(super) async fn keys(config: Config, cmd: KeysCommand) -> anyhow::Result<()> {
    let KeysCommand::Rotate { activate } = cmd;
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
