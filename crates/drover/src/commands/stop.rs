use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::Result;
use drover_fleet::Fleet;
use drover_plan::ops::{plan_start, plan_stop};

use super::change::{execute, Change, Marks};
use crate::cli::Global;

/// `stop` (or `start` when `stop` is false) every task of the jobs. A job
/// stopped by drover is marked so on its hosts: `up` leaves it stopped.
pub async fn run(global: &Global, names: &[String], stop: bool) -> Result<ExitCode> {
    let fleet = super::load(global)?;
    fleet.jobs(names)?;
    let jobs: BTreeSet<String> = names.iter().cloned().collect();
    let connections = fleet.connect_all().await;
    let replan = async || {
        let observed = fleet.observe(&connections, &Fleet::scope(names)).await;
        let plan = if stop { plan_stop } else { plan_start };
        Ok(plan(
            &fleet.env.name,
            &jobs,
            &observed,
            &fleet.known_hosts(),
        ))
    };
    let plan = replan().await?;
    let (verb, question, marks) = if stop {
        ("stop", "Stop these tasks?", Marks::Stop(names.to_vec()))
    } else {
        ("start", "Start these tasks?", Marks::Start(names.to_vec()))
    };
    let mut change = Change::new(format!("{verb} {}", names.join(" ")), question);
    change.marks = marks;
    execute(global, &fleet, &connections, plan, change, replan).await
}
