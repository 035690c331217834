//! [`Loose`]: a boolean, integer, number or list that is either of its TOML
//! type or text.
//!
//! Every `IDRECON__…` variable reaches the raw tree as text (a password such
//! as `0123` must stay text), so keys of other types accept text at this
//! stage. Whether text is allowed is decided in the typed conversion
//! (`super::typed`), which knows where each value came from: text from an
//! environment variable is converted (`IDRECON__FIX__MAX_CHANGES=10`), text
//! in the file is a type error (`max_changes = "10"` stays refused).

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A value as serde handed it over, reduced to what the config needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Bool(bool),
    Integer(i128),
    Float(f64),
    Text(String),
    List(Vec<Scalar>),
    Table,
}

impl Scalar {
    /// The TOML name of the value's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Scalar::Bool(_) => "boolean",
            Scalar::Integer(_) => "integer",
            Scalar::Float(_) => "float",
            Scalar::Text(_) => "string",
            Scalar::List(_) => "array",
            Scalar::Table => "table",
        }
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a boolean, number, string or list")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Integer(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Scalar, E> {
        Ok(Scalar::Integer(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Integer(v.into()))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Scalar, E> {
        i128::try_from(v)
            .map(Scalar::Integer)
            .map_err(|_| E::custom("integer out of range"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_char<E>(self, v: char) -> Result<Scalar, E> {
        Ok(Scalar::Text(v.to_string()))
    }
    fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Text(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Text(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Scalar>()? {
            items.push(item);
        }
        Ok(Scalar::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map
            .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
            .is_some()
        {}
        Ok(Scalar::Table)
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// A value of type `T` as written in TOML, or text (from the environment).
#[derive(Debug, Clone, PartialEq)]
pub enum Loose<T> {
    Typed(T),
    Text(String),
}

/// The types a [`Loose`] can hold: how each is read from TOML and from text.
pub trait LooseKind: Sized {
    /// "an integer", "true or false"... for messages.
    const EXPECTED: &'static str;
    /// The value from its TOML form.
    fn from_scalar(value: &Scalar) -> Result<Self, String>;
    /// The value from an environment variable's text.
    fn from_text(text: &str) -> Result<Self, String>;
}

impl<'de, T: LooseKind> Deserialize<'de> for Loose<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Scalar::deserialize(d)? {
            Scalar::Text(text) => Ok(Loose::Text(text)),
            other => T::from_scalar(&other)
                .map(Loose::Typed)
                .map_err(de::Error::custom),
        }
    }
}

fn type_error(expected: &str, found: &Scalar) -> String {
    format!("expected {expected}, found {}", found.type_name())
}

impl LooseKind for bool {
    const EXPECTED: &'static str = "true or false";
    fn from_scalar(value: &Scalar) -> Result<Self, String> {
        match value {
            Scalar::Bool(b) => Ok(*b),
            other => Err(type_error(Self::EXPECTED, other)),
        }
    }
    fn from_text(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        match trimmed.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(format!("expected true or false, got {trimmed:?}")),
        }
    }
}

impl LooseKind for i128 {
    const EXPECTED: &'static str = "an integer";
    fn from_scalar(value: &Scalar) -> Result<Self, String> {
        match value {
            Scalar::Integer(i) => Ok(*i),
            other => Err(type_error(Self::EXPECTED, other)),
        }
    }
    fn from_text(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        trimmed
            .parse()
            .map_err(|_| format!("expected an integer, got {trimmed:?}"))
    }
}

impl LooseKind for f64 {
    const EXPECTED: &'static str = "a number";
    fn from_scalar(value: &Scalar) -> Result<Self, String> {
        match value {
            Scalar::Float(f) => Ok(*f),
            // Integers are exact in f64 for every sensible percentage.
            Scalar::Integer(i) => Ok(*i as f64),
            other => Err(type_error(Self::EXPECTED, other)),
        }
    }
    fn from_text(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        match trimmed.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(format!("expected a number, got {trimmed:?}")),
        }
    }
}

impl LooseKind for Vec<String> {
    const EXPECTED: &'static str = "a list of strings";
    fn from_scalar(value: &Scalar) -> Result<Self, String> {
        match value {
            Scalar::List(items) => items
                .iter()
                .map(|item| match item {
                    Scalar::Text(s) => Ok(s.clone()),
                    other => Err(format!(
                        "expected a list of strings, found an item of type {}",
                        other.type_name()
                    )),
                })
                .collect(),
            other => Err(type_error(Self::EXPECTED, other)),
        }
    }
    /// Comma separated; empty items are dropped (so `""` is the empty list).
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_follow_the_documented_env_syntax() {
        assert_eq!(bool::from_text(" YES "), Ok(true));
        assert_eq!(bool::from_text("off"), Ok(false));
        assert!(bool::from_text("maybe").is_err());
        assert_eq!(i128::from_text("10"), Ok(10));
        assert_eq!(
            i128::from_text("ten"),
            Err("expected an integer, got \"ten\"".to_string())
        );
        assert!(f64::from_text("inf").is_err());
        assert_eq!(
            Vec::<String>::from_text("a, b,,c"),
            Ok(vec!["a".to_string(), "b".to_string(), "c".to_string()])
        );
    }
}
