//! `PORTVAKT_*` environment variables: the few settings they override after the file.

use super::{Config, ConfigError, Mode};

/// Applies the `PORTVAKT_*` overrides that `env` knows to `config`.
pub(super) fn apply(
    config: &mut Config,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    if let Some(v) = env("PORTVAKT_LISTEN") {
        config.listen = v.parse().map_err(|_| {
            ConfigError::Value(
                "PORTVAKT_LISTEN (listen)",
                format!("{v:?} is not an address and port; set e.g. 127.0.0.1:8080"),
            )
        })?;
    }
    if let Some(v) = env("PORTVAKT_ISSUER") {
        config.issuer = v;
    }
    if let Some(v) = env("PORTVAKT_DATABASE_URL") {
        config.database_url = v;
    }
    if let Some(v) = env("PORTVAKT_DATA_DIR") {
        config.data_dir = v.into();
    }
    if let Some(v) = env("PORTVAKT_MODE") {
        config.mode = match v.as_str() {
            "development" => Mode::Development,
            "production" => Mode::Production,
            _ => {
                return Err(ConfigError::Value(
                    "PORTVAKT_MODE (mode)",
                    format!("{v:?}: set development or production"),
                ));
            }
        };
    }
    if let Some(v) = env("PORTVAKT_KEK_FILE") {
        config.kek_file = Some(v.into());
    }
    Ok(())
}
