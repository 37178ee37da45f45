//! The shared test kit, bound to this crate's `drover` binary.

#![allow(dead_code, unused_imports)]

pub use drover_testkit::cli::{Drover, Env, Output};
pub use drover_testkit::hosts::Cluster;
pub use drover_testkit::{fixtures, unindent};

pub const BIN: &str = env!("CARGO_BIN_EXE_drover");

/// An environment in a temporary directory (with an empty `jobs/`).
pub fn env() -> Env {
    Env::new(BIN)
}

/// A test environment named `name` on the suite's hosts h1 and h2.
pub fn cluster(name: &str, extra_hosts: &str) -> Cluster {
    Cluster::new(BIN, name, extra_hosts)
}
