//! Rows of a view into Arrow record batches.
//!
//! Column types: the string-like FHIR primitives (string, code, id, uri, date, dateTime,
//! instant, time, …) are `Utf8` (a FHIR date may be partial, `2020-06`, so it stays text
//! until a rule generalises it); integers are `Int64`; decimal is `Float64`; boolean is
//! `Boolean`; a `collection: true` column is a `List` of its type.

use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, BooleanBuilder, Float64Builder, Int64Builder, ListBuilder, StringBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};

use crate::path::types;
use crate::view::{Cell, ColumnDef, Row, View};

/// The Arrow type of a view column.
pub fn data_type(c: &ColumnDef) -> DataType {
    let item = item_type(c.fhir_type);
    if c.collection {
        DataType::List(Arc::new(Field::new("item", item, true)))
    } else {
        item
    }
}

fn item_type(fhir_type: &str) -> DataType {
    match fhir_type {
        "boolean" => DataType::Boolean,
        "decimal" => DataType::Float64,
        t if types::is_integer(t) => DataType::Int64,
        _ => DataType::Utf8,
    }
}

/// The Arrow schema of a view's output (every column nullable).
pub fn schema(view: &View) -> SchemaRef {
    Arc::new(Schema::new(
        view.columns()
            .iter()
            .map(|c| Field::new(&c.name, data_type(c), true))
            .collect::<Vec<_>>(),
    ))
}

enum Col {
    Str(StringBuilder),
    Int(Int64Builder),
    Dec(Float64Builder),
    Bool(BooleanBuilder),
    List(ListBuilder<Box<dyn ArrayBuilder>>, DataType),
}

impl std::fmt::Debug for Col {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Col")
    }
}

fn scalar_builder(t: &DataType) -> Box<dyn ArrayBuilder> {
    match t {
        DataType::Boolean => Box::new(BooleanBuilder::new()),
        DataType::Float64 => Box::new(Float64Builder::new()),
        DataType::Int64 => Box::new(Int64Builder::new()),
        _ => Box::new(StringBuilder::new()),
    }
}

fn append_dyn(b: &mut dyn ArrayBuilder, t: &DataType, c: &Cell<'_>) {
    let any = b.as_any_mut();
    match t {
        DataType::Boolean => {
            if let Some(b) = any.downcast_mut::<BooleanBuilder>() {
                b.append_option(if let Cell::Bool(v) = c {
                    Some(*v)
                } else {
                    None
                });
            }
        }
        DataType::Float64 => {
            if let Some(b) = any.downcast_mut::<Float64Builder>() {
                b.append_option(if let Cell::Dec(v) = c { Some(*v) } else { None });
            }
        }
        DataType::Int64 => {
            if let Some(b) = any.downcast_mut::<Int64Builder>() {
                b.append_option(if let Cell::Int(v) = c { Some(*v) } else { None });
            }
        }
        _ => {
            if let Some(b) = any.downcast_mut::<StringBuilder>() {
                match c {
                    Cell::Str(s) => b.append_value(s),
                    _ => b.append_null(),
                }
            }
        }
    }
}

/// Builds record batches from a view's rows.
#[derive(Debug)]
pub struct BatchBuilder {
    schema: SchemaRef,
    cols: Vec<Col>,
    rows: usize,
}

impl BatchBuilder {
    pub fn new(view: &View) -> Self {
        let cols = view
            .columns()
            .iter()
            .map(|c| {
                let t = item_type(c.fhir_type);
                if c.collection {
                    Col::List(ListBuilder::new(scalar_builder(&t)), t)
                } else {
                    match t {
                        DataType::Boolean => Col::Bool(BooleanBuilder::new()),
                        DataType::Float64 => Col::Dec(Float64Builder::new()),
                        DataType::Int64 => Col::Int(Int64Builder::new()),
                        _ => Col::Str(StringBuilder::new()),
                    }
                }
            })
            .collect();
        Self {
            schema: schema(view),
            cols,
            rows: 0,
        }
    }

    /// Rows appended since the last [`BatchBuilder::finish`].
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one row (a cell per column, as [`View::rows`] makes them).
    pub fn push(&mut self, row: &Row<'_>) {
        for (col, c) in self.cols.iter_mut().zip(row) {
            match col {
                Col::Str(b) => match c {
                    Cell::Str(s) => b.append_value(s),
                    _ => b.append_null(),
                },
                Col::Int(b) => b.append_option(if let Cell::Int(v) = c { Some(*v) } else { None }),
                Col::Dec(b) => b.append_option(if let Cell::Dec(v) = c { Some(*v) } else { None }),
                Col::Bool(b) => b.append_option(if let Cell::Bool(v) = c {
                    Some(*v)
                } else {
                    None
                }),
                Col::List(b, t) => match c {
                    Cell::List(items) => {
                        for i in items {
                            append_dyn(b.values().as_mut(), t, i);
                        }
                        b.append(true);
                    }
                    _ => b.append(false),
                },
            }
        }
        self.rows += 1;
    }

    /// The rows appended so far as one batch; the builder starts again empty.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let arrays: Vec<ArrayRef> = self
            .cols
            .iter_mut()
            .map(|c| -> ArrayRef {
                match c {
                    Col::Str(b) => Arc::new(b.finish()),
                    Col::Int(b) => Arc::new(b.finish()),
                    Col::Dec(b) => Arc::new(b.finish()),
                    Col::Bool(b) => Arc::new(b.finish()),
                    Col::List(b, _) => Arc::new(b.finish()),
                }
            })
            .collect();
        self.rows = 0;
        RecordBatch::try_new(self.schema.clone(), arrays)
    }
}
