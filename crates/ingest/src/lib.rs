//! # dhub-ingest: raw extracts in, de-identified Delta tables out
//!
//! `dhub ingest PIPELINE.toml` reads each source file named by the pipeline spec,
//! applies a de-identification rule to **every** column, and writes the result as a
//! Delta Lake table of zstd Parquet in the research store. Rows that fail parsing or a
//! rule go to the quarantine with their line number and reason; rows of people on the
//! national data opt-out list are removed and counted; every table reconciles
//! `read = written + quarantined + opted_out`. The whole run is staged first and
//! committed at the end, so a failed or killed run leaves every table as it was.
//!
//! ## The pipeline spec, field by field
//!
//! ```toml
//! version = 1                 # spec format version (required; this build reads 1)
//! name = "synthea"            # pipeline name: 1-64 of a-z 0-9 _ - (required)
//! description = "…"           # free text (optional)
//! max_reject_rate = 0.01      # default for every table: largest quarantined share (0.01 = 1%)
//! date_shift_days = 50        # largest per-person date shift, days (required by `date_shift`)
//! batch_rows = 65536          # rows per batch (1024 to 1048576)
//!
//! [opt_out]                   # how `--opt-out` lines are read (optional)
//! format = "nhs_number"       # text | uuid | nhs_number
//! entity = "person"           # the person entity (default "person")
//!
//! [tables.encounters]         # one table per key; the key is the output table name
//! source = "encounters.csv"   # file relative to --source (.gz = gzip)
//! format = "csv"              # csv | ndjson | parquet (default: from the file name)
//! delimiter = ","             # CSV only (default "," or tab for .tsv)
//! quote = '"'                 # CSV only
//! gzip = false                # default: true when the name ends in .gz
//! multiline = false           # CSV only: may quoted fields span lines?
//! person = "PATIENT"          # source column identifying the person (optional; it must
//!                             # be pseudonymised with the person entity)
//! mode = "overwrite"          # overwrite | append
//! max_reject_rate = 0.01      # overrides the pipeline default
//!
//! [tables.encounters.columns] # a rule for EVERY source column, by source name
//! Id = { rule = "pseudonymise", entity = "encounter", format = "uuid" }
//! START = { rule = "truncate_date", unit = "month" }
//! CODE = { rule = "keep" }
//! BASE_ENCOUNTER_COST = { rule = "keep", type = "float64" }
//! ```
//!
//! Every column entry takes `rule` and optionally `name` (output column name; default
//! the source name in lower case). The rules and their options:
//!
//! | rule | options | output |
//! | --- | --- | --- |
//! | `keep` | `type` = string (default), int32, int64, float64, boolean, date, timestamp | the value, converted; a value that does not convert is quarantined |
//! | `drop` | — | no column |
//! | `pseudonymise` | `entity` (required), `format` = text (default), uuid, nhs_number | 32-hex keyed pseudonym |
//! | `date_shift` | `type` = date (default) or timestamp | shifted by the person's shift (needs `person` and `date_shift_days`) |
//! | `truncate_date` | `unit` = year or month (required), `output` = date (default) or year (an integer, with unit year), `floor` (YYYY-MM-DD: earlier dates are raised to it first, e.g. to top-code ages over 89) | first day of the year or month |
//! | `age_band` | `at` (event-date column) or `at_date` (YYYY-MM-DD), `width` (default 5), `top` | `"40-44"`, `"90+"` |
//! | `generalise_postcode` | `level` = outward or sector | `SW1A` / `SW1A 1` |
//! | `zip3` | — | first three digits; HIPAA restricted prefixes become `000` |
//! | `round` | `base` (required), `type` = float64 (default) or int64 | nearest multiple |
//! | `top_code` | `max` (required), `type` = float64 (default) or int64 | values above `max` become `max` |
//! | `redact` | `type` | null |
//! | `map` | `values` = { from = "to", … } (required), `default` | looked-up value; unmapped without a default is quarantined |
//!
//! This crate parses the table above into [`Rule`]s; what each rule does to a column,
//! and every key it uses, is `dhub-deid`'s ([`dhub_deid::rules`], [`Rule::apply`]).
//!
//! Any rule but `drop` also takes `redact_when = { COLUMN = ["value", …] }`: the output
//! is null in rows where that source column holds one of the values. Use it where one
//! column says what another holds, such as a survey answer column whose question asks
//! for an address (Synthea's observation `56799-0`, "What address do you live at?").
//!
//! A spec problem (unknown rule or option, a bad value, a source column without a rule,
//! a rule for a column the source does not have) is reported before any row is read,
//! as `FILE:LINE:COLUMN: message`.
//!
//! ## Sources
//!
//! `--source` is a local directory or an object-store URL (`s3://`, `az://`, `gs://`,
//! `memory://`). CSV is read line by line: a line with the wrong field count, invalid
//! UTF-8 or an unterminated quote is quarantined on its own and never swallows the lines
//! after it (quoted fields may span lines only with `multiline = true`). Empty fields
//! are null. NDJSON: one object per line; a field without a rule sends its row to the
//! quarantine. Parquet: typed columns go straight to the rules.
//!
//! ## Threads and memory
//!
//! A table's rows pass through three stages, each on its own thread so they share the
//! machine's cores: reading and parsing into batches of `batch_rows` source columns,
//! de-identification, and Parquet encoding and upload. A source's first batch is 8,192
//! rows and each next one twice the last up to `batch_rows`, so the later stages start
//! after milliseconds instead of waiting for a full batch; near the end of an
//! uncompressed CSV source (known from its size) batches shrink back to 8,192 rows, so
//! less is left queued for the writer when reading ends and the run spends less time
//! on one core. Batches pass between stages through channels one or two deep, so a run
//! holds a handful of batches and one data file under construction (up to its 128 MiB
//! target size) whatever the input size.
//! CSV is read in 4 MiB blocks that a batch's rows point into (their raw lines, kept
//! for the quarantine, are never copied); a block returns to the reader for reuse once
//! the batches holding it are written. A line is split by a structural scan: delimiters,
//! quotes and line feeds of 64 bytes at a time as a bit mask (SSE2 on x86_64), and a
//! line that is all ASCII needs no UTF-8 check. A column kept as a number or a timestamp
//! and used by no other rule is parsed by the reading thread straight from its fields,
//! by the conversion the `keep` rule makes ([`dhub_deid::rules::keep::TypedCol`])
//! (its failures still go to the quarantine as `keep` failures), and so is a column
//! that only `truncate_date` rules read, as the day of each value (its failures are
//! `truncate_date` failures, as the rule reports them from text). Plain decimals and
//! `YYYY-MM-DDTHH:MM:SSZ` instants are read from the field's bytes (the instant's shape
//! and digits checked a word at a time); other shapes take the full parsers.
//! Identifier columns whose value repeats from one row to the next (event tables
//! grouped by patient) reuse the previous pseudonym; other repeats are remembered per
//! column (see [`dhub_deid::CachedPseudonymiser`]), and a column whose values only ever repeat in runs keeps no
//! table of them.
//!
//! ## Parquet settings
//!
//! zstd level 1, row groups of 64K rows, data files of 128 MiB. Chosen per column from
//! a table's first batch:
//!
//! * **dictionary encoding** unless the values barely repeat (a table's own ids, times,
//!   amounts), where the writer would build a dictionary only to drop it at its size
//!   limit; text without one is written `DELTA_LENGTH_BYTE_ARRAY` (dhub-store), so zstd
//!   compresses the characters without a length between every two values;
//! * **min/max statistics** only where a reader can prune with them: numbers, dates and
//!   times, and text whose rows come in (nearly, 95%) sorted order. Pseudonyms (random
//!   hex) and text in no order (codes and descriptions of an event table, whose every
//!   row group spans nearly the whole range) get none: the writer would compare every
//!   value twice for ranges that never skip a row group.
//!
//! ## Quarantine
//!
//! `<quarantine>/<pipeline>/<run id>/<table>.csv` with `file,line,column,rule,reason,raw`.
//! It holds identifiable raw lines: it is never inside the research store (checked).

mod csv;
mod deidentify;
mod error;
mod optout;
mod quarantine;
mod report;
mod run;
mod source;
mod spec;
mod worker;

pub use csv::{CsvReader, LineError, Record};
pub use error::{IngestError, SpecError};
pub use optout::OptOuts;
pub use quarantine::QuarantinedRow;
pub use report::{REPORT_FORMAT, RunReport, TableReport};
pub use run::{IngestOptions, NoProgress, Progress, run};
pub use source::SourceRoot;
pub use spec::{
    ColumnSpec, OutType, Pipeline, RULES, Rule, SPEC_VERSION, SourceFormat, TableSpec, WriteMode,
};
