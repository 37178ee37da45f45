//! `drover adopt [CONTAINER…] [--dry-run]`: the fleet decides what the
//! files say and whom it takes over; this shows it, asks, lets it act,
//! and ends with what the next `up` will change.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use drover_fleet::adopt::{Adopted, AdoptionPlan};
use drover_fleet::Fleet;
use drover_plan::{Action, MASK};
use serde_json::json;

use crate::cli::Global;
use crate::terminal::{self, interrupt, paint, GREEN, RED, YELLOW};
use crate::{out, outln};

pub async fn run(global: &Global, containers: &[String], dry_run: bool) -> Result<ExitCode> {
    let fleet = super::load(global)?;
    let connections = fleet.connect_all().await;
    let plan = fleet.adoption_plan(&connections, containers).await?;
    let color = terminal::color(global);
    for (host, error) in &plan.unreachable {
        eprintln!("host {host} is unreachable, its containers are not adopted: {error}");
    }
    if dry_run || plan.is_empty() {
        if global.json {
            outln!("{}", json_of(&fleet, &plan, None));
        } else {
            out!("{}", text(&fleet, &plan, true, color));
            if plan.is_empty() {
                outln!("nothing to adopt");
            } else {
                out!("{}", next_up(&plan, &[], color));
                outln!("dry run: nothing changed");
            }
        }
        return Ok(exit_code(&plan, None));
    }
    if !global.json {
        out!("{}", text(&fleet, &plan, false, color));
    }
    if !terminal::confirm(
        global,
        "Adopt these containers (renamed and recorded, never restarted)?",
    )? {
        eprintln!("nothing changed");
        return Ok(super::failure());
    }
    interrupt::changing();
    let by = drover_apply::lock::operator();
    let done = fleet
        .adopt(&connections, &plan, &by, &interrupt::token())
        .await?;
    if global.json {
        outln!("{}", json_of(&fleet, &plan, Some(&done)));
    } else {
        for job in &done.jobs {
            let tasks: Vec<String> = plan
                .jobs
                .iter()
                .filter(|j| &j.job == job)
                .flat_map(|j| j.tasks.iter().map(|t| format!("{}/{}", t.host, t.task)))
                .collect();
            outln!(
                "{} adopted {job}: {}",
                paint(color, GREEN, "✓"),
                tasks.join(", ")
            );
        }
        for file in &done.wrote {
            outln!("wrote {}", shown_path(&fleet, Path::new(file)));
        }
        for warning in &done.warnings {
            eprintln!("warning: {warning}");
        }
        out!("{}", next_up(&plan, &done.failed, color));
    }
    for (job, why) in &done.failed {
        eprintln!(
            "{} job {job} was not adopted (what was done for it is undone): {why}",
            paint(color, RED, "failed:")
        );
    }
    Ok(exit_code(&plan, Some(&done)))
}

fn exit_code(plan: &AdoptionPlan, done: Option<&Adopted>) -> ExitCode {
    if plan.unreachable.is_empty() && done.is_none_or(|d| d.failed.is_empty()) {
        super::SUCCESS
    } else {
        super::failure()
    }
}

/// A path as the operator knows it: relative to the environment directory when inside it.
fn shown_path(fleet: &Fleet, path: &Path) -> String {
    path.strip_prefix(&fleet.env.dir)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// What adopt writes and takes over, and what it leaves alone.
fn text(fleet: &Fleet, plan: &AdoptionPlan, dry_run: bool, color: bool) -> String {
    let would = if dry_run { "would " } else { "" };
    let mut out = String::new();
    for job in &plan.jobs {
        let _ = writeln!(
            out,
            "{}{would}write {}:",
            paint(color, GREEN, "+ "),
            job.file
        );
        for line in job.text.lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    if plan.drover_toml.is_some() {
        let _ = writeln!(
            out,
            "{}{would}set in drover.toml [defaults] (every adopted job says it; no other job changes):",
            paint(color, YELLOW, "~ ")
        );
        for (key, value) in &plan.lifted {
            let _ = writeln!(out, "    {key} = {}", drover_fleet::adopt::inline(value));
        }
    }
    if let Some(secrets) = &plan.secrets {
        let (how, note) = if secrets.create {
            ("create", " (readable by its owner only)")
        } else {
            ("append to", "")
        };
        let lines: Vec<String> = secrets
            .names
            .iter()
            .map(|n| format!("{n}={MASK}"))
            .collect();
        let _ = writeln!(
            out,
            "{}{would}{how} {}{note}: {}",
            paint(color, GREEN, "+ "),
            shown_path(fleet, &secrets.file),
            lines.join(" ")
        );
    }
    if !plan.jobs.is_empty() {
        let _ = writeln!(
            out,
            "{would}take over (renamed to its task and recorded; never restarted):"
        );
        for job in &plan.jobs {
            for task in &job.tasks {
                let id = task.id.get(..12).unwrap_or(&task.id);
                let _ = writeln!(
                    out,
                    "  {} {}/{}  {} ({id}) -> {}",
                    job.job, task.host, task.task, task.from, task.to
                );
            }
        }
    }
    let (idle, refused): (Vec<_>, Vec<_>) = plan.untouched.iter().partition(|u| u.idle);
    if !refused.is_empty() {
        let _ = writeln!(
            out,
            "{} (no job key says what they run with; left untouched):",
            paint(color, RED, "cannot adopt")
        );
        for u in refused {
            let _ = writeln!(out, "  {} {} ({}):", u.host, u.container, u.id);
            for reason in &u.reasons {
                let _ = writeln!(out, "    {reason}");
            }
        }
    }
    if !idle.is_empty() {
        let _ = writeln!(out, "left alone:");
        for u in idle {
            let _ = writeln!(
                out,
                "  {} {} ({}): {}",
                u.host,
                u.container,
                u.id,
                u.reasons.join("; ")
            );
        }
    }
    out
}

/// The adopted tasks the next `up` will change, and why; nothing when none.
fn next_up(plan: &AdoptionPlan, failed: &[(String, String)], color: bool) -> String {
    let mut next = plan.next_up.clone();
    next.changes
        .retain(|c| !failed.iter().any(|(job, _)| job == &c.job));
    if next.is_empty() {
        return "the next `up` changes none of the adopted tasks: each runs as its file says\n"
            .to_string();
    }
    let replaced = next.count(Action::Replace);
    let mut out = format!(
        "the next `up` will change {} of the adopted tasks ({replaced} replaced; `drover adopt` itself replaced none):\n",
        next.changes.len()
    );
    out.push_str(&next.render(color));
    out
}

fn json_of(fleet: &Fleet, plan: &AdoptionPlan, done: Option<&Adopted>) -> serde_json::Value {
    let lifted: serde_json::Map<String, serde_json::Value> = plan
        .lifted
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                serde_json::to_value(v).unwrap_or(serde_json::Value::Null),
            )
        })
        .collect();
    json!({
        "dry_run": done.is_none(),
        "jobs": plan.jobs,
        "defaults": lifted,
        "secrets_file": plan.secrets.as_ref().map(|s| shown_path(fleet, &s.file)),
        "secrets": plan.secrets.as_ref().map(|s| s.names.clone()).unwrap_or_default(),
        "untouched": plan.untouched,
        "next_up": {"changes": plan.next_up.changes, "pulls": plan.next_up.pulls},
        "unreachable": plan.unreachable,
        "adopted": done.map(|d| d.jobs.clone()),
        "failed": done.map(|d| d.failed.clone()),
    })
}
