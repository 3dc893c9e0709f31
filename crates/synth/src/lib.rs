//! dhub synthetic data: Synthea-v3-shaped and UK shared-care-record CSV
//! extracts at any scale, deterministic, with injected defects.
//!
//! [`generate`] writes one data set into an empty directory, patient by
//! patient: every table is streamed through its own buffered writer, so
//! memory does not grow with the number of patients. The same
//! [`SynthConfig`] (format, patients, seed, defects, gzip) always produces
//! byte-identical files; another seed produces other people. The crate has
//! its own pseudo-random generator (SplitMix64 seeding xoshiro256**), and
//! each patient's stream is derived from `(seed, patient index)`.
//!
//! No value is copied from a real data set: names come from an invented
//! syllable grammar, identifiers from the generator, and codes from public
//! terminologies (SNOMED CT, LOINC, RxNorm, CVX, ICD-10, OPCS-4, dm+d).
//!
//! # Common rules
//!
//! * CSV with a header line, `,` separators and `\n` line ends, UTF-8. A
//!   field is quoted only when it contains a comma or a quote (quotes are
//!   doubled). No record ever spans lines.
//! * Dates are `YYYY-MM-DD`, date-times `YYYY-MM-DDTHH:MM:SSZ` (UTC). Nothing
//!   happens before a person's birth, after their death, or after
//!   2025-01-01T00:00:00Z.
//! * With `gzip`, every table is written as `name.csv.gz` (the defects file
//!   `_defects.csv` stays plain).
//!
//! # Synthea format (`--format synthea`)
//!
//! The 18 tables of a Synthea v3 CSV export with exactly its file names,
//! headers and column order: `allergies`, `careplans`, `claims`,
//! `claims_transactions`, `conditions`, `devices`, `encounters`,
//! `imaging_studies`, `immunizations`, `medications`, `observations`,
//! `organizations`, `patients`, `payer_transitions`, `payers`, `procedures`,
//! `providers`, `supplies`. Values follow Synthea's shapes: lowercase UUIDs,
//! names with digits (`Calinella415`), some accented names, SSNs
//! `999-0G-SSSS` (group 00 to 09, which Synthea never writes, unique for the
//! first 100,000 patients), driver (`S999…`) and passport (`X…X`) numbers,
//! Massachusetts addresses, ZIP codes (some empty) and coordinates,
//! SNOMED CT/LOINC/RxNorm/CVX codes with matching descriptions (commas
//! written as double spaces, as Synthea does), costs, claims with their
//! charge, payment and transfer transactions, yearly payer transitions with
//! owner names, device UDIs and DICOM UIDs. Every `PATIENT`/`PATIENTID`,
//! `ENCOUNTER`/`APPOINTMENTID`, `PROVIDER`, `ORGANIZATION`/`PLACEOFSERVICE`,
//! `PAYER` and `CLAIMID` exists in its table (an uninsured claim's
//! `PRIMARYPATIENTINSURANCEID` is `0`, as in Synthea). Organisations,
//! providers and payers are generated first, sized from the patient count,
//! and written last so that their utilisation and money columns add up.
//!
//! # UK shared-care-record format (`--format uk`)
//!
//! Six tables. People are identified by their NHS number: ten digits with a
//! valid modulus-11 check digit, unique per person, all beginning with `99`
//! (the first 900,000 people get numbers in the `999` range that NHS England
//! reserves for testing). `person.csv` writes it without spaces; the event
//! tables write about one in ten with spaces (`999 123 4567`), as real
//! feeds do. GP practice codes are shaped like ODS codes (`B86012`: the
//! region's letter and area digits, then a sequence number) and hospital
//! providers like trust codes (`RX7`; Welsh health boards `7A3`). Regions
//! cover England and Wales.
//!
//! **`person.csv`** — one row per person.
//!
//! | column | content |
//! | --- | --- |
//! | `nhs_number` | 10 digits, valid modulus 11 |
//! | `given_name` | given name (invented; some accented) |
//! | `family_name` | family name (invented; some double-barrelled or with `O'`) |
//! | `date_of_birth` | date |
//! | `sex` | `M` or `F` |
//! | `ethnic_category` | NHS ethnic category code, `A` to `S`, `Z` = not stated |
//! | `postcode` | full UK postcode with a real outward code, e.g. `LS6 2QB` |
//! | `gp_practice_code` | ODS code of the registered GP practice |
//! | `date_of_death` | date, empty while alive |
//!
//! **`gp_event.csv`** — coded primary-care entries.
//!
//! | column | content |
//! | --- | --- |
//! | `event_id` | unique integer |
//! | `nhs_number` | the person |
//! | `gp_practice_code` | practice that recorded it |
//! | `event_date` | date of the event |
//! | `recorded_at` | date-time of entry into the record |
//! | `snomed_code` | SNOMED CT concept id (diagnoses, findings, observables, procedures) |
//! | `description` | its term |
//! | `value` | numeric result for measurements, else empty |
//! | `unit` | unit of `value` (`mmHg`, `kg`, `mmol/mol`, …), else empty |
//!
//! **`hospital_episode.csv`** — admitted patient care episodes.
//!
//! | column | content |
//! | --- | --- |
//! | `episode_id` | unique integer |
//! | `nhs_number` | the person |
//! | `provider_code` | ODS code of the trust |
//! | `admission_date`, `discharge_date` | dates (discharge on or after admission) |
//! | `admission_method` | HES admission method (`11` elective waiting list, `13` planned, `21` emergency via A&E, `22` emergency via GP, `31` maternity) |
//! | `treatment_function_code` | e.g. `100` general surgery, `320` cardiology |
//! | `primary_diagnosis` | ICD-10 code, e.g. `I21.9` |
//! | `primary_diagnosis_description` | its description (may contain commas, then quoted) |
//! | `secondary_diagnosis` | ICD-10 code of a long-term condition, or empty |
//! | `primary_procedure` | OPCS-4 code, e.g. `W37.1`, or empty |
//! | `primary_procedure_description` | its description, or empty |
//! | `procedure_date` | date within the stay, or empty |
//!
//! **`prescription.csv`** — issued prescriptions (repeat and acute).
//!
//! | column | content |
//! | --- | --- |
//! | `prescription_id` | unique integer |
//! | `nhs_number` | the person |
//! | `gp_practice_code` | prescribing practice |
//! | `issue_date` | date |
//! | `dmd_code` | dm+d product id (numeric) |
//! | `medication_name` | dm+d name, e.g. `Amlodipine 5mg tablets` |
//! | `quantity` | integer |
//! | `quantity_unit` | `tablet`, `capsule` or `dose` |
//!
//! **`social_care_contact.csv`** — adult social care contacts.
//!
//! | column | content |
//! | --- | --- |
//! | `contact_id` | unique integer |
//! | `nhs_number` | the person |
//! | `local_authority_code` | ONS code of the council, e.g. `E08000035` |
//! | `contact_date` | date |
//! | `contact_type` | `Request for support`, `Assessment`, `Review`, `Service start`, `Service end` |
//! | `service_type` | e.g. `Home care`, `Reablement`, `Residential care` |
//! | `primary_support_reason` | e.g. `Physical support: personal care support` |
//!
//! **`opt_out.csv`** — column `nhs_number`: the people (about 3.5 %) who
//! registered a national data opt-out, without spaces.
//!
//! # Defects
//!
//! With `defects > 0` each data row is, with that probability, replaced by a
//! defective version of itself (row counts do not change; the header is never
//! touched; one defect per row), and `_defects.csv` (header `file,line,kind`)
//! lists the file name as written (`encounters.csv` or `encounters.csv.gz`),
//! the 1-based physical line number (the header is line 1) and the kind:
//!
//! * `wrong_column_count`: a trailing extra field, a missing last field, or
//!   two fields joined by a `;`;
//! * `unparseable_date`: a non-empty date or date-time replaced by e.g.
//!   `2019-13-45`, `31/02/2019`, `not-a-date`, `2019-02-30T25:61:00Z`;
//! * `invalid_nhs_number` (UK only, in any `nhs_number` column): wrong check
//!   digit, nine digits or eleven digits;
//! * `invalid_utf8`: bytes such as `0xC3 0x28` or `0xFF` inside a text field;
//! * `unterminated_quote`: a field opens a quote that the line never closes.
//!
//! With `defects == 0`, `_defects.csv` holds only its header. Referential
//! integrity is only promised without defects.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Instant;

mod codes;
mod names;
mod rng;
mod synthea;
mod table;
mod time;
mod uk;
mod ukcodes;

/// The output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Synthea v3 CSV (18 tables).
    Synthea,
    /// UK shared-care record (6 tables).
    Uk,
}

impl FromStr for Format {
    type Err = SynthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "synthea" => Ok(Format::Synthea),
            "uk" => Ok(Format::Uk),
            _ => Err(SynthError::UnknownFormat(s.to_string())),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Synthea => "synthea",
            Format::Uk => "uk",
        })
    }
}

/// What to generate and where.
#[derive(Debug, Clone)]
pub struct SynthConfig {
    pub format: Format,
    /// Number of patients (people).
    pub patients: u64,
    pub seed: u64,
    /// Output directory: created if missing, must be empty if it exists.
    pub out: PathBuf,
    /// Share of data rows replaced by defective ones, in `[0, 0.5]`.
    pub defects: f64,
    /// Write `name.csv.gz` instead of `name.csv`.
    pub gzip: bool,
}

/// One written table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// File name as written (`patients.csv` or `patients.csv.gz`).
    pub name: String,
    /// Data rows, header excluded.
    pub rows: u64,
    /// Bytes on disk (compressed when gzip).
    pub bytes: u64,
}

/// The outcome of [`generate`].
#[derive(Debug, Clone)]
pub struct SynthReport {
    /// The data tables, in file-name order (`_defects.csv` is not listed).
    pub files: Vec<FileReport>,
    pub patients: u64,
    /// Rows listed in `_defects.csv`.
    pub defects: u64,
    pub seconds: f64,
}

/// Why generation failed, and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("unknown format {0:?}: use `synthea` or `uk`")]
    UnknownFormat(String),
    #[error(
        "defect rate {0} is out of range: use a number from 0 to 0.5 (e.g. 0.02 for 2 % of rows)"
    )]
    DefectRate(f64),
    #[error("output directory {} is not empty: choose a new or empty directory (existing files are never overwritten)", .0.display())]
    OutputNotEmpty(PathBuf),
    #[error("output path {} exists and is not a directory: choose a directory path", .0.display())]
    OutputNotDirectory(PathBuf),
    #[error("cannot create or read output directory {}: {source}; check the path and its permissions", .path.display())]
    OutputDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}; check free disk space and permissions", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Support for this crate's integration tests; not part of the API.
#[doc(hidden)]
pub mod testing {
    /// `(FIRST, LAST, SSN)` of the first `patients` Synthea-format patients
    /// for `seed`, computed by the generator's own code without writing the
    /// tables (so that large samples stay cheap in tests).
    pub fn synthea_identities(seed: u64, patients: u64) -> Vec<(String, String, String)> {
        crate::synthea::identities(seed, patients)
    }
}

/// How often (in patients) `progress` is called.
pub(crate) const PROGRESS_EVERY: u64 = 4096;

/// Generates a data set. `progress(n)` is called with the number of patients
/// completed so far, every few thousand patients and once at the end.
pub fn generate(cfg: &SynthConfig, progress: &dyn Fn(u64)) -> Result<SynthReport, SynthError> {
    if !(0.0..=0.5).contains(&cfg.defects) {
        return Err(SynthError::DefectRate(cfg.defects));
    }
    prepare_dir(&cfg.out)?;
    let started = Instant::now();
    let (files, defects) = match cfg.format {
        Format::Synthea => synthea::run(cfg, progress)?,
        Format::Uk => uk::run(cfg, progress)?,
    };
    Ok(SynthReport {
        files,
        patients: cfg.patients,
        defects,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn prepare_dir(dir: &std::path::Path) -> Result<(), SynthError> {
    let io = |source| SynthError::OutputDir {
        path: dir.to_path_buf(),
        source,
    };
    match std::fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => Err(SynthError::OutputNotDirectory(dir.to_path_buf())),
        Ok(_) => {
            let mut entries = std::fs::read_dir(dir).map_err(io)?;
            if entries.next().is_some() {
                Err(SynthError::OutputNotEmpty(dir.to_path_buf()))
            } else {
                Ok(())
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(io)
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_parses_and_displays() {
        assert_eq!("synthea".parse::<Format>().ok(), Some(Format::Synthea));
        assert_eq!("UK".parse::<Format>().ok(), Some(Format::Uk));
        assert!("fhir".parse::<Format>().is_err());
        assert_eq!(Format::Uk.to_string(), "uk");
        assert_eq!(Format::Synthea.to_string(), "synthea");
    }

    #[test]
    fn rejects_bad_rates_and_non_empty_dirs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = SynthConfig {
            format: Format::Uk,
            patients: 1,
            seed: 1,
            out: dir.path().to_path_buf(),
            defects: 0.7,
            gzip: false,
        };
        let e = generate(&cfg, &|_| {}).expect_err("rate");
        assert!(e.to_string().contains("0.7"), "{e}");
        cfg.defects = f64::NAN;
        assert!(generate(&cfg, &|_| {}).is_err());
        cfg.defects = 0.0;
        std::fs::write(dir.path().join("x"), b"x").expect("write");
        let e = generate(&cfg, &|_| {}).expect_err("not empty");
        assert!(
            e.to_string().contains(&dir.path().display().to_string()),
            "{e}"
        );
    }
}
