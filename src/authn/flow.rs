//! Login transactions: what a protocol front needs to resume after the person has logged in,
//! stored as a database row with an expiry (any instance can resume it).

use super::{Authn, Session, acr};
use crate::storage::{self, sessions::TransactionRecord};

/// What a login must satisfy, derived by the protocol front from the request.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Requirement {
    /// The person must log in again (OIDC prompt=login, SAML ForceAuthn).
    pub force: bool,
    /// The login must be at most this many seconds old (OIDC max_age).
    pub max_age: Option<i64>,
    /// The session must reach one of these levels (OIDC acr_values, SAML
    /// RequestedAuthnContext); empty means any.
    pub acr_values: Vec<String>,
}

impl Requirement {
    /// Whether an existing session can answer the request without a new login.
    pub fn reusable(&self, s: &Session, now: i64) -> bool {
        if self.force {
            return false;
        }
        if let Some(max) = self.max_age
            && now - s.auth_time > max
        {
            return false;
        }
        self.acr_values.is_empty()
            || self
                .acr_values
                .iter()
                .any(|a| acr::rank(&s.acr) >= acr::rank(a))
    }
}

#[derive(Debug, Clone)]
pub struct Transaction {
    pub id: String,
    pub protocol: String,
    pub rp_id: String,
    /// Protocol-specific JSON, opaque to authn.
    pub request: String,
    pub created_at: i64,
    /// The session created by the login this transaction asked for, once it succeeded.
    /// Resuming with that session needs no further checks (a forced or max_age login
    /// happened for exactly this request), and no clock comparison is involved.
    pub completed_session: Option<String>,
    /// Where the browser returns after login: a path the protocol front chose, never input.
    pub resume_path: &'static str,
    pub login_hint: Option<String>,
    /// The levels the relying party asked for (empty: any); the login page offers only
    /// methods that reach one of them.
    pub acr_values: Vec<String>,
}

/// What a protocol front stores in the transaction.
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    login_hint: Option<String>,
    request: String,
    #[serde(default)]
    acr_values: Vec<String>,
}

impl Authn {
    pub async fn begin(
        &self,
        protocol: &'static str,
        rp_id: &str,
        request: String,
        login_hint: Option<String>,
        acr_values: &[String],
        now: i64,
    ) -> Result<String, storage::StorageError> {
        let id = crate::keys::random_token();
        let stored = serde_json::to_string(&Stored {
            login_hint,
            request,
            acr_values: acr_values.to_vec(),
        })
        .map_err(|e| storage::StorageError::Corrupt(e.to_string()))?;
        storage::sessions::insert_transaction(
            &self.db,
            &TransactionRecord {
                id: id.clone(),
                protocol: protocol.into(),
                rp_id: rp_id.into(),
                request: stored,
                session_id: None,
                created_at: now,
                expires_at: now + self.config.session.login_ttl,
            },
        )
        .await?;
        Ok(id)
    }

    pub async fn transaction(
        &self,
        id: &str,
        now: i64,
    ) -> Result<Option<Transaction>, storage::StorageError> {
        let Some(rec) = storage::sessions::get_transaction(&self.db, id, now).await? else {
            return Ok(None);
        };
        let stored: Stored = serde_json::from_str(&rec.request)
            .map_err(|e| storage::StorageError::Corrupt(e.to_string()))?;
        let Some(resume_path) = crate::web::paths::resume_path(&rec.protocol) else {
            return Ok(None);
        };
        Ok(Some(Transaction {
            id: rec.id,
            protocol: rec.protocol,
            rp_id: rec.rp_id,
            request: stored.request,
            created_at: rec.created_at,
            completed_session: rec.session_id,
            resume_path,
            login_hint: stored.login_hint,
            acr_values: stored.acr_values,
        }))
    }

    /// Marks a transaction as completed by a login that created `session`.
    pub async fn complete(
        &self,
        tx_id: &str,
        session: &Session,
    ) -> Result<(), storage::StorageError> {
        storage::sessions::complete_transaction(&self.db, tx_id, &session.id).await
    }

    /// Whether `session` may answer the transaction: the login it asked for created it, or
    /// it satisfies the requirement on its own.
    pub fn answers(
        tx: &Transaction,
        requirement: &Requirement,
        session: &Session,
        now: i64,
    ) -> bool {
        tx.completed_session.as_deref() == Some(session.id.as_str())
            || requirement.reusable(session, now)
    }

    /// Ends a transaction; true for the one caller that ended it.
    pub async fn finish(&self, id: &str) -> Result<bool, storage::StorageError> {
        storage::sessions::take_transaction(&self.db, id).await
    }
}
