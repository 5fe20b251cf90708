//! The demo's "municipality's staff IdP": a second Portvakt, in the same process, on a
//! loopback port (as the SS 12000 mock is), with its own SQLite file and key-encryption key
//! under `<data_dir>/staff-idp`. It holds a few staff accounts whose email addresses are
//! those of staff of the demo municipality, and the demo registers it as the OIDC upstream
//! `kommun`, linked by email and pinned to its issuer, so a newcomer can log in "with the
//! municipality's account" and see linking (and, at the 2fa service, step-up) work.

use super::{DEMO_PASSWORD, DEMO_SOURCE};
use crate::app::{App, AppState};
use crate::config::{Config, Mode};
use crate::directory::{self, NewPerson, Role};
use crate::oidc::client::{self, ClientSpec};
use crate::storage;
use crate::upstream::{Kind, LinkRule, Upstream};

/// The upstream's NAME at the demo's Portvakt.
pub const UPSTREAM: &str = "kommun";
/// How the login page names it.
pub const DISPLAY_NAME: &str = "Logga in med kommunens konto";
/// The demo's Portvakt as a client of the staff IdP.
const CLIENT_ID: &str = "portvakt-demo";

/// A running staff IdP.
pub struct StaffIdp {
    pub issuer: String,
    pub state: AppState,
}

/// What the banner and `/demo` say about the staff IdP: its address and accounts.
#[derive(Clone, Debug)]
pub struct Shown {
    pub issuer: String,
    pub accounts: Vec<Account>,
}

/// A staff account at the staff IdP.
#[derive(Clone, Debug)]
pub struct Account {
    /// Its username at the staff IdP.
    pub username: String,
    pub email: String,
    /// The person of the register it links to ("Name (username)"); None: nobody (refused).
    pub links_to: Option<String>,
}

pub(super) static SHOWN: std::sync::OnceLock<Shown> = std::sync::OnceLock::new();

/// The staff IdP as the banner shows it, once `wire` ran.
pub fn shown() -> Option<&'static Shown> {
    SHOWN.get()
}

/// The staff IdP's host: another host name than the demo's issuer, because a browser keeps
/// cookies per host whatever the port, and both instances use the same cookie names
/// (`portvakt_sso`, `portvakt_login`): on one host they would overwrite each other.
fn host_beside(issuer: &str) -> &'static str {
    let host = url::Url::parse(issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string));
    match host.as_deref() {
        Some("127.0.0.1") => "localhost",
        _ => "127.0.0.1",
    }
}

/// Starts the staff IdP on a loopback port; it serves for as long as the process runs.
pub async fn start(main: &Config) -> anyhow::Result<StaffIdp> {
    let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let data_dir = main.data_dir.join("staff-idp");
    std::fs::create_dir_all(&data_dir)?;
    let config = Config {
        listen: listener.local_addr()?,
        issuer: format!("http://{}:{port}", host_beside(&main.issuer)),
        database_url: format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("portvakt.db").display()
        ),
        data_dir,
        mode: Mode::Development,
        // The demo's own tuning of hashing, key and cache timing (tests make them fast);
        // nothing else of the demo's configuration (no sync, no BankID, no upstreams).
        password: main.password.clone(),
        keys: main.keys.clone(),
        cache: main.cache.clone(),
        ..Config::default()
    };
    let issuer = config.issuer.clone();
    let app = App::build_on(config, false, listener).await?;
    let state = app.state.clone();
    tokio::spawn(async move {
        if let Err(e) = app.run_until(std::future::pending()).await {
            tracing::warn!("demo staff IdP stopped: {e}");
        }
    });
    Ok(StaffIdp { issuer, state })
}

/// Gives the staff IdP its accounts (the demo municipality's first teacher and principal
/// by email, and a substitute the register does not know), registers the demo's Portvakt
/// as its client and it as the upstream `kommun` of the demo's Portvakt. Idempotent; a new
/// port (a new issuer) replaces the upstream and with it the links of the last run.
pub async fn wire(main: &AppState, staff: &StaffIdp) -> anyhow::Result<()> {
    let now = main.clock.now();
    let mut accounts = Vec::new();
    for role in ["Lärare", "Rektor"] {
        let Some(username) = storage::sync::first_with_duty(&main.db, DEMO_SOURCE, role).await?
        else {
            continue;
        };
        let Some(p) = storage::persons::by_login_name(&main.db, &username).await? else {
            continue;
        };
        let Some(email) = p.email.clone() else {
            continue;
        };
        let login = email.split('@').next().unwrap_or(&username).to_string();
        add_account(staff, &login, &p.given_name, &p.family_name, &email).await?;
        accounts.push(Account {
            username: login,
            email,
            links_to: Some(format!("{} ({username})", p.display_name())),
        });
    }
    // The register's mail domain, so only the register's not knowing the address refuses.
    let domain = accounts
        .first()
        .and_then(|a| a.email.split_once('@'))
        .map(|(_, d)| d.to_string())
        .unwrap_or_else(|| main.config.saml_scope());
    let stranger = format!("vikarie@{domain}");
    add_account(staff, "vikarie", "Vera", "Vikarie", &stranger).await?;
    accounts.push(Account {
        username: "vikarie".into(),
        email: stranger,
        links_to: None,
    });

    let secret = client::generate_secret();
    let callback = format!("{}/upstream/{UPSTREAM}/callback", main.config.issuer);
    let logged_out = format!("{}/upstream/{UPSTREAM}/logged-out", main.config.issuer);
    let spec = ClientSpec {
        client_id: CLIENT_ID.into(),
        name: Some("Portvakt (demo)".into()),
        secret: Some(secret.clone()),
        redirect_uris: vec![callback],
        post_logout_redirect_uris: vec![logged_out],
        release: directory::release::ordinary_claims(),
        ..Default::default()
    };
    let (sdb, skeys) = (&staff.state.db, &staff.state.keys);
    if client::get(sdb, CLIENT_ID).await?.is_some() {
        client::update(sdb, skeys, &spec, now).await?;
    } else {
        client::add(sdb, skeys, &spec, now).await?;
    }

    let upstream = Upstream {
        name: UPSTREAM.into(),
        kind: Kind::Oidc {
            issuer: staff.issuer.clone(),
            client_id: CLIENT_ID.into(),
            scopes: Vec::new(),
        },
        display_name: DISPLAY_NAME.into(),
        logo: None,
        level: crate::authn::acr::BAS.into(),
        link: LinkRule::parse("email=email")?,
        // Linking by email needs a pin: the staff IdP's issuer.
        require_claims: vec![("iss".into(), staff.issuer.clone())],
        enabled: true,
    };
    match crate::authn::upstream::get(&main.db, UPSTREAM).await? {
        Some(old) if old.provider_id().as_deref() == Some(staff.issuer.as_str()) => {
            crate::authn::upstream::update(&main.db, &main.keys, upstream, Some(&secret), now)
                .await?;
        }
        old => {
            // Another port than last time: the old subjects (issuer + sub) are gone.
            if old.is_some() {
                crate::authn::upstream::remove(&main.db, UPSTREAM).await?;
            }
            crate::authn::upstream::add(&main.db, &main.keys, upstream, Some(&secret), now).await?;
        }
    }
    let _ = SHOWN.set(Shown {
        issuer: staff.issuer.clone(),
        accounts,
    });
    Ok(())
}

async fn add_account(
    staff: &StaffIdp,
    username: &str,
    given: &str,
    family: &str,
    email: &str,
) -> anyhow::Result<()> {
    let (db, now) = (&staff.state.db, staff.state.clock.now());
    if storage::persons::by_login_name(db, username)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let new = NewPerson {
        username: username.into(),
        given_name: given.into(),
        family_name: family.into(),
        email: Some(email.into()),
        civic_no: None,
        protected_identity: false,
        roles: vec![Role::parse("staff")?],
        source: "local".into(),
    };
    let p = directory::add_person(db, &new, &staff.state.config.saml_scope(), now).await?;
    staff
        .state
        .authn
        .set_password(&p.id, DEMO_PASSWORD.into(), now)
        .await?;
    Ok(())
}
