//! Audit events of authentication, one per outcome: a login, a failed or throttled password,
//! a logout, a replayed code or refresh token. Their kinds start with `login.`, so they are
//! kept for `[retention] login_events_days`. They name people by internal id and services by
//! id: never a password, a token, a username as typed (it may be a personnummer) or a civic
//! number.

use super::Authn;
use crate::storage;

pub enum Event<'a> {
    /// A login finished a transaction for a relying party, with a method at a level.
    Success {
        person_id: &'a str,
        rp_id: &'a str,
        method: &'a str,
        acr: &'a str,
    },
    /// A password was wrong, or the account unknown or inactive (one answer for all).
    Failure {
        person_id: Option<&'a str>,
        address: &'a str,
        reason: &'static str,
    },
    /// A password attempt refused before hashing: which limit stopped it.
    Throttled {
        person_id: Option<&'a str>,
        address: &'a str,
        limit: &'static str,
    },
    /// An SSO session ended by a logout (or a password reset's), with the relying parties
    /// it had been used for.
    Logout {
        person_id: &'a str,
        relying_parties: &'a [(String, String)],
    },
    /// An authorization code redeemed twice: what it issued was revoked.
    CodeReplay {
        person_id: &'a str,
        client_id: &'a str,
    },
    /// A used refresh token presented again: its family was revoked.
    RefreshReplay {
        person_id: &'a str,
        client_id: &'a str,
    },
}

impl Event<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Event::Success { .. } => "login.success",
            Event::Failure { .. } => "login.failure",
            Event::Throttled { .. } => "login.throttled",
            Event::Logout { .. } => "login.logout",
            Event::CodeReplay { .. } => "login.code_replay",
            Event::RefreshReplay { .. } => "login.refresh_replay",
        }
    }

    /// The person concerned; `login` when the account is not known.
    fn actor(&self) -> &str {
        match self {
            Event::Success { person_id, .. }
            | Event::Logout { person_id, .. }
            | Event::CodeReplay { person_id, .. }
            | Event::RefreshReplay { person_id, .. } => person_id,
            Event::Failure { person_id, .. } | Event::Throttled { person_id, .. } => {
                person_id.unwrap_or("login")
            }
        }
    }

    fn detail(&self) -> String {
        let account = |p: &Option<&str>| if p.is_some() { "known" } else { "unknown" };
        match self {
            Event::Success {
                rp_id, method, acr, ..
            } => format!("rp={rp_id} method={method} acr={acr}"),
            Event::Failure {
                person_id,
                address,
                reason,
            } => format!(
                "from={address} account={} reason={reason}",
                account(person_id)
            ),
            Event::Throttled {
                person_id,
                address,
                limit,
            } => format!(
                "from={address} account={} limit={limit}",
                account(person_id)
            ),
            Event::Logout {
                relying_parties, ..
            } => {
                let rps: Vec<&str> = relying_parties.iter().map(|(id, _)| id.as_str()).collect();
                format!("rp={}", rps.join(","))
            }
            Event::CodeReplay { client_id, .. } | Event::RefreshReplay { client_id, .. } => {
                format!("rp={client_id}")
            }
        }
    }
}

impl Authn {
    /// Records the audit event of an authentication outcome. A failure to write it is
    /// logged as an error, not returned: the person's answer does not wait on it.
    pub async fn audit(&self, event: Event<'_>, now: i64) {
        let (kind, actor, detail) = (event.kind(), event.actor(), event.detail());
        if let Err(e) = storage::records::audit(&self.db, kind, actor, &detail, now).await {
            tracing::error!(kind, "audit event not written: {}", crate::error_chain(&e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_name_ids_and_addresses_only() {
        let e = Event::Failure {
            person_id: None,
            address: "192.0.2.7",
            reason: "invalid credentials",
        };
        assert_eq!((e.kind(), e.actor()), ("login.failure", "login"));
        assert_eq!(
            e.detail(),
            "from=192.0.2.7 account=unknown reason=invalid credentials"
        );
        let rps = [
            ("c1".to_string(), "oidc".to_string()),
            ("sp".into(), "saml".into()),
        ];
        let e = Event::Logout {
            person_id: "p1",
            relying_parties: &rps,
        };
        assert_eq!((e.actor(), e.detail().as_str()), ("p1", "rp=c1,sp"));
    }
}
