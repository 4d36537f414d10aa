//! Privileged test of the task network module against the real kernel: namespaces, veths, a bridge and iptables rules. Needs root, `ip`, `iptables` and `nsenter`; fails (never skips) without them.
//!
//! Each test has its own bridge (`bt<pid>x<n>`), subnet (`10.<250+n>.<pid % 256>.0/24`)
//! and netns dir (a tempdir), and a `Drop` guard that removes all of them
//! with plain `ip`/`iptables` commands, so a failed run leaves nothing behind.
//! Traffic goes only between the host and namespaces made here.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth_agent::model::Protocol;
use berth_agent::network::{
    container_endpoint, host_veth_name, LinuxNetwork, NetworkConfig, NetworkError, NetworkSetup,
    PublishedPort, TaskCidr,
};
use nix::mount::{umount2, MntFlags};
use nix::sched::{setns, CloneFlags};

const TIMEOUT: Duration = Duration::from_secs(5);

fn require_prerequisites() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the network tests need root (CI runs them as root)"
    );
    for (tool, flag) in [
        ("ip", "-V"),
        ("iptables", "--version"),
        ("nsenter", "--version"),
    ] {
        let ok = Command::new(tool)
            .arg(flag)
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(ok, "the network tests need `{tool}` on PATH");
    }
}

fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {cmd} {args:?}: {e}"))
}

fn stdout_of(cmd: &str, args: &[&str]) -> String {
    let out = run(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Output of `cmd args` run inside the namespace at `netns`.
fn in_netns_cmd(netns: &Path, cmd: &[&str]) -> String {
    let net = format!("--net={}", netns.display());
    let args: Vec<&str> = [net.as_str()]
        .into_iter()
        .chain(cmd.iter().copied())
        .collect();
    stdout_of("nsenter", &args)
}

/// Runs `f` on a thread that has entered the namespace at `netns`. Sockets
/// made there stay in that namespace after the thread ends.
fn in_netns<T: Send + 'static>(netns: &Path, f: impl FnOnce() -> T + Send + 'static) -> T {
    let file = File::open(netns).expect("open netns file");
    std::thread::spawn(move || {
        setns(&file, CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .expect("netns thread panicked")
}

/// Accepts one connection on `listener`, sends a byte, and checks that the
/// client made by `connect` reads it.
fn assert_reaches(
    listener: TcpListener,
    connect: impl FnOnce(SocketAddr) -> std::io::Result<TcpStream>,
) {
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.write_all(b"B").unwrap();
    });
    let mut client = connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    client.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut byte = [0u8; 1];
    client
        .read_exact(&mut byte)
        .unwrap_or_else(|e| panic!("reading from {addr}: {e}"));
    assert_eq!(&byte, b"B");
    server.join().unwrap();
}

/// One test's bridge, subnet and netns dir, removed on drop.
struct Fixture {
    net: LinuxNetwork,
    n: u8,
    dir: tempfile::TempDir,
    tasks: Mutex<Vec<String>>,
}

impl Fixture {
    fn new(n: u8) -> Self {
        require_prerequisites();
        let pid = std::process::id();
        let bridge = format!("bt{}x{n}", pid % 100_000);
        #[allow(clippy::cast_possible_truncation)]
        let cidr = TaskCidr::new(Ipv4Addr::new(10, 250 + n, (pid % 256) as u8, 0), 24).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = NetworkConfig {
            netns_dir: dir.path().to_owned(),
            // Leave the host-wide sysctl alone; nothing here leaves the host.
            enable_ip_forward: false,
            ..NetworkConfig::new(bridge, cidr)
        };
        Self {
            net: LinuxNetwork::new(config).unwrap(),
            n,
            dir,
            tasks: Mutex::new(Vec::new()),
        }
    }

    fn bridge(&self) -> &str {
        &self.net.config().bridge
    }

    fn cidr(&self) -> TaskCidr {
        self.net.config().cidr
    }

    /// A task id unique to this process, test and `k`, also in its first
    /// 12 characters (which name the host veth).
    fn task_id(&self, k: u8) -> String {
        let id = format!(
            "{:08x}{:02x}{k:02x}{:020x}",
            std::process::id(),
            self.n,
            0xabc
        );
        self.tasks.lock().unwrap().push(id.clone());
        id
    }

    fn netns_path(&self, task_id: &str) -> PathBuf {
        self.dir.path().join(format!("berth-{task_id}"))
    }

    /// Rules tagged with this fixture's bridge (`berth:<bridge>`, or
    /// `berth:<bridge>:<task id>` for published ports), as `iptables -S` prints them.
    fn tagged_rules(&self, table: &str) -> Vec<String> {
        let tag = format!("berth:{}", self.bridge());
        let task_tag = format!("{tag}:");
        stdout_of("iptables", &["-w", "-t", table, "-S"])
            .lines()
            .filter(|l| {
                l.split_whitespace().any(|w| {
                    let w = w.trim_matches('"');
                    w == tag || w.starts_with(&task_tag)
                })
            })
            .map(str::to_owned)
            .collect()
    }

    /// A port nothing on the host listens on now (the kernel's pick).
    fn unused_port() -> u16 {
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn link_exists(name: &str) -> bool {
        run("ip", &["link", "show", "dev", name]).status.success()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for id in self
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            for endpoint in [
                id.clone(),
                container_endpoint(id, 0),
                container_endpoint(id, 1),
            ] {
                let _ = run("ip", &["link", "del", &host_veth_name(&endpoint)]);
                let path = self.netns_path(&endpoint);
                let _ = umount2(&path, MntFlags::MNT_DETACH);
                let _ = std::fs::remove_file(&path);
            }
        }
        for table in ["nat", "filter"] {
            for rule in self.tagged_rules(table) {
                let mut args = vec!["-w", "-t", table];
                args.extend(rule.split_whitespace().map(|w| w.trim_matches('"')));
                args[3] = "-D";
                let _ = run("iptables", &args);
            }
        }
        let _ = run("ip", &["link", "del", self.bridge()]);
        // The library made the dir a (shared) mount point of its own.
        let _ = umount2(self.dir.path(), MntFlags::MNT_DETACH);
    }
}

#[tokio::test]
async fn task_network_lifecycle() {
    let fx = Fixture::new(1);
    let cidr = fx.cidr();
    let gateway = cidr.gateway();

    fx.net.ensure_host().await.unwrap();
    fx.net
        .ensure_host()
        .await
        .expect("ensure_host is idempotent");
    let bridge_addr = stdout_of("ip", &["-4", "addr", "show", "dev", fx.bridge()]);
    assert!(
        bridge_addr.contains(&format!("inet {gateway}/24")),
        "{bridge_addr}"
    );
    assert!(
        bridge_addr.contains("state UP") || bridge_addr.contains(",UP"),
        "{bridge_addr}"
    );
    let nat = fx.tagged_rules("nat");
    assert_eq!(
        nat.len(),
        3,
        "egress, loopback and hairpin MASQUERADE rules: {nat:?}"
    );
    assert!(
        nat[0].contains(&format!("-s {cidr}")) && nat[0].contains("MASQUERADE"),
        "{nat:?}"
    );
    assert_eq!(
        fx.tagged_rules("filter").len(),
        3,
        "two FORWARD accepts and the loopback guard"
    );
    let localnet = format!("/proc/sys/net/ipv4/conf/{}/route_localnet", fx.bridge());
    assert_eq!(std::fs::read_to_string(&localnet).unwrap().trim(), "1");

    let id = fx.task_id(1);
    let ip = cidr.nth_host(2).unwrap();
    let started = Instant::now();
    let task = fx.net.setup_task(&id, ip).await.unwrap();
    println!("setup_task took {:?}", started.elapsed());
    assert_eq!(task.netns_path, fx.netns_path(&id));
    assert_eq!(
        (task.ipv4, task.prefix_len, task.gateway),
        (ip, 24, gateway)
    );
    assert_eq!(task.host_veth, host_veth_name(&id));
    assert_eq!(task.mac.len(), 17, "{}", task.mac);

    let addr = in_netns_cmd(
        &task.netns_path,
        &["ip", "-4", "addr", "show", "dev", "eth0"],
    );
    assert!(addr.contains(&format!("inet {ip}/24")), "{addr}");
    let link = in_netns_cmd(&task.netns_path, &["ip", "link", "show", "dev", "eth0"]);
    assert!(link.contains(&task.mac), "{link}");
    assert!(link.contains("mtu 1500"), "{link}");
    let route = in_netns_cmd(&task.netns_path, &["ip", "-4", "route", "show", "default"]);
    assert!(
        route.contains(&format!("default via {gateway} dev eth0")),
        "{route}"
    );
    let lo = in_netns_cmd(&task.netns_path, &["ip", "link", "show", "dev", "lo"]);
    assert!(lo.contains(",UP"), "lo is up: {lo}");
    let host_link = stdout_of("ip", &["link", "show", "dev", &task.host_veth]);
    assert!(
        host_link.contains(&format!("master {}", fx.bridge())),
        "{host_link}"
    );

    // Host to a listener inside the task's namespace.
    let listener = in_netns(&task.netns_path, move || {
        TcpListener::bind((ip, 8080)).unwrap()
    });
    assert_reaches(listener, |addr| TcpStream::connect_timeout(&addr, TIMEOUT));
    // The task to a listener on the host's gateway address.
    let listener = TcpListener::bind((gateway, 0)).unwrap();
    let netns = task.netns_path.clone();
    assert_reaches(listener, move |addr| {
        in_netns(&netns, move || TcpStream::connect_timeout(&addr, TIMEOUT))
    });

    assert_eq!(
        fx.net.list_task_netns().await.unwrap(),
        std::slice::from_ref(&id)
    );

    let started = Instant::now();
    fx.net.teardown_task(&id).await.unwrap();
    println!("teardown_task took {:?}", started.elapsed());
    assert!(!Fixture::link_exists(&task.host_veth), "host veth is gone");
    assert!(!task.netns_path.exists(), "netns file is gone");
    fx.net
        .teardown_task(&id)
        .await
        .expect("teardown is idempotent");
    assert!(fx.net.list_task_netns().await.unwrap().is_empty());

    fx.net.remove_host().await.unwrap();
    assert!(!Fixture::link_exists(fx.bridge()), "bridge is gone");
    assert!(fx.tagged_rules("nat").is_empty() && fx.tagged_rules("filter").is_empty());
    fx.net
        .remove_host()
        .await
        .expect("remove_host is idempotent");
}

#[tokio::test]
async fn tasks_on_one_bridge_reach_each_other() {
    let fx = Fixture::new(2);
    fx.net.ensure_host().await.unwrap();
    let (task_a, task_b) = (fx.task_id(1), fx.task_id(2));
    let addr_a = fx.cidr().nth_host(2).unwrap();
    let addr_b = fx.cidr().nth_host(3).unwrap();
    // Set up side by side, as the agent does for tasks starting together.
    let (a, b) = tokio::join!(
        fx.net.setup_task(&task_a, addr_a),
        fx.net.setup_task(&task_b, addr_b)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.mac, b.mac);

    for (from, to, to_ip) in [(&a, &b, addr_b), (&b, &a, addr_a)] {
        let listener = in_netns(&to.netns_path, move || {
            TcpListener::bind((to_ip, 8080)).unwrap()
        });
        let netns = from.netns_path.clone();
        assert_reaches(listener, move |addr| {
            in_netns(&netns, move || TcpStream::connect_timeout(&addr, TIMEOUT))
        });
    }

    let mut listed = fx.net.list_task_netns().await.unwrap();
    listed.sort();
    let mut expected = vec![task_a.clone(), task_b.clone()];
    expected.sort();
    assert_eq!(listed, expected);

    fx.net.teardown_task(&task_a).await.unwrap();
    fx.net.teardown_task(&task_b).await.unwrap();
    assert!(fx.net.list_task_netns().await.unwrap().is_empty());
}

#[tokio::test]
async fn bad_input_is_rejected_and_leftovers_are_replaced() {
    let fx = Fixture::new(3);
    let id = fx.task_id(1);
    let ip = fx.cidr().nth_host(2).unwrap();

    // No bridge yet: the error says so and nothing is left behind.
    let err = fx.net.setup_task(&id, ip).await.unwrap_err();
    assert!(matches!(err, NetworkError::BridgeMissing { .. }), "{err}");
    assert!(!fx.netns_path(&id).exists(), "failed setup leaves no netns");
    assert!(!Fixture::link_exists(&host_veth_name(&id)));

    fx.net.ensure_host().await.unwrap();
    for bad_ip in [
        fx.cidr().gateway(),
        fx.cidr().network,
        fx.cidr().broadcast(),
        Ipv4Addr::new(192, 0, 2, 77),
    ] {
        let err = fx.net.setup_task(&id, bad_ip).await.unwrap_err();
        assert!(
            matches!(err, NetworkError::AddressNotInCidr { .. }),
            "{bad_ip}: {err}"
        );
    }
    let err = fx.net.setup_task("../../etc", ip).await.unwrap_err();
    assert!(matches!(err, NetworkError::InvalidTaskId { .. }), "{err}");

    // A second setup of the same task (an agent restarted mid-setup)
    // replaces the first and still works.
    fx.net.setup_task(&id, ip).await.unwrap();
    let started = Instant::now();
    let task = fx.net.setup_task(&id, ip).await.unwrap();
    println!("setup_task over leftovers took {:?}", started.elapsed());
    let listener = in_netns(&task.netns_path, move || {
        TcpListener::bind((ip, 8080)).unwrap()
    });
    assert_reaches(listener, |addr| TcpStream::connect_timeout(&addr, TIMEOUT));

    fx.net.teardown_task(&id).await.unwrap();
    assert!(!task.netns_path.exists());
}

/// Connects to `addr` (from the host) and checks the listener on the other
/// side of the published port answers.
fn assert_published(listener: TcpListener, addr: SocketAddr) {
    assert_reaches(listener, move |_| {
        TcpStream::connect_timeout(&addr, TIMEOUT)
    });
}

#[tokio::test]
async fn bridge_containers_have_own_namespaces_and_published_ports() {
    let fx = Fixture::new(4);
    fx.net.ensure_host().await.unwrap();
    let task = fx.task_id(1);
    let (ep_a, ep_b) = (container_endpoint(&task, 0), container_endpoint(&task, 1));
    let (ip_a, ip_b) = (
        fx.cidr().nth_host(2).unwrap(),
        fx.cidr().nth_host(3).unwrap(),
    );
    let a = fx.net.setup_task(&ep_a, ip_a).await.unwrap();
    let b = fx.net.setup_task(&ep_b, ip_b).await.unwrap();
    assert_eq!(a.netns_path, fx.netns_path(&ep_a));
    assert_ne!(a.host_veth, b.host_veth);
    assert!(a.host_veth.starts_with("bc"), "{}", a.host_veth);
    assert!(fx.net.owns_endpoint(&ep_a).await.unwrap());
    assert!(!fx
        .net
        .owns_endpoint(&container_endpoint(&task, 2))
        .await
        .unwrap());

    // Container to container over the bridge.
    let listener = in_netns(&b.netns_path, move || {
        TcpListener::bind((ip_b, 8080)).unwrap()
    });
    let netns = a.netns_path.clone();
    assert_reaches(listener, move |addr| {
        in_netns(&netns, move || TcpStream::connect_timeout(&addr, TIMEOUT))
    });

    // Publish a's port 80 on a host port; reach it through 127.0.0.1 and the
    // gateway's (a local) address, from the host.
    let host_port = Fixture::unused_port();
    let port = PublishedPort {
        protocol: Protocol::Tcp,
        host_port,
        container_ip: ip_a,
        container_port: 80,
    };
    fx.net.publish(&task, &[port]).await.unwrap();
    fx.net
        .publish(&task, &[port])
        .await
        .expect("publish is idempotent");
    let nat = fx.tagged_rules("nat");
    let task_rules: Vec<&String> = nat.iter().filter(|r| r.contains(&task)).collect();
    assert_eq!(task_rules.len(), 2, "PREROUTING and OUTPUT: {nat:?}");
    assert_eq!(
        fx.net.list_published().await.unwrap(),
        std::slice::from_ref(&task)
    );
    for host_addr in [Ipv4Addr::LOCALHOST, fx.cidr().gateway()] {
        println!("host to {host_addr}:{host_port}");
        let listener = in_netns(&a.netns_path, move || {
            TcpListener::bind((ip_a, 80)).unwrap()
        });
        assert_published(listener, SocketAddr::from((host_addr, host_port)));
    }
    // Another container reaches it through the host's address too (hairpin
    // over the bridge is the same path for a's own namespace).
    let listener = in_netns(&a.netns_path, move || {
        TcpListener::bind((ip_a, 80)).unwrap()
    });
    let netns = b.netns_path.clone();
    let gateway = fx.cidr().gateway();
    println!("container b to {gateway}:{host_port}");
    assert_reaches(listener, move |_| {
        in_netns(&netns, move || {
            TcpStream::connect_timeout(&SocketAddr::from((gateway, host_port)), TIMEOUT)
        })
    });

    // A port something on the host listens on is reported as not free.
    let busy = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    assert!(!fx.net.host_port_free(Protocol::Tcp, busy_port));
    drop(busy);
    assert!(fx.net.host_port_free(Protocol::Tcp, Fixture::unused_port()));

    fx.net.unpublish(&task).await.unwrap();
    assert!(
        fx.tagged_rules("nat").iter().all(|r| !r.contains(&task)),
        "unpublish removes every rule of the task"
    );
    assert!(fx.net.list_published().await.unwrap().is_empty());
    fx.net
        .unpublish(&task)
        .await
        .expect("unpublish is idempotent");
    let refused =
        TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, host_port)), TIMEOUT);
    assert!(
        refused.is_err(),
        "nothing answers on the host port any more"
    );

    for ep in [&ep_a, &ep_b] {
        fx.net.teardown_task(ep).await.unwrap();
    }
    assert!(fx.net.list_task_netns().await.unwrap().is_empty());
    assert!(!Fixture::link_exists(&a.host_veth) && !Fixture::link_exists(&b.host_veth));
}
