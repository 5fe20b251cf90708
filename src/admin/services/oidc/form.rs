//! The OIDC client form, shared by the new and edit pages: what the administrator typed
//! (kept as typed when the registration is refused), and the `ClientSpec` it gives.
//! Defaults follow `portvakt client add`: scopes openid profile email school, grants
//! authorization_code refresh_token, pairwise subjects, ES256, no claims released.

use crate::directory::release::CLAIM_SCOPES;
use crate::services::oidc_client::{ClientSpec, GRANTS};
use crate::storage::clients::ClientRecord;

/// Every scope a client may be allowed, in the order the form shows them.
pub fn all_scopes() -> Vec<&'static str> {
    let mut v = vec!["openid"];
    v.extend(CLAIM_SCOPES);
    v.push("offline_access");
    v
}

pub fn all_grants() -> Vec<&'static str> {
    GRANTS.to_vec()
}

/// The form's fields as text.
#[derive(Debug, Clone)]
pub struct ClientForm {
    pub csrf: String,
    pub client_id: String,
    pub name: String,
    /// `confidential` or `public`.
    pub kind: String,
    /// One URI per line.
    pub redirect_uris: String,
    pub post_logout_redirect_uris: String,
    pub backchannel_logout_uri: String,
    pub grants: Vec<String>,
    pub scopes: Vec<String>,
    /// `pairwise` or `public`.
    pub subject: String,
    pub sector: String,
    pub alg: String,
}

impl Default for ClientForm {
    fn default() -> Self {
        Self {
            csrf: String::new(),
            client_id: String::new(),
            name: String::new(),
            kind: "confidential".into(),
            redirect_uris: String::new(),
            post_logout_redirect_uris: String::new(),
            backchannel_logout_uri: String::new(),
            grants: ["authorization_code", "refresh_token"]
                .map(String::from)
                .to_vec(),
            scopes: ["openid", "profile", "email", "school"]
                .map(String::from)
                .to_vec(),
            subject: "pairwise".into(),
            sector: String::new(),
            alg: "ES256".into(),
        }
    }
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

fn optional(text: &str) -> Option<String> {
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}

impl ClientForm {
    /// From a posted form: checkbox groups repeat their name, so the body is read as pairs.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut f = Self {
            kind: String::new(),
            grants: vec![],
            scopes: vec![],
            subject: String::new(),
            alg: String::new(),
            ..Self::default()
        };
        for (k, v) in pairs {
            match k.as_str() {
                "csrf" => f.csrf = v,
                "client_id" => f.client_id = v.trim().to_string(),
                "name" => f.name = v,
                "kind" => f.kind = v,
                "redirect_uris" => f.redirect_uris = v,
                "post_logout_redirect_uris" => f.post_logout_redirect_uris = v,
                "backchannel_logout_uri" => f.backchannel_logout_uri = v,
                "grant" => f.grants.push(v),
                "scope" => f.scopes.push(v),
                "subject" => f.subject = v,
                "sector" => f.sector = v,
                "alg" => f.alg = v,
                _ => {}
            }
        }
        f
    }

    pub fn from_record(r: &ClientRecord) -> Self {
        Self {
            csrf: String::new(),
            client_id: r.client_id.clone(),
            name: r.name.clone(),
            kind: if r.public_client {
                "public"
            } else {
                "confidential"
            }
            .into(),
            redirect_uris: r.redirect_uris.join("\n"),
            post_logout_redirect_uris: r.post_logout_redirect_uris.join("\n"),
            backchannel_logout_uri: r.backchannel_logout_uri.clone().unwrap_or_default(),
            grants: r.grants.clone(),
            scopes: r.scopes.clone(),
            subject: r.subject_type.clone(),
            sector: r.sector.clone().unwrap_or_default(),
            alg: r.id_token_alg.clone(),
        }
    }

    pub fn public(&self) -> bool {
        self.kind == "public"
    }

    pub fn has_grant(&self, g: &&str) -> bool {
        self.grants.iter().any(|x| x == g)
    }

    pub fn has_scope(&self, s: &&str) -> bool {
        self.scopes.iter().any(|x| x == s)
    }

    /// The registration the form describes; `secret` for a confidential client that gets a
    /// new one. Empty fields become "none" (the edit page replaces the whole registration).
    pub fn spec(&self, secret: Option<String>) -> ClientSpec {
        ClientSpec {
            client_id: self.client_id.clone(),
            name: Some(optional(&self.name).unwrap_or_else(|| self.client_id.clone())),
            secret,
            public: self.public(),
            redirect_uris: lines(&self.redirect_uris),
            post_logout_redirect_uris: lines(&self.post_logout_redirect_uris),
            backchannel_logout_uri: optional(&self.backchannel_logout_uri),
            scopes: self.scopes.clone(),
            grants: self.grants.clone(),
            subject: Some(self.subject.clone()),
            sector: optional(&self.sector),
            id_token_alg: Some(self.alg.clone()),
            ..Default::default()
        }
    }

    /// A field the form itself refuses before the registry sees it (the registry keeps
    /// an empty list as "unchanged"): (field, message key).
    pub fn precheck(&self) -> Option<(&'static str, &'static str)> {
        if self.kind != "confidential" && self.kind != "public" {
            Some(("kind", "admin.oidc.error.kind"))
        } else if self.grants.is_empty() {
            Some(("grants", "admin.oidc.error.grants"))
        } else if self.scopes.is_empty() {
            Some(("scopes", "admin.oidc.error.scopes"))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_posted_form_gives_the_spec_with_lists_one_per_line() {
        let pairs = [
            ("client_id", " lms "),
            ("name", ""),
            ("kind", "public"),
            (
                "redirect_uris",
                "https://a.example/cb\r\n\r\n https://b.example/cb ",
            ),
            ("grant", "authorization_code"),
            ("scope", "openid"),
            ("scope", "email"),
            ("subject", "public"),
            ("alg", "RS256"),
        ];
        let f = ClientForm::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        let s = f.spec(None);
        assert_eq!(s.client_id, "lms");
        assert_eq!(s.name.as_deref(), Some("lms"), "no name: the id");
        assert!(s.public);
        assert_eq!(
            s.redirect_uris,
            ["https://a.example/cb", "https://b.example/cb"]
        );
        assert_eq!(s.scopes, ["openid", "email"]);
        assert_eq!(s.backchannel_logout_uri, None);
        assert_eq!(s.id_token_alg.as_deref(), Some("RS256"));
        assert_eq!(f.precheck(), None);
    }
}
