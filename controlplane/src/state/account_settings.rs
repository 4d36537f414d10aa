//! ECS account settings: `PutAccountSetting`, `PutAccountSettingDefault`,
//! `DeleteAccountSetting`, `ListAccountSettings`. A setting is set for a principal (an
//! IAM ARN) or as the account's default (the account root's); the effective value for a
//! principal is its own, else the account default, else ECS's default (`aws_managed`).
//! Berth has one identity per control plane, the account root, so a call without
//! `principalArn` reads and writes the account default, as a root caller does on ECS.

use super::{ControlPlane, StateError};
use crate::store::{Table, Write};

/// Every setting name of the ECS model, with the values ECS takes and its default.
pub const SETTINGS: [(&str, &[&str], &str); 11] = [
    ("serviceLongArnFormat", &["enabled", "disabled"], "enabled"),
    ("taskLongArnFormat", &["enabled", "disabled"], "enabled"),
    (
        "containerInstanceLongArnFormat",
        &["enabled", "disabled"],
        "enabled",
    ),
    ("awsvpcTrunking", &["enabled", "disabled"], "disabled"),
    (
        "containerInsights",
        &["enabled", "disabled", "enhanced"],
        "disabled",
    ),
    ("fargateFIPSMode", &["enabled", "disabled"], "disabled"),
    ("tagResourceAuthorization", &["on", "off"], "on"),
    ("fargateTaskRetirementWaitPeriod", &["0", "7", "14"], "7"),
    ("guardDutyActivate", &["on", "off"], "off"),
    // Berth's awslogs mode when a container names none.
    (
        "defaultLogDriverMode",
        &["blocking", "non-blocking"],
        "blocking",
    ),
    ("fargateEventWindows", &["enabled", "disabled"], "disabled"),
];

/// One setting as ECS shows it (`Setting`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub name: String,
    pub value: String,
    pub principal_arn: String,
    /// `user` (set by someone) or `aws_managed` (ECS's default).
    pub kind: &'static str,
}

fn store_key(principal: &str, name: &str) -> String {
    format!("{principal}|{name}")
}

impl ControlPlane {
    /// The account root's ARN: the account default's principal, and every caller's.
    pub fn root_principal(&self) -> String {
        format!("arn:aws:iam::{}:root", self.default_arns.account)
    }

    fn principal(&self, given: Option<&str>) -> Result<String, StateError> {
        let Some(p) = given.filter(|p| !p.is_empty()) else {
            return Ok(self.root_principal());
        };
        let prefix = format!("arn:aws:iam::{}:", self.default_arns.account);
        let rest = p.strip_prefix(&prefix).unwrap_or_default();
        if rest == "root" || rest.starts_with("user/") || rest.starts_with("role/") {
            Ok(p.to_owned())
        } else {
            Err(StateError::InvalidParameter(format!(
                "principalArn '{p}' is not the ARN of this account's root, an IAM user or an IAM role ({prefix}root, {prefix}user/NAME, {prefix}role/NAME)."
            )))
        }
    }

    /// Sets `name` to `value` for a principal (None: the account default).
    pub fn put_account_setting(
        &self,
        name: &str,
        value: &str,
        principal: Option<&str>,
    ) -> Result<Setting, StateError> {
        let (_, values, _) = setting(name)?;
        if !values.contains(&value) {
            return Err(StateError::InvalidParameter(format!(
                "The value '{value}' is not valid for {name}; use {}.",
                values.join(" or ")
            )));
        }
        if name.ends_with("LongArnFormat") && value == "disabled" {
            return Err(StateError::InvalidParameter(format!(
                "{name} cannot be disabled: Berth always gives resources the long ARN format."
            )));
        }
        let principal = self.principal(principal)?;
        let mut state = self.lock();
        let key = store_key(&principal, name);
        self.store.apply(&[Write::put(
            Table::AccountSettings,
            key.clone(),
            value.as_bytes().to_vec(),
        )])?;
        state.account_settings.insert(key, value.to_owned());
        Ok(Setting {
            name: name.to_owned(),
            value: value.to_owned(),
            principal_arn: principal,
            kind: "user",
        })
    }

    /// Removes a principal's setting (None: the account default); what it was.
    pub fn delete_account_setting(
        &self,
        name: &str,
        principal: Option<&str>,
    ) -> Result<Setting, StateError> {
        setting(name)?;
        let principal = self.principal(principal)?;
        let mut state = self.lock();
        let key = store_key(&principal, name);
        let Some(value) = state.account_settings.get(&key).cloned() else {
            return Err(StateError::InvalidParameter(format!(
                "The setting {name} is not set for {principal}: there is nothing to delete."
            )));
        };
        self.store
            .apply(&[Write::delete(Table::AccountSettings, key.clone())])?;
        state.account_settings.remove(&key);
        Ok(Setting {
            name: name.to_owned(),
            value,
            principal_arn: principal,
            kind: "user",
        })
    }

    /// The account's default for `name`: the value set with `PutAccountSettingDefault`,
    /// else ECS's.
    pub fn account_default(&self, name: &str) -> String {
        let key = store_key(&self.root_principal(), name);
        self.lock()
            .account_settings
            .get(&key)
            .cloned()
            .or_else(|| setting(name).ok().map(|(_, _, d)| d.to_owned()))
            .unwrap_or_default()
    }

    /// A principal's settings (None: the account default's): those set for it, or with
    /// `effective` every setting's effective value.
    pub fn account_settings(
        &self,
        principal: Option<&str>,
        effective: bool,
    ) -> Result<Vec<Setting>, StateError> {
        let principal = self.principal(principal)?;
        let root = self.root_principal();
        let state = self.lock();
        let set = |p: &str, name: &str| state.account_settings.get(&store_key(p, name)).cloned();
        Ok(SETTINGS
            .iter()
            .filter_map(|(name, _, default)| {
                let own = set(&principal, name);
                let (value, principal_arn, kind) = match (own, effective) {
                    (Some(v), _) => (v, principal.clone(), "user"),
                    (None, false) => return None,
                    (None, true) => match set(&root, name) {
                        Some(v) => (v, root.clone(), "user"),
                        None => ((*default).to_owned(), root.clone(), "aws_managed"),
                    },
                };
                Some(Setting {
                    name: (*name).to_owned(),
                    value,
                    principal_arn,
                    kind,
                })
            })
            .collect())
    }
}

fn setting(
    name: &str,
) -> Result<(&'static str, &'static [&'static str], &'static str), StateError> {
    SETTINGS
        .iter()
        .find(|(n, _, _)| *n == name)
        .copied()
        .ok_or_else(|| {
            StateError::InvalidParameter(format!(
                "'{name}' is not an account setting; use one of {}.",
                SETTINGS.map(|(n, _, _)| n).join(", ")
            ))
        })
}
