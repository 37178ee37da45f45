use std::process::ExitCode;

use anyhow::Result;
use drover_fleet::Fleet;
use drover_plan::ops::plan_restart;

use super::change::{execute, Change};
use crate::cli::Global;

/// Every running task restarted in place (same container), batch by batch, gated on health.
pub async fn run(global: &Global, job: &str, parallel: Option<u32>) -> Result<ExitCode> {
    let fleet = super::load(global)?;
    fleet.job(job)?;
    let jobs = [job.to_string()].into_iter().collect();
    let connections = fleet.connect_all().await;
    let replan = async || {
        let observed = fleet
            .observe(&connections, &Fleet::scope(&[job.to_string()]))
            .await;
        Ok(plan_restart(
            &fleet.env.name,
            &jobs,
            &observed,
            &fleet.known_hosts(),
        ))
    };
    let plan = replan().await?;
    let mut change = Change::new(format!("restart {job}"), "Restart these tasks?");
    change.parallel = parallel;
    execute(global, &fleet, &connections, plan, change, replan).await
}
