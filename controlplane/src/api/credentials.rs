//! The API access key: created on first start, kept in the store, and written
//! to `<data-dir>/aws.env` so the aws CLI and boto3 can use it.

use std::fmt::Write as _;
use std::path::Path;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::state::{ControlPlane, StateError};

const META_KEY: &str = "api_credentials";

#[derive(Clone, Serialize, Deserialize)]
pub struct ApiCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for ApiCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

fn random_string(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

impl ApiCredentials {
    fn generate() -> Self {
        Self {
            access_key_id: format!(
                "AKIA{}",
                random_string(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
            ),
            secret_access_key: random_string(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                40,
            ),
        }
    }

    /// The stored key, or a new one persisted before it is returned.
    pub fn load_or_create(cp: &ControlPlane) -> Result<Self, StateError> {
        if let Some(bytes) = cp.meta(META_KEY)? {
            return serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
                table: crate::store::Table::Meta,
                key: META_KEY.into(),
                message: e.to_string(),
            });
        }
        let creds = Self::generate();
        cp.set_meta(META_KEY, serde_json::to_vec(&creds).expect("serializable"))?;
        Ok(creds)
    }

    /// Writes `aws.env` (mode 0600): endpoint, key and region for the aws CLI.
    /// Writes `aws.env`; `ca_bundle` (the certificate that verifies the API's) becomes
    /// `AWS_CA_BUNDLE`, which the aws CLI, boto3 and Berth's clients read.
    pub fn write_env_file(
        &self,
        path: &Path,
        endpoint: &str,
        region: &str,
        ca_bundle: Option<&Path>,
    ) -> std::io::Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt;
        let mut text = String::new();
        let _ = writeln!(text, "AWS_ENDPOINT_URL={endpoint}");
        let _ = writeln!(text, "AWS_ACCESS_KEY_ID={}", self.access_key_id);
        let _ = writeln!(text, "AWS_SECRET_ACCESS_KEY={}", self.secret_access_key);
        let _ = writeln!(text, "AWS_DEFAULT_REGION={region}");
        let _ = writeln!(text, "AWS_REGION={region}");
        if let Some(bundle) = ca_bundle {
            let _ = writeln!(text, "AWS_CA_BUNDLE={}", bundle.display());
        }
        let tmp = path.with_extension("env.tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(tmp, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::test_support::control_plane;

    #[test]
    fn created_once_then_reloaded() {
        let (cp, _) = control_plane();
        let a = ApiCredentials::load_or_create(&cp).unwrap();
        let b = ApiCredentials::load_or_create(&cp).unwrap();
        assert_eq!(a.access_key_id, b.access_key_id);
        assert_eq!(a.secret_access_key.len(), 40);
        assert!(!format!("{a:?}").contains(&a.secret_access_key));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("aws.env");
        a.write_env_file(
            &p,
            "https://127.0.0.1:1",
            "us-east-1",
            Some(Path::new("/d/ca.pem")),
        )
        .unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("AWS_ENDPOINT_URL=https://127.0.0.1:1\n"));
        assert!(text.contains("AWS_CA_BUNDLE=/d/ca.pem\n"));
        assert!(text.contains(&format!("AWS_SECRET_ACCESS_KEY={}\n", a.secret_access_key)));
    }
}
