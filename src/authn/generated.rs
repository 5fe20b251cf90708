//! Passwords an administrator generates for people (one person, or every pupil of a class):
//! made from the system's CSPRNG, readable for children and typable on a Chromebook or a
//! phone, hashed before anything is written so a batch either gets all its passwords or none.

use super::{Authn, AuthnError, password};
use crate::storage::{self, Tx};
use std::time::Duration;

/// Consonants without `l` (read as `I` or `1`) and the letters young children spell wrongly
/// or look for on a keyboard (c, q, w, x, z).
const CONSONANTS: &[u8] = b"bdfghjkmnprstv";
/// Vowels without `y`, which Swedish and English readers say differently.
const VOWELS: &[u8] = b"aeiou";
/// Digits without `0` and `1` (mistaken for `O`, `l` and `I`).
const DIGITS: &[u8] = b"23456789";

/// Four consonant–vowel syllables and three digits, e.g. `bakemifu472`: 11 lowercase
/// characters, no shift, no symbols (a phone's first keyboard and its digit row).
/// Entropy: 4 × log2(14 × 5) + 3 × log2(8) ≈ 24.5 + 9 = 33.5 bits. Enough against online
/// guessing, which the login throttle slows to a few attempts a minute per account;
/// an administrator's generated password is meant to be handed out on paper, not kept for
/// years.
pub fn generate() -> String {
    let mut out = String::with_capacity(11);
    for _ in 0..4 {
        out.push(pick(CONSONANTS));
        out.push(pick(VOWELS));
    }
    for _ in 0..3 {
        out.push(pick(DIGITS));
    }
    out
}

/// One character of `set`, uniformly: bytes at or above the largest multiple of the set's
/// size are drawn again, so no character is more likely than another.
fn pick(set: &[u8]) -> char {
    let n = set.len();
    let limit = 256 - 256 % n;
    loop {
        let [b] = crate::keys::random_bytes::<1>();
        if usize::from(b) < limit {
            return char::from(set[usize::from(b) % n]);
        }
    }
}

/// A generated password and its hash: the password is shown once and dropped, only the hash
/// is stored (`Authn::store_generated_in`).
pub struct Generated {
    pub password: String,
    hash: String,
}

/// How long a batch waits in all for room in the hashing queue when logins fill it, before
/// it gives up as a whole.
const BUSY_RETRIES: u32 = 100;
const BUSY_WAIT: Duration = Duration::from_millis(50);

impl Authn {
    /// `n` new passwords, hashed one after the other: a class never holds more than one place
    /// in the hashing queue, so it neither crowds out logins nor is half refused when the
    /// queue is full (it waits for room, up to ~5 s per password). Any failure fails the whole
    /// batch before anything is written.
    pub async fn generate_passwords(&self, n: usize) -> Result<Vec<Generated>, AuthnError> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let password = generate();
            debug_assert!(password::check_new(&password).is_ok());
            let hash = hash_waiting(&self.hasher, &password).await?;
            out.push(Generated { password, hash });
        }
        Ok(out)
    }

    /// Stores a generated password's hash for a person in the caller's transaction (which
    /// also holds the audit event). Call `end_other_sessions` after the commit.
    pub async fn store_generated_in(
        &self,
        tx: &mut Tx,
        person_id: &str,
        generated: &Generated,
        now: i64,
    ) -> Result<(), AuthnError> {
        storage::persons::set_password_hash_in(tx, person_id, &generated.hash, now).await?;
        Ok(())
    }
}

/// A hash that waits for room in the hashing queue (a flood of logins fills it) instead of
/// failing at once, up to `BUSY_RETRIES` × `BUSY_WAIT`.
async fn hash_waiting(
    hasher: &password::PasswordHasher,
    password: &str,
) -> Result<String, password::HashError> {
    let mut tries = 0;
    loop {
        match hasher.hash(password.to_string()).await {
            Err(password::HashError::Busy) if tries < BUSY_RETRIES => {
                tries += 1;
                tokio::time::sleep(BUSY_WAIT).await;
            }
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_batch_waits_for_room_in_a_full_hashing_queue() {
        // One thread, one place in the queue, slow hashes: both taken by logins.
        let h = password::PasswordHasher::new(64 * 1024, 4, 1, 1, 1).unwrap();
        let first = tokio::spawn({
            let h = h.clone();
            async move { h.verify("a".into(), None).await }
        });
        while h.hashes_computed() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let queued = tokio::spawn({
            let h = h.clone();
            async move { h.verify("b".into(), None).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(matches!(
            h.hash("c".into()).await,
            Err(password::HashError::Busy)
        ));
        let phc = hash_waiting(&h, "bakemifu472").await.unwrap();
        assert!(h.verify("bakemifu472".into(), Some(phc)).await.unwrap());
        assert!(!first.await.unwrap().unwrap());
        assert!(!queued.await.unwrap().unwrap());
    }

    #[test]
    fn generated_passwords_are_unambiguous_and_long_enough() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..500 {
            let p = generate();
            assert_eq!(p.len(), 11, "{p}");
            assert!(password::check_new(&p).is_ok(), "{p}");
            assert!(
                p.chars()
                    .all(|c| !"0O1lIyY".contains(c)
                        && (c.is_ascii_lowercase() || c.is_ascii_digit())),
                "{p}"
            );
            assert!(p[..8].chars().all(|c| c.is_ascii_lowercase()), "{p}");
            assert!(p[8..].chars().all(|c| c.is_ascii_digit()), "{p}");
            seen.insert(p);
        }
        // 33 bits: 500 draws do not collide unless the generator is broken.
        assert_eq!(seen.len(), 500);
    }

    #[test]
    fn every_character_of_a_set_is_drawn() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2000 {
            seen.insert(pick(CONSONANTS));
        }
        assert_eq!(seen.len(), CONSONANTS.len());
    }
}
