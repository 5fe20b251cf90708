//! Keys: the KEK, signing keys (ES256 by default, RS256 per client) with rotation, the
//! JWKS, JWS compact signing and verification, and the server secrets (pairwise salt,
//! client-secret key, CSRF key, token key).
//!
//! Signing uses ring (ES256 is ~3x faster than the p256 crate; the `rsa` crate has
//! RUSTSEC-2023-0071). ring cannot generate RSA keys, so openssl generates them once.
//!
//! Rotation: a key is published in the JWKS from creation, signs from `activate_at` until a
//! newer key of its algorithm activates, and stays published for the longest token lifetime
//! after that, so tokens it signed still verify.

mod jws;
pub mod kek;

pub use jws::{JwsError, Verified};
pub use kek::Kek;

use crate::storage::{self, Db, secrets::KeyRecord};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::json;
use std::sync::{Arc, RwLock};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key-encryption key: {0}")]
    Kek(String),
    #[error("the system random generator failed")]
    Random,
    #[error("key generation failed: {0}")]
    Generate(String),
    #[error("stored key {0} is unusable")]
    BadKey(String),
    #[error("no active {0} signing key")]
    NoActiveKey(&'static str),
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
}

/// JWS algorithms Portvakt signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    Es256,
    Rs256,
}

impl Alg {
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::Rs256 => "RS256",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ES256" => Some(Alg::Es256),
            "RS256" => Some(Alg::Rs256),
            _ => None,
        }
    }
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // SystemRandom reads the OS generator; failure means the OS cannot give randomness at
    // all, and no safe fallback exists.
    if SystemRandom::new().fill(&mut b).is_err() {
        std::process::abort();
    }
    b
}

/// 256 bits of randomness, base64url: session cookies, codes, refresh tokens, ids.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// SHA-256, base64url. Used to store tokens and cookies so the database holds no usable one.
/// Equality of two secrets (or their hashes) in time that does not depend on where they
/// differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    subtle::ConstantTimeEq::ct_eq(a.as_bytes(), b.as_bytes()).into()
}

pub fn hash_token(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        token.as_bytes(),
    ))
}

enum Pair {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// One signing key, loaded and decrypted.
pub struct SigningKey {
    pub kid: String,
    pub alg: Alg,
    pub activate_at: i64,
    pair: Pair,
    public: Vec<u8>,
    jwk: serde_json::Value,
    /// The private key (PKCS#8 DER), kept only for RSA keys: XML signatures (SAML) are made
    /// by libxmlsec1, which takes the key as DER.
    rsa_pkcs8: Option<Vec<u8>>,
}

impl SigningKey {
    /// PKCS#8 DER of an RSA key; None for EC keys.
    pub fn rsa_pkcs8(&self) -> Option<&[u8]> {
        self.rsa_pkcs8.as_deref()
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Ec(k) => Ok(k
                .sign(&rng, msg)
                .map_err(|_| KeyError::Random)?
                .as_ref()
                .to_vec()),
            Pair::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, msg, &mut sig)
                    .map_err(|_| KeyError::Random)?;
                Ok(sig)
            }
        }
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let alg: &dyn signature::VerificationAlgorithm = match self.alg {
            Alg::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
            Alg::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        };
        signature::UnparsedPublicKey::new(alg, &self.public)
            .verify(msg, sig)
            .is_ok()
    }
}

struct KeySet {
    keys: Vec<Arc<SigningKey>>,
    loaded_at: i64,
}

/// Secrets every instance shares, kept sealed in `server_secrets`.
pub struct Secrets {
    /// HMAC key for pairwise subject identifiers.
    pub pairwise: ring::hmac::Key,
    /// HMAC key under which client secrets are stored.
    pub client_secret: ring::hmac::Key,
    /// HMAC key for CSRF tokens.
    pub csrf: ring::hmac::Key,
    /// AES-256-GCM key for values we hand out but must read back (the person id in an
    /// access token), so they are opaque to relying parties.
    pub token: ring::aead::LessSafeKey,
}

/// The shared handle to keys and secrets.
#[derive(Clone)]
pub struct KeyStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    kek: Kek,
    secrets: Secrets,
    set: RwLock<Arc<KeySet>>,
    reload_interval: i64,
    /// How long a superseded key stays published: the longest token lifetime plus skew.
    retire_after: i64,
    reload: tokio::sync::Mutex<()>,
    /// When a token with an unknown key id last forced a reload (unix seconds).
    forced_at: std::sync::atomic::AtomicI64,
    /// When the last periodic reload failed (unix seconds): the next waits an interval.
    failed_at: std::sync::atomic::AtomicI64,
    /// The JWKS as served, with the key ids it lists (`jwks_document`).
    jwks: RwLock<(Vec<String>, Arc<[u8]>)>,
}

impl KeyStore {
    /// Loads secrets and keys, creating whatever is missing (first start).
    pub async fn open(
        db: Db,
        kek: Kek,
        reload_interval: i64,
        retire_after: i64,
        now: i64,
    ) -> Result<Self, KeyError> {
        let secrets = Secrets {
            pairwise: hmac_key(&load_secret(&db, &kek, "pairwise_salt", now).await?),
            client_secret: hmac_key(&load_secret(&db, &kek, "client_secret_key", now).await?),
            csrf: hmac_key(&load_secret(&db, &kek, "csrf_key", now).await?),
            token: {
                let raw = load_secret(&db, &kek, "token_key", now).await?;
                let k = ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &raw)
                    .map_err(|_| KeyError::BadKey("token_key".into()))?;
                ring::aead::LessSafeKey::new(k)
            },
        };
        let existing = storage::secrets::keys(&db).await?;
        for alg in [Alg::Es256, Alg::Rs256] {
            if !existing.iter().any(|k| k.alg == alg.as_str()) {
                create_key(&db, &kek, alg, now, now).await?;
            }
        }
        let set = load_set(&db, &kek, now).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                kek,
                secrets,
                set: RwLock::new(Arc::new(set)),
                reload_interval,
                retire_after,
                reload: tokio::sync::Mutex::new(()),
                forced_at: std::sync::atomic::AtomicI64::new(0),
                failed_at: std::sync::atomic::AtomicI64::new(i64::MIN),
                jwks: RwLock::new((Vec::new(), Arc::from(&[][..]))),
            }),
        })
    }

    /// The key-encryption key, for a part that seals its own values (the sync's held plans).
    pub fn kek(&self) -> &Kek {
        &self.inner.kek
    }

    pub fn secrets(&self) -> &Secrets {
        &self.inner.secrets
    }

    /// Seals a secret that must be read back (an upstream's client secret) under the KEK;
    /// `label` names its row, so the ciphertext cannot be moved to another.
    pub fn seal(&self, label: &str, plaintext: &[u8]) -> Result<String, KeyError> {
        self.inner.kek.seal(label, plaintext)
    }

    /// Opens what `seal` sealed with the same label.
    pub fn open_sealed(&self, label: &str, sealed: &str) -> Result<Vec<u8>, KeyError> {
        self.inner.kek.open(label, sealed)
    }

    fn current(&self) -> Arc<KeySet> {
        match self.inner.set.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Re-reads the key set when it is older than the reload interval, so a rotation made by
    /// another instance or by `portvakt keys rotate` is seen. A failed reload (the database
    /// cannot be reached) is logged and changes nothing: the keys already loaded keep
    /// serving the JWKS, signing and verifying, and the next attempt waits another interval,
    /// so requests do not each wait for the database. While one request reloads, the others
    /// go on with the loaded keys rather than queue behind it.
    pub async fn refresh(&self, now: i64) {
        use std::sync::atomic::Ordering;
        let interval = self.inner.reload_interval;
        if now.saturating_sub(self.inner.failed_at.load(Ordering::Relaxed)) < interval.max(1) {
            return;
        }
        if let Err(e) = self.reload_if_older(now, interval, false).await {
            self.inner.failed_at.store(now, Ordering::Relaxed);
            tracing::warn!(
                "reloading the signing keys failed; the loaded keys stay in use: {}",
                crate::error_chain(&e)
            );
        }
    }

    /// `wait`: queue behind a reload in progress (a forced one needs its result); otherwise
    /// leave it to that one.
    async fn reload_if_older(&self, now: i64, max_age: i64, wait: bool) -> Result<(), KeyError> {
        if now - self.current().loaded_at < max_age {
            return Ok(());
        }
        let _guard = match self.inner.reload.try_lock() {
            Ok(g) => g,
            Err(_) if !wait => return Ok(()),
            Err(_) => self.inner.reload.lock().await,
        };
        if now - self.current().loaded_at < max_age && max_age > 0 {
            return Ok(());
        }
        let set = load_set(&self.inner.db, &self.inner.kek, now).await?;
        match self.inner.set.write() {
            Ok(mut g) => *g = Arc::new(set),
            Err(p) => *p.into_inner() = Arc::new(set),
        }
        Ok(())
    }

    /// The key that signs for `alg` now: the newest one whose activation time has come.
    fn active(&self, alg: Alg, now: i64) -> Result<Arc<SigningKey>, KeyError> {
        self.current()
            .keys
            .iter()
            .filter(|k| k.alg == alg && k.activate_at <= now)
            .max_by_key(|k| k.activate_at)
            .cloned()
            .ok_or(KeyError::NoActiveKey(alg.as_str()))
    }

    /// Keys that verify and are published: pending ones, the active one, and superseded ones
    /// until `retire_after` seconds after they were superseded.
    fn published(&self, now: i64) -> Vec<Arc<SigningKey>> {
        let set = self.current();
        published_keys(&set.keys, now, self.inner.retire_after)
    }

    /// The RSA keys that make XML signatures: the one signing now, and every published one
    /// (pending, active, recently superseded) for the metadata.
    pub fn rsa_keys(&self, now: i64) -> Result<(Arc<SigningKey>, Vec<Arc<SigningKey>>), KeyError> {
        let active = self.active(Alg::Rs256, now)?;
        let published = self
            .published(now)
            .into_iter()
            .filter(|k| k.alg == Alg::Rs256)
            .collect();
        Ok((active, published))
    }

    /// When the signing key in use for each algorithm was activated; an algorithm without
    /// one is missing (readiness and the key-age metric read this).
    pub fn active_since(&self, now: i64) -> Vec<(&'static str, i64)> {
        [Alg::Es256, Alg::Rs256]
            .into_iter()
            .filter_map(|a| {
                self.active(a, now)
                    .ok()
                    .map(|k| (a.as_str(), k.activate_at))
            })
            .collect()
    }

    /// The JWKS document (RFC 7517).
    pub fn jwks(&self, now: i64) -> serde_json::Value {
        json!({ "keys": self.published(now).iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
    }

    /// The JWKS document as served: serialised once per published key set (a key is
    /// published, activated or retired), the same bytes until then.
    pub fn jwks_document(&self, now: i64) -> Arc<[u8]> {
        let published = self.published(now);
        let same = |kids: &[String]| {
            kids.iter()
                .map(String::as_str)
                .eq(published.iter().map(|k| k.kid.as_str()))
        };
        {
            let cached = self.inner.jwks.read().unwrap_or_else(|p| p.into_inner());
            if same(&cached.0) && !cached.1.is_empty() {
                return cached.1.clone();
            }
        }
        let doc = json!({ "keys": published.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() });
        let doc: Arc<[u8]> = serde_json::to_vec(&doc).unwrap_or_default().into();
        let kids = published.iter().map(|k| k.kid.clone()).collect();
        *self.inner.jwks.write().unwrap_or_else(|p| p.into_inner()) = (kids, doc.clone());
        doc
    }

    /// Signs `claims` as a JWS compact serialisation with the active key for `alg`.
    pub fn sign_jwt(
        &self,
        alg: Alg,
        typ: &str,
        claims: &impl serde::Serialize,
        now: i64,
    ) -> Result<String, KeyError> {
        let key = self.active(alg, now)?;
        jws::sign(&key, typ, claims)
    }

    /// Verifies a JWS compact token against the published keys (signature only; the caller
    /// checks the claims).
    pub fn verify_jwt(&self, token: &str, now: i64) -> Result<Verified, JwsError> {
        jws::verify(&self.published(now), token)
    }

    /// Like `verify_jwt`, but a token signed by a key this instance has not loaded yet (made
    /// by another instance's `keys rotate --activate`) triggers one reload, at most once a
    /// second, instead of waiting for the reload interval.
    pub async fn verify_jwt_fresh(&self, token: &str, now: i64) -> Result<Verified, JwsError> {
        match self.verify_jwt(token, now) {
            Err(JwsError::UnknownKey) => {
                use std::sync::atomic::Ordering;
                let last = self.inner.forced_at.load(Ordering::Relaxed);
                if now - last < 1
                    || self
                        .inner
                        .forced_at
                        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_err()
                {
                    return Err(JwsError::UnknownKey);
                }
                if self.reload_if_older(now, 0, true).await.is_err() {
                    return Err(JwsError::UnknownKey);
                }
                self.verify_jwt(token, now)
            }
            other => other,
        }
    }

    /// An RSA key (PKCS#8 DER) of Portvakt's SAML SP role towards upstream IdPs, `purpose`
    /// "signing" or "encryption": made on first use and sealed with the KEK like the server
    /// secrets; the first instance to store one wins and every instance then reads that one.
    /// The SP role has keys of its own, apart from the IdP's rotating signing keys, so an
    /// upstream's registration of our SP does not break at each IdP key rotation, and
    /// signing and encryption never share a key.
    pub async fn sp_rsa_key(&self, purpose: &str, now: i64) -> Result<Vec<u8>, KeyError> {
        let (db, kek) = (&self.inner.db, &self.inner.kek);
        let name = format!("upstream_sp_{purpose}_key");
        let label = kek::secret_label(&name);
        if storage::secrets::secret(db, &name).await?.is_none() {
            let rsa =
                openssl::rsa::Rsa::generate(2048).map_err(|e| KeyError::Generate(e.to_string()))?;
            let pkcs8 = openssl::pkey::PKey::from_rsa(rsa)
                .and_then(|k| k.private_key_to_pkcs8())
                .map_err(|e| KeyError::Generate(e.to_string()))?;
            storage::secrets::insert_secret_if_absent(db, &name, &kek.seal(&label, &pkcs8)?, now)
                .await?;
        }
        let sealed = storage::secrets::secret(db, &name)
            .await?
            .ok_or_else(|| KeyError::BadKey(name.clone()))?;
        kek.open(&label, &sealed)
    }

    /// `keys rotate`: creates the next ES256 and RS256 keys. They are published at once and
    /// sign from `now + delay`, or at once when `activate` is set.
    pub async fn rotate(
        db: &Db,
        kek: &Kek,
        delay: i64,
        activate: bool,
        now: i64,
    ) -> Result<Vec<String>, KeyError> {
        let mut kids = Vec::new();
        for alg in [Alg::Es256, Alg::Rs256] {
            let at = if activate {
                // A pending key from an earlier rotation must not take over later.
                storage::secrets::activate_pending(db, alg.as_str(), now).await?;
                now
            } else {
                now + delay
            };
            kids.push(create_key(db, kek, alg, now, at).await?);
        }
        Ok(kids)
    }
}

fn published_keys(keys: &[Arc<SigningKey>], now: i64, retire_after: i64) -> Vec<Arc<SigningKey>> {
    keys.iter()
        .filter(|k| {
            // The time a newer active key of the same algorithm superseded this one.
            let superseded = keys
                .iter()
                .filter(|o| o.alg == k.alg && o.activate_at <= now && o.activate_at > k.activate_at)
                .map(|o| o.activate_at)
                .min();
            superseded.is_none_or(|t| now < t + retire_after)
        })
        .cloned()
        .collect()
}

fn hmac_key(raw: &[u8]) -> ring::hmac::Key {
    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, raw)
}

async fn load_secret(db: &Db, kek: &Kek, name: &str, now: i64) -> Result<Vec<u8>, KeyError> {
    let label = kek::secret_label(name);
    if storage::secrets::secret(db, name).await?.is_none() {
        let sealed = kek.seal(&label, &random_bytes::<32>())?;
        storage::secrets::insert_secret_if_absent(db, name, &sealed, now).await?;
    }
    // Re-read: if another instance won the insert race, its value is the one to use.
    let sealed = storage::secrets::secret(db, name)
        .await?
        .ok_or_else(|| KeyError::BadKey(name.to_string()))?;
    kek.open(&label, &sealed)
}

async fn create_key(
    db: &Db,
    kek: &Kek,
    alg: Alg,
    now: i64,
    activate_at: i64,
) -> Result<String, KeyError> {
    let pkcs8 = match alg {
        Alg::Es256 => EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &SystemRandom::new(),
        )
        .map_err(|_| KeyError::Generate("ECDSA P-256".into()))?
        .as_ref()
        .to_vec(),
        Alg::Rs256 => {
            let rsa =
                openssl::rsa::Rsa::generate(2048).map_err(|e| KeyError::Generate(e.to_string()))?;
            let pkey = openssl::pkey::PKey::from_rsa(rsa)
                .map_err(|e| KeyError::Generate(e.to_string()))?;
            pkey.private_key_to_pkcs8()
                .map_err(|e| KeyError::Generate(e.to_string()))?
        }
    };
    let key = build_key(alg, &pkcs8, activate_at)?;
    let rec = KeyRecord {
        kid: key.kid.clone(),
        alg: alg.as_str().to_string(),
        private_key: kek.seal(&kek::key_label(&key.kid), &pkcs8)?,
        public_jwk: key.jwk.to_string(),
        created_at: now,
        activate_at,
    };
    storage::secrets::insert_key(db, &rec).await?;
    Ok(key.kid)
}

fn build_key(alg: Alg, pkcs8: &[u8], activate_at: i64) -> Result<SigningKey, KeyError> {
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    let (pair, public, mut jwk, thumb_input) = match alg {
        Alg::Es256 => {
            let k = EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                pkcs8,
                &SystemRandom::new(),
            )
            .map_err(|_| KeyError::BadKey("ES256".into()))?;
            let public = k.public_key().as_ref().to_vec();
            // Uncompressed point: 0x04 ‖ x ‖ y.
            let (x, y) = (b64(&public[1..33]), b64(&public[33..65]));
            let thumb = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
            let jwk = json!({"kty": "EC", "crv": "P-256", "x": x, "y": y});
            (Pair::Ec(k), public, jwk, thumb)
        }
        Alg::Rs256 => {
            let k = RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| KeyError::BadKey("RS256".into()))?;
            let public = k.public().as_ref().to_vec();
            let c: ring::rsa::PublicKeyComponents<Vec<u8>> = k.public().into();
            let (n, e) = (b64(&c.n), b64(&c.e));
            let thumb = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
            let jwk = json!({"kty": "RSA", "n": n, "e": e});
            (Pair::Rsa(k), public, jwk, thumb)
        }
    };
    // RFC 7638 thumbprint as the key id: stable, derived, and unique per key.
    let kid = b64(ring::digest::digest(&ring::digest::SHA256, thumb_input.as_bytes()).as_ref());
    if let Some(o) = jwk.as_object_mut() {
        o.insert("kid".into(), json!(kid));
        o.insert("use".into(), json!("sig"));
        o.insert("alg".into(), json!(alg.as_str()));
    }
    Ok(SigningKey {
        kid,
        alg,
        activate_at,
        pair,
        public,
        jwk,
        rsa_pkcs8: (alg == Alg::Rs256).then(|| pkcs8.to_vec()),
    })
}

async fn load_set(db: &Db, kek: &Kek, now: i64) -> Result<KeySet, KeyError> {
    let mut keys = Vec::new();
    for rec in storage::secrets::keys(db).await? {
        let alg = Alg::parse(&rec.alg).ok_or_else(|| KeyError::BadKey(rec.kid.clone()))?;
        let pkcs8 = kek.open(&kek::key_label(&rec.kid), &rec.private_key)?;
        keys.push(Arc::new(build_key(alg, &pkcs8, rec.activate_at)?));
    }
    Ok(KeySet {
        keys,
        loaded_at: now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(alg: Alg, at: i64) -> Arc<SigningKey> {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &SystemRandom::new(),
        )
        .unwrap();
        Arc::new(build_key(alg, pkcs8.as_ref(), at).unwrap())
    }

    #[test]
    fn superseded_keys_stay_published_for_the_retire_window() {
        let old = key(Alg::Es256, 0);
        let new = key(Alg::Es256, 1000);
        let keys = vec![old.clone(), new.clone()];
        // Before the new key activates, both are published (the new one ahead of use).
        assert_eq!(published_keys(&keys, 500, 100).len(), 2);
        // After it activates, the old one stays for the window, then goes.
        assert_eq!(published_keys(&keys, 1050, 100).len(), 2);
        let later = published_keys(&keys, 1100, 100);
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].kid, new.kid);
    }
}
