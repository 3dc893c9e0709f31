//! Applying a table's compiled rules to a batch of source columns: person pseudonyms
//! and opt-outs first, then every rule; rows that fail any rule are taken out and
//! returned for the quarantine, rows of opted-out people are dropped and counted.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, new_null_array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use dhub_deid::rules::keep::TypedInput;
use dhub_deid::{
    CachedPseudonymiser, DateShifter, Pseudonymiser, RowFailure, RuleInputs, RuleOutput,
};

use crate::error::IngestError;
use crate::optout::OptOuts;
use crate::quarantine::QuarantinedRow;
use crate::spec::{OutType, Rule, TableSpec};

/// Source columns of one batch, with the line numbers and raw lines of its rows.
#[derive(Debug)]
pub struct SourceBatch {
    /// Line (or row) number of each row.
    pub lines: Vec<u64>,
    /// The rows as read, for the quarantine.
    pub raw: RawRows,
    /// One array per input column (see [`TablePlan::inputs`]).
    pub columns: Vec<ArrayRef>,
    /// Rows of an input column typed while it was read (see [`TablePlan::input_kinds`])
    /// that did not convert, by input; empty when none was.
    pub input_failures: Vec<Vec<RowFailure>>,
}

/// The raw form of a batch's rows.
#[derive(Debug)]
pub enum RawRows {
    /// Text lines, concatenated, with the end offset of each.
    Lines(Vec<u8>, Vec<usize>),
    /// Text lines where they were read: the input blocks, and each row's block (index)
    /// and byte range in it.
    Blocks(Vec<arrow_buffer::Buffer>, Vec<(u32, usize, usize)>),
    /// A typed batch: a row is rendered as a JSON line when it is quarantined.
    Typed(RecordBatch),
}

impl SourceBatch {
    fn raw_row(&self, i: usize) -> Vec<u8> {
        match &self.raw {
            RawRows::Lines(raw, ends) => {
                let start = if i == 0 { 0 } else { ends[i - 1] };
                raw[start..ends[i]].to_vec()
            }
            RawRows::Blocks(blocks, spans) => {
                let (b, s, e) = spans[i];
                blocks[b as usize][s..e].to_vec()
            }
            RawRows::Typed(b) => {
                let mut out = Vec::new();
                let mut w = arrow_json::LineDelimitedWriter::new(&mut out);
                let _ = w.write(&b.slice(i, 1));
                let _ = w.finish();
                while out.last() == Some(&b'\n') {
                    out.pop();
                }
                out
            }
        }
    }
}

/// The result of de-identifying one batch.
#[derive(Debug)]
pub struct Processed {
    /// Rows to write (absent when none survived).
    pub batch: Option<RecordBatch>,
    /// Rows for the quarantine.
    pub quarantined: Vec<QuarantinedRow>,
    /// Rows of opted-out people.
    pub opted_out: u64,
}

/// One output column: which input it reads and its rule.
#[derive(Debug)]
struct OutColumn {
    source: String,
    input: usize,
    rule: Rule,
    /// For age_band at a column: that column's input index.
    at_input: Option<usize>,
    /// Null the output where input `.0` holds one of the values `.1`.
    redact_when: Vec<(usize, std::collections::HashSet<String>)>,
    pseudonymiser: Option<CachedPseudonymiser>,
}

/// Everything needed to de-identify a table's batches, built once per table.
#[derive(Debug)]
pub struct TablePlan {
    /// Table name.
    pub table: String,
    /// Source column names to read, in the order of [`SourceBatch::columns`].
    pub inputs: Vec<String>,
    outputs: Vec<OutColumn>,
    person_output: Option<usize>,
    schema: SchemaRef,
    shifter: Option<Arc<DateShifter>>,
    opt_outs: Arc<OptOuts>,
    person_column_name: Option<String>,
}

impl TablePlan {
    /// Builds the plan for `spec`, whose columns are ordered as in the source.
    pub fn new(
        spec: &TableSpec,
        pseudonymisers: &HashMap<String, Arc<Pseudonymiser>>,
        shifter: Option<Arc<DateShifter>>,
        opt_outs: Arc<OptOuts>,
    ) -> Self {
        let mut inputs: Vec<String> = Vec::new();
        let input_of = |name: &str, inputs: &mut Vec<String>| -> usize {
            match inputs.iter().position(|n| n == name) {
                Some(i) => i,
                None => {
                    inputs.push(name.to_owned());
                    inputs.len() - 1
                }
            }
        };
        let mut outputs = Vec::new();
        let mut fields = Vec::new();
        let mut person_output = None;
        let mut person_column_name = None;
        for c in spec.columns.iter().filter(|c| c.rule != Rule::Drop) {
            let input = input_of(&c.source, &mut inputs);
            let at_input = match &c.rule {
                Rule::AgeBand {
                    at_column: Some(a), ..
                } => Some(input_of(a, &mut inputs)),
                _ => None,
            };
            let redact_when = c
                .redact_when
                .iter()
                .map(|(col, values)| (input_of(col, &mut inputs), values.iter().cloned().collect()))
                .collect();
            let pseudonymiser = match &c.rule {
                Rule::Pseudonymise { entity, format } => pseudonymisers
                    .get(entity)
                    .map(|p| CachedPseudonymiser::new(p.clone(), *format)),
                _ => None,
            };
            if spec.person.as_deref() == Some(c.source.as_str()) {
                person_output = Some(outputs.len());
                person_column_name = Some(c.output.clone());
            }
            let ty = c.rule.out_type().unwrap_or(OutType::String);
            fields.push(Field::new(&c.output, ty.arrow(), true));
            outputs.push(OutColumn {
                source: c.source.clone(),
                input,
                rule: c.rule.clone(),
                at_input,
                redact_when,
                pseudonymiser,
            });
        }
        Self {
            table: spec.name.clone(),
            inputs,
            outputs,
            person_output,
            schema: Arc::new(Schema::new(fields)),
            shifter,
            opt_outs,
            person_column_name,
        }
    }

    /// The output schema.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// For each input, the typed column a reader may build straight from the source
    /// text (`Some`) instead of a text column: an input whose only uses are `keep` rules
    /// of one number or timestamp type, or `truncate_date` rules (which read only each
    /// value's day). Its failures go in [`SourceBatch::input_failures`].
    pub(crate) fn input_kinds(&self) -> Vec<Option<TypedInput>> {
        (0..self.inputs.len())
            .map(|i| {
                let mut kind = None;
                for o in &self.outputs {
                    if o.at_input == Some(i) || o.redact_when.iter().any(|(c, _)| *c == i) {
                        return None;
                    }
                    if o.input != i {
                        continue;
                    }
                    let k = match o.rule {
                        Rule::Keep(
                            t @ (OutType::Float64
                            | OutType::Int64
                            | OutType::Int32
                            | OutType::Timestamp),
                        ) => TypedInput::Keep(t),
                        Rule::TruncateDate(..) => TypedInput::Days,
                        _ => return None,
                    };
                    if kind.is_some_and(|was| was != k) {
                        return None;
                    }
                    kind = Some(k);
                }
                kind
            })
            .collect()
    }

    /// The output columns that hold pseudonyms.
    pub fn pseudonym_columns(&self) -> HashSet<String> {
        self.outputs
            .iter()
            .zip(self.schema.fields())
            .filter(|(o, _)| matches!(o.rule, Rule::Pseudonymise { .. }))
            .map(|(_, f)| f.name().clone())
            .collect()
    }

    /// The output column holding the person pseudonym.
    pub fn person_column(&self) -> Option<&str> {
        self.person_column_name.as_deref()
    }

    fn rule_err(&self, col: &OutColumn, e: dhub_deid::RuleError) -> IngestError {
        IngestError::Rule {
            table: self.table.clone(),
            column: col.source.clone(),
            source: e,
        }
    }

    /// De-identifies one batch.
    pub fn apply(&mut self, sb: &SourceBatch) -> Result<Processed, IngestError> {
        let n = sb.lines.len();
        // first failure of each row: (output column, rule, reason)
        // (allocated on the first failure: most batches have none)
        let mut failed: Vec<Option<(usize, &'static str, String)>> = Vec::new();
        let mut opted = vec![false; n];
        let mut arrays: Vec<Option<ArrayRef>> = vec![None; self.outputs.len()];
        let note = |failed: &mut Vec<Option<(usize, &'static str, String)>>,
                    col: usize,
                    fs: &[RowFailure]| {
            if failed.is_empty() && !fs.is_empty() {
                failed.resize(n, None);
            }
            for f in fs {
                if failed[f.row].is_none() {
                    failed[f.row] = Some((col, f.rule, f.reason.to_string()));
                }
            }
        };

        // person pseudonyms first: opt-outs and date shifts need them
        let mut shifts: Option<Vec<Option<i32>>> = None;
        if let Some(pi) = self.person_output {
            let col = &mut self.outputs[pi];
            let input = sb.columns[col.input].clone();
            let Some(p) = col.pseudonymiser.as_mut() else {
                return Err(IngestError::Internal(
                    "person column without a pseudonymiser".into(),
                ));
            };
            let out = p
                .pseudonymise(input.as_ref())
                .map_err(|e| IngestError::Rule {
                    table: self.table.clone(),
                    column: self.outputs[pi].source.clone(),
                    source: e,
                })?;
            note(&mut failed, pi, &out.failures);
            let ps = out.array.as_string::<i32>();
            if !self.opt_outs.is_empty() {
                for (i, o) in opted.iter_mut().enumerate() {
                    *o = ps.is_valid(i) && self.opt_outs.contains(ps.value(i));
                }
            }
            if let Some(s) = &self.shifter {
                shifts = Some(s.shifts_memoised(ps));
            }
            arrays[pi] = Some(out.array);
        }

        #[allow(clippy::needless_range_loop)] // `apply_rule` borrows `self` by index
        for ci in 0..self.outputs.len() {
            if arrays[ci].is_some() {
                continue;
            }
            let input = sb.columns[self.outputs[ci].input].clone();
            let out = self.apply_rule(ci, input.as_ref(), sb, shifts.as_deref())?;
            if let Some(f) = sb.input_failures.get(self.outputs[ci].input) {
                note(&mut failed, ci, f);
            }
            note(&mut failed, ci, &out.failures);
            arrays[ci] = Some(self.redact_rows(ci, out.array, sb)?);
        }

        let mut quarantined = Vec::new();
        let mut keep = Vec::with_capacity(n);
        let mut opted_out = 0u64;
        for (i, &opted) in opted.iter().enumerate() {
            if opted {
                opted_out += 1;
                keep.push(false);
            } else if let Some((col, rule, reason)) = failed.get_mut(i).and_then(Option::take) {
                quarantined.push(QuarantinedRow {
                    line: sb.lines[i],
                    column: Some(self.outputs[col].source.clone()),
                    rule,
                    reason,
                    raw: sb.raw_row(i),
                });
                keep.push(false);
            } else {
                keep.push(true);
            }
        }
        let columns: Vec<ArrayRef> = arrays
            .into_iter()
            .map(|a| a.unwrap_or_else(|| new_null_array(&DataType::Utf8, n)))
            .collect();
        let batch =
            RecordBatch::try_new(self.schema.clone(), columns).map_err(|e| IngestError::Arrow {
                table: self.table.clone(),
                message: e.to_string(),
            })?;
        let kept = keep.iter().filter(|&&k| k).count();
        let batch = if kept == n {
            Some(batch)
        } else if kept == 0 {
            None
        } else {
            let mask = BooleanArray::from(keep);
            Some(
                arrow_select::filter::filter_record_batch(&batch, &mask).map_err(|e| {
                    IngestError::Arrow {
                        table: self.table.clone(),
                        message: e.to_string(),
                    }
                })?,
            )
        };
        Ok(Processed {
            batch,
            quarantined,
            opted_out,
        })
    }

    /// Applies the column's `redact_when`: null where the condition column matches.
    fn redact_rows(
        &self,
        ci: usize,
        array: ArrayRef,
        sb: &SourceBatch,
    ) -> Result<ArrayRef, IngestError> {
        let col = &self.outputs[ci];
        if col.redact_when.is_empty() {
            return Ok(array);
        }
        let arrow_err = |e: arrow_schema::ArrowError| IngestError::Arrow {
            table: self.table.clone(),
            message: e.to_string(),
        };
        let mut hit = vec![false; array.len()];
        for (input, values) in &col.redact_when {
            let cond = arrow_cast::cast(&sb.columns[*input], &DataType::Utf8).map_err(arrow_err)?;
            for (h, v) in hit.iter_mut().zip(cond.as_string::<i32>().iter()) {
                *h |= v.is_some_and(|v| values.contains(v.trim()));
            }
        }
        if !hit.contains(&true) {
            return Ok(array);
        }
        arrow_select::nullif::nullif(&array, &BooleanArray::from(hit)).map_err(arrow_err)
    }

    fn apply_rule(
        &mut self,
        ci: usize,
        input: &dyn Array,
        sb: &SourceBatch,
        shifts: Option<&[Option<i32>]>,
    ) -> Result<RuleOutput, IngestError> {
        let col = &mut self.outputs[ci];
        let with = RuleInputs {
            pseudonymiser: col.pseudonymiser.as_mut(),
            shifts,
            at_column: col.at_input.map(|a| sb.columns[a].as_ref()),
        };
        let res = col.rule.apply(input, with);
        res.map_err(|e| self.rule_err(&self.outputs[ci], e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Pipeline;

    #[test]
    fn inputs_are_read_typed_only_when_a_keep_rule_is_their_only_use() {
        let spec = r#"
version = 1
name = "kinds"

[tables.t]
source = "t.csv"

[tables.t.columns]
cost = { rule = "keep", type = "float64" }
n = { rule = "keep", type = "int32" }
seen = { rule = "keep", type = "timestamp" }
when = { rule = "keep", type = "timestamp" }
born = { rule = "age_band", at = "when" }
code = { rule = "keep" }
flag = { rule = "keep", type = "int64" }
note = { rule = "keep", redact_when = { flag = ["1"] } }
day = { rule = "keep", type = "date" }
month = { rule = "truncate_date", unit = "month" }
year = { rule = "truncate_date", unit = "year", output = "year" }
"#;
        let p = Pipeline::parse(std::path::Path::new("k.toml"), spec).unwrap();
        let plan = TablePlan::new(
            &p.tables[0],
            &HashMap::new(),
            None,
            Arc::new(OptOuts::default()),
        );
        let kinds: HashMap<&str, Option<TypedInput>> = plan
            .inputs
            .iter()
            .map(String::as_str)
            .zip(plan.input_kinds())
            .collect();
        assert_eq!(kinds["cost"], Some(TypedInput::Keep(OutType::Float64)));
        assert_eq!(kinds["n"], Some(TypedInput::Keep(OutType::Int32)));
        assert_eq!(kinds["seen"], Some(TypedInput::Keep(OutType::Timestamp)));
        assert_eq!(kinds["month"], Some(TypedInput::Days));
        assert_eq!(kinds["year"], Some(TypedInput::Days));
        // read as text by another rule
        assert_eq!(kinds["when"], None);
        assert_eq!(kinds["flag"], None);
        assert_eq!(kinds["code"], None);
        assert_eq!(kinds["day"], None);
        assert_eq!(kinds["born"], None);
    }
}
