//! Placement constraints: which candidates a task may go to at all.

use super::{Candidate, InstanceView};
use crate::model::placement::PlacementConstraint;

/// The constraints of one placement call, with the `memberOf` answers that
/// depend only on attributes worked out once for the whole fleet.
pub(super) struct Checks<'a> {
    constraints: &'a [PlacementConstraint],
    /// Per constraint: the answer for every candidate, when it cannot change
    /// as tasks are placed; `None` for `distinctInstance` and for
    /// expressions over `task:group`.
    fixed: Vec<Option<Vec<bool>>>,
}

impl<'a> Checks<'a> {
    pub(super) fn new(constraints: &'a [PlacementConstraint], candidates: &[Candidate]) -> Self {
        let fixed = constraints
            .iter()
            .map(|c| match c {
                PlacementConstraint::MemberOf(e) if !e.uses_task_groups() => {
                    Some(candidates.iter().map(|c| e.eval(c)).collect())
                }
                _ => None,
            })
            .collect();
        Self { constraints, fixed }
    }

    /// The first constraint candidate `i` breaks, as ECS names it; `same_group`
    /// is how many tasks of the task's group it already runs.
    pub(super) fn refuse(
        &self,
        i: usize,
        same_group: u32,
        view: &InstanceView<'_>,
    ) -> Option<&'static str> {
        self.constraints
            .iter()
            .zip(&self.fixed)
            .find_map(|(c, fixed)| {
                let holds = match (c, fixed) {
                    (_, Some(answers)) => answers[i],
                    (PlacementConstraint::DistinctInstance, None) => same_group == 0,
                    (PlacementConstraint::MemberOf(e), None) => e.eval(view),
                };
                (!holds).then_some(match c {
                    PlacementConstraint::DistinctInstance => "DistinctInstance",
                    PlacementConstraint::MemberOf(_) => "MemberOf",
                })
            })
    }
}
