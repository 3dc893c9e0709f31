//! Pipeline specs: parsing, validation against the sources' columns, and the compiled
//! form the ingest runs. See the crate docs for the format, field by field.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use dhub_deid::IdFormat;
use dhub_deid::geo::PostcodeLevel;
use dhub_deid::temporal::{DateUnit, TextDates, TruncateOutput};
use serde::Deserialize;
use toml::Spanned;

use crate::error::SpecError;

/// The spec format version this build reads.
pub const SPEC_VERSION: u32 = 1;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    version: Spanned<u32>,
    name: Spanned<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    max_reject_rate: Option<Spanned<f64>>,
    #[serde(default)]
    date_shift_days: Option<Spanned<u32>>,
    #[serde(default)]
    batch_rows: Option<Spanned<usize>>,
    #[serde(default)]
    opt_out: Option<Spanned<RawOptOut>>,
    tables: Spanned<BTreeMap<Spanned<String>, Spanned<RawTable>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOptOut {
    #[serde(default)]
    entity: Option<String>,
    format: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    source: Spanned<String>,
    #[serde(default)]
    format: Option<Spanned<String>>,
    #[serde(default)]
    delimiter: Option<Spanned<String>>,
    #[serde(default)]
    quote: Option<Spanned<String>>,
    #[serde(default)]
    header: Option<bool>,
    #[serde(default)]
    gzip: Option<bool>,
    #[serde(default)]
    multiline: Option<bool>,
    #[serde(default)]
    person: Option<Spanned<String>>,
    #[serde(default)]
    mode: Option<Spanned<String>>,
    #[serde(default)]
    max_reject_rate: Option<Spanned<f64>>,
    columns: Spanned<BTreeMap<Spanned<String>, Spanned<RawColumn>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumn {
    rule: Spanned<String>,
    #[serde(default)]
    name: Option<Spanned<String>>,
    #[serde(default, rename = "type")]
    ty: Option<Spanned<String>>,
    #[serde(default)]
    entity: Option<Spanned<String>>,
    #[serde(default)]
    format: Option<Spanned<String>>,
    #[serde(default)]
    unit: Option<Spanned<String>>,
    #[serde(default)]
    output: Option<Spanned<String>>,
    #[serde(default)]
    at: Option<Spanned<String>>,
    #[serde(default)]
    at_date: Option<Spanned<String>>,
    #[serde(default)]
    floor: Option<Spanned<String>>,
    #[serde(default)]
    redact_when: Option<Spanned<BTreeMap<String, Vec<String>>>>,
    #[serde(default)]
    width: Option<Spanned<u32>>,
    #[serde(default)]
    top: Option<Spanned<u32>>,
    #[serde(default)]
    level: Option<Spanned<String>>,
    #[serde(default)]
    base: Option<Spanned<f64>>,
    #[serde(default)]
    max: Option<Spanned<f64>>,
    #[serde(default)]
    values: Option<Spanned<BTreeMap<String, String>>>,
    #[serde(default)]
    default: Option<Spanned<String>>,
}

/// The rule vocabulary lives in `dhub-deid`; specs name it.
pub use dhub_deid::rules::{OutType, RULES, Rule};

/// One column of a table spec.
#[derive(Debug, Clone)]
pub struct ColumnSpec {
    /// Source column name (as in the header or field name).
    pub source: String,
    /// Output column name (default: the source name in lower case).
    pub output: String,
    /// The rule.
    pub rule: Rule,
    /// Row-conditional redaction: the output is null in rows where source column
    /// `.0` holds one of the values `.1` (e.g. a free-text answer whose question asks for
    /// an address).
    pub redact_when: Vec<(String, Vec<String>)>,
    /// Where in the spec (for errors found later, when the source is opened).
    pub(crate) at: Span,
}

/// Source file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    /// Delimited text.
    Csv,
    /// One JSON object per line.
    Ndjson,
    /// Apache Parquet.
    Parquet,
}

/// How the table's rows replace or extend the table.
pub use dhub_store::WriteMode;

/// One table of a pipeline.
#[derive(Debug, Clone)]
pub struct TableSpec {
    /// Output table name.
    pub name: String,
    /// Source file, relative to `--source`.
    pub source: String,
    /// Source format.
    pub format: SourceFormat,
    /// CSV delimiter.
    pub delimiter: u8,
    /// CSV quote character.
    pub quote: u8,
    /// CSV has a header line (required: rules are by column name).
    pub header: bool,
    /// Source is gzip-compressed.
    pub gzip: bool,
    /// Quoted CSV fields may span lines.
    pub multiline: bool,
    /// Source column identifying the person (pseudonymised with the person entity).
    pub person: Option<String>,
    /// Write mode.
    pub mode: WriteMode,
    /// Largest quarantined share before the run fails.
    pub max_reject_rate: f64,
    /// Column rules, in spec order (by source name).
    pub columns: Vec<ColumnSpec>,
    pub(crate) at: Span,
}

/// A parsed, validated pipeline spec.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// Pipeline name.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// Date-shift range in days, if any rule shifts dates.
    pub date_shift_days: Option<u32>,
    /// Rows per batch.
    pub batch_rows: usize,
    /// Normalisation of `--opt-out` lines (entity is the person entity).
    pub opt_out_format: IdFormat,
    /// The person entity.
    pub person_entity: String,
    /// Tables, by output name.
    pub tables: Vec<TableSpec>,
    /// SHA-256 (hex) of the spec file's bytes.
    pub sha256: String,
    /// Where the spec was read from (for messages).
    pub path: PathBuf,
    text: String,
}

/// A byte range in the spec file.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Span {
    pub start: usize,
}

impl<T> From<&Spanned<T>> for Span {
    fn from(s: &Spanned<T>) -> Self {
        Span {
            start: s.span().start,
        }
    }
}

/// Line and column (1-based) of byte offset `at` in `text`.
pub(crate) fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = &text.as_bytes()[..at];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = at
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    (line, col)
}

struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(&self, at: impl Into<Span>, message: impl Into<String>) -> SpecError {
        let (line, column) = line_col(self.text, at.into().start);
        SpecError {
            file: self.path.to_owned(),
            line,
            column,
            message: message.into(),
        }
    }
}

fn valid_ident(s: &str) -> bool {
    dhub_store::valid_name(s)
}

impl Pipeline {
    /// Reads and validates a spec file.
    pub fn load(path: &Path) -> Result<Self, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|e| SpecError {
            file: path.to_owned(),
            line: 0,
            column: 0,
            message: format!("cannot read the pipeline spec: {e}"),
        })?;
        Self::parse(path, &text)
    }

    /// Parses and validates spec text (`path` is used in messages).
    pub fn parse(path: &Path, text: &str) -> Result<Self, SpecError> {
        let cx = Ctx { path, text };
        let raw: RawSpec = toml::from_str(text).map_err(|e| {
            let at = e.span().map_or(0, |s| s.start);
            cx.err(Span { start: at }, e.message().trim().to_owned())
        })?;
        if *raw.version.get_ref() != SPEC_VERSION {
            return Err(cx.err(
                &raw.version,
                format!(
                    "spec version {} is not supported; this dhub reads version {SPEC_VERSION}",
                    raw.version.get_ref()
                ),
            ));
        }
        let name = raw.name.get_ref().clone();
        if !valid_ident(&name) {
            return Err(cx.err(
                &raw.name,
                "pipeline name must be 1-64 characters of a-z, 0-9, `_`, `-`",
            ));
        }
        let default_reject = match &raw.max_reject_rate {
            Some(r) => check_rate(&cx, r)?,
            None => 0.01,
        };
        let batch_rows = match &raw.batch_rows {
            Some(b) if !(1024..=1_048_576).contains(b.get_ref()) => {
                return Err(cx.err(b, "batch_rows must be between 1024 and 1048576"));
            }
            Some(b) => *b.get_ref(),
            None => 65_536,
        };
        let (opt_out_format, person_entity) = match &raw.opt_out {
            Some(o) => {
                let o = o.get_ref();
                let f = o
                    .format
                    .get_ref()
                    .parse::<IdFormat>()
                    .map_err(|m| cx.err(&o.format, m))?;
                (f, o.entity.clone().unwrap_or_else(|| "person".into()))
            }
            None => (IdFormat::Text, "person".into()),
        };
        let mut tables = Vec::new();
        let mut uses_shift = None;
        if raw.tables.get_ref().is_empty() {
            return Err(cx.err(&raw.tables, "a pipeline needs at least one [tables.NAME]"));
        }
        for (tname, t) in raw.tables.get_ref() {
            let table = compile_table(
                &cx,
                tname,
                t,
                default_reject,
                &person_entity,
                &mut uses_shift,
            )?;
            tables.push(table);
        }
        if let (Some(at), None) = (uses_shift, &raw.date_shift_days) {
            return Err(cx.err(at, "rule `date_shift` needs `date_shift_days = N` at the top of the spec (the largest shift, in days)"));
        }
        if let Some(d) = &raw.date_shift_days
            && !(1..=dhub_deid::DateShifter::MAX_RANGE).contains(d.get_ref())
        {
            return Err(cx.err(
                d,
                format!(
                    "date_shift_days must be between 1 and {}",
                    dhub_deid::DateShifter::MAX_RANGE
                ),
            ));
        }
        use ring::digest;
        let sha256 = dhub_deid::hex(digest::digest(&digest::SHA256, text.as_bytes()).as_ref());
        Ok(Self {
            name,
            description: raw.description,
            date_shift_days: raw.date_shift_days.map(Spanned::into_inner),
            batch_rows,
            opt_out_format,
            person_entity,
            tables,
            sha256,
            path: path.to_owned(),
            text: text.to_owned(),
        })
    }

    /// An error located at a table or column of this spec (used when sources are
    /// opened and their columns compared with the spec).
    pub(crate) fn err_at(&self, at: Span, message: impl Into<String>) -> SpecError {
        Ctx {
            path: &self.path,
            text: &self.text,
        }
        .err(at, message)
    }
}

fn check_rate(cx: &Ctx<'_>, r: &Spanned<f64>) -> Result<f64, SpecError> {
    let v = *r.get_ref();
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(cx.err(r, "max_reject_rate must be between 0 and 1 (0.01 = 1%)"))
    }
}

fn one_char(
    cx: &Ctx<'_>,
    s: &Option<Spanned<String>>,
    default: u8,
    what: &str,
) -> Result<u8, SpecError> {
    match s {
        None => Ok(default),
        Some(v) => {
            let b = v.get_ref().as_bytes();
            if v.get_ref() == "\\t" || v.get_ref() == "\t" {
                return Ok(b'\t');
            }
            if b.len() == 1 && b[0].is_ascii() && b[0] != b'\n' && b[0] != b'\r' {
                Ok(b[0])
            } else {
                Err(cx.err(v, format!("{what} must be one ASCII character")))
            }
        }
    }
}

fn compile_table(
    cx: &Ctx<'_>,
    tname: &Spanned<String>,
    t: &Spanned<RawTable>,
    default_reject: f64,
    person_entity: &str,
    uses_shift: &mut Option<Span>,
) -> Result<TableSpec, SpecError> {
    let name = tname.get_ref().clone();
    if !valid_ident(&name) {
        return Err(cx.err(
            tname,
            format!("table name `{name}` must be 1-64 characters of a-z, 0-9, `_`, `-`"),
        ));
    }
    let r = t.get_ref();
    let source = r.source.get_ref().clone();
    if source.is_empty() || source.starts_with('/') || source.split('/').any(|p| p == "..") {
        return Err(cx.err(
            &r.source,
            "source must be a relative path inside --source (no leading `/`, no `..`)",
        ));
    }
    let lower = source.to_ascii_lowercase();
    let gz = lower.ends_with(".gz");
    let stem = lower.trim_end_matches(".gz");
    let format = match &r.format {
        Some(f) => match f.get_ref().as_str() {
            "csv" => SourceFormat::Csv,
            "ndjson" => SourceFormat::Ndjson,
            "parquet" => SourceFormat::Parquet,
            other => return Err(cx.err(f, format!("unknown source format `{other}`; use csv, ndjson or parquet"))),
        },
        None if stem.ends_with(".csv") || stem.ends_with(".tsv") || stem.ends_with(".txt") => SourceFormat::Csv,
        None if stem.ends_with(".ndjson") || stem.ends_with(".jsonl") || stem.ends_with(".json") => SourceFormat::Ndjson,
        None if stem.ends_with(".parquet") => SourceFormat::Parquet,
        None => return Err(cx.err(&r.source, "cannot tell the source format from the file name; add format = \"csv\" | \"ndjson\" | \"parquet\"")),
    };
    let default_delim = if stem.ends_with(".tsv") { b'\t' } else { b',' };
    let delimiter = one_char(cx, &r.delimiter, default_delim, "delimiter")?;
    let quote = one_char(cx, &r.quote, b'"', "quote")?;
    if r.header == Some(false) {
        return Err(cx.err(t, "header = false is not supported: rules name source columns, so the CSV needs a header line"));
    }
    let mode = match &r.mode {
        None => WriteMode::Overwrite,
        Some(m) => match m.get_ref().as_str() {
            "overwrite" => WriteMode::Overwrite,
            "append" => WriteMode::Append,
            other => {
                return Err(cx.err(
                    m,
                    format!("unknown write mode `{other}`; use overwrite or append"),
                ));
            }
        },
    };
    let max_reject_rate = match &r.max_reject_rate {
        Some(x) => check_rate(cx, x)?,
        None => default_reject,
    };
    let mut columns = Vec::new();
    let mut outputs: HashMap<String, Span> = HashMap::new();
    for (cname, c) in r.columns.get_ref() {
        let col = compile_column(cx, cname, c, uses_shift)?;
        if col.rule != Rule::Drop && outputs.insert(col.output.clone(), col.at).is_some() {
            return Err(cx.err(c, format!("two columns of table `{name}` are written as `{}`; give one a different `name`", col.output)));
        }
        columns.push(col);
    }
    if columns.iter().all(|c| c.rule == Rule::Drop) {
        return Err(cx.err(&r.columns, format!("table `{name}` keeps no column")));
    }
    let person = match &r.person {
        None => None,
        Some(p) => {
            let col = columns
                .iter()
                .find(|c| &c.source == p.get_ref())
                .ok_or_else(|| {
                    cx.err(
                        p,
                        format!(
                            "person column `{}` has no rule in [tables.{name}.columns]",
                            p.get_ref()
                        ),
                    )
                })?;
            match &col.rule {
                Rule::Pseudonymise { entity, .. } if entity == person_entity => {}
                _ => {
                    return Err(cx.err(p, format!(
                        "person column `{}` must have rule = \"pseudonymise\" with entity = \"{person_entity}\"",
                        p.get_ref()
                    )));
                }
            }
            Some(p.get_ref().clone())
        }
    };
    // date_shift and age_band-at-column need things from other columns
    for c in &columns {
        if matches!(c.rule, Rule::DateShift(_)) && person.is_none() {
            return Err(cx.err(c.at, format!("rule `date_shift` on `{}` needs the table's `person` column (the shift is per person)", c.source)));
        }
        if let Rule::AgeBand {
            at_column: Some(a), ..
        } = &c.rule
            && !columns.iter().any(|o| &o.source == a)
        {
            return Err(cx.err(
                c.at,
                format!("age_band `at = \"{a}\"` names a column with no rule in this table"),
            ));
        }
    }
    Ok(TableSpec {
        name,
        source,
        format,
        delimiter,
        quote,
        header: true,
        gzip: r.gzip.unwrap_or(gz),
        multiline: r.multiline.unwrap_or(false),
        person,
        mode,
        max_reject_rate,
        columns,
        at: Span::from(tname),
    })
}

fn compile_column(
    cx: &Ctx<'_>,
    cname: &Spanned<String>,
    c: &Spanned<RawColumn>,
    uses_shift: &mut Option<Span>,
) -> Result<ColumnSpec, SpecError> {
    let r = c.get_ref();
    let rule_name = r.rule.get_ref().as_str();
    // which options each rule takes
    let allowed: &[&str] = match rule_name {
        "keep" | "redact" => &["type"],
        "drop" => &[],
        "pseudonymise" => &["entity", "format"],
        "date_shift" => &["type"],
        "truncate_date" => &["unit", "output", "floor"],
        "age_band" => &["at", "at_date", "width", "top"],
        "generalise_postcode" => &["level"],
        "zip3" => &[],
        "round" => &["base", "type"],
        "top_code" => &["max", "type"],
        "map" => &["values", "default"],
        other => {
            return Err(cx.err(
                &r.rule,
                format!("unknown rule `{other}`; rules are: {RULES}"),
            ));
        }
    };
    let present: [(&str, Option<Span>); 15] = [
        ("type", r.ty.as_ref().map(Span::from)),
        ("entity", r.entity.as_ref().map(Span::from)),
        ("format", r.format.as_ref().map(Span::from)),
        ("unit", r.unit.as_ref().map(Span::from)),
        ("output", r.output.as_ref().map(Span::from)),
        ("at", r.at.as_ref().map(Span::from)),
        ("at_date", r.at_date.as_ref().map(Span::from)),
        ("floor", r.floor.as_ref().map(Span::from)),
        ("width", r.width.as_ref().map(Span::from)),
        ("top", r.top.as_ref().map(Span::from)),
        ("level", r.level.as_ref().map(Span::from)),
        ("base", r.base.as_ref().map(Span::from)),
        ("max", r.max.as_ref().map(Span::from)),
        ("values", r.values.as_ref().map(Span::from)),
        ("default", r.default.as_ref().map(Span::from)),
    ];
    for (opt, at) in present {
        if let Some(at) = at
            && !allowed.contains(&opt)
        {
            return Err(cx.err(
                at,
                format!(
                    "option `{opt}` does not apply to rule `{rule_name}`{}",
                    if allowed.is_empty() {
                        std::string::String::new()
                    } else {
                        format!(" (it takes: {})", allowed.join(", "))
                    }
                ),
            ));
        }
    }
    let ty = |default: OutType, ok: &[OutType]| -> Result<OutType, SpecError> {
        match &r.ty {
            None => Ok(default),
            Some(t) => {
                let v = OutType::parse(t.get_ref()).ok_or_else(|| cx.err(t, format!("unknown type `{}`; use string, int32, int64, float64, boolean, date or timestamp", t.get_ref())))?;
                if ok.contains(&v) {
                    Ok(v)
                } else {
                    Err(cx.err(
                        t,
                        format!("rule `{rule_name}` cannot output type `{}`", t.get_ref()),
                    ))
                }
            }
        }
    };
    use OutType::*;
    let all = [String, Int32, Int64, Float64, Boolean, Date, Timestamp];
    let need = |o: &Option<Spanned<std::string::String>>,
                what: &str|
     -> Result<Spanned<std::string::String>, SpecError> {
        o.clone()
            .ok_or_else(|| cx.err(c, format!("rule `{rule_name}` needs `{what}`")))
    };
    let rule = match rule_name {
        "keep" => Rule::Keep(ty(String, &all)?),
        "redact" => Rule::Redact(ty(String, &all)?),
        "drop" => Rule::Drop,
        "pseudonymise" => {
            let e = need(&r.entity, "entity (person, encounter, provider, …)")?;
            dhub_deid::validate_name("entity", e.get_ref())
                .map_err(|m| cx.err(&e, m.to_string()))?;
            let format = match &r.format {
                None => IdFormat::Text,
                Some(f) => f.get_ref().parse().map_err(|m| cx.err(f, m))?,
            };
            Rule::Pseudonymise {
                entity: e.into_inner(),
                format,
            }
        }
        "date_shift" => {
            uses_shift.get_or_insert(Span::from(c));
            match ty(Date, &[Date, Timestamp])? {
                Timestamp => Rule::DateShift(TextDates::Timestamp),
                _ => Rule::DateShift(TextDates::Date),
            }
        }
        "truncate_date" => {
            let u = need(&r.unit, "unit = \"year\" | \"month\"")?;
            let unit = match u.get_ref().as_str() {
                "year" => DateUnit::Year,
                "month" => DateUnit::Month,
                other => {
                    return Err(cx.err(&u, format!("unknown unit `{other}`; use year or month")));
                }
            };
            let output = match r.output.as_ref().map(|o| (o, o.get_ref().as_str())) {
                None | Some((_, "date")) => TruncateOutput::Date,
                Some((o, "year")) => {
                    if unit != DateUnit::Year {
                        return Err(cx.err(o, "output = \"year\" needs unit = \"year\""));
                    }
                    TruncateOutput::YearNumber
                }
                Some((o, other)) => {
                    return Err(cx.err(o, format!("unknown output `{other}`; use date or year")));
                }
            };
            let floor = match &r.floor {
                None => None,
                Some(d) => match dhub_deid::temporal::parse_temporal(d.get_ref()) {
                    Some(t) => Some(t.days()),
                    None => return Err(cx.err(d, "floor must be a date, YYYY-MM-DD")),
                },
            };
            Rule::TruncateDate(unit, output, floor)
        }
        "age_band" => {
            let at_date = match &r.at_date {
                None => None,
                Some(d) => match dhub_deid::temporal::parse_temporal(d.get_ref()) {
                    Some(t) => Some(t.days()),
                    None => return Err(cx.err(d, "at_date must be a date, YYYY-MM-DD")),
                },
            };
            let at_column = r.at.as_ref().map(|a| a.get_ref().clone());
            if at_column.is_some() == at_date.is_some() {
                return Err(cx.err(c, "rule `age_band` needs exactly one of `at` (the event-date column) or `at_date` (a fixed date)"));
            }
            let width = r.width.as_ref().map_or(5, |w| *w.get_ref());
            if !(1..=100).contains(&width) {
                return Err(cx.err(c, "width must be between 1 and 100 years"));
            }
            Rule::AgeBand {
                at_column,
                at_date,
                width,
                top: r.top.as_ref().map(|t| *t.get_ref()),
            }
        }
        "generalise_postcode" => {
            let l = need(&r.level, "level = \"outward\" | \"sector\"")?;
            Rule::GeneralisePostcode(match l.get_ref().as_str() {
                "outward" => PostcodeLevel::Outward,
                "sector" => PostcodeLevel::Sector,
                other => {
                    return Err(cx.err(
                        &l,
                        format!("unknown level `{other}`; use outward or sector"),
                    ));
                }
            })
        }
        "zip3" => Rule::Zip3,
        "round" => {
            let b = r
                .base
                .as_ref()
                .ok_or_else(|| cx.err(c, "rule `round` needs `base` (e.g. base = 5)"))?;
            if !(b.get_ref().is_finite() && *b.get_ref() > 0.0) {
                return Err(cx.err(b, "base must be a positive number"));
            }
            Rule::Round(*b.get_ref(), ty(Float64, &[Int64, Float64])?)
        }
        "top_code" => {
            let m = r
                .max
                .as_ref()
                .ok_or_else(|| cx.err(c, "rule `top_code` needs `max` (e.g. max = 90)"))?;
            if !m.get_ref().is_finite() {
                return Err(cx.err(m, "max must be a finite number"));
            }
            Rule::TopCode(*m.get_ref(), ty(Float64, &[Int64, Float64])?)
        }
        "map" => {
            let v = r
                .values
                .as_ref()
                .ok_or_else(|| cx.err(c, "rule `map` needs `values = { from = \"to\", … }`"))?;
            Rule::Map(
                v.get_ref()
                    .iter()
                    .map(|(a, b)| (a.clone(), b.clone()))
                    .collect(),
                r.default.as_ref().map(|d| d.get_ref().clone()),
            )
        }
        _ => unreachable_rule(),
    };
    let output = match &r.name {
        Some(n) => {
            if !valid_ident(n.get_ref()) {
                return Err(cx.err(
                    n,
                    "output column names must be 1-64 characters of a-z, 0-9, `_`, `-`",
                ));
            }
            n.get_ref().clone()
        }
        None => {
            let lower = cname.get_ref().to_ascii_lowercase();
            if !valid_ident(&lower) {
                return Err(cx.err(
                    cname,
                    format!(
                        "source column `{}` does not give a valid output name; add name = \"…\"",
                        cname.get_ref()
                    ),
                ));
            }
            lower
        }
    };
    let redact_when = match &r.redact_when {
        None => Vec::new(),
        Some(w) => {
            if rule == Rule::Drop {
                return Err(cx.err(w, "`redact_when` does not apply to a dropped column"));
            }
            if w.get_ref().is_empty() || w.get_ref().values().any(Vec::is_empty) {
                return Err(cx.err(
                    w,
                    "`redact_when` maps a source column to the values that blank this one, e.g. redact_when = { CODE = [\"56799-0\"] }",
                ));
            }
            w.get_ref()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }
    };
    Ok(ColumnSpec {
        source: cname.get_ref().clone(),
        output,
        rule,
        redact_when,
        at: Span::from(cname),
    })
}

/// Every rule name was matched above.
fn unreachable_rule() -> Rule {
    Rule::Drop
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"
version = 1
name = "demo"
date_shift_days = 30

[opt_out]
format = "nhs_number"

[tables.people]
source = "person.csv"
person = "nhs_number"

[tables.people.columns]
nhs_number = { rule = "pseudonymise", entity = "person", format = "nhs_number", name = "person_id" }
dob = { rule = "truncate_date", unit = "month" }
postcode = { rule = "generalise_postcode", level = "outward" }
name = { rule = "drop" }
seen = { rule = "date_shift", type = "timestamp" }
"#;

    fn parse(t: &str) -> Result<Pipeline, SpecError> {
        Pipeline::parse(Path::new("p.toml"), t)
    }

    #[test]
    fn parses_a_good_spec() {
        let p = parse(OK).unwrap();
        assert_eq!(p.name, "demo");
        assert_eq!(p.tables.len(), 1);
        let t = &p.tables[0];
        assert_eq!(t.person.as_deref(), Some("nhs_number"));
        assert_eq!(t.format, SourceFormat::Csv);
        let nhs = t.columns.iter().find(|c| c.source == "nhs_number").unwrap();
        assert_eq!(nhs.output, "person_id");
        assert_eq!(p.sha256.len(), 64);
        assert_eq!(p.opt_out_format, IdFormat::NhsNumber);
    }

    fn err(t: &str) -> SpecError {
        parse(t).unwrap_err()
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = err(&OK.replace("rule = \"drop\"", "rule = \"hash\""));
        assert_eq!(e.line, 17, "{e}");
        assert!(e.to_string().starts_with("p.toml:17:"), "{e}");
        assert!(e.message.contains("unknown rule `hash`"), "{e}");

        let e = err(&OK.replace("level = \"outward\"", "level = \"district\""));
        assert_eq!(e.line, 16);
        assert!(e.message.contains("outward or sector"));

        let e = err(&OK.replace("unit = \"month\"", "unit = \"month\", width = 3"));
        assert!(
            e.message
                .contains("`width` does not apply to rule `truncate_date`"),
            "{e}"
        );

        let e = err(&OK.replace("date_shift_days = 30\n", ""));
        assert!(e.message.contains("date_shift_days"), "{e}");

        let e = err(&OK.replace(
            "source = \"person.csv\"",
            "source = \"person.csv\"\nsorce = 1",
        ));
        assert!(e.message.contains("unknown field"), "{e}");
        assert_eq!(e.line, 11);

        let e = err(&OK.replace("person = \"nhs_number\"", "person = \"postcode\""));
        assert!(
            e.message.contains("must have rule = \"pseudonymise\""),
            "{e}"
        );

        let e = err(&OK.replace("version = 1", "version = 2"));
        assert!(e.message.contains("version 2"));

        let e = err(&OK.replace("\"person.csv\"", "\"../etc/person.csv\""));
        assert!(e.message.contains("relative path"));

        let e = err(&OK.replace("name = \"person_id\"", "name = \"dob\""));
        assert!(e.message.contains("written as `dob`"), "{e}");
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
