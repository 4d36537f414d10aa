//! `PutAttributes`, `DeleteAttributes`, `ListAttributes` on container
//! instances (ECS's only attribute target type).

use super::{encode, ControlPlane, State, StateError};
use crate::model::container_instance::{validate_attribute, MAX_CUSTOM_ATTRIBUTES};
use crate::model::{Attribute, ContainerInstance};
use crate::store::{Table, Write};

fn target<'a>(
    state: &'a State,
    cluster: &str,
    a: &Attribute,
) -> Result<&'a ContainerInstance, StateError> {
    ControlPlane::find_instance(state, cluster, &a.target_id)
        .filter(|i| i.status != crate::model::InstanceStatus::Inactive)
        .ok_or_else(|| {
            StateError::TargetNotFound(format!(
                "Could not find container instance '{}' in cluster '{cluster}' for attribute '{}'. List them with ListContainerInstances.",
                a.target_id, a.name
            ))
        })
}

impl ControlPlane {
    /// Sets custom attributes, all or none: every target must exist and
    /// stay within ECS's limit of custom attributes per instance.
    pub fn put_attributes(
        &self,
        cluster: &str,
        attributes: &[Attribute],
    ) -> Result<Vec<Attribute>, StateError> {
        for a in attributes {
            validate_attribute(&a.name, a.value.as_deref())
                .map_err(StateError::InvalidParameter)?;
        }
        self.change_attributes(cluster, attributes, |i, a| {
            match i.custom_attributes.iter_mut().find(|(n, _)| *n == a.name) {
                Some(existing) => existing.1.clone_from(&a.value),
                None => i.custom_attributes.push((a.name.clone(), a.value.clone())),
            }
            if i.custom_attributes.len() > MAX_CUSTOM_ATTRIBUTES {
                return Err(StateError::AttributeLimitExceeded(format!(
                    "Container instance '{}' would have {} custom attributes; at most {MAX_CUSTOM_ATTRIBUTES} are allowed. Delete some with DeleteAttributes.",
                    i.id,
                    i.custom_attributes.len()
                )));
            }
            Ok(())
        })
    }

    /// Removes custom attributes by name (values are not compared, as in ECS).
    pub fn delete_attributes(
        &self,
        cluster: &str,
        attributes: &[Attribute],
    ) -> Result<Vec<Attribute>, StateError> {
        self.change_attributes(cluster, attributes, |i, a| {
            i.custom_attributes.retain(|(n, _)| *n != a.name);
            Ok(())
        })
    }

    /// Applies `change` per attribute to its target, then stores every
    /// changed instance in one batch. Answers name targets by ARN.
    fn change_attributes(
        &self,
        cluster: &str,
        attributes: &[Attribute],
        change: impl Fn(&mut ContainerInstance, &Attribute) -> Result<(), StateError>,
    ) -> Result<Vec<Attribute>, StateError> {
        let mut state = self.lock();
        let cluster = Self::cluster(&state, cluster)?.name.clone();
        let mut changed: Vec<ContainerInstance> = Vec::new();
        let mut out = Vec::new();
        for a in attributes {
            let found = target(&state, &cluster, a)?;
            let arn = found.arn.clone();
            let pos = if let Some(p) = changed.iter().position(|i| i.arn == arn) {
                p
            } else {
                changed.push(found.clone());
                changed.len() - 1
            };
            change(&mut changed[pos], a)?;
            out.push(Attribute {
                target_id: arn,
                ..a.clone()
            });
        }
        for i in &mut changed {
            i.version += 1;
        }
        let writes: Vec<Write> = changed
            .iter()
            .map(|i| Write::put(Table::ContainerInstances, i.arn.clone(), encode(i)))
            .collect();
        if !writes.is_empty() {
            self.store.apply(&writes)?;
        }
        for i in changed {
            state.instances.insert(i.arn.clone(), i);
        }
        Ok(out)
    }

    /// Attributes of the cluster's registered instances, optionally only
    /// those with a name (and value).
    pub fn list_attributes(
        &self,
        cluster: &str,
        name: Option<&str>,
        value: Option<&str>,
    ) -> Result<Vec<Attribute>, StateError> {
        let state = self.lock();
        let cluster = Self::cluster(&state, cluster)?;
        Ok(state
            .instances
            .values()
            .filter(|i| {
                i.cluster == cluster.name && i.status != crate::model::InstanceStatus::Inactive
            })
            .flat_map(|i| {
                i.all_attributes().into_iter().map(move |(n, v)| Attribute {
                    name: n,
                    value: v,
                    target_id: i.arn.clone(),
                })
            })
            .filter(|a| name.is_none_or(|n| a.name == n))
            .filter(|a| value.is_none_or(|v| a.value.as_deref() == Some(v)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::query::Expression;
    use crate::model::{arn, LaunchType};
    use crate::state::test_support::{add_instance, fleet, registration, run};

    fn attr(name: &str, value: Option<&str>, target: &str) -> Attribute {
        Attribute {
            name: name.into(),
            value: value.map(Into::into),
            target_id: target.into(),
        }
    }

    #[test]
    fn put_list_filter_delete() {
        let (cp, a) = fleet();
        let b = add_instance(&cp, "default");
        let out = cp
            .put_attributes(
                "default",
                &[
                    attr("stack", Some("prod"), arn::resource_id(&a)),
                    attr("stack", Some("dev"), &b),
                    attr("gpu", None, &a),
                ],
            )
            .unwrap();
        assert_eq!(out[0].target_id, a, "answers carry the ARN");
        let listed = cp
            .list_attributes("default", Some("stack"), Some("prod"))
            .unwrap();
        assert_eq!(listed, vec![attr("stack", Some("prod"), &a)]);
        assert_eq!(
            cp.list_attributes("default", Some("gpu"), None)
                .unwrap()
                .len(),
            1
        );
        // Built-in attributes are listed too.
        assert_eq!(
            cp.list_attributes("default", Some("ecs.os-type"), None)
                .unwrap()
                .len(),
            2
        );

        let filter = Expression::parse("attribute:stack == prod").unwrap();
        let found = cp
            .list_container_instances("default", None, Some(&filter))
            .unwrap();
        assert_eq!(found, vec![a.clone()]);
        let filter = Expression::parse("attribute:gpu exists").unwrap();
        assert_eq!(
            cp.list_container_instances("default", None, Some(&filter))
                .unwrap(),
            vec![a.clone()]
        );

        // A later put replaces the value.
        cp.put_attributes("default", &[attr("stack", Some("canary"), &a)])
            .unwrap();
        assert!(cp
            .list_attributes("default", Some("stack"), Some("prod"))
            .unwrap()
            .is_empty());

        cp.delete_attributes("default", &[attr("gpu", None, &a)])
            .unwrap();
        assert!(cp
            .list_attributes("default", Some("gpu"), None)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn custom_attributes_survive_agent_reregistration() {
        let (cp, a) = fleet();
        cp.put_attributes("default", &[attr("stack", Some("prod"), &a)])
            .unwrap();
        let mut r = registration("default", true);
        r.container_instance_arn = Some(a.clone());
        cp.register_instance(&r).unwrap();
        assert_eq!(
            cp.list_attributes("default", Some("stack"), None)
                .unwrap()
                .len(),
            1
        );
        // Placement is unaffected by attributes (no constraints yet).
        assert!(cp.run_task(&run("default", LaunchType::Ec2, 1)).is_ok());
    }

    #[test]
    fn failures_change_nothing() {
        let (cp, a) = fleet();
        let before = cp.list_attributes("default", None, None).unwrap();
        let e = cp
            .put_attributes("default", &[attr("ok", None, &a), attr("x", None, "ghost")])
            .unwrap_err();
        assert!(
            matches!(e, StateError::TargetNotFound(ref m) if m.contains("'ghost'")),
            "{e}"
        );
        let e = cp
            .put_attributes("default", &[attr("bad name", None, &a)])
            .unwrap_err();
        assert!(matches!(e, StateError::InvalidParameter(_)));
        let many: Vec<Attribute> = (0..11).map(|n| attr(&format!("a{n}"), None, &a)).collect();
        let e = cp.put_attributes("default", &many).unwrap_err();
        assert!(
            matches!(e, StateError::AttributeLimitExceeded(ref m) if m.contains("at most 10")),
            "{e}"
        );
        assert_eq!(cp.list_attributes("default", None, None).unwrap(), before);
        assert!(matches!(
            cp.delete_attributes("default", &[attr("x", None, "ghost")]),
            Err(StateError::TargetNotFound(_))
        ));
    }
}
