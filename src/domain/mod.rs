//! Parsed request values. Request bodies (DTOs) are converted once, with `TryFrom`,
//! into these types; handlers and SQL only ever see parsed values. Every parse error
//! names its `param`.

pub mod action;
pub mod erasure;
pub mod event;
pub mod listing;
pub mod network;
pub mod scope;
pub mod search;
pub mod tenant;
pub mod ticket;

use serde::{Deserialize, Deserializer};

use crate::error::ApiError;

/// `deserialize_with` for optional fields: absent means `None` (with `#[serde(default)]`),
/// but an explicit `null` is a type error, as the schema says.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// `deserialize_with` for fields that accept `null` to clear a value: absent is
/// `None`, `null` is `Some(None)`.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A required field: present or a 400 naming it.
pub fn required<T>(value: Option<T>, param: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::invalid(param, format!("{param} is required")))
}

/// The characters that count as space in text rules: ASCII tab, line feed, vertical
/// tab, form feed, carriage return and space (the same in the OpenAPI patterns).
pub fn is_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{0b}' | '\u{0c}' | '\r' | ' ')
}

/// A C0 control character or DEL.
fn is_control(c: char) -> bool {
    c <= '\u{1f}' || c == '\u{7f}'
}

/// One line of text: 1..=max characters, no control characters, not only spaces.
/// Returns it without surrounding spaces. (OpenAPI: `minLength`, `maxLength` and the
/// pattern `^[^\u0000-\u001f\u007f]*[^\u0000-\u0020\u007f][^\u0000-\u001f\u007f]*$`.)
pub fn line<'a>(raw: &'a str, param: &str, max: usize) -> Result<&'a str, ApiError> {
    check_length(raw, param, max)?;
    if raw.chars().any(is_control) {
        return Err(ApiError::invalid(
            param,
            format!("{param} must not contain line breaks or control characters"),
        ));
    }
    let trimmed = raw.trim_matches(' ');
    if trimmed.is_empty() {
        return Err(ApiError::invalid(
            param,
            format!("{param} must not be blank"),
        ));
    }
    Ok(trimmed)
}

/// Free text: 1..=max characters, not only spaces (OpenAPI pattern
/// `[^\u0009-\u000d\u0020]`); kept exactly as sent.
pub fn text(raw: String, param: &str, max: usize) -> Result<String, ApiError> {
    check_length(&raw, param, max)?;
    if raw.chars().all(is_space) {
        return Err(ApiError::invalid(
            param,
            format!("{param} must not be blank"),
        ));
    }
    Ok(raw)
}

/// Checks that `text` has at most `max` characters.
pub fn check_length(text: &str, param: &str, max: usize) -> Result<(), ApiError> {
    // Bytes bound characters from above, so most texts skip the count.
    if text.len() > max && text.chars().count() > max {
        return Err(ApiError::invalid(
            param,
            format!("{param} must be at most {max} characters"),
        ));
    }
    Ok(())
}

/// Defines a closed set of lower-case names: parsing with a 400 that lists them,
/// JSON output, and SQLite storage as text.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn from_name(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }

            /// Parses a name, or a 400 naming `param` and the accepted values.
            pub fn parse(text: &str, param: &str) -> Result<$name, $crate::error::ApiError> {
                $name::from_name(text).ok_or_else(|| {
                    let names: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                    $crate::error::ApiError::invalid(
                        param,
                        format!("{param} must be one of: {}", names.join(", ")),
                    )
                })
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                $name::from_name(&text).ok_or_else(|| {
                    serde::de::Error::custom(format!("unknown {} {text:?}", stringify!($name)))
                })
            }
        }

        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(rusqlite::types::ToSqlOutput::from(self.as_str()))
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(
                value: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                let text = value.as_str()?;
                $name::from_name(text).ok_or_else(|| {
                    rusqlite::types::FromSqlError::Other(
                        format!("unknown {} {text:?}", stringify!($name)).into(),
                    )
                })
            }
        }
    };
}
pub(crate) use named_enum;
