use std::process::ExitCode;

use anyhow::Result;
use drover_fleet::commit::Commits;
use serde_json::json;

use crate::cli::Global;
use crate::outln;
use crate::terminal;

/// Observe + plan: exit 0 when the hosts run what the files say, 2 with
/// changes (held back by `drover stop` too), 1 if a host could not be read.
pub async fn run(global: &Global, names: &[String]) -> Result<ExitCode> {
    let fleet = super::load(global)?;
    fleet.jobs(names)?;
    let connections = fleet.connect_all().await;
    let (plan, observed) = fleet.plan_up(&connections, names).await?;
    // Which commit runs where, against the directory's own.
    let commits = Commits::of(
        &fleet.env.dir,
        &fleet.env.name,
        &names.iter().cloned().collect(),
        &observed,
        &fleet.known_hosts(),
    );
    if global.json {
        outln!(
            "{}",
            json!({"changes": plan.changes, "pulls": plan.pulls, "unreachable": plan.unreachable, "held": plan.held, "unchanged": plan.unchanged, "commits": commits})
        );
    } else {
        for line in commits.lines() {
            outln!("{line}");
        }
        crate::out!("{}", plan.render(terminal::color(global)));
    }
    Ok(if !plan.unreachable.is_empty() {
        super::failure()
    } else if plan.converged() {
        super::SUCCESS
    } else {
        super::changes()
    })
}
