use std::process::ExitCode;

use anyhow::Result;
use drover_fleet::Operation;

use crate::cli::Global;

/// `stop` every task of the jobs and mark them stopped on their hosts, so
/// `up` leaves them stopped; or `start` them: clear the marks and converge
/// the jobs to the files (a change made to a file meanwhile comes with it).
pub async fn run(global: &Global, jobs: &[String], stop: bool) -> Result<ExitCode> {
    let jobs = jobs.to_vec();
    let operation = if stop {
        Operation::Stop { jobs }
    } else {
        Operation::Start { jobs }
    };
    super::change::run(global, operation).await
}
