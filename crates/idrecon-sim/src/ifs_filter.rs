//! The subset of OData `$filter` the simulated IFS understands:
//! `eq`/`ne` comparisons of a property (optionally through `tolower`/
//! `toupper`) with a string literal (`'` doubled inside), `true`, `false` or
//! `null`, combined with `and`, `or`, `not` and parentheses.

use super::ifs::IfsProp;
use idrecon_core::model::IfsUser;

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Filter {
    Or(Box<Filter>, Box<Filter>),
    And(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Compare {
        left: Operand,
        equal: bool,
        right: Operand,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    ToLower,
    ToUpper,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Operand {
    Prop(IfsProp, Option<Func>),
    Str(String),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Str(String),
    Open,
    Close,
}

fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(pos, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '(' {
            chars.next();
            tokens.push((pos, Token::Open));
        } else if c == ')' {
            chars.next();
            tokens.push((pos, Token::Close));
        } else if c == '\'' {
            chars.next();
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some((_, '\'')) => {
                        if matches!(chars.peek(), Some((_, '\''))) {
                            chars.next();
                            value.push('\'');
                        } else {
                            break;
                        }
                    }
                    Some((_, ch)) => value.push(ch),
                    None => return Err(format!("unterminated string literal at position {pos}")),
                }
            }
            tokens.push((pos, Token::Str(value)));
        } else if c.is_alphanumeric() || c == '_' {
            let mut ident = String::new();
            while let Some(&(_, ch)) = chars.peek() {
                if ch.is_alphanumeric() || ch == '_' {
                    ident.push(ch);
                    chars.next();
                } else {
                    break;
                }
            }
            tokens.push((pos, Token::Ident(ident)));
        } else {
            return Err(format!("unexpected character '{c}' at position {pos}"));
        }
    }
    Ok(tokens)
}

/// Deepest nesting of `not` and parentheses accepted, and most nodes
/// (comparisons, `and`, `or`, `not`) in one filter: ASP.NET OData's default
/// `MaxExpressionDepth` and `MaxNodeCount` (docs/simulator.md). Deeper or
/// larger filters are refused instead of overflowing the stack.
const MAX_DEPTH: usize = 100;
const MAX_NODES: usize = 100;

struct Parser {
    tokens: Vec<(usize, Token)>,
    at: usize,
    len: usize,
    depth: usize,
    nodes: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(_, t)| t)
    }

    fn pos(&self) -> usize {
        self.tokens
            .get(self.at)
            .map(|(p, _)| *p)
            .unwrap_or(self.len)
    }

    /// Counts one more node; refuses a filter with too many.
    fn node(&mut self) -> Result<(), String> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(format!(
                "filter has too many nodes (more than {MAX_NODES}) at position {}",
                self.pos()
            ));
        }
        Ok(())
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Ident(w)) if w == word)
    }

    fn or_expr(&mut self) -> Result<Filter, String> {
        let mut left = self.and_expr()?;
        while self.keyword("or") {
            self.node()?;
            self.at += 1;
            let right = self.and_expr()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Filter, String> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.node()?;
            self.at += 1;
            let right = self.unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, String> {
        if self.keyword("not") || self.peek() == Some(&Token::Open) {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(format!(
                    "filter nested too deep (more than {MAX_DEPTH} levels) at position {}",
                    self.pos()
                ));
            }
            let nested = self.nested();
            self.depth -= 1;
            return nested;
        }
        self.node()?;
        self.comparison()
    }

    /// `not …` or `( … )`, one level deeper.
    fn nested(&mut self) -> Result<Filter, String> {
        if self.keyword("not") {
            self.node()?;
            self.at += 1;
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        self.at += 1;
        let inner = self.or_expr()?;
        match self.peek() {
            Some(Token::Close) => {
                self.at += 1;
                Ok(inner)
            }
            _ => Err(format!("expected ')' at position {}", self.pos())),
        }
    }

    fn comparison(&mut self) -> Result<Filter, String> {
        let left = self.operand()?;
        let equal = match self.peek() {
            Some(Token::Ident(op)) if op == "eq" => true,
            Some(Token::Ident(op)) if op == "ne" => false,
            Some(Token::Ident(op)) => {
                return Err(format!(
                    "operator '{op}' at position {} is not supported (eq, ne)",
                    self.pos()
                ))
            }
            _ => return Err(format!("expected 'eq' or 'ne' at position {}", self.pos())),
        };
        self.at += 1;
        let right = self.operand()?;
        Ok(Filter::Compare { left, equal, right })
    }

    fn operand(&mut self) -> Result<Operand, String> {
        let pos = self.pos();
        let token = self
            .tokens
            .get(self.at)
            .map(|(_, t)| t.clone())
            .ok_or_else(|| format!("expected an operand at position {pos}"))?;
        self.at += 1;
        match token {
            Token::Str(s) => Ok(Operand::Str(s)),
            Token::Ident(word) => match word.as_str() {
                "true" => Ok(Operand::Bool(true)),
                "false" => Ok(Operand::Bool(false)),
                "null" => Ok(Operand::Null),
                "tolower" | "toupper" => {
                    let func = if word == "tolower" {
                        Func::ToLower
                    } else {
                        Func::ToUpper
                    };
                    if self.peek() != Some(&Token::Open) {
                        return Err(format!(
                            "expected '(' after {word} at position {}",
                            self.pos()
                        ));
                    }
                    self.at += 1;
                    let inner = self.operand()?;
                    if self.peek() != Some(&Token::Close) {
                        return Err(format!("expected ')' at position {}", self.pos()));
                    }
                    self.at += 1;
                    match inner {
                        Operand::Prop(p, None) if p != IfsProp::Active => {
                            Ok(Operand::Prop(p, Some(func)))
                        }
                        Operand::Str(s) => Ok(Operand::Str(apply(func, &s))),
                        _ => Err(format!("{word} needs a text property at position {pos}")),
                    }
                }
                name => IfsProp::parse(name)
                    .map(|p| Operand::Prop(p, None))
                    .ok_or_else(|| format!("unknown property '{name}' at position {pos}")),
            },
            Token::Open | Token::Close => Err(format!("expected an operand at position {pos}")),
        }
    }
}

fn apply(func: Func, s: &str) -> String {
    match func {
        Func::ToLower => s.to_lowercase(),
        Func::ToUpper => s.to_uppercase(),
    }
}

/// Parses a `$filter` value; the error names the position.
pub(crate) fn parse(text: &str) -> Result<Filter, String> {
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        len: text.len(),
        depth: 0,
        nodes: 0,
    };
    let filter = parser.or_expr()?;
    if parser.at != parser.tokens.len() {
        return Err(format!("unexpected text at position {}", parser.pos()));
    }
    Ok(filter)
}

#[derive(PartialEq)]
enum Val {
    Text(Option<String>),
    Bool(bool),
    Null,
}

fn eval(operand: &Operand, user: &IfsUser) -> Val {
    match operand {
        Operand::Str(s) => Val::Text(Some(s.clone())),
        Operand::Bool(b) => Val::Bool(*b),
        Operand::Null => Val::Null,
        Operand::Prop(IfsProp::Active, _) => Val::Bool(user.active()),
        Operand::Prop(prop, func) => {
            let raw = match prop {
                IfsProp::Identity => Some(user.identity()),
                IfsProp::Description => user.description(),
                IfsProp::WebUser => user.directory_id(),
                IfsProp::Active => None,
            };
            Val::Text(raw.map(|r| match func {
                Some(f) => apply(*f, r),
                None => r.to_string(),
            }))
        }
    }
}

fn equal(a: Val, b: Val) -> bool {
    match (a, b) {
        (Val::Text(None), Val::Null) | (Val::Null, Val::Text(None)) | (Val::Null, Val::Null) => {
            true
        }
        (Val::Text(Some(x)), Val::Text(Some(y))) => x == y,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        // `Active` is an enum ("TRUE"/"FALSE") in some IFS versions.
        (Val::Bool(b), Val::Text(Some(s))) | (Val::Text(Some(s)), Val::Bool(b)) => {
            s.eq_ignore_ascii_case(if b { "TRUE" } else { "FALSE" })
        }
        _ => false,
    }
}

impl Filter {
    pub(crate) fn matches(&self, user: &IfsUser) -> bool {
        match self {
            Filter::Or(a, b) => a.matches(user) || b.matches(user),
            Filter::And(a, b) => a.matches(user) && b.matches(user),
            Filter::Not(a) => !a.matches(user),
            Filter::Compare {
                left,
                equal: eq,
                right,
            } => equal(eval(left, user), eval(right, user)) == *eq,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idrecon_core::model::IfsUserFields;

    fn user(identity: &str, web: Option<&str>, active: bool) -> IfsUser {
        IfsUser::from(IfsUserFields {
            identity: identity.into(),
            description: None,
            directory_id: web.map(Into::into),
            active,
            email: None,
        })
    }

    #[test]
    fn quotes_are_doubled() {
        let f = parse("WebUser eq 'o''brien@contoso.com'").unwrap();
        assert!(f.matches(&user("OBRIEN", Some("o'brien@contoso.com"), true)));
        assert!(!f.matches(&user("OBRIEN", Some("obrien@contoso.com"), true)));
    }

    #[test]
    fn tolower_and_boolean_logic() {
        let f = parse("tolower(WebUser) eq 'åsa@x.se' and (Active eq true or Identity eq 'X')")
            .unwrap();
        assert!(f.matches(&user("A", Some("ÅSA@X.SE"), true)));
        assert!(f.matches(&user("X", Some("Åsa@x.se"), false)));
        assert!(!f.matches(&user("A", Some("Åsa@x.se"), false)));
        let f = parse("not (WebUser eq null)").unwrap();
        assert!(!f.matches(&user("A", None, true)));
        assert!(f.matches(&user("A", Some(""), true)));
        assert!(parse("Active eq 'TRUE'")
            .unwrap()
            .matches(&user("A", None, true)));
        let f = parse("Identity ne 'A'").unwrap();
        assert!(f.matches(&user("B", None, true)));
    }

    #[test]
    fn malformed_filters_are_refused_with_position() {
        for (text, needle) in [
            ("WebUser eq 'abc", "unterminated"),
            ("WebUser eq", "operand"),
            ("WebUser gt 'a'", "not supported"),
            ("Frob eq 'a'", "unknown property"),
            ("WebUser eq 'a' 'b'", "unexpected text"),
            ("(WebUser eq 'a'", "expected ')'"),
            ("tolower(Active) eq 'true'", "text property"),
            ("WebUser eq 'a' ; drop", "unexpected character"),
            ("tolower WebUser eq 'a'", "expected '('"),
            (&format!("{}WebUser eq 'a'", "not ".repeat(101)), "too deep"),
            (
                &format!("{}WebUser eq 'a'", "WebUser eq 'a' or ".repeat(100)),
                "too many",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}

/// Fuzzing the parser (proptest): any text, token soups and deep nesting.
/// It must never panic or overflow the stack, and every refusal says what
/// was wrong and where. `PROPTEST_CASES` raises the case counts.
#[cfg(test)]
mod fuzz {
    use super::*;
    use idrecon_core::model::IfsUserFields;
    use proptest::prelude::*;

    const TOKENS: &[&str] = &[
        "(", ")", "not ", " and ", " or ", " eq ", " ne ", " gt ", "'a'", "'it''s'", "'", "true",
        "false", "null", "WebUser", "Identity", "Active", "tolower(", "toupper(", "Frob", ";", " ",
        "\u{1b}", "é",
    ];

    fn check(text: &str) {
        match parse(text) {
            Ok(filter) => {
                let user = IfsUser::from(IfsUserFields {
                    identity: "A".into(),
                    description: None,
                    directory_id: Some("a".into()),
                    active: true,
                    email: None,
                });
                let _ = filter.matches(&user);
            }
            Err(message) => {
                assert!(!message.is_empty(), "empty error for {text:?}");
                let names_what = [
                    "position",
                    "unterminated",
                    "unknown property",
                    "not supported",
                    "text property",
                    "too deep",
                    "too many",
                ];
                assert!(
                    names_what.iter().any(|w| message.contains(w)),
                    "{text:?}: {message}"
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn any_text(text in any::<String>()) {
            check(&text);
        }

        #[test]
        fn token_soup(tokens in prop::collection::vec(prop::sample::select(TOKENS), 0..40)) {
            check(&tokens.concat());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Deep nesting and long chains, as a hostile client could send.
        #[test]
        fn deep_nesting(
            depth in 0usize..200_000,
            opener in prop::sample::select(&["(", "not ", "not (", "WebUser eq 'a' or "][..]),
        ) {
            let mut text = opener.repeat(depth);
            text.push_str("WebUser eq 'a'");
            if opener.contains('(') {
                text.push_str(&")".repeat(depth));
            }
            check(&text);
        }
    }
}
