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

/// Slices each batch is cut into and encoded at once, in parallel. A fixed number, so that
/// the chunks the reader hands on never depend on the thread count.
const SLICES: usize = 4;

/// How a required field that the command does not read is checked: once, from the file's
/// schema and statistics; its rows then carry an empty stand-in value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StandIn {
    Text,
    List,
}

/// What reading a required field the caller does not need takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unneeded {
    /// Proven complete by the statistics: not read at all.
    Unread(StandIn),
    /// Read; each batch's array is checked for nulls and, when it has none, replaced by the
    /// stand-in before the rows are encoded.
    Checked(StandIn),
    /// Another type: read and checked row by row like any column.
    Read,
}

/// How column `root` (a top-level field) that the caller does not need is handled: a string
/// or list of strings whose every column chunk says, in its statistics, that it holds no
/// null is left unread; other strings and lists of strings are checked batch by batch;
/// anything else goes through the row checks.
fn unneeded(
    meta: &parquet::file::metadata::ParquetMetaData,
    arrow: &arrow_schema::Schema,
    root: usize,
) -> Unneeded {
    use arrow_schema::DataType::*;
    let kind = match arrow.field(root).data_type() {
        Utf8 | LargeUtf8 | Utf8View => StandIn::Text,
        List(f) | LargeList(f) if matches!(f.data_type(), Utf8 | LargeUtf8 | Utf8View) => {
            StandIn::List
        }
        _ => return Unneeded::Read,
    };
    // The null count of a list's leaf also counts empty lists, which are valid: only a count
    // of 0 proves the column complete.
    let schema = meta.file_metadata().schema_descr();
    let complete = meta.row_groups().iter().all(|g| {
        (0..schema.num_columns())
            .filter(|&leaf| schema.get_column_root_idx(leaf) == root)
            .all(|leaf| g.column(leaf).statistics().and_then(|s| s.null_count_opt()) == Some(0))
    });
    if complete {
        Unneeded::Unread(kind)
    } else {
        Unneeded::Checked(kind)
    }
}

/// Whether `a` (a string or list-of-strings column) holds no null, its lists no null element.
fn has_no_null(a: &dyn arrow_array::Array) -> bool {
    use arrow_array::cast::AsArray;
    use arrow_schema::DataType::*;
    a.null_count() == 0
        && match a.data_type() {
            List(_) => a.as_list::<i32>().values().null_count() == 0,
            LargeList(_) => a.as_list::<i64>().values().null_count() == 0,
            _ => true,
        }
}

fn stand_in_array(kind: StandIn, rows: usize) -> arrow_array::ArrayRef {
    use arrow_array::{ListArray, StringArray};
    use std::sync::Arc;
    match kind {
        StandIn::Text => Arc::new(StringArray::from_iter_values(std::iter::repeat_n("", rows))),
        StandIn::List => Arc::new(ListArray::new(
            Arc::new(arrow_schema::Field::new_list_field(
                arrow_schema::DataType::Utf8,
                true,
            )),
            arrow_buffer::OffsetBuffer::<i32>::new_zeroed(rows),
            Arc::new(StringArray::from(Vec::<&str>::new())),
            None,
        )),
    }
}

/// Reads `path` and hands the rows to `sink` as JSON lines (each ending in `\n`), a slice of
/// a batch at a time, with the number of rows before it and the share of the file read so
/// far. `sink` returns false to stop. `columns` keeps those top-level columns only (the ones
/// missing are ignored; none present is an error); `stand_ins` are required fields the
/// caller does not read: each must be a column, and is left unread when the file's schema and
/// statistics prove it a complete string (or list of strings) column — its rows then carry
/// `""` (or `[]`) — and read like the others otherwise. `batch_bytes` sizes the slices.
pub fn read_as_json_lines(
    path: &Path,
    columns: Option<&[String]>,
    stand_ins: &[String],
    batch_bytes: usize,
    sink: &mut dyn FnMut(Vec<u8>, u64, f64) -> bool,
) -> Result<(), FileProblem> {
    pytorrent_io::guard_decoder(|| read_json_lines(path, columns, stand_ins, batch_bytes, sink))
        .unwrap_or_else(|m| {
            Err((
                0,
                ProblemKind::Compression,
                format!("not a readable Parquet file: {m}"),
            ))
        })
}

fn read_json_lines(
    path: &Path,
    columns: Option<&[String]>,
    stand_ins: &[String],
    batch_bytes: usize,
    sink: &mut dyn FnMut(Vec<u8>, u64, f64) -> bool,
) -> Result<(), FileProblem> {
    use rayon::prelude::*;

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
    let arrow = builder.schema().clone();
    let total_rows = meta.file_metadata().num_rows().max(0) as u64;
    let names: Vec<&str> = arrow.fields().iter().map(|f| f.name().as_str()).collect();
    let root_of = |name: &str| names.iter().position(|n| *n == name);

    let mut roots: Vec<usize> = match columns {
        None => (0..names.len()).collect(),
        Some(wanted) => {
            let roots: Vec<usize> = wanted.iter().filter_map(|w| root_of(w)).collect();
            if roots.is_empty() {
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
            roots
        }
    };
    // Stand-ins: (field, value, whether the column is read and checked first).
    let mut fills: Vec<(String, StandIn, bool)> = Vec::new();
    if columns.is_some() {
        for name in stand_ins {
            let Some(root) = root_of(name) else {
                return Err((
                    1,
                    ProblemKind::MissingField,
                    format!(
                        "no column `{name}`: the required field is missing from every row \
                         (the file has {})",
                        names.join(", ")
                    ),
                ));
            };
            match unneeded(&meta, &arrow, root) {
                Unneeded::Unread(kind) => fills.push((name.clone(), kind, false)),
                Unneeded::Checked(kind) => {
                    fills.push((name.clone(), kind, true));
                    roots.push(root);
                }
                Unneeded::Read => roots.push(root),
            }
        }
    }
    roots.sort_unstable();
    roots.dedup();

    // Rows per slice from the average size of a row's columns that are read.
    let schema = meta.file_metadata().schema_descr();
    let read_bytes: u64 = meta
        .row_groups()
        .iter()
        .flat_map(|g| {
            (0..schema.num_columns())
                .filter(|&leaf| roots.contains(&schema.get_column_root_idx(leaf)))
                .map(move |leaf| g.column(leaf).uncompressed_size().max(0) as u64)
        })
        .sum();
    let avg_row = read_bytes.checked_div(total_rows).unwrap_or(1024).max(1);
    let slice_rows = (batch_bytes as u64 / avg_row).clamp(16, 65_536) as usize;
    let reader = builder
        .with_projection(ProjectionMask::roots(schema, roots.iter().copied()))
        .with_batch_size(slice_rows * SLICES)
        .build()
        .map_err(|e| corrupt(0, &e))?;

    let mut rows = 0u64;
    for batch in reader {
        let mut batch = batch.map_err(|e| corrupt(rows + 1, &e))?;
        let n = batch.num_rows();
        if !fills.is_empty() {
            let mut fields: Vec<arrow_schema::FieldRef> = batch.schema().fields().to_vec();
            let mut arrays = batch.columns().to_vec();
            for (name, kind, checked) in &fills {
                let stand_in = stand_in_array(*kind, n);
                let field = std::sync::Arc::new(arrow_schema::Field::new(
                    name,
                    stand_in.data_type().clone(),
                    false,
                ));
                if !checked {
                    fields.push(field);
                    arrays.push(stand_in);
                    continue;
                }
                // A column with a null somewhere goes to the row checks as it is.
                let at = batch.schema().index_of(name).expect("a read column");
                if has_no_null(arrays[at].as_ref()) {
                    fields[at] = field;
                    arrays[at] = stand_in;
                }
            }
            batch = arrow_array::RecordBatch::try_new(
                std::sync::Arc::new(arrow_schema::Schema::new(fields)),
                arrays,
            )
            .map_err(|e| corrupt(rows + 1, &e))?;
        }
        // Binary columns would be written as hex digits: they are read as the UTF-8 text they
        // hold, or refused.
        batch = binary_as_text(batch, rows).map_err(|e| *e)?;
        // JSON encoding is the costly step: its slices are encoded at once.
        let per = n.div_ceil(SLICES).max(1);
        let starts: Vec<usize> = (0..n).step_by(per).collect();
        let encoded: Vec<Result<Vec<u8>, FileProblem>> = starts
            .par_iter()
            .map(|&start| {
                let slice = batch.slice(start, per.min(n - start));
                let mut json = Vec::new();
                let mut w = WriterBuilder::new()
                    .with_explicit_nulls(false)
                    .build::<_, LineDelimited>(&mut json);
                w.write(&slice).map_err(|e| {
                    (
                        rows + start as u64 + 1,
                        ProblemKind::WrongType,
                        format!("a column JSON cannot hold: {e}"),
                    )
                })?;
                w.finish()
                    .map_err(|e| corrupt(rows + start as u64 + 1, &e))?;
                drop(w);
                Ok(json)
            })
            .collect();
        for (start, json) in starts.into_iter().zip(encoded) {
            let first = rows + start as u64;
            let done = (first + per.min(n - start) as u64) as f64 / total_rows.max(1) as f64;
            if !sink(json?, first, done) {
                return Ok(());
            }
        }
        rows += n as u64;
    }
    Ok(())
}

/// The batch with each binary column (and list of binary) made a string column, each value
/// checked as UTF-8; a value that is not is a `wrong_type` problem at its row.
fn binary_as_text(
    batch: arrow_array::RecordBatch,
    rows_before: u64,
) -> Result<arrow_array::RecordBatch, Box<FileProblem>> {
    use arrow_schema::DataType;
    let is_binary = |t: &DataType| {
        matches!(
            t,
            DataType::Binary
                | DataType::LargeBinary
                | DataType::BinaryView
                | DataType::FixedSizeBinary(_)
        )
    };
    let schema = batch.schema();
    let touched = schema.fields().iter().any(|f| match f.data_type() {
        DataType::List(inner) | DataType::LargeList(inner) => is_binary(inner.data_type()),
        t => is_binary(t),
    });
    if !touched {
        return Ok(batch);
    }
    let mut fields = Vec::new();
    let mut arrays = Vec::new();
    for (field, array) in schema.fields().iter().zip(batch.columns()) {
        let converted = as_text(array.as_ref()).map_err(|row| {
            Box::new((
                rows_before + row as u64 + 1,
                ProblemKind::WrongType,
                format!(
                    "column `{}` is binary, and this row's value is not UTF-8 text",
                    field.name()
                ),
            ))
        })?;
        match converted {
            Some(a) => {
                fields.push(std::sync::Arc::new(arrow_schema::Field::new(
                    field.name(),
                    a.data_type().clone(),
                    field.is_nullable(),
                )));
                arrays.push(a);
            }
            None => {
                fields.push(field.clone());
                arrays.push(array.clone());
            }
        }
    }
    arrow_array::RecordBatch::try_new(
        std::sync::Arc::new(arrow_schema::Schema::new(fields)),
        arrays,
    )
    .map_err(|e| {
        Box::new((
            rows_before + 1,
            ProblemKind::Compression,
            format!("not a readable Parquet file: {e}"),
        ))
    })
}

/// A binary array (or list of one) as strings; `Err(row)`: that row is not UTF-8; `None`: not
/// binary.
fn as_text(a: &dyn arrow_array::Array) -> Result<Option<arrow_array::ArrayRef>, usize> {
    use arrow_array::cast::AsArray;
    use arrow_array::{Array, ArrayRef, StringArray};
    use arrow_schema::DataType;
    use std::sync::Arc;
    let strings = |values: Vec<Option<&[u8]>>| -> Result<ArrayRef, usize> {
        let mut out = Vec::with_capacity(values.len());
        for (row, v) in values.into_iter().enumerate() {
            out.push(match v {
                Some(b) => Some(std::str::from_utf8(b).map_err(|_| row)?),
                None => None,
            });
        }
        Ok(Arc::new(StringArray::from(out)))
    };
    Ok(Some(match a.data_type() {
        DataType::Binary => strings(a.as_binary::<i32>().iter().collect())?,
        DataType::LargeBinary => strings(a.as_binary::<i64>().iter().collect())?,
        DataType::BinaryView => strings(a.as_binary_view().iter().collect())?,
        DataType::FixedSizeBinary(_) => strings(a.as_fixed_size_binary().iter().collect())?,
        DataType::List(_) | DataType::LargeList(_) => {
            let large = matches!(a.data_type(), DataType::LargeList(_));
            let (values, offsets): (ArrayRef, Vec<usize>) = if large {
                let l = a.as_list::<i64>();
                (
                    l.values().clone(),
                    l.offsets().iter().map(|o| *o as usize).collect(),
                )
            } else {
                let l = a.as_list::<i32>();
                (
                    l.values().clone(),
                    l.offsets().iter().map(|o| *o as usize).collect(),
                )
            };
            // A bad element is reported at the row whose list holds it.
            let Some(text) = as_text(values.as_ref()).map_err(|element| {
                offsets
                    .windows(2)
                    .position(|w| w[0] <= element && element < w[1])
                    .unwrap_or(0)
            })?
            else {
                return Ok(None);
            };
            let field = Arc::new(arrow_schema::Field::new_list_field(DataType::Utf8, true));
            if large {
                let l = a.as_list::<i64>();
                Arc::new(arrow_array::LargeListArray::new(
                    field,
                    l.offsets().clone(),
                    text,
                    l.nulls().cloned(),
                ))
            } else {
                let l = a.as_list::<i32>();
                Arc::new(arrow_array::ListArray::new(
                    field,
                    l.offsets().clone(),
                    text,
                    l.nulls().cloned(),
                ))
            }
        }
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, ListArray, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::{EnabledStatistics, WriterProperties};

    use crate::read::{read_records, Item, OnError, ReadOptions};
    use crate::schema::PyTorrentFields;

    const READS: PyTorrentFields = PyTorrentFields(&["repo", "code"]);

    /// Three PyTorrent rows; `url` of row 2 is null when `null_url`, and the `url` column is
    /// left out entirely when `drop_url`.
    fn write(path: &std::path::Path, null_url: bool, drop_url: bool, stats: bool) {
        let s = |v: [Option<&str>; 3]| Arc::new(StringArray::from(v.to_vec())) as ArrayRef;
        let list = |v: [&[&str]; 3]| {
            let values: Vec<&str> = v.iter().flat_map(|l| l.iter().copied()).collect();
            let mut offsets = vec![0i32];
            for l in v {
                offsets.push(offsets.last().unwrap() + l.len() as i32);
            }
            Arc::new(ListArray::new(
                Arc::new(Field::new_list_field(DataType::Utf8, true)),
                arrow_buffer::OffsetBuffer::new(offsets.into()),
                Arc::new(StringArray::from(values)),
                None,
            )) as ArrayRef
        };
        let mut cols: Vec<(&str, ArrayRef)> = vec![
            ("repo", s([Some("a"), Some("b"), Some("c")])),
            ("path", s([Some("m.py"); 3])),
            ("func_name", s([Some("f"); 3])),
            ("original_string", s([Some("def f(): pass"); 3])),
            ("language", s([Some("python"); 3])),
            (
                "code",
                s([Some("def f(): pass"), Some("def g(): pass"), Some("x")]),
            ),
            ("code_tokens", list([&["def", "f"], &[], &["x"]])),
            ("docstring", s([Some("Does f."); 3])),
            ("docstring_tokens", list([&["Does"], &["Does"], &["Does"]])),
            (
                "url",
                s([
                    Some("m.py#L1-L1"),
                    (!null_url).then_some("m.py#L2-L2"),
                    Some("m.py#L3-L3"),
                ]),
            ),
            ("partition", s([Some("train"); 3])),
        ];
        if drop_url {
            cols.retain(|(n, _)| *n != "url");
        }
        let schema = Arc::new(Schema::new(
            cols.iter()
                .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
                .collect::<Vec<_>>(),
        ));
        let batch =
            RecordBatch::try_new(schema.clone(), cols.into_iter().map(|(_, a)| a).collect())
                .unwrap();
        let props = WriterProperties::builder()
            .set_statistics_enabled(if stats {
                EnabledStatistics::Chunk
            } else {
                EnabledStatistics::None
            })
            .build();
        let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, Some(props))
            .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    /// The raw lines read with the narrow schema, and the problems (skip policy).
    fn read(path: &std::path::Path) -> (Vec<String>, Vec<String>) {
        let files = crate::source::discover(&[path.to_path_buf()]).unwrap();
        let opts = ReadOptions {
            on_error: OnError::Skip,
            ..ReadOptions::default()
        };
        let (mut lines, mut problems) = (Vec::new(), Vec::new());
        read_records(
            &files,
            &opts,
            &READS,
            &pytorrent_io::reporter::Silent,
            |_, line, rec| {
                (
                    String::from_utf8_lossy(line.bytes).into_owned(),
                    rec.code.len(),
                )
            },
            |item| {
                match item {
                    Item::Record { value, .. } => lines.push(value.0),
                    Item::Rejected { problem } => problems.push(problem.to_string()),
                }
                Ok::<(), crate::Error>(())
            },
        )
        .unwrap();
        (lines, problems)
    }

    #[test]
    fn unread_columns_are_proven_complete_or_checked() {
        let dir = tempfile::tempdir().unwrap();
        for stats in [true, false] {
            // Complete: every row is a record; unread strings and lists stand in empty.
            let p = dir.path().join(format!("ok-{stats}.parquet"));
            write(&p, false, false, stats);
            let (lines, problems) = read(&p);
            assert_eq!((lines.len(), problems.len()), (3, 0), "{problems:?}");
            assert!(
                lines[0].contains(r#""code":"def f(): pass""#),
                "{}",
                lines[0]
            );
            assert!(lines[0].contains(r#""original_string":"""#), "{}", lines[0]);
            assert!(lines[0].contains(r#""code_tokens":[]"#), "{}", lines[0]);

            // A null in an unread required column is the row's problem, named by row.
            let p = dir.path().join(format!("null-{stats}.parquet"));
            write(&p, true, false, stats);
            let (lines, problems) = read(&p);
            assert_eq!(lines.len(), 2);
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(
                problems[0].contains(".parquet:2: missing required field `url`"),
                "{}",
                problems[0]
            );
        }
        // A required column missing from the file is said so, once.
        let p = dir.path().join("no-url.parquet");
        write(&p, false, true, true);
        let (lines, problems) = read(&p);
        assert!(lines.is_empty());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains(":1: no column `url`"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn binary_columns_are_read_as_text_or_refused_by_row() {
        use super::read_as_json_lines;
        use crate::ProblemKind;
        use arrow_array::{Array, BinaryArray, LargeListArray};
        let dir = tempfile::tempdir().unwrap();
        let write_binary = |path: &std::path::Path, code: Vec<&[u8]>| {
            let n = code.len();
            let tokens = LargeListArray::new(
                Arc::new(Field::new_list_field(DataType::Binary, true)),
                arrow_buffer::OffsetBuffer::<i64>::from_lengths(std::iter::repeat_n(1, n)),
                Arc::new(BinaryArray::from(vec![&b"tok"[..]; n])),
                None,
            );
            let schema = Arc::new(Schema::new(vec![
                Field::new("code", DataType::Binary, false),
                Field::new("code_tokens", tokens.data_type().clone(), false),
            ]));
            let cols: Vec<ArrayRef> = vec![Arc::new(BinaryArray::from(code)), Arc::new(tokens)];
            let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
            let mut w =
                ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
            w.write(&batch).unwrap();
            w.close().unwrap();
        };
        let lines = |path: &std::path::Path| {
            let mut out = Vec::new();
            let r = read_as_json_lines(path, None, &[], 1 << 20, &mut |b, _, _| {
                out.extend(String::from_utf8(b).unwrap().lines().map(str::to_owned));
                true
            });
            (r, out)
        };
        let ok = dir.path().join("ok.parquet");
        write_binary(&ok, vec![b"def f(): pass", "def \u{e9}(): pass".as_bytes()]);
        let (r, got) = lines(&ok);
        r.unwrap();
        assert_eq!(
            got,
            [
                r#"{"code":"def f(): pass","code_tokens":["tok"]}"#,
                r#"{"code":"def é(): pass","code_tokens":["tok"]}"#
            ],
            "text, not hex digits"
        );
        let bad = dir.path().join("bad.parquet");
        write_binary(&bad, vec![b"def f(): pass", b"\xff\xfe"]);
        let (r, _) = lines(&bad);
        let (row, kind, message) = r.unwrap_err();
        assert_eq!((row, kind), (2, ProblemKind::WrongType), "{message}");
        assert!(message.contains("column `code` is binary"), "{message}");
    }
}
