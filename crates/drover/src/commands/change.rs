//! The shared end of every command that changes what runs: prepare the
//! operation (the fleet observes and plans), show the plan, ask (or take
//! `--yes`), let the fleet execute it (locks, marks, the file, a fresh
//! plan, the rollout), and report with the exit code. Nothing is written
//! and no lock is taken before the operator says yes.

use std::process::ExitCode;

use anyhow::Result;
use drover_apply::{Outcome, Report, StepError};
use drover_fleet::{Connections, Executed, Fleet, Notice, Operation, Prepared, Run};
use serde_json::json;

use crate::cli::Global;
use crate::terminal::progress::Progress;
use crate::terminal::{self, interrupt, paint, RED, YELLOW};
use crate::{out, outln};

/// How long a command waits for the webhook at its end.
const NOTIFY_BUDGET: std::time::Duration = std::time::Duration::from_secs(2);

/// Prepares, shows, confirms, executes and reports `operation`.
pub async fn run(global: &Global, operation: Operation) -> Result<ExitCode> {
    let fleet = super::load(global)?;
    let connections = fleet.connect_all().await;
    let prepared = fleet.prepare(&connections, operation).await?;
    execute(global, &fleet, &connections, prepared).await
}

/// Shows `prepared`, confirms, executes, reports.
pub async fn execute(
    global: &Global,
    fleet: &Fleet,
    connections: &Connections,
    prepared: Prepared,
) -> Result<ExitCode> {
    let color = terminal::color(global);
    for warning in &prepared.warnings {
        eprintln!("warning: {warning}");
    }
    for problem in &prepared.problems {
        eprintln!("{problem}");
    }
    if !global.json {
        out!("{}", prepared.plan.render(color));
        if let Some(edit) = prepared.image_edit.as_ref().filter(|e| e.edit.changes()) {
            let place = if edit.moved_to_job_file {
                format!(
                    "{} (the image {:?} comes from a place other jobs share, so only this job changes)",
                    edit.origin.describe(),
                    edit.old
                )
            } else {
                edit.origin.describe()
            };
            outln!(
                "{} write   image = {:?} into {place} (was {:?})",
                paint(color, YELLOW, "~"),
                edit.new,
                edit.old
            );
        }
    }
    if prepared.is_noop() {
        let executed = Executed {
            plan: prepared.plan.clone(),
            ..Executed::default()
        };
        return Ok(finish(global, &prepared, &executed));
    }
    if !terminal::confirm(global, prepared.operation.question())? {
        eprintln!("nothing changed");
        return Ok(super::failure());
    }
    interrupt::changing();
    let progress = Progress::new(global);
    let events = |e: &drover_apply::Event| progress.event(e);
    let json = global.json;
    let notices = |notice: &Notice| say(notice, json, color);
    let notifier = drover_notify::Notifier::from_env(
        &fleet.env,
        drover_notify::Options::new(drover_apply::lock::operator()),
    );
    let run = Run {
        deployment: fleet.deployment(&prepared.operation.command()),
        parallel: None,
        cancel: interrupt::token(),
        events: &events,
        notices: &notices,
        notifier: notifier.clone(),
    };
    let executed = fleet.execute(connections, &prepared, &run).await;
    progress.finish();
    // The team hears of it within 2 s; what the webhook did not take by
    // then is retried by a detached process, not by holding this one up.
    notifier
        .finish(NOTIFY_BUDGET)
        .await
        .hand_off(&drover_notify::HandOff::this_binary());
    Ok(finish(global, &prepared, &executed?))
}

/// What the fleet says beside each task's progress.
fn say(notice: &Notice, json: bool, color: bool) {
    match notice {
        Notice::Replanned(plan) => {
            eprintln!(
                "note: the hosts changed since the plan above was made (someone, or a request that was still under way, changed them); applying the plan as it stands now:"
            );
            if !json {
                eprint!("{}", plan.render(color));
            }
        }
        Notice::LockedOut(e) => eprintln!(
            "{}: {e}; its changes are left for later",
            paint(color, RED, "skipped")
        ),
        // An outcome like the steps': with them on stdout (stderr under --json).
        Notice::Wrote(edit) => {
            let line = format!(
                "wrote image = {:?} into {} (was {:?})",
                edit.new,
                edit.origin.describe(),
                edit.old
            );
            if json {
                eprintln!("{line}");
            } else {
                outln!("{line}");
            }
        }
        Notice::PutBack(edit) => eprintln!(
            "nothing rolled out, so {} is back as it was (image = {:?})",
            edit.origin.file, edit.old
        ),
        Notice::Warning(w) => eprintln!("warning: {w}"),
        Notice::Release(notice) => super::run::say_release(notice),
    }
}

/// The closing report (or JSON) and the exit code.
pub fn finish(global: &Global, prepared: &Prepared, executed: &Executed) -> ExitCode {
    let color = terminal::color(global);
    let (plan, report) = (&executed.plan, &executed.report);
    let ok = executed.succeeded() && prepared.problems.is_empty();
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
            json!({
                "outcomes": outcomes,
                "unreachable": plan.unreachable,
                "held": plan.held,
                "locked_out": executed.locked_out,
                "interrupted": report.interrupted,
                "ok": ok,
            })
        );
    } else {
        report_text(prepared, executed, color);
    }
    if ok {
        super::SUCCESS
    } else {
        super::failure()
    }
}

fn report_text(prepared: &Prepared, executed: &Executed, color: bool) {
    let (plan, report) = (&executed.plan, &executed.report);
    let failed: Vec<&Outcome> = report
        .failures()
        .filter(|o| o.result.as_ref().err().is_some_and(StepError::counts))
        .collect();
    for failure in &failed {
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
    let counts = Counts::of(report);
    if report.interrupted && counts.done == counts.total() && counts.total() > 0 {
        // The signal came after the last step: nothing is left to finish.
        eprintln!(
            "interrupted after the last step: {}; nothing is left to do",
            counts.summary()
        );
    } else if report.interrupted {
        eprintln!(
            "interrupted: {}; {}",
            counts.summary(),
            again(&prepared.operation, report)
        );
    } else if !failed.is_empty() || !plan.unreachable.is_empty() {
        let hosts = if plan.unreachable.is_empty() {
            String::new()
        } else {
            format!("; {} host(s) unreachable", plan.unreachable.len())
        };
        eprintln!("{}{hosts}", counts.summary());
    } else if counts.total() > 0 {
        outln!("Done: {} step(s) applied.", counts.done);
    }
    if !executed.locked_out.is_empty() {
        eprintln!(
            "not done: job(s) {} locked by someone else (see above); run this again once they are free",
            drover_fleet::list(&executed.locked_out)
        );
    }
    if !plan.held.is_empty() {
        let jobs: std::collections::BTreeSet<&str> =
            plan.held.iter().map(|c| c.job.as_str()).collect();
        eprintln!(
            "not done: {} change(s) held by `drover stop`; `drover start {}` applies them",
            plan.held.len(),
            jobs.into_iter().collect::<Vec<_>>().join(" ")
        );
    }
    if let Some(edit) = &executed.file_kept_after_failure {
        eprintln!(
            "{} says image = {:?} and part of the rollout ran; to go back: drover update {} --image {}",
            edit.origin.describe(),
            edit.new,
            prepared.operation.jobs().join(" "),
            edit.old
        );
    }
}

/// How the steps of a run ended, counted once each.
#[derive(Default)]
struct Counts {
    done: usize,
    failed: usize,
    rolled_back: usize,
    interrupted: usize,
    not_started: usize,
}

impl Counts {
    fn of(report: &Report) -> Counts {
        let mut counts = Counts::default();
        for outcome in &report.outcomes {
            match &outcome.result {
                Ok(_) => counts.done += 1,
                Err(StepError::RolledBack { .. }) => counts.rolled_back += 1,
                Err(StepError::NotStarted { .. }) => counts.not_started += 1,
                Err(StepError::Interrupted { .. }) => counts.interrupted += 1,
                Err(_) => counts.failed += 1,
            }
        }
        counts
    }

    fn total(&self) -> usize {
        self.done + self.failed + self.rolled_back + self.interrupted + self.not_started
    }

    /// `1 failed, 3 not started, 1 done (of 5 steps)`.
    fn summary(&self) -> String {
        let parts: Vec<String> = [
            (self.failed, "failed"),
            (self.rolled_back, "rolled back"),
            (self.interrupted, "interrupted and undone"),
            (self.not_started, "not started"),
            (self.done, "done"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, words)| format!("{n} {words}"))
        .collect();
        if parts.is_empty() {
            "no step ran".to_string()
        } else {
            format!("{} (of {} step(s))", parts.join(", "), self.total())
        }
    }
}

/// What to run to finish an interrupted operation, honestly: a `restart`
/// run again restarts every task, not only those left.
fn again(operation: &Operation, report: &Report) -> String {
    match operation {
        Operation::Restart { job, .. } => {
            let done: Vec<String> = report
                .outcomes
                .iter()
                .filter(|o| o.result.is_ok())
                .filter_map(|o| o.task.map(|t| format!("{}/{t}", o.host)))
                .collect();
            if done.is_empty() {
                format!("no task was restarted; run `drover restart {job}` again")
            } else {
                format!(
                    "restarted {}; `drover restart {job}` again restarts every task, those too",
                    done.join(", ")
                )
            }
        }
        Operation::Rollback { job } => format!(
            "`drover history {job}` shows which tasks run which generation; `drover rollback {job}` again moves each back one more"
        ),
        other => format!("run `drover {}` again to finish", other.command()),
    }
}
