//! More agents on this machine, each a host in effect (its own namespace, bridge, CIDR).

use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::{poll, Berth, ExtraAgent};

impl Berth {
    /// Starts one more agent (at most 4) and waits until the control plane
    /// shows it connected; its index in `extra_agents`.
    pub fn start_extra_agent(&mut self) -> Result<usize> {
        self.start_extra_agent_in(None)
    }

    /// `start_extra_agent`, the agent in `capacity_provider`'s pool.
    pub fn start_extra_agent_in(&mut self, capacity_provider: Option<&str>) -> Result<usize> {
        let k = self.extra_agents.len();
        anyhow::ensure!(k < 4, "at most 4 extra agents per harness");
        // The first agent's CIDRs use 10.200-239.x; extras 10.240-255.x.
        let k8 = u32::try_from(k).unwrap_or(0);
        let cidr = format!(
            "10.{}.{}.0/24",
            240 + (self.n * 4 + k8) % 16,
            std::process::id() % 250
        );
        let log = format!("agent{}.log", k + 1);
        let mut agent = ExtraAgent {
            namespace: format!("{}-{}", self.namespace, k + 1),
            bridge: format!("be{}x{}", self.tag, k + 1),
            cidr,
            dir: self.dir.path().join(format!("agent{}", k + 1)),
            instance_arn: String::new(),
            capacity_provider: capacity_provider.map(str::to_owned),
            child: None,
        };
        let known: Vec<String> =
            self.aws(&["ecs", "list-container-instances", "--cluster", "default"])?
                ["containerInstanceArns"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect();
        let child = self
            .agent_command(
                &agent.dir,
                &agent.namespace,
                &agent.bridge,
                &agent.cidr,
                capacity_provider,
            )?
            .stdout(self.log(&log)?)
            .stderr(self.log(&log)?)
            .spawn()
            .context("starting another berth-agent")?;
        agent.child = Some(child);
        self.extra_agents.push(agent);
        let arn = self.wait_extra_connected(k, |arn| !known.iter().any(|a| a == arn))?;
        self.extra_agents[k].instance_arn = arn;
        Ok(k)
    }

    /// Starts extra agent `k` again (same data dir: same container
    /// instance) and waits until it is connected.
    pub fn restart_extra_agent(&mut self, k: usize) -> Result<()> {
        let log = format!("agent{}.log", k + 1);
        let a = &self.extra_agents[k];
        anyhow::ensure!(a.child.is_none(), "extra agent {k} is still running");
        let child = self
            .agent_command(
                &a.dir,
                &a.namespace,
                &a.bridge,
                &a.cidr,
                a.capacity_provider.as_deref(),
            )?
            .stdout(self.log(&log)?)
            .stderr(self.log(&log)?)
            .spawn()
            .context("restarting an extra berth-agent")?;
        self.extra_agents[k].child = Some(child);
        let arn = self.extra_agents[k].instance_arn.clone();
        self.wait_extra_connected(k, |a| a == arn)?;
        Ok(())
    }

    /// Waits until a connected instance matches `is_it`; its ARN.
    fn wait_extra_connected(&mut self, k: usize, is_it: impl Fn(&str) -> bool) -> Result<String> {
        poll(
            "the extra agent to connect",
            Duration::from_secs(30),
            || {
                if let Some(status) = self.extra_agents[k]
                    .child
                    .as_mut()
                    .and_then(|a| a.try_wait().ok().flatten())
                {
                    bail!("berth-agent {} exited early ({status})", k + 1);
                }
                Ok(self.connected_instances()?.into_iter().find(|a| is_it(a)))
            },
        )
    }

    /// The default cluster's container instances whose agent is connected.
    pub fn connected_instances(&self) -> Result<Vec<String>> {
        let arns = self.aws(&["ecs", "list-container-instances", "--cluster", "default"])?;
        let arns: Vec<&str> = arns["containerInstanceArns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if arns.is_empty() {
            return Ok(vec![]);
        }
        let mut cmd = vec![
            "ecs",
            "describe-container-instances",
            "--cluster",
            "default",
            "--container-instances",
        ];
        cmd.extend(arns);
        let d = self.aws(&cmd)?;
        Ok(d["containerInstances"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["agentConnected"] == true)
            .filter_map(|i| i["containerInstanceArn"].as_str().map(str::to_owned))
            .collect())
    }
}
