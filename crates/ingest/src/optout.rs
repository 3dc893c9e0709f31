//! The national data opt-out: a list of NHS numbers or source person ids, one per line.
//! Every row of those people is removed from every table, counted, and written nowhere
//! (not even to the quarantine).

use std::collections::HashSet;
use std::path::Path;

use dhub_deid::{IdFormat, Pseudonymiser};

use crate::error::IngestError;

/// The opted-out people, as person pseudonyms (the list itself is not kept).
#[derive(Debug, Default)]
pub struct OptOuts {
    pseudonyms: HashSet<[u8; 32]>,
}

impl OptOuts {
    /// Reads the list at `path`, normalising each line as `format`. Blank lines and
    /// lines starting with `#` are skipped, and so is a first line that is a column
    /// name (e.g. `nhs_number`). Any other line that does not normalise is an error
    /// naming its line number: an opt-out list is never applied partially.
    pub fn load(
        path: &Path,
        format: IdFormat,
        person: &Pseudonymiser,
    ) -> Result<Self, IngestError> {
        let err = |message: String| IngestError::OptOut {
            path: path.to_owned(),
            message,
        };
        let text = std::fs::read(path).map_err(|e| err(format!("cannot read it: {e}")))?;
        let text = std::str::from_utf8(&text).map_err(|_| err("it is not UTF-8 text".into()))?;
        let mut pseudonyms = HashSet::new();
        let mut seen_data = false;
        for (i, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            match person.pseudonym(l, format) {
                Ok(Some(p)) => {
                    let mut k = [0u8; 32];
                    k.copy_from_slice(p.as_bytes());
                    pseudonyms.insert(k);
                    seen_data = true;
                }
                Ok(None) => {}
                Err(_) if !seen_data && l.chars().all(|c| c.is_ascii_alphabetic() || c == '_') => {}
                Err(reason) => {
                    return Err(err(format!(
                        "line {}: {reason}; fix or remove that line (no opt-out was applied)",
                        i + 1
                    )));
                }
            }
        }
        Ok(Self { pseudonyms })
    }

    /// Number of distinct people.
    pub fn len(&self) -> usize {
        self.pseudonyms.len()
    }

    /// True when nobody opted out.
    pub fn is_empty(&self) -> bool {
        self.pseudonyms.is_empty()
    }

    /// Whether the person with this pseudonym opted out.
    pub fn contains(&self, pseudonym: &str) -> bool {
        let b = pseudonym.as_bytes();
        b.len() == 32 && {
            let mut k = [0u8; 32];
            k.copy_from_slice(b);
            self.pseudonyms.contains(&k)
        }
    }
}
