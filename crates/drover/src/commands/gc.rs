use std::process::ExitCode;

use anyhow::Result;

use crate::cli::Global;

#[allow(unused_variables)]
pub async fn run(global: &Global, dry_run: bool) -> Result<ExitCode> {
    anyhow::bail!("drover gc is being built")
}
