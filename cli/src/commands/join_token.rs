//! `berth join-token create`: asks the control plane for a join token.

use anyhow::Result;
use serde_json::json;

use crate::args::{JoinTokenCreateArgs, Output};
use crate::client::EcsClient;

pub async fn create(client: &EcsClient, a: &JoinTokenCreateArgs) -> Result<()> {
    let out = client
        .admin(
            "CreateJoinToken",
            &json!({ "ttlSeconds": a.ttl, "reusable": a.reusable }),
        )
        .await?;
    match a.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&out)?),
        Output::Table => {
            let token = out["token"]
                .as_str()
                .ok_or_else(|| anyhow::anyhow!("CreateJoinToken: no token in {out}"))?;
            println!("{token}");
            eprintln!(
                "berth: {} token {}, valid for {}s: start an agent with BERTH_JOIN_TOKEN=<token>",
                if a.reusable { "reusable" } else { "single-use" },
                out["tokenId"].as_str().unwrap_or("?"),
                a.ttl
            );
        }
    }
    Ok(())
}
