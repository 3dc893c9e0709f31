//! # dhub-deid: the privacy vocabulary
//!
//! Keys, keyed pseudonyms and every column rule over Arrow arrays, exactly as
//! `DESIGN.md` ("Pseudonyms and keys", "Column rules") defines them. Pure: no network,
//! no async, no data I/O. The one file this crate touches is the master key file
//! itself ([`MasterKey::load`], [`MasterKey::save_new`]), so the custody rules (mode
//! 0600, never overwritten) are enforced in one place.
//!
//! A privacy reviewer can read this crate alone: every keyed construction and every
//! rule the hub applies to data lives here, and the other crates only choose which
//! rule runs on which column (`dhub-ingest` parses pipeline specs into [`Rule`]s;
//! `dhub-extract` re-keys with [`Pseudonymiser::for_project`]).
//!
//! ## Keys and keyed constructions
//!
//! | construction | definition | module |
//! | --- | --- | --- |
//! | master key | 32 random bytes, in a mode-0600 file ([`MasterKey`]) | `key`, `keyfile` |
//! | key id | first 8 bytes, hex, of `HMAC-SHA256(master, "dhub key id")` ([`MasterKey::key_id`], label [`Domain::KEY_ID_LABEL`]) | `key` |
//! | domain key | `K(domain) = HKDF-SHA256(salt = "dhub-v1", ikm = master, info = domain)` ([`MasterKey::domain_key`]); infallible by construction | `key` |
//! | domains | the closed set [`Domain`]: `pseudonym:<entity>`, `date-shift`, `project:<id>` | [`domain`] |
//! | research pseudonym | first 16 bytes, hex, of `HMAC-SHA256(K("pseudonym:<entity>"), normalised id)` ([`Pseudonymiser::new`], [`IdFormat`] normalisation) | `pseudonym`, [`nhs`] |
//! | memoised pseudonyms | the same values, each distinct raw value hashed once per column ([`CachedPseudonymiser`]) | `memo` |
//! | date shift | `HMAC-SHA256(K("date-shift"), person pseudonym)`: first 8 bytes big-endian `v`, shift = `v mod (2·range + 1) − range` days ([`DateShifter`]) | [`shift`] |
//! | project pseudonym | first 16 bytes, hex, of `HMAC-SHA256(K("project:<id>"), research pseudonym)` ([`Pseudonymiser::for_project`]) | `pseudonym` |
//! | project key id | first 8 bytes, hex, of `HMAC-SHA256(K("project:<id>"), "dhub key id")` ([`project_key_id`], [`DomainKey::key_id`]) | `key` |
//! | random identifiers and hex | query, run and extract ids, token bytes: the system's secure generator ([`random_id`], [`random_bytes`]); lowercase hex ([`hex`]), the one encoder of the workspace | [`ids`] |
//!
//! ## Column rules
//!
//! [`Rule`] is the vocabulary; [`Rule::apply`] runs one over an Arrow column and
//! returns the new column with the rows it could not handle ([`RuleOutput`]; a failed
//! row is null and carries a [`Reason`], never the value).
//!
//! | rule | what it does | module |
//! | --- | --- | --- |
//! | `keep` | the value, converted to the declared type ([`rules::convert`], [`rules::keep::TypedCol`]) | [`rules::keep`] |
//! | `drop` | no output column | [`rules`] |
//! | `pseudonymise` | research pseudonym of the entity (above) | `pseudonym`, `memo` |
//! | `date_shift` | the person's date shift ([`temporal::date_shift`]) | [`temporal`], [`shift`] |
//! | `truncate_date` | first day of the year or month, after an optional floor ([`temporal::truncate_date_floored`]) | [`temporal`] |
//! | `age_band` | `"40-44"`, `"90+"` at an event date ([`temporal::age_band`]) | [`temporal`] |
//! | `generalise_postcode` | UK outward code or sector ([`geo::generalise_postcode`]) | [`geo`] |
//! | `zip3` | first three ZIP digits, HIPAA restricted prefixes `000` ([`geo::zip3`]) | [`geo`] |
//! | `round` | nearest multiple of a base ([`rules::round`]) | [`rules`] |
//! | `top_code` | values above a maximum become the maximum ([`rules::top_code`]) | [`rules`] |
//! | `redact` | null of the declared type | [`rules`] |
//! | `map` | lookup table with an optional default ([`rules::map`]) | [`rules`] |
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

pub mod domain;
pub mod error;
pub mod geo;
pub mod ids;
mod key;
mod keyfile;
mod memo;
pub mod nhs;
mod pseudonym;
pub mod rules;
pub mod shift;
pub mod temporal;

pub use domain::{Domain, validate_name};
pub use error::{KeyError, Reason, RuleError};
pub use ids::{hex, random_bytes, random_id, unhex};
pub use key::{DomainKey, HKDF_SALT, KEY_LEN, KeyId, MasterKey, project_key_id};
pub use keyfile::{check_secret_file_mode, write_secret_file};
pub use memo::CachedPseudonymiser;
pub use pseudonym::{IdFormat, MemoResult, PSEUDONYM_LEN, Pseudonymiser, normalise_id};
pub use rules::{OutType, RULES, RowFailure, Rule, RuleInputs, RuleOutput};
pub use shift::DateShifter;
