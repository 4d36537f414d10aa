//! The desired task set an agent is sent: each task's spec with its secrets resolved.

use berth_proto::v1 as pb;

use super::convert::task_spec;
use crate::model::{DesiredStatus, Task};
use crate::secrets::Secrets;
use crate::state::ControlPlane;

/// Puts a task's resolved `secrets` and `repositoryCredentials` into its spec
/// (the session is mutual TLS). A reference that does not resolve becomes the
/// spec's `secrets_error`, with the reason ECS gives, and the agent fails the task.
pub(super) fn add_secrets(spec: &mut pb::TaskSpec, t: &Task, secrets: &Secrets) {
    if t.desired_status == DesiredStatus::Stopped {
        return;
    }
    let resolved = t
        .containers
        .iter()
        .zip(spec.containers.iter_mut())
        .try_for_each(|(c, out)| {
            let o = &c.definition.options;
            for (name, value_from) in &o.secrets {
                out.secret_environment.push(pb::KeyValue {
                    name: name.clone(),
                    value: secrets.resolve(value_from)?,
                });
            }
            if let Some(p) = &o.repository_credentials {
                let login = secrets.registry_login(p)?;
                out.registry_login = Some(pb::RegistryLogin {
                    username: login.username,
                    password: login.password,
                });
            }
            Ok::<(), String>(())
        });
    if let Err(e) = resolved {
        for c in &mut spec.containers {
            c.secret_environment.clear();
            c.registry_login = None;
        }
        spec.secrets_error =
            format!("ResourceInitializationError: unable to pull secrets or registry auth: {e}");
    }
}

pub(super) fn desired_message(
    cp: &ControlPlane,
    secrets: &Secrets,
    instance_arn: &str,
) -> pb::ControlMessage {
    let tasks = cp.map_desired_tasks(instance_arn, |t| {
        let mut spec = task_spec(t);
        add_secrets(&mut spec, t, secrets);
        spec
    });
    pb::ControlMessage {
        kind: Some(pb::control_message::Kind::DesiredTasks(pb::DesiredTasks {
            tasks,
        })),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn secrets_resolve_into_the_spec_or_fail_it_with_ecss_reason() {
        let secrets = Secrets::open(
            Arc::new(crate::store::MemoryStore::default()),
            Arc::new(crate::state::SystemClock),
            crate::model::ArnContext {
                region: "us-east-1".into(),
                account: "123456789012".into(),
            },
        )
        .unwrap();
        let db = secrets
            .create("us-east-1", "db", r#"{"pw":"hunter2"}"#.into(), None)
            .unwrap();
        secrets
            .create(
                "us-east-1",
                "reg",
                r#"{"username":"u","password":"p"}"#.into(),
                None,
            )
            .unwrap();
        let mut t = crate::model::task::tests_support::task();
        let options = &mut t.containers[0].definition.options;
        options.secrets = vec![("PW".into(), format!("{}:pw::", db.arn))];
        options.repository_credentials = Some("reg".into());
        let resolved = |t: &Task| {
            let mut spec = task_spec(t);
            add_secrets(&mut spec, t, &secrets);
            spec
        };

        let spec = resolved(&t);
        assert_eq!(spec.secrets_error, "");
        let c = &spec.containers[0];
        assert_eq!(
            (
                c.secret_environment[0].name.as_str(),
                c.secret_environment[0].value.as_str()
            ),
            ("PW", "hunter2")
        );
        let login = c.registry_login.as_ref().unwrap();
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("u", "p")
        );

        // One reference that does not resolve: nothing is sent, the task fails.
        t.containers[0].definition.options.repository_credentials = Some("gone".into());
        let spec = resolved(&t);
        assert!(
            spec.secrets_error.starts_with(
                "ResourceInitializationError: unable to pull secrets or registry auth: "
            ) && spec.secrets_error.contains("'gone'"),
            "{}",
            spec.secrets_error
        );
        assert!(spec.containers[0].secret_environment.is_empty());
        assert!(spec.containers[0].registry_login.is_none());

        // A task being stopped needs none.
        t.desired_status = DesiredStatus::Stopped;
        let spec = resolved(&t);
        assert_eq!(spec.secrets_error, "");
        assert!(spec.containers[0].secret_environment.is_empty());
    }
}
