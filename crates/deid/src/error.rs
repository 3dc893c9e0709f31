//! Typed errors of the de-identification core. Messages name what went wrong and what
//! to do next; they never contain a key byte or an input value.

use std::path::PathBuf;

/// Errors about the master key and its file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The secure random generator failed.
    #[error(
        "the system's secure random generator failed, so no key, token or identifier was made from it; retry, and check the system's entropy source"
    )]
    Random,
    /// The key text is not 64 hex characters.
    #[error(
        "the master key is malformed ({reason}); a key file holds one line of 64 hex characters, as written by `dhub keys generate`"
    )]
    Malformed {
        /// What is wrong, without the key's content.
        reason: &'static str,
    },
    /// No key file at the path.
    #[error(
        "no master key file at {path}; create one with `dhub keys generate --out {path}` or point --key / DHUB_KEY_FILE at the existing one"
    )]
    NotFound {
        /// The key file path.
        path: PathBuf,
    },
    /// The key file can be read by group or others.
    #[error(
        "the master key file {path} is readable by group or others (mode {mode:03o}); restrict it with `chmod 600 {path}` (and the directory with `chmod 700`) before using it"
    )]
    TooOpen {
        /// The key file path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Refusing to overwrite an existing key file.
    #[error(
        "refusing to overwrite the existing key file {path}: every pseudonym made with it would become unreproducible; choose another --out path or move the old key away deliberately"
    )]
    Exists {
        /// The key file path.
        path: PathBuf,
    },
    /// Reading or writing the key file failed.
    #[error("cannot {action} the key file {path}: {source}")]
    Io {
        /// "read", "create", ...
        action: &'static str,
        /// The key file path.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// Why one value could not be de-identified. Never holds the value itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Reason {
    /// Not a ten-digit NHS number passing the modulus-11 check.
    #[error("not a valid NHS number (ten digits with a modulus-11 check digit)")]
    InvalidNhsNumber,
    /// Not a UUID in 8-4-4-4-12 hex form.
    #[error("not a UUID (8-4-4-4-12 hexadecimal)")]
    InvalidUuid,
    /// Not an ISO date or date-time.
    #[error("not a date (YYYY-MM-DD) or date-time (YYYY-MM-DDTHH:MM:SS[.f][Z|±hh:mm])")]
    UnparseableDate,
    /// A date that cannot be represented after shifting or banding.
    #[error("date out of the supported range")]
    DateOutOfRange,
    /// The event date is before the date of birth.
    #[error("event date is before the date of birth")]
    NegativeAge,
    /// Not a UK postcode.
    #[error("not a UK postcode (e.g. `SW1A 1AA`)")]
    MalformedPostcode,
    /// Not a US ZIP code.
    #[error("not a US ZIP code (5 digits, or ZIP+4)")]
    MalformedZip,
    /// Not a number.
    #[error("not a number")]
    NotANumber,
    /// A value missing from the `map` rule's table, and the rule has no default.
    #[error("value not in the map rule's table and the rule has no default")]
    Unmapped,
    /// The person column of the row is null, so no per-person date shift exists.
    #[error("the row's person pseudonym is null, so no date shift can be computed")]
    NoPerson,
}

/// Errors applying a rule to a whole column (as opposed to one value).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// The rule does not apply to this Arrow type.
    #[error("rule `{rule}` does not apply to a column of type {data_type}; {hint}")]
    UnsupportedType {
        /// Rule name.
        rule: &'static str,
        /// The column's Arrow type.
        data_type: arrow_schema::DataType,
        /// What types the rule takes.
        hint: &'static str,
    },
    /// The arrays given to a rule have different lengths.
    #[error("rule `{rule}`: columns have different lengths ({left} and {right})")]
    LengthMismatch {
        /// Rule name.
        rule: &'static str,
        /// One length.
        left: usize,
        /// The other.
        right: usize,
    },
    /// A rule parameter is out of range.
    #[error("rule `{rule}`: {message}")]
    BadParameter {
        /// Rule name.
        rule: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// Arrow refused to build the output array.
    #[error("rule `{rule}`: building the output column failed: {source}")]
    Arrow {
        /// Rule name.
        rule: &'static str,
        /// Arrow's error.
        #[source]
        source: arrow_schema::ArrowError,
    },
}
