//! The reconciler of a service whose task sets an external controller drives: each task
//! set is kept at its computed count (newest tasks stop first when it shrinks), a
//! DRAINING one is emptied and then leaves, and the controller does the rest.

use super::{push_stops, stop_lost, unable_to_place, Step};
use crate::model::service::ServiceStatus;
use crate::model::task_set::TaskSetStatus;
use crate::model::{DesiredStatus, Service, Task};
use crate::services::hosts::Fleet;

pub fn reconcile(service: &Service, tasks: &[Task], fleet: &Fleet) -> Vec<Step> {
    let name = &service.name;
    let mut steps = Vec::new();
    let on_lost = stop_lost(&mut steps, name, tasks, fleet);
    let active = service.status == ServiceStatus::Active;
    let live = |t: &&Task| !t.is_stopped() && !on_lost.contains(t.id.as_str());
    let mut to_stop: Vec<(&Task, String)> = Vec::new();
    let mut unplaced = false;
    for ts in &service.task_sets {
        let mine: Vec<&Task> = tasks
            .iter()
            .filter(|t| t.started_by.as_deref() == Some(ts.id.as_str()))
            .filter(live)
            .collect();
        let mut wanted: Vec<&Task> = mine
            .iter()
            .copied()
            .filter(|t| t.desired_status != DesiredStatus::Stopped)
            .collect();
        let draining = !active || ts.status == TaskSetStatus::Draining;
        let target = if draining {
            0
        } else {
            ts.computed_desired_count as usize
        };
        if wanted.len() > target {
            wanted.sort_by_key(|t| std::cmp::Reverse(t.created_at_ms));
            let reason = format!("Scaling activity initiated by (task set {})", ts.id);
            let surplus = wanted.len() - target;
            to_stop.extend(
                wanted
                    .into_iter()
                    .take(surplus)
                    .map(|t| (t, reason.clone())),
            );
        } else if wanted.len() < target {
            if fleet.can_place {
                steps.push(Step::Start {
                    deployment: ts.id.clone(),
                    count: u32::try_from(target - wanted.len()).unwrap_or(u32::MAX),
                });
            } else {
                unplaced = true;
            }
        }
        if ts.status == TaskSetStatus::Draining && mine.is_empty() {
            steps.push(Step::RetireTaskSet {
                task_set: ts.id.clone(),
            });
        }
    }
    push_stops(&mut steps, name, &to_stop);
    let msg = unable_to_place(name);
    if unplaced && service.events.first().map(|e| &e.message) != Some(&msg) {
        steps.push(Step::Event(msg));
    }
    // Deleted, and every task stopped: INACTIVE.
    if !active && !tasks.iter().any(|t| live(&t)) {
        steps.push(Step::Inactive);
    }
    steps
}
