//! Pure readings of what runs: the task rows `status` shows, the
//! generations `history` lists, and the locks and stop marks held.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::names::{labels, OneOffKind, TaskKey};
use crate::observed::{belongs_to, HostObservation, Observed, ObservedContainer, Role};
use crate::plan::Scope;
use crate::state::{Failing, Health, RunState};
use crate::time::{self, Timestamp};

/// Whether a task's host could be read and the task found on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Found,
    Missing,
    Unreachable,
}

/// One row of `status`: a task of the spec, or a container no task claims.
#[derive(Debug, Clone)]
pub struct TaskRow<'a> {
    pub job: String,
    pub host: String,
    pub task: Option<u32>,
    pub container: Option<&'a ObservedContainer>,
    pub presence: Presence,
    /// False for a container the spec no longer asks for.
    pub in_spec: bool,
    /// The job was stopped on this host by `drover stop`.
    pub stopped_by_drover: bool,
    /// The new container of the last rollout that failed its gate, kept
    /// aside stopped (the evidence).
    pub failed: Option<&'a ObservedContainer>,
}

/// The rows of `status` for the `desired` tasks (and any container of the
/// jobs in `scope` that no task claims), host by host.
pub fn status_rows<'a>(
    env: &str,
    desired: &[TaskKey],
    observed: &'a Observed,
    scope: &Scope,
    known_hosts: &BTreeSet<String>,
) -> Vec<TaskRow<'a>> {
    let mut rows = Vec::new();
    for (host, observation) in &observed.hosts {
        let wanted: Vec<&TaskKey> = desired.iter().filter(|k| &k.host == host).collect();
        let state = match observation {
            HostObservation::Reachable(state) => state,
            HostObservation::Unreachable { .. } => {
                rows.extend(wanted.iter().map(|k| TaskRow {
                    job: k.job.clone(),
                    host: host.clone(),
                    task: Some(k.task),
                    container: None,
                    presence: Presence::Unreachable,
                    in_spec: true,
                    stopped_by_drover: false,
                    failed: None,
                }));
                continue;
            }
        };
        let mut by_task: BTreeMap<TaskKey, Vec<&ObservedContainer>> = BTreeMap::new();
        let mut failed: BTreeMap<TaskKey, &ObservedContainer> = BTreeMap::new();
        let mut stopped_jobs = BTreeSet::new();
        for c in &state.containers {
            if !belongs_to(c, host, known_hosts) || !c.job().is_some_and(|j| scope.covers(j)) {
                continue;
            }
            match c.role(env) {
                Role::Current(mut key) | Role::Stray(mut key) => {
                    key.host = host.clone();
                    by_task.entry(key).or_default().push(c);
                }
                Role::StopMark { job, host: h } if &h == host => {
                    stopped_jobs.insert(job);
                }
                Role::Failed(key) if &key.host == host => {
                    failed.insert(key, c);
                }
                _ => {}
            }
        }
        for key in wanted {
            let found = by_task.remove(key).unwrap_or_default();
            // The one under the task's own name, else the running or newest.
            let own = key.container_name(env);
            let container = found.iter().copied().find(|c| c.name == own).or_else(|| {
                found
                    .iter()
                    .copied()
                    .max_by_key(|c| (c.is_running(), c.created))
            });
            rows.push(TaskRow {
                job: key.job.clone(),
                host: host.clone(),
                task: Some(key.task),
                container,
                presence: if container.is_some() {
                    Presence::Found
                } else {
                    Presence::Missing
                },
                in_spec: true,
                stopped_by_drover: stopped_jobs.contains(&key.job),
                failed: failed.get(key).copied(),
            });
        }
        for (key, containers) in by_task {
            for c in containers {
                rows.push(TaskRow {
                    job: key.job.clone(),
                    host: host.clone(),
                    task: Some(key.task),
                    container: Some(c),
                    presence: Presence::Found,
                    in_spec: false,
                    stopped_by_drover: stopped_jobs.contains(&key.job),
                    failed: None,
                });
            }
        }
    }
    rows.sort_by(|a, b| {
        (&a.job, &a.host, a.task, !a.in_spec).cmp(&(&b.job, &b.host, b.task, !b.in_spec))
    });
    rows
}

/// What a line of `history` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GenerationKind {
    /// The task's running generation.
    Current,
    /// Set aside by a rollout, for `rollback`.
    Kept,
    /// The new container of a rollout that failed its gate, kept stopped as evidence.
    Failed,
    /// A run of the job's `[release]` command before a rollout.
    Release,
}

/// One deployed generation of a task (current, kept, or failed at its
/// gate), or one run of the job's release command.
#[derive(Debug, Clone, Serialize)]
pub struct Generation {
    pub job: String,
    pub host: String,
    /// `None` for a release run: it belongs to the job, not to a task.
    pub task: Option<u32>,
    pub container: String,
    pub name: String,
    pub image: String,
    /// The image the container runs (`sha256:…`): a tag pushed again with
    /// other contents names another image, and only this tells them apart.
    pub image_id: String,
    pub spec: String,
    /// RFC 3339, UTC.
    pub deployed_at: String,
    #[serde(skip)]
    deployed: Option<Timestamp>,
    /// `user@machine` of the operator.
    pub deployed_by: String,
    /// The drover command that created it (`adopt` for a container `drover adopt` took over).
    pub command: String,
    /// The git commit of the environment it was created from (`drover.commit`).
    pub commit: Option<String>,
    pub state: String,
    /// Whether it is the task's running generation (false: kept for rollback).
    pub current: bool,
    pub kind: GenerationKind,
    /// A failed generation: why it failed, as far as its stopped container
    /// tells ([`failed_reason`]); a release run: how it ended ([`release_outcome`]).
    pub outcome: Option<String>,
    /// The exit code of its last run, for a stopped container.
    pub exit_code: Option<i64>,
}

impl Generation {
    /// The image ID as `docker images` shows it: 12 hex digits.
    pub fn short_image_id(&self) -> &str {
        crate::plan::short(&self.image_id)
    }
}

/// Why the container that failed a rollout's gate failed, as far as its
/// stopped container tells. The gate's own verdict is not on it (labels are
/// written at create); what the engine kept is: a memory kill, restarts by
/// its restart policy (a crash loop), its health check's last output, and
/// the code of its last exit — which, for a container drover stopped at the
/// gate's deadline, is drover's stop (SIGTERM 143, SIGKILL 137).
pub fn failed_reason(c: &ObservedContainer) -> String {
    let runs = &c.runs;
    let stopped_by_drover = matches!(runs.exit_code, Some(137 | 143));
    let failing = if runs.oom_killed {
        Failing::Exited {
            code: runs.exit_code,
            oom: true,
        }
    } else if runs.restarts > 0 {
        Failing::CrashLoop {
            restarts: runs.restarts,
            exit_code: runs.exit_code,
            oom: false,
        }
    } else if runs.health_at.is_some() && runs.health == Health::Unhealthy {
        // The engine marks every stopped container with a health check
        // unhealthy; only a check that ran says why.
        Failing::Unhealthy {
            output: runs.health_output.clone(),
        }
    } else if c.config.health.is_some() && runs.health_at.is_none() && stopped_by_drover {
        return format!(
            "no health check finished before the gate's deadline; stopped by drover (exit code {})",
            runs.exit_code.unwrap_or_default()
        );
    } else {
        Failing::Exited {
            code: runs.exit_code,
            oom: false,
        }
    };
    failing.to_string()
}

/// How a release run ended, from its container: running, never started,
/// stopped at its `[release] timeout` (it ran that long), killed for
/// memory, or its exit code.
pub fn release_outcome(c: &ObservedContainer) -> String {
    let runs = &c.runs;
    match runs.state {
        RunState::Created => return "never started".to_string(),
        state if state.is_up() || state == RunState::Paused => return "running".to_string(),
        _ => {}
    }
    let timeout = c
        .label(labels::TIMEOUT)
        .and_then(|t| t.parse::<u64>().ok())
        .map(std::time::Duration::from_millis);
    // drover's deadline runs from after the create to the stop it sends: a
    // run stopped at it ended by a signal (SIGTERM, or SIGKILL after the
    // grace), at least the timeout after its container was created. (From
    // the engine's start time, a busy engine's start latency would make a
    // timed-out run look shorter than its timeout.)
    let since_created = match (c.created.or(runs.started_at), runs.finished_at) {
        (Some(created), Some(end)) => Some(time::since(end, created)),
        _ => None,
    };
    let by_signal = matches!(runs.exit_code, Some(137 | 143)) && !runs.oom_killed;
    if let (Some(limit), Some(ran), true) = (timeout, since_created, by_signal) {
        if ran >= limit {
            return format!(
                "timed out after {}; stopped",
                drover_spec::units::format_duration(limit)
            );
        }
    }
    match (runs.oom_killed, runs.exit_code) {
        (true, code) => Failing::Exited { code, oom: true }.to_string(),
        (false, Some(0)) => "succeeded".to_string(),
        // Stopped before its timeout: Ctrl-C during the rollout, or by hand.
        (false, Some(code)) if by_signal => {
            format!("stopped by a signal before it ended (exit code {code})")
        }
        (false, Some(code)) => format!("failed with exit code {code}"),
        (false, None) => "ended".to_string(),
    }
}

/// Every generation of `job` found on the hosts (current, kept and failed),
/// and its release runs, newest first.
pub fn history(
    env: &str,
    job: &str,
    observed: &Observed,
    known_hosts: &BTreeSet<String>,
) -> Vec<Generation> {
    let mut generations = Vec::new();
    for (host, state) in observed.reachable() {
        for c in &state.containers {
            if c.job() != Some(job) || !belongs_to(c, host, known_hosts) {
                continue;
            }
            let (task, kind) = match c.role(env) {
                Role::Current(key) | Role::Stray(key) => (Some(key.task), GenerationKind::Current),
                Role::Kept(key) => (Some(key.task), GenerationKind::Kept),
                Role::Failed(key) => (Some(key.task), GenerationKind::Failed),
                Role::OneOff {
                    kind: OneOffKind::Release,
                    host: h,
                    ..
                } if &h == host => (None, GenerationKind::Release),
                _ => continue,
            };
            let outcome = match kind {
                GenerationKind::Failed => Some(failed_reason(c)),
                GenerationKind::Release => Some(release_outcome(c)),
                GenerationKind::Current | GenerationKind::Kept => None,
            };
            generations.push(Generation {
                job: job.to_string(),
                host: host.clone(),
                task,
                container: c.short_id().to_string(),
                name: c.name.clone(),
                image: c.config.image.clone(),
                image_id: c.image_id.clone(),
                spec: c.spec_hash().unwrap_or_default().to_string(),
                deployed_at: c.deployed_at().map(time::format).unwrap_or_default(),
                deployed: c.deployed_at(),
                deployed_by: c.deployed_by().unwrap_or("unknown").to_string(),
                command: c.deployed_with().unwrap_or("unknown").to_string(),
                commit: c.commit().map(str::to_string),
                state: c.state().to_string(),
                current: kind == GenerationKind::Current,
                kind,
                outcome,
                exit_code: (!c.is_running()).then_some(c.runs.exit_code).flatten(),
            });
        }
    }
    generations.sort_by(|a, b| {
        (b.deployed, &a.host, a.task, a.kind).cmp(&(a.deployed, &b.host, b.task, b.kind))
    });
    generations
}

/// A held lock, as found on a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockInfo {
    pub job: String,
    pub host: String,
    pub container: String,
    /// `user@machine`.
    pub by: String,
    pub at: String,
    pub reason: String,
    pub command: String,
    /// The holding process, when a command (not `drover lock`) holds it.
    pub pid: Option<u32>,
}

impl LockInfo {
    pub fn from_container(c: &ObservedContainer, job: &str, host: &str) -> Self {
        LockInfo {
            job: job.to_string(),
            host: host.to_string(),
            container: c.name.clone(),
            by: c
                .label(labels::DEPLOYED_BY)
                .unwrap_or("unknown")
                .to_string(),
            at: c
                .label(labels::DEPLOYED_AT)
                .map(str::to_string)
                .or_else(|| c.created.map(time::format))
                .unwrap_or_default(),
            reason: c.label(labels::REASON).unwrap_or_default().to_string(),
            command: c.label(labels::COMMAND).unwrap_or_default().to_string(),
            pid: c.label(labels::PID).and_then(|p| p.parse().ok()),
        }
    }
}

/// The locks held on the observed hosts, by job; each once, even where
/// two host entries share an engine.
pub fn locks(
    observed: &Observed,
    env: &str,
    known_hosts: &BTreeSet<String>,
) -> BTreeMap<String, Vec<LockInfo>> {
    let mut held: BTreeMap<String, Vec<LockInfo>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for (host, state) in observed.reachable() {
        for c in &state.containers {
            if !belongs_to(c, host, known_hosts) || !seen.insert(c.id.clone()) {
                continue;
            }
            if let Role::Lock { job, host } = c.role(env) {
                let info = LockInfo::from_container(c, &job, &host);
                held.entry(job).or_default().push(info);
            }
        }
    }
    held
}

/// The stop marks of `job` on the observed hosts, each once.
pub fn stop_marks(
    env: &str,
    observed: &Observed,
    known_hosts: &BTreeSet<String>,
    job: &str,
) -> Vec<crate::StopMark> {
    let mut marks = Vec::new();
    let mut seen = BTreeSet::new();
    for (host, state) in observed.reachable() {
        for c in &state.containers {
            if !belongs_to(c, host, known_hosts) || !seen.insert(c.id.clone()) {
                continue;
            }
            if let Role::StopMark { job: j, host: h } = c.role(env) {
                if j == job {
                    marks.push(crate::StopMark::of(c, &j, &h));
                }
            }
        }
    }
    marks
}
