//! Placement examples, then property tests over random fleets.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::model::placement::{RawConstraint, RawStrategy};

fn cand(arn: &str, cpu: i64, mem: i64) -> Candidate {
    Candidate {
        arn: arn.into(),
        remaining: Resources {
            cpu,
            memory_mib: mem,
        },
        ..Candidate::default()
    }
}

fn with_attrs(mut c: Candidate, attrs: &[(&str, &str)]) -> Candidate {
    c.attributes = attrs
        .iter()
        .map(|(k, v)| ((*k).to_string(), Some((*v).to_string())))
        .collect();
    c
}

fn tasks(n: usize, cpu: i64, mem: i64) -> Vec<TaskToPlace> {
    vec![
        TaskToPlace {
            need: Resources {
                cpu,
                memory_mib: mem
            },
            group: "family:web".into(),
            host_ports: vec![],
        };
        n
    ]
}

#[test]
fn a_taken_static_port_refuses_the_instance() {
    use crate::model::ports::Protocol::{Tcp, Udp};
    let mut a = cand("a", 4096, 4096);
    a.used_ports = [(Tcp, 22), (Tcp, 8080)].into();
    let b = cand("b", 1024, 1024);
    let mut want = tasks(3, 0, 10);
    for t in &mut want {
        t.host_ports = vec![(Tcp, 8080), (Udp, 53)];
    }
    let placed = place(&want, &[a, b], &[], &[], &mut StdRng::seed_from_u64(1));
    // a has 8080 in use; b takes the first task, and then it holds the ports too.
    assert_eq!(placed[0], Ok(1));
    let reasons = |r: &Result<usize, Vec<Failure>>| -> Vec<&'static str> {
        r.as_ref().unwrap_err().iter().map(|f| f.reason).collect()
    };
    assert_eq!(reasons(&placed[1]), ["RESOURCE:PORTS", "RESOURCE:PORTS"]);
    // Only UDP asked for, and taken: PORTS_UDP.
    let mut c = cand("c", 1024, 1024);
    c.used_ports = [(Udp, 53)].into();
    let mut want = tasks(1, 0, 10);
    want[0].host_ports = vec![(Udp, 53)];
    let placed = place(&want, &[c], &[], &[], &mut StdRng::seed_from_u64(1));
    assert_eq!(reasons(&placed[0]), ["RESOURCE:PORTS_UDP"]);
    // No ports asked for: ports never refuse.
    let mut d = cand("d", 1024, 1024);
    d.used_ports = [(Tcp, 80)].into();
    let placed = place(
        &tasks(1, 0, 10),
        &[d],
        &[],
        &[],
        &mut StdRng::seed_from_u64(1),
    );
    assert_eq!(placed[0], Ok(0));
}

fn strategy(kind: &str, field: Option<&str>) -> PlacementStrategy {
    PlacementStrategy::try_from(RawStrategy {
        kind: Some(kind.into()),
        field: field.map(Into::into),
    })
    .unwrap()
}

fn member_of(expr: &str) -> PlacementConstraint {
    PlacementConstraint::try_from(RawConstraint {
        kind: Some("memberOf".into()),
        expression: Some(expr.into()),
    })
    .unwrap()
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

/// ARNs chosen, or "!" + the failure reasons.
fn run(
    tasks: &[TaskToPlace],
    fleet: &[Candidate],
    s: &[PlacementStrategy],
    c: &[PlacementConstraint],
) -> Vec<String> {
    place(tasks, fleet, s, c, &mut rng())
        .into_iter()
        .map(|p| match p {
            Ok(i) => fleet[i].arn.clone(),
            Err(fs) => {
                let reasons: Vec<_> = fs
                    .iter()
                    .map(|f| format!("{}={}", f.arn, f.reason))
                    .collect();
                format!("!{}", reasons.join(","))
            }
        })
        .collect()
}

#[test]
fn default_spreads_by_remaining_memory() {
    let got = run(
        &tasks(3, 256, 512),
        &[cand("a", 2048, 1024), cand("b", 2048, 2048)],
        &[],
        &[],
    );
    assert_eq!(got, ["b", "b", "a"]);
}

#[test]
fn reports_resource_failures_per_instance() {
    let got = place(
        &tasks(1, 1024, 512),
        &[cand("a", 512, 4096), cand("b", 4096, 256)],
        &[],
        &[],
        &mut rng(),
    );
    assert_eq!(
        got,
        vec![Err(vec![
            Failure {
                arn: "a".into(),
                reason: "RESOURCE:CPU"
            },
            Failure {
                arn: "b".into(),
                reason: "RESOURCE:MEMORY"
            },
        ])]
    );
}

#[test]
fn later_tasks_see_earlier_reservations() {
    let got = run(&tasks(2, 0, 600), &[cand("a", 1024, 1000)], &[], &[]);
    assert_eq!(got, ["a", "!a=RESOURCE:MEMORY"]);
}

#[test]
fn no_candidates_no_failures_listed() {
    assert_eq!(run(&tasks(1, 0, 0), &[], &[], &[]), ["!"]);
}

#[test]
fn binpack_fills_the_fullest_instance_first() {
    let fleet = [
        cand("a", 4096, 4096),
        cand("b", 4096, 1536),
        cand("c", 1024, 8192),
    ];
    let mem = [strategy("binpack", Some("memory"))];
    assert_eq!(
        run(&tasks(4, 256, 512), &fleet, &mem, &[]),
        ["b", "b", "b", "a"]
    );
    let cpu = [strategy("binpack", Some("cpu"))];
    assert_eq!(
        run(&tasks(5, 256, 512), &fleet, &cpu, &[]),
        ["c", "c", "c", "c", "a"]
    );
}

#[test]
fn spread_by_instance_counts_the_group_already_there() {
    let mut busy = cand("a", 4096, 4096);
    busy.task_groups = vec!["family:web".into(), "family:other".into()];
    let mut other = cand("b", 4096, 4096);
    other.task_groups = vec!["family:other".into(); 3];
    let fleet = [busy, other, cand("c", 4096, 4096)];
    let s = [strategy("spread", Some("instanceId"))];
    assert_eq!(run(&tasks(4, 1, 1), &fleet, &s, &[]), ["b", "c", "a", "b"]);
}

#[test]
fn spread_by_zone_then_binpack_within_it() {
    let zone = |arn: &str, az: &str, mem: i64| {
        with_attrs(cand(arn, 4096, mem), &[("ecs.availability-zone", az)])
    };
    let mut fleet = vec![
        zone("a1", "a", 4096),
        zone("a2", "a", 2048),
        zone("b1", "b", 4096),
        zone("b2", "b", 1024),
    ];
    // Zone b already runs one of the group.
    fleet[2].task_groups = vec!["family:web".into()];
    let s = [
        strategy("spread", Some("attribute:ecs.availability-zone")),
        strategy("binpack", Some("memory")),
    ];
    assert_eq!(
        run(&tasks(5, 1, 512), &fleet, &s, &[]),
        ["a2", "b2", "a2", "b2", "a2"]
    );
    // Instances without the attribute form a bucket of their own.
    fleet.push(cand("none", 4096, 4096));
    assert_eq!(run(&tasks(2, 1, 512), &fleet, &s, &[]), ["a2", "none"]);
}

#[test]
fn random_is_deterministic_for_a_seed_and_covers_the_fleet() {
    let fleet: Vec<_> = (0..4)
        .map(|i| cand(&format!("i{i}"), 1 << 20, 1 << 20))
        .collect();
    let s = [strategy("random", None)];
    let a = run(&tasks(40, 1, 1), &fleet, &s, &[]);
    assert_eq!(a, run(&tasks(40, 1, 1), &fleet, &s, &[]));
    for c in &fleet {
        assert!(a.contains(&c.arn), "{a:?}");
    }
    let other = place(
        &tasks(40, 1, 1),
        &fleet,
        &s,
        &[],
        &mut StdRng::seed_from_u64(8),
    );
    let other: Vec<_> = other
        .into_iter()
        .map(|p| fleet[p.unwrap()].arn.clone())
        .collect();
    assert_ne!(a, other);
}

#[test]
fn distinct_instance_keeps_the_group_apart() {
    let mut fleet = vec![
        cand("a", 4096, 4096),
        cand("b", 4096, 4096),
        cand("c", 4096, 4096),
    ];
    fleet[0].task_groups = vec!["family:web".into()];
    let c = [PlacementConstraint::DistinctInstance];
    assert_eq!(
        run(&tasks(3, 1, 1), &fleet, &[], &c),
        [
            "b",
            "c",
            "!a=DistinctInstance,b=DistinctInstance,c=DistinctInstance"
        ]
    );
    // Another group is not kept apart from web.
    let mut db = tasks(1, 1, 1);
    db[0].group = "family:db".into();
    assert_eq!(run(&db, &fleet, &[], &c), ["a"]);
}

#[test]
fn member_of_filters_by_attribute_and_task_group() {
    let fleet = [
        with_attrs(cand("t2", 4096, 4096), &[("ecs.instance-type", "t2.micro")]),
        with_attrs(cand("m5", 4096, 8192), &[("ecs.instance-type", "m5.large")]),
        cand("small", 64, 64),
    ];
    let t2 = [member_of("attribute:ecs.instance-type =~ t2.*")];
    assert_eq!(run(&tasks(1, 128, 128), &fleet, &[], &t2), ["t2"]);
    // Resources are checked before constraints, one reason per instance.
    let none = [member_of("attribute:ecs.instance-type == c5.xlarge")];
    assert_eq!(
        run(&tasks(1, 128, 128), &fleet, &[], &none),
        ["!t2=MemberOf,m5=MemberOf,small=RESOURCE:CPU"]
    );
    // Affinity: next to a db task.
    let near_db = [member_of("task:group == service:db")];
    assert_eq!(
        run(&tasks(1, 1, 1), &fleet, &[], &near_db),
        ["!t2=MemberOf,m5=MemberOf,small=MemberOf"]
    );
    let mut db_on_t2 = fleet.clone();
    db_on_t2[0].task_groups = vec!["service:db".into()];
    assert_eq!(run(&tasks(2, 1, 1), &db_on_t2, &[], &near_db), ["t2", "t2"]);
    // Anti-affinity with its own group sees tasks this call placed.
    let apart = [member_of("not(task:group == family:web)")];
    assert_eq!(
        run(&tasks(3, 1, 1), &fleet, &[], &apart),
        ["m5", "t2", "small"]
    );
}

// ---- properties over random fleets ----

const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];
const TYPES: [&str; 4] = ["t2.micro", "t2.large", "m5.large", "c5.xlarge"];
const GROUPS: [&str; 3] = ["family:web", "family:db", "service:api"];

fn random_fleet(rng: &mut StdRng) -> Vec<Candidate> {
    let n = rng.random_range(0..40);
    (0..n)
        .map(|i| {
            let mut c = with_attrs(
                cand(
                    &format!("ci-{i:03}"),
                    rng.random_range(0..8) * 512,
                    rng.random_range(0..16) * 512,
                ),
                &[
                    ("ecs.availability-zone", ZONES[rng.random_range(0..3)]),
                    ("ecs.instance-type", TYPES[rng.random_range(0..4)]),
                ],
            );
            if rng.random_bool(0.2) {
                c.attributes.push(("stack".into(), None));
            }
            c.task_groups = (0..rng.random_range(0..3))
                .map(|_| GROUPS[rng.random_range(0..3)].to_string())
                .collect();
            c
        })
        .collect()
}

fn random_tasks(rng: &mut StdRng) -> Vec<TaskToPlace> {
    (0..rng.random_range(1..30))
        .map(|_| TaskToPlace {
            need: Resources {
                cpu: rng.random_range(0..5) * 256,
                memory_mib: rng.random_range(1..9) * 256,
            },
            group: GROUPS[rng.random_range(0..3)].to_string(),
            host_ports: vec![],
        })
        .collect()
}

fn random_rules(rng: &mut StdRng) -> (Vec<PlacementStrategy>, Vec<PlacementConstraint>) {
    let all_strategies = [
        strategy("binpack", Some("cpu")),
        strategy("binpack", Some("memory")),
        strategy("spread", Some("instanceId")),
        strategy("spread", Some("attribute:ecs.availability-zone")),
        strategy("spread", Some("attribute:stack")),
        strategy("random", None),
    ];
    let all_constraints = [
        PlacementConstraint::DistinctInstance,
        member_of("attribute:ecs.instance-type =~ t2.*"),
        member_of("attribute:ecs.availability-zone in [us-east-1a, us-east-1b]"),
        member_of("not (task:group == family:db)"),
        member_of("task:group == family:web or attribute:stack exists"),
        member_of("attribute:ecs.instance-type != c5.xlarge and attribute:x !exists"),
    ];
    let s = (0..rng.random_range(0..4))
        .map(|_| all_strategies[rng.random_range(0..all_strategies.len())].clone())
        .collect();
    let c = (0..rng.random_range(0..3))
        .map(|_| all_constraints[rng.random_range(0..all_constraints.len())].clone())
        .collect();
    (s, c)
}

/// Replays a placement and checks every choice against the fleet as it was
/// at that moment: capacity never goes negative and every constraint holds.
#[test]
fn property_no_instance_over_capacity_and_constraints_hold() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut placed_total = 0;
    for round in 0..500 {
        let fleet = random_fleet(&mut rng);
        let work = random_tasks(&mut rng);
        let (s, c) = random_rules(&mut rng);
        let got = place(&work, &fleet, &s, &c, &mut rng);
        assert_eq!(got.len(), work.len());
        let mut now = fleet.clone();
        for (task, p) in work.iter().zip(got) {
            match p {
                Ok(i) => {
                    let inst = &mut now[i];
                    assert!(
                        inst.remaining.cpu >= task.need.cpu
                            && inst.remaining.memory_mib >= task.need.memory_mib,
                        "round {round}: {} over capacity",
                        inst.arn
                    );
                    for rule in &c {
                        let holds = match rule {
                            PlacementConstraint::DistinctInstance => {
                                !inst.task_groups.contains(&task.group)
                            }
                            PlacementConstraint::MemberOf(e) => e.eval(&*inst),
                        };
                        assert!(holds, "round {round}: {rule:?} broken on {}", inst.arn);
                    }
                    inst.remaining = inst.remaining.saturating_sub(task.need);
                    inst.task_groups.push(task.group.clone());
                    placed_total += 1;
                }
                Err(failures) => {
                    // Refused only when no instance could take it, each named once.
                    assert_eq!(failures.len(), now.len(), "round {round}");
                    for (f, inst) in failures.iter().zip(&now) {
                        assert_eq!(f.arn, inst.arn);
                    }
                }
            }
        }
        assert!(now
            .iter()
            .all(|i| i.remaining.cpu >= 0 && i.remaining.memory_mib >= 0));
    }
    assert!(
        placed_total > 1000,
        "the generator places something: {placed_total}"
    );
}

/// Spreading over instances never leaves one instance two tasks ahead of
/// another that could have taken the task.
#[test]
fn property_spread_by_instance_stays_even_on_an_empty_uniform_fleet() {
    let mut rng = StdRng::seed_from_u64(11);
    for _ in 0..50 {
        let n = rng.random_range(1..20);
        let fleet: Vec<_> = (0..n)
            .map(|i| cand(&format!("i{i:02}"), 1 << 20, 1 << 20))
            .collect();
        let k = rng.random_range(1..100);
        let got = place(
            &tasks(k, 1, 1),
            &fleet,
            &[strategy("spread", Some("host"))],
            &[],
            &mut rng,
        );
        let mut per = vec![0; n];
        for p in got {
            per[p.unwrap()] += 1;
        }
        let (lo, hi) = (per.iter().min().unwrap(), per.iter().max().unwrap());
        assert!(hi - lo <= 1, "{per:?}");
    }
}
