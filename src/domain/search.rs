//! `q`, the full-text query of `GET /tickets`, parsed into the FTS5 query we run.
//!
//! Users type words, not FTS5 syntax: every word becomes a quoted string, so that
//! punctuation, `AND`/`OR`/`NOT`, column filters and `NEAR` mean nothing special. Words
//! in double quotes are a phrase; a trailing `*` makes a word (or phrase) a prefix.
//! Every term must match (AND). Case and accents are folded by the index's tokenizer.

use crate::error::ApiError;

/// Longest `q`.
pub const MAX_QUERY_CHARS: usize = 500;
/// Most terms (words and phrases) in one `q`.
pub const MAX_TERMS: usize = 20;

/// A parsed `q`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    terms: Vec<Term>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    text: String,
    prefix: bool,
}

fn invalid(why: &str) -> ApiError {
    ApiError::invalid("q", format!("q {why}"))
}

impl SearchQuery {
    /// Parses `q`: words, `"quoted phrases"`, and `word*` or `"phrase"*` prefixes.
    pub fn parse(raw: &str) -> Result<SearchQuery, ApiError> {
        if raw.chars().count() > MAX_QUERY_CHARS {
            return Err(invalid(&format!(
                "must be at most {MAX_QUERY_CHARS} characters"
            )));
        }
        let mut terms = Vec::new();
        let mut rest = raw.trim();
        while !rest.is_empty() {
            // A quoted phrase, or a word up to the next space or quote.
            let (text, after) = match rest.strip_prefix('"') {
                Some(quoted) => {
                    let end = quoted
                        .find('"')
                        .ok_or_else(|| invalid("has a quote that is never closed"))?;
                    (&quoted[..end], &quoted[end + 1..])
                }
                None => {
                    let end = rest
                        .find(|c: char| c.is_whitespace() || c == '"')
                        .unwrap_or(rest.len());
                    (&rest[..end], &rest[end..])
                }
            };
            let (text, after, prefix) = match (text.strip_suffix('*'), after.strip_prefix('*')) {
                (Some(word), _) => (word, after, true),
                (None, Some(after)) => (text, after, true),
                (None, None) => (text, after, false),
            };
            // Words of punctuation only index nothing: they are dropped, unless starred.
            if text.chars().any(char::is_alphanumeric) {
                terms.push(Term {
                    text: text.to_string(),
                    prefix,
                });
            } else if prefix {
                return Err(invalid("has a * with no word before it"));
            }
            rest = after.trim_start();
        }
        if terms.is_empty() {
            return Err(invalid("needs at least one word"));
        }
        if terms.len() > MAX_TERMS {
            return Err(invalid(&format!(
                "may hold at most {MAX_TERMS} words and phrases"
            )));
        }
        Ok(SearchQuery { terms })
    }

    /// The FTS5 MATCH expression: each term a quoted string, prefixes starred.
    pub fn to_fts(&self) -> String {
        let mut fts = String::new();
        for term in &self.terms {
            if !fts.is_empty() {
                fts.push(' ');
            }
            fts.push('"');
            fts.push_str(&term.text.replace('"', "\"\""));
            fts.push('"');
            if term.prefix {
                fts.push('*');
            }
        }
        fts
    }

    /// Each term as an FTS5 MATCH expression of its own: a ticket matches when every
    /// term matches one of its documents (its subject or any message), not
    /// necessarily the same one.
    pub fn terms_fts(&self) -> Vec<String> {
        self.terms
            .iter()
            .map(|term| {
                SearchQuery {
                    terms: vec![term.clone()],
                }
                .to_fts()
            })
            .collect()
    }

    /// The query in a canonical form, for page token bindings.
    pub fn binding(&self) -> String {
        self.to_fts()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fts(raw: &str) -> String {
        SearchQuery::parse(raw).unwrap().to_fts()
    }

    #[test]
    fn words_phrases_and_prefixes() {
        assert_eq!(fts("refund"), "\"refund\"");
        assert_eq!(fts("  refund  parcel "), "\"refund\" \"parcel\"");
        assert_eq!(fts("rembour*"), "\"rembour\"*");
        assert_eq!(
            fts("\"cracked jug\" blender"),
            "\"cracked jug\" \"blender\""
        );
        assert_eq!(fts("\"order 10\"*"), "\"order 10\"*");
        // FTS5 operators and punctuation are words like any other.
        assert_eq!(
            fts("don't NOT OR body:x"),
            "\"don't\" \"NOT\" \"OR\" \"body:x\""
        );
    }

    #[test]
    fn bad_queries_name_q() {
        for bad in [
            "",
            "   ",
            "\"unclosed",
            "*",
            "\"\"",
            "!!!",
            &"x ".repeat(21),
        ] {
            let error = SearchQuery::parse(bad).unwrap_err();
            assert_eq!(error.param.as_deref(), Some("q"), "{bad:?}");
        }
        assert!(SearchQuery::parse(&"é".repeat(501)).is_err());
    }
}
