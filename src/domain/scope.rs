//! Scopes: what an API key may do.

use serde::{Serialize, Serializer};

use crate::error::ApiError;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Read,
    Write,
    Actions,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Actions];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "support.read",
            Scope::Write => "support.write",
            Scope::Actions => "support.actions",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Scope::Read => 1,
            Scope::Write => 2,
            Scope::Actions => 4,
        }
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    pub fn all() -> Scopes {
        Scopes(7)
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    /// Parses scope names; at least one, each known.
    pub fn parse_list<'a>(
        names: impl IntoIterator<Item = &'a str>,
        param: &str,
    ) -> Result<Scopes, ApiError> {
        let mut scopes = Scopes::default();
        for name in names {
            let name = name.trim();
            let scope = Scope::ALL
                .into_iter()
                .find(|s| s.as_str() == name)
                .ok_or_else(|| {
                    ApiError::invalid(
                        param,
                        format!(
                            "{param}: unknown scope {:?} (expected support.read, support.write, support.actions)",
                            name.chars().take(64).collect::<String>()
                        ),
                    )
                })?;
            scopes.0 |= scope.bit();
        }
        if scopes.0 == 0 {
            return Err(ApiError::invalid(
                param,
                format!("{param} needs at least one scope"),
            ));
        }
        Ok(scopes)
    }

    /// The storage form: names joined by ','.
    pub fn to_stored(self) -> String {
        self.iter().map(Scope::as_str).collect::<Vec<_>>().join(",")
    }

    /// Reads the storage form; unknown names are ignored (never widen access).
    pub fn from_stored(text: &str) -> Scopes {
        let mut scopes = Scopes::default();
        for name in text.split(',') {
            if let Some(scope) = Scope::ALL.into_iter().find(|s| s.as_str() == name) {
                scopes.0 |= scope.bit();
            }
        }
        scopes
    }
}

impl Serialize for Scopes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter().map(Scope::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_store() {
        let scopes = Scopes::parse_list(["support.read", "support.actions"], "scopes").unwrap();
        assert!(scopes.contains(Scope::Read) && !scopes.contains(Scope::Write));
        assert_eq!(scopes.to_stored(), "support.read,support.actions");
        assert_eq!(Scopes::from_stored(&scopes.to_stored()), scopes);
        assert!(Scopes::parse_list(["support.admin"], "scopes").is_err());
        assert!(Scopes::parse_list([], "scopes").is_err());
    }
}
