//! Registry and handler tests over fake task data: no network, cgroupfs in a tempdir.

use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::path::Path;

use serde_json::Value;

use super::*;
use crate::model::{
    ContainerDef, ContainerReport, ContainerStatus, DesiredStatus, HealthStatus, NetworkMode,
    TaskReport, TaskSpec, TaskStatus,
};
use crate::network::TaskCidr;

const TASK_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const OTHER_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 3);

fn registry() -> MetadataRegistry {
    let cidr = TaskCidr::new(Ipv4Addr::new(10, 9, 0, 0), 24).unwrap();
    MetadataRegistry::new(
        SocketAddrV4::new(cidr.gateway(), DEFAULT_PORT),
        cidr,
        "eu-west-1",
    )
}

fn def(name: &str) -> ContainerDef {
    ContainerDef {
        name: name.into(),
        image: "registry.local/busybox:1".into(),
        command: vec![],
        entry_point: vec![],
        environment: vec![],
        working_directory: None,
        user: None,
        cpu: 128,
        memory_mib: Some(32),
        memory_reservation_mib: None,
        essential: true,
        stop_timeout: None,
        depends_on: vec![],
        health_check: None,
        start_timeout: None,
        options: crate::model::ContainerOptions::default(),
        port_mappings: vec![],
    }
}

fn spec(id: &str) -> TaskSpec {
    TaskSpec {
        arn: format!("arn:aws:ecs:eu-west-1:000000000000:task/default/{id}"),
        id: id.into(),
        family: "web".into(),
        revision: 3,
        cluster_arn: "arn:aws:ecs:eu-west-1:000000000000:cluster/default".into(),
        desired_status: DesiredStatus::Running,
        network_mode: NetworkMode::Awsvpc,
        cpu: Some(512),
        memory_mib: Some(256),
        containers: vec![def("app"), def("side")],
        volumes: vec![],
        secrets_error: None,
    }
}

fn running_report(spec: &TaskSpec, ip: Ipv4Addr) -> TaskReport {
    TaskReport {
        task_arn: spec.arn.clone(),
        last_status: TaskStatus::Running,
        containers: spec
            .containers
            .iter()
            .map(|c| ContainerReport {
                name: c.name.clone(),
                last_status: ContainerStatus::Running,
                image_digest: Some("sha256:abc".into()),
                health_status: (c.name == "app").then_some(HealthStatus::Healthy),
                ..ContainerReport::default()
            })
            .collect(),
        private_ipv4: Some(ip.to_string()),
        mac_address: Some("02:00:0a:09:00:02".into()),
        pull_started_at_ms: Some(1_000),
        pull_stopped_at_ms: Some(2_000),
        ..TaskReport::default()
    }
}

/// A registered, running task; returns the token of `app`.
fn running(reg: &MetadataRegistry, spec: &TaskSpec, ip: Ipv4Addr) -> String {
    let pending = TaskReport::default();
    let uri = reg.container_uri(spec, &pending, "app", "berth/ns/t1", 5_000);
    reg.container_uri(spec, &pending, "side", "berth/ns/t1", 5_000);
    reg.sync(spec, &running_report(spec, ip), 6_000);
    uri.rsplit('/').next().unwrap().to_string()
}

fn get(reg: &MetadataRegistry, root: &Path, token: &str, r: Resource, peer: Ipv4Addr) -> Reply {
    handle(reg, root, token, r, IpAddr::V4(peer), 7_000)
}

#[test]
fn uri_is_on_the_gateway_with_an_unguessable_stable_token() {
    let reg = registry();
    let s = spec("t1");
    let uri = reg.container_uri(&s, &TaskReport::default(), "app", "berth/ns/t1", 0);
    let token = uri.strip_prefix("http://10.9.0.1:51679/v4/").unwrap();
    assert_eq!(token.len(), 32);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        reg.container_uri(&s, &TaskReport::default(), "app", "berth/ns/t1", 0),
        uri
    );
    assert_ne!(
        reg.container_uri(&s, &TaskReport::default(), "side", "berth/ns/t1", 0),
        uri
    );
    assert_ne!(
        registry().container_uri(&s, &TaskReport::default(), "app", "berth/ns/t1", 0),
        uri,
        "tokens are random, not derived"
    );
}

#[test]
fn task_json_has_ecs_field_names() {
    let reg = registry();
    let s = spec("t1");
    let token = running(&reg, &s, TASK_IP);
    let r = get(
        &reg,
        Path::new("/nonexistent"),
        &token,
        Resource::Task,
        TASK_IP,
    );
    assert_eq!(r.status, 200);
    let t = &r.body;
    assert_eq!(t["TaskARN"], s.arn.as_str());
    assert_eq!(t["Cluster"], s.cluster_arn.as_str());
    assert_eq!(t["Family"], "web");
    assert_eq!(t["Revision"], "3");
    assert_eq!(t["DesiredStatus"], "RUNNING");
    assert_eq!(t["KnownStatus"], "RUNNING");
    assert_eq!(t["Limits"]["CPU"], 0.5);
    assert_eq!(t["Limits"]["Memory"], 256);
    assert_eq!(t["PullStartedAt"], "1970-01-01T00:00:01.000Z");
    assert_eq!(t["PullStoppedAt"], "1970-01-01T00:00:02.000Z");
    assert_eq!(t["AvailabilityZone"], "eu-west-1a");
    assert_eq!(t["LaunchType"], "EC2");
    let names: Vec<&str> = t["Containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app", "side"]);
}

#[test]
fn container_json_has_ecs_field_names() {
    let reg = registry();
    let s = spec("t1");
    let token = running(&reg, &s, TASK_IP);
    let c = get(
        &reg,
        Path::new("/nonexistent"),
        &token,
        Resource::Container,
        TASK_IP,
    )
    .body;
    assert_eq!(c["DockerId"], "t1-app");
    assert_eq!(c["Name"], "app");
    assert_eq!(c["DockerName"], "t1-app");
    assert_eq!(c["Image"], "registry.local/busybox:1");
    assert_eq!(c["ImageID"], "sha256:abc");
    assert_eq!(c["Labels"]["com.amazonaws.ecs.task-arn"], s.arn.as_str());
    assert_eq!(c["DesiredStatus"], "RUNNING");
    assert_eq!(c["KnownStatus"], "RUNNING");
    assert_eq!(c["Limits"]["CPU"], 128.0);
    assert_eq!(c["Limits"]["Memory"], 32);
    assert_eq!(c["CreatedAt"], "1970-01-01T00:00:05.000Z");
    assert_eq!(c["StartedAt"], "1970-01-01T00:00:06.000Z");
    assert_eq!(c.get("FinishedAt"), None);
    assert_eq!(c.get("ExitCode"), None);
    assert_eq!(c["Type"], "NORMAL");
    assert_eq!(
        c["ContainerARN"],
        "arn:aws:ecs:eu-west-1:000000000000:container/default/t1/app"
    );
    assert_eq!(c["Health"]["status"], "HEALTHY");
    assert_eq!(c["Health"]["statusSince"], "1970-01-01T00:00:06.000Z");
    let n = &c["Networks"][0];
    assert_eq!(n["NetworkMode"], "awsvpc");
    assert_eq!(n["IPv4Addresses"], serde_json::json!(["10.9.0.2"]));
    assert_eq!(n["AttachmentIndex"], 0);
    assert_eq!(n["MACAddress"], "02:00:0a:09:00:02");
    assert_eq!(n["IPv4SubnetCIDRBlock"], "10.9.0.0/24");
    assert_eq!(
        n["PrivateDNSName"],
        "ip-10-9-0-2.eu-west-1.compute.internal"
    );
    assert_eq!(n["SubnetGatewayIpv4Address"], "10.9.0.1/24");
}

#[test]
fn exit_is_recorded_with_its_time_and_code() {
    let reg = registry();
    let s = spec("t1");
    let token = running(&reg, &s, TASK_IP);
    let mut r = running_report(&s, TASK_IP);
    r.containers[0].last_status = ContainerStatus::Stopped;
    r.containers[0].exit_code = Some(3);
    reg.sync(&s, &r, 9_000);
    let c = get(&reg, Path::new("/x"), &token, Resource::Container, TASK_IP).body;
    assert_eq!(c["KnownStatus"], "STOPPED");
    assert_eq!(c["ExitCode"], 3);
    assert_eq!(c["FinishedAt"], "1970-01-01T00:00:09.000Z");
    assert_eq!(c["StartedAt"], "1970-01-01T00:00:06.000Z");
}

#[test]
fn only_the_tokens_own_task_may_read() {
    let reg = registry();
    let token = running(&reg, &spec("t1"), TASK_IP);
    let other_token = running(&reg, &spec("t2"), OTHER_IP);
    let root = Path::new("/x");
    assert_eq!(get(&reg, root, &token, Resource::Task, TASK_IP).status, 200);
    // Another task holding a leaked token, and the host itself.
    for peer in [OTHER_IP, Ipv4Addr::new(10, 9, 0, 1), Ipv4Addr::LOCALHOST] {
        for r in [
            Resource::Container,
            Resource::Task,
            Resource::ContainerStats,
            Resource::TaskStats,
        ] {
            assert_eq!(get(&reg, root, &token, r, peer).status, 404, "{peer} {r:?}");
        }
    }
    assert_eq!(
        get(&reg, root, &other_token, Resource::Task, OTHER_IP).status,
        200
    );
    assert_eq!(
        get(
            &reg,
            root,
            "00".repeat(16).as_str(),
            Resource::Task,
            TASK_IP
        )
        .status,
        404
    );
    let mapped = IpAddr::V6(TASK_IP.to_ipv6_mapped());
    assert_eq!(
        handle(&reg, root, &token, Resource::Task, mapped, 0).status,
        200
    );
}

#[test]
fn a_task_without_an_address_serves_nobody() {
    let reg = registry();
    let s = spec("t1");
    let uri = reg.container_uri(&s, &TaskReport::default(), "app", "berth/ns/t1", 0);
    let token = uri.rsplit('/').next().unwrap();
    for peer in [TASK_IP, Ipv4Addr::UNSPECIFIED] {
        assert_eq!(
            get(&reg, Path::new("/x"), token, Resource::Task, peer).status,
            404
        );
    }
}

#[test]
fn removal_revokes_tokens_and_later_reports_do_not_revive_the_task() {
    let reg = registry();
    let s = spec("t1");
    let token = running(&reg, &s, TASK_IP);
    reg.remove_task("t1");
    reg.sync(&s, &running_report(&s, TASK_IP), 8_000);
    assert_eq!(
        get(&reg, Path::new("/x"), &token, Resource::Task, TASK_IP).status,
        404
    );
}

#[test]
fn stats_come_from_the_containers_cgroup() {
    let reg = registry();
    let s = spec("t1");
    let token = running(&reg, &s, TASK_IP);
    let root = tempfile::tempdir().unwrap();
    let app = root.path().join("memory/berth/ns/t1/app");
    std::fs::create_dir_all(&app).unwrap();
    for (f, v) in [
        ("memory.usage_in_bytes", "100"),
        ("memory.max_usage_in_bytes", "200"),
        ("memory.limit_in_bytes", "33554432"),
    ] {
        std::fs::write(app.join(f), v).unwrap();
    }
    let one = get(&reg, root.path(), &token, Resource::ContainerStats, TASK_IP).body;
    assert_eq!(one["memory_stats"]["limit"], 33_554_432);
    assert_eq!(one["memory_stats"]["usage"], 100);
    assert_eq!(one["id"], "t1-app");
    assert_eq!(one["read"], "1970-01-01T00:00:07.000Z");
    let all = get(&reg, root.path(), &token, Resource::TaskStats, TASK_IP).body;
    assert_eq!(all["t1-app"]["memory_stats"]["max_usage"], 200);
    // `side` has no cgroup (gone): null, as for a stopped container.
    assert_eq!(all["t1-side"], Value::Null);
}

#[test]
fn the_address_is_known_before_the_container_starts() {
    // A container may ask the moment it starts, before the next report.
    let reg = registry();
    let s = spec("t1");
    let mut r = running_report(&s, TASK_IP);
    r.last_status = TaskStatus::Pending;
    let uri = reg.container_uri(&s, &r, "app", "berth/ns/t1", 0);
    let token = uri.rsplit('/').next().unwrap();
    assert_eq!(
        get(&reg, Path::new("/x"), token, Resource::Task, TASK_IP).status,
        200
    );
}

#[test]
fn bridge_containers_read_from_their_own_address_and_see_it_under_networks() {
    let reg = registry();
    let mut s = spec("t1");
    s.network_mode = NetworkMode::Bridge;
    let uri = reg.container_uri(&s, &TaskReport::default(), "app", "berth/ns/t1", 0);
    let side_uri = reg.container_uri(&s, &TaskReport::default(), "side", "berth/ns/t1", 0);
    let (token, side) = (
        uri.rsplit('/').next().unwrap(),
        side_uri.rsplit('/').next().unwrap(),
    );
    let root = Path::new("/x");
    // Not before its address is known.
    assert_eq!(
        get(&reg, root, token, Resource::Container, TASK_IP).status,
        404
    );
    reg.set_bridge_address("t1", "app", TASK_IP);
    reg.set_bridge_address("t1", "side", OTHER_IP);
    let c = get(&reg, root, token, Resource::Container, TASK_IP);
    assert_eq!(c.status, 200);
    assert_eq!(
        c.body["Networks"],
        serde_json::json!([{"NetworkMode": "bridge", "IPv4Addresses": ["10.9.0.2"]}])
    );
    // Each container's token answers only its own address.
    assert_eq!(get(&reg, root, token, Resource::Task, OTHER_IP).status, 404);
    assert_eq!(get(&reg, root, side, Resource::Task, OTHER_IP).status, 200);
    assert_eq!(get(&reg, root, side, Resource::Task, TASK_IP).status, 404);
}

#[test]
fn host_mode_containers_call_from_the_gateway_and_none_mode_from_nowhere() {
    let reg = registry();
    let gateway = Ipv4Addr::new(10, 9, 0, 1);
    for (mode, allowed) in [
        (NetworkMode::Host, Some(gateway)),
        (NetworkMode::None, None),
    ] {
        let mut s = spec("t1");
        s.network_mode = mode;
        let uri = reg.container_uri(&s, &TaskReport::default(), "app", "berth/ns/t1", 0);
        let token = uri.rsplit('/').next().unwrap();
        for peer in [gateway, TASK_IP, Ipv4Addr::LOCALHOST] {
            let status = get(&reg, Path::new("/x"), token, Resource::Container, peer).status;
            assert_eq!(status == 200, Some(peer) == allowed, "{mode:?} {peer}");
        }
        reg.remove_task("t1");
    }
}
