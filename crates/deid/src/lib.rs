//! # dhub-deid: the de-identification core
//!
//! Keys, keyed pseudonyms and column rules over Arrow arrays, exactly as
//! `DESIGN.md` ("Pseudonyms and keys", "Column rules") defines them. Pure: no network,
//! no async, no data I/O. The one file this crate touches is the master key file
//! itself ([`MasterKey::load`], [`MasterKey::save_new`]), so the custody rules (mode
//! 0600, never overwritten) are enforced in one place.
//!
//! ```
//! use arrow_array::{StringArray, cast::AsArray};
//! use dhub_deid::{IdFormat, MasterKey, Pseudonymiser};
//!
//! let key = MasterKey::from_bytes([42u8; 32]);
//! let person = Pseudonymiser::new(&key, "person")?;
//! let ids = StringArray::from(vec![Some("943 476 5919"), None, Some("not a number")]);
//! let out = person.pseudonymise(&ids, IdFormat::NhsNumber)?;
//! assert_eq!(out.array.as_string::<i32>().value(0).len(), 32);
//! assert!(out.array.is_null(1));
//! // the invalid NHS number is reported (row 2), never passed through
//! assert_eq!(out.failures[0].row, 2);
//! assert!(out.array.is_null(2));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Nothing in this crate formats a key byte or an input value into a `Debug`,
//! `Display` or error message.

pub mod error;
pub mod geo;
mod key;
mod keyfile;
pub mod nhs;
mod pseudonym;
pub mod rules;
pub mod temporal;

pub use error::{KeyError, Reason, RuleError};
pub use key::{DomainKey, HKDF_SALT, KEY_ID_MESSAGE, KEY_LEN, KeyId, MasterKey};
pub use keyfile::{check_secret_file_mode, write_secret_file};
pub use pseudonym::{
    IdFormat, MemoResult, PSEUDONYM_LEN, Pseudonymiser, normalise_id, validate_name,
};
pub use rules::{RowFailure, RuleOutput};
pub use temporal::DateShifter;
