//! drover's environment as code: the TOML files, parsed and validated.
//!
//! Two stages, as ripgrep does with its arguments: [`raw`] mirrors the files
//! with spans kept, and [`load`] turns them into an [`Environment`] whose
//! values are all usable, or into a list of `file:line:col: message` errors.
//! No I/O beyond reading the directory; no Docker.

mod load;
mod model;
pub mod raw;
mod source;
pub mod units;

use std::path::PathBuf;

pub use load::{find_dir, is_valid_name, load, parse_docker_address};
pub use model::*;
pub use source::Diagnostic;

/// Why an environment could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("no drover.toml in {} or any parent directory (use -C DIR or DROVER_DIR)", start.display())]
    NotFound { start: PathBuf },
    #[error("stage {stage:?} has no file {}", path.display())]
    MissingStage { stage: String, path: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Diagnostic>),
}
