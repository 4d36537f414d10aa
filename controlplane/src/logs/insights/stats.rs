//! `stats`: records grouped by their `by` values, and each group's aggregates.
//! Groups come out in the order a newest-first scan meets them (the order of
//! their newest record), so `by bin(5m)` lists the latest bin first.

use std::collections::{HashMap, HashSet};

use super::ast::{Aggregate, AggregateFunction, Named};
use super::eval::eval;
use super::record::{compare, f64_as_millis, Record, Value};

/// Where a record sits in a newest-first scan: higher comes first.
pub(super) type Rank = (i64, i64);

pub(super) struct Grouping<'q> {
    aggregates: &'q [Aggregate],
    by: &'q [Named],
    groups: HashMap<Vec<Key>, Group>,
}

struct Group {
    /// The highest rank of its records.
    rank: Rank,
    accumulators: Vec<Accumulator>,
}

/// One `by` value, hashable. Numbers by their bits (with -0 made 0): groups
/// are told apart by value, and ties in rank need only some fixed order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    Missing,
    Text(String),
    Number(u64),
    Time(i64),
    Bool(bool),
}

impl Key {
    fn of(value: Option<Value>) -> Key {
        match value {
            None => Key::Missing,
            Some(Value::Str(s)) => Key::Text(s.into_owned()),
            Some(Value::Num(n)) => Key::Number((n + 0.0).to_bits()),
            Some(Value::Time(ms)) => Key::Time(ms),
            Some(Value::Bool(b)) => Key::Bool(b),
        }
    }

    fn into_value(self) -> Option<Value<'static>> {
        Some(match self {
            Key::Missing => return None,
            Key::Text(s) => Value::Str(s.into()),
            Key::Number(bits) => Value::Num(f64::from_bits(bits)),
            Key::Time(ms) => Value::Time(ms),
            Key::Bool(b) => Value::Bool(b),
        })
    }
}

impl<'q> Grouping<'q> {
    pub(super) fn new(aggregates: &'q [Aggregate], by: &'q [Named]) -> Self {
        Self {
            aggregates,
            by,
            groups: HashMap::new(),
        }
    }

    pub(super) fn add(&mut self, record: &Record, rank: Rank) {
        let key: Vec<Key> = self
            .by
            .iter()
            .map(|named| Key::of(eval(&named.expr, record)))
            .collect();
        let aggregates = self.aggregates;
        let group = self.groups.entry(key).or_insert_with(|| Group {
            rank,
            accumulators: aggregates
                .iter()
                .map(|a| Accumulator::new(a.function))
                .collect(),
        });
        group.rank = group.rank.max(rank);
        let timestamp = record
            .get("@timestamp")
            .and_then(|v| f64_as_millis(v.number()?));
        for (accumulator, aggregate) in group.accumulators.iter_mut().zip(aggregates) {
            match &aggregate.arg {
                None => accumulator.add_record(),
                Some(arg) => {
                    if let Some(value) = eval(arg, record) {
                        accumulator.add(value, timestamp);
                    }
                }
            }
        }
    }

    /// One row per group, newest first.
    pub(super) fn finish(self) -> Vec<Record> {
        let mut groups: Vec<(Vec<Key>, Group)> = self.groups.into_iter().collect();
        groups.sort_by(|(key_a, a), (key_b, b)| b.rank.cmp(&a.rank).then_with(|| key_a.cmp(key_b)));
        groups
            .into_iter()
            .map(|(key, group)| {
                let by = self
                    .by
                    .iter()
                    .zip(key)
                    .filter_map(|(named, part)| Some((named.name.clone(), part.into_value()?)));
                let aggregates = self.aggregates.iter().zip(group.accumulators);
                let aggregates = aggregates
                    .filter_map(|(aggregate, acc)| Some((aggregate.name.clone(), acc.finish()?)));
                Record::of_row(by.chain(aggregates).collect())
            })
            .collect()
    }
}

enum Accumulator {
    Count(u64),
    Distinct(HashSet<String>),
    Sum(Option<f64>),
    Avg {
        total: f64,
        count: u64,
    },
    /// `min` and `max`: the value with the least (most) number.
    Extreme {
        best: Option<(f64, Value<'static>)>,
        max: bool,
    },
    Pct {
        values: Vec<f64>,
        percent: f64,
    },
    /// Welford's running mean and sum of squared deviations.
    Stddev {
        count: u64,
        mean: f64,
        m2: f64,
    },
    /// `earliest` and `latest`: the value of the record with the least (most) `@timestamp`.
    ByTime {
        best: Option<(i64, Value<'static>)>,
        latest: bool,
    },
    /// `sortsFirst` and `sortsLast`.
    BySort {
        best: Option<Value<'static>>,
        last: bool,
    },
}

impl Accumulator {
    fn new(function: AggregateFunction) -> Self {
        use AggregateFunction as F;
        match function {
            F::Count => Accumulator::Count(0),
            F::CountDistinct => Accumulator::Distinct(HashSet::new()),
            F::Sum => Accumulator::Sum(None),
            F::Avg => Accumulator::Avg {
                total: 0.0,
                count: 0,
            },
            F::Min | F::Max => Accumulator::Extreme {
                best: None,
                max: function == F::Max,
            },
            F::Pct(percent) => Accumulator::Pct {
                values: Vec::new(),
                percent,
            },
            F::Stddev => Accumulator::Stddev {
                count: 0,
                mean: 0.0,
                m2: 0.0,
            },
            F::Earliest | F::Latest => Accumulator::ByTime {
                best: None,
                latest: function == F::Latest,
            },
            F::SortsFirst | F::SortsLast => Accumulator::BySort {
                best: None,
                last: function == F::SortsLast,
            },
        }
    }

    /// `count(*)`: one more record.
    fn add_record(&mut self) {
        if let Accumulator::Count(n) = self {
            *n += 1;
        }
    }

    /// A record's value of the aggregate's argument. Ties keep whichever value
    /// sorts first, so the result does not depend on the order records come in.
    fn add(&mut self, value: Value, timestamp: Option<i64>) {
        match self {
            Accumulator::Count(n) => *n += 1,
            Accumulator::Distinct(seen) => {
                seen.insert(value.into_text().into_owned());
            }
            Accumulator::Sum(total) => {
                if let Some(x) = value.number() {
                    *total = Some(total.unwrap_or(0.0) + x);
                }
            }
            Accumulator::Avg { total, count } => {
                if let Some(x) = value.number() {
                    *total += x;
                    *count += 1;
                }
            }
            Accumulator::Extreme { best, max } => {
                let Some(x) = value.number() else { return };
                let better = best.as_ref().is_none_or(|(b, held)| {
                    let order = x.total_cmp(b).then_with(|| compare(&value, held).reverse());
                    if *max {
                        order.is_gt()
                    } else {
                        order.is_lt()
                    }
                });
                if better {
                    *best = Some((x, value.into_owned()));
                }
            }
            Accumulator::Pct { values, .. } => values.extend(value.number()),
            Accumulator::Stddev { count, mean, m2 } => {
                if let Some(x) = value.number() {
                    *count += 1;
                    let delta = x - *mean;
                    *mean += delta / as_f64(*count);
                    *m2 += delta * (x - *mean);
                }
            }
            Accumulator::ByTime { best, latest } => {
                let Some(t) = timestamp else { return };
                let better = best.as_ref().is_none_or(|(b, held)| {
                    let order = t.cmp(b).then_with(|| compare(&value, held).reverse());
                    if *latest {
                        order.is_gt()
                    } else {
                        order.is_lt()
                    }
                });
                if better {
                    *best = Some((t, value.into_owned()));
                }
            }
            Accumulator::BySort { best, last } => {
                let better = best.as_ref().is_none_or(|held| {
                    let order = compare(&value, held);
                    if *last {
                        order.is_gt()
                    } else {
                        order.is_lt()
                    }
                });
                if better {
                    *best = Some(value.into_owned());
                }
            }
        }
    }

    fn finish(self) -> Option<Value<'static>> {
        match self {
            Accumulator::Count(n) => Some(Value::Num(as_f64(n))),
            Accumulator::Distinct(seen) => Some(Value::Num(as_f64(seen.len() as u64))),
            Accumulator::Sum(total) => total.map(Value::Num),
            Accumulator::Avg { total, count } => {
                (count > 0).then(|| Value::Num(total / as_f64(count)))
            }
            Accumulator::Extreme { best, .. } => best.map(|(_, v)| v),
            Accumulator::ByTime { best, .. } => best.map(|(_, v)| v),
            Accumulator::Pct {
                mut values,
                percent,
            } => {
                values.sort_by(f64::total_cmp);
                let index = nearest_rank(values.len(), percent)?;
                values.get(index).copied().map(Value::Num)
            }
            Accumulator::Stddev { count, m2, .. } => match count {
                0 => None,
                1 => Some(Value::Num(0.0)),
                n => Some(Value::Num((m2 / as_f64(n - 1)).sqrt())),
            },
            Accumulator::BySort { best, .. } => best,
        }
    }
}

/// The index of the `percent`th percentile of `len` sorted values by the
/// nearest-rank method: always one of the values.
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss
)] // the rank lies in 1..=len
fn nearest_rank(len: usize, percent: f64) -> Option<usize> {
    if len == 0 {
        return None;
    }
    let rank = (percent / 100.0 * len as f64).ceil().clamp(1.0, len as f64) as usize;
    Some(rank.saturating_sub(1))
}

#[allow(clippy::cast_precision_loss)] // counts of records stay far below 2^53
fn as_f64(n: u64) -> f64 {
    n as f64
}
