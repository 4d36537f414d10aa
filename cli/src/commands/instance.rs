//! Cluster membership: `berth instance revoke` takes a host out at once, `berth ca
//! rotate` replaces the CA that vouches for hosts and control plane.

use anyhow::Result;
use serde_json::json;

use crate::args::{CaRotateArgs, InstanceRevokeArgs};
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

pub async fn rotate_ca(client: &EcsClient, a: &CaRotateArgs) -> Result<()> {
    let out = client
        .admin(
            "RotateClusterCa",
            &json!({ "distrustPrevious": a.distrust_previous }),
        )
        .await?;
    println!(
        "new cluster CA {}",
        out["caFingerprint"].as_str().unwrap_or("?")
    );
    let previous = out["previousCaFingerprint"].as_str().unwrap_or("?");
    match out["previousTrustedUntil"].as_f64() {
        Some(until) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            println!(
                "previous CA {previous} trusted for {:.0}s more, while agents renew under the new one",
                (until - now).max(0.0)
            );
        }
        None => println!("previous CA {previous} no longer trusted: its agents must join again"),
    }
    eprintln!("berth: join tokens made before now no longer work; make new ones with `berth join-token create`");
    Ok(())
}
