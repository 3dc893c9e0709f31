//! Result formats: JSON (columns, rows, disclosure record), CSV, Arrow IPC stream and
//! Parquet.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::{Value, json};

use crate::Answered;
use crate::error::ApiError;

/// A result format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `{"query_id", "columns", "rows", "disclosure"}`.
    Json,
    /// CSV with a header line.
    Csv,
    /// Arrow IPC stream.
    Arrow,
    /// Parquet file (zstd).
    Parquet,
}

impl std::str::FromStr for Format {
    type Err = ApiError;
    fn from_str(s: &str) -> Result<Self, ApiError> {
        match s {
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            "arrow" => Ok(Format::Arrow),
            "parquet" => Ok(Format::Parquet),
            other => Err(ApiError::bad_request(format!(
                "format `{}` is not known; use json, csv, arrow or parquet",
                other.chars().take(40).collect::<String>()
            ))),
        }
    }
}

fn cell(a: &dyn Array, f: &ArrayFormatter<'_>, i: usize) -> Value {
    if a.is_null(i) {
        return Value::Null;
    }
    macro_rules! num {
        ($t:ty) => {
            json!(a.as_primitive::<$t>().value(i))
        };
    }
    use arrow::datatypes as t;
    match a.data_type() {
        DataType::Boolean => json!(a.as_boolean().value(i)),
        DataType::Int8 => num!(t::Int8Type),
        DataType::Int16 => num!(t::Int16Type),
        DataType::Int32 => num!(t::Int32Type),
        DataType::Int64 => num!(t::Int64Type),
        DataType::UInt8 => num!(t::UInt8Type),
        DataType::UInt16 => num!(t::UInt16Type),
        DataType::UInt32 => num!(t::UInt32Type),
        DataType::UInt64 => num!(t::UInt64Type),
        DataType::Float32 => {
            let v = f64::from(a.as_primitive::<t::Float32Type>().value(i));
            serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
        }
        DataType::Float64 => {
            let v = a.as_primitive::<t::Float64Type>().value(i);
            serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
        }
        _ => Value::String(f.value(i).to_string()),
    }
}

/// Encodes an answered query; returns the content type and the body.
pub fn encode(format: Format, a: &Answered) -> Result<(&'static str, Vec<u8>), ApiError> {
    let o = &a.output;
    let err = |e: String| ApiError::internal(format!("encoding the result: {e}"));
    match format {
        Format::Json => {
            let columns: Vec<Value> = o
                .schema
                .fields()
                .iter()
                .map(|f| json!({"name": f.name(), "type": f.data_type().to_string()}))
                .collect();
            let opts = FormatOptions::default();
            let mut rows = Vec::with_capacity(o.rows);
            for b in &o.batches {
                let fmts: Vec<ArrayFormatter<'_>> = b
                    .columns()
                    .iter()
                    .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
                    .collect::<Result<_, _>>()
                    .map_err(|e| err(e.to_string()))?;
                for i in 0..b.num_rows() {
                    rows.push(Value::Array(
                        b.columns()
                            .iter()
                            .zip(&fmts)
                            .map(|(c, f)| cell(c.as_ref(), f, i))
                            .collect(),
                    ));
                }
            }
            let body = json!({
                "query_id": a.id,
                "columns": columns,
                "rows": rows,
                "disclosure": o.disclosure,
            });
            Ok((
                "application/json",
                serde_json::to_vec(&body).map_err(|e| err(e.to_string()))?,
            ))
        }
        Format::Csv => {
            let mut buf = Vec::new();
            {
                let mut w = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut buf);
                for b in &o.batches {
                    w.write(b).map_err(|e| err(e.to_string()))?;
                }
                if o.batches.is_empty() {
                    let header: Vec<&str> = o
                        .schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect();
                    drop(w);
                    buf.extend_from_slice(header.join(",").as_bytes());
                    buf.push(b'\n');
                }
            }
            Ok(("text/csv; charset=utf-8", buf))
        }
        Format::Arrow => {
            let mut buf = Vec::new();
            let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut buf, &o.schema)
                .map_err(|e| err(e.to_string()))?;
            for b in &o.batches {
                w.write(b).map_err(|e| err(e.to_string()))?;
            }
            w.finish().map_err(|e| err(e.to_string()))?;
            drop(w);
            Ok(("application/vnd.apache.arrow.stream", buf))
        }
        Format::Parquet => {
            let mut buf = Vec::new();
            let props = parquet::file::properties::WriterProperties::builder()
                .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
                .build();
            let mut w =
                parquet::arrow::ArrowWriter::try_new(&mut buf, Arc::clone(&o.schema), Some(props))
                    .map_err(|e| err(e.to_string()))?;
            for b in &o.batches {
                w.write(b).map_err(|e| err(e.to_string()))?;
            }
            w.close().map_err(|e| err(e.to_string()))?;
            Ok(("application/vnd.apache.parquet", buf))
        }
    }
}
