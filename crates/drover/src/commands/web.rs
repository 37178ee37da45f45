use std::process::ExitCode;

use anyhow::Result;

use crate::cli::Global;

#[allow(unused_variables)]
pub async fn run(
    global: &Global,
    listen: &str,
    tls_cert: Option<&std::path::Path>,
    tls_key: Option<&std::path::Path>,
) -> Result<ExitCode> {
    anyhow::bail!("drover web is being built")
}
