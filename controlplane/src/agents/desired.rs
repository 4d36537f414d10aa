//! The desired task set an agent is sent: each task's spec, with its secrets resolved
//! the first time the agent is sent the task, and never again.

use std::collections::HashSet;

use berth_proto::convert::Wire;
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

/// Gives the awslogs containers of `spec` that name no `mode` the account's default.
fn default_log_mode(spec: &mut pb::TaskSpec, mode: &str) {
    if mode != "non-blocking" {
        return;
    }
    for l in spec
        .containers
        .iter_mut()
        .filter_map(|c| c.log_configuration.as_mut())
        .filter(|l| l.log_driver == "awslogs")
    {
        l.options
            .entry(berth_ecs::awslogs::MODE.to_owned())
            .or_insert_with(|| mode.to_owned());
    }
}

/// The tasks a session's agent already holds, secrets and all: those it listed in its
/// Hello (kept in its root-only state file, or in memory) and those sent on this session
/// since. The agent takes a task's spec the first time it sees the task and ignores it
/// after, so a task's secrets go out once: to an agent that lacks the task.
#[derive(Debug, Default)]
pub(super) struct Delivered(HashSet<String>);

impl Delivered {
    /// The tasks (ids) an agent said Hello with.
    pub(super) fn held(task_ids: impl IntoIterator<Item = String>) -> Self {
        Self(task_ids.into_iter().collect())
    }
}

pub(super) fn desired_message(
    cp: &ControlPlane,
    secrets: &Secrets,
    instance_arn: &str,
    delivered: &mut Delivered,
) -> pb::ControlMessage {
    // The account's `defaultLogDriverMode` for containers that name no mode, as ECS
    // applies it.
    let default_mode = cp.account_default("defaultLogDriverMode");
    let mut listed = HashSet::new();
    let tasks = cp.map_desired_tasks(instance_arn, |t| {
        let mut spec = task_spec(t);
        if t.drain_until_ms.is_some() {
            // Still draining behind a load balancer: the agent stops it afterwards.
            spec.desired_status = DesiredStatus::Running.to_wire();
        }
        if !delivered.0.contains(&t.id) {
            add_secrets(&mut spec, t, secrets);
        }
        default_log_mode(&mut spec, &default_mode);
        listed.insert(t.id.clone());
        spec
    });
    // A task that left the set never comes back: forget it.
    delivered.0 = listed;
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

    fn secrets() -> Secrets {
        Secrets::open(
            Arc::new(crate::store::MemoryStore::default()),
            Arc::new(crate::state::SystemClock),
            crate::model::ArnContext {
                region: "us-east-1".into(),
                account: "123456789012".into(),
            },
            Arc::new(crate::sealing::Sealer::ephemeral()),
        )
        .unwrap()
    }

    /// The secret values in a desired-tasks message.
    fn secret_values(m: &pb::ControlMessage) -> Vec<String> {
        let Some(pb::control_message::Kind::DesiredTasks(d)) = &m.kind else {
            panic!("not a desired set: {m:?}");
        };
        d.tasks
            .iter()
            .flat_map(|t| &t.containers)
            .flat_map(|c| &c.secret_environment)
            .map(|kv| kv.value.clone())
            .collect()
    }

    #[test]
    fn a_task_s_secrets_go_to_its_agent_once() {
        use crate::model::task_definition::tests_support::container;
        use crate::state::test_support::{fleet, run};
        let (cp, instance) = fleet();
        let secrets = secrets();
        let db = secrets
            .create("us-east-1", "db", r#"{"pw":"hunter2"}"#.into(), None)
            .unwrap();
        let mut c = container("app");
        c.memory_mib = Some(64);
        c.options.secrets = vec![("PW".into(), format!("{}:pw::", db.arn))];
        let td = crate::model::task_definition::Registration {
            family: "vault".into(),
            containers: vec![c],
            ..Default::default()
        };
        cp.register_task_definition("us-east-1", &td, serde_json::json!({}), vec![])
            .unwrap();
        let mut launch = run("default", crate::model::LaunchType::Ec2, 1);
        launch.launch.task_definition = "vault".into();
        let task = cp.run_task(&launch).unwrap().tasks.remove(0);
        let send = |delivered: &mut Delivered| {
            secret_values(&desired_message(&cp, &secrets, &instance, delivered))
        };

        let mut session = Delivered::default();
        assert_eq!(send(&mut session), ["hunter2"]);
        assert!(send(&mut session).is_empty(), "once per session");
        // The agent's next session, which it opens holding the task: never again.
        assert!(send(&mut Delivered::held([task.id.clone()])).is_empty());
        // One whose agent lost the task (it crashed before recording it): once more.
        assert_eq!(send(&mut Delivered::held([])), ["hunter2"]);
    }

    #[test]
    fn secrets_resolve_into_the_spec_or_fail_it_with_ecss_reason() {
        let secrets = secrets();
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

    #[test]
    fn the_account_s_default_log_mode_fills_in_where_a_container_names_none() {
        use crate::model::container_options::LogConfiguration;
        let mut t = crate::model::task::tests_support::task();
        let def = &mut t.containers[0].definition;
        def.options.log_configuration = Some(LogConfiguration {
            log_driver: "awslogs".into(),
            options: vec![("awslogs-group".into(), "g".into())],
        });
        let mut named = t.containers[0].clone();
        named.definition.name = "named".into();
        if let Some(l) = named.definition.options.log_configuration.as_mut() {
            l.options.push(("mode".into(), "blocking".into()));
        }
        t.containers.push(named);
        let mode = |spec: &pb::TaskSpec, i: usize| {
            spec.containers[i]
                .log_configuration
                .as_ref()
                .and_then(|l| l.options.get("mode").cloned())
        };
        let mut spec = task_spec(&t);
        default_log_mode(&mut spec, "blocking");
        assert_eq!(mode(&spec, 0), None, "blocking is what no mode means");
        default_log_mode(&mut spec, "non-blocking");
        assert_eq!(mode(&spec, 0).as_deref(), Some("non-blocking"));
        assert_eq!(
            mode(&spec, 1).as_deref(),
            Some("blocking"),
            "a container's own mode wins"
        );
    }
}
