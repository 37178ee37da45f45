use std::process::ExitCode;

use anyhow::{bail, Result};
use drover_fleet::Fleet;
use drover_plan::ops::plan_rollback;

use super::change::{execute, Change};
use crate::cli::Global;

/// Every task back to its previous generation: its kept container started
/// again (no pull), or recreated from its record if it is gone.
pub async fn run(global: &Global, job: &str) -> Result<ExitCode> {
    let fleet = super::load(global)?;
    let spec = fleet.job(job)?;
    let secrets = fleet.secrets(&[spec])?;
    let connections = fleet.connect_all().await;
    let plan_now = async || {
        let observed = fleet
            .observe(&connections, &Fleet::scope(&[job.to_string()]))
            .await;
        Ok::<_, anyhow::Error>(plan_rollback(
            &fleet.env.name,
            job,
            &observed,
            &fleet.known_hosts(),
            &secrets,
        ))
    };
    let (plan, problems) = plan_now().await?;
    for problem in &problems {
        eprintln!("{}: {}", problem.task, problem.why);
    }
    if plan.changes.is_empty() {
        if plan.unreachable.is_empty() {
            bail!("job {job} has nothing to roll back to");
        }
        for host in &plan.unreachable {
            eprintln!(
                "host {} ({}) is unreachable: {}",
                host.host, host.address, host.error
            );
        }
        return Ok(super::failure());
    }
    let change = Change::new(format!("rollback {job}"), "Roll back these tasks?");
    let code = execute(global, &fleet, &connections, plan, change, async || {
        Ok(plan_now().await?.0)
    })
    .await?;
    Ok(if problems.is_empty() {
        code
    } else {
        super::failure()
    })
}
