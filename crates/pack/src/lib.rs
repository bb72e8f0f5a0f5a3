//! Packing a corpus into fixed-length blocks and writing them as shards a pretraining job
//! reads directly.
//!
//! - [`packer`] — `concat` (RoBERTa FULL-SENTENCES, what `run_mlm.py`'s `group_texts` does)
//!   and `record` (one record per row, truncated and padded, with an attention mask).
//! - [`plan`] — the documented shuffle, segment and task-split scheme.
//! - [`mask`] — static MLM masking (80/10/10, whole-word option).
//! - [`npy`], [`megatron`], [`shards`] — the on-disk formats and shard rollover.
//! - [`pipeline`] — corpus → shards with a manifest, resumable; [`merge`] combines tasks;
//!   [`verify`] and [`inspect`] read shards back.

pub mod error;
pub mod inspect;
pub mod mask;
pub mod megatron;
pub mod merge;
pub mod npy;
pub mod packer;
pub mod pipeline;
pub mod plan;
pub mod shards;
pub mod verify;

pub use error::{Error, Result};
pub use packer::{Block, Mode, PackOptions, Packer, Remainder};
