use std::process::ExitCode;

use anyhow::Result;

use crate::cli::Global;

#[allow(unused_variables)]
pub async fn run(
    global: &Global,
    job: &str,
    artifact: &std::path::Path,
    tag: Option<&str>,
) -> Result<ExitCode> {
    anyhow::bail!("drover package is being built")
}
