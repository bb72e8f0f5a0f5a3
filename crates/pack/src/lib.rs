//! Packing a corpus into fixed-length blocks and writing them as shards a pretraining job
//! reads directly.
//!
//! - [`packer`] — `concat` (RoBERTa FULL-SENTENCES, what `run_mlm.py`'s `group_texts` does)
//!   and `record` (one record per row, truncated and padded, with an attention mask).
//! - [`plan`] — the documented shuffle, segment and task-split scheme.
//! - [`mask`] — static MLM masking (80/10/10, whole-word option).
//! - [`megatron`], [`shards`] — the on-disk formats and shard rollover (npy files come from
//!   `pytorrent_io::npy`); [`manifest`] — what a packed folder says about itself.
//! - [`config`] — the typed [`PackConfig`] (with the [`Settings`] that decide the bytes);
//!   [`pipeline::run`] — corpus → shards with a manifest, resumable, one task of several.
//! - The `shards` commands, each with a config and a `run`: [`verify`], [`inspect`] (read
//!   shards back) and [`merge`] (combine task outputs).

pub mod config;
pub mod error;
pub mod inspect;
pub mod manifest;
pub mod mask;
pub mod megatron;
pub mod merge;
pub mod packer;
pub mod parquet_shards;
pub mod pipeline;
pub mod plan;
pub mod shards;
pub mod verify;

pub use config::{PackConfig, Settings};
pub use error::{Error, Result};
pub use packer::{Block, Mode, PackOptions, Packer, Remainder};
pub use pipeline::{run, Pack, PackReport};
