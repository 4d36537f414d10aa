//! CloudWatch Logs Insights queries (`StartQuery`'s `queryString`): parsing one,
//! and running it over a log group's events into the rows `GetQueryResults`
//! returns. Pure: the caller reads the events and owns the query's lifecycle.
//!
//! Berth runs `fields`, `filter`, `parse`, `stats`, `sort`, `limit` and
//! `display`. A query reads events as Insights does, newest first: without
//! `sort`, rows come newest first, and `stats` groups in the order of their
//! newest event.

mod ast;
mod error;
mod eval;
mod lexer;
mod parser;
mod record;
mod stats;
mod time;

#[cfg(test)]
mod tests;

use std::cmp::Ordering;

use self::ast::{Command, Named};
use self::eval::{eval, truthy};
use self::record::{compare, Record, Value};
use self::stats::{Grouping, Rank};

pub use self::error::QueryError;

/// The most rows a query returns, and the highest `limit`: Insights' maximum.
pub const MAX_ROWS: usize = 10_000;

/// The longest query text `StartQuery` takes, in characters.
pub const MAX_QUERY_CHARS: usize = 10_000;

/// What a query shows when no `fields`, `display` or `stats` says otherwise.
const DEFAULT_COLUMNS: [&str; 2] = ["@timestamp", "@message"];

/// A parsed, checked Logs Insights query.
#[derive(Debug, Clone)]
pub struct Query {
    commands: Vec<Command>,
    /// The fields each row shows, in order.
    columns: Vec<String>,
}

/// One log event as a query sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsightsEvent {
    pub timestamp_ms: i64,
    pub ingestion_ms: i64,
    pub message: String,
    pub log_stream: String,
    pub log_group: String,
}

/// A finished query's rows and statistics (`GetQueryResults`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryOutcome {
    /// Each row's fields as (name, value shown), in the order Insights shows them.
    /// A field a row has no value for is left out of that row, as Insights does.
    pub rows: Vec<Vec<(String, String)>>,
    /// Events that passed the query's `filter`s (those before any `stats`, `sort`
    /// or `limit`).
    pub records_matched: u64,
    pub records_scanned: u64,
    /// The size of the messages scanned.
    pub bytes_scanned: u64,
}

impl Query {
    /// Parses and checks a query. An empty one is valid and shows `@timestamp` and
    /// `@message`, newest first. Regexes are the `regex` crate's dialect: RE2-like,
    /// with `(?<name>...)` groups and `(?i)`, without look-around or backreferences.
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        let length = text.chars().count();
        if length > MAX_QUERY_CHARS {
            return Err(QueryError::TooLong {
                length,
                max: MAX_QUERY_CHARS,
            });
        }
        let commands = parser::parse(text)?;
        let columns = columns(&commands);
        Ok(Query { commands, columns })
    }

    /// Runs the query over events in any order. `account` is the account id
    /// `@log` shows the group under (`<account>:<group>`), as Insights does.
    pub fn run(
        &self,
        account: &str,
        events: impl IntoIterator<Item = InsightsEvent>,
    ) -> QueryOutcome {
        let split = self
            .commands
            .iter()
            .position(|c| !c.is_per_record())
            .unwrap_or(self.commands.len());
        let (per_record, rest) = self.commands.split_at(split);
        let mut outcome = QueryOutcome::default();
        let mut grouping = match rest.first() {
            Some(Command::Stats { aggregates, by }) => Some(Grouping::new(aggregates, by)),
            _ => None,
        };
        // Without `sort`, only the newest rows can be shown: keep no more.
        let keep = match rest.first() {
            None => Some(MAX_ROWS),
            Some(Command::Limit(n)) => Some(*n),
            Some(_) => None,
        };
        let mut kept = Vec::new();
        for event in events {
            outcome.records_scanned += 1;
            outcome.bytes_scanned += u64::try_from(event.message.len()).unwrap_or(u64::MAX);
            let mut record = Record::of_event(event, account);
            if !per_record.iter().all(|c| apply(c, &mut record)) {
                continue;
            }
            outcome.records_matched += 1;
            if let Some(grouping) = &mut grouping {
                grouping.add(&record, event_rank(&record));
            } else {
                kept.push(record);
                if let Some(keep) = keep {
                    if kept.len() >= keep.saturating_mul(2).max(1024) {
                        kept.sort_by(newest_first);
                        kept.truncate(keep);
                    }
                }
            }
        }
        let (mut records, rest) = if let Some(grouping) = grouping {
            (grouping.finish(), &rest[1..])
        } else {
            kept.sort_by(newest_first);
            (kept, rest)
        };
        for command in rest {
            records = apply_to_all(command, records);
        }
        records.truncate(MAX_ROWS);
        outcome.rows = records.iter().map(|r| self.row(r)).collect();
        outcome
    }

    fn row(&self, record: &Record) -> Vec<(String, String)> {
        self.columns
            .iter()
            .filter_map(|name| Some((name.clone(), record.get(name)?.text().into_owned())))
            .collect()
    }
}

/// The fields results show: those `fields` named, in order, unless a later
/// `stats` (its `by` fields, then its aggregates) or `display` replaced them.
fn columns(commands: &[Command]) -> Vec<String> {
    let mut columns: Option<Vec<String>> = None;
    for command in commands {
        match command {
            Command::Fields(items) => {
                let columns = columns.get_or_insert_with(Vec::new);
                for Named { name, .. } in items {
                    if !columns.contains(name) {
                        columns.push(name.clone());
                    }
                }
            }
            Command::Display(names) => columns = Some(names.clone()),
            Command::Stats { aggregates, by } => {
                let by = by.iter().map(|b| b.name.clone());
                columns = Some(
                    by.chain(aggregates.iter().map(|a| a.name.clone()))
                        .collect(),
                );
            }
            _ => {}
        }
    }
    columns.unwrap_or_else(|| DEFAULT_COLUMNS.map(str::to_owned).to_vec())
}

/// Runs a one-record command; whether the record goes on.
fn apply(command: &Command, record: &mut Record) -> bool {
    match command {
        Command::Filter(condition) => truthy(condition, record),
        Command::Fields(items) => {
            for Named { expr, name } in items {
                if matches!(expr, ast::Expr::Field(f) if f == name) {
                    continue;
                }
                match eval(expr, record).map(Value::into_owned) {
                    Some(value) => record.set(name, value),
                    None => record.unset(name),
                }
            }
            true
        }
        Command::Parse {
            source,
            regex,
            captures,
        } => {
            let found: Vec<(&str, String)> = eval(source, record)
                .and_then(|value| {
                    let text = value.into_text();
                    let groups = regex.captures(&text)?;
                    let found = captures.iter().filter_map(|(i, name)| {
                        Some((name.as_str(), groups.get(*i)?.as_str().to_owned()))
                    });
                    Some(found.collect())
                })
                .unwrap_or_default();
            for (name, value) in found {
                record.set(name, Value::Str(value.into()));
            }
            true
        }
        Command::Display(_) | Command::Stats { .. } | Command::Sort(_) | Command::Limit(_) => true,
    }
}

/// Runs any command over records in order.
fn apply_to_all(command: &Command, records: Vec<Record>) -> Vec<Record> {
    match command {
        Command::Stats { aggregates, by } => {
            let mut grouping = Grouping::new(aggregates, by);
            // Earlier records rank higher, so groups keep the records' order.
            for (i, record) in (0_i64..).zip(&records) {
                grouping.add(record, (-i, 0));
            }
            grouping.finish()
        }
        Command::Sort(keys) => sort(keys, records),
        Command::Limit(n) => {
            let mut records = records;
            records.truncate(*n);
            records
        }
        _ => records
            .into_iter()
            .filter_map(|mut record| apply(command, &mut record).then_some(record))
            .collect(),
    }
}

/// A stable sort by the keys; records without a key's value go last.
fn sort(keys: &[(ast::Expr, bool)], records: Vec<Record>) -> Vec<Record> {
    let order = {
        let values: Vec<Vec<Option<Value>>> = records
            .iter()
            .map(|r| keys.iter().map(|(expr, _)| eval(expr, r)).collect())
            .collect();
        let mut order: Vec<usize> = (0..records.len()).collect();
        order.sort_by(|&a, &b| {
            keys.iter()
                .enumerate()
                .map(
                    |(k, (_, descending))| match (&values[a][k], &values[b][k]) {
                        (Some(x), Some(y)) if *descending => compare(y, x),
                        (Some(x), Some(y)) => compare(x, y),
                        (Some(_), None) => Ordering::Less,
                        (None, Some(_)) => Ordering::Greater,
                        (None, None) => Ordering::Equal,
                    },
                )
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        });
        order
    };
    let mut slots: Vec<Option<Record>> = records.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

fn event_rank(record: &Record) -> Rank {
    record
        .event()
        .map_or((i64::MIN, i64::MIN), |e| (e.timestamp_ms, e.ingestion_ms))
}

/// Newest first; ties in a fixed order, so results never depend on the input's.
fn newest_first(a: &Record, b: &Record) -> Ordering {
    match (a.event(), b.event()) {
        (Some(a), Some(b)) => (b.timestamp_ms, b.ingestion_ms)
            .cmp(&(a.timestamp_ms, a.ingestion_ms))
            .then_with(|| a.log_group.cmp(&b.log_group))
            .then_with(|| a.log_stream.cmp(&b.log_stream))
            .then_with(|| a.message.cmp(&b.message)),
        _ => Ordering::Equal,
    }
}
