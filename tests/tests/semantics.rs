//! ECS container semantics on real containers: dependsOn, health checks,
//! stop timeouts, OOM and start failures, each proved through the aws CLI.

use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use berth_e2e::{poll, Berth};
use serde_json::{json, Value};

fn container<'a>(task: &'a Value, name: &str) -> &'a Value {
    task["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or(&Value::Null)
}

fn log_mtime(b: &Berth, arn: &str, name: &str) -> Result<SystemTime> {
    let id = arn.rsplit('/').next().unwrap_or(arn);
    let p = b
        .agent_dir()
        .join("tasks")
        .join(id)
        .join(format!("{name}.log"));
    Ok(std::fs::metadata(&p)
        .with_context(|| format!("{}", p.display()))?
        .modified()?)
}

fn sh(name: &str, image: &str, script: &str) -> Value {
    json!({"name": name, "image": image, "memory": 32, "entryPoint": ["/bin/sh", "-c"], "command": [script]})
}

#[test]
fn success_dependency_runs_to_completion_before_its_dependent_starts() -> Result<()> {
    let b = Berth::start()?;
    let image = b.demo_image.clone();
    let mut init = sh("init", &image, "sleep 1; echo init done");
    init["essential"] = json!(false);
    let mut app = sh("app", &image, "echo app started; exec sleep 60");
    app["dependsOn"] = json!([{"containerName": "init", "condition": "SUCCESS"}]);
    app["stopTimeout"] = json!(2);
    b.register_task_definition(&json!({"family": "ordered", "containerDefinitions": [app, init]}))?;
    let arn = b.run_task("ordered")?;
    let t = b.wait_task_status("default", &arn, "RUNNING", Duration::from_secs(60))?;
    assert_eq!(container(&t, "init")["exitCode"], 0, "{t}");
    // init's last write (just before it exited) is no later than app's first.
    let (init_done, app_started) = (log_mtime(&b, &arn, "init")?, log_mtime(&b, &arn, "app")?);
    assert!(
        init_done <= app_started,
        "app started before init completed"
    );
    b.aws(&["ecs", "stop-task", "--task", &arn])?;
    b.wait_stopped(&arn, Duration::from_secs(30))?;
    Ok(())
}

#[test]
fn failing_success_dependency_fails_the_task_naming_both_containers() -> Result<()> {
    let b = Berth::start()?;
    let image = b.demo_image.clone();
    let mut init = sh("init", &image, "exit 4");
    init["essential"] = json!(false);
    let mut app = sh("app", &image, "exec sleep 60");
    app["dependsOn"] = json!([{"containerName": "init", "condition": "SUCCESS"}]);
    b.register_task_definition(
        &json!({"family": "broken-init", "containerDefinitions": [app, init]}),
    )?;
    let arn = b.run_task("broken-init")?;
    let t = b.wait_stopped(&arn, Duration::from_secs(60))?;
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t}");
    let reason = t["stoppedReason"].as_str().unwrap_or("");
    assert!(
        reason.contains("'app'") && reason.contains("'init'") && reason.contains("code 4"),
        "{reason}"
    );
    Ok(())
}

#[test]
fn healthy_dependency_gates_the_start_and_a_failing_check_turns_unhealthy() -> Result<()> {
    let b = Berth::start()?;
    let image = b.demo_image.clone();
    let mut web = sh("web", &image, "echo web up; exec httpd -f -p 80 -h /www");
    web["healthCheck"] = json!({"command": ["CMD-SHELL", "wget -qO- http://127.0.0.1/health"], "interval": 5, "timeout": 2, "retries": 1});
    web["stopTimeout"] = json!(2);
    let mut app = sh("app", &image, "echo app started; exec sleep 60");
    app["dependsOn"] = json!([{"containerName": "web", "condition": "HEALTHY"}]);
    app["essential"] = json!(false);
    app["stopTimeout"] = json!(2);
    let mut sick = sh("sick", &image, "exec sleep 60");
    sick["healthCheck"] =
        json!({"command": ["CMD", "false"], "interval": 5, "timeout": 2, "retries": 2});
    sick["stopTimeout"] = json!(2);
    b.register_task_definition(
        &json!({"family": "health", "containerDefinitions": [web, app, sick]}),
    )?;
    let arn = b.run_task("health")?;
    let t = b.wait_task_status("default", &arn, "RUNNING", Duration::from_secs(60))?;
    assert_eq!(container(&t, "web")["healthStatus"], "HEALTHY", "{t}");
    // The first check runs one interval (5 s) after web starts: app waited for it.
    let gap = log_mtime(&b, &arn, "app")?.duration_since(log_mtime(&b, &arn, "web")?)?;
    assert!(
        gap >= Duration::from_secs(4),
        "app started {gap:?} after web, before web was healthy"
    );
    // sick fails two checks (5 s apart) and turns UNHEALTHY; so does the task.
    let t = poll("sick to turn UNHEALTHY", Duration::from_secs(30), || {
        let t = b.describe_task("default", &arn)?;
        Ok((container(&t, "sick")["healthStatus"] == "UNHEALTHY").then_some(t))
    })?;
    assert_eq!(t["healthStatus"], "UNHEALTHY", "{t}");
    b.aws(&["ecs", "stop-task", "--task", &arn])?;
    b.wait_stopped(&arn, Duration::from_secs(30))?;
    Ok(())
}

#[test]
fn a_container_ignoring_sigterm_is_killed_after_its_stop_timeout() -> Result<()> {
    let b = Berth::start()?;
    let image = b.demo_image.clone();
    // A shell that ignores SIGTERM (and `sleep` as PID 1 would, too).
    let mut stubborn = sh(
        "stubborn",
        &image,
        "trap '' TERM; while true; do sleep 0.2; done",
    );
    stubborn["stopTimeout"] = json!(3);
    b.register_task_definition(&json!({"family": "stubborn", "containerDefinitions": [stubborn]}))?;
    let arn = b.run_task("stubborn")?;
    b.wait_task_status("default", &arn, "RUNNING", Duration::from_secs(60))?;
    let asked = Instant::now();
    b.aws(&["ecs", "stop-task", "--task", &arn])?;
    let t = b.wait_stopped(&arn, Duration::from_secs(30))?;
    let took = asked.elapsed();
    assert_eq!(container(&t, "stubborn")["exitCode"], 137, "{t}");
    assert!(
        took >= Duration::from_secs(3),
        "stopped after {took:?}, before its stopTimeout"
    );
    assert!(
        took <= Duration::from_secs(3 + 4),
        "stopped after {took:?}: SIGKILL came late"
    );
    eprintln!("stop with a 3 s stopTimeout took {took:?}");
    Ok(())
}

#[test]
fn a_container_over_its_memory_limit_stops_with_out_of_memory_error() -> Result<()> {
    let b = Berth::start()?;
    let image = b.demo_image.clone();
    // The shell keeps 64 MiB in a variable; the container may use 16 MiB.
    let mut hog = sh(
        "hog",
        &image,
        "x=$(head -c 67108864 /dev/zero | tr '\\000' a); echo survived ${#x}",
    );
    hog["memory"] = json!(16);
    b.register_task_definition(&json!({"family": "hog", "containerDefinitions": [hog]}))?;
    let arn = b.run_task("hog")?;
    let t = b.wait_stopped(&arn, Duration::from_secs(60))?;
    let c = container(&t, "hog");
    assert_eq!(
        c["reason"], "OutOfMemoryError: Container killed due to memory usage",
        "{t}"
    );
    assert_eq!(t["stopCode"], "EssentialContainerExited");
    Ok(())
}

#[test]
fn pull_and_start_failures_use_ecs_reasons() -> Result<()> {
    let b = Berth::start()?;
    let missing_tag = format!("{}/berth/demo:no-such-tag", b.registry);
    b.register_task_definition(&json!({"family": "nopull", "containerDefinitions": [{"name": "a", "image": missing_tag, "memory": 16}]}),
    )?;
    let arn = b.run_task("nopull")?;
    let t = b.wait_stopped(&arn, Duration::from_secs(60))?;
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t}");
    let reason = t["stoppedReason"].as_str().unwrap_or("");
    assert!(
        reason.starts_with("CannotPullContainerError: ") && reason.contains("no-such-tag"),
        "{reason}"
    );

    let image = b.demo_image.clone();
    b.register_task_definition(&json!({"family": "noexec", "containerDefinitions": [{"name": "a", "image": image, "memory": 16, "entryPoint": ["/no/such/binary"]}]}),
    )?;
    let arn = b.run_task("noexec")?;
    let t = b.wait_stopped(&arn, Duration::from_secs(60))?;
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t}");
    let reason = t["stoppedReason"].as_str().unwrap_or("");
    assert!(
        reason.starts_with("CannotStartContainerError: ") && reason.contains("/no/such/binary"),
        "{reason}"
    );
    assert!(b.leftovers(arn.rsplit('/').next().unwrap())?.is_empty());
    Ok(())
}
