//! The host's iptables rules for one bridge (egress masquerade, FORWARD accepts), each tagged with the comment `berth:<bridge>`, added and removed idempotently by running the `iptables` binary.

use tokio::process::Command;

use super::{NetworkError, TaskCidr};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    pub table: &'static str,
    pub chain: &'static str,
    /// Insert at the top rather than append: FORWARD accepts must come
    /// before a catch-all DROP/REJECT that firewalls put at the end.
    pub insert: bool,
    pub spec: Vec<String>,
}

/// The rules a bridge needs: masquerade traffic from the task subnet that
/// leaves through another interface, and let bridge traffic through FORWARD
/// (with `br_netfilter` loaded, even task-to-task frames cross it, and Docker
/// and firewalls often set its policy to DROP).
pub(crate) fn host_rules(bridge: &str, cidr: TaskCidr) -> Vec<Rule> {
    let comment = format!("berth:{bridge}");
    let spec = |parts: &[&str]| -> Vec<String> {
        parts
            .iter()
            .map(|s| (*s).to_owned())
            .chain(["-m", "comment", "--comment", &comment].map(str::to_owned))
            .collect()
    };
    let cidr = cidr.to_string();
    vec![
        Rule {
            table: "nat",
            chain: "POSTROUTING",
            insert: false,
            spec: spec(&["-s", &cidr, "!", "-o", bridge, "-j", "MASQUERADE"]),
        },
        Rule {
            table: "filter",
            chain: "FORWARD",
            insert: true,
            spec: spec(&["-i", bridge, "-j", "ACCEPT"]),
        },
        Rule {
            table: "filter",
            chain: "FORWARD",
            insert: true,
            spec: spec(&["-o", bridge, "-j", "ACCEPT"]),
        },
    ]
}

impl Rule {
    fn args(&self, action: &str) -> Vec<String> {
        // -w: wait for the xtables lock instead of failing when another
        // iptables (another agent, a test running in parallel) holds it.
        ["-w", "-t", self.table, action, self.chain]
            .into_iter()
            .map(str::to_owned)
            .chain(self.spec.iter().cloned())
            .collect()
    }

    async fn exists(&self) -> Result<bool, NetworkError> {
        // `-C` exits 1 when the rule is missing, 2 on a usage error.
        let out = iptables(&self.args("-C")).await?;
        match out.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(failed(&self.args("-C"), &out)),
        }
    }

    pub(crate) async fn ensure(&self) -> Result<(), NetworkError> {
        if self.exists().await? {
            return Ok(());
        }
        let args = self.args(if self.insert { "-I" } else { "-A" });
        check(&args, &iptables(&args).await?)
    }

    /// Deletes every copy of the rule.
    pub(crate) async fn remove(&self) -> Result<(), NetworkError> {
        while self.exists().await? {
            let args = self.args("-D");
            check(&args, &iptables(&args).await?)?;
        }
        Ok(())
    }
}

/// Debian installs iptables in /usr/sbin, which a daemon's PATH may lack.
const FALLBACK_IPTABLES: &str = "/usr/sbin/iptables";

async fn iptables(args: &[String]) -> Result<std::process::Output, NetworkError> {
    let output = |program| Command::new(program).args(args).kill_on_drop(true).output();
    let result = match output("iptables").await {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => output(FALLBACK_IPTABLES).await,
        other => other,
    };
    result.map_err(|source| NetworkError::IptablesSpawn {
        args: args.join(" "),
        source,
    })
}

fn check(args: &[String], out: &std::process::Output) -> Result<(), NetworkError> {
    if out.status.success() {
        Ok(())
    } else {
        Err(failed(args, out))
    }
}

fn failed(args: &[String], out: &std::process::Output) -> NetworkError {
    NetworkError::Iptables {
        args: args.join(" "),
        status: out.status,
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_the_documented_command_lines() {
        let cidr: TaskCidr = "10.131.0.0/16".parse().unwrap();
        let rules = host_rules("berth0", cidr);
        let lines: Vec<String> = rules
            .iter()
            .map(|r| r.args(if r.insert { "-I" } else { "-A" }).join(" "))
            .collect();
        assert_eq!(
            lines,
            [
                "-w -t nat -A POSTROUTING -s 10.131.0.0/16 ! -o berth0 -j MASQUERADE -m comment --comment berth:berth0",
                "-w -t filter -I FORWARD -i berth0 -j ACCEPT -m comment --comment berth:berth0",
                "-w -t filter -I FORWARD -o berth0 -j ACCEPT -m comment --comment berth:berth0",
            ]
        );
    }
}
