//! The key-encryption key (KEK): 32 random bytes in a file outside the database. Every
//! private key and server secret in the database is sealed under it with AES-256-GCM, the
//! row's name as associated data so a ciphertext cannot be moved to another row.

use super::KeyError;
use crate::storage::{self, Db, secrets::SealedKind};
use base64::{Engine, engine::general_purpose::STANDARD};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::path::{Path, PathBuf};

pub struct Kek {
    key: LessSafeKey,
    /// The file it was read from, named in errors.
    source: Option<PathBuf>,
}

/// The associated data of a signing key's private key.
pub fn key_label(kid: &str) -> String {
    format!("key:{kid}")
}

/// The associated data of a server secret.
pub fn secret_label(name: &str) -> String {
    format!("secret:{name}")
}

/// The associated data of an upstream OpenID provider's client secret.
pub fn upstream_secret_label(name: &str) -> String {
    format!("upstream:{name}:client_secret")
}

fn label_of(kind: SealedKind, id: &str) -> String {
    match kind {
        SealedKind::SigningKey => key_label(id),
        SealedKind::ServerSecret => secret_label(id),
        SealedKind::UpstreamSecret => upstream_secret_label(id),
    }
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(<redacted>)")
    }
}

impl Kek {
    /// Reads a KEK file: 64 hex characters (whitespace around them is ignored).
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| KeyError::Kek(format!("cannot read {}: {e}", path.display())))?;
        let bytes = hex_decode(text.trim())
            .filter(|b| b.len() == 32)
            .ok_or_else(|| {
                KeyError::Kek(format!(
                    "{} must hold 64 hex characters (32 random bytes); make one with \
                     (umask 077; openssl rand -hex 32 > FILE)",
                    path.display()
                ))
            })?;
        Ok(Self::from_bytes(&bytes)?.read_from(path))
    }

    fn read_from(mut self, path: &Path) -> Self {
        self.source = Some(path.to_path_buf());
        self
    }

    /// Creates a new KEK file with mode 0600. Fails if the file exists.
    pub fn create(path: &Path) -> Result<Self, KeyError> {
        use std::io::Write;
        let bytes = super::random_bytes::<32>();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| KeyError::Kek(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(path)
            .map_err(|e| KeyError::Kek(format!("cannot create {}: {e}", path.display())))?;
        writeln!(f, "{}", hex_encode(&bytes))
            .map_err(|e| KeyError::Kek(format!("cannot write {}: {e}", path.display())))?;
        Ok(Self::from_bytes(&bytes)?.read_from(path))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let key =
            UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| KeyError::Kek("bad key".into()))?;
        Ok(Self {
            key: LessSafeKey::new(key),
            source: None,
        })
    }

    pub fn seal(&self, label: &str, plaintext: &[u8]) -> Result<String, KeyError> {
        seal_with(&self.key, label, plaintext)
    }

    pub fn open(&self, label: &str, sealed: &str) -> Result<Vec<u8>, KeyError> {
        open_with(&self.key, label, sealed).ok_or_else(|| {
            let from = match &self.source {
                Some(p) => format!("the key-encryption key in {}", p.display()),
                None => "this key-encryption key".to_string(),
            };
            KeyError::Kek(format!(
                "{from} does not open {label}: the database is sealed under another KEK \
                 (after `portvakt keys rewrap`, set kek_file to the new KEK's file)"
            ))
        })
    }

    /// True when `other` is the same key (what one seals, the other opens).
    pub fn same_key(&self, other: &Kek) -> bool {
        self.seal("probe", b"probe")
            .ok()
            .is_some_and(|s| other.open("probe", &s).is_ok())
    }
}

/// What `rewrap_in` re-sealed, by kind.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Rewrapped {
    pub signing_keys: usize,
    pub server_secrets: usize,
    pub upstream_secrets: usize,
}

/// `keys rewrap`: opens every value sealed under `old` and seals it under `new`, in the
/// caller's transaction, so the database is under one KEK or the other, never both. A value
/// `old` cannot open stops it with an error naming that value; nothing is written then (the
/// caller drops the transaction).
pub async fn rewrap_in(tx: &mut storage::Tx, old: &Kek, new: &Kek) -> Result<Rewrapped, KeyError> {
    if old.same_key(new) {
        return Err(KeyError::Kek(
            "the new key-encryption key is the current one: give a new KEK file".into(),
        ));
    }
    let mut done = Rewrapped::default();
    for mut s in storage::secrets::sealed_in(tx).await? {
        let label = label_of(s.kind, &s.id);
        let plain = old.open(&label, &s.value)?;
        s.value = new.seal(&label, &plain)?;
        storage::secrets::reseal_in(tx, &s).await?;
        match s.kind {
            SealedKind::SigningKey => done.signing_keys += 1,
            SealedKind::ServerSecret => done.server_secrets += 1,
            SealedKind::UpstreamSecret => done.upstream_secrets += 1,
        }
    }
    Ok(done)
}

/// Whether every sealed value opens with `kek` (after a rewrap, before telling the operator
/// it is done).
pub async fn opens_all(db: &Db, kek: &Kek) -> Result<usize, KeyError> {
    let mut tx = db.begin().await?;
    let all = storage::secrets::sealed_in(&mut tx).await?;
    drop(tx);
    for s in &all {
        kek.open(&label_of(s.kind, &s.id), &s.value)?;
    }
    Ok(all.len())
}

pub(crate) fn seal_with(
    key: &LessSafeKey,
    label: &str,
    plaintext: &[u8],
) -> Result<String, KeyError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| KeyError::Random)?;
    let mut buf = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(label.as_bytes()),
        &mut buf,
    )
    .map_err(|_| KeyError::Random)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    Ok(STANDARD.encode(out))
}

pub(crate) fn open_with(key: &LessSafeKey, label: &str, sealed: &str) -> Option<Vec<u8>> {
    let raw = STANDARD.decode(sealed).ok()?;
    if raw.len() < NONCE_LEN {
        return None;
    }
    let (nonce, rest) = raw.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buf = rest.to_vec();
    let plain = key
        .open_in_place(nonce, Aad::from(label.as_bytes()), &mut buf)
        .ok()?;
    Some(plain.to_vec())
}

pub(crate) fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_label_binding() {
        let kek = Kek::from_bytes(&[7u8; 32]).unwrap();
        let sealed = kek.seal("a", b"secret").unwrap();
        assert_eq!(kek.open("a", &sealed).unwrap(), b"secret");
        assert!(kek.open("b", &sealed).is_err());
        let other = Kek::from_bytes(&[8u8; 32]).unwrap();
        assert!(other.open("a", &sealed).is_err());
    }

    #[test]
    fn file_round_trip_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        let kek = Kek::create(&path).unwrap();
        let sealed = kek.seal("x", b"1").unwrap();
        assert_eq!(Kek::load(&path).unwrap().open("x", &sealed).unwrap(), b"1");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert!(Kek::create(&path).is_err());
    }
}
