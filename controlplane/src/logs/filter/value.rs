//! Values a filter pattern compares against: operators, `*` wildcard strings,
//! numbers and `%regex%` operands, and how each one tests a string or a number.

use regex::{Regex, RegexBuilder};

use super::FilterPatternError;

/// Caps what one `%regex%` may compile to, so a pattern cannot make the matcher
/// allocate without bound; the `regex` crate already matches in linear time.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

impl Op {
    pub(super) fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Gt => ">",
            Op::Le => "<=",
            Op::Ge => ">=",
        }
    }

    /// `<`, `>`, `<=` and `>=` only make sense between numbers.
    pub(super) fn is_ordering(self) -> bool {
        !matches!(self, Op::Eq | Op::Ne)
    }
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone)]
pub(super) enum Operand {
    /// A string, with `*` standing for any run of characters.
    Text(Glob),
    /// A number, and the text it was written as (a string value compares against that text).
    Number {
        value: f64,
        text: String,
    },
    Regex(Regex),
}

/// One `op operand` test, e.g. `= 4*` or `> 1000`.
#[derive(Debug, Clone)]
pub(super) struct Comparison {
    op: Op,
    operand: Operand,
}

impl Comparison {
    pub(super) fn new(op: Op, operand: Operand) -> Self {
        Self { op, operand }
    }

    /// Tests a value whose text is `text`; `number` is set when the value is a number.
    pub(super) fn test(&self, text: &str, number: Option<f64>) -> bool {
        let equal = match (&self.operand, number) {
            (Operand::Number { value, .. }, Some(n)) => match self.op {
                Op::Lt => return n < *value,
                Op::Gt => return n > *value,
                Op::Le => return n <= *value,
                Op::Ge => return n >= *value,
                Op::Eq | Op::Ne => n.partial_cmp(value) == Some(std::cmp::Ordering::Equal),
            },
            // Not a number: ordering cannot hold; (in)equality falls back to the
            // literal's text, so `= 400` still finds the string "400".
            _ if self.op.is_ordering() => return false,
            (Operand::Number { text: literal, .. }, None) => text == literal,
            (Operand::Text(glob), _) => glob.matches(text),
            (Operand::Regex(re), _) => re.is_match(text),
        };
        equal == (self.op == Op::Eq)
    }
}

/// A string with `*` wildcards, matched against a whole value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Glob {
    /// The literal pieces between wildcards: one piece means no wildcard.
    parts: Vec<String>,
}

impl Glob {
    /// A bare (unquoted) value: every `*` is a wildcard.
    pub(super) fn bare(text: &str) -> Self {
        Self {
            parts: text.split('*').map(str::to_owned).collect(),
        }
    }

    /// The raw text between double quotes: `*` is a wildcard, `\*` an asterisk.
    pub(super) fn quoted(raw: &str) -> Self {
        Self {
            parts: unescape(raw),
        }
    }

    pub(super) fn matches(&self, text: &str) -> bool {
        match self.parts.as_slice() {
            [] => false,
            [only] => text == only,
            [first, middle @ .., last] => {
                if text.len() < first.len() + last.len()
                    || !text.starts_with(first.as_str())
                    || !text.ends_with(last.as_str())
                {
                    return false;
                }
                // Leftmost placement of each middle piece is always safe: the
                // wildcards around it can absorb whatever it skips.
                let mut rest = &text[first.len()..text.len() - last.len()];
                for part in middle {
                    match rest.find(part.as_str()) {
                        Some(at) => rest = &rest[at + part.len()..],
                        None => return false,
                    }
                }
                true
            }
        }
    }
}

/// Undoes `\"`, `\\` and `\*` in quoted text, splitting it at the unescaped
/// `*`s; any other backslash stays, so `"C:\logs"` means what it says.
pub(super) fn unescape(raw: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        let last = parts.last_mut().expect("parts starts non-empty");
        match c {
            '\\' => match chars.next() {
                Some(next @ ('"' | '\\' | '*')) => last.push(next),
                Some(next) => {
                    last.push('\\');
                    last.push(next);
                }
                None => last.push('\\'),
            },
            '*' => parts.push(String::new()),
            c => last.push(c),
        }
    }
    parts
}

/// A number as filter patterns write it: an optional sign, digits, an optional
/// fraction and an optional exponent (`-1`, `55.5`, `+1000`, `10e-3`). Stricter
/// than `f64::from_str`, which would also take `inf` and `NaN`.
pub(super) fn parse_number(text: &str) -> Option<f64> {
    fn digits(bytes: &[u8], at: &mut usize) -> bool {
        let start = *at;
        while bytes.get(*at).is_some_and(u8::is_ascii_digit) {
            *at += 1;
        }
        *at > start
    }
    let bytes = text.as_bytes();
    let mut at = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    if !digits(bytes, &mut at) {
        return None;
    }
    if bytes.get(at) == Some(&b'.') {
        at += 1;
        if !digits(bytes, &mut at) {
            return None;
        }
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(bytes.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        if !digits(bytes, &mut at) {
            return None;
        }
    }
    if at == bytes.len() {
        text.parse().ok()
    } else {
        None
    }
}

/// Compiles the text between `%` signs; `position` is where the opening `%` is.
pub(super) fn compile_regex(source: &str, position: usize) -> Result<Regex, FilterPatternError> {
    RegexBuilder::new(source)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            // The crate's message draws a caret diagram over several lines; the
            // last line says what is wrong, which is what fits in one API error.
            let text = e.to_string();
            let reason = text
                .lines()
                .rev()
                .map(str::trim)
                .find(|line| !line.is_empty())
                .unwrap_or("not a valid regular expression");
            FilterPatternError::InvalidRegex {
                regex: source.to_owned(),
                position,
                reason: reason.trim_start_matches("error: ").to_owned(),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(text: &str) -> Operand {
        Operand::Number {
            value: parse_number(text).unwrap(),
            text: text.to_owned(),
        }
    }

    #[test]
    fn glob_without_wildcards_is_equality() {
        let glob = Glob::bare("UpdateTrail");
        assert!(glob.matches("UpdateTrail"));
        assert!(!glob.matches("UpdateTrails"));
        assert!(!glob.matches("xUpdateTrail"));
    }

    #[test]
    fn glob_wildcards_anywhere() {
        assert!(Glob::bare("*Event").matches("PutEvent"));
        assert!(Glob::bare("Event*").matches("EventName"));
        assert!(Glob::bare("Ev*ent").matches("Ev-some-ent"));
        assert!(Glob::bare("123.123.*").matches("123.123.9.1"));
        assert!(!Glob::bare("123.123.*").matches("111.111.111.111"));
        assert!(Glob::bare("*html*").matches("GET /index.html HTTP/1.0"));
        assert!(Glob::bare("*").matches(""));
        assert!(Glob::bare("a*b*c").matches("abc"));
        assert!(!Glob::bare("a*b*c").matches("acb"));
        assert!(Glob::bare("**").matches("anything"));
    }

    #[test]
    fn glob_pieces_do_not_overlap() {
        // "aa" would satisfy both prefix and suffix only by sharing a character.
        assert!(!Glob::bare("aa*aa").matches("aaa"));
        assert!(Glob::bare("aa*aa").matches("aaaa"));
    }

    #[test]
    fn glob_unicode() {
        assert!(Glob::bare("é*ü").matches("éaü"));
        assert!(Glob::quoted("日本*").matches("日本語"));
        assert!(!Glob::quoted("日本*").matches("本日"));
    }

    #[test]
    fn quoted_escapes() {
        assert_eq!(unescape(r#"say \"hi\""#), vec![r#"say "hi""#]);
        assert_eq!(unescape(r"a\*b"), vec!["a*b"]);
        assert_eq!(unescape(r"a*b"), vec!["a", "b"]);
        assert_eq!(unescape(r"C:\logs\\x"), vec![r"C:\logs\x"]);
        assert!(Glob::quoted(r"5\*").matches("5*"));
        assert!(!Glob::quoted(r"5\*").matches("50"));
    }

    #[test]
    fn numbers_as_aws_writes_them() {
        assert_eq!(parse_number("400"), Some(400.0));
        assert_eq!(parse_number("+1000"), Some(1000.0));
        assert_eq!(parse_number("-1"), Some(-1.0));
        assert_eq!(parse_number("55.5"), Some(55.5));
        assert_eq!(parse_number("10e3"), Some(10e3));
        assert_eq!(parse_number("10e-3"), Some(10e-3));
        for not in [
            "", "-", "1.", ".5", "1e", "inf", "NaN", "1.2.3", "4*", "0x10", "1 ",
        ] {
            assert_eq!(parse_number(not), None, "{not}");
        }
    }

    #[test]
    fn numeric_comparisons() {
        let gt = Comparison::new(Op::Gt, number("100"));
        assert!(gt.test("150", Some(150.0)));
        assert!(gt.test("150.5", Some(150.5)));
        assert!(!gt.test("100", Some(100.0)));
        assert!(!gt.test("150", None), "ordering needs a number");
        let ge = Comparison::new(Op::Ge, number("100"));
        assert!(ge.test("100", Some(100.0)));
        let lt = Comparison::new(Op::Lt, number("10e-3"));
        assert!(lt.test("0.001", Some(0.001)));
    }

    #[test]
    fn number_equality_against_text_uses_the_literal() {
        let eq = Comparison::new(Op::Eq, number("400"));
        assert!(eq.test("400", Some(400.0)));
        assert!(eq.test("400.0", Some(400.0)));
        assert!(eq.test("400", None));
        assert!(!eq.test("four hundred", None));
        let ne = Comparison::new(Op::Ne, number("500"));
        assert!(ne.test("400", Some(400.0)));
        assert!(!ne.test("500", Some(500.0)));
    }

    #[test]
    fn regex_operand() {
        let re = compile_regex("^GET /.*\\.html", 1).unwrap();
        let eq = Comparison::new(Op::Eq, Operand::Regex(re.clone()));
        assert!(eq.test("GET /index.html HTTP/1.0", None));
        assert!(!Comparison::new(Op::Ne, Operand::Regex(re)).test("GET /a.html", None));
    }

    #[test]
    fn bad_regex_names_what_is_wrong_on_one_line() {
        let err = compile_regex("a(", 7).unwrap_err();
        let FilterPatternError::InvalidRegex {
            regex,
            position,
            reason,
        } = err
        else {
            panic!("wrong error")
        };
        assert_eq!((regex.as_str(), position), ("a(", 7));
        assert!(!reason.contains('\n') && !reason.is_empty(), "{reason}");
    }

    #[test]
    fn huge_regex_is_refused() {
        assert!(compile_regex("\\w{1000}{1000}", 1).is_err());
    }
}
