//! One entity of an IFS `Users` page, read straight from the page's JSON:
//! scalar properties only, OData annotations (`@odata.etag`, …) and nested
//! values skipped without building a JSON tree per user. Which property is
//! the Directory ID (or the e-mail) is configuration, so every scalar
//! property is kept by name and looked up afterwards.

use compact_str::CompactString;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::fmt;

/// A property value as IFS may send it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Text(CompactString),
    /// A number, an array or an object: kept only as its kind, for errors.
    Other(&'static str),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Null => f.write_str("null"),
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Text(s) => write!(f, "{s:?}"),
            Scalar::Other(kind) => write!(f, "a JSON {kind}"),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.into()))
            }
            fn visit_string<E>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.into()))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Scalar, E> {
                Ok(Scalar::Other("number"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Scalar, E> {
                Ok(Scalar::Other("number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Scalar, E> {
                Ok(Scalar::Other("number"))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Scalar, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other("array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other("object"))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// The properties of one `Users` entity, by name, annotations left out.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct IfsRow {
    properties: Vec<(CompactString, Scalar)>,
}

impl IfsRow {
    /// The value of a property; `None` when the entity does not carry it.
    pub fn get(&self, name: &str) -> Option<&Scalar> {
        self.properties
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }

    /// Takes a property's value out (so its text is moved, not copied).
    pub fn take(&mut self, name: &str) -> Option<Scalar> {
        let at = self.properties.iter().position(|(key, _)| key == name)?;
        Some(self.properties.swap_remove(at).1)
    }
}

impl<'de> Deserialize<'de> for IfsRow {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RowVisitor;
        impl<'de> Visitor<'de> for RowVisitor {
            type Value = IfsRow;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an IFS user entity (a JSON object)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<IfsRow, A::Error> {
                let mut properties = Vec::with_capacity(6);
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key.starts_with('@') {
                        map.next_value::<IgnoredAny>()?;
                    } else {
                        let value = map.next_value::<Scalar>()?;
                        properties.push((CompactString::from(key), value));
                    }
                }
                Ok(IfsRow { properties })
            }
        }
        deserializer.deserialize_map(RowVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_are_skipped_and_scalars_kept() {
        let row: IfsRow = serde_json::from_str(
            r#"{"@odata.etag":"W/\"x\"","Identity":"JDOE","Active":"TRUE","WebUser":null,"N":3,"L":[1],"O":{"a":1},"B":false}"#,
        )
        .unwrap();
        assert_eq!(row.get("@odata.etag"), None);
        assert_eq!(row.get("Identity"), Some(&Scalar::Text("JDOE".into())));
        assert_eq!(row.get("WebUser"), Some(&Scalar::Null));
        assert_eq!(row.get("N"), Some(&Scalar::Other("number")));
        assert_eq!(row.get("L"), Some(&Scalar::Other("array")));
        assert_eq!(row.get("O"), Some(&Scalar::Other("object")));
        assert_eq!(row.get("B"), Some(&Scalar::Bool(false)));
        assert_eq!(row.get("Missing"), None);
        let escaped: IfsRow = serde_json::from_str(r#"{"Identity":"O\u0027BRIEN"}"#).unwrap();
        assert_eq!(
            escaped.get("Identity"),
            Some(&Scalar::Text("O'BRIEN".into()))
        );
    }
}
