//! The command line. Every command exits 0 on success; on bad input it prints one line
//! saying what is wrong and exits non-zero.

use crate::app::{App, open_db, open_keys};
use crate::authn::password::PasswordHasher;
use crate::config::{Config, Mode};
use crate::directory::{self, CivicNo, NewPerson, Role};
use crate::keys::KeyStore;
use crate::oidc::client::{self, ClientSpec};
use crate::{storage, unix_now};
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use std::io::Read;
use std::path::PathBuf;

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
    /// Create or upgrade the database schema.
    Migrate,
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
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Serve a generated, fictional municipality over SS 12000 (for demos and tests).
    #[command(name = "ss12000-mock")]
    Ss12000Mock {
        /// Where to listen, e.g. 127.0.0.1:8900; loopback only unless --allow-remote.
        #[arg(long, value_name = "ADDR")]
        listen: String,
        /// About how many persons (students, guardians, staff): 100 to 500000.
        #[arg(long, default_value_t = 2000)]
        persons: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Require this bearer token on every request.
        #[arg(long)]
        token: Option<String>,
        /// Allow a listen address that is not loopback.
        #[arg(long)]
        allow_remote: bool,
    },
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

#[derive(Args, Debug)]
pub struct BankidStubArgs {
    /// Where to listen, e.g. 127.0.0.1:8901; port 0 picks a free port (the address is
    /// printed).
    #[arg(long, value_name = "ADDR")]
    pub listen: String,
    /// Serve HTTPS with this certificate (chain, PEM); needs --tls-key and --client-ca.
    #[arg(long, value_name = "PEM", requires_all = ["tls_key", "client_ca"])]
    pub tls_cert: Option<PathBuf>,
    /// The key of --tls-cert (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require a client certificate issued by this CA (PEM), as BankID requires the RP
    /// certificate.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
    /// An order nobody picks up fails (startFailed) after this many seconds; default
    /// [bankid] stub_start_timeout.
    #[arg(long, value_name = "SECS")]
    pub start_timeout: Option<u64>,
    /// A pending order fails (expiredTransaction) after this many seconds; default
    /// [bankid] stub_order_lifetime.
    #[arg(long, value_name = "SECS")]
    pub order_lifetime: Option<u64>,
}

#[derive(Subcommand, Debug)]
pub enum SyncCommand {
    /// Read a source, plan, check and apply; prints progress and the plan summary.
    Run {
        /// A source configured under [sync.sources.NAME].
        #[arg(long, conflicts_with = "ss12000")]
        source: Option<String>,
        /// An SS 12000 API base URL, read ad hoc (source name "ss12000"); a bearer token
        /// comes from PORTVAKT_SS12000_TOKEN.
        #[arg(long, value_name = "BASE_URL")]
        ss12000: Option<String>,
        /// With --ss12000: the externalIdentifiers context whose value is the username.
        #[arg(long, requires = "ss12000")]
        username_context: Option<String>,
        /// Read everything, not only what changed since the last run.
        #[arg(long)]
        full: bool,
        /// Plan and report without writing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Apply a plan the safety guard stopped.
    Approve { run: i64 },
    /// Discard a plan the safety guard stopped.
    Reject { run: i64 },
    /// Recent runs: when, what, how many, why held.
    Runs {
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum PersonCommand {
    /// A person with roles, groups, guardianships and the derived release attributes.
    /// KEY: username, eppn, SS 12000 id or civic number.
    Show {
        key: String,
        #[arg(long)]
        json: bool,
    },
}

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
        Ok(policy)
    }
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a local person; the password is read from standard input.
    Add {
        #[arg(long)]
        username: String,
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        given_name: Option<String>,
        #[arg(long)]
        family_name: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// YYYYMMDD-NNNN
        #[arg(long)]
        civic_no: Option<String>,
        /// ROLE or ROLE@SCHOOL_UNIT_CODE (student, teacher, staff, guardian, principal, admin).
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// List people, or search by name (case- and å/ä/ö-insensitive). People with a
    /// protected identity are left out unless --include-protected (every one shown is
    /// audited).
    List {
        #[arg(long)]
        search: Option<String>,
        #[arg(long)]
        include_protected: bool,
        #[arg(long, default_value_t = 200)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Set a person's password, read from standard input.
    SetPassword {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum SchoolUnitCommand {
    /// Add a school unit, or rename one.
    Add {
        /// The school unit code (skolenhetskod), e.g. 12345678.
        #[arg(long)]
        code: String,
        #[arg(long)]
        name: String,
    },
    List {
        #[arg(long)]
        json: bool,
    },
}

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

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Publish new signing keys now; they sign after the configured delay (or at once).
    Rotate {
        #[arg(long)]
        activate: bool,
    },
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

fn hasher(config: &Config) -> anyhow::Result<PasswordHasher> {
    let p = &config.password;
    Ok(PasswordHasher::new(
        p.memory_kib,
        p.iterations,
        p.parallelism,
        1,
    )?)
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref(), |k| std::env::var(k).ok())?;
    match cli.command {
        Command::Serve => serve(config, false).await,
        Command::Demo => {
            if config.mode == Mode::Production {
                bail!("demo is refused in production mode");
            }
            let mut config = config;
            // The demo logs in with the built-in BankID stub unless BankID is configured.
            if !config.bankid.enabled {
                config.bankid.enabled = true;
                config.bankid.environment = crate::config::BankIdEnvironment::Stub;
            }
            serve(config, true).await
        }
        Command::BankidStub(args) => bankid_stub(&config, args).await,
        Command::Migrate => {
            open_db(&config).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::User(c) => user(config, c).await,
        Command::Client(c) => client_cmd(config, c).await,
        Command::Sp(c) => sp_cmd(config, c).await,
        Command::SchoolUnit(c) => school_unit(config, c).await,
        Command::Sync(c) => sync_cmd(config, c).await,
        Command::Person(c) => person_cmd(config, c).await,
        Command::Ss12000Mock {
            listen,
            persons,
            seed,
            token,
            allow_remote,
        } => crate::sim::ss12000::mock::run_cli(&listen, persons, seed, token, allow_remote).await,
        Command::Keys(KeysCommand::Rotate { activate }) => {
            let db = open_db(&config).await?;
            open_keys(&config, &db).await?;
            let kek = crate::app::load_kek(&config)?;
            let kids = KeyStore::rotate(
                &db,
                &kek,
                config.keys.activation_delay,
                activate,
                unix_now(),
            )
            .await?;
            let when = if activate {
                "now".to_string()
            } else {
                format!("in {} s", config.keys.activation_delay)
            };
            audit(&db, "keys.rotate", &kids.join(" ")).await?;
            println!("published new keys {}; they sign {when}", kids.join(", "));
            Ok(())
        }
    }
}

async fn serve(config: Config, demo: bool) -> anyhow::Result<()> {
    let issuer = config.issuer.clone();
    let app = App::build(config, demo).await?;
    let shutdown = shutdown_signal();
    let scheme = if app.state.config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    if demo {
        let stub = app.state.bankid_stub.is_some();
        println!("{}", crate::demo::banner(&issuer, stub));
    }
    println!(
        "Portvakt listening on {scheme}://{} (issuer {issuer})",
        app.addr
    );
    app.run_until(shutdown).await
}

async fn bankid_stub(config: &Config, a: BankidStubArgs) -> anyhow::Result<()> {
    use crate::sim::bankid::serve;
    if config.mode == Mode::Production {
        bail!("the BankID stub is refused in production mode");
    }
    let tls = match (a.tls_cert, a.tls_key, a.client_ca) {
        (Some(cert), Some(key), Some(client_ca)) => Some(serve::TlsFiles {
            cert,
            key,
            client_ca,
        }),
        (None, None, None) => None,
        _ => bail!("--tls-cert, --tls-key and --client-ca go together"),
    };
    let b = &config.bankid;
    let secs = std::time::Duration::from_secs;
    let opts = serve::Options {
        listen: a.listen,
        tls,
        start_timeout: secs(a.start_timeout.unwrap_or(b.stub_start_timeout)),
        order_lifetime: secs(a.order_lifetime.unwrap_or(b.stub_order_lifetime)),
    };
    serve::run(opts, shutdown_signal()).await
}

/// Ctrl-C, or SIGTERM from systemd or a container runtime: stop accepting and drain. The
/// handlers are registered when this is called, not at the first poll, so a signal that
/// arrives right after the "listening" line already stops gracefully.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate()).ok();
        let int = signal(SignalKind::interrupt()).ok();
        async move {
            match (term, int) {
                (Some(mut term), Some(mut int)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn user(config: Config, cmd: UserCommand) -> anyhow::Result<()> {
    let db = open_db(&config).await?;
    let now = unix_now();
    match cmd {
        UserCommand::Add {
            username,
            password_stdin,
            given_name,
            family_name,
            email,
            civic_no,
            roles,
        } => {
            let roles = roles
                .iter()
                .map(|r| Role::parse(r))
                .collect::<Result<Vec<_>, _>>()?;
            let civic_no = civic_no.as_deref().map(CivicNo::parse).transpose()?;
            let password = if password_stdin {
                Some(read_stdin_secret("password")?)
            } else {
                None
            };
            let new = NewPerson {
                username,
                given_name: given_name.unwrap_or_default(),
                family_name: family_name.unwrap_or_default(),
                email,
                civic_no,
                protected_identity: false,
                roles,
                source: "local".into(),
            };
            let scope = url::Url::parse(&config.issuer)?
                .host_str()
                .unwrap_or("localhost")
                .to_string();
            let person = directory::add_person(&db, &new, &scope, now).await?;
            if let Some(pw) = password {
                let hash = hasher(&config)?.hash(pw).await?;
                storage::persons::set_password_hash(&db, &person.id, &hash, now).await?;
            }
            audit(&db, "user.add", &person.id).await?;
            println!("added {} (eppn {})", person.username, person.eppn);
        }
        UserCommand::List {
            search,
            include_protected,
            limit,
            json,
        } => {
            let mut rows = Vec::new();
            let found = directory::search(
                &db,
                search.as_deref().unwrap_or_default(),
                include_protected,
                limit,
            )
            .await?;
            for p in found {
                if p.protected_identity {
                    audit(&db, "person.view_protected", &p.id).await?;
                }
                let d = directory::details(&db, &config.directory, p, directory::roles::today())
                    .await?;
                rows.push(d);
            }
            if json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|d| {
                        serde_json::json!({
                            "id": d.person.id, "username": d.person.username, "eppn": d.person.eppn,
                            "given_name": d.person.given_name, "family_name": d.person.family_name,
                            "email": d.person.email, "active": d.person.active, "source": d.person.source,
                            "roles": d.roles.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for d in rows {
                    let roles: Vec<String> = d.roles.iter().map(|r| r.to_string()).collect();
                    println!(
                        "{:<20} {:<24} {}",
                        d.person.username,
                        d.person.display_name(),
                        roles.join(" ")
                    );
                }
            }
        }
        UserCommand::SetPassword {
            username,
            password_stdin,
        } => {
            if !password_stdin {
                bail!("give the new password on standard input with --password-stdin");
            }
            let person = storage::persons::by_login_name(&db, &username)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no such user: {username}"))?;
            let pw = read_stdin_secret("password")?;
            let hash = hasher(&config)?.hash(pw).await?;
            storage::persons::set_password_hash(&db, &person.id, &hash, now).await?;
            audit(&db, "user.set_password", &person.id).await?;
            println!("password set for {}", person.username);
        }
    }
    Ok(())
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
    }
}

async fn sp_cmd(config: Config, cmd: SpCommand) -> anyhow::Result<()> {
    use crate::saml::sp;
    let db = open_db(&config).await?;
    let now = unix_now();
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .build()?;
    let url_of = |src: &str| {
        (src.starts_with("https://") || src.starts_with("http://")).then(|| src.to_string())
    };
    match cmd {
        SpCommand::Add { metadata, args } => {
            let policy = args.apply(sp::Policy::default())?;
            let doc = sp::load_source(&http, &metadata).await?;
            let meta = sp::add(&db, &doc, url_of(&metadata).as_deref(), &policy, now).await?;
            audit(&db, "sp.add", &meta.entity_id).await?;
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
            let rec = storage::saml::get_sp(&db, &entity_id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no SP {entity_id}"))?;
            let policy = args.apply(rec.policy.clone())?;
            let doc = match &metadata {
                Some(src) => Some(sp::load_source(&http, src).await?),
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
            audit(&db, "sp.update", &entity_id).await?;
            println!("updated SP {entity_id}");
        }
        SpCommand::List { json } => {
            let list = storage::saml::list_sps(&db).await?;
            if json {
                let mut v = Vec::new();
                for rec in &list {
                    let sp = rec.load(now)?;
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
                    }));
                }
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for rec in list {
                    println!(
                        "{:<40} {:<24} {}",
                        rec.entity_id,
                        if rec.name.is_empty() { "-" } else { &rec.name },
                        if rec.policy.release.is_empty() {
                            "-".to_string()
                        } else {
                            rec.policy.release.join(",")
                        }
                    );
                }
            }
        }
        SpCommand::Remove { entity_id } => {
            if !storage::saml::delete_sp(&db, &entity_id).await? {
                bail!("no SP {entity_id}");
            }
            audit(&db, "sp.remove", &entity_id).await?;
            println!("removed SP {entity_id}");
        }
    }
    Ok(())
}

async fn client_cmd(config: Config, cmd: ClientCommand) -> anyhow::Result<()> {
    let db = open_db(&config).await?;
    let now = unix_now();
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
            let keys = open_keys(&config, &db).await?;
            let (secret, generated) = secret_of(&args)?;
            let rec = client::add(&db, &keys, &spec(client_id, args, secret.clone()), now).await?;
            audit(&db, "client.add", &rec.client_id).await?;
            println!("added client {}", rec.client_id);
            if let (true, Some(s)) = (generated, secret) {
                println!("client secret (shown once): {s}");
            }
        }
        ClientCommand::Update { client_id, args } => {
            let keys = open_keys(&config, &db).await?;
            let (secret, generated) = secret_of(&args)?;
            let rec =
                client::update(&db, &keys, &spec(client_id, args, secret.clone()), now).await?;
            audit(&db, "client.update", &rec.client_id).await?;
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
                        "{:<24} {:<13} {}",
                        c.client_id,
                        kind,
                        c.redirect_uris.join(" ")
                    );
                }
            }
        }
        ClientCommand::Remove { client_id } => {
            if !storage::clients::remove(&db, &client_id).await? {
                bail!("no client {client_id}");
            }
            audit(&db, "client.remove", &client_id).await?;
            println!("removed client {client_id}");
        }
    }
    Ok(())
}

async fn school_unit(config: Config, cmd: SchoolUnitCommand) -> anyhow::Result<()> {
    let db = open_db(&config).await?;
    match cmd {
        SchoolUnitCommand::Add { code, name } => {
            if code.is_empty()
                || code.len() > 32
                || !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                bail!("school unit code must be 1-32 characters of A-Z, a-z, 0-9 or '-'");
            }
            if name.trim().is_empty() {
                bail!("school unit name must not be empty");
            }
            storage::persons::upsert_school_unit(&db, &code, name.trim(), "local").await?;
            audit(&db, "school_unit.save", &code).await?;
            println!("school unit {code} saved");
        }
        SchoolUnitCommand::List { json } => {
            let units = storage::persons::school_units(&db).await?;
            if json {
                let v: Vec<_> = units
                    .iter()
                    .map(|(code, name)| serde_json::json!({ "code": code, "name": name }))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for (code, name) in units {
                    println!("{code:<12} {name}");
                }
            }
        }
    }
    Ok(())
}

/// Records an administrative change in `audit_events`: what kind, by whom (the OS user
/// running the CLI), and an identifier. Never a secret, a password or a personnummer.
async fn sync_cmd(config: Config, cmd: SyncCommand) -> anyhow::Result<()> {
    use crate::sync::{self, plan::RunKind, run};
    let db = open_db(&config).await?;
    match cmd {
        SyncCommand::Run {
            source,
            ss12000,
            username_context,
            full,
            dry_run,
        } => {
            let (name, client, context) = match (source, ss12000) {
                (Some(name), None) => {
                    let s = config.sync.sources.get(&name).ok_or_else(|| {
                        anyhow::anyhow!(
                            "no source {name} in [sync.sources] (configured: {})",
                            config
                                .sync
                                .sources
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    })?;
                    let client = sync::client_for(&name, s).map_err(anyhow::Error::msg)?;
                    (name, client, s.username_context.clone())
                }
                (None, Some(url)) => {
                    let client =
                        sync::ad_hoc_client(&url, std::env::var("PORTVAKT_SS12000_TOKEN").ok())
                            .map_err(anyhow::Error::msg)?;
                    (sync::AD_HOC_SOURCE.to_string(), client, username_context)
                }
                _ => bail!("give --source NAME or --ss12000 BASE_URL"),
            };
            let kind = if full {
                RunKind::Full
            } else {
                RunKind::Incremental
            };
            let started = std::time::Instant::now();
            let progress =
                |m: &str| eprintln!("{name}: [{:>6.1} s] {m}", started.elapsed().as_secs_f64());
            let out = sync::run_once(
                &db,
                &config,
                &name,
                context.as_deref(),
                &client,
                kind,
                dry_run,
                &progress,
            )
            .await?;
            let c = &out.counts;
            println!(
                "run {} ({}, {}): {}",
                out.run_id,
                out.kind.as_str(),
                match &out.status {
                    run::Status::Applied => "applied".to_string(),
                    run::Status::Held(_) => "HELD".to_string(),
                    run::Status::DryRun(None) => "dry run".to_string(),
                    run::Status::DryRun(Some(_)) => "dry run, would be held".to_string(),
                },
                run::summary(c)
            );
            if c.purged > 0 {
                println!(
                    "purged {} people deactivated beyond the retention period",
                    c.purged
                );
            }
            for (what, n) in c
                .unresolved
                .iter()
                .chain(out.report.skipped.iter())
                .chain(out.report.unknown_values.iter())
                .chain(out.report.unknown_fields.iter())
            {
                println!("  {n:>8}  {what}");
            }
            match out.status {
                run::Status::Held(reason) => {
                    bail!(
                        "run {} stopped before applying: {reason}; check it, then `portvakt sync approve {}` or `portvakt sync reject {}`",
                        out.run_id,
                        out.run_id,
                        out.run_id
                    )
                }
                run::Status::DryRun(Some(reason)) => println!("would be held: {reason}"),
                _ => {}
            }
        }
        SyncCommand::Approve { run } => {
            let actor = cli_actor();
            let out = run::approve(&db, &config, run, &actor).await?;
            println!(
                "run {run} approved and applied: {}",
                run::summary(&out.counts)
            );
        }
        SyncCommand::Reject { run } => {
            run::reject(&db, run, &cli_actor()).await?;
            println!("run {run} rejected; nothing was applied");
        }
        SyncCommand::Runs { limit, json } => {
            let runs = storage::sync::runs(&db, limit).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
            } else {
                for r in runs {
                    println!(
                        "{:>5}  {:<12} {:<11} {:<9} started {}  {}",
                        r.id,
                        r.source,
                        r.kind,
                        r.status,
                        r.started_at,
                        r.reason.unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(())
}

async fn person_cmd(config: Config, cmd: PersonCommand) -> anyhow::Result<()> {
    let db = open_db(&config).await?;
    let PersonCommand::Show { key, json } = cmd;
    let found = directory::by_key(&db, &key).await?;
    let person = match found.len() {
        0 => bail!("no person with username, eppn, id or civic number {key}"),
        1 => found
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("no person"))?,
        n => bail!("{n} people match {key}; use the username or the id"),
    };
    if person.protected_identity {
        audit(&db, "person.view_protected", &person.id).await?;
    }
    let d = directory::details(&db, &config.directory, person, directory::roles::today()).await?;
    let view = crate::directory::show(&d, &config.saml_scope());
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print!("{}", crate::directory::show_text(&view));
    }
    Ok(())
}

fn cli_actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

async fn audit(db: &crate::storage::Db, kind: &str, detail: &str) -> anyhow::Result<()> {
    let actor = format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    );
    storage::records::audit(db, kind, &actor, detail, unix_now()).await?;
    Ok(())
}
