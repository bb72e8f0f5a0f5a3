//! End-to-end tests of the `pytorrent` binary, one module per stage, in one test binary (one
//! link of the whole program instead of one per file).

#[macro_use]
pub mod util;

pub(crate) mod conda;
mod corpus;
mod dedup;
mod defects;
mod eval;
pub(crate) mod extract;
mod faults;
pub(crate) mod fetch;
pub(crate) mod fetch_faults;
mod finetune;
mod fuzz_replay;
mod generic;
mod gpu_script;
mod layout;
mod model;
mod pack;
mod pretrain;
mod quality;
mod resume;
mod run;
mod tokenizer;
mod trust;
