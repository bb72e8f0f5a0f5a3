//! The extract crate's integration tests, in one test binary (each test binary links the
//! whole dependency tree; one per crate keeps the build small).

mod hostile;
mod reference_records;
mod scrub_labelled;
mod stages;
