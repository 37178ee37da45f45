use std::process::ExitCode;

use anyhow::Result;

use crate::cli::Global;

#[allow(unused_variables)]
pub async fn run(global: &Global) -> Result<ExitCode> {
    anyhow::bail!("drover doctor is being built")
}
