//! The join token's text form, shared by the control plane that makes it,
//! the CLI that prints it and the agent that presents it.
//!
//! `berth1.<ca>.<id>.<secret>`: `ca` is the SHA-256 of the cluster CA
//! certificate (DER, lowercase hex), so an agent that has nothing but the
//! token can tell the real control plane from an impostor before it sends the
//! secret; `id` names the token in logs; `secret` proves possession.

use std::fmt;
use std::str::FromStr;

const PREFIX: &str = "berth1";

#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    pub ca_fingerprint: String,
    pub id: String,
    pub secret: String,
}

impl fmt::Display for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}.{}.{}.{}",
            self.ca_fingerprint, self.id, self.secret
        )
    }
}

/// Never prints the secret.
impl fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct JoinTokenError(String);

impl fmt::Display for JoinTokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed join token ({}): expected berth1.<64 hex>.<id>.<secret> from `berth join-token create`",
            self.0
        )
    }
}

impl std::error::Error for JoinTokenError {}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl FromStr for JoinToken {
    type Err = JoinTokenError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.trim().split('.').collect();
        let [prefix, ca, id, secret] = parts[..] else {
            return Err(JoinTokenError(format!("{} parts", parts.len())));
        };
        if prefix != PREFIX {
            return Err(JoinTokenError(format!("unknown version '{prefix}'")));
        }
        if ca.len() != 64 || !is_hex(ca) {
            return Err(JoinTokenError(
                "the CA fingerprint is not 64 hex digits".into(),
            ));
        }
        if !is_hex(id) || !is_hex(secret) {
            return Err(JoinTokenError("id and secret must be hex".into()));
        }
        Ok(Self {
            ca_fingerprint: ca.to_ascii_lowercase(),
            id: id.to_owned(),
            secret: secret.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_hides_the_secret_in_debug() {
        let t = JoinToken {
            ca_fingerprint: "ab".repeat(32),
            id: "0123abcd".into(),
            secret: "f".repeat(32),
        };
        let s = t.to_string();
        assert_eq!(s.parse::<JoinToken>().unwrap(), t);
        assert!(!format!("{t:?}").contains("ffff"));
    }

    #[test]
    fn rejects_what_is_not_a_token() {
        for bad in [
            "",
            "berth1.ab.cd.ef",
            &format!("berth2.{}.aa.bb", "a".repeat(64)),
            &format!("berth1.{}.aa", "a".repeat(64)),
            &format!("berth1.{}.aa.zz", "a".repeat(64)),
        ] {
            assert!(bad.parse::<JoinToken>().is_err(), "{bad}");
        }
    }
}
