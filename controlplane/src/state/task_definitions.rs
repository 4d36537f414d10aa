//! Task definition commands: register, describe, list, deregister.

use super::{encode, ControlPlane, State, StateError};
use crate::model::task_definition::{validate, Registration};
use crate::model::TaskDefinition;
use crate::store::{Table, Write};

fn key(family: &str, revision: u32) -> String {
    format!("{family}:{revision}")
}

/// Which task definitions `ListTaskDefinitions` returns.
#[derive(Debug, Clone, Default)]
pub struct TaskDefinitionFilter {
    pub family_prefix: Option<String>,
    /// ACTIVE (the default), INACTIVE, or ALL.
    pub status: Option<String>,
    pub descending: bool,
}

impl ControlPlane {
    pub fn register_task_definition(
        &self,
        reg: &Registration,
        document: serde_json::Value,
        tags: Vec<(String, String)>,
    ) -> Result<TaskDefinition, StateError> {
        let v = validate(reg).map_err(|e| StateError::InvalidParameter(e.0))?;
        let mut state = self.lock();
        let revision = state
            .task_definitions
            .range((reg.family.clone(), 0)..=(reg.family.clone(), u32::MAX))
            .next_back()
            .map_or(1, |((_, r), _)| r + 1);
        let td = TaskDefinition {
            family: reg.family.clone(),
            revision,
            arn: self.arns.task_definition(&reg.family, revision),
            status: "ACTIVE".into(),
            registered_at_ms: self.now(),
            deregistered_at_ms: None,
            network_mode: v.network_mode,
            cpu: v.cpu,
            memory_mib: v.memory_mib,
            requires_compatibilities: reg.requires_compatibilities.clone(),
            containers: reg.containers.clone(),
            document,
            tags,
        };
        self.store.apply(&[Write::put(
            Table::TaskDefinitions,
            key(&td.family, revision),
            encode(&td),
        )])?;
        state
            .task_definitions
            .insert((td.family.clone(), revision), td.clone());
        Ok(td)
    }

    /// Resolves `family`, `family:revision` or an ARN. A bare family names its
    /// latest ACTIVE revision.
    pub(super) fn resolve_task_definition<'a>(
        state: &'a State,
        reference: &str,
    ) -> Result<&'a TaskDefinition, StateError> {
        let not_found = || {
            StateError::Client(format!(
                "Unable to describe task definition '{reference}': no such family or revision. Check the name with ListTaskDefinitions."
            ))
        };
        let short = reference
            .rsplit_once(":task-definition/")
            .map_or(reference, |(_, s)| s);
        match short.rsplit_once(':') {
            Some((family, rev)) => {
                let rev: u32 = rev.parse().map_err(|_| {
                    StateError::Client(format!("Invalid revision '{rev}' in task definition '{reference}': it must be a number."))
                })?;
                state
                    .task_definitions
                    .get(&(family.to_string(), rev))
                    .ok_or_else(not_found)
            }
            None => state
                .task_definitions
                .range((short.to_string(), 0)..=(short.to_string(), u32::MAX))
                .rev()
                .map(|(_, td)| td)
                .find(|td| td.status == "ACTIVE")
                .ok_or_else(not_found),
        }
    }

    pub fn describe_task_definition(&self, reference: &str) -> Result<TaskDefinition, StateError> {
        Self::resolve_task_definition(&self.lock(), reference).cloned()
    }

    pub fn list_task_definitions(&self, filter: &TaskDefinitionFilter) -> Vec<String> {
        let state = self.lock();
        let status = filter.status.as_deref().unwrap_or("ACTIVE");
        let mut arns: Vec<String> = state
            .task_definitions
            .values()
            .filter(|td| {
                filter
                    .family_prefix
                    .as_deref()
                    .is_none_or(|p| td.family.starts_with(p))
            })
            .filter(|td| status == "ALL" || td.status == status)
            .map(|td| td.arn.clone())
            .collect();
        if filter.descending {
            arns.reverse();
        }
        arns
    }

    /// Marks a revision INACTIVE: still describable, no new tasks (as in ECS).
    pub fn deregister_task_definition(
        &self,
        reference: &str,
    ) -> Result<TaskDefinition, StateError> {
        if !reference.contains(':') {
            return Err(StateError::InvalidParameter(format!(
                "Task definition '{reference}' must name a revision: use family:revision or the full ARN."
            )));
        }
        let mut state = self.lock();
        let mut td = Self::resolve_task_definition(&state, reference)?.clone();
        if td.status == "ACTIVE" {
            td.status = "INACTIVE".into();
            td.deregistered_at_ms = Some(self.now());
            self.store.apply(&[Write::put(
                Table::TaskDefinitions,
                key(&td.family, td.revision),
                encode(&td),
            )])?;
            state
                .task_definitions
                .insert((td.family.clone(), td.revision), td.clone());
        }
        Ok(td)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::task_definition::tests_support::container;
    use crate::state::test_support::control_plane;

    fn reg(family: &str) -> Registration {
        Registration {
            family: family.into(),
            containers: vec![container("web")],
            ..Registration::default()
        }
    }

    #[test]
    fn revisions_count_up_per_family_and_resolve() {
        let (cp, _) = control_plane();
        let a1 = cp
            .register_task_definition(&reg("a"), serde_json::json!({}), vec![])
            .unwrap();
        let a2 = cp
            .register_task_definition(&reg("a"), serde_json::json!({}), vec![])
            .unwrap();
        let b1 = cp
            .register_task_definition(&reg("b"), serde_json::json!({}), vec![])
            .unwrap();
        assert_eq!((a1.revision, a2.revision, b1.revision), (1, 2, 1));
        assert_eq!(cp.describe_task_definition("a").unwrap().revision, 2);
        assert_eq!(cp.describe_task_definition("a:1").unwrap().revision, 1);
        assert_eq!(cp.describe_task_definition(&a1.arn).unwrap().revision, 1);
        assert!(
            matches!(cp.describe_task_definition("c"), Err(StateError::Client(m)) if m.contains("'c'"))
        );
    }

    #[test]
    fn deregistered_is_describable_but_not_latest() {
        let (cp, _) = control_plane();
        cp.register_task_definition(&reg("a"), serde_json::json!({}), vec![])
            .unwrap();
        cp.register_task_definition(&reg("a"), serde_json::json!({}), vec![])
            .unwrap();
        assert!(matches!(
            cp.deregister_task_definition("a"),
            Err(StateError::InvalidParameter(_))
        ));
        cp.deregister_task_definition("a:2").unwrap();
        assert_eq!(
            cp.describe_task_definition("a:2").unwrap().status,
            "INACTIVE"
        );
        assert_eq!(cp.describe_task_definition("a").unwrap().revision, 1);
        assert_eq!(
            cp.list_task_definitions(&TaskDefinitionFilter::default())
                .len(),
            1
        );
        let all = TaskDefinitionFilter {
            status: Some("ALL".into()),
            ..TaskDefinitionFilter::default()
        };
        assert_eq!(cp.list_task_definitions(&all).len(), 2);
    }

    #[test]
    fn invalid_registration_writes_nothing() {
        let (cp, store) = control_plane();
        let mut r = reg("a");
        r.containers.clear();
        assert!(cp
            .register_task_definition(&r, serde_json::json!({}), vec![])
            .is_err());
        assert!(store.batches.lock().unwrap().is_empty());
    }
}
