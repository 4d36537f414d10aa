//! The lexer the pattern kinds share: a cursor over the pattern text that reads
//! quoted strings, operators and operands, and turns byte offsets into the
//! positions errors show (1-based, counted in characters).

use super::value::{compile_regex, parse_number, Glob, Op, Operand};
use super::FilterPatternError;

/// How much of an offending token an error message quotes.
const FOUND_CHARS: usize = 32;

/// A cursor over `src[start..end]`; offsets stay relative to the whole pattern
/// so every error can point into what the user typed.
pub(super) struct Cursor<'a> {
    src: &'a str,
    pos: usize,
    end: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(src: &'a str, start: usize, end: usize) -> Self {
        Self {
            src,
            pos: start,
            end,
        }
    }

    pub(super) fn source(&self) -> &'a str {
        self.src
    }

    pub(super) fn rest(&self) -> &'a str {
        &self.src[self.pos..self.end]
    }

    pub(super) fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.end
    }

    pub(super) fn offset(&self) -> usize {
        self.pos
    }

    pub(super) fn rewind(&mut self, offset: usize) {
        self.pos = offset;
    }

    pub(super) fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    pub(super) fn eat(&mut self, token: &str) -> bool {
        let found = self.rest().starts_with(token);
        if found {
            self.pos += token.len();
        }
        found
    }

    pub(super) fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let len = rest.find(|c| !keep(c)).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    /// The position a user would count for byte `offset` of the pattern.
    pub(super) fn position(&self, offset: usize) -> usize {
        self.src.get(..offset).map_or(0, |s| s.chars().count()) + 1
    }

    pub(super) fn here(&self) -> usize {
        self.position(self.pos)
    }

    /// A syntax error at the cursor, quoting what is there instead.
    pub(super) fn unexpected(&self, expected: &'static str) -> FilterPatternError {
        let token: String = match self.rest().split_whitespace().next() {
            None => "the end of the pattern".to_owned(),
            Some(word) => {
                let mut quoted: String = word.chars().take(FOUND_CHARS).collect();
                if word.chars().nth(FOUND_CHARS).is_some() {
                    quoted.push_str("...");
                }
                format!("'{quoted}'")
            }
        };
        FilterPatternError::Unexpected {
            expected,
            found: token,
            position: self.here(),
        }
    }

    /// Reads a double-quoted string at the cursor and returns the raw text
    /// between the quotes, escapes untouched (see `value::unescape`).
    pub(super) fn quoted(&mut self) -> Result<&'a str, FilterPatternError> {
        let open = self.pos;
        let body = self.src.get(open + 1..self.end).unwrap_or_default();
        let mut escaped = false;
        for (at, c) in body.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    self.pos = open + 1 + at + 1;
                    return Ok(&body[..at]);
                }
                _ => {}
            }
        }
        Err(FilterPatternError::Unbalanced {
            delimiter: '"',
            position: self.position(open),
        })
    }

    /// Reads `%...%` at the cursor and compiles what is between the signs.
    pub(super) fn regex(&mut self) -> Result<regex::Regex, FilterPatternError> {
        let open = self.pos;
        let position = self.position(open);
        let body = self.src.get(open + 1..self.end).unwrap_or_default();
        let Some(len) = body.find('%') else {
            return Err(FilterPatternError::Unbalanced {
                delimiter: '%',
                position,
            });
        };
        if len == 0 {
            return Err(FilterPatternError::Empty {
                what: "regex",
                position,
            });
        }
        self.pos = open + 1 + len + 1;
        compile_regex(&body[..len], position)
    }

    pub(super) fn operator(&mut self) -> Option<Op> {
        // Two-character operators first: `<=` must not read as `<`.
        let ops = [
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("=", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ];
        ops.into_iter()
            .find(|(token, _)| self.eat(token))
            .map(|(_, op)| op)
    }

    /// Reads the value after `op`: `"quoted"`, `%regex%`, or a bare word that
    /// ends where `stop` says (whitespace always ends it).
    pub(super) fn operand(
        &mut self,
        op: Op,
        stop: fn(char) -> bool,
    ) -> Result<Operand, FilterPatternError> {
        self.skip_ws();
        let start = self.pos;
        let operand = match self.peek() {
            Some('"') => Operand::Text(Glob::quoted(self.quoted()?)),
            Some('%') => Operand::Regex(self.regex()?),
            _ => {
                let word = self.take_while(is_bare);
                if self.peek().is_some_and(|c| !c.is_whitespace() && !stop(c)) {
                    self.rewind(start);
                    let text = self.take_while(|c| !c.is_whitespace() && !stop(c));
                    return Err(FilterPatternError::Unquoted {
                        text: text.to_owned(),
                        position: self.position(start),
                    });
                }
                if word.is_empty() {
                    return Err(self.unexpected("a value"));
                }
                match parse_number(word) {
                    Some(value) => Operand::Number {
                        value,
                        text: word.to_owned(),
                    },
                    None => Operand::Text(Glob::bare(word)),
                }
            }
        };
        if op.is_ordering() && !matches!(operand, Operand::Number { .. }) {
            return Err(FilterPatternError::NotANumber {
                operator: op.symbol(),
                value: self.src[start..self.pos].to_owned(),
                position: self.position(start),
            });
        }
        Ok(operand)
    }
}

/// What an unquoted value may hold: enough for words, numbers, IP addresses,
/// paths and times (`123.123.*`, `/index.html`, `13:25:15`); the rest needs quotes.
fn is_bare(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '*' | '+' | ':' | '/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_stop(c: char) -> bool {
        matches!(c, ')' | '&' | '|')
    }

    fn operand(src: &str, op: Op) -> Result<Operand, FilterPatternError> {
        Cursor::new(src, 0, src.len()).operand(op, json_stop)
    }

    #[test]
    fn positions_count_characters_from_one() {
        let src = "é \"x";
        let cur = Cursor::new(src, 0, src.len());
        assert_eq!(cur.position(0), 1);
        assert_eq!(cur.position(3), 3, "é is two bytes, one character");
    }

    #[test]
    fn quoted_with_escaped_quote() {
        let src = r#""a \"b\" c" tail"#;
        let mut cur = Cursor::new(src, 0, src.len());
        assert_eq!(cur.quoted().unwrap(), r#"a \"b\" c"#);
        assert_eq!(cur.rest(), " tail");
    }

    #[test]
    fn unterminated_quote_points_at_the_opening_quote() {
        let src = r#"ab "cd\""#;
        let mut cur = Cursor::new(src, 3, src.len());
        assert_eq!(
            cur.quoted(),
            Err(FilterPatternError::Unbalanced {
                delimiter: '"',
                position: 4
            })
        );
    }

    #[test]
    fn operators_longest_first() {
        for (src, op) in [
            ("<=1", Op::Le),
            (">=", Op::Ge),
            ("!=", Op::Ne),
            ("<", Op::Lt),
        ] {
            assert_eq!(Cursor::new(src, 0, src.len()).operator(), Some(op));
        }
        assert_eq!(Cursor::new("==", 0, 1).operator(), Some(Op::Eq));
        assert_eq!(Cursor::new("!", 0, 1).operator(), None);
    }

    #[test]
    fn operand_kinds() {
        assert!(matches!(
            operand(" 200", Op::Eq),
            Ok(Operand::Number { .. })
        ));
        assert!(matches!(operand("4*", Op::Eq), Ok(Operand::Text(_))));
        assert!(matches!(operand("\"a b\"", Op::Eq), Ok(Operand::Text(_))));
        assert!(matches!(operand("%a+%", Op::Eq), Ok(Operand::Regex(_))));
        assert!(matches!(
            operand("123.123.*)", Op::Ne),
            Ok(Operand::Text(_))
        ));
    }

    #[test]
    fn operand_errors() {
        assert_eq!(
            operand("a@b c", Op::Eq).unwrap_err(),
            FilterPatternError::Unquoted {
                text: "a@b".into(),
                position: 1
            }
        );
        assert_eq!(
            operand("abc", Op::Gt).unwrap_err(),
            FilterPatternError::NotANumber {
                operator: ">",
                value: "abc".into(),
                position: 1
            }
        );
        assert!(matches!(
            operand("  ", Op::Eq),
            Err(FilterPatternError::Unexpected {
                expected: "a value",
                ..
            })
        ));
        assert!(matches!(
            operand("%%", Op::Eq),
            Err(FilterPatternError::Empty { what: "regex", .. })
        ));
        assert!(matches!(
            operand("%abc", Op::Eq),
            Err(FilterPatternError::Unbalanced { delimiter: '%', .. })
        ));
    }

    #[test]
    fn unexpected_quotes_a_short_token() {
        let long = "x".repeat(100);
        let err = Cursor::new(&long, 0, long.len()).unexpected("a value");
        let FilterPatternError::Unexpected { found, .. } = err else {
            panic!("wrong error")
        };
        assert_eq!(found.chars().count(), FOUND_CHARS + 5);
        let end = Cursor::new("", 0, 0).unexpected("a value");
        assert!(end.to_string().contains("the end of the pattern"), "{end}");
    }
}
