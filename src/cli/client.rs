//! `client`: register and change OpenID Connect clients.

use super::{audit, read_stdin_secret};
use crate::app::{open_db, open_keys};
use crate::clock::Clock;
use crate::config::Config;
use crate::oidc::client::{self, ClientSpec};
use crate::storage;
use anyhow::bail;
use clap::{Args, Subcommand};

#[derive(Args, Debug, Default)]
pub struct ClientArgs {
    #[arg(long)]
    pub name: Option<String>,
    /// Read the client secret from standard input (at least 24 characters).
    #[arg(long, conflicts_with_all = ["generate_secret", "public"])]
    pub secret_stdin: bool,
    /// Generate a secret and print it once.
    #[arg(long, conflicts_with = "public")]
    pub generate_secret: bool,
    /// A public client (no secret; PKCE required).
    #[arg(long)]
    pub public: bool,
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Vec<String>,
    #[arg(long)]
    pub backchannel_logout_uri: Option<String>,
    /// Scopes the client may request (default: openid profile email school).
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// Grant types (default: authorization_code refresh_token).
    #[arg(long = "grant")]
    pub grants: Vec<String>,
    /// public or pairwise (default pairwise).
    #[arg(long)]
    pub subject: Option<String>,
    /// Sector for pairwise subjects (default: the client id).
    #[arg(long)]
    pub sector: Option<String>,
    /// ES256 (default) or RS256.
    #[arg(long)]
    pub id_token_alg: Option<String>,
    /// Claims the client may receive beyond `sub` (none by default).
    #[arg(long = "release")]
    pub release: Vec<String>,
    #[command(flatten)]
    pub login: super::LoginPolicyArgs,
}

#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    Add {
        #[arg(long)]
        client_id: String,
        #[command(flatten)]
        args: ClientArgs,
    },
    /// Change a client; options given replace the stored values.
    Update {
        client_id: String,
        #[command(flatten)]
        args: ClientArgs,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Remove {
        client_id: String,
    },
}

fn spec(client_id: String, a: ClientArgs, secret: Option<String>) -> ClientSpec {
    ClientSpec {
        client_id,
        name: a.name,
        secret,
        public: a.public,
        redirect_uris: a.redirect_uris,
        post_logout_redirect_uris: a.post_logout_redirect_uris,
        backchannel_logout_uri: a.backchannel_logout_uri,
        scopes: a.scopes,
        grants: a.grants,
        subject: a.subject,
        sector: a.sector,
        id_token_alg: a.id_token_alg,
        release: a.release,
        allowed_methods: a.login.allow_method,
        allow_any_method: a.login.allow_any_method,
        min_level: if a.login.no_min_level {
            Some(None)
        } else {
            a.login.min_level.map(Some)
        },
    }
}

/// The allowed methods as `client list` and `sp list` show them.
pub(super) fn methods_text(p: &storage::LoginPolicy) -> String {
    if p.allowed_methods.is_empty() {
        "any".into()
    } else {
        p.allowed_methods.join(",")
    }
}

pub(super) async fn client_cmd(config: Config, cmd: ClientCommand) -> anyhow::Result<()> {
    let db = open_db(&config).await?;
    let now = Clock::system().now();
    let secret_of = |a: &ClientArgs| -> anyhow::Result<(Option<String>, bool)> {
        if a.secret_stdin {
            Ok((Some(read_stdin_secret("client secret")?), false))
        } else if a.generate_secret {
            Ok((Some(client::generate_secret()), true))
        } else {
            Ok((None, false))
        }
    };
    match cmd {
        ClientCommand::Add { client_id, args } => {
            if !(args.secret_stdin || args.generate_secret || args.public) {
                bail!("choose one of --secret-stdin, --generate-secret or --public");
            }
            args.login.check_upstreams(&db, &config).await?;
            let keys = open_keys(&config, &db, now).await?;
            let (secret, generated) = secret_of(&args)?;
            let rec = client::add(&db, &keys, &spec(client_id, args, secret.clone()), now).await?;
            audit(&db, "client.add", &rec.client_id, now).await?;
            println!("added client {}", rec.client_id);
            config_login_policy(&db, &config, &rec.client_id, now).await?;
            if let (true, Some(s)) = (generated, secret) {
                println!("client secret (shown once): {s}");
            }
        }
        ClientCommand::Update { client_id, args } => {
            args.login.check_upstreams(&db, &config).await?;
            let keys = open_keys(&config, &db, now).await?;
            let (secret, generated) = secret_of(&args)?;
            let rec =
                client::update(&db, &keys, &spec(client_id, args, secret.clone()), now).await?;
            audit(&db, "client.update", &rec.client_id, now).await?;
            println!("updated client {}", rec.client_id);
            if let (true, Some(s)) = (generated, secret) {
                println!("client secret (shown once): {s}");
            }
        }
        ClientCommand::List { json } => {
            let list = storage::clients::list(&db).await?;
            if json {
                let v: Vec<_> = list
                    .iter()
                    .map(|c| {
                        serde_json::json!({
                            "client_id": c.client_id, "name": c.name, "public": c.public_client,
                            "redirect_uris": c.redirect_uris, "post_logout_redirect_uris": c.post_logout_redirect_uris,
                            "backchannel_logout_uri": c.backchannel_logout_uri, "scopes": c.scopes,
                            "grants": c.grants, "subject": c.subject_type, "sector": c.sector,
                            "id_token_alg": c.id_token_alg, "release": c.release,
                            "allowed_methods": c.login.allowed_methods,
                            "min_level": c.login.min_level,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for c in list {
                    let kind = if c.public_client {
                        "public"
                    } else {
                        "confidential"
                    };
                    println!(
                        "{:<24} {:<13} {}  methods: {}  min level: {}",
                        c.client_id,
                        kind,
                        c.redirect_uris.join(" "),
                        methods_text(&c.login),
                        c.login.min_level.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        ClientCommand::Remove { client_id } => {
            if !storage::clients::remove(&db, &client_id).await? {
                bail!("no client {client_id}");
            }
            audit(&db, "client.remove", &client_id, now).await?;
            println!("removed client {client_id}");
        }
    }
    Ok(())
}

/// A `[[login_policy]]` of the config file for a relying party just registered takes effect
/// at once (not only at the next start).
pub(super) async fn config_login_policy(
    db: &crate::storage::Db,
    config: &crate::config::Config,
    relying_party: &str,
    now: i64,
) -> anyhow::Result<()> {
    let applied =
        crate::authn::policy::apply_config(db, &config.login_policies, Some(relying_party), now)
            .await
            .map_err(anyhow::Error::msg)?;
    if !applied.is_empty() {
        println!("login policy of {relying_party} set from the config file's [[login_policy]]");
    }
    Ok(())
}
