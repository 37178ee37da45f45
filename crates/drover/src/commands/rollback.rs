use std::process::ExitCode;

use anyhow::Result;
use drover_fleet::Operation;

use crate::cli::Global;

/// Every task back to its previous generation: its kept container started
/// again (no pull), or recreated from its record if it is gone.
pub async fn run(global: &Global, job: &str) -> Result<ExitCode> {
    super::change::run(
        global,
        Operation::Rollback {
            job: job.to_string(),
        },
    )
    .await
}
