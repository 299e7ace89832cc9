//! Tickets, contacts and messages as the API accepts them.

use serde::{Deserialize, Serialize};

use super::{line, named_enum, present, required, text};
use crate::error::ApiError;

/// Longest subject.
pub const MAX_SUBJECT_CHARS: usize = 500;
/// Longest message content.
pub const MAX_CONTENT_CHARS: usize = 100_000;
/// Most tags a ticket may hold.
pub const MAX_TAGS: usize = 50;
/// Longest tag.
pub const MAX_TAG_CHARS: usize = 64;
/// Longest external id (message or contact).
pub const MAX_EXTERNAL_ID_CHARS: usize = 255;
/// Longest contact name.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest email address.
pub const MAX_EMAIL_CHARS: usize = 254;
/// Longest phone number as given.
pub const MAX_PHONE_CHARS: usize = 32;

named_enum!(
    /// Where a ticket stands; `closed` is final.
    Status { Open => "open", Pending => "pending", Resolved => "resolved", Closed => "closed" }
);

named_enum!(Priority { Low => "low", Normal => "normal", High => "high", Urgent => "urgent" });

named_enum!(
    /// The channel a ticket or message came through.
    Channel {
        Email => "email", Chat => "chat", Web => "web", Sms => "sms", Whatsapp => "whatsapp",
        Messenger => "messenger", Instagram => "instagram", Voice => "voice", Api => "api",
    }
);

named_enum!(
    /// Who wrote a message: `user` is the customer, `note` is internal.
    Role { User => "user", Agent => "agent", Assistant => "assistant", System => "system", Note => "note" }
);

/// A normalised tag: 1–64 characters of `a-z0-9_-:.`, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tag(String);

impl Tag {
    /// OpenAPI: `^[A-Za-z0-9_:.-]{1,64}$`, then lower-cased.
    pub fn parse(raw: &str, param: &str) -> Result<Tag, ApiError> {
        let valid_chars = raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-:.".contains(&b));
        let tag = raw.to_ascii_lowercase();
        if tag.is_empty() || tag.len() > MAX_TAG_CHARS || !valid_chars {
            return Err(ApiError::invalid(
                param,
                format!(
                    "{param}: {:?} is not a valid tag (1-{MAX_TAG_CHARS} characters of a-z, 0-9, _ - : .)",
                    truncate(raw, 80)
                ),
            ));
        }
        Ok(Tag(tag))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A tag read back from storage, where it was stored normalised.
    pub fn from_stored(tag: &str) -> Tag {
        Tag(tag.to_string())
    }
}

/// Parses, lower-cases and de-duplicates tags (first occurrence kept); at most 50
/// given (OpenAPI `maxItems`), duplicates included.
pub fn parse_tags(raw: &[String], param: &str) -> Result<Vec<Tag>, ApiError> {
    if raw.len() > MAX_TAGS {
        return Err(ApiError::invalid(
            param,
            format!("{param} may hold at most {MAX_TAGS} tags"),
        ));
    }
    let mut tags: Vec<Tag> = Vec::with_capacity(raw.len());
    for text in raw {
        let tag = Tag::parse(text, param)?;
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    Ok(tags)
}

/// Tags as stored in the `tickets.tags` column: joined by ','.
pub fn join_tags(tags: &[Tag]) -> String {
    let mut joined = String::new();
    for (i, tag) in tags.iter().enumerate() {
        if i > 0 {
            joined.push(',');
        }
        joined.push_str(tag.as_str());
    }
    joined
}

/// Tags from the `tickets.tags` column.
pub fn split_tags(stored: &str) -> Vec<Tag> {
    stored
        .split(',')
        .filter(|t| !t.is_empty())
        .map(Tag::from_stored)
        .collect()
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((index, _)) => &text[..index],
        None => text,
    }
}

/// Who the ticket is from. At least one of email, phone, external_id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactInput {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub external_id: Option<String>,
}

/// `contact` as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactBody {
    #[serde(default, deserialize_with = "present")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub phone: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub external_id: Option<String>,
}

impl TryFrom<ContactBody> for ContactInput {
    type Error = ApiError;

    fn try_from(body: ContactBody) -> Result<ContactInput, ApiError> {
        let name = body
            .name
            .map(|n| line(&n, "contact.name", MAX_NAME_CHARS).map(str::to_string))
            .transpose()?;
        let email = body.email.map(|e| parse_email(&e)).transpose()?;
        let phone = body.phone.map(|p| parse_phone(&p)).transpose()?;
        let external_id = body
            .external_id
            .map(|x| line(&x, "contact.external_id", MAX_EXTERNAL_ID_CHARS).map(str::to_string))
            .transpose()?;
        if email.is_none() && phone.is_none() && external_id.is_none() {
            return Err(ApiError::invalid(
                "contact",
                "contact needs at least one of email, phone or external_id",
            ));
        }
        Ok(ContactInput {
            name,
            email,
            phone,
            external_id,
        })
    }
}

/// Checks an address's syntax and lower-cases it, so that contacts are matched
/// case-insensitively. The rule is the OpenAPI pattern, exactly: dot-separated atoms of
/// `A-Za-z0-9!#$%&'*+/=?^_`{|}~-`, `@`, then at least two DNS labels (1-63 letters,
/// digits and inner hyphens), the last starting with a letter and at least two long.
pub fn parse_email(raw: &str) -> Result<String, ApiError> {
    const PARAM: &str = "contact.email";
    let valid = raw.len() <= MAX_EMAIL_CHARS
        && raw.rsplit_once('@').is_some_and(|(local, domain)| {
            let atom_char =
                |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&b);
            let local_ok = local
                .split('.')
                .all(|atom| !atom.is_empty() && atom.bytes().all(atom_char));
            let labels: Vec<&str> = domain.split('.').collect();
            let label_ok = |label: &str| {
                let bytes = label.as_bytes();
                (1..=63).contains(&bytes.len())
                    && bytes
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
                    && bytes[0] != b'-'
                    && bytes[bytes.len() - 1] != b'-'
            };
            let tld_ok = labels
                .last()
                .is_some_and(|tld| tld.len() >= 2 && tld.as_bytes()[0].is_ascii_alphabetic());
            local_ok && labels.len() >= 2 && labels.iter().all(|l| label_ok(l)) && tld_ok
        });
    if !valid {
        return Err(ApiError::invalid(
            PARAM,
            format!(
                "contact.email: {:?} is not a valid email address",
                truncate(raw, 80)
            ),
        ));
    }
    Ok(raw.to_ascii_lowercase())
}

/// Accepts a leading `+`, then digits and the separators `( ) . -` and space, with at
/// least three digits (OpenAPI: `^\+?(?:[ ().-]*[0-9]){3}[0-9 ().-]*$`, 32 characters
/// at most). Stores only `+` and digits, so that `+33 6 12-34` and `+33612 34` are the
/// same contact.
pub fn parse_phone(raw: &str) -> Result<String, ApiError> {
    let invalid = || {
        ApiError::invalid(
            "contact.phone",
            format!(
                "contact.phone: {:?} is not a phone number (an optional leading +, then digits, spaces and ( ) . -; at least 3 digits)",
                truncate(raw, 80)
            ),
        )
    };
    if raw.chars().count() > MAX_PHONE_CHARS {
        return Err(invalid());
    }
    let rest = raw.strip_prefix('+').unwrap_or(raw);
    let mut normalised = String::with_capacity(raw.len());
    if rest.len() < raw.len() {
        normalised.push('+');
    }
    for c in rest.chars() {
        match c {
            '0'..='9' => normalised.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return Err(invalid()),
        }
    }
    if normalised.trim_start_matches('+').len() < 3 {
        return Err(invalid());
    }
    Ok(normalised)
}

/// The subject line: one line of 1–500 characters, stored without surrounding spaces.
pub fn parse_subject(raw: &str) -> Result<String, ApiError> {
    Ok(line(raw, "subject", MAX_SUBJECT_CHARS)?.to_string())
}

/// Message content: 1–100,000 characters, not only spaces, kept exactly as sent.
pub fn parse_content(raw: String, param: &str) -> Result<String, ApiError> {
    text(raw, param, MAX_CONTENT_CHARS)
}

/// An integration's own id for a message, unique per tenant: one line, kept as sent.
pub fn parse_external_message_id(raw: String, param: &str) -> Result<String, ApiError> {
    line(&raw, param, MAX_EXTERNAL_ID_CHARS)?;
    Ok(raw)
}

/// The first message of a new ticket.
#[derive(Debug, Clone)]
pub struct InitialMessage {
    pub role: Role,
    pub content: String,
    pub external_message_id: Option<String>,
}

/// `initial_message` as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitialMessageBody {
    #[serde(default, deserialize_with = "present")]
    pub role: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub content: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub external_message_id: Option<String>,
}

impl TryFrom<InitialMessageBody> for InitialMessage {
    type Error = ApiError;

    fn try_from(body: InitialMessageBody) -> Result<InitialMessage, ApiError> {
        let role = Role::parse(
            &required(body.role, "initial_message.role")?,
            "initial_message.role",
        )?;
        let content = parse_content(
            required(body.content, "initial_message.content")?,
            "initial_message.content",
        )?;
        let external_message_id = body
            .external_message_id
            .map(|id| parse_external_message_id(id, "initial_message.external_message_id"))
            .transpose()?;
        Ok(InitialMessage {
            role,
            content,
            external_message_id,
        })
    }
}

/// `POST /tickets`, parsed.
#[derive(Debug, Clone)]
pub struct NewTicket {
    pub subject: String,
    pub priority: Priority,
    pub channel: Channel,
    pub contact: Option<ContactInput>,
    pub tags: Vec<Tag>,
    pub initial_message: InitialMessage,
}

/// `POST /tickets` as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTicketBody {
    #[serde(default, deserialize_with = "present")]
    pub subject: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub priority: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub channel: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub contact: Option<ContactBody>,
    #[serde(default, deserialize_with = "present")]
    pub tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    pub initial_message: Option<InitialMessageBody>,
}

impl TryFrom<NewTicketBody> for NewTicket {
    type Error = ApiError;

    fn try_from(body: NewTicketBody) -> Result<NewTicket, ApiError> {
        let subject = parse_subject(&required(body.subject, "subject")?)?;
        let priority = match body.priority {
            Some(p) => Priority::parse(&p, "priority")?,
            None => Priority::Normal,
        };
        let channel = Channel::parse(&required(body.channel, "channel")?, "channel")?;
        let contact = body.contact.map(ContactInput::try_from).transpose()?;
        let tags = parse_tags(body.tags.as_deref().unwrap_or_default(), "tags")?;
        let initial_message =
            InitialMessage::try_from(required(body.initial_message, "initial_message")?)?;
        Ok(NewTicket {
            subject,
            priority,
            channel,
            contact,
            tags,
            initial_message,
        })
    }
}

/// `PATCH /tickets/{id}`, parsed: at least one change.
#[derive(Debug, Clone, Default)]
pub struct TicketPatch {
    pub subject: Option<String>,
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    pub tags: Option<Vec<Tag>>,
    pub add_tags: Vec<Tag>,
    pub remove_tags: Vec<Tag>,
}

/// `PATCH /tickets/{id}` as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketPatchBody {
    #[serde(default, deserialize_with = "present")]
    pub subject: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub priority: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    pub add_tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    pub remove_tags: Option<Vec<String>>,
}

impl TryFrom<TicketPatchBody> for TicketPatch {
    type Error = ApiError;

    fn try_from(body: TicketPatchBody) -> Result<TicketPatch, ApiError> {
        let patch = TicketPatch {
            subject: body.subject.as_deref().map(parse_subject).transpose()?,
            status: body
                .status
                .map(|s| Status::parse(&s, "status"))
                .transpose()?,
            priority: body
                .priority
                .map(|p| Priority::parse(&p, "priority"))
                .transpose()?,
            tags: body.tags.map(|t| parse_tags(&t, "tags")).transpose()?,
            add_tags: parse_tags(body.add_tags.as_deref().unwrap_or_default(), "add_tags")?,
            remove_tags: parse_tags(
                body.remove_tags.as_deref().unwrap_or_default(),
                "remove_tags",
            )?,
        };
        let empty = patch.subject.is_none()
            && patch.status.is_none()
            && patch.priority.is_none()
            && patch.tags.is_none()
            && body.add_tags.is_none()
            && body.remove_tags.is_none();
        if empty {
            return Err(ApiError::new(
                crate::error::ErrorKind::InvalidRequest,
                "the body changes nothing; send at least one of subject, status, priority, tags, add_tags, remove_tags",
            ));
        }
        Ok(patch)
    }
}

/// `POST /tickets/{id}/messages`, parsed.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub role: Role,
    pub content: String,
    pub external_message_id: Option<String>,
    pub channel: Option<Channel>,
}

/// `POST /tickets/{id}/messages` as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMessageBody {
    #[serde(default, deserialize_with = "present")]
    pub role: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub content: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub external_message_id: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub channel: Option<String>,
}

impl TryFrom<NewMessageBody> for NewMessage {
    type Error = ApiError;

    fn try_from(body: NewMessageBody) -> Result<NewMessage, ApiError> {
        Ok(NewMessage {
            role: Role::parse(&required(body.role, "role")?, "role")?,
            content: parse_content(required(body.content, "content")?, "content")?,
            external_message_id: body
                .external_message_id
                .map(|id| parse_external_message_id(id, "external_message_id"))
                .transpose()?,
            channel: body
                .channel
                .map(|c| Channel::parse(&c, "channel"))
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param_of(error: ApiError) -> String {
        error.param.unwrap_or_default()
    }

    #[test]
    fn tags_are_lowercased_and_deduplicated() {
        let raw = vec!["VIP".to_string(), "vip".into(), "returns".into()];
        let tags = parse_tags(&raw, "tags").unwrap();
        assert_eq!(join_tags(&tags), "vip,returns");
        assert_eq!(split_tags("vip,returns"), tags);
        assert!(split_tags("").is_empty());
    }

    #[test]
    fn bad_tags_are_refused() {
        for bad in ["", "two words", "é", "a,b", &"x".repeat(65)] {
            let err = parse_tags(&[bad.to_string()], "tags").unwrap_err();
            assert_eq!(param_of(err), "tags", "{bad}");
        }
        let many: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
        assert!(parse_tags(&many, "tags").is_err());
        assert!(parse_tags(&many[..50], "tags").is_ok());
    }

    #[test]
    fn emails() {
        assert_eq!(
            parse_email("Customer@Example.com").unwrap(),
            "customer@example.com"
        );
        assert!(parse_email("o'hara+tag@mail.example.co.uk").is_ok());
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "a@-b.com",
            "a@b..com",
            "a@1.2",
            " a@b.co",
            "a.@b.co",
            "a@b.c",
            "a@b.1c",
        ] {
            assert_eq!(
                param_of(parse_email(bad).unwrap_err()),
                "contact.email",
                "{bad}"
            );
        }
    }

    #[test]
    fn phones_are_normalised() {
        assert_eq!(parse_phone("+33 6 12-34.56").unwrap(), "+336123456");
        for bad in ["12", "phone", "+", "1+23", "+1 (555) 123 4567 ext 9"] {
            assert!(parse_phone(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subject_is_trimmed_and_bounded() {
        assert_eq!(parse_subject("  Hello ").unwrap(), "Hello");
        assert!(parse_subject("   ").is_err());
        assert!(parse_subject(&"é".repeat(500)).is_ok());
        assert!(parse_subject(&"é".repeat(501)).is_err());
        assert!(parse_subject(&format!(" {} ", "é".repeat(499))).is_err());
        assert!(parse_subject("two\nlines").is_err());
        assert!(parse_subject("tab\there").is_err());
        assert!(
            parse_subject("\u{a0}").is_ok(),
            "only ASCII space counts as blank"
        );
    }

    #[test]
    fn content_is_kept_as_sent() {
        assert_eq!(parse_content(" hi\n".into(), "content").unwrap(), " hi\n");
        assert!(parse_content("\t\n \r".into(), "content").is_err());
        assert!(parse_content("\u{1c}".into(), "content").is_ok());
    }

    #[test]
    fn contact_needs_an_identifier() {
        let body = ContactBody {
            name: Some("Ann".into()),
            email: None,
            phone: None,
            external_id: None,
        };
        assert_eq!(
            param_of(ContactInput::try_from(body).unwrap_err()),
            "contact"
        );
    }

    #[test]
    fn enums_parse_and_list_values() {
        assert_eq!(
            Channel::parse("whatsapp", "channel").unwrap(),
            Channel::Whatsapp
        );
        let err = Priority::parse("asap", "priority").unwrap_err();
        assert!(err.message.contains("low, normal, high, urgent"));
    }
}
