use std::process::ExitCode;

use anyhow::Result;
use drover_fleet::{human_bytes, GcOutcome, GcReport, HostGc};

use crate::cli::Global;
use crate::terminal::{self, paint, GREEN, RED, YELLOW};
use crate::{out, outln};

/// Lists what drover left behind on each host and removes it (after
/// confirmation), or with `--dry-run` only lists it.
pub async fn run(global: &Global, dry_run: bool) -> Result<ExitCode> {
    let fleet = super::load(global)?;
    let connections = fleet.connect_all().await;
    let plan = fleet.gc_plan(&connections).await;
    report_unreachable(&plan);
    if dry_run || plan.is_empty() {
        render(global, &plan, true);
        return Ok(exit_code(&plan));
    }
    if !global.yes {
        if !global.json {
            out!("{}", text(&plan, true, terminal::color(global)));
        }
        if !terminal::confirm(global, "Remove these?")? {
            eprintln!("nothing changed");
            return Ok(super::failure());
        }
    }
    let done = fleet.gc_apply(&connections, &plan).await;
    // A host that failed between the listing and the removal.
    for host in &done.hosts {
        let before = plan.hosts.iter().find(|h| h.host == host.host);
        if let (Some(error), Some(None)) = (&host.error, before.map(|h| &h.error)) {
            eprintln!("{error}");
        }
    }
    render(global, &done, false);
    for host in &done.hosts {
        for item in host.failures() {
            if let GcOutcome::Failed { error } = &item.outcome {
                eprintln!(
                    "{} {} {} on {}: {error}",
                    paint(terminal::color(global), RED, "FAILED"),
                    item.step.kind(),
                    item.step.name(),
                    host.host
                );
            }
        }
    }
    Ok(exit_code(&done))
}

fn report_unreachable(report: &GcReport) {
    for host in &report.hosts {
        if let Some(error) = &host.error {
            eprintln!("{error}");
        }
    }
}

fn exit_code(report: &GcReport) -> ExitCode {
    if report.succeeded() {
        super::SUCCESS
    } else {
        super::failure()
    }
}

fn render(global: &Global, report: &GcReport, planned: bool) {
    if global.json {
        match serde_json::to_string(&report.hosts) {
            Ok(json) => outln!("{json}"),
            Err(e) => eprintln!("error: cannot write JSON: {e}"),
        }
    } else {
        out!("{}", text(report, planned, terminal::color(global)));
    }
}

/// Per host: a headline with the count and the space, then one line per item.
fn text(report: &GcReport, planned: bool, color: bool) -> String {
    let mut out = String::new();
    for host in report.hosts.iter().filter(|h| h.error.is_none()) {
        out.push_str(&headline(host, planned));
        out.push('\n');
        for item in &host.items {
            let (sign, code, tail) = match &item.outcome {
                GcOutcome::Planned | GcOutcome::Removed { .. } => ("-", GREEN, String::new()),
                GcOutcome::Left { reason } => ("=", YELLOW, format!(": left, {reason}")),
                GcOutcome::Failed { error } => ("!", RED, format!(": FAILED, {error}")),
            };
            out.push_str(&format!(
                "  {} {}{tail}\n",
                paint(color, code, sign),
                item.step
            ));
        }
        for note in &host.notes {
            out.push_str(&format!("  note: {note}\n"));
        }
    }
    out
}

fn headline(host: &HostGc, planned: bool) -> String {
    let removed = host
        .items
        .iter()
        .filter(|i| matches!(i.outcome, GcOutcome::Planned | GcOutcome::Removed { .. }))
        .count();
    let space = human_bytes(host.reclaimed_bytes());
    match (planned, removed) {
        (_, 0) if host.items.is_empty() => format!("{}: nothing to remove", host.host),
        (true, n) => format!("{}: would remove {n}, reclaiming {space}", host.host),
        (false, n) => format!("{}: removed {n}, reclaimed {space}", host.host),
    }
}
