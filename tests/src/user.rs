//! Berth as a user drives it: the aws CLI with `aws.env`, and boto3 scripts.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::{poll, Berth};

impl Berth {
    /// The environment `aws.env` gives a user.
    pub fn aws_env(&self) -> Result<Vec<(String, String)>> {
        let text = std::fs::read_to_string(self.data_dir().join("aws.env"))?;
        Ok(text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    /// One setting of `aws.env` (e.g. `AWS_ENDPOINT_URL`), if it has it.
    pub fn aws_env_var(&self, key: &str) -> Option<String> {
        self.aws_env()
            .ok()?
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The API endpoint `aws.env` gives (`AWS_ENDPOINT_URL`).
    pub fn endpoint(&self) -> Result<String> {
        self.aws_env_var("AWS_ENDPOINT_URL")
            .context("aws.env has no AWS_ENDPOINT_URL")
    }

    /// Runs the aws CLI; Ok(json) on success, Err with its stderr otherwise.
    pub fn aws(&self, args: &[&str]) -> Result<Value> {
        let out = self.aws_raw(args)?;
        if !out.status.success() {
            bail!(
                "aws {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&out.stdout)
            .with_context(|| format!("aws output: {}", String::from_utf8_lossy(&out.stdout)))
    }

    pub fn aws_raw(&self, args: &[&str]) -> Result<std::process::Output> {
        Command::new("aws")
            .args(args)
            .args(["--output", "json"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .envs(self.aws_env()?)
            .stdin(Stdio::null())
            .output()
            .context("running the aws CLI (is awscli installed?)")
    }

    /// Every event of a log stream, oldest first (the CLI pages through them).
    pub fn log_events(&self, group: &str, stream: &str) -> Result<Vec<Value>> {
        let out = self.aws(&[
            "logs",
            "filter-log-events",
            "--log-group-name",
            group,
            "--log-stream-names",
            stream,
        ])?;
        Ok(out["events"].as_array().cloned().unwrap_or_default())
    }

    /// The aws CLI v2 (Debian's `awscli` package, `/usr/bin/aws`: the pip v1 lacks
    /// `aws logs tail`), prepared to run `args` against this control plane. v2.9 does
    /// not read `AWS_ENDPOINT_URL`, so the endpoint goes on the command line.
    pub fn aws_v2(&self, args: &[&str]) -> Result<Command> {
        const AWS_V2: &str = "/usr/bin/aws";
        anyhow::ensure!(
            Path::new(AWS_V2).exists(),
            "{AWS_V2} is missing: install Debian's awscli package (scripts/install-deps.sh)"
        );
        let env = self.aws_env()?;
        let endpoint = self.endpoint()?;
        let mut c = Command::new(AWS_V2);
        c.args(args)
            .args(["--endpoint-url", &endpoint])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.dir.path())
            .env("AWS_PAGER", "")
            // `--follow` prints as events come, not when a pipe buffer fills.
            .env("PYTHONUNBUFFERED", "1")
            .envs(env)
            .stdin(Stdio::null());
        Ok(c)
    }

    /// Every task of a service the control plane still knows (desired
    /// RUNNING or STOPPED, any last status), described.
    pub fn service_tasks(&self, service: &str) -> Result<Vec<Value>> {
        let mut arns = std::collections::BTreeSet::new();
        for desired in ["RUNNING", "STOPPED"] {
            let l = self.aws(&[
                "ecs",
                "list-tasks",
                "--service-name",
                service,
                "--desired-status",
                desired,
            ])?;
            arns.extend(
                l["taskArns"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_owned),
            );
        }
        if arns.is_empty() {
            return Ok(vec![]);
        }
        let mut cmd = vec!["ecs", "describe-tasks", "--tasks"];
        cmd.extend(arns.iter().map(String::as_str));
        Ok(self.aws(&cmd)?["tasks"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Registers a task definition from its JSON with the aws CLI
    /// (`--cli-input-json file://...`).
    pub fn register_task_definition(&self, def: &Value) -> Result<()> {
        let family = def["family"].as_str().unwrap_or("td");
        let p = self.dir.path().join(format!("{family}.json"));
        std::fs::write(&p, serde_json::to_vec(def)?)?;
        self.aws(&[
            "ecs",
            "register-task-definition",
            "--cli-input-json",
            &format!("file://{}", p.display()),
        ])?;
        Ok(())
    }

    /// Runs one task of `family` in the default cluster; its ARN. Placement failures fail.
    pub fn run_task(&self, family: &str) -> Result<String> {
        let out = self.aws(&["ecs", "run-task", "--task-definition", family])?;
        if out["failures"].as_array().is_some_and(|f| !f.is_empty()) {
            bail!("run-task {family} failed: {out}");
        }
        out["tasks"][0]["taskArn"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("no taskArn in {out}"))
    }

    /// Waits until the task (default cluster) has stopped; its description.
    pub fn wait_stopped(&self, arn: &str, timeout: Duration) -> Result<Value> {
        poll(&format!("task {arn} to stop"), timeout, || {
            let t = self.describe_task("default", arn)?;
            Ok((t["lastStatus"] == "STOPPED").then_some(t))
        })
    }

    /// A container's log file on this host.
    pub fn container_log(&self, task_arn: &str, container: &str) -> PathBuf {
        let id = task_arn.rsplit('/').next().unwrap_or(task_arn);
        self.agent_dir()
            .join("tasks")
            .join(id)
            .join(format!("{container}.log"))
    }

    /// Waits until a container's log on this host holds `needle`; the log.
    pub fn wait_log(&self, task_arn: &str, container: &str, needle: &str) -> Result<String> {
        let path = self.container_log(task_arn, container);
        poll(
            &format!("{needle:?} in {}", path.display()),
            Duration::from_secs(20),
            || {
                Ok(std::fs::read_to_string(&path)
                    .ok()
                    .filter(|l| l.contains(needle)))
            },
        )
    }

    /// Runs a boto3 script from `tests/scripts` against this control plane
    /// (with `env` besides the aws.env settings) and checks it exercised each
    /// of `ops`; its JSON summary (`{"checked": [...]}`).
    pub fn boto3_script(&self, script: &str, env: &[(&str, &str)], ops: &[&str]) -> Result<Value> {
        let out = Command::new("python3")
            .arg(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("scripts")
                    .join(script),
            )
            .env("HOME", self.dir.path())
            .envs(self.aws_env()?)
            .envs(env.iter().copied())
            .output()
            .context("running python3")?;
        if !out.status.success() {
            bail!("{script} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        let summary: Value = serde_json::from_slice(&out.stdout).with_context(|| {
            format!("{script} printed: {}", String::from_utf8_lossy(&out.stdout))
        })?;
        for op in ops {
            let done = summary["checked"]
                .as_array()
                .is_some_and(|c| c.iter().any(|x| x == op));
            if !done {
                bail!("{script} did not exercise {op}: {summary}");
            }
        }
        Ok(summary)
    }

    /// Describes one task (by ARN).
    pub fn describe_task(&self, cluster: &str, arn: &str) -> Result<Value> {
        let d = self.aws(&[
            "ecs",
            "describe-tasks",
            "--cluster",
            cluster,
            "--tasks",
            arn,
        ])?;
        d["tasks"]
            .get(0)
            .cloned()
            .ok_or_else(|| anyhow!("task {arn} not found: {d}"))
    }

    /// Waits until the task's lastStatus is `status`.
    pub fn wait_task_status(
        &self,
        cluster: &str,
        arn: &str,
        status: &str,
        timeout: Duration,
    ) -> Result<Value> {
        poll(&format!("task {arn} to be {status}"), timeout, || {
            let t = self.describe_task(cluster, arn)?;
            if t["lastStatus"] == status {
                return Ok(Some(t));
            }
            if t["lastStatus"] == "STOPPED" {
                bail!("task stopped instead: {t}");
            }
            Ok(None)
        })
    }
}
