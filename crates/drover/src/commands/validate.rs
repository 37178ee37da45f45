use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use crate::cli::Global;
use crate::context::Context;

pub fn run(global: &Global) -> Result<ExitCode> {
    let ctx = Context::load(global)?;
    let env = &ctx.env;
    let tasks: usize = env
        .jobs
        .values()
        .map(|j| j.hosts.len() * j.instances as usize)
        .sum();
    if global.json {
        println!(
            "{}",
            json!({"valid": true, "environment": env.name, "hosts": env.hosts.len(), "jobs": env.jobs.len(), "tasks": tasks})
        );
    } else {
        println!(
            "{}: valid ({} host(s), {} job(s), {} task(s))",
            env.name,
            env.hosts.len(),
            env.jobs.len(),
            tasks
        );
    }
    Ok(super::SUCCESS)
}
