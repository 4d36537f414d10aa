//! What a query command sees: records of named values. A record is a log event,
//! with its `@` fields, the fields discovered in its JSON message and the fields
//! earlier commands set; or a row that `stats` made.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::cmp::Ordering;

use serde_json::Value as Json;

use super::time::format_timestamp;
use super::InsightsEvent;

/// A field's value. Insights is loosely typed: values read from messages are text,
/// and text that reads as a number acts as one in comparisons and arithmetic.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value<'a> {
    Str(Cow<'a, str>),
    Num(f64),
    /// Epoch milliseconds, shown as a timestamp.
    Time(i64),
    Bool(bool),
}

impl<'a> Value<'a> {
    /// The value as a number, when it is or reads as one.
    pub(super) fn number(&self) -> Option<f64> {
        match self {
            Value::Num(n) => Some(*n),
            Value::Time(ms) => Some(millis_as_f64(*ms)),
            Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            Value::Str(s) => parse_number(s),
        }
    }

    /// The value as Insights shows it.
    pub(super) fn text(&self) -> Cow<'_, str> {
        match self {
            Value::Str(s) => Cow::Borrowed(s),
            Value::Num(n) => Cow::Owned(format_number(*n)),
            Value::Time(ms) => Cow::Owned(format_timestamp(*ms)),
            Value::Bool(b) => Cow::Borrowed(if *b { "1" } else { "0" }),
        }
    }

    /// Whether a `filter` keeps a record this value is the condition of.
    pub(super) fn truthy(&self) -> bool {
        match self {
            Value::Bool(b) => *b,
            Value::Num(n) => *n != 0.0,
            Value::Time(_) => true,
            Value::Str(s) => !s.is_empty(),
        }
    }

    /// The value as Insights shows it, keeping borrowed text borrowed.
    pub(super) fn into_text(self) -> Cow<'a, str> {
        match self {
            Value::Str(s) => s,
            other => Cow::Owned(other.text().into_owned()),
        }
    }

    pub(super) fn into_owned(self) -> Value<'static> {
        match self {
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
            Value::Num(n) => Value::Num(n),
            Value::Time(ms) => Value::Time(ms),
            Value::Bool(b) => Value::Bool(b),
        }
    }

    pub(super) fn reborrow(&self) -> Value<'_> {
        match self {
            Value::Str(s) => Value::Str(Cow::Borrowed(s)),
            Value::Num(n) => Value::Num(*n),
            Value::Time(ms) => Value::Time(*ms),
            Value::Bool(b) => Value::Bool(*b),
        }
    }
}

/// Two values compared as numbers when both are numbers, else as the text shown.
pub(super) fn compare(a: &Value, b: &Value) -> Ordering {
    match (a.number(), b.number()) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => a.text().cmp(&b.text()),
    }
}

#[allow(clippy::float_cmp)] // `=` between numbers means exactly equal
pub(super) fn equal(a: &Value, b: &Value) -> bool {
    match (a.number(), b.number()) {
        (Some(x), Some(y)) => x == y,
        _ => a.text() == b.text(),
    }
}

/// Text that reads as a finite decimal number; not `inf`, `NaN` or `0x1F`.
pub(super) fn parse_number(text: &str) -> Option<f64> {
    let text = text.trim();
    let first = text.bytes().next()?;
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return None;
    }
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// A number as Insights shows it: whole numbers without a decimal point, others
/// in the shortest form that reads back as the same number.
pub(super) fn format_number(n: f64) -> String {
    if n == 0.0 {
        // Never "-0".
        return "0".to_owned();
    }
    if n.fract() == 0.0 && n.abs() < 1e17 {
        format!("{n:.0}")
    } else {
        format!("{n}")
    }
}

#[allow(clippy::cast_precision_loss)] // epoch milliseconds fit an f64 exactly
pub(super) fn millis_as_f64(ms: i64) -> f64 {
    ms as f64
}

/// A number as epoch milliseconds, or nothing when it is not a time at all.
#[allow(clippy::cast_possible_truncation)] // range-checked first
pub(super) fn f64_as_millis(n: f64) -> Option<i64> {
    const LIMIT: f64 = 9.0e18;
    (n.is_finite() && n.abs() < LIMIT).then(|| n.floor() as i64)
}

#[derive(Debug)]
pub(super) struct Record {
    /// The log event this record is, with `log_group` already `<account>:<group>`;
    /// none for a `stats` row.
    event: Option<InsightsEvent>,
    /// Fields of the event's JSON message, read the first time a query asks.
    discovered: OnceCell<Vec<(String, String)>>,
    /// Fields commands set; they hide `@` and discovered fields of the same name.
    set: Vec<(String, Value<'static>)>,
}

impl Record {
    pub(super) fn of_event(mut event: InsightsEvent, account: &str) -> Self {
        event.log_group = format!("{account}:{}", event.log_group);
        Self {
            event: Some(event),
            discovered: OnceCell::new(),
            set: Vec::new(),
        }
    }

    pub(super) fn of_row(fields: Vec<(String, Value<'static>)>) -> Self {
        Self {
            event: None,
            discovered: OnceCell::new(),
            set: fields,
        }
    }

    pub(super) fn event(&self) -> Option<&InsightsEvent> {
        self.event.as_ref()
    }

    pub(super) fn get(&self, name: &str) -> Option<Value<'_>> {
        if let Some((_, v)) = self.set.iter().find(|(n, _)| n == name) {
            return Some(v.reborrow());
        }
        let event = self.event.as_ref()?;
        let builtin = match name {
            "@timestamp" => Some(Value::Time(event.timestamp_ms)),
            "@ingestionTime" => Some(Value::Time(event.ingestion_ms)),
            "@message" => Some(Value::Str(Cow::Borrowed(&event.message))),
            "@logStream" => Some(Value::Str(Cow::Borrowed(&event.log_stream))),
            "@log" => Some(Value::Str(Cow::Borrowed(&event.log_group))),
            _ => None,
        };
        builtin.or_else(|| {
            self.discovered
                .get_or_init(|| discover(&event.message))
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| Value::Str(Cow::Borrowed(v)))
        })
    }

    pub(super) fn set(&mut self, name: &str, value: Value<'static>) {
        match self.set.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value,
            None => self.set.push((name.to_owned(), value)),
        }
    }

    pub(super) fn unset(&mut self, name: &str) {
        self.set.retain(|(n, _)| n != name);
    }
}

/// The fields Insights discovers in a JSON object message: nested objects' keys
/// joined with dots (`http.status`), array items by index (`tags.0`).
fn discover(message: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    if message.trim_start().starts_with('{') {
        if let Ok(Json::Object(object)) = serde_json::from_str::<Json>(message) {
            for (key, value) in &object {
                flatten(key.clone(), value, &mut fields);
            }
        }
    }
    fields
}

fn flatten(name: String, value: &Json, fields: &mut Vec<(String, String)>) {
    match value {
        Json::Null => {}
        Json::Bool(b) => fields.push((name, b.to_string())),
        Json::Number(n) => fields.push((name, n.to_string())),
        Json::String(s) => fields.push((name, s.clone())),
        Json::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten(format!("{name}.{i}"), item, fields);
            }
        }
        Json::Object(object) => {
            for (key, item) in object {
                flatten(format!("{name}.{key}"), item, fields);
            }
        }
    }
}
