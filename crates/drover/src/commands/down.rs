use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::Result;
use drover_plan::{Action, Change, ContainerRef, HostObservation, Plan, Scope, UnreachableHost};

use crate::cli::Global;
use crate::commands::up::confirm_and_apply;
use crate::context::Context;

/// Removes every container of the named jobs on every host of the environment
/// (a job may have moved, or its file may be gone). Bind-mounted host
/// directories are not touched.
pub async fn run(global: &Global, names: &[String]) -> Result<ExitCode> {
    let ctx = Context::load(global)?;
    for name in names {
        if !ctx.env.jobs.contains_key(name) {
            eprintln!(
                "note: job {name:?} is not in the spec; removing whatever containers it left"
            );
        }
    }
    let wanted: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    let hosts = ctx.hosts_for(None);
    let connections = ctx.connect(&hosts).await;
    let observed = ctx
        .observe(&connections, &Scope::Jobs(names.iter().cloned().collect()))
        .await;

    let mut plan = Plan::default();
    for (host, observation) in &observed.hosts {
        match observation {
            HostObservation::Reachable(state) => {
                for c in &state.containers {
                    let Some(job) = c.job().filter(|j| wanted.contains(j)) else {
                        continue;
                    };
                    // Two host entries may share an engine: each removes its own.
                    if c.host_label()
                        .is_some_and(|h| h != host && ctx.env.hosts.contains_key(h))
                    {
                        continue;
                    }
                    plan.changes.push(Change {
                        job: job.to_string(),
                        host: host.clone(),
                        task: c.task(),
                        action: Action::Remove,
                        reason: "down".to_string(),
                        container: Some(ContainerRef {
                            id: c.id.clone(),
                            name: c.name.clone(),
                            state: c.state.clone(),
                            stop_timeout_secs: c.config.stop_timeout_secs,
                        }),
                        fields: Vec::new(),
                        desired: None,
                    });
                }
            }
            HostObservation::Unreachable { address, error } => {
                plan.unreachable.push(UnreachableHost {
                    host: host.clone(),
                    address: address.clone(),
                    error: error.clone(),
                })
            }
        }
    }

    confirm_and_apply(&ctx, &plan, &connections, "Remove these containers?").await
}
