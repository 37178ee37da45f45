//! The shared end of every command that changes what runs: show the plan,
//! ask (or take `--yes`), take the jobs' locks, look again now that nobody
//! else can change them, apply with progress, release the locks (also on
//! failure and Ctrl-C), and report.

use std::process::ExitCode;

use anyhow::Result;
use drover_apply::{Outcome, Report, StepError};
use drover_fleet::{Connections, Fleet, Run};
use drover_plan::Plan;
use serde_json::json;

use crate::cli::Global;
use crate::terminal::progress::Progress;
use crate::terminal::{self, interrupt, paint, RED};
use crate::{out, outln};

/// What to do, and how to say it.
pub struct Change<'a> {
    /// As recorded on new containers and locks (`up`, `update web --image …`).
    pub command: String,
    pub question: &'a str,
    /// Overrides every job's `[update] parallel`.
    pub parallel: Option<u32>,
    /// Stop marks to set or clear once the locks are held.
    pub marks: Marks,
    /// Called when the operator declines.
    pub on_decline: Option<&'a dyn Fn()>,
}

impl<'a> Change<'a> {
    pub fn new(command: String, question: &'a str) -> Self {
        Change {
            command,
            question,
            parallel: None,
            marks: Marks::None,
            on_decline: None,
        }
    }
}

/// `drover stop` marks its jobs stopped; `drover start` clears the marks.
pub enum Marks {
    None,
    Stop(Vec<String>),
    Start(Vec<String>),
}

/// Shows `plan`, confirms, locks, re-plans with `replan`, applies, reports.
pub async fn execute(
    global: &Global,
    fleet: &Fleet,
    connections: &Connections,
    plan: Plan,
    change: Change<'_>,
    replan: impl AsyncFn() -> Result<Plan>,
) -> Result<ExitCode> {
    let color = terminal::color(global);
    if !global.json {
        out!("{}", plan.render(color));
    }
    if plan.is_empty() && matches!(change.marks, Marks::None) {
        return Ok(finish(global, &plan, &Report::default()));
    }
    if !terminal::confirm(global, change.question)? {
        if let Some(on_decline) = change.on_decline {
            on_decline();
        }
        eprintln!("nothing changed");
        return Ok(super::failure());
    }
    interrupt::changing();
    let mut jobs: std::collections::BTreeSet<String> =
        plan.jobs().into_iter().map(str::to_string).collect();
    if let Marks::Stop(names) | Marks::Start(names) = &change.marks {
        jobs.extend(names.iter().cloned());
    }
    let holder = drover_fleet::holder(&change.command, "", true);
    let guards = fleet.lock(connections, &jobs, Some(&plan), &holder).await?;

    // Now that nobody else can change these jobs, look again: apply what is
    // needed now, not what was needed before the lock.
    let result = async {
        match &change.marks {
            Marks::Stop(names) => {
                for job in names {
                    if let Some((host, e)) = fleet
                        .mark_stopped(&fleet.lock_hosts(connections, job, Some(&plan)), job)
                        .await
                        .first()
                    {
                        anyhow::bail!("cannot mark job {job} stopped on host {host}: {e}");
                    }
                }
            }
            Marks::Start(names) => {
                for job in names {
                    if let Some((host, e)) = fleet.unmark_stopped(connections, job).await.first() {
                        anyhow::bail!(
                            "cannot clear the stop mark of job {job} on host {host}: {e}"
                        );
                    }
                }
            }
            Marks::None => {}
        }
        let fresh = replan().await?;
        if fresh.changes != plan.changes || fresh.pulls != plan.pulls {
            eprintln!(
                "note: the hosts changed since the plan above was made (someone, or a request that was still under way, changed them); applying the plan as it stands now:"
            );
            if !global.json {
                eprint!("{}", fresh.render(color));
            }
        }
        let progress = Progress::new(global);
        let events = |e: &drover_apply::Event| progress.event(e);
        let run = Run {
            deployment: drover_fleet::deployment(&change.command),
            parallel: change.parallel,
            cancel: interrupt::token(),
            events: &events,
        };
        let report = fleet.apply(connections, &fresh, &run).await;
        progress.finish();
        Ok::<_, anyhow::Error>((fresh, report))
    }
    .await;

    for guard in guards {
        let job = guard.job.clone();
        for (host, e) in guard.release().await {
            eprintln!("warning: could not release the lock of job {job} on host {host}: {e}; run `drover unlock {job}`");
        }
    }
    let (plan, report) = result?;
    Ok(finish(global, &plan, &report))
}

/// The closing report (or JSON) and the exit code.
pub fn finish(global: &Global, plan: &Plan, report: &Report) -> ExitCode {
    let color = terminal::color(global);
    let failures: Vec<&Outcome> = report.failures().collect();
    if global.json {
        let outcomes: Vec<_> = report
            .outcomes
            .iter()
            .map(|o| {
                json!({
                    "job": o.job, "host": o.host, "task": o.task, "step": o.step,
                    "ok": o.result.is_ok(),
                    "detail": match &o.result { Ok(d) => d.clone(), Err(e) => e.to_string() },
                    "logs": match &o.result { Err(StepError::Gate { logs, .. }) => logs.clone(), _ => Vec::new() },
                })
            })
            .collect();
        outln!(
            "{}",
            json!({"outcomes": outcomes, "unreachable": plan.unreachable, "interrupted": report.interrupted, "ok": report.succeeded() && plan.unreachable.is_empty()})
        );
    } else {
        for failure in &failures {
            let Err(error) = &failure.result else {
                continue;
            };
            eprintln!(
                "{} {} ({}): {error}",
                paint(color, RED, "FAILED"),
                failure.subject(),
                failure.step
            );
            if let StepError::Gate { logs, .. } = error {
                if !logs.is_empty() {
                    eprintln!("  its last log lines:");
                    for line in logs {
                        eprintln!("    {line}");
                    }
                }
            }
        }
        let total = report.outcomes.len();
        if report.interrupted {
            let not_started = report
                .outcomes
                .iter()
                .filter(|o| matches!(o.result, Err(StepError::NotStarted { .. })))
                .count();
            let done = report.outcomes.iter().filter(|o| o.result.is_ok()).count();
            eprintln!("interrupted: {done} of {total} step(s) done, {not_started} not started; run the command again to finish");
        } else if !failures.is_empty() || !plan.unreachable.is_empty() {
            let hosts = if plan.unreachable.is_empty() {
                String::new()
            } else {
                format!("; {} host(s) unreachable", plan.unreachable.len())
            };
            eprintln!("{} of {total} step(s) failed{hosts}", failures.len());
        } else if total > 0 {
            outln!("Done: {total} step(s) applied.");
        }
    }
    if report.succeeded() && plan.unreachable.is_empty() {
        super::SUCCESS
    } else {
        super::failure()
    }
}
