//! Query text into commands. Parsing checks all that can be checked before a
//! query runs (commands, functions and their arguments, regexes, `parse`
//! patterns against their names), so running never fails.

mod expr;

use regex::{Regex, RegexBuilder};

use super::ast::{
    aggregate_function, function, Aggregate, AggregateFunction, Command, Expr, Named,
};
use super::lexer::{lex, position, Tok, Token};
use super::{QueryError, MAX_ROWS};

/// Caps what one regex may compile to, so a query cannot make the engine
/// allocate without bound; the `regex` crate already matches in linear time.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// How deep expressions may nest (parentheses, function calls, `not`, `-`, `^`).
const MAX_DEPTH: usize = 32;

/// How much of an offending token an error message quotes.
const FOUND_CHARS: usize = 32;

/// Commands of CloudWatch Logs Insights that Berth does not run.
const UNSUPPORTED: &[&str] = &[
    "dedup",
    "unmask",
    "pattern",
    "diff",
    "anomaly",
    "unnest",
    "lookup",
    "filterindex",
    "source",
];

/// Words that are never field names when bare.
const KEYWORDS: &[&str] = &["and", "or", "not", "like", "in", "as", "by", "asc", "desc"];

pub(super) fn parse(src: &str) -> Result<Vec<Command>, QueryError> {
    let mut parser = Parser {
        src,
        tokens: lex(src)?,
        next: 0,
        command: "query",
        after_stats: false,
        depth: 0,
    };
    let mut commands = Vec::new();
    if parser.tokens.is_empty() {
        return Ok(commands);
    }
    loop {
        commands.push(parser.command()?);
        if parser.peek().is_none() {
            return Ok(commands);
        }
        if !parser.eat_sym("|") {
            return Err(parser.unexpected("'|' or the end of the query"));
        }
    }
}

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Token>,
    /// The index of the next token to read.
    next: usize,
    /// The command being read, for error messages.
    command: &'static str,
    /// Whether a `stats` came before: after one, `count(*)` names its column.
    after_stats: bool,
    /// How deep the expression being read nests.
    depth: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    fn peek_tok(&self) -> Option<&Tok> {
        self.peek().map(|t| &t.tok)
    }

    /// The token after the next one.
    fn peek_second(&self) -> Option<&Tok> {
        self.tokens.get(self.next + 1).map(|t| &t.tok)
    }

    fn bump(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.next).cloned();
        self.next += usize::from(token.is_some());
        token
    }

    fn at_sym(&self, sym: &str) -> bool {
        matches!(self.peek_tok(), Some(Tok::Sym(s)) if *s == sym)
    }

    fn eat_sym(&mut self, sym: &str) -> bool {
        let found = self.at_sym(sym);
        self.next += usize::from(found);
        found
    }

    fn at_word(&self, word: &str) -> bool {
        matches!(self.peek_tok(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let found = self.at_word(word);
        self.next += usize::from(found);
        found
    }

    /// The 1-based character position of byte `offset` of the query.
    fn position(&self, offset: usize) -> usize {
        position(self.src, offset)
    }

    /// The position of the next token, or of the end of the query.
    fn here(&self) -> usize {
        self.position(self.peek().map_or(self.src.len(), |t| t.start))
    }

    /// The next token as an error message quotes it.
    fn found(&self) -> String {
        match self.peek() {
            None => "the end of the query".to_owned(),
            Some(t) => {
                let text = &self.src[t.start..t.end];
                let mut quoted: String = text.chars().take(FOUND_CHARS).collect();
                if quoted.len() < text.len() {
                    quoted.push_str("...");
                }
                format!("'{quoted}'")
            }
        }
    }

    fn unexpected(&self, expected: &'static str) -> QueryError {
        QueryError::Unexpected {
            command: self.command,
            expected,
            found: self.found(),
            position: self.here(),
        }
    }

    /// The query text of the tokens from index `from` to the last one read.
    fn text_since(&self, from: usize) -> &'a str {
        match (
            self.tokens.get(from),
            self.tokens.get(self.next.wrapping_sub(1)),
        ) {
            (Some(first), Some(last)) if from < self.next => &self.src[first.start..last.end],
            _ => "",
        }
    }

    /// A field name: a bare word that is not a keyword, or a `backquoted` one.
    fn name(&mut self, expected: &'static str) -> Result<String, QueryError> {
        let name = match self.peek_tok() {
            Some(Tok::Word(w)) if !is_keyword(w) => w.clone(),
            Some(Tok::Quoted(q)) => q.clone(),
            _ => return Err(self.unexpected(expected)),
        };
        self.next += 1;
        Ok(name)
    }

    /// The `)` or `]` that closes `open`.
    fn close(&mut self, open: &Token, close: &'static str) -> Result<(), QueryError> {
        if self.eat_sym(close) {
            return Ok(());
        }
        if self.peek().is_none() || self.at_sym("|") {
            return Err(QueryError::Unbalanced {
                delimiter: self.src[open.start..].chars().next().unwrap_or('('),
                position: self.position(open.start),
            });
        }
        Err(self.unexpected(if close == ")" { "')'" } else { "']'" }))
    }

    fn comma_list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, QueryError>,
    ) -> Result<Vec<T>, QueryError> {
        let mut items = vec![item(self)?];
        while self.eat_sym(",") {
            items.push(item(self)?);
        }
        Ok(items)
    }

    fn regex(&self, text: &str, offset: usize) -> Result<Regex, QueryError> {
        RegexBuilder::new(text)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| {
                // The crate's message draws a caret diagram over several lines; the
                // last line says what is wrong, which is what fits in one API error.
                let message = e.to_string();
                let reason = message
                    .lines()
                    .rev()
                    .map(str::trim)
                    .find(|line| !line.is_empty())
                    .unwrap_or("not a valid regular expression");
                QueryError::InvalidRegex {
                    command: self.command,
                    regex: text.to_owned(),
                    position: self.position(offset),
                    reason: reason.trim_start_matches("error: ").to_owned(),
                }
            })
    }

    fn command(&mut self) -> Result<Command, QueryError> {
        self.command = "query";
        let (word, start) = match self.peek() {
            Some(Token {
                tok: Tok::Word(w),
                start,
                ..
            }) => (w.clone(), *start),
            _ => return Err(self.unexpected("a command")),
        };
        self.next += 1;
        let lower = word.to_ascii_lowercase();
        Ok(match lower.as_str() {
            "fields" => {
                self.command = "fields";
                Command::Fields(self.comma_list(Self::named)?)
            }
            "display" => {
                self.command = "display";
                Command::Display(self.comma_list(|p| p.name("a field name"))?)
            }
            "filter" => {
                self.command = "filter";
                Command::Filter(self.expr()?)
            }
            "parse" => {
                self.command = "parse";
                self.parse_command()?
            }
            "stats" => {
                self.command = "stats";
                let aggregates = self.comma_list(Self::aggregate)?;
                let by = if self.eat_word("by") {
                    self.comma_list(Self::named)?
                } else {
                    Vec::new()
                };
                self.after_stats = true;
                Command::Stats { aggregates, by }
            }
            "sort" => {
                self.command = "sort";
                Command::Sort(self.comma_list(|p| {
                    let key = p.expr()?;
                    // Insights sorts descending unless told otherwise.
                    let descending = !p.eat_word("asc");
                    if descending {
                        p.eat_word("desc");
                    }
                    Ok((key, descending))
                })?)
            }
            "limit" => {
                self.command = "limit";
                Command::Limit(self.limit()?)
            }
            _ => {
                let position = self.position(start);
                return Err(if UNSUPPORTED.contains(&lower.as_str()) {
                    QueryError::UnsupportedCommand {
                        command: word,
                        position,
                    }
                } else {
                    QueryError::UnknownCommand {
                        command: word,
                        position,
                    }
                });
            }
        })
    }

    /// `expr` or `expr as name`; without `as`, the name is the expression's text.
    fn named(&mut self) -> Result<Named, QueryError> {
        let from = self.next;
        let expr = self.expr()?;
        let name = if self.eat_word("as") {
            self.name("a field name after 'as'")?
        } else {
            self.text_since(from).to_owned()
        };
        Ok(Named { expr, name })
    }

    fn limit(&mut self) -> Result<usize, QueryError> {
        if let Some(Token {
            tok: Tok::Num(_),
            start,
            end,
        }) = self.peek()
        {
            if let Ok(n) = self.src[*start..*end].parse::<usize>() {
                if (1..=MAX_ROWS).contains(&n) {
                    self.next += 1;
                    return Ok(n);
                }
            }
        }
        Err(QueryError::InvalidLimit {
            found: self.found(),
            position: self.here(),
            max: MAX_ROWS,
        })
    }

    /// After `parse`: an optional field (`@message` by default), then a glob
    /// with `as` names, or a regex with named groups.
    fn parse_command(&mut self) -> Result<Command, QueryError> {
        let source = if matches!(self.peek_tok(), Some(Tok::Str(_) | Tok::Regex(_))) {
            Expr::Field("@message".to_owned())
        } else {
            Expr::Field(self.name("a field to parse")?)
        };
        let (pattern, offset) = match self.peek() {
            Some(
                t @ Token {
                    tok: Tok::Str(_) | Tok::Regex(_),
                    ..
                },
            ) => (t.tok.clone(), t.start),
            _ => return Err(self.unexpected("a \"pattern with *\" or a /regex/")),
        };
        self.next += 1;
        let (regex, captures) = if let Tok::Str(glob) = pattern {
            if !self.eat_word("as") {
                return Err(self.unexpected("'as' and a name for each '*'"));
            }
            let names = self.comma_list(|p| p.name("a field name"))?;
            let stars = glob.matches('*').count();
            if stars != names.len() {
                return Err(QueryError::ParseNamesMismatch {
                    captures: stars,
                    names: names.len(),
                    position: self.position(offset),
                });
            }
            let captures = names.into_iter().enumerate().map(|(i, n)| (i + 1, n));
            (self.regex(&glob_regex(&glob), offset)?, captures.collect())
        } else {
            let Tok::Regex(text) = pattern else {
                unreachable!("matched above")
            };
            let regex = self.regex(&text, offset)?;
            let captures: Vec<(usize, String)> = regex
                .capture_names()
                .enumerate()
                .filter_map(|(i, name)| Some((i, name?.to_owned())))
                .collect();
            if captures.is_empty() {
                return Err(QueryError::ParseRegexWithoutNames {
                    position: self.position(offset),
                });
            }
            (regex, captures)
        };
        Ok(Command::Parse {
            source,
            regex,
            captures,
        })
    }

    /// One `stats` item: an aggregate call, maybe with `as`.
    fn aggregate(&mut self) -> Result<Aggregate, QueryError> {
        let from = self.next;
        let position = self.here();
        let word = match (self.peek_tok(), self.peek_second()) {
            (Some(Tok::Word(w)), Some(Tok::Sym("("))) => w.clone(),
            _ => {
                return Err(QueryError::NotAnAggregate {
                    found: self.found(),
                    position,
                })
            }
        };
        let Some(mut aggregate) = aggregate_function(&word) else {
            return Err(if function(&word).is_some() {
                QueryError::NotAnAggregate {
                    found: format!("'{word}'"),
                    position,
                }
            } else {
                QueryError::UnknownFunction {
                    function: word,
                    position,
                }
            });
        };
        self.next += 1;
        let open = self.bump().expect("peeked '('");
        let counts_all =
            aggregate == AggregateFunction::Count && (self.eat_sym("*") || self.at_sym(")"));
        let arg = if counts_all { None } else { Some(self.expr()?) };
        if matches!(aggregate, AggregateFunction::Pct(p) if p.is_nan()) {
            if !self.eat_sym(",") {
                return Err(QueryError::WrongArgumentCount {
                    function: word,
                    expected: "2 arguments: a field and a percentile",
                    given: 1,
                    position,
                });
            }
            aggregate = AggregateFunction::Pct(self.percentile(&word)?);
        }
        if self.at_sym(",") {
            return Err(QueryError::WrongArgumentCount {
                function: word,
                expected: if matches!(aggregate, AggregateFunction::Pct(_)) {
                    "2 arguments: a field and a percentile"
                } else {
                    "1 argument"
                },
                given: 2,
                position,
            });
        }
        self.close(&open, ")")?;
        let name = self.text_since(from).to_owned();
        let name = if self.eat_word("as") {
            self.name("a field name after 'as'")?
        } else {
            name
        };
        Ok(Aggregate {
            function: aggregate,
            arg,
            name,
        })
    }

    fn percentile(&mut self, function: &str) -> Result<f64, QueryError> {
        match self.peek_tok() {
            Some(Tok::Num(p)) if (0.0..=100.0).contains(p) => {
                let p = *p;
                self.next += 1;
                Ok(p)
            }
            _ => Err(QueryError::InvalidArgument {
                function: function.to_owned(),
                expected: "a percentile from 0 to 100",
                found: self.found(),
                position: self.here(),
            }),
        }
    }
}

fn is_keyword(word: &str) -> bool {
    KEYWORDS.iter().any(|k| word.eq_ignore_ascii_case(k))
}

/// The regex a `parse` glob stands for: its text literally, each `*` a lazy
/// capture, but a `*` that ends the glob takes the rest of the value.
fn glob_regex(glob: &str) -> String {
    let pieces: Vec<&str> = glob.split('*').collect();
    let mut regex = String::from("(?s)");
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 {
            let last = i == pieces.len() - 1 && piece.is_empty();
            regex.push_str(if last { "(.*)" } else { "(.*?)" });
        }
        regex.push_str(&regex::escape(piece));
    }
    regex
}
