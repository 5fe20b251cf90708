//! CSRF tokens: HMAC over (purpose, binding) under a server key shared by all instances.
//! The binding is what the form acts on (a login transaction id, an SSO session id), so a
//! token from one form is useless for another and needs no server-side storage.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ring::hmac;

pub fn token(key: &hmac::Key, purpose: &str, binding: &str) -> String {
    let msg = format!("{purpose}\u{0}{binding}");
    URL_SAFE_NO_PAD.encode(hmac::sign(key, msg.as_bytes()))
}

/// Constant-time check of a submitted token.
pub fn verify(key: &hmac::Key, purpose: &str, binding: &str, submitted: &str) -> bool {
    let Ok(tag) = URL_SAFE_NO_PAD.decode(submitted) else {
        return false;
    };
    let msg = format!("{purpose}\u{0}{binding}");
    hmac::verify(key, msg.as_bytes(), &tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_to_purpose_and_binding() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &[1; 32]);
        let t = token(&key, "login", "tx1");
        assert!(verify(&key, "login", "tx1", &t));
        assert!(!verify(&key, "login", "tx2", &t));
        assert!(!verify(&key, "logout", "tx1", &t));
        assert!(!verify(&key, "login", "tx1", ""));
    }
}
