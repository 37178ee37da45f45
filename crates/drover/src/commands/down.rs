use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::{bail, Result};
use drover_fleet::{list, Fleet};
use drover_plan::ops::plan_down;

use super::change::{execute, Change};
use crate::cli::Global;

/// Removes every container of the named jobs on every host (a job may have
/// moved, or its file may be gone). Host directories are not touched.
pub async fn run(global: &Global, names: &[String]) -> Result<ExitCode> {
    let fleet = super::load(global)?;
    let jobs: BTreeSet<String> = names.iter().cloned().collect();
    let connections = fleet.connect_all().await;
    let replan = async || {
        let observed = fleet.observe(&connections, &Fleet::scope(names)).await;
        Ok(plan_down(
            &fleet.env.name,
            &jobs,
            &observed,
            &fleet.known_hosts(),
        ))
    };
    let plan = replan().await?;
    // A job neither in the spec nor on any host is a typo, not a no-op.
    let unknown: Vec<&String> = names
        .iter()
        .filter(|n| !fleet.env.jobs.contains_key(*n) && !plan.changes.iter().any(|c| &c.job == *n))
        .collect();
    if !unknown.is_empty() {
        bail!(
            "unknown job {} (jobs in {}: {}), and no host has containers of it",
            list(unknown.iter().map(|n| format!("{n:?}"))),
            fleet.env.dir.join("jobs").display(),
            list(fleet.env.jobs.keys())
        );
    }
    for name in names.iter().filter(|n| !fleet.env.jobs.contains_key(*n)) {
        eprintln!("note: job {name:?} is not in the spec; removing the containers it left");
    }
    let change = Change::new(
        format!("down {}", names.join(" ")),
        "Remove these containers?",
    );
    execute(global, &fleet, &connections, plan, change, replan).await
}
