//! Reading, validating, filtering, converting and describing PyTorrent / CodeSearchNet
//! JSONL corpora, streaming and in bounded memory.
//!
//! The entry point is [`read::read_corpus`]: give it the files from [`source::discover`], a
//! `map` run in parallel on each [`RecordRef`] and a `sink` that sees results in input order.

pub mod error;
pub mod filter;
pub mod license;
pub mod lines;
pub mod metadata;
pub mod optout;
pub mod read;
pub mod record;
pub mod report;
pub mod source;
pub mod stats;
pub mod texts;
pub mod writer;

pub use error::{Error, Problem, ProblemKind, Result};
pub use read::{read_corpus, Item, OnError, Progress, ReadOptions, ReadSummary};
pub use record::{Partition, Record, RecordRef, TextView};
pub use source::{discover, InputFile};
