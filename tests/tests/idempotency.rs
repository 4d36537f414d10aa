//! Idempotent `RunTask`: the control plane is killed while aws CLI calls with client
//! tokens are in flight; every call retried with its token afterwards gets the tasks
//! its token started, and each token's task exists exactly once.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result};
use berth_e2e::Berth;
use serde_json::{json, Value};

const CALLS: usize = 8;

fn task_arn(out: &Value) -> Option<String> {
    out["tasks"][0]["taskArn"].as_str().map(str::to_owned)
}

#[test]
fn run_task_retried_after_a_control_plane_crash_starts_each_token_s_task_once() -> Result<()> {
    let mut b = Berth::start()?;
    b.register_task_definition(&json!({"family": "idem", "containerDefinitions": [{
        "name": "a", "image": b.demo_image, "memory": 16, "stopTimeout": 2,
        "entryPoint": ["sleep", "300"]}]}))?;
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let tokens: Vec<String> = (0..CALLS).map(|i| format!("idem-{nonce}-{i}")).collect();
    let run = |b: &Berth, token: &str| {
        b.aws(&[
            "ecs",
            "run-task",
            "--task-definition",
            "idem",
            "--client-token",
            token,
        ])
    };
    let pid = b.controlplane_pid().context("control plane pid")?;
    // The first call is answered; the moment it is, the other seven set off and the
    // control plane is killed, so they meet the crash (refused, or cut off mid-call).
    let go = std::sync::Barrier::new(CALLS);
    let first_answers: Vec<Option<String>> = std::thread::scope(|s| {
        let (answered_tx, answered_rx) = std::sync::mpsc::channel::<()>();
        let calls: Vec<_> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let (b, go, answered) = (&b, &go, answered_tx.clone());
                s.spawn(move || {
                    if i == 0 {
                        let out = run(b, t).ok().and_then(|v| task_arn(&v));
                        let _ = answered.send(());
                        go.wait();
                        out
                    } else {
                        go.wait();
                        run(b, t).ok().and_then(|v| task_arn(&v))
                    }
                })
            })
            .collect();
        let _ = answered_rx.recv_timeout(Duration::from_secs(60));
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
        calls
            .into_iter()
            .map(|c| c.join().unwrap_or(None))
            .collect()
    });
    let answered = first_answers.iter().flatten().count();
    eprintln!("{answered} of {CALLS} calls were answered before the crash");
    assert!(
        (1..CALLS).contains(&answered),
        "some calls were answered before the kill, and some met it"
    );
    b.kill9_controlplane();
    b.start_controlplane()?;
    b.wait_connected()?;

    // Every call again, with its token: the task it started, or (if it never reached
    // the store) a new one, once.
    let mut retried = BTreeSet::new();
    for (token, first) in tokens.iter().zip(&first_answers) {
        let again = task_arn(&run(&b, token)?).context("a task")?;
        if let Some(first) = first {
            assert_eq!(
                &again, first,
                "token {token}: the retry gets the acknowledged task"
            );
        }
        assert_eq!(
            task_arn(&run(&b, token)?).as_deref(),
            Some(again.as_str()),
            "and so does a second retry"
        );
        retried.insert(again);
    }
    assert_eq!(retried.len(), CALLS, "one task per token");
    let listed: BTreeSet<String> = b.aws(&["ecs", "list-tasks"])?["taskArns"]
        .as_array()
        .context("taskArns")?
        .iter()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    assert_eq!(listed, retried, "no task beyond each token's one");
    Ok(())
}
