//! The ids, names and dates the store accepts (projects, researchers, partners,
//! extracts, tables).

use chrono::NaiveDate;

use crate::error::{GovernError, Result};

/// Checks an id or name: 1-64 characters of `a-z 0-9 _ - .`, starting with a letter or
/// digit.
pub fn check_name(kind: &'static str, s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(GovernError::BadName {
            kind,
            value: s.to_owned(),
            rule: "use 1-64 characters of a-z, 0-9, `_`, `-`, `.`, starting with a letter or digit",
        })
    }
}

/// Parses a `YYYY-MM-DD` date.
pub fn parse_date(s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| GovernError::Invalid(format!("`{s}` is not a date; use YYYY-MM-DD")))
}
