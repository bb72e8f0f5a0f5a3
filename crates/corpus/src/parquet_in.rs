//! Parquet input: every row becomes one line of JSON (arrow-json's encoding: strings,
//! numbers, lists, nested structs; nulls left out), so the reader, the schemas, the error
//! reports and the outputs treat Parquet corpora as they treat JSONL ones. Rows are decoded a
//! batch at a time (bounded memory, whatever the row-group size) and only the columns a
//! stage needs are read.

use std::fs::File;
use std::path::Path;

use arrow_json::writer::{LineDelimited, WriterBuilder};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use crate::error::ProblemKind;

/// A problem that ended a file: the row it happened at (0 for the whole file), its kind and
/// message.
pub type FileProblem = (u64, ProblemKind, String);

pub fn is_parquet(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// Reads `path` and hands each batch of rows to `sink` as JSON lines (each ending in `\n`),
/// with the number of rows before it and the share of the file read so far. `sink` returns
/// false to stop. `columns` keeps those top-level columns only (the ones missing are
/// ignored; none present is an error); `batch_bytes` sizes the batches.
pub fn read_as_json_lines(
    path: &Path,
    columns: Option<&[String]>,
    batch_bytes: usize,
    sink: &mut dyn FnMut(&[u8], u64, f64) -> bool,
) -> Result<(), FileProblem> {
    let file = File::open(path).map_err(|e| (0, ProblemKind::Io, format!("read error: {e}")))?;
    let corrupt = |row: u64, e: &dyn std::fmt::Display| {
        (
            row,
            ProblemKind::Compression,
            format!("not a readable Parquet file: {e}"),
        )
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| corrupt(0, &e))?;
    let meta = builder.metadata().clone();
    let total_rows = meta.file_metadata().num_rows().max(0) as u64;
    // Rows per batch from the file's own average row size.
    let avg_row = meta
        .row_groups()
        .iter()
        .map(|g| g.total_byte_size().max(0) as u64)
        .sum::<u64>()
        .checked_div(total_rows)
        .unwrap_or(1024)
        .max(1);
    let batch_rows = (batch_bytes as u64 / avg_row).clamp(16, 65_536) as usize;
    let mask = match columns {
        None => ProjectionMask::all(),
        Some(wanted) => {
            let fields = builder.parquet_schema().root_schema().get_fields();
            let roots: Vec<usize> = fields
                .iter()
                .enumerate()
                .filter(|(_, f)| wanted.iter().any(|w| w == f.name()))
                .map(|(i, _)| i)
                .collect();
            if roots.is_empty() {
                let names: Vec<&str> = fields.iter().map(|f| f.name()).collect();
                return Err((
                    0,
                    ProblemKind::MissingField,
                    format!(
                        "none of the columns {} (the file has {})",
                        wanted.join(", "),
                        names.join(", ")
                    ),
                ));
            }
            ProjectionMask::roots(builder.parquet_schema(), roots)
        }
    };
    let reader = builder
        .with_projection(mask)
        .with_batch_size(batch_rows)
        .build()
        .map_err(|e| corrupt(0, &e))?;
    let mut rows = 0u64;
    let mut json = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| corrupt(rows + 1, &e))?;
        json.clear();
        let mut w = WriterBuilder::new()
            .with_explicit_nulls(false)
            .build::<_, LineDelimited>(&mut json);
        w.write(&batch).map_err(|e| {
            (
                rows + 1,
                ProblemKind::WrongType,
                format!("a column JSON cannot hold: {e}"),
            )
        })?;
        w.finish().map_err(|e| corrupt(rows + 1, &e))?;
        drop(w);
        let n = batch.num_rows() as u64;
        let fraction = (rows + n) as f64 / total_rows.max(1) as f64;
        if !sink(&json, rows, fraction) {
            return Ok(());
        }
        rows += n;
    }
    Ok(())
}
