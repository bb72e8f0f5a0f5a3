//! Turning Python packages into <NL, code> pairs.
//!
//! - [`archive`]: sdists, wheels and folders read in memory under [`archive::Limits`], with a
//!   typed reason for every member or archive refused.
//! - [`python`]: functions and methods (qualified names, `def` ranges, docstrings cleaned as
//!   `ast.get_docstring` does) from `ruff_python_parser`, which recovers from syntax errors.
//!
//! Records, scenarios, filters, dedup and the `pytorrent extract` / `pytorrent fetch`
//! commands build on these.

pub mod archive;
pub mod dedup;
pub mod fetch;
pub mod package;
pub mod python;
pub mod scrub;
pub mod units;
