//! Placement strategies: which of the allowed candidates a task goes to.

use std::collections::HashMap;

use rand::Rng;

use super::Candidate;
use crate::model::placement::{PlacementStrategy, Resource, SpreadField};
use crate::model::query::Facts;
use crate::model::Resources;

/// The strategies of one placement call, with what they read from the
/// fleet (attribute values for `spread`) worked out once.
pub(super) struct Chain<'a> {
    strategies: &'a [PlacementStrategy],
    candidates: &'a [Candidate],
    /// Per `spread` over an attribute: each candidate's value as a bucket
    /// number (no attribute, or no value, is a bucket too), and the number
    /// of buckets.
    buckets: Vec<Option<(Vec<u32>, usize)>>,
    /// Scratch: tasks of the group per bucket.
    per_bucket: Vec<u32>,
}

impl<'a> Chain<'a> {
    pub(super) fn new(strategies: &'a [PlacementStrategy], candidates: &'a [Candidate]) -> Self {
        let buckets = strategies
            .iter()
            .map(|s| match s {
                PlacementStrategy::Spread(SpreadField::Attribute(name)) => {
                    let mut ids: HashMap<Option<Option<&str>>, u32> = HashMap::new();
                    let of: Vec<u32> = candidates
                        .iter()
                        .map(|c| {
                            let next = u32::try_from(ids.len()).unwrap_or(u32::MAX);
                            *ids.entry(c.attribute(name)).or_insert(next)
                        })
                        .collect();
                    Some((of, ids.len()))
                }
                _ => None,
            })
            .collect();
        Self {
            strategies,
            candidates,
            buckets,
            per_bucket: Vec::new(),
        }
    }

    /// Narrows `pool` (candidate indices, non-empty) strategy by strategy and
    /// returns the winner. `same_group[i]`: tasks of the task's group on `i`.
    pub(super) fn choose<R: Rng + ?Sized>(
        &mut self,
        pool: &mut Vec<usize>,
        remaining: &[Resources],
        same_group: &[u32],
        rng: &mut R,
    ) -> usize {
        for (s, buckets) in self.strategies.iter().zip(&self.buckets) {
            if pool.len() == 1 {
                break;
            }
            match (s, buckets) {
                (PlacementStrategy::Binpack(Resource::Cpu), _) => {
                    keep_least(pool, |i| remaining[i].cpu);
                }
                (PlacementStrategy::Binpack(Resource::Memory), _) => {
                    keep_least(pool, |i| remaining[i].memory_mib);
                }
                (PlacementStrategy::Spread(SpreadField::Attribute(_)), Some((of, n))) => {
                    self.per_bucket.clear();
                    self.per_bucket.resize(*n, 0);
                    for (b, count) in of.iter().zip(same_group) {
                        self.per_bucket[*b as usize] += count;
                    }
                    let per_bucket = &self.per_bucket;
                    keep_least(pool, |i| per_bucket[of[i] as usize]);
                }
                (PlacementStrategy::Spread(_), _) => keep_least(pool, |i| same_group[i]),
                (PlacementStrategy::Random, _) => {
                    let pick = pool[rng.random_range(0..pool.len())];
                    pool.clear();
                    pool.push(pick);
                }
            }
        }
        let candidates = self.candidates;
        let key = |i: usize| {
            let c = &candidates[i];
            (c.arn.as_str(), remaining[i])
        };
        if self.strategies.is_empty() {
            // Today's default: most memory, then most CPU, then lowest ARN.
            *pool
                .iter()
                .max_by(|&&a, &&b| {
                    let (arn_a, ra) = key(a);
                    let (arn_b, rb) = key(b);
                    (ra.memory_mib, ra.cpu, std::cmp::Reverse(arn_a)).cmp(&(
                        rb.memory_mib,
                        rb.cpu,
                        std::cmp::Reverse(arn_b),
                    ))
                })
                .expect("pool is not empty")
        } else {
            *pool
                .iter()
                .min_by_key(|&&i| key(i).0)
                .expect("pool is not empty")
        }
    }
}

/// Keeps the candidates with the least `score`.
fn keep_least<K: Ord + Copy>(pool: &mut Vec<usize>, score: impl Fn(usize) -> K) {
    let Some(best) = pool.iter().map(|&i| score(i)).min() else {
        return;
    };
    pool.retain(|&i| score(i) == best);
}
