use std::process::ExitCode;

use anyhow::{Context as _, Result};
use drover_fleet::Operation;
use drover_spec::ImageRef;

use crate::cli::Global;

/// The rollout alone: refresh the job's image on its hosts, then replace its
/// tasks batch by batch, optionally to another image without touching the file.
pub async fn run(
    global: &Global,
    job: &str,
    image: Option<&str>,
    parallel: Option<u32>,
) -> Result<ExitCode> {
    let image: Option<ImageRef> = image
        .map(|i| i.parse().map_err(anyhow::Error::msg).context("--image"))
        .transpose()?;
    super::change::run(
        global,
        Operation::RollingUpdate {
            job: job.to_string(),
            image,
            parallel,
        },
    )
    .await
}
