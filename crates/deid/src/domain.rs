//! The closed vocabulary of key domains (DESIGN.md, "Pseudonyms and keys").
//!
//! Every key dhub derives from the master key is named by a [`Domain`], and only here
//! does a domain become the bytes HKDF reads (`info`):
//!
//! | domain | `info` | used by |
//! | --- | --- | --- |
//! | [`Domain::Pseudonym`] | `pseudonym:<entity>` | research pseudonyms ([`Pseudonymiser::new`](crate::Pseudonymiser::new)) |
//! | [`Domain::DateShift`] | `date-shift` | per-person date shifts ([`DateShifter`](crate::DateShifter)) |
//! | [`Domain::Project`] | `project:<id>` | project pseudonyms of extracts ([`Pseudonymiser::for_project`](crate::Pseudonymiser::for_project)) and the project key id ([`project_key_id`](crate::project_key_id)) |
//!
//! and the key-id label [`Domain::KEY_ID_LABEL`] (`dhub key id`), the message whose
//! HMAC under a key gives that key's public id ([`MasterKey::key_id`](crate::MasterKey::key_id),
//! [`DomainKey::key_id`](crate::DomainKey::key_id)).
//!
//! Entity and project names are checked once, when the domain is made ([`Name`]), so a
//! domain that exists is always a valid one; no caller formats a domain string.

use std::fmt;
use std::str::FromStr;

use crate::error::RuleError;

/// An entity or project name: 1–64 characters of `a-z`, `0-9`, `_`, `-`, `.`. Made
/// only through [`Domain::pseudonym`] and [`Domain::project`], which check it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name(String);

impl Name {
    fn new(kind: &'static str, name: &str) -> Result<Self, RuleError> {
        validate_name(kind, name)?;
        Ok(Self(name.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks an entity or project name: 1–64 characters of `a-z`, `0-9`, `_`, `-`, `.`.
pub fn validate_name(kind: &'static str, name: &str) -> Result<(), RuleError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(RuleError::BadParameter {
            rule: "pseudonymise",
            message: format!(
                "{kind} name `{name}` is not valid: use 1-64 characters of a-z, 0-9, `_`, `-`, `.`"
            ),
        })
    }
}

/// One HKDF domain: the `info` of `K(domain) = HKDF-SHA256(salt = "dhub-v1", ikm =
/// master, info = domain)`. The set is closed: a new keyed construction adds a variant
/// here (and to the crate docs), never a string at its call site.
///
/// ```
/// use dhub_deid::Domain;
/// assert_eq!(Domain::pseudonym("person").unwrap().to_string(), "pseudonym:person");
/// assert_eq!(Domain::DateShift.to_string(), "date-shift");
/// assert_eq!(Domain::project("asthma-2026").unwrap().to_string(), "project:asthma-2026");
/// assert!(Domain::pseudonym("Person!").is_err());
/// assert_eq!("project:x".parse::<Domain>().unwrap(), Domain::project("x").unwrap());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Domain {
    /// `pseudonym:<entity>`: research pseudonyms of one entity (`person`, `encounter`, …).
    Pseudonym(Name),
    /// `date-shift`: per-person date shifts.
    DateShift,
    /// `project:<id>`: project pseudonyms (extract re-keying) and the project key id.
    Project(Name),
}

impl Domain {
    /// The message whose HMAC-SHA256 under a key, first 8 bytes in hex, is the key's
    /// public id (the master key's and a project key's alike).
    pub const KEY_ID_LABEL: &'static [u8] = b"dhub key id";

    /// `pseudonym:<entity>`, the entity name checked.
    pub fn pseudonym(entity: &str) -> Result<Self, RuleError> {
        Ok(Self::Pseudonym(Name::new("entity", entity)?))
    }

    /// `project:<id>`, the project id checked.
    pub fn project(project: &str) -> Result<Self, RuleError> {
        Ok(Self::Project(Name::new("project", project)?))
    }

    /// Writes the domain's HKDF `info` bytes (its text form) to `out`.
    pub(crate) fn write_info(&self, out: &mut impl FnMut(&[u8])) {
        match self {
            Self::Pseudonym(entity) => {
                out(b"pseudonym:");
                out(entity.0.as_bytes());
            }
            Self::DateShift => out(b"date-shift"),
            Self::Project(id) => {
                out(b"project:");
                out(id.0.as_bytes());
            }
        }
    }
}

impl fmt::Display for Domain {
    /// The HKDF `info` as text: `pseudonym:person`, `date-shift`, `project:<id>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pseudonym(entity) => write!(f, "pseudonym:{entity}"),
            Self::DateShift => f.write_str("date-shift"),
            Self::Project(id) => write!(f, "project:{id}"),
        }
    }
}

impl FromStr for Domain {
    type Err = RuleError;

    /// Parses the text form (as written in test vectors): `pseudonym:<entity>`,
    /// `date-shift` or `project:<id>`; anything else is refused.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "date-shift" {
            Ok(Self::DateShift)
        } else if let Some(entity) = s.strip_prefix("pseudonym:") {
            Self::pseudonym(entity)
        } else if let Some(project) = s.strip_prefix("project:") {
            Self::project(project)
        } else {
            Err(RuleError::BadParameter {
                rule: "domain",
                message: "not a key domain: use pseudonym:<entity>, date-shift or project:<id>"
                    .into(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_bytes_are_the_text_form() {
        for d in [
            Domain::pseudonym("person").unwrap(),
            Domain::DateShift,
            Domain::project("demo-project").unwrap(),
        ] {
            let mut info = Vec::new();
            d.write_info(&mut |b| info.extend_from_slice(b));
            assert_eq!(info, d.to_string().into_bytes());
            assert_eq!(d.to_string().parse::<Domain>().unwrap(), d);
        }
    }

    #[test]
    fn names_are_checked_and_unknown_domains_refused() {
        assert!(Domain::pseudonym("").is_err());
        assert!(Domain::project(&"a".repeat(65)).is_err());
        assert!(Domain::project("a/b").is_err());
        assert!("dhub key id".parse::<Domain>().is_err());
        assert!("pseudonym:".parse::<Domain>().is_err());
        assert!("date-shift:x".parse::<Domain>().is_err());
    }
}
