//! `drover lock` / `drover unlock`: hold a job against changes by hand, and
//! give it back (also a lock a dead run left).

use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::{bail, Result};
use drover_apply::lock::force_unlock;
use drover_engine::EngineError;
use drover_fleet::{Connections, Fleet};
use serde_json::{json, Value};

use crate::cli::Global;
use crate::outln;

/// Holds the job's lock until `drover unlock`.
pub async fn lock(global: &Global, job: &str, reason: &str) -> Result<ExitCode> {
    let reason = checked_reason(reason)?;
    let fleet = super::load(global)?;
    fleet.job(job)?;
    let connections = fleet.connect_all().await;
    for error in connections.unreachable.values() {
        eprintln!("warning: {error}: the lock is not held there");
    }
    let jobs: BTreeSet<String> = [job.to_string()].into_iter().collect();
    let holder = drover_fleet::holder("lock", reason, false);
    let guards = fleet.lock(&connections, &jobs, None, &holder).await?;
    let hosts: Vec<&str> = guards.iter().flat_map(|g| g.hosts()).collect();
    if global.json {
        outln!(
            "{}",
            json!({
                "job": job,
                "locked": true,
                "hosts": hosts,
                "holder": {"by": holder.by, "at": holder.at, "reason": holder.reason, "command": holder.command},
                "unreachable": unreachable_json(&fleet, &connections),
            })
        );
    } else {
        outln!(
            "job {job} locked on {} by {}: {reason}",
            drover_fleet::list(&hosts),
            holder.by
        );
        outln!("release it with: drover unlock {job}");
    }
    Ok(if connections.unreachable.is_empty() {
        super::SUCCESS
    } else {
        super::failure()
    })
}

/// Removes the job's lock on every host, whoever holds it.
pub async fn unlock(global: &Global, job: &str) -> Result<ExitCode> {
    let fleet = super::load(global)?;
    let connections = fleet.connect_all().await;
    let hosts: Vec<_> = connections
        .engines
        .iter()
        .map(|(h, e)| (h.clone(), e.clone()))
        .collect();
    let removed = force_unlock(&fleet.env.name, job, &hosts).await?;
    if global.json {
        outln!(
            "{}",
            json!({
                "job": job,
                "released": removed,
                "unreachable": unreachable_json(&fleet, &connections),
            })
        );
    } else {
        if removed.is_empty() {
            outln!("job {job} was not locked");
        }
        for lock in &removed {
            let why = if lock.reason.is_empty() {
                lock.command.clone()
            } else {
                lock.reason.clone()
            };
            outln!(
                "unlocked job {job} on {} (held by {} since {}: {why})",
                lock.host,
                lock.by,
                lock.at
            );
        }
    }
    for error in connections.unreachable.values() {
        eprintln!("warning: {error}: a lock there is left as it is");
    }
    Ok(if connections.unreachable.is_empty() {
        super::SUCCESS
    } else {
        super::failure()
    })
}

/// `--reason` is what the next operator reads when the lock stops them:
/// one line that says something.
fn checked_reason(reason: &str) -> Result<&str> {
    let reason = reason.trim();
    if reason.is_empty() {
        bail!("--reason is empty: say why the job is held, e.g. --reason \"investigating the 502s\" (the next operator reads it)");
    }
    if reason.chars().any(char::is_control) {
        bail!("--reason must be one line of text, without control characters");
    }
    Ok(reason)
}

/// `[{host, address, error}]` for the hosts that could not be reached, as
/// `diff --json` lists them.
fn unreachable_json(fleet: &Fleet, connections: &Connections) -> Vec<Value> {
    connections
        .unreachable
        .iter()
        .map(|(host, error)| {
            let (address, why) = match error {
                EngineError::Unreachable {
                    address, reason, ..
                } => (address.clone(), reason.clone()),
                other => (
                    fleet
                        .env
                        .hosts
                        .get(host)
                        .map(|h| h.docker.to_string())
                        .unwrap_or_default(),
                    other.to_string(),
                ),
            };
            json!({"host": host, "address": address, "error": why})
        })
        .collect()
}
