//! Turning Python packages into <NL, code> pairs.
//!
//! - [`archive`]: sdists, wheels and folders read in memory under [`archive::Limits`], with a
//!   typed reason for every member or archive refused.
//! - [`python`]: functions and methods (qualified names, `def` ranges, docstrings cleaned as
//!   `ast.get_docstring` does) from `ruff_python_parser`, which recovers from syntax errors.
//!
//! - [`package`]: one package → records of each scenario, with filters, opt-out and
//!   scrubbing ([`scrub`]); [`units`]: what each scenario pairs; [`dedup`]: exact and near
//!   duplicates.
//!
//! The stage has a typed config and a `run`: [`run`] (packages → a PyTorrent corpus);
//! downloading the packages is `pytorrent-fetch`'s.

pub mod archive;
pub use pytorrent_corpus::dedup;
pub mod error;
pub mod journal;
pub mod package;
pub mod python;
pub mod run;
pub mod scrub;
pub mod staged;
pub mod units;
pub mod vendored;
pub mod window;

pub use error::{Error, Result};
pub use run::{Extract, ExtractConfig, ExtractReport};
