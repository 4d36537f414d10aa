//! Unstructured-text patterns: terms that must appear (`ERROR`), alternatives
//! of which one must appear (`?WARN`), and terms that must not (`-DEBUG`), each a
//! case-sensitive substring of the message.

use super::syntax::Cursor;
use super::value::unescape;
use super::FilterPatternError;

#[derive(Debug, Clone, Default)]
pub(super) struct Terms {
    required: Vec<String>,
    alternatives: Vec<String>,
    excluded: Vec<String>,
}

impl Terms {
    pub(super) fn matches(&self, message: &str) -> bool {
        let contains = |term: &String| message.contains(term.as_str());
        self.required.iter().all(contains)
            && (self.alternatives.is_empty() || self.alternatives.iter().any(contains))
            && !self.excluded.iter().any(contains)
    }
}

pub(super) fn parse(cur: &mut Cursor<'_>) -> Result<Terms, FilterPatternError> {
    let mut terms = Terms::default();
    loop {
        cur.skip_ws();
        if cur.at_end() {
            return Ok(terms);
        }
        let list = if cur.eat("?") {
            &mut terms.alternatives
        } else if cur.eat("-") {
            &mut terms.excluded
        } else {
            &mut terms.required
        };
        // AWS's own example writes `"ERROR" - "Exiting"`: a prefix standing
        // apart still belongs to the next term.
        cur.skip_ws();
        list.push(term(cur)?);
    }
}

fn term(cur: &mut Cursor<'_>) -> Result<String, FilterPatternError> {
    let start = cur.offset();
    if cur.peek() == Some('"') {
        let text = unescape(cur.quoted()?).join("*");
        if cur.peek().is_some_and(|c| !c.is_whitespace()) {
            return Err(cur.unexpected("a space after the closing '\"'"));
        }
        return Ok(text);
    }
    let word = cur.take_while(|c| !c.is_whitespace());
    if word.is_empty() {
        return Err(cur.unexpected("a term"));
    }
    if !word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(FilterPatternError::Unquoted {
            text: word.to_owned(),
            position: cur.position(start),
        });
    }
    Ok(word.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(src: &str) -> Result<Terms, FilterPatternError> {
        parse(&mut Cursor::new(src, 0, src.len()))
    }

    fn matches(pattern: &str, message: &str) -> bool {
        terms(pattern).unwrap().matches(message)
    }

    #[test]
    fn kinds_of_term() {
        let t = terms(r#"ERROR ?WARN ?"disk full" -DEBUG -"x y""#).unwrap();
        assert_eq!(t.required, ["ERROR"]);
        assert_eq!(t.alternatives, ["WARN", "disk full"]);
        assert_eq!(t.excluded, ["DEBUG", "x y"]);
    }

    #[test]
    fn detached_prefix_applies_to_the_next_term() {
        let t = terms(r#""ERROR" - "Exiting" ?  WARN"#).unwrap();
        assert_eq!(t.required, ["ERROR"]);
        assert_eq!(t.excluded, ["Exiting"]);
        assert_eq!(t.alternatives, ["WARN"]);
    }

    #[test]
    fn alternatives_and_required_together() {
        assert!(matches("ERROR ?disk ?memory", "ERROR memory low"));
        assert!(!matches("ERROR ?disk ?memory", "ERROR cpu hot"));
        assert!(!matches("ERROR ?disk ?memory", "WARN disk full"));
    }

    #[test]
    fn only_exclusions_match_everything_else() {
        assert!(matches("-DEBUG", "INFO started"));
        assert!(!matches("-DEBUG", "DEBUG x=1"));
        assert!(matches("-DEBUG", ""));
    }

    #[test]
    fn case_sensitive_substrings() {
        assert!(matches("ERROR", "ERRORCODE: -1"));
        assert!(!matches("ERROR", "error: lower case"));
    }

    #[test]
    fn escaped_quotes_inside_a_term() {
        assert!(matches(r#""say \"hi\"""#, r#"they say "hi" twice"#));
        assert!(!matches(r#""say \"hi\"""#, "they say hi"));
    }

    #[test]
    fn asterisk_in_a_term_is_literal() {
        assert!(matches(r#""a*b""#, "x a*b y"));
        assert!(!matches(r#""a*b""#, "x ab y"));
    }

    #[test]
    fn unicode_terms_need_quotes() {
        assert!(matches("\"café\"", "un café noir"));
        assert_eq!(
            terms("ok café").unwrap_err(),
            FilterPatternError::Unquoted {
                text: "café".into(),
                position: 4
            }
        );
    }

    #[test]
    fn punctuation_needs_quotes_and_the_error_names_the_term() {
        let err = terms("ERROR disk-full").unwrap_err();
        assert_eq!(
            err,
            FilterPatternError::Unquoted {
                text: "disk-full".into(),
                position: 7
            }
        );
        assert!(err.to_string().contains("'disk-full'"), "{err}");
    }

    #[test]
    fn dangling_prefix_is_an_error() {
        assert!(matches!(
            terms("ERROR ?").unwrap_err(),
            FilterPatternError::Unexpected {
                expected: "a term",
                ..
            }
        ));
        assert!(matches!(
            terms("-").unwrap_err(),
            FilterPatternError::Unexpected {
                expected: "a term",
                ..
            }
        ));
    }

    #[test]
    fn text_glued_to_a_closing_quote_is_an_error() {
        assert!(matches!(
            terms(r#""ab"cd"#).unwrap_err(),
            FilterPatternError::Unexpected { position: 5, .. }
        ));
    }

    #[test]
    fn unclosed_quote() {
        assert_eq!(
            terms(r#"ERROR "disk"#).unwrap_err(),
            FilterPatternError::Unbalanced {
                delimiter: '"',
                position: 7
            }
        );
    }

    #[test]
    fn empty_quoted_term_matches_everything() {
        assert!(matches("\"\"", ""));
        assert!(matches("\"\"", "anything"));
    }
}
