//! How values of the shared model are kept in SQLite: enums as their derived
//! snake_case names (the names of the JSON report, spelled once by strum's
//! derives on the enums), read back through [`Stored`]; counts as checked
//! SQLite integers.

use super::error::StoreError;
use sqlx::error::BoxDynError;
use sqlx::sqlite::{SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Sqlite, Type};
use std::str::FromStr;

/// An enum of the model in a TEXT column, decoded through its derived
/// [`FromStr`]: a name this version does not know is a decode error that
/// names the value (and sqlx adds the column).
pub(crate) struct Stored<T>(pub T);

impl<T> Type<Sqlite> for Stored<T> {
    fn type_info() -> SqliteTypeInfo {
        <str as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <str as Type<Sqlite>>::compatible(ty)
    }
}

impl<'r, T: FromStr> Decode<'r, Sqlite> for Stored<T> {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<Sqlite>>::decode(value)?;
        text.parse()
            .map(Stored)
            .map_err(|_| format!("unexpected value {text:?}").into())
    }
}

/// `text` as the enum `T`; an unknown name is [`StoreError::Corrupt`] naming `what`.
pub(crate) fn parse_name<T: FromStr>(what: &'static str, text: &str) -> Result<T, StoreError> {
    text.parse().map_err(|_| corrupt(what, text))
}

pub(crate) fn corrupt(what: &'static str, value: &str) -> StoreError {
    StoreError::Corrupt {
        what,
        value: value.to_string(),
    }
}

/// A count as an SQLite integer.
pub(crate) fn to_db(what: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange { what, value })
}

/// A stored count back as `u64`; negative values are corrupt.
pub(crate) fn from_db(what: &'static str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(what, &value.to_string()))
}

/// A position in a list as an SQLite integer (lists never get near `i64::MAX`).
pub(crate) fn seq(index: usize) -> i64 {
    i64::try_from(index).unwrap_or(i64::MAX)
}
