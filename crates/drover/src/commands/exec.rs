use std::process::ExitCode;

use anyhow::Result;

use crate::cli::Global;

#[allow(unused_variables)]
pub async fn run(
    global: &Global,
    job: &str,
    task: Option<&str>,
    all: bool,
    command: &[String],
) -> Result<ExitCode> {
    anyhow::bail!("drover exec is being built")
}
