//! `status`: every task with its container's state, health, uptime,
//! restarts, exit code, memory and CPU; the same rows `drover status
//! --json` prints and the dashboard's `/api/status` serves.
//!
//! CPU is measured, as `docker stats` does, as the container's share of
//! the host's CPU time between two samples, in percent of one CPU (200% is
//! two full cores). `status` takes one one-shot sample of every container
//! at once and measures from the sample its last run held, when that run
//! was within a minute ([`HeldUsage`]); otherwise it takes a second sample
//! at the engine's next tick. Engines before API 1.41 answer each sample
//! after their own one-second interval instead.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use drover_engine::{Engine, UsageSample};
use drover_plan::views::{locks, status_rows, LockInfo, Presence, TaskRow};
use drover_plan::{HostObservation, Observed};
use futures::future::join_all;
use serde::Serialize;

use crate::held::HeldUsage;
use crate::{Connections, Fleet, FleetError};
use drover_plan::time::{self, Timestamp};
use drover_plan::{Failing, RunState};
use drover_plan::{Scope, TaskKey};

/// Time between the two CPU samples.
pub const CPU_WINDOW: Duration = Duration::from_millis(500);

/// One task as `status` reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskStatus {
    pub job: String,
    pub host: String,
    pub task: Option<u32>,
    /// Short container ID.
    pub container: Option<String>,
    pub name: Option<String>,
    pub image: Option<String>,
    /// The engine's state (`running`, `exited`, `restarting`…), `stopped`
    /// for a task `drover stop` stopped, `missing` when the task has no
    /// container, `unreachable` when its host could not be asked.
    pub state: String,
    pub health: Option<String>,
    pub started_at: Option<String>,
    pub uptime_seconds: Option<u64>,
    pub restarts: Option<i64>,
    /// Exit code of the last run, where known: for a container that is not
    /// running, and for a running one that restarted (its last `die`).
    pub exit_code: Option<i64>,
    /// The kernel killed it for exceeding its memory limit.
    pub oom_killed: bool,
    /// Restarting again and again.
    pub restart_loop: bool,
    /// Why it does not serve (crash loop, exit, unhealthy, paused…), in
    /// the words every command uses; `None` when it runs well.
    pub failing: Option<String>,
    pub memory_bytes: Option<u64>,
    pub cpu_percent: Option<f64>,
    /// False: a container the spec no longer asks for.
    pub in_spec: bool,
    /// The job was stopped here by `drover stop` (and stays stopped through `up`).
    pub stopped_by_drover: bool,
    /// The git commit the container was deployed from (`drover.commit`).
    pub commit: Option<String>,
}

/// What `status` found.
pub struct StatusReport {
    pub tasks: Vec<TaskStatus>,
    /// Hosts that could not be read: name, address, why.
    pub unreachable: Vec<(String, String, String)>,
    pub locks: BTreeMap<String, Vec<LockInfo>>,
}

impl Fleet {
    /// Every task with its usage, on hosts already connected (the dashboard's).
    pub async fn status(
        &self,
        connections: &Connections,
        names: &[String],
    ) -> Result<StatusReport, FleetError> {
        let jobs = self.jobs(names)?;
        let keys = self.task_keys(&jobs);
        let scope = Fleet::scope(names);
        let observed = self.observe(connections, &scope).await;
        let held = Mutex::new(HeldUsage::load());
        let rows = status_rows(
            &self.env.name,
            &keys,
            &observed,
            &scope,
            &self.known_hosts(),
        );
        let usage = usages(&sample_targets(connections, &rows), &held).await;
        held.into_inner().unwrap_or_default().save();
        Ok(self.report(&keys, &scope, &observed, &usage))
    }

    /// Every task with its usage, each host connected, read and sampled on
    /// its own: a slow host's deadline is not added to the others' sampling.
    pub async fn status_of_all(&self, names: &[String]) -> Result<StatusReport, FleetError> {
        let jobs = self.jobs(names)?;
        let keys = self.task_keys(&jobs);
        let scope = Fleet::scope(names);
        let held = Mutex::new(HeldUsage::load());
        let (keys_ref, scope_ref, held_ref) = (&keys, &scope, &held);
        let reads = self.hosts().into_iter().map(|host| async move {
            let connections = self.connect(&BTreeSet::from([host])).await;
            let observed = self.observe(&connections, scope_ref).await;
            let rows = status_rows(
                &self.env.name,
                keys_ref,
                &observed,
                scope_ref,
                &self.known_hosts(),
            );
            let usage = usages(&sample_targets(&connections, &rows), held_ref).await;
            (observed, usage)
        });
        let mut observed = Observed::default();
        let mut usage = BTreeMap::new();
        for (host_observed, host_usage) in join_all(reads).await {
            observed.at = observed.at.max(host_observed.at);
            observed.hosts.extend(host_observed.hosts);
            usage.extend(host_usage);
        }
        held.into_inner().unwrap_or_default().save();
        Ok(self.report(&keys, &scope, &observed, &usage))
    }

    fn report(
        &self,
        keys: &[TaskKey],
        scope: &Scope,
        observed: &Observed,
        usage: &BTreeMap<String, (u64, f64)>,
    ) -> StatusReport {
        let rows = status_rows(&self.env.name, keys, observed, scope, &self.known_hosts());
        let now = observed.at;
        let tasks = rows
            .iter()
            .map(|row| {
                let used = row.container.and_then(|c| usage.get(&c.id).copied());
                task_status(row, used, now)
            })
            .collect();
        StatusReport {
            tasks,
            unreachable: unreachable(observed),
            locks: locks(observed, &self.env.name, &self.known_hosts()),
        }
    }
}

fn unreachable(observed: &Observed) -> Vec<(String, String, String)> {
    observed
        .hosts
        .iter()
        .filter_map(|(host, o)| match o {
            HostObservation::Unreachable { address, error } => {
                Some((host.clone(), address.clone(), error.clone()))
            }
            HostObservation::Reachable(_) => None,
        })
        .collect()
}

/// The running containers of `rows`, with the engine to sample each on.
fn sample_targets<'a>(
    connections: &'a Connections,
    rows: &'a [TaskRow<'_>],
) -> Vec<(&'a dyn Engine, &'a str)> {
    rows.iter()
        .filter_map(
            |row| match (row.container, connections.engines.get(&row.host)) {
                (Some(c), Some(engine)) if c.state() == RunState::Running => {
                    Some((engine.as_ref(), c.id.as_str()))
                }
                _ => None,
            },
        )
        .collect()
}

/// Memory and CPU of each target, by container ID: one sample each, and CPU
/// from the sample the last run held (see [`HeldUsage`]); containers
/// without one get a second sample `CPU_WINDOW` later (the engine's next
/// tick).
async fn usages(
    targets: &[(&dyn Engine, &str)],
    held: &Mutex<HeldUsage>,
) -> BTreeMap<String, (u64, f64)> {
    let mut usage = BTreeMap::new();
    if targets.is_empty() {
        return usage;
    }
    let first = sample(targets).await;
    let mut again = Vec::new();
    {
        let mut held = held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (&(engine, id), now) in targets.iter().zip(&first) {
            let Some(now) = now else { continue };
            match held.earlier(id, now) {
                Some(earlier) => {
                    usage.insert(id.to_string(), usage_between(&earlier, now));
                }
                None => again.push(((engine, id), *now)),
            }
            held.hold(id, now);
        }
    }
    if again.is_empty() {
        return usage;
    }
    tokio::time::sleep(CPU_WINDOW).await;
    let targets: Vec<(&dyn Engine, &str)> = again.iter().map(|(t, _)| *t).collect();
    let second = sample(&targets).await;
    let mut held = held
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for (((_, id), earlier), later) in again.iter().zip(second) {
        let Some(later) = later else { continue };
        usage.insert(id.to_string(), usage_between(earlier, &later));
        held.hold(id, &later);
    }
    usage
}

/// Memory now, and CPU between two samples (two decimals).
fn usage_between(earlier: &UsageSample, now: &UsageSample) -> (u64, f64) {
    (
        now.memory_bytes,
        (now.cpu_percent_since(earlier) * 100.0).round() / 100.0,
    )
}

async fn sample(targets: &[(&dyn Engine, &str)]) -> Vec<Option<UsageSample>> {
    join_all(
        targets
            .iter()
            .map(|(engine, id)| async move { engine.usage(id).await.ok() }),
    )
    .await
}

/// One row of `status` (and of the dashboard's overview, which holds the
/// observation live and makes its rows with this same function).
pub fn task_status(row: &TaskRow<'_>, usage: Option<(u64, f64)>, now: Timestamp) -> TaskStatus {
    let base = TaskStatus {
        job: row.job.clone(),
        host: row.host.clone(),
        task: row.task,
        container: None,
        name: None,
        image: None,
        state: match row.presence {
            Presence::Missing => "missing",
            Presence::Unreachable => "unreachable",
            Presence::Found => "",
        }
        .to_string(),
        health: None,
        started_at: None,
        uptime_seconds: None,
        restarts: None,
        exit_code: None,
        oom_killed: false,
        restart_loop: false,
        failing: None,
        memory_bytes: None,
        cpu_percent: None,
        in_spec: row.in_spec,
        stopped_by_drover: row.stopped_by_drover,
        commit: None,
    };
    let Some(c) = row.container else {
        // No container: the last new one may have failed its gate and be
        // kept aside; say so, with its exit code.
        return match row.failed {
            Some(failed) => TaskStatus {
                exit_code: failed.runs.exit_code,
                oom_killed: failed.runs.oom_killed,
                failing: Some(format!(
                    "its last new container failed ({}); it is kept stopped as {}",
                    failed
                        .failing(now)
                        .map_or_else(|| "it was stopped".to_string(), |f| f.to_string()),
                    failed.name
                )),
                ..base
            },
            None => base,
        };
    };
    let runs = &c.runs;
    let state = if row.stopped_by_drover && !c.is_running() {
        "stopped".to_string()
    } else {
        runs.state.to_string()
    };
    // A task drover stopped is as it should be, not failing.
    let failing = c
        .failing(now)
        .filter(|_| !row.stopped_by_drover || c.is_running());
    TaskStatus {
        container: Some(c.short_id().to_string()),
        name: Some(c.name.clone()),
        image: Some(c.config.image.clone()),
        state,
        health: runs.current_health().word().map(str::to_string),
        started_at: runs.started_at.filter(|_| c.is_running()).map(time::format),
        uptime_seconds: runs.uptime(now).map(|d| d.as_secs()),
        restarts: Some(runs.restarts),
        exit_code: runs.exit_code,
        oom_killed: runs.oom_killed,
        restart_loop: matches!(failing, Some(Failing::CrashLoop { .. })),
        failing: failing.map(|f| f.to_string()),
        memory_bytes: usage.map(|u| u.0),
        cpu_percent: usage.map(|u| u.1),
        commit: c.commit().map(str::to_string),
        ..base
    }
}

/// Seconds since the epoch, now.
pub fn now_secs() -> u64 {
    u64::try_from(time::unix_secs(time::now())).unwrap_or(0)
}

/// `59s`, `3m2s`, `1h1m`, `2d3h`.
pub fn human_duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// `512B`, `3.0MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(512), "512B");
        assert_eq!(human_bytes(3 << 20), "3.0MiB");
        assert_eq!(human_duration(59), "59s");
        assert_eq!(human_duration(3661), "1h1m");
    }
}
