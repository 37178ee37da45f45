use std::process::ExitCode;

use anyhow::Result;
use drover_fleet::{human_bytes, human_duration, TaskStatus};

use crate::cli::Global;
use crate::terminal::table::Table;
use crate::terminal::{self, GREEN, RED, YELLOW};
use crate::{out, outln};

pub async fn run(global: &Global, names: &[String]) -> Result<ExitCode> {
    let fleet = super::load(global)?;
    fleet.jobs(names)?;
    let report = fleet.status_of_all(names).await?;
    for (host, address, error) in &report.unreachable {
        eprintln!("host {host} ({address}) is unreachable: {error}");
    }
    if global.json {
        outln!("{}", serde_json::to_string(&report.tasks)?);
    } else {
        out!("{}", table(&report.tasks, terminal::color(global)));
        for (job, held) in &report.locks {
            for lock in held {
                let why = if lock.reason.is_empty() {
                    lock.command.clone()
                } else {
                    lock.reason.clone()
                };
                // Stale by the rule the next change takes it over by.
                let stale = match lock.pid {
                    Some(pid) if drover_apply::lock::is_stale(lock) => format!(
                        ": a stale lock, process {pid} no longer runs (the next change takes it over)"
                    ),
                    _ => String::new(),
                };
                outln!(
                    "job {job} is locked on {} by {} since {} ({why}){stale}",
                    lock.host,
                    lock.by,
                    lock.at
                );
            }
        }
    }
    // A missing task is reported, not a failure of `status`; a host it could not read is.
    Ok(if report.unreachable.is_empty() {
        super::SUCCESS
    } else {
        super::failure()
    })
}

fn table(rows: &[TaskStatus], color: bool) -> String {
    let mut table = Table::new([
        "TASK",
        "CONTAINER",
        "IMAGE",
        "STATE",
        "HEALTH",
        "UPTIME",
        "RESTARTS",
        "MEMORY",
        "CPU",
        "COMMIT",
    ]);
    for row in rows {
        let task = match row.task {
            Some(t) => format!("{} {}/{}", row.job, row.host, t),
            None => format!("{} {}/?", row.job, row.host),
        };
        let mut state = row.state.clone();
        if row.stopped_by_drover && row.state == "stopped" {
            state = format!("{state} by drover");
        }
        let mut notes = Vec::new();
        if row.restart_loop {
            notes.push("crash loop".to_string());
        }
        if row.state == "missing" && row.failing.is_some() {
            notes.push("its last new container failed".to_string());
        }
        if let Some(code) = row.exit_code {
            notes.push(format!("exit {code}"));
        }
        if row.oom_killed {
            notes.push("killed for memory".to_string());
        }
        if !row.in_spec {
            notes.push("not in spec".to_string());
        }
        if !notes.is_empty() {
            state = format!("{state} ({})", notes.join(", "));
        }
        let dash = || "-".to_string();
        let state_color = match row.state.as_str() {
            "running" if row.in_spec && !row.restart_loop => GREEN,
            "stopped" | "running" => YELLOW,
            _ => RED,
        };
        table.row(
            [
                task,
                row.container.clone().unwrap_or_else(dash),
                row.image.clone().unwrap_or_else(dash),
                state,
                row.health.clone().unwrap_or_else(dash),
                row.uptime_seconds.map_or_else(dash, human_duration),
                row.restarts.map_or_else(dash, |r| r.to_string()),
                row.memory_bytes.map_or_else(dash, human_bytes),
                row.cpu_percent.map_or_else(dash, |c| format!("{c:.1}%")),
                row.commit
                    .as_deref()
                    .map_or_else(dash, drover_fleet::commit::short),
            ],
            if color { Some((3, state_color)) } else { None },
        );
    }
    table.to_string()
}
