//! The checks a loaded configuration must pass before anything starts: those that need
//! nothing but the configuration itself. Checks that need the domain (the directory's
//! identifier patterns) run beside `Config::load` at start-up (`cli::load_config`).

use super::{BankIdEnvironment, Config, ConfigError, Mode};

/// Skolfederation's levels of assurance a BankID login may be configured to reach: the
/// values of `authn::acr::{BAS, TWO_FACTOR}`, repeated so that `config` needs nothing else.
const ACR_BAS: &str = "http://id.skolfederation.se/loa/bas";
pub(super) const ACR_TWO_FACTOR: &str = "http://id.skolfederation.se/loa/2fa";

impl Config {
    /// Normalises (the issuer without a trailing slash, the default database URL) and checks.
    pub(super) fn finish(mut self) -> Result<Self, ConfigError> {
        self.issuer = self.issuer.trim_end_matches('/').to_string();
        let issuer = url::Url::parse(&self.issuer)
            .map_err(|e| ConfigError::Value("issuer", format!("{}: {e}", self.issuer)))?;
        if issuer.query().is_some() || issuer.fragment().is_some() {
            return Err(ConfigError::Value(
                "issuer",
                "must not have a query or fragment".into(),
            ));
        }
        if self.mode == Mode::Production && issuer.scheme() != "https" {
            return Err(ConfigError::Value(
                "issuer",
                "must be https in production".into(),
            ));
        }
        if self.database_url.is_empty() {
            self.database_url = format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("portvakt.db").display()
            );
        }
        if !(self.database_url.starts_with("sqlite:") || self.database_url.starts_with("postgres"))
        {
            return Err(ConfigError::Value(
                "database_url",
                "must start with sqlite:// or postgres://".into(),
            ));
        }
        let d = &self.directory;
        if d.lead_days < 0 || d.grace_days < 0 {
            return Err(ConfigError::Value(
                "directory",
                "lead_days and grace_days must not be negative".into(),
            ));
        }
        for (register, role) in &d.duty_roles {
            if !["teacher", "principal", "staff"].contains(&role.as_str()) {
                return Err(ConfigError::Value(
                    "directory.duty_roles",
                    format!("{register} = {role}: expected teacher, principal or staff"),
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.sync.max_deactivation_share) || self.sync.chunk_size == 0 {
            return Err(ConfigError::Value(
                "sync",
                "max_deactivation_share must be 0..1 and chunk_size positive".into(),
            ));
        }
        let b = &self.bankid;
        if b.enabled {
            if self.mode == Mode::Production
                && (b.environment == BankIdEnvironment::Stub || b.ca_cert.is_some())
            {
                return Err(ConfigError::Value(
                    "bankid",
                    "the stub and ca_cert are refused in production mode".into(),
                ));
            }
            if ![ACR_BAS, ACR_TWO_FACTOR].contains(&b.acr.as_str()) {
                return Err(ConfigError::Value(
                    "bankid.acr",
                    format!("{}: expected {}", b.acr, ACR_TWO_FACTOR),
                ));
            }
            if b.environment != BankIdEnvironment::Stub
                && b.client_cert.is_none()
                && b.pkcs12.is_none()
            {
                return Err(ConfigError::Value(
                    "bankid",
                    "client_cert and client_key, or pkcs12, are required (the RP certificate)"
                        .into(),
                ));
            }
            if b.client_cert.is_some() != b.client_key.is_some() {
                return Err(ConfigError::Value(
                    "bankid",
                    "client_cert and client_key go together".into(),
                ));
            }
            if b.client_cert.is_some() && b.pkcs12.is_some() {
                return Err(ConfigError::Value(
                    "bankid",
                    "give client_cert and client_key, or pkcs12, not both".into(),
                ));
            }
            if b.reset_window < 0 || b.stub_start_timeout == 0 || b.stub_order_lifetime == 0 {
                return Err(ConfigError::Value(
                    "bankid",
                    "reset_window must not be negative and the stub's times must be positive"
                        .into(),
                ));
            }
        }
        if self.database.acquire_timeout == 0 {
            return Err(ConfigError::Value(
                "database",
                "acquire_timeout must be at least 1 second".into(),
            ));
        }
        let s = &self.server;
        if [s.header_timeout, s.body_timeout, s.request_timeout].contains(&0)
            || s.max_connections == 0
        {
            return Err(ConfigError::Value(
                "server",
                "header_timeout, body_timeout, request_timeout and max_connections must be \
                 positive"
                    .into(),
            ));
        }
        let t = &self.tokens;
        if [t.access_ttl, t.id_ttl, t.refresh_ttl, t.code_ttl]
            .iter()
            .any(|v| *v <= 0)
        {
            return Err(ConfigError::Value(
                "tokens",
                "lifetimes must be positive".into(),
            ));
        }
        let a = &self.admin;
        if !(1..=86_400).contains(&a.idle_timeout) || a.methods.is_empty() {
            return Err(ConfigError::Value(
                "admin",
                "idle_timeout must be 1..86400 seconds and methods must name at least one method"
                    .into(),
            ));
        }
        let th = &self.throttle;
        // A zero window or limit would refuse every login (or divide nothing); negative
        // attempts make no sense.
        if th.address_window <= 0 || th.address_attempts <= 0 || th.max_delay < 0 {
            return Err(ConfigError::Value(
                "throttle",
                "address_window and address_attempts must be positive".into(),
            ));
        }
        Ok(self)
    }
}
