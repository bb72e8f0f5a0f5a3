//! Packing token ids into fixed-length blocks and writing them as shards a pretraining job
//! reads directly.
//!
//! - [`packer`] — `concat` (RoBERTa FULL-SENTENCES, what `run_mlm.py`'s `group_texts` does)
//!   and `record` (one record per row, truncated and padded, with an attention mask).
//! - [`npy`] — streaming `.npy` shards (uint16 when the vocabulary fits, else int32) that
//!   numpy memory-maps.

pub mod npy;
pub mod packer;
pub mod verify;

pub use packer::{Block, Mode, PackOptions, Packer, Remainder};
