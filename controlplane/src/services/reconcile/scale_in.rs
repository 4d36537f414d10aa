//! Which of a deployment's tasks a scale-in stops: the least wanted ones
//! (unhealthy, then newest), taken from providers so that what is left
//! keeps the deployment's capacity provider strategy.

use crate::model::Task;
use crate::scheduler::{surplus_tasks_by_capacity_provider, CapacityProviderShare};

/// `surplus` tasks out of `tasks` (ordered least wanted first).
pub fn victims<'a>(
    strategy: &[CapacityProviderShare],
    tasks: &[&'a Task],
    surplus: usize,
) -> Vec<&'a Task> {
    let provider_of = |t: &Task| {
        strategy
            .iter()
            .position(|p| t.capacity_provider_name.as_deref() == Some(p.provider.as_str()))
    };
    let mut have = vec![0u32; strategy.len()];
    // Tasks outside the strategy go first.
    let mut chosen: Vec<&Task> = Vec::new();
    for t in tasks {
        match provider_of(t) {
            Some(i) => have[i] += 1,
            None if !strategy.is_empty() && chosen.len() < surplus => chosen.push(t),
            None => {}
        }
    }
    let left = u32::try_from(surplus - chosen.len()).unwrap_or(u32::MAX);
    let mut quota = if strategy.is_empty() {
        vec![]
    } else {
        surplus_tasks_by_capacity_provider(strategy, &have, left).unwrap_or_default()
    };
    if quota.is_empty() {
        // No strategy: simply the least wanted.
        return tasks.iter().copied().take(surplus).collect();
    }
    for t in tasks {
        if let Some(i) = provider_of(t) {
            if quota[i] > 0 {
                quota[i] -= 1;
                chosen.push(t);
            }
        }
    }
    chosen
}
