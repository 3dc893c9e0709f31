//! The quarantine: rows that failed parsing or a rule, with file, line, column and
//! reason, and the raw line itself. It holds identifiable data, so it lives in its own
//! area (`--quarantine URL`), never inside the research store.
//!
//! Layout: `<quarantine>/<pipeline>/<run id>/<table>.csv`, columns
//! `file,line,column,rule,reason,raw` (raw is the source line as read, quoted).

use object_store::buffered::BufWriter;
use tokio::io::AsyncWriteExt;

use crate::error::IngestError;

/// One quarantined row.
#[derive(Debug, Clone)]
pub struct QuarantinedRow {
    /// Line (CSV/NDJSON) or row (Parquet) number in the source, 1-based.
    pub line: u64,
    /// The source column that failed, if one did.
    pub column: Option<String>,
    /// The rule that failed, or `parse`.
    pub rule: &'static str,
    /// Why.
    pub reason: String,
    /// The raw source line (or the row as JSON for Parquet sources).
    pub raw: Vec<u8>,
}

/// Writes one table's quarantine file, created on the first row.
pub struct QuarantineWriter {
    loc: dhub_store::Location,
    rel: String,
    source: String,
    writer: Option<BufWriter>,
    buf: Vec<u8>,
    rows: u64,
}

impl std::fmt::Debug for QuarantineWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuarantineWriter")
            .field("file", &self.rel)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

fn csv_field(out: &mut Vec<u8>, v: &[u8]) {
    if v.iter().any(|&b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        out.push(b'"');
        for &b in v {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(v);
    }
}

impl QuarantineWriter {
    /// A writer for `table`'s rows under `<loc>/<pipeline>/<run_id>/`.
    pub fn new(
        loc: dhub_store::Location,
        pipeline: &str,
        run_id: &str,
        table: &str,
        source: &str,
    ) -> Self {
        Self {
            loc,
            rel: format!("{pipeline}/{run_id}/{table}.csv"),
            source: source.to_owned(),
            writer: None,
            buf: Vec::with_capacity(1 << 16),
            rows: 0,
        }
    }

    /// The URL of the quarantine file (whether or not it has rows yet).
    pub fn url(&self) -> String {
        self.loc.child_url(&self.rel).to_string()
    }

    fn err(&self, e: impl std::fmt::Display) -> IngestError {
        IngestError::Quarantine {
            location: self.url(),
            message: e.to_string(),
        }
    }

    /// Appends rows.
    pub async fn write(&mut self, rows: &[QuarantinedRow]) -> Result<(), IngestError> {
        if rows.is_empty() {
            return Ok(());
        }
        if self.writer.is_none() {
            let w = BufWriter::new(self.loc.object_store().clone(), self.loc.path(&self.rel));
            self.writer = Some(w);
            self.buf
                .extend_from_slice(b"file,line,column,rule,reason,raw\n");
        }
        for r in rows {
            csv_field(&mut self.buf, self.source.as_bytes());
            self.buf.push(b',');
            self.buf.extend_from_slice(r.line.to_string().as_bytes());
            self.buf.push(b',');
            csv_field(&mut self.buf, r.column.as_deref().unwrap_or("").as_bytes());
            self.buf.push(b',');
            self.buf.extend_from_slice(r.rule.as_bytes());
            self.buf.push(b',');
            csv_field(&mut self.buf, r.reason.as_bytes());
            self.buf.push(b',');
            // always quoted, so an empty raw line is distinguishable
            self.buf.push(b'"');
            for &b in &r.raw {
                if b == b'"' {
                    self.buf.push(b'"');
                }
                self.buf.push(b);
            }
            self.buf.extend_from_slice(b"\"\n");
            self.rows += 1;
        }
        if self.buf.len() >= 1 << 16 {
            self.flush_buf().await?;
        }
        Ok(())
    }

    async fn flush_buf(&mut self) -> Result<(), IngestError> {
        let Some(w) = self.writer.as_mut() else {
            return Ok(());
        };
        let res = w.write_all(&self.buf).await;
        self.buf.clear();
        res.map_err(|e| self.err(e))
    }

    /// Finishes the file (if any row was written).
    pub async fn finish(mut self) -> Result<Option<String>, IngestError> {
        if self.writer.is_none() {
            return Ok(None);
        }
        self.flush_buf().await?;
        let url = self.url();
        if let Some(mut w) = self.writer.take() {
            w.shutdown().await.map_err(|e| self.err(e))?;
        }
        Ok(Some(url))
    }
}
