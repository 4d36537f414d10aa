//! Why a Logs Insights query is malformed. Each message is what the API's
//! `MalformedQueryException` carries; positions are 1-based and count characters
//! of the query as given.

/// The commands Berth runs, as error messages list them.
const COMMANDS: &str = "fields, filter, parse, stats, sort, limit and display";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueryError {
    /// Longer than `StartQuery`'s `queryString` may be.
    #[error("the query is {length} characters long; the limit is {max}")]
    TooLong { length: usize, max: usize },
    /// A command of CloudWatch Logs Insights that Berth does not run.
    #[error("unsupported command '{command}' at position {position}: Berth runs {COMMANDS}", COMMANDS = COMMANDS)]
    UnsupportedCommand { command: String, position: usize },
    #[error("unknown command '{command}' at position {position}: commands are {COMMANDS}", COMMANDS = COMMANDS)]
    UnknownCommand { command: String, position: usize },
    /// A quote, regex slash, backquote, parenthesis or bracket that nothing closes.
    #[error("unbalanced '{delimiter}' at position {position}: nothing closes it")]
    Unbalanced { delimiter: char, position: usize },
    #[error("unexpected character '{found}' at position {position}")]
    UnexpectedCharacter { found: char, position: usize },
    #[error("{command}: expected {expected} at position {position}, found {found}")]
    Unexpected {
        command: &'static str,
        expected: &'static str,
        /// The offending token, quoted, or "the end of the query".
        found: String,
        position: usize,
    },
    #[error("{command}: regex /{regex}/ at position {position} is not valid: {reason}")]
    InvalidRegex {
        command: &'static str,
        regex: String,
        position: usize,
        reason: String,
    },
    #[error("the expression at position {position} nests more than {max} deep")]
    TooDeep { position: usize, max: usize },
    #[error("unknown function '{function}' at position {position}")]
    UnknownFunction { function: String, position: usize },
    #[error("function '{function}' at position {position} takes {expected}; it was given {given}")]
    WrongArgumentCount {
        function: String,
        expected: &'static str,
        given: usize,
        position: usize,
    },
    #[error("function '{function}' at position {position} needs {expected}, found {found}")]
    InvalidArgument {
        function: String,
        expected: &'static str,
        found: String,
        position: usize,
    },
    /// `count`, `sum` and the like outside `stats`, before any `stats` made their column.
    #[error("'{function}' at position {position} aggregates; use it in stats")]
    AggregateOutsideStats { function: String, position: usize },
    #[error(
        "stats: expected an aggregate function (count, count_distinct, sum, avg, min, max, \
         pct, stddev, earliest, latest, sortsFirst, sortsLast) at position {position}, \
         found {found}"
    )]
    NotAnAggregate { found: String, position: usize },
    #[error(
        "limit: expected a whole number from 1 to {max} at position {position}, found {found}"
    )]
    InvalidLimit {
        found: String,
        position: usize,
        max: usize,
    },
    #[error(
        "parse: the pattern at position {position} has {captures} '*', but {names} names \
         follow 'as'"
    )]
    ParseNamesMismatch {
        captures: usize,
        names: usize,
        position: usize,
    },
    #[error(
        "parse: the regex at position {position} names no fields; capture them with \
         (?<name>...)"
    )]
    ParseRegexWithoutNames { position: usize },
}
