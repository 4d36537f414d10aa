//! Evaluating an expression against one record: the operators, with Insights'
//! loose typing, and the functions of one record's values. A missing field makes
//! what uses it missing; `and`, `or` and `not` count a missing value as false.

use std::borrow::Cow;
use std::net::IpAddr;

use super::ast::{ArithmeticOp, CompareOp, Expr, Function, Pattern};
use super::record::{compare, equal, f64_as_millis, Record, Value};

pub(super) fn eval<'r>(expr: &'r Expr, record: &'r Record) -> Option<Value<'r>> {
    match expr {
        Expr::Field(name) => record.get(name),
        Expr::Literal(value) => Some(value.reborrow()),
        Expr::Not(e) => Some(Value::Bool(!truthy(e, record))),
        Expr::Negate(e) => eval(e, record)?.number().map(|n| Value::Num(-n)),
        Expr::And(items) => Some(Value::Bool(items.iter().all(|e| truthy(e, record)))),
        Expr::Or(items) => Some(Value::Bool(items.iter().any(|e| truthy(e, record)))),
        Expr::Compare(op, a, b) => {
            let (a, b) = (eval(a, record)?, eval(b, record)?);
            let holds = match op {
                CompareOp::Eq => equal(&a, &b),
                CompareOp::Ne => !equal(&a, &b),
                CompareOp::Lt => compare(&a, &b).is_lt(),
                CompareOp::Le => compare(&a, &b).is_le(),
                CompareOp::Gt => compare(&a, &b).is_gt(),
                CompareOp::Ge => compare(&a, &b).is_ge(),
            };
            Some(Value::Bool(holds))
        }
        Expr::Arithmetic(first, rest) => {
            let mut x = eval(first, record)?.number()?;
            for (op, operand) in rest {
                let y = eval(operand, record)?.number()?;
                x = match op {
                    ArithmeticOp::Add => x + y,
                    ArithmeticOp::Subtract => x - y,
                    ArithmeticOp::Multiply => x * y,
                    ArithmeticOp::Divide => x / y,
                    ArithmeticOp::Remainder => x % y,
                    ArithmeticOp::Power => x.powf(y),
                };
                if !x.is_finite() {
                    return None;
                }
            }
            Some(Value::Num(x))
        }
        Expr::Matches {
            subject,
            pattern,
            negated,
        } => {
            let text = eval(subject, record)?.into_text();
            let found = match pattern {
                Pattern::Substring(s) => text.contains(s.as_str()),
                Pattern::Regex(r) => r.is_match(&text),
            };
            Some(Value::Bool(found != *negated))
        }
        Expr::In {
            subject,
            list,
            negated,
        } => {
            let value = eval(subject, record)?;
            let found = list
                .iter()
                .filter_map(|e| eval(e, record))
                .any(|v| equal(&value, &v));
            Some(Value::Bool(found != *negated))
        }
        Expr::Call(function, args) => call(*function, args, record),
    }
}

/// Whether a `filter` keeps the record: the condition is there and true.
pub(super) fn truthy(expr: &Expr, record: &Record) -> bool {
    eval(expr, record).is_some_and(|v| v.truthy())
}

/// Arithmetic that leaves the numbers (dividing by zero, `log(-1)`) has no value.
fn finite<'r>(n: f64) -> Option<Value<'r>> {
    n.is_finite().then_some(Value::Num(n))
}

fn owned<'r>(text: impl Into<String>) -> Value<'r> {
    Value::Str(Cow::Owned(text.into()))
}

fn call<'r>(function: Function, args: &'r [Expr], record: &'r Record) -> Option<Value<'r>> {
    use Function as F;
    let arg = |i: usize| args.get(i).and_then(|e| eval(e, record));
    let text = |i: usize| arg(i).map(Value::into_text);
    let number = |i: usize| arg(i).and_then(|v| v.number());
    let numbers = || args.iter().filter_map(|e| eval(e, record)?.number());
    match function {
        F::IsPresent => Some(Value::Bool(arg(0).is_some())),
        F::Coalesce => args.iter().find_map(|e| eval(e, record)),
        F::IsEmpty => Some(Value::Bool(text(0).is_none_or(|t| t.is_empty()))),
        F::IsBlank => Some(Value::Bool(text(0).is_none_or(|t| t.trim().is_empty()))),
        F::Concat => Some(owned((0..args.len()).filter_map(text).collect::<String>())),
        F::Ltrim | F::Rtrim | F::Trim => {
            let value = text(0)?;
            let chars = text(1);
            let strip = |c: char| {
                chars
                    .as_deref()
                    .map_or(c.is_whitespace(), |s| s.contains(c))
            };
            Some(owned(match function {
                F::Ltrim => value.trim_start_matches(strip),
                F::Rtrim => value.trim_end_matches(strip),
                _ => value.trim_matches(strip),
            }))
        }
        F::Strlen => Some(Value::Num(count(text(0)?.chars().count()))),
        F::ToUpper => Some(owned(text(0)?.to_uppercase())),
        F::ToLower => Some(owned(text(0)?.to_lowercase())),
        F::Substr => {
            let value = text(0)?;
            let start = index(number(1)?);
            let length = if args.len() > 2 {
                index(number(2)?)
            } else {
                usize::MAX
            };
            Some(owned(
                value.chars().skip(start).take(length).collect::<String>(),
            ))
        }
        F::Replace => {
            let (value, from, to) = (text(0)?, text(1)?, text(2)?);
            if from.is_empty() {
                return Some(owned(value));
            }
            Some(owned(value.replace(from.as_ref(), &to)))
        }
        F::StrContains => Some(Value::Bool(text(0)?.contains(text(1)?.as_ref()))),
        F::Abs => finite(number(0)?.abs()),
        F::Ceil => finite(number(0)?.ceil()),
        F::Floor | F::ToMillis => finite(number(0)?.floor()),
        F::Log => finite(number(0)?.ln()),
        F::Sqrt => finite(number(0)?.sqrt()),
        F::Greatest => numbers().reduce(f64::max).map(Value::Num),
        F::Least => numbers().reduce(f64::min).map(Value::Num),
        F::Bin(period) => {
            let ms = f64_as_millis(record.get("@timestamp")?.number()?)?;
            Some(Value::Time(period.floor(ms)))
        }
        F::DateFloor(period) => Some(Value::Time(period.floor(f64_as_millis(number(0)?)?))),
        F::DateCeil(period) => Some(Value::Time(period.ceil(f64_as_millis(number(0)?)?))),
        F::FromMillis => Some(Value::Time(f64_as_millis(number(0)?)?)),
        F::IsValidIp => Some(Value::Bool(text(0)?.trim().parse::<IpAddr>().is_ok())),
        F::IsValidIpV4 => Some(Value::Bool(
            text(0)?
                .trim()
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_ipv4()),
        )),
        F::IsValidIpV6 => Some(Value::Bool(
            text(0)?
                .trim()
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_ipv6()),
        )),
        F::IsIpInSubnet | F::IsIpv4InSubnet | F::IsIpv6InSubnet => {
            let (ip, subnet) = (text(0)?, text(1)?);
            let inside = in_subnet(&ip, &subnet).is_some_and(|(inside, v4)| {
                inside
                    && match function {
                        F::IsIpv4InSubnet => v4,
                        F::IsIpv6InSubnet => !v4,
                        _ => true,
                    }
            });
            Some(Value::Bool(inside))
        }
    }
}

/// Whether `ip` lies in the CIDR block `subnet`, and whether both are IPv4.
fn in_subnet(ip: &str, subnet: &str) -> Option<(bool, bool)> {
    let ip: IpAddr = ip.trim().parse().ok()?;
    let (network, bits) = subnet.trim().split_once('/')?;
    let network: IpAddr = network.parse().ok()?;
    let bits: u32 = bits.parse().ok()?;
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(network)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            Some(((u32::from(ip) ^ u32::from(network)) & mask == 0, true))
        }
        (IpAddr::V6(ip), IpAddr::V6(network)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            Some(((u128::from(ip) ^ u128::from(network)) & mask == 0, false))
        }
        _ => None,
    }
}

#[allow(clippy::cast_precision_loss)] // a string's length fits an f64 exactly
fn count(n: usize) -> f64 {
    n as f64
}

/// A number as a character index: negative counts as 0, fractions round down.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // clamped first
fn index(n: f64) -> usize {
    if n.is_nan() || n <= 0.0 {
        0
    } else if n >= 1e15 {
        usize::MAX
    } else {
        n.floor() as usize
    }
}
