//! PEP 508 environment markers (`python_version < "3.12" and sys_platform == "linux"`).
//!
//! A small evaluator: `or` of `and` of comparisons, with parentheses. Comparisons use PEP 440
//! semantics when the operator and both sides make a version comparison, else string comparison,
//! as `packaging.markers` does. `extra` evaluates to the empty string: a compiled lockfile has
//! already resolved extras, so an `extra == …` marker means "not for this install".
use std::collections::BTreeMap;
use std::str::FromStr;

use pep440_rs::{Version, VersionSpecifier};

/// The marker variables of one interpreter (`python_version`, `sys_platform`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MarkerEnv {
    pub variables: BTreeMap<String, String>,
}

/// Why a marker could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerError(pub String);

impl std::fmt::Display for MarkerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    And,
    Or,
    Op(String),
    Ident(String),
    Str(String),
}

impl MarkerEnv {
    /// Evaluates `marker` in this environment.
    pub fn evaluate(&self, marker: &str) -> Result<bool, MarkerError> {
        let tokens = tokenize(marker)?;
        let mut parser = Parser {
            tokens: &tokens,
            pos: 0,
            env: self,
        };
        let value = parser.or_expr()?;
        if parser.pos != tokens.len() {
            return Err(MarkerError(format!(
                "unexpected trailing text in marker `{marker}`"
            )));
        }
        Ok(value)
    }

    fn lookup(&self, name: &str) -> Result<String, MarkerError> {
        // Legacy dotted spellings from PEP 345 still appear in old metadata.
        let canonical = match name {
            "os.name" => "os_name",
            "sys.platform" => "sys_platform",
            "platform.version" => "platform_version",
            "platform.machine" => "platform_machine",
            "platform.python_implementation" | "python_implementation" => {
                "platform_python_implementation"
            }
            other => other,
        };
        if canonical == "extra" {
            return Ok(String::new());
        }
        self.variables
            .get(canonical)
            .cloned()
            .ok_or_else(|| MarkerError(format!("unknown marker variable `{name}`")))
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, MarkerError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            tokens.push(Token::Open);
            i += 1;
        } else if c == ')' {
            tokens.push(Token::Close);
            i += 1;
        } else if c == '"' || c == '\'' {
            let start = i + 1;
            let end = chars[start..]
                .iter()
                .position(|&d| d == c)
                .map(|p| start + p)
                .ok_or_else(|| MarkerError(format!("unterminated string in marker `{text}`")))?;
            tokens.push(Token::Str(chars[start..end].iter().collect()));
            i = end + 1;
        } else if "<>=!~".contains(c) {
            let start = i;
            while i < chars.len() && "<>=!~".contains(chars[i]) {
                i += 1;
            }
            tokens.push(Token::Op(chars[start..i].iter().collect()));
        } else if c.is_ascii_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_.".contains(chars[i])) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            match word.as_str() {
                "and" => tokens.push(Token::And),
                "or" => tokens.push(Token::Or),
                "in" => tokens.push(Token::Op("in".to_string())),
                "not" => tokens.push(Token::Op("not".to_string())),
                _ => tokens.push(Token::Ident(word)),
            }
        } else {
            return Err(MarkerError(format!(
                "unexpected character `{c}` in marker `{text}`"
            )));
        }
    }
    // Fold `not in` into one operator.
    let mut folded = Vec::with_capacity(tokens.len());
    let mut iter = tokens.into_iter().peekable();
    while let Some(token) = iter.next() {
        if token == Token::Op("not".to_string()) {
            match iter.next() {
                Some(Token::Op(op)) if op == "in" => folded.push(Token::Op("not in".to_string())),
                _ => {
                    return Err(MarkerError(format!(
                        "`not` without `in` in marker `{text}`"
                    )));
                }
            }
        } else {
            folded.push(token);
        }
    }
    Ok(folded)
}

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
    env: &'a MarkerEnv,
}

impl Parser<'_> {
    fn or_expr(&mut self) -> Result<bool, MarkerError> {
        let mut value = self.and_expr()?;
        while self.tokens.get(self.pos) == Some(&Token::Or) {
            self.pos += 1;
            let rhs = self.and_expr()?;
            value = value || rhs;
        }
        Ok(value)
    }

    fn and_expr(&mut self) -> Result<bool, MarkerError> {
        let mut value = self.atom()?;
        while self.tokens.get(self.pos) == Some(&Token::And) {
            self.pos += 1;
            let rhs = self.atom()?;
            value = value && rhs;
        }
        Ok(value)
    }

    fn atom(&mut self) -> Result<bool, MarkerError> {
        if self.tokens.get(self.pos) == Some(&Token::Open) {
            self.pos += 1;
            let value = self.or_expr()?;
            if self.tokens.get(self.pos) != Some(&Token::Close) {
                return Err(MarkerError("missing `)` in marker".to_string()));
            }
            self.pos += 1;
            return Ok(value);
        }
        let lhs = self.operand()?;
        let op = match self.tokens.get(self.pos) {
            Some(Token::Op(op)) => op.clone(),
            other => {
                return Err(MarkerError(format!(
                    "expected a comparison operator, found {other:?}"
                )));
            }
        };
        self.pos += 1;
        let rhs = self.operand()?;
        compare(&lhs, &op, &rhs)
    }

    fn operand(&mut self) -> Result<String, MarkerError> {
        let token = self
            .tokens
            .get(self.pos)
            .ok_or_else(|| MarkerError("marker ends where a value was expected".to_string()))?;
        self.pos += 1;
        match token {
            Token::Str(s) => Ok(s.clone()),
            Token::Ident(name) => self.env.lookup(name),
            other => Err(MarkerError(format!("expected a value, found {other:?}"))),
        }
    }
}

fn compare(lhs: &str, op: &str, rhs: &str) -> Result<bool, MarkerError> {
    match op {
        "in" => return Ok(rhs.contains(lhs)),
        "not in" => return Ok(!rhs.contains(lhs)),
        "===" => return Ok(lhs == rhs),
        _ => {}
    }
    if let (Ok(spec), Ok(version)) = (
        VersionSpecifier::from_str(&format!("{op}{rhs}")),
        Version::from_str(lhs),
    ) {
        return Ok(spec.contains(&version));
    }
    match op {
        "==" => Ok(lhs == rhs),
        "!=" => Ok(lhs != rhs),
        "<" => Ok(lhs < rhs),
        "<=" => Ok(lhs <= rhs),
        ">" => Ok(lhs > rhs),
        ">=" => Ok(lhs >= rhs),
        _ => Err(MarkerError(format!(
            "operator `{op}` cannot compare `{lhs}` with `{rhs}`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux_311() -> MarkerEnv {
        let mut variables = BTreeMap::new();
        for (k, v) in [
            ("python_version", "3.11"),
            ("python_full_version", "3.11.7"),
            ("sys_platform", "linux"),
            ("platform_machine", "x86_64"),
            ("platform_system", "Linux"),
            ("implementation_name", "cpython"),
            ("platform_python_implementation", "CPython"),
            ("os_name", "posix"),
        ] {
            variables.insert(k.to_string(), v.to_string());
        }
        MarkerEnv { variables }
    }

    #[test]
    fn evaluates_common_markers() {
        let env = linux_311();
        let cases = [
            ("python_version < '3.12'", true),
            ("python_version >= \"3.12\"", false),
            (
                "python_full_version >= '3.11.5' and sys_platform == 'linux'",
                true,
            ),
            (
                "sys_platform == 'win32' or platform_machine == 'x86_64'",
                true,
            ),
            (
                "(sys_platform == 'darwin' or sys_platform == 'win32') and python_version > '3.8'",
                false,
            ),
            ("platform_machine not in 'aarch64 arm64'", true),
            ("'linux' in sys_platform", true),
            ("python_version == '3.11.*'", true),
            ("extra == 'full'", false),
            ("implementation_name != 'pypy'", true),
            (
                "platform_python_implementation == 'CPython' and python_version < '3.10'",
                false,
            ),
        ];
        for (marker, expected) in cases {
            assert_eq!(env.evaluate(marker), Ok(expected), "{marker}");
        }
    }

    #[test]
    fn rejects_garbage() {
        let env = linux_311();
        assert!(env.evaluate("python_version <").is_err());
        assert!(env.evaluate("python_version < '3").is_err());
        assert!(env.evaluate("no_such_var == 'x'").is_err());
        assert!(env.evaluate("(python_version < '3'").is_err());
    }
}
