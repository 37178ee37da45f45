use std::process::ExitCode;

use anyhow::Result;
use drover_fleet::Operation;

use crate::cli::Global;

/// Every running task restarted in place (same container), batch by batch, gated on health.
pub async fn run(global: &Global, job: &str, parallel: Option<u32>) -> Result<ExitCode> {
    super::change::run(
        global,
        Operation::Restart {
            job: job.to_string(),
            parallel,
        },
    )
    .await
}
