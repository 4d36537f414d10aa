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

/// A web task of `family`: each answers `/id` with an id of its own, `/name` and
/// `/api/name` with its family, `/health` with ok (until `/cgi-bin/sicken` removes it),
/// and `/cgi-bin/headers` with the forwarding headers it got.
fn web(b: &Berth, family: &str) -> Value {
    let script = concat!(
        "mkdir -p /tmp/w/cgi-bin /tmp/w/api && cat /proc/sys/kernel/random/uuid > /tmp/w/id && echo ok > /tmp/w/health && ",
        "echo $FAMILY > /tmp/w/name && cp /tmp/w/name /tmp/w/api/name && ",
        "printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho \"xff=$HTTP_X_FORWARDED_FOR proto=$HTTP_X_FORWARDED_PROTO port=$HTTP_X_FORWARDED_PORT\"\\n' > /tmp/w/cgi-bin/headers && ",
        "printf '#!/bin/sh\\nrm -f /tmp/w/health\\necho Content-Type: text/plain\\necho\\necho sick\\n' > /tmp/w/cgi-bin/sicken && ",
        "chmod +x /tmp/w/cgi-bin/headers /tmp/w/cgi-bin/sicken && exec httpd -f -p 80 -h /tmp/w"
    );
    json!({
        "family": family,
        "networkMode": "awsvpc",
        "containerDefinitions": [{
            "name": "web", "image": b.demo_image, "memory": 32, "stopTimeout": 2,
            "entryPoint": ["/bin/sh", "-c"], "command": [script],
            "environment": [{"name": "FAMILY", "value": family}],
            "portMappings": [{"containerPort": 80}]
        }]
    })
}

/// A client sending requests through the load balancer in a loop until told to stop.
struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(u32, Vec<String>)>,
}

impl Load {
    fn start(port: u16) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let done = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                match get(port, "/id", "web") {
                    Ok((200, _)) => ok += 1,
                    other => failed.push(format!("{other:?}")),
                }
            }
            (ok, failed)
        });
        Self { stop, thread }
    }

    /// Stops the loop: every request succeeded, and more than `at_least` were sent.
    fn finish(self, at_least: u32) -> Result<()> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (ok, failed) = self
            .thread
            .join()
            .map_err(|_| anyhow!("load thread panicked"))?;
        assert!(
            failed.is_empty(),
            "{} requests of {} failed: {failed:?}",
            failed.len(),
            ok
        );
        assert!(ok > at_least, "the loop ran: {ok}");
        Ok(())
    }
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
    b.logs_on_failure(r)
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

    b.register_task_definition(&web(b, "lbweb"))?;
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

    let service = b.aws(&["ecs", "describe-services", "--services", "web"])?;
    let registered = format!("(service web) registered 2 targets in (target-group {tg})");
    let said: Vec<&str> = service["services"][0]["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        said.iter().any(|m| *m == registered)
            || said
                .iter()
                .filter(|m| m.starts_with("(service web) registered 1 targets"))
                .count()
                == 2,
        "{said:?}"
    );
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

    // A rolling deployment under load: new tasks join and turn healthy before the old
    // ones drain and stop; no request fails.
    let load = Load::start(port);
    let before = task_ips(b, "web")?;
    b.aws(&[
        "ecs",
        "update-service",
        "--service",
        "web",
        "--force-new-deployment",
    ])?;
    poll(
        "the deployment done, old tasks gone",
        Duration::from_secs(120),
        || {
            let now = task_ips(b, "web")?;
            let healthy = targets(b, &tg)?;
            Ok((now.len() == 2
                && now.iter().all(|ip| !before.contains(ip))
                && healthy.len() == 2
                && healthy.iter().all(|(_, s)| s == "healthy"))
            .then_some(()))
        },
    )?;
    load.finish(10)?;

    // Scale in under load: the leaving task is deregistered and drains while it still
    // runs (DEACTIVATING), then stops; no request fails on the way.
    let load = Load::start(port);
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
    load.finish(10)?;
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

/// A CA, and a certificate it signed for `app.example.test` and `api.example.com`, as
/// PEM files in `dir`: (ca, cert, key).
fn certificates(dir: &std::path::Path) -> Result<[std::path::PathBuf; 3]> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "lb test CA");
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate()?;
    let mut leaf = rcgen::CertificateParams::new(vec![
        "app.example.test".to_string(),
        "api.example.com".to_string(),
    ])?;
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, "app.example.test");
    let cert = leaf.signed_by(&key, &issuer)?;
    let paths = [
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    ];
    std::fs::write(&paths[0], ca_cert.pem())?;
    std::fs::write(&paths[1], cert.pem())?;
    std::fs::write(&paths[2], key.serialize_pem())?;
    Ok(paths)
}

/// curl through the load balancer at `ip`, resolving `host` there; its stdout.
fn curl(ip: &str, ca: &std::path::Path, host: &str, port: u16, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca)
        .args(["--resolve", &format!("{host}:{port}:{ip}")])
        .args(args)
        .output()?;
    if !out.status.success() {
        anyhow::bail!("curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn arn(v: &Value, list: &str, member: &str) -> Result<String> {
    v[list][0][member]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("{member} in {v}"))
}

fn service(b: &Berth, family: &str, tg: &str) -> Result<()> {
    b.register_task_definition(&web(b, family))?;
    b.aws(&[
        "ecs",
        "create-service",
        "--service-name",
        family,
        "--task-definition",
        family,
        "--desired-count",
        "1",
        "--network-configuration",
        "awsvpcConfiguration={subnets=[subnet-a]}",
        "--load-balancers",
        &format!("targetGroupArn={tg},containerName=web,containerPort=80"),
    ])?;
    Ok(())
}

#[test]
fn the_seeds_elbv2_commands_serve_https_rules_and_a_redirect() -> Result<()> {
    // Ports 80 and 443 on an address of this test's own.
    let b = Berth::start_with(&["--lb-listen-address", "127.0.9.1"])?;
    let r = seed_commands(&b);
    b.logs_on_failure(r)
}

#[allow(clippy::too_many_lines)] // the seed's commands, then what they serve
fn seed_commands(b: &Berth) -> Result<()> {
    let [ca, cert, key] = certificates(b.dir.path())?;
    let file = |p: &std::path::Path| format!("fileb://{}", p.display());
    let cert_arn = b.aws(&[
        "acm",
        "import-certificate",
        "--certificate",
        &file(&cert),
        "--private-key",
        &file(&key),
        "--certificate-chain",
        &file(&ca),
    ])?["CertificateArn"]
        .as_str()
        .context("certificate ARN")?
        .to_string();
    let described = b.aws(&[
        "acm",
        "describe-certificate",
        "--certificate-arn",
        &cert_arn,
    ])?;
    assert_eq!(described["Certificate"]["DomainName"], "app.example.test");
    // A certificate that does not match its key is refused.
    let other_dir = b.dir.path().join("other");
    std::fs::create_dir_all(&other_dir)?;
    let [_, other, _] = certificates(&other_dir)?;
    let bad = b.aws_raw(&[
        "acm",
        "import-certificate",
        "--certificate",
        &file(&other),
        "--private-key",
        &file(&key),
    ])?;
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("ValidationException"),
        "{bad:?}"
    );

    // The seed's commands (section 6.2 and 6.3), ARNs and ids swapped in.
    let tg = |name: &str| -> Result<String> {
        arn(
            &b.aws(&[
                "elbv2",
                "create-target-group",
                "--name",
                name,
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
                "30",
                "--healthy-threshold-count",
                "2",
                "--unhealthy-threshold-count",
                "3",
                "--health-check-timeout-seconds",
                "5",
            ])?,
            "TargetGroups",
            "TargetGroupArn",
        )
    };
    let (web_targets, api_targets) = (tg("app-tg")?, tg("api-tg")?);
    let alb = arn(
        &b.aws(&[
            "elbv2",
            "create-load-balancer",
            "--name",
            "app-alb",
            "--subnets",
            "subnet-a",
            "subnet-b",
            "--security-groups",
            "sg-0123",
            "--scheme",
            "internet-facing",
            "--type",
            "application",
        ])?,
        "LoadBalancers",
        "LoadBalancerArn",
    )?;
    let https = arn(
        &b.aws(&[
            "elbv2",
            "create-listener",
            "--load-balancer-arn",
            &alb,
            "--protocol",
            "HTTPS",
            "--port",
            "443",
            "--certificates",
            &format!("CertificateArn={cert_arn}"),
            "--ssl-policy",
            "ELBSecurityPolicy-TLS13-1-2-2021-06",
            "--default-actions",
            &format!("Type=forward,TargetGroupArn={web_targets}"),
        ])?,
        "Listeners",
        "ListenerArn",
    )?;
    b.aws(&[
        "elbv2",
        "create-listener",
        "--load-balancer-arn",
        &alb,
        "--protocol",
        "HTTP",
        "--port",
        "80",
        "--default-actions",
        "Type=redirect,RedirectConfig={Protocol=HTTPS,Port=443,StatusCode=HTTP_301}",
    ])?;
    b.aws(&[
        "elbv2",
        "create-rule",
        "--listener-arn",
        &https,
        "--priority",
        "10",
        "--conditions",
        "Field=path-pattern,Values=/api/*",
        "--actions",
        &format!("Type=forward,TargetGroupArn={api_targets}"),
    ])?;
    b.aws(&[
        "elbv2",
        "create-rule",
        "--listener-arn",
        &https,
        "--priority",
        "20",
        "--conditions",
        "Field=host-header,Values=api.example.com",
        "--actions",
        &format!("Type=forward,TargetGroupArn={api_targets}"),
    ])?;
    // Bad input gets ELB's codes.
    let refused = |args: &[&str], code: &str| -> Result<()> {
        let out = b.aws_raw(args)?;
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains(code), "{args:?}: {said}");
        Ok(())
    };
    refused(
        &[
            "elbv2",
            "create-rule",
            "--listener-arn",
            &https,
            "--priority",
            "10",
            "--conditions",
            "Field=path-pattern,Values=/other/*",
            "--actions",
            &format!("Type=forward,TargetGroupArn={api_targets}"),
        ],
        "PriorityInUse",
    )?;
    refused(&["elbv2", "create-rule", "--listener-arn", &https, "--priority", "30",
        "--conditions", "Field=path-pattern,Values=/x", "--actions",
        "Type=forward,TargetGroupArn=arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/nope/0123456789abcdef"], "TargetGroupNotFound")?;
    refused(
        &[
            "elbv2",
            "create-rule",
            "--listener-arn",
            &https,
            "--priority",
            "31",
            "--conditions",
            "Field=cookie,Values=a",
            "--actions",
            &format!("Type=forward,TargetGroupArn={api_targets}"),
        ],
        "ValidationError",
    )?;
    refused(
        &["acm", "delete-certificate", "--certificate-arn", &cert_arn],
        "ResourceInUseException",
    )?;

    service(b, "app", &web_targets)?;
    service(b, "api", &api_targets)?;
    for tg in [&web_targets, &api_targets] {
        poll(
            "the service's target healthy",
            Duration::from_secs(90),
            || {
                Ok(targets(b, tg)?
                    .iter()
                    .any(|(_, s)| s == "healthy")
                    .then_some(()))
            },
        )?;
    }
    let ip = "127.0.9.1";
    let dns = b.aws(&["elbv2", "describe-load-balancers", "--names", "app-alb"])?;
    assert_eq!(dns["LoadBalancers"][0]["DNSName"], ip);
    // HTTPS, verified against the imported certificate's CA, over HTTP/2.
    let page = curl(
        ip,
        &ca,
        "app.example.test",
        443,
        &["-w", " %{http_version}", "https://app.example.test/name"],
    )?;
    assert_eq!(
        page.split_whitespace().collect::<Vec<_>>(),
        ["app", "2"],
        "the default action, over HTTP/2"
    );
    assert_eq!(
        curl(
            ip,
            &ca,
            "app.example.test",
            443,
            &["--http1.1", "https://app.example.test/api/name"]
        )?,
        "api"
    );
    assert_eq!(
        curl(
            ip,
            &ca,
            "api.example.com",
            443,
            &["https://api.example.com/name"]
        )?,
        "api"
    );
    assert_eq!(
        curl(
            ip,
            &ca,
            "app.example.test",
            443,
            &["https://app.example.test/cgi-bin/headers"]
        )?,
        "xff=127.0.0.1 proto=https port=443"
    );
    // The HTTP listener redirects to HTTPS with a 301.
    assert_eq!(
        curl(
            ip,
            &ca,
            "app.example.test",
            80,
            &[
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{redirect_url}",
                "http://app.example.test/a?b=1"
            ]
        )?,
        "301 https://app.example.test:443/a?b=1"
    );
    // The policy decides the TLS versions: TLS 1.2 works under TLS13-1-2, not TLS13-1-3.
    let tls12 = [
        "--tlsv1.2",
        "--tls-max",
        "1.2",
        "https://app.example.test/name",
    ];
    assert_eq!(curl(ip, &ca, "app.example.test", 443, &tls12)?, "app");
    b.aws(&[
        "elbv2",
        "modify-listener",
        "--listener-arn",
        &https,
        "--ssl-policy",
        "ELBSecurityPolicy-TLS13-1-3-2021-06",
    ])?;
    poll(
        "TLS 1.2 refused under the TLS 1.3 policy",
        Duration::from_secs(10),
        || {
            Ok(curl(ip, &ca, "app.example.test", 443, &tls12)
                .is_err()
                .then_some(()))
        },
    )?;
    Ok(())
}

/// A target that answers `GET /` with 200 on keep-alive connections, and switches an
/// `Upgrade: websocket` request to an echo of whatever bytes follow.
const ECHO_TARGET: &str = r#"
import base64, hashlib, socket, socketserver, sys
class H(socketserver.BaseRequestHandler):
    def handle(self):
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                data = self.request.recv(4096)
                if not data:
                    return
                buf += data
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode().split("\r\n")
            headers = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
            if headers.get("upgrade", "").lower() == "websocket":
                accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
                self.request.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" % accept).encode())
                if buf:
                    self.request.sendall(buf)
                while True:
                    data = self.request.recv(4096)
                    if not data:
                        return
                    self.request.sendall(data)
            body = b"ok " + lines[0].split(" ")[1].encode()
            self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
class S(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"#;

/// A child process killed when the test is done with it, however it ends.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads from `s` until `end` has been seen; what was read.
fn read_until(s: &mut std::net::TcpStream, end: &str) -> Result<String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&buf).contains(end) {
        if s.read(&mut byte)? == 0 {
            anyhow::bail!("closed after {:?}", String::from_utf8_lossy(&buf));
        }
        buf.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

#[test]
fn keep_alive_websockets_and_alb_errors_for_registered_targets() -> Result<()> {
    let b = Berth::start()?;
    let r = registered_targets(&b);
    b.logs_on_failure(r)
}

#[allow(clippy::too_many_lines)] // one scenario, step by step
fn registered_targets(b: &Berth) -> Result<()> {
    let target_port = free_port();
    let mut target = Reaped(
        std::process::Command::new("python3")
            .args(["-c", ECHO_TARGET, &target_port.to_string()])
            .spawn()?,
    );
    let port = free_port();
    let tg = arn(
        &b.aws(&[
            "elbv2",
            "create-target-group",
            "--name",
            "echo",
            "--protocol",
            "HTTP",
            "--port",
            "80",
            "--target-type",
            "ip",
            "--health-check-interval-seconds",
            "5",
            "--health-check-timeout-seconds",
            "2",
        ])?,
        "TargetGroups",
        "TargetGroupArn",
    )?;
    let lb = arn(
        &b.aws(&["elbv2", "create-load-balancer", "--name", "echo"])?,
        "LoadBalancers",
        "LoadBalancerArn",
    )?;
    b.aws(&[
        "elbv2",
        "create-listener",
        "--load-balancer-arn",
        &lb,
        "--protocol",
        "HTTP",
        "--port",
        &port.to_string(),
        "--default-actions",
        &format!("Type=forward,TargetGroupArn={tg}"),
    ])?;
    b.aws(&[
        "elbv2",
        "register-targets",
        "--target-group-arn",
        &tg,
        "--targets",
        &format!("Id=127.0.0.1,Port={target_port}"),
    ])?;
    poll(
        "the registered target healthy",
        Duration::from_secs(30),
        || {
            Ok(targets(b, &tg)?
                .iter()
                .any(|(_, s)| s == "healthy")
                .then_some(()))
        },
    )?;

    // Keep-alive: two requests on one connection.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    for path in ["/one", "/two"] {
        write!(s, "GET {path} HTTP/1.1\r\nHost: echo\r\n\r\n")?;
        let head = read_until(&mut s, "\r\n\r\n")?;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let body = read_until(&mut s, path)?;
        assert_eq!(body, format!("ok {path}"));
    }
    // A WebSocket upgrade, then bytes both ways.
    let mut ws = std::net::TcpStream::connect(("127.0.0.1", port))?;
    ws.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        ws,
        "GET /chat HTTP/1.1\r\nHost: echo\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )?;
    let head = read_until(&mut ws, "\r\n\r\n")?;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "the target's accept key: {head}"
    );
    ws.write_all(b"ping-123")?;
    assert_eq!(read_until(&mut ws, "ping-123")?, "ping-123");

    // The target dies: it fails its checks, and with no healthy target the load balancer
    // fails open and answers 502 for the dead one.
    target.0.kill()?;
    let _ = target.0.wait();
    poll("the dead target unhealthy", Duration::from_secs(30), || {
        Ok(targets(b, &tg)?
            .iter()
            .any(|(_, s)| s == "unhealthy")
            .then_some(()))
    })?;
    assert_eq!(get(port, "/", "echo")?.0, 502);
    // Deregistered, it drains (300 s by default) and gets no requests: 503.
    b.aws(&[
        "elbv2",
        "deregister-targets",
        "--target-group-arn",
        &tg,
        "--targets",
        &format!("Id=127.0.0.1,Port={target_port}"),
    ])?;
    assert_eq!(targets(b, &tg)?[0].1, "draining");
    poll("no target to send to", Duration::from_secs(10), || {
        Ok((get(port, "/", "echo")?.0 == 503).then_some(()))
    })?;
    Ok(())
}
