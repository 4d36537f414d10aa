//! `berth`: the command-line client. Parses the command line, finds Berth through
//! `aws.env`, runs one command; errors go to stderr with a non-zero exit.

mod args;
mod commands;
mod progress;
mod table;

use berth_cli::{client, config};

use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory, Parser};

use args::{CaCommand, Cli, Command, InstanceCommand, JoinTokenCommand, WaitCommand};
use client::EcsClient;
use commands::wait::Goal;
use config::{AwsEnv, Paths};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            // `{:#}` keeps the context chain on one line: "DescribeTasks: ...: cause".
            eprintln!("berth: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let paths = Paths::new(cli.data_dir, cli.aws_env, cli.agent_dir);
    let client = || EcsClient::new(AwsEnv::load(&paths.aws_env)?);
    match cli.command {
        Command::Up(a) => {
            return commands::repo::run_script(a.repo.as_deref(), "up.sh", &paths.data_dir)
        }
        Command::Down(a) => {
            return commands::repo::run_script(a.repo.as_deref(), "down.sh", &paths.data_dir)
        }
        Command::Tasks(a) => commands::tasks::run(&client()?, &a).await?,
        Command::Services(a) => commands::services::run(&client()?, &a).await?,
        Command::Logs(a) => commands::logs::run(&paths, client, &a).await?,
        Command::Exec(a) => {
            let code = commands::exec::run(&client()?, &a).await?;
            // Not through the runtime's shutdown: the stdin reader may be blocked in a read.
            std::process::exit(code);
        }
        Command::Wait(WaitCommand::TaskRunning(a)) => {
            commands::wait::run(&client()?, Goal::Running, &a).await?;
        }
        Command::Wait(WaitCommand::TaskStopped(a)) => {
            commands::wait::run(&client()?, Goal::Stopped, &a).await?;
        }
        Command::Wait(WaitCommand::ServiceStable(a)) => {
            commands::wait_service::run(&client()?, &a).await?;
        }
        Command::JoinToken(JoinTokenCommand::Create(a)) => {
            commands::join_token::create(&client()?, &a).await?;
        }
        Command::Instance(InstanceCommand::Revoke(a)) => {
            commands::instance::revoke(&client()?, &a).await?;
        }
        Command::Ca(CaCommand::Rotate(a)) => commands::instance::rotate_ca(&client()?, &a).await?,
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "berth", &mut std::io::stdout());
        }
    }
    Ok(ExitCode::SUCCESS)
}
