//! The pretrain crate's integration tests, in one test binary (each test binary links the
//! whole dependency tree; one per crate keeps the build small).

mod exactness;
mod training;
