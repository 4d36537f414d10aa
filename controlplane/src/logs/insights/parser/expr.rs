//! Expressions, loosest binding first: `or`, `and`, `not`, comparisons (with
//! `like`, `=~` and `in`), `+ -`, `* / %`, `^`, unary `-`, then literals, fields,
//! function calls and parentheses.

use std::borrow::Cow;

use super::{is_keyword, Parser, MAX_DEPTH};
use crate::logs::insights::ast::{
    aggregate_function, function, Arguments, ArithmeticOp, CompareOp, Expr, Pattern,
};
use crate::logs::insights::lexer::{Tok, Token};
use crate::logs::insights::record::Value;
use crate::logs::insights::time::Period;
use crate::logs::insights::QueryError;

impl Parser<'_> {
    pub(super) fn expr(&mut self) -> Result<Expr, QueryError> {
        self.nested(Self::or)
    }

    /// Parses something nested in what is being parsed, no deeper than `MAX_DEPTH`,
    /// so neither parsing nor running a query can run out of stack.
    fn nested(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Result<Expr, QueryError>,
    ) -> Result<Expr, QueryError> {
        if self.depth >= MAX_DEPTH {
            return Err(QueryError::TooDeep {
                position: self.here(),
                max: MAX_DEPTH,
            });
        }
        self.depth += 1;
        let expr = parse(self);
        self.depth -= 1;
        expr
    }

    fn or(&mut self) -> Result<Expr, QueryError> {
        let first = self.and()?;
        if !self.at_word("or") {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat_word("or") {
            items.push(self.and()?);
        }
        Ok(Expr::Or(items))
    }

    fn and(&mut self) -> Result<Expr, QueryError> {
        let first = self.not()?;
        if !self.at_word("and") {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat_word("and") {
            items.push(self.not()?);
        }
        Ok(Expr::And(items))
    }

    fn not(&mut self) -> Result<Expr, QueryError> {
        if self.eat_word("not") {
            return Ok(Expr::Not(Box::new(self.nested(Self::not)?)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, QueryError> {
        let left = self.additive()?;
        let negated = self.at_word("not")
            && matches!(self.peek_second(), Some(Tok::Word(w))
                if w.eq_ignore_ascii_case("like") || w.eq_ignore_ascii_case("in"));
        self.next += usize::from(negated);
        let subject = Box::new(left);
        if self.eat_word("like") {
            let pattern = self.pattern(true)?;
            return Ok(Expr::Matches {
                subject,
                pattern,
                negated,
            });
        }
        if self.eat_word("in") {
            let Some(open) = self.peek().filter(|t| t.tok == Tok::Sym("[")).cloned() else {
                return Err(self.unexpected("'[' and a list of values after 'in'"));
            };
            self.next += 1;
            let list = if self.at_sym("]") {
                Vec::new()
            } else {
                self.comma_list(Self::additive)?
            };
            self.close(&open, "]")?;
            return Ok(Expr::In {
                subject,
                list,
                negated,
            });
        }
        if self.eat_sym("=~") {
            let pattern = self.pattern(false)?;
            return Ok(Expr::Matches {
                subject,
                pattern,
                negated: false,
            });
        }
        let op = match self.peek_tok() {
            Some(Tok::Sym("=")) => CompareOp::Eq,
            Some(Tok::Sym("!=")) => CompareOp::Ne,
            Some(Tok::Sym("<")) => CompareOp::Lt,
            Some(Tok::Sym("<=")) => CompareOp::Le,
            Some(Tok::Sym(">")) => CompareOp::Gt,
            Some(Tok::Sym(">=")) => CompareOp::Ge,
            _ => return Ok(*subject),
        };
        self.next += 1;
        Ok(Expr::Compare(op, subject, Box::new(self.additive()?)))
    }

    /// What `like` (a string: a substring) or `=~` (a string: a regex) matches.
    fn pattern(&mut self, like: bool) -> Result<Pattern, QueryError> {
        let pattern = match self.peek() {
            Some(Token {
                tok: Tok::Regex(text),
                start,
                ..
            }) => Pattern::Regex(self.regex(text, *start)?),
            Some(Token {
                tok: Tok::Str(text),
                start,
                ..
            }) => {
                if like {
                    Pattern::Substring(text.clone())
                } else {
                    Pattern::Regex(self.regex(text, *start)?)
                }
            }
            _ => return Err(self.unexpected("a /regex/ or a \"string\"")),
        };
        self.next += 1;
        Ok(pattern)
    }

    fn additive(&mut self) -> Result<Expr, QueryError> {
        self.chain(Self::multiplicative, |tok| match tok {
            Tok::Sym("+") => Some(ArithmeticOp::Add),
            Tok::Sym("-") => Some(ArithmeticOp::Subtract),
            _ => None,
        })
    }

    fn multiplicative(&mut self) -> Result<Expr, QueryError> {
        self.chain(Self::power, |tok| match tok {
            Tok::Sym("*") => Some(ArithmeticOp::Multiply),
            Tok::Sym("/") => Some(ArithmeticOp::Divide),
            Tok::Sym("%") => Some(ArithmeticOp::Remainder),
            _ => None,
        })
    }

    /// Operands that `operand` parses, joined left to right by the operators `operator` knows.
    fn chain(
        &mut self,
        operand: fn(&mut Self) -> Result<Expr, QueryError>,
        operator: fn(&Tok) -> Option<ArithmeticOp>,
    ) -> Result<Expr, QueryError> {
        let first = operand(self)?;
        let mut rest = Vec::new();
        while let Some(op) = self.peek_tok().and_then(operator) {
            self.next += 1;
            rest.push((op, operand(self)?));
        }
        if rest.is_empty() {
            return Ok(first);
        }
        Ok(Expr::Arithmetic(Box::new(first), rest))
    }

    /// `^` binds right to left: `2 ^ 3 ^ 2` is `2 ^ 9`.
    fn power(&mut self) -> Result<Expr, QueryError> {
        let base = self.unary()?;
        if self.eat_sym("^") {
            let exponent = self.nested(Self::power)?;
            return Ok(Expr::Arithmetic(
                Box::new(base),
                vec![(ArithmeticOp::Power, exponent)],
            ));
        }
        Ok(base)
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        if self.eat_sym("-") {
            return Ok(Expr::Negate(Box::new(self.nested(Self::unary)?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, QueryError> {
        let Some(token) = self.peek().cloned() else {
            return Err(self.unexpected("an expression"));
        };
        let expr = match &token.tok {
            Tok::Num(n) => Expr::Literal(Value::Num(*n)),
            Tok::Str(s) => Expr::Literal(Value::Str(Cow::Owned(s.clone()))),
            Tok::Quoted(name) => Expr::Field(name.clone()),
            Tok::Sym("(") => {
                self.next += 1;
                let inner = self.expr()?;
                self.close(&token, ")")?;
                return Ok(inner);
            }
            Tok::Word(word) if matches!(self.peek_second(), Some(Tok::Sym("("))) => {
                return self.call(word);
            }
            Tok::Word(word) if !is_keyword(word) => Expr::Field(word.clone()),
            _ => return Err(self.unexpected("an expression")),
        };
        self.next += 1;
        Ok(expr)
    }

    /// A call of the function `word`, which is the next token, `(` after it.
    fn call(&mut self, word: &str) -> Result<Expr, QueryError> {
        let from = self.next;
        let position = self.here();
        self.next += 1;
        let open = self.bump().expect("peeked '('");
        let Some((callee, arguments)) = function(word) else {
            if aggregate_function(word).is_none() {
                return Err(QueryError::UnknownFunction {
                    function: word.to_owned(),
                    position,
                });
            }
            if !self.after_stats {
                return Err(QueryError::AggregateOutsideStats {
                    function: word.to_owned(),
                    position,
                });
            }
            // After `stats`, `count(*)` means the column it made.
            self.skip_past_close(&open)?;
            return Ok(Expr::Field(self.text_since(from).to_owned()));
        };
        let wrong_count = |expected, given| QueryError::WrongArgumentCount {
            function: word.to_owned(),
            expected,
            given,
            position,
        };
        let expr = match arguments {
            Arguments::Exprs { min, max, describe } => {
                let args = if self.at_sym(")") {
                    Vec::new()
                } else {
                    self.comma_list(Self::expr)?
                };
                if !(min..=max).contains(&args.len()) {
                    return Err(wrong_count(describe, args.len()));
                }
                Expr::Call(callee, args)
            }
            Arguments::Period(make) => Expr::Call(make(self.period(word)?), Vec::new()),
            Arguments::ExprAndPeriod(make) => {
                let time = self.expr()?;
                if !self.eat_sym(",") {
                    return Err(wrong_count("2 arguments: a time and a period", 1));
                }
                Expr::Call(make(self.period(word)?), vec![time])
            }
        };
        if self.at_sym(",") {
            return Err(self.unexpected("')': too many arguments"));
        }
        self.close(&open, ")")?;
        Ok(expr)
    }

    fn period(&mut self, function: &str) -> Result<Period, QueryError> {
        if let Some(Tok::Period(text)) = self.peek_tok() {
            if let Some(period) = Period::parse(text) {
                self.next += 1;
                return Ok(period);
            }
        }
        Err(QueryError::InvalidArgument {
            function: function.to_owned(),
            expected: "a time period such as 30s, 5m or 1h",
            found: self.found(),
            position: self.here(),
        })
    }

    /// Skips to just after the `)` that closes `open`, whatever lies between.
    fn skip_past_close(&mut self, open: &Token) -> Result<(), QueryError> {
        let mut depth = 1_usize;
        while depth > 0 {
            match self.peek_tok() {
                None | Some(Tok::Sym("|")) => return self.close(open, ")"),
                Some(Tok::Sym("(")) => depth += 1,
                Some(Tok::Sym(")")) => depth -= 1,
                Some(_) => {}
            }
            self.next += 1;
        }
        Ok(())
    }
}
