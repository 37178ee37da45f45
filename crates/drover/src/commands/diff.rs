use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use crate::cli::Global;
use crate::outln;
use crate::terminal;

/// Observe + plan: exit 0 with no changes, 2 with changes (held ones
/// included: the hosts are not as the files say), 1 if a host could not be read.
pub async fn run(global: &Global, names: &[String]) -> Result<ExitCode> {
    let fleet = super::load(global)?;
    fleet.jobs(names)?;
    let connections = fleet.connect_all().await;
    let (plan, _) = fleet.plan_up(&connections, names).await?;
    if global.json {
        outln!(
            "{}",
            json!({"changes": plan.changes, "held": plan.held, "pulls": plan.pulls, "unreachable": plan.unreachable, "unchanged": plan.unchanged})
        );
    } else {
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
