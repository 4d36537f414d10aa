//! Capacity provider strategies: how many of a request's tasks each
//! provider (`FARGATE`, `FARGATE_SPOT`, a named host pool) runs.

pub use crate::model::capacity_provider::CapacityProviderShare;

/// At most this many providers in one strategy, as in ECS.
pub const MAX_STRATEGY_PROVIDERS: usize = 20;

/// Checks a strategy against the providers associated with its cluster,
/// with ECS's limits: 1-20 distinct providers, base 0-100000 (one
/// provider at most), weight 0-1000.
pub fn validate_strategy(
    strategy: &[CapacityProviderShare],
    associated: &[String],
) -> Result<(), String> {
    if strategy.len() > MAX_STRATEGY_PROVIDERS {
        return Err(format!(
            "A capacity provider strategy can contain at most {MAX_STRATEGY_PROVIDERS} capacity providers, got {}.",
            strategy.len()
        ));
    }
    for (n, s) in strategy.iter().enumerate() {
        if s.base > 100_000 {
            return Err(format!(
                "The base of capacity provider '{}' must be between 0 and 100000, got {}.",
                s.provider, s.base
            ));
        }
        if s.weight > 1000 {
            return Err(format!(
                "The weight of capacity provider '{}' must be between 0 and 1000, got {}.",
                s.provider, s.weight
            ));
        }
        if strategy[..n].iter().any(|o| o.provider == s.provider) {
            return Err(format!(
                "The capacity provider strategy names '{}' more than once.",
                s.provider
            ));
        }
        if !associated.contains(&s.provider) {
            return Err(format!(
                "The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again. ('{}' is not associated.)",
                s.provider
            ));
        }
    }
    if strategy.iter().filter(|s| s.base > 0).count() > 1 {
        return Err(
            "Only one capacity provider in a capacityProviderStrategy can have a base.".into(),
        );
    }
    Ok(())
}

/// Splits `count` tasks over the strategy as ECS does: bases first, then
/// the rest in proportion to the weights. Whole shares go by weight; the
/// few left over go one each to the heaviest providers (ties: the earlier
/// one), so with weights 1 and 3 the first tasks past the base go to the
/// weight-3 provider. Returns (provider, tasks) in strategy order.
pub fn split_by_capacity_provider(
    strategy: &[CapacityProviderShare],
    count: u32,
) -> Result<Vec<(String, u32)>, String> {
    if strategy.is_empty() {
        return Err("capacityProviderStrategy must name at least one capacity provider.".into());
    }
    if strategy.iter().filter(|s| s.base > 0).count() > 1 {
        return Err(
            "Only one capacity provider in a capacityProviderStrategy can have a base.".into(),
        );
    }
    let mut split: Vec<u32> = vec![0; strategy.len()];
    let mut left = count;
    for (n, s) in split.iter_mut().zip(strategy) {
        *n = s.base.min(left);
        left -= *n;
    }
    let total_weight: u64 = strategy.iter().map(|s| u64::from(s.weight)).sum();
    if left > 0 {
        if total_weight == 0 {
            return Err(
                "capacityProviderStrategy needs a provider with a weight above 0 for tasks beyond the base."
                    .into(),
            );
        }
        let mut given = 0;
        for (n, s) in split.iter_mut().zip(strategy) {
            let share = u64::from(left) * u64::from(s.weight) / total_weight;
            let share = u32::try_from(share).unwrap_or(u32::MAX);
            *n += share;
            given += share;
        }
        let mut heaviest: Vec<usize> = (0..strategy.len())
            .filter(|&i| strategy[i].weight > 0)
            .collect();
        heaviest.sort_by_key(|&i| std::cmp::Reverse(strategy[i].weight));
        for &i in heaviest.iter().cycle().take((left - given) as usize) {
            split[i] += 1;
        }
    }
    Ok(strategy
        .iter()
        .zip(split)
        .map(|(s, n)| (s.provider.clone(), n))
        .collect())
}

/// Which providers the next `count` tasks of a service go to, given the
/// tasks each provider already runs for it (`have`, in strategy order).
/// Bases apply to the service as a whole, so each task goes where the
/// split of the service's whole count (`desired`, or more while a
/// deployment runs extra tasks) is furthest ahead of what runs: desired 5
/// over base 2 + weights 1 and 3 ends 2 + 3, scaling to 10 ends 4 + 6,
/// and a replaced task goes back to the provider that lost it. Returns
/// how many new tasks each provider gets, in strategy order.
pub fn next_tasks_by_capacity_provider(
    strategy: &[CapacityProviderShare],
    desired: u32,
    have: &[u32],
    count: u32,
) -> Result<Vec<u32>, String> {
    if have.len() != strategy.len() {
        return Err(format!(
            "{} task counts for a strategy of {} providers.",
            have.len(),
            strategy.len()
        ));
    }
    let mut have = have.to_vec();
    let mut new = vec![0; strategy.len()];
    for _ in 0..count {
        let total = desired.max(have.iter().sum::<u32>() + 1);
        let target = split_by_capacity_provider(strategy, total)?;
        // The largest shortfall; ties go to the earlier provider. Targets
        // add up to more than `have` does, so one falls short.
        let (i, _) = target
            .iter()
            .zip(&have)
            .map(|((_, t), h)| i64::from(*t) - i64::from(*h))
            .enumerate()
            .fold(
                (0, i64::MIN),
                |best, (i, d)| if d > best.1 { (i, d) } else { best },
            );
        have[i] += 1;
        new[i] += 1;
    }
    Ok(new)
}

/// Which providers a service's scale-in takes `count` tasks from, given
/// the tasks each runs (`have`, in strategy order): each one from the
/// provider furthest above its share of what is left, so scaling in keeps
/// the bases and weights as scaling out does.
pub fn surplus_tasks_by_capacity_provider(
    strategy: &[CapacityProviderShare],
    have: &[u32],
    count: u32,
) -> Result<Vec<u32>, String> {
    if have.len() != strategy.len() {
        return Err(format!(
            "{} task counts for a strategy of {} providers.",
            have.len(),
            strategy.len()
        ));
    }
    let mut have = have.to_vec();
    let mut gone = vec![0; strategy.len()];
    for _ in 0..count {
        let Some(total) = have.iter().sum::<u32>().checked_sub(1) else {
            break;
        };
        let target = split_by_capacity_provider(strategy, total)?;
        // Left with `total`, some provider runs more than its share.
        let (i, _) = target
            .iter()
            .zip(&have)
            .map(|((_, t), h)| i64::from(*h) - i64::from(*t))
            .enumerate()
            .fold(
                (0, i64::MIN),
                |best, (i, d)| if d > best.1 { (i, d) } else { best },
            );
        have[i] -= 1;
        gone[i] += 1;
    }
    Ok(gone)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(provider: &str, weight: u32, base: u32) -> CapacityProviderShare {
        CapacityProviderShare {
            provider: provider.into(),
            base,
            weight,
        }
    }

    fn fargate_and_spot() -> Vec<CapacityProviderShare> {
        vec![share("FARGATE", 1, 2), share("FARGATE_SPOT", 3, 0)]
    }

    fn split(s: &[CapacityProviderShare], n: u32) -> Vec<u32> {
        split_by_capacity_provider(s, n)
            .unwrap()
            .into_iter()
            .map(|(_, n)| n)
            .collect()
    }

    #[test]
    fn issue_examples_five_and_ten_tasks() {
        assert_eq!(
            split_by_capacity_provider(&fargate_and_spot(), 5).unwrap(),
            vec![("FARGATE".into(), 2), ("FARGATE_SPOT".into(), 3)]
        );
        assert_eq!(
            split_by_capacity_provider(&fargate_and_spot(), 10).unwrap(),
            vec![("FARGATE".into(), 4), ("FARGATE_SPOT".into(), 6)]
        );
    }

    #[test]
    fn base_first_then_weights() {
        assert_eq!(split(&fargate_and_spot(), 1), vec![1, 0]);
        assert_eq!(split(&fargate_and_spot(), 2), vec![2, 0]);
        assert_eq!(split(&fargate_and_spot(), 3), vec![2, 1]);
        assert_eq!(split(&fargate_and_spot(), 6), vec![3, 3]);
        let even = [share("a", 1, 0), share("b", 1, 0)];
        assert_eq!(split(&even, 3), vec![2, 1]);
        assert_eq!(split(&even, 4), vec![2, 2]);
        // A weight-0 provider only ever runs its base.
        let base_only = [share("a", 0, 1), share("b", 1, 0)];
        assert_eq!(split(&base_only, 5), vec![1, 4]);
        for n in 0..50 {
            assert_eq!(split(&fargate_and_spot(), n).iter().sum::<u32>(), n);
        }
    }

    #[test]
    fn strategies_are_checked_against_the_cluster() {
        let associated = vec!["FARGATE".to_string(), "FARGATE_SPOT".to_string()];
        assert!(validate_strategy(&fargate_and_spot(), &associated).is_ok());
        let e = validate_strategy(&[share("pool", 1, 0)], &associated).unwrap_err();
        assert!(e.contains("not associated") && e.contains("'pool'"), "{e}");
        let e = validate_strategy(&[share("FARGATE", 1001, 0)], &associated).unwrap_err();
        assert!(e.contains("weight"), "{e}");
        let e = validate_strategy(&[share("FARGATE", 1, 100_001)], &associated).unwrap_err();
        assert!(e.contains("base"), "{e}");
        let twice = [share("FARGATE", 1, 0), share("FARGATE", 2, 0)];
        assert!(validate_strategy(&twice, &associated)
            .unwrap_err()
            .contains("more than once"));
        let bases = [share("FARGATE", 1, 1), share("FARGATE_SPOT", 1, 1)];
        assert!(validate_strategy(&bases, &associated)
            .unwrap_err()
            .contains("one capacity provider"));
        let many: Vec<_> = (0..21).map(|i| share(&format!("p{i}"), 1, 0)).collect();
        assert!(validate_strategy(&many, &associated)
            .unwrap_err()
            .contains("at most 20"));
    }

    #[test]
    fn invalid_strategies_are_refused() {
        assert!(split_by_capacity_provider(&[], 1).is_err());
        let two_bases = [share("a", 1, 1), share("b", 1, 1)];
        assert!(split_by_capacity_provider(&two_bases, 1)
            .unwrap_err()
            .contains("base"));
        let no_weight = [share("a", 0, 2)];
        assert_eq!(split(&no_weight, 2), vec![2]);
        assert!(split_by_capacity_provider(&no_weight, 3)
            .unwrap_err()
            .contains("weight"));
    }

    #[test]
    fn service_tasks_follow_the_split_of_the_whole_service() {
        let s = fargate_and_spot();
        let next = |desired, have: &[u32], n| {
            next_tasks_by_capacity_provider(&s, desired, have, n).unwrap()
        };
        assert_eq!(next(5, &[0, 0], 5), vec![2, 3]);
        // Started one at a time, the bases still hold overall.
        let mut have = vec![0, 0];
        for _ in 0..5 {
            let n = next(5, &have, 1);
            have[0] += n[0];
            have[1] += n[1];
        }
        assert_eq!(have, vec![2, 3]);
        // Scaling 5 to 10 adds 2 + 3: 4 + 6 overall.
        assert_eq!(next(10, &[2, 3], 5), vec![2, 3]);
        // A stopped FARGATE task is replaced on FARGATE.
        assert_eq!(next(5, &[1, 3], 1), vec![1, 0]);
        // Beyond the desired count (a deployment's surge) the split goes on.
        assert_eq!(next(2, &[2, 0], 2), vec![0, 2]);
        assert!(next_tasks_by_capacity_provider(&s, 1, &[0], 1).is_err());
        let no_weight = [share("a", 0, 1)];
        assert!(next_tasks_by_capacity_provider(&no_weight, 2, &[0], 2).is_err());
    }

    #[test]
    fn scale_in_keeps_the_split() {
        let s = fargate_and_spot();
        let gone = |have: &[u32], n| surplus_tasks_by_capacity_provider(&s, have, n).unwrap();
        // 10 (4 + 6) to 5: 2 + 3 remain.
        assert_eq!(gone(&[4, 6], 5), vec![2, 3]);
        // 8 as 4 + 4 (a replacement went to FARGATE) to 7: 3 + 4 remain.
        assert_eq!(gone(&[4, 4], 1), vec![1, 0]);
        // The base is the last to go.
        assert_eq!(gone(&[2, 3], 3), vec![0, 3]);
        assert_eq!(gone(&[2, 3], 9), vec![2, 3], "no more than run");
        assert!(surplus_tasks_by_capacity_provider(&s, &[1], 1).is_err());
    }
}
