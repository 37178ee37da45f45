use std::process::ExitCode;

use anyhow::Result;

use crate::cli::Global;

#[allow(unused_variables)]
pub async fn run(
    global: &Global,
    job: &str,
    task: Option<&str>,
    follow: bool,
    tail: Option<usize>,
    since: Option<&str>,
) -> Result<ExitCode> {
    anyhow::bail!("drover logs is being built")
}
