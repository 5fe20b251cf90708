//! `sp`: register and change SAML service providers and what they may receive.

use super::audit;
use crate::app::open_db;
use crate::clock::Clock;
use crate::config::Config;
use crate::storage;
use anyhow::bail;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum SpCommand {
    /// Register an SP from its metadata (a file or an http(s) URL, refreshed from there).
    Add {
        #[arg(long, value_name = "FILE|URL")]
        metadata: String,
        #[command(flatten)]
        args: SpArgs,
    },
    /// Change an SP; options given replace the stored values.
    Update {
        entity_id: String,
        #[arg(long, value_name = "FILE|URL")]
        metadata: Option<String>,
        #[command(flatten)]
        args: SpArgs,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Remove {
        entity_id: String,
    },
}

#[derive(clap::Args, Debug, Default)]
pub struct SpArgs {
    /// An attribute the SP may receive (FriendlyName, e.g. givenName, mail,
    /// eduPersonAffiliation); repeat for more. None by default.
    #[arg(long, value_name = "ATTRIBUTE")]
    release: Vec<String>,
    /// Release nothing (clears the list on update).
    #[arg(long, conflicts_with = "release")]
    release_none: bool,
    /// The default NameID: transient, persistent (pairwise), or FORMAT=SOURCE such as
    /// emailAddress=mail (sources: mail, eppn, username).
    #[arg(long, value_name = "FORMAT[=SOURCE]")]
    nameid: Option<String>,
    /// Sign the Response as well as the assertion.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    sign_response: Option<bool>,
    /// Allow unsolicited SSO at /saml/idp-init?sp=ENTITY_ID.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    idp_initiated: Option<bool>,
    /// Refuse unsigned AuthnRequests even if the metadata does not say AuthnRequestsSigned.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    require_signed_requests: Option<bool>,
    /// Accept the SP's metadata (at registration and every refresh) only when this
    /// certificate (PEM) signed it, as a federation signs its metadata.
    #[arg(long, value_name = "PEM")]
    metadata_signing_cert: Option<std::path::PathBuf>,
    #[command(flatten)]
    login: super::LoginPolicyArgs,
}

impl SpArgs {
    /// Applies the options given to `policy`.
    fn apply(self, mut policy: crate::saml::sp::Policy) -> anyhow::Result<crate::saml::sp::Policy> {
        use crate::saml::{attributes, sp::NameIdRule};
        if self.release_none {
            policy.release.clear();
        } else if !self.release.is_empty() {
            let mut list = Vec::new();
            for r in &self.release {
                let Some(name) = attributes::canonical(r) else {
                    bail!(
                        "unknown attribute {r}; known: {}",
                        attributes::CATALOGUE
                            .iter()
                            .map(|(f, _)| *f)
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                };
                if !list.contains(&name.to_string()) {
                    list.push(name.to_string());
                }
            }
            policy.release = list;
        }
        if let Some(n) = &self.nameid {
            policy.name_id = Some(NameIdRule::parse(n)?);
        }
        if let Some(v) = self.sign_response {
            policy.sign_response = v;
        }
        if let Some(v) = self.idp_initiated {
            policy.idp_initiated = v;
        }
        if let Some(v) = self.require_signed_requests {
            policy.require_signed_requests = v;
        }
        if let Some(path) = &self.metadata_signing_cert {
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            policy.metadata_signing_cert = Some(crate::saml::sp::pinned_certificate(&pem)?);
        }
        policy.login = self.login.apply(std::mem::take(&mut policy.login));
        Ok(policy)
    }
}

pub(super) async fn sp_cmd(config: Config, cmd: SpCommand) -> anyhow::Result<()> {
    use crate::saml::sp;
    let db = open_db(&config).await?;
    let now = Clock::system().now();
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .build()?;
    let allow_http = config.mode == crate::config::Mode::Development;
    let url_of = |src: &str| {
        (src.starts_with("https://") || src.starts_with("http://")).then(|| src.to_string())
    };
    match cmd {
        SpCommand::Add { metadata, args } => {
            args.login.check_upstreams(&db, &config).await?;
            let policy = args.apply(sp::Policy::default())?;
            let doc = sp::load_source(&http, &metadata, allow_http).await?;
            let meta = sp::add(&db, &doc, url_of(&metadata).as_deref(), &policy, now).await?;
            audit(&db, "sp.add", &meta.entity_id, now).await?;
            super::client::config_login_policy(&db, &config, &meta.entity_id, now).await?;
            println!(
                "registered SP {} ({} ACS, {} SLO endpoints; releases: {})",
                meta.entity_id,
                meta.acs.len(),
                meta.slo.len(),
                if policy.release.is_empty() {
                    "nothing".to_string()
                } else {
                    policy.release.join(", ")
                }
            );
        }
        SpCommand::Update {
            entity_id,
            metadata,
            args,
        } => {
            args.login.check_upstreams(&db, &config).await?;
            let rec = storage::saml::get_sp(&db, &entity_id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no SP {entity_id}"))?;
            let policy = args.apply(rec.policy.clone())?;
            let doc = match &metadata {
                Some(src) => Some(sp::load_source(&http, src, allow_http).await?),
                None => None,
            };
            let url = metadata.as_deref().and_then(url_of);
            sp::update(
                &db,
                &entity_id,
                doc.as_deref().map(|d| (d, url.as_deref())),
                &policy,
                now,
            )
            .await?;
            audit(&db, "sp.update", &entity_id, now).await?;
            println!("updated SP {entity_id}");
        }
        SpCommand::List { json } => {
            let list = storage::saml::list_sps(&db).await?;
            if json {
                let mut v = Vec::new();
                for rec in &list {
                    let sp = rec.load(now)?;
                    let changed = last_metadata_change(&db, &rec.entity_id).await?;
                    v.push(serde_json::json!({
                        "entity_id": rec.entity_id,
                        "name": rec.name,
                        "metadata_url": rec.metadata_url,
                        "valid_until": rec.valid_until,
                        "acs": sp.meta.acs,
                        "slo": sp.meta.slo,
                        "authn_requests_signed": sp.meta.authn_requests_signed,
                        "encrypts": sp.meta.encryption.is_some(),
                        "release": rec.policy.release,
                        "nameid": rec.policy.name_id,
                        "sign_response": rec.policy.sign_response,
                        "idp_initiated": rec.policy.idp_initiated,
                        "require_signed_requests": rec.policy.require_signed_requests,
                        "metadata_signing_cert_pinned": rec.policy.metadata_signing_cert.is_some(),
                        "allowed_methods": rec.policy.login.allowed_methods,
                        "min_level": rec.policy.login.min_level,
                        "metadata_changed": changed.map(|(at, what)| {
                            serde_json::json!({ "at": at, "what": what })
                        }),
                    }));
                }
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for rec in list {
                    let changed = last_metadata_change(&db, &rec.entity_id)
                        .await?
                        .map(|(at, what)| format!("  (metadata changed at {at}: {what})"))
                        .unwrap_or_default();
                    println!(
                        "{:<40} {:<24} {}  methods: {}  min level: {}{changed}",
                        rec.entity_id,
                        if rec.name.is_empty() { "-" } else { &rec.name },
                        if rec.policy.release.is_empty() {
                            "-".to_string()
                        } else {
                            rec.policy.release.join(",")
                        },
                        super::client::methods_text(&rec.policy.login),
                        rec.policy.login.min_level.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        SpCommand::Remove { entity_id } => {
            if !storage::saml::delete_sp(&db, &entity_id).await? {
                bail!("no SP {entity_id}");
            }
            audit(&db, "sp.remove", &entity_id, now).await?;
            println!("removed SP {entity_id}");
        }
    }
    Ok(())
}

/// The last refresh that changed an SP's ACS URLs or certificates: (time, what changed).
async fn last_metadata_change(
    db: &storage::Db,
    entity_id: &str,
) -> anyhow::Result<Option<(i64, String)>> {
    let prefix = format!("{entity_id}: ");
    let found =
        storage::records::last_audit(db, crate::saml::sp::METADATA_CHANGED, &prefix).await?;
    Ok(found.map(|(at, detail)| (at, detail[prefix.len()..].to_string())))
}
