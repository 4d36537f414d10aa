//! Secrets: the part of AWS Secrets Manager that ECS tasks use. A task
//! definition names a secret by ARN in a container's `secrets[].valueFrom`
//! (an environment variable) or `repositoryCredentials.credentialsParameter`
//! (a registry login); the control plane resolves them when it hands the task
//! to its agent, over the agent's mutual-TLS session.
//!
//! Values are sealed at rest (`crate::sealing`); one version per secret
//! (AWSCURRENT); deletion is immediate.
//! `valueFrom` may name an SSM parameter instead (`crate::parameters`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::model::secret_ref::parse_ref;
use crate::model::ArnContext;
use crate::parameters::Parameters;
use crate::sealing::Sealer;
use crate::state::Clock;
use crate::store::{Store, StoreError, Table, Write};

/// One stored secret.
#[derive(Clone, Serialize, Deserialize)]
pub struct Secret {
    pub name: String,
    pub arn: String,
    pub description: Option<String>,
    pub secret_string: String,
    pub version_id: String,
    pub created_at_ms: i64,
    pub changed_at_ms: i64,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("arn", &self.arn)
            .field("version_id", &self.version_id)
            .field("secret_string", &"<redacted>")
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("Secrets Manager can't find the specified secret: '{0}'.")]
    NotFound(String),
    #[error("The operation failed because the secret {0} already exists.")]
    Exists(String),
    #[error("Secrets Manager can't find the specified secret value for {name}: Berth keeps only the current version (AWSCURRENT, {current}).")]
    OtherVersion { name: String, current: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Store(String),
}

impl From<StoreError> for SecretError {
    fn from(e: StoreError) -> Self {
        Self::Store(e.to_string())
    }
}

/// Registry credentials as `repositoryCredentials` expects its secret to hold them.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryLogin {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for RegistryLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryLogin")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

pub struct Secrets {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    arns: ArnContext,
    by_name: Mutex<BTreeMap<String, Secret>>,
    /// SSM parameters, which `valueFrom` may name instead.
    parameters: Option<Arc<Parameters>>,
    /// Values are sealed before they reach the store.
    sealer: Arc<Sealer>,
}

/// Secret names as Secrets Manager allows them: 1-512 of letters, digits and `/_+=.@-`.
fn check_name(name: &str) -> Result<(), SecretError> {
    let ok = (1..=512).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(SecretError::Invalid(format!(
            "Invalid name '{name}': a secret name is 1 to 512 letters, digits and /_+=.@- characters."
        )))
    }
}

/// What a secret's sealed value is bound to.
fn seal_context(name: &str) -> String {
    format!("secret:{name}")
}

fn random_suffix() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..6)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

impl Secrets {
    /// Loads the secrets, unsealing their values (and sealing any stored before sealing).
    pub fn open(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        arns: ArnContext,
        sealer: Arc<Sealer>,
    ) -> Result<Self, SecretError> {
        let mut by_name = BTreeMap::new();
        let mut plain = Vec::new();
        for (key, bytes) in store.load(Table::Secrets)? {
            let mut secret: Secret = serde_json::from_slice(&bytes)
                .map_err(|e| SecretError::Store(format!("secret record {key}: {e}")))?;
            let (value, was_plain) = sealer
                .unseal(&seal_context(&secret.name), &secret.secret_string)
                .map_err(|e| SecretError::Store(format!("secret record {key}: {e}")))?;
            secret.secret_string = value;
            if was_plain {
                plain.push(secret.clone());
            }
            by_name.insert(secret.name.clone(), secret);
        }
        let secrets = Self {
            store,
            clock,
            arns,
            by_name: Mutex::new(by_name),
            parameters: None,
            sealer,
        };
        for s in &plain {
            secrets.persist(s)?;
        }
        Ok(secrets)
    }

    /// `valueFrom` may also name an SSM parameter of `parameters` (by ARN, or by name
    /// when one of that name exists), as on ECS.
    pub fn with_parameters(mut self, parameters: Arc<Parameters>) -> Self {
        self.parameters = Some(parameters);
        self
    }

    /// The injected clock, in Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Secret>> {
        self.by_name
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes the secret through the store, its value sealed.
    fn persist(&self, secret: &Secret) -> Result<(), SecretError> {
        let mut sealed = secret.clone();
        sealed.secret_string = self
            .sealer
            .seal(&seal_context(&secret.name), &secret.secret_string);
        let bytes = serde_json::to_vec(&sealed).map_err(|e| SecretError::Store(e.to_string()))?;
        self.store
            .apply(&[Write::put(Table::Secrets, secret.name.clone(), bytes)])?;
        Ok(())
    }

    /// Finds a secret by name, full ARN, or ARN without its random suffix.
    fn find<'m>(map: &'m BTreeMap<String, Secret>, id: &str) -> Option<&'m Secret> {
        if let Some(s) = map.get(id) {
            return Some(s);
        }
        map.values().find(|s| {
            s.arn == id
                || s.arn
                    .rsplit_once('-')
                    .is_some_and(|(partial, _)| partial == id)
        })
    }

    fn check_value(value: &str) -> Result<(), SecretError> {
        if value.len() > 65_536 {
            return Err(SecretError::Invalid(
                "SecretString is longer than 65536 bytes.".into(),
            ));
        }
        Ok(())
    }

    /// Creates a secret whose ARN carries `region` (the region the request was signed for).
    pub fn create(
        &self,
        region: &str,
        name: &str,
        secret_string: String,
        description: Option<String>,
    ) -> Result<Secret, SecretError> {
        check_name(name)?;
        Self::check_value(&secret_string)?;
        let mut map = self.lock();
        if map.contains_key(name) {
            return Err(SecretError::Exists(name.to_owned()));
        }
        let now = self.clock.now_ms();
        let secret = Secret {
            name: name.to_owned(),
            arn: format!(
                "arn:aws:secretsmanager:{}:{}:secret:{name}-{}",
                region,
                self.arns.account,
                random_suffix()
            ),
            description,
            secret_string,
            version_id: uuid::Uuid::new_v4().to_string(),
            created_at_ms: now,
            changed_at_ms: now,
        };
        self.persist(&secret)?;
        map.insert(name.to_owned(), secret.clone());
        tracing::info!(arn = %secret.arn, "secret created");
        Ok(secret)
    }

    /// Replaces the value: a new current version.
    pub fn put_value(&self, id: &str, secret_string: String) -> Result<Secret, SecretError> {
        Self::check_value(&secret_string)?;
        let mut map = self.lock();
        let mut secret = Self::find(&map, id)
            .cloned()
            .ok_or_else(|| SecretError::NotFound(id.to_owned()))?;
        secret.secret_string = secret_string;
        secret.version_id = uuid::Uuid::new_v4().to_string();
        secret.changed_at_ms = self.clock.now_ms();
        self.persist(&secret)?;
        map.insert(secret.name.clone(), secret.clone());
        Ok(secret)
    }

    pub fn get(&self, id: &str) -> Result<Secret, SecretError> {
        Self::find(&self.lock(), id)
            .cloned()
            .ok_or_else(|| SecretError::NotFound(id.to_owned()))
    }

    /// A secret as a version stage and id name it: only the current version
    /// (`AWSCURRENT`, its id) exists.
    pub fn version(
        &self,
        id: &str,
        stage: Option<&str>,
        version_id: Option<&str>,
    ) -> Result<Secret, SecretError> {
        let secret = self.get(id)?;
        if stage.is_some_and(|s| s != "AWSCURRENT")
            || version_id.is_some_and(|v| v != secret.version_id)
        {
            return Err(SecretError::OtherVersion {
                name: secret.name,
                current: secret.version_id,
            });
        }
        Ok(secret)
    }

    pub fn list(&self) -> Vec<Secret> {
        self.lock().values().cloned().collect()
    }

    pub fn delete(&self, id: &str) -> Result<Secret, SecretError> {
        let mut map = self.lock();
        let secret = Self::find(&map, id)
            .cloned()
            .ok_or_else(|| SecretError::NotFound(id.to_owned()))?;
        self.store
            .apply(&[Write::delete(Table::Secrets, secret.name.clone())])?;
        map.remove(&secret.name);
        tracing::info!(arn = %secret.arn, "secret deleted");
        Ok(secret)
    }

    /// The value a container's `secrets[].valueFrom` names.
    pub fn resolve(&self, value_from: &str) -> Result<String, String> {
        if let Some(value) = self.parameters.as_ref().and_then(|p| p.resolve(value_from)) {
            return value;
        }
        let r = parse_ref(value_from)?;
        let secret = self
            .version(&r.secret_id, r.version_stage, r.version_id)
            .map_err(|e| format!("secret '{value_from}': {e}"))?;
        let Some(key) = r.json_key else {
            return Ok(secret.secret_string.clone());
        };
        let value: serde_json::Value =
            serde_json::from_str(&secret.secret_string).map_err(|_| {
                format!("secret '{value_from}': its value is not JSON, so it has no key '{key}'")
            })?;
        match value.get(key) {
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(other) => Ok(other.to_string()),
            None => Err(format!(
                "secret '{value_from}': its JSON has no key '{key}'"
            )),
        }
    }

    /// The registry login a `repositoryCredentials.credentialsParameter` names:
    /// a secret whose value is `{"username": ..., "password": ...}`.
    pub fn registry_login(&self, credentials_parameter: &str) -> Result<RegistryLogin, String> {
        #[derive(Deserialize)]
        struct Login {
            username: String,
            password: String,
        }
        let text = self.resolve(credentials_parameter)?;
        let login: Login = serde_json::from_str(&text).map_err(|_| {
            format!(
                "secret '{credentials_parameter}' must hold {{\"username\": ..., \"password\": ...}} for repositoryCredentials"
            )
        })?;
        Ok(RegistryLogin {
            username: login.username,
            password: login.password,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    struct FixedClock;
    impl Clock for FixedClock {
        fn now_ms(&self) -> i64 {
            1_700_000_000_000
        }
    }

    fn secrets(store: Arc<MemoryStore>) -> Secrets {
        static SEALER: std::sync::OnceLock<Arc<Sealer>> = std::sync::OnceLock::new();
        Secrets::open(
            store,
            Arc::new(FixedClock),
            ArnContext {
                region: "us-east-1".into(),
                account: "123456789012".into(),
            },
            SEALER.get_or_init(|| Arc::new(Sealer::ephemeral())).clone(),
        )
        .unwrap()
    }

    #[test]
    fn create_get_put_delete_and_survive_a_reopen() {
        let store = Arc::new(MemoryStore::default());
        let s = secrets(store.clone());
        let made = s
            .create("us-east-1", "db/password", "hunter2".into(), None)
            .unwrap();
        assert!(made
            .arn
            .starts_with("arn:aws:secretsmanager:us-east-1:123456789012:secret:db/password-"));
        assert_eq!(made.arn.len() - made.arn.rfind('-').unwrap(), 7);
        assert_eq!(
            s.create("us-east-1", "db/password", "x".into(), None)
                .unwrap_err(),
            SecretError::Exists("db/password".into())
        );
        // By name, by full ARN, by ARN without the random suffix.
        let partial = made.arn.rsplit_once('-').unwrap().0.to_owned();
        for id in ["db/password", made.arn.as_str(), partial.as_str()] {
            assert_eq!(s.get(id).unwrap().secret_string, "hunter2", "{id}");
        }
        let changed = s.put_value(&made.arn, "correct horse".into()).unwrap();
        assert_ne!(changed.version_id, made.version_id);

        let reopened = secrets(store.clone());
        assert_eq!(
            reopened.get("db/password").unwrap().secret_string,
            "correct horse"
        );
        reopened.delete("db/password").unwrap();
        assert!(matches!(
            reopened.get("db/password"),
            Err(SecretError::NotFound(_))
        ));
        assert!(secrets(store).list().is_empty());
    }

    #[test]
    fn bad_names_and_values_are_refused() {
        let s = secrets(Arc::new(MemoryStore::default()));
        assert!(matches!(
            s.create("us-east-1", "", "v".into(), None),
            Err(SecretError::Invalid(_))
        ));
        assert!(matches!(
            s.create("us-east-1", "a b", "v".into(), None),
            Err(SecretError::Invalid(_))
        ));
        let big = "x".repeat(65_537);
        assert!(matches!(
            s.create("us-east-1", "big", big, None),
            Err(SecretError::Invalid(_))
        ));
        assert!(matches!(
            s.put_value("nope", "v".into()),
            Err(SecretError::NotFound(_))
        ));
    }

    #[test]
    fn value_from_references_resolve_as_ecs_reads_them() {
        let s = secrets(Arc::new(MemoryStore::default()));
        let made = s
            .create(
                "us-east-1",
                "app",
                r#"{"user":"u","port":5432}"#.into(),
                None,
            )
            .unwrap();
        assert_eq!(s.resolve(&made.arn).unwrap(), r#"{"user":"u","port":5432}"#);
        assert_eq!(s.resolve(&format!("{}:user::", made.arn)).unwrap(), "u");
        assert_eq!(
            s.resolve(&format!("{}:port:AWSCURRENT:", made.arn))
                .unwrap(),
            "5432"
        );
        let err = s.resolve(&format!("{}:nokey::", made.arn)).unwrap_err();
        assert!(err.contains("no key 'nokey'"), "{err}");
        let err = s
            .resolve(&format!("{}::AWSPREVIOUS:", made.arn))
            .unwrap_err();
        assert!(err.contains("only the current version"), "{err}");
        let err = s
            .resolve("arn:aws:secretsmanager:us-east-1:123456789012:secret:gone-AbCdEf")
            .unwrap_err();
        assert!(err.contains("can't find"), "{err}");
        let err = s
            .resolve("arn:aws:ssm:us-east-1:123456789012:parameter/x")
            .unwrap_err();
        assert!(err.contains("not a Secrets Manager secret ARN"), "{err}");
        assert_eq!(s.resolve("app").unwrap(), r#"{"user":"u","port":5432}"#);
    }

    #[test]
    fn registry_logins_need_username_and_password() {
        let s = secrets(Arc::new(MemoryStore::default()));
        s.create(
            "us-east-1",
            "reg",
            r#"{"username":"alice","password":"pw"}"#.into(),
            None,
        )
        .unwrap();
        s.create("us-east-1", "plain", "not json".into(), None)
            .unwrap();
        let login = s.registry_login("reg").unwrap();
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("alice", "pw")
        );
        assert!(!format!("{login:?}").contains("pw"));
        let err = s.registry_login("plain").unwrap_err();
        assert!(err.contains("must hold"), "{err}");
    }
}
