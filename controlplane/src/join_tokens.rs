//! Join tokens: made by an admin (`berth join-token create`), traded once
//! (or, if reusable, until expiry) by an agent for its client certificate.
//! Only a hash of each secret is stored.

use std::sync::{Arc, Mutex};

use berth_proto::join_token::JoinToken;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::state::{Clock, ControlPlane, StateError};

const KEY_PREFIX: &str = "join_token/";

#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("join token {0} is unknown to this control plane")]
    Unknown(String),
    #[error("join token {id} was already used (at {used_at_ms} ms since the epoch); make a new one with `berth join-token create`")]
    AlreadyUsed { id: String, used_at_ms: i64 },
    #[error("join token {0} has expired; make a new one with `berth join-token create`")]
    Expired(String),
    #[error("join token {0} does not match: wrong secret")]
    WrongSecret(String),
    #[error("the join token was made for another cluster CA (its fingerprint differs from this control plane's): a token from another cluster, or from before the CA was rotated")]
    OtherCluster,
    #[error(transparent)]
    State(#[from] StateError),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    secret_sha256: String,
    created_at_ms: i64,
    expires_at_ms: i64,
    reusable: bool,
    used_at_ms: Option<i64>,
}

/// A token as its maker sees it once; the secret is not kept.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: JoinToken,
    pub expires_at_ms: i64,
    pub reusable: bool,
}

pub struct JoinTokens {
    cp: Arc<ControlPlane>,
    clock: Arc<dyn Clock>,
    /// The current cluster CA's fingerprint (it changes when the CA rotates: tokens
    /// made before then no longer join).
    ca_fingerprint: Box<dyn Fn() -> String + Send + Sync>,
    /// Serialises check-and-mark, so a single-use token is traded once.
    lock: Mutex<()>,
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill(&mut buf[..]);
    hex::encode(buf)
}

impl JoinTokens {
    pub fn new(
        cp: Arc<ControlPlane>,
        clock: Arc<dyn Clock>,
        ca_fingerprint: impl Fn() -> String + Send + Sync + 'static,
    ) -> Self {
        Self {
            cp,
            clock,
            ca_fingerprint: Box::new(ca_fingerprint),
            lock: Mutex::new(()),
        }
    }

    /// Makes a token valid for `ttl_ms`, persisted before it is returned.
    pub fn create(&self, ttl_ms: i64, reusable: bool) -> Result<IssuedToken, JoinError> {
        let now = self.clock.now_ms();
        let token = JoinToken {
            ca_fingerprint: (self.ca_fingerprint)(),
            id: random_hex(4),
            secret: random_hex(16),
        };
        let record = Record {
            secret_sha256: sha256_hex(&token.secret),
            created_at_ms: now,
            expires_at_ms: now.saturating_add(ttl_ms),
            reusable,
            used_at_ms: None,
        };
        self.put(&token.id, &record)?;
        tracing::info!(token_id = %token.id, reusable, expires_at_ms = record.expires_at_ms, "join token created");
        Ok(IssuedToken {
            token,
            expires_at_ms: record.expires_at_ms,
            reusable,
        })
    }

    /// Checks a presented token and, if it is good, uses it up (single-use
    /// tokens) before returning: a crash after this never lets it in twice.
    pub fn redeem(&self, presented: &JoinToken) -> Result<(), JoinError> {
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if presented.ca_fingerprint != (self.ca_fingerprint)() {
            return Err(JoinError::OtherCluster);
        }
        let key = format!("{KEY_PREFIX}{}", presented.id);
        let mut record: Record = match self.cp.meta(&key)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
                table: crate::store::Table::Meta,
                key: key.clone(),
                message: e.to_string(),
            })?,
            None => return Err(JoinError::Unknown(presented.id.clone())),
        };
        let presented_hash = sha256_hex(&presented.secret);
        if !bool::from(
            presented_hash
                .as_bytes()
                .ct_eq(record.secret_sha256.as_bytes()),
        ) {
            return Err(JoinError::WrongSecret(presented.id.clone()));
        }
        let now = self.clock.now_ms();
        if now >= record.expires_at_ms {
            return Err(JoinError::Expired(presented.id.clone()));
        }
        if let (false, Some(used_at_ms)) = (record.reusable, record.used_at_ms) {
            return Err(JoinError::AlreadyUsed {
                id: presented.id.clone(),
                used_at_ms,
            });
        }
        record.used_at_ms = Some(now);
        self.put(&presented.id, &record)
    }

    fn put(&self, id: &str, record: &Record) -> Result<(), JoinError> {
        self.cp.set_meta(
            &format!("{KEY_PREFIX}{id}"),
            serde_json::to_vec(record).expect("serializable"),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;
    use crate::model::ArnContext;
    use crate::store::MemoryStore;

    struct TestClock(AtomicI64);
    impl Clock for TestClock {
        fn now_ms(&self) -> i64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn tokens() -> (JoinTokens, Arc<TestClock>) {
        let clock = Arc::new(TestClock(AtomicI64::new(1_000)));
        let cp = Arc::new(
            ControlPlane::open(
                Arc::new(MemoryStore::default()),
                clock.clone(),
                ArnContext {
                    region: "us-east-1".into(),
                    account: "123456789012".into(),
                },
            )
            .unwrap(),
        );
        (
            JoinTokens::new(cp, clock.clone(), || "ab".repeat(32)),
            clock,
        )
    }

    #[test]
    fn a_single_use_token_joins_once() {
        let (t, _) = tokens();
        let issued = t.create(60_000, false).unwrap();
        t.redeem(&issued.token).unwrap();
        assert!(matches!(
            t.redeem(&issued.token),
            Err(JoinError::AlreadyUsed { .. })
        ));
    }

    #[test]
    fn a_reusable_token_joins_until_it_expires() {
        let (t, clock) = tokens();
        let issued = t.create(60_000, true).unwrap();
        t.redeem(&issued.token).unwrap();
        t.redeem(&issued.token).unwrap();
        clock.0.store(61_000, Ordering::SeqCst);
        assert!(matches!(
            t.redeem(&issued.token),
            Err(JoinError::Expired(_))
        ));
    }

    #[test]
    fn wrong_secret_unknown_id_and_foreign_ca_are_refused() {
        let (t, _) = tokens();
        let issued = t.create(60_000, false).unwrap();
        let mut wrong = issued.token.clone();
        wrong.secret = "0".repeat(32);
        assert!(matches!(t.redeem(&wrong), Err(JoinError::WrongSecret(_))));
        let mut unknown = issued.token.clone();
        unknown.id = "ffffffff".into();
        assert!(matches!(t.redeem(&unknown), Err(JoinError::Unknown(_))));
        let mut foreign = issued.token.clone();
        foreign.ca_fingerprint = "cd".repeat(32);
        assert!(matches!(t.redeem(&foreign), Err(JoinError::OtherCluster)));
        // None of the refusals used the token up.
        t.redeem(&issued.token).unwrap();
    }
}
