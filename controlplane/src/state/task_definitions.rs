//! Task definition commands: register, describe, list (revisions and
//! families), deregister, delete.

use super::{encode, ControlPlane, ItemFailure, State, StateError};
use crate::model::task_definition::{validate, Registration};
use crate::model::{TaskDefinition, TaskDefinitionStatus};
use crate::store::{Table, Write};
use berth_ecs::TaskDefinitionFamilyStatus;

pub(super) fn key(family: &str, revision: u32) -> String {
    format!("{family}:{revision}")
}

/// Which families `ListTaskDefinitionFamilies` returns.
#[derive(Debug, Clone, Default)]
pub struct FamilyFilter {
    pub family_prefix: Option<String>,
    /// ACTIVE (the default): families with an ACTIVE revision; INACTIVE:
    /// families whose revisions are all deregistered; ALL: both.
    pub status: Option<TaskDefinitionFamilyStatus>,
}

/// Which task definitions `ListTaskDefinitions` returns.
#[derive(Debug, Clone, Default)]
pub struct TaskDefinitionFilter {
    pub family_prefix: Option<String>,
    /// ACTIVE by default.
    pub status: Option<TaskDefinitionStatus>,
    pub descending: bool,
}

impl ControlPlane {
    /// Registers the next revision of `reg.family`, its ARN in `region`.
    pub fn register_task_definition(
        &self,
        region: &str,
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
            arn: self.arns_in(region).task_definition(&reg.family, revision),
            status: TaskDefinitionStatus::Active,
            registered_at_ms: self.now_ms(),
            deregistered_at_ms: None,
            delete_requested_at_ms: None,
            network_mode: v.network_mode,
            cpu: v.cpu,
            memory_mib: v.memory_mib,
            requires_compatibilities: reg.requires_compatibilities.clone(),
            containers: reg.containers.clone(),
            volumes: reg.volumes.clone(),
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
    pub(crate) fn resolve_task_definition<'a>(
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
                .find(|td| td.status == TaskDefinitionStatus::Active)
                .ok_or_else(not_found),
        }
    }

    pub fn describe_task_definition(&self, reference: &str) -> Result<TaskDefinition, StateError> {
        Self::resolve_task_definition(&self.lock(), reference).cloned()
    }

    pub fn list_task_definitions(&self, filter: &TaskDefinitionFilter) -> Vec<String> {
        let state = self.lock();
        let status = filter.status.unwrap_or(TaskDefinitionStatus::Active);
        let mut arns: Vec<String> = state
            .task_definitions
            .values()
            .filter(|td| {
                filter
                    .family_prefix
                    .as_deref()
                    .is_none_or(|p| td.family == p)
            })
            .filter(|td| td.status == status)
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
        if td.status == TaskDefinitionStatus::Active {
            td.status = TaskDefinitionStatus::Inactive;
            td.deregistered_at_ms = Some(self.now_ms());
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

impl ControlPlane {
    pub fn list_task_definition_families(&self, filter: &FamilyFilter) -> Vec<String> {
        let state = self.lock();
        let status = filter.status.unwrap_or(TaskDefinitionFamilyStatus::Active);
        // (has an ACTIVE revision, has an INACTIVE one), per family in order.
        let mut families: Vec<(String, bool, bool)> = Vec::new();
        for td in state.task_definitions.values().filter(|td| {
            filter
                .family_prefix
                .as_deref()
                .is_none_or(|p| td.family.starts_with(p))
        }) {
            if families.last().is_none_or(|(f, _, _)| *f != td.family) {
                families.push((td.family.clone(), false, false));
            }
            if let Some(last) = families.last_mut() {
                last.1 |= td.status == TaskDefinitionStatus::Active;
                last.2 |= td.status == TaskDefinitionStatus::Inactive;
            }
        }
        families
            .into_iter()
            .filter(|(_, active, inactive)| match status {
                TaskDefinitionFamilyStatus::Active => *active,
                TaskDefinitionFamilyStatus::Inactive => !*active && *inactive,
                TaskDefinitionFamilyStatus::All => *active || *inactive,
            })
            .map(|(f, _, _)| f)
            .collect()
    }

    /// Moves INACTIVE revisions to `DELETE_IN_PROGRESS`. ACTIVE or unknown
    /// revisions become failures beside the results, as in ECS.
    pub fn delete_task_definitions(
        &self,
        references: &[String],
    ) -> Result<(Vec<TaskDefinition>, Vec<ItemFailure>), StateError> {
        let mut state = self.lock();
        let now = self.now_ms();
        let mut deleted: Vec<TaskDefinition> = Vec::new();
        let mut failures = Vec::new();
        for r in references {
            let fail = |reason: String| ItemFailure {
                arn: r.clone(),
                reason,
                detail: None,
            };
            if !r.contains(':') {
                failures.push(fail(format!(
                    "'{r}' names no revision: use family:revision or the full ARN."
                )));
                continue;
            }
            let mut td = match Self::resolve_task_definition(&state, r) {
                Ok(td) => td.clone(),
                Err(e) => {
                    failures.push(fail(e.to_string()));
                    continue;
                }
            };
            match td.status {
                TaskDefinitionStatus::Active => failures.push(ItemFailure {
                    arn: td.arn.clone(),
                    reason: "The task definition is ACTIVE: deregister it with DeregisterTaskDefinition before deleting it.".into(),
                    detail: None,
                }),
                TaskDefinitionStatus::Inactive => {
                    td.status = TaskDefinitionStatus::DeleteInProgress;
                    td.delete_requested_at_ms = Some(now);
                    deleted.push(td);
                }
                TaskDefinitionStatus::DeleteInProgress => deleted.push(td),
            }
        }
        let writes: Vec<Write> = deleted
            .iter()
            .map(|td| {
                Write::put(
                    Table::TaskDefinitions,
                    key(&td.family, td.revision),
                    encode(td),
                )
            })
            .collect();
        if !writes.is_empty() {
            self.store.apply(&writes)?;
        }
        for td in &deleted {
            state
                .task_definitions
                .insert((td.family.clone(), td.revision), td.clone());
        }
        Ok((deleted, failures))
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
            .register_task_definition("us-east-1", &reg("a"), serde_json::json!({}), vec![])
            .unwrap();
        let a2 = cp
            .register_task_definition("us-east-1", &reg("a"), serde_json::json!({}), vec![])
            .unwrap();
        let b1 = cp
            .register_task_definition("us-east-1", &reg("b"), serde_json::json!({}), vec![])
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
        cp.register_task_definition("us-east-1", &reg("a"), serde_json::json!({}), vec![])
            .unwrap();
        cp.register_task_definition("us-east-1", &reg("a"), serde_json::json!({}), vec![])
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
        let inactive = TaskDefinitionFilter {
            status: Some("INACTIVE".into()),
            ..TaskDefinitionFilter::default()
        };
        assert_eq!(
            cp.list_task_definitions(&inactive),
            vec![cp.describe_task_definition("a:2").unwrap().arn]
        );
    }

    #[test]
    fn families_by_status_and_prefix() {
        let (cp, _) = control_plane();
        for f in ["api", "app", "web"] {
            cp.register_task_definition("us-east-1", &reg(f), serde_json::json!({}), vec![])
                .unwrap();
        }
        cp.register_task_definition("us-east-1", &reg("api"), serde_json::json!({}), vec![])
            .unwrap();
        cp.deregister_task_definition("app:1").unwrap();
        cp.deregister_task_definition("api:1").unwrap();
        let list = |prefix: Option<&str>, status: Option<&str>| {
            cp.list_task_definition_families(&FamilyFilter {
                family_prefix: prefix.map(Into::into),
                status: status.map(Into::into),
            })
        };
        assert_eq!(list(None, None), vec!["api", "web"]);
        assert_eq!(list(None, Some("INACTIVE")), vec!["app"]);
        assert_eq!(list(None, Some("ALL")), vec!["api", "app", "web"]);
        assert_eq!(list(Some("ap"), Some("ALL")), vec!["api", "app"]);
    }

    #[test]
    fn only_inactive_revisions_are_deleted() {
        let (cp, store) = control_plane();
        cp.register_task_definition("us-east-1", &reg("a"), serde_json::json!({}), vec![])
            .unwrap();
        cp.register_task_definition("us-east-1", &reg("a"), serde_json::json!({}), vec![])
            .unwrap();
        cp.deregister_task_definition("a:1").unwrap();
        let batches = store.batches.lock().unwrap().len();
        let (deleted, failures) = cp
            .delete_task_definitions(&["a:1".into(), "a:2".into(), "a:9".into(), "a".into()])
            .unwrap();
        assert_eq!(deleted.len(), 1);
        assert_eq!(deleted[0].status, "DELETE_IN_PROGRESS");
        assert!(deleted[0].delete_requested_at_ms.is_some());
        assert_eq!(failures.len(), 3);
        assert!(failures[0].arn.ends_with("task-definition/a:2"));
        assert!(failures[0].reason.contains("DeregisterTaskDefinition"));
        assert!(
            failures[1].reason.contains("'a:9'"),
            "{}",
            failures[1].reason
        );
        assert!(failures[2].reason.contains("revision"));
        // One durable batch for the whole request.
        assert_eq!(store.batches.lock().unwrap().len(), batches + 1);
        assert_eq!(
            cp.describe_task_definition("a:1").unwrap().status,
            "DELETE_IN_PROGRESS"
        );
        let deleting = TaskDefinitionFilter {
            status: Some("DELETE_IN_PROGRESS".into()),
            ..TaskDefinitionFilter::default()
        };
        assert_eq!(cp.list_task_definitions(&deleting).len(), 1);
        // a:2 is still ACTIVE, so the family stays listed.
        assert_eq!(
            cp.list_task_definition_families(&FamilyFilter::default()),
            vec!["a"]
        );
        // Asking again is harmless.
        let (again, failures) = cp.delete_task_definitions(&["a:1".into()]).unwrap();
        assert_eq!((again.len(), failures.len()), (1, 0));
    }

    #[test]
    fn invalid_registration_writes_nothing() {
        let (cp, store) = control_plane();
        let mut r = reg("a");
        r.containers.clear();
        assert!(cp
            .register_task_definition("us-east-1", &r, serde_json::json!({}), vec![])
            .is_err());
        assert!(store.batches.lock().unwrap().is_empty());
    }
}
