//! `[retention]`: how long records about people are kept before housekeeping purges them
//! (`app::retention`). Days, each at least one. The defaults and why they were chosen are in
//! README.md ("Retention").

use super::ConfigError;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Release records (which attributes went to which service): a school year and its
    /// summer, so a person's question about last year can be answered.
    pub release_records_days: i64,
    /// Login audit events (`login.*`: successes, failures, throttling, logouts, replays):
    /// half a year, long enough to look into misuse of an account found during a term.
    pub login_events_days: i64,
    /// Every other audit event (administrative changes, views of protected identities):
    /// two years of accountability for what administrators did.
    pub audit_events_days: i64,
    /// Sync run records (status, counts, reasons); the newest successful run of each
    /// source is always kept.
    pub sync_runs_days: i64,
    /// The diffs and plans of finished sync runs (they name people and what changed): a
    /// month, enough to review a run.
    pub sync_details_days: i64,
    /// SSO sessions after they ended (logout or expiry), for the admin's person page.
    pub ended_sessions_days: i64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            release_records_days: 365,
            login_events_days: 180,
            audit_events_days: 730,
            sync_runs_days: 365,
            sync_details_days: 30,
            ended_sessions_days: 1,
        }
    }
}

impl RetentionConfig {
    /// Each setting is at least one day: records must be purged, and a day of sessions
    /// and sync details is the least that helps an operator.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        for (key, days) in [
            ("retention.release_records_days", self.release_records_days),
            ("retention.login_events_days", self.login_events_days),
            ("retention.audit_events_days", self.audit_events_days),
            ("retention.sync_runs_days", self.sync_runs_days),
            ("retention.sync_details_days", self.sync_details_days),
            ("retention.ended_sessions_days", self.ended_sessions_days),
        ] {
            if !(1..=36_500).contains(&days) {
                return Err(ConfigError::Value(
                    key,
                    format!("{days}: set a number of days from 1 to 36500"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_at_least_a_day() {
        assert!(RetentionConfig::default().check().is_ok());
        let none = RetentionConfig {
            sync_details_days: 0,
            ..Default::default()
        };
        let err = none.check().unwrap_err().to_string();
        assert!(err.contains("retention.sync_details_days"), "{err}");
        assert!(err.contains("from 1 to 36500"), "{err}");
    }
}
