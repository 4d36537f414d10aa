//! The command line: every command, flag and help text of `berth`.

// The doc comments here are `--help` text, where backticks would show literally.
#![allow(clippy::doc_markdown)]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Berth from the command line: bring a single host up and down, read tasks and services as
/// tables, read task logs, wait for tasks and services. For everything else, the aws CLI works unchanged
/// (`set -a; . /var/lib/berth/aws.env; set +a; aws ecs ...`).
#[derive(Debug, Parser)]
#[command(name = "berth", version)]
pub struct Cli {
    /// Berth's data directory. The CLI reads the control plane's endpoint, access key and
    /// region from DATA_DIR/aws.env, and task logs from DATA_DIR/agent.
    #[arg(
        long,
        global = true,
        env = "BERTH_DATA_DIR",
        default_value = "/var/lib/berth"
    )]
    pub data_dir: PathBuf,

    /// The aws.env to use instead of DATA_DIR/aws.env.
    #[arg(long, global = true, env = "BERTH_AWS_ENV", value_name = "PATH")]
    pub aws_env: Option<PathBuf>,

    /// The local agent's data directory instead of DATA_DIR/agent (where it keeps task logs).
    #[arg(long, global = true, env = "BERTH_AGENT_DATA_DIR", value_name = "DIR")]
    pub agent_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Bring Berth up on this host: runs scripts/up.sh from the Berth source tree
    /// (containerd, a loopback registry with the demo image, the control plane, one agent,
    /// and the demo task). Needs root. Honours BERTH_DATA_DIR / --data-dir: two data dirs
    /// run side by side.
    Up(RepoArgs),
    /// Stop what `berth up` started: runs scripts/down.sh from the Berth source tree
    /// (tasks first, then the daemons, containerd and the registry). Honours
    /// BERTH_DATA_DIR / --data-dir.
    Down(RepoArgs),
    /// List a cluster's tasks: id, family:revision, last and desired status, health, IP, and
    /// when it started.
    Tasks(TasksArgs),
    /// List a cluster's services: status, task definition, desired/running/pending counts,
    /// the rollout state of the PRIMARY deployment, and the newest event.
    Services(ServicesArgs),
    /// Print a task's container output. Local only: reads the log files the agent on THIS
    /// host writes (AGENT_DIR/tasks/<task id>/<container>.log), until the control plane
    /// serves logs.
    Logs(LogsArgs),
    /// Run a command in a task's container (ECS Exec: the task must run with
    /// enableExecuteCommand), on a terminal; exits with the command's status.
    /// E.g. `berth exec 0a1b2c -c web -- /bin/sh`.
    Exec(ExecArgs),
    /// Wait until a task reaches a status or a service is stable, showing progress on stderr.
    #[command(subcommand)]
    Wait(WaitCommand),
    /// Join tokens: what a new agent presents once (--join-token / BERTH_JOIN_TOKEN) to get
    /// its client certificate for mutual TLS with the control plane.
    #[command(subcommand)]
    JoinToken(JoinTokenCommand),
    /// Container instances (hosts running an agent).
    #[command(subcommand)]
    Instance(InstanceCommand),
    /// The cluster CA, which signs the control plane's and the agents' certificates.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Print a shell completion script, e.g. `berth completions bash > /etc/bash_completion.d/berth`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct RepoArgs {
    /// The Berth source tree holding scripts/up.sh (default: the current directory or one
    /// above it, else the tree this binary was built from).
    #[arg(long, env = "BERTH_REPO", value_name = "DIR")]
    pub repo: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns for people.
    Table,
    /// The ECS API's JSON (`{"tasks": [...]}` or `{"services": [...]}`, as DescribeTasks and
    /// DescribeServices return it), for scripts.
    Json,
}

#[derive(Debug, Args)]
pub struct TasksArgs {
    /// Cluster name or ARN.
    #[arg(long, default_value = "default")]
    pub cluster: String,
    /// Also list tasks whose desired status is STOPPED (stopping or recently stopped).
    #[arg(long, short = 'a')]
    pub all: bool,
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct ServicesArgs {
    /// Cluster name or ARN.
    #[arg(long, default_value = "default")]
    pub cluster: String,
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Task id or ARN (an ARN names its own cluster).
    pub task: String,
    /// Only this container's output (default: every container's, each line prefixed with
    /// its name when there are several).
    #[arg(long, short = 'c', value_name = "NAME")]
    pub container: Option<String>,
    /// Keep printing new output until the task stops (or Ctrl-C).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Cluster of a task given by id.
    #[arg(long, default_value = "default")]
    pub cluster: String,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Task id or ARN.
    pub task: String,
    /// The container to run in (needed when the task has several).
    #[arg(long, short = 'c', value_name = "NAME")]
    pub container: Option<String>,
    /// Cluster of a task given by id.
    #[arg(long, default_value = "default")]
    pub cluster: String,
    /// The command and its arguments (run without a shell, as ECS does).
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum WaitCommand {
    /// Until the task is RUNNING; fails if it stops first.
    TaskRunning(WaitArgs),
    /// Until the task is STOPPED; prints its stop reason and exit codes.
    TaskStopped(WaitArgs),
    /// Until the service is stable: one deployment, every desired task running.
    ///
    /// Stable as `aws ecs wait services-stable` means it. Fails (exit 1) if the service is
    /// draining or inactive, or if a rollout fails (the deployment circuit breaker), saying
    /// why. Prints the service's new events as they come.
    ServiceStable(WaitServiceArgs),
}

#[derive(Debug, Subcommand)]
pub enum JoinTokenCommand {
    /// Make a token and print it (only this once: the control plane keeps just a hash).
    Create(JoinTokenCreateArgs),
}

#[derive(Debug, Subcommand)]
pub enum InstanceCommand {
    /// Take a host out at once: deregisters the container instance (with force: its tasks
    /// stop), which revokes its agent's certificate and ends the agent's session. The host
    /// comes back only by joining again with a new token.
    Revoke(InstanceRevokeArgs),
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Replace the cluster CA with a new one, without downtime: the previous CA stays
    /// trusted for one agent-certificate lifetime (every agent renews under the new one
    /// meanwhile), and servers present a chain that hosts trusting either CA verify.
    /// Join tokens made before the rotation no longer work.
    Rotate(CaRotateArgs),
}

#[derive(Debug, Args)]
pub struct CaRotateArgs {
    /// Stop trusting the previous CA at once (its key leaked): every agent holding one of
    /// its certificates is cut off and must join again with a new token.
    #[arg(long)]
    pub distrust_previous: bool,
}

#[derive(Debug, Args)]
pub struct InstanceRevokeArgs {
    /// Container instance id or ARN.
    pub instance: String,
    /// Cluster name or ARN.
    #[arg(long, default_value = "default")]
    pub cluster: String,
}

#[derive(Debug, Args)]
pub struct JoinTokenCreateArgs {
    /// How long the token stays valid: seconds, or a number with s, m, h or d (1m to 30d).
    #[arg(long, default_value = "1h", value_parser = parse_duration_secs, value_name = "DURATION")]
    pub ttl: i64,
    /// Let any number of agents join with it until it expires (default: one agent).
    #[arg(long)]
    pub reusable: bool,
    /// table: just the token; json: the token with its id and expiry.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// "90", "90s", "15m", "2h", "7d" -> seconds.
fn parse_duration_secs(s: &str) -> Result<i64, String> {
    let (num, unit) = match s.trim().char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s.trim()[..i], c),
        _ => (s.trim(), 's'),
    };
    let n: i64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 90s, 15m, 2h or 7d"))?;
    let unit = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(format!("'{s}': the unit must be s, m, h or d")),
    };
    n.checked_mul(unit)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("'{s}' must be a positive duration"))
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Task id or ARN (an ARN names its own cluster).
    pub task: String,
    /// Cluster of a task given by id.
    #[arg(long, default_value = "default")]
    pub cluster: String,
    /// Give up (exit 1) after this many seconds.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    pub timeout: u64,
    /// table: a sentence; json: the task as DescribeTasks last showed it (also on failure).
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct WaitServiceArgs {
    /// Service name or ARN (an ARN names its own cluster).
    pub service: String,
    /// Cluster of a service given by name.
    #[arg(long, default_value = "default")]
    pub cluster: String,
    /// Give up (exit 1) after this many seconds.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    pub timeout: u64,
    /// table: a sentence; json: the service as DescribeServices last showed it (also on
    /// failure).
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_take_a_unit() {
        assert_eq!(parse_duration_secs("90"), Ok(90));
        assert_eq!(parse_duration_secs("15m"), Ok(900));
        assert_eq!(parse_duration_secs("2h"), Ok(7200));
        assert_eq!(parse_duration_secs("7d"), Ok(604_800));
        assert!(parse_duration_secs("2w").is_err());
        assert!(parse_duration_secs("0").is_err());
        assert!(parse_duration_secs("h").is_err());
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli = Cli::try_parse_from([
            "berth",
            "tasks",
            "--data-dir",
            "/d",
            "-o",
            "json",
            "--aws-env",
            "/e",
        ])
        .unwrap();
        assert_eq!(cli.data_dir, PathBuf::from("/d"));
        assert_eq!(cli.aws_env, Some(PathBuf::from("/e")));
        let Command::Tasks(t) = cli.command else {
            panic!()
        };
        assert_eq!(t.output, Output::Json);
        assert_eq!(t.cluster, "default");
    }

    #[test]
    fn wait_service_stable_takes_a_name_cluster_timeout_and_output() {
        let cli = Cli::try_parse_from([
            "berth",
            "wait",
            "service-stable",
            "web",
            "--cluster",
            "prod",
            "--timeout",
            "30",
            "-o",
            "json",
        ])
        .unwrap();
        let Command::Wait(WaitCommand::ServiceStable(w)) = cli.command else {
            panic!()
        };
        assert_eq!(
            (w.service.as_str(), w.cluster.as_str(), w.timeout, w.output),
            ("web", "prod", 30, Output::Json)
        );
        let cli = Cli::try_parse_from(["berth", "services"]).unwrap();
        let Command::Services(s) = cli.command else {
            panic!()
        };
        assert_eq!((s.cluster.as_str(), s.output), ("default", Output::Table));
    }

    #[test]
    fn completions_know_the_new_commands() {
        let mut out = vec![];
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut Cli::command(),
            "berth",
            &mut out,
        );
        let script = String::from_utf8(out).unwrap();
        for word in ["services", "service-stable", "task-running", "--output"] {
            assert!(script.contains(word), "no {word} in the bash completions");
        }
    }
}
