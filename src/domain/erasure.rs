//! What an erasure names: the contact to erase, as the admin API, the CLI and the
//! console give it.

use serde::Deserialize;

use super::ticket::{MAX_EXTERNAL_ID_CHARS, parse_email, parse_phone};
use super::{line, present};
use crate::error::ApiError;

/// One of a contact's identifiers, normalised as contacts are matched when tickets
/// are created (email lower-cased, phone reduced to digits and a leading `+`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactSelector {
    Email(String),
    Phone(String),
    ExternalId(String),
    ContactId(String),
}

impl ContactSelector {
    /// The `contacts` column this selector matches.
    pub fn column(&self) -> &'static str {
        match self {
            ContactSelector::Email(_) => "email",
            ContactSelector::Phone(_) => "phone",
            ContactSelector::ExternalId(_) => "external_id",
            ContactSelector::ContactId(_) => "contact_id",
        }
    }

    /// The value it matches.
    pub fn value(&self) -> &str {
        match self {
            ContactSelector::Email(v)
            | ContactSelector::Phone(v)
            | ContactSelector::ExternalId(v)
            | ContactSelector::ContactId(v) => v,
        }
    }

    /// Parses `value` as the identifier named `column` (`email`, `phone`,
    /// `external_id` or `contact_id`); the error names `column`.
    pub fn parse(column: &str, value: &str) -> Result<ContactSelector, ApiError> {
        let renamed = |e: ApiError| {
            ApiError::invalid(
                column,
                format!(
                    "{column}: {}",
                    e.message.split_once(": ").map_or(&*e.message, |(_, m)| m)
                ),
            )
        };
        match column {
            "email" => parse_email(value)
                .map(ContactSelector::Email)
                .map_err(renamed),
            "phone" => parse_phone(value)
                .map(ContactSelector::Phone)
                .map_err(renamed),
            "external_id" => line(value, "external_id", MAX_EXTERNAL_ID_CHARS)
                .map(|v| ContactSelector::ExternalId(v.to_string())),
            "contact_id" => {
                line(value, "contact_id", 64).map(|v| ContactSelector::ContactId(v.to_string()))
            }
            other => Err(ApiError::invalid(
                "by",
                format!("by must be email, phone, external_id or contact_id, not {other:?}"),
            )),
        }
    }
}

/// The body of `POST /api/v1/admin/tenants/{tenant_id}/contacts/erase`: exactly one
/// identifier.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactSelectorBody {
    #[serde(default, deserialize_with = "present")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub phone: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub external_id: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub contact_id: Option<String>,
}

impl TryFrom<ContactSelectorBody> for ContactSelector {
    type Error = ApiError;

    fn try_from(body: ContactSelectorBody) -> Result<ContactSelector, ApiError> {
        let given: Vec<(&str, String)> = [
            ("email", body.email),
            ("phone", body.phone),
            ("external_id", body.external_id),
            ("contact_id", body.contact_id),
        ]
        .into_iter()
        .filter_map(|(column, value)| value.map(|v| (column, v)))
        .collect();
        match given.as_slice() {
            [(column, value)] => ContactSelector::parse(column, value),
            [] => Err(ApiError::invalid(
                "email",
                "name the contact with one of email, phone, external_id or contact_id",
            )),
            [_, (second, _), ..] => Err(ApiError::invalid(
                *second,
                "name the contact with only one of email, phone, external_id or contact_id",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> Result<ContactSelector, ApiError> {
        ContactSelector::try_from(serde_json::from_str::<ContactSelectorBody>(json).unwrap())
    }

    #[test]
    fn one_identifier_normalised_as_contacts_are_matched() {
        assert_eq!(
            body(r#"{"email": "Jane@Example.com"}"#).unwrap(),
            ContactSelector::Email("jane@example.com".into())
        );
        assert_eq!(
            body(r#"{"phone": "+33 6 12"}"#).unwrap(),
            ContactSelector::Phone("+33612".into())
        );
        assert_eq!(
            body(r#"{"external_id": " crm-1 "}"#).unwrap().value(),
            "crm-1"
        );
    }

    #[test]
    fn none_two_or_a_bad_one_are_refused_naming_the_field() {
        assert_eq!(body("{}").unwrap_err().param.as_deref(), Some("email"));
        let two = body(r#"{"email": "a@example.com", "phone": "+3312"}"#).unwrap_err();
        assert_eq!(two.param.as_deref(), Some("phone"));
        let bad = body(r#"{"email": "not an email"}"#).unwrap_err();
        assert_eq!(bad.param.as_deref(), Some("email"));
        assert!(bad.message.starts_with("email: "), "{}", bad.message);
        assert!(serde_json::from_str::<ContactSelectorBody>(r#"{"name": "x"}"#).is_err());
    }
}
