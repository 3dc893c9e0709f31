//! The options that take one of a fixed set of words, as clap `ValueEnum`s: `--help`
//! lists the choices (with what each means) and clap refuses any other word before a
//! command runs (exit code 2). Each converts to the library's own enum here, so no
//! library crate depends on clap.
//!
//! | option | here | library |
//! | --- | --- | --- |
//! | `project create --mode` | [`ModeChoice`] | [`dhub_govern::Mode`] |
//! | `project create --suppression` | [`SuppressionChoice`] | [`dhub_govern::Suppression`] |
//! | `project create --sdc-preset` | [`SdcPreset`] | (fills a [`dhub_govern::OutputPolicy`]) |
//! | `serve --worker-sandbox` | [`SandboxChoice`] | [`dhub_query::sandbox::SandboxMode`] |
//! | `pseudonym --format` | [`IdFormatChoice`] | [`dhub_deid::IdFormat`] |
//! | `synth --format` | [`SynthFormatChoice`] | [`dhub_synth::Format`] |

use std::ffi::OsStr;
use std::marker::PhantomData;

use clap::ValueEnum;
use clap::builder::{PossibleValue, TypedValueParser};
use dhub_govern::{Mode, OutputPolicy, Suppression};

/// `dhub project create --mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeChoice {
    /// Results under disclosure control.
    Aggregate,
    /// Row-level results; needs --approved-by and --reason.
    Record,
}

impl From<ModeChoice> for Mode {
    fn from(m: ModeChoice) -> Self {
        match m {
            ModeChoice::Aggregate => Mode::Aggregate,
            ModeChoice::Record => Mode::Record,
        }
    }
}

/// `dhub project create --suppression`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SuppressionChoice {
    /// A group below the minimum cell is removed (the default).
    Remove,
    /// It is kept with its values nulled and flagged in a `dhub_suppressed` column.
    Null,
}

impl From<SuppressionChoice> for Suppression {
    fn from(s: SuppressionChoice) -> Self {
        match s {
            SuppressionChoice::Remove => Suppression::Remove,
            SuppressionChoice::Null => Suppression::Null,
        }
    }
}

/// `dhub project create --sdc-preset`: a starting output policy (explicit flags win).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SdcPreset {
    /// ACRO/UK LLC: min cell 10, no rounding, dominance 2/0.90, p-ratio 0.10.
    UkTre,
    /// Counts of 7 or fewer redacted (nulled and flagged), rounding to 5, no dominance
    /// or p-ratio rule.
    Opensafely,
}

impl SdcPreset {
    /// Sets the preset's rules on `p`.
    pub fn apply(self, p: &mut OutputPolicy) {
        match self {
            SdcPreset::UkTre => {
                p.min_cell = 10;
                p.rounding = 0;
                p.dominance_n = 2;
                p.dominance_k = 0.90;
                p.p_ratio = 0.10;
            }
            SdcPreset::Opensafely => {
                p.min_cell = 8;
                p.suppression = Suppression::Null;
                p.rounding = 5;
                p.dominance_k = 1.0;
                p.p_ratio = 0.0;
            }
        }
    }
}

/// `dhub serve --worker-sandbox`: the Landlock sandbox of the query workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SandboxChoice {
    /// Landlock where the kernel supports it.
    Auto,
    /// Refuse to start without Landlock.
    Required,
    /// No Landlock (the cleared environment, death with the server and the CPU limit
    /// stay).
    Off,
}

impl From<SandboxChoice> for dhub_query::sandbox::SandboxMode {
    fn from(s: SandboxChoice) -> Self {
        use dhub_query::sandbox::SandboxMode;
        match s {
            SandboxChoice::Auto => SandboxMode::Auto,
            SandboxChoice::Required => SandboxMode::Required,
            SandboxChoice::Off => SandboxMode::Off,
        }
    }
}

/// `dhub pseudonym --format`: how values are normalised before hashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IdFormatChoice {
    /// Trim.
    Text,
    /// Trim, lower-case, checked.
    Uuid,
    /// Trim, drop spaces and hyphens, modulus 11.
    #[value(alias = "nhs_number", alias = "nhs")]
    NhsNumber,
}

impl From<IdFormatChoice> for dhub_deid::IdFormat {
    fn from(f: IdFormatChoice) -> Self {
        use dhub_deid::IdFormat;
        match f {
            IdFormatChoice::Text => IdFormat::Text,
            IdFormatChoice::Uuid => IdFormat::Uuid,
            IdFormatChoice::NhsNumber => IdFormat::NhsNumber,
        }
    }
}

impl IdFormatChoice {
    /// The parser of `--format`: clap's choices, refused with `dhub-deid`'s message.
    pub fn parser() -> Choices<Self> {
        Choices::refusing_with(|s| {
            s.parse::<dhub_deid::IdFormat>()
                .err()
                .unwrap_or_else(|| format!("`{s}` is not an identifier format"))
        })
    }
}

/// `dhub synth --format` (any letter case, as before).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SynthFormatChoice {
    /// Synthea v3 CSV, 18 tables.
    Synthea,
    /// UK shared care record, 6 tables.
    Uk,
}

impl From<SynthFormatChoice> for dhub_synth::Format {
    fn from(f: SynthFormatChoice) -> Self {
        match f {
            SynthFormatChoice::Synthea => dhub_synth::Format::Synthea,
            SynthFormatChoice::Uk => dhub_synth::Format::Uk,
        }
    }
}

/// A value parser for a [`ValueEnum`] that lists its choices in `--help` as clap's own
/// does, but refuses any other word with a message of ours (the library's, which users
/// and tests know) instead of clap's generic one.
#[derive(Debug, Clone)]
pub struct Choices<E> {
    refuse: fn(&str) -> String,
    choice: PhantomData<fn() -> E>,
}

impl<E> Choices<E> {
    /// Refuses an unknown word with `refuse(word)`.
    pub fn refusing_with(refuse: fn(&str) -> String) -> Self {
        Self {
            refuse,
            choice: PhantomData,
        }
    }
}

impl<E: ValueEnum + Clone + Send + Sync + 'static> TypedValueParser for Choices<E> {
    type Value = E;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<E, clap::Error> {
        let refuse = self.refuse;
        // clap's parser for a function reports its error as an invalid value of `arg`
        let parse = move |s: &str| <E as ValueEnum>::from_str(s, false).map_err(|_| refuse(s));
        parse.parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            E::value_variants()
                .iter()
                .filter_map(ValueEnum::to_possible_value),
        ))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct T {
        #[arg(long, value_parser = IdFormatChoice::parser(), default_value = "text")]
        format: IdFormatChoice,
    }

    #[test]
    fn choices_take_the_aliases_and_refuse_with_the_library_message() {
        for (word, f) in [
            ("text", IdFormatChoice::Text),
            ("uuid", IdFormatChoice::Uuid),
            ("nhs-number", IdFormatChoice::NhsNumber),
            ("nhs_number", IdFormatChoice::NhsNumber),
            ("nhs", IdFormatChoice::NhsNumber),
        ] {
            let t = T::try_parse_from(["t", "--format", word]).map_err(|e| e.to_string());
            assert_eq!(t.map(|t| t.format), Ok(f), "{word}");
        }
        let e = T::try_parse_from(["t", "--format", "md5"])
            .map(|_| ())
            .unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(e.to_string().contains("text, uuid or nhs_number"), "{e}");
        let help = T::try_parse_from(["t", "--help"])
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(help.contains("nhs-number"), "{help}");
    }

    #[test]
    fn every_choice_converts_to_the_library_word_it_replaces() {
        for c in ModeChoice::value_variants() {
            let name = c.to_possible_value().map(|v| v.get_name().to_owned());
            assert_eq!(name, Some(Mode::from(*c).to_string()));
        }
        for c in SuppressionChoice::value_variants() {
            let name = c.to_possible_value().map(|v| v.get_name().to_owned());
            assert_eq!(name, Some(Suppression::from(*c).to_string()));
        }
        for c in SynthFormatChoice::value_variants() {
            let name = c.to_possible_value().map(|v| v.get_name().to_owned());
            assert_eq!(name, Some(dhub_synth::Format::from(*c).to_string()));
        }
        for c in SandboxChoice::value_variants() {
            let name = c.to_possible_value().map(|v| v.get_name().to_owned());
            let m = dhub_query::sandbox::SandboxMode::from(*c);
            assert_eq!(name.as_deref().map(str::parse), Some(Ok(m)));
        }
        for c in IdFormatChoice::value_variants() {
            let name = c.to_possible_value().map(|v| v.get_name().to_owned());
            let f = dhub_deid::IdFormat::from(*c);
            assert_eq!(name.as_deref().map(str::parse), Some(Ok(f)));
        }
    }
}
