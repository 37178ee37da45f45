//! `drover validate`: everything a later command would refuse without
//! asking a host is refused here first, with its place: the files, the
//! secret values the jobs name (read as `up` reads them), and the client
//! certificates of `tls` hosts (read as connecting reads them).

use std::process::ExitCode;

use anyhow::Result;
use drover_fleet::{Fleet, FleetError};
use drover_spec::SpecError;
use serde_json::{json, Value};

use crate::cli::Global;
use crate::outln;

pub fn run(global: &Global) -> Result<ExitCode> {
    let fleet = match check(global) {
        Ok(fleet) => fleet,
        Err(e) if global.json => {
            outln!("{}", json!({"valid": false, "errors": errors_json(&e)}));
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
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

/// The environment loaded, every job's secrets found as `up` finds them,
/// and every host's client certificates read as connecting reads them.
fn check(global: &Global) -> Result<Fleet, FleetError> {
    let fleet = Fleet::load(
        global.dir.as_deref(),
        global.stage.as_deref(),
        &global.hosts,
    )?;
    let jobs: Vec<&drover_spec::Job> = fleet.env.jobs.values().collect();
    fleet.secrets(&jobs)?;
    fleet.check_tls()?;
    Ok(fleet)
}

/// `[{file, line, col, message}]`: each located problem (line and col null
/// for a problem with a whole file), or the one error that stopped loading.
fn errors_json(error: &FleetError) -> Vec<Value> {
    match error {
        FleetError::Spec(SpecError::Invalid(diagnostics)) => diagnostics
            .iter()
            .map(|d| {
                json!({
                    "file": d.file,
                    "line": d.position.map(|p| p.0),
                    "col": d.position.map(|p| p.1),
                    "message": d.message,
                })
            })
            .collect(),
        other => {
            vec![json!({"file": null, "line": null, "col": null, "message": other.to_string()})]
        }
    }
}
