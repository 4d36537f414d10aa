//! SSM Parameter Store: named values (`String`, `StringList`, `SecureString`), in a
//! `/`-separated hierarchy, with every version kept (up to 100, as SSM keeps them). Task
//! definitions name them in `secrets[].valueFrom` by ARN or, in the same region, by name;
//! the control plane resolves them when it hands a task to its agent.
//!
//! Every value is sealed at rest (`crate::sealing`; no KMS here). A `SecureString` read
//! without decryption comes back as an opaque token, never the value.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::ArnContext;
use crate::sealing::Sealer;
use crate::state::Clock;
use crate::store::{Store, StoreError, Table, Write};

/// How many versions SSM keeps of a parameter.
pub const MAX_VERSIONS: usize = 100;
const MAX_LEVELS: usize = 15;
const MAX_VALUE_STANDARD: usize = 4096;
const MAX_VALUE_ADVANCED: usize = 8192;
/// The key SSM encrypts a `SecureString` with when none is named.
pub const DEFAULT_KEY_ID: &str = "alias/aws/ssm";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParameterType {
    String,
    StringList,
    SecureString,
}

impl ParameterType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "String",
            Self::StringList => "StringList",
            Self::SecureString => "SecureString",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ParameterError> {
        [Self::String, Self::StringList, Self::SecureString]
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                ParameterError::Validation(format!(
                    "1 validation error detected: Value '{s}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]"
                ))
            })
    }
}

/// One version of a parameter.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParameterVersion {
    pub version: i64,
    pub kind: ParameterType,
    pub value: String,
    pub description: Option<String>,
    pub key_id: Option<String>,
    pub tier: String,
    pub data_type: String,
    pub allowed_pattern: Option<String>,
    pub modified_at_ms: i64,
    pub modified_by: String,
}

impl std::fmt::Debug for ParameterVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParameterVersion")
            .field("version", &self.version)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// A parameter: its name, ARN and versions, oldest first (the last is current).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parameter {
    pub name: String,
    pub arn: String,
    pub versions: Vec<ParameterVersion>,
}

impl Parameter {
    pub fn current(&self) -> &ParameterVersion {
        self.versions.last().expect("a parameter has a version")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParameterError {
    #[error("Parameter {0} not found.")]
    NotFound(String),
    #[error("The parameter already exists. To overwrite this value, set the overwrite option in the request to true.")]
    Exists,
    #[error("Systems Manager could not find version {version} of {name}. Verify the version and try again.")]
    VersionNotFound { name: String, version: String },
    #[error("Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_ ({0})")]
    Name(String),
    #[error("Parameter name {0} has more than 15 levels of hierarchy.")]
    HierarchyLevels(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    Store(String),
}

impl From<StoreError> for ParameterError {
    fn from(e: StoreError) -> Self {
        Self::Store(e.to_string())
    }
}

/// What `PutParameter` asks for.
#[derive(Debug, Clone, Default)]
pub struct PutInput {
    pub name: String,
    pub value: String,
    pub kind: Option<ParameterType>,
    pub description: Option<String>,
    pub key_id: Option<String>,
    pub overwrite: bool,
    pub allowed_pattern: Option<String>,
    pub tier: Option<String>,
    pub data_type: Option<String>,
}

/// A parameter's name from a name or an ARN.
pub fn name_of(name_or_arn: &str) -> &str {
    match name_or_arn.split_once(":parameter") {
        Some((prefix, rest)) if prefix.starts_with("arn:") => {
            // `.../parameter/a/b` names `/a/b`; `.../parameter/x` names `x`.
            let rest = rest.strip_prefix('/').unwrap_or(rest);
            if rest.contains('/') {
                &name_or_arn[name_or_arn.len() - rest.len() - 1..]
            } else {
                rest
            }
        }
        _ => name_or_arn,
    }
}

fn check_name(name: &str) -> Result<(), ParameterError> {
    let bare = name.trim_start_matches('/');
    let lower = bare.to_ascii_lowercase();
    let chars_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c));
    if name.is_empty()
        || name.len() > 2048
        || !chars_ok
        || lower.starts_with("aws")
        || lower.starts_with("ssm")
        || (name.contains('/') && !name.starts_with('/'))
        || name.ends_with('/')
        || name.contains("//")
    {
        return Err(ParameterError::Name(name.to_owned()));
    }
    if name.matches('/').count() > MAX_LEVELS {
        return Err(ParameterError::HierarchyLevels(name.to_owned()));
    }
    Ok(())
}

pub struct Parameters {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    arns: ArnContext,
    by_name: Mutex<BTreeMap<String, Parameter>>,
    /// Mixed into the opaque stand-in for a `SecureString` read without decryption.
    salt: [u8; 16],
    /// Values are sealed before they reach the store.
    sealer: Arc<Sealer>,
}

/// What a version's sealed value is bound to.
fn seal_context(name: &str, version: i64) -> String {
    format!("parameter:{name}:{version}")
}

impl Parameters {
    /// Loads the parameters, unsealing their values.
    pub fn open(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        arns: ArnContext,
        sealer: Arc<Sealer>,
    ) -> Result<Self, ParameterError> {
        let mut by_name = BTreeMap::new();
        for (key, bytes) in store.load(Table::Parameters)? {
            let mut p: Parameter = serde_json::from_slice(&bytes)
                .map_err(|e| ParameterError::Store(format!("parameter record {key}: {e}")))?;
            for v in &mut p.versions {
                v.value = sealer
                    .unseal(&seal_context(&p.name, v.version), &v.value)
                    .map_err(|e| ParameterError::Store(format!("parameter record {key}: {e}")))?
                    .0;
            }
            by_name.insert(p.name.clone(), p);
        }
        Ok(Self {
            store,
            clock,
            arns,
            by_name: Mutex::new(by_name),
            salt: rand::random(),
            sealer,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Parameter>> {
        self.by_name
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn arn(&self, region: &str, name: &str) -> String {
        let sep = if name.starts_with('/') { "" } else { "/" };
        format!(
            "arn:aws:ssm:{region}:{}:parameter{sep}{name}",
            self.arns.account
        )
    }

    /// `PutParameter`: a new parameter (version 1) or, with `overwrite`, a new version.
    pub fn put(
        &self,
        region: &str,
        caller: &str,
        input: PutInput,
    ) -> Result<Parameter, ParameterError> {
        check_name(&input.name)?;
        let mut map = self.lock();
        let existing = map.get(&input.name).cloned();
        if existing.is_some() && !input.overwrite {
            return Err(ParameterError::Exists);
        }
        let previous = existing.as_ref().map(|p| p.current().clone());
        let previous = previous.as_ref();
        let kind = match (input.kind, previous) {
            (Some(k), _) => k,
            (None, Some(p)) => p.kind,
            (None, None) => {
                return Err(ParameterError::Validation(
                    "A parameter type is required when you create a parameter.".into(),
                ))
            }
        };
        let tier = input
            .tier
            .clone()
            .or_else(|| previous.map(|p| p.tier.clone()))
            .unwrap_or_else(|| "Standard".to_owned());
        let limit = if tier == "Advanced" {
            MAX_VALUE_ADVANCED
        } else {
            MAX_VALUE_STANDARD
        };
        if input.value.is_empty() || input.value.len() > limit {
            return Err(ParameterError::Validation(format!(
                "1 validation error detected: Value at 'value' failed to satisfy constraint: Member must have length between 1 and {limit} ({tier} tier)."
            )));
        }
        if let Some(pattern) = &input.allowed_pattern {
            let re = regex::Regex::new(pattern).map_err(|e| {
                ParameterError::Validation(format!(
                    "AllowedPattern {pattern} is not a valid regular expression: {e}"
                ))
            })?;
            if !re.is_match(&input.value) {
                return Err(ParameterError::Validation(format!(
                    "Parameter value, cannot be validated against allowedPattern: {pattern}"
                )));
            }
        }
        let mut p = existing.unwrap_or_else(|| Parameter {
            name: input.name.clone(),
            arn: self.arn(region, &input.name),
            versions: Vec::new(),
        });
        let version = p.versions.last().map_or(1, |v| v.version + 1);
        p.versions.push(ParameterVersion {
            version,
            kind,
            key_id: (kind == ParameterType::SecureString).then(|| {
                input
                    .key_id
                    .clone()
                    .unwrap_or_else(|| DEFAULT_KEY_ID.to_owned())
            }),
            value: input.value,
            description: input
                .description
                .or_else(|| previous.and_then(|v| v.description.clone())),
            tier,
            data_type: input.data_type.unwrap_or_else(|| "text".to_owned()),
            allowed_pattern: input.allowed_pattern,
            modified_at_ms: self.clock.now_ms(),
            modified_by: caller.to_owned(),
        });
        if p.versions.len() > MAX_VERSIONS {
            p.versions.remove(0);
        }
        self.persist(&p)?;
        map.insert(p.name.clone(), p.clone());
        Ok(p)
    }

    /// Writes the parameter through the store, every value sealed.
    fn persist(&self, p: &Parameter) -> Result<(), ParameterError> {
        let mut sealed = p.clone();
        for v in &mut sealed.versions {
            v.value = self
                .sealer
                .seal(&seal_context(&p.name, v.version), &v.value);
        }
        let bytes =
            serde_json::to_vec(&sealed).map_err(|e| ParameterError::Store(e.to_string()))?;
        self.store
            .apply(&[Write::put(Table::Parameters, p.name.clone(), bytes)])?;
        Ok(())
    }

    /// The parameter a name, ARN or `name:version` selector names, and the version meant.
    pub fn get(&self, selector: &str) -> Result<(Parameter, ParameterVersion), ParameterError> {
        let (name, version) = match selector.rsplit_once(':') {
            Some((n, v)) if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()) => (n, Some(v)),
            _ => (selector, None),
        };
        let name = name_of(name);
        let p = self
            .lock()
            .get(name)
            .cloned()
            .ok_or_else(|| ParameterError::NotFound(name.to_owned()))?;
        let v = match version {
            None => p.current().clone(),
            Some(v) => p
                .versions
                .iter()
                .find(|x| x.version.to_string() == v)
                .cloned()
                .ok_or_else(|| ParameterError::VersionNotFound {
                    name: name.to_owned(),
                    version: v.to_owned(),
                })?,
        };
        Ok((p, v))
    }

    /// Every parameter, by name.
    pub fn list(&self) -> Vec<Parameter> {
        self.lock().values().cloned().collect()
    }

    pub fn delete(&self, name_or_arn: &str) -> Result<(), ParameterError> {
        let name = name_of(name_or_arn);
        let mut map = self.lock();
        if !map.contains_key(name) {
            return Err(ParameterError::NotFound(name.to_owned()));
        }
        self.store
            .apply(&[Write::delete(Table::Parameters, name.to_owned())])?;
        map.remove(name);
        Ok(())
    }

    /// The value as a caller sees it: a `SecureString` read without decryption is an
    /// opaque token (SSM returns its ciphertext), never the value.
    pub fn shown(&self, p: &Parameter, v: &ParameterVersion, decrypt: bool) -> String {
        if v.kind != ParameterType::SecureString || decrypt {
            return v.value.clone();
        }
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update(p.arn.as_bytes());
        h.update(v.version.to_be_bytes());
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, h.finalize())
    }

    /// The value a container's `secrets[].valueFrom` names (decrypted), if it names a
    /// parameter: an SSM parameter ARN, or the name of an existing parameter.
    pub fn resolve(&self, value_from: &str) -> Option<Result<String, String>> {
        let is_arn = crate::model::secret_ref::is_parameter_arn(value_from);
        if !is_arn && !self.lock().contains_key(value_from) {
            return None;
        }
        Some(
            self.get(value_from)
                .map(|(_, v)| v.value)
                .map_err(|e| format!("parameter '{value_from}': {e}")),
        )
    }
}

#[cfg(test)]
mod tests;
