//! Placements per second of the pure scheduler over 1,000 simulated
//! container instances, for each strategy. Two shapes: RunTask-sized calls
//! (10 tasks each, the fleet filling up between calls, as a busy control
//! plane sees it) and one call placing many tasks (setup amortised).

use std::time::{Duration, Instant};

use berth_controlplane::model::placement::{
    PlacementConstraint, PlacementStrategy, RawConstraint, RawStrategy,
};
use berth_controlplane::model::Resources;
use berth_controlplane::scheduler::{place, Candidate, TaskToPlace};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const INSTANCES: usize = 1_000;
const BATCH: usize = 10;
const BATCHED_TASKS: usize = 20_000;
const ONE_CALL_TASKS: usize = 10_000;
const GROUPS: usize = 50;

fn fleet(rng: &mut StdRng) -> Vec<Candidate> {
    let types = ["m5.large", "m5.xlarge", "c5.2xlarge", "t3.medium"];
    let zones = ["us-east-1a", "us-east-1b", "us-east-1c"];
    (0..INSTANCES)
        .map(|i| Candidate {
            arn: format!("arn:aws:ecs:us-east-1:123456789012:container-instance/bench/{i:032x}"),
            remaining: Resources {
                cpu: 16_384,
                memory_mib: 65_536,
            },
            attributes: vec![
                ("ecs.os-type".into(), Some("linux".into())),
                ("ecs.capability.task-eni".into(), None),
                (
                    "ecs.instance-type".into(),
                    Some(types[rng.random_range(0..types.len())].into()),
                ),
                (
                    "ecs.availability-zone".into(),
                    Some(zones[rng.random_range(0..zones.len())].into()),
                ),
                (
                    "stack".into(),
                    Some(if i % 10 == 0 { "canary" } else { "prod" }.into()),
                ),
            ],
            task_groups: (0..rng.random_range(0..4))
                .map(|_| format!("family:app{}", rng.random_range(0..GROUPS)))
                .collect(),
            ..Candidate::default()
        })
        .collect()
}

fn strategy(kind: &str, field: Option<&str>) -> PlacementStrategy {
    PlacementStrategy::try_from(RawStrategy {
        kind: Some(kind.into()),
        field: field.map(Into::into),
    })
    .expect("valid strategy")
}

fn member_of(expr: &str) -> PlacementConstraint {
    PlacementConstraint::try_from(RawConstraint {
        kind: Some("memberOf".into()),
        expression: Some(expr.into()),
    })
    .expect("valid constraint")
}

fn task(n: usize) -> TaskToPlace {
    TaskToPlace {
        need: Resources {
            cpu: 64,
            memory_mib: 128,
        },
        group: format!("family:app{}", n % GROUPS),
        host_ports: vec![],
    }
}

struct Run {
    placed: usize,
    failed: usize,
    elapsed: Duration,
}

/// RunTask-sized calls; the fleet keeps what each call placed.
fn batched(
    base: &[Candidate],
    s: &[PlacementStrategy],
    c: &[PlacementConstraint],
    rng: &mut StdRng,
) -> Run {
    let mut fleet = base.to_vec();
    let mut run = Run {
        placed: 0,
        failed: 0,
        elapsed: Duration::ZERO,
    };
    for b in 0..BATCHED_TASKS / BATCH {
        // One group per call, as one RunTask has.
        let tasks = vec![task(b); BATCH];
        let start = Instant::now();
        let out = place(&tasks, &fleet, s, c, rng);
        run.elapsed += start.elapsed();
        for (t, p) in tasks.iter().zip(out) {
            match p {
                Ok(i) => {
                    fleet[i].remaining = fleet[i].remaining.saturating_sub(t.need);
                    fleet[i].task_groups.push(t.group.clone());
                    run.placed += 1;
                }
                Err(_) => run.failed += 1,
            }
        }
    }
    run
}

fn one_call(
    base: &[Candidate],
    s: &[PlacementStrategy],
    c: &[PlacementConstraint],
    rng: &mut StdRng,
) -> Run {
    let tasks: Vec<_> = (0..ONE_CALL_TASKS).map(task).collect();
    let start = Instant::now();
    let out = place(&tasks, base, s, c, rng);
    let elapsed = start.elapsed();
    let placed = out.iter().filter(|p| p.is_ok()).count();
    Run {
        placed,
        failed: out.len() - placed,
        elapsed,
    }
}

fn rate(r: &Run) -> f64 {
    let tasks = u32::try_from(r.placed + r.failed).expect("a bench-sized count");
    f64::from(tasks) / r.elapsed.as_secs_f64()
}

fn main() {
    let mut rng = StdRng::seed_from_u64(42);
    let base = fleet(&mut rng);
    let scenarios: Vec<(&str, Vec<PlacementStrategy>, Vec<PlacementConstraint>)> = vec![
        ("default (spread by memory)", vec![], vec![]),
        (
            "binpack memory",
            vec![strategy("binpack", Some("memory"))],
            vec![],
        ),
        (
            "binpack cpu",
            vec![strategy("binpack", Some("cpu"))],
            vec![],
        ),
        (
            "spread instanceId",
            vec![strategy("spread", Some("instanceId"))],
            vec![],
        ),
        (
            "spread attribute:ecs.availability-zone",
            vec![strategy("spread", Some("attribute:ecs.availability-zone"))],
            vec![],
        ),
        ("random", vec![strategy("random", None)], vec![]),
        (
            "spread AZ > binpack memory",
            vec![
                strategy("spread", Some("attribute:ecs.availability-zone")),
                strategy("binpack", Some("memory")),
            ],
            vec![],
        ),
        (
            "spread AZ > spread instanceId + memberOf + distinctInstance",
            vec![
                strategy("spread", Some("attribute:ecs.availability-zone")),
                strategy("spread", Some("instanceId")),
            ],
            vec![
                member_of("attribute:ecs.instance-type =~ m5.* and attribute:stack != canary"),
                PlacementConstraint::DistinctInstance,
            ],
        ),
        (
            "binpack memory + memberOf task:group (re-evaluated per task)",
            vec![strategy("binpack", Some("memory"))],
            vec![member_of("not(task:group == family:app0)")],
        ),
    ];
    println!(
        "placement over {INSTANCES} instances; {BATCHED_TASKS} tasks in RunTask calls of {BATCH}, and {ONE_CALL_TASKS} in one call"
    );
    println!(
        "{:<62} {:>14} {:>14} {:>9}",
        "strategy", "calls of 10/s", "one call/s", "refused"
    );
    let mut slowest = f64::INFINITY;
    for (name, s, c) in &scenarios {
        let b = batched(&base, s, c, &mut rng);
        let o = one_call(&base, s, c, &mut rng);
        slowest = slowest.min(rate(&b)).min(rate(&o));
        println!(
            "{name:<62} {:>14.0} {:>14.0} {:>9}",
            rate(&b),
            rate(&o),
            b.failed + o.failed
        );
    }
    println!("slowest: {slowest:.0} placements/s (target: at least 10,000)");
}
