use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::Result;
use drover_apply::lock::force_unlock;

use crate::cli::Global;
use crate::outln;

/// Holds the job's lock until `drover unlock`.
pub async fn lock(global: &Global, job: &str, reason: &str) -> Result<ExitCode> {
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
    outln!(
        "job {job} locked on {} by {}: {reason}",
        drover_fleet::list(&hosts),
        holder.by
    );
    outln!("release it with: drover unlock {job}");
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
    for error in connections.unreachable.values() {
        eprintln!("warning: {error}: a lock there is left as it is");
    }
    Ok(if connections.unreachable.is_empty() {
        super::SUCCESS
    } else {
        super::failure()
    })
}
