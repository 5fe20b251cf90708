//! The checks a loaded configuration must pass before anything starts: those that need
//! nothing but the configuration itself. Checks that need the domain (the directory's
//! identifier patterns) run beside `Config::load` at start-up (`cli::load_config`).
//!
//! Every error names one setting as the file spells it (`[section] key`), what is wrong
//! with its value, and what to set instead (usually the default).

use super::{BankIdEnvironment, Config, ConfigError, Mode, SourceKind};
use std::fmt::Display;

/// Skolfederation's levels of assurance a BankID login may be configured to reach: the
/// values of `authn::acr::{BAS, TWO_FACTOR}`, repeated so that `config` needs nothing else.
const ACR_BAS: &str = "http://id.skolfederation.se/loa/bas";
pub(super) const ACR_TWO_FACTOR: &str = "http://id.skolfederation.se/loa/2fa";

fn bad(setting: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Value(setting, problem.into())
}

/// `value` must be above zero; the message offers the default.
fn positive<T: PartialOrd + Default + Display>(
    setting: &'static str,
    value: T,
    default: T,
) -> Result<(), ConfigError> {
    if value > T::default() {
        Ok(())
    } else {
        Err(bad(
            setting,
            format!("{value} must be positive; set e.g. {default} (the default)"),
        ))
    }
}

/// `value` must not be below zero; the message offers the default.
fn not_negative(setting: &'static str, value: i64, default: i64) -> Result<(), ConfigError> {
    if value >= 0 {
        Ok(())
    } else {
        Err(bad(
            setting,
            format!("{value} must not be negative; set e.g. {default} (the default)"),
        ))
    }
}

impl Config {
    /// Normalises (the issuer without a trailing slash, the default database URL) and checks.
    pub(super) fn finish(mut self) -> Result<Self, ConfigError> {
        self.issuer = self.issuer.trim_end_matches('/').to_string();
        self.check_issuer()?;
        if self.database_url.is_empty() {
            self.database_url = format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("portvakt.db").display()
            );
        }
        // The URL may hold a password: it is never repeated in the message.
        if !(self.database_url.starts_with("sqlite:") || self.database_url.starts_with("postgres"))
        {
            return Err(bad(
                "database_url",
                "must start with sqlite:// or postgres://, e.g. \
                 sqlite:///var/lib/portvakt/portvakt.db or \
                 postgres://portvakt:PASSWORD@127.0.0.1:5432/portvakt",
            ));
        }
        self.check_directory()?;
        self.check_bankid()?;
        self.check_limits()?;
        Ok(self)
    }

    fn check_issuer(&self) -> Result<(), ConfigError> {
        let example = "set the public base URL, e.g. https://idp.example.se";
        let issuer = url::Url::parse(&self.issuer).map_err(|e| {
            bad(
                "issuer",
                format!("{:?} is not a URL ({e}); {example}", self.issuer),
            )
        })?;
        if issuer.query().is_some() || issuer.fragment().is_some() {
            return Err(bad(
                "issuer",
                format!("{:?} has a query or fragment; {example}", self.issuer),
            ));
        }
        if self.mode == Mode::Production && issuer.scheme() != "https" {
            return Err(bad(
                "issuer",
                format!(
                    "{:?} must be https:// in production mode; {example} (or set mode = \
                     \"development\" for a test installation)",
                    self.issuer
                ),
            ));
        }
        Ok(())
    }

    fn check_directory(&self) -> Result<(), ConfigError> {
        let (d, def) = (&self.directory, super::DirectoryConfig::default());
        not_negative("[directory] lead_days", d.lead_days, def.lead_days)?;
        not_negative("[directory] grace_days", d.grace_days, def.grace_days)?;
        for (register, role) in &d.duty_roles {
            if !["teacher", "principal", "staff"].contains(&role.as_str()) {
                return Err(bad(
                    "[directory.duty_roles]",
                    format!("{register:?} = {role:?}: set teacher, principal or staff"),
                ));
            }
        }
        let s = &self.sync;
        if !(0.0..=1.0).contains(&s.max_deactivation_share) {
            return Err(bad(
                "[sync] max_deactivation_share",
                format!(
                    "{} must be a share between 0 and 1; set e.g. 0.05 (the default)",
                    s.max_deactivation_share
                ),
            ));
        }
        positive("[sync] chunk_size", s.chunk_size, 1000)?;
        positive("[sync] guard_window_hours", s.guard_window_hours, 24)?;
        positive("[sync] push_run_window", s.push_run_window, 600)?;
        positive("[sync] push_body_limit", s.push_body_limit, 1024 * 1024)?;
        for (name, src) in &s.sources {
            self.check_source(name, src)?;
        }
        Ok(())
    }

    fn check_source(&self, name: &str, s: &super::SourceConfig) -> Result<(), ConfigError> {
        let at = |key: &str| format!("[sync.sources.{name}] {key}");
        let bad = |setting: &str, problem: &str| {
            ConfigError::Value("[sync.sources]", format!("{setting} {problem}"))
        };
        match s.kind {
            SourceKind::Ss12000 => {
                if s.base_url.is_empty() {
                    return Err(bad(
                        &at("base_url"),
                        "required for an SS 12000 source; set the API base, or kind = \"scim\" \
                         for a register that pushes",
                    ));
                }
                if s.listen.is_some() || !s.client_pins.is_empty() {
                    return Err(bad(
                        &at("listen"),
                        "listen and client_pins are for kind = \"scim\" sources only",
                    ));
                }
            }
            SourceKind::Scim => {
                let api_only = [
                    ("base_url", !s.base_url.is_empty()),
                    ("token_url", s.token_url.is_some()),
                    ("client_id", s.client_id.is_some()),
                    ("client_secret_file", s.client_secret_file.is_some()),
                    ("client_cert", s.client_cert.is_some()),
                    ("client_key", s.client_key.is_some()),
                    ("ca_cert", s.ca_cert.is_some()),
                    ("username_context", s.username_context.is_some()),
                ];
                if let Some((key, _)) = api_only.iter().find(|(_, set)| *set) {
                    return Err(bad(
                        &at(key),
                        "is for SS 12000 sources; a scim source pushes to Portvakt (set \
                         token_file, or listen with client_pins)",
                    ));
                }
                match (s.token_file.is_some(), s.listen.is_some()) {
                    (false, false) => {
                        return Err(bad(
                            &at("token_file"),
                            "a scim source needs a way in: token_file (a bearer token) or \
                             listen with client_pins (mutual TLS)",
                        ));
                    }
                    (_, true) if s.client_pins.is_empty() => {
                        return Err(bad(
                            &at("client_pins"),
                            "listen needs the pinned client keys (base64 SHA-256 of each \
                             SubjectPublicKeyInfo)",
                        ));
                    }
                    (_, true) if self.tls.is_none() => {
                        return Err(bad(
                            &at("listen"),
                            "mutual TLS needs the server certificate of [tls]",
                        ));
                    }
                    _ => {}
                }
                for pin in &s.client_pins {
                    use base64::Engine;
                    let ok = base64::engine::general_purpose::STANDARD
                        .decode(pin)
                        .is_ok_and(|d| d.len() == 32);
                    if !ok {
                        return Err(bad(
                            &at("client_pins"),
                            &format!("{pin:?} is not a base64 SHA-256 digest (44 characters)"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn check_bankid(&self) -> Result<(), ConfigError> {
        let b = &self.bankid;
        if !b.enabled {
            return Ok(());
        }
        if self.mode == Mode::Production && b.environment == BankIdEnvironment::Stub {
            return Err(bad(
                "[bankid] environment",
                "\"stub\" is refused in production mode; set \"test\" or \"production\"",
            ));
        }
        if self.mode == Mode::Production && b.ca_cert.is_some() {
            return Err(bad(
                "[bankid] ca_cert",
                "is refused in production mode (only a stub has a test CA); remove it",
            ));
        }
        if ![ACR_BAS, ACR_TWO_FACTOR].contains(&b.acr.as_str()) {
            return Err(bad(
                "[bankid] acr",
                format!(
                    "{:?}: set {ACR_TWO_FACTOR:?} (the default) or {ACR_BAS:?}",
                    b.acr
                ),
            ));
        }
        if b.environment != BankIdEnvironment::Stub && b.client_cert.is_none() && b.pkcs12.is_none()
        {
            return Err(bad(
                "[bankid] client_cert",
                "the RP certificate is required outside the stub: set client_cert and \
                 client_key (PEM), or pkcs12 and pkcs12_password_file",
            ));
        }
        if b.client_cert.is_some() != b.client_key.is_some() {
            let missing = if b.client_cert.is_some() {
                "[bankid] client_key"
            } else {
                "[bankid] client_cert"
            };
            return Err(bad(
                missing,
                "client_cert and client_key go together: set both (PEM files)",
            ));
        }
        if b.client_cert.is_some() && b.pkcs12.is_some() {
            return Err(bad(
                "[bankid] pkcs12",
                "give client_cert and client_key, or pkcs12, not both: remove one",
            ));
        }
        let def = super::BankIdConfig::default();
        not_negative("[bankid] reset_window", b.reset_window, def.reset_window)?;
        positive(
            "[bankid] stub_start_timeout",
            b.stub_start_timeout,
            def.stub_start_timeout,
        )?;
        positive(
            "[bankid] stub_order_lifetime",
            b.stub_order_lifetime,
            def.stub_order_lifetime,
        )
    }

    fn check_limits(&self) -> Result<(), ConfigError> {
        let (s, def) = (&self.server, super::ServerConfig::default());
        positive(
            "[server] header_timeout",
            s.header_timeout,
            def.header_timeout,
        )?;
        positive("[server] body_timeout", s.body_timeout, def.body_timeout)?;
        positive(
            "[server] request_timeout",
            s.request_timeout,
            def.request_timeout,
        )?;
        positive(
            "[server] max_connections",
            s.max_connections,
            def.max_connections,
        )?;
        let (d, def) = (&self.database, super::DatabaseConfig::default());
        positive(
            "[database] acquire_timeout",
            d.acquire_timeout,
            def.acquire_timeout,
        )?;
        let (t, def) = (&self.tokens, super::TokenConfig::default());
        positive("[tokens] access_ttl", t.access_ttl, def.access_ttl)?;
        positive("[tokens] id_ttl", t.id_ttl, def.id_ttl)?;
        positive("[tokens] refresh_ttl", t.refresh_ttl, def.refresh_ttl)?;
        positive("[tokens] code_ttl", t.code_ttl, def.code_ttl)?;
        not_negative("[tokens] clock_skew", t.clock_skew, def.clock_skew)?;
        let (se, def) = (&self.session, super::SessionConfig::default());
        positive("[session] idle_ttl", se.idle_ttl, def.idle_ttl)?;
        positive("[session] absolute_ttl", se.absolute_ttl, def.absolute_ttl)?;
        positive("[session] login_ttl", se.login_ttl, def.login_ttl)?;
        let (p, def) = (&self.password, super::PasswordConfig::default());
        positive("[password] iterations", p.iterations, def.iterations)?;
        positive("[password] parallelism", p.parallelism, def.parallelism)?;
        // argon2's own rule: at least 8 KiB per lane.
        if u64::from(p.memory_kib) < 8 * u64::from(p.parallelism) {
            return Err(bad(
                "[password] memory_kib",
                format!(
                    "{} is below argon2's minimum of 8 KiB per lane ({} for parallelism = {}); \
                     set e.g. {} (the default)",
                    p.memory_kib,
                    8 * p.parallelism,
                    p.parallelism,
                    def.memory_kib
                ),
            ));
        }
        let a = &self.admin;
        if !(1..=86_400).contains(&a.idle_timeout) {
            return Err(bad(
                "[admin] idle_timeout",
                format!(
                    "{} must be 1..86400 seconds; set e.g. 900 (the default)",
                    a.idle_timeout
                ),
            ));
        }
        if a.methods.is_empty() {
            return Err(bad(
                "[admin] methods",
                "must name at least one login method; set e.g. [\"password\", \"bankid\"] \
                 (the default)",
            ));
        }
        // A zero window or limit would refuse every login (or divide nothing); negative
        // attempts make no sense.
        let (th, def) = (&self.throttle, super::ThrottleConfig::default());
        positive(
            "[throttle] address_window",
            th.address_window,
            def.address_window,
        )?;
        positive(
            "[throttle] address_attempts",
            th.address_attempts,
            def.address_attempts,
        )?;
        not_negative("[throttle] max_delay", th.max_delay, def.max_delay)
    }
}

/// toml's message for a file that does not parse or fit, on one line with where it is: the
/// line number and the setting (`[section] key`) found from the error's position.
pub(super) fn parse_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().replace('\n', " ");
    let Some(span) = e.span() else {
        return message;
    };
    let start = span.start.min(text.len());
    let line_no = text[..start].matches('\n').count() + 1;
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    // The table the line belongs to: the nearest header above it (or the line itself).
    let header = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|h| h.split('#').next().unwrap_or(h).trim());
    let setting = if line.starts_with('[') {
        line.split('#').next().unwrap_or(line).trim().to_string()
    } else {
        let key = line.split('=').next().unwrap_or("").trim();
        match (header, key.is_empty()) {
            (Some(h), false) => format!("{h} {key}"),
            (Some(h), true) => h.to_string(),
            (None, false) => key.to_string(),
            (None, true) => String::new(),
        }
    };
    let hint = if message.starts_with("unknown field") {
        " (portvakt.example.toml lists every setting)"
    } else {
        ""
    };
    if setting.is_empty() {
        format!("line {line_no}: {message}{hint}")
    } else {
        format!("line {line_no}, {setting}: {message}{hint}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, toml).unwrap();
        match Config::load(Some(&path), |_| None) {
            Ok(_) => "ok".into(),
            Err(e) => e.to_string().replace(&path.display().to_string(), "FILE"),
        }
    }

    #[test]
    fn a_source_is_checked_for_its_kind() {
        let e = load("[sync.sources.ist]\ntoken_file = \"/t\"\n");
        assert!(e.contains("[sync.sources.ist] base_url required"), "{e}");
        let e = load("[sync.sources.ist]\nbase_url = \"https://x\"\nlisten = \"127.0.0.1:1\"\n");
        assert!(e.contains("for kind = \"scim\" sources only"), "{e}");
        let e = load("[sync.sources.egil]\nkind = \"scim\"\n");
        assert!(e.contains("needs a way in"), "{e}");
        let e = load(
            "[sync.sources.egil]\nkind = \"scim\"\ntoken_file = \"/t\"\nbase_url = \"https://x\"\n",
        );
        assert!(
            e.contains("[sync.sources.egil] base_url is for SS 12000 sources"),
            "{e}"
        );
        let e = load("[sync.sources.egil]\nkind = \"scim\"\nlisten = \"127.0.0.1:1\"\n");
        assert!(e.contains("client_pins"), "{e}");
        let e = load(
            "[sync.sources.egil]\nkind = \"scim\"\nlisten = \"127.0.0.1:1\"\nclient_pins = [\"AAAA\"]\n",
        );
        assert!(e.contains("[tls]"), "{e}");
        assert_eq!(
            load("[sync.sources.egil]\nkind = \"scim\"\ntoken_file = \"/t\"\n"),
            "ok"
        );
        let e = load("[sync]\nguard_window_hours = 0\n");
        assert!(e.contains("[sync] guard_window_hours"), "{e}");
    }

    #[test]
    fn a_parse_error_says_the_line_and_the_setting() {
        assert_eq!(
            load("# comment\n[server] # the listener\nbody_timeout = 1\nheadr = 2\n"),
            "invalid config file FILE: line 4, [server] headr: unknown field `headr`, expected \
             one of `header_timeout`, `body_timeout`, `request_timeout`, `max_connections` \
             (portvakt.example.toml lists every setting)"
        );
        assert!(
            load("issuer = 5\n").starts_with("invalid config file FILE: line 1, issuer: "),
            "{}",
            load("issuer = 5\n")
        );
        let e = load("[sync.sources.ist]\nbase_url = \"https://x\"\npage_size = \"many\"\n");
        assert!(
            e.contains("line 3, [sync.sources.ist] page_size: invalid type"),
            "{e}"
        );
        let e = load("[servr]\n");
        assert!(e.contains("line 1, [servr]: unknown field `servr`"), "{e}");
        assert_eq!(e.lines().count(), 1);
    }

    #[test]
    fn every_refused_value_names_one_setting_and_a_fix() {
        for (toml, setting, fix) in [
            (
                "[server]\nrequest_timeout = 0\n",
                "[server] request_timeout",
                "60",
            ),
            ("[tokens]\ncode_ttl = -1\n", "[tokens] code_ttl", "60"),
            ("[session]\nlogin_ttl = 0\n", "[session] login_ttl", "1800"),
            (
                "[directory]\ngrace_days = -3\n",
                "[directory] grace_days",
                "75",
            ),
            ("[sync]\nchunk_size = 0\n", "[sync] chunk_size", "1000"),
            ("[throttle]\nmax_delay = -1\n", "[throttle] max_delay", "60"),
            ("[admin]\nidle_timeout = 0\n", "[admin] idle_timeout", "900"),
            ("[admin]\nmethods = []\n", "[admin] methods", "password"),
            (
                "[bankid]\nenabled = true\nenvironment = \"stub\"\nclient_key = \"k.pem\"\n",
                "[bankid] client_cert",
                "set both",
            ),
        ] {
            let e = load(toml);
            assert!(
                e.starts_with(&format!("invalid setting {setting}: ")) && e.contains(fix),
                "{toml}: {e}"
            );
        }
    }
}
