use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use crate::cli::Global;
use crate::outln;

pub fn run(global: &Global) -> Result<ExitCode> {
    let fleet = super::load(global)?;
    let env = &fleet.env;
    let tasks: usize = env.jobs.values().map(drover_spec::Job::task_count).sum();
    if global.json {
        outln!(
            "{}",
            json!({"valid": true, "environment": env.name, "hosts": env.hosts.len(), "jobs": env.jobs.len(), "tasks": tasks})
        );
    } else {
        outln!(
            "{}: valid ({} host(s), {} job(s), {} task(s))",
            env.name,
            env.hosts.len(),
            env.jobs.len(),
            tasks
        );
    }
    Ok(super::SUCCESS)
}
