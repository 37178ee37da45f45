use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::Result;
use drover_apply::{apply, ApplyReport, StepReport};
use drover_plan::{plan, Plan};
use serde_json::json;

use crate::cli::Global;
use crate::context::{Connections, Context};

/// Observe the hosts of the named jobs (or all) and plan against the spec.
pub async fn observe_and_plan(ctx: &Context, names: &[String]) -> Result<(Plan, Connections)> {
    let jobs = ctx.jobs(names)?;
    let hosts = ctx.hosts_for(if names.is_empty() { None } else { Some(&jobs) });
    let desired = ctx.desired(&jobs, &hosts)?;
    let connections = ctx.connect(&hosts).await;
    let observed = ctx.observe(&connections, &ctx.scope(names)).await;
    let known_hosts: BTreeSet<String> = ctx.env.hosts.keys().cloned().collect();
    Ok((
        plan(&desired, &observed, &ctx.scope(names), &known_hosts),
        connections,
    ))
}

pub async fn make_plan(ctx: &Context, names: &[String]) -> Result<Plan> {
    Ok(observe_and_plan(ctx, names).await?.0)
}

pub async fn run(global: &Global, names: &[String]) -> Result<ExitCode> {
    let ctx = Context::load(global)?;
    let (plan, connections) = observe_and_plan(&ctx, names).await?;
    confirm_and_apply(&ctx, &plan, &connections, "Apply these changes?").await
}

/// Shows the plan, asks (or takes `--yes`), applies it and reports: the
/// shared end of `up` and `down`.
pub async fn confirm_and_apply(
    ctx: &Context,
    plan: &Plan,
    connections: &Connections,
    question: &str,
) -> Result<ExitCode> {
    let global = &ctx.global;
    if !global.json {
        print!("{}", plan.render(ctx.color()));
    }
    if plan.is_empty() {
        return finish(global, plan, &ApplyReport::default());
    }
    if !ctx.confirm(question)? {
        eprintln!("nothing changed");
        return Ok(super::failure());
    }
    let json = global.json;
    let report = apply(&ctx.env.name, plan, &connections.engines, &|step| {
        if !json {
            print_step(step);
        }
    })
    .await;
    finish(global, plan, &report)
}

/// Prints a step as it ends: `host  what  action  outcome`.
pub fn print_step(step: &StepReport) {
    match &step.outcome {
        Ok(done) => println!("{:<10} {:<8} {}: {done}", step.host, step.action, step.what),
        Err(e) => eprintln!(
            "{:<10} {:<8} {}: FAILED: {e}",
            step.host, step.action, step.what
        ),
    }
}

/// The summary line (or JSON) and the exit code after applying.
pub fn finish(global: &Global, plan: &Plan, report: &ApplyReport) -> Result<ExitCode> {
    let failures = report.failures().count();
    if global.json {
        let steps: Vec<_> = report
            .steps
            .iter()
            .map(|s| {
                json!({
                    "host": s.host, "what": s.what, "action": s.action,
                    "ok": s.outcome.is_ok(),
                    "detail": match &s.outcome { Ok(d) | Err(d) => d },
                })
            })
            .collect();
        println!(
            "{}",
            json!({"steps": steps, "unreachable": plan.unreachable})
        );
    } else if report.steps.is_empty() && plan.unreachable.is_empty() {
        // Nothing was to be done; the plan already said so.
    } else if failures > 0 || !plan.unreachable.is_empty() {
        eprintln!(
            "{} of {} step(s) failed{}",
            failures,
            report.steps.len(),
            if plan.unreachable.is_empty() {
                String::new()
            } else {
                format!("; {} host(s) unreachable", plan.unreachable.len())
            }
        );
    } else {
        println!("Done: {} step(s) applied.", report.steps.len());
    }
    Ok(exit_code(report, plan))
}

fn exit_code(report: &ApplyReport, plan: &Plan) -> ExitCode {
    if report.failures().next().is_some() || !plan.unreachable.is_empty() {
        super::failure()
    } else {
        super::SUCCESS
    }
}
