//! drover's environment as code: the TOML files, parsed and validated.
//!
//! Two stages, as ripgrep does with its arguments: [`raw`] mirrors the files
//! with spans kept, and [`load`] turns them into an [`Environment`] whose
//! values are all usable, or into a list of `file:line:col: message` errors.
//! No I/O beyond reading the directory (and [`edit`] writing one value back);
//! no Docker.

mod checks;
pub mod edit;
mod job;
mod load;
mod merge;
mod model;
mod notify;
pub mod raw;
mod read;
mod release;
mod settings;
mod source;
pub mod units;
pub mod values;

use std::path::PathBuf;

pub use job::RESERVED_ENV_PREFIX;
pub use load::{load, load_with};
pub use model::*;
pub use read::find_dir;
pub use source::{Diagnostic, Place};
pub use values::check_name;

/// Why an environment could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("no drover.toml in {} or any parent directory (use -C DIR or DROVER_DIR)", start.display())]
    NotFound { start: PathBuf },
    #[error("no drover.toml in {} (use -C DIR with the directory that holds drover.toml)", dir.display())]
    NoEnvironment { dir: PathBuf },
    #[error("no jobs/ directory in {}: is this the environment directory? (create jobs/, even empty, to declare an environment without jobs)", dir.display())]
    NoJobsDir { dir: PathBuf },
    #[error("stage {stage:?} has no file {}", path.display())]
    MissingStage { stage: String, path: PathBuf },
    #[error("-e: {message}")]
    BadStage { message: String },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Diagnostic>),
}
