//! The command line. Every command exits 0 on success; on bad input it prints one line
//! saying what is wrong and exits non-zero.

mod backup;
mod client;
mod keys;
mod migrate;
mod progress;
mod serve;
mod sim;
mod sp;
mod sync;
mod upstream;
mod user;

pub use backup::BackupArgs;
pub use client::{ClientArgs, ClientCommand};
pub use keys::KeysCommand;
pub use sim::{BankidStubArgs, Ss12000MockArgs};
pub use sp::{SpArgs, SpCommand};
pub use sync::SyncCommand;
pub use upstream::{UpstreamArgs, UpstreamCommand};
pub use user::{PersonCommand, SchoolUnitCommand, UserCommand};

use crate::config::{Config, ConfigError};
use crate::storage;
use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(
    name = "portvakt",
    version,
    about = "Identity provider for the schools of a municipality"
)]
pub struct Cli {
    /// TOML configuration file; PORTVAKT_* environment variables override it.
    #[arg(long, global = true, env = "PORTVAKT_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the identity provider.
    Serve,
    /// Serve with a demo municipality and demo relying parties (not in production mode).
    Demo,
    /// Create or upgrade the database schema (in production mode, the only command that
    /// changes it).
    Migrate,
    /// Copy the SQLite database, consistently, while the server runs (PostgreSQL: pg_dump).
    Backup(BackupArgs),
    /// Manage people.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage school units (the register sync will own most of them).
    #[command(subcommand)]
    SchoolUnit(SchoolUnitCommand),
    /// Manage OpenID Connect clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage SAML service providers.
    #[command(subcommand)]
    Sp(SpCommand),
    /// Manage upstream identity providers (federation login).
    #[command(subcommand)]
    Upstream(UpstreamCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Serve a generated, fictional municipality over SS 12000 (for demos and tests).
    #[command(name = "ss12000-mock")]
    Ss12000Mock(Ss12000MockArgs),
    /// Serve only the BankID stub: the RP API v6.0 under /rp/v6.0/ and its test app under
    /// /app (not in production mode).
    #[command(name = "bankid-stub")]
    BankidStub(BankidStubArgs),
    /// Sync people and roles from the student register (the metakatalog).
    #[command(subcommand)]
    Sync(SyncCommand),
    /// Look up people in the directory.
    #[command(subcommand)]
    Person(PersonCommand),
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = load_config(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => serve::serve(config, false).await,
        Command::Demo => serve::demo(config).await,
        Command::BankidStub(args) => sim::bankid_stub(&config, args).await,
        Command::Migrate => migrate::migrate(config).await,
        Command::Backup(args) => backup::backup(config, args).await,
        Command::User(c) => user::user(config, c).await,
        Command::Client(c) => client::client_cmd(config, c).await,
        Command::Sp(c) => sp::sp_cmd(config, c).await,
        Command::SchoolUnit(c) => user::school_unit(config, c).await,
        Command::Sync(c) => sync::sync_cmd(config, c).await,
        Command::Person(c) => user::person_cmd(config, c).await,
        Command::Ss12000Mock(args) => sim::ss12000_mock(args).await,
        Command::Keys(c) => keys::keys(config, c).await,
        Command::Upstream(c) => upstream::upstream_cmd(config, c).await,
    }
}

/// The configuration every command runs with: `Config::load` (file, environment, the
/// checks config makes alone), then the checks that need the domain, so a bad setting stops
/// any command before it starts, with one line saying why.
fn load_config(file: Option<&Path>) -> Result<Config, ConfigError> {
    let config = Config::load(file, |k| std::env::var(k).ok())?;
    crate::directory::ident::check_patterns(&config.directory)?;
    Ok(config)
}

/// The login policy options of `client add|update` and `sp add|update`. Bad values are
/// refused by the parser (exit code 2, one line).
#[derive(clap::Args, Debug, Default)]
pub struct LoginPolicyArgs {
    /// A login method the service allows: password, bankid or upstream:NAME; repeat for
    /// more (replaces the list on update). None given: every enabled method.
    #[arg(long = "allow-method", value_name = "METHOD", value_parser = parse_method)]
    pub allow_method: Vec<String>,
    /// Allow every enabled method again (clears the list on update).
    #[arg(long, conflicts_with = "allow_method")]
    pub allow_any_method: bool,
    /// The lowest level of assurance the service accepts (a LoA URI such as
    /// http://id.skolfederation.se/loa/2fa).
    #[arg(long, value_name = "LOA_URI", value_parser = parse_level)]
    pub min_level: Option<String>,
    /// Remove the minimum level (on update).
    #[arg(long, conflicts_with = "min_level")]
    pub no_min_level: bool,
}

impl LoginPolicyArgs {
    /// Applies the options given to a stored policy.
    pub fn apply(&self, mut p: storage::LoginPolicy) -> storage::LoginPolicy {
        if self.allow_any_method {
            p.allowed_methods.clear();
        } else if !self.allow_method.is_empty() {
            p.allowed_methods.clear();
            for m in &self.allow_method {
                if !p.allowed_methods.contains(m) {
                    p.allowed_methods.push(m.clone());
                }
            }
        }
        if self.no_min_level {
            p.min_level = None;
        } else if let Some(l) = &self.min_level {
            p.min_level = Some(l.clone());
        }
        p
    }
}

/// Bad input found after parsing (an `upstream:NAME` that names no upstream): the binary
/// exits with code 2, as for a parse error, with this one line.
#[derive(Debug)]
pub struct BadArgument(pub String);

impl std::fmt::Display for BadArgument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadArgument {}

/// The upstream NAMEs known: registered in the database or declared in the config file
/// (applied at the server's next start).
async fn known_upstreams(db: &storage::Db, config: &Config) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = crate::authn::upstream::list(db)
        .await?
        .into_iter()
        .map(|u| u.name)
        .chain(config.upstreams.iter().map(|u| u.name.clone()))
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

impl LoginPolicyArgs {
    /// Every `--allow-method upstream:NAME` must name a known upstream: a typo would
    /// otherwise leave the service with a method that is never offered.
    pub async fn check_upstreams(&self, db: &storage::Db, config: &Config) -> anyhow::Result<()> {
        let named: Vec<&str> = self
            .allow_method
            .iter()
            .filter_map(|m| m.strip_prefix(crate::authn::policy::UPSTREAM_PREFIX))
            .collect();
        if named.is_empty() {
            return Ok(());
        }
        let known = known_upstreams(db, config).await?;
        if let Some(unknown) = named.iter().find(|n| !known.iter().any(|k| k == *n)) {
            let list = if known.is_empty() {
                "none (add one with `portvakt upstream add`)".to_string()
            } else {
                known.join(", ")
            };
            return Err(BadArgument(format!(
                "--allow-method upstream:{unknown}: no upstream {unknown} is registered; known upstreams: {list}"
            ))
            .into());
        }
        Ok(())
    }
}

/// `upstream:NAME` is checked for its form here; whether NAME is registered is checked
/// against the database when the command runs (`check_upstreams`).
fn parse_method(s: &str) -> Result<String, String> {
    crate::authn::policy::check_method(s).map(|_| s.to_string())
}

fn parse_level(s: &str) -> Result<String, String> {
    crate::authn::policy::check_level(s).map(|_| s.to_string())
}

fn read_stdin_secret(what: &str) -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .with_context(|| format!("cannot read the {what} from standard input"))?;
    let s = s.trim_end_matches(['\n', '\r']).to_string();
    if s.is_empty() {
        bail!("the {what} on standard input is empty");
    }
    Ok(s)
}

/// Who runs the command, for audit events: the real user id and its name, or under sudo the
/// user who ran sudo. `$USER` is whatever the caller's environment says, so it is not used.
fn cli_actor() -> String {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let sudo_user = std::env::var("SUDO_USER").ok().filter(|u| !u.is_empty());
    actor_of(uid, sudo_user.as_deref(), user_name(uid).as_deref())
}

fn actor_of(uid: u32, sudo_user: Option<&str>, name: Option<&str>) -> String {
    match (uid, sudo_user) {
        // Only root can have been started by sudo; anyone else's SUDO_USER is just a variable.
        (0, Some(u)) => format!("cli:{u} (sudo)"),
        _ => format!("cli:{} (uid {uid})", name.unwrap_or("?")),
    }
}

/// The account name of `uid` from /etc/passwd (`name:x:uid:…`), if it has one.
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
    })
}

/// Records an administrative change in `audit_events`: what kind, by whom (`cli_actor`), and
/// an identifier. Never a secret, a password or a personnummer.
async fn audit(db: &crate::storage::Db, kind: &str, detail: &str, now: i64) -> anyhow::Result<()> {
    storage::records::audit(db, kind, &cli_actor(), detail, now).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_actor_is_the_real_user_or_who_ran_sudo() {
        assert_eq!(actor_of(1000, None, Some("anna")), "cli:anna (uid 1000)");
        assert_eq!(actor_of(0, Some("anna"), Some("root")), "cli:anna (sudo)");
        // SUDO_USER in the environment of anyone but root proves nothing.
        assert_eq!(
            actor_of(1000, Some("root"), Some("anna")),
            "cli:anna (uid 1000)"
        );
        assert_eq!(user_name(0).as_deref(), Some("root"));
    }
}
