//! Downloading packages: the JSON metadata document of each project (kept in PyTorrent's
//! `Package_Metadata/pypi_packages/<name>.json` layout) and one release archive (sdist
//! preferred, wheel as fallback), checked against the sha256 the metadata gives; or conda
//! channels' packages with Anaconda documents.
//!
//! The index is never built in: it comes from the caller (flags, `PYTORRENT_INDEX_URL`,
//! pip's own configuration, or the local pip's default), so the tool follows the user's pip,
//! mirrors included. Everything the index sends passes one check (names, sizes) before it
//! becomes a path or an allocation.
//!
//! - [`http`]: GET with retries, rate and size limits.
//! - [`index`]: which index, and the projects it lists.
//! - [`select`]: which release and which file of it.
//! - [`pypi`]: one project → metadata document and archive.
//! - [`conda`]: conda channels.
//! - [`run`]: the stage (`FetchConfig` → `FetchReport`), over threads and array-job tasks.

pub mod conda;
pub mod error;
pub mod http;
pub mod index;
pub mod pypi;
pub mod run;
pub mod select;

pub use error::{Error, Result};
pub use http::{agent, RateLimiter};
pub use index::{json_api_from_index, resolve_index, IndexChoice};
pub use pypi::{fetch, FailReason, FetchOptions, Outcome};
pub use run::{run, Fetch, FetchConfig, FetchReport};
pub use select::{parse_as_of, parse_requirement};
