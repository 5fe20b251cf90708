//! `[log]`: how log lines are written. Read by `main` before anything else runs
//! (`LogConfig::early`), so a line written while the rest of the file is checked already
//! has the chosen format.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event (the default).
    #[default]
    Text,
    /// One JSON object per line, for a log collector.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(format!("{s}: expected text or json")),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json` (`PORTVAKT_LOG_FORMAT` overrides it). Which lines are written is
    /// `PORTVAKT_LOG` (tracing's env-filter syntax).
    pub format: LogFormat,
}

impl LogConfig {
    /// The format before the configuration is fully loaded: `PORTVAKT_LOG_FORMAT`, else the
    /// file's `[log] format`, else text. A file that cannot be read or parsed gives text
    /// here; the full load that follows reports what is wrong with it.
    pub fn early(
        file: Option<&std::path::Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> LogFormat {
        if let Some(f) = env("PORTVAKT_LOG_FORMAT").and_then(|v| v.parse().ok()) {
            return f;
        }
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct OnlyLog {
            log: LogConfig,
        }
        file.and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|text| toml::from_str::<OnlyLog>(&text).ok())
            .map(|f| f.log.format)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_comes_from_the_environment_then_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:1\"\n[log]\nformat = \"json\"\n",
        )
        .unwrap();
        assert_eq!(LogConfig::early(Some(&path), |_| None), LogFormat::Json);
        let text = |k: &str| (k == "PORTVAKT_LOG_FORMAT").then(|| "text".to_string());
        assert_eq!(LogConfig::early(Some(&path), text), LogFormat::Text);
        assert_eq!(LogConfig::early(None, |_| None), LogFormat::Text);
        // A broken file gives text here; the full load reports it.
        std::fs::write(&path, "[log]\nformat = \"xml\"\n").unwrap();
        assert_eq!(LogConfig::early(Some(&path), |_| None), LogFormat::Text);
        assert!(crate::config::Config::load(Some(&path), |_| None).is_err());
    }
}
