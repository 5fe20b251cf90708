//! Settings: a TOML file (`--config`), then `PORTVAKT_*` environment overrides, then
//! defaults that run with no file at all (SQLite under `./data`, development mode).
//! Unknown keys are an error so a typo never silently falls back to a default.
//!
//! This module owns the types, their defaults and loading; `env` the overrides, `validate`
//! the checks. It imports nothing of the crate, so every part may read its settings.

mod env;
mod log;
mod metrics;
mod retention;
mod upstream;
mod validate;

pub use log::{LogConfig, LogFormat};
pub use metrics::{AllowedNet, MetricsConfig};
pub use retention::RetentionConfig;
pub use upstream::{LoginPolicyConfig, UpstreamConfig};

use serde::Deserialize;
use std::{net::SocketAddr, path::PathBuf};

/// What is wrong with the configuration, in one line that names the setting (`[section]
/// key` as the file spells it, or the environment variable) and what to set.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {0}: {1} (check --config or PORTVAKT_CONFIG)")]
    Read(PathBuf, std::io::Error),
    /// The file is not valid TOML or does not fit the settings; the string says where.
    #[error("invalid config file {0}: {1}")]
    Parse(PathBuf, String),
    /// A setting's value is refused: the setting, then what is wrong and what to set.
    #[error("invalid setting {0}: {1}")]
    Value(&'static str, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Development,
    Production,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on, e.g. `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Public base URL; the OIDC issuer and the base of every absolute URL we publish.
    pub issuer: String,
    /// `sqlite://…` or `postgres://…`; empty means `sqlite://<data_dir>/portvakt.db`.
    pub database_url: String,
    pub data_dir: PathBuf,
    pub mode: Mode,
    /// Key-encryption key file (32 random bytes). Required in production; created in
    /// development under `data_dir` if missing.
    pub kek_file: Option<PathBuf>,
    /// Proxies whose `X-Forwarded-For` is believed. Empty: the peer address is the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub tls: Option<TlsConfig>,
    pub server: ServerConfig,
    pub tokens: TokenConfig,
    pub session: SessionConfig,
    pub password: PasswordConfig,
    pub keys: KeyConfig,
    pub throttle: ThrottleConfig,
    pub database: DatabaseConfig,
    pub cache: CacheConfig,
    pub saml: SamlConfig,
    pub directory: DirectoryConfig,
    pub sync: SyncConfig,
    pub bankid: BankIdConfig,
    /// `[[upstream]]`: upstream identity providers managed in the file.
    #[serde(rename = "upstream")]
    pub upstreams: Vec<UpstreamConfig>,
    /// `[[login_policy]]`: relying parties' login policies managed in the file.
    #[serde(rename = "login_policy")]
    pub login_policies: Vec<LoginPolicyConfig>,
    pub admin: AdminConfig,
    /// `[metrics]`: who may read `/metrics`, and on which listener.
    pub metrics: MetricsConfig,
    pub retention: RetentionConfig,
    pub log: LogConfig,
}

/// `[admin]`: who gets into the admin web UI at `/admin`, and for how long.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// The login methods an administrator may use (`password`, `bankid`, `upstream:NAME`).
    pub methods: Vec<String>,
    /// The level an admin login must reach (`loa2`, `2fa`, …); none by default.
    pub min_level: Option<String>,
    /// Seconds an admin session lives without a request; shorter than the SSO session's.
    pub idle_timeout: i64,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            methods: vec!["password".into(), "bankid".into()],
            min_level: None,
            idle_timeout: 15 * 60,
        }
    }
}

/// How register facts become roles, activity and released attributes (`directory/`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectoryConfig {
    /// A person counts as active this many days before their first role starts …
    pub lead_days: i64,
    /// … and until this many days after their last role ends, so the summer between two
    /// school years deactivates nobody.
    pub grace_days: i64,
    /// Register relation types (`responsibles[].relationType`) that make a guardian.
    pub guardian_relations: Vec<String>,
    /// Register duty roles (`dutyRole`) by role: teacher, principal or staff. A duty role
    /// not listed makes `staff`.
    pub duty_roles: std::collections::BTreeMap<String, String>,
    /// eduPersonAffiliation values by role (student, teacher, principal, staff, guardian,
    /// admin).
    pub affiliations: std::collections::BTreeMap<String, Vec<String>>,
    /// eduPersonEntitlement values by role; `{unit}` is replaced by the school unit code.
    pub entitlements: std::collections::BTreeMap<String, Vec<String>>,
    /// Username of a synced person without one from the register. `{h:N}` is N characters
    /// of a digest of the person's internal id: no name, no personnummer.
    pub username_pattern: String,
    /// Local part of a generated eduPersonPrincipalName (the scope is `saml.scope`).
    pub eppn_pattern: String,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        let map = |pairs: &[(&str, &[&str])]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect()
        };
        let teachers = [
            "Lärare",
            "Förskollärare",
            "Förstelärare",
            "Speciallärare/specialpedagog",
            "Fritidspedagog",
            "Lärarassistent",
        ];
        let leaders = ["Rektor", "Förskolechef", "Övrig arbetsledning"];
        Self {
            lead_days: 14,
            grace_days: 75,
            guardian_relations: vec!["Vårdnadshavare".into()],
            duty_roles: teachers
                .iter()
                .map(|r| (r.to_string(), "teacher".to_string()))
                .chain(
                    leaders
                        .iter()
                        .map(|r| (r.to_string(), "principal".to_string())),
                )
                .collect(),
            // specs/skolfederation.md §4.
            affiliations: map(&[
                ("student", &["student", "member"]),
                ("teacher", &["faculty", "employee", "member"]),
                ("principal", &["faculty", "employee", "member"]),
                ("staff", &["staff", "employee", "member"]),
                ("guardian", &["affiliate"]),
            ]),
            entitlements: Default::default(),
            username_pattern: "u{h:8}".into(),
            eppn_pattern: "{h:12}".into(),
        }
    }
}

/// The metakatalog sync (`sync/`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    /// A plan that would deactivate more than this share of a source's active people stops
    /// and waits for `portvakt sync approve`.
    pub max_deactivation_share: f64,
    /// People written per transaction, so logins are not blocked behind one long write.
    pub chunk_size: usize,
    /// Deactivated people are purged (a tombstone keeps their username and eppn) after
    /// this many days.
    pub retention_days: i64,
    /// The guard's rolling window: what a source's runs and pushes of this many hours
    /// deactivate together counts against `max_deactivation_share`.
    pub guard_window_hours: u64,
    /// A plan that would leave a school unit without any role from its source waits for
    /// an administrator (a unit closing, or a register sending half its data).
    pub guard_emptied_units: bool,
    /// A push source's changes are recorded in one run per this many seconds.
    pub push_run_window: u64,
    /// The largest SCIM request body a push source may send, bytes.
    pub push_body_limit: usize,
    /// Sources by name.
    pub sources: std::collections::BTreeMap<String, SourceConfig>,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            max_deactivation_share: 0.05,
            chunk_size: 1000,
            retention_days: 365,
            guard_window_hours: 24,
            guard_emptied_units: true,
            push_run_window: 600,
            push_body_limit: 1024 * 1024,
            sources: Default::default(),
        }
    }
}

/// How a source's register reaches Portvakt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Portvakt reads the SS 12000 v2.1 API (`base_url`).
    #[default]
    Ss12000,
    /// The register pushes to Portvakt's EGIL SCIM server under `/scim/v2/`.
    Scim,
}

/// One register: read through the SS 12000 v2.1 API, or pushing over EGIL SCIM.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    #[serde(default)]
    pub kind: SourceKind,
    /// The API base, e.g. `https://api.example.se/ss12000v2-api/source/123/v2.0/`
    /// (`ss12000` only).
    #[serde(default)]
    pub base_url: String,
    /// `ss12000`: a static bearer token Portvakt sends, read from this file. `scim`: the
    /// token the pushing client must send (kept in memory only as its SHA-256). Never put a
    /// secret in the main file.
    pub token_file: Option<PathBuf>,
    /// `scim`: a listener of the source's own with mutual TLS (the server certificate of
    /// `[tls]`); the client's certificate is accepted only if its key matches `client_pins`.
    pub listen: Option<SocketAddr>,
    /// `scim` with `listen`: base64 SHA-256 digests of the SubjectPublicKeyInfo of the
    /// client keys allowed in (as federation metadata pins them).
    #[serde(default)]
    pub client_pins: Vec<String>,
    /// OAuth2 client credentials: the token endpoint, client id and a file holding the
    /// secret.
    pub token_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub scope: Option<String>,
    /// Client certificate (PEM chain and key) for mutual TLS towards the register.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// An extra trust anchor (PEM) for a register with a private CA.
    pub ca_cert: Option<PathBuf>,
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// `serve` runs an incremental sync this often (seconds; 0: never) …
    #[serde(default = "default_incremental_every")]
    pub incremental_every: u64,
    /// … and a full one this often (seconds; 0: never).
    #[serde(default = "default_full_every")]
    pub full_every: u64,
    /// The `externalIdentifiers[].context` whose value is the person's username.
    pub username_context: Option<String>,
}

fn default_page_size() -> u32 {
    1000
}
fn default_incremental_every() -> u64 {
    900
}
fn default_full_every() -> u64 {
    86_400
}

/// Which BankID the login talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BankIdEnvironment {
    /// The built-in stub, mounted at `/bankid-stub/` (development mode only).
    Stub,
    /// BankID's test environment (test root CA, test certificate policies).
    Test,
    /// BankID's production environment.
    Production,
}

/// BankID login (`bankid/`, `authn::bankid`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BankIdConfig {
    pub enabled: bool,
    pub environment: BankIdEnvironment,
    /// The RP API base (ending in `/rp/v6.0/`); empty means the environment's (for `stub`,
    /// `<issuer>/bankid-stub/rp/v6.0/`). Point it at `portvakt bankid-stub` to test the
    /// client over mutual TLS.
    pub url: String,
    /// The RP client certificate and key (PEM) …
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// … or a PKCS#12 file and a file holding its password (converted at start).
    pub pkcs12: Option<PathBuf>,
    pub pkcs12_password_file: Option<PathBuf>,
    /// Trust anchor (PEM) instead of BankID's own root for the environment. Only for a
    /// stub with a test CA: refused in production mode.
    pub ca_cert: Option<PathBuf>,
    /// The assurance level (acr) a BankID login reaches.
    pub acr: String,
    /// Ask for the security code even when the app could use biometrics.
    pub pin_code: bool,
    /// `requirement.certificatePolicies`; empty means Mobile BankID and BankID on file of the
    /// environment.
    pub certificate_policies: Vec<String>,
    /// How long after a BankID login the person may set a new password, seconds.
    pub reset_window: i64,
    /// The mounted stub's timing (seconds): an order nobody picks up fails with
    /// `startFailed` after `start_timeout`; any order ends after `order_lifetime`.
    pub stub_start_timeout: u64,
    pub stub_order_lifetime: u64,
}

impl Default for BankIdConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            environment: BankIdEnvironment::Test,
            url: String::new(),
            client_cert: None,
            client_key: None,
            pkcs12: None,
            pkcs12_password_file: None,
            ca_cert: None,
            acr: validate::ACR_TWO_FACTOR.into(),
            pin_code: false,
            certificate_policies: Vec::new(),
            reset_window: 600,
            stub_start_timeout: 30,
            stub_order_lifetime: 180,
        }
    }
}

/// The SAML2 IdP (`saml/`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamlConfig {
    /// The IdP's entityID; empty means `<issuer>/saml/metadata`.
    pub entity_id: String,
    /// Scope of eduPersonPrincipalName and scoped affiliations, and schacHomeOrganization
    /// (the municipality's domain); empty means the issuer's host name.
    pub scope: String,
    /// Display names in the metadata's mdui:UIInfo.
    pub display_name_sv: String,
    pub display_name_en: String,
    /// How long an assertion is valid (Conditions, SubjectConfirmationData), seconds.
    pub assertion_ttl: i64,
    /// Oldest IssueInstant accepted on a request, seconds (plus `tokens.clock_skew`).
    pub request_max_age: i64,
    /// Largest SAML message accepted, in bytes, before and after inflating.
    pub max_message_bytes: usize,
    /// Sign the IdP metadata document.
    pub sign_metadata: bool,
    /// How often metadata registered from a URL is fetched again, seconds.
    pub metadata_refresh: i64,
    /// XML signatures verified at once (libxmlsec1 is CPU work); 0 means one per CPU core.
    pub max_concurrent_verifications: usize,
    /// Messages allowed to wait for a verification slot; more are refused at once.
    pub verification_queue: usize,
    /// SAML attribute names (`urn:oid:…`) by FriendlyName, for attributes whose OID the
    /// Skolfederation profile defines but we could not verify; overrides the built-in ones.
    pub attribute_names: std::collections::BTreeMap<String, String>,
}

impl Default for SamlConfig {
    fn default() -> Self {
        Self {
            entity_id: String::new(),
            scope: String::new(),
            display_name_sv: "Kommunens inloggning för skolan".into(),
            display_name_en: "The municipality's school login".into(),
            assertion_ttl: 300,
            request_max_age: 300,
            max_message_bytes: 64 * 1024,
            sign_metadata: false,
            metadata_refresh: 3600,
            max_concurrent_verifications: 0,
            verification_queue: 16,
            attribute_names: Default::default(),
        }
    }
}

/// In-process read caches of database rows. Each instance may serve a cached row for at most
/// this many seconds after another instance or the CLI changed it; 0 turns the cache off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Registered clients, read on every token request.
    pub client_ttl: i64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self { client_ttl: 5 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Connection limits of the listener (plain and TLS), so that slow or idle clients cannot
/// hold the server's connections. Times in seconds, all positive.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Time to receive a request's headers (and, with TLS, to finish the handshake).
    pub header_timeout: u64,
    /// Time to receive a request's body once its headers are in.
    pub body_timeout: u64,
    /// Time for a whole request, from its headers to the response.
    pub request_timeout: u64,
    /// Connections served at once; more wait in the listen backlog until one closes.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            header_timeout: 10,
            body_timeout: 30,
            request_timeout: 60,
            max_connections: 1024,
        }
    }
}

/// Lifetimes in seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    pub access_ttl: i64,
    pub id_ttl: i64,
    pub refresh_ttl: i64,
    pub code_ttl: i64,
    pub clock_skew: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    pub idle_ttl: i64,
    pub absolute_ttl: i64,
    pub login_ttl: i64,
}

/// argon2id parameters for people's passwords.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordConfig {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Hashes computed at once; the rest queue. 0 means one per CPU core.
    pub max_concurrent: usize,
    /// Hashes waiting for a thread at most; a login beyond it is answered 503 at once
    /// instead of waiting. 0 means 32 per hashing thread: at the default parameters about
    /// 0.4 s of hashing, enough for a Monday morning's burst of pupils (the storm benchmark
    /// shed a fifth of its logins with four per thread) and still a bound on a flood.
    pub max_queued: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyConfig {
    /// Seconds between `keys rotate` publishing a key and signing with it, so relying
    /// parties that cache the JWKS have fetched it first.
    pub activation_delay: i64,
    /// How often (seconds) an instance re-reads the key set, to see rotations made elsewhere.
    pub reload_interval: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    /// Failed attempts per (account, address) before delays start.
    pub free_attempts: i64,
    /// Upper bound of the delay in seconds. Never a lock-out.
    pub max_delay: i64,
    /// Failed attempts per account, from any address, before the account's own delay
    /// starts (it grows the same way, up to `max_delay`): slows guessing spread over many
    /// addresses without locking the owner out.
    pub account_free_attempts: i64,
    /// Password attempts per client address (an IPv6 /64) in `address_window` seconds, for
    /// spraying across accounts. A school's pupils share one NAT address: 120 a minute lets
    /// 30 pupils a minute log in with room for typos.
    pub address_attempts: i64,
    pub address_window: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub max_connections: u32,
    /// Seconds a request waits for a database connection before it fails with 503 (the
    /// database is gone or every connection is busy), instead of sqlx's 30 s.
    pub acquire_timeout: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            issuer: "http://localhost:8080".into(),
            database_url: String::new(),
            data_dir: PathBuf::from("data"),
            mode: Mode::Development,
            kek_file: None,
            trusted_proxies: Vec::new(),
            tls: None,
            server: ServerConfig::default(),
            tokens: TokenConfig::default(),
            session: SessionConfig::default(),
            password: PasswordConfig::default(),
            keys: KeyConfig::default(),
            throttle: ThrottleConfig::default(),
            database: DatabaseConfig::default(),
            cache: CacheConfig::default(),
            saml: SamlConfig::default(),
            directory: DirectoryConfig::default(),
            bankid: BankIdConfig::default(),
            sync: SyncConfig::default(),
            upstreams: Vec::new(),
            login_policies: Vec::new(),
            admin: AdminConfig::default(),
            metrics: MetricsConfig::default(),
            retention: RetentionConfig::default(),
            log: LogConfig::default(),
        }
    }
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            access_ttl: 600,
            id_ttl: 300,
            refresh_ttl: 8 * 3600,
            code_ttl: 60,
            clock_skew: 60,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_ttl: 8 * 3600,
            absolute_ttl: 12 * 3600,
            login_ttl: 30 * 60,
        }
    }
}

impl Default for PasswordConfig {
    /// OWASP's minimum for argon2id: m=19 MiB, t=2, p=1.
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
            max_concurrent: 0,
            max_queued: 0,
        }
    }
}

impl Default for KeyConfig {
    fn default() -> Self {
        Self {
            activation_delay: 24 * 3600,
            reload_interval: 10,
        }
    }
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            free_attempts: 5,
            max_delay: 60,
            account_free_attempts: 20,
            address_attempts: 120,
            address_window: 60,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: 5,
        }
    }
}

impl Config {
    /// Reads the file (if any), applies `PORTVAKT_*` overrides from `env` and checks the result
    /// (what can be checked without the domain; see `validate`).
    pub fn load(
        file: Option<&std::path::Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::Read(path.to_path_buf(), e))?;
                toml::from_str(&text).map_err(|e| {
                    ConfigError::Parse(path.to_path_buf(), validate::parse_error(&text, &e))
                })?
            }
            None => Config::default(),
        };
        env::apply(&mut config, env)?;
        let config = config.finish()?;
        config.retention.check()?;
        Ok(config)
    }

    /// True when cookies must carry `Secure` (and the `__Host-` prefix).
    pub fn secure_cookies(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    pub fn password_workers(&self) -> usize {
        match self.password.max_concurrent {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            n => n,
        }
    }

    /// Concurrent signature verifications (`[saml] max_concurrent_verifications`, 0 = one per
    /// core).
    pub fn saml_verifications(&self) -> usize {
        match self.saml.max_concurrent_verifications {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            n => n,
        }
    }

    /// The bound of the hashing queue (`[password] max_queued`, 0 = 32 per thread).
    pub fn password_queue(&self) -> usize {
        match self.password.max_queued {
            0 => 32 * self.password_workers(),
            n => n,
        }
    }

    /// The SAML IdP's entityID.
    pub fn saml_entity_id(&self) -> String {
        if self.saml.entity_id.is_empty() {
            format!("{}/saml/metadata", self.issuer)
        } else {
            self.saml.entity_id.clone()
        }
    }

    /// The scope of eduPersonPrincipalName and scoped affiliations.
    pub fn saml_scope(&self) -> String {
        if !self.saml.scope.is_empty() {
            return self.saml.scope.clone();
        }
        url::Url::parse(&self.issuer)
            .ok()
            .and_then(|u| u.host_str().map(String::from))
            .unwrap_or_else(|| "localhost".into())
    }

    /// A configuration for tests: an isolated database URL and fast argon2 parameters.
    pub fn for_tests(database_url: &str, data_dir: PathBuf) -> Self {
        let mut c = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database_url.to_string(),
            data_dir,
            ..Config::default()
        };
        c.password = PasswordConfig {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
            max_concurrent: 2,
            max_queued: 0,
        };
        c.keys.reload_interval = 0;
        c.cache.client_ttl = 0;
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_run_without_a_file() {
        let c = Config::load(None, |_| None).unwrap();
        assert!(c.database_url.starts_with("sqlite://data/portvakt.db"));
        assert_eq!(c.mode, Mode::Development);
    }

    #[test]
    fn unknown_keys_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:1\"\nlisten_port = 3\n").unwrap();
        let err = Config::load(Some(&path), |_| None).unwrap_err().to_string();
        assert!(err.contains("listen_port"), "{err}");
    }

    #[test]
    fn env_overrides_file() {
        let c = Config::load(None, |k| {
            (k == "PORTVAKT_ISSUER").then(|| "https://idp.example.se/".to_string())
        })
        .unwrap();
        assert_eq!(c.issuer, "https://idp.example.se");
        assert!(c.secure_cookies());
    }

    #[test]
    fn production_requires_https() {
        let err = Config::load(None, |k| {
            (k == "PORTVAKT_MODE").then(|| "production".into())
        });
        assert!(err.is_err());
    }

    #[test]
    fn the_example_file_is_valid_and_shows_the_defaults() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("portvakt.example.toml");
        let c = Config::load(Some(&path), |_| None).unwrap();
        assert_eq!(c.bankid.acr, BankIdConfig::default().acr);
        assert_eq!(c.bankid.stub_order_lifetime, 180);
        let (s, d) = (&c.server, ServerConfig::default());
        assert_eq!(
            (s.header_timeout, s.body_timeout, s.request_timeout),
            (d.header_timeout, d.body_timeout, d.request_timeout)
        );
        assert_eq!(s.max_connections, d.max_connections);
        let (t, d) = (&c.throttle, ThrottleConfig::default());
        assert_eq!(
            (t.free_attempts, t.max_delay, t.account_free_attempts),
            (d.free_attempts, d.max_delay, d.account_free_attempts)
        );
        assert_eq!(
            (t.address_attempts, t.address_window),
            (d.address_attempts, d.address_window)
        );
        assert_eq!(c.password.max_queued, PasswordConfig::default().max_queued);
        let (r, d) = (&c.retention, RetentionConfig::default());
        assert_eq!(
            (
                r.release_records_days,
                r.login_events_days,
                r.audit_events_days
            ),
            (
                d.release_records_days,
                d.login_events_days,
                d.audit_events_days
            )
        );
        assert_eq!(
            (r.sync_runs_days, r.sync_details_days, r.ended_sessions_days),
            (d.sync_runs_days, d.sync_details_days, d.ended_sessions_days)
        );
        assert_eq!(c.log.format, LogFormat::Text);
        let (b, d) = (&c.database, DatabaseConfig::default());
        assert_eq!(
            (b.max_connections, b.acquire_timeout),
            (d.max_connections, d.acquire_timeout)
        );
    }

    #[test]
    fn server_limits_must_be_positive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        for bad in [
            "header_timeout = 0",
            "body_timeout = 0",
            "request_timeout = 0",
            "max_connections = 0",
        ] {
            std::fs::write(&path, format!("[server]\n{bad}\n")).unwrap();
            let err = Config::load(Some(&path), |_| None).unwrap_err().to_string();
            assert!(err.contains("server"), "{bad}: {err}");
        }
        std::fs::write(&path, "[server]\nheader_timeout = 1\nmax_connections = 2\n").unwrap();
        let c = Config::load(Some(&path), |_| None).unwrap();
        assert_eq!((c.server.header_timeout, c.server.max_connections), (1, 2));
        assert_eq!(c.server.body_timeout, 30);
    }

    #[test]
    fn the_database_acquire_timeout_must_be_positive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, "[database]\nacquire_timeout = 0\n").unwrap();
        let err = Config::load(Some(&path), |_| None).unwrap_err().to_string();
        assert!(
            err.contains("database") && err.contains("acquire_timeout"),
            "{err}"
        );
        std::fs::write(&path, "[database]\nacquire_timeout = 2\n").unwrap();
        let c = Config::load(Some(&path), |_| None).unwrap();
        assert_eq!(c.database.acquire_timeout, 2);
    }

    #[test]
    fn bankid_settings_are_checked() {
        let load = |toml: &str, env: &'static [(&'static str, &'static str)]| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("p.toml");
            std::fs::write(&path, toml).unwrap();
            Config::load(Some(&path), |k| {
                env.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            })
            .map_err(|e| e.to_string())
        };
        let prod = &[
            ("PORTVAKT_MODE", "production"),
            ("PORTVAKT_ISSUER", "https://idp.example.se"),
        ];
        let stub = "[bankid]\nenabled = true\nenvironment = \"stub\"\n";
        assert!(load(stub, &[]).is_ok());
        let err = load(stub, prod).unwrap_err();
        assert!(err.contains("stub"), "{err}");
        let no_cert = "[bankid]\nenabled = true\nenvironment = \"production\"\n";
        let err = load(no_cert, prod).unwrap_err();
        assert!(err.contains("pkcs12"), "{err}");
        let half = "[bankid]\nenabled = true\nclient_cert = \"a.pem\"\n";
        assert!(load(half, &[]).unwrap_err().contains("go together"));
        let bad_acr = "[bankid]\nenabled = true\nenvironment = \"stub\"\nacr = \"urn:x\"\n";
        assert!(load(bad_acr, &[]).unwrap_err().contains("[bankid] acr"));
        // Disabled, nothing is required.
        assert!(load("[bankid]\nenvironment = \"production\"\n", prod).is_ok());
    }

    #[test]
    fn the_hashing_queue_holds_a_burst_per_thread_unless_set() {
        let mut c = Config::default();
        c.password.max_concurrent = 2;
        assert_eq!(c.password_queue(), 64);
        c.password.max_queued = 3;
        assert_eq!(c.password_queue(), 3);
    }
}
