use std::process::ExitCode;

use anyhow::Result;

use super::change::{execute, Change};
use crate::cli::Global;

pub async fn run(global: &Global, names: &[String]) -> Result<ExitCode> {
    let fleet = super::load(global)?;
    fleet.jobs(names)?;
    let connections = fleet.connect_all().await;
    let (plan, _) = fleet.plan_up(&connections, names).await?;
    let command = std::iter::once("up")
        .chain(names.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    let change = Change::new(command, "Apply these changes?");
    execute(global, &fleet, &connections, plan, change, async || {
        Ok(fleet.plan_up(&connections, names).await?.0)
    })
    .await
}
