//! `berth instance revoke`: takes a host out of the cluster at once.

use anyhow::Result;
use serde_json::json;

use crate::args::InstanceRevokeArgs;
use crate::client::EcsClient;

pub async fn revoke(client: &EcsClient, a: &InstanceRevokeArgs) -> Result<()> {
    let out = client
        .call(
            "DeregisterContainerInstance",
            &json!({ "cluster": a.cluster, "containerInstance": a.instance, "force": true }),
        )
        .await?;
    let i = &out["containerInstance"];
    println!(
        "revoked {} (host {}): its agent's certificate is refused from now on",
        i["containerInstanceArn"].as_str().unwrap_or(&a.instance),
        i["ec2InstanceId"].as_str().unwrap_or("?"),
    );
    Ok(())
}
