//! What the tests look at on the host: containerd, cgroups, leftovers; and the cleanup
//! of what a crashed run left.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::Berth;

impl Berth {
    /// containerd's view of one container's task: (status, pid), e.g. ("RUNNING", 123).
    pub fn containerd_task(&self, container_id: &str) -> Result<Option<(String, u32)>> {
        let out = Command::new("ctr")
            .args([
                "--address",
                &self.containerd_sock,
                "-n",
                &self.namespace,
                "tasks",
                "ls",
            ])
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&container_id)).then(|| {
                (
                    f.get(2).unwrap_or(&"").to_string(),
                    f.get(1).and_then(|p| p.parse().ok()).unwrap_or(0),
                )
            })
        }))
    }

    /// The pids of every process in a task's container (containerd's `tasks ps`).
    pub fn container_processes(&self, task_id: &str, container: &str) -> Result<Vec<u32>> {
        let id = format!("{task_id}-{container}");
        let out = Command::new("ctr")
            .args(["--address", &self.containerd_sock, "-n", &self.namespace])
            .args(["tasks", "ps", &id])
            .output()?;
        if !out.status.success() {
            bail!(
                "ctr tasks ps {id}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect())
    }

    /// The task cgroup's memory hard limit in bytes (cgroup v1 or v2).
    pub fn task_memory_limit(&self, task_id: &str) -> Result<u64> {
        let rel = Path::new("berth").join(&self.namespace).join(task_id);
        let v1 = Path::new("/sys/fs/cgroup/memory")
            .join(&rel)
            .join("memory.limit_in_bytes");
        let v2 = Path::new("/sys/fs/cgroup").join(&rel).join("memory.max");
        let text = std::fs::read_to_string(&v1)
            .or_else(|_| std::fs::read_to_string(&v2))
            .with_context(|| {
                format!(
                    "no memory limit file for task {task_id} ({} or {})",
                    v1.display(),
                    v2.display()
                )
            })?;
        Ok(text.trim().parse()?)
    }

    /// A file of the task's cgroup: `controller` is the v1 hierarchy
    /// (`pids`), `file` the name (`pids.max`); v2 is tried too.
    pub fn task_cgroup_file(&self, task_id: &str, controller: &str, file: &str) -> Result<String> {
        let rel = Path::new("berth").join(&self.namespace).join(task_id);
        let v1 = Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(&rel)
            .join(file);
        let v2 = Path::new("/sys/fs/cgroup").join(&rel).join(file);
        std::fs::read_to_string(&v1)
            .or_else(|_| std::fs::read_to_string(&v2))
            .map(|s| s.trim().to_string())
            .with_context(|| format!("neither {} nor {}", v1.display(), v2.display()))
    }

    /// containerd containers left in this harness's namespace.
    pub fn containers(&self) -> Result<Vec<String>> {
        let out = Command::new("ctr")
            .args([
                "--address",
                &self.containerd_sock,
                "-n",
                &self.namespace,
                "containers",
                "ls",
                "-q",
            ])
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect())
    }

    /// Host resources a task may leave: netns and veths (the task's, or its
    /// bridge-mode containers'), published-port rules, cgroups, containers.
    pub fn leftovers(&self, task_id: &str) -> Result<Vec<String>> {
        let mut left = vec![];
        for entry in std::fs::read_dir("/var/run/netns")
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == format!("berth-{task_id}") || name.starts_with(&format!("berth-{task_id}-"))
            {
                left.push(format!("netns {name}"));
            }
        }
        for entry in std::fs::read_dir("/sys/class/net")?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == format!("bv{}", &task_id[..12])
                || (name.len() == 14 && name.starts_with(&format!("bc{}", &task_id[..10])))
            {
                left.push(format!("veth {name}"));
            }
        }
        let out = Command::new("iptables")
            .args(["-w", "-t", "nat", "-S"])
            .output()?;
        for rule in String::from_utf8_lossy(&out.stdout).lines() {
            if rule.contains(&format!("berth:{}:{task_id}", self.bridge)) {
                left.push(format!("iptables rule {rule}"));
            }
        }
        for entry in std::fs::read_dir("/sys/fs/cgroup")? {
            let p = entry?
                .path()
                .join("berth")
                .join(&self.namespace)
                .join(task_id);
            if p.exists() {
                left.push(format!("cgroup {}", p.display()));
            }
        }
        let unified = Path::new("/sys/fs/cgroup/berth")
            .join(&self.namespace)
            .join(task_id);
        if unified.exists() {
            left.push(format!("cgroup {}", unified.display()));
        }
        for c in self.containers()? {
            if c.starts_with(task_id) {
                left.push(format!("container {c}"));
            }
        }
        Ok(left)
    }
}

/// Removes the network namespaces and host veths of tasks an agent with data
/// dir `agent_dir` still held when it was stopped (the agent leaves running
/// tasks alone on shutdown, by design).
pub fn cleanup_task_networks(agent_dir: &Path) {
    let Ok(tasks) = std::fs::read_dir(agent_dir.join("tasks")) else {
        return;
    };
    for id in tasks
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
    {
        if id.len() >= 12 {
            let _ = Command::new("ip")
                .args(["link", "del", &format!("bv{}", &id[..12])])
                .output();
            // Bridge-mode containers' veths (the first few are enough for tests).
            for i in 0..4 {
                let _ = Command::new("ip")
                    .args(["link", "del", &format!("bc{}{i:02x}", &id[..10])])
                    .output();
            }
        }
        let endpoints =
            std::iter::once(format!("berth-{id}")).chain((0..4).map(|i| format!("berth-{id}-{i}")));
        for name in endpoints {
            let netns = Path::new("/var/run/netns").join(name);
            if netns.exists() {
                let _ = Command::new("umount").arg(&netns).output();
                let _ = std::fs::remove_file(&netns);
            }
        }
    }
}

/// Removes whatever a harness's agent may have left: containers and tasks in
/// its containerd namespace, its namespaces, bridge, iptables rules, cgroups.
pub fn cleanup_host(sock: &str, namespace: &str, bridge: &str) {
    let ctr = |args: &[&str]| {
        Command::new("ctr")
            .args(["--address", sock, "-n", namespace])
            .args(args)
            .output()
    };
    if let Ok(out) = ctr(&["containers", "ls", "-q"]) {
        for id in String::from_utf8_lossy(&out.stdout).lines() {
            let _ = ctr(&["tasks", "kill", "-a", "-s", "SIGKILL", id]);
            let _ = ctr(&["tasks", "delete", "-f", id]);
            let _ = ctr(&["containers", "delete", id]);
        }
    }
    let _ = Command::new("ip").args(["link", "del", bridge]).output();
    for (table, chain) in [
        ("nat", "POSTROUTING"),
        ("nat", "PREROUTING"),
        ("nat", "OUTPUT"),
        ("filter", "FORWARD"),
        ("filter", "INPUT"),
    ] {
        if let Ok(out) = Command::new("iptables")
            .args(["-w", "-t", table, "-S", chain])
            .output()
        {
            for rule in String::from_utf8_lossy(&out.stdout).lines() {
                if rule.contains(&format!("berth:{bridge}")) {
                    let args: Vec<String> = shell_words(rule.replacen("-A ", "-D ", 1).as_str());
                    let _ = Command::new("iptables")
                        .args(["-w", "-t", table])
                        .args(&args)
                        .output();
                }
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in rd.flatten() {
            let dir = e.path().join("berth").join(namespace);
            remove_cgroup_tree(&dir);
        }
    }
    remove_cgroup_tree(&Path::new("/sys/fs/cgroup/berth").join(namespace));
}

fn remove_cgroup_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Splits an `iptables -S` rule into arguments (it quotes comments with spaces).
fn shell_words(s: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    let mut quoted = false;
    for ch in s.chars() {
        match ch {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// GET `path` from `ip:port` over plain HTTP/1.0; the body.
pub fn http_get(ip: &str, port: u16, path: &str) -> Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(
        &format!("{ip}:{port}").parse()?,
        Duration::from_secs(2),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {ip}\r\n\r\n")?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let (head, body) = buf
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("no HTTP response: {buf}"))?;
    if !head.starts_with("HTTP/1.") || !head.contains(" 200 ") {
        bail!("HTTP error: {head}");
    }
    Ok(body.to_string())
}
