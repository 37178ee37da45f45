use std::process::ExitCode;

use anyhow::Result;
use drover_fleet::Operation;

use crate::cli::Global;

/// Converges the jobs (all of them when none is named) to the files.
pub async fn run(global: &Global, jobs: &[String]) -> Result<ExitCode> {
    super::change::run(
        global,
        Operation::Up {
            jobs: jobs.to_vec(),
        },
    )
    .await
}
