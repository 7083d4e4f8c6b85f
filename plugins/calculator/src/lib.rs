//! `calculate`: evaluates an arithmetic expression with the usual precedence:
//! parentheses, then `^` (right-associative), unary minus, `* / %`, then `+ -`.

use glassbox_sdk::{Error, export_tools, json};
use serde::Deserialize;

#[derive(Deserialize)]
struct Expression {
    expression: String,
}

fn calculate(input: Expression) -> Result<String, Error> {
    let value = Parser::new(&input.expression)
        .parse()
        .map_err(Error::InvalidArguments)?;
    if !value.is_finite() {
        return Err(Error::ToolFailed(format!(
            "`{}` has no finite value",
            input.expression
        )));
    }
    Ok(value.to_string())
}

export_tools! {
    calculate {
        description: "Evaluates an arithmetic expression with + - * / % ^ and parentheses, e.g. `(14 - 9) * 1.8 + 32`.",
        parameters: json!({
            "type": "object",
            "properties": { "expression": { "type": "string", "description": "The expression to evaluate" } },
            "required": ["expression"],
            "additionalProperties": false,
        }),
    }
}

/// A recursive-descent parser that evaluates as it parses.
struct Parser<'a> {
    source: &'a str,
    position: usize,
}

type Parsed = Result<f64, String>;

impl<'a> Parser<'a> {
    fn new(source: &'a str) -> Self {
        Parser {
            source,
            position: 0,
        }
    }

    fn parse(mut self) -> Parsed {
        let value = self.sum()?;
        match self.peek() {
            None => Ok(value),
            Some(c) => Err(self.unexpected(c)),
        }
    }

    fn sum(&mut self) -> Parsed {
        let mut value = self.product()?;
        while let Some(op @ ('+' | '-')) = self.peek() {
            self.bump();
            let rhs = self.product()?;
            value = if op == '+' { value + rhs } else { value - rhs };
        }
        Ok(value)
    }

    fn product(&mut self) -> Parsed {
        let mut value = self.unary()?;
        while let Some(op @ ('*' | '/' | '%')) = self.peek() {
            self.bump();
            let rhs = self.unary()?;
            if rhs == 0.0 && op != '*' {
                return Err("division by zero".to_owned());
            }
            value = match op {
                '*' => value * rhs,
                '/' => value / rhs,
                _ => value % rhs,
            };
        }
        Ok(value)
    }

    fn unary(&mut self) -> Parsed {
        match self.peek() {
            Some('-') => {
                self.bump();
                Ok(-self.unary()?)
            }
            Some('+') => {
                self.bump();
                self.unary()
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Parsed {
        let base = self.atom()?;
        if self.peek() == Some('^') {
            self.bump();
            // Right-associative, and binds tighter than a unary minus on its left: -2^2 = -4.
            let exponent = self.unary()?;
            return Ok(base.powf(exponent));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Parsed {
        match self.peek() {
            Some('(') => {
                self.bump();
                let value = self.sum()?;
                match self.peek() {
                    Some(')') => {
                        self.bump();
                        Ok(value)
                    }
                    Some(c) => Err(self.unexpected(c)),
                    None => Err("missing `)` at the end".to_owned()),
                }
            }
            Some(c) if c.is_ascii_digit() || c == '.' => self.number(),
            Some(c) => Err(self.unexpected(c)),
            None => Err("the expression ends where a number was expected".to_owned()),
        }
    }

    fn number(&mut self) -> Parsed {
        let start = self.position;
        let rest = &self.source[start..];
        let mut end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        // An exponent such as `1e-3`.
        if let Some(exponent) = rest[end..].strip_prefix(['e', 'E']) {
            let signed = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            let digits = signed
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(signed.len());
            if digits > 0 {
                end += 1 + (exponent.len() - signed.len()) + digits;
            }
        }
        self.position += end;
        rest[..end].parse().map_err(|_| {
            format!(
                "`{}` at position {} is not a number",
                &rest[..end],
                start + 1
            )
        })
    }

    /// The next non-blank character, without consuming it.
    fn peek(&mut self) -> Option<char> {
        let rest = &self.source[self.position..];
        let trimmed = rest.trim_start();
        self.position += rest.len() - trimmed.len();
        trimmed.chars().next()
    }

    fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.position += c.len_utf8();
        }
    }

    fn unexpected(&self, c: char) -> String {
        format!(
            "unexpected `{c}` at position {}",
            self.source[..self.position].chars().count() + 1
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Parser;

    fn eval(source: &str) -> Result<f64, String> {
        Parser::new(source).parse()
    }

    #[test]
    fn follows_precedence_and_parentheses() {
        assert_eq!(eval("2 + 3 * 4"), Ok(14.0));
        assert_eq!(eval("(2 + 3) * 4"), Ok(20.0));
        assert_eq!(eval("2 ^ 3 ^ 2"), Ok(512.0));
        assert_eq!(eval("-2 ^ 2"), Ok(-4.0));
        assert_eq!(eval("(14 - 9) * 1.8 + 32"), Ok(41.0));
        assert_eq!(eval("7 % 4 - 10 / 4"), Ok(0.5));
        assert_eq!(eval("1.5e3 + 2E-1"), Ok(1500.2));
    }

    #[test]
    fn rejects_bad_expressions_with_a_position() {
        assert_eq!(
            eval("2 +* 3"),
            Err("unexpected `*` at position 4".to_owned())
        );
        assert_eq!(eval("(1 + 2"), Err("missing `)` at the end".to_owned()));
        assert_eq!(eval("1 / (2 - 2)"), Err("division by zero".to_owned()));
        assert_eq!(eval("4 4"), Err("unexpected `4` at position 3".to_owned()));
        assert_eq!(
            eval(""),
            Err("the expression ends where a number was expected".to_owned())
        );
        assert_eq!(
            eval("1..2"),
            Err("`1..2` at position 1 is not a number".to_owned())
        );
    }
}
