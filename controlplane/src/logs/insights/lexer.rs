//! The query's tokens: names, strings, `/regex/` literals, numbers, periods
//! (`5m`) and operators, each with where it sits in the query text.

use super::QueryError;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// A bare name: a field (`@message`, `http.status`), a function, a command or a keyword.
    Word(String),
    /// A `backquoted` field name, never a keyword.
    Quoted(String),
    Str(String),
    Regex(String),
    Num(f64),
    /// A number with a unit straight after it, as written: `5m`, `30s`.
    Period(String),
    Sym(&'static str),
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub(super) tok: Tok,
    /// Byte offsets into the query.
    pub(super) start: usize,
    pub(super) end: usize,
}

/// Longest first, so `<=` is never read as `<` then `=`.
const SYMBOLS: &[&str] = &[
    "!=", "<=", ">=", "=~", "|", ",", "(", ")", "[", "]", "=", "<", ">", "+", "-", "*", "/", "%",
    "^",
];

/// Words after which a `/` opens a regex rather than dividing.
const BEFORE_REGEX: &[&str] = &["like", "and", "or", "not", "in", "parse", "filter"];

/// The 1-based character position of byte `offset` of `src`.
pub(super) fn position(src: &str, offset: usize) -> usize {
    src.get(..offset).map_or(0, |s| s.chars().count()) + 1
}

pub(super) fn lex(src: &str) -> Result<Vec<Token>, QueryError> {
    let mut tokens: Vec<Token> = Vec::new();
    let mut pos = 0;
    while let Some(c) = src[pos..].chars().next() {
        let start = pos;
        let tok = if c.is_whitespace() {
            pos += c.len_utf8();
            continue;
        } else if c == '#' {
            // A comment runs to the end of its line.
            pos = src[pos..].find('\n').map_or(src.len(), |n| pos + n);
            continue;
        } else if c == '"' || c == '\'' {
            let (text, end) = quoted(src, pos, c)?;
            pos = end;
            Tok::Str(text)
        } else if c == '`' {
            let close = src[pos + 1..].find('`').ok_or(QueryError::Unbalanced {
                delimiter: '`',
                position: position(src, pos),
            })?;
            pos += close + 2;
            Tok::Quoted(src[start + 1..pos - 1].to_owned())
        } else if c == '/' && slash_opens_regex(&tokens) {
            let (text, end) = regex_literal(src, pos)?;
            pos = end;
            Tok::Regex(text)
        } else if c.is_ascii_digit() {
            pos = number_end(src, pos);
            let digits = &src[start..pos];
            let unit = src[pos..]
                .find(|c: char| !c.is_alphabetic())
                .unwrap_or(src.len() - pos);
            if unit > 0 {
                pos += unit;
                Tok::Period(src[start..pos].to_owned())
            } else {
                Tok::Num(digits.parse().unwrap_or(f64::INFINITY))
            }
        } else if is_name_start(c) {
            pos += src[pos..]
                .find(|c| !is_name_char(c))
                .unwrap_or(src.len() - pos);
            Tok::Word(src[start..pos].to_owned())
        } else if let Some(sym) = SYMBOLS.iter().find(|s| src[pos..].starts_with(**s)) {
            pos += sym.len();
            Tok::Sym(sym)
        } else {
            return Err(QueryError::UnexpectedCharacter {
                found: c,
                position: position(src, pos),
            });
        };
        tokens.push(Token {
            tok,
            start,
            end: pos,
        });
    }
    Ok(tokens)
}

fn is_name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '@' || c == '$'
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '@' | '$' | '.')
}

/// A `/` divides after an operand and opens a regex anywhere else, including
/// straight after `parse <field>`.
fn slash_opens_regex(tokens: &[Token]) -> bool {
    let keyword = |t: &Token, words: &[&str]| matches!(&t.tok, Tok::Word(w) if words.iter().any(|k| w.eq_ignore_ascii_case(k)));
    match tokens {
        [] => true,
        [.., before, last] if keyword(before, &["parse"]) => {
            matches!(last.tok, Tok::Word(_) | Tok::Quoted(_)) || keyword(last, BEFORE_REGEX)
        }
        [.., last] => match &last.tok {
            Tok::Sym(s) => !matches!(*s, ")" | "]"),
            Tok::Word(_) => keyword(last, BEFORE_REGEX),
            _ => false,
        },
    }
}

/// Digits, then maybe a fraction and an exponent; the byte offset after them.
fn number_end(src: &str, start: usize) -> usize {
    let bytes = src.as_bytes();
    let digits = |mut i: usize| {
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let mut end = digits(start);
    if bytes.get(end) == Some(&b'.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit) {
        end = digits(end + 1);
    }
    if matches!(bytes.get(end), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(bytes.get(end + 1), Some(b'+' | b'-')));
        if bytes.get(end + 1 + sign).is_some_and(u8::is_ascii_digit) {
            end = digits(end + 1 + sign);
        }
    }
    end
}

/// A string in `quote`s from byte `start`: its text with escapes resolved, and
/// the offset after the closing quote. Escapes it does not know keep their backslash,
/// so a string used as a regex keeps `\d`.
fn quoted(src: &str, start: usize, quote: char) -> Result<(String, usize), QueryError> {
    let mut text = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, 'n')) => text.push('\n'),
                Some((_, 't')) => text.push('\t'),
                Some((_, e)) if e == quote || e == '\\' => text.push(e),
                Some((_, e)) => {
                    text.push('\\');
                    text.push(e);
                }
                None => break,
            },
            c if c == quote => return Ok((text, start + 1 + i + 1)),
            c => text.push(c),
        }
    }
    Err(QueryError::Unbalanced {
        delimiter: quote,
        position: position(src, start),
    })
}

/// A `/regex/` from byte `start`: the regex (`\/` read as `/`) and the offset after it.
fn regex_literal(src: &str, start: usize) -> Result<(String, usize), QueryError> {
    let mut text = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, '/')) => text.push('/'),
                Some((_, e)) => {
                    text.push('\\');
                    text.push(e);
                }
                None => break,
            },
            '/' => return Ok((text, start + 1 + i + 1)),
            c => text.push(c),
        }
    }
    Err(QueryError::Unbalanced {
        delimiter: '/',
        position: position(src, start),
    })
}
