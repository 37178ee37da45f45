use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use crate::cli::Global;
use crate::context::Context;

/// Observe + plan: exit 0 with no changes, 2 with changes, 1 if a host could not be read.
pub async fn run(global: &Global, names: &[String]) -> Result<ExitCode> {
    let ctx = Context::load(global)?;
    let plan = super::up::make_plan(&ctx, names).await?;
    if global.json {
        println!(
            "{}",
            json!({"changes": plan.changes, "pulls": plan.pulls, "unreachable": plan.unreachable})
        );
    } else {
        print!("{}", plan.render(ctx.color()));
    }
    Ok(if !plan.unreachable.is_empty() {
        super::failure()
    } else if plan.is_empty() {
        super::SUCCESS
    } else {
        super::changes()
    })
}
