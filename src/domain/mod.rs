//! Parsed request values. Request bodies (DTOs) are converted once, with `TryFrom`,
//! into these types; handlers and SQL only ever see parsed values. Every parse error
//! names its `param`.

pub mod action;
pub mod listing;
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

/// Trims `text` and checks that 1..=max characters remain.
pub fn trimmed_text(text: &str, param: &str, max: usize) -> Result<String, ApiError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(ApiError::invalid(
            param,
            format!("{param} must not be blank"),
        ));
    }
    check_length(trimmed, param, max)?;
    Ok(trimmed.to_string())
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

/// Refuses control characters (a single-line field such as a subject or a name).
pub fn single_line(text: &str, param: &str) -> Result<(), ApiError> {
    if text.chars().any(|c| c.is_control() && c != '\t') {
        return Err(ApiError::invalid(
            param,
            format!("{param} must not contain line breaks or control characters"),
        ));
    }
    Ok(())
}

/// Parses one of a fixed set of lower-case names, listing them on error.
pub fn parse_enum<T: Copy>(
    value: &str,
    param: &str,
    variants: &[(&str, T)],
) -> Result<T, ApiError> {
    variants
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = variants.iter().map(|(n, _)| *n).collect();
            ApiError::invalid(
                param,
                format!("{param} must be one of: {}", names.join(", ")),
            )
        })
}
