//! A parsed query: its commands, the expressions they hold, and the functions
//! Berth knows by name.

use regex::Regex;

use super::record::Value;
use super::time::Period;

#[derive(Debug, Clone)]
pub(super) enum Command {
    /// Each expression's value, set under its name.
    Fields(Vec<Named>),
    /// Which fields the results show; no effect on the records.
    Display(Vec<String>),
    Filter(Expr),
    /// Each capture group the regex matches in `source` sets a field.
    Parse {
        source: Expr,
        regex: Regex,
        captures: Vec<(usize, String)>,
    },
    Stats {
        aggregates: Vec<Aggregate>,
        by: Vec<Named>,
    },
    /// Keys, each with whether it sorts descending.
    Sort(Vec<(Expr, bool)>),
    Limit(usize),
}

impl Command {
    /// Whether the command looks at one record at a time, so it can run while
    /// events stream in.
    pub(super) fn is_per_record(&self) -> bool {
        matches!(
            self,
            Command::Fields(_) | Command::Display(_) | Command::Filter(_) | Command::Parse { .. }
        )
    }
}

/// An expression and the field name it shows under: its `as` alias, or its text.
#[derive(Debug, Clone)]
pub(super) struct Named {
    pub(super) expr: Expr,
    pub(super) name: String,
}

#[derive(Debug, Clone)]
pub(super) enum Expr {
    Field(String),
    Literal(Value<'static>),
    Not(Box<Expr>),
    Negate(Box<Expr>),
    // Chains of `and`, `or` and arithmetic are flat, so how deep an expression
    // is depends only on how deep it nests, which the parser caps.
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Compare(CompareOp, Box<Expr>, Box<Expr>),
    /// The first operand, then each operator and operand, left to right.
    Arithmetic(Box<Expr>, Vec<(ArithmeticOp, Expr)>),
    /// `like` and `=~`.
    Matches {
        subject: Box<Expr>,
        pattern: Pattern,
        negated: bool,
    },
    In {
        subject: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    Call(Function, Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ArithmeticOp {
    Add,
    Subtract,
    Multiply,
    Divide,
    Remainder,
    Power,
}

#[derive(Debug, Clone)]
pub(super) enum Pattern {
    /// `like "text"`: the text anywhere in the value, case-sensitive.
    Substring(String),
    Regex(Regex),
}

/// A function of one record's values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Function {
    IsPresent,
    Coalesce,
    IsEmpty,
    IsBlank,
    Concat,
    Ltrim,
    Rtrim,
    Trim,
    Strlen,
    ToUpper,
    ToLower,
    Substr,
    Replace,
    StrContains,
    Abs,
    Ceil,
    Floor,
    Greatest,
    Least,
    Log,
    Sqrt,
    /// `@timestamp` rounded down to the period.
    Bin(Period),
    DateFloor(Period),
    DateCeil(Period),
    FromMillis,
    ToMillis,
    IsValidIp,
    IsValidIpV4,
    IsValidIpV6,
    IsIpInSubnet,
    IsIpv4InSubnet,
    IsIpv6InSubnet,
}

/// What a function takes, for the parser to check calls against.
#[derive(Debug, Clone, Copy)]
pub(super) enum Arguments {
    /// Between `min` and `max` expressions; `describe` says so in an error.
    Exprs {
        min: usize,
        max: usize,
        describe: &'static str,
    },
    /// `bin(5m)`.
    Period(fn(Period) -> Function),
    /// `datefloor(@timestamp, 1h)`.
    ExprAndPeriod(fn(Period) -> Function),
}

const fn exprs(min: usize, max: usize, describe: &'static str) -> Arguments {
    Arguments::Exprs { min, max, describe }
}

const ONE: Arguments = exprs(1, 1, "1 argument");
const TWO: Arguments = exprs(2, 2, "2 arguments");
const SOME: Arguments = exprs(1, usize::MAX, "1 or more arguments");
const TRIM: Arguments = exprs(1, 2, "1 or 2 arguments");

/// The function a name calls (case-insensitive), and what it takes.
pub(super) fn function(name: &str) -> Option<(Function, Arguments)> {
    use Function as F;
    let placeholder = Period::Millis(1);
    Some(match name.to_ascii_lowercase().as_str() {
        "ispresent" => (F::IsPresent, ONE),
        "coalesce" => (F::Coalesce, SOME),
        "isempty" => (F::IsEmpty, ONE),
        "isblank" => (F::IsBlank, ONE),
        "concat" => (F::Concat, SOME),
        "ltrim" => (F::Ltrim, TRIM),
        "rtrim" => (F::Rtrim, TRIM),
        "trim" => (F::Trim, TRIM),
        "strlen" => (F::Strlen, ONE),
        "toupper" => (F::ToUpper, ONE),
        "tolower" => (F::ToLower, ONE),
        "substr" => (F::Substr, exprs(2, 3, "2 or 3 arguments")),
        "replace" => (F::Replace, exprs(3, 3, "3 arguments")),
        "strcontains" => (F::StrContains, TWO),
        "abs" => (F::Abs, ONE),
        "ceil" => (F::Ceil, ONE),
        "floor" => (F::Floor, ONE),
        "greatest" => (F::Greatest, SOME),
        "least" => (F::Least, SOME),
        "log" => (F::Log, ONE),
        "sqrt" => (F::Sqrt, ONE),
        "bin" => (F::Bin(placeholder), Arguments::Period(F::Bin)),
        "datefloor" => (
            F::DateFloor(placeholder),
            Arguments::ExprAndPeriod(F::DateFloor),
        ),
        "dateceil" => (
            F::DateCeil(placeholder),
            Arguments::ExprAndPeriod(F::DateCeil),
        ),
        "frommillis" => (F::FromMillis, ONE),
        "tomillis" => (F::ToMillis, ONE),
        "isvalidip" => (F::IsValidIp, ONE),
        "isvalidipv4" => (F::IsValidIpV4, ONE),
        "isvalidipv6" => (F::IsValidIpV6, ONE),
        "isipinsubnet" => (F::IsIpInSubnet, TWO),
        "isipv4insubnet" => (F::IsIpv4InSubnet, TWO),
        "isipv6insubnet" => (F::IsIpv6InSubnet, TWO),
        _ => return None,
    })
}

/// One `stats` aggregate, e.g. `avg(latency) as mean`.
#[derive(Debug, Clone)]
pub(super) struct Aggregate {
    pub(super) function: AggregateFunction,
    /// Its argument; none for `count(*)`.
    pub(super) arg: Option<Expr>,
    pub(super) name: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum AggregateFunction {
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
    /// `pct(field, 99)`, and the `p99(field)` shorthand.
    Pct(f64),
    Stddev,
    Earliest,
    Latest,
    SortsFirst,
    SortsLast,
}

/// The aggregate function a name calls (case-insensitive); `pct` takes its
/// percentile from the call, so it comes back as `Pct(NaN)`.
pub(super) fn aggregate_function(name: &str) -> Option<AggregateFunction> {
    use AggregateFunction as A;
    let lower = name.to_ascii_lowercase();
    Some(match lower.as_str() {
        "count" => A::Count,
        "count_distinct" => A::CountDistinct,
        "sum" => A::Sum,
        "avg" => A::Avg,
        "min" => A::Min,
        "max" => A::Max,
        "pct" => A::Pct(f64::NAN),
        "stddev" => A::Stddev,
        "earliest" => A::Earliest,
        "latest" => A::Latest,
        "sortsfirst" => A::SortsFirst,
        "sortslast" => A::SortsLast,
        _ => {
            // The shorthand `p50`, `p90`, `p99`...
            let digits = lower.strip_prefix('p')?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let percent: u8 = digits.parse().ok().filter(|p| *p <= 100)?;
            A::Pct(f64::from(percent))
        }
    })
}
