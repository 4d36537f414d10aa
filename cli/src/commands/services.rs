//! `berth services`: `ListServices` + `DescribeServices`, shown as a table or as the API's
//! JSON.

use anyhow::Result;
use serde_json::json;

use crate::args::{Output, ServicesArgs};
use crate::client::EcsClient;
use crate::table;

pub async fn run(client: &EcsClient, args: &ServicesArgs) -> Result<()> {
    let service_arns = client.list_services(&args.cluster).await?;
    let described = client
        .describe_services(&args.cluster, &service_arns)
        .await?;
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "services": described }))?
        ),
        Output::Table if described.is_empty() => {
            eprintln!("No services in cluster {}.", args.cluster);
        }
        Output::Table => print!("{}", table::services_table(&described, super::now_unix())),
    }
    Ok(())
}
