//! Load balancing end to end: the aws CLI configures a load balancer through Berth's
//! ELBv2 API, an ECS service registers its awsvpc tasks in the target group, the health
//! checker finds them healthy, and the embedded proxy spreads requests over them, with
//! rules, ALB's forwarding headers, draining on scale-in and ALB's 503 with no target.

use std::io::{Read, Write};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use berth_e2e::{free_port, poll, Berth};
use berth_ecs::TaskStatus;
use serde_json::{json, Value};

fn check(b: &Berth, r: Result<()>) -> Result<()> {
    if r.is_err() {
        b.dump_logs();
    }
    r
}

/// One HTTP/1.1 request through the load balancer: the status line's code and the body.
fn get(port: u16, path: &str, host: &str) -> Result<(u16, String)> {
    let mut s = std::net::TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse()?,
        Duration::from_secs(2),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: 203.0.113.7\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let (head, body) = buf
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("no HTTP response: {buf}"))?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("no status: {head}"))?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok((
        code,
        if chunked {
            dechunk(body)?
        } else {
            body.to_string()
        },
    ))
}

/// A chunked body's content.
fn dechunk(mut body: &str) -> Result<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").context("chunk size line")?;
        let size = usize::from_str_radix(size.trim(), 16).context("chunk size")?;
        if size == 0 {
            return Ok(out);
        }
        out.push_str(rest.get(..size).context("short chunk")?);
        body = rest.get(size + 2..).context("chunk end")?;
    }
}

/// A web task: each answers `/id` with an id of its own, `/health` with ok (until
/// `/cgi-bin/sicken` removes it), and `/cgi-bin/headers` with the forwarding headers it
/// got.
fn web(b: &Berth) -> Value {
    let script = concat!(
        "mkdir -p /tmp/w/cgi-bin && cat /proc/sys/kernel/random/uuid > /tmp/w/id && echo ok > /tmp/w/health && ",
        "printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho \"xff=$HTTP_X_FORWARDED_FOR proto=$HTTP_X_FORWARDED_PROTO port=$HTTP_X_FORWARDED_PORT\"\\n' > /tmp/w/cgi-bin/headers && ",
        "printf '#!/bin/sh\\nrm -f /tmp/w/health\\necho Content-Type: text/plain\\necho\\necho sick\\n' > /tmp/w/cgi-bin/sicken && ",
        "chmod +x /tmp/w/cgi-bin/headers /tmp/w/cgi-bin/sicken && exec httpd -f -p 80 -h /tmp/w"
    );
    json!({
        "family": "lbweb",
        "networkMode": "awsvpc",
        "containerDefinitions": [{
            "name": "web", "image": b.demo_image, "memory": 32, "stopTimeout": 2,
            "entryPoint": ["/bin/sh", "-c"], "command": [script],
            "portMappings": [{"containerPort": 80}]
        }]
    })
}

/// The target group's targets and their states.
fn targets(b: &Berth, tg: &str) -> Result<Vec<(String, String)>> {
    let h = b.aws(&["elbv2", "describe-target-health", "--target-group-arn", tg])?;
    Ok(h["TargetHealthDescriptions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["Target"]["Id"].as_str().unwrap_or_default().to_string(),
                d["TargetHealth"]["State"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect())
}

fn task_ips(b: &Berth, service: &str) -> Result<Vec<String>> {
    let mut ips: Vec<String> = b
        .service_tasks(service)?
        .iter()
        .filter(|t| t["lastStatus"] == "RUNNING" && t["desiredStatus"] == "RUNNING")
        .filter_map(|t| {
            t["attachments"][0]["details"]
                .as_array()?
                .iter()
                .find(|d| d["name"] == "privateIPv4Address")?["value"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    ips.sort();
    Ok(ips)
}

#[test]
fn a_service_behind_a_load_balancer_gets_its_traffic_spread_routed_and_drained() -> Result<()> {
    let b = Berth::start()?;
    let r = behind_a_load_balancer(&b);
    check(&b, r)
}

#[allow(clippy::too_many_lines)] // one scenario, step by step
fn behind_a_load_balancer(b: &Berth) -> Result<()> {
    let port = free_port();
    let tg = b.aws(&[
        "elbv2",
        "create-target-group",
        "--name",
        "web",
        "--protocol",
        "HTTP",
        "--port",
        "80",
        "--vpc-id",
        "vpc-0123",
        "--target-type",
        "ip",
        "--health-check-path",
        "/health",
        "--health-check-interval-seconds",
        "5",
        "--health-check-timeout-seconds",
        "2",
        "--healthy-threshold-count",
        "2",
        "--unhealthy-threshold-count",
        "2",
    ])?["TargetGroups"][0]["TargetGroupArn"]
        .as_str()
        .context("target group ARN")?
        .to_string();
    b.aws(&[
        "elbv2",
        "modify-target-group-attributes",
        "--target-group-arn",
        &tg,
        "--attributes",
        "Key=deregistration_delay.timeout_seconds,Value=3",
    ])?;
    let lb = b.aws(&[
        "elbv2",
        "create-load-balancer",
        "--name",
        "web-lb",
        "--subnets",
        "subnet-a",
        "subnet-b",
        "--security-groups",
        "sg-1",
    ])?["LoadBalancers"][0]
        .clone();
    assert_eq!(lb["State"]["Code"], "active");
    assert_eq!(
        lb["DNSName"], "127.0.0.1",
        "tests bind listeners on loopback"
    );
    let lb_arn = lb["LoadBalancerArn"]
        .as_str()
        .context("LB ARN")?
        .to_string();
    assert!(lb_arn.contains(":loadbalancer/app/web-lb/"), "{lb_arn}");
    let listener = b.aws(&[
        "elbv2",
        "create-listener",
        "--load-balancer-arn",
        &lb_arn,
        "--protocol",
        "HTTP",
        "--port",
        &port.to_string(),
        "--default-actions",
        &format!("Type=forward,TargetGroupArn={tg}"),
    ])?["Listeners"][0]["ListenerArn"]
        .as_str()
        .context("listener ARN")?
        .to_string();
    b.aws(&[
        "elbv2", "create-rule", "--listener-arn", &listener, "--priority", "10",
        "--conditions", "Field=path-pattern,Values=/api/*",
        "--actions", "Type=fixed-response,FixedResponseConfig={StatusCode=200,ContentType=text/plain,MessageBody=api}",
    ])?;
    // A second listener on the same port is refused: every load balancer shares the address.
    let dup = b.aws_raw(&[
        "elbv2",
        "create-listener",
        "--load-balancer-arn",
        &lb_arn,
        "--protocol",
        "HTTP",
        "--port",
        &port.to_string(),
        "--default-actions",
        "Type=fixed-response,FixedResponseConfig={StatusCode=404}",
    ])?;
    assert!(
        String::from_utf8_lossy(&dup.stderr).contains("DuplicateListener"),
        "{dup:?}"
    );

    // No targets yet: ALB's 503.
    let (code, _) = poll("the listener to answer", Duration::from_secs(10), || {
        Ok(get(port, "/id", "web").ok())
    })?;
    assert_eq!(code, 503);

    b.register_task_definition(&web(b))?;
    b.aws(&[
        "ecs",
        "create-service",
        "--service-name",
        "web",
        "--task-definition",
        "lbweb",
        "--desired-count",
        "2",
        "--network-configuration",
        "awsvpcConfiguration={subnets=[subnet-a]}",
        "--load-balancers",
        &format!("targetGroupArn={tg},containerName=web,containerPort=80"),
    ])?;
    let ips = poll("two running tasks", Duration::from_secs(90), || {
        let ips = task_ips(b, "web")?;
        Ok((ips.len() == 2).then_some(ips))
    })?;
    let healthy = poll(
        "both tasks healthy in the target group",
        Duration::from_secs(60),
        || {
            let t = targets(b, &tg)?;
            Ok((t.len() == 2 && t.iter().all(|(_, s)| s == "healthy")).then_some(t))
        },
    )?;
    let mut ids: Vec<String> = healthy.into_iter().map(|(id, _)| id).collect();
    ids.sort();
    assert_eq!(ids, ips, "the targets are the tasks' awsvpc addresses");

    // Requests spread over both tasks (round robin).
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let (code, body) = get(port, "/id", "web")?;
        assert_eq!(code, 200, "{body}");
        seen.insert(body.trim().to_string());
    }
    assert_eq!(seen.len(), 2, "both tasks served: {seen:?}");
    // The rule answers /api/* itself.
    assert_eq!(get(port, "/api/users", "web")?, (200, "api".to_string()));
    // ALB's headers reach the task: the client appended to X-Forwarded-For.
    let (_, headers) = get(port, "/cgi-bin/headers", "web")?;
    assert_eq!(
        headers.trim(),
        format!("xff=203.0.113.7, 127.0.0.1 proto=http port={port}")
    );

    // Scale in under load: the leaving task is deregistered and drains while it still
    // runs (DEACTIVATING), then stops; no request fails on the way.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match get(port, "/id", "web") {
                    Ok((200, _)) => ok += 1,
                    other => failed.push(format!("{other:?}")),
                }
            }
            (ok, failed)
        })
    };
    b.aws(&[
        "ecs",
        "update-service",
        "--service",
        "web",
        "--desired-count",
        "1",
    ])?;
    poll(
        "a task deactivating while its target drains",
        Duration::from_secs(30),
        || {
            Ok(b.service_tasks("web")?
                .iter()
                .any(|t| t["lastStatus"] == TaskStatus::Deactivating.as_str())
                .then_some(()))
        },
    )?;
    poll(
        "one target left after draining",
        Duration::from_secs(60),
        || {
            let t = targets(b, &tg)?;
            Ok((t.len() == 1 && t[0].1 == "healthy").then_some(()))
        },
    )?;
    poll("the drained task stopped", Duration::from_secs(30), || {
        let stopped = b
            .service_tasks("web")?
            .iter()
            .any(|t| t["lastStatus"] == TaskStatus::Stopped.as_str());
        Ok((stopped && task_ips(b, "web")?.len() == 1).then_some(()))
    })?;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = load.join().map_err(|_| anyhow!("load thread panicked"))?;
    assert!(
        failed.is_empty(),
        "{} requests of {} failed: {failed:?}",
        failed.len(),
        ok
    );
    assert!(ok > 10, "the loop ran: {ok}");
    let mut after = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let (code, body) = get(port, "/id", "web")?;
        assert_eq!(code, 200, "{body}");
        after.insert(body.trim().to_string());
    }
    assert_eq!(after.len(), 1, "{after:?}");

    // The last task fails its health checks: its target turns unhealthy and the service
    // replaces the task, as ECS does for ELB health checks.
    let sick_ip = task_ips(b, "web")?;
    assert_eq!(get(port, "/cgi-bin/sicken", "web")?.1.trim(), "sick");
    poll("the sick target unhealthy", Duration::from_secs(30), || {
        Ok(targets(b, &tg)?
            .iter()
            .any(|(id, s)| [id.clone()] == *sick_ip && s == "unhealthy")
            .then_some(()))
    })?;
    let replaced = poll("the sick task replaced", Duration::from_secs(30), || {
        Ok(b.service_tasks("web")?.into_iter().find(|t| {
            t["stoppedReason"]
                .as_str()
                .is_some_and(|r| r.contains("failed ELB health checks in (target-group"))
        }))
    })?;
    assert_eq!(replaced["desiredStatus"], TaskStatus::Stopped.as_str());
    poll("a new healthy target", Duration::from_secs(60), || {
        let t = targets(b, &tg)?;
        Ok(t.iter()
            .any(|(id, s)| [id.clone()] != *sick_ip && s == "healthy")
            .then_some(()))
    })?;

    // ECS checks a service's load balancers against its task definition.
    let lb = format!("targetGroupArn={tg},containerName=web,containerPort=8080");
    let bad = b.aws_raw(&[
        "ecs",
        "create-service",
        "--service-name",
        "bad",
        "--task-definition",
        "lbweb",
        "--desired-count",
        "1",
        "--load-balancers",
        &lb,
    ])?;
    let said = String::from_utf8_lossy(&bad.stderr);
    assert!(
        said.contains("The container web did not have a container port 8080 defined."),
        "{said}"
    );
    // Errors as ELB gives them.
    let missing = b.aws_raw(&["elbv2", "describe-target-groups", "--names", "nope"])?;
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("TargetGroupNotFound"),
        "{missing:?}"
    );
    let in_use = b.aws_raw(&["elbv2", "delete-target-group", "--target-group-arn", &tg])?;
    assert!(
        String::from_utf8_lossy(&in_use.stderr).contains("ResourceInUse"),
        "{in_use:?}"
    );
    Ok(())
}
