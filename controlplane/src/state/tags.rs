//! Tag commands (`TagResource`, `UntagResource`, `ListTagsForResource`) on
//! every taggable resource, found by ARN.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{encode, task_definitions, ControlPlane, State, StateError};
use crate::model::arn::{parse_resource_arn, ResourceRef};
use crate::model::capacity_provider::is_fargate;
use crate::store::{Store, Table, Write};

/// At most this many tags per resource, as in ECS.
pub const MAX_TAGS: usize = 50;

/// A change to a resource's tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagChange {
    /// Adds tags; a key already present takes the new value.
    Add(Vec<(String, String)>),
    /// Removes the tags with these keys (absent keys are ignored).
    Remove(Vec<String>),
}

impl TagChange {
    fn apply(&self, tags: &mut Vec<(String, String)>) -> Result<(), StateError> {
        match self {
            TagChange::Add(new) => {
                for (k, v) in new {
                    match tags.iter_mut().find(|(tk, _)| tk == k) {
                        Some(t) => t.1.clone_from(v),
                        None => tags.push((k.clone(), v.clone())),
                    }
                }
                if tags.len() > MAX_TAGS {
                    return Err(StateError::InvalidParameter(format!(
                        "A resource can have at most {MAX_TAGS} tags; this change would give it {}.",
                        tags.len()
                    )));
                }
            }
            TagChange::Remove(keys) => tags.retain(|(k, _)| !keys.contains(k)),
        }
        Ok(())
    }
}

fn missing(arn: &str) -> StateError {
    StateError::ResourceNotFound(format!("The specified resource wasn't found: '{arn}'."))
}

/// Changes the tags of one record of `map` and writes it through.
fn retag<K: Ord, T: Clone + Serialize>(
    store: &dyn Store,
    (table, key): (Table, String),
    map: &mut BTreeMap<K, T>,
    k: &K,
    tags_of: fn(&mut T) -> &mut Vec<(String, String)>,
    change: &TagChange,
) -> Result<(), StateError> {
    let Some(slot) = map.get_mut(k) else {
        return Ok(());
    };
    let mut record = slot.clone();
    change.apply(tags_of(&mut record))?;
    store.apply(&[Write::put(table, key, encode(&record))])?;
    *slot = record;
    Ok(())
}

impl ControlPlane {
    /// Where a resource ARN points, checked to exist. Clusters named by
    /// the ARN must be ACTIVE (`ClusterNotFoundException` otherwise).
    fn locate(state: &State, arn: &str) -> Result<ResourceRef, StateError> {
        let r = parse_resource_arn(arn).map_err(StateError::InvalidParameter)?;
        let found = match &r {
            ResourceRef::Cluster(name) => Self::cluster(state, name).map(|_| true)?,
            ResourceRef::TaskDefinition { family, revision } => state
                .task_definitions
                .contains_key(&(family.clone(), *revision)),
            ResourceRef::Task { cluster, id } => {
                Self::cluster(state, cluster)?;
                state.tasks.get(id).is_some_and(|t| &t.cluster == cluster)
            }
            ResourceRef::Service { cluster, name } => {
                Self::cluster(state, cluster)?;
                state
                    .services
                    .contains_key(&crate::model::service::key(cluster, name))
            }
            ResourceRef::ContainerInstance { cluster, id } => {
                Self::cluster(state, cluster)?;
                Self::find_instance(state, cluster, id).is_some()
            }
            ResourceRef::CapacityProvider(name) if is_fargate(name) => {
                return Err(StateError::InvalidParameter(format!(
                    "The '{name}' capacity provider is reserved: FARGATE and FARGATE_SPOT cannot be tagged."
                )))
            }
            ResourceRef::CapacityProvider(name) => state
                .capacity_providers
                .get(name)
                .is_some_and(|p| p.status == crate::model::CapacityProviderStatus::Active),
        };
        if found {
            Ok(r)
        } else {
            Err(missing(arn))
        }
    }

    pub fn list_tags_for_resource(&self, arn: &str) -> Result<Vec<(String, String)>, StateError> {
        let state = self.lock();
        Ok(match Self::locate(&state, arn)? {
            ResourceRef::Cluster(name) => state.clusters[&name].tags.clone(),
            ResourceRef::TaskDefinition { family, revision } => {
                state.task_definitions[&(family, revision)].tags.clone()
            }
            ResourceRef::Task { id, .. } => state.tasks[&id].tags.clone(),
            ResourceRef::Service { cluster, name } => state.services
                [&crate::model::service::key(&cluster, &name)]
                .tags
                .clone(),
            ResourceRef::ContainerInstance { cluster, id } => {
                Self::find_instance(&state, &cluster, &id)
                    .map(|i| i.tags.clone())
                    .unwrap_or_default()
            }
            ResourceRef::CapacityProvider(name) => state.capacity_providers[&name].tags.clone(),
        })
    }

    /// Adds or removes tags of the resource `arn` names; written through.
    pub fn change_tags(&self, arn: &str, change: &TagChange) -> Result<(), StateError> {
        let mut state = self.lock();
        let store = self.store.as_ref();
        let state = &mut *state;
        match Self::locate(state, arn)? {
            ResourceRef::Cluster(name) => retag(
                store,
                (Table::Clusters, name.clone()),
                &mut state.clusters,
                &name,
                |c| &mut c.tags,
                change,
            ),
            ResourceRef::TaskDefinition { family, revision } => retag(
                store,
                (
                    Table::TaskDefinitions,
                    task_definitions::key(&family, revision),
                ),
                &mut state.task_definitions,
                &(family, revision),
                |td| &mut td.tags,
                change,
            ),
            ResourceRef::Task { id, .. } => retag(
                store,
                (Table::Tasks, id.clone()),
                &mut state.tasks,
                &id,
                |t| &mut t.tags,
                change,
            ),
            ResourceRef::Service { cluster, name } => {
                let key = crate::model::service::key(&cluster, &name);
                retag(
                    store,
                    (Table::Services, key.clone()),
                    &mut state.services,
                    &key,
                    |s| &mut s.tags,
                    change,
                )
            }
            ResourceRef::ContainerInstance { cluster, id } => {
                let instance_arn = Self::find_instance(state, &cluster, &id)
                    .map(|i| i.arn.clone())
                    .unwrap_or_default();
                retag(
                    store,
                    (Table::ContainerInstances, instance_arn.clone()),
                    &mut state.instances,
                    &instance_arn,
                    |i| &mut i.tags,
                    change,
                )
            }
            ResourceRef::CapacityProvider(name) => retag(
                store,
                (Table::CapacityProviders, name.clone()),
                &mut state.capacity_providers,
                &name,
                |p| &mut p.tags,
                change,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LaunchType;
    use crate::state::test_support::{fleet, run};

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn tag_untag_and_list_every_kind() {
        let (cp, instance) = fleet();
        let task = cp
            .run_task(&run("default", LaunchType::Ec2, 1))
            .unwrap()
            .tasks
            .remove(0);
        let arns = [
            cp.default_arns.cluster("default"),
            cp.default_arns.task_definition("web", 1),
            task.arn.clone(),
            instance.clone(),
        ];
        for arn in &arns {
            cp.change_tags(arn, &TagChange::Add(tags(&[("a", "1"), ("b", "2")])))
                .unwrap();
            cp.change_tags(arn, &TagChange::Add(tags(&[("a", "3")])))
                .unwrap();
            cp.change_tags(arn, &TagChange::Remove(vec!["b".into(), "zz".into()]))
                .unwrap();
            assert_eq!(
                cp.list_tags_for_resource(arn).unwrap(),
                tags(&[("a", "3")]),
                "{arn}"
            );
        }
    }

    #[test]
    fn unknown_resources_get_ecs_errors() {
        let (cp, _) = fleet();
        let missing_task = cp.default_arns.task("default", "0000");
        assert!(matches!(
            cp.list_tags_for_resource(&missing_task),
            Err(StateError::ResourceNotFound(m)) if m.contains("0000")
        ));
        assert!(matches!(
            cp.change_tags(
                &cp.default_arns.cluster("ghost"),
                &TagChange::Remove(vec![])
            ),
            Err(StateError::ClusterNotFound(_))
        ));
        assert!(matches!(
            cp.list_tags_for_resource("not-an-arn"),
            Err(StateError::InvalidParameter(_))
        ));
        assert!(matches!(
            cp.list_tags_for_resource(&cp.default_arns.capacity_provider("FARGATE")),
            Err(StateError::InvalidParameter(m)) if m.contains("reserved")
        ));
        let too_many: Vec<_> = (0..51).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(matches!(
            cp.change_tags(&cp.default_arns.cluster("default"), &TagChange::Add(too_many)),
            Err(StateError::InvalidParameter(m)) if m.contains("50")
        ));
        assert!(cp
            .list_tags_for_resource(&cp.default_arns.cluster("default"))
            .unwrap()
            .is_empty());
    }
}
