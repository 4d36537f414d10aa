//! Placement: which container instance runs a task. Pure functions.

use crate::model::Resources;

/// A container instance as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub arn: String,
    pub remaining: Resources,
}

/// Why an instance could not take a task, in ECS's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub arn: String,
    pub reason: &'static str,
}

/// Places `count` tasks each needing `need`. Returns, per task, the chosen
/// instance or the failures that stopped it, as `RunTask` reports them.
///
/// The instance with the most remaining memory wins (ties: most CPU, then
/// ARN), which spreads tasks over the fleet and keeps placement deterministic.
pub fn place(
    need: Resources,
    candidates: &[Candidate],
    count: usize,
) -> Vec<Result<String, Vec<Failure>>> {
    let mut pool: Vec<Candidate> = candidates.to_vec();
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let mut failures = Vec::new();
        let mut best: Option<usize> = None;
        for (i, c) in pool.iter().enumerate() {
            if c.remaining.cpu < need.cpu {
                failures.push(Failure {
                    arn: c.arn.clone(),
                    reason: "RESOURCE:CPU",
                });
            } else if c.remaining.memory_mib < need.memory_mib {
                failures.push(Failure {
                    arn: c.arn.clone(),
                    reason: "RESOURCE:MEMORY",
                });
            } else if best.is_none_or(|b| better(c, &pool[b])) {
                best = Some(i);
            }
        }
        match best {
            Some(i) => {
                pool[i].remaining = pool[i].remaining.saturating_sub(need);
                out.push(Ok(pool[i].arn.clone()));
            }
            None => out.push(Err(failures)),
        }
    }
    out
}

fn better(a: &Candidate, b: &Candidate) -> bool {
    (
        a.remaining.memory_mib,
        a.remaining.cpu,
        std::cmp::Reverse(&a.arn),
    ) > (
        b.remaining.memory_mib,
        b.remaining.cpu,
        std::cmp::Reverse(&b.arn),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(arn: &str, cpu: i64, mem: i64) -> Candidate {
        Candidate {
            arn: arn.into(),
            remaining: Resources {
                cpu,
                memory_mib: mem,
            },
        }
    }

    #[test]
    fn spreads_by_remaining_memory() {
        let need = Resources {
            cpu: 256,
            memory_mib: 512,
        };
        let got = place(need, &[cand("a", 2048, 1024), cand("b", 2048, 2048)], 3);
        assert_eq!(got, vec![Ok("b".into()), Ok("b".into()), Ok("a".into())]);
    }

    #[test]
    fn reports_resource_failures_per_instance() {
        let need = Resources {
            cpu: 1024,
            memory_mib: 512,
        };
        let got = place(need, &[cand("a", 512, 4096), cand("b", 4096, 256)], 1);
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
        let need = Resources {
            cpu: 0,
            memory_mib: 600,
        };
        let got = place(need, &[cand("a", 1024, 1000)], 2);
        assert_eq!(got[0], Ok("a".into()));
        assert_eq!(
            got[1],
            Err(vec![Failure {
                arn: "a".into(),
                reason: "RESOURCE:MEMORY"
            }])
        );
    }

    #[test]
    fn no_candidates_no_failures_listed() {
        assert_eq!(place(Resources::default(), &[], 1), vec![Err(vec![])]);
    }
}
