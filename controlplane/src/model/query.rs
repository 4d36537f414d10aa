//! ECS's cluster query language, for `memberOf` placement constraints and
//! the `ListContainerInstances` `filter`: `attribute:NAME` and `task:group`
//! compared with `==`, `!=`, `in [..]`, `not_in`, `exists`, `!exists`,
//! `=~` and `!~` (regular expressions, whole-value), joined with
//! `and`/`&&`, `or`/`||`, `not`/`!` and parentheses.

use std::fmt;

use regex::Regex;

/// A parsed expression. Keeps its source text, which is how it is stored
/// and how errors name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expression {
    source: String,
    root: Node,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Test(Subject, Test),
}

/// What an expression asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// `attribute:NAME`: at most one value; may be present without one.
    Attribute(String),
    /// `task:group`: the groups of the tasks on the instance, any of which
    /// may satisfy a test (`task:group == db` means "runs a db task").
    TaskGroup,
}

/// The positive tests; negated operators (`!=`, `not_in`, `!~`, `!exists`)
/// parse to `Node::Not` around these.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Test {
    Equals(String),
    In(Vec<String>),
    Exists,
    Matches(Pattern),
}

/// A regular expression matched against the whole value.
#[derive(Debug, Clone)]
struct Pattern(Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}
impl Eq for Pattern {}

/// What an expression is evaluated against: one container instance.
pub trait Facts {
    /// `None`: no such attribute; `Some(None)`: present without a value.
    fn attribute(&self, name: &str) -> Option<Option<&str>>;
    /// Whether any task on the instance has a group satisfying `f`.
    fn any_task_group(&self, f: &mut dyn FnMut(&str) -> bool) -> bool;
}

/// Attributes alone (name, optional value): no tasks.
impl Facts for [(String, Option<String>)] {
    fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref())
    }
    fn any_task_group(&self, _: &mut dyn FnMut(&str) -> bool) -> bool {
        false
    }
}

/// Why an expression was refused: the message names the expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub expression: String,
    pub detail: String,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "The expression '{}' is not valid: {}. Berth understands attribute:NAME and \
             task:group with ==, !=, in [..], not_in [..], exists, !exists, =~ and !~, \
             joined with and, or, not and parentheses.",
            self.expression, self.detail
        )
    }
}

impl From<QueryError> for String {
    fn from(e: QueryError) -> Self {
        e.to_string()
    }
}

impl Expression {
    pub fn parse(expr: &str) -> Result<Self, QueryError> {
        let fail = |detail: String| QueryError {
            expression: expr.to_string(),
            detail,
        };
        let tokens = lex(expr).map_err(fail)?;
        let mut p = Parser { tokens, at: 0 };
        let root = p.or().map_err(fail)?;
        if let Some(t) = p.peek() {
            return Err(fail(format!("unexpected {t} after a complete expression")));
        }
        Ok(Self {
            source: expr.to_string(),
            root,
        })
    }

    /// The text it was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the answer depends on the tasks on an instance (so it must
    /// be asked again as tasks are placed), not only on its attributes.
    pub fn uses_task_groups(&self) -> bool {
        fn walk(n: &Node) -> bool {
            match n {
                Node::And(a, b) | Node::Or(a, b) => walk(a) || walk(b),
                Node::Not(a) => walk(a),
                Node::Test(s, _) => *s == Subject::TaskGroup,
            }
        }
        walk(&self.root)
    }

    /// Whether a resource with these attributes (name, optional value) matches.
    pub fn matches(&self, attributes: &[(String, Option<String>)]) -> bool {
        self.eval(attributes)
    }

    /// Evaluates against any instance view.
    pub fn eval<F: Facts + ?Sized>(&self, facts: &F) -> bool {
        eval(&self.root, facts)
    }
}

fn eval<F: Facts + ?Sized>(node: &Node, facts: &F) -> bool {
    match node {
        Node::And(a, b) => eval(a, facts) && eval(b, facts),
        Node::Or(a, b) => eval(a, facts) || eval(b, facts),
        Node::Not(a) => !eval(a, facts),
        Node::Test(Subject::Attribute(name), test) => match (facts.attribute(name), test) {
            (None, _) => false,
            (Some(_), Test::Exists) => true,
            (Some(v), test) => v.is_some_and(|v| passes(test, v)),
        },
        Node::Test(Subject::TaskGroup, Test::Exists) => facts.any_task_group(&mut |_| true),
        Node::Test(Subject::TaskGroup, test) => facts.any_task_group(&mut |g| passes(test, g)),
    }
}

fn passes(test: &Test, value: &str) -> bool {
    match test {
        Test::Equals(x) => value == x,
        Test::In(xs) => xs.iter().any(|x| x == value),
        Test::Exists => true,
        Test::Matches(p) => p.0.is_match(value),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    OpenList,
    CloseList,
    Comma,
    Bang,
    Op(&'static str),
    Word(String),
    Quoted(String),
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open => f.write_str("'('"),
            Self::Close => f.write_str("')'"),
            Self::OpenList => f.write_str("'['"),
            Self::CloseList => f.write_str("']'"),
            Self::Comma => f.write_str("','"),
            Self::Bang => f.write_str("'!'"),
            Self::Op(o) => write!(f, "'{o}'"),
            Self::Word(w) | Self::Quoted(w) => write!(f, "'{w}'"),
        }
    }
}

/// Characters that end a bare word: names and values never contain them
/// (`validate_attribute`); a value that needs them is quoted.
fn ends_word(c: char) -> bool {
    c.is_whitespace() || "()[],'\"=!~&|".contains(c)
}

fn lex(s: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if c.is_whitespace() {
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if let Some(op) = ["==", "!=", "=~", "!~", "&&", "||"]
            .into_iter()
            .find(|op| rest.starts_with(op))
        {
            out.push(Token::Op(op));
            rest = &rest[2..];
            continue;
        }
        let single = match c {
            '(' => Some(Token::Open),
            ')' => Some(Token::Close),
            '[' => Some(Token::OpenList),
            ']' => Some(Token::CloseList),
            ',' => Some(Token::Comma),
            '!' => Some(Token::Bang),
            _ => None,
        };
        if let Some(t) = single {
            out.push(t);
            rest = &rest[1..];
        } else if c == '\'' || c == '"' {
            let body = &rest[1..];
            let end = body
                .find(c)
                .ok_or_else(|| format!("the quote {c} is never closed"))?;
            out.push(Token::Quoted(body[..end].to_string()));
            rest = &body[end + 1..];
        } else if ends_word(c) {
            return Err(format!("'{c}' is not an operator here"));
        } else {
            let end = rest.find(ends_word).unwrap_or(rest.len());
            out.push(Token::Word(rest[..end].to_string()));
            rest = &rest[end..];
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn keyword(&self, words: &[&str]) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if words.iter().any(|k| w.eq_ignore_ascii_case(k)))
    }

    fn or(&mut self) -> Result<Node, String> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Op("||")) || self.keyword(&["or"]) {
            self.at += 1;
            left = Node::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Node, String> {
        let mut left = self.unary()?;
        while self.peek() == Some(&Token::Op("&&")) || self.keyword(&["and"]) {
            self.at += 1;
            left = Node::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Node, String> {
        if self.peek() == Some(&Token::Bang) || self.keyword(&["not"]) {
            self.at += 1;
            return Ok(Node::Not(Box::new(self.unary()?)));
        }
        match self.next() {
            Some(Token::Open) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Token::Close) => Ok(inner),
                    Some(t) => Err(format!("expected ')' but found {t}")),
                    None => Err("a '(' is never closed".into()),
                }
            }
            Some(Token::Word(w)) => self.test(&w),
            Some(t) => Err(format!("expected a subject but found {t}")),
            None => Err("it ends where a subject was expected".into()),
        }
    }

    fn test(&mut self, subject: &str) -> Result<Node, String> {
        let subject = if subject == "task:group" {
            Subject::TaskGroup
        } else if let Some(name) = subject.strip_prefix("attribute:").filter(|n| !n.is_empty()) {
            Subject::Attribute(name.to_string())
        } else {
            return Err(format!(
                "unknown subject '{subject}' (use attribute:NAME or task:group)"
            ));
        };
        let negated = if self.peek() == Some(&Token::Bang) {
            self.at += 1;
            true
        } else {
            false
        };
        let (test, negated) = match (self.next(), negated) {
            (Some(Token::Op("==")), false) => (Test::Equals(self.value()?), false),
            (Some(Token::Op("!=")), false) => (Test::Equals(self.value()?), true),
            (Some(Token::Op("=~")), false) => (Test::Matches(self.pattern()?), false),
            (Some(Token::Op("!~")), false) => (Test::Matches(self.pattern()?), true),
            (Some(Token::Word(w)), bang) => match (w.to_ascii_lowercase().as_str(), bang) {
                ("equals", false) => (Test::Equals(self.value()?), false),
                ("not_equals", false) => (Test::Equals(self.value()?), true),
                ("matches", false) => (Test::Matches(self.pattern()?), false),
                ("not_matches", false) => (Test::Matches(self.pattern()?), true),
                ("exists", bang) => (Test::Exists, bang),
                ("not_exists", false) => (Test::Exists, true),
                ("in", bang) => (Test::In(self.list()?), bang),
                ("not_in", false) => (Test::In(self.list()?), true),
                _ => return Err(format!("unknown operator '{w}'")),
            },
            (Some(t), _) => return Err(format!("expected an operator but found {t}")),
            (None, _) => return Err("it ends where an operator was expected".into()),
        };
        let node = Node::Test(subject, test);
        Ok(if negated {
            Node::Not(Box::new(node))
        } else {
            node
        })
    }

    fn value(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Word(w) | Token::Quoted(w)) => Ok(w),
            Some(t) => Err(format!("expected a value but found {t}")),
            None => Err("it ends where a value was expected".into()),
        }
    }

    fn pattern(&mut self) -> Result<Pattern, String> {
        let p = self.value()?;
        Regex::new(&format!("^(?:{p})$"))
            .map(Pattern)
            .map_err(|e| format!("'{p}' is not a regular expression ({e})"))
    }

    /// `[a, b]` or `(a, b)`.
    fn list(&mut self) -> Result<Vec<String>, String> {
        let close = match self.next() {
            Some(Token::OpenList) => Token::CloseList,
            Some(Token::Open) => Token::Close,
            Some(t) => return Err(format!("expected a list such as [a, b] but found {t}")),
            None => return Err("it ends where a list was expected".into()),
        };
        let mut values = vec![self.value()?];
        loop {
            match self.next() {
                Some(Token::Comma) => values.push(self.value()?),
                Some(t) if t == close => return Ok(values),
                Some(t) => return Err(format!("expected ',' or {close} but found {t}")),
                None => return Err(format!("the list is never closed with {close}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs() -> Vec<(String, Option<String>)> {
        vec![
            ("ecs.instance-type".into(), Some("t2.micro".into())),
            ("ecs.availability-zone".into(), Some("us-east-1a".into())),
            ("ecs.capability.task-eni".into(), None),
        ]
    }

    fn yes(e: &str) -> bool {
        Expression::parse(e).unwrap().matches(&attrs())
    }

    /// An instance running tasks of these groups.
    struct Host(Vec<(String, Option<String>)>, Vec<&'static str>);
    impl Facts for Host {
        fn attribute(&self, name: &str) -> Option<Option<&str>> {
            self.0.attribute(name)
        }
        fn any_task_group(&self, f: &mut dyn FnMut(&str) -> bool) -> bool {
            self.1.iter().any(|g| f(g))
        }
    }

    #[test]
    fn simple_forms_parse_and_match() {
        assert!(yes("attribute:ecs.instance-type == t2.micro"));
        assert!(!yes("attribute:ecs.instance-type==t3.large"));
        assert!(yes(" attribute:ecs.instance-type != t3.large "));
        assert!(yes("attribute:ecs.capability.task-eni exists"));
        assert!(!yes("attribute:stack exists"));
        assert!(yes("attribute:stack !exists"));
        assert!(yes("attribute:stack not_exists"));
        // A value-less attribute never equals a value; an absent one differs.
        assert!(!yes("attribute:ecs.capability.task-eni == x"));
        assert!(yes("attribute:stack != x"));
        assert!(yes("attribute:ecs.instance-type equals 't2.micro'"));
    }

    #[test]
    fn lists_patterns_and_compounds() {
        assert!(yes("attribute:ecs.instance-type in [t2.small, t2.micro]"));
        assert!(yes("attribute:ecs.instance-type in ('t2.micro')"));
        assert!(!yes(
            "attribute:ecs.instance-type not_in [t2.small, t2.micro]"
        ));
        assert!(yes("attribute:ecs.instance-type !in [m5.large]"));
        assert!(yes("attribute:ecs.instance-type =~ t2.*"));
        assert!(!yes("attribute:ecs.instance-type =~ t2"), "whole value");
        assert!(yes("attribute:ecs.instance-type !~ m5.*"));
        assert!(yes(
            "attribute:ecs.instance-type matches 't2\\.(micro|small)'"
        ));
        assert!(yes(
            "attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone != us-east-1d"
        ));
        assert!(!yes(
            "attribute:ecs.instance-type =~ m4.* && attribute:a exists"
        ));
        assert!(yes(
            "attribute:ecs.instance-type =~ m4.* || attribute:ecs.os-type !exists"
        ));
        // and binds tighter than or.
        assert!(yes(
            "attribute:x exists and attribute:y exists or attribute:ecs.instance-type exists"
        ));
        assert!(!yes(
            "attribute:x exists and (attribute:y exists or attribute:ecs.instance-type exists)"
        ));
        assert!(yes("not (attribute:x exists)"));
        assert!(yes("!(attribute:x exists) AND NOT attribute:y == 1"));
    }

    #[test]
    fn task_group_asks_about_the_tasks_on_the_instance() {
        let e = Expression::parse("task:group == service:db").unwrap();
        assert!(e.uses_task_groups());
        assert!(e.eval(&Host(attrs(), vec!["family:web", "service:db"])));
        assert!(!e.eval(&Host(attrs(), vec!["family:web"])));
        let e = Expression::parse("not(task:group == service:db)").unwrap();
        assert!(e.eval(&Host(attrs(), vec![])));
        let e = Expression::parse("task:group != service:db").unwrap();
        assert!(!e.eval(&Host(attrs(), vec!["service:db"])));
        let e = Expression::parse("task:group exists").unwrap();
        assert!(!e.eval(&Host(attrs(), vec![])));
        let e =
            Expression::parse("task:group =~ service:.* and attribute:ecs.instance-type exists")
                .unwrap();
        assert!(e.eval(&Host(attrs(), vec!["service:api"])));
        assert!(!Expression::parse("attribute:a == b")
            .unwrap()
            .uses_task_groups());
    }

    #[test]
    fn bad_expressions_are_refused_by_name() {
        for bad in [
            "attribute: == x",
            "attribute:a ==",
            "attribute:a",
            "",
            "runningTasksCount > 1",
            "attribute:a in [b",
            "attribute:a in b",
            "attribute:a == b and",
            "(attribute:a exists",
            "attribute:a exists)",
            "attribute:a =~ '('",
            "attribute:a == 'unclosed",
            "attribute:a between x",
            "attribute:a == b c",
        ] {
            let e = Expression::parse(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("'{bad}'")), "{e}");
        }
        let e = Expression::parse("attribute:a =~ '('").unwrap_err();
        assert!(e.detail.contains("regular expression"), "{}", e.detail);
    }
}
