use std::process::ExitCode;

use anyhow::Result;
use drover_fleet::Fleet;
use drover_plan::views::{history, GenerationKind};

use crate::cli::Global;
use crate::terminal::table::Table;
use crate::{out, outln};

pub async fn run(global: &Global, job: &str) -> Result<ExitCode> {
    let fleet = super::load(global)?;
    let connections = fleet.connect_all().await;
    let observed = fleet
        .observe(&connections, &Fleet::scope(&[job.to_string()]))
        .await;
    for (host, error) in &connections.unreachable {
        eprintln!("{error}; its generations are not listed");
        let _ = host;
    }
    let generations = history(&fleet.env.name, job, &observed, &fleet.known_hosts());
    if generations.is_empty() && !fleet.env.jobs.contains_key(job) {
        fleet.job(job)?;
    }
    if global.json {
        outln!("{}", serde_json::to_string(&generations)?);
    } else if generations.is_empty() {
        outln!("job {job} has no deployed generations on the hosts");
    } else {
        let mut table = Table::new([
            "TASK", "DEPLOYED", "BY", "IMAGE", "IMAGE ID", "SPEC", "COMMAND", "STATE", "COMMIT",
        ]);
        for g in &generations {
            let outcome = g.outcome.as_deref().unwrap_or_default();
            let state = match g.kind {
                GenerationKind::Current => format!("current, {}", g.state),
                GenerationKind::Kept => "kept".to_string(),
                GenerationKind::Failed => format!("failed its gate: {outcome}"),
                GenerationKind::Release => format!("release: {outcome}"),
            };
            let task = match g.task {
                Some(task) => format!("{}/{task}", g.host),
                None => format!("{} release", g.host),
            };
            table.row(
                [
                    task,
                    super::images::when(Some(&g.deployed_at)),
                    g.deployed_by.clone(),
                    g.image.clone(),
                    g.short_image_id().to_string(),
                    g.spec.clone(),
                    g.command.clone(),
                    state,
                    g.commit
                        .as_deref()
                        .map_or_else(|| "-".to_string(), drover_fleet::commit::short),
                ],
                None,
            );
        }
        out!("{table}");
    }
    Ok(if connections.unreachable.is_empty() {
        super::SUCCESS
    } else {
        super::failure()
    })
}
