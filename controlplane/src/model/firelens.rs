//! FireLens: a task's log router (`firelensConfiguration`) and the containers that send
//! it their output (`logDriver: awsfirelens`). Validated at registration with ECS's rules.

use serde::{Deserialize, Serialize};

use super::task_definition::{ContainerDefinition, TaskDefinitionError};

/// A container's `firelensConfiguration`: it is the task's log router.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirelensConfiguration {
    /// `fluentbit` or `fluentd`.
    pub kind: String,
    pub options: Vec<(String, String)>,
}

const TYPES: [&str; 2] = ["fluentbit", "fluentd"];
const OPTIONS: [&str; 3] = [
    "enable-ecs-log-metadata",
    "config-file-type",
    "config-file-value",
];

impl FirelensConfiguration {
    fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn check(&self, container: &str) -> Result<(), String> {
        let prefix = format!("Container '{container}': firelensConfiguration");
        if !TYPES.contains(&self.kind.as_str()) {
            return Err(format!(
                "{prefix}.type '{}' is not fluentbit or fluentd.",
                self.kind
            ));
        }
        if let Some((k, _)) = self
            .options
            .iter()
            .find(|(k, _)| !OPTIONS.contains(&k.as_str()))
        {
            return Err(format!(
                "{prefix}.options '{k}' is not one of {}.",
                OPTIONS.join(", ")
            ));
        }
        if let Some(v) = self.option("enable-ecs-log-metadata") {
            if v != "true" && v != "false" {
                return Err(format!(
                    "{prefix}.options enable-ecs-log-metadata '{v}' is not true or false."
                ));
            }
        }
        match (self.option("config-file-type"), self.option("config-file-value")) {
            (None, None) => Ok(()),
            (Some("file"), Some(path)) if path.starts_with('/') => Ok(()),
            (Some("file"), Some(path)) => Err(format!(
                "{prefix}.options config-file-value '{path}' must be an absolute path in the log router's image."
            )),
            (Some("s3"), _) => Err(format!(
                "{prefix}.options config-file-type s3 is not supported by Berth (its hosts reach no S3); put the file in the router's image and use config-file-type file."
            )),
            (Some(t), _) if t != "file" => Err(format!(
                "{prefix}.options config-file-type '{t}' is not file or s3."
            )),
            _ => Err(format!(
                "{prefix}.options config-file-type and config-file-value go together."
            )),
        }
    }
}

/// ECS's rules: at most one log router, of a known type; a container with the
/// awsfirelens log driver needs one, and the router does not log through itself.
pub fn validate(containers: &[ContainerDefinition]) -> Result<(), TaskDefinitionError> {
    let mut routers = containers
        .iter()
        .filter_map(|c| c.options.firelens_configuration.as_ref().map(|f| (c, f)));
    let router = routers.next();
    if let Some((c, f)) = router {
        f.check(&c.name).map_err(TaskDefinitionError)?;
    }
    if let Some((second, _)) = routers.next() {
        return Err(TaskDefinitionError(format!(
            "Container '{second}': a task definition has at most one container with firelensConfiguration (the log router).",
            second = second.name
        )));
    }
    for c in containers {
        let Some(l) = c
            .options
            .log_configuration
            .as_ref()
            .filter(|l| l.log_driver == "awsfirelens")
        else {
            continue;
        };
        match router {
            None => {
                return Err(TaskDefinitionError(format!(
                    "Container '{}': the awsfirelens log driver needs a log router: a container with firelensConfiguration in the same task definition.",
                    c.name
                )))
            }
            Some((r, _)) if r.name == c.name => {
                return Err(TaskDefinitionError(format!(
                    "Container '{}': the log router cannot use the awsfirelens log driver itself; give it awslogs or another driver.",
                    c.name
                )))
            }
            Some(_) => {}
        }
        if l.option("Name")
            .or(l.option("@type"))
            .is_none_or(str::is_empty)
        {
            return Err(TaskDefinitionError(format!(
                "Container '{}': the awsfirelens log driver needs the option Name (the router's output plugin, e.g. cloudwatch_logs; @type for Fluentd).",
                c.name
            )));
        }
        if CLOUDWATCH_OUTPUTS.contains(&l.option("Name").unwrap_or_default())
            && l.option("log_group_name").is_none_or(str::is_empty)
        {
            return Err(TaskDefinitionError(format!(
                "Container '{}': the awsfirelens output {} needs the option log_group_name.",
                c.name,
                l.option("Name").unwrap_or_default()
            )));
        }
    }
    Ok(())
}

/// The router outputs that deliver to CloudWatch Logs, which Berth serves itself.
pub const CLOUDWATCH_OUTPUTS: [&str; 2] = ["cloudwatch_logs", "cloudwatch"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::container_options::LogConfiguration;
    use crate::model::task_definition::tests_support::container;

    fn router(kind: &str, options: &[(&str, &str)]) -> ContainerDefinition {
        let mut c = container("log_router");
        c.options.firelens_configuration = Some(FirelensConfiguration {
            kind: kind.into(),
            options: options
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        });
        c
    }

    fn app(options: &[(&str, &str)]) -> ContainerDefinition {
        let mut c = container("app");
        c.options.log_configuration = Some(LogConfiguration {
            log_driver: "awsfirelens".into(),
            options: options
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        });
        c
    }

    fn refused(containers: &[ContainerDefinition]) -> String {
        validate(containers).unwrap_err().0
    }

    #[test]
    fn a_router_and_its_senders_register() {
        let r = router("fluentbit", &[("enable-ecs-log-metadata", "true")]);
        validate(&[r, app(&[("Name", "forward"), ("Host", "x")])]).unwrap();
        let r = router(
            "fluentd",
            &[
                ("config-file-type", "file"),
                ("config-file-value", "/x.conf"),
            ],
        );
        validate(&[r]).unwrap();
    }

    #[test]
    fn ecs_rules_refuse_what_cannot_route() {
        assert!(refused(&[app(&[("Name", "forward")])]).contains("needs a log router"));
        assert!(refused(&[router("logstash", &[])]).contains("not fluentbit or fluentd"));
        let mut second = router("fluentd", &[]);
        second.name = "other".into();
        assert!(refused(&[router("fluentbit", &[]), second]).contains("at most one"));
        assert!(refused(&[router("fluentbit", &[]), app(&[])]).contains("option Name"));
        assert!(refused(&[
            router("fluentbit", &[]),
            app(&[("Name", "cloudwatch_logs")])
        ])
        .contains("log_group_name"));
        let mut itself = router("fluentbit", &[]);
        itself.options.log_configuration = app(&[("Name", "forward")]).options.log_configuration;
        assert!(refused(&[itself]).contains("cannot use the awsfirelens"));
        assert!(refused(&[router(
            "fluentbit",
            &[
                ("config-file-type", "s3"),
                ("config-file-value", "arn:aws:s3:::b/k")
            ]
        )])
        .contains("not supported by Berth"));
        assert!(
            refused(&[router("fluentbit", &[("config-file-type", "file")])])
                .contains("go together")
        );
        assert!(refused(&[router("fluentbit", &[("retry", "1")])]).contains("'retry'"));
    }
}
