//! Placement: which container instance runs each task. Pure functions:
//! constraints filter the candidates, strategies order what is left, and
//! the randomness `random` needs is handed in.

mod capacity;
mod constraint;
mod strategy;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};

use rand::Rng;

use crate::model::placement::{PlacementConstraint, PlacementStrategy};
use crate::model::ports::HostPort;
use crate::model::query::Facts;
use crate::model::Resources;

pub use capacity::{
    next_tasks_by_capacity_provider, split_by_capacity_provider,
    surplus_tasks_by_capacity_provider, validate_strategy, CapacityProviderShare,
};

/// A container instance as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Candidate {
    pub arn: String,
    pub remaining: Resources,
    /// What `memberOf` and `spread` read (name, optional value).
    pub attributes: Vec<(String, Option<String>)>,
    /// The group of each task already on the instance, one entry per task.
    pub task_groups: Vec<String>,
    /// Host ports reserved or held by tasks on the instance.
    pub used_ports: BTreeSet<HostPort>,
}

/// A task waiting for an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskToPlace {
    pub need: Resources,
    /// `family:NAME`, `service:NAME` or the caller's `group`: what `spread`
    /// counts and `distinctInstance` keeps apart.
    pub group: String,
    /// Static host ports the task needs free.
    pub host_ports: Vec<HostPort>,
}

/// Why an instance could not take a task, in ECS's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub arn: String,
    pub reason: &'static str,
}

/// Per task, in order: the index of the chosen candidate, or why each
/// candidate was refused (as `RunTask` `failures` list them).
pub type Placement = Vec<Result<usize, Vec<Failure>>>;

/// Places `tasks` in order; each sees what earlier ones reserved.
///
/// With no strategy the instance with the most remaining memory wins (ties:
/// most CPU, then lowest ARN), spreading tasks over the fleet. Strategies
/// chain as in ECS: each keeps only the candidates it ranks best, and the
/// next one chooses among those; ties left at the end go to the lowest ARN.
pub fn place<R: Rng + ?Sized>(
    tasks: &[TaskToPlace],
    candidates: &[Candidate],
    strategies: &[PlacementStrategy],
    constraints: &[PlacementConstraint],
    rng: &mut R,
) -> Placement {
    let mut fleet = Fleet::new(candidates);
    let checks = constraint::Checks::new(constraints, candidates);
    let mut chain = strategy::Chain::new(strategies, candidates);
    let mut pool = Vec::with_capacity(candidates.len());
    let mut refused: Vec<(usize, &'static str)> = Vec::new();
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        pool.clear();
        refused.clear();
        fleet.ensure_group(&task.group);
        let counts = &fleet.groups[task.group.as_str()];
        for (i, left) in fleet.remaining.iter().enumerate() {
            let reason = if left.cpu < task.need.cpu {
                Some("RESOURCE:CPU")
            } else if left.memory_mib < task.need.memory_mib {
                Some("RESOURCE:MEMORY")
            } else if let Some((protocol, _)) = task
                .host_ports
                .iter()
                .find(|p| fleet.used_ports[i].contains(p))
            {
                Some(protocol.resource_failure())
            } else {
                checks.refuse(i, counts[i], &fleet.view(i))
            };
            match reason {
                Some(r) => refused.push((i, r)),
                None => pool.push(i),
            }
        }
        if pool.is_empty() {
            out.push(Err(refused
                .iter()
                .map(|&(i, reason)| Failure {
                    arn: candidates[i].arn.clone(),
                    reason,
                })
                .collect()));
            continue;
        }
        let chosen = chain.choose(&mut pool, &fleet.remaining, counts, rng);
        fleet.take(chosen, task);
        out.push(Ok(chosen));
    }
    out
}

/// The candidates as this call changes them.
struct Fleet<'a> {
    candidates: &'a [Candidate],
    remaining: Vec<Resources>,
    /// Per task group: how many of its tasks each instance runs.
    groups: HashMap<String, Vec<u32>>,
    /// Groups of the tasks this call placed, per instance.
    added: Vec<Vec<String>>,
    used_ports: Vec<BTreeSet<HostPort>>,
}

impl<'a> Fleet<'a> {
    fn new(candidates: &'a [Candidate]) -> Self {
        Self {
            candidates,
            remaining: candidates.iter().map(|c| c.remaining).collect(),
            groups: HashMap::new(),
            added: vec![Vec::new(); candidates.len()],
            used_ports: candidates.iter().map(|c| c.used_ports.clone()).collect(),
        }
    }

    fn ensure_group(&mut self, group: &str) {
        if !self.groups.contains_key(group) {
            let counts = self
                .candidates
                .iter()
                .map(|c| {
                    let n = c.task_groups.iter().filter(|g| *g == group).count();
                    u32::try_from(n).unwrap_or(u32::MAX)
                })
                .collect();
            self.groups.insert(group.to_string(), counts);
        }
    }

    fn view(&self, i: usize) -> InstanceView<'_> {
        InstanceView {
            candidate: &self.candidates[i],
            added: &self.added[i],
        }
    }

    fn take(&mut self, i: usize, task: &TaskToPlace) {
        self.remaining[i] = self.remaining[i].saturating_sub(task.need);
        if let Some(counts) = self.groups.get_mut(task.group.as_str()) {
            counts[i] += 1;
        }
        self.added[i].push(task.group.clone());
        self.used_ports[i].extend(task.host_ports.iter().copied());
    }
}

/// One instance as the query language sees it mid-placement.
struct InstanceView<'a> {
    candidate: &'a Candidate,
    added: &'a [String],
}

impl Facts for InstanceView<'_> {
    fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.candidate.attributes.as_slice().attribute(name)
    }

    fn any_task_group(&self, f: &mut dyn FnMut(&str) -> bool) -> bool {
        self.candidate
            .task_groups
            .iter()
            .chain(self.added)
            .any(|g| f(g))
    }
}

impl Facts for Candidate {
    fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.attributes.as_slice().attribute(name)
    }

    fn any_task_group(&self, f: &mut dyn FnMut(&str) -> bool) -> bool {
        self.task_groups.iter().any(|g| f(g))
    }
}
