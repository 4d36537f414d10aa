//! Secret values at rest: Secrets Manager values and SSM parameters are sealed with
//! AES-256-GCM under a data key before they reach the store. The data key is kept in the
//! store wrapped (AES-256-GCM) by a master key that never is: a file the operator names
//! (`--master-key-file`), the systemd credential `berth-master-key`, or, by default, a
//! key made on first start in the data directory (so a copied store file or backup alone
//! reveals nothing). Rotating the master key re-wraps the data key only: start with the
//! new key and `--previous-master-key-file` naming the old one.

use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{Aad, Nonce, RandomizedNonceKey, AES_256_GCM, NONCE_LEN};
use base64::Engine;

use crate::store::{Store, StoreError, Table, Write};

const KEY_LEN: usize = 32;
/// Where the wrapped data key is kept (the meta table).
const DATA_KEY: &str = "sealing_data_key";
/// Sealed values start with this, so a value stored before sealing existed is told apart.
const SEALED_PREFIX: &str = "sealed:v1:";

#[derive(Debug, thiserror::Error)]
pub enum SealingError {
    #[error("master key {path}: {message}")]
    MasterKey { path: PathBuf, message: String },
    #[error(
        "the store's data key does not open with the master key {0} (nor with a previous \
         key): start with the key the store was sealed with, or name it with \
         --previous-master-key-file to rotate to this one"
    )]
    WrongMasterKey(PathBuf),
    #[error(
        "a sealed value does not open ({0}): the store was altered or sealed under another key"
    )]
    Corrupt(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The master key and where it came from.
pub struct MasterKey {
    bytes: [u8; KEY_LEN],
    pub path: PathBuf,
}

impl MasterKey {
    /// Reads a key file: 32 bytes, raw, hex (64 characters) or base64.
    pub fn read(path: &Path) -> Result<Self, SealingError> {
        let err = |message: String| SealingError::MasterKey {
            path: path.to_owned(),
            message,
        };
        let raw = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let text = String::from_utf8_lossy(&raw);
        let text = text.trim();
        let bytes = if raw.len() == KEY_LEN {
            raw
        } else if let Ok(b) = hex::decode(text) {
            b
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| err("neither 32 raw bytes, nor hex, nor base64".into()))?
        };
        let bytes: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| err(format!("{} bytes; a key is 32", b.len())))?;
        Ok(Self {
            bytes,
            path: path.to_owned(),
        })
    }

    /// The key at `path`, made (random, mode 0600) if the file does not exist.
    pub fn read_or_create(path: &Path) -> Result<Self, SealingError> {
        if !path.exists() {
            use std::io::Write as _;
            use std::os::unix::fs::OpenOptionsExt;
            let key: [u8; KEY_LEN] = rand::random();
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| SealingError::MasterKey {
                    path: path.to_owned(),
                    message: e.to_string(),
                })?;
            f.write_all(hex::encode(key).as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| SealingError::MasterKey {
                    path: path.to_owned(),
                    message: e.to_string(),
                })?;
            tracing::info!(path = %path.display(), "made a master key for secrets at rest");
        }
        Self::read(path)
    }

    fn cipher(&self) -> RandomizedNonceKey {
        RandomizedNonceKey::new(&AES_256_GCM, &self.bytes).expect("a 32-byte AES-256 key")
    }
}

/// Seals with a random nonce; `nonce || ciphertext || tag`.
fn seal_with(key: &RandomizedNonceKey, aad: &[u8], plain: &[u8]) -> Vec<u8> {
    let mut data = plain.to_vec();
    let nonce = key
        .seal_in_place_append_tag(Aad::from(aad), &mut data)
        .expect("AES-GCM sealing does not fail on in-memory data");
    let mut out = nonce.as_ref().to_vec();
    out.extend_from_slice(&data);
    out
}

fn open_with(key: &RandomizedNonceKey, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, data) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut data = data.to_vec();
    let plain = key.open_in_place(nonce, Aad::from(aad), &mut data).ok()?;
    Some(plain.to_vec())
}

/// Seals and opens secret values with the store's data key.
pub struct Sealer {
    key: RandomizedNonceKey,
}

impl Sealer {
    /// The store's data key, unwrapped with `master` (or `previous`, then re-wrapped with
    /// `master`); made and stored wrapped on first use.
    pub fn open(
        store: &dyn Store,
        master: &MasterKey,
        previous: Option<&MasterKey>,
    ) -> Result<Self, SealingError> {
        let wrapped = store
            .load(Table::Meta)?
            .into_iter()
            .find(|(k, _)| k == DATA_KEY)
            .map(|(_, v)| v);
        let Some(wrapped) = wrapped else {
            let data_key: [u8; KEY_LEN] = rand::random();
            let sealed = seal_with(&master.cipher(), DATA_KEY.as_bytes(), &data_key);
            store.apply(&[Write::put(Table::Meta, DATA_KEY, sealed)])?;
            return Ok(Self::from_key(&data_key));
        };
        if let Some(key) = open_with(&master.cipher(), DATA_KEY.as_bytes(), &wrapped) {
            return Ok(Self::from_key(&key));
        }
        let old = previous
            .and_then(|p| open_with(&p.cipher(), DATA_KEY.as_bytes(), &wrapped))
            .ok_or_else(|| SealingError::WrongMasterKey(master.path.clone()))?;
        let rewrapped = seal_with(&master.cipher(), DATA_KEY.as_bytes(), &old);
        store.apply(&[Write::put(Table::Meta, DATA_KEY, rewrapped)])?;
        tracing::info!(master_key = %master.path.display(), "re-wrapped the data key of secrets at rest under the new master key");
        Ok(Self::from_key(&old))
    }

    /// A sealer with a key of its own, for tests that only need values to round-trip.
    pub fn ephemeral() -> Self {
        Self::from_key(&rand::random::<[u8; KEY_LEN]>())
    }

    fn from_key(key: &[u8]) -> Self {
        Self {
            key: RandomizedNonceKey::new(&AES_256_GCM, key).expect("a 32-byte data key"),
        }
    }

    /// A sealed value for the store; `context` (e.g. the secret's name) is bound to it, so
    /// a sealed value moved to another record does not open.
    pub fn seal(&self, context: &str, value: &str) -> String {
        let sealed = seal_with(&self.key, context.as_bytes(), value.as_bytes());
        format!(
            "{SEALED_PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(sealed)
        )
    }

    /// The value of `stored`, sealed or (stored before sealing) plain; whether it was plain.
    pub fn unseal(&self, context: &str, stored: &str) -> Result<(String, bool), SealingError> {
        let Some(b64) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok((stored.to_owned(), true));
        };
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| SealingError::Corrupt("not base64"))?;
        let plain = open_with(&self.key, context.as_bytes(), &sealed)
            .ok_or(SealingError::Corrupt("authentication failed"))?;
        String::from_utf8(plain)
            .map(|s| (s, false))
            .map_err(|_| SealingError::Corrupt("not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn key(dir: &Path, name: &str) -> MasterKey {
        MasterKey::read_or_create(&dir.join(name)).unwrap()
    }

    #[test]
    fn values_seal_open_and_stay_bound_to_their_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = MemoryStore::default();
        let s = Sealer::open(&store, &key(dir.path(), "m"), None).unwrap();
        let sealed = s.seal("secret:db", "hunter2");
        assert!(!sealed.contains("hunter2"));
        assert_ne!(
            sealed,
            s.seal("secret:db", "hunter2"),
            "a fresh nonce each time"
        );
        assert_eq!(
            s.unseal("secret:db", &sealed).unwrap(),
            ("hunter2".into(), false)
        );
        assert!(matches!(
            s.unseal("secret:other", &sealed),
            Err(SealingError::Corrupt(_))
        ));
        assert_eq!(
            s.unseal("secret:db", "plain").unwrap(),
            ("plain".into(), true)
        );
        // The same store and key: the same data key.
        let again = Sealer::open(&store, &key(dir.path(), "m"), None).unwrap();
        assert_eq!(again.unseal("secret:db", &sealed).unwrap().0, "hunter2");
    }

    #[test]
    fn rotation_rewraps_the_data_key_and_a_wrong_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = MemoryStore::default();
        let old = key(dir.path(), "old");
        let sealed = Sealer::open(&store, &old, None).unwrap().seal("c", "v");
        let new = key(dir.path(), "new");
        assert!(matches!(
            Sealer::open(&store, &new, None),
            Err(SealingError::WrongMasterKey(_))
        ));
        let rotated = Sealer::open(&store, &new, Some(&old)).unwrap();
        assert_eq!(rotated.unseal("c", &sealed).unwrap().0, "v");
        // From now on the new key alone opens it; the old one no longer does.
        assert!(Sealer::open(&store, &new, None).is_ok());
        assert!(Sealer::open(&store, &old, None).is_err());
    }

    #[test]
    fn key_files_are_read_in_three_spellings() {
        let dir = tempfile::tempdir().unwrap();
        let made = key(dir.path(), "made");
        let permissions = std::fs::metadata(&made.path).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&permissions) & 0o777,
            0o600
        );
        let raw = dir.path().join("raw");
        std::fs::write(&raw, made.bytes).unwrap();
        assert_eq!(MasterKey::read(&raw).unwrap().bytes, made.bytes);
        let b64 = dir.path().join("b64");
        std::fs::write(
            &b64,
            base64::engine::general_purpose::STANDARD.encode(made.bytes),
        )
        .unwrap();
        assert_eq!(MasterKey::read(&b64).unwrap().bytes, made.bytes);
        let short = dir.path().join("short");
        std::fs::write(&short, "abcd").unwrap();
        assert!(MasterKey::read(&short).is_err());
    }
}
