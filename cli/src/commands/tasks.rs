//! `berth tasks`: `ListTasks` + `DescribeTasks`, shown as a table or as the API's JSON.

use anyhow::Result;
use berth_ecs::DesiredStatus;
use serde_json::json;

use crate::args::{Output, TasksArgs};
use crate::client::EcsClient;
use crate::table;

pub async fn run(client: &EcsClient, args: &TasksArgs) -> Result<()> {
    let mut task_arns = client
        .list_tasks(&args.cluster, DesiredStatus::Running)
        .await?;
    if args.all {
        task_arns.extend(
            client
                .list_tasks(&args.cluster, DesiredStatus::Stopped)
                .await?,
        );
    }
    let described = client.describe_tasks(&args.cluster, &task_arns).await?;
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "tasks": described }))?
        ),
        Output::Table if described.is_empty() => eprintln!(
            "No tasks in cluster {}{}.",
            args.cluster,
            if args.all {
                ""
            } else {
                " (--all includes stopped ones)"
            }
        ),
        Output::Table => print!("{}", table::tasks_table(&described, super::now_unix())),
    }
    Ok(())
}
