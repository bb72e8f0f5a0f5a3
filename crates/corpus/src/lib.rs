//! The corpus stage: reading, validating, filtering, converting and describing PyTorrent /
//! CodeSearchNet JSONL corpora, streaming and in bounded memory.
//!
//! The entry point for readers is [`read::read_corpus`]: give it the files from
//! [`source::discover`], a `map` run in parallel on each [`RecordRef`] and a `sink` that sees
//! results in input order; [`texts::with_texts`] pulls one text view instead.
//!
//! The stage's commands each have a typed config and a `run`: [`validate`], [`stats`]
//! (with the HTML report of the `report` feature), [`filter`] and [`convert`]. Every config
//! that reads a corpus flattens an [`InputConfig`].

pub mod convert;
pub mod dedup;
pub mod error;
pub mod filter;
pub mod input;
pub mod license;
pub mod lines;
pub mod metadata;
pub mod optout;
pub mod parquet_in;
pub mod parquet_out;
pub mod read;
pub mod record;
#[cfg(feature = "report")]
pub mod report;
pub mod schema;
pub mod select;
pub mod source;
pub mod stats;
pub mod texts;
pub mod validate;
pub mod writer;

pub use error::{Error, Problem, ProblemKind, Result};
pub use input::InputConfig;
pub use read::{read_corpus, read_records, Item, OnError, ReadOptions, ReadSummary};
pub use record::{Partition, Record, RecordRef, TextView};
pub use schema::{AnyRecord, TextSource};
pub use select::{Excluded, PartitionRule, Partitions};
pub use source::{discover, InputFile};
