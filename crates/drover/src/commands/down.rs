use std::process::ExitCode;

use anyhow::Result;
use drover_fleet::Operation;

use crate::cli::Global;

/// Removes every container of the named jobs on every host (a job may have
/// moved, or its file may be gone). Host directories are not touched.
pub async fn run(global: &Global, jobs: &[String]) -> Result<ExitCode> {
    let fleet = super::load(global)?;
    for name in jobs.iter().filter(|n| !fleet.env.jobs.contains_key(*n)) {
        eprintln!("note: job {name:?} is not in the spec; removing the containers it left");
    }
    super::change::run(
        global,
        Operation::Down {
            jobs: jobs.to_vec(),
        },
    )
    .await
}
