//! The log router's configuration, generated as ECS generates it: the forward inputs
//! (the unix socket the senders use, and TCP on 127.0.0.1:24224 for the task's own
//! clients), the user's file included, then one output per sender matched by its tag.
//! Pure.
//!
//! Two differences from ECS, both so a real Fluent Bit or Fluentd does the same thing:
//! the `ecs_*` metadata is already in each record (the sender puts it there), so there
//! is no record-modifier filter; and CloudWatch Logs routes have no output here, since
//! the agent delivers them into Berth's store itself.

use std::fmt::Write as _;

use super::{tag, Route, Router, RouterKind, ROUTER_SOCKET};

/// One sender: its container name and route.
pub struct Sender<'a> {
    pub container: &'a str,
    pub route: &'a Route,
}

pub fn generate(router: &Router, task_id: &str, senders: &[Sender<'_>]) -> String {
    match router.kind {
        RouterKind::FluentBit => fluent_bit(router, task_id, senders),
        RouterKind::Fluentd => fluentd(router, task_id, senders),
    }
}

fn fluent_bit(router: &Router, task_id: &str, senders: &[Sender<'_>]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "[INPUT]\n    Name tcp\n    Listen 127.0.0.1\n    Port 8877\n    Tag firelens-healthcheck\n\n\
         [INPUT]\n    Name forward\n    unix_path {ROUTER_SOCKET}\n\n\
         [INPUT]\n    Name forward\n    Listen 127.0.0.1\n    Port 24224\n\n"
    );
    if let Some(file) = &router.config_file {
        let _ = write!(out, "@INCLUDE {file}\n\n");
    }
    out.push_str("[OUTPUT]\n    Name null\n    Match firelens-healthcheck\n");
    outputs(&mut out, senders, "", |s| {
        format!(
            "\n[OUTPUT]\n    Name {}\n    Match {}*\n",
            s.route.output,
            tag(s.container, task_id)
        )
    });
    out
}

fn fluentd(router: &Router, task_id: &str, senders: &[Sender<'_>]) -> String {
    let mut out = format!(
        "<source>\n    @type unix\n    path {ROUTER_SOCKET}\n</source>\n\n\
         <source>\n    @type forward\n    bind 127.0.0.1\n    port 24224\n</source>\n"
    );
    if let Some(file) = &router.config_file {
        let _ = write!(out, "\n@include {file}\n");
    }
    outputs(&mut out, senders, "</match>\n", |s| {
        format!(
            "\n<match {}**>\n    @type {}\n",
            tag(s.container, task_id),
            s.route.output
        )
    });
    out
}

/// One output per sender: `open`, its options, `close`; a CloudWatch Logs route gets
/// a comment saying who delivers it instead.
fn outputs(
    out: &mut String,
    senders: &[Sender<'_>],
    close: &str,
    open: impl Fn(&Sender<'_>) -> String,
) {
    for s in senders {
        if s.route.is_cloudwatch() {
            let _ = write!(
                out,
                "\n# {}: {} is delivered by the Berth agent into its CloudWatch Logs store.\n",
                s.container, s.route.output
            );
            continue;
        }
        out.push_str(&open(s));
        for (k, v) in &s.route.options {
            let _ = writeln!(out, "    {k} {v}");
        }
        out.push_str(close);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn options(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// The task definition of ECS's FireLens example (a Fluent Bit router logging with
    /// awslogs, an app routed to Kinesis Firehose, another to CloudWatch Logs), with the
    /// configuration ECS documents for it, less the two differences the module names.
    #[test]
    fn fluent_bit_configuration_follows_ecs() {
        let router = Router::new(
            "fluentbit",
            &options(&[
                ("enable-ecs-log-metadata", "true"),
                ("config-file-type", "file"),
                ("config-file-value", "/extra.conf"),
            ]),
        )
        .unwrap();
        let firehose = Route::new(&options(&[
            ("Name", "firehose"),
            ("region", "us-west-2"),
            ("delivery_stream", "my-stream"),
        ]))
        .unwrap();
        let cloudwatch = Route::new(&options(&[
            ("Name", "cloudwatch_logs"),
            ("log_group_name", "/ecs/app"),
        ]))
        .unwrap();
        let text = generate(
            &router,
            "abc",
            &[
                Sender {
                    container: "app",
                    route: &firehose,
                },
                Sender {
                    container: "api",
                    route: &cloudwatch,
                },
            ],
        );
        assert_eq!(
            text,
            "[INPUT]\n    Name tcp\n    Listen 127.0.0.1\n    Port 8877\n    Tag firelens-healthcheck\n\n\
             [INPUT]\n    Name forward\n    unix_path /var/run/fluent.sock\n\n\
             [INPUT]\n    Name forward\n    Listen 127.0.0.1\n    Port 24224\n\n\
             @INCLUDE /extra.conf\n\n\
             [OUTPUT]\n    Name null\n    Match firelens-healthcheck\n\n\
             [OUTPUT]\n    Name firehose\n    Match app-firelens-abc*\n    delivery_stream my-stream\n    region us-west-2\n\n\
             # api: cloudwatch_logs is delivered by the Berth agent into its CloudWatch Logs store.\n"
        );
        assert_eq!(
            router.config_destination(),
            "/fluent-bit/etc/fluent-bit.conf"
        );
    }

    #[test]
    fn fluentd_configuration_uses_its_own_syntax() {
        let router = Router::new("fluentd", &HashMap::new()).unwrap();
        let route = Route::new(&options(&[("@type", "stdout")])).unwrap();
        let text = generate(
            &router,
            "abc",
            &[Sender {
                container: "app",
                route: &route,
            }],
        );
        assert_eq!(
            text,
            "<source>\n    @type unix\n    path /var/run/fluent.sock\n</source>\n\n\
             <source>\n    @type forward\n    bind 127.0.0.1\n    port 24224\n</source>\n\n\
             <match app-firelens-abc**>\n    @type stdout\n</match>\n"
        );
        assert!(router.ecs_log_metadata);
        assert_eq!(router.config_destination(), "/fluentd/etc/fluent.conf");
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(Router::new("logstash", &HashMap::new()).is_err());
        assert!(Router::new("fluentbit", &options(&[("config-file-type", "s3")])).is_err());
        assert!(Route::new(&options(&[("region", "x")])).is_err());
        let off = Router::new(
            "fluentbit",
            &options(&[("enable-ecs-log-metadata", "false")]),
        );
        assert!(!off.unwrap().ecs_log_metadata);
    }
}
