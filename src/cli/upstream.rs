//! `upstream`: register and change upstream identity providers (federation login).

use super::{audit, read_stdin_secret};
use crate::app::{open_db, open_keys};
use crate::authn::{acr, upstream as fed};
use crate::clock::Clock;
use crate::config::Config;
use crate::upstream::{Kind, LinkRule, Upstream, parse_require_claim};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};

#[derive(Args, Debug, Default)]
pub struct UpstreamArgs {
    /// An OpenID provider: its issuer URL (found by discovery).
    #[arg(long, value_name = "ISSUER", conflicts_with = "saml_metadata")]
    pub oidc: Option<String>,
    /// The client id Portvakt has at the OpenID provider.
    #[arg(long)]
    pub client_id: Option<String>,
    /// Read the client secret from standard input.
    #[arg(long)]
    pub client_secret_stdin: bool,
    /// Scopes to ask for (default: openid email profile); repeat for several.
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// A SAML IdP: its metadata, a file or an https URL.
    #[arg(long, value_name = "FILE|URL")]
    pub saml_metadata: Option<String>,
    /// The linking rule UPSTREAM_CLAIM=FIELD, FIELD one of username, email, eppn, civic_no,
    /// external_id.
    #[arg(long, value_name = "CLAIM=FIELD")]
    pub link_on: Option<String>,
    /// A claim every login must carry with this value (tid=…, hd=…); repeat for several.
    #[arg(long = "require-claim", value_name = "CLAIM=VALUE")]
    pub require_claims: Vec<String>,
    /// The level of assurance a login through it reaches (default loa/bas).
    #[arg(long, value_name = "LOA_URI")]
    pub level: Option<String>,
    /// The name on the login page's button.
    #[arg(long, value_name = "TEXT")]
    pub display_name: Option<String>,
    /// A logo (https URL) beside the name.
    #[arg(long, value_name = "URL")]
    pub logo: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum UpstreamCommand {
    /// Register an upstream OpenID provider or SAML IdP.
    Add {
        name: String,
        #[command(flatten)]
        args: UpstreamArgs,
    },
    /// Change an upstream; options given replace the stored values.
    Update {
        name: String,
        #[command(flatten)]
        args: UpstreamArgs,
        /// Take it off the login page (logins through it are refused).
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        /// Offer it again.
        #[arg(long)]
        enable: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove an upstream and every link made through it.
    Remove { name: String },
    /// Remove a person's link at an upstream, so their next login links again by the rule.
    Unlink {
        name: String,
        #[arg(long)]
        person: String,
    },
}

/// A SAML metadata source: an https URL as is, a file read now.
fn saml_kind(source: &str) -> anyhow::Result<Kind> {
    if source.starts_with("https://") || source.starts_with("http://") {
        return Ok(Kind::Saml {
            metadata_url: Some(source.to_string()),
            metadata: None,
        });
    }
    let doc = std::fs::read_to_string(source)
        .with_context(|| format!("cannot read the metadata file {source}"))?;
    if !doc.contains("EntityDescriptor") {
        bail!("{source} is not SAML metadata (no EntityDescriptor)");
    }
    Ok(Kind::Saml {
        metadata_url: None,
        metadata: Some(doc),
    })
}

/// Applies the options given to `up` (a new upstream or the stored one).
fn apply(up: &mut Upstream, a: &UpstreamArgs) -> anyhow::Result<()> {
    if let Some(issuer) = &a.oidc {
        let (client_id, scopes) = match &up.kind {
            Kind::Oidc {
                client_id, scopes, ..
            } => (client_id.clone(), scopes.clone()),
            Kind::Saml { .. } => (String::new(), Vec::new()),
        };
        up.kind = Kind::Oidc {
            issuer: issuer.trim_end_matches('/').to_string(),
            client_id,
            scopes,
        };
    }
    if let Some(src) = &a.saml_metadata {
        up.kind = saml_kind(src)?;
    }
    match &mut up.kind {
        Kind::Oidc {
            client_id, scopes, ..
        } => {
            if let Some(id) = &a.client_id {
                *client_id = id.clone();
            }
            if !a.scopes.is_empty() {
                *scopes = a.scopes.clone();
            }
        }
        Kind::Saml { .. } => {
            if a.client_id.is_some() || a.client_secret_stdin || !a.scopes.is_empty() {
                bail!("--client-id, --client-secret-stdin and --scope are for --oidc upstreams");
            }
        }
    }
    if let Some(rule) = &a.link_on {
        up.link = LinkRule::parse(rule)?;
    }
    if !a.require_claims.is_empty() {
        up.require_claims = a
            .require_claims
            .iter()
            .map(|c| parse_require_claim(c))
            .collect::<Result<_, _>>()?;
    }
    if let Some(level) = &a.level {
        up.level = level.clone();
    }
    if let Some(name) = &a.display_name {
        up.display_name = name.clone();
    }
    if let Some(logo) = &a.logo {
        up.logo = (!logo.is_empty()).then(|| logo.clone());
    }
    Ok(())
}

fn secret(a: &UpstreamArgs) -> anyhow::Result<Option<String>> {
    a.client_secret_stdin
        .then(|| read_stdin_secret("client secret"))
        .transpose()
}

pub(super) async fn upstream_cmd(config: Config, cmd: UpstreamCommand) -> anyhow::Result<()> {
    let db = open_db(&config).await?;
    let now = Clock::system().now();
    match cmd {
        UpstreamCommand::Add { name, args } => {
            if args.oidc.is_none() && args.saml_metadata.is_none() {
                bail!("choose one of --oidc ISSUER or --saml-metadata FILE|URL");
            }
            let Some(rule) = &args.link_on else {
                bail!("--link-on CLAIM=FIELD is required (how an upstream login finds its person)");
            };
            if args.oidc.is_some() && args.client_id.is_none() {
                bail!("--client-id is required with --oidc");
            }
            let mut up = Upstream {
                name: name.clone(),
                kind: Kind::Saml {
                    metadata_url: None,
                    metadata: None,
                },
                display_name: String::new(),
                logo: None,
                level: acr::BAS.into(),
                link: LinkRule::parse(rule)?,
                require_claims: Vec::new(),
                enabled: true,
            };
            apply(&mut up, &args)?;
            let keys = open_keys(&config, &db, now).await?;
            let secret = secret(&args)?;
            let up = fed::add(&db, &keys, up, secret.as_deref(), now).await?;
            audit(&db, "upstream.add", &up.name, now).await?;
            println!("added upstream {} ({})", up.name, up.kind.as_str());
            if matches!(up.kind, Kind::Oidc { .. }) {
                println!(
                    "redirect URI to register at the provider: {}",
                    redirect_uri(&config, &up.name)
                );
            }
        }
        UpstreamCommand::Update {
            name,
            args,
            disable,
            enable,
        } => {
            let Some(mut up) = fed::get(&db, &name).await? else {
                bail!("no upstream {name}");
            };
            apply(&mut up, &args)?;
            if disable {
                up.enabled = false;
            }
            if enable {
                up.enabled = true;
            }
            let keys = open_keys(&config, &db, now).await?;
            let secret = secret(&args)?;
            if fed::update(&db, &keys, up, secret.as_deref(), now)
                .await?
                .is_none()
            {
                bail!("no upstream {name}");
            }
            audit(&db, "upstream.update", &name, now).await?;
            println!("updated upstream {name}");
        }
        UpstreamCommand::List { json } => {
            let list = fed::list(&db).await?;
            let counts = crate::storage::upstream::link_counts(&db).await?;
            let links = |n: &str| {
                counts
                    .iter()
                    .find(|(u, _)| u == n)
                    .map(|(_, c)| *c)
                    .unwrap_or(0)
            };
            if json {
                let v: Vec<_> = list.iter().map(|u| {
                    let mut o = serde_json::json!({
                        "name": u.name, "kind": u.kind.as_str(), "display_name": u.display_name,
                        "logo": u.logo, "level": u.level, "link_on": u.link.to_string(),
                        "require_claims": u.require_claims.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
                        "enabled": u.enabled, "links": links(&u.name),
                    });
                    match &u.kind {
                        Kind::Oidc { issuer, client_id, scopes } => {
                            o["issuer"] = issuer.as_str().into();
                            o["client_id"] = client_id.as_str().into();
                            o["scopes"] = serde_json::json!(scopes);
                            o["redirect_uri"] = redirect_uri(&config, &u.name).into();
                        }
                        Kind::Saml { metadata_url, metadata } => {
                            o["metadata_url"] = serde_json::json!(metadata_url);
                            o["metadata_stored"] = metadata.is_some().into();
                        }
                    }
                    o
                }).collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for u in list {
                    let source = match &u.kind {
                        Kind::Oidc { issuer, .. } => issuer.clone(),
                        Kind::Saml { metadata_url, .. } => metadata_url
                            .clone()
                            .unwrap_or_else(|| "(metadata file)".into()),
                    };
                    let state = if u.enabled { "" } else { " (disabled)" };
                    println!(
                        "{:<16} {:<4} {:<40} link {} ({} linked){state}",
                        u.name,
                        u.kind.as_str(),
                        source,
                        u.link,
                        links(&u.name)
                    );
                }
            }
        }
        UpstreamCommand::Remove { name } => {
            // A relying party's policy that allows it would be left with a method that no
            // longer exists (and, if it was the only one, a service nobody can log in to).
            let users = policies_naming(&db, &name).await?;
            if !users.is_empty() {
                bail!(
                    "upstream {name} is still allowed by {}; remove upstream:{name} from their \
                     --allow-method first (client update / sp update)",
                    users.join(", ")
                );
            }
            if !fed::remove(&db, &name).await? {
                bail!("no upstream {name}");
            }
            audit(&db, "upstream.remove", &name, now).await?;
            println!("removed upstream {name} and its links");
        }
        UpstreamCommand::Unlink { name, person } => {
            if !crate::storage::upstream::remove_link(&db, &name, &person).await? {
                bail!("person {person} has no link at upstream {name}");
            }
            audit(
                &db,
                "upstream.unlink",
                &format!("{name} person={person}"),
                now,
            )
            .await?;
            println!("removed the link of {person} at {name}");
        }
    }
    Ok(())
}

/// Where the upstream sends the browser back: register it at the OpenID provider.
fn redirect_uri(config: &Config, name: &str) -> String {
    format!(
        "{}{}",
        config.issuer,
        crate::web::paths::fill(crate::web::paths::UPSTREAM_CALLBACK, "name", name)
    )
}

/// The relying parties whose login policy allows `upstream:NAME`: "client ID" / "SP ENTITY".
async fn policies_naming(db: &crate::storage::Db, name: &str) -> anyhow::Result<Vec<String>> {
    let method = format!("{}{name}", crate::authn::policy::UPSTREAM_PREFIX);
    let mut users: Vec<String> = crate::storage::clients::list(db)
        .await?
        .into_iter()
        .filter(|c| c.login.allowed_methods.contains(&method))
        .map(|c| format!("client {}", c.client_id))
        .collect();
    users.extend(
        crate::storage::saml::list_sps(db)
            .await?
            .into_iter()
            .filter(|s| s.policy.login.allowed_methods.contains(&method))
            .map(|s| format!("SP {}", s.entity_id)),
    );
    Ok(users)
}
