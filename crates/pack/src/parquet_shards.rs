//! Parquet shards: one row a sequence, columns `input_ids` (list of uint16 or int32, as the
//! vocabulary needs), `attention_mask` (list of int8, when rows hold padding) and `labels`
//! (list of int32, -100 where nothing is predicted, with static masks) — what
//! `datasets.load_dataset("parquet", data_files=…)` and a `run_mlm.py`-style trainer read,
//! streaming or not. Written under a temporary name, renamed when complete.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{Int32Builder, Int8Builder, ListBuilder, UInt16Builder};
use arrow_array::{Array, ArrayRef, ListArray, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use pytorrent_io::npy::Dtype;
use pytorrent_io::Error;

use crate::shards::Row;

/// Rows gathered before they are written as one Arrow batch.
const BATCH_ROWS: usize = 1024;

fn list(name: &str, item: DataType) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("item", item, false))),
        false,
    )
}

/// The columns of a shard.
pub fn schema(ids: Dtype, attention_mask: bool, labels: bool) -> SchemaRef {
    let id_type = match ids {
        Dtype::Uint16 => DataType::UInt16,
        _ => DataType::Int32,
    };
    let mut fields = vec![list("input_ids", id_type)];
    if attention_mask {
        fields.push(list("attention_mask", DataType::Int8));
    }
    if labels {
        fields.push(list("labels", DataType::Int32));
    }
    Arc::new(Schema::new(fields))
}

fn err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::format(path, format!("Parquet: {e}"))
}

/// One Parquet shard being written.
pub struct ParquetShardWriter {
    tmp: PathBuf,
    path: PathBuf,
    schema: SchemaRef,
    writer: Option<ArrowWriter<File>>,
    pending: Vec<Row>,
    rows: usize,
    bytes: u64,
}

impl ParquetShardWriter {
    pub fn create(path: &Path, schema: SchemaRef) -> Result<ParquetShardWriter, Error> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let tmp = pytorrent_io::atomic::temp_name(path);
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(3).expect("a valid level"),
            ))
            .build();
        let writer =
            ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(|e| err(&tmp, e))?;
        Ok(ParquetShardWriter {
            tmp,
            path: path.to_path_buf(),
            schema,
            writer: Some(writer),
            pending: Vec::new(),
            rows: 0,
            bytes: 0,
        })
    }

    /// Appends a row (`width`: bytes an id takes, for rollover by size).
    pub fn push(&mut self, row: &Row, width: usize) -> Result<(), Error> {
        self.bytes += (row.ids.len() * width) as u64;
        self.pending.push(row.clone());
        self.rows += 1;
        if self.pending.len() >= BATCH_ROWS {
            self.write_pending()?;
        }
        Ok(())
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes of ids so far (for rollover by size).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    fn write_pending(&mut self) -> Result<(), Error> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut columns: Vec<ArrayRef> = Vec::new();
        for f in self.schema.fields() {
            columns.push(match (f.name().as_str(), f.data_type()) {
                ("input_ids", DataType::List(item)) if *item.data_type() == DataType::UInt16 => {
                    let mut b = ListBuilder::new(UInt16Builder::new()).with_field(item.clone());
                    for r in &self.pending {
                        b.values()
                            .append_slice(&r.ids.iter().map(|v| *v as u16).collect::<Vec<_>>());
                        b.append(true);
                    }
                    Arc::new(b.finish())
                }
                ("input_ids", DataType::List(item)) => {
                    let mut b = ListBuilder::new(Int32Builder::new()).with_field(item.clone());
                    for r in &self.pending {
                        b.values()
                            .append_slice(&r.ids.iter().map(|v| *v as i32).collect::<Vec<_>>());
                        b.append(true);
                    }
                    Arc::new(b.finish())
                }
                ("attention_mask", DataType::List(item)) => {
                    let mut b = ListBuilder::new(Int8Builder::new()).with_field(item.clone());
                    for r in &self.pending {
                        b.values().append_slice(
                            &r.attention.iter().map(|v| *v as i8).collect::<Vec<_>>(),
                        );
                        b.append(true);
                    }
                    Arc::new(b.finish())
                }
                (_, DataType::List(item)) => {
                    let mut b = ListBuilder::new(Int32Builder::new()).with_field(item.clone());
                    for r in &self.pending {
                        b.values()
                            .append_slice(r.labels.as_deref().expect("labels with static masks"));
                        b.append(true);
                    }
                    Arc::new(b.finish())
                }
                _ => unreachable!("every column is a list"),
            });
        }
        let batch =
            RecordBatch::try_new(self.schema.clone(), columns).map_err(|e| err(&self.tmp, e))?;
        let w = self.writer.as_mut().expect("open until finished");
        w.write(&batch).map_err(|e| err(&self.tmp, e))?;
        self.pending.clear();
        Ok(())
    }

    /// Writes the footer, syncs and renames to the final name.
    pub fn finish(mut self) -> Result<PathBuf, Error> {
        self.write_pending()?;
        let w = self.writer.take().expect("finished once");
        let file = w.into_inner().map_err(|e| err(&self.tmp, e))?;
        file.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        Ok(self.path.clone())
    }
}

impl Drop for ParquetShardWriter {
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// One stored row of a Parquet shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParquetRow {
    pub ids: Vec<i64>,
    pub attention_mask: Option<Vec<i64>>,
    pub labels: Option<Vec<i64>>,
}

fn values(list: &ListArray, i: usize) -> Vec<i64> {
    arrow_cast_i64(&list.value(i))
}

fn arrow_cast_i64(a: &ArrayRef) -> Vec<i64> {
    use arrow_array::types::{Int32Type, Int8Type, UInt16Type};
    match a.data_type() {
        DataType::UInt16 => widen::<UInt16Type>(a),
        DataType::Int32 => widen::<Int32Type>(a),
        DataType::Int8 => widen::<Int8Type>(a),
        _ => Vec::new(),
    }
}

/// The values of a primitive array as i64.
fn widen<T>(a: &ArrayRef) -> Vec<i64>
where
    T: arrow_array::types::ArrowPrimitiveType,
    T::Native: Into<i64>,
{
    use arrow_array::cast::AsArray;
    a.as_primitive::<T>()
        .values()
        .iter()
        .map(|v| (*v).into())
        .collect()
}

/// Rows `start..start + count` of a Parquet shard (fewer at its end), and how many it holds.
pub fn read_rows(
    path: &Path,
    start: usize,
    count: usize,
) -> Result<(Vec<ParquetRow>, usize), Error> {
    pytorrent_io::guard_decoder(|| read_rows_unguarded(path, start, count))
        .unwrap_or_else(|m| Err(err(path, m)))
}

fn read_rows_unguarded(
    path: &Path,
    start: usize,
    count: usize,
) -> Result<(Vec<ParquetRow>, usize), Error> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| err(path, e))?;
    let total = builder.metadata().file_metadata().num_rows().max(0) as usize;
    let reader = builder.build().map_err(|e| err(path, e))?;
    let mut out = Vec::new();
    let mut at = 0usize;
    for batch in reader {
        let batch = batch.map_err(|e| err(path, e))?;
        let n = batch.num_rows();
        let column = |name: &str| -> Option<ListArray> {
            use arrow_array::cast::AsArray;
            batch
                .column_by_name(name)
                .and_then(|c| c.as_list_opt::<i32>().cloned())
        };
        let ids = column("input_ids").ok_or_else(|| err(path, "no input_ids column"))?;
        let (mask, labels) = (column("attention_mask"), column("labels"));
        for i in 0..n {
            let r = at + i;
            if r >= start && r < start + count {
                out.push(ParquetRow {
                    ids: values(&ids, i),
                    attention_mask: mask.as_ref().map(|m| values(m, i)),
                    labels: labels.as_ref().map(|l| values(l, i)),
                });
            }
        }
        at += n;
        if at >= start + count {
            break;
        }
    }
    Ok((out, total))
}

/// Every row of a Parquet shard, in batches, for checking.
pub fn for_each_row(
    path: &Path,
    f: impl FnMut(usize, &ParquetRow) -> Option<String>,
) -> Result<Option<String>, Error> {
    pytorrent_io::guard_decoder(|| for_each_row_unguarded(path, f))
        .unwrap_or_else(|m| Err(err(path, m)))
}

fn for_each_row_unguarded(
    path: &Path,
    mut f: impl FnMut(usize, &ParquetRow) -> Option<String>,
) -> Result<Option<String>, Error> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| err(path, e))?
        .build()
        .map_err(|e| err(path, e))?;
    let mut at = 0usize;
    for batch in reader {
        let batch = batch.map_err(|e| err(path, e))?;
        let column = |name: &str| -> Option<ListArray> {
            use arrow_array::cast::AsArray;
            batch
                .column_by_name(name)
                .and_then(|c| c.as_list_opt::<i32>().cloned())
        };
        let ids = column("input_ids").ok_or_else(|| err(path, "no input_ids column"))?;
        let (mask, labels) = (column("attention_mask"), column("labels"));
        for i in 0..batch.num_rows() {
            let row = ParquetRow {
                ids: values(&ids, i),
                attention_mask: mask.as_ref().map(|m| values(m, i)),
                labels: labels.as_ref().map(|l| values(l, i)),
            };
            if let Some(problem) = f(at + i, &row) {
                return Ok(Some(problem));
            }
        }
        at += batch.num_rows();
    }
    Ok(None)
}
