//! The host's iptables rules for one bridge (egress masquerade, FORWARD accepts, tagged `berth:<bridge>`) and for each task's published ports (DNAT, tagged `berth:<bridge>:<task id>`), added and removed idempotently by running the `iptables` binary.

use std::net::Ipv4Addr;

use tokio::process::Command;

use super::{NetworkError, TaskCidr};
use crate::model::Protocol;

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
        // Host clients of 127.0.0.1:<hostPort>: after the OUTPUT DNAT the
        // packet leaves through the bridge (route_localnet is on there) and
        // needs the gateway's address as its source to get an answer.
        Rule {
            table: "nat",
            chain: "POSTROUTING",
            insert: false,
            spec: spec(&["-s", LOOPBACK, "-o", bridge, "-j", "MASQUERADE"]),
        },
        // A container reaching a published port through a host address is
        // forwarded back into the bridge; without this its peer would answer
        // it directly (wrong source) unless br_netfilter happens to be loaded.
        Rule {
            table: "nat",
            chain: "POSTROUTING",
            insert: false,
            spec: spec(&[
                "-s",
                &cidr,
                "-o",
                bridge,
                "-m",
                "conntrack",
                "--ctstate",
                "DNAT",
                "-j",
                "MASQUERADE",
            ]),
        },
        // route_localnet would also let tasks on the bridge reach services
        // bound to the host's 127.0.0.1 (CVE-2020-8558): refuse new
        // connections that way (answers to the host's own, de-NATed back to
        // 127.0.0.1, are ESTABLISHED).
        Rule {
            table: "filter",
            chain: "INPUT",
            insert: true,
            spec: spec(&[
                "-i",
                bridge,
                "-d",
                LOOPBACK,
                "-m",
                "conntrack",
                "!",
                "--ctstate",
                "RELATED,ESTABLISHED",
                "-j",
                "DROP",
            ]),
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

const LOOPBACK: &str = "127.0.0.0/8";

/// The comment that marks a task's rules: `berth:<bridge>:<task id>`.
pub(crate) fn task_tag(bridge: &str, task_id: &str) -> String {
    format!("berth:{bridge}:{task_id}")
}

/// A host port forwarded to a container's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishedPort {
    pub protocol: Protocol,
    pub host_port: u16,
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
}

/// The rules publishing `ports` of one task: DNAT of traffic to any local
/// address's host port, arriving from outside (PREROUTING) or made on the
/// host itself (OUTPUT, 127.0.0.1 included).
pub(crate) fn publish_rules(bridge: &str, task_id: &str, ports: &[PublishedPort]) -> Vec<Rule> {
    let tag = task_tag(bridge, task_id);
    let mut rules = Vec::new();
    for p in ports {
        let proto = p.protocol.as_str();
        let host_port = p.host_port.to_string();
        let to = format!("{}:{}", p.container_ip, p.container_port);
        let dnat = |chain| Rule {
            table: "nat",
            chain,
            insert: false,
            spec: [
                "-p",
                proto,
                "-m",
                "addrtype",
                "--dst-type",
                "LOCAL",
                "-m",
                proto,
                "--dport",
                &host_port,
                "-m",
                "comment",
                "--comment",
                &tag,
                "-j",
                "DNAT",
                "--to-destination",
                &to,
            ]
            .map(str::to_owned)
            .to_vec(),
        };
        rules.push(dnat("PREROUTING"));
        rules.push(dnat("OUTPUT"));
    }
    rules
}

/// Task ids of the rules in `table` tagged `berth:<bridge>:<task id>`, with
/// each rule's chain and spec, from `iptables -S`.
pub(crate) async fn task_rules(
    table: &'static str,
    bridge: &str,
) -> Result<Vec<(String, Rule)>, NetworkError> {
    let args: Vec<String> = ["-w", "-t", table, "-S"].map(str::to_owned).to_vec();
    let out = iptables(&args).await?;
    check(&args, &out)?;
    let prefix = format!("berth:{bridge}:");
    Ok(parse_task_rules(
        table,
        &String::from_utf8_lossy(&out.stdout),
        &prefix,
    ))
}

fn parse_task_rules(table: &'static str, listing: &str, prefix: &str) -> Vec<(String, Rule)> {
    let mut found = Vec::new();
    for line in listing.lines() {
        // Our tags hold no spaces, so splitting on whitespace keeps them whole.
        let words: Vec<String> = line
            .split_whitespace()
            .map(|w| w.trim_matches('"').to_owned())
            .collect();
        let [a, chain, spec @ ..] = words.as_slice() else {
            continue;
        };
        if a != "-A" {
            continue;
        }
        let task = spec
            .windows(2)
            .find(|w| w[0] == "--comment")
            .and_then(|w| w[1].strip_prefix(prefix));
        let Some(task) = task.filter(|t| super::validate_task_id(t).is_ok()) else {
            continue;
        };
        let Some(chain) = ["PREROUTING", "OUTPUT", "POSTROUTING", "INPUT", "FORWARD"]
            .into_iter()
            .find(|c| c == chain)
        else {
            continue;
        };
        found.push((
            task.to_owned(),
            Rule {
                table,
                chain,
                insert: false,
                spec: spec.to_vec(),
            },
        ));
    }
    found
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
                "-w -t nat -A POSTROUTING -s 127.0.0.0/8 -o berth0 -j MASQUERADE -m comment --comment berth:berth0",
                "-w -t nat -A POSTROUTING -s 10.131.0.0/16 -o berth0 -m conntrack --ctstate DNAT -j MASQUERADE -m comment --comment berth:berth0",
                "-w -t filter -I INPUT -i berth0 -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED -j DROP -m comment --comment berth:berth0",
                "-w -t filter -I FORWARD -i berth0 -j ACCEPT -m comment --comment berth:berth0",
                "-w -t filter -I FORWARD -o berth0 -j ACCEPT -m comment --comment berth:berth0",
            ]
        );
    }

    #[test]
    fn published_ports_become_dnat_rules_tagged_with_the_task() {
        let port = PublishedPort {
            protocol: Protocol::Tcp,
            host_port: 32768,
            container_ip: Ipv4Addr::new(10, 131, 0, 2),
            container_port: 80,
        };
        let lines: Vec<String> = publish_rules("berth0", "abc", &[port])
            .iter()
            .map(|r| r.args("-A").join(" "))
            .collect();
        assert_eq!(
            lines,
            [
                "-w -t nat -A PREROUTING -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 32768 -m comment --comment berth:berth0:abc -j DNAT --to-destination 10.131.0.2:80",
                "-w -t nat -A OUTPUT -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 32768 -m comment --comment berth:berth0:abc -j DNAT --to-destination 10.131.0.2:80",
            ]
        );
    }

    #[test]
    fn task_rules_are_found_in_a_listing_by_their_tag() {
        let listing = "-P PREROUTING ACCEPT\n\
            -A PREROUTING -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 32768 -m comment --comment \"berth:berth0:abc\" -j DNAT --to-destination 10.131.0.2:80\n\
            -A OUTPUT -p udp -m comment --comment berth:berth0:def -j DNAT --to-destination 10.131.0.3:53\n\
            -A OUTPUT -p udp -m comment --comment berth:other:abc -j DNAT --to-destination 10.1.0.3:53\n\
            -A POSTROUTING -s 10.131.0.0/16 ! -o berth0 -m comment --comment berth:berth0 -j MASQUERADE\n";
        let found = parse_task_rules("nat", listing, "berth:berth0:");
        let tasks: Vec<(&str, &str)> = found.iter().map(|(t, r)| (t.as_str(), r.chain)).collect();
        assert_eq!(tasks, [("abc", "PREROUTING"), ("def", "OUTPUT")]);
        assert_eq!(found[0].1.spec[0], "-p");
        assert!(found[0].1.spec.contains(&"berth:berth0:abc".to_owned()));
    }
}
